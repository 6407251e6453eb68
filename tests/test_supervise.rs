//! `mcsfau supervise` (a benchmark's architecture ceiling), the probe's
//! reference representations from the CLI, and the same two commands of
//! the GPU binary `mcsfau-train`: generated BP4D-like shards, a manifest
//! built by `mcsfau manifest build`.

use std::path::Path;
use std::process::{Command, Output};

use pipeline::fixtures;

fn run(bin: &Path, args: &str, cwd: &Path) -> Output {
    Command::new(bin).args(args.split_whitespace()).current_dir(cwd).output().unwrap()
}

fn mcsfau(args: &str, cwd: &Path) -> Output {
    run(Path::new(env!("CARGO_BIN_EXE_mcsfau")), args, cwd)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn setup(d: &Path) {
    assert!(mcsfau("manifest splits", d).status.success());
    fixtures::write_labeled_set(&d.join("shards")).unwrap();
    let b = mcsfau("manifest build --dataset bp4d --shards shards", d);
    assert!(b.status.success(), "{}", text(&b));
}

/// The data arguments every command here shares.
const DATA: &str = "--shards shards --manifest manifests/bp4d/paper.frames.json --dataset bp4d";

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn supervise_trains_the_backbone_and_probe_scores_it_like_a_pretrained_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let sup = format!("supervise {DATA} --preset tiny --out sup --epochs 2 --batch-size 4 --lr 0.01 --device cpu");
    let out = mcsfau(&sup, d);
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
    let probe =
        format!("probe --checkpoint sup/model.safetensors {DATA} --out probe --no-cache --max-epochs 3 --bootstrap 50");
    let p = mcsfau(&probe, d);
    assert!(p.status.success(), "{}", text(&p));
    // An unknown split is a clear refusal.
    let b = mcsfau(&format!("{sup} --splits train,nope"), d);
    assert!(!b.status.success() && text(&b).contains("nope"), "{}", text(&b));
}

#[test]
fn reference_probes_need_no_checkpoint_and_report_floor_ap_and_interval() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let opts = "--out ref --no-cache --max-epochs 3 --seed 0,1 --select ap --pos-weight balanced --bootstrap 50";
    let out = mcsfau(&format!("probe --features landmarks {DATA} {opts}"), d);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("the landmarks reference") && stdout.contains("| all-present floor |"), "{stdout}");
    assert!(stdout.contains("mean AP") && stdout.contains("95 % interval over"), "{stdout}");
    let v = json(&d.join("ref/probe.json"));
    assert_eq!(v["features"], "landmarks");
    assert_eq!(v["seeds"].as_array().unwrap().len(), 2);
    assert_eq!(v["selection"]["metric"], "ap");
    assert!(v["bootstrap"]["mean_ap"][0].as_f64().unwrap() <= v["bootstrap"]["mean_ap"][1].as_f64().unwrap());
    assert!(d.join("ref/test_predictions.csv").is_file());
    // The backbone needs its checkpoint.
    let b = mcsfau(&format!("probe --features backbone {DATA} {opts}"), d);
    assert!(!b.status.success() && text(&b).contains("--checkpoint"), "{}", text(&b));
}

#[test]
fn the_gpu_binary_probes_and_supervises_from_the_same_manifest() {
    // `mcsfau-train` (model crate) is built beside `mcsfau` by the workspace
    // build; it reads the manifest without the pipeline crate.
    let train_bin = Path::new(env!("CARGO_BIN_EXE_mcsfau")).with_file_name("mcsfau-train");
    assert!(train_bin.exists(), "{} missing: build the workspace (cargo build --workspace)", train_bin.display());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let sup =
        run(&train_bin, &format!("supervise {DATA} --preset tiny --out sup --epochs 1 --batch-size 4 --device cpu"), d);
    assert!(sup.status.success(), "{}", text(&sup));
    let probe = format!("probe --checkpoint sup/model.safetensors {DATA} --out probe --seed 0,1 --select ap --bootstrap 50 --device cpu");
    let p = run(&train_bin, &probe, d);
    assert!(p.status.success(), "{}", text(&p));
    assert!(String::from_utf8_lossy(&p.stdout).contains("mean AP"), "{}", text(&p));
    // The same frames `mcsfau probe` reads from the manifest.
    let v = json(&d.join("probe/probe.json"));
    let frames: Vec<u64> = v["splits"].as_array().unwrap().iter().map(|s| s["frames"].as_u64().unwrap()).collect();
    assert_eq!(frames, [16, 8, 8]);
    let bad =
        run(&train_bin, &format!("probe --features landmarks {DATA} --out x --splits train,val,nope --device cpu"), d);
    assert!(!bad.status.success() && text(&bad).contains("nope"), "{}", text(&bad));
}
