//! The tracking global allocator: exact counters plus sampled stacks.
//!
//! Every allocation updates counters owned by the calling thread (plain loads and stores,
//! no lock prefix): live bytes and blocks are exact on demand, summed over the threads'
//! counters by [`stats`]. The peak needs one process-wide live figure to compare against:
//! each thread publishes its growth or shrinkage into it once it reaches
//! [`PEAK_PUBLISH_BYTES`] (see `peak.rs`), so the peak is within that much per thread
//! holding bytes back (exact when one thread allocates); a shared atomic add on every
//! allocation and free, which kept it exact across threads, cost 5-15 % of the
//! allocator's time and made the cores fight over one line.
//!
//! The fast path of an allocation or a free touches only the calling thread's state and
//! slot: it compares the thread's live bytes with one threshold (publishing due, or a new
//! peak possible) and, for an allocation, counts down to the next sample; anything else
//! goes to one cold slow path. A stack is captured for about one allocation per
//! `sample_rate` bytes.
//!
//! The allocator never allocates through itself on its own behalf: counters, the sample
//! table and the trace table are fixed-size statics, and stack capture records raw
//! instruction pointers only. A thread-local guard stops sampling from re-entering itself
//! should anything underneath (the unwinder, a thread-local destructor registration) call
//! back into the allocator; those nested allocations are still counted.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use super::peak::{Gauge, Ledger};
use super::sampler::{self, MAX_FRAMES};

/// Default mean number of bytes between two sampled allocations (512 KiB).
pub const DEFAULT_SAMPLE_RATE: usize = 512 * 1024;

/// A `#[global_allocator]` that counts every allocation and samples call sites.
///
/// It wraps any [`GlobalAlloc`] ([`System`] by default; jemalloc or mimalloc work the same
/// way). Counters are process-wide: install one `TrackingAllocator` per program.
///
/// ```no_run
/// use perf_rt::memory::TrackingAllocator;
///
/// #[global_allocator]
/// static ALLOC: TrackingAllocator = TrackingAllocator::system();
/// # fn main() {}
/// ```
#[derive(Debug)]
pub struct TrackingAllocator<A = System> {
    inner: A,
    sample_rate: usize,
}

impl TrackingAllocator<System> {
    /// Tracks the system allocator, with [`DEFAULT_SAMPLE_RATE`].
    pub const fn system() -> Self {
        Self::new(System)
    }
}

impl<A> TrackingAllocator<A> {
    /// Tracks `inner`, with [`DEFAULT_SAMPLE_RATE`].
    pub const fn new(inner: A) -> Self {
        Self {
            inner,
            sample_rate: DEFAULT_SAMPLE_RATE,
        }
    }

    /// Tracks `inner`, with `sample_rate` as the initial mean number of bytes between
    /// sampled allocations; `0` turns sampling off (counters stay exact).
    /// [`set_sample_rate`] changes it at run time.
    pub const fn with_sample_rate(inner: A, sample_rate: usize) -> Self {
        Self { inner, sample_rate }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: every method forwards to the wrapped allocator with the caller's own arguments,
// so the `GlobalAlloc` contract is the inner allocator's; the bookkeeping around it only
// touches statics and thread-locals that need no allocation.
unsafe impl<A: GlobalAlloc> GlobalAlloc for TrackingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), forwarded as is.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            on_alloc(ptr, layout.size(), self.sample_rate);
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            on_alloc(ptr, layout.size(), self.sample_rate);
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // The sample must leave the table before the block can be handed out again.
        on_free(ptr, layout.size());
        // SAFETY: the caller guarantees `ptr` came from this allocator with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_size = layout.size();
        // Removed before the old block can be reused by another thread; put back if the
        // reallocation fails and the old block stays valid.
        let old_sample = sampler::remove(ptr as usize);
        // SAFETY: the caller guarantees `ptr`/`layout` describe a live block of ours and
        // that `new_size` is valid for `layout.align()`.
        let new_ptr = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if new_ptr.is_null() {
            if let Some(sample) = old_sample
                && !sampler::insert(ptr as usize, sample)
            {
                sampler::release(sample.trace);
            }
            return new_ptr;
        }
        if let Some(sample) = old_sample {
            sampler::release(sample.trace);
        }
        on_realloc(new_ptr, old_size, new_size, self.sample_rate);
        new_ptr
    }
}

