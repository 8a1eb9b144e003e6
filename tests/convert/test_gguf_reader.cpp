// GGUF reader: dequantization of hand-built blocks, the Q/K un-permutation,
// metadata of every type, and corrupt files that must be clear errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "fixtures.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/gguf.hpp"

namespace sptrain {
namespace {
using namespace sptrain::testing;
using ::testing::HasSubstr;

// ---- dequantization ----

TEST(GgufDequant, Q8_0ByHand) {
  // d = 0.5 (f16 0x3800), q = -16..15 twice.
  std::vector<unsigned char> block = {0x00, 0x38};
  for (int j = 0; j < 32; ++j) block.push_back(uint8_t(int8_t(j - 16)));
  std::vector<float> out(32);
  gguf::dequantize(gguf::TensorType::Q8_0, block.data(), out.data(), 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[size_t(j)], 0.5f * float(j - 16)) << j;
}

TEST(GgufDequant, Q4_0ByHand) {
  // d = 0.25 (f16 0x3400); byte j holds q = j (low nibble, element j) and
  // q = 15 - j (high nibble, element 16 + j); value (q - 8) * d.
  std::vector<unsigned char> block = {0x00, 0x34};
  for (int j = 0; j < 16; ++j) block.push_back(uint8_t(j | ((15 - j) << 4)));
  std::vector<float> out(32);
  gguf::dequantize(gguf::TensorType::Q4_0, block.data(), out.data(), 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[size_t(j)], 0.25f * float(j - 8)) << j;
    EXPECT_EQ(out[size_t(16 + j)], 0.25f * float(15 - j - 8)) << j;
  }
}

TEST(GgufDequant, Q4_1ByHand) {
  // d = 0.5 (0x3800), m = -1.0 (0xBC00); value q * d + m.
  std::vector<unsigned char> block = {0x00, 0x38, 0x00, 0xBC};
  for (int j = 0; j < 16; ++j) block.push_back(uint8_t(j | ((15 - j) << 4)));
  // A second block: d = 2.0 (0x4000), m = 0.25 (0x3400), all nibbles 0xA (10).
  block.insert(block.end(), {0x00, 0x40, 0x00, 0x34});
  for (int j = 0; j < 16; ++j) block.push_back(0xAA);
  std::vector<float> out(64);
  gguf::dequantize(gguf::TensorType::Q4_1, block.data(), out.data(), 64);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[size_t(j)], 0.5f * float(j) - 1.0f) << j;
    EXPECT_EQ(out[size_t(16 + j)], 0.5f * float(15 - j) - 1.0f) << j;
  }
  for (int j = 32; j < 64; ++j) EXPECT_EQ(out[size_t(j)], 20.25f) << j;
}

TEST(GgufDequant, PlainTypes) {
  // f16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF; bf16: 1.0 = 0x3F80, -3.0 = 0xC040.
  uint16_t f16[3] = {0x3C00, 0xC000, 0x7BFF};
  uint16_t bf16[2] = {0x3F80, 0xC040};
  float f32[2] = {1.5f, -0.125f};
  std::vector<float> out(3);
  gguf::dequantize(gguf::TensorType::F16, f16, out.data(), 3);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.0f, 65504.0f}));
  gguf::dequantize(gguf::TensorType::BF16, bf16, out.data(), 2);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.0f);
  gguf::dequantize(gguf::TensorType::F32, f32, out.data(), 2);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -0.125f);
}

TEST(GgufDequant, UnsupportedTypeIsAnError) {
  std::vector<unsigned char> block(22, 0);
  float out[32];
  EXPECT_THROW(gguf::dequantize(gguf::TensorType::Q5_0, block.data(), out, 32), Error);
  EXPECT_THROW(gguf::dequantize(gguf::TensorType::Q8_0, block.data(), out, 31), Error);
}

// ---- RoPE row permutation ----

