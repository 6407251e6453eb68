//! One clip: labels, given landmarks, frames, faces, crops, rows.
//!
//! Everything that can go wrong with a clip's own files becomes a
//! [`Failure`] and the run goes on; only errors of the output (shard writing)
//! are returned as `Err`, because they would fail every clip.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use schemas::{FaceRow, Labels};

use super::align::{align, encode_jpeg};
use super::decode::{decode_jpeg, decode_video, Select};
use super::labels::{read_bp4d, read_disfa};
use super::report::Failure;
use super::sources::{bp4d_frames, bp4d_label_path, Clip, ClipKind, Dataset};
use super::track::{FaceCounts, TrackConfig, Tracked, Tracker};
use super::Context;
use crate::error::{PipelineError, Result};
use crate::landmarks::given::read_sidecar;
use crate::landmarks::{to49, FrameRef, LandmarkBackend, Points68};
use crate::video::RgbFrame;

/// Nanosecond and frame counters of the stages, shared by the workers.
#[derive(Debug, Default)]
pub struct Timers {
    /// Per stage (decode, landmarks, align, encode, write): nanoseconds.
    pub nanos: [AtomicU64; 5],
    /// Per stage: frames.
    pub frames: [AtomicU64; 5],
}

/// Stage indices into [`Timers`].
pub mod stage {
    /// Decoding.
    pub const DECODE: usize = 0;
    /// Landmark inference.
    pub const LANDMARKS: usize = 1;
    /// Fit and warp.
    pub const ALIGN: usize = 2;
    /// JPEG encoding.
    pub const ENCODE: usize = 3;
    /// Shard writing.
    pub const WRITE: usize = 4;
}

impl Timers {
    /// Adds `frames` frames and the time since `start` to stage `s`.
    pub fn add(&self, s: usize, frames: u64, start: Instant) {
        self.nanos[s].fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.frames[s].fetch_add(frames, Ordering::Relaxed);
    }
}