/// Exact process-wide counters, read together by [`stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Bytes currently allocated.
    pub live_bytes: u64,
    /// Blocks currently allocated.
    pub live_allocations: u64,
    /// Highest `live_bytes` since start (or since [`reset_peak`]).
    pub peak_bytes: u64,
    /// Blocks allocated since start.
    pub total_allocations: u64,
    /// Blocks freed since start.
    pub total_frees: u64,
    /// Reallocations since start (each also moves bytes in or out of the totals).
    pub total_reallocations: u64,
    /// Bytes allocated since start; a reallocation adds only its growth.
    pub total_bytes_allocated: u64,
    /// Bytes freed since start; a reallocation adds only its shrinkage.
    pub total_bytes_freed: u64,
}

const SLOT_COUNT: usize = 64;

/// Per-thread counters. An owned slot is written by its owning thread only (plain
/// load/store pairs); the shared slot serves threads without one, with atomic adds.
#[repr(align(128))]
struct Slot {
    owned: AtomicBool,
    allocs: AtomicU64,
    frees: AtomicU64,
    reallocs: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_freed: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Self {
            owned: AtomicBool::new(false),
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            reallocs: AtomicU64::new(0),
            bytes_allocated: AtomicU64::new(0),
            bytes_freed: AtomicU64::new(0),
        }
    }

    /// What one operation adds to the counters.
    fn count(&self, owned: bool, op: Op) {
        let add = |counter: &AtomicU64, n: u64| {
            if owned {
                bump(counter, n);
            } else if n > 0 {
                counter.fetch_add(n, Relaxed);
            }
        };
        add(&self.allocs, op.allocs);
        add(&self.frees, op.frees);
        add(&self.reallocs, op.reallocs);
        add(&self.bytes_allocated, op.grown);
        add(&self.bytes_freed, op.shrunk);
    }
}

/// Adds to a counter only the owning thread writes: no read-modify-write needed (the
/// load and store compile to one `add` to memory).
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// One allocator operation, as the slow path accounts for it.
#[derive(Clone, Copy, Default)]
struct Op {
    allocs: u64,
    frees: u64,
    reallocs: u64,
    grown: u64,
    shrunk: u64,
    /// Size to sample the block at (`None`: a free, never sampled).
    sample: Option<(*mut u8, usize)>,
}

impl Op {
    fn net(&self) -> i64 {
        self.grown as i64 - self.shrunk as i64
    }
}

static SLOTS: [Slot; SLOT_COUNT] = [const { Slot::new() }; SLOT_COUNT];
static SHARED: Slot = Slot::new();
static GAUGE: Gauge = Gauge::new();
static SAMPLE_RATE: AtomicUsize = AtomicUsize::new(RATE_UNSET);
const RATE_UNSET: usize = usize::MAX;
/// With sampling off, how many bytes a thread allocates between two looks at the rate:
/// how late, at most, it starts sampling once sampling is turned on.
const OFF_INTERVAL: i64 = 256 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Claim {
    Unclaimed,
    /// Registering the slot's release may allocate: those go to the shared slot.
    Claiming,
    Owned,
    /// All slots taken, or the thread is ending.
    None,
}

/// Everything the hot path needs from the current thread, in one const thread-local
/// (no destructor, so reachable even while the thread's destructors run). The fast path
/// reads and writes only this and the thread's own slot.
struct ThreadState {
    /// The owned slot, or `SHARED` (then the ledger is detached, so every operation takes
    /// the slow path, which looks at `claim`).
    slot: Cell<&'static Slot>,
    claim: Cell<Claim>,
    ledger: Ledger,
    /// Highest `ledger.net` since the innermost scope began (for scopes' peaks).
    peak_mark: Cell<i64>,
    /// Bytes left to allocate before the sampling slow path.
    countdown: Cell<i64>,
    /// Whether `countdown` was drawn at a sampling rate (so running out takes a sample).
    armed: Cell<bool>,
    rng: Cell<u64>,
    in_sampler: Cell<bool>,
    /// Scope counters = these + the owned slot's own (rebased on claim and release, so
    /// they run on continuously).
    base_allocs: Cell<u64>,
    base_bytes_allocated: Cell<u64>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState {
            slot: Cell::new(&SHARED),
            claim: Cell::new(Claim::Unclaimed),
            ledger: Ledger::detached(),
            peak_mark: Cell::new(0),
            countdown: Cell::new(0),
            armed: Cell::new(false),
            rng: Cell::new(0),
            in_sampler: Cell::new(false),
            base_allocs: Cell::new(0),
            base_bytes_allocated: Cell::new(0),
        }
    };
    static RELEASE: SlotRelease = const { SlotRelease };
}

