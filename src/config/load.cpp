// YAML text -> Config: parse, apply --set overrides to the tree, convert every
// key with its type, then check ranges and cross-key rules (validate.cpp).
// Errors say where a value came from: "FILE:LINE" or "--set KEY=VALUE".
#include "sptrain/config/load.hpp"

#include <yaml-cpp/depthguard.h>  // YAML::DeepRecursion
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "fields.hpp"
#include "sptrain/core/error.hpp"

namespace sptrain {
namespace {

using namespace config_detail;

// One --set argument, resolved to a key path.
struct Override {
  std::string arg;                     // as given: "optim.lr=0.01"
  std::string path;                    // "optim.lr"
  std::vector<std::string> components;  // {"optim", "lr"}; a label key stays whole
  YAML::Node value;
};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// What a node holds, for "expected X, got Y" messages.
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default: {
      std::string s = node.Scalar();
      if (s.size() > 60) s = s.substr(0, 57) + "...";
      return "'" + s + "'";
    }
  }
}

// Splits "KEY.PATH=VALUE", checks the key path against the known keys and
// parses the value.
Override parse_override(const std::string& arg) {
  Override o;
  o.arg = arg;
  const std::string where = "--set " + arg;
  size_t eq = arg.find('=');
  SPT_CHECK(eq != std::string::npos, where, ": expected KEY=VALUE, e.g. --set optim.lr=0.01");
  o.path = trim(arg.substr(0, eq));
  const std::string text = arg.substr(eq + 1);
  SPT_CHECK(!o.path.empty(), where, ": the key before '=' is empty");

  std::string section;
  bool string_value = false;
  for (size_t start = 0;;) {
    size_t dot = o.path.find('.', start);
    std::string name = o.path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    std::string path = join_path(section, name);
    SPT_CHECK(!name.empty(), where, ": '", o.path, "' is not a key path (empty part)");
    o.components.push_back(name);
    if (is_labels_field(path) && dot != std::string::npos) {
      // task.labels.LABEL=WORD sets one entry; the label itself may contain dots.
      o.components.push_back(o.path.substr(dot + 1));
      string_value = true;
      break;
    }
    if (dot == std::string::npos) {
      if (!is_field(path) && !is_section(path))
        fail(where, ": ", path, ": unknown key", did_you_mean(section, name));
      string_value = is_string_field(path);
      break;
    }
    if (!is_section(path)) {
      if (is_field(path)) fail(where, ": ", path, " is a single value and has no key '", o.path.substr(dot + 1), "'");
      fail(where, ": ", path, ": unknown key", did_you_mean(section, name));
    }
    section = path;
    start = dot + 1;
  }

  // A string key takes the text as written (so "Review: {text}" needs no
  // quoting); quote it to use YAML escapes. Everything else is YAML.
  if (string_value && (text.empty() || (text[0] != '"' && text[0] != '\''))) {
    o.value = YAML::Node(text);
  } else {
    try {
      o.value = YAML::Load(text);
    } catch (const YAML::DeepRecursion&) {
      fail(where, ": the value nests deeper than the YAML parser's limit of ", kMaxYamlDepth, " levels");
    } catch (const YAML::Exception& e) {
      fail(where, ": cannot read the value as YAML: ", e.msg);
    }
  }
  return o;
}

// Sets node[components[i]][components[i+1]]... = value, creating maps on the way.
void set_path(YAML::Node node, const std::vector<std::string>& components, size_t i,
              const YAML::Node& value) {
  if (i + 1 == components.size()) {
    node[components[i]] = value;
    return;
  }
  YAML::Node child = node[components[i]];
  if (!child.IsMap()) child = YAML::Node(YAML::NodeType::Map);
  set_path(child, components, i + 1, value);
}

bool parse_integer(const std::string& text, long long& out) {
  const char* b = text.data();
  const char* e = b + text.size();
  if (b != e && *b == '+') ++b;
  auto r = std::from_chars(b, e, out);
  return b != e && r.ec == std::errc() && r.ptr == e;
}

