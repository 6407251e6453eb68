//! The one shard validator every reader goes through.
//!
//! [`crate::ShardReader::open`] calls [`check_schema`] and
//! [`check_footer_nulls`] on the footer (no data read); the batches it hands
//! out are normalized by [`normalize_batch`] (row-level: nulls, list widths);
//! commands that depend on unique ids feed every `sample_id` through
//! [`IdCheck`]. Every error names the file and, where it has one, the row
//! group, row and column, with what was expected and what was found.
//!
//! Files rewritten by other tools are accepted when they hold the same data:
//! pyarrow keeps the Arrow types; DuckDB writes fixed-size lists as plain
//! lists and every column as nullable, and polars may write large or view
//! strings. Those are cast to the contract's types on read, and a list of the
//! wrong length or a null value is an error naming the row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::compute::CastOptions;
use arrow::datatypes::{DataType, Field, Schema};

use crate::error::{Result, SchemaError};
use crate::schema::{fields, optional_fields, LabelSpec};

/// How a found column type relates to the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compat {
    /// The same type (field and item nullability aside).
    Same,
    /// The same data in another Arrow encoding; cast on read.
    Cast,
}

fn base(t: &DataType) -> Option<&'static str> {
    Some(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary",
        _ => return None,
    })
}

/// Whether a column of type `found` can stand for the contract's `expected`.
pub fn compatible(expected: &DataType, found: &DataType) -> Option<Compat> {
    use DataType::*;
    match (expected, found) {
        (FixedSizeList(e, n), FixedSizeList(f, m)) if n == m => compatible(e.data_type(), f.data_type()).map(|c| {
            if e.is_nullable() == f.is_nullable() {
                c
            } else {
                Compat::Cast
            }
        }),
        (FixedSizeList(e, _), List(f) | LargeList(f) | ListView(f) | LargeListView(f)) => {
            (e.data_type() == f.data_type()).then_some(Compat::Cast)
        }
        (e, f) if e == f => Some(Compat::Same),
        (e, f) if base(e).is_some() && base(e) == base(f) => Some(Compat::Cast),
        _ => None,
    }
}

fn readable_type(t: &DataType) -> String {
    match t {
        DataType::FixedSizeList(f, n) => format!("FixedSizeList<{}, {n}>", readable_type(f.data_type())),
        DataType::List(f) | DataType::LargeList(f) => format!("List<{}>", readable_type(f.data_type())),
        other => format!("{other}"),
    }
}

