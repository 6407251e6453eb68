//! Every AU changes only its own region, and visibly from intensity 2.
//!
//! For several identities and head poses, the face is drawn with all AUs at
//! 0 and with one AU at 4 (everything else equal); every pixel that differs
//! must map back (through the pose) into that AU's region, grown by 1.5
//! pixels for anti-aliasing. At intensity 2 the AU must already change a
//! clearly visible patch of pixels.

use pipeline::synth::au::{region, AUS};
use pipeline::synth::draw::{render, Backdrop};
use pipeline::synth::face::{Identity, Look, Pose};
use pipeline::synth::rng_for;

const SIZE: u32 = 192;

fn looks() -> Vec<Look> {
    let pose = |roll, yaw, pitch, scale| Pose { cx: 96.0, cy: 100.0, scale, roll, yaw, pitch };
    vec![
        Look { pose: pose(0.0, 0.0, 0.0, 58.0), gaze: [0.0, 0.0], light_angle: 0.5, light_strength: 0.6 },
        Look { pose: pose(0.12, -0.25, 0.08, 52.0), gaze: [0.5, -0.3], light_angle: 2.5, light_strength: 1.0 },
    ]
}

fn with(au_index: usize, v: f32) -> [f32; 15] {
    let mut a = [0.0; 15];
    a[au_index] = v;
    a
}

#[test]
fn each_au_changes_only_its_region() {
    let backdrop = Backdrop { colors: [[90, 100, 110], [60, 70, 80]], props: Vec::new() };
    for subject in ["F001", "M007", "SN003"] {
        let id = Identity::sample(&mut rng_for(11, &["locality", subject]));
        for look in looks() {
            let neutral = render(&id, &backdrop, &[0.0; 15], &look, SIZE, SIZE).unwrap();
            for (k, &au) in AUS.iter().enumerate() {
                let active = render(&id, &backdrop, &with(k, 4.0), &look, SIZE, SIZE).unwrap();
                let r = region(au, &id);
                let margin = 1.5 / look.pose.scale;
                let mut changed = 0;
                for (i, (a, b)) in neutral.rgb.chunks_exact(3).zip(active.rgb.chunks_exact(3)).enumerate() {
                    if a != b {
                        changed += 1;
                        let (x, y) = ((i as u32 % SIZE) as f32, (i as u32 / SIZE) as f32);
                        let c = look.pose.to_canonical([x, y]);
                        assert!(
                            r.contains(c, margin),
                            "{subject} AU{au}: pixel ({x}, {y}) -> canonical {c:?} changed outside {:?}",
                            r.boxes
                        );
                    }
                }
                assert!(changed > 0, "{subject} AU{au} changes nothing");
            }
        }
    }
}

#[test]
fn each_au_is_visible_at_intensity_two() {
    let backdrop = Backdrop { colors: [[90, 100, 110], [60, 70, 80]], props: Vec::new() };
    let id = Identity::sample(&mut rng_for(5, &["visibility", "F002"]));
    let look = looks()[0];
    let neutral = render(&id, &backdrop, &[0.0; 15], &look, SIZE, SIZE).unwrap();
    for (k, &au) in AUS.iter().enumerate() {
        let active = render(&id, &backdrop, &with(k, 2.0), &look, SIZE, SIZE).unwrap();
        // Pixels whose colour moved by more than 12 levels in some channel.
        let visible = neutral
            .rgb
            .chunks_exact(3)
            .zip(active.rgb.chunks_exact(3))
            .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > 12))
            .count();
        assert!(visible >= 25, "AU{au} at intensity 2 changes only {visible} pixels visibly");
    }
}

#[test]
fn landmarks_are_the_drawn_points() {
    let id = Identity::sample(&mut rng_for(2, &["points"]));
    let look = looks()[1];
    let aus = with(7, 3.0);
    let f = render(&id, &Backdrop { colors: [[0; 3]; 2], props: Vec::new() }, &aus, &look, SIZE, SIZE).unwrap();
    let expected = pipeline::synth::au::deform(&id, &aus).map(|p| look.pose.to_image(p));
    assert_eq!(f.points, expected);
    // The lip centres (51, 57) lie on the lips, not on the skin.
    for k in [51, 57] {
        let [x, y] = f.points[k];
        let px = &f.rgb[((y.round() as u32 * SIZE + x.round() as u32) * 3) as usize..][..3];
        let skin = id.palette.skin;
        assert_ne!(px, &skin[..], "point {k} is not on the lips");
    }
}
