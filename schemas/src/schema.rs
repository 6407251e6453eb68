//! Column names, the Arrow schema and the Parquet key-value metadata of a shard.
//!
//! One row per aligned face crop. The list in [`columns`] is the single source
//! of truth: the Arrow schema is built from it and `schemas/README.md` is
//! checked against it by a test, so code and documentation cannot drift.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// Value of the `mcsfau.schema` metadata key.
pub const SCHEMA_NAME: &str = "mcsfau.face_crops";
/// Schema version; readers refuse files of another major version.
pub const SCHEMA_VERSION: u32 = 1;
/// Landmarks per face (the 49-point subset of iBUG-68, see docs/preprocess.md).
pub const NUM_LANDMARKS: usize = 49;

/// Column names, as constants so that no caller spells them twice.
pub mod col {
    /// Unique, stable row id, e.g. `voxceleb2/id00012/21Uxsk56VDQ/00001#000125`.
    pub const SAMPLE_ID: &str = "sample_id";
    /// `voxceleb2`, `bp4d` or `disfa`.
    pub const DATASET: &str = "dataset";
    /// The unit of splitting: VoxCeleb identity, BP4D/DISFA subject.
    pub const SUBJECT: &str = "subject";
    /// Video within the subject (VoxCeleb YouTube id, BP4D task, DISFA video).
    pub const VIDEO: &str = "video";
    /// Clip within the video (VoxCeleb clip number; empty otherwise).
    pub const CLIP: &str = "clip";
    /// Zero-based decoded frame index within the clip (BP4D: the file's frame number).
    pub const FRAME_INDEX: &str = "frame_index";
    /// Presentation time of the frame in milliseconds.
    pub const TIMESTAMP_MS: &str = "timestamp_ms";
    /// JPEG bytes of the aligned crop.
    pub const IMAGE: &str = "image";
    /// Side of the square crop in pixels.
    pub const CROP_SIZE: &str = "crop_size";
    /// 49 x (x, y) in crop pixels, flattened.
    pub const LANDMARKS: &str = "landmarks";
    /// Landmark confidence (FAN heatmap peak; 1 for dataset/synthetic points).
    pub const LANDMARK_SCORE: &str = "landmark_score";
    /// `fan`, `dlib`, `dataset` or `synthetic`.
    pub const LANDMARK_SOURCE: &str = "landmark_source";
    /// Face box in the source frame: x0, y0, x1, y1 pixels.
    pub const FACE_BOX: &str = "face_box";
    /// Source frame width in pixels.
    pub const SOURCE_WIDTH: &str = "source_width";
    /// Source frame height in pixels.
    pub const SOURCE_HEIGHT: &str = "source_height";
    /// Affine map frame -> crop, row-major 2x3 `[a, b, tx, c, d, ty]`.
    pub const CROP_TRANSFORM: &str = "crop_transform";
    /// Per-AU occurrence: 1 present, 0 absent, -1 unknown (labeled datasets).
    pub const AU_OCCURRENCE: &str = "au_occurrence";
    /// Per-AU intensity 0-5, -1 unknown (datasets coded for intensity).
    pub const AU_INTENSITY: &str = "au_intensity";
    /// Optional (see [`super::optional_fields`]).
    pub const DETECTOR_SCORE: &str = "detector_score";
}

/// Parquet key-value metadata keys.
pub mod meta_key {
    /// Schema name, [`super::SCHEMA_NAME`].
    pub const SCHEMA: &str = "mcsfau.schema";
    /// Schema version, [`super::SCHEMA_VERSION`].
    pub const SCHEMA_VERSION: &str = "mcsfau.schema_version";
    /// Version of the tool that wrote the file.
    pub const TOOL_VERSION: &str = "mcsfau.tool_version";
    /// Dataset of every row in the file.
    pub const DATASET: &str = "mcsfau.dataset";
    /// JSON array of the AU numbers of the label lists, in order.
    pub const AU_NUMBERS: &str = "mcsfau.au_numbers";
    /// JSON of the preprocess configuration that produced the file.
    pub const PREPROCESS_CONFIG: &str = "mcsfau.preprocess_config";
}

/// Every key-value metadata key a shard carries, with its meaning, in the
/// order `schemas/README.md` lists them.
pub fn meta_keys() -> Vec<(&'static str, &'static str)> {
    vec![
        (meta_key::SCHEMA, "schema name, always `mcsfau.face_crops`"),
        (meta_key::SCHEMA_VERSION, "schema version (integer); readers refuse another version"),
        (meta_key::TOOL_VERSION, "version of the mcsfau build that wrote the file"),
        (meta_key::DATASET, "dataset of every row in the file (`voxceleb2`, `bp4d`, `disfa`, ...)"),
        (
            meta_key::AU_NUMBERS,
            "JSON array of the AU numbers of `au_occurrence` / `au_intensity`, in list order (labeled shards only)",
        ),
        (meta_key::PREPROCESS_CONFIG, "JSON of the preprocess configuration that produced the file, verbatim"),
    ]
}

