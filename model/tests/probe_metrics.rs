//! Probe metrics against independent implementations: per-AU F1 against
//! scikit-learn (unknown labels left out, AUs without positives included)
//! and the paired t-test against `scipy.stats.ttest_rel`, with the arrays
//! `model/tests/data/probe/gen_reference.py` wrote.

use model::probe::metrics::{paired_t_test, per_au_ap, per_au_scores};

fn reference() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/probe/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn per_au_f1_matches_scikit_learn_including_aus_without_positives() {
    let r = reference();
    let aus = r["aus"].as_u64().unwrap() as usize;
    let labels: Vec<i8> = r["labels"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i8).collect();
    let probs: Vec<f32> = floats(&r["probs"]).into_iter().map(|x| x as f32).collect();
    let want = floats(&r["f1"]);
    let got = per_au_scores(&probs, &labels, aus, 0.5);
    assert_eq!(got.len(), aus);
    for (a, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g.f1 - w).abs() < 1e-12, "AU column {a}: {} vs scikit-learn {w}", g.f1);
    }
    // Columns 4 and 5 have no positive label: F1 0 (zero_division=0), and
    // column 4 has false positives while column 5 predicts nothing.
    assert_eq!((got[4].positives(), got[5].positives()), (0, 0));
    assert!(got[4].fp > 0 && got[5].fp == 0);
    // Unknown labels are not counted.
    let known = labels.iter().step_by(aus).filter(|&&y| y >= 0).count() as u64;
    assert_eq!(got[0].known(), known);
}

#[test]
fn average_precision_matches_scikit_learn_with_ties_and_unknowns() {
    let r = reference();
    let aus = r["aus"].as_u64().unwrap() as usize;
    let labels: Vec<i8> = r["labels"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i8).collect();
    let probs: Vec<f32> = floats(&r["probs"]).into_iter().map(|x| x as f32).collect();
    let got = per_au_ap(&probs, &labels, aus);
    for (a, (g, w)) in got.iter().zip(&floats(&r["ap"])).enumerate() {
        // The probabilities are f32 on our side, f64 in scikit-learn: the
        // ranking (and so AP) is the same unless two differ below f32's
        // resolution, which the fixture's 300 rows do not.
        assert!((g - w).abs() < 1e-12, "AU column {a}: AP {g} vs scikit-learn {w}");
    }
}

#[test]
fn paired_t_test_matches_scipy_ttest_rel() {
    for case in reference()["ttests"].as_array().unwrap() {
        let (a, b) = (floats(&case["a"]), floats(&case["b"]));
        let r = paired_t_test(&a, &b).unwrap();
        let (t, p) = (case["t"].as_f64().unwrap(), case["p"].as_f64().unwrap());
        assert!((r.t - t).abs() < 1e-9 * t.abs().max(1.0), "t {} vs scipy {t}", r.t);
        assert!((r.p_value - p).abs() < 1e-9, "p {} vs scipy {p} (n = {})", r.p_value, a.len());
        assert_eq!(r.df, (a.len() - 1) as f64);
    }
}
