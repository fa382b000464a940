//! The tracking global allocator: exact counters plus sampled stacks.
//!
//! Every allocation updates counters owned by the calling thread (plain loads and stores,
//! no lock prefix): live bytes and blocks are exact on demand, summed over the threads'
//! counters by [`stats`]. The peak needs one process-wide live figure to compare against:
//! each thread publishes its growth or shrinkage into it once it reaches
//! [`PEAK_PUBLISH_BYTES`], and compares the published figure plus its own unpublished bytes
//! with the peak on every allocation (two loads of lines that rarely change). So the peak is
//! within `PEAK_PUBLISH_BYTES` per thread other than the one reaching it (exact when the
//! others hold nothing back); a shared atomic add on every allocation and free, which kept it exact across
//! threads, cost 5-15 % of the allocator's time and made the cores fight over one line.
//! A stack is captured for about one allocation per `sample_rate` bytes; the countdown lives
//! in a thread-local, so unsampled allocations never leave the calling thread's cache
//! lines.
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
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize};

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
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), forwarded as is.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            on_alloc(ptr, layout.size(), self.sample_rate);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            on_alloc(ptr, layout.size(), self.sample_rate);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // The sample must leave the table before the block can be handed out again.
        on_free(ptr, layout.size());
        // SAFETY: the caller guarantees `ptr` came from this allocator with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

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
}

static SLOTS: [Slot; SLOT_COUNT] = [const { Slot::new() }; SLOT_COUNT];
static SHARED: Slot = Slot::new();
/// Live bytes as published by the threads: the exact figure minus what each thread holds
/// unpublished (less than [`PEAK_PUBLISH_BYTES`] either way).
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

/// Growth or shrinkage of its live bytes that a thread keeps to itself before adding it to
/// the process-wide figure the peak is measured on: the bound, per thread other than the
/// one allocating, of the error of [`Stats::peak_bytes`].
pub const PEAK_PUBLISH_BYTES: usize = 16 * 1024;
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);
static SAMPLE_RATE: AtomicUsize = AtomicUsize::new(RATE_UNSET);
const RATE_UNSET: usize = usize::MAX;

const UNCLAIMED: usize = usize::MAX;
const CLAIMING: usize = usize::MAX - 1;
const NO_SLOT: usize = usize::MAX - 2;

/// Everything the hot path needs from the current thread, in one const thread-local
/// (no destructor, so reachable even while the thread's destructors run).
struct ThreadState {
    slot: Cell<usize>,
    in_sampler: Cell<bool>,
    countdown: Cell<i64>,
    rng: Cell<u64>,
    allocs: Cell<u64>,
    bytes_allocated: Cell<u64>,
    net: Cell<i64>,
    peak_mark: Cell<i64>,
    /// Live bytes not yet added to `LIVE_BYTES`.
    unpublished: Cell<i64>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState {
            slot: Cell::new(UNCLAIMED),
            in_sampler: Cell::new(false),
            countdown: Cell::new(0),
            rng: Cell::new(0),
            allocs: Cell::new(0),
            bytes_allocated: Cell::new(0),
            net: Cell::new(0),
            peak_mark: Cell::new(0),
            unpublished: Cell::new(0),
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
            LIVE_BYTES.fetch_add(s.unpublished.replace(0) as isize, Relaxed);
            let slot = s.slot.replace(NO_SLOT);
            if slot < SLOT_COUNT {
                SLOTS[slot].owned.store(false, Release);
            }
        });
    }
}

#[cold]
fn claim_slot(s: &ThreadState) -> &'static Slot {
    s.slot.set(CLAIMING);
    let claimed = SLOTS.iter().position(|slot| {
        slot.owned
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
    });
    let Some(index) = claimed else {
        s.slot.set(NO_SLOT);
        return &SHARED;
    };
    // Registering the destructor may allocate; `CLAIMING` sends those to the shared slot.
    if RELEASE.try_with(|_| ()).is_err() {
        SLOTS[index].owned.store(false, Release);
        s.slot.set(NO_SLOT);
        return &SHARED;
    }
    s.slot.set(index);
    &SLOTS[index]
}

#[inline]
fn add(slot: &Slot, counter: &AtomicU64, n: u64) {
    if std::ptr::eq(slot, &SHARED) {
        counter.fetch_add(n, Relaxed);
    } else {
        // Only the owning thread writes this slot: no read-modify-write needed.
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }
}

#[inline]
fn slot_of(s: &ThreadState) -> &'static Slot {
    match s.slot.get() {
        i if i < SLOT_COUNT => &SLOTS[i],
        UNCLAIMED => claim_slot(s),
        _ => &SHARED,
    }
}

/// Growth of the live bytes without a thread state (thread teardown): published at once.
fn grow_live(bytes: usize) {
    let now = LIVE_BYTES.fetch_add(bytes as isize, Relaxed) + bytes as isize;
    raise_peak(now);
}

#[inline]
fn raise_peak(now: isize) {
    let now = now.max(0) as usize;
    if now > PEAK_BYTES.load(Relaxed) {
        PEAK_BYTES.fetch_max(now, Relaxed);
    }
}

#[inline]
fn live_grow(s: &ThreadState, bytes: usize) {
    let held = s.unpublished.get() + bytes as i64;
    if held >= PEAK_PUBLISH_BYTES as i64 {
        publish(s, held);
    } else {
        s.unpublished.set(held);
        raise_peak(LIVE_BYTES.load(Relaxed) + held as isize);
    }
}

#[inline]
fn live_shrink(s: &ThreadState, bytes: usize) {
    let held = s.unpublished.get() - bytes as i64;
    if held <= -(PEAK_PUBLISH_BYTES as i64) {
        publish(s, held);
    } else {
        s.unpublished.set(held);
    }
}

