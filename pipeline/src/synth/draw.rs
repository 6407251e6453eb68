//! The renderer: draws a face (identity + AU-deformed points + look) into an
//! RGB frame with anti-aliased tiny-skia paths.
//!
//! Every shape is built in canonical face coordinates from the 68 points and
//! mapped through the [`Pose`](super::face::Pose), so the landmarks returned with the frame are
//! the exact drawn geometry. Outlines are Catmull-Rom curves through the
//! points (a landmark always lies on its curve).

use tiny_skia::{GradientStop, LinearGradient, Paint, Pixmap, Point, Shader, SpreadMode, Transform};

use super::au::{deform, AuIntensities};
use super::canvas::{color, ellipse, shade, spline, Canvas};
use super::details;
use super::face::{Identity, Look, P};
use crate::landmarks::Points68;

/// Per-clip backdrop: two gradient colours and a few blurred-looking props.
#[derive(Debug, Clone, PartialEq)]
pub struct Backdrop {
    /// Top and bottom colours of the background gradient.
    pub colors: [[u8; 3]; 2],
    /// Props: `[x0, y0, x1, y1]` as fractions of the frame, and a colour.
    pub props: Vec<([f32; 4], [u8; 3])>,
}

/// A rendered frame.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Packed RGB24, row-major.
    pub rgb: Vec<u8>,
    /// The 68 iBUG points in pixel coordinates (centre of the top-left pixel
    /// at (0, 0)).
    pub points: Points68,
}

/// Renders `id` with `aus` and `look` into a `width` x `height` frame.
pub fn render(
    id: &Identity,
    backdrop: &Backdrop,
    aus: &AuIntensities,
    look: &Look,
    width: u32,
    height: u32,
) -> Option<Rendered> {
    let mut cv = Canvas { pix: Pixmap::new(width, height)?, pose: look.pose };
    let pts = deform(id, aus);
    let neutral = id.neutral();
    let pal = &id.palette;
    background(&mut cv, backdrop, width, height);
    // Shoulders, neck, hair behind the head, ears.
    cv.fill(&ellipse([0.0, id.chin_y + 1.25], 1.9, 0.85), pal.shirt, 1.0);
    let neck = [[-0.38, 0.6], [0.38, 0.6], [0.44, id.chin_y + 0.75], [-0.44, id.chin_y + 0.75]];
    cv.fill(&neck, shade(pal.skin, 0.78), 1.0);
    let top = id.face_top;
    let back_hair = ellipse([0.0, (top + id.jaw_top()) / 2.0 + 0.05], 1.13, (id.jaw_top() - top) / 2.0 + 0.3);
    cv.fill(&back_hair, pal.hair, 1.0);
    for sx in [-1.0f32, 1.0] {
        cv.fill(&ellipse([sx * 0.99, id.eye_y + 0.22], 0.11, 0.21), shade(pal.skin, 0.88), 1.0);
    }
    // The face: the jaw line and an arc over the forehead.
    let mut outline = spline(&pts[0..17], 6);
    for k in 1..24 {
        let t = std::f32::consts::PI * k as f32 / 24.0;
        outline.push([t.cos(), id.jaw_top() - (id.jaw_top() - top) * t.sin()]);
    }
    let light = [look.light_angle.cos(), look.light_angle.sin()];
    let lit = [-0.25 * light[0], 0.05 - 0.25 * light[1]];
    if let Some(sh) = cv.radial(
        lit,
        1.7,
        &[(0.0, shade(pal.skin, 1.06), 1.0), (0.55, pal.skin, 1.0), (1.0, shade(pal.skin, 0.8), 1.0)],
    ) {
        cv.fill_with(&outline, sh, None);
    }
    for sx in [-1.0f32, 1.0] {
        if let Some(sh) = cv.radial([sx * 0.55, id.nose_y + 0.08], 0.22, &[(0.0, pal.lip, 0.18), (1.0, pal.lip, 0.0)]) {
            cv.fill_with(&ellipse([sx * 0.55, id.nose_y + 0.08], 0.22, 0.22), sh, None);
        }
    }
    eyes(&mut cv, id, &pts, &neutral, look);
    brows(&mut cv, id, &pts);
    nose(&mut cv, id, &pts, light);
    mouth(&mut cv, id, &pts);
    details::draw(&mut cv, id, &pts, aus);
    fringe(&mut cv, id);
    lighting(&mut cv, look, width, height);
    // The background is opaque, so premultiplied RGBA is plain RGBA.
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for px in cv.pix.data().chunks_exact(4) {
        rgb.extend_from_slice(&px[..3]);
    }
    Some(Rendered { width, height, rgb, points: pts.map(|p| look.pose.to_image(p)) })
}