TEST(GgufRope, UnpermuteSmallExample) {
  // 2 heads of 4 rows, one column holding the GGUF row number. Each GGUF head
  // is (i=0,j=0), (i=0,j=1), (i=1,j=0), (i=1,j=1); HF wants j-major: rows 0, 2, 1, 3.
  std::vector<float> gguf_rows = {0, 1, 2, 3, 4, 5, 6, 7}, hf(8);
  gguf::unpermute_rope_rows(gguf_rows.data(), hf.data(), 8, 1, 2);
  EXPECT_EQ(hf, (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
  EXPECT_THROW(gguf::unpermute_rope_rows(gguf_rows.data(), hf.data(), 8, 1, 3), Error);
}

TEST(GgufRope, UnpermuteInvertsLlamaCppPermutation) {
  const int64_t heads = 3, hd = 8, rows = heads * hd, cols = 5;
  std::vector<float> hf(size_t(rows * cols));
  for (size_t k = 0; k < hf.size(); ++k) hf[k] = float(k);
  std::vector<float> g = permute_hf_to_gguf(hf, rows, cols, heads), back(hf.size());
  gguf::unpermute_rope_rows(g.data(), back.data(), rows, cols, heads);
  EXPECT_EQ(back, hf);
}

// What the un-permutation is for: llama.cpp rotates adjacent pairs (2i, 2i+1)
// of a GGUF head; Hugging Face rotates (i, i + hd/2). With the rows un-permuted,
// both give the same attention scores q.k.
TEST(GgufRope, InterleavedAndRotateHalfGiveTheSameScores) {
  const int64_t hd = 8, cols = 3;
  Lcg r(7);
  std::vector<float> wq(size_t(hd * cols)), wk(size_t(hd * cols)), x(cols);
  for (float& v : wq) v = float(r.range(-50, 50)) / 25.0f;
  for (float& v : wk) v = float(r.range(-50, 50)) / 25.0f;
  for (float& v : x) v = float(r.range(-50, 50)) / 25.0f;
  auto matvec = [&](const std::vector<float>& w) {
    std::vector<double> y(hd, 0.0);
    for (int64_t o = 0; o < hd; ++o)
      for (int64_t c = 0; c < cols; ++c) y[size_t(o)] += double(w[size_t(o * cols + c)]) * x[size_t(c)];
    return y;
  };
  const double theta = 10000.0;
  auto rope = [&](std::vector<double> v, int pos, bool interleaved) {
    std::vector<double> out = v;
    for (int64_t i = 0; i < hd / 2; ++i) {
      double a = pos * std::pow(theta, -2.0 * double(i) / double(hd));
      int64_t p0 = interleaved ? 2 * i : i, p1 = interleaved ? 2 * i + 1 : i + hd / 2;
      out[size_t(p0)] = v[size_t(p0)] * std::cos(a) - v[size_t(p1)] * std::sin(a);
      out[size_t(p1)] = v[size_t(p0)] * std::sin(a) + v[size_t(p1)] * std::cos(a);
    }
    return out;
  };
  auto dot = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
    return s;
  };
  // The GGUF holds permuted weights; llama.cpp applies interleaved RoPE to them.
  std::vector<float> gq = permute_hf_to_gguf(wq, hd, cols, 1), gk = permute_hf_to_gguf(wk, hd, cols, 1);
  double gguf_score = dot(rope(matvec(gq), 5, true), rope(matvec(gk), 2, true));
  // sptrain un-permutes them and applies rotate-half RoPE.
  std::vector<float> uq(gq.size()), uk(gk.size());
  gguf::unpermute_rope_rows(gq.data(), uq.data(), hd, cols, 1);
  gguf::unpermute_rope_rows(gk.data(), uk.data(), hd, cols, 1);
  double ours = dot(rope(matvec(uq), 5, false), rope(matvec(uk), 2, false));
  EXPECT_NEAR(ours, gguf_score, 1e-9 * (1 + std::abs(gguf_score)));
  // Without the un-permutation the scores differ.
  double wrong = dot(rope(matvec(gq), 5, false), rope(matvec(gk), 2, false));
  EXPECT_GT(std::abs(wrong - gguf_score), 1e-3);
}

// ---- files ----

GgufWriter sample_writer() {
  GgufWriter w;
  w.kv<uint8_t>("t.u8", GgufWriter::U8, 200);
  w.kv<int8_t>("t.i8", GgufWriter::I8, -100);
  w.kv<uint16_t>("t.u16", GgufWriter::U16, 60000);
  w.kv<int16_t>("t.i16", GgufWriter::I16, -30000);
  w.kv_u32("t.u32", 4000000000u);
  w.kv<int32_t>("t.i32", GgufWriter::I32, -2000000000);
  w.kv<uint64_t>("t.u64", GgufWriter::U64, 1ull << 40);
  w.kv<int64_t>("t.i64", GgufWriter::I64, -(1ll << 40));
  w.kv_f32("t.f32", 0.25f);
  w.kv<double>("t.f64", GgufWriter::F64, -1e300);
  w.kv_bool("t.bool", true);
  w.kv_str("t.str", "h\xC3\xA9llo");
  w.kv_strs("t.strs", {"a", "", "ccc"});
  w.kv_array<int32_t>("t.ints", GgufWriter::I32, {1, -2, 3});
  w.kv_array<float>("t.floats", GgufWriter::F32, {0.5f, -1.5f});
  {  // an array of arrays: parsed, contents not kept
    Bytes e;
    e.str("t.nested");
    e.put<uint32_t>(GgufWriter::ARRAY);
    e.put<uint32_t>(GgufWriter::ARRAY);
    e.put<uint64_t>(2);
    for (int k = 0; k < 2; ++k) {
      e.put<uint32_t>(GgufWriter::U8);
      e.put<uint64_t>(3);
      for (int j = 0; j < 3; ++j) e.put<uint8_t>(uint8_t(j));
    }
    w.kv_raw(e.b);
  }
  Quantized a = make_plain(3 * 2, 0, 1);
  Quantized b = make_q8_0(64, 2);
  w.tensor("a", {3, 2}, 0, a.bytes);
  w.tensor("b", {64}, 8, b.bytes);
  return w;
}

TEST(GgufFile, ReadsMetadataAndTensorsV2AndV3) {
  fs::path dir = temp_dir("gguf_meta");
  for (uint32_t version : {2u, 3u}) {
    for (uint64_t align : {32u, 64u}) {
      GgufWriter w = sample_writer();
      if (align != 32) w.kv_u32("general.alignment", uint32_t(align));
      fs::path path = dir / ("s" + std::to_string(version) + "_" + std::to_string(align) + ".gguf");
      write_file(path, w.bytes(version, align));
      gguf::File f = gguf::File::open(path.string());
      EXPECT_EQ(f.version(), version);
      EXPECT_EQ(f.alignment(), align);
      EXPECT_EQ(f.data_offset() % align, 0u);
      EXPECT_EQ(f.get_int("t.u8"), 200);
      EXPECT_EQ(f.get_int("t.i8"), -100);
      EXPECT_EQ(f.get_int("t.u16"), 60000);
      EXPECT_EQ(f.get_int("t.i16"), -30000);
      EXPECT_EQ(f.get_int("t.u32"), 4000000000ll);
      EXPECT_EQ(f.get_int("t.i32"), -2000000000);
      EXPECT_EQ(f.get_int("t.u64"), 1ll << 40);
      EXPECT_EQ(f.get_int("t.i64"), -(1ll << 40));
      EXPECT_EQ(f.get_float("t.f32"), 0.25);
      EXPECT_EQ(f.get_float("t.f64"), -1e300);
      EXPECT_TRUE(f.get_bool("t.bool"));
      EXPECT_EQ(f.get_string("t.str"), "h\xC3\xA9llo");
      EXPECT_EQ(f.get_string_array("t.strs"), (std::vector<std::string>{"a", "", "ccc"}));
      EXPECT_EQ(f.get_int_array("t.ints"), (std::vector<int64_t>{1, -2, 3}));
      EXPECT_EQ(f.get_float_array("t.floats"), (std::vector<double>{0.5, -1.5}));
      EXPECT_EQ(f.value("t.nested").count, 2u);
      EXPECT_EQ(f.get_int("missing", 7), 7);
      EXPECT_FALSE(f.has("missing"));
      try {
        f.get_string("t.u8");
        ADD_FAILURE();
      } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("'t.u8' is u8, expected a string"));
      }
      EXPECT_THROW(f.get_int("missing"), Error);

      ASSERT_EQ(f.tensors().size(), 2u);
      const gguf::TensorInfo& a = f.tensor("a");
      EXPECT_EQ(a.dims, (std::vector<int64_t>{3, 2}));
      EXPECT_EQ(a.torch_shape(), (std::vector<int64_t>{2, 3}));
      EXPECT_EQ(a.nbytes, 24u);
      const gguf::TensorInfo& b = f.tensor("b");
      EXPECT_EQ(b.type, gguf::TensorType::Q8_0);
      EXPECT_EQ(b.nbytes, 68u);
      std::vector<unsigned char> raw(b.nbytes);
      f.read_raw(b, raw.data());
      EXPECT_EQ(raw, make_q8_0(64, 2).bytes);
      std::vector<float> values(64);
      gguf::dequantize(b.type, raw.data(), values.data(), 64);
      EXPECT_EQ(values, make_q8_0(64, 2).values);
      EXPECT_EQ(f.find_tensor("c"), nullptr);
      EXPECT_THROW(f.tensor("c"), Error);
    }
  }
  fs::remove_all(dir);
}

