// YAML -> Config: values, defaults, and every kind of error with its key and line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "config_test_util.hpp"

namespace sptrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::error_of;
using testing::kMinimal;
using testing::minimal_plus;

using Labels = std::vector<std::pair<std::string, std::string>>;

TEST(ConfigLoad, MinimalConfigGetsTheDefaults) {
  Config c = parse_config(kMinimal, "configs/x.yaml");
  Config expected;
  expected.model.path = "m.h5";
  expected.task.train = "t.tsv";
  expected.task.labels = {{"0", " negative"}, {"1", " positive"}};
  expected.source_path = "configs/x.yaml";
  EXPECT_EQ(c, expected);
  // Spot checks that the defaults are the documented ones.
  EXPECT_EQ(c.backend, "cpu");
  EXPECT_EQ(c.optim.name, "adamw");
  EXPECT_DOUBLE_EQ(c.optim.lr, 1e-2);
  EXPECT_EQ(c.train.batch_size, 16);
  EXPECT_EQ(c.task.template_text, "{text}");
  EXPECT_EQ(c.parallel.schedule, "1f1b");
}

TEST(ConfigLoad, EveryKindOfValueIsRead) {
  const std::string yaml = R"(backend: cuda
threads: 3
model:
  path: models/smollm.h5
  dtype: f64
task:
  train: data/train.jsonl
  eval: data/dev.jsonl
  format: jsonl
  template: "Review: {text}\nSentiment:"
  labels:
    pos: " good"
    neg: " bad"
    mid: " fine"
  max_length: 64
  loss: vocab
prompt:
  length: 8
  init: text
  init_text: "classify the sentiment"
  init_range: 0.25
optim:
  name: adafactor
  lr: 3e-1
  weight_decay: 0.01
  beta1: 0
  beta2: 0.99
  eps: 1e-6
  warmup_steps: 10
  schedule: cosine
  min_lr_ratio: 0.1
  clip_grad_norm: 0
  adafactor:
    decay_rate: 0.5
    clip_threshold: 2
    eps1: 1e-20
    eps2: 0.01
    scale_parameter: no
train:
  steps: 7
  batch_size: 32
  micro_batch_size: 8
  eval_every: 0
  eval_batch_size: 4
  eval_max_examples: 100
  checkpoint_every: 5
  keep_checkpoints: 1
  log_every: 1
  run_dir: runs/a
  resume: never
  seed: 18446744073709551615
  shuffle: false
parallel:
  tensor: 2
  pipeline: 3
  schedule: gpipe
  stage_layers: [10, 12, 8]
)";
  Config c = parse_config(yaml, "a.yaml");
  EXPECT_EQ(c.backend, "cuda");
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.model.path, "models/smollm.h5");
  EXPECT_EQ(c.model.dtype, "f64");
  EXPECT_EQ(c.task.train, "data/train.jsonl");
  EXPECT_EQ(c.task.eval, "data/dev.jsonl");
  EXPECT_EQ(c.task.format, "jsonl");
  EXPECT_EQ(c.task.template_text, "Review: {text}\nSentiment:");
  // The order written in the file, not sorted.
  EXPECT_EQ(c.task.labels, (Labels{{"pos", " good"}, {"neg", " bad"}, {"mid", " fine"}}));
  EXPECT_EQ(c.task.max_length, 64);
  EXPECT_EQ(c.task.loss, "vocab");
  EXPECT_EQ(c.prompt.length, 8);
  EXPECT_EQ(c.prompt.init, "text");
  EXPECT_EQ(c.prompt.init_text, "classify the sentiment");
  EXPECT_DOUBLE_EQ(c.prompt.init_range, 0.25);
  EXPECT_EQ(c.optim.name, "adafactor");
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.3);
  EXPECT_DOUBLE_EQ(c.optim.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(c.optim.beta1, 0.0);
  EXPECT_DOUBLE_EQ(c.optim.beta2, 0.99);
  EXPECT_DOUBLE_EQ(c.optim.eps, 1e-6);
  EXPECT_EQ(c.optim.warmup_steps, 10);
  EXPECT_EQ(c.optim.schedule, "cosine");
  EXPECT_DOUBLE_EQ(c.optim.min_lr_ratio, 0.1);
  EXPECT_DOUBLE_EQ(c.optim.clip_grad_norm, 0.0);
  EXPECT_DOUBLE_EQ(c.optim.adafactor.decay_rate, 0.5);
  EXPECT_DOUBLE_EQ(c.optim.adafactor.clip_threshold, 2.0);
  EXPECT_DOUBLE_EQ(c.optim.adafactor.eps1, 1e-20);
  EXPECT_DOUBLE_EQ(c.optim.adafactor.eps2, 0.01);
  EXPECT_FALSE(c.optim.adafactor.scale_parameter);
  EXPECT_EQ(c.train.steps, 7);
  EXPECT_EQ(c.train.batch_size, 32);
  EXPECT_EQ(c.train.micro_batch_size, 8);
  EXPECT_EQ(c.train.eval_every, 0);
  EXPECT_EQ(c.train.eval_batch_size, 4);
  EXPECT_EQ(c.train.eval_max_examples, 100);
  EXPECT_EQ(c.train.checkpoint_every, 5);
  EXPECT_EQ(c.train.keep_checkpoints, 1);
  EXPECT_EQ(c.train.log_every, 1);
  EXPECT_EQ(c.train.run_dir, "runs/a");
  EXPECT_EQ(c.train.resume, "never");
  EXPECT_EQ(c.train.seed, 18446744073709551615ULL);
  EXPECT_FALSE(c.train.shuffle);
  EXPECT_EQ(c.parallel.tensor, 2);
  EXPECT_EQ(c.parallel.pipeline, 3);
  EXPECT_EQ(c.parallel.schedule, "gpipe");
  EXPECT_EQ(c.parallel.stage_layers, (std::vector<int>{10, 12, 8}));
  EXPECT_EQ(c.source_path, "a.yaml");
}

