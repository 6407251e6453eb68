//! `mcsfau compare`: two probe reports paired AU by AU, and the paired
//! t-test over per-AU F1 the paper marks its tables with (p < 0.05).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::metrics::{mean, paired_t_test, PairedTTest};
use super::report::ProbeReport;
use crate::error::{ModelError, Result};

/// Two methods' per-AU F1 and the paired t-test between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// AU numbers (the pairs).
    pub au_numbers: Vec<u16>,
    /// Label of A.
    pub a: String,
    /// Label of B.
    pub b: String,
    /// A's per-AU F1, fractions.
    pub a_f1: Vec<f64>,
    /// B's per-AU F1, fractions.
    pub b_f1: Vec<f64>,
    /// Mean F1 of A and of B.
    pub means: [f64; 2],
    /// Paired t-test of A against B over the AUs.
    pub test: PairedTTest,
}

/// Pairs two reports AU by AU (they must cover the same AUs) and runs the
/// paired t-test the paper uses (p < 0.05 marks significance).
pub fn compare(a: &ProbeReport, a_label: &str, b: &ProbeReport, b_label: &str) -> Result<Comparison> {
    if a.au_numbers != b.au_numbers {
        return Err(ModelError::Probe(format!(
            "{a_label} has AUs {:?}, {b_label} has {:?}: nothing to pair",
            a.au_numbers, b.au_numbers
        )));
    }
    same_test_set(a, a_label, b, b_label)?;
    let (a_f1, b_f1) = (a.f1s(), b.f1s());
    let test = paired_t_test(&a_f1, &b_f1)
        .ok_or_else(|| ModelError::Probe("a paired t-test needs at least two AUs".into()))?;
    Ok(Comparison {
        au_numbers: a.au_numbers.clone(),
        a: a_label.into(),
        b: b_label.into(),
        means: [mean(&a_f1), mean(&b_f1)],
        a_f1,
        b_f1,
        test,
    })
}

/// The test split of a report: (manifest, frames), as far as the report
/// records it.
fn test_set(r: &ProbeReport) -> (String, Option<usize>) {
    (r.manifest.clone(), r.splits.iter().find(|s| s.name == "test").map(|s| s.frames))
}

/// A paired test over AUs compares two methods on the same frames: reports
/// of different manifests or test-frame counts are refused.
fn same_test_set(a: &ProbeReport, a_label: &str, b: &ProbeReport, b_label: &str) -> Result<()> {
    let ((ma, fa), (mb, fb)) = (test_set(a), test_set(b));
    let frames = |f: Option<usize>| f.map_or("an unrecorded number of".to_string(), |n| n.to_string());
    if ma != mb || fa != fb {
        return Err(ModelError::Probe(format!(
            "{a_label} was tested on {} frames of manifest {ma}, {b_label} on {} frames of {mb}: \
             a paired test needs both methods on the same test set",
            frames(fa),
            frames(fb)
        )));
    }
    Ok(())
}

impl Comparison {
    /// Markdown: the two rows, the differences, t, df and p.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("| | ");
        s.push_str(&self.au_numbers.iter().map(|a| format!("AU{a}")).collect::<Vec<_>>().join(" | "));
        s.push_str(" | mean |\n|---|");
        s.push_str(&"---:|".repeat(self.au_numbers.len() + 1));
        s.push('\n');
        let diff: Vec<f64> = self.a_f1.iter().zip(&self.b_f1).map(|(x, y)| x - y).collect();
        for (name, v, m) in [
            (&self.a, &self.a_f1, self.means[0]),
            (&self.b, &self.b_f1, self.means[1]),
            (&"A - B".to_string(), &diff, self.means[0] - self.means[1]),
        ] {
            let _ = write!(s, "| {name} |");
            for x in v {
                let _ = write!(s, " {:.1} |", 100.0 * x);
            }
            let _ = writeln!(s, " {:.1} |", 100.0 * m);
        }
        let t = &self.test;
        if t.t.is_nan() {
            let _ = writeln!(s, "\nEvery AU's F1 is the same in A and B: the paired t-test is undefined (t = NaN).");
            return s;
        }
        let verdict = if t.p_value < 0.05 { "significant at p < 0.05" } else { "not significant at p < 0.05" };
        let _ = writeln!(
            s,
            "\nPaired t-test over {} AUs: t = {:.4}, df = {}, p = {} ({verdict}).",
            t.n,
            t.t,
            t.df,
            fmt_p(t.p_value)
        );
        s
    }
}

/// A p-value with four significant digits (scientific below 1e-4).
fn fmt_p(p: f64) -> String {
    if p.is_nan() || p == 0.0 || p >= 1e-4 {
        format!("{p:.4}")
    } else {
        format!("{p:.3e}")
    }
}
