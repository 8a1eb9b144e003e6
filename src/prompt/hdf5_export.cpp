#include "sptrain/prompt/hdf5_export.hpp"

#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"
#include "sptrain/io/h5.hpp"

namespace sptrain {
namespace {
// 1: a prompt [P, d_model]; 2: a deep prompt (`prefix`), which a build
// that reads only 1 refuses by its version rather than by a missing dataset.
constexpr int64_t kFormatVersion = 1;
constexpr int64_t kDeepFormatVersion = 2;
constexpr const char* kPrefix = "prefix";
}  // namespace

ExportResult export_hdf5(const StoredPrompt& p, const std::string& out) {
  check_prompt_exportable(p);
  write_file_atomically(out, [&](const std::string& tmp) {
    h5::File f = h5::File::create(tmp);
    f.set_attr("/", "format", kHdf5PromptFormat);
    f.set_attr("/", "format_version", p.deep() ? kDeepFormatVersion : kFormatVersion);
    f.set_attr("/", "prompt_length", p.rows);
    if (p.deep()) {
      f.set_attr("/", "prompt_method", "deep");
      f.set_attr("/", "prefix_layers", p.prefix_layers);
      f.set_attr("/", "prefix_cols", p.prefix_cols);
    } else {
      f.set_attr("/", "d_model", p.cols);
    }
    f.set_attr("/", "task_max_length", int64_t(p.has_task ? p.task_max_length : 0));
    write_prompt_metadata(f, p);
    if (p.has_task && p.task_kind == "generate") {  // absent: a classify task
      f.set_attr("/", "task_kind", p.task_kind);
      f.set_attr("/", "task_max_target_length", int64_t(p.task_max_target_length));
    }
    if (p.deep())
      f.write(kPrefix, DType::F32, Shape{p.prefix_layers, p.rows, p.prefix_cols}, p.prefix.data());
    else
      f.write("prompt", DType::F32, Shape{p.rows, p.cols}, p.values.data());
    f.close();  // checked: a full disk fails here, before the rename
  });
  const int64_t values = p.deep() ? p.prefix_layers * p.rows * p.prefix_cols : p.rows * p.cols;
  return ExportResult{{out}, file_size_of(out), values * 4};
}

StoredPrompt read_hdf5_export(h5::File& f) {
  const std::string& path = f.path();
  const int64_t version = f.attr_int("/", "format_version");
  SPT_CHECK(version == kFormatVersion || version == kDeepFormatVersion, path, ": prompt export format_version ",
            version, " is not supported (this build reads ", kFormatVersion, " and ", kDeepFormatVersion, ")");
  StoredPrompt p;
  p.path = path;
  p.format = "hdf5";
  if (version == kDeepFormatVersion) {
    const std::string method = f.has_attr("/", "prompt_method") ? f.attr_string("/", "prompt_method") : "";
    SPT_CHECK(method == "deep", path, ": format_version 2 with prompt_method '", method, "' (2 is a deep prompt)");
    const h5::DatasetInfo xi = f.info(kPrefix);
    SPT_CHECK(xi.shape.rank == 3 && xi.shape[0] >= 1 && xi.shape[1] >= 1 && xi.shape[2] >= 1, path,
              ": dataset 'prefix' must be 3-D [layers, P, 2 x kv heads x head_dim]");
    p.prefix_layers = xi.shape[0];
    p.rows = xi.shape[1];
    p.prefix_cols = xi.shape[2];
    SPT_CHECK(f.attr_int("/", "prompt_length") == p.rows && f.attr_int("/", "prefix_layers") == p.prefix_layers &&
                  f.attr_int("/", "prefix_cols") == p.prefix_cols,
              path, ": attributes prompt_length/prefix_layers/prefix_cols disagree with the 'prefix' dataset [",
              p.prefix_layers, ", ", p.rows, ", ", p.prefix_cols, "]");
    SPT_CHECK(xi.dtype == DType::F32, path, ": dataset 'prefix' holds ", dtype_name(xi.dtype), ", not f32");
    p.prefix.resize(size_t(p.prefix_layers * p.rows * p.prefix_cols));
    f.read(kPrefix, DType::F32, p.prefix.data());
  } else {
    const h5::DatasetInfo info = f.info("prompt");
    SPT_CHECK(info.shape.rank == 2 && info.shape[0] >= 1 && info.shape[1] >= 1, path,
              ": dataset 'prompt' must be 2-D [P, d_model]");
    p.rows = info.shape[0];
    p.cols = info.shape[1];
    SPT_CHECK(f.attr_int("/", "prompt_length") == p.rows && f.attr_int("/", "d_model") == p.cols, path,
              ": attributes prompt_length/d_model disagree with the 'prompt' dataset [", p.rows, ", ",
              p.cols, "]");
    SPT_CHECK(info.dtype == DType::F32, path, ": dataset 'prompt' holds ", dtype_name(info.dtype), ", not f32");
    p.values.resize(size_t(p.rows * p.cols));
    f.read("prompt", DType::F32, p.values.data());
  }
  static_cast<PromptMetadata&>(p) = read_prompt_metadata(f);
  const int64_t max_length = f.attr_int("/", "task_max_length");
  SPT_CHECK(max_length >= 0 && max_length <= kMaxRows, path, ": attribute 'task_max_length' is ",
            max_length, " (0 to ", kMaxRows, ")");
  p.task_max_length = int(max_length);
  if (f.has_attr("/", "task_kind")) {  // absent: a classify task
    p.task_kind = f.attr_string("/", "task_kind");
    SPT_CHECK(p.task_kind == "generate", path, ": attribute 'task_kind' is '", p.task_kind,
              "' (an export records only 'generate')");
    const int64_t max_target = f.attr_int("/", "task_max_target_length");
    SPT_CHECK(max_target >= 1 && max_target <= kMaxRows, path, ": attribute 'task_max_target_length' is ",
              max_target, " (1 to ", kMaxRows, ")");
    p.task_max_target_length = int(max_target);
  }
  p.has_task = (p.task_kind == "generate" || !p.labels.empty()) && p.task_max_length > 0;
  return p;
}

}  // namespace sptrain
