"""PyTorch side of the loader benchmark (scripts/bench/loader.sh).

A torch DataLoader with PIL reading the same JPEG files as the mcsfau loader
reads from shards: uint8 [B, 3, H, W] batches of 256, shuffled, `--workers`
worker processes (persistent). Also PIL's decode-only rate from memory in one
process. Prints one JSON line per measurement, with wall time and CPU time
(this process and its reaped workers: the machine may be shared).
"""
import argparse
import io
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset


class Jpegs(Dataset):
    def __init__(self, files):
        self.files = files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            a = np.asarray(im.convert("RGB"))
        return torch.from_numpy(a).permute(2, 0, 1)  # uint8 [3, H, W], as PILToTensor


def cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def report(mode, threads, n, wall, cpu_s):
    print(json.dumps({"mode": mode, "threads": threads, "images": n, "seconds": round(wall, 3),
                      "images_per_s": round(n / wall, 1), "cpu_seconds": round(cpu_s, 2),
                      "images_per_cpu_s": round(n / cpu_s, 1)}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jpeg_dir")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    files = sorted(Path(args.jpeg_dir).glob("*.jpg"))
    dl = DataLoader(
        Jpegs(files),
        batch_size=256,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    t0, c0 = time.perf_counter(), cpu()
    n = 0
    for _ in range(args.epochs):
        for batch in dl:
            n += batch.shape[0]
    wall = time.perf_counter() - t0
    del dl  # joins the persistent workers, so their CPU time is counted
    report("torch_dataloader", args.workers, n, wall, cpu() - c0)

    blobs = [f.read_bytes() for f in files]
    t0, c0 = time.perf_counter(), cpu()
    for b in blobs:
        with Image.open(io.BytesIO(b)) as im:
            im.convert("RGB").load()
    report("pil_decode", 1, len(blobs), time.perf_counter() - t0, cpu() - c0)


if __name__ == "__main__":
    main()
