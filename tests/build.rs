//! Runs perf-build on `fixtures/static`, exactly as an application's build.rs would.

fn main() {
    if let Err(e) = perf_build::run() {
        e.emit();
    }
}
