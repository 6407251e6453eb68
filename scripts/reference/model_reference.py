#!/usr/bin/env python3
"""PyTorch reference for the MC-SFAU model (docs/method.md).

Builds the `tiny` preset (dropout 0, so train mode is deterministic) in
float64 -- weights, inputs, noise and every output -- from PyTorch's own modules -- torchvision's ``Bottleneck``, ``nn.Transformer``,
``F.grid_sample``, ``F.kl_div`` -- with fixed seeds, runs one training-mode
forward of eq. 7 and one EMA update (eq. 1), and writes inputs, weights and
outputs for ``model/tests/parity.rs``:

Why float64: BatchNorm over a batch of 3 is ill-conditioned, and in float32
the CPU's kernel set alone (``ATEN_CPU_CAPABILITY`` default / avx2 / avx512)
moves some gradients by 3e-4 relative. In float64 the same changes are
~1e-12, so the Rust side (built and run in f64 for the test) can be held to
a bound no CPU can break.

* ``model/tests/data/mcsfau_tiny.safetensors``: ``in.*`` (P, P1, P2, p_1,
  noise, mask draws), ``online.*`` / ``target.*`` weights under the Rust
  model's variable names, ``out.*`` (the losses, p_k, the mask, F_p in train
  and eval mode), ``grad.*`` (d total / d a few parameters) and ``ema.*``
  (the target parameters after one EMA update). The config is in the
  metadata under ``config`` (JSON, the Rust ``ModelConfig`` layout).
* ``model/tests/data/mcsfau_variant.safetensors``: the same for ``VARIANT``,
  the other branch of every option (output stride 16, pixel-sum L_d, later
  detector steps targeting sg(p_(m-1)), masks at p_1, per-landmark mask
  draws).
* ``model/tests/data/mcsfau_denoise.safetensors``: the same for ``DENOISE``,
  the earlier reading of eq. 3 (a denoising cascade), kept for comparison.

The locating detector (the default) starts from the alignment template,
whose face-box coordinates are read from ``schemas/src/template.rs`` (data,
not code: the pixel formula is computed here independently).
* ``model/tests/data/masks_paper.safetensors``: eq. 4 masks at the paper's
  geometry (256 px, 8x8 cells, r = 40) for random points.

Run from the repository root: ``.venv/bin/python scripts/reference/model_reference.py
[--out DIR]``. ``just model-reference`` regenerates the files and runs the
parity tests against them.
"""

import argparse
import json
import os
import pathlib
import re
import warnings

import torch
import torch.nn.functional as F
from safetensors.numpy import save_file
from torch import nn
from torchvision.models.resnet import Bottleneck

# The Rust `ModelConfig::tiny()` with transformer dropout 0.
CONFIG = {
    "image_size": 64,
    "backbone": {"width": 4, "blocks": [1, 1, 1, 1], "output_stride": 32},
    "mfdc": {"enabled": True, "hidden": 64, "dim": 32, "tau": 0.99},
    "mfrr": {
        "enabled": True,
        "reconstruct": True,
        "detector": "locate",
        "k": 50,
        "loc_unit": 2.0,
        "loc_channels": 16,
        "loc_embed": 8,
        "sigma_max": 1.0,
        "refiner_hidden": 32,
        "r": 10.0,
        "gamma": 0.6,
        "mask_mode": "per_sample",
        "ld_scale": "unit",
        "cascade_target": "landmarks",
        "mask_at": "refined",
        "transformer": {
            "d_model": 32,
            "heads": 4,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "ff_dim": 64,
            "dropout": 0.0,
        },
    },
    "mci": {"enabled": True, "hidden": 64, "dim": 32, "alpha": 0.05},
    "bf16_autocast": False,
}
# The other branch of every option: output stride 16 (layer4 dilated, a 4x4
# map at 64 px), the literal pixel-sum L_d, later steps targeting
# sg(p_(m-1)), masks at p_1, one mask draw per landmark; k = 6.
VARIANT = json.loads(json.dumps(CONFIG))
VARIANT["backbone"]["output_stride"] = 16
VARIANT["mfrr"].update(k=6, ld_scale="pixel_sum", cascade_target="previous", mask_at="landmarks",
                       mask_mode="per_landmark")
