// NcclGroup: compiled only with the CUDA back end (see src/CMakeLists.txt).
#include "sptrain/comm/nccl_group.hpp"

#include <chrono>
#include <exception>
#include <thread>
#include <vector>

#include "sptrain/comm/mpi_runtime.hpp"

namespace sptrain {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Between polls: spin (yield) for the first 10 ms, since most operations end
// within microseconds and a sleep would add its latency to every one; then
// sleep 1 ms so a long wait does not burn a core.
void pause_poll(double started_s) {
  if (now_s() - started_s < 0.01)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// How often the watchdog checks the operations in flight: often enough to
// recycle their events promptly, rarely enough to cost nothing.
constexpr double kWatchdogPoll_s = 0.01;

ncclDataType_t reduce_type(DType t) {
  switch (t) {
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::I32: return ncclInt32;
    case DType::I64: return ncclInt64;
  }
  fail("NcclGroup: unknown dtype");
}

}  // namespace

// Events for the operations in flight: taken by the main thread when it
// enqueues one, given back by the watchdog's thread once it has finished.
// Created on demand (a handful: every synchronising call drains them) and
// destroyed with the group.
struct NcclGroup::EventPool {
  std::mutex mutex;
  std::vector<cudaEvent_t> all, free;
  ~EventPool() {
    for (cudaEvent_t e : all) cudaEventDestroy(e);
  }
  cudaError_t take(cudaEvent_t* e) {
    std::lock_guard<std::mutex> lock(mutex);
    if (free.empty()) {
      const cudaError_t r = cudaEventCreateWithFlags(e, cudaEventDisableTiming);
      if (r == cudaSuccess) all.push_back(*e);
      return r;
    }
    *e = free.back();
    free.pop_back();
    return cudaSuccess;
  }
  void give_back(cudaEvent_t e) {
    std::lock_guard<std::mutex> lock(mutex);
    free.push_back(e);
  }
};

NcclGroup::NcclGroup(MPI_Comm comm, CommKind kind, ByteCounter* counter, int device, cudaStream_t compute,
                     NcclOptions options)
    : Group(kind, counter),
      device_(device),
      timeout_s_(options.timeout_s),
      compute_(compute),
      on_watchdog_failure_(std::move(options.on_watchdog_failure)),
      error_prefix_(job_error_line("")),
      events_(std::make_unique<EventPool>()) {
  SPT_CHECK(options.timeout_s > 0, "NcclGroup: the timeout must be positive (got ", options.timeout_s, " s)");
  // A group of one rank needs no MPI at all (a plain run may not have it).
  if (comm != MPI_COMM_SELF) {
    if (MPI_Comm_rank(comm, &rank_) != MPI_SUCCESS || MPI_Comm_size(comm, &size_) != MPI_SUCCESS)
      fail("NcclGroup: MPI_Comm_rank/MPI_Comm_size failed for the ", comm_kind_name(kind), " group");
  }
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");

  // The CUDA objects first: if one fails, those made so far are freed by their
  // owners and no NCCL communicator exists yet.
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  stream_.reset(stream);
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  compute_ready_.reset(event);
  void* scratch = nullptr;
  check_cuda(cudaMalloc(&scratch, sizeof(float)), "cudaMalloc");
  scratch_.reset(scratch);
  check_cuda(cudaMemset(scratch, 0, sizeof(float)), "cudaMemset");

  ncclUniqueId id{};
  if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  if (size_ > 1 && MPI_Bcast(&id, int(sizeof id), MPI_BYTE, 0, comm) != MPI_SUCCESS)
    fail("NcclGroup: MPI_Bcast of the NCCL unique id failed on ", where());

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // see the header: nothing may block past the deadline
  const double deadline = now_s() + timeout_s_;
  ncclComm_t created = nullptr;
  const ncclResult_t r = ncclCommInitRankConfig(&created, size_, id, rank_, &config);
  {
    std::lock_guard<std::recursive_timed_mutex> lock(comm_mutex_);
    comm_ = created;
  }
  check_nccl(r, "ncclCommInitRankConfig");
  wait_ready("ncclCommInitRankConfig", deadline);

  watchdog_ = std::make_unique<CommWatchdog>(
      CommWatchdog::Hooks{where(), [this] { return async_error_text(); },
                          [this](const std::string& message) { watchdog_failed(message); }, {}},
      kWatchdogPoll_s);
}

NcclGroup::~NcclGroup() {
  watchdog_.reset();  // no more checks from its thread; its events are back in the pool
  std::lock_guard<std::recursive_timed_mutex> lock(comm_mutex_);
  if (!comm_) return;
  // Healthy and not unwinding an error: flush what is still enqueued and
  // destroy cooperatively. Otherwise, or if finalising does not complete in
  // time (a peer may be gone), abort: it never waits for peers.
  bool clean = std::uncaught_exceptions() == 0 && cudaSetDevice(device_) == cudaSuccess;
  if (clean) {
    const ncclResult_t r = ncclCommFinalize(comm_);
    clean = r == ncclSuccess || r == ncclInProgress;
  }
  const double started = now_s();
  while (clean) {
    ncclResult_t state = ncclInProgress;
    if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) clean = false;
    else if (state == ncclSuccess) break;
    else if (state != ncclInProgress || now_s() - started > timeout_s_) clean = false;
    else pause_poll(started);
  }
  if (clean)
    ncclCommDestroy(comm_);
  else
    ncclCommAbort(comm_);
  comm_ = nullptr;
}

