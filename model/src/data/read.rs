//! The reader thread of an epoch: row groups of all shards in a seeded
//! order, only the loader's columns, the id filter, the shuffle buffer.

use std::collections::HashSet;
use std::sync::mpsc::SyncSender;

use schemas::reader::Columns;
use schemas::schema::col;
use schemas::NUM_LANDMARKS;

use super::decode::RawRow;
use super::error::{DataError, Result};
use super::loader::LoaderConfig;
use super::shards::{epoch_rng, shuffle_units, ShardSet, ShuffleBuffer, LOADER_COLUMNS};
use super::stats::StatsCounters;

/// What the reader hands the decoder.
pub(crate) enum RawMsg {
    /// Rows in epoch order.
    Rows(Vec<RawRow>),
    /// Reading failed; the epoch ends.
    Failed(DataError),
    /// Every row was sent.
    End,
}

/// Reader thread: row groups in seeded order -> id filter -> shuffle buffer
/// -> (a data-parallel rank) this rank's slice of every global batch.
pub(crate) fn read_epoch(
    set: &ShardSet,
    cfg: &LoaderConfig,
    filter: Option<&HashSet<String>>,
    epoch: u64,
    part: Option<(usize, usize)>,
    stats: &StatsCounters,
    tx: &SyncSender<RawMsg>,
) {
    let chunk = cfg.batch_size.clamp(1, 1024);
    let mut rng = epoch_rng(cfg.seed, epoch);
    let mut units = set.units();
    if cfg.shuffle {
        shuffle_units(&mut units, &mut rng);
    }
    let mut buffer = ShuffleBuffer::new(if cfg.shuffle { cfg.shuffle_buffer } else { 0 });
    let mut out = Vec::with_capacity(chunk);
    // A data-parallel rank keeps global batch k's rows k*W*B + r*B ..
    // k*W*B + (r+1)*B of the epoch's order: the ranks' batches k together
    // are one process's batch k at batch size W*B.
    let (rank, world) = part.unwrap_or((0, 1));
    let mut position = 0usize;
    // `false`: the consumer is gone, stop quietly.
    let mut emit = |row: RawRow, out: &mut Vec<RawRow>| {
        let mine = (position / cfg.batch_size.max(1)) % world == rank;
        position += 1;
        if !mine {
            return true;
        }
        out.push(row);
        out.len() < chunk || tx.send(RawMsg::Rows(std::mem::replace(out, Vec::with_capacity(chunk)))).is_ok()
    };
    for (s, g) in units {
        let reader = &set.readers()[s];
        let rows = match read_group(reader, s, g, filter, stats) {
            Ok(rows) => rows,
            Err(e) => {
                let _ = tx.send(RawMsg::Failed(e));
                return;
            }
        };
        for row in rows {
            if let Some(r) = buffer.push(row, &mut rng) {
                if !emit(r, &mut out) {
                    return;
                }
            }
        }
    }
    while let Some(r) = buffer.pop_any(&mut rng) {
        if !emit(r, &mut out) {
            return;
        }
    }
    if !out.is_empty() && tx.send(RawMsg::Rows(out)).is_err() {
        return;
    }
    let _ = tx.send(RawMsg::End);
}

/// The rows of one row group that pass the filter.
fn read_group(
    reader: &schemas::ShardReader,
    shard: usize,
    group: usize,
    filter: Option<&HashSet<String>>,
    stats: &StatsCounters,
) -> Result<Vec<RawRow>> {
    let path = reader.path();
    let mut rows = Vec::new();
    for batch in reader.batches(&LOADER_COLUMNS, Some(vec![group]), 1024)? {
        let batch = batch?;
        let c = Columns::new(path, &batch);
        let (ids, images) = (c.strings(col::SAMPLE_ID)?, c.binary(col::IMAGE)?);
        let landmarks = c.fixed_f32(col::LANDMARKS, 2 * NUM_LANDMARKS)?;
        for (i, lm) in landmarks.chunks_exact(2 * NUM_LANDMARKS).enumerate() {
            let id = ids.value(i);
            if filter.is_some_and(|f| !f.contains(id)) {
                stats.add_filtered(1);
                continue;
            }
            if lm.iter().any(|v| !v.is_finite()) {
                // like an image that does not decode: skipped, counted, named
                stats.add_corrupt();
                tracing::warn!(file = %path.display(), sample_id = %id, "skipping a row whose landmarks are not finite (NaN or infinity)");
                continue;
            }
            let mut l = [0f32; 2 * NUM_LANDMARKS];
            l.copy_from_slice(lm);
            rows.push(RawRow { id: id.to_string(), image: images.value(i).to_vec(), landmarks: l, shard });
        }
    }
    Ok(rows)
}
