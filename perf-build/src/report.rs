//! What a run produced: per-asset sizes, a bundler-style table, and the `dist` output of
//! the standalone command (hashed files, compressed siblings, `manifest.json`).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::Error;
use crate::budget::BudgetReport;
use crate::cache::write_atomic;
use crate::pipeline::{Built, Output};

/// One asset of a [`Report`].
#[derive(Debug, Clone, Serialize)]
pub struct AssetReport {
    /// Logical path: `css/app.css`.
    #[serde(skip)]
    pub path: String,
    /// Public URL: `/static/css/app.3f9a1c2e.css`.
    pub url: String,
    /// Hashed file name relative to the static dir: `css/app.3f9a1c2e.css`.
    pub file: String,
    /// `sha384-…`
    pub integrity: String,
    /// `Content-Type`.
    pub content_type: String,
    /// Byte sizes.
    pub bytes: Sizes,
    /// An image's intrinsic size, placeholder and every variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageReport>,
    /// A template's critical CSS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical: Option<CriticalReport>,
    /// A bundled chunk: its kind, its modules and, for an entry or a feature, what its
    /// first load needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk: Option<ChunkReport>,
}

/// The bundling part of an [`AssetReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ChunkReport {
    /// `entry`, `feature`, `dynamic` (a split point) or `shared`.
    pub kind: &'static str,
    /// A feature's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// The modules bundled into the chunk: logical paths, `node_modules/…` for npm code.
    pub modules: Vec<String>,
    /// For an entry, a feature or a split point: every chunk loading it needs (itself
    /// first, then what it imports statically, directly or not), and their bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_load: Option<FirstLoad>,
}

/// What loading one entry costs.
#[derive(Debug, Clone, Serialize)]
pub struct FirstLoad {
    /// Logical paths of the chunks, the entry first.
    pub chunks: Vec<String>,
    /// Minified bytes of them all.
    pub minified: usize,
    /// Gzip bytes of them all (identity where no gzip variant is kept).
    pub gzip: usize,
    /// Brotli bytes of them all (identity where none is kept).
    pub brotli: usize,
}

/// The critical-CSS part of an [`AssetReport`].
#[derive(Debug, Clone, Serialize)]
pub struct CriticalReport {
    /// The template, relative to the templates directory.
    pub template: String,
    /// Logical paths of the full stylesheets the page loads after its first paint.
    pub stylesheets: Vec<String>,
    /// Gzip bytes of the critical CSS over gzip bytes of those stylesheets.
    pub share: f64,
}

/// The image part of an [`AssetReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// Intrinsic width, upright.
    pub width: u32,
    /// Intrinsic height, upright.
    pub height: u32,
    /// The blur-up placeholder, a `data:` URI.
    pub placeholder: Option<String>,
    /// Every variant, this asset included, by format (best first) then width.
    pub variants: Vec<VariantReport>,
}

/// One variant of an image.
#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    /// Media type: `image/avif`.
    pub format: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Logical path: `img/hero-640w.avif`.
    pub path: String,
    /// Public URL.
    pub url: String,
    /// Hashed file name relative to the static dir.
    pub file: String,
    /// Size in bytes.
    pub bytes: usize,
}

/// Sizes of one asset in bytes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    /// The source file.
    pub raw: usize,
    /// After minification (identity encoding).
    pub minified: usize,
    /// Gzip variant, if kept.
    pub gzip: Option<usize>,
    /// Brotli variant, if kept.
    pub brotli: Option<usize>,
    /// Zstandard variant, if kept.
    pub zstd: Option<usize>,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every asset, sorted by logical path.
    pub assets: Vec<AssetReport>,
    /// Stage results taken from the cache.
    pub cache_hits: usize,
    /// Stage results computed.
    pub cache_misses: usize,
    /// Wall time of the pipeline.
    pub elapsed: Duration,
    /// What the build says without failing (critical CSS or a page over budget).
    pub warnings: Vec<String>,
    /// The budgeted pages and entries (`[package.metadata.perf.budgets]`), with their
    /// figures.
    pub budgets: Vec<BudgetReport>,
}