fn background(cv: &mut Canvas, b: &Backdrop, w: u32, h: u32) {
    let stops = vec![GradientStop::new(0.0, color(b.colors[0], 1.0)), GradientStop::new(1.0, color(b.colors[1], 1.0))];
    let paint = LinearGradient::new(
        Point::from_xy(0.0, 0.0),
        Point::from_xy(0.0, h as f32),
        stops,
        SpreadMode::Pad,
        Transform::identity(),
    );
    let (wf, hf) = (w as f32, h as f32);
    if let (Some(shader), Some(rect)) = (paint, tiny_skia::Rect::from_xywh(0.0, 0.0, wf, hf)) {
        cv.pix.fill_rect(rect, &Paint { shader, ..Paint::default() }, Transform::identity(), None);
    }
    for (r, c) in &b.props {
        if let Some(rect) = tiny_skia::Rect::from_ltrb(r[0] * wf, r[1] * hf, r[2] * wf, r[3] * hf) {
            let paint = Paint { shader: Shader::SolidColor(color(*c, 0.55)), anti_alias: true, ..Paint::default() };
            cv.pix.fill_rect(rect, &paint, Transform::identity(), None);
        }
    }
}

fn eyes(cv: &mut Canvas, id: &Identity, p: &Points68, n: &Points68, look: &Look) {
    let pal = &id.palette;
    let dark = shade(pal.hair, 0.45);
    for base in [36, 42] {
        // Lid crease, from the neutral upper lid (skin folds do not follow AU7).
        let crease: Vec<P> = n[base..base + 4].iter().map(|q| [q[0], q[1] - id.eye_h * 0.85]).collect();
        cv.stroke(&spline(&crease[..], 5)[2..14], 0.012, shade(pal.skin, 0.7), 0.6);
        let upper = spline(&p[base..base + 4], 6);
        let lower = spline(&[p[base + 3], p[base + 4], p[base + 5], p[base]], 6);
        let mut white = upper.clone();
        white.extend_from_slice(&lower[1..]);
        cv.fill(&white, [236, 232, 226], 1.0);
        let cx = (p[base][0] + p[base + 3][0]) / 2.0;
        let cy = (n[base + 1][1] + n[base + 5][1]) / 2.0;
        let c = [cx + look.gaze[0] * id.eye_w * 0.3, cy + look.gaze[1] * id.eye_h * 0.25];
        if let Some(mask) = cv.mask(&white) {
            let r = id.eye_h * 1.05;
            let iris = cv.radial(c, r, &[(0.0, shade(pal.iris, 1.25), 1.0), (0.85, pal.iris, 1.0), (1.0, dark, 1.0)]);
            if let Some(sh) = iris {
                cv.fill_with(&ellipse(c, r, r), sh, Some(&mask));
            }
            cv.fill_with(&ellipse(c, r * 0.42, r * 0.42), Shader::SolidColor(color([12, 10, 10], 1.0)), Some(&mask));
            let glint = [c[0] + r * 0.3, c[1] - r * 0.3];
            cv.fill_with(
                &ellipse(glint, r * 0.15, r * 0.15),
                Shader::SolidColor(color([255, 255, 255], 0.9)),
                Some(&mask),
            );
        }
        cv.stroke(&upper, 0.022, dark, 1.0);
        cv.stroke(&lower, 0.008, shade(pal.skin, 0.55), 0.7);
    }
}

fn brows(cv: &mut Canvas, id: &Identity, p: &Points68) {
    for side in [[17, 18, 19, 20, 21], [26, 25, 24, 23, 22]] {
        let c: Vec<P> = spline(&side.map(|k| p[k]), 5);
        let m = c.len();
        let mut upper = Vec::with_capacity(m);
        let mut lower = Vec::with_capacity(m);
        for i in 0..m {
            let a = c[i.saturating_sub(1)];
            let b = c[(i + 1).min(m - 1)];
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let len = (dx * dx + dy * dy).sqrt().max(1e-6);
            let nrm = [dy / len, -dx / len];
            let nrm = if nrm[1] > 0.0 { [-nrm[0], -nrm[1]] } else { nrm };
            // Thicker at the inner end, tapering outward.
            let th = id.brow_th * (0.55 + 0.6 * i as f32 / (m - 1) as f32);
            upper.push([c[i][0] + nrm[0] * th, c[i][1] + nrm[1] * th]);
            lower.push([c[i][0] - nrm[0] * th, c[i][1] - nrm[1] * th]);
        }
        lower.reverse();
        upper.extend(lower);
        cv.fill(&upper, shade(id.palette.hair, 0.85), 0.95);
    }
}

