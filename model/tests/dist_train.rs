//! Data-parallel pretraining on the CPU: `mcsfau-train pretrain` processes
//! on localhost, launched with torchrun's variables, meeting over c10d's
//! TCPStore and all-reducing with Gloo.
//!
//! * 2 ranks x batch B train the same weights as 1 process x batch 2B;
//! * every rank ends with the same weights (online and EMA target);
//! * a rank that dies makes the others fail at once, naming the last
//!   checkpoint; resuming continues exactly; resuming at another world
//!   size says what it does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use model::dist::norm::BatchNormMode;
use model::train::PretrainConfig;
use tch::Tensor;

const BIN: &str = env!("CARGO_BIN_EXE_mcsfau-train");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// 64 synthetic 64x64 faces.
fn shards(dir: &Path) -> PathBuf {
    let out = dir.join("shards");
    model::train::synth::write_shards(&out, 64, 64, 16, 5).unwrap();
    out
}

/// The tiny preset at `batch` per rank, without dropout (its masks depend on
/// the batch shape), diagnostics or plots.
fn config(dir: &Path, name: &str, batch: usize, steps: u64, bn: BatchNormMode) -> PathBuf {
    config_with(dir, name, batch, steps, bn, true)
}

/// [`config`], with the gradient all-reduce overlapped with backward (c10d's
/// reducer) or after it (`overlap` false).
fn config_with(dir: &Path, name: &str, batch: usize, steps: u64, bn: BatchNormMode, overlap: bool) -> PathBuf {
    let mut c = PretrainConfig::tiny();
    c.dist.overlap = overlap;
    c.model.mfrr.transformer.dropout = 0.0;
    c.data.loader.batch_size = batch;
    c.schedule.max_steps = Some(steps);
    c.output.checkpoint_every = 2;
    c.output.diagnostics_every = 0;
    c.output.plot = false;
    c.dist.batch_norm = bn;
    c.seed = 11;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(&c).unwrap()).unwrap();
    path
}

fn pretrain(dir: &Path, cfg: &Path, out: &str, resume: bool) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(["pretrain", "--shards", "shards", "--out", out, "--device", "cpu", "--threads", "1"]);
    cmd.arg("--config").arg(cfg).args(resume.then_some("--resume"));
    cmd.env_remove("RANK").env_remove("WORLD_SIZE").env_remove("SLURM_NTASKS");
    cmd
}

/// Runs `world` ranks; `abort` = (rank, step) aborts that rank before the step.
fn ranks(dir: &Path, cfg: &Path, out: &str, world: usize, resume: bool, abort: Option<(usize, u64)>) -> Vec<Output> {
    ranks_env(dir, cfg, out, world, resume, abort, &[])
}

