//! `mcsfau preprocess` end to end on tiny generated dataset trees: the shard
//! contract, kill -9 + resume, fan-out, bad input, labels.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::*;

fn preprocess(args: &[&str]) -> Output {
    mcsfau().arg("preprocess").arg("--quiet").args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn vox_args<'a>(root: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["--dataset", "voxceleb2", "--root", root, "--out", out, "--landmarks", "synthetic"]
}

#[test]
fn voxceleb2_rows_follow_the_shard_contract() {
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("raw"), d.path().join("out"));
    voxceleb_tree(&root, 2, 1, 2.2);
    let o = preprocess(&[vox_args(root.to_str().unwrap(), out.to_str().unwrap()), vec!["--jobs", "2"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows = read_rows(&out);
    // 2.2 s at 25 fps sampled at 1 fps: frames 0, 25, 50
    let ids: Vec<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "voxceleb2/id00010/yt0abc/00001#000000",
            "voxceleb2/id00010/yt0abc/00001#000025",
            "voxceleb2/id00010/yt0abc/00001#000050",
            "voxceleb2/id00011/yt1abc/00001#000000",
            "voxceleb2/id00011/yt1abc/00001#000025",
            "voxceleb2/id00011/yt1abc/00001#000050",
        ]
    );
    let template = pipeline::preprocess::align::template(256);
    for row in rows.values() {
        assert_eq!(row.timestamp_ms, row.frame_index * 40);
        assert_eq!(
            (row.subject.as_str(), row.source.as_str(), row.source_size),
            (row.subject.as_str(), "synthetic", (160, 120))
        );
        // The sidecar points are the template at scale 0.4: aligned, they
        // land back on the template, and the stored transform maps them there.
        for (k, t) in template.iter().enumerate() {
            assert!((row.landmarks[2 * k] - t[0]).abs() < 0.01 && (row.landmarks[2 * k + 1] - t[1]).abs() < 0.01);
        }
        let p = points68(row.frame_index)[17];
        let m = &row.crop_transform;
        let mapped = [m[0] * p[0] + m[1] * p[1] + m[2], m[3] * p[0] + m[4] * p[1] + m[5]];
        assert!((mapped[0] - row.landmarks[0]).abs() < 0.01 && (mapped[1] - row.landmarks[1]).abs() < 0.01);
        assert!((m[0] - 2.5).abs() < 1e-3, "scale 1 / 0.4: {m:?}");
        let img = image::load_from_memory(&row.image).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (256, 256));
    }
    // provenance in the shard metadata, a clean errors table, a summary
    let shard = &schemas::list_shards(&out).unwrap()[0];
    let meta = schemas::ShardReader::open(shard).unwrap().meta().clone();
    assert_eq!(meta.tool_version, env!("CARGO_PKG_VERSION"));
    let cfg: serde_json::Value = serde_json::from_str(&meta.preprocess_config).unwrap();
    assert_eq!((cfg["fps"].as_f64(), cfg["landmarks"].as_str()), (Some(1.0), Some("synthetic")));
    assert!(read_errors(&out.join("errors-p0000of0001.csv")).is_empty());
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary-p0000of0001.json")).unwrap()).unwrap();
    assert_eq!((s["clips"].as_u64(), s["frames"].as_u64(), s["failures"].as_u64()), (Some(2), Some(6), Some(0)));
    assert_eq!(s["stages"]["decode"]["frames"].as_u64(), Some(2 * 55), "every frame is decoded");
    assert!(s["stages"]["encode"]["frames_per_s_per_core"].as_f64().unwrap() > 0.0);
    // a second run finds everything done
    let o = preprocess(&vox_args(root.to_str().unwrap(), out.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary-p0000of0001.json")).unwrap()).unwrap();
    assert_eq!(
        (s["clips_resumed"].as_u64(), s["frames"].as_u64(), s["frames_total"].as_u64()),
        (Some(2), Some(0), Some(6))
    );
    assert_eq!(read_rows(&out), rows);
}

fn visible_shards_have_records(out: &Path) {
    for shard in schemas::list_shards(out).unwrap() {
        let name = shard.file_name().unwrap().to_string_lossy().into_owned();
        let unit = name.trim_end_matches("-00000.parquet");
        assert!(out.join("progress").join(format!("{unit}.json")).is_file(), "{name} has no completion record");
        schemas::ShardReader::open(&shard).expect("every visible shard is complete");
    }
}

#[test]
fn kill_9_then_resume_equals_an_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("raw");
    voxceleb_tree(&root, 4, 2, 1.0);
    let root_s = root.to_str().unwrap();
    fn args<'a>(root: &'a str, out: &'a str) -> Vec<&'a str> {
        [vox_args(root, out), vec!["--fps", "6", "--jobs", "1", "--clips-per-unit", "1"]].concat()
    }

    let full = d.path().join("full");
    let o = preprocess(&args(root_s, full.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let expected = read_rows(&full);
    assert_eq!(expected.len(), 8 * 6);

    // Kill at several moments: after 1 unit, after 3 units, and right away.
    let killed = d.path().join("killed");
    // Finished units are the visible shard files (a completion record alone
    // may be an interrupted commit, redone on resume).
    let shards = killed.join("shards");
    for after in [1usize, 3, 0] {
        let mut child =
            mcsfau().arg("preprocess").arg("--quiet").args(args(root_s, killed.to_str().unwrap())).spawn().unwrap();
        let t = Instant::now();
        let done = |p: &Path| {
            std::fs::read_dir(p)
                .map(|r| r.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
                .unwrap_or(0)
        };
        let before = done(&shards);
        while done(&shards) < before + after && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        visible_shards_have_records(&killed);
        if after > 0 {
            assert!(status.code().is_none(), "the run was killed mid-way, not finished ({after} units)");
            let partial = read_rows(&killed);
            assert!(partial.len() < expected.len(), "killed before the end");
            for (id, row) in &partial {
                assert_eq!(Some(row), expected.get(id), "finished work is kept exactly: {id}");
            }
        }
    }
    let o = preprocess(&args(root_s, killed.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(killed.join("summary-p0000of0001.json")).unwrap()).unwrap();
    assert!(s["clips_resumed"].as_u64().unwrap() >= 4, "{s}");
    assert_eq!(read_rows(&killed), expected);
    visible_shards_have_records(&killed);
}

#[test]
fn n_partial_runs_together_equal_one_full_run() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("raw");
    voxceleb_tree(&root, 3, 2, 0.5);
    let root_s = root.to_str().unwrap();
    let full = d.path().join("full");
    let o = preprocess(&vox_args(root_s, full.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let parts = d.path().join("parts");
    let mut sizes = Vec::new();
    for i in 0..3 {
        // part 1 comes from Slurm's environment, the others from the flags
        let mut cmd = mcsfau();
        cmd.arg("preprocess").arg("--quiet").args(vox_args(root_s, parts.to_str().unwrap()));
        if i == 1 {
            cmd.env("SLURM_ARRAY_TASK_ID", "2").env("SLURM_ARRAY_TASK_MIN", "1").env("SLURM_ARRAY_TASK_COUNT", "3");
        } else {
            cmd.args(["--shard-index", &i.to_string(), "--shard-count", "3"]);
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(parts.join(format!("summary-p{i:04}of0003.json"))).unwrap()).unwrap();
        sizes.push(s["clips"].as_u64().unwrap());
    }
    assert_eq!(sizes.iter().sum::<u64>(), 6, "{sizes:?}");
    assert_eq!(read_rows(&parts), read_rows(&full));
}

#[test]
fn help_shows_defaults_and_exit_codes() {
    let o = mcsfau().args(["preprocess", "--help"]).output().unwrap();
    let t = text(&o);
    assert!(o.status.success());
    for needle in
        ["--fps", "[default: 1]", "[default: dlib]", "--shard-index", "SLURM_ARRAY_TASK_ID", "Exit code: 0 all clean"]
    {
        assert!(t.contains(needle), "{needle}: {t}");
    }
}

#[test]
fn missing_root_and_unwritable_out_fail_at_once() {
    let d = tempfile::tempdir().unwrap();
    let o = preprocess(&vox_args(d.path().join("nope").to_str().unwrap(), d.path().join("o").to_str().unwrap()));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--root does not exist"), "{}", text(&o));
    let blocker = d.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let out = blocker.join("out");
    let o = preprocess(&vox_args(d.path().to_str().unwrap(), out.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--out is not a writable folder"), "{}", text(&o));
}
