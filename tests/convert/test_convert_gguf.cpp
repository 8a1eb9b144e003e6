// `sptrain convert --from gguf` on tiny llama GGUF files built in the test:
// every dataset is checked value by value against the blocks written, the
// Q/K rows against llama.cpp's permutation, the attributes, the tokenizer and
// the fingerprint; broken inputs must be errors that leave no output file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <functional>
#include <set>

#include "fixtures.hpp"
#include "sptrain/convert/convert.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/h5.hpp"

namespace sptrain {
namespace {
using namespace sptrain::testing;
using ::testing::HasSubstr;

constexpr int64_t kLayers = 2, kD = 32, kHeads = 4, kKv = 2, kHd = 8, kFfn = 64, kVocab = 260;
enum : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q8_0 = 8, BF16 = 30 };

struct TinyGguf {
  GgufWriter w;
  // HF-layout values the converter must produce, by dataset name (before the
  // Q/K un-permutation for q and k: those hold the GGUF rows).
  std::map<std::string, std::vector<float>> values;
};

struct Options {
  bool tied = true;
  std::string arch = "llama";
  std::set<std::string> drop;                        // tensors left out
  std::map<std::string, std::vector<uint64_t>> dims;  // ggml dims overrides
  std::map<std::string, uint32_t> types;             // type overrides
  bool extra_layer_tensor = false;
  bool drop_block_count = false;
};

Quantized make(uint32_t type, int64_t n, uint64_t seed) {
  switch (type) {
    case Q8_0: return make_q8_0(n, seed);
    case Q4_0: return make_q4_0(n, seed);
    case Q4_1: return make_q4_1(n, seed);
    case Q5_0: return {std::vector<float>(size_t(n)), std::vector<unsigned char>(size_t(n / 32 * 22), 0)};
    default: return make_plain(n, type, seed);
  }
}

TinyGguf tiny_llama(const Options& o = {}) {
  TinyGguf t;
  GgufWriter& w = t.w;
  w.kv_str("general.architecture", o.arch);
  w.kv_str("general.name", "tiny-llama");
  if (!o.drop_block_count) w.kv_u32(o.arch + ".block_count", kLayers);
  w.kv_u32(o.arch + ".context_length", 128);
  w.kv_u32(o.arch + ".embedding_length", kD);
  w.kv_u32(o.arch + ".feed_forward_length", kFfn);
  w.kv_u32(o.arch + ".attention.head_count", kHeads);
  w.kv_u32(o.arch + ".attention.head_count_kv", kKv);
  w.kv_f32(o.arch + ".rope.freq_base", 500000.0f);
  w.kv_f32(o.arch + ".attention.layer_norm_rms_epsilon", 1e-6f);
  w.kv_u32(o.arch + ".rope.dimension_count", kHd);
  TokenizerSpec s = tiny_tokenizer_spec();
  w.kv_str("tokenizer.ggml.model", "gpt2");
  w.kv_str("tokenizer.ggml.pre", "gpt2");
  w.kv_strs("tokenizer.ggml.tokens", s.tokens);
  w.kv_array<int32_t>("tokenizer.ggml.token_type", GgufWriter::I32, s.token_types);
  w.kv_strs("tokenizer.ggml.merges", s.merges);
  w.kv_u32("tokenizer.ggml.bos_token_id", 258);
  w.kv_u32("tokenizer.ggml.eos_token_id", 259);
  w.kv_bool("tokenizer.ggml.add_bos_token", true);

  uint64_t seed = 1;
  // (gguf name, dataset, ggml dims, type)
  auto add = [&](const std::string& name, const std::string& dataset, std::vector<uint64_t> dims,
                 uint32_t type) {
    if (o.drop.count(name)) return;
    if (o.dims.count(name)) dims = o.dims.at(name);
    if (o.types.count(name)) type = o.types.at(name);
    int64_t n = 1;
    for (uint64_t d : dims) n *= int64_t(d);
    Quantized q = make(type, n, seed++);
    w.tensor(name, dims, type, q.bytes);
    t.values[dataset] = q.values;
  };
  add("token_embd.weight", "embeddings/tokens", {kD, kVocab}, Q8_0);
  for (int i = 0; i < kLayers; ++i) {
    std::string b = "blk." + std::to_string(i) + ".", l = "layers/" + std::to_string(i) + "/";
    add(b + "attn_norm.weight", l + "attn_norm/weight", {kD}, F32);
    add(b + "attn_q.weight", l + "attn/q/weight", {kD, kHeads * kHd}, Q4_1);
    add(b + "attn_k.weight", l + "attn/k/weight", {kD, kKv * kHd}, Q4_0);
    add(b + "attn_v.weight", l + "attn/v/weight", {kD, kKv * kHd}, BF16);
    add(b + "attn_output.weight", l + "attn/o/weight", {kHeads * kHd, kD}, F16);
    add(b + "ffn_norm.weight", l + "mlp_norm/weight", {kD}, F32);
    add(b + "ffn_gate.weight", l + "mlp/gate/weight", {kD, kFfn}, Q8_0);
    add(b + "ffn_up.weight", l + "mlp/up/weight", {kD, kFfn}, Q4_1);
    add(b + "ffn_down.weight", l + "mlp/down/weight", {kFfn, kD}, F32);
  }
  add("output_norm.weight", "final_norm/weight", {kD}, F32);
  if (!o.tied) add("output.weight", "lm_head/weight", {kD, kVocab}, F16);
  if (o.extra_layer_tensor) add("blk.2.attn_norm.weight", "x", {kD}, F32);
  return t;
}

// The datasets of the tiny model in the order of docs/formats.md.
std::vector<std::string> dataset_order(bool tied) {
  std::vector<std::string> names = {"embeddings/tokens"};
  for (int i = 0; i < kLayers; ++i)
    for (const char* p : {"attn_norm/weight", "attn/q/weight", "attn/k/weight", "attn/v/weight",
                          "attn/o/weight", "mlp_norm/weight", "mlp/gate/weight", "mlp/up/weight",
                          "mlp/down/weight"})
      names.push_back("layers/" + std::to_string(i) + "/" + p);
  names.push_back("final_norm/weight");
  if (!tied) names.push_back("lm_head/weight");
  return names;
}

// FNV-1a 64, written out here from its definition.
struct Fnv {
  uint64_t h = 14695981039346656037ull;
  void add(const void* p, size_t n) {
    for (size_t k = 0; k < n; ++k) h = (h ^ static_cast<const unsigned char*>(p)[k]) * 1099511628211ull;
  }
  std::string hex() const {
    char b[17];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
    return b;
  }
};

void check_converted(const fs::path& out, const TinyGguf& t, bool tied, DType dtype) {
  h5::File f = h5::File::open_read(out.string());
  EXPECT_EQ(f.attr_string("/", "format"), "sptrain-model");
  EXPECT_EQ(f.attr_int("/", "format_version"), 1);
  EXPECT_EQ(f.attr_string("/", "family"), "llama");
  EXPECT_EQ(f.attr_string("/", "name"), "tiny-llama");
  EXPECT_EQ(f.attr_int("/", "n_layers"), kLayers);
  EXPECT_EQ(f.attr_int("/", "d_model"), kD);
  EXPECT_EQ(f.attr_int("/", "n_heads"), kHeads);
  EXPECT_EQ(f.attr_int("/", "n_kv_heads"), kKv);
  EXPECT_EQ(f.attr_int("/", "head_dim"), kHd);
  EXPECT_EQ(f.attr_int("/", "d_ffn"), kFfn);
  EXPECT_EQ(f.attr_int("/", "vocab_size"), kVocab);
  EXPECT_EQ(f.attr_int("/", "max_positions"), 128);
  EXPECT_EQ(f.attr_string("/", "norm"), "rmsnorm");
  EXPECT_EQ(f.attr_double("/", "norm_eps"), double(1e-6f));
  EXPECT_EQ(f.attr_string("/", "activation"), "swiglu");
  EXPECT_EQ(f.attr_string("/", "position"), "rope");
  EXPECT_EQ(f.attr_double("/", "rope_theta"), 500000.0);
  EXPECT_EQ(f.attr_int("/", "tied_embeddings"), tied ? 1 : 0);
  EXPECT_EQ(f.attr_int("/", "bias"), 0);
  EXPECT_EQ(f.attr_string("/", "dtype"), std::string(dtype_name(dtype)));
  EXPECT_EQ(f.attr_int("/", "random"), 0);
  EXPECT_EQ(f.attr_string("/", "source_format"), "gguf");
  EXPECT_EQ(f.attr_string("/", "source_hash").size(), 16u);

  Fnv fp;
  for (const std::string& name : dataset_order(tied)) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(t.values.count(name));
    std::vector<float> want = t.values.at(name);
    h5::DatasetInfo info = f.info(name);
    ASSERT_EQ(info.dtype, dtype);
    ASSERT_EQ(info.shape.numel(), int64_t(want.size()));
    std::vector<float> got(want.size());
    f.read(name, DType::F32, got.data());
    // q and k: permuting what we wrote with llama.cpp's permutation must give
    // back the GGUF rows.
    int64_t heads = name.find("attn/q") != std::string::npos   ? kHeads
                    : name.find("attn/k") != std::string::npos ? kKv
                                                               : 0;
    if (heads) got = permute_hf_to_gguf(got, info.shape[0], info.shape[1], heads);
    if (dtype == DType::BF16)
      for (float& v : want) v = bf16_to_f32(f32_to_bf16(v));
    EXPECT_EQ(got, want);
    // Fingerprint: the name, then the bytes as stored.
    fp.add(name.data(), name.size());
    std::vector<unsigned char> raw(size_t(info.shape.numel()) * dtype_size(dtype));
    f.read(name, dtype, raw.data());
    fp.add(raw.data(), raw.size());
  }
  EXPECT_EQ(f.attr_string("/", "fingerprint"), fp.hex());
  EXPECT_EQ(f.exists("lm_head/weight"), !tied);
  EXPECT_FALSE(f.exists("embeddings/positions"));

