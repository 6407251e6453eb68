//! PNG plots of an audit (plotters, bitmap backend): AU base rates per split,
//! frames per subject, the landmark score histogram and the mean landmarks.
//!
//! Text is drawn with plotters' `ab_glyph` feature from a TrueType font
//! file: `$MCSFAU_FONT` if set, else DejaVu Sans from Debian's
//! `fonts-dejavu-core` (installed by `scripts/setup.sh`), placed by
//! `schemas::figure::TextFix`. Without a font the plots are skipped and the
//! report says why.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use schemas::figure::TextFix;

use super::AuditReport;
use crate::error::{PipelineError, Result};

/// Font files tried in order after `$MCSFAU_FONT`.
pub use schemas::figure::FONT_CANDIDATES;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn plot_err(path: &Path, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Plot { path: path.to_path_buf(), message: e.to_string() }
}

/// Whether a font for the plots' text is available (`Err` says what was tried).
pub fn font() -> std::result::Result<(), String> {
    schemas::figure::ensure_font()
}

/// Draws one plot atomically (temporary name, then rename); returns `path`.
fn png(path: &Path, draw: impl FnOnce(&Path) -> Result<PathBuf>) -> Result<PathBuf> {
    crate::error::atomic(path, draw).map_err(|e| match e {
        // name the file the user asked for, not the temporary one
        PipelineError::Plot { message, .. } => PipelineError::Plot { path: path.to_path_buf(), message },
        e => e,
    })?;
    Ok(path.to_path_buf())
}

/// Draws every plot into `out`; returns the files.
pub fn draw_all(r: &AuditReport, out: &Path) -> Result<Vec<PathBuf>> {
    schemas::figure::ensure_font().map_err(|message| PipelineError::Plot { path: out.to_path_buf(), message })?;
    let mut files = Vec::new();
    let mut datasets: Vec<&str> = r.counts.per_split.iter().map(|s| s.dataset.as_str()).collect();
    datasets.dedup();
    for ds in datasets {
        if r.base_rates.iter().any(|b| b.dataset == ds) {
            files.push(png(&out.join(format!("au_base_rates_{ds}.png")), |p| base_rates(r, ds, p))?);
        }
        files.push(png(&out.join(format!("frames_per_subject_{ds}.png")), |p| frames_per_subject(r, ds, p))?);
        if let Some(l) = r.landmarks.iter().find(|l| l.dataset == ds) {
            files.push(png(&out.join(format!("landmark_scores_{ds}.png")), |p| score_histogram(l, p))?);
            files.push(png(&out.join(format!("mean_landmarks_{ds}.png")), |p| mean_shape(l, p))?);
        }
    }
    Ok(files)
}

/// Splits in reading order: train, val, test, then the rest by name (folds).
fn split_rank(s: &str) -> (usize, &str) {
    (["train", "val", "test"].iter().position(|k| *k == s).unwrap_or(3), s)
}

/// Integer tick labels for count axes (no `20.0`, no half counts).
fn count_tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

fn base_rates(r: &AuditReport, ds: &str, path: &Path) -> Result<PathBuf> {
    let mut rows: Vec<_> = r.base_rates.iter().filter(|b| b.dataset == ds).collect();
    rows.sort_by(|a, b| split_rank(&a.split).cmp(&split_rank(&b.split)));
    let n_au = rows[0].aus.len();
    let labels: Vec<String> = rows[0].aus.iter().map(|a| format!("AU{}", a.au)).collect();
    let root = TextFix(BitMapBackend::new(path, (900, 450))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{ds}: AU base rates per split (unknown excluded)"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(-0.5f64..n_au as f64 - 0.5, 0f64..1.15f64)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n_au)
        .x_label_formatter(&|x| labels.get(x.round() as usize).cloned().unwrap_or_default())
        .y_desc("present / known")
        .y_label_formatter(&|v| if *v <= 1.0 + 1e-9 { format!("{v:.1}") } else { String::new() })
        .draw()
        .map_err(|e| plot_err(path, e))?;
    let width = 0.8 / rows.len() as f64;
    for (k, b) in rows.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let bars = b.aus.iter().enumerate().filter(|(_, a)| a.base_rate.is_finite()).map(move |(j, a)| {
            let x0 = j as f64 - 0.4 + k as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, a.base_rate)], color.filled())
        });
        chart
            .draw_series(bars)
            .map_err(|e| plot_err(path, e))?
            .label(b.split.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    // Above the bars (the y range leaves room over 1.0).
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(path.to_path_buf())
}

