#pragma once
// Internal to src/config: the table of YAML keys of a Config, and a record of
// where each value came from (file line or --set) for error messages.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sptrain/config/config.hpp"

namespace sptrain::config_detail {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A pointer to one field of a Config; the alternative says the YAML type it takes.
using FieldRef = std::variant<std::string*, int*, double*, bool*, std::uint64_t*,
                              std::vector<int>*, Labels*>;

struct Field {
  std::string path;  // YAML key path, e.g. "optim.adafactor.eps1"
  FieldRef ref;
};

// Every key of `config`, grouped by section, in the order dump_config writes them.
std::vector<Field> fields_of(Config& config);

// Questions about key paths ("" is the top level).
bool is_field(const std::string& path);
bool is_section(const std::string& path);
bool is_labels_field(const std::string& path);
bool is_string_field(const std::string& path);

// " (did you mean optim.lr?)" for an unknown `key` inside section `section`,
// or "" when nothing known is close.
std::string did_you_mean(const std::string& section, const std::string& key);

// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string join_path(const std::string& section, const std::string& key);

// Where each value came from: "x.yaml:12" or "--set optim.lr=0.1".
class Origins {
 public:
  explicit Origins(std::string source) : source_(std::move(source)) {}

  void set(const std::string& path, std::string where) { where_[path] = std::move(where); }
  bool has(const std::string& path) const { return where_.count(path) != 0; }

  // The origin of `path`, else of its nearest recorded parent, else the source name.
  const std::string& of(const std::string& path) const;
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::map<std::string, std::string> where_;
};

// Ranges, allowed values and cross-key rules; errors say where the value came from.
void validate(const Config& config, const Origins& origins);

// Shortest text that reads back as the same double ("0.01", "1e-08").
std::string format_number(double value);

}  // namespace sptrain::config_detail
