// Prompt export: every format round-trips bit for bit, the files have the
// documented layout and sizes (the 175B example: 983,040 bytes of values),
// imports check the model, and bad files are clear errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../support/test_util.hpp"
#include "export_fixture.hpp"
#include "sptrain/core/dtype.hpp"
#include "sptrain/io/npy.hpp"
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

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

class Export : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_path(std::string("export_") +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = test::write_fixture_model(path("model.h5"));
    ckpt_ = test::fixture_checkpoint(model_, 5, 16);
    write_checkpoint(path("step_000042.h5"), ckpt_);
    stored_ = read_stored_prompt(path("step_000042.h5"));
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }
  ModelConfig model_config() const { return read_model_config(h5::File::open_read(model_)); }
  PeftModelInfo peft_info() const { return PeftModelInfo{2, 4, "fixture-llama"}; }

  std::string dir_, model_;
  Checkpoint ckpt_;
  StoredPrompt stored_;
};

TEST_F(Export, CheckpointReadsAsAStoredPromptWithItsTask) {
  EXPECT_EQ(stored_.format, "checkpoint");
  EXPECT_TRUE(same_bits(stored_.values, ckpt_.prompt));
  EXPECT_EQ(stored_.rows, 5);
  EXPECT_EQ(stored_.cols, 16);
  EXPECT_EQ(stored_.step, 42);
  EXPECT_EQ(stored_.model_fingerprint, ckpt_.model_fingerprint);
  EXPECT_TRUE(stored_.has_task);
  EXPECT_EQ(stored_.task_max_length, 40);  // from the recorded config_yaml
  EXPECT_EQ(stored_.labels, ckpt_.labels);
}

TEST_F(Export, Hdf5RoundTripsBitForBitWithItsMetadata) {
  const ExportResult r = export_hdf5(stored_, path("p.h5"));
  EXPECT_EQ(r.bytes, int64_t(fs::file_size(path("p.h5"))));
  EXPECT_EQ(r.value_bytes, 5 * 16 * 4);
  EXPECT_FALSE(fs::exists(path("p.h5.tmp")));
  const StoredPrompt back = read_stored_prompt(path("p.h5"));
  EXPECT_EQ(back.format, "hdf5");
  EXPECT_TRUE(same_bits(back.values, ckpt_.prompt));
  EXPECT_EQ(back.rows, 5);
  EXPECT_EQ(back.cols, 16);
  EXPECT_EQ(back.model_fingerprint, ckpt_.model_fingerprint);
  EXPECT_EQ(back.model_path, model_);
  EXPECT_EQ(back.step, 42);
  EXPECT_EQ(back.eval_accuracy, 0.875);
  EXPECT_EQ(back.eval_loss, 0.25);
  EXPECT_EQ(back.task_template, ckpt_.task_template);
  EXPECT_EQ(back.labels, ckpt_.labels);
  EXPECT_EQ(back.task_max_length, 40);
  EXPECT_TRUE(back.has_task);
  // The file says what it is (h5dump -A shows these).
  const h5::File f = h5::File::open_read(path("p.h5"));
  EXPECT_EQ(f.attr_string("/", "format"), "sptrain-prompt");
  EXPECT_EQ(f.attr_int("/", "prompt_length"), 5);
  EXPECT_EQ(f.attr_int("/", "d_model"), 16);
  EXPECT_FALSE(f.exists("optimizer"));  // the prompt alone
}