fn ranks_env(
    dir: &Path,
    cfg: &Path,
    out: &str,
    world: usize,
    resume: bool,
    abort: Option<(usize, u64)>,
    env: &[(&str, &str)],
) -> Vec<Output> {
    let port = free_port().to_string();
    let children: Vec<Child> = (0..world)
        .map(|r| {
            let mut cmd = pretrain(dir, cfg, out, resume);
            cmd.envs([("RANK", r.to_string()), ("WORLD_SIZE", world.to_string()), ("LOCAL_RANK", r.to_string())]);
            cmd.envs([("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", port.as_str())]);
            cmd.arg("--dist-timeout").arg("60").envs(env.iter().copied());
            if let Some((_, step)) = abort.filter(|a| a.0 == r) {
                cmd.env("MCSFAU_TEST_ABORT_AT_STEP", step.to_string());
            }
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

fn ok(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn weights(path: &Path) -> Vec<(String, Tensor)> {
    let mut v = Tensor::read_safetensors(path).unwrap();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Largest difference over the tensors of two model files, relative to
/// each tensor's largest magnitude (at least 1: BatchNorm running variances
/// reach the hundreds).
fn max_diff(a: &Path, b: &Path) -> f64 {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|((na, ta), (nb, tb))| {
            assert_eq!(na, nb);
            let (ta, tb) = (ta.to_kind(tch::Kind::Double), tb.to_kind(tch::Kind::Double));
            let scale = ta.abs().max().double_value(&[]).max(1.0);
            (ta - tb).abs().max().double_value(&[]) / scale
        })
        .fold(0.0, f64::max)
}

fn losses(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["total"].as_f64().unwrap())
        .collect()
}

/// `world` ranks of `cfg` into `out`; rank 0's summary after checking that
/// every rank ends with the same weights (online and EMA target).
fn dp(d: &Path, cfg: &Path, out: &str, world: usize, env: &[(&str, &str)]) -> serde_json::Value {
    let outs = ranks_env(d, cfg, out, world, false, None, env);
    let sums: Vec<serde_json::Value> = outs.iter().map(ok).collect();
    for (r, s) in sums.iter().enumerate() {
        assert_eq!((s["rank"].as_u64(), s["world_size"].as_u64()), (Some(r as u64), Some(world as u64)));
        assert_eq!(s["weights_sha256"], sums[0]["weights_sha256"], "{out}: rank {r}'s weights differ from rank 0's");
    }
    sums[0].clone()
}

#[test]
fn two_ranks_at_batch_b_train_the_weights_of_one_process_at_batch_2b() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let model = |run: &str| d.join(run).join("model.safetensors");
    let check_logs = |a: &str, b: &str, steps: usize| {
        let (a, b) = (losses(&d.join(a).join("log.jsonl")), losses(&d.join(b).join("log.jsonl")));
        assert_eq!((a.len(), b.len()), (steps, steps));
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1e-5 * x.abs()), "logged losses {a:?} vs {b:?}");
    };
    // Frozen BatchNorm: no statistic couples the samples of a batch.
    let (one, two) = (config(d, "f1", 8, 4, BatchNormMode::Frozen), config(d, "f2", 4, 4, BatchNormMode::Frozen));
    ok(&pretrain(d, &one, "frozen-single", false).output().unwrap());
    let overlapped = dp(d, &two, "frozen-dp", 2, &[]);
    let diff = max_diff(&model("frozen-single"), &model("frozen-dp"));
    eprintln!("frozen BatchNorm, 4 steps: 2 ranks x 4 vs 1 x 8: max relative weight difference {diff:.2e}");
    assert!(diff < 1e-5, "{diff:e}");
    check_logs("frozen-single", "frozen-dp", 4);
    // Reduced after backward instead of during it: the same sums.
    let after = config_with(d, "f2-after", 4, 4, BatchNormMode::Frozen, false);
    let after = dp(d, &after, "frozen-dp-after", 2, &[]);
    assert_eq!(after["weights_sha256"], overlapped["weights_sha256"], "overlapped and post-backward reductions differ");

    // Synchronised BatchNorm, against one process at world size 1 through
    // the same kernel. Two steps: batch statistics over 8 samples make the
    // tiny model's training chaotic, rounding differences (1e-7 after one
    // step) grow tenfold a step, where frozen BatchNorm stays at 1e-7.
    let (one, two) = (config(d, "s1", 8, 2, BatchNormMode::Sync), config(d, "s2", 4, 2, BatchNormMode::Sync));
    dp(d, &one, "sync-one", 1, &[("MCSFAU_TEST_SYNC_BN_ONE_RANK", "1")]);
    dp(d, &two, "sync-dp", 2, &[]);
    let diff = max_diff(&model("sync-one"), &model("sync-dp"));
    eprintln!("synchronised BatchNorm, 2 steps: 2 ranks x 4 vs 1 x 8: max relative weight difference {diff:.2e}");
    assert!(diff < 1e-5, "{diff:e}");
    check_logs("sync-one", "sync-dp", 2);
    // Against the plain single process (libtorch's own BatchNorm kernel):
    // the kernels agree to 1e-7 per layer (tests/dist_group.rs), which the
    // chaotic dynamics amplify to ~1e-4; per-rank statistics are far off.
    ok(&pretrain(d, &one, "sync-single", false).output().unwrap());
    let native = max_diff(&model("sync-single"), &model("sync-dp"));
    let local = config(d, "l2", 4, 2, BatchNormMode::Local);
    dp(d, &local, "local-dp", 2, &[]);
    let off = max_diff(&model("sync-single"), &model("local-dp"));
    eprintln!("against libtorch's kernel: synchronised {native:.2e}, per-rank statistics {off:.2e}");
    assert!(native < 1e-3 && off > 10.0 * native, "synchronised {native:e}, local {off:e}");
}