TEST(ConfigLoad, EmptySectionsAndEmptyEvalAreAllowed) {
  Config c = parse_config(minimal_plus("  eval:\noptim:\nparallel:\n  stage_layers: []\n"), "x.yaml");
  EXPECT_EQ(c.task.eval, "");
  EXPECT_EQ(c.optim, OptimSection{});
  EXPECT_TRUE(c.parallel.stage_layers.empty());
}

TEST(ConfigLoad, ResumeAndInitTakePaths) {
  Config c = parse_config(minimal_plus("prompt:\n  init: file:prompts/p.h5\ntrain:\n  resume: runs/a/step_100.h5\n"),
                          "x.yaml");
  EXPECT_EQ(c.prompt.init, "file:prompts/p.h5");
  EXPECT_EQ(c.train.resume, "runs/a/step_100.h5");
}

// ---- errors: each names the key and the 1-based line ----

TEST(ConfigErrors, UnknownKeyNamesPathLineAndSuggestion) {
  const std::string yaml = minimal_plus(
      "optim:\n"          // line 6
      "  lrr: 0.1\n");    // line 7
  EXPECT_EQ(error_of(yaml), "configs/x.yaml:7: optim.lrr: unknown key (did you mean optim.lr?)");
}

TEST(ConfigErrors, DidYouMeanCoversTyposSwapsPrefixesAndOtherSections) {
  EXPECT_THAT(error_of(minimal_plus("train:\n  stpes: 5\n")),
              AllOf(HasSubstr(":7: train.stpes: unknown key"), HasSubstr("did you mean train.steps?")));
  EXPECT_THAT(error_of(minimal_plus("optimizer:\n  lr: 1\n")),
              AllOf(HasSubstr(":6: optimizer: unknown key"), HasSubstr("did you mean optim?")));
  EXPECT_THAT(error_of(minimal_plus("train:\n  lr: 0.1\n")), HasSubstr("did you mean optim.lr?"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  adafactor:\n    eps3: 1\n")),
              AllOf(HasSubstr(":8: optim.adafactor.eps3: unknown key"), HasSubstr("did you mean optim.adafactor.eps")));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  banana: 1\n")),
              AllOf(HasSubstr(":7: optim.banana: unknown key"), Not(HasSubstr("did you mean"))));
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_EQ(error_of(minimal_plus("optim:\n  lr: abc\n")),
            "configs/x.yaml:7: optim.lr: expected a number, got 'abc'");
  EXPECT_EQ(error_of(minimal_plus("train:\n\n  steps: abc\n")),
            "configs/x.yaml:8: train.steps: expected an integer, got 'abc'");
  EXPECT_THAT(error_of(minimal_plus("train:\n  steps: 1.5\n")), HasSubstr(":7: train.steps: expected an integer, got '1.5'"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  steps: 1e3\n")), HasSubstr("expected an integer, got '1e3'"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  steps: 99999999999\n")), HasSubstr(":7: train.steps: integer out of range"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  steps: [1, 2]\n")), HasSubstr("train.steps: expected an integer, got a list"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  steps:\n")), HasSubstr(":7: train.steps: expected an integer, got nothing"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  seed: -1\n")), HasSubstr(":7: train.seed: expected a non-negative integer"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  shuffle: maybe\n")),
              HasSubstr(":7: train.shuffle: expected true or false, got 'maybe'"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  lr: .inf\n")), HasSubstr(":7: optim.lr: expected a number"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  lr: inf\n")), HasSubstr(":7: optim.lr: expected a finite number"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  lr: 1e999\n")), HasSubstr(":7: optim.lr: expected a finite number"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  name: {a: 1}\n")), HasSubstr(":7: optim.name: expected a string, got a map"));
  EXPECT_THAT(error_of(minimal_plus("optim: 5\n")), HasSubstr(":6: optim: expected a map of keys (a section), got '5'"));
}

