// `sptrain export` and `sptrain eval --prompt` through the binary: a prompt
// trained on a tiny model, exported in every format, evaluates the same from
// each; errors exit 1 and say which check failed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../support/run_binary.hpp"
#include "../support/train_env.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/prompt/export.hpp"
#include "sptrain/train/evaluate.hpp"
#include "sptrain/train/trainer.hpp"

namespace sptrain {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

using Result = test::CommandResult;

Result run_cli(const std::vector<std::string>& args, const std::string& dir) {
  return test::run_sptrain(args, dir);
}

// The output of `sptrain eval` without its "prompt:" line (which names the file).
std::string without_prompt_line(const std::string& out) {
  std::istringstream in(out);
  std::string line, kept;
  while (std::getline(in, line))
    if (line.rfind("prompt: ", 0) != 0) kept += line + "\n";
  return kept;
}

// One prompt trained for a few steps on a tiny model, shared by the tests.
class ExportCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::temp_path("export_cli");
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = test::tiny_model(Family::Llama, "export_cli/model.h5");
    const std::string train = test::sst2_subset("train", 24, "export_cli/train.tsv");
    eval_ = test::sst2_subset("dev", 12, "export_cli/dev.tsv");
    config_ = test::tiny_config_for(model_, train, eval_, dir_ + "/run");
    config_.train.steps = 3;
    config_.train.checkpoint_every = 0;
    sptrain::train(config_, make_solo_grid());
    ckpt_ = dir_ + "/run/" + checkpoint_name(3);
    config_path_ = dir_ + "/config.yaml";
    std::ofstream(config_path_) << dump_config(config_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  Result run(const std::vector<std::string>& args) { return run_cli(args, dir_); }

  static std::string dir_, model_, eval_, ckpt_, config_path_;
  static Config config_;
};
std::string ExportCli::dir_, ExportCli::model_, ExportCli::eval_, ExportCli::ckpt_, ExportCli::config_path_;
Config ExportCli::config_;

TEST_F(ExportCli, ExportPrintsTheSizeAndWritesEachFormat) {
  const Checkpoint c = read_checkpoint(ckpt_);
  struct Case {
    std::vector<std::string> extra;
    std::string out;
    int64_t value_bytes;
  };
  const int64_t values = c.prompt_rows * c.prompt_cols;
  for (const Case& k : std::vector<Case>{{{"--format", "hdf5"}, dir_ + "/p.h5", values * 4},
                                         {{"--format", "npy"}, dir_ + "/p.npy", values * 4},
                                         {{"--format", "npy", "--dtype", "bf16"}, dir_ + "/p16.npy", values * 2},
                                         {{"--format", "peft"}, dir_ + "/adapter", values * 4}}) {
    std::vector<std::string> args = {"export", ckpt_, "--out", k.out};
    args.insert(args.end(), k.extra.begin(), k.extra.end());
    const Result r = run(args);
    ASSERT_EQ(r.code, 0) << r.err;
    int64_t bytes = 0;
    if (fs::is_directory(k.out)) {
      for (const auto& e : fs::directory_iterator(k.out)) bytes += int64_t(e.file_size());
    } else {
      bytes = int64_t(fs::file_size(k.out));
    }
    // str(): GCC 12 warns (-Wrestrict, a false positive) on "x" + std::to_string(n) here.
    EXPECT_THAT(r.out, AllOf(HasSubstr(k.out), HasSubstr(str(": ", bytes, " bytes")),
                             HasSubstr(str("(", k.value_bytes, " bytes of values)"))))
        << r.out;
  }
}

TEST_F(ExportCli, EvalGivesTheSameResultFromEveryFormat) {
  ASSERT_EQ(run({"export", ckpt_, "--format", "hdf5", "--out", dir_ + "/e.h5"}).code, 0);
  ASSERT_EQ(run({"export", ckpt_, "--format", "npy", "--out", dir_ + "/e.npy"}).code, 0);
  ASSERT_EQ(run({"export", ckpt_, "--format", "peft", "--out", dir_ + "/e_adapter"}).code, 0);

  const Result base = run({"eval", config_path_, "--prompt", ckpt_});
  ASSERT_EQ(base.code, 0) << base.err;
  EXPECT_THAT(base.out, AllOf(HasSubstr("loss: "), HasSubstr("accuracy: "),
                              HasSubstr("confusion (rows: true label, columns: predicted)"),
                              HasSubstr("(checkpoint, 4 x 16, step 3)")));
  for (const std::string& p : {dir_ + "/e.h5", dir_ + "/e.npy", dir_ + "/e_adapter",
                               dir_ + "/e_adapter/adapter_model.safetensors"}) {
    const Result r = run({"eval", config_path_, "--prompt", p});
    ASSERT_EQ(r.code, 0) << p << "\n" << r.err;
    EXPECT_EQ(without_prompt_line(r.out), without_prompt_line(base.out)) << p;
  }

  // The same numbers as evaluating the checkpoint's prompt in process.
  Session session(config_, make_solo_grid(), SessionMode::EvalOnly);
  session.prompt->values() = read_checkpoint(ckpt_).prompt;
  const EvalResult er = evaluate(session, session.data.eval);
  char expect[128];
  std::snprintf(expect, sizeof expect, "loss: %.4f\naccuracy: %.4f\n", er.loss, er.accuracy);
  EXPECT_THAT(base.out, HasSubstr(expect));
  EXPECT_THAT(base.out, HasSubstr("(12 examples)"));
}

TEST_F(ExportCli, EvalDataMayHoldLongerExamplesThanTaskEval) {
  // task.eval holds short lines; --data long ones (up to task.max_length).
  const std::string longer = dir_ + "/long.tsv";
  {
    std::ofstream out(longer);
    out << std::string(300, 'a') << "\t1\n" << "short\t0\n" << std::string(200, 'b') << " c\t0\n";
  }
  const Result r = run({"eval", config_path_, "--prompt", ckpt_, "--data", longer});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("data: " + longer + " (3 examples)"), HasSubstr("accuracy: ")));
}

