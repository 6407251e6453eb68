//! AU label files of the labeled datasets (docs/preprocess.md).
//!
//! * BP4D `AUCoding/AU_OCC/<subject>_<task>.csv`: a header row of AU numbers
//!   whose first cell is the frame-number column ("0"), then one row per coded
//!   frame with 0 (absent), 1 (present) or 9 (unknown). The 12 protocol AUs are
//!   kept; 9 becomes -1 (unknown, never counted as absent).
//! * DISFA `ActionUnit_Labels/<subject>/<subject>_au<N>.txt`: one line
//!   `frame,intensity` per frame, frame numbers from 1, intensity 0-5. The 8
//!   protocol AUs are kept with their intensity; occurrence = intensity >= 2.
//!   DISFA frame number `n` is the `n`-th decoded frame of the video, i.e. the
//!   zero-based decoded index `n - 1`: the maps returned here are keyed by that
//!   zero-based index.

use std::collections::BTreeMap;
use std::path::Path;

use schemas::Labels;

use crate::error::{PipelineError, Result};

/// BP4D's 12 protocol AUs, in shard order.
pub const BP4D_AUS: [u16; 12] = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24];
/// DISFA's 8 protocol AUs, in shard order.
pub const DISFA_AUS: [u16; 8] = [1, 2, 4, 6, 9, 12, 25, 26];
/// DISFA intensity from which an AU counts as present.
pub const DISFA_PRESENT_FROM: i8 = 2;

fn bad(path: &Path, line: usize, message: impl Into<String>) -> PipelineError {
    PipelineError::Label { path: path.to_path_buf(), line, message: message.into() }
}

/// Reads a label file as text. Both datasets' files follow the same rules:
/// a UTF-8 byte-order mark is dropped, CRLF and LF line ends are both
/// accepted, blank lines are skipped and cells are trimmed of spaces.
fn read(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text))
}

/// Reads a BP4D `AU_OCC` file: frame number -> labels of [`BP4D_AUS`], and
/// the warning (if any) for cells stored as unknown.
pub fn read_bp4d(path: &Path) -> Result<(BTreeMap<i64, Labels>, Option<LabelWarning>)> {
    let mut bad = Vec::new();
    let map = parse_bp4d_cells(path, &read(path)?, &mut bad)?;
    Ok((map, bad_cells_warning(path, &bad)))
}

/// One warning for the cells of `path` that were stored as unknown (-1):
/// how many, and the first few with their line.
fn bad_cells_warning(path: &Path, bad: &[(usize, String)]) -> Option<LabelWarning> {
    if bad.is_empty() {
        return None;
    }
    let shown: Vec<String> = bad.iter().take(3).map(|(line, m)| format!("line {line}: {m}")).collect();
    let more = if bad.len() > 3 { format!("; and {} more", bad.len() - 3) } else { String::new() };
    Some(LabelWarning {
        path: path.to_path_buf(),
        message: format!("warning: {} cell(s) stored as unknown (-1): {}{more}", bad.len(), shown.join("; ")),
    })
}

/// Parses the text of a BP4D `AU_OCC` file (`path` only names it in errors);
/// a bad label cell is an error here ([`read_bp4d`] stores it as unknown).
pub fn parse_bp4d(path: &Path, text: &str) -> Result<BTreeMap<i64, Labels>> {
    strict(path, text, parse_bp4d_cells)
}

/// Bad label cells: (line, what is wrong), in file order.
type BadCells = Vec<(usize, String)>;

/// Runs a cell-tolerant parser and turns its first bad cell into an error.
fn strict<T>(path: &Path, text: &str, parse: fn(&Path, &str, &mut BadCells) -> Result<T>) -> Result<T> {
    let mut cells = Vec::new();
    let value = parse(path, text, &mut cells)?;
    match cells.first() {
        Some((line, message)) => Err(bad(path, *line, message.clone())),
        None => Ok(value),
    }
}

