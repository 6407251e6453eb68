//! `mcsfau model summary`: the parameter report of both presets.

use std::process::Command;

fn mcsfau() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcsfau"))
}

#[test]
fn summary_of_the_paper_model_counts_resnet50_twice_and_names_the_paper_figure() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        mcsfau().current_dir(dir.path()).args(["model", "summary", "--preset", "paper", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["report"]["components"].as_array().unwrap();
    let backbone = rows.iter().find(|r| r["component"] == "backbone").unwrap();
    // ResNet-50 without fc, online and EMA copy.
    assert_eq!(backbone["trainable"], 23_508_032);
    assert_eq!(backbone["ema"], 23_508_032);
    let predictor = rows.iter().find(|r| r["component"] == "predictor").unwrap();
    assert_eq!(predictor["ema"], 0, "the target has no predictor");
    let r = &v["report"];
    assert_eq!(r["total"].as_i64().unwrap(), r["trainable"].as_i64().unwrap() + r["ema"].as_i64().unwrap());
    assert_eq!(r["paper"], 144_370_000);
    assert_eq!(v["config"]["mfrr"]["k"], 50);
}

#[test]
fn summary_table_of_the_tiny_model_and_a_bad_preset() {
    let out = mcsfau().args(["model", "summary", "--preset", "tiny"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["backbone", "reconstructor", "mci", "all", "144.37M"] {
        assert!(text.contains(word), "{word} missing:\n{text}");
    }
    let out = mcsfau().args(["model", "summary", "--preset", "huge"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model preset"));
}
