//! Range-checked value parsers for numeric flags: NaN, infinities, zero or
//! negative values where they mean nothing, and absurd sizes are refused by
//! clap (exit 2, the flag named) before any work starts.

use clap::builder::RangedU64ValueParser;

fn float(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !v.is_finite() {
        return Err(format!("`{s}` is not a finite number"));
    }
    Ok(v)
}

/// A finite number > 0.
pub fn positive(s: &str) -> Result<f64, String> {
    float(s).and_then(|v| if v > 0.0 { Ok(v) } else { Err(format!("{v} must be > 0")) })
}

/// A finite number >= 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    float(s).and_then(|v| if v >= 0.0 { Ok(v) } else { Err(format!("{v} must be >= 0")) })
}

/// A finite number in (0, 1).
pub fn open_fraction(s: &str) -> Result<f64, String> {
    float(s).and_then(|v| if v > 0.0 && v < 1.0 { Ok(v) } else { Err(format!("{v} must be between 0 and 1")) })
}

/// A finite number in [0, 1].
pub fn fraction(s: &str) -> Result<f64, String> {
    float(s).and_then(|v| if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("{v} must be between 0 and 1")) })
}

/// [`positive`] as f32 (and representable).
pub fn positive_f32(s: &str) -> Result<f32, String> {
    positive(s).and_then(|v| if v <= f64::from(f32::MAX) { Ok(v as f32) } else { Err(format!("{v} is too large")) })
}

/// [`non_negative`] as f32 (and representable).
pub fn non_negative_f32(s: &str) -> Result<f32, String> {
    non_negative(s).and_then(|v| if v <= f64::from(f32::MAX) { Ok(v as f32) } else { Err(format!("{v} is too large")) })
}

/// Seconds of synthetic video: > 0 and at most an hour.
pub fn seconds(s: &str) -> Result<f32, String> {
    positive_f32(s).and_then(|v| if v <= 3600.0 { Ok(v) } else { Err(format!("{v} s: at most 3600")) })
}

/// A scale factor: > 0 and at most 16.
pub fn scale(s: &str) -> Result<f32, String> {
    positive_f32(s).and_then(|v| if v <= 16.0 { Ok(v) } else { Err(format!("{v}: at most 16")) })
}

/// Frames per second when sampling a video: 0 (every frame) to 1000.
pub fn fps(s: &str) -> Result<f64, String> {
    non_negative(s).and_then(|v| if v <= 1000.0 { Ok(v) } else { Err(format!("{v} frames/s: at most 1000")) })
}

/// Side of a square crop in pixels.
pub const CROP_SIZES: std::ops::RangeInclusive<u64> = 16..=4096;

/// A count in `lo..=hi` (as usize).
pub fn count(lo: u64, hi: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(lo..=hi)
}

/// A count in `lo..=hi` (as u64).
pub fn count64(lo: u64, hi: u64) -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::<u64>::new().range(lo..=hi)
}

/// A count in `lo..=hi` (as u32), e.g. `--upsample`'s doublings of a
/// frame, 0 to dlib's maximum. (This file is also compiled into
/// `mcsfau-train`, which does not link the pipeline: callers pass the bound.)
pub fn count32(lo: u64, hi: u64) -> RangedU64ValueParser<u32> {
    RangedU64ValueParser::<u32>::new().range(lo..=hi)
}

/// A crop side in pixels, [`CROP_SIZES`] (as u32).
pub fn crop_size() -> RangedU64ValueParser<u32> {
    RangedU64ValueParser::<u32>::new().range(CROP_SIZES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_infinite_zero_and_negative_are_refused_where_meaningless() {
        for bad in ["nan", "NaN", "inf", "-inf", "0", "-1", "x", ""] {
            assert!(positive(bad).is_err(), "{bad}");
        }
        assert_eq!(positive("0.5"), Ok(0.5));
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(non_negative("-0.1").is_err());
        assert!(open_fraction("1").is_err() && open_fraction("0.05").is_ok());
        assert!(fps("nan").is_err() && fps("1e6").is_err() && fps("-1").is_err());
        assert_eq!(fps("0"), Ok(0.0), "0 keeps every frame");
        assert!(positive_f32("1e39").is_err());
    }
}
