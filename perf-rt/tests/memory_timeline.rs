//! The memory timeline's handle: dropping it leaves the sampler running (as its doc and
//! `std::thread::JoinHandle` say), `stop` ends it.

use std::time::{Duration, Instant};

use perf_rt::memory::{MemoryConfig, MemoryProfiler};

/// Waits until the profiler's timeline holds more than `len` points. A liveness bound, not
/// a timing assertion: a sampler at a 1 ms interval adds a point well within it.
fn grows_past(profiler: &MemoryProfiler, len: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while profiler.timeline().len() <= len {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

fn profiler() -> MemoryProfiler {
    MemoryProfiler::new(MemoryConfig {
        timeline_capacity: 1_000_000,
        ..MemoryConfig::default()
    })
}

#[test]
fn dropping_the_handle_leaves_the_timeline_running() {
    let profiler = profiler();
    let handle = profiler
        .start_timeline_every(Duration::from_millis(1))
        .unwrap();
    assert!(grows_past(&profiler, 0));
    drop(handle);
    let after_drop = profiler.timeline().len();
    assert!(
        grows_past(&profiler, after_drop + 3),
        "the timeline stopped when its handle was dropped"
    );
}

#[test]
fn stop_ends_the_timeline() {
    let profiler = profiler();
    let handle = profiler
        .start_timeline_every(Duration::from_millis(1))
        .unwrap();
    assert!(grows_past(&profiler, 0));
    handle.stop();
    // `stop` joined the sampler's thread: no point can be added any more.
    let stopped = profiler.timeline().len();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(profiler.timeline().len(), stopped);
}
