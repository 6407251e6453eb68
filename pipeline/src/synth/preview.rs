//! The contact sheet: sampled frames of the first clips with their landmarks,
//! and a gallery of the first subject's face neutral and with each AU at
//! intensity 4, its region outlined and its number written above it.

use std::path::Path;

use tiny_skia::{Color, FillRule, IntSize, Paint, PathBuilder, Pixmap, PixmapPaint, Shader, Stroke, Transform};

use super::au::{region, AUS};
use super::draw::{render, Backdrop, Rendered};
use super::face::{Identity, Look, Pose};
use crate::error::{PipelineError, Result};

/// Frames per row (clip rows and gallery rows).
pub const COLUMNS: usize = 8;
const TILE: u32 = 160;
const PAD: u32 = 8;

fn paint(c: [u8; 4]) -> Paint<'static> {
    Paint {
        shader: Shader::SolidColor(Color::from_rgba8(c[0], c[1], c[2], c[3])),
        anti_alias: true,
        ..Paint::default()
    }
}

fn to_pixmap(f: &Rendered) -> Option<Pixmap> {
    let rgba: Vec<u8> = f.rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    Pixmap::from_vec(rgba, IntSize::from_wh(f.width, f.height)?)
}

/// Draws `f` into the cell at (`col`, `row`), fitted to the tile, with its
/// landmarks as green dots if `dots`. Returns the frame -> sheet transform.
fn tile(sheet: &mut Pixmap, f: &Rendered, col: usize, row: usize, dots: bool) -> Transform {
    let s = TILE as f32 / f.width.max(f.height) as f32;
    let x0 = (PAD + col as u32 * (TILE + PAD)) as f32 + (TILE as f32 - f.width as f32 * s) / 2.0;
    let y0 = (PAD + row as u32 * (TILE + PAD)) as f32 + (TILE as f32 - f.height as f32 * s) / 2.0;
    let t = Transform::from_row(s, 0.0, 0.0, s, x0, y0);
    if let Some(pm) = to_pixmap(f) {
        let pp = PixmapPaint { quality: tiny_skia::FilterQuality::Bilinear, ..PixmapPaint::default() };
        sheet.draw_pixmap(0, 0, pm.as_ref(), &pp, t, None);
    }
    if !dots {
        return t;
    }
    let mut pb = PathBuilder::new();
    for p in &f.points {
        // Points use pixel-centre coordinates; the pixmap's pixel i spans [i, i + 1).
        pb.push_circle(x0 + (p[0] + 0.5) * s, y0 + (p[1] + 0.5) * s, 0.9);
    }
    if let Some(path) = pb.finish() {
        sheet.fill_path(&path, &paint([40, 255, 60, 200]), FillRule::Winding, Transform::identity(), None);
    }
    t
}

/// Seven-segment digits, so the sheet needs no font.
fn number(sheet: &mut Pixmap, n: u8, x: f32, y: f32) {
    const SEG: [u8; 10] = [0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f];
    let (w, h) = (7.0f32, 7.0f32);
    let lines = [
        ((0.0, 0.0), (w, 0.0)),
        ((w, 0.0), (w, h)),
        ((w, h), (w, 2.0 * h)),
        ((0.0, 2.0 * h), (w, 2.0 * h)),
        ((0.0, h), (0.0, 2.0 * h)),
        ((0.0, 0.0), (0.0, h)),
        ((0.0, h), (w, h)),
    ];
    let text = n.to_string();
    let mut pb = PathBuilder::new();
    for (i, ch) in text.bytes().enumerate() {
        let bits = SEG[(ch - b'0') as usize];
        let ox = x + i as f32 * (w + 5.0);
        for (k, ((ax, ay), (bx, by))) in lines.iter().enumerate() {
            if bits & (1 << k) != 0 {
                pb.move_to(ox + ax, y + ay);
                pb.line_to(ox + bx, y + by);
            }
        }
    }
    if let Some(path) = pb.finish() {
        let outline = Stroke { width: 4.5, line_cap: tiny_skia::LineCap::Round, ..Stroke::default() };
        sheet.stroke_path(&path, &paint([0, 0, 0, 255]), &outline, Transform::identity(), None);
        let core = Stroke { width: 2.0, line_cap: tiny_skia::LineCap::Round, ..Stroke::default() };
        sheet.stroke_path(&path, &paint([255, 230, 60, 255]), &core, Transform::identity(), None);
    }
}

