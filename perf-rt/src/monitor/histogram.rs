//! Durations in HDR histograms, and the summary the reports show.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest duration a histogram tracks exactly, in microseconds (one hour); longer ones are
/// recorded as one hour.
const MAX_MICROS: u64 = 3_600_000_000;

/// Durations in microseconds, two significant digits (1 % error) from 1 µs to one hour,
/// plus the exact sum for means and Prometheus' `_sum`.
///
/// `u32` counts keep one of these at about 12 KiB; a count saturates at four billion
/// requests, which the timeline's per-interval histograms never reach.
#[derive(Debug, Clone)]
pub(crate) struct Timings {
    hist: Histogram<u32>,
    sum_micros: u64,
}

impl Timings {
    pub(crate) fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("constant bounds are valid"),
            sum_micros: 0,
        }
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(micros.min(MAX_MICROS));
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    pub(crate) fn count(&self) -> u64 {
        self.hist.len()
    }

    pub(crate) fn sum_seconds(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }

    /// The value at quantile `q` (0..=1), in seconds.
    pub(crate) fn quantile_seconds(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.value_at_quantile(q) as f64 / 1e6
        }
    }

    pub(crate) fn summary(&self) -> Summary {
        let count = self.count();
        if count == 0 {
            return Summary::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Summary {
            count,
            mean_ms: self.sum_micros as f64 / count as f64 / 1000.0,
            p50_ms: ms(self.hist.value_at_quantile(0.5)),
            p90_ms: ms(self.hist.value_at_quantile(0.9)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            max_ms: ms(self.hist.max()),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.hist.reset();
        self.sum_micros = 0;
    }
}

/// Count and latency quantiles of a series of durations, in milliseconds. Quantiles come
/// from an HDR histogram with two significant digits (within 1 % of the true value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Number of durations recorded.
    pub count: u64,
    /// Mean, exact.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut t = Timings::new();
        for ms in 1..=1000u64 {
            t.record(Duration::from_millis(ms));
        }
        let s = t.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() <= 5.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() <= 10.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() <= 10.0, "{s:?}");
        assert!((s.mean_ms - 500.5).abs() < 1e-9, "{s:?}");
        t.record(Duration::from_secs(10_000));
        assert!(t.summary().max_ms >= 3_600_000.0 * 0.99);
        t.reset();
        assert_eq!(t.summary(), Summary::default());
    }
}
