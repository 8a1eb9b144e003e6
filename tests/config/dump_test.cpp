// dump_config: every key written, and parse_config(dump_config(c)) == c.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <sstream>

#include "config_test_util.hpp"

namespace sptrain {
namespace {

using ::testing::HasSubstr;
using testing::all_keys;
using testing::kMinimal;

// A valid config with awkward values in every string and number.
Config awkward_config() {
  Config c;
  c.source_path = "configs/awkward.yaml";
  c.backend = "cuda";
  c.threads = 7;
  c.model.path = "/abs/dir with spaces/model #1.h5";
  c.model.dtype = "f64";
  c.task.train = "null";
  c.task.eval = "";
  c.task.format = "tsv";
  c.task.template_text = "Q: \"{text}\"\n\tA:\\ 'x' {text} é ✓ \x01 - [a] {b}: c";
  c.task.labels = {{"z", " neg: bad"}, {"10", "true"}, {"0", "~"}, {"- x", "#"}, {"yes", " 123"}};
  c.task.max_length = 1;
  c.task.loss = "vocab";
  c.prompt.length = 100;
  c.prompt.init = "file:prompts/a b.h5";
  c.prompt.init_text = "  leading and trailing  ";
  c.prompt.init_range = 1.0 / 3.0;
  c.optim.name = "adafactor";
  c.optim.lr = 0.1 + 0.2;
  c.optim.weight_decay = 1e-300;
  c.optim.beta1 = 0.0;
  c.optim.beta2 = std::nextafter(1.0, 0.0);
  c.optim.eps = std::numeric_limits<double>::denorm_min();
  c.optim.warmup_steps = 2147483647;
  c.optim.schedule = "linear";
  c.optim.min_lr_ratio = 1.0;
  c.optim.clip_grad_norm = 123456789.125;
  c.optim.adafactor = {1.0, 1e-3, 1e-30, 5e-324 * 3, false};
  c.train.steps = 1;
  c.train.batch_size = 12;
  c.train.micro_batch_size = 3;
  c.train.eval_every = 0;
  c.train.eval_batch_size = 1;
  c.train.eval_max_examples = 5;
  c.train.checkpoint_every = 0;
  c.train.keep_checkpoints = 9;
  c.train.log_every = 3;
  c.train.run_dir = "123";
  c.train.resume = "no";
  c.train.seed = std::numeric_limits<std::uint64_t>::max();
  c.train.shuffle = false;
  c.parallel.tensor = 8;
  c.parallel.pipeline = 2;
  c.parallel.schedule = "gpipe";
  c.parallel.stage_layers = {50, 46};
  return c;
}

TEST(ConfigDump, RoundTripOfTheDefaults) {
  Config c = parse_config(kMinimal, "a.yaml");
  std::string text = dump_config(c);
  Config back = parse_config(text, "a.yaml");
  EXPECT_EQ(back, c);
  EXPECT_EQ(dump_config(back), text);
}

TEST(ConfigDump, RoundTripOfAwkwardValues) {
  Config c = awkward_config();
  ASSERT_NO_THROW(validate_config(c));
  std::string text = dump_config(c);
  Config back;
  ASSERT_NO_THROW(back = parse_config(text, c.source_path)) << text;
  EXPECT_EQ(back, c) << text;
  EXPECT_EQ(dump_config(back), text);
  EXPECT_EQ(back.task.template_text, c.task.template_text);
  EXPECT_EQ(back.task.labels, c.task.labels);
}

TEST(ConfigDump, WritesEveryKeyInItsSection) {
  std::string text = dump_config(parse_config(kMinimal, "a.yaml"));
  // Each key appears once, indented by its depth, as "name:".
  for (const std::string& key : all_keys()) {
    size_t depth = std::count(key.begin(), key.end(), '.');
    std::string name = key.substr(key.rfind('.') + 1);
    std::string line = "\n" + std::string(2 * depth, ' ') + name + ":";
    EXPECT_THAT(text, HasSubstr(line)) << key;
  }
  EXPECT_THAT(text, HasSubstr("\n  lr: 0.01\n"));
  EXPECT_THAT(text, HasSubstr("\n  labels:\n    \"0\": \" negative\"\n    \"1\": \" positive\"\n"));
}

TEST(ConfigDump, DumpedLabelsKeepTheirOrder) {
  Config c = parse_config(kMinimal, "a.yaml", {"task.labels={b: y, a: x}"});
  EXPECT_THAT(dump_config(c), HasSubstr("\"b\": \"y\"\n    \"a\": \"x\"\n"));
}

// docs/config.md documents every key (the table rows start with `key`).
TEST(ConfigDocs, EveryKeyIsDocumented) {
  std::ifstream in(std::string(SPTRAIN_SOURCE_DIR) + "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  for (const std::string& key : all_keys()) EXPECT_THAT(text.str(), HasSubstr("| `" + key + "` |")) << key;
}

// The full example in docs/config.md is a valid configuration.
TEST(ConfigDocs, TheFullExampleParses) {
  std::ifstream in(std::string(SPTRAIN_SOURCE_DIR) + "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  size_t begin = doc.find("```yaml\n");
  ASSERT_NE(begin, std::string::npos);
  begin += 8;
  size_t end = doc.find("```", begin);
  ASSERT_NE(end, std::string::npos);
  Config c;
  ASSERT_NO_THROW(c = parse_config(doc.substr(begin, end - begin), "docs/config.md"));
  EXPECT_EQ(c.task.labels.size(), 2u);
  EXPECT_EQ(c.task.template_text, "Review: {text}\nSentiment:");
  EXPECT_EQ(c.train.steps, 400);
}

}  // namespace
}  // namespace sptrain
