//! The vectors of an index and the distances between them: f32 rows, an optional int8
//! scalar-quantised copy, and the metric.
//!
//! **Quantisation.** With [`Quantization::Int8`] every vector also gets an i8 row: each
//! component is `round(x / s)` with the per-vector scale `s = max|x| / 127`, so the dot product
//! of two vectors is about `s_a · s_b · Σ qa·qb`, an exact integer sum (the i8 kernels). The i8
//! row (plus its scale and, for L2, the exact squared norm, stored in the same row) is a quarter
//! of the f32 row's memory traffic; the graph walk uses it, and the final candidates are
//! re-ranked with exact f32 distances.

use super::IndexError;
use super::distance::{Kernels, Metric, prefetch_lines};
use super::storage::{ROW_ALIGN, RegionSource, RowStore, round_to_line};

/// Whether the graph walk uses a compressed copy of the vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Quantization {
    /// Exact f32 distances everywhere.
    None,
    /// Int8 scalar quantisation (one scale per vector) for construction and the search walk;
    /// the final candidates are re-ranked with f32 distances.
    Int8,
}

/// A vector prepared for distance computations (normalised for cosine, quantised if needed).
pub(crate) struct Prepared {
    pub(crate) f32s: Vec<f32>,
    q: Vec<i8>,
    q_scale: f32,
    sq_norm: f32,
}

/// Rows of f32 (and optionally i8) vectors plus the metric and the kernels.
pub(crate) struct Space {
    dim: usize,
    metric: Metric,
    kernels: Kernels,
    f32_rows: RowStore,
    /// i8 rows: the scale and the squared norm as f32, then `dim` i8. The header comes first so
    /// that the first cache line of a row, which the walk prefetches, holds it.
    i8_rows: Option<RowStore>,
    /// Cache lines of one walk row (i8 row with quantisation, f32 row without), for prefetch.
    walk_lines: usize,
}

/// Bytes before the i8 values of a row (scale and squared norm).
const I8_HEADER: usize = 8;

impl Space {
    pub(crate) fn new(
        dim: usize,
        capacity: usize,
        metric: Metric,
        quantization: Quantization,
        kernels: Kernels,
        source: &dyn RegionSource,
    ) -> Result<Self, IndexError> {
        let overflow = IndexError::OutOfMemory { bytes: usize::MAX };
        let f32_row = round_to_line(
            dim.checked_mul(4)
                .ok_or(IndexError::OutOfMemory { bytes: usize::MAX })?,
        )
        .ok_or(IndexError::OutOfMemory { bytes: usize::MAX })?;
        let f32_rows = RowStore::new(capacity, f32_row, source)?;
        let (i8_rows, walk_bytes) = match quantization {
            Quantization::None => (None, f32_row),
            Quantization::Int8 => {
                let row = round_to_line(dim.checked_add(I8_HEADER).ok_or(overflow)?)
                    .ok_or(IndexError::OutOfMemory { bytes: usize::MAX })?;
                (Some(RowStore::new(capacity, row, source)?), row)
            }
        };
        Ok(Space {
            dim,
            metric,
            kernels,
            f32_rows,
            i8_rows,
            walk_lines: walk_bytes / ROW_ALIGN,
        })
    }

    pub(crate) fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    pub(crate) fn quantization(&self) -> Quantization {
        if self.i8_rows.is_some() {
            Quantization::Int8
        } else {
            Quantization::None
        }
    }

    /// The regions of the rows, named.
    pub(crate) fn regions(&self) -> Vec<(&'static str, &dyn super::storage::Region)> {
        let mut out = vec![("f32 rows", self.f32_rows.region())];
        if let Some(q) = &self.i8_rows {
            out.push(("int8 rows", q.region()));
        }
        out
    }

    /// Bytes held by the rows.
    pub(crate) fn bytes(&self) -> usize {
        self.f32_rows.bytes() + self.i8_rows.as_ref().map_or(0, RowStore::bytes)
    }

