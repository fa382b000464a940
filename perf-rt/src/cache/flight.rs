//! Stampede protection: one load per key at a time in this process.
//!
//! Callers that miss on the same key queue on one per-key lock; the first loads and stores,
//! the others find the value in the in-memory tier when their turn comes. The lock map only
//! holds keys that are being loaded right now. The async lock is released when its future is
//! dropped, so a cancelled request never blocks the next caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Map<L> = Mutex<HashMap<Box<str>, Arc<L>>>;

/// Per-key locks, async and blocking.
#[derive(Default)]
pub(crate) struct Flights {
    tasks: Map<tokio::sync::Mutex<()>>,
    threads: Map<Mutex<()>>,
}

fn checkout<L: Default>(map: &Map<L>, key: &str) -> Arc<L> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(lock) = map.get(key) {
        return lock.clone();
    }
    let lock = Arc::new(L::default());
    map.insert(key.into(), lock.clone());
    lock
}

fn checkin<L>(map: &Map<L>, key: &str, lock: &Arc<L>) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    // The map's copy and ours: nobody else waits for this key.
    if Arc::strong_count(lock) == 2 {
        map.remove(key);
    }
}

/// Holds the load slot of one key until dropped.
pub(crate) struct FlightGuard<'a> {
    flights: &'a Flights,
    key: &'a str,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        checkin(&self.flights.tasks, self.key, &self.lock);
    }
}

impl Flights {
    /// Waits for the load slot of `key`.
    pub(crate) async fn acquire<'a>(&'a self, key: &'a str) -> FlightGuard<'a> {
        let lock = checkout(&self.tasks, key);
        let guard = lock.clone().lock_owned().await;
        FlightGuard {
            flights: self,
            key,
            guard: Some(guard),
            lock,
        }
    }

    /// Runs `f` holding the blocking load slot of `key`.
    pub(crate) fn with_blocking<R>(&self, key: &str, f: impl FnOnce() -> R) -> R {
        struct Release<'a>(&'a Flights, &'a str, Arc<Mutex<()>>);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                checkin(&self.0.threads, self.1, &self.2);
            }
        }
        let release = Release(self, key, checkout(&self.threads, key));
        let result = {
            let _slot = release.2.lock().unwrap_or_else(|e| e.into_inner());
            f()
        };
        drop(release);
        result
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.tasks.lock().unwrap().len() + self.threads.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn map_is_emptied_after_use() {
        let flights = Flights::default();
        {
            let _a = flights.acquire("k").await;
            assert_eq!(flights.in_flight(), 1);
        }
        assert_eq!(flights.in_flight(), 0);
        flights.with_blocking("k", || assert_eq!(flights.in_flight(), 1));
        assert_eq!(flights.in_flight(), 0);
    }
}