/// Checks that `schema` (read from `path`) holds every contract column for
/// `labels` with a compatible type. Returns whether any column needs a cast.
/// Extra columns are allowed (and never read).
pub fn check_schema(path: &Path, schema: &Schema, labels: Option<&LabelSpec>) -> Result<bool> {
    let mut cast = false;
    let required = fields(labels).into_iter().map(|f| (f, true));
    for ((field, _), needed) in required.chain(optional_fields().into_iter().map(|f| (f, false))) {
        let found = match schema.field_with_name(field.name()) {
            Ok(f) => f,
            Err(_) if !needed => continue,
            Err(_) => {
                return Err(SchemaError::MissingColumn {
                    path: path.to_path_buf(),
                    column: field.name().clone(),
                    available: schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        };
        match compatible(field.data_type(), found.data_type()) {
            Some(c) => cast |= c == Compat::Cast || found.is_nullable() != field.is_nullable(),
            None => {
                return Err(SchemaError::ColumnType {
                    path: path.to_path_buf(),
                    column: field.name().clone(),
                    expected: readable_type(field.data_type()),
                    found: readable_type(found.data_type()),
                })
            }
        }
    }
    Ok(cast)
}

/// Refuses a file whose footer statistics count nulls in a contract column
/// (the contract has none; foreign writers mark columns nullable).
pub fn check_footer_nulls(
    path: &Path,
    metadata: &parquet::file::metadata::ParquetMetaData,
    contract: &[String],
) -> Result<()> {
    for (g, rg) in metadata.row_groups().iter().enumerate() {
        for c in rg.columns() {
            let nulls = c.statistics().and_then(|s| s.null_count_opt()).unwrap_or(0);
            let top = c.column_path().parts().first().cloned().unwrap_or_default();
            if nulls > 0 && contract.contains(&top) {
                return Err(SchemaError::Invalid {
                    path: path.to_path_buf(),
                    location: format!("row group {g}, column `{top}`"),
                    message: format!("{nulls} null values; the shard contract has no nulls"),
                });
            }
        }
    }
    Ok(())
}

/// Where a batch's rows lie in the file: the row groups read, in order.
#[derive(Debug, Clone)]
pub struct RowMap {
    /// (row group, rows in it), in read order.
    groups: Vec<(usize, usize)>,
    /// Rows read through a row selection (a sample): positions unknown.
    sampled: bool,
}

impl RowMap {
    /// The map for reading `groups` of a file whose row groups hold `rows`.
    pub fn new(groups: &[usize], rows: &[usize]) -> Self {
        Self { groups: groups.iter().map(|&g| (g, rows.get(g).copied().unwrap_or(0))).collect(), sampled: false }
    }

    /// The map for rows read through a row selection (a spot-check sample).
    pub fn sampled() -> Self {
        Self { groups: Vec::new(), sampled: true }
    }

    /// `row group G, row R` of the `i`-th row read.
    pub fn locate(&self, mut i: usize) -> String {
        if self.sampled {
            return "a sampled row".into();
        }
        for &(g, n) in &self.groups {
            if i < n {
                return format!("row group {g}, row {i}");
            }
            i -= n;
        }
        format!("row {i} past the end")
    }
}

/// Checks a batch read from `path` (its first row is the `first`-th read)
/// for nulls and casts its columns to `target` where they differ (lists of
/// the wrong length are an error naming the row).
pub fn normalize_batch(
    path: &Path,
    batch: RecordBatch,
    target: &Schema,
    rows: &RowMap,
    first: usize,
) -> Result<RecordBatch> {
    let invalid =
        |location: String, message: String| SchemaError::Invalid { path: path.to_path_buf(), location, message };
    let mut columns = Vec::with_capacity(batch.num_columns());
    let mut out_fields: Vec<Field> = Vec::with_capacity(batch.num_columns());
    let schema = batch.schema();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        if let Some(i) = (0..array.len()).find(|&i| array.is_null(i)).filter(|_| array.null_count() > 0) {
            return Err(invalid(
                format!("{}, column `{}`", rows.locate(first + i), field.name()),
                "null value; the shard contract has no nulls".into(),
            ));
        }
        if let Some(i) = first_null_item(array.as_ref()) {
            return Err(invalid(
                format!("{}, column `{}`", rows.locate(first + i), field.name()),
                "null list item; the shard contract has no nulls".into(),
            ));
        }
        let Ok(want) = target.field_with_name(field.name()) else {
            columns.push(array.clone());
            out_fields.push(field.as_ref().clone());
            continue;
        };
        if array.data_type() == want.data_type() {
            columns.push(array.clone());
        } else {
            let opts = CastOptions { safe: false, ..Default::default() };
            let cast = arrow::compute::cast_with_options(array, want.data_type(), &opts).map_err(|e| {
                let at = list_length_mismatch(array.as_ref(), want.data_type())
                    .map_or_else(|| format!("rows from {}", rows.locate(first)), |i| rows.locate(first + i));
                invalid(
                    format!("{at}, column `{}`", field.name()),
                    format!("cannot read as {}: {e}", readable_type(want.data_type())),
                )
            })?;
            columns.push(cast);
        }
        out_fields.push(want.clone());
    }
    let schema = Arc::new(Schema::new_with_metadata(out_fields, schema.metadata().clone()));
    RecordBatch::try_new(schema, columns)
        .map_err(|source| SchemaError::Arrow { path: path.to_path_buf(), error: source })
}

/// The first row of a list array with a null item (files written without
/// footer statistics would otherwise read a null as whatever the buffer holds).
fn first_null_item(array: &dyn Array) -> Option<usize> {
    use arrow::array::AsArray;
    match array.data_type() {
        DataType::FixedSizeList(_, n) => {
            let values = array.as_fixed_size_list().values();
            let j = (0..values.len()).find(|&j| values.is_null(j)).filter(|_| values.null_count() > 0)?;
            Some(j / (*n as usize).max(1))
        }
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            let values = l.values();
            let j = (0..values.len()).find(|&j| values.is_null(j)).filter(|_| values.null_count() > 0)?;
            l.value_offsets().windows(2).position(|w| (w[0] as usize..w[1] as usize).contains(&j))
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>();
            let values = l.values();
            let j = (0..values.len()).find(|&j| values.is_null(j)).filter(|_| values.null_count() > 0)?;
            l.value_offsets().windows(2).position(|w| (w[0] as usize..w[1] as usize).contains(&j))
        }
        _ => None,
    }
}

/// The first row of a list array whose length differs from `target`'s width.
fn list_length_mismatch(array: &dyn Array, target: &DataType) -> Option<usize> {
    use arrow::array::AsArray;
    let DataType::FixedSizeList(_, n) = target else { return None };
    let n = *n as usize;
    match array.data_type() {
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            (0..l.len()).find(|&i| l.value_length(i) as usize != n)
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>();
            (0..l.len()).find(|&i| l.value_length(i) as usize != n)
        }
        _ => None,
    }
}

/// Checks a `sample_id`: a plain relative path (`<dataset>/<subject>/...#<frame>`)
/// with no `..`, `.` or empty component, not absolute, no backslash or
/// control character. Sample ids name files in exports and manifests, so one
/// that escapes its folder is refused by every command.
pub fn check_sample_id(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("empty".into());
    }
    if id.len() > 1024 {
        return Err(format!("{} bytes long, at most 1024", id.len()));
    }
    if id.starts_with('/') || id.starts_with('~') {
        return Err("absolute path".into());
    }
    if id.contains('\\') {
        return Err("backslash (ids use `/` between parts)".into());
    }
    if id.chars().any(char::is_control) {
        return Err("control character".into());
    }
    if let Some(c) = id.split('/').find(|c| c.is_empty() || *c == "." || *c == "..") {
        return Err(if c.is_empty() {
            "empty path component (`//` or trailing `/`)".into()
        } else {
            format!("`{c}` component")
        });
    }
    Ok(())
}

