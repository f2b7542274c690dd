//! The visited set of a graph walk: one `u16` mark per node and an epoch counter, so clearing the
//! set between searches is a single increment (the marks are zeroed only when the epoch wraps,
//! once every 65 535 searches). Sets are pooled and reused, one per concurrently running walk.

use std::sync::Mutex;

/// A visited set for up to `capacity` nodes.
pub(crate) struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn new(capacity: usize) -> Self {
        Visited {
            marks: vec![0; capacity],
            epoch: 0,
        }
    }

    /// Starts a new walk: every node becomes unvisited.
    pub(crate) fn reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Marks `id` visited; returns whether it was already.
    #[inline(always)]
    pub(crate) fn check_and_mark(&mut self, id: u32) -> bool {
        match self.marks.get_mut(id as usize) {
            Some(m) if *m == self.epoch => true,
            Some(m) => {
                *m = self.epoch;
                false
            }
            // An id beyond the capacity cannot exist; treat it as visited so it is skipped.
            None => true,
        }
    }
}

/// A pool of visited sets of one capacity.
pub(crate) struct VisitedPool {
    capacity: usize,
    free: Mutex<Vec<Visited>>,
}

impl VisitedPool {
    pub(crate) fn new(capacity: usize) -> Self {
        VisitedPool {
            capacity,
            free: Mutex::new(Vec::new()),
        }
    }

    /// A visited set (taken from the pool, or new); `reset` it before a walk.
    pub(crate) fn take(&self) -> Visited {
        let pooled = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| Visited::new(self.capacity))
    }

    /// Returns a set to the pool.
    pub(crate) fn give_back(&self, v: Visited) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).push(v);
    }
}

impl VisitedPool {
    /// Bytes held by pooled sets.
    pub(crate) fn bytes(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len() * self.capacity * size_of::<u16>()
    }
}
