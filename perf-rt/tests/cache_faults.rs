//! The Redis tier's failure paths, against redis-servers of the tests' own: a half-open
//! invalidation channel, invalidations cancelled during an outage, a full Redis, bounded tag
//! sets, and what an entry read from Redis keeps (its size, its remaining time).

mod cache_support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_support::{OwnRedis, SilentProxy, builder, eventually, namespace, raw};
use perf_rt::cache::{CacheOptions, QueryCache};

const POSTS: CacheOptions<'static> = CacheOptions::new().expire_secs(60).tags(&["posts"]);

async fn read(cache: &QueryCache, key: &str, version: &AtomicUsize) -> usize {
    cache
        .get_or_load(key, POSTS, || async {
            Ok::<_, Infallible>(version.load(Ordering::SeqCst))
        })
        .await
        .unwrap()
}

async fn fast(url: &str, ns: &str) -> QueryCache {
    let cache = builder(url, ns)
        .redis_liveness_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    assert!(cache.redis_available(), "cache did not connect to {url}");
    cache
}

/// Item 5: a subscription that goes silent without closing (an idle timeout on a load
/// balancer) must not leave an instance serving what the others invalidated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_invalidation_channel_is_noticed() {
    let server = OwnRedis::start();
    let proxy = SilentProxy::start(server.port).await;
    let ns = namespace("silent");
    let a = fast(&server.url(), &ns).await;
    let b = fast(&proxy.url(), &ns).await;
    let version = AtomicUsize::new(1);
    assert_eq!(read(&a, "p", &version).await, 1);
    assert_eq!(read(&b, "p", &version).await, 1);
    assert_eq!(read(&b, "p", &version).await, 1);
    assert!(
        b.metrics().snapshot().memory_hits >= 1,
        "B holds p in memory"
    );

    proxy.fall_silent();
    version.store(2, Ordering::SeqCst);
    a.invalidate_tag("posts").await;
    assert!(
        a.metrics().snapshot().unconfirmed_invalidations >= 1,
        "B could not confirm: A waited for it, then went on"
    );
    assert_eq!(
        read(&b, "p", &version).await,
        2,
        "B must not serve its memory copy once it cannot hear Redis"
    );

    proxy.heal();
    assert!(
        eventually(Duration::from_secs(5), async || {
            let hits = b.metrics().snapshot().memory_hits;
            read(&b, "p", &version).await;
            b.metrics().snapshot().memory_hits > hits
        })
        .await,
        "B resubscribed and uses its memory tier again"
    );
    version.store(3, Ordering::SeqCst);
    a.invalidate_tag("posts").await;
    assert_eq!(
        read(&b, "p", &version).await,
        3,
        "and hears invalidations again"
    );
}

/// Item 4: invalidations made while Redis does not answer, by callers that give up (a
/// cancelled request), are all applied once it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_cancelled_during_an_outage_are_not_lost() {
    let server = OwnRedis::start();
    let ns = namespace("cancelled");
    let a = fast(&server.url(), &ns).await;
    let version = AtomicUsize::new(1);
    let tags: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    for (i, tag) in tags.iter().enumerate() {
        let tags = [tag.as_str()];
        let options = CacheOptions::new().expire_secs(60).tags(&tags);
        a.get_or_load(&format!("k{i}"), options, || async {
            Ok::<_, Infallible>(1u32)
        })
        .await
        .unwrap();
    }
    let mut conn = raw(&server.url()).await;
    // Every client waits: calls time out, the data stays.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .unwrap();
    version.store(2, Ordering::SeqCst);
    for (i, tag) in tags.iter().enumerate() {
        // Given up after 0 to 80 ms: most are cancelled mid-call.
        let _ = tokio::time::timeout(
            Duration::from_millis((i as u64 % 5) * 20),
            a.invalidate_tag(tag),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        eventually(Duration::from_secs(5), async || a.redis_available()).await,
        "Redis back"
    );
    let direct = builder(&server.url(), &ns)
        .no_memory_tier()
        .build()
        .await
        .unwrap();
    for i in 0..tags.len() {
        assert_eq!(
            direct.get::<u32>(&format!("k{i}")).await,
            None,
            "the invalidation of t{i} was lost"
        );
    }
}

