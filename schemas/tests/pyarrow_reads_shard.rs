//! A shard written by `ShardWriter` is read by pyarrow (the project venv's
//! Python): column names, the `FixedSizeList<float32, 98>` landmarks, the
//! image bytes, the label lists and the key-value metadata all come through.

use std::path::Path;
use std::process::Command;

use schemas::{FaceRow, LabelSpec, Labels, ShardMeta, ShardWriter, WriterOptions};

fn row(i: i64) -> FaceRow {
    FaceRow {
        sample_id: FaceRow::make_sample_id("disfa", "SN001", "LeftVideoSN001_comp", "", i),
        dataset: "disfa".into(),
        subject: "SN001".into(),
        video: "LeftVideoSN001_comp".into(),
        frame_index: i,
        timestamp_ms: i * 50,
        image: vec![0xFF, 0xD8, 0xFF, 0xE0, i as u8, 0x00, 0xFF, 0xD9],
        crop_size: 256,
        landmarks: (0..98).map(|k| k as f32 * 0.5 + i as f32).collect(),
        landmark_score: 1.0,
        landmark_source: "synthetic".into(),
        detector_score: f32::NAN,
        face_box: [10.0, 20.0, 110.0, 140.0],
        source_width: 256,
        source_height: 192,
        crop_transform: [2.0, 0.0, -20.0, 0.0, 2.0, -40.0],
        labels: Some(Labels { occurrence: vec![1, 0, -1], intensity: vec![3, 1, -1] }),
        ..Default::default()
    }
}

#[test]
fn pyarrow_reads_a_shard_written_by_shard_writer() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/setup.sh", python.display());
    let dir = tempfile::tempdir().unwrap();
    let meta = ShardMeta {
        dataset: "disfa".into(),
        labels: Some(LabelSpec { au_numbers: vec![1, 12, 25], intensity: true }),
        tool_version: "9.9.9-test".into(),
        preprocess_config: r#"{"crop_size":256}"#.into(),
    };
    let mut w = ShardWriter::new(dir.path(), "disfa", meta, WriterOptions::default()).unwrap();
    for i in 0..3 {
        w.push(row(i)).unwrap();
    }
    let files = w.finish().unwrap();
    assert_eq!(files.len(), 1);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_shard.py");
    let out = Command::new(&python).arg(&script).arg(&files[0]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let expected: Vec<&str> = schemas::columns().iter().map(|c| c.name).collect();
    let columns: Vec<&str> = seen["columns"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(columns, expected);
    assert_eq!(seen["rows"], 3);
    assert_eq!(seen["landmarks_is_fixed_size_list"], true);
    assert_eq!(seen["landmarks_list_size"], 98);
    assert_eq!(seen["landmarks_value_type"], "float");
    assert_eq!(seen["occurrence_value_type"], "int8");
    assert_eq!(seen["image_type"], "binary");
    assert_eq!(seen["image_hex"][2], "ffd8ffe00200ffd9");
    let lm: Vec<f64> = seen["landmarks_row1"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(lm.len(), 98);
    assert_eq!((lm[0], lm[1], lm[97]), (1.0, 1.5, 49.5));
    assert_eq!(seen["occurrence_row1"], serde_json::json!([1, 0, -1]));
    assert_eq!(seen["sample_ids"][0], "disfa/SN001/LeftVideoSN001_comp#000000");
    let m = &seen["metadata"];
    assert_eq!(m["mcsfau.schema"], schemas::SCHEMA_NAME);
    assert_eq!(m["mcsfau.schema_version"], schemas::SCHEMA_VERSION.to_string());
    assert_eq!(m["mcsfau.tool_version"], "9.9.9-test");
    assert_eq!(m["mcsfau.dataset"], "disfa");
    assert_eq!(m["mcsfau.au_numbers"], "[1,12,25]");
    assert_eq!(m["mcsfau.preprocess_config"], r#"{"crop_size":256}"#);
}
