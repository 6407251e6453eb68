//! AU base rates per split, and label sanity checks.
//!
//! Columns read: `au_occurrence`, `au_intensity` (when present),
//! `frame_index`, `sample_id` (split join, examples), `video`, `subject`.

use polars::prelude::*;
use schemas::schema::col as c;
use serde::Serialize;

use super::scan::{collect, i64s, one_i64, strs, with_split, Group};
use super::{AuditOptions, Check};
use crate::error::Result;

/// One AU's label counts in one split.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuRate {
    /// AU number.
    pub au: u16,
    /// Frames labeled present.
    pub present: u64,
    /// Frames labeled absent.
    pub absent: u64,
    /// Frames with the label unknown (-1), excluded from the base rate.
    pub unknown: u64,
    /// present / (present + absent); NaN when no frame is known.
    pub base_rate: f64,
    /// unknown / all frames.
    pub unknown_fraction: f64,
}

/// Base rates of every AU of one (dataset, split).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BaseRates {
    /// Dataset.
    pub dataset: String,
    /// Split.
    pub split: String,
    /// Frames in the split.
    pub frames: u64,
    /// Per AU, in the shard's AU order.
    pub aus: Vec<AuRate>,
}

/// The label list as `Array(Int32, n)`: Polars is built without `dtype-i8`,
/// so its array kernels do not take the shards' Int8 items.
fn widened(column: &str, n: usize) -> Expr {
    col(column).cast(DataType::Array(Box::new(DataType::Int32), n)).alias(column)
}

fn au(j: usize, column: &str) -> Expr {
    col(column).arr().get(lit(j as i64), true)
}

/// Base rates per split of a labeled group.
pub fn base_rates(group: &Group, manifest: Option<&DataFrame>) -> Result<Vec<BaseRates>> {
    let occ = c::AU_OCCURRENCE;
    let mut aggs = vec![len().cast(DataType::Int64).alias("frames")];
    for j in 0..group.au_numbers.len() {
        for (name, v) in [("present", 1), ("absent", 0), ("unknown", -1)] {
            aggs.push(au(j, occ).eq(lit(v)).cast(DataType::Int64).sum().alias(format!("{name}_{j}")));
        }
    }
    let n = group.au_numbers.len();
    let lf = with_split(group.scan()?.select([col(c::SAMPLE_ID), widened(occ, n)]), manifest);
    let df = collect(lf.group_by([col("split")]).agg(aggs).sort(["split"], Default::default()), "AU base rates")?;
    let splits = strs(&df, "split")?;
    let frames = i64s(&df, "frames")?;
    let mut out = Vec::new();
    for (i, split) in splits.iter().enumerate() {
        let mut aus = Vec::new();
        for (j, &number) in group.au_numbers.iter().enumerate() {
            let get = |n: &str| -> Result<u64> { Ok(i64s(&df, &format!("{n}_{j}"))?[i] as u64) };
            let (present, absent, unknown) = (get("present")?, get("absent")?, get("unknown")?);
            let known = present + absent;
            aus.push(AuRate {
                au: number,
                present,
                absent,
                unknown,
                base_rate: if known == 0 { f64::NAN } else { present as f64 / known as f64 },
                unknown_fraction: if frames[i] == 0 { 0.0 } else { unknown as f64 / frames[i] as f64 },
            });
        }
        out.push(BaseRates { dataset: group.dataset.clone(), split: split.clone(), frames: frames[i] as u64, aus });
    }
    Ok(out)
}

/// Rows matching `bad`, as a count and up to `max` example sample ids.
fn offenders(lf: LazyFrame, bad: Expr, extra: Expr, max: usize, query: &str) -> Result<(u64, Vec<String>)> {
    let flagged = lf.filter(bad);
    let n = one_i64(&collect(flagged.clone().select([len().cast(DataType::Int64).alias("n")]), query)?, "n")?;
    if n == 0 {
        return Ok((0, Vec::new()));
    }
    let examples = flagged.select([col(c::SAMPLE_ID), extra.alias("detail")]);
    let df = collect(examples.sort([c::SAMPLE_ID], Default::default()).limit(max as u32), query)?;
    let ids = strs(&df, c::SAMPLE_ID)?;
    let detail = strs(&df, "detail")?;
    Ok((n as u64, ids.into_iter().zip(detail).map(|(i, d)| format!("{i} ({d})")).collect()))
}