#[inline(never)]
fn publish(s: &ThreadState, held: i64) {
    s.unpublished.set(0);
    let now = LIVE_BYTES.fetch_add(held as isize, Relaxed) + held as isize;
    if held > 0 {
        raise_peak(now);
    }
}

#[inline]
fn thread_grow(s: &ThreadState, bytes: usize) {
    let net = s.net.get() + bytes as i64;
    s.net.set(net);
    if net > s.peak_mark.get() {
        s.peak_mark.set(net);
    }
    s.bytes_allocated
        .set(s.bytes_allocated.get() + bytes as u64);
}

#[inline]
fn on_alloc(ptr: *mut u8, size: usize, default_rate: usize) {
    let sampled = STATE.try_with(|s| {
        live_grow(s, size);
        let slot = slot_of(s);
        add(slot, &slot.allocs, 1);
        add(slot, &slot.bytes_allocated, size as u64);
        s.allocs.set(s.allocs.get() + 1);
        thread_grow(s, size);
        countdown(s, ptr, size, default_rate);
    });
    if sampled.is_err() {
        grow_live(size);
        SHARED.allocs.fetch_add(1, Relaxed);
        SHARED.bytes_allocated.fetch_add(size as u64, Relaxed);
    }
}

#[inline]
fn on_free(ptr: *mut u8, size: usize) {
    let done = STATE.try_with(|s| {
        live_shrink(s, size);
        let slot = slot_of(s);
        add(slot, &slot.frees, 1);
        add(slot, &slot.bytes_freed, size as u64);
        s.net.set(s.net.get() - size as i64);
    });
    if done.is_err() {
        LIVE_BYTES.fetch_sub(size as isize, Relaxed);
        SHARED.frees.fetch_add(1, Relaxed);
        SHARED.bytes_freed.fetch_add(size as u64, Relaxed);
    }
    if let Some(sample) = sampler::remove(ptr as usize) {
        sampler::release(sample.trace);
    }
}

#[inline]
fn on_realloc(ptr: *mut u8, old: usize, new: usize, default_rate: usize) {
    let (grown, shrunk) = (new.saturating_sub(old), old.saturating_sub(new));
    let done = STATE.try_with(|s| {
        if grown > 0 {
            live_grow(s, grown);
        } else {
            live_shrink(s, shrunk);
        }
        let slot = slot_of(s);
        add(slot, &slot.reallocs, 1);
        add(slot, &slot.bytes_allocated, grown as u64);
        add(slot, &slot.bytes_freed, shrunk as u64);
        thread_grow(s, grown);
        s.net.set(s.net.get() - shrunk as i64);
        // A reallocation is sampled like a fresh allocation of its new size.
        countdown(s, ptr, new, default_rate);
    });
    if done.is_err() {
        if grown > 0 {
            grow_live(grown);
        } else {
            LIVE_BYTES.fetch_sub(shrunk as isize, Relaxed);
        }
        SHARED.reallocs.fetch_add(1, Relaxed);
        SHARED.bytes_allocated.fetch_add(grown as u64, Relaxed);
        SHARED.bytes_freed.fetch_add(shrunk as u64, Relaxed);
    }
}

#[inline]
fn countdown(s: &ThreadState, ptr: *mut u8, size: usize, default_rate: usize) {
    let rate = SAMPLE_RATE.load(Relaxed);
    if rate == 0 {
        return;
    }
    let left = s.countdown.get() - size as i64;
    s.countdown.set(left);
    if left <= 0 {
        sample_slow(s, ptr, size, rate, default_rate);
    }
}

#[cold]
#[inline(never)]
fn sample_slow(s: &ThreadState, ptr: *mut u8, size: usize, rate: usize, default_rate: usize) {
    let rate = if rate == RATE_UNSET {
        match SAMPLE_RATE.compare_exchange(RATE_UNSET, default_rate, Relaxed, Relaxed) {
            Ok(_) => default_rate,
            Err(current) => current,
        }
    } else {
        rate
    };
    if rate == 0 {
        return;
    }
    let first = s.rng.get() == 0;
    if first {
        // Seeded from the thread-local's address and a counter: distinct per thread.
        static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let seed = SEED.fetch_add(0x6A09_E667_F3BC_C909, Relaxed) ^ (s as *const _ as u64);
        s.rng.set(seed | 1);
    }
    s.countdown.set(next_interval(s, rate));
    if first || s.in_sampler.get() {
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
/// The peak is within [`PEAK_PUBLISH_BYTES`] per thread other than the one that reached it
/// (each may hold that much back, either way), and never below the live bytes read here.
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
    st.peak_bytes = (PEAK_BYTES.load(Relaxed) as u64).max(st.live_bytes);
    st
}

/// Whether a [`TrackingAllocator`] is the global allocator of this process (it has seen
/// at least one allocation).
pub fn is_installed() -> bool {
    stats().total_allocations > 0
}

/// Restarts peak tracking from the current live byte count.
pub fn reset_peak() {
    PEAK_BYTES.store(stats().live_bytes as usize, Relaxed);
}

/// Sets the mean number of bytes between sampled allocations; `0` turns sampling off.
/// Samples already taken stay until their blocks are freed, and keep being weighed by the
/// rate they were taken at. Each thread starts using the new rate after its current
/// interval runs out.
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
        .try_with(|s| ThreadCounters {
            allocs: s.allocs.get(),
            bytes_allocated: s.bytes_allocated.get(),
            net: s.net.get(),
        })
        .unwrap_or_default()
}

/// Starts a new peak window on this thread; returns the previous mark for
/// [`thread_peak_end`].
pub(crate) fn thread_peak_begin() -> i64 {
    STATE
        .try_with(|s| s.peak_mark.replace(s.net.get()))
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
