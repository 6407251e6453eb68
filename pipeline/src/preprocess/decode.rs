//! Frames of a clip: which ones to keep, decoded to upright RGB.
//!
//! * VoxCeleb2 is sampled at `--fps` on the frames' presentation times, so
//!   variable-frame-rate files sample evenly in time: the first frame is kept,
//!   then the first frame at or after each next multiple of `1/fps` seconds
//!   (counted from the first frame's time). `fps <= 0` keeps every frame.
//!   Frames between sampling times that no other frame refers to are not
//!   decoded at all (FFmpeg's `skip_frame = noref`); the kept frames are
//!   the same as with a full decode.
//! * DISFA keeps the labeled frames: label frame `n` (numbered from 1) is
//!   the frame with zero-based index `n - 1` (see `labels`). Indices come
//!   from the frames' timestamps, not from counting, so a dropped or
//!   unreadable frame leaves a gap (reported) and shifts no label.
//! * BP4D frames are JPEG files: only the coded frame numbers are read.
//!
//! Rotation metadata is applied as a player would (clockwise 90/180/270,
//! [`crate::video::rotation_degrees`], read from the context the decoder
//! opened: each file is opened once); odd sizes and any codec FFmpeg decodes
//! (H.264, HEVC, MPEG-4, ...) go through [`crate::video::decode_rgb`].

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{PipelineError, Result};
use crate::video::{self, BadPacket, FrameChoice, RgbFrame};

/// Which decoded frames of a video to keep.
#[derive(Debug, Clone)]
pub enum Select {
    /// Sample at this many frames per second of presentation time (`<= 0`: all).
    Fps(f64),
    /// Keep these zero-based decoded indices.
    Indices(BTreeSet<i64>),
}

/// The sampling state of [`Select::Fps`].
#[derive(Debug, Clone)]
pub struct FpsSampler {
    fps: f64,
    start_ms: Option<i64>,
    next_ms: f64,
}

impl FpsSampler {
    /// A sampler at `fps` frames per second (`<= 0` keeps everything).
    pub fn new(fps: f64) -> Self {
        Self { fps, start_ms: None, next_ms: f64::NEG_INFINITY }
    }

    /// Whether the frame presented at `ts_ms` is kept. Frames must come in
    /// decode (presentation) order.
    pub fn keep(&mut self, ts_ms: i64) -> bool {
        if self.fps <= 0.0 {
            return true;
        }
        let start = *self.start_ms.get_or_insert(ts_ms);
        let t = (ts_ms - start) as f64;
        if t + 1e-6 < self.next_ms {
            return false;
        }
        let period = 1000.0 / self.fps;
        self.next_ms = ((t / period + 1e-9).floor() + 1.0) * period;
        true
    }
}

impl FpsSampler {
    /// Whether a frame at `ts_ms` could be kept by [`FpsSampler::keep`]
    /// without changing its state: `false` only for frames before the next
    /// sampling time (they are never kept, so the decoder may skip them).
    pub fn may_keep(&self, ts_ms: i64) -> bool {
        match self.start_ms {
            _ if self.fps <= 0.0 => true,
            None => true,
            Some(start) => (ts_ms - start) as f64 + 1e-6 >= self.next_ms,
        }
    }
}

/// [`Select`] as the decoder's [`FrameChoice`].
struct Chooser<'a> {
    select: &'a Select,
    sampler: Option<FpsSampler>,
}

impl FrameChoice for Chooser<'_> {
    fn may_keep(&self, index: i64, ts_ms: i64) -> bool {
        match (&self.sampler, self.select) {
            (Some(s), _) => s.may_keep(ts_ms),
            (None, Select::Indices(set)) => set.contains(&index),
            (None, Select::Fps(_)) => true,
        }
    }

    fn keep(&mut self, index: i64, ts_ms: i64) -> bool {
        match (&mut self.sampler, self.select) {
            (Some(s), _) => s.keep(ts_ms),
            (None, Select::Indices(set)) => set.contains(&index),
            (None, Select::Fps(_)) => true,
        }
    }
}