  Tokenizer tok = Tokenizer::load(f);
  EXPECT_EQ(tok.vocab_size(), 260);
  EXPECT_EQ(tok.bos_id(), 258);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("hello</s>"), (std::vector<int32_t>{258, 256, 257, 'o', 259}));
}

TEST(ConvertGguf, TiedAndUntiedF32AndBf16) {
  fs::path dir = temp_dir("cg_ok");
  for (bool tied : {true, false}) {
    Options o;
    o.tied = tied;
    TinyGguf t = tiny_llama(o);
    fs::path src = dir / "tiny.gguf";
    write_file(src, t.w.bytes());
    for (DType dtype : {DType::F32, DType::BF16}) {
      fs::path out = dir / "tiny.h5";
      convert::ConvertResult r = convert::convert_gguf(src.string(), out.string(), dtype);
      EXPECT_EQ(r.header.tied_embeddings, tied);
      EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
      check_converted(out, t, tied, dtype);
      int64_t params = kVocab * kD * (tied ? 1 : 2) + kD +
                       kLayers * (2 * kD + 2 * kD * kD + 2 * kKv * kHd * kD + 3 * kD * kFfn);
      EXPECT_EQ(r.stats.parameters, params);
    }
  }
  fs::remove_all(dir);
}

// Converting must fail with an Error mentioning every string in `what`, and
// leave neither the output nor its temporary file.
void expect_convert_error(const TinyGguf& t, std::vector<std::string> what, const std::string& tag,
                          std::function<void(std::vector<unsigned char>&)> edit = {}) {
  fs::path dir = temp_dir("cg_err_" + tag);
  fs::path src = dir / "bad.gguf", out = dir / "out.h5";
  std::vector<unsigned char> bytes = t.w.bytes();
  if (edit) edit(bytes);
  write_file(src, bytes);
  try {
    convert::convert_gguf(src.string(), out.string(), DType::F32);
    ADD_FAILURE() << "no error for " << tag;
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(src.string())) << tag;
    for (const auto& w : what) EXPECT_THAT(e.what(), HasSubstr(w)) << tag;
  }
  EXPECT_FALSE(fs::exists(out)) << tag;
  EXPECT_FALSE(fs::exists(out.string() + ".tmp")) << tag;
  fs::remove_all(dir);
}

