//! The pipeline: discover → transform (per kind of asset; parallel, cached) → resolve
//! references → finish (fill in URLs, hash) → derive (files made from every image) →
//! precompress (parallel, cached). It only
//! orchestrates: each kind of asset is a module behind [`AssetKind`], and each stage a
//! module of its own. The only module that knows about rayon.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::bundle::ChunkInfo;
use crate::cache::Cache;
use crate::compress::{self, Variants};
use crate::config::{Config, Quality};
use crate::critical::{self, CriticalInfo};
use crate::discover::{Input, discover};
use crate::finish::Final;
use crate::images::{self, ImageInfo, manifest};
use crate::other::Other;
use crate::transform::{AssetKind, Piece, Transformed};
use crate::{Error, bundle, css, finish, hash, js, mime, resolve};

/// One finished asset.
#[derive(Debug, Clone)]
pub struct Built {
    /// Logical path: `css/app.css`.
    pub logical: String,
    /// Hashed path: `css/app.3f9a1c2e.css`.
    pub hashed: String,
    /// The source file (for a source map, the file it maps).
    pub source: PathBuf,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Bytes served without content encoding.
    pub identity: Vec<u8>,
    /// Compressed variants.
    pub variants: Variants,
    /// Hex SHA-256 of `identity`.
    pub sha256: String,
    /// `sha384-…`.
    pub integrity: String,
    /// Logical paths of the modules this module imports statically.
    pub imports: Vec<String>,
    /// Size of the source file.
    pub raw_len: usize,
    /// Whether this is a JavaScript file (it goes into the import map).
    pub is_js: bool,
    /// An image's size, placeholder and variants.
    pub image: Option<ImageInfo>,
    /// A template's critical CSS: which template, which stylesheets.
    pub critical: Option<CriticalInfo>,
    /// A bundled chunk: what it is, which modules it holds.
    pub chunk: Option<ChunkInfo>,
}

/// The result of a pipeline run.
#[derive(Debug)]
pub struct Output {
    /// Every asset, sorted by logical path.
    pub assets: Vec<Built>,
    /// Transforms and compressions served from the cache.
    pub cache_hits: usize,
    /// Transforms and compressions computed.
    pub cache_misses: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// What the build should say without failing (critical CSS over budget).
    pub warnings: Vec<String>,
    /// Files outside the static dir that the build read (npm packages of the bundle).
    pub watched: Vec<PathBuf>,
    /// The budgeted pages and entries, with their figures.
    pub budgets: Vec<crate::budget::BudgetReport>,
}

/// A piece on its way through the pipeline, with the input it came from.
pub(crate) struct Unit {
    /// What the kind produced.
    pub piece: Piece,
    /// The source file.
    pub file: PathBuf,
    /// Size of the source file.
    pub raw_len: usize,
}

/// Counts cache hits and misses, and steps done, across threads.
struct Progress<'a> {
    hits: AtomicUsize,
    misses: AtomicUsize,
    done: AtomicUsize,
    report: &'a (dyn Fn(usize, usize) + Sync),
}

impl Progress<'_> {
    fn hit(&self, hit: bool) {
        if hit { &self.hits } else { &self.misses }.fetch_add(1, Ordering::Relaxed);
    }

    fn step(&self, total: usize) {
        (self.report)(self.done.fetch_add(1, Ordering::Relaxed) + 1, total);
    }
}

/// The kinds of asset, tried in order: the first that accepts a file handles it.
fn kinds(config: &Config, cache: &Cache) -> Vec<Box<dyn AssetKind>> {
    vec![
        Box::new(css::Css::new(config, cache)),
        Box::new(js::Js::new(config)),
        Box::new(images::Images::new(&config.images)),
        Box::new(Other),
    ]
}

