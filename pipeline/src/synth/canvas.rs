//! Drawing primitives in canonical face coordinates: a [`Canvas`] maps
//! every point through the head [`Pose`] and fills or strokes anti-aliased
//! tiny-skia paths; [`spline`] and [`ellipse`] build the outlines.

use tiny_skia::{
    Color, FillRule, GradientStop, Mask, Paint, Path, PathBuilder, Pixmap, Point, RadialGradient, Shader, SpreadMode,
    Stroke, Transform,
};

use super::face::{Pose, P};

/// Scales a colour by `f` (clamped).
pub fn shade(c: [u8; 3], f: f32) -> [u8; 3] {
    c.map(|v| (f32::from(v) * f).round().clamp(0.0, 255.0) as u8)
}

/// A colour with opacity `alpha` (0-1).
pub fn color(c: [u8; 3], alpha: f32) -> Color {
    Color::from_rgba8(c[0], c[1], c[2], (alpha.clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// Open Catmull-Rom curve through `pts` (ends duplicated), `n` samples per segment.
pub fn spline(pts: &[P], n: usize) -> Vec<P> {
    let mut out = Vec::with_capacity(pts.len() * n + 1);
    if pts.len() < 2 {
        return pts.to_vec();
    }
    let at = |i: isize| pts[i.clamp(0, pts.len() as isize - 1) as usize];
    for i in 0..pts.len() - 1 {
        let (p0, p1, p2, p3) = (at(i as isize - 1), at(i as isize), at(i as isize + 1), at(i as isize + 2));
        for k in 0..n {
            let t = k as f32 / n as f32;
            let (t2, t3) = (t * t, t * t * t);
            let f = |a: f32, b: f32, c: f32, d: f32| {
                0.5 * (2.0 * b
                    + (c - a) * t
                    + (2.0 * a - 5.0 * b + 4.0 * c - d) * t2
                    + (3.0 * b - a - 3.0 * c + d) * t3)
            };
            out.push([f(p0[0], p1[0], p2[0], p3[0]), f(p0[1], p1[1], p2[1], p3[1])]);
        }
    }
    out.push(pts[pts.len() - 1]);
    out
}

/// An ellipse as a polygon (canonical coordinates, so the pose warp applies).
pub fn ellipse(c: P, rx: f32, ry: f32) -> Vec<P> {
    (0..40)
        .map(|k| {
            let t = std::f32::consts::TAU * k as f32 / 40.0;
            [c[0] + rx * t.cos(), c[1] + ry * t.sin()]
        })
        .collect()
}

/// A pixmap plus the pose that maps canonical coordinates into it.
pub struct Canvas {
    /// The target.
    pub pix: Pixmap,
    /// Canonical -> pixel map.
    pub pose: Pose,
}

impl Canvas {
    fn map(&self, p: P) -> (f32, f32) {
        let q = self.pose.to_image(p);
        // tiny-skia pixel (i, j) covers [i, i + 1): its centre is at i + 0.5.
        (q[0] + 0.5, q[1] + 0.5)
    }

    /// The polygon through `pts` in pixel space.
    pub fn path(&self, pts: &[P], close: bool) -> Option<Path> {
        let mut pb = PathBuilder::new();
        for (i, p) in pts.iter().enumerate() {
            let (x, y) = self.map(*p);
            if i == 0 {
                pb.move_to(x, y);
            } else {
                pb.line_to(x, y);
            }
        }
        if close {
            pb.close();
        }
        pb.finish()
    }

    /// Fills the closed polygon `pts` with `shader`, optionally clipped.
    pub fn fill_with(&mut self, pts: &[P], shader: Shader<'_>, mask: Option<&Mask>) {
        if let Some(path) = self.path(pts, true) {
            let paint = Paint { shader, anti_alias: true, ..Paint::default() };
            self.pix.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), mask);
        }
    }

    /// Fills the closed polygon `pts` with a flat colour.
    pub fn fill(&mut self, pts: &[P], c: [u8; 3], alpha: f32) {
        if alpha > 0.0 {
            self.fill_with(pts, Shader::SolidColor(color(c, alpha)), None);
        }
    }

    /// Strokes the polyline `pts`, `width` in canonical units, round caps.
    pub fn stroke(&mut self, pts: &[P], width: f32, c: [u8; 3], alpha: f32) {
        if alpha <= 0.0 {
            return;
        }
        if let Some(path) = self.path(pts, false) {
            let paint = Paint { shader: Shader::SolidColor(color(c, alpha)), anti_alias: true, ..Paint::default() };
            let stroke = Stroke {
                width: (width * self.pose.scale).max(0.6),
                line_cap: tiny_skia::LineCap::Round,
                line_join: tiny_skia::LineJoin::Round,
                ..Stroke::default()
            };
            self.pix.stroke_path(&path, &paint, &stroke, Transform::identity(), None);
        }
    }

    /// A clip mask of the closed polygon `pts`.
    pub fn mask(&self, pts: &[P]) -> Option<Mask> {
        let mut m = Mask::new(self.pix.width(), self.pix.height())?;
        m.fill_path(&self.path(pts, true)?, FillRule::Winding, true, Transform::identity());
        Some(m)
    }

    /// A radial gradient centred on canonical `c` with canonical radius `r`.
    pub fn radial(&self, c: P, r: f32, stops: &[(f32, [u8; 3], f32)]) -> Option<Shader<'static>> {
        let (x, y) = self.map(c);
        let stops = stops.iter().map(|(t, c, a)| GradientStop::new(*t, color(*c, *a))).collect();
        RadialGradient::new(
            Point::from_xy(x, y),
            Point::from_xy(x, y),
            r * self.pose.scale,
            stops,
            SpreadMode::Pad,
            Transform::identity(),
        )
    }
}
