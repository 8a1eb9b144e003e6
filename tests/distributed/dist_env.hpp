#pragma once
// Shared pieces of the distributed tests: the layout this mpirun job runs
// (given on the command line, see dist_test_main.cpp), its process grid, the
// tiny models both families are tested with, configurations, and the
// one-rank reference every layout is compared with.
//
// Every rank builds its own copy of each model and data file (same seed, so
// the same bytes) in its own temporary folder: nothing is shared between
// ranks but MPI messages.
#include <mpi.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "../support/train_env.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/optim/optimizer.hpp"
#include "sptrain/prompt/prompt_init.hpp"
#include "sptrain/train/prompt_state.hpp"
#include "sptrain/train/sampler.hpp"
#include "sptrain/train/train_step.hpp"

namespace sptrain::dist {

// The grid of this job: tensor x pipeline from the command line, data from
// the world size. Owned by main(), which frees it before MPI is finalised.
// Sessions take a grid of their own: new_grid() (collective over the world).
const ProcessGrid& grid();
ProcessGrid new_grid();

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// The largest value over all ranks of the job (every rank must call it).
inline double world_max(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return v;
}
inline int64_t world_sum(int64_t v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return v;
}

inline std::string layout_name() {
  const GridLayout& l = grid().layout;
  return "(tp " + std::to_string(l.tensor) + ", pp " + std::to_string(l.pipeline) + ", dp " +
         std::to_string(l.data) + ")";
}

// Tiny models that every tested layout divides: 4 layers (pipeline 4 gets
// one each), 4 query heads (tensor 4 gets one each), FFN widths divisible
// by 4. The llama model has 2 key/value heads, so tensor 2 splits them and
// tensor 4 replicates them (each kv head on two ranks). The vocabulary, 259
// (the byte-level tokenizer's 256 plus 3 unused rows), splits unevenly over
// 2 and 4 ranks, so vocabulary-parallel ranges of different sizes are tested.
//   llama: RMSNorm, RoPE, SwiGLU, grouped-query attention, untied LM head
//   gpt:   LayerNorm with biases, learned positions, GELU, biases, tied LM head
inline ModelConfig model_config(Family family) {
  ModelConfig c = test::tiny_config(family);
  c.n_layers = 4;
  c.d_model = 32;
  c.n_heads = 4;
  c.head_dim = 8;
  c.n_kv_heads = family == Family::Llama ? 2 : 4;
  c.d_ffn = family == Family::Llama ? 48 : 64;
  c.vocab_size = 259;
  c.max_positions = 96;
  return c;
}

inline const char* family_label(Family f) { return f == Family::Llama ? "llama" : "gpt"; }

// The model file of a family (written once per process).
inline const std::string& model_path(Family family) {
  static std::map<Family, std::string> paths;
  auto it = paths.find(family);
  if (it != paths.end()) return it->second;
  const std::string path = test::temp_path(std::string("dist_") + family_label(family) + ".h5");
  const Tokenizer tok = test::bytes_with_eos();  // end-of-sequence for the generate task
  write_random_model(path, model_config(family), 11, 0.2, [&](h5::File& f) { tok.save(f); });
  return paths[family] = path;
}

inline const std::string& train_data() {
  static const std::string path = test::sst2_subset("train", 48, "dist_train.tsv");
  return path;
}
inline const std::string& eval_data() {
  static const std::string path = test::sst2_subset("dev", 12, "dist_eval.tsv");
  return path;
}
// The generate task's lines (test::generate_data): 40 to train on, 7 inputs
// (10 lines, some with two references) to evaluate.
inline const std::string& generate_train_data() {
  static const std::string path = test::generate_data(40, 0, "dist_generate_train.tsv");
  return path;
}
inline const std::string& generate_eval_data() {
  static const std::string path = test::generate_data(7, 40, "dist_generate_eval.tsv");
  return path;
}

// Global batch 8 in micro-batches of 2: 4 micro-batches per step with one
// replica, 2 per replica with two. 5 optimizer steps.
constexpr int kSteps = 5;

// Relative error allowed between a layout and one rank (fp32 sums in another order).
constexpr double kTolerance = 1e-5;

// loss: labels or vocab (the classify task), or generate (the generate task).
inline Config make_config(Family family, const std::string& loss, const std::string& schedule,
                          int tensor, int pipeline, const std::string& run_dir) {
  Config c = test::tiny_config_for(model_path(family), train_data(), eval_data(), run_dir);
  c.task.loss = loss;
  if (loss == "generate") {
    c.task.kind = "generate";
    c.task.loss = "vocab";
    c.task.labels.clear();
    c.task.train = generate_train_data();
    c.task.eval = generate_eval_data();
    c.task.template_text = "Q: {text}\nA: ";
    c.task.max_length = 24;
    c.task.max_target_length = 12;
  }
  c.prompt.length = 4;
  c.train.batch_size = 8;
  c.train.micro_batch_size = 2;
  c.train.eval_batch_size = 4;
  c.train.steps = kSteps;
  c.train.resume = "never";
  c.optim.lr = 0.02;
  c.parallel.tensor = tensor;
  c.parallel.pipeline = pipeline;
  c.parallel.schedule = schedule;
  validate_config(c);
  return c;
}

// ||a - ref||_2 / ||ref||_2 over all elements, in double.
inline double relative_error(const std::vector<float>& a, const std::vector<float>& ref) {
  SPT_CHECK(a.size() == ref.size(), "relative_error: sizes differ (", a.size(), " vs ", ref.size(), ")");
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = double(a[i]) - double(ref[i]);
    diff += e * e;
    norm += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}
inline double relative_error(double a, double ref) {
  return std::abs(a - ref) / std::max(std::abs(ref), 1e-30);
}

// What one run of kSteps training steps produced, step by step.
struct Trajectory {
  std::vector<double> loss;              // mean loss over the global batch
  std::vector<std::vector<float>> grad;  // prompt gradient (after clipping)
  std::vector<float> prompt;             // the prompt after the last step
};

// kSteps of train_step at a constant learning rate from the prompt's
// initializer; `on_step` runs after each step with its batch and result.
// Returns the optimizer (its state, for a checkpoint).
template <typename OnStep>
std::unique_ptr<Optimizer> run_steps(Session& s, OnStep&& on_step) {
  const Config& c = s.config;
  Rng rng(c.train.seed);
  start_prompt(s, rng);
  auto optimizer = make_prompt_optimizer(s);
  DataSampler sampler(int64_t(s.data.train.size()), c.train.seed, c.train.shuffle);
  std::vector<int64_t> batch;
  for (int step = 0; step < kSteps; ++step) {
    sampler.next(c.train.batch_size, batch);
    const StepResult r = train_step(s, *optimizer, batch, c.optim.lr);
    on_step(step, batch, r);
  }
  return optimizer;
}

// The rows and target rows of each of this rank's micro-batches in a step,
// counted here from the examples' token counts: the shared prompt once, then
// each example's tokens and (generate) its target's tokens but the last;
// one target row per example (classify) or one per target token (generate).
inline std::vector<MicroBatchSize> micro_batch_sizes(const Session& s, const std::vector<int64_t>& batch) {
  const Config& c = s.config;
  const int dp = s.parallel->coords().dp, local = s.local_batch(), per_micro = c.train.micro_batch_size;
  std::vector<MicroBatchSize> sizes;
  for (int k = 0; k < local / per_micro; ++k) {
    MicroBatchSize m{c.prompt.length, 0};
    for (int e = 0; e < per_micro; ++e) {
      const EncodedExample& ex = s.data.train[size_t(batch[size_t(dp * local + k * per_micro + e)])];
      const int64_t target = ex.target.empty() ? 1 : int64_t(ex.target.size());
      m.rows += int64_t(ex.tokens.size()) + target - 1;
      m.targets += target;
    }
    sizes.push_back(m);
  }
  return sizes;
}

// The one-rank result for a family and loss (the schedule does not matter
// with one stage), computed in this process with a grid of one rank, which
// makes no MPI calls. Cached: every layout test of the binary compares with it.
inline const Trajectory& reference(Family family, const std::string& loss) {
  static std::map<std::pair<Family, std::string>, Trajectory> cache;
  const auto key = std::make_pair(family, loss);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const Config c = make_config(family, loss, "1f1b", 1, 1, test::temp_path("reference_run"));
  Session s(c, make_solo_grid(), SessionMode::Train);
  Trajectory t;
  run_steps(s, [&](int, const std::vector<int64_t>&, const StepResult& r) {
    t.loss.push_back(r.loss);
    t.grad.push_back(s.prompt->grad());
  });
  t.prompt = s.prompt->values();
  return cache[key] = std::move(t);
}

}  // namespace sptrain::dist