/// Runs the pipeline over `config.static_dir` (relative to `root`).
pub fn run(
    config: &Config,
    root: &Path,
    cache: &Cache,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Output, Error> {
    let started = Instant::now();
    let mut inputs = discover(&root.join(&config.static_dir))?;
    if inputs.iter().any(|i| images::accepts(&i.logical)) {
        inputs.push(Input {
            logical: manifest::OPTIMIZER.to_string(),
            file: manifest::optimizer_path(),
            builtin: Some(manifest::OPTIMIZER_SOURCE),
            made: None,
            map: None,
        });
    }
    if inputs.iter().any(|i| js::is_script(&i.logical)) {
        inputs.push(Input {
            logical: bundle::SPLITTER.to_string(),
            file: bundle::splitter_path(),
            builtin: Some(bundle::SPLITTER_SOURCE),
            made: None,
            map: None,
        });
    }
    let with_critical = critical::wanted(config, root);
    if with_critical {
        inputs.push(Input {
            logical: critical::LOADER.to_string(),
            file: critical::loader_path(),
            builtin: Some(critical::LOADER_SOURCE),
            made: None,
            map: None,
        });
    }
    let progress = Progress {
        hits: AtomicUsize::new(0),
        misses: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        report: progress,
    };
    // Bundling replaces the ES modules with chunks, which the JavaScript kind then
    // minifies like any script.
    let mut chunks: HashMap<String, ChunkInfo> = HashMap::new();
    let mut watched = Vec::new();
    let mut notes = Vec::new();
    // A bundling error does not stop the other inputs: every error is reported at once.
    let (bundled, bundle_error) = match bundle::bundle(&inputs, config, root, cache) {
        Ok(b) => (b, None),
        Err(e) => (None, Some(e)),
    };
    if let Some(bundled) = bundled {
        progress.hit(bundled.cache_hit);
        inputs.retain(|i| !bundled.consumed.contains(&i.logical));
        for c in bundled.chunks {
            chunks.insert(c.logical.clone(), c.info);
            inputs.push(Input {
                logical: c.logical,
                file: c.source,
                builtin: None,
                made: Some(Arc::from(c.code.into_bytes())),
                map: c.map.map(Arc::from),
            });
        }
        inputs.sort_by(|a, b| a.logical.cmp(&b.logical));
        watched = bundled.watched;
        // The modules bundled into chunks are nobody's source file: watched by name.
        let static_dir = root.join(&config.static_dir);
        watched.extend(bundled.consumed.iter().map(|l| static_dir.join(l)));
        notes = bundled.notes;
    }
    // Progress counts one step per input, then one per finished asset; until the inputs
    // are transformed, assume one asset each.
    let estimate = inputs.len() * 2;
    let units = transform_all(inputs, &kinds(config, cache), cache, &progress, estimate);
    let units = match (units, bundle_error) {
        (Ok(units), None) => units,
        (Ok(_), Some(e)) | (Err(e), None) => return Err(e),
        (Err(a), Some(b)) => {
            let mut all = Vec::new();
            for e in [a, b] {
                match e {
                    Error::Multiple(v) => all.extend(v),
                    e => all.push(e),
                }
            }
            return Err(Error::collect(all).expect_err("two errors"));
        }
    };
    let graph = resolve::resolve(&units, &config.url_prefix)?;
    let mut finals = finish::finish(&units, &graph.links)?;
    let (mut units, mut imports) = (units, graph.imports);
    let derived = manifest::derive(&units, &finals, &config.url_prefix);
    if !derived.is_empty() {
        for (unit, fin) in derived {
            units.push(unit);
            finals.push(fin);
            imports.push(Vec::new());
        }
        // A file of the application's own may not take a derived file's name.
        unique_names(&units)?;
    }
    let mut warnings = notes;
    if with_critical {
        let targets = css::Css::new(config, cache).targets()?.0;
        let outcome = critical::derive(&units, &finals, config, root, cache, targets)?;
        if let Some(hit) = outcome.cache_hit {
            progress.hit(hit);
        }
        warnings.extend(outcome.warnings);
        if !outcome.derived.is_empty() {
            for (unit, fin) in outcome.derived {
                units.push(unit);
                finals.push(fin);
                imports.push(Vec::new());
            }
            unique_names(&units)?;
        }
    }
    let mut assets = precompress_all(units, finals, imports, config, cache, &progress);
    assets.sort_by(|a, b| a.logical.cmp(&b.logical));
    for a in &mut assets {
        a.chunk = chunks.get(&a.logical).cloned();
    }
    Ok(Output {
        assets,
        cache_hits: progress.hits.load(Ordering::Relaxed),
        cache_misses: progress.misses.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        warnings,
        watched,
        budgets: Vec::new(),
    })
}

/// Reads and transforms every input in parallel, each transform cached by the input's
/// bytes and its kind's options; then checks that no two pieces share a logical name.
fn transform_all(
    inputs: Vec<Input>,
    kinds: &[Box<dyn AssetKind>],
    cache: &Cache,
    progress: &Progress,
    steps: usize,
) -> Result<Vec<Unit>, Error> {
    let results: Vec<Result<Vec<Unit>, Error>> = inputs
        .into_par_iter()
        .map(|input| {
            let raw = input.read()?;
            let kind = kinds
                .iter()
                .find(|k| k.accepts(&input.logical))
                .expect("the last kind accepts every file");
            let transformed = match kind.options()? {
                None => kind.transform(&input, &raw)?,
                Some(options) => {
                    let key = Cache::key(
                        kind.name(),
                        &[
                            options.as_bytes(),
                            input.logical.as_bytes(),
                            &raw[..],
                            input.map.as_deref().unwrap_or("").as_bytes(),
                            &kind.dependencies(&input, &raw),
                        ],
                    );
                    let cached = cache.get(&key).and_then(|b| Transformed::decode(&b));
                    progress.hit(cached.is_some());
                    match cached {
                        Some(t) => t,
                        None => {
                            let t = kind.transform(&input, &raw)?;
                            cache.put(&key, &t.encode());
                            t
                        }
                    }
                }
            };
            progress.step(steps);
            Ok(transformed
                .pieces
                .into_iter()
                .map(|piece| Unit {
                    piece,
                    file: input.file.clone(),
                    raw_len: raw.len(),
                })
                .collect())
        })
        .collect();
    let mut errors = Vec::new();
    let mut units = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(u) => units.extend(u),
            Err(e) => errors.push(e),
        }
    }
    Error::collect(errors)?;
    units.sort_by(|a, b| a.piece.logical.cmp(&b.piece.logical));
    unique_names(&units)?;
    Ok(units)
}

