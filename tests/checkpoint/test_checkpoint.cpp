// Prompt checkpoints: bit-exact round trip, clear errors on bad files, the
// temporary-then-rename rule seen by latest_checkpoint, and pruning.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "sptrain/core/error.hpp"
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/io/h5.hpp"
#include "../support/test_util.hpp"
#include "sptrain/optim/optimizer.hpp"

namespace fs = std::filesystem;
using namespace sptrain;
using ::testing::HasSubstr;

namespace {

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sptrain_test_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// A checkpoint with awkward values: negative zero, subnormals, NaN payloads
// in optimizer state, all 64 bits of the RNG words, non-ASCII strings.
Checkpoint sample(int64_t step = 123) {
  Checkpoint c;
  c.step = step;
  c.prompt_rows = 20;
  c.prompt_cols = 64;
  c.prompt.resize(20 * 64);
  for (size_t i = 0; i < c.prompt.size(); ++i) c.prompt[i] = float(std::sin(double(i)) * 0.137);
  c.prompt[0] = -0.0f;
  c.prompt[1] = 1e-42f;  // subnormal
  c.prompt[2] = std::nextafter(1.0f, 2.0f);

  OptimSection cfg;
  cfg.name = "adamw";
  auto opt = make_optimizer(cfg, c.prompt_rows, c.prompt_cols);
  std::vector<float> grad(c.prompt.size());
  for (size_t i = 0; i < grad.size(); ++i) grad[i] = float(std::cos(0.3 * double(i)));
  std::vector<float> p = c.prompt;
  opt->step(p.data(), grad.data(), 0.01);
  c.optimizer = opt->state();
  c.optimizer_name = opt->name();

  c.epoch = 3;
  c.epoch_position = 4096;
  c.rng_state = {0xFFFFFFFFFFFFFFFFull, 0x8000000000000000ull, 0, 0x0123456789ABCDEFull};
  c.config_yaml = "model:\n  path: models/x.h5\ntask:\n  template: \"Review: {text}\\nSentiment:\"\n";
  c.model_fingerprint = "0123456789abcdef";
  c.model_path = "models/sm\xC3\xB6l.h5";
  c.eval_accuracy = 0.8875;
  c.eval_loss = 0.3125;
  c.task_template = "Review: {text}\nSentiment:";
  c.labels = {{"0", " negative"}, {"1", " positive"}};
  return c;
}

void expect_same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST_F(CheckpointTest, RoundTripBitForBit) {
  Checkpoint c = sample();
  std::string p = path(checkpoint_name(c.step));
  write_checkpoint(p, c);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  Checkpoint r = read_checkpoint(p);
  EXPECT_EQ(r.step, c.step);
  EXPECT_EQ(r.prompt_rows, 20);
  EXPECT_EQ(r.prompt_cols, 64);
  expect_same_floats(r.prompt, c.prompt);
  EXPECT_TRUE(std::signbit(r.prompt[0]));
  EXPECT_EQ(r.optimizer_name, "adamw");
  ASSERT_EQ(r.optimizer.size(), c.optimizer.size());
  for (const NamedState& s : c.optimizer) {
    auto it = std::find_if(r.optimizer.begin(), r.optimizer.end(),
                           [&](const NamedState& x) { return x.name == s.name; });
    ASSERT_NE(it, r.optimizer.end()) << s.name;
    EXPECT_EQ(it->shape, s.shape);
    expect_same_floats(it->values, s.values);
  }
  EXPECT_EQ(r.epoch, 3);
  EXPECT_EQ(r.epoch_position, 4096);
  EXPECT_EQ(r.rng_state, c.rng_state);
  EXPECT_EQ(r.config_yaml, c.config_yaml);
  EXPECT_EQ(r.model_fingerprint, c.model_fingerprint);
  EXPECT_EQ(r.model_path, c.model_path);
  EXPECT_EQ(r.eval_accuracy, c.eval_accuracy);
  EXPECT_EQ(r.eval_loss, c.eval_loss);
  EXPECT_EQ(r.task_template, c.task_template);
  EXPECT_EQ(r.labels, c.labels);

  // The loaded state continues the optimizer exactly like the original.
  OptimSection cfg;
  auto a = make_optimizer(cfg, 20, 64), b = make_optimizer(cfg, 20, 64);
  a->load_state(c.optimizer);
  b->load_state(r.optimizer);
  a->set_step_count(1);
  b->set_step_count(1);
  std::vector<float> pa = c.prompt, pb = r.prompt, g(pa.size(), 0.25f);
  a->step(pa.data(), g.data(), 0.01);
  b->step(pb.data(), g.data(), 0.01);
  expect_same_floats(pa, pb);
}

TEST_F(CheckpointTest, EmptyOptionalPartsAndNaNEval) {
  Checkpoint c;
  c.prompt_rows = 1;
  c.prompt_cols = 3;
  c.prompt = {1.0f, 2.0f, 3.0f};
  std::string p = path("a.h5");
  write_checkpoint(p, c);
  Checkpoint r = read_checkpoint(p);
  EXPECT_TRUE(std::isnan(r.eval_accuracy));
  EXPECT_TRUE(std::isnan(r.eval_loss));
  EXPECT_TRUE(r.rng_state.empty());
  EXPECT_TRUE(r.optimizer.empty());
  EXPECT_TRUE(r.labels.empty());
  EXPECT_EQ(r.config_yaml, "");
  expect_same_floats(r.prompt, c.prompt);
}

TEST_F(CheckpointTest, LayoutMatchesTheDocs) {
  std::string p = path("layout.h5");
  write_checkpoint(p, sample());
  h5::File f = h5::File::open_read(p);
  EXPECT_EQ(f.attr_string("/", "format"), "sptrain-prompt-checkpoint");
  EXPECT_EQ(f.attr_int("/", "format_version"), 1);
  EXPECT_EQ(f.attr_int("/", "step"), 123);
  auto info = f.info("prompt");
  EXPECT_EQ(info.dtype, DType::F32);
  EXPECT_EQ(info.shape.rank, 2);
  EXPECT_EQ(info.shape[0], 20);
  EXPECT_EQ(info.shape[1], 64);
  EXPECT_TRUE(f.exists("optimizer/exp_avg"));
  EXPECT_TRUE(f.exists("optimizer/exp_avg_sq"));
  EXPECT_EQ(f.attr_string("/", "optimizer"), "adamw");
  EXPECT_EQ(f.read_strings("verbalizer/words"), (std::vector<std::string>{" negative", " positive"}));
}

using test::error_of;

TEST_F(CheckpointTest, ClearErrors) {
  std::string missing = path("nope.h5");
  EXPECT_THAT(error_of([&] { read_checkpoint(missing); }), HasSubstr(missing + ": no such file"));

  std::string text = path("text.h5");
  std::ofstream(text) << "not an hdf5 file\n";
  EXPECT_THAT(error_of([&] { read_checkpoint(text); }), HasSubstr("not an HDF5 file"));

  std::string model = path("model.h5");
  {
    h5::File f = h5::File::create(model);
    f.set_attr("/", "format", "sptrain-model");
  }
  EXPECT_THAT(error_of([&] { read_checkpoint(model); }),
              HasSubstr("format is 'sptrain-model', expected 'sptrain-prompt-checkpoint'"));

  std::string plain = path("plain.h5");
  { h5::File f = h5::File::create(plain); }
  EXPECT_THAT(error_of([&] { read_checkpoint(plain); }), HasSubstr("no 'format' attribute"));

  std::string newer = path("newer.h5");
  write_checkpoint(newer, sample());
  {
    h5::File f = h5::File::open_rw(newer);
    f.set_attr("/", "format_version", int64_t(2));
  }
  EXPECT_THAT(error_of([&] { read_checkpoint(newer); }), HasSubstr("newer sptrain"));

  // A file with the right attributes but no prompt dataset.
  std::string noprompt = path("noprompt.h5");
  {
    h5::File f = h5::File::create(noprompt);
    f.set_attr("/", "format", kCheckpointFormat);
    f.set_attr("/", "format_version", kCheckpointFormatVersion);
    for (const char* k : {"step", "epoch", "epoch_position"}) f.set_attr("/", k, int64_t(0));
    for (const char* k : {"optimizer", "model_fingerprint", "model_path", "task_template"})
      f.set_attr("/", k, "");
    f.set_attr("/", "eval_accuracy", 0.0);
    f.set_attr("/", "eval_loss", 0.0);
  }
  std::string msg = error_of([&] { read_checkpoint(noprompt); });
  EXPECT_THAT(msg, HasSubstr(noprompt));
  EXPECT_THAT(msg, HasSubstr("missing dataset 'prompt'"));
}

TEST_F(CheckpointTest, TruncatedFileIsAClearError) {
  std::string full = path(checkpoint_name(5));
  write_checkpoint(full, sample(5));
  auto size = fs::file_size(full);
  std::ifstream in(full, std::ios::binary);
  std::vector<char> bytes(size / 2);
  in.read(bytes.data(), std::streamsize(bytes.size()));
  std::string half = path("half.h5");
  std::ofstream(half, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  std::string msg = error_of([&] { read_checkpoint(half); });
  EXPECT_THAT(msg, HasSubstr(half));
  EXPECT_THAT(msg, HasSubstr("truncated"));
}

TEST_F(CheckpointTest, WriteRefusesBadInputAndLeavesNoTemp) {
  Checkpoint c = sample();
  c.prompt.pop_back();  // no longer rows x cols
  std::string p = path("bad.h5");
  EXPECT_THAT(error_of([&] { write_checkpoint(p, c); }), HasSubstr("prompt has"));
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".tmp"));

