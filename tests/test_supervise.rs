//! `mcsfau supervise` (a benchmark's architecture ceiling) and the probe's
//! reference representations from the CLI: generated BP4D-like shards, a
//! manifest built by `mcsfau manifest build`.

use std::path::Path;
use std::process::{Command, Output};

use pipeline::fixtures;

fn mcsfau(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcsfau")).args(args).current_dir(cwd).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn setup(d: &Path) {
    assert!(mcsfau(&["manifest", "splits"], d).status.success());
    fixtures::write_labeled_set(&d.join("shards")).unwrap();
    let b = mcsfau(&["manifest", "build", "--dataset", "bp4d", "--shards", "shards"], d);
    assert!(b.status.success(), "{}", text(&b));
}

const MANIFEST: &str = "manifests/bp4d/paper.frames.json";

#[test]
fn supervise_trains_the_backbone_and_probe_scores_it_like_a_pretrained_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let args = [
        "supervise",
        "--shards",
        "shards",
        "--manifest",
        MANIFEST,
        "--dataset",
        "bp4d",
        "--preset",
        "tiny",
        "--out",
        "sup",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--lr",
        "0.01",
        "--device",
        "cpu",
    ];
    let out = mcsfau(&args, d);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept epoch"), "{}", text(&out));
    let log = std::fs::read_to_string(d.join("sup/log.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), 2);
    for r in &recs {
        let (loss, ap) = (r["train_loss"].as_f64().unwrap(), r["val_mean_ap"].as_f64().unwrap());
        assert!(loss.is_finite() && loss > 0.0 && (0.0..=1.0).contains(&ap), "{r}");
    }
    // The checkpoint is an ordinary one: the probe reads it, and its
    // backbone moved away from the seeded initialisation.
    let (trained, _) = model::checkpoint::load(&d.join("sup/model.safetensors"), tch::Device::Cpu).unwrap();
    tch::manual_seed(0);
    let init = model::mcsfau::McSfau::new(&model::config::ModelConfig::tiny(), tch::Device::Cpu).unwrap();
    let w = |m: &model::mcsfau::McSfau| m.online().variables()["backbone.conv1.weight"].shallow_clone();
    assert!(!w(&trained).equal(&w(&init)), "supervised training changed the backbone");
    let probe = [
        "probe",
        "--checkpoint",
        "sup/model.safetensors",
        "--shards",
        "shards",
        "--manifest",
        MANIFEST,
        "--dataset",
        "bp4d",
        "--out",
        "probe",
        "--no-cache",
        "--max-epochs",
        "3",
        "--bootstrap",
        "50",
    ];
    let p = mcsfau(&probe, d);
    assert!(p.status.success(), "{}", text(&p));
    // Only two splits, or an unknown one, is a clear refusal.
    let mut bad = args.to_vec();
    bad.extend(["--splits", "train,nope"]);
    let b = mcsfau(&bad, d);
    assert!(!b.status.success() && text(&b).contains("nope"), "{}", text(&b));
}

#[test]
fn reference_probes_need_no_checkpoint_and_report_floor_ap_and_interval() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let args = [
        "probe",
        "--features",
        "landmarks",
        "--shards",
        "shards",
        "--manifest",
        MANIFEST,
        "--dataset",
        "bp4d",
        "--out",
        "ref",
        "--no-cache",
        "--max-epochs",
        "3",
        "--seed",
        "0,1",
        "--select",
        "ap",
        "--pos-weight",
        "balanced",
        "--bootstrap",
        "50",
    ];
    let out = mcsfau(&args, d);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("the landmarks reference") && stdout.contains("| all-present floor |"), "{stdout}");
    assert!(stdout.contains("mean AP") && stdout.contains("95 % interval over"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("ref/probe.json")).unwrap()).unwrap();
    assert_eq!(v["features"], "landmarks");
    assert_eq!(v["seeds"].as_array().unwrap().len(), 2);
    assert_eq!(v["selection"]["metric"], "ap");
    assert!(v["bootstrap"]["mean_ap"][0].as_f64().unwrap() <= v["bootstrap"]["mean_ap"][1].as_f64().unwrap());
    assert!(d.join("ref/test_predictions.csv").is_file());
    // The backbone needs its checkpoint.
    let mut bb = args.to_vec();
    bb[2] = "backbone";
    let b = mcsfau(&bb, d);
    assert!(!b.status.success() && text(&b).contains("--checkpoint"), "{}", text(&b));
}
