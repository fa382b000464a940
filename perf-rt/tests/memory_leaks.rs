//! Snapshots, comparison, leak detection, the timeline and the reports, with sampled call
//! sites resolved to the functions that allocated.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use perf_rt::memory::{
    self, LeakOptions, MemoryConfig, MemoryProfiler, Tracked, TrackingAllocator,
};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::with_sample_rate(std::alloc::System, 4096);

/// Leak judgements look at the whole process: tests here run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

struct Leaked;

static LEAKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
static LEAKED_OBJECTS: Mutex<Vec<Tracked<Leaked>>> = Mutex::new(Vec::new());

/// Leaks 8 blocks of 16 KiB (128 KiB) and one tracked object per call.
#[inline(never)]
fn leaky_function() {
    let mut store = LEAKED.lock().unwrap();
    for _ in 0..8 {
        store.push(vec![7u8; 16 * 1024]);
    }
    LEAKED_OBJECTS.lock().unwrap().push(Tracked::new(Leaked));
}

/// Allocates ~1 MiB in many sizes and frees all of it.
#[inline(never)]
fn steady_workload() -> usize {
    let mut total = 0;
    for round in 0..64 {
        let blocks: Vec<Vec<u64>> = (0..32).map(|i| vec![round as u64; 16 + i * 4]).collect();
        let text: Vec<String> = blocks.iter().map(|b| format!("{b:?}")).collect();
        total += text.iter().map(String::len).sum::<usize>();
    }
    total
}

fn profiler(max_snapshots: usize) -> MemoryProfiler {
    MemoryProfiler::new(MemoryConfig {
        max_snapshots,
        ..MemoryConfig::default()
    })
}

#[test]
fn a_deliberate_leak_is_reported_at_its_call_site() {
    let _serial = serial();
    let profiler = profiler(10);
    for round in 0..5 {
        leaky_function();
        steady_workload();
        profiler.take_snapshot(format!("round {round}"));
    }
    let report = profiler.detect_leaks();
    assert!(report.enough_snapshots);
    assert_eq!(report.snapshots.len(), 5);
    let leak = report
        .leaks
        .iter()
        .find(|l| l.site.key().contains("leaky_function"))
        .unwrap_or_else(|| panic!("no leak at leaky_function: {}", report.to_json()));
    // 4 rounds of growth at 128 KiB each, estimated from samples.
    let expected = 4.0 * 128.0 * 1024.0;
    let ratio = leak.growth_bytes as f64 / expected;
    assert!((0.8..1.25).contains(&ratio), "growth {}", leak.growth_bytes);
    assert_eq!(leak.evidence.len(), 5);
    assert!(leak.evidence.windows(2).all(|w| w[1].value > w[0].value));
    assert!(
        leak.site
            .frame
            .file
            .as_deref()
            .unwrap_or("")
            .ends_with("memory_leaks.rs")
    );
    assert!(leak.site.frame.line.is_some());
    assert!(
        report
            .leaks
            .iter()
            .all(|l| !l.site.key().contains("steady_workload")),
        "{}",
        report.to_json()
    );
    assert_eq!(report.leaks[0].site.key(), leak.site.key(), "largest first");

    let types = report
        .types
        .iter()
        .find(|t| t.type_name.ends_with("Leaked"))
        .expect("the tracked type grows");
    assert_eq!(types.growth_instances, 4);

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(json["leaks"][0]["site"]["frame"]["function"].is_string());
    assert_eq!(json["leaks"][0]["evidence"].as_array().unwrap().len(), 5);
}

#[test]
fn a_steady_workload_produces_no_leak_report() {
    let _serial = serial();
    let profiler = profiler(10);
    let mut checksum = 0;
    for round in 0..6 {
        checksum += steady_workload();
        profiler.take_snapshot(format!("steady {round}"));
    }
    assert!(checksum > 0);
    let report = profiler.detect_leaks();
    assert!(report.enough_snapshots);
    assert!(report.leaks.is_empty(), "{}", report.to_json());
    assert!(report.types.is_empty(), "{}", report.to_json());

    // The same thresholds do flag the leak once it happens between snapshots.
    leaky_function();
    profiler.take_snapshot("leaked once");
    leaky_function();
    profiler.take_snapshot("leaked twice");
    let report = profiler.detect_leaks_with(LeakOptions {
        window: 3,
        ..LeakOptions::default()
    });
    assert!(
        report
            .leaks
            .iter()
            .any(|l| l.site.key().contains("leaky_function")),
        "{}",
        report.to_json()
    );
}

