//! Query cache against a real Redis (`PERF_TEST_REDIS_URL`): every test in its own namespace.

mod cache_support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cache_support::{OwnRedis, builder, cache, eventually, namespace, raw, redis_url};
use perf_rt::cache::{CacheOptions, QueryCache};

const POSTS: CacheOptions<'static> = CacheOptions::new().expire_secs(60).tags(&["posts"]);

/// A loader that counts its runs and returns `"<tag>-<run>"`.
fn counting(
    calls: &AtomicUsize,
    tag: &'static str,
) -> impl FnOnce() -> std::future::Ready<Result<String, Infallible>> {
    move || {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        std::future::ready(Ok(format!("{tag}-{n}")))
    }
}

async fn load(cache: &QueryCache, key: &str, calls: &AtomicUsize) -> String {
    let f = counting(calls, "v");
    cache.get_or_load(key, POSTS, f).await.unwrap()
}

#[tokio::test]
async fn redis_tier_serves_other_instances_and_honours_ttl() {
    let url = redis_url();
    let ns = namespace("ttl");
    let a = cache(&url, &ns).await;
    let b = cache(&url, &ns).await;
    let calls = AtomicUsize::new(0);
    let short = CacheOptions::new()
        .expire(Duration::from_millis(700))
        .tags(&["posts"]);

    let v1 = a
        .get_or_load("k", short, counting(&calls, "v"))
        .await
        .unwrap();
    let v2 = b
        .get_or_load("k", short, counting(&calls, "v"))
        .await
        .unwrap();
    assert_eq!((v1.as_str(), v2.as_str()), ("v-1", "v-1"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "B must read A's entry from Redis"
    );
    assert_eq!(b.metrics().snapshot().redis_hits, 1);

    let mut conn = raw(&url).await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{ns}:k:k"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=700).contains(&pttl), "Redis TTL {pttl} ms");

    tokio::time::sleep(Duration::from_millis(800)).await;
    let v3 = a
        .get_or_load("k", short, counting(&calls, "v"))
        .await
        .unwrap();
    assert_eq!(v3, "v-2", "expired in memory and in Redis");
    let v4 = b
        .get_or_load("k", short, counting(&calls, "v"))
        .await
        .unwrap();
    assert_eq!(v4, "v-2");
}

#[tokio::test]
async fn tag_invalidation_reaches_the_other_instance() {
    let url = redis_url();
    let ns = namespace("tags");
    let a = cache(&url, &ns).await;
    let b = cache(&url, &ns).await;
    let calls = AtomicUsize::new(0);

    assert_eq!(load(&a, "p1", &calls).await, "v-1");
    assert_eq!(load(&b, "p1", &calls).await, "v-1");
    let users = CacheOptions::new().tags(&["users"]);
    let u = a
        .get_or_load("u1", users, counting(&calls, "u"))
        .await
        .unwrap();
    assert_eq!(u, "u-2");
    // B now holds p1 in memory; A invalidates the tag.
    a.invalidate_tag("posts").await;

    // No memory tier: every read goes to Redis, which must not return the entry any more.
    let direct = builder(&url, &ns).no_memory_tier().build().await.unwrap();
    let probe = AtomicUsize::new(100);
    assert_eq!(load(&direct, "p1", &probe).await, "v-101");
    // The other tag is untouched.
    let u_again = direct.get::<String>("u1").await;
    assert_eq!(u_again.as_deref(), Some("u-2"));

    // B's memory copy is dropped by the broadcast.
    let seen = eventually(Duration::from_secs(2), async || {
        b.metrics().snapshot().invalidations >= 1
    })
    .await;
    assert!(seen, "B never received the invalidation");
    assert_eq!(
        load(&b, "p1", &calls).await,
        "v-101",
        "B reads the reloaded entry"
    );
    assert_eq!(load(&a, "p1", &calls).await, "v-101");
}

#[tokio::test]
async fn key_invalidation_and_clear_reach_the_other_instance() {
    let url = redis_url();
    let ns = namespace("keys");
    let a = cache(&url, &ns).await;
    let b = cache(&url, &ns).await;
    let calls = AtomicUsize::new(0);
    load(&a, "x", &calls).await;
    load(&a, "y", &calls).await;
    assert_eq!(load(&b, "x", &calls).await, "v-1");
    assert_eq!(load(&b, "y", &calls).await, "v-2");

    a.invalidate("x").await;
    assert!(
        eventually(Duration::from_secs(2), async || b
            .get::<String>("x")
            .await
            .is_none())
        .await
    );
    assert_eq!(b.get::<String>("y").await.as_deref(), Some("v-2"));

    a.clear().await;
    assert!(
        eventually(Duration::from_secs(2), async || b
            .get::<String>("y")
            .await
            .is_none())
        .await
    );
    let mut conn = raw(&url).await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{ns}:k:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_load_overlapping_an_invalidation_is_not_stored() {
    let url = redis_url();
    let ns = namespace("overlap");
    let a = cache(&url, &ns).await;
    let b = cache(&url, &ns).await;
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());

    let loading = {
        let (a, started, release) = (a.clone(), started.clone(), release.clone());
        tokio::spawn(async move {
            a.get_or_load("q", POSTS, || async move {
                started.notify_one();
                release.notified().await;
                Ok::<_, Infallible>("read before the write".to_string())
            })
            .await
        })
    };
    started.notified().await;
    b.invalidate_tag("posts").await; // the write lands while A's query runs
    release.notify_one();
    assert_eq!(loading.await.unwrap().unwrap(), "read before the write");

    let calls = AtomicUsize::new(0);
    assert_eq!(
        load(&a, "q", &calls).await,
        "v-1",
        "A must not have kept the stale value"
    );
    assert_eq!(load(&b, "q", &calls).await, "v-1");
}

#[tokio::test]
async fn a_load_overlapping_a_key_invalidation_is_not_stored() {
    let url = redis_url();
    let ns = namespace("overlap-key");
    let a = cache(&url, &ns).await;
    let b = cache(&url, &ns).await;
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let loading = {
        let (a, started, release) = (a.clone(), started.clone(), release.clone());
        tokio::spawn(async move {
            a.get_or_load("q", CacheOptions::new(), || async move {
                started.notify_one();
                release.notified().await;
                Ok::<_, Infallible>("stale".to_string())
            })
            .await
        })
    };
    started.notified().await;
    b.invalidate("q").await;
    release.notify_one();
    assert_eq!(loading.await.unwrap().unwrap(), "stale");
    assert_eq!(
        b.get::<String>("q").await,
        None,
        "Redis must not hold the stale value"
    );
    assert_eq!(a.get::<String>("q").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_misses_run_one_load() {
    let url = redis_url();
    let ns = namespace("stampede");
    let a = cache(&url, &ns).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (a, calls) = (a.clone(), calls.clone());
            tokio::spawn(async move {
                a.get_or_load("hot", POSTS, || async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, Infallible>(calls.fetch_add(1, Ordering::SeqCst))
                })
                .await
                .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 0);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(a.metrics().snapshot().loads, 1);
}

#[tokio::test]
async fn loader_errors_are_returned_and_not_cached() {
    let url = redis_url();
    let ns = namespace("errors");
    let a = cache(&url, &ns).await;
    let err: Result<String, &str> = a.get_or_load("e", POSTS, || async { Err("db down") }).await;
    assert_eq!(err, Err("db down"));
    let ok: Result<String, &str> = a
        .get_or_load("e", POSTS, || async { Ok("fine".into()) })
        .await;
    assert_eq!(ok.as_deref(), Ok("fine"));
    let m = a.metrics().snapshot();
    assert_eq!((m.loads, m.load_errors), (2, 1));
}

#[tokio::test]
async fn a_corrupt_or_foreign_value_is_a_miss() {
    let url = redis_url();
    let ns = namespace("corrupt");
    let a = builder(&url, &ns).no_memory_tier().build().await.unwrap();
    let mut conn = raw(&url).await;
    let calls = AtomicUsize::new(0);
    for (i, garbage) in [
        b"not ours at all".to_vec(),
        b"PQ\x01old format".to_vec(),
        b"PQ\x02\xff\xff\xff\xff\xff\xff\xff".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let _: () = redis::cmd("SET")
            .arg(format!("{ns}:k:c"))
            .arg(garbage)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(a.get::<String>("c").await, None);
        let v = load(&a, "c", &calls).await;
        assert_eq!(v, format!("v-{}", i + 1));
        // The reload replaced the garbage with a readable entry.
        assert_eq!(a.get::<String>("c").await, Some(v));
    }
    // A value of another type under the key is undecodable as well.
    assert_eq!(a.get::<Vec<u64>>("c").await, None);
    assert!(a.metrics().snapshot().decode_errors >= 6);
}

mod macro_keys {
    use super::*;
    use std::sync::OnceLock;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    /// The global cache lives on its own runtime: test runtimes end with their test.
    fn global(ns: &'static OnceLock<String>) -> &'static QueryCache {
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        static INIT: OnceLock<()> = OnceLock::new();
        INIT.get_or_init(|| {
            let rt = RT.get_or_init(|| tokio::runtime::Runtime::new().unwrap());
            let ns = ns.get_or_init(|| namespace("macro")).clone();
            let cache =
                std::thread::spawn(move || rt.block_on(async { cache(&redis_url(), &ns).await }))
                    .join()
                    .unwrap();
            perf_rt::cache::set_global(cache).unwrap();
        });
        QueryCache::global().unwrap()
    }
    static NS: OnceLock<String> = OnceLock::new();

    #[derive(Debug, serde::Serialize)]
    struct Filter {
        author: u32,
        draft: bool,
    }

    struct Db;

    #[perf_rt::optimize_query(expire = 60, tags = ["posts"], skip(_db))]
    async fn posts(_db: &Db, filter: &Filter, page: u32) -> Result<String, Infallible> {
        let n = CALLS.fetch_add(1, Ordering::SeqCst);
        Ok(format!("{filter:?} page {page} call {n}"))
    }

    #[perf_rt::optimize_query(key_prefix = "count")]
    async fn count(table: &str) -> u64 {
        if table.is_empty() {
            return 0; // early returns stay legal in the body
        }
        CALLS.fetch_add(1, Ordering::SeqCst) as u64 + 1000
    }

    #[perf_rt::optimize_query(tags = ["posts"])]
    fn blocking_len(s: String) -> usize {
        CALLS.fetch_add(1, Ordering::SeqCst);
        s.len()
    }

    #[tokio::test]
    async fn arguments_are_part_of_the_key() {
        let cache = global(&NS);
        let (f1, f2) = (
            Filter {
                author: 1,
                draft: false,
            },
            Filter {
                author: 1,
                draft: true,
            },
        );
        let first = posts(&Db, &f1, 1).await.unwrap();
        assert_eq!(
            posts(&Db, &f1, 1).await.unwrap(),
            first,
            "same arguments: cached"
        );
        let others = [
            posts(&Db, &f2, 1).await.unwrap(),
            posts(&Db, &f1, 2).await.unwrap(),
        ];
        assert_ne!(others[0], first);
        assert_ne!(others[1], first);
        assert_ne!(others[0], others[1]);

        // The entry is in Redis under the function's path, in the cache's namespace.
        let mut conn = raw(&redis_url()).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:k:*macro_keys::posts:*", NS.get().unwrap()))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(keys.len(), 3, "{keys:?}");

        cache.invalidate_tag("posts").await;
        assert_ne!(
            posts(&Db, &f1, 1).await.unwrap(),
            first,
            "invalidated by tag"
        );
    }

    #[tokio::test]
    async fn plain_results_and_blocking_functions() {
        let cache = global(&NS);
        let a = count("posts").await;
        assert_eq!(count("posts").await, a);
        assert_ne!(count("users").await, a);
        assert_eq!(count("").await, 0);

        let before = CALLS.load(Ordering::SeqCst);
        assert_eq!(blocking_len("abc".into()), 3);
        assert_eq!(blocking_len("abc".into()), 3);
        assert_eq!(CALLS.load(Ordering::SeqCst), before + 1);
        assert_eq!(blocking_len("abcd".into()), 4);
        assert_eq!(CALLS.load(Ordering::SeqCst), before + 2);
        cache.invalidate_tag_local("posts");
        blocking_len("abc".into());
        assert_eq!(CALLS.load(Ordering::SeqCst), before + 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_test() {
    let mut server = OwnRedis::start();
    let url = server.url();
    let ns = namespace("restart");
    let a = cache(&url, &ns).await;
    let b = cache(&url, &ns).await;
    let version = Arc::new(AtomicUsize::new(1)); // the "database"
    let read = |c: QueryCache| {
        let version = version.clone();
        async move {
            let started = Instant::now();
            let v = c
                .get_or_load("row", POSTS, || async {
                    Ok::<_, Infallible>(version.load(Ordering::SeqCst))
                })
                .await
                .unwrap();
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "took {:?}",
                started.elapsed()
            );
            v
        }
    };
    assert_eq!(read(a.clone()).await, 1);
    assert_eq!(read(b.clone()).await, 1);

    server.kill();
    for _ in 0..20 {
        assert_eq!(read(a.clone()).await, 1, "memory tier keeps answering");
    }
    // A write while Redis is down: A invalidates locally and queues it for Redis.
    version.store(2, Ordering::SeqCst);
    a.invalidate_tag("posts").await;
    for _ in 0..20 {
        assert_eq!(read(a.clone()).await, 2, "the loader answers");
    }
    assert!(!a.redis_available());
    let m = a.metrics().snapshot();
    assert!(m.redis_outages >= 1 && m.redis_errors >= 1, "{m:?}");
    assert!(m.redis_outages <= 2, "one outage, counted once: {m:?}");

    server.restart();
    let back = eventually(Duration::from_secs(5), async || {
        read(a.clone()).await;
        a.redis_available()
    })
    .await;
    assert!(back, "A did not reconnect");
    assert!(a.metrics().snapshot().redis_reconnects >= 1);
    assert!(a.metrics().snapshot().memory_flushes >= 1);
    // B's memory still holds version 1 from before the outage: its reconnect flushes it.
    let b_back = eventually(Duration::from_secs(5), async || read(b.clone()).await == 2).await;
    assert!(
        b_back,
        "B kept serving the value invalidated while Redis was down"
    );

    // Pub/sub works again: a write through B reaches A.
    assert!(
        eventually(Duration::from_secs(5), async || {
            version.store(3, Ordering::SeqCst);
            b.invalidate_tag("posts").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            read(a.clone()).await == 3
        })
        .await
    );
}
