//! Frame indices come from timestamps, and sampling skips what it can:
//! a dropped packet leaves a gap instead of shifting later frames, an
//! unreadable packet is skipped and recorded, and sampling by fps skips
//! non-reference frames yet keeps exactly the frames a full decode keeps.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use pipeline::preprocess::decode::{decode_video, FpsSampler, Select};
use pipeline::video::{decode_rgb, RgbFrame};

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-y", "-v", "error"]).args(args).output().expect("ffmpeg CLI");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A 30-frame, 20 fps AVI of `codec` (DISFA's container and rate).
fn avi(path: &Path, codec: &str) {
    let p = path.to_str().unwrap();
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=64x48:rate=20", "-frames:v", "30", "-c:v", codec, "-q:v", "4", p]);
}

fn frames(path: &Path, select: Select) -> (Vec<RgbFrame>, pipeline::preprocess::decode::DecodeStats) {
    let mut out = Vec::new();
    let stats = decode_video(path, &select, 4, |b| {
        out.extend(b);
        Ok(())
    })
    .unwrap();
    (out, stats)
}

/// (pts, pos, size) of each video packet, from ffprobe.
fn packets(path: &Path) -> Vec<(i64, u64, usize)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "packet=pts,pos,size", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[2].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect()
}

#[test]
fn a_dropped_packet_leaves_a_gap_and_shifts_no_later_frame() {
    let d = tempfile::tempdir().unwrap();
    let (clean, dropped) = (d.path().join("clean.avi"), d.path().join("dropped.avi"));
    avi(&clean, "mpeg4");
    // The AVI muxer keeps the dropped frame's slot as an empty chunk.
    ffmpeg(&[
        "-i",
        clean.to_str().unwrap(),
        "-c",
        "copy",
        "-bsf:v",
        "noise=drop=eq(n\\,10)",
        dropped.to_str().unwrap(),
    ]);
    let all: BTreeSet<i64> = (0..30).collect();
    let (a, sa) = frames(&clean, Select::Indices(all.clone()));
    let (b, sb) = frames(&dropped, Select::Indices(all.clone()));
    assert_eq!(a.iter().map(|f| f.index).collect::<Vec<_>>(), (0..30).collect::<Vec<_>>());
    let expected: Vec<i64> = (0..30).filter(|&i| i != 10).collect();
    assert_eq!(b.iter().map(|f| f.index).collect::<Vec<_>>(), expected, "frame 10 is a gap, 11.. keep their numbers");
    assert_eq!((sa.frames, sb.frames), (30, 30));
    for f in &b {
        assert_eq!(f.timestamp_ms, f.index * 50, "20 fps: frame {} at {} ms", f.index, f.timestamp_ms);
    }
    // Frame 12 starts a GOP (MPEG-4's default GOP of 12): the same pixels.
    let at = |v: &[RgbFrame], i: i64| v.iter().find(|f| f.index == i).unwrap().data.clone();
    assert_eq!(at(&a, 12), at(&b, 12));
}

#[test]
fn an_unreadable_packet_is_skipped_recorded_and_decoding_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let (clean, broken) = (d.path().join("clean.avi"), d.path().join("broken.avi"));
    avi(&clean, "mjpeg");
    let (pts, pos, size) = packets(&clean)[10];
    assert_eq!(pts, 10);
    let mut bytes = std::fs::read(&clean).unwrap();
    // ffprobe's `pos` is the payload's (after the chunk header): zero the JPEG.
    bytes[pos as usize..pos as usize + size].fill(0);
    std::fs::write(&broken, bytes).unwrap();
    let all: BTreeSet<i64> = (0..30).collect();
    let (a, _) = frames(&clean, Select::Indices(all.clone()));
    let (b, stats) = frames(&broken, Select::Indices(all));
    assert_eq!(stats.bad_packets.len(), 1, "{:?}", stats.bad_packets);
    assert_eq!(stats.bad_packets[0].index, 10);
    assert!(stats.bad_packets[0].message.contains("Invalid data"), "{:?}", stats.bad_packets);
    assert_eq!(stats.frames, 30, "the frames after the bad packet were decoded");
    let expected: Vec<i64> = (0..30).filter(|&i| i != 10).collect();
    assert_eq!(b.iter().map(|f| f.index).collect::<Vec<_>>(), expected);
    let same: Vec<(i64, Option<i64>)> =
        b.iter().map(|f| (f.index, a.iter().find(|g| g.data == f.data).map(|g| g.index))).collect();
    assert!(same.iter().all(|(i, j)| Some(*i) == *j), "intra-only MJPEG: every frame its own pixels: {same:?}");
}

#[test]
fn sampling_by_fps_skips_non_reference_frames_and_keeps_what_a_full_decode_keeps() {
    let d = tempfile::tempdir().unwrap();
    let clip = d.path().join("b_frames.mp4");
    // x264's defaults: 3 B-frames, most of them not referenced.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=96x64:rate=25:duration=4",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().unwrap(),
    ]);
    for fps in [1.0, 5.0] {
        // Reference: every frame decoded (a closure may keep any frame).
        let mut sampler = FpsSampler::new(fps);
        let mut full = Vec::new();
        let report = decode_rgb(
            &clip,
            |_, ts| sampler.keep(ts),
            |f| {
                full.push(f);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((report.frames, report.decoded), (100, 100));
        let (sampled, stats) = frames(&clip, Select::Fps(fps));
        let key = |v: &[RgbFrame]| v.iter().map(|f| (f.index, f.timestamp_ms, f.data.clone())).collect::<Vec<_>>();
        assert_eq!(key(&sampled), key(&full), "{fps} fps: the same frames, the same pixels");
        assert_eq!(sampled.len(), 4 * fps as usize);
        assert_eq!(stats.frames, 100);
        assert!(stats.decoded < 90, "{fps} fps: non-reference frames skipped, {} of 100 decoded", stats.decoded);
    }
}
