// Harness: the YAML configuration and its --set overrides (src/config).
// Input: the YAML text, then each --set argument, separated by '\0'.
// Checked: an error names the file ("fuzz.yaml") or the --set argument; a
// configuration that loads is written by dump_config and reads back equal.
#include "fuzz_util.hpp"
#include "sptrain/config/load.hpp"

using namespace sptrain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string_view> parts = fuzz::split_parts(fuzz::as_text(data, size));
  const std::string yaml(parts[0]);
  const std::vector<std::string> overrides(parts.begin() + 1, parts.end());
  const std::string source = "fuzz.yaml";
  Config config;
  try {
    config = parse_config(yaml, source, overrides);
  } catch (const Error& e) {
    const std::string_view m = e.what();
    if (m.substr(0, source.size()) != source && m.substr(0, 6) != "--set ")
      fuzz::bug(std::string("error message names neither the file nor the --set argument: ") + e.what());
    return 0;
  }
  const std::string dumped = dump_config(config);
  try {
    if (!(parse_config(dumped, source) == config))
      fuzz::bug("dump_config does not read back to the same configuration:\n" + dumped);
  } catch (const Error& e) {
    fuzz::bug("dump_config wrote a configuration that does not load (" + std::string(e.what()) + "):\n" + dumped);
  }
  return 0;
}
