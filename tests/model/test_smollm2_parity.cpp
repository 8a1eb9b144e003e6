// Next-token logits of the converted SmolLM2-135M-Instruct against Hugging Face
// transformers on the same GGUF (tests/golden/smollm2_logits.h5, written by
// tools/gen_logits_golden.py): an independent implementation of the whole
// forward pass (RoPE order, grouped-query attention, tied head, dequantized weights).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/comm/communicator.hpp"
#include "sptrain/model/stage.hpp"

namespace sptrain {
namespace {

TEST(SmolLM2, NextTokenLogitsMatchTransformers) {
  const std::string model_path = std::string(SPTRAIN_SOURCE_DIR) + "/models/smollm2-135m.h5";
  if (!std::filesystem::exists(model_path))
    GTEST_SKIP() << model_path << " is missing: run tools/fetch_smollm2.sh";
  h5::File golden = h5::File::open_read(std::string(SPTRAIN_SOURCE_DIR) + "/tests/golden/smollm2_logits.h5");
  h5::File file = h5::File::open_read(model_path);
  const ModelConfig config = read_model_config(file);
  const h5::DatasetInfo li = golden.info("logits");
  const int n = int(li.shape[0]), V = int(li.shape[1]);
  ASSERT_EQ(V, config.vocab_size);
  std::vector<float> expected(static_cast<size_t>(n) * static_cast<size_t>(V));
  golden.read("logits", DType::F32, expected.data());

  std::vector<EncodedExample> examples(static_cast<size_t>(n));
  int64_t rows = 0, longest = 0;
  for (int i = 0; i < n; ++i) {
    const std::string name = "ids/" + std::to_string(i);
    examples[size_t(i)].tokens.resize(size_t(golden.info(name).shape[0]));
    golden.read(name, DType::I32, examples[size_t(i)].tokens.data());
    rows += int64_t(examples[size_t(i)].tokens.size());
    longest = std::max<int64_t>(longest, int64_t(examples[size_t(i)].tokens.size()));
  }

  CpuBackend be(2);
  SoloGroup tp(CommKind::Tensor, nullptr);
  ModelContext ctx{be, tp, DType::F32, DType::F32};
  StageShape shape;
  shape.train = Capacity{rows, longest};
  shape.train_seqs = n;
  shape.eval = shape.train;
  shape.eval_seqs = n;
  Stage stage(ctx, config, file, plan_stage(config.n_layers, 1, 0, {}), HeadSpec{LossKind::Vocab, {0, 1}},
              shape);
  std::vector<const EncodedExample*> ptrs;
  for (const auto& e : examples) ptrs.push_back(&e);
  BatchBuilder builder(be, /*prompt_len=*/0, rows, n);
  MicroBatch mb;
  builder.fill(mb, ptrs);
  stage.forward(-1, mb, Tensor{});
  std::vector<float> got(static_cast<size_t>(n) * static_cast<size_t>(V));
  be.copy_to_host(got.data(), stage.vocab_logits(n));

  for (int i = 0; i < n; ++i) {
    const float* a = got.data() + size_t(i) * size_t(V);
    const float* b = expected.data() + size_t(i) * size_t(V);
    double max_diff = 0, max_ref = 0;
    int argmax_a = 0, argmax_b = 0;
    for (int v = 0; v < V; ++v) {
      max_diff = std::max(max_diff, std::abs(double(a[v]) - b[v]));
      max_ref = std::max(max_ref, std::abs(double(b[v])));
      if (a[v] > a[argmax_a]) argmax_a = v;
      if (b[v] > b[argmax_b]) argmax_b = v;
    }
    EXPECT_LE(max_diff / max_ref, 1e-3) << "sentence " << i << ": max |difference| " << max_diff
                                        << ", max |logit| " << max_ref;
    EXPECT_EQ(argmax_a, argmax_b) << "sentence " << i;
    std::printf("sentence %d: max |diff| %.3g (relative %.3g), next token %d\n", i, max_diff,
                max_diff / max_ref, argmax_a);
  }
}

}  // namespace
}  // namespace sptrain
