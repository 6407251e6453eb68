//! Counts per dataset, split, subject and video; frames per clip.
//!
//! Columns read: `dataset`-level grouping comes from the shard footers;
//! these queries read `sample_id` (for the split join), `subject`, `video`
//! and `clip` only.

use polars::prelude::*;
use schemas::schema::col as c;
use serde::Serialize;

use super::scan::{collect, f64s, i64s, strs, with_split, Group};
use crate::error::Result;

/// Frames, subjects, videos and clips of one (dataset, split).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SplitCount {
    /// Dataset.
    pub dataset: String,
    /// Split (`all` without a manifest).
    pub split: String,
    /// Distinct subjects.
    pub subjects: u64,
    /// Distinct (subject, video).
    pub videos: u64,
    /// Distinct (subject, video, clip).
    pub clips: u64,
    /// Rows.
    pub frames: u64,
}

/// Frames of one subject (or one video) in one split.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyCount {
    /// Dataset.
    pub dataset: String,
    /// Split.
    pub split: String,
    /// Subject, or `subject/video` for the per-video table.
    pub key: String,
    /// Rows.
    pub frames: u64,
}

/// Summary of a distribution of counts.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Distribution {
    /// Number of values (clips, videos, subjects).
    pub n: u64,
    /// Smallest.
    pub min: f64,
    /// 5th percentile (nearest rank).
    pub p05: f64,
    /// Median (nearest rank).
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// Largest.
    pub max: f64,
}

/// Frames per clip of one dataset.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClipStats {
    /// Dataset.
    pub dataset: String,
    /// Distribution of frames per clip.
    pub frames_per_clip: Distribution,
    /// Distribution of frames per video.
    pub frames_per_video: Distribution,
}

/// Every count of the audit.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Counts {
    /// Per (dataset, split).
    pub per_split: Vec<SplitCount>,
    /// Per (dataset, split, subject).
    pub per_subject: Vec<KeyCount>,
    /// Per (dataset, split, subject/video): written to `counts_per_video.csv`,
    /// not into report.json (VoxCeleb has ~145k videos).
    #[serde(skip)]
    pub per_video: Vec<KeyCount>,
    /// Frames per clip and per video, per dataset.
    pub clips: Vec<ClipStats>,
}

fn distribution(lf: LazyFrame, column: &str, query: &str) -> Result<Distribution> {
    let q =
        |p: f64, name: &str| col(column).cast(DataType::Float64).quantile(lit(p), QuantileMethod::Nearest).alias(name);
    let df = collect(
        lf.select([
            col(column).count().cast(DataType::Int64).alias("n"),
            col(column).cast(DataType::Float64).min().alias("min"),
            q(0.05, "p05"),
            q(0.5, "median"),
            col(column).cast(DataType::Float64).mean().alias("mean"),
            q(0.95, "p95"),
            col(column).cast(DataType::Float64).max().alias("max"),
        ]),
        query,
    )?;
    let g = |n: &str| -> Result<f64> { Ok(f64s(&df, n)?.first().copied().unwrap_or(f64::NAN)) };
    Ok(Distribution {
        n: i64s(&df, "n")?.first().copied().unwrap_or_default() as u64,
        min: g("min")?,
        p05: g("p05")?,
        median: g("median")?,
        mean: g("mean")?,
        p95: g("p95")?,
        max: g("max")?,
    })
}

/// Computes the counts of one shard group: one scan and one group-by down
/// to clips; everything else is derived from that (much smaller) table.
pub fn count_group(group: &Group, manifest: Option<&DataFrame>, out: &mut Counts) -> Result<()> {
    let keys = [col("split"), col(c::SUBJECT), col(c::VIDEO), col(c::CLIP)];
    let scan = group.scan()?.select([col(c::SAMPLE_ID), col(c::SUBJECT), col(c::VIDEO), col(c::CLIP)]);
    let per_clip = collect(
        with_split(scan, manifest).group_by(keys).agg([len().cast(DataType::Int64).alias("frames")]),
        "frames per clip",
    )?
    .lazy();
    let ds = &group.dataset;

    let per_video = collect(
        per_clip.clone().group_by([col("split"), col(c::SUBJECT), col(c::VIDEO)]).agg([col("frames").sum()]),
        "frames per video",
    )?;
    let df = collect(
        per_video
            .clone()
            .lazy()
            .group_by([col("split"), col(c::SUBJECT)])
            .agg([len().alias("videos"), col("frames").sum()])
            .group_by([col("split")])
            .agg([len().alias("subjects"), col("videos").sum(), col("frames").sum()])
            .join(
                per_clip.clone().group_by([col("split")]).agg([len().alias("clips")]),
                [col("split")],
                [col("split")],
                JoinArgs::new(JoinType::Left),
            )
            .sort(["split"], Default::default()),
        "counts per split",
    )?;
    let (splits, subjects, videos, clips, frames) =
        (strs(&df, "split")?, i64s(&df, "subjects")?, i64s(&df, "videos")?, i64s(&df, "clips")?, i64s(&df, "frames")?);
    for i in 0..splits.len() {
        out.per_split.push(SplitCount {
            dataset: ds.clone(),
            split: splits[i].clone(),
            subjects: subjects[i] as u64,
            videos: videos[i] as u64,
            clips: clips[i] as u64,
            frames: frames[i] as u64,
        });
    }

    let df = collect(
        per_video
            .clone()
            .lazy()
            .group_by([col("split"), col(c::SUBJECT)])
            .agg([col("frames").sum()])
            .sort(["split", c::SUBJECT], Default::default()),
        "frames per subject",
    )?;
    let (splits, keys, frames) = (strs(&df, "split")?, strs(&df, c::SUBJECT)?, i64s(&df, "frames")?);
    for i in 0..keys.len() {
        out.per_subject.push(KeyCount {
            dataset: ds.clone(),
            split: splits[i].clone(),
            key: keys[i].clone(),
            frames: frames[i] as u64,
        });
    }

    let df = collect(per_video.clone().lazy().sort(["split", c::SUBJECT, c::VIDEO], Default::default()), "per video")?;
    let (splits, subj, vids, frames) =
        (strs(&df, "split")?, strs(&df, c::SUBJECT)?, strs(&df, c::VIDEO)?, i64s(&df, "frames")?);
    for i in 0..vids.len() {
        out.per_video.push(KeyCount {
            dataset: ds.clone(),
            split: splits[i].clone(),
            key: format!("{}/{}", subj[i], vids[i]),
            frames: frames[i] as u64,
        });
    }
    out.clips.push(ClipStats {
        dataset: ds.clone(),
        frames_per_clip: distribution(per_clip, "frames", "frames per clip distribution")?,
        frames_per_video: distribution(per_video.lazy(), "frames", "frames per video distribution")?,
    });
    Ok(())
}
