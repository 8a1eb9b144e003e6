// `sptrain generate` end to end: generate tasks' prompts (checkpoints and hdf5
// exports) mixed in one batch, output in input order, the same text in any
// batch, seeded sampling, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/run_binary.hpp"
#include "../support/train_env.hpp"
#include "infer_env.hpp"
#include "sptrain/prompt/export.hpp"

namespace sptrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// A tiny model with the byte tokenizer and an end-of-sequence token, and two
// generate tasks' checkpoints (prompts of 3 and 5 rows, different templates).
struct GenTasks {
  std::string model, a, b, classify;
};

const GenTasks& gen_tasks() {
  static const GenTasks t = [] {
    GenTasks g;
    ModelConfig c = test::tiny_config(Family::Llama);
    c.vocab_size = 260;
    g.model = test::temp_path("gen_model.h5");
    const Tokenizer tok = test::bytes_with_eos();
    write_random_model(g.model, c, 3, 0.3, [&](h5::File& f) { tok.save(f); });
    auto write = [&](const std::string& name, int P, uint64_t seed, const std::string& templ) {
      Checkpoint k = test::task_checkpoint(g.model, P, seed, templ, {}, 20);
      k.config_yaml = "task:\n  kind: generate\n  max_length: 20\n  max_target_length: 6\n";
      const std::string path = test::temp_path(name);
      write_checkpoint(path, k);
      return path;
    };
    g.a = write("gen_a.h5", 3, 1, "Q: {text}\nA: ");
    g.b = write("gen_b.h5", 5, 2, "{text} => ");
    g.classify = test::temp_path("gen_classify.h5");
    write_checkpoint(g.classify, test::task_checkpoint(g.model, 4, 3, "{text}", {{"0", "n"}, {"1", "p"}}, 20));
    return g;
  }();
  return t;
}

test::CommandResult generate_cli(const std::vector<std::string>& args, const std::string& input) {
  const std::string in = test::temp_path("generate_stdin.jsonl");
  std::ofstream(in, std::ios::binary) << input;
  std::vector<std::string> all{"generate", "--model", gen_tasks().model};
  all.insert(all.end(), args.begin(), args.end());
  return test::run_sptrain(all, std::filesystem::path(in).parent_path().string(), in);
}

std::vector<nlohmann::json> lines_of(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

const char* const kInput =
    "{\"task\": \"a\", \"input\": \"red tea\", \"id\": 1}\n"
    "{\"task\": \"b\", \"input\": \"a longer input here\"}\n"
    "{\"task\": \"a\", \"input\": \"x\", \"id\": \"third\"}\n";

TEST(GenerateCommand, TasksMixedInOneBatchGiveWhatEachGivesAlone) {
  const GenTasks& t = gen_tasks();
  // Task b from its hdf5 export: exports carry a generate task too.
  const std::string b_h5 = test::temp_path("gen_b_export.h5");
  export_hdf5(read_stored_prompt(t.b), b_h5);
  const StoredPrompt back = read_stored_prompt(b_h5);
  EXPECT_EQ(back.task_kind, "generate");
  EXPECT_EQ(back.task_max_target_length, 6);

  const std::vector<std::string> prompts{"--prompt", "a=" + t.a, "--prompt", "b=" + b_h5, "--ids"};
  const test::CommandResult mixed = generate_cli(prompts, kInput);
  ASSERT_EQ(mixed.code, 0) << mixed.err;
  const auto out = lines_of(mixed.out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]["id"], 1);
  EXPECT_FALSE(out[1].contains("id"));
  EXPECT_EQ(out[2]["id"], "third");
  const Tokenizer tok = test::bytes_with_eos();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i]["task"], i == 1 ? "b" : "a");
    const auto ids = out[i]["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(out[i]["tokens"], ids.size());
    EXPECT_LE(ids.size(), 6u);  // the tasks' max_target_length
    // Bytes that are not UTF-8 (a random model's tokens) print as U+FFFD.
    const std::string text = nlohmann::json(tok.decode(ids)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    EXPECT_EQ(out[i]["text"], nlohmann::json::parse(text));
    EXPECT_THAT(std::string(out[i]["finish"]), ::testing::AnyOf("eos", "length"));
  }
  // One input per batch: the same lines.
  std::vector<std::string> one = prompts;
  one.insert(one.end(), {"--batch-size", "1"});
  const test::CommandResult alone = generate_cli(one, kInput);
  ASSERT_EQ(alone.code, 0) << alone.err;
  EXPECT_EQ(alone.out, mixed.out);

  // Sampling: the same seed, the same text, in any batch; --max-new-tokens and --stop apply.
  std::vector<std::string> sample = prompts;
  sample.insert(sample.end(), {"--temperature", "1.5", "--top-k", "50", "--top-p", "0.95", "--seed", "9",
                               "--max-new-tokens", "4"});
  const test::CommandResult s1 = generate_cli(sample, kInput);
  sample.insert(sample.end(), {"--batch-size", "2"});
  const test::CommandResult s2 = generate_cli(sample, kInput);
  ASSERT_EQ(s1.code, 0) << s1.err;
  EXPECT_EQ(s1.out, s2.out);
  for (const auto& j : lines_of(s1.out)) EXPECT_LE(j["tokens"].get<int>(), 4);
}