TEST_F(Export, NpyRoundTripsBitForBitAndHasNumpysLayout) {
  const ExportResult r = export_npy(stored_, path("p.npy"), "f32");
  const std::string bytes = slurp(path("p.npy"));
  EXPECT_EQ(r.bytes, int64_t(bytes.size()));
  EXPECT_EQ(int64_t(bytes.size()), npy::file_bytes(5, 16, 4));
  // Format 1.0: magic, version, little-endian header length, then the dict
  // padded with spaces to a multiple of 64 bytes, ending in '\n'.
  ASSERT_GE(bytes.size(), 128u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len = size_t(uint8_t(bytes[8])) | size_t(uint8_t(bytes[9])) << 8;
  EXPECT_EQ((10 + header_len) % 64, 0u);
  const std::string dict = bytes.substr(10, header_len);
  EXPECT_THAT(dict, AllOf(HasSubstr("'descr': '<f4'"), HasSubstr("'fortran_order': False"),
                          HasSubstr("'shape': (5, 16)")));
  EXPECT_EQ(dict.back(), '\n');
  EXPECT_EQ(bytes.size() - 10 - header_len, 5u * 16u * 4u);
  std::vector<float> raw(80);
  std::memcpy(raw.data(), bytes.data() + 10 + header_len, 320);
  EXPECT_TRUE(same_bits(raw, ckpt_.prompt));

  const StoredPrompt back = read_stored_prompt(path("p.npy"));
  EXPECT_EQ(back.format, "npy");
  EXPECT_TRUE(same_bits(back.values, ckpt_.prompt));
  EXPECT_EQ(back.model_fingerprint, "");  // npy carries no metadata
  EXPECT_FALSE(back.has_task);
}

TEST_F(Export, NpyBf16IsRoundedToNearestEvenAndStoredAsUint16) {
  export_npy(stored_, path("p16.npy"), "bf16");
  const std::string bytes = slurp(path("p16.npy"));
  EXPECT_THAT(bytes.substr(10, 118), HasSubstr("'descr': '<u2'"));
  EXPECT_EQ(int64_t(bytes.size()), npy::file_bytes(5, 16, 2));
  const StoredPrompt back = read_stored_prompt(path("p16.npy"));
  ASSERT_EQ(back.values.size(), ckpt_.prompt.size());
  for (size_t i = 0; i < back.values.size(); ++i) {
    if (std::isnan(ckpt_.prompt[i])) {
      EXPECT_TRUE(std::isnan(back.values[i]));
      continue;
    }
    // The top 16 bits of an f32, rounded to nearest even: exactly
    // representable and within half a bf16 step (2^-8 relative).
    uint32_t u;
    std::memcpy(&u, &back.values[i], 4);
    EXPECT_EQ(u & 0xffffu, 0u) << i;
    if (std::isfinite(ckpt_.prompt[i]) && std::abs(ckpt_.prompt[i]) < 1e30f) {
      // (2^-133: the spacing of bf16's subnormals)
      EXPECT_LE(std::abs(back.values[i] - ckpt_.prompt[i]),
                std::max(std::abs(ckpt_.prompt[i]) * 0x1p-8f, 0x1p-133f)) << i;
    }
  }
  // Hand-checked ties: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 and goes
  // to the even one (1); 1 + 3*2^-8 goes to 1 + 2^-6.
  StoredPrompt ties = stored_;
  ties.rows = 1;
  ties.cols = 3;
  ties.values = {1.00390625f, 1.01171875f, -2.0f};
  export_npy(ties, path("ties.npy"), "bf16");
  const StoredPrompt t = read_stored_prompt(path("ties.npy"));
  EXPECT_EQ(t.values, (std::vector<float>{1.0f, 1.015625f, -2.0f}));
}

TEST_F(Export, PeftRoundTripsBitForBitAndHasPeftsFields) {
  const ExportResult r = export_peft(stored_, path("adapter"), peft_info());
  ASSERT_EQ(r.files.size(), 2u);
  EXPECT_EQ(r.bytes, int64_t(fs::file_size(path("adapter/adapter_model.safetensors")) +
                             fs::file_size(path("adapter/adapter_config.json"))));
  EXPECT_FALSE(fs::exists(path("adapter/adapter_model.safetensors.tmp")));

  // The safetensors layout, read by the project's independent reader.
  auto shard = safetensors::Shard::open(path("adapter/adapter_model.safetensors"));
  ASSERT_EQ(shard->tensors().size(), 1u);
  const safetensors::TensorInfo& t = shard->tensors()[0];
  EXPECT_EQ(t.name, "prompt_embeddings");
  EXPECT_EQ(t.dtype, "F32");
  EXPECT_EQ(t.shape, (std::vector<int64_t>{5, 16}));
  EXPECT_EQ(shard->header_bytes() % 8, 0u);  // data 8-byte aligned
  const nlohmann::json header = nlohmann::json::parse(shard->header_json());
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  EXPECT_EQ(header["__metadata__"]["sptrain_model_fingerprint"], ckpt_.model_fingerprint);

  const nlohmann::json c = nlohmann::json::parse(slurp(path("adapter/adapter_config.json")));
  EXPECT_EQ(c["peft_type"], "PROMPT_TUNING");
  EXPECT_EQ(c["task_type"], "CAUSAL_LM");
  EXPECT_EQ(c["num_virtual_tokens"], 5);
  EXPECT_EQ(c["token_dim"], 16);
  EXPECT_EQ(c["num_transformer_submodules"], 1);
  EXPECT_EQ(c["num_attention_heads"], 4);
  EXPECT_EQ(c["num_layers"], 2);
  EXPECT_EQ(c["base_model_name_or_path"], "fixture-llama");
  EXPECT_EQ(c["prompt_tuning_init"], "RANDOM");
  EXPECT_EQ(c["inference_mode"], true);
  EXPECT_TRUE(c["revision"].is_null());
  EXPECT_TRUE(c["tokenizer_name_or_path"].is_null());

  for (const std::string& p : {path("adapter"), path("adapter/adapter_model.safetensors")}) {
    const StoredPrompt back = read_stored_prompt(p);
    EXPECT_EQ(back.format, "peft") << p;
    EXPECT_TRUE(same_bits(back.values, ckpt_.prompt)) << p;
    EXPECT_EQ(back.model_fingerprint, ckpt_.model_fingerprint) << p;
    EXPECT_EQ(back.step, 42) << p;
    EXPECT_FALSE(back.has_task);
  }
}

// The 175B example (P = 20, d = 12288) is 983,040 bytes of fp32 values; the
// synthetic checkpoint is 1 MB, so the real formula is checked on real files.
TEST_F(Export, The175BExampleIs983040BytesOfValues) {
  constexpr int64_t P = 20, d = 12288;
  static_assert(P * d * 4 == 983040);
  StoredPrompt big = stored_;
  big.rows = P;
  big.cols = d;
  big.values = test::tricky_prompt(P, d, 11);

  const ExportResult npy = export_npy(big, path("big.npy"), "f32");
  const std::string bytes = slurp(path("big.npy"));
  const size_t header_len = size_t(uint8_t(bytes[8])) | size_t(uint8_t(bytes[9])) << 8;
  EXPECT_EQ(bytes.size() - 10 - header_len, 983040u);
  EXPECT_EQ(npy.value_bytes, 983040);
  EXPECT_EQ(npy.bytes, 983040 + 128);
  EXPECT_EQ(npy::file_bytes(P, d, 4), 983040 + 128);

  const ExportResult peft = export_peft(big, path("big_adapter"), peft_info());
  auto shard = safetensors::Shard::open(path("big_adapter/adapter_model.safetensors"));
  EXPECT_EQ(shard->tensors()[0].nbytes, 983040u);
  EXPECT_EQ(int64_t(fs::file_size(path("big_adapter/adapter_model.safetensors"))),
            int64_t(shard->header_bytes()) + 983040);
  EXPECT_EQ(peft.value_bytes, 983040);

  const ExportResult h5 = export_hdf5(big, path("big.h5"));
  EXPECT_EQ(h5.value_bytes, 983040);
  EXPECT_GT(h5.bytes, 983040);  // plus metadata
  std::printf("175B example, whole exports: npy %lld, peft %lld, hdf5 %lld bytes\n",
              static_cast<long long>(npy.bytes), static_cast<long long>(peft.bytes),
              static_cast<long long>(h5.bytes));
  EXPECT_TRUE(same_bits(read_stored_prompt(path("big.h5")).values, big.values));
  EXPECT_TRUE(same_bits(read_stored_prompt(path("big.npy")).values, big.values));
  EXPECT_TRUE(same_bits(read_stored_prompt(path("big_adapter")).values, big.values));
}

TEST_F(Export, LoadPromptFileAcceptsEveryFormatAndChecksTheModel) {
  export_hdf5(stored_, path("p.h5"));
  export_npy(stored_, path("p.npy"), "f32");
  export_peft(stored_, path("adapter"), peft_info());
  const ModelConfig m = model_config();
  for (const std::string& p : {path("step_000042.h5"), path("p.h5"), path("p.npy"), path("adapter"),
                               path("adapter/adapter_model.safetensors")})
    EXPECT_TRUE(same_bits(load_prompt_file(p, 5, m), ckpt_.prompt)) << p;

  // prompt.length must match.
  EXPECT_THAT(error_of([&] { load_prompt_file(path("p.npy"), 6, m); }),
              AllOf(HasSubstr("p.npy"), HasSubstr("5 vectors"), HasSubstr("prompt.length is 6")));

  // Another d_model: every format says so.
  ModelConfig wide = m;
  wide.d_model = 32;
  for (const std::string& p : {path("step_000042.h5"), path("p.h5"), path("p.npy"), path("adapter")})
    EXPECT_THAT(error_of([&] { load_prompt_file(p, 5, wide); }),
                AllOf(HasSubstr(p), HasSubstr("d_model 16"), HasSubstr("d_model 32")));

  // Another model of the same shape: the formats that record a fingerprint
  // catch it; npy cannot (it has none) and loads.
  ModelConfig other = m;
  other.fingerprint = "ffffffffffffffff";
  for (const std::string& p : {path("step_000042.h5"), path("p.h5"), path("adapter")})
    EXPECT_THAT(error_of([&] { load_prompt_file(p, 5, other); }),
                AllOf(HasSubstr(p), HasSubstr("another model"), HasSubstr(ckpt_.model_fingerprint),
                      HasSubstr("ffffffffffffffff")));
  EXPECT_TRUE(same_bits(load_prompt_file(path("p.npy"), 5, other), ckpt_.prompt));
}

TEST_F(Export, ForeignPeftAndNumpyFilesAreRead) {
  // What numpy.save writes for a float64 array in Fortran order, and a
  // float32 one with a version 2.0 header.
  std::vector<double> col_major(6);
  for (int c = 0; c < 3; ++c)
    for (int r = 0; r < 2; ++r) col_major[size_t(c * 2 + r)] = r * 10 + c;
  std::string dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
  dict.append(128 - 10 - dict.size() - 1, ' ');
  dict += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8) + char(dict.size()) + char(0) + dict;
  file.append(reinterpret_cast<const char*>(col_major.data()), 48);
  spit(path("f.npy"), file);
  const StoredPrompt f = read_stored_prompt(path("f.npy"));
  EXPECT_EQ(f.values, (std::vector<float>{0, 1, 2, 10, 11, 12}));

  std::string dict2 = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }";
  dict2.append(128 - 12 - dict2.size() - 1, ' ');
  dict2 += '\n';
  const float two[2] = {1.5f, -3.0f};
  std::string v2 = std::string("\x93NUMPY\x02\x00", 8) + char(dict2.size()) + std::string(3, '\0') + dict2 +
                   std::string(reinterpret_cast<const char*>(two), 8);
  spit(path("v2.npy"), v2);
  EXPECT_EQ(read_stored_prompt(path("v2.npy")).values, (std::vector<float>{1.5f, -3.0f}));

  // A PEFT adapter saved in bf16 by another tool: no sptrain metadata.
  const uint16_t h[2] = {f32_to_bf16(0.5f), f32_to_bf16(-1.25f)};
  std::string json = R"({"prompt_embeddings":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}})";
  uint64_t n = json.size();
  std::string st(reinterpret_cast<const char*>(&n), 8);
  st += json + std::string(reinterpret_cast<const char*>(h), 4);
  spit(path("foreign.safetensors"), st);
  const StoredPrompt p = read_stored_prompt(path("foreign.safetensors"));
  EXPECT_EQ(p.values, (std::vector<float>{0.5f, -1.25f}));
  EXPECT_EQ(p.model_fingerprint, "");
}

