//! The pipeline: discover → transform (parallel, cached) → resolve references → hash →
//! precompress (parallel, cached). The only module that knows about rayon.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::cache::Cache;
use crate::compress::{self, Variants};
use crate::config::{Config, Quality};
use crate::discover::{Input, discover};
use crate::refs::{self, Lang, Target};
use crate::transform::Transformed;
use crate::{Error, css, hash, js, mime};

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
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Css,
    Js,
    Other,
}

fn kind(logical: &str) -> Kind {
    let ext = logical
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "css" => Kind::Css,
        "js" | "mjs" => Kind::Js,
        _ => Kind::Other,
    }
}

struct Stage1 {
    input: Input,
    kind: Kind,
    raw: Vec<u8>,
    transformed: Option<Transformed>,
}

/// Counts cache hits and misses across threads.
#[derive(Default)]
struct Counters {
    hits: AtomicUsize,
    misses: AtomicUsize,
    done: AtomicUsize,
}

impl Counters {
    fn hit(&self, hit: bool) {
        if hit { &self.hits } else { &self.misses }.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the pipeline over `config.static_dir` (relative to `root`).
pub fn run(
    config: &Config,
    root: &Path,
    cache: &Cache,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Output, Error> {
    let started = Instant::now();
    let static_dir = root.join(&config.static_dir);
    let inputs = discover(&static_dir)?;
    let counters = Counters::default();
    let total = inputs.len();
    // Resolving browserslist queries costs milliseconds: only a stylesheet that misses
    // the cache needs it, so an unchanged build never pays.
    let targets = std::sync::OnceLock::new();
    let targets = || {
        targets
            .get_or_init(|| css::targets(&config.targets).map_err(|e| e.to_string()))
            .clone()
            .map_err(|message| Error::Config {
                source_of_value: "Cargo.toml [package.metadata.perf] targets".into(),
                message,
            })
    };
    let options = format!(
        "minify={} maps={} targets={:?}",
        config.minify, config.source_maps, config.targets
    );

    // 1. Read and transform every file in parallel; each transform is cached by input.
    let results: Vec<Result<Stage1, Error>> = inputs
        .into_par_iter()
        .map(|input| {
            let raw = std::fs::read(&input.file).map_err(|e| Error::io(&input.file, e))?;
            let kind = kind(&input.logical);
            let transformed = match kind {
                Kind::Other => None,
                Kind::Css | Kind::Js => {
                    let stage = if kind == Kind::Css { "css" } else { "js" };
                    let key =
                        Cache::key(stage, &[options.as_bytes(), input.logical.as_bytes(), &raw]);
                    let cached = cache
                        .get(&key)
                        .and_then(|b| serde_json::from_slice::<Transformed>(&b).ok());
                    counters.hit(cached.is_some());
                    Some(match cached {
                        Some(t) => t,
                        None => {
                            let text = std::str::from_utf8(&raw).map_err(|e| {
                                let before = &raw[..e.valid_up_to()];
                                let line =
                                    before.iter().filter(|b| **b == b'\n').count() as u32 + 1;
                                let column = (before.len()
                                    - before
                                        .iter()
                                        .rposition(|b| *b == b'\n')
                                        .map_or(0, |p| p + 1))
                                    as u32
                                    + 1;
                                let message = "the file is not valid UTF-8".to_string();
                                if kind == Kind::Css {
                                    Error::Css {
                                        path: input.file.clone(),
                                        line,
                                        column,
                                        message,
                                    }
                                } else {
                                    Error::Js {
                                        path: input.file.clone(),
                                        line,
                                        column,
                                        message,
                                    }
                                }
                            })?;
                            let t = if kind == Kind::Css {
                                css::transform(
                                    &input.file,
                                    &input.logical,
                                    text,
                                    targets()?,
                                    config.minify,
                                    config.source_maps,
                                )?
                            } else {
                                js::transform(
                                    &input.file,
                                    &input.logical,
                                    text,
                                    config.minify,
                                    config.source_maps,
                                )?
                            };
                            cache.put(&key, &serde_json::to_vec(&t).expect("serialisable"));
                            t
                        }
                    })
                }
            };
            progress(counters.done.fetch_add(1, Ordering::Relaxed) + 1, total * 2);
            Ok(Stage1 {
                input,
                kind,
                raw,
                transformed,
            })
        })
        .collect();
    let mut errors = Vec::new();
    let mut stage1 = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(s) => stage1.push(s),
            Err(e) => errors.push(e),
        }
    }
    Error::collect(errors)?;

    // 2. Resolve references (sequential: it is a few map lookups per reference).
    let index: HashMap<&str, usize> = stage1
        .iter()
        .enumerate()
        .map(|(i, s)| (s.input.logical.as_str(), i))
        .collect();
    let mut deps: Vec<Vec<(String, usize, String)>> = vec![Vec::new(); stage1.len()];
    let mut imports: Vec<Vec<String>> = vec![Vec::new(); stage1.len()];
    let mut errors = Vec::new();
    for (i, s) in stage1.iter().enumerate() {
        let Some(t) = &s.transformed else { continue };
        let lang = if s.kind == Kind::Css {
            Lang::Css
        } else {
            Lang::Js
        };
        for r in &t.refs {
            match refs::classify(&s.input.logical, &r.specifier, &config.url_prefix, lang) {
                Target::External => {
                    if !r.placeholder.is_empty() {
                        deps[i].push((r.placeholder.clone(), usize::MAX, r.specifier.clone()));
                    }
                }
                Target::Local { logical, suffix } if index.contains_key(logical.as_str()) => {
                    let target = index[logical.as_str()];
                    if r.placeholder.is_empty() {
                        if !r.dynamic && !imports[i].contains(&logical) {
                            imports[i].push(logical);
                        }
                    } else {
                        deps[i].push((r.placeholder.clone(), target, suffix));
                    }
                }
                Target::Local { logical, .. } => {
                    let near = refs::closest(&logical, index.keys().copied());
                    errors.push(Error::MissingReference {
                        path: s.input.file.clone(),
                        line: r.line,
                        column: r.column,
                        reference: r.specifier.clone(),
                        hint: near.map(|n| refs::relative(&s.input.logical, n)),
                    });
                }
                Target::Outside => errors.push(Error::MissingReference {
                    path: s.input.file.clone(),
                    line: r.line,
                    column: r.column,
                    reference: r.specifier.clone(),
                    hint: None,
                }),
            }
        }
    }
    Error::collect(errors)?;

    // 3. Hash in dependency order: a stylesheet's bytes contain the hashed names of what
    //    it references, so those are finished first.
    let mut finals: Vec<Option<Final>> = (0..stage1.len()).map(|_| None).collect();
    let mut state = vec![Visit::New; stage1.len()];
    let mut errors = Vec::new();
    for i in 0..stage1.len() {
        if let Err(cycle) = finish(i, &stage1, &deps, &mut finals, &mut state, &mut Vec::new()) {
            errors.push(Error::ImportCycle {
                path: stage1[cycle[0]].input.file.clone(),
                cycle: cycle
                    .iter()
                    .map(|&c| stage1[c].input.logical.clone())
                    .collect(),
            });
            break;
        }
    }
    Error::collect(errors)?;

    // 4. Precompress in parallel, cached by the identity bytes.
    let mut jobs: Vec<(Final, &Stage1, Vec<String>)> = finals
        .into_iter()
        .map(|f| f.expect("every asset was finished"))
        .zip(&stage1)
        .zip(imports)
        .map(|((f, s), imp)| (f, s, imp))
        .collect();
    // Source maps become assets of their own.
    let maps: Vec<(Final, &Stage1, Vec<String>)> = jobs
        .iter_mut()
        .filter_map(|(f, s, _)| f.map.take().map(|m| (*m, *s, Vec::new())))
        .collect();
    jobs.extend(maps);
    let steps = total + jobs.len();
    let compressed = AtomicUsize::new(0);
    let assets: Vec<Built> = jobs
        .into_par_iter()
        .map(|(f, s, imports)| {
            let content_type = mime::content_type(&f.logical);
            let sha256 = hash::sha256_hex(&f.bytes);
            let variants =
                if config.precompress && mime::is_compressible(content_type) && !f.bytes.is_empty()
                {
                    let quality = match config.quality {
                        Quality::Best => "best",
                        Quality::Fast => "fast",
                    };
                    let key = Cache::key("compress", &[quality.as_bytes(), sha256.as_bytes()]);
                    match cache.get(&key).and_then(|b| decode_variants(&b)) {
                        Some(v) => {
                            counters.hit(true);
                            v
                        }
                        None => {
                            counters.hit(false);
                            let v = compress::all(&f.bytes, config.quality);
                            cache.put(&key, &encode_variants(&v));
                            v
                        }
                    }
                } else {
                    Variants::default()
                };
            progress(
                total + compressed.fetch_add(1, Ordering::Relaxed) + 1,
                steps,
            );
            // A source map has no source file of its own: its raw size is its size.
            let is_map = f.logical != s.input.logical;
            Built {
                raw_len: if is_map { f.bytes.len() } else { s.raw.len() },
                integrity: hash::integrity(&f.bytes),
                hashed: f.hashed,
                source: s.input.file.clone(),
                content_type,
                is_js: s.kind == Kind::Js && !is_map,
                logical: f.logical,
                identity: f.bytes,
                variants,
                sha256,
                imports,
            }
        })
        .collect();
    let mut assets = assets;
    assets.sort_by(|a, b| a.logical.cmp(&b.logical));
    Ok(Output {
        assets,
        cache_hits: counters.hits.load(Ordering::Relaxed),
        cache_misses: counters.misses.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

/// A hashed asset before compression.
struct Final {
    logical: String,
    hashed: String,
    bytes: Vec<u8>,
    map: Option<Box<Final>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Active,
    Done,
}

/// Finishes asset `i` after its dependencies; `Err` carries a cycle.
fn finish(
    i: usize,
    stage1: &[Stage1],
    deps: &[Vec<(String, usize, String)>],
    finals: &mut Vec<Option<Final>>,
    state: &mut Vec<Visit>,
    path: &mut Vec<usize>,
) -> Result<(), Vec<usize>> {
    match state[i] {
        Visit::Done => return Ok(()),
        Visit::Active => {
            let start = path.iter().position(|&p| p == i).unwrap_or(0);
            let mut cycle = path[start..].to_vec();
            cycle.push(i);
            return Err(cycle);
        }
        Visit::New => {}
    }
    state[i] = Visit::Active;
    path.push(i);
    for &(_, d, _) in &deps[i] {
        if d != usize::MAX {
            finish(d, stage1, deps, finals, state, path)?;
        }
    }
    path.pop();
    let s = &stage1[i];
    let logical = s.input.logical.clone();
    let fin = match &s.transformed {
        None => {
            let sha = hash::sha256_hex(&s.raw);
            Final {
                hashed: hash::hashed_name(&logical, &sha),
                logical,
                bytes: s.raw.clone(),
                map: None,
            }
        }
        Some(t) => {
            let mut code = t.code.clone();
            for (placeholder, d, suffix) in &deps[i] {
                let url = if *d == usize::MAX {
                    suffix.clone() // external: the specifier as written
                } else {
                    let target = finals[*d].as_ref().expect("dependency finished first");
                    let rel = refs::relative(&logical, &target.hashed);
                    format!(
                        "{}{suffix}",
                        refs::url_encode(rel.strip_prefix("./").unwrap_or(&rel))
                    )
                };
                code = code.replace(placeholder.as_str(), &url);
            }
            let sha = hash::sha256_hex(code.as_bytes());
            let hashed = hash::hashed_name(&logical, &sha);
            let map = t.map.as_ref().map(|m| {
                let map_hashed = format!("{hashed}.map");
                let file = map_hashed
                    .rsplit('/')
                    .next()
                    .unwrap_or(&map_hashed)
                    .to_string();
                code.push_str(&match s.kind {
                    Kind::Css => format!("\n/*# sourceMappingURL={file} */"),
                    _ => format!("\n//# sourceMappingURL={file}"),
                });
                Box::new(Final {
                    logical: format!("{logical}.map"),
                    hashed: map_hashed,
                    bytes: m.clone().into_bytes(),
                    map: None,
                })
            });
            Final {
                logical,
                hashed,
                bytes: code.into_bytes(),
                map,
            }
        }
    };
    finals[i] = Some(fin);
    state[i] = Visit::Done;
    Ok(())
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