TEST_F(ExportCli, EvalTakesThePromptLengthFromThePromptFile) {
  const Result r = run({"eval", config_path_, "--prompt", ckpt_, "--set", "prompt.length=9"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Result base = run({"eval", config_path_, "--prompt", ckpt_});
  EXPECT_EQ(r.out, base.out);
}

TEST_F(ExportCli, EvalRefusesAPromptOfAnotherModel) {
  ASSERT_EQ(run({"export", ckpt_, "--format", "peft", "--out", dir_ + "/m_adapter"}).code, 0);
  ASSERT_EQ(run({"export", ckpt_, "--format", "npy", "--out", dir_ + "/m.npy"}).code, 0);
  // Same shape, other weights: another fingerprint.
  const std::string other = test::tiny_model(Family::Llama, "export_cli/other.h5", 2, 99);
  const std::string cfg = dir_ + "/other.yaml";
  Config c = config_;
  c.model.path = other;
  std::ofstream(cfg) << dump_config(c);
  for (const std::string& p : {ckpt_, dir_ + "/m_adapter"}) {
    const Result r = run({"eval", cfg, "--prompt", p});
    EXPECT_EQ(r.code, 1) << p;
    EXPECT_THAT(r.err, AllOf(HasSubstr("sptrain: error: "), HasSubstr(p), HasSubstr("another model"),
                             HasSubstr("fingerprint")))
        << p;
  }
  // npy has no fingerprint: only its shape is checked, and it fits.
  EXPECT_EQ(run({"eval", cfg, "--prompt", dir_ + "/m.npy"}).code, 0);

  // Another d_model is caught for every format.
  const std::string wide = test::tiny_model(Family::Llama, "export_cli/wide.h5", 2, 5, 32);
  c.model.path = wide;
  std::ofstream(cfg) << dump_config(c);
  const Result r = run({"eval", cfg, "--prompt", dir_ + "/m.npy"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("m.npy"), HasSubstr("d_model 16"), HasSubstr("d_model 32")));
}

TEST_F(ExportCli, ExportErrors) {
  ASSERT_EQ(run({"export", ckpt_, "--format", "npy", "--out", dir_ + "/x.npy"}).code, 0);
  struct Case {
    std::vector<std::string> args;
    int code;
    std::vector<std::string> mentions;
  };
  for (const Case& k : std::vector<Case>{
           {{"export", ckpt_, "--format", "hdf5", "--dtype", "bf16", "--out", dir_ + "/y.h5"},
            1, {"--dtype bf16", "npy only"}},
           {{"export", dir_ + "/x.npy", "--format", "hdf5", "--out", dir_ + "/y.h5"},
            1, {"x.npy", "no metadata"}},
           {{"export", dir_ + "/none.h5", "--format", "npy", "--out", dir_ + "/y.npy"},
            1, {"none.h5", "no such file"}},
           {{"export", ckpt_, "--format", "peft", "--model", dir_ + "/none.h5", "--out", dir_ + "/y"},
            1, {"none.h5", "--model"}},
           {{"export", ckpt_, "--format", "onnx", "--out", dir_ + "/y"}, 2, {"onnx"}},
           {{"export", ckpt_, "--out", dir_ + "/y"}, 2, {"--format"}},
       }) {
    const Result r = run(k.args);
    EXPECT_EQ(r.code, k.code) << k.args[3] << "\n" << r.err;
    for (const std::string& m : k.mentions) EXPECT_THAT(r.err, HasSubstr(m));
    EXPECT_FALSE(fs::exists(dir_ + "/y.h5"));
    EXPECT_FALSE(fs::exists(dir_ + "/y.npy"));
  }
  EXPECT_THAT(run({"export", "--help"}).out,
              AllOf(HasSubstr("--format"), HasSubstr("hdf5"), HasSubstr("npy"), HasSubstr("peft"),
                    HasSubstr("--dtype"), HasSubstr("--out"), HasSubstr("--model"), Not(HasSubstr("error"))));
}


// A deep prompt (prefix tuning) trained on the tiny llama (4 heads, 2 kv
// heads: grouped-query attention), exported as a PEFT PREFIX_TUNING folder
// and as hdf5: eval gives the checkpoint's numbers from each, and a deep run
// starts from the folder (prompt.init: file:FOLDER).
class ExportDeepCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::temp_path("export_deep_cli");
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = test::tiny_model(Family::Llama, "export_deep_cli/model.h5");
    const std::string train = test::sst2_subset("train", 24, "export_deep_cli/train.tsv");
    const std::string eval = test::sst2_subset("dev", 12, "export_deep_cli/dev.tsv");
    config_ = test::tiny_config_for(model_, train, eval, dir_ + "/run");
    config_.prompt.method = "deep";
    config_.train.steps = 3;
    config_.train.checkpoint_every = 0;
    validate_config(config_);
    sptrain::train(config_, make_solo_grid());
    ckpt_ = dir_ + "/run/" + checkpoint_name(3);
    config_path_ = dir_ + "/config.yaml";
    std::ofstream(config_path_) << dump_config(config_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  Result run(const std::vector<std::string>& args) { return run_cli(args, dir_); }

  static std::string dir_, model_, ckpt_, config_path_;
  static Config config_;
};
std::string ExportDeepCli::dir_, ExportDeepCli::model_, ExportDeepCli::ckpt_, ExportDeepCli::config_path_;
Config ExportDeepCli::config_;

TEST_F(ExportDeepCli, EvalGivesTheCheckpointsResultFromThePeftFolderAndHdf5) {
  const Checkpoint c = read_checkpoint(ckpt_);
  ASSERT_FALSE(c.prefix.empty());
  const Result peft = run({"export", ckpt_, "--format", "peft", "--out", dir_ + "/adapter"});
  ASSERT_EQ(peft.code, 0) << peft.err;
  const int64_t values = c.prefix_layers * c.prefix_rows * c.prefix_cols;
  EXPECT_THAT(peft.out, AllOf(HasSubstr("exported deep prompt [2 x 4 x 16]"),
                              HasSubstr("(" + std::to_string(values * 4) + " bytes of values)")));
  const Result h5 = run({"export", ckpt_, "--format", "hdf5", "--out", dir_ + "/deep.h5"});
  ASSERT_EQ(h5.code, 0) << h5.err;
  // The hdf5 export exports again as PEFT.
  ASSERT_EQ(run({"export", dir_ + "/deep.h5", "--format", "peft", "--out", dir_ + "/adapter2"}).code, 0);

  const Result base = run({"eval", config_path_, "--prompt", ckpt_});
  ASSERT_EQ(base.code, 0) << base.err;
  EXPECT_THAT(base.out, AllOf(HasSubstr("loss: "), HasSubstr("accuracy: "), HasSubstr("(12 examples)"),
                              HasSubstr("(checkpoint, deep 2 x 4 x 16, step 3)")));
  for (const std::string& p : {dir_ + "/adapter", dir_ + "/adapter/adapter_model.safetensors", dir_ + "/deep.h5",
                               dir_ + "/adapter2"}) {
    const Result r = run({"eval", config_path_, "--prompt", p});
    ASSERT_EQ(r.code, 0) << p << "\n" << r.err;
    EXPECT_EQ(without_prompt_line(r.out), without_prompt_line(base.out)) << p;
  }
  // A config of another method still evaluates the folder as a deep prompt.
  const Result other =
      run({"eval", config_path_, "--prompt", dir_ + "/adapter", "--set", "prompt.method=prompt_tuning"});
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_EQ(without_prompt_line(other.out), without_prompt_line(base.out));

  // prompt.init: file:FOLDER starts a deep prompt at the folder's keys and values.
  const Result init = run({"eval", config_path_, "--set", "prompt.init=file:" + dir_ + "/adapter"});
  ASSERT_EQ(init.code, 0) << init.err;
  EXPECT_EQ(without_prompt_line(init.out), without_prompt_line(base.out));
}

TEST_F(ExportDeepCli, ExportAndEvalErrors) {
  // npy is not offered for a deep prompt.
  const Result npy = run({"export", ckpt_, "--format", "npy", "--out", dir_ + "/d.npy"});
  EXPECT_EQ(npy.code, 1);
  EXPECT_THAT(npy.err, AllOf(HasSubstr(ckpt_), HasSubstr("deep prompt"), HasSubstr("--format hdf5")));
  EXPECT_FALSE(fs::exists(dir_ + "/d.npy"));

  // A folder with prefix_projection true is refused by eval and by init.
  ASSERT_EQ(run({"export", ckpt_, "--format", "peft", "--out", dir_ + "/proj"}).code, 0);
  const std::string config = dir_ + "/proj/adapter_config.json";
  nlohmann::json j = nlohmann::json::parse(std::ifstream(config));
  j["prefix_projection"] = true;
  std::ofstream(config, std::ios::trunc) << j.dump(2);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"eval", config_path_, "--prompt", dir_ + "/proj"},
        std::vector<std::string>{"eval", config_path_, "--set", "prompt.init=file:" + dir_ + "/proj"}}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 1) << args.back();
    EXPECT_THAT(r.err, AllOf(HasSubstr(config), HasSubstr("prefix_projection is true")));
  }

  // A model with other layers: the folder's shape is checked against it.
  const std::string three = test::tiny_model(Family::Llama, "export_deep_cli/three.h5", 3);
  Config c = config_;
  c.model.path = three;
  const std::string cfg = dir_ + "/three.yaml";
  std::ofstream(cfg) << dump_config(c);
  ASSERT_EQ(run({"export", ckpt_, "--format", "peft", "--out", dir_ + "/shape"}).code, 0);
  const Result r = run({"eval", cfg, "--prompt", dir_ + "/shape"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr(dir_ + "/shape"), HasSubstr("2 layers"), HasSubstr("has 3 layers")));
}

}  // namespace
}  // namespace sptrain