TEST_F(Export, BadFilesAreErrorsNamingTheFileAndTheProblem) {
  export_npy(stored_, path("p.npy"), "f32");
  const std::string good = slurp(path("p.npy"));
  spit(path("truncated.npy"), good.substr(0, good.size() - 7));
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("truncated.npy")); }),
              AllOf(HasSubstr("truncated.npy"), HasSubstr("truncated")));

  std::string one_d = good;
  one_d.replace(one_d.find("(5, 16)"), 7, "(80,)  ");
  spit(path("1d.npy"), one_d);
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("1d.npy")); }),
              AllOf(HasSubstr("1d.npy"), HasSubstr("2-D")));

  std::string ints = good;
  ints.replace(ints.find("<f4"), 3, "<i4");
  spit(path("ints.npy"), ints);
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("ints.npy")); }),
              AllOf(HasSubstr("ints.npy"), HasSubstr("'<i4'")));

  // A shape whose product overflows 64 bits (4 x (2^62 + 1) wraps to 4) is
  // refused against the data's size, not multiplied: 16 bytes are not enough.
  std::string wrap = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4611686018427387905), }";
  wrap.append(128 - 10 - wrap.size() - 1, ' ');
  wrap += '\n';
  spit(path("wrap.npy"), std::string("\x93NUMPY\x01\x00", 8) + char(wrap.size()) + char(0) + wrap +
                             std::string(16, '\0'));
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("wrap.npy")); }),
              AllOf(HasSubstr("wrap.npy"), HasSubstr("4611686018427387905"), HasSubstr("16 bytes")));

  spit(path("text.txt"), "hello, world\n");
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("text.txt")); }),
              AllOf(HasSubstr("text.txt"), HasSubstr("not a prompt file")));
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("missing.npy")); }),
              AllOf(HasSubstr("missing.npy"), HasSubstr("no such file")));
  EXPECT_THAT(error_of([&] { read_stored_prompt(model_); }),
              AllOf(HasSubstr(model_), HasSubstr("not a prompt"), HasSubstr("sptrain-model")));

  fs::create_directories(path("empty_dir"));
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("empty_dir")); }),
              AllOf(HasSubstr("empty_dir"), HasSubstr("adapter_model.safetensors")));

  export_peft(stored_, path("lora"), peft_info());
  spit(path("lora/adapter_config.json"), R"({"peft_type": "LORA", "r": 8})");
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("lora")); }),
              AllOf(HasSubstr("adapter_config.json"), HasSubstr("LORA"), HasSubstr("PROMPT_TUNING")));
  spit(path("lora/adapter_config.json"),
       R"({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 7, "token_dim": 16})");
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("lora")); }),
              AllOf(HasSubstr("num_virtual_tokens 7"), HasSubstr("[5, 16]")));

  // adapter_config.json as JSON the way every reader takes it: a number beyond
  // a double or nesting beyond 64 levels is an Error naming the file, not
  // nlohmann's exception.
  spit(path("lora/adapter_config.json"), R"({"peft_type": "PROMPT_TUNING", "token_dim": 1e400})");
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("lora")); }),
              AllOf(HasSubstr("adapter_config.json"), HasSubstr("invalid JSON"), HasSubstr("1e400")));
  spit(path("lora/adapter_config.json"), std::string(100, '[') + std::string(100, ']'));
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("lora")); }),
              AllOf(HasSubstr("adapter_config.json"), HasSubstr("deeper than 64")));

  std::string json = R"({"weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  uint64_t n = json.size();
  spit(path("other.safetensors"), std::string(reinterpret_cast<const char*>(&n), 8) + json + "abcd");
  EXPECT_THAT(error_of([&] { read_stored_prompt(path("other.safetensors")); }),
              AllOf(HasSubstr("other.safetensors"), HasSubstr("prompt_embeddings"), HasSubstr("weight")));
}

