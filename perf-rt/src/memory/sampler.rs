//! Fixed-size, lock-free tables of sampled allocations and of their stacks.
//!
//! Both live in statics so that recording a sample never allocates. The sample table is
//! open-addressed and keyed by block address; a small counting filter in front of it lets
//! the free path skip the table for almost every block that was never sampled. The trace
//! table interns raw instruction-pointer stacks; symbols are resolved only for reports.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize};

/// Deepest stack recorded per sample (frames beyond it are cut).
pub(crate) const MAX_FRAMES: usize = 48;

const TABLE_BITS: u32 = 16;
const TABLE_CAP: usize = 1 << TABLE_BITS;
const FILTER_BITS: u32 = 14;
const MAX_PROBE: usize = 64;

const EMPTY: usize = 0;
const BUSY: usize = 1;
const TOMBSTONE: usize = 2;

struct Entry {
    ptr: AtomicUsize,
    size: AtomicUsize,
    trace: AtomicU32,
}

static ENTRIES: [Entry; TABLE_CAP] = [const {
    Entry {
        ptr: AtomicUsize::new(EMPTY),
        size: AtomicUsize::new(0),
        trace: AtomicU32::new(0),
    }
}; TABLE_CAP];
static FILTER: [AtomicU32; 1 << FILTER_BITS] = [const { AtomicU32::new(0) }; 1 << FILTER_BITS];
static LIVE_SAMPLES: AtomicUsize = AtomicUsize::new(0);
static DROPPED_SAMPLES: AtomicU64 = AtomicU64::new(0);

fn hash(ptr: usize) -> u64 {
    (ptr as u64 >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn filter_of(h: u64) -> &'static AtomicU32 {
    &FILTER[(h >> (64 - FILTER_BITS)) as usize]
}

/// Records a sampled block. Returns `false` (and counts a dropped sample) when its
/// neighbourhood of the table is full.
pub(crate) fn insert(ptr: usize, size: usize, trace: u32) -> bool {
    let h = hash(ptr);
    let start = (h >> (64 - TABLE_BITS)) as usize;
    filter_of(h).fetch_add(1, Relaxed);
    for i in 0..MAX_PROBE {
        let entry = &ENTRIES[(start + i) & (TABLE_CAP - 1)];
        let current = entry.ptr.load(Relaxed);
        if (current == EMPTY || current == TOMBSTONE)
            && entry
                .ptr
                .compare_exchange(current, BUSY, Acquire, Relaxed)
                .is_ok()
        {
            entry.size.store(size, Relaxed);
            entry.trace.store(trace, Relaxed);
            entry.ptr.store(ptr, Release);
            LIVE_SAMPLES.fetch_add(1, Relaxed);
            return true;
        }
    }
    filter_of(h).fetch_sub(1, Relaxed);
    DROPPED_SAMPLES.fetch_add(1, Relaxed);
    false
}

/// Forgets a block if it was sampled, returning its size and trace.
#[inline]
pub(crate) fn remove(ptr: usize) -> Option<(usize, u32)> {
    let h = hash(ptr);
    if filter_of(h).load(Relaxed) == 0 {
        return None;
    }
    remove_slow(ptr, h)
}

#[cold]
fn remove_slow(ptr: usize, h: u64) -> Option<(usize, u32)> {
    let start = (h >> (64 - TABLE_BITS)) as usize;
    for i in 0..MAX_PROBE {
        let entry = &ENTRIES[(start + i) & (TABLE_CAP - 1)];
        let current = entry.ptr.load(Acquire);
        if current == ptr {
            let found = (entry.size.load(Relaxed), entry.trace.load(Relaxed));
            // Only the thread freeing `ptr` can remove it: the exchange cannot lose.
            entry.ptr.store(TOMBSTONE, Release);
            filter_of(h).fetch_sub(1, Relaxed);
            LIVE_SAMPLES.fetch_sub(1, Relaxed);
            return Some(found);
        }
        if current == EMPTY {
            break;
        }
    }
    None
}

/// One sampled block still allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LiveSample {
    pub size: usize,
    pub trace: u32,
}

/// Visits every sampled block still allocated (a consistent view of each entry, not of the
/// table as a whole).
pub(crate) fn for_each_live(mut f: impl FnMut(LiveSample)) {
    for entry in &ENTRIES {
        let ptr = entry.ptr.load(Acquire);
        if ptr <= TOMBSTONE {
            continue;
        }
        let sample = LiveSample {
            size: entry.size.load(Relaxed),
            trace: entry.trace.load(Relaxed),
        };
        if entry.ptr.load(Acquire) == ptr {
            f(sample);
        }
    }
}

