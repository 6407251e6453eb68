//! The Rust model against the PyTorch reference
//! (`scripts/reference/model_reference.py`, which wrote `tests/data/`):
//! same weights, same inputs, same noise and mask draws; L_s, L_d, L_r,
//! L_c, the total, p_k, F_p (train and eval mode), gradients and one EMA
//! update agree within 1e-5 (relative to max(1, |value|)); the masks agree
//! exactly. `just model-reference` reruns the script into a temporary folder
//! and this test against it; the script's default output folder replaces the
//! checked-in files.

use std::collections::HashMap;
use std::path::PathBuf;

use model::config::ModelConfig;
use model::masking::landmark_mask;
use model::mcsfau::{Batch, Draws, McSfau};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

const TOL: f64 = 1e-5;

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

/// Largest |a - b| / max(1, |b|).
fn max_rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    ((&a - &b).abs() / b.abs().clamp_min(1.0)).max().double_value(&[])
}

fn assert_close(what: &str, a: &Tensor, b: &Tensor) {
    let e = max_rel_err(a, b);
    assert!(e <= TOL, "{what}: error {e:e} > {TOL:e}");
}

fn load_into(store: &tch::nn::VarStore, file: &HashMap<String, Tensor>, prefix: &str) {
    tch::no_grad(|| {
        for (name, mut var) in store.variables() {
            let key = format!("{prefix}{name}");
            let t = file.get(&key).unwrap_or_else(|| panic!("{key} missing in the reference file"));
            assert_eq!(t.size(), var.size(), "{key}");
            var.copy_(t);
        }
    });
    let n = file.keys().filter(|k| k.starts_with(prefix)).count();
    assert_eq!(n, store.variables().len(), "{prefix}: the reference has variables the Rust model lacks");
}

#[test]
fn tiny_model_matches_pytorch() {
    // One thread, as the reference ran: BatchNorm over a batch of 3 is
    // ill-conditioned, and with 2 threads the different summation order
    // alone moves some gradients by ~2e-4 (relative).
    tch::set_num_threads(1);
    let file = read("mcsfau_tiny.safetensors");
    let cfg = metadata_config("mcsfau_tiny.safetensors");
    let mut tiny = ModelConfig::tiny();
    tiny.mfrr.transformer.dropout = 0.0;
    assert_eq!(cfg, tiny, "the reference's config is the tiny preset without dropout");

    let model = McSfau::new(&cfg, Device::Cpu).unwrap();
    load_into(model.online(), &file, "online.");
    load_into(model.target(), &file, "target.");
    let batch = Batch { p: &file["in.p"], p1: &file["in.p1"], p2: &file["in.p2"], landmarks: &file["in.landmarks"] };
    let draws = Draws { noise: file["in.noise"].shallow_clone(), apply_mask: file["in.apply_mask"].shallow_clone() };

    let losses = model.losses(&batch, &draws, true).unwrap();
    for (name, t) in [("l_s", &losses.l_s), ("l_d", &losses.l_d), ("l_r", &losses.l_r), ("l_c", &losses.l_c)] {
        assert_close(name, t, &file[&format!("out.{name}")]);
    }
    assert_close("total", &losses.total, &file["out.total"]);
    assert_close("p_k", losses.refined.as_ref().unwrap(), &file["out.refined"]);
    let mask = losses.mask.as_ref().unwrap();
    assert!(mask.equal(&file["out.mask"]), "mask differs:\n{mask}\n{}", file["out.mask"]);
    assert!(mask.any().int64_value(&[]) == 1, "the reference should mask some cells");

    losses.total.backward();
    let online = model.online().variables();
    let mut checked = 0;
    for (key, want) in file.iter().filter(|(k, _)| k.starts_with("grad.")) {
        let name = &key["grad.".len()..];
        assert_close(key, &online[name].grad(), want);
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} gradients checked");

    // Backbone forward: train mode (batch statistics) and eval mode (running
    // statistics after the three train-mode forwards above).
    let f_eval = tch::no_grad(|| model.backbone().forward_t(batch.p, false));
    assert_close("F_p (eval)", &f_eval, &file["out.f_p_eval"]);
    let f_p = tch::no_grad(|| model.backbone().forward_t(batch.p, true));
    assert_close("F_p (train)", &f_p, &file["out.f_p"]);

    model.ema_update().unwrap();
    let target = model.target().variables();
    let mut n = 0;
    for (key, want) in file.iter().filter(|(k, _)| k.starts_with("ema.")) {
        assert_close(key, &target[&key["ema.".len()..]], want);
        n += 1;
    }
    let params = target.keys().filter(|k| !model::byol::is_buffer(k)).count();
    assert_eq!(n, params, "every target parameter is checked");
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
