//! The worker: one pinned thread per plan slot, and its run loop.
//!
//! # Model
//!
//! Each worker owns three bounded queues (high, normal, low). Its loop:
//!
//! 1. **Own work.** Pick a class: high if it has items, else normal, else low — except that when
//!    low items wait and `low_share - 1` batches of other classes ran since the last low batch,
//!    low goes next (so low gets at least one batch in every `low_share`). Ask that class's
//!    [`BatchController`] for a size from the backlog, pop up to that many items (never waiting
//!    for more), run them as one batch.
//!    Before that, a worker with no high item of its own but normal or low ones takes high
//!    items from the sibling with the most (a steal), so a high item waits for the shortest
//!    running task of the node, not for a given worker's. The handler can ask whether high
//!    items wait ([`Urgency`], given to [`WorkerHandler::handle_with`]) to end a long task early.
//! 2. **Steal** ([`super::steal`]) when its own queues are empty: own node first, another node
//!    only past the threshold.
//! 3. **Idle**: spin `spin_before_park` times re-checking its queues, then park
//!    (`park`). A submit to its queue wakes it. Whenever a worker's queue holds a
//!    backlog (2 or more items of a class) after a submit or after the owner popped a batch,
//!    one sleeping sibling is woken to steal; past the cross-node threshold, one sleeping worker
//!    of another node.
//!
//! # Shutdown order
//!
//! 1. [`super::Executor::shutdown`] sets `closing`; from then on every submit (through any
//!    [`super::Submitter`]) returns `Closed`. It waits for the submits already past their check
//!    to finish their push (the `inflight` count), then wakes every worker.
//! 2. (Workers keep running meanwhile.)
//! 3. In [`ShutdownMode::Drain`] a worker keeps running until its own queues are empty, then
//!    exits; in [`ShutdownMode::HandBack`] it exits after the batch in hand.
//! 4. The executor joins every worker, then sweeps every queue: the items found there (all of
//!    them in hand-back mode; in drain mode only those of a worker that died) are handed back in
//!    the [`super::ShutdownReport`]. Every accepted item is thus either run or handed back.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, TryLockError};
use std::time::Instant;

use super::batch::BatchController;
use super::config::ShutdownMode;
use super::handler::{BatchSource, Urgency, WorkerContext, WorkerHandler};
use super::pool::{PinStatus, Shared};
use super::queue::{Envelope, Priority};
use super::stats::WorkerHistograms;
use super::steal::{Steal, steal, steal_sibling};
use crate::topology::{CpuLocation, TopologyError};

/// Records where the worker runs, as seen after pinning.
pub(crate) fn pin_status(pinned: Option<Result<CpuLocation, TopologyError>>, plan_node: u32) -> PinStatus {
    match pinned {
        None => PinStatus::Skipped,
        Some(Ok(location)) if location.node == plan_node => PinStatus::Verified { location },
        Some(Ok(location)) => PinStatus::OffNode { location },
        Some(Err(e)) => PinStatus::Failed {
            reason: e.to_string(),
        },
    }
}

/// Chooses the class to serve; `since_low` counts batches run while low work waited.
#[inline]
pub(crate) fn pick_class(lens: [usize; 3], since_low: &mut u32, low_share: u32) -> Option<Priority> {
    if lens[2] == 0 {
        *since_low = 0;
    } else if *since_low + 1 >= low_share {
        *since_low = 0;
        return Some(Priority::Low);
    }
    let class = if lens[0] > 0 {
        Priority::High
    } else if lens[1] > 0 {
        Priority::Normal
    } else if lens[2] > 0 {
        *since_low = 0;
        return Some(Priority::Low);
    } else {
        return None;
    };
    if lens[2] > 0 {
        *since_low += 1;
    }
    Some(class)
}

struct Buffers<T> {
    envelopes: Vec<Envelope<T>>,
    items: Vec<T>,
    stamps: Vec<Instant>,
    /// Samples recorded while a metrics reader held the shared histograms (see [`record`]).
    spill: Option<Box<WorkerHistograms>>,
}

