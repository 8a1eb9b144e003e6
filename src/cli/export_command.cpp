// `sptrain export`: reads a checkpoint (or an hdf5 export) and writes its
// prompt as hdf5, npy or a PEFT folder (a deep prompt: hdf5 or a PEFT
// PREFIX_TUNING folder; docs/export.md).
#include <cstdio>
#include <filesystem>

#include "sptrain/cli/commands.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"
#include "sptrain/io/h5.hpp"
#include "sptrain/model/model_config.hpp"
#include "sptrain/prompt/export.hpp"

namespace sptrain {
namespace fs = std::filesystem;

int run_export(const ExportOptions& o) {
  const ExportFormat format = parse_export_format(o.format);
  SPT_CHECK(format == ExportFormat::Npy || o.dtype == "f32",
            "--dtype ", o.dtype, " applies to --format npy only (hdf5 and peft are f32)");
  refuse_overwrite(o.out, o.checkpoint, "export");
  const StoredPrompt p = read_stored_prompt(o.checkpoint);
  SPT_CHECK(p.format == "checkpoint" || p.format == "hdf5", o.checkpoint, ": a ", p.format,
            " prompt has no metadata to export; give a checkpoint (step_*.h5) or an hdf5 export");

  ExportResult r;
  switch (format) {
    case ExportFormat::Hdf5:
      r = export_hdf5(p, o.out);
      break;
    case ExportFormat::Npy:
      r = export_npy(p, o.out, o.dtype);
      break;
    case ExportFormat::Peft: {
      // adapter_config.json describes the base model: read its dimensions
      // (attributes only, no weights) and check the prompt belongs to it.
      const std::string model_path = o.model.empty() ? p.model_path : o.model;
      SPT_CHECK(!model_path.empty(), o.checkpoint,
                ": no model path recorded; give --model MODEL for the PEFT config");
      std::error_code ec;
      SPT_CHECK(fs::exists(model_path, ec), model_path, ": model file not found",
                o.model.empty() ? " (the path the checkpoint records, relative to where training ran)" : "",
                "; a PEFT export reads num_layers and num_attention_heads from it: give --model MODEL");
      const h5::File mf = h5::File::open_read(model_path);
      const ModelConfig m = read_model_config(mf);
      check_prompt_matches_model(p, m, model_path);
      PeftModelInfo info{m.n_layers, m.n_heads, o.base_model.empty() ? m.name : o.base_model, m.n_kv_heads,
                         m.head_dim};
      r = export_peft(p, o.out, info);
      break;
    }
  }
  const std::string shape = p.deep() ? str("deep prompt [", p.prefix_layers, " x ", p.rows, " x ", p.prefix_cols, "]")
                                     : str("prompt [", p.rows, " x ", p.cols, "]");
  std::printf("exported %s of %s as %s%s to %s: %lld bytes (%lld bytes of values)\n", shape.c_str(),
              o.checkpoint.c_str(),
              export_format_name(format),
              format == ExportFormat::Npy && o.dtype == "bf16" ? " (bf16 bits as uint16)" : "",
              o.out.c_str(), static_cast<long long>(r.bytes), static_cast<long long>(r.value_bytes));
  return 0;
}

}  // namespace sptrain
