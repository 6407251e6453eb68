//! On-device augmentation: torchvision parity for every color operation, the
//! crop and the rotation (reference arrays made by
//! `tests/data/augment/gen_reference.py`), a hand-computed 90 degree
//! rotation, identity settings, and each switch changing only its part.
//!
//! The comparisons run in f64 on both sides (every operation computes in
//! its input's kind), so the bounds hold whatever kernels the CPU selects:
//! in f32, reductions and bilinear weights move by ~1e-7 between kernel sets.

use std::collections::HashMap;
use std::f64::consts::FRAC_PI_2;

use model::data::augment::ops::{
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, affine_theta, normalize, warp, IMAGENET_MEAN,
    IMAGENET_STD,
};
use model::data::{AugmentConfig, Augmenter};
use tch::{Device, Kind, Tensor};

fn reference() -> HashMap<String, Tensor> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/augment/reference.safetensors");
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// The f64 parity bound (the f64 differences measured are ~1e-16).
const TOL: f64 = 1e-12;

fn thetas(rows: &[[f64; 6]]) -> Tensor {
    Tensor::from_slice(rows.as_flattened()).view([rows.len() as i64, 2, 3])
}

#[test]
fn color_ops_and_normalization_match_torchvision() {
    let r = reference();
    let x = &r["x"];
    assert_eq!(x.kind(), Kind::Double, "the reference is f64");
    let f = |k: &str| r[k].view([2, 1, 1, 1]);
    let checks = [
        ("brightness", adjust_brightness(x, &f("brightness")), "out_brightness"),
        ("contrast", adjust_contrast(x, &f("contrast")), "out_contrast"),
        ("saturation", adjust_saturation(x, &f("saturation")), "out_saturation"),
        ("hue", adjust_hue(x, &r["hue"].view([2, 1, 1])), "out_hue"),
        ("normalize", normalize(x), "normalized"),
    ];
    for (what, got, want) in checks {
        assert_eq!(got.kind(), Kind::Double, "{what} keeps f64");
        let d = max_diff(&got, &r[want]);
        assert!(d < TOL, "{what} differs from torchvision by {d:e}");
        assert!(max_diff(&got, x) > 0.01 || what == "normalize", "{what} must change the image");
    }
}

#[test]
fn crop_matches_torchvision_resized_crop_inside_the_box() {
    let r = reference();
    // Box top 0, left 0, 10 rows x 12 columns of a 16x16 image: side fractions
    // 12/16 and 10/16, centre (6, 5) px = (2*6/16 - 1, 2*5/16 - 1) normalized.
    let t = affine_theta(12.0 / 16.0, 10.0 / 16.0, -0.25, -0.375, 0.0);
    let got = warp(&r["x"], &thetas(&[t, t]));
    // torchvision's resize clamps at the box edge, we read the pixel beyond
    // it: compare where both sample strictly inside the box (rows/cols 1..15).
    let inner = |t: &Tensor| t.narrow(2, 1, 14).narrow(3, 1, 14);
    let d = max_diff(&inner(&got), &inner(&r["out_crop"]));
    assert!(d < TOL, "crop differs from torchvision by {d:e}");
    assert!(max_diff(&got, &r["x"]) > 0.05, "the crop must change the image");
}

#[test]
fn rotation_matches_torchvision_inside_the_image() {
    let r = reference();
    let angles = Vec::<f64>::try_from(&r["angles"]).unwrap();
    let rows: Vec<_> = angles.iter().map(|a| affine_theta(1.0, 1.0, 0.0, 0.0, a.to_radians())).collect();
    let got = warp(&r["x"], &thetas(&rows));
    // Pixels within 6 px of the centre sample well inside the image, where
    // neither our edge clamping nor torchvision's fill blending applies.
    let c = Tensor::arange(16, (Kind::Double, Device::Cpu)) - 7.5;
    let disk = (c.view([16, 1]).square() + c.view([1, 16]).square()).le(36.0).to_kind(Kind::Double);
    let d = ((&got - &r["out_rotate"]).abs() * disk).max().double_value(&[]);
    assert!(d < TOL, "rotation differs from torchvision by {d:e}");
    // Corners leave the image at 30 and 50 degrees: black, as torchvision's fill 0.
    assert_eq!(got.get(0).get(0).get(0).get(0).double_value(&[]), 0.0);
}

