#include "sptrain/comm/mpi_group.hpp"

#include <algorithm>
#include <climits>
#include <vector>

namespace sptrain {
namespace {

// MPI counts are `int`: a message of more bytes is sent in pieces of at most
// this size (both sides split the same way since they agree on the size).
constexpr size_t kMaxMessageBytes = size_t(1) << 30;

// Point-to-point tags: kTagBase + the dtype, so a receive that finds a message
// of another dtype says so instead of reinterpreting its bytes.
constexpr int kTagBase = 1000;

int p2p_tag(DType t) { return kTagBase + int(t); }

MPI_Datatype reduce_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
    case DType::BF16:
    case DType::F16: break;
  }
  fail("MpiGroup::all_reduce: ", dtype_name(t),
       " tensors cannot be reduced over MPI (it has no 16-bit float type); "
       "the CPU back end reduces f32/f64, the CUDA back end uses NcclGroup");
}

// Calls fn(offset, count) for consecutive pieces of n items of `item_bytes`
// each, no piece larger than kMaxMessageBytes. No call when n == 0.
template <typename Fn>
void for_each_piece(size_t n, size_t item_bytes, Fn fn) {
  const size_t per_piece = kMaxMessageBytes / item_bytes;
  for (size_t offset = 0; offset < n; offset += per_piece) fn(offset, int(std::min(per_piece, n - offset)));
}

char* byte_ptr(const Tensor& t) { return static_cast<char*>(t.data); }

}  // namespace

MpiGroup::MpiGroup(MPI_Comm comm, CommKind kind, ByteCounter* counter, MpiWatchdog* watchdog)
    : Group(kind, counter), comm_(comm), watchdog_(watchdog) {
  SPT_ASSERT(comm != MPI_COMM_NULL);
  // Our own communicators return errors to us; the world's handler is left
  // as it is for code that calls MPI directly.
  if (owns_comm()) MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

MpiGroup::~MpiGroup() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised && owns_comm()) MPI_Comm_free(&comm_);
}

void MpiGroup::check(int rc, const char* call) const {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail(call, " failed on rank ", rank_, " of the ", comm_kind_name(kind()), " group: ", text);
}

void MpiGroup::complete(MPI_Request* requests, int n, const WaitFor& what) {
  if (n == 0) return;
  const int rc = watchdog_ ? watchdog_->wait(requests, n, what) : MPI_Waitall(n, requests, MPI_STATUSES_IGNORE);
  check(rc, what.call);
}

void MpiGroup::probe(int peer, MPI_Status* status, const WaitFor& what) {
  const int rc = watchdog_ ? watchdog_->wait_probe(peer, comm_, status, what) : MPI_Probe(peer, MPI_ANY_TAG, comm_, status);
  check(rc, "MPI_Probe");
}

void MpiGroup::check_host(const Tensor& t, const char* op) const {
  SPT_CHECK(t.device == Device::CPU, "MpiGroup::", op, " on the ", comm_kind_name(kind()),
            " group: the tensor is on the GPU; MPI moves host tensors, NcclGroup device tensors");
}

void MpiGroup::check_peer(int peer, const char* op) const {
  SPT_CHECK(peer >= 0 && peer < size_ && peer != rank_, "MpiGroup::", op, " on the ", comm_kind_name(kind()),
            " group: peer ", peer, " is not another rank of the group (rank ", rank_, " of ", size_, ")");
}

void MpiGroup::all_reduce(const Tensor& t, ReduceOp op) {
  const auto timer = timed();
  check_host(t, "all_reduce");
  const MPI_Datatype type = reduce_type(t.dtype);
  const MPI_Op mpi_op = op == ReduceOp::Sum ? MPI_SUM : MPI_MAX;
  const size_t item = dtype_size(t.dtype);
  for_each_piece(size_t(t.numel()), item, [&](size_t offset, int count) {
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Iallreduce(MPI_IN_PLACE, byte_ptr(t) + offset * item, count, type, mpi_op, comm_, &r),
          "MPI_Iallreduce");
    complete(&r, 1, waiting("MPI_Allreduce", uint64_t(count) * item));
  });
  if (size_ > 1) count(t.bytes());
}

void MpiGroup::broadcast(const Tensor& t, int root) {
  const auto timer = timed();
  check_host(t, "broadcast");
  SPT_CHECK(root >= 0 && root < size_, "MpiGroup::broadcast on the ", comm_kind_name(kind()), " group: root ", root,
            " is not a rank of a group of ", size_);
  for_each_piece(t.bytes(), 1, [&](size_t offset, int n) {
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Ibcast(byte_ptr(t) + offset, n, MPI_BYTE, root, comm_, &r), "MPI_Ibcast");
    complete(&r, 1, waiting("MPI_Bcast", uint64_t(n)));
  });
  if (size_ > 1) count(t.bytes());
}

