#!/usr/bin/env bash
# One-command set-up for mcsfau on a fresh Debian 12 machine (or a prepared one,
# in seconds). Installs, from the package registries only:
#   - Debian: FFmpeg 5.1 dev libraries + CLI, clang/pkg-config (ffmpeg-next),
#     dlib + its 68-point shape predictor + OpenBLAS (the `dlib` landmarks),
#     Gloo's headers (data-parallel training's CPU backend, model/csrc/dist.cpp);
#   - a project venv (.venv) with PyTorch 2.11.0 (the libtorch tch 0.24 links),
#     pyarrow and DuckDB (the shard round-trip test),
#     torchvision, and the Python references the tests compare against;
#   - `just` (PyPI rust-just) into the venv.
# Then it points cargo at the venv's libtorch through .venv/libtorch.
#
# To use an existing PyTorch 2.11 instead (a cluster's CUDA venv), export
# MCSFAU_TORCH_PYTHON=/path/to/venv/bin/python before running this script: the
# project venv is then created with --system-site-packages on top of it and
# .venv/libtorch links to that interpreter's torch package.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
TORCHVISION_VERSION=0.26.0
PY_PACKAGES=(
  "numpy>=2,<3" "safetensors==0.7.0" "pyarrow>=18" "pandas>=2.2"
  "scikit-learn>=1.5" "scipy>=1.13" "pillow>=10" "duckdb==1.4.2" "face-alignment==1.5.0" "packaging>=24"
  "rust-just==1.59.0" "scikit-image==0.26.0"
)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
# Bold only on a terminal and without NO_COLOR (https://no-color.org): none in a redirected log.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '%s[setup]%s %s\n' "$bold" "$plain" "$*"; }

# --- Debian packages -------------------------------------------------------
APT_PACKAGES=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libavfilter-dev libavdevice-dev pkg-config clang ffmpeg
  libdlib-dev libdlib-data libopenblas-dev libgloo-dev g++ python3-venv fonts-dejavu-core)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "apt: all packages present"
fi

# --- Python venv with PyTorch ----------------------------------------------
BASE_PY=${MCSFAU_TORCH_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "venv: creating .venv (base: $BASE_PY)"
  if [ -n "${MCSFAU_TORCH_PYTHON:-}" ]; then
    "$BASE_PY" -m venv --system-site-packages .venv
  else
    "$BASE_PY" -m venv .venv
  fi
fi
PY=.venv/bin/python
have_torch=$($PY -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null || true)
if [ "$have_torch" != "$TORCH_VERSION" ]; then
  say "venv: installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION (~1 min, ~5 GB)"
  $PY -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi
if ! $PY -c "import numpy, safetensors, safetensors.torch, packaging, pyarrow, pandas, sklearn, scipy, PIL, torchvision, duckdb, face_alignment" 2>/dev/null \
   || [ ! -x .venv/bin/just ]; then
  say "venv: installing ${PY_PACKAGES[*]}"
  $PY -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

# The CUDA headers ProcessGroupNCCL.hpp includes that torch's CUDA wheels
# leave out (crt/, nv/target): header-only wheels of the same CUDA 13.0, so
# the NCCL backend compiles into mcsfau-train. Skipped for a CPU-only torch.
cuda_inc="$($PY -c 'import torch, os; print(os.path.dirname(torch.__file__))')/../nvidia/cu13/include"
if [ -d "$cuda_inc" ] && { [ ! -f "$cuda_inc/crt/host_config.h" ] || [ ! -e "$cuda_inc/nv/target" ]; }; then
  say "venv: installing the CUDA 13.0 headers NCCL needs (nvidia-cuda-crt, nvidia-cuda-cccl; 3 MB)"
  $PY -m pip install -q --disable-pip-version-check --no-deps "nvidia-cuda-crt==13.0.88" "nvidia-cuda-cccl==13.0.85"
fi

# --- libtorch for tch: a stable path cargo reads (.cargo/config.toml) -------
torch_dir=$($PY -c "import torch, os; print(os.path.dirname(torch.__file__))")
ln -sfn "$torch_dir" .venv/libtorch
say "libtorch: .venv/libtorch -> $torch_dir (torch $($PY -c 'import torch; print(torch.__version__)'))"
# --- just on PATH (the README's commands call it bare) -----------------------
bin_dir=${CARGO_HOME:-$HOME/.cargo}/bin
if ! cmp -s .venv/bin/just "$bin_dir/just" 2>/dev/null; then
  mkdir -p "$bin_dir" && install -m 755 .venv/bin/just "$bin_dir/just"
fi
say "just: $("$bin_dir/just" --version) in $bin_dir"
say "done."
