//! The allocation-heavy workload shared by the memory benchmarks. Each benchmark binary
//! installs a different global allocator (a process has exactly one) and runs the same
//! functions under the same names, so the figures compare directly.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter};

/// Many small `Vec`/`String`/`HashMap` allocations and a JSON round trip: roughly what a
/// request handler rendering a page from a few queries does.
pub fn workload(seed: u64) -> usize {
    let mut index: HashMap<String, Vec<u64>> = HashMap::new();
    for i in 0..200u64 {
        let values: Vec<u64> = (0..(i % 16)).map(|v| v * seed).collect();
        index.insert(format!("key-{i}-{seed}"), values);
    }
    let words: Vec<String> = (0..300).map(|i| (i * seed).to_string()).collect();
    let joined = words.join(",");

    let mut rows = Vec::with_capacity(50);
    for i in 0..50u64 {
        let mut row = serde_json::Map::new();
        row.insert("id".into(), i.into());
        row.insert("name".into(), format!("user {i}").into());
        row.insert(
            "tags".into(),
            serde_json::Value::Array((0..(i % 5)).map(|t| format!("t{t}").into()).collect()),
        );
        rows.push(serde_json::Value::Object(row));
    }
    let text = serde_json::to_string(&rows).expect("serialisable");
    let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");

    index.len() + joined.len() + back.as_array().map_or(0, Vec::len)
}

/// The worst case for a tracking allocator: nothing but small allocations and frees.
pub fn small_blocks() -> usize {
    let blocks: Vec<Box<[u8; 32]>> = (0..256).map(|i| Box::new([i as u8; 32])).collect();
    blocks.iter().map(|b| b[0] as usize).sum()
}

/// Workloads per thread in one iteration of [`two_threads`]: enough CPU time for the
/// scheduler's tick-grained figure (4 ms here) to see every sample.
pub const TWO_THREADS_BATCH: u64 = 64;

/// The mixed workload on two threads at once, `iters` × [`TWO_THREADS_BATCH`] times each: a
/// server's threads allocating together, where counters shared between cores would bounce.
/// Returns the CPU time of both threads together (each reads its own), for [`CpuTime`].
pub fn two_threads(iters: u64) -> u64 {
    let start = std::sync::Barrier::new(2);
    let run = |offset: u64| {
        start.wait();
        let began = thread_cpu_ns();
        let mut sum = 0;
        for i in 0..iters * TWO_THREADS_BATCH {
            sum += workload(black_box(i + offset));
        }
        black_box(sum);
        thread_cpu_ns() - began
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(|| run(1_000_003));
        let mine = run(2);
        mine + other.join().expect("the workload does not panic")
    })
}

/// CPU time of the benchmarking thread (`/proc/thread-self/schedstat`, nanoseconds on
/// CPU): on a shared, overloaded machine, wall time mostly measures the other tenants,
/// since the baseline and the tracked runs are separate processes (one global allocator
/// each).
pub struct CpuTime;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat (Linux) is needed for the CPU-time measurement")
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanos
    }
}

struct Nanos;

impl ValueFormatter for Nanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e-3, "µs")
        } else if typical < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        _throughput: &criterion::Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "(throughput not measured)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// Criterion settings shared by the memory benchmarks: CPU time, enough samples for a
/// stable median, short enough to repeat the set several times.
pub fn criterion() -> Criterion<CpuTime> {
    Criterion::default()
        .with_measurement(CpuTime)
        .sample_size(40)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args()
}

/// Benchmarks both workloads under `label` (the allocator in use).
pub fn bench(c: &mut Criterion<CpuTime>, label: &str) {
    c.bench_function(&format!("workload/{label}"), |b| {
        let mut seed = 1;
        b.iter(|| {
            seed += 1;
            black_box(workload(black_box(seed)))
        })
    });
    c.bench_function(&format!("small_blocks/{label}"), |b| {
        b.iter(|| black_box(small_blocks()))
    });
    // Under dhat (30-80x slower) one iteration would take half a second.
    if label != "dhat" {
        c.bench_function(&format!("two_threads/{label}"), |b| {
            b.iter_custom(two_threads)
        });
    }
}

/// `MEMORY_BENCH_FIXED=workload:N`, `small_blocks:N` or `two_threads:N`: run that workload N times and
/// exit, for counting instructions and cycles with `perf stat` (steadier than time on a
/// shared machine). Returns whether it ran.
pub fn run_fixed_from_env() -> bool {
    let Ok(spec) = std::env::var("MEMORY_BENCH_FIXED") else {
        return false;
    };
    let (name, count) = spec
        .split_once(':')
        .expect("MEMORY_BENCH_FIXED=<workload>:<count>");
    let count: u64 = count.parse().expect("a count");
    let mut sum = 0;
    for i in 0..count {
        sum += match name {
            "workload" => workload(black_box(i + 2)),
            "small_blocks" => small_blocks(),
            "two_threads" => two_threads(1) as usize,
            other => panic!("unknown workload {other}"),
        };
    }
    black_box(sum);
    true
}