void MpiGroup::all_gather(const Tensor& out, const Tensor& in) {
  const auto timer = timed();
  check_host(out, "all_gather");
  check_host(in, "all_gather");
  SPT_CHECK(out.dtype == in.dtype && out.cols() == in.cols() && out.rows() == in.rows() * size_,
            "MpiGroup::all_gather on the ", comm_kind_name(kind()), " group: output ", dtype_name(out.dtype), " ",
            out.shape.to_string(), " is not ", size_, " inputs ", dtype_name(in.dtype), " ", in.shape.to_string(),
            " stacked along dim 0");
  SPT_CHECK(in.bytes() <= kMaxMessageBytes, "MpiGroup::all_gather: ", in.bytes(),
            " bytes per rank is more than one MPI message carries (", kMaxMessageBytes, ")");
  // This rank's input already in its place in the output: gather in place.
  const bool in_place = in.data == byte_ptr(out) + size_t(rank_) * in.bytes();
  MPI_Request r = MPI_REQUEST_NULL;
  check(MPI_Iallgather(in_place ? MPI_IN_PLACE : in.data, int(in.bytes()), MPI_BYTE, out.data, int(in.bytes()),
                       MPI_BYTE, comm_, &r),
        "MPI_Iallgather");
  complete(&r, 1, waiting("MPI_Allgather", in.bytes()));
  if (size_ > 1) count(in.bytes());
}

void MpiGroup::send(const Tensor& t, int peer) { send_recv(t, peer, Tensor{}, kNoPeer); }

void MpiGroup::recv(const Tensor& t, int peer) { send_recv(Tensor{}, kNoPeer, t, peer); }

void MpiGroup::send_recv(const Tensor& out, int out_peer, const Tensor& in, int in_peer) {
  const auto timer = timed();
  // The send side is nonblocking (MPI_Isend) and completes after the receive,
  // so a rank that sends to and receives from the same peer cannot deadlock.
  std::vector<MPI_Request> sends;
  if (out_peer != kNoPeer) {
    check_host(out, "send");
    check_peer(out_peer, "send");
    for_each_piece(out.bytes(), 1, [&](size_t offset, int n) {
      sends.push_back(MPI_REQUEST_NULL);
      check(MPI_Isend(byte_ptr(out) + offset, n, MPI_BYTE, out_peer, p2p_tag(out.dtype), comm_, &sends.back()),
            "MPI_Isend");
    });
  }
  if (in_peer != kNoPeer) {
    check_host(in, "recv");
    check_peer(in_peer, "recv");
    recv_checked(in, in_peer);
  }
  complete(sends.data(), int(sends.size()), waiting("MPI_Send", out.bytes(), out_peer));
  if (out_peer != kNoPeer) count(out.bytes());
}

// Receives `t` from `peer`, piece by piece, after checking that the next
// message from the peer has the size and dtype the receiver expects. MPI_Probe
// leaves a mismatched message queued (a matched probe would consume it); the
// receive then names the probed tag, so it takes exactly the probed message
// (the earliest from this peer; only this thread receives on this group).
void MpiGroup::recv_checked(const Tensor& t, int peer) {
  for_each_piece(t.bytes(), 1, [&](size_t offset, int n) {
    MPI_Status status;
    probe(peer, &status, waiting("MPI_Recv", uint64_t(n), peer));
    int got = 0;
    check(MPI_Get_count(&status, MPI_BYTE, &got), "MPI_Get_count");
    if (got != n || status.MPI_TAG != p2p_tag(t.dtype)) {
      const int got_dtype = status.MPI_TAG - kTagBase;
      const bool known = got_dtype >= 0 && got_dtype <= int(DType::I64);
      fail("MpiGroup::recv on the ", comm_kind_name(kind()), " group: rank ", rank_, " expected a message of ", n,
           " bytes (", dtype_name(t.dtype), ") from rank ", peer, " but the next one has ", got, " bytes (",
           known ? dtype_name(DType(got_dtype)) : "unknown dtype", "): sender and receiver disagree on the order "
           "or shape of their messages");
    }
    // Its envelope is here; a large message's bytes may still need the sender.
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Irecv(byte_ptr(t) + offset, n, MPI_BYTE, peer, status.MPI_TAG, comm_, &r), "MPI_Irecv");
    complete(&r, 1, waiting("MPI_Recv", uint64_t(n), peer));
  });
}

void MpiGroup::barrier() {
  MPI_Request r = MPI_REQUEST_NULL;
  check(MPI_Ibarrier(comm_, &r), "MPI_Ibarrier");
  complete(&r, 1, waiting("MPI_Barrier", 0));
}

}  // namespace sptrain
