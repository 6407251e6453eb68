//! Cross-row checks: duplicate sample ids (over every shard), subject
//! leakage across splits, rows outside the manifest and manifest rows
//! missing from the shards.
//!
//! Columns read: `sample_id`, `subject`.

use polars::prelude::*;
use schemas::schema::col as c;

use super::scan::{collect, i64s, pl_err, strs, Group, OUTSIDE};
use super::{AuditOptions, Check};
use crate::error::Result;

/// Sample ids that occur more than once over all groups.
pub fn duplicates(groups: &[Group], opts: &AuditOptions) -> Result<Check> {
    let scans: Vec<LazyFrame> =
        groups.iter().map(|g| g.scan().map(|lf| lf.select([col(c::SAMPLE_ID)]))).collect::<Result<_>>()?;
    if scans.is_empty() {
        return Ok(Check::skipped("integrity/duplicate_sample_ids", "no shards"));
    }
    let all = concat(scans, UnionArgs::default()).map_err(|e| pl_err("duplicates", e))?;
    // Cheap first: rows minus distinct ids; the group-by for examples runs
    // only when that is not zero.
    let df = collect(
        all.clone().select([
            (len().cast(DataType::Int64) - col(c::SAMPLE_ID).n_unique().cast(DataType::Int64)).alias("extra")
        ]),
        "distinct sample ids",
    )?;
    if i64s(&df, "extra")?.first().copied().unwrap_or_default() == 0 {
        return Ok(Check::from_count("integrity/duplicate_sample_ids", 0, "sample ids present more than once", vec![]));
    }
    let dups = all.group_by([col(c::SAMPLE_ID)]).agg([len().alias("n")]).filter(col("n").gt(lit(1))).cache();
    let total = collect(dups.clone().select([len().cast(DataType::Int64).alias("n")]), "duplicate count")?;
    let n = i64s(&total, "n")?.first().copied().unwrap_or_default() as u64;
    let df = collect(dups.sort([c::SAMPLE_ID], Default::default()).limit(opts.max_examples as u32), "duplicates")?;
    let ex = strs(&df, c::SAMPLE_ID)?.into_iter().zip(i64s(&df, "n")?).map(|(id, k)| format!("{id} (x{k})")).collect();
    Ok(Check::from_count("integrity/duplicate_sample_ids", n, "sample ids present more than once", ex))
}

/// Leakage, rows outside the manifest and manifest rows missing from the
/// shards, for one dataset covered by a manifest frame (`sample_id`,
/// `split`, `manifest_subject`).
pub fn manifest_checks(group: &Group, manifest: &DataFrame, opts: &AuditOptions) -> Result<Vec<Check>> {
    let ds = &group.dataset;
    let max = opts.max_examples as u32;
    let shard = group.scan()?.select([col(c::SAMPLE_ID), col(c::SUBJECT)]);
    let m = manifest.clone().lazy();
    let joined = shard
        .clone()
        .join(m.clone(), [col(c::SAMPLE_ID)], [col(c::SAMPLE_ID)], JoinArgs::new(JoinType::Left))
        .with_column(col("split").fill_null(lit(OUTSIDE)))
        .cache();
    let mut checks = Vec::new();

    // Leakage: a subject (as the shards name it, or as the manifest does)
    // whose frames sit in more than one split.
    let by_shard =
        joined.clone().filter(col("split").neq(lit(OUTSIDE))).select([col(c::SUBJECT).alias("who"), col("split")]);
    let by_manifest = m.clone().select([col("manifest_subject").alias("who"), col("split")]);
    let both = concat([by_shard, by_manifest], UnionArgs::default()).map_err(|e| pl_err("leakage", e))?;
    let leaks = collect(
        both.group_by([col("who")])
            .agg([
                col("split").n_unique().alias("n"),
                col("split").unique().sort(Default::default()).implode(true).alias("splits"),
            ])
            .filter(col("n").gt(lit(1)))
            .with_column(col("splits").list().join(lit("+"), true))
            .sort(["who"], Default::default()),
        "subject leakage",
    )?;
    let who = strs(&leaks, "who")?;
    let ex: Vec<String> =
        who.iter().zip(strs(&leaks, "splits")?).take(max as usize).map(|(w, s)| format!("{w} in {s}")).collect();
    checks.push(Check::from_count(
        &format!("integrity/subject_leakage/{ds}"),
        who.len() as u64,
        "subjects in more than one split",
        ex,
    ));

    // Shard rows the manifest lacks.
    let outside = joined.filter(col("split").eq(lit(OUTSIDE))).select([col(c::SAMPLE_ID)]).cache();
    let n = i64s(&collect(outside.clone().select([len().cast(DataType::Int64).alias("n")]), "rows outside")?, "n")?[0];
    let ex =
        strs(&collect(outside.sort([c::SAMPLE_ID], Default::default()).limit(max), "rows outside")?, c::SAMPLE_ID)?;
    checks.push(Check::from_count(
        &format!("integrity/rows_outside_manifest/{ds}"),
        n as u64,
        "shard rows not in the manifest",
        ex,
    ));

    // Manifest rows the shards lack.
    let missing = m
        .join(
            shard.select([col(c::SAMPLE_ID), lit(true).alias("in_shards")]),
            [col(c::SAMPLE_ID)],
            [col(c::SAMPLE_ID)],
            JoinArgs::new(JoinType::Left),
        )
        .filter(col("in_shards").is_null())
        .select([col(c::SAMPLE_ID)])
        .cache();
    let n = i64s(&collect(missing.clone().select([len().cast(DataType::Int64).alias("n")]), "missing rows")?, "n")?[0];
    let ex =
        strs(&collect(missing.sort([c::SAMPLE_ID], Default::default()).limit(max), "missing rows")?, c::SAMPLE_ID)?;
    checks.push(Check::from_count(
        &format!("integrity/manifest_rows_missing/{ds}"),
        n as u64,
        "manifest rows not in the shards",
        ex,
    ));
    Ok(checks)
}

