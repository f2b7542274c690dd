//! [`RowChunks`]: a shard's embeddings by slot, in fixed-size chunks that never move.
//!
//! A chunk is allocated and zero-filled by the thread that appends its first row: always one of
//! the shard's pinned workers, so under the kernel's default (local) policy its pages land on the
//! shard's node (first touch). Chunks are never reallocated, so growth copies nothing. The
//! whole structure sits behind the space's `RwLock`: rows are appended under the write lock and
//! read (scanned) under the read lock.

/// Rows per chunk: 1024 rows of 768 floats are 3 MiB, large enough that the allocator maps
/// fresh pages (so first touch decides placement) and small enough that a mostly empty chunk
/// wastes little. A guess, not measured.
const CHUNK_ROWS: usize = 1024;

/// Embeddings by slot.
#[derive(Debug)]
pub(crate) struct RowChunks {
    dim: usize,
    chunks: Vec<Box<[f32]>>,
    len: usize,
}

impl RowChunks {
    pub(crate) fn new(dim: usize) -> Self {
        Self {
            dim,
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Appends `row` (of `dim` floats) and returns its slot.
    pub(crate) fn push(&mut self, row: &[f32]) -> usize {
        let slot = self.len;
        let (c, r) = (slot / CHUNK_ROWS, slot % CHUNK_ROWS);
        if c == self.chunks.len() {
            self.chunks
                .push(vec![0.0; CHUNK_ROWS * self.dim].into_boxed_slice());
        }
        self.chunks[c][r * self.dim..(r + 1) * self.dim].copy_from_slice(&row[..self.dim]);
        self.len += 1;
        slot
    }

    /// The row of `slot` (`slot < len`).
    pub(crate) fn row(&self, slot: usize) -> &[f32] {
        let (c, r) = (slot / CHUNK_ROWS, slot % CHUNK_ROWS);
        &self.chunks[c][r * self.dim..(r + 1) * self.dim]
    }

    /// `(address, bytes)` of every chunk, for placement reports.
    pub(crate) fn extents(&self) -> Vec<(usize, usize)> {
        self.chunks
            .iter()
            .map(|c| (c.as_ptr() as usize, std::mem::size_of_val::<[f32]>(c)))
            .collect()
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.chunks.len() * CHUNK_ROWS * self.dim * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_across_chunk_boundaries() {
        let mut r = RowChunks::new(3);
        for i in 0..(CHUNK_ROWS + 5) {
            assert_eq!(r.push(&[i as f32, 1.0, 2.0]), i);
        }
        assert_eq!(r.row(CHUNK_ROWS + 4)[0], (CHUNK_ROWS + 4) as f32);
        assert_eq!(r.row(7), [7.0, 1.0, 2.0]);
        assert_eq!(r.extents().len(), 2);
    }
}