/// Sample-id syntax and uniqueness across the files of one command's input.
///
/// Keeps a 128-bit hash per id (not the id), so that a VoxCeleb2-sized set
/// (9M rows) costs ~300 MB rather than gigabytes.
#[derive(Debug, Default)]
pub struct IdCheck {
    files: Vec<PathBuf>,
    seen: HashMap<u128, (u32, u64)>,
}

fn id_hash(id: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        id.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

impl IdCheck {
    /// An empty check.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `id`, row `row` of `path`: syntax, then that no earlier row
    /// (of any file) had it.
    pub fn add(&mut self, path: &Path, row: usize, id: &str) -> Result<()> {
        let invalid = |message: String| SchemaError::Invalid {
            path: path.to_path_buf(),
            location: format!("row {row}, column `sample_id`"),
            message,
        };
        check_sample_id(id).map_err(|why| invalid(format!("sample_id {id:?}: {why}")))?;
        if self.files.last().map(PathBuf::as_path) != Some(path) {
            self.files.push(path.to_path_buf());
        }
        let file = (self.files.len() - 1) as u32;
        if let Some(&(f, r)) = self.seen.get(&id_hash(id)) {
            return Err(invalid(format!(
                "duplicate sample_id {id:?} (first at {} row {r})",
                self.files[f as usize].display()
            )));
        }
        self.seen.insert(id_hash(id), (file, row as u64));
        Ok(())
    }

    /// Ids seen so far.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id was added.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A Parquet error as one readable line: the library's message without its
/// debug dumps (flatbuffer traces, thrift internals), and what it means.
pub fn readable_parquet_error(e: &parquet::errors::ParquetError) -> String {
    let raw = e.to_string();
    let first = raw.lines().next().unwrap_or("").trim();
    let cut = first.find(['{', '(']).map_or(first, |i| first[..i].trim_end_matches([' ', ':']));
    let cut = if cut.len() > 160 { &cut[..cut.char_indices().take(160).last().map_or(0, |(i, _)| i)] } else { cut };
    let lower = raw.to_lowercase();
    let hint = if lower.contains("eof") || lower.contains("out of range") || lower.contains("outofbounds") {
        "the file is truncated or its footer is corrupt"
    } else if lower.contains("thrift") || lower.contains("magic") || lower.contains("footer") {
        "the file is not Parquet or its metadata is corrupt"
    } else if lower.contains("disabled feature") || lower.contains("compression") || lower.contains("codec") {
        "the file uses a compression this build cannot read"
    } else {
        "the file is corrupt"
    };
    if cut.is_empty() {
        hint.to_string()
    } else {
        format!("{cut} ({hint})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::fixed_list;

    #[test]
    fn sample_ids_that_escape_or_are_malformed_are_refused() {
        assert!(check_sample_id("bp4d/F001/T1#000001").is_ok());
        assert!(check_sample_id("voxceleb2/id00012/21Uxsk56VDQ/00001#000125").is_ok());
        for (bad, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("bp4d/../../x#1", "`..`"),
            ("bp4d/./x#1", "`.`"),
            ("bp4d//x#1", "empty path component"),
            ("bp4d\\x#1", "backslash"),
            ("bp4d/x\n#1", "control"),
        ] {
            let e = check_sample_id(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn duplicates_name_both_places() {
        let mut c = IdCheck::new();
        c.add(Path::new("a.parquet"), 0, "x/y#1").unwrap();
        c.add(Path::new("a.parquet"), 1, "x/y#2").unwrap();
        let e = c.add(Path::new("b.parquet"), 7, "x/y#1").unwrap_err().to_string();
        assert!(e.contains("b.parquet") && e.contains("row 7") && e.contains("a.parquet row 0"), "{e}");
    }

    #[test]
    fn other_encodings_of_the_same_data_are_compatible() {
        let f32l = |n| fixed_list(DataType::Float32, n);
        let list = DataType::List(Arc::new(Field::new("element", DataType::Float32, true)));
        assert_eq!(compatible(&f32l(98), &f32l(98)), Some(Compat::Same));
        assert_eq!(compatible(&f32l(98), &list), Some(Compat::Cast));
        assert_eq!(compatible(&f32l(98), &f32l(97)), None);
        assert_eq!(compatible(&DataType::Utf8, &DataType::LargeUtf8), Some(Compat::Cast));
        assert_eq!(compatible(&DataType::Int64, &DataType::Utf8), None);
        assert_eq!(compatible(&DataType::Int64, &DataType::Int32), None, "no silent narrowing or widening");
    }

    #[test]
    fn row_map_locates_rows_across_row_groups() {
        let m = RowMap::new(&[1, 3], &[5, 4, 9, 2]);
        assert_eq!(m.locate(0), "row group 1, row 0");
        assert_eq!(m.locate(4), "row group 3, row 0");
        assert_eq!(m.locate(5), "row group 3, row 1");
    }
}