# The earlier reading of eq. 3: the denoising cascade with its own defaults
# (jitter-scaled L_d, each step toward sg(p_(m-1))); k = 6.
DENOISE = json.loads(json.dumps(CONFIG))
DENOISE["mfrr"].update(detector="denoise", k=6, ld_scale="jitter", cascade_target="previous")
N_LANDMARKS = 49
REPO = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE_SCALE = 170.0 / 256.0


def template(image_size):
    """The alignment template in image pixels, [49, 2]: the face-box
    coordinates (f32 constants in the Rust source) scaled about the centre."""
    text = (REPO / "schemas/src/template.rs").read_text()
    rows = re.findall(r"\[([0-9.]+), ([0-9.]+)\], // \d+", text)
    unit = torch.tensor([[float(x), float(y)] for x, y in rows], dtype=torch.float32).double()
    assert unit.shape == (N_LANDMARKS, 2), unit.shape
    return image_size / 2 + TEMPLATE_SCALE * image_size * (unit - 0.5)
# nn.Transformer(batch_first=True) warns about its own inference fast path.
warnings.filterwarnings("ignore", message="enable_nested_tensor")


class ResNet(nn.Module):
    """torchvision's ResNet layout with a configurable base width, no fc;
    output stride 16 = torchvision's replace_stride_with_dilation=[False,
    False, True] (layer4: stride 1, the first block at dilation 1, the
    others at 2)."""

    def __init__(self, width, blocks, output_stride=32):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = width
        for i, n in enumerate(blocks):
            dilated = i == 3 and output_stride == 16
            planes, stride = width << i, 1 if i == 0 or dilated else 2
            layers = []
            for b in range(n):
                s = stride if b == 0 else 1
                down = None
                if s != 1 or c_in != planes * 4:
                    down = nn.Sequential(nn.Conv2d(c_in, planes * 4, 1, s, bias=False), nn.BatchNorm2d(planes * 4))
                layers.append(Bottleneck(c_in, planes, s, down, dilation=2 if dilated and b > 0 else 1))
                c_in = planes * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.channels = c_in

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def mlp(c_in, hidden, c_out):
    return nn.Sequential(nn.Linear(c_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, c_out))


class Refiner(nn.Module):
    def __init__(self, c, hidden, image_size):
        super().__init__()
        self.fc1, self.fc2, self.image_size = nn.Linear(c + 2, hidden), nn.Linear(hidden, 2), image_size

    def forward(self, f_p, points):  # [B,C,H,W], [B,N,2] px -> [B,N,2] px
        grid = points * (2.0 / self.image_size) - 1.0
        feats = F.grid_sample(f_p, grid.unsqueeze(1), mode="bilinear", padding_mode="zeros", align_corners=False)
        feats = feats.squeeze(2).transpose(1, 2)
        return self.fc2(F.relu(self.fc1(torch.cat([feats, grid], -1))))


class Locator(nn.Module):
    """The locating detector (model/src/locator.rs): p_2 = T + u D_0(F_p),
    p_m = p_(m-1) + u / (m - 2) tanh(D(F_p, p_(m-1), n))."""

    def __init__(self, c, side, m, image_size):
        super().__init__()
        g = nn.Module()
        g.conv = nn.Conv2d(c, m["loc_channels"], 1)
        g.fc = nn.Linear(m["loc_channels"] * side * side, 2 * N_LANDMARKS)
        self.add_module("global", g)  # `global` is a Python keyword
        r = nn.Module()
        r.embed = nn.Parameter(torch.randn(N_LANDMARKS, m["loc_embed"]))
        r.fc1 = nn.Linear(c + 2 + m["loc_embed"], m["refiner_hidden"])
        r.fc2 = nn.Linear(m["refiner_hidden"], 2)
        self.refine = r
        self.image_size, self.unit = image_size, m["loc_unit"]
        self.template = template(image_size)  # not a parameter, not saved

    def locate(self, f_p):  # [B,C,H,W] -> [B,49,2] px
        g = getattr(self, "global")
        offsets = g.fc(F.relu(g.conv(f_p)).flatten(1)).reshape(-1, N_LANDMARKS, 2)
        return self.template.to(offsets.dtype)[None] + offsets * self.unit

    def offsets(self, f_p, points, m):  # [B,C,H,W], [B,49,2] px, step m >= 3 -> [B,49,2] px
        grid = points * (2.0 / self.image_size) - 1.0
        feats = F.grid_sample(f_p, grid.unsqueeze(1), mode="bilinear", padding_mode="zeros", align_corners=False)
        feats = feats.squeeze(2).transpose(1, 2)
        ids = self.refine.embed[None].expand(points.shape[0], -1, -1)
        h = F.relu(self.refine.fc1(torch.cat([feats, grid, ids], -1)))
        return torch.tanh(self.refine.fc2(h)) * (self.unit / (m - 2))


