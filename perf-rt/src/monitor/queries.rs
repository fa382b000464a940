//! Query analysis: statistics per SQL fingerprint, the slow-query list and N+1 detection.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::histogram::{Summary, Timings};
use super::scope::{RequestScope, ScopeData};
use super::sql::{fingerprint, normalize_sql};
use super::{lock, now_ms, push_bounded};

/// Statistics of one query shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryStat {
    /// The fingerprint, 16 hex digits (stable across instances and runs).
    pub fingerprint: String,
    /// The normalised statement (literals and parameters as `?`).
    pub sql: String,
    /// Total time spent in it, milliseconds.
    pub total_ms: f64,
    /// Count and latency quantiles.
    #[serde(flatten)]
    pub timing: Summary,
}

/// One execution slower than `PERF_THRESHOLD_SLOW_QUERY_MS`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowQuery {
    /// When it finished, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Normalised statement.
    pub sql: String,
    /// How long it took.
    pub duration_ms: f64,
    /// Route of the request that ran it (`null` outside a request).
    pub route: Option<String>,
}

/// A request that ran one query shape at least `PERF_N_PLUS_ONE_THRESHOLD` times: the
/// classic "one query for the list, then one per item" pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NPlusOne {
    /// When the request finished, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Matched route.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Fingerprint of the repeated statement.
    pub fingerprint: String,
    /// The repeated statement, normalised.
    pub sql: String,
    /// How many times the request ran it.
    pub count: u32,
}

/// The `/api/performance/queries` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueriesReport {
    /// Queries tracked since start (or the last clear).
    pub total: u64,
    /// Threshold of the slow list, milliseconds.
    pub slow_threshold_ms: f64,
    /// Executions of one fingerprint in one request that count as N+1.
    pub n_plus_one_threshold: u32,
    /// Per fingerprint, slowest total first. Beyond the fingerprint bound, new shapes are
    /// counted under the fingerprint `"other"` (statement `(other statements)`).
    pub fingerprints: Vec<QueryStat>,
    /// The most recent slow executions, newest last.
    pub slow: Vec<SlowQuery>,
    /// Requests flagged as N+1 since start.
    pub n_plus_one_total: u64,
    /// The most recent N+1 detections, newest last.
    pub n_plus_one: Vec<NPlusOne>,
    /// Executions recorded under the catch-all fingerprint `"other"` because the
    /// fingerprint bound was reached.
    pub folded: u64,
}

#[derive(Debug)]
struct Series {
    sql: Arc<str>,
    timings: Timings,
}

/// Raw statement → (fingerprint, normalised statement).
type Normalized = HashMap<Box<str>, (u64, Arc<str>)>;

/// Longest statement remembered by the normalisation cache, bytes: a statement with
/// values spliced in can be as long as the client's input.
const MAX_CACHED_SQL: usize = 2048;
/// Longest normalised statement kept for display (the fingerprint covers all of it).
const MAX_SHOWN_SQL: usize = 1024;

#[derive(Debug)]
pub(crate) struct QueryStats {
    by_fingerprint: Mutex<HashMap<u64, Series>>,
    /// Normalising costs about a microsecond; statements repeat, so remember them.
    normalized: Mutex<Normalized>,
    max_fingerprints: usize,
    total: AtomicU64,
    slow_threshold: Duration,
    slow: Mutex<VecDeque<SlowQuery>>,
    n_plus_one_threshold: u32,
    n_plus_one_total: AtomicU64,
    n_plus_one: Mutex<VecDeque<NPlusOne>>,
    folded: AtomicU64,
}

const RECENT: usize = 100;
const OTHER: u64 = 0;

impl QueryStats {
    pub(crate) fn new(max_fingerprints: usize, slow_threshold: Duration, n_plus_one: u32) -> Self {
        Self {
            by_fingerprint: Mutex::new(HashMap::new()),
            normalized: Mutex::new(HashMap::new()),
            max_fingerprints,
            total: AtomicU64::new(0),
            slow_threshold,
            slow: Mutex::new(VecDeque::new()),
            n_plus_one_threshold: n_plus_one.max(2),
            n_plus_one_total: AtomicU64::new(0),
            n_plus_one: Mutex::new(VecDeque::new()),
            folded: AtomicU64::new(0),
        }
    }

    fn normalize(&self, sql: &str) -> (u64, Arc<str>) {
        if let Some(hit) = lock(&self.normalized).get(sql) {
            return hit.clone();
        }
        let normalized = normalize_sql(sql);
        let entry = (
            fingerprint(&normalized),
            Arc::<str>::from(shorten(&normalized)),
        );
        if sql.len() > MAX_CACHED_SQL {
            return entry;
        }
        let mut cache = lock(&self.normalized);
        if cache.len() >= 4 * self.max_fingerprints {
            cache.clear();
        }
        cache.insert(sql.into(), entry.clone());
        entry
    }

