//! Finds every asset under the static dir, in a deterministic order.

use std::path::{Path, PathBuf};

use crate::Error;

/// One file found under the static dir.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Input {
    /// Path relative to the static dir with `/` separators: `css/app.css`.
    pub logical: String,
    /// Path on disk.
    pub file: PathBuf,
    /// The bytes of a file that perf-build itself ships (the ImageOptimizer script),
    /// read from here instead of `file`.
    pub builtin: Option<&'static [u8]>,
    /// The bytes of a file made by an earlier stage (a bundled chunk).
    pub made: Option<std::sync::Arc<[u8]>>,
    /// The source map of a made file, back to the files it was made from.
    pub map: Option<std::sync::Arc<str>>,
}

impl Input {
    /// The file's bytes.
    pub fn read(&self) -> Result<std::borrow::Cow<'static, [u8]>, crate::Error> {
        if let Some(made) = &self.made {
            return Ok(std::borrow::Cow::Owned(made.to_vec()));
        }
        match self.builtin {
            Some(b) => Ok(std::borrow::Cow::Borrowed(b)),
            None => std::fs::read(&self.file)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| crate::Error::io(&self.file, e)),
        }
    }
}

/// Every regular file under `dir`, sorted by logical path. Hidden files and folders
/// (`.DS_Store`, `.git`) are skipped, except `.well-known/`, which is served; symbolic
/// links are followed, and a link back to a folder being walked is an error rather than
/// an endless walk.
pub fn discover(dir: &Path) -> Result<Vec<Input>, Error> {
    let mut found = Vec::new();
    if dir.is_dir() {
        walk(dir, "", &mut found, &mut Vec::new())?;
    }
    found.sort();
    Ok(found)
}

/// Whether a file or folder name is skipped: hidden names, whatever their encoding.
fn hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.') && name != ".well-known"
}

fn walk(
    dir: &Path,
    prefix: &str,
    found: &mut Vec<Input>,
    ancestors: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let real = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    if ancestors.contains(&real) {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "symbolic link loop: this folder is {}, which contains it",
                    real.display()
                ),
            ),
        ));
    }
    ancestors.push(real);
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        if hidden(&name) {
            continue;
        }
        let Some(name) = name.to_str() else {
            return Err(Error::io(
                entry.path(),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "file name is not UTF-8: rename it (asset names become URLs)",
                ),
            ));
        };
        let path = entry.path();
        let logical = format!("{prefix}{name}");
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            walk(&path, &format!("{logical}/"), found, ancestors)?;
        } else if meta.is_file() {
            found.push(Input {
                logical,
                file: path,
                builtin: None,
                made: None,
                map: None,
            });
        }
    }
    ancestors.pop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_sorted_and_skips_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("js/lib")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for f in [
            "js/lib/b.js",
            "js/a.js",
            "app.css",
            ".DS_Store",
            ".git/config",
        ] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        let found: Vec<String> = discover(root)
            .unwrap()
            .into_iter()
            .map(|i| i.logical)
            .collect();
        assert_eq!(found, ["app.css", "js/a.js", "js/lib/b.js"]);
        assert!(discover(&root.join("missing")).unwrap().is_empty());
    }

    #[test]
    fn serves_well_known_and_skips_hidden_names_in_any_encoding() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(".well-known")).unwrap();
        std::fs::write(root.join(".well-known/security.txt"), "x").unwrap();
        std::fs::write(root.join(std::ffi::OsStr::from_bytes(b".hidden-\xff")), "x").unwrap();
        let found: Vec<String> = discover(root)
            .unwrap()
            .into_iter()
            .map(|i| i.logical)
            .collect();
        assert_eq!(found, [".well-known/security.txt"]);
        std::fs::write(root.join(std::ffi::OsStr::from_bytes(b"bad-\xff.txt")), "x").unwrap();
        let e = discover(root).unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn a_symlink_loop_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/x.txt"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("a/b/loop")).unwrap();
        let e = discover(root).unwrap_err().to_string();
        assert!(
            e.contains("symbolic link loop") && e.contains("loop"),
            "{e}"
        );
    }
}
