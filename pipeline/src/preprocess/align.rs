//! Face alignment: a similarity transform from a face's 49 landmarks to a
//! canonical template, the bilinear warp of the frame into the crop, and the
//! JPEG encoding of the crop.
//!
//! # The canonical template
//! [`TEMPLATE_49_UNIT`] (defined in `schemas::template`, since the model's
//! landmark locator starts from it too) is the mean shape of dlib's
//! 68-point shape predictor in face-box units; for a crop of side `S` the
//! template is `x_c = S/2 + 170/256 * S * (x - 0.5)`, likewise for y, with
//! the whole jaw inside the crop.
//!
//! # Pixel convention
//! Coordinates are pixel centers: pixel (i, j) covers `[i - 0.5, i + 0.5]`,
//! the same convention as the landmark backends. The stored `crop_transform`
//! `[a, b, tx, c, d, ty]` maps a frame point to crop pixels:
//! `x_c = a x + b y + tx`, `y_c = c x + d y + ty`. Samples outside the frame
//! are black.

use image::ExtendedColorType;

use crate::error::{PipelineError, Result};
use crate::landmarks::Points49;

pub use schemas::template::{TEMPLATE_49_UNIT, TEMPLATE_SCALE};

/// The canonical 49 points in pixels of a `crop_size` square crop.
pub fn template(crop_size: u32) -> Points49 {
    let s = crop_size as f32;
    TEMPLATE_49_UNIT.map(|[x, y]| [s / 2.0 + TEMPLATE_SCALE * s * (x - 0.5), s / 2.0 + TEMPLATE_SCALE * s * (y - 0.5)])
}

/// A similarity transform `q = [[a, -b], [b, a]] p + t` (rotation, uniform
/// scale, translation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// `scale * cos(angle)`.
    pub a: f32,
    /// `scale * sin(angle)`.
    pub b: f32,
    /// x translation.
    pub tx: f32,
    /// y translation.
    pub ty: f32,
}

impl Similarity {
    /// Least-squares fit mapping `src` onto `dst` (Umeyama 1991 without
    /// reflection; closed form in 2D). `None` when `src` has no spread.
    pub fn fit(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Self> {
        let n = src.len().min(dst.len());
        if n < 2 {
            return None;
        }
        let mean = |p: &[[f32; 2]]| {
            let (sx, sy) = p[..n].iter().fold((0f64, 0f64), |(x, y), q| (x + f64::from(q[0]), y + f64::from(q[1])));
            (sx / n as f64, sy / n as f64)
        };
        let (px, py) = mean(src);
        let (qx, qy) = mean(dst);
        let (mut num_a, mut num_b, mut den) = (0f64, 0f64, 0f64);
        for (p, q) in src[..n].iter().zip(&dst[..n]) {
            let (x, y) = (f64::from(p[0]) - px, f64::from(p[1]) - py);
            let (u, v) = (f64::from(q[0]) - qx, f64::from(q[1]) - qy);
            num_a += x * u + y * v;
            num_b += x * v - y * u;
            den += x * x + y * y;
        }
        if den <= f64::EPSILON || !den.is_finite() {
            return None;
        }
        let (a, b) = (num_a / den, num_b / den);
        if a == 0.0 && b == 0.0 {
            return None;
        }
        Some(Self { a: a as f32, b: b as f32, tx: (qx - a * px + b * py) as f32, ty: (qy - b * px - a * py) as f32 })
    }

    /// Maps a point.
    pub fn apply(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [self.a * x - self.b * y + self.tx, self.b * x + self.a * y + self.ty]
    }

    /// The inverse transform.
    pub fn inverse(&self) -> Self {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Self { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) }
    }

    /// Row-major 2x3 matrix `[a, b, tx, c, d, ty]` as stored in shards.
    pub fn matrix(&self) -> [f32; 6] {
        [self.a, -self.b, self.tx, self.b, self.a, self.ty]
    }
}