    /// Checks a vector: right length, finite, and (for cosine) not zero.
    pub(crate) fn validate(&self, v: &[f32]) -> Result<(), IndexError> {
        if v.len() != self.dim {
            return Err(IndexError::DimensionMismatch {
                expected: self.dim,
                got: v.len(),
            });
        }
        if let Some((position, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(IndexError::NonFinite { position, value });
        }
        if self.metric == Metric::Cosine && v.iter().all(|&x| x == 0.0) {
            return Err(IndexError::InvalidInput {
                what: "zero vector has no cosine distance".into(),
            });
        }
        Ok(())
    }

    /// Prepares a validated vector: normalised for cosine, quantised if the space is.
    pub(crate) fn prepare(&self, v: &[f32]) -> Prepared {
        let mut f32s = v.to_vec();
        if self.metric == Metric::Cosine {
            let norm = self.kernels.dot(&f32s, &f32s).sqrt();
            if norm > 0.0 {
                f32s.iter_mut().for_each(|x| *x /= norm);
            }
        }
        self.prepare_stored(f32s)
    }

    /// Prepares a vector exactly as it is to be stored (already normalised for cosine), e.g.
    /// one read back from a snapshot, so that a round trip keeps every bit.
    pub(crate) fn prepare_stored(&self, f32s: Vec<f32>) -> Prepared {
        let sq_norm = self.kernels.dot(&f32s, &f32s);
        let (q, q_scale) = if self.i8_rows.is_some() {
            quantize(&f32s)
        } else {
            (Vec::new(), 0.0)
        };
        Prepared {
            f32s,
            q,
            q_scale,
            sq_norm,
        }
    }

    /// Writes a prepared vector into row `id`.
    ///
    /// # Safety
    /// `id < capacity`, and the caller owns row `id` exclusively (claimed, not yet published).
    pub(crate) unsafe fn write(&self, id: u32, p: &Prepared) {
        // SAFETY: the caller owns row `id`; `dim` f32 fit the row by construction.
        unsafe { self.f32_rows.row_mut::<f32>(id, self.dim) }.copy_from_slice(&p.f32s);
        if let Some(rows) = &self.i8_rows {
            // SAFETY: as above; the i8 row holds `I8_HEADER + dim` bytes by construction.
            let bytes = unsafe { rows.row_mut::<u8>(id, I8_HEADER + self.dim) };
            bytes[..4].copy_from_slice(&p.q_scale.to_ne_bytes());
            bytes[4..8].copy_from_slice(&p.sq_norm.to_ne_bytes());
            for (b, &q) in bytes[I8_HEADER..].iter_mut().zip(&p.q) {
                *b = q as u8;
            }
        }
    }

    /// The f32 row of `id`.
    ///
    /// # Safety
    /// `id` was published (see [`super::storage`]).
    #[inline(always)]
    pub(crate) unsafe fn vector(&self, id: u32) -> &[f32] {
        // SAFETY: published rows are no longer written; `dim` f32 fit the row.
        unsafe { self.f32_rows.row::<f32>(id, self.dim) }
    }

    /// The i8 row of `id` with its scale and squared norm.
    ///
    /// # Safety
    /// As for [`Space::vector`]; the space is quantised.
    #[inline(always)]
    unsafe fn quantized(&self, rows: &RowStore, id: u32) -> (&[i8], f32, f32) {
        // SAFETY: published row; `I8_HEADER + dim` bytes fit it.
        let bytes = unsafe { rows.row::<u8>(id, I8_HEADER + self.dim) };
        let (head, values) = bytes.split_at(I8_HEADER);
        let scale = f32::from_ne_bytes([head[0], head[1], head[2], head[3]]);
        let sq_norm = f32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
        // SAFETY: the bytes after the header were written as i8 values; i8 and u8 share layout.
        let q = unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<i8>(), self.dim) };
        (q, scale, sq_norm)
    }

    /// Distance on the walk representation (i8 if quantised, else exact) from a prepared query.
    ///
    /// # Safety
    /// `id` was published.
    #[inline(always)]
    pub(crate) unsafe fn walk_distance(&self, p: &Prepared, id: u32) -> f32 {
        match &self.i8_rows {
            Some(rows) => {
                // SAFETY: forwarded contract.
                let (q, scale, sq_norm) = unsafe { self.quantized(rows, id) };
                let dot = self.kernels.dot_i8(&p.q, q) as f32 * (scale * p.q_scale);
                self.distance_from_dot(dot, p.sq_norm, sq_norm)
            }
            // SAFETY: forwarded contract.
            None => self.exact_distance(p, unsafe { self.vector(id) }),
        }
    }

    /// Walk distance between two stored vectors (used by the neighbour heuristic).
    ///
    /// # Safety
    /// Both ids were published, or are owned by the calling thread and fully written.
    #[inline(always)]
    pub(crate) unsafe fn walk_distance_between(&self, a: u32, b: u32) -> f32 {
        match &self.i8_rows {
            Some(rows) => {
                // SAFETY: forwarded contract.
                let (qa, sa, na) = unsafe { self.quantized(rows, a) };
                // SAFETY: forwarded contract.
                let (qb, sb, nb) = unsafe { self.quantized(rows, b) };
                let dot = self.kernels.dot_i8(qa, qb) as f32 * (sa * sb);
                self.distance_from_dot(dot, na, nb)
            }
            None => {
                // SAFETY: forwarded contract.
                let (va, vb) = unsafe { (self.vector(a), self.vector(b)) };
                self.metric_distance(va, vb)
            }
        }
    }

    /// Exact f32 distance from a prepared query to the vector `v`.
    #[inline(always)]
    pub(crate) fn exact_distance(&self, p: &Prepared, v: &[f32]) -> f32 {
        self.metric_distance(&p.f32s, v)
    }

    /// Exact distance of the index's metric (cosine vectors are stored normalised: inner product).
    #[inline(always)]
    fn metric_distance(&self, a: &[f32], b: &[f32]) -> f32 {
        match self.metric {
            Metric::L2 => self.kernels.l2_squared(a, b),
            Metric::InnerProduct | Metric::Cosine => 1.0 - self.kernels.dot(a, b),
        }
    }

    /// A distance from an (approximate) dot product and the two squared norms.
    #[inline(always)]
    fn distance_from_dot(&self, dot: f32, sq_a: f32, sq_b: f32) -> f32 {
        match self.metric {
            Metric::L2 => (sq_a + sq_b - 2.0 * dot).max(0.0),
            Metric::InnerProduct | Metric::Cosine => 1.0 - dot,
        }
    }

    /// Starts loading the f32 row of `id` into the cache.
    #[inline(always)]
    pub(crate) fn prefetch_exact(&self, id: u32, max_lines: usize) {
        prefetch_lines(
            self.f32_rows.row_ptr(id),
            max_lines.min(self.f32_rows.row_lines()),
        );
    }

    /// Starts loading the walk row of `id` into the cache.
    #[inline(always)]
    pub(crate) fn prefetch(&self, id: u32, max_lines: usize) {
        let lines = self.walk_lines.min(max_lines);
        match &self.i8_rows {
            Some(rows) => prefetch_lines(rows.row_ptr(id), lines),
            None => prefetch_lines(self.f32_rows.row_ptr(id), lines),
        }
    }
}

/// Per-vector symmetric int8 quantisation: `q = round(x · 127 / max|x|)`, scale `max|x| / 127`.
pub(crate) fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 0.0);
    }
    let inv = 127.0 / max;
    let q = v
        .iter()
        .map(|x| (x * inv).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, max / 127.0)
}
