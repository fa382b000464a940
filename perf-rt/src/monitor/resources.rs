//! Process resources: CPU, resident memory, open file descriptors and disk usage, read from
//! `/proc` and `statvfs` (Linux; elsewhere the `/proc` figures are `None`).

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

/// One reading of the process' resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ResourceSample {
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// CPU used by the process since the previous sample, in percent of one core (200 on
    /// two busy cores). `None` for the first sample.
    pub cpu_percent: Option<f64>,
    /// CPU time (user + system) used since the process started, in seconds.
    pub cpu_seconds_total: Option<f64>,
    /// Resident set size.
    pub rss_bytes: Option<u64>,
    /// Open file descriptors (sockets included).
    pub open_fds: Option<u64>,
    /// Bytes used on the filesystem holding the monitored path.
    pub disk_used_bytes: Option<u64>,
    /// Size of that filesystem.
    pub disk_total_bytes: Option<u64>,
}

/// Reads samples, remembering the previous CPU reading to turn totals into a rate.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    previous: Option<(Instant, f64)>,
}

impl Sampler {
    pub(crate) fn sample(&mut self, disk_path: &Path) -> ResourceSample {
        let now = Instant::now();
        let cpu = cpu_seconds();
        let cpu_percent = match (self.previous, cpu) {
            (Some((then, before)), Some(after)) => {
                let wall = now.duration_since(then).as_secs_f64();
                (wall > 0.0).then(|| ((after - before) / wall * 100.0).max(0.0))
            }
            _ => None,
        };
        if let Some(c) = cpu {
            self.previous = Some((now, c));
        }
        let (disk_used_bytes, disk_total_bytes) = match disk(disk_path) {
            Some((used, total)) => (Some(used), Some(total)),
            None => (None, None),
        };
        ResourceSample {
            at_ms: super::now_ms(),
            cpu_percent,
            cpu_seconds_total: cpu,
            rss_bytes: rss_bytes(),
            open_fds: open_fds(),
            disk_used_bytes,
            disk_total_bytes,
        }
    }
}

/// User plus system CPU seconds of this process, from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields
    // from the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second();
    (ticks > 0).then(|| (utime + stime) as f64 / ticks as f64)
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

fn open_fds() -> Option<u64> {
    // The directory handle itself is one of the entries.
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(n.saturating_sub(1))
}

fn disk(path: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(path).ok()?;
    let total = st.f_blocks.saturating_mul(st.f_frsize);
    let free = st.f_bfree.saturating_mul(st.f_frsize);
    Some((total.saturating_sub(free), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_move_with_the_process() {
        let mut sampler = Sampler::default();
        let first = sampler.sample(Path::new("."));
        assert!(first.cpu_percent.is_none());
        if cfg!(target_os = "linux") {
            let fds = first.open_fds.expect("fds on linux");
            let files: Vec<_> = (0..5)
                .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
                .collect();
            // Spin so the CPU figure has something to show.
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed().as_millis() < 50 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            let second = sampler.sample(Path::new("."));
            assert!(second.open_fds.unwrap() >= fds + 5, "{first:?} {second:?}");
            assert!(second.cpu_percent.unwrap() > 10.0, "{second:?} {x}");
            assert!(second.rss_bytes.unwrap() > 1 << 20);
            let (used, total) = (
                second.disk_used_bytes.unwrap(),
                second.disk_total_bytes.unwrap(),
            );
            assert!(used > 0 && used <= total);
            drop(files);
        }
    }
}
