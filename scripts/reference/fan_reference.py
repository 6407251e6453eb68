#!/usr/bin/env python3
"""PyTorch reference for the `fan` landmark backend (pipeline/src/landmarks/fan.rs).

2D-FAN (Bulat & Tzimiropoulos, "How far are we from solving the 2D & 3D Face
Alignment problem?", ICCV 2017) as face_alignment's models.py defines it:
ConvBlock, HourGlass (depth 4) and FAN with stacked hourglasses, with the
same module and parameter names, so its state dicts load unchanged. The
width (`features`, 256 in 2DFAN4), hourglass depth, number of stacks and the
pooling (max in the original 2017 weights, average in face_alignment >= 1.3)
are parameters so tests can use a tiny model with the same code path.

Modes:
  --tiny OUT_DIR     random tiny FAN (2 stacks, width 16): writes
                     fan_tiny.safetensors (weights, mcsfau layout) and
                     fan_tiny_io.safetensors (frames, boxes, crops subsampled,
                     heatmaps, decoded points), the arrays checked in under
                     pipeline/tests/data/ for the Rust parity test.
  --full OUT_DIR     face_alignment's own 2DFAN4 class (PyPI face-alignment
                     1.5.0) with random weights: writes 2DFAN4-random.pth.tar
                     (a bare state dict, as face_alignment 1.5 loads its
                     published file), 2DFAN4-2017-layout.pth.tar (the 2017
                     DataParallel layout), 2DFAN4-random.zip (TorchScript) and
                     full_io.safetensors (a 64x64 input, face_alignment's f64
                     heatmaps, and the same weights' heatmaps with max pooling),
                     for the convert_fan.py + full-model load test.

Reference values are computed in float64 (the float32 weights cast
exactly to float64): in float32 the CPU's kernel set (ATEN_CPU_CAPABILITY)
moves a deep network's outputs by ~1e-5, in float64 by ~1e-13, so the Rust
side, run in f64 for the strict check, can be held to a bound no CPU breaks.

Crop and decode follow face_alignment's conventions; see docs/landmarks.md
for the pixel conventions.
"""

import argparse
import copy
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import save_file as _save_np


def save_file(tensors, path, metadata=None):
    """safetensors.numpy (safetensors.torch needs the extra `packaging` module)."""
    _save_np({k: v.detach().cpu().contiguous().numpy() for k, v in tensors.items()}, path, metadata=metadata)

NUM_POINTS = 68


def conv3x3(in_planes, out_planes):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)


def pool2(x, pool):
    return F.max_pool2d(x, 2, stride=2) if pool == "max" else F.avg_pool2d(x, 2, stride=2)


class ConvBlock(nn.Module):
    def __init__(self, in_planes, out_planes):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = conv3x3(in_planes, int(out_planes / 2))
        self.bn2 = nn.BatchNorm2d(int(out_planes / 2))
        self.conv2 = conv3x3(int(out_planes / 2), int(out_planes / 4))
        self.bn3 = nn.BatchNorm2d(int(out_planes / 4))
        self.conv3 = conv3x3(int(out_planes / 4), int(out_planes / 4))
        if in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(in_planes),
                nn.ReLU(True),
                nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=1, bias=False),
            )
        else:
            self.downsample = None

    def forward(self, x):
        residual = x
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        out3 = torch.cat((out1, out2, out3), 1)
        if self.downsample is not None:
            residual = self.downsample(residual)
        return out3 + residual


class HourGlass(nn.Module):
    def __init__(self, depth, features, pool):
        super().__init__()
        self.depth = depth
        self.pool = pool
        self._generate_network(depth, features)

    def _generate_network(self, level, features):
        self.add_module("b1_" + str(level), ConvBlock(features, features))
        self.add_module("b2_" + str(level), ConvBlock(features, features))
        if level > 1:
            self._generate_network(level - 1, features)
        else:
            self.add_module("b2_plus_" + str(level), ConvBlock(features, features))
        self.add_module("b3_" + str(level), ConvBlock(features, features))

    def _forward(self, level, inp):
        up1 = self._modules["b1_" + str(level)](inp)
        low1 = self._modules["b2_" + str(level)](pool2(inp, self.pool))
        if level > 1:
            low2 = self._forward(level - 1, low1)
        else:
            low2 = self._modules["b2_plus_" + str(level)](low1)
        low3 = self._modules["b3_" + str(level)](low2)
        up2 = F.interpolate(low3, scale_factor=2, mode="nearest")
        return up1 + up2

    def forward(self, x):
        return self._forward(self.depth, x)


