//! `mcsfau masks`: figure 5 of a tiny checkpoint on generated BP4D-like
//! shards (64x64 crops): a PNG with one tile per requested crop.

use std::process::Command;

use model::config::ModelConfig;
use model::mcsfau::McSfau;
use pipeline::fixtures;

#[test]
fn masks_writes_one_tile_per_crop() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fixtures::write_labeled_set(&d.join("shards")).unwrap();
    tch::manual_seed(0);
    model::checkpoint::save(&McSfau::new(&ModelConfig::tiny(), tch::Device::Cpu).unwrap(), &d.join("c.safetensors"), 0)
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mcsfau"))
        .current_dir(d)
        .args([
            "masks",
            "--checkpoint",
            "c.safetensors",
            "--shards",
            "shards/bp4d",
            "--out",
            "fig/f5.png",
            "--count",
            "3",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 bp4d crops"));
    let png = image::open(d.join("fig/f5.png")).unwrap();
    // Tiny preset: 64 px crops drawn 4x, 8 px gaps, and a 30 px legend strip
    // (drawn when the font setup.sh installs is there).
    let font = model::train::plot::FONT_CANDIDATES.iter().any(|f| std::path::Path::new(f).is_file());
    assert_eq!((png.width(), png.height()), (3 * (256 + 8) + 8, 256 + 16 + if font { 30 } else { 0 }));
}
