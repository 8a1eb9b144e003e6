// Generate tasks' data: input<TAB>target and {"input", "target"} lines, the
// target's tokens and end-of-sequence, every error with its line, and the
// evaluation file grouped by input with its references.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "../support/train_env.hpp"
#include "sptrain/config/load.hpp"
#include "sptrain/data/task_data.hpp"

namespace sptrain {
namespace {

using ::testing::HasSubstr;
using test::error_of;

std::string file(const std::string& name, const std::string& bytes) {
  const std::string p = test::temp_path(name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

TaskSection generate_section(int max_target_length = 8) {
  TaskSection t;
  t.kind = "generate";
  t.template_text = "in: {text}\n";
  t.max_length = 32;
  t.max_target_length = max_target_length;
  return t;
}

TEST(GenerateData, TsvAndJsonlFieldsAndTheirErrors) {
  const auto tsv = read_dataset(file("g.tsv", "a[1], b[2]\tThe A is 1.\nc[3]\tC.\n"), "auto", kGenerateFields);
  ASSERT_EQ(tsv.size(), 2u);
  EXPECT_EQ(tsv[0].text, "a[1], b[2]");
  EXPECT_EQ(tsv[0].label, "The A is 1.");
  const auto jsonl = read_dataset(file("g.jsonl", "{\"input\": \"x\", \"target\": \"y z\", \"text\": 1}\n"),
                                  "auto", kGenerateFields);
  EXPECT_EQ(jsonl[0].text, "x");
  EXPECT_EQ(jsonl[0].label, "y z");

  const std::string p = file("bad.tsv", "a\tb\nno tab here\n");
  EXPECT_THAT(error_of([&] { read_dataset(p, "auto", kGenerateFields); }),
              HasSubstr("bad.tsv:2: no tab; expected input<TAB>target"));
  EXPECT_THAT(error_of([&] { read_dataset(file("e.tsv", "a\tb\nx\t\n"), "auto", kGenerateFields); }),
              HasSubstr("e.tsv:2: empty target after the last tab"));
  EXPECT_THAT(error_of([&] { read_dataset(file("i.tsv", "\tb\n"), "auto", kGenerateFields); }),
              HasSubstr("i.tsv:1: empty input before the tab"));
  EXPECT_THAT(error_of([&] { read_dataset(file("m.jsonl", "{\"input\": \"x\"}\n"), "auto", kGenerateFields); }),
              HasSubstr("m.jsonl:1: missing field \"target\""));
  EXPECT_THAT(error_of([&] { read_dataset(file("n.jsonl", "{\"input\": \"x\", \"target\": 3}\n"), "auto", kGenerateFields); }),
              HasSubstr("n.jsonl:1: field \"target\" must be a string, got number"));
  EXPECT_THAT(error_of([&] { read_dataset(file("o.jsonl", "{\"input\": \"x\", \"target\": \"\"}\n"), "auto", kGenerateFields); }),
              HasSubstr("o.jsonl:1: empty \"target\""));
}

TEST(GenerateData, TargetsEndWithEndOfSequenceAndMayNotBeTooLong) {
  const Tokenizer tok = test::bytes_with_eos();
  const Task task(generate_section(), tok);
  EXPECT_TRUE(task.generative());
  EXPECT_TRUE(task.vocab_loss());
  EXPECT_EQ(task.num_labels(), 0);
  const EncodedExample e = task.encode(Example{"ab", "xyz", 1});
  EXPECT_EQ(e.tokens, tok.encode("in: ab\n"));
  EXPECT_EQ(e.target, (std::vector<int32_t>{'x', 'y', 'z', 256}));
  EXPECT_EQ(e.answer_tokens(), 4);
  EXPECT_EQ(e.input_rows(), int64_t(e.tokens.size()) + 3);

  // 8 tokens with end-of-sequence fit; 9 do not, and the error names the line.
  const std::string p = file("long.tsv", "a\t1234567\nb\t12345678\n");
  EXPECT_THAT(error_of([&] { encode_file(task, p, "auto"); }),
              HasSubstr("long.tsv:2: the target is 9 tokens with end-of-sequence; task.max_target_length is 8"));

  const Tokenizer no_eos = Tokenizer::bytes_only();
  EXPECT_THAT(error_of([&] { Task t(generate_section(), no_eos); }), HasSubstr("no end-of-sequence token"));
}

TEST(GenerateData, EvaluationInputsCollectTheirReferencesInOrder) {
  const Tokenizer tok = test::bytes_with_eos();
  const Task task(generate_section(), tok);
  const std::string p = file("dev.tsv", "m1\tr1a\nm2\tr2a\nm1\tr1b\nm3\tr3a\nm2\tr2b\n");
  std::vector<ReferencedInput> inputs;
  std::vector<EncodedExample> firsts;
  read_referenced_inputs(task, p, "auto", 0, inputs, firsts);
  ASSERT_EQ(inputs.size(), 3u);
  EXPECT_EQ(inputs[0].text, "m1");
  EXPECT_EQ(inputs[0].references, (std::vector<std::string>{"r1a", "r1b"}));
  EXPECT_EQ(inputs[1].references, (std::vector<std::string>{"r2a", "r2b"}));
  EXPECT_EQ(inputs[2].references, (std::vector<std::string>{"r3a"}));
  EXPECT_EQ(inputs[1].tokens, task.encode_input("m2"));
  ASSERT_EQ(firsts.size(), 3u);
  EXPECT_EQ(firsts[1].target, (std::vector<int32_t>{'r', '2', 'a', 256}));
  // A cap counts inputs; each keeps all its references.
  read_referenced_inputs(task, p, "auto", 2, inputs, firsts);
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[1].references.size(), 2u);
}

TEST(GenerateConfig, KindChecksLabelsAndLoss) {
  const std::string base = "model:\n  path: m.h5\ntask:\n  kind: generate\n  train: t.tsv\n";
  const Config c = parse_config(base, "g.yaml");
  EXPECT_EQ(c.task.kind, "generate");
  EXPECT_EQ(c.task.loss, "vocab");  // resolved, and dumped so
  EXPECT_EQ(parse_config(dump_config(c), "g.yaml"), c);
  auto error = [&](const std::string& extra) {
    try {
      parse_config(base + extra, "g.yaml");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_THAT(error("  labels: {a: x, b: y}\n"), HasSubstr("g.yaml:6: task.labels: a generate task has no labels"));
  EXPECT_THAT(error("  loss: labels\n"), HasSubstr("g.yaml:6: task.loss: a generate task's loss is over the whole vocabulary"));
  EXPECT_THAT(error("  kind: summarise\n"), HasSubstr("task.kind"));
  EXPECT_THAT(error("prompt:\n  init: labels\n"), HasSubstr("prompt.init: labels needs the label words"));
  EXPECT_THAT(error("  max_target_length: 0\n"), HasSubstr("task.max_target_length: must be >= 1"));
}

}  // namespace
}  // namespace sptrain
