//! The memory benchmarks' baseline: the system allocator, untracked.
//! `cargo bench -p perf-rt --features memory --bench memory_system --bench memory_tracking --bench memory_dhat`

mod memory_common;

fn main() {
    if memory_common::run_fixed_from_env() {
        return;
    }
    let mut c = memory_common::criterion();
    memory_common::bench(&mut c, "system");
    c.final_summary();
}
