#pragma once
// Reading a Config from YAML (with --set overrides), checking it, and writing it
// back as YAML. Every error is an sptrain::Error of the form
//   FILE:LINE: KEY.PATH: what is wrong
// or, for a value given on the command line,
//   --set KEY.PATH=VALUE: KEY.PATH: what is wrong
// docs/config.md describes every key.
#include <cstddef>
#include <string>
#include <vector>

#include "sptrain/config/config.hpp"

namespace sptrain {

// Limits on a configuration file that its size alone would not bound
// (docs/config.md): its size, and how deep its YAML may nest (yaml-cpp's own
// guard, reported with this number). Aliases are never expanded: an alias
// names the same node, so an "alias bomb" costs no memory.
inline constexpr size_t kMaxConfigBytes = size_t(1) << 20;
inline constexpr int kMaxYamlDepth = 500;

// Reads the YAML file at `path`, applies `overrides` ("optim.lr=0.01", the
// values of --set) and returns the checked configuration. Relative paths inside
// the file stay as written: they are relative to the current working directory.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The same for YAML text already in memory; `source_name` stands for the file
// name in error messages and becomes Config::source_path.
Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides = {});

// The resolved configuration as YAML: every key, defaults included, such that
// parse_config(dump_config(c), c.source_path) == c for any valid c.
std::string dump_config(const Config& config);

// The range, allowed-value and cross-key checks that parse_config applies, for a
// Config built in code. Errors name the key (no line: there is no file).
void validate_config(const Config& config);

}  // namespace sptrain
