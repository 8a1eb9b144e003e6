// The real NcclGroup (src/comm/nccl) against a fake one-rank NCCL and fake
// CUDA events (fake_nccl.hpp), on the CPU: its calls enqueue in the right
// order and return without waiting; the watchdog retires finished operations,
// and a late one or an NCCL error ends the process (or, with the test hook,
// reports) with a line naming the rank, the group and the operation, after
// aborting the communicator. What the fake cannot show: real NCCL's and the
// driver's behaviour (thread safety of the calls, abort of a running
// kernel); see docs/cuda.md.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "../../support/device_tensor.hpp"
#include "fake_nccl.hpp"
#include "sptrain/comm/nccl_group.hpp"

namespace sptrain {
namespace {

int compute_token;
const cudaStream_t kCompute = reinterpret_cast<cudaStream_t>(&compute_token);

// Device memory is the emulator's (host memory).
using Dev = test::DeviceTensor;

class NcclEnqueued : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_nccl::reset();
    fake_nccl::name_stream(kCompute, "compute");
  }
  // Waits (guarding against a hang of the test, not timing anything) until
  // the watchdog has retired everything.
  static bool drained(const NcclGroup& g) {
    for (int i = 0; i < 60000 && g.pending() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return g.pending() == 0;
  }
};

TEST_F(NcclEnqueued, OrderedBetweenTheStreamsAndNotWaitedFor) {
  ByteCounter bytes;
  NcclGroup g(MPI_COMM_SELF, CommKind::Tensor, &bytes, 0, kCompute);
  Dev x(DType::F32, {16}), in(DType::F32, {2, 3}), out(DType::F32, {2, 3});
  for (int i = 0; i < 6; ++i) static_cast<float*>(in.t.data)[i] = float(i + 1);
  std::fill_n(static_cast<float*>(out.t.data), 6, -1.0f);
  fake_nccl::clear_log();
  fake_nccl::hold(true);  // nothing the fake NCCL is given finishes until release()

  g.all_reduce(x.t, ReduceOp::Sum);  // returns although the operation has not finished
  const std::vector<std::string> first = {
      "cudaEventRecord(event1, compute)",     // what the compute stream queued so far...
      "cudaStreamWaitEvent(stream1, event1)",  // ...comes before the communication
      "ncclAllReduce(stream1)",
      "cudaEventRecord(event2, stream1)",      // the operation's own event...
      "cudaStreamWaitEvent(compute, event2)",  // ...orders later compute after it
  };
  EXPECT_EQ(fake_nccl::log(), first);
  EXPECT_EQ(g.pending(), 1u);

  g.all_gather(out.t, in.t);
  g.broadcast(x.t, 0);
  EXPECT_EQ(g.pending(), 3u);
  const auto log = fake_nccl::log();
  ASSERT_EQ(log.size(), 15u);
  EXPECT_EQ(log[7], "ncclAllGather(stream1)");
  EXPECT_EQ(log[8], "cudaEventRecord(event3, stream1)");  // one event per operation in flight
  EXPECT_EQ(log[12], "ncclBroadcast(stream1)");
  EXPECT_EQ(log[13], "cudaEventRecord(event4, stream1)");
  EXPECT_EQ(static_cast<float*>(out.t.data)[0], -1.0f);  // not moved yet

  fake_nccl::release();
  EXPECT_TRUE(drained(g));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(static_cast<float*>(out.t.data)[i], float(i + 1));
  // The retired operations' events are used again.
  fake_nccl::clear_log();
  g.all_reduce(x.t, ReduceOp::Max);
  EXPECT_EQ(fake_nccl::log()[3].substr(0, 22), "cudaEventRecord(event4");
  fake_nccl::release();
  EXPECT_TRUE(drained(g));
  EXPECT_EQ(fake_nccl::aborts(), 0);
  EXPECT_EQ(bytes.get(CommKind::Tensor), 0u);  // a group of one rank sends nothing
}

TEST_F(NcclEnqueued, BarrierWaitsForEveryRank) {
  NcclGroup g(MPI_COMM_SELF, CommKind::Data, nullptr, 0, kCompute);
  fake_nccl::hold(true);
  auto returned = std::async(std::launch::async, [&] { g.barrier(); });
  // Held: it must not have returned. (Only "not yet" is checked here.)
  EXPECT_EQ(returned.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  fake_nccl::release();
  ASSERT_EQ(returned.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  returned.get();
}

TEST_F(NcclEnqueued, LateOperationIsReportedAfterTheAbort) {
  auto reported = std::make_shared<std::promise<std::string>>();
  NcclOptions options;
  options.timeout_s = 0.05;
  options.on_watchdog_failure = [reported](const std::string& line) { reported->set_value(line); };
  NcclGroup g(MPI_COMM_SELF, CommKind::Pipeline, nullptr, 0, kCompute, options);
  Dev x(DType::BF16, {32});
  fake_nccl::hold(true);
  g.all_reduce(x.t, ReduceOp::Sum);
  auto line = reported->get_future();
  ASSERT_EQ(line.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  const std::string msg = line.get();
  EXPECT_NE(msg.find("sptrain: rank 0/1 ("), std::string::npos) << msg;
  EXPECT_NE(msg.find("rank 0 of 1 in the pipeline group, device 0: ncclAllReduce (64 bytes) did not finish "
                     "within 0.05 s"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("communicator aborted"), std::string::npos) << msg;
  EXPECT_EQ(fake_nccl::aborts(), 1);
  EXPECT_TRUE(g.aborted());
  EXPECT_THROW(g.all_reduce(x.t, ReduceOp::Sum), Error);
  fake_nccl::release();
}

TEST_F(NcclEnqueued, AsynchronousNcclErrorIsReported) {
  auto reported = std::make_shared<std::promise<std::string>>();
  NcclOptions options;
  options.on_watchdog_failure = [reported](const std::string& line) { reported->set_value(line); };
  NcclGroup g(MPI_COMM_SELF, CommKind::Data, nullptr, 0, kCompute, options);
  Dev x(DType::F32, {4});
  fake_nccl::hold(true);
  g.all_reduce(x.t, ReduceOp::Sum);
  fake_nccl::set_async_error(ncclRemoteError);
  auto line = reported->get_future();
  ASSERT_EQ(line.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  const std::string msg = line.get();
  EXPECT_NE(msg.find("rank 0 of 1 in the data group, device 0: NCCL reported remote process exited or there "
                     "was a network error (fake NCCL) while ncclAllReduce (16 bytes) was pending"),
            std::string::npos)
      << msg;
  EXPECT_EQ(fake_nccl::aborts(), 1);
  fake_nccl::release();
}

TEST_F(NcclEnqueued, FailedEnqueueThrowsAndAborts) {
  NcclGroup g(MPI_COMM_SELF, CommKind::Tensor, nullptr, 0, kCompute);
  Dev x(DType::F32, {4});
  fake_nccl::fail_next_operation(ncclInvalidArgument);
  try {
    g.all_reduce(x.t, ReduceOp::Sum);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ncclAllReduce failed: invalid argument (fake NCCL) on rank 0 of 1 in the "
                                         "tensor group, device 0; communicator aborted"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(g.aborted());
  EXPECT_EQ(g.pending(), 0u);
}

// Without the test hook the watchdog ends the process: the line, then the
// abort, then exit status 1.
TEST(NcclEnqueuedDeathTest, LateOperationEndsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto hang = [] {
    fake_nccl::reset();
    NcclOptions options;
    options.timeout_s = 0.05;
    NcclGroup g(MPI_COMM_SELF, CommKind::Data, nullptr, 0, kCompute, options);
    Dev x(DType::F32, {4});
    fake_nccl::hold(true);
    g.all_reduce(x.t, ReduceOp::Sum);
    for (;;) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the host waits, forever
  };
  EXPECT_EXIT(hang(), ::testing::ExitedWithCode(1),
              "sptrain: rank 0/1 \\([^)]*\\): error: rank 0 of 1 in the data group, device 0: ncclAllReduce "
              "\\(16 bytes\\) did not finish within 0.05 s .*aborting the communicator and ending the process");
}

}  // namespace
}  // namespace sptrain
