//! The bad-input corpus (`tests/support/corpus.rs`) through every command
//! that reads it, and faults injected into the commands' writes.
//!
//! Every row asserts what a user relies on: exit code 1 or 2 (never a panic,
//! an abort or 0 with a silent result), a message naming the file and the
//! problem, and nothing already written lost or replaced: outputs of an
//! earlier good run stay byte-identical, and no zero-byte, partial or
//! temporary file is left under an output name.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use model::config::ModelConfig;
use model::mcsfau::McSfau;
use pipeline::fixtures;
use pipeline::manifest::Dataset;
use support::corpus::{self, LabelCase, ShardCase};
use support::{files_under as snapshot, read_errors};

fn mcsfau<S: AsRef<std::ffi::OsStr>>(args: &[S], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcsfau")).args(args).current_dir(cwd).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The good inputs every case is made from, built once per test binary.
struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let o = mcsfau(&["manifest", "splits"], &root);
        assert!(o.status.success(), "{}", text(&o));
        let subjects = fixtures::paper_subjects(Dataset::Bp4d, [2, 1, 1]);
        let refs: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let rows = fixtures::rows(Dataset::Bp4d, &refs, 2, 4, 1).unwrap();
        fixtures::write(&root.join("good"), "bp4d", Dataset::Bp4d, rows).unwrap();
        let o = mcsfau(&["manifest", "build", "--dataset", "bp4d", "--shards", "good"], &root);
        assert!(o.status.success(), "{}", text(&o));
        tch::manual_seed(0);
        let net = McSfau::new(&ModelConfig::tiny(), tch::Device::Cpu).unwrap();
        model::checkpoint::save(&net, &root.join("ckpt.safetensors"), 1).unwrap();
        Env { _dir: dir, root }
    })
}

/// No zero-byte file and no temporary file under `dir`.
fn assert_clean(dir: &Path, what: &str) {
    for (p, bytes) in snapshot(dir) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "{what}: temporary file left: {}", p.display());
        assert!(!bytes.is_empty() || name.ends_with(".csv"), "{what}: zero-byte file {}", p.display());
    }
}

/// Every file of `before` is still under `dir` with the same bytes (new,
/// complete files may have appeared: [`assert_clean`] checks those).
fn assert_kept(before: &BTreeMap<PathBuf, Vec<u8>>, dir: &Path, what: &str) {
    let now = snapshot(dir);
    for (p, b) in before {
        assert!(now.get(p) == Some(b), "{what}: an earlier output was changed or removed: {}", p.display());
    }
}

/// The assertions every corpus row shares.
fn assert_refused(o: &Output, what: &str, file: Option<&Path>, needle: &str) {
    assert_refused_in(o, what, file, needle, None)
}

/// [`assert_refused`], the needle looked for in the message with `folder`
/// (whose name may contain the needle) left out.
fn assert_refused_in(o: &Output, what: &str, file: Option<&Path>, needle: &str, folder: Option<&Path>) {
    let t = text(o);
    let code = o.status.code();
    assert!(matches!(code, Some(1) | Some(2)), "{what}: exit {code:?} (want 1 or 2)\n{t}");
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace", "RangeOutOfBounds", "error_trace", "C++ exception"] {
        assert!(!t.contains(bad), "{what}: `{bad}` in the output\n{t}");
    }
    if let Some(f) = file {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(t.contains(name.as_ref()), "{what}: the message does not name {name}\n{t}");
    }
    let message = match folder {
        Some(f) => t.replace(&f.display().to_string(), "<folder>"),
        None => t.clone(),
    };
    assert!(
        message.to_lowercase().contains(&needle.to_lowercase()),
        "{what}: the message does not say `{needle}`\n{t}"
    );
    // an error message is one readable line per error, not a dump
    let longest = t.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1200, "{what}: a {longest}-character line\n{t}");
}

/// The commands that read shards, as argument lists for a case folder.
fn shard_commands(case: &ShardCase, e: &Env) -> Vec<(&'static str, Vec<String>, PathBuf)> {
    let s = case.shards.display().to_string();
    let out = case.shards.parent().unwrap().join(format!("{}-out", case.name));
    let o = |sub: &str| out.join(sub).display().to_string();
    let ckpt = e.root.join("ckpt.safetensors").display().to_string();
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        ("audit", v(&["audit", "--shards", &s, "--report", &o("audit")]), out.join("audit")),
        (
            "manifest build",
            v(&["manifest", "build", "--dataset", "bp4d", "--shards", &s, "--out", &o("manifest/m.frames.json")]),
            out.join("manifest"),
        ),
        (
            "pretrain",
            v(&["pretrain", "--shards", &s, "--config", "tiny", "--out", &o("run"), "--steps", "1", "--threads", "1"]),
            out.join("run"),
        ),
        ("probe", probe_args_on(e, &case.shards, &out.join("probe")), out.join("probe")),
        (
            "masks",
            v(&["masks", "--checkpoint", &ckpt, "--shards", &s, "--out", &o("masks/fig5.png")]),
            out.join("masks"),
        ),
    ]
}

