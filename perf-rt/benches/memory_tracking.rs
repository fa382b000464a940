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
    memory::set_sample_rate(0);
    memory_common::bench(&mut c, "tracking_unsampled");
    memory::set_sample_rate(memory::DEFAULT_SAMPLE_RATE);
    memory_common::bench(&mut c, "tracking_sampled");
    let samples = perf_rt::memory::MemoryProfiler::global().report().sampling;
    eprintln!("sampling at the end: {samples:?}");
    c.final_summary();
}
