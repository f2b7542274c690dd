//! The index in a snapshot: each shard's HNSW segments, saved as files next to the snapshot,
//! and the section `index-<s>` of the snapshot that names them and says which episode each of
//! their nodes holds, so that recovery loads them instead of re-inserting every episode.
//!
//! **What is saved.** Per (shard, space), the *linked prefix*: absorption of the space is
//! paused ([`AbsorbProgress::pause`](crate::engine::shard::AbsorbProgress::pause): no new
//! claims, running absorbers finish), so the linked slots are exactly `0..absorbed`; the
//! segment holding slot `absorbed` (the only one absorbers can still change) is saved with its
//! nodes below `absorbed` while paused, absorption resumes, and then the full segments below
//! it (no absorber writes them any more) are saved. Staged, unlinked rows are left out: their
//! episodes are re-absorbed from their records. Deletion marks are left out: the logged forgets
//! are replayed. The snapshot's log position is taken *after* every pause, so it covers the
//! record of every saved node (an episode is logged before it is accepted, and only accepted
//! slots are linked).
//!
//! **The `similar` associations** (made by the absorbers from the insertion walk, never logged)
//! are saved with the nodes they came from, one list per slot, and re-applied by recovery just
//! after the episode's own record, as if it had been absorbed at once.
//!
//! **Files.** `snap-<id>.<shard>.<space>.<segment>.hnsw`, in [`HnswIndex`]'s snapshot format
//! (its own CRC-32 over the whole file): written as `….tmp`, fsynced, renamed, and the
//! directory fsynced before the snapshot that names them is committed. A full segment's file
//! (all its nodes linked: no absorber writes it again, and deletion marks are not saved) is
//! named again by the next snapshot instead of written again, if it is intact (length and
//! trailing CRC). Files no longer named are removed once the new snapshot is committed.
//!
//! **Section `index-<s>`** (little-endian; inside the snapshot, so covered by its checksums):
//!
//! ```text
//! space_count u16, then per space:
//!   name_len u8 | name | linked u64 | segment_count u32
//!   segment_count × (file_len u16 | file name | nodes u64 | bytes u64 | crc u32)
//!   linked × (episode id u64 | similar_count u8 | similar_count × (id u64 | weight f32))
//! ```
//!
//! **Loading** (recovery) checks, per space, that every file is there with the recorded length
//! and CRC, loads it into the shard's node-bound regions
//! ([`HnswIndex::load_with_regions`], which checks the CRC of every byte and every value), checks
//! its shape against the engine's index parameters, and that every saved slot's episode has a
//! record in the snapshot. Any failure drops that space's loaded segments (nothing is attached
//! yet) and its episodes are re-absorbed as before; the reason is reported
//! ([`RecoveryReport::index_fallbacks`](super::RecoveryReport::index_fallbacks)).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::core::Inner;
use super::super::shard::Segment;
use crate::durability::fsutil::sync_dir;
use crate::durability::{DurabilityError, Record, Snapshot};
use crate::engine::error::EngineError;
use crate::index::{HnswIndex, Metric};

/// The name of shard `s`'s index section.
pub(crate) fn section_name(s: usize) -> String {
    format!("index-{s}")
}

/// `similar` associations of one slot: (other episode, weight).
pub(crate) type SimilarList = Box<[(u64, f32)]>;

/// One saved segment file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegmentFile {
    pub(crate) name: String,
    pub(crate) nodes: u64,
    pub(crate) bytes: u64,
    pub(crate) crc: u32,
}

/// The saved index of one space of one shard.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpaceIndex {
    pub(crate) space: String,
    /// Slots `0..linked` are the saved nodes.
    pub(crate) linked: u64,
    pub(crate) segments: Vec<SegmentFile>,
    /// Episode id of each saved slot.
    pub(crate) ids: Vec<u64>,
    /// The `similar` associations each saved slot's absorber made.
    pub(crate) similar: Vec<Box<[(u64, f32)]>>,
}

