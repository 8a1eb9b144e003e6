// `sptrain convert --from safetensors` on tiny Llama, GPT-2 and OPT folders
// written in the test. Values are checked exactly, including GPT-2's Conv1D
// transpose and fused q/k/v split and OPT's position offset of 2.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "fixtures.hpp"
#include "sptrain/convert/convert.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/h5.hpp"

namespace sptrain {
namespace {
using namespace sptrain::testing;
using ::testing::HasSubstr;
using nlohmann::json;

constexpr int64_t kVocab = 260;

std::vector<float> values(int64_t n, uint64_t seed) {
  return make_plain(n, 0, seed).values;  // k/32, exact in F32, F16 and BF16
}

struct Folder {
  json config;
  std::map<std::string, StTensor> tensors;
  bool tokenizer_json = true;  // else vocab.json + merges.txt

  void add(const std::string& name, std::vector<int64_t> shape, const std::string& dtype = "F32") {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    tensors[name] = {dtype, shape, values(n, 1000 + tensors.size())};
  }
  const std::vector<float>& v(const std::string& name) const { return tensors.at(name).values; }

  fs::path write(const std::string& tag) const {
    fs::path dir = temp_dir("cs_" + tag);
    std::ofstream(dir / "config.json") << config.dump(2);
    write_file(dir / "model.safetensors", safetensors_bytes(tensors));
    if (tokenizer_json) {
      std::ofstream(dir / "tokenizer.json") << tiny_tokenizer_json();
    } else {
      TokenizerSpec s = tiny_tokenizer_spec();
      json vocab = json::object();
      for (size_t k = 0; k < s.tokens.size(); ++k) vocab[s.tokens[k]] = k;
      std::ofstream(dir / "vocab.json") << vocab.dump();
      std::ofstream m(dir / "merges.txt");
      m << "#version: 0.2\n";
      for (const auto& line : s.merges) m << line << "\n";
      std::ofstream(dir / "tokenizer_config.json")
          << R"({"bos_token": "</s>", "eos_token": "</s>", "add_bos_token": true})";
    }
    return dir;
  }
};

Folder tiny_llama(bool tied) {
  const int64_t d = 16, heads = 4, kv = 2, hd = 4, ffn = 24;
  Folder f;
  f.config = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
              {"hidden_size", d},           {"intermediate_size", ffn},
              {"num_hidden_layers", 2},     {"num_attention_heads", heads},
              {"num_key_value_heads", kv},  {"vocab_size", kVocab},
              {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-5},
              {"rope_theta", 10000.0},      {"hidden_act", "silu"},
              {"tie_word_embeddings", tied}, {"rope_scaling", nullptr},
              {"bos_token_id", 258},        {"eos_token_id", {259, 258}}};
  f.add("model.embed_tokens.weight", {kVocab, d}, "BF16");
  for (int i = 0; i < 2; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    f.add(p + "input_layernorm.weight", {d});
    f.add(p + "self_attn.q_proj.weight", {heads * hd, d}, "F16");
    f.add(p + "self_attn.k_proj.weight", {kv * hd, d}, "BF16");
    f.add(p + "self_attn.v_proj.weight", {kv * hd, d});
    f.add(p + "self_attn.o_proj.weight", {d, heads * hd});
    f.add(p + "post_attention_layernorm.weight", {d});
    f.add(p + "mlp.gate_proj.weight", {ffn, d});
    f.add(p + "mlp.up_proj.weight", {ffn, d});
    f.add(p + "mlp.down_proj.weight", {d, ffn});
    f.tensors[p + "self_attn.rotary_emb.inv_freq"] = {"F32", {hd / 2}, {1, 2}};  // a buffer: ignored
  }
  f.add("model.norm.weight", {d});
  if (!tied) f.add("lm_head.weight", {kVocab, d});
  return f;
}

// Reads a dataset as f32.
std::vector<float> read(const h5::File& f, const std::string& name) {
  std::vector<float> out(size_t(f.info(name).shape.numel()));
  f.read(name, DType::F32, out.data());
  return out;
}

TEST(ConvertSafetensors, Llama) {
  for (bool tied : {true, false}) {
    Folder src = tiny_llama(tied);
    fs::path dir = src.write(tied ? "llama_tied" : "llama");
    fs::path out = dir / "out.h5";
    convert::convert_safetensors(dir.string(), out.string(), DType::F32);
    h5::File f = h5::File::open_read(out.string());
    EXPECT_EQ(f.attr_string("/", "family"), "llama");
    EXPECT_EQ(f.attr_int("/", "n_kv_heads"), 2);
    EXPECT_EQ(f.attr_int("/", "head_dim"), 4);
    EXPECT_EQ(f.attr_int("/", "d_ffn"), 24);
    EXPECT_EQ(f.attr_double("/", "norm_eps"), 1e-5);
    EXPECT_EQ(f.attr_double("/", "rope_theta"), 10000.0);
    EXPECT_EQ(f.attr_int("/", "tied_embeddings"), tied ? 1 : 0);
    EXPECT_EQ(f.attr_string("/", "source_format"), "safetensors");
    EXPECT_EQ(read(f, "embeddings/tokens"), src.v("model.embed_tokens.weight"));
    for (int i = 0; i < 2; ++i) {
      std::string p = "model.layers." + std::to_string(i) + ".", l = "layers/" + std::to_string(i) + "/";
      EXPECT_EQ(read(f, l + "attn_norm/weight"), src.v(p + "input_layernorm.weight"));
      EXPECT_EQ(read(f, l + "attn/q/weight"), src.v(p + "self_attn.q_proj.weight"));  // no permutation
      EXPECT_EQ(read(f, l + "attn/k/weight"), src.v(p + "self_attn.k_proj.weight"));
      EXPECT_EQ(read(f, l + "attn/v/weight"), src.v(p + "self_attn.v_proj.weight"));
      EXPECT_EQ(read(f, l + "attn/o/weight"), src.v(p + "self_attn.o_proj.weight"));
      EXPECT_EQ(read(f, l + "mlp_norm/weight"), src.v(p + "post_attention_layernorm.weight"));
      EXPECT_EQ(read(f, l + "mlp/gate/weight"), src.v(p + "mlp.gate_proj.weight"));
      EXPECT_EQ(read(f, l + "mlp/up/weight"), src.v(p + "mlp.up_proj.weight"));
      EXPECT_EQ(read(f, l + "mlp/down/weight"), src.v(p + "mlp.down_proj.weight"));
    }
    EXPECT_EQ(read(f, "final_norm/weight"), src.v("model.norm.weight"));
    EXPECT_EQ(f.exists("lm_head/weight"), !tied);
    if (!tied) {
      EXPECT_EQ(read(f, "lm_head/weight"), src.v("lm_head.weight"));
    }
    Tokenizer tok = Tokenizer::load(f);
    EXPECT_EQ(tok.bos_id(), 258);  // from config.json
    EXPECT_EQ(tok.eos_id(), 259);  // the first of eos_token_id's list
    EXPECT_FALSE(tok.add_bos());
    EXPECT_EQ(tok.encode("hello"), (std::vector<int32_t>{256, 257, 'o'}));
    fs::remove_all(dir);
  }
}

TEST(ConvertSafetensors, Gpt2TransposesAndSplitsConv1D) {
  const int64_t d = 8, ffn = 32, npos = 16;
  Folder src;
  src.config = {{"architectures", {"GPT2LMHeadModel"}}, {"n_embd", d}, {"n_layer", 1}, {"n_head", 2},
                {"n_positions", npos}, {"vocab_size", kVocab}, {"layer_norm_epsilon", 1e-5},
                {"activation_function", "gelu_new"}, {"n_inner", nullptr}};
  src.add("transformer.wte.weight", {kVocab, d});
  src.add("transformer.wpe.weight", {npos, d});
  src.add("transformer.h.0.ln_1.weight", {d});
  src.add("transformer.h.0.ln_1.bias", {d});
  src.add("transformer.h.0.attn.c_attn.weight", {d, 3 * d});
  src.add("transformer.h.0.attn.c_attn.bias", {3 * d});
  src.add("transformer.h.0.attn.c_proj.weight", {d, d});
  src.add("transformer.h.0.attn.c_proj.bias", {d});
  src.add("transformer.h.0.ln_2.weight", {d});
  src.add("transformer.h.0.ln_2.bias", {d});
  src.add("transformer.h.0.mlp.c_fc.weight", {d, ffn});
  src.add("transformer.h.0.mlp.c_fc.bias", {ffn});
  src.add("transformer.h.0.mlp.c_proj.weight", {ffn, d});
  src.add("transformer.h.0.mlp.c_proj.bias", {d});
  src.add("transformer.ln_f.weight", {d});
  src.add("transformer.ln_f.bias", {d});
  src.add("lm_head.weight", {kVocab, d});          // tied: ignored
  src.add("transformer.h.0.attn.bias", {1, 1, npos, npos});  // causal-mask buffer: ignored
  fs::path dir = src.write("gpt2");
  fs::path out = dir / "out.h5";
  convert::convert_safetensors(dir.string(), out.string(), DType::F32);
  h5::File f = h5::File::open_read(out.string());
  EXPECT_EQ(f.attr_string("/", "family"), "gpt");
  EXPECT_EQ(f.attr_string("/", "activation"), "gelu_tanh");
  EXPECT_EQ(f.attr_string("/", "norm"), "layernorm");
  EXPECT_EQ(f.attr_string("/", "position"), "learned");
  EXPECT_EQ(f.attr_int("/", "bias"), 1);
  EXPECT_EQ(f.attr_int("/", "d_ffn"), ffn);
  EXPECT_EQ(f.attr_int("/", "max_positions"), npos);
  EXPECT_EQ(f.attr_int("/", "tied_embeddings"), 1);
  EXPECT_FALSE(f.has_attr("/", "rope_theta"));

  // Conv1D: y = x W + b with W [in, out]; the model file wants [out, in].
  auto transposed = [](const std::vector<float>& w, int64_t in, int64_t out_cols, int64_t col0, int64_t n) {
    std::vector<float> t;
    for (int64_t o = col0; o < col0 + n; ++o)
      for (int64_t i = 0; i < in; ++i) t.push_back(w[size_t(i * out_cols + o)]);
    return t;
  };
  const auto& c_attn = src.v("transformer.h.0.attn.c_attn.weight");
  const auto& c_attn_b = src.v("transformer.h.0.attn.c_attn.bias");
  EXPECT_EQ(read(f, "layers/0/attn/q/weight"), transposed(c_attn, d, 3 * d, 0, d));
  EXPECT_EQ(read(f, "layers/0/attn/k/weight"), transposed(c_attn, d, 3 * d, d, d));
  EXPECT_EQ(read(f, "layers/0/attn/v/weight"), transposed(c_attn, d, 3 * d, 2 * d, d));
  EXPECT_EQ(read(f, "layers/0/attn/q/bias"), std::vector<float>(c_attn_b.begin(), c_attn_b.begin() + d));
  EXPECT_EQ(read(f, "layers/0/attn/k/bias"), std::vector<float>(c_attn_b.begin() + d, c_attn_b.begin() + 2 * d));
  EXPECT_EQ(read(f, "layers/0/attn/v/bias"), std::vector<float>(c_attn_b.begin() + 2 * d, c_attn_b.end()));
  EXPECT_EQ(read(f, "layers/0/attn/o/weight"), transposed(src.v("transformer.h.0.attn.c_proj.weight"), d, d, 0, d));
  EXPECT_EQ(read(f, "layers/0/mlp/up/weight"), transposed(src.v("transformer.h.0.mlp.c_fc.weight"), d, ffn, 0, ffn));
  EXPECT_EQ(read(f, "layers/0/mlp/down/weight"), transposed(src.v("transformer.h.0.mlp.c_proj.weight"), ffn, d, 0, d));
  EXPECT_EQ(read(f, "layers/0/mlp/up/bias"), src.v("transformer.h.0.mlp.c_fc.bias"));
  EXPECT_EQ(read(f, "layers/0/attn_norm/bias"), src.v("transformer.h.0.ln_1.bias"));
  EXPECT_EQ(read(f, "embeddings/positions"), src.v("transformer.wpe.weight"));
  EXPECT_EQ(read(f, "final_norm/bias"), src.v("transformer.ln_f.bias"));
  EXPECT_FALSE(f.exists("lm_head/weight"));
  fs::remove_all(dir);
}

Folder tiny_opt() {
  const int64_t d = 8, ffn = 16, npos = 12;
  Folder src;
  src.config = {{"architectures", {"OPTForCausalLM"}}, {"hidden_size", d}, {"ffn_dim", ffn},
                {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"max_position_embeddings", npos},
                {"vocab_size", kVocab}, {"activation_function", "relu"}, {"do_layer_norm_before", true},
                {"word_embed_proj_dim", d}, {"pad_token_id", 1}};
  std::string p = "model.decoder.";
  src.add(p + "embed_tokens.weight", {kVocab, d});
  src.add(p + "embed_positions.weight", {npos + 2, d});
  std::string l = p + "layers.0.";
  for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"}) {
    src.add(l + m + ".weight", {d, d});
    src.add(l + m + ".bias", {d});
  }
  for (const char* m : {"self_attn_layer_norm", "final_layer_norm"}) {
    src.add(l + m + ".weight", {d});
    src.add(l + m + ".bias", {d});
  }
  src.add(l + "fc1.weight", {ffn, d});
  src.add(l + "fc1.bias", {ffn});
  src.add(l + "fc2.weight", {d, ffn});
  src.add(l + "fc2.bias", {d});
  src.add(p + "final_layer_norm.weight", {d});
  src.add(p + "final_layer_norm.bias", {d});
  src.tokenizer_json = false;  // OPT ships vocab.json + merges.txt
  return src;
}

