#pragma once
// How `sptrain train` is asked to stop, and how long it may take
// (docs/parallelism.md, "Stopping"):
//
//   SIGUSR1, or a first SIGTERM while training: write a checkpoint at the end
//     of the current step (every rank agrees on the step), then exit with
//     kExitStopped: "stopped early, checkpoint written, resumable";
//   SIGTERM during start-up (loading, before the first step): end now, there
//     is nothing new to save;
//   a second SIGTERM: end now;
//   a first SIGTERM while this rank is blocked in communication: if the wait
//     outlasts the stop deadline after the signal (a peer that died or
//     stopped will never arrive), MpiWatchdog ends the process now.
//
// "End now" prints one line and dies of SIGTERM (status 143). The handlers
// are async-signal-safe: they only set atomics, write(2) and re-raise.
#include <cstdint>

namespace sptrain {

// The exit status of a run stopped by USR1 or SIGTERM after writing the
// checkpoint of the step it stopped at (EX_TEMPFAIL: "try again later").
// cluster/sptrain_job.sh requeues on it.
inline constexpr int kExitStopped = 75;

// Installs the SIGUSR1 and SIGTERM handlers; call before any slow start-up
// work (MPI, loading). Starts in the start-up phase.
void install_stop_handlers();

// The training loop starts (SIGTERM now asks for a checkpoint) or has ended
// (start-up rules again, for a later run in the same process).
void set_training_phase(bool training);

// Some signal asked this process to stop (or request_stop was called).
bool stop_requested();
// What the handlers do on SIGUSR1 (tests, and callers that stop a run).
void request_stop();
// Forgets every request (tests that train several times in one process).
void clear_stop_request();

// Seconds since the first SIGTERM that asked to stop while training; < 0
// when none came.
double seconds_since_stop_signal();

// Records when this process was last continued after a stop (SIGSTOP,
// SIGTSTP): a SIGCONT handler (idempotent; MpiWatchdog installs it). A rank
// that was stopped must not tell the others it is alive when it wakes up
// (Open MPI sends SIGCONT before it kills an aborted job's ranks).
void install_continue_handler();
// Seconds since the last SIGCONT; < 0 when none came.
double seconds_since_continued();

// After a SIGTERM, a rank blocked in communication this long ends now
// (parallel.stop_timeout_s; default 10 s).
void set_stop_deadline(double seconds);
double stop_deadline();

}  // namespace sptrain