impl Report {
    pub(crate) fn new(output: &Output, prefix: &str) -> Self {
        let by_logical: std::collections::HashMap<&str, &Built> = output
            .assets
            .iter()
            .map(|a| (a.logical.as_str(), a))
            .collect();
        let url = |hashed: &str| format!("{prefix}/{}", crate::refs::url_encode(hashed));
        Report {
            assets: output
                .assets
                .iter()
                .map(|a| AssetReport {
                    path: a.logical.clone(),
                    url: format!("{prefix}/{}", crate::refs::url_encode(&a.hashed)),
                    file: a.hashed.clone(),
                    integrity: a.integrity.clone(),
                    content_type: a.content_type.to_string(),
                    bytes: Sizes {
                        raw: a.raw_len,
                        minified: a.identity.len(),
                        gzip: a.variants.gzip.as_ref().map(Vec::len),
                        brotli: a.variants.brotli.as_ref().map(Vec::len),
                        zstd: a.variants.zstd.as_ref().map(Vec::len),
                    },
                    image: a.image.as_ref().map(|info| ImageReport {
                        width: info.width,
                        height: info.height,
                        placeholder: info.placeholder.clone(),
                        variants: info
                            .variants
                            .iter()
                            .map(|v| {
                                let b = by_logical[v.logical.as_str()];
                                VariantReport {
                                    format: v.format.mime(),
                                    width: v.width,
                                    height: v.height,
                                    path: v.logical.clone(),
                                    url: url(&b.hashed),
                                    file: b.hashed.clone(),
                                    bytes: b.identity.len(),
                                }
                            })
                            .collect(),
                    }),
                    critical: a.critical.as_ref().map(|c| {
                        let gz =
                            |b: &Built| b.variants.gzip.as_ref().map_or(b.identity.len(), Vec::len);
                        let full: usize = c
                            .stylesheets
                            .iter()
                            .filter_map(|s| by_logical.get(s.as_str()))
                            .map(|b| gz(b))
                            .sum();
                        CriticalReport {
                            template: c.template.clone(),
                            stylesheets: c.stylesheets.clone(),
                            share: if full == 0 {
                                0.0
                            } else {
                                gz(a) as f64 / full as f64
                            },
                        }
                    }),
                    chunk: a.chunk.as_ref().map(|c| chunk_report(a, c, &by_logical)),
                })
                .collect(),
            cache_hits: output.cache_hits,
            cache_misses: output.cache_misses,
            elapsed: output.elapsed,
            warnings: output.warnings.clone(),
            budgets: output.budgets.clone(),
        }
    }

