//! `mcsfau preprocess` on `mcsfau synth` trees, where the drawn faces, their
//! landmarks and their AU intensities are known exactly.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use pipeline::preprocess::align::{warp_bilinear, Similarity};
use pipeline::synth::{au, generate, Layout, SynthConfig, SynthSummary};
use support::*;

fn synth(layout: Layout, root: &Path, cfg: SynthConfig) -> SynthSummary {
    generate(layout, root, &cfg).unwrap()
}

fn run(dataset: &str, root: &Path, out: &Path) -> std::process::Output {
    let o = mcsfau()
        .args(["preprocess", "--quiet", "--landmarks", "synthetic", "--dataset", dataset, "--root"])
        .arg(root)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(read_errors(&out.join("errors-p0000of0001.csv")).is_empty());
    o
}

/// Every frame of a video as the ffmpeg CLI decodes it (packed RGB24).
fn cli_frames(path: &Path, w: u32, h: u32) -> Vec<Vec<u8>> {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-sws_flags", "bilinear", "-"])
        .output()
        .unwrap();
    assert!(o.status.success());
    o.stdout.chunks_exact((w * h * 3) as usize).map(<[u8]>::to_vec).collect()
}

fn mad(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs()).sum::<f64>() / a.len() as f64
}

#[test]
fn disfa_label_line_n_pairs_with_decoded_frame_n_on_the_synthetic_tree() {
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("raw"), d.path().join("out"));
    let cfg = SynthConfig { subjects: 2, seconds: 0.6, ..SynthConfig::default() };
    let summary = synth(Layout::Disfa, &root, cfg);
    run("disfa", &root, &out);
    let rows = read_rows(&out);
    let protocol = [1u8, 2, 4, 6, 9, 12, 25, 26];
    for clip in &summary.clips {
        let (w, h) = clip.size;
        let cli = cli_frames(&clip.media, w, h);
        let mine: BTreeMap<i64, &Row> =
            rows.values().filter(|r| r.subject == clip.subject).map(|r| (r.frame_index, r)).collect();
        assert_eq!(mine.len(), clip.frame_numbers.len(), "every labeled frame has a row");
        assert_eq!(cli.len(), clip.frame_numbers.len());
        for (&k, row) in &mine {
            // Label line k + 1 holds the AUs drawn in decoded frame k.
            let drawn: Vec<i8> = protocol
                .iter()
                .map(|&a| au::slot(a).map_or(0, |s| clip.aus[k as usize][s].round().clamp(0.0, 5.0) as i8))
                .collect();
            assert_eq!(row.intensity, drawn, "{} frame {k}", clip.subject);
            assert_eq!(row.occurrence, drawn.iter().map(|&v| i8::from(v >= 2)).collect::<Vec<_>>());
            // The crop is frame k: warping the CLI's frame k with the stored
            // transform reproduces it better than any neighbouring frame.
            let m = &row.crop_transform;
            let t = Similarity { a: m[0], b: m[3], tx: m[2], ty: m[5] };
            let crop = image::load_from_memory(&row.image).unwrap().to_rgb8().into_raw();
            let lo = (k - 2).max(0) as usize;
            let hi = ((k + 2) as usize).min(cli.len() - 1);
            let diffs: Vec<(usize, f64)> =
                (lo..=hi).map(|j| (j, mad(&warp_bilinear(&cli[j], w, h, &t, 256), &crop))).collect();
            let best = diffs.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
            assert_eq!(best.0 as i64, k, "{} frame {k}: {diffs:?}", clip.subject);
            assert!(best.1 < 4.0, "{} frame {k}: {diffs:?}", clip.subject);
        }
    }
}

#[test]
fn bp4d_and_voxceleb2_synthetic_trees_preprocess_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let (root, out) = (d.path().join("bp4d"), d.path().join("bp4d-out"));
    let summary = synth(Layout::Bp4d, &root, SynthConfig { subjects: 2, seconds: 0.6, ..SynthConfig::default() });
    run("bp4d", &root, &out);
    let rows = read_rows(&out);
    let protocol = [1u8, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24];
    let mut coded = 0;
    for clip in &summary.clips {
        let csv = std::fs::read_to_string(&clip.labels[0]).unwrap();
        coded += csv.lines().count() - 1;
        for (i, n) in clip.frame_numbers.iter().enumerate() {
            let Some(row) = rows.get(&format!("bp4d/{}/{}#{n:06}", clip.subject, clip.video)) else { continue };
            for (j, a) in protocol.iter().enumerate() {
                let drawn = i8::from(clip.aus[i][au::slot(*a).unwrap()] >= 2.0);
                assert!(row.occurrence[j] == -1 || row.occurrence[j] == drawn, "{} frame {n} AU {a}", clip.subject);
            }
        }
    }
    assert_eq!(rows.len(), coded, "one row per coded frame");
    assert!(rows.values().any(|r| r.occurrence.contains(&-1)), "9 becomes unknown");

    let (root, out) = (d.path().join("vox"), d.path().join("vox-out"));
    let summary = synth(Layout::VoxCeleb2, &root, SynthConfig { subjects: 1, seconds: 1.2, ..SynthConfig::default() });
    run("voxceleb2", &root, &out);
    let rows = read_rows(&out);
    // 1.2 s at 25 fps sampled at 1 fps: frames 0 and 25 of every clip
    assert_eq!(rows.len(), 2 * summary.clips.len());
    assert!(rows.values().all(|r| (r.frame_index == 0 || r.frame_index == 25) && r.source_size == (224, 224)));
}
