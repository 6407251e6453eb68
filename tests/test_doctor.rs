//! The CLI runs: `mcsfau --help` and `mcsfau doctor` on this machine.

use std::process::Command;

fn mcsfau() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcsfau"))
}

#[test]
fn help_lists_the_subcommands() {
    let out = mcsfau().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("doctor"), "{text}");
}

#[test]
fn doctor_reports_libtorch_ffmpeg_and_threads() {
    // Runs without LD_LIBRARY_PATH: the build script's rpath must be enough.
    let out = mcsfau().arg("doctor").env_remove("LD_LIBRARY_PATH").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(concat!("mcsfau          ", env!("CARGO_PKG_VERSION"))), "{text}");
    assert!(text.contains("libtorch        2.11.0"), "{text}");
    assert!(text.contains("libtorch smoke  ok"), "{text}");
    assert!(text.contains("CUDA"), "{text}");
    assert!(text.contains("FFmpeg          avcodec 59."), "FFmpeg 5.1 is avcodec 59: {text}");
    assert!(text.contains("threads"), "{text}");
}

#[test]
fn doctor_json_is_machine_readable() {
    let out = mcsfau().args(["doctor", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["libtorch"]["libtorch_version"].as_str().unwrap().starts_with("2.11.0"));
    assert!(v["libtorch"]["cuda_available"].is_boolean());
    assert!(v["cpu_threads"].as_u64().unwrap() >= 1);
}

#[test]
fn a_cuda_device_libtorch_does_not_see_is_refused_with_exit_2_not_a_panic() {
    // cuda:99 exists on no machine, so this holds on a GPU machine too
    // (model/tests/train_bin.rs checks mcsfau-train the same way).
    let d = tempfile::tempdir().unwrap();
    let (shards, out) = (d.path().join("shards"), d.path().join("run"));
    std::fs::create_dir_all(&shards).unwrap();
    let o = mcsfau()
        .args(["pretrain", "--config", "tiny", "--steps", "1", "--device", "cuda:99", "--shards"])
        .arg(&shards)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cuda:99") && err.contains("CUDA device"), "{err}");
    assert!(!err.contains("panicked") && !out.exists(), "refused before any work: {err}");
}

#[test]
fn every_subcommand_has_examples_exit_codes_and_the_shared_flag_names() {
    let help = |cmd: &[&str]| {
        let o = mcsfau().args(cmd).arg("--help").output().unwrap();
        assert!(o.status.success(), "{cmd:?}");
        // help wraps lines: compare with single spaces
        String::from_utf8_lossy(&o.stdout).split_whitespace().collect::<Vec<_>>().join(" ")
    };
    for cmd in [
        "preprocess",
        "audit",
        "manifest",
        "pretrain",
        "probe",
        "supervise",
        "detect",
        "masks",
        "synth",
        "compare",
        "export",
        "doctor",
    ] {
        let h = help(&[cmd]);
        assert!(h.contains("EXAMPLE"), "{cmd} --help has no examples:\n{h}");
        assert!(h.contains("Exit code") || cmd == "export", "{cmd} --help does not say its exit codes:\n{h}");
    }
    // One name per idea across commands (old names stay as aliases).
    for cmd in ["preprocess", "audit", "pretrain", "probe", "supervise", "detect", "synth"] {
        assert!(help(&[cmd]).contains("--quiet"), "{cmd} has no --quiet");
    }
    for cmd in ["preprocess", "pretrain", "probe", "supervise", "detect"] {
        let h = help(&[cmd]);
        assert!(h.contains("--device") && h.contains("[default: auto]"), "{cmd}: device default:\n{h}");
    }
    for cmd in ["preprocess", "probe", "supervise"] {
        assert!(help(&[cmd]).contains("--jobs"), "{cmd} has no --jobs");
    }
    for cmd in ["preprocess", "audit", "pretrain", "probe", "supervise", "detect", "synth", "export", "masks"] {
        assert!(help(&[cmd]).contains("--out"), "{cmd} has no --out");
    }
    assert!(help(&["detect"]).contains("--batch-size") && help(&["preprocess"]).contains("--batch-size"));
    assert!(help(&["supervise"]).contains("--config") && help(&["pretrain"]).contains("--config"));
    assert!(help(&["manifest", "build"]).contains("--protocol"));
}