  // An existing good checkpoint survives a failed overwrite.
  write_checkpoint(p, sample(7));
  Checkpoint bad = sample(8);
  bad.optimizer[0].values.pop_back();
  EXPECT_THROW(write_checkpoint(p, bad), Error);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(read_checkpoint(p).step, 7);
}

TEST_F(CheckpointTest, Names) {
  EXPECT_EQ(checkpoint_name(100), "step_000100.h5");
  EXPECT_EQ(checkpoint_name(0), "step_000000.h5");
  EXPECT_EQ(checkpoint_name(12345678), "step_12345678.h5");
}

TEST_F(CheckpointTest, LatestIgnoresTempFromACrash) {
  EXPECT_FALSE(latest_checkpoint(path("no_such_dir")).has_value());
  EXPECT_FALSE(latest_checkpoint(dir_.string()).has_value());
  write_checkpoint(path(checkpoint_name(100)), sample(100));
  write_checkpoint(path(checkpoint_name(200)), sample(200));
  // A crash between writing the temporary and the rename: step 300's .tmp
  // exists (a half-written file), the final name does not.
  std::ofstream(path(checkpoint_name(300) + ".tmp"), std::ios::binary) << "\x89HDF\r\n half";
  // Other look-alikes are not checkpoints either.
  std::ofstream(path("step_400.h5.bak")) << "x";
  std::ofstream(path("step_abc.h5")) << "x";
  std::ofstream(path("notes.txt")) << "x";
  auto latest = latest_checkpoint(dir_.string());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(fs::path(*latest).filename(), "step_000200.h5");
  EXPECT_EQ(read_checkpoint(*latest).step, 200);
  // Steps compare as numbers, not names: step_1000000 > step_999999.
  write_checkpoint(path(checkpoint_name(999999)), sample(999999));
  write_checkpoint(path(checkpoint_name(1000000)), sample(1000000));
  EXPECT_EQ(fs::path(*latest_checkpoint(dir_.string())).filename(), "step_1000000.h5");
}

