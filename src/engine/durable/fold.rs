//! Snapshots of a durable engine: the shards' logs folded into one checksummed file, so that
//! the covered log segments can be deleted.
//!
//! A snapshot does not read the engine's memory: for each shard it takes the previous
//! snapshot's records and appends the log records after them up to the position
//! [`ShardWal::flush`](crate::durability::ShardWal::flush) returned — exactly the state those
//! records build, so the cut is consistent by construction, and observe and recall go on
//! meanwhile without any lock of theirs being taken (the only shared step is that flush, one
//! group write + fsync per shard). Then `MANIFEST` names it and each shard's covered segments
//! are deleted.
//!
//! Section `shard-<s>` holds shard `s`'s records as `len u32 | record (len bytes)`…, in log
//! order. Before the flush, each shard's linked index segments are saved as files beside the
//! snapshot, named by its section `index-<s>` (see [`index_files`]): recovery loads them and
//! re-absorbs only the episodes they do not hold.
//!
//! Cost, said plainly: the whole snapshot is built in memory (the previous one is loaded and
//! verified, then extended), so it needs about its own size in free memory while it runs, and
//! its size is the log's size without the frame headers (forgotten episodes stay: their ids
//! stay taken).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Store, durability_err, index_files};
use crate::durability::{
    DurabilityError, Record, RecordLimits, ShardReplay, SnapshotWriter, load_current_snapshot,
    next_snapshot_id,
};
use crate::engine::core::Inner;
use crate::engine::error::EngineError;

/// The name of shard `s`'s section.
pub(crate) fn section_name(s: usize) -> String {
    format!("shard-{s}")
}

/// Decodes a section's records.
///
/// # Errors
/// [`DurabilityError::InvalidRecord`] if a length runs past the section or a record does not
/// decode (the section passed its checksum, so this means a writer bug or a forged file).
pub(crate) fn decode_section(bytes: &[u8], limits: &RecordLimits) -> Result<Vec<Record>, DurabilityError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(head) = bytes.get(pos..pos + 4) else {
            return Err(DurabilityError::InvalidRecord {
                what: format!("snapshot section ends inside a length at byte {pos}"),
            });
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(body) = bytes.get(pos + 4..pos + 4 + len) else {
            return Err(DurabilityError::InvalidRecord {
                what: format!("snapshot record at byte {pos} claims {len} bytes past the section's end"),
            });
        };
        out.push(Record::decode(body, limits)?);
        pos += 4 + len;
    }
    Ok(out)
}

/// What one snapshot did ([`Engine::snapshot`](crate::engine::Engine::snapshot)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotReport {
    /// Its id and file.
    pub id: u64,
    /// Its file name in the directory.
    pub file: String,
    /// Records it holds, all shards.
    pub records: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Log segments deleted because it covers them.
    pub segments_deleted: usize,
    /// Time of the flush of every shard's log (the only step observers can wait on).
    pub flush: Duration,
    /// Total time, index save to truncation.
    pub elapsed: Duration,
    /// Index segment files it names (see `src/engine/durable/index_files.rs`).
    pub index_files: usize,
    /// Their bytes.
    pub index_bytes: u64,
    /// Of those files, how many the previous snapshot had already written (full segments,
    /// which no absorber changes any more, are not written again).
    pub index_files_reused: usize,
    /// Episodes whose linked index nodes they hold (recovery attaches them instead of
    /// re-inserting them).
    pub indexed_episodes: u64,
    /// Time spent saving them (absorption runs during most of it).
    pub index_save: Duration,
    /// The longest time one (shard, space)'s absorption was paused (observe and recall go on).
    pub absorber_pause_max: Duration,
    /// All pauses together.
    pub absorber_pause_total: Duration,
    /// Spaces whose index was not saved, and why (recovery re-absorbs their episodes).
    pub index_skipped: Vec<String>,
}

