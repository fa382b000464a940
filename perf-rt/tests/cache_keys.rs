//! Keys that identify a function exactly (items 8), and single-flight that shares outcomes
//! and scopes invalidations (items 9, 10), on a memory-only global cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use perf_rt::cache::{CacheOptions, QueryCache};

fn global() -> &'static QueryCache {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let cache = std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(QueryCache::builder().build())
                .unwrap()
        })
        .join()
        .unwrap();
        perf_rt::cache::set_global(cache).unwrap();
    });
    QueryCache::global().unwrap()
}

trait Table {
    const NAME: &'static str;
}

/// Generic over the table, same return type: only the type argument tells calls apart.
#[perf_rt::optimize_query(expire = 60)]
async fn table_name<T: Table>() -> String {
    T::NAME.to_string()
}

#[perf_rt::optimize_query(expire = 60, key_prefix = "named")]
async fn named_table<T: Table>(suffix: u8) -> String {
    format!("{}{suffix}", T::NAME)
}

impl Table for Posts {
    const NAME: &'static str = "posts";
}

impl Table for Users {
    const NAME: &'static str = "users";
}

struct Posts;
struct Users;

impl Posts {
    #[perf_rt::optimize_query(expire = 60)]
    async fn count() -> String {
        "posts".into()
    }
}

impl Users {
    #[perf_rt::optimize_query(expire = 60)]
    async fn count() -> String {
        "users".into()
    }
}

static SHARED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[perf_rt::optimize_query(expire = 60, key_prefix = "one-prefix")]
async fn first_owner(n: u32) -> String {
    SHARED_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("first {n}")
}

#[perf_rt::optimize_query(expire = 60, key_prefix = "one-prefix")]
async fn second_owner(n: u32) -> String {
    SHARED_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("second {n}")
}

#[tokio::test]
async fn generic_instances_and_same_named_methods_do_not_share_entries() {
    global();
    // Same arguments, same module, name and return type: only the type tells them apart.
    assert_eq!(table_name::<Posts>().await, "posts");
    assert_eq!(table_name::<Users>().await, "users");
    assert_eq!(named_table::<Posts>(1).await, "posts1");
    assert_eq!(named_table::<Users>(1).await, "users1");
    assert_eq!(table_name::<Posts>().await, "posts");
    assert_eq!(Posts::count().await, "posts");
    assert_eq!(Users::count().await, "users");
    assert_eq!(Posts::count().await, "posts");
}

#[tokio::test]
async fn a_key_prefix_claimed_twice_is_refused_to_the_second_function() {
    global();
    assert_eq!(first_owner(1).await, "first 1");
    assert_eq!(
        second_owner(1).await,
        "second 1",
        "not the first one's entry"
    );
    assert_eq!(first_owner(1).await, "first 1");
    let before = SHARED_CALLS.load(Ordering::SeqCst);
    second_owner(1).await;
    assert_eq!(
        SHARED_CALLS.load(Ordering::SeqCst),
        before + 1,
        "the second owner runs uncached"
    );
    first_owner(1).await;
    assert_eq!(
        SHARED_CALLS.load(Ordering::SeqCst),
        before + 1,
        "the first stays cached"
    );
}

/// Item 9: waiters behind a failing load get its error, without a load each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_share_a_failure() {
    let cache = QueryCache::builder().build().await.unwrap();
    let loads = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let (cache, loads, gate) = (cache.clone(), loads.clone(), gate.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load_shared("failing", CacheOptions::new(), || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.acquire().await;
                        Err::<u32, Arc<std::io::Error>>(Arc::new(std::io::Error::other("db down")))
                    })
                    .await
            })
        })
        .collect();
    // Time for the ten to line up behind the first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.add_permits(100);
    for c in callers {
        assert_eq!(c.await.unwrap().unwrap_err().to_string(), "db down");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for ten callers");
    assert_eq!(cache.metrics().snapshot().shared_outcomes, 9);
}

/// Item 9: with an error that cannot be cloned, the waiters still do not queue up one
/// after another: they run their loads together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_of_an_unshareable_failure_retry_together() {
    let cache = QueryCache::builder().build().await.unwrap();
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let (cache, running, most) = (cache.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("failing", CacheOptions::new(), || async move {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Err::<u32, std::io::Error>(std::io::Error::other("db down"))
                    })
                    .await
            })
        })
        .collect();
    for c in callers {
        assert!(c.await.unwrap().is_err());
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        5,
        "the five waiters retried at once"
    );
}

/// Item 9: an invalidation discards only the loads of its own tag or key.
#[tokio::test]
async fn an_invalidation_only_discards_loads_it_concerns() {
    let cache = QueryCache::builder().build().await.unwrap();
    let posts = CacheOptions::new().tags(&["posts"]);
    let (started, release) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let loading = {
        let (cache, started, release) = (cache.clone(), started.clone(), release.clone());
        tokio::spawn(async move {
            cache
                .get_or_load("p", posts, || async move {
                    started.notify_one();
                    release.notified().await;
                    Ok::<_, std::convert::Infallible>(1u32)
                })
                .await
        })
    };
    started.notified().await;
    cache.invalidate_tag("users").await;
    cache.invalidate("some-other-key").await;
    release.notify_one();
    loading.await.unwrap().unwrap();
    assert_eq!(
        cache.get::<u32>("p").await,
        Some(1),
        "stored despite unrelated invalidations"
    );
}

/// Item 10: callers that give up while waiting leave nothing behind: the next caller
/// loads at once instead of waiting for a slot nobody holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_callers_leave_no_slot_behind() {
    let cache = QueryCache::builder().build().await.unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let leader = {
        let (cache, gate) = (cache.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get_or_load("k", CacheOptions::new(), || async move {
                    let _ = gate.acquire().await;
                    Ok::<_, std::convert::Infallible>(1u32)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    for _ in 0..10 {
        let waiting = cache.get_or_load("k", CacheOptions::new(), || async {
            Ok::<_, std::convert::Infallible>(2u32)
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(5), waiting)
                .await
                .is_err()
        );
    }
    leader.abort();
    let _ = leader.await;
    let next = cache.get_or_load("k", CacheOptions::new(), || async {
        Ok::<_, std::convert::Infallible>(3u32)
    });
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("no stuck slot")
            .unwrap(),
        3
    );
}
