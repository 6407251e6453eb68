//! The face model: identity parameters, the neutral iBUG-68 shape built from
//! them, and the head pose that maps the canonical face into a frame.
//!
//! Canonical coordinates: x to the image right, y down, one unit = half the
//! face width at the cheekbones, origin between the eyes a little below them.
//! Every drawn shape is defined in these coordinates from the 68 points, so
//! the points written to the sidecar files are exactly the drawn geometry.

use rand::Rng;

use crate::landmarks::Points68;

/// A point (x, y).
pub type P = [f32; 2];

/// Colours of one subject (sRGB).
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    /// Skin tone.
    pub skin: [u8; 3],
    /// Lip colour.
    pub lip: [u8; 3],
    /// Hair and brow colour.
    pub hair: [u8; 3],
    /// Iris colour.
    pub iris: [u8; 3],
    /// Clothing colour.
    pub shirt: [u8; 3],
}

/// Identity parameters of one subject: face proportions and colours.
/// Sampled once per subject, so every clip of a subject shows the same face.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Jaw half-width at the jaw angle, relative to the cheekbones (0.75-0.9).
    pub jaw_w: f32,
    /// y of the top of the forehead (negative).
    pub face_top: f32,
    /// y of the chin (point 8).
    pub chin_y: f32,
    /// y of the eye centres.
    pub eye_y: f32,
    /// Half the distance between the eye centres.
    pub eye_dx: f32,
    /// Half the width of an eye.
    pub eye_w: f32,
    /// Half the height of an open eye.
    pub eye_h: f32,
    /// Height of the brows above the eye centres.
    pub brow_gap: f32,
    /// How much the brows arch.
    pub brow_arch: f32,
    /// Half the thickness of the brows at their inner end.
    pub brow_th: f32,
    /// y of the nose tip (point 30).
    pub nose_y: f32,
    /// Half the width of the nostrils (points 31-35).
    pub nose_w: f32,
    /// y of the line between the lips.
    pub mouth_y: f32,
    /// Half the mouth width (corner to corner).
    pub mouth_w: f32,
    /// Upper lip thickness at the centre.
    pub lip_up: f32,
    /// Lower lip thickness at the centre.
    pub lip_lo: f32,
    /// Fringe length over the forehead, 0 (none) to 1.
    pub fringe: f32,
    /// Colours.
    pub palette: Palette,
    /// Strength of every AU's deformation and marks relative to the
    /// generator's default (1); set from `SynthConfig::au_gain`, not sampled.
    pub au_gain: f32,
}

const SKIN: [[u8; 3]; 6] =
    [[241, 204, 178], [226, 182, 150], [205, 160, 122], [176, 126, 92], [132, 90, 62], [98, 66, 46]];
const HAIR: [[u8; 3]; 5] = [[40, 30, 24], [84, 56, 36], [150, 110, 64], [20, 20, 22], [120, 116, 110]];
const IRIS: [[u8; 3]; 4] = [[70, 46, 30], [60, 100, 140], [80, 110, 70], [40, 30, 25]];

fn jitter(rng: &mut impl Rng, c: [u8; 3], amount: i32) -> [u8; 3] {
    c.map(|v| (i32::from(v) + rng.gen_range(-amount..=amount)).clamp(0, 255) as u8)
}

