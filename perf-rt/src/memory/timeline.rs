//! The memory timeline: live heap and process RSS, sampled periodically into a bounded
//! ring buffer.
//!
//! The sampler is a plain thread, not a tokio task: it keeps recording when the runtime's
//! workers are saturated or blocked (exactly when memory tends to climb), costs one parked
//! thread, and works in programs without a runtime.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::allocator::stats;
use super::snapshot::now_ms;

/// One sample of the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Bytes allocated through the tracking allocator.
    pub live_bytes: u64,
    /// Blocks allocated through the tracking allocator.
    pub live_allocations: u64,
    /// Resident set size of the process (`None` where `/proc` is unavailable).
    pub rss_bytes: Option<u64>,
}

impl TimelinePoint {
    /// Samples now.
    pub fn now() -> Self {
        let st = stats();
        Self {
            at_ms: now_ms(),
            live_bytes: st.live_bytes,
            live_allocations: st.live_allocations,
            rss_bytes: rss_bytes(),
        }
    }
}

/// A bounded ring of timeline points: the oldest is dropped when full.
#[derive(Debug)]
pub(crate) struct Ring {
    capacity: usize,
    points: Mutex<VecDeque<TimelinePoint>>,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            points: Mutex::new(VecDeque::with_capacity(capacity.clamp(1, 4096))),
        }
    }

    pub(crate) fn push(&self, point: TimelinePoint) {
        let mut points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        if points.len() == self.capacity {
            points.pop_front();
        }
        points.push_back(point);
    }

    pub(crate) fn points(&self) -> Vec<TimelinePoint> {
        let points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        points.iter().copied().collect()
    }
}

/// A running timeline sampler, like a [`std::thread::JoinHandle`]: dropping the handle
/// detaches it, and the sampler keeps running for the life of the process; [`stop`] ends
/// it and waits for its thread.
///
/// [`stop`]: TimelineHandle::stop
#[derive(Debug)]
pub struct TimelineHandle {
    stop: Arc<StopSignal>,
    thread: JoinHandle<()>,
}

/// Set once by [`TimelineHandle::stop`]; the sampler waits on it between points, so a stop
/// takes effect at once rather than after the interval.
#[derive(Debug, Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    /// Waits up to `timeout`; true once a stop was asked for.
    fn wait(&self, timeout: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, timeout, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *stopped
    }
}

impl TimelineHandle {
    /// Stops the sampler and waits for its thread to end. Dropping the handle instead
    /// leaves the sampler running.
    pub fn stop(self) {
        *self.stop.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop.wake.notify_all();
        let _ = self.thread.join();
    }
}

/// Starts a thread that pushes a point into `ring` every `interval`.
pub(crate) fn start(ring: Arc<Ring>, interval: Duration) -> std::io::Result<TimelineHandle> {
    let stop = Arc::new(StopSignal::default());
    let signal = stop.clone();
    let thread = std::thread::Builder::new()
        .name("perf-memory-timeline".into())
        .spawn(move || {
            // Only a stop ends the loop: the handle being dropped does not.
            loop {
                ring.push(TimelinePoint::now());
                if signal.wait(interval) {
                    break;
                }
            }
        })?;
    Ok(TimelineHandle { stop, thread })
}

/// Resident set size: `/proc/self/statm`'s second field times the page size.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The page size, from the auxiliary vector (`AT_PAGESZ`), 4 KiB if unreadable.
fn page_size() -> u64 {
    static PAGE_SIZE: OnceLock<u64> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        const AT_PAGESZ: u64 = 6;
        const WORD: usize = std::mem::size_of::<usize>();
        std::fs::read("/proc/self/auxv")
            .ok()
            .and_then(|auxv| {
                auxv.chunks_exact(2 * WORD).find_map(|pair| {
                    let (key, value) = pair.split_at(WORD);
                    let key = usize::from_ne_bytes(key.try_into().ok()?) as u64;
                    let value = usize::from_ne_bytes(value.try_into().ok()?) as u64;
                    (key == AT_PAGESZ).then_some(value)
                })
            })
            .unwrap_or(4096)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_points() {
        let ring = Ring::new(3);
        for i in 0..5 {
            ring.push(TimelinePoint {
                at_ms: i,
                live_bytes: 0,
                live_allocations: 0,
                rss_bytes: None,
            });
        }
        let at: Vec<u64> = ring.points().iter().map(|p| p.at_ms).collect();
        assert_eq!(at, vec![2, 3, 4]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn rss_grows_when_memory_is_touched() {
        assert!(page_size().is_power_of_two() && page_size() >= 4096);
        let before = rss_bytes().unwrap();
        let block = vec![1u8; 64 << 20];
        let after = rss_bytes().unwrap();
        assert!(after >= before + (48 << 20), "{before} -> {after}");
        drop(block);
    }
}
