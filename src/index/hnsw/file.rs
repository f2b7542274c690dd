//! The index's file: save an index to a file and load it back (read into memory, not mapped).
//!
//! Format, version 1, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `LOCUSHNS` |
//! | 4 | format version (1) |
//! | 4 | dim |
//! | 8 | capacity |
//! | 1, 1, 2 | metric code, quantisation code (0 none, 1 int8), zero |
//! | 4, 4 | M, ef_construction |
//! | 8 | seed |
//! | 8 | ids used (`n`) |
//! | 8 | entry point (`level << 32 \| id`, or all ones when empty) |
//! | n | node flags |
//! | n | node levels |
//! | n·dim·4 | f32 vectors |
//! | n·2M·4 | level-0 link slots (`u32::MAX` = empty) |
//! | Σ level·M·4 | upper-level link slots, node by node |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! Int8 rows are not stored; they are recomputed from the f32 vectors on load. Loading checks,
//! in order: the length against the header, the magic, the version, the checksum, and then every
//! value (metric, sizes, levels, link ids, finiteness) so that even a file with a valid checksum
//! but impossible content is refused with [`IndexError::CorruptSnapshot`], never a panic.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::graph::{DELETED, EMPTY, READY, upper_levels_for};
use super::{HnswConfig, HnswIndex, MAX_LEVEL, NO_ENTRY};
use crate::index::IndexError;
use crate::index::distance::{Kernels, Metric};
use crate::index::space::Quantization;
use crate::index::storage::{MappedRegions, RegionSource};

/// Unused capacity a snapshot may carry beyond its stored ids, when that is more than the ids
/// themselves: `load` accepts `capacity <= n + max(n, MAX_UNJUSTIFIED_RESERVE)`. An index saved
/// with more headroom than that is refused as corrupt.
pub(crate) const MAX_UNJUSTIFIED_RESERVE: usize = 1 << 20;

const MAGIC: &[u8; 8] = b"LOCUSHNS";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 8 + 4 + 4 + 8 + 4 + 4 + 4 + 8 + 8 + 8;

/// A writer that checksums what it writes.
struct Sink<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Sink<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }
}