impl Identity {
    /// A random identity.
    pub fn sample(rng: &mut impl Rng) -> Self {
        let base = SKIN[rng.gen_range(0..SKIN.len())];
        let skin = jitter(rng, base, 8);
        let lip = [
            (f32::from(skin[0]) * 0.82 + 30.0).min(255.0) as u8,
            (f32::from(skin[1]) * 0.55) as u8,
            (f32::from(skin[2]) * 0.6) as u8,
        ];
        let hair = HAIR[rng.gen_range(0..HAIR.len())];
        let hair = jitter(rng, hair, 10);
        let iris = IRIS[rng.gen_range(0..IRIS.len())];
        let iris = jitter(rng, iris, 10);
        Self {
            jaw_w: rng.gen_range(0.74..0.9),
            face_top: rng.gen_range(-1.38..-1.22),
            chin_y: rng.gen_range(1.28..1.42),
            eye_y: rng.gen_range(-0.1..-0.02),
            eye_dx: rng.gen_range(0.37..0.43),
            eye_w: rng.gen_range(0.145..0.17),
            eye_h: rng.gen_range(0.055..0.072),
            brow_gap: rng.gen_range(0.19..0.23),
            brow_arch: rng.gen_range(0.03..0.065),
            brow_th: rng.gen_range(0.03..0.045),
            nose_y: rng.gen_range(0.3..0.36),
            nose_w: rng.gen_range(0.15..0.19),
            mouth_y: rng.gen_range(0.68..0.74),
            mouth_w: rng.gen_range(0.28..0.34),
            lip_up: rng.gen_range(0.055..0.075),
            lip_lo: rng.gen_range(0.075..0.095),
            fringe: rng.gen_range(0.0..1.0),
            palette: Palette {
                skin,
                lip,
                hair,
                iris,
                shirt: [rng.gen_range(30..220), rng.gen_range(30..220), rng.gen_range(30..220)],
            },
            au_gain: 1.0,
        }
    }

    /// y of jaw point 0 and 16 (where the jaw line meets the temples).
    pub fn jaw_top(&self) -> f32 {
        self.eye_y + 0.06
    }

    /// The neutral face: the 68 iBUG points in canonical coordinates.
    pub fn neutral(&self) -> Points68 {
        let mut p = [[0.0f32; 2]; 68];
        // 0-16 jaw line, from the subject's right temple (image left) round the chin.
        let y0 = self.jaw_top();
        for (i, q) in p.iter_mut().enumerate().take(17) {
            let t = std::f32::consts::PI * i as f32 / 16.0;
            let (s, c) = t.sin_cos();
            let w = 1.0 - (1.0 - self.jaw_w) * s * s;
            *q = [-c * w, y0 + (self.chin_y - y0) * s];
        }
        // 17-21 right brow (outer -> inner), 22-26 left brow (inner -> outer).
        let brow_y = self.eye_y - self.brow_gap;
        let outer = self.eye_dx + self.eye_w * 1.35;
        let inner = self.eye_dx - self.eye_w * 1.0;
        for k in 0..5 {
            let s = k as f32 / 4.0;
            let x = outer + (inner - outer) * s;
            let y = brow_y - self.brow_arch * (std::f32::consts::PI * (0.15 + 0.75 * s)).sin() + 0.02 * (1.0 - s);
            p[17 + k] = [-x, y];
            p[26 - k] = [x, y];
        }
        // 27-30 nose bridge down to the tip.
        let top = self.eye_y - 0.01;
        for k in 0..4 {
            p[27 + k] = [0.0, top + (self.nose_y - top) * k as f32 / 3.0];
        }
        // 31-35 the base of the nose.
        let nw = self.nose_w;
        let ny = self.nose_y;
        p[31] = [-nw, ny + 0.02];
        p[32] = [-nw * 0.5, ny + 0.055];
        p[33] = [0.0, ny + 0.065];
        p[34] = [nw * 0.5, ny + 0.055];
        p[35] = [nw, ny + 0.02];
        // 36-41 right eye, 42-47 left eye (corner, upper lid, corner, lower lid).
        for (base, cx) in [(36, -self.eye_dx), (42, self.eye_dx)] {
            let (w, h, y) = (self.eye_w, self.eye_h, self.eye_y);
            let eye = [
                [cx - w, y],
                [cx - w / 3.0, y - h],
                [cx + w / 3.0, y - h],
                [cx + w, y],
                [cx + w / 3.0, y + h * 0.8],
                [cx - w / 3.0, y + h * 0.8],
            ];
            for (k, q) in eye.into_iter().enumerate() {
                p[base + k] = q;
            }
        }
        // 48-59 outer lips, 60-67 inner lips (closed mouth).
        let (mw, my, up, lo) = (self.mouth_w, self.mouth_y, self.lip_up, self.lip_lo);
        let outer = [
            [-mw, my],
            [-mw * 0.6, my - up * 0.75],
            [-mw * 0.25, my - up],
            [0.0, my - up * 0.82],
            [mw * 0.25, my - up],
            [mw * 0.6, my - up * 0.75],
            [mw, my],
            [mw * 0.6, my + lo * 0.72],
            [mw * 0.3, my + lo * 0.95],
            [0.0, my + lo],
            [-mw * 0.3, my + lo * 0.95],
            [-mw * 0.6, my + lo * 0.72],
        ];
        p[48..60].copy_from_slice(&outer);
        let inner = [
            [-mw * 0.85, my],
            [-mw * 0.35, my],
            [0.0, my],
            [mw * 0.35, my],
            [mw * 0.85, my],
            [mw * 0.35, my],
            [0.0, my],
            [-mw * 0.35, my],
        ];
        p[60..68].copy_from_slice(&inner);
        p
    }
}