/// Sample ids that are not plain relative paths (`..`, absolute, backslash,
/// control characters: [`schemas::validate::check_sample_id`], the rule
/// `manifest build` and every other command apply). Reads `sample_id` file
/// by file through the shard validator.
pub fn sample_id_syntax(groups: &[Group], opts: &AuditOptions) -> Result<Check> {
    let mut bad = 0u64;
    let mut examples = Vec::new();
    for file in groups.iter().flat_map(|g| g.files.iter()) {
        let reader = schemas::ShardReader::open(file)?;
        let mut row = 0usize;
        for batch in reader.read_all(&[c::SAMPLE_ID])? {
            let ids = schemas::reader::Columns::new(file, &batch).strings(c::SAMPLE_ID)?;
            for i in 0..batch.num_rows() {
                if let Err(why) = schemas::validate::check_sample_id(ids.value(i)) {
                    bad += 1;
                    if examples.len() < opts.max_examples {
                        examples.push(format!("{} row {}: {:?} ({why})", file.display(), row + i, ids.value(i)));
                    }
                }
            }
            row += batch.num_rows();
        }
    }
    Ok(Check::from_count("integrity/sample_id_syntax", bad, "sample ids that are not plain relative paths", examples))
}

/// The preprocess settings that decide what a row holds, as recorded in a
/// shard's `mcsfau.preprocess_config` (the same ones `preprocess` refuses to
/// mix in one `--out`).
const ROW_SETTINGS: [&str; 4] = ["fps", "landmarks", "crop_size", "jpeg_quality"];

/// Shards of one dataset made with different preprocess settings (64 px
/// crops next to 128 px ones, dlib next to FAN landmarks): one failed check
/// per dataset, listing each configuration with a file that has it.
pub fn mixed_configurations(groups: &[Group]) -> Result<Vec<Check>> {
    use std::collections::BTreeMap;
    let mut by_dataset: BTreeMap<&str, BTreeMap<String, (u64, String)>> = BTreeMap::new();
    for g in groups {
        for file in &g.files {
            let reader = schemas::ShardReader::open(file)?;
            let cfg: serde_json::Value = serde_json::from_str(&reader.meta().preprocess_config).unwrap_or_default();
            let sig = ROW_SETTINGS
                .iter()
                .map(|k| format!("{k}={}", cfg.get(*k).map_or("?".to_string(), |v| v.to_string())))
                .collect::<Vec<_>>()
                .join(" ");
            let e =
                by_dataset.entry(g.dataset.as_str()).or_default().entry(sig).or_insert((0, file.display().to_string()));
            e.0 += 1;
        }
    }
    Ok(by_dataset
        .into_iter()
        .map(|(ds, sigs)| {
            let n = if sigs.len() > 1 { sigs.len() as u64 } else { 0 };
            let ex = if n > 0 {
                sigs.iter().map(|(sig, (files, first))| format!("{sig}: {files} files (e.g. {first})")).collect()
            } else {
                Vec::new()
            };
            Check::from_count(
                &format!("integrity/mixed_preprocess_config/{ds}"),
                n,
                "preprocess configurations in one shard set",
                ex,
            )
        })
        .collect())
}
