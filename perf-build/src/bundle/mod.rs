//! Bundling and code splitting of the application's ES modules, with rolldown (Vite's
//! Rust bundler) as the engine: scope hoisting, live bindings, cycles and tree shaking
//! are its job. Ours is choosing the entries, resolving our URLs and npm packages, naming
//! the chunks so that they never depend on each other's hashes, reporting errors at the
//! importing file's line and column, and caching the result.
//!
//! - **Entries** keep their logical names (`js/app.js`): every module that no other
//!   module imports, every script a template names, each module of the features folder
//!   (`features/chat.js`), and the ones `[package.metadata.perf.bundle] entries` lists.
//! - A module reached only through `import("…")` with a literal specifier is a split
//!   point: its chunk keeps the module's own name too, so `CodeSplitter.loadModule` and
//!   the import map know it by the name the source gives it.
//! - Modules shared by two or more entries go into shared chunks under `_perf/chunks/`,
//!   one per set of entries that shares them; one smaller than `min-chunk-size` is merged
//!   with another rather than costing a request of its own.
//! - Chunks import each other by logical URL, which the import map resolves: a changed
//!   module changes the URL of the chunk that holds it and of no other chunk.
//! - Bare specifiers (`import "d3"`) resolve from `node_modules` as Node and Vite do
//!   (`exports` with the `browser`/`import` conditions, then `browser`, `module`, `main`).
//!
//! Classic scripts (no `import`/`export`) are not modules: they are left as they are.
//! The result is cached by the bytes of every module and of every file read from
//! `node_modules`, so an unchanged build does not bundle again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use rayon::prelude::*;
use rolldown::{
    Bundler, BundlerOptions, ChunkFilenamesOutputOption, CodeSplittingMode, InputItem,
    ManualCodeSplittingOptions, MatchGroup, MatchGroupName, OutputFormat, Platform, SourceMapType,
};
use rolldown_common::{Output, RollupPreRenderedChunk};
use rolldown_error::{BuildDiagnostic, DiagnosableArcstr, DiagnosableResolveError, EventKind};
use rolldown_plugin::{
    HookLoadArgs, HookLoadOutput, HookLoadReturn, HookResolveIdArgs, HookResolveIdOutput,
    HookResolveIdReturn, HookUsage, Plugin, PluginContext, SharedLoadPluginContext,
};

use crate::cache::Cache;
use crate::config::Config;
use crate::discover::Input;
use crate::refs::{self, Lang, Target};
use crate::{Error, check, js};

mod npm;

/// Logical name of the built-in CodeSplitter module.
pub const SPLITTER: &str = "_perf/code-splitter.js";

/// The CodeSplitter module's source, shipped with perf-build.
pub const SPLITTER_SOURCE: &[u8] = include_bytes!("../../assets/code-splitter.js");

/// Where the CodeSplitter source lives (for messages and source maps).
pub fn splitter_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/code-splitter.js"
    ))
}

/// The CodeSplitter's source with the URL prefix written in (for a copy bundled into
/// another chunk, which cannot tell the prefix from its own URL).
fn splitter_source(url_prefix: &str) -> Arc<str> {
    let source = String::from_utf8_lossy(SPLITTER_SOURCE);
    let prefix = serde_json::to_string(url_prefix).expect("a string serialises");
    Arc::from(source.replace("\"__PERF_URL_PREFIX__\"", &prefix.replace("</", "<\\/")))
}

/// Folder of the chunks that are not a module of the application's own: shared code,
/// npm code loaded on demand.
pub const CHUNKS_DIR: &str = "_perf/chunks";

/// Bumped whenever the output for the same input changes.
const BUNDLE_VERSION: u32 = 7;

/// What a chunk is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkKind {
    /// A page's entry module.
    Entry,
    /// A named feature, loaded with `CodeSplitter.loadFeature(name)`.
    Feature(String),
    /// A module loaded on demand through `import("…")`.
    Dynamic,
    /// Modules shared by several entries, or npm code of a split point.
    Shared,
}