/// Returns the thread's slot to the pool when the thread ends.
struct SlotRelease;

impl Drop for SlotRelease {
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| {
            // What the thread held back belongs to the process-wide figure from now on.
            s.ledger.detach(&GAUGE);
            if s.claim.replace(Claim::None) == Claim::Owned {
                let slot = s.slot.replace(&SHARED);
                rebase(s, slot, u64::wrapping_add);
                slot.owned.store(false, Release);
            }
        });
    }
}

/// Moves the owned slot's counts into (or, on claim, out of) the scope counters' base.
fn rebase(s: &ThreadState, slot: &Slot, op: fn(u64, u64) -> u64) {
    s.base_allocs
        .set(op(s.base_allocs.get(), slot.allocs.load(Relaxed)));
    s.base_bytes_allocated.set(op(
        s.base_bytes_allocated.get(),
        slot.bytes_allocated.load(Relaxed),
    ));
}

#[cold]
fn claim_slot(s: &ThreadState) {
    s.claim.set(Claim::Claiming);
    let claimed = SLOTS.iter().find(|slot| {
        slot.owned
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
    });
    let Some(slot) = claimed else {
        s.claim.set(Claim::None);
        return;
    };
    // Registering the destructor may allocate; `Claiming` sends those to the shared slot.
    if RELEASE.try_with(|_| ()).is_err() {
        slot.owned.store(false, Release);
        s.claim.set(Claim::None);
        return;
    }
    rebase(s, slot, u64::wrapping_sub);
    s.slot.set(slot);
    s.claim.set(Claim::Owned);
    s.ledger.attach(&GAUGE);
}

// One cold entry per kind of operation, taking scalars: the fast paths then build nothing
// on the stack.

#[cold]
#[inline(never)]
fn alloc_slow(s: &ThreadState, ptr: *mut u8, size: usize, default_rate: usize) {
    let op = Op {
        allocs: 1,
        grown: size as u64,
        sample: Some((ptr, size)),
        ..Op::default()
    };
    slow_path(s, op, default_rate);
}

#[cold]
#[inline(never)]
fn free_slow(s: &ThreadState, size: usize) {
    let op = Op {
        frees: 1,
        shrunk: size as u64,
        ..Op::default()
    };
    slow_path(s, op, 0);
}

#[cold]
#[inline(never)]
fn realloc_slow(s: &ThreadState, ptr: *mut u8, old: usize, new: usize, default_rate: usize) {
    let op = Op {
        reallocs: 1,
        grown: new.saturating_sub(old) as u64,
        shrunk: old.saturating_sub(new) as u64,
        sample: Some((ptr, new)),
        ..Op::default()
    };
    slow_path(s, op, default_rate);
}

/// Everything an operation the fast path declined needs: claiming a slot, counting into
/// the shared slot, publishing, the peak, sampling.
#[inline(always)]
fn slow_path(s: &ThreadState, op: Op, default_rate: usize) {
    if s.claim.get() == Claim::Unclaimed {
        claim_slot(s);
    }
    let owned = s.claim.get() == Claim::Owned;
    if owned {
        s.slot.get().count(true, op);
        s.ledger.net.set(s.ledger.net.get() + op.net());
        s.ledger.settle(&GAUGE);
    } else {
        SHARED.count(false, op);
        s.ledger.apply_detached(op.net(), &GAUGE);
        s.base_allocs.set(s.base_allocs.get() + op.allocs);
        s.base_bytes_allocated
            .set(s.base_bytes_allocated.get() + op.grown);
    }
    mark_peak(s, s.ledger.net.get());
    if let Some((ptr, size)) = op.sample {
        let left = s.countdown.get() - size as i64;
        s.countdown.set(left);
        if left <= 0 {
            sample_slow(s, ptr, size, default_rate);
        }
    }
}

#[inline(always)]
fn mark_peak(s: &ThreadState, net: i64) {
    if net > s.peak_mark.get() {
        s.peak_mark.set(net);
    }
}

// The fast paths: thread-local loads and stores, two adds to the thread's own slot, no
// shared line touched; anything else (first use, publishing, a possible new peak, a sample
// due, a thread without a slot) goes to `slow_path`.