class Reconstructor(nn.Module):
    def __init__(self, c, side, t):
        super().__init__()
        d = t["d_model"]
        self.input_proj = nn.Linear(c, d)
        self.row_embed = nn.Parameter(torch.randn(side, d) * 0.02)
        self.col_embed = nn.Parameter(torch.randn(side, d) * 0.02)
        self.transformer = nn.Transformer(
            d, t["heads"], t["encoder_layers"], t["decoder_layers"], t["ff_dim"], t["dropout"], batch_first=True
        )
        self.output_proj = nn.Linear(d, c)

    def forward(self, f_mask):  # [B,C,H,W] -> [B,C,H,W]
        b, c, h, w = f_mask.shape
        pos = (self.row_embed[:, None] + self.col_embed[None]).reshape(h * w, -1)
        tokens = self.input_proj(f_mask.flatten(2).transpose(1, 2)) + pos
        out = self.transformer(tokens, tokens)
        return self.output_proj(out).transpose(1, 2).reshape(b, c, h, w)


def head(c, hidden, dim):
    return nn.Sequential(nn.Linear(c, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class Online(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        w, m, d = cfg["backbone"]["width"], cfg["mfdc"], cfg["mfrr"]
        self.backbone = ResNet(w, cfg["backbone"]["blocks"], cfg["backbone"]["output_stride"])
        c = self.backbone.channels
        self.projector = mlp(c, m["hidden"], m["dim"])
        self.predictor = mlp(m["dim"], m["hidden"], m["dim"])
        if d["detector"] == "locate":
            self.locator = Locator(c, side(cfg), d, cfg["image_size"])
        else:
            self.refiner = Refiner(c, d["refiner_hidden"], cfg["image_size"])
        self.reconstructor = Reconstructor(c, side(cfg), d["transformer"])
        self.mci = nn.Module()
        self.mci.p_m = head(c, cfg["mci"]["hidden"], cfg["mci"]["dim"])
        self.mci.p_r = head(c, cfg["mci"]["hidden"], cfg["mci"]["dim"])


class Target(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.backbone = ResNet(cfg["backbone"]["width"], cfg["backbone"]["blocks"], cfg["backbone"]["output_stride"])
        m = cfg["mfdc"]
        self.projector = mlp(self.backbone.channels, m["hidden"], m["dim"])


def side(cfg):
    return cfg["image_size"] // cfg["backbone"]["output_stride"]


def pool(f):
    return f.mean(dim=(2, 3))


def byol_loss(v, z):  # eq. 2, batch mean
    return (2 - 2 * (F.normalize(v, dim=-1) * F.normalize(z, dim=-1)).sum(-1)).mean()


def sigmas(k, sigma_max):
    steps = k - 1
    if steps <= 1:
        return [sigma_max] * steps
    return [sigma_max * (steps - 1 - j) / (steps - 1) for j in range(steps)]


def landmark_mask(points, apply, image_size, side, r):  # eq. 4, [B,H,W] bool
    """apply: [B] (per sample / per batch) or [B, N] (per landmark)."""
    centres = (torch.arange(side, dtype=points.dtype) + 0.5) * (image_size / side)
    half = r / 2.0
    in_x = (centres[None, None, :] - points[..., 0:1]).abs() <= half  # [B,N,W]
    in_y = (centres[None, None, :] - points[..., 1:2]).abs() <= half  # [B,N,H]
    inside = in_y[..., :, None] & in_x[..., None, :]  # [B,N,H,W]
    if apply.dim() == 2:
        return (inside & apply[:, :, None, None]).any(dim=1)
    return inside.any(dim=1) & apply[:, None, None]


def losses(online, target, cfg, p, p1, p2, p_1, noise, apply):
    """Eq. 7, as model/src/mcsfau.rs computes it (same order of forwards)."""
    f_mac = online.backbone(p1)
    f_mac2 = online.backbone(p2)
    v1 = online.predictor(online.projector(pool(f_mac)))
    v2 = online.predictor(online.projector(pool(f_mac2)))
    with torch.no_grad():
        z1 = target.projector(pool(target.backbone(p1)))
        z2 = target.projector(pool(target.backbone(p2)))
    l_s = 0.5 * (byol_loss(v1, z2) + byol_loss(v2, z1))

    f_p = online.backbone(p)
    m = cfg["mfrr"]
    anchor = p_1.detach()
    p_2 = None
    if m["detector"] == "locate":  # eq. 3, the detector locates from F_p
        p_2 = online.locator.locate(f_p)
        locating, pts, refining = F.mse_loss(p_2, anchor), p_2, []
        for step in range(3, m["k"] + 1):
            prev = pts.detach()
            pts = prev + online.locator.offsets(f_p, prev, step)
            refining.append(F.mse_loss(pts, anchor if m["cascade_target"] == "landmarks" else prev))
        total_refining = torch.zeros(())
        for t in refining:
            total_refining = total_refining + t
        if m["ld_scale"] == "pixel_sum":
            l_d = locating + total_refining
        else:  # "unit": locating term + mean refinement term, over loc_unit^2
            mean_refining = total_refining / len(refining) if refining else total_refining
            l_d = (locating + mean_refining) / m["loc_unit"] ** 2
        p_2 = p_2.detach()
    else:  # the earlier reading: a denoising cascade
        pts, l_d, steps = anchor, torch.zeros(()), sigmas(m["k"], m["sigma_max"])
        for j, sigma in enumerate(steps):
            prev = pts.detach()
            jittered = prev + noise[j] * sigma
            pts = jittered + online.refiner(f_p, jittered)
            l_d = l_d + F.mse_loss(pts, prev if m["cascade_target"] == "previous" else anchor)
        if m["ld_scale"] == "jitter":  # scale-free: mean over steps, over sigma_max^2
            l_d = l_d / (len(steps) * m["sigma_max"] ** 2)
    p_k = pts.detach()
    centres = p_k if m["mask_at"] == "refined" else anchor
    mask = landmark_mask(centres, apply, cfg["image_size"], side(cfg), m["r"])
    f_mask = f_p * (~mask).unsqueeze(1).float()
    f_mic = online.reconstructor(f_mask)
    l_r = F.mse_loss(f_mic, f_p.detach())  # eq. 5
    c_mac, c_mic = online.mci.p_m(pool(f_mac)), online.mci.p_r(pool(f_mic))
    l_c = F.kl_div(F.log_softmax(c_mac, -1), F.log_softmax(c_mic, -1), reduction="batchmean", log_target=True)
    total = l_s + l_d + l_r + cfg["mci"]["alpha"] * l_c
    out = dict(l_s=l_s, l_d=l_d, l_r=l_r, l_c=l_c, total=total, refined=p_k, mask=mask, f_p=f_p)
    if p_2 is not None:
        out["located"] = p_2
    return out


def weights(module, prefix):
    return {f"{prefix}{k}": v.detach().clone() for k, v in module.state_dict().items() if "num_batches_tracked" not in k}


GRAD_NAMES = [
    "backbone.conv1.weight",
    "backbone.layer4.0.conv3.weight",
    "projector.0.weight",
    "predictor.3.bias",
    "reconstructor.input_proj.weight",
    "reconstructor.transformer.decoder.layers.0.multihead_attn.in_proj_weight",
    "reconstructor.row_embed",
    "mci.p_m.0.weight",
    "mci.p_r.2.bias",
]
DETECTOR_GRAD_NAMES = {
    "locate": ["locator.global.conv.weight", "locator.global.fc.weight", "locator.refine.embed",
               "locator.refine.fc1.weight", "locator.refine.fc2.bias"],
    "denoise": ["refiner.fc1.weight"],
}


def tiny_reference(cfg):
    torch.set_default_dtype(torch.float64)  # weights, inputs, noise: all f64
    try:
        return _tiny_reference(cfg)
    finally:
        torch.set_default_dtype(torch.float32)


def _tiny_reference(cfg):
    torch.manual_seed(0)
    online, target = Online(cfg), Target(cfg)
    with torch.no_grad():  # the target differs from the online net, so the EMA test means something
        for name, t in target.named_parameters():
            t.copy_(online.get_parameter(name) + 0.05 * torch.randn_like(t))
    online.train()
    target.train()
    b, s, k = 3, cfg["image_size"], cfg["mfrr"]["k"]
    p, p1, p2 = (torch.randn(b, 3, s, s) for _ in range(3))
    p_1 = torch.rand(b, N_LANDMARKS, 2) * (s - 8) + 4
    noise = torch.randn(k - 1, b, N_LANDMARKS, 2)
    if cfg["mfrr"]["mask_mode"] == "per_landmark":
        apply = torch.rand(b, N_LANDMARKS) < cfg["mfrr"]["gamma"]
        apply[1] = False  # one sample without any square
    else:
        apply = torch.tensor([True, False, True])
    tensors = {"in.p": p, "in.p1": p1, "in.p2": p2, "in.landmarks": p_1, "in.noise": noise, "in.apply_mask": apply}
    tensors |= weights(online, "online.") | weights(target, "target.")

    out = losses(online, target, cfg, p, p1, p2, p_1, noise, apply)
    out["total"].backward()
    for name in GRAD_NAMES + DETECTOR_GRAD_NAMES[cfg["mfrr"]["detector"]]:
        tensors[f"grad.{name}"] = online.get_parameter(name).grad.detach().clone()
    for key in ["l_s", "l_d", "l_r", "l_c", "total", "refined", "mask", "f_p", "located"]:
        if key in out:
            tensors[f"out.{key}"] = out[key].detach().clone()
    online.eval()
    with torch.no_grad():
        tensors["out.f_p_eval"] = online.backbone(p)  # running statistics after the three forwards
        tau = cfg["mfdc"]["tau"]
        for name, t in target.named_parameters():  # eq. 1
            t.mul_(tau).add_(online.get_parameter(name), alpha=1 - tau)
            tensors[f"ema.{name}"] = t.detach().clone()
    return tensors, {"config": json.dumps(cfg)}


def paper_masks():
    torch.manual_seed(1)
    b = 4
    points = torch.rand(b, N_LANDMARKS, 2) * 256.0
    points[0, 0] = torch.tensor([68.0, 48.0])  # exactly on a square's edge: |68 - 48| = 20 = r/2
    apply = torch.tensor([True, True, False, True])
    mask = landmark_mask(points, apply, 256, 8, 40.0)
    return {"points": points, "apply": apply, "mask": mask}


def to_numpy(tensors):
    # safetensors.numpy: safetensors.torch would need the `packaging` module.
    return {k: v.detach().contiguous().numpy() for k, v in tensors.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="model/tests/data", help="output folder (default: %(default)s)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    tensors, meta = tiny_reference(CONFIG)
    save_file(to_numpy(tensors), os.path.join(args.out, "mcsfau_tiny.safetensors"), meta)
    variant, meta = tiny_reference(VARIANT)
    save_file(to_numpy(variant), os.path.join(args.out, "mcsfau_variant.safetensors"), meta)
    denoise, meta = tiny_reference(DENOISE)
    save_file(to_numpy(denoise), os.path.join(args.out, "mcsfau_denoise.safetensors"), meta)
    save_file(to_numpy(paper_masks()), os.path.join(args.out, "masks_paper.safetensors"))
    print(f"wrote {len(tensors)} tensors to {args.out}")


if __name__ == "__main__":
    main()