/// A chunk's description, for the manifest and the size table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInfo {
    /// What the chunk is.
    pub kind: ChunkKind,
    /// The modules in it: logical paths of the application's own, `node_modules/…` paths
    /// for npm code.
    pub modules: Vec<String>,
}

/// One chunk rolldown wrote.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// `js/app.js`, `_perf/chunks/util.js`.
    pub logical: String,
    /// Unminified code.
    pub code: String,
    /// The chunk's source map (JSON), mapping back to the original files.
    pub map: Option<String>,
    /// The file the chunk is named after (its entry module, or its first module).
    pub source: PathBuf,
    /// What it is and what it holds.
    pub info: ChunkInfo,
}

/// The result of bundling.
#[derive(Debug, Default)]
pub struct Bundled {
    /// Every chunk, sorted by logical name.
    pub chunks: Vec<Chunk>,
    /// Logical paths of the modules the chunks replace (not emitted on their own).
    pub consumed: BTreeSet<String>,
    /// Files outside the static dir that the bundle read (npm packages and their
    /// `package.json`): a change to one must run the build again.
    pub watched: Vec<PathBuf>,
    /// Whether the bundle came from the cache.
    pub cache_hit: bool,
    /// What the build should say (an `npm ci` it ran).
    pub notes: Vec<String>,
}

/// One module of the application, as the quick scan saw it.
struct Scanned {
    input: Input,
    source: Arc<str>,
    /// `(specifier, byte offset of the string literal)` of static imports and re-exports.
    imports: Vec<(String, usize)>,
    /// The same, for `import("literal")`.
    dynamic: Vec<(String, usize)>,
}

/// Bundles the ES modules among `inputs`; `None` when bundling is off or there is no
/// module to bundle.
pub fn bundle(
    inputs: &[Input],
    config: &Config,
    root: &Path,
    cache: &Cache,
) -> Result<Option<Bundled>, Error> {
    if !config.bundle.enabled {
        return Ok(None);
    }
    let modules = scan(inputs)?;
    if modules.is_empty() {
        return Ok(None);
    }
    let others: BTreeSet<String> = inputs
        .iter()
        .map(|i| i.logical.clone())
        .filter(|l| !modules.contains_key(l))
        .collect();
    let static_dir = absolute(&root.join(&config.static_dir));
    let installed = if config.bundle.npm_install {
        npm::ensure_installed(root)?
    } else {
        npm::Installed::default()
    };
    let entries = entries(&modules, config, root)?;

    // The cache key: options, then every module's name and bytes. What the bundle read
    // from node_modules is checked against the cached entry's list.
    let options = format!(
        "v{BUNDLE_VERSION} maps={} strict={} features={} min={} entries={:?} prefix={}",
        config.source_maps,
        config.bundle.strict_execution_order,
        config.bundle.features_dir,
        config.bundle.min_chunk_size,
        entries,
        config.url_prefix
    );
    let mut parts: Vec<&[u8]> = vec![options.as_bytes(), SPLITTER_SOURCE];
    for (logical, m) in &modules {
        parts.push(logical.as_bytes());
        parts.push(m.source.as_bytes());
    }
    let key = Cache::key("bundle", &parts);
    if let Some(mut hit) = cache.get(&key).and_then(|b| decode(&b))
        && hit.watched_unchanged()
    {
        hit.bundled.cache_hit = true;
        hit.bundled.watched.extend(installed.watched);
        hit.bundled.notes.extend(installed.ran);
        return Ok(Some(hit.bundled));
    }

    let mut bundled = run_rolldown(&modules, others, &entries, config, &static_dir)?;
    cache.put(&key, &encode(&bundled));
    bundled.watched.extend(installed.watched);
    bundled.notes.extend(installed.ran);
    Ok(Some(bundled))
}

