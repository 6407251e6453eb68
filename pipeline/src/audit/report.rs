//! Writing an [`AuditReport`]: `report.json` (every figure), `report.md`
//! (tables), `counts_per_subject.csv`, `counts_per_video.csv`, and the PNG
//! plots of [`super::plots`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{AuditReport, Status};
use crate::error::{PipelineError, Result};

fn fmt_rate(x: f64) -> String {
    if x.is_finite() {
        format!("{:.3}", x)
    } else {
        "n/a".into()
    }
}

/// The Markdown report. `plots` are file names relative to the report.
pub fn markdown(r: &AuditReport, plots: &[String], plot_error: Option<&str>) -> String {
    let mut md = String::new();
    let failed = r.failed();
    let _ = writeln!(md, "# mcsfau audit\n");
    let _ = writeln!(md, "- shards: `{}` ({} files, {} rows)", r.shards, r.files, r.rows);
    for m in &r.manifests {
        let _ = writeln!(md, "- manifest: `{m}`");
    }
    let verdict = if failed.is_empty() { "PASS".to_string() } else { format!("FAIL ({} checks)", failed.len()) };
    let _ = writeln!(md, "- result: **{verdict}**\n");

    let _ = writeln!(md, "## Checks\n\n| check | status | summary |\n| --- | --- | --- |");
    for c in &r.checks {
        let status = match c.status {
            Status::Pass => "pass",
            Status::Fail => "**FAIL**",
            Status::Skipped => "skipped",
        };
        let _ = writeln!(md, "| `{}` | {status} | {} |", c.name, c.summary.replace('|', "\\|"));
    }
    for c in failed.iter().filter(|c| !c.examples.is_empty()) {
        let _ = writeln!(md, "\n**{}** (first {}):\n", c.name, c.examples.len());
        for e in &c.examples {
            let _ = writeln!(md, "- `{e}`");
        }
    }

    let _ =
        writeln!(md, "\n## Counts per dataset and split\n\n| dataset | split | subjects | videos | clips | frames |");
    let _ = writeln!(md, "| --- | --- | ---: | ---: | ---: | ---: |");
    for s in &r.counts.per_split {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            s.dataset, s.split, s.subjects, s.videos, s.clips, s.frames
        );
    }
    let _ = writeln!(md, "\n## Frames per clip and per video\n");
    let _ = writeln!(md, "| dataset | unit | n | min | p5 | median | mean | p95 | max |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for c in &r.counts.clips {
        for (unit, d) in [("clip", &c.frames_per_clip), ("video", &c.frames_per_video)] {
            let _ = writeln!(
                md,
                "| {} | {unit} | {} | {} | {} | {} | {:.1} | {} | {} |",
                c.dataset, d.n, d.min, d.p05, d.median, d.mean, d.p95, d.max
            );
        }
    }
    let _ = writeln!(md, "\nPer-subject and per-video counts: `counts_per_subject.csv`, `counts_per_video.csv`.");

    if !r.base_rates.is_empty() {
        let _ = writeln!(md, "\n## AU base rates (unknown labels excluded)\n");
        let _ = writeln!(md, "Each cell: base rate (present / known), then the unknown fraction.\n");
        for ds in dedup(r.base_rates.iter().map(|b| b.dataset.as_str())) {
            let rows: Vec<_> = r.base_rates.iter().filter(|b| b.dataset == ds).collect();
            let aus: Vec<String> = rows[0].aus.iter().map(|a| format!("AU{}", a.au)).collect();
            let _ = writeln!(md, "**{ds}**\n\n| split | frames | {} |", aus.join(" | "));
            let _ = writeln!(md, "| --- | ---: |{}", " ---: |".repeat(aus.len()));
            for b in rows {
                let cells: Vec<String> =
                    b.aus.iter().map(|a| format!("{} ({:.2})", fmt_rate(a.base_rate), a.unknown_fraction)).collect();
                let _ = writeln!(md, "| {} | {} | {} |", b.split, b.frames, cells.join(" | "));
            }
            let _ = writeln!(md);
        }
    }

    if !r.landmarks.is_empty() {
        let _ = writeln!(md, "\n## Landmarks\n\n| dataset | rows | non-finite | outside crop | degenerate IOD | IOD / crop (mean) | bad score | score p5 / p50 / p95 |");
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        for l in &r.landmarks {
            let q = l.score_quantiles;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} / {} / {} |",
                l.dataset,
                l.rows,
                l.non_finite,
                l.outside_crop,
                l.degenerate_interocular,
                fmt_rate(l.interocular_mean_fraction),
                l.bad_score,
                fmt_rate(q[0]),
                fmt_rate(q[1]),
                fmt_rate(q[2])
            );
        }
    }
    let d = &r.decode;
    let _ = writeln!(
        md,
        "\n## JPEG spot check\n\n{} of {} sampled rows decoded (population {}, seed {}).",
        d.ok, d.sampled, d.population, d.seed
    );
    if let Some(f) = &r.faces {
        let _ = writeln!(md, "\n## Faces found by preprocess\n");
        let _ = writeln!(
            md,
            "| clips | frames | detected | followed | follows refused | shot cuts | no face | no-face rate | clips with no face |"
        );
        let _ = writeln!(md, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} % | {} |",
            f.clips,
            f.frames,
            f.detected,
            f.followed,
            f.refused,
            f.cuts,
            f.no_face,
            100.0 * f.no_face_rate,
            f.clips_without_face
        );
        if !f.worst.is_empty() {
            let _ = writeln!(md, "\nHighest no-face rates:\n");
            for (file, rate, n) in &f.worst {
                let _ = writeln!(md, "- `{file}`: {:.1} % of {n} frames", 100.0 * rate);
            }
        }
        let _ = writeln!(md, "\nFrom: {}", f.tables.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "));
    }
    let _ = writeln!(md, "\n## Plots\n");
    for p in plots {
        let _ = writeln!(md, "![{p}]({p})");
    }
    if let Some(e) = plot_error {
        let _ = writeln!(md, "Plots not drawn: {e}");
    }
    md
}

