// NcclGroup against MpiGroup on the same data: every rank runs the same
// operation on a device copy (NCCL) and a host copy (MPI) of its inputs and
// the results must agree exactly (inputs are small integers and halves, so
// sums are exact in every dtype, bf16 included). Runs under mpirun, each
// rank on GPU (rank % device count); skips without a GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "../support/device_tensor.hpp"
#include "comm_test_util.hpp"
#include "sptrain/comm/nccl_group.hpp"

namespace sptrain {
namespace {

// Why this rank cannot run NCCL tests, or "" if it can. Any failure of
// cudaGetDeviceCount means no GPU (without a driver it returns "insufficient
// driver", not zero devices). Every rank must reach the same answer, or some
// would wait in a collective for ranks that skipped: the counts are combined.
std::string skip_reason(int* device) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  std::string reason;
  if (e != cudaSuccess) reason = std::string("no GPU visible: cudaGetDeviceCount: ") + cudaGetErrorString(e);
  else if (count == 0) reason = "no GPU visible";
  int min_count = e == cudaSuccess ? count : 0;
  MPI_Allreduce(MPI_IN_PLACE, &min_count, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (reason.empty() && min_count < test::world_size())
    reason = "NCCL needs one GPU per rank: " + std::to_string(test::world_size()) + " ranks, " +
             std::to_string(min_count) + " GPUs";
  if (reason.empty() && min_count == 0) reason = "another rank sees no GPU";
  *device = count > 0 ? test::world_rank() % count : 0;
  return reason;
}

#define SKIP_WITHOUT_GPUS(device)                       \
  int device = 0;                                       \
  if (std::string why = skip_reason(&device); !why.empty()) \
  GTEST_SKIP() << why

void cuda_ok(cudaError_t e) { ASSERT_EQ(e, cudaSuccess) << cudaGetErrorString(e); }

using test::DeviceTensor;

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { cudaStreamCreate(&s); }
  ~Stream() { cudaStreamDestroy(s); }
};

// An NcclGroup and an MpiGroup over the whole world, each with its counter.
struct Pair {
  Stream compute;
  ByteCounter nccl_bytes, mpi_bytes;
  NcclGroup nccl;
  MpiGroup mpi;
  Pair(int device, CommKind kind, NcclOptions options = {})
      : nccl(MPI_COMM_WORLD, kind, &nccl_bytes, device, compute.s, options),
        mpi(test::world_group(kind, &mpi_bytes)) {}
};

template <typename T>
std::vector<T> inputs(int r, int64_t n) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = T(test::test_value(r, i) * 2);  // integers
  return v;
}

// Host <-> device through the compute stream, as the back end would.
template <typename T>
void upload(const Tensor& d, const std::vector<T>& h, cudaStream_t s) {
  cuda_ok(cudaMemcpyAsync(d.data, h.data(), d.bytes(), cudaMemcpyHostToDevice, s));
}
template <typename T>
std::vector<T> download(const Tensor& d, cudaStream_t s) {
  std::vector<T> h(size_t(d.bytes() / sizeof(T)));
  cuda_ok(cudaMemcpyAsync(h.data(), d.data, d.bytes(), cudaMemcpyDeviceToHost, s));
  cuda_ok(cudaStreamSynchronize(s));
  return h;
}

template <typename T>
void compare_all_reduce(ReduceOp op) {
  SKIP_WITHOUT_GPUS(device);
  Pair p(device, CommKind::Tensor);
  const int64_t n = 1000;
  std::vector<T> host = inputs<T>(test::world_rank(), n);
  DeviceTensor d(dtype_of<T>(), {n});
  upload(d.t, host, p.compute.s);
  p.nccl.all_reduce(d.t, op);
  p.mpi.all_reduce(test::host_tensor(host, {n}), op);
  EXPECT_EQ(download<T>(d.t, p.compute.s), host);
  EXPECT_EQ(p.nccl_bytes.get(CommKind::Tensor), p.mpi_bytes.get(CommKind::Tensor));
}

