//! The canonical 49-point face template every crop is aligned to.
//!
//! Part of the shard contract: the pipeline warps each face so that its 49
//! landmarks fit [`TEMPLATE_49_UNIT`] by a similarity transform, and the
//! model's landmark locator starts from the same points. The template is the
//! mean shape of dlib's 68-point shape predictor
//! (`shape_predictor_68_face_landmarks.dat`, trained on iBUG 300-W), read from
//! the model file by `scripts/dlib_mean_shape.cpp`, restricted to the 49 kept
//! points. Its coordinates are relative to a face box: x from 0 (left) to 1,
//! y from 0 (top) to 1 (the jaw reaches 1.07). For a crop of side `S` the
//! template is `x_c = S/2 + 170/256 * S * (x - 0.5)`,
//! `y_c = S/2 + 170/256 * S * (y - 0.5)` (pixel-centre coordinates): at
//! `S = 256` the eyebrows sit near y = 72, the eyes near y = 97, the mouth
//! near y = 176 and the chin (not in the 49 points) near y = 225.

use crate::schema::NUM_LANDMARKS;

/// Template scale: the unit face box spans 170 of 256 crop pixels.
pub const TEMPLATE_SCALE: f32 = 170.0 / 256.0;

/// dlib's mean face shape (49 kept points, iBUG index in the comment), in
/// face-box units. See the module documentation.
pub const TEMPLATE_49_UNIT: [[f32; 2]; NUM_LANDMARKS] = [
    [0.119182, 0.230909], // 17
    [0.177509, 0.178388], // 18
    [0.259835, 0.162735], // 19
    [0.345086, 0.174880], // 20
    [0.424904, 0.208063], // 21
    [0.575140, 0.208059], // 22
    [0.654959, 0.174876], // 23
    [0.740211, 0.162732], // 24
    [0.822538, 0.178384], // 25
    [0.880866, 0.230908], // 26
    [0.500021, 0.305547], // 27
    [0.500017, 0.385739], // 28
    [0.500015, 0.465222], // 29
    [0.500011, 0.547027], // 30
    [0.404506, 0.602343], // 31
    [0.450375, 0.619234], // 32
    [0.500013, 0.633663], // 33
    [0.549654, 0.619236], // 34
    [0.595526, 0.602348], // 35
    [0.213870, 0.315571], // 36
    [0.264750, 0.286316], // 37
    [0.325858, 0.287176], // 38
    [0.379375, 0.327564], // 39
    [0.322083, 0.337778], // 40
    [0.261248, 0.336975], // 41
    [0.620667, 0.327560], // 42
    [0.674184, 0.287173], // 43
    [0.735291, 0.286312], // 44
    [0.786169, 0.315570], // 45
    [0.738790, 0.336972], // 46
    [0.677958, 0.337776], // 47
    [0.317107, 0.751117], // 48
    [0.384429, 0.724204], // 49
    [0.452547, 0.710256], // 50
    [0.500013, 0.721995], // 51
    [0.547484, 0.710262], // 52
    [0.615600, 0.724211], // 53
    [0.682923, 0.751117], // 54
    [0.617772, 0.816892], // 55
    [0.551586, 0.846004], // 56
    [0.500013, 0.851504], // 57
    [0.448439, 0.846000], // 58
    [0.382257, 0.816887], // 59
    [0.451943, 0.749935], // 61
    [0.500013, 0.755041], // 62
    [0.548087, 0.749940], // 63
    [0.549021, 0.785685], // 65
    [0.500015, 0.791599], // 66
    [0.451010, 0.785681], // 67
];

/// The template in pixels of a square crop of side `side`, `(x, y)` per
/// point, in f64 (the model's coordinates).
pub fn template_px(side: f64) -> [[f64; 2]; NUM_LANDMARKS] {
    let scale = TEMPLATE_SCALE as f64 * side;
    TEMPLATE_49_UNIT.map(|[x, y]| [side / 2.0 + scale * (x as f64 - 0.5), side / 2.0 + scale * (y as f64 - 0.5)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_lands_where_the_docs_say_at_256() {
        let t = template_px(256.0);
        // Hand-computed: 128 + 170 (y - 0.5) for the brow peak (iBUG 19,
        // y 0.162735), the outer eye corner (36, y 0.315571) and the mouth
        // corner (48, y 0.751117); symmetric about x = 128.
        let (brow, eye, mouth) = (t[2], t[19], t[31]);
        assert!((brow[1] - 70.665).abs() < 0.01, "{brow:?}");
        assert!((eye[1] - 96.647).abs() < 0.01, "{eye:?}");
        assert!((mouth[1] - 170.690).abs() < 0.01, "{mouth:?}");
        assert!((t[0][0] + t[9][0] - 256.0).abs() < 0.01);
        // Linear in the side: the 128 px template is the 256 px one halved.
        let half = template_px(128.0);
        for (a, b) in half.iter().zip(t.iter()) {
            assert!((a[0] * 2.0 - b[0]).abs() < 1e-9 && (a[1] * 2.0 - b[1]).abs() < 1e-9);
        }
    }
}
