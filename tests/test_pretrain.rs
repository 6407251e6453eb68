//! `mcsfau pretrain` end to end on synthetic shards (tiny model, CPU): a run
//! killed with SIGKILL after a checkpoint and resumed logs the same losses
//! as an uninterrupted run; the guards stop bad runs with clear messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use model::train::{run::log_of, state, synth};

/// The tiny preset with a 4-step cascade (fast), a checkpoint every 5 steps.
const CONFIG: &str = r#"
seed = 5
[model]
image_size = 64
[model.backbone]
width = 4
blocks = [1, 1, 1, 1]
[model.mfdc]
hidden = 64
dim = 32
[model.mfrr]
k = 4
sigma_max = 1.0
loc_unit = 2.0
r = 10.0
refiner_hidden = 32
[model.mfrr.transformer]
d_model = 32
heads = 4
encoder_layers = 1
decoder_layers = 1
ff_dim = 64
[model.mci]
hidden = 64
dim = 32
[optim]
lr = 0.01
[data.loader]
batch_size = 4
workers = 1
prefetch = 2
shuffle_buffer = 16
[output]
log_every = 1
checkpoint_every = 5
keep_checkpoints = 2
"#;

fn mcsfau() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcsfau"))
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    shards: PathBuf,
    config: PathBuf,
}

fn fixture(extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let shards = root.join("shards");
    synth::write_shards(&shards, 12, 64, 5, 3).unwrap();
    let config = root.join("run.toml");
    std::fs::write(&config, format!("{CONFIG}{extra}")).unwrap();
    Fixture { _dir: dir, root, shards, config }
}

fn args<'a>(f: &'a Fixture, out: &'a Path, steps: &'a str) -> Vec<&'a std::ffi::OsStr> {
    let mut v: Vec<&std::ffi::OsStr> = Vec::new();
    for s in ["pretrain", "--threads", "1", "--steps", steps, "--shards"] {
        v.push(s.as_ref());
    }
    v.extend([f.shards.as_os_str(), "--config".as_ref(), f.config.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    v
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn a_run_killed_after_a_checkpoint_and_resumed_logs_the_same_losses() {
    let f = fixture("");
    let (whole, broken) = (f.root.join("whole"), f.root.join("broken"));
    ok(mcsfau().args(args(&f, &whole, "24")).output().unwrap());

    // Kill the second run (SIGKILL) as soon as its step-10 checkpoint exists.
    let mut child = mcsfau().args(args(&f, &broken, "24")).spawn().unwrap();
    let ckpt = state::checkpoint_path(&broken, 10);
    let t0 = Instant::now();
    while !ckpt.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its step-10 checkpoint");
        assert!(t0.elapsed() < Duration::from_secs(60), "no checkpoint after 60 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!broken.join("model.safetensors").exists(), "killed before the end");
    let killed_at = log_of(&broken).unwrap().last().map_or(0, |r| r.step);
    assert!((10..24).contains(&killed_at), "killed at step {killed_at}");

    let refused = mcsfau().args(args(&f, &broken, "24")).output().unwrap();
    assert!(!refused.status.success(), "a run folder with checkpoints needs --resume");
    let mut resume = args(&f, &broken, "24");
    resume.push("--resume".as_ref());
    let out = ok(mcsfau().args(resume).output().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let from: u64 = stdout.split("trained steps ").nth(1).and_then(|s| s.split("..").next()).unwrap().parse().unwrap();
    assert!(from >= 10 && from % 5 == 0 && from <= killed_at, "resumed from step {from}: {stdout}");

    let (a, b) = (log_of(&whole).unwrap(), log_of(&broken).unwrap());
    assert_eq!(b.iter().map(|r| r.step).collect::<Vec<_>>(), (1..=24).collect::<Vec<_>>());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.step, x.epoch, x.losses, x.lr), (y.step, y.epoch, y.losses, y.lr), "step {}", x.step);
    }
    let steps: Vec<u64> = state::list(&broken).unwrap().iter().map(|c| c.0).collect();
    assert_eq!(steps, vec![20, 24], "the newest two checkpoints are kept");
    assert!(broken.join("losses.png").exists() && broken.join("config.json").exists());
}

#[test]
fn a_nan_loss_stops_the_run_naming_the_term_and_step_and_keeps_the_last_checkpoint() {
    let f = fixture("[debug]\nnan_at_step = 7\n");
    let out_dir = f.root.join("run");
    let out = mcsfau().args(args(&f, &out_dir, "20")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("loss term l_r is NaN at step 7"), "{stderr}");
    assert!(stderr.contains("step-00000005.safetensors"), "{stderr}");
    let steps: Vec<u64> = state::list(&out_dir).unwrap().iter().map(|c| c.0).collect();
    assert_eq!(steps, vec![5]);
    assert_eq!(log_of(&out_dir).unwrap().last().unwrap().step, 6, "step 7 is not logged");
}

#[test]
fn empty_and_mismatched_shard_sets_fail_before_training() {
    let f = fixture("");
    let empty = f.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let small = f.root.join("small");
    synth::write_shards(&small, 8, 32, 8, 0).unwrap();
    for (dir, want) in [(&empty, "no *.parquet shard"), (&small, "crops are 32x32 px but the model takes 64x64")] {
        let out_dir = f.root.join("out");
        let mut a = args(&f, &out_dir, "5");
        let i = a.iter().position(|s| *s == "--shards").unwrap();
        a[i + 1] = dir.as_os_str();
        let out = mcsfau().args(a).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
        assert!(!out_dir.join("log.jsonl").exists() && state::list(&out_dir).unwrap().is_empty());
    }
}

#[test]
fn a_manifest_selects_the_samples_an_epoch_visits() {
    let f = fixture("");
    let ids: Vec<String> = (0..8)
        .map(|i| schemas::FaceRow::make_sample_id(synth::SYNTH_DATASET, &format!("id{:05}", i % 7), "v", "", i))
        .collect();
    let list = f.root.join("ids.txt");
    std::fs::write(&list, format!("# 8 of 12\n{}\n", ids.join("\n"))).unwrap();
    let out_dir = f.root.join("run");
    let mut a = args(&f, &out_dir, "3");
    a.extend(["--manifest".as_ref(), list.as_os_str()]);
    ok(mcsfau().args(a).output().unwrap());
    let epochs: Vec<u64> = log_of(&out_dir).unwrap().iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, vec![0, 0, 1], "8 selected rows make 2 batches of 4 per epoch");

    std::fs::write(&list, "nobody/x/v#000001\n").unwrap();
    let out_dir = f.root.join("none");
    let mut a = args(&f, &out_dir, "3");
    a.extend(["--manifest".as_ref(), list.as_os_str()]);
    let out = mcsfau().args(a).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("0 rows selected, fewer than one batch of 4"), "{stderr}");
}

