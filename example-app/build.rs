//! Minifies, hashes, precompresses and embeds `static/`; see `[package.metadata.perf]`.

fn main() {
    if let Err(e) = perf_build::run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
