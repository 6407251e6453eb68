#!/usr/bin/env bash
# Builds `mcsfau-train` (training path only: schemas + model, no FFmpeg, no
# polars) with the stripped `gpu` profile and checks what travels to a GPU
# machine: the binary must stay under 64 MiB and must not link FFmpeg.
# Usage: scripts/build-gpu-bundle.sh   (env: LIBTORCH, default .venv/libtorch)
# Output: target/gpu/mcsfau-train. Then see docs/gpu.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export LIBTORCH="${LIBTORCH:-$PWD/.venv/libtorch}"
cargo build --profile gpu -p mcsfau-model --bin mcsfau-train
bin=target/gpu/mcsfau-train
bytes=$(stat -c %s "$bin")
limit=$((64 * 1024 * 1024))
printf 'mcsfau-train: %s bytes (%.1f MiB), limit %d MiB\n' "$bytes" "$(echo "$bytes / 1048576" | bc -l)" 64
if [ "$bytes" -ge "$limit" ]; then
    echo "error: $bin is over 64 MiB" >&2
    exit 1
fi
if ldd "$bin" | grep -E 'libav(codec|format|util)|libswscale'; then
    echo "error: $bin links FFmpeg" >&2
    exit 1
fi
if cargo tree -p mcsfau-model -e normal --prefix none | grep -E '^(polars|ffmpeg-next) '; then
    echo "error: the model crate depends on polars or FFmpeg" >&2
    exit 1
fi
# Data-parallel training's NCCL backend (model/csrc/dist.cpp) must be in:
# the binary then imports c10d's ProcessGroupNCCL from libtorch_cuda.so.
if ! nm -D --undefined-only "$bin" | grep ProcessGroupNCCL > /dev/null; then
    echo "error: $bin was built without the NCCL backend (see the cargo warning of mcsfau-model's build script)" >&2
    exit 1
fi
echo "ok: NCCL and Gloo backends compiled in"
echo "ok: libtorch libraries it needs (found on the GPU machine via LD_LIBRARY_PATH):"
readelf -d "$bin" | awk '/NEEDED/ {print "  " $NF}' | tr -d '[]'
