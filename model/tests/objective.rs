//! Behaviour of the whole tiny model: the loss is finite and trains every
//! online component, the target only moves by EMA, ablation switches really
//! remove their terms, and the draws control jitter and masks.

use std::collections::HashMap;

use model::config::{CascadeTarget, Detector, LdScale, MaskMode, ModelConfig};
use model::mcsfau::{Batch, Draws, McSfau};
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor};

struct Inputs {
    p: Tensor,
    p1: Tensor,
    p2: Tensor,
    landmarks: Tensor,
}

fn inputs(cfg: &ModelConfig, b: i64) -> Inputs {
    let s = cfg.image_size;
    let img = || Tensor::randn([b, 3, s, s], (Kind::Float, Device::Cpu));
    let landmarks = Tensor::rand([b, 49, 2], (Kind::Float, Device::Cpu)) * (s as f64 - 8.0) + 4.0;
    Inputs { p: img(), p1: img(), p2: img(), landmarks }
}

fn batch(i: &Inputs) -> Batch<'_> {
    Batch { p: &i.p, p1: &i.p1, p2: &i.p2, landmarks: &i.landmarks }
}

fn snapshot(vs: &tch::nn::VarStore) -> HashMap<String, Tensor> {
    vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect()
}

#[test]
fn total_is_finite_and_every_online_component_gets_gradients_but_the_target_none() {
    tch::manual_seed(0);
    let cfg = ModelConfig::tiny();
    let model = McSfau::new(&cfg, Device::Cpu).unwrap();
    let x = inputs(&cfg, 4);
    let mut draws = Draws::sample(&cfg, 4, Device::Cpu);
    draws.apply_mask = Tensor::ones([4], (Kind::Bool, Device::Cpu));
    let losses = model.losses(&batch(&x), &draws, true).unwrap();
    let v = losses.values();
    assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
    assert!(v[..4].iter().all(|&x| x > 0.0), "every term is active: {v:?}");
    let want = v[0] + v[1] + v[2] + 0.05 * v[3];
    assert!((v[4] - want).abs() < 1e-4 * want, "eq. 7: {v:?}");

    losses.total.backward();
    let mut by_component: HashMap<String, f64> = HashMap::new();
    for (name, t) in model.online().variables() {
        if model::byol::is_buffer(&name) {
            continue;
        }
        let g = t.grad();
        assert!(g.defined(), "{name} got no gradient");
        *by_component.entry(name.split('.').next().unwrap().to_string()).or_default() +=
            g.abs().sum(Kind::Float).double_value(&[]);
    }
    for comp in ["backbone", "projector", "predictor", "locator", "reconstructor", "mci"] {
        assert!(by_component.get(comp).copied().unwrap_or(0.0) > 0.0, "{comp}: {by_component:?}");
    }
    for (name, t) in model.target().variables() {
        assert!(!t.requires_grad() && !t.grad().defined(), "target {name} is in the graph");
    }
}

#[test]
fn optimizer_steps_leave_the_target_to_the_ema_and_lower_the_loss() {
    tch::manual_seed(1);
    let cfg = ModelConfig::tiny();
    let model = McSfau::new(&cfg, Device::Cpu).unwrap();
    let mut opt = tch::nn::Sgd { momentum: 0.9, ..Default::default() }.build(model.online(), 1e-3).unwrap();
    let x = inputs(&cfg, 4);
    let draws = Draws::sample(&cfg, 4, Device::Cpu);
    let first = model.losses(&batch(&x), &draws, true).unwrap().values()[4];
    for _ in 0..8 {
        let before = snapshot(model.target());
        let losses = model.losses(&batch(&x), &draws, true).unwrap();
        opt.backward_step(&losses.total);
        // The optimizer step changed no target parameter (buffers move with
        // the target's own train-mode forwards).
        for (name, t) in model.target().variables() {
            if !model::byol::is_buffer(&name) {
                assert!(t.equal(&before[&name]), "optimizer moved target {name}");
            }
        }
        let online = snapshot(model.online());
        let pre = snapshot(model.target());
        model.ema_update().unwrap();
        let w = "backbone.conv1.weight";
        let want = &pre[w] * 0.99 + &online[w] * 0.01;
        let got = &model.target().variables()[w];
        let err = (got - &want).abs().max().double_value(&[]);
        assert!(err < 1e-6, "EMA error {err}: {}", (&pre[w] - &online[w]).abs().max().double_value(&[]));
    }
    let last = model.losses(&batch(&x), &draws, true).unwrap().values()[4];
    assert!(last < first, "8 steps on one batch did not lower the loss: {first} -> {last}");
}

