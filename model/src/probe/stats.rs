//! Uncertainty of the probe's test scores: a percentile bootstrap over test
//! *subjects* (frames of one subject are strongly correlated, so resampling
//! frames would understate the spread), of mean F1 and mean average
//! precision, averaged over the probe seeds inside every replicate.
//!
//! A replicate draws as many subjects as the test split has, with
//! replacement; a subject drawn `w` times weighs each of its frames by `w`.
//! F1 then comes from the weighted confusion counts and AP from the
//! weighted ranking ([`weighted_ap`]), per AU, averaged over the AUs and
//! over the seeds. The interval is the 2.5 and 97.5 percentiles of the
//! replicates (linear interpolation between order statistics).

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::metrics::{mean, weighted_ap, RankedAu};

/// Percentile bootstrap intervals of the mean test scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// What is resampled (`"test subject"`).
    pub unit: String,
    /// Distinct units in the test split.
    pub units: usize,
    /// Replicates drawn.
    pub resamples: usize,
    /// Coverage of the interval (0.95).
    pub level: f64,
    /// Mean F1 over the AUs (and seeds): `[lo, hi]`, fractions.
    pub mean_f1: [f64; 2],
    /// Mean AP over the AUs (and seeds): `[lo, hi]`, fractions.
    pub mean_ap: [f64; 2],
    /// Standard deviation of the replicates' mean F1 (a standard error).
    pub mean_f1_se: f64,
    /// Standard deviation of the replicates' mean AP.
    pub mean_ap_se: f64,
}

/// The subject of a sample id (`bp4d/F001/T1#000012` -> `F001`): the
/// second `/`-separated part, as `FaceRow::make_sample_id` writes it.
pub fn subject_of(sample_id: &str) -> &str {
    sample_id.split('/').nth(1).unwrap_or(sample_id)
}

/// Group index of every row (subjects numbered in order of appearance) and
/// the number of groups.
pub fn subject_groups(ids: &[String]) -> (Vec<usize>, usize) {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let groups = ids
        .iter()
        .map(|id| {
            let n = index.len();
            *index.entry(subject_of(id)).or_insert(n)
        })
        .collect();
    (groups, index.len())
}

/// The `q` quantile of sorted `v` (linear interpolation, numpy's default).
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    let j = (i + 1).min(v.len() - 1);
    v[i] + (v[j] - v[i]) * frac
}

fn std_dev(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt()
}

/// Mean F1 (threshold `threshold`) and mean AP over the AUs of one seed's
/// probabilities with group weights `w`.
fn scores(ranked: &[RankedAu], groups: &[usize], w: &[f64], threshold: f32) -> (f64, f64) {
    let (mut f1s, mut aps) = (Vec::with_capacity(ranked.len()), Vec::with_capacity(ranked.len()));
    for r in ranked {
        let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
        for &i in &r.order {
            let wi = w[groups[i]];
            match (r.labels[i] == 1, r.scores[i] >= threshold) {
                (true, true) => tp += wi,
                (false, true) => fp += wi,
                (true, false) => fn_ += wi,
                (false, false) => {}
            }
        }
        let denom = 2.0 * tp + fp + fn_;
        f1s.push(if denom > 0.0 { 2.0 * tp / denom } else { 0.0 });
        aps.push(weighted_ap(r, |i| w[groups[i]]));
    }
    (mean(&f1s), mean(&aps))
}