/// Sampled blocks currently recorded, and samples dropped because a table was full.
pub(crate) fn sample_counts() -> (usize, u64) {
    (LIVE_SAMPLES.load(Relaxed), DROPPED_SAMPLES.load(Relaxed))
}

const TRACE_BITS: u32 = 12;
const TRACE_CAP: usize = 1 << TRACE_BITS;
const TRACE_EMPTY: u8 = 0;
const TRACE_WRITING: u8 = 1;
const TRACE_READY: u8 = 2;

struct TraceSlot {
    state: AtomicU8,
    hash: AtomicU64,
    len: AtomicUsize,
    frames: [AtomicUsize; MAX_FRAMES],
}

static TRACES: [TraceSlot; TRACE_CAP] = [const {
    TraceSlot {
        state: AtomicU8::new(TRACE_EMPTY),
        hash: AtomicU64::new(0),
        len: AtomicUsize::new(0),
        frames: [const { AtomicUsize::new(0) }; MAX_FRAMES],
    }
}; TRACE_CAP];
static TRACE_COUNT: AtomicUsize = AtomicUsize::new(0);

fn hash_frames(frames: &[usize]) -> u64 {
    frames.iter().fold(0xcbf2_9ce4_8422_2325, |h, &ip| {
        (h ^ ip as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// Interns a stack, returning its id; `None` when the trace table is full.
pub(crate) fn intern(frames: &[usize]) -> Option<u32> {
    let h = hash_frames(frames);
    let start = (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - TRACE_BITS)) as usize;
    for i in 0..MAX_PROBE {
        let index = (start + i) & (TRACE_CAP - 1);
        let slot = &TRACES[index];
        let state = slot.state.load(Acquire);
        let same = |slot: &TraceSlot| {
            slot.hash.load(Relaxed) == h
                && slot.len.load(Relaxed) == frames.len()
                && slot
                    .frames
                    .iter()
                    .zip(frames)
                    .all(|(a, &b)| a.load(Relaxed) == b)
        };
        if state == TRACE_READY && same(slot) {
            return Some(index as u32);
        }
        // A slot being written by another thread (maybe with the same stack) is skipped:
        // a duplicate entry is harmless, reports merge stacks by call site.
        if state == TRACE_EMPTY
            && slot
                .state
                .compare_exchange(TRACE_EMPTY, TRACE_WRITING, Acquire, Relaxed)
                .is_ok()
        {
            for (cell, &ip) in slot.frames.iter().zip(frames) {
                cell.store(ip, Relaxed);
            }
            slot.len.store(frames.len(), Relaxed);
            slot.hash.store(h, Relaxed);
            slot.state.store(TRACE_READY, Release);
            TRACE_COUNT.fetch_add(1, Relaxed);
            return Some(index as u32);
        }
    }
    DROPPED_SAMPLES.fetch_add(1, Relaxed);
    None
}

/// The raw instruction pointers of an interned stack.
pub(crate) fn trace_frames(id: u32) -> Vec<usize> {
    let slot = &TRACES[id as usize & (TRACE_CAP - 1)];
    if slot.state.load(Acquire) != TRACE_READY {
        return Vec::new();
    }
    let len = slot.len.load(Relaxed).min(MAX_FRAMES);
    slot.frames[..len].iter().map(|f| f.load(Relaxed)).collect()
}

/// Distinct stacks recorded so far.
pub(crate) fn trace_count() -> usize {
    TRACE_COUNT.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_then_remove_round_trips_and_misses_unknown_blocks() {
        // Addresses far from anything malloc would hand out in this test binary.
        let base = 0x7000_0000_0000usize;
        let trace = intern(&[base, base + 1, base + 2]).unwrap();
        assert_eq!(intern(&[base, base + 1, base + 2]), Some(trace));
        assert_eq!(trace_frames(trace), vec![base, base + 1, base + 2]);
        for i in 0..1000 {
            assert!(insert(base + i * 16, i + 1, trace));
        }
        let mut seen = 0;
        for_each_live(|s| {
            if s.trace == trace {
                seen += 1;
            }
        });
        assert!(seen >= 1000);
        for i in 0..1000 {
            assert_eq!(remove(base + i * 16), Some((i + 1, trace)));
            assert_eq!(remove(base + i * 16), None);
        }
        assert_eq!(remove(base + 1_000_000), None);
    }
}
