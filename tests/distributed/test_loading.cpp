// Each rank reads and keeps only its share of the frozen weights: its
// stage's layers, its tensor-parallel rows or columns, the embedding rows of
// its vocabulary range on the first stage, the head on the last. The
// resident bytes (Stage::weight_bytes) must equal the formula of
// docs/parallelism.md ("Loading") exactly.
#include <gtest/gtest.h>

#include <cstdio>

#include "dist_env.hpp"

namespace sptrain::dist {
namespace {

// Values a rank at tensor rank `t` of `tp`, holding stage `stage`, keeps
// resident: the formula of docs/parallelism.md ("Loading"), which the memory
// planner uses too (stage_weights, model/stage.hpp).
WeightShare expected_share(const ModelConfig& m, const StageSpec& stage, int t, int tp,
                           bool vocab_loss, int n_labels) {
  return stage_weights(m, local_dims(m, t, tp), stage, vocab_loss, n_labels);
}

std::string loading_name(const ::testing::TestParamInfo<std::pair<Family, const char*>>& p) {
  return std::string(family_label(p.param.first)) + "_" + p.param.second;
}

class Loading : public ::testing::TestWithParam<std::pair<Family, const char*>> {};

TEST_P(Loading, EachRankHoldsExactlyItsShareOfTheWeights) {
  const auto [family, loss] = GetParam();
  const ProcessGrid& g = grid();
  const Config c = make_config(family, loss, "1f1b", g.layout.tensor, g.layout.pipeline,
                               test::temp_path("loading_run"));
  Session s(c, new_grid(), SessionMode::Train);
  const ModelConfig& m = s.model;
  const bool vocab = c.task.loss == "vocab";
  const int n_labels = int(c.task.labels.size());
  const WeightShare want = expected_share(m, s.stage->spec(), g.coords.tp, g.layout.tensor, vocab, n_labels);
  EXPECT_EQ(s.stage->weight_bytes(), 4 * want.total())
      << "rank " << g.world_rank << " (tp " << g.coords.tp << ", stage " << g.coords.pp << ")";

  // The formula for one rank holding everything is what one rank really holds.
  Config one = c;
  one.parallel.tensor = one.parallel.pipeline = 1;
  Session whole(one, make_solo_grid(), SessionMode::Train);
  const WeightShare all = expected_share(m, whole.stage->spec(), 0, 1, vocab, n_labels);
  EXPECT_EQ(whole.stage->weight_bytes(), 4 * all.total());
  EXPECT_EQ(all.blocks, m.block_params()) << "the split matrices are the model's block weights";

  // Without replicated key/value heads, the ranks of one replica hold the
  // block matrices exactly once between them.
  const int64_t blocks_in_replica = world_sum(g.coords.dp == 0 ? want.blocks : 0);
  if (m.n_kv_heads >= g.layout.tensor) EXPECT_EQ(blocks_in_replica, m.block_params());
  else EXPECT_GT(blocks_in_replica, m.block_params());

  const double share = double(s.stage->weight_bytes()) / double(whole.stage->weight_bytes());
  const double block_share = double(want.blocks) / double(m.block_params());
  const double worst = world_max(share);
  if (world_rank() == 0)
    std::printf("[layout %s %s/%s] rank 0 holds %lld of %lld weight bytes (%.1f%%; %.1f%% of the "
                "block matrices); the largest rank holds %.1f%%\n",
                layout_name().c_str(), family_label(family), loss,
                static_cast<long long>(s.stage->weight_bytes()),
                static_cast<long long>(whole.stage->weight_bytes()), 100 * share, 100 * block_share,
                100 * worst);
}

INSTANTIATE_TEST_SUITE_P(Layout, Loading,
                         ::testing::Values(std::make_pair(Family::Llama, "labels"),
                                           std::make_pair(Family::Llama, "vocab"),
                                           std::make_pair(Family::Gpt, "labels"),
                                           std::make_pair(Family::Gpt, "vocab")),
                         loading_name);

}  // namespace
}  // namespace sptrain::dist
