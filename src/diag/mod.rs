//! Diagnostic workloads used by the CLI (`locus counters`, `locus memory`, `locus bench-spread`)
//! and the benches: not part of the library's serving API.
//!
//! - [`spread_graph`]: scale-free (Barabási–Albert-like) association graphs for spread benches.

pub mod spread_graph;
