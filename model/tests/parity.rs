//! The Rust model against the PyTorch reference
//! (`scripts/reference/model_reference.py`, which wrote `tests/data/`):
//! same weights, same inputs, same noise and mask draws; L_s, L_d, L_r,
//! L_c, the total, p_2 (the locating detector), p_k, F_p (train and eval
//! mode), gradients (the detector's heads among them) and one EMA update;
//! for the locating detector (the default), its every option, and the
//! earlier denoising reading of eq. 3. `just model-reference` reruns the script into a temporary folder
//! and this test against it; the script's default output folder replaces the
//! checked-in files.
//!
//! Both sides run in **f64**. BatchNorm over a batch of 3 is ill-conditioned:
//! in f32 the CPU's kernel set alone (`ATEN_CPU_CAPABILITY` default / avx2 /
//! avx512) moved some gradients by up to 2.7e-3 relative, so an f32 bound
//! held on one CPU failed on another. In f64 the same differences are
//! at most 2.7e-13 (measured under all three, docs/setup.md), and the bound
//! is [`TOL_F64`]. The
//! model users train is f32: a second test checks the f32 model against the
//! same f64 reference with the tolerances in [`F32_TOLERANCES`], each about
//! ten times the largest error measured under all three kernel sets.

use std::collections::HashMap;
use std::path::PathBuf;

use model::config::{CascadeTarget, Detector, LdScale, MaskAt, MaskMode, ModelConfig};
use model::masking::landmark_mask;
use model::mcsfau::{Batch, Draws, McSfau};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// The f64 bound: relative error (to max(1, |value|)) of every compared value.
const TOL_F64: f64 = 1e-9;

/// The f32 model against the f64 reference, by what is compared (prefix of
/// the value's name): the tolerance, about ten times the largest error
/// measured under `ATEN_CPU_CAPABILITY` default, avx2 and avx512 (Intel Xeon,
/// 2026-12-01: losses 3.3e-7, p_k 1.5e-5, F_p 1.7e-5, gradients 1.2e-3, EMA
/// 1.2e-7; docs/setup.md). The strict check is the f64 one; this one
/// catches what only the f32 path can get wrong (a cast, a lost kind).
const F32_TOLERANCES: [(&str, f64); 7] =
    [("l_", 1e-5), ("total", 1e-5), ("p_2", 2e-4), ("p_k", 2e-4), ("F_p", 2e-4), ("grad.", 1e-2), ("ema.", 2e-6)];

/// The checked-in reference files, or `MCSFAU_PARITY_DIR` (set by `just
/// model-reference` to a fresh run of the script).
fn data(name: &str) -> PathBuf {
    match std::env::var_os("MCSFAU_PARITY_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name),
    }
}

fn read(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(data(name)).unwrap().into_iter().collect()
}

/// The `config` entry of the safetensors header's `__metadata__`.
fn metadata_config(name: &str) -> ModelConfig {
    let bytes = std::fs::read(data(name)).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    serde_json::from_str(header["__metadata__"]["config"].as_str().unwrap()).unwrap()
}

/// Largest |a - b| / max(1, |b|), computed in f64.
fn max_rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    ((&a - &b).abs() / b.abs().clamp_min(1.0)).max().double_value(&[])
}

fn load_into(store: &tch::nn::VarStore, file: &HashMap<String, Tensor>, prefix: &str) {
    tch::no_grad(|| {
        for (name, mut var) in store.variables() {
            let key = format!("{prefix}{name}");
            let t = file.get(&key).unwrap_or_else(|| panic!("{key} missing in the reference file"));
            assert_eq!(t.size(), var.size(), "{key}");
            var.copy_(t); // copy_ casts to the variable's kind
        }
    });
    let n = file.keys().filter(|k| k.starts_with(prefix)).count();
    assert_eq!(n, store.variables().len(), "{prefix}: the reference has variables the Rust model lacks");
}

