//! The downstream metric (paper 4.1): per-AU F1 of binary occurrence at
//! threshold 0.5, unknown labels (-1) left out, and the paired t-test over
//! per-AU F1 the paper marks its tables with (p < 0.05). Beside F1, the
//! threshold-free average precision ([`weighted_ap`], scikit-learn's
//! `average_precision_score`) and the floors a trivial method scores
//! ([`floor_f1`]: predict "present" for every frame; AP: the base rate).
//!
//! # Convention for undefined F1
//! `F1 = 2 TP / (2 TP + FP + FN)`. When the denominator is 0 (no positive
//! label and no positive prediction among the known frames, or no known
//! frame at all) F1 is 0, as scikit-learn's `f1_score` returns with its
//! default `zero_division="warn"` (and with `zero_division=0`). Checked
//! against scikit-learn in `model/tests/probe_metrics.rs` with the arrays
//! `model/tests/data/probe/gen_reference.py` writes.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Counts and F1 of one AU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AuScore {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    pub fn_: u64,
    /// True negatives.
    pub tn: u64,
    /// F1 in [0, 1] (0 when undefined, see the module doc).
    pub f1: f64,
}

impl AuScore {
    /// Frames with a known label.
    pub fn known(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    /// Frames labeled present.
    pub fn positives(&self) -> u64 {
        self.tp + self.fn_
    }

    /// Precision (0 when nothing is predicted present).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// Recall (0 when nothing is labeled present).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// F1 from counts, 0 when undefined (scikit-learn's `zero_division=0`).
pub fn f1_from_counts(tp: u64, fp: u64, fn_: u64) -> f64 {
    ratio(2 * tp, 2 * tp + fp + fn_)
}

/// Per-AU scores of `probs` against `labels`, both row-major `[n, aus]`.
/// A frame counts for an AU when its label is 0 or 1; -1 (unknown) is
/// skipped; it is predicted present when its probability is >= `threshold`.
///
/// # Panics
/// When the slices are not `n * aus` long (a caller bug).
pub fn per_au_scores(probs: &[f32], labels: &[i8], aus: usize, threshold: f32) -> Vec<AuScore> {
    assert_eq!(probs.len(), labels.len(), "probabilities and labels differ in length");
    assert!(aus > 0 && labels.len() % aus == 0, "labels are not [n, {aus}]");
    let mut counts = vec![[0u64; 4]; aus]; // tp, fp, fn, tn
    for (p_row, y_row) in probs.chunks_exact(aus).zip(labels.chunks_exact(aus)) {
        for (a, (&p, &y)) in p_row.iter().zip(y_row).enumerate() {
            let pred = p >= threshold;
            match (y, pred) {
                (1, true) => counts[a][0] += 1,
                (0, true) => counts[a][1] += 1,
                (1, false) => counts[a][2] += 1,
                (0, false) => counts[a][3] += 1,
                _ => {} // unknown label: neither loss nor metric
            }
        }
    }
    counts.into_iter().map(|[tp, fp, fn_, tn]| AuScore { tp, fp, fn_, tn, f1: f1_from_counts(tp, fp, fn_) }).collect()
}

/// Row weights of one AU for [`weighted_ap`]: `order` sorts the rows by
/// descending score once, so a bootstrap replicate only changes weights.
#[derive(Debug, Clone)]
pub struct RankedAu {
    /// Row indices with a known label, by descending score (stable).
    pub order: Vec<usize>,
    /// Scores, per row (all rows).
    pub scores: Vec<f32>,
    /// Labels, per row (all rows): 1, 0 or -1.
    pub labels: Vec<i8>,
}

impl RankedAu {
    /// Column `au` of row-major `[n, aus]` probabilities and labels.
    pub fn new(probs: &[f32], labels: &[i8], aus: usize, au: usize) -> Self {
        let scores: Vec<f32> = probs.iter().skip(au).step_by(aus).copied().collect();
        let labels: Vec<i8> = labels.iter().skip(au).step_by(aus).copied().collect();
        let mut order: Vec<usize> = (0..scores.len()).filter(|&i| labels[i] >= 0).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        Self { order, scores, labels }
    }
}

/// Average precision with row weights (`weight(row)`, 1 for the plain
/// metric, bootstrap multiplicities otherwise): scikit-learn's
/// `average_precision_score`, `sum_n (R_n - R_(n-1)) P_n` over the distinct
/// scores in descending order (tied scores form one threshold). 0 when no
/// known label is positive (as scikit-learn returns).
pub fn weighted_ap(r: &RankedAu, weight: impl Fn(usize) -> f64) -> f64 {
    let positives: f64 = r.order.iter().filter(|&&i| r.labels[i] == 1).map(|&i| weight(i)).sum();
    if positives <= 0.0 {
        return 0.0;
    }
    let (mut tp, mut fp, mut ap, mut recall) = (0.0, 0.0, 0.0, 0.0);
    let mut k = 0;
    while k < r.order.len() {
        let score = r.scores[r.order[k]];
        while k < r.order.len() && r.scores[r.order[k]] == score {
            let i = r.order[k];
            if r.labels[i] == 1 {
                tp += weight(i);
            } else {
                fp += weight(i);
            }
            k += 1;
        }
        if tp + fp > 0.0 {
            let new_recall = tp / positives;
            ap += (new_recall - recall) * tp / (tp + fp);
            recall = new_recall;
        }
    }
    ap
}

/// Per-AU average precision of row-major `[n, aus]` probabilities.
pub fn per_au_ap(probs: &[f32], labels: &[i8], aus: usize) -> Vec<f64> {
    (0..aus).map(|a| weighted_ap(&RankedAu::new(probs, labels, aus, a), |_| 1.0)).collect()
}

/// F1 of predicting "present" for every known frame: `2p / (1 + p)` for a
/// base rate `p` (0 without positives): the floor a representation must beat.
pub fn floor_f1(s: &AuScore) -> f64 {
    f1_from_counts(s.positives(), s.known() - s.positives(), 0)
}

/// Fraction of known frames labeled present (the AP of a constant score).
pub fn base_rate(s: &AuScore) -> f64 {
    ratio(s.positives(), s.known())
}

/// Mean of `values` (0 for none).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The result of a paired t-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedTTest {
    /// Pairs.
    pub n: usize,
    /// Mean of `a - b`.
    pub mean_diff: f64,
    /// The t statistic (NaN when every difference is equal and nonzero
    /// cannot be told from noise: infinite; see [`paired_t_test`]).
    pub t: f64,
    /// Degrees of freedom, `n - 1`.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Paired two-sided t-test of `a` against `b` (as `scipy.stats.ttest_rel`):
/// `t = mean(d) / (sd(d) / sqrt(n))`, `d = a - b`, sd with `n - 1`, p from
/// Student's t with `n - 1` degrees of freedom. `None` for fewer than two
/// pairs or unequal lengths. When every difference is the same, scipy gives
/// t = +-inf, p = 0 for a nonzero difference and t = NaN, p = NaN for none;
/// so does this function.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Option<PairedTTest> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let n = a.len();
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let m = mean(&d);
    let var = d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let df = (n - 1) as f64;
    let t = m / (var.sqrt() / (n as f64).sqrt());
    let p_value = if t.is_nan() {
        f64::NAN
    } else if t.is_infinite() {
        0.0
    } else {
        let dist = StudentsT::new(0.0, 1.0, df).ok()?;
        2.0 * dist.sf(t.abs())
    };
    Some(PairedTTest { n, mean_diff: m, t, df, p_value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_by_hand_with_unknown_labels_skipped() {
        // AU0: tp 2, fp 1, fn 1 -> 4 / 6; AU1: all unknown or negative, no
        // positive predicted -> undefined -> 0.
        let labels = [1, 0, 1, -1, 0, 0, 1, 0, -1, -1];
        let probs = [0.9, 0.1, 0.6, 0.9, 0.5, 0.2, 0.4, 0.3, 0.2, 0.99];
        let s = per_au_scores(&probs, &labels, 2, 0.5);
        assert_eq!((s[0].tp, s[0].fp, s[0].fn_, s[0].tn), (2, 1, 1, 0));
        assert!((s[0].f1 - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!((s[1].known(), s[1].f1), (3, 0.0));
    }

    #[test]
    fn average_precision_and_floors_by_hand() {
        // Scores 0.9 (1), 0.5 (1), 0.5 (0), 0.1 (0): thresholds 0.9 -> P 1,
        // R 1/2; 0.5 (a tie, one threshold) -> P 2/3, R 1. AP = 1/2 + 1/3.
        let probs = [0.5, 0.5, 0.9, 0.1];
        let labels = [1, 0, 1, 0];
        assert!((per_au_ap(&probs, &labels, 1)[0] - 5.0 / 6.0).abs() < 1e-12);
        // Unknown rows are left out; no positive -> 0.
        assert!((per_au_ap(&[0.5, 0.9, 0.2], &[1, -1, 0], 1)[0] - 1.0).abs() < 1e-12);
        assert_eq!(per_au_ap(&[0.5, 0.9], &[0, 0], 1)[0], 0.0);
        // A weight of 2 on a row is that row twice.
        let r = RankedAu::new(&probs, &labels, 1, 0);
        let twice = weighted_ap(&r, |i| if i == 1 { 2.0 } else { 1.0 });
        let dup = per_au_ap(&[0.5, 0.5, 0.9, 0.1, 0.5], &[1, 0, 1, 0, 0], 1)[0];
        assert!((twice - dup).abs() < 1e-12);
        // 1 positive in 4 known: all-present F1 = 2 * 0.25 / 1.25 = 0.4.
        let s = per_au_scores(&[0.1; 4], &[1, 0, 0, 0], 1, 0.5)[0];
        assert!((floor_f1(&s) - 0.4).abs() < 1e-12 && (base_rate(&s) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn t_test_by_hand_and_degenerate_cases() {
        // d = [1, 2, 3]: mean 2, sd 1, t = 2 * sqrt(3) = 3.4641, df 2.
        let r = paired_t_test(&[2.0, 4.0, 6.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((r.t - 2.0 * 3f64.sqrt()).abs() < 1e-12);
        // scipy.stats.t.sf(2*sqrt(3), 2) * 2 = 0.07417990022744855
        assert!((r.p_value - 0.074_179_900_227_448_55).abs() < 1e-9, "{}", r.p_value);
        let same = paired_t_test(&[1.0, 2.0], &[0.0, 1.0]).unwrap();
        assert!(same.t.is_infinite() && same.p_value == 0.0);
        assert!(paired_t_test(&[1.0, 2.0], &[1.0, 2.0]).unwrap().p_value.is_nan());
        assert!(paired_t_test(&[1.0], &[0.0]).is_none());
    }
}