TEST(ConfigErrors, ListElementErrorsPointAtTheElementLine) {
  EXPECT_THAT(error_of(minimal_plus("parallel:\n  pipeline: 2\n  stage_layers: [1,\n    x]\n")),
              HasSubstr("configs/x.yaml:9: parallel.stage_layers[1]: expected an integer, got 'x'"));
  EXPECT_THAT(error_of(minimal_plus("parallel:\n  stage_layers: 3\n")),
              HasSubstr(":7: parallel.stage_layers: expected a list of integers"));
}

TEST(ConfigErrors, LabelErrors) {
  const std::string head = "model:\n  path: m.h5\ntask:\n  train: t.tsv\n";  // labels at line 5
  EXPECT_THAT(error_of(head + "  labels: [a, b]\n"), HasSubstr("configs/x.yaml:5: task.labels: expected a map of label: word"));
  EXPECT_THAT(error_of(head + "  labels: {a: x}\n"), HasSubstr(":5: task.labels: needs at least 2 labels, got 1"));
  EXPECT_THAT(error_of(head + "  labels:\n    a: \" x\"\n    b: \" x\"\n"),
              HasSubstr("configs/x.yaml:7: task.labels.b: word ' x' is already the word of label 'a'"));
  EXPECT_THAT(error_of(head + "  labels:\n    a: x\n    a: y\n"),
              HasSubstr(":7: task.labels.a: duplicate label (first given at line 6)"));
  EXPECT_THAT(error_of(head + "  labels:\n    a: x\n    b:\n"),
              HasSubstr(":7: task.labels.b: expected the verbalizer word as a string, got nothing"));
  EXPECT_THAT(error_of(head + "  labels:\n    a: x\n    b: [y]\n"), HasSubstr(":7: task.labels.b: expected the verbalizer word"));
  EXPECT_THAT(error_of(head + "  labels:\n    a: x\n    b: \"\"\n"),
              HasSubstr(":7: task.labels.b: the verbalizer word must not be empty"));
}

TEST(ConfigErrors, OutOfRange) {
  EXPECT_EQ(error_of(minimal_plus("train:\n  steps: 0\n")), "configs/x.yaml:7: train.steps: must be >= 1, got 0");
  EXPECT_EQ(error_of(minimal_plus("optim:\n  lr: 0\n")), "configs/x.yaml:7: optim.lr: must be > 0, got 0");
  EXPECT_EQ(error_of(minimal_plus("optim:\n  lr: -0.1\n")), "configs/x.yaml:7: optim.lr: must be > 0, got -0.1");
  EXPECT_EQ(error_of(minimal_plus("optim:\n  beta1: 1\n")), "configs/x.yaml:7: optim.beta1: must be in [0, 1), got 1");
  EXPECT_THAT(error_of(minimal_plus("optim:\n  beta2: -0.5\n")), HasSubstr(":7: optim.beta2: must be in [0, 1)"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  eps: 0\n")), HasSubstr(":7: optim.eps: must be > 0"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  weight_decay: -1\n")), HasSubstr(":7: optim.weight_decay: must be >= 0"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  min_lr_ratio: 1.5\n")), HasSubstr(":7: optim.min_lr_ratio: must be in [0, 1]"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  warmup_steps: -1\n")), HasSubstr(":7: optim.warmup_steps: must be >= 0"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  clip_grad_norm: -1\n")), HasSubstr(":7: optim.clip_grad_norm: must be >= 0"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  adafactor:\n    decay_rate: 0\n")),
              HasSubstr(":8: optim.adafactor.decay_rate: must be in (0, 1]"));
  EXPECT_THAT(error_of(minimal_plus("optim:\n  adafactor:\n    eps2: 0\n")), HasSubstr(":8: optim.adafactor.eps2: must be > 0"));
  EXPECT_THAT(error_of(minimal_plus("threads: -2\n")), HasSubstr(":6: threads: must be >= 0, got -2"));
  EXPECT_THAT(error_of(minimal_plus("prompt:\n  length: -1\n")), HasSubstr(":7: prompt.length: must be >= 0"));
  EXPECT_THAT(error_of(minimal_plus("prompt:\n  init_range: 0\n")), HasSubstr(":7: prompt.init_range: must be > 0"));
  EXPECT_THAT(error_of(minimal_plus("  max_length: 0\n")), HasSubstr(":6: task.max_length: must be >= 1"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  keep_checkpoints: 0\n")), HasSubstr(":7: train.keep_checkpoints: must be >= 1"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  eval_every: -1\n")), HasSubstr(":7: train.eval_every: must be >= 0"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  log_every: 0\n")), HasSubstr(":7: train.log_every: must be >= 1"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  run_dir: \"\"\n")), HasSubstr(":7: train.run_dir: must not be empty"));
  EXPECT_THAT(error_of(minimal_plus("train:\n  resume:\n")), HasSubstr(":7: train.resume: must be auto, never or"));
  EXPECT_THAT(error_of(minimal_plus("parallel:\n  tensor: 0\n")), HasSubstr(":7: parallel.tensor: must be >= 1"));
}

