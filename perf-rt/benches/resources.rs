//! Cost of one resource sample (CPU time, resident memory, open file descriptors and disk
//! usage of the process): the hand-parsed `/proc` reader the monitor used before, against
//! `sysinfo` as the monitor calls it now. Both read the disk the same way (`statvfs`).
//!
//! ```text
//! cargo bench -p perf-rt --features monitor --bench resources
//! ```

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

/// CPU seconds, RSS bytes, open descriptors, (used, total) disk bytes.
type Sample = (Option<f64>, Option<u64>, Option<u64>, Option<(u64, u64)>);

fn disk(path: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(path).ok()?;
    let total = st.f_blocks.saturating_mul(st.f_frsize);
    let free = st.f_bfree.saturating_mul(st.f_frsize);
    Some((total.saturating_sub(free), total))
}

/// The reader perf-rt had before sysinfo (Linux only).
fn by_hand(path: &Path) -> Sample {
    let cpu = (|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_ascii_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        let ticks = rustix::param::clock_ticks_per_second();
        Some((utime + stime) as f64 / ticks as f64)
    })();
    let rss = (|| {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_ascii_whitespace().nth(1)?.parse().ok()?;
        Some(pages * rustix::param::page_size() as u64)
    })();
    let fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64 - 1);
    (cpu, rss, fds, disk(path))
}

/// What `monitor::resources::Sampler` does now.
fn with_sysinfo(system: &mut System, path: &Path) -> Sample {
    let pid = sysinfo::get_current_pid().unwrap();
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .without_tasks(),
    );
    let p = system.process(pid).unwrap();
    (
        Some(p.accumulated_cpu_time() as f64 / 1000.0),
        Some(p.memory()),
        p.open_files().map(|n| n as u64 - 1),
        disk(path),
    )
}

fn bench(c: &mut Criterion) {
    let path = Path::new(".");
    let mut group = c.benchmark_group("resource sample");
    group.bench_function("/proc by hand (before)", |b| {
        b.iter(|| black_box(by_hand(black_box(path))))
    });
    let mut system = System::new();
    group.bench_function("sysinfo (now)", |b| {
        b.iter(|| black_box(with_sysinfo(&mut system, black_box(path))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
