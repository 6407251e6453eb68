#!/usr/bin/env python3
"""The synthetic AU yardstick (`just bench-ablation`, not a test).

Pretraining variants of MC-SFAU, and reference rows, all scored through the
same linear probe on the same BP4D look-alike test frames:

  * all-present floor (from the probe report: predict "present" everywhere);
  * landmarks: the probe on the 49 ground-truth landmarks (a geometry ceiling);
  * pixels32: the probe on the crop in grey at 32x32 (a representation that
    does not beat it has learned nothing useful);
  * random init, settled: the preset's backbone at its initialisation, its
    BatchNorm statistics settled by `--settle` steps at lr 0;
  * MFDC only, the locating head only (L_d alone: MFRR's landmark detector
    with neither BYOL nor the reconstruction), MFDC + MFRR, MFDC + MFRR with
    the detector's later steps trained toward sg(p_(m-1)) (eq. 3 as written)
    instead of p_1, full MC-SFAU, and full MC-SFAU at k = 2 and k = 10 (the
    paper's figure 2 question): `--steps` pretraining steps each (small
    preset: 128 px, 8x8 map, batch 32), same data, same seed;
  * supervised: the same backbone trained with the train split's labels
    (`mcsfau supervise`; the architecture's ceiling).

Each probe trains `--probe-seeds` heads (selection on val by `--select`) and
reports mean F1 at 0.5 and mean AP with a 95 % bootstrap interval over test
subjects. Each variant is also compared with random init and with MFDC by a
paired bootstrap over the same test subjects (seed-averaged mean AP
difference, and per AU), and the per-AU gains are split by how far each AU
moves the landmarks. Pretraining diagnostics (projection spread, per-term
backbone gradient shares, the detector's error against the landmarks, mask
coverage) come from each run's log; the detector's error on the BP4D test
frames from the probe.

Writes WORK/ablation.md and WORK/ablation.json, and with --write-docs the
table into docs/benchmarks.md between the bench-ablation markers.

Usage: python scripts/bench_ablation.py [--steps 300] [--work DIR] [--write-docs]
"""
import argparse
import csv
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
MARK_START, MARK_END = "<!-- bench-ablation:start -->", "<!-- bench-ablation:end -->"


def log(msg, t0=[time.time()]):
    print(f"[{time.time() - t0[0]:6.0f} s] {msg}", file=sys.stderr, flush=True)


def run(*args, cwd):
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, args))}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
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


# --- paired bootstrap over test subjects, from test_predictions.csv -------


def read_predictions(path):
    """-> subjects [n], labels [n, A] (int), probs [seeds, n, A], AU names."""
    with open(path) as f:
        rows = list(csv.reader(f))
    head, rows = rows[0], rows[1:]
    p_cols = [i for i, h in enumerate(head) if h.endswith("_p")]
    y_cols = [i for i, h in enumerate(head) if h.endswith("_y")]
    seeds = sorted({r[0] for r in rows}, key=int)
    by_seed = {s: [r for r in rows if r[0] == s] for s in seeds}
    first = by_seed[seeds[0]]
    ids = [r[1] for r in first]
    for s in seeds:
        assert [r[1] for r in by_seed[s]] == ids, "seeds list the same frames in the same order"
    subjects = np.array([r[2] for r in first])
    labels = np.array([[int(r[i]) for i in y_cols] for r in first])
    probs = np.array([[[float(r[i]) for i in p_cols] for r in by_seed[s]] for s in seeds])
    return ids, subjects, labels, probs, [head[i][:-2] for i in p_cols]