TEST(ConfigErrors, EnumsListTheAllowedValues) {
  struct Case {
    std::string yaml, expected;
  };
  const std::vector<Case> cases = {
      {"backend: gpu\n", "configs/x.yaml:6: backend: must be one of cpu, cuda; got 'gpu'"},
      {"  format: csv\n", "configs/x.yaml:6: task.format: must be one of auto, tsv, jsonl; got 'csv'"},
      {"  loss: mse\n", "configs/x.yaml:6: task.loss: must be one of labels, vocab; got 'mse'"},
      {"prompt:\n  init: zeros\n",
       "configs/x.yaml:7: prompt.init: must be one of random_uniform, vocab_sample, text, labels, file:PATH; got 'zeros'"},
      {"prompt:\n  method: lora\n",
       "configs/x.yaml:7: prompt.method: must be one of prompt_tuning, deep, p_tuning; got 'lora'"},
      {"prompt:\n  method: deep\n  reparameterize: lstm\n",
       "configs/x.yaml:8: prompt.reparameterize: must be one of none, mlp; got 'lstm'"},
      {"prompt:\n  method: p_tuning\n  encoder: gru\n",
       "configs/x.yaml:8: prompt.encoder: must be one of mlp, lstm; got 'gru'"},
      {"prompt:\n  reparameterize: mlp\n",
       "configs/x.yaml:7: prompt.reparameterize: applies to prompt.method deep only (got method prompt_tuning)"},
      {"prompt:\n  encoder_hidden: -1\n", "configs/x.yaml:7: prompt.encoder_hidden: must be >= 0, got -1"},
      {"optim:\n  name: sgd\n", "configs/x.yaml:7: optim.name: must be one of adamw, adafactor; got 'sgd'"},
      {"optim:\n  schedule: step\n", "configs/x.yaml:7: optim.schedule: must be one of constant, linear, cosine; got 'step'"},
      {"parallel:\n  schedule: zb\n", "configs/x.yaml:7: parallel.schedule: must be one of gpipe, 1f1b; got 'zb'"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(error_of(minimal_plus(c.yaml)), c.expected) << c.yaml;
  }
  // model: is already in kMinimal, so model.dtype gets its own layout.
  EXPECT_EQ(error_of("model:\n  path: m.h5\n  dtype: bf16\ntask:\n  train: t.tsv\n  labels: {a: x, b: y}\n"),
            "configs/x.yaml:3: model.dtype: must be one of f32, f64; got 'bf16'");
  EXPECT_THAT(error_of(minimal_plus("prompt:\n  init: \"file:\"\n")), HasSubstr(":7: prompt.init: file: needs a path"));
}

TEST(ConfigErrors, MissingRequiredKeysNameTheFile) {
  EXPECT_EQ(error_of("task:\n  train: t.tsv\n  labels: {a: x, b: y}\n"),
            "configs/x.yaml: model.path: required key is missing");
  EXPECT_EQ(error_of("model:\n  path: m.h5\ntask:\n  labels: {a: x, b: y}\n"),
            "configs/x.yaml: task.train: required key is missing");
  EXPECT_EQ(error_of("model:\n  path: m.h5\ntask:\n  train: t.tsv\n"), "configs/x.yaml: task.labels: required key is missing");
  EXPECT_EQ(error_of(""), "configs/x.yaml: model.path: required key is missing");
  EXPECT_EQ(error_of("model:\n  path: \"\"\n"), "configs/x.yaml:2: model.path: must not be empty");
}

TEST(ConfigErrors, MalformedYamlGivesTheParserLine) {
  EXPECT_THAT(error_of("model:\n  path: m.h5\ntask:\n  labels: {a: x, b: y\n  train: t.tsv\n"),
              AllOf(StartsWith("configs/x.yaml:"), HasSubstr("malformed YAML")));
  EXPECT_THAT(error_of("model:\n  path: m.h5\n   bad: indent\n"), StartsWith("configs/x.yaml:3: malformed YAML"));
  EXPECT_THAT(error_of("- a\n- b\n"), HasSubstr("configs/x.yaml:1: expected a map of sections"));
}

TEST(ConfigErrors, DuplicateKeys) {
  EXPECT_EQ(error_of(minimal_plus("optim:\n  lr: 0.1\n  lr: 0.2\n")),
            "configs/x.yaml:8: optim.lr: duplicate key (first given at line 7)");
  EXPECT_THAT(error_of(minimal_plus("model:\n  dtype: f32\n")), HasSubstr(":6: model: duplicate key (first given at line 1)"));
}

TEST(ConfigErrors, CrossKeyRules) {
  EXPECT_EQ(error_of(minimal_plus("  template: \"Review: {txt}\"\n")),
            "configs/x.yaml:6: task.template: must contain {text} (where the example's text goes), got 'Review: {txt}'");
  EXPECT_EQ(error_of(minimal_plus("train:\n  batch_size: 16\n  micro_batch_size: 5\n")),
            "configs/x.yaml:8: train.micro_batch_size: must divide train.batch_size (16), got 5");
  // micro_batch_size left at its default (16): point at batch_size.
  EXPECT_THAT(error_of(minimal_plus("train:\n  batch_size: 24\n")),
              HasSubstr("configs/x.yaml:7: train.micro_batch_size: must divide train.batch_size (24), got 16"));
  EXPECT_EQ(error_of(minimal_plus("prompt:\n  init: text\n")),
            "configs/x.yaml:7: prompt.init_text: must not be empty when prompt.init is text");
  EXPECT_THAT(error_of(minimal_plus("parallel:\n  pipeline: 2\n  stage_layers: [4, 4, 4]\n")),
              HasSubstr("configs/x.yaml:8: parallel.stage_layers: has 3 entries but parallel.pipeline is 2"));
  EXPECT_THAT(error_of(minimal_plus("parallel:\n  pipeline: 2\n  stage_layers: [4, 0]\n")),
              HasSubstr(":8: parallel.stage_layers: stage 1 must have >= 1 layer, got 0"));
}

TEST(ValidateConfig, CodeBuiltConfigsAreCheckedWithoutLines) {
  Config c;
  EXPECT_THROW(
      {
        try {
          validate_config(c);
        } catch (const Error& e) {
          EXPECT_STREQ(e.what(), "config: model.path: required key is missing");
          throw;
        }
      },
      Error);
  c.model.path = "m.h5";
  c.task.train = "t.tsv";
  c.task.labels = {{"a", "x"}, {"b", "y"}};
  EXPECT_NO_THROW(validate_config(c));
  c.optim.lr = std::nan("");
  EXPECT_THROW(validate_config(c), Error);
  c.optim.lr = 0.1;
  c.task.labels.push_back({"a", "z"});
  EXPECT_THROW(validate_config(c), Error);  // duplicate label
}

// ---- load_config reads a file ----

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sptrain-config-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::filesystem::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigFile, LoadsAFileAndNamesItInErrors) {
  std::string path = write("ok.yaml", kMinimal);
  Config c = load_config(path, {"optim.lr=0.5"});
  EXPECT_EQ(c.source_path, path);
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.5);
  EXPECT_EQ(c.model.path, "m.h5");  // relative paths stay as written

  std::string bad = write("bad.yaml", minimal_plus("optim:\n  lrr: 1\n"));
  try {
    load_config(bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), StartsWith(bad + ":7: optim.lrr: unknown key"));
  }
}

TEST_F(ConfigFile, MissingFileOrDirectoryIsAnError) {
  std::string missing = (dir_ / "nope.yaml").string();
  try {
    load_config(missing);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("cannot open config file"), HasSubstr(missing)));
  }
  EXPECT_THROW(load_config(dir_.string()), Error);
}

}  // namespace
}  // namespace sptrain