TEST_F(Export, AFailedExportLeavesNoTemporaryAndTheOldFileIntact) {
  // The destination is a folder: the rename fails after the temporary was written.
  fs::create_directories(path("is_a_dir"));
  EXPECT_THAT(error_of([&] { export_npy(stored_, path("is_a_dir"), "f32"); }), HasSubstr("is_a_dir"));
  EXPECT_FALSE(fs::exists(path("is_a_dir.tmp")));
  EXPECT_TRUE(fs::is_directory(path("is_a_dir")));

  // A folder that does not exist: nothing is created.
  EXPECT_THAT(error_of([&] { export_hdf5(stored_, path("no/such/dir/p.h5")); }), HasSubstr("p.h5"));
  EXPECT_FALSE(fs::exists(path("no")));

  // A PEFT export onto a file is refused; the file stays.
  spit(path("file"), "keep me");
  EXPECT_THAT(error_of([&] { export_peft(stored_, path("file"), peft_info()); }),
              HasSubstr("not a folder"));
  EXPECT_EQ(slurp(path("file")), "keep me");

  // Exporting again replaces the old file whole.
  export_npy(stored_, path("p.npy"), "bf16");
  export_npy(stored_, path("p.npy"), "f32");
  EXPECT_TRUE(same_bits(read_stored_prompt(path("p.npy")).values, ckpt_.prompt));
}

}  // namespace
}  // namespace sptrain
