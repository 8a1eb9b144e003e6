#!/usr/bin/env bash
# Packs sptrain for a GPU machine that cannot install anything: the lent
# machines (the device tool) have the CUDA toolkit, torch and peft but no apt,
# no PyPI, and none of HDF5, yaml-cpp, OpenBLAS, Open MPI or PCRE2. Building
# there is not possible; so build here and carry the result.
#
#   bench/gpu_pack.sh                 # -> .gpu-pack/sptrain-gpu.tar.xz (git-ignored)
#
# The archive holds bin/sptrain, bin/test_backend_cuda and lib/: every shared
# library the two binaries load, except glibc's (the target has its own, the
# same or newer) and the GPU's own (libcuda from the driver; cuBLASLt and NCCL,
# hundreds of MB, from the target's CUDA toolkit or its pip nvidia-* packages:
# bench/gpu_run_packed.sh finds them). A plain sptrain run needs no MPI
# (docs/parallelism.md, "Starting"), so Open MPI's plugins stay behind.
# It also writes the SmolLM2 tokenizer folder (bench/peft/save_tokenizer.sh)
# when it is missing. Carry both:
#
#   run(carry=[".gpu-pack", "models/smollm2-tokenizer"], command="bash bench/gpu_run_packed.sh ...")
#
# Environment (all optional):
#   BUILD_DIR   the CUDA build to pack (default build-gpu-pack; configured and
#               built here with -DSPTRAIN_CUDA=ON, Release)
#   JOBS        build parallelism (default: all cores)
#   CHECK=0     skip the check that the packed binaries start with the system's
#               copies of the packed libraries hidden (needs `unshare -m`, root)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
build=${BUILD_DIR:-build-gpu-pack}
jobs=${JOBS:-$(nproc)}
out=.gpu-pack
say() { echo "gpu_pack: $*" >&2; }
die() { echo "gpu_pack: error: $*" >&2; exit 1; }

command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]] || die "no nvcc: the CUDA toolkit is needed to build"
[[ -x /usr/local/cuda/bin/nvcc ]] && export PATH="/usr/local/cuda/bin:$PATH"

mkdir -p "$build"
say "building sptrain and test_backend_cuda in $build (CUDA, Release)"
cmake -S . -B "$build" -G Ninja -DSPTRAIN_CUDA=ON -DCMAKE_BUILD_TYPE=Release > "$build/gpu_pack.configure.log" 2>&1 ||
  { cat "$build/gpu_pack.configure.log"; die "cmake configure failed"; }
cmake --build "$build" --target sptrain test_backend_cuda -j "$jobs" > "$build/gpu_pack.build.log" 2>&1 ||
  { tail -40 "$build/gpu_pack.build.log"; die "build failed (log: $build/gpu_pack.build.log)"; }
bins=("$build/bin/sptrain" "$build/tests/backend_cuda/test_backend_cuda")
for b in "${bins[@]}"; do [[ -x "$b" ]] || die "$b: not built"; done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
cp "${bins[@]}" "$stage/bin/"

# Libraries left to the target: glibc's, the dynamic loader, and the GPU's.
left_to_target='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|libcuda|libcublas|libcublasLt|libnccl|libnvidia)[.-]'
needed=()  # the system's files of every library the pack must bring
while read -r lib; do
  [[ "$(basename "$lib")" =~ $left_to_target ]] || needed+=("$lib")
done < <(ldd "${bins[@]}" | awk '/=>/ && $3 ~ /^\// {print $3}' | sort -u)
for lib in "${needed[@]}"; do cp -L "$lib" "$stage/lib/$(basename "$lib")"; done
missing=$(ldd "${bins[@]}" | grep "not found" || true)
[[ -z "$missing" ]] || die "unresolved libraries here: $missing"
cat > "$stage/MANIFEST" <<EOF
sptrain GPU pack, made $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')
build: $build ($(grep -E '^CMAKE_CUDA_ARCHITECTURES:' "$build/CMakeCache.txt" | cut -d= -f2 || echo '?'))
nvcc: $(nvcc --version | tail -1)
host: $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1)
left to the target: glibc, libcuda (driver), libcublasLt, libnccl
EOF
ls "$stage/lib" >> "$stage/MANIFEST"

if [[ "${CHECK:-1}" == 1 ]]; then
  # The binaries must start with only the pack's copies: hide the system's
  # copies (and Open MPI's plugin folder) in a private mount namespace.
  if unshare -m true 2>/dev/null; then
    say "checking the pack with the system's copies hidden"
    # `mount` itself may load some of these: hide those last.
    mount_needs=$(ldd "$(command -v mount)" | awk '/=>/ {print $1}')
    hide="" hide_last=""
    for path in $(for lib in "${needed[@]}"; do realpath "$lib"; done | sort -u); do
      if grep -qx "$(basename "$path")" <<<"$mount_needs" || grep -q "$(basename "$path" | cut -d. -f1)\." <<<"$mount_needs"; then
        hide_last+="mount --bind /dev/null $path; "
      else
        hide+="mount --bind /dev/null $path; "
      fi
    done
    # A real run: a tiny random model, evaluated on SST-2 dev (HDF5, yaml-cpp,
    # the tokenizer's PCRE2, OpenBLAS, OpenMP all load).
    printf '%s\n' "model: {path: $stage/check.h5}" \
      'task: {train: data/sst2/dev.tsv, eval: data/sst2/dev.tsv, template: "{text} =", labels: {"0": "n", "1": "p"}}' \
      'prompt: {length: 2}' > "$stage/check.yaml"
    [[ -d /usr/lib/x86_64-linux-gnu/openmpi ]] &&
      hide+="mount --bind $(mktemp -d) /usr/lib/x86_64-linux-gnu/openmpi; "
    unshare -m --propagation private bash -c "set -e; $hide $hide_last
      export LD_LIBRARY_PATH=$stage/lib:/usr/local/cuda/lib:/usr/local/cuda/lib64
      $stage/bin/sptrain --version >/dev/null
      $stage/bin/sptrain init-model --out $stage/check.h5 --layers 1 --d-model 16 --heads 2 >/dev/null
      $stage/bin/sptrain eval $stage/check.yaml > $stage/check.out 2>&1 || { cat $stage/check.out; exit 1; }
      $stage/bin/test_backend_cuda --gtest_filter='CudaSetup.*' > $stage/check.out 2>&1 || { cat $stage/check.out; exit 1; }" ||
      die "the packed binaries do not run with the system's libraries hidden"
    rm -f "$stage/check.yaml" "$stage/check.h5" "$stage/check.out"
  else
    say "unshare -m is not allowed here: the pack is not checked"
  fi
fi

mkdir -p "$out"
tar -C "$stage" -cJf "$out/sptrain-gpu.tar.xz.tmp" .
mv "$out/sptrain-gpu.tar.xz.tmp" "$out/sptrain-gpu.tar.xz"
say "wrote $out/sptrain-gpu.tar.xz ($(du -h "$out/sptrain-gpu.tar.xz" | cut -f1); $(ls "$stage/lib" | wc -l) libraries)"

if [[ ! -f models/smollm2-tokenizer/tokenizer.json ]]; then
  bench/peft/save_tokenizer.sh models/smollm2-tokenizer
fi
size=$(du -sm "$out" models/smollm2-tokenizer | awk '{s += $1} END {print s}')
say "to carry: $out and models/smollm2-tokenizer (${size} MB of the 64 MiB a run may carry)"