#[test]
fn a_quarter_turn_moves_pixels_as_computed_by_hand() {
    let x = Tensor::arange(16, (Kind::Double, Device::Cpu)).view([1, 1, 4, 4]).repeat([1, 3, 1, 1]);
    let got = warp(&x, &thetas(&[affine_theta(1.0, 1.0, 0.0, 0.0, FRAC_PI_2)]));
    // Counter-clockwise: the right column, read top to bottom, becomes the top row.
    #[rustfmt::skip]
    let expected = [
        3.0, 7.0, 11.0, 15.0,
        2.0, 6.0, 10.0, 14.0,
        1.0, 5.0, 9.0, 13.0,
        0.0, 4.0, 8.0, 12.0f64,
    ];
    let expected = Tensor::from_slice(&expected).view([1, 1, 4, 4]).repeat([1, 3, 1, 1]);
    assert!(max_diff(&got, &expected) < 1e-9, "{got}");
}

fn batch(seed: i64, b: i64, side: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let images = Tensor::randint(256, [b, 3, side, side], (Kind::Uint8, Device::Cpu));
    let landmarks = Tensor::rand([b, 49, 2], (Kind::Float, Device::Cpu)) * side as f64;
    (images, landmarks)
}

#[test]
fn identity_settings_give_back_p() {
    let (images, landmarks) = batch(0, 3, 16);
    let v = Augmenter::new(AugmentConfig::identity(), 1).unwrap().views(&images, &landmarks, 0).unwrap();
    assert!(v.p1.equal(&v.p) && v.p2.equal(&v.p));
    assert!(v.landmarks.equal(&landmarks));
    let x = images.to_kind(Kind::Float) / 255.0;
    assert!(max_diff(&v.p, &normalize(&x)) == 0.0);
    // A full-image "crop" with zero rotation and identity jitter is the identity too.
    let full = AugmentConfig {
        crop_scale: [1.0, 1.0],
        crop_ratio: [1.0, 1.0],
        rotate_degrees: 0.0,
        brightness: 0.0,
        contrast: 0.0,
        saturation: 0.0,
        hue: 0.0,
        ..AugmentConfig::default()
    };
    let v = Augmenter::new(full, 1).unwrap().views(&images, &landmarks, 0).unwrap();
    assert!(max_diff(&v.p1, &v.p) < 1e-5 && max_diff(&v.p2, &v.p) < 1e-5);
}

/// Views of a 2-color checkerboard (constant within 4x4 cells), in f64.
fn checker_views(cfg: AugmentConfig) -> (Tensor, Tensor) {
    let cell = (Tensor::arange(16, (Kind::Double, Device::Cpu)) / 4.0).floor().remainder(2.0);
    let mask = (cell.view([16, 1]) + cell.view([1, 16])).remainder(2.0); // [16, 16], 0 or 1
    let a = Tensor::from_slice(&[0.2f64, 0.5, 0.8]).view([3, 1, 1]);
    let b = Tensor::from_slice(&[0.7f64, 0.3, 0.1]).view([3, 1, 1]);
    let x: Tensor = &mask * &a + (1.0 - &mask) * &b;
    let x = x.unsqueeze(0).repeat([4, 1, 1, 1]);
    let aug = Augmenter::new(cfg, 3).unwrap();
    let y = aug.apply(&x, &aug.sample(4, 0, 0));
    (x, y)
}

