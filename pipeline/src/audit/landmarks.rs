//! Landmark sanity: non-finite values, points outside the crop, degenerate
//! inter-ocular distance, the score distribution and the mean shape.
//!
//! Columns read: `landmarks`, `crop_size`, `landmark_score`, `sample_id`.
//! The inter-ocular distance is between the outer eye corners, iBUG-68
//! points 36 and 45, i.e. points 19 and 28 of the 49-point layout
//! (68 minus the jaw 0-16 and the inner-mouth corners 60, 64).

use polars::prelude::*;
use schemas::schema::col as c;
use serde::Serialize;

use super::scan::{collect, f64s, one_i64, strs, Group};
use super::{AuditOptions, Check};
use crate::error::Result;

/// Left outer eye corner in the 49-point layout (iBUG 36).
pub const LEFT_EYE_OUTER: usize = 19;
/// Right outer eye corner in the 49-point layout (iBUG 45).
pub const RIGHT_EYE_OUTER: usize = 28;
/// Rows from the start of a dataset's scan that the mean shape averages.
pub const MEAN_SHAPE_ROWS: u32 = 100_000;
/// Bins of the score histogram over [0, 1] (scores above 1 go to the last bin).
pub const SCORE_BINS: usize = 20;

/// Landmark figures of one dataset.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct LandmarkStats {
    /// Dataset.
    pub dataset: String,
    /// Rows.
    pub rows: u64,
    /// Rows with a NaN or infinite coordinate.
    pub non_finite: u64,
    /// Rows with a point outside [0, crop_size].
    pub outside_crop: u64,
    /// Rows whose inter-ocular distance is below the threshold.
    pub degenerate_interocular: u64,
    /// Mean inter-ocular distance over crop size (finite rows).
    pub interocular_mean_fraction: f64,
    /// Rows with a non-finite or negative score.
    pub bad_score: u64,
    /// Score histogram: counts of [k/20, (k+1)/20), last bin holds >= 0.95.
    pub score_histogram: Vec<u64>,
    /// Score quantiles 5 %, 50 %, 95 % (nearest rank).
    pub score_quantiles: [f64; 3],
    /// Mean point over the finite rows among the first [`MEAN_SHAPE_ROWS`],
    /// in crop pixels: x0, y0, x1, y1, ...
    pub mean_shape: Vec<f64>,
    /// Crop size of the mean shape (the largest crop size of the dataset).
    pub crop_size: i64,
}

fn pt(i: usize) -> Expr {
    col(c::LANDMARKS).arr().get(lit(i as i64), true).cast(DataType::Float64)
}

