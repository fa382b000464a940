//! The application's npm packages: installed from its `package-lock.json` when
//! `node_modules` is missing or older than the lock, so that `cargo build` on a fresh
//! clone bundles what `import "…"` names, as `npm ci && vite build` would.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// What [`ensure_installed`] did.
#[derive(Debug, Default)]
pub struct Installed {
    /// Files that decide what is installed: a change to one runs the build again.
    pub watched: Vec<PathBuf>,
    /// The command run, if one was (for a build warning).
    pub ran: Option<String>,
}

/// Runs `npm ci` (or `npm install` without a lock) in `dir` when its `package.json`
/// declares dependencies and `node_modules` is missing or older than the lock.
pub fn ensure_installed(dir: &Path) -> Result<Installed, Error> {
    let manifest = dir.join("package.json");
    let lock = dir.join("package-lock.json");
    let mut out = Installed::default();
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return Ok(out);
    };
    out.watched.push(manifest.clone());
    if lock.is_file() {
        out.watched.push(lock.clone());
    }
    let declared: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config {
        source_of_value: manifest.display().to_string(),
        message: format!("not valid JSON: {e}"),
    })?;
    let has_dependencies = ["dependencies", "devDependencies"].iter().any(|k| {
        declared
            .get(k)
            .and_then(|d| d.as_object())
            .is_some_and(|d| !d.is_empty())
    });
    if !has_dependencies || !stale(dir, &lock) {
        return Ok(out);
    }
    let args: &[&str] = if lock.is_file() {
        &["ci", "--ignore-scripts", "--no-audit", "--no-fund"]
    } else {
        &["install", "--ignore-scripts", "--no-audit", "--no-fund"]
    };
    let command = format!("npm {}", args.join(" "));
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .output();
    match status {
        Ok(o) if o.status.success() => {
            out.ran = Some(format!("ran `{command}` in {}", dir.display()));
            Ok(out)
        }
        Ok(o) => Err(Error::Config {
            source_of_value: manifest.display().to_string(),
            message: format!(
                "`{command}` failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        }),
        Err(e) => Err(Error::Config {
            source_of_value: manifest.display().to_string(),
            message: format!(
                "declares npm dependencies and node_modules is missing or out of date, but npm \
                 could not be run ({e}): install Node.js and run `npm ci` in {}, or set \
                 [package.metadata.perf.bundle] npm-install = false",
                dir.display()
            ),
        }),
    }
}

/// Whether `node_modules` is missing, or older than the lock (npm writes
/// `node_modules/.package-lock.json` on every install).
fn stale(dir: &Path, lock: &Path) -> bool {
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(&installed), modified(lock)) {
        (None, _) => true,
        (Some(i), Some(l)) => l > i,
        (Some(_), None) => false,
    }
}
