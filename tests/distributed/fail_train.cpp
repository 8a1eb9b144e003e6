// A training job that fails on one rank, for ../comm/run_failure_test.sh:
// the same path as `sptrain train` (run_train: process grid, train(), and
// abort_job on an exception), on a grid of tensor 2 x pipeline 2 (x data).
//
//   dist_fail_train MODE DIR
//
// MODE: ok        every rank trains 3 steps and finishes
//       bad-data  the last rank's task.train names a missing file; the others
//                 start normally and then wait for it in the pipeline
//       kill      rank 1 SIGKILLs itself after 1 s of a long run, while
//                 every rank is in the middle of training steps
// Each rank writes DIR/pid.<rank> at start and DIR/done.<rank> only when it
// finishes normally.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "sptrain/cli/commands.hpp"
#include "sptrain/comm/mpi_runtime.hpp"
#include "sptrain/config/load.hpp"
#include "sptrain/model/random_model.hpp"
#include "sptrain/tokenizer/tokenizer.hpp"

int main(int argc, char** argv) {
  using namespace sptrain;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ok|bad-data|kill DIR\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2];
  // Initialises MPI first so the rank is known; run_train's own MpiRuntime
  // then finds MPI initialised and leaves it alone.
  MpiRuntime mpi(&argc, &argv);
  const int rank = mpi.world_rank(), size = mpi.world_size();
  std::ofstream(dir + "/pid." + std::to_string(rank)) << ::getpid() << "\n";

  // A tiny llama model per rank (same seed: the same weights everywhere).
  ModelConfig m;
  m.family = Family::Llama;
  m.name = "fail-llama";
  m.n_layers = 2;
  m.d_model = 16;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.head_dim = 4;
  m.d_ffn = 32;
  m.vocab_size = 256;
  m.max_positions = 128;
  m.tied_embeddings = false;
  const std::string model = dir + "/model." + std::to_string(rank) + ".h5";
  const Tokenizer tok = Tokenizer::bytes_only();
  write_random_model(model, m, 3, 0.2, [&](h5::File& f) { tok.save(f); });

  Config c;
  c.model.path = model;
  c.task.train = std::string(SPTRAIN_SOURCE_DIR) + "/data/sst2/dev.tsv";
  c.task.template_text = "Review: {text}\nSentiment:";
  c.task.labels = {{"0", "n"}, {"1", "p"}};
  c.task.max_length = 32;
  c.prompt.length = 4;
  c.optim.lr = 0.02;
  c.train.steps = mode == "kill" ? 1000000 : 3;
  c.train.batch_size = 8;
  c.train.micro_batch_size = 2;
  c.train.eval_every = 0;
  c.train.checkpoint_every = 0;
  c.train.log_every = 1000000;
  c.train.resume = "never";
  c.train.run_dir = dir + "/run." + std::to_string(rank);
  c.threads = 1;
  c.parallel.tensor = 2;
  c.parallel.pipeline = 2;
  if (mode == "bad-data" && rank == size - 1) c.task.train = dir + "/missing.tsv";
  validate_config(c);

  if (mode == "kill" && rank == 1) {
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      std::raise(SIGKILL);
    }).detach();
  }
  const int status = run_train(c, TrainOptions{});
  if (status == 0) std::ofstream(dir + "/done." + std::to_string(rank)) << "done\n";
  return status;
}
