//! Parameter counts per component (paper table 7: 144.37M "training
//! parameters" for MC-SFAU).
//!
//! Trainable = online parameters (gradient-trained); EMA = target
//! parameters (moved by eq. 1, never by gradients); BatchNorm running
//! statistics are buffers, counted apart and in neither.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::byol::is_buffer;
use crate::mcsfau::McSfau;

/// The paper's reported count (table 7), parameters.
pub const PAPER_PARAMS: i64 = 144_370_000;

/// One component's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentCount {
    /// Top-level variable prefix: `backbone`, `projector`, `predictor`,
    /// `locator` (or `refiner`), `reconstructor`, `mci`.
    pub component: String,
    /// Online parameters.
    pub trainable: i64,
    /// Target (EMA) parameters.
    pub ema: i64,
    /// BatchNorm buffers, online and target.
    pub buffers: i64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamReport {
    /// One row per component, in a fixed order.
    pub components: Vec<ComponentCount>,
    /// Sum of `trainable`.
    pub trainable: i64,
    /// Sum of `ema`.
    pub ema: i64,
    /// `trainable + ema` (what the paper's figure compares with).
    pub total: i64,
    /// [`PAPER_PARAMS`].
    pub paper: i64,
}

const ORDER: [&str; 7] = ["backbone", "projector", "predictor", "locator", "refiner", "reconstructor", "mci"];

/// Counts the model's variables by component.
pub fn param_report(model: &McSfau) -> ParamReport {
    let mut rows: BTreeMap<String, ComponentCount> = BTreeMap::new();
    for (target, vars) in [(false, model.online().variables()), (true, model.target().variables())] {
        for (name, t) in vars {
            let comp = name.split('.').next().unwrap_or_default().to_string();
            let row = rows.entry(comp.clone()).or_insert(ComponentCount {
                component: comp,
                trainable: 0,
                ema: 0,
                buffers: 0,
            });
            let n = t.numel() as i64;
            match (is_buffer(&name), target) {
                (true, _) => row.buffers += n,
                (false, false) => row.trainable += n,
                (false, true) => row.ema += n,
            }
        }
    }
    let rank = |c: &str| ORDER.iter().position(|&o| o == c).unwrap_or(ORDER.len());
    let mut components: Vec<_> = rows.into_values().collect();
    components.sort_by_key(|r| rank(&r.component));
    let trainable = components.iter().map(|r| r.trainable).sum();
    let ema = components.iter().map(|r| r.ema).sum();
    ParamReport { components, trainable, ema, total: trainable + ema, paper: PAPER_PARAMS }
}

impl ParamReport {
    /// A fixed-width table of exact counts (with thousands separators), the
    /// totals also in millions, and the paper's figure last.
    pub fn table(&self) -> String {
        let mut s = format!("{:<14}{:>14}{:>14}{:>14}\n", "component", "trainable", "EMA", "total");
        for r in &self.components {
            s += &format!(
                "{:<14}{:>14}{:>14}{:>14}\n",
                r.component,
                sep(r.trainable),
                sep(r.ema),
                sep(r.trainable + r.ema)
            );
        }
        s += &format!("{:<14}{:>14}{:>14}{:>14}\n", "all", sep(self.trainable), sep(self.ema), sep(self.total));
        let m = |n: i64| format!("{:.2}M", n as f64 / 1e6);
        s += &format!("{:<14}{:>14}{:>14}{:>14}\n", "all (M)", m(self.trainable), m(self.ema), m(self.total));
        s += &format!("{:<14}{:>42}  (paper table 7)\n", "paper", m(self.paper));
        s
    }
}

/// `1234567` -> `1,234,567`.
fn sep(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(
            (sep(0), sep(999), sep(1000), sep(23_508_032), sep(-1234)),
            ("0".into(), "999".into(), "1,000".into(), "23,508,032".into(), "-1,234".into())
        );
    }

    #[test]
    fn tiny_report_adds_up_and_has_no_target_heads() {
        let model = McSfau::new(&crate::config::ModelConfig::tiny(), tch::Device::Cpu).unwrap();
        let r = param_report(&model);
        let names: Vec<_> = r.components.iter().map(|c| c.component.as_str()).collect();
        // The default detector is the locator; `refiner` is the denoise one's.
        let want: Vec<_> = ORDER.iter().copied().filter(|c| *c != "refiner").collect();
        assert_eq!(names, want);
        assert_eq!(r.trainable, model.online().trainable_variables().iter().map(|t| t.numel() as i64).sum::<i64>());
        assert!(r.components.iter().filter(|c| c.ema > 0).all(|c| c.ema == c.trainable));
        assert_eq!(r.components.iter().filter(|c| c.ema > 0).count(), 2, "backbone and projector only");
    }
}
