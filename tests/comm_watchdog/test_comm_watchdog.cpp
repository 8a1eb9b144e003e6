// The communication watchdog's bookkeeping (include/sptrain/comm/comm_watchdog.hpp),
// on the CPU: operations are fakes whose "finished" flag the test sets, the
// clock is the test's, and on_failure records instead of ending the process.
// The NCCL side (events, abort) is in src/comm/nccl; its enqueue logic is
// tested on the CPU against a fake NCCL in tests/backend_cuda/emu.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "sptrain/comm/comm_watchdog.hpp"
#include "sptrain/core/error.hpp"

namespace sptrain {
namespace {

const std::string kWho = "rank 3 of 8 in the tensor group, device 1";

// A watchdog without a thread, on a clock the test moves.
struct Manual {
  double clock = 100;
  std::vector<std::string> failures;
  int error_queries = 0;
  std::string comm_error;
  CommWatchdog dog{CommWatchdog::Hooks{kWho,
                                       [this] {
                                         ++error_queries;
                                         return comm_error;
                                       },
                                       [this](const std::string& m) { failures.push_back(m); },
                                       [this] { return clock; }},
                   0};
};

// An operation whose completion and release the test sees.
struct FakeOp {
  bool done = false;
  int released = 0;
  CommWatchdog::Op op(const std::string& what, double timeout_s) {
    return CommWatchdog::Op{what, timeout_s, [this] { return done; }, [this] { ++released; }};
  }
};

TEST(CommWatchdog, RetiresFinishedOperationsInStreamOrder) {
  Manual m;
  FakeOp a, b, c;
  m.dog.watch(a.op("ncclAllReduce", 10));
  m.dog.watch(b.op("ncclSend/ncclRecv", 10));
  m.dog.watch(c.op("ncclBroadcast", 10));
  EXPECT_EQ(m.dog.poll(), 3u);
  a.done = true;
  EXPECT_EQ(m.dog.poll(), 2u);
  EXPECT_EQ(a.released, 1);
  // c reports done before b: the stream runs them in order, so c waits for b.
  c.done = true;
  EXPECT_EQ(m.dog.poll(), 2u);
  EXPECT_EQ(c.released, 0);
  b.done = true;
  EXPECT_EQ(m.dog.poll(), 0u);
  EXPECT_EQ(a.released + b.released + c.released, 3);
  EXPECT_TRUE(m.failures.empty());
  // Nothing pending: the communicator is not asked.
  const int asked = m.error_queries;
  m.dog.poll();
  EXPECT_EQ(m.error_queries, asked);
}

TEST(CommWatchdog, LateOperationFailsOnceNamingRankGroupAndOperation) {
  Manual m;
  FakeOp a, b;
  m.dog.watch(a.op("ncclAllReduce (4096 bytes)", 5));
  m.clock += 2;
  m.dog.watch(b.op("ncclSend/ncclRecv (128 bytes)", 5));
  m.clock += 3;  // exactly at a's deadline: not late yet
  m.dog.poll();
  EXPECT_TRUE(m.failures.empty());
  m.clock += 0.5;
  m.dog.poll();
  ASSERT_EQ(m.failures.size(), 1u);
  EXPECT_EQ(m.failures[0], CommWatchdog::late_message(kWho, "ncclAllReduce (4096 bytes)", 5));
  EXPECT_NE(m.failures[0].find("rank 3 of 8 in the tensor group"), std::string::npos) << m.failures[0];
  EXPECT_NE(m.failures[0].find("ncclAllReduce (4096 bytes) did not finish within 5 s"), std::string::npos)
      << m.failures[0];
  EXPECT_TRUE(m.dog.failed());
  m.clock += 100;
  m.dog.poll();  // failed: no second report
  EXPECT_EQ(m.failures.size(), 1u);
}

TEST(CommWatchdog, EachOperationHasItsOwnDeadline) {
  Manual m;
  FakeOp slow, quick;
  m.dog.watch(slow.op("ncclAllReduce", 60));
  m.dog.watch(quick.op("barrier (ncclAllReduce)", 1));  // e.g. set_timeout lowered in between
  m.clock += 1.5;
  m.dog.poll();
  ASSERT_EQ(m.failures.size(), 1u);
  EXPECT_NE(m.failures[0].find("barrier (ncclAllReduce) did not finish within 1 s"), std::string::npos)
      << m.failures[0];
}

TEST(CommWatchdog, CommunicatorErrorFails) {
  Manual m;
  FakeOp a;
  m.dog.watch(a.op("ncclAllGather", 60));
  m.dog.poll();
  EXPECT_TRUE(m.failures.empty());
  m.comm_error = "ncclRemoteError: remote process exited";
  m.dog.poll();
  ASSERT_EQ(m.failures.size(), 1u);
  EXPECT_EQ(m.failures[0], kWho + ": ncclRemoteError: remote process exited while ncclAllGather was pending");
}

TEST(CommWatchdog, AnOperationThatCannotTellFails) {
  Manual m;
  CommWatchdog::Op op{"ncclBroadcast", 60,
                      [] () -> bool { throw Error("cudaEventQuery failed: an illegal memory access"); }, {}};
  m.dog.watch(op);
  m.dog.poll();
  ASSERT_EQ(m.failures.size(), 1u);
  EXPECT_EQ(m.failures[0], kWho + ": ncclBroadcast: cudaEventQuery failed: an illegal memory access");
}

TEST(CommWatchdog, DropAllAndDestructionReleaseEverything) {
  FakeOp a, b, c;
  {
    Manual m;
    m.dog.watch(a.op("x", 1));
    m.dog.watch(b.op("y", 1));
    m.dog.drop_all();
    EXPECT_EQ(m.dog.pending(), 0u);
    m.clock += 10;
    m.dog.poll();
    EXPECT_TRUE(m.failures.empty());
    m.dog.watch(c.op("z", 1));
  }
  EXPECT_EQ(a.released, 1);
  EXPECT_EQ(b.released, 1);
  EXPECT_EQ(c.released, 1);
}

// The thread, on the real clock: it retires a finished operation and reports
// one that never finishes. The waits below only guard against a hang of the
// test itself; nothing is timed.
TEST(CommWatchdog, ThreadRetiresAndReportsOnItsOwn) {
  auto reported = std::make_shared<std::promise<std::string>>();
  std::atomic<bool> once{false}, done{false};
  std::atomic<int> released{0};
  CommWatchdog dog(CommWatchdog::Hooks{kWho, {},
                                       [reported, &once](const std::string& m) {
                                         if (!once.exchange(true)) reported->set_value(m);
                                       },
                                       {}},
                   0.001);
  dog.watch(CommWatchdog::Op{"ncclAllReduce", 600, [&] { return done.load(); }, [&] { ++released; }});
  done = true;
  for (int i = 0; i < 60000 && dog.pending() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(dog.pending(), 0u);
  EXPECT_EQ(released.load(), 1);

  dog.watch(CommWatchdog::Op{"ncclSend/ncclRecv", 0.01, [] { return false; }, {}});
  auto message = reported->get_future();
  ASSERT_EQ(message.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(message.get(), CommWatchdog::late_message(kWho, "ncclSend/ncclRecv", 0.01));
}

// NcclGroup's on_failure: the line first, then the communicator's abort, then
// exit status 1.
TEST(CommWatchdogDeathTest, EndsTheProcessAfterTheMessageAndTheAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(end_process_after_comm_failure("sptrain: rank 3/8 (node7): error: late", [] {
    std::fputs("communicator aborted\n", stderr);
  }),
              ::testing::ExitedWithCode(1), "rank 3/8 \\(node7\\): error: late\n.*communicator aborted");
  // An abort that throws does not stop the exit.
  EXPECT_EXIT(end_process_after_comm_failure("sptrain: error: late", [] { throw Error("abort failed"); }),
              ::testing::ExitedWithCode(1), "error: late");
}

}  // namespace
}  // namespace sptrain