TEST(ConvertSafetensors, OptDropsThePositionOffset) {
  Folder src = tiny_opt();
  fs::path dir = src.write("opt");
  fs::path out = dir / "out.h5";
  convert::convert_safetensors(dir.string(), out.string(), DType::BF16);
  h5::File f = h5::File::open_read(out.string());
  EXPECT_EQ(f.attr_string("/", "activation"), "relu");
  EXPECT_EQ(f.attr_string("/", "dtype"), "bf16");
  EXPECT_EQ(f.info("embeddings/positions").dtype, DType::BF16);
  EXPECT_EQ(f.info("embeddings/positions").shape, (Shape{12, 8}));
  const auto& pos = src.v("model.decoder.embed_positions.weight");
  EXPECT_EQ(read(f, "embeddings/positions"), std::vector<float>(pos.begin() + 2 * 8, pos.end()));
  EXPECT_EQ(read(f, "layers/0/attn/o/weight"), src.v("model.decoder.layers.0.self_attn.out_proj.weight"));
  EXPECT_EQ(read(f, "layers/0/mlp_norm/bias"), src.v("model.decoder.layers.0.final_layer_norm.bias"));
  EXPECT_EQ(read(f, "layers/0/mlp/up/weight"), src.v("model.decoder.layers.0.fc1.weight"));
  EXPECT_EQ(read(f, "final_norm/weight"), src.v("model.decoder.final_layer_norm.weight"));
  Tokenizer tok = Tokenizer::load(f);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.bos_id(), 259);  // OPT puts </s> first
  EXPECT_EQ(tok.pad_id(), 1);    // from config.json
  EXPECT_EQ(tok.encode("hello</s>"), (std::vector<int32_t>{259, 256, 257, 'o', 259}));
  fs::remove_all(dir);
}