/// [`parse_bp4d`], with a bad label cell stored as -1 and described in `bad`
/// (the file's structure, its header, rows and frame numbers, must hold).
fn parse_bp4d_cells(path: &Path, text: &str, bad_cells: &mut BadCells) -> Result<BTreeMap<i64, Labels>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| bad(path, 1, "empty file, expected a header row of AU numbers"))?;
    let header: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut columns = Vec::with_capacity(BP4D_AUS.len());
    for au in BP4D_AUS {
        let col =
            header.iter().skip(1).position(|h| h.parse::<f64>().ok() == Some(f64::from(au))).ok_or_else(|| {
                bad(path, 1, format!("header has no column for AU {au} (header: {})", header.join(",")))
            })?;
        columns.push(col + 1);
    }
    let mut out = BTreeMap::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let lineno = i + 1;
        if cells.len() != header.len() {
            return Err(bad(path, lineno, format!("{} cells, expected {} like the header", cells.len(), header.len())));
        }
        let frame =
            parse_number(cells[0]).ok_or_else(|| bad(path, lineno, format!("frame `{}` is not a number", cells[0])))?;
        let mut occurrence = Vec::with_capacity(columns.len());
        for (&c, au) in columns.iter().zip(BP4D_AUS) {
            occurrence.push(match parse_number(cells[c]) {
                Some(0) => 0,
                Some(1) => 1,
                Some(9) => -1,
                _ => {
                    bad_cells.push((lineno, format!("AU {au}: `{}`, expected 0, 1 or 9", cells[c])));
                    -1
                }
            });
        }
        if out.insert(frame, Labels { occurrence, intensity: Vec::new() }).is_some() {
            return Err(bad(path, lineno, format!("frame {frame} is coded twice")));
        }
    }
    if out.is_empty() {
        return Err(bad(path, 2, "a header row but no coded frames"));
    }
    Ok(out)
}

/// Integers as written by the datasets' tools (`12`, `12.0`).
fn parse_number(s: &str) -> Option<i64> {
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    let f = s.parse::<f64>().ok()?;
    (f.fract() == 0.0 && f.is_finite()).then_some(f as i64)
}

/// The DISFA label file of one AU of `subject` under `root`.
pub fn disfa_label_path(root: &Path, subject: &str, au: u16) -> std::path::PathBuf {
    root.join("ActionUnit_Labels").join(subject).join(format!("{subject}_au{au}.txt"))
}

/// A deviation in a label file that did not stop its clip: the file and
/// what was done about it (a warning row of the errors table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelWarning {
    /// The label file.
    pub path: std::path::PathBuf,
    /// What deviates and how it was stored.
    pub message: String,
}

/// Reads the 8 DISFA label files of `subject`: zero-based decoded frame
/// index -> labels of [`DISFA_AUS`] with intensities. A frame missing from
/// one AU's file (but present in another's) gets -1 (unknown) for that AU
/// and a [`LabelWarning`] naming the file and the frame numbers.
pub fn read_disfa(root: &Path, subject: &str) -> Result<(BTreeMap<i64, Labels>, Vec<LabelWarning>)> {
    let mut per_au = Vec::with_capacity(DISFA_AUS.len());
    let mut paths = Vec::with_capacity(DISFA_AUS.len());
    let mut warnings = Vec::new();
    for au in DISFA_AUS {
        let path = disfa_label_path(root, subject, au);
        let mut bad = Vec::new();
        per_au.push(parse_disfa_cells(&path, &read(&path)?, &mut bad)?);
        warnings.extend(bad_cells_warning(&path, &bad));
        paths.push(path);
    }
    let mut out: BTreeMap<i64, Labels> = BTreeMap::new();
    for (k, map) in per_au.iter().enumerate() {
        for (&frame, &intensity) in map {
            let l = out.entry(frame).or_insert_with(|| Labels {
                occurrence: vec![-1; DISFA_AUS.len()],
                intensity: vec![-1; DISFA_AUS.len()],
            });
            l.intensity[k] = intensity;
            l.occurrence[k] = if intensity < 0 { -1 } else { i8::from(intensity >= DISFA_PRESENT_FROM) };
        }
    }
    for (k, map) in per_au.iter().enumerate() {
        let missing: Vec<i64> = out.keys().filter(|f| !map.contains_key(f)).map(|f| f + 1).collect();
        if !missing.is_empty() {
            warnings.push(LabelWarning {
                path: paths[k].clone(),
                message: format!(
                    "warning: {} frame(s) labeled in other AU files are missing here ({}); AU {} stored as unknown (-1)",
                    missing.len(),
                    ranges(&missing),
                    DISFA_AUS[k]
                ),
            });
        }
    }
    Ok((out, warnings))
}