/// Processes `clip`: pushes its rows to `sink` in frame order and its
/// failures to `failures`. Returns the rows produced.
pub fn process_clip(
    ctx: &Context,
    clip: &Clip,
    failures: &mut Vec<Failure>,
    counts: &mut FaceCounts,
    sink: &mut dyn FnMut(Vec<FaceRow>) -> Result<()>,
) -> Result<u64> {
    let root = &ctx.config.root;
    let rel_of = |p: &std::path::Path| {
        p.strip_prefix(root).map_or_else(|_| p.display().to_string(), |r| r.to_string_lossy().replace('\\', "/"))
    };
    let labels: Option<BTreeMap<i64, Labels>> = match ctx.config.dataset {
        Dataset::Voxceleb2 => None,
        Dataset::Bp4d => {
            let path = bp4d_label_path(root, clip);
            match read_bp4d(&path) {
                Ok((m, warning)) => {
                    failures.extend(warning.map(|w| Failure::file(&rel_of(&w.path), "labels", &w.message)));
                    Some(m)
                }
                Err(e) => {
                    failures.push(Failure::file(&rel_of(&path), "labels", format!("{e}")));
                    return Ok(0);
                }
            }
        }
        Dataset::Disfa => match read_disfa(root, &clip.subject) {
            Ok((m, warnings)) => {
                failures.extend(warnings.iter().map(|w| Failure::file(&rel_of(&w.path), "labels", &w.message)));
                Some(m)
            }
            Err(e) => {
                failures.push(Failure::file(&clip.rel_path, "labels", format!("{e}")));
                return Ok(0);
            }
        },
    };
    let given: Option<BTreeMap<i64, Points68>> = if ctx.spec.needs_given() {
        match read_sidecar(&clip.sidecar_path()) {
            Ok(m) => Some(m),
            Err(e) => {
                failures.push(Failure::file(&rel_of(&clip.sidecar_path()), "landmarks", format!("{e}")));
                return Ok(0);
            }
        }
    } else {
        None
    };
    let mut rows = 0u64;
    let mut tracker = Tracker::new(TrackConfig { upsample: ctx.config.upsample, ..Default::default() });
    let mut handle = |frames: Vec<RgbFrame>, failures: &mut Vec<Failure>| -> Result<()> {
        let found =
            Found { labels: labels.as_ref(), given: given.as_ref(), tracker: &mut tracker, counts: &mut *counts };
        let out = frames_to_rows(ctx, clip, frames, found, failures);
        rows += out.len() as u64;
        let t = Instant::now();
        let n = out.len() as u64;
        sink(out)?;
        ctx.timers.add(stage::WRITE, n, t);
        Ok(())
    };
    match clip.kind {
        ClipKind::Video => {
            let select = match &labels {
                None => Select::Fps(ctx.config.fps),
                Some(l) => Select::Indices(l.keys().copied().collect()),
            };
            let mut frame_failures = Vec::new();
            let mut delivered = BTreeSet::new();
            let mut decode_start = Instant::now();
            let mut decode_nanos = 0u64;
            let result = decode_video(&clip.path, &select, ctx.config.batch_size, |batch| {
                decode_nanos += decode_start.elapsed().as_nanos() as u64;
                delivered.extend(batch.iter().map(|f| f.index));
                let r = handle(batch, &mut frame_failures);
                decode_start = Instant::now();
                r
            });
            decode_nanos += decode_start.elapsed().as_nanos() as u64;
            failures.append(&mut frame_failures);
            match result {
                Ok(stats) => {
                    ctx.timers.nanos[stage::DECODE].fetch_add(decode_nanos, Ordering::Relaxed);
                    ctx.timers.frames[stage::DECODE].fetch_add(stats.frames, Ordering::Relaxed);
                    if stats.decoded == 0 {
                        failures.push(Failure::file(&clip.rel_path, "decode", "the video stream has no frames"));
                    }
                    for bad in &stats.bad_packets {
                        failures.push(Failure::frame(
                            &clip.rel_path,
                            bad.index,
                            "decode",
                            format!(
                                "the packet of frame {} could not be decoded ({}); the frame is missing, later frames keep their own indices",
                                bad.index, bad.message
                            ),
                        ));
                    }
                    if let Select::Indices(wanted) = &select {
                        gaps(clip, wanted, &delivered, stats.frames, failures);
                        past_the_end(clip, wanted, stats.frames, failures);
                    }
                }
                Err(e @ PipelineError::Decode { .. }) => {
                    failures.push(Failure::file(&clip.rel_path, "decode", format!("{e}")));
                }
                Err(e) => return Err(e),
            }
        }
        ClipKind::Frames => {
            let files = match bp4d_frames(&clip.path) {
                Ok(f) => f,
                Err(e) => {
                    failures.push(Failure::file(&clip.rel_path, "decode", format!("{e}")));
                    return Ok(0);
                }
            };
            let keys: Vec<i64> = labels.as_ref().map(|l| l.keys().copied().collect()).unwrap_or_default();
            for chunk in keys.chunks(ctx.config.batch_size.max(1)) {
                let t = Instant::now();
                let decoded: Vec<std::result::Result<RgbFrame, Failure>> = chunk
                    .par_iter()
                    .map(|&k| match files.get(&k) {
                        None => Err(Failure::frame(
                            &clip.rel_path,
                            k,
                            "decode",
                            format!("frame {k} is coded in the AU_OCC file but {}/ has no {k}.jpg", clip.rel_path),
                        )),
                        Some(p) => {
                            decode_jpeg(p, k).map_err(|e| Failure::frame(&rel_of(p), k, "decode", format!("{e}")))
                        }
                    })
                    .collect();
                let ok: Vec<RgbFrame> =
                    decoded.into_iter().filter_map(|r| r.map_err(|f| failures.push(f)).ok()).collect();
                ctx.timers.add(stage::DECODE, ok.len() as u64, t);
                handle(ok, failures)?;
            }
        }
    }
    Ok(rows)
}

/// Labeled frames inside the video that did not come out of the decoder (a
/// dropped or unreadable frame): one row per run of consecutive frames.
fn gaps(clip: &Clip, wanted: &BTreeSet<i64>, delivered: &BTreeSet<i64>, frames: u64, failures: &mut Vec<Failure>) {
    let missing: Vec<i64> = wanted.range(..frames as i64).filter(|i| !delivered.contains(i)).copied().collect();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for i in missing {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => runs.push((i, i)),
        }
    }
    for (first, last) in runs {
        failures.push(Failure::frame(
            &clip.rel_path,
            first,
            "labels",
            format!(
                "labelled frames {}..={} (numbered from 1) are missing from the video (dropped or unreadable); their labels are unused, later frames keep theirs (frame numbers come from the timestamps)",
                first + 1,
                last + 1
            ),
        ));
    }
}

/// Labeled frames the video does not have (DISFA label rows past its end).
fn past_the_end(clip: &Clip, wanted: &BTreeSet<i64>, decoded: u64, failures: &mut Vec<Failure>) {
    let missing: Vec<i64> = wanted.range(decoded as i64..).copied().collect();
    if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
        failures.push(Failure::file(
            &clip.rel_path,
            "labels",
            format!(
                "{} label rows (frames {}..={}, numbered from 1) are past the end of the video ({decoded} frames decoded)",
                missing.len(),
                first + 1,
                last + 1
            ),
        ));
    }
}

