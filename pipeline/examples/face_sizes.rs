//! The smallest face dlib's HOG detector finds at each `--upsample`
//! setting, and what a whole-frame search costs (figures for
//! docs/preprocess.md, issue 23).
//!
//! `cargo run -p mcsfau-pipeline --example face_sizes -- PICTURE...`
//!
//! Each picture is scaled whole so that its face (the largest box the
//! detector finds in the picture itself) is W pixels wide, W from 20 to
//! 100, and pasted on a grey 224x224 frame with the face in the middle; the detector then
//! searches that frame at 0, 1 and 2 doublings. Prints, per picture and
//! setting, the smallest W found (and every W missed above it), then the
//! milliseconds per whole-frame search of a 224x224 and a 640x360 frame.

use std::time::Instant;

use pipeline::landmarks::dlib::{largest, DetectorConfig, HogDetector};
use pipeline::landmarks::FrameRef;

const SETTINGS: [u32; 3] = [0, 1, 2];

/// `picture` scaled by `s` and pasted on a grey `w` x `h` frame with the
/// point `c` of the picture at the frame's centre.
fn framed(picture: &image::RgbImage, s: f32, c: [f32; 2], w: u32, h: u32) -> Vec<u8> {
    let (pw, ph) =
        (((picture.width() as f32 * s).round() as u32).max(1), ((picture.height() as f32 * s).round() as u32).max(1));
    let small = image::imageops::resize(picture, pw, ph, image::imageops::FilterType::Triangle);
    let mut frame = image::RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]));
    let (x, y) = ((w as f32 / 2.0 - c[0] * s) as i64, (h as f32 / 2.0 - c[1] * s) as i64);
    image::imageops::overlay(&mut frame, &small, x, y);
    frame.into_raw()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pictures: Vec<String> = std::env::args().skip(1).collect();
    if pictures.is_empty() {
        return Err("usage: face_sizes PICTURE...".into());
    }
    let mut dets: Vec<HogDetector> = SETTINGS
        .iter()
        .map(|&upsample| HogDetector::new(DetectorConfig { upsample, ..Default::default() }))
        .collect::<Result<_, _>>()?;
    for path in &pictures {
        let picture = image::open(path)?.to_rgb8();
        let whole = FrameRef { width: picture.width(), height: picture.height(), rgb: picture.as_raw(), given: None };
        let Some(face) = largest(&dets[0].detect(&whole, 0)?) else {
            println!("{path}: no face at full size");
            continue;
        };
        let face_w = face.face_box[2] - face.face_box[0] + 1.0;
        let centre = [(face.face_box[0] + face.face_box[2]) / 2.0, (face.face_box[1] + face.face_box[3]) / 2.0];
        println!("{path}: {}x{}, face {face_w} px wide", picture.width(), picture.height());
        for (k, det) in dets.iter_mut().enumerate() {
            let mut found = Vec::new();
            for w in (20..=100).step_by(5) {
                let rgb = framed(&picture, w as f32 / face_w, centre, 224, 224);
                let f = FrameRef { width: 224, height: 224, rgb: &rgb, given: None };
                if !det.detect(&f, 0)?.is_empty() {
                    found.push(w);
                }
            }
            let missed: Vec<u32> =
                (20..=100).step_by(5).filter(|w| found.first().is_some_and(|f| w > f) && !found.contains(w)).collect();
            println!("  upsample {}: smallest found {:?} px, missed above it {missed:?}", SETTINGS[k], found.first());
        }
    }
    let picture = image::open(&pictures[0])?.to_rgb8();
    for (w, h) in [(224u32, 224u32), (640, 360)] {
        let rgb = framed(&picture, 0.1, [0.0, 0.0], w, h);
        let f = FrameRef { width: w, height: h, rgb: &rgb, given: None };
        for (k, det) in dets.iter_mut().enumerate() {
            det.detect(&f, 0)?;
            let reps = 20;
            let t = Instant::now();
            for _ in 0..reps {
                det.detect(&f, 0)?;
            }
            println!(
                "{w}x{h} upsample {}: {:.1} ms per whole-frame search",
                SETTINGS[k],
                1e3 * t.elapsed().as_secs_f64() / reps as f64
            );
        }
    }
    Ok(())
}
