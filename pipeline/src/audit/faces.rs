//! How often preprocess found a face: the `faces-<part>.csv` tables it
//! writes next to `shards/` (frames without a face leave no row in the
//! shards, so only these tables know them).
//!
//! Tables are looked for in the `--shards` folder and its parent (the
//! preprocess `--out` folder holds `shards/` and the tables).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Check;
use crate::error::{PipelineError, Result};

/// The header preprocess writes (`preprocess::report::faces_csv`).
pub const HEADER: &str = "file,frames,detected,followed,no_face,no_face_rate,refused,cuts";

/// The header of tables written before follows were verified (issue 23):
/// no `refused` and `cuts` columns; read as 0.
pub const OLD_HEADER: &str = "file,frames,detected,followed,no_face,no_face_rate";

/// One clip's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipFaces {
    /// The clip, relative to the dataset root.
    pub file: String,
    /// Frames given to the landmark stage.
    pub frames: u64,
    /// Faces the detector found.
    pub detected: u64,
    /// Faces followed from an earlier detection.
    pub followed: u64,
    /// Frames without a face.
    pub no_face: u64,
    /// Follows refused (the box no longer showed the face).
    pub refused: u64,
    /// Shot cuts seen.
    pub cuts: u64,
}

/// The face figures of every table found.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct FaceStats {
    /// The tables read.
    pub tables: Vec<String>,
    /// Clips.
    pub clips: u64,
    /// Frames given to the landmark stage.
    pub frames: u64,
    /// Faces detected.
    pub detected: u64,
    /// Faces followed.
    pub followed: u64,
    /// Frames without a face.
    pub no_face: u64,
    /// Follows refused.
    pub refused: u64,
    /// Shot cuts seen.
    pub cuts: u64,
    /// `no_face / frames`.
    pub no_face_rate: f64,
    /// Clips in which no frame had a face.
    pub clips_without_face: u64,
    /// The clips with the highest no-face rate (up to 10; ties by name).
    pub worst: Vec<(String, f64, u64)>,
}