/// Item 6: a Redis that refuses writes (out of memory) is not an outage: no flush of the
/// memory tiers, and invalidations still reach every instance and Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_is_not_an_outage() {
    let server = OwnRedis::start();
    let ns = namespace("oom");
    let a = fast(&server.url(), &ns).await;
    let b = fast(&server.url(), &ns).await;
    let version = AtomicUsize::new(1);
    assert_eq!(read(&a, "p", &version).await, 1);
    assert_eq!(read(&b, "p", &version).await, 1);
    let before = a.metrics().snapshot();

    let mut conn = raw(&server.url()).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    for i in 0..20 {
        assert_eq!(read(&a, &format!("other{i}"), &version).await, 1);
    }
    assert_eq!(read(&a, "p", &version).await, 1, "memory still serves");
    version.store(2, Ordering::SeqCst);
    a.invalidate_tag("posts").await;
    assert_eq!(
        read(&b, "p", &version).await,
        2,
        "B dropped its copy, Redis's is stale"
    );
    assert_eq!(read(&a, "p", &version).await, 2);

    let after = a.metrics().snapshot();
    assert!(after.redis_refusals > before.redis_refusals, "{after:?}");
    assert_eq!(after.redis_outages, before.redis_outages, "{after:?}");
    assert_eq!(after.memory_flushes, before.memory_flushes, "{after:?}");
    assert!(a.redis_available());
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// Item 6: a tag's set of keys stays bounded, and invalidating a large tag is one O(1)
/// step on the server; the keys are reclaimed afterwards, in batches.
#[tokio::test]
async fn tag_sets_are_bounded_and_reclaimed() {
    let server = OwnRedis::start();
    let ns = namespace("tagsets");
    let a = builder(&server.url(), &ns)
        .max_tag_set_size(8)
        .build()
        .await
        .unwrap();
    for i in 0..40 {
        a.get_or_load(&format!("k{i}"), POSTS, || async { Ok::<_, Infallible>(i) })
            .await
            .unwrap();
    }
    let mut conn = raw(&server.url()).await;
    let members: u64 = redis::cmd("SCARD")
        .arg(format!("{ns}:t:posts"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(members <= 8, "{members} members");
    a.invalidate_tag("posts").await;
    let direct = builder(&server.url(), &ns)
        .no_memory_tier()
        .build()
        .await
        .unwrap();
    for i in 0..40 {
        assert_eq!(direct.get::<i32>(&format!("k{i}")).await, None, "k{i}");
    }
    let pattern = format!("{ns}:tg:*");
    assert!(
        eventually(Duration::from_secs(3), async || {
            let left: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .unwrap();
            left.is_empty()
        })
        .await,
        "the renamed set was reclaimed"
    );
}

/// Item 7: an entry read from Redis weighs its bytes in a byte-bounded memory tier, and
/// keeps the time Redis still gives it rather than a fresh full expiry.
#[tokio::test]
async fn entries_from_redis_keep_their_size_and_remaining_time() {
    let server = OwnRedis::start();
    let ns = namespace("weight");
    let a = builder(&server.url(), &ns).build().await.unwrap();
    let b = builder(&server.url(), &ns)
        .max_bytes(10_000)
        .build()
        .await
        .unwrap();
    let big = CacheOptions::new().expire_secs(60);
    for i in 0..50 {
        a.get_or_load(&format!("k{i}"), big, || async {
            Ok::<_, Infallible>(vec![i as u8; 1000])
        })
        .await
        .unwrap();
    }
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        for i in 0..50 {
            let calls = calls.clone();
            b.get_or_load(&format!("k{i}"), big, || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(vec![0u8; 1000])
            })
            .await
            .unwrap();
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "all from Redis");
    let m = b.metrics().snapshot();
    assert!(
        m.memory_hits <= 15,
        "50 entries of 1 KB from Redis kept in a 10 KB tier: {m:?}"
    );

    // Stored with 1.5 s to live, read 1 s later: gone from memory with Redis, not 1.5 s later.
    let short = CacheOptions::new().expire(Duration::from_millis(1500));
    a.get_or_load("short", short, || async { Ok::<_, Infallible>(1u32) })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let c = builder(&server.url(), &ns).build().await.unwrap();
    let load = |n: u32| async move { Ok::<_, Infallible>(n) };
    assert_eq!(c.get_or_load("short", short, || load(2)).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        c.get_or_load("short", short, || load(3)).await.unwrap(),
        3,
        "the memory copy outlived the Redis entry"
    );
}

/// Item 4 (found by the soak): Redis is back, one instance already uses it again, the other
/// has not noticed yet. A write through the second must still reach Redis before it
/// returns, or the first stores what it read before the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_an_instance_that_has_not_noticed_the_return_of_redis() {
    let mut server = OwnRedis::start();
    let ns = namespace("return");
    let a = builder(&server.url(), &ns)
        .redis_retry_interval(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let b = fast(&server.url(), &ns).await;
    assert!(a.redis_available());
    server.kill();
    assert_eq!(a.get::<u32>("anything").await, None);
    assert!(!a.redis_available(), "A noticed the outage");
    // Long enough that the others stopped trusting their memory: A's writes no longer wait.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    server.restart();
    assert!(eventually(Duration::from_secs(5), async || b.redis_available()).await);
    assert!(!a.redis_available(), "A will not probe for a while");

    let version = Arc::new(AtomicUsize::new(1));
    let (started, release) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let loading = {
        let (b, version, started, release) =
            (b.clone(), version.clone(), started.clone(), release.clone());
        tokio::spawn(async move {
            b.get_or_load("row", POSTS, || async move {
                let read = version.load(Ordering::SeqCst); // before the write
                started.notify_one();
                release.notified().await;
                Ok::<_, Infallible>(read)
            })
            .await
        })
    };
    started.notified().await;
    version.store(2, Ordering::SeqCst);
    a.invalidate_tag("posts").await;
    let mut conn = raw(&server.url()).await;
    let bumped: Option<u64> = redis::cmd("GET")
        .arg(format!("{ns}:v:posts"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        bumped,
        Some(1),
        "the invalidation was in Redis when the write returned"
    );
    release.notify_one();
    assert_eq!(
        loading.await.unwrap().unwrap(),
        1,
        "a read concurrent with the write"
    );
    let direct = builder(&server.url(), &ns)
        .no_memory_tier()
        .build()
        .await
        .unwrap();
    assert_eq!(
        direct.get::<usize>("row").await,
        None,
        "B stored in Redis a value read before A's write returned"
    );
}

/// The liveness pings of a healthy channel are answered: they never drop it (each drop
/// would flush the memory tier).
#[tokio::test]
async fn a_healthy_channel_stays_up_between_pings() {
    let url = cache_support::redis_url();
    let ns = namespace("healthy");
    let a = fast(&url, &ns).await;
    let version = AtomicUsize::new(1);
    read(&a, "p", &version).await;
    let flushes = a.metrics().snapshot().memory_flushes;
    tokio::time::sleep(Duration::from_millis(1500)).await; // fifteen pings
    assert_eq!(a.metrics().snapshot().memory_flushes, flushes);
    let hits = a.metrics().snapshot().memory_hits;
    read(&a, "p", &version).await;
    assert_eq!(a.metrics().snapshot().memory_hits, hits + 1);
}
