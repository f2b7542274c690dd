//! Snapshot files: caller-provided byte sections (index, graph, payloads, spaces…) with
//! checksums, plus the log position per shard that they cover.
//!
//! ```text
//! header   magic "LOCUSNAP" | format version u32 | dim u32 | shard_count u32 | reserved u32 (0)
//!          | snapshot id u64 | covered lsn u64 × shard_count | CRC-32 of the header so far, u32
//! section  "SECT" | name_len u16 | name (UTF-8) | data_len u64 | data CRC-32 u32
//!          | CRC-32 of this section header so far, u32 | data (data_len bytes)
//! footer   "LOCUSEND" | section_count u32 | CRC-32 of every section's data CRC in order, u32
//! ```
//!
//! "Covered lsn" for a shard is the sequence number of the first log record *not* reflected in
//! the sections: recovery replays that shard's log from there.
//!
//! [`SnapshotWriter`] writes `snap-<id>.snap.tmp`, fsyncs it, renames it to `snap-<id>.snap`,
//! fsyncs the directory, then points `MANIFEST` at it (itself temp + fsync + rename) and removes
//! older snapshots. A crash at any step leaves the previous manifest and snapshot intact.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::DurabilityError;
use super::fsutil::sync_dir_in;
use super::manifest::Manifest;
use super::segment::FORMAT_VERSION;
use super::storage::{OsStorage, Storage, StorageFile, remove_if_present};

const MAGIC: &[u8; 8] = b"LOCUSNAP";
const SECTION_TAG: &[u8; 4] = b"SECT";
const END_TAG: &[u8; 8] = b"LOCUSEND";
/// Most shards a snapshot header may list (bounds the header before it is allocated).
const MAX_SHARDS: u32 = 1 << 16;

/// A committed snapshot: what it covers. Pass it to
/// [`ShardWal::truncate_before`](super::ShardWal::truncate_before) to delete covered segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot's id (increasing).
    pub id: u64,
    /// Its file name inside the directory.
    pub file: String,
    /// The embedding dimension.
    pub dim: u32,
    /// Per shard, the first log sequence number the snapshot does not reflect.
    pub covered: Vec<u64>,
}

/// One named section of a loaded snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name the writer gave it.
    pub name: String,
    /// Its bytes (checksum verified).
    pub bytes: Vec<u8>,
}

/// A loaded, verified snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// What it covers.
    pub info: SnapshotInfo,
    /// Its sections, in the order they were written.
    pub sections: Vec<Section>,
}

impl Snapshot {
    /// The bytes of the section called `name`, if there is one.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.bytes.as_slice())
    }
}

/// Writes one snapshot; nothing is visible until [`commit`](Self::commit).
#[derive(Debug)]
pub struct SnapshotWriter {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    tmp: PathBuf,
    info: SnapshotInfo,
    out: BufWriter<Box<dyn StorageFile>>,
    crcs: Vec<u8>,
    sections: u32,
    committed: bool,
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.committed {
            // An abandoned snapshot leaves nothing behind (best effort; recovery also removes it).
            let _ = self.storage.remove_file(&self.tmp);
        }
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DurabilityError + 'a {
    move |e| DurabilityError::from_io(op, path, e)
}

/// The file name of snapshot `id`.
pub fn snapshot_name(id: u64) -> String {
    format!("snap-{id}.snap")
}

/// The id the next [`SnapshotWriter::create`] in `dir` will take (files that belong with that
/// snapshot, such as the engine's index files, are named after it before it is created).
///
/// # Errors
/// The manifest's errors if the current one cannot be read.
pub fn next_snapshot_id(dir: &Path) -> Result<u64, DurabilityError> {
    Ok(Manifest::read(dir)?.map_or(1, |m| m.snapshot_id + 1))
}