#[test]
fn a_resume_falls_back_past_a_corrupt_checkpoint_and_keeps_the_log_bytes() {
    let f = fixture("");
    let run = f.root.join("run");
    ok(mcsfau().args(args(&f, &run, "15")).output().unwrap());
    let log = std::fs::read(run.join("log.jsonl")).unwrap();
    let whole = log_of(&run).unwrap();
    let resume = || {
        let mut a = args(&f, &run, "15");
        a.push("--resume".as_ref());
        mcsfau().args(a).output().unwrap()
    };

    // Resuming a finished run rewrites nothing of its log.
    ok(resume());
    assert_eq!(std::fs::read(run.join("log.jsonl")).unwrap(), log, "the log of a finished run is left byte for byte");

    // The newest checkpoint is cut short (a full disk, a copy stopped
    // halfway): the resume says so and continues from the one before.
    let newest = state::checkpoint_path(&run, 15);
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let out = ok(resume());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    let older = state::checkpoint_path(&run, 10).file_name().unwrap().to_string_lossy().into_owned();
    assert!(stderr.contains(&name) && stderr.contains("does not verify") && stderr.contains(&older), "{stderr}");

    // The ten steps logged up to the kept checkpoint keep their bytes; the
    // replayed steps equal the uninterrupted run's.
    let now = std::fs::read(run.join("log.jsonl")).unwrap();
    let first10: usize = log.split_inclusive(|&b| b == b'\n').take(10).map(<[u8]>::len).sum();
    assert_eq!(now[..first10], log[..first10]);
    let again = log_of(&run).unwrap();
    assert_eq!(again.iter().map(|r| r.step).collect::<Vec<_>>(), (1..=15).collect::<Vec<_>>());
    for (x, y) in whole.iter().zip(&again) {
        assert_eq!((x.step, x.losses, x.lr), (y.step, y.losses, y.lr), "step {}", x.step);
    }

    // No checkpoint verifies: the error names them, nothing is trained.
    for (_, p) in state::list(&run).unwrap() {
        std::fs::write(&p, b"cut").unwrap();
    }
    let out = resume();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("no checkpoint of the run verifies"), "{text}");
}

/// Under torchrun's variables `mcsfau pretrain` trains data-parallel (the
/// semantics are tested in model/tests/dist_train.rs): rank 0 writes the run
/// folder and says so, rank 1 reports its share; a launch without
/// MASTER_ADDR is refused before any work.
#[test]
fn two_ranks_of_mcsfau_pretrain_train_together_and_rank_0_writes() {
    let f = fixture("");
    let out = f.root.join("dp");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let children: Vec<_> = (0..2)
        .map(|r| {
            let mut c = mcsfau();
            c.args(args(&f, &out, "2")).args(["--device", "cpu", "--quiet"]);
            c.envs([("RANK", r.to_string().as_str()), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "127.0.0.1")]);
            c.env("MASTER_PORT", &port).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let outs: Vec<Output> = children.into_iter().map(|c| ok(c.wait_with_output().unwrap())).collect();
    let (o0, o1) = (String::from_utf8_lossy(&outs[0].stdout), String::from_utf8_lossy(&outs[1].stdout));
    assert!(o0.contains("trained steps 0..2 of 2 on 2 ranks"), "{o0}");
    assert!(o1.contains("rank 1 of 2: trained steps 0..2 of 2") && o1.contains("rank 0 wrote the run folder"), "{o1}");
    assert_eq!(log_of(&out).unwrap().len(), 2, "one log, written once");
    let lone = mcsfau().args(args(&f, &f.root.join("x"), "2")).envs([("RANK", "1"), ("WORLD_SIZE", "2")]).output();
    let lone = lone.unwrap();
    let err = String::from_utf8_lossy(&lone.stderr);
    assert_eq!(lone.status.code(), Some(2), "{err}");
    assert!(err.contains("MASTER_ADDR is not set"), "{err}");
    assert!(!f.root.join("x").exists());
}
