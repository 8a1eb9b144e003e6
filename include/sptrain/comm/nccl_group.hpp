#pragma once
// Group over NCCL, for device (CUDA) tensors. Declared only when the CUDA back
// end is built (SPTRAIN_WITH_CUDA); the file is empty otherwise.
#ifdef SPTRAIN_WITH_CUDA

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

#include "sptrain/comm/comm_watchdog.hpp"
#include "sptrain/comm/communicator.hpp"
#include "sptrain/comm/process_grid.hpp"

namespace sptrain {

struct NcclOptions {
  // A collective, send or receive that has not finished this long after it
  // was enqueued is taken as hung (a rank died, or the ranks called different
  // operations): the watchdog aborts the communicator and ends the process.
  // The trainer sets it from parallel.timeout_s.
  double timeout_s = 300.0;
  // For tests only: called instead of ending the process, with the line that
  // would be printed, after the communicator was aborted.
  std::function<void(const std::string& line)> on_watchdog_failure;
};

// Every operation is enqueued on the group's own communication stream, after
// the work already queued on the compute stream (an event orders them), and
// the compute stream waits for it in turn (another event); then the call
// returns, without waiting for the operation. So, in stream order, a sent
// tensor may be overwritten and a received one read by anything queued on
// the compute stream after the call; the host sees results only after a
// synchronising call (copy_to_host, synchronize) on the compute stream.
// barrier() is the exception: it returns when every rank has joined.
//
// A watchdog thread (CommWatchdog) tracks every enqueued operation through
// its event: one that has not finished timeout_s after it was enqueued, or an
// error NCCL reports, ends the process with a message naming the rank, the
// group kind and the operation, after aborting the communicator.
//
// The communicator is non-blocking (ncclConfig_t::blocking = 0) so that no
// NCCL call, initialisation and enqueueing included, can block the host
// past the deadline: the host polls those (not the operations themselves).
class NcclGroup final : public Group {
 public:
  // Collective over every rank of `comm`: group rank 0 creates the NCCL
  // unique id and broadcasts it over `comm`; every rank then joins on CUDA
  // device `device`. One GPU per rank: NCCL rejects a device twice in a group.
  NcclGroup(MPI_Comm comm, CommKind kind, ByteCounter* counter, int device, cudaStream_t compute,
            NcclOptions options = {});
  ~NcclGroup() override;
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // bf16, f32, f64, i32, i64. Enqueued, not waited for (see above); the
  // timing the ByteCounter records is the enqueueing only.
  void all_reduce(const Tensor& t, ReduceOp op) override;
  void broadcast(const Tensor& t, int root) override;
  void all_gather(const Tensor& out, const Tensor& in) override;
  void send(const Tensor& t, int peer) override;
  void recv(const Tensor& t, int peer) override;
  // Send and receive in one ncclGroupStart/End, as pipeline exchanges need.
  void send_recv(const Tensor& out, int out_peer, const Tensor& in, int in_peer) override;
  void barrier() override;

  void set_timeout(double seconds);
  // Aborts the communicator (no waiting for peers); later calls throw.
  void abort();
  bool aborted() const;
  // Operations enqueued and not yet seen finished by the watchdog.
  size_t pending() const;

 private:
  struct EventPool;
  template <typename Issue>
  cudaEvent_t run(const std::string& what, Issue issue);
  void wait_ready(const std::string& what, double deadline_s);
  ncclResult_t async_state(const std::string& what);
  std::string async_error_text();
  void watchdog_failed(const std::string& message);
  void abort_comm();
  void fail_if_late(const std::string& what, double deadline_s);
  void check_cuda(cudaError_t e, const char* call);
  void check_nccl(ncclResult_t r, const char* call);
  void check_device(const Tensor& t, const char* op) const;
  void check_peer(int peer, const char* op) const;
  [[noreturn]] void abort_and_fail(const std::string& message);
  std::string where() const;

  // CUDA objects owned by the group, freed by their deleters.
  struct StreamDeleter {
    void operator()(std::remove_pointer_t<cudaStream_t>* s) const { cudaStreamDestroy(s); }
  };
  struct EventDeleter {
    void operator()(std::remove_pointer_t<cudaEvent_t>* e) const { cudaEventDestroy(e); }
  };
  struct DeviceFree {
    void operator()(void* p) const { cudaFree(p); }
  };

  int rank_ = 0;
  int size_ = 1;
  int device_ = 0;
  double timeout_s_;
  cudaStream_t compute_;
  std::function<void(const std::string&)> on_watchdog_failure_;
  std::string error_prefix_;  // "sptrain: rank R/N (host): error: ", as abort_job prints
  std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter> stream_;
  std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDeleter> compute_ready_;
  std::unique_ptr<EventPool> events_;          // one event per operation in flight
  std::unique_ptr<void, DeviceFree> scratch_;  // one float for barrier()
  // comm_ is read and written under this lock: the watchdog's thread asks it
  // for errors and aborts it. Recursive: an error while issuing aborts.
  mutable std::recursive_timed_mutex comm_mutex_;
  ncclComm_t comm_ = nullptr;
  // Last member: started once the communicator exists, stopped first.
  std::unique_ptr<CommWatchdog> watchdog_;
};

// NCCL groups over the same ranks as the grid's host groups (one per kind;
// a group of one rank is a one-rank NCCL communicator, which also copies
// device tensors for all_gather). Counts into grid.bytes. Collective over
// the world, like make_process_grid.
struct DeviceGroups {
  std::unique_ptr<NcclGroup> tp, pp, dp;
};
DeviceGroups make_device_groups(const ProcessGrid& grid, int device, cudaStream_t compute,
                                NcclOptions options = {});

}  // namespace sptrain

#endif  // SPTRAIN_WITH_CUDA
