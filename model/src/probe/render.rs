//! The probe report as text: `probe.csv`, the Markdown of `probe.md` (and
//! of the table `mcsfau probe` prints), and `test_predictions.csv`.
//! Fractions are printed in percent with one decimal, as the paper does.

use std::fmt::Write as _;

use super::report::{Predictions, ProbeReport};
use super::stats::subject_of;

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

impl ProbeReport {
    /// The CSV: `au,f1_pct,precision_pct,recall_pct,positives,known,ap_pct,
    /// floor_f1_pct,base_rate_pct`, then one `paper_<method>` column per
    /// paper row; a last `mean` row.
    pub fn to_csv(&self) -> String {
        let slug = |m: &str| m.split(' ').next().unwrap_or(m).to_ascii_lowercase().replace('-', "_");
        let mut s =
            String::from("au,f1_pct,precision_pct,recall_pct,positives,known,ap_pct,floor_f1_pct,base_rate_pct");
        for p in &self.paper {
            let _ = write!(s, ",paper_{}_f1_pct", slug(&p.method));
        }
        s.push('\n');
        for (i, a) in self.test.iter().enumerate() {
            let _ = write!(
                s,
                "AU{:02},{},{},{},{},{},{},{},{}",
                a.au,
                pct(a.f1),
                pct(a.precision),
                pct(a.recall),
                a.positives,
                a.known,
                pct(a.ap),
                pct(a.floor_f1),
                pct(a.base_rate)
            );
            for p in &self.paper {
                let _ = write!(s, ",{:.1}", p.f1_pct.get(i).copied().unwrap_or(f64::NAN));
            }
            s.push('\n');
        }
        let floor = self.floor.as_ref();
        let _ = write!(
            s,
            "mean,{},,,,,{},{},{}",
            pct(self.test_mean_f1),
            pct(self.test_mean_ap),
            floor.map_or(String::new(), |f| pct(f.mean_f1)),
            floor.map_or(String::new(), |f| pct(f.mean_ap))
        );
        for p in &self.paper {
            let _ = write!(s, ",{:.1}", p.mean_pct);
        }
        s.push('\n');
        s
    }

    /// The per-AU F1 table (this run, the all-present floor, the paper's
    /// rows), Markdown.
    pub fn f1_table(&self) -> String {
        let mut s = String::from("| method |");
        for au in &self.au_numbers {
            let _ = write!(s, " AU{au} |");
        }
        s.push_str(" mean |\n|---|");
        s.push_str(&"---:|".repeat(self.au_numbers.len() + 1));
        s.push_str("\n| this run |");
        for a in &self.test {
            let _ = write!(s, " {} |", pct(a.f1));
        }
        let _ = writeln!(s, " **{}** |", pct(self.test_mean_f1));
        if let Some(f) = &self.floor {
            s.push_str("| all-present floor |");
            for a in &self.test {
                let _ = write!(s, " {} |", pct(a.floor_f1));
            }
            let _ = writeln!(s, " {} |", pct(f.mean_f1));
        }
        for p in &self.paper {
            let _ = write!(s, "| {} ({}) |", p.method, p.source);
            for v in &p.f1_pct {
                let _ = write!(s, " {v:.1} |");
            }
            let _ = writeln!(s, " {:.1} |", p.mean_pct);
        }
        s
    }

    /// One line: mean F1 and AP with their intervals, the floor, the seeds.
    pub fn summary_line(&self) -> String {
        let mut s = format!("mean F1 {}", pct(self.test_mean_f1));
        if let Some(b) = &self.bootstrap {
            let _ = write!(s, " [{}, {}]", pct(b.mean_f1[0]), pct(b.mean_f1[1]));
        }
        let _ = write!(s, ", mean AP {}", pct(self.test_mean_ap));
        if let Some(b) = &self.bootstrap {
            let _ = write!(s, " [{}, {}]", pct(b.mean_ap[0]), pct(b.mean_ap[1]));
        }
        if let Some(f) = &self.floor {
            let _ = write!(s, "; floor F1 {} / AP {}", pct(f.mean_f1), pct(f.mean_ap));
        }
        if let Some(b) = &self.bootstrap {
            let _ = write!(s, "; 95 % interval over {} {}s ({} replicates)", b.units, b.unit, b.resamples);
        }
        if self.seeds.len() > 1 {
            let per: Vec<String> = self.seeds.iter().map(|r| format!("{}: {}", r.seed, pct(r.mean_f1))).collect();
            let _ = write!(s, "; mean of {} head seeds (F1 {})", self.seeds.len(), per.join(", "));
        }
        s
    }

