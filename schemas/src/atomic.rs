//! Atomic file output: every file mcsfau writes appears under its final name
//! complete or not at all.
//!
//! The content goes to a hidden temporary file in the same folder
//! (`.<name>.<pid>-<n>.tmp.<ext>`, same extension so that encoders that pick
//! a format from the name still work) and is renamed over the final name
//! once complete. A full disk, a kill or an encoder error leaves the old file
//! (or none) under the final name; the temporary file is removed on error and
//! ignored by every reader (names starting with `.`). Files are not fsynced:
//! the promise covers kills and failed writes, not power loss (shards, the
//! costliest output to redo, sync before their rename).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary name [`write_with`] uses for `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    dir.join(format!(".{name}.{}-{n}.tmp{ext}", std::process::id()))
}

/// An error of [`write_with`]: the caller's own, or the filesystem's on the
/// rename (with the path concerned).
#[derive(Debug)]
pub enum AtomicError<E> {
    /// The closure that wrote the temporary file failed.
    Write(E),
    /// Renaming failed.
    Io(PathBuf, std::io::Error),
}

impl<E: std::fmt::Display> std::fmt::Display for AtomicError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write(e) => write!(f, "{e}"),
            Self::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for AtomicError<E> {}

/// Lets `write` produce the file at a temporary path, then renames it to
/// `path`. On any error the temporary file is removed and
/// `path` is untouched.
pub fn write_with<T, E>(path: &Path, write: impl FnOnce(&Path) -> Result<T, E>) -> Result<T, AtomicError<E>> {
    let tmp = temp_path(path);
    let cleanup = |tmp: &Path| {
        let _ = std::fs::remove_file(tmp);
    };
    let value = match write(&tmp) {
        Ok(v) => v,
        Err(e) => {
            cleanup(&tmp);
            return Err(AtomicError::Write(e));
        }
    };
    match std::fs::rename(&tmp, path) {
        Ok(()) => Ok(value),
        Err(e) => {
            cleanup(&tmp);
            Err(AtomicError::Io(path.to_path_buf(), e))
        }
    }
}

/// Writes `bytes` to `path` atomically. The error names the file.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |tmp| -> std::io::Result<()> {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.flush()
    })
    .map_err(|e| match e {
        AtomicError::Write(e) | AtomicError::Io(_, e) => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("report.json");
        write(&p, b"old").unwrap();
        let r: Result<(), _> = write_with(&p, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err("encoder failed")
        });
        assert!(matches!(r, Err(AtomicError::Write("encoder failed"))));
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file removed");
        write(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn temporary_names_are_hidden_and_keep_the_extension() {
        let t = temp_path(Path::new("out/losses.png"));
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".losses.png.") && name.ends_with(".tmp.png"), "{name}");
        assert_eq!(t.parent().unwrap(), Path::new("out"));
        assert_eq!(temp_path(Path::new("x")).parent().unwrap(), Path::new("."));
    }
}
