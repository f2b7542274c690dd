//! Node-local memory and cache-conscious layout.
//!
//! - [`layout`]: [`CachePadded`](layout::CachePadded) for contended state, the one-line
//!   [`HotNode`](layout::HotNode) for read-mostly traversal records.

pub mod layout;
