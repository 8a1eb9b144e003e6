#include "sptrain/generate/sampling.hpp"

#include <algorithm>
#include <cmath>

#include "sptrain/core/error.hpp"

namespace sptrain {

int32_t choose_token(const double* logits, int64_t V, int64_t stride, const SamplingOptions& o,
                     Rng& rng, SamplingScratch& work) {
  SPT_CHECK(V >= 1, "internal error: choosing a token from an empty vocabulary");
  if (o.temperature <= 0) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (logits[v * stride] > logits[best * stride]) best = v;
    return int32_t(best);
  }
  work.clear();
  for (int64_t v = 0; v < V; ++v) work.emplace_back(logits[v * stride] / o.temperature, int32_t(v));
  // Most likely first; equal logits by id, so the order never depends on the sort.
  auto before = [](const std::pair<double, int32_t>& a, const std::pair<double, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  const size_t k = o.top_k > 0 ? std::min(size_t(o.top_k), work.size()) : work.size();
  std::partial_sort(work.begin(), work.begin() + long(k), work.end(), before);
  work.resize(k);
  // Probabilities (unnormalised) of the kept tokens, in the same order.
  const double top = work.front().first;
  double sum = 0;
  for (auto& [z, id] : work) sum += (z = std::exp(z - top));
  if (o.top_p < 1.0) {
    double cum = 0;
    size_t keep = 0;
    while (keep < work.size() && cum < o.top_p * sum) cum += work[keep++].first;
    work.resize(std::max<size_t>(keep, 1));
    sum = 0;
    for (const auto& w : work) sum += w.first;
  }
  double u = rng.uniform() * sum;
  for (const auto& [p, id] : work) {
    if (u < p) return id;
    u -= p;
  }
  return work.back().second;  // rounding left u at the end
}

}  // namespace sptrain
