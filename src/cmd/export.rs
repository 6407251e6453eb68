//! `mcsfau export`: a checkpoint's backbone as a torchvision state dict.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

/// Arguments of `mcsfau export`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
  mcsfau export --checkpoint RUN/model.safetensors --out resnet50.safetensors
  mcsfau export --checkpoint RUN/checkpoints/step-00001000.safetensors --out r50.safetensors --pth r50.pth

Loading it in PyTorch (paper preset: a ResNet-50; fc is not part of it):
  sd = safetensors.torch.load_file(\"resnet50.safetensors\")   # or torch.load(\"r50.pth\")
  torchvision.models.resnet50().load_state_dict(sd, strict=False)  # missing: fc.weight, fc.bias")]
pub struct Args {
    /// A final `RUN/model.safetensors` or a training checkpoint `RUN/checkpoints/step-N.safetensors`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The backbone as safetensors, under torchvision's names.
    #[arg(long)]
    pub out: PathBuf,
    /// Also a `.pth` written by PyTorch (`torch.save` of the same tensors).
    #[arg(long)]
    pub pth: Option<PathBuf>,
    /// The Python with torch and safetensors that writes `--pth`.
    #[arg(long, default_value = "python3", env = "MCSFAU_PYTHON")]
    pub python: PathBuf,
}

/// `torch.save` of a safetensors file's tensors, through a temporary name.
const SAVE_PTH: &str = r#"
import os, sys, torch
from safetensors.torch import load_file
src, dst = sys.argv[1], sys.argv[2]
tmp = os.path.join(os.path.dirname(os.path.abspath(dst)), "." + os.path.basename(dst) + ".tmp")
torch.save(load_file(src), tmp)
os.replace(tmp, dst)
"#;

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(p) = &args.pth {
        if same_file(p, &args.checkpoint) || same_file(p, &args.out) || p == &args.out {
            bail!("--pth {} would overwrite the checkpoint or --out", p.display());
        }
    }
    let e = model::checkpoint::export_file(&args.checkpoint, &args.out)
        .with_context(|| format!("exporting the backbone of {}", args.checkpoint.display()))?;
    println!(
        "wrote {} ({} tensors, {} values, step {}) from {}",
        args.out.display(),
        e.tensors,
        e.values,
        e.step,
        args.checkpoint.display()
    );
    if let Some(pth) = &args.pth {
        let o = std::process::Command::new(&args.python)
            .arg("-c")
            .arg(SAVE_PTH)
            .arg(&args.out)
            .arg(pth)
            .output()
            .with_context(|| format!("running {} for --pth (set --python or MCSFAU_PYTHON)", args.python.display()))?;
        if !o.status.success() {
            bail!(
                "{} could not write {} (it needs torch and safetensors): {}",
                args.python.display(),
                pth.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        println!("wrote {} (torch.save by {})", pth.display(), args.python.display());
    }
    Ok(ExitCode::SUCCESS)
}
