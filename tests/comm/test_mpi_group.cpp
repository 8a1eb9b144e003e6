// MpiGroup's collectives and point-to-point messages against values computed
// here independently (every rank knows every rank's inputs), on whatever
// world mpirun started (1, 2, 4, 8 ranks), and its byte counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "comm_test_util.hpp"
#include "sptrain/comm/mpi_runtime.hpp"

namespace sptrain {
namespace {

using test::test_int;
using test::test_value;

constexpr int64_t kRows = 5, kCols = 7;  // a shape that is not a power of two

template <typename T>
std::vector<T> inputs(int r, bool wide) {
  std::vector<T> v(size_t(kRows * kCols));
  for (size_t i = 0; i < v.size(); ++i) {
    if constexpr (std::is_integral_v<T>)
      v[i] = T(test_int(r, int64_t(i), wide));
    else
      v[i] = T(test_value(r, int64_t(i)));
  }
  return v;
}

// Expected all_reduce: the sum or max over every rank's inputs, element-wise.
template <typename T>
std::vector<T> expected_reduce(int n, ReduceOp op, bool wide) {
  std::vector<T> out = inputs<T>(0, wide);
  for (int r = 1; r < n; ++r) {
    const std::vector<T> v = inputs<T>(r, wide);
    for (size_t i = 0; i < out.size(); ++i) out[i] = op == ReduceOp::Sum ? T(out[i] + v[i]) : std::max(out[i], v[i]);
  }
  return out;
}

template <typename T>
void check_all_reduce(ReduceOp op, bool wide = false) {
  const int n = test::world_size(), me = test::world_rank();
  ByteCounter bytes;
  MpiGroup g = test::world_group(CommKind::Data, &bytes);
  std::vector<T> v = inputs<T>(me, wide);
  g.all_reduce(test::host_tensor(v, {kRows, kCols}), op);
  EXPECT_EQ(v, expected_reduce<T>(n, op, wide)) << dtype_name(dtype_of<T>());
  // Payload bytes once per call; nothing in a group of one rank.
  EXPECT_EQ(bytes.get(CommKind::Data), n > 1 ? uint64_t(kRows * kCols) * sizeof(T) : 0u);
  EXPECT_EQ(bytes.get(CommKind::Tensor) + bytes.get(CommKind::Pipeline), 0u);
}

TEST(MpiGroup, RankAndSizeAreTheWorlds) {
  MpiGroup g = test::world_group(CommKind::Tensor, nullptr);
  EXPECT_EQ(g.rank(), test::world_rank());
  EXPECT_EQ(g.size(), test::world_size());
  EXPECT_EQ(g.kind(), CommKind::Tensor);
}

TEST(MpiGroup, AllReduceSumF32) { check_all_reduce<float>(ReduceOp::Sum); }
TEST(MpiGroup, AllReduceSumF64) { check_all_reduce<double>(ReduceOp::Sum); }
TEST(MpiGroup, AllReduceSumI32) { check_all_reduce<int32_t>(ReduceOp::Sum); }
TEST(MpiGroup, AllReduceSumI64Beyond32Bits) { check_all_reduce<int64_t>(ReduceOp::Sum, true); }
TEST(MpiGroup, AllReduceMaxF32) { check_all_reduce<float>(ReduceOp::Max); }
TEST(MpiGroup, AllReduceMaxF64) { check_all_reduce<double>(ReduceOp::Max); }
TEST(MpiGroup, AllReduceMaxI32) { check_all_reduce<int32_t>(ReduceOp::Max); }
TEST(MpiGroup, AllReduceMaxI64Beyond32Bits) { check_all_reduce<int64_t>(ReduceOp::Max, true); }

TEST(MpiGroup, AllReduceOfBf16IsAClearError) {
  MpiGroup g = test::world_group(CommKind::Data, nullptr);
  std::vector<uint16_t> v(4, f32_to_bf16(1.0f));
  Tensor t{v.data(), DType::BF16, Device::CPU, {4}};
  try {
    g.all_reduce(t, ReduceOp::Sum);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bf16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("NcclGroup"), std::string::npos) << e.what();
  }
  EXPECT_EQ(bf16_to_f32(v[0]), 1.0f);  // untouched
}

TEST(MpiGroup, DeviceTensorsAreRefused) {
  MpiGroup g = test::world_group(CommKind::Data, nullptr);
  float dummy = 0;
  Tensor t{&dummy, DType::F32, Device::CUDA, {1}};  // never dereferenced: the check comes first
  EXPECT_THROW(g.all_reduce(t, ReduceOp::Sum), Error);
  EXPECT_THROW(g.broadcast(t, 0), Error);
}

TEST(MpiGroup, BroadcastFromEveryRoot) {
  const int n = test::world_size(), me = test::world_rank();
  ByteCounter bytes;
  MpiGroup g = test::world_group(CommKind::Pipeline, &bytes);
  for (int root = 0; root < n; ++root) {
    // Non-roots start from values that differ from the root's.
    std::vector<double> v = me == root ? inputs<double>(root, false) : std::vector<double>(kRows * kCols, -99.0);
    g.broadcast(test::host_tensor(v, {kRows, kCols}), root);
    EXPECT_EQ(v, inputs<double>(root, false)) << "root " << root;
  }
  EXPECT_EQ(bytes.get(CommKind::Pipeline), n > 1 ? uint64_t(n) * kRows * kCols * sizeof(double) : 0u);
}

TEST(MpiGroup, BroadcastMovesBf16Bytes) {
  const int me = test::world_rank();
  MpiGroup g = test::world_group(CommKind::Data, nullptr);
  std::vector<uint16_t> v(3, me == 0 ? f32_to_bf16(2.5f) : uint16_t(0));
  g.broadcast(Tensor{v.data(), DType::BF16, Device::CPU, {3}}, 0);
  for (uint16_t x : v) EXPECT_EQ(bf16_to_f32(x), 2.5f);
}

TEST(MpiGroup, BroadcastRootOutOfRangeIsAnError) {
  MpiGroup g = test::world_group(CommKind::Data, nullptr);
  std::vector<float> v(2);
  EXPECT_THROW(g.broadcast(test::host_tensor(v, {2}), g.size()), Error);
  EXPECT_THROW(g.broadcast(test::host_tensor(v, {2}), -1), Error);
}

// Expected all_gather: rank r's rows in block r of the output.
std::vector<float> expected_gather(int n) {
  std::vector<float> out;
  for (int r = 0; r < n; ++r) {
    const std::vector<float> v = inputs<float>(r, false);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

TEST(MpiGroup, AllGatherStacksRanksAlongDim0) {
  const int n = test::world_size(), me = test::world_rank();
  ByteCounter bytes;
  MpiGroup g = test::world_group(CommKind::Tensor, &bytes);
  std::vector<float> in = inputs<float>(me, false);
  std::vector<float> out(size_t(n * kRows * kCols), -1.0f);
  g.all_gather(test::host_tensor(out, {n * kRows, kCols}), test::host_tensor(in, {kRows, kCols}));
  EXPECT_EQ(out, expected_gather(n));
  // The local input's bytes, not the gathered output's.
  EXPECT_EQ(bytes.get(CommKind::Tensor), n > 1 ? uint64_t(kRows * kCols) * sizeof(float) : 0u);
}

TEST(MpiGroup, AllGatherInPlace) {
  const int n = test::world_size(), me = test::world_rank();
  MpiGroup g = test::world_group(CommKind::Tensor, nullptr);
  std::vector<float> out(size_t(n * kRows * kCols), -1.0f);
  const std::vector<float> mine = inputs<float>(me, false);
  std::copy(mine.begin(), mine.end(), out.begin() + me * kRows * kCols);
  const Tensor all = test::host_tensor(out, {n * kRows, kCols});
  g.all_gather(all, all.slice_rows(me * kRows, kRows));
  EXPECT_EQ(out, expected_gather(n));
}

TEST(MpiGroup, AllGatherShapeMismatchIsAnError) {
  const int n = test::world_size();
  MpiGroup g = test::world_group(CommKind::Tensor, nullptr);
  std::vector<float> in(6), out(size_t(6 * n + 3));
  try {
    g.all_gather(test::host_tensor(out, {2 * n + 1, 3}), test::host_tensor(in, {2, 3}));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stacked along dim 0"), std::string::npos) << e.what();
  }
}

// A ring: every rank sends its inputs to the next and receives the previous
// rank's in one send_recv (with blocking send and recv every rank would first
// send, and large messages would deadlock).
TEST(MpiGroup, SendRecvRing) {
  const int n = test::world_size(), me = test::world_rank();
  if (n < 2) GTEST_SKIP() << "point-to-point needs two ranks";
  ByteCounter bytes;
  MpiGroup g = test::world_group(CommKind::Pipeline, &bytes);
  // Large enough (4 MB) that MPI cannot buffer it eagerly.
  const int64_t big = 1 << 20;
  std::vector<float> out(static_cast<size_t>(big)), in(static_cast<size_t>(big), -1.0f);
  for (int64_t i = 0; i < big; ++i) out[size_t(i)] = float(test_value(me, i));
  g.send_recv(test::host_tensor(out, {big}), (me + 1) % n, test::host_tensor(in, {big}), (me + n - 1) % n);
  const int prev = (me + n - 1) % n;
  int64_t wrong = 0;
  for (int64_t i = 0; i < big; ++i) wrong += in[size_t(i)] != float(test_value(prev, i));
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(bytes.get(CommKind::Pipeline), uint64_t(big) * sizeof(float));  // sent only
}

// A pipeline: stage s receives from s-1 and sends to s+1, with plain blocking
// send and recv, messages in order; then gradients flow back.
TEST(MpiGroup, SendRecvPipelineInOrder) {
  const int n = test::world_size(), me = test::world_rank();
  if (n < 2) GTEST_SKIP() << "point-to-point needs two ranks";
  ByteCounter bytes;
  MpiGroup g = test::world_group(CommKind::Pipeline, &bytes);
  // Two messages of different shapes and dtypes per hop: activations (f32
  // [3, 4]) then the row count (i32 [1]); forward value = 100 * hop + i.
  std::vector<float> act(12);
  std::vector<int32_t> rows(1);
  if (me > 0) {
    g.recv(test::host_tensor(act, {3, 4}), me - 1);
    g.recv(test::host_tensor(rows, {1}), me - 1);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(act[size_t(i)], float(100 * (me - 1) + i)) << i;
    EXPECT_EQ(rows[0], 3 + me - 1);
  }
  if (me + 1 < n) {
    for (int i = 0; i < 12; ++i) act[size_t(i)] = float(100 * me + i);
    rows[0] = 3 + me;
    g.send(test::host_tensor(act, {3, 4}), me + 1);
    g.send(test::host_tensor(rows, {1}), me + 1);
  }
  // Backward: gradients from the last stage to the first.
  std::vector<double> grad(5);
  if (me + 1 < n) {
    g.recv(test::host_tensor(grad, {5}), me + 1);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(grad[size_t(i)], double(me + 1) + 0.25 * i);
  }
  if (me > 0) {
    for (int i = 0; i < 5; ++i) grad[size_t(i)] = double(me) + 0.25 * i;
    g.send(test::host_tensor(grad, {5}), me - 1);
  }
  // Sent: forward act + rows (all but the last), backward grad (all but the first).
  const uint64_t expected = (me + 1 < n ? 12 * 4 + 4 : 0) + (me > 0 ? 5 * 8 : 0);
  EXPECT_EQ(bytes.get(CommKind::Pipeline), expected);
}

// A receiver expecting another size or dtype than the next message gets an
// error naming both, instead of reading garbage; the message stays queued.
TEST(MpiGroup, MismatchedMessageIsAnError) {
  const int n = test::world_size(), me = test::world_rank();
  if (n < 2) GTEST_SKIP() << "point-to-point needs two ranks";
  MpiGroup g = test::world_group(CommKind::Pipeline, nullptr);
  std::vector<float> four(4, 1.0f), eight(8);
  std::vector<int32_t> ints(4, 7);
  std::string size_error, dtype_error;
  if (me == 0) {
    g.send(test::host_tensor(four, {4}), 1);
    g.send(test::host_tensor(ints, {4}), 1);
  } else if (me == 1) {
    try {
      g.recv(test::host_tensor(eight, {8}), 0);  // 32 bytes expected, 16 sent
    } catch (const Error& e) {
      size_error = e.what();
    }
    g.recv(test::host_tensor(four, {4}), 0);  // the right shape still works
    try {
      g.recv(test::host_tensor(four, {4}), 0);  // same size, but the next one is i32
    } catch (const Error& e) {
      dtype_error = e.what();
    }
    g.recv(test::host_tensor(ints, {4}), 0);
    EXPECT_NE(size_error.find("expected a message of 32 bytes (f32) from rank 0 but the next one has 16 bytes (f32)"),
              std::string::npos)
        << size_error;
    EXPECT_NE(dtype_error.find("has 16 bytes (i32)"), std::string::npos) << dtype_error;
    EXPECT_EQ(ints, std::vector<int32_t>(4, 7));
  }
}

TEST(MpiGroup, SendToItselfOrOutsideIsAnError) {
  MpiGroup g = test::world_group(CommKind::Pipeline, nullptr);
  std::vector<float> v(2);
  EXPECT_THROW(g.send(test::host_tensor(v, {2}), g.rank()), Error);
  EXPECT_THROW(g.recv(test::host_tensor(v, {2}), g.size()), Error);
  EXPECT_THROW(g.send_recv(test::host_tensor(v, {2}), -2, test::host_tensor(v, {2}), Group::kNoPeer), Error);
}

TEST(MpiGroup, BarrierCountsNothing) {
  ByteCounter bytes;
  MpiGroup g = test::world_group(CommKind::Data, &bytes);
  g.barrier();
  EXPECT_EQ(bytes.get(CommKind::Data), 0u);
}

// All calls add up in one counter, by kind.
TEST(MpiGroup, CountersAddUpAcrossCalls) {
  const int n = test::world_size();
  ByteCounter bytes;
  MpiGroup tp = test::world_group(CommKind::Tensor, &bytes);
  MpiGroup dp = test::world_group(CommKind::Data, &bytes);
  std::vector<float> a(10, 1.0f);
  std::vector<double> b(3, 1.0);
  tp.all_reduce(test::host_tensor(a, {10}), ReduceOp::Sum);
  tp.all_reduce(test::host_tensor(a, {10}), ReduceOp::Max);
  dp.broadcast(test::host_tensor(b, {3}), 0);
  const uint64_t one = n > 1 ? 1 : 0;
  EXPECT_EQ(bytes.get(CommKind::Tensor), one * 2 * 40);
  EXPECT_EQ(bytes.get(CommKind::Data), one * 24);
  EXPECT_EQ(bytes.get(CommKind::Pipeline), 0u);
  bytes.reset();
  EXPECT_EQ(bytes.get(CommKind::Tensor), 0u);
}

TEST(MpiRuntime, ErrorLineNamesRankWorldAndHost) {
  const int n = test::world_size(), me = test::world_rank();
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(host, &len);
  EXPECT_EQ(job_error_line("the model file is truncated"),
            "sptrain: rank " + std::to_string(me) + "/" + std::to_string(n) + " (" + host +
                "): error: the model file is truncated");
}

TEST(MpiRuntime, NestedRuntimeLeavesMpiAlone) {
  // MPI is already initialised by main's runtime: a second one must neither
  // initialise nor finalise it.
  { MpiRuntime inner; EXPECT_EQ(inner.world_rank(), test::world_rank()); }
  int finalised = 1;
  MPI_Finalized(&finalised);
  EXPECT_EQ(finalised, 0);
}

}  // namespace
}  // namespace sptrain
