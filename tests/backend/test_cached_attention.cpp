// Generation's ops: kv_cache_store and attention_cached (backend.hpp,
// CacheIndex) against plain loops in double precision: runs with and
// without a shared prefix, of one row (a generated token) and of several
// (an input after its prompt), grouped-query heads.
#include <gtest/gtest.h>

#include <cmath>

#include "../support/test_util.hpp"
#include "sptrain/backend/cpu/cpu_backend.hpp"

namespace sptrain {
namespace {

using test::random_tensor;
using test::to_host;

struct CacheRun {
  int rows;          // new rows
  int prefix_start, prefix_len;
  int own_start, own_len;  // the new rows are the last `rows` of the own rows
};

struct Index {
  CacheIndex idx;
  std::vector<Buffer> keep;
};

void build(CpuBackend& be, Index& out, const std::vector<CacheRun>& runs) {
  CacheIndex& x = out.idx;
  x.host_q_offsets.push_back(0);
  for (const CacheRun& r : runs) {
    for (int i = 0; i < r.rows; ++i) x.host_cache_rows.push_back(r.own_start + r.own_len - r.rows + i);
    x.num_rows += r.rows;
    x.host_q_offsets.push_back(x.num_rows);
    x.host_prefix_start.push_back(r.prefix_start);
    x.host_prefix_len.push_back(r.prefix_len);
    x.host_own_start.push_back(r.own_start);
    x.host_own_len.push_back(r.own_len);
    x.max_keys = std::max(x.max_keys, r.prefix_len + r.own_len);
  }
  x.num_seqs = int(runs.size());
  auto upload = [&](const std::vector<int32_t>& v) {
    Buffer b = be.allocate(DType::I32, Shape{int64_t(v.size())});
    be.copy_from_host(b, v.data());
    Tensor t = b.view();
    out.keep.push_back(std::move(b));
    return t;
  };
  x.q_offsets = upload(x.host_q_offsets);
  x.prefix_start = upload(x.host_prefix_start);
  x.prefix_len = upload(x.host_prefix_len);
  x.own_start = upload(x.host_own_start);
  x.own_len = upload(x.host_own_len);
  x.cache_rows = upload(x.host_cache_rows);
}

class CachedAttention : public ::testing::TestWithParam<DType> {};

TEST_P(CachedAttention, StoreAndAttendMatchLoops) {
  const DType dt = GetParam();
  const int H = 4, Hkv = 2, D = 3, W = (H + 2 * Hkv) * D, KV = 2 * Hkv * D, C = 48;
  const float scale = 0.7f;
  CpuBackend be(2);
  Rng rng(11);
  // Prompt rows 0..4 (a prefix two runs share); three sequences' own regions.
  const std::vector<CacheRun> runs = {{3, 0, 5, 10, 6}, {4, 0, 0, 20, 4}, {1, 0, 5, 30, 8}, {2, 40, 3, 44, 2}};
  Index index;
  build(be, index, runs);
  const CacheIndex& idx = index.idx;
  Buffer qkv = random_tensor(be, dt, Shape{idx.num_rows, W}, rng);
  Buffer cache = random_tensor(be, dt, Shape{C, KV}, rng);
  const std::vector<double> before = to_host(be, cache);
  be.reserve_attention(idx.num_rows, idx.max_keys, H, W);

  be.kv_cache_store(cache, qkv, H, Hkv, idx);
  const std::vector<double> q = to_host(be, qkv), c = to_host(be, cache);
  // The new rows' k|v columns went to their cache rows; nothing else moved.
  std::vector<int> source(C, -1);
  for (int i = 0; i < idx.num_rows; ++i) source[size_t(idx.host_cache_rows[size_t(i)])] = i;
  for (int r = 0; r < C; ++r)
    for (int j = 0; j < KV; ++j) {
      const double want = source[size_t(r)] >= 0 ? q[size_t(source[size_t(r)] * W + H * D + j)] : before[size_t(r * KV + j)];
      ASSERT_EQ(c[size_t(r * KV + j)], want) << "cache row " << r << " column " << j;
    }

  Buffer out = be.allocate(dt, Shape{idx.num_rows, H * D});
  be.attention_cached(out, qkv, cache, H, Hkv, idx, scale);
  const std::vector<double> o = to_host(be, out);
  const double tol = dt == DType::F64 ? 1e-12 : 2e-6;
  for (size_t s = 0; s < runs.size(); ++s) {
    const CacheRun& r = runs[s];
    for (int i = 0; i < r.rows; ++i) {
      const int row = idx.host_q_offsets[s] + i;
      // Keys: the prefix, then the own rows up to this new row.
      std::vector<int> keys;
      for (int k = 0; k < r.prefix_len; ++k) keys.push_back(r.prefix_start + k);
      for (int k = 0; k <= r.own_len - r.rows + i; ++k) keys.push_back(r.own_start + k);
      for (int h = 0; h < H; ++h) {
        const int g = h / (H / Hkv);
        std::vector<double> p;
        double mx = -1e300, sum = 0;
        for (int key : keys) {
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += q[size_t(row * W + h * D + d)] * c[size_t(key * KV + g * D + d)];
          p.push_back(double(scale) * dot);
          mx = std::max(mx, p.back());
        }
        for (double& v : p) sum += (v = std::exp(v - mx));
        for (int d = 0; d < D; ++d) {
          double want = 0;
          for (size_t k = 0; k < keys.size(); ++k)
            want += p[k] / sum * c[size_t(keys[k] * KV + Hkv * D + g * D + d)];
          EXPECT_NEAR(o[size_t(row * H * D + h * D + d)], want, tol) << "run " << s << " row " << i << " head " << h;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CachedAttention, ::testing::Values(DType::F64, DType::F32),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(dtype_name(i.param)); });

TEST(CachedAttention, RefusesMoreKeysThanReserved) {
  CpuBackend be(1);
  Rng rng(3);
  Index index;
  build(be, index, {{2, 0, 4, 8, 6}});
  Buffer qkv = random_tensor(be, DType::F32, Shape{2, 12}, rng);
  Buffer cache = random_tensor(be, DType::F32, Shape{16, 6}, rng);
  Buffer out = be.allocate(DType::F32, Shape{2, 6});
  be.reserve_attention(2, 5, 2, 12);  // 10 keys needed
  EXPECT_THROW(be.attention_cached(out, qkv, cache, 2, 1, index.idx, 1.f), Error);
}

}  // namespace
}  // namespace sptrain
