//! The peak of the live bytes, measured without a shared write on every allocation.
//!
//! Each thread keeps a [`Ledger`] of the bytes it holds and adds its growth or shrinkage to
//! a process-wide [`Gauge`] only once it reaches [`PEAK_PUBLISH_BYTES`]. The ledger also
//! remembers how far the thread may still grow before its own held-back bytes could lift
//! the gauge above the peak (its `trip`), so the allocator's fast path compares one
//! thread-local number and touches no shared line until something is due.
//!
//! Error bound: the gauge is the exact live figure minus what every thread holds back
//! (each strictly less than [`PEAK_PUBLISH_BYTES`] either way), and the peak is never
//! below the gauge, so the peak is within `PEAK_PUBLISH_BYTES` per thread holding bytes
//! back. With a single thread allocating and freeing it is exact: that thread's trip is
//! recomputed whenever the gauge or the peak moves, which only that thread then does.

use std::cell::Cell;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering::Relaxed;

/// Growth or shrinkage of its live bytes that a thread keeps to itself before adding it to
/// the process-wide figure the peak is measured on: [`Stats::peak_bytes`] is within this
/// many bytes per thread holding bytes back (exact with one thread).
///
/// [`Stats::peak_bytes`]: super::Stats::peak_bytes
pub const PEAK_PUBLISH_BYTES: usize = 8 * 1024;
const PUBLISH: i64 = PEAK_PUBLISH_BYTES as i64;

/// Live bytes as published by the threads, and the highest value they reached.
pub(crate) struct Gauge {
    live: AtomicI64,
    peak: AtomicI64,
}

impl Gauge {
    pub(crate) const fn new() -> Self {
        Self {
            live: AtomicI64::new(0),
            peak: AtomicI64::new(0),
        }
    }

    /// Adds a thread's held-back bytes (or, for a thread without a ledger, one
    /// operation's), raising the peak on growth.
    pub(crate) fn add(&self, bytes: i64) {
        let now = self.live.fetch_add(bytes, Relaxed) + bytes;
        if bytes > 0 {
            self.raise(now);
        }
    }

    fn raise(&self, now: i64) {
        // A plain load first: the peak line is read-mostly and shared by every core.
        if now > self.peak.load(Relaxed) {
            self.peak.fetch_max(now, Relaxed);
        }
    }

    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Relaxed).max(0) as u64
    }

    /// Restarts the peak from `exact_live`, or from the published figure if that is
    /// higher (so the peak is never below it, which the error bound rests on).
    pub(crate) fn reset(&self, exact_live: u64) {
        let live = self.live.load(Relaxed);
        self.peak.store(live.max(exact_live as i64), Relaxed);
    }
}

/// One thread's live bytes and what it holds back from the [`Gauge`].
///
/// Invariant while attached: `floor <= net <= trip`, hence
/// `|net - published| < PEAK_PUBLISH_BYTES`. A detached ledger (`trip = i64::MIN`,
/// `floor = i64::MAX`) sends every operation to the slow path.
pub(crate) struct Ledger {
    /// Bytes this thread allocated minus bytes it freed.
    pub(crate) net: Cell<i64>,
    /// `net` when last added to the gauge.
    published: Cell<i64>,
    /// Above this `net`, an allocation must check the peak or publish.
    pub(crate) trip: Cell<i64>,
    /// Below this `net`, a free must publish.
    pub(crate) floor: Cell<i64>,
}

impl Ledger {
    pub(crate) const fn detached() -> Self {
        Self {
            net: Cell::new(0),
            published: Cell::new(0),
            trip: Cell::new(i64::MIN),
            floor: Cell::new(i64::MAX),
        }
    }

    /// Starts holding bytes back (everything so far is published).
    pub(crate) fn attach(&self, gauge: &Gauge) {
        self.published.set(self.net.get());
        self.refresh(gauge);
    }

    /// Publishes what is held back and sends every later operation to the slow path.
    pub(crate) fn detach(&self, gauge: &Gauge) {
        self.flush(gauge);
        self.trip.set(i64::MIN);
        self.floor.set(i64::MAX);
    }

    /// A detached thread's operation: published at once.
    pub(crate) fn apply_detached(&self, delta: i64, gauge: &Gauge) {
        self.net.set(self.net.get() + delta);
        self.published.set(self.published.get() + delta);
        gauge.add(delta);
    }

    /// Called by the slow path once `net` has moved past `trip` or `floor` (or whenever
    /// the slow path runs for another reason): publishes if due, checks the peak, and
    /// recomputes the thresholds.
    pub(crate) fn settle(&self, gauge: &Gauge) {
        let held = self.net.get() - self.published.get();
        if held.abs() >= PUBLISH {
            gauge.add(held);
            self.published.set(self.net.get());
        } else if held > 0 {
            gauge.raise(gauge.live.load(Relaxed) + held);
        }
        self.refresh(gauge);
    }

