#!/usr/bin/env python3
"""Generate the audit benchmark table: VoxCeleb2 dev at 1 fps, metadata only.

5,994 identities, 145,569 videos, 1,092,009 clips and 9,000,000 frames (the
counts docs/manifests.md quotes; ~8.2 frames per clip at 1 fps), written as shards
with the mcsfau shard schema *without* the `image` column (no JPEG bytes):
sample_id, dataset, subject, video, clip, frame_index, timestamp_ms,
crop_size, landmarks (49 x 2 float32, a mean face plus noise, 1/64 px
grid), landmark_score, landmark_source, face_box, source_width,
source_height, crop_transform. The Parquet key-value metadata is the
contract's, so `mcsfau audit` reads the files as shards. Deterministic
(numpy seed 0).

usage: bench_audit_gen.py OUT_DIR [--rows 9000000] [--rows-per-file 262144]
"""
import argparse
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CROP = 256


def template49():
    """The fixtures' mean 49-point face (pipeline/src/fixtures.rs), unit square."""
    p = []
    for x0 in (0.20, 0.56):
        for i in range(5):
            p.append((x0 + 0.06 * i, 0.30 - 0.02 * (2.0 - abs(i - 2.0))))
    for i in range(4):
        p.append((0.5, 0.38 + 0.06 * i))
    for i in range(5):
        p.append((0.42 + 0.04 * i, 0.62 + 0.01 * (2.0 - abs(i - 2.0))))
    for c in (0.35, 0.65):
        for k in range(6):
            a = math.pi * (1.0 - k / 3.0)
            p.append((c + 0.07 * math.cos(a), 0.42 - 0.03 * math.sin(a)))
    for n, rx, ry in ((12, 0.15, 0.06), (6, 0.08, 0.025)):
        for k in range(n):
            a = math.pi * (1.0 - 2.0 * k / n)
            p.append((0.5 + rx * math.cos(a), 0.76 - ry * math.sin(a)))
    assert len(p) == 49
    return np.array(p, dtype=np.float64).reshape(-1) * CROP


def fixed(values, width):
    item = pa.field("item", pa.float32(), nullable=False)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), type=pa.list_(item, width))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=9_000_000)
    ap.add_argument("--rows-per-file", type=int, default=262_144)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    os.makedirs(args.out, exist_ok=True)
    # Smaller --rows scale every level down (for quick trials).
    scale = min(1.0, args.rows / 9_000_000)
    N_ID, N_VID, N_CLIP = (max(1, round(n * scale)) for n in (5994, 145_569, 1_092_009))

    # Identities, videos, clips: every parent gets at least one child.
    ids = np.sort(rng.choice(10_000, N_ID, replace=False))
    id_names = pa.array([f"id{i:05d}" for i in ids])
    alphabet = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype="S1")
    yt = rng.choice(alphabet, (N_VID, 11)).view("S11").reshape(-1)
    vid_names = pa.array(yt.astype(str))
    vid_identity = np.sort(np.concatenate([np.arange(N_ID), rng.integers(0, N_ID, N_VID - N_ID)]))
    clip_video = np.sort(np.concatenate([np.arange(N_VID), rng.integers(0, N_VID, N_CLIP - N_VID)]))
    first_clip = np.searchsorted(clip_video, np.arange(N_VID))
    clip_no = np.arange(N_CLIP) - first_clip[clip_video] + 1
    clip_names = pc.utf8_lpad(pa.array(clip_no).cast(pa.string()), 5, "0")

    # Frames per clip at 1 fps: 4 + Poisson, then nudged to exactly --rows.
    per_clip = 4 + rng.poisson(args.rows / N_CLIP - 4, N_CLIP)
    diff = args.rows - int(per_clip.sum())
    step = 1 if diff > 0 else -1
    while diff != 0:
        pick = rng.integers(0, N_CLIP, abs(diff))
        if step < 0:
            pick = pick[per_clip[pick] > 1]
        np.add.at(per_clip, pick, step)
        diff = args.rows - int(per_clip.sum())
        step = 1 if diff > 0 else -1
    row_clip = np.repeat(np.arange(N_CLIP), per_clip)
    clip_start = np.cumsum(per_clip) - per_clip
    second = np.arange(args.rows) - clip_start[row_clip]

    meta = {
        b"mcsfau.schema": b"mcsfau.face_crops",
        b"mcsfau.schema_version": b"1",
        b"mcsfau.tool_version": b"bench_audit_gen.py",
        b"mcsfau.dataset": b"voxceleb2",
        b"mcsfau.preprocess_config": b'{"bench": true, "fps": 1}',
    }
    template = template49()
    files = 0
    for start in range(0, args.rows, args.rows_per_file):
        end = min(start + args.rows_per_file, args.rows)
        n = end - start
        rc = row_clip[start:end]
        rv = clip_video[rc]
        subject = id_names.take(pa.array(vid_identity[rv]))
        video = vid_names.take(pa.array(rv))
        clip = clip_names.take(pa.array(rc))
        frame_index = second[start:end] * 25
        frame_str = pc.utf8_lpad(pa.array(frame_index).cast(pa.string()), 6, "0")
        path = pc.binary_join_element_wise(pa.array(["voxceleb2"] * n), subject, video, clip, "/")
        sample_id = pc.binary_join_element_wise(path, frame_str, "#")
        lm = template[None, :] + rng.normal(0.0, 2.0, (n, 98))
        lm = (np.round(lm * 64.0) / 64.0).astype(np.float32)
        table = pa.table(
            {
                "sample_id": sample_id,
                "dataset": pa.array(["voxceleb2"] * n),
                "subject": subject,
                "video": video,
                "clip": clip,
                "frame_index": pa.array(frame_index, pa.int64()),
                "timestamp_ms": pa.array(second[start:end] * 1000, pa.int64()),
                "crop_size": pa.array(np.full(n, CROP, np.int32)),
                "landmarks": fixed(lm, 98),
                "landmark_score": pa.array(rng.beta(8.0, 2.0, n).astype(np.float32)),
                "landmark_source": pa.array(["fan"] * n),
                "face_box": fixed(np.tile(np.float32([40, 30, 184, 190]), n), 4),
                "source_width": pa.array(np.full(n, 224, np.int32)),
                "source_height": pa.array(np.full(n, 224, np.int32)),
                "crop_transform": fixed(np.tile(np.float32([1.6, 0, -40, 0, 1.6, -30]), n), 6),
            }
        )
        schema = pa.schema([f.with_nullable(False) for f in table.schema], metadata=meta)
        table = table.cast(schema)
        pq.write_table(table, os.path.join(args.out, f"vox-{files:05d}.parquet"), compression="zstd",
                       compression_level=3, row_group_size=65_536)
        files += 1
    print(f"wrote {args.rows} rows, {N_CLIP} clips, {N_VID} videos, {N_ID} identities in {files} files to {args.out}")


if __name__ == "__main__":
    main()
