//! A power-loss simulator for the durability layer's I/O seam ([`locus::durability::Storage`]).
//!
//! [`RecordingStorage`] performs every operation on the real file system *and* records it:
//! creates, appends, cuts, fsyncs, renames, removes and directory fsyncs, in the order they
//! happened. [`Trace::materialise`] then builds the directory a power loss at any point of that
//! trace may leave, as ext4 / xfs may:
//! - each file holds its content at its last fsync, plus any subset of the 4 KiB pages written
//!   (or cut) since — each such page new, old, or torn inside (a prefix of the new bytes over the
//!   old ones, or the reverse) — and a length anywhere between its synced and its current one
//!   (bytes of a lost page below that length read as the old content or zeros);
//! - the directory holds its entries at its last fsync plus a prefix of the creates, renames and
//!   removes made since (a journal commits them in order).
//!
//! A test directory must start empty: every file in it has to come through the seam.
#![allow(dead_code)]

use locus::durability::{OsStorage, Storage, StorageFile};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The page size the simulator loses, keeps or tears pages at.
pub const PAGE: usize = 4096;

/// One recorded operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// A file was created under `name` (inode `inode`).
    Create { name: String, inode: u64 },
    /// `bytes` were written at `offset` of `inode`.
    Write { inode: u64, offset: u64, bytes: Vec<u8> },
    /// `inode` was cut (or extended) to `len`.
    SetLen { inode: u64, len: u64 },
    /// `inode` was fsynced (fdatasync or fsync).
    Sync { inode: u64 },
    /// `from` was renamed to `to`.
    Rename { from: String, to: String },
    /// `name` was removed.
    Remove { name: String },
    /// The directory was fsynced.
    SyncDir,
}

#[derive(Debug, Default)]
struct Log {
    ops: Vec<Op>,
    /// Name → inode, as the live directory has it.
    names: HashMap<String, u64>,
    /// Current length per inode (appends go there).
    lens: HashMap<u64, u64>,
    next_inode: u64,
}

/// The recorded trace, shared by the storage and its files.
#[derive(Debug, Clone, Default)]
pub struct Trace(Arc<Mutex<Log>>);

impl Trace {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many operations were recorded so far: a crash point.
    pub fn position(&self) -> usize {
        self.lock().ops.len()
    }

    /// A copy of the operations recorded so far.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }
}

/// The recording seam over the real file system (see the module docs).
#[derive(Debug)]
pub struct RecordingStorage {
    dir: PathBuf,
    trace: Trace,
    sync_delay: std::time::Duration,
}

impl RecordingStorage {
    /// Records the operations on files directly inside `dir` (which must be empty).
    pub fn new(dir: &Path) -> (Arc<RecordingStorage>, Trace) {
        Self::with_sync_delay(dir, std::time::Duration::ZERO)
    }

    /// As [`new`](Self::new), with every file fsync taking at least `delay` (a disk's flush
    /// time: on a memory file system groups would otherwise never form).
    pub fn with_sync_delay(dir: &Path, delay: std::time::Duration) -> (Arc<RecordingStorage>, Trace) {
        let trace = Trace::default();
        let storage = Arc::new(RecordingStorage {
            dir: dir.to_path_buf(),
            trace: trace.clone(),
            sync_delay: delay,
        });
        (storage, trace)
    }

    fn name(&self, path: &Path) -> io::Result<String> {
        if path.parent() != Some(self.dir.as_path()) {
            return Err(io::Error::other(format!(
                "{} is outside the recorded directory",
                path.display()
            )));
        }
        Ok(path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default())
    }
}

#[derive(Debug)]
struct RecordingFile {
    inode: u64,
    real: Box<dyn StorageFile>,
    trace: Trace,
    sync_delay: std::time::Duration,
}

impl Write for RecordingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut log = self.trace.lock();
        self.real.write_all(buf)?;
        let len = log.lens.entry(self.inode).or_insert(0);
        let offset = *len;
        *len += buf.len() as u64;
        log.ops.push(Op::Write {
            inode: self.inode,
            offset,
            bytes: buf.to_vec(),
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.real.flush()
    }
}

