//! The query cache without Redis: memory tier, expiry, capacity, `#[optimize_query]` with no
//! global cache.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use perf_rt::cache::{CacheOptions, QueryCache};

#[tokio::test]
async fn insert_get_expire_and_invalidate() {
    let cache = QueryCache::builder()
        .default_expire(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    assert!(!cache.has_redis());
    cache
        .insert("a", vec![1u8, 2], CacheOptions::new().tags(&["t"]))
        .await;
    cache
        .insert("b", "b".to_string(), CacheOptions::new().expire_secs(60))
        .await;
    assert_eq!(cache.get::<Vec<u8>>("a").await, Some(vec![1, 2]));
    assert_eq!(
        cache.get::<String>("a").await,
        None,
        "another type is a miss"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.get::<Vec<u8>>("a").await, None, "default expiry");
    assert_eq!(cache.get::<String>("b").await.as_deref(), Some("b"));
    cache.invalidate("b").await;
    assert_eq!(cache.get::<String>("b").await, None);
    let m = cache.metrics().snapshot();
    assert_eq!((m.memory_hits, m.memory_misses), (2, 3));
}

#[tokio::test]
async fn byte_capacity_evicts() {
    let cache = QueryCache::builder()
        .max_bytes(10_000)
        .build()
        .await
        .unwrap();
    let calls = AtomicUsize::new(0);
    for i in 0..100 {
        let key = format!("k{i}");
        cache
            .get_or_load(&key, CacheOptions::new(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(vec![0u8; 1000])
            })
            .await
            .unwrap();
    }
    // Each entry weighs ~1 KB: at most ~10 stay, so most of the first ones are gone.
    let mut kept = 0;
    for i in 0..100 {
        if cache.get::<Vec<u8>>(&format!("k{i}")).await.is_some() {
            kept += 1;
        }
    }
    assert!(kept <= 12, "kept {kept} entries of 1 KB in 10 KB");
    assert!(cache.metrics().snapshot().evictions > 0);
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[perf_rt::optimize_query(expire = 60)]
async fn uncached(n: u32) -> u32 {
    CALLS.fetch_add(1, Ordering::SeqCst);
    n * 2
}

#[tokio::test]
async fn without_a_global_cache_functions_just_run() {
    assert!(QueryCache::global().is_none());
    assert_eq!(uncached(2).await, 4);
    assert_eq!(uncached(2).await, 4);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
}

struct Repo {
    calls: AtomicUsize,
}

impl Repo {
    #[perf_rt::optimize_query(skip(self), key_prefix = "repo::find")]
    async fn find(&self, id: u32) -> Result<String, std::io::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if id == 0 {
            return Err(std::io::Error::other("no row 0"));
        }
        let n: u32 = id.to_string().parse().map_err(std::io::Error::other)?;
        Ok(format!("row {n}"))
    }
}

#[tokio::test]
async fn methods_early_returns_and_question_marks_compile_and_run() {
    let repo = Repo {
        calls: AtomicUsize::new(0),
    };
    assert_eq!(repo.find(1).await.unwrap(), "row 1");
    assert!(repo.find(0).await.is_err());
    assert_eq!(repo.calls.load(Ordering::SeqCst), 2);
}
