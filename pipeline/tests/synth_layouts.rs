//! Each synthetic layout, read back from disk, matches what was generated:
//! paths and names, frame counts (ffprobe for the videos), label files and
//! values, and landmark sidecars. Same seed, same bytes; another seed, other
//! bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pipeline::synth::layouts::{BP4D_CSV_AUS, DISFA_AUS};
use pipeline::synth::{au, generate, ClipSummary, Layout, SynthConfig, SynthSummary};

fn small(seed: u64) -> SynthConfig {
    SynthConfig { subjects: 2, seed, seconds: 1.0, clips_per_video: 1, ..SynthConfig::default() }
}

fn gen(layout: Layout, cfg: &SynthConfig) -> (tempfile::TempDir, SynthSummary) {
    let dir = tempfile::tempdir().unwrap();
    let s = generate(layout, dir.path(), cfg).unwrap();
    (dir, s)
}

/// (codec, width, height, frame rate, decoded frames) of the first video stream.
fn probe(path: &Path) -> (String, u32, u32, String, usize) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=codec_name,width,height,r_frame_rate,nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe (scripts/setup.sh installs it)");
    let text = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = text.trim().split(',').collect();
    (f[0].into(), f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].into(), f[4].parse().unwrap())
}

/// Checks the sidecar: header, one row per frame with the given frame
/// numbers, 68 points inside (or at most slightly outside) the frame.
fn check_sidecar(c: &ClipSummary) {
    let text = std::fs::read_to_string(&c.sidecar).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), 1 + 136);
    assert_eq!((header[0], header[1], header[2], header[136]), ("frame", "x0", "y0", "y67"));
    let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), c.frame_numbers.len());
    for (row, n) in rows.iter().zip(&c.frame_numbers) {
        assert_eq!(row.len(), 137);
        assert_eq!(row[0] as i64, *n);
        let (w, h) = (f64::from(c.size.0), f64::from(c.size.1));
        for p in row[1..].chunks(2) {
            assert!(p[0] > -0.1 * w && p[0] < 1.1 * w && p[1] > -0.1 * h && p[1] < 1.1 * h, "{p:?} off the frame");
        }
        // The eyes are above the mouth and the chin lowest on the face.
        assert!(row[1 + 2 * 36 + 1] < row[1 + 2 * 51 + 1] && row[1 + 2 * 57 + 1] < row[1 + 2 * 8 + 1]);
    }
}

#[test]
fn voxceleb2_tree_reads_back() {
    let cfg = SynthConfig { videos_per_subject: 2, ..small(3) };
    let (dir, s) = gen(Layout::VoxCeleb2, &cfg);
    assert_eq!(s.clips.len(), 2 * 2);
    assert_eq!(s.subjects[0], "id00012");
    for c in &s.clips {
        let rel = c.media.strip_prefix(dir.path()).unwrap();
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        assert_eq!(&parts[..2], ["dev", "mp4"]);
        assert!(parts[2].starts_with("id") && parts[2].len() == 7 && parts[2][2..].parse::<u32>().is_ok());
        assert!(parts[3].len() == 11 && parts[3].chars().all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch)));
        assert!(parts[4].ends_with(".mp4") && parts[4][..5].parse::<u32>().is_ok());
        assert_eq!(probe(&c.media), ("h264".into(), 224, 224, "25/1".into(), 25));
        assert_eq!(c.frame_numbers, (0..25).collect::<Vec<i64>>());
        assert_eq!(c.sidecar, c.media.with_extension("ldm68.csv"));
        check_sidecar(c);
        // Our own decoder sees the same frames.
        let r = pipeline::video::decode_rgb(&c.media, |_, _| false, |_| Ok(())).unwrap();
        assert_eq!((r.frames, r.decoded, r.kept), (25, 25, 0));
    }
    // Clip numbers run on across an identity's videos.
    let clips: Vec<&str> = s.clips.iter().filter(|c| c.subject == s.subjects[0]).map(|c| c.clip.as_str()).collect();
    assert_eq!(clips, ["00001", "00002"]);
}

#[test]
fn bp4d_tree_reads_back() {
    let (dir, s) = gen(Layout::Bp4d, &SynthConfig { subjects: 2, videos_per_subject: 2, ..small(4) });
    assert_eq!(s.subjects, ["F001", "M001"]);
    let (mut nines, mut ones, mut zeros) = (0, 0, 0);
    for c in &s.clips {
        assert_eq!(c.media, dir.path().join("Sequences").join(&c.subject).join(&c.video));
        assert_eq!(c.size, (260, 348), "1040x1392 at a quarter, aspect kept");
        // Parse the number, don't match the string: padded and unpadded names.
        let mut numbers = Vec::new();
        for e in std::fs::read_dir(&c.media).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".jpg").unwrap();
            assert_eq!(stem.starts_with('0'), c.subject == "F001", "F001 padded, M001 not: {name}");
            numbers.push(stem.parse::<i64>().unwrap());
        }
        numbers.sort();
        assert_eq!(numbers, c.frame_numbers);
        assert!(numbers[0] < 100 && *numbers.last().unwrap() >= 100, "sequences cross 99 -> 100");
        let img =
            image::open(c.media.join(format!("{}.jpg", if c.subject == "F001" { "0099" } else { "99" }))).unwrap();
        assert_eq!((img.width(), img.height()), (260, 348));
        check_sidecar(c);
        // Labels: header of AU numbers after "0"; only coded frames; 0/1/9.
        assert_eq!(c.labels, [dir.path().join(format!("AUCoding/AU_OCC/{}_{}.csv", c.subject, c.video))]);
        let text = std::fs::read_to_string(&c.labels[0]).unwrap();
        let mut lines = text.lines();
        let header: Vec<u8> = lines.next().unwrap().split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(header[0], 0);
        assert_eq!(header[1..], BP4D_CSV_AUS.collect::<Vec<u8>>()[..]);
        let rows: Vec<Vec<i64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
        assert_eq!(rows.len(), c.frame_numbers.len() - 4, "the first and last two frames are not coded");
        for row in rows {
            let i = c.frame_numbers.iter().position(|n| *n == row[0]).expect("a coded frame exists on disk");
            for (au, v) in header[1..].iter().zip(&row[1..]) {
                match au::slot(*au) {
                    None => assert_eq!(*v, 9, "AU{au} is not drawn, so unknown"),
                    Some(_) if *v == 9 => nines += 1,
                    Some(k) => {
                        assert_eq!(*v, i64::from(c.aus[i][k] >= 2.0), "AU{au} frame {}", row[0]);
                        if *v == 1 {
                            ones += 1
                        } else {
                            zeros += 1
                        }
                    }
                }
            }
        }
    }
    assert!(nines > 0 && ones > 0 && zeros > 0, "9s {nines}, 1s {ones}, 0s {zeros}");
}

