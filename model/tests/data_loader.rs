//! The shard loader on tiny generated shards: exactly-once epochs, seeded
//! order, pixel/landmark round trip, corrupt rows, filters, and shard sets
//! refused before loading.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use model::data::{DataError, Loader, LoaderConfig, ShardSet};
use schemas::{FaceRow, ShardMeta, ShardWriter, WriterOptions};
use tch::{Device, Kind};

const SIDE: u32 = 16;

fn jpeg(i: usize, side: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([(x * 12 + i as u32 * 7) as u8, (y * 12) as u8, (i as u32 * 31 % 256) as u8])
    });
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)).unwrap();
    out
}

fn row(dataset: &str, i: usize, side: u32, corrupt: bool) -> FaceRow {
    FaceRow {
        sample_id: FaceRow::make_sample_id(dataset, "s", "v", "", i as i64),
        dataset: dataset.into(),
        subject: "s".into(),
        video: "v".into(),
        frame_index: i as i64,
        image: if corrupt { b"\xFF\xD8 not a jpeg".to_vec() } else { jpeg(i, side) },
        crop_size: side as i32,
        landmarks: (0..98).map(|k| (i * 1000 + k) as f32).collect(),
        landmark_source: "synthetic".into(),
        detector_score: f32::NAN,
        ..Default::default()
    }
}

fn meta(dataset: &str) -> ShardMeta {
    ShardMeta { dataset: dataset.into(), tool_version: "test".into(), preprocess_config: "{}".into(), labels: None }
}

/// `n` rows in files of 10 rows, row groups of 3; rows in `corrupt` get bad JPEG bytes.
fn shards(dir: &Path, stem: &str, dataset: &str, n: usize, side: u32, corrupt: &[usize]) -> Vec<PathBuf> {
    let opts = WriterOptions { rows_per_file: 10, row_group_size: 3, zstd_level: 1 };
    let mut w = ShardWriter::new(dir, stem, meta(dataset), opts).unwrap();
    for i in 0..n {
        w.push(row(dataset, i, side, corrupt.contains(&i))).unwrap();
    }
    w.finish().unwrap()
}

fn cfg(batch_size: usize, drop_last: bool) -> LoaderConfig {
    LoaderConfig { batch_size, workers: 2, prefetch: 2, shuffle_buffer: 5, drop_last, seed: 7, ..Default::default() }
}

fn epoch_ids(loader: &Loader, epoch: u64) -> Vec<String> {
    loader.epoch(epoch).flat_map(|b| b.unwrap().ids).collect()
}

fn id(i: usize) -> String {
    FaceRow::make_sample_id("vox", "s", "v", "", i as i64)
}

#[test]
fn every_sample_once_per_epoch_in_a_seeded_order() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), "a", "vox", 30, SIDE, &[]);
    let loader = Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(4, false), Device::Cpu).unwrap();
    let e0 = epoch_ids(&loader, 0);
    let mut sorted = e0.clone();
    sorted.sort();
    assert_eq!(sorted, (0..30).map(id).collect::<Vec<_>>(), "each sample exactly once");
    assert_ne!(e0, (0..30).map(id).collect::<Vec<_>>(), "the order is shuffled");
    assert_eq!(e0, epoch_ids(&loader, 0), "same seed and epoch, same order");
    let e1 = epoch_ids(&loader, 1);
    assert_ne!(e0, e1, "another epoch, another order");
    let other =
        Loader::new(ShardSet::from_dir(dir.path()).unwrap(), LoaderConfig { seed: 8, ..cfg(4, false) }, Device::Cpu)
            .unwrap();
    assert_ne!(e0, epoch_ids(&other, 0), "another seed, another order");
    // Thread count must not change the order.
    let one =
        Loader::new(ShardSet::from_dir(dir.path()).unwrap(), LoaderConfig { workers: 1, ..cfg(4, false) }, Device::Cpu)
            .unwrap();
    assert_eq!(e0, epoch_ids(&one, 0));
    // Rows come from all three files early on, not file by file.
    let first_files: HashSet<_> = e0[..10].iter().map(|s| s[s.len() - 2..].parse::<usize>().unwrap() / 10).collect();
    assert!(first_files.len() > 1, "first 10 rows all from one file: {:?}", &e0[..10]);
    let stats = loader.stats(); // three epochs of 30 rows in batches of 4, 4, ..., 2
    assert_eq!(stats.images, 90);
    assert_eq!(stats.batches, 24);
    assert!(stats.images_per_s() > 0.0 && (0.0..=1.0).contains(&stats.wait_fraction()));
}

