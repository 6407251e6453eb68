//! `mcsfau audit` on synthetic shards: a clean set exits 0 with every report
//! file; a planted defect exits 1 and is named in the summary and report.

use std::path::Path;
use std::process::{Command, Output};

use pipeline::fixtures;
use pipeline::manifest::Dataset;

fn mcsfau(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcsfau")).args(args).current_dir(cwd).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn clean_set_passes_and_a_label_seven_fails() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(mcsfau(&["manifest", "splits"], d).status.success());
    fixtures::write_labeled_set(&d.join("shards")).unwrap();
    for ds in ["bp4d", "disfa"] {
        let b = mcsfau(&["manifest", "build", "--dataset", ds, "--shards", "shards"], d);
        assert!(b.status.success(), "{}", text(&b));
    }
    let ms = ["--manifest", "manifests/bp4d/paper.frames.json", "--manifest", "manifests/disfa/paper.frames.json"];
    let mut args = vec!["audit", "--shards", "shards", "--report", "report"];
    args.extend(ms);
    let out = mcsfau(&args, d);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("0 failed"), "{}", text(&out));
    for f in
        ["report.md", "report.json", "counts_per_subject.csv", "au_base_rates_disfa.png", "mean_landmarks_bp4d.png"]
    {
        assert!(d.join("report").join(f).is_file(), "{f}");
    }

    // The same set with one DISFA intensity of 7.
    let subjects = fixtures::paper_subjects(Dataset::Disfa, [2, 1, 1]);
    let refs: Vec<&str> = subjects.iter().map(|s| s.as_str()).collect();
    let mut rows = fixtures::rows(Dataset::Disfa, &refs, 1, 6, 2).unwrap();
    rows[4].labels.as_mut().unwrap().intensity[3] = 7;
    rows[4].labels.as_mut().unwrap().occurrence[3] = 1;
    let id = rows[4].sample_id.clone();
    std::fs::remove_dir_all(d.join("shards/disfa")).unwrap();
    fixtures::write(&d.join("shards/disfa"), "disfa", Dataset::Disfa, rows).unwrap();
    let mut args = vec!["audit", "--shards", "shards", "--report", "bad", "--decode-sample", "8"];
    args.extend(ms);
    let out = mcsfau(&args, d);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("FAIL labels/intensity_range/disfa"), "{}", text(&out));
    let md = std::fs::read_to_string(d.join("bad/report.md")).unwrap();
    assert!(md.contains("**labels/intensity_range/disfa**") && md.contains(&id), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("bad/report.json")).unwrap()).unwrap();
    assert_eq!(json["passed"], false);
}