/// An earlier run's outputs the failed command must leave alone.
fn plant_previous_outputs(out: &Path) {
    for (sub, name) in [
        ("audit", "report.json"),
        ("manifest", "m.frames.json"),
        ("probe", "probe.json"),
        ("masks", "fig5.png"),
        ("audit", "au_base_rates_bp4d.png"),
    ] {
        std::fs::create_dir_all(out.join(sub)).unwrap();
        std::fs::write(out.join(sub).join(name), format!("previous {name}\n")).unwrap();
    }
}

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

fn probe_args(e: &Env, out: &Path) -> Vec<String> {
    probe_args_on(e, &e.root.join("good"), out)
}

/// A short `probe` of the test checkpoint on `shards`, into `out`.
fn probe_args_on(e: &Env, shards: &Path, out: &Path) -> Vec<String> {
    [
        "probe",
        "--checkpoint",
        &e.root.join("ckpt.safetensors").display().to_string(),
        "--shards",
        &shards.display().to_string(),
        "--manifest",
        &e.root.join("manifests/bp4d/paper.frames.json").display().to_string(),
        "--dataset",
        "bp4d",
        "--out",
        &out.display().to_string(),
        "--no-cache",
        "--max-epochs",
        "2",
        "--lrs",
        "0.01",
        "--bootstrap",
        "0",
        "--device=cpu",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs `args` in a shell with writes capped at `kib` KiB (RLIMIT_FSIZE,
/// SIGXFSZ ignored so the write fails with EFBIG like a full disk).
fn with_file_size_limit(args: &[&str], cwd: &Path, kib: u64) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!("trap '' XFSZ; ulimit -f {kib}; exec '{}' {}", env!("CARGO_BIN_EXE_mcsfau"), quoted.join(" "));
    Command::new("bash").args(["-c", &script]).current_dir(cwd).output().unwrap()
}

/// A report folder's files without timings (which differ run to run).
fn comparable(dir: &Path) -> BTreeMap<String, String> {
    snapshot(dir)
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "json"))
        .map(|(p, b)| {
            let mut v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.remove("timings");
                o.remove("seconds");
            }
            (p.file_name().unwrap().to_string_lossy().into_owned(), v.to_string())
        })
        .collect()
}

