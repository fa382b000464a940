//! The memory benchmarks under `TrackingAllocator`: sampling off, then the default rate.

use perf_rt::memory::{self, TrackingAllocator};

mod memory_common;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

fn main() {
    if let Ok(rate) = std::env::var("MEMORY_BENCH_SAMPLE_RATE") {
        memory::set_sample_rate(rate.parse().expect("bytes"));
        if memory_common::run_fixed_from_env() {
            return;
        }
    }
    let mut c = memory_common::criterion();
    // The order alternates between rounds (memory_bench.sh), so neither mode always runs
    // first in a fresh process.
    let mut modes = [
        ("tracking_unsampled", 0),
        ("tracking_sampled", memory::DEFAULT_SAMPLE_RATE),
    ];
    if std::env::var_os("MEMORY_BENCH_SAMPLED_FIRST").is_some() {
        modes.reverse();
    }
    for (label, rate) in modes {
        memory::set_sample_rate(rate);
        memory_common::bench(&mut c, label);
    }
    let samples = perf_rt::memory::MemoryProfiler::global().report().sampling;
    eprintln!("sampling at the end: {samples:?}");
    c.final_summary();
}
