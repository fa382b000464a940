//! Leak detection: call sites and types whose live memory keeps growing across snapshots.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::snapshot::{Snapshot, group_by_site, now_ms};
use super::symbols::CallSite;

/// When growth counts as a leak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakOptions {
    /// Fewest snapshots to judge from (at least 2).
    pub min_snapshots: usize,
    /// Judge only the most recent this many snapshots.
    pub window: usize,
    /// A call site must have grown by at least this many bytes over the window.
    pub min_growth_bytes: u64,
    /// A tracked type must have grown by at least this many live instances.
    pub min_growth_instances: u64,
}

impl Default for LeakOptions {
    fn default() -> Self {
        Self {
            min_snapshots: 3,
            window: 10,
            min_growth_bytes: 64 * 1024,
            min_growth_instances: 1,
        }
    }
}

/// One point of the evidence: a snapshot and what the suspect held in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakPoint {
    /// The snapshot's label.
    pub label: String,
    /// When it was taken, milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    /// Estimated live bytes (for a type: live instances).
    pub value: u64,
}

/// A call site whose live bytes never fell and grew over the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    /// Where the memory is allocated.
    pub site: CallSite,
    /// Growth in estimated live bytes over the window.
    pub growth_bytes: u64,
    /// Growth in estimated live blocks over the window.
    pub growth_count: i64,
    /// Live bytes in each snapshot of the window, oldest first.
    pub evidence: Vec<LeakPoint>,
}

/// A tracked type whose live instance count never fell and grew over the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeLeak {
    /// The type's name.
    pub type_name: String,
    /// Growth in live instances over the window.
    pub growth_instances: u64,
    /// Live instances in each snapshot of the window, oldest first.
    pub evidence: Vec<LeakPoint>,
}

/// The answer to `/api/memory/leaks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakReport {
    /// When it was made, milliseconds since the Unix epoch.
    pub generated_at_ms: u64,
    /// The labels of the snapshots judged, oldest first.
    pub snapshots: Vec<String>,
    /// `false` when there were fewer snapshots than [`LeakOptions::min_snapshots`].
    pub enough_snapshots: bool,
    /// The thresholds used.
    pub options: LeakOptions,
    /// Growing call sites, largest growth first.
    pub leaks: Vec<Leak>,
    /// Growing tracked types, largest growth first.
    pub types: Vec<TypeLeak>,
}

/// Whether a series never falls and rises by at least `min_growth` overall, in at least
/// two steps when there are three snapshots or more. One rise alone is what a single
/// sampled allocation that is live when the last snapshot is taken looks like (a request's
/// buffer, the monitor's current interval): with sampling, it stands for a whole sample's
/// worth of bytes, which is over any sensible threshold, so it is not evidence of a leak.
fn keeps_growing(series: &[u64], min_growth: u64) -> bool {
    match (series.first(), series.last()) {
        (Some(&first), Some(&last)) => {
            let rises = series.windows(2).filter(|w| w[1] > w[0]).count();
            series.windows(2).all(|w| w[1] >= w[0])
                && last - first >= min_growth.max(1)
                && (rises >= 2 || series.len() < 3)
        }
        _ => false,
    }
}

/// Judges `snapshots` (oldest first).
pub fn detect_leaks(snapshots: &[&Snapshot], options: LeakOptions) -> LeakReport {
    let window = options.window.max(2);
    let judged = &snapshots[snapshots.len().saturating_sub(window)..];
    let enough = judged.len() >= options.min_snapshots.max(2);
    let mut report = LeakReport {
        generated_at_ms: now_ms(),
        snapshots: judged.iter().map(|s| s.label.clone()).collect(),
        enough_snapshots: enough,
        options,
        leaks: Vec::new(),
        types: Vec::new(),
    };
    if !enough {
        return report;
    }
    let point = |s: &Snapshot, value| LeakPoint {
        label: s.label.clone(),
        taken_at_ms: s.taken_at_ms,
        value,
    };

    let per_snapshot: Vec<HashMap<String, (u64, u64)>> = judged
        .iter()
        .map(|s| {
            group_by_site(s)
                .into_iter()
                .map(|(k, u)| (k, (u.bytes, u.count)))
                .collect()
        })
        .collect();
    // Sites as of the newest snapshot: a leak is still holding memory there.
    let newest = group_by_site(judged[judged.len() - 1]);
    let mut sites: BTreeMap<String, CallSite> = BTreeMap::new();
    for (key, usage) in newest {
        sites.insert(key, usage.site);
    }
    for (key, site) in sites {
        let values: Vec<(u64, u64)> = per_snapshot
            .iter()
            .map(|m| m.get(&key).copied().unwrap_or((0, 0)))
            .collect();
        let bytes: Vec<u64> = values.iter().map(|v| v.0).collect();
        if keeps_growing(&bytes, options.min_growth_bytes) {
            report.leaks.push(Leak {
                site,
                growth_bytes: bytes[bytes.len() - 1] - bytes[0],
                growth_count: values[values.len() - 1].1 as i64 - values[0].1 as i64,
                evidence: judged
                    .iter()
                    .zip(&bytes)
                    .map(|(s, &b)| point(s, b))
                    .collect(),
            });
        }
    }
    report
        .leaks
        .sort_by_key(|l| std::cmp::Reverse(l.growth_bytes));

    let newest_types = &judged[judged.len() - 1].instances;
    for t in newest_types {
        let series: Vec<u64> = judged
            .iter()
            .map(|s| {
                s.instances
                    .iter()
                    .find(|i| i.type_name == t.type_name)
                    .map_or(0, |i| i.live)
            })
            .collect();
        if keeps_growing(&series, options.min_growth_instances) {
            report.types.push(TypeLeak {
                type_name: t.type_name.clone(),
                growth_instances: series[series.len() - 1] - series[0],
                evidence: judged
                    .iter()
                    .zip(&series)
                    .map(|(s, &v)| point(s, v))
                    .collect(),
            });
        }
    }
    report
        .types
        .sort_by_key(|t| std::cmp::Reverse(t.growth_instances));
    report
}

#[cfg(test)]
mod tests {
    use super::keeps_growing;

    #[test]
    fn growth_rule() {
        assert!(keeps_growing(&[0, 10, 10, 30], 20));
        assert!(!keeps_growing(&[0, 10, 10, 30], 31));
        assert!(!keeps_growing(&[0, 40, 30, 50], 1));
        assert!(!keeps_growing(&[5, 5, 5], 0));
        assert!(!keeps_growing(&[9, 3], 1));
        // One sample that happens to be live at the last snapshot is not a leak; the
        // same bytes arriving in two steps are.
        assert!(!keeps_growing(&[0, 0, 0, 0, 530_000], 65_536));
        assert!(keeps_growing(&[0, 0, 530_000, 530_000, 1_060_000], 65_536));
        // With two snapshots, one step is all there is to see.
        assert!(keeps_growing(&[0, 530_000], 65_536));
    }
}