// Opening must fail with an Error that names the file (and `what`).
void expect_open_error(const fs::path& path, const std::string& what) {
  try {
    gguf::File::open(path.string());
    ADD_FAILURE() << "no error for " << what;
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path.string()));
    EXPECT_THAT(e.what(), HasSubstr(what));
  }
}

TEST(GgufFile, EveryTruncationIsAClearError) {
  fs::path dir = temp_dir("gguf_trunc");
  std::vector<unsigned char> full = sample_writer().bytes();
  fs::path path = dir / "t.gguf";
  for (size_t n = 0; n < full.size(); ++n) {
    write_file(path, std::vector<unsigned char>(full.begin(), full.begin() + long(n)));
    EXPECT_THROW(gguf::File::open(path.string()), Error) << "prefix of " << n << " bytes";
  }
  // Cut inside the last tensor's data: the message names that tensor.
  write_file(path, std::vector<unsigned char>(full.begin(), full.end() - 10));
  expect_open_error(path, "tensor 'b'");
  fs::remove_all(dir);
}

TEST(GgufFile, CorruptHeadersAreClearErrors) {
  fs::path dir = temp_dir("gguf_bad");
  fs::path path = dir / "bad.gguf";
  std::vector<unsigned char> good = sample_writer().bytes();

  auto patched = [&](size_t offset, std::vector<unsigned char> bytes) {
    std::vector<unsigned char> b = good;
    std::copy(bytes.begin(), bytes.end(), b.begin() + long(offset));
    write_file(path, b);
  };
  patched(0, {'G', 'G', 'M', 'L'});
  expect_open_error(path, "bad magic");
  patched(4, {1, 0, 0, 0});
  expect_open_error(path, "version 1");
  patched(4, {0, 0, 0, 3});  // big-endian
  expect_open_error(path, "unsupported GGUF version");
  patched(8, {0, 0, 0, 0, 0, 0, 0, 0x10});  // 2^60 tensors
  expect_open_error(path, "tensor count");
  patched(16, {0, 0, 0, 0, 0, 0, 0, 0x10});  // 2^60 metadata entries
  expect_open_error(path, "metadata count");
  patched(24, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0});  // huge key length
  expect_open_error(path, "metadata key #0");

  GgufWriter w;
  w.kv<uint32_t>("weird", 99, 0);
  write_file(path, w.bytes());
  expect_open_error(path, "'weird'");

  GgufWriter w2;
  w2.kv_u32("k", 1);
  w2.kv_u32("k", 2);
  write_file(path, w2.bytes());
  expect_open_error(path, "duplicate metadata key 'k'");

  GgufWriter w3;
  w3.tensor("odd", {32}, 16, std::vector<unsigned char>(64, 0));  // IQ2_XXS: unknown here
  write_file(path, w3.bytes());
  expect_open_error(path, "tensor 'odd' has unknown or unsupported tensor type id 16");

  GgufWriter w4;
  w4.tensor("q", {31}, 8, std::vector<unsigned char>(34, 0));  // not whole Q8_0 blocks
  write_file(path, w4.bytes());
  expect_open_error(path, "tensor 'q'");

  GgufWriter w5;
  w5.tensor("x", {4}, 0, std::vector<unsigned char>(16, 0));
  w5.tensor("x", {4}, 0, std::vector<unsigned char>(16, 0));
  write_file(path, w5.bytes());
  expect_open_error(path, "duplicate tensor 'x'");

  GgufWriter w6;
  w6.kv_u32("general.alignment", 48);
  write_file(path, w6.bytes());
  expect_open_error(path, "general.alignment");

  // An array of strings whose count exceeds what the file could hold.
  GgufWriter w7;
  {
    Bytes e;
    e.str("tokens");
    e.put<uint32_t>(GgufWriter::ARRAY);
    e.put<uint32_t>(GgufWriter::STRING);
    e.put<uint64_t>(1ull << 50);
    w7.kv_raw(e.b);
  }
  write_file(path, w7.bytes());
  expect_open_error(path, "metadata 'tokens' claims");
  fs::remove_all(dir);
}

