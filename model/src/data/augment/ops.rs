//! Batched tensor operations of the augmentation, each a small pure function
//! on float images in [0, 1], `[B, 3, H, W]`, with per-sample parameters as
//! tensors. The color operations follow torchvision's `functional_tensor`
//! formulas (checked against torchvision in `model/tests/augment.rs`, in
//! f64: every operation computes in its input's kind).

use tch::{Kind, Tensor};

use crate::precision::wide_kind;

/// ImageNet channel means the torchvision ResNet-50 weights expect (RGB).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// `(x - mean) / std` per channel: what the backbone is fed.
pub fn normalize(x: &Tensor) -> Tensor {
    let opts = (wide_kind(x.kind()), x.device());
    let mean = Tensor::from_slice(&IMAGENET_MEAN).to_kind(opts.0).to_device(opts.1).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&IMAGENET_STD).to_kind(opts.0).to_device(opts.1).view([1, 3, 1, 1]);
    (x - mean) / std
}

/// The 2x3 sampling matrix (output -> input, normalized coordinates in
/// [-1, 1], `align_corners = false`) of a crop of `w x h` (fractions of the
/// image side) centred at `(cx, cy)` (normalized), rotated by `angle`
/// radians counter-clockwise as seen on screen (torchvision's sign).
///
/// An output point `o` samples the input at `c + diag(w, h) R(angle) o`,
/// with `R = [[cos, -sin], [sin, cos]]` in y-down image coordinates.
pub fn affine_theta(w: f64, h: f64, cx: f64, cy: f64, angle: f64) -> [f64; 6] {
    let (s, c) = angle.sin_cos();
    [w * c, -w * s, cx, h * s, h * c, cy]
}

/// Resamples `x` through `theta` `[B, 2, 3]` (cast to `x`'s kind) in one
/// `affine_grid` + `grid_sample` (bilinear). Inside the image, edges are
/// clamped (as torchvision's resize does); points that fall outside the
/// image are black (torchvision's rotation fill 0).
pub fn warp(x: &Tensor, theta: &Tensor) -> Tensor {
    let size = x.size(); // [B, 3, H, W]
    let theta = theta.to_kind(x.kind());
    let grid = Tensor::affine_grid_generator(&theta, &size, false); // [B, H, W, 2]
    let sampled = x.grid_sampler_2d(&grid, 0, 1, false); // bilinear, border padding
    let inside = grid.abs().amax([-1i64], false).le(1.0 + 1e-6).unsqueeze(1); // [B, 1, H, W]
    sampled * inside.to_kind(x.kind())
}

/// Luma with torchvision's weights (0.2989, 0.587, 0.114), `[B, 1, H, W]`.
pub fn grayscale(x: &Tensor) -> Tensor {
    let c = x.unbind(1);
    (&c[0] * 0.2989 + &c[1] * 0.587 + &c[2] * 0.114).unsqueeze(1)
}

fn blend(a: &Tensor, b: &Tensor, ratio: &Tensor) -> Tensor {
    let mixed: Tensor = ratio * a + (1.0 - ratio) * b;
    mixed.clamp(0.0, 1.0)
}

/// Scales intensities by `factor` `[B, 1, 1, 1]` (1 = unchanged).
pub fn adjust_brightness(x: &Tensor, factor: &Tensor) -> Tensor {
    (x * factor).clamp(0.0, 1.0)
}

/// Blends with the mean grey level of each image by `factor` `[B, 1, 1, 1]`.
pub fn adjust_contrast(x: &Tensor, factor: &Tensor) -> Tensor {
    let mean = grayscale(x).mean_dim(&[1i64, 2, 3][..], true, x.kind()); // [B, 1, 1, 1]
    blend(x, &mean, factor)
}

/// Blends with the grey image by `factor` `[B, 1, 1, 1]` (0 = grey).
pub fn adjust_saturation(x: &Tensor, factor: &Tensor) -> Tensor {
    blend(x, &grayscale(x), factor)
}

/// Rotates hue by `shift` `[B, 1, 1]` turns (in [-0.5, 0.5]), through HSV.
pub fn adjust_hue(x: &Tensor, shift: &Tensor) -> Tensor {
    let hsv = rgb_to_hsv(x).unbind(1);
    let h = (&hsv[0] + shift).remainder(1.0);
    hsv_to_rgb(&h, &hsv[1], &hsv[2])
}

/// torchvision's `_rgb2hsv`: `[B, 3, H, W]` RGB -> H, S, V in [0, 1].
fn rgb_to_hsv(x: &Tensor) -> Tensor {
    let c = x.unbind(1);
    let (r, g, b) = (&c[0], &c[1], &c[2]);
    let maxc = x.amax([1i64], false);
    let minc = x.amin([1i64], false);
    let eqc = maxc.eq_tensor(&minc);
    let cr = &maxc - &minc;
    let ones = maxc.ones_like();
    let s = &cr / ones.where_self(&eqc, &maxc);
    let div = ones.where_self(&eqc, &cr);
    let (rc, gc, bc) = ((&maxc - r) / &div, (&maxc - g) / &div, (&maxc - b) / &div);
    let is_r = maxc.eq_tensor(r);
    let is_g = maxc.eq_tensor(g).logical_and(&is_r.logical_not());
    let is_b = maxc.eq_tensor(g).logical_not().logical_and(&is_r.logical_not());
    let k = x.kind();
    let h = is_r.to_kind(k) * (&bc - &gc) + is_g.to_kind(k) * (2.0 + &rc - &bc) + is_b.to_kind(k) * (4.0 + &gc - &rc);
    let h: Tensor = h / 6.0 + 1.0;
    let h = h.fmod(1.0);
    Tensor::stack(&[h, s, maxc], 1)
}

/// torchvision's `_hsv2rgb` on `[B, H, W]` planes, as `[B, 3, H, W]`.
fn hsv_to_rgb(h: &Tensor, s: &Tensor, v: &Tensor) -> Tensor {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - &i;
    let i = i.to_kind(Kind::Int64).remainder(6).unsqueeze(1); // [B, 1, H, W]
    let p: Tensor = v * (1.0 - s);
    let q: Tensor = v * (1.0 - s * &f);
    let t: Tensor = v * (1.0 - s * (1.0 - &f));
    let (p, q, t) = (p.clamp(0.0, 1.0), q.clamp(0.0, 1.0), t.clamp(0.0, 1.0));
    let pick = |planes: [&Tensor; 6]| Tensor::stack(&planes, 1).gather(1, &i, false); // [B, 1, H, W]
    let r = pick([v, &q, &p, &p, &t, v]);
    let g = pick([&t, v, v, &q, &p, &p]);
    let b = pick([&p, &p, &t, v, v, &q]);
    Tensor::cat(&[r, g, b], 1)
}