/// What decoding a video produced besides its frames.
#[derive(Debug, Clone, Default)]
pub struct DecodeStats {
    /// Frames of the stream through the last one decoded (skipped ones count).
    pub frames: u64,
    /// Frames the decoder produced (kept or not).
    pub decoded: u64,
    /// Frames kept and handed to the sink.
    pub kept: u64,
    /// Packets the decoder refused (their frames are missing).
    pub bad_packets: Vec<BadPacket>,
}

/// Decodes `path`, hands kept frames (upright) to `sink` in batches of up to
/// `batch` frames. An error returned by `sink` stops decoding and is returned
/// as is; FFmpeg failures come back as [`PipelineError::Decode`].
pub fn decode_video(
    path: &Path,
    select: &Select,
    batch: usize,
    mut sink: impl FnMut(Vec<RgbFrame>) -> Result<()>,
) -> Result<DecodeStats> {
    let sampler = match select {
        Select::Fps(f) => Some(FpsSampler::new(*f)),
        Select::Indices(_) => None,
    };
    let chooser = Chooser { select, sampler };
    let mut pending: Vec<RgbFrame> = Vec::with_capacity(batch);
    let mut sink_error: Option<PipelineError> = None;
    let result = video::decode_rgb(path, chooser, |frame| {
        pending.push(frame);
        if pending.len() >= batch.max(1) {
            if let Err(e) = sink(std::mem::take(&mut pending)) {
                sink_error = Some(e);
                return Err(PipelineError::Config("stopped by the frame consumer".into()));
            }
        }
        Ok(())
    });
    if let Some(e) = sink_error {
        return Err(e);
    }
    // Frames decoded before a decode error (a truncated file) still reach
    // the sink, then the error is returned.
    if !pending.is_empty() && matches!(&result, Ok(_) | Err(PipelineError::Decode { .. })) {
        sink(pending)?;
    }
    let r = result?;
    Ok(DecodeStats { frames: r.frames, decoded: r.decoded, kept: r.kept, bad_packets: r.bad_packets })
}

/// Decodes one JPEG frame file (BP4D) to RGB; `key` becomes its index and
/// its time is `key * 40 ms` (BP4D is recorded at 25 fps).
pub fn decode_jpeg(path: &Path, key: i64) -> Result<RgbFrame> {
    let bytes = std::fs::read(path).map_err(|e| PipelineError::io(path, e))?;
    let img =
        image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).map_err(|e| PipelineError::Decode {
            path: path.to_path_buf(),
            stage: "decode JPEG",
            message: format!("not a readable JPEG ({e})"),
        })?;
    let rgb = img.to_rgb8();
    Ok(RgbFrame { index: key, timestamp_ms: key * 40, width: rgb.width(), height: rgb.height(), data: rgb.into_raw() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fps_sampler_keeps_the_first_frame_at_or_after_each_period() {
        // 25 fps clip, 1 fps: times 0, 40, ... keep 0, 1000, 2000.
        let mut s = FpsSampler::new(1.0);
        let kept: Vec<i64> = (0..75).map(|i| i * 40).filter(|&t| s.keep(t)).collect();
        assert_eq!(kept, vec![0, 1000, 2000]);
        // Variable frame rate: gaps skip periods without bunching samples.
        let mut s = FpsSampler::new(2.0);
        let times = [100, 120, 590, 610, 1700, 1710, 2100, 2700];
        let kept: Vec<i64> = times.into_iter().filter(|&t| s.keep(t)).collect();
        // relative: 0, 20, 490, 510 (>= 500), 1600 (>= 1000), 1610, 2000 (>= 2000), 2600 (>= 2500)
        assert_eq!(kept, vec![100, 610, 1700, 2100, 2700]);
        let mut all = FpsSampler::new(0.0);
        assert!(all.keep(0) && all.keep(0));
    }
}
