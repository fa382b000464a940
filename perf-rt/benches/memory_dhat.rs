//! The memory benchmarks under dhat's heap profiler, for reference.

mod memory_common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let mut c = memory_common::criterion();
    // Testing mode: profile without writing dhat-heap.json at the end.
    let profiler = dhat::Profiler::builder().testing().build();
    memory_common::bench(&mut c, "dhat");
    drop(profiler);
    c.final_summary();
}