    /// `manifest.json`: logical path → url, file, integrity, content type and sizes.
    pub fn manifest_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .assets
            .iter()
            .map(|a| {
                (
                    a.path.clone(),
                    serde_json::to_value(a).expect("serialisable"),
                )
            })
            .collect();
        serde_json::to_string_pretty(&map).expect("serialisable") + "\n"
    }

    /// A size table like a bundler's.
    pub fn table(&self) -> String {
        let kb = |n: usize| {
            if n < 1024 {
                format!("{n} B")
            } else {
                format!("{:.1} KiB", n as f64 / 1024.0)
            }
        };
        let opt = |n: Option<usize>| n.map(kb).unwrap_or_else(|| "-".into());
        let width = self
            .assets
            .iter()
            .map(|a| a.file.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{:<width$}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}\n",
            "file", "raw", "minified", "gzip", "brotli", "zstd"
        );
        let (mut raw, mut min, mut br) = (0, 0, 0);
        for a in &self.assets {
            let b = a.bytes;
            raw += b.raw;
            min += b.minified;
            br += b.brotli.unwrap_or(b.minified);
            out.push_str(&format!(
                "{:<width$}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}\n",
                a.file,
                kb(b.raw),
                kb(b.minified),
                opt(b.gzip),
                opt(b.brotli),
                opt(b.zstd)
            ));
        }
        let critical: Vec<&AssetReport> = self
            .assets
            .iter()
            .filter(|a| a.critical.is_some())
            .collect();
        if !critical.is_empty() {
            out.push_str(&format!(
                "\n{:<width$}  {:>10}  {:>10}  {:>10}\n",
                "critical CSS (template)", "raw", "gzip", "of full"
            ));
            for a in critical {
                let c = a.critical.as_ref().expect("filtered");
                out.push_str(&format!(
                    "{:<width$}  {:>10}  {:>10}  {:>9.0}%\n",
                    c.template,
                    kb(a.bytes.minified),
                    opt(a.bytes.gzip),
                    c.share * 100.0
                ));
            }
            out.push('\n');
        }
        let loads: Vec<(&AssetReport, &FirstLoad)> = self
            .assets
            .iter()
            .filter_map(|a| Some((a, a.chunk.as_ref()?.first_load.as_ref()?)))
            .collect();
        if !loads.is_empty() {
            out.push_str(&format!(
                "\n{:<width$}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}\n",
                "first load (entry, feature)", "chunks", "modules", "minified", "gzip", "brotli"
            ));
            for (a, load) in loads {
                let modules: usize = load
                    .chunks
                    .iter()
                    .filter_map(|c| self.assets.iter().find(|x| &x.path == c))
                    .filter_map(|x| x.chunk.as_ref())
                    .map(|c| c.modules.len())
                    .sum();
                out.push_str(&format!(
                    "{:<width$}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}\n",
                    a.path,
                    load.chunks.len(),
                    modules,
                    kb(load.minified),
                    kb(load.gzip),
                    kb(load.brotli)
                ));
            }
            out.push('\n');
        }
        if !self.budgets.is_empty() {
            out.push('\n');
            out.push_str(&crate::budget::table(&self.budgets, width));
            out.push('\n');
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out.push_str(&format!(
            "{} assets: {} raw, {} minified, {} brotli; {} stage results cached, {} computed, in {:.2?}\n",
            self.assets.len(),
            kb(raw),
            kb(min),
            kb(br),
            self.cache_hits,
            self.cache_misses,
            self.elapsed
        ));
        out
    }
}

fn chunk_report(
    a: &Built,
    c: &crate::bundle::ChunkInfo,
    by_logical: &std::collections::HashMap<&str, &Built>,
) -> ChunkReport {
    use crate::bundle::ChunkKind;
    let (kind, feature) = match &c.kind {
        ChunkKind::Entry => ("entry", None),
        ChunkKind::Feature(name) => ("feature", Some(name.clone())),
        ChunkKind::Dynamic => ("dynamic", None),
        ChunkKind::Shared => ("shared", None),
    };
    let first_load = (kind != "shared").then(|| {
        let chunks = crate::budget::first_load(&a.logical, by_logical);
        let built: Vec<&Built> = chunks
            .iter()
            .filter_map(|c| by_logical.get(c.as_str()).copied())
            .collect();
        FirstLoad {
            minified: built.iter().map(|b| b.identity.len()).sum(),
            gzip: built
                .iter()
                .map(|b| b.variants.gzip.as_ref().map_or(b.identity.len(), Vec::len))
                .sum(),
            brotli: built
                .iter()
                .map(|b| {
                    b.variants
                        .brotli
                        .as_ref()
                        .map_or(b.identity.len(), Vec::len)
                })
                .sum(),
            chunks,
        }
    });
    ChunkReport {
        kind,
        feature,
        modules: c.modules.clone(),
        first_load,
    }
}

/// Writes every hashed file and its variants, then `manifest.json` last: a failure
/// part-way leaves the previous manifest pointing at complete files.
pub(crate) fn write_dist(dist: &Path, assets: &[Built], report: &Report) -> Result<(), Error> {
    for a in assets {
        let base = dist.join(&a.hashed);
        let v = &a.variants;
        for (suffix, bytes) in [
            ("", Some(&a.identity)),
            (".br", v.brotli.as_ref()),
            (".gz", v.gzip.as_ref()),
            (".zst", v.zstd.as_ref()),
        ] {
            let Some(bytes) = bytes else { continue };
            let mut path = base.clone().into_os_string();
            path.push(suffix);
            let path = Path::new(&path);
            if std::fs::read(path).is_ok_and(|old| old == *bytes) {
                continue;
            }
            write_atomic(path, bytes).map_err(|e| Error::io(path, e))?;
        }
    }
    let manifest = dist.join("manifest.json");
    write_atomic(&manifest, report.manifest_json().as_bytes()).map_err(|e| Error::io(&manifest, e))
}
