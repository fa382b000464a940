//! Snapshots of live memory by call site, and their comparison (tracemalloc's
//! `compare_to`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use serde::{Deserialize, Serialize};

use super::allocator::{Stats, sample_rate, stats, without_sampling};
use super::instances::{TypeInstances, live_instances};
use super::sampler;
use super::symbols::{CallSite, call_site};

/// The raw stack of a trace id, shared by every snapshot that holds it.
type Stack = Arc<[usize]>;

/// Estimated live memory of one sampled stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceUsage {
    /// The stack's id in this process.
    pub trace: u32,
    /// Estimated live bytes allocated from this stack.
    pub bytes: u64,
    /// Estimated live blocks allocated from this stack.
    pub count: u64,
}

/// Live memory at one moment: exact totals, sampled call sites, tracked types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The label given to `take_snapshot`.
    pub label: String,
    /// When it was taken, milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    /// Exact allocator counters.
    pub stats: Stats,
    /// Mean bytes between samples when it was taken (`0`: sampling off). Each sample is
    /// weighed by the rate it was taken at, which may be an earlier one.
    pub sample_rate: usize,
    /// Estimated live memory per sampled stack, largest first.
    pub traces: Vec<TraceUsage>,
    /// Live instances of the tracked types.
    pub instances: Vec<TypeInstances>,
    /// The stacks of `traces`, copied when the snapshot was taken: the profiler recycles
    /// the slots of stacks no live block uses, so an id alone could name nothing later.
    /// Process-specific addresses, so not serialised.
    #[serde(skip)]
    stacks: HashMap<u32, Stack>,
}

/// Stacks held by snapshots, so that the snapshots of a process share one copy of each.
fn shared_stacks() -> &'static Mutex<HashMap<u32, Weak<[usize]>>> {
    static STACKS: OnceLock<Mutex<HashMap<u32, Weak<[usize]>>>> = OnceLock::new();
    STACKS.get_or_init(Default::default)
}

/// The stacks of `traces`, as of now.
fn copy_stacks(traces: &[TraceUsage]) -> HashMap<u32, Stack> {
    let mut shared = shared_stacks().lock().unwrap_or_else(|e| e.into_inner());
    // Stacks of snapshots that are gone.
    shared.retain(|_, stack| stack.strong_count() > 0);
    traces
        .iter()
        .map(|usage| {
            let stack = match shared.get(&usage.trace).and_then(Weak::upgrade) {
                Some(stack) => stack,
                None => {
                    let stack: Stack = sampler::trace_frames(usage.trace).into();
                    shared.insert(usage.trace, Arc::downgrade(&stack));
                    stack
                }
            };
            (usage.trace, stack)
        })
        .collect()
}

/// Scales a sampled block up to the population it stands for. With a Poisson process of
/// mean `rate` bytes, a block of `size` bytes is sampled with probability
/// `1 - exp(-size / rate)`.
fn weight(size: usize, rate: usize) -> f64 {
    if rate <= 1 {
        return 1.0;
    }
    let p = -(-(size as f64) / rate as f64).exp_m1();
    if p > 0.0 { 1.0 / p } else { 1.0 }
}

impl Snapshot {
    /// Captures the current state under `label`.
    pub fn capture(label: impl Into<String>) -> Self {
        let label = label.into();
        without_sampling(|| Self::capture_unsampled(label))
    }

