// Exporting a deep prompt (prefix tuning): a PEFT PREFIX_TUNING folder whose
// tensor is laid out as PEFT's get_prompt reads it (checked element by element
// against PEFT's view/permute/split written out here, on a grouped-query
// model), an hdf5 file, and both read back bit for bit; bad adapters are
// errors naming the file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../support/test_util.hpp"
#include "export_fixture.hpp"
#include "sptrain/io/safetensors.hpp"
#include "sptrain/prompt/export.hpp"
#include "sptrain/prompt/prompt_init.hpp"

namespace sptrain {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using test::error_of;
using test::same_bits;
using test::slurp;

// A grouped-query model like SmolLM2's (3 query heads per kv head), small:
// 3 layers, 6 heads, 2 kv heads of 4.
constexpr int kLayers = 3, kHeads = 6, kKvHeads = 2, kHeadDim = 4, kP = 5;

ModelConfig gqa_config(int kv_heads = kKvHeads, int head_dim = kHeadDim, int layers = kLayers) {
  ModelConfig c;
  c.family = Family::Llama;
  c.name = "fixture-gqa";
  c.n_layers = layers;
  c.n_heads = kHeads;
  c.n_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.d_model = kHeads * head_dim;
  c.d_ffn = 2 * c.d_model;
  c.vocab_size = 256;
  c.max_positions = 64;
  c.norm = NormKind::RmsNorm;
  c.activation = Activation::SwiGlu;
  c.position = PositionKind::Rope;
  c.tied_embeddings = true;
  c.bias = false;
  return c;
}

std::string write_model(const std::string& path, const ModelConfig& c) {
  const Tokenizer tok = Tokenizer::bytes_only();
  write_random_model(path, c, 7, 0.2, [&](h5::File& f) { tok.save(f); });
  return path;
}

// What a key or value element holds in the tests below: a distinct, exactly
// representable number for every (layer, k/v, head, row, dim).
float code(int l, int kv, int h, int r, int d) { return float(1 + (((l * 2 + kv) * 16 + h) * 16 + r) * 16 + d); }

class ExportDeep : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_path(std::string("export_deep_") +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = write_model(path("model.h5"), gqa_config());
    model_config_ = read_model_config(h5::File::open_read(model_));

    // A deep checkpoint. Its prefix is laid out as docs/formats.md says:
    // [layers, P, 2 * kv * D], per row the keys of kv heads 0..kv-1, then
    // their values, each head's D dims in order.
    ckpt_ = test::fixture_checkpoint(model_, 1, 1);
    ckpt_.prompt.clear();
    ckpt_.prompt_rows = ckpt_.prompt_cols = 0;
    ckpt_.optimizer.clear();
    ckpt_.prompt_method = "deep";
    const int C = 2 * kKvHeads * kHeadDim;
    ckpt_.prefix_layers = kLayers;
    ckpt_.prefix_rows = kP;
    ckpt_.prefix_cols = C;
    ckpt_.prefix.assign(size_t(kLayers * kP * C), 0.0f);
    for (int l = 0; l < kLayers; ++l)
      for (int r = 0; r < kP; ++r)
        for (int kv = 0; kv < 2; ++kv)
          for (int h = 0; h < kKvHeads; ++h)
            for (int d = 0; d < kHeadDim; ++d)
              ckpt_.prefix[size_t((l * kP + r) * C + kv * kKvHeads * kHeadDim + h * kHeadDim + d)] =
                  code(l, kv, h, r, d);
    write_checkpoint(path("step_000042.h5"), ckpt_);
    stored_ = read_stored_prompt(path("step_000042.h5"));
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }
  PeftModelInfo info() const { return PeftModelInfo{kLayers, kHeads, "fixture-gqa", kKvHeads, kHeadDim}; }

  std::string dir_, model_;
  ModelConfig model_config_;
  Checkpoint ckpt_;
  StoredPrompt stored_;
};

