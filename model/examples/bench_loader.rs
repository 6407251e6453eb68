//! Loader benchmark (issue 7; run by `scripts/bench/loader.sh`, figures in
//! `docs/benchmarks.md`).
//!
//! * `bench_loader prepare DIR N`: N synthetic 256x256 face-like JPEGs
//!   (quality 90), written both as shards (`DIR/shards`) and as files
//!   (`DIR/jpeg/*.jpg`, for the PyTorch DataLoader).
//! * `bench_loader loader DIR THREADS EPOCHS`: [`Loader`] images/s over
//!   `EPOCHS` epochs of `DIR/shards` (batch 256, CPU device).
//! * `bench_loader decode DIR THREADS`: JPEG-decode-only images/s of the same
//!   files, from memory, on `THREADS` threads (the loader's upper limit).
//!
//! Each measuring mode prints one JSON line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use model::data::{Loader, LoaderConfig, ShardSet};
use rayon::prelude::*;
use schemas::{FaceRow, ShardMeta, ShardWriter, WriterOptions};

const SIDE: u32 = 256;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    let num = |i: usize| arg(i).parse::<usize>().unwrap_or_else(|_| usage());
    let result = match arg(0).as_str() {
        "prepare" => prepare(Path::new(&arg(1)), num(2)),
        "loader" => loader(Path::new(&arg(1)), num(2), num(3)),
        "decode" => decode(Path::new(&arg(1)), num(2)),
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("bench_loader: {e}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: bench_loader prepare DIR N | loader DIR THREADS EPOCHS | decode DIR THREADS");
    std::process::exit(2)
}

type Res = Result<(), Box<dyn std::error::Error>>;

/// A smooth face-like blob on a gradient with mild noise: compresses like a
/// real aligned crop (~20-30 KB at quality 90), different for every `i`.
fn synthetic_face(i: usize) -> image::RgbImage {
    let mut s = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 17) as f32 - 8.0
    };
    let (cx, cy) = (128.0 + (i % 13) as f32, 120.0 + (i % 7) as f32);
    image::RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let (dx, dy) = ((x as f32 - cx) / 80.0, (y as f32 - cy) / 105.0);
        let face = (1.0 - (dx * dx + dy * dy)).max(0.0);
        let eyes = [(-0.4f32, -0.25f32), (0.4, -0.25)]
            .iter()
            .map(|(ex, ey)| (1.0 - ((dx - ex).powi(2) + (dy - ey).powi(2)) * 40.0).max(0.0))
            .sum::<f32>();
        let bg = 40.0 + 0.3 * x as f32 + 0.2 * y as f32;
        let mut v = |base: f32, k: f32| (bg * (1.0 - face) + face * base - eyes * k + noise()).clamp(0.0, 255.0) as u8;
        image::Rgb([v(220.0, 150.0), v(170.0, 120.0), v(140.0, 100.0)])
    })
}

fn prepare(dir: &Path, n: usize) -> Res {
    let jpeg_dir = dir.join("jpeg");
    std::fs::create_dir_all(&jpeg_dir)?;
    let images: Vec<Vec<u8>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut out = Vec::new();
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
            synthetic_face(i).write_with_encoder(enc).map(|_| out)
        })
        .collect::<Result<_, _>>()?;
    let meta = ShardMeta {
        dataset: "bench".into(),
        tool_version: "bench".into(),
        preprocess_config: "{}".into(),
        labels: None,
    };
    let mut w = ShardWriter::new(
        &dir.join("shards"),
        "bench",
        meta,
        WriterOptions { rows_per_file: 1024, ..Default::default() },
    )?;
    for (i, jpeg) in images.iter().enumerate() {
        std::fs::write(jpeg_dir.join(format!("{i:06}.jpg")), jpeg)?;
        w.push(FaceRow {
            sample_id: FaceRow::make_sample_id("bench", "s", "v", "", i as i64),
            dataset: "bench".into(),
            image: jpeg.clone(),
            crop_size: SIDE as i32,
            landmarks: vec![128.0; 98],
            ..Default::default()
        })?;
    }
    w.finish()?;
    let bytes: usize = images.iter().map(Vec::len).sum();
    println!(r#"{{"prepared": {n}, "mean_jpeg_bytes": {}}}"#, bytes / n.max(1));
    Ok(())
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`
/// (the machine is shared, so CPU time is steadier than wall time).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn report(mode: &str, threads: usize, images: usize, wall: f64, cpu: f64) {
    println!(
        r#"{{"mode": "{mode}", "threads": {threads}, "images": {images}, "seconds": {wall:.3}, "images_per_s": {:.1}, "cpu_seconds": {cpu:.2}, "images_per_cpu_s": {:.1}}}"#,
        images as f64 / wall,
        images as f64 / cpu
    );
}

fn loader(dir: &Path, threads: usize, epochs: usize) -> Res {
    let cfg = LoaderConfig { workers: threads, drop_last: false, ..Default::default() };
    let loader = Loader::new(ShardSet::from_dir(&dir.join("shards"))?, cfg, tch::Device::Cpu)?;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut images = 0;
    for epoch in 0..epochs as u64 {
        for batch in loader.epoch(epoch) {
            images += batch?.len();
        }
    }
    report("loader", threads, images, t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    Ok(())
}

fn decode(dir: &Path, threads: usize) -> Res {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir.join("jpeg"))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.sort();
    let jpegs: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let ok = pool.install(|| {
        jpegs.par_iter().filter(|j| image::load_from_memory_with_format(j, image::ImageFormat::Jpeg).is_ok()).count()
    });
    report("decode", threads, ok, t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    Ok(())
}