fn dedup<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    crate::error::write_file(path, text.as_bytes())
}

/// Writes every report file under `out` (created if needed) and returns
/// their paths. Plots that cannot be drawn for want of a font are noted in
/// the report, not an error.
pub fn write(r: &AuditReport, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| PipelineError::io(out, e))?;
    let mut written = Vec::new();
    // No font: the plots are skipped and the report says so. Any other
    // plot failure (a full disk) is an error, and the report files of an
    // earlier run are left as they were.
    let (plots, plot_error) = match super::plots::font() {
        Ok(()) => (super::plots::draw_all(r, out)?, None),
        Err(e) => {
            tracing::warn!("plots not drawn: {e}");
            (Vec::new(), Some(e))
        }
    };
    let names: Vec<String> =
        plots.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    written.extend(plots);

    let mut json = serde_json::to_value(r).map_err(|e| PipelineError::Manifest(e.to_string()))?;
    json["plots"] = serde_json::json!(names);
    json["passed"] = serde_json::json!(r.failed().is_empty());
    let path = out.join("report.json");
    write_file(&path, &serde_json::to_string_pretty(&json).map_err(|e| PipelineError::Manifest(e.to_string()))?)?;
    written.push(path);

    let path = out.join("report.md");
    write_file(&path, &markdown(r, &names, plot_error.as_deref()))?;
    written.push(path);

    for (name, rows) in
        [("counts_per_subject.csv", &r.counts.per_subject), ("counts_per_video.csv", &r.counts.per_video)]
    {
        let key = if name.contains("subject") { "subject" } else { "video" };
        let mut csv = format!("dataset,split,{key},frames\n");
        for k in rows.iter() {
            let _ = writeln!(csv, "{},{},{},{}", k.dataset, k.split, k.key, k.frames);
        }
        let path = out.join(name);
        write_file(&path, &csv)?;
        written.push(path);
    }
    Ok(written)
}