def weighted_ap(scores, labels, w):
    """scikit-learn's average precision with row weights (ties form one threshold)."""
    known = labels >= 0
    s, y, w = scores[known], labels[known], w[known]
    pos = (w * (y == 1)).sum()
    if pos <= 0:
        return 0.0
    order = np.argsort(-s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    tp, fp = np.cumsum(w * (y == 1)), np.cumsum(w * (y != 1))
    last = np.r_[s[1:] != s[:-1], True]  # the end of each tie block
    tp, fp = tp[last], fp[last]
    prec = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    rec = tp / pos
    return float(np.sum(np.diff(np.r_[0.0, rec]) * prec))


def mean_ap(probs, labels, w):
    """Seed-averaged mean AP and the per-AU APs (seed-averaged)."""
    per = np.array([[weighted_ap(p[:, a], labels[:, a], w) for a in range(labels.shape[1])] for p in probs])
    return per.mean(), per.mean(axis=0)


def paired_bootstrap(a, b, resamples, seed=0):
    """a, b: (subjects, labels, probs) on the same frames. The 95 % interval
    of mean-AP(a) - mean-AP(b) and per-AU differences over resampled subjects."""
    subj, labels = a[0], a[1]
    assert (subj == b[0]).all() and (labels == b[1]).all(), "the two runs scored the same test frames"
    units = np.unique(subj)
    index = np.searchsorted(units, subj)
    rng = np.random.default_rng(seed)
    diffs, per_au = [], []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, len(units), len(units)), minlength=len(units)).astype(float)
        w = counts[index]
        ma, pa = mean_ap(a[2], labels, w)
        mb, pb = mean_ap(b[2], labels, w)
        diffs.append(ma - mb)
        per_au.append(pa - pb)
    d = np.sort(np.array(diffs))
    per_au = np.array(per_au)
    point = mean_ap(a[2], labels, np.ones(len(subj)))[0] - mean_ap(b[2], labels, np.ones(len(subj)))[0]
    lo, hi = np.quantile(d, [0.025, 0.975])
    au_lo, au_hi = np.quantile(per_au, 0.025, axis=0), np.quantile(per_au, 0.975, axis=0)
    return point, lo, hi, au_lo, au_hi


