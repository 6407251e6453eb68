//! `RUN/log.jsonl`: one JSON record per logged step, and the progress
//! callback the loop reports to (the binary draws a bar; the library never
//! prints).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::diagnostics::Diagnostics;
use super::error::{Result, TrainError};
use super::step::LossValues;

/// One line of `log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Optimizer step, 1-based.
    pub step: u64,
    /// Epoch of the batch, 0-based.
    pub epoch: u64,
    /// The loss terms of this step.
    #[serde(flatten)]
    pub losses: LossValues,
    /// Learning rate used by this step.
    pub lr: f64,
    /// Images per second since the previous record (wall time).
    pub images_per_s: f64,
    /// Fraction of wall time since the previous record spent waiting for
    /// the loader, 0 to 1.
    pub data_wait: f64,
    /// Seconds since this process started training.
    pub elapsed_s: f64,
    /// Learning diagnostics, on the steps they were computed
    /// (`output.diagnostics_every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
}

/// What the loop tells its caller as it goes. Every method has a no-op
/// default.
pub trait TrainProgress: Sync {
    /// Training starts (or resumes) at `done` of `total` steps.
    fn start(&self, _total: u64, _done: u64) {}
    /// A step finished.
    fn step(&self, _step: u64, _losses: &LossValues) {}
    /// A status line (checkpoint written, resumed from, ...).
    fn message(&self, _msg: &str) {}
    /// Training ended (finished or stopped).
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl TrainProgress for NoProgress {}

/// Appends records to `log.jsonl`.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    /// Opened at the first record, so a run that fails before its first
    /// step leaves no empty log.
    file: Option<std::fs::File>,
}

impl LogWriter {
    /// Opens `path` for appending, after dropping every record past
    /// `keep_until` (the steps a killed run logged after its last
    /// checkpoint are replayed by the resumed run) and a torn last line.
    /// The records kept are not rewritten: the file is cut after the last
    /// kept line, so their bytes stay exactly as first written.
    pub fn open(path: &Path, keep_until: u64) -> Result<Self> {
        if path.exists() {
            let text = std::fs::read(path).map_err(TrainError::io(path))?;
            let (keep, open) = kept_prefix(&text, keep_until);
            if keep < text.len() {
                let f = std::fs::OpenOptions::new().write(true).open(path).map_err(TrainError::io(path))?;
                f.set_len(keep as u64).map_err(TrainError::io(path))?;
            }
            if open {
                let mut f = std::fs::OpenOptions::new().append(true).open(path).map_err(TrainError::io(path))?;
                f.write_all(b"\n").map_err(TrainError::io(path))?;
            }
        }
        Ok(Self { path: path.to_path_buf(), file: None })
    }

    /// Appends one record and flushes it.
    pub fn write(&mut self, r: &LogRecord) -> Result<()> {
        let line = to_line(&self.path, r)?;
        if self.file.is_none() {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path);
            self.file = Some(f.map_err(TrainError::io(&self.path))?);
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(line.as_bytes()).and_then(|_| file.flush()).map_err(TrainError::io(&self.path))
    }
}

/// Bytes of `text` to keep: up to the end of the last line whose record
/// parses with `step <= keep_until` (scanning stops at the first record
/// past it). A line that does not parse before that point is kept and
/// skipped by [`read_log`] (with a warning), as before; a torn line after
/// it is cut. Returns the length and whether the last kept line lacks its
/// newline (a record written completely but for the `\n`).
fn kept_prefix(text: &[u8], keep_until: u64) -> (usize, bool) {
    let (mut pos, mut end, mut open) = (0, 0, false);
    while pos < text.len() {
        let nl = text[pos..].iter().position(|&b| b == b'\n');
        let line_end = nl.map_or(text.len(), |n| pos + n);
        match serde_json::from_slice::<LogRecord>(&text[pos..line_end]) {
            Ok(r) if r.step > keep_until => break,
            Ok(_) => {
                end = nl.map_or(line_end, |_| line_end + 1);
                open = nl.is_none();
            }
            Err(_) => {}
        }
        pos = line_end + 1;
    }
    (end, open)
}

fn to_line(path: &Path, r: &LogRecord) -> Result<String> {
    let mut s = serde_json::to_string(r)
        .map_err(|e| TrainError::Io { path: path.to_path_buf(), source: std::io::Error::other(e) })?;
    s.push('\n');
    Ok(s)
}

/// The records of a `log.jsonl` (none if the file does not exist); a line
/// that does not parse (a killed run's partial last line) is skipped.
pub fn read_log(path: &Path) -> Result<Vec<LogRecord>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(file = %path.display(), line = i + 1, "skipping a log line: {e}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: u64) -> LogRecord {
        let losses = LossValues { l_s: 1.0, l_d: 2.0, l_r: 0.5, l_c: 0.25, total: 3.5125 };
        LogRecord {
            step,
            epoch: 0,
            losses,
            lr: 0.1,
            images_per_s: 10.0,
            data_wait: 0.1,
            elapsed_s: 1.0,
            diagnostics: None,
        }
    }

    #[test]
    fn reopening_drops_records_past_the_checkpoint_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        let mut w = LogWriter::open(&p, 0).unwrap();
        for s in 1..=5 {
            w.write(&rec(s)).unwrap();
        }
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"{\"step\": 6, \"ep").unwrap();
        let line = std::fs::read_to_string(&p).unwrap();
        assert!(line.starts_with(r#"{"step":1,"epoch":0,"l_s":1.0,"l_d":2.0"#), "{line}");
        let mut w = LogWriter::open(&p, 3).unwrap();
        w.write(&rec(4)).unwrap();
        let steps: Vec<u64> = read_log(&p).unwrap().iter().map(|r| r.step).collect();
        assert_eq!(steps, vec![1, 2, 3, 4]);
    }

    #[test]
    fn kept_records_keep_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        // a line as another serializer (or an older build) wrote it: the
        // resumed run must not re-encode it
        let first = "{\"step\":1,\"epoch\":0,\"l_s\":0.10000000149011612,\"l_d\":2.0,\"l_r\":0.5,\"l_c\":0.25,\"total\":3.5,\"lr\":0.1,\"images_per_s\":1e1,\"data_wait\":0.1,\"elapsed_s\":1.0}\n";
        std::fs::write(&p, first).unwrap();
        let mut w = LogWriter::open(&p, 1).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), first, "a finished run's resume leaves the log as it was");
        w.write(&rec(2)).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().starts_with(first));
    }

    #[test]
    fn a_bad_line_inside_the_kept_part_does_not_cut_the_records_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        let line = |s| to_line(&p, &rec(s)).unwrap();
        // a complete last record that lost only its newline
        let text = format!("{}garbage\n{}{}", line(1), line(2), line(3).trim_end());
        std::fs::write(&p, &text).unwrap();
        let mut w = LogWriter::open(&p, 3).unwrap();
        w.write(&rec(4)).unwrap();
        let steps: Vec<u64> = read_log(&p).unwrap().iter().map(|r| r.step).collect();
        assert_eq!(steps, vec![1, 2, 3, 4]);
        assert!(std::fs::read_to_string(&p).unwrap().starts_with(&text));
    }
}
