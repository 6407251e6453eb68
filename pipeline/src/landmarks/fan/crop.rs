//! FAN's input crop and heatmap decoding (docs/landmarks.md, "Face Alignment (FAN)
//! landmarks"; face_alignment's `utils.crop` and `get_preds_fromhm`).
//!
//! Pixel convention: source coordinates are pixel indices (the centre of
//! pixel i is x = i). Crop coordinates are continuous on [0, 256], pixel u
//! covering [u, u + 1]. [`CropTransform::to_source`] maps crop coordinates
//! to source coordinates.

use crate::landmarks::{FrameRef, Points68, NUM_POINTS_68};

/// Side of FAN's input crop.
pub const CROP: usize = 256;
/// Side of FAN's heatmaps (CROP / 4).
pub const HEATMAP: usize = 64;

/// The square crop around a face box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropTransform {
    /// Crop centre in source pixels.
    pub center: [f64; 2],
    /// face_alignment's scale: the crop's side is `200 * scale` pixels.
    pub scale: f64,
}

impl CropTransform {
    /// face_alignment's rule for a detector box (x0, y0, x1, y1): centre of
    /// the box with y moved up by 0.12 of the box height; scale = (w + h) / 195.
    pub fn from_box(b: [f32; 4]) -> Self {
        let [x0, y0, x1, y1] = b.map(f64::from);
        let (w, h) = (x1 - x0, y1 - y0);
        Self { center: [x1 - w / 2.0, y1 - h / 2.0 - 0.12 * h], scale: (w + h) / 195.0 }
    }

    /// The crop's side in source pixels.
    pub fn side(&self) -> f64 {
        200.0 * self.scale
    }

    /// Crop coordinates ([0, 256] continuous) -> source pixel coordinates.
    pub fn to_source(&self, c: [f64; 2]) -> [f64; 2] {
        let k = self.side() / CROP as f64;
        [self.center[0] + (c[0] - CROP as f64 / 2.0) * k, self.center[1] + (c[1] - CROP as f64 / 2.0) * k]
    }

    /// Cuts the 256x256 crop as planar RGB in [0, 1] (`out`: 3 * 256 * 256,
    /// channel-major). Crop pixel (u, v) is the bilinear sample of the source
    /// at `to_source(u + 0.5, v + 0.5)`; taps outside the frame count as
    /// zero (face_alignment's zero padding).
    pub fn cut(&self, frame: &FrameRef<'_>, out: &mut [f32]) {
        debug_assert_eq!(out.len(), 3 * CROP * CROP);
        let (w, h) = (frame.width as i64, frame.height as i64);
        let px = |x: i64, y: i64, ch: usize| -> f64 {
            if x < 0 || y < 0 || x >= w || y >= h {
                0.0
            } else {
                f64::from(frame.rgb[((y * w + x) * 3) as usize + ch])
            }
        };
        // Per-column and per-row sample positions are shared by the whole crop.
        let coords: Vec<[f64; 2]> = (0..CROP).map(|u| self.to_source([u as f64 + 0.5, u as f64 + 0.5])).collect();
        for v in 0..CROP {
            let sy = coords[v][1];
            let (y0, fy) = (sy.floor() as i64, sy - sy.floor());
            for u in 0..CROP {
                let sx = coords[u][0];
                let (x0, fx) = (sx.floor() as i64, sx - sx.floor());
                for ch in 0..3 {
                    let top = px(x0, y0, ch) * (1.0 - fx) + px(x0 + 1, y0, ch) * fx;
                    let bottom = px(x0, y0 + 1, ch) * (1.0 - fx) + px(x0 + 1, y0 + 1, ch) * fx;
                    out[(ch * CROP + v) * CROP + u] = ((top * (1.0 - fy) + bottom * fy) / 255.0) as f32;
                }
            }
        }
    }
}

