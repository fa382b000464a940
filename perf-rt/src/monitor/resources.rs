//! Process resources: CPU, resident memory and open file descriptors from `sysinfo` (Linux,
//! macOS, Windows and the BSDs), disk usage from `statvfs` (every Unix).

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

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
#[derive(Debug)]
pub(crate) struct Sampler {
    previous: Option<(Instant, f64)>,
    /// Kept between samples: sysinfo reuses its buffers. Only this process is refreshed.
    system: System,
    pid: Option<Pid>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self {
            previous: None,
            system: System::new(),
            pid: sysinfo::get_current_pid().ok(),
        }
    }
}

/// The process figures of one sample.
struct Process {
    cpu_seconds: Option<f64>,
    rss_bytes: Option<u64>,
    open_fds: Option<u64>,
}

impl Sampler {
    pub(crate) fn sample(&mut self, disk_path: &Path) -> ResourceSample {
        let now = Instant::now();
        let process = self.process();
        let cpu = process.cpu_seconds;
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
            rss_bytes: process.rss_bytes,
            open_fds: process.open_fds,
            disk_used_bytes,
            disk_total_bytes,
        }
    }

    fn process(&mut self) -> Process {
        let none = Process {
            cpu_seconds: None,
            rss_bytes: None,
            open_fds: None,
        };
        let Some(pid) = self.pid else { return none };
        // CPU and memory only: no threads (tasks), command line, environment or disk I/O.
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .without_tasks(),
        );
        let Some(p) = self.system.process(pid) else {
            return none;
        };
        // On Linux the count is of `/proc/self/fd`, whose own handle is one of the entries.
        let own = u64::from(cfg!(target_os = "linux"));
        Process {
            cpu_seconds: Some(p.accumulated_cpu_time() as f64 / 1000.0),
            rss_bytes: Some(p.memory()),
            open_fds: p.open_files().map(|n| (n as u64).saturating_sub(own)),
        }
    }
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
        {
            let fds = first.open_fds.expect("open files");
            let files: Vec<_> = (0..5)
                .map(|_| std::fs::File::open("Cargo.toml").unwrap())
                .collect();
            // Spin so the CPU figure has something to show.
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed().as_millis() < 50 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            let second = sampler.sample(Path::new("."));
            assert!(second.open_fds.unwrap() >= fds + 5, "{first:?} {second:?}");
            drop(files);
            let third = sampler.sample(Path::new("."));
            assert!(third.open_fds.unwrap() <= second.open_fds.unwrap() - 5);
            assert!(second.cpu_percent.unwrap() > 10.0, "{second:?} {x}");
            assert!(second.rss_bytes.unwrap() > 1 << 20);
            let (used, total) = (
                second.disk_used_bytes.unwrap(),
                second.disk_total_bytes.unwrap(),
            );
            assert!(used > 0 && used <= total);
        }
    }
}
