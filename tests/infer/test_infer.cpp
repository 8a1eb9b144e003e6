// Multi-task inference: the mixed-prompt packing, mixed batches scoring the
// same as each task alone and as the single-prompt packing of training, and
// `sptrain infer` end to end with its errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../support/run_binary.hpp"
#include "infer_env.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/infer/predictor.hpp"
#include "sptrain/model/batch.hpp"

namespace sptrain {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::vector<std::string> texts() {
  return {"a gripping, funny film", "dull", "the election results came in late on tuesday night",
          "new phone chips are faster", "I wanted to love it and could not",
          "the match went to penalties after a goalless draw", "ok", "a triumph of style over substance"};
}

TEST(MixedPromptBatch, EachExampleSegmentHasItsOwnPromptAsPrefix) {
  CpuBackend be(1);
  MixedPromptBatchBuilder builder(be, {2, 3}, 64, 4);
  EXPECT_EQ(builder.prompt_rows(), 5);
  EXPECT_EQ(builder.prompt_offset(1), 2);
  EncodedExample x{{10, 11, 12}, 1, 0}, y{{20, 21}, 0, 0}, z{{30}, 1, 0};
  MicroBatch mb;
  builder.fill(mb, {&x, &y, &z}, {1, 0, 1});
  const SequenceIndex& s = mb.seq;
  // [prompt 1 (3 rows) | prompt 0 (2 rows) | x | y | z], prompts in order of first use.
  EXPECT_EQ(s.num_segments, 5);
  EXPECT_EQ(s.host_offsets, (std::vector<int32_t>{0, 3, 5, 8, 10, 11}));
  EXPECT_EQ(s.host_prefix_start, (std::vector<int32_t>{0, 0, 0, 3, 0}));
  EXPECT_EQ(s.host_prefix_len, (std::vector<int32_t>{0, 0, 3, 2, 3}));
  EXPECT_EQ(s.host_positions, (std::vector<int32_t>{0, 1, 2, 0, 1, 3, 4, 5, 2, 3, 3}));
  EXPECT_EQ(s.host_answer_rows, (std::vector<int32_t>{7, 9, 10}));
  EXPECT_EQ(s.prompt_len, 2);  // the shortest prompt used
  EXPECT_EQ(s.max_keys, 6);
  EXPECT_EQ(mb.prompt_rows, 5);
  EXPECT_EQ(mb.text_rows, 6);
  // Prompt k's row i is row offset_k + i of the stacked prompts: id -1 - (offset_k + i).
  std::vector<int32_t> tokens(size_t(s.num_rows));
  be.copy_to_host(tokens.data(), mb.tokens);
  EXPECT_EQ(tokens, (std::vector<int32_t>{-3, -4, -5, -1, -2, 10, 11, 12, 20, 21, 30}));
  // Probabilities per segment: L x (prefix + L).
  EXPECT_EQ(s.host_prob_offsets, (std::vector<int64_t>{0, 9, 13, 13 + 3 * 6, 31 + 2 * 4, 39 + 1 * 4}));
  EXPECT_EQ(MixedPromptBatchBuilder::rows_needed({2, 3, 7}, 2, 10), 7 + 3 + 20);

  // One prompt only: a single prefix segment.
  builder.fill(mb, {&y, &z}, {0, 0});
  EXPECT_EQ(mb.seq.num_segments, 3);
  EXPECT_EQ(mb.prompt_rows, 2);
}

struct Scored {
  std::vector<std::vector<double>> logits;  // per example
};

class Infer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tasks_ = test::write_two_tasks("infer_"); }
  static std::vector<TaskPrompt> prompts(const std::vector<std::string>& which) {
    std::vector<TaskPrompt> out;
    for (const std::string& w : which) out.push_back(parse_task_prompt(w + "=" + (w == "a" ? tasks_.a : tasks_.b)));
    return out;
  }
  static test::TwoTasks tasks_;
};
test::TwoTasks Infer::tasks_;