# --- the runs ----------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="pretraining steps per variant (default %(default)s)")
    ap.add_argument("--settle", type=int, default=100, help="lr-0 steps that settle random init's BatchNorm")
    ap.add_argument("--supervised-epochs", type=int, default=8)
    ap.add_argument("--probe-seeds", default="0,1,2")
    ap.add_argument("--select", default="ap", choices=["f1", "ap"], help="probe selection metric on val")
    ap.add_argument("--pos-weight", default="balanced", choices=["none", "balanced"], help="probe loss weighting")
    ap.add_argument("--no-ld-check", action="store_true", help="skip the L_d scale comparison (3 short runs)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--au-gain", type=float, default=3.0, help="mcsfau synth --au-gain of both datasets")
    ap.add_argument("--vox-ids", type=int, default=48)
    ap.add_argument("--bp4d-tasks", type=int, default=8)
    ap.add_argument("--bp4d-seconds", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0, help="pretraining seed")
    ap.add_argument("--only", default="", help="comma-separated variant names or tags to run (default all)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep a variant's finished run (same config) and probe from an earlier invocation in WORK "
                         "instead of redoing them: a run cut short goes on where it stopped, and rows can be added")
    ap.add_argument("--work", default=str(REPO / "target" / "bench-ablation"))
    ap.add_argument("--bin", default=str(REPO / "target" / "debug" / "mcsfau"))
    ap.add_argument("--write-docs", action="store_true", help="put the table into docs/benchmarks.md")
    ap.add_argument("--from-dir", help="render a finished run of scripts/gpu-bench-ablation.sh (no training)")
    a = ap.parse_args()
    if a.from_dir:
        return render_from_dir(a)
    work = pathlib.Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    b, started = a.bin, time.time()
    gain = a.au_gain

    # Data: pretraining on the VoxCeleb2 look-alike, the probe on BP4D's.
    if not (work / "shards/bp4d").is_dir():
        log("synth + preprocess VoxCeleb2 and BP4D look-alikes (128 px crops)")
        run(b, "synth", "--layout", "voxceleb2", "--out", "raw/voxceleb2", "--subjects", a.vox_ids, "--videos", 1,
            "--clips", 2, "--seconds", 5, "--seed", 2, "--au-gain", gain, cwd=work)
        run(b, "synth", "--layout", "bp4d", "--out", "raw/bp4d", "--subjects", 41, "--videos", a.bp4d_tasks,
            "--seconds", a.bp4d_seconds, "--seed", 1, "--au-gain", gain, cwd=work)
        run(b, "preprocess", "--quiet", "--dataset", "voxceleb2", "--root", "raw/voxceleb2", "--out",
            "shards/voxceleb2", "--landmarks", "synthetic", "--crop-size", 128, "--fps", 5, cwd=work)
        run(b, "preprocess", "--quiet", "--dataset", "bp4d", "--root", "raw/bp4d", "--out", "shards/bp4d",
            "--landmarks", "synthetic", "--crop-size", 128, cwd=work)
        run(b, "manifest", "splits", cwd=work)
        run(b, "manifest", "build", "--dataset", "bp4d", "--shards", "shards/bp4d", cwd=work)
    visibility = run(b, "synth", "--au-visibility", 128, "--au-gain", gain, cwd=work)
    manifest = "manifests/bp4d/paper.frames.json"
    frames = json.loads((work / manifest).read_text())
    split_frames = {s["name"]: s["frames"] for s in frames["splits"]}

    shutil.rmtree(work / "base", ignore_errors=True)
    run(b, "pretrain", "--shards", "shards/voxceleb2", "--config", "small", "--out", "base", "--steps", 1,
        "--device", "cpu", cwd=work)
    base = json.loads((work / "base/config.json").read_text())
    base["seed"] = a.seed
    base["data"]["loader"]["seed"] = a.seed

    def settled(c):
        c["optim"].update(lr=0.0, min_lr=0.0)
        c["model"]["mfrr"]["enabled"] = False

    def locating_only(c):
        c["model"]["mfdc"]["enabled"] = False
        c["model"]["mfrr"]["reconstruct"] = False
        c["model"]["mci"]["enabled"] = False

    def previous_targets(c):
        c["model"]["mci"]["enabled"] = False
        c["model"]["mfrr"]["cascade_target"] = "previous"

    # name: (config edit, steps, run-folder tag)
    variants = {
        "random init (settled)": (settled, a.settle, "random_init"),
        "MFDC only": (lambda c: c["model"]["mfrr"].update(enabled=False), a.steps, "MFDC_only"),
        "locating head only": (locating_only, a.steps, "locating_only"),
        "MFDC + MFRR": (lambda c: c["model"]["mci"].update(enabled=False), a.steps, "MFDC_p_MFRR"),
        "MFDC + MFRR, steps to sg(p_(m-1))": (previous_targets, a.steps, "MFDC_p_MFRR_previous"),
        "full MC-SFAU": (lambda c: None, a.steps, "full_MC-SFAU"),
        "full, k = 2": (lambda c: c["model"]["mfrr"].update(k=2), a.steps, "full_k2"),
        "full, k = 10": (lambda c: c["model"]["mfrr"].update(k=10), a.steps, "full_k10"),
    }
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    probe_args = ["--shards", "shards", "--manifest", manifest, "--dataset", "bp4d", "--cache-dir", "cache",
                  "--seed", a.probe_seeds, "--select", a.select, "--pos-weight", a.pos_weight,
                  "--bootstrap", a.bootstrap, "--device", "cpu"]
    rows = {}

    def probe(name, tag, *extra):
        t = time.time()
        report = work / f"probes/{tag}/probe.json"
        source = [work / x for x in extra if str(x).endswith(".safetensors")]
        fresh = report.exists() and all(report.stat().st_mtime > x.stat().st_mtime for x in source)
        if a.reuse and fresh:
            log(f"{name}: reusing probes/{tag}")
        else:
            run(b, "probe", *extra, "--out", f"probes/{tag}", *probe_args, cwd=work)
        r = json.loads((work / f"probes/{tag}/probe.json").read_text())
        rows[name] = {"tag": tag, "report": r, "probe_s": time.time() - t}
        bs = r["bootstrap"]
        log(f"{name}: mean F1 {100 * r['test_mean_f1']:.1f} [{100 * bs['mean_f1'][0]:.1f}, "
            f"{100 * bs['mean_f1'][1]:.1f}], mean AP {100 * r['test_mean_ap']:.1f} "
            f"[{100 * bs['mean_ap'][0]:.1f}, {100 * bs['mean_ap'][1]:.1f}]")

    for ref in ["landmarks", "pixels32"]:
        if not only or ref in only:
            probe(ref, ref, "--features", ref)
    for name, (edit, steps, tag) in variants.items():
        if only and name not in only and tag not in only:
            continue
        cfg = json.loads(json.dumps(base))
        edit(cfg)
        toml = "\n".join(to_toml(cfg)) + "\n"
        toml_path, done = work / f"{tag}.toml", work / "runs" / tag / "model.safetensors"
        summary = work / f"runs/{tag}.summary"
        same = toml_path.exists() and toml_path.read_text() == toml
        ran = summary.exists() and json.loads(summary.read_text()).get("steps") == steps
        if a.reuse and same and ran and done.exists():
            train_s = json.loads(summary.read_text())["train_s"]
            log(f"{name}: reusing runs/{tag} ({steps} steps, {train_s:.0f} s when it ran)")
        else:
            toml_path.write_text(toml)
            shutil.rmtree(work / "runs" / tag, ignore_errors=True)
            t = time.time()
            run(b, "pretrain", "--shards", "shards/voxceleb2", "--config", f"{tag}.toml", "--out", f"runs/{tag}",
                "--steps", steps, "--device", "cpu", cwd=work)
            train_s = time.time() - t
            summary.write_text(json.dumps({"steps": steps, "train_s": train_s}))
            log(f"{name}: {steps} steps in {train_s:.0f} s")
        probe(name, tag, "--checkpoint", f"runs/{tag}/model.safetensors")
        rows[name]["train_s"], rows[name]["steps"] = train_s, steps
        recs = [json.loads(line) for line in (work / f"runs/{tag}/log.jsonl").read_text().splitlines()]
        rows[name]["log"] = {"first": recs[0], "last": recs[-1],
                             "diag": [r for r in recs if "diagnostics" in r]}
        rows[name]["identity"] = identity_accuracy(work, f"probes/{tag}")
    if not only or "supervised" in only:
        summary = work / "runs/supervised.summary"
        want = {"epochs": a.supervised_epochs, "seed": a.seed}
        if a.reuse and summary.exists() and (work / "runs/supervised/model.safetensors").exists() \
                and {k: v for k, v in json.loads(summary.read_text()).items() if k in want} == want:
            train_s = json.loads(summary.read_text())["train_s"]
            log(f"supervised: reusing runs/supervised")
        else:
            shutil.rmtree(work / "runs/supervised", ignore_errors=True)
            t = time.time()
            run(b, "supervise", "--shards", "shards", "--manifest", manifest, "--dataset", "bp4d", "--preset",
                "small", "--out", "runs/supervised", "--epochs", a.supervised_epochs, "--seed", a.seed, cwd=work)
            train_s = time.time() - t
            summary.write_text(json.dumps({**want, "train_s": train_s}))
            log(f"supervised: {a.supervised_epochs} epochs in {train_s:.0f} s")
        probe("supervised", "supervised", "--checkpoint", "runs/supervised/model.safetensors")
        rows["supervised"]["train_s"] = train_s
        rows["supervised"]["identity"] = identity_accuracy(work, "probes/supervised")
        rows["supervised"]["epochs"] = [json.loads(x) for x in
                                        (work / "runs/supervised/log.jsonl").read_text().splitlines()]

    # Paired comparisons against random init (same test frames).
    compare_with_random(work, rows, a.bootstrap)
    ld_check = None if a.no_ld_check or only else ld_scale_check(b, work, base)
    md = render(a, rows, visibility, split_frames, started, ld_check)
    (work / "ablation.md").write_text(md)
    (work / "ablation.json").write_text(json.dumps(rows, indent=1, default=float))
    print(md)
    if a.write_docs:
        doc = REPO / "docs/benchmarks.md"
        text = doc.read_text()
        i, j = text.index(MARK_START), text.index(MARK_END)
        doc.write_text(text[: i + len(MARK_START)] + "\n" + md + "\n" + text[j:])
        log(f"wrote the table into {doc}")


