//! The three raw dataset trees (docs/synth.md), with landmark sidecars.
//!
//! * VoxCeleb2: `dev/mp4/<id>/<ytid>/<clip>.mp4`, 224x224, 25 fps, H.264.
//! * BP4D: `Sequences/<subject>/<task>/<frame>.jpg` (zero-padded frame
//!   numbers for every other subject, unpadded for the rest, and sequences
//!   that cross 99 -> 100, so string order is not frame order) and
//!   `AUCoding/AU_OCC/<subject>_<task>.csv`: header `0,1,...,28`, rows only
//!   for the coded frames, 0/1 for drawn AUs (occurrence = intensity >= 2),
//!   9 for undrawn AUs and for a few unknown stretches of drawn ones.
//! * DISFA: `Videos_LeftCamera/LeftVideo<subject>_comp.avi` (MPEG-4 part 2,
//!   20 fps) and `ActionUnit_Labels/<subject>/<subject>_au<N>.txt`, lines
//!   `frame,intensity` from frame 1, for DISFA's 12 coded AUs.

use std::path::{Path, PathBuf};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::clip::{ClipPlan, Framing};
use super::draw::Rendered;
use super::encode::{write_atomic, write_jpeg, write_sidecar, Codec, VideoEncoder};
use super::face::Identity;
use super::{au, preview, rng_for, ClipSummary, Layout, SynthConfig, SynthSummary};
use crate::error::{PipelineError, Result};
use crate::landmarks::given::sidecar_path;
use crate::progress::Progress;

/// DISFA's subjects (27 of SN001-SN032, docs/manifests.md).
pub const DISFA_SUBJECTS: [&str; 27] = [
    "SN001", "SN002", "SN003", "SN004", "SN005", "SN006", "SN007", "SN008", "SN009", "SN010", "SN011", "SN012",
    "SN013", "SN016", "SN017", "SN018", "SN021", "SN023", "SN024", "SN025", "SN026", "SN027", "SN028", "SN029",
    "SN030", "SN031", "SN032",
];
/// The AUs DISFA codes (one label file each).
pub const DISFA_AUS: [u8; 12] = [1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26];
/// AU columns of the BP4D look-alike's occurrence CSVs (after the frame column `0`).
pub const BP4D_CSV_AUS: std::ops::RangeInclusive<u8> = 1..=28;

/// One clip to generate.
struct Job {
    subject: String,
    subject_index: usize,
    video: String,
    clip: String,
}

/// What a clip produced: its summary and a few frames for the preview.
type Done = (ClipSummary, Vec<Rendered>);

/// BP4D subject names: F001, M001, F002, ... (23 F, 18 M).
pub fn bp4d_subjects(n: usize) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for i in 1..=23 {
        names.push(format!("F{i:03}"));
        if i <= 18 {
            names.push(format!("M{i:03}"));
        }
    }
    if n > names.len() {
        return Err(PipelineError::Config(format!("BP4D has 41 subjects, {n} asked for")));
    }
    names.truncate(n);
    Ok(names)
}

fn vox_ids(seed: u64, n: usize) -> Vec<String> {
    let mut rng = rng_for(seed, &["voxceleb2", "ids"]);
    let mut k = 12;
    (0..n)
        .map(|_| {
            let id = format!("id{k:05}");
            k += rng.gen_range(1..=7);
            id
        })
        .collect()
}

fn youtube_id(seed: u64, id: &str, v: usize) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rng_for(seed, &["voxceleb2", id, "yt", &v.to_string()]);
    (0..11).map(|_| ABC[rng.gen_range(0..ABC.len())] as char).collect()
}

fn jobs(layout: Layout, cfg: &SynthConfig) -> Result<Vec<Job>> {
    let mut out = Vec::new();
    match layout {
        Layout::VoxCeleb2 => {
            for (si, id) in vox_ids(cfg.seed, cfg.subjects).into_iter().enumerate() {
                let mut n = 0;
                for v in 0..cfg.videos_per_subject {
                    let yt = youtube_id(cfg.seed, &id, v);
                    for _ in 0..cfg.clips_per_video {
                        n += 1;
                        out.push(Job {
                            subject: id.clone(),
                            subject_index: si,
                            video: yt.clone(),
                            clip: format!("{n:05}"),
                        });
                    }
                }
            }
        }
        Layout::Bp4d => {
            if cfg.videos_per_subject > 8 {
                return Err(PipelineError::Config(format!("BP4D has 8 tasks, {} asked for", cfg.videos_per_subject)));
            }
            for (si, s) in bp4d_subjects(cfg.subjects)?.into_iter().enumerate() {
                for t in 1..=cfg.videos_per_subject {
                    out.push(Job {
                        subject: s.clone(),
                        subject_index: si,
                        video: format!("T{t}"),
                        clip: String::new(),
                    });
                }
            }
        }
        Layout::Disfa => {
            if cfg.subjects > DISFA_SUBJECTS.len() {
                return Err(PipelineError::Config(format!("DISFA has 27 subjects, {} asked for", cfg.subjects)));
            }
            for (si, s) in DISFA_SUBJECTS.iter().take(cfg.subjects).enumerate() {
                let video = format!("LeftVideo{s}_comp");
                out.push(Job { subject: s.to_string(), subject_index: si, video, clip: String::new() });
            }
        }
    }
    Ok(out)
}