#[test]
fn batches_hold_the_decoded_pixels_and_their_own_landmarks() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), "a", "vox", 10, SIDE, &[]);
    let loader = Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(4, true), Device::Cpu).unwrap();
    let batches: Vec<_> = loader.epoch(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 2, "10 rows, batch 4, drop_last: two batches");
    for b in &batches {
        assert_eq!(b.images.size(), [4, 3, SIDE as i64, SIDE as i64]);
        assert_eq!(b.images.kind(), Kind::Uint8);
        assert_eq!(b.landmarks.size(), [4, 49, 2]);
        assert_eq!(b.landmarks.kind(), Kind::Float);
        for (k, sid) in b.ids.iter().enumerate() {
            let i: usize = sid.rsplit('#').next().unwrap().parse().unwrap();
            let expected = image::load_from_memory(&jpeg(i, SIDE)).unwrap().to_rgb8();
            let got = b.images.get(k as i64).permute([1, 2, 0]).contiguous();
            let got = Vec::<u8>::try_from(got.flatten(0, -1)).unwrap();
            assert_eq!(got, expected.as_raw().as_slice(), "pixels of {sid}");
            let lm = Vec::<f32>::try_from(b.landmarks.get(k as i64).flatten(0, -1)).unwrap();
            assert_eq!(lm, (0..98).map(|j| (i * 1000 + j) as f32).collect::<Vec<_>>(), "landmarks of {sid}");
        }
    }
    let partial = Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(4, false), Device::Cpu).unwrap();
    let sizes: Vec<usize> = partial.epoch(0).map(|b| b.unwrap().len()).collect();
    assert_eq!(sizes, [4, 4, 2], "drop_last off keeps the partial batch");
}

#[test]
fn corrupt_images_are_skipped_counted_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), "a", "vox", 12, SIDE, &[3, 8]);
    // A JPEG of the wrong size is as unusable as a broken one.
    let mut w = ShardWriter::new(dir.path(), "b", meta("vox"), WriterOptions::default()).unwrap();
    w.push(FaceRow { image: jpeg(99, 8), ..row("vox", 99, SIDE, false) }).unwrap();
    w.finish().unwrap();
    let loader = Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(5, true), Device::Cpu).unwrap();
    let batches: Vec<_> = loader.epoch(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), [5, 5], "10 good rows fill two batches");
    let ids: HashSet<String> = batches.iter().flat_map(|b| b.ids.clone()).collect();
    let good: HashSet<String> = (0..12).filter(|i| ![3, 8].contains(i)).map(id).collect();
    assert_eq!(ids, good);
    assert_eq!(loader.stats().corrupt_rows, 3);
}

#[test]
fn id_filter_keeps_only_listed_samples() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), "a", "vox", 20, SIDE, &[]);
    let keep: HashSet<String> = (0..20).step_by(3).map(id).collect();
    let loader = Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(4, false), Device::Cpu)
        .unwrap()
        .with_filter(keep.clone());
    assert_eq!(loader.rows_per_epoch().unwrap(), 7);
    let got: HashSet<String> = epoch_ids(&loader, 0).into_iter().collect();
    assert_eq!(got, keep);
    assert_eq!(loader.stats().filtered_rows, 13);
}

#[test]
fn resuming_mid_epoch_skips_exactly_the_batches_already_seen() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), "a", "vox", 25, SIDE, &[4]);
    let loader = Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(3, true), Device::Cpu).unwrap();
    let full: Vec<Vec<String>> = loader.epoch(2).map(|b| b.unwrap().ids).collect();
    let resumed: Vec<Vec<String>> = loader.epoch_from(2, 3).map(|b| b.unwrap().ids).collect();
    assert_eq!(resumed, full[3..]);
}

#[test]
fn dropping_an_epoch_early_stops_its_threads() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), "a", "vox", 30, SIDE, &[]);
    let loader = Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(2, true), Device::Cpu).unwrap();
    let mut it = loader.epoch(0);
    assert!(it.next().unwrap().is_ok());
    drop(it); // joins the reader and decoder threads; a hang here fails the test by timeout
    assert_eq!(epoch_ids(&loader, 0).len(), 30);
}

#[test]
fn bad_shard_sets_fail_before_loading_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = ShardSet::from_dir(dir.path()).err().unwrap();
    assert!(matches!(err, DataError::EmptyShardSet { .. }), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
    assert!(ShardSet::open(&[]).is_err());

    let mixed = tempfile::tempdir().unwrap();
    shards(mixed.path(), "a", "vox", 3, SIDE, &[]);
    let other = shards(mixed.path(), "b", "bp4d", 3, SIDE, &[]);
    let err = ShardSet::from_dir(mixed.path()).err().unwrap().to_string();
    assert!(err.contains(&other[0].display().to_string()) && err.contains("dataset") && err.contains("bp4d"), "{err}");

    let sizes = tempfile::tempdir().unwrap();
    shards(sizes.path(), "a", "vox", 3, SIDE, &[]);
    let big = shards(sizes.path(), "b", "vox", 3, 24, &[]);
    let err = ShardSet::from_dir(sizes.path()).err().unwrap().to_string();
    assert!(err.contains(&big[0].display().to_string()) && err.contains("crop_size") && err.contains("24"), "{err}");

    let version = tempfile::tempdir().unwrap();
    shards(version.path(), "a", "vox", 3, SIDE, &[]);
    let future = version.path().join("future.parquet");
    write_with_schema_version(&future, "2");
    let err = ShardSet::from_dir(version.path()).err().unwrap().to_string();
    assert!(err.contains("future.parquet") && err.contains("schema_version"), "{err}");
}