/// Every piece and generated source map must have a logical name of its own.
fn unique_names(units: &[Unit]) -> Result<(), Error> {
    let mut seen: HashMap<String, &Path> = HashMap::new();
    let mut errors = Vec::new();
    for unit in units {
        let piece = &unit.piece;
        let map = piece.map.as_ref().map(|_| format!("{}.map", piece.logical));
        for logical in std::iter::once(piece.logical.clone()).chain(map) {
            if let Some(first) = seen.insert(logical.clone(), &unit.file) {
                errors.push(Error::DuplicateAsset {
                    path: first.to_path_buf(),
                    other: unit.file.clone(),
                    logical,
                });
            }
        }
    }
    Error::collect(errors)
}

/// Hashes, precompresses (in parallel, cached by the bytes) and describes every finished
/// piece and source map.
fn precompress_all(
    units: Vec<Unit>,
    finals: Vec<Final>,
    imports: Vec<Vec<String>>,
    config: &Config,
    cache: &Cache,
    progress: &Progress,
) -> Vec<Built> {
    let mut jobs = Vec::with_capacity(finals.len());
    for ((mut fin, unit), imports) in finals.into_iter().zip(units).zip(imports) {
        if let Some(map) = fin.map.take() {
            jobs.push(Job {
                raw_len: map.bytes.len(),
                fin: *map,
                source: unit.file.clone(),
                module: false,
                imports: Vec::new(),
                image: None,
                critical: None,
            });
        }
        jobs.push(Job {
            fin,
            source: unit.file,
            raw_len: unit.raw_len,
            module: unit.piece.module,
            imports,
            image: unit.piece.image,
            critical: unit.piece.critical,
        });
    }
    let steps = progress.done.load(Ordering::Relaxed) + jobs.len();
    jobs.into_par_iter()
        .map(|job| {
            let Job {
                fin,
                source,
                raw_len,
                module,
                imports,
                image,
                critical,
            } = job;
            let content_type = mime::content_type(&fin.logical);
            let sha256 = hash::sha256_hex(&fin.bytes);
            let variants = if config.precompress
                && mime::is_compressible(content_type)
                && !fin.bytes.is_empty()
            {
                let quality = match config.quality {
                    Quality::Best => "best",
                    Quality::Fast => "fast",
                };
                let key = Cache::key("compress", &[quality.as_bytes(), sha256.as_bytes()]);
                match cache.get(&key).and_then(|b| decode_variants(&b)) {
                    Some(v) => {
                        progress.hit(true);
                        v
                    }
                    None => {
                        progress.hit(false);
                        let v = compress::all(&fin.bytes, config.quality);
                        cache.put(&key, &encode_variants(&v));
                        v
                    }
                }
            } else {
                Variants::default()
            };
            progress.step(steps);
            Built {
                raw_len,
                integrity: hash::integrity(&fin.bytes),
                hashed: fin.hashed,
                source,
                content_type,
                is_js: module,
                logical: fin.logical,
                identity: fin.bytes,
                variants,
                sha256,
                imports,
                image,
                critical,
                chunk: None,
            }
        })
        .collect()
}

/// One asset to precompress.
struct Job {
    fin: Final,
    source: PathBuf,
    raw_len: usize,
    module: bool,
    imports: Vec<String>,
    image: Option<ImageInfo>,
    critical: Option<CriticalInfo>,
}

/// Cache format of the compressed variants: three length-prefixed optional blobs.
fn encode_variants(v: &Variants) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [&v.brotli, &v.gzip, &v.zstd] {
        match part {
            Some(b) => {
                out.extend_from_slice(&(b.len() as u64 + 1).to_le_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&0u64.to_le_bytes()),
        }
    }
    out
}

fn decode_variants(mut b: &[u8]) -> Option<Variants> {
    let mut parts = Vec::with_capacity(3);
    for _ in 0..3 {
        let n = u64::from_le_bytes(b.get(..8)?.try_into().ok()?) as usize;
        b = &b[8..];
        if n == 0 {
            parts.push(None);
        } else {
            parts.push(Some(b.get(..n - 1)?.to_vec()));
            b = &b[n - 1..];
        }
    }
    if !b.is_empty() {
        return None;
    }
    let zstd = parts.pop()?;
    let gzip = parts.pop()?;
    let brotli = parts.pop()?;
    Some(Variants { brotli, gzip, zstd })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_encoding_round_trips() {
        let v = Variants {
            brotli: Some(vec![1, 2, 3]),
            gzip: None,
            zstd: Some(vec![]),
        };
        assert_eq!(decode_variants(&encode_variants(&v)), Some(v));
        assert_eq!(decode_variants(&[1, 2]), None);
    }
}
