// The whole model's loss and prompt gradient against finite differences, in
// double precision, for both families, both losses, sequences of different
// lengths in one packed batch.
#include <gtest/gtest.h>

#include "../support/test_util.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/model/stage.hpp"
#include "sptrain/optim/optimizer.hpp"

namespace sptrain {
namespace {

struct Case {
  Family family;
  LossKind loss;
  int head_dim = 0;  // 0: tiny_config's (d_model / heads); else heads of another width
};

class ModelGradient : public ::testing::TestWithParam<Case> {};

// One stage holding the whole of a tiny random model of the case's family on
// the CPU back end, computing in `dtype`, with room for 4 examples in `rows` rows.
struct TinyModel {
  CpuBackend be{1};
  SoloGroup tp{CommKind::Tensor, nullptr};
  ModelConfig config;
  std::unique_ptr<Stage> stage;

  TinyModel(const Case& cs, DType dtype, uint64_t seed, int64_t rows) {
    ModelConfig mc = test::tiny_config(cs.family);
    if (cs.head_dim > 0) mc.head_dim = cs.head_dim;
    const std::string path = test::temp_path(std::string("model_") + family_name(cs.family) + "_" +
                                             std::to_string(cs.head_dim) + "_" +
                                             std::to_string(seed) + ".h5");
    write_random_model(path, mc, seed, 0.3, nullptr);
    const h5::File file = h5::File::open_read(path);  // the stage reads its weights now
    config = read_model_config(file);
    StageShape shape;
    shape.train = Capacity{rows, 20};
    shape.train_seqs = 4;
    shape.eval = Capacity{rows, 20};
    shape.eval_seqs = 4;
    stage = std::make_unique<Stage>(ModelContext{be, tp, dtype, dtype}, config, file,
                                    plan_stage(config.n_layers, 1, 0, {}),
                                    HeadSpec{cs.loss, {7, 11, 3}}, shape);
  }
};

// Three examples of lengths 5, 9 and 2 text tokens: (tokens, class, label word).
const std::vector<EncodedExample> kExamples = {{{1, 2, 3, 4, 5}, 0, 7},
                                               {{9, 8, 7, 6, 5, 4, 3, 2, 1}, 2, 3},
                                               {{30, 31}, 1, 11}};
const std::vector<const EncodedExample*> kExamplePtrs = {&kExamples[0], &kExamples[1],
                                                         &kExamples[2]};

TEST_P(ModelGradient, PromptGradientMatchesFiniteDifferences) {
  TinyModel m(GetParam(), DType::F64, 7, 64);
  CpuBackend& be = m.be;
  Stage& stage = *m.stage;
  const ModelConfig& config = m.config;
  const int P = 3;
  const auto& ptrs = kExamplePtrs;
  BatchBuilder builder(be, P, 64, 4);
  MicroBatch mb;
  builder.fill(mb, ptrs);

  Rng rng(3);
  Buffer prompt = test::random_tensor(be, DType::F64, Shape{P, config.d_model}, rng, 0.5);
  const float weight = 1.0f / 3.0f;
  auto loss = [&] {
    stage.forward(0, mb, prompt);
    double s = 0;
    for (double l : stage.head_output().loss) s += weight * l;
    return s;
  };
  const double l0 = loss();
  EXPECT_TRUE(std::isfinite(l0));
  Buffer dprompt = be.allocate(DType::F64, Shape{P, config.d_model});
  stage.backward(0, mb, weight, dprompt);
  const auto g = test::to_host(be, dprompt);
  double norm = 0;
  for (double v : g) norm += v * v;
  EXPECT_GT(norm, 1e-8) << "the prompt gradient should not vanish";
  test::expect_gradient(prompt, g, loss, P * config.d_model, 1e-6, "dprompt");

  // The evaluation path (no activations kept) gives the same loss.
  stage.forward(-1, mb, prompt);
  double s = 0;
  for (double l : stage.head_output().loss) s += weight * l;
  EXPECT_NEAR(s, l0, 1e-12);

  // Each example with its own copy of the prompt rows (the layout without
  // sharing) gives the same loss and prompt gradient.
  BatchBuilder unshared(be, P, 64, 4, /*share_prompt=*/false);
  MicroBatch mb2;
  unshared.fill(mb2, ptrs);
  EXPECT_EQ(mb2.seq.num_rows, mb.seq.num_rows + 2 * P);
  stage.forward(0, mb2, prompt);
  double s2 = 0;
  for (double l : stage.head_output().loss) s2 += weight * l;
  EXPECT_NEAR(s2, l0, 1e-12);
  Buffer dprompt2 = be.allocate(DType::F64, Shape{P, config.d_model});
  stage.backward(0, mb2, weight, dprompt2);
  const auto g2 = test::to_host(be, dprompt2);
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g2[i], g[i], 1e-12) << i;
}

// Deep prompts (prefix tuning): every layer's keys and values at the prompt
// rows come from a trainable tensor [layers, P, 2 * kv heads * head_dim];
// its gradient is what attention's backward gathers at those rows. Checked
// against finite differences of the loss, in double; the evaluation path
// and the layout without a shared prompt segment give the same numbers.
TEST_P(ModelGradient, PrefixGradientMatchesFiniteDifferences) {
  TinyModel m(GetParam(), DType::F64, 9, 64);
  CpuBackend& be = m.be;
  Stage& stage = *m.stage;
  const LocalDims& dims = stage.dims();
  const int P = 3, L = m.config.n_layers, W = 2 * dims.kv_heads * dims.head_dim;
  BatchBuilder builder(be, P, 64, 4);
  MicroBatch mb;
  builder.fill(mb, kExamplePtrs);

  Rng rng(4);
  Buffer prefix = test::random_tensor(be, DType::F64, Shape{L, P, W}, rng, 0.5);
  const float weight = 1.0f / 3.0f;
  auto loss_of = [&](int slot, const MicroBatch& batch) {
    stage.forward(slot, batch, PromptInputs(Tensor{}, prefix));
    double s = 0;
    for (double l : stage.head_output().loss) s += weight * l;
    return s;
  };
  auto loss = [&] { return loss_of(0, mb); };
  const double l0 = loss();
  EXPECT_TRUE(std::isfinite(l0));
  Buffer dprefix = be.allocate(DType::F64, Shape{L, P, W});
  stage.backward(0, mb, weight, PromptInputs(Tensor{}, dprefix));
  const auto g = test::to_host(be, dprefix);
  // Every layer's keys and values matter.
  for (int l = 0; l < L; ++l) {
    double norm = 0;
    for (int64_t i = 0; i < int64_t(P) * W; ++i) norm += g[size_t(l * P * W + i)] * g[size_t(l * P * W + i)];
    EXPECT_GT(norm, 1e-10) << "layer " << l << "'s prefix gradient vanished";
  }
  test::expect_gradient(prefix, g, loss, L * P * W, 1e-6, "dprefix");
  // Nothing reaches the prompt rows' input: their keys and values are replaced.
  const auto dx = test::to_host(be, stage.grad(mb.seq.num_rows));
  for (int64_t i = 0; i < int64_t(P) * m.config.d_model; ++i) ASSERT_EQ(dx[size_t(i)], 0.0) << i;

  EXPECT_NEAR(loss_of(-1, mb), l0, 1e-12) << "evaluation path";
  BatchBuilder unshared(be, P, 64, 4, /*share_prompt=*/false);
  MicroBatch mb2;
  unshared.fill(mb2, kExamplePtrs);
  EXPECT_NEAR(loss_of(0, mb2), l0, 1e-12) << "one copy of the prompt rows per example";
  Buffer dprefix2 = be.allocate(DType::F64, Shape{L, P, W});
  stage.backward(0, mb2, weight, PromptInputs(Tensor{}, dprefix2));
  const auto g2 = test::to_host(be, dprefix2);
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g2[i], g[i], 1e-12) << i;
}

