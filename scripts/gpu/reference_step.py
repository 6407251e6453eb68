#!/usr/bin/env python3
"""Times one MC-SFAU pretraining step in PyTorch eager, for comparison with
`mcsfau-train pretrain` in scripts/gpu-check.sh.

The model is scripts/reference/model_reference.py's (torchvision Bottleneck,
nn.Transformer, eq. 3-7 exactly as model/src/mcsfau.rs orders them), built
at the paper preset (ResNet-50, 256x256, the locating landmark detector
with k = 50, Transformer 512/8/6/6).
A step: forward of eq. 7 on fresh random P, P1, P2 and landmarks (no loader,
no augmentation: those are only in the Rust figure), backward,
torch.optim.SGD(lr 1e-3, momentum 0.9, weight decay 5e-4), EMA (eq. 1).
Prints one JSON line: images/s over the timed steps and peak CUDA memory.

Usage: python scripts/gpu/reference_step.py [--batch 256] [--steps 30] [--warmup 5] [--bf16]
"""

import argparse
import json
import os
import sys
import time
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
if "safetensors" not in sys.modules:
    try:
        import safetensors.numpy  # noqa: F401  (only the reference's file writer needs it)
    except ImportError:
        stub = types.ModuleType("safetensors.numpy")
        stub.save_file = None
        sys.modules["safetensors"] = types.ModuleType("safetensors")
        sys.modules["safetensors.numpy"] = stub
import model_reference as ref  # noqa: E402

PAPER = {
    "image_size": 256,
    "backbone": {"width": 64, "blocks": [3, 4, 6, 3], "output_stride": 32},
    "mfdc": {"enabled": True, "hidden": 4096, "dim": 256, "tau": 0.99},
    "mfrr": {
        "enabled": True, "reconstruct": True, "detector": "locate", "k": 50, "loc_unit": 8.0, "loc_channels": 64,
        "loc_embed": 16, "sigma_max": 4.0, "refiner_hidden": 256, "r": 40.0, "gamma": 0.6,
        "mask_mode": "per_sample", "ld_scale": "unit", "cascade_target": "landmarks", "mask_at": "refined",
        "transformer": {"d_model": 512, "heads": 8, "encoder_layers": 6, "decoder_layers": 6, "ff_dim": 2048,
                        "dropout": 0.1},
    },
    "mci": {"enabled": True, "hidden": 2048, "dim": 256, "alpha": 0.05},
}


def landmark_mask(points, apply, image_size, side, r):  # eq. 4 on the points' device
    centres = (torch.arange(side, dtype=torch.float32, device=points.device) + 0.5) * (image_size / side)
    half = r / 2.0
    in_x = (centres[None, None, :] - points[..., 0:1]).abs() <= half
    in_y = (centres[None, None, :] - points[..., 1:2]).abs() <= half
    inside = (in_y[..., :, None] & in_x[..., None, :]).any(dim=1)
    return inside & apply[:, None, None]


ref.landmark_mask = landmark_mask


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--bf16", action="store_true", help="forward under CUDA bf16 autocast")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke test of this script)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    torch.backends.cudnn.benchmark = True
    cfg = PAPER
    online, target = ref.Online(cfg).to(dev), ref.Target(cfg).to(dev)
    target.load_state_dict({k: v for k, v in online.state_dict().items() if k in target.state_dict()})
    for p in target.parameters():
        p.requires_grad_(False)
    online.train()
    target.train()
    opt = torch.optim.SGD(online.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    b, s, k = a.batch, cfg["image_size"], cfg["mfrr"]["k"]
    template = ref.template(s).float().to(dev)

    def step():
        p, p1, p2 = (torch.randn(b, 3, s, s, device=dev) for _ in range(3))
        p_1 = template + 3.0 * torch.randn(b, ref.N_LANDMARKS, 2, device=dev)  # aligned faces
        noise = torch.randn(k - 1, b, ref.N_LANDMARKS, 2, device=dev)
        apply = torch.rand(b, device=dev) < cfg["mfrr"]["gamma"]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16 and cuda):
            out = ref.losses(online, target, cfg, p, p1, p2, p_1, noise, apply)
        opt.zero_grad(set_to_none=True)
        out["total"].float().backward()
        opt.step()
        with torch.no_grad():  # eq. 1
            tau = cfg["mfdc"]["tau"]
            for name, t in target.named_parameters():
                t.mul_(tau).add_(online.get_parameter(name), alpha=1 - tau)
        return out["total"]

    for _ in range(a.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        total = step()
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print(json.dumps({
        "what": "pytorch eager step (model_reference.py, paper preset, random tensors)",
        "torch": torch.__version__, "device": torch.cuda.get_device_name(0) if cuda else "cpu", "batch": b, "bf16": a.bf16,
        "steps": a.steps, "images_per_s": a.steps * b / dt, "step_ms": 1000 * dt / a.steps,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None, "last_total": float(total.detach()),
    }))


if __name__ == "__main__":
    main()
