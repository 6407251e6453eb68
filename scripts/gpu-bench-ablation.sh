#!/usr/bin/env bash
# The synthetic AU yardstick (scripts/bench_ablation.py) at the paper preset
# (ResNet-50, 256 px, 8x8 map, k = 50), for a GPU machine (docs/gpu.md).
#
#   scripts/gpu-bench-ablation.sh prepare DIR   # on a CPU machine with `just build`:
#       256 px VoxCeleb2 and BP4D look-alikes (AU gain 3), JPEG quality 75,
#       the BP4D paper manifest; sized to travel with the GPU bundle
#       (measured: 28 MiB of shards, 2 min 16 s on 2 cores; the binary is ~14 MiB).
#   scripts/gpu-bench-ablation.sh run DIR       # on the GPU machine, with
#       target/gpu/mcsfau-train (scripts/build-gpu-bundle.sh): references,
#       random init (settled), MFDC, the locating head only (MFRR's landmark
#       detector alone), MFDC+MFRR, full MC-SFAU, supervised,
#       each probed with 3 head seeds, val AP, balanced positives, bootstrap.
#   .venv/bin/python scripts/bench_ablation.py --from-dir DIR   # back on the
#       CPU machine: the same tables as `just bench-ablation`.
#
# Env (run): STEPS (300), BATCH (64), LR (0.05), SETTLE (100), SUP_EPOCHS (4),
# DEVICE (cuda), BIN (target/gpu/mcsfau-train), TORCH_VENV (/opt/torch/.venv).
# Not yet run on a GPU: no device machine has been lent to this work.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
mode=${1:?usage: $0 prepare|run DIR}
dir=${2:?usage: $0 prepare|run DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [ "$mode" = prepare ]; then
  bin=${BIN:-$repo/target/debug/mcsfau}
  cd "$dir"
  "$bin" synth --layout voxceleb2 --out raw/voxceleb2 --subjects 48 --videos 1 --clips 2 --seconds 5 --seed 2 --au-gain 3
  "$bin" synth --layout bp4d --out raw/bp4d --subjects 41 --videos 4 --seconds 1 --seed 1 --au-gain 3
  "$bin" preprocess --quiet --dataset voxceleb2 --root raw/voxceleb2 --out shards/voxceleb2 \
      --landmarks synthetic --crop-size 256 --fps 2 --jpeg-quality 75
  "$bin" preprocess --quiet --dataset bp4d --root raw/bp4d --out shards/bp4d \
      --landmarks synthetic --crop-size 256 --jpeg-quality 75
  "$bin" manifest splits >/dev/null
  "$bin" manifest build --dataset bp4d --shards shards/bp4d
  rm -rf raw
  du -sh shards manifests
  exit 0
fi

[ "$mode" = run ] || { echo "unknown mode $mode (prepare or run)" >&2; exit 2; }
STEPS=${STEPS:-300} BATCH=${BATCH:-64} LR=${LR:-0.05} SETTLE=${SETTLE:-100} SUP_EPOCHS=${SUP_EPOCHS:-4}
DEVICE=${DEVICE:-cuda} BIN=${BIN:-$repo/target/gpu/mcsfau-train} TORCH_VENV=${TORCH_VENV:-/opt/torch/.venv}
if [ -d "$TORCH_VENV" ]; then
  TORCH_LIB=$(ls -d "$TORCH_VENV"/lib/python3*/site-packages/torch/lib | head -n 1)
  export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
cd "$dir"
"$BIN" doctor > doctor.json
manifest=manifests/bp4d/paper.frames.json
probe() { # tag, then extra arguments
  local tag=$1; shift
  local t0=$SECONDS
  "$BIN" probe "$@" --shards shards --manifest "$manifest" --dataset bp4d --out "probes/$tag" --cache-dir cache \
      --seed 0,1,2 --select ap --pos-weight balanced --device "$DEVICE" | tee "probes/$tag.txt"
  echo "$tag probe: $((SECONDS - t0)) s" | tee -a times.txt
}
mkdir -p probes runs
: > times.txt
probe landmarks --features landmarks
probe pixels32 --features pixels32
# TOML files name only what differs from the paper preset.
common=$(printf '[optim]\nlr = %s\n[data.loader]\nbatch_size = %s\n[output]\ndiagnostics_every = 25\ncheckpoint_every = 100000\n' "$LR" "$BATCH")
printf '[optim]\nlr = 0.0\nmin_lr = 0.0\n[data.loader]\nbatch_size = %s\n[model.mfrr]\nenabled = false\n[output]\ndiagnostics_every = 25\n' "$BATCH" > random_init.toml
printf '%s\n[model.mfrr]\nenabled = false\n' "$common" > MFDC_only.toml
printf '%s\n[model.mfdc]\nenabled = false\n[model.mfrr]\nreconstruct = false\n[model.mci]\nenabled = false\n' "$common" \
    > locating_only.toml
printf '%s\n[model.mci]\nenabled = false\n' "$common" > MFDC_p_MFRR.toml
printf '%s\n' "$common" > full_MC-SFAU.toml
for tag in random_init MFDC_only locating_only MFDC_p_MFRR full_MC-SFAU; do
  steps=$STEPS; [ "$tag" = random_init ] && steps=$SETTLE
  rm -rf "runs/$tag"
  t0=$SECONDS
  "$BIN" pretrain --shards shards/voxceleb2 --config "$tag.toml" --out "runs/$tag" --steps "$steps" --device "$DEVICE" \
      > "runs/$tag.json"
  echo "$tag train: $steps steps, $((SECONDS - t0)) s" | tee -a times.txt
  probe "$tag" --checkpoint "runs/$tag/model.safetensors"
done
rm -rf runs/supervised
t0=$SECONDS
"$BIN" supervise --shards shards --manifest "$manifest" --dataset bp4d --preset paper --out runs/supervised \
    --epochs "$SUP_EPOCHS" --batch-size "$BATCH" --device "$DEVICE" > runs/supervised.json
echo "supervised train: $SUP_EPOCHS epochs, $((SECONDS - t0)) s" | tee -a times.txt
probe supervised --checkpoint runs/supervised/model.safetensors
rm -rf cache runs/*/checkpoints
echo "done: $dir (render with scripts/bench_ablation.py --from-dir $dir)"
