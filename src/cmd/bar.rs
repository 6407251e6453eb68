//! Progress without a terminal. indicatif draws nothing when stderr is not
//! a terminal (a Slurm log, `nohup`, a pipe), so a day-long job would log
//! nothing until it ends; [`lines_without_terminal`] prints the bar's state
//! as one plain line (no ANSI codes) every `MCSFAU_PROGRESS_SECS` seconds
//! (default 60) while it changes.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::ProgressBar;

/// Seconds between lines: `MCSFAU_PROGRESS_SECS` (a positive number), else 60.
fn interval() -> Duration {
    std::env::var("MCSFAU_PROGRESS_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map_or(Duration::from_secs(60), Duration::from_secs_f64)
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One line: `[mcsfau CMD] PHASE POS/LEN (P %), elapsed H:MM:SS, ETA H:MM:SS; MESSAGE`.
fn line(command: &str, bar: &ProgressBar) -> String {
    let pos = bar.position();
    let mut s = format!("[mcsfau {command}]");
    let (prefix, message) = (bar.prefix(), bar.message());
    if !prefix.trim().is_empty() {
        s.push(' ');
        s.push_str(prefix.trim());
    }
    let eta = if pos > 0 { hms(bar.eta()) } else { "-".into() };
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

/// Prints `bar`'s state every interval while it changes, when stderr is not
/// a terminal (on a terminal the bar itself shows). Call it for bars that
/// are meant to be seen (not for `--quiet`).
pub fn lines_without_terminal(bar: &ProgressBar, command: &'static str) {
    if std::io::stderr().is_terminal() {
        return;
    }
    let bar = bar.clone();
    let every = interval();
    let _ = std::thread::Builder::new().name("progress-lines".into()).spawn(move || {
        let mut last = None;
        loop {
            std::thread::sleep(every);
            let state = (bar.position(), bar.length(), bar.message(), bar.prefix());
            if bar.is_finished() || (state.0 == 0 && state.1.unwrap_or(0) == 0) || last.as_ref() == Some(&state) {
                continue;
            }
            eprintln!("{}", line(command, &bar));
            last = Some(state);
        }
    });
}
