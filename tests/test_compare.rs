//! `mcsfau compare`: the paired t-test over per-AU F1 of two probe reports,
//! against `scipy.stats.ttest_rel` on the same F1 values:
//!
//! ```text
//! A = [2*(i+5)/(2*(i+5)+3+2) for i in range(12)]
//! B = [2*(i+3)/(2*(i+3)+4+(i%3+1)) for i in range(12)]
//! scipy.stats.ttest_rel(A, B) -> t = 6.71925868816257, p = 3.290013653738007e-05
//! ```

use std::path::Path;
use std::process::Command;

use model::probe::linear::{GridPoint, Selection};
use model::probe::metrics::AuScore;
use model::probe::report::{AuResult, ProbeReport};
use model::probe::{CheckpointInfo, Dataset};

fn report(dataset: Dataset, counts: impl Fn(u64) -> (u64, u64, u64)) -> ProbeReport {
    let test = dataset
        .au_numbers()
        .iter()
        .enumerate()
        .map(|(i, &au)| {
            let (tp, fp, fn_) = counts(i as u64);
            let f1 = model::probe::metrics::f1_from_counts(tp, fp, fn_);
            AuResult::new(au, &AuScore { tp, fp, fn_, tn: 10, f1 })
        })
        .collect();
    let point =
        GridPoint { lr: 0.01, weight_decay: 0.0, best_epoch: 1, epochs_run: 1, val_mean_f1: 0.5, val_mean_ap: 0.5 };
    let selection =
        Selection { metric: Default::default(), chosen: point.clone(), grid: vec![point], val_scores: vec![] };
    let ckpt = CheckpointInfo { path: "c".into(), sha256: "0".into(), step: 0 };
    ProbeReport::new(dataset, ckpt, "m".into(), "cpu".into(), vec![], selection, test)
}

fn save(r: &ProbeReport, path: &Path) {
    std::fs::write(path, serde_json::to_string(r).unwrap()).unwrap();
}

fn compare(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mcsfau")).arg("compare").args(args).current_dir(cwd).output().unwrap()
}

#[test]
fn compare_reports_scipys_paired_t_test() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(&report(Dataset::Bp4d, |i| (i + 5, 3, 2)), &d.join("a.json"));
    save(&report(Dataset::Bp4d, |i| (i + 3, 4, i % 3 + 1)), &d.join("b.json"));
    let out = compare(&["a.json", "b.json", "--json"], d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (t, p) = (v["test"]["t"].as_f64().unwrap(), v["test"]["p_value"].as_f64().unwrap());
    assert!((t - 6.71925868816257).abs() < 1e-9, "t = {t}");
    assert!((p - 3.290013653738007e-05).abs() < 1e-12, "p = {p}");
    assert_eq!(v["test"]["df"], 11.0);

    let table = compare(&["a.json", "b.json"], d);
    let s = String::from_utf8_lossy(&table.stdout);
    assert!(s.contains("p = 3.290e-5 (significant at p < 0.05)") && s.contains("| A - B |"), "{s}");

    // Reports of different datasets cannot be paired.
    save(&report(Dataset::Disfa, |i| (i + 3, 4, 1)), &d.join("c.json"));
    let bad = compare(&["a.json", "c.json"], d);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nothing to pair"));

    // Nor reports tested on different frames (another manifest, or another
    // number of test frames).
    let mut other = report(Dataset::Bp4d, |i| (i + 3, 4, 1));
    other.manifest = "other.frames.json".into();
    save(&other, &d.join("d.json"));
    let bad = compare(&["a.json", "d.json"], d);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("same test set") && err.contains("other.frames.json"), "{err}");

    // A report against itself: equal F1 everywhere, no t-test to report.
    let same = compare(&["a.json", "a.json"], d);
    assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stderr));
    let s = String::from_utf8_lossy(&same.stdout);
    assert!(s.contains("the paired t-test is undefined") && !s.contains("t = NaN,"), "{s}");
}
