#pragma once
// Watches communication that was enqueued on a device stream and not waited
// for (NcclGroup's collectives, sends and receives): every operation has a
// deadline, and one that has not finished by then, or an error the
// communicator reports, is a failure: the group's on_failure hook runs once
// (NcclGroup's ends the process with a message naming the rank, the group and
// the operation), never a silent hang.
//
// Plain C++, no CUDA or NCCL: the group hands in how to ask ("has this
// operation finished?", "any communicator error?") and what to do as
// functions, so the bookkeeping is tested on any machine
// (tests/comm_watchdog) and the NCCL glue is in src/comm/nccl.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace sptrain {

class CommWatchdog {
 public:
  struct Hooks {
    std::string who;  // names the rank and group, e.g. "rank 3 of 8 in the tensor group, device 1"
    // The communicator's asynchronous error, "" if none (may be empty: not asked).
    std::function<std::string()> comm_error;
    // Called once, on the first failure, with the message. NcclGroup's prints
    // it, aborts the communicator and ends the process; a test's may return,
    // and the watchdog then stops watching.
    std::function<void(const std::string& message)> on_failure;
    std::function<double()> now;  // seconds; empty: std::chrono::steady_clock
  };

  // One enqueued operation.
  struct Op {
    std::string what;  // e.g. "ncclAllReduce (4096 bytes)"
    double timeout_s = 0;
    // Whether it has finished, e.g. its CUDA event has completed. Throws an
    // Error when it cannot tell (a device fault): that is a failure too.
    std::function<bool()> finished;
    // Called once when it is retired (finished, or dropped): recycles its
    // event. May be empty.
    std::function<void()> release;
  };

  // poll_s > 0: a thread checks the pending operations every poll_s seconds
  // while there are any (and sleeps otherwise); 0: no thread, the owner
  // calls poll() (tests).
  CommWatchdog(Hooks hooks, double poll_s);
  ~CommWatchdog();  // stops the thread; releases what is still pending
  CommWatchdog(const CommWatchdog&) = delete;
  CommWatchdog& operator=(const CommWatchdog&) = delete;

  // Starts watching `op`; its deadline is now + op.timeout_s.
  void watch(Op op);
  // One round: retires the finished operations, then fails on a
  // communicator error or the first operation past its deadline. Returns how
  // many are still pending. Does nothing once failed.
  size_t poll();
  // Retires every pending operation without asking (the communicator was
  // aborted: nothing more will finish).
  void drop_all();
  size_t pending() const;
  bool failed() const;

  // The message of a late operation (also what a test expects).
  static std::string late_message(const std::string& who, const std::string& what, double timeout_s);

 private:
  struct Pending {
    Op op;
    double deadline_s;
  };
  void run(double poll_s);
  void fail(const std::string& message);  // with mutex_ not held
  double now() const;

  Hooks hooks_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> pending_;
  bool failed_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: started after everything above exists
};

// What NcclGroup's on_failure does: writes `line` and a newline to stderr,
// runs abort_comm (its exceptions ignored), then ends the process with
// status 1 (std::_Exit: no destructors, which could wait on the hung
// device). Not MPI_Abort: this runs on the watchdog's thread and MPI is
// initialised FUNNELED (main thread only); mpirun ends the other ranks when
// one exits non-zero without finalising (docs/parallelism.md).
[[noreturn]] void end_process_after_comm_failure(const std::string& line,
                                                 const std::function<void()>& abort_comm);

}  // namespace sptrain