/// Encodes a shard's index section.
pub(crate) fn encode(spaces: &[SpaceIndex]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(spaces.len() as u16).to_le_bytes());
    for sp in spaces {
        out.push(sp.space.len() as u8);
        out.extend_from_slice(sp.space.as_bytes());
        out.extend_from_slice(&sp.linked.to_le_bytes());
        out.extend_from_slice(&(sp.segments.len() as u32).to_le_bytes());
        for f in &sp.segments {
            out.extend_from_slice(&(f.name.len() as u16).to_le_bytes());
            out.extend_from_slice(f.name.as_bytes());
            out.extend_from_slice(&f.nodes.to_le_bytes());
            out.extend_from_slice(&f.bytes.to_le_bytes());
            out.extend_from_slice(&f.crc.to_le_bytes());
        }
        for (id, sim) in sp.ids.iter().zip(&sp.similar) {
            out.extend_from_slice(&id.to_le_bytes());
            let n = sim.len().min(u8::MAX as usize);
            out.push(n as u8);
            for &(o, w) in &sim[..n] {
                out.extend_from_slice(&o.to_le_bytes());
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
    }
    out
}

/// A bounds-checked cursor over a section.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DurabilityError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| DurabilityError::InvalidRecord {
                what: format!("index section ends inside a field at byte {}", self.pos),
            })?;
        let out = &self.b[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, DurabilityError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DurabilityError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DurabilityError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DurabilityError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
}

/// Decodes a shard's index section; every count is checked against the bytes left before
/// anything is allocated for it.
///
/// # Errors
/// [`DurabilityError::InvalidRecord`] for a section that does not decode (it passed the
/// snapshot's checksums, so a writer bug or a forged file).
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<SpaceIndex>, DurabilityError> {
    let bad = |what: String| DurabilityError::InvalidRecord { what };
    let mut c = Cursor { b: bytes, pos: 0 };
    let count = c.u16()? as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        let len = c.u8()? as usize;
        let space =
            String::from_utf8(c.take(len)?.to_vec()).map_err(|_| bad("space name is not UTF-8".into()))?;
        let linked = c.u64()?;
        let segs = c.u32()? as usize;
        // Each segment entry takes at least 22 bytes, each slot at least 9.
        if segs.saturating_mul(22) > c.remaining() || (linked as usize).saturating_mul(9) > c.remaining() {
            return Err(bad(format!(
                "index section of {space}: counts longer than the section"
            )));
        }
        let mut segments = Vec::with_capacity(segs);
        for _ in 0..segs {
            let nl = c.u16()? as usize;
            let name =
                String::from_utf8(c.take(nl)?.to_vec()).map_err(|_| bad("file name is not UTF-8".into()))?;
            segments.push(SegmentFile {
                name,
                nodes: c.u64()?,
                bytes: c.u64()?,
                crc: c.u32()?,
            });
        }
        let mut ids = Vec::with_capacity(linked as usize);
        let mut similar = Vec::with_capacity(linked as usize);
        for _ in 0..linked {
            ids.push(c.u64()?);
            let n = c.u8()? as usize;
            let mut sim = Vec::with_capacity(n);
            for _ in 0..n {
                let o = c.u64()?;
                let w = f32::from_bits(c.u32()?);
                sim.push((o, w));
            }
            similar.push(sim.into_boxed_slice());
        }
        out.push(SpaceIndex {
            space,
            linked,
            segments,
            ids,
            similar,
        });
    }
    if c.remaining() != 0 {
        return Err(bad(format!(
            "{} bytes after the index section's spaces",
            c.remaining()
        )));
    }
    Ok(out)
}

/// What saving the indexes of a snapshot did.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    /// Per shard, its section's spaces.
    pub(crate) shards: Vec<Vec<SpaceIndex>>,
    pub(crate) files: Vec<String>,
    pub(crate) bytes: u64,
    pub(crate) nodes: u64,
    pub(crate) pause_max: Duration,
    pub(crate) pause_total: Duration,
    pub(crate) elapsed: Duration,
    /// Spaces not saved, and why (their episodes are re-absorbed at recovery).
    pub(crate) skipped: Vec<String>,
    /// Files of the previous snapshot named again instead of written.
    pub(crate) reused: usize,
}

