//! The audit on synthetic shards: a clean set passes with the right
//! figures; each planted defect is caught by its own check and named in
//! the report.

use std::collections::BTreeSet;
use std::path::Path;

use pipeline::audit::{self, AuditOptions, AuditReport, Status};
use pipeline::fixtures;
use pipeline::manifest::{self, Dataset, LoadedManifest, SubjectSplit};
use pipeline::progress::NoProgress;

fn manifest_for(shards: &Path, dataset: Dataset, out: &Path) -> LoadedManifest {
    let (m, f) =
        manifest::build(shards, &SubjectSplit::paper(dataset), "paper.csv", "paper.frames.csv", &NoProgress).unwrap();
    let json = out.join(dataset.name()).join("paper.frames.json");
    manifest::save(&json, &m, &f).unwrap();
    manifest::load(&json).unwrap()
}

fn opts() -> AuditOptions {
    AuditOptions { decode_sample: 1000, ..Default::default() }
}

fn failed(r: &AuditReport) -> BTreeSet<String> {
    r.failed().iter().map(|c| c.name.clone()).collect()
}

#[test]
fn clean_set_passes_with_the_expected_figures() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    fixtures::write_labeled_set(&shards).unwrap();
    let ms = vec![manifest_for(&shards, Dataset::Bp4d, dir.path()), manifest_for(&shards, Dataset::Disfa, dir.path())];
    let r = audit::run(&shards, &ms, &opts(), &NoProgress).unwrap();
    assert!(failed(&r).is_empty(), "{:#?}", r.failed());
    assert_eq!(r.rows, 56);
    let bp4d: Vec<_> = r.counts.per_split.iter().filter(|c| c.dataset == "bp4d").collect();
    let got: Vec<(&str, u64, u64, u64)> =
        bp4d.iter().map(|c| (c.split.as_str(), c.subjects, c.videos, c.frames)).collect();
    assert_eq!(got, vec![("test", 1, 2, 8), ("train", 2, 4, 16), ("val", 1, 2, 8)]);
    assert_eq!(r.decode.sampled, 56);
    assert_eq!(r.decode.ok, 56);
    // The DISFA past-the-end rule applies (4845 frames) and passes.
    let past = r.checks.iter().find(|c| c.name == "labels/past_clip_end/disfa").unwrap();
    assert_eq!(past.status, Status::Pass);

    // Base rates against a count done here from the rows themselves.
    let subjects = fixtures::paper_subjects(Dataset::Bp4d, [2, 1, 1]);
    let refs: Vec<&str> = subjects.iter().map(|s| s.as_str()).collect();
    let rows = fixtures::rows(Dataset::Bp4d, &refs, 2, 4, 1).unwrap();
    let train: BTreeSet<&str> =
        ms[0].frames.iter().filter(|f| f.split == "train").map(|f| f.sample_id.as_str()).collect();
    for j in [0usize, 5, 11] {
        let vals: Vec<i8> = rows
            .iter()
            .filter(|r| train.contains(r.sample_id.as_str()))
            .map(|r| r.labels.as_ref().unwrap().occurrence[j])
            .collect();
        let present = vals.iter().filter(|&&v| v == 1).count() as f64;
        let known = vals.iter().filter(|&&v| v >= 0).count() as f64;
        let unknown = vals.iter().filter(|&&v| v == -1).count() as f64;
        let b = r.base_rates.iter().find(|b| b.dataset == "bp4d" && b.split == "train").unwrap();
        assert!((b.aus[j].base_rate - present / known).abs() < 1e-12, "AU index {j}");
        assert!((b.aus[j].unknown_fraction - unknown / 16.0).abs() < 1e-12);
    }
    // Mean landmarks: the template scaled to the crop, within the +-1 px jitter.
    let lm = r.landmarks.iter().find(|l| l.dataset == "disfa").unwrap();
    let t = fixtures::template49();
    for (i, (x, y)) in t.iter().enumerate() {
        assert!((lm.mean_shape[2 * i] - *x as f64 * 64.0).abs() < 1.0);
        assert!((lm.mean_shape[2 * i + 1] - *y as f64 * 64.0).abs() < 1.0);
    }
    assert_eq!(lm.score_histogram.iter().sum::<u64>(), 24);

    let files = audit::report::write(&r, &dir.path().join("report")).unwrap();
    let names: BTreeSet<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for f in [
        "report.md",
        "report.json",
        "au_base_rates_bp4d.png",
        "mean_landmarks_disfa.png",
        "landmark_scores_bp4d.png",
        "frames_per_subject_disfa.png",
    ] {
        assert!(names.contains(f), "{f} missing from {names:?}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report/report.json")).unwrap()).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["rows"], 56);
}

