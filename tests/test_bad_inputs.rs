//! The bad-input corpus (`tests/support/corpus.rs`) through every command
//! that reads it: broken shard sets, shards rewritten by pyarrow and DuckDB,
//! label files, videos and numeric flags. Faults injected into the
//! commands' writes are in `tests/test_faults.rs`.
//!
//! Every row asserts what a user relies on: exit code 1 or 2 (never a panic,
//! an abort or 0 with a silent result), a message naming the file and the
//! problem, and nothing already written lost or replaced: outputs of an
//! earlier good run stay byte-identical, and no zero-byte, partial or
//! temporary file is left under an output name.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::corpus::{self, LabelCase, ShardCase};
use support::faults::*;
use support::{files_under as snapshot, read_errors};

#[test]
fn every_command_refuses_every_broken_shard_set() {
    let e = env();
    let cases = corpus::shard_cases(&e.root.join("good"), &e.root.join("corpus"));
    assert_eq!(cases.len(), 15);
    let mut rows = 0;
    for case in &cases {
        let out = case.shards.parent().unwrap().join(format!("{}-out", case.name));
        plant_previous_outputs(&out);
        for (cmd, args, out_dir) in shard_commands(case, e) {
            let what = format!("{cmd} on {}", case.name);
            let before = snapshot(&out);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = mcsfau(&args, &e.root);
            rows += 1;
            if case.not_for.contains(&cmd) {
                assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o));
                continue;
            }
            if case.warn_only.contains(&cmd) {
                let t = text(&o);
                assert_eq!(o.status.code(), Some(0), "{what}: {t}");
                let name = case.file.file_name().unwrap().to_string_lossy().into_owned();
                assert!(t.contains("WARN") && t.contains(&name) && t.contains(case.needle), "{what}: no warning\n{t}");
                continue;
            }
            // audit reports row-level defects (duplicate or escaping ids,
            // non-finite landmarks) as failed checks: exit 1, a new report is
            // its result, and the check's examples name the rows
            let audit_check = cmd == "audit"
                && matches!(
                    case.name,
                    "duplicate_sample_ids" | "escaping_sample_id" | "absolute_sample_id" | "nan_landmarks"
                );
            if cmd == "audit" {
                let want = if audit_check { 1 } else { 2 };
                assert_eq!(o.status.code(), Some(want), "{what}: {}", text(&o));
            }
            let folder = case.shards.parent().unwrap();
            if audit_check {
                assert_refused_in(&o, &what, None, "FAIL ", Some(folder));
            } else {
                assert_refused_in(&o, &what, Some(case.file.as_path()), case.needle, Some(folder));
            }
            assert_clean(&out, &what);
            if audit_check {
                let report: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
                assert!(report["checks"].as_array().unwrap().iter().any(|c| c["status"] == "fail"), "{what}");
                continue;
            }
            assert_kept(&before, &out, &what);
        }
    }
    assert_eq!(rows, 15 * 5);
}

#[test]
fn shards_rewritten_by_pyarrow_and_duckdb_read_through_every_command() {
    let e = env();
    let py = std::env::var("MCSFAU_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").into());
    for (tool, codecs) in
        [("pyarrow", vec!["snappy", "zstd", "lz4", "gzip", "none"]), ("duckdb", vec!["snappy", "zstd"])]
    {
        for codec in codecs {
            let dir = e.root.join(format!("rewritten-{tool}-{codec}"));
            let o = Command::new(&py)
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/reference/rewrite_shards.py"))
                .args(["--tool", tool, "--compression", codec, "--src"])
                .arg(e.root.join("good"))
                .arg("--dst")
                .arg(&dir)
                .output()
                .unwrap();
            assert!(o.status.success(), "{tool} {codec}: {}", text(&o));
            let what = format!("{tool}/{codec}");
            let case = ShardCase {
                name: "rewritten",
                shards: dir.clone(),
                file: dir.clone(),
                needle: "",
                not_for: &[],
                warn_only: &[],
            };
            for (cmd, args, _) in shard_commands(&case, e) {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let o = mcsfau(&args, &e.root);
                assert_eq!(o.status.code(), Some(0), "{cmd} on {what}: {}", text(&o));
            }
            // the manifest built from the rewritten shards equals the original's
            let built = dir.parent().unwrap().join("rewritten-out/manifest/m.frames.csv");
            assert_eq!(
                std::fs::read_to_string(&built).unwrap(),
                std::fs::read_to_string(e.root.join("manifests/bp4d/paper.frames.csv")).unwrap(),
                "{what}: the same frames"
            );
            std::fs::remove_dir_all(dir.parent().unwrap().join("rewritten-out")).unwrap();
        }
    }
}