impl SnapshotWriter {
    /// Starts a snapshot of `dim`-dimensional state covering, per shard, the log records below
    /// `covered[shard]` (the values [`ShardWal::flush`](super::ShardWal::flush) returned).
    ///
    /// # Errors
    /// [`InvalidInput`](DurabilityError::InvalidInput) for no shards or too many; the manifest's
    /// errors if the current one cannot be read; I/O errors creating the temporary file.
    pub fn create(dir: &Path, dim: u32, covered: Vec<u64>) -> Result<SnapshotWriter, DurabilityError> {
        Self::create_in(Arc::new(OsStorage), dir, dim, covered)
    }

    /// As [`create`](Self::create), writing through `storage` (the tests' recording or failing
    /// seam; [`OsStorage`] in production).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_in(
        storage: Arc<dyn Storage>,
        dir: &Path,
        dim: u32,
        covered: Vec<u64>,
    ) -> Result<SnapshotWriter, DurabilityError> {
        if covered.is_empty() || covered.len() > MAX_SHARDS as usize {
            return Err(DurabilityError::InvalidInput {
                what: format!("{} shards (1..={MAX_SHARDS})", covered.len()),
            });
        }
        let id = next_snapshot_id(dir)?;
        let file = snapshot_name(id);
        let tmp = dir.join(format!("{file}.tmp"));
        remove_if_present(&*storage, &tmp).map_err(io("remove", &tmp))?;
        let f = storage.create_new(&tmp).map_err(io("create", &tmp))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let mut header = Vec::new();
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&dim.to_le_bytes());
        header.extend_from_slice(&(covered.len() as u32).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&id.to_le_bytes());
        for c in &covered {
            header.extend_from_slice(&c.to_le_bytes());
        }
        let crc = crc32fast::hash(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        out.write_all(&header).map_err(io("write", &tmp))?;
        Ok(SnapshotWriter {
            storage,
            dir: dir.to_path_buf(),
            tmp,
            info: SnapshotInfo {
                id,
                file,
                dim,
                covered,
            },
            out,
            crcs: Vec::new(),
            sections: 0,
            committed: false,
        })
    }

    /// The id this snapshot takes when committed.
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// Appends a section called `name` holding `bytes`.
    ///
    /// # Errors
    /// [`InvalidInput`](DurabilityError::InvalidInput) for an empty name or one over 255 bytes;
    /// I/O errors ([`StorageFull`](DurabilityError::StorageFull) when the disk is full).
    pub fn section(&mut self, name: &str, bytes: &[u8]) -> Result<(), DurabilityError> {
        if name.is_empty() || name.len() > 255 {
            return Err(DurabilityError::InvalidInput {
                what: format!("section name {name:?} must be 1..=255 bytes"),
            });
        }
        let data_crc = crc32fast::hash(bytes);
        let mut head = Vec::with_capacity(4 + 2 + name.len() + 8 + 4 + 4);
        head.extend_from_slice(SECTION_TAG);
        head.extend_from_slice(&(name.len() as u16).to_le_bytes());
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        head.extend_from_slice(&data_crc.to_le_bytes());
        let head_crc = crc32fast::hash(&head);
        head.extend_from_slice(&head_crc.to_le_bytes());
        self.out.write_all(&head).map_err(io("write", &self.tmp))?;
        self.out.write_all(bytes).map_err(io("write", &self.tmp))?;
        self.crcs.extend_from_slice(&data_crc.to_le_bytes());
        self.sections += 1;
        Ok(())
    }

    /// Finishes the file, makes it durable, and makes it the current snapshot; older snapshots
    /// are removed.
    ///
    /// # Errors
    /// I/O errors; on any error the previous snapshot stays current.
    pub fn commit(mut self) -> Result<SnapshotInfo, DurabilityError> {
        let mut footer = Vec::with_capacity(16);
        footer.extend_from_slice(END_TAG);
        footer.extend_from_slice(&self.sections.to_le_bytes());
        footer.extend_from_slice(&crc32fast::hash(&self.crcs).to_le_bytes());
        self.out.write_all(&footer).map_err(io("write", &self.tmp))?;
        self.out.flush().map_err(io("write", &self.tmp))?;
        self.out.get_mut().sync_all().map_err(io("fsync", &self.tmp))?;
        let path = self.dir.join(&self.info.file);
        self.storage
            .rename(&self.tmp, &path)
            .map_err(io("rename", &path))?;
        self.committed = true;
        sync_dir_in(&*self.storage, &self.dir)?;
        Manifest {
            snapshot_id: self.info.id,
            snapshot_file: self.info.file.clone(),
        }
        .write_in(&*self.storage, &self.dir)?;
        remove_older(&*self.storage, &self.dir, self.info.id)?;
        Ok(self.info.clone())
    }
}