TEST_F(Infer, MixedBatchesScoreLikeEachTaskAlone) {
  Predictor both(tasks_.model, prompts({"a", "b"}), PredictorOptions{8, 1});
  Predictor only_a(tasks_.model, prompts({"a"}), PredictorOptions{1, 1});
  Predictor only_b(tasks_.model, prompts({"b"}), PredictorOptions{1, 1});
  ASSERT_EQ(both.find_task("b"), 1);
  EXPECT_EQ(both.find_task("c"), -1);

  const std::vector<std::string> t = texts();
  std::vector<int> task_of = {0, 1, 1, 0, 0, 1, 0, 1};
  std::vector<EncodedExample> encoded;
  for (size_t i = 0; i < t.size(); ++i) encoded.push_back(both.encode(task_of[i], t[i]));
  std::vector<const EncodedExample*> batch;
  for (const auto& e : encoded) batch.push_back(&e);
  const std::vector<Prediction> mixed = both.predict(batch, task_of);

  for (size_t i = 0; i < t.size(); ++i) {
    Predictor& alone = task_of[i] == 0 ? only_a : only_b;
    const EncodedExample e = alone.encode(0, t[i]);
    EXPECT_EQ(e.tokens, encoded[i].tokens);
    const Prediction p = alone.predict({&e}, {0})[0];
    ASSERT_EQ(mixed[i].logits.size(), task_of[i] == 0 ? 2u : 3u);
    ASSERT_EQ(p.logits.size(), mixed[i].logits.size());
    for (size_t l = 0; l < p.logits.size(); ++l) {
      EXPECT_NEAR(mixed[i].logits[l], p.logits[l], 1e-5) << "example " << i << " label " << l;
      EXPECT_NEAR(mixed[i].probs[l], p.probs[l], 1e-5) << "example " << i << " label " << l;
    }
    EXPECT_EQ(mixed[i].label, p.label);
    EXPECT_EQ(mixed[i].task, task_of[i]);
    // Softmax over the task's own labels; the prediction is the largest.
    double sum = 0;
    for (double q : mixed[i].probs) sum += q;
    EXPECT_NEAR(sum, 1.0, 1e-12);
    EXPECT_EQ(mixed[i].label, int(std::max_element(mixed[i].logits.begin(), mixed[i].logits.end()) -
                                  mixed[i].logits.begin()));
  }
  // The shared label word "p" gives both tasks' "p" columns, but from
  // different prompts: the scores differ.
  EXPECT_NE(mixed[0].logits[1], mixed[1].logits[1]);
}

// The reference: the training code's own packing (one prompt, each example
// [prompt, text] as a segment without prefix) and the head over task a's
// labels only.
TEST_F(Infer, MixedBatchesScoreLikeTheSinglePromptPacking) {
  Predictor both(tasks_.model, prompts({"b", "a"}), PredictorOptions{8, 1});
  const StoredPrompt a = read_stored_prompt(tasks_.a);
  const std::vector<std::string> t = texts();
  std::vector<EncodedExample> encoded;
  std::vector<int> task_of;
  for (size_t i = 0; i < t.size(); ++i) {
    task_of.push_back(int(i % 2));  // b, a, b, a, ...
    encoded.push_back(both.encode(task_of.back(), t[i]));
  }
  std::vector<const EncodedExample*> batch;
  for (const auto& e : encoded) batch.push_back(&e);
  const std::vector<Prediction> mixed = both.predict(batch, task_of);

  CpuBackend be(1);
  ProcessGrid grid = make_solo_grid();
  const ModelContext ctx{be, *grid.tp, DType::F32, DType::F32};
  const h5::File f = h5::File::open_read(tasks_.model);
  const ModelConfig m = read_model_config(f);
  const int P = int(a.rows);
  StageShape shape;
  shape.train = Capacity{1, 1};
  shape.activation_sets = 0;
  shape.eval = Capacity{8 * (P + 48), P + 48};
  shape.eval_seqs = 8;
  Stage stage(ctx, m, f, plan_stage(m.n_layers, 1, 0, {}), HeadSpec{LossKind::Labels, both.task(1).label_tokens()}, shape);
  BatchBuilder builder(be, P, shape.eval.rows, 8, /*share_prompt=*/false);
  Buffer prompt = ctx.alloc_stat(Shape{P, m.d_model});
  be.copy_from_host(prompt, a.values.data());
  std::vector<const EncodedExample*> only_a;
  for (size_t i = 1; i < encoded.size(); i += 2) only_a.push_back(&encoded[i]);
  MicroBatch mb;
  builder.fill(mb, only_a);
  stage.forward(-1, mb, prompt.view());
  const HeadOutput& out = stage.head_output();
  for (size_t j = 0; j < only_a.size(); ++j)
    for (int l = 0; l < 2; ++l)
      EXPECT_NEAR(mixed[2 * j + 1].logits[size_t(l)], out.label_scores[j * 2 + size_t(l)], 1e-5)
          << "example " << 2 * j + 1 << " label " << l;
}