/// The Markdown table of [`columns`] that `schemas/README.md` embeds
/// (a test regenerates it and compares).
pub fn columns_markdown() -> String {
    let mut s = String::from("| column | Arrow type | labeled shards only | meaning |\n| --- | --- | --- | --- |\n");
    for c in columns() {
        let only = if c.labeled_only { "yes" } else { "" };
        s.push_str(&format!("| `{}` | `{}` | {} | {} |\n", c.name, c.type_name, only, c.doc));
    }
    s
}

/// The Markdown table of [`meta_keys`] that `schemas/README.md` embeds.
pub fn meta_keys_markdown() -> String {
    let mut s = String::from("| key | meaning |\n| --- | --- |\n");
    for (k, doc) in meta_keys() {
        s.push_str(&format!("| `{k}` | {doc} |\n"));
    }
    s
}

/// One column of the contract: its name, Arrow type, and meaning.
#[derive(Debug, Clone)]
pub struct ColumnDoc {
    /// Column name.
    pub name: &'static str,
    /// Human-readable Arrow type, as in `schemas/README.md`.
    pub type_name: String,
    /// Present only in shards of labeled datasets.
    pub labeled_only: bool,
    /// One-line meaning.
    pub doc: &'static str,
}

/// The AU label lists a shard carries, if any.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LabelSpec {
    /// AU numbers, in list order (e.g. BP4D's 1, 2, 4, 6, ...).
    pub au_numbers: Vec<u16>,
    /// Whether an `au_intensity` list is carried too (DISFA).
    pub intensity: bool,
}

/// Everything in a shard's key-value metadata besides the schema name/version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShardMeta {
    /// Dataset of every row (`voxceleb2`, `bp4d`, `disfa`, ...).
    pub dataset: String,
    /// Label lists, `None` for unlabeled datasets.
    pub labels: Option<LabelSpec>,
    /// Version of the tool that wrote the file.
    pub tool_version: String,
    /// Preprocess configuration as JSON (free-form, stored verbatim).
    pub preprocess_config: String,
}

fn landmarks_type() -> DataType {
    fixed_list(DataType::Float32, (2 * NUM_LANDMARKS) as i32)
}

/// `FixedSizeList<item>` of `n` non-null items.
pub fn fixed_list(item: DataType, n: i32) -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new("item", item, false)), n)
}