#[test]
fn a_write_that_fails_partway_leaves_the_previous_outputs_and_a_rerun_matches() {
    let e = env();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let audit = |r: &Path| {
        vec![
            "audit".to_string(),
            "--shards".into(),
            e.root.join("good").display().to_string(),
            "--report".into(),
            r.display().to_string(),
        ]
    };
    let args = audit(&report);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = mcsfau(&args, &e.root);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = snapshot(&report);
    let expected = comparable(&report);
    // a 24 KiB cap: the reports fit, the PNG plots do not
    let o = with_file_size_limit(&args, &e.root, 24);
    assert_refused(&o, "audit with a full disk", None, "File too large");
    assert_clean(&report, "audit with a full disk");
    assert_eq!(snapshot(&report).keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    for (p, b) in &before {
        let now = std::fs::read(p).unwrap();
        // each file is either the previous one or a complete new one
        if &now != b {
            assert!(
                p.extension().is_some_and(|x| x == "json" || x == "md"),
                "{} replaced by a partial file",
                p.display()
            );
        }
    }
    let again = mcsfau(&args, &e.root);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(comparable(&report), expected, "the rerun matches the first run");

    // probe: the head and the report under a cap that the feature cache
    // and the report fit but not every file
    let probe_out = dir.path().join("probe");
    let clean = dir.path().join("probe-clean");
    let o = mcsfau(&probe_args(e, &clean), &e.root);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pa = probe_args(e, &probe_out);
    let pa: Vec<&str> = pa.iter().map(String::as_str).collect();
    std::fs::create_dir_all(&probe_out).unwrap();
    for f in ["probe.json", "probe_head.safetensors", "probe.csv"] {
        std::fs::write(probe_out.join(f), format!("previous {f}\n")).unwrap();
    }
    let before = snapshot(&probe_out);
    let o = with_file_size_limit(&pa, &e.root, 1);
    assert_refused(&o, "probe with a full disk", None, "File too large");
    assert_clean(&probe_out, "probe with a full disk");
    assert_kept(&before, &probe_out, "probe with a full disk");
    let ok = mcsfau(&pa, &e.root);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert_eq!(comparable(&probe_out), comparable(&clean), "the rerun matches an uninterrupted run");
}

/// A command's arguments for an output folder.
type ArgsFor<'a> = dyn Fn(&Path) -> Vec<String> + 'a;

#[test]
fn a_kill_at_any_moment_leaves_complete_outputs_and_a_rerun_matches() {
    let e = env();
    let dir = tempfile::tempdir().unwrap();
    let audit = |out: &Path| {
        ["audit", "--shards", &e.root.join("good").display().to_string(), "--report", &out.display().to_string()]
            .map(String::from)
            .to_vec()
    };
    let commands: [(&str, &ArgsFor); 2] = [("audit", &audit), ("probe", &|out| probe_args(e, out))];
    for (name, make) in commands {
        let clean = dir.path().join(format!("{name}-clean"));
        let t0 = std::time::Instant::now();
        let o = mcsfau(&make(&clean), &e.root);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        let full = t0.elapsed();
        let expected = comparable(&clean);
        let out = dir.path().join(name);
        // kill -9 at evenly spread moments of an uninterrupted run's duration
        for k in 1..=4u32 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_mcsfau"))
                .args(make(&out))
                .current_dir(&e.root)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(full * k / 5);
            let _ = child.kill();
            let _ = child.wait();
            for (p, b) in snapshot(&out) {
                let file = p.file_name().unwrap().to_string_lossy().into_owned();
                if file.starts_with('.') {
                    continue; // a temporary file of the killed write: never read
                }
                assert!(!b.is_empty(), "{name}, kill {k}: zero-byte {file}");
                if file.ends_with(".json") {
                    serde_json::from_slice::<serde_json::Value>(&b)
                        .unwrap_or_else(|e| panic!("{name}, kill {k}: partial {file}: {e}"));
                }
                if file.ends_with(".png") {
                    image::load_from_memory(&b).unwrap_or_else(|e| panic!("{name}, kill {k}: partial {file}: {e}"));
                }
                if file.ends_with(".safetensors") {
                    assert!(b.len() > 8, "{name}, kill {k}: partial {file}");
                    let header = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
                    assert!(b.len() >= 8 + header, "{name}, kill {k}: partial {file}");
                }
            }
        }
        let o = mcsfau(&make(&out), &e.root);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        assert_eq!(comparable(&out), expected, "{name}: the rerun after kills matches an uninterrupted run");
    }
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

#[test]
fn preprocess_on_a_full_disk_fails_cleanly_and_the_resume_matches() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("raw");
    support::voxceleb_tree(&root, 2, 1, 2.0);
    let run = |out: &Path| {
        vec![
            "preprocess".to_string(),
            "--quiet".into(),
            "--landmarks".into(),
            "synthetic".into(),
            "--fps".into(),
            "25".into(),
            "--dataset".into(),
            "voxceleb2".into(),
            "--root".into(),
            root.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let clean = dir.path().join("clean");
    let o = mcsfau(&run(&clean), dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = dir.path().join("out");
    let args = run(&out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = with_file_size_limit(&args, dir.path(), 64);
    assert_refused(&o, "preprocess with a full disk", None, "File too large");
    assert!(!text(&o).contains("not a readable"), "a write error is not a read error: {}", text(&o));
    // every visible shard is complete (the validator opens it)
    for shard in schemas::list_shards(&out).unwrap() {
        schemas::ShardReader::open(&shard).unwrap_or_else(|e| panic!("a partial shard is visible: {e}"));
    }
    let o = mcsfau(&args, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(support::read_rows(&out), support::read_rows(&clean), "the resumed run equals an uninterrupted one");
}

#[test]
fn one_out_holds_one_configuration_and_one_run_per_part() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("raw");
    support::voxceleb_tree(&root, 1, 1, 1.0);
    let run = |out: &Path, crop: &str| {
        let args = [
            "preprocess",
            "--quiet",
            "--landmarks",
            "synthetic",
            "--dataset",
            "voxceleb2",
            "--crop-size",
            crop,
            "--root",
            root.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        mcsfau(&args, dir.path())
    };
    let out = dir.path().join("out");
    let o = run(&out, "64");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let before = snapshot(&out);
    // Another crop size into the same folder: refused, naming both values.
    let o = run(&out, "128");
    assert_refused(&o, "a second configuration", None, "--crop-size 128 (this folder was made with 64)");
    assert_kept(&before, &out, "a second configuration");
    assert_eq!(snapshot(&out).len(), before.len(), "nothing written");
    // The same configuration resumes (nothing left to do).
    assert_eq!(run(&out, "64").status.code(), Some(0));
    // A run of the same part already working (a live process holds the lock).
    std::fs::write(out.join(".lock-p0000of0001"), format!("{} {}\n", std::process::id(), hostname())).unwrap();
    let o = run(&out, "64");
    assert_refused(
        &o,
        "a second run of the part",
        Some(&out.join(".lock-p0000of0001")),
        "another run of part p0000of0001",
    );
    std::fs::remove_file(out.join(".lock-p0000of0001")).unwrap();

    // audit fails a shard set that mixes configurations
    let other = dir.path().join("other");
    assert_eq!(run(&other, "128").status.code(), Some(0));
    let mixed = dir.path().join("mixed");
    for (i, d) in [&out, &other].iter().enumerate() {
        for s in schemas::list_shards(&d.join("shards")).unwrap() {
            let dst = mixed.join(format!("{i}-{}", s.file_name().unwrap().to_string_lossy()));
            std::fs::create_dir_all(&mixed).unwrap();
            std::fs::copy(&s, dst).unwrap();
        }
    }
    let o = mcsfau(&["audit", "--shards", mixed.to_str().unwrap(), "--report", "rep"], dir.path());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("integrity/mixed_preprocess_config/voxceleb2") && t.contains("crop_size=128"), "{t}");
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}
