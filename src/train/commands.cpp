// `sptrain train` and `sptrain eval`: start MPI, build the process grid, run,
// and make sure a failure on any rank ends the whole job with its message.
#include <csignal>
#include <cstdio>

#include "sptrain/cli/commands.hpp"
#include "sptrain/comm/mpi_runtime.hpp"
#include "sptrain/comm/process_grid.hpp"
#include "sptrain/prompt/prompt_init.hpp"
#include "sptrain/train/trainer.hpp"

namespace sptrain {

namespace {

extern "C" void on_stop_signal(int) { request_stop(); }

// Runs body on every rank; an exception on any rank aborts the job (never a
// hang of the ranks waiting for it in a collective).
template <typename F>
int run_job(F&& body) {
  MpiRuntime mpi;
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

}  // namespace

int run_train(const Config& config, const TrainOptions&) {
  return run_job([&] {
    ProcessGrid grid = make_process_grid(config.parallel.tensor, config.parallel.pipeline);
    std::signal(SIGUSR1, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    const TrainSummary s = train(config, grid);
    if (grid.world_rank == 0) {
      std::printf("trained %lld steps: final loss %.4f", static_cast<long long>(s.steps_done),
                  s.final_loss);
      if (s.final_eval.examples > 0)
        std::printf(", eval loss %.4f, eval accuracy %.4f (%lld examples)", s.final_eval.loss,
                    s.final_eval.accuracy, static_cast<long long>(s.final_eval.examples));
      std::printf("\nprompt checkpoints in %s\n", config.train.run_dir.c_str());
    }
    return 0;
  });
}

int run_eval(const Config& config, const EvalOptions& options) {
  return run_job([&] {
    ProcessGrid grid = make_process_grid(config.parallel.tensor, config.parallel.pipeline);
    Session session(config, grid, /*eval_only=*/true);
    if (!options.prompt.empty()) {
      session.prompt() = load_prompt_file(options.prompt, config.prompt.length, session.model());
    } else {
      Rng rng(config.train.seed);
      session.prompt() = init_prompt(config.prompt, session.model(), session.model_file(),
                                     session.tokenizer(), session.task(), rng);
    }
    const std::string data_path = options.data.empty() ? config.task.eval : options.data;
    SPT_CHECK(!data_path.empty(), "nothing to evaluate: give --data FILE or set task.eval");
    const std::vector<EncodedExample> data =
        options.data.empty() ? session.eval_data() : session.encode_file(options.data);
    const EvalResult r = session.evaluate(data);
    if (grid.world_rank == 0) {
      std::printf("data: %s (%lld examples)\nprompt: %s\nloss: %.4f\naccuracy: %.4f\n",
                  data_path.c_str(), static_cast<long long>(r.examples),
                  options.prompt.empty() ? ("initializer " + config.prompt.init).c_str()
                                         : options.prompt.c_str(),
                  r.loss, r.accuracy);
      print_confusion(session.task(), r);
    }
    return 0;
  });
}

}  // namespace sptrain