/// Creates worker (`pool`, `local`)'s context and its handler state, on the worker's thread.
pub(crate) fn init<T: Send + 'static, H: WorkerHandler<T>>(
    shared: &Shared<T>,
    handler: &H,
    pool: usize,
    local: usize,
) -> (WorkerContext, H::Local) {
    let me = shared.worker(pool, local);
    let pinned_at = match me.pin.get() {
        Some(PinStatus::Verified { location } | PinStatus::OffNode { location }) => Some(*location),
        _ => None,
    };
    let ctx = WorkerContext {
        worker: me.slot.index,
        node: me.slot.node,
        cpu: me.slot.cpu,
        pinned_at,
        source: BatchSource::Own,
    };
    let state = handler.init(&ctx);
    (ctx, state)
}

/// The run loop of worker (`pool`, `local`).
pub(crate) fn run<T: Send + 'static, H: WorkerHandler<T>>(
    shared: Arc<Shared<T>>,
    handler: &H,
    mut state: H::Local,
    mut ctx: WorkerContext,
    pool: usize,
    local: usize,
) {
    let me = shared.worker(pool, local);
    let cfg = &shared.config;
    let mut controllers: [BatchController; 3] =
        std::array::from_fn(|_| BatchController::new(cfg.min_batch, cfg.max_batch, cfg.batch_controller));
    let mut buf = Buffers {
        envelopes: Vec::with_capacity(cfg.max_batch),
        items: Vec::with_capacity(cfg.max_batch),
        stamps: Vec::with_capacity(cfg.max_batch),
        spill: None,
    };
    let mut since_low = 0u32;
    let home = &shared.pools[pool];
    let high_waiting = || home.workers.iter().any(|w| w.queues.len(Priority::High) > 0);
    let urgent = Urgency::new(&high_waiting);
    'outer: loop {
        if shared.closing() && (cfg.shutdown == ShutdownMode::HandBack || me.queues.is_empty()) {
            break;
        }
        if shared.paused() && !shared.closing() {
            me.idle.sleep_unless(|| !shared.paused() || shared.closing());
            continue;
        }
        let lens = Priority::ALL.map(|c| me.queues.len(c));
        // No high item of its own, but a sibling has one (it is busy, or about to take it):
        // take it before this worker's own normal or low work — unless low's turn has come
        // (`low_share` holds here too: a stolen high batch counts like one of its own).
        let low_due = lens[2] > 0 && since_low + 1 >= cfg.low_share;
        if lens[0] == 0
            && lens[1] + lens[2] > 0
            && !low_due
            && let Steal::Success { class, source } = steal_sibling(
                &shared,
                pool,
                local,
                Priority::High,
                cfg.max_batch,
                &mut buf.envelopes,
            )
        {
            if lens[2] > 0 {
                since_low += 1;
            }
            count_steal(me, source, buf.envelopes.len());
            ctx.source = source;
            run_batch(handler, &mut state, me, &ctx, class, &mut buf, &urgent);
            continue;
        }
        if let Some(class) = pick_class(lens, &mut since_low, cfg.low_share) {
            for c in Priority::ALL {
                me.stats.depth[c.index()].sample(lens[c.index()]);
            }
            let ctl = &mut controllers[class.index()];
            let size = ctl.observe(lens[class.index()], Instant::now());
            me.stats.batch_size[class.index()].store(size, Ordering::Relaxed);
            if me.queues.pop_into(class, size, &mut buf.envelopes) > 0 {
                shared.wake_helper(pool, local, me.queues.len(class));
                ctx.source = BatchSource::Own;
                run_batch(handler, &mut state, me, &ctx, class, &mut buf, &urgent);
            }
            continue;
        }
        if let Steal::Success { class, source } =
            steal(&shared, pool, local, cfg.max_batch, &mut buf.envelopes)
        {
            count_steal(me, source, buf.envelopes.len());
            ctx.source = source;
            run_batch(handler, &mut state, me, &ctx, class, &mut buf, &urgent);
            continue;
        }
        if shared.closing() {
            continue;
        }
        if !fold_spill(me, &mut buf) {
            // A scrape holds the histograms and samples wait in the spill: look again shortly
            // instead of parking, or they would stay unseen until this worker's next batch.
            std::thread::sleep(std::time::Duration::from_micros(200));
            continue;
        }
        for _ in 0..cfg.spin_before_park {
            std::hint::spin_loop();
            if !me.queues.is_empty() {
                continue 'outer;
            }
        }
        if me
            .idle
            .sleep_unless(|| !me.queues.is_empty() || shared.closing() || shared.paused())
        {
            me.stats.parks.add(1);
        }
    }
}