/// What one run of the Rust model gives against the reference.
struct Comparison {
    /// `(name, relative error)` of every compared value.
    errors: Vec<(String, f64)>,
    /// Whether the eq. 4 masks are bit-identical.
    mask_equal: bool,
}

/// The tiny preset without dropout (train mode is then deterministic).
fn tiny() -> ModelConfig {
    let mut tiny = ModelConfig::tiny();
    tiny.mfrr.transformer.dropout = 0.0;
    tiny
}

/// The reference's `VARIANT`: the other branch of every option.
fn variant() -> ModelConfig {
    let mut v = tiny();
    v.backbone.output_stride = 16;
    v.mfrr.k = 6;
    v.mfrr.ld_scale = LdScale::PixelSum;
    v.mfrr.cascade_target = CascadeTarget::Previous;
    v.mfrr.mask_at = MaskAt::Landmarks;
    v.mfrr.mask_mode = MaskMode::PerLandmark;
    v
}

/// The reference's `DENOISE`: the earlier reading of eq. 3.
fn denoise() -> ModelConfig {
    let mut v = tiny();
    v.mfrr.detector = Detector::Denoise;
    v.mfrr.k = 6;
    v.mfrr.ld_scale = LdScale::Jitter;
    v.mfrr.cascade_target = CascadeTarget::Previous;
    v
}

/// Runs the model of reference file `name` in `kind` on its weights,
/// inputs and draws: the losses, p_k, the mask, the gradients, F_p and the
/// EMA update.
fn compare(name: &str, expected: &ModelConfig, kind: Kind) -> Comparison {
    // One thread, as the reference ran: the result then depends neither on
    // the machine's core count nor on its load.
    tch::set_num_threads(1);
    let file = read(name);
    assert_eq!(file["online.backbone.conv1.weight"].kind(), Kind::Double, "the reference is f64");
    let cfg = metadata_config(name);
    assert_eq!(&cfg, expected, "{name}: the reference's config");

    let mut model = McSfau::new(&cfg, Device::Cpu).unwrap();
    model.set_kind(kind);
    load_into(model.online(), &file, "online.");
    load_into(model.target(), &file, "target.");
    let input = |k: &str| file[k].to_kind(kind);
    let (p, p1, p2, landmarks) = (input("in.p"), input("in.p1"), input("in.p2"), input("in.landmarks"));
    let batch = Batch { p: &p, p1: &p1, p2: &p2, landmarks: &landmarks };
    let draws = Draws { noise: input("in.noise"), apply_mask: file["in.apply_mask"].shallow_clone() };

    let mut errors = Vec::new();
    let mut check = |what: &str, a: &Tensor, b: &Tensor| errors.push((what.to_string(), max_rel_err(a, b)));
    let losses = model.losses(&batch, &draws, true).unwrap();
    assert_eq!(losses.total.kind(), kind, "the losses are computed in the model's kind");
    for (name, t) in [("l_s", &losses.l_s), ("l_d", &losses.l_d), ("l_r", &losses.l_r), ("l_c", &losses.l_c)] {
        check(name, t, &file[&format!("out.{name}")]);
    }
    check("total", &losses.total, &file["out.total"]);
    check("p_k", losses.refined.as_ref().unwrap(), &file["out.refined"]);
    match (&losses.located, file.get("out.located")) {
        (Some(p2), Some(want)) => check("p_2", p2, want),
        (None, None) => {}
        (a, b) => panic!("{name}: p_2 in Rust {} / in the reference {}", a.is_some(), b.is_some()),
    }
    let mask = losses.mask.as_ref().unwrap();
    let mask_equal = mask.equal(&file["out.mask"]);
    assert!(file["out.mask"].any().int64_value(&[]) == 1, "the reference should mask some cells");

    losses.total.backward();
    let online = model.online().variables();
    let mut grads = 0;
    for (key, want) in file.iter().filter(|(k, _)| k.starts_with("grad.")) {
        check(key, &online[&key["grad.".len()..]].grad(), want);
        grads += 1;
    }
    assert!(grads >= 10, "only {grads} gradients checked");

    // Backbone forward: train mode (batch statistics) and eval mode (running
    // statistics after the three train-mode forwards above).
    let f_eval = tch::no_grad(|| model.backbone().forward_t(batch.p, false));
    check("F_p (eval)", &f_eval, &file["out.f_p_eval"]);
    let f_p = tch::no_grad(|| model.backbone().forward_t(batch.p, true));
    check("F_p (train)", &f_p, &file["out.f_p"]);

    model.ema_update().unwrap();
    let target = model.target().variables();
    let mut n = 0;
    for (key, want) in file.iter().filter(|(k, _)| k.starts_with("ema.")) {
        check(key, &target[&key["ema.".len()..]], want);
        n += 1;
    }
    let params = target.keys().filter(|k| !model::byol::is_buffer(k)).count();
    assert_eq!(n, params, "every target parameter is checked");
    Comparison { errors, mask_equal }
}

