//! Decoding the awkward files real datasets contain, checked against the
//! FFmpeg CLI (which applies rotation the way players do): rotation
//! metadata, odd frame sizes, variable frame rate, HEVC and MPEG-4 part 2,
//! colour matrices and ranges, gray and 10-bit input.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use pipeline::preprocess::decode::{decode_video, Select};
use pipeline::video::RgbFrame;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-y", "-v", "error"]).args(args).output().expect("ffmpeg CLI");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Frame 0 as the CLI decodes it (autorotated), packed RGB24.
fn cli_first_frame(path: &Path) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-sws_flags", "bilinear", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn all_frames(path: &Path, select: Select) -> Vec<RgbFrame> {
    let mut frames = Vec::new();
    decode_video(path, &select, 4, |b| {
        frames.extend(b);
        Ok(())
    })
    .unwrap();
    frames
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (i32::from(*x) - i32::from(*y)).abs() as f64).sum::<f64>() / a.len() as f64
}

// FFmpeg 5.1's mov muxer stores `rotate=90` as a display matrix that its
// own CLI turns 270 degrees clockwise (ffprobe reports `rotation=90`, i.e.
// counterclockwise): the pixels are checked against the CLI either way.
#[test]
fn rotation_metadata_turns_frames_upright_like_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("plain.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=25:duration=0.4",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        plain.to_str().unwrap(),
    ]);
    for deg in ["90", "180", "270"] {
        let rotated = d.path().join(format!("rot{deg}.mp4"));
        ffmpeg(&[
            "-i",
            plain.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            &format!("rotate={deg}"),
            rotated.to_str().unwrap(),
        ]);
        let turn = pipeline::video::rotation_degrees(&rotated).unwrap();
        assert_eq!(turn, [90, 180, 270].into_iter().find(|t| t.to_string() == deg).map(|t| (360 - t) % 360).unwrap());
        let frames = all_frames(&rotated, Select::Fps(0.0));
        assert_eq!(frames.len(), 10);
        let f = &frames[0];
        let expected_size = if deg == "180" { (64, 48) } else { (48, 64) };
        assert_eq!((f.width, f.height), expected_size, "rotate={deg}");
        let diff = mean_abs_diff(&f.data, &cli_first_frame(&rotated));
        assert!(diff < 3.0, "rotate={deg}: mean abs diff {diff} against the CLI");
        let wrong = pipeline::video::rotate_rgb(f.clone(), 180);
        let diff = mean_abs_diff(&wrong.data, &cli_first_frame(&rotated));
        assert!(diff > 20.0, "rotate={deg}: the opposite turn must not match ({diff})");
    }
}

#[test]
fn odd_sizes_hevc_and_mpeg4_decode_like_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], (u32, u32)); 3] = [
        ("odd.mp4", &["-c:v", "libx264", "-pix_fmt", "yuv444p"], (63, 47)),
        ("hevc.mp4", &["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"], (64, 48)),
        ("mpeg4.avi", &["-c:v", "mpeg4", "-q:v", "2"], (64, 48)),
    ];
    for (name, codec, (w, h)) in cases {
        let p = d.path().join(name);
        let src = format!("testsrc=size={w}x{h}:rate=25:duration=0.4");
        let mut args = vec!["-f", "lavfi", "-i", &src];
        args.extend_from_slice(codec);
        args.push(p.to_str().unwrap());
        ffmpeg(&args);
        let frames = all_frames(&p, Select::Fps(0.0));
        assert_eq!(frames.len(), 10, "{name}");
        assert_eq!((frames[3].width, frames[3].height, frames[3].data.len() as u32), (w, h, w * h * 3), "{name}");
        assert_eq!(frames[3].index, 3);
        let diff = mean_abs_diff(&frames[0].data, &cli_first_frame(&p));
        assert!(diff < 3.0, "{name}: mean abs diff {diff}");
    }
}

