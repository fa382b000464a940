//! Helpers the test binaries share: small throwaway crates built with the real `cargo`,
//! sharing this workspace's target directory, profiles and lock file, so nothing already
//! compiled is compiled again; and a headless Chromium (`browser`).

// Each test binary uses a part of this module.
#![allow(dead_code)]

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The target directory this test binary was built into.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/debug/deps/<test binary>
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// The `[profile…]` sections of the workspace manifest, so the crate builds its
/// dependencies exactly as the workspace does.
fn profiles() -> String {
    let manifest = std::fs::read_to_string(Path::new(WORKSPACE).join("Cargo.toml")).unwrap();
    let start = manifest
        .find("\n[profile.")
        .expect("the workspace has profile settings");
    manifest[start..].to_string()
}

/// A crate in a temporary directory: `files` are (relative path, contents).
///
/// Every such crate has the same dependencies, so Cargo resolves the same features for
/// all of them and compiles the dependency graph (swc included) once for the first and
/// never again. The features differ from the workspace's, so that first build is not
/// free: it is what a new application pays once.
pub struct Crate {
    pub dir: tempfile::TempDir,
}

impl Crate {
    pub fn new(name: &str, files: &[(&str, &str)]) -> Crate {
        let dir = tempfile::tempdir().unwrap();
        let manifest = format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\n\
             perf-rt = {{ path = \"{}\", features = [\"full\"] }}\n\
             perf-tests = {{ path = \"{}\" }}\n\
             axum = {{ version = \"0.8\", default-features = false, features = [\"tokio\", \"http1\"] }}\n\
             tokio = {{ version = \"1\", features = [\"rt-multi-thread\", \"macros\", \"net\"] }}\n\n\
             [build-dependencies]\nperf-build = {{ path = \"{}\" }}\n\n[workspace]\n{}",
            crate_path("perf-rt"),
            crate_path("tests"),
            crate_path("perf-build"),
            profiles()
        );
        std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
        std::fs::copy(
            Path::new(WORKSPACE).join("Cargo.lock"),
            dir.path().join("Cargo.lock"),
        )
        .unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Crate { dir }
    }

    /// `cargo build` with extra arguments, offline (the workspace's build fetched every
    /// dependency already).
    pub fn build(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.arg("build")
            .arg("--offline")
            .args(args)
            .current_dir(self.dir.path())
            .env("CARGO_TARGET_DIR", target_dir())
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_MANIFEST_DIR")
            .env_remove("RUSTFLAGS");
        cmd.output().unwrap()
    }
}

/// The path of a workspace crate, for a `path = …` dependency.
pub fn crate_path(name: &str) -> String {
    Path::new(WORKSPACE)
        .join(name)
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

/// Every file under `dir`, recursively (empty when `dir` does not exist).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                found.extend(files_in(&e.path()));
            } else {
                found.push(e.path());
            }
        }
    }
    found
}
