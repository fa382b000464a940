//! Query timing for rusqlite connections, through SQLite's own profile hook.

use std::cell::RefCell;
use std::time::Instant;

use rusqlite::Connection;
use rusqlite::trace::{TraceEvent, TraceEventCodes};

/// Times every statement `conn` runs from now on, with SQLite's profile hook
/// (`sqlite3_trace_v2` with `SQLITE_TRACE_PROFILE`), into
/// [`track_query`](super::track_query): the current request's scope (run the query through
/// [`spawn_blocking`](super::spawn_blocking) or inside
/// [`RequestScope::enter`](super::RequestScope::enter)) or the global monitor.
///
/// The hook replaces any earlier trace callback of the connection. Cost: one callback per
/// statement execution, which reads the statement's text (no copy) and looks its
/// fingerprint up.
///
/// ```
/// let conn = rusqlite::Connection::open_in_memory().unwrap();
/// perf_rt::monitor::time_queries(&conn);
/// conn.execute_batch("CREATE TABLE t (x)").unwrap();
/// ```
pub fn time_queries(conn: &Connection) {
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_STMT | TraceEventCodes::SQLITE_TRACE_PROFILE,
        Some(on_event),
    );
}

thread_local! {
    /// Statements started on this thread and not yet finished, by the address of their
    /// SQL text (SQLite hands the same `sqlite3_sql` pointer to both events).
    static STARTED: RefCell<Vec<(usize, Instant)>> = const { RefCell::new(Vec::new()) };
}

fn on_event(event: TraceEvent<'_>) {
    match event {
        TraceEvent::Stmt(_, sql) => {
            let key = sql.as_ptr() as usize;
            STARTED.with(|s| {
                let mut s = s.borrow_mut();
                s.retain(|(k, _)| *k != key);
                if s.len() == 32 {
                    s.remove(0);
                }
                s.push((key, Instant::now()));
            });
        }
        TraceEvent::Profile(stmt, sqlite_duration) => {
            let sql = stmt.sql();
            let key = sql.as_ptr() as usize;
            // SQLite's own figure comes from the VFS clock, in whole milliseconds; our
            // clock is exact. Fall back to SQLite's when the start was not seen.
            let started = STARTED.with(|s| {
                let mut s = s.borrow_mut();
                let i = s.iter().position(|(k, _)| *k == key)?;
                Some(s.swap_remove(i).1)
            });
            let duration = started.map_or(sqlite_duration, |t| t.elapsed());
            super::track_query(&sql, duration);
        }
        _ => {}
    }
}
