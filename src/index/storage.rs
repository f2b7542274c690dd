//! Vector storage: fixed-size rows in one 64-byte-aligned region.
//!
//! The index asks a [`RegionSource`] for its large blocks, so the same code runs on anonymous
//! mappings ([`MappedRegions`] / [`AlignedRegion`], the default) or on a node-bound arena:
//! anything that hands out a zeroed, 64-byte-aligned block that never moves can implement
//! [`Region`]. Rows are padded to
//! whole cache lines, so every row starts on a line boundary and a distance never straddles more
//! lines than it must.
//!
//! Rows are written once, by the thread that claimed the row's id, *before* the id is published
//! to any other thread (the HNSW links are the publication, with release/acquire ordering);
//! after that they are only read. That discipline is what the `unsafe` accessors demand.

use std::sync::Arc;

use super::IndexError;
use super::hugepage;

/// The cache-line size rows are aligned and padded to.
pub const ROW_ALIGN: usize = 64;

/// A block of memory that holds an index's rows: zero-initialised, 64-byte aligned, fixed size,
/// never moved while it lives.
///
/// # Safety
/// Implementors must return from [`Region::as_ptr`] a pointer that is non-null, aligned to
/// [`ROW_ALIGN`], valid for reads and writes of [`Region::len`] bytes, zeroed at creation, and
/// unchanged for the life of the value.
pub unsafe trait Region: Send + Sync {
    /// The start of the block.
    fn as_ptr(&self) -> *mut u8;
    /// Its size in bytes.
    fn len(&self) -> usize;
    /// Whether the block is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`Region`] in an anonymous memory map (zeroed by the OS, page aligned), with transparent
/// huge pages requested where the platform has them: the graph walk touches rows at random, and
/// with 4 KiB pages nearly every row access would also miss the TLB.
pub struct AlignedRegion {
    map: memmap2::MmapMut,
    ptr: *mut u8,
    /// Whether the OS accepted the huge-page advice (always `false` off Linux).
    huge_pages: bool,
}

// SAFETY: the region owns its mapping exclusively; concurrent access to its bytes is governed
// by the row discipline of the stores built on it (write once before publication, then read).
unsafe impl Send for AlignedRegion {}
// SAFETY: as for Send; `&AlignedRegion` only exposes the pointer and the length.
unsafe impl Sync for AlignedRegion {}

impl AlignedRegion {
    /// A zeroed block of `bytes` bytes (at least one cache line).
    ///
    /// # Errors
    /// [`IndexError::OutOfMemory`] if the OS refuses the mapping.
    pub fn new(bytes: usize) -> Result<Self, IndexError> {
        let size = bytes.max(ROW_ALIGN);
        let mut map = memmap2::MmapMut::map_anon(size).map_err(|_| IndexError::OutOfMemory { bytes })?;
        let huge_pages = hugepage::advise(&map);
        let ptr = map.as_mut_ptr();
        debug_assert_eq!(ptr as usize % ROW_ALIGN, 0, "mappings are page aligned");
        Ok(AlignedRegion { map, ptr, huge_pages })
    }

