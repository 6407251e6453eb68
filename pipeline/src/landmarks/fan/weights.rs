//! Reads the network shape from a converted weights file's safetensors
//! metadata (written by `scripts/convert_fan.py`).

use std::io::Read;
use std::path::Path;

use super::net::{FanConfig, Pool};
use crate::error::{PipelineError, Result};

/// The `format` value convert_fan.py writes.
pub const FORMAT: &str = "mcsfau-fan";

/// The [`FanConfig`] recorded in `path`'s safetensors header.
pub fn read_config(path: &Path) -> Result<FanConfig> {
    let err = |message: String| PipelineError::LandmarkModel { path: path.to_path_buf(), message };
    let mut file = std::fs::File::open(path).map_err(|e| {
        err(format!(
            "cannot open FAN weights ({e}); convert face_alignment's 2DFAN4 file with \
             scripts/convert_fan.py (docs/landmarks.md)"
        ))
    })?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(err(format!("not a safetensors file (header length {len})")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(|e| err(format!("truncated safetensors header: {e}")))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| err(format!("bad safetensors header: {e}")))?;
    let meta = header.get("__metadata__").and_then(|m| m.as_object());
    let get = |key: &str| meta.and_then(|m| m.get(key)).and_then(|v| v.as_str());
    if get("format") != Some(FORMAT) {
        return Err(err(format!(
            "no `format: {FORMAT}` metadata: this safetensors file was not written by \
             scripts/convert_fan.py; convert the 2DFAN4 weights with it"
        )));
    }
    let num = |key: &str| -> Result<i64> {
        get(key)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| err(format!("metadata `{key}` missing or not a positive integer")))
    };
    let pool = match get("pool") {
        Some("max") => Pool::Max,
        Some("avg") => Pool::Avg,
        other => return Err(err(format!("metadata `pool` must be max or avg, found {other:?}"))),
    };
    let features = num("features")?;
    if features % 4 != 0 {
        return Err(err(format!("metadata `features` = {features} is not a multiple of 4")));
    }
    let hg_depth = num("hg_depth")? as usize;
    if hg_depth > 6 {
        return Err(err(format!("metadata `hg_depth` = {hg_depth}: 64x64 features allow at most 6 halvings")));
    }
    Ok(FanConfig { num_modules: num("num_modules")? as usize, hg_depth, features, pool })
}
