#pragma once
// A fake one-rank NCCL and the CUDA event calls NcclGroup makes, for the
// emulated build (fake_nccl.cpp): enough to run the real NcclGroup
// (src/comm/nccl) on the CPU and check how it enqueues and watches its
// operations. Every call is logged with symbolic stream and event names; an
// NCCL operation is "pending" while the test holds its stream, and an event
// recorded after it on that stream is not ready until the test releases it.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <string>
#include <vector>

namespace fake_nccl {

// Forgets everything (log, held work, counters, names); streams named so far keep no name.
void reset();
// Names a stream in the log ("compute"); others are "stream1", "stream2", ...
void name_stream(cudaStream_t s, const std::string& name);
// The calls so far, e.g. "cudaEventRecord(event2, compute)",
// "cudaStreamWaitEvent(stream1, event2)", "ncclAllReduce(stream1)".
std::vector<std::string> log();
void clear_log();
// While held, NCCL operations are enqueued but do not finish; release()
// finishes them all (and moves their data).
void hold(bool on);
void release();
// What the next NCCL operation returns (ncclSuccess by default; one use).
void fail_next_operation(ncclResult_t r);
// The communicator's asynchronous error from now on.
void set_async_error(ncclResult_t r);
int aborts();  // ncclCommAbort calls

}  // namespace fake_nccl