/// Warps a packed RGB24 frame into a `size` x `size` crop: each crop pixel
/// samples the frame bilinearly at `inverse(crop pixel)`; neighbours outside
/// the frame count as black.
pub fn warp_bilinear(rgb: &[u8], width: u32, height: u32, to_crop: &Similarity, size: u32) -> Vec<u8> {
    let inv = to_crop.inverse();
    let (w, h) = (width as i64, height as i64);
    let size = size as usize;
    let mut out = vec![0u8; size * size * 3];
    for v in 0..size {
        for u in 0..size {
            let [x, y] = inv.apply([u as f32, v as f32]);
            if !(x > -1.0 && y > -1.0 && x < w as f32 && y < h as f32) {
                continue;
            }
            let (x0, y0) = (x.floor(), y.floor());
            let (fx, fy) = (x - x0, y - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let mut acc = [0f32; 3];
            for (dx, dy, wgt) in
                [(0, 0, (1.0 - fx) * (1.0 - fy)), (1, 0, fx * (1.0 - fy)), (0, 1, (1.0 - fx) * fy), (1, 1, fx * fy)]
            {
                let (sx, sy) = (x0 + dx, y0 + dy);
                if wgt == 0.0 || sx < 0 || sy < 0 || sx >= w || sy >= h {
                    continue;
                }
                let i = ((sy * w + sx) * 3) as usize;
                for c in 0..3 {
                    acc[c] += wgt * f32::from(rgb[i + c]);
                }
            }
            let o = (v * size + u) * 3;
            for c in 0..3 {
                out[o + c] = acc[c].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// A face aligned into the crop.
#[derive(Debug, Clone)]
pub struct Aligned {
    /// Frame -> crop transform.
    pub to_crop: Similarity,
    /// The 49 points in crop pixels, flattened x0, y0, x1, y1, ...
    pub landmarks: Vec<f32>,
    /// The crop, packed RGB24, `size * size * 3` bytes.
    pub rgb: Vec<u8>,
}

/// Aligns the face with `points` (source-frame pixels) to the template of a
/// `size` crop. `None` when the points are degenerate (all equal).
pub fn align(rgb: &[u8], width: u32, height: u32, points: &Points49, size: u32) -> Option<Aligned> {
    let to_crop = Similarity::fit(points, &template(size))?;
    let landmarks = points.iter().flat_map(|p| to_crop.apply(*p)).collect();
    Some(Aligned { to_crop, landmarks, rgb: warp_bilinear(rgb, width, height, &to_crop, size) })
}

/// JPEG bytes of a packed RGB24 square crop at `quality` (1-100).
pub fn encode_jpeg(rgb: &[u8], size: u32, quality: u8) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(rgb.len() / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
        .encode(rgb, size, size, ExtendedColorType::Rgb8)
        .map_err(|e| PipelineError::Config(format!("JPEG encoding of a {size}x{size} crop failed: {e}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_similarity_exactly() {
        // scale 1.5, angle 30 degrees, translation (10, -4)
        let (s, t) = (1.5f32, 30f32.to_radians());
        let truth = Similarity { a: s * t.cos(), b: s * t.sin(), tx: 10.0, ty: -4.0 };
        let src = template(256);
        let dst: Vec<[f32; 2]> = src.iter().map(|p| truth.apply(*p)).collect();
        let fit = Similarity::fit(&src, &dst).unwrap();
        for (x, y) in [(fit.a, truth.a), (fit.b, truth.b), (fit.tx, truth.tx), (fit.ty, truth.ty)] {
            assert!((x - y).abs() < 1e-3, "{fit:?} vs {truth:?}");
        }
        // hand-computed: (2, 0) -> (1.5 cos30 * 2 + 10, 1.5 sin30 * 2 - 4) = (12.598, -2.5)
        let p = truth.apply([2.0, 0.0]);
        assert!((p[0] - 12.598_076).abs() < 1e-4 && (p[1] + 2.5).abs() < 1e-5, "{p:?}");
        let back = truth.inverse().apply(p);
        assert!((back[0] - 2.0).abs() < 1e-4 && back[1].abs() < 1e-4);
        assert_eq!(truth.matrix(), [truth.a, -truth.b, 10.0, truth.b, truth.a, -4.0]);
    }

    #[test]
    fn fit_is_least_squares_for_inconsistent_points() {
        // src a square, dst the square scaled by 2 with one corner moved by
        // (+1, 0). Closed form over centered points, worked by hand:
        let src = [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]];
        let dst = [[-2.0, -2.0], [3.0, -2.0], [2.0, 2.0], [-2.0, 2.0]];
        // centroid dst (0.25, 0); centered dst x: -2.25, 2.75, 1.75, -2.25
        // num_a = (2.25 + 2 + 2.75 + 2 + 1.75 + 2 + 2.25 + 2) = 17, den = 8 -> a = 2.125
        // num_b = sum(x v - y u) = (-1*-2 - -1*-2.25) + (1*-2 - -1*2.75) + (1*2 - 1*1.75) + (-1*2 - 1*-2.25)
        //       = -0.25 + 0.75 + 0.25 + 0.25 = 1.0 -> b = 0.125
        let f = Similarity::fit(&src, &dst).unwrap();
        assert!((f.a - 2.125).abs() < 1e-6 && (f.b - 0.125).abs() < 1e-6, "{f:?}");
        assert!((f.tx - 0.25).abs() < 1e-6 && f.ty.abs() < 1e-6, "{f:?}");
        assert!(Similarity::fit(&[[1.0, 1.0]; 4], &dst).is_none(), "no spread");
    }

    #[test]
    fn bilinear_warp_matches_hand_computed_samples() {
        // 2x2 grey image: 0 10 / 20 30. Shift by -0.5 in x and y: crop (0,0)
        // samples the frame at (0.5, 0.5) = mean 15; crop (1,0) samples (1.5,
        // 0.5): neighbours (1,0)=10 and (1,1)=30 at weight 0.25 each, the
        // others outside (black): 10.
        let img: Vec<u8> = [0u8, 10, 20, 30].iter().flat_map(|&v| [v, v, v]).collect();
        let t = Similarity { a: 1.0, b: 0.0, tx: -0.5, ty: -0.5 };
        let out = warp_bilinear(&img, 2, 2, &t, 3);
        assert_eq!(out[0], 15);
        assert_eq!(out[3], 10);
        // crop (2, 2) samples (2.5, 2.5): entirely outside -> black
        assert_eq!(out[(2 * 3 + 2) * 3], 0);
        // identity reproduces the image
        let out = warp_bilinear(&img, 2, 2, &Similarity { a: 1.0, b: 0.0, tx: 0.0, ty: 0.0 }, 2);
        assert_eq!(out, img);
    }

    #[test]
    fn aligned_landmarks_land_on_the_template_and_crops_encode() {
        let t = template(256);
        // template documented positions at S = 256
        let mid_eyes_y = (t[19][1] + t[28][1]) / 2.0; // outer eye corners 36, 45
        assert!((mid_eyes_y - 96.65).abs() < 0.01, "{mid_eyes_y}");
        let frame_pts = t.map(|[x, y]| [0.5 * x + 40.0, 0.5 * y + 20.0]);
        let rgb = vec![128u8; 300 * 200 * 3];
        let a = align(&rgb, 300, 200, &frame_pts, 256).unwrap();
        for (k, p) in t.iter().enumerate() {
            assert!((a.landmarks[2 * k] - p[0]).abs() < 1e-3 && (a.landmarks[2 * k + 1] - p[1]).abs() < 1e-3);
        }
        assert!((a.to_crop.a - 2.0).abs() < 1e-5);
        let jpg = encode_jpeg(&a.rgb, 256, 90).unwrap();
        assert_eq!(&jpg[..2], &[0xFF, 0xD8]);
        let back = image::load_from_memory(&jpg).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (256, 256));
    }
}