#[test]
fn each_switch_changes_only_its_part() {
    let only = |crop, rotate, color_jitter| AugmentConfig {
        crop,
        rotate,
        color_jitter,
        jitter_prob: 1.0,
        ..Default::default()
    };
    // Color jitter alone: a pointwise color map; the checkerboard keeps its
    // cells exactly, with new colors.
    let (x, y) = checker_views(only(false, false, true));
    let first = y.narrow(2, 0, 4).narrow(3, 0, 4);
    let cell = |r: i64, c: i64| y.narrow(2, 4 * r, 4).narrow(3, 4 * c, 4);
    for (r, c) in [(0, 2), (1, 1), (2, 0), (3, 3)] {
        assert!(max_diff(&cell(r, c), &first) < 1e-12, "cell ({r},{c}) must keep its color");
    }
    assert!(max_diff(&y, &x) > 0.01, "jitter must change colors");
    // Crop and rotation alone: geometry only, colors are never mixed across
    // channels, so each pixel is a blend of the two input colors (and black).
    for cfg in [only(true, false, false), only(false, true, false), only(true, true, false)] {
        let (x, y) = checker_views(cfg.clone());
        assert!(max_diff(&y, &x) > 0.01, "{cfg:?} must move pixels");
        // y = u * a + v * b with u, v >= 0, u + v <= 1: solve from R and B.
        let (a, b) = ([0.2, 0.5, 0.8], [0.7, 0.3, 0.1]);
        let ch = y.unbind(1);
        let det = a[0] * b[2] - a[2] * b[0];
        let u = (&ch[0] * b[2] - &ch[2] * b[0]) / det;
        let v = (&ch[2] * a[0] - &ch[0] * a[2]) / det;
        let g = &u * a[1] + &v * b[1];
        assert!(max_diff(&g, &ch[1]) < 1e-9, "{cfg:?}: green is not the same blend");
        let (umin, vmin) = (u.min().double_value(&[]), v.min().double_value(&[]));
        assert!(umin > -1e-9 && vmin > -1e-9, "{cfg:?}: negative weight {umin} {vmin}");
        assert!((&u + &v).max().double_value(&[]) < 1.0 + 1e-9);
    }
}

#[test]
fn views_are_finite_in_range_reproducible_and_distinct() {
    let (images, landmarks) = batch(1, 4, 32);
    let aug = Augmenter::new(AugmentConfig::default(), 9).unwrap();
    let v = aug.views(&images, &landmarks, 5).unwrap();
    for t in [&v.p, &v.p1, &v.p2] {
        assert_eq!(t.size(), [4, 3, 32, 32]);
        assert_eq!(t.kind(), Kind::Float);
        assert!(bool::try_from(t.isfinite().all()).unwrap());
        for c in 0..3 {
            let (lo, hi) = (-IMAGENET_MEAN[c] / IMAGENET_STD[c], (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
            let ch = t.select(1, c as i64);
            assert!(ch.min().double_value(&[]) >= lo - 1e-5 && ch.max().double_value(&[]) <= hi + 1e-5);
        }
    }
    let again = aug.views(&images, &landmarks, 5).unwrap();
    assert!(again.p1.equal(&v.p1) && again.p2.equal(&v.p2), "same seed and step, same views");
    let next = aug.views(&images, &landmarks, 6).unwrap();
    assert!(max_diff(&next.p1, &v.p1) > 0.1, "another step, other views");
    assert!(max_diff(&v.p1, &v.p2) > 0.1, "the two views differ");
    let err = aug.views(&images.to_kind(Kind::Float), &landmarks, 0).unwrap_err().to_string();
    assert!(err.contains("uint8"), "{err}");
}

#[test]
fn config_switches_deserialize_alone_and_bad_values_are_refused() {
    let cfg: AugmentConfig = serde_json::from_str(r#"{"rotate": false}"#).unwrap();
    assert_eq!(cfg, AugmentConfig { rotate: false, ..AugmentConfig::default() });
    assert!(serde_json::from_str::<AugmentConfig>(r#"{"rotation": false}"#).is_err(), "unknown fields are refused");
    let err = Augmenter::new(AugmentConfig { crop_scale: [0.0, 1.0], ..Default::default() }, 0).unwrap_err();
    assert!(err.to_string().contains("crop_scale"), "{err}");
}