    /// Whether transparent huge pages were requested successfully for this region.
    pub fn huge_pages(&self) -> bool {
        self.huge_pages
    }
}

// SAFETY: an anonymous mapping is zero-filled, page aligned (≥ 64), valid for `map.len()`
// bytes, and never moves or shrinks while `map` lives.
unsafe impl Region for AlignedRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Where an index gets its memory: vector rows, link lists, per-node state (levels, flags,
/// locks) and the visited sets of its walks. Implement this to put an index in other memory,
/// e.g. a node-bound arena ([`NodeRegions`](super::NodeRegions)).
pub trait RegionSource: Send + Sync {
    /// A zeroed region of at least `bytes` bytes.
    ///
    /// # Errors
    /// [`IndexError::OutOfMemory`] (or any other variant that says why) if none can be had.
    fn region(&self, bytes: usize) -> Result<Box<dyn Region>, IndexError>;

    /// A handle the index may keep, to take regions after creation (visited sets of new
    /// concurrent walks) and to build its compacted copy from the same memory. `None` (the
    /// default) means the index cannot keep this source: it then takes those regions from
    /// [`MappedRegions`] and says so in
    /// [`HnswIndex::degradations`](super::HnswIndex::degradations).
    fn shared(&self) -> Option<Arc<dyn RegionSource>> {
        None
    }
}

/// The default [`RegionSource`]: [`AlignedRegion`]s (anonymous maps with huge-page advice).
#[derive(Clone, Copy, Debug, Default)]
pub struct MappedRegions;

impl RegionSource for MappedRegions {
    fn region(&self, bytes: usize) -> Result<Box<dyn Region>, IndexError> {
        Ok(Box::new(AlignedRegion::new(bytes)?))
    }

    fn shared(&self) -> Option<Arc<dyn RegionSource>> {
        Some(Arc::new(MappedRegions))
    }
}

/// `len` values of `T` in one region, created by a function of their index and dropped with
/// the array: how per-node state (levels, flags, locks) lives in the index's memory rather than
/// on the heap of whichever thread built the index.
pub(crate) struct RegionArray<T> {
    region: Box<dyn Region>,
    len: usize,
    _values: std::marker::PhantomData<T>,
}

// SAFETY: the array owns its values (like a `Box<[T]>`), so it is Send/Sync when `T` is.
unsafe impl<T: Send> Send for RegionArray<T> {}
// SAFETY: as for Send; `&RegionArray<T>` only hands out `&[T]`.
unsafe impl<T: Sync> Sync for RegionArray<T> {}

impl<T> RegionArray<T> {
    /// `len` values `init(0)`, `init(1)`, … in a region from `source`.
    ///
    /// # Errors
    /// [`IndexError::OutOfMemory`] if the size overflows, or what `source` returns.
    pub(crate) fn new(
        source: &dyn RegionSource,
        len: usize,
        init: impl Fn(usize) -> T,
    ) -> Result<Self, IndexError> {
        const { assert!(align_of::<T>() <= ROW_ALIGN) };
        let bytes = len
            .checked_mul(size_of::<T>())
            .ok_or(IndexError::OutOfMemory { bytes: usize::MAX })?;
        let region = checked_region(source, bytes)?;
        let base = region.as_ptr().cast::<T>();
        for i in 0..len {
            // SAFETY: the region holds `len × size_of::<T>()` bytes (checked by
            // `checked_region`), aligned to ROW_ALIGN ≥ align_of::<T>() (asserted above), so
            // slot `i < len` is in bounds and aligned; nothing else refers to it yet.
            unsafe { base.add(i).write(init(i)) };
        }
        Ok(RegionArray {
            region,
            len,
            _values: std::marker::PhantomData,
        })
    }

    /// The region the values live in.
    pub(crate) fn region(&self) -> &dyn Region {
        &*self.region
    }
}

impl<T> std::ops::Deref for RegionArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `new` wrote all `len` values into the region, which lives as long as `self`
        // and is not moved; shared access through `&self` only.
        unsafe { std::slice::from_raw_parts(self.region.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T> Drop for RegionArray<T> {
    fn drop(&mut self) {
        // SAFETY: the `len` values were initialised by `new` and are dropped exactly once,
        // here; the region is freed after (it is a field, dropped when this returns).
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.region.as_ptr().cast::<T>(),
                self.len,
            ));
        }
    }
}

/// Asks `source` for `bytes` bytes and checks what it returns (size and alignment), so a faulty
/// source gives an error instead of out-of-bounds access.
pub(crate) fn checked_region(source: &dyn RegionSource, bytes: usize) -> Result<Box<dyn Region>, IndexError> {
    let region = source.region(bytes)?;
    if region.len() < bytes || region.as_ptr().is_null() || region.as_ptr() as usize % ROW_ALIGN != 0 {
        return Err(IndexError::InvalidInput {
            what: format!(
                "region source returned {} bytes at {:p}; needed {bytes} bytes aligned to {ROW_ALIGN}",
                region.len(),
                region.as_ptr()
            ),
        });
    }
    Ok(region)
}

/// Rounds `bytes` up to a whole number of cache lines.
pub(crate) fn round_to_line(bytes: usize) -> Option<usize> {
    bytes
        .checked_add(ROW_ALIGN - 1)
        .map(|b| b / ROW_ALIGN * ROW_ALIGN)
}

/// `capacity` rows of `row_bytes` (a multiple of 64) bytes each, in one region.
pub(crate) struct RowStore {
    region: Box<dyn Region>,
    base: *mut u8,
    row_bytes: usize,
    capacity: usize,
}

// SAFETY: the raw `base` pointer points into `region`, which is Send + Sync; row access follows
// the write-once-before-publication discipline described in the module docs.
unsafe impl Send for RowStore {}
// SAFETY: as for Send.
unsafe impl Sync for RowStore {}

impl RowStore {
    /// A store of `capacity` zeroed rows of `row_bytes` bytes from `source`.
    pub(crate) fn new(
        capacity: usize,
        row_bytes: usize,
        source: &dyn RegionSource,
    ) -> Result<Self, IndexError> {
        debug_assert_eq!(row_bytes % ROW_ALIGN, 0);
        let bytes = capacity
            .checked_mul(row_bytes)
            .ok_or(IndexError::OutOfMemory { bytes: usize::MAX })?;
        let region = checked_region(source, bytes)?;
        let base = region.as_ptr();
        Ok(RowStore {
            region,
            base,
            row_bytes,
            capacity,
        })
    }

