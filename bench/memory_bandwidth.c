// Memory read bandwidth of this machine, for bench/decode_roofline.sh: greedy
// decoding at batch 1 reads every weight once per token, so tokens/s cannot
// exceed (read bandwidth) / (weight bytes). Sums a buffer far larger than the
// caches with T OpenMP threads; prints the best of REPS passes as JSON.
//   cc -O2 -fopenmp bench/memory_bandwidth.c -o membw && ./membw [MiB] [REPS]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
  const int reps = argc > 2 ? atoi(argv[2]) : 5;
  const size_t n = mib * 1024 * 1024 / sizeof(float);
  float* a = malloc(n * sizeof(float));
  if (!a) {
    fprintf(stderr, "memory_bandwidth: cannot allocate %zu MiB\n", mib);
    return 1;
  }
#pragma omp parallel for
  for (size_t i = 0; i < n; ++i) a[i] = (float)(i & 1023);  // touch every page
  double best = 1e30, sink = 0;
  for (int r = 0; r < reps; ++r) {
    const double t0 = omp_get_wtime();
    double total = 0;
    // Vector sums over 16 KiB blocks: the adds are not the bottleneck.
#pragma omp parallel for reduction(+ : total)
    for (size_t b = 0; b < n; b += 4096) {
      const size_t e = b + 4096 < n ? b + 4096 : n;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (size_t j = b; j < e; ++j) s += a[j];
      total += s;
    }
    const double t = omp_get_wtime() - t0;
    if (t < best) best = t;
    sink += total;
  }
  printf("{\"threads\": %d, \"mib\": %zu, \"best_s\": %.6f, \"read_gb_per_s\": %.3f, \"checksum\": %.1f}\n",
         omp_get_max_threads(), mib, best, (double)(n * sizeof(float)) / best / 1e9, sink);
  free(a);
  return 0;
}
