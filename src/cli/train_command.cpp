// `sptrain train` and `sptrain eval`: start MPI, build the process grid, run,
// and make sure a failure on any rank ends the whole job with its message.
#include <cstdio>
#include <optional>

#include "sptrain/cli/commands.hpp"
#include "sptrain/comm/mpi_runtime.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/comm/stop_signals.hpp"
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
    std::optional<StoredPrompt> stored;
    if (!options.prompt.empty()) {
      stored = read_stored_prompt(options.prompt);
      config.prompt.length = int(stored->rows);
      // A deep prompt's file is its keys and values, whatever trained it.
      config.prompt.method = stored->deep() ? "deep" : "prompt_tuning";
      config.prompt.reparameterize = "none";
    }
    Session session(config, make_process_grid(config.parallel.tensor, config.parallel.pipeline),
                    SessionMode::EvalOnly);
    const bool lead = session.parallel->world_rank() == 0;
    if (stored) {
      check_prompt_matches_model(*stored, session.model, config.model.path);
      set_stored_prompt(session, *stored);
      if (lead) warn_if_task_differs(*stored, config.task);
    } else {
      Rng rng(config.train.seed);
      start_prompt(session, rng);
    }
    const EvalResult r = evaluate_task(session);
    if (lead) {
      std::string prompt = "initializer " + config.prompt.init;
      if (stored) {
        prompt = str(options.prompt, " (", stored->format, ", ", stored->rows, " x ", stored->cols);
        if (stored->step >= 0) prompt += str(", step ", stored->step);
        prompt += ")";
      }
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
