// Issue 19, hostile conversion sources: GGUF headers and config.json values
// out of range, tensors whose bytes overlap, config.json that is a folder,
// lengths that would make a reader allocate without bound. Each must be an
// sptrain::Error naming the file and the key (or tensor) before anything is
// allocated or written: no output file, no temporary left behind.
// Items 2, 4, 6, 8 and 9 of the probe list; docs/security.md.
#include <limits>

#include "../convert/fixtures.hpp"
#include "hostile.hpp"
#include "sptrain/convert/convert.hpp"
#include "sptrain/io/gguf.hpp"
#include "sptrain/io/safetensors.hpp"

namespace sptrain {
namespace {

using namespace sptrain::testing;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;
using test::error_of;

// No raw library text reaches the user (item 9).
auto NoRawText() {
  return AllOf(Not(HasSubstr("bad_alloc")), Not(HasSubstr("_M_create")), Not(HasSubstr("json.exception")),
               Not(HasSubstr("vector::")));
}

// ---- GGUF ----

// A llama GGUF header with one tensor (token_embd.weight: the converter takes
// the vocabulary from it before it checks the header); `change` sets or
// overrides keys.
std::vector<unsigned char> gguf_header(const std::function<void(GgufWriter&)>& change) {
  GgufWriter w;
  w.kv_str("general.architecture", "llama");
  w.kv_u32("llama.embedding_length", 8);
  w.kv_u32("llama.feed_forward_length", 16);
  w.kv_u32("llama.attention.head_count", 2);
  w.kv_f32("llama.rope.freq_base", 10000.0f);
  change(w);
  w.tensor("token_embd.weight", {8, 4}, 0, std::vector<unsigned char>(8 * 4 * 4, 0));
  return w.bytes();
}
void default_keys(GgufWriter& w, const std::string& skip) {
  if (skip != "block_count") w.kv_u32("llama.block_count", 1);
  if (skip != "context_length") w.kv_u32("llama.context_length", 32);
  if (skip != "eps") w.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
}

// Converts; returns the error, checking no output (or temporary) is left.
std::string convert_gguf_error(const test::ScratchDir& dir, const std::vector<unsigned char>& bytes) {
  const std::string src = dir.path("bad.gguf"), out = dir.path("out.h5");
  write_file(src, bytes);
  const std::string e = error_of([&] { convert::convert_gguf(src, out, DType::F32); });
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  EXPECT_THAT(e, HasSubstr(src));
  EXPECT_THAT(e, NoRawText());
  return e;
}

// Item 2: llama.block_count = 1e9 is an error naming the key, before the
// converter plans a billion layers.
TEST(HostileGguf, HugeBlockCountIsAnError) {
  test::ScratchDir dir;
  const auto bytes = gguf_header([](GgufWriter& w) {
    default_keys(w, "block_count");
    w.kv_u32("llama.block_count", 1000000000);
  });
  EXPECT_THAT(convert_gguf_error(dir, bytes),
              HasSubstr("llama.block_count (n_layers) = 1000000000 is outside [1, 1024]"));
}

// Item 8: a NaN epsilon is refused before anything is written.
TEST(HostileGguf, NanEpsilonIsAnErrorWithoutOutput) {
  test::ScratchDir dir;
  const auto bytes = gguf_header([](GgufWriter& w) {
    default_keys(w, "eps");
    w.kv_f32("llama.attention.layer_norm_rms_epsilon", std::numeric_limits<float>::quiet_NaN());
  });
  EXPECT_THAT(convert_gguf_error(dir, bytes),
              HasSubstr("llama.attention.layer_norm_rms_epsilon (norm_eps) = nan must be a finite number > 0"));
}

// Item 8: context_length 2^62 is refused before anything is written.
TEST(HostileGguf, HugeContextLengthIsAnErrorWithoutOutput) {
  test::ScratchDir dir;
  const auto bytes = gguf_header([](GgufWriter& w) {
    default_keys(w, "context_length");
    w.kv("llama.context_length", GgufWriter::U64, uint64_t(1) << 62);
  });
  EXPECT_THAT(convert_gguf_error(dir, bytes),
              HasSubstr("llama.context_length (max_positions) = 4611686018427387904 is outside [1, 16777216]"));
}

// Item 4: two tensors sharing bytes would alias each other's weights.
TEST(HostileGguf, OverlappingTensorsAreAnError) {
  test::ScratchDir dir;
  GgufWriter w;
  w.kv_str("general.architecture", "llama");
  w.tensor("a", {16}, 0, std::vector<unsigned char>(64, 1));  // bytes [0, 64)
  w.tensor("b", {8}, 0, std::vector<unsigned char>(32, 2));   // written at 64: moved to 32 below
  std::vector<unsigned char> bytes = w.bytes();
  // b's offset is the last 8 bytes of its tensor info, just before the padding to 32.
  const std::string name_b = "b";
  const auto at = std::search(bytes.begin(), bytes.end(), name_b.begin(), name_b.end(),
                              [](unsigned char x, char y) { return x == static_cast<unsigned char>(y); });
  ASSERT_NE(at, bytes.end());
  const size_t offset_at = size_t(at - bytes.begin()) + 1 + 4 + 8 + 4;  // name, n_dims, dim, type
  uint64_t off = 0;
  std::memcpy(&off, &bytes[offset_at], 8);
  ASSERT_EQ(off, 64u);
  off = 32;
  std::memcpy(&bytes[offset_at], &off, 8);
  const std::string path = dir.path("overlap.gguf");
  write_file(path, bytes);
  EXPECT_THAT(error_of([&] { (void)gguf::File::open(path); }),
              AllOf(HasSubstr(path), HasSubstr("tensors 'a' and 'b' overlap in the file")));
}

// ---- safetensors ----

// A minimal llama folder: config.json (edited by the test) and one tensor.
json llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"hidden_size", 16},
          {"intermediate_size", 32},
          {"num_hidden_layers", 1},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"vocab_size", 260},
          {"max_position_embeddings", 64},
          {"rms_norm_eps", 1e-5},
          {"tie_word_embeddings", true}};
}

