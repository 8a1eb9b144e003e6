#include "sptrain/prompt/export.hpp"

#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"
#include "sptrain/io/npy.hpp"

namespace sptrain {

ExportFormat parse_export_format(const std::string& name) {
  if (name == "hdf5") return ExportFormat::Hdf5;
  if (name == "npy") return ExportFormat::Npy;
  if (name == "peft") return ExportFormat::Peft;
  fail("unknown export format '", name, "' (hdf5, npy or peft)");
}

const char* export_format_name(ExportFormat f) {
  switch (f) {
    case ExportFormat::Hdf5: return "hdf5";
    case ExportFormat::Npy: return "npy";
    case ExportFormat::Peft: return "peft";
  }
  return "?";
}

ExportResult export_npy(const StoredPrompt& p, const std::string& out, const std::string& dtype) {
  check_prompt_exportable(p);
  // A .npy file is one bare array: nowhere to say which axis is the layer,
  // where the keys end or which model it is for (docs/export.md).
  SPT_CHECK(!p.deep(), p.path, ": a deep prompt (keys and values [", p.prefix_layers, ", ", p.rows, ", ",
            p.prefix_cols, "]) is not exported as npy; use --format hdf5 (h5py reads its 'prefix') or "
            "--format peft");
  SPT_CHECK(dtype == "f32" || dtype == "bf16", "npy dtype '", dtype, "' (f32 or bf16)");
  const int64_t value_bytes = npy::write_matrix(out, p.values.data(), p.rows, p.cols, dtype == "bf16");
  return ExportResult{{out}, file_size_of(out), value_bytes};
}

}  // namespace sptrain