TEST(ConvertGguf, BrokenInputsAreNamedErrorsWithoutOutput) {
  Options arch;
  arch.arch = "gpt2";
  expect_convert_error(tiny_llama(arch), {"general.architecture", "'gpt2'"}, "arch");

  Options shape;
  shape.dims["blk.1.attn_k.weight"] = {kD, 24};
  expect_convert_error(tiny_llama(shape), {"tensor 'blk.1.attn_k.weight'", "[24, 32]", "llama.attention.head_count_kv"},
                       "shape");

  Options missing;
  missing.drop.insert("blk.1.ffn_up.weight");
  expect_convert_error(tiny_llama(missing), {"missing tensor 'blk.1.ffn_up.weight'"}, "missing");

  Options type;
  type.types["blk.0.ffn_down.weight"] = Q5_0;
  expect_convert_error(tiny_llama(type), {"tensor 'blk.0.ffn_down.weight' has type Q5_0"}, "type");

  Options extra;
  extra.extra_layer_tensor = true;
  expect_convert_error(tiny_llama(extra), {"unexpected tensor 'blk.2.attn_norm.weight'"}, "extra");

  Options key;
  key.drop_block_count = true;
  expect_convert_error(tiny_llama(key), {"'llama.block_count'"}, "key");

  expect_convert_error(tiny_llama(), {"tensor '"}, "truncated",
                       [](std::vector<unsigned char>& b) { b.resize(b.size() - 100); });
  expect_convert_error(tiny_llama(), {"bad magic"}, "magic", [](std::vector<unsigned char>& b) { b[0] = 'X'; });
}