impl StorageFile for RecordingFile {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut log = self.trace.lock();
        self.real.set_len(len)?;
        log.lens.insert(self.inode, len);
        log.ops.push(Op::SetLen {
            inode: self.inode,
            len,
        });
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        std::thread::sleep(self.sync_delay);
        self.real.sync_data()?;
        self.trace.lock().ops.push(Op::Sync { inode: self.inode });
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        std::thread::sleep(self.sync_delay);
        self.real.sync_all()?;
        self.trace.lock().ops.push(Op::Sync { inode: self.inode });
        Ok(())
    }
}

impl Storage for RecordingStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let name = self.name(path)?;
        let mut log = self.trace.lock();
        let real = OsStorage.create_new(path)?;
        let inode = log.next_inode;
        log.next_inode += 1;
        log.names.insert(name.clone(), inode);
        log.lens.insert(inode, 0);
        log.ops.push(Op::Create { name, inode });
        Ok(Box::new(RecordingFile {
            inode,
            real,
            trace: self.trace.clone(),
            sync_delay: self.sync_delay,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let name = self.name(path)?;
        let log = self.trace.lock();
        let Some(&inode) = log.names.get(&name) else {
            return Err(io::Error::other(format!(
                "{name} was not created through the seam"
            )));
        };
        let real = OsStorage.open_append(path)?;
        Ok(Box::new(RecordingFile {
            inode,
            real,
            trace: self.trace.clone(),
            sync_delay: self.sync_delay,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_name, to_name) = (self.name(from)?, self.name(to)?);
        let mut log = self.trace.lock();
        OsStorage.rename(from, to)?;
        if let Some(inode) = log.names.remove(&from_name) {
            log.names.insert(to_name.clone(), inode);
        }
        log.ops.push(Op::Rename {
            from: from_name,
            to: to_name,
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let name = self.name(path)?;
        let mut log = self.trace.lock();
        OsStorage.remove_file(path)?;
        log.names.remove(&name);
        log.ops.push(Op::Remove { name });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut log = self.trace.lock();
        OsStorage.sync_dir(dir)?;
        log.ops.push(Op::SyncDir);
        Ok(())
    }
}

/// A small deterministic generator (xorshift64*), so a failing crash state can be replayed
/// from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Default, Clone)]
struct Inode {
    /// Content at the last fsync.
    synced: Vec<u8>,
    /// Content now.
    current: Vec<u8>,
    /// Pages written or cut since the last fsync.
    dirty: std::collections::BTreeSet<usize>,
}

/// What a crash state holds, for the test's report.
#[derive(Debug, Default, Clone, Copy)]
pub struct CrashShape {
    /// Files whose content differs from their current content (pages lost or torn).
    pub files_damaged: usize,
    /// Directory operations since the last directory fsync that were lost.
    pub dir_ops_lost: usize,
}

impl Trace {
    /// Writes into `out` (an empty directory) the state a power loss right after the first
    /// `point` operations may leave, choosing pages and directory operations with `rng`.
    pub fn materialise(&self, point: usize, rng: &mut Rng, out: &Path) -> io::Result<CrashShape> {
        let ops = {
            let log = self.lock();
            log.ops[..point.min(log.ops.len())].to_vec()
        };
        let mut inodes: HashMap<u64, Inode> = HashMap::new();
        let mut live: BTreeMap<String, u64> = BTreeMap::new();
        let mut synced_names: BTreeMap<String, u64> = BTreeMap::new();
        let mut pending: Vec<Op> = Vec::new();
        for op in ops {
            match &op {
                Op::Create { name, inode } => {
                    inodes.insert(*inode, Inode::default());
                    live.insert(name.clone(), *inode);
                    pending.push(op.clone());
                }
                Op::Write { inode, offset, bytes } => {
                    let node = inodes.entry(*inode).or_default();
                    let start = *offset as usize;
                    let end = start + bytes.len();
                    if node.current.len() < end {
                        node.current.resize(end, 0);
                    }
                    node.current[start..end].copy_from_slice(bytes);
                    for page in start / PAGE..end.div_ceil(PAGE) {
                        node.dirty.insert(page);
                    }
                }
                Op::SetLen { inode, len } => {
                    let node = inodes.entry(*inode).or_default();
                    let old = node.current.len();
                    let new = *len as usize;
                    node.current.resize(new, 0);
                    let (lo, hi) = (old.min(new), old.max(new));
                    for page in lo / PAGE..hi.div_ceil(PAGE).max(lo / PAGE + 1) {
                        node.dirty.insert(page);
                    }
                }
                Op::Sync { inode } => {
                    let node = inodes.entry(*inode).or_default();
                    node.synced = node.current.clone();
                    node.dirty.clear();
                }
                Op::Rename { from, to } => {
                    if let Some(i) = live.remove(from) {
                        live.insert(to.clone(), i);
                    }
                    pending.push(op.clone());
                }
                Op::Remove { name } => {
                    live.remove(name);
                    pending.push(op.clone());
                }
                Op::SyncDir => {
                    synced_names = live.clone();
                    pending.clear();
                }
            }
        }
        // The directory: its synced entries plus a prefix of what happened since.
        let kept = rng.below(pending.len() as u64 + 1) as usize;
        let mut names = synced_names;
        for op in &pending[..kept] {
            match op {
                Op::Create { name, inode } => {
                    names.insert(name.clone(), *inode);
                }
                Op::Rename { from, to } => {
                    if let Some(i) = names.remove(from) {
                        names.insert(to.clone(), i);
                    }
                }
                Op::Remove { name } => {
                    names.remove(name);
                }
                _ => {}
            }
        }
        let mut shape = CrashShape {
            files_damaged: 0,
            dir_ops_lost: pending.len() - kept,
        };
        for (name, inode) in names {
            let node = inodes.get(&inode).cloned().unwrap_or_default();
            let bytes = crash_content(&node, rng);
            if bytes != node.current {
                shape.files_damaged += 1;
            }
            std::fs::write(out.join(name), bytes)?;
        }
        Ok(shape)
    }
}

/// One file's content after the crash (see the module docs).
fn crash_content(node: &Inode, rng: &mut Rng) -> Vec<u8> {
    if node.dirty.is_empty() {
        return node.synced.clone();
    }
    let (synced, current) = (node.synced.len(), node.current.len());
    let (lo, hi) = (synced.min(current), synced.max(current));
    // The length: the synced one, the current one, or anything between (a size update that
    // reached the journal without all of its data, or part of an extension).
    let len = match rng.below(4) {
        0 => synced,
        1 => current,
        _ => lo + rng.below((hi - lo) as u64 + 1) as usize,
    };
    let old_at = |i: usize| node.synced.get(i).copied().unwrap_or(0);
    let new_at = |i: usize| node.current.get(i).copied().unwrap_or(0);
    let mut out: Vec<u8> = (0..len).map(old_at).collect();
    for &page in &node.dirty {
        let start = page * PAGE;
        if start >= len {
            continue;
        }
        let end = (start + PAGE).min(len);
        match rng.below(4) {
            // Lost: the old bytes (zeros past the synced length).
            0 => {}
            // Torn: the first part new, the rest old — or the other way round.
            1 | 2 => {
                let cut = start + rng.below((end - start) as u64 + 1) as usize;
                let new_first = rng.below(2) == 0;
                for (i, b) in out.iter_mut().enumerate().take(end).skip(start) {
                    if (i < cut) == new_first {
                        *b = new_at(i);
                    }
                }
            }
            // Written.
            _ => {
                for (i, b) in out.iter_mut().enumerate().take(end).skip(start) {
                    *b = new_at(i);
                }
            }
        }
    }
    out
}