TEST(NcclGroup, AllReduceSumF32) { compare_all_reduce<float>(ReduceOp::Sum); }
TEST(NcclGroup, AllReduceSumF64) { compare_all_reduce<double>(ReduceOp::Sum); }
TEST(NcclGroup, AllReduceSumI32) { compare_all_reduce<int32_t>(ReduceOp::Sum); }
TEST(NcclGroup, AllReduceMaxF32) { compare_all_reduce<float>(ReduceOp::Max); }
TEST(NcclGroup, AllReduceMaxI32) { compare_all_reduce<int32_t>(ReduceOp::Max); }

// bf16 on NCCL against f32 on MPI: the values and their sums are small
// integers, exact in bf16.
TEST(NcclGroup, AllReduceSumBf16MatchesF32OnMpi) {
  SKIP_WITHOUT_GPUS(device);
  Pair p(device, CommKind::Data);
  const int64_t n = 300;
  std::vector<float> host = inputs<float>(test::world_rank(), n);
  std::vector<uint16_t> bf(host.size());
  for (size_t i = 0; i < host.size(); ++i) bf[i] = f32_to_bf16(host[i]);
  DeviceTensor d(DType::BF16, {n});
  upload(d.t, bf, p.compute.s);
  p.nccl.all_reduce(d.t, ReduceOp::Sum);
  p.mpi.all_reduce(test::host_tensor(host, {n}), ReduceOp::Sum);
  const std::vector<uint16_t> got = download<uint16_t>(d.t, p.compute.s);
  for (size_t i = 0; i < host.size(); ++i) EXPECT_EQ(bf16_to_f32(got[i]), host[i]) << i;
  EXPECT_EQ(p.nccl_bytes.get(CommKind::Data), test::world_size() > 1 ? uint64_t(n) * 2 : 0u);
}

TEST(NcclGroup, BroadcastMatchesMpi) {
  SKIP_WITHOUT_GPUS(device);
  Pair p(device, CommKind::Pipeline);
  const int me = test::world_rank();
  for (int root = 0; root < test::world_size(); ++root) {
    std::vector<double> host = me == root ? inputs<double>(root, 77) : std::vector<double>(77, -1.0);
    DeviceTensor d(DType::F64, {7, 11});
    upload(d.t, host, p.compute.s);
    p.nccl.broadcast(d.t, root);
    p.mpi.broadcast(test::host_tensor(host, {7, 11}), root);
    EXPECT_EQ(download<double>(d.t, p.compute.s), host) << "root " << root;
  }
  EXPECT_EQ(p.nccl_bytes.get(CommKind::Pipeline), p.mpi_bytes.get(CommKind::Pipeline));
}

TEST(NcclGroup, AllGatherMatchesMpi) {
  SKIP_WITHOUT_GPUS(device);
  Pair p(device, CommKind::Tensor);
  const int n = test::world_size();
  std::vector<float> in = inputs<float>(test::world_rank(), 3 * 5), out(size_t(n * 15), -1.0f);
  DeviceTensor din(DType::F32, {3, 5}), dout(DType::F32, {3 * n, 5});
  upload(din.t, in, p.compute.s);
  p.nccl.all_gather(dout.t, din.t);
  p.mpi.all_gather(test::host_tensor(out, {3 * n, 5}), test::host_tensor(in, {3, 5}));
  EXPECT_EQ(download<float>(dout.t, p.compute.s), out);
  EXPECT_EQ(p.nccl_bytes.get(CommKind::Tensor), p.mpi_bytes.get(CommKind::Tensor));
}