/// The bootstrap of the seed-averaged mean F1 and mean AP.
///
/// `seed_probs`: one row-major `[n, aus]` probability table per probe seed;
/// `labels`: `[n, aus]`; `ids`: the rows' sample ids (the subject is read
/// from them).
pub fn bootstrap(
    seed_probs: &[Vec<f32>],
    labels: &[i8],
    aus: usize,
    ids: &[String],
    threshold: f32,
    resamples: usize,
    seed: u64,
) -> Bootstrap {
    let (groups, n) = subject_groups(ids);
    let ranked: Vec<Vec<RankedAu>> =
        seed_probs.iter().map(|p| (0..aus).map(|a| RankedAu::new(p, labels, aus, a)).collect()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut f1s, mut aps) = (Vec::with_capacity(resamples), Vec::with_capacity(resamples));
    let mut w = vec![0.0; n];
    for _ in 0..resamples {
        w.iter_mut().for_each(|x| *x = 0.0);
        for _ in 0..n {
            w[rng.gen_range(0..n)] += 1.0;
        }
        let per_seed: Vec<(f64, f64)> = ranked.iter().map(|r| scores(r, &groups, &w, threshold)).collect();
        f1s.push(mean(&per_seed.iter().map(|s| s.0).collect::<Vec<_>>()));
        aps.push(mean(&per_seed.iter().map(|s| s.1).collect::<Vec<_>>()));
    }
    let (se_f1, se_ap) = (std_dev(&f1s), std_dev(&aps));
    f1s.sort_by(f64::total_cmp);
    aps.sort_by(f64::total_cmp);
    let ci = |v: &[f64]| [quantile(v, 0.025), quantile(v, 0.975)];
    Bootstrap {
        unit: "test subject".into(),
        units: n,
        resamples,
        level: 0.95,
        mean_f1: ci(&f1s),
        mean_ap: ci(&aps),
        mean_f1_se: se_f1,
        mean_ap_se: se_ap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(subjects: &[&str]) -> Vec<String> {
        subjects.iter().enumerate().map(|(i, s)| format!("bp4d/{s}/T1#{i:06}")).collect()
    }

    #[test]
    fn subjects_are_read_from_sample_ids() {
        assert_eq!(subject_of("bp4d/F001/T1#000012"), "F001");
        assert_eq!(subject_of("voxceleb2/id00012/abc/00001#000003"), "id00012");
        let (g, n) = subject_groups(&ids(&["F002", "F001", "F002"]));
        assert_eq!((g, n), (vec![0, 1, 0], 2));
    }

    #[test]
    fn identical_subjects_give_a_zero_width_interval() {
        // Every subject has the same frames and scores: any resample gives
        // the same means, so the interval collapses onto the point value.
        let subjects = ["F001", "F001", "F002", "F002", "F003", "F003"];
        let probs = vec![0.9f32, 0.2, 0.9, 0.2, 0.9, 0.2];
        let labels = vec![1i8, 0, 1, 0, 1, 0];
        let b = bootstrap(&[probs], &labels, 1, &ids(&subjects), 0.5, 200, 0);
        assert_eq!((b.units, b.mean_f1, b.mean_ap), (3, [1.0, 1.0], [1.0, 1.0]));
        assert_eq!(b.mean_f1_se, 0.0);
    }

    #[test]
    fn a_subject_that_disagrees_widens_the_interval_around_the_point() {
        // Subject F003 is predicted wrong: F1 depends on how often it is drawn.
        let subjects = ["F001", "F001", "F002", "F002", "F003", "F003"];
        let probs = vec![0.9f32, 0.2, 0.9, 0.2, 0.2, 0.9];
        let labels = vec![1i8, 0, 1, 0, 1, 0];
        let b = bootstrap(std::slice::from_ref(&probs), &labels, 1, &ids(&subjects), 0.5, 2000, 1);
        let point = super::super::metrics::per_au_scores(&probs, &labels, 1, 0.5)[0].f1;
        assert!((point - 2.0 / 3.0).abs() < 1e-12);
        assert!(b.mean_f1[0] < point && point < b.mean_f1[1], "{:?} around {point}", b.mean_f1);
        assert!(b.mean_f1[0] >= 0.0 && b.mean_f1[1] <= 1.0 && b.mean_f1_se > 0.05);
        // Two seeds with the same predictions: the same interval.
        let two = bootstrap(&[probs.clone(), probs], &labels, 1, &ids(&subjects), 0.5, 2000, 1);
        assert_eq!(two.mean_f1, b.mean_f1);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert_eq!(quantile(&[1.0, 2.0], 0.25), 1.25);
    }
}