/// Generates the tree (see [`super::generate`]).
pub(super) fn generate(layout: Layout, out: &Path, cfg: &SynthConfig, progress: &dyn Progress) -> Result<SynthSummary> {
    let jobs = jobs(layout, cfg)?;
    progress.start("synth", jobs.len() as u64);
    let keep = if cfg.preview.is_some() { preview::COLUMNS } else { 0 };
    let done: Vec<Done> = jobs
        .par_iter()
        .map(|job| {
            let r = run(layout, out, cfg, job, keep);
            progress.advance(1);
            r
        })
        .collect::<Result<_>>()?;
    progress.finish();
    let mut subjects: Vec<String> = Vec::new();
    for j in &jobs {
        if !subjects.contains(&j.subject) {
            subjects.push(j.subject.clone());
        }
    }
    if let (Some(path), Some(first)) = (&cfg.preview, jobs.first()) {
        let identity = Identity::sample(&mut rng_for(cfg.seed, &[layout.name(), &first.subject]));
        let rows: Vec<(String, Vec<Rendered>)> =
            done.iter().take(4).map(|(c, f)| (format!("{} {}", c.subject, c.video), f.clone())).collect();
        preview::write(path, &rows, &identity)?;
    }
    let clips: Vec<ClipSummary> = done.into_iter().map(|(c, _)| c).collect();
    Ok(SynthSummary {
        layout,
        root: out.to_path_buf(),
        frames: clips.iter().map(|c| c.frame_numbers.len()).sum(),
        label_files: clips.iter().map(|c| c.labels.len()).sum(),
        subjects,
        clips,
        preview: cfg.preview.clone(),
    })
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| PipelineError::io(p, e))
}

/// The plan of one clip and the clip's random stream (after planning), as
/// [`super::generate`] draws them.
fn plan(layout: Layout, cfg: &SynthConfig, subject: &str, video: &str, clip: &str) -> (ClipPlan, ChaCha8Rng) {
    let identity =
        Identity { au_gain: cfg.au_gain, ..Identity::sample(&mut rng_for(cfg.seed, &[layout.name(), subject])) };
    let mut rng = rng_for(cfg.seed, &[layout.name(), subject, video, clip]);
    let (fps, size, framing) = match layout {
        Layout::VoxCeleb2 => (25, (224, 224), Framing { cx: 0.5, cy: 0.53, scale: 0.3 }),
        Layout::Bp4d => (25, scaled(1040, 1392, cfg.frame_scale), Framing { cx: 0.5, cy: 0.45, scale: 0.26 }),
        Layout::Disfa => (20, scaled(1024, 768, cfg.frame_scale), Framing { cx: 0.5, cy: 0.5, scale: 0.25 }),
    };
    let frames = ((cfg.seconds * fps as f32).round() as usize).max(1);
    let plan = ClipPlan::new(&mut rng, identity, frames, fps as f32, size, framing);
    (plan, rng)
}

/// The plan that [`super::generate`] drew `clip` from: re-renders its frames
/// exactly as they were before compression (tests compare them with the
/// decoded files).
pub fn clip_plan(layout: Layout, cfg: &SynthConfig, clip: &ClipSummary) -> ClipPlan {
    plan(layout, cfg, &clip.subject, &clip.video, &clip.clip).0
}

