//! Application metrics (`track_metric`) and function timings (`#[profile_performance]`),
//! both bounded so a tag fed from user input cannot grow memory without limit.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::histogram::{Summary, Timings};
use super::{Monitor, lock};

/// Why [`Monitor::track_metric`] refused a value. The value is dropped and counted in
/// `dropped`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricError {
    /// A metric name must match `[a-zA-Z_:][a-zA-Z0-9_:]*` and a tag key
    /// `[a-zA-Z_][a-zA-Z0-9_]*`, each at most 100 characters; tag values at most 100.
    InvalidName(String),
    /// The value is NaN or infinite.
    NotFinite,
    /// Already tracking the most distinct metric names allowed.
    TooManyNames(usize),
    /// Already tracking the most distinct tag sets allowed for this metric.
    TooManySeries(String, usize),
    /// More tags than [`MAX_TAGS`] in one value.
    TooManyTags(usize),
}

/// Most tags one metric value may carry: with names, values and tag sets bounded too, the
/// memory of all series together is bounded.
pub const MAX_TAGS: usize = 16;

impl std::fmt::Display for MetricError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricError::InvalidName(n) => write!(f, "invalid metric or tag name {n:?}"),
            MetricError::NotFinite => f.write_str("metric value is not a finite number"),
            MetricError::TooManyNames(max) => write!(
                f,
                "{max} metric names already tracked: raise PERF_MONITOR_MAX_METRICS or use tags"
            ),
            MetricError::TooManySeries(name, max) => write!(
                f,
                "metric {name:?} already has {max} tag sets: a tag with unbounded values (ids, \
                 paths) belongs in a log, not a metric"
            ),
            MetricError::TooManyTags(n) => {
                write!(f, "{n} tags on one metric value: at most {MAX_TAGS}")
            }
        }
    }
}

impl std::error::Error for MetricError {}

/// Aggregate of one metric series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricStat {
    /// Values recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Most recent.
    pub last: f64,
}

/// One tag set of a metric, in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSeries {
    /// Tags, sorted by key.
    pub tags: BTreeMap<String, String>,
    /// Figures.
    #[serde(flatten)]
    pub stat: MetricStat,
}

type Tags = Vec<(String, String)>;

#[derive(Debug)]
pub(crate) struct CustomMetrics {
    families: Mutex<HashMap<String, HashMap<Tags, MetricStat>>>,
    max_names: usize,
    max_series: usize,
    dropped: AtomicU64,
}

fn valid_name(s: &str, colon: bool) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 100
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || (colon && b == b':'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':'))
}

