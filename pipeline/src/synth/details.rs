//! Marks some AUs leave on the skin besides moving landmarks: forehead
//! wrinkles (AU1, AU2), glabella furrows (AU4), crow's feet and the
//! infraorbital crease (AU6), lower-lid bulge (AU7), nose wrinkles (AU9),
//! nasolabial folds (AU12), dimples (AU14), lines below the corners (AU15),
//! chin dimpling and the mentolabial crease (AU17), lip bulges (AU24).
//!
//! Each mark's opacity grows with the AU intensity and is zero at intensity
//! 0 (the mark is not drawn at all), so a neutral face has none of them.
//! Every mark lies inside its AU's [`super::au::region`].

use super::au::{slot, AuIntensities};
use super::canvas::{ellipse, shade, spline, Canvas};
use super::face::{Identity, P};
use crate::landmarks::Points68;

/// Draws the marks of every active AU.
pub fn draw(cv: &mut Canvas, id: &Identity, p: &Points68, aus: &AuIntensities) {
    let s = |au: u8| slot(au).map_or(0.0, |i| (aus[i] / 5.0).clamp(0.0, 1.0) * id.au_gain);
    // Opacity: full from intensity ~3, already 0.64 of it at intensity 2.
    let v = |au: u8| (1.6 * s(au)).min(1.0);
    let line = shade(id.palette.skin, 0.62);
    let mirror = |q: P| [-q[0], q[1]];
    if s(1) > 0.0 {
        let y = p[21][1].min(p[22][1]);
        for k in 0..3 {
            let (yk, half) = (y - 0.12 - 0.075 * k as f32, 0.26 - 0.03 * k as f32);
            let arc = spline(&[[-half, yk + 0.018], [0.0, yk], [half, yk + 0.018]], 8);
            cv.stroke(&arc, 0.012, line, 0.75 * v(1));
        }
    }
    if s(2) > 0.0 {
        for k in 0..3 {
            let y = p[18][1] - 0.1 - 0.07 * k as f32;
            let arc = [[p[17][0] + 0.02, y + 0.03], [p[18][0], y], [p[20][0] + 0.03, y + 0.01]];
            let arc = spline(&arc, 8);
            cv.stroke(&arc, 0.012, line, 0.75 * v(2));
            cv.stroke(&arc.iter().map(|q| mirror(*q)).collect::<Vec<_>>(), 0.012, line, 0.75 * v(2));
        }
    }
    if s(4) > 0.0 {
        for x in [-0.045f32, 0.045] {
            let y = p[21][1];
            cv.stroke(&[[x * 1.1, y - 0.07], [x, y - 0.02], [x * 0.9, y + 0.03]], 0.013, line, 0.8 * v(4));
        }
    }
    if s(6) > 0.0 {
        for (outer, lids, dir) in [(36, [39, 40, 41, 36], -1.0f32), (45, [42, 47, 46, 45], 1.0)] {
            let c = p[outer];
            for dy in [-0.03f32, 0.0, 0.03] {
                let feet = [[c[0] + dir * 0.035, c[1] + dy], [c[0] + dir * 0.13, c[1] + dy * 2.2]];
                cv.stroke(&feet, 0.011, line, 0.7 * v(6));
            }
            let crease: Vec<P> = lids.iter().map(|&k| [p[k][0], p[k][1] + id.eye_h + 0.045]).collect();
            cv.stroke(&spline(&crease, 6), 0.012, line, 0.6 * v(6));
            let cheek = [(p[lids[0]][0] + c[0]) / 2.0, id.eye_y + 0.22];
            if let Some(sh) = cv.radial(cheek, 0.1, &[(0.0, [255, 240, 230], 0.35 * v(6)), (1.0, [255, 240, 230], 0.0)])
            {
                cv.fill_with(&ellipse(cheek, 0.13, 0.085), sh, None);
            }
        }
    }
    if s(7) > 0.0 {
        for lids in [[39, 40, 41, 36], [42, 47, 46, 45]] {
            let bulge: Vec<P> = lids[1..3].iter().map(|&k| [p[k][0], p[k][1] + 0.022]).collect();
            let bulge = spline(&[bulge[0], [(bulge[0][0] + bulge[1][0]) / 2.0, bulge[0][1] + 0.006], bulge[1]], 6);
            cv.stroke(&bulge, 0.01, line, 0.7 * v(7));
        }
    }
    if s(9) > 0.0 {
        for k in 0..3 {
            let y = p[27][1] + 0.03 + 0.035 * k as f32;
            let w = 0.085 - 0.01 * k as f32;
            cv.stroke(&spline(&[[-w, y + 0.01], [0.0, y], [w, y + 0.01]], 6), 0.011, line, 0.8 * v(9));
        }
    }
    if s(12) > 0.0 {
        for (k, sx) in [(48, -1.0f32), (54, 1.0)] {
            let fold = [
                [sx * (id.nose_w + 0.04), id.nose_y + 0.005],
                [sx * (id.nose_w + 0.12), id.nose_y + 0.17],
                [p[k][0] + sx * 0.07, p[k][1] + 0.07],
            ];
            cv.stroke(&spline(&fold, 8), 0.018, line, 0.65 * v(12));
        }
    }
    if s(14) > 0.0 {
        for (k, sx) in [(48, -1.0f32), (54, 1.0)] {
            let c = p[k];
            let dimple =
                [[c[0] + sx * 0.045, c[1] - 0.04], [c[0] + sx * 0.065, c[1]], [c[0] + sx * 0.045, c[1] + 0.04]];
            cv.stroke(&spline(&dimple, 6), 0.022, line, 0.9 * v(14));
        }
    }
    if s(15) > 0.0 {
        for (k, sx) in [(48, -1.0f32), (54, 1.0)] {
            let c = p[k];
            let l = [[c[0] + sx * 0.02, c[1] + 0.025], [c[0] + sx * 0.04, c[1] + 0.1], [c[0] + sx * 0.05, c[1] + 0.19]];
            cv.stroke(&spline(&l, 6), 0.014, line, 0.7 * v(15));
        }
    }
    if s(17) > 0.0 {
        let y = p[57][1] + 0.075;
        cv.stroke(&spline(&[[-0.16, y - 0.015], [0.0, y], [0.16, y - 0.015]], 8), 0.016, line, 0.65 * v(17));
        for (i, x) in [-0.12f32, -0.04, 0.04, 0.12].iter().enumerate() {
            for (j, dy) in [0.2f32, 0.27].iter().enumerate() {
                let c = [*x + 0.02 * ((i + j) % 2) as f32, id.mouth_y + id.lip_lo + dy];
                cv.fill(&ellipse(c, 0.016, 0.012), line, 0.45 * v(17));
            }
        }
    }
    if s(24) > 0.0 {
        let (up, lo) = (p[51][1] - 0.05, p[57][1] + 0.05);
        let w = id.mouth_w * 0.6;
        cv.stroke(&spline(&[[-w, up + 0.02], [0.0, up], [w, up + 0.02]], 8), 0.013, line, 0.6 * v(24));
        cv.stroke(&spline(&[[-w, lo - 0.02], [0.0, lo], [w, lo - 0.02]], 8), 0.013, line, 0.6 * v(24));
    }
}
