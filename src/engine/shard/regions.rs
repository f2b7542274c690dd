//! [`TrackedRegions`]: node-bound index memory whose extents the engine remembers, so that a
//! placement report can check every page the index uses, not only the pages the engine
//! allocated itself.

use std::sync::Mutex;

use crate::index::IndexError;
use crate::index::NodeRegions;
use crate::index::storage::{Region, RegionSource};

/// [`NodeRegions`] plus the `(address, length)` of each region handed out.
#[derive(Debug)]
pub(crate) struct TrackedRegions {
    inner: NodeRegions,
    extents: Mutex<Vec<(usize, usize)>>,
}

impl TrackedRegions {
    pub(crate) fn bind(node: u32) -> Self {
        Self {
            inner: NodeRegions::bind(node),
            extents: Mutex::new(Vec::new()),
        }
    }

    /// Every region handed out so far.
    pub(crate) fn extents(&self) -> Vec<(usize, usize)> {
        self.extents.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl RegionSource for TrackedRegions {
    fn region(&self, bytes: usize) -> Result<Box<dyn Region>, IndexError> {
        let r = self.inner.region(bytes)?;
        self.extents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((r.as_ptr() as usize, r.len()));
        Ok(r)
    }
}
