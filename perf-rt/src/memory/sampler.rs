//! Fixed-size, lock-free tables of sampled allocations and of their stacks.
//!
//! Both live in statics so that recording a sample never allocates. The sample table is
//! open-addressed and keyed by block address; a small counting filter in front of it lets
//! the free path skip the table for almost every block that was never sampled. Each sample
//! keeps the sample rate it was taken at, so that a later change of rate does not
//! re-weigh it. The trace table interns raw instruction-pointer stacks and counts the live
//! samples of each; a stack no live sample uses is recycled when the table runs out of
//! room, so new call sites are never locked out. Symbols are resolved only for reports.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};

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
    rate: AtomicUsize,
}

static ENTRIES: [Entry; TABLE_CAP] = [const {
    Entry {
        ptr: AtomicUsize::new(EMPTY),
        size: AtomicUsize::new(0),
        trace: AtomicU32::new(0),
        rate: AtomicUsize::new(0),
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

/// One sampled block: its size, its stack and the sample rate it was taken at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    pub size: usize,
    pub trace: u32,
    pub rate: usize,
}

/// Records a sampled block. Returns `false` (and counts a dropped sample) when its
/// neighbourhood of the table is full; the caller then releases the stack.
pub(crate) fn insert(ptr: usize, sample: Sample) -> bool {
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
            entry.size.store(sample.size, Relaxed);
            entry.trace.store(sample.trace, Relaxed);
            entry.rate.store(sample.rate, Relaxed);
            entry.ptr.store(ptr, Release);
            LIVE_SAMPLES.fetch_add(1, Relaxed);
            return true;
        }
    }
    filter_of(h).fetch_sub(1, Relaxed);
    DROPPED_SAMPLES.fetch_add(1, Relaxed);
    false
}

/// Forgets a block if it was sampled, returning its sample. The stack stays counted as
/// used until the caller [`release`]s it (a failed reallocation puts the sample back).
#[inline]
pub(crate) fn remove(ptr: usize) -> Option<Sample> {
    // With no sample alive (sampling off, the common case when it matters) every free
    // would otherwise read a filter word at a random place in a 64 KiB table. The count is
    // read-mostly, and it cannot read zero while `ptr`'s sample lives: its increment
    // happened before the block was handed out, so before this free.
    if LIVE_SAMPLES.load(Relaxed) == 0 {
        return None;
    }
    let h = hash(ptr);
    if filter_of(h).load(Relaxed) == 0 {
        return None;
    }
    remove_slow(ptr, h)
}

/// [`remove`] and [`release`] for a block being freed: the path that finds a sample is
/// out of line, so the free path keeps no frame for it.
#[inline]
pub(crate) fn forget(ptr: usize) {
    // As in `remove`.
    if LIVE_SAMPLES.load(Relaxed) == 0 {
        return;
    }
    let h = hash(ptr);
    if filter_of(h).load(Relaxed) != 0 {
        forget_slow(ptr, h);
    }
}

#[cold]
#[inline(never)]
fn forget_slow(ptr: usize, h: u64) {
    if let Some(sample) = remove_slow(ptr, h) {
        release(sample.trace);
    }
}