#[test]
fn variable_frame_rate_samples_on_presentation_time() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("vfr.mp4");
    // Keep frames 0-9 and then every 7th frame of a 25 fps source, with
    // their original timestamps: frame gaps of 40 ms, then 280 ms.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=25:duration=4",
        "-vf",
        "select='lt(n\\,10)+not(mod(n\\,7))'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        p.to_str().unwrap(),
    ]);
    let all = all_frames(&p, Select::Fps(0.0));
    let times: Vec<i64> = all.iter().map(|f| f.timestamp_ms).collect();
    // 0..=9 (0-360 ms), then 14, 21, ..., 98 (560 ms ... 3920 ms)
    let expected: Vec<i64> = (0..10).chain((14..100).step_by(7)).map(|n| n * 40).collect();
    assert_eq!(times, expected);
    // 2 fps: the first frame at or after every 500 ms
    let sampled: Vec<i64> = all_frames(&p, Select::Fps(2.0)).iter().map(|f| f.timestamp_ms).collect();
    let mut want = Vec::new();
    let mut next = 0;
    for &t in &expected {
        if t >= next {
            want.push(t);
            next = (t / 500 + 1) * 500;
        }
    }
    assert_eq!(sampled, want);
    assert_eq!(&sampled[..4], &[0, 560, 1120, 1680]);
    // Indices come from timestamps on the stream's 25 fps grid, so the
    // kept frames keep the source's numbers: 0..=9, 14, 21, ...
    let indices: Vec<i64> = all.iter().map(|f| f.index).collect();
    assert_eq!(indices, (0..10).chain((14..100).step_by(7)).collect::<Vec<_>>());
    let picked = all_frames(&p, Select::Indices(BTreeSet::from([0, 10, 14, 21])));
    assert_eq!(
        picked.iter().map(|f| (f.index, f.timestamp_ms)).collect::<Vec<_>>(),
        vec![(0, 0), (14, 560), (21, 840)]
    );
}

/// Colour: the YUV matrix, the range, gray and 10-bit input converted to RGB
/// as the FFmpeg CLI converts them (its automatic scaler reads the frame's
/// colour tags). Before the matrix was passed to swscale, the BT.709 clip
/// differed from the CLI by 6.3 grey levels on average (max 30) on SMPTE
/// bars; every case now matches it exactly.
#[test]
fn colour_matrices_ranges_gray_and_10_bit_decode_like_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let x264 = ["-c:v", "libx264", "-pix_fmt"];
    let cases: [(&str, Vec<&str>); 6] = [
        ("bt601.mp4", [&x264[..], &["yuv420p"]].concat()),
        (
            "bt709.mp4",
            [&x264[..], &["yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]]
                .concat(),
        ),
        ("yuvj.mp4", [&x264[..], &["yuvj420p"]].concat()),
        ("full_range_tag.mp4", [&x264[..], &["yuv420p", "-color_range", "pc"]].concat()),
        ("gray.mkv", vec!["-c:v", "ffv1", "-pix_fmt", "gray"]),
        ("ten_bit.mkv", vec!["-c:v", "ffv1", "-pix_fmt", "yuv420p10le"]),
    ];
    for (name, codec) in cases {
        let p = d.path().join(name);
        let mut args = vec!["-f", "lavfi", "-i", "smptebars=size=64x48:rate=25:duration=0.2"];
        args.extend_from_slice(&codec);
        args.push(p.to_str().unwrap());
        ffmpeg(&args);
        let frames = all_frames(&p, Select::Fps(0.0));
        assert_eq!(frames.len(), 5, "{name}");
        let cli = cli_first_frame(&p);
        let diff = mean_abs_diff(&frames[0].data, &cli);
        let max = frames[0].data.iter().zip(&cli).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).max().unwrap();
        assert!(diff < 0.5 && max <= 2, "{name}: mean abs diff {diff}, max {max} from the CLI");
    }
}
