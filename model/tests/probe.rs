//! The linear probe end to end on tiny generated BP4D-like shards and a tiny
//! checkpoint: reports, the feature cache, and the self-checks (only the
//! probe's variables train; the backbone is bit-for-bit unchanged).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use model::checkpoint;
use model::config::ModelConfig;
use model::mcsfau::McSfau;
use model::probe::features::{file_sha256, FeatureSource};
use model::probe::linear::{self, LinearConfig};
use model::probe::report::{self, ProbeReport};
use model::probe::{self, CheckpointInfo, Dataset, NoProgress, ProbeConfig, ProbeData, Split};
use schemas::{FaceRow, LabelSpec, Labels, ShardMeta, ShardWriter, WriterOptions};
use tch::{Device, Kind, Tensor};

const SIDE: u32 = 48; // not the tiny preset's 64: the probe resizes
const AUS: usize = 12;

/// Labels of frame `i`: AU k present when bit k of a hash is set, with
/// every 7th entry unknown; the crop's colour depends on the first AUs so a
/// probe has something to find.
fn labels(i: usize) -> Vec<i8> {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    (0..AUS).map(|k| if (i + k) % 7 == 0 { -1 } else { ((h >> k) & 1) as i8 }).collect()
}

fn jpeg(i: usize, y: &[i8]) -> Vec<u8> {
    let on = |k: usize| if y[k] == 1 { 220u32 } else { 30 };
    let img = image::RgbImage::from_fn(SIDE, SIDE, |x, yy| {
        let noise = (x * 7 + yy * 13 + i as u32 * 17) % 23;
        if yy < SIDE / 2 {
            image::Rgb([(on(0) + noise).min(255) as u8, (on(1) / 2 + noise) as u8, 60])
        } else {
            image::Rgb([90, (on(2) / 2 + noise) as u8, (on(3) + noise).min(255) as u8])
        }
    });
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)).unwrap();
    out
}

fn subject(i: usize) -> String {
    format!("F{:03}", i % 9 + 1)
}

