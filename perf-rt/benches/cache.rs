//! Query cache hit paths against their peers, measured in the same run.
//!
//! ```text
//! PERF_TEST_REDIS_URL=redis://127.0.0.1:6379 \
//!   cargo bench -p perf-rt --features cache,cache-redis --bench cache
//! ```
//!
//! - `memory_hit`: `QueryCache::get_or_load` with the key built from the arguments, against a
//!   bare `moka::future::Cache::get` with a prebuilt key.
//! - `redis_hit`: the Redis tier alone (no memory tier), against a bare `GET` of the same
//!   bytes over the same kind of connection.
//! - `memoize`: a function under `#[optimize_query]` against the same function under the
//!   `cached` crate's `#[cached]` (unbounded, and with `size` + `time` like the query
//!   cache); `memoize_2_threads`: the same with both cores calling at once.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use perf_rt::cache::{CacheOptions, KeyBuilder, QueryCache};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Row {
    id: u64,
    title: String,
    tags: Vec<String>,
}

fn row(id: u64) -> Row {
    Row {
        id,
        title: format!("Post number {id}: a title of ordinary length"),
        tags: vec!["rust".into(), "web".into()],
    }
}

const OPTIONS: CacheOptions<'static> = CacheOptions::new().expire_secs(3600).tags(&["posts"]);

fn key(id: u64) -> String {
    let mut k = KeyBuilder::new("bench::post");
    k.arg(&id);
    k.finish().unwrap()
}

#[perf_rt::optimize_query(expire = 3600, tags = ["posts"])]
async fn post_perf(id: u64) -> Row {
    row(id)
}

#[cached::proc_macro::cached]
async fn post_cached(id: u64) -> Row {
    row(id)
}

