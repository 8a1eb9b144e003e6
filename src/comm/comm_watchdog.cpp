#include "sptrain/comm/comm_watchdog.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "sptrain/core/error.hpp"

namespace sptrain {

CommWatchdog::CommWatchdog(Hooks hooks, double poll_s) : hooks_(std::move(hooks)) {
  SPT_CHECK(hooks_.on_failure, "CommWatchdog: on_failure is required");
  if (poll_s > 0) thread_ = std::thread([this, poll_s] { run(poll_s); });
}

CommWatchdog::~CommWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  drop_all();
}

double CommWatchdog::now() const {
  if (hooks_.now) return hooks_.now();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string CommWatchdog::late_message(const std::string& who, const std::string& what,
                                       double timeout_s) {
  return str(who, ": ", what, " did not finish within ", timeout_s,
             " s (a rank died or the ranks issued different operations; parallel.timeout_s)");
}

void CommWatchdog::watch(Op op) {
  const double deadline = now() + op.timeout_s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back(Pending{std::move(op), deadline});
  }
  wake_.notify_all();
}

size_t CommWatchdog::poll() {
  std::string failure;
  size_t left = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (failed_) return pending_.size();
    // Retire what has finished. One stream runs its operations in order, so
    // stop at the first one still running (what follows it is too).
    while (!pending_.empty()) {
      Pending& p = pending_.front();
      bool done = false;
      try {
        done = p.op.finished();
      } catch (const std::exception& e) {
        failure = str(hooks_.who, ": ", p.op.what, ": ", e.what());
        break;
      }
      if (!done) break;
      if (p.op.release) p.op.release();
      pending_.pop_front();
    }
    if (failure.empty() && !pending_.empty() && hooks_.comm_error) {
      const std::string error = hooks_.comm_error();
      if (!error.empty())
        failure = str(hooks_.who, ": ", error, " while ", pending_.front().op.what, " was pending");
    }
    if (failure.empty()) {
      const double t = now();
      for (const Pending& p : pending_)
        if (t > p.deadline_s) {
          failure = late_message(hooks_.who, p.op.what, p.op.timeout_s);
          break;
        }
    }
    if (!failure.empty()) failed_ = true;
    left = pending_.size();
  }
  if (!failure.empty()) fail(failure);
  return left;
}

void CommWatchdog::fail(const std::string& message) { hooks_.on_failure(message); }

void CommWatchdog::drop_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Pending& p : pending_)
    if (p.op.release) p.op.release();
  pending_.clear();
}

size_t CommWatchdog::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.size();
}

bool CommWatchdog::failed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failed_;
}

void CommWatchdog::run(double poll_s) {
  const auto interval = std::chrono::duration<double>(poll_s);
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    // Sleep until there is something to watch (or we are told to stop), then
    // check every interval while there is.
    wake_.wait(lock, [&] { return stop_ || (!pending_.empty() && !failed_); });
    if (stop_) return;
    wake_.wait_for(lock, interval, [&] { return stop_; });
    if (stop_) return;
    lock.unlock();
    poll();
    lock.lock();
  }
}

void end_process_after_comm_failure(const std::string& line, const std::function<void()>& abort_comm) {
  std::fflush(stdout);
  std::fputs((line + "\n").c_str(), stderr);
  std::fflush(stderr);
  try {
    if (abort_comm) abort_comm();
  } catch (...) {  // ending anyway
  }
  std::_Exit(1);
}

}  // namespace sptrain