/// A shard that is valid except for its schema version.
fn write_with_schema_version(path: &Path, version: &str) {
    use std::sync::Arc;
    let m = meta("vox");
    let schema = schemas::schema::arrow_schema(&m);
    let mut kv = schemas::schema::key_value_metadata(&m);
    kv.insert(schemas::schema::meta_key::SCHEMA_VERSION.to_string(), version.to_string());
    let schema = Arc::new(arrow::datatypes::Schema::new_with_metadata(schema.fields().clone(), kv));
    let batch = schemas::writer::to_record_batch(&schema, &[row("vox", 0, SIDE, false)]).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn a_shard_damaged_after_validation_ends_the_epoch_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let files = shards(dir.path(), "a", "vox", 6, SIDE, &[]);
    let loader = Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(2, true), Device::Cpu).unwrap();
    // Zero the data pages, keep the footer: the set was valid when opened.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let end = bytes.len() * 2 / 3;
    bytes[4..end].iter_mut().for_each(|b| *b = 0);
    std::fs::write(&files[0], bytes).unwrap();
    let results: Vec<_> = loader.epoch(0).collect();
    let err = results.iter().find_map(|r| r.as_ref().err()).expect("an error").to_string();
    assert!(err.contains("a-00000.parquet"), "{err}");
    assert!(results.last().unwrap().is_err(), "the error ends the epoch");
}

#[test]
fn loader_batches_feed_the_augmenter() {
    use model::data::augment::ops::normalize;
    use model::data::{AugmentConfig, Augmenter};
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), "a", "vox", 4, SIDE, &[]);
    let loader = Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(4, true), Device::Cpu).unwrap();
    let batch = loader.epoch(0).next().unwrap().unwrap();
    let v = Augmenter::new(AugmentConfig::default(), 0).unwrap().views(&batch.images, &batch.landmarks, 0).unwrap();
    // P is the decoded batch, normalized; its landmarks are the batch's.
    let x = batch.images.contiguous().to_kind(Kind::Float) / 255.0;
    assert!((&v.p - normalize(&x)).abs().max().double_value(&[]) < 1e-6);
    assert!(v.landmarks.equal(&batch.landmarks));
    assert_eq!(v.p1.size(), [4, 3, SIDE as i64, SIDE as i64]);
    assert_eq!(v.p2.size(), v.p1.size());
}

/// Data-parallel ranks (issue: each rank reads a disjoint slice of every
/// epoch's seeded shuffle, the union being the single-process epoch once):
/// rank r's batch k is rows r*B..(r+1)*B of the single-process batch k at
/// batch size W*B, for W = 2 and 3, in two epochs and from a mid-epoch skip
/// (40 rows: 5 global batches at W = 2, 3 and 4 rows left over at W = 3).
#[test]
fn rank_slices_are_disjoint_and_together_make_the_single_process_epoch() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), "a", "toy", 40, SIDE, &[]);
    let (b, open) =
        (4, |batch: usize| Loader::new(ShardSet::from_dir(dir.path()).unwrap(), cfg(batch, true), Device::Cpu));
    for world in [2usize, 3] {
        let single = open(world * b).unwrap();
        let ranks: Vec<Loader> = (0..world).map(|r| open(b).unwrap().with_part(r, world)).collect();
        for (epoch, skip) in [(0u64, 0usize), (1, 0), (1, 2)] {
            let want: Vec<Vec<String>> = single.epoch_from(epoch, skip).map(|x| x.unwrap().ids).collect();
            let mut got: Vec<Vec<Vec<String>>> =
                ranks.iter().map(|l| l.epoch_from(epoch, skip).map(|x| x.unwrap().ids).collect()).collect();
            assert_eq!(want.len(), 40 / (world * b) - skip, "full global batches only (drop_last)");
            // Rows after the last full global batch may fill a batch on the
            // first ranks; training ends the epoch when any rank has none.
            for g in &mut got {
                assert!(g.len() <= want.len() + 1);
                g.truncate(want.len());
            }
            for (k, global) in want.iter().enumerate() {
                let joined: Vec<String> = (0..world).flat_map(|r| got[r][k].clone()).collect();
                assert_eq!(&joined, global, "world {world} epoch {epoch} batch {k}");
            }
            let mut all: Vec<&String> = got.iter().flatten().flatten().collect();
            let n = all.len();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), n, "no sample on two ranks");
            assert_eq!(n, want.iter().map(Vec::len).sum::<usize>(), "the ranks together cover the epoch");
        }
        assert_eq!(ranks[0].rows_per_epoch().unwrap(), 40, "row counts are global");
    }
}
