#pragma once
// The prompt checkpoint: everything needed to continue a run exactly (prompt,
// optimizer state, data position, RNG) and to check it belongs to the model
// and task at hand. One HDF5 file; docs/formats.md ("Prompt checkpoint")
// gives the layout.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sptrain/io/named_state.hpp"

namespace sptrain::h5 {
class File;
}

namespace sptrain {

struct Checkpoint {
  int64_t step = 0;  // optimizer steps done (restores Optimizer::step_count)
  // prompt.method of the run: prompt_tuning, p_tuning or deep (docs/methods.md).
  std::string prompt_method = "prompt_tuning";
  // The input rows the model reads (prompt_tuning, p_tuning): [prompt_rows,
  // prompt_cols] fp32, row-major; empty for deep prompts.
  std::vector<float> prompt;
  int64_t prompt_rows = 0, prompt_cols = 0;
  // A deep prompt's keys and values as the model reads them: [prefix_layers,
  // prefix_rows, prefix_cols], per row the keys (after RoPE) of every kv head
  // then their values; empty otherwise.
  std::vector<float> prefix;
  int64_t prefix_layers = 0, prefix_rows = 0, prefix_cols = 0;
  // The trainable tensors the prompt or prefix is computed from, when they
  // are not the prompt or prefix itself (the p-tuning encoder, prefix
  // tuning's MLP), by name.
  std::vector<NamedState> parameters;
  std::vector<NamedState> optimizer;  // Optimizer::state()
  std::string optimizer_name;
  // Data position: the sampler continues from here.
  int64_t epoch = 0;
  int64_t epoch_position = 0;  // examples consumed in this epoch
  std::vector<uint64_t> rng_state;  // opaque words of the run's RNG
  std::string config_yaml;          // the resolved config the run used
  std::string model_fingerprint;    // the model file's `fingerprint` attribute
  std::string model_path;
  double eval_accuracy = std::numeric_limits<double>::quiet_NaN();  // last evaluation (NaN: none)
  double eval_loss = std::numeric_limits<double>::quiet_NaN();
  std::string task_template;
  std::vector<std::pair<std::string, std::string>> labels;  // verbalizer: label value -> word
};

inline constexpr const char* kCheckpointFormat = "sptrain-prompt-checkpoint";
inline constexpr int64_t kCheckpointFormatVersion = 1;

// Creates the folder if needed and writes the file with write_file_atomically
// (io/file.hpp): `path` is either the old file or the complete new one.
void write_checkpoint(const std::string& path, const Checkpoint& ckpt);

// Reads and checks a checkpoint; fails clearly on a missing file, a file that
// is not HDF5 (or truncated), another format or a newer version, or a missing
// or mis-shaped dataset.
Checkpoint read_checkpoint(const std::string& path);

// The verbalizer (label value -> word) as checkpoints and HDF5 prompt exports
// both store it: string datasets verbalizer/labels and verbalizer/words.
using Verbalizer = std::vector<std::pair<std::string, std::string>>;
void write_verbalizer(h5::File& f, const Verbalizer& labels);
// Empty when the file has none; an error naming `path` when the two differ in length.
Verbalizer read_verbalizer(const h5::File& f, const std::string& path);

// "step_000100.h5" (at least six digits; more when the step needs them).
std::string checkpoint_name(int64_t step);

// The path of the checkpoint with the highest step among the complete
// `step_<digits>.h5` files in run_dir (temporaries `*.tmp` are never
// complete); nullopt when there is none or run_dir does not exist.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Deletes all complete step_*.h5 checkpoints in run_dir except the `keep`
// with the highest steps. keep <= 0 keeps everything (never deletes all).
void prune_checkpoints(const std::string& run_dir, int keep);

}  // namespace sptrain