impl CustomMetrics {
    pub(crate) fn new(max_names: usize, max_series: usize) -> Self {
        Self {
            families: Mutex::new(HashMap::new()),
            max_names,
            max_series,
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn track(
        &self,
        name: &str,
        value: f64,
        tags: &[(&str, &str)],
    ) -> Result<(), MetricError> {
        let result = self.try_track(name, value, tags);
        if result.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn try_track(&self, name: &str, value: f64, tags: &[(&str, &str)]) -> Result<(), MetricError> {
        if !valid_name(name, true) {
            return Err(MetricError::InvalidName(name.chars().take(100).collect()));
        }
        if tags.len() > MAX_TAGS {
            return Err(MetricError::TooManyTags(tags.len()));
        }
        for (k, v) in tags {
            // `name` and `quantile` are the exporter's own labels.
            if !valid_name(k, false)
                || k.starts_with("__")
                || matches!(*k, "name" | "quantile")
                || v.len() > 100
            {
                return Err(MetricError::InvalidName(k.chars().take(100).collect()));
            }
        }
        if !value.is_finite() {
            return Err(MetricError::NotFinite);
        }
        let mut key: Tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        key.sort();
        key.dedup_by(|a, b| a.0 == b.0);
        let mut families = lock(&self.families);
        if !families.contains_key(name) && families.len() >= self.max_names {
            return Err(MetricError::TooManyNames(self.max_names));
        }
        let family = families.entry(name.to_owned()).or_default();
        if !family.contains_key(&key) && family.len() >= self.max_series {
            return Err(MetricError::TooManySeries(name.into(), self.max_series));
        }
        let stat = family.entry(key).or_insert(MetricStat {
            count: 0,
            sum: 0.0,
            min: value,
            max: value,
            last: value,
        });
        stat.count += 1;
        stat.sum += value;
        stat.min = stat.min.min(value);
        stat.max = stat.max.max(value);
        stat.last = value;
        Ok(())
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn report(&self) -> BTreeMap<String, Vec<MetricSeries>> {
        let families = lock(&self.families);
        families
            .iter()
            .map(|(name, series)| {
                let mut list: Vec<MetricSeries> = series
                    .iter()
                    .map(|(tags, stat)| MetricSeries {
                        tags: tags.iter().cloned().collect(),
                        stat: *stat,
                    })
                    .collect();
                list.sort_by(|a, b| a.tags.cmp(&b.tags));
                (name.clone(), list)
            })
            .collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.families).clear();
    }
}

/// Timings of the functions marked `#[profile_performance]`, by name.
#[derive(Debug, Default)]
pub(crate) struct FunctionStats {
    by_name: Mutex<HashMap<&'static str, Timings>>,
}

impl FunctionStats {
    pub(crate) fn record(&self, name: &'static str, d: Duration) {
        lock(&self.by_name)
            .entry(name)
            .or_insert_with(Timings::new)
            .record(d);
    }

    pub(crate) fn report(&self) -> BTreeMap<&'static str, Summary> {
        lock(&self.by_name)
            .iter()
            .map(|(n, t)| (*n, t.summary()))
            .collect()
    }

    pub(crate) fn each(&self, mut f: impl FnMut(&str, &Timings)) {
        for (n, t) in lock(&self.by_name).iter() {
            f(n, t);
        }
    }

    pub(crate) fn clear(&self) {
        lock(&self.by_name).clear();
    }
}

/// Times a plain function: created on entry, records on drop (every exit counts). Used by
/// `#[profile_performance]`; records into the monitor of the current request, else the
/// global one, else nowhere.
#[derive(Debug)]
pub struct FunctionTimer {
    name: &'static str,
    start: Instant,
}

impl FunctionTimer {
    /// Starts timing `name`.
    pub fn start(name: &'static str) -> Self {
        Self {
            name,
            start: Instant::now(),
        }
    }
}

impl Drop for FunctionTimer {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        if let Some(m) = super::scope::current_monitor().or_else(|| Monitor::global().cloned()) {
            m.inner.functions.record(self.name, elapsed);
        }
    }
}

/// Times a future from its first poll to its completion (waiting included: this is the
/// latency a caller sees). Used by `#[profile_performance]` on async functions.
pub async fn profile_future<F: Future>(name: &'static str, future: F) -> F::Output {
    let _timer = FunctionTimer::start(name);
    future.await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_names_and_series() {
        let m = CustomMetrics::new(2, 2);
        m.track("a", 1.0, &[("k", "1")]).unwrap();
        m.track("a", 3.0, &[("k", "1")]).unwrap();
        m.track("a", 1.0, &[("k", "2")]).unwrap();
        assert!(matches!(
            m.track("a", 1.0, &[("k", "3")]),
            Err(MetricError::TooManySeries(..))
        ));
        m.track("b", 1.0, &[]).unwrap();
        assert!(matches!(
            m.track("c", 1.0, &[]),
            Err(MetricError::TooManyNames(2))
        ));
        assert!(matches!(
            m.track("a", f64::NAN, &[]),
            Err(MetricError::NotFinite)
        ));
        assert!(matches!(
            m.track("a b", 1.0, &[]),
            Err(MetricError::InvalidName(_))
        ));
        assert!(matches!(
            m.track("a", 1.0, &[("bad-key", "v")]),
            Err(MetricError::InvalidName(_))
        ));
        let many: Vec<(String, String)> = (0..=MAX_TAGS)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert!(matches!(
            m.track("a", 1.0, &many),
            Err(MetricError::TooManyTags(17))
        ));
        assert_eq!(m.dropped(), 6);
        let report = m.report();
        let a = &report["a"][0];
        assert_eq!(
            (
                a.stat.count,
                a.stat.sum,
                a.stat.min,
                a.stat.max,
                a.stat.last
            ),
            (2, 4.0, 1.0, 3.0, 3.0)
        );
    }
}