/// The same, bounded and expiring like the query cache (an LRU of 10,000 with a TTL).
#[cached::proc_macro::cached(size = 10000, time = 3600)]
async fn post_cached_bounded(id: u64) -> Row {
    row(id)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn redis_url() -> String {
    std::env::var("PERF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn memory_hit(c: &mut Criterion) {
    let rt = runtime();
    let cache = rt.block_on(QueryCache::builder().build()).unwrap();
    let moka = moka::future::Cache::<String, Row>::new(10_000);
    rt.block_on(async {
        cache
            .get_or_load(&key(42), OPTIONS, || async { Ok::<_, Infallible>(row(42)) })
            .await
            .unwrap();
        moka.insert(key(42), row(42)).await;
    });
    let prebuilt = key(42);

    let mut g = c.benchmark_group("memory_hit");
    g.bench_function("perf_rt_get_or_load_with_key", |b| {
        b.to_async(&rt).iter(|| async {
            let id = black_box(42u64);
            cache
                .get_or_load(&key(id), OPTIONS, || async { Ok::<_, Infallible>(row(id)) })
                .await
                .unwrap()
        })
    });
    g.bench_function("moka_future_get", |b| {
        b.to_async(&rt)
            .iter(|| async { moka.get(black_box(prebuilt.as_str())).await.unwrap() })
    });
    g.finish();
    paired(
        &rt,
        "memory_hit",
        2000,
        200,
        || async {
            let id = black_box(42u64);
            cache
                .get_or_load(&key(id), OPTIONS, || async { Ok::<_, Infallible>(row(id)) })
                .await
                .unwrap()
        },
        || async { moka.get(black_box(prebuilt.as_str())).await.unwrap() },
    );
}

fn redis_hit(c: &mut Criterion) {
    let rt = runtime();
    let url = redis_url();
    let ns = format!("perfbench-{}", std::process::id());
    let cache = rt
        .block_on(
            QueryCache::builder()
                .redis_url(&url)
                .namespace(&ns)
                .no_memory_tier()
                .build(),
        )
        .unwrap();
    assert!(cache.redis_available(), "Redis at {url} unreachable");
    let mut bare = rt
        .block_on(
            redis::Client::open(url.as_str())
                .unwrap()
                .get_connection_manager(),
        )
        .unwrap();
    let bytes: Vec<u8> = rt.block_on(async {
        cache
            .get_or_load(&key(7), OPTIONS, || async { Ok::<_, Infallible>(row(7)) })
            .await
            .unwrap();
        redis::cmd("GET")
            .arg(format!("{ns}:k:{}", key(7)))
            .query_async(&mut bare)
            .await
            .unwrap()
    });
    let bare_key = format!("{ns}:bare");
    rt.block_on(async {
        let _: () = redis::cmd("SET")
            .arg(&bare_key)
            .arg(&bytes)
            .query_async(&mut bare)
            .await
            .unwrap();
    });

    let mut g = c.benchmark_group("redis_hit");
    g.bench_function("perf_rt_get_or_load_redis_tier", |b| {
        b.to_async(&rt).iter(|| async {
            let id = black_box(7u64);
            cache
                .get_or_load(&key(id), OPTIONS, || async { Ok::<_, Infallible>(row(id)) })
                .await
                .unwrap()
        })
    });
    g.bench_function("redis_get_same_bytes", |b| {
        b.to_async(&rt).iter(|| {
            let mut conn = bare.clone();
            let k = bare_key.clone();
            async move {
                redis::cmd("GET")
                    .arg(black_box(&k))
                    .query_async::<Vec<u8>>(&mut conn)
                    .await
                    .unwrap()
            }
        })
    });
    g.finish();
    paired(
        &rt,
        "redis_hit",
        50,
        200,
        || async {
            let id = black_box(7u64);
            cache
                .get_or_load(&key(id), OPTIONS, || async { Ok::<_, Infallible>(row(id)) })
                .await
                .unwrap()
        },
        || {
            let mut conn = bare.clone();
            let k = bare_key.clone();
            async move {
                redis::cmd("GET")
                    .arg(black_box(&k))
                    .query_async::<Vec<u8>>(&mut conn)
                    .await
                    .unwrap()
            }
        },
    );
    rt.block_on(cache.clear());
    assert_eq!(
        cache.metrics().snapshot().loads,
        1,
        "every iteration hit Redis"
    );
}

fn memoize(c: &mut Criterion) {
    let rt = runtime();
    let cache = rt.block_on(QueryCache::builder().build()).unwrap();
    perf_rt::cache::set_global(cache).unwrap();
    rt.block_on(async {
        post_perf(3).await;
        post_cached(3).await;
        post_cached_bounded(3).await;
    });
    let mut g = c.benchmark_group("memoize");
    g.bench_function("perf_rt_optimize_query", |b| {
        b.to_async(&rt).iter(|| post_perf(black_box(3)))
    });
    g.bench_function("cached_macro", |b| {
        b.to_async(&rt).iter(|| post_cached(black_box(3)))
    });
    g.bench_function("cached_macro_size_time", |b| {
        b.to_async(&rt).iter(|| post_cached_bounded(black_box(3)))
    });
    g.finish();
    paired(
        &rt,
        "memoize vs cached",
        2000,
        200,
        || post_perf(black_box(3)),
        || post_cached(black_box(3)),
    );
    paired(
        &rt,
        "memoize vs cached(size,time)",
        2000,
        200,
        || post_perf(black_box(3)),
        || post_cached_bounded(black_box(3)),
    );

    // Both cores reading at once: `cached` serialises every hit on one mutex, moka does not.
    let mut g = c.benchmark_group("memoize_2_threads");
    g.bench_function("perf_rt_optimize_query", |b| {
        b.iter_custom(|iters| {
            parallel(iters, || async {
                black_box(post_perf(3).await);
            })
        })
    });
    g.bench_function("cached_macro", |b| {
        b.iter_custom(|iters| {
            parallel(iters, || async {
                black_box(post_cached(3).await);
            })
        })
    });
    g.finish();
    let m = QueryCache::global().unwrap().metrics().snapshot();
    assert_eq!(m.loads, 1, "every iteration hit");
}

/// Interleaved A/B measurement, robust to a machine whose load changes during the run:
/// `rounds` times, a block of `ops` calls of `a` then of `b` (order alternating); prints the
/// median per-call time of each and the median of the per-round ratios a/b.
fn paired<A, FA, B, FB>(
    rt: &tokio::runtime::Runtime,
    name: &str,
    ops: u32,
    rounds: usize,
    a: A,
    b: B,
) where
    A: Fn() -> FA,
    FA: std::future::Future,
    B: Fn() -> FB,
    FB: std::future::Future,
{
    let block = |which: bool| {
        rt.block_on(async {
            let started = std::time::Instant::now();
            for _ in 0..ops {
                if which {
                    black_box(a().await);
                } else {
                    black_box(b().await);
                }
            }
            started.elapsed().as_nanos() as f64 / f64::from(ops)
        })
    };
    let (mut ta, mut tb, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = block(true);
            (x, block(false))
        } else {
            let y = block(false);
            (block(true), y)
        };
        ta.push(x);
        tb.push(y);
        ratio.push(x / y);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "paired {name}: ours {:.1} ns, peer {:.1} ns, ratio {:.2}x (median of {rounds} interleaved rounds of {ops})",
        median(&mut ta),
        median(&mut tb),
        median(&mut ratio)
    );
}

/// Runs `iters` calls on each of two threads; returns the wall time per pair of calls, so
/// a figure half the single-thread one means perfect scaling.
fn parallel<F, Fut>(iters: u64, f: F) -> Duration
where
    F: Fn() -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let rt = runtime();
                barrier.wait();
                rt.block_on(async {
                    for _ in 0..iters {
                        f().await;
                    }
                });
            })
        })
        .collect();
    barrier.wait();
    let started = std::time::Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    started.elapsed()
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = memory_hit, redis_hit, memoize
}
criterion_main!(benches);
