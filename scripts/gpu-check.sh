#!/usr/bin/env bash
# GPU check for the pretraining path (docs/gpu.md). Runs on a GPU machine
# that has PyTorch at /opt/torch/.venv and the binary built here by
# scripts/build-gpu-bundle.sh (target/gpu/mcsfau-train, carried along):
#   1. doctor-style facts: nvidia-smi, libtorch/CUDA as the binary sees them;
#   2. synthetic 256x256 shards, then STEPS steps of the paper preset
#      (batch BATCH) with images/s, data-wait fraction and peak GPU memory;
#   3. the same step in PyTorch eager (scripts/gpu/reference_step.py);
#   4. data-parallel runs (docs/distributed.md; run before 3): world size 1
#      through NCCL, then one process per GPU when the machine has more than
#      one, against the single-process rate of step 2 (the all-reduce overhead).
# Env: STEPS (300), BATCH (256), N (4096 faces), BF16 (0/1), WORK (/tmp/gpu-check),
#      DP_STEPS (100; 0 skips step 4), BATCH is per GPU in step 4,
#      BIN (target/gpu/mcsfau-train), TORCH_VENV (/opt/torch/.venv), REF_STEPS (30).
# Everything goes to $WORK; the summary also to $OUT/gpu-check.json when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-300} BATCH=${BATCH:-256} N=${N:-4096} BF16=${BF16:-0} REF_STEPS=${REF_STEPS:-30} DP_STEPS=${DP_STEPS:-100}
WORK=${WORK:-/tmp/gpu-check} BIN=${BIN:-target/gpu/mcsfau-train} TORCH_VENV=${TORCH_VENV:-/opt/torch/.venv}
TORCH_LIB=$(ls -d "$TORCH_VENV"/lib/python3*/site-packages/torch/lib | head -n 1)
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
PY="$TORCH_VENV/bin/python"
mkdir -p "$WORK"
bf16_flag=(); [ "$BF16" = 1 ] && bf16_flag=(--bf16)

echo "== facts"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$BIN" doctor | tee "$WORK/doctor.json"
"$PY" -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'

echo "== synthetic shards ($N faces, 256x256)"
rm -rf "$WORK/shards" "$WORK/run"
t0=$SECONDS
"$BIN" synth-shards --out "$WORK/shards" --n "$N" --side 256 --rows-per-file 1024
echo "synth: $((SECONDS - t0)) s"

echo "== mcsfau-train pretrain: paper preset, $STEPS steps, batch $BATCH, bf16=$BF16"
(while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.5; done) > "$WORK/mem.txt" &
mon=$!
trap 'kill $mon 2>/dev/null || true' EXIT
"$BIN" pretrain --shards "$WORK/shards" --config paper --out "$WORK/run" --device cuda \
    --steps "$STEPS" --batch-size "$BATCH" "${bf16_flag[@]}" > "$WORK/rust.json"
kill $mon 2>/dev/null || true
peak=$(sort -n "$WORK/mem.txt" | tail -n 1)

# One process per GPU, launched as torchrun would (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).
run_dp() {
  local world=$1 out=$2 pids=() r
  rm -rf "$out"
  for r in $(seq 0 $((world - 1))); do
    RANK=$r WORLD_SIZE=$world LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$((29500 + world)) \
      "$BIN" pretrain --shards "$WORK/shards" --config paper --out "$out" --device cuda \
      --steps "$DP_STEPS" --batch-size "$BATCH" "${bf16_flag[@]}" > "$out.rank$r.json" &
    pids+=($!)
  done
  for r in "${pids[@]}"; do wait "$r"; done
}
GPUS=$(nvidia-smi -L | wc -l)
if [ "$DP_STEPS" -gt 0 ]; then
  echo "== data-parallel: world size 1 (NCCL), $DP_STEPS steps, batch $BATCH"
  run_dp 1 "$WORK/dp1"
  if [ "$GPUS" -gt 1 ]; then
    echo "== data-parallel: world size $GPUS, $DP_STEPS steps, batch $BATCH per GPU"
    run_dp "$GPUS" "$WORK/dpN"
  fi
fi

echo "== PyTorch eager: the same step ($REF_STEPS timed steps)"
"$PY" scripts/gpu/reference_step.py --batch "$BATCH" --steps "$REF_STEPS" "${bf16_flag[@]}" > "$WORK/python.json"

"$PY" - "$WORK" "$peak" "$BATCH" "$GPUS" <<'PYEOF'
import json, os, statistics, sys
work, peak, batch, gpus = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
log = [json.loads(l) for l in open(f"{work}/run/log.jsonl")]
steady = [r for r in log if r["step"] > 20] or log  # skip cuDNN autotuning and allocator warm-up
rust = json.load(open(f"{work}/rust.json"))
py = json.load(open(f"{work}/python.json"))
summary = {
    "rust_images_per_s_steady": statistics.median(r["images_per_s"] for r in steady),
    "rust_data_wait_steady": statistics.median(r["data_wait"] for r in steady),
    "rust_images_per_s_whole_run": rust["images_per_s"],
    "rust_peak_gpu_mem_mib_nvidia_smi": peak,
    "rust_last_losses": rust["last"],
    "python_eager_images_per_s": py["images_per_s"],
    "python_peak_mem_gib_allocated": py["peak_mem_gib"],
    "python": py,
}
summary["rust_over_python"] = summary["rust_images_per_s_steady"] / py["images_per_s"]
# Data-parallel against the single process over the same steps (21..DP_STEPS);
# rank 0 logs the global batch's rate (all ranks together).
def rate(run, last):
    recs = [r for r in (json.loads(l) for l in open(f"{work}/{run}/log.jsonl")) if 20 < r["step"] <= last]
    return statistics.median(r["images_per_s"] for r in recs) if recs else None
if os.path.exists(f"{work}/dp1/log.jsonl"):
    last = max(json.loads(l)["step"] for l in open(f"{work}/dp1/log.jsonl"))
    single, dp1 = rate("run", last), rate("dp1", last)
    summary["dp_steps_compared"] = f"21..{last}"
    summary["single_images_per_s"] = single
    summary["dp1_images_per_s"] = dp1
    summary["dp1_over_single"] = dp1 / single
    summary["dp1_overhead_ms_per_step"] = 1000 * (batch / dp1 - batch / single)
    if os.path.exists(f"{work}/dpN/log.jsonl"):
        dpn = rate("dpN", last)
        summary["dpN_world_size"] = gpus
        summary["dpN_images_per_s"] = dpn
        summary["dpN_scaling_efficiency"] = dpn / (gpus * single)
print(json.dumps(summary, indent=2))
json.dump(summary, open(f"{work}/gpu-check.json", "w"), indent=2)
PYEOF
[ -n "${OUT:-}" ] && cp "$WORK/gpu-check.json" "$WORK/doctor.json" "$WORK/run/log.jsonl" "$WORK/run/losses.png" "$OUT/" || true
[ -n "${OUT:-}" ] && [ -f "$WORK/dp1/log.jsonl" ] && cp "$WORK/dp1/log.jsonl" "$OUT/dp1-log.jsonl" || true