void expect_error(const Folder& src, const std::string& tag, std::vector<std::string> what,
                  std::function<void(const fs::path&)> edit = {}) {
  fs::path dir = src.write("err_" + tag);
  if (edit) edit(dir);
  fs::path out = dir / "out.h5";
  try {
    convert::convert_safetensors(dir.string(), out.string(), DType::F32);
    ADD_FAILURE() << "no error for " << tag;
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir.string())) << tag;
    for (const auto& w : what) EXPECT_THAT(e.what(), HasSubstr(w)) << tag;
  }
  EXPECT_FALSE(fs::exists(out)) << tag;
  EXPECT_FALSE(fs::exists(out.string() + ".tmp")) << tag;
  fs::remove_all(dir);
}

TEST(ConvertSafetensors, BrokenFoldersAreNamedErrorsWithoutOutput) {
  Folder f = tiny_llama(true);
  f.config["intermediate_size"] = 32;
  expect_error(f, "ffn", {"tensor 'model.layers.0.mlp.gate_proj.weight'", "[24, 16]", "intermediate_size"});

  f = tiny_llama(true);
  f.config["vocab_size"] = 300;
  expect_error(f, "vocab", {"tensor 'model.embed_tokens.weight'", "vocab_size"});

  f = tiny_llama(true);
  f.tensors.erase("model.layers.1.mlp.up_proj.weight");
  expect_error(f, "missing", {"missing tensor 'model.layers.1.mlp.up_proj.weight'"});

  f = tiny_llama(true);
  f.config["num_hidden_layers"] = 1;
  expect_error(f, "extra", {"unexpected tensor 'model.layers.1."});

  f = tiny_llama(false);
  f.tensors.erase("lm_head.weight");
  expect_error(f, "lm_head", {"lm_head.weight", "tie_word_embeddings"});

  f = tiny_llama(true);
  f.tensors["model.norm.weight"].dtype = "I64";
  expect_error(f, "dtype", {"tensor 'model.norm.weight' has dtype I64"});

  f = tiny_llama(true);
  f.config["architectures"] = {"BertForMaskedLM"};
  expect_error(f, "arch", {"config.json", "BertForMaskedLM"});

  f = tiny_llama(true);
  f.config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  expect_error(f, "rope", {"config.json", "rope_scaling"});

  f = tiny_llama(true);
  f.config.erase("hidden_size");
  expect_error(f, "key", {"config.json", "missing key 'hidden_size'"});

  Folder o = tiny_opt();
  o.config["do_layer_norm_before"] = false;
  expect_error(o, "opt350", {"config.json", "do_layer_norm_before"});
  o = tiny_opt();
  o.config["word_embed_proj_dim"] = 4;
  expect_error(o, "proj", {"config.json", "word_embed_proj_dim"});

  // n_inner defaults to 4 x n_embd: a huge n_embd is an error naming config.json,
  // not a signed overflow (UBSan stops the sanitizer build's run on one).
  Folder g;
  g.config = {{"architectures", {"GPT2LMHeadModel"}}, {"n_embd", int64_t(1) << 62}, {"n_layer", 1},
              {"n_head", 2}, {"n_positions", 16}, {"vocab_size", kVocab}};
  g.add("transformer.wte.weight", {kVocab, 4});
  expect_error(g, "gpt2_n_embd", {"config.json", "n_embd (d_model) = 4611686018427387904"});

  expect_error(tiny_llama(true), "notok", {"no tokenizer"},
               [](const fs::path& d) { fs::remove(d / "tokenizer.json"); });
  expect_error(tiny_llama(true), "trunc", {"model.safetensors"}, [](const fs::path& d) {
    fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") - 4);
  });
}

}  // namespace
}  // namespace sptrain