fn file_name(id: u64, shard: usize, space: usize, seg: usize) -> String {
    format!("snap-{id}.{shard}.{space}.{seg}.hnsw")
}

fn index_err(shard: usize) -> impl Fn(crate::index::IndexError) -> EngineError {
    move |source| EngineError::Index { shard, source }
}

/// Queues the absorbers of a space whose pause ended (as many as it may run: absorbers that
/// found it paused queued no successor).
fn resume(eng: &Inner, s: usize, space: u16) {
    for _ in 0..eng.shard(s).max_absorbers() {
        eng.schedule_absorb(s, space);
    }
}

/// Saves one segment's first `nodes` nodes as `dir/name` (temp, fsync, rename).
fn save_segment(
    dir: &Path,
    name: &str,
    seg: &Segment,
    nodes: usize,
    shard: usize,
) -> Result<SegmentFile, EngineError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let (bytes, crc) = seg
        .index
        .save_linked_prefix(&tmp, nodes)
        .map_err(index_err(shard))?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(|e| EngineError::Durability {
        shard: Some(shard),
        source: DurabilityError::from_io("rename", &path, e),
    })?;
    Ok(SegmentFile {
        name: name.to_string(),
        nodes: nodes as u64,
        bytes,
        crc,
    })
}

/// Saves the linked prefix of every (shard, space) that has one (see the module docs) as the
/// files of snapshot `id`, naming again the full segments `old` (the previous snapshot) has
/// files for, then fsyncs the directory.
///
/// # Errors
/// I/O errors writing a file (the snapshot is then abandoned; the previous one stays current).
pub(crate) fn save_all(
    eng: &Inner,
    dir: &Path,
    id: u64,
    old: Option<&Snapshot>,
) -> Result<Saved, EngineError> {
    let started = Instant::now();
    let mut saved = Saved::default();
    let cap = eng.config().index.segment_capacity;
    for (s, shard) in eng.shards().iter().enumerate() {
        // The previous snapshot's full segments of this shard, by (space, segment): their
        // nodes are all linked and no absorber writes them again (deletion marks are not
        // saved), so their files are named again instead of written again.
        let mut previous: HashMap<(String, usize), SegmentFile> = HashMap::new();
        if let Some(Ok(spaces)) = old.and_then(|o| o.section(&section_name(s))).map(decode) {
            for sp in spaces {
                for (i, f) in sp.segments.into_iter().enumerate() {
                    if f.nodes == cap as u64
                        && checked_name(&f.name)
                        && check_file(&dir.join(&f.name), &f).is_ok()
                    {
                        previous.insert((sp.space.clone(), i), f);
                    }
                }
            }
        }
        let mut spaces = Vec::new();
        for (x, sp) in shard.spaces.iter().enumerate() {
            let paused_at = Instant::now();
            let pause = sp.progress.pause();
            let linked = sp.absorbed();
            let claimed = sp.progress.claimed();
            if linked == 0 || claimed != linked {
                drop(pause);
                saved.pause_total += paused_at.elapsed();
                resume(eng, s, x as u16);
                if claimed != linked {
                    saved.skipped.push(format!(
                        "shard {s} space {}: {claimed} slots claimed but {linked} linked (an absorber failed)",
                        eng.spaces()[x].name()
                    ));
                }
                continue;
            }
            let segs = sp.segments();
            let (ids, similar) = shard.linked_prefix_meta(x as u16, linked);
            let full = linked / cap;
            let mut files = Vec::new();
            let mut partial = None;
            let result = (|| -> Result<(), EngineError> {
                if linked % cap != 0 {
                    let seg = segs.get(full).ok_or_else(|| EngineError::Durability {
                        shard: Some(s),
                        source: DurabilityError::InvalidInput {
                            what: format!("slot {linked} is linked but segment {full} does not exist"),
                        },
                    })?;
                    partial = Some(save_segment(
                        dir,
                        &file_name(id, s, x, full),
                        seg,
                        linked % cap,
                        s,
                    )?);
                }
                Ok(())
            })();
            drop(pause);
            let pause = paused_at.elapsed();
            saved.pause_max = saved.pause_max.max(pause);
            saved.pause_total += pause;
            resume(eng, s, x as u16);
            result?;
            for (i, seg) in segs.iter().take(full).enumerate() {
                match previous.remove(&(eng.spaces()[x].name().to_owned(), i)) {
                    Some(f) => {
                        saved.reused += 1;
                        files.push(f);
                    }
                    None => files.push(save_segment(dir, &file_name(id, s, x, i), seg, cap, s)?),
                }
            }
            files.extend(partial);
            for f in &files {
                saved.bytes += f.bytes;
                saved.files.push(f.name.clone());
            }
            saved.nodes += linked as u64;
            spaces.push(SpaceIndex {
                space: eng.spaces()[x].name().to_owned(),
                linked: linked as u64,
                segments: files,
                ids,
                similar,
            });
        }
        saved.shards.push(spaces);
    }
    sync_dir(dir).map_err(|source| EngineError::Durability { shard: None, source })?;
    saved.elapsed = started.elapsed();
    Ok(saved)
}