/// Removes `snap-<id>.snap` files older than `keep`.
fn remove_older(storage: &dyn Storage, dir: &Path, keep: u64) -> Result<(), DurabilityError> {
    for entry in fs::read_dir(dir).map_err(io("read_dir", dir))? {
        let entry = entry.map_err(io("read_dir", dir))?;
        let name = entry.file_name();
        let id = name.to_str().and_then(|n| {
            n.strip_prefix("snap-")?
                .strip_suffix(".snap")?
                .parse::<u64>()
                .ok()
        });
        if id.is_some_and(|id| id < keep) {
            storage
                .remove_file(&entry.path())
                .map_err(io("remove", &entry.path()))?;
        }
    }
    sync_dir_in(storage, dir)
}

/// A bounds-checked reader over a snapshot file.
struct SnapReader {
    inner: BufReader<File>,
    path: PathBuf,
    pos: u64,
    len: u64,
}

impl SnapReader {
    fn corrupt(&self, what: impl Into<String>) -> DurabilityError {
        DurabilityError::Corrupt {
            path: self.path.clone(),
            offset: self.pos,
            what: what.into(),
        }
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, DurabilityError> {
        if n > self.len - self.pos {
            return Err(self.corrupt(format!(
                "{what}: {n} bytes needed, the file has {} left",
                self.len - self.pos
            )));
        }
        // Bounded by the file's remaining size, checked just above.
        let mut buf = vec![0u8; n as usize];
        self.inner.read_exact(&mut buf).map_err(io("read", &self.path))?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DurabilityError> {
        let v = self.bytes(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        Ok(a)
    }
}

/// Loads and verifies the snapshot at `path`: every checksum, the dimension and shard count.
///
/// # Errors
/// [`MissingFile`](DurabilityError::MissingFile) if it does not exist;
/// [`SnapshotChecksum`](DurabilityError::SnapshotChecksum) if a part fails its checksum;
/// [`Corrupt`](DurabilityError::Corrupt) if it is truncated or malformed;
/// [`UnsupportedVersion`](DurabilityError::UnsupportedVersion),
/// [`DimensionMismatch`](DurabilityError::DimensionMismatch),
/// [`ShardCountMismatch`](DurabilityError::ShardCountMismatch) for another shape.
// tidy: long-fn — the file format read section by section, each check beside what it checks
pub fn load(path: &Path, dim: u32, shards: u32) -> Result<Snapshot, DurabilityError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DurabilityError::MissingFile {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(DurabilityError::from_io("open", path, e)),
    };
    let len = file.metadata().map_err(io("stat", path))?.len();
    let mut r = SnapReader {
        inner: BufReader::with_capacity(1 << 20, file),
        path: path.to_path_buf(),
        pos: 0,
        len,
    };
    let checksum = |what: &str| DurabilityError::SnapshotChecksum {
        path: path.to_path_buf(),
        what: what.to_string(),
    };

    let fixed = r.bytes(32, "header")?;
    if &fixed[0..8] != MAGIC {
        return Err(r.corrupt("not a Locus snapshot (bad magic)"));
    }
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let count = u32_at(&fixed, 16);
    if count == 0 || count > MAX_SHARDS {
        return Err(r.corrupt(format!("shard count {count} is outside 1..={MAX_SHARDS}")));
    }
    let covered_bytes = r.bytes(8 * count as u64, "covered positions")?;
    let stored = u32::from_le_bytes(r.array("header checksum")?);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&fixed);
    hasher.update(&covered_bytes);
    if hasher.finalize() != stored {
        return Err(checksum("header"));
    }
    let version = u32_at(&fixed, 8);
    if version != FORMAT_VERSION {
        return Err(DurabilityError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let found_dim = u32_at(&fixed, 12);
    if found_dim != dim {
        return Err(DurabilityError::DimensionMismatch {
            path: path.to_path_buf(),
            expected: dim,
            found: found_dim,
        });
    }
    if count != shards {
        return Err(DurabilityError::ShardCountMismatch {
            path: path.to_path_buf(),
            expected: shards,
            found: count,
        });
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&fixed[24..32]);
    let covered = covered_bytes
        .chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        })
        .collect();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info = SnapshotInfo {
        id: u64::from_le_bytes(id),
        file: file_name,
        dim,
        covered,
    };

    let mut sections = Vec::new();
    let mut crcs = Vec::new();
    loop {
        let tag: [u8; 4] = r.array("section tag")?;
        if &tag == SECTION_TAG {
            let name_len: [u8; 2] = r.array("section name length")?;
            let name = r.bytes(u16::from_le_bytes(name_len) as u64, "section name")?;
            let data_len: [u8; 8] = r.array("section length")?;
            let data_crc: [u8; 4] = r.array("section checksum")?;
            let head_crc = u32::from_le_bytes(r.array("section header checksum")?);
            let mut h = crc32fast::Hasher::new();
            h.update(&tag);
            h.update(&name_len);
            h.update(&name);
            h.update(&data_len);
            h.update(&data_crc);
            let name = String::from_utf8_lossy(&name).into_owned();
            if h.finalize() != head_crc {
                return Err(checksum(&format!("the header of section {name:?}")));
            }
            let bytes = r.bytes(u64::from_le_bytes(data_len), &format!("section {name:?}"))?;
            if crc32fast::hash(&bytes) != u32::from_le_bytes(data_crc) {
                return Err(checksum(&format!("section {name:?}")));
            }
            crcs.extend_from_slice(&data_crc);
            sections.push(Section { name, bytes });
        } else {
            let rest: [u8; 4] = r.array("footer")?;
            if tag[..] != END_TAG[0..4] || rest[..] != END_TAG[4..8] {
                return Err(r.corrupt("expected a section or the footer"));
            }
            let n = u32::from_le_bytes(r.array("footer section count")?);
            let all = u32::from_le_bytes(r.array("footer checksum")?);
            if n as usize != sections.len() || all != crc32fast::hash(&crcs) {
                return Err(checksum("footer (sections missing or reordered)"));
            }
            if r.pos != r.len {
                return Err(r.corrupt("bytes after the footer"));
            }
            return Ok(Snapshot { info, sections });
        }
    }
}

/// Loads the snapshot the manifest in `dir` names; `Ok(None)` if there is no manifest.
///
/// # Errors
/// As [`load`], plus the manifest's own [`Corrupt`](DurabilityError::Corrupt) and
/// [`UnsupportedVersion`](DurabilityError::UnsupportedVersion).
pub fn load_current(dir: &Path, dim: u32, shards: u32) -> Result<Option<Snapshot>, DurabilityError> {
    let Some(manifest) = Manifest::read(dir)? else {
        return Ok(None);
    };
    let snap = load(&dir.join(&manifest.snapshot_file), dim, shards)?;
    if snap.info.id != manifest.snapshot_id {
        return Err(DurabilityError::Corrupt {
            path: dir.join(&manifest.snapshot_file),
            offset: 0,
            what: format!(
                "snapshot id {} but the manifest names id {}",
                snap.info.id, manifest.snapshot_id
            ),
        });
    }
    Ok(Some(snap))
}
