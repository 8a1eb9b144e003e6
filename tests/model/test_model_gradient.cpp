// The whole model's loss and prompt gradient against finite differences, in
// double precision, for both families, both losses, sequences of different
// lengths in one packed batch.
#include <gtest/gtest.h>

#include "../support/test_util.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/model/stage.hpp"

namespace sptrain {
namespace {

struct Case {
  Family family;
  LossKind loss;
};

class ModelGradient : public ::testing::TestWithParam<Case> {};

TEST_P(ModelGradient, PromptGradientMatchesFiniteDifferences) {
  const Case cs = GetParam();
  const ModelConfig mc = test::tiny_config(cs.family);
  const std::string path = test::temp_path(std::string("grad_") + family_name(cs.family) + ".h5");
  write_random_model(path, mc, 7, 0.3, nullptr);
  h5::File file = h5::File::open_read(path);
  const ModelConfig config = read_model_config(file);

  CpuBackend be(1);
  SoloGroup tp(CommKind::Tensor, nullptr);
  ModelContext ctx{be, tp, DType::F64, DType::F64};
  const int P = 3;
  HeadSpec head{cs.loss, {7, 11, 3}};
  StageShape shape;
  shape.train = Capacity{64, 20};
  shape.train_seqs = 4;
  shape.eval = Capacity{64, 20};
  shape.eval_seqs = 4;
  Stage stage(ctx, config, file, plan_stage(config.n_layers, 1, 0, {}), head, shape);

  // Three examples of lengths 5, 9 and 2 text tokens.
  std::vector<EncodedExample> ex = {{{1, 2, 3, 4, 5}, 0, 7},
                                    {{9, 8, 7, 6, 5, 4, 3, 2, 1}, 2, 3},
                                    {{30, 31}, 1, 11}};
  std::vector<const EncodedExample*> ptrs = {&ex[0], &ex[1], &ex[2]};
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

INSTANTIATE_TEST_SUITE_P(AllFamilies, ModelGradient,
                         ::testing::Values(Case{Family::Llama, LossKind::Labels},
                                           Case{Family::Llama, LossKind::Vocab},
                                           Case{Family::Gpt, LossKind::Labels},
                                           Case{Family::Gpt, LossKind::Vocab}),
                         [](const auto& info) {
                           return std::string(family_name(info.param.family)) +
                                  (info.param.loss == LossKind::Labels ? "_labels" : "_vocab");
                         });

}  // namespace
}  // namespace sptrain
