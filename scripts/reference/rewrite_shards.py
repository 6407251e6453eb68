#!/usr/bin/env python3
"""Rewrites mcsfau shards with another tool, the way users re-save, filter and
merge them: pyarrow (`pq.write_table`, any compression; keeps the Arrow types
and the schema metadata) or DuckDB (`COPY ... TO ... (FORMAT parquet)`; writes
fixed-size lists as plain lists and every column as nullable, and keeps the
`mcsfau.*` key-value metadata only when passed as KV_METADATA, as here).

Used by tests/test_bad_inputs.rs: every command must read the result.

    rewrite_shards.py --tool pyarrow|duckdb --compression snappy|zstd|lz4|gzip|none --src DIR --dst DIR
"""
import argparse
import pathlib

import pyarrow.parquet as pq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=["pyarrow", "duckdb"], required=True)
    ap.add_argument("--compression", default="snappy")
    ap.add_argument("--src", type=pathlib.Path, required=True)
    ap.add_argument("--dst", type=pathlib.Path, required=True)
    a = ap.parse_args()
    a.dst.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in a.src.rglob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise SystemExit(f"no shards under {a.src}")
    for src in files:
        dst = a.dst / src.name
        if a.tool == "pyarrow":
            table = pq.read_table(src)
            pq.write_table(table, dst, compression=a.compression)
        else:
            import duckdb

            meta = pq.read_schema(src).metadata or {}
            kv = {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"mcsfau.")}
            esc = lambda s: s.replace("'", "''")
            kvs = ", ".join(f"'{esc(k)}': '{esc(v)}'" for k, v in kv.items())
            codec = "uncompressed" if a.compression == "none" else a.compression
            con = duckdb.connect()
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{esc(str(src))}')) TO '{esc(str(dst))}' "
                f"(FORMAT parquet, COMPRESSION {codec}, KV_METADATA {{{kvs}}})"
            )
        got = pq.read_metadata(dst).row_group(0).column(0).compression
        want = "UNCOMPRESSED" if a.compression == "none" else a.compression.upper()
        if got != want:
            raise SystemExit(f"{dst}: written with {got}, asked for {want}")


if __name__ == "__main__":
    main()
