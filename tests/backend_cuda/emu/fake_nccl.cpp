// See fake_nccl.hpp. One rank: a collective's result is its input (copied
// when it finishes). Thread-safe: NcclGroup's watchdog queries events and the
// communicator's error from its own thread.
#include "fake_nccl.hpp"

#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

namespace fake_nccl {
namespace {

struct Held {
  const void* stream;
  std::function<void()> move;
};

struct Event {
  const void* stream = nullptr;  // nullptr: never recorded (complete)
  long after = 0;                // complete once the stream has finished this many operations
};

struct State {
  std::mutex mutex;
  std::vector<std::string> log;
  std::map<const void*, std::string> streams, events_named;
  int next_stream = 1, next_event = 1;
  std::map<const void*, long> enqueued, finished;
  std::map<const void*, Event> events;
  std::deque<Held> held;
  bool hold = false;
  ncclResult_t next_result = ncclSuccess, async_error = ncclSuccess;
  int aborts = 0;
};
State& st() {
  static State s;
  return s;
}

std::string stream_name(State& s, const void* stream) {
  auto it = s.streams.find(stream);
  if (it != s.streams.end()) return it->second;
  return s.streams[stream] = "stream" + std::to_string(s.next_stream++);
}
std::string event_name(State& s, const void* event) {
  auto it = s.events_named.find(event);
  if (it != s.events_named.end()) return it->second;
  return s.events_named[event] = "event" + std::to_string(s.next_event++);
}

size_t type_size(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: case ncclUint8: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    default: return 8;
  }
}

// An NCCL operation on `stream`: logged, then finished at once or held.
ncclResult_t enqueue(const char* name, cudaStream_t stream, std::function<void()> move) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.log.push_back(std::string(name) + "(" + stream_name(s, stream) + ")");
  if (s.next_result != ncclSuccess) {
    const ncclResult_t r = s.next_result;
    s.next_result = ncclSuccess;
    return r;
  }
  ++s.enqueued[stream];
  if (s.hold) {
    s.held.push_back({stream, std::move(move)});
  } else {
    if (move) move();
    ++s.finished[stream];
  }
  return ncclSuccess;
}

std::function<void()> copy(const void* from, void* to, size_t bytes) {
  if (from == to) return {};
  return [from, to, bytes] { std::memmove(to, from, bytes); };
}

int comm_token;

}  // namespace

void reset() {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.log.clear();
  s.streams.clear();
  s.events_named.clear();
  s.next_stream = s.next_event = 1;
  s.enqueued.clear();
  s.finished.clear();
  s.held.clear();
  s.hold = false;
  s.next_result = s.async_error = ncclSuccess;
  s.aborts = 0;
}
void name_stream(cudaStream_t stream, const std::string& name) {
  std::lock_guard<std::mutex> lock(st().mutex);
  st().streams[stream] = name;
}
std::vector<std::string> log() {
  std::lock_guard<std::mutex> lock(st().mutex);
  return st().log;
}
void clear_log() {
  std::lock_guard<std::mutex> lock(st().mutex);
  st().log.clear();
}
void hold(bool on) {
  std::lock_guard<std::mutex> lock(st().mutex);
  st().hold = on;
}
void release() {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mutex);
  for (Held& h : s.held) {
    if (h.move) h.move();
    ++s.finished[h.stream];
  }
  s.held.clear();
}
void fail_next_operation(ncclResult_t r) {
  std::lock_guard<std::mutex> lock(st().mutex);
  st().next_result = r;
}
void set_async_error(ncclResult_t r) {
  std::lock_guard<std::mutex> lock(st().mutex);
  st().async_error = r;
}
int aborts() {
  std::lock_guard<std::mutex> lock(st().mutex);
  return st().aborts;
}

}  // namespace fake_nccl

using fake_nccl::st;

// ---- the CUDA event calls (the emulator's streams run everything at once,
// except what the fake NCCL holds) ----
extern "C" {
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = reinterpret_cast<cudaEvent_t>(new char);
  std::lock_guard<std::mutex> lock(st().mutex);
  st().events[*e] = {};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  {
    std::lock_guard<std::mutex> lock(st().mutex);
    st().events.erase(e);
  }
  delete reinterpret_cast<char*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
  auto& s = st();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.events[e] = {stream, s.enqueued[stream]};
  s.log.push_back("cudaEventRecord(" + fake_nccl::event_name(s, e) + ", " + fake_nccl::stream_name(s, stream) + ")");
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  auto& s = st();
  std::lock_guard<std::mutex> lock(s.mutex);
  const auto& ev = s.events[e];
  if (!ev.stream) return cudaSuccess;
  return s.finished[ev.stream] >= ev.after ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t e, unsigned) {
  auto& s = st();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.log.push_back("cudaStreamWaitEvent(" + fake_nccl::stream_name(s, stream) + ", " + fake_nccl::event_name(s, e) + ")");
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int v, size_t n) {
  std::memset(p, v, n);
  return cudaSuccess;
}

// ---- NCCL, one rank ----
ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  std::memset(id, 0, sizeof(*id));
  return ncclSuccess;
}
ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int, ncclUniqueId, int, ncclConfig_t*) {
  *comm = reinterpret_cast<ncclComm_t>(&fake_nccl::comm_token);
  return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t* state) {
  std::lock_guard<std::mutex> lock(st().mutex);
  *state = st().async_error;
  return ncclSuccess;
}
ncclResult_t ncclCommFinalize(ncclComm_t) { return ncclSuccess; }
ncclResult_t ncclCommDestroy(ncclComm_t) { return ncclSuccess; }
ncclResult_t ncclCommAbort(ncclComm_t) {
  std::lock_guard<std::mutex> lock(st().mutex);
  ++st().aborts;
  st().log.push_back("ncclCommAbort");
  return ncclSuccess;
}
const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "fake NCCL error";
  }
}
const char* ncclGetLastError(ncclComm_t) { return "fake NCCL"; }
ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t,
                           ncclComm_t, cudaStream_t stream) {
  return fake_nccl::enqueue("ncclAllReduce", stream, fake_nccl::copy(send, recv, count * fake_nccl::type_size(type)));
}
ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type, int, ncclComm_t,
                           cudaStream_t stream) {
  return fake_nccl::enqueue("ncclBroadcast", stream, fake_nccl::copy(send, recv, count * fake_nccl::type_size(type)));
}
ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, ncclDataType_t type, ncclComm_t,
                           cudaStream_t stream) {
  return fake_nccl::enqueue("ncclAllGather", stream, fake_nccl::copy(send, recv, count * fake_nccl::type_size(type)));
}
ncclResult_t ncclSend(const void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t stream) {
  return fake_nccl::enqueue("ncclSend", stream, {});
}
ncclResult_t ncclRecv(void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t stream) {
  return fake_nccl::enqueue("ncclRecv", stream, {});
}
ncclResult_t ncclGroupStart() { return ncclSuccess; }
ncclResult_t ncclGroupEnd() { return ncclSuccess; }
}