#[test]
fn ablation_switches_remove_their_terms_and_modules() {
    tch::manual_seed(2);
    let mut cfg = ModelConfig::tiny();
    cfg.mfrr.enabled = false;
    let model = McSfau::new(&cfg, Device::Cpu).unwrap();
    let x = inputs(&cfg, 2);
    let l = model.losses(&batch(&x), &Draws::sample(&cfg, 2, Device::Cpu), true).unwrap();
    let v = l.values();
    assert_eq!(&v[1..4], &[0.0, 0.0, 0.0], "MFRR off: L_d, L_r, L_c are 0");
    assert_eq!(v[4], v[0]);
    assert!(l.mask.is_none() && l.refined.is_none());
    let names = model.online().variables();
    assert!(!names.keys().any(|n| ["locator", "refiner", "reconstructor", "mci"].iter().any(|c| n.starts_with(c))));

    let mut cfg = ModelConfig::tiny();
    cfg.mci.enabled = false;
    let model = McSfau::new(&cfg, Device::Cpu).unwrap();
    let l = model.losses(&batch(&x), &Draws::sample(&cfg, 2, Device::Cpu), true).unwrap();
    let v = l.values();
    assert_eq!(v[3], 0.0, "MCI off: L_c is 0");
    assert!(v[1] > 0.0 && v[2] > 0.0);
    assert!(!model.online().variables().keys().any(|n| n.starts_with("mci")));

    // The locating head only: no L_s (no projection), no reconstruction; the
    // detector alone trains the backbone.
    let mut cfg = ModelConfig::tiny();
    cfg.mfdc.enabled = false;
    cfg.mfrr.reconstruct = false;
    assert!(McSfau::new(&cfg, Device::Cpu).unwrap_err().to_string().contains("mci.enabled"), "MCI needs both");
    cfg.mci.enabled = false;
    let model = McSfau::new(&cfg, Device::Cpu).unwrap();
    let l = model.losses(&batch(&x), &Draws::sample(&cfg, 2, Device::Cpu), true).unwrap();
    let v = l.values();
    assert_eq!((v[0], v[2], v[3]), (0.0, 0.0, 0.0), "only L_d: {v:?}");
    assert!(v[1] > 0.0 && v[4] == v[1]);
    assert!(l.projection.is_none() && l.mask.is_none() && l.located.is_some());
    let names = model.online().variables();
    assert!(!names.keys().any(|n| n.starts_with("reconstructor") || n.starts_with("mci")));
    // The heads' output layers start at zero, so the first backward reaches
    // them (and not yet the backbone); after one SGD step it reaches both.
    let mut opt = tch::nn::Sgd::default().build(model.online(), 0.1).unwrap();
    let grad_sum = |n: &str| {
        let g = names[n].grad();
        if g.defined() {
            g.abs().sum(Kind::Float).double_value(&[])
        } else {
            0.0
        }
    };
    opt.backward_step(&l.total);
    assert!(grad_sum("locator.global.fc.weight") > 0.0);
    let l = model.losses(&batch(&x), &Draws::sample(&cfg, 2, Device::Cpu), true).unwrap();
    opt.zero_grad();
    l.total.backward();
    assert!(grad_sum("backbone.conv1.weight") > 0.0, "L_d reaches the backbone");
    // Nothing left to train is refused.
    cfg.mfrr.enabled = false;
    assert!(McSfau::new(&cfg, Device::Cpu).unwrap_err().to_string().contains("no loss term"));
}

