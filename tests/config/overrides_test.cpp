// --set KEY=VALUE overrides: applied to the YAML tree before conversion, values
// parsed as YAML, errors naming the --set argument.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.hpp"

namespace sptrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::error_of;
using testing::kMinimal;
using testing::minimal_plus;

using Labels = std::vector<std::pair<std::string, std::string>>;

Config parse(const std::string& yaml, const std::vector<std::string>& overrides) {
  return parse_config(yaml, "configs/x.yaml", overrides);
}

TEST(ConfigOverrides, ScalarsOfEveryType) {
  Config c = parse(minimal_plus("optim:\n  lr: 0.1\n"),
                   {"optim.lr=0.05", "train.steps=12", "train.shuffle=false", "train.seed=99",
                    "optim.name=adafactor", "backend=cuda"});
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.05);
  EXPECT_EQ(c.train.steps, 12);
  EXPECT_FALSE(c.train.shuffle);
  EXPECT_EQ(c.train.seed, 99u);
  EXPECT_EQ(c.optim.name, "adafactor");
  EXPECT_EQ(c.backend, "cuda");
}

TEST(ConfigOverrides, LaterOverridesWin) {
  Config c = parse(kMinimal, {"optim.lr=0.5", "optim.lr=0.25"});
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.25);
}

TEST(ConfigOverrides, FlowMapsAndLists) {
  Config c = parse(minimal_plus("parallel:\n  pipeline: 2\n"),
                   {"task.labels={b: \" yes\", a: \" no\", c: \" maybe\"}", "parallel.stage_layers=[1,3]"});
  EXPECT_EQ(c.task.labels, (Labels{{"b", " yes"}, {"a", " no"}, {"c", " maybe"}}));
  EXPECT_EQ(c.parallel.stage_layers, (std::vector<int>{1, 3}));
  EXPECT_EQ(c.parallel.pipeline, 2);
}

TEST(ConfigOverrides, OneLabelEntry) {
  Config c = parse(kMinimal, {"task.labels.2= neutral", "task.labels.0=\" bad\""});
  EXPECT_EQ(c.task.labels, (Labels{{"0", " bad"}, {"1", " positive"}, {"2", " neutral"}}));
}

TEST(ConfigOverrides, StringKeysTakeTheTextAsWrittenUnlessQuoted) {
  Config c = parse(kMinimal, {"task.template=Review: {text} # not a comment", "prompt.init_text=[x]"});
  EXPECT_EQ(c.task.template_text, "Review: {text} # not a comment");
  EXPECT_EQ(c.prompt.init_text, "[x]");
  c = parse(kMinimal, {"task.template=\"Review: {text}\\nSentiment:\"", "task.eval="});
  EXPECT_EQ(c.task.template_text, "Review: {text}\nSentiment:");
  EXPECT_EQ(c.task.eval, "");
}

TEST(ConfigOverrides, CreatesMissingSectionsAndFillsAnEmptyFile) {
  Config c = parse(kMinimal, {"optim.adafactor.eps2=0.01"});
  EXPECT_DOUBLE_EQ(c.optim.adafactor.eps2, 0.01);
  c = parse("", {"model.path=m.h5", "task.train=t.tsv", "task.labels={a: x, b: y}"});
  EXPECT_EQ(c.model.path, "m.h5");
  EXPECT_EQ(c.task.labels, (Labels{{"a", "x"}, {"b", "y"}}));
}

TEST(ConfigOverrides, ASectionValueReplacesTheSection) {
  Config c = parse(minimal_plus("optim:\n  lr: 0.1\n  warmup_steps: 5\n"), {"optim={name: adafactor, lr: 0.3}"});
  EXPECT_EQ(c.optim.name, "adafactor");
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.3);
  EXPECT_EQ(c.optim.warmup_steps, 0);  // the file's optim section is gone
}

TEST(ConfigOverrides, UnknownKeyNamesTheSetArgument) {
  EXPECT_EQ(error_of(kMinimal, {"optim.lrr=0.1"}), "--set optim.lrr=0.1: optim.lrr: unknown key (did you mean optim.lr?)");
  EXPECT_THAT(error_of(kMinimal, {"optm.lr=0.1"}), AllOf(HasSubstr("--set optm.lr=0.1"), HasSubstr("did you mean optim?")));
  EXPECT_THAT(error_of(kMinimal, {"optim.lr.x=1"}), HasSubstr("--set optim.lr.x=1: optim.lr is a single value"));
  EXPECT_THAT(error_of(kMinimal, {"optim={lrr: 1}"}),
              AllOf(HasSubstr("--set optim={lrr: 1}: optim.lrr: unknown key"), HasSubstr("did you mean optim.lr?")));
}

TEST(ConfigOverrides, BadValuesNameTheSetArgument) {
  EXPECT_EQ(error_of(kMinimal, {"optim.lr=abc"}), "--set optim.lr=abc: optim.lr: expected a number, got 'abc'");
  EXPECT_EQ(error_of(kMinimal, {"train.steps=0"}), "--set train.steps=0: train.steps: must be >= 1, got 0");
  EXPECT_EQ(error_of(kMinimal, {"parallel.stage_layers=[1, y]"}),
            "--set parallel.stage_layers=[1, y]: parallel.stage_layers[1]: expected an integer, got 'y'");
  EXPECT_THAT(error_of(kMinimal, {"task.labels={a: x}"}),
              HasSubstr("--set task.labels={a: x}: task.labels: needs at least 2 labels, got 1"));
  EXPECT_THAT(error_of(kMinimal, {"task.labels.2= positive"}),
              HasSubstr("--set task.labels.2= positive: task.labels.2: word ' positive' is already the word of label '1'"));
  EXPECT_THAT(error_of(kMinimal, {"parallel.stage_layers=[1,"}),
              HasSubstr("--set parallel.stage_layers=[1,: cannot read the value as YAML"));
  EXPECT_THAT(error_of(kMinimal, {"optim.lr"}), HasSubstr("--set optim.lr: expected KEY=VALUE"));
  EXPECT_THAT(error_of(kMinimal, {"=3"}), HasSubstr("--set =3: the key before '=' is empty"));
  EXPECT_THAT(error_of(kMinimal, {"optim..lr=3"}), HasSubstr("--set optim..lr=3"));
}

TEST(ConfigOverrides, ErrorsInTheFileStillNameTheFileLine) {
  // An override elsewhere does not change where a file error points.
  EXPECT_EQ(error_of(minimal_plus("train:\n  steps: 0\n"), {"optim.lr=0.5"}),
            "configs/x.yaml:7: train.steps: must be >= 1, got 0");
}

}  // namespace
}  // namespace sptrain
