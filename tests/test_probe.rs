//! `mcsfau probe` end to end: generated BP4D-like shards, a manifest built by
//! `mcsfau manifest build`, a tiny checkpoint; report files, the printed
//! table next to the paper's row, the feature cache on a second run, and
//! refusals with a clear message.

use std::path::Path;
use std::process::{Command, Output};

use model::config::ModelConfig;
use model::mcsfau::McSfau;
use pipeline::fixtures;

fn mcsfau(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcsfau")).args(args).current_dir(cwd).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const PROBE: [&str; 18] = [
    "probe",
    "--checkpoint",
    "ckpt.safetensors",
    "--shards",
    "shards",
    "--manifest",
    "manifests/bp4d/paper.frames.json",
    "--dataset",
    "bp4d",
    "--out",
    "out",
    "--cache-dir",
    "cache",
    "--max-epochs",
    "5",
    "--lrs",
    "0.01",
    "--device=cpu",
];

#[test]
fn probe_writes_the_report_prints_the_paper_row_and_reuses_features() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(mcsfau(&["manifest", "splits"], d).status.success());
    fixtures::write_labeled_set(&d.join("shards")).unwrap();
    for ds in ["bp4d", "disfa"] {
        let b = mcsfau(&["manifest", "build", "--dataset", ds, "--shards", "shards"], d);
        assert!(b.status.success(), "{}", text(&b));
    }
    tch::manual_seed(0);
    let net = McSfau::new(&ModelConfig::tiny(), tch::Device::Cpu).unwrap();
    model::checkpoint::save(&net, &d.join("ckpt.safetensors"), 3).unwrap();

    let out = mcsfau(&PROBE, d);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| this run |") && stdout.contains("MC-SFAU (paper) (table 1)"), "{stdout}");
    assert!(stdout.contains("52.2 | 54.6 |"), "the paper's BP4D row: {stdout}");
    for f in ["probe.json", "probe.csv", "probe.md", "probe_head.safetensors"] {
        assert!(d.join("out").join(f).is_file(), "{f} missing");
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("out/probe.json")).unwrap()).unwrap();
    assert_eq!(v["test"].as_array().unwrap().len(), 12);
    assert_eq!(v["checkpoint"]["step"], 3);
    let frames: Vec<u64> = v["splits"].as_array().unwrap().iter().map(|s| s["frames"].as_u64().unwrap()).collect();
    assert_eq!(frames, [16, 8, 8], "2/1/1 subjects x 2 tasks x 4 frames");
    assert_eq!(v["selection"]["grid"].as_array().unwrap().len(), 3, "1 lr x 3 weight decays");
    // The checkpoint's landmark detector on the test frames: untrained, its
    // zero-initialised heads put p_2 and p_k on the alignment template, so
    // both score exactly the template's error.
    let det = &v["detector"];
    assert_eq!(
        (det["split"].as_str(), det["frames"].as_u64(), det["image_size"].as_i64()),
        (Some("test"), Some(8), Some(64))
    );
    let px = |k: &str| det[k].as_f64().unwrap();
    assert!(px("template_rms_px") > 0.5, "{det}");
    assert!((px("p2_rms_px") - px("template_rms_px")).abs() < 1e-4, "{det}");
    assert!((px("pk_rms_px") - px("template_rms_px")).abs() < 1e-4, "{det}");
    assert!(stdout.contains("landmark detector on the test frames (8): RMS error p_2"), "{stdout}");

    let again = mcsfau(&PROBE, d);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout).matches("(cached features)").count(), 3);
    let v2: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("out/probe.json")).unwrap()).unwrap();
    assert_eq!(v2["test"], v["test"], "cached features give the same scores");

    // A DISFA manifest for a BP4D probe is refused before any work.
    let mut wrong = PROBE.to_vec();
    wrong[6] = "manifests/disfa/paper.frames.json";
    let bad = mcsfau(&wrong, d);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("is for disfa, not bp4d"), "{}", text(&bad));
}