TAGS = {"landmarks": "landmarks", "pixels32": "pixels32", "random_init": "random init (settled)",
        "MFDC_only": "MFDC only", "locating_only": "locating head only", "MFDC_p_MFRR": "MFDC + MFRR",
        "MFDC_p_MFRR_previous": "MFDC + MFRR, steps to sg(p_(m-1))", "full_MC-SFAU": "full MC-SFAU",
        "full_k2": "full, k = 2", "full_k10": "full, k = 10", "supervised": "supervised"}


def render_from_dir(a):
    """The tables of a scripts/gpu-bench-ablation.sh run folder."""
    work = pathlib.Path(a.from_dir)
    rows = {}
    for tag, name in TAGS.items():
        path = work / "probes" / tag / "probe.json"
        if not path.exists():
            continue
        rows[name] = {"tag": tag, "report": json.loads(path.read_text())}
        logf = work / "runs" / tag / "log.jsonl"
        if logf.exists() and tag != "supervised":
            recs = [json.loads(x) for x in logf.read_text().splitlines()]
            rows[name]["log"] = {"first": recs[0], "last": recs[-1], "diag": [r for r in recs if "diagnostics" in r]}
    if (work / "runs/supervised/log.jsonl").exists() and "supervised" in rows:
        rows["supervised"]["epochs"] = [json.loads(x) for x in (work / "runs/supervised/log.jsonl").read_text().splitlines()]
    compare_with_random(work, rows, a.bootstrap)
    crop = 256  # the paper preset's crops
    visibility = run(a.bin, "synth", "--au-visibility", crop, "--au-gain", a.au_gain, cwd=work)
    frames = json.loads((work / "manifests/bp4d/paper.frames.json").read_text())
    md = render(a, rows, visibility, {s["name"]: s["frames"] for s in frames["splits"]}, time.time(), None)
    times = (work / "times.txt").read_text() if (work / "times.txt").exists() else ""
    md = f"From {work} (scripts/gpu-bench-ablation.sh; paper preset). Times:\n\n```\n{times}```\n\n" + md
    (work / "ablation.md").write_text(md)
    print(md)


