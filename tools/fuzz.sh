#!/usr/bin/env bash
# Builds every libFuzzer harness of fuzz/ (clang, ASan + UBSan, build-fuzz/) and
# runs each on its committed corpus for SECONDS (default 60), one at a time.
#
#   bash tools/fuzz.sh [SECONDS] [HARNESS...]      # e.g. tools/fuzz.sh 1800 config
#
# Exits non-zero when any harness finds a crash, a sanitizer error, a leak, an
# input slower than FUZZ_TIMEOUT seconds (default 10) or one that needs more than
# FUZZ_RSS_MB (default 2048) of memory or a single allocation above
# FUZZ_MALLOC_MB (default 1024). Prints executions and coverage per harness.
# The failing input is kept as build-fuzz/artifacts/HARNESS-crash-*, and new
# inputs the fuzzer found go to build-fuzz/corpus/HARNESS (not fuzz/corpus:
# copy the ones worth keeping there by hand, regression inputs included).
# docs/security.md has the record of the long runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

seconds="${1:-60}"
shift || true
timeout_s="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
malloc_mb="${FUZZ_MALLOC_MB:-1024}"
build=build-fuzz

echo "== fuzz: build (clang, fuzzer + address + undefined) in $build/"
mkdir -p "$build"
if [[ ! -f $build/CMakeCache.txt ]]; then
  # -O1 with line tables and without NDEBUG: readable reports, and the
  # libraries' own assertions (nlohmann's) are checked too.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
    -DSPTRAIN_SANITIZE=fuzzer-no-link,address,undefined -DSPTRAIN_FUZZ=ON \
    -DSPTRAIN_BUILD_TESTS=OFF -DSPTRAIN_CUDA=OFF > "$build/build.log" 2>&1 || { cat "$build/build.log"; exit 1; }
fi
cmake --build "$build" -j "$(nproc)" --target fuzzers >> "$build/build.log" 2>&1 ||
  { grep -E "error|FAILED" -A3 "$build/build.log" | head -60; exit 1; }

harnesses=("$@")
if [[ ${#harnesses[@]} -eq 0 ]]; then
  for dir in fuzz/corpus/*/; do harnesses+=("$(basename "$dir")"); done
fi

# LeakSanitizer runs at the end of each input; halt_on_error makes UBSan fatal
# even for checks that recover by default.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
# Reports with function names and lines (clang 19's runtime needs its own symbolizer).
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-/usr/lib/llvm-19/bin/llvm-symbolizer}"

mkdir -p "$build/artifacts"
failed=()
printf '\n%-18s %12s %8s %8s %8s  %s\n' harness executions cov ft corpus result
for name in "${harnesses[@]}"; do
  binary="$build/fuzz/$name"
  [[ -x $binary ]] || { echo "fuzz: no harness $name ($binary)"; exit 1; }
  work="$build/corpus/$name"
  mkdir -p "$work"
  args=(-max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb"
        -malloc_limit_mb="$malloc_mb" -print_final_stats=1
        -artifact_prefix="$build/artifacts/$name-")
  [[ -f fuzz/$name.dict ]] && args+=(-dict="fuzz/$name.dict")
  log="$build/$name.log"
  rc=0
  nice -n 10 "$binary" "${args[@]}" "$work" "fuzz/corpus/$name" > "$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  status=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$status")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<< "$status")
  result=ok
  if [[ $rc -ne 0 ]]; then
    result="FAILED (rc $rc, log $log)"
    failed+=("$name")
  fi
  printf '%-18s %12s %8s %8s %8s  %s\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  for name in "${failed[@]}"; do
    echo
    echo "== $name: the end of $build/$name.log"
    grep -v -E '^#[0-9]+' "$build/$name.log" | tail -40
  done
  echo "fuzz: ${#failed[@]} harness(es) failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#harnesses[@]} harnesses, $seconds s each, no finding"
