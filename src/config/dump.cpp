// Config -> YAML text with every key, written by hand so that the output is
// stable (checkpoints store it) and reads back to the same Config.
#include <cctype>
#include <sstream>

#include "fields.hpp"
#include "sptrain/config/load.hpp"

namespace sptrain {
namespace {

using namespace config_detail;

// Double-quoted YAML with escapes; UTF-8 bytes pass through unchanged.
std::string quoted(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out = "\"";
  for (char ch : s) {
    unsigned char u = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\x";
          out += hex[u >> 4];
          out += hex[u & 15];
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

// Plain (unquoted) only when no YAML reader could take it for anything but
// this string: names such as cpu and simple paths. Anything else is quoted,
// including words YAML 1.1 reads as booleans or null and text starting with a
// digit (1f1b, 123).
std::string string_text(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_' || s[0] == '/'))
    return quoted(s);
  for (char ch : s) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' ||
          ch == '/' || ch == ':'))
      return quoted(s);
  }
  std::string lower;
  for (char ch : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* word : {"null", "true", "false", "yes", "no", "on", "off", "y", "n"})
    if (lower == word) return quoted(s);
  return s;
}

struct ValueWriter {
  std::ostream& out;
  std::string indent;  // of the key being written

  void operator()(std::string* v) const { out << ' ' << string_text(*v) << '\n'; }
  void operator()(int* v) const { out << ' ' << *v << '\n'; }
  void operator()(std::uint64_t* v) const { out << ' ' << *v << '\n'; }
  void operator()(double* v) const { out << ' ' << format_number(*v) << '\n'; }
  void operator()(bool* v) const { out << ' ' << (*v ? "true" : "false") << '\n'; }
  void operator()(std::vector<int>* v) const {
    out << " [";
    for (size_t i = 0; i < v->size(); ++i) out << (i ? ", " : "") << (*v)[i];
    out << "]\n";
  }
  void operator()(Labels* v) const {
    if (v->empty()) {
      out << " {}\n";
      return;
    }
    out << '\n';
    for (const auto& [label, word] : *v) out << indent << "  " << quoted(label) << ": " << quoted(word) << '\n';
  }
};

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
  return parts;
}

}  // namespace

std::string dump_config(const Config& config) {
  Config copy = config;  // fields_of takes pointers into a mutable Config
  std::ostringstream out;
  out << "# sptrain configuration: every key, defaults included (docs/config.md)\n";
  std::vector<std::string> open;  // sections of the previous key
  for (const Field& f : fields_of(copy)) {
    std::vector<std::string> parts = split_path(f.path);
    std::vector<std::string> sections(parts.begin(), parts.end() - 1);
    size_t common = 0;
    while (common < sections.size() && common < open.size() && sections[common] == open[common]) ++common;
    if (common == 0 && !sections.empty() && (open.empty() || open[0] != sections[0])) out << '\n';
    for (size_t d = common; d < sections.size(); ++d)
      out << std::string(2 * d, ' ') << sections[d] << ":\n";
    open = sections;
    std::string indent(2 * sections.size(), ' ');
    out << indent << parts.back() << ':';
    std::visit(ValueWriter{out, indent}, f.ref);
  }
  return out.str();
}

}  // namespace sptrain