#[inline(always)]
fn on_alloc(ptr: *mut u8, size: usize, default_rate: usize) {
    let _ = STATE.try_with(|s| {
        let net = s.ledger.net.get() + size as i64;
        if net > s.ledger.trip.get() || size as i64 >= s.countdown.get() {
            return alloc_slow(s, ptr, size, default_rate);
        }
        s.ledger.net.set(net);
        s.countdown.set(s.countdown.get() - size as i64);
        mark_peak(s, net);
        let slot = s.slot.get();
        bump(&slot.allocs, 1);
        bump(&slot.bytes_allocated, size as u64);
    });
}

#[inline(always)]
fn on_free(ptr: *mut u8, size: usize) {
    let _ = STATE.try_with(|s| {
        let net = s.ledger.net.get() - size as i64;
        if net < s.ledger.floor.get() {
            return free_slow(s, size);
        }
        s.ledger.net.set(net);
        let slot = s.slot.get();
        bump(&slot.frees, 1);
        bump(&slot.bytes_freed, size as u64);
    });
    sampler::forget(ptr as usize);
}

#[inline(always)]
fn on_realloc(ptr: *mut u8, old: usize, new: usize, default_rate: usize) {
    let (grown, shrunk) = (new.saturating_sub(old), old.saturating_sub(new));
    let _ = STATE.try_with(|s| {
        let net = s.ledger.net.get() + grown as i64 - shrunk as i64;
        // A reallocation is sampled like a fresh allocation of its new size.
        let left = s.countdown.get() - new as i64;
        if net > s.ledger.trip.get() || net < s.ledger.floor.get() || left <= 0 {
            return realloc_slow(s, ptr, old, new, default_rate);
        }
        s.ledger.net.set(net);
        s.countdown.set(left);
        mark_peak(s, net);
        let slot = s.slot.get();
        bump(&slot.reallocs, 1);
        bump(&slot.bytes_allocated, grown as u64);
        bump(&slot.bytes_freed, shrunk as u64);
    });
}

#[cold]
#[inline(never)]
fn sample_slow(s: &ThreadState, ptr: *mut u8, size: usize, default_rate: usize) {
    let rate = match SAMPLE_RATE.load(Relaxed) {
        RATE_UNSET => {
            match SAMPLE_RATE.compare_exchange(RATE_UNSET, default_rate, Relaxed, Relaxed) {
                Ok(_) => default_rate,
                Err(current) => current,
            }
        }
        rate => rate,
    };
    if rate == 0 {
        // Look again later: sampling may be turned on meanwhile.
        s.countdown.set(OFF_INTERVAL);
        s.armed.set(false);
        return;
    }
    if s.rng.get() == 0 {
        // Seeded from the thread-local's address and a counter: distinct per thread.
        static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let seed = SEED.fetch_add(0x6A09_E667_F3BC_C909, Relaxed) ^ (s as *const _ as u64);
        s.rng.set(seed | 1);
    }
    s.countdown.set(next_interval(s, rate));
    // The end of an interval not drawn at a sampling rate (the first, or one of sampling
    // off) is no sample: only start drawing.
    if !s.armed.replace(true) || s.in_sampler.get() {
        return;
    }
    s.in_sampler.set(true);
    let mut frames = [0usize; MAX_FRAMES];
    let depth = capture(&mut frames);
    if let Some(trace) = sampler::intern(&frames[..depth]) {
        // The rate goes with the sample: a snapshot after a change of rate must still
        // weigh it by the rate it was drawn at.
        let sample = sampler::Sample { size, trace, rate };
        if !sampler::insert(ptr as usize, sample) {
            sampler::release(trace);
        }
    }
    s.in_sampler.set(false);
}

/// An exponentially distributed interval with mean `rate` (a Poisson process over bytes).
fn next_interval(s: &ThreadState, rate: usize) -> i64 {
    // xorshift64*: no allocation, good enough for sampling.
    let mut x = s.rng.get();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s.rng.set(x);
    let bits = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
    let uniform = (bits as f64 + 1.0) / (1u64 << 53) as f64; // in (0, 1]
    ((-uniform.ln() * rate as f64) as i64).max(1)
}

fn capture(frames: &mut [usize; MAX_FRAMES]) -> usize {
    let mut depth = 0;
    let mut record = |frame: &backtrace::Frame| {
        frames[depth] = frame.ip() as usize;
        depth += 1;
        depth < MAX_FRAMES
    };
    #[cfg(unix)]
    // SAFETY: `trace_unsynchronized` is unsafe because some unwinders are not thread-safe
    // (dbghelp on Windows); on Unix it calls `_Unwind_Backtrace`, which is. The closure only
    // writes into a stack array: it neither allocates nor panics (depth is bounded above).
    unsafe {
        backtrace::trace_unsynchronized(&mut record)
    };
    #[cfg(not(unix))]
    backtrace::trace(&mut record);
    depth
}