/// Parses every script with oxc (quickly, without building anything) to learn which are
/// ES modules and what they import.
fn scan(inputs: &[Input]) -> Result<BTreeMap<String, Scanned>, Error> {
    let found: Vec<Result<Option<Scanned>, Error>> = inputs
        .par_iter()
        .filter(|i| i.builtin.is_none() && js::is_script(&i.logical))
        .map(|input| {
            let raw = input.read()?;
            let Ok(text) = std::str::from_utf8(&raw) else {
                // Not UTF-8: the JavaScript kind reports it with its position.
                return Ok(None);
            };
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            Ok(scan_one(text).map(|(imports, dynamic)| Scanned {
                input: input.clone(),
                source: Arc::from(text),
                imports,
                dynamic,
            }))
        })
        .collect();
    let mut modules = BTreeMap::new();
    let mut errors = Vec::new();
    for f in found {
        match f {
            Ok(Some(m)) => {
                modules.insert(m.input.logical.clone(), m);
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    Error::collect(errors)?;
    Ok(modules)
}

type Specifiers = Vec<(String, usize)>;

/// The static and dynamic import specifiers of `text`, if it parses as an ES module with
/// `import` or `export` in it; `None` for a classic script, or for a file with a syntax
/// error (the JavaScript kind reports that one, with its position).
fn scan_one(text: &str) -> Option<(Specifiers, Specifiers)> {
    let allocator = oxc_allocator::Allocator::default();
    let parsed = oxc_parser::Parser::new(&allocator, text, oxc_span::SourceType::mjs()).parse();
    if parsed.panicked || !parsed.diagnostics.is_empty() {
        return None;
    }
    let record = &parsed.module_record;
    if !record.has_module_syntax {
        return None;
    }
    let mut imports: Specifiers = record
        .requested_modules
        .iter()
        .flat_map(|(name, uses)| {
            uses.iter()
                .map(move |u| (name.as_str().to_string(), u.span.start as usize))
        })
        .collect();
    imports.sort_by_key(|(_, at)| *at);
    let mut dynamic = Vec::new();
    for d in &record.dynamic_imports {
        let literal = &text[d.module_request.start as usize..d.module_request.end as usize];
        let quoted = literal.len() >= 2
            && matches!(literal.as_bytes()[0], b'"' | b'\'' | b'`')
            && literal.as_bytes()[0] == literal.as_bytes()[literal.len() - 1];
        if quoted && !literal.contains("${") {
            dynamic.push((
                literal[1..literal.len() - 1].to_string(),
                d.module_request.start as usize,
            ));
        }
    }
    Some((imports, dynamic))
}

/// The entries, sorted: modules no other module imports, scripts the templates name,
/// the features, and the configured ones.
fn entries(
    modules: &BTreeMap<String, Scanned>,
    config: &Config,
    root: &Path,
) -> Result<Vec<String>, Error> {
    let mut imported = BTreeSet::new();
    for (from, m) in modules {
        for (spec, _) in m.imports.iter().chain(&m.dynamic) {
            if let Target::Local { logical, .. } =
                refs::classify(from, spec, &config.url_prefix, Lang::Js)
            {
                imported.insert(logical);
            }
        }
    }
    let features = format!("{}/", config.bundle.features_dir);
    let mut entries: BTreeSet<String> = modules
        .keys()
        .filter(|l| !imported.contains(*l) || l.starts_with(&features))
        .cloned()
        .collect();
    let templates = root.join(&config.templates_dir);
    if templates.is_dir() {
        for name in check::named_assets(&templates)? {
            if modules.contains_key(&name) {
                entries.insert(name);
            }
        }
    }
    for name in &config.bundle.entries {
        let name = name.trim_start_matches('/');
        if !modules.contains_key(name) {
            return Err(Error::Config {
                source_of_value: "Cargo.toml [package.metadata.perf.bundle] entries".into(),
                message: format!(
                    "`{name}` is not an ES module under the static dir{}",
                    refs::closest(name, modules.keys().map(String::as_str))
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default()
                ),
            });
        }
        entries.insert(name.to_string());
    }
    // A module no entry reaches (modules that only import each other, none named by a
    // template) becomes an entry too, the first by name of each such group: every module
    // ships.
    loop {
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        let mut stack: Vec<&str> = entries.iter().map(String::as_str).collect();
        while let Some(from) = stack.pop() {
            if !reached.insert(from) {
                continue;
            }
            let Some(m) = modules.get(from) else { continue };
            for (spec, _) in m.imports.iter().chain(&m.dynamic) {
                if let Target::Local { logical, .. } =
                    refs::classify(from, spec, &config.url_prefix, Lang::Js)
                    && let Some((key, _)) = modules.get_key_value(&logical)
                {
                    stack.push(key.as_str());
                }
            }
        }
        match modules.keys().find(|k| !reached.contains(k.as_str())) {
            Some(unreached) => {
                entries.insert(unreached.clone());
            }
            None => break,
        }
    }
    Ok(entries.into_iter().collect())
}

/// An absolute path without `.` or `..`, without resolving links (rolldown's module ids
/// are built the same way).
fn absolute(path: &Path) -> PathBuf {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Resolves our own modules for rolldown: relative specifiers and URLs under the URL
/// prefix name files of the static dir, read from the bytes already in memory, and
/// always ES modules (a browser loads them as such, whatever `"type"` the package.json
/// above says).
#[derive(Debug)]
struct AppModules {
    /// Absolute path → logical path and source.
    by_path: HashMap<String, (String, Arc<str>)>,
    /// Logical path → absolute path.
    by_logical: HashMap<String, String>,
    /// Logical paths of the modules rolldown loaded: each is in a chunk (or shaken out
    /// whole, as a module of re-exports is), never shipped on its own.
    loaded: std::sync::Mutex<BTreeSet<String>>,
    /// The CodeSplitter, bundled into the chunks of the modules that import it (so it
    /// costs no request of its own): its id and source, the URL prefix written in. The
    /// built-in file `_perf/code-splitter.js` stays too, for inline scripts; both copies
    /// share one instance per page.
    splitter: (String, Arc<str>),
    /// Every other input (classic scripts, built-in modules such as the CodeSplitter):
    /// imported as they are, by absolute URL, through the import map.
    others: BTreeSet<String>,
    url_prefix: String,
}

impl Plugin for AppModules {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "perf-build:app-modules".into()
    }

    async fn resolve_id(
        &self,
        _ctx: &PluginContext,
        args: &HookResolveIdArgs<'_>,
    ) -> HookResolveIdReturn {
        let from = match args.importer {
            None => {
                // An entry: given as its absolute path.
                return Ok(self.by_path.contains_key(args.specifier).then(|| {
                    HookResolveIdOutput {
                        id: args.specifier.into(),
                        ..Default::default()
                    }
                }));
            }
            Some(importer) => match self.by_path.get(importer) {
                Some((logical, _)) => logical,
                None => return Ok(None),
            },
        };
        if let Target::Local { logical, .. } =
            refs::classify(from, args.specifier, &self.url_prefix, Lang::Js)
        {
            if logical == SPLITTER {
                return Ok(Some(HookResolveIdOutput {
                    id: self.splitter.0.as_str().into(),
                    ..Default::default()
                }));
            }
            if let Some(path) = self.by_logical.get(&logical) {
                return Ok(Some(HookResolveIdOutput {
                    id: path.as_str().into(),
                    ..Default::default()
                }));
            }
            if self.others.contains(&logical) {
                return Ok(Some(HookResolveIdOutput {
                    id: format!("{}/{}", self.url_prefix, refs::url_encode(&logical)).into(),
                    // Kept as written: an absolute URL, never made relative to the chunk.
                    external: Some(rolldown_common::ResolvedExternal::Absolute),
                    ..Default::default()
                }));
            }
        }
        Ok(None)
    }

    async fn load(&self, _ctx: SharedLoadPluginContext, args: &HookLoadArgs<'_>) -> HookLoadReturn {
        if args.id == self.splitter.0 {
            return Ok(Some(HookLoadOutput {
                code: self.splitter.1.as_ref().into(),
                ..Default::default()
            }));
        }
        Ok(self.by_path.get(args.id).map(|(logical, source)| {
            self.loaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(logical.clone());
            HookLoadOutput {
                code: source.as_ref().into(),
                ..Default::default()
            }
        }))
    }

    fn register_hook_usage(&self) -> HookUsage {
        HookUsage::ResolveId | HookUsage::Load
    }
}

type NameFuture = Pin<Box<dyn std::future::Future<Output = anyhow::Result<String>> + Send>>;

fn run_rolldown(
    modules: &BTreeMap<String, Scanned>,
    others: BTreeSet<String>,
    entries: &[String],
    config: &Config,
    static_dir: &Path,
) -> Result<Bundled, Error> {
    let path_of = |logical: &str| static_dir.join(logical).to_string_lossy().into_owned();
    let mut by_path = HashMap::new();
    let mut by_logical = HashMap::new();
    for (logical, m) in modules {
        let path = path_of(logical);
        by_path.insert(path.clone(), (logical.clone(), m.source.clone()));
        by_logical.insert(logical.clone(), path);
    }
    let names: Arc<HashMap<String, String>> = Arc::new(
        by_path
            .iter()
            .map(|(p, (l, _))| (p.clone(), l.clone()))
            .collect(),
    );
    let splitter_id = path_of(SPLITTER);
    let plugin = Arc::new(AppModules {
        by_path,
        by_logical,
        splitter: (splitter_id.clone(), splitter_source(&config.url_prefix)),
        loaded: Default::default(),
        others,
        url_prefix: config.url_prefix.clone(),
    });

    // Entries and split points keep their module's name; other chunks go to the
    // chunks folder, named after their first module.
    let entry_names = names.clone();
    let entry_filenames = ChunkFilenamesOutputOption::Fn(Arc::new(
        move |chunk: &RollupPreRenderedChunk| -> NameFuture {
            let name = chunk_name(&entry_names, chunk);
            Box::pin(async move { Ok(name) })
        },
    ));
    let chunk_names = names.clone();
    let chunk_filenames = ChunkFilenamesOutputOption::Fn(Arc::new(
        move |chunk: &RollupPreRenderedChunk| -> NameFuture {
            let name = chunk_name(&chunk_names, chunk);
            Box::pin(async move { Ok(name) })
        },
    ));
    let shared = MatchGroup {
        name: MatchGroupName::Static("shared".into()),
        min_share_count: Some(2),
        entries_aware: Some(true),
        entries_aware_merge_threshold: Some(config.bundle.min_chunk_size as f64),
        ..Default::default()
    };
    let options = BundlerOptions {
        input: Some(
            entries
                .iter()
                .map(|e| InputItem {
                    name: Some(e.clone()),
                    import: path_of(e),
                })
                .collect(),
        ),
        cwd: Some(static_dir.to_path_buf()),
        // Nothing is written; the folder places the chunks for their source maps' paths.
        dir: Some(static_dir.to_string_lossy().into_owned()),
        platform: Some(Platform::Browser),
        strict_execution_order: Some(config.bundle.strict_execution_order),
        format: Some(OutputFormat::Esm),
        sourcemap: config.source_maps.then_some(SourceMapType::Hidden),
        entry_filenames: Some(entry_filenames),
        chunk_filenames: Some(chunk_filenames),
        code_splitting: Some(CodeSplittingMode::Advanced(ManualCodeSplittingOptions {
            groups: Some(vec![shared]),
            ..Default::default()
        })),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::io(static_dir, e))?;
    let result = runtime.block_on(async {
        let plugins: Vec<rolldown_plugin::__inner::SharedPluginable> = vec![plugin.clone()];
        let mut bundler = Bundler::with_plugins(options, plugins)?;
        let out = bundler.generate().await;
        let _ = bundler.close().await;
        out
    });
    let output = match result {
        Ok(o) => o,
        Err(errors) => {
            return Err(Error::collect(
                errors
                    .into_vec()
                    .into_iter()
                    .map(|d| to_error(d, modules, static_dir))
                    .collect(),
            )
            .expect_err("rolldown reported at least one error"));
        }
    };

    // rolldown, like Rollup, leaves a bare import it cannot resolve as an external import
    // with a warning: in a browser that is an error at run time, so it is one here.
    let unresolved: Vec<Error> = output
        .warnings
        .into_iter()
        .filter(|w| matches!(w.kind(), EventKind::UnresolvedImport))
        .map(|w| to_error(w, modules, static_dir))
        .collect();
    Error::collect(unresolved)?;

    let mut bundled = Bundled::default();
    let mut watched = BTreeSet::new();
    for asset in output.assets {
        let Output::Chunk(chunk) = asset else {
            continue;
        };
        let mut members = Vec::new();
        for id in &chunk.module_ids {
            let id = id.as_str();
            if let Some(logical) = names.get(id) {
                bundled.consumed.insert(logical.clone());
                members.push(logical.clone());
            } else if id.starts_with('\0') {
                // rolldown's own runtime helpers.
                continue;
            } else if id == splitter_id {
                members.push(SPLITTER.to_string());
            } else {
                members.push(display_external(id, static_dir));
                watched.insert(PathBuf::from(id));
                if let Some(pkg) = package_json_of(Path::new(id)) {
                    watched.insert(pkg);
                }
            }
        }
        let facade = chunk
            .facade_module_id
            .as_ref()
            .and_then(|f| names.get(f.as_str()))
            .cloned();
        let features = format!("{}/", config.bundle.features_dir);
        let kind = match &facade {
            Some(l) if chunk.is_entry && l.starts_with(&features) => ChunkKind::Feature(
                l[features.len()..]
                    .trim_end_matches(".mjs")
                    .trim_end_matches(".js")
                    .to_string(),
            ),
            Some(_) if chunk.is_entry => ChunkKind::Entry,
            Some(_) if chunk.is_dynamic_entry => ChunkKind::Dynamic,
            _ => ChunkKind::Shared,
        };
        let source = facade
            .as_deref()
            .or_else(|| {
                members
                    .iter()
                    .find(|m| modules.contains_key(m.as_str()))
                    .map(String::as_str)
            })
            .map(|l| modules[l].input.file.clone())
            .unwrap_or_else(|| {
                chunk
                    .module_ids
                    .iter()
                    .find(|m| !m.as_str().starts_with('\0') && m.as_str() != splitter_id)
                    .map(|m| PathBuf::from(m.as_str()))
                    .unwrap_or_else(|| static_dir.to_path_buf())
            });
        let map = chunk.map.as_ref().map(|m| m.to_json_string());
        bundled.chunks.push(Chunk {
            logical: chunk.filename.to_string(),
            code: chunk.code.clone(),
            map,
            source,
            info: ChunkInfo {
                kind,
                modules: members,
            },
        });
    }
    bundled.chunks.sort_by(|a, b| a.logical.cmp(&b.logical));
    bundled.watched = watched.into_iter().collect();
    bundled.consumed.extend(
        plugin
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned(),
    );
    Ok(bundled)
}

/// The logical name of a chunk: its facade module's own name for an entry or split
/// point of ours; `_perf/chunks/<name>.js` otherwise.
fn chunk_name(names: &HashMap<String, String>, chunk: &RollupPreRenderedChunk) -> String {
    if (chunk.is_entry || chunk.is_dynamic_entry)
        && let Some(logical) = chunk
            .facade_module_id
            .as_ref()
            .and_then(|f| names.get(f.as_str()))
    {
        return logical.clone();
    }
    // A shared chunk is named after its first module of the application's own (or of
    // npm), which says more than the group's name.
    let first = chunk
        .module_ids
        .iter()
        .map(|m| m.as_str())
        .find(|m| names.contains_key(*m))
        .or_else(|| {
            chunk
                .module_ids
                .iter()
                .map(|m| m.as_str())
                .find(|m| !m.starts_with('\0'))
        });
    let base = match first {
        Some(m) if names.contains_key(m) => names[m].clone(),
        Some(m) if m.ends_with(SPLITTER) => "code-splitter".into(),
        Some(m) => npm_package_name(
            display_external(m, Path::new("/")).trim_start_matches("node_modules/"),
        ),
        None => chunk.name.to_string(),
    };
    let stem: String = base
        .rsplit('/')
        .next()
        .unwrap_or("chunk")
        .trim_end_matches(".mjs")
        .trim_end_matches(".js")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stem = if stem.is_empty() {
        "chunk".into()
    } else {
        stem
    };
    format!("{CHUNKS_DIR}/{stem}.js")
}

/// `node_modules/d3-array/src/max.js` for a file of an npm package.
/// A file linked into `node_modules` (a `file:` dependency) resolves to where it lives:
/// shown relative to the static dir, so the manifest does not depend on the checkout.
fn display_external(id: &str, static_dir: &Path) -> String {
    if let Some(i) = id.rfind("/node_modules/") {
        return id[i + 1..].to_string();
    }
    let path = Path::new(id);
    let common = path
        .components()
        .zip(static_dir.components())
        .take_while(|(a, b)| a == b)
        .count();
    if common <= 1 {
        return id.to_string();
    }
    let up = static_dir.components().count() - common;
    let rest: Vec<String> = path
        .components()
        .skip(common)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    format!("{}{}", "../".repeat(up), rest.join("/"))
}

/// The `package.json` of the package a file of `node_modules` belongs to.
fn package_json_of(file: &Path) -> Option<PathBuf> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        let pkg = d.join("package.json");
        if pkg.is_file() {
            return Some(pkg);
        }
        if d.file_name().is_some_and(|n| n == "node_modules") {
            return None;
        }
        dir = d.parent();
    }
    None
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().unwrap_or(before).chars().count() as u32 + 1;
    (line, column)
}

/// Where the nearest `package.json` above the static dir is, for the `npm install` hint.
fn package_dir(from: &Path) -> Option<PathBuf> {
    from.ancestors()
        .find(|d| d.join("package.json").is_file())
        .map(Path::to_path_buf)
}

/// Turns one of rolldown's diagnostics into our error: an unresolved import names the
/// importing file, line and column (with the `npm install` hint for a package), and
/// anything else keeps rolldown's message at its primary location.
fn to_error(
    mut d: BuildDiagnostic,
    modules: &BTreeMap<String, Scanned>,
    static_dir: &Path,
) -> Error {
    let kind = d.kind();
    if matches!(kind, EventKind::UnresolvedImport)
        && let Some(resolve) = d.downcast_mut::<DiagnosableResolveError>()
    {
        let importer = PathBuf::from(resolve.importer_id.as_str());
        let (specifier, offset) = match &resolve.importee {
            DiagnosableArcstr::Span(span) => {
                let s = &resolve.source[span.start as usize..span.end as usize];
                (
                    s.get(1..s.len().saturating_sub(1)).unwrap_or(s).to_string(),
                    span.start as usize,
                )
            }
            DiagnosableArcstr::String(s) => {
                let at = resolve.source.find(s.as_str()).unwrap_or(0);
                (s.to_string(), at.saturating_sub(1))
            }
        };
        let (line, column) = line_column(&resolve.source, offset);
        let bare = !(specifier.starts_with('.') || specifier.starts_with('/'));
        if bare {
            let package = npm_package_name(&specifier);
            let dir = package_dir(static_dir);
            return Error::MissingPackage {
                path: importer,
                line,
                column,
                specifier,
                package,
                package_dir: dir,
            };
        }
        let from = modules
            .values()
            .find(|m| static_dir.join(&m.input.logical) == importer);
        let hint = from.and_then(|m| {
            let known = modules.keys().map(|k| refs::relative(&m.input.logical, k));
            let known: Vec<String> = known.collect();
            refs::closest(&specifier, known.iter().map(String::as_str)).map(str::to_string)
        });
        return Error::MissingReference {
            path: importer,
            line,
            column,
            reference: specifier,
            hint,
        };
    }
    let opts = rolldown_error::DiagnosticOptions {
        cwd: static_dir.to_path_buf(),
    };
    let message = d.to_message_with(&opts);
    let diagnostic = d.to_diagnostic_with(&opts);
    match diagnostic.get_primary_location() {
        Some((file, line, column, _)) => Error::Bundle {
            path: static_dir.join(file),
            line: line as u32,
            column: column as u32 + 1,
            message,
        },
        None => Error::Bundle {
            path: static_dir.to_path_buf(),
            line: 0,
            column: 0,
            message,
        },
    }
}

/// `d3` for `d3/dist/d3.js`, `@scope/pkg` for `@scope/pkg/sub`.
fn npm_package_name(specifier: &str) -> String {
    let mut parts = specifier.split('/');
    match parts.next() {
        Some(scope) if scope.starts_with('@') => match parts.next() {
            Some(name) => format!("{scope}/{name}"),
            None => scope.to_string(),
        },
        Some(name) => name.to_string(),
        None => specifier.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// The cache entry: the files read from node_modules with their hashes, then the chunks.

struct Cached {
    bundled: Bundled,
    watched: Vec<(PathBuf, String)>,
}

impl Cached {
    fn watched_unchanged(&self) -> bool {
        self.watched.iter().all(|(path, sha)| {
            std::fs::read(path).is_ok_and(|b| crate::hash::sha256_hex(&b) == *sha)
        })
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    watched: Vec<(PathBuf, String)>,
    consumed: Vec<String>,
    chunks: Vec<StoredChunk>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredChunk {
    logical: String,
    code: String,
    map: Option<String>,
    source: PathBuf,
    kind: String,
    modules: Vec<String>,
}

fn encode(b: &Bundled) -> Vec<u8> {
    let stored = Stored {
        watched: b
            .watched
            .iter()
            .filter_map(|p| {
                std::fs::read(p)
                    .ok()
                    .map(|bytes| (p.clone(), crate::hash::sha256_hex(&bytes)))
            })
            .collect(),
        consumed: b.consumed.iter().cloned().collect(),
        chunks: b
            .chunks
            .iter()
            .map(|c| StoredChunk {
                logical: c.logical.clone(),
                code: c.code.clone(),
                map: c.map.clone(),
                source: c.source.clone(),
                kind: match &c.info.kind {
                    ChunkKind::Entry => "entry".into(),
                    ChunkKind::Feature(name) => format!("feature:{name}"),
                    ChunkKind::Dynamic => "dynamic".into(),
                    ChunkKind::Shared => "shared".into(),
                },
                modules: c.info.modules.clone(),
            })
            .collect(),
    };
    serde_json::to_vec(&stored).expect("a bundle serialises")
}

fn decode(bytes: &[u8]) -> Option<Cached> {
    let stored: Stored = serde_json::from_slice(bytes).ok()?;
    let chunks = stored
        .chunks
        .into_iter()
        .map(|c| {
            let kind = match c.kind.as_str() {
                "entry" => ChunkKind::Entry,
                "dynamic" => ChunkKind::Dynamic,
                "shared" => ChunkKind::Shared,
                other => ChunkKind::Feature(other.strip_prefix("feature:")?.to_string()),
            };
            Some(Chunk {
                logical: c.logical,
                code: c.code,
                map: c.map,
                source: c.source,
                info: ChunkInfo {
                    kind,
                    modules: c.modules,
                },
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Cached {
        bundled: Bundled {
            watched: stored.watched.iter().map(|(p, _)| p.clone()).collect(),
            chunks,
            consumed: stored.consumed.into_iter().collect(),
            cache_hit: true,
            notes: Vec::new(),
        },
        watched: stored.watched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_static_and_dynamic_imports_of_modules_only() {
        let (imports, dynamic) = scan_one(
            "import a from './a.js';\nexport * from \"../b.js\";\nconst m = import('./c.js');\nimport(`./d-${x}.js`);",
        )
        .unwrap();
        let names: Vec<&str> = imports.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["./a.js", "../b.js"]);
        assert_eq!(dynamic.len(), 1);
        assert_eq!(dynamic[0].0, "./c.js");
        assert!(scan_one("var x = 1; console.log(x);").is_none());
        assert!(scan_one("import { from './broken.js';").is_none());
    }

    #[test]
    fn package_names() {
        assert_eq!(npm_package_name("d3"), "d3");
        assert_eq!(npm_package_name("d3-array/src/max.js"), "d3-array");
        assert_eq!(npm_package_name("@scope/pkg/sub"), "@scope/pkg");
    }

    #[test]
    fn line_and_column_from_offset() {
        assert_eq!(line_column("ab\ncdé f", 7), (2, 4));
        assert_eq!(line_column("x", 0), (1, 1));
    }
}
