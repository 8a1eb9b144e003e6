#include "sptrain/data/dataset.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>

#include "sptrain/core/error.hpp"
#include "sptrain/core/json.hpp"

namespace sptrain {
namespace {

// Returns the byte offset of the first invalid UTF-8 sequence, or npos.
// Rejects overlong forms, surrogates and code points above U+10FFFF.
size_t find_invalid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

std::vector<std::string> read_lines(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ": no such file");
  if (fs::is_directory(path, ec)) fail(path, ": is a directory, expected a data file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open for reading");
  return read_text_lines(in, path);
}

}  // namespace

std::vector<std::string> read_text_lines(std::istream& in, const std::string& path) {
  std::vector<std::string> lines;
  std::string line;
  auto finish_line = [&] {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lines.empty() && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    lines.push_back(std::move(line));
    line.clear();
  };
  std::string block(size_t(1) << 16, '\0');
  while (in) {
    in.read(block.data(), std::streamsize(block.size()));
    const std::string_view got(block.data(), size_t(in.gcount()));
    for (size_t begin = 0; begin < got.size();) {
      size_t end = std::min(got.find('\n', begin), got.size());
      line.append(got, begin, end - begin);
      if (line.size() > kMaxLineBytes)
        fail(path, ":", lines.size() + 1, ": line longer than ", kMaxLineBytes,
             " bytes (is this a text file of one example per line?)");
      if (end < got.size()) finish_line();
      begin = end + 1;
    }
  }
  if (in.bad()) fail(path, ": read error");
  if (!line.empty()) finish_line();
  return lines;
}

namespace {

// Drops the trailing blank lines; any other blank line is an error.
size_t content_lines(const std::vector<std::string>& lines, const std::string& path) {
  size_t n = lines.size();
  while (n > 0 && is_blank(lines[n - 1])) --n;
  for (size_t i = 0; i < n; ++i)
    if (is_blank(lines[i])) fail(path, ":", i + 1, ": blank line (only allowed at the end of the file)");
  return n;
}

void check_utf8(const std::string& line, const std::string& path, size_t lineno) {
  size_t bad = find_invalid_utf8(line);
  if (bad != std::string::npos)
    fail(path, ":", lineno, ": invalid UTF-8 at byte ", bad + 1, " of the line");
}

std::vector<Example> parse_tsv(const std::vector<std::string>& lines, size_t n,
                               const std::string& path, const ExampleFields& f) {
  std::vector<Example> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& line = lines[i];
    size_t lineno = i + 1;
    check_utf8(line, path, lineno);
    size_t tab = line.rfind('\t');
    if (tab == std::string::npos)
      fail(path, ":", lineno, ": no tab; expected ", f.text, "<TAB>", f.answer);
    std::string text = line.substr(0, tab);
    std::string label = line.substr(tab + 1);
    if (i == 0 && label == f.answer) continue;  // a header, GLUE-style "sentence\tlabel"
    if (label.empty()) fail(path, ":", lineno, ": empty ", f.answer, " after the last tab");
    if (text.empty()) fail(path, ":", lineno, ": empty ", f.text, " before the tab");
    out.push_back(Example{std::move(text), std::move(label), int(lineno)});
  }
  return out;
}

std::vector<Example> parse_jsonl(const std::vector<std::string>& lines, size_t n,
                                 const std::string& path, const ExampleFields& f) {
  using nlohmann::json;
  std::vector<Example> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    size_t lineno = i + 1;
    check_utf8(lines[i], path, lineno);
    const json obj = parse_json(lines[i], str(path, ":", lineno));
    if (!obj.is_object()) fail(path, ":", lineno, ": expected a JSON object, got ", obj.type_name());
    auto text = obj.find(f.text);
    if (text == obj.end()) fail(path, ":", lineno, ": missing field \"", f.text, "\"");
    if (!text->is_string())
      fail(path, ":", lineno, ": field \"", f.text, "\" must be a string, got ", text->type_name());
    auto label = obj.find(f.answer);
    if (label == obj.end()) fail(path, ":", lineno, ": missing field \"", f.answer, "\"");
    std::string label_str;
    if (label->is_string()) {
      label_str = label->get<std::string>();
    } else if (f.integer_answer && label->is_number_integer()) {
      label_str = label->dump();  // decimal digits, with '-' for negatives
    } else {
      fail(path, ":", lineno, ": field \"", f.answer, "\" must be a string",
           f.integer_answer ? " or an integer" : "", ", got ",
           label->is_number_float() ? std::string("a non-integer number") : label->type_name());
    }
    std::string text_str = text->get<std::string>();
    if (text_str.empty()) fail(path, ":", lineno, ": empty \"", f.text, "\"");
    if (label_str.empty()) fail(path, ":", lineno, ": empty \"", f.answer, "\"");
    out.push_back(Example{std::move(text_str), std::move(label_str), int(lineno)});
  }
  return out;
}

std::string format_of(const std::string& path, const std::string& format) {
  if (format == "tsv" || format == "jsonl") return format;
  if (format != "auto")
    fail(path, ": unknown data format '", format, "' (task.format must be auto, tsv or jsonl)");
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (ext == ".tsv" || ext == ".txt") return "tsv";
  if (ext == ".jsonl" || ext == ".json") return "jsonl";
  fail(path, ": cannot tell the data format from the extension '", ext,
       "'; set task.format to tsv or jsonl");
}

}  // namespace

std::vector<Example> read_dataset(const std::string& path, const std::string& format,
                                  const ExampleFields& fields) {
  std::string fmt = format_of(path, format);
  std::vector<std::string> lines = read_lines(path);
  size_t n = content_lines(lines, path);
  std::vector<Example> out =
      fmt == "tsv" ? parse_tsv(lines, n, path, fields) : parse_jsonl(lines, n, path, fields);
  if (out.empty()) fail(path, ": no examples in the file");
  return out;
}

void check_labels(const std::vector<Example>& examples, const std::vector<std::string>& allowed,
                  const std::string& path) {
  std::set<std::string> ok(allowed.begin(), allowed.end());
  for (const Example& ex : examples) {
    if (ok.count(ex.label)) continue;
    std::string list;
    for (const std::string& a : allowed) list += (list.empty() ? "'" : ", '") + a + "'";
    fail(path, ":", ex.line, ": label '", ex.label, "' is not one of the task's labels (", list,
         "); add it to task.labels or fix the data");
  }
}

void check_labels(const std::vector<Example>& examples,
                  const std::vector<std::pair<std::string, std::string>>& verbalizer, const std::string& path) {
  std::vector<std::string> allowed;
  for (const auto& [label, word] : verbalizer) allowed.push_back(label);
  check_labels(examples, allowed, path);
}

}  // namespace sptrain