fn frames_per_subject(r: &AuditReport, ds: &str, path: &Path) -> Result<PathBuf> {
    let mut rows: Vec<_> = r.counts.per_subject.iter().filter(|s| s.dataset == ds).collect();
    rows.sort_by(|a, b| split_rank(&a.split).cmp(&split_rank(&b.split)).then_with(|| a.key.cmp(&b.key)));
    let mut splits: Vec<&str> = rows.iter().map(|s| s.split.as_str()).collect();
    splits.sort_by_key(|s| split_rank(s));
    splits.dedup();
    let root = TextFix(BitMapBackend::new(path, (900, 450))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    // Room above the tallest bar for the legend.
    let max = rows.iter().map(|s| s.frames).max().unwrap_or(1) as f64 * 1.3;
    if rows.len() <= 100 {
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{ds}: frames per subject"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..rows.len() as f64 - 0.5, 0f64..max)
            .map_err(|e| plot_err(path, e))?;
        let names: Vec<String> = rows.iter().map(|s| s.key.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(rows.len().min(20))
            .x_label_formatter(&|x| names.get(x.round().max(0.0) as usize).cloned().unwrap_or_default())
            .y_desc("frames")
            .y_label_formatter(&count_tick)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        for (k, split) in splits.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let bars = rows.iter().enumerate().filter(|(_, s)| s.split == *split).map(move |(i, s)| {
                Rectangle::new([(i as f64 - 0.4, 0.0), (i as f64 + 0.4, s.frames as f64)], color.filled())
            });
            chart
                .draw_series(bars)
                .map_err(|e| plot_err(path, e))?
                .label(split.to_string())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_err(path, e))?;
    } else {
        // Many subjects (VoxCeleb): a histogram of frames per subject.
        const BINS: usize = 40;
        let step = max / BINS as f64;
        let mut hist = [0u64; BINS];
        for s in &rows {
            hist[((s.frames as f64 / step) as usize).min(BINS - 1)] += 1;
        }
        let top = *hist.iter().max().unwrap_or(&1) as f64 * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{ds}: frames per subject ({} subjects)", rows.len()), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..max, 0f64..top)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("frames")
            .y_desc("subjects")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&count_tick)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        let bars = hist.iter().enumerate().map(|(i, &n)| {
            Rectangle::new([(i as f64 * step, 0.0), ((i + 1) as f64 * step, n as f64)], PALETTE[0].filled())
        });
        chart.draw_series(bars).map_err(|e| plot_err(path, e))?;
    }
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(path.to_path_buf())
}

fn score_histogram(l: &super::landmarks::LandmarkStats, path: &Path) -> Result<PathBuf> {
    let root = TextFix(BitMapBackend::new(path, (700, 420))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let bins = l.score_histogram.len().max(1);
    let top = *l.score_histogram.iter().max().unwrap_or(&1) as f64 * 1.1 + 1.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: landmark score ({} rows)", l.dataset, l.rows), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..1f64, 0f64..top)
        .map_err(|e| plot_err(path, e))?;
    chart.configure_mesh().x_desc("score").y_desc("rows").draw().map_err(|e| plot_err(path, e))?;
    let w = 1.0 / bins as f64;
    let bars = l
        .score_histogram
        .iter()
        .enumerate()
        .map(|(i, &n)| Rectangle::new([(i as f64 * w, 0.0), ((i + 1) as f64 * w, n as f64)], PALETTE[0].filled()));
    chart.draw_series(bars).map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(path.to_path_buf())
}

fn mean_shape(l: &super::landmarks::LandmarkStats, path: &Path) -> Result<PathBuf> {
    let side = l.crop_size.max(1) as f64;
    let root = TextFix(BitMapBackend::new(path, (520, 560))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    // y runs downward in the crop: the axis is flipped so the face stands up.
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: mean landmarks (crop {}px)", l.dataset, l.crop_size), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..side, side..0f64)
        .map_err(|e| plot_err(path, e))?;
    chart.configure_mesh().draw().map_err(|e| plot_err(path, e))?;
    let points = l.mean_shape.chunks(2).filter(|p| p.len() == 2 && p[0].is_finite() && p[1].is_finite());
    chart
        .draw_series(points.map(|p| Circle::new((p[0], p[1]), 3, PALETTE[3].filled())))
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(path.to_path_buf())
}
