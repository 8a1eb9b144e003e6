#include "sptrain/comm/stop_signals.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace sptrain {
namespace {

std::atomic<bool> g_training{false};
std::atomic<bool> g_stop{false};
std::atomic<int> g_terms{0};
std::atomic<int64_t> g_term_ns{-1};  // CLOCK_MONOTONIC of the SIGTERM that asked to stop
std::atomic<int64_t> g_continued_ns{-1};  // CLOCK_MONOTONIC of the last SIGCONT
std::atomic<double> g_deadline_s{10.0};
// "sptrain: rank R: " (or "sptrain: "), made before the handlers exist.
char g_prefix[64] = "sptrain: ";

int64_t monotonic_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);  // async-signal-safe
  return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

void write_stderr(const char* text) {
  size_t left = std::strlen(text);
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, text, left);
    if (n <= 0) return;
    text += n;
    left -= size_t(n);
  }
}

// Prints why and dies of SIGTERM, as if no handler had been installed.
[[noreturn]] void end_now(const char* why) {
  write_stderr(g_prefix);
  write_stderr(why);
  signal(SIGTERM, SIG_DFL);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &term, nullptr);
  raise(SIGTERM);
  _exit(128 + SIGTERM);
}

extern "C" void on_stop_signal(int sig) {
  const int saved_errno = errno;
  if (sig == SIGTERM) {
    if (g_terms.fetch_add(1) > 0) end_now("a second SIGTERM: ending now, without a checkpoint\n");
    if (!g_training.load())
      end_now("SIGTERM before training started: ending now (nothing new to checkpoint)\n");
    g_term_ns.store(monotonic_ns());
  }
  g_stop.store(true);
  errno = saved_errno;
}

extern "C" void on_continue(int) { g_continued_ns.store(monotonic_ns()); }

// This process's rank as the launcher set it, for messages written before
// MPI starts (or from a signal handler); -1 when not launched as a rank.
int launcher_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const char* v = std::getenv(name);
    if (v && *v) return std::atoi(v);
  }
  return -1;
}

}  // namespace

void install_stop_handlers() {
  const int rank = launcher_rank();
  if (rank >= 0) std::snprintf(g_prefix, sizeof g_prefix, "sptrain: rank %d: ", rank);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes go on after a stop request
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void set_training_phase(bool training) { g_training.store(training); }

bool stop_requested() { return g_stop.load(); }

void request_stop() { g_stop.store(true); }

void clear_stop_request() {
  g_stop.store(false);
  g_terms.store(0);
  g_term_ns.store(-1);
}

double seconds_since_stop_signal() {
  const int64_t t = g_term_ns.load();
  return t < 0 ? -1.0 : double(monotonic_ns() - t) * 1e-9;
}

void install_continue_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_continue;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGCONT, &sa, nullptr);
}

double seconds_since_continued() {
  const int64_t t = g_continued_ns.load();
  return t < 0 ? -1.0 : double(monotonic_ns() - t) * 1e-9;
}

void set_stop_deadline(double seconds) { g_deadline_s.store(seconds); }

double stop_deadline() { return g_deadline_s.load(); }

}  // namespace sptrain
