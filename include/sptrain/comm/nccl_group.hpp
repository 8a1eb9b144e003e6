#pragma once
// Group over NCCL, for device (CUDA) tensors. Declared only when the CUDA back
// end is built (SPTRAIN_WITH_CUDA); the file is empty otherwise.
#ifdef SPTRAIN_WITH_CUDA

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <memory>
#include <string>
#include <type_traits>

#include "sptrain/comm/communicator.hpp"
#include "sptrain/comm/process_grid.hpp"

namespace sptrain {

struct NcclOptions {
  // A collective, send or receive that has not finished after this long is
  // taken as hung (a rank died, or the ranks called different operations):
  // the communicator is aborted and the call throws.
  double timeout_s = 300.0;
};

// Every operation is issued on the group's own communication stream, after
// the work already queued on the compute stream (an event orders them), and
// the compute stream waits for it in turn. The call returns when the
// operation has finished, like MpiGroup's: the host polls for completion and
// for NCCL errors against the deadline, which is what makes a hang detectable.
//
// The communicator is non-blocking (ncclConfig_t::blocking = 0) so that no
// NCCL call, initialisation included, can block the host past the deadline.
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
  // bf16, f32, f64, i32, i64.
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
  bool aborted() const { return comm_ == nullptr; }

 private:
  template <typename Issue>
  void run(const char* what, Issue issue);
  void wait_ready(const char* what, double deadline_s);
  ncclResult_t async_state(const char* what);
  void fail_if_late(const char* what, double deadline_s);
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
  std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter> stream_;
  std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDeleter> compute_ready_, comm_done_;
  std::unique_ptr<void, DeviceFree> scratch_;  // one float for barrier()
  // Last member: created after the CUDA objects above, destroyed before them.
  ncclComm_t comm_ = nullptr;
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
