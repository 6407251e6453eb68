#!/usr/bin/env python3
"""The audit's queries on an unlabeled shard table, in pandas (+ numpy for
the landmark arrays, which pandas cannot hold as columns efficiently), for
comparison with `mcsfau audit` in docs/benchmarks.md.

Same figures as the Rust audit of a VoxCeleb-style table (no labels, no
manifest, no JPEG spot check): duplicate ids; counts per subject, video and
clip and their distributions; landmark sanity (non-finite, outside the crop,
degenerate inter-ocular distance, scores) with the score histogram and
quantiles, and the mean shape of the first 100,000 rows. Prints the figures
it shares with report.json so the two can be compared, and the time per phase.

usage: bench_audit_pandas.py SHARDS_DIR
"""
import glob
import json
import os
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq


def main():
    files = sorted(glob.glob(os.path.join(sys.argv[1], "**", "*.parquet"), recursive=True))
    timings = {}
    t0 = time.perf_counter()
    lap = [t0]

    def mark(name):
        now = time.perf_counter()
        timings[name] = round(now - lap[0], 2)
        lap[0] = now

    ids = pd.read_parquet(files, columns=["sample_id"])["sample_id"]
    duplicates = int(ids.duplicated(keep=False).sum())
    del ids
    mark("duplicates")

    meta = pd.read_parquet(files, columns=["subject", "video", "clip"])
    per_clip = meta.groupby(["subject", "video", "clip"], sort=False).size()
    per_video = per_clip.groupby(level=["subject", "video"], sort=False).sum()
    per_subject = per_video.groupby(level="subject").sum()

    def dist(s):
        v = np.sort(s.to_numpy())
        n = len(v)
        # nearest rank, as Polars' QuantileMethod::Nearest
        q = lambda p: float(v[int(round(p * (n - 1)))])  # noqa: E731
        return {"n": n, "min": float(v[0]), "p05": q(0.05), "median": q(0.5), "mean": float(v.mean()),
                "p95": q(0.95), "max": float(v[-1])}

    counts = {
        "subjects": int(per_subject.size), "videos": int(per_video.size), "clips": int(per_clip.size),
        "frames": int(len(meta)), "frames_per_clip": dist(per_clip), "frames_per_video": dist(per_video),
    }
    del meta
    mark("counts")

    table = pq.read_table(files, columns=["landmarks", "crop_size", "landmark_score"])
    lm = table.column("landmarks").combine_chunks().flatten().to_numpy().reshape(-1, 98)
    df = pd.DataFrame({"crop": table.column("crop_size").to_numpy().astype(np.float64),
                       "score": table.column("landmark_score").to_numpy().astype(np.float64)})
    del table
    non_finite = ~np.isfinite(lm.sum(axis=1, dtype=np.float64))
    outside = (lm.min(axis=1) < 0) | (lm.max(axis=1) > df["crop"].to_numpy())
    dx = lm[:, 38].astype(np.float64) - lm[:, 56]
    dy = lm[:, 39].astype(np.float64) - lm[:, 57]
    iod = np.sqrt(dx * dx + dy * dy)
    degenerate = (iod < df["crop"].to_numpy() * 0.05) | ~np.isfinite(iod)
    score = df["score"]
    bad_score = ~np.isfinite(score) | (score < 0)
    good = score[~bad_score]
    bins = np.minimum((good * 20).astype(np.int64), 19)
    hist = np.bincount(bins, minlength=20)
    v = np.sort(good.to_numpy())
    q = [float(v[int(round(p * (len(v) - 1)))]) for p in (0.05, 0.5, 0.95)]
    head = lm[:100_000]
    mean_shape = head[np.isfinite(head.sum(axis=1))].astype(np.float64).mean(axis=0)
    landmarks = {
        "rows": int(len(lm)), "non_finite": int(non_finite.sum()), "outside_crop": int(outside.sum()),
        "degenerate_interocular": int(degenerate.sum()), "bad_score": int(bad_score.sum()),
        "interocular_mean_fraction": float((iod / df["crop"].to_numpy())[~non_finite].mean()),
        "score_histogram": hist.tolist(), "score_quantiles": q, "mean_shape_0_3": mean_shape[:4].tolist(),
    }
    mark("landmarks")
    timings["total"] = round(time.perf_counter() - t0, 2)
    print(json.dumps({"duplicates": duplicates, "counts": counts, "landmarks": landmarks, "timings_s": timings}))


if __name__ == "__main__":
    main()