/// Decodes one face's 68 heatmaps (`hm`: 68 * 64 * 64, row-major) into
/// source points and the mean peak: argmax (first on ties), a quarter pixel
/// toward the larger neighbour on each axis (none on the border or on
/// ties), heatmap pixel centre (+0.5), x4 into the crop, back through `t`.
/// face_alignment then truncates to integers; we keep the fraction.
pub fn decode(hm: &[f32], t: &CropTransform) -> (Points68, f32) {
    let n = HEATMAP;
    let mut points = [[0f32; 2]; NUM_POINTS_68];
    let mut peak_sum = 0f64;
    for (j, point) in points.iter_mut().enumerate() {
        let map = &hm[j * n * n..(j + 1) * n * n];
        let (mut best, mut peak) = (0usize, f32::NEG_INFINITY);
        for (i, &v) in map.iter().enumerate() {
            if v > peak {
                (best, peak) = (i, v);
            }
        }
        let (x, y) = (best % n, best / n);
        let mut p = [x as f64, y as f64];
        if x > 0 && x < n - 1 && y > 0 && y < n - 1 {
            let at = |xx: usize, yy: usize| map[yy * n + xx];
            p[0] += 0.25 * sign(at(x + 1, y) - at(x - 1, y));
            p[1] += 0.25 * sign(at(x, y + 1) - at(x, y - 1));
        }
        let src = t.to_source([(p[0] + 0.5) * 4.0, (p[1] + 0.5) * 4.0]);
        *point = [src[0] as f32, src[1] as f32];
        peak_sum += f64::from(peak);
    }
    (points, (peak_sum / NUM_POINTS_68 as f64) as f32)
}

/// numpy's `sign`: 0 for 0.
fn sign(v: f32) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_of_box_follows_face_alignment() {
        // 100x100 box at (10, 20): centre (60, 70 - 12), scale 200/195.
        let t = CropTransform::from_box([10.0, 20.0, 110.0, 120.0]);
        assert_eq!(t.center, [60.0, 58.0]);
        assert!((t.side() - 200.0 * 200.0 / 195.0).abs() < 1e-9);
        assert_eq!(t.to_source([128.0, 128.0]), [60.0, 58.0]);
        let corner = t.to_source([0.0, 0.0]);
        assert!((corner[0] - (60.0 - t.side() / 2.0)).abs() < 1e-9);
    }

    #[test]
    fn decode_places_a_peak_by_hand() {
        // One peak at heatmap (x=10, y=20) with a larger right and upper
        // neighbour: x + 0.25, y - 0.25. With a crop of side 256 centred at
        // (128, 128) crop and source coordinates coincide.
        let mut hm = vec![0f32; 68 * 64 * 64];
        for j in 0..68 {
            let m = &mut hm[j * 4096..(j + 1) * 4096];
            m[20 * 64 + 10] = 1.0;
            m[20 * 64 + 11] = 0.5;
            m[19 * 64 + 10] = 0.3;
        }
        let t = CropTransform { center: [128.0, 128.0], scale: 256.0 / 200.0 };
        let (pts, score) = decode(&hm, &t);
        assert_eq!(pts[0], [(10.25 + 0.5) * 4.0, (19.75 + 0.5) * 4.0]);
        assert_eq!(score, 1.0);
    }

    #[test]
    fn cut_samples_pixel_centres_and_pads_with_zero() {
        // A 256-pixel crop of side 256 centred on (127.5, 127.5) copies the
        // frame 1:1; outside the 4x4 frame it is zero.
        let rgb: Vec<u8> = (0..4 * 4 * 3).map(|i| i as u8).collect();
        let frame = FrameRef { width: 4, height: 4, rgb: &rgb, given: None };
        let t = CropTransform { center: [127.5, 127.5], scale: 256.0 / 200.0 };
        let mut out = vec![0f32; 3 * CROP * CROP];
        t.cut(&frame, &mut out);
        assert_eq!(out[(CROP + 2) * CROP + 3], f32::from(rgb[(2 * 4 + 3) * 3 + 1]) / 255.0);
        assert_eq!(out[(2 * CROP + 10) * CROP + 10], 0.0);
    }
}
