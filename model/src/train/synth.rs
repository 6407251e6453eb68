//! Synthetic face shards for tests and the GPU check: cartoon faces (a skin
//! ellipse with dark marks at 49 landmarks that move per sample) written
//! through `schemas::ShardWriter`, so the loader reads them like real
//! preprocess output. Deterministic in `seed`.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::{FaceRow, ShardMeta, ShardWriter, WriterOptions, NUM_LANDMARKS};

use super::error::{Result, TrainError};
use crate::data::DataError;

/// The dataset name synthetic shards carry.
pub const SYNTH_DATASET: &str = "synthetic";

/// The 49-point template in unit coordinates (brows 10, nose 9, eyes 12,
/// mouth 18, the iBUG-49 order), before the per-sample pose and expression.
fn template(mouth_open: f64, brow_raise: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(NUM_LANDMARKS);
    for side in [0.2, 0.58] {
        pts.extend(
            (0..5).map(|i| (side + 0.055 * i as f64, 0.32 - brow_raise - 0.02 * (2.0 - (i as f64 - 2.0).abs()))),
        );
    }
    pts.extend((0..4).map(|i| (0.5, 0.38 + 0.05 * i as f64)));
    pts.extend((0..5).map(|i| (0.42 + 0.04 * i as f64, 0.6)));
    let ring = |pts: &mut Vec<(f64, f64)>, cx: f64, cy: f64, rx: f64, ry: f64, n: usize| {
        pts.extend((0..n).map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64;
            (cx + rx * a.cos(), cy + ry * a.sin())
        }));
    };
    ring(&mut pts, 0.33, 0.42, 0.06, 0.025, 6);
    ring(&mut pts, 0.67, 0.42, 0.06, 0.025, 6);
    ring(&mut pts, 0.5, 0.75, 0.14, 0.04 + mouth_open, 12);
    ring(&mut pts, 0.5, 0.75, 0.08, 0.01 + mouth_open, 6);
    pts
}

/// One synthetic face: JPEG bytes and its 49 landmarks (flattened x, y).
pub fn face(side: u32, rng: &mut impl Rng) -> Result<(Vec<u8>, Vec<f32>)> {
    let s = side as f64;
    let (dx, dy, scale) = (rng.gen_range(-0.03..0.03), rng.gen_range(-0.03..0.03), rng.gen_range(0.9..1.1));
    let pts: Vec<(f64, f64)> = template(rng.gen_range(0.0..0.05), rng.gen_range(0.0..0.04))
        .into_iter()
        .map(|(x, y)| ((0.5 + (x - 0.5) * scale + dx) * s, (0.5 + (y - 0.5) * scale + dy) * s))
        .collect();
    let skin = [rng.gen_range(150..230u8), rng.gen_range(110..180u8), rng.gen_range(90..150u8)];
    let mark = (s / 48.0).max(1.0);
    let noise_seed: u32 = rng.gen();
    let img = image::RgbImage::from_fn(side, side, |x, y| {
        let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
        let (ex, ey) = ((fx / s - 0.5 - dx) / (0.36 * scale), (fy / s - 0.52 - dy) / (0.46 * scale));
        let near = pts.iter().any(|&(px, py)| (px - fx).abs() <= mark && (py - fy).abs() <= mark);
        let n = (x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ noise_seed) % 17;
        if near {
            image::Rgb([40, 25, 20])
        } else if ex * ex + ey * ey <= 1.0 {
            image::Rgb(skin.map(|c| c.saturating_add(n as u8)))
        } else {
            image::Rgb([(60 + 2 * n) as u8, (80 + n) as u8, (100 + 3 * n) as u8])
        }
    });
    let mut jpeg = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90))
        .map_err(|e| TrainError::Config(format!("encoding a synthetic face: {e}")))?;
    let flat = pts.iter().flat_map(|&(x, y)| [x as f32, y as f32]).collect();
    Ok((jpeg, flat))
}

/// Writes `n` synthetic faces of `side` x `side` pixels as shards under
/// `dir` (files of `rows_per_file` rows); returns the shard paths.
pub fn write_shards(dir: &Path, n: usize, side: u32, rows_per_file: usize, seed: u64) -> Result<Vec<PathBuf>> {
    let meta = ShardMeta {
        dataset: SYNTH_DATASET.into(),
        tool_version: concat!("mcsfau-model ", env!("CARGO_PKG_VERSION")).into(),
        preprocess_config: format!(r#"{{"synthetic":{{"n":{n},"side":{side},"seed":{seed}}}}}"#),
        labels: None,
    };
    let opts = WriterOptions { rows_per_file: rows_per_file.max(1), row_group_size: 64, zstd_level: 1 };
    let shard_err = |e: schemas::SchemaError| TrainError::Data(DataError::Shard(e));
    let mut w = ShardWriter::new(dir, "synthetic", meta, opts).map_err(shard_err)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..n {
        let (image, landmarks) = face(side, &mut rng)?;
        let subject = format!("id{:05}", i % 7);
        w.push(FaceRow {
            sample_id: FaceRow::make_sample_id(SYNTH_DATASET, &subject, "v", "", i as i64),
            dataset: SYNTH_DATASET.into(),
            subject,
            video: "v".into(),
            frame_index: i as i64,
            image,
            crop_size: side as i32,
            landmarks,
            landmark_score: 1.0,
            landmark_source: "synthetic".into(),
            detector_score: f32::NAN,
            ..Default::default()
        })
        .map_err(shard_err)?;
    }
    w.finish().map_err(shard_err)
}