class Converter {
 public:
  Converter(Config& config, std::string source, const std::vector<Override>& overrides)
      : source_(std::move(source)), overrides_(overrides), origins_(source_) {
    for (Field& f : fields_of(config)) refs_.emplace(f.path, f.ref);
  }

  void convert(const YAML::Node& root) { read_section(root, ""); }
  const Origins& origins() const { return origins_; }

 private:
  // "--set ARG" when `path` (or a section above it) was overridden, else FILE:LINE.
  std::string where(const std::string& path, const YAML::Mark& mark) const {
    for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
      if (path == it->path || path.rfind(it->path + ".", 0) == 0) return "--set " + it->arg;
    }
    if (mark.is_null() || mark.line < 0) return source_;
    return source_ + ":" + std::to_string(mark.line + 1);
  }

  [[noreturn]] static void error(const std::string& where, const std::string& path,
                                 const std::string& message) {
    fail(where, ": ", path, ": ", message);
  }

  void read_section(const YAML::Node& map, const std::string& section) {
    std::map<std::string, int> seen;  // key -> line
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node key = it->first;  // copies: it-> returns a temporary proxy
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        error(where(section, key.Mark()), section.empty() ? "(top level)" : section,
              "keys must be plain names, got " + describe(key));
      }
      const std::string name = key.Scalar();
      const std::string path = join_path(section, name);
      const std::string w = where(path, key.Mark());
      if (auto [at, inserted] = seen.emplace(name, key.Mark().line + 1); !inserted) {
        error(w, path, "duplicate key (first given at line " + std::to_string(at->second) + ")");
      }
      if (is_field(path)) {
        read_value(value, refs_.at(path), path, w);
      } else if (is_section(path)) {
        if (!value.IsNull() && !value.IsMap())
          error(w, path, "expected a map of keys (a section), got " + describe(value));
        if (value.IsMap()) read_section(value, path);
      } else {
        error(w, path, "unknown key" + did_you_mean(section, name));
      }
      origins_.set(path, w);
    }
  }

  void read_value(const YAML::Node& node, FieldRef ref, const std::string& path,
                  const std::string& w) {
    std::visit([&](auto* target) { read_into(node, target, path, w); }, ref);
  }

  void read_into(const YAML::Node& node, std::string* out, const std::string& path,
                 const std::string& w) {
    if (node.IsNull()) {
      *out = "";
      return;
    }
    if (!node.IsScalar()) error(w, path, "expected a string, got " + describe(node));
    *out = node.Scalar();
  }

  void read_into(const YAML::Node& node, int* out, const std::string& path, const std::string& w) {
    long long v = 0;
    if (!node.IsScalar() || !parse_integer(node.Scalar(), v))
      error(w, path, "expected an integer, got " + describe(node));
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
      error(w, path, "integer out of range, got " + describe(node));
    *out = static_cast<int>(v);
  }

  void read_into(const YAML::Node& node, std::uint64_t* out, const std::string& path,
                 const std::string& w) {
    const std::string text = node.IsScalar() ? node.Scalar() : std::string();
    const char* b = text.data();
    const char* e = b + text.size();
    if (b != e && *b == '+') ++b;
    auto r = std::from_chars(b, e, *out);
    if (!node.IsScalar() || b == e || r.ec != std::errc() || r.ptr != e)
      error(w, path, "expected a non-negative integer below 2^64, got " + describe(node));
  }

  void read_into(const YAML::Node& node, double* out, const std::string& path,
                 const std::string& w) {
    const std::string text = node.IsScalar() ? node.Scalar() : std::string();
    const char* b = text.data();
    const char* e = b + text.size();
    if (b != e && *b == '+') ++b;
    auto r = std::from_chars(b, e, *out);
    if (!node.IsScalar() || b == e || r.ptr != e || (r.ec != std::errc() && r.ec != std::errc::result_out_of_range))
      error(w, path, "expected a number, got " + describe(node));
    if (r.ec != std::errc() || !std::isfinite(*out))
      error(w, path, "expected a finite number, got " + describe(node));
  }

  void read_into(const YAML::Node& node, bool* out, const std::string& path, const std::string& w) {
    std::string s = node.IsScalar() ? node.Scalar() : std::string();
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (s == "true" || s == "yes" || s == "on") {
      *out = true;
    } else if (s == "false" || s == "no" || s == "off") {
      *out = false;
    } else {
      error(w, path, "expected true or false, got " + describe(node));
    }
  }

  void read_into(const YAML::Node& node, std::vector<int>* out, const std::string& path,
                 const std::string& w) {
    out->clear();
    if (node.IsNull()) return;
    if (!node.IsSequence()) error(w, path, "expected a list of integers, e.g. [12, 12], got " + describe(node));
    for (size_t i = 0; i < node.size(); ++i) {
      const std::string item = path + "[" + std::to_string(i) + "]";
      int v = 0;
      read_into(node[i], &v, item, where(path, node[i].Mark()));
      out->push_back(v);
    }
  }

  void read_into(const YAML::Node& node, Labels* out, const std::string& path, const std::string& w) {
    out->clear();
    if (node.IsNull()) return;
    if (!node.IsMap())
      error(w, path, "expected a map of label: word, e.g. {\"0\": \" negative\", \"1\": \" positive\"}, got " + describe(node));
    std::map<std::string, int> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // copies: it-> returns a temporary proxy
      const YAML::Node word = it->second;
      if (!key.IsScalar()) error(where(path, key.Mark()), path, "a label must be a plain value, got " + describe(key));
      const std::string label = key.Scalar();
      const std::string entry = path + "." + label;
      const std::string entry_where = where(entry, key.Mark());
      if (auto [at, inserted] = seen.emplace(label, key.Mark().line + 1); !inserted)
        error(entry_where, entry, "duplicate label (first given at line " + std::to_string(at->second) + ")");
      if (!word.IsScalar())
        error(entry_where, entry, "expected the verbalizer word as a string, got " + describe(word));
      out->emplace_back(label, word.Scalar());
      origins_.set(entry, entry_where);
    }
  }

  std::string source_;
  const std::vector<Override>& overrides_;
  Origins origins_;
  std::map<std::string, FieldRef> refs_;
};

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  // Parse the overrides first: a bad --set is reported even when the file is fine.
  std::vector<Override> parsed;
  for (const std::string& arg : overrides) parsed.push_back(parse_override(arg));

  SPT_CHECK(yaml_text.size() <= kMaxConfigBytes, source_name, ": ", yaml_text.size(),
            " bytes; a configuration file is at most ", kMaxConfigBytes, " bytes");
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::DeepRecursion& e) {
    fail(source_name, ":", e.mark.line + 1, ": the YAML nests deeper than the parser's limit of ",
         kMaxYamlDepth, " levels (sptrain's keys nest 4 at most)");
  } catch (const YAML::ParserException& e) {
    fail(source_name, ":", e.mark.line + 1, ": malformed YAML (column ", e.mark.column + 1,
         "): ", e.msg);
  } catch (const YAML::Exception& e) {
    fail(source_name, ": malformed YAML: ", e.msg);
  }
  if (root.IsNull()) root.reset(YAML::Node(YAML::NodeType::Map));
  if (!root.IsMap()) {
    fail(source_name, ":", root.Mark().line + 1,
         ": expected a map of sections (model:, task:, ...) at the top level, got ", describe(root));
  }
  for (const Override& o : parsed) set_path(root, o.components, 0, o.value);

  Config config;
  Converter converter(config, source_name, parsed);
  converter.convert(root);
  config.source_path = source_name;
  // A generate task's loss is over the vocabulary; say so in the resolved configuration.
  if (config.task.kind == "generate" && !converter.origins().has("task.loss")) config.task.loss = "vocab";
  validate(config, converter.origins());
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  SPT_CHECK(!std::filesystem::is_directory(path, ec), "config file ", path, " is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open config file ", path, ": ", std::strerror(errno));
  // At most one byte past the limit, so that /dev/zero or a huge file is not read whole.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  SPT_CHECK(!in.bad(), "cannot read config file ", path);
  text.resize(size_t(in.gcount()));
  return parse_config(text, path, overrides);
}

}  // namespace sptrain
