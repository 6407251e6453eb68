#!/usr/bin/env bash
# Loader benchmark (issue 7): mcsfau's shard loader vs a PyTorch DataLoader +
# PIL on the same JPEGs, and the JPEG-decode-only rate (the limit), at
# 256x256, for each thread count. Wall-clock images/s and images per
# CPU-second (robust on a shared machine: "per core" throughput).
# Prints JSON lines and a markdown table;
# record the table in docs/benchmarks.md with date and machine.
#
# Environment: N (images, default 2048), THREADS (default "1 2"),
# EPOCHS (default 2), PROFILE (cargo profile: dev (default) or release).
# LIBTORCH is taken from the environment or .cargo/config.toml, as for any
# build (a different value than the last build rebuilds torch-sys).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-2048}
THREADS=${THREADS:-"1 2"}
EPOCHS=${EPOCHS:-2}
PROFILE=${PROFILE:-dev}
cargo build --profile "$PROFILE" --workspace --examples
sub=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
bin=target/$sub/examples/bench_loader
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out=$dir/results.jsonl
"$bin" prepare "$dir" "$N" | tee -a "$out"
for t in $THREADS; do
    "$bin" decode "$dir" "$t" | tee -a "$out"
    "$bin" loader "$dir" "$t" "$EPOCHS" | tee -a "$out"
    .venv/bin/python scripts/bench/torch_loader.py "$dir/jpeg" --workers "$t" --epochs "$EPOCHS" | tee -a "$out"
done
.venv/bin/python - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
prep = rows[0]
print(f"\n{prep['prepared']} images, 256x256, mean JPEG {prep['mean_jpeg_bytes']} bytes")
print("| threads | what | images/s (wall) | images per CPU-second |")
print("| --- | --- | --- | --- |")
names = {"decode": "JPEG decode only (image/zune-jpeg, from memory)", "loader": "mcsfau loader (shards -> uint8 batches)",
         "torch_dataloader": "PyTorch DataLoader + PIL (files)", "pil_decode": "PIL decode only (from memory)"}
for r in rows[1:]:
    t = r["threads"]
    print(f"| {t} | {names[r['mode']]} | {r['images_per_s']:.0f} | {r['images_per_cpu_s']:.0f} |")
PY
