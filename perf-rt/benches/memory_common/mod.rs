//! The allocation-heavy workload shared by the memory benchmarks. Each benchmark binary
//! installs a different global allocator (a process has exactly one) and runs the same
//! functions under the same names, so the figures compare directly.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;

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

/// Criterion settings shared by the memory benchmarks (a noisy 2-core machine: enough
/// samples for a stable median, short enough to run the whole set in a few minutes).
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args()
}

/// Benchmarks both workloads under `label` (the allocator in use).
pub fn bench(c: &mut Criterion, label: &str) {
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
}
