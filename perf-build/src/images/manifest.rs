//! What the images give the rest of the build once every file is hashed: the manifest
//! that the browser's ImageOptimizer reads (`_perf/images.json`), the stylesheet of
//! blur-up placeholders (`_perf/images.css`), and the ImageOptimizer script itself
//! (`_perf/image-optimizer.js`, an input like any other script, so it is minified and
//! hashed).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::finish::Final;
use crate::hash;
use crate::pipeline::Unit;
use crate::refs::url_encode;
use crate::transform::Piece;

use super::ImageInfo;

/// Logical path of the ImageOptimizer script.
pub const OPTIMIZER: &str = "_perf/image-optimizer.js";
/// Logical path of the image manifest.
pub const MANIFEST: &str = "_perf/images.json";
/// Logical path of the placeholder stylesheet.
pub const PLACEHOLDERS: &str = "_perf/images.css";

/// The ImageOptimizer's source, shipped inside perf-build.
pub const OPTIMIZER_SOURCE: &[u8] = include_bytes!("../../assets/image-optimizer.js");

/// Where the ImageOptimizer's source lives, for error messages and `rerun-if-changed`.
pub fn optimizer_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/image-optimizer.js"
    ))
}

/// The class that carries an image's placeholder: `perf-ph-` and 8 hex digits of its
/// logical path, so the markup does not change when the image does.
pub fn placeholder_class(logical: &str) -> String {
    format!("perf-ph-{}", &hash::sha256_hex(logical.as_bytes())[..8])
}

/// The derived files, finished: nothing when there is no image.
pub fn derive(units: &[Unit], finals: &[Final], prefix: &str) -> Vec<(Unit, Final)> {
    let hashed: HashMap<&str, &str> = finals
        .iter()
        .map(|f| (f.logical.as_str(), f.hashed.as_str()))
        .collect();
    let url = |logical: &str| format!("{prefix}/{}", url_encode(hashed[logical]));
    let images: Vec<(&str, &ImageInfo)> = units
        .iter()
        .filter_map(|u| {
            u.piece
                .image
                .as_ref()
                .map(|i| (u.piece.logical.as_str(), i))
        })
        .collect();
    if images.is_empty() {
        return Vec::new();
    }

    let mut entries = serde_json::Map::new();
    let mut css = String::from(".perf-img.perf-loaded{background-image:none}");
    for (logical, info) in &images {
        let mut sources = serde_json::Map::new();
        for v in &info.variants {
            let list = sources
                .entry(v.format.mime())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(list) = list {
                list.push(serde_json::json!([v.width, url(&v.logical)]));
            }
        }
        entries.insert(
            logical.to_string(),
            serde_json::json!({
                "width": info.width,
                "height": info.height,
                "placeholder": info.placeholder,
                "src": url(logical),
                "sources": sources,
            }),
        );
        if let Some(p) = &info.placeholder {
            let _ = write!(
                css,
                ".{}{{background:url({p}) 50%/cover no-repeat}}",
                placeholder_class(logical)
            );
        }
    }
    let json = serde_json::json!({ "prefix": prefix, "images": entries }).to_string();
    let source = images
        .first()
        .and_then(|(l, _)| units.iter().find(|u| u.piece.logical == *l))
        .map(|u| u.file.clone())
        .unwrap_or_default();
    [
        (MANIFEST, json.into_bytes()),
        (PLACEHOLDERS, css.into_bytes()),
    ]
    .into_iter()
    .map(|(logical, bytes)| {
        let fin = Final {
            logical: logical.to_string(),
            hashed: hash::hashed_name(logical, &hash::sha256_hex(&bytes)),
            bytes: bytes.clone(),
            map: None,
        };
        let unit = Unit {
            raw_len: bytes.len(),
            piece: Piece {
                logical: logical.to_string(),
                bytes,
                refs: Vec::new(),
                map: None,
                module: false,
                image: None,
                critical: None,
            },
            file: source.clone(),
        };
        (unit, fin)
    })
    .collect()
}
