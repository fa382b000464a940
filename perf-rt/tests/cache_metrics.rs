//! The query cache's hit and miss counts: every read counts once overall and once in each
//! tier it asked, so a first read is one miss, whatever path it took.

mod cache_support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_support::{cache, namespace, redis_url};
use perf_rt::cache::{CacheOptions, MetricsSnapshot, QueryCache};

fn figures(m: &MetricsSnapshot) -> [u64; 6] {
    [
        m.hits(),
        m.misses(),
        m.memory_hits,
        m.memory_misses,
        m.redis_hits,
        m.redis_misses,
    ]
}

async fn read(cache: &QueryCache, key: &str, loads: &AtomicUsize) -> u32 {
    cache
        .get_or_load(key, CacheOptions::new(), || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(7u32)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_first_read_is_one_miss_and_the_next_one_hit_in_memory() {
    let cache = QueryCache::builder().build().await.unwrap();
    let loads = AtomicUsize::new(0);
    read(&cache, "k", &loads).await;
    let m = cache.metrics().snapshot();
    // hits, misses, memory hits, memory misses, Redis hits, Redis misses.
    assert_eq!(figures(&m), [0, 1, 0, 1, 0, 0], "{m:?}");
    assert_eq!(m.reads(), 1);
    read(&cache, "k", &loads).await;
    let m = cache.metrics().snapshot();
    assert_eq!(figures(&m), [1, 1, 1, 1, 0, 0], "{m:?}");
    assert_eq!(m.hit_ratio(), 0.5);
    assert_eq!(m.memory_hit_ratio(), 0.5);
    // `get` and the blocking path count the same way.
    assert_eq!(cache.get::<u32>("other").await, None);
    assert_eq!(cache.get::<u32>("k").await, Some(7));
    let blocking =
        cache.get_or_load_blocking("b", CacheOptions::new(), || Ok::<_, Infallible>(1u8));
    assert_eq!(blocking, Ok(1));
    let m = cache.metrics().snapshot();
    assert_eq!(figures(&m), [2, 3, 2, 3, 0, 0], "{m:?}");
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_read_redis_answers_is_a_hit_overall_and_a_miss_in_memory() {
    let url = redis_url();
    let ns = namespace("metrics-tiers");
    let a = cache(&url, &ns).await;
    let b = cache(&url, &ns).await;
    let loads = AtomicUsize::new(0);
    read(&a, "k", &loads).await;
    let m = a.metrics().snapshot();
    assert_eq!(figures(&m), [0, 1, 0, 1, 0, 1], "{m:?}");
    read(&b, "k", &loads).await;
    read(&b, "k", &loads).await;
    let m = b.metrics().snapshot();
    assert_eq!(figures(&m), [2, 0, 1, 1, 1, 0], "{m:?}");
    assert_eq!(m.hit_ratio(), 1.0);
    assert_eq!(m.memory_hit_ratio(), 0.5);
    assert_eq!(m.redis_hit_ratio(), 1.0);
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_sharing_one_load_are_one_miss_each_and_nothing_more() {
    let cache = Arc::new(QueryCache::builder().build().await.unwrap());
    let loads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("slow", CacheOptions::new(), || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, Infallible>(1u64)
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let m = cache.metrics().snapshot();
    assert_eq!(m.reads(), 8, "{m:?}");
    assert_eq!(m.hits() + m.misses(), 8, "{m:?}");
    // Callers that came after the value was stored hit; the others missed, once each.
    assert_eq!(m.misses(), m.memory_misses, "{m:?}");
    assert!(m.misses() >= 1, "{m:?}");
    assert_eq!(
        m.misses() - 1,
        m.shared_outcomes,
        "one load, the other misses shared it: {m:?}"
    );
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}
