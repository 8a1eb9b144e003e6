// The sptrain binary: subcommands, --help, --version, --dry-run and exit codes
// (0 success, 1 error in the input, 2 usage error).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/run_binary.hpp"
#include "sptrain/comm/mpi_runtime.hpp"
#include "sptrain/config/load.hpp"

namespace sptrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace fs = std::filesystem;

using Result = test::CommandResult;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sptrain-cli-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  // Runs the binary in the temporary folder with `args`.
  Result run(const std::vector<std::string>& args) { return test::run_sptrain(args, dir_.string()); }

  fs::path dir_;
};

const char* const kConfig =
    "model:\n"
    "  path: models/none.h5\n"
    "task:\n"
    "  train: data/none.tsv\n"
    "  template: \"Review: {text}\\nSentiment:\"\n"
    "  labels: {\"0\": \" negative\", \"1\": \" positive\"}\n"
    "optim:\n"
    "  lr: 0.01\n";

TEST_F(Cli, VersionListsTheCpuBackEndAndBlas) {
  Result r = run({"--version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("sptrain "));
  EXPECT_THAT(r.out, HasSubstr("backends: cpu"));
  EXPECT_THAT(r.out, HasSubstr("blas: OpenBLAS"));
#ifdef SPTRAIN_WITH_CUDA
  EXPECT_THAT(r.out, HasSubstr("backends: cpu cuda"));
#else
  EXPECT_THAT(r.out, Not(HasSubstr("cuda")));
#endif
}

TEST_F(Cli, DryRunPrintsTheResolvedConfig) {
  write("x.yaml", kConfig);
  Result r = run({"train", "x.yaml", "--dry-run", "--set", "optim.lr=0.05"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\n  lr: 0.05\n"));
  EXPECT_EQ(r.err, "");
  // The output is the configuration itself, defaults included.
  Config expected = parse_config(kConfig, "x.yaml", {"optim.lr=0.05"});
  EXPECT_EQ(parse_config(r.out, "x.yaml"), expected);
  EXPECT_EQ(r.out, dump_config(expected));
}

TEST_F(Cli, ConfigFileAloneMeansTrain) {
  write("x.yaml", kConfig);
  write("y.yml", kConfig);
  Result a = run({"train", "x.yaml", "--dry-run"});
  Result b = run({"x.yaml", "--dry-run"});
  Result c = run({"y.yml", "--set=train.steps=7", "--dry-run"});
  EXPECT_EQ(a.code, 0);
  EXPECT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(c.code, 0) << c.err;
  EXPECT_THAT(c.out, HasSubstr("\n  steps: 7\n"));
}

TEST_F(Cli, SetMayComeBeforeTheConfigAndRepeat) {
  write("x.yaml", kConfig);
  Result r = run({"train", "--set", "train.steps=9", "--set", "optim.lr=0.5", "x.yaml", "--dry-run"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("\n  steps: 9\n"), HasSubstr("\n  lr: 0.5\n")));
}

TEST_F(Cli, UsageErrorsExitWith2) {
  write("x.yaml", kConfig);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"--frobnicate"},
           {"train"},
           {"train", "x.yaml", "--frobnicate"},
           {"train", "x.yaml", "--set"},
           {"init-model"},                                          // --out missing
           {"init-model", "--out", "m.h5", "--family", "bert"},
           {"init-model", "--out", "m.h5", "--layers", "two"},
           {"convert", "src", "--out", "m.h5"},                     // --from missing
           {"convert", "--from", "onnx", "src", "--out", "m.h5"},
           {"convert", "--from", "gguf", "src", "--out", "m.h5", "--dtype", "f16"},
       }) {
    Result r = run(args);
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    EXPECT_EQ(r.code, 2) << shown << "\n" << r.err;
    EXPECT_NE(r.err, "") << shown;
  }
}

TEST_F(Cli, ConfigErrorsExitWith1AndNameKeyAndLine) {
  write("bad.yaml", std::string(kConfig) + "  lrr: 0.1\n");  // line 9
  Result r = run({"train", "bad.yaml", "--dry-run"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "sptrain: error: bad.yaml:9: optim.lrr: unknown key (did you mean optim.lr?)\n");

  write("x.yaml", kConfig);
  r = run({"x.yaml", "--dry-run", "--set", "optim.lr=abc"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("sptrain: error: --set optim.lr=abc: optim.lr: expected a number"));

  r = run({"eval", "bad.yaml"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("optim.lrr"));

  r = run({"train", "missing.yaml"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, AllOf(StartsWith("sptrain: error: "), HasSubstr("missing.yaml")));
}

// A run that cannot work (the model file does not exist) is an error, not a crash.
TEST_F(Cli, FailingRunsExitWith1) {
  write("x.yaml", kConfig);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"train", "x.yaml"},
           {"eval", "x.yaml"},
           {"convert", "--from", "gguf", "no-such-file.gguf", "--out", "m.h5"},
       }) {
    Result r = run(args);
    EXPECT_EQ(r.code, 1) << args[0] << "\n" << r.err;
    // HasSubstr: the MPI runtime may print notes of its own before it.
    EXPECT_THAT(r.err, HasSubstr("sptrain: error: ")) << args[0];
    EXPECT_FALSE(fs::exists(dir_ / "m.h5"));
  }
}

TEST_F(Cli, HelpForEverySubcommand) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> cases = {
      {{"--help"}, {"train", "eval", "init-model", "convert", "--version"}},
      {{"train", "--help"}, {"config", "--set", "--dry-run"}},
      {{"eval", "--help"}, {"config", "--prompt", "--data", "--set"}},
      {{"init-model", "--help"},
       {"--out", "--family", "llama", "gpt", "--layers", "--d-model", "--heads", "--kv-heads", "--d-ffn",
        "--max-positions", "--tokenizer", "--vocab", "--activation", "--untied", "--seed", "--std"}},
      {{"convert", "--help"}, {"--from", "safetensors", "gguf", "--out", "--dtype", "bf16"}},
  };
  for (const Case& c : cases) {
    Result r = run(c.args);
    EXPECT_EQ(r.code, 0) << c.args[0];
    for (const std::string& m : c.mentions) EXPECT_THAT(r.out, HasSubstr(m)) << c.args[0];
  }
}

// Which environments count as "started by a launcher" (MPI is initialised
// only then; docs/parallelism.md, "Starting").
TEST(MpiStart, LauncherVariables) {
  const char* const names[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                               "SLURM_STEP_NUM_TASKS"};
  std::vector<std::pair<std::string, std::string>> saved;
  for (const char* n : names) {
    if (const char* v = std::getenv(n)) saved.emplace_back(n, v);
    ::unsetenv(n);
  }
  EXPECT_FALSE(launched_by_mpi_launcher());
  for (const char* n : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    ::setenv(n, "0", 1);
    EXPECT_TRUE(launched_by_mpi_launcher()) << n;
    ::unsetenv(n);
  }
  ::setenv("SLURM_STEP_NUM_TASKS", "1", 1);  // one srun task without PMI: a plain run
  EXPECT_FALSE(launched_by_mpi_launcher());
  ::setenv("SLURM_STEP_NUM_TASKS", "4", 1);
  EXPECT_TRUE(launched_by_mpi_launcher());
  ::unsetenv("SLURM_STEP_NUM_TASKS");
  for (const auto& [n, v] : saved) ::setenv(n.c_str(), v.c_str(), 1);
}

// A plain `sptrain eval` (no mpirun) runs without initialising MPI: with an
// MPI that cannot start (OMPI_MCA_pml names no component, so MPI_Init fails)
// it still works, and SPTRAIN_MPI=always shows that MPI would have failed.
TEST_F(Cli, PlainRunNeedsNoMpi) {
  Result init = run({"init-model", "--out", "m.h5", "--layers", "1", "--d-model", "16", "--heads", "2"});
  ASSERT_EQ(init.code, 0) << init.err;
  write("d.tsv", "a fine film\t1\na dull film\t0\n");
  write("x.yaml",
        "model:\n  path: m.h5\n"
        "task:\n  train: d.tsv\n  eval: d.tsv\n  template: \"{text} =\"\n"
        "  labels: {\"0\": \"n\", \"1\": \"p\"}\n"
        "prompt:\n  length: 2\n");
  const std::vector<std::string> broken_mpi = {"OMPI_MCA_pml=no_such_component", "OMPI_COMM_WORLD_SIZE=",
                                               "PMIX_RANK=", "PMI_RANK=", "PMI_SIZE=", "SLURM_STEP_NUM_TASKS="};
  Result plain = test::run_sptrain({"eval", "x.yaml"}, dir_.string(), "", broken_mpi);
  EXPECT_EQ(plain.code, 0) << plain.err;
  EXPECT_THAT(plain.out, HasSubstr("accuracy: "));

  std::vector<std::string> forced = broken_mpi;
  forced.push_back("SPTRAIN_MPI=always");
  Result with_mpi = test::run_sptrain({"eval", "x.yaml"}, dir_.string(), "", forced);
  EXPECT_NE(with_mpi.code, 0) << "MPI_Init should have failed with OMPI_MCA_pml=no_such_component";

  forced.back() = "SPTRAIN_MPI=sometimes";
  Result bad = test::run_sptrain({"eval", "x.yaml"}, dir_.string(), "", forced);
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("SPTRAIN_MPI=sometimes: must be always, never or auto"));
}

}  // namespace
}  // namespace sptrain
