#!/usr/bin/env python3
"""Convert face_alignment's 2D-FAN weights to the safetensors file the `fan`
landmark backend loads (`mcsfau preprocess --landmarks fan:WEIGHTS`).

Inputs (either):
  * a state-dict checkpoint, e.g. 2DFAN4-11f355bf06.pth.tar: a dict with
    'state_dict' (keys prefixed 'module.', from DataParallel) or a bare
    state dict;
  * a TorchScript archive, e.g. 2DFAN4-cd938726ad.zip (face_alignment >= 1.3).

Output: float32 tensors named exactly as face_alignment's models.py names
them (conv1.weight, m0.b1_4.bn1.running_mean, l3.bias, ...), without the
'num_batches_tracked' counters, and metadata the Rust side reads:
format=mcsfau-fan, num_modules, hg_depth, features, pool (max|avg).

Pooling cannot be read from the weights. face_alignment moved the stem and
hourglass pooling to average pooling in January 2018 ("Fixes #32"), and
every file it publishes since (the hashed 2DFAN4-11f355bf06.pth.tar, which
face_alignment 1.5 loads into its average-pooling FAN, and the TorchScript
.zip releases) is average pooling. Only the original 2017 file (no hash in
its name, a DataParallel checkpoint {'state_dict': {'module.'...}}) was
trained with max pooling: pass --pool max for it. For TorchScript input the
pooling is read from the archive's code; a state dict defaults to avg (with
a note when it has the 2017 layout); --pool overrides both.

Usage:
  .venv/bin/python scripts/convert_fan.py 2DFAN4-11f355bf06.pth.tar fan.safetensors
  .venv/bin/python scripts/convert_fan.py 2DFAN4-cd938726ad.zip fan.safetensors
Needs torch, numpy, safetensors (the project venv has them).
"""

import argparse
import re
import sys
import zipfile

import torch
from safetensors.numpy import save_file

NUM_POINTS = 68


def expected_names(num_modules, depth):
    """Every tensor name of face_alignment's FAN (without num_batches_tracked)."""
    def bn(p):
        return [f"{p}.weight", f"{p}.bias", f"{p}.running_mean", f"{p}.running_var"]

    def block(p, downsample):
        names = bn(f"{p}.bn1") + [f"{p}.conv1.weight"] + bn(f"{p}.bn2") + [f"{p}.conv2.weight"]
        names += bn(f"{p}.bn3") + [f"{p}.conv3.weight"]
        if downsample:
            names += bn(f"{p}.downsample.0") + [f"{p}.downsample.2.weight"]
        return names

    names = ["conv1.weight", "conv1.bias"] + bn("bn1")
    names += block("conv2", True) + block("conv3", False) + block("conv4", True)
    for i in range(num_modules):
        for level in range(depth, 0, -1):
            for b in ("b1", "b2", "b3"):
                names += block(f"m{i}.{b}_{level}", False)
        names += block(f"m{i}.b2_plus_1", False)
        names += block(f"top_m_{i}", False)
        names += [f"conv_last{i}.weight", f"conv_last{i}.bias"] + bn(f"bn_end{i}")
        names += [f"l{i}.weight", f"l{i}.bias"]
        if i < num_modules - 1:
            names += [f"bl{i}.weight", f"bl{i}.bias", f"al{i}.weight", f"al{i}.bias"]
    return names


def load(path):
    """(state dict, pooling read from TorchScript code or None)."""
    if zipfile.is_zipfile(path):
        try:
            module = torch.jit.load(path, map_location="cpu")
        except RuntimeError:
            module = None
        if module is not None:
            code = []
            for _, sub in module.named_modules():
                try:
                    code.append(sub.code)
                except RuntimeError:
                    pass
            text = "\n".join(code)
            pool = "avg" if "avg_pool2d" in text else "max" if "max_pool2d" in text else None
            return dict(module.state_dict()), pool
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        ckpt = ckpt["state_dict"]
        if any(k.startswith("module.") for k in ckpt):
            print(f"note: {path} has the layout of the 2017 checkpoint (DataParallel 'state_dict'); "
                  "if it is that file (no hash in its name), convert it with --pool max", file=sys.stderr)
    if not isinstance(ckpt, dict):
        sys.exit(f"{path}: neither a state dict, a checkpoint with 'state_dict', nor TorchScript")
    return ckpt, None


def convert(src, dst, pool_override=None):
    sd, pool = load(src)
    sd = {re.sub(r"^module\.", "", k): v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    num_modules = len([k for k in sd if re.fullmatch(r"l\d+\.weight", k)])
    levels = [int(m.group(1)) for k in sd if (m := re.match(r"m0\.b1_(\d+)\.", k))]
    if num_modules == 0 or not levels or "l0.weight" not in sd:
        sys.exit(f"{src}: no FAN tensors found (expected names like m0.b1_4.conv1.weight, l0.weight)")
    depth = max(levels)
    features = sd["l0.weight"].shape[1]
    want = expected_names(num_modules, depth)
    missing = [n for n in want if n not in sd]
    extra = [n for n in sd if n not in set(want)]
    if missing or extra:
        sys.exit(f"{src}: not a 2D-FAN with {num_modules} stacks of depth {depth}: "
                 f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                 f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}")
    if sd["l0.weight"].shape[0] != NUM_POINTS:
        sys.exit(f"{src}: l0 predicts {sd['l0.weight'].shape[0]} heatmaps, expected {NUM_POINTS} (2D-FAN)")
    pool = pool_override or pool or "avg"
    tensors = {n: sd[n].detach().float().contiguous().numpy() for n in want}
    meta = {"format": "mcsfau-fan", "num_modules": str(num_modules), "hg_depth": str(depth),
            "features": str(features), "pool": pool, "source": str(src).rsplit("/", 1)[-1]}
    save_file(tensors, dst, metadata=meta)
    return meta, len(tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="2DFAN4 .pth.tar (state dict) or .zip (TorchScript)")
    ap.add_argument("dst", help="output .safetensors")
    ap.add_argument("--pool", choices=["max", "avg"], help="override the pooling (see above)")
    args = ap.parse_args()
    if not args.dst.endswith(".safetensors"):
        ap.error("the output name must end in .safetensors")
    meta, n = convert(args.src, args.dst, args.pool)
    print(f"{args.dst}: {n} tensors, {meta['num_modules']} stacks, depth {meta['hg_depth']}, "
          f"width {meta['features']}, {meta['pool']} pooling")


if __name__ == "__main__":
    main()
