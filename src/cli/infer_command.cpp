// `sptrain infer`: JSONL in ({"task": NAME, "text": ...} per line), JSONL out
// (the predicted label and every label's logit and probability per line, in
// input order). Every input line is checked and tokenized before the model
// runs, so a bad line stops the command before anything is printed.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

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

std::string read_all(const std::string& input) {
  std::ostringstream buf;
  if (input == "-") {
    buf << std::cin.rdbuf();
  } else {
    std::ifstream in(input, std::ios::binary);
    if (!in) fail(input, ": cannot open for reading");
    buf << in.rdbuf();
  }
  return buf.str();
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

// One request per line; blank lines are allowed only at the end.
std::vector<Request> read_requests(const Predictor& predictor, const std::string& input) {
  const std::string where = input == "-" ? "stdin" : input;
  const std::string all = read_all(input);
  std::vector<std::string> lines;
  for (size_t begin = 0; begin < all.size();) {
    size_t end = all.find('\n', begin);
    if (end == std::string::npos) end = all.size();
    lines.push_back(all.substr(begin, end - begin));
    if (!lines.back().empty() && lines.back().back() == '\r') lines.back().pop_back();
    begin = end + 1;
  }
  while (!lines.empty() && is_blank(lines.back())) lines.pop_back();

  std::vector<Request> out;
  out.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t lineno = i + 1;
    if (is_blank(lines[i])) fail(where, ":", lineno, ": blank line (only allowed at the end)");
    json j;
    try {
      j = json::parse(lines[i]);
    } catch (const json::parse_error& e) {
      fail(where, ":", lineno, ": not valid JSON: ", e.what());
    }
    if (!j.is_object()) fail(where, ":", lineno, ": expected a JSON object {\"task\": ..., \"text\": ...}");
    if (!j.contains("task")) fail(where, ":", lineno, ": missing field \"task\"");
    if (!j["task"].is_string()) fail(where, ":", lineno, ": \"task\" must be a string");
    if (!j.contains("text")) fail(where, ":", lineno, ": missing field \"text\"");
    if (!j["text"].is_string()) fail(where, ":", lineno, ": \"text\" must be a string");
    const std::string name = j["task"].get<std::string>();
    const std::string text = j["text"].get<std::string>();
    const int task = predictor.find_task(name);
    if (task < 0)
      fail(where, ":", lineno, ": unknown task '", name, "' (tasks: ", predictor.task_names(), ")");
    if (text.empty()) fail(where, ":", lineno, ": empty \"text\"");
    Request r;
    r.task = task;
    try {
      r.example = predictor.encode(task, text);
    } catch (const Error& e) {
      fail(where, ":", lineno, ": ", e.what());
    }
    if (j.contains("id")) r.id = j["id"];
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
