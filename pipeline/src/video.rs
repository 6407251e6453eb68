//! Video decoding with FFmpeg (ffmpeg-next) into packed RGB24 frames.

use std::path::Path;

use ffmpeg_next as ffmpeg;

use crate::error::{PipelineError, Result};

/// Versions of the FFmpeg libraries this binary is linked against.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FfmpegVersions {
    /// libavcodec `major.minor.micro`.
    pub avcodec: String,
    /// libavformat `major.minor.micro`.
    pub avformat: String,
    /// libavutil `major.minor.micro`.
    pub avutil: String,
    /// libswscale `major.minor.micro`.
    pub swscale: String,
}

fn dotted(v: u32) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

/// Linked FFmpeg library versions.
pub fn ffmpeg_versions() -> FfmpegVersions {
    FfmpegVersions {
        avcodec: dotted(ffmpeg::codec::version()),
        avformat: dotted(ffmpeg::format::version()),
        avutil: dotted(ffmpeg::util::version()),
        swscale: dotted(ffmpeg::software::scaling::version()),
    }
}

/// Initialises FFmpeg once and silences its own logging (errors reach the
/// caller as [`PipelineError::Decode`] instead).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// One decoded frame, packed RGB24, row-major.
#[derive(Debug, Clone)]
pub struct RgbFrame {
    /// Zero-based index among the decoded frames of the stream.
    pub index: i64,
    /// Presentation time in milliseconds (from the stream's time base).
    pub timestamp_ms: i64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

fn decode_err(path: &Path, stage: &'static str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Decode { path: path.to_path_buf(), stage, message: e.to_string() }
}

/// Decodes every frame of the best video stream of `path`, calling `keep`
/// with each frame index to decide whether the frame is converted to RGB and
/// passed to `sink` (frames not kept are decoded but not converted).
pub fn decode_rgb(
    path: &Path,
    mut keep: impl FnMut(i64, i64) -> bool,
    mut sink: impl FnMut(RgbFrame) -> Result<()>,
) -> Result<u64> {
    init();
    let mut ictx = ffmpeg::format::input(path).map_err(|e| decode_err(path, "open", e))?;
    let stream = ictx
        .streams()
        .best(ffmpeg::media::Type::Video)
        .ok_or_else(|| decode_err(path, "find video stream", "no video stream"))?;
    let stream_index = stream.index();
    let time_base = stream.time_base();
    let ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| decode_err(path, "codec parameters", e))?;
    let mut decoder = ctx.decoder().video().map_err(|e| decode_err(path, "open decoder", e))?;
    let mut scaler: Option<(ffmpeg::software::scaling::Context, (u32, u32, ffmpeg::format::Pixel))> = None;
    let mut index: i64 = 0;
    let mut decoded = ffmpeg::frame::Video::empty();
    let mut receive = |decoder: &mut ffmpeg::decoder::Video, index: &mut i64| -> Result<()> {
        while decoder.receive_frame(&mut decoded).is_ok() {
            let pts = decoded.timestamp().unwrap_or(0);
            let ts_ms = (pts as f64 * f64::from(time_base.numerator()) / f64::from(time_base.denominator().max(1))
                * 1000.0)
                .round() as i64;
            if keep(*index, ts_ms) {
                let key = (decoded.width(), decoded.height(), decoded.format());
                if scaler.as_ref().map(|s| s.1) != Some(key) {
                    let s = ffmpeg::software::scaling::Context::get(
                        key.2,
                        key.0,
                        key.1,
                        ffmpeg::format::Pixel::RGB24,
                        key.0,
                        key.1,
                        ffmpeg::software::scaling::Flags::BILINEAR,
                    )
                    .map_err(|e| decode_err(path, "scale", e))?;
                    scaler = Some((s, key));
                }
                let mut rgb = ffmpeg::frame::Video::empty();
                scaler
                    .as_mut()
                    .expect("set above")
                    .0
                    .run(&decoded, &mut rgb)
                    .map_err(|e| decode_err(path, "scale", e))?;
                sink(RgbFrame {
                    index: *index,
                    timestamp_ms: ts_ms,
                    width: key.0,
                    height: key.1,
                    data: packed_rgb(&rgb),
                })?;
            }
            *index += 1;
        }
        Ok(())
    };
    for (s, packet) in ictx.packets() {
        if s.index() == stream_index {
            decoder.send_packet(&packet).map_err(|e| decode_err(path, "decode", e))?;
            receive(&mut decoder, &mut index)?;
        }
    }
    decoder.send_eof().map_err(|e| decode_err(path, "decode", e))?;
    receive(&mut decoder, &mut index)?;
    Ok(index as u64)
}

/// Copies an RGB24 frame into a tightly packed buffer (FFmpeg pads rows).
fn packed_rgb(frame: &ffmpeg::frame::Video) -> Vec<u8> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let stride = frame.stride(0);
    let data = frame.data(0);
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        out.extend_from_slice(&data[y * stride..y * stride + w * 3]);
    }
    out
}