TEST(ConvertGguf, FailureKeepsAnExistingOutputFile) {
  fs::path dir = temp_dir("cg_keep");
  fs::path src = dir / "bad.gguf", out = dir / "out.h5";
  std::ofstream(out) << "old model";
  Options o;
  o.drop.insert("output_norm.weight");
  write_file(src, tiny_llama(o).w.bytes());
  EXPECT_THROW(convert::convert_gguf(src.string(), out.string(), DType::F32), Error);
  std::ifstream in(out);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "old model");
  fs::remove_all(dir);
}

// A full disk (a small tmpfs, where the test may mount one) is an Error that
// says so and leaves no file, and HDF5 does not crash at exit afterwards (it
// did: SIGSEGV in H5F__close_cb after "flush failed").
TEST(ConvertGguf, AFullDiskIsAnErrorWithoutOutput) {
  fs::path dir = temp_dir("cg_full");
  fs::path disk = dir / "disk";
  fs::create_directories(disk);
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=32k") != 0) {
    fs::remove_all(dir);
    GTEST_SKIP() << "cannot mount a tmpfs here";
  }
  fs::path src = dir / "tiny.gguf", out = disk / "tiny.h5";
  write_file(src, tiny_llama().w.bytes());
  try {
    convert::convert_gguf(src.string(), out.string(), DType::F32);
    ADD_FAILURE() << "no error on a full disk";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(out.string()));
    EXPECT_THAT(e.what(), HasSubstr("No space left on device"));
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
  ::umount(disk.c_str());
  fs::remove_all(dir);
}

// A failure in the middle of writing removes the temporary file.
TEST(ModelWriter, ErrorMidwayLeavesNothing) {
  fs::path dir = temp_dir("mw_mid");
  fs::path out = dir / "m.h5";
  convert::ModelHeader h;
  h.family = "llama";
  h.name = "x";
  h.n_layers = 1;
  h.d_model = 4;
  h.n_heads = h.n_kv_heads = 1;
  h.head_dim = 4;
  h.d_ffn = 8;
  h.vocab_size = 256;
  h.max_positions = 16;
  h.norm = "rmsnorm";
  h.activation = "swiglu";
  h.position = "rope";
  h.norm_eps = 1e-5;  // a header the loader accepts: only the failing job stops it
  h.rope_theta = 10000;
  h.tied_embeddings = true;
  std::vector<convert::WeightJob> jobs;
  int filled = 0;
  for (const auto& [name, shape] : convert::expected_datasets(h))
    jobs.push_back({name, shape, 1, [&filled, shape](float* dst) {
                      if (++filled == 5) sptrain::fail("source vanished");
                      std::fill(dst, dst + shape.numel(), 1.0f);
                    }});
  try {
    convert::write_model_file(out.string(), DType::F32, h, jobs, Tokenizer::bytes_only(),
                              {"src", "gguf", "0"});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("source vanished"));
  }
  EXPECT_EQ(filled, 5);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sptrain
