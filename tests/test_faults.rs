//! Faults injected into the commands' writes: a write that fails partway
//! (`RLIMIT_FSIZE`, as a full disk) and `kill -9` at several moments, each
//! followed by a rerun that must equal an uninterrupted run; and the guards
//! that keep two runs from mixing in one preprocess `--out`.

mod support;

use std::path::Path;
use std::process::Command;

use support::faults::*;
use support::files_under as snapshot;

#[test]
fn a_write_that_fails_partway_leaves_the_previous_outputs_and_a_rerun_matches() {
    let e = env();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let audit = |r: &Path| {
        vec![
            "audit".to_string(),
            "--shards".into(),
            e.root.join("good").display().to_string(),
            "--report".into(),
            r.display().to_string(),
        ]
    };
    let args = audit(&report);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = mcsfau(&args, &e.root);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = snapshot(&report);
    let expected = comparable(&report);
    // a 24 KiB cap: the reports fit, the PNG plots do not
    let o = with_file_size_limit(&args, &e.root, 24);
    assert_refused(&o, "audit with a full disk", None, "File too large");
    assert_clean(&report, "audit with a full disk");
    assert_eq!(snapshot(&report).keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    for (p, b) in &before {
        let now = std::fs::read(p).unwrap();
        // each file is either the previous one or a complete new one
        if &now != b {
            assert!(
                p.extension().is_some_and(|x| x == "json" || x == "md"),
                "{} replaced by a partial file",
                p.display()
            );
        }
    }
    let again = mcsfau(&args, &e.root);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(comparable(&report), expected, "the rerun matches the first run");

    // probe: the head and the report under a cap that the feature cache
    // and the report fit but not every file
    let probe_out = dir.path().join("probe");
    let clean = dir.path().join("probe-clean");
    let o = mcsfau(&probe_args(e, &clean), &e.root);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pa = probe_args(e, &probe_out);
    let pa: Vec<&str> = pa.iter().map(String::as_str).collect();
    std::fs::create_dir_all(&probe_out).unwrap();
    for f in ["probe.json", "probe_head.safetensors", "probe.csv"] {
        std::fs::write(probe_out.join(f), format!("previous {f}\n")).unwrap();
    }
    let before = snapshot(&probe_out);
    let o = with_file_size_limit(&pa, &e.root, 1);
    assert_refused(&o, "probe with a full disk", None, "File too large");
    assert_clean(&probe_out, "probe with a full disk");
    assert_kept(&before, &probe_out, "probe with a full disk");
    let ok = mcsfau(&pa, &e.root);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert_eq!(comparable(&probe_out), comparable(&clean), "the rerun matches an uninterrupted run");
}

/// A command's arguments for an output folder.
type ArgsFor<'a> = dyn Fn(&Path) -> Vec<String> + 'a;

#[test]
fn a_kill_at_any_moment_leaves_complete_outputs_and_a_rerun_matches() {
    let e = env();
    let dir = tempfile::tempdir().unwrap();
    let audit = |out: &Path| {
        ["audit", "--shards", &e.root.join("good").display().to_string(), "--report", &out.display().to_string()]
            .map(String::from)
            .to_vec()
    };
    let commands: [(&str, &ArgsFor); 2] = [("audit", &audit), ("probe", &|out| probe_args(e, out))];
    for (name, make) in commands {
        let clean = dir.path().join(format!("{name}-clean"));
        let t0 = std::time::Instant::now();
        let o = mcsfau(&make(&clean), &e.root);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        let full = t0.elapsed();
        let expected = comparable(&clean);
        let out = dir.path().join(name);
        // kill -9 at evenly spread moments of an uninterrupted run's duration
        for k in 1..=4u32 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_mcsfau"))
                .args(make(&out))
                .current_dir(&e.root)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(full * k / 5);
            let _ = child.kill();
            let _ = child.wait();
            for (p, b) in snapshot(&out) {
                let file = p.file_name().unwrap().to_string_lossy().into_owned();
                if file.starts_with('.') {
                    continue; // a temporary file of the killed write: never read
                }
                assert!(!b.is_empty(), "{name}, kill {k}: zero-byte {file}");
                if file.ends_with(".json") {
                    serde_json::from_slice::<serde_json::Value>(&b)
                        .unwrap_or_else(|e| panic!("{name}, kill {k}: partial {file}: {e}"));
                }
                if file.ends_with(".png") {
                    image::load_from_memory(&b).unwrap_or_else(|e| panic!("{name}, kill {k}: partial {file}: {e}"));
                }
                if file.ends_with(".safetensors") {
                    assert!(b.len() > 8, "{name}, kill {k}: partial {file}");
                    let header = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
                    assert!(b.len() >= 8 + header, "{name}, kill {k}: partial {file}");
                }
            }
        }
        let o = mcsfau(&make(&out), &e.root);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        assert_eq!(comparable(&out), expected, "{name}: the rerun after kills matches an uninterrupted run");
    }
}