/// Removes the index files (`snap-*.hnsw`) not in `keep`: those of older snapshots.
pub(crate) fn remove_stale(dir: &Path, keep: &[String]) -> Result<(), DurabilityError> {
    for entry in std::fs::read_dir(dir).map_err(|e| DurabilityError::from_io("read_dir", dir, e))? {
        let entry = entry.map_err(|e| DurabilityError::from_io("read_dir", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("snap-") && name.ends_with(".hnsw") && !keep.contains(&name) {
            std::fs::remove_file(entry.path())
                .map_err(|e| DurabilityError::from_io("remove", entry.path(), e))?;
        }
    }
    sync_dir(dir)
}

/// One space's index, loaded and checked, ready to attach.
pub(crate) struct LoadedSpace {
    pub(crate) space: u16,
    pub(crate) segments: Vec<HnswIndex>,
    /// Per slot: its record's position in the snapshot section of its shard.
    pub(crate) records: Vec<usize>,
    pub(crate) similar: Vec<Box<[(u64, f32)]>>,
}

/// A checked file name of this module (no path: a forged section cannot name another file).
fn checked_name(name: &str) -> bool {
    name.starts_with("snap-")
        && name.ends_with(".hnsw")
        && !name.contains(['/', '\\'])
        && !name.contains("..")
}

/// Checks a file's length and trailing CRC against the section before loading it.
fn check_file(path: &Path, f: &SegmentFile) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", f.name))?;
    let len = file.metadata().map_err(|e| format!("{}: {e}", f.name))?.len();
    if len != f.bytes || len < 4 {
        return Err(format!(
            "{}: {len} bytes, the snapshot recorded {}",
            f.name, f.bytes
        ));
    }
    let mut crc = [0u8; 4];
    file.seek(SeekFrom::Start(len - 4))
        .and_then(|_| file.read_exact(&mut crc))
        .map_err(|e| format!("{}: {e}", f.name))?;
    if u32::from_le_bytes(crc) != f.crc {
        return Err(format!(
            "{}: not the file the snapshot recorded (CRC differs)",
            f.name
        ));
    }
    Ok(())
}

/// Loads shard `s`'s saved indexes (see the module docs). `records` are the shard's records
/// from the snapshot. Returns the spaces loaded and, for each space that falls back to
/// re-absorption, why.
pub(crate) fn load_shard(
    eng: &Inner,
    dir: &Path,
    section: Option<&[u8]>,
    s: usize,
    records: &[Record],
) -> (Vec<LoadedSpace>, Vec<String>) {
    let Some(section) = section else {
        return (Vec::new(), Vec::new());
    };
    let spaces = match decode(section) {
        Ok(v) => v,
        Err(e) => return (Vec::new(), vec![format!("shard {s}: index section: {e}")]),
    };
    let mut loaded = Vec::new();
    let mut fallbacks = Vec::new();
    for sp in spaces {
        match load_space(eng, dir, s, &sp, records) {
            Ok(l) => loaded.push(l),
            Err(why) => fallbacks.push(format!("shard {s} space {}: {why}", sp.space)),
        }
    }
    (loaded, fallbacks)
}

fn load_space(
    eng: &Inner,
    dir: &Path,
    s: usize,
    sp: &SpaceIndex,
    records: &[Record],
) -> Result<LoadedSpace, String> {
    let space = eng
        .space_id(&sp.space)
        .ok_or_else(|| format!("space {} is not declared", sp.space))?;
    let ix = &eng.config().index;
    let cap = ix.segment_capacity as u64;
    let linked = sp.linked;
    if sp.ids.len() as u64 != linked || sp.segments.len() as u64 != linked.div_ceil(cap) {
        return Err(format!(
            "{linked} slots in {} segments of {cap} do not match the section",
            sp.segments.len()
        ));
    }
    // Every saved slot's episode must have a record in the snapshot (it is logged before it is
    // accepted, and the snapshot covers it).
    let mut slot_of: HashMap<u64, usize> = HashMap::with_capacity(sp.ids.len());
    for (k, &id) in sp.ids.iter().enumerate() {
        if slot_of.insert(id, k).is_some() {
            return Err(format!("episode {id} saved in two slots"));
        }
    }
    let mut at = vec![usize::MAX; sp.ids.len()];
    for (i, r) in records.iter().enumerate() {
        if let Record::Episode(e) = r
            && e.space == sp.space
            && let Some(&k) = slot_of.get(&e.id)
        {
            at[k] = i;
        }
    }
    if let Some(k) = at.iter().position(|&i| i == usize::MAX) {
        return Err(format!(
            "slot {k} (episode {}) has no record in the snapshot",
            sp.ids[k]
        ));
    }
    for (i, f) in sp.segments.iter().enumerate() {
        if !checked_name(&f.name) {
            return Err(format!("file name {:?} is not an index file's", f.name));
        }
        let want = (linked - i as u64 * cap).min(cap);
        if f.nodes != want {
            return Err(format!("{}: {} nodes recorded, {want} expected", f.name, f.nodes));
        }
        check_file(&dir.join(&f.name), f)?;
    }
    // The files load in parallel (decoding and quantising rows is CPU work); the regions are
    // bound to the shard's node, so placement does not depend on the loading thread.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(sp.segments.len())
        .max(1);
    let mut results: Vec<Option<Result<HnswIndex, String>>> = (0..sp.segments.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let chunk = sp.segments.len().div_ceil(threads).max(1);
        for (files, out) in sp.segments.chunks(chunk).zip(results.chunks_mut(chunk)) {
            scope.spawn(move || {
                for (f, slot) in files.iter().zip(out) {
                    *slot = Some(
                        HnswIndex::load_with_regions(&dir.join(&f.name), &eng.shard(s).regions)
                            .map_err(|e| e.to_string()),
                    );
                }
            });
        }
    });
    let mut segments = Vec::with_capacity(sp.segments.len());
    for (i, (f, r)) in sp.segments.iter().zip(results).enumerate() {
        let want = (linked - i as u64 * cap).min(cap);
        let index = r.ok_or_else(|| format!("{}: its loading thread did not finish", f.name))??;
        let c = index.config();
        if c.dim != eng.dim()
            || c.capacity != ix.segment_capacity
            || c.metric != Metric::InnerProduct
            || c.quantization != ix.quantization
            || index.ids_used() as u64 != want
            || index.len() as u64 != want
        {
            return Err(format!(
                "{}: index of {} dims, capacity {}, {} nodes ({} linked) does not fit this engine",
                f.name,
                c.dim,
                c.capacity,
                index.ids_used(),
                index.len()
            ));
        }
        segments.push(index);
    }
    Ok(LoadedSpace {
        space,
        segments,
        records: at,
        similar: sp.similar.clone(),
    })
}

/// Installs a loaded space's segments on its shard (before any of its episodes is stored).
pub(crate) fn install(eng: &Inner, s: usize, l: &mut LoadedSpace) {
    let cap = eng.config().index.segment_capacity;
    let segs: Vec<Arc<Segment>> = std::mem::take(&mut l.segments)
        .into_iter()
        .enumerate()
        .map(|(i, index)| Arc::new(Segment { index, base: i * cap }))
        .collect();
    eng.shard(s).install_segments(l.space, segs);
}