TEST_F(CheckpointTest, PruneKeepsNewest) {
  for (int64_t s : {50, 100, 150, 200, 250}) write_checkpoint(path(checkpoint_name(s)), sample(s));
  std::string tmp = path(checkpoint_name(300) + ".tmp");
  std::ofstream(tmp) << "in progress";
  prune_checkpoints(dir_.string(), 2);
  EXPECT_FALSE(fs::exists(path(checkpoint_name(50))));
  EXPECT_FALSE(fs::exists(path(checkpoint_name(100))));
  EXPECT_FALSE(fs::exists(path(checkpoint_name(150))));
  EXPECT_TRUE(fs::exists(path(checkpoint_name(200))));
  EXPECT_TRUE(fs::exists(path(checkpoint_name(250))));
  EXPECT_TRUE(fs::exists(tmp));  // never touched
  prune_checkpoints(dir_.string(), 5);  // fewer than keep: nothing removed
  EXPECT_TRUE(fs::exists(path(checkpoint_name(200))));
  prune_checkpoints(dir_.string(), 0);  // 0 keeps everything
  EXPECT_TRUE(fs::exists(path(checkpoint_name(200))));
  prune_checkpoints(dir_.string(), 1);
  EXPECT_FALSE(fs::exists(path(checkpoint_name(200))));
  EXPECT_EQ(fs::path(*latest_checkpoint(dir_.string())).filename(), "step_000250.h5");
}

}  // namespace
