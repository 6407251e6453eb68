//! `mcsfau synth` runs from the command line: writes each layout's tree and
//! a contact sheet, reports what it wrote, and rejects bad sizes with exit 2.

mod support;

use std::path::Path;
use std::process::Command;

fn mcsfau() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcsfau"))
}

fn count_files(dir: &Path, suffix: &str) -> usize {
    support::files_under(dir).keys().filter(|p| p.to_string_lossy().ends_with(suffix)).count()
}

#[test]
fn synth_writes_every_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("voxceleb2", ".mp4", 4, 4, "2 subjects, 4 clips, 60 frames, 0 label files"),
        ("bp4d", ".jpg", 30, 2, "2 subjects, 2 clips, 30 frames, 2 label files"),
        ("disfa", ".avi", 2, 2, "2 subjects, 2 clips, 24 frames, 24 label files"),
    ];
    for (layout, media, n_media, n_clips, report) in cases {
        let out = tmp.path().join(layout);
        let preview = tmp.path().join(format!("{layout}.png"));
        let mut cmd = mcsfau();
        cmd.args(["synth", "--layout", layout, "--subjects", "2", "--seconds", "0.6", "--seed", "9"])
            .arg("--out")
            .arg(&out);
        // One contact sheet is enough to check the flag (drawing it costs a second).
        if layout == "bp4d" {
            cmd.arg("--preview").arg(&preview);
        }
        let run = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
        assert!(stdout.contains(report), "{stdout}");
        assert_eq!(count_files(&out, media), n_media, "{layout}");
        assert_eq!(count_files(&out, ".ldm68.csv"), n_clips, "one landmark sidecar per clip");
        if layout != "bp4d" {
            assert!(!preview.exists());
            continue;
        }
        // A PNG: signature, then the IHDR chunk with big-endian width and height.
        let png = std::fs::read(&preview).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (w, h) =
            (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
        assert!(w > 600 && h > 300, "{layout} contact sheet {w}x{h}");
    }
}

#[test]
fn synth_rejects_impossible_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = mcsfau()
        .args(["synth", "--layout", "disfa", "--subjects", "28"])
        .arg("--out")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("DISFA has 27 subjects, 28 asked for"), "{stderr}");
}

#[test]
fn synth_help_documents_the_defaults() {
    let run = mcsfau().args(["synth", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    for needle in ["--layout", "voxceleb2", "bp4d", "disfa", "--subjects", "[default: 3]", "--seed", "--preview"] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn au_visibility_flags_the_aus_under_a_pixel_and_the_gain_lifts_them() {
    let table = |gain: &str| {
        let run = mcsfau().args(["synth", "--au-visibility", "128", "--au-gain", gain]).output().unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        String::from_utf8_lossy(&run.stdout).into_owned()
    };
    let (one, three) = (table("1"), table("3"));
    assert_eq!(one.lines().filter(|l| l.starts_with("| AU") && !l.contains("mean px")).count(), 15, "{one}");
    // At the default strength AU6 (lower lids) moves under a pixel in a
    // 128 px crop at the occurrence threshold; three times stronger, none does.
    assert!(one.lines().any(|l| l.starts_with("| AU6 |") && l.contains("under 1 px")), "{one}");
    assert!(!three.contains("under 1 px"), "{three}");
    let bad = mcsfau().args(["synth", "--layout", "bp4d", "--out", "x", "--au-gain", "0"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
