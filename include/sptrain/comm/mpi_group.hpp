#pragma once
// Group over an MPI communicator, for host (CPU) tensors: the CPU back end's
// communication, and the host side of the CUDA back end (NCCL bootstrap,
// small host reductions).
#include <mpi.h>

#include "sptrain/comm/communicator.hpp"
#include "sptrain/comm/mpi_watchdog.hpp"

namespace sptrain {

class MpiGroup final : public Group {
 public:
  // Owns `comm` and frees it at destruction, unless it is MPI_COMM_WORLD or
  // MPI_COMM_SELF. Errors on an owned `comm` are returned to us
  // (MPI_ERRORS_RETURN) and thrown as sptrain::Error naming the call, the
  // rank and the group. With a watchdog (the process grid's), every call is
  // posted non-blocking and completed by watchdog->wait, with its deadline;
  // without one the calls block as long as they take.
  MpiGroup(MPI_Comm comm, CommKind kind, ByteCounter* counter, MpiWatchdog* watchdog = nullptr);
  ~MpiGroup() override;
  MpiGroup(const MpiGroup&) = delete;
  MpiGroup& operator=(const MpiGroup&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // F32, F64, I32, I64 only: MPI has no 16-bit float reductions.
  void all_reduce(const Tensor& t, ReduceOp op) override;
  // Any dtype (bytes are moved as they are).
  void broadcast(const Tensor& t, int root) override;
  void all_gather(const Tensor& out, const Tensor& in) override;
  void send(const Tensor& t, int peer) override;
  void recv(const Tensor& t, int peer) override;
  void send_recv(const Tensor& out, int out_peer, const Tensor& in, int in_peer) override;
  void barrier() override;

  MPI_Comm comm() const { return comm_; }

 private:
  bool owns_comm() const { return comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_SELF; }
  void check(int rc, const char* call) const;
  void check_host(const Tensor& t, const char* op) const;
  void check_peer(int peer, const char* op) const;
  void recv_checked(const Tensor& t, int peer);
  // Completes the requests (watchdog_->wait, or MPI_Waitall without one).
  void complete(MPI_Request* requests, int n, const WaitFor& what);
  void probe(int peer, MPI_Status* status, const WaitFor& what);
  WaitFor waiting(const char* call, uint64_t bytes, int peer = -1) const {
    return {call, comm_kind_name(kind()), bytes, peer};
  }

  MPI_Comm comm_;
  MpiWatchdog* watchdog_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace sptrain