impl HnswIndex {
    /// Writes the index to `path` (created or truncated).
    ///
    /// Meant for a quiescent index; inserts running during the save may be cut off, in which
    /// case their nodes are saved as unfinished and are never returned after loading.
    ///
    /// # Errors
    /// [`IndexError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        self.write_file(path, self.ids_used(), false).map(|_| ())
    }

    /// Writes nodes `0..n` of the index to `path` (created or truncated, then fsynced) in the
    /// format of [`HnswIndex::save`], for an index whose linked nodes are exactly `0..n` and
    /// which nobody links meanwhile (the engine pauses its absorbers; staged nodes from `n` on
    /// are left out, so the loaded index stages its next node at `n`). Deletion marks are
    /// left out too: the caller re-applies its deletes (the engine replays its logged forgets).
    /// Returns the file's length and its trailing CRC-32.
    ///
    /// # Errors
    /// [`IndexError::InvalidInput`] if `n` exceeds the ids used, a node below `n` is not
    /// linked, or one links to a node from `n` on (not a linked prefix: the file is left
    /// incomplete and must not be used); [`IndexError::Io`] if the file cannot be written.
    pub(crate) fn save_linked_prefix(&self, path: &Path, n: usize) -> Result<(u64, u32), IndexError> {
        let bad = |what: String| IndexError::InvalidInput { what };
        if n > self.ids_used() {
            return Err(bad(format!("prefix of {n} nodes, {} used", self.ids_used())));
        }
        if let Some(i) = (0..n as u32).find(|&i| self.graph.flags(i) & READY == 0) {
            return Err(bad(format!("node {i} of the prefix of {n} is not linked")));
        }
        let entry = self.entry.load(Ordering::Acquire);
        if (n == 0) != (entry == NO_ENTRY) || (entry != NO_ENTRY && (entry & 0xffff_ffff) as usize >= n) {
            return Err(bad(format!("the entry point is outside the prefix of {n}")));
        }
        self.write_file(path, n, true)
    }

    /// Creates `path`, writes nodes `0..n` (see [`write_body`](Self::write_body)) and the
    /// trailing CRC-32, fsyncs it, and returns its length and that CRC.
    fn write_file(&self, path: &Path, n: usize, prefix: bool) -> Result<(u64, u32), IndexError> {
        let io = |source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io)?;
        let mut s = Sink {
            out: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
        };
        self.write_body(&mut s, n, prefix).map_err(|e| {
            // Only the prefix check makes `InvalidData`: not a linked prefix.
            if e.kind() == std::io::ErrorKind::InvalidData {
                IndexError::InvalidInput { what: e.to_string() }
            } else {
                io(e)
            }
        })?;
        let crc = s.crc.finalize();
        s.out.write_all(&crc.to_le_bytes()).map_err(io)?;
        let file = s.out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Ok((len, crc))
    }

    /// Writes the header and nodes `0..n`. With `prefix`, only the READY flag is kept and a
    /// link to a node from `n` on is an `InvalidData` error.
    fn write_body<W: Write>(&self, s: &mut Sink<W>, n: usize, prefix: bool) -> std::io::Result<()> {
        let c = &self.config;
        s.put(MAGIC)?;
        s.put(&VERSION.to_le_bytes())?;
        s.put(&(c.dim as u32).to_le_bytes())?;
        s.put(&(c.capacity as u64).to_le_bytes())?;
        let quant = match c.quantization {
            Quantization::None => 0u8,
            Quantization::Int8 => 1,
        };
        s.put(&[c.metric.code(), quant, 0, 0])?;
        s.put(&(c.m as u32).to_le_bytes())?;
        s.put(&(c.ef_construction as u32).to_le_bytes())?;
        s.put(&c.seed.to_le_bytes())?;
        s.put(&(n as u64).to_le_bytes())?;
        s.put(&self.entry.load(Ordering::Acquire).to_le_bytes())?;
        let ids = 0..n as u32;
        let keep = if prefix { READY } else { READY | DELETED };
        let flags: Vec<u8> = ids.clone().map(|i| self.graph.flags(i) & keep).collect();
        s.put(&flags)?;
        let levels: Vec<u8> = ids.clone().map(|i| self.graph.level(i) as u8).collect();
        s.put(&levels)?;
        let mut buf = Vec::with_capacity(c.dim * 4);
        for i in ids.clone() {
            buf.clear();
            if flags[i as usize] & READY != 0 {
                // SAFETY: the node is READY (flag loaded with Acquire above), so its row was
                // written and published and is no longer written.
                for x in unsafe { self.space.vector(i) } {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
            } else {
                // An unfinished insert may still be writing the row: save zeros instead.
                buf.resize(c.dim * 4, 0);
            }
            s.put(&buf)?;
        }
        let bound = if prefix { n as u32 } else { u32::MAX };
        for i in ids.clone() {
            self.put_links(s, i, 0, &mut buf, bound)?;
        }
        for i in ids {
            for level in 1..=levels[i as usize] as usize {
                self.put_links(s, i, level, &mut buf, bound)?;
            }
        }
        Ok(())
    }

    /// Writes exactly `max_links(level)` slots of `id` (padding with EMPTY if an unfinished
    /// insert has not yet created the list); a link to `bound` or above is an `InvalidData`
    /// error.
    fn put_links<W: Write>(
        &self,
        s: &mut Sink<W>,
        id: u32,
        level: usize,
        buf: &mut Vec<u8>,
        bound: u32,
    ) -> std::io::Result<()> {
        buf.clear();
        let mut links = Vec::with_capacity(self.graph.max_links(level));
        self.graph.read_links(id, level, &mut links);
        if let Some(x) = links.iter().find(|&&x| x >= bound) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("node {id} links to {x} on level {level}, outside the prefix of {bound}"),
            ));
        }
        for k in 0..self.graph.max_links(level) {
            let x = links.get(k).copied().unwrap_or(EMPTY);
            buf.extend_from_slice(&x.to_le_bytes());
        }
        s.put(buf)
    }

    /// Loads an index saved by [`HnswIndex::save`], using the kernels detected for this CPU.
    ///
    /// # Errors
    /// [`IndexError::Io`] if the file cannot be opened or read;
    /// [`IndexError::CorruptSnapshot`] if it is truncated, corrupt, or of another format
    /// version; [`IndexError::OutOfMemory`] if the index cannot be allocated.
    pub fn load(path: &Path) -> Result<HnswIndex, IndexError> {
        Self::load_with_regions(path, &MappedRegions)
    }

    /// Loads an index saved by [`HnswIndex::save`] into memory from `source` (for example
    /// [`NodeRegions::bind(node)`](crate::index::NodeRegions::bind): the loaded index is then
    /// bound to that node, every part of it), using the kernels detected for this CPU.
    ///
    /// # Errors
    /// As for [`HnswIndex::load`], plus [`IndexError::TooLarge`] when the capacity in the header
    /// needs more memory than this machine has (checked before anything is allocated), and
    /// whatever `source` returns.
    pub fn load_with_regions(path: &Path, regions: &dyn RegionSource) -> Result<HnswIndex, IndexError> {
        let io = |source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        };
        // The file is read, not mapped: a mapped file that another process truncates while it
        // is mapped raises SIGBUS on the next touch of a vanished page, which no check here
        // could catch. Read into memory, a shrinking file is at worst a short read, reported
        // as a truncated snapshot. The bytes are copied out once more as they are loaded, so a
        // load peaks at about twice the file; the file may be no larger than this machine's
        // memory (checked before reading), and a device or FIFO is refused.
        let limit = u64::try_from(crate::index::limits::machine_memory_bytes()).unwrap_or(u64::MAX);
        let bytes = crate::bounded_read::read_regular(path, limit).map_err(|e| match e {
            crate::bounded_read::BoundedReadError::Io(source) => io(source),
            other => IndexError::CorruptSnapshot {
                path: path.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
        Reader {
            bytes: &bytes,
            pos: 0,
            path: path.to_path_buf(),
        }
        .load(regions)
    }
}

/// A cursor over the mapped snapshot.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: PathBuf,
}

