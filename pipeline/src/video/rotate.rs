//! Rotation metadata: the display matrix of a stream, and turning frames
//! upright as a player does.

use std::path::Path;

use ffmpeg_next as ffmpeg;

use super::{decode_err, init, RgbFrame};
use crate::error::Result;

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
    Ok(stream_rotation(&stream))
}

/// [`rotation_degrees`] of an already opened stream (the decoder reads it
/// from the context it decodes from; the file is opened once).
pub fn stream_rotation(stream: &ffmpeg::Stream<'_>) -> u32 {
    let matrix = stream
        .side_data()
        .find(|sd| sd.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix)
        .map(|sd| sd.data().to_vec());
    matrix.as_deref().map_or(0, rotation_from_display_matrix)
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
