//! JPEG decoding into a batch buffer on a worker pool, with corrupt rows
//! skipped, counted and logged (a long run must never die on one bad crop).

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::{ColorType, DynamicImage, ImageDecoder};
use rayon::prelude::*;
use schemas::NUM_LANDMARKS;
use tch::{Device, Kind, Tensor};

/// One row as read from a shard: what a batch needs, nothing else.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    /// Sample id.
    pub id: String,
    /// JPEG bytes.
    pub image: Vec<u8>,
    /// 49 x (x, y), crop pixels.
    pub landmarks: [f32; 2 * NUM_LANDMARKS],
    /// Index of the shard the row came from (for messages).
    pub shard: usize,
}

/// Decodes `jpeg` into `dst` as `side x side` interleaved RGB (HWC).
/// Grey JPEGs are expanded to RGB; anything else that is not a `side` square
/// is an error describing what was found.
pub(crate) fn decode_into(jpeg: &[u8], side: u32, dst: &mut [u8]) -> Result<(), String> {
    let decoder = JpegDecoder::new(Cursor::new(jpeg)).map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    if (w, h) != (side, side) {
        return Err(format!("decodes to {w}x{h}, expected {side}x{side}"));
    }
    if decoder.color_type() == ColorType::Rgb8 {
        return decoder.read_image(dst).map_err(|e| e.to_string());
    }
    let img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    dst.copy_from_slice(img.to_rgb8().as_raw());
    Ok(())
}

/// `t`'s memory as bytes, for decoding into it.
///
/// # Panics
/// When `t` is not a contiguous uint8 CPU tensor of `len` bytes (a bug).
fn bytes_mut(t: &mut Tensor, len: usize) -> &mut [u8] {
    assert!(t.is_contiguous() && t.kind() == Kind::Uint8 && t.device() == Device::Cpu && t.numel() == len);
    // SAFETY: `t` is a contiguous uint8 CPU tensor of `len` bytes (checked
    // above), created by `HostBuffer::new` and never shared: no view of it
    // exists until `finish` consumes the buffer, and the `&mut` borrow keeps
    // this slice the only access for its lifetime.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut u8, len) }
}

/// A batch being filled on the host. The JPEGs decode straight into the
/// memory of the image tensor (pinned when the target is CUDA), so a batch
/// costs no copy between decoding and the device transfer.
pub(crate) struct HostBuffer {
    side: usize,
    capacity: usize,
    pin: Option<Device>,
    /// uint8 `[capacity, side, side, 3]`, contiguous; rows `0..len` valid.
    pixels: Tensor,
    /// `len * 98` floats.
    landmarks: Vec<f32>,
    /// `len` ids.
    ids: Vec<String>,
}

impl HostBuffer {
    /// An empty batch of `capacity` `side x side` images, pinned for `pin`.
    pub(crate) fn new(capacity: usize, side: usize, pin: Option<Device>) -> Result<Self, tch::TchError> {
        let s = side as i64;
        let mut pixels = Tensor::f_empty([capacity as i64, s, s, 3], (Kind::Uint8, Device::Cpu))?;
        if let Some(d) = pin {
            pixels = pixels.f_pin_memory(d)?;
        }
        Ok(Self {
            side,
            capacity,
            pin,
            pixels,
            landmarks: Vec::with_capacity(capacity * 2 * NUM_LANDMARKS),
            ids: Vec::with_capacity(capacity),
        })
    }

    /// Rows filled so far.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Decodes `rows` in parallel into the free slots, keeps the good ones
    /// contiguous, and returns the rows that failed with their reason.
    pub(crate) fn fill(&mut self, rows: Vec<RawRow>, pool: &rayon::ThreadPool) -> Vec<(RawRow, String)> {
        let stride = self.side * self.side * 3;
        let start = self.len();
        let side = self.side as u32;
        let pixels = bytes_mut(&mut self.pixels, self.capacity * stride);
        let results: Vec<Result<(), String>> = pool.install(|| {
            pixels[start * stride..(start + rows.len()) * stride]
                .par_chunks_mut(stride)
                .zip(rows.par_iter())
                .map(|(dst, row)| decode_into(&row.image, side, dst))
                .collect()
        });
        let mut good = start;
        let mut failed = Vec::new();
        for (k, (row, res)) in rows.into_iter().zip(results).enumerate() {
            match res {
                Ok(()) => {
                    let from = (start + k) * stride;
                    if from != good * stride {
                        pixels.copy_within(from..from + stride, good * stride);
                    }
                    good += 1;
                    self.landmarks.extend_from_slice(&row.landmarks);
                    self.ids.push(row.id);
                }
                Err(why) => failed.push((row, why)),
            }
        }
        failed
    }

    /// The filled rows: images uint8 `[n, H, W, 3]` (a view of the pinned
    /// buffer), landmarks float `[n, 49, 2]`, ids.
    pub(crate) fn finish(self) -> Result<(Tensor, Tensor, Vec<String>), tch::TchError> {
        let n = self.len() as i64;
        let images = self.pixels.f_narrow(0, 0, n)?;
        let mut landmarks = Tensor::f_from_slice(&self.landmarks)?.f_view([n, NUM_LANDMARKS as i64, 2])?;
        if let Some(d) = self.pin {
            landmarks = landmarks.f_pin_memory(d)?;
        }
        Ok((images, landmarks, self.ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32, grey: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
        if grey {
            image::GrayImage::from_fn(w, h, |x, _| image::Luma([(x * 30) as u8])).write_with_encoder(enc).unwrap();
        } else {
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 30) as u8, (y * 30) as u8, 7]))
                .write_with_encoder(enc)
                .unwrap();
        }
        out
    }

    #[test]
    fn decodes_rgb_and_grey_and_refuses_wrong_sizes() {
        let mut dst = vec![0u8; 8 * 8 * 3];
        let rgb = jpeg(8, 8, false);
        decode_into(&rgb, 8, &mut dst).unwrap();
        let reference = image::load_from_memory(&rgb).unwrap().to_rgb8();
        assert_eq!(dst, reference.as_raw().as_slice());
        decode_into(&jpeg(8, 8, true), 8, &mut dst).unwrap();
        assert!(dst.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]), "grey expands to equal channels");
        let err = decode_into(&jpeg(8, 4, false), 8, &mut dst).unwrap_err();
        assert!(err.contains("8x4"), "{err}");
        assert!(decode_into(b"\xFF\xD8garbage", 8, &mut dst).is_err());
    }
}
