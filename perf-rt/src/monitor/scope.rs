//! The request scope: which request (and which monitor) a query or a timed function
//! belongs to, carried by a tokio task-local for async code and a thread-local inside
//! [`spawn_blocking`].

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Inner, Monitor, lock};

tokio::task_local! {
    static SCOPE: Arc<RequestScope>;
}

thread_local! {
    static BLOCKING: RefCell<Option<Arc<RequestScope>>> = const { RefCell::new(None) };
}

/// What one request did with the database: created by the monitor layer for every
/// request, filled by [`track_query`](super::track_query), read when the response leaves.
#[derive(Debug)]
pub struct RequestScope {
    pub(crate) monitor: Arc<Inner>,
    pub(crate) route: Arc<str>,
    data: Mutex<ScopeData>,
}

#[derive(Debug, Default)]
pub(crate) struct ScopeData {
    pub(crate) queries: u32,
    pub(crate) query_time: Duration,
    /// Executions per fingerprint: (fingerprint, count, normalised SQL). A short list: a
    /// request runs few distinct statements.
    pub(crate) by_fingerprint: Vec<(u64, u32, Arc<str>)>,
}

impl RequestScope {
    pub(crate) fn new(monitor: Arc<Inner>, route: Arc<str>) -> Self {
        Self {
            monitor,
            route,
            data: Mutex::new(ScopeData::default()),
        }
    }

    /// The scope of the request being handled on this task or thread, if any.
    pub fn current() -> Option<Arc<RequestScope>> {
        SCOPE
            .try_with(Arc::clone)
            .ok()
            .or_else(|| BLOCKING.with(|b| b.borrow().clone()))
    }

    /// The matched route of the request.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Runs `f` with this scope current on this thread (for work moved to another thread
    /// by hand; [`spawn_blocking`] does it for you).
    pub fn enter<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<RequestScope>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                BLOCKING.with(|b| *b.borrow_mut() = previous);
            }
        }
        let previous = BLOCKING.with(|b| b.borrow_mut().replace(self.clone()));
        let _restore = Restore(previous);
        f()
    }

    pub(crate) fn record_query(&self, fingerprint: u64, sql: &Arc<str>, d: Duration) {
        let mut data = lock(&self.data);
        data.queries += 1;
        data.query_time += d;
        let known = data.by_fingerprint.len();
        match data
            .by_fingerprint
            .iter_mut()
            .find(|(f, _, _)| *f == fingerprint)
        {
            Some(entry) => entry.1 += 1,
            // A request issuing thousands of distinct statements is not an N+1 pattern;
            // stop listing after 256 so the scope stays small.
            None if known < 256 => data.by_fingerprint.push((fingerprint, 1, sql.clone())),
            None => {}
        }
    }

    pub(crate) fn take(&self) -> ScopeData {
        std::mem::take(&mut *lock(&self.data))
    }
}

/// Runs `future` with `scope` as the current request scope.
pub(crate) fn with_scope<F: std::future::Future>(
    scope: Arc<RequestScope>,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<Arc<RequestScope>, F> {
    SCOPE.scope(scope, future)
}

pub(crate) fn current_monitor() -> Option<Monitor> {
    RequestScope::current().map(|s| Monitor {
        inner: s.monitor.clone(),
    })
}

/// [`tokio::task::spawn_blocking`] that keeps the current request scope, so queries run on
/// the blocking pool (rusqlite, diesel) are attributed to the request that asked for them.
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match RequestScope::current() {
        Some(scope) => tokio::task::spawn_blocking(move || scope.enter(f)),
        None => tokio::task::spawn_blocking(f),
    }
}