/// Counts a steal of `n` items in the thief's stats.
fn count_steal<T>(me: &super::pool::WorkerShared<T>, source: BatchSource, n: usize) {
    let n = n as u64;
    match source {
        BatchSource::StolenRemote { .. } => {
            me.stats.steals_remote.add(1);
            me.stats.stolen_items_remote.add(n);
        }
        _ => {
            me.stats.steals_local.add(1);
            me.stats.stolen_items_local.add(n);
        }
    }
}

fn run_batch<T: Send + 'static, H: WorkerHandler<T>>(
    handler: &H,
    state: &mut H::Local,
    me: &super::pool::WorkerShared<T>,
    ctx: &WorkerContext,
    class: Priority,
    buf: &mut Buffers<T>,
    urgent: &Urgency<'_>,
) {
    let start = Instant::now();
    buf.items.clear();
    buf.stamps.clear();
    for e in buf.envelopes.drain(..) {
        buf.stamps.push(e.enqueued);
        buf.items.push(e.item);
    }
    let n = buf.items.len() as u64;
    let items = &mut buf.items;
    if catch_unwind(AssertUnwindSafe(|| {
        handler.handle_with(state, ctx, class, items, urgent)
    }))
    .is_err()
    {
        me.stats.handler_panics.add(1);
    }
    buf.items.clear();
    let end = Instant::now();
    let service = end.saturating_duration_since(start);
    record(me, buf, start, end, n);
    let st = &me.stats;
    st.items[class.index()].add(n);
    st.batches[class.index()].add(1);
    st.busy_ns
        .add(u64::try_from(service.as_nanos()).unwrap_or(u64::MAX));
}

/// Records one batch's latencies without ever waiting for a metrics reader.
///
/// The shared histograms sit behind a mutex that only this worker and a metrics snapshot take.
/// The worker only *tries* it: if a snapshot holds it (merging large histograms), this batch's
/// samples go to a worker-local spill, folded into the shared histograms at the next batch that
/// gets the lock, or before the worker parks ([`fold_spill`]; an idle worker with a spill it
/// cannot fold looks again every 200 µs instead of parking). A scrape thus delays what it sees
/// by at most one batch or 200 µs of idleness, and never stalls the worker.
fn record<T>(me: &super::pool::WorkerShared<T>, buf: &mut Buffers<T>, start: Instant, end: Instant, n: u64) {
    let fill = |h: &mut WorkerHistograms, stamps: &[Instant]| {
        for &s in stamps {
            h.queue_wait.record_duration(start.saturating_duration_since(s));
            h.sojourn.record_duration(end.saturating_duration_since(s));
        }
        h.service.record_duration(end.saturating_duration_since(start));
        h.batch_items.record(n);
    };
    let guard = match me.hist.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    };
    match guard {
        Some(mut h) => {
            if let Some(spill) = buf.spill.take() {
                h.merge(&spill);
            }
            fill(&mut h, &buf.stamps);
        }
        None => fill(buf.spill.get_or_insert_with(Box::default), &buf.stamps),
    }
}

/// Folds the spill, if any, into the shared histograms when no reader holds them; returns
/// whether nothing is left in the spill. Never waits.
fn fold_spill<T>(me: &super::pool::WorkerShared<T>, buf: &mut Buffers<T>) -> bool {
    if buf.spill.is_none() {
        return true;
    }
    let mut h = match me.hist.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return false,
    };
    if let Some(spill) = buf.spill.take() {
        h.merge(&spill);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_first_and_low_gets_its_share() {
        let mut since = 0;
        let mut order = Vec::new();
        // High and low always waiting, share 4: every 4th batch is low.
        for _ in 0..12 {
            order.push(pick_class([5, 5, 5], &mut since, 4).unwrap());
        }
        let lows: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == Priority::Low)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(lows, [3, 7, 11]);
        assert!(order.iter().all(|c| *c != Priority::Normal));
        assert_eq!(pick_class([0, 3, 0], &mut since, 4), Some(Priority::Normal));
        assert_eq!(pick_class([0, 0, 1], &mut since, 4), Some(Priority::Low));
        assert_eq!(pick_class([0, 0, 0], &mut since, 4), None);
    }

    #[test]
    fn low_share_one_serves_low_whenever_it_waits() {
        let mut since = 0;
        assert_eq!(pick_class([1, 1, 1], &mut since, 1), Some(Priority::Low));
    }
}