    pub(crate) fn record(&self, sql: &str, d: Duration, scope: Option<&RequestScope>) {
        let (mut fp, normalized) = self.normalize(sql);
        self.total.fetch_add(1, Ordering::Relaxed);
        {
            let mut map = lock(&self.by_fingerprint);
            // The catch-all does not count against the bound: exactly `max_fingerprints`
            // shapes have their own series.
            let own = map.len() - usize::from(map.contains_key(&OTHER));
            if !map.contains_key(&fp) && own >= self.max_fingerprints {
                fp = OTHER;
                self.folded.fetch_add(1, Ordering::Relaxed);
            }
            map.entry(fp)
                .or_insert_with(|| Series {
                    sql: if fp == OTHER {
                        "(other statements)".into()
                    } else {
                        normalized.clone()
                    },
                    timings: Timings::new(),
                })
                .timings
                .record(d);
        }
        if let Some(scope) = scope {
            scope.record_query(fp, &normalized, d);
        }
        if d >= self.slow_threshold {
            tracing::warn!(
                target: "perf_rt::monitor",
                sql = %normalized,
                duration_ms = d.as_secs_f64() * 1000.0,
                route = scope.map(|s| s.route()),
                "slow query"
            );
            push_bounded(
                &self.slow,
                RECENT,
                SlowQuery {
                    at_ms: now_ms(),
                    sql: normalized.to_string(),
                    duration_ms: d.as_secs_f64() * 1000.0,
                    route: scope.map(|s| s.route().to_owned()),
                },
            );
        }
    }

    /// Looks for N+1 patterns in a finished request's queries.
    pub(crate) fn finish_request(&self, route: &str, method: &str, data: &ScopeData) {
        for (fp, count, sql) in &data.by_fingerprint {
            if *count >= self.n_plus_one_threshold && *fp != OTHER {
                self.n_plus_one_total.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    target: "perf_rt::monitor",
                    route,
                    method,
                    count,
                    sql = %sql,
                    "N+1 queries: one statement repeated within a request"
                );
                push_bounded(
                    &self.n_plus_one,
                    RECENT,
                    NPlusOne {
                        at_ms: now_ms(),
                        route: route.to_owned(),
                        method: method.to_owned(),
                        fingerprint: format!("{fp:016x}"),
                        sql: sql.to_string(),
                        count: *count,
                    },
                );
            }
        }
    }

    pub(crate) fn n_plus_one_total(&self) -> u64 {
        self.n_plus_one_total.load(Ordering::Relaxed)
    }

    pub(crate) fn each(&self, mut f: impl FnMut(u64, &str, &Timings)) {
        for (fp, s) in lock(&self.by_fingerprint).iter() {
            f(*fp, &s.sql, &s.timings);
        }
    }

    pub(crate) fn report(&self) -> QueriesReport {
        let mut fingerprints: Vec<QueryStat> = lock(&self.by_fingerprint)
            .iter()
            .map(|(fp, s)| QueryStat {
                fingerprint: if *fp == OTHER {
                    "other".into()
                } else {
                    format!("{fp:016x}")
                },
                sql: s.sql.to_string(),
                total_ms: s.timings.sum_seconds() * 1000.0,
                timing: s.timings.summary(),
            })
            .collect();
        fingerprints.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
        QueriesReport {
            total: self.total.load(Ordering::Relaxed),
            slow_threshold_ms: self.slow_threshold.as_secs_f64() * 1000.0,
            n_plus_one_threshold: self.n_plus_one_threshold,
            fingerprints,
            slow: lock(&self.slow).iter().cloned().collect(),
            n_plus_one_total: self.n_plus_one_total(),
            n_plus_one: lock(&self.n_plus_one).iter().cloned().collect(),
            folded: self.folded(),
        }
    }

    pub(crate) fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }

    pub(crate) fn clear(&self) {
        lock(&self.by_fingerprint).clear();
        lock(&self.slow).clear();
        lock(&self.n_plus_one).clear();
        self.total.store(0, Ordering::Relaxed);
        self.n_plus_one_total.store(0, Ordering::Relaxed);
        self.folded.store(0, Ordering::Relaxed);
    }
}

/// `sql` cut to [`MAX_SHOWN_SQL`] bytes (on a character boundary), with `…` when cut.
fn shorten(sql: &str) -> String {
    if sql.len() <= MAX_SHOWN_SQL {
        return sql.to_owned();
    }
    let mut end = MAX_SHOWN_SQL;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &sql[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_bounded_and_the_overflow_is_counted() {
        let stats = QueryStats::new(3, Duration::from_secs(1), 5);
        for table in 0..10 {
            let sql = format!("SELECT * FROM t{table} WHERE id = 1");
            stats.record(&sql, Duration::from_millis(1), None);
        }
        let report = stats.report();
        assert_eq!(report.fingerprints.len(), 4, "{report:#?}");
        assert_eq!(report.folded, 7);
        let other = report
            .fingerprints
            .iter()
            .find(|f| f.fingerprint == "other")
            .unwrap();
        assert_eq!(other.timing.count, 7);
        assert_eq!(other.sql, "(other statements)");
        // A known shape still has its own series.
        stats.record(
            "select * from t0 where id = 9",
            Duration::from_millis(1),
            None,
        );
        assert_eq!(stats.report().folded, 7);
    }

    #[test]
    fn long_statements_are_neither_cached_nor_kept_whole() {
        let stats = QueryStats::new(10, Duration::ZERO, 5);
        let long = format!("SELECT {} FROM t", "a, ".repeat(5000) + "é");
        stats.record(&long, Duration::from_millis(1), None);
        let report = stats.report();
        let shown = &report.fingerprints[0].sql;
        assert!(
            shown.len() <= MAX_SHOWN_SQL + '…'.len_utf8(),
            "{}",
            shown.len()
        );
        assert!(shown.ends_with('…'));
        assert!(report.slow[0].sql.len() <= MAX_SHOWN_SQL + '…'.len_utf8());
        assert!(lock(&stats.normalized).is_empty());
        // The fingerprint is still that of the whole statement.
        assert_eq!(
            report.fingerprints[0].fingerprint,
            format!("{:016x}", fingerprint(&normalize_sql(&long)))
        );
    }
}