TEST_F(ExportDeep, PeftPrefixRoundTripIsBitIdentical) {
  // Random values with signed zero, a subnormal and values near f32's top.
  ckpt_.prefix = test::tricky_prompt(kLayers * kP, 2 * kKvHeads * kHeadDim, 5);
  write_checkpoint(path("step_000042.h5"), ckpt_);
  stored_ = read_stored_prompt(path("step_000042.h5"));
  ASSERT_TRUE(stored_.deep());

  const ExportResult r = export_peft(stored_, path("adapter"), info());
  EXPECT_EQ(r.value_bytes, int64_t(ckpt_.prefix.size()) * 4);
  EXPECT_EQ(r.bytes, int64_t(fs::file_size(path("adapter/adapter_model.safetensors")) +
                             fs::file_size(path("adapter/adapter_config.json"))));
  for (const std::string& p : {path("adapter"), path("adapter/adapter_model.safetensors")}) {
    const StoredPrompt back = read_stored_prompt(p);
    EXPECT_EQ(back.format, "peft") << p;
    ASSERT_TRUE(back.deep()) << p;
    EXPECT_EQ(back.prefix_layers, kLayers);
    EXPECT_EQ(back.rows, kP);
    EXPECT_EQ(back.prefix_cols, 2 * kKvHeads * kHeadDim);
    EXPECT_EQ(back.prefix_kv_heads, kKvHeads);
    EXPECT_TRUE(back.values.empty());
    EXPECT_TRUE(same_bits(back.prefix, ckpt_.prefix)) << p;
    EXPECT_EQ(back.model_fingerprint, ckpt_.model_fingerprint);
    EXPECT_EQ(back.step, 42);
    EXPECT_NO_THROW(check_prompt_matches_model(back, model_config_, model_));
  }
  // Exporting what was read gives the same bytes.
  const StoredPrompt back = read_stored_prompt(path("adapter"));
  export_peft(back, path("again"), info());
  EXPECT_EQ(slurp(path("again/adapter_model.safetensors")), slurp(path("adapter/adapter_model.safetensors")));
  EXPECT_EQ(slurp(path("again/adapter_config.json")), slurp(path("adapter/adapter_config.json")));
}

// The tensor as PEFT reads it. PeftModel.get_prompt (peft 0.21.2,
// peft_model.py) does, for PREFIX_TUNING with inference_mode:
//   past_key_values = embedding.weight.repeat(batch, 1, 1)     # [B, P, L*2*token_dim]
//   .view(B, P, num_layers * 2, num_attention_heads, token_dim // num_attention_heads)
//   .permute([2, 0, 3, 1, 4])                                  # [2L, B, H, P, D]
//   .split(2)                                                  # per layer [2, B, H, P, D]
// and each layer's pair is (key_states, value_states) for DynamicCache.
// Written out with strides, not with sptrain's code.
TEST_F(ExportDeep, PeftPrefixLayoutIsPeftsViewPermuteSplit) {
  export_peft(stored_, path("adapter"), info());

  const nlohmann::json c = nlohmann::json::parse(slurp(path("adapter/adapter_config.json")));
  EXPECT_EQ(c["peft_type"], "PREFIX_TUNING");
  EXPECT_EQ(c["task_type"], "CAUSAL_LM");
  EXPECT_EQ(c["num_virtual_tokens"], kP);
  EXPECT_EQ(c["num_layers"], kLayers);
  // Grouped-query attention: PEFT's _prepare_prompt_learning_config sets
  // num_attention_heads = num_key_value_heads and token_dim = head_dim x that.
  EXPECT_EQ(c["num_attention_heads"], kKvHeads);
  EXPECT_EQ(c["token_dim"], kKvHeads * kHeadDim);
  EXPECT_EQ(c["encoder_hidden_size"], kKvHeads * kHeadDim);
  EXPECT_EQ(c["prefix_projection"], false);
  EXPECT_EQ(c["num_transformer_submodules"], 1);
  EXPECT_EQ(c["inference_mode"], true);
  EXPECT_EQ(c["base_model_name_or_path"], "fixture-gqa");

  auto shard = safetensors::Shard::open(path("adapter/adapter_model.safetensors"));
  ASSERT_EQ(shard->tensors().size(), 1u);
  const safetensors::TensorInfo& t = shard->tensors()[0];
  EXPECT_EQ(t.name, "prompt_embeddings");
  EXPECT_EQ(t.dtype, "F32");
  const int64_t L = c["num_layers"], token_dim = c["token_dim"], H = c["num_attention_heads"];
  const int64_t D = token_dim / H, P = c["num_virtual_tokens"];
  ASSERT_EQ(t.shape, (std::vector<int64_t>{P, L * 2 * token_dim}));
  std::vector<float> w(size_t(t.numel));
  shard->read(t.file_offset, t.nbytes, w.data(), "prompt_embeddings");

  // view(B, P, 2L, H, D) of a contiguous [B, P, L*2*token_dim]: strides.
  const int64_t B = 1;
  const int64_t sv[5] = {P * 2 * L * H * D, 2 * L * H * D, H * D, D, 1};
  // permute([2, 0, 3, 1, 4]): dim i of the result is dim perm[i] of the view.
  const int perm[5] = {2, 0, 3, 1, 4};
  int64_t sp[5];
  for (int i = 0; i < 5; ++i) sp[i] = sv[perm[i]];
  // split(2) on dim 0: layer l is [2l, 2l + 2); its [0] is the key, [1] the value.
  auto peft_element = [&](int64_t l, int kv, int64_t b, int64_t h, int64_t r, int64_t d) {
    const int64_t i0 = 2 * l + kv;
    return w[size_t(i0 * sp[0] + b * sp[1] + h * sp[2] + r * sp[3] + d * sp[4])];
  };
  int64_t checked = 0;
  for (int l = 0; l < L; ++l)
    for (int kv = 0; kv < 2; ++kv)
      for (int b = 0; b < B; ++b)
        for (int h = 0; h < H; ++h)
          for (int r = 0; r < P; ++r)
            for (int d = 0; d < D; ++d) {
              ASSERT_EQ(peft_element(l, kv, b, h, r, d), code(l, kv, h, r, d))
                  << "layer " << l << (kv ? " value" : " key") << " head " << h << " row " << r << " dim " << d;
              ++checked;
            }
  EXPECT_EQ(checked, int64_t(w.size()));  // every element, each once (the codes are distinct)
}

