//! One clip's plan: who is in it, how the head moves, how the light falls,
//! and which AUs are active in each frame.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::au::{activity, AuIntensities};
use super::draw::{render, Backdrop, Rendered};
use super::face::{Identity, Look, Pose};
use crate::error::{PipelineError, Result};

/// Where the face sits in the frame, as fractions of the frame size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Framing {
    /// Face centre x, fraction of the width.
    pub cx: f32,
    /// Face centre y, fraction of the height.
    pub cy: f32,
    /// Pixels per canonical unit, fraction of the smaller frame side.
    pub scale: f32,
}

/// Smooth head, eye and light motion: a sinusoid per degree of freedom.
#[derive(Debug, Clone, PartialEq)]
struct Motion {
    /// (amplitude, frequency Hz, phase) for roll, yaw, pitch, dx, dy, scale, gaze x, gaze y, light.
    waves: [(f32, f32, f32); 9],
    base: Pose,
    light_angle: f32,
    light_strength: f32,
}

impl Motion {
    fn sample(rng: &mut ChaCha8Rng, w: u32, h: u32, framing: Framing) -> Self {
        let amps = [0.1f32, 0.22, 0.1, 0.03, 0.02, 0.04, 0.7, 0.4, 0.25];
        let waves = amps.map(|a| {
            (rng.gen_range(0.3 * a..=a), rng.gen_range(0.15..0.6f32), rng.gen_range(0.0..std::f32::consts::TAU))
        });
        let side = w.min(h) as f32;
        let base = Pose {
            cx: w as f32 * (framing.cx + rng.gen_range(-0.02..0.02f32)),
            cy: h as f32 * (framing.cy + rng.gen_range(-0.02..0.02f32)),
            scale: side * framing.scale * rng.gen_range(0.94..1.06f32),
            roll: rng.gen_range(-0.05..0.05f32),
            yaw: rng.gen_range(-0.1..0.1f32),
            pitch: rng.gen_range(-0.05..0.05f32),
        };
        Self {
            waves,
            base,
            light_angle: rng.gen_range(0.0..std::f32::consts::TAU),
            light_strength: rng.gen_range(0.3..1.0f32),
        }
    }

    fn at(&self, t: f32, w: u32) -> Look {
        let v = self.waves.map(|(a, f, ph)| a * (std::f32::consts::TAU * f * t + ph).sin());
        let b = &self.base;
        Look {
            pose: Pose {
                roll: b.roll + v[0],
                yaw: b.yaw + v[1],
                pitch: b.pitch + v[2],
                cx: b.cx + v[3] * w as f32,
                cy: b.cy + v[4] * w as f32,
                scale: b.scale * (1.0 + v[5]),
            },
            gaze: [v[6], v[7]],
            light_angle: self.light_angle + v[8],
            light_strength: self.light_strength,
        }
    }
}

/// Everything needed to draw every frame of a clip.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipPlan {
    /// Who is in the clip.
    pub identity: Identity,
    /// The background.
    pub backdrop: Backdrop,
    /// AU intensities per frame.
    pub aus: Vec<AuIntensities>,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: f32,
    motion: Motion,
}

impl ClipPlan {
    /// A plan drawn from `rng` for `frames` frames.
    pub fn new(
        rng: &mut ChaCha8Rng,
        identity: Identity,
        frames: usize,
        fps: f32,
        size: (u32, u32),
        framing: Framing,
    ) -> Self {
        let (width, height) = size;
        let muted =
            |rng: &mut ChaCha8Rng| [rng.gen_range(40..200u8), rng.gen_range(40..200u8), rng.gen_range(40..200u8)];
        let colors = [muted(rng), muted(rng)];
        let props = (0..3)
            .map(|_| {
                let x = rng.gen_range(-0.1..0.9f32);
                let y = rng.gen_range(-0.1..0.8f32);
                ([x, y, x + rng.gen_range(0.1..0.4f32), y + rng.gen_range(0.1..0.5f32)], muted(rng))
            })
            .collect();
        let motion = Motion::sample(rng, width, height, framing);
        let aus = activity(rng, frames, fps);
        Self { identity, backdrop: Backdrop { colors, props }, aus, width, height, fps, motion }
    }

    /// Head, eyes and light in frame `i`.
    pub fn look(&self, i: usize) -> Look {
        self.motion.at(i as f32 / self.fps, self.width)
    }

    /// Draws frame `i`.
    pub fn render(&self, i: usize) -> Result<Rendered> {
        render(&self.identity, &self.backdrop, &self.aus[i], &self.look(i), self.width, self.height)
            .ok_or_else(|| PipelineError::Config(format!("cannot draw a {}x{} frame", self.width, self.height)))
    }
}
