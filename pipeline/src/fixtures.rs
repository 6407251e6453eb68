//! Small deterministic BP4D-like and DISFA-like shards for tests and demos.
//!
//! Rows follow the shard contract exactly (through [`ShardWriter`]): real
//! JPEG crops (a seeded gradient with noise), a plausible 49-point face in
//! crop pixels, BP4D-like 12-AU occurrence labels (with some unknown) or
//! DISFA-like 8-AU intensities with occurrence = intensity >= 2. The same
//! arguments always give the same bytes' content (row values and images).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::{FaceRow, LabelSpec, Labels, ShardMeta, ShardWriter, WriterOptions};

use crate::error::{PipelineError, Result};
use crate::manifest::Dataset;

/// BP4D's 12 probe AUs.
pub const BP4D_AUS: [u16; 12] = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24];
/// DISFA's 8 probe AUs.
pub const DISFA_AUS: [u16; 8] = [1, 2, 4, 6, 9, 12, 25, 26];
/// Side of the fixtures' crops in pixels (small, so tests stay fast).
pub const FIXTURE_CROP: i32 = 64;

/// The shard metadata of a fixture dataset.
pub fn meta(dataset: Dataset) -> ShardMeta {
    let labels = match dataset {
        Dataset::Bp4d => LabelSpec { au_numbers: BP4D_AUS.to_vec(), intensity: false },
        Dataset::Disfa => LabelSpec { au_numbers: DISFA_AUS.to_vec(), intensity: true },
    };
    ShardMeta {
        dataset: dataset.name().into(),
        labels: Some(labels),
        tool_version: concat!("mcsfau-fixtures ", env!("CARGO_PKG_VERSION")).into(),
        preprocess_config: "{\"fixture\":true}".into(),
    }
}

/// The mean 49-point face in unit coordinates (x right, y down), in the
/// iBUG-68-minus-jaw order: brows 0-9, nose 10-18, eyes 19-30 (19 and 28
/// are the outer eye corners), outer mouth 31-42, inner mouth 43-48.
pub fn template49() -> Vec<(f32, f32)> {
    let mut p = Vec::with_capacity(49);
    // Two arched brows of 5 points each.
    for x0 in [0.20f32, 0.56] {
        for i in 0..5 {
            p.push((x0 + 0.06 * i as f32, 0.30 - 0.02 * (2.0 - (i as f32 - 2.0).abs())));
        }
    }
    for i in 0..4 {
        p.push((0.5, 0.38 + 0.06 * i as f32));
    }
    for i in 0..5 {
        p.push((0.42 + 0.04 * i as f32, 0.62 + 0.01 * (2.0 - (i as f32 - 2.0).abs())));
    }
    for center in [0.35f32, 0.65] {
        for k in 0..6 {
            let a = std::f32::consts::PI * (1.0 - k as f32 / 3.0);
            p.push((center + 0.07 * a.cos(), 0.42 - 0.03 * a.sin()));
        }
    }
    for (n, rx, ry) in [(12usize, 0.15f32, 0.06f32), (6, 0.08, 0.025)] {
        for k in 0..n {
            let a = std::f32::consts::PI * (1.0 - 2.0 * k as f32 / n as f32);
            p.push((0.5 + rx * a.cos(), 0.76 - ry * a.sin()));
        }
    }
    p
}

fn jpeg(rng: &mut ChaCha8Rng, side: u32) -> Result<Vec<u8>> {
    let (r0, g0, b0) = (rng.gen_range(40..200u32), rng.gen_range(40..200u32), rng.gen_range(40..200u32));
    let mut px = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            let n = rng.gen_range(0..24u32);
            px.push(((r0 + x + n) % 256) as u8);
            px.push(((g0 + y + n) % 256) as u8);
            px.push(((b0 + (x + y) / 2) % 256) as u8);
        }
    }
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, 85)
        .encode(&px, side, side, image::ExtendedColorType::Rgb8)
        .map_err(|e| PipelineError::Manifest(format!("fixture JPEG encode: {e}")))?;
    Ok(out.into_inner())
}