/// The worst error per kind of value (`cargo test --test parity --
/// --nocapture` prints it; docs/setup.md records it per kernel set).
fn report(label: &str, c: &Comparison) -> String {
    let mut out = format!("{label}, {} values; worst:", c.errors.len());
    for group in ["l_", "total", "p_2", "p_k", "F_p", "grad.", "ema."] {
        let worst = c.errors.iter().filter(|(w, _)| w.starts_with(group)).max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((what, e)) = worst {
            out += &format!(" {what} {e:.1e};");
        }
    }
    out
}

fn assert_f64(name: &str, expected: &ModelConfig) {
    let c = compare(name, expected, Kind::Double);
    eprintln!("{}", report(&format!("{name} f64"), &c));
    for (what, e) in &c.errors {
        assert!(*e <= TOL_F64, "{name} {what}: error {e:e} > {TOL_F64:e}");
    }
    assert!(c.mask_equal, "{name}: the eq. 4 masks differ");
}

#[test]
fn tiny_model_matches_pytorch_in_f64() {
    assert_f64("mcsfau_tiny.safetensors", &tiny());
}

#[test]
fn every_option_matches_pytorch_in_f64() {
    // Output stride 16, pixel-sum L_d, later steps toward sg(p_(m-1)),
    // masks at p_1, per-landmark draws.
    assert_f64("mcsfau_variant.safetensors", &variant());
}

#[test]
fn the_denoising_reading_matches_pytorch_in_f64() {
    assert_f64("mcsfau_denoise.safetensors", &denoise());
}

#[test]
fn tiny_model_in_f32_stays_near_the_f64_reference() {
    let c = compare("mcsfau_tiny.safetensors", &tiny(), Kind::Float);
    eprintln!("{}", report("f32", &c));
    for (what, e) in &c.errors {
        let tol = F32_TOLERANCES.iter().find(|(prefix, _)| what.starts_with(prefix)).map(|(_, t)| *t);
        let tol = tol.unwrap_or_else(|| panic!("{what}: no f32 tolerance"));
        assert!(*e <= tol, "{what}: error {e:e} > {tol:e} (f32 model against the f64 reference)");
    }
    assert!(c.mask_equal, "the eq. 4 masks differ in f32");
}

#[test]
fn masks_match_pytorch_exactly_at_paper_geometry() {
    let file = read("masks_paper.safetensors");
    let mask = landmark_mask(&file["points"], &file["apply"], 256, 8, 40.0);
    assert!(mask.equal(&file["mask"]));
    // Not a trivial mask: some cells on, some off, the unapplied sample empty.
    let on = mask.to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[]);
    assert!(on > 0 && on < 3 * 64, "{on}");
    assert_eq!(mask.get(2).any().int64_value(&[]), 0);
}