fn run(layout: Layout, out: &Path, cfg: &SynthConfig, job: &Job, keep: usize) -> Result<Done> {
    let (plan, mut rng) = plan(layout, cfg, &job.subject, &job.video, &job.clip);
    let (size, frames) = ((plan.width, plan.height), plan.aus.len());
    let fps = plan.fps as u32;
    let picks: Vec<usize> = (0..keep).map(|k| k * frames / keep.max(1)).collect();
    let mut samples = Vec::new();
    let mut rows = Vec::with_capacity(frames);
    let mut summary = ClipSummary {
        subject: job.subject.clone(),
        video: job.video.clone(),
        clip: job.clip.clone(),
        media: PathBuf::new(),
        sidecar: PathBuf::new(),
        frame_numbers: Vec::with_capacity(frames),
        aus: plan.aus.clone(),
        labels: Vec::new(),
        size,
    };
    let mut each = |i: usize, number: i64, f: Rendered| {
        rows.push((number, f.points));
        summary.frame_numbers.push(number);
        if picks.contains(&i) {
            samples.push(f);
        }
    };
    match layout {
        Layout::VoxCeleb2 | Layout::Disfa => {
            let (dir, name, codec) = if layout == Layout::VoxCeleb2 {
                (out.join("dev/mp4").join(&job.subject).join(&job.video), format!("{}.mp4", job.clip), Codec::H264Aac)
            } else {
                (out.join("Videos_LeftCamera"), format!("{}.avi", job.video), Codec::Mpeg4Avi)
            };
            mkdir(&dir)?;
            summary.media = dir.join(name);
            let mut enc = VideoEncoder::start(&summary.media, size.0, size.1, fps, frames, codec)?;
            for i in 0..frames {
                let f = plan.render(i)?;
                enc.push(&f.rgb)?;
                each(i, i as i64, f);
            }
            enc.finish()?;
        }
        Layout::Bp4d => {
            let dir = out.join("Sequences").join(&job.subject).join(&job.video);
            mkdir(&dir)?;
            summary.media = dir.clone();
            // Numbers cross 99 -> 100 mid-sequence: "100.jpg" sorts before "99.jpg".
            let start = (100 - rng.gen_range(frames / 4..=frames * 3 / 4) as i64).max(1);
            let padded = job.subject_index % 2 == 0;
            for i in 0..frames {
                let f = plan.render(i)?;
                let number = start + i as i64;
                let name = if padded { format!("{number:04}.jpg") } else { format!("{number}.jpg") };
                write_jpeg(&dir.join(name), &f.rgb, size.0, size.1)?;
                each(i, number, f);
            }
        }
    }
    summary.sidecar = sidecar_path(&summary.media);
    write_sidecar(&summary.sidecar, &rows)?;
    summary.labels = match layout {
        Layout::VoxCeleb2 => Vec::new(),
        Layout::Bp4d => vec![bp4d_labels(out, job, &summary, &mut rng)?],
        Layout::Disfa => disfa_labels(out, job, &summary)?,
    };
    Ok((summary, samples))
}

/// Real size scaled by `s`, keeping the aspect ratio (even sides for yuv420p).
fn scaled(w: u32, h: u32, s: f32) -> (u32, u32) {
    let ws = ((w as f32 * s / 2.0).round() as u32 * 2).max(16);
    (ws, (ws as f32 * h as f32 / w as f32 / 2.0).round() as u32 * 2)
}

fn bp4d_labels(out: &Path, job: &Job, clip: &ClipSummary, rng: &mut impl Rng) -> Result<PathBuf> {
    let dir = out.join("AUCoding/AU_OCC");
    mkdir(&dir)?;
    let path = dir.join(format!("{}_{}.csv", job.subject, job.video));
    let n = clip.frame_numbers.len();
    // Only a coded subrange has labels, like the real files.
    let coded = if n >= 8 { 2..n - 2 } else { 0..n };
    // A few unknown (9) stretches on drawn protocol AUs.
    let protocol = [1u8, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24];
    let unknown: Vec<(u8, std::ops::Range<usize>)> = (0..2)
        .map(|_| {
            let au = protocol[rng.gen_range(0..protocol.len())];
            let len = rng.gen_range(3..=6).min(coded.len());
            let s = rng.gen_range(coded.start..=coded.end - len);
            (au, s..s + len)
        })
        .collect();
    let mut s = String::from("0");
    for au in BP4D_CSV_AUS {
        s.push_str(&format!(",{au}"));
    }
    s.push('\n');
    for i in coded {
        s.push_str(&clip.frame_numbers[i].to_string());
        for au in BP4D_CSV_AUS {
            let v = match au::slot(au) {
                None => 9,
                Some(_) if unknown.iter().any(|(a, r)| *a == au && r.contains(&i)) => 9,
                Some(k) => i32::from(clip.aus[i][k] >= 2.0),
            };
            s.push_str(&format!(",{v}"));
        }
        s.push('\n');
    }
    write_atomic(&path, s.as_bytes())?;
    Ok(path)
}

fn disfa_labels(out: &Path, job: &Job, clip: &ClipSummary) -> Result<Vec<PathBuf>> {
    let dir = out.join("ActionUnit_Labels").join(&job.subject);
    mkdir(&dir)?;
    let mut paths = Vec::new();
    for au in DISFA_AUS {
        let path = dir.join(format!("{}_au{au}.txt", job.subject));
        let mut s = String::new();
        for (i, a) in clip.aus.iter().enumerate() {
            let v = au::slot(au).map_or(0, |k| a[k].round().clamp(0.0, 5.0) as i32);
            s.push_str(&format!("{},{v}\n", i + 1));
        }
        write_atomic(&path, s.as_bytes())?;
        paths.push(path);
    }
    Ok(paths)
}