/// Rows of a fixture dataset: for each subject, `videos` videos (BP4D tasks
/// `T1`.., DISFA one video per subject regardless) of `frames` frames each,
/// seeded by `seed`.
pub fn rows(dataset: Dataset, subjects: &[&str], videos: usize, frames: usize, seed: u64) -> Result<Vec<FaceRow>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let template = template49();
    let side = FIXTURE_CROP as f32;
    let mut out = Vec::new();
    for subject in subjects {
        let n_videos = if dataset == Dataset::Disfa { 1 } else { videos };
        for v in 0..n_videos {
            let video = match dataset {
                Dataset::Bp4d => format!("T{}", v + 1),
                Dataset::Disfa => format!("LeftVideo{subject}_comp"),
            };
            for f in 0..frames {
                let frame_index = (f * 7 + 1) as i64;
                let landmarks = template
                    .iter()
                    .flat_map(|&(x, y)| {
                        [(x * side + rng.gen_range(-1.0..1.0f32)), (y * side + rng.gen_range(-1.0..1.0f32))]
                    })
                    .collect();
                let labels = match dataset {
                    Dataset::Bp4d => Labels {
                        occurrence: BP4D_AUS
                            .iter()
                            .map(|_| match rng.gen_range(0..20) {
                                0 => -1,
                                1..=6 => 1,
                                _ => 0,
                            })
                            .collect(),
                        intensity: Vec::new(),
                    },
                    Dataset::Disfa => {
                        let intensity: Vec<i8> =
                            DISFA_AUS.iter().map(|_| [0, 0, 0, 1, 2, 3, 5][rng.gen_range(0..7)]).collect();
                        Labels { occurrence: intensity.iter().map(|&i| i8::from(i >= 2)).collect(), intensity }
                    }
                };
                let fps = if dataset == Dataset::Disfa { 20 } else { 25 };
                out.push(FaceRow {
                    sample_id: FaceRow::make_sample_id(dataset.name(), subject, &video, "", frame_index),
                    dataset: dataset.name().into(),
                    subject: subject.to_string(),
                    video: video.clone(),
                    clip: String::new(),
                    frame_index,
                    timestamp_ms: frame_index * 1000 / fps,
                    image: jpeg(&mut rng, FIXTURE_CROP as u32)?,
                    crop_size: FIXTURE_CROP,
                    landmarks,
                    landmark_score: rng.gen_range(0.6..1.0),
                    landmark_source: "synthetic".into(),
                    detector_score: f32::NAN,
                    face_box: [100.0, 80.0, 300.0, 280.0],
                    source_width: 640,
                    source_height: 480,
                    crop_transform: [0.32, 0.0, -32.0, 0.0, 0.32, -25.6],
                    labels: Some(labels),
                });
            }
        }
    }
    Ok(out)
}

/// Writes `rows` of `dataset` as shards `<dir>/<stem>-NNNNN.parquet`
/// (small files: 16 rows per row group, 64 per file).
pub fn write(dir: &Path, stem: &str, dataset: Dataset, rows: Vec<FaceRow>) -> Result<Vec<PathBuf>> {
    let opts = WriterOptions { rows_per_file: 64, row_group_size: 16, zstd_level: 3 };
    let mut w = ShardWriter::new(dir, stem, meta(dataset), opts)?;
    for r in rows {
        w.push(r)?;
    }
    Ok(w.finish()?)
}

/// The first `per_split[k]` subjects of each paper split (train, val, test),
/// in split order: a small set that still spans every split.
pub fn paper_subjects(dataset: Dataset, per_split: [usize; 3]) -> Vec<String> {
    let split = crate::manifest::SubjectSplit::paper(dataset);
    ["train", "val", "test"]
        .iter()
        .zip(per_split)
        .flat_map(|(name, n)| split.subjects_of(name).into_iter().take(n))
        .collect()
}

/// Writes a small clean labeled set under `dir`: `dir/bp4d` (4 subjects
/// spanning the paper splits, 2 tasks x 4 frames) and `dir/disfa`
/// (4 subjects, 6 frames), 56 rows in all.
pub fn write_labeled_set(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (dataset, videos, frames, seed) in [(Dataset::Bp4d, 2, 4, 1), (Dataset::Disfa, 1, 6, 2)] {
        let subjects = paper_subjects(dataset, [2, 1, 1]);
        let refs: Vec<&str> = subjects.iter().map(|s| s.as_str()).collect();
        let rows = rows(dataset, &refs, videos, frames, seed)?;
        files.extend(write(&dir.join(dataset.name()), dataset.name(), dataset, rows)?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_has_49_points_inside_the_unit_square() {
        let t = template49();
        assert_eq!(t.len(), 49);
        assert!(t.iter().all(|&(x, y)| (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y)));
        // 19 and 28 are the outer eye corners: leftmost / rightmost eye points.
        let eyes = &t[19..31];
        assert!(eyes.iter().all(|p| p.0 >= t[19].0 && p.0 <= t[28].0));
    }

    #[test]
    fn rows_are_deterministic_and_disfa_occurrence_follows_intensity() {
        let a = rows(Dataset::Disfa, &["SN001"], 1, 3, 7).unwrap();
        let b = rows(Dataset::Disfa, &["SN001"], 1, 3, 7).unwrap();
        // Debug text: `detector_score` is NaN (no detector), and NaN != NaN.
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        for r in &a {
            let l = r.labels.as_ref().unwrap();
            for (o, i) in l.occurrence.iter().zip(&l.intensity) {
                assert_eq!(*o, i8::from(*i >= 2));
            }
        }
    }
}