fn synth_tree(root: &Path, layout: &str) {
    let o = Command::new(env!("CARGO_BIN_EXE_mcsfau"))
        .args(["synth", "--layout", layout, "--subjects", "1", "--seconds", "0.4", "--out"])
        .arg(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn find(root: &Path, part: &str, suffix: &str) -> String {
    snapshot(root)
        .into_keys()
        .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"))
        .filter(|p| p.contains(part) && p.ends_with(suffix))
        .min()
        .unwrap_or_else(|| panic!("no *{suffix} under {}", root.display()))
}

fn preprocess(dataset: &str, root: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcsfau"))
        .args(["preprocess", "--quiet", "--landmarks", "synthetic", "--dataset", dataset, "--root"])
        .arg(root)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn every_label_file_deviation_is_an_error_row_or_a_warning_row() {
    let dir = tempfile::tempdir().unwrap();
    let (bp4d, disfa) = (dir.path().join("bp4d"), dir.path().join("disfa"));
    synth_tree(&bp4d, "bp4d");
    synth_tree(&disfa, "disfa");
    let bp4d_file = find(&bp4d, "AU_OCC/", ".csv");
    let disfa_file = find(&disfa, "ActionUnit_Labels/", "_au4.txt");
    let clean = |ds: &str, root: &Path| {
        let out = dir.path().join(format!("clean-{ds}"));
        let o = preprocess(ds, root, &out);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        support::read_rows(&out)
    };
    let clean_rows = [clean("bp4d", &bp4d), clean("disfa", &disfa)];
    let cases = [
        LabelCase {
            name: "bp4d_header_only",
            dataset: "bp4d",
            file: bp4d_file.clone(),
            row: Some("no coded frames"),
            kept: false,
        },
        LabelCase {
            name: "bp4d_bad_cell",
            dataset: "bp4d",
            file: bp4d_file.clone(),
            row: Some("warning: 1 cell(s) stored as unknown (-1): line 3: AU 1: `7`, expected 0, 1 or 9"),
            kept: true,
        },
        LabelCase {
            name: "bp4d_missing_file",
            dataset: "bp4d",
            file: bp4d_file.clone(),
            row: Some("No such file"),
            kept: false,
        },
        LabelCase { name: "bp4d_bom_crlf_spaces", dataset: "bp4d", file: bp4d_file.clone(), row: None, kept: true },
        LabelCase {
            name: "disfa_missing_line",
            dataset: "disfa",
            file: disfa_file.clone(),
            row: Some("warning"),
            kept: true,
        },
        LabelCase {
            name: "disfa_bad_intensity",
            dataset: "disfa",
            file: disfa_file.clone(),
            row: Some("warning: 1 cell(s) stored as unknown (-1): line 2: intensity `9`, expected 0-5"),
            kept: true,
        },
        LabelCase { name: "disfa_bom_crlf_spaces", dataset: "disfa", file: disfa_file.clone(), row: None, kept: true },
    ];
    for case in &cases {
        let src = if case.dataset == "bp4d" { &bp4d } else { &disfa };
        let root = dir.path().join(case.name);
        copy_tree(src, &root);
        corpus::break_label_file(&root, case);
        let out = dir.path().join(format!("{}-out", case.name));
        let o = preprocess(case.dataset, &root, &out);
        let errors = read_errors(&out.join("errors-p0000of0001.csv"));
        let label_file = Path::new(&case.file).file_name().unwrap().to_string_lossy().into_owned();
        match case.row {
            None => {
                assert_eq!(o.status.code(), Some(0), "{}: {}", case.name, text(&o));
                assert!(errors.is_empty(), "{}: {errors:?}", case.name);
                let k = usize::from(case.dataset == "disfa");
                assert_eq!(support::read_rows(&out), clean_rows[k], "{}: same rows as the clean file", case.name);
            }
            Some(needle) => {
                assert_eq!(o.status.code(), Some(1), "{}: {}", case.name, text(&o));
                assert!(!text(&o).contains("panicked"), "{}", text(&o));
                let row =
                    errors.iter().find(|r| r.2 == "labels").unwrap_or_else(|| panic!("{}: {errors:?}", case.name));
                let line = format!("{} {}", row.0, row.3);
                assert!(line.contains(&label_file) && line.contains(needle), "{}: {row:?}", case.name);
            }
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for (p, bytes) in snapshot(from) {
        let dst = to.join(p.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::write(dst, bytes).unwrap();
    }
}

#[test]
fn truncated_and_corrupt_videos_get_an_error_row_and_keep_what_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("raw");
    let good = root.join("dev/mp4/id00001/aaaaaaaaaaa/00001.mp4");
    std::fs::create_dir_all(good.parent().unwrap()).unwrap();
    support::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=25:duration=4",
        "-c:v",
        "libx264",
        "-g",
        "10",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        good.to_str().unwrap(),
    ]);
    support::sidecar(&good.with_extension("ldm68.csv"), 0..100);
    let cut = root.join("dev/mp4/id00002/bbbbbbbbbbb/00001.mp4");
    std::fs::create_dir_all(cut.parent().unwrap()).unwrap();
    corpus::truncated_video(&good, &cut, 0.5);
    support::sidecar(&cut.with_extension("ldm68.csv"), 0..100);
    let empty = root.join("dev/mp4/id00003/ccccccccccc/00001.mp4");
    std::fs::create_dir_all(empty.parent().unwrap()).unwrap();
    std::fs::write(&empty, b"").unwrap();
    support::sidecar(&empty.with_extension("ldm68.csv"), 0..100);

    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_mcsfau"))
        .args(["preprocess", "--quiet", "--landmarks", "synthetic", "--fps", "25", "--dataset", "voxceleb2", "--root"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let errors = read_errors(&out.join("errors-p0000of0001.csv"));
    let cut_row = errors.iter().find(|r| r.0.contains("id00002")).unwrap_or_else(|| panic!("{errors:?}"));
    // the decoder stops at the cut (a partial packet) or the frame count
    // falls short of the header's: either way the row says how far it got
    assert!(
        cut_row.3.contains("ends early") && cut_row.3.contains("of the 100 frames")
            || cut_row.3.contains("frames before were kept"),
        "{cut_row:?}"
    );
    assert!(errors.iter().any(|r| r.0.contains("id00003")), "the empty file has a row: {errors:?}");
    let rows = support::read_rows(&out);
    let kept = |id: &str| rows.keys().filter(|k| k.contains(id)).count();
    assert_eq!(kept("id00001"), 100, "the good clip is whole");
    let partial = kept("id00002");
    assert!(partial > 10 && partial < 90, "the frames before the cut are kept: {partial}");

    // detect on the cut video: the frames before the cut are scored and
    // written, the run says where it stopped and exits 1
    let e = env();
    let probe_out = dir.path().join("probe");
    let o = mcsfau(&probe_args(e, &probe_out), &e.root);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let csv = dir.path().join("cut.au.csv");
    let ckpt = e.root.join("ckpt.safetensors");
    let args = [
        "detect",
        cut.to_str().unwrap(),
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--probe",
        probe_out.to_str().unwrap(),
        "--crop-size",
        "64",
        "--quiet",
        "--device",
        "cpu",
        "--out",
        csv.to_str().unwrap(),
    ];
    let o = mcsfau(&args, dir.path());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("00001.mp4") && (t.contains("ends early") || t.contains("frames before were kept")), "{t}");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    assert!(rows > 10 && rows < 90, "the frames before the cut are in the table: {rows}");
    let o = mcsfau(
        &["detect", empty.to_str().unwrap(), "--checkpoint", args[3], "--probe", args[5], "--out", "e.csv"],
        dir.path(),
    );
    assert_refused(&o, "detect on an empty file", Some(&empty), "");
    assert!(!dir.path().join("e.csv").exists());
}

#[test]
fn every_numeric_flag_is_range_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let probe = |flag: &'static str, value: &'static str| -> (Vec<String>, &'static str) {
        let base = ["probe", "--checkpoint", "x", "--shards", &d, "--manifest", "m", "--dataset", "bp4d", flag, value];
        (base.iter().map(|s| s.to_string()).collect(), flag)
    };
    let mut owned: Vec<(Vec<String>, &str)> = vec![
        probe("--lrs", "nan"),
        probe("--lrs", "0.1,-1"),
        probe("--weight-decays", "inf"),
        probe("--max-epochs", "0"),
        probe("--batch-size", "0"),
    ];
    let rows: &[(&[&str], &str)] = &[
        (&["preprocess", "--dataset", "voxceleb2", "--root", &d, "--out", &d, "--fps", "nan"], "--fps"),
        (&["preprocess", "--dataset", "voxceleb2", "--root", &d, "--out", &d, "--fps=-1"], "--fps"),
        (&["preprocess", "--dataset", "voxceleb2", "--root", &d, "--out", &d, "--crop-size", "100000"], "--crop-size"),
        (&["preprocess", "--dataset", "voxceleb2", "--root", &d, "--out", &d, "--batch-size", "0"], "--batch-size"),
        (&["preprocess", "--dataset", "voxceleb2", "--root", &d, "--out", &d, "--shard-count", "0"], "--shard-count"),
        (&["pretrain", "--shards", &d, "--out", &d, "--steps", "0"], "--steps"),
        (&["pretrain", "--shards", &d, "--out", &d, "--threads=-3"], "--threads"),
        (&["supervise", "--shards", &d, "--manifest", "m", "--dataset", "bp4d", "--out", &d, "--lr", "nan"], "--lr"),
        (
            &["supervise", "--shards", &d, "--manifest", "m", "--dataset", "bp4d", "--out", &d, "--epochs", "0"],
            "--epochs",
        ),
        (&["audit", "--shards", &d, "--report", &d, "--min-interocular", "1.5"], "--min-interocular"),
        (&["detect", "v.mp4", "--checkpoint", "c", "--probe", "p", "--batch", "0"], "--batch"),
        (&["detect", "v.mp4", "--checkpoint", "c", "--probe", "p", "--crop-size", "0"], "--crop-size"),
        (&["masks", "--checkpoint", "c", "--shards", &d, "--out", "f.png", "--count", "0"], "--count"),
        (&["synth", "--layout", "bp4d", "--out", &d, "--seconds", "inf"], "--seconds"),
        (&["synth", "--layout", "bp4d", "--out", &d, "--frame-scale=-1"], "--frame-scale"),
        (&["synth", "--layout", "bp4d", "--out", &d, "--subjects", "0"], "--subjects"),
    ];
    owned.extend(rows.iter().map(|(a, f)| (a.iter().map(|s| s.to_string()).collect(), *f)));
    assert_eq!(owned.len(), 21);
    for (args, flag) in &owned {
        let t0 = std::time::Instant::now();
        let o = mcsfau(args, dir.path());
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(flag) && t.contains("invalid value"), "{args:?}: the message names {flag}\n{t}");
        assert!(!t.contains("panicked") && !t.contains("libtorch"), "{args:?}: {t}");
        assert!(t0.elapsed().as_secs() < 20, "{args:?}: refused before any work");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no command wrote anything");
}
