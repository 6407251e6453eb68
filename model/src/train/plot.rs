//! `RUN/losses.png`: one panel per term (L_s, L_d, L_r, L_c, L_total) and
//! the learning rate, against the step, and a row of learning diagnostics
//! (`train::diagnostics`: the projections' spread, log10 of each term's
//! backbone gradient norm, the landmark detector against p_1: p_2 and the
//! template as RMS distances, p_k as the mean drift), drawn with plotters' bitmap
//! backend.
//!
//! Text needs a TrueType font (plotters' `ab_glyph` feature, as the audit
//! plots): `$MCSFAU_FONT`, else DejaVu Sans from Debian's
//! `fonts-dejavu-core`. Without one (the GPU machines) the panels are drawn
//! without titles and tick labels, and a warning says so.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use schemas::figure::TextFix;

use super::error::{Result, TrainError};
use super::log::LogRecord;

/// Font files tried after `$MCSFAU_FONT`.
pub use schemas::figure::FONT_CANDIDATES;

pub(crate) fn have_font() -> bool {
    static WARNED: OnceLock<bool> = OnceLock::new();
    *WARNED.get_or_init(|| match schemas::figure::ensure_font() {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("{e}: loss plots are drawn without text");
            false
        }
    })
}

/// One curve: its name, its value (NaN where a record has none), its colour.
type Line = (&'static str, fn(&LogRecord) -> f64, RGBColor);

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);

fn diag(r: &LogRecord, f: fn(&super::diagnostics::Diagnostics) -> Option<f64>) -> f64 {
    r.diagnostics.as_ref().and_then(f).unwrap_or(f64::NAN)
}

/// The panels, row by row: a title and its curves.
const PANELS: [(&str, &[Line]); 9] = [
    ("L_s", &[("L_s", |r| r.losses.l_s, BLUE)]),
    ("L_d", &[("L_d", |r| r.losses.l_d, ORANGE)]),
    ("L_r", &[("L_r", |r| r.losses.l_r, GREEN)]),
    ("L_c", &[("L_c", |r| r.losses.l_c, RED)]),
    ("L_total", &[("L_total", |r| r.losses.total, RGBColor(0, 0, 0))]),
    ("lr", &[("lr", |r| r.lr, PURPLE)]),
    ("projection spread x sqrt(D) (0 = collapse)", &[("spread", |r| diag(r, |d| d.proj_std), BLUE)]),
    (
        "log10 backbone grad norm: L_s L_d L_r aL_c",
        &[
            ("L_s", |r| diag(r, |d| Some(d.grad_norm.l_s.log10())), BLUE),
            ("L_d", |r| diag(r, |d| Some(d.grad_norm.l_d.log10())), ORANGE),
            ("L_r", |r| diag(r, |d| Some(d.grad_norm.l_r.log10())), GREEN),
            ("aL_c", |r| diag(r, |d| Some(d.grad_norm.l_c.log10())), RED),
        ],
    ),
    (
        "landmarks vs p_1 (px): p_2 RMS, template RMS, p_k mean",
        &[
            ("p_2", |r| diag(r, |d| d.loc_rms_px), GREEN),
            ("template", |r| diag(r, |d| d.loc_template_rms_px), RGBColor(0, 0, 0)),
            ("p_k", |r| diag(r, |d| d.drift_px), ORANGE),
        ],
    ),
];

/// Draws the curves of `records` to `path` (PNG, 1200x1200).
pub fn draw_losses(records: &[LogRecord], path: &Path) -> Result<()> {
    let text = have_font();
    schemas::atomic::write_with(path, |tmp| draw(records, tmp, text)).map_err(|e| match e {
        schemas::atomic::AtomicError::Write(e) => e,
        schemas::atomic::AtomicError::Io(p, source) => TrainError::Io { path: p, source },
    })
}