TEST_F(Infer, PromptsMustCarryTheirTaskAndFitTheModel) {
  auto error_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const std::string npy = test::temp_path("infer_a.npy");
  export_npy(read_stored_prompt(tasks_.a), npy, "f32");
  EXPECT_THAT(error_of([&] { parse_task_prompt("a=" + npy); }),
              AllOf(HasSubstr("a=" + npy), HasSubstr("npy"), HasSubstr("does not say its task")));
  EXPECT_THAT(error_of([&] { parse_task_prompt(tasks_.a); }), HasSubstr("NAME=PATH"));
  EXPECT_THAT(error_of([&] { parse_task_prompt("=x"); }), HasSubstr("NAME=PATH"));
  EXPECT_THAT(error_of([&] { Predictor(tasks_.model, prompts({"a", "a"}), {}); }),
              AllOf(HasSubstr("task 'a'"), HasSubstr("twice")));
  const std::string other = test::tiny_model(Family::Llama, "infer_other.h5", 2, 77, 16);
  EXPECT_THAT(error_of([&] { Predictor(other, prompts({"b"}), {}); }),
              AllOf(HasSubstr("task 'b'"), HasSubstr("another model"), HasSubstr("fingerprint")));
}

// ---- the command ----

using Result = test::CommandResult;

Result infer_cli(const std::vector<std::string>& args, const std::string& input) {
  const std::string in = test::temp_path("infer_stdin.jsonl");
  std::ofstream(in, std::ios::binary) << input;
  std::vector<std::string> all{"infer"};
  all.insert(all.end(), args.begin(), args.end());
  return test::run_sptrain(all, std::filesystem::path(in).parent_path().string(), in);
}

TEST_F(Infer, CommandPrintsOneLinePerInputLineInOrder) {
  // Task b from its hdf5 export: exports carry the task too.
  const std::string b_h5 = test::temp_path("infer_b_export.h5");
  export_hdf5(read_stored_prompt(tasks_.b), b_h5);
  const std::vector<std::string> t = texts();
  const std::vector<int> task_of = {1, 0, 1, 1, 0, 0, 1};
  std::string input;
  for (size_t i = 0; i < task_of.size(); ++i) {
    nlohmann::json j = {{"task", task_of[i] == 0 ? "sent" : "topic"}, {"text", t[i]}};
    if (i == 2) j["id"] = "third";
    input += j.dump() + (i + 1 < task_of.size() ? "\n" : "\r\n\n");  // CRLF and a trailing blank line
  }
  const Result r = infer_cli({"--model", tasks_.model, "--prompt", "sent=" + tasks_.a, "--prompt",
                              "topic=" + b_h5, "--batch-size", "3", "--threads", "1"},
                             input);
  ASSERT_EQ(r.code, 0) << r.err;

  Predictor ref(tasks_.model, prompts({"a", "b"}), PredictorOptions{1, 1});
  std::istringstream lines(r.out);
  std::string line;
  size_t i = 0;
  for (; std::getline(lines, line); ++i) {
    ASSERT_LT(i, task_of.size());
    const nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);  // keeps the key order
    const int k = task_of[i];
    const EncodedExample e = ref.encode(k, t[i]);
    const Prediction p = ref.predict({&e}, {k})[0];
    const Task& task = ref.task(k);
    EXPECT_EQ(j["task"], k == 0 ? "sent" : "topic") << line;
    EXPECT_EQ(j["label"], task.label_values()[size_t(p.label)]) << line;
    EXPECT_EQ(j.contains("id"), i == 2) << line;
    if (i == 2) {
      EXPECT_EQ(j["id"], "third");
    }
    ASSERT_EQ(j["scores"].size(), task.label_values().size()) << line;
    // Labels in the task's order, as the verbalizer lists them.
    size_t l = 0;
    for (auto it = j["scores"].begin(); it != j["scores"].end(); ++it, ++l) {
      EXPECT_EQ(it.key(), task.label_values()[l]);
      EXPECT_NEAR(it.value()["logit"].get<double>(), p.logits[l], 1e-5) << line;
      EXPECT_NEAR(it.value()["prob"].get<double>(), p.probs[l], 1e-5) << line;
    }
  }
  EXPECT_EQ(i, task_of.size());
}

