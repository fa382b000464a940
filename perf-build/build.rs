//! Records the exact versions and features of every crate compiled into perf-build (swc's
//! minifier, lightningcss, the browser data …) so that the content-addressed cache keys
//! name them: after a `cargo update`, no entry made by other versions is ever reused.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by Cargo"))
        .join("Cargo.toml");
    let fingerprint = lock_file(&manifest)
        .and_then(|lock| {
            println!("cargo::rerun-if-changed={}", lock.display());
            dependencies(&lock.with_file_name("Cargo.toml"), &manifest)
        })
        // Without the resolved graph, nothing can prove two builds compiled the same
        // crates: key this compilation alone, so its entries are never reused by another.
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("unresolved build {now}")
        });
    // The list names a few hundred crates; cache keys take its digest.
    let digest: String = sha2::Sha256::digest(fingerprint.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo::rustc-env=PERF_BUILD_DEPENDENCIES={fingerprint}");
    println!("cargo::rustc-env=PERF_BUILD_DEPENDENCIES_SHA256={digest}");
}

/// The `Cargo.lock` of the workspace being built: beside the target directory that holds
/// `OUT_DIR` (an application that depends on perf-build), or above this package (our own
/// workspace, where the target directory may be elsewhere).
fn lock_file(manifest: &Path) -> Option<PathBuf> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR")?);
    let from_target = out
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent) // <target>/<profile>
        .and_then(Path::parent) // <target>
        .and_then(Path::parent) // the workspace, in the usual layout
        .map(|w| w.join("Cargo.lock"));
    let from_package = manifest.ancestors().skip(1).map(|d| d.join("Cargo.lock"));
    from_target
        .into_iter()
        .chain(from_package)
        .find(|lock| lock.is_file())
}

/// `name version features` of every crate perf-build depends on (transitively, normal
/// dependencies only), sorted, separated by `;` (a build script's output is one line); `None` when `cargo metadata` cannot say, or
/// when that workspace does not build this copy of perf-build.
fn dependencies(workspace: &Path, manifest: &Path) -> Option<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = std::env::var("TARGET").ok()?;
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .args(["--filter-platform", &target, "--manifest-path"])
        .arg(workspace)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let manifest = manifest.canonicalize().ok()?;
    let packages = meta["packages"].as_array()?;
    let package = |id: &str| packages.iter().find(|p| p["id"] == id);
    let root = packages.iter().find(|p| {
        p["manifest_path"]
            .as_str()
            .and_then(|m| Path::new(m).canonicalize().ok())
            .is_some_and(|m| m == manifest)
    })?["id"]
        .as_str()?;
    let nodes = meta["resolve"]["nodes"].as_array()?;
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id);
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![root.to_string()];
    let mut lines = std::collections::BTreeSet::new();
    while let Some(id) = todo.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let n = node(&id)?;
        let p = package(&id)?;
        let features: Vec<&str> = n["features"]
            .as_array()
            .map(|f| f.iter().filter_map(|f| f.as_str()).collect())
            .unwrap_or_default();
        lines.insert(format!(
            "{} {} {}",
            p["name"].as_str()?,
            p["version"].as_str()?,
            features.join(",")
        ));
        for dep in n["deps"].as_array()? {
            let normal = dep["dep_kinds"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k["kind"].is_null()));
            if normal && let Some(d) = dep["pkg"].as_str() {
                todo.push(d.to_string());
            }
        }
    }
    Some(lines.into_iter().collect::<Vec<_>>().join(";"))
}
