"""Reference outputs of torchvision for model/tests/augment.rs.

Run from the repository root: .venv/bin/python model/tests/data/augment/gen_reference.py
Writes reference.safetensors next to this script (torch 2.11, torchvision 0.26).

Everything is float64 (torchvision's tensor ops keep the input's dtype), and
the Rust side runs the same operations in f64: in float32 the CPU's kernel
set (ATEN_CPU_CAPABILITY) moves reductions and interpolation by ~1e-7, which
is too close to a meaningful bound; in float64 by ~1e-16.
"""
from pathlib import Path

import torch
import torchvision.transforms.functional as F
from torchvision.transforms import _functional_tensor as FT
from safetensors.numpy import save_file
from torchvision.transforms import InterpolationMode

torch.set_default_dtype(torch.float64)
torch.manual_seed(0)
# Two 16x16 RGB images: smooth structure plus noise, values in [0, 1].
yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
base = torch.stack([xx / 15, yy / 15, (xx + yy) / 30])
x = (0.7 * base.unsqueeze(0) + 0.3 * torch.rand(2, 3, 16, 16)).clamp(0, 1)

brightness = torch.tensor([1.3, 0.6])
contrast = torch.tensor([0.5, 1.4])
saturation = torch.tensor([0.0, 1.8])
hue = torch.tensor([0.08, -0.3])
angles = torch.tensor([30.0, -50.0])


def adjust_hue_f64(img, hue_factor):
    """torchvision's adjust_hue without its cast to float32 (the public
    function converts every input to float32 first): the same _rgb2hsv /
    _hsv2rgb formulas, in float64."""
    h, s, v = FT._rgb2hsv(img).unbind(dim=-3)
    return FT._hsv2rgb(torch.stack(((h + hue_factor) % 1.0, s, v), dim=-3))


def per_sample(fn, factors):
    return torch.stack([fn(x[i], float(factors[i])) for i in range(x.shape[0])])


out = {
    "x": x,
    "brightness": brightness,
    "contrast": contrast,
    "saturation": saturation,
    "hue": hue,
    "angles": angles,
    "out_brightness": per_sample(F.adjust_brightness, brightness),
    "out_contrast": per_sample(F.adjust_contrast, contrast),
    "out_saturation": per_sample(F.adjust_saturation, saturation),
    "out_hue": per_sample(adjust_hue_f64, hue),
    # crop box top=0, left=0, height=10, width=12, resized back to 16x16
    "out_crop": F.resized_crop(x, 0, 0, 10, 12, [16, 16], InterpolationMode.BILINEAR, antialias=False),
    "out_rotate": per_sample(
        lambda img, a: F.rotate(img, a, InterpolationMode.BILINEAR, fill=[0.0, 0.0, 0.0]), angles
    ),
    "normalized": F.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}
save_file({k: v.contiguous().double().numpy() for k, v in out.items()}, str(Path(__file__).with_name("reference.safetensors")))