/// The `faces-*.csv` tables in `shards` and its parent, sorted.
pub fn tables(shards: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [Some(shards), shards.parent()].into_iter().flatten() {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("faces-") && name.ends_with(".csv") && e.path().is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Parses one table; an error names the file and the line.
pub fn read_table(path: &Path) -> Result<Vec<ClipFaces>> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
    let bad = |line: usize, what: String| PipelineError::Input {
        path: path.to_path_buf(),
        message: format!("line {line}: {what}"),
    };
    let mut lines = text.lines();
    // Cells after the file name: 5 in old tables, 7 now.
    let extra = match lines.next().map(str::trim_end) {
        Some(HEADER) => 2,
        Some(OLD_HEADER) => 0,
        other => return Err(bad(1, format!("expected the header `{HEADER}`, found `{}`", other.unwrap_or("")))),
    };
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        // The file name may be quoted (commas); the numbers are last.
        let n = 6 + extra;
        let mut cells: Vec<&str> = line.rsplitn(n, ',').collect();
        if cells.len() != n {
            return Err(bad(i + 2, format!("expected {n} cells, found {}", cells.len())));
        }
        cells.reverse();
        let num = |s: &str, what: &str| {
            s.trim().parse::<u64>().map_err(|_| bad(i + 2, format!("{what} `{s}` is not a count")))
        };
        let later = |k: usize, what: &str| if extra > 0 { num(cells[k], what) } else { Ok(0) };
        let row = ClipFaces {
            file: cells[0].trim_matches('"').replace("\"\"", "\""),
            frames: num(cells[1], "frames")?,
            detected: num(cells[2], "detected")?,
            followed: num(cells[3], "followed")?,
            no_face: num(cells[4], "no_face")?,
            refused: later(6, "refused")?,
            cuts: later(7, "cuts")?,
        };
        if row.detected + row.followed + row.no_face != row.frames {
            return Err(bad(i + 2, "detected + followed + no_face is not frames".into()));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Reads the tables next to `shards` and checks the no-face rate against
/// `max_rate`. `None` and a skipped check when there are no tables.
pub fn check(shards: &Path, max_rate: f64) -> Result<(Option<FaceStats>, Check)> {
    const NAME: &str = "faces/no_face_rate";
    let paths = tables(shards);
    if paths.is_empty() {
        let why = "no faces-*.csv next to the shards (written by preprocess into its --out folder)";
        return Ok((None, Check::skipped(NAME, why)));
    }
    let mut s = FaceStats::default();
    let mut clips = Vec::new();
    for p in &paths {
        s.tables.push(p.display().to_string());
        clips.extend(read_table(p)?);
    }
    for c in &clips {
        s.clips += 1;
        s.frames += c.frames;
        s.detected += c.detected;
        s.followed += c.followed;
        s.no_face += c.no_face;
        s.refused += c.refused;
        s.cuts += c.cuts;
        s.clips_without_face += u64::from(c.frames > 0 && c.no_face == c.frames);
    }
    s.no_face_rate = if s.frames > 0 { s.no_face as f64 / s.frames as f64 } else { 0.0 };
    let rate = |c: &ClipFaces| if c.frames > 0 { c.no_face as f64 / c.frames as f64 } else { 0.0 };
    clips.sort_by(|a, b| rate(b).total_cmp(&rate(a)).then_with(|| a.file.cmp(&b.file)));
    s.worst = clips.iter().filter(|c| c.no_face > 0).take(10).map(|c| (c.file.clone(), rate(c), c.frames)).collect();
    let summary = format!(
        "{} of {} frames ({:.1} %) had no face (limit {:.1} %); {} of {} clips had none at all; {} faces followed from an earlier detection, {} follows refused, {} shot cuts",
        s.no_face,
        s.frames,
        100.0 * s.no_face_rate,
        100.0 * max_rate,
        s.clips_without_face,
        s.clips,
        s.followed,
        s.refused,
        s.cuts
    );
    let failed = s.no_face_rate > max_rate;
    let check = Check {
        name: NAME.into(),
        status: if failed { super::Status::Fail } else { super::Status::Pass },
        count: if failed { s.no_face } else { 0 },
        summary,
        examples: s.worst.iter().map(|(f, r, n)| format!("{f}: {:.1} % of {n} frames", 100.0 * r)).collect(),
    };
    Ok((Some(s), check))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read_summed_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let shards = d.path().join("shards");
        std::fs::create_dir_all(&shards).unwrap();
        let t = format!("{HEADER}\na.mp4,10,8,1,1,0.1000,3,2\n\"b,c.mp4\",4,0,0,4,1.0000,0,0\n");
        std::fs::write(d.path().join("faces-p0000of0001.csv"), t).unwrap();
        let (s, c) = check(&shards, 0.2).unwrap();
        let s = s.unwrap();
        assert_eq!((s.clips, s.frames, s.no_face, s.clips_without_face, s.followed), (2, 14, 5, 1, 1));
        assert_eq!((s.refused, s.cuts), (3, 2));
        // A table of an older run (no refused/cuts columns) still reads.
        let old = format!("{OLD_HEADER}\n\"b,c.mp4\",4,0,1,3,0.7500\n");
        std::fs::write(d.path().join("faces-p0001of0002.csv"), old).unwrap();
        let s = check(&shards, 0.2).unwrap().0.unwrap();
        assert_eq!((s.clips, s.frames, s.followed, s.refused), (3, 18, 2, 3));
        std::fs::remove_file(d.path().join("faces-p0001of0002.csv")).unwrap();
        assert_eq!(c.status, super::super::Status::Fail, "{c:?}");
        assert_eq!(s.worst[0].0, "b,c.mp4");
        assert_eq!(check(&shards, 0.5).unwrap().1.status, super::super::Status::Pass);
        std::fs::write(d.path().join("faces-p0000of0001.csv"), format!("{HEADER}\na.mp4,10,8,1,9,0.1\n")).unwrap();
        let e = check(&shards, 0.2).unwrap_err().to_string();
        assert!(e.contains("faces-p0000of0001.csv") && e.contains("line 2"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let inner = empty.path().join("shards");
        std::fs::create_dir_all(&inner).unwrap();
        assert_eq!(check(&inner, 0.2).unwrap().1.status, super::super::Status::Skipped);
    }
}
