//! FFmpeg works from Rust: the `ffmpeg` CLI makes a short H.264 clip, our
//! decoder turns it into RGB frames, and the count matches ffprobe's.

use std::process::Command;

#[test]
fn decodes_every_frame_of_an_h264_clip() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("testsrc.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1.2"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .status()
        .expect("the ffmpeg CLI (scripts/setup.sh installs it)");
    assert!(status.success());
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&clip)
        .output()
        .unwrap();
    let expected: u64 = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap();
    assert_eq!(expected, 30);

    let mut frames = Vec::new();
    let total = pipeline::video::decode_rgb(
        &clip,
        |_, _| true,
        |f| {
            frames.push(f);
            Ok(())
        },
    )
    .unwrap()
    .frames;
    assert_eq!(total, expected);
    assert_eq!(frames.len() as u64, expected);
    let f = &frames[10];
    assert_eq!((f.width, f.height, f.data.len()), (64, 48, 64 * 48 * 3));
    assert_eq!(f.index, 10);
    assert_eq!(f.timestamp_ms, 400);
    // testsrc is colorful, not a flat frame
    let min = f.data.iter().min().unwrap();
    let max = f.data.iter().max().unwrap();
    assert!(max - min > 100);
}

#[test]
fn a_file_that_is_not_a_video_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.mp4");
    std::fs::write(&bad, b"this is not a video").unwrap();
    let err = pipeline::video::decode_rgb(&bad, |_, _| true, |_| Ok(())).unwrap_err().to_string();
    assert!(err.contains("notes.mp4"), "{err}");
}
