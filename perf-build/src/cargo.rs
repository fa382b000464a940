//! The only module that prints `cargo::` instructions.

use std::path::Path;

/// Tells Cargo to rerun the build script when this file or directory changes. A
/// directory is scanned recursively by Cargo, so added files are seen too.
pub fn rerun_if_changed(path: &Path) {
    println!("cargo::rerun-if-changed={}", path.display());
}

/// Tells Cargo to rerun the build script when this variable changes.
pub fn rerun_if_env_changed(name: &str) {
    println!("cargo::rerun-if-env-changed={name}");
}

/// A warning shown by Cargo.
pub fn warning(message: &str) {
    for line in message.lines() {
        println!("cargo::warning={line}");
    }
}