#[test]
fn a_killed_rank_fails_the_job_at_once_and_resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let cfg = config(d, "c", 4, 6, BatchNormMode::Sync);
    let whole = ranks(d, &cfg, "whole", 2, false, None);
    let digest = ok(&whole[0])["weights_sha256"].clone();

    // Rank 1 dies (SIGABRT) before step 4; checkpoints come every 2 steps.
    let t0 = Instant::now();
    let killed = ranks(d, &cfg, "killed", 2, false, Some((1, 4)));
    let waited = t0.elapsed();
    assert!(!killed[1].status.success());
    let err = String::from_utf8_lossy(&killed[0].stderr);
    assert_eq!(killed[0].status.code(), Some(2), "{err}");
    assert!(err.contains("data-parallel training stopped") && err.contains("rank 0 of 2"), "{err}");
    assert!(err.contains("last checkpoint: killed/checkpoints/step-00000002.safetensors"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("Exception raised from"), "{err}");
    assert!(waited < Duration::from_secs(60), "the survivor took {waited:?} to fail");
    copy_dir(&d.join("killed"), &d.join("killed-copy"));

    // Resumed at the same world size: the uninterrupted run, bit for bit.
    let resumed = ranks(d, &cfg, "killed", 2, true, None);
    let r0 = ok(&resumed[0]);
    assert_eq!((r0["resumed_from"].as_u64(), r0["steps"].as_u64()), (Some(2), Some(6)));
    assert_eq!(r0["weights_sha256"], digest, "resume did not continue exactly");
    assert_eq!(ok(&resumed[1])["weights_sha256"], digest);
    assert_eq!(max_diff(&d.join("whole/model.safetensors"), &d.join("killed/model.safetensors")), 0.0);
    assert_eq!(losses(&d.join("whole/log.jsonl")), losses(&d.join("killed/log.jsonl")));

    // Resumed by one process: it says what it keeps and where it restarts.
    let one = pretrain(d, &cfg, "killed-copy", true).output().unwrap();
    let s = ok(&one);
    let err = String::from_utf8_lossy(&one.stderr);
    assert!(err.contains("written by 2 process(es), this run has 1") && err.contains("restarts at epoch"), "{err}");
    assert_eq!((s["resumed_from"].as_u64(), s["world_size"].as_u64()), (Some(2), Some(1)));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn ranks_that_find_different_checkpoints_refuse_to_train() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let cfg = config(d, "c", 4, 2, BatchNormMode::Sync);
    ok(&pretrain(d, &cfg, "a", false).output().unwrap());
    std::fs::create_dir_all(d.join("b")).unwrap();
    // Rank 0 resumes "a" (step 2), rank 1 an empty folder: as if --out were
    // a local folder on each machine.
    let port = free_port().to_string();
    let children: Vec<Child> = ["a", "b"]
        .iter()
        .enumerate()
        .map(|(r, out)| {
            let mut cmd = pretrain(d, &cfg, out, true);
            cmd.envs([("RANK", r.to_string().as_str()), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "127.0.0.1")]);
            cmd.env("MASTER_PORT", &port).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("the ranks start from different points") && err.contains("all ranks see"), "{err}");
    }
}

/// Slurm's variables (`srun` with 2 tasks) launch the same run torchrun's do.
#[test]
fn srun_variables_launch_the_same_run_as_torchrun_variables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shards(d);
    let cfg = config(d, "c", 4, 2, BatchNormMode::Sync);
    let torchrun = dp(d, &cfg, "torchrun", 2, &[]);
    let port = free_port().to_string();
    let children: Vec<Child> = (0..2)
        .map(|r| {
            let mut cmd = pretrain(d, &cfg, "srun", false);
            cmd.envs([("SLURM_PROCID", r.to_string().as_str()), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "0")]);
            cmd.envs([("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", port.as_str())]);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let outs: Vec<serde_json::Value> = children.into_iter().map(|c| ok(&c.wait_with_output().unwrap())).collect();
    assert_eq!((outs[1]["rank"].as_u64(), outs[1]["world_size"].as_u64()), (Some(1), Some(2)));
    assert_eq!(outs[0]["weights_sha256"], torchrun["weights_sha256"]);
    assert_eq!(outs[1]["weights_sha256"], torchrun["weights_sha256"]);
}