TEST_F(ExportDeep, Hdf5RoundTripsTheDeepPromptWithItsMetadata) {
  const ExportResult r = export_hdf5(stored_, path("p.h5"));
  EXPECT_EQ(r.value_bytes, int64_t(ckpt_.prefix.size()) * 4);
  const StoredPrompt back = read_stored_prompt(path("p.h5"));
  EXPECT_EQ(back.format, "hdf5");
  ASSERT_TRUE(back.deep());
  EXPECT_EQ(back.prefix_layers, kLayers);
  EXPECT_EQ(back.rows, kP);
  EXPECT_EQ(back.prefix_cols, 2 * kKvHeads * kHeadDim);
  EXPECT_TRUE(same_bits(back.prefix, ckpt_.prefix));
  EXPECT_EQ(back.model_fingerprint, ckpt_.model_fingerprint);
  EXPECT_EQ(back.step, 42);
  EXPECT_EQ(back.labels, ckpt_.labels);
  EXPECT_EQ(back.task_template, ckpt_.task_template);
  EXPECT_TRUE(back.has_task);
  {
    const h5::File f = h5::File::open_read(path("p.h5"));
    EXPECT_EQ(f.attr_int("/", "format_version"), 2);
    EXPECT_EQ(f.attr_string("/", "prompt_method"), "deep");
    EXPECT_FALSE(f.exists("prompt"));
  }
  // The hdf5 export exports again as the same PEFT folder as the checkpoint.
  export_peft(stored_, path("a"), info());
  export_peft(back, path("b"), info());
  EXPECT_EQ(slurp(path("a/adapter_model.safetensors")), slurp(path("b/adapter_model.safetensors")));
  // A plain prompt's hdf5 export is still format_version 1.
  const std::string plain_model = test::write_fixture_model(path("plain.h5"));
  write_checkpoint(path("step_000001.h5"), test::fixture_checkpoint(plain_model, 3, 16));
  export_hdf5(read_stored_prompt(path("step_000001.h5")), path("plain_export.h5"));
  EXPECT_EQ(h5::File::open_read(path("plain_export.h5")).attr_int("/", "format_version"), 1);
}

TEST_F(ExportDeep, NpyIsRefusedForADeepPrompt) {
  EXPECT_THAT(error_of([&] { export_npy(stored_, path("p.npy"), "f32"); }),
              AllOf(HasSubstr("step_000042.h5"), HasSubstr("deep prompt"), HasSubstr("npy"),
                    HasSubstr("--format hdf5")));
  EXPECT_FALSE(fs::exists(path("p.npy")));
}

TEST_F(ExportDeep, APromptTuningInitRefusesADeepAdapter) {
  export_peft(stored_, path("adapter"), info());
  EXPECT_THAT(error_of([&] { load_prompt_file(path("adapter"), kP, model_config_); }),
              AllOf(HasSubstr("adapter"), HasSubstr("deep prompt"), HasSubstr("prompt.method deep")));
}

