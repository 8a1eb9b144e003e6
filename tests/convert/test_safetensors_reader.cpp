// safetensors reader: single and sharded folders, dtypes, corrupt headers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/safetensors.hpp"

namespace sptrain {
namespace {
using namespace sptrain::testing;
using ::testing::HasSubstr;

void write_config(const fs::path& dir) { std::ofstream(dir / "config.json") << R"({"x": 1})"; }

TEST(Safetensors, SingleFileAllFloatDtypes) {
  fs::path dir = temp_dir("st_single");
  write_config(dir);
  // Values exact in every dtype: multiples of 1/8 below 16.
  std::vector<float> v = {0.5f, -1.25f, 3.0f, 15.875f, -0.125f, 0.0f};
  write_file(dir / "model.safetensors", safetensors_bytes({{"a.f32", {"F32", {2, 3}, v}},
                                                           {"b.f16", {"F16", {3, 2}, v}},
                                                           {"c.bf16", {"BF16", {6}, v}},
                                                           {"d.i64", {"I64", {2}, {1, 2}}}}));
  safetensors::Folder f = safetensors::Folder::open(dir.string());
  EXPECT_EQ(f.config()["x"], 1);
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.tensor("a.f32").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.tensor("b.f16").nbytes, 12u);
  for (const char* name : {"a.f32", "b.f16", "c.bf16"}) {
    std::vector<float> out(6, -99.0f);
    f.read_f32(f.tensor(name), out.data());
    EXPECT_EQ(out, v) << name;
  }
  std::vector<int64_t> ints(2);
  f.read_raw(f.tensor("d.i64"), ints.data());
  EXPECT_EQ(ints, (std::vector<int64_t>{1, 2}));
  std::vector<float> out(2);
  try {
    f.read_f32(f.tensor("d.i64"), out.data());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("tensor 'd.i64' has dtype I64"));
  }
  EXPECT_THROW(f.tensor("nope"), Error);
  fs::remove_all(dir);
}

TEST(Safetensors, ShardedFolder) {
  fs::path dir = temp_dir("st_sharded");
  write_config(dir);
  write_file(dir / "model-00001-of-00002.safetensors",
             safetensors_bytes({{"x", {"F32", {2}, {1, 2}}}, {"y", {"F32", {1}, {3}}}}));
  write_file(dir / "model-00002-of-00002.safetensors", safetensors_bytes({{"z", {"BF16", {2}, {4, 5}}}}));
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"metadata": {"total_size": 16}, "weight_map": {"x": "model-00001-of-00002.safetensors",
            "y": "model-00001-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"}})";
  safetensors::Folder f = safetensors::Folder::open(dir.string());
  ASSERT_EQ(f.shards().size(), 2u);
  std::vector<float> z(2);
  f.read_f32(f.tensor("z"), z.data());
  EXPECT_EQ(z, (std::vector<float>{4, 5}));
  EXPECT_THAT(f.file_of(f.tensor("z")), HasSubstr("model-00002-of-00002"));

  // The index names a tensor that its shard does not hold.
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map": {"x": "model-00001-of-00002.safetensors", "w": "model-00002-of-00002.safetensors"}})";
  try {
    safetensors::Folder::open(dir.string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("tensor 'w'"));
  }
  fs::remove_all(dir);
}

void expect_open_error(const fs::path& dir, const std::string& what) {
  try {
    safetensors::Folder::open(dir.string());
    ADD_FAILURE() << "no error for " << what;
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(what));
  }
}

TEST(Safetensors, CorruptFilesAreClearErrors) {
  fs::path dir = temp_dir("st_bad");
  expect_open_error(dir, "config.json");
  write_config(dir);
  expect_open_error(dir, "no model.safetensors");
  fs::path file = dir / "model.safetensors";
  std::vector<unsigned char> good = safetensors_bytes({{"w", {"F32", {4}, {1, 2, 3, 4}}}});

  // Every truncation is an error naming the file.
  for (size_t n = 0; n < good.size(); ++n) {
    write_file(file, std::vector<unsigned char>(good.begin(), good.begin() + long(n)));
    try {
      safetensors::Folder::open(dir.string());
      ADD_FAILURE() << "prefix of " << n << " bytes accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(file.string())) << n;
    }
  }
  // A header length larger than the file.
  std::vector<unsigned char> b = good;
  b[6] = 0x01;
  write_file(file, b);
  expect_open_error(dir, "header length");

  auto with_header = [&](const std::string& json, size_t data_bytes) {
    Bytes f;
    f.put<uint64_t>(json.size());
    f.raw(json.data(), json.size());
    f.b.resize(f.b.size() + data_bytes, 0);
    write_file(file, f.b);
  };
  with_header(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 32]}})", 16);
  expect_open_error(dir, "tensor 'w': data_offsets [0, 32] are outside the data");
  with_header(R"({"w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}})", 16);
  expect_open_error(dir, "tensor 'w': data_offsets span 16 bytes");
  with_header(R"({"w": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 16]}})", 16);
  expect_open_error(dir, "tensor 'w': unknown dtype 'Q4'");
  with_header(R"({"w": {"dtype": "F32", "shape": [4]}})", 16);
  expect_open_error(dir, "tensor 'w'");
  with_header(R"({"w": )", 16);
  expect_open_error(dir, "invalid JSON");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sptrain
