#!/usr/bin/env python3
"""face_alignment's own landmark pipeline on real images, for the `fan`
backend's comparison test (pipeline/tests/landmarks_fan.rs).

For each image and face box, exactly as face_alignment 1.5.0's
`FaceAlignment.get_landmarks_from_image` does it (PyPI face-alignment==1.5.0):
centre = box centre with y moved up by CENTER_Y_OFFSET (0.12) of the box
height, scale = (w + h) / REFERENCE_SCALE (195); `utils.crop` (integer
window, cv2 INTER_LINEAR resize to 256x256, uint8); `/ 255`; its `FAN(4)`
network loaded from a `.pth.tar` state dict as face_alignment loads it;
`utils.get_preds_fromhm(out, center, scale)` on the float32 output.

Writes OUT (safetensors):
  crop_<k>        uint8 [256, 256, 3], face_alignment's crop
  heatmaps_<k>    float64 [68, 64, 64], its network on that crop in float64
  heatmaps32_<k>  float32 [68, 64, 64], its network in float32 (what it decodes)
  points_hm_<k>   float32 [68, 2], get_preds_fromhm's heatmap coordinates
  points_<k>      int32 [68, 2], get_preds_fromhm's image points (face_alignment
                  truncates them to integers in `transform_np`)
  points_exact_<k> float64 [68, 2], the same points without the truncation
                  (the inverse of face_alignment's transform, in float64)

Usage: fan_face_alignment.py --weights W.pth.tar --out OUT --image IMG x0 y0 x1 y1 [--image ...]
"""
import argparse

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--image", nargs=5, action="append", metavar=("PATH", "X0", "Y0", "X1", "Y1"), required=True)
    a = ap.parse_args()
    from face_alignment.models.fan import FAN
    from face_alignment.utils import CENTER_Y_OFFSET, REFERENCE_SCALE, SCALE_FACTOR, crop, get_preds_fromhm

    torch.set_num_threads(1)
    net = FAN(4)
    net.load_state_dict(torch.load(a.weights, map_location="cpu", weights_only=True))
    net.eval()
    net64 = FAN(4)
    net64.load_state_dict(net.state_dict())
    net64 = net64.double().eval()
    out = {}
    for k, (path, *box) in enumerate(a.image):
        image = np.asarray(Image.open(path).convert("RGB"))
        d = [float(v) for v in box]
        center = np.array([d[2] - (d[2] - d[0]) / 2.0, d[3] - (d[3] - d[1]) / 2.0])
        center[1] = center[1] - (d[3] - d[1]) * CENTER_Y_OFFSET
        scale = (d[2] - d[0] + d[3] - d[1]) / REFERENCE_SCALE
        c = crop(image, center, scale)
        inp = torch.from_numpy(c.transpose((2, 0, 1)).astype(np.float32) / 255.0)[None]
        with torch.no_grad():
            hm32 = net(inp)[-1].numpy().astype(np.float32)
            hm64 = net64(inp.double())[-1][0].numpy()
        pts, pts_img, _ = get_preds_fromhm(hm32, center, scale)
        h = SCALE_FACTOR * scale
        exact = pts[0].astype(np.float64) * h / 64.0 + center - h / 2.0
        out[f"crop_{k}"] = np.ascontiguousarray(c)
        out[f"heatmaps_{k}"] = np.ascontiguousarray(hm64)
        out[f"heatmaps32_{k}"] = np.ascontiguousarray(hm32[0])
        out[f"points_hm_{k}"] = np.ascontiguousarray(pts[0].astype(np.float32))
        out[f"points_{k}"] = np.ascontiguousarray(pts_img[0].astype(np.int32))
        out[f"points_exact_{k}"] = np.ascontiguousarray(exact)
    save_file(out, a.out)


if __name__ == "__main__":
    main()