void edit_config(const std::string& file, const std::function<void(nlohmann::json&)>& change) {
  nlohmann::json c = nlohmann::json::parse(slurp(file));
  change(c);
  std::ofstream(file, std::ios::trunc) << c.dump(2);
}

TEST_F(ExportDeep, BadPrefixAdaptersAreErrorsNamingTheFile) {
  export_peft(stored_, path("adapter"), info());
  const std::string config = path("adapter/adapter_config.json");
  const std::string original = slurp(config);
  auto restore = [&] { std::ofstream(config, std::ios::trunc) << original; };

  // prefix_projection true: PEFT's MLP computes the keys and values.
  edit_config(config, [](nlohmann::json& c) { c["prefix_projection"] = true; });
  for (const std::string& p : {path("adapter"), path("adapter/adapter_model.safetensors")})
    EXPECT_THAT(error_of([&] { read_stored_prompt(p); }),
                AllOf(HasSubstr(config), HasSubstr("prefix_projection is true"), HasSubstr("false only")));
  restore();

  // The tensor and the config disagree: num_layers.
  edit_config(config, [](nlohmann::json& c) { c["num_layers"] = 2; });
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("adapter")); }),
              AllOf(HasSubstr(config), HasSubstr("num_layers 2"), HasSubstr("[5, 48]"),
                    HasSubstr("adapter_model.safetensors")));
  restore();
  // token_dim not a multiple of the heads.
  edit_config(config, [](nlohmann::json& c) { c["num_attention_heads"] = 3; });
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("adapter")); }),
              AllOf(HasSubstr(config), HasSubstr("token_dim 8"), HasSubstr("num_attention_heads 3")));
  restore();
  // A field it needs is missing.
  edit_config(config, [](nlohmann::json& c) { c.erase("num_layers"); });
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("adapter")); }),
              AllOf(HasSubstr(config), HasSubstr("num_layers is missing")));
  restore();
  // An encoder-decoder adapter.
  edit_config(config, [](nlohmann::json& c) { c["num_transformer_submodules"] = 2; });
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("adapter")); }),
              AllOf(HasSubstr(config), HasSubstr("num_transformer_submodules is 2")));
  restore();

  // Read well, but for another model: the shape is checked against it,
  // naming the adapter. Fewer layers:
  const StoredPrompt good = read_stored_prompt(path("adapter"));
  const ModelConfig two_layers = gqa_config(kKvHeads, kHeadDim, 2);
  EXPECT_THAT(error_of([&] { check_prompt_matches_model(good, two_layers, "m2.h5"); }),
              AllOf(HasSubstr(path("adapter")), HasSubstr("3 layers"), HasSubstr("m2.h5"), HasSubstr("has 2 layers")));
  // Other kv heads of another size, the same width (4 x 2 = 2 x 4): only
  // the heads the adapter records tell them apart.
  const ModelConfig four_kv = gqa_config(4, 2);
  EXPECT_THAT(error_of([&] { check_prompt_matches_model(good, four_kv, "m4.h5"); }),
              AllOf(HasSubstr(path("adapter")), HasSubstr("2 kv heads x 4"), HasSubstr("m4.h5"),
                    HasSubstr("4 kv heads x 2")));
  // Another head_dim (wider): the width differs.
  const ModelConfig wide = gqa_config(kKvHeads, 8);
  EXPECT_THAT(error_of([&] { check_prompt_matches_model(good, wide, "m8.h5"); }),
              AllOf(HasSubstr(path("adapter")), HasSubstr("16 wide"), HasSubstr("2 kv heads x 8 = 32")));

  // An export for a model the prompt does not fit is refused before writing.
  PeftModelInfo wrong = info();
  wrong.num_key_value_heads = 3;
  EXPECT_THAT(error_of([&] { export_peft(stored_, path("wrong"), wrong); }),
              AllOf(HasSubstr("step_000042.h5"), HasSubstr("3 kv heads")));
  EXPECT_FALSE(fs::exists(path("wrong/adapter_model.safetensors")));

  // A LoRA adapter is still no prompt.
  edit_config(config, [](nlohmann::json& c) { c["peft_type"] = "LORA"; });
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("adapter")); }),
              AllOf(HasSubstr(config), HasSubstr("LORA"), HasSubstr("PREFIX_TUNING")));
}

}  // namespace
}  // namespace sptrain
