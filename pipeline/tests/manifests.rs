//! Subject splits and frame manifests on synthetic shards: checked-in split
//! files equal the rule's output, the same shards give the same hashes, a
//! changed row is named by `verify`, bad paths and subjects are refused.

use std::path::Path;

use pipeline::fixtures;
use pipeline::manifest::{self, splits, Dataset, Protocol, SubjectSplit};
use pipeline::progress::NoProgress;
use pipeline::PipelineError;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn checked_in_split_files_equal_the_rule() {
    let stale = splits::stale_split_files(&repo().join("manifests"));
    assert!(stale.is_empty(), "regenerate with `mcsfau manifest splits`: {stale:?}");
    // And they load back through the validating parser.
    for d in Dataset::ALL {
        let s = SubjectSplit::load(&repo().join("manifests"), d, Protocol::Paper).unwrap();
        assert_eq!(s, SubjectSplit::paper(d));
    }
}

fn build(shards: &Path, dataset: Dataset) -> (manifest::SplitManifest, Vec<manifest::FrameRow>) {
    let split = SubjectSplit::paper(dataset);
    manifest::build(shards, &split, "paper.csv", "paper.frames.csv", &NoProgress).unwrap()
}

#[test]
fn same_shards_same_hash_and_a_changed_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::write_labeled_set(dir.path()).unwrap();
    let (m1, f1) = build(dir.path(), Dataset::Bp4d);
    let (m2, f2) = build(dir.path(), Dataset::Bp4d);
    assert_eq!(m1, m2);
    assert_eq!(f1, f2);
    assert_eq!(m1.total_frames, 32);
    assert_eq!(m1.splits.iter().map(|s| s.frames).collect::<Vec<_>>(), vec![16, 8, 8]);
    // The id hash is sha256 over the sorted ids, newline-terminated.
    let train_ids: Vec<&str> = f1.iter().filter(|f| f.split == "train").map(|f| f.sample_id.as_str()).collect();
    assert!(train_ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(m1.splits[0].ids_sha256, manifest::format::hash_lines(train_ids.iter().copied()));

    let json = dir.path().join("out/paper.json");
    manifest::save(&json, &m1, &f1).unwrap();
    let loaded = manifest::load(&json).unwrap();
    assert_eq!(loaded.frames, f1);
    assert!(manifest::verify(&loaded, dir.path(), &NoProgress).unwrap().is_empty());

    // Rewrite the BP4D shards with one label flipped to unknown and one row dropped.
    let subjects = fixtures::paper_subjects(Dataset::Bp4d, [2, 1, 1]);
    let refs: Vec<&str> = subjects.iter().map(|s| s.as_str()).collect();
    let mut rows = fixtures::rows(Dataset::Bp4d, &refs, 2, 4, 1).unwrap();
    let changed = rows[0].sample_id.clone();
    let occ = &mut rows[0].labels.as_mut().unwrap().occurrence;
    occ.iter_mut().for_each(|v| *v = -1);
    let removed = rows.pop().unwrap().sample_id;
    std::fs::remove_dir_all(dir.path().join("bp4d")).unwrap();
    fixtures::write(&dir.path().join("bp4d"), "bp4d", Dataset::Bp4d, rows).unwrap();
    let diff = manifest::verify(&loaded, dir.path(), &NoProgress).unwrap();
    let text = diff.to_string();
    assert_eq!(diff.splits.len(), 2, "{text}");
    assert!(text.contains("split `train`: 1 sample(s) changed") && text.contains(&changed), "{text}");
    assert!(text.contains("split `test`: 1 sample(s) removed") && text.contains(&removed), "{text}");
    let (m3, _) = build(dir.path(), Dataset::Bp4d);
    assert_ne!(m3.splits[2].ids_sha256, m1.splits[2].ids_sha256);
    assert_eq!(m3.splits[1].ids_sha256, m1.splits[1].ids_sha256);
}

#[test]
fn tampered_frames_file_breaks_the_recorded_hash() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::write_labeled_set(dir.path()).unwrap();
    let (m, f) = build(dir.path(), Dataset::Disfa);
    let json = dir.path().join("m/disfa.json");
    manifest::save(&json, &m, &f).unwrap();
    let csv = dir.path().join("m/paper.frames.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let line = text.lines().nth(1).unwrap();
    std::fs::write(&csv, text.replacen(line, &line.replace(",11111111", ",01111111"), 1)).unwrap();
    let diff = manifest::verify(&manifest::load(&json).unwrap(), dir.path(), &NoProgress).unwrap();
    let out = diff.to_string();
    assert!(out.contains("does not match the hashes"), "{out}");
    assert!(out.contains("1 sample(s) changed"), "{out}");
}

#[test]
fn escaping_paths_and_unknown_subjects_are_refused() {
    for (bad_id, why) in [("bp4d/../../etc/passwd#000001", "`..` component"), ("/bp4d/F001/T1#000001", "absolute")] {
        let dir = tempfile::tempdir().unwrap();
        let subject = fixtures::paper_subjects(Dataset::Bp4d, [1, 0, 0]);
        let mut rows = fixtures::rows(Dataset::Bp4d, &[subject[0].as_str()], 1, 2, 3).unwrap();
        rows[1].sample_id = bad_id.into();
        fixtures::write(dir.path(), "bp4d", Dataset::Bp4d, rows).unwrap();
        let err = manifest::build(dir.path(), &SubjectSplit::paper(Dataset::Bp4d), "paper.csv", "f.csv", &NoProgress)
            .unwrap_err();
        assert!(matches!(err, PipelineError::PathEscape { row: 1, .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(bad_id) && msg.contains(why) && msg.contains("bp4d-00000.parquet"), "{msg}");
    }

    let dir = tempfile::tempdir().unwrap();
    let mut rows = fixtures::rows(Dataset::Bp4d, &["F001"], 1, 2, 3).unwrap();
    rows[0].subject = "F099".into();
    fixtures::write(dir.path(), "bp4d", Dataset::Bp4d, rows).unwrap();
    let err = manifest::build(
        dir.path(),
        &SubjectSplit::paper(Dataset::Bp4d),
        "manifests/bp4d/paper.csv",
        "f.csv",
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown bp4d subject `F099`") && err.contains("manifests/bp4d/paper.csv"), "{err}");

    // A manifest whose frames file points outside its folder.
    let fx = tempfile::tempdir().unwrap();
    fixtures::write_labeled_set(fx.path()).unwrap();
    let (m, f) = build(fx.path(), Dataset::Bp4d);
    let json = dir.path().join("m/x.json");
    manifest::save(&json, &m, &f).unwrap();
    let text = std::fs::read_to_string(&json).unwrap().replace("\"paper.frames.csv\"", "\"../../etc/passwd\"");
    std::fs::write(&json, text).unwrap();
    let err = manifest::load(&json).unwrap_err().to_string();
    assert!(err.contains("escapes the dataset root") && err.contains("../../etc/passwd"), "{err}");
}
