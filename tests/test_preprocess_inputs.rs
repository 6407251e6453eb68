//! `mcsfau preprocess` on bad input and on the labeled layouts (BP4D frame
//! folders, DISFA videos): failures land in the errors table, the run goes
//! on, labels pair with the right frames.

mod support;

use std::process::Output;

use support::*;

fn preprocess(args: &[&str]) -> Output {
    mcsfau().arg("preprocess").arg("--quiet").args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn has(errors: &[(String, String, String, String)], file: &str, stage: &str, needle: &str) -> bool {
    errors.iter().any(|(f, _, s, m)| f == file && s == stage && m.contains(needle))
}

#[test]
fn bad_voxceleb_files_are_recorded_and_the_run_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("raw"), d.path().join("out"));
    let clips = voxceleb_tree(&root, 1, 6, 1.2);
    let rel = |p: &std::path::Path| p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
    std::fs::write(&clips[1], b"").unwrap(); // zero bytes
    let good = std::fs::read(&clips[2]).unwrap();
    std::fs::write(&clips[2], &good[..good.len() / 2]).unwrap(); // truncated
    std::fs::write(&clips[3], b"these are my holiday notes, not a video").unwrap();
    std::fs::remove_file(clips[4].with_extension("ldm68.csv")).unwrap(); // no landmarks
    sidecar(&clips[5].with_extension("ldm68.csv"), [0]); // a face only in frame 0
    let args = ["--dataset", "voxceleb2", "--root", root.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let o = preprocess(&[&args[..], &["--landmarks", "synthetic", "--fps", "2"]].concat());
    assert_eq!(o.status.code(), Some(1), "failures give exit code 1: {}", text(&o));
    assert!(text(&o).contains("errors-p0000of0001.csv"), "{}", text(&o));
    let errors = read_errors(&out.join("errors-p0000of0001.csv"));
    assert!(has(&errors, &rel(&clips[1]), "decode", "00002.mp4"), "{errors:#?}");
    assert!(has(&errors, &rel(&clips[2]), "decode", ""), "{errors:#?}");
    assert!(has(&errors, &rel(&clips[3]), "decode", "Invalid data"), "{errors:#?}");
    let sidecar_rel = rel(&clips[4].with_extension("ldm68.csv"));
    assert!(has(&errors, &sidecar_rel, "landmarks", "cannot read the landmark sidecar"), "{errors:#?}");
    // 1.2 s at 2 fps: frames 0, 13, 25; the sidecar of clip 6 only knows frame 0
    assert!(errors.iter().any(|(f, fr, s, m)| f == &rel(&clips[5])
        && fr == "13"
        && s == "landmarks"
        && m.contains("no row for frame 13")));
    assert_eq!(errors.len(), 6, "{errors:#?}");
    let rows = read_rows(&out);
    let frames: Vec<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(
        frames,
        [
            "voxceleb2/id00010/yt0abc/00001#000000",
            "voxceleb2/id00010/yt0abc/00001#000013",
            "voxceleb2/id00010/yt0abc/00001#000025",
            "voxceleb2/id00010/yt0abc/00006#000000",
        ]
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary-p0000of0001.json")).unwrap()).unwrap();
    assert_eq!(s["failures"].as_u64(), Some(6));
}

const BP4D_HEADER: &str = "0,1,2,4,6,7,10,12,14,15,17,23,24";

#[test]
fn bp4d_coded_frames_carry_their_labels_and_bad_frames_are_recorded() {
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("raw"), d.path().join("out"));
    let seq = root.join("Sequences/F001/T1");
    std::fs::create_dir_all(&seq).unwrap();
    // frames 0001.jpg .. 0005.jpg (zero-padded, as some releases)
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=25:duration=0.2",
        "-start_number",
        "1",
        seq.join("%04d.jpg").to_str().unwrap(),
    ]);
    std::fs::write(seq.join("0004.jpg"), b"\xFF\xD8 not really a jpeg").unwrap();
    sidecar(&root.join("Sequences/F001/T1.ldm68.csv"), 1..=6);
    let labels = root.join("AUCoding/AU_OCC");
    std::fs::create_dir_all(&labels).unwrap();
    let rows = [
        "1,1,0,9,0,0,0,0,0,0,0,0,1",
        "2,0,1,0,0,0,0,0,0,0,0,9,0",
        "3,0,0,1,0,0,0,0,0,0,0,0,0",
        "4,0,0,0,0,0,0,0,0,0,0,0,0",
        "6,0,0,0,0,0,0,0,0,0,0,0,0",
    ];
    std::fs::write(labels.join("F001_T1.csv"), format!("{BP4D_HEADER}\n{}\n", rows.join("\n"))).unwrap();
    // F002/T1 has frames but no label file; F002/T2 a malformed one
    for task in ["T1", "T2"] {
        let dir = root.join(format!("Sequences/F002/{task}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(seq.join("0001.jpg"), dir.join("1.jpg")).unwrap();
        sidecar(&root.join(format!("Sequences/F002/{task}.ldm68.csv")), [1]);
    }
    std::fs::write(labels.join("F002_T2.csv"), format!("{BP4D_HEADER}\n1,0,1\n")).unwrap();

    let o = preprocess(&[
        "--dataset",
        "bp4d",
        "--root",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--landmarks",
        "synthetic",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let errors = read_errors(&out.join("errors-p0000of0001.csv"));
    assert!(has(&errors, "Sequences/F001/T1/0004.jpg", "decode", "not a readable JPEG"), "{errors:#?}");
    assert!(has(&errors, "Sequences/F001/T1", "decode", "has no 6.jpg"), "{errors:#?}");
    assert!(has(&errors, "AUCoding/AU_OCC/F002_T1.csv", "labels", "No such file"), "{errors:#?}");
    assert!(has(&errors, "AUCoding/AU_OCC/F002_T2.csv", "labels", "line 2"), "{errors:#?}");
    assert_eq!(errors.len(), 4, "{errors:#?}");
    let rows = read_rows(&out);
    assert_eq!(
        rows.keys().map(String::as_str).collect::<Vec<_>>(),
        ["bp4d/F001/T1#000001", "bp4d/F001/T1#000002", "bp4d/F001/T1#000003"]
    );
    let r1 = &rows["bp4d/F001/T1#000001"];
    // AUs 1 2 4 6 7 10 12 14 15 17 23 24; 9 -> -1 (unknown)
    assert_eq!(r1.occurrence, vec![1, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(rows["bp4d/F001/T1#000002"].occurrence, vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0]);
    assert_eq!((r1.frame_index, r1.timestamp_ms, r1.clip.as_str()), (1, 40, ""));
    assert!(r1.intensity.is_empty());
    let shard = &schemas::list_shards(&out).unwrap()[0];
    let spec = schemas::ShardReader::open(shard).unwrap().meta().labels.clone().unwrap();
    assert_eq!(spec.au_numbers, vec![1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]);
}

/// A DISFA tree: SN001 has 12 flat grey frames (FFV1, every frame a key
/// frame, so a dropped one spoils no other) whose brightness encodes
/// their index k (Y = 16 + 20 k, i.e. RGB about 23.3 k) and labels for
/// frames 1..=14 (two past the end); SN002 has the same video, no labels.
fn disfa_tree(root: &std::path::Path) -> std::path::PathBuf {
    let videos = root.join("Videos_LeftCamera");
    std::fs::create_dir_all(&videos).unwrap();
    let video = videos.join("LeftVideoSN001_comp.avi");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=160x120:r=20:d=0.6,format=yuv444p,geq=lum='16+20*N':cb=128:cr=128",
        "-c:v",
        "ffv1",
        "-g",
        "1",
        video.to_str().unwrap(),
    ]);
    sidecar(&videos.join("LeftVideoSN001_comp.ldm68.csv"), 0..12);
    std::fs::copy(&video, videos.join("LeftVideoSN002_comp.avi")).unwrap();
    sidecar(&videos.join("LeftVideoSN002_comp.ldm68.csv"), 0..12);
    for (j, au) in [1, 2, 4, 6, 9, 12, 25, 26].iter().enumerate() {
        let p = root.join(format!("ActionUnit_Labels/SN001/SN001_au{au}.txt"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let lines: Vec<String> = (1..=14).map(|n| format!("{n},{}", (n + j) % 6)).collect();
        std::fs::write(p, lines.join("\n") + "\n").unwrap();
    }
    video
}

fn preprocess_disfa(root: &std::path::Path, out: &std::path::Path) -> Output {
    preprocess(&[
        "--dataset",
        "disfa",
        "--root",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--landmarks",
        "synthetic",
    ])
}

/// Every row of SN001: label line k + 1, the crop shows decoded frame k.
fn assert_rows_pair(rows: &std::collections::BTreeMap<String, Row>) {
    for (id, r) in rows {
        let k = r.frame_index;
        assert_eq!(id, &format!("disfa/SN001/LeftVideoSN001_comp#{k:06}"));
        // label line N = k + 1 of AU j has intensity (N + j) % 6
        let want: Vec<i8> = (0..8).map(|j| ((k as usize + 1 + j) % 6) as i8).collect();
        assert_eq!(r.intensity, want, "frame {k}");
        assert_eq!(r.occurrence, want.iter().map(|&v| i8::from(v >= 2)).collect::<Vec<_>>());
        let img = image::load_from_memory(&r.image).unwrap().to_rgb8();
        let centre = f64::from(img.get_pixel(128, 128)[0]);
        assert!((centre - 23.29 * k as f64).abs() < 6.0, "frame {k}: centre {centre}");
        assert_eq!(r.timestamp_ms, k * 50, "20 fps");
    }
}

#[test]
fn disfa_label_line_n_pairs_with_decoded_frame_n() {
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("raw"), d.path().join("out"));
    disfa_tree(&root);
    let o = preprocess_disfa(&root, &out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let errors = read_errors(&out.join("errors-p0000of0001.csv"));
    let vid = "Videos_LeftCamera/LeftVideoSN001_comp.avi";
    assert!(
        has(
            &errors,
            vid,
            "labels",
            "2 label rows (frames 13..=14, numbered from 1) are past the end of the video (12 frames decoded)"
        ),
        "{errors:#?}"
    );
    assert!(has(&errors, "Videos_LeftCamera/LeftVideoSN002_comp.avi", "labels", "SN002_au1.txt"), "{errors:#?}");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let rows = read_rows(&out);
    assert_eq!(rows.len(), 12);
    assert_rows_pair(&rows);
}

#[test]
fn a_dropped_disfa_frame_is_a_gap_in_the_errors_table_and_shifts_no_label() {
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("raw"), d.path().join("out"));
    let video = disfa_tree(&root);
    // Drop the packet of frame 5 (label line 6); the AVI keeps its slot.
    let whole = d.path().join("whole.avi");
    std::fs::rename(&video, &whole).unwrap();
    ffmpeg(&["-i", whole.to_str().unwrap(), "-c", "copy", "-bsf:v", "noise=drop=eq(n\\,5)", video.to_str().unwrap()]);
    let o = preprocess_disfa(&root, &out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let errors = read_errors(&out.join("errors-p0000of0001.csv"));
    let vid = "Videos_LeftCamera/LeftVideoSN001_comp.avi";
    assert!(
        has(&errors, vid, "labels", "labelled frames 6..=6 (numbered from 1) are missing from the video"),
        "{errors:#?}"
    );
    assert!(has(&errors, vid, "labels", "(frames 13..=14, numbered from 1) are past the end"), "{errors:#?}");
    let rows = read_rows(&out);
    let frames: Vec<i64> = rows.values().map(|r| r.frame_index).collect();
    assert_eq!(frames, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]);
    // Counting decoded frames would pair frames 6.. with lines 6..: here
    // each keeps its own line and its own picture.
    assert_rows_pair(&rows);
}