/// Computes the landmark figures and checks of one group.
pub fn landmark_checks(group: &Group, opts: &AuditOptions) -> Result<(LandmarkStats, Vec<Check>)> {
    let ds = &group.dataset;
    let lm = c::LANDMARKS;
    let (lx, ly, rx, ry) =
        (pt(2 * LEFT_EYE_OUTER), pt(2 * LEFT_EYE_OUTER + 1), pt(2 * RIGHT_EYE_OUTER), pt(2 * RIGHT_EYE_OUTER + 1));
    let iod = ((lx.clone() - rx.clone()) * (lx - rx) + (ly.clone() - ry.clone()) * (ly - ry)).sqrt();
    let crop = col(c::CROP_SIZE).cast(DataType::Float64);
    let non_finite = col(lm).arr().sum().cast(DataType::Float64).is_finite().not();
    let outside = col(lm).arr().min().cast(DataType::Float64).lt(lit(0.0)).or(col(lm)
        .arr()
        .max()
        .cast(DataType::Float64)
        .gt(crop.clone()));
    let degenerate =
        iod.clone().lt(crop.clone() * lit(opts.min_interocular_fraction)).or(iod.clone().is_finite().not());
    let score = col(c::LANDMARK_SCORE).cast(DataType::Float64);
    let bad_score = score.clone().is_finite().not().or(score.clone().lt(lit(0.0)));

    let flags = [
        non_finite.alias("non_finite"),
        outside.alias("outside"),
        degenerate.alias("degenerate"),
        bad_score.alias("bad_score"),
        (iod / crop).alias("iod_fraction"),
    ];
    let scan = || -> Result<LazyFrame> {
        Ok(group.scan()?.select([col(c::SAMPLE_ID), col(lm), col(c::CROP_SIZE), col(c::LANDMARK_SCORE)]))
    };

    // One pass over the landmark column: every count, the inter-ocular mean,
    // the score histogram (one sum per bin) and the score quantiles.
    let sum = |n: &str| col(n).cast(DataType::Int64).sum().alias(n);
    let good_score = col(c::LANDMARK_SCORE).cast(DataType::Float64).filter(col("bad_score").not());
    let bin = (col(c::LANDMARK_SCORE).cast(DataType::Float64) * lit(SCORE_BINS as f64)).cast(DataType::Int64);
    let bin = when(bin.clone().gt_eq(lit(SCORE_BINS as i64))).then(lit(SCORE_BINS as i64 - 1)).otherwise(bin);
    let mut aggs = vec![
        len().cast(DataType::Int64).alias("rows"),
        sum("non_finite"),
        sum("outside"),
        sum("degenerate"),
        sum("bad_score"),
        col("iod_fraction").filter(col("non_finite").not()).mean().alias("iod_mean"),
        col(c::CROP_SIZE).cast(DataType::Int64).max().alias("crop"),
    ];
    for (p, n) in [(0.05, "q05"), (0.5, "q50"), (0.95, "q95")] {
        aggs.push(good_score.clone().quantile(lit(p), QuantileMethod::Nearest).alias(n));
    }
    for k in 0..SCORE_BINS {
        let hit = col("bin").eq(lit(k as i64)).and(col("bad_score").not());
        aggs.push(hit.cast(DataType::Int64).sum().alias(format!("bin{k}")));
    }
    let df = collect(
        scan()?
            .select([col(lm), col(c::CROP_SIZE), col(c::LANDMARK_SCORE)])
            .with_columns(flags.clone())
            .with_column(bin.alias("bin"))
            .select(aggs),
        "landmark sanity",
    )?;
    let first = |n: &str| -> Result<f64> { Ok(f64s(&df, n)?.first().copied().unwrap_or(f64::NAN)) };
    let mut stats = LandmarkStats {
        dataset: ds.clone(),
        rows: one_i64(&df, "rows")? as u64,
        non_finite: one_i64(&df, "non_finite")? as u64,
        outside_crop: one_i64(&df, "outside")? as u64,
        degenerate_interocular: one_i64(&df, "degenerate")? as u64,
        bad_score: one_i64(&df, "bad_score")? as u64,
        interocular_mean_fraction: first("iod_mean")?,
        score_quantiles: [first("q05")?, first("q50")?, first("q95")?],
        crop_size: one_i64(&df, "crop")?,
        ..Default::default()
    };
    stats.score_histogram =
        (0..SCORE_BINS).map(|k| one_i64(&df, &format!("bin{k}")).map(|v| v as u64)).collect::<Result<_>>()?;

    // Mean shape over the finite rows among the first MEAN_SHAPE_ROWS (the
    // scan stops there): a plot of the average face needs no more.
    let means: Vec<Expr> = (0..2 * schemas::NUM_LANDMARKS).map(|i| pt(i).mean().alias(format!("m{i}"))).collect();
    let df = collect(
        scan()?
            .select([col(lm)])
            .limit(MEAN_SHAPE_ROWS)
            .filter(col(lm).arr().sum().cast(DataType::Float64).is_finite())
            .select(means),
        "mean landmarks",
    )?;
    stats.mean_shape = (0..2 * schemas::NUM_LANDMARKS)
        .map(|i| f64s(&df, &format!("m{i}")).map(|v| v.first().copied().unwrap_or(f64::NAN)))
        .collect::<Result<_>>()?;

    let mut checks = Vec::new();
    let iod_what = format!(
        "rows whose inter-ocular distance (points 19-28) is under {} x crop_size",
        opts.min_interocular_fraction
    );
    for (flag, n, what, name) in [
        ("non_finite", stats.non_finite, "rows with a NaN or infinite landmark coordinate", "non_finite"),
        ("outside", stats.outside_crop, "rows with a landmark outside the crop [0, crop_size]", "outside_crop"),
        ("degenerate", stats.degenerate_interocular, iod_what.as_str(), "degenerate_interocular"),
        ("bad_score", stats.bad_score, "rows with a NaN, infinite or negative landmark score", "score"),
    ] {
        // Examples cost another scan, so only failed checks look for them.
        let examples = if n == 0 {
            Vec::new()
        } else {
            let flagged = scan()?.with_columns(flags.clone()).filter(col(flag)).select([col(c::SAMPLE_ID)]);
            let df = collect(
                flagged.sort([c::SAMPLE_ID], Default::default()).limit(opts.max_examples as u32),
                "landmark examples",
            )?;
            strs(&df, c::SAMPLE_ID)?
        };
        checks.push(Check::from_count(&format!("landmarks/{name}/{ds}"), n, what, examples));
    }
    Ok((stats, checks))
}