TEST(NcclGroup, SendRecvRingMatchesMpi) {
  SKIP_WITHOUT_GPUS(device);
  const int n = test::world_size(), me = test::world_rank();
  if (n < 2) GTEST_SKIP() << "point-to-point needs two ranks";
  Pair p(device, CommKind::Pipeline);
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  std::vector<float> out = inputs<float>(me, 4096), in(4096, -1.0f);
  DeviceTensor dout(DType::F32, {4096}), din(DType::F32, {4096});
  upload(dout.t, out, p.compute.s);
  p.nccl.send_recv(dout.t, next, din.t, prev);
  p.mpi.send_recv(test::host_tensor(out, {4096}), next, test::host_tensor(in, {4096}), prev);
  EXPECT_EQ(download<float>(din.t, p.compute.s), in);
  // Plain send/recv: rank 0 to rank 1.
  if (me == 0) p.nccl.send(dout.t, 1);
  if (me == 1) {
    p.nccl.recv(din.t, 0);
    EXPECT_EQ(download<float>(din.t, p.compute.s), inputs<float>(0, 4096));
  }
  p.mpi.barrier();
  p.nccl.barrier();
  EXPECT_EQ(p.nccl_bytes.get(CommKind::Pipeline), p.mpi_bytes.get(CommKind::Pipeline) + (me == 0 ? 4096u * 4 : 0u));
}

// The communication stream waits for work queued on the compute stream: a
// memset queued right before the all_reduce is what gets reduced.
TEST(NcclGroup, OrderedAfterTheComputeStream) {
  SKIP_WITHOUT_GPUS(device);
  Pair p(device, CommKind::Data);
  DeviceTensor d(DType::I32, {1 << 20});
  cuda_ok(cudaMemsetAsync(d.t.data, 0x01, d.t.bytes(), p.compute.s));  // every i32 = 0x01010101
  p.nccl.all_reduce(d.t, ReduceOp::Sum);
  const std::vector<int32_t> got = download<int32_t>(d.t, p.compute.s);
  int64_t wrong = 0;
  for (int32_t v : got) wrong += v != 0x01010101 * test::world_size();
  EXPECT_EQ(wrong, 0);
}

TEST(NcclGroup, HostTensorsAreRefused) {
  SKIP_WITHOUT_GPUS(device);
  Pair p(device, CommKind::Data);
  std::vector<float> v(4);
  EXPECT_THROW(p.nccl.all_reduce(test::host_tensor(v, {4}), ReduceOp::Sum), Error);
}

// A collective that one rank never joins: on the others the call is only
// enqueued and returns; the watchdog finds it late after the timeout, aborts
// the communicator and reports the line naming rank, group and operation
// (here to the test; in a run it ends the process).
TEST(NcclGroup, HungCollectiveIsReportedByTheWatchdog) {
  SKIP_WITHOUT_GPUS(device);
  const int n = test::world_size(), me = test::world_rank();
  if (n < 2) GTEST_SKIP() << "a hang needs a rank that does not join";
  auto reported = std::make_shared<std::promise<std::string>>();
  NcclOptions options;
  options.timeout_s = 2.0;
  options.on_watchdog_failure = [reported](const std::string& line) { reported->set_value(line); };
  Pair p(device, CommKind::Data, options);
  DeviceTensor d(DType::F32, {16});
  if (me != n - 1) {
    p.nccl.all_reduce(d.t, ReduceOp::Sum);  // enqueued: returns at once
    auto line = reported->get_future();
    ASSERT_EQ(line.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    const std::string error = line.get();
    EXPECT_NE(error.find("in the data group"), std::string::npos) << error;
    EXPECT_NE(error.find("ncclAllReduce (64 bytes) did not finish within 2 s"), std::string::npos) << error;
    EXPECT_NE(error.find("communicator aborted"), std::string::npos) << error;
    EXPECT_TRUE(p.nccl.aborted());
    EXPECT_THROW(p.nccl.all_reduce(d.t, ReduceOp::Sum), Error);  // no use after abort
  }
  MPI_Barrier(MPI_COMM_WORLD);
  p.nccl.abort();  // its peers are gone: abort rather than finalise
}

}  // namespace
}  // namespace sptrain
