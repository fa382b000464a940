//! The monitor's figures in the Prometheus text format (version 0.0.4), in base units
//! (seconds, bytes). Latencies are summaries: quantiles from the HDR histograms plus the
//! exact `_sum` and `_count`.

use std::fmt::Write as _;

use crate::monitor::Monitor;
use crate::monitor::histogram::Timings;

const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 1.0];

struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// What the text needs of one histogram, read while its series is locked: a scrape copies
/// six numbers per series, not the histogram (about 12 KiB).
struct Figures {
    quantiles: [f64; QUANTILES.len()],
    sum_seconds: f64,
    count: u64,
}

impl Figures {
    fn of(t: &Timings) -> Self {
        Figures {
            quantiles: QUANTILES.map(|q| t.quantile_seconds(q)),
            sum_seconds: t.sum_seconds(),
            count: t.count(),
        }
    }
}

/// One summary family: `labels` per series, the quantiles and `_sum`/`_count`.
fn summary(out: &mut Out, name: &str, help: &str, series: &[(Vec<(&str, &str)>, &Figures)]) {
    out.family(name, "summary", help);
    for (base, f) in series {
        for (q, value) in QUANTILES.iter().zip(f.quantiles) {
            let qs = number(*q);
            let mut l = base.clone();
            l.push(("quantile", &qs));
            out.sample(name, &l, value);
        }
        out.sample(&format!("{name}_sum"), base, f.sum_seconds);
        out.sample(&format!("{name}_count"), base, f.count as f64);
    }
}