/// What a clip's frames are paired with, and its tracking state.
struct Found<'a> {
    labels: Option<&'a BTreeMap<i64, Labels>>,
    given: Option<&'a BTreeMap<i64, Points68>>,
    tracker: &'a mut Tracker,
    counts: &'a mut FaceCounts,
}

/// The faces of `frames`: tracked where the backend has a detector
/// ([`super::track`]), else the backend's own (given points).
fn find_faces(
    backend: &mut dyn LandmarkBackend,
    tracker: &mut Tracker,
    refs: &[FrameRef<'_>],
    times: &[i64],
) -> Result<Vec<Tracked>> {
    if backend.has_detector() {
        return tracker.faces(backend, refs, times);
    }
    Ok(backend.detect(refs)?.into_iter().map(Tracked::given).collect())
}

fn frames_to_rows(
    ctx: &Context,
    clip: &Clip,
    frames: Vec<RgbFrame>,
    found: Found<'_>,
    failures: &mut Vec<Failure>,
) -> Vec<FaceRow> {
    let Found { labels, given, tracker, counts } = found;
    let mut kept = Vec::with_capacity(frames.len());
    for f in frames {
        match given {
            Some(g) if !g.contains_key(&f.index) => failures.push(Failure::frame(
                &clip.rel_path,
                f.index,
                "landmarks",
                format!("the landmark sidecar has no row for frame {}", f.index),
            )),
            _ => kept.push(f),
        }
    }
    let refs: Vec<FrameRef<'_>> = kept
        .iter()
        .map(|f| FrameRef {
            width: f.width,
            height: f.height,
            rgb: &f.data,
            given: given.and_then(|g| g.get(&f.index)),
        })
        .collect();
    let t = Instant::now();
    let tag = super::partition::fnv1a64(clip.rel_path.as_bytes());
    let times: Vec<i64> = kept.iter().map(|f| f.timestamp_ms).collect();
    let faces = ctx.pool.with(|b| {
        b.set_clip(tag);
        find_faces(b, tracker, &refs, &times)
    });
    ctx.timers.add(stage::LANDMARKS, refs.len() as u64, t);
    let faces = match faces {
        Ok(f) if f.len() == kept.len() => {
            f.iter().for_each(|t| counts.add_frame(t));
            f
        }
        Ok(f) => {
            failures.push(Failure::file(
                &clip.rel_path,
                "landmarks",
                format!("the backend returned {} results for {} frames", f.len(), kept.len()),
            ));
            return Vec::new();
        }
        Err(e) => {
            failures.push(Failure::file(&clip.rel_path, "landmarks", format!("{e}")));
            return Vec::new();
        }
    };
    let cfg = &ctx.config;
    let results: Vec<std::result::Result<FaceRow, Failure>> = kept
        .par_iter()
        .zip(faces.par_iter())
        .map(|(f, face)| {
            let fail = |stage: &str, msg: String| Failure::frame(&clip.rel_path, f.index, stage, msg);
            let detector_score = face.detector_score;
            let face =
                face.face.as_ref().ok_or_else(|| fail("landmarks", format!("no face found in frame {}", f.index)))?;
            let t = Instant::now();
            let aligned = align(&f.data, f.width, f.height, &to49(&face.points), cfg.crop_size)
                .ok_or_else(|| fail("align", "the 49 landmarks are degenerate (no spread)".into()))?;
            ctx.timers.add(stage::ALIGN, 1, t);
            let t = Instant::now();
            let image = encode_jpeg(&aligned.rgb, cfg.crop_size, cfg.jpeg_quality)
                .map_err(|e| fail("encode", format!("{e}")))?;
            ctx.timers.add(stage::ENCODE, 1, t);
            let row_labels = match labels {
                None => None,
                Some(l) => {
                    Some(l.get(&f.index).cloned().ok_or_else(|| fail("labels", "no labels for this frame".into()))?)
                }
            };
            Ok(FaceRow {
                sample_id: FaceRow::make_sample_id(cfg.dataset.name(), &clip.subject, &clip.video, &clip.clip, f.index),
                dataset: cfg.dataset.name().into(),
                subject: clip.subject.clone(),
                video: clip.video.clone(),
                clip: clip.clip.clone(),
                frame_index: f.index,
                timestamp_ms: f.timestamp_ms,
                image,
                crop_size: cfg.crop_size as i32,
                landmarks: aligned.landmarks,
                landmark_score: face.score,
                landmark_source: ctx.pool.name().into(),
                face_box: face.face_box,
                source_width: f.width as i32,
                source_height: f.height as i32,
                crop_transform: aligned.to_crop.matrix(),
                labels: row_labels,
                detector_score,
            })
        })
        .collect();
    results.into_iter().filter_map(|r| r.map_err(|f| failures.push(f)).ok()).collect()
}