fn type_name(t: &DataType) -> String {
    match t {
        DataType::FixedSizeList(f, n) => {
            format!("fixed_size_list<{}>[{n}]", type_name(f.data_type()))
        }
        DataType::Utf8 => "string".into(),
        DataType::Binary => "binary".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The contract's columns, in file order, for a shard with `labels`
/// (`None`: unlabeled). Label lists have one item per AU number.
pub fn fields(labels: Option<&LabelSpec>) -> Vec<(Field, &'static str)> {
    use col::*;
    let mut f = vec![
        (
            Field::new(SAMPLE_ID, DataType::Utf8, false),
            "unique, stable row id: `<dataset>/<subject>/<video>/<clip>#<frame:06>`",
        ),
        (Field::new(DATASET, DataType::Utf8, false), "`voxceleb2`, `bp4d` or `disfa`"),
        (Field::new(SUBJECT, DataType::Utf8, false), "VoxCeleb identity or BP4D/DISFA subject: the unit of splitting"),
        (Field::new(VIDEO, DataType::Utf8, false), "VoxCeleb YouTube id, BP4D task, DISFA video name"),
        (Field::new(CLIP, DataType::Utf8, false), "VoxCeleb clip number; empty for BP4D/DISFA"),
        (
            Field::new(FRAME_INDEX, DataType::Int64, false),
            "zero-based decoded frame index (BP4D: the frame number in the file name)",
        ),
        (Field::new(TIMESTAMP_MS, DataType::Int64, false), "presentation time of the frame, milliseconds"),
        (Field::new(IMAGE, DataType::Binary, false), "JPEG bytes of the aligned RGB crop"),
        (Field::new(CROP_SIZE, DataType::Int32, false), "side of the square crop, pixels (256 by default)"),
        (
            Field::new(LANDMARKS, landmarks_type(), false),
            "49 x (x, y) float32 in crop pixels, flattened x0, y0, x1, y1, ...",
        ),
        (
            Field::new(LANDMARK_SCORE, DataType::Float32, false),
            "landmark confidence: FAN heatmap peak, dlib 1.0, dataset/synthetic 1.0",
        ),
        (Field::new(LANDMARK_SOURCE, DataType::Utf8, false), "`fan`, `dlib`, `dataset` or `synthetic`"),
        (
            Field::new(FACE_BOX, fixed_list(DataType::Float32, 4), false),
            "face box in the source frame: x0, y0, x1, y1 pixels",
        ),
        (Field::new(SOURCE_WIDTH, DataType::Int32, false), "source frame width, pixels"),
        (Field::new(SOURCE_HEIGHT, DataType::Int32, false), "source frame height, pixels"),
        (
            Field::new(CROP_TRANSFORM, fixed_list(DataType::Float32, 6), false),
            "affine map frame -> crop pixels, row-major 2x3 `[a, b, tx, c, d, ty]`",
        ),
    ];
    if let Some(spec) = labels {
        let n = spec.au_numbers.len() as i32;
        f.push((
            Field::new(AU_OCCURRENCE, fixed_list(DataType::Int8, n), false),
            "per-AU occurrence in `mcsfau.au_numbers` order: 1 present, 0 absent, -1 unknown",
        ));
        if spec.intensity {
            f.push((
                Field::new(AU_INTENSITY, fixed_list(DataType::Int8, n), false),
                "per-AU intensity 0-5, -1 unknown (DISFA; occurrence = intensity >= 2)",
            ));
        }
    }
    f
}

/// Columns a shard may lack (files written before they existed); when
/// present they have these types, and writers always write them. They come
/// after the required columns.
pub fn optional_fields() -> Vec<(Field, &'static str)> {
    vec![(
        Field::new(col::DETECTOR_SCORE, DataType::Float32, false),
        "optional: the face detector's score on this frame (dlib HOG SVM margin); NaN where the box was followed from an earlier frame or the backend has no detector",
    )]
}

/// Every column the contract can hold, with its documentation.
pub fn columns() -> Vec<ColumnDoc> {
    let spec = LabelSpec { au_numbers: vec![1, 2, 4], intensity: true };
    let unlabeled = fields(None).len();
    let labeled = fields(Some(&spec)).len();
    fields(Some(&spec))
        .into_iter()
        .chain(optional_fields())
        .enumerate()
        .map(|(i, (field, doc))| ColumnDoc {
            name: static_name(field.name()),
            type_name: type_name(field.data_type()).replace("[3]", "[n_au]"),
            labeled_only: i >= unlabeled && i < labeled,
            doc,
        })
        .collect()
}

fn static_name(name: &str) -> &'static str {
    use col::*;
    [
        SAMPLE_ID,
        DATASET,
        SUBJECT,
        VIDEO,
        CLIP,
        FRAME_INDEX,
        TIMESTAMP_MS,
        IMAGE,
        CROP_SIZE,
        LANDMARKS,
        LANDMARK_SCORE,
        LANDMARK_SOURCE,
        FACE_BOX,
        SOURCE_WIDTH,
        SOURCE_HEIGHT,
        CROP_TRANSFORM,
        AU_OCCURRENCE,
        AU_INTENSITY,
        DETECTOR_SCORE,
    ]
    .into_iter()
    .find(|c| *c == name)
    .unwrap_or("?")
}

/// The Arrow schema of a shard with this metadata, including the key-value
/// metadata that readers check.
pub fn arrow_schema(meta: &ShardMeta) -> SchemaRef {
    let fields: Vec<Field> =
        fields(meta.labels.as_ref()).into_iter().chain(optional_fields()).map(|(f, _)| f).collect();
    Arc::new(Schema::new_with_metadata(fields, key_value_metadata(meta)))
}

/// The key-value metadata written into every shard.
pub fn key_value_metadata(meta: &ShardMeta) -> HashMap<String, String> {
    let mut kv = HashMap::new();
    kv.insert(meta_key::SCHEMA.into(), SCHEMA_NAME.into());
    kv.insert(meta_key::SCHEMA_VERSION.into(), SCHEMA_VERSION.to_string());
    kv.insert(meta_key::TOOL_VERSION.into(), meta.tool_version.clone());
    kv.insert(meta_key::DATASET.into(), meta.dataset.clone());
    if let Some(l) = &meta.labels {
        kv.insert(meta_key::AU_NUMBERS.into(), serde_json::to_string(&l.au_numbers).unwrap_or_default());
    }
    kv.insert(meta_key::PREPROCESS_CONFIG.into(), meta.preprocess_config.clone());
    kv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_columns_follow_the_spec() {
        let spec = LabelSpec { au_numbers: vec![1, 2, 4, 6, 9, 12, 25, 26], intensity: true };
        let f = fields(Some(&spec));
        let occ = f.iter().find(|(f, _)| f.name() == col::AU_OCCURRENCE).expect("occurrence column");
        assert_eq!(occ.0.data_type(), &fixed_list(DataType::Int8, 8));
        assert!(f.iter().any(|(f, _)| f.name() == col::AU_INTENSITY));
        assert!(!fields(None).iter().any(|(f, _)| f.name().starts_with("au_")));
    }

    #[test]
    fn every_written_metadata_key_is_documented() {
        let meta = ShardMeta {
            dataset: "disfa".into(),
            labels: Some(LabelSpec { au_numbers: vec![1, 2], intensity: true }),
            tool_version: "0.1.0".into(),
            preprocess_config: "{}".into(),
        };
        let documented: Vec<&str> = meta_keys().into_iter().map(|(k, _)| k).collect();
        let mut written: Vec<String> = key_value_metadata(&meta).into_keys().collect();
        written.sort();
        let mut expected: Vec<String> = documented.iter().map(|k| k.to_string()).collect();
        expected.sort();
        assert_eq!(written, expected);
    }

    #[test]
    fn every_column_has_a_static_name() {
        assert!(columns().iter().all(|c| c.name != "?"));
    }
}
