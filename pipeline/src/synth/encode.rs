//! Writing frames: videos through the `ffmpeg` CLI (raw RGB on stdin), JPEG
//! frames through `image`, and the landmark sidecar CSV.
//!
//! Determinism: the encoders run single-threaded with `+bitexact` flags and
//! no metadata, so the same frames give the same bytes. Files are written
//! under a hidden temporary name and renamed when complete.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::error::{PipelineError, Result};
use crate::landmarks::Points68;

/// The codecs of the two video layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// VoxCeleb2: H.264 (libx264, yuv420p) with a quiet AAC tone track, MP4.
    H264Aac,
    /// DISFA: MPEG-4 part 2 tagged XVID in AVI (not H.264, like the
    /// compressed DISFA release).
    Mpeg4Avi,
}

fn tmp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

fn tool_err(path: &Path, message: impl Into<String>) -> PipelineError {
    PipelineError::Tool { path: path.to_path_buf(), tool: "ffmpeg", message: message.into() }
}

/// A running `ffmpeg` process that takes raw RGB24 frames.
pub struct VideoEncoder {
    child: Child,
    stdin: Option<ChildStdin>,
    path: PathBuf,
    tmp: PathBuf,
    frame_bytes: usize,
}

impl VideoEncoder {
    /// Starts encoding `frames` frames of `width` x `height` at `fps` into `path`.
    pub fn start(path: &Path, width: u32, height: u32, fps: u32, frames: usize, codec: Codec) -> Result<Self> {
        let tmp = tmp_name(path);
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &format!("{width}x{height}")])
            .args(["-framerate", &fps.to_string(), "-i", "pipe:0"]);
        match codec {
            Codec::H264Aac => {
                let secs = frames as f64 / f64::from(fps);
                cmd.args(["-f", "lavfi", "-i", &format!("sine=frequency=220:sample_rate=16000:duration={secs}")])
                    .args(["-map", "0:v", "-map", "1:a"])
                    .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"])
                    .args(["-threads", "1", "-x264-params", "threads=1:lookahead-threads=1"])
                    .args(["-c:a", "aac", "-b:a", "24k", "-af", "volume=0.05"])
                    .args(["-f", "mp4"]);
            }
            Codec::Mpeg4Avi => {
                cmd.args(["-c:v", "mpeg4", "-vtag", "XVID", "-q:v", "4", "-pix_fmt", "yuv420p", "-threads", "1"])
                    .args(["-f", "avi"]);
            }
        }
        cmd.args(["-map_metadata", "-1", "-flags", "+bitexact", "-fflags", "+bitexact"])
            .arg(&tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| tool_err(path, format!("cannot run ffmpeg: {e}")))?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin, path: path.to_path_buf(), tmp, frame_bytes: (width * height * 3) as usize })
    }

    /// Sends one frame (packed RGB24).
    pub fn push(&mut self, rgb: &[u8]) -> Result<()> {
        if rgb.len() != self.frame_bytes {
            return Err(tool_err(&self.path, format!("frame of {} bytes, expected {}", rgb.len(), self.frame_bytes)));
        }
        let stdin = self.stdin.as_mut().ok_or_else(|| tool_err(&self.path, "stdin closed"))?;
        if let Err(e) = stdin.write_all(rgb) {
            // ffmpeg died: its stderr says why.
            self.stdin = None;
            let out = self.child.wait_with_output_ref();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.tmp);
            return Err(tool_err(&self.path, format!("{e}: {out}")));
        }
        Ok(())
    }

    /// Closes the input, waits for ffmpeg, and moves the file into place.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let out = self.child.wait_with_output_ref();
        let status = self.child.wait().map_err(|e| tool_err(&self.path, e.to_string()))?;
        if !status.success() {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(tool_err(&self.path, format!("exit {status}: {out}")));
        }
        std::fs::rename(&self.tmp, &self.path).map_err(|e| PipelineError::io(&self.path, e))
    }
}

trait StderrText {
    fn wait_with_output_ref(&mut self) -> String;
}

impl StderrText for Child {
    /// Reads what the child wrote to stderr (until it exits).
    fn wait_with_output_ref(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s.trim().to_string()
    }
}

/// Writes one RGB frame as a JPEG (quality 90).
pub fn write_jpeg(path: &Path, rgb: &[u8], width: u32, height: u32) -> Result<()> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| PipelineError::Image { path: path.to_path_buf(), message: e.to_string() })?;
    crate::error::write_file(path, &bytes)
}

/// Writes the landmark sidecar: header `frame,x0,y0,...,x67,y67`, one row
/// per frame, pixel coordinates with four decimals.
pub fn write_sidecar(path: &Path, rows: &[(i64, Points68)]) -> Result<()> {
    let mut s = String::from("frame");
    for k in 0..68 {
        s.push_str(&format!(",x{k},y{k}"));
    }
    s.push('\n');
    for (frame, pts) in rows {
        s.push_str(&frame.to_string());
        for p in pts {
            s.push_str(&format!(",{:.4},{:.4}", p[0], p[1]));
        }
        s.push('\n');
    }
    write_atomic(path, s.as_bytes())
}

/// Writes `bytes` to a temporary name, then renames it to `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::error::write_file(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::landmarks::given::{read_sidecar, sidecar_path};

    #[test]
    fn sidecar_round_trips_and_bad_rows_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.ldm68.csv");
        let mut pts = [[0.0f32; 2]; 68];
        for (k, p) in pts.iter_mut().enumerate() {
            *p = [k as f32 * 1.25, 200.0 - k as f32 * 0.5];
        }
        write_sidecar(&path, &[(0, pts), (7, pts)]).unwrap();
        // preprocess's reader is the one reader of the format
        let back = read_sidecar(&path).unwrap();
        assert_eq!(back.into_iter().collect::<Vec<_>>(), vec![(0, pts), (7, pts)]);
        let text = std::fs::read_to_string(&path).unwrap().replace("\n7,", "\nseven,");
        std::fs::write(&path, text).unwrap();
        let err = read_sidecar(&path).unwrap_err().to_string();
        assert!(err.contains("clip.ldm68.csv") && err.contains("line 3") && err.contains("`seven`"), "{err}");
    }

    #[test]
    fn sidecar_names_follow_the_convention() {
        assert_eq!(
            sidecar_path(Path::new("dev/mp4/id00012/abc/00001.mp4")),
            Path::new("dev/mp4/id00012/abc/00001.ldm68.csv")
        );
        assert_eq!(sidecar_path(Path::new("Sequences/F001/T1")), Path::new("Sequences/F001/T1.ldm68.csv"));
        assert_eq!(
            sidecar_path(Path::new("Videos_LeftCamera/LeftVideoSN001_comp.avi")),
            Path::new("Videos_LeftCamera/LeftVideoSN001_comp.ldm68.csv")
        );
    }
}