fn values_text(column: &str) -> Expr {
    col(column).cast(DataType::List(Box::new(DataType::String))).list().join(lit(","), true)
}

/// Label sanity of a labeled group: occurrence in {-1, 0, 1}, intensity in
/// -1..=5, occurrence = (intensity >= 2) where both are known, no labeled
/// frame past the end of its clip. One [`Check`] per rule.
pub fn label_checks(group: &Group, opts: &AuditOptions) -> Result<Vec<Check>> {
    let ds = &group.dataset;
    let mut checks = Vec::new();
    let occ = c::AU_OCCURRENCE;
    let n = group.au_numbers.len();
    let mut cols = vec![col(c::SAMPLE_ID), col(c::FRAME_INDEX), widened(occ, n)];
    if group.intensity && group.has(&[c::AU_INTENSITY]) {
        cols.push(widened(c::AU_INTENSITY, n));
    }
    let lf = group.scan()?.select(cols);

    let bad = col(occ).arr().min().lt(lit(-1)).or(col(occ).arr().max().gt(lit(1)));
    let (n, ex) = offenders(lf.clone(), bad, values_text(occ), opts.max_examples, "occurrence range")?;
    checks.push(Check::from_count(
        &format!("labels/occurrence_range/{ds}"),
        n,
        "rows with an occurrence label outside {-1, 0, 1}",
        ex,
    ));

    if group.intensity && group.has(&[c::AU_INTENSITY]) {
        let int = c::AU_INTENSITY;
        let bad = col(int).arr().min().lt(lit(-1)).or(col(int).arr().max().gt(lit(5)));
        let (n, ex) = offenders(lf.clone(), bad, values_text(int), opts.max_examples, "intensity range")?;
        checks.push(Check::from_count(
            &format!("labels/intensity_range/{ds}"),
            n,
            "rows with an intensity label outside -1..=5",
            ex,
        ));
        // Contract: occurrence = intensity >= 2; unknown intensity <=> unknown occurrence.
        let mut mismatch = lit(false);
        for j in 0..group.au_numbers.len() {
            let (i, o) = (au(j, int), au(j, occ));
            let expected = when(i.clone().eq(lit(-1))).then(lit(-1)).otherwise(i.gt_eq(lit(2)).cast(DataType::Int32));
            mismatch = mismatch.or(o.cast(DataType::Int32).neq(expected));
        }
        let detail = values_text(occ) + lit(" vs intensity ") + values_text(int);
        let (n, ex) = offenders(lf.clone(), mismatch, detail, opts.max_examples, "occurrence vs intensity")?;
        checks.push(Check::from_count(
            &format!("labels/occurrence_matches_intensity/{ds}"),
            n,
            "rows whose occurrence is not (intensity >= 2)",
            ex,
        ));
    }

    let name = format!("labels/past_clip_end/{ds}");
    match opts.clip_frames.get(ds) {
        Some(&frames) => {
            let labeled = col(occ).arr().max().gt_eq(lit(0));
            let outside = col(c::FRAME_INDEX).lt(lit(0)).or(col(c::FRAME_INDEX).gt_eq(lit(frames)));
            let (n, ex) = offenders(
                lf,
                labeled.and(outside),
                lit("frame_index ") + col(c::FRAME_INDEX).cast(DataType::String),
                opts.max_examples,
                "past clip end",
            )?;
            checks.push(Check::from_count(
                &name,
                n,
                &format!("labeled rows with frame_index outside 0..{frames} (clips of {frames} frames)"),
                ex,
            ));
        }
        None => {
            checks.push(Check::skipped(&name, &format!("no known clip length for {ds} (set --clip-frames {ds}=N)")))
        }
    }
    Ok(checks)
}
