//! Where an index's memory is: every part by name and address range, where its pages really are
//! (`move_pages`, through [`crate::alloc::placement_of`]), and what could not be put where the
//! index's region source wanted it ([`IndexDegradation`], reported as data).

use serde::Serialize;

use super::HnswIndex;
use crate::alloc::{AllocError, MemPolicy, PageSample, PlacementReport, placement_of};

/// One allocation of an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryPart {
    /// What it holds: `f32 rows`, `int8 rows`, `links level 0`, `links upper levels`,
    /// `upper-level index`, `levels`, `flags`, `locks`, `visited set`.
    pub part: String,
    /// Its first byte.
    pub addr: usize,
    /// Its length in bytes.
    pub bytes: usize,
    /// Whether it came from the index's region source (false: a heap fallback, also listed in
    /// [`HnswIndex::degradations`]).
    pub from_source: bool,
}

/// Memory of an index that is not where its region source would have put it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IndexDegradation {
    /// The region source could not be kept ([`RegionSource::shared`] returned `None`): visited
    /// sets made after creation, and [`HnswIndex::compact`]'s copy, use anonymous mappings.
    ///
    /// [`RegionSource::shared`]: crate::index::storage::RegionSource::shared
    SourceNotKept,
    /// The source refused a region for a visited set; that many walks' sets are on the heap.
    VisitedSetsOnHeap {
        /// How many sets.
        sets: usize,
    },
}

impl HnswIndex {
    /// Every allocation of the index: rows, link lists, per-node state, and the pooled visited
    /// sets (sets in use by a running walk are not listed; call this on a quiescent index).
    pub fn memory_parts(&self) -> Vec<MemoryPart> {
        let mut parts: Vec<MemoryPart> = self
            .space
            .regions()
            .into_iter()
            .chain(self.graph.regions())
            .map(|(part, r)| MemoryPart {
                part: part.to_string(),
                addr: r.as_ptr() as usize,
                bytes: r.len(),
                from_source: true,
            })
            .collect();
        parts.extend(
            self.visited
                .pooled_ranges()
                .into_iter()
                .map(|(addr, bytes, on_source)| MemoryPart {
                    part: "visited set".to_string(),
                    addr,
                    bytes,
                    from_source: on_source && self.source_kept,
                }),
        );
        parts
    }

    /// What of the index's memory is not where its region source would put it (empty when
    /// every part came from the source).
    pub fn degradations(&self) -> Vec<IndexDegradation> {
        let mut out = Vec::new();
        if !self.source_kept {
            out.push(IndexDegradation::SourceNotKept);
        }
        let sets = self.visited.heap_fallbacks();
        if sets > 0 {
            out.push(IndexDegradation::VisitedSetsOnHeap { sets });
        }
        out
    }

    /// Where the pages of every part in [`HnswIndex::memory_parts`] are, checked against
    /// `requested` (e.g. `MemPolicy::Bind(node)` for an index in `NodeRegions::bind(node)`).
    /// Pages never touched count as not present.
    ///
    /// # Errors
    /// [`AllocError::Unsupported`] where `move_pages` is unavailable; [`AllocError::Os`] on
    /// other failures.
    pub fn placement_report(
        &self,
        requested: &MemPolicy,
        sample: PageSample,
    ) -> Result<Vec<(MemoryPart, PlacementReport)>, AllocError> {
        self.memory_parts()
            .into_iter()
            .map(|p| {
                let report = placement_of(p.addr as *const u8, p.bytes, 4096, requested, sample)?;
                Ok((p, report))
            })
            .collect()
    }
}