#[test]
fn each_planted_defect_is_caught_by_its_check() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean");
    fixtures::write_labeled_set(&clean).unwrap();
    let m = manifest_for(&clean, Dataset::Bp4d, dir.path());

    // Defective BP4D shards: NaN landmark, label 7, corrupt JPEG, duplicate id.
    let subjects = fixtures::paper_subjects(Dataset::Bp4d, [2, 1, 1]);
    let refs: Vec<&str> = subjects.iter().map(|s| s.as_str()).collect();
    let mut rows = fixtures::rows(Dataset::Bp4d, &refs, 2, 4, 1).unwrap();
    rows[3].landmarks[0] = f32::NAN;
    rows[5].labels.as_mut().unwrap().occurrence[2] = 7;
    rows[9].image.truncate(40);
    rows.push(rows[12].clone());
    let (nan_id, seven_id, jpeg_id, dup_id) =
        (rows[3].sample_id.clone(), rows[5].sample_id.clone(), rows[9].sample_id.clone(), rows[12].sample_id.clone());
    let bad = dir.path().join("bad");
    fixtures::write(&bad.join("bp4d"), "bp4d", Dataset::Bp4d, rows).unwrap();

    // A subject in two splits: one of its frames moved to another split.
    let mut leaky = m.clone();
    let leak_subject = leaky.frames[0].subject.clone();
    let from = leaky.frames[0].split.clone();
    leaky.frames[0].split = if from == "train" { "test".into() } else { "train".into() };

    let r = audit::run(&bad, &[leaky], &opts(), &NoProgress).unwrap();
    let expected: BTreeSet<String> = [
        "integrity/duplicate_sample_ids",
        "integrity/subject_leakage/bp4d",
        "landmarks/non_finite/bp4d",
        "images/jpeg_decode",
        "labels/occurrence_range/bp4d",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(failed(&r), expected);
    let md = audit::report::markdown(&r, &[], None);
    for (check, id) in [
        ("landmarks/non_finite/bp4d", nan_id.as_str()),
        ("labels/occurrence_range/bp4d", seven_id.as_str()),
        ("images/jpeg_decode", jpeg_id.as_str()),
        ("integrity/duplicate_sample_ids", dup_id.as_str()),
        ("integrity/subject_leakage/bp4d", leak_subject.as_str()),
    ] {
        let c = r.checks.iter().find(|c| c.name == check).unwrap();
        assert_eq!(c.count, 1, "{check}: {c:?}");
        assert!(c.examples.iter().any(|e| e.contains(id)), "{check}: {:?}", c.examples);
        assert!(md.contains(&format!("**{check}**")) && md.contains(id), "{check} not named in the report");
    }
    let seven = r.checks.iter().find(|c| c.name == "labels/occurrence_range/bp4d").unwrap();
    assert!(seven.examples[0].contains(",7,"), "{:?}", seven.examples);
}

#[test]
fn rows_outside_the_manifest_and_labels_past_the_clip_end() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("s");
    fixtures::write_labeled_set(&shards).unwrap();
    let mut m = manifest_for(&shards, Dataset::Bp4d, dir.path());
    let dropped = m.frames.remove(4).sample_id;
    // Fixture frames are 1, 8, 15, 22: with 10-frame clips, 15 and 22 are past the end.
    let opts = AuditOptions { decode_sample: 0, clip_frames: [("bp4d".to_string(), 10)].into(), ..Default::default() };
    let r = audit::run(&shards, &[m], &opts, &NoProgress).unwrap();
    let expected: BTreeSet<String> =
        ["integrity/rows_outside_manifest/bp4d", "labels/past_clip_end/bp4d"].into_iter().map(String::from).collect();
    assert_eq!(failed(&r), expected);
    let outside = r.checks.iter().find(|c| c.name == "integrity/rows_outside_manifest/bp4d").unwrap();
    assert_eq!(outside.examples, vec![dropped]);
    let past = r.checks.iter().find(|c| c.name == "labels/past_clip_end/bp4d").unwrap();
    assert_eq!(past.count, 16, "{past:?}");
    assert_eq!(r.checks.iter().find(|c| c.name == "images/jpeg_decode").unwrap().status, Status::Skipped);
}