#[test]
fn preprocess_on_a_full_disk_fails_cleanly_and_the_resume_matches() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("raw");
    support::voxceleb_tree(&root, 2, 1, 2.0);
    let run = |out: &Path| {
        vec![
            "preprocess".to_string(),
            "--quiet".into(),
            "--landmarks".into(),
            "synthetic".into(),
            "--fps".into(),
            "25".into(),
            "--dataset".into(),
            "voxceleb2".into(),
            "--root".into(),
            root.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let clean = dir.path().join("clean");
    let o = mcsfau(&run(&clean), dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = dir.path().join("out");
    let args = run(&out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = with_file_size_limit(&args, dir.path(), 64);
    assert_refused(&o, "preprocess with a full disk", None, "File too large");
    assert!(!text(&o).contains("not a readable"), "a write error is not a read error: {}", text(&o));
    // every visible shard is complete (the validator opens it)
    for shard in schemas::list_shards(&out).unwrap() {
        schemas::ShardReader::open(&shard).unwrap_or_else(|e| panic!("a partial shard is visible: {e}"));
    }
    let o = mcsfau(&args, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(support::read_rows(&out), support::read_rows(&clean), "the resumed run equals an uninterrupted one");
}

#[test]
fn one_out_holds_one_configuration_and_one_run_per_part() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("raw");
    support::voxceleb_tree(&root, 1, 1, 1.0);
    let run = |out: &Path, crop: &str| {
        let args = [
            "preprocess",
            "--quiet",
            "--landmarks",
            "synthetic",
            "--dataset",
            "voxceleb2",
            "--crop-size",
            crop,
            "--root",
            root.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        mcsfau(&args, dir.path())
    };
    let out = dir.path().join("out");
    let o = run(&out, "64");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let before = snapshot(&out);
    // Another crop size into the same folder: refused, naming both values.
    let o = run(&out, "128");
    assert_refused(&o, "a second configuration", None, "--crop-size 128 (this folder was made with 64)");
    assert_kept(&before, &out, "a second configuration");
    assert_eq!(snapshot(&out).len(), before.len(), "nothing written");
    // The same configuration resumes (nothing left to do).
    assert_eq!(run(&out, "64").status.code(), Some(0));
    // A run of the same part already working (a live process holds the lock).
    std::fs::write(out.join(".lock-p0000of0001"), format!("{} {}\n", std::process::id(), hostname())).unwrap();
    let o = run(&out, "64");
    assert_refused(
        &o,
        "a second run of the part",
        Some(&out.join(".lock-p0000of0001")),
        "another run of part p0000of0001",
    );
    std::fs::remove_file(out.join(".lock-p0000of0001")).unwrap();

    // audit fails a shard set that mixes configurations
    let other = dir.path().join("other");
    assert_eq!(run(&other, "128").status.code(), Some(0));
    let mixed = dir.path().join("mixed");
    for (i, d) in [&out, &other].iter().enumerate() {
        for s in schemas::list_shards(&d.join("shards")).unwrap() {
            let dst = mixed.join(format!("{i}-{}", s.file_name().unwrap().to_string_lossy()));
            std::fs::create_dir_all(&mixed).unwrap();
            std::fs::copy(&s, dst).unwrap();
        }
    }
    let o = mcsfau(&["audit", "--shards", mixed.to_str().unwrap(), "--report", "rep"], dir.path());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("integrity/mixed_preprocess_config/voxceleb2") && t.contains("crop_size=128"), "{t}");
}
