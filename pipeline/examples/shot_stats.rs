//! The figures behind the tracker's cut and appearance thresholds
//! (`TrackConfig::cut_distance`, `min_agreement`; issue 23).
//!
//! `cargo run -p mcsfau-pipeline --example shot_stats -- FPS VIDEO...`
//!
//! For each video sampled at FPS (0: every frame), per pair of consecutive
//! sampled frames: the colour-histogram distance of the frames, and the
//! agreement of the grey patch of the earlier frame's largest face box
//! (dlib's HOG detector) with the same box in the later frame. Prints the
//! quantiles per video, and each pair with a distance of at least 0.2 or an
//! agreement under 0.6 (with `-v` every pair); then the microseconds one
//! histogram and one patch take.

use std::path::Path;

use pipeline::landmarks::dlib::{DetectorConfig, FaceDetector};
use pipeline::landmarks::FrameRef;
use pipeline::preprocess::decode::{decode_video, Select};
use pipeline::preprocess::track::shot::{Histogram, Patch};

fn quantiles(v: &mut [f32]) -> String {
    v.sort_by(f32::total_cmp);
    if v.is_empty() {
        return "none".into();
    }
    let q = |p: f32| v[((v.len() - 1) as f32 * p).round() as usize];
    format!(
        "min {:.3} p1 {:.3} p5 {:.3} p50 {:.3} p95 {:.3} p99 {:.3} max {:.3} (n {})",
        q(0.0),
        q(0.01),
        q(0.05),
        q(0.5),
        q(0.95),
        q(0.99),
        q(1.0),
        v.len()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.first().is_some_and(|a| a == "-v");
    if verbose {
        args.remove(0);
    }
    let fps: f64 = args.first().ok_or("usage: shot_stats [-v] FPS VIDEO...")?.parse()?;
    let det = FaceDetector::new(DetectorConfig::default());
    for video in &args[1..] {
        let mut frames = Vec::new();
        decode_video(Path::new(video), &Select::Fps(fps), 64, |b| {
            frames.extend(b);
            Ok(())
        })?;
        let refs: Vec<FrameRef<'_>> =
            frames.iter().map(|f| FrameRef { width: f.width, height: f.height, rgb: &f.data, given: None }).collect();
        let boxes = det.detect_largest(&refs)?;
        let (mut dist, mut agree) = (Vec::new(), Vec::new());
        for k in 1..refs.len() {
            let d = Histogram::of(&refs[k - 1]).distance(&Histogram::of(&refs[k]));
            dist.push(d);
            let a = boxes[k - 1]
                .and_then(|b| Some(Patch::of(&refs[k - 1], b.face_box)?.agreement(&Patch::of(&refs[k], b.face_box)?)));
            agree.extend(a);
            if verbose || d >= 0.2 || a.is_some_and(|a| a < 0.6) {
                println!(
                    "  {video} frame {} -> {}: distance {d:.3}, agreement {a:?}",
                    frames[k - 1].index,
                    frames[k].index
                );
            }
        }
        println!("{video} at {fps} fps:\n  distance  {}\n  agreement {}", quantiles(&mut dist), quantiles(&mut agree));
        if let (Some(f), Some(Some(b))) = (refs.first(), boxes.first()) {
            let reps = 1000;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(Histogram::of(f));
            }
            let hist_us = 1e6 * t.elapsed().as_secs_f64() / reps as f64;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(Patch::of(f, b.face_box));
            }
            let patch_us = 1e6 * t.elapsed().as_secs_f64() / reps as f64;
            println!("  cost: {hist_us:.1} us per histogram, {patch_us:.1} us per patch ({}x{})", f.width, f.height);
        }
    }
    Ok(())
}
