//! Minifies, hashes, precompresses and embeds `static/`; see `[package.metadata.perf]`.

fn main() {
    if let Err(e) = perf_build::run() {
        e.emit();
    }
}
