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
}

/// Every regular file under `dir`, sorted by logical path. Hidden files and folders
/// (`.DS_Store`, `.git`) are skipped; symbolic links are followed.
pub fn discover(dir: &Path) -> Result<Vec<Input>, Error> {
    let mut found = Vec::new();
    if dir.is_dir() {
        walk(dir, "", &mut found)?;
    }
    found.sort();
    Ok(found)
}

fn walk(dir: &Path, prefix: &str, found: &mut Vec<Input>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::io(
                entry.path(),
                std::io::Error::new(std::io::ErrorKind::InvalidData, "file name is not UTF-8"),
            ));
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let logical = format!("{prefix}{name}");
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            walk(&path, &format!("{logical}/"), found)?;
        } else if meta.is_file() {
            found.push(Input {
                logical,
                file: path,
            });
        }
    }
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
}
