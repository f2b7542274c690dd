//! Vector search: storage, SIMD distance kernels, and an HNSW index.
//!
//! - [`distance`]: L2, inner-product and cosine kernels (scalar, AVX2+FMA, AVX-512, NEON), one
//!   set chosen at run time by CPU feature detection.
//! - [`storage`]: 64-byte-aligned rows on a [`Region`](storage::Region) handed out by a
//!   [`RegionSource`](storage::RegionSource), the seam where node-local memory plugs in
//!   ([`HnswIndex::with_regions`]); the default maps anonymous memory with huge-page advice.
//! - [`space`]: f32 rows plus the optional int8 copy ([`Quantization`]) and the metric.
//! - [`hnsw`]: the graph (Malkov & Yashunin): concurrent insert and search, batch insert on
//!   worker threads, delete with repair and compaction, snapshots.
//!
//! ```
//! use locus::index::{HnswConfig, HnswIndex, Metric};
//!
//! let index = HnswIndex::new(HnswConfig::new(4, 100, Metric::InnerProduct))?;
//! let a = index.insert(&[1.0, 0.0, 0.0, 0.0])?;
//! index.insert(&[0.0, 1.0, 0.0, 0.0])?;
//! let hits = index.search(&[0.9, 0.1, 0.0, 0.0], 1, 16)?;
//! assert_eq!(hits[0].id, a);
//! # Ok::<(), locus::index::IndexError>(())
//! ```

pub mod distance;
mod error;
pub mod hnsw;
mod hugepage;
mod limits;
pub mod node_regions;
pub mod space;
pub mod storage;

pub use distance::{Kernels, Metric};
pub use error::IndexError;
pub use hnsw::{HnswConfig, HnswIndex, IndexDegradation, MemoryPart, Neighbor};
pub use node_regions::NodeRegions;
pub use space::Quantization;
