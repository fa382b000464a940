//! Sampling over the life of a process: more call sites than the stack table holds, and a
//! sample rate changed while sampled blocks are live.
//!
//! One test only: the sample rate and the tables are process-wide, and the figures checked
//! here need nothing else sampling at the same time.

use perf_rt::memory::{self, MemoryProfiler, SiteUsage, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

/// Distinct call sites from three levels of dispatch: each arm is its own call
/// instruction, so every (a, b, c) gives a stack of its own.
macro_rules! dispatch {
    ($on:expr, $call:expr; $($n:literal)*) => {
        match $on {
            $($n => $call,)*
            _ => unreachable!(),
        }
    };
}

#[inline(never)]
fn leaf() {
    // Allocated and freed at once: the stack is left without live samples.
    std::hint::black_box(Box::new([0u8; 64]));
}

#[inline(never)]
fn level2(c: usize) {
    dispatch!(c, leaf(); 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
}

#[inline(never)]
fn level1(b: usize, c: usize) {
    dispatch!(b, level2(c); 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
}

#[inline(never)]
fn level0(a: usize, b: usize, c: usize) {
    dispatch!(a, level1(b, c); 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
}

/// A call site first seen once the stack table has been filled: 100 blocks of 1 KiB.
/// (A loop, not a closure: a closure would be the site.)
#[inline(never)]
fn late_call_site() -> Vec<Vec<u8>> {
    let mut blocks = Vec::with_capacity(100);
    for _ in 0..100 {
        blocks.push(vec![1u8; 1024]);
    }
    blocks
}

/// 200 blocks of 1 KiB, sampled at one rate and reported at another.
#[inline(never)]
fn sampled_at_a_fine_rate() -> Vec<Vec<u8>> {
    let mut blocks = Vec::with_capacity(200);
    for _ in 0..200 {
        blocks.push(vec![2u8; 1024]);
    }
    blocks
}

/// Each thread draws its next sampling point at the rate in force: one large block uses
/// up whatever interval was drawn at the previous rate.
fn start_using_the_new_rate() {
    std::hint::black_box(Vec::<u8>::with_capacity(64 << 20));
}

fn site(function: &str) -> Option<SiteUsage> {
    MemoryProfiler::global()
        .take_snapshot(function)
        .by_site()
        .into_iter()
        .find(|s| {
            s.site
                .frame
                .function
                .as_deref()
                .is_some_and(|f| f.ends_with(function))
        })
}

#[test]
fn sampling_stays_right_over_the_life_of_the_process() {
    new_call_sites_are_recorded_after_the_stack_table_filled_up();
    samples_keep_the_rate_they_were_taken_at();
}

fn new_call_sites_are_recorded_after_the_stack_table_filled_up() {
    // Every allocation sampled.
    memory::set_sample_rate(1);
    start_using_the_new_rate();
    // 8,000 call sites, more than the 4,096 slots of the stack table.
    for a in 0..20 {
        for b in 0..20 {
            for c in 0..20 {
                level0(a, b, c);
            }
        }
    }
    let sampling = MemoryProfiler::global().report().sampling;
    assert!(
        sampling.stacks > 3000,
        "the stack table did not fill: {sampling:?}"
    );
    // None of those stacks holds memory any more: a new call site must find a slot.
    let held = late_call_site();
    let usage = site("late_call_site").unwrap_or_else(|| {
        panic!(
            "a call site first seen after the table filled is missing: {:?}",
            MemoryProfiler::global().report().sampling
        )
    });
    // Every block was sampled (rate 1): the estimate is exact. (A site is a line: the
    // list holding the blocks is another one.)
    assert_eq!((usage.bytes, usage.count), (100 * 1024, 100), "{usage:?}");
    drop(held);
    memory::set_sample_rate(memory::DEFAULT_SAMPLE_RATE);
}

fn samples_keep_the_rate_they_were_taken_at() {
    memory::set_sample_rate(64);
    start_using_the_new_rate();
    let held = sampled_at_a_fine_rate();
    // A coarser rate from now on: the blocks already sampled stand for themselves, not
    // for the 512 blocks a sample of 1 KiB stands for at 512 KiB.
    memory::set_sample_rate(memory::DEFAULT_SAMPLE_RATE);
    let usage = site("sampled_at_a_fine_rate").expect("sampled");
    let truth = 200 * 1024;
    assert!(
        usage.bytes >= truth / 2 && usage.bytes <= truth * 2,
        "estimated {} bytes for {truth} live: {usage:?}",
        usage.bytes
    );
    assert!(usage.count >= 100 && usage.count <= 400, "{usage:?}");
    drop(held);
}
