//! The pretraining loop on synthetic shards with the tiny preset: the total
//! loss falls, every term stays finite, the run's outputs load.

use model::train::{pretrain, synth, NoProgress, PretrainConfig, RunOptions};
use tch::Device;

fn options(shards: &std::path::Path, out: &std::path::Path) -> RunOptions {
    RunOptions {
        shards: shards.to_path_buf(),
        manifest: None,
        split: None,
        out: out.to_path_buf(),
        resume: false,
        device: Device::Cpu,
        dist: None,
    }
}

#[test]
fn total_loss_falls_over_50_steps_and_the_outputs_load() {
    // One libtorch thread: on a loaded 2-core machine more threads only spin.
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    synth::write_shards(&shards, 8, 64, 8, 1).unwrap();
    let mut cfg = PretrainConfig::tiny();
    // A 4-step cascade instead of 50 keeps the test fast; same code path.
    cfg.model.mfrr.k = 4;
    cfg.schedule.max_steps = Some(50);
    cfg.output.checkpoint_every = 25;
    let out = dir.path().join("run");
    let t0 = std::time::Instant::now();
    let summary = pretrain(cfg.clone(), &options(&shards, &out), &NoProgress).unwrap();
    eprintln!("50 tiny steps: {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!((summary.steps, summary.total_steps), (50, 50));

    let log = model::train::run::log_of(&out).unwrap();
    assert_eq!(log.iter().map(|r| r.step).collect::<Vec<_>>(), (1..=50).collect::<Vec<_>>());
    for r in &log {
        assert!(r.losses.named().iter().all(|(_, v)| v.is_finite()), "step {}: {:?}", r.step, r.losses);
        let l = &r.losses;
        let eq7 = l.l_s + l.l_d + l.l_r + cfg.model.mci.alpha * l.l_c;
        assert!((eq7 - l.total).abs() < 1e-4 * l.total.abs().max(1.0), "step {}: eq. 7 {eq7} vs {}", r.step, l.total);
        assert!(r.lr > 0.0 && r.lr <= cfg.optim.lr && (0.0..=1.0).contains(&r.data_wait));
    }
    // The learning diagnostics, every 5 steps (the tiny preset's cadence).
    let diag: Vec<_> = log.iter().filter_map(|r| r.diagnostics.map(|d| (r.step, d))).collect();
    assert_eq!(diag.iter().map(|d| d.0).collect::<Vec<_>>(), (1..=10).map(|k| 5 * k).collect::<Vec<_>>());
    for (step, d) in &diag {
        let spread = d.proj_std.expect("MFDC is on");
        assert!(spread > 0.0 && spread < 2.0, "step {step}: spread {spread}");
        let g = d.grad_norm;
        assert!([g.l_s, g.l_d, g.l_r, g.l_c].iter().all(|v| v.is_finite() && *v >= 0.0), "step {step}: {g:?}");
        assert!(g.l_s > 0.0 && g.l_d > 0.0, "step {step}: {g:?}");
        assert!(d.drift_px.unwrap() >= 0.0 && (0.0..=1.0).contains(&d.mask_fraction.unwrap()), "step {step}: {d:?}");
    }
    // L_r reaches the backbone through the unmasked cells: on a batch whose
    // faces were all masked (at the tiny preset's 2x2 map the squares cover
    // every cell) it sends nothing, so it is asked for on some steps only.
    assert!(diag.iter().any(|(_, d)| d.grad_norm.l_r > 0.0 && d.grad_norm.l_c > 0.0), "{diag:?}");
    // The landmark detector leaves the template: its p_2 ends closer to the
    // landmarks than the template it starts from.
    let (_, last_diag) = diag.last().unwrap();
    let (loc, floor) = (last_diag.loc_rms_px.unwrap(), last_diag.loc_template_rms_px.unwrap());
    assert!(loc < floor, "p_2 {loc} px from the landmarks, the template {floor} px");
    let mean = |rs: &[model::train::LogRecord]| rs.iter().map(|r| r.losses.total).sum::<f64>() / rs.len() as f64;
    let (first, last) = (mean(&log[..10]), mean(&log[40..]));
    assert!(last < 0.8 * first, "total loss did not fall: first 10 steps {first}, last 10 {last}");

    let cfg_back: PretrainConfig =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg_back, cfg);
    let ckpts = model::train::state::list(&out).unwrap();
    assert_eq!(ckpts.iter().map(|c| c.0).collect::<Vec<_>>(), vec![25, 50]);
    let (state, _) = model::train::state::read_state(&ckpts[1].1).unwrap();
    assert_eq!((state.step, state.config.clone()), (50, cfg.clone()));
    let (net, meta) = model::checkpoint::load(&summary.model, Device::Cpu).unwrap();
    assert_eq!((meta.step, net.config()), (50, &cfg.model));
    assert!(out.join("losses.png").metadata().unwrap().len() > 1000);
}
