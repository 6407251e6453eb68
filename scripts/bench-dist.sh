#!/usr/bin/env bash
# Data-parallel pretraining on this machine's CPU (docs/distributed.md):
# the tiny preset as it is (diagnostics every 5 steps, a checkpoint and plot
# every 10), one libtorch thread per process, STEPS steps, side by side
#   single process, batch 2B            (1 and 2 libtorch threads)
#   data-parallel at world size 1, 2B   (the Gloo path's own overhead)
#   2 processes x batch B               (BatchNorm sync / local / frozen; local
#                                        with the all-reduce after backward)
# each ROUNDS times, printing every rate and the median ratio to the single
# process. Images/s counts every rank's images (the global batch).
# Env: STEPS (80), B (4), ROUNDS (3), BIN (target/bench-fast/mcsfau-train).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-80} B=${B:-4} ROUNDS=${ROUNDS:-3} BIN=${BIN:-target/bench-fast/mcsfau-train}
[ -x "$BIN" ] || cargo build --profile bench-fast -p mcsfau-model --bin mcsfau-train
BIN=$(readlink -f "$BIN")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
"$BIN" synth-shards --out shards --n 512 --side 64 --rows-per-file 128 > /dev/null
port=$((29700 + RANDOM % 200))
py() { python3 -c "$@"; }
rate() { py "import json; print(json.load(open('$1'))['images_per_s'])"; }
single() { # threads batch
  rm -rf r; "$BIN" pretrain --shards shards --config tiny --out r --device cpu --steps "$STEPS" \
    --batch-size "$2" --threads "$1" > s.json 2> /dev/null; rate s.json
}
dp() { # world batch mode [extra flag]
  rm -rf r; port=$((port + 1))
  for r in $(seq 0 $(($1 - 1))); do
    RANK=$r WORLD_SIZE=$1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$BIN" pretrain --shards shards \
      --config tiny --batch-norm "$3" --out r --device cpu --steps "$STEPS" --batch-size "$2" --threads 1 \
      ${4:-} > "d$r.json" 2> /dev/null &
  done
  wait
  py "import json; print(json.load(open('d0.json'))['images_per_s'] * $1)"
}
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); tiny preset, $STEPS steps, B = $B"
printf '%-44s' "round:"; for i in $(seq "$ROUNDS"); do printf '%8s' "$i"; done; echo
declare -A all
for i in $(seq "$ROUNDS"); do
  all[s1,$i]=$(single 1 $((2 * B))); all[s2,$i]=$(single 2 $((2 * B))); all[w1,$i]=$(dp 1 $((2 * B)) sync)
  for m in sync local frozen; do all[$m,$i]=$(dp 2 "$B" $m); done
  all[after,$i]=$(dp 2 "$B" local --no-overlap)
done
for k in "s1:1 process x $((2 * B)), 1 thread" "s2:1 process x $((2 * B)), 2 threads" \
         "w1:data-parallel world 1 x $((2 * B))" "sync:2 processes x $B, BatchNorm sync" \
         "local:2 processes x $B, BatchNorm local" "after:2 processes x $B, local, --no-overlap" \
         "frozen:2 processes x $B, BatchNorm frozen"; do
  key=${k%%:*}; printf '%-44s' "${k#*:} (images/s):"
  ratios=()
  for i in $(seq "$ROUNDS"); do
    printf '%8.1f' "${all[$key,$i]}"; ratios+=("$(py "print(${all[$key,$i]} / ${all[s1,$i]})")")
  done
  echo "   median ratio to 1 x $((2 * B)) (1 thread): $(py "import statistics; print(round(statistics.median([$(IFS=,; echo "${ratios[*]}")]), 2))")"
done