impl Store {
    /// Takes a snapshot of `eng` (whose store this is) now (see the module docs); one at a
    /// time.
    pub(crate) fn snapshot(&self, eng: &Inner, limits: RecordLimits) -> Result<SnapshotReport, EngineError> {
        let _one = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        self.reset_since_snapshot();
        // The index first: every node it saves was linked, hence accepted, hence logged before
        // the flush below, so the snapshot covers its record.
        let id = next_snapshot_id(&self.dir).map_err(durability_err(None))?;
        let n = u32::try_from(self.shards.len()).unwrap_or(u32::MAX);
        let old = load_current_snapshot(&self.dir, self.dim, n).map_err(durability_err(None))?;
        let saved = index_files::save_all(eng, &self.dir, id, old.as_ref())?;
        let flush_started = Instant::now();
        let mut covered = Vec::with_capacity(self.shards.len());
        for sd in &self.shards {
            let Some(wal) = sd.wal() else {
                return Err(EngineError::Closed);
            };
            covered.push(wal.flush().map_err(durability_err(Some(sd.shard)))?);
        }
        let flush = flush_started.elapsed();
        let mut writer =
            SnapshotWriter::create(&self.dir, self.dim, covered.clone()).map_err(durability_err(None))?;
        let mut records = 0u64;
        let mut scratch = Vec::new();
        for (s, &to) in covered.iter().enumerate() {
            let name = section_name(s);
            let mut bytes = old
                .as_ref()
                .and_then(|o| o.section(&name))
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            records += decode_section(&bytes, &limits)
                .map_err(durability_err(Some(s)))?
                .len() as u64;
            let from = old.as_ref().map_or(0, |o| o.info.covered[s]);
            let range =
                ShardReplay::range(&self.dir, s as u32, limits, from, to).map_err(durability_err(Some(s)))?;
            for rec in range.records() {
                let (_, rec) = rec.map_err(durability_err(Some(s)))?;
                scratch.clear();
                rec.encode_into(&limits, &mut scratch)
                    .map_err(durability_err(Some(s)))?;
                let len = u32::try_from(scratch.len()).map_err(|_| {
                    durability_err(Some(s))(DurabilityError::InvalidRecord {
                        what: "record over 4 GiB".into(),
                    })
                })?;
                bytes.extend_from_slice(&len.to_le_bytes());
                bytes.extend_from_slice(&scratch);
                records += 1;
            }
            writer.section(&name, &bytes).map_err(durability_err(Some(s)))?;
            if let Some(spaces) = saved.shards.get(s).filter(|v| !v.is_empty()) {
                writer
                    .section(&index_files::section_name(s), &index_files::encode(spaces))
                    .map_err(durability_err(Some(s)))?;
            }
        }
        if writer.id() != id {
            return Err(durability_err(None)(DurabilityError::InvalidInput {
                what: format!(
                    "snapshot {} was created while its index files were named {id}",
                    writer.id()
                ),
            }));
        }
        let info = writer.commit().map_err(durability_err(None))?;
        index_files::remove_stale(&self.dir, &saved.files).map_err(durability_err(None))?;
        let mut segments_deleted = 0;
        for sd in &self.shards {
            if let Some(wal) = sd.wal() {
                segments_deleted += wal
                    .truncate_before(&info)
                    .map_err(durability_err(Some(sd.shard)))?;
            }
        }
        let bytes = std::fs::metadata(self.dir.join(&info.file)).map_or(0, |m| m.len());
        Ok(SnapshotReport {
            id: info.id,
            file: info.file,
            records,
            bytes,
            segments_deleted,
            flush,
            elapsed: started.elapsed(),
            index_files: saved.files.len(),
            index_files_reused: saved.reused,
            index_bytes: saved.bytes,
            indexed_episodes: saved.nodes,
            index_save: saved.elapsed,
            absorber_pause_max: saved.pause_max,
            absorber_pause_total: saved.pause_total,
            index_skipped: saved.skipped,
        })
    }
}