TEST_F(Infer, BadInputIsAnErrorNamingTheLineAndPrintsNothing) {
  const std::vector<std::string> args = {"--model", tasks_.model, "--prompt", "sent=" + tasks_.a,
                                         "--prompt", "topic=" + tasks_.b};
  const std::string ok = R"({"task": "sent", "text": "fine"})";
  struct Case {
    std::string input;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {ok + "\n" + R"({"task": "weather", "text": "rain"})" + "\n",
            "stdin:2: unknown task 'weather' (tasks: sent, topic)"},
           {ok + "\n" + ok + "\n" + R"({"task": "sent"})" + "\n", "stdin:3: missing field \"text\""},
           {R"({"text": "no task"})" "\n", "stdin:1: missing field \"task\""},
           {ok + "\n" + R"({"task": "sent", "text": "unclosed)" + "\n", "stdin:2: invalid JSON"},
           // JSON as every reader takes it: a number beyond a double, nesting
           // beyond 64 levels (the id is copied and printed, both recursive).
           {R"({"task": "sent", "text": "x", "id": 1e400})" "\n", "stdin:1: invalid JSON"},
           {R"({"task": "sent", "text": "x", "id": )" + std::string(100, '[') + std::string(100, ']') + "}\n",
            "stdin:1: JSON nests deeper than 64 levels"},
           {ok + "\n" + "[1, 2]\n", "stdin:2: expected a JSON object"},
           {ok + "\n\n" + ok + "\n", "stdin:2: blank line"},
           {R"({"task": 3, "text": "x"})" "\n", "stdin:1: \"task\" must be a string"},
           {R"({"task": "sent", "text": ""})" "\n", "stdin:1: empty \"text\""},
       }) {
    const Result r = infer_cli(args, c.input);
    EXPECT_EQ(r.code, 1) << c.input;
    EXPECT_THAT(r.err, HasSubstr("sptrain: error: " + c.message)) << c.input;
    EXPECT_EQ(r.out, "") << c.input;
  }
  // No input: no output, no error.
  const Result empty = infer_cli(args, "");
  EXPECT_EQ(empty.code, 0) << empty.err;
  EXPECT_EQ(empty.out, "");

  // Usage.
  EXPECT_EQ(infer_cli({"--model", tasks_.model}, ok).code, 2);  // --prompt missing
  EXPECT_EQ(infer_cli({"--model", tasks_.model, "--prompt", "sent=" + tasks_.a, "--batch-size", "0"}, ok).code, 2);
  const Result help = infer_cli({"--help"}, "");
  EXPECT_THAT(help.out, AllOf(HasSubstr("--model"), HasSubstr("--prompt"), HasSubstr("--batch-size"),
                              HasSubstr("--threads"), HasSubstr("single process")));
}

}  // namespace
}  // namespace sptrain