    /// Publishes everything held back (thread exit, [`super::reset_peak`]).
    pub(crate) fn flush(&self, gauge: &Gauge) {
        let held = self.net.get() - self.published.get();
        if held != 0 {
            gauge.add(held);
            self.published.set(self.net.get());
        }
        self.rearm(gauge);
    }

    /// Recomputes the thresholds of an attached ledger after the peak was reset.
    pub(crate) fn rearm(&self, gauge: &Gauge) {
        if self.trip.get() != i64::MIN {
            self.refresh(gauge);
        }
    }

    /// The next `net` worth a look: where the held-back bytes would lift the gauge above
    /// the peak as last read, or where they must be published, whichever comes first.
    fn refresh(&self, gauge: &Gauge) {
        let (net, published) = (self.net.get(), self.published.get());
        let held = net - published;
        let headroom = gauge.peak.load(Relaxed) - gauge.live.load(Relaxed) - held;
        self.trip.set(net + headroom.clamp(0, PUBLISH - 1 - held));
        self.floor.set(published - PUBLISH + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread as the allocator drives it: the fast path moves `net` while it stays
    /// within `floor..=trip`, the slow path settles.
    fn apply(ledger: &Ledger, gauge: &Gauge, delta: i64) {
        let net = ledger.net.get() + delta;
        ledger.net.set(net);
        if net > ledger.trip.get() || net < ledger.floor.get() {
            ledger.settle(gauge);
        }
    }

    /// xorshift: deterministic operation sequences.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn one_thread_peak_is_exact() {
        let gauge = Gauge::new();
        let ledger = Ledger::detached();
        ledger.attach(&gauge);
        let (mut seed, mut live, mut peak) = (0x1234_5678_9abc_def1, 0i64, 0i64);
        for i in 0..200_000 {
            // Mostly small blocks, sometimes a large one; grows, then shrinks, then grows.
            let size = if rng(&mut seed).is_multiple_of(50) {
                40_000
            } else {
                (rng(&mut seed) % 300) as i64 + 1
            };
            let grow = (rng(&mut seed) % 100) < if (i / 20_000) % 2 == 0 { 55 } else { 45 };
            let delta = if grow || live < size { size } else { -size };
            apply(&ledger, &gauge, delta);
            live += delta;
            peak = peak.max(live);
            assert_eq!(gauge.peak() as i64, peak, "operation {i}");
            if i % 30_000 == 29_999 {
                // reset_peak: flush the caller, restart from the exact figure.
                ledger.flush(&gauge);
                gauge.reset(live as u64);
                ledger.rearm(&gauge);
                peak = live;
            }
        }
    }

    #[test]
    fn peak_stays_within_the_bound_per_thread() {
        const THREADS: usize = 6;
        let gauge = Gauge::new();
        let ledgers: Vec<Ledger> = (0..THREADS).map(|_| Ledger::detached()).collect();
        ledgers.iter().for_each(|l| l.attach(&gauge));
        let bound = (THREADS * PEAK_PUBLISH_BYTES) as i64;
        let (mut seed, mut live, mut peak, mut worst) =
            (0x9e37_79b9_7f4a_7c15u64, 0i64, 0i64, 0i64);
        for i in 0..300_000 {
            // One thread at a time, in bursts, so some hold back a lot while others move.
            let t = (i / 37 + (rng(&mut seed) % 2) as usize) % THREADS;
            let ledger = &ledgers[t];
            let size = (rng(&mut seed) % 2_000) as i64 + 1;
            let grow = rng(&mut seed) % 100 < if (i / 50_000) % 2 == 0 { 60 } else { 40 };
            // A thread may free more than it allocated (blocks from other threads).
            let delta = if grow || live < size { size } else { -size };
            apply(ledger, &gauge, delta);
            live += delta;
            peak = peak.max(live);
            let error = (gauge.peak() as i64 - peak).abs();
            worst = worst.max(error);
            assert!(
                error < bound,
                "operation {i}: peak {} against {peak}",
                gauge.peak()
            );
            let held: i64 = ledgers
                .iter()
                .map(|l| l.net.get() - l.published.get())
                .sum();
            assert_eq!(
                gauge.live.load(Relaxed) + held,
                live,
                "the gauge plus the held bytes is exact"
            );
        }
        // The test can fail: the bound is approached, not trivially far.
        assert!(worst > PEAK_PUBLISH_BYTES as i64, "worst error {worst}");
    }

    #[test]
    fn a_detached_ledger_publishes_every_operation() {
        let gauge = Gauge::new();
        let ledger = Ledger::detached();
        ledger.apply_detached(100, &gauge);
        ledger.apply_detached(-40, &gauge);
        assert_eq!((gauge.live.load(Relaxed), gauge.peak()), (60, 100));
        ledger.attach(&gauge);
        apply(&ledger, &gauge, 5_000);
        assert_eq!(gauge.live.load(Relaxed), 60, "held back");
        assert_eq!(
            gauge.peak(),
            5_060,
            "own held-back bytes still reach the peak"
        );
        ledger.detach(&gauge);
        assert_eq!(gauge.live.load(Relaxed), 5_060, "published on detach");
    }
}