/// A tick label a reader takes in at a glance: up to 4 significant digits
/// without trailing zeros (`2.1`, `0.035`, `1200`), scientific only for
/// very large or very small values (`1.2e-5`).
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Draws with or without text (titles, tick labels).
fn draw(records: &[LogRecord], path: &Path, text: bool) -> Result<()> {
    let err = |e: &dyn std::fmt::Debug| TrainError::Plot { path: path.to_path_buf(), message: format!("{e:?}") };
    let root = TextFix(BitMapBackend::new(path, (1200, 1200))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (x0, x1) = match (records.first(), records.last()) {
        (Some(a), Some(b)) => (a.step as f64, (b.step as f64).max(a.step as f64 + 1.0)),
        _ => (0.0, 1.0),
    };
    for (area, (name, lines)) in root.split_evenly((3, 3)).iter().zip(PANELS) {
        let ys: Vec<f64> =
            lines.iter().flat_map(|(_, get, _)| records.iter().map(get)).filter(|v| v.is_finite()).collect();
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Positive curves spanning more than a decade go on a log scale, so
        // one early spike does not flatten the rest.
        let log = lo > 0.0 && hi / lo > 10.0;
        let f = |v: f64| if log { v.log10() } else { v };
        let (lo, hi) = if lo.is_finite() { (f(lo), if hi > lo { f(hi) } else { f(lo) + 1e-9 }) } else { (0.0, 1.0) };
        let pad = (hi - lo) * 0.05;
        let mut builder = ChartBuilder::on(area);
        builder.margin(12);
        if text {
            let caption = if log { format!("{name} (log scale)") } else { name.to_string() };
            builder.caption(caption, ("sans-serif", 20)).x_label_area_size(30).y_label_area_size(60);
        }
        // Headroom above the curves for a legend.
        let top = if lines.len() > 1 { hi + (hi - lo) * 0.5 } else { hi + pad };
        let mut chart = builder.build_cartesian_2d(x0..x1, (lo - pad)..top).map_err(|e| err(&e))?;
        let mut mesh = chart.configure_mesh();
        // log ticks at 2 significant digits (10^-2.5 reads 0.0032)
        let two = |v: f64| {
            let k = 10f64.powi(1 - v.abs().log10().floor() as i32);
            (v * k).round() / k
        };
        let y_fmt = |v: &f64| tick(if log { two(10f64.powf(*v)) } else { *v });
        let x_fmt = |v: &f64| format!("{v:.0}");
        // integer steps: no more labels than steps in the range
        let x_labels = ((x1 - x0).round() as usize + 1).clamp(2, 6);
        if text {
            mesh.x_desc("step").x_labels(x_labels).x_label_formatter(&x_fmt).y_labels(6).y_label_formatter(&y_fmt);
        } else {
            mesh.disable_x_mesh().disable_y_mesh().x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| err(&e))?;
        if ys.is_empty() && text {
            let (w, h) = area.dim_in_pixel();
            area.draw_text(
                "not logged yet",
                &("sans-serif", 18).into_text_style(area),
                (w as i32 / 2 - 60, h as i32 / 2),
            )
            .map_err(|e| err(&e))?;
        }
        let loss_panel = name.starts_with("L_");
        for (line_name, get, color) in lines {
            let (line_name, color) = (*line_name, *color);
            let points = records.iter().map(|r| (r.step as f64, get(r))).filter(|(_, v)| v.is_finite());
            let points: Vec<(f64, f64)> = points.map(|(x, y)| (x, f(y))).collect();
            if loss_panel && points.len() >= 10 {
                // The raw curve light, an exponential moving average over
                // about a tenth of the records on top.
                chart
                    .draw_series(LineSeries::new(points.clone(), color.mix(0.3).stroke_width(1)))
                    .map_err(|e| err(&e))?;
                let alpha = 2.0 / ((points.len() / 10).max(2) as f64 + 1.0);
                let mut m = points[0].1;
                let smooth: Vec<(f64, f64)> = points
                    .iter()
                    .map(|&(x, y)| {
                        m += alpha * (y - m);
                        (x, m)
                    })
                    .collect();
                chart.draw_series(LineSeries::new(smooth, color.stroke_width(2))).map_err(|e| err(&e))?;
                continue;
            }
            let drawn = if points.len() == 1 {
                chart.draw_series(PointSeries::of_element(points, 3, color.filled(), &|c, s, st| Circle::new(c, s, st)))
            } else {
                chart.draw_series(LineSeries::new(points, color.stroke_width(2)))
            }
            .map_err(|e| err(&e))?;
            if lines.len() > 1 && text {
                drawn
                    .label(line_name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2)));
            }
        }
        if lines.len() > 1 && text && !ys.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        let t: Vec<String> = [2.1, 0.035, 1200.0, 0.0, 1.2e-5, 3e6, 5.0, 0.1234567].into_iter().map(tick).collect();
        assert_eq!(t, ["2.1", "0.035", "1200", "0", "1.2e-5", "3e6", "5", "0.1235"]);
    }
    use crate::train::LossValues;

    /// No font is registered in this test binary: the text-free path must
    /// still draw every curve (the GPU machines have no fonts).
    #[test]
    fn draws_without_a_font() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("losses.png");
        let records: Vec<LogRecord> = (1..=20)
            .map(|s| LogRecord {
                step: s,
                epoch: 0,
                losses: LossValues { l_s: 2.0 / s as f64, l_d: 1.0, l_r: 0.5, l_c: f64::NAN, total: 3.0 },
                lr: 0.1,
                images_per_s: 1.0,
                data_wait: 0.0,
                elapsed_s: 0.0,
                diagnostics: None,
            })
            .collect();
        draw(&records, &path, false).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (1200, 1200));
        let blue = img.pixels().filter(|p| p.0 == [31, 119, 180]).count();
        assert!(blue > 100, "the L_s curve is drawn ({blue} px)");
    }
}