#[cold]
fn remove_slow(ptr: usize, h: u64) -> Option<Sample> {
    let start = (h >> (64 - TABLE_BITS)) as usize;
    for i in 0..MAX_PROBE {
        let entry = &ENTRIES[(start + i) & (TABLE_CAP - 1)];
        let current = entry.ptr.load(Acquire);
        if current == ptr {
            let found = Sample {
                size: entry.size.load(Relaxed),
                trace: entry.trace.load(Relaxed),
                rate: entry.rate.load(Relaxed),
            };
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

/// Visits every sampled block still allocated (a consistent view of each entry, not of the
/// table as a whole).
pub(crate) fn for_each_live(mut f: impl FnMut(Sample)) {
    for entry in &ENTRIES {
        let ptr = entry.ptr.load(Acquire);
        if ptr <= TOMBSTONE {
            continue;
        }
        let sample = Sample {
            size: entry.size.load(Relaxed),
            trace: entry.trace.load(Relaxed),
            rate: entry.rate.load(Relaxed),
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
/// A trace id is the slot's index and its generation, which changes each time the slot is
/// recycled: an id kept from before names no stack rather than another one.
const GENERATION_MASK: u64 = (1 << (32 - TRACE_BITS)) - 1;
const TRACE_EMPTY: u64 = 0;
const TRACE_WRITING: u64 = 1;
const TRACE_READY: u64 = 2;

/// A slot's state, generation and live-sample count, in one word so that one
/// compare-and-swap checks all three: a sample can only take a stack that is still the
/// one it compared, and a slot can only be recycled while no sample uses it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Word(u64);

impl Word {
    fn new(generation: u64, state: u64, live: u32) -> Self {
        Word(((generation & GENERATION_MASK) << 40) | (state << 32) | u64::from(live))
    }
    fn generation(self) -> u64 {
        self.0 >> 40
    }
    fn state(self) -> u64 {
        (self.0 >> 32) & 0xff
    }
    fn live(self) -> u32 {
        self.0 as u32
    }
}

struct TraceSlot {
    word: AtomicU64,
    hash: AtomicU64,
    len: AtomicUsize,
    frames: [AtomicUsize; MAX_FRAMES],
}

static TRACES: [TraceSlot; TRACE_CAP] = [const {
    TraceSlot {
        word: AtomicU64::new(0),
        hash: AtomicU64::new(0),
        len: AtomicUsize::new(0),
        frames: [const { AtomicUsize::new(0) }; MAX_FRAMES],
    }
}; TRACE_CAP];
static TRACE_COUNT: AtomicUsize = AtomicUsize::new(0);
static TRACES_RECYCLED: AtomicU64 = AtomicU64::new(0);

fn hash_frames(frames: &[usize]) -> u64 {
    frames.iter().fold(0xcbf2_9ce4_8422_2325, |h, &ip| {
        (h ^ ip as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

fn trace_id(index: usize, generation: u64) -> u32 {
    ((generation as u32) << TRACE_BITS) | index as u32
}

fn split_id(id: u32) -> (usize, u64) {
    (
        id as usize & (TRACE_CAP - 1),
        u64::from(id >> TRACE_BITS) & GENERATION_MASK,
    )
}

fn holds(slot: &TraceSlot, h: u64, frames: &[usize]) -> bool {
    slot.hash.load(Relaxed) == h
        && slot.len.load(Relaxed) == frames.len()
        && slot
            .frames
            .iter()
            .zip(frames)
            .all(|(a, &b)| a.load(Relaxed) == b)
}

/// Takes one more live reference on a ready slot, unless it changed since `seen` (another
/// stack, or being recycled).
fn take(slot: &TraceSlot, mut seen: Word) -> bool {
    loop {
        let next = Word(seen.0 + 1);
        match slot
            .word
            .compare_exchange_weak(seen.0, next.0, Acquire, Relaxed)
        {
            Ok(_) => return true,
            Err(now) => {
                let now = Word(now);
                if now.state() != TRACE_READY || now.generation() != seen.generation() {
                    return false;
                }
                seen = now;
            }
        }
    }
}

/// Writes `frames` into a slot this thread has moved to `WRITING`, then publishes it
/// with one live reference.
fn fill(slot: &TraceSlot, generation: u64, h: u64, frames: &[usize]) {
    for (cell, &ip) in slot.frames.iter().zip(frames) {
        cell.store(ip, Relaxed);
    }
    slot.len.store(frames.len(), Relaxed);
    slot.hash.store(h, Relaxed);
    slot.word
        .store(Word::new(generation, TRACE_READY, 1).0, Release);
}

/// Interns a stack for one new sample, returning its id; `None` when every slot of its
/// neighbourhood is taken by stacks that live samples still use. Each id returned must be
/// [`release`]d when its sample goes.
pub(crate) fn intern(frames: &[usize]) -> Option<u32> {
    let h = hash_frames(frames);
    let start = (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - TRACE_BITS)) as usize;
    let mut unused = false;
    for i in 0..MAX_PROBE {
        let index = (start + i) & (TRACE_CAP - 1);
        let slot = &TRACES[index];
        let word = Word(slot.word.load(Acquire));
        match word.state() {
            TRACE_READY => {
                if holds(slot, h, frames) && take(slot, word) {
                    return Some(trace_id(index, word.generation()));
                }
                unused |= word.live() == 0;
            }
            // A slot being written by another thread (maybe with the same stack) is
            // skipped: a duplicate entry is harmless, reports merge stacks by call site.
            TRACE_EMPTY => {
                let writing = Word::new(word.generation(), TRACE_WRITING, 0);
                if slot
                    .word
                    .compare_exchange(word.0, writing.0, Acquire, Relaxed)
                    .is_ok()
                {
                    fill(slot, word.generation(), h, frames);
                    TRACE_COUNT.fetch_add(1, Relaxed);
                    return Some(trace_id(index, word.generation()));
                }
            }
            _ => {}
        }
    }
    // No empty slot left near this stack's place: recycle one that no live sample uses.
    // Slots never become empty again, so a lookup can still stop at the first empty one.
    if unused {
        for i in 0..MAX_PROBE {
            let index = (start + i) & (TRACE_CAP - 1);
            let slot = &TRACES[index];
            let word = Word(slot.word.load(Relaxed));
            if word.state() != TRACE_READY || word.live() != 0 {
                continue;
            }
            let generation = (word.generation() + 1) & GENERATION_MASK;
            let writing = Word::new(generation, TRACE_WRITING, 0);
            if slot
                .word
                .compare_exchange(word.0, writing.0, Acquire, Relaxed)
                .is_ok()
            {
                fill(slot, generation, h, frames);
                TRACES_RECYCLED.fetch_add(1, Relaxed);
                return Some(trace_id(index, generation));
            }
        }
    }
    DROPPED_SAMPLES.fetch_add(1, Relaxed);
    None
}

/// Gives back the reference a sample held on its stack (from [`intern`]).
pub(crate) fn release(id: u32) {
    let (index, generation) = split_id(id);
    let slot = &TRACES[index];
    let mut word = Word(slot.word.load(Relaxed));
    loop {
        // A sample's reference keeps its slot from being recycled: anything else is a
        // stray id, ignored rather than corrupting another stack's count.
        if word.state() != TRACE_READY || word.generation() != generation || word.live() == 0 {
            return;
        }
        match slot
            .word
            .compare_exchange_weak(word.0, word.0 - 1, Release, Relaxed)
        {
            Ok(_) => return,
            Err(now) => word = Word(now),
        }
    }
}

/// The raw instruction pointers of an interned stack; empty if the id is stale (its slot
/// was recycled since).
pub(crate) fn trace_frames(id: u32) -> Vec<usize> {
    let (index, generation) = split_id(id);
    let slot = &TRACES[index];
    let current = |word: Word| word.state() == TRACE_READY && word.generation() == generation;
    if !current(Word(slot.word.load(Acquire))) {
        return Vec::new();
    }
    let len = slot.len.load(Relaxed).min(MAX_FRAMES);
    let frames: Vec<usize> = slot.frames[..len].iter().map(|f| f.load(Relaxed)).collect();
    // Recycled while being read: the frames may be a mix of two stacks.
    if !current(Word(slot.word.load(Acquire))) {
        return Vec::new();
    }
    frames
}

/// Stacks held in the table, and how many times a slot was recycled for a new stack.
pub(crate) fn trace_counts() -> (usize, u64) {
    (TRACE_COUNT.load(Relaxed), TRACES_RECYCLED.load(Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;

    /// The tables are process-wide: tests that fill them must not run beside the others.
    static TABLES: Mutex<()> = Mutex::new(());

    fn sample(size: usize, trace: u32) -> Sample {
        Sample {
            size,
            trace,
            rate: 4096,
        }
    }

    #[test]
    fn insert_then_remove_round_trips_and_misses_unknown_blocks() {
        let _tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
        // Addresses far from anything malloc would hand out in this test binary.
        let base = 0x7000_0000_0000usize;
        let trace = intern(&[base, base + 1, base + 2]).unwrap();
        assert_eq!(intern(&[base, base + 1, base + 2]), Some(trace));
        release(trace);
        assert_eq!(trace_frames(trace), vec![base, base + 1, base + 2]);
        for i in 0..1000 {
            assert!(insert(base + i * 16, sample(i + 1, trace)));
        }
        let mut seen = 0;
        for_each_live(|s| {
            if s.trace == trace {
                seen += 1;
            }
        });
        assert!(seen >= 1000);
        for i in 0..1000 {
            assert_eq!(remove(base + i * 16), Some(sample(i + 1, trace)));
            assert_eq!(remove(base + i * 16), None);
        }
        assert_eq!(remove(base + 1_000_000), None);
        release(trace);
    }

    /// Interns `count` stacks no other test uses, returning the ids of those that found
    /// room.
    fn intern_distinct(round: usize, count: usize) -> Vec<u32> {
        let base = 0x6000_0000_0000usize + round * 0x1000_0000;
        (0..count)
            .filter_map(|k| intern(&[base + k * 16, base + 8, 0x5000]))
            .collect()
    }

    #[test]
    fn a_full_stack_table_recycles_stacks_without_live_samples() {
        let _tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
        // A stack with a live sample, interned first: it must survive every recycling.
        let kept_frames = [0x4000_0000_0000usize, 0x4000_0000_0008];
        let kept = intern(&kept_frames).unwrap();

        // More call sites than slots: the table fills and the rest are dropped.
        let first = intern_distinct(1, 2 * TRACE_CAP);
        assert!(first.len() < 2 * TRACE_CAP, "the table never filled");
        assert!(first.len() > TRACE_CAP / 2, "{} stacks fit", first.len());
        assert!(intern_distinct(2, 64).len() < 64);
        // Their samples go: the slots may be reused.
        for &id in &first {
            release(id);
        }
        // New call sites find room again, as many as the first time.
        let second = intern_distinct(3, 2 * TRACE_CAP);
        assert!(
            second.len() * 10 >= first.len() * 9,
            "after the samples went, {} of {} new call sites found room",
            second.len(),
            first.len()
        );
        let (_, recycled) = trace_counts();
        assert!(recycled > 0);
        // An id from before names its stack or nothing, never the stack now in its slot.
        for &id in &first {
            let frames = trace_frames(id);
            assert!(
                frames.is_empty() || frames[1..] == [0x6000_0000_0000 + 0x1000_0000 + 8, 0x5000],
                "{frames:x?}"
            );
        }
        assert!(first.iter().any(|&id| trace_frames(id).is_empty()));
        // The stack in use was never recycled.
        assert_eq!(trace_frames(kept), kept_frames);
        for id in second {
            release(id);
        }
        release(kept);
    }
}
