//! `mcsfau synth`: writes a miniature VoxCeleb2, BP4D or DISFA tree with
//! drawn faces, exact landmark sidecars and AU labels (docs/synth.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pipeline::synth::{generate_with_progress, Layout, SynthConfig};

/// Which raw layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// `dev/mp4/<id>/<ytid>/<clip>.mp4` (224x224, 25 fps, H.264 + AAC).
    Voxceleb2,
    /// `Sequences/<subject>/<task>/<frame>.jpg` + `AUCoding/AU_OCC/<subject>_<task>.csv`.
    Bp4d,
    /// `Videos_LeftCamera/LeftVideo<subject>_comp.avi` + `ActionUnit_Labels/<subject>/<subject>_au<N>.txt`.
    Disfa,
}

/// Arguments of `mcsfau synth`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
  mcsfau synth --layout voxceleb2 --out raw-vox --subjects 4 --clips 2 --seconds 4
  mcsfau synth --layout bp4d --out raw-bp4d --subjects 41

Exit code: 0 written, 2 could not write.")]
pub struct Args {
    /// Dataset layout to imitate.
    #[arg(long, value_enum, required_unless_present = "au_visibility")]
    pub layout: Option<LayoutArg>,
    /// Root folder of the generated tree (created if missing).
    #[arg(long, required_unless_present = "au_visibility")]
    pub out: Option<PathBuf>,
    /// Subjects (VoxCeleb identities; at most 41 for BP4D, 27 for DISFA).
    #[arg(long, default_value_t = 3, value_parser = super::num::count(1, 10_000))]
    pub subjects: usize,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// VoxCeleb2: YouTube videos per identity; BP4D: tasks per subject (<= 8); DISFA: ignored.
    #[arg(long, default_value_t = 1, value_parser = super::num::count(1, 1000))]
    pub videos: usize,
    /// VoxCeleb2: clips per YouTube video.
    #[arg(long, default_value_t = 2, value_parser = super::num::count(1, 1000))]
    pub clips: usize,
    /// Length of each clip, task sequence or DISFA video, in seconds.
    #[arg(long, default_value_t = 2.0, value_parser = super::num::seconds)]
    pub seconds: f32,
    /// BP4D/DISFA frame size as a fraction of the real 1040x1392 / 1024x768.
    #[arg(long, default_value_t = 0.25, value_parser = super::num::scale)]
    pub frame_scale: f32,
    /// Also write a contact sheet PNG (frames with landmarks, AU gallery).
    #[arg(long)]
    pub preview: Option<PathBuf>,
    /// Strength of the drawn AUs (deformations and skin marks) relative to
    /// the default; labels are unchanged. A benchmark knob: see
    /// `--au-visibility`.
    #[arg(long, default_value_t = 1.0, value_parser = super::num::non_negative_f32)]
    pub au_gain: f32,
    /// Print, per AU, how far it moves the face at the occurrence
    /// threshold (intensity 2) in an aligned crop of this side (pixels,
    /// mean and minimum over 100 identities, at `--au-gain`), flag AUs under
    /// 1 px, and exit without writing a tree.
    #[arg(long, value_name = "CROP_SIZE", value_parser = super::num::crop_size())]
    pub au_visibility: Option<u32>,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

struct Bar(ProgressBar);

impl pipeline::progress::Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        self.0.set_length(total);
        self.0.set_message(phase.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Generates the tree and prints what was written.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(crop) = args.au_visibility {
        println!("AU displacement at intensity 2 in a {crop} px crop (au_gain {}), 100 identities:", args.au_gain);
        println!("| AU | mean px | min px | |\n|---|---:|---:|---|");
        for v in pipeline::synth::visibility::au_visibility(crop, 100, args.seed, args.au_gain) {
            let flag = if v.mean_px < 1.0 { "under 1 px" } else { "" };
            println!("| AU{} | {:.2} | {:.2} | {flag} |", v.au, v.mean_px, v.min_px);
        }
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(args.au_gain.is_finite() && args.au_gain > 0.0, "--au-gain {} must be > 0", args.au_gain);
    let (Some(layout), Some(out)) = (args.layout, args.out) else {
        anyhow::bail!("--layout and --out are required (unless --au-visibility)");
    };
    let layout = match layout {
        LayoutArg::Voxceleb2 => Layout::VoxCeleb2,
        LayoutArg::Bp4d => Layout::Bp4d,
        LayoutArg::Disfa => Layout::Disfa,
    };
    let cfg = SynthConfig {
        subjects: args.subjects,
        seed: args.seed,
        videos_per_subject: args.videos,
        clips_per_video: args.clips,
        seconds: args.seconds,
        frame_scale: args.frame_scale,
        preview: args.preview,
        au_gain: args.au_gain,
    };
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(0) }.with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} clips {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if !args.quiet {
        super::bar::lines_without_terminal(&bar, "synth");
    }
    let summary = generate_with_progress(layout, &out, &cfg, &Bar(bar))
        .with_context(|| format!("generating a {layout} tree in {}", out.display()))?;
    println!(
        "{layout}: {} subjects, {} clips, {} frames, {} label files in {}",
        summary.subjects.len(),
        summary.clips.len(),
        summary.frames,
        summary.label_files,
        summary.root.display()
    );
    if let Some(p) = &summary.preview {
        println!("preview: {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