def compare_with_random(work, rows, resamples):
    """Each row against random init and against MFDC, paired over the same
    test subjects."""
    preds = {n: read_predictions(work / f"probes/{r['tag']}/test_predictions.csv") for n, r in rows.items()}
    au_names = next(iter(preds.values()))[4]
    for key, ref_name in [("vs_random", "random init (settled)"), ("vs_mfdc", "MFDC only")]:
        for n in rows:
            if n != ref_name and ref_name in preds:
                pa, pb = preds[n], preds[ref_name]
                point, lo, hi, au_lo, au_hi = paired_bootstrap(pa[1:4], pb[1:4], resamples)
                rows[n][key] = {"ap_diff": point, "lo": lo, "hi": hi,
                                "aus_above": [au for au, l in zip(au_names, au_lo) if l > 0],
                                "aus_below": [au for au, h in zip(au_names, au_hi) if h < 0]}


def identity_accuracy(work, probe_dir):
    """How well the probed features tell the 28 train subjects apart on tasks
    they were not fitted on (logistic regression on tasks T1-T4, scored on
    T5-T8): a check that pretraining learned *something*, whatever the AUs
    say. Reads the probe's feature cache (its key computed as
    model/src/probe/features.rs does)."""
    import hashlib
    from safetensors.numpy import load_file
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    shards = sorted(str(p) for p in (work / "shards/bp4d").rglob("*.parquet") if not p.name.startswith("."))
    h = hashlib.sha256()
    for p in shards:
        st = os.stat(p)
        h.update(f"{os.path.realpath(p)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    manifest = json.loads((work / "manifests/bp4d/paper.frames.json").read_text())
    split_hash = next(s["rows_sha256"] for s in manifest["splits"] if s["name"] == "train")
    ck = json.loads((work / probe_dir / "probe.json").read_text())["checkpoint"]["sha256"]
    key = hashlib.sha256()
    for part in ["mcsfau-probe-features-v1", ck, h.hexdigest(), split_hash, "train", "128"]:
        key.update(part.encode() + b"\n")
    path = work / "cache" / f"{key.hexdigest()}.safetensors"
    if not path.exists():
        return None
    x = load_file(str(path))["features"]
    ids = (work / "cache" / f"{key.hexdigest()}.ids.txt").read_text().split()
    subj = np.array([i.split("/")[1] for i in ids])
    task = np.array([int(i.split("/")[2].split("#")[0].lstrip("T")) for i in ids])
    fit, held = task <= 4, task > 4
    sc = StandardScaler().fit(x[fit])
    clf = LogisticRegression(max_iter=300, C=0.1).fit(sc.transform(x[fit]), subj[fit])
    return float(clf.score(sc.transform(x[held]), subj[held]))


def ld_scale_check(b, work, base):
    """The full model, 50 steps, diagnostics every 10: L_d in pixels^2 (the
    literal form) against the scale-free default (`unit`), at lr 0.01, and
    whether each survives lr 0.05."""
    out = {}
    for name, scale, lr, steps in [("pixel_sum", "pixel_sum", 0.01, 50), ("unit", "unit", 0.01, 50),
                                   ("pixel_sum@0.05", "pixel_sum", 0.05, 20), ("unit@0.05", "unit", 0.05, 20)]:
        cfg = json.loads(json.dumps(base))
        cfg["model"]["mfrr"]["ld_scale"] = scale
        cfg["optim"]["lr"] = lr
        cfg["output"]["diagnostics_every"] = 10
        tag = "ld_" + name.replace("@", "_")
        (work / f"{tag}.toml").write_text("\n".join(to_toml(cfg)) + "\n")
        shutil.rmtree(work / "runs" / tag, ignore_errors=True)
        r = subprocess.run([b, "pretrain", "--shards", "shards/voxceleb2", "--config", f"{tag}.toml", "--out",
                            f"runs/{tag}", "--steps", str(steps), "--device", "cpu"], cwd=work, capture_output=True,
                           text=True)
        recs = [json.loads(x) for x in (work / f"runs/{tag}/log.jsonl").read_text().splitlines()] \
            if (work / f"runs/{tag}/log.jsonl").exists() else []
        out[name] = {"rc": r.returncode, "stderr": r.stderr.strip().splitlines()[-1:] if r.returncode else [],
                     "records": recs}
        log(f"L_d check {name}: exit {r.returncode}")
    return out


def pct(v):
    return f"{100 * v:.1f}"


MOTION_PX = 2.5


def motion_split(rows, aus, visibility):
    """Mean per-AU AP gain over random init, separately for the AUs that move
    the landmarks by at least MOTION_PX at the occurrence threshold (a
    geometric pretraining signal should find those easy) and for those whose
    drawing is mostly texture (wrinkles, bulges, shading)."""
    moves = {}
    for line in visibility.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("AU"):
            try:
                moves[int(cells[0][2:])] = float(cells[1])
            except ValueError:
                pass
    ref = rows.get("random init (settled)")
    if not ref or not moves:
        return []
    motion = [i for i, u in enumerate(aus) if moves.get(u, 0.0) >= MOTION_PX]
    texture = [i for i, u in enumerate(aus) if moves.get(u, 0.0) < MOTION_PX]
    name = lambda idx: ", ".join(f"AU{aus[i]}" for i in idx)
    out = ["", f"Mean per-AU AP gain over random init (points), by how far the AU moves the landmarks at the "
           f"occurrence threshold: landmark motion >= {MOTION_PX} px ({name(motion)}) and mostly texture "
           f"(< {MOTION_PX} px: {name(texture)}):", "", "| representation | motion AUs | texture AUs |",
           "|---|---:|---:|"]
    base = [t["ap"] for t in ref["report"]["test"]]
    for n, r in rows.items():
        if n == "random init (settled)":
            continue
        ap = [t["ap"] for t in r["report"]["test"]]
        gain = lambda idx: 100 * sum(ap[i] - base[i] for i in idx) / max(len(idx), 1)
        out.append(f"| {n} | {gain(motion):+.1f} | {gain(texture):+.1f} |")
    return out


def render(a, rows, visibility, split_frames, started, ld_check):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    out = [f"Run {datetime.date.today()} on {cpu}, {os.cpu_count()} cores, debug build, CPU; "
           f"{time.time() - started:.0f} s in this invocation"
           f"{' (finished runs of earlier ones reused: their train s are from when they ran)' if a.reuse else ''}. Probe: `mcsfau probe --seed {a.probe_seeds} --select {a.select} "
           f"--pos-weight {a.pos_weight}`, "
           f"{a.bootstrap} bootstrap replicates over the {next(iter(rows.values()))['report']['bootstrap']['units']} "
           f"test subjects; test frames {split_frames.get('test')}, train {split_frames.get('train')}, "
           f"val {split_frames.get('val')}. Pretraining: small preset, {a.steps} steps of 32, seed {a.seed}; "
           f"random init settled by {a.settle} steps at lr 0; AU gain {a.au_gain}.", ""]
    out += ["| representation | mean F1 % [95 % CI] | mean AP % [95 % CI] | AP - random init [95 % CI] | "
            "AP - MFDC [95 % CI] | AUs above random (AP) | landmarks on test: p_2 / p_k / template px | "
            "identity acc. % | train s |",
            "|---|---:|---:|---:|---:|---|---|---:|---:|"]
    any_report = next(iter(rows.values()))["report"]
    floor = any_report["floor"]
    out.append(f"| all-present floor | {pct(floor['mean_f1'])} | {pct(floor['mean_ap'])} | | | | | | |")

    def interval(vs):
        return f"{pct(vs['ap_diff'])} [{pct(vs['lo'])}, {pct(vs['hi'])}]" if vs else ""

    for n, r in rows.items():
        rep, bs = r["report"], r["report"]["bootstrap"]
        vs = r.get("vs_random")
        above = ", ".join(vs["aus_above"]) if vs and vs["aus_above"] else ("none" if vs else "")
        det = rep.get("detector")
        geo = f"{det['p2_rms_px']:.2f} / {det['pk_rms_px']:.2f} / {det['template_rms_px']:.2f}" if det else ""
        if det and abs(det["p2_rms_px"] - det["template_rms_px"]) < 1e-6:
            geo = "untrained"  # a checkpoint whose detector never trained (supervised) sits on the template
        out.append(f"| {n} | {pct(rep['test_mean_f1'])} [{pct(bs['mean_f1'][0])}, {pct(bs['mean_f1'][1])}] | "
                   f"{pct(rep['test_mean_ap'])} [{pct(bs['mean_ap'][0])}, {pct(bs['mean_ap'][1])}] | "
                   f"{interval(vs)} | {interval(r.get('vs_mfdc'))} | "
                   f"{above} | {geo} | {pct(r['identity']) if r.get('identity') is not None else ''} | "
                   f"{'%.0f' % r['train_s'] if 'train_s' in r else ''} |")
    out += ["", "Per-AU test AP (%), mean over the probe seeds:", ""]
    aus = any_report["au_numbers"]
    out += ["| representation | " + " | ".join(f"AU{u}" for u in aus) + " |",
            "|---|" + "---:|" * len(aus)]
    out.append("| base rate (floor) | " + " | ".join(pct(t["base_rate"]) for t in any_report["test"]) + " |")
    for n, r in rows.items():
        out.append(f"| {n} | " + " | ".join(pct(t["ap"]) for t in r["report"]["test"]) + " |")
    out += motion_split(rows, aus, visibility)
    out += ["", "Pretraining diagnostics (first and last logged step; `log.jsonl`; p_2 and template: RMS "
            "distance to p_1, drift: mean distance of p_k to p_1, in 128 px crop pixels):", "",
            "| variant | L_total | L_s | L_d | proj. spread | grad share L_s / L_d / L_r / aL_c | p_2 px | "
            "template px | drift px | masked cells |", "|---|---|---|---|---|---|---|---|---|---|"]
    for n, r in rows.items():
        if "log" not in r:
            continue
        f, l, diag = r["log"]["first"], r["log"]["last"], r["log"]["diag"]

        def d(rec, key, fmt="{:.2f}"):
            v = (rec or {}).get("diagnostics", {}).get(key) if rec else None
            return fmt.format(v) if isinstance(v, (int, float)) else "-"

        def share(rec):
            if not rec:
                return "-"
            g = rec["diagnostics"]["grad_norm"]
            s = sum(g.values()) or 1.0
            return " / ".join(f"{100 * g[k] / s:.0f}" for k in ["l_s", "l_d", "l_r", "l_c"])

        d0, d1 = (diag[0] if diag else None), (diag[-1] if diag else None)
        out.append(f"| {n} | {f['total']:.3f} -> {l['total']:.3f} | {f['l_s']:.3f} -> {l['l_s']:.3f} | "
                   f"{f['l_d']:.3f} -> {l['l_d']:.3f} | {d(d0, 'proj_std')} -> {d(d1, 'proj_std')} | "
                   f"{share(d0)} -> {share(d1)} | {d(d0, 'loc_rms_px')} -> {d(d1, 'loc_rms_px')} | "
                   f"{d(d0, 'loc_template_rms_px')} -> {d(d1, 'loc_template_rms_px')} | "
                   f"{d(d0, 'drift_px')} -> {d(d1, 'drift_px')} | "
                   f"{d(d0, 'mask_fraction')} -> {d(d1, 'mask_fraction')} |")
    if "supervised" in rows:
        ep = rows["supervised"]["epochs"]
        out += ["", "Supervised ceiling, per epoch (val mean AP of its own head): "
                + ", ".join(f"{e['epoch']}: {pct(e['val_mean_ap'])}" for e in ep) + "."]
    if ld_check:
        out += ["", "Scale of L_d, full model, small preset (lr 0.01, 50 steps; and whether lr 0.05 survives 20 "
                "steps): L_d and each term's share of the backbone gradient (summed per-term norms) at steps "
                "10 / 30 / 50:", "",
                "| L_d form | exit | L_d | L_d / L_total | share L_s / L_d / L_r / aL_c |", "|---|---|---|---|---|"]
        for name, r in ld_check.items():
            recs = {x["step"]: x for x in r["records"] if "diagnostics" in x}
            cells = []
            for st in [10, 30, 50]:
                x = recs.get(st)
                if x:
                    g = x["diagnostics"]["grad_norm"]
                    s = sum(g.values()) or 1.0
                    cells.append((f"{x['l_d']:.3g}", f"{100 * x['l_d'] / x['total']:.0f} %",
                                  " / ".join(f"{100 * g[k] / s:.0f}" for k in ["l_s", "l_d", "l_r", "l_c"])))
            status = "ok" if r["rc"] == 0 else f"{r['rc']}: {' '.join(r['stderr'])}"
            join = lambda i: "; ".join(c[i] for c in cells) or "-"
            out.append(f"| {name} | {status} | {join(0)} | {join(1)} | {join(2)} |")
    out += ["", "AU visibility of the data (`mcsfau synth --au-visibility 128 --au-gain "
            f"{a.au_gain}`):", "", visibility.strip().split("\n", 1)[1]]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