    /// The whole report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("# Linear probe on {} (test split, F1 % at {})\n\n", self.dataset.name(), self.threshold);
        s.push_str(&self.f1_table());
        let _ =
            writeln!(s, "\nPaper rows: MC-SFAU, Chinese Journal of Computers 2026, tables 1 (BP4D) and 2 (DISFA).\n");
        let _ = writeln!(s, "- {}", self.summary_line());
        let _ = writeln!(
            s,
            "- features: {}; checkpoint: `{}` (step {}, sha256 `{}`)",
            self.features, self.checkpoint.path, self.checkpoint.step, &self.checkpoint.sha256
        );
        let _ = writeln!(s, "- manifest: `{}`; device: {}", self.manifest, self.device);
        if let Some(d) = &self.detector {
            let _ = writeln!(s, "- {}", d.line());
        }
        for sp in &self.splits {
            let _ = writeln!(
                s,
                "- {}: {} frames of {} listed{}",
                sp.name,
                sp.frames,
                sp.listed,
                if sp.cached { " (features from cache)" } else { "" }
            );
        }
        let c = &self.selection.chosen;
        let _ = writeln!(
            s,
            "- selected on val by {:?}: lr {}, weight decay {}, epoch {} (val mean F1 {}, AP {})\n",
            self.selection.metric,
            c.lr,
            c.weight_decay,
            c.best_epoch,
            pct(c.val_mean_f1),
            pct(c.val_mean_ap)
        );
        s.push_str("## Selection grid (validation split only)\n\n| lr | weight decay | best epoch | epochs run | val mean F1 % | val mean AP % |\n|---:|---:|---:|---:|---:|---:|\n");
        for g in &self.selection.grid {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                g.lr,
                g.weight_decay,
                g.best_epoch,
                g.epochs_run,
                pct(g.val_mean_f1),
                pct(g.val_mean_ap)
            );
        }
        s.push_str("\n## Test counts\n\n| AU | F1 % | AP % | precision % | recall % | positives | known | floor F1 % |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for a in &self.test {
            let _ = writeln!(
                s,
                "| AU{} | {} | {} | {} | {} | {} | {} | {} |",
                a.au,
                pct(a.f1),
                pct(a.ap),
                pct(a.precision),
                pct(a.recall),
                a.positives,
                a.known,
                pct(a.floor_f1)
            );
        }
        s
    }

    /// `test_predictions.csv`: `seed,sample_id,subject`, then `AUxx_p`
    /// (probability) and `AUxx_y` (label: 1, 0, -1 unknown) per AU.
    pub fn predictions_csv(&self, p: &Predictions) -> String {
        let aus = self.au_numbers.len();
        let mut s = String::from("seed,sample_id,subject");
        for au in &self.au_numbers {
            let _ = write!(s, ",AU{au:02}_p");
        }
        for au in &self.au_numbers {
            let _ = write!(s, ",AU{au:02}_y");
        }
        s.push('\n');
        let seeds: Vec<u64> = self.seeds.iter().map(|r| r.seed).collect();
        for (k, probs) in p.probs.iter().enumerate() {
            let seed = seeds.get(k).copied().unwrap_or(k as u64);
            for (row, id) in p.ids.iter().enumerate() {
                let _ = write!(s, "{seed},{id},{}", subject_of(id));
                for a in 0..aus {
                    let _ = write!(s, ",{:.6}", probs[row * aus + a]);
                }
                for a in 0..aus {
                    let _ = write!(s, ",{}", p.labels[row * aus + a]);
                }
                s.push('\n');
            }
        }
        s
    }
}
