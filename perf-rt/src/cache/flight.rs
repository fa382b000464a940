//! Single-flight: concurrent misses on one key run one load and share its outcome.
//!
//! The first caller to miss becomes the *leader* of a flight; later callers *join* it and
//! wait for its outcome: the value, or the error when the caller can clone it (see
//! [`QueryCache::get_or_load_shared`](super::QueryCache::get_or_load_shared)). A flight
//! carries the [`Snapshot`] its leader took before loading; a caller arriving after an
//! invalidation of that key or tag does not join it (its value may predate the write) and
//! starts a flight of its own.
//!
//! Only the leader touches the map: it removes its flight when it finishes, or when its
//! future is dropped (the waiters then see [`Outcome::Abandoned`] and one of them leads
//! the next attempt). A waiter that gives up simply drops its handle, so nothing a
//! cancelled request leaves behind can hold a key's slot.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use super::memory::{MemoryTier, Snapshot};

type Shared = Arc<dyn Any + Send + Sync>;

/// How a flight ended.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// The loaded value (a `T`).
    Value(Shared),
    /// The load failed; the error (an `E`) when the leader could share it.
    Error(Option<Shared>),
    /// The leader was cancelled or panicked before finishing.
    Abandoned,
}

pub(crate) struct Flight {
    pub(crate) snapshot: Snapshot,
    outcome: Mutex<Option<Outcome>>,
    ready: Condvar,
    notify: tokio::sync::Notify,
}

impl Flight {
    fn take(&self) -> Option<Outcome> {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for the outcome (async callers).
    pub(crate) async fn wait(&self) -> Outcome {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(outcome) = self.take() {
                return outcome;
            }
            notified.await;
        }
    }

    /// Waits for the outcome (blocking callers).
    pub(crate) fn wait_blocking(&self) -> Outcome {
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(o) = &*outcome {
                return o.clone();
            }
            outcome = self.ready.wait(outcome).unwrap_or_else(|e| e.into_inner());
        }
    }
}

type Map = Mutex<HashMap<Box<str>, Arc<Flight>>>;

/// The flights in progress, for async and for blocking loads (kept apart: a blocking
/// waiter must never wait for a task that needs its thread).
#[derive(Default)]
pub(crate) struct Flights {
    tasks: Map,
    threads: Map,
}

/// What a caller got from [`Flights::join`].
pub(crate) enum Role<'a> {
    /// Run the load, then [`Leader::finish`].
    Leader(Leader<'a>),
    /// Wait for this flight's outcome.
    Waiter(Arc<Flight>),
}

/// The load slot of one key. Dropped without [`Self::finish`], it abandons the flight.
pub(crate) struct Leader<'a> {
    map: &'a Map,
    key: Box<str>,
    flight: Arc<Flight>,
    finished: bool,
}

impl Leader<'_> {
    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.flight.snapshot
    }

    /// Publishes the outcome to the waiters.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.publish(outcome);
    }

    fn publish(&mut self, outcome: Outcome) {
        self.finished = true;
        {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            // A caller may have replaced a stale flight with its own.
            if map
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                map.remove(&self.key);
            }
        }
        *self
            .flight
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        self.flight.ready.notify_all();
        self.flight.notify.notify_waiters();
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.publish(Outcome::Abandoned);
        }
    }
}

impl Flights {
    fn join_in<'a>(map: &'a Map, memory: &MemoryTier, key: &str, tags: &[&str]) -> Role<'a> {
        let mut flights = map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = flights.get(key)
            && memory.is_current(&flight.snapshot)
        {
            return Role::Waiter(flight.clone());
        }
        let flight = Arc::new(Flight {
            snapshot: memory.snapshot(key, tags),
            outcome: Mutex::new(None),
            ready: Condvar::new(),
            notify: tokio::sync::Notify::new(),
        });
        flights.insert(key.into(), flight.clone());
        Role::Leader(Leader {
            map,
            key: key.into(),
            flight,
            finished: false,
        })
    }

    /// Leads a new flight of `key`, or joins the current one.
    pub(crate) fn join<'a>(&'a self, memory: &MemoryTier, key: &str, tags: &[&str]) -> Role<'a> {
        Self::join_in(&self.tasks, memory, key, tags)
    }

    /// [`Self::join`] for blocking loads.
    pub(crate) fn join_blocking<'a>(
        &'a self,
        memory: &MemoryTier,
        key: &str,
        tags: &[&str],
    ) -> Role<'a> {
        Self::join_in(&self.threads, memory, key, tags)
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.tasks.lock().unwrap().len() + self.threads.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::memory::MemoryCapacity;
    use crate::cache::metrics::CacheMetrics;

    fn memory() -> MemoryTier {
        MemoryTier::new(MemoryCapacity::Entries(10), CacheMetrics::default())
    }

    #[tokio::test]
    async fn waiters_share_the_outcome_and_the_map_empties() {
        let (flights, m) = (Flights::default(), memory());
        let Role::Leader(leader) = flights.join(&m, "k", &["t"]) else {
            panic!("first caller leads")
        };
        let Role::Waiter(flight) = flights.join(&m, "k", &["t"]) else {
            panic!("second caller waits")
        };
        assert_eq!(flights.in_flight(), 1);
        leader.finish(Outcome::Value(Arc::new(7u32)));
        let Outcome::Value(v) = flight.wait().await else {
            panic!()
        };
        assert_eq!(v.downcast_ref::<u32>(), Some(&7));
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_leader_or_waiter_leaves_nothing_behind() {
        let (flights, m) = (Flights::default(), memory());
        let Role::Leader(leader) = flights.join(&m, "k", &[]) else {
            panic!()
        };
        let Role::Waiter(flight) = flights.join(&m, "k", &[]) else {
            panic!()
        };
        // A waiter cancelled while waiting: its future is dropped mid-wait.
        let waiting = flight.clone();
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(10), async move {
            waiting.wait().await;
        })
        .await;
        assert!(cancelled.is_err());
        drop(leader);
        assert!(matches!(flight.wait().await, Outcome::Abandoned));
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn no_one_joins_a_flight_that_an_invalidation_overtook() {
        let (flights, m) = (Flights::default(), memory());
        let Role::Leader(old) = flights.join(&m, "k", &["t"]) else {
            panic!()
        };
        m.invalidate_tag("t");
        let Role::Leader(new) = flights.join(&m, "k", &["t"]) else {
            panic!("a flight older than the invalidation is not joined")
        };
        old.finish(Outcome::Error(None));
        assert_eq!(flights.in_flight(), 1, "the newer flight stays");
        new.finish(Outcome::Error(None));
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn no_one_joins_a_flight_while_invalidations_may_go_unheard() {
        let (flights, m) = (Flights::default(), memory());
        m.set_trusted(false);
        let Role::Leader(_first) = flights.join(&m, "k", &[]) else {
            panic!()
        };
        assert!(
            matches!(flights.join(&m, "k", &[]), Role::Leader(_)),
            "a write elsewhere may have happened since the first flight began"
        );
    }
}