/// Reads the process-wide counters. Exact when no other thread is allocating at the same
/// moment; otherwise each field is exact on its own and may be a few operations apart.
/// The peak is within [`PEAK_PUBLISH_BYTES`] per thread holding bytes back (exact when a
/// single thread allocates), and never below the live bytes read here.
pub fn stats() -> Stats {
    let mut st = Stats::default();
    for slot in SLOTS.iter().chain(std::iter::once(&SHARED)) {
        st.total_allocations += slot.allocs.load(Relaxed);
        st.total_frees += slot.frees.load(Relaxed);
        st.total_reallocations += slot.reallocs.load(Relaxed);
        st.total_bytes_allocated += slot.bytes_allocated.load(Relaxed);
        st.total_bytes_freed += slot.bytes_freed.load(Relaxed);
    }
    st.live_allocations = st.total_allocations.saturating_sub(st.total_frees);
    st.live_bytes = st
        .total_bytes_allocated
        .saturating_sub(st.total_bytes_freed);
    st.peak_bytes = GAUGE.peak().max(st.live_bytes);
    st
}

/// Whether a [`TrackingAllocator`] is the global allocator of this process (it has seen
/// at least one allocation).
pub fn is_installed() -> bool {
    stats().total_allocations > 0
}

/// Restarts peak tracking from the current live byte count.
pub fn reset_peak() {
    // The calling thread's held-back bytes go in first, so that with one thread the new
    // peak is exact.
    let _ = STATE.try_with(|s| s.ledger.flush(&GAUGE));
    GAUGE.reset(stats().live_bytes);
    let _ = STATE.try_with(|s| s.ledger.rearm(&GAUGE));
}

/// Sets the mean number of bytes between sampled allocations; `0` turns sampling off.
/// Samples already taken stay until their blocks are freed, and keep being weighed by the
/// rate they were taken at. Each thread starts using the new rate after its current
/// interval runs out (with sampling off, within 256 KiB of its allocations); turning
/// sampling off takes effect at once.
pub fn set_sample_rate(bytes: usize) {
    SAMPLE_RATE.store(bytes, Relaxed);
}

/// The current mean number of bytes between sampled allocations (`0`: off), or `None`
/// before the first allocation decided it.
pub fn sample_rate() -> Option<usize> {
    match SAMPLE_RATE.load(Relaxed) {
        RATE_UNSET => None,
        rate => Some(rate),
    }
}

/// What the current thread has allocated and freed so far (for scopes).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ThreadCounters {
    pub allocs: u64,
    pub bytes_allocated: u64,
    pub net: i64,
}

pub(crate) fn thread_counters() -> ThreadCounters {
    STATE
        .try_with(|s| {
            let (mut allocs, mut bytes_allocated) =
                (s.base_allocs.get(), s.base_bytes_allocated.get());
            if s.claim.get() == Claim::Owned {
                let slot = s.slot.get();
                allocs = allocs.wrapping_add(slot.allocs.load(Relaxed));
                bytes_allocated = bytes_allocated.wrapping_add(slot.bytes_allocated.load(Relaxed));
            }
            ThreadCounters {
                allocs,
                bytes_allocated,
                net: s.ledger.net.get(),
            }
        })
        .unwrap_or_default()
}

/// Starts a new peak window on this thread; returns the previous mark for
/// [`thread_peak_end`].
pub(crate) fn thread_peak_begin() -> i64 {
    STATE
        .try_with(|s| s.peak_mark.replace(s.ledger.net.get()))
        .unwrap_or(0)
}

/// Ends a peak window: returns the highest net byte count seen since
/// [`thread_peak_begin`], and folds it into the enclosing window.
pub(crate) fn thread_peak_end(previous: i64) -> i64 {
    STATE
        .try_with(|s| {
            let peak = s.peak_mark.get();
            s.peak_mark.set(peak.max(previous));
            peak
        })
        .unwrap_or(0)
}

/// Runs `f` with sampling suspended on this thread, so the profiler's own bookkeeping is
/// counted but never attributed.
pub(crate) fn without_sampling<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = STATE.try_with(|s| s.in_sampler.set(self.0));
        }
    }
    let _restore = Restore(
        STATE
            .try_with(|s| s.in_sampler.replace(true))
            .unwrap_or(true),
    );
    f()
}
