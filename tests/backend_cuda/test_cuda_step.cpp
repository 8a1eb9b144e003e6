// A whole training step with backend: cuda (train_step) against the same
// steps on the CPU back end: the loss, accuracy and gradient norm come back
// in one copy per step and the update runs on the device, so from the
// second step on the host waits exactly once a step; the numbers agree with
// the CPU's to bf16 accuracy; a non-finite gradient skips the update on the
// device; the optimizer state a checkpoint reads comes back from the device.
#include <cmath>

#include "../support/train_env.hpp"
#include "cuda_test_util.hpp"
#include "sptrain/model/random_model.hpp"
#include "sptrain/train/prompt_state.hpp"
#include "sptrain/train/sampler.hpp"
#include "sptrain/train/train_step.hpp"
#ifdef SPTRAIN_CUDA_EMULATED
#include <cuda_runtime.h>  // dim3, which emu.hpp uses

#include "emu.hpp"
#endif

namespace sptrain {
namespace {

using namespace cuda_test;

struct StepsRun {
  std::vector<StepResult> steps;
  std::vector<int64_t> waits;  // the back end's host waits during each step (CUDA only)
  std::vector<int64_t> runtime_waits;  // the same, counted by the emulated runtime
  std::vector<float> prompt;
  std::vector<NamedState> state;
};

Config step_config(const std::string& backend, const std::string& optimizer, const std::string& loss) {
  const std::string model = test::tiny_model(Family::Llama, "step_model.h5", 2, 7, 32);
  const std::string data = test::sst2_subset("train", 24, "step_train.tsv");
  Config c = test::tiny_config_for(model, data, "", test::temp_path("step_run"));
  c.backend = backend;
  c.optim.name = optimizer;
  c.optim.lr = optimizer == "adamw" ? 0.02 : 0.05;
  c.optim.clip_grad_norm = 0.5;
  c.task.loss = loss;
  c.train.batch_size = 8;
  c.train.micro_batch_size = 4;
#ifdef SPTRAIN_CUDA_EMULATED
  // The emulator runs blocks one at a time: short rows and a small batch keep
  // a step to seconds there, through the same code.
  c.task.template_text = "{text}:";
  c.task.max_length = 12;
  c.train.batch_size = 4;
  c.train.micro_batch_size = 2;
#endif
  validate_config(c);
  return c;
}

// `steps` steps; at step nan_step (if any) one prompt value is NaN first.
StepsRun run_steps(const Config& c, int steps, int nan_step = 0) {
  Session s(c, make_solo_grid(), SessionMode::Train);
  Rng rng(c.train.seed);
  start_prompt(s, rng);
  auto optimizer = make_prompt_optimizer(s);
  DataSampler sampler(int64_t(s.data.train.size()), c.train.seed, c.train.shuffle);
  auto* gpu = dynamic_cast<CudaBackend*>(s.backend.get());
  StepsRun run;
  std::vector<int64_t> batch;
  for (int step = 1; step <= steps; ++step) {
    sampler.next(c.train.batch_size, batch);
    if (step == nan_step) s.prompt->values()[5] = std::numeric_limits<float>::quiet_NaN();
    const int64_t before = gpu ? gpu->host_waits() : 0;
#ifdef SPTRAIN_CUDA_EMULATED
    const int64_t runtime_before = emu::host_waits();
#endif
    run.steps.push_back(train_step(s, *optimizer, batch, c.optim.lr));
    if (gpu) run.waits.push_back(gpu->host_waits() - before);
#ifdef SPTRAIN_CUDA_EMULATED
    run.runtime_waits.push_back(emu::host_waits() - runtime_before);
#endif
  }
  run.prompt = s.prompt->values();
  run.state = optimizer->state();
  return run;
}

double relative(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    n += double(b[i]) * b[i];
  }
  return std::sqrt(d / std::max(n, 1e-30));
}

class CudaStep : public GpuTest,
                 public ::testing::WithParamInterface<std::pair<const char*, const char*>> {};

TEST_P(CudaStep, WaitsOnceAndMatchesTheCpu) {
  const auto [optimizer, loss] = GetParam();
  constexpr int kSteps = 4;
  const StepsRun gpu = run_steps(step_config("cuda", optimizer, loss), kSteps);
  const StepsRun cpu = run_steps(step_config("cpu", optimizer, loss), kSteps);
  // The first step also uploads the initial prompt; every later one waits once.
  for (int k = 1; k < kSteps; ++k) {
    EXPECT_EQ(gpu.waits[size_t(k)], 1) << "host waits in step " << k + 1;
#ifdef SPTRAIN_CUDA_EMULATED
    EXPECT_EQ(gpu.runtime_waits[size_t(k)], 1) << "waits the emulated runtime saw in step " << k + 1;
#endif
  }
  // bf16 activations against f32: sanity bounds, as for the whole-model tests
  // (docs/cuda.md, "Tolerances": the gradient drifts up to ~8% on tiny random
  // models); the measured differences are printed for the first GPU run.
  for (int k = 0; k < kSteps; ++k) {
    const StepResult &g = gpu.steps[size_t(k)], &c = cpu.steps[size_t(k)];
    SCOPED_TRACE(str("step ", k + 1));
    EXPECT_NEAR(g.loss, c.loss, 2e-2 * c.loss);
    EXPECT_NEAR(g.grad_norm, c.grad_norm, 1.5e-1 * c.grad_norm);
    EXPECT_FALSE(g.skipped);
    EXPECT_EQ(g.text_rows, c.text_rows);
    std::printf("[ measured ] %s/%s step %d: loss %.3e, grad norm %.3e relative difference\n",
                optimizer, loss, k + 1, std::abs(g.loss - c.loss) / c.loss,
                std::abs(g.grad_norm - c.grad_norm) / c.grad_norm);
  }
  const double prompt_diff = relative(gpu.prompt, cpu.prompt);
  std::printf("[ measured ] %s/%s prompt after %d steps: %.3e relative difference\n", optimizer,
              loss, kSteps, prompt_diff);
  EXPECT_LT(prompt_diff, 1e-1) << "prompt after " << kSteps << " steps";
  ASSERT_EQ(gpu.state.size(), cpu.state.size());
  for (size_t i = 0; i < gpu.state.size(); ++i) {
    EXPECT_EQ(gpu.state[i].name, cpu.state[i].name);
    EXPECT_EQ(gpu.state[i].shape, cpu.state[i].shape);
    EXPECT_LT(relative(gpu.state[i].values, cpu.state[i].values), 3e-1) << gpu.state[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, CudaStep,
                         ::testing::Values(std::make_pair("adamw", "labels"),
                                           std::make_pair("adafactor", "vocab")));

// The other prompt methods keep the loss on the device and update on the
// host (docs/cuda.md), and a generate task's loss covers every target
// token: the same steps on the GPU and the CPU, with the bounds above.
struct Variant {
  const char* name;
  const char* method;
  const char* encoder;
  bool generate;
};

Config variant_config(const std::string& backend, const Variant& v) {
  Config c = step_config(backend, "adamw", "labels");
  c.prompt.method = v.method;
  c.prompt.encoder = v.encoder;
  c.prompt.encoder_hidden = 16;
  if (v.generate) {
    // A model whose vocabulary has an end-of-sequence token.
    static const std::string model = [] {
      ModelConfig m = test::tiny_config(Family::Llama);
      m.d_model = 32;
      m.head_dim = 32 / m.n_heads;
      m.d_ffn = 64;
      m.vocab_size = 257;
      m.max_positions = 128;
      const std::string path = test::temp_path("step_generate_model.h5");
      const Tokenizer tok = test::bytes_with_eos();
      write_random_model(path, m, 7, 0.2, [&](h5::File& f) { tok.save(f); });
      return path;
    }();
    c.model.path = model;
    c.task.kind = "generate";
    c.task.loss = "vocab";
    c.task.labels.clear();
    c.task.train = test::generate_data(24, 0, "step_generate_train.tsv");
    c.task.template_text = "Q: {text}\nA: ";
    c.task.max_length = 24;
    c.task.max_target_length = 12;
  }
  validate_config(c);
  return c;
}

class CudaMethodStep : public GpuTest, public ::testing::WithParamInterface<Variant> {};

TEST_P(CudaMethodStep, MatchesTheCpu) {
  const Variant& v = GetParam();
  constexpr int kSteps = 3;
  const StepsRun gpu = run_steps(variant_config("cuda", v), kSteps);
  const StepsRun cpu = run_steps(variant_config("cpu", v), kSteps);
  for (int k = 0; k < kSteps; ++k) {
    const StepResult &g = gpu.steps[size_t(k)], &c = cpu.steps[size_t(k)];
    SCOPED_TRACE(str(v.name, " step ", k + 1));
    EXPECT_EQ(g.targets, c.targets);
    EXPECT_NEAR(g.loss, c.loss, 2e-2 * c.loss);
    EXPECT_NEAR(g.grad_norm, c.grad_norm, 1.5e-1 * c.grad_norm);
    EXPECT_FALSE(g.skipped);
    std::printf("[ measured ] %s step %d: loss %.3e, grad norm %.3e relative difference\n", v.name,
                k + 1, std::abs(g.loss - c.loss) / c.loss, std::abs(g.grad_norm - c.grad_norm) / c.grad_norm);
  }
  EXPECT_LT(relative(gpu.prompt, cpu.prompt), 1e-1) << "parameters after " << kSteps << " steps";
}

INSTANTIATE_TEST_SUITE_P(Methods, CudaMethodStep,
                         ::testing::Values(Variant{"p_tuning_lstm", "p_tuning", "lstm", false},
                                           Variant{"deep", "deep", "mlp", false},
                                           Variant{"generate", "prompt_tuning", "mlp", true}),
                         [](const ::testing::TestParamInfo<Variant>& i) { return std::string(i.param.name); });

TEST_F(GpuTest, ANonFiniteGradientSkipsTheUpdateOnTheDevice) {
  const Config c = step_config("cuda", "adamw", "labels");
  const StepsRun before = run_steps(c, 1);
  const StepsRun run = run_steps(c, 2, /*nan_step=*/2);
  ASSERT_EQ(run.steps.size(), 2u);
  EXPECT_FALSE(run.steps[0].skipped);
  EXPECT_TRUE(run.steps[1].skipped);
  EXPECT_FALSE(std::isfinite(run.steps[1].grad_norm));
  // Everything but the NaN value is what the first step left.
  for (size_t i = 0; i < run.prompt.size(); ++i)
    if (i != 5) {
      ASSERT_EQ(run.prompt[i], before.prompt[i]) << "value " << i << " changed";
    }
  EXPECT_EQ(run.state[0].values, before.state[0].values) << "the optimizer state moved";
}

}  // namespace
}  // namespace sptrain