pub(crate) fn render(monitor: &Monitor, memory: bool) -> String {
    let mut out = Out {
        text: String::with_capacity(8 * 1024),
    };
    let inner = &monitor.inner;

    let mut requests = Vec::new();
    inner.requests.each(|route, method, class, t| {
        requests.push((
            route.to_owned(),
            method.to_owned(),
            format!("{class}xx"),
            Figures::of(t),
        ));
    });
    requests.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
    out.family(
        "perf_http_requests_total",
        "counter",
        "HTTP requests answered, by matched route, method and status class.",
    );
    for (route, method, status, f) in &requests {
        out.sample(
            "perf_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
            f.count as f64,
        );
    }
    let views: Vec<_> = requests
        .iter()
        .map(|(r, m, s, f)| (vec![("route", &**r), ("method", &**m), ("status", &**s)], f))
        .collect();
    summary(
        &mut out,
        "perf_http_request_duration_seconds",
        "Time to the response head, by matched route, method and status class.",
        &views,
    );
    let (_, in_flight, slow, _) = inner.requests.totals();
    out.family(
        "perf_http_requests_in_flight",
        "gauge",
        "Requests being handled.",
    );
    out.sample("perf_http_requests_in_flight", &[], in_flight as f64);
    out.family(
        "perf_http_slow_requests_total",
        "counter",
        "Requests slower than PERF_THRESHOLD_SLOW_REQUEST_MS.",
    );
    out.sample("perf_http_slow_requests_total", &[], slow as f64);

    let folded = inner.requests.folded();
    let client = monitor.client_report();
    out.family(
        "perf_monitor_folded_total",
        "counter",
        "Observations recorded under a catch-all series (method OTHER, route (other), fingerprint other) because their label was made up or a bound was reached.",
    );
    for (series, n) in [
        ("method", folded.methods),
        ("route", folded.routes),
        ("query", inner.queries.folded()),
        ("browser_route", client.folded),
    ] {
        out.sample("perf_monitor_folded_total", &[("series", series)], n as f64);
    }

    let mut queries = Vec::new();
    inner.queries.each(|fp, _sql, t| {
        let label = if fp == 0 {
            "other".to_owned()
        } else {
            format!("{fp:016x}")
        };
        queries.push((label, Figures::of(t)));
    });
    queries.sort_by(|a, b| a.0.cmp(&b.0));
    let views: Vec<_> = queries
        .iter()
        .map(|(fp, f)| (vec![("fingerprint", &**fp)], f))
        .collect();
    summary(
        &mut out,
        "perf_db_query_duration_seconds",
        "Database query time by statement fingerprint (see /api/performance/queries for the SQL).",
        &views,
    );
    out.family(
        "perf_db_n_plus_one_total",
        "counter",
        "Requests that ran one statement at least PERF_N_PLUS_ONE_THRESHOLD times.",
    );
    out.sample(
        "perf_db_n_plus_one_total",
        &[],
        inner.queries.n_plus_one_total() as f64,
    );

    let mut functions = Vec::new();
    inner
        .functions
        .each(|name, t| functions.push((name.to_owned(), Figures::of(t))));
    functions.sort_by(|a, b| a.0.cmp(&b.0));
    let views: Vec<_> = functions
        .iter()
        .map(|(n, f)| (vec![("function", &**n)], f))
        .collect();
    summary(
        &mut out,
        "perf_function_duration_seconds",
        "Time spent in functions marked #[profile_performance].",
        &views,
    );

    if let Some(r) = monitor.resources() {
        if let Some(cpu) = r.cpu_seconds_total {
            out.family(
                "perf_process_cpu_seconds_total",
                "counter",
                "User and system CPU time of the process.",
            );
            out.sample("perf_process_cpu_seconds_total", &[], cpu);
        }
        for (name, help, value) in [
            (
                "perf_process_resident_memory_bytes",
                "Resident set size.",
                r.rss_bytes,
            ),
            (
                "perf_process_open_fds",
                "Open file descriptors.",
                r.open_fds,
            ),
            (
                "perf_disk_used_bytes",
                "Bytes used on the monitored filesystem.",
                r.disk_used_bytes,
            ),
            (
                "perf_disk_size_bytes",
                "Size of the monitored filesystem.",
                r.disk_total_bytes,
            ),
        ] {
            if let Some(v) = value {
                out.family(name, "gauge", help);
                out.sample(name, &[], v as f64);
            }
        }
    }

    #[cfg(feature = "serve")]
    {
        let sent = crate::serve::stats();
        for (name, help, value) in [
            (
                "perf_sendfile_calls_total",
                "sendfile calls of perf_rt::serve::zero_copy listeners that sent bytes.",
                sent.calls,
            ),
            (
                "perf_sendfile_bytes_total",
                "Bytes sent with sendfile from the executable by perf_rt::serve::zero_copy listeners.",
                sent.bytes,
            ),
        ] {
            out.family(name, "counter", help);
            out.sample(name, &[], value as f64);
        }
    }

    let overview_memory = memory.then(|| monitor.memory_summary()).flatten();
    if let Some(m) = overview_memory {
        out.family(
            "perf_heap_live_bytes",
            "gauge",
            "Heap bytes live (tracking allocator).",
        );
        out.sample("perf_heap_live_bytes", &[], m.live_bytes as f64);
        out.family(
            "perf_heap_peak_bytes",
            "gauge",
            "Most heap bytes live at once.",
        );
        out.sample("perf_heap_peak_bytes", &[], m.peak_bytes as f64);
    }
    if let Some(c) = monitor.cache_summary() {
        out.family(
            "perf_query_cache_hits_total",
            "counter",
            "Query-cache reads answered by a tier.",
        );
        out.sample("perf_query_cache_hits_total", &[], c.hits as f64);
        out.family(
            "perf_query_cache_misses_total",
            "counter",
            "Query-cache reads neither tier answered.",
        );
        out.sample("perf_query_cache_misses_total", &[], c.misses as f64);
        // Per tier in families of their own: summing a tier label into the totals above
        // would count a Redis hit twice.
        let tiers = std::iter::once(("memory", c.memory)).chain(c.redis.map(|r| ("redis", r)));
        out.family(
            "perf_query_cache_tier_hits_total",
            "counter",
            "Query-cache reads answered by the tier.",
        );
        for (tier, t) in tiers.clone() {
            out.sample(
                "perf_query_cache_tier_hits_total",
                &[("tier", tier)],
                t.hits as f64,
            );
        }
        out.family(
            "perf_query_cache_tier_misses_total",
            "counter",
            "Query-cache reads the tier was asked and could not answer.",
        );
        for (tier, t) in tiers {
            out.sample(
                "perf_query_cache_tier_misses_total",
                &[("tier", tier)],
                t.misses as f64,
            );
        }
    }

    out.family(
        "perf_browser_beacons_total",
        "counter",
        "Browser-metrics beacons, by outcome.",
    );
    for (outcome, n) in [
        ("accepted", client.accepted),
        ("rejected", client.rejected),
        ("rate_limited", client.rate_limited),
    ] {
        out.sample(
            "perf_browser_beacons_total",
            &[("outcome", outcome)],
            n as f64,
        );
    }
    out.family(
        "perf_browser_metric",
        "gauge",
        "Browser metrics by route and percentile: LCP, FCP, INP and TTFB in seconds, CLS unitless.",
    );
    for (route, metrics) in &client.routes {
        for (metric, m) in metrics {
            let scale = if metric == "CLS" { 1.0 } else { 1e-3 };
            for (p, v) in [("50", m.p50), ("75", m.p75), ("90", m.p90), ("99", m.p99)] {
                out.sample(
                    "perf_browser_metric",
                    &[("route", route), ("metric", metric), ("percentile", p)],
                    v * scale,
                );
            }
        }
    }
    out.family(
        "perf_browser_metric_samples_total",
        "counter",
        "Browser metric values received, by route and metric.",
    );
    for (route, metrics) in &client.routes {
        for (metric, m) in metrics {
            out.sample(
                "perf_browser_metric_samples_total",
                &[("route", route), ("metric", metric)],
                m.count as f64,
            );
        }
    }

    let metrics = inner.metrics.report();
    out.family(
        "perf_app_metric",
        "summary",
        "Values given to track_metric (sum and count), by metric name and tags.",
    );
    for (name, series) in &metrics {
        for s in series {
            let mut labels: Vec<(&str, &str)> = vec![("name", name)];
            labels.extend(s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            out.sample("perf_app_metric_sum", &labels, s.stat.sum);
            out.sample("perf_app_metric_count", &labels, s.stat.count as f64);
        }
    }
    out.family(
        "perf_app_metrics_dropped_total",
        "counter",
        "Values track_metric refused (invalid names, bounds reached).",
    );
    out.sample(
        "perf_app_metrics_dropped_total",
        &[],
        inner.metrics.dropped() as f64,
    );
    out.text
}