class FAN(nn.Module):
    def __init__(self, num_modules=4, depth=4, features=256, pool="max"):
        super().__init__()
        self.num_modules = num_modules
        self.pool = pool
        f = features
        self.conv1 = nn.Conv2d(3, f // 4, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(f // 4)
        self.conv2 = ConvBlock(f // 4, f // 2)
        self.conv3 = ConvBlock(f // 2, f // 2)
        self.conv4 = ConvBlock(f // 2, f)
        for i in range(num_modules):
            self.add_module("m" + str(i), HourGlass(depth, f, pool))
            self.add_module("top_m_" + str(i), ConvBlock(f, f))
            self.add_module("conv_last" + str(i), nn.Conv2d(f, f, kernel_size=1, stride=1, padding=0))
            self.add_module("bn_end" + str(i), nn.BatchNorm2d(f))
            self.add_module("l" + str(i), nn.Conv2d(f, NUM_POINTS, kernel_size=1, stride=1, padding=0))
            if i < num_modules - 1:
                self.add_module("bl" + str(i), nn.Conv2d(f, f, kernel_size=1, stride=1, padding=0))
                self.add_module("al" + str(i), nn.Conv2d(NUM_POINTS, f, kernel_size=1, stride=1, padding=0))

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = pool2(self.conv2(x), self.pool)
        x = self.conv3(x)
        x = self.conv4(x)
        previous = x
        outputs = []
        for i in range(self.num_modules):
            hg = self._modules["m" + str(i)](previous)
            ll = self._modules["top_m_" + str(i)](hg)
            ll = F.relu(self._modules["bn_end" + str(i)](self._modules["conv_last" + str(i)](ll)))
            tmp_out = self._modules["l" + str(i)](ll)
            outputs.append(tmp_out)
            if i < self.num_modules - 1:
                previous = previous + self._modules["bl" + str(i)](ll) + self._modules["al" + str(i)](tmp_out)
        return outputs


def randomize(model, seed):
    """Random weights and batch-norm statistics (eval mode uses the latter)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith("running_mean") or name.endswith(".bias"):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif t.dim() == 1:  # batch-norm weight
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            else:  # conv weight: He-style scale keeps activations O(1)
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * (1.0 / fan_in) ** 0.5)
                if name.split(".")[0].startswith("l"):  # heatmap heads: O(1) outputs
                    t.mul_(0.05)
    model.eval()
    return model


def mcsfau_state_dict(model):
    """The tensors the Rust side loads: no num_batches_tracked, float32."""
    return {k: v.detach().float().contiguous() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def metadata(num_modules, depth, features, pool):
    return {"format": "mcsfau-fan", "num_modules": str(num_modules), "hg_depth": str(depth),
            "features": str(features), "pool": pool}


def crop_params(box):
    """face_alignment's rule: centre of the box, y shifted up by 0.12 of its height; scale (w+h)/195."""
    x0, y0, x1, y1 = [float(v) for v in box]
    w, h = x1 - x0, y1 - y0
    center = np.array([x1 - w / 2.0, y1 - h / 2.0 - 0.12 * h])
    return center, (w + h) / 195.0


def crop(frame_hwc, box, res=256):
    """Bilinear crop, zero padding: crop pixel (u, v) samples the source at
    centre + ((u + 0.5, v + 0.5) - res/2) * side/res, side = 200 * scale
    (pixel-index coordinates), via grid_sample (align_corners=False), float64."""
    center, scale = crop_params(box)
    side = 200.0 * scale
    h, w = frame_hwc.shape[:2]
    c = (np.arange(res) + 0.5 - res / 2.0) * side / res
    xs, ys = center[0] + c, center[1] + c
    gx = (2.0 * xs + 1.0) / w - 1.0  # pixel index -> normalised, align_corners=False
    gy = (2.0 * ys + 1.0) / h - 1.0
    grid = torch.stack(torch.meshgrid(torch.from_numpy(gy), torch.from_numpy(gx), indexing="ij")[::-1], -1)
    img = torch.from_numpy(frame_hwc.astype(np.float64)).permute(2, 0, 1)[None]
    out = F.grid_sample(img, grid[None], mode="bilinear", padding_mode="zeros", align_corners=False)
    return (out[0] / 255.0).float()


def decode(hm, box):
    """face_alignment's get_preds_fromhm, then back through the crop transform.
    hm: [68, 64, 64] -> points [68, 2] (source pixels, float64), peaks [68]."""
    n, hh, ww = hm.shape
    flat = hm.reshape(n, -1)
    idx = flat.argmax(-1)
    peaks = flat[np.arange(n), idx]
    preds = np.stack([idx % ww + 1, idx // ww + 1], -1).astype(np.float64)  # 1-based
    for j in range(n):
        px, py = int(preds[j, 0]) - 1, int(preds[j, 1]) - 1
        if 0 < px < ww - 1 and 0 < py < hh - 1:
            diff = np.array([hm[j, py, px + 1] - hm[j, py, px - 1], hm[j, py + 1, px] - hm[j, py - 1, px]])
            preds[j] += np.sign(diff) * 0.25
    preds -= 0.5
    center, scale = crop_params(box)
    side = 200.0 * scale
    in_crop = preds * 4.0  # heatmap -> 256 crop
    return center + (in_crop - 128.0) * side / 256.0, peaks


def decode_margins(hm):
    """How far each decoded point is from changing: the smaller of the gap
    between the best and second-best heatmap value and the two neighbour
    differences that set the quarter-pixel shift (0 = a tie). The Rust test
    asserts these are far above float32 noise, so its float32 points can be
    compared exactly. hm: [68, 64, 64] -> [68]."""
    n, hh, ww = hm.shape
    flat = hm.reshape(n, -1)
    out = []
    for j in range(n):
        order = np.argsort(flat[j])[::-1]
        gap = flat[j, order[0]] - flat[j, order[1]]
        py, px = divmod(int(order[0]), ww)
        if 0 < px < ww - 1 and 0 < py < hh - 1:
            gap = min(gap, abs(hm[j, py, px + 1] - hm[j, py, px - 1]), abs(hm[j, py + 1, px] - hm[j, py - 1, px]))
        out.append(gap)
    return np.array(out)


def frames_and_boxes(rng):
    """Two synthetic frames (smooth blobs + noise) and face boxes, one box
    running past the frame edge so zero padding is exercised."""
    frames = []
    for k in range(2):
        h, w = 96, 128
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([np.sin(xx / (7 + 3 * c + k)) + np.cos(yy / (5 + 2 * c)) for c in range(3)], -1)
        img = 127.5 + 60 * base + rng.normal(0, 20, (h, w, 3))
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    boxes = np.array([[30.0, 20.0, 94.0, 84.0], [70.5, 40.0, 150.0, 110.0]], dtype=np.float32)
    return np.stack(frames), boxes


def write_tiny(out_dir):
    cfg = dict(num_modules=2, depth=4, features=16, pool="max")
    torch.manual_seed(0)
    model = randomize(FAN(**cfg), seed=1)
    weights = mcsfau_state_dict(model)
    save_file(weights, os.path.join(out_dir, "fan_tiny.safetensors"), metadata=metadata(**cfg))

    model64 = copy.deepcopy(model).double()
    # The first frame seed whose every decoded point is at least 1e-3 from a
    # tie (argmax or quarter-pixel shift), so float32 noise (~1e-6 here)
    # cannot move a point: the Rust test then compares points exactly.
    for frame_seed in range(2, 100):
        frames, boxes = frames_and_boxes(np.random.default_rng(frame_seed))
        crops = torch.stack([crop(f, b) for f, b in zip(frames, boxes)])
        with torch.no_grad():
            heatmaps = model64(crops.double())[-1]
        margins = np.stack([decode_margins(h.numpy()) for h in heatmaps])
        if margins.min() >= 1e-3:
            break
    else:
        raise SystemExit("no frame seed in 2..99 gives decode margins >= 1e-3")
    # The strict check: a small input (the network is fully convolutional).
    small = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        small_heatmaps = model64(small)[-1]
    points, scores = zip(*[decode(h.numpy(), b) for h, b in zip(heatmaps, boxes)])
    save_file({
        "frames": torch.from_numpy(frames),                        # [2, 96, 128, 3] u8
        "boxes": torch.from_numpy(boxes),                          # [2, 4]
        "crops_sub8": crops[:, :, ::8, ::8].contiguous(),         # [2, 3, 32, 32] f32
        "heatmaps": heatmaps.float().contiguous(),                 # [2, 68, 64, 64], f64 model, stored f32
        "points": torch.from_numpy(np.stack(points)).float(),      # [2, 68, 2]
        "peaks": torch.from_numpy(np.stack(scores)).float(),       # [2, 68]
        "decode_margins": torch.from_numpy(margins),               # [2, 68] f64
        "small_input": small,                                      # [2, 3, 64, 64] f64
        "small_heatmaps": small_heatmaps.contiguous(),             # [2, 68, 16, 16] f64
    }, os.path.join(out_dir, "fan_tiny_io.safetensors"))
    print(f"frame seed {frame_seed}: heatmaps range [{heatmaps.min():.3f}, {heatmaps.max():.3f}], "
          f"smallest decode margin {margins.min():.2e}")


def write_full(out_dir):
    """The full 2DFAN4 from face_alignment's own code (PyPI face-alignment
    1.5.0, `face_alignment.models.FAN`, average pooling), with random
    weights, saved the ways face_alignment's weights are published:
      * 2DFAN4-random.pth.tar: a bare state dict, as face_alignment 1.5 loads
        its hashed 2DFAN4-11f355bf06.pth.tar (`net.load_state_dict(torch.load(f))`);
      * 2DFAN4-2017-layout.pth.tar: the 2017 DataParallel layout
        ({'state_dict': {'module.' + name: tensor}});
      * 2DFAN4-random.zip: TorchScript, as the .zip releases.
    The reference heatmaps are face_alignment's network run in float64."""
    try:
        from face_alignment.models.fan import FAN as FaFAN
    except ImportError:
        raise SystemExit("needs PyPI face-alignment==1.5.0 in this venv (scripts/setup.sh installs it)")
    torch.manual_seed(0)
    model = randomize(FaFAN(4), seed=3)
    sd = model.state_dict()
    pth = os.path.join(out_dir, "2DFAN4-random.pth.tar")
    torch.save(sd, pth)
    # face_alignment's own loading path accepts the file
    check = FaFAN(4)
    check.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True))
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}},
               os.path.join(out_dir, "2DFAN4-2017-layout.pth.tar"))
    # A 64x64 input (16x16 heatmaps): the network is fully convolutional, and
    # this keeps the load-and-compare test of the full model fast.
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        traced = torch.jit.trace(model, x, check_trace=False, strict=False)
        heatmaps = copy.deepcopy(check).eval().double()(x.double())[-1]  # f64 reference
        # the same weights with max pooling (what the old default gave)
        ours_max = FAN(num_modules=4, depth=4, features=256, pool="max")
        ours_max.load_state_dict(sd)
        heatmaps_max = ours_max.eval().double()(x.double())[-1]
    traced.save(os.path.join(out_dir, "2DFAN4-random.zip"))
    save_file({"input": x, "heatmaps": heatmaps.contiguous(), "heatmaps_max_pool": heatmaps_max.contiguous()},
              os.path.join(out_dir, "full_io.safetensors"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", metavar="OUT_DIR")
    ap.add_argument("--full", metavar="OUT_DIR")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not (args.tiny or args.full):
        ap.error("give --tiny and/or --full")
    if args.tiny:
        os.makedirs(args.tiny, exist_ok=True)
        write_tiny(args.tiny)
    if args.full:
        os.makedirs(args.full, exist_ok=True)
        write_full(args.full)


if __name__ == "__main__":
    main()