/// Writes the contact sheet: one row per entry of `rows` (its sampled
/// frames), then the AU gallery of `identity`.
pub fn write(path: &Path, rows: &[(String, Vec<Rendered>)], identity: &Identity) -> Result<()> {
    let gallery_rows = (AUS.len() + 1).div_ceil(COLUMNS);
    let n_rows = rows.len() + gallery_rows;
    let w = PAD + COLUMNS as u32 * (TILE + PAD);
    let h = PAD + n_rows as u32 * (TILE + PAD);
    let err = |m: &str| PipelineError::Image { path: path.to_path_buf(), message: m.to_string() };
    let mut sheet = Pixmap::new(w, h).ok_or_else(|| err("empty contact sheet"))?;
    sheet.fill(Color::from_rgba8(24, 24, 28, 255));
    for (r, (_, frames)) in rows.iter().enumerate() {
        for (c, f) in frames.iter().take(COLUMNS).enumerate() {
            tile(&mut sheet, f, c, r, true);
        }
    }
    let look = Look {
        pose: Pose { cx: 80.0, cy: 72.0, scale: 62.0, roll: 0.0, yaw: 0.0, pitch: 0.0 },
        gaze: [0.0, 0.0],
        light_angle: -2.2,
        light_strength: 0.4,
    };
    let backdrop = Backdrop { colors: [[120, 130, 140], [80, 90, 100]], props: Vec::new() };
    for g in 0..=AUS.len() {
        let mut aus = [0.0f32; 15];
        if g > 0 {
            aus[g - 1] = 4.0;
        }
        let f = render(identity, &backdrop, &aus, &look, TILE, TILE).ok_or_else(|| err("cannot draw the gallery"))?;
        let (col, row) = (g % COLUMNS, rows.len() + g / COLUMNS);
        let t = tile(&mut sheet, &f, col, row, false);
        let (x, y) = (t.tx + 6.0, t.ty + 6.0);
        number(&mut sheet, if g == 0 { 0 } else { AUS[g - 1] }, x, y);
        if g > 0 {
            let mut pb = PathBuilder::new();
            for b in region(AUS[g - 1], identity).boxes {
                let corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]];
                for (k, pair) in corners.windows(2).enumerate() {
                    for i in 0..=10 {
                        let u = i as f32 / 10.0;
                        let p =
                            [pair[0][0] + u * (pair[1][0] - pair[0][0]), pair[0][1] + u * (pair[1][1] - pair[0][1])];
                        let q = look.pose.to_image(p);
                        let (sx, sy) = (t.tx + (q[0] + 0.5) * t.sx, t.ty + (q[1] + 0.5) * t.sy);
                        if k == 0 && i == 0 {
                            pb.move_to(sx, sy);
                        } else {
                            pb.line_to(sx, sy);
                        }
                    }
                }
            }
            if let Some(path) = pb.finish() {
                let st = Stroke { width: 1.0, ..Stroke::default() };
                sheet.stroke_path(&path, &paint([255, 220, 40, 170]), &st, Transform::identity(), None);
            }
        }
    }
    let rgba: Vec<u8> = sheet.pixels().iter().flat_map(|p| [p.red(), p.green(), p.blue(), p.alpha()]).collect();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    }
    let img_err = |e: image::ImageError| PipelineError::Image { path: path.to_path_buf(), message: e.to_string() };
    let mut bytes = Vec::new();
    let png = image::codecs::png::PngEncoder::new_with_quality(
        &mut bytes,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    );
    image::ImageEncoder::write_image(png, &rgba, w, h, image::ExtendedColorType::Rgba8).map_err(img_err)?;
    crate::error::write_file(path, &bytes)
}
