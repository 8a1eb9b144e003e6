// `sptrain infer`: JSONL in ({"task": NAME, "text": ...} per line), JSONL out
// (the predicted label and every label's logit and probability per line, in
// input order). Every input line is checked and tokenized before the model
// runs, so a bad line stops the command before anything is printed. A task
// given several --prompt files is a prompt ensemble: each member scores the
// line in the same forward pass, and the line reports their combination.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "json_requests.hpp"
#include "sptrain/cli/commands.hpp"
#include "sptrain/infer/ensemble.hpp"
#include "sptrain/infer/predictor.hpp"
#include "sptrain/io/file.hpp"

namespace sptrain {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// A task of the command line: its prompts (the predictor's tasks), one or an ensemble.
struct TaskGroup {
  std::string name;
  std::vector<int> members;  // predictor task indices
};

// Groups the --prompt NAME=PATH arguments by NAME (in first-seen order); the
// members of an ensemble get distinct names for the predictor (NAME#1, ...)
// and must describe one task: template, verbalizer and max_length.
std::vector<TaskGroup> group_prompts(const std::vector<std::string>& args, std::vector<TaskPrompt>& tasks) {
  std::vector<TaskGroup> groups;
  for (const std::string& arg : args) {
    TaskPrompt t = parse_task_prompt(arg);
    auto g = std::find_if(groups.begin(), groups.end(), [&](const TaskGroup& x) { return x.name == t.name; });
    if (g == groups.end()) g = groups.insert(groups.end(), TaskGroup{t.name, {}});
    g->members.push_back(int(tasks.size()));
    tasks.push_back(std::move(t));
  }
  for (const TaskGroup& g : groups) {
    if (g.members.size() < 2) continue;
    const StoredPrompt& first = tasks[size_t(g.members[0])].prompt;
    for (size_t m = 0; m < g.members.size(); ++m) {
      TaskPrompt& t = tasks[size_t(g.members[m])];
      const StoredPrompt& p = t.prompt;
      SPT_CHECK(p.task_template == first.task_template && p.labels == first.labels &&
                    p.task_max_length == first.task_max_length,
                "task '", g.name, "': the ensemble's prompts ", first.path, " and ", p.path,
                " were trained for different tasks (template, verbalizer or max_length differ)");
      t.name = str(g.name, "#", m + 1);
    }
  }
  return groups;
}

struct Request {
  int group = 0;
  EncodedExample example;
  json id;  // the input's "id", echoed when present
};

// One request per line; every line checked and tokenized before the model runs.
std::vector<Request> read_requests(const Predictor& predictor, const std::vector<TaskGroup>& groups,
                                   const std::string& input) {
  std::string where, names;
  for (const TaskGroup& g : groups) names += (names.empty() ? "" : ", ") + g.name;
  std::vector<Request> out;
  for (const JsonRequest& j : read_json_requests(input, "text", where)) {
    const auto g = std::find_if(groups.begin(), groups.end(), [&](const TaskGroup& x) { return x.name == j.task; });
    if (g == groups.end()) fail(where, ":", j.line, ": unknown task '", j.task, "' (tasks: ", names, ")");
    if (j.text.empty()) fail(where, ":", j.line, ": empty \"text\"");
    Request r;
    r.group = int(g - groups.begin());
    try {
      r.example = predictor.encode(g->members.front(), j.text);  // the members share the template
    } catch (const Error& e) {
      fail(where, ":", j.line, ": ", e.what());
    }
    r.id = j.id;
    out.push_back(std::move(r));
  }
  return out;
}

// One output line: a single prompt's logits and probabilities, or an
// ensemble's mean probability and votes per label, its two answers and each
// member's label.
ordered_json answer_line(const Predictor& predictor, const TaskGroup& group, const Request& request,
                         const Prediction* members) {
  const Task& task = predictor.task(group.members.front());
  const std::vector<std::string>& labels = task.label_values();
  ordered_json line;
  if (!request.id.is_null()) line["id"] = request.id;
  line["task"] = group.name;
  ordered_json scores = ordered_json::object();
  if (group.members.size() == 1) {
    const Prediction& p = members[0];
    line["label"] = labels[size_t(p.label)];
    for (size_t l = 0; l < p.logits.size(); ++l) scores[labels[l]] = {{"logit", p.logits[l]}, {"prob", p.probs[l]}};
    line["scores"] = std::move(scores);
    return line;
  }
  std::vector<const double*> probs;
  ordered_json each = ordered_json::array();
  for (size_t m = 0; m < group.members.size(); ++m) {
    probs.push_back(members[m].probs.data());
    each.push_back(labels[size_t(members[m].label)]);
  }
  const EnsembleAnswer a = combine_ensemble(probs, int(labels.size()));
  line["label"] = labels[size_t(a.by_mean)];
  line["vote"] = labels[size_t(a.by_vote)];
  for (size_t l = 0; l < labels.size(); ++l) scores[labels[l]] = {{"prob", a.mean_probs[l]}, {"votes", a.votes[l]}};
  line["scores"] = std::move(scores);
  line["members"] = std::move(each);
  return line;
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
  const std::vector<TaskGroup> groups = group_prompts(o.prompts, tasks);
  for (const TaskGroup& g : groups)
    SPT_CHECK(int(g.members.size()) <= o.batch_size, "task '", g.name, "': an ensemble of ", g.members.size(),
              " prompts needs --batch-size ", g.members.size(), " or more (each member is one sequence of "
              "the batch), is ", o.batch_size);
  Predictor predictor(o.model, std::move(tasks), PredictorOptions{o.batch_size, o.threads});
  const std::vector<Request> requests = read_requests(predictor, groups, o.input);

  // Each request is one sequence per member; a batch takes whole requests.
  std::vector<const EncodedExample*> batch;
  std::vector<int> task_of;
  for (size_t begin = 0, end = 0; begin < requests.size(); begin = end) {
    batch.clear();
    task_of.clear();
    for (end = begin; end < requests.size(); ++end) {
      const TaskGroup& g = groups[size_t(requests[end].group)];
      if (batch.size() + g.members.size() > size_t(o.batch_size)) break;
      for (int member : g.members) {
        batch.push_back(&requests[end].example);
        task_of.push_back(member);
      }
    }
    const std::vector<Prediction> preds = predictor.predict(batch, task_of);
    const Prediction* next = preds.data();
    for (size_t i = begin; i < end; ++i) {
      const TaskGroup& g = groups[size_t(requests[i].group)];
      std::fputs((answer_line(predictor, g, requests[i], next).dump() + "\n").c_str(), stdout);
      next += g.members.size();
    }
    flush_checked(stdout, "standard output");  // fail at the first batch that is lost
  }
  return 0;
}

}  // namespace sptrain