#[test]
fn gamma_r_and_sigma_control_the_masks_and_the_jitter() {
    tch::manual_seed(3);
    let base = ModelConfig::tiny();
    let x = inputs(&base, 4);
    let masked = |cfg: &ModelConfig, draws: &Draws| {
        let model = McSfau::new(cfg, Device::Cpu).unwrap();
        let l = model.losses(&batch(&x), draws, false).unwrap();
        l.mask.unwrap().to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[])
    };
    // gamma = 0: never applied; gamma = 1: always (and a huge r masks all).
    let mut cfg = base.clone();
    cfg.mfrr.gamma = 0.0;
    cfg.mfrr.r = 1000.0;
    assert_eq!(masked(&cfg, &Draws::sample(&cfg, 4, Device::Cpu)), 0);
    cfg.mfrr.gamma = 1.0;
    assert_eq!(masked(&cfg, &Draws::sample(&cfg, 4, Device::Cpu)), 4 * 4);
    // r = 0: squares of no area cover no cell centre.
    cfg.mfrr.r = 0.0;
    assert_eq!(masked(&cfg, &Draws::sample(&cfg, 4, Device::Cpu)), 0);
    // Per batch: one decision for all samples.
    let mut cfg = base.clone();
    cfg.mfrr.mask_mode = MaskMode::PerBatch;
    for _ in 0..5 {
        let d = Draws::sample(&cfg, 8, Device::Cpu).apply_mask.to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[]);
        assert!(d == 0 || d == 8, "{d}");
    }
    // The denoise detector: sigma_max = 0, the noise has no effect (the
    // literal reading of eq. 3); otherwise it changes L_d. The locate
    // detector draws nothing: its L_d is the same for any draw.
    // (One model per config, run on two different draws: the tests share
    // libtorch's global generator across threads, so seeds do not replay.)
    let l_d_of_two_draws = |cfg: &ModelConfig| {
        let model = McSfau::new(cfg, Device::Cpu).unwrap();
        let run = || model.losses(&batch(&x), &Draws::sample(cfg, 4, Device::Cpu), false).unwrap().values()[1];
        (run(), run())
    };
    let (a, b) = l_d_of_two_draws(&base);
    assert_eq!(a, b, "the locate detector read the jitter");
    let mut base = base;
    base.mfrr.detector = Detector::Denoise;
    base.mfrr.ld_scale = LdScale::Jitter;
    base.mfrr.cascade_target = CascadeTarget::Previous;
    let mut cfg = base.clone();
    cfg.mfrr.sigma_max = 0.0;
    cfg.mfrr.ld_scale = LdScale::PixelSum; // the scale-free form divides by sigma_max^2
    let (a, b) = l_d_of_two_draws(&cfg);
    assert_eq!(a, b);
    let (a, b) = l_d_of_two_draws(&base);
    assert_ne!(a, b);
    // k = 2: one refinement step, noise [1, B, 49, 2].
    let mut cfg = base;
    cfg.mfrr.k = 2;
    assert_eq!(Draws::sample(&cfg, 4, Device::Cpu).noise.size(), [1, 4, 49, 2]);
    assert!(l_d_of_two_draws(&cfg).0 > 0.0);
}

#[test]
fn wrong_shapes_are_refused_with_the_input_named() {
    let cfg = ModelConfig::tiny();
    let model = McSfau::new(&cfg, Device::Cpu).unwrap();
    let x = inputs(&cfg, 2);
    let bad = Tensor::zeros([2, 68, 2], (Kind::Float, Device::Cpu));
    let b = Batch { landmarks: &bad, ..batch(&x) };
    let err = model.losses(&b, &Draws::sample(&cfg, 2, Device::Cpu), true).unwrap_err().to_string();
    assert!(err.contains("landmarks") && err.contains("[2, 49, 2]"), "{err}");
}
