"""Reference outputs of torchvision for model/tests/augment.rs.

Run from the repository root: .venv/bin/python model/tests/data/augment/gen_reference.py
Writes reference.safetensors next to this script (torch 2.11, torchvision 0.26).
"""
from pathlib import Path

import torch
import torchvision.transforms.functional as F
from safetensors.numpy import save_file
from torchvision.transforms import InterpolationMode

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
    "out_hue": per_sample(F.adjust_hue, hue),
    # crop box top=0, left=0, height=10, width=12, resized back to 16x16
    "out_crop": F.resized_crop(x, 0, 0, 10, 12, [16, 16], InterpolationMode.BILINEAR, antialias=False),
    "out_rotate": per_sample(
        lambda img, a: F.rotate(img, a, InterpolationMode.BILINEAR, fill=[0.0, 0.0, 0.0]), angles
    ),
    "normalized": F.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}
save_file({k: v.contiguous().float().numpy() for k, v in out.items()}, str(Path(__file__).with_name("reference.safetensors")))
