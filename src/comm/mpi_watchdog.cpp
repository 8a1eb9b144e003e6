#include "sptrain/comm/mpi_watchdog.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "sptrain/comm/mpi_runtime.hpp"
#include "sptrain/comm/stop_signals.hpp"
#include "sptrain/core/error.hpp"

namespace sptrain {
namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Tags on the watchdog's own communicator.
constexpr int kQuestion = 1;  // "are you there?"
constexpr int kAnswer = 2;    // "yes"

// The pause between two tests of a request that has not completed. For the
// first 0.1 s of a wait, yield the core (a peer sharing it may be the one we
// wait for; Open MPI's own blocking calls do the same with
// mpi_yield_when_idle). After that, sleep 2 ms at a time, each sleep followed
// by 0.1 ms of tests so that a collective of several rounds keeps moving once
// its peers have arrived: a rank held up by a late or stopped peer costs a
// few percent of a core, and a wait that long is slowed by a few percent at most.
class Backoff {
 public:
  void pause(double waited) {
    if (waited < 0.1 || Clock::now() < burst_end_) {
      sched_yield();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    burst_end_ = Clock::now() + std::chrono::microseconds(100);
  }

 private:
  Clock::time_point burst_end_{};
};

// Seconds for messages: "12.3".
std::string secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", s);
  return buf;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

}  // namespace

std::string describe(const WaitFor& w) {
  const std::string bytes = str(" (", w.bytes, " bytes)");
  if (w.peer >= 0) return str(w.call, " with rank ", w.peer, " of the ", w.group, " group", bytes);
  return str("the ", w.group, " group's ", w.call, bytes);
}

MpiWatchdog::MpiWatchdog(double timeout_s) : timeout_s_(timeout_s) {
  set_timeout(timeout_s);
  install_continue_handler();
  if (MPI_Comm_dup(MPI_COMM_WORLD, &comm_) != MPI_SUCCESS) fail("MpiWatchdog: MPI_Comm_dup failed");
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiWatchdog::~MpiWatchdog() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (finalised) return;
  for (MPI_Request& r : answers_)
    if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
  MPI_Comm_free(&comm_);
}

void MpiWatchdog::set_timeout(double seconds) {
  SPT_CHECK(seconds > 0, "parallel.timeout_s must be positive (got ", seconds, ")");
  timeout_s_ = seconds;
}

int MpiWatchdog::wait(MPI_Request* requests, int n, const WaitFor& what) {
  return wait_until(
      [&](int& rc) {
        int flag = 0;
        rc = MPI_Testall(n, requests, &flag, MPI_STATUSES_IGNORE);
        return rc != MPI_SUCCESS || flag;
      },
      what);
}

int MpiWatchdog::wait_probe(int peer, MPI_Comm comm, MPI_Status* status, const WaitFor& what) {
  return wait_until(
      [&](int& rc) {
        int flag = 0;
        rc = MPI_Iprobe(peer, MPI_ANY_TAG, comm, &flag, status);
        return rc != MPI_SUCCESS || flag;
      },
      what);
}

template <typename Done>
int MpiWatchdog::wait_until(Done done, const WaitFor& what) {
  int rc = MPI_SUCCESS;
  if (done(rc)) return rc;  // the common case: no clock, no questions
  const Clock::time_point start = Clock::now();
  Backoff backoff;
  for (;;) {
    if (done(rc)) return rc;
    const double waited = seconds(Clock::now() - start);
    answer_questions();
    if (waited > timeout_s_) {
      const double continued = seconds_since_continued();
      if (continued >= 0 && continued < waited)
        abort_job(str("this rank was stopped (SIGSTOP) while it waited in ", describe(what),
                      " and has just been continued; the other ranks will have ended the job"));
      on_timeout(waited, what);
    }
    const double since_stop = seconds_since_stop_signal();
    if (since_stop >= 0 && std::min(since_stop, waited) > stop_deadline())
      abort_job(str("a SIGTERM asked to stop ", secs(since_stop), " s ago, and this rank still waits in ",
                    describe(what), " after ", secs(waited), " s (parallel.stop_timeout_s ", stop_deadline(),
                    "): ending now, without a checkpoint"));
    backoff.pause(waited);
  }
}

void MpiWatchdog::answer_questions() {
  if (!answers_.empty()) {
    int sent = 0;
    MPI_Testall(int(answers_.size()), answers_.data(), &sent, MPI_STATUSES_IGNORE);
    if (sent) answers_.clear();
  }
  for (;;) {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kQuestion, comm_, &flag, &status);
    if (!flag) return;
    int question = 0;
    MPI_Recv(&question, 1, MPI_INT, status.MPI_SOURCE, kQuestion, comm_, MPI_STATUS_IGNORE);
    // Stopped a moment ago (the question may have waited all that time):
    // this rank was not there, and must not say it is.
    const double continued = seconds_since_continued();
    if (continued >= 0 && continued < timeout_s_) continue;
    answers_.push_back(MPI_REQUEST_NULL);
    MPI_Isend(&token_, 1, MPI_INT, status.MPI_SOURCE, kAnswer, comm_, &answers_.back());
  }
}

void MpiWatchdog::on_timeout(double waited, const WaitFor& what) {
  // Ask everyone; a rank that waits too (in any group) answers at once, a
  // busy one when it next communicates, a stopped or dead one never.
  std::vector<MPI_Request> questions;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    questions.push_back(MPI_REQUEST_NULL);
    MPI_Isend(&token_, 1, MPI_INT, r, kQuestion, comm_, &questions.back());
  }
  std::vector<bool> answered(size_t(size_), false);
  answered[size_t(rank_)] = true;
  int left = size_ - 1;
  const double window = std::clamp(timeout_s_ / 10, 1.0, 10.0);
  const Clock::time_point until =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(window));
  while (left > 0 && Clock::now() < until) {
    answer_questions();
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kAnswer, comm_, &flag, &status);
    if (!flag) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    int answer = 0;
    MPI_Recv(&answer, 1, MPI_INT, status.MPI_SOURCE, kAnswer, comm_, MPI_STATUS_IGNORE);
    if (!answered[size_t(status.MPI_SOURCE)]) {
      answered[size_t(status.MPI_SOURCE)] = true;
      --left;
    }
  }
  std::vector<int> silent;
  for (int r = 0; r < size_; ++r)
    if (!answered[size_t(r)]) silent.push_back(r);
  const std::string late = str(describe(what), " has not completed after ", secs(waited), " s (parallel.timeout_s ",
                               timeout_s_, "): ");
  if (silent.empty())
    abort_job(late + "every rank answers, so none is stopped or dead: the ranks wait for each other (their "
                     "collectives or messages disagree), or one computes for longer than the timeout");
  abort_job(late + str(silent.size() == 1 ? "world rank " : "world ranks ", rank_list(silent),
                       silent.size() == 1 ? " does" : " do", " not respond (stopped, stuck or dead; the other ranks "
                       "answered within ", secs(window), " s)"));
}

}  // namespace sptrain