// ---- the real SmolLM2 file ----

const std::string kModel = std::string(SPTRAIN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

TEST(GgufSmolLM2, HeaderFacts) {
  if (!fs::exists(kModel)) GTEST_SKIP() << kModel << " not found: run tools/fetch_smollm2.sh";
  gguf::File f = gguf::File::open(kModel);
  EXPECT_EQ(f.file_size(), 98362432u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 30);
  EXPECT_EQ(f.get_int("llama.embedding_length"), 576);
  EXPECT_EQ(f.get_int("llama.feed_forward_length"), 1536);
  EXPECT_EQ(f.get_int("llama.attention.head_count"), 9);
  EXPECT_EQ(f.get_int("llama.attention.head_count_kv"), 3);
  EXPECT_EQ(f.get_float("llama.rope.freq_base"), 100000.0);
  EXPECT_NEAR(f.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  ASSERT_EQ(f.tensors().size(), 272u);
  int q4_1 = 0, f32 = 0, q8_0 = 0;
  for (const auto& t : f.tensors()) {
    q4_1 += t.type == gguf::TensorType::Q4_1;
    f32 += t.type == gguf::TensorType::F32;
    q8_0 += t.type == gguf::TensorType::Q8_0;
  }
  EXPECT_EQ(q4_1, 210);
  EXPECT_EQ(f32, 61);
  EXPECT_EQ(q8_0, 1);
  EXPECT_EQ(f.tensor("token_embd.weight").type, gguf::TensorType::Q8_0);
  EXPECT_EQ(f.tensor("token_embd.weight").torch_shape(), (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(f.tensor("blk.0.attn_k.weight").torch_shape(), (std::vector<int64_t>{192, 576}));
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
}

}  // namespace
}  // namespace sptrain
