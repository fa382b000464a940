//! The content-addressed cache: a stage's output stored under the hash of everything it
//! depends on (input bytes, options, tool versions), so an unchanged input is never
//! processed twice, across builds and across packages sharing a target directory.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Bumped whenever a stage's output format or behaviour changes; with the digest of the
/// exact versions and features of every crate compiled into perf-build (recorded by its
/// build script from the resolved dependency graph: [`DEPENDENCIES`]), so an entry made by
/// other versions is never used.
const FORMAT: &str = concat!(
    "perf-build ",
    env!("CARGO_PKG_VERSION"),
    " v3 ",
    env!("PERF_BUILD_DEPENDENCIES_SHA256")
);

/// `name version features` of every crate compiled into perf-build, `;`-separated.
#[cfg(test)]
const DEPENDENCIES: &str = env!("PERF_BUILD_DEPENDENCIES");

/// A cache directory, or none (every lookup misses).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
}

impl Cache {
    /// A cache in `dir`, created on first write.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Cache { dir }
    }

    /// The key of a stage's output: the hash of the stage name, the tool versions and
    /// each part, length-prefixed so no two part lists collide.
    pub fn key(stage: &str, parts: &[&[u8]]) -> String {
        let mut h = Sha256::new();
        for part in [FORMAT.as_bytes(), stage.as_bytes()].iter().chain(parts) {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(&key[..2]).join(key))
    }

    /// The stored bytes, if any.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(key)?).ok()
    }

    /// Stores bytes. Best effort: a cache that cannot be written only costs time.
    /// The write goes to a temporary file renamed into place, so a reader never sees a
    /// partial entry, even with several builds running at once.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let Some(path) = self.path(key) else { return };
        let _ = write_atomic(&path, bytes);
    }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!(
        "tmp{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_distinct_keys() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(dir.path().to_path_buf()));
        let k = Cache::key("css", &[b"a", b"bc"]);
        assert_ne!(k, Cache::key("css", &[b"ab", b"c"]));
        assert_ne!(k, Cache::key("js", &[b"a", b"bc"]));
        assert_eq!(cache.get(&k), None);
        cache.put(&k, b"out");
        assert_eq!(cache.get(&k).as_deref(), Some(&b"out"[..]));
        assert_eq!(Cache::new(None).get(&k), None);
    }

    #[test]
    fn keys_name_the_crates_compiled_in() {
        // Caret dependencies that `cargo update` moves without a word in our manifest:
        // each must be part of every key, at the version this build compiled.
        for krate in [
            "swc_ecma_minifier ",
            "swc_ecma_parser ",
            "lightningcss 1.0.0-alpha.72 ",
            "browserslist-data ",
            "browserslist-rs ",
            "brotli ",
        ] {
            assert!(
                DEPENDENCIES.split(';').any(|l| l.starts_with(krate)),
                "{krate} missing from the cache format:\n{DEPENDENCIES}"
            );
        }
        assert!(!DEPENDENCIES.contains("unresolved build"), "{DEPENDENCIES}");
        let digest = crate::hash::sha256_hex(DEPENDENCIES.as_bytes());
        assert!(FORMAT.ends_with(&digest), "{FORMAT}");
    }
}
