//! `mcsfau manifest`: subject splits (`splits`), frame manifests from
//! shards (`build`), and checking a manifest against shards (`verify`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use pipeline::manifest::{self, splits, Dataset, Protocol, SubjectSplit};

use super::audit::Bar;

/// Arguments of `mcsfau manifest`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
  mcsfau manifest build --dataset bp4d --shards OUT/shards   # paper protocol
  mcsfau manifest build --dataset disfa --shards OUT/shards --protocol folds3
  mcsfau manifest verify --manifest manifests/bp4d/paper.frames.json
  mcsfau manifest splits --check

Exit code: 0 done, 1 `splits --check` or `verify` found differences, 2 could not run.")]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The manifest actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Regenerate the subject split files (paper split by the seeded rule,
    /// published 3-fold lists) under DIR, or with --check only compare.
    Splits {
        /// Folder of the split files (`<dir>/<dataset>/<protocol>.csv`).
        #[arg(long, default_value = "manifests")]
        dir: PathBuf,
        /// Only compare the files with the rule's output; exit 1 if they differ.
        #[arg(long)]
        check: bool,
    },
    /// Build the frame manifest of a dataset's shards for a subject protocol.
    Build {
        /// Dataset: bp4d or disfa.
        #[arg(long)]
        dataset: String,
        /// Folder of shards (searched recursively; other datasets are skipped).
        #[arg(long)]
        shards: PathBuf,
        /// Subject protocol: paper (train/val/test) or folds3.
        #[arg(long = "protocol", visible_alias = "split", default_value = "paper")]
        split: String,
        /// Folder of the subject split files; where it has no file for this
        /// dataset and protocol, the built-in split is used (the same rule
        /// and subjects as the repository's `manifests/`).
        #[arg(long, default_value = "manifests")]
        manifests: PathBuf,
        /// Manifest JSON to write [default: <manifests>/<dataset>/<split>.frames.json];
        /// the frames CSV goes beside it (<stem>.csv).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-derive a manifest from the shards; exit 1 naming every difference.
    Verify {
        /// The manifest JSON.
        #[arg(long)]
        manifest: PathBuf,
        /// Folder of shards [default: the folder recorded in the manifest].
        #[arg(long)]
        shards: Option<PathBuf>,
    },
}

/// Runs the action; exit 1 when `splits --check` or `verify` finds differences.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Splits { dir, check } => {
            if check {
                let stale = splits::stale_split_files(&dir);
                for p in &stale {
                    println!("differs from the rule: {}", p.display());
                }
                return Ok(if stale.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
            }
            for p in splits::write_split_files(&dir)? {
                println!("wrote {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Build { dataset, shards, split, manifests, out } => {
            let dataset = Dataset::parse(&dataset)?;
            let protocol = Protocol::parse(&split)?;
            let split_file = SubjectSplit::path_in(&manifests, dataset, protocol);
            let (subjects, split_name) = if split_file.exists() {
                let s = SubjectSplit::load(&manifests, dataset, protocol).with_context(|| {
                    format!(
                        "reading the subject split (regenerate with `mcsfau manifest splits --dir {}`)",
                        manifests.display()
                    )
                })?;
                (s, split_file.display().to_string())
            } else {
                eprintln!(
                    "note: no {}; using the built-in {} {} split (the repository's manifests/{}/{}.csv)",
                    split_file.display(),
                    dataset.name(),
                    protocol.name(),
                    dataset.name(),
                    protocol.name()
                );
                let name = format!("built-in:{}/{}.csv", dataset.name(), protocol.name());
                (SubjectSplit::generate(dataset, protocol), name)
            };
            let out =
                out.unwrap_or_else(|| manifests.join(dataset.name()).join(format!("{}.frames.json", protocol.name())));
            let frames_file = manifest::format::frames_file_name(&out);
            if out.with_file_name(&frames_file) == split_file {
                bail!("{}: its frames CSV would overwrite the split file {}", out.display(), split_file.display());
            }
            let bar = Bar::new();
            let (m, frames) = manifest::build(&shards, &subjects, &split_name, &frames_file, &bar)?;
            manifest::save(&out, &m, &frames)?;
            println!("{} {} manifest: {} frames -> {}", m.dataset, m.protocol, m.total_frames, out.display());
            let paper = dataset.paper_images();
            for (i, s) in m.splits.iter().enumerate() {
                let reference =
                    if protocol == Protocol::Paper { format!(" (paper: {})", paper[i]) } else { String::new() };
                println!(
                    "  {:<6} {:>3} subjects with frames, {:>7} frames{reference}, ids sha256 {}",
                    s.name,
                    s.frames_per_subject.len(),
                    s.frames,
                    &s.ids_sha256[..16]
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Verify { manifest: path, shards } => {
            let loaded = manifest::load(&path)?;
            let shards = shards.unwrap_or_else(|| PathBuf::from(&loaded.manifest.shards));
            let diff = manifest::verify(&loaded, &shards, &Bar::new())?;
            if diff.is_empty() {
                println!("{}: matches {} ({} frames)", path.display(), shards.display(), loaded.frames.len());
                Ok(ExitCode::SUCCESS)
            } else {
                print!("{}: differs from {}:\n{diff}", path.display(), shards.display());
                Ok(ExitCode::from(1))
            }
        }
    }
}