/// `1-3, 7, 9-12` for sorted frame numbers (at most 5 ranges, then `...`).
fn ranges(v: &[i64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        if parts.len() == 5 {
            parts.push("...".into());
            break;
        }
        parts.push(if i == j { v[i].to_string() } else { format!("{}-{}", v[i], v[j]) });
        i = j + 1;
    }
    format!("frames {}", parts.join(", "))
}

/// Parses one DISFA `_au<N>.txt`: zero-based frame index -> intensity 0-5;
/// a bad intensity is an error here ([`read_disfa`] stores it as unknown).
pub fn parse_disfa_au(path: &Path, text: &str) -> Result<BTreeMap<i64, i8>> {
    strict(path, text, parse_disfa_cells)
}

/// [`parse_disfa_au`], with a bad intensity stored as -1 and described in `bad`.
fn parse_disfa_cells(path: &Path, text: &str, bad_cells: &mut BadCells) -> Result<BTreeMap<i64, i8>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut cells = line.split(',').map(str::trim);
        let (Some(f), Some(v), None) = (cells.next(), cells.next(), cells.next()) else {
            return Err(bad(path, lineno, format!("`{}`, expected `frame,intensity`", line.trim())));
        };
        let frame = parse_number(f).ok_or_else(|| bad(path, lineno, format!("frame `{f}` is not a number")))?;
        if frame < 1 {
            return Err(bad(path, lineno, format!("frame {frame}: DISFA frame numbers start at 1")));
        }
        let intensity = match parse_number(v).filter(|v| (0..=5).contains(v)) {
            Some(i) => i as i8,
            None => {
                bad_cells.push((lineno, format!("intensity `{v}`, expected 0-5")));
                -1
            }
        };
        if out.insert(frame - 1, intensity).is_some() {
            return Err(bad(path, lineno, format!("frame {frame} is listed twice")));
        }
    }
    if out.is_empty() {
        return Err(bad(path, 1, "no label lines, expected `frame,intensity` per frame"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bp4d_keeps_the_12_protocol_aus_and_marks_9_unknown() {
        let text = "0,1,2,4,5,6,7,9,10,11,12,13,14,15,16,17,18,19,20,22,23,24,27,28\n\
                    0012,1,0,9,1,0,1,1,0,0,1,0,1,0,0,1,0,0,0,0,1,9,0,0\n";
        let m = parse_bp4d(Path::new("F001_T1.csv"), text).unwrap();
        // AUs 1 2 4 6 7 10 12 14 15 17 23 24
        assert_eq!(m[&12].occurrence, vec![1, 0, -1, 0, 1, 0, 1, 1, 0, 1, 1, -1]);
        assert!(m[&12].intensity.is_empty());
    }

    #[test]
    fn bp4d_errors_name_file_line_and_expectation() {
        let e = parse_bp4d(Path::new("F001_T1.csv"), "0,1,2\n1,0,1\n").unwrap_err().to_string();
        assert!(e.contains("F001_T1.csv") && e.contains("AU 4"), "{e}");
        let text = "0,1,2,4,6,7,10,12,14,15,17,23,24\n5,0,0,0,0,0,0,0,0,0,0,0,7\n";
        let e = parse_bp4d(Path::new("x.csv"), text).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("AU 24") && e.contains("0, 1 or 9"), "{e}");
    }

    #[test]
    fn disfa_frame_numbers_from_one_become_zero_based_indices() {
        let m = parse_disfa_au(Path::new("SN001_au1.txt"), "1,0\n2,3\n3,2\n").unwrap();
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![(0, 0), (1, 3), (2, 2)]);
        let e = parse_disfa_au(Path::new("SN001_au1.txt"), "1,0\n2,x\n").unwrap_err().to_string();
        assert!(e.contains("SN001_au1.txt") && e.contains("line 2") && e.contains("0-5"), "{e}");
        assert!(parse_disfa_au(Path::new("a"), "0,1\n").is_err(), "frame 0 does not exist in DISFA");
    }

    #[test]
    fn disfa_occurrence_is_intensity_at_least_2() {
        let dir = tempfile::tempdir().unwrap();
        for (k, au) in DISFA_AUS.iter().enumerate() {
            let p = disfa_label_path(dir.path(), "SN001", *au);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("1,{}\n2,0\n", k % 6)).unwrap();
        }
        let (m, warnings) = read_disfa(dir.path(), "SN001").unwrap();
        assert_eq!(m[&0].intensity, vec![0, 1, 2, 3, 4, 5, 0, 1]);
        assert_eq!(m[&0].occurrence, vec![0, 0, 1, 1, 1, 1, 0, 0]);
        assert_eq!(m[&1].occurrence, vec![0; 8]);
        assert!(warnings.is_empty());
    }

    #[test]
    fn both_datasets_accept_bom_crlf_blank_lines_and_spaces() {
        let bp4d = "\u{feff}0,1,2,4,6,7,10,12,14,15,17,23,24\r\n\r\n 5 , 1,0,0,0,0,0,0,0,0,0,0,9 \r\n";
        let m = parse_bp4d(Path::new("F001_T1.csv"), bp4d).unwrap();
        assert_eq!(m[&5].occurrence[0], 1);
        let disfa = "\u{feff}1, 3\r\n\r\n 2 ,0 \r\n";
        let m = parse_disfa_au(Path::new("SN001_au1.txt"), disfa).unwrap();
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![(0, 3), (1, 0)]);
    }

    #[test]
    fn a_bad_cell_is_stored_as_unknown_with_one_warning_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("F001_T1.csv");
        std::fs::write(&p, "0,1,2,4,6,7,10,12,14,15,17,23,24\n5,1,x,0,0,0,0,0,0,0,0,0,7\n6,0,0,0,0,0,0,0,0,0,0,0,0\n")
            .unwrap();
        let (m, w) = read_bp4d(&p).unwrap();
        assert_eq!(m[&5].occurrence[..3], [1, -1, 0]);
        assert_eq!(m[&5].occurrence[11], -1);
        assert_eq!(m[&6].occurrence, vec![0; 12]);
        let w = w.unwrap();
        assert!(
            w.message.starts_with("warning: 2 cell(s)") && w.message.contains("line 2: AU 2: `x`"),
            "{}",
            w.message
        );
        assert!(parse_bp4d(&p, &std::fs::read_to_string(&p).unwrap()).is_err(), "the strict parser still refuses");
    }

    #[test]
    fn a_header_without_rows_is_an_error() {
        let e = parse_bp4d(Path::new("F001_T1.csv"), "0,1,2,4,6,7,10,12,14,15,17,23,24\n").unwrap_err().to_string();
        assert!(e.contains("F001_T1.csv") && e.contains("no coded frames"), "{e}");
    }

    #[test]
    fn a_line_missing_from_one_disfa_file_is_a_warning_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        for au in DISFA_AUS {
            let p = disfa_label_path(dir.path(), "SN001", au);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let text = if au == 4 { "1,0\n2,0\n4,0\n" } else { "1,0\n2,0\n3,2\n4,0\n" };
            std::fs::write(&p, text).unwrap();
        }
        let (m, warnings) = read_disfa(dir.path(), "SN001").unwrap();
        assert_eq!(m[&2].occurrence[2], -1, "AU 4 of frame 3 is unknown");
        assert_eq!(m[&2].occurrence[3], 1);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].path.ends_with("SN001_au4.txt"), "{:?}", warnings[0]);
        assert!(warnings[0].message.contains("frames 3") && warnings[0].message.contains("AU 4"), "{:?}", warnings[0]);
        assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), "frames 1-3, 7, 9-10");
    }
}