#[test]
fn too_few_snapshots_report_nothing() {
    let _serial = serial();
    let profiler = profiler(10);
    leaky_function();
    profiler.take_snapshot("one");
    leaky_function();
    profiler.take_snapshot("two");
    let report = profiler.detect_leaks();
    assert!(!report.enough_snapshots);
    assert!(report.leaks.is_empty());
}

#[test]
fn compare_shows_growth_by_call_site() {
    let _serial = serial();
    let profiler = profiler(10);
    let before = profiler.take_snapshot("before");
    leaky_function();
    leaky_function();
    let after = profiler.take_snapshot("after");
    let diffs = profiler.compare(&before, &after);
    let diff = diffs
        .iter()
        .find(|d| d.site.key().contains("leaky_function"))
        .expect("the leaking site grew");
    let ratio = diff.bytes_diff as f64 / (256.0 * 1024.0);
    assert!((0.75..1.33).contains(&ratio), "{diff:?}");
    assert!(diff.count_diff > 0);
    assert!(diff.bytes_after > diff.bytes_before);
    // Exact counters agree on the order of magnitude.
    assert!(after.stats.live_bytes >= before.stats.live_bytes + 256 * 1024);
    // Snapshots serialise for the endpoints.
    let json = serde_json::to_value(&*after).unwrap();
    assert_eq!(json["label"], "after");
}

#[test]
fn snapshot_limit_is_honoured() {
    let _serial = serial();
    let small = profiler(3);
    for i in 0..5 {
        small.take_snapshot(i.to_string());
    }
    let labels: Vec<String> = small.snapshots().iter().map(|s| s.label.clone()).collect();
    assert_eq!(labels, ["2", "3", "4"]);
    assert!(small.snapshot("1").is_none());
    assert_eq!(small.snapshot("4").unwrap().label, "4");

    // The default (PERF_MEMORY_MAX_SNAPSHOTS unset in tests): 100.
    let global = MemoryProfiler::global();
    assert_eq!(global.config().max_snapshots, 100);
    for i in 0..105 {
        global.take_snapshot(format!("g{i}"));
    }
    let kept = global.snapshots();
    assert_eq!(kept.len(), 100);
    assert_eq!(kept[0].label, "g5");
    global.clear_snapshots();
}

#[test]
fn timeline_samples_into_a_bounded_ring() {
    let _serial = serial();
    let profiler = MemoryProfiler::new(MemoryConfig {
        timeline_capacity: 4,
        ..MemoryConfig::default()
    });
    let handle = profiler
        .start_timeline_every(Duration::from_millis(5))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while profiler.timeline().len() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    handle.stop();
    let points = profiler.timeline();
    assert_eq!(points.len(), 4, "bounded to its capacity");
    assert!(points.windows(2).all(|w| w[1].at_ms >= w[0].at_ms));
    for p in &points {
        assert!(p.live_bytes > 0);
        assert!(p.rss_bytes.unwrap() >= p.live_bytes / 2);
    }
    // Stopped: no more points.
    let last = points.last().unwrap().at_ms;
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(profiler.timeline().last().unwrap().at_ms, last);
}

#[test]
fn the_memory_report_serialises_with_sites_types_and_stats() {
    let _serial = serial();
    let profiler = profiler(10);
    leaky_function();
    profiler.take_snapshot("for the report");
    profiler.record_timeline_point();
    let report = profiler.report();
    assert!(report.allocator_installed);
    assert_eq!(report.sampling.rate, 4096);
    assert!(report.sampling.live_samples > 0);
    assert!(report.stats.live_bytes >= 128 * 1024);
    assert!(
        report
            .top_sites
            .iter()
            .any(|s| s.site.key().contains("leaky_function"))
    );
    assert!(
        report
            .types
            .iter()
            .any(|t| t.type_name.ends_with("Leaked") && t.live >= 1)
    );
    assert_eq!(report.snapshots.len(), 1);
    assert_eq!(report.timeline.len(), 1);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(json["stats"]["live_bytes"].as_u64().unwrap() >= 128 * 1024);
    assert!(json["top_sites"][0]["site"]["stack"].is_array());
}

#[test]
fn sampling_can_be_turned_off() {
    let _serial = serial();
    memory::set_sample_rate(0);
    let profiler = profiler(10);
    let before = profiler.take_snapshot("off before");
    let held: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 16 * 1024]).collect();
    let after = profiler.take_snapshot("off after");
    memory::set_sample_rate(4096);
    assert_eq!(after.sample_rate, 0);
    // No new samples: call sites can only shrink (samples freed meanwhile).
    let diffs = profiler.compare(&before, &after);
    assert!(diffs.iter().all(|d| d.bytes_diff <= 0), "{diffs:?}");
    // Counters stay exact with sampling off.
    assert!(after.stats.live_bytes >= before.stats.live_bytes + 64 * 16 * 1024);
    drop(held);
}
