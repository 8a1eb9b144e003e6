// The packing of micro-batches: prompt rows outside the prompt tensor are
// refused where the batch is made, before any back end sees them (the CPU
// embedding asserts on one; the CUDA kernel could only write zeros).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sptrain/backend/cpu/cpu_backend.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/model/batch.hpp"

namespace sptrain {
namespace {

using ::testing::HasSubstr;

TEST(PackedBatchWriter, PromptRowsMustLieInThePrompt) {
  CpuBackend be{1};
  EncodedExample ex;
  ex.tokens = {5, 6, 7};
  ex.label = 1;
  ex.label_token = 9;

  // A stack of two prompts of 4 and 3 rows (7 rows): rows 4..6 are the second.
  PackedBatchWriter writer(be, /*max_rows=*/32, /*max_seqs=*/2, /*max_segments=*/4, /*prompt_rows=*/7,
                           /*max_targets=*/2);
  MicroBatch mb;
  writer.begin(mb, 1);
  writer.add_segment(3 + 3, 0, 0);
  writer.add_prompt_rows(4, 3);
  writer.add_example(ex, 3);
  writer.finish();
  EXPECT_EQ(mb.prompt_rows, 3);
  EXPECT_EQ(mb.text_rows, 3);
  const std::vector<int32_t> want = {-5, -6, -7, 5, 6, 7};  // prompt row r is token -1 - r
  std::vector<int32_t> got(want.size());
  be.copy_to_host(got.data(), mb.tokens);
  EXPECT_EQ(got, want);

  for (auto [first, P] : {std::pair<int64_t, int>{5, 3}, {-1, 2}, {7, 1}}) {
    MicroBatch bad;
    writer.begin(bad, 1);
    writer.add_segment(P + 3, 0, 0);
    try {
      writer.add_prompt_rows(first, P);
      ADD_FAILURE() << "rows " << first << " + " << P << " were accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("outside the prompt's 7 rows")) << first;
    }
  }
}

TEST(BatchBuilder, EveryLayoutStaysInsideItsPrompt) {
  CpuBackend be{1};
  EncodedExample a, b;
  a.tokens = {1, 2};
  b.tokens = {3, 4, 5};
  for (bool share : {true, false}) {
    BatchBuilder builder(be, /*prompt_len=*/4, /*max_rows=*/64, /*max_seqs=*/2, share);
    MicroBatch mb;
    builder.fill(mb, {&a, &b});
    std::vector<int32_t> tokens(size_t(mb.seq.num_rows));
    be.copy_to_host(tokens.data(), mb.tokens.slice_rows(0, mb.seq.num_rows));
    for (int32_t t : tokens) EXPECT_GE(t, -4) << (share ? "shared" : "per example");
    EXPECT_EQ(mb.prompt_rows, share ? 4 : 8);
  }
}

// A generate task's examples: the target's tokens but the last follow the
// text as input rows, and every target token is read at the row before it.
TEST(BatchBuilder, GenerateTargetsAreTeacherForced) {
  CpuBackend be{1};
  EncodedExample a, b;
  a.tokens = {5, 6, 7};
  a.target = {20, 21, 2};  // 2: end-of-sequence
  b.tokens = {8};
  b.target = {2};
  BatchBuilder builder(be, /*prompt_len=*/2, /*max_rows=*/16, /*max_seqs=*/2, true, /*max_answer=*/3);
  MicroBatch mb;
  builder.fill(mb, {&a, &b});
  // [prompt 0, prompt 1 | 5 6 7 20 21 | 8]
  std::vector<int32_t> tokens(size_t(mb.seq.num_rows)), rows(size_t(mb.targets)), targets(size_t(mb.targets));
  be.copy_to_host(tokens.data(), mb.tokens);
  be.copy_to_host(rows.data(), mb.target_rows);
  be.copy_to_host(targets.data(), mb.token_targets);
  EXPECT_EQ(tokens, (std::vector<int32_t>{-1, -2, 5, 6, 7, 20, 21, 8}));
  EXPECT_EQ(mb.targets, 4);
  EXPECT_EQ(rows, (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(targets, (std::vector<int32_t>{20, 21, 2, 2}));
  EXPECT_EQ(mb.seq.host_answer_rows, (std::vector<int32_t>{4, 7}));
  EXPECT_EQ(mb.seq.host_positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 2}));
  EXPECT_EQ(mb.text_rows, 6);
  // More target rows than the builder was sized for is refused.
  EncodedExample c = a;
  c.target = {1, 2, 3, 4};
  EXPECT_THROW(builder.fill(mb, {&c, &c}), Error);
}

}  // namespace
}  // namespace sptrain
