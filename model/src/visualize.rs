//! The paper's figure 5 for a checkpoint: aligned crops with the input
//! landmarks p_1 (blue), the points p_k the MFRR detector found from the
//! feature map (eq. 3, green), the r x r squares around p_k (eq. 4, darkened: the
//! masked facial regions) and the feature-map cells those squares zero
//! (red outlines: what the reconstruction Transformer has to fill in).
//!
//! The masks are forced on for every crop (gamma is a training-time draw);
//! the `denoise` detector's jitter is drawn from libtorch's generator (seed
//! it for a reproducible figure; the default `locate` detector draws
//! nothing).

use image::{Rgb, RgbImage};
use tch::{Device, Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::landmarks::LANDMARKS;
use crate::mcsfau::{Batch, Draws, McSfau};

/// Pixels per crop pixel in the figure (crops are small at the tiny preset).
fn zoom(image_size: i64) -> u32 {
    (256 / image_size).max(1) as u32
}

/// Draws the figure for a batch of crops.
///
/// # Shapes
/// `images`: uint8 `[B, 3, S, S]` at the model's input size S;
/// `landmarks`: f32 `[B, 49, 2]`, crop pixels at S. Returns one row of B tiles.
pub fn mask_figure(model: &McSfau, images: &Tensor, landmarks: &Tensor) -> Result<RgbImage> {
    let cfg = model.config();
    let s = cfg.image_size;
    let b = images.size()[0];
    if images.size() != [b, 3, s, s] || landmarks.size() != [b, LANDMARKS, 2] {
        return Err(ModelError::Shape {
            what: "figure input",
            expected: format!("images [B, 3, {s}, {s}] and landmarks [B, 49, 2]"),
            found: images.size(),
        });
    }
    let dev = model.device();
    let x = crate::data::augment::ops::normalize(&(images.to_device(dev).to_kind(Kind::Float) / 255.0));
    let lm = landmarks.to_device(dev).to_kind(Kind::Float);
    let mut draws = Draws::sample(cfg, b, dev);
    draws.apply_mask = Tensor::ones([b], (Kind::Bool, dev));
    let losses = tch::no_grad(|| model.losses(&Batch { p: &x, p1: &x, p2: &x, landmarks: &lm }, &draws, false))?;
    let (Some(refined), Some(cells)) = (losses.refined, losses.mask) else {
        return Err(ModelError::InvalidConfig(
            "MFRR (or its masks and reconstruction) is off in this checkpoint: no detector points and masks to draw"
                .into(),
        ));
    };
    let img: Vec<u8> =
        Vec::<u8>::try_from(images.to_device(Device::Cpu).permute([0, 2, 3, 1]).contiguous().flatten(0, -1))?;
    let p1: Vec<f32> = Vec::<f32>::try_from(lm.to_device(Device::Cpu).flatten(0, -1))?;
    let pk: Vec<f32> = Vec::<f32>::try_from(refined.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))?;
    let side = cfg.feature_side();
    let cells: Vec<bool> = Vec::<bool>::try_from(cells.to_device(Device::Cpu).flatten(0, -1))?;
    let z = zoom(s);
    let tile = s as u32 * z;
    let gap = 8u32;
    let mut out = RgbImage::from_pixel(b as u32 * (tile + gap) + gap, tile + 2 * gap, Rgb([255, 255, 255]));
    let half = cfg.mfrr.r / 2.0;
    let n = LANDMARKS as usize;
    for i in 0..b as usize {
        let ox = gap + i as u32 * (tile + gap);
        let pts = &pk[i * n * 2..(i + 1) * n * 2];
        for ty in 0..tile {
            for tx in 0..tile {
                let (cx, cy) = ((tx / z) as usize, (ty / z) as usize);
                let k = ((i * s as usize + cy) * s as usize + cx) * 3;
                let mut px = [img[k], img[k + 1], img[k + 2]];
                let (fx, fy) = ((tx as f64 + 0.5) / z as f64, (ty as f64 + 0.5) / z as f64);
                let masked =
                    pts.chunks_exact(2).any(|p| (fx - p[0] as f64).abs() <= half && (fy - p[1] as f64).abs() <= half);
                if masked {
                    px = px.map(|v| v / 3);
                }
                out.put_pixel(ox + tx, gap + ty, Rgb(px));
            }
        }
        // Red outlines of the zeroed feature cells.
        let cell = tile as f64 / side as f64;
        for cy in 0..side as usize {
            for cx in 0..side as usize {
                if !cells[(i * side as usize + cy) * side as usize + cx] {
                    continue;
                }
                let (x0, y0) = ((cx as f64 * cell) as u32, (cy as f64 * cell) as u32);
                let (x1, y1) =
                    ((((cx + 1) as f64 * cell) as u32).min(tile) - 1, (((cy + 1) as f64 * cell) as u32).min(tile) - 1);
                for t in x0..=x1 {
                    for y in [y0, y1] {
                        out.put_pixel(ox + t, gap + y, Rgb([230, 30, 30]));
                    }
                }
                for t in y0..=y1 {
                    for x in [x0, x1] {
                        out.put_pixel(ox + x, gap + t, Rgb([230, 30, 30]));
                    }
                }
            }
        }
        for (points, colour, r) in
            [(&p1[i * n * 2..(i + 1) * n * 2], Rgb([40, 90, 255]), 1i64), (pts, Rgb([40, 220, 60]), 1)]
        {
            for p in points.chunks_exact(2) {
                let (x, y) = ((p[0] * z as f32) as i64, (p[1] * z as f32) as i64);
                for dy in -r..=r {
                    for dx in -r..=r {
                        let (u, v) = (x + dx, y + dy);
                        if (0..tile as i64).contains(&u) && (0..tile as i64).contains(&v) {
                            out.put_pixel(ox + u as u32, gap + v as u32, colour);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `fig` with a legend strip under it naming the colours (unchanged when
/// no font is found: plots need one, see `MCSFAU_FONT`).
pub fn with_legend(fig: &RgbImage) -> RgbImage {
    use plotters::prelude::*;
    if !crate::train::plot::have_font() {
        return fig.clone();
    }
    let (w, h) = fig.dimensions();
    let (width, strip) = (w.max(760), 30u32);
    let mut out = RgbImage::from_pixel(width, h + strip, Rgb([255, 255, 255]));
    image::imageops::overlay(&mut out, fig, 0, 0);
    let items: [(&str, RGBColor); 4] = [
        ("input landmarks p_1", RGBColor(40, 90, 255)),
        ("detector p_k", RGBColor(40, 220, 60)),
        ("dark: masked r x r squares", RGBColor(90, 90, 90)),
        ("zeroed feature cells", RGBColor(230, 30, 30)),
    ];
    {
        let (bw, bh) = out.dimensions();
        let root = schemas::figure::TextFix(BitMapBackend::with_buffer(&mut out, (bw, bh))).into_drawing_area();
        let style = ("sans-serif", 15).into_font().color(&BLACK);
        let mut x = 8i32;
        let y = h as i32 + 8;
        for (label, colour) in items {
            let _ = root.draw(&Rectangle::new([(x, y), (x + 12, y + 12)], colour.filled()));
            let _ = root.draw(&Text::new(label, (x + 18, y - 1), style.clone()));
            x += 28 + 9 * label.len() as i32;
        }
        let _ = root.present();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;

    #[test]
    fn figure_has_one_tile_per_crop_and_darkens_masked_regions() {
        tch::manual_seed(0);
        let cfg = ModelConfig::tiny();
        let model = McSfau::new(&cfg, Device::Cpu).unwrap();
        let s = cfg.image_size;
        let images = Tensor::full([2, 3, s, s], 200, (Kind::Uint8, Device::Cpu));
        let landmarks = Tensor::full([2, LANDMARKS, 2], s as f64 / 2.0, (Kind::Float, Device::Cpu));
        let fig = mask_figure(&model, &images, &landmarks).unwrap();
        let z = zoom(s);
        assert_eq!(fig.width(), 2 * (s as u32 * z + 8) + 8);
        // Masks are forced on: some pixels are darkened (200 / 3), others keep
        // their colour (the squares cover part of the crop only).
        let px: Vec<[u8; 3]> = fig.pixels().map(|p| p.0).collect();
        assert!(px.contains(&[66, 66, 66]), "no masked (darkened) region");
        assert!(px.contains(&[200, 200, 200]), "everything masked");
    }
}