/// Where and how the head sits in the frame: a similarity (roll, scale,
/// translation) after a smooth "dome" warp that imitates small yaw and
/// pitch (points near the face centre move more than the outline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Image position of the canonical origin, pixels.
    pub cx: f32,
    /// Image position of the canonical origin, pixels.
    pub cy: f32,
    /// Pixels per canonical unit.
    pub scale: f32,
    /// In-plane rotation, radians.
    pub roll: f32,
    /// Turn left/right, radians (small).
    pub yaw: f32,
    /// Nod up/down, radians (small).
    pub pitch: f32,
}

/// Depth of the face surface used by the yaw/pitch warp.
fn depth(p: P) -> f32 {
    0.42 * (-(p[0] * p[0] + (p[1] - 0.15) * (p[1] - 0.15)) / 1.1).exp()
}

impl Pose {
    /// Canonical point -> image pixel coordinates (centre of the top-left
    /// pixel at (0, 0)).
    pub fn to_image(&self, p: P) -> P {
        let d = depth(p);
        let w = [p[0] + self.yaw.sin() * d, p[1] + self.pitch.sin() * d];
        let (s, c) = self.roll.sin_cos();
        [self.cx + self.scale * (c * w[0] - s * w[1]), self.cy + self.scale * (s * w[0] + c * w[1])]
    }

    /// Image pixel coordinates -> canonical point (inverse of [`Pose::to_image`]).
    pub fn to_canonical(&self, q: P) -> P {
        let (s, c) = self.roll.sin_cos();
        let (dx, dy) = ((q[0] - self.cx) / self.scale, (q[1] - self.cy) / self.scale);
        let w = [c * dx + s * dy, -s * dx + c * dy];
        // The warp moves points by at most |sin(yaw)| * 0.42 * |grad|: a
        // contraction for the small angles used, so fixed-point iteration converges.
        let mut p = w;
        for _ in 0..12 {
            let d = depth(p);
            p = [w[0] - self.yaw.sin() * d, w[1] - self.pitch.sin() * d];
        }
        p
    }
}

/// Head, eyes and lighting of one frame; with an [`Identity`] and the AU
/// intensities this is all the renderer needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    /// Head pose.
    pub pose: Pose,
    /// Gaze: iris offset in units of the eye half-size (-1..1).
    pub gaze: P,
    /// Direction the light comes from, radians in the image plane.
    pub light_angle: f32,
    /// Light contrast, 0 (flat) to 1.
    pub light_strength: f32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pose_round_trips() {
        let pose = Pose { cx: 100.0, cy: 90.0, scale: 60.0, roll: 0.1, yaw: -0.2, pitch: 0.1 };
        for p in [[0.0, 0.0], [0.5, -0.3], [-0.9, 1.2]] {
            let q = pose.to_canonical(pose.to_image(p));
            assert!((q[0] - p[0]).abs() < 1e-4 && (q[1] - p[1]).abs() < 1e-4, "{p:?} -> {q:?}");
        }
    }

    #[test]
    fn neutral_shape_is_ordered_like_ibug() {
        let id = Identity::sample(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let p = id.neutral();
        assert!(p[0][0] < p[16][0] && p[8][1] > p[30][1], "jaw spans the face, chin below the nose");
        assert!(p[36][0] < p[39][0] && p[39][0] < p[42][0] && p[42][0] < p[45][0], "eyes left to right");
        assert!(p[21][1] < p[39][1] && p[30][1] < p[51][1] && p[57][1] < p[8][1], "brow, nose, mouth, chin");
        assert!((p[0][0] + p[16][0]).abs() < 1e-6, "symmetric");
    }
}
