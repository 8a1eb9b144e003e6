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

// The verbalizer: label value -> word, in the task's label order.
using Verbalizer = std::vector<std::pair<std::string, std::string>>;

// What a prompt file says about its prompt: the model it belongs to, where it
// was trained, and its task. Checkpoints and hdf5 prompt exports store it the
// same way (write_prompt_metadata, read_prompt_metadata).
struct PromptMetadata {
  std::string model_fingerprint;  // the model file's `fingerprint` attribute ("" = unknown)
  std::string model_path;
  int64_t step = -1;              // optimizer steps done; -1 = unknown
  double eval_accuracy = std::numeric_limits<double>::quiet_NaN();  // last evaluation (NaN: none)
  double eval_loss = std::numeric_limits<double>::quiet_NaN();
  std::string task_template;
  Verbalizer labels;              // label value -> word; empty = no task recorded
};

struct Checkpoint : PromptMetadata {
  Checkpoint() { step = 0; }  // optimizer steps done (restores Optimizer::step_count)
  std::vector<float> prompt;  // [prompt_rows, prompt_cols] fp32, row-major, finite
  int64_t prompt_rows = 0, prompt_cols = 0;
  std::vector<NamedState> optimizer;  // Optimizer::state()
  std::string optimizer_name;
  // Data position: the sampler continues from here.
  int64_t epoch = 0;
  int64_t epoch_position = 0;  // examples consumed in this epoch
  std::vector<uint64_t> rng_state;  // opaque words of the run's RNG
  std::string config_yaml;          // the resolved config the run used
};

inline constexpr const char* kCheckpointFormat = "sptrain-prompt-checkpoint";
inline constexpr int64_t kCheckpointFormatVersion = 1;

// Creates the folder if needed and writes the file with write_file_atomically
// (io/file.hpp): `path` is either the old file or the complete new one.
void write_checkpoint(const std::string& path, const Checkpoint& ckpt);

// Reads and checks a checkpoint; fails clearly on a missing file, a file that
// is not HDF5 (or truncated), a damaged file (h5::File's checksum), another
// format or a newer version, a missing or mis-shaped dataset, or a prompt
// that is not floating point or not finite.
Checkpoint read_checkpoint(const std::string& path);

// The metadata as root attributes (model_fingerprint, model_path, step,
// eval_accuracy, eval_loss, task_template) and the string datasets
// verbalizer/labels and verbalizer/words (docs/formats.md).
void write_prompt_metadata(h5::File& f, const PromptMetadata& m);
// Reads it back and checks it (a fingerprint is empty or 16 hex digits, the
// step >= -1, an accuracy in [0, 1], a loss >= 0, labels and words of the same
// count); errors name the file and the attribute.
PromptMetadata read_prompt_metadata(const h5::File& f);

// "step_000100.h5" (at least six digits; more when the step needs them).
std::string checkpoint_name(int64_t step);

// The path of the checkpoint with the highest step among the complete
// `step_<digits>.h5` files in run_dir (temporaries `*.tmp` are never
// complete); nullopt when there is none or run_dir does not exist.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Deletes all complete step_*.h5 checkpoints in run_dir except the `keep`
// with the highest steps. keep <= 0 keeps everything (never deletes all).
void prune_checkpoints(const std::string& run_dir, int keep);

// What `resume: auto` starts from: the newest checkpoint in run_dir that
// read_checkpoint reads, and the newer ones it cannot read (an empty or
// damaged file), each with the reason.
struct ResumeChoice {
  std::optional<std::string> path;
  int64_t step = -1;  // path's step
  std::vector<std::pair<std::string, std::string>> unreadable;  // path, why
};
ResumeChoice choose_resume_checkpoint(const std::string& run_dir);

// Deletes the temporaries of checkpoint writes that a kill cut short
// (step_*.tmp in run_dir) and returns their paths.
std::vector<std::string> remove_stale_temporaries(const std::string& run_dir);

}  // namespace sptrain
