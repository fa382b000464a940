//! The memory benchmarks under dhat's heap profiler, for reference.

mod memory_common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    // Testing mode: profile without writing dhat-heap.json at the end.
    let profiler = dhat::Profiler::builder().testing().build();
    if memory_common::run_fixed_from_env() {
        return;
    }
    let mut c = memory_common::criterion();
    memory_common::bench(&mut c, "dhat");
    drop(profiler);
    c.final_summary();
}
