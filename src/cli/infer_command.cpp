// `sptrain infer`: JSONL in ({"task": NAME, "text": ...} per line), JSONL out
// (the predicted label and every label's logit and probability per line, in
// input order). Every input line is checked and tokenized before the model
// runs, so a bad line stops the command before anything is printed.
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "json_requests.hpp"
#include "sptrain/cli/commands.hpp"
#include "sptrain/infer/predictor.hpp"
#include "sptrain/io/file.hpp"

namespace sptrain {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

struct Request {
  int task = 0;
  EncodedExample example;
  json id;  // the input's "id", echoed when present
};

// One request per line; every line checked and tokenized before the model runs.
std::vector<Request> read_requests(const Predictor& predictor, const std::string& input) {
  std::string where;
  std::vector<Request> out;
  for (const JsonRequest& j : read_json_requests(input, "text", where)) {
    const int task = predictor.find_task(j.task);
    if (task < 0)
      fail(where, ":", j.line, ": unknown task '", j.task, "' (tasks: ", predictor.task_names(), ")");
    if (j.text.empty()) fail(where, ":", j.line, ": empty \"text\"");
    Request r;
    r.task = task;
    try {
      r.example = predictor.encode(task, j.text);
    } catch (const Error& e) {
      fail(where, ":", j.line, ": ", e.what());
    }
    r.id = j.id;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

int run_infer(const InferOptions& o) {
  // Every rank would answer every line: refuse rather than print it N times.
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    const char* n = std::getenv(var);
    SPT_CHECK(!n || std::string(n) == "1", "infer runs in one process (", var, "=", n ? n : "",
              "): start it without mpirun or srun");
  }
  std::vector<TaskPrompt> tasks;
  for (const std::string& arg : o.prompts) tasks.push_back(parse_task_prompt(arg));
  Predictor predictor(o.model, std::move(tasks), PredictorOptions{o.batch_size, o.threads});
  const std::vector<Request> requests = read_requests(predictor, o.input);

  std::vector<const EncodedExample*> batch;
  std::vector<int> task_of;
  for (size_t begin = 0; begin < requests.size(); begin += size_t(o.batch_size)) {
    const size_t end = std::min(requests.size(), begin + size_t(o.batch_size));
    batch.clear();
    task_of.clear();
    for (size_t i = begin; i < end; ++i) {
      batch.push_back(&requests[i].example);
      task_of.push_back(requests[i].task);
    }
    const std::vector<Prediction> preds = predictor.predict(batch, task_of);
    for (size_t i = begin; i < end; ++i) {
      const Prediction& p = preds[i - begin];
      const Task& task = predictor.task(p.task);
      ordered_json line;
      if (!requests[i].id.is_null()) line["id"] = requests[i].id;
      line["task"] = predictor.task_name(p.task);
      line["label"] = task.label_values()[size_t(p.label)];
      ordered_json scores = ordered_json::object();
      for (size_t l = 0; l < p.logits.size(); ++l)
        scores[task.label_values()[l]] = {{"logit", p.logits[l]}, {"prob", p.probs[l]}};
      line["scores"] = std::move(scores);
      std::fputs((line.dump() + "\n").c_str(), stdout);
    }
    flush_checked(stdout, "standard output");  // fail at the first batch that is lost
  }
  return 0;
}

}  // namespace sptrain
