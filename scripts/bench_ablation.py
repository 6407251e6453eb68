"""Synthetic ablation (`just bench-ablation`, not a test): linear-probe F1 on
BP4D-like synthetic data after
  * random init (1 step at lr 1e-9: weights at their initialisation,
    BatchNorm running statistics from one batch),
  * MFDC only (mfrr.enabled = false),
  * MFDC + MFRR (mci.enabled = false),
  * full MC-SFAU,
each pretrained with the same budget (--steps) on the same synthetic
VoxCeleb2 shards, tiny preset, for each seed. Prints a Markdown table (per
seed and mean) next to the paper's table 3 (48.7 / 61.2 / 66.9 for MFDC,
MFDC+MFRR, full) and says whether the paper's order holds.

Usage: python scripts/bench_ablation.py [--steps 150] [--seeds 0 1] [--work DIR]
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent


def run(*args, cwd):
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def to_toml(d, prefix=""):
    lines, tables = [], []
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {toml_value(v)}")
    out = ([f"[{prefix}]"] if prefix and lines else []) + lines
    for k, v in tables:
        out += ["", *to_toml(v, f"{prefix}.{k}" if prefix else k)]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--work", default=str(REPO / "target" / "bench-ablation"))
    ap.add_argument("--bin", default=str(REPO / "target" / "debug" / "mcsfau"))
    a = ap.parse_args()
    work = pathlib.Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    b = a.bin
    if not (work / "shards/bp4d").is_dir():
        run(b, "synth", "--layout", "voxceleb2", "--out", "raw/voxceleb2", "--subjects", "12", "--videos", "1",
            "--clips", "2", "--seconds", "2", "--seed", "2", cwd=work)
        run(b, "synth", "--layout", "bp4d", "--out", "raw/bp4d", "--subjects", "41", "--videos", "2",
            "--seconds", "0.6", "--seed", "1", cwd=work)
        for ds, extra in [("voxceleb2", ["--fps", "10"]), ("bp4d", [])]:
            run(b, "preprocess", "--quiet", "--dataset", ds, "--root", f"raw/{ds}", "--out", f"shards/{ds}",
                "--landmarks", "synthetic", "--crop-size", "64", *extra, cwd=work)
        run(b, "manifest", "splits", cwd=work)
        run(b, "manifest", "build", "--dataset", "bp4d", "--shards", "shards/bp4d", cwd=work)
    run(b, "pretrain", "--shards", "shards/voxceleb2", "--config", "tiny", "--out", "base", "--steps", "1",
        "--device", "cpu", cwd=work)
    base = json.loads((work / "base/config.json").read_text())
    variants = {
        "random init": lambda c: c["optim"].update(lr=1e-9, min_lr=0.0),
        "MFDC only": lambda c: c["model"]["mfrr"].update(enabled=False),
        "MFDC + MFRR": lambda c: c["model"]["mci"].update(enabled=False),
        "full MC-SFAU": lambda c: None,
    }
    paper = {"random init": None, "MFDC only": 48.7, "MFDC + MFRR": 61.2, "full MC-SFAU": 66.9}
    results = {}
    t0 = time.time()
    for seed in a.seeds:
        for name, edit in variants.items():
            cfg = json.loads(json.dumps(base))
            edit(cfg)
            cfg["seed"] = seed
            cfg["data"]["loader"]["seed"] = seed
            tag = f"{name.replace(' ', '_').replace('+', 'p')}_s{seed}"
            (work / f"{tag}.toml").write_text("\n".join(to_toml(cfg)) + "\n")
            steps = 1 if name == "random init" else a.steps
            run(b, "pretrain", "--shards", "shards/voxceleb2", "--config", f"{tag}.toml", "--out", f"runs/{tag}",
                "--steps", steps, "--device", "cpu", cwd=work)
            run(b, "probe", "--checkpoint", f"runs/{tag}/model.safetensors", "--shards", "shards",
                "--manifest", "manifests/bp4d/paper.frames.json", "--dataset", "bp4d", "--out", f"probes/{tag}",
                "--cache-dir", "cache", "--seed", seed, "--device", "cpu", cwd=work)
            r = json.loads((work / f"probes/{tag}/probe.json").read_text())
            results.setdefault(name, []).append(100 * r["test_mean_f1"])
            print(f"[{time.time() - t0:6.0f} s] seed {seed} {name}: {results[name][-1]:.1f}", file=sys.stderr)
    print(f"| variant | " + " | ".join(f"seed {s}" for s in a.seeds) + " | mean | paper (table 3) |")
    print("|---|" + "---:|" * (len(a.seeds) + 2))
    means = {}
    for name, vals in results.items():
        means[name] = sum(vals) / len(vals)
        p = paper[name]
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {means[name]:.1f} | {p if p else '-'} |")
    order = ["MFDC only", "MFDC + MFRR", "full MC-SFAU"]
    holds = all(means[x] < means[y] for x, y in zip(order, order[1:]))
    print(f"\nBudget: {a.steps} steps per variant (tiny preset, CPU), seeds {a.seeds}, {time.time() - t0:.0f} s.")
    print("Paper order MFDC < MFDC+MFRR < full " + ("holds" if holds else "does NOT hold") + " here: "
          + " / ".join(f"{means[n]:.1f}" for n in order) + f"; random init {means['random init']:.1f}.")


if __name__ == "__main__":
    main()