// Deep prompts (hdf5 exports of keys and values, format_version 2): two
// tasks' stacked in one batch give what each gives alone, and the keys and
// values decide the text. Other layouts: tests/distributed/test_generation.cpp.
TEST(GenerateCommand, DeepPromptsMixedInOneBatchGiveWhatEachGivesAlone) {
  const GenTasks& t = gen_tasks();
  const std::string a = test::write_deep_task(t.model, t.a, 3, 41, test::temp_path("gen_a_deep.h5"));
  const std::string b = test::write_deep_task(t.model, t.b, 5, 42, test::temp_path("gen_b_deep.h5"));
  const test::CommandResult mixed = generate_cli({"--prompt", "a=" + a, "--prompt", "b=" + b, "--ids"}, kInput);
  ASSERT_EQ(mixed.code, 0) << mixed.err;
  const auto out = lines_of(mixed.out);
  ASSERT_EQ(out.size(), 3u);
  const test::CommandResult only_a = generate_cli(
      {"--prompt", "a=" + a, "--ids", "--batch-size", "1"},
      "{\"task\": \"a\", \"input\": \"red tea\", \"id\": 1}\n{\"task\": \"a\", \"input\": \"x\", \"id\": \"third\"}\n");
  const test::CommandResult only_b = generate_cli({"--prompt", "b=" + b, "--ids"},
                                                  "{\"task\": \"b\", \"input\": \"a longer input here\"}\n");
  ASSERT_EQ(only_a.code, 0) << only_a.err;
  ASSERT_EQ(only_b.code, 0) << only_b.err;
  const auto alone_a = lines_of(only_a.out), alone_b = lines_of(only_b.out);
  ASSERT_EQ(alone_a.size(), 2u);
  ASSERT_EQ(alone_b.size(), 1u);
  EXPECT_EQ(out[0], alone_a[0]);
  EXPECT_EQ(out[1], alone_b[0]);
  EXPECT_EQ(out[2], alone_a[1]);
  // Other keys and values for task a: other tokens.
  const std::string other = test::write_deep_task(t.model, t.a, 3, 43, test::temp_path("gen_a_deep_other.h5"));
  const test::CommandResult changed = generate_cli({"--prompt", "a=" + other, "--prompt", "b=" + b, "--ids"}, kInput);
  ASSERT_EQ(changed.code, 0) << changed.err;
  const auto out2 = lines_of(changed.out);
  EXPECT_TRUE(out2[0]["ids"] != out[0]["ids"] || out2[2]["ids"] != out[2]["ids"])
      << "task a's keys and values changed no token";
  EXPECT_EQ(out2[1], out[1]);
  // A deep prompt beside an input-vector prompt is an error naming both.
  const test::CommandResult mix = generate_cli({"--prompt", "a=" + a, "--prompt", "b=" + t.b}, kInput);
  EXPECT_EQ(mix.code, 1);
  EXPECT_THAT(mix.err, AllOf(HasSubstr("task 'b'"), HasSubstr("not both")));
}

TEST(GenerateCommand, ErrorsNameTheLineOrThePrompt) {
  const GenTasks& t = gen_tasks();
  const std::vector<std::string> prompts{"--prompt", "a=" + t.a};
  auto err = [&](const std::vector<std::string>& args, const std::string& input) {
    const test::CommandResult r = generate_cli(args, input);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    return r.err;
  };
  EXPECT_THAT(err(prompts, "{\"task\": \"a\", \"input\": \"x\"}\n{\"task\": \"c\", \"input\": \"y\"}\n"),
              HasSubstr("stdin:2: unknown task 'c' (tasks: a)"));
  EXPECT_THAT(err(prompts, "{\"task\": \"a\", \"text\": \"x\"}\n"), HasSubstr("stdin:1: missing field \"input\""));
  EXPECT_THAT(err(prompts, "{\"task\": \"a\", \"input\": \"\"}\n"), HasSubstr("stdin:1: empty \"input\""));
  EXPECT_THAT(err({"--prompt", "c=" + t.classify}, "{\"task\": \"c\", \"input\": \"x\"}\n"),
              AllOf(HasSubstr("task 'c'"), HasSubstr("task.kind: generate")));
  // And infer refuses a generate task's prompt.
  const std::string in = test::temp_path("infer_gen.jsonl");
  std::ofstream(in) << "{\"task\": \"a\", \"text\": \"x\"}\n";
  const test::CommandResult r = test::run_sptrain({"infer", "--model", t.model, "--prompt", "a=" + t.a},
                                                  std::filesystem::path(in).parent_path().string(), in);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("use sptrain generate"));
}

}  // namespace
}  // namespace sptrain