std::string convert_folder_error(const test::ScratchDir& dir, const std::string& config_text) {
  const fs::path src = dir.dir() / "model";
  fs::create_directories(src);
  std::ofstream(src / "config.json") << config_text;
  write_file(src / "model.safetensors",
             safetensors_bytes({{"model.norm.weight", {"F32", {16}, std::vector<float>(16, 1.0f)}}}));
  std::ofstream(src / "tokenizer.json") << tiny_tokenizer_json();
  const std::string out = dir.path("out.h5");
  const std::string e = error_of([&] { convert::convert_safetensors(src.string(), out, DType::F32); });
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  EXPECT_THAT(e, HasSubstr((src / "config.json").string()));
  EXPECT_THAT(e, NoRawText());
  return e;
}

// Item 2: num_hidden_layers = 1e9.
TEST(HostileSafetensors, HugeLayerCountIsAnError) {
  test::ScratchDir dir;
  json c = llama_config();
  c["num_hidden_layers"] = 1000000000;
  EXPECT_THAT(convert_folder_error(dir, c.dump()),
              HasSubstr("num_hidden_layers (n_layers) = 1000000000 is outside [1, 1024]"));
}

// Item 6: 2^64 - 1 is "too large", not -1 after a cast.
TEST(HostileSafetensors, LayerCountOf2To64Minus1IsNotMinus1) {
  test::ScratchDir dir;
  json c = llama_config();
  c["num_hidden_layers"] = std::numeric_limits<uint64_t>::max();
  const std::string e = convert_folder_error(dir, c.dump());
  EXPECT_THAT(e, HasSubstr("'num_hidden_layers' = 18446744073709551615 is too large"));
  EXPECT_THAT(e, Not(HasSubstr("-1")));
}

// Item 6: head_dim or num_attention_heads of 1e9.
TEST(HostileSafetensors, HugeHeadDimOrHeadCountIsAnError) {
  test::ScratchDir dir;
  json c = llama_config();
  c["head_dim"] = 1000000000;
  EXPECT_THAT(convert_folder_error(dir, c.dump()), HasSubstr("head_dim = 1000000000 is outside [1, 1048576]"));
  c = llama_config();
  c["head_dim"] = 4;
  c["num_attention_heads"] = 1000000000;
  c.erase("num_key_value_heads");
  EXPECT_THAT(convert_folder_error(dir, c.dump()),
              HasSubstr("num_attention_heads (n_heads) = 1000000000 is outside [1, 1048576]"));
}

// Item 4: two tensors sharing bytes.
TEST(HostileSafetensors, OverlappingTensorsAreAnError) {
  test::ScratchDir dir;
  const json header = {{"a", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}},
                       {"b", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {8, 24}}}}};
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  Bytes f;
  f.put<uint64_t>(h.size());
  f.raw(h.data(), h.size());
  f.raw(std::vector<unsigned char>(24, 0).data(), 24);
  const std::string path = dir.path("overlap.safetensors");
  write_file(path, f.b);
  EXPECT_THAT(error_of([&] { (void)safetensors::Shard::open(path); }),
              AllOf(HasSubstr(path), HasSubstr("tensors 'a' and 'b' overlap in the file (data_offsets)")));
}

// Item 9: config.json that is a folder is named as such.
TEST(HostileSafetensors, ConfigJsonThatIsAFolderIsAnError) {
  test::ScratchDir dir;
  const fs::path src = dir.dir() / "model";
  fs::create_directories(src / "config.json");
  write_file(src / "model.safetensors",
             safetensors_bytes({{"model.norm.weight", {"F32", {16}, std::vector<float>(16, 1.0f)}}}));
  const std::string e = error_of([&] { convert::convert_safetensors(src.string(), dir.path("out.h5"), DType::F32); });
  EXPECT_THAT(e, AllOf(HasSubstr((src / "config.json").string()), HasSubstr("is a folder")));
  EXPECT_FALSE(fs::exists(dir.path("out.h5")));
}

// Item 9: lengths in a header that would make a reader allocate without
// bound are named errors, not std::bad_alloc or basic_string::_M_create.
TEST(HostileLengths, HugeLengthsAreNamedErrorsNotRawExceptions) {
  test::ScratchDir dir;
  // safetensors: a header length of 2^63.
  Bytes st;
  st.put<uint64_t>(uint64_t(1) << 63);
  st.raw("{}      ", 8);
  const std::string st_path = dir.path("huge_header.safetensors");
  write_file(st_path, st.b);
  EXPECT_THAT(error_of([&] { (void)safetensors::Shard::open(st_path); }),
              AllOf(HasSubstr(st_path), HasSubstr("header length"), NoRawText()));
  // GGUF: a metadata key of 2^62 bytes.
  Bytes g;
  g.put<uint32_t>(0x46554747);
  g.put<uint32_t>(3);
  g.put<uint64_t>(0);
  g.put<uint64_t>(1);
  g.put<uint64_t>(uint64_t(1) << 62);
  g.raw("general.architecture", 20);
  const std::string g_path = dir.path("huge_key.gguf");
  write_file(g_path, g.b);
  EXPECT_THAT(error_of([&] { (void)gguf::File::open(g_path); }),
              AllOf(HasSubstr(g_path), HasSubstr("metadata key #0"), NoRawText()));
}

}  // namespace
}  // namespace sptrain
