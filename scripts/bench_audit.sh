#!/usr/bin/env bash
# `just bench-audit`: generate the 9M-row VoxCeleb2-at-1-fps metadata table
# (no image bytes) once, audit it with the release build on 2 threads, then run
# the same queries in pandas on the same files. Figures go to docs/benchmarks.md
# by hand (date, machine, both timings).
#
#   BENCH_DIR (default target/bench-audit) holds the table and the reports.
#   BENCH_ROWS (default 9000000) scales the table down for a quick try.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-target/bench-audit}
rows=${BENCH_ROWS:-9000000}
py=.venv/bin/python
table="$dir/table-$rows"
if [ ! -f "$table/.complete" ]; then
  rm -rf "$table"
  echo "[bench-audit] generating $rows rows into $table"
  /usr/bin/time -f "[bench-audit] generator: %e s, peak RSS %M KB" $py scripts/bench_audit_gen.py "$table" --rows "$rows"
  touch "$table/.complete"
fi
du -sh "$table"
cargo build --release -p mcsfau-pipeline --example audit_bench
echo "[bench-audit] Polars audit (release, POLARS_MAX_THREADS=2)"
POLARS_MAX_THREADS=2 /usr/bin/time -f "[bench-audit] polars: %e s wall, %U s user, %S s sys, peak RSS %M KB" \
  taskset -c 0,1 target/release/examples/audit_bench "$table" "$dir/report"
echo "[bench-audit] pandas on the same files"
/usr/bin/time -f "[bench-audit] pandas: %e s wall, %U s user, %S s sys, peak RSS %M KB" \
  taskset -c 0,1 $py scripts/bench_audit_pandas.py "$table" | tee "$dir/pandas.json"
echo "[bench-audit] load average: $(cut -d' ' -f1-3 /proc/loadavg), CPUs: $(nproc)"
