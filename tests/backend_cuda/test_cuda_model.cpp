// The whole frozen model on the GPU against the CPU back end: loss and
// prompt gradient of a tiny random model, both families, both losses, a
// packed batch of random examples (fresh every run, seed printed), with the
// prompt rows shared by the examples and with a copy per example.
//
// In f32 on the GPU every op is the same arithmetic up to summation order:
// over 16 random models the CPU emulation (tests/backend_cuda/emu) measured
// at most 1e-6 in the loss and 4e-6 in the gradient, against bounds of 1e-4
// and 1e-3.
// This is the check of the back end's correctness.
//
// In bf16 the weights themselves are rounded (the CPU keeps the file's f32
// values) and every activation is rounded between ops (about 0.2-0.4% each).
// Tiny random models are poorly conditioned, so the drift varies a lot from
// model to model: over the same 16 models the label scores moved 0.3-10% (of
// their largest magnitude), the prompt gradient 1-8% (relative L2) and the
// loss up to 1%. The bf16 bounds below (25%, 25%, 10%) are sanity bounds
// that a wrong index or a missing term would exceed by far, not a precision
// claim.
#include <cmath>
#include <iostream>

#include "cuda_test_util.hpp"
#include "sptrain/model/stage.hpp"

namespace sptrain {
namespace {

using namespace cuda_test;

struct Case {
  Family family;
  LossKind loss;
};

struct Result {
  double loss = 0;
  std::vector<double> label_scores;
  std::vector<double> dprompt;
  double eval_loss = 0;
};

// Loss (weighted sum over the batch), label scores and prompt gradient of one
// forward and backward on `be`, plus the loss from the evaluation path.
Result run_model(Backend& be, DType act, const ModelConfig& config, const h5::File& file,
                 const HeadSpec& head, const std::vector<EncodedExample>& examples, int P,
                 const std::vector<double>& prompt_values, float weight, bool share_prompt) {
  SoloGroup tp(CommKind::Tensor, nullptr);
  ModelContext ctx{be, tp, act, DType::F32};
  StageShape shape;
  shape.train = Capacity{256, 64};
  shape.train_seqs = 4;
  shape.eval = Capacity{256, 64};
  shape.eval_seqs = 4;
  Stage stage(ctx, config, file, plan_stage(config.n_layers, 1, 0, {}), head, shape);
  std::vector<const EncodedExample*> ptrs;
  for (const auto& e : examples) ptrs.push_back(&e);
  BatchBuilder builder(be, P, 256, 4, share_prompt);
  MicroBatch mb;
  builder.fill(mb, ptrs);
  Buffer prompt = put(be, DType::F32, Shape{P, config.d_model}, prompt_values);
  Buffer dprompt = be.allocate(DType::F32, Shape{P, config.d_model});

  Result r;
  stage.forward(0, mb, prompt);
  for (double l : stage.head_output().loss) r.loss += weight * l;
  r.label_scores = stage.head_output().label_scores;
  stage.backward(0, mb, weight, dprompt);
  r.dprompt = get(be, dprompt);
  stage.forward(-1, mb, prompt);
  for (double l : stage.head_output().loss) r.eval_loss += weight * l;
  return r;
}

double relative_l2(const std::vector<double>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// max |got - want| / max |want|, the measure expect_close bounds.
double max_error(const std::vector<double>& got, const std::vector<double>& want) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / std::max(scale, 1e-300);
}

class CudaModel : public GpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(CudaModel, LossAndPromptGradientMatchCpu) {
  const Case cs = GetParam();
  const ModelConfig mc = test::tiny_config(cs.family);
  const std::string path =
      test::temp_path(std::string("cuda_model_") + family_name(cs.family) + ".h5");
  write_random_model(path, mc, rng_.next(), 0.3, nullptr);
  h5::File file = h5::File::open_read(path);
  const ModelConfig config = read_model_config(file);

  const int32_t label_tokens[3] = {7, 11, 3};
  const HeadSpec head{cs.loss, {7, 11, 3}};
  const int P = random_int(rng_, 1, 4);
  std::vector<EncodedExample> examples(size_t(random_int(rng_, 1, 4)));
  for (auto& e : examples) {
    e.tokens.resize(size_t(random_int(rng_, 1, 12)));
    for (auto& t : e.tokens) t = random_int(rng_, 0, config.vocab_size - 1);
    e.label = random_int(rng_, 0, 2);
    e.label_token = label_tokens[e.label];
  }
  const auto prompt = random_values(rng_, int64_t(P) * config.d_model, 0.5);
  const float weight = float(1.0 / double(examples.size()));
  SCOPED_TRACE(str(family_name(cs.family), cs.loss == LossKind::Labels ? " labels" : " vocab",
                   " P=", P, " examples=", examples.size()));

  for (bool share : {true, false}) {
    SCOPED_TRACE(share ? "shared prompt rows" : "a prompt copy per example");
    const Result want =
        run_model(cpu_, DType::F32, config, file, head, examples, P, prompt, weight, share);
    ASSERT_TRUE(std::isfinite(want.loss));
    const Result f32 =
        run_model(gpu(), DType::F32, config, file, head, examples, P, prompt, weight, share);
    const Result bf =
        run_model(gpu(), DType::BF16, config, file, head, examples, P, prompt, weight, share);
    // The measured differences, to calibrate the bounds on real hardware.
    std::cout << "[ measured ] " << (share ? "shared" : "unshared") << " loss " << want.loss
              << "; |f32 - cpu| " << std::abs(f32.loss - want.loss) << ", |bf16 - cpu| "
              << std::abs(bf.loss - want.loss) << "; gradient relative L2: f32 "
              << relative_l2(f32.dprompt, want.dprompt) << ", bf16 "
              << relative_l2(bf.dprompt, want.dprompt) << "; label scores max |bf16 - cpu| / max |cpu| "
              << max_error(bf.label_scores, want.label_scores) << "\n";

    // f32 on the GPU: the same arithmetic up to summation order.
    EXPECT_NEAR(f32.loss, want.loss, 1e-4 * std::max(1.0, std::abs(want.loss))) << "f32 loss";
    expect_close(f32.label_scores, want.label_scores, 1e-4, "f32 label scores");
    EXPECT_LE(relative_l2(f32.dprompt, want.dprompt), 1e-3) << "f32 prompt gradient";
    EXPECT_NEAR(f32.eval_loss, f32.loss, 1e-5 * std::max(1.0, std::abs(f32.loss)))
        << "f32 evaluation path";

    // bf16, the training dtype (see the comment at the top for the bounds).
    EXPECT_NEAR(bf.loss, want.loss, 0.1 * std::max(1.0, std::abs(want.loss))) << "bf16 loss";
    expect_close(bf.label_scores, want.label_scores, 0.25, "bf16 label scores");
    EXPECT_LE(relative_l2(bf.dprompt, want.dprompt), 0.25) << "bf16 prompt gradient";
    EXPECT_NEAR(bf.eval_loss, bf.loss, 1e-3 * std::max(1.0, std::abs(bf.loss)))
        << "bf16 evaluation path";
  }
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, CudaModel,
                         ::testing::Values(Case{Family::Llama, LossKind::Labels},
                                           Case{Family::Llama, LossKind::Vocab},
                                           Case{Family::Gpt, LossKind::Labels},
                                           Case{Family::Gpt, LossKind::Vocab}),
                         [](const auto& param_info) {
                           return std::string(family_name(param_info.param.family)) +
                                  (param_info.param.loss == LossKind::Labels ? "_labels" : "_vocab");
                         });

}  // namespace
}  // namespace sptrain