std::string NcclGroup::where() const {
  return str("rank ", rank_, " of ", size_, " in the ", comm_kind_name(kind()), " group, device ", device_);
}

void NcclGroup::check_cuda(cudaError_t e, const char* call) {
  if (e != cudaSuccess) abort_and_fail(str(call, " failed: ", cudaGetErrorString(e)));
}

void NcclGroup::check_nccl(ncclResult_t r, const char* call) {
  // With a non-blocking communicator, "in progress" means "enqueued, poll".
  if (r == ncclSuccess || r == ncclInProgress) return;
  std::lock_guard<std::recursive_timed_mutex> lock(comm_mutex_);
  const char* detail = comm_ ? ncclGetLastError(comm_) : nullptr;
  abort_and_fail(str(call, " failed: ", ncclGetErrorString(r), detail && *detail ? str(" (", detail, ")") : ""));
}

void NcclGroup::abort_and_fail(const std::string& message) {
  const bool had_comm = !aborted();
  abort();
  fail("NcclGroup: ", message, " on ", where(), had_comm ? "; communicator aborted" : "");
}

void NcclGroup::abort_comm() {
  std::lock_guard<std::recursive_timed_mutex> lock(comm_mutex_);
  if (comm_) ncclCommAbort(comm_);
  comm_ = nullptr;
}

void NcclGroup::abort() {
  abort_comm();
  if (watchdog_) watchdog_->drop_all();  // nothing more will finish
}

bool NcclGroup::aborted() const {
  std::lock_guard<std::recursive_timed_mutex> lock(comm_mutex_);
  return comm_ == nullptr;
}

size_t NcclGroup::pending() const { return watchdog_ ? watchdog_->pending() : 0; }

void NcclGroup::set_timeout(double seconds) {
  SPT_CHECK(seconds > 0, "NcclGroup: the timeout must be positive (got ", seconds, " s)");
  timeout_s_ = seconds;
}

