//! `mcsfau-train`, the GPU-machine binary, on the CPU: it writes synthetic
//! shards and pretrains the tiny preset on them.

use std::process::Command;

#[test]
fn synth_shards_then_a_few_tiny_steps_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_mcsfau-train");
    let out = Command::new(bin)
        .current_dir(dir.path())
        .args(["synth-shards", "--out", "shards", "--n", "8", "--side", "64", "--rows-per-file", "4"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote 8 synthetic 64x64 faces in 2 shard(s)"));
    let out = Command::new(bin)
        .current_dir(dir.path())
        .args(["pretrain", "--shards", "shards", "--config", "tiny", "--out", "run", "--device", "cpu"])
        .args(["--steps", "3", "--threads", "1", "--batch-size", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((summary["steps"].as_u64(), summary["total_steps"].as_u64()), (Some(3), Some(3)));
    assert!(summary["last"]["total"].as_f64().unwrap().is_finite());
    assert!(dir.path().join("run/checkpoints/step-00000003.safetensors").exists());
    let doctor = Command::new(bin).arg("doctor").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert!(v["libtorch"]["libtorch_version"].as_str().unwrap().starts_with("2.11.0"), "{v}");
    assert_eq!(v["libtorch_smoke"]["Ok"], serde_json::Value::Null);
    assert!(doctor.status.success());
    // A CUDA device libtorch does not see: exit 2 with a message, no panic
    // (cuda:99 exists on no machine).
    let out = Command::new(bin)
        .current_dir(dir.path())
        .args(["pretrain", "--shards", "shards", "--config", "tiny", "--out", "run2", "--device", "cuda:99"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cuda:99") && err.contains("CUDA device") && !err.contains("panicked"), "{err}");
    assert!(!dir.path().join("run2").exists(), "refused before any work");
}