    /// Bytes held by the region.
    pub(crate) fn bytes(&self) -> usize {
        self.region.len()
    }

    /// The region the rows live in.
    pub(crate) fn region(&self) -> &dyn Region {
        &*self.region
    }

    /// Cache lines per row.
    pub(crate) fn row_lines(&self) -> usize {
        self.row_bytes / ROW_ALIGN
    }

    /// The start of row `id` (for prefetching; never dereferenced here).
    #[inline(always)]
    pub(crate) fn row_ptr(&self, id: u32) -> *const u8 {
        debug_assert!((id as usize) < self.capacity);
        self.base.wrapping_add(id as usize * self.row_bytes)
    }

    /// Row `id` as `len` values of `T` (a plain number type: f32, i8).
    ///
    /// # Safety
    /// `id < capacity`, `len × size_of::<T>() ≤ row_bytes`, and no thread writes row `id` for
    /// the lifetime of the returned slice (the row was published, see the module docs).
    #[inline(always)]
    pub(crate) unsafe fn row<T>(&self, id: u32, len: usize) -> &[T] {
        debug_assert!((id as usize) < self.capacity && len * size_of::<T>() <= self.row_bytes);
        // SAFETY: in bounds of the region by the caller's contract; rows are 64-byte aligned
        // (≥ align_of T); the bytes were zero-initialised, so every bit pattern read is a valid
        // number; no concurrent writer by contract.
        unsafe { std::slice::from_raw_parts(self.row_ptr(id).cast::<T>(), len) }
    }

    /// Row `id` for writing.
    ///
    /// # Safety
    /// `id < capacity`, `len × size_of::<T>() ≤ row_bytes`, and the caller is the only thread
    /// touching row `id` until it publishes the id (it claimed the id and has not published it).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn row_mut<T>(&self, id: u32, len: usize) -> &mut [T] {
        debug_assert!((id as usize) < self.capacity && len * size_of::<T>() <= self.row_bytes);
        // SAFETY: in bounds and aligned as in `row`; exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.row_ptr(id).cast::<T>().cast_mut(), len) }
    }
}