impl Reader<'_> {
    fn corrupt(&self, reason: impl Into<String>) -> IndexError {
        IndexError::CorruptSnapshot {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, len: usize) -> Result<&[u8], IndexError> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| self.corrupt(format!("truncated at byte {}", self.bytes.len())))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    // tidy: long-fn — the file format read field by field, each check beside its field
    fn load(mut self, regions: &dyn RegionSource) -> Result<HnswIndex, IndexError> {
        let total = self.bytes.len();
        if total < HEADER_BYTES + 4 {
            return Err(self.corrupt(format!(
                "truncated: {total} bytes, the header alone needs {}",
                HEADER_BYTES + 4
            )));
        }
        if self.take(8)? != MAGIC {
            return Err(self.corrupt("not a Locus HNSW snapshot (bad magic)"));
        }
        let version = self.u32()?;
        if version != VERSION {
            return Err(self.corrupt(format!(
                "format version {version}; this build reads version {VERSION}"
            )));
        }
        let body = &self.bytes[..total - 4];
        let mut stored = [0u8; 4];
        stored.copy_from_slice(&self.bytes[total - 4..]);
        if crc32fast::hash(body) != u32::from_le_bytes(stored) {
            return Err(self.corrupt("checksum mismatch (file truncated or corrupted)"));
        }
        self.bytes = body;

        let dim = self.u32()? as usize;
        let capacity = self.u64()?;
        let codes = self.take(4)?.to_vec();
        let m = self.u32()? as usize;
        let ef_construction = self.u32()? as usize;
        let seed = self.u64()?;
        let n = self.u64()?;
        let entry = self.u64()?;
        let metric =
            Metric::from_code(codes[0]).ok_or_else(|| self.corrupt(format!("metric code {}", codes[0])))?;
        let quantization = match codes[1] {
            0 => Quantization::None,
            1 => Quantization::Int8,
            q => return Err(self.corrupt(format!("quantisation code {q}"))),
        };
        if n > capacity || capacity >= u64::from(u32::MAX) {
            return Err(self.corrupt(format!("{n} ids used of capacity {capacity}")));
        }
        let (n, capacity) = (n as usize, capacity as usize);
        // The rest of the file must hold at least the fixed-size sections; checked before any
        // allocation so a forged header cannot request a huge index.
        let fixed = n
            .checked_mul(2 + dim.saturating_mul(4) + (2 * m).saturating_mul(4))
            .filter(|&b| b <= self.bytes.len() - self.pos)
            .ok_or_else(|| self.corrupt("sections are longer than the file"))?;
        let _ = fixed;
        let config = HnswConfig {
            dim,
            capacity,
            metric,
            m,
            ef_construction,
            seed,
            quantization,
        };
        config
            .validate()
            .map_err(|e| self.corrupt(format!("impossible parameters: {e}")))?;
        // Upper-level blocks: those of the saved nodes (the levels section, read in place: the
        // length check above covers it) plus the reserve for the ids not used yet.
        let saved_levels: usize = self.bytes[self.pos + n..self.pos + 2 * n]
            .iter()
            .map(|&l| usize::from(l))
            .sum();
        let upper_levels = saved_levels.saturating_add(upper_levels_for(capacity - n, m));
        // The file justifies the ids it holds plus a bounded reserve for growth: a header cannot
        // make a few bytes of file build an index sized for hundreds of millions of nodes (whose
        // per-node state is initialised, hence touched, at build). Found by the `snapshot` fuzz
        // target (a 155-byte file whose load took over 2 GiB).
        // First what this machine can hold (a typed `TooLarge`), then what the file justifies.
        config.check_fits(upper_levels)?;
        let reserve = n.max(MAX_UNJUSTIFIED_RESERVE);
        if capacity - n > reserve {
            return Err(self.corrupt(format!(
                "capacity {capacity} reserves more than the file justifies ({n} ids stored, at most {reserve} more)"
            )));
        }
        // `build` checks the capacity against this machine's memory before allocating.
        let index = HnswIndex::build(config, *Kernels::try_detect()?, regions, upper_levels).map_err(
            |e| match e {
                IndexError::TooLarge { .. }
                | IndexError::NodeMemory { .. }
                | IndexError::OutOfMemory { .. } => e,
                other => self.corrupt(format!("impossible parameters: {other}")),
            },
        )?;

        let flags = self.take(n)?.to_vec();
        if flags.iter().any(|&f| f & !(READY | DELETED) != 0) {
            return Err(self.corrupt("unknown node flag bits"));
        }
        let levels = self.take(n)?.to_vec();
        if levels.iter().any(|&l| l as usize > MAX_LEVEL) {
            return Err(self.corrupt(format!("a node level above {MAX_LEVEL}")));
        }
        if entry != NO_ENTRY {
            let (id, level) = ((entry & 0xffff_ffff) as usize, (entry >> 32) as usize);
            if id >= n || levels[id] as usize != level {
                return Err(self.corrupt("entry point names no node of its level"));
            }
        } else if n > 0 && flags.iter().any(|&f| f & READY != 0) {
            return Err(self.corrupt("nodes present but no entry point"));
        }

        for (id, &level) in levels.iter().enumerate() {
            let raw = self.take(dim * 4)?;
            let v: Vec<f32> = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(self.corrupt(format!("vector {id} is not finite")));
            }
            let p = index.space.prepare_stored(v);
            // SAFETY: the index is new and private to this function; no other thread sees it.
            unsafe { index.space.write(id as u32, &p) };
            if index.graph.init_node(id as u32, level as usize) != level as usize {
                return Err(self.corrupt("more upper levels than the header's capacity allows"));
            }
        }
        let mut links = Vec::with_capacity(2 * m);
        let mut read_list = |r: &mut Self, id: usize, level: usize| -> Result<(), IndexError> {
            let slots = index.graph.max_links(level);
            links.clear();
            let raw = r.take(slots * 4)?;
            for b in raw.chunks_exact(4) {
                let x = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if x == EMPTY {
                    break;
                }
                if x as usize >= n || levels[x as usize] < level as u8 {
                    return Err(r.corrupt(format!("node {id} links to {x}, which is not on level {level}")));
                }
                links.push(x);
            }
            index.graph.write_links(id as u32, level, &links);
            Ok(())
        };
        for id in 0..n {
            read_list(&mut self, id, 0)?;
        }
        for (id, &top) in levels.iter().enumerate() {
            for level in 1..=top as usize {
                read_list(&mut self, id, level)?;
            }
        }
        if self.pos != self.bytes.len() {
            return Err(self.corrupt(format!(
                "{} unexpected bytes after the sections",
                self.bytes.len() - self.pos
            )));
        }
        let mut live = 0;
        for (id, &f) in flags.iter().enumerate() {
            index.graph.set_flags(id as u32, f);
            if f & (READY | DELETED) == READY {
                live += 1;
            }
        }
        index.next_id.store(n as u32, Ordering::Release);
        index.live.store(live, Ordering::Release);
        index.entry.store(entry, Ordering::Release);
        Ok(index)
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::super::{HnswConfig, HnswIndex};
    use crate::index::{IndexError, Metric};

    use crate::rng::test_vector as vector;

    /// 80 staged nodes, the first 50 linked: the prefix of 50 saves and loads with the same
    /// answers and stages its next node at 50; a prefix holding an unlinked node, or whose
    /// nodes link past it, is refused.
    #[test]
    fn a_linked_prefix_saves_and_loads_and_anything_else_is_refused() {
        let dim = 8;
        let index = HnswIndex::new(HnswConfig::new(dim, 128, Metric::InnerProduct)).unwrap();
        for i in 0..80 {
            index.stage(&vector(i, dim)).unwrap();
        }
        for i in 0..50 {
            index.link_staged(i, 0).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.hnsw");
        let (len, crc) = index.save_linked_prefix(&path, 50).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, len);
        assert_eq!(bytes[bytes.len() - 4..], crc.to_le_bytes());
        let loaded = HnswIndex::load(&path).unwrap();
        assert_eq!(
            (loaded.ids_used(), loaded.len(), loaded.capacity()),
            (50, 50, 128)
        );
        for q in 100..120 {
            let q = vector(q, dim);
            let a: Vec<u32> = index.search(&q, 5, 64).unwrap().iter().map(|n| n.id).collect();
            let b: Vec<u32> = loaded.search(&q, 5, 64).unwrap().iter().map(|n| n.id).collect();
            assert_eq!(a, b);
        }
        assert_eq!(loaded.stage(&vector(50, dim)).unwrap(), 50);
        loaded.link_staged(50, 0).unwrap();

        let refused = |r: Result<(u64, u32), IndexError>| matches!(r, Err(IndexError::InvalidInput { .. }));
        assert!(
            refused(index.save_linked_prefix(&path, 51)),
            "node 50 is not linked"
        );
        assert!(refused(index.save_linked_prefix(&path, 81)), "past the ids used");
        index.link_staged(70, 0).unwrap();
        assert!(
            refused(index.save_linked_prefix(&path, 50)),
            "node 70 is linked: prefix nodes link to it"
        );
    }
}
