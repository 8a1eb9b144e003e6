// Choosing the next token: greedy, and sampling whose frequencies follow the
// softmax of logits / temperature restricted to the top-k and to the top-p
// nucleus, reproducibly from a seed.
#include <gtest/gtest.h>

#include <cmath>

#include "sptrain/generate/sampling.hpp"

namespace sptrain {
namespace {

// Frequencies of each token over n draws.
std::vector<double> frequencies(const std::vector<double>& logits, const SamplingOptions& o, int n) {
  Rng rng(7);
  SamplingScratch scratch;
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < n; ++i) f[size_t(choose_token(logits.data(), int64_t(logits.size()), 1, o, rng, scratch))] += 1.0 / n;
  return f;
}

// Logits whose softmax is p.
std::vector<double> logits_of(const std::vector<double>& p) {
  std::vector<double> z;
  for (double v : p) z.push_back(std::log(v) + 3.0);
  return z;
}

TEST(Sampling, GreedyTakesTheLargestLogitAndTheLowestIdOnTies) {
  Rng rng(1);
  SamplingScratch s;
  const std::vector<double> z{0.5, 2.0, -1.0, 2.0, 1.9};
  EXPECT_EQ(choose_token(z.data(), 5, 1, SamplingOptions{}, rng, s), 1);
  // A column of a [V, S] matrix: stride S.
  const std::vector<double> m{0, 9, 1, 8, 7, 0};  // [3, 2]: column 0 = {0, 1, 7}, column 1 = {9, 8, 0}
  EXPECT_EQ(choose_token(m.data(), 3, 2, SamplingOptions{}, rng, s), 2);
  EXPECT_EQ(choose_token(m.data() + 1, 3, 2, SamplingOptions{}, rng, s), 0);
  // top_k 1 at any temperature is greedy.
  EXPECT_EQ(choose_token(z.data(), 5, 1, SamplingOptions{1.5, 1, 1.0}, rng, s), 1);
}

TEST(Sampling, FrequenciesFollowTheSoftmaxOfLogitsOverTemperature) {
  const std::vector<double> p{0.5, 0.3, 0.15, 0.05};
  const std::vector<double> f = frequencies(logits_of(p), SamplingOptions{1.0, 0, 1.0}, 60000);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(f[i], p[i], 0.01) << i;
  // Temperature 2: proportional to sqrt(p).
  const std::vector<double> f2 = frequencies(logits_of(p), SamplingOptions{2.0, 0, 1.0}, 60000);
  double norm = 0;
  for (double v : p) norm += std::sqrt(v);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(f2[i], std::sqrt(p[i]) / norm, 0.01) << i;
}

TEST(Sampling, TopKAndTopPKeepOnlyTheMostLikely) {
  const std::vector<double> p{0.15, 0.5, 0.05, 0.3};
  // top-k 2: tokens 1 and 3, renormalised.
  const std::vector<double> k = frequencies(logits_of(p), SamplingOptions{1.0, 2, 1.0}, 40000);
  EXPECT_EQ(k[0], 0.0);
  EXPECT_EQ(k[2], 0.0);
  EXPECT_NEAR(k[1], 0.5 / 0.8, 0.01);
  // top-p 0.7: 0.5 alone is short of it, 0.5 + 0.3 reaches it.
  const std::vector<double> n = frequencies(logits_of(p), SamplingOptions{1.0, 0, 0.7}, 40000);
  EXPECT_EQ(n[0] + n[2], 0.0);
  EXPECT_NEAR(n[1], 0.5 / 0.8, 0.01);
  // top-p below the most likely token's probability keeps that one token.
  const std::vector<double> one = frequencies(logits_of(p), SamplingOptions{1.0, 0, 0.1}, 1000);
  EXPECT_NEAR(one[1], 1.0, 1e-9);
}

TEST(Sampling, TheSameSeedDrawsTheSameTokens) {
  const std::vector<double> z{0.1, 0.2, 0.3, 0.4, 0.5};
  auto draw = [&](uint64_t seed) {
    Rng rng(seed);
    SamplingScratch s;
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(choose_token(z.data(), 5, 1, SamplingOptions{1.0, 0, 0.9}, rng, s));
    return out;
  };
  EXPECT_EQ(draw(3), draw(3));
  EXPECT_NE(draw(3), draw(4));
}

}  // namespace
}  // namespace sptrain
