//! `mcsfau manifest`: split files regenerate to the checked-in ones; build,
//! verify (exit 1 naming a changed row), and refusals, on synthetic shards.

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
fn splits_regenerate_the_checked_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = mcsfau(&["manifest", "splits", "--dir", "m"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    for f in ["bp4d/paper.csv", "bp4d/folds3.csv", "disfa/paper.csv", "disfa/folds3.csv"] {
        let generated = std::fs::read_to_string(dir.path().join("m").join(f)).unwrap();
        assert_eq!(generated, std::fs::read_to_string(repo.join(f)).unwrap(), "{f}");
    }
    let ok = mcsfau(&["manifest", "splits", "--dir", repo.to_str().unwrap(), "--check"], dir.path());
    assert!(ok.status.success(), "{}", text(&ok));
    std::fs::write(dir.path().join("m/disfa/paper.csv"), "subject,split\n").unwrap();
    let stale = mcsfau(&["manifest", "splits", "--dir", "m", "--check"], dir.path());
    assert_eq!(stale.status.code(), Some(1));
    assert!(text(&stale).contains("disfa/paper.csv"), "{}", text(&stale));
}

#[test]
fn build_then_verify_names_a_changed_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(mcsfau(&["manifest", "splits", "--dir", "manifests"], d).status.success());
    fixtures::write_labeled_set(&d.join("shards")).unwrap();
    let build = mcsfau(&["manifest", "build", "--dataset", "bp4d", "--shards", "shards", "--split", "folds3"], d);
    assert!(build.status.success(), "{}", text(&build));
    let json = "manifests/bp4d/folds3.frames.json";
    assert!(d.join("manifests/bp4d/folds3.frames.csv").is_file());
    let v = mcsfau(&["manifest", "verify", "--manifest", json], d);
    assert!(v.status.success(), "{}", text(&v));

    // One row's labels change in the shards.
    let subjects = fixtures::paper_subjects(Dataset::Bp4d, [2, 1, 1]);
    let refs: Vec<&str> = subjects.iter().map(|s| s.as_str()).collect();
    let mut rows = fixtures::rows(Dataset::Bp4d, &refs, 2, 4, 1).unwrap();
    rows[2].labels.as_mut().unwrap().occurrence[0] = -1;
    rows[2].labels.as_mut().unwrap().occurrence[1] = -1;
    let id = rows[2].sample_id.clone();
    std::fs::remove_dir_all(d.join("shards/bp4d")).unwrap();
    fixtures::write(&d.join("shards/bp4d"), "bp4d", Dataset::Bp4d, rows).unwrap();
    let v = mcsfau(&["manifest", "verify", "--manifest", json], d);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    let t = text(&v);
    assert!(t.contains("1 sample(s) changed") && t.contains(&id) && t.contains("split `fold"), "{t}");
}

#[test]
fn unknown_subject_and_bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(mcsfau(&["manifest", "splits"], d).status.success());
    let mut rows = fixtures::rows(Dataset::Disfa, &["SN001"], 1, 2, 5).unwrap();
    rows[1].subject = "SN014".into(); // absent from DISFA's 27
    fixtures::write(&d.join("s"), "disfa", Dataset::Disfa, rows).unwrap();
    let out = mcsfau(&["manifest", "build", "--dataset", "disfa", "--shards", "s"], d);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("unknown disfa subject `SN014`"), "{}", text(&out));
    let out = mcsfau(&["manifest", "build", "--dataset", "ck+", "--shards", "s"], d);
    assert!(text(&out).contains("unknown dataset `ck+`"), "{}", text(&out));
}

#[test]
fn build_outside_the_repository_uses_the_built_in_split() {
    // A user's working folder: shards, no manifests/ folder.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fixtures::write_labeled_set(&d.join("shards")).unwrap();
    let build = mcsfau(&["manifest", "build", "--dataset", "bp4d", "--shards", "shards"], d);
    assert!(build.status.success(), "{}", text(&build));
    assert!(text(&build).contains("using the built-in bp4d paper split"), "{}", text(&build));
    let built_in = std::fs::read_to_string(d.join("manifests/bp4d/paper.frames.csv")).unwrap();
    // The same frames and splits as with the repository's split file.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let out = d.join("with-repo.frames.json");
    let o = mcsfau(
        &[
            "manifest",
            "build",
            "--dataset",
            "bp4d",
            "--shards",
            "shards",
            "--manifests",
            repo.to_str().unwrap(),
            "--out",
        ]
        .iter()
        .copied()
        .chain([out.to_str().unwrap()])
        .collect::<Vec<_>>(),
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(d.join("with-repo.frames.csv")).unwrap(), built_in);
    let v = mcsfau(&["manifest", "verify", "--manifest", "manifests/bp4d/paper.frames.json"], d);
    assert!(v.status.success(), "{}", text(&v));
}
