// `sptrain train` and `sptrain eval`: start MPI, build the process grid, run,
// and make sure a failure on any rank ends the whole job with its message.
#include <cmath>
#include <cstdio>

#include "sptrain/cli/commands.hpp"
#include "sptrain/comm/mpi_runtime.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/comm/stop_signals.hpp"
#include "sptrain/infer/ensemble.hpp"
#include "sptrain/prompt/export.hpp"
#include "sptrain/prompt/prompt_init.hpp"
#include "sptrain/train/evaluate.hpp"
#include "sptrain/train/prompt_state.hpp"
#include "sptrain/train/trainer.hpp"

namespace sptrain {

namespace {

// Runs body on every rank; an exception on any rank aborts the job (never a
// hang of the ranks waiting for it in a collective).
template <typename F>
int run_job(F&& body) {
  MpiRuntime mpi(MpiStart::WhenLaunched);
  try {
    return body();
  } catch (const std::exception& e) {
    if (mpi.world_size() > 1) abort_job(e.what());
    throw;  // one rank: main prints it
  }
}

void print_confusion(const Task& task, const EvalResult& r) {
  const int n = task.num_labels();
  std::printf("confusion (rows: true label, columns: predicted)\n%12s", "");
  for (int j = 0; j < n; ++j) std::printf(" %10s", task.label_values()[size_t(j)].c_str());
  std::printf("\n");
  for (int i = 0; i < n; ++i) {
    std::printf("%12s", task.label_values()[size_t(i)].c_str());
    for (int j = 0; j < n; ++j) std::printf(" %10lld", static_cast<long long>(r.confusion[size_t(i * n + j)]));
    std::printf("\n");
  }
}

// A prompt evaluated under another template or verbalizer than it was
// trained with is allowed (that may be the point) but worth a note.
void warn_if_task_differs(const StoredPrompt& p, const TaskSection& task) {
  if (!p.has_task) return;
  if (p.task_template != task.template_text)
    std::fprintf(stderr, "sptrain: note: %s was trained with template \"%s\"; evaluating with \"%s\"\n",
                 p.path.c_str(), p.task_template.c_str(), task.template_text.c_str());
  if (p.labels != task.labels)
    std::fprintf(stderr, "sptrain: note: %s was trained with another verbalizer (task.labels)\n",
                 p.path.c_str());
}

// Several prompts for one task (docs/methods.md, "Prompt ensembles"): each
// member evaluated in turn on the same session, then combined per example by
// the mean of the label probabilities and by majority vote.
template <typename Describe>
int run_eval_ensemble(Session& session, const std::vector<StoredPrompt>& members, const Describe& describe) {
  const Task& task = *session.task;
  SPT_CHECK(!task.generative(), "prompt ensembles combine label probabilities: a generate task takes one --prompt");
  const bool lead = session.parallel->world_rank() == 0;
  const std::vector<EncodedExample>& data = session.data.eval;
  const int L = task.num_labels();
  std::vector<std::vector<double>> probs(members.size());  // per member: [examples, L]
  std::vector<EvalResult> alone(members.size());
  std::vector<double> logits;
  for (size_t m = 0; m < members.size(); ++m) {
    check_prompt_matches_model(members[m], session.model, session.config.model.path);
    set_stored_prompt(session, members[m]);
    if (lead) warn_if_task_differs(members[m], session.config.task);
    alone[m] = evaluate(session, data, &logits);
    probs[m].resize(logits.size());
    for (size_t i = 0; i < data.size(); ++i) {
      const std::vector<double> p = label_probabilities(logits.data() + i * size_t(L), L);
      std::copy(p.begin(), p.end(), probs[m].begin() + int64_t(i * size_t(L)));
    }
  }
  if (!lead) return 0;
  EvalResult by_mean, by_vote;
  by_mean.confusion.assign(size_t(L) * size_t(L), 0);
  by_vote.confusion = by_mean.confusion;
  double nll = 0;
  int64_t right_mean = 0, right_vote = 0;
  std::vector<const double*> row(members.size());
  for (size_t i = 0; i < data.size(); ++i) {
    for (size_t m = 0; m < members.size(); ++m) row[m] = probs[m].data() + i * size_t(L);
    const EnsembleAnswer a = combine_ensemble(row, L);
    const int truth = data[i].label;
    nll -= std::log(a.mean_probs[size_t(truth)]);
    right_mean += a.by_mean == truth;
    right_vote += a.by_vote == truth;
    ++by_mean.confusion[size_t(truth * L + a.by_mean)];
    ++by_vote.confusion[size_t(truth * L + a.by_vote)];
  }
  const double n = double(data.size());
  std::printf("data: %s (%zu examples)\nprompt ensemble of %zu:\n", session.config.task.eval.c_str(),
              data.size(), members.size());
  for (size_t m = 0; m < members.size(); ++m)
    std::printf("  %s: loss %.4f, accuracy %.4f\n", describe(members[m]).c_str(), alone[m].loss,
                alone[m].accuracy);
  std::printf("ensemble, mean of label probabilities: accuracy %.4f, label NLL %.4f\n"
              "ensemble, majority vote: accuracy %.4f\n",
              right_mean / n, nll / n, right_vote / n);
  std::printf("mean of label probabilities, ");
  print_confusion(task, by_mean);
  return 0;
}

}  // namespace

int run_train(const Config& config, const TrainOptions&) {
  return run_job([&] {
    ProcessGrid grid = make_process_grid(config.parallel.tensor, config.parallel.pipeline);
    const bool lead = grid.world_rank == 0;
    const TrainSummary s = train(config, std::move(grid));
    if (lead && s.already_complete) {
      std::printf("train.run_dir %s is already complete: %s is step %lld, train.steps is %d; nothing to "
                  "train (raise train.steps to go on, or give another train.run_dir)\n",
                  config.train.run_dir.c_str(), s.resumed_from.c_str(), static_cast<long long>(s.steps_done),
                  config.train.steps);
    } else if (lead) {
      std::printf("%s %lld steps: final loss %.4f", s.stopped_by_signal ? "stopped after" : "trained",
                  static_cast<long long>(s.steps_done), s.final_loss);
      if (s.final_eval.text.count > 0) {
        std::printf(", eval loss %.4f, BLEU %.2f, ROUGE-L %.2f, exact match %.2f (%lld inputs)",
                    s.final_eval.loss, s.final_eval.text.bleu, s.final_eval.text.rouge_l,
                    s.final_eval.text.exact_match, static_cast<long long>(s.final_eval.text.count));
      } else if (s.final_eval.examples > 0) {
        std::printf(", eval loss %.4f, eval accuracy %.4f (%lld examples)", s.final_eval.loss,
                    s.final_eval.accuracy, static_cast<long long>(s.final_eval.examples));
      }
      std::printf("\nprompt checkpoints in %s\n", config.train.run_dir.c_str());
    }
    return s.stopped_by_signal ? kExitStopped : 0;
  });
}

int run_eval(const Config& config_in, const EvalOptions& options) {
  // --data replaces task.eval (so the evaluation buffers are sized for it) and
  // is evaluated whole; --prompt brings its own length.
  Config config = config_in;
  if (!options.data.empty()) {
    config.task.eval = options.data;
    config.train.eval_max_examples = 0;
  }
  SPT_CHECK(!config.task.eval.empty(), "nothing to evaluate: give --data FILE or set task.eval");
  return run_job([&] {
    std::vector<StoredPrompt> stored;
    for (const std::string& path : options.prompts) stored.push_back(read_stored_prompt(path));
    if (!stored.empty()) {
      const StoredPrompt& first = stored.front();
      // An ensemble's members share one session: one length, one kind.
      for (const StoredPrompt& p : stored)
        SPT_CHECK(p.rows == first.rows && p.deep() == first.deep(), "prompt ensemble: ", p.path, " is a ",
                  p.deep() ? "deep " : "", "prompt of ", p.rows, " vectors but ", first.path, " a ",
                  first.deep() ? "deep " : "", "prompt of ", first.rows,
                  "; an ensemble's prompts must have the same length and method");
      config.prompt.length = int(first.rows);
      // A deep prompt's file is its keys and values, whatever trained it.
      config.prompt.method = first.deep() ? "deep" : "prompt_tuning";
      config.prompt.reparameterize = "none";
    }
    Session session(config, make_process_grid(config.parallel.tensor, config.parallel.pipeline),
                    SessionMode::EvalOnly);
    const bool lead = session.parallel->world_rank() == 0;
    const auto describe = [&](const StoredPrompt& p) {
      std::string d = p.deep() ? str(p.path, " (", p.format, ", deep ", p.prefix_layers, " x ", p.rows, " x ",
                                     p.prefix_cols)
                               : str(p.path, " (", p.format, ", ", p.rows, " x ", p.cols);
      if (p.step >= 0) d += str(", step ", p.step);
      return d + ")";
    };
    if (stored.size() > 1) return run_eval_ensemble(session, stored, describe);
    if (!stored.empty()) {
      check_prompt_matches_model(stored[0], session.model, config.model.path);
      set_stored_prompt(session, stored[0]);
      if (lead) warn_if_task_differs(stored[0], config.task);
    } else {
      Rng rng(config.train.seed);
      start_prompt(session, rng);
    }
    const EvalResult r = evaluate_task(session);
    if (lead) {
      const std::string prompt = stored.empty() ? "initializer " + config.prompt.init : describe(stored[0]);
      if (session.task->generative()) {
        std::printf("data: %s (%lld inputs)\nprompt: %s\nloss: %.4f (first reference of each input)\n"
                    "BLEU: %.2f\nROUGE-L: %.2f\nexact match: %.2f\n",
                    config.task.eval.c_str(), static_cast<long long>(r.text.count), prompt.c_str(),
                    r.loss, r.text.bleu, r.text.rouge_l, r.text.exact_match);
        return 0;
      }
      std::printf("data: %s (%lld examples)\nprompt: %s\nloss: %.4f\naccuracy: %.4f\n",
                  config.task.eval.c_str(), static_cast<long long>(r.examples), prompt.c_str(),
                  r.loss, r.accuracy);
      print_confusion(*session.task, r);
    }
    return 0;
  });
}

}  // namespace sptrain
