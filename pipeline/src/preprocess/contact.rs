//! A contact sheet: aligned crops in a grid with their landmarks drawn, so a
//! person can see at a glance that faces are found and aligned.

use std::path::Path;

use image::{Rgb, RgbImage};

use super::align::template;
use crate::error::{PipelineError, Result};

/// One tile: JPEG bytes of a crop and its 49 landmarks (crop pixels).
pub struct Tile<'a> {
    /// JPEG bytes of the crop.
    pub jpeg: &'a [u8],
    /// 98 floats, x0, y0, x1, y1, ...
    pub landmarks: &'a [f32],
}

fn dot(img: &mut RgbImage, x: f32, y: f32, r: i64, color: Rgb<u8>) {
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    for dy in -r..=r {
        for dx in -r..=r {
            let (px, py) = (cx + dx, cy + dy);
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, color);
            }
        }
    }
}

/// Writes a PNG grid of `tiles` (`columns` wide) to `path`: each crop with
/// its landmarks in green and the canonical template in red (one pixel).
pub fn contact_sheet(tiles: &[Tile<'_>], columns: usize, path: &Path) -> Result<()> {
    let bad = |msg: String| PipelineError::Input { path: path.to_path_buf(), message: msg };
    let crops: Vec<RgbImage> = tiles
        .iter()
        .map(|t| image::load_from_memory(t.jpeg).map(|i| i.to_rgb8()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(format!("a crop is not a readable JPEG: {e}")))?;
    let size = crops.first().map_or(256, |c| c.width());
    let columns = columns.max(1).min(crops.len().max(1));
    let rows = crops.len().div_ceil(columns);
    let mut sheet = RgbImage::from_pixel(size * columns as u32, size * rows.max(1) as u32, Rgb([255, 255, 255]));
    let tpl = template(size);
    for (i, (crop, tile)) in crops.iter().zip(tiles).enumerate() {
        let mut c = crop.clone();
        for p in &tpl {
            dot(&mut c, p[0], p[1], 0, Rgb([255, 0, 0]));
        }
        for xy in tile.landmarks.chunks_exact(2) {
            dot(&mut c, xy[0], xy[1], 1, Rgb([0, 255, 0]));
        }
        let (ox, oy) = ((i % columns) as i64 * i64::from(size), (i / columns) as i64 * i64::from(size));
        image::imageops::overlay(&mut sheet, &c, ox, oy);
    }
    crate::error::atomic(path, |tmp| {
        sheet.save(tmp).map_err(|e| bad(format!("cannot write the contact sheet PNG: {e}")))
    })
}