fn write_shards(dir: &Path, n: usize) -> Vec<PathBuf> {
    let meta = ShardMeta {
        dataset: "bp4d".into(),
        labels: Some(LabelSpec { au_numbers: Dataset::Bp4d.au_numbers().to_vec(), intensity: false }),
        tool_version: "test".into(),
        preprocess_config: "{}".into(),
    };
    let opts = WriterOptions { rows_per_file: 50, row_group_size: 16, zstd_level: 1 };
    let mut w = ShardWriter::new(dir, "bp4d", meta, opts).unwrap();
    for i in 0..n {
        let y = labels(i);
        let s = subject(i);
        w.push(FaceRow {
            sample_id: FaceRow::make_sample_id("bp4d", &s, "T1", "", i as i64),
            dataset: "bp4d".into(),
            subject: s,
            video: "T1".into(),
            frame_index: i as i64,
            image: jpeg(i, &y),
            crop_size: SIDE as i32,
            landmarks: (0..98).map(|k| (k % 40) as f32).collect(),
            landmark_source: "synthetic".into(),
            detector_score: f32::NAN,
            labels: Some(Labels { occurrence: y, intensity: vec![] }),
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap()
}

/// Subjects 1-5 train, 6-7 val, 8-9 test.
fn split(name: &str, n: usize) -> Split {
    let ids: HashSet<String> = (0..n)
        .filter(|i| {
            let s = i % 9 + 1;
            match name {
                "train" => s <= 5,
                "val" => (6..=7).contains(&s),
                _ => s >= 8,
            }
        })
        .map(|i| FaceRow::make_sample_id("bp4d", &subject(i), "T1", "", i as i64))
        .collect();
    Split { name: name.into(), hash: format!("{name}-hash"), ids }
}

fn small_config(cache: Option<PathBuf>) -> ProbeConfig {
    ProbeConfig {
        linear: LinearConfig {
            lrs: vec![1e-2, 5e-2],
            weight_decays: vec![0.0, 1e-3],
            max_epochs: 15,
            patience: 5,
            batch_size: 32,
            seed: 3,
            ..LinearConfig::default()
        },
        feature_batch: 32,
        workers: 2,
        cache_dir: cache,
        seeds: vec![3, 4],
        bootstrap: 200,
    }
}

#[test]
fn probe_reports_caches_and_leaves_the_backbone_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let n = 180;
    let shards = write_shards(&dir.path().join("shards"), n);
    tch::manual_seed(1);
    let ckpt = dir.path().join("ckpt.safetensors");
    checkpoint::save(&McSfau::new(&ModelConfig::tiny(), Device::Cpu).unwrap(), &ckpt, 5).unwrap();
    let (model, meta) = checkpoint::load(&ckpt, Device::Cpu).unwrap();
    let info =
        CheckpointInfo { path: ckpt.display().to_string(), sha256: file_sha256(&ckpt).unwrap(), step: meta.step };
    let data = ProbeData {
        shard_paths: shards,
        train: split("train", n),
        val: split("val", n),
        test: split("test", n),
        manifest: "test".into(),
    };
    let cfg = small_config(Some(dir.path().join("cache")));
    let (rep, head) = probe::run(&model, &info, Dataset::Bp4d, &data, &cfg, &NoProgress).unwrap();

    // Only the probe's layer is in the head's store.
    let mut names: Vec<String> = head.store().variables().into_keys().collect();
    names.sort();
    assert_eq!(names, ["probe.bias", "probe.weight"]);
    assert_eq!(head.shape(), (ModelConfig::tiny().feature_channels(), AUS as i64));
    // The backbone equals the checkpoint's tensors bit for bit.
    let file: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(&ckpt).unwrap().into_iter().collect();
    for (name, t) in model.online().variables() {
        if name.starts_with("backbone.") {
            assert!(t.equal(&file[&format!("online.{name}")]), "{name} changed");
        }
    }

    let frames: Vec<usize> = rep.splits.iter().map(|s| s.frames).collect();
    assert_eq!(frames, [100, 40, 40]);
    assert!(rep.splits.iter().all(|s| !s.cached && s.listed == s.frames));
    assert_eq!(rep.au_numbers, Dataset::Bp4d.au_numbers());
    assert_eq!(rep.selection.grid.len(), 4);
    let known: u64 = rep.test.iter().map(|a| a.known).sum();
    let unknown = (0..n).filter(|i| i % 9 + 1 >= 8).flat_map(labels).filter(|&y| y < 0).count() as u64;
    assert_eq!(known + unknown, 40 * AUS as u64, "unknown labels are left out of the test counts");
    // AU1 is drawn into the image: even a random tiny backbone separates it.
    assert!(rep.test[0].f1 > 0.6, "AU1 F1 {}", rep.test[0].f1);
    assert_eq!(rep.paper[0].f1_pct[6], 90.9, "table 1, MC-SFAU, AU12");
    // Two head seeds, their mean reported; AP, floor and interval beside F1.
    assert_eq!(rep.seeds.iter().map(|s| s.seed).collect::<Vec<_>>(), [3, 4]);
    let mean_of_seeds = (rep.seeds[0].mean_f1 + rep.seeds[1].mean_f1) / 2.0;
    assert!((rep.test_mean_f1 - mean_of_seeds).abs() < 1e-12);
    assert!(rep.test[0].ap > rep.test[0].base_rate, "AU1 AP {} vs base rate", rep.test[0].ap);
    let floor = rep.floor.as_ref().unwrap();
    assert!(floor.mean_f1 > 0.0 && floor.mean_ap > 0.0 && floor.mean_ap < 1.0);
    let b = rep.bootstrap.as_ref().unwrap();
    assert_eq!((b.units, b.resamples, b.unit.as_str()), (2, 200, "test subject"));
    assert!(b.mean_f1[0] <= rep.test_mean_f1 + 1e-9 && rep.test_mean_f1 <= b.mean_f1[1] + 1e-9, "{b:?}");

    let out = dir.path().join("out");
    let json = rep.write(&out, &head).unwrap();
    for f in [report::CSV_FILE, report::MD_FILE, report::HEAD_FILE, report::PREDICTIONS_FILE] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let preds = std::fs::read_to_string(out.join(report::PREDICTIONS_FILE)).unwrap();
    assert_eq!(preds.lines().count(), 1 + 2 * 40, "a row per test frame and seed");
    assert!(
        preds.starts_with("seed,sample_id,subject,AU01_p,") && preds.lines().nth(1).unwrap().starts_with("3,bp4d/F00")
    );
    let back = ProbeReport::load(&json).unwrap();
    assert_eq!((back.dataset, &back.au_numbers, &back.splits), (rep.dataset, &rep.au_numbers, &rep.splits));
    for (b, r) in back.f1s().iter().zip(rep.f1s()) {
        assert!((b - r).abs() < 1e-12, "F1 survives the JSON round trip");
    }
    let csv = std::fs::read_to_string(out.join(report::CSV_FILE)).unwrap();
    assert!(csv.starts_with("au,f1_pct,") && csv.lines().count() == AUS + 2, "{csv}");
    let loaded = linear::Head::load(&back.head_path(&json)).unwrap();
    let x = Tensor::randn([3, ModelConfig::tiny().feature_channels()], (Kind::Float, Device::Cpu));
    assert!(loaded.probs(&x).allclose(&head.probs(&x), 1e-6, 1e-6, false));

    // Second run: every split from the cache, same numbers.
    let (again, _) = probe::run(&model, &info, Dataset::Bp4d, &data, &cfg, &NoProgress).unwrap();
    assert!(again.splits.iter().all(|s| s.cached));
    assert_eq!(again.f1s(), rep.f1s());
    // A different checkpoint is a different cache key.
    let other = CheckpointInfo { sha256: "0".repeat(64), ..info };
    let (fresh, _) = probe::run(&model, &other, Dataset::Bp4d, &data, &cfg, &NoProgress).unwrap();
    assert!(fresh.splits.iter().all(|s| !s.cached));

    // DISFA labels on BP4D shards are refused with the file named.
    let err = probe::run(&model, &other, Dataset::Disfa, &data, &small_config(None), &NoProgress).unwrap_err();
    assert!(err.to_string().contains("bp4d-00000.parquet"), "{err}");
}

#[test]
fn reference_representations_go_through_the_same_probe() {
    let dir = tempfile::tempdir().unwrap();
    let n = 180;
    let data = ProbeData {
        shard_paths: write_shards(&dir.path().join("shards"), n),
        train: split("train", n),
        val: split("val", n),
        test: split("test", n),
        manifest: "test".into(),
    };
    let cfg = ProbeConfig { seeds: vec![3], ..small_config(None) };
    // AU1 is the red level of the top half: raw pixels find it.
    let (pixels, _) =
        probe::run_reference(FeatureSource::Pixels { side: 8 }, Dataset::Bp4d, &data, &cfg, &NoProgress).unwrap();
    assert_eq!((pixels.features.as_str(), pixels.checkpoint.path.as_str()), ("pixels8", "(reference: pixels8)"));
    assert!(pixels.test[0].f1 > 0.75, "AU1 from pixels: F1 {}", pixels.test[0].f1);
    // The landmarks are the same in every frame: no better than chance on AU1.
    let (lm, head) = probe::run_reference(FeatureSource::Landmarks, Dataset::Bp4d, &data, &cfg, &NoProgress).unwrap();
    assert_eq!(head.shape(), (98, AUS as i64));
    assert!(lm.test[0].ap < pixels.test[0].ap, "landmarks AP {} vs pixels {}", lm.test[0].ap, pixels.test[0].ap);
    assert!(probe::run_reference(FeatureSource::Backbone, Dataset::Bp4d, &data, &cfg, &NoProgress).is_err());
    assert_eq!(FeatureSource::parse("pixels").unwrap(), FeatureSource::Pixels { side: 32 });
    assert!(FeatureSource::parse("pixel").is_err());
}

#[test]
fn the_self_check_sees_a_changed_backbone() {
    let model = McSfau::new(&ModelConfig::tiny(), Device::Cpu).unwrap();
    let before = probe::backbone_snapshot(&model);
    assert!(probe::backbone_changes(&model, &before).is_empty());
    let v = model.online().variables()["backbone.bn1.running_mean"].shallow_clone();
    tch::no_grad(|| {
        let _ = v.get(0).fill_(1e-7);
    });
    assert_eq!(probe::backbone_changes(&model, &before), ["backbone.bn1.running_mean"]);
}
