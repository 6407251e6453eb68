//! The `synthetic` and `dataset` backends: points that come with the data.
//!
//! Preprocess reads the clip's sidecar file ([`read_sidecar`]) and hands each
//! frame's points in [`FrameRef::given`]; the backend only turns them into a
//! [`Face68`] (score 1, face box = the points' bounding box). Sidecar format
//! (shared with `mcsfau synth`): header `frame,x0,y0,...,x67,y67`, one row per
//! frame, `frame` the zero-based decoded index (videos) or the frame number of
//! the file name (BP4D), coordinates in source-frame pixels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Face68, FrameRef, LandmarkBackend, Points68, NUM_POINTS_68};
use crate::error::{PipelineError, Result};

/// Which name the given points are stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GivenKind {
    /// The exact points of `mcsfau synth`'s drawing model.
    Synthetic,
    /// Points the dataset ships.
    Dataset,
}

/// Backend returning the points handed in [`FrameRef::given`].
#[derive(Debug, Clone)]
pub struct GivenBackend {
    kind: GivenKind,
}

impl GivenBackend {
    /// A backend storing its rows as `synthetic` or `dataset`.
    pub fn new(kind: GivenKind) -> Self {
        Self { kind }
    }
}

/// Bounding box (x0, y0, x1, y1) of a point set.
pub fn bounding_box(points: &Points68) -> [f32; 4] {
    let mut b = [f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY];
    for [x, y] in points {
        b = [b[0].min(*x), b[1].min(*y), b[2].max(*x), b[3].max(*y)];
    }
    b
}

impl LandmarkBackend for GivenBackend {
    fn name(&self) -> &'static str {
        match self.kind {
            GivenKind::Synthetic => "synthetic",
            GivenKind::Dataset => "dataset",
        }
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Option<Face68>>> {
        Ok(frames
            .iter()
            .map(|f| f.given.map(|p| Face68 { points: *p, score: 1.0, face_box: bounding_box(p) }))
            .collect())
    }
}

/// The sidecar of a video file or a BP4D frame folder, the one naming rule
/// both `mcsfau synth` and preprocess use: `clip.mp4` -> `clip.ldm68.csv`,
/// `Sequences/F001/T1` -> `Sequences/F001/T1.ldm68.csv`.
pub fn sidecar_path(media: &Path) -> PathBuf {
    if media.extension().is_some() {
        media.with_extension("ldm68.csv")
    } else {
        let mut s = media.as_os_str().to_owned();
        s.push(".ldm68.csv");
        PathBuf::from(s)
    }
}

/// Reads a landmark sidecar: frame key -> 68 points.
pub fn read_sidecar(path: &Path) -> Result<BTreeMap<i64, Points68>> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Input {
        path: path.to_path_buf(),
        message: format!("cannot read the landmark sidecar ({e}); expected a `frame,x0,y0,...,x67,y67` CSV"),
    })?;
    parse_sidecar(path, &text)
}

/// Parses sidecar text (`path` only names it in errors).
pub fn parse_sidecar(path: &Path, text: &str) -> Result<BTreeMap<i64, Points68>> {
    let bad = |line: usize, message: String| PipelineError::Label { path: path.to_path_buf(), line, message };
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
    let cells = 1 + 2 * NUM_POINTS_68;
    if !header.starts_with("frame,x0,y0") || header.split(',').count() != cells {
        return Err(bad(1, format!("header `{header:.40}`, expected `frame,x0,y0,...,x67,y67` ({cells} cells)")));
    }
    let mut out = BTreeMap::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let v: Vec<&str> = line.split(',').map(str::trim).collect();
        if v.len() != cells {
            return Err(bad(i + 1, format!("{} cells, expected {cells}", v.len())));
        }
        let frame: i64 = v[0].parse().map_err(|_| bad(i + 1, format!("frame `{}` is not an integer", v[0])))?;
        let mut p = [[0f32; 2]; NUM_POINTS_68];
        for (k, q) in p.iter_mut().enumerate() {
            for (c, slot) in q.iter_mut().enumerate() {
                let s = v[1 + 2 * k + c];
                *slot = s
                    .parse::<f32>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| bad(i + 1, format!("point {k}: `{s}` is not a finite number")))?;
            }
        }
        out.insert(frame, p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar(rows: &[(i64, f32)]) -> String {
        let mut s = String::from("frame");
        for k in 0..68 {
            s += &format!(",x{k},y{k}");
        }
        s.push('\n');
        for (f, off) in rows {
            s += &f.to_string();
            for k in 0..68 {
                s += &format!(",{},{}", k as f32 + off, 2.0 * k as f32 + off);
            }
            s.push('\n');
        }
        s
    }

    #[test]
    fn sidecar_rows_become_points_and_the_backend_passes_them_through() {
        let m = parse_sidecar(Path::new("a.ldm68.csv"), &sidecar(&[(0, 0.5), (3, 1.0)])).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&3][67], [68.0, 135.0]);
        let mut b = GivenBackend::new(GivenKind::Synthetic);
        let rgb = [0u8; 12];
        let frames = [
            FrameRef { width: 2, height: 2, rgb: &rgb, given: Some(&m[&0]) },
            FrameRef { width: 2, height: 2, rgb: &rgb, given: None },
        ];
        let out = b.detect(&frames).unwrap();
        let face = out[0].as_ref().unwrap();
        assert_eq!(face.face_box, [0.5, 0.5, 67.5, 134.5]);
        assert_eq!(face.score, 1.0);
        assert!(out[1].is_none());
        assert_eq!(b.name(), "synthetic");
    }

    #[test]
    fn malformed_sidecars_name_file_and_line() {
        let mut text = sidecar(&[(0, 0.0)]);
        text.push_str("1,2,3\n");
        let e = parse_sidecar(Path::new("clip.ldm68.csv"), &text).unwrap_err().to_string();
        assert!(e.contains("clip.ldm68.csv") && e.contains("line 3") && e.contains("137"), "{e}");
        let e = parse_sidecar(Path::new("c.csv"), "hello\n").unwrap_err().to_string();
        assert!(e.contains("header"), "{e}");
    }
}