// The training curve of the fast path (the prompt's rows computed once per
// micro-batch) against the reference layout (every example with its own copy
// of the prompt rows, as a per-example implementation such as PEFT computes
// it), in float32 as training runs: eight AdamW steps, the loss at every step
// and the final prompt equal within 1e-5 relative.
TEST_P(ModelGradient, SharedPromptTrainsLikeThePerExampleLayoutInFloat32) {
  TinyModel m(GetParam(), DType::F32, 11, 96);
  CpuBackend& be = m.be;
  Stage& stage = *m.stage;
  const ModelConfig& config = m.config;
  const int P = 4, B = 3;
  const auto& ptrs = kExamplePtrs;

  OptimSection oc;
  oc.lr = 0.05;
  // Runs 8 steps from the same initial prompt; returns the losses and the final prompt.
  auto train = [&](bool share_prompt, std::vector<double>& losses) {
    BatchBuilder builder(be, P, 96, 4, share_prompt);
    MicroBatch mb;
    builder.fill(mb, ptrs);
    Rng rng(5);
    Buffer prompt = test::random_tensor(be, DType::F32, Shape{P, config.d_model}, rng, 0.5);
    Buffer grad = be.allocate(DType::F32, Shape{P, config.d_model});
    auto optimizer = make_optimizer(oc, P, config.d_model);
    for (int step = 0; step < 8; ++step) {
      stage.forward(0, mb, prompt);
      double loss = 0;
      for (double l : stage.head_output().loss) loss += l / B;
      losses.push_back(loss);
      be.fill(grad, 0.0);  // backward adds the prompt's gradient
      stage.backward(0, mb, 1.0f / B, grad);
      optimizer->step(prompt.ptr<float>(), grad.ptr<float>(), oc.lr);
    }
    return test::to_host(be, prompt);
  };
  std::vector<double> fast_losses, reference_losses;
  const auto fast = train(true, fast_losses);
  const auto reference = train(false, reference_losses);
  ASSERT_EQ(fast_losses.size(), reference_losses.size());
  for (size_t i = 0; i < fast_losses.size(); ++i)
    EXPECT_NEAR(fast_losses[i], reference_losses[i], 1e-5 * std::abs(reference_losses[i])) << "step " << i;
  EXPECT_LT(fast_losses.back(), fast_losses.front()) << "the prompt should learn";
  double diff = 0, norm = 0;
  for (size_t i = 0; i < fast.size(); ++i) {
    diff = std::max(diff, std::abs(fast[i] - reference[i]));
    norm = std::max(norm, std::abs(reference[i]));
  }
  EXPECT_LE(diff, 1e-5 * norm) << "final prompts differ";
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, ModelGradient,
                         ::testing::Values(Case{Family::Llama, LossKind::Labels},
                                           Case{Family::Llama, LossKind::Vocab},
                                           Case{Family::Gpt, LossKind::Labels},
                                           Case{Family::Gpt, LossKind::Vocab},
                                           // heads wider or narrower than d_model / heads, as in
                                           // one tensor-parallel rank's share of a large model
                                           Case{Family::Llama, LossKind::Labels, 6},
                                           Case{Family::Gpt, LossKind::Labels, 2}),
                         [](const auto& test_info) {
                           const Case& c = test_info.param;
                           return std::string(family_name(c.family)) +
                                  (c.loss == LossKind::Labels ? "_labels" : "_vocab") +
                                  (c.head_dim > 0 ? "_head_dim" + std::to_string(c.head_dim) : "");
                         });

// A head tied to the embeddings, on a stage that also holds them, reads the
// vocabulary's rows from the embedding table instead of loading a second copy
// (the GPT tiny model is tied, the Llama one is not). Its gradient is checked
// above (gpt, vocab loss).
TEST(TiedHead, OneCopyOfTheVocabularyOnASingleStage) {
  for (Family family : {Family::Gpt, Family::Llama}) {
    TinyModel labels({family, LossKind::Labels}, DType::F32, 3, 64);
    TinyModel vocab({family, LossKind::Vocab}, DType::F32, 3, 64);
    const int64_t table = int64_t(vocab.config.vocab_size) * vocab.config.d_model * 4;
    const int64_t extra = vocab.stage->weight_bytes() - labels.stage->weight_bytes();
    EXPECT_EQ(extra, vocab.config.tied_embeddings ? 0 : table) << family_name(family);
  }
}

}  // namespace
}  // namespace sptrain
