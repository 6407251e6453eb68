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