    fn capture_unsampled(label: String) -> Self {
        let rate = sample_rate().unwrap_or(0);
        let mut per_trace: HashMap<u32, (f64, f64)> = HashMap::new();
        sampler::for_each_live(|s| {
            let w = weight(s.size, s.rate);
            let e = per_trace.entry(s.trace).or_default();
            e.0 += s.size as f64 * w;
            e.1 += w;
        });
        let mut traces: Vec<TraceUsage> = per_trace
            .into_iter()
            .map(|(trace, (bytes, count))| TraceUsage {
                trace,
                bytes: bytes.round() as u64,
                count: count.round().max(1.0) as u64,
            })
            .collect();
        traces.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.trace.cmp(&b.trace)));
        Self {
            label,
            taken_at_ms: now_ms(),
            stats: stats(),
            sample_rate: rate,
            stacks: copy_stacks(&traces),
            traces,
            instances: live_instances(),
        }
    }

    /// The raw instruction pointers of one of its stacks (empty if unknown).
    fn stack(&self, trace: u32) -> &[usize] {
        self.stacks.get(&trace).map_or(&[], |s| s)
    }

    /// Estimated live memory per call site, largest first (symbols resolved now).
    pub fn by_site(&self) -> Vec<SiteUsage> {
        let mut sites: Vec<SiteUsage> = group_by_site(self).into_values().collect();
        sites.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then_with(|| a.site.key().cmp(&b.site.key()))
        });
        sites
    }

    /// Growth per call site from `earlier` to `self`, largest change first.
    pub fn compare_to(&self, earlier: &Snapshot) -> Vec<SiteDiff> {
        let before = group_by_site(earlier);
        let after = group_by_site(self);
        let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut diffs: Vec<SiteDiff> = keys
            .into_iter()
            .map(|key| {
                let b = before.get(key);
                let a = after.get(key);
                let site = a.or(b).expect("the key comes from one side").site.clone();
                let (bytes_before, count_before) = b.map_or((0, 0), |u| (u.bytes, u.count));
                let (bytes_after, count_after) = a.map_or((0, 0), |u| (u.bytes, u.count));
                SiteDiff {
                    site,
                    bytes_before,
                    bytes_after,
                    bytes_diff: bytes_after as i64 - bytes_before as i64,
                    count_before,
                    count_after,
                    count_diff: count_after as i64 - count_before as i64,
                }
            })
            .filter(|d| d.bytes_diff != 0 || d.count_diff != 0)
            .collect();
        diffs.sort_by(|a, b| {
            b.bytes_diff
                .unsigned_abs()
                .cmp(&a.bytes_diff.unsigned_abs())
                .then_with(|| a.site.key().cmp(&b.site.key()))
        });
        diffs
    }
}

/// Estimated live memory of one call site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteUsage {
    /// Where it was allocated.
    pub site: CallSite,
    /// Estimated live bytes.
    pub bytes: u64,
    /// Estimated live blocks.
    pub count: u64,
}

/// Change of one call site between two snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDiff {
    /// Where it was allocated.
    pub site: CallSite,
    /// Estimated live bytes in the earlier snapshot.
    pub bytes_before: u64,
    /// Estimated live bytes in the later snapshot.
    pub bytes_after: u64,
    /// `bytes_after - bytes_before`.
    pub bytes_diff: i64,
    /// Estimated live blocks in the earlier snapshot.
    pub count_before: u64,
    /// Estimated live blocks in the later snapshot.
    pub count_after: u64,
    /// `count_after - count_before`.
    pub count_diff: i64,
}

/// Merges the stacks of a snapshot that resolve to the same call site.
pub(crate) fn group_by_site(snapshot: &Snapshot) -> HashMap<String, SiteUsage> {
    let mut sites: HashMap<String, SiteUsage> = HashMap::new();
    for usage in &snapshot.traces {
        let site = call_site(snapshot.stack(usage.trace));
        let entry = sites.entry(site.key()).or_insert_with(|| SiteUsage {
            site,
            bytes: 0,
            count: 0,
        });
        entry.bytes += usage.bytes;
        entry.count += usage.count;
    }
    sites
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::weight;

    #[test]
    fn weights_scale_small_blocks_up_and_leave_large_ones_alone() {
        // A 1 KiB block at a 512 KiB rate stands for ~512 blocks' worth of bytes.
        let w = weight(1024, 512 * 1024);
        assert!((w * 1024.0 - 512.0 * 1024.0).abs() < 1024.0, "{w}");
        // A block 20x the rate is always sampled.
        assert!((weight(20 * 1024, 1024) - 1.0).abs() < 1e-6);
        assert_eq!(weight(100, 0), 1.0);
        assert_eq!(weight(100, 1), 1.0);
    }
}