fn nose(cv: &mut Canvas, id: &Identity, p: &Points68, light: [f32; 2]) {
    let skin = id.palette.skin;
    let side = if light[0] > 0.0 { -1.0 } else { 1.0 };
    let bridge: Vec<P> = [p[27], p[28], p[29], p[30]]
        .iter()
        .enumerate()
        .map(|(k, q)| [q[0] + side * (0.06 + 0.02 * k as f32), q[1]])
        .collect();
    cv.stroke(&spline(&bridge, 5), 0.035, shade(skin, 0.78), 0.35);
    cv.fill(&ellipse([p[30][0], p[30][1] - 0.02], 0.05, 0.035), shade(skin, 1.12), 0.5);
    let base = spline(&p[31..36], 5);
    cv.stroke(&base, 0.016, shade(skin, 0.6), 0.6);
    for (k, wing) in [(31, -1.0f32), (35, 1.0)] {
        let w = [p[k], [p[k][0] + wing * 0.015, p[k][1] - 0.05], [p[k][0] - wing * 0.02, p[k][1] - 0.085]];
        cv.stroke(&spline(&w, 5), 0.014, shade(skin, 0.65), 0.55);
    }
    for k in [32, 34] {
        cv.fill(&ellipse([p[k][0], p[k][1] - 0.012], 0.034, 0.016), shade(skin, 0.3), 0.75);
    }
}

fn mouth(cv: &mut Canvas, id: &Identity, p: &Points68) {
    let lip = id.palette.lip;
    let inner_up = spline(&p[60..65], 6);
    let inner_lo = spline(&[p[64], p[65], p[66], p[67], p[60]], 6);
    let open = (61..64).any(|k| p[128 - k][1] - p[k][1] > 1e-4);
    if open {
        let mut hole = inner_up.clone();
        hole.extend_from_slice(&inner_lo[1..]);
        cv.fill(&hole, [70, 22, 26], 1.0);
        if let Some(mask) = cv.mask(&hole) {
            let (x0, x1) = (p[60][0], p[64][0]);
            let y = p[62][1];
            let teeth = [[x0, y - 0.05], [x1, y - 0.05], [x1, y + 0.045], [x0, y + 0.045]];
            cv.fill_with(&teeth, Shader::SolidColor(color([238, 234, 222], 1.0)), Some(&mask));
            let yl = p[66][1];
            let low = [[x0, yl - 0.03], [x1, yl - 0.03], [x1, yl + 0.05], [x0, yl + 0.05]];
            cv.fill_with(&low, Shader::SolidColor(color([215, 210, 198], 1.0)), Some(&mask));
        }
    }
    let mut upper = spline(&p[48..55], 6);
    upper.push(p[64]);
    upper.extend(inner_up.iter().rev());
    cv.fill(&upper, shade(lip, 0.9), 1.0);
    let mut lower = spline(&[p[54], p[55], p[56], p[57], p[58], p[59], p[48]], 6);
    lower.push(p[60]);
    lower.extend(inner_lo.iter().rev());
    cv.fill(&lower, lip, 1.0);
    cv.fill(&ellipse([p[57][0], (p[57][1] + p[66][1]) / 2.0 - 0.005], id.mouth_w * 0.25, 0.015), shade(lip, 1.2), 0.4);
    cv.stroke(&inner_up, 0.012, shade(lip, 0.45), 0.9);
    if open {
        cv.stroke(&inner_lo, 0.006, shade(lip, 0.6), 0.6);
    }
}

fn fringe(cv: &mut Canvas, id: &Identity) {
    if id.fringe < 0.05 {
        return;
    }
    let top = id.face_top;
    let mut pts = Vec::new();
    for k in 0..=24 {
        let t = std::f32::consts::PI * k as f32 / 24.0;
        pts.push([1.04 * t.cos(), id.jaw_top() - 0.15 - (id.jaw_top() - 0.15 - top + 0.06) * t.sin()]);
    }
    let depth = 0.08 + 0.4 * id.fringe;
    for k in 0..=16 {
        let x = -0.98 + 1.96 * k as f32 / 16.0;
        let wave = if k % 2 == 0 { 0.0 } else { -0.06 };
        let y = (top + depth + wave).max(top + 0.02) + 0.25 * (x.abs() - 0.5).max(0.0);
        pts.push([x, y]);
    }
    cv.fill(&pts, id.palette.hair, 1.0);
}

fn lighting(cv: &mut Canvas, look: &Look, w: u32, h: u32) {
    let s = look.light_strength.clamp(0.0, 1.0);
    let (c, sn) = (look.light_angle.cos(), look.light_angle.sin());
    let (mx, my) = (w as f32 / 2.0, h as f32 / 2.0);
    let r = mx.max(my);
    let stops = vec![
        GradientStop::new(0.0, color([255, 250, 235], 0.12 * s)),
        GradientStop::new(0.5, color([0, 0, 0], 0.0)),
        GradientStop::new(1.0, color([0, 0, 10], 0.3 * s)),
    ];
    let shader = LinearGradient::new(
        Point::from_xy(mx + c * r, my + sn * r),
        Point::from_xy(mx - c * r, my - sn * r),
        stops,
        SpreadMode::Pad,
        Transform::identity(),
    );
    if let (Some(shader), Some(rect)) = (shader, tiny_skia::Rect::from_xywh(0.0, 0.0, w as f32, h as f32)) {
        cv.pix.fill_rect(rect, &Paint { shader, ..Paint::default() }, Transform::identity(), None);
    }
}
