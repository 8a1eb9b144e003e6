#pragma once
// Every MPI wait of a job's groups and control messages, with a deadline.
//
// MPI is initialised FUNNELED: only the main thread may call it, so the
// watchdog is not a thread. The groups post non-blocking operations
// (MPI_Iallreduce, MPI_Isend, ...) and complete them here, in a loop that
// tests them, backs off (yields the core, then sleeps: no spinning core while
// a peer is late) and meanwhile:
//   - answers the other ranks' "are you there?" on a communicator of its own;
//   - after timeout_s (parallel.timeout_s) asks every rank the same and ends
//     the job with abort_job, naming the ranks that did not answer (stopped,
//     stuck or dead), or saying that all answered (the ranks wait for each
//     other: their collectives disagree);
//   - after a SIGTERM (stop_signals.hpp), ends the job when the wait outlasts
//     the stop deadline: a stop request must not wait for a peer that will
//     never come.
// docs/parallelism.md ("Failures") describes it.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sptrain {

// What a rank waits for; turned into words only when the wait fails.
struct WaitFor {
  const char* call = "";   // e.g. "MPI_Allreduce"
  const char* group = "";  // "tensor", "pipeline", "data" or "control"
  uint64_t bytes = 0;
  int peer = -1;           // point-to-point: the peer's rank in the group
};
std::string describe(const WaitFor& what);

class MpiWatchdog {
 public:
  // Collective over MPI_COMM_WORLD: duplicates it for the watchdog's messages.
  explicit MpiWatchdog(double timeout_s = 300.0);
  ~MpiWatchdog();
  MpiWatchdog(const MpiWatchdog&) = delete;
  MpiWatchdog& operator=(const MpiWatchdog&) = delete;

  void set_timeout(double seconds);
  double timeout() const { return timeout_s_; }

  // Completes the n requests; returns MPI_Testall's status (MPI_SUCCESS, or
  // the error of a communicator that returns errors). Never returns when the
  // wait fails (see above).
  int wait(MPI_Request* requests, int n, const WaitFor& what);
  // Waits until a message from `peer` on `comm` can be received and gives its
  // envelope (MPI_Probe with the same deadline); returns MPI_Iprobe's status.
  int wait_probe(int peer, MPI_Comm comm, MPI_Status* status, const WaitFor& what);

 private:
  template <typename Done>
  int wait_until(Done done, const WaitFor& what);
  // Receives the questions of other ranks and answers them.
  void answer_questions();
  [[noreturn]] void on_timeout(double waited, const WaitFor& what);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  double timeout_s_;
  int token_ = 0;                      // the (empty) payload of questions and answers
  std::vector<MPI_Request> answers_;   // answers still being sent
};

}  // namespace sptrain
