#!/usr/bin/env bash
# Runs the GPU work of docs/benchmarks/gpu.md on a machine that cannot build
# sptrain, from the archive bench/gpu_pack.sh made: the GPU test suite, the
# 175B-stage benchmark (both families) and PyTorch + PEFT on the same stage.
# Everything it prints also goes to $OUT (the device tool's folder) when set.
#
#   bash bench/gpu_run_packed.sh [suite] [stage] [peft]     # default: all three
#
# Environment (all optional):
#   PACK     the archive (default .gpu-pack/sptrain-gpu.tar.xz)
#   STEPS, WARMUP   timed and untimed steps of the benchmarks (default 20 and 3)
#   OUT      folder for the logs and JSON (default runs/gpu/DATE)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
pack=${PACK:-.gpu-pack/sptrain-gpu.tar.xz}
steps=${STEPS:-20}
warmup=${WARMUP:-3}
out=${OUT:-runs/gpu/$(date +%Y%m%d-%H%M%S)}
parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(suite stage peft)
say() { echo "gpu_run_packed: $*" >&2; }
die() { echo "gpu_run_packed: error: $*" >&2; exit 1; }

[[ -f "$pack" ]] || die "$pack: no such archive (bench/gpu_pack.sh makes it; carry .gpu-pack)"
mkdir -p "$out"
root=$(mktemp -d /tmp/sptrain-gpu.XXXXXX)
tar -C "$root" -xJf "$pack" || die "$pack: cannot unpack"
cat "$root/MANIFEST" | head -5 >&2

# cuBLASLt and NCCL: the CUDA toolkit's, else the pip nvidia-* packages of
# the python3 on PATH (torch's).
libdirs="$root/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -d "$d" ]] && libdirs+=":$d"
done
if command -v python3 >/dev/null; then
  pip_dirs=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
seen = []
for r in roots:
    for pat in ("nvidia/*/lib", "nvidia/cu*/lib"):
        for d in sorted(glob.glob(os.path.join(r, pat))):
            if d not in seen:
                seen.append(d)
print(":".join(seen))
EOF
)
  [[ -n "$pip_dirs" ]] && libdirs+=":$pip_dirs"
fi
export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldd "$root/bin/sptrain" | grep -q "not found"; then
  ldd "$root/bin/sptrain" | grep "not found" >&2
  die "libraries missing on this machine (above)"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt" >&2
"$root/bin/sptrain" --version | tee "$out/version.txt" >&2

status=0
for part in "${parts[@]}"; do
  case "$part" in
    suite)
      say "GPU test suite"
      "$root/bin/test_backend_cuda" --gtest_color=no > "$out/suite.log" 2>&1 || status=1
      grep -E '^\[ +(OK|FAILED|SKIPPED) +\]|PASSED|FAILED TEST' "$out/suite.log" | tail -60
      ;;
    stage)
      for family in gpt llama; do
        say "175B TP-8 stage, $family"
        SPTRAIN="$root/bin/sptrain" FAMILY=$family bash bench/gpu_175b_stage.sh \
          --steps "$steps" --warmup "$warmup" --json > "$out/stage_$family.json" 2> "$out/stage_$family.log" || status=1
        tail -5 "$out/stage_$family.log"
        cat "$out/stage_$family.json"
      done
      ;;
    peft)
      for logits in all needed; do
        say "PyTorch + PEFT, the stage's Llama form, logits $logits"
        python3 bench/peft/peft_gpu_stage.py --steps "$steps" --warmup "$warmup" --logits "$logits" --json \
          > "$out/peft_$logits.json" 2> "$out/peft_$logits.log" || status=1
        tail -3 "$out/peft_$logits.log"
        cat "$out/peft_$logits.json"
      done
      ;;
    *) die "unknown part '$part' (suite, stage, peft)" ;;
  esac
done
say "logs and JSON in $out"
exit $status