// The communicator's state: ncclSuccess (idle) or ncclInProgress (still
// working on the last call); an error aborts the communicator and throws.
ncclResult_t NcclGroup::async_state(const std::string& what) {
  ncclResult_t state = ncclSuccess;
  {
    std::lock_guard<std::recursive_timed_mutex> lock(comm_mutex_);
    SPT_CHECK(comm_, "NcclGroup: ", what, " on ", where(), ": the communicator was aborted");
    check_nccl(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
  }
  check_nccl(state, what.c_str());  // passes ncclSuccess and ncclInProgress
  return state;
}

// For the watchdog's thread: an asynchronous error of the communicator as
// text, "" if none, or if the main thread is using the communicator right now
// (asked again at the next round).
std::string NcclGroup::async_error_text() {
  std::unique_lock<std::recursive_timed_mutex> lock(comm_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || !comm_) return "";
  ncclResult_t state = ncclSuccess;
  const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
  if (r != ncclSuccess) return str("ncclCommGetAsyncError failed: ", ncclGetErrorString(r));
  if (state == ncclSuccess || state == ncclInProgress) return "";
  const char* detail = ncclGetLastError(comm_);
  return str("NCCL reported ", ncclGetErrorString(state), detail && *detail ? str(" (", detail, ")") : "");
}

// On the watchdog's thread: the message first (in case the abort hangs or
// crashes), then the abort, then the end of the process. The abort waits at
// most 10 s for the main thread to leave the communicator (it only enqueues,
// on a non-blocking communicator, so it should never hold it that long).
void NcclGroup::watchdog_failed(const std::string& message) {
  auto abort_in_time = [this] {
    std::unique_lock<std::recursive_timed_mutex> lock(comm_mutex_, std::defer_lock);
    if (!lock.try_lock_for(std::chrono::seconds(10))) return;
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  };
  if (on_watchdog_failure_) {
    abort_in_time();
    on_watchdog_failure_(error_prefix_ + message + "; communicator aborted");
    return;
  }
  end_process_after_comm_failure(
      error_prefix_ + message + "; aborting the communicator and ending the process", abort_in_time);
}

void NcclGroup::fail_if_late(const std::string& what, double deadline_s) {
  if (now_s() > deadline_s)
    abort_and_fail(str(what, " did not finish within ", timeout_s_,
                       " s (a rank died or the ranks issued different operations)"));
}

// Polls until NCCL has finished the last call (initialisation, or enqueuing
// an operation on the stream): with a non-blocking communicator, a call may
// return ncclInProgress (e.g. while it connects to a peer for the first
// time), and the next call must wait until it is done.
void NcclGroup::wait_ready(const std::string& what, double deadline_s) {
  const double started = now_s();
  while (async_state(what) == ncclInProgress) {
    fail_if_late(what, deadline_s);
    pause_poll(started);
  }
}

// One operation: ordered after the compute stream's work, issued on the
// communication stream, the compute stream ordered after it, and handed to
// the watchdog. Returns its event (complete once it has finished); the host
// does not wait for it here.
template <typename Issue>
cudaEvent_t NcclGroup::run(const std::string& what, Issue issue) {
  SPT_CHECK(!aborted(), "NcclGroup: ", what, " on ", where(),
            ": the communicator was aborted after an earlier error");
  const double deadline = now_s() + timeout_s_;
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  check_cuda(cudaEventRecord(compute_ready_.get(), compute_), "cudaEventRecord");
  check_cuda(cudaStreamWaitEvent(stream_.get(), compute_ready_.get(), 0), "cudaStreamWaitEvent");
  {
    std::lock_guard<std::recursive_timed_mutex> lock(comm_mutex_);
    SPT_CHECK(comm_, "NcclGroup: ", what, " on ", where(), ": the communicator was aborted");
    issue();
  }
  wait_ready(what, deadline);  // enqueued on the stream
  cudaEvent_t done = nullptr;
  check_cuda(events_->take(&done), "cudaEventCreateWithFlags");
  const cudaError_t recorded = cudaEventRecord(done, stream_.get());
  if (recorded != cudaSuccess) events_->give_back(done);
  check_cuda(recorded, "cudaEventRecord");
  check_cuda(cudaStreamWaitEvent(compute_, done, 0), "cudaStreamWaitEvent");
  const int device = device_;
  watchdog_->watch(CommWatchdog::Op{
      what, timeout_s_,
      [done, device] {
        cudaSetDevice(device);  // the watchdog's thread
        const cudaError_t e = cudaEventQuery(done);
        if (e == cudaErrorNotReady) return false;
        if (e != cudaSuccess) fail("cudaEventQuery failed: ", cudaGetErrorString(e));
        return true;
      },
      [pool = events_.get(), done] { pool->give_back(done); }});
  return done;
}

void NcclGroup::check_device(const Tensor& t, const char* op) const {
  SPT_CHECK(t.device == Device::CUDA, "NcclGroup::", op, " on ", where(),
            ": the tensor is in host memory; NCCL moves device tensors, MpiGroup host tensors");
}

void NcclGroup::check_peer(int peer, const char* op) const {
  SPT_CHECK(peer >= 0 && peer < size_ && peer != rank_, "NcclGroup::", op, " on ", where(), ": peer ", peer,
            " is not another rank of the group");
}

void NcclGroup::all_reduce(const Tensor& t, ReduceOp op) {
  const auto timer = timed();
  check_device(t, "all_reduce");
  const ncclDataType_t type = reduce_type(t.dtype);
  const ncclRedOp_t nccl_op = op == ReduceOp::Sum ? ncclSum : ncclMax;
  run(str("ncclAllReduce (", t.bytes(), " bytes)"), [&] {
    check_nccl(ncclAllReduce(t.data, t.data, size_t(t.numel()), type, nccl_op, comm_, stream_.get()), "ncclAllReduce");
  });
  if (size_ > 1) count(t.bytes());
}

void NcclGroup::broadcast(const Tensor& t, int root) {
  const auto timer = timed();
  check_device(t, "broadcast");
  SPT_CHECK(root >= 0 && root < size_, "NcclGroup::broadcast on ", where(), ": root ", root, " is not a rank");
  run(str("ncclBroadcast from rank ", root, " (", t.bytes(), " bytes)"), [&] {
    check_nccl(ncclBroadcast(t.data, t.data, t.bytes(), ncclInt8, root, comm_, stream_.get()), "ncclBroadcast");
  });
  if (size_ > 1) count(t.bytes());
}

void NcclGroup::all_gather(const Tensor& out, const Tensor& in) {
  const auto timer = timed();
  check_device(out, "all_gather");
  check_device(in, "all_gather");
  SPT_CHECK(out.dtype == in.dtype && out.cols() == in.cols() && out.rows() == in.rows() * size_,
            "NcclGroup::all_gather on ", where(), ": output ", dtype_name(out.dtype), " ", out.shape.to_string(),
            " is not ", size_, " inputs ", dtype_name(in.dtype), " ", in.shape.to_string(), " stacked along dim 0");
  // NCCL recognises the in-place case (in == this rank's slot of out) itself.
  run(str("ncclAllGather (", in.bytes(), " bytes per rank)"), [&] {
    check_nccl(ncclAllGather(in.data, out.data, in.bytes(), ncclInt8, comm_, stream_.get()), "ncclAllGather");
  });
  if (size_ > 1) count(in.bytes());
}

void NcclGroup::send(const Tensor& t, int peer) { send_recv(t, peer, Tensor{}, kNoPeer); }

void NcclGroup::recv(const Tensor& t, int peer) { send_recv(Tensor{}, kNoPeer, t, peer); }

void NcclGroup::send_recv(const Tensor& out, int out_peer, const Tensor& in, int in_peer) {
  const auto timer = timed();
  if (out_peer != kNoPeer) {
    check_device(out, "send");
    check_peer(out_peer, "send");
  }
  if (in_peer != kNoPeer) {
    check_device(in, "recv");
    check_peer(in_peer, "recv");
  }
  if (out_peer == kNoPeer && in_peer == kNoPeer) return;
  std::string what;
  if (out_peer != kNoPeer) what = str("ncclSend to rank ", out_peer, " (", out.bytes(), " bytes)");
  if (in_peer != kNoPeer)
    what += str(what.empty() ? "" : " with ", "ncclRecv from rank ", in_peer, " (", in.bytes(), " bytes)");
  // Grouped, so NCCL posts both sides together: neither waits for the other.
  run(what, [&] {
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    ncclResult_t sent = ncclSuccess, received = ncclSuccess;
    if (out_peer != kNoPeer) sent = ncclSend(out.data, out.bytes(), ncclInt8, out_peer, comm_, stream_.get());
    if (in_peer != kNoPeer) received = ncclRecv(in.data, in.bytes(), ncclInt8, in_peer, comm_, stream_.get());
    // Close the group even after an error: its nesting depth is per thread,
    // and an open group would swallow the next call on any communicator.
    const ncclResult_t ended = ncclGroupEnd();
    check_nccl(sent, "ncclSend");
    check_nccl(received, "ncclRecv");
    check_nccl(ended, "ncclGroupEnd");
  });
  if (out_peer != kNoPeer) count(out.bytes());
}

void NcclGroup::barrier() {
  const auto timer = timed();
  // NCCL has no barrier: a one-element all-reduce completes on a rank only
  // after every rank has joined it. Max keeps the value from growing.
  const cudaEvent_t done = run("barrier (ncclAllReduce)", [&] {
    check_nccl(ncclAllReduce(scratch_.get(), scratch_.get(), 1, ncclFloat32, ncclMax, comm_, stream_.get()),
               "ncclAllReduce");
  });
  // The host waits here, unlike the other calls; a hang is the watchdog's
  // to end, like any other.
  const double started = now_s();
  for (;;) {
    const cudaError_t e = cudaEventQuery(done);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) check_cuda(e, "cudaEventQuery");
    SPT_CHECK(!aborted(), "NcclGroup: barrier on ", where(), ": the communicator was aborted");
    pause_poll(started);
  }
}

DeviceGroups make_device_groups(const ProcessGrid& grid, int device, cudaStream_t compute, NcclOptions options) {
  // Same order on every rank, so the groups' initialisations pair up.
  DeviceGroups g;
  g.tp = std::make_unique<NcclGroup>(grid.tp_comm, CommKind::Tensor, grid.bytes.get(), device, compute, options);
  g.pp = std::make_unique<NcclGroup>(grid.pp_comm, CommKind::Pipeline, grid.bytes.get(), device, compute, options);
  g.dp = std::make_unique<NcclGroup>(grid.dp_comm, CommKind::Data, grid.bytes.get(), device, compute, options);
  return g;
}

}  // namespace sptrain