#[test]
fn disfa_tree_reads_back() {
    let (dir, s) = gen(Layout::Disfa, &small(5));
    assert_eq!(s.subjects, ["SN001", "SN002"]);
    for c in &s.clips {
        assert_eq!(c.media, dir.path().join(format!("Videos_LeftCamera/LeftVideo{}_comp.avi", c.subject)));
        assert_eq!(probe(&c.media), ("mpeg4".into(), 256, 192, "20/1".into(), 20));
        check_sidecar(c);
        assert_eq!(c.labels.len(), DISFA_AUS.len());
        for au in DISFA_AUS {
            let path = dir.path().join(format!("ActionUnit_Labels/{0}/{0}_au{au}.txt", c.subject));
            let text = std::fs::read_to_string(&path).unwrap();
            let pairs: Vec<(usize, i32)> = text
                .lines()
                .map(|l| {
                    let (f, v) = l.split_once(',').unwrap();
                    (f.parse().unwrap(), v.parse().unwrap())
                })
                .collect();
            assert_eq!(pairs.len(), 20);
            for (i, (frame, v)) in pairs.into_iter().enumerate() {
                assert_eq!(frame, i + 1, "frame numbers from 1");
                let expected = au::slot(au).map_or(0, |k| c.aus[i][k].round() as i32);
                assert_eq!(v, expected, "{} AU{au} frame {frame}", c.subject);
                assert!((0..=5).contains(&v));
            }
        }
    }
}

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for layout in [Layout::VoxCeleb2, Layout::Bp4d, Layout::Disfa] {
        let cfg = SynthConfig { subjects: 1, seconds: 0.5, clips_per_video: 1, ..SynthConfig::default() };
        let (a, _) = gen(layout, &cfg);
        let (b, _) = gen(layout, &cfg);
        let (c, _) = gen(layout, &SynthConfig { seed: 1, ..cfg });
        let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
        assert!(!fa.is_empty());
        assert!(fa == fb, "{layout}: same seed, different files");
        assert!(!fa.keys().any(|k| k.to_string_lossy().contains(".tmp")), "no temporary files left");
        let media_differs = fa.iter().any(|(k, v)| fc.get(k).is_none_or(|w| w != v));
        assert!(media_differs, "{layout}: seed 1 wrote the same files as seed 0");
    }
}

/// Peak signal-to-noise ratio of two RGB buffers, dB.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

#[test]
fn decoded_media_show_the_drawn_frames() {
    // The sidecar landmarks are only useful if the files show exactly the
    // frames they were drawn on: decode every medium and compare it with a
    // fresh rendering of the same plan.
    use pipeline::synth::layouts::clip_plan;
    for layout in [Layout::VoxCeleb2, Layout::Bp4d, Layout::Disfa] {
        let cfg = SynthConfig { subjects: 1, seconds: 0.4, clips_per_video: 1, ..SynthConfig::default() };
        let (_dir, s) = gen(layout, &cfg);
        let c = &s.clips[0];
        let plan = clip_plan(layout, &cfg, c);
        assert_eq!(plan.aus, c.aus);
        let mut decoded: Vec<Vec<u8>> = Vec::new();
        if layout == Layout::Bp4d {
            for n in &c.frame_numbers {
                let name = std::fs::read_dir(&c.media)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .find(|p| p.file_stem().unwrap().to_str().unwrap().parse::<i64>().unwrap() == *n)
                    .unwrap();
                decoded.push(image::open(name).unwrap().to_rgb8().into_raw());
            }
        } else {
            pipeline::video::decode_rgb(
                &c.media,
                |_, _| true,
                |f| {
                    decoded.push(f.data);
                    Ok(())
                },
            )
            .unwrap();
        }
        assert_eq!(decoded.len(), c.frame_numbers.len());
        for (i, frame) in decoded.iter().enumerate() {
            let drawn = plan.render(i).unwrap();
            let db = psnr(&drawn.rgb, frame);
            assert!(db > 30.0, "{layout} frame {i}: decoded differs from drawn ({db:.1} dB)");
            // And a different frame of the clip is further away than the codec error.
            if i > 0 {
                assert!(psnr(&plan.render(0).unwrap().rgb, frame) < db, "{layout} frame {i} looks like frame 0");
            }
        }
    }
}
