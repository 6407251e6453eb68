//! Helpers of the bad-input and fault-injection tests (`tests/test_bad_inputs.rs`,
//! `tests/test_faults.rs`): the good inputs every case is made from (a
//! BP4D-like shard set, its manifest, a tiny checkpoint), the commands that
//! read shards, and the assertions every row shares: exit code 1 or 2, a
//! message naming the file and the problem, earlier outputs kept, no
//! partial or temporary file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use model::config::ModelConfig;
use model::mcsfau::McSfau;
use pipeline::fixtures;
use pipeline::manifest::Dataset;

use super::corpus::ShardCase;
use super::files_under as snapshot;

pub fn mcsfau<S: AsRef<std::ffi::OsStr>>(args: &[S], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcsfau")).args(args).current_dir(cwd).output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The good inputs every case is made from, built once per test binary.
pub struct Env {
    _dir: tempfile::TempDir,
    /// The folder: `good/` shards, `manifests/`, `ckpt.safetensors`.
    pub root: PathBuf,
}

pub fn env() -> &'static Env {
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
pub fn assert_clean(dir: &Path, what: &str) {
    for (p, bytes) in snapshot(dir) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "{what}: temporary file left: {}", p.display());
        assert!(!bytes.is_empty() || name.ends_with(".csv"), "{what}: zero-byte file {}", p.display());
    }
}

/// Every file of `before` is still under `dir` with the same bytes (new,
/// complete files may have appeared: [`assert_clean`] checks those).
pub fn assert_kept(before: &BTreeMap<PathBuf, Vec<u8>>, dir: &Path, what: &str) {
    let now = snapshot(dir);
    for (p, b) in before {
        assert!(now.get(p) == Some(b), "{what}: an earlier output was changed or removed: {}", p.display());
    }
}

/// The assertions every corpus row shares.
pub fn assert_refused(o: &Output, what: &str, file: Option<&Path>, needle: &str) {
    assert_refused_in(o, what, file, needle, None)
}

/// [`assert_refused`], the needle looked for in the message with `folder`
/// (whose name may contain the needle) left out.
pub fn assert_refused_in(o: &Output, what: &str, file: Option<&Path>, needle: &str, folder: Option<&Path>) {
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
pub fn shard_commands(case: &ShardCase, e: &Env) -> Vec<(&'static str, Vec<String>, PathBuf)> {
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
pub fn plant_previous_outputs(out: &Path) {
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

pub fn probe_args(e: &Env, out: &Path) -> Vec<String> {
    probe_args_on(e, &e.root.join("good"), out)
}

/// A short `probe` of the test checkpoint on `shards`, into `out`.
pub fn probe_args_on(e: &Env, shards: &Path, out: &Path) -> Vec<String> {
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
pub fn with_file_size_limit(args: &[&str], cwd: &Path, kib: u64) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!("trap '' XFSZ; ulimit -f {kib}; exec '{}' {}", env!("CARGO_BIN_EXE_mcsfau"), quoted.join(" "));
    Command::new("bash").args(["-c", &script]).current_dir(cwd).output().unwrap()
}

/// A report folder's files without timings (which differ run to run).
pub fn comparable(dir: &Path) -> BTreeMap<String, String> {
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

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}
