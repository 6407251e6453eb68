//! Progress without a terminal. indicatif draws nothing when stderr is not
//! a terminal (a Slurm log, `nohup`, a pipe), so a day-long job would log
//! nothing until it ends; [`lines_without_terminal`] prints the bar's state
//! as one plain line (no ANSI codes) every `MCSFAU_PROGRESS_SECS` seconds
//! (default 60) while it changes.
//!
//! The ETA of those lines comes from [`SmoothedEta`]: an exponential moving
//! average of the rate with a time constant of three intervals (at least
//! 3 minutes), so one slow or fast minute on a loaded machine moves it little,
//! and it never moves by more than a factor of two from one line to the next.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

/// Seconds between lines: `MCSFAU_PROGRESS_SECS` (a positive number), else 60.
fn interval() -> Duration {
    std::env::var("MCSFAU_PROGRESS_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map_or(Duration::from_secs(60), Duration::from_secs_f64)
}

/// The rate's time constant for lines every `every`: three intervals, at least 3 minutes.
fn time_constant(every: Duration) -> f64 {
    (3.0 * every.as_secs_f64()).max(180.0)
}

/// The ETA of the plain lines, from explicit timestamps (seconds on any
/// monotonic clock), so that it is testable without sleeping.
///
/// [`observe`](Self::observe) feeds the bar's position; the rate is an
/// exponential moving average of the rates between observations, each
/// weighted by `1 - exp(-dt / tau)` (so by time, not by the number of
/// observations), divided by the total weight so that the first minutes are
/// not biased towards zero. [`next_line`](Self::next_line) gives the ETA of
/// the next line; the rate behind it moves by at most a factor of two per
/// line, so consecutive ETAs are within a factor of two of each other (a
/// lasting change of rate is followed within a few lines). A new length, a
/// position that goes back or [`reset`](Self::reset) starts afresh: the ETA
/// is unknown until progress is seen again.
#[derive(Debug, Clone)]
pub struct SmoothedEta {
    tau: f64,
    /// The last observation: time, position, length.
    last: Option<(f64, u64, Option<u64>)>,
    /// The average's sum of weighted rates and its sum of weights.
    weighted: f64,
    weight: f64,
    /// The rate behind the previous line's ETA.
    shown: Option<f64>,
}

impl SmoothedEta {
    /// An estimator whose rate has time constant `tau_secs` seconds.
    pub fn new(tau_secs: f64) -> Self {
        Self { tau: tau_secs.max(f64::MIN_POSITIVE), last: None, weighted: 0.0, weight: 0.0, shown: None }
    }

    /// Forgets everything (a new phase).
    pub fn reset(&mut self) {
        *self = Self::new(self.tau);
    }

    /// The bar is at `pos` of `len` at time `t` (seconds).
    pub fn observe(&mut self, t: f64, pos: u64, len: Option<u64>) {
        let Some((t0, pos0, len0)) = self.last else {
            self.last = Some((t, pos, len));
            return;
        };
        if len != len0 || pos < pos0 {
            self.reset();
            self.last = Some((t, pos, len));
            return;
        }
        let dt = t - t0;
        if dt.is_nan() || dt <= 0.0 {
            return;
        }
        let rate = (pos - pos0) as f64 / dt;
        let keep = (-dt / self.tau).exp();
        self.weighted = keep * self.weighted + (1.0 - keep) * rate;
        self.weight = keep * self.weight + (1.0 - keep);
        self.last = Some((t, pos, len));
    }

    /// The smoothed rate (units per second); `None` before any progress.
    pub fn rate(&self) -> Option<f64> {
        let r = self.weighted / self.weight;
        (self.weight > 0.0 && r.is_finite() && r > 0.0).then_some(r)
    }

    /// The ETA for the next line: `None` (unknown) without a length or
    /// before any progress, zero when done.
    pub fn next_line(&mut self) -> Option<Duration> {
        let (_, pos, len) = self.last?;
        let remaining = len?.saturating_sub(pos);
        if remaining == 0 {
            return Some(Duration::ZERO);
        }
        let rate = self.rate()?;
        let rate = match self.shown {
            Some(s) => rate.clamp(s / 2.0, s * 2.0),
            None => rate,
        };
        self.shown = Some(rate);
        let secs = remaining as f64 / rate;
        // Beyond ~30 years the number means nothing.
        (secs < 1e9).then(|| Duration::from_secs_f64(secs))
    }
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One line: `[mcsfau CMD] PHASE POS/LEN (P %), elapsed H:MM:SS, ETA H:MM:SS; MESSAGE`
/// (`ETA -` while it is unknown).
fn line(command: &str, bar: &ProgressBar, eta: Option<Duration>) -> String {
    let pos = bar.position();
    let mut s = format!("[mcsfau {command}]");
    let (prefix, message) = (bar.prefix(), bar.message());
    if !prefix.trim().is_empty() {
        s.push(' ');
        s.push_str(prefix.trim());
    }
    let eta = eta.map_or_else(|| "-".into(), hms);
    match bar.length().filter(|&l| l > 0) {
        Some(len) => s.push_str(&format!(
            " {pos}/{len} ({:.1} %), elapsed {}, ETA {eta}",
            100.0 * pos as f64 / len as f64,
            hms(bar.elapsed())
        )),
        None => s.push_str(&format!(" {pos} done, elapsed {}", hms(bar.elapsed()))),
    }
    if !message.trim().is_empty() && message.trim() != prefix.trim() {
        s.push_str("; ");
        s.push_str(message.trim());
    }
    s
}

/// Observations of the rate per line: the bar is sampled four times an
/// interval, so a phase that starts just after a line has an ETA on the next.
const SAMPLES_PER_LINE: u32 = 4;

/// Prints `bar`'s state every interval while it changes, when stderr is not
/// a terminal (on a terminal the bar itself shows, with indicatif's own
/// ETA). Call it for bars that are meant to be seen (not for `--quiet`).
pub fn lines_without_terminal(bar: &ProgressBar, command: &'static str) {
    if std::io::stderr().is_terminal() {
        return;
    }
    let bar = bar.clone();
    let every = interval();
    let _ = std::thread::Builder::new().name("progress-lines".into()).spawn(move || {
        let origin = Instant::now();
        let mut eta = SmoothedEta::new(time_constant(every));
        let (mut phase, mut elapsed) = (bar.prefix(), bar.elapsed());
        let mut last = None;
        for tick in 1u64.. {
            std::thread::sleep(every / SAMPLES_PER_LINE);
            // A new phase (prefix) or a `reset()` bar (elapsed time going back) starts afresh.
            let (prefix, now_elapsed) = (bar.prefix(), bar.elapsed());
            if prefix != phase || now_elapsed < elapsed {
                eta.reset();
            }
            (phase, elapsed) = (prefix, now_elapsed);
            eta.observe(origin.elapsed().as_secs_f64(), bar.position(), bar.length());
            if tick % u64::from(SAMPLES_PER_LINE) != 0 {
                continue;
            }
            let state = (bar.position(), bar.length(), bar.message(), bar.prefix());
            if bar.is_finished() || (state.0 == 0 && state.1.unwrap_or(0) == 0) || last.as_ref() == Some(&state) {
                continue;
            }
            eprintln!("{}", line(command, &bar, eta.next_line()));
            last = Some(state);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: f64 = 60.0;

    /// Lines every minute (`samples` observations each) of a bar of `len`
    /// whose work in the i-th sample is `work(i)`; the ETA of every line.
    fn lines(len: u64, samples: u32, n_lines: usize, work: impl Fn(usize) -> u64) -> Vec<Option<f64>> {
        let mut eta = SmoothedEta::new(time_constant(Duration::from_secs(60)));
        let (mut pos, mut i) = (0, 0);
        eta.observe(0.0, 0, Some(len));
        (0..n_lines)
            .map(|_| {
                for _ in 0..samples {
                    pos = (pos + work(i)).min(len);
                    i += 1;
                    eta.observe(i as f64 * MINUTE / f64::from(samples), pos, Some(len));
                }
                eta.next_line().map(|d| d.as_secs_f64())
            })
            .collect()
    }

    /// The largest ratio between consecutive ETAs (either way).
    fn worst_jump(etas: &[Option<f64>]) -> f64 {
        etas.windows(2)
            .map(|w| {
                let (a, b) = (w[0].unwrap(), w[1].unwrap());
                (a / b).max(b / a)
            })
            .fold(1.0, f64::max)
    }

    #[test]
    fn a_noisy_but_steady_rate_keeps_consecutive_etas_within_a_factor_of_two() {
        // 60 steps a minute on average: alternately 92 and 28 (the naive
        // per-line ETA would jump 3x every line), one minute stalled (0),
        // then one of 120 to catch up.
        let len = 60 * 120;
        let per_line = |line: usize| match line {
            20 => 0,
            21 => 120,
            l if l % 2 == 0 => 92,
            _ => 28,
        };
        for samples in [1, SAMPLES_PER_LINE] {
            let etas = lines(len, samples, 100, |i| per_line(i / samples as usize) / u64::from(samples));
            assert!(etas.iter().all(Option::is_some), "{etas:?}");
            let jump = worst_jump(&etas);
            assert!(jump <= 2.0, "consecutive ETAs {jump:.2}x apart: {etas:?}");
            // Past the first lines it is the average, not the clamp, that
            // smooths: the 3.3x alternation moves the ETA by 1.35x at most,
            // the stall by 2x at most (the naive ETA would be infinite).
            let steady = worst_jump(&etas[5..20]).max(worst_jump(&etas[26..]));
            assert!(steady <= 1.35, "{steady:.2}x apart at a steady rate: {etas:?}");
            // And it is right: near the truth at the mean rate (1 step/s),
            // a little less so just after the stall.
            let mut pos = 0;
            for (k, e) in etas.iter().enumerate() {
                pos += per_line(k);
                let (truth, tolerance) = ((len - pos) as f64, if (20..26).contains(&k) { 0.6 } else { 0.15 });
                if k >= 5 {
                    let err = (e.unwrap() / truth - 1.0).abs();
                    assert!(err < tolerance, "line {k}: ETA {e:?} s, truth {truth} s");
                }
            }
        }
    }

    #[test]
    fn a_rate_that_really_changes_is_followed_within_a_few_lines() {
        // 4 steps/s for an hour, then half (or twice, or a tenth) as many for good.
        let len = 1_000_000;
        for (factor, lines_to_25, lines_to_10) in [(0.5, 5, 8), (2.0, 5, 8), (0.1, 12, 15)] {
            // 240 steps a minute, then 120, 480 or 24 (4 samples a line).
            let per_line = |l: usize| if l < 60 { 240 } else { (240.0 * factor) as u64 };
            let etas = lines(len, SAMPLES_PER_LINE, 120, |i| per_line(i / 4) / 4);
            assert!(worst_jump(&etas) <= 2.0 + 1e-9, "{etas:?}");
            let mut pos = 0;
            for (k, e) in etas.iter().enumerate() {
                pos += per_line(k);
                let truth = (len - pos) as f64 / (per_line(k) as f64 / MINUTE);
                let err = (e.unwrap() / truth - 1.0).abs();
                if k < 60 {
                    assert!(err < 1e-9, "steady at first: line {k}");
                } else if k >= 60 + lines_to_10 {
                    assert!(err < 0.10, "x{factor}: line {k} is {:.0} % off", 100.0 * err);
                } else if k >= 60 + lines_to_25 {
                    assert!(err < 0.25, "x{factor}: line {k} is {:.0} % off", 100.0 * err);
                }
            }
        }
    }

    #[test]
    fn no_progress_yet_is_an_unknown_eta() {
        let mut eta = SmoothedEta::new(180.0);
        assert_eq!(eta.next_line(), None, "nothing observed");
        eta.observe(0.0, 0, Some(100));
        assert_eq!(eta.next_line(), None, "one observation: no rate");
        eta.observe(60.0, 0, Some(100));
        assert_eq!(eta.next_line(), None, "no progress in a minute");
        eta.observe(120.0, 10, Some(100));
        // 10 steps in the second minute: between the last minute's rate and the two minutes' mean.
        let first = eta.next_line().unwrap().as_secs();
        assert!((90 * 6..90 * 12).contains(&first), "{first} s");
        // A resumed run (the bar starts at 500 of a new length) or a new phase starts afresh.
        eta.observe(180.0, 500, Some(1000));
        assert_eq!(eta.next_line(), None, "a new length");
        eta.observe(240.0, 560, Some(1000));
        assert_eq!(eta.next_line().map(|d| d.as_secs()), Some(440), "the resumed 500 steps are not a rate");
        eta.observe(300.0, 20, Some(1000));
        assert_eq!(eta.next_line(), None, "the position went back");
        eta.reset();
        eta.observe(310.0, 30, None);
        eta.observe(320.0, 40, None);
        assert_eq!(eta.next_line(), None, "no length");
        // Stalled for good: the ETA grows (at most 2x a line), then is unknown, never absurd.
        let mut e = SmoothedEta::new(180.0);
        e.observe(0.0, 0, Some(100));
        e.observe(60.0, 1, Some(100));
        let mut prev = e.next_line().unwrap();
        for m in 2..200 {
            e.observe(60.0 * f64::from(m), 1, Some(100));
            match e.next_line() {
                Some(d) => {
                    assert!(d >= prev && d.as_secs_f64() <= 2.0 * prev.as_secs_f64() + 1e-6);
                    prev = d;
                }
                None => assert!(prev.as_secs_f64() > 1e8, "unknown only once absurd"),
            }
        }
        e.observe(1e5, 100, Some(100));
        assert_eq!(e.next_line(), Some(Duration::ZERO), "done");
        // The line says `ETA -` when it is unknown.
        let bar = ProgressBar::hidden();
        bar.set_length(100);
        bar.set_position(3);
        let l = line("pretrain", &bar, None);
        assert!(l.starts_with("[mcsfau pretrain] 3/100 (3.0 %), elapsed 0:00:00, ETA -"), "{l}");
        assert!(line("pretrain", &bar, Some(Duration::from_secs(3725))).ends_with("ETA 1:02:05"));
    }
}
