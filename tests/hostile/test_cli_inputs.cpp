// Issue 19, hostile command-line inputs and request files: init-model with
// sizes out of range (an error and no file), infer with a thread count that
// would exhaust memory, a folder as --input, request lines and adapter
// configs whose JSON overflows a double (a named error, never nlohmann's raw
// "[json.exception...]" text). Items 2, 3, 8 and 9 of the probe list.
#include <fstream>

#include "../support/run_binary.hpp"
#include "hostile.hpp"
#include "sptrain/prompt/peft.hpp"
#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using test::error_of;
using test::run_sptrain;

auto NoRawText() {
  return AllOf(Not(HasSubstr("bad_alloc")), Not(HasSubstr("_M_create")), Not(HasSubstr("json.exception")));
}

class HostileCli : public ::testing::Test {
 protected:
  // `sptrain init-model --out OUT ARGS...` must fail, naming OUT and `what`,
  // and leave neither OUT nor a temporary file.
  void expect_init_model_error(const std::vector<std::string>& args, const std::string& what) {
    const std::string out = dir_.path("m.h5");
    std::vector<std::string> all = {"init-model", "--out", out};
    all.insert(all.end(), args.begin(), args.end());
    const test::CommandResult r = run_sptrain(all, dir_.dir().string());
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_THAT(r.err, AllOf(HasSubstr("sptrain: error: " + out), HasSubstr(what), NoRawText()));
    for (const auto& e : fs::directory_iterator(dir_.dir()))
      EXPECT_THAT(e.path().filename().string(), Not(HasSubstr("m.h5"))) << "left behind";
  }
  test::ScratchDir dir_;
};

// Item 2: a billion layers is a clear error before anything is planned.
TEST_F(HostileCli, InitModelWithABillionLayersIsAnError) {
  expect_init_model_error({"--layers", "1000000000"}, "n_layers = 1000000000 is outside [1, 1024]");
}

// Item 8: init-model validates before writing.
TEST_F(HostileCli, InitModelWithZeroPositionsWritesNothing) {
  expect_init_model_error({"--max-positions", "0"}, "max_positions = 0 is outside [1, 16777216]");
}

TEST_F(HostileCli, InitModelWithNanStdWritesNothing) {
  expect_init_model_error({"--std", "nan"}, "standard deviation nan must be a finite number >= 0");
}

// Item 3: `infer --threads 100000` is refused before the model is opened
// (the files named do not exist: the flag is what the command must name).
TEST_F(HostileCli, InferWithAHundredThousandThreadsIsAnError) {
  const test::CommandResult r =
      run_sptrain({"infer", "--model", "absent.h5", "--prompt", "t=absent.h5", "--threads", "100000"},
                  dir_.dir().string());
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, AllOf(HasSubstr("--threads"), HasSubstr("100000"), HasSubstr("1024")));
  EXPECT_THAT(r.err, Not(HasSubstr("absent.h5")));
  EXPECT_EQ(r.out, "");
}

class HostileInfer : public HostileCli {
 protected:
  void SetUp() override {
    model_ = test::write_hostile_model(dir_.path("model.h5"));
    prompt_ = dir_.path("prompt.h5");
    write_checkpoint(prompt_, test::hostile_checkpoint(model_));
  }
  // `--input input`, with standard input read from the file `stdin` when given.
  test::CommandResult infer(const std::string& input, const std::string& stdin_file = "") {
    return run_sptrain({"infer", "--model", model_, "--prompt", "t=" + prompt_, "--input", input, "--threads", "1"},
                       dir_.dir().string(), stdin_file);
  }
  std::string model_, prompt_;
};

// Item 9: a folder as --input was read as no lines (rc 0, no output).
TEST_F(HostileInfer, InputThatIsAFolderIsAnError) {
  const std::string folder = dir_.path("requests");
  fs::create_directories(folder);
  const test::CommandResult r = infer(folder);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("sptrain: error: " + folder), HasSubstr("is a folder")));
  EXPECT_EQ(r.out, "");
}

// Item 9: a number beyond a double in a request line (nlohmann reports it as
// out_of_range, not parse_error).
TEST_F(HostileInfer, RequestNumberOverflowIsANamedError) {
  const std::string input = dir_.path("requests.jsonl");
  std::ofstream(input) << "{\"task\": \"t\", \"text\": \"fine\"}\n"
                       << "{\"task\": \"t\", \"text\": \"fine\", \"weight\": 1e400}\n";
  const test::CommandResult r = infer(input);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr(input + ":2: invalid JSON"), HasSubstr("number overflow"), NoRawText()));
  EXPECT_EQ(r.out, "");
}

// Input without newlines is not read without limit (item 7 for infer and
// generate): /dev/zero and a 2 MiB line on standard input stop at the line.
TEST_F(HostileInfer, ALineLongerThanTheLimitIsAnErrorNotUnboundedMemory) {
  const test::CommandResult zero = infer("/dev/zero");
  EXPECT_EQ(zero.code, 1);
  EXPECT_THAT(zero.err, AllOf(HasSubstr("/dev/zero:1: line longer than 1048576 bytes"), NoRawText()));
  EXPECT_EQ(zero.out, "");
  const std::string input = dir_.path("long.jsonl");
  std::ofstream(input) << "{\"task\": \"t\", \"text\": \"fine\"}\n{\"task\": \"t\", \"text\": \""
                       << std::string(size_t(2) << 20, 'a') << "\"}\n";
  const test::CommandResult r = infer("-", input);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("stdin:2: line longer than 1048576 bytes"));
  EXPECT_EQ(r.out, "");
}

// Item 9: the same in a PEFT folder's adapter_config.json.
TEST_F(HostileInfer, PeftConfigNumberOverflowIsANamedError) {
  const std::string peft = dir_.path("peft");
  PeftModelInfo info;
  info.num_layers = 2;
  info.num_attention_heads = 4;
  export_peft(read_stored_prompt(prompt_), peft, info);
  const std::string config = (fs::path(peft) / "adapter_config.json").string();
  ASSERT_TRUE(fs::exists(config));
  std::ofstream(config, std::ios::trunc) << "{\"peft_type\": \"PROMPT_TUNING\", \"token_dim\": 1e400}";
  EXPECT_THAT(error_of([&] { (void)read_stored_prompt(peft); }),
              AllOf(HasSubstr(config), HasSubstr("number overflow"), NoRawText()));
}

}  // namespace
}  // namespace sptrain
