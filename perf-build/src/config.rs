//! Configuration: defaults, then `[package.metadata.perf]`, then `PERF_BUILD_*`
//! environment variables, then [`Builder`](crate::Builder) setters.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Error;

/// How hard the precompression works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    /// Brotli 11, gzip 9, zstd 19: the smallest files. The default for release builds.
    Best,
    /// Brotli 5, gzip 6, zstd 3: a fast edit-compile loop. The default for debug builds.
    Fast,
}

/// Every setting of the pipeline. See the README's configuration table.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Directory holding the assets, relative to the package (default `static`).
    pub static_dir: PathBuf,
    /// URL prefix the assets are served under (default `/static`).
    pub url_prefix: String,
    /// Write source maps for CSS and JS, served beside the assets (default off).
    pub source_maps: bool,
    /// Browserslist queries for CSS prefixing and lowering (default `defaults`).
    pub targets: Vec<String>,
    /// Minify CSS and JS (default on).
    pub minify: bool,
    /// Write brotli, gzip and zstd variants (default on).
    pub precompress: bool,
    /// Compression effort (default: `Best` in release builds, `Fast` otherwise).
    pub quality: Quality,
    /// Directory of askama templates whose `asset_url!` calls are checked at build time
    /// (default `templates`; ignored when missing).
    pub templates_dir: PathBuf,
    /// Where the content-addressed cache lives (default: `perf-cache` in Cargo's target
    /// directory for this profile).
    pub cache_dir: Option<PathBuf>,
    /// How images are resized and encoded (`[package.metadata.perf.images]`).
    pub images: ImageConfig,
    /// Critical CSS per template (`[package.metadata.perf.critical]`).
    pub critical: CriticalConfig,
    /// Bundling and code splitting of ES modules (`[package.metadata.perf.bundle]`).
    pub bundle: BundleConfig,
    /// What a page's or an entry's first load may weigh (`[package.metadata.perf.budgets]`).
    pub budgets: BudgetConfig,
}

/// Which compressed size a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetEncoding {
    /// Gzip bytes (the default, as most size tools quote).
    Gzip,
    /// Brotli bytes (what current browsers fetch).
    Brotli,
}

/// Asset budgets: `[package.metadata.perf.budgets]`, its `over-budget` and `compression`,
/// and one table per page template or script entry.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    /// What a target over its budget does to the build, unless its own table says
    /// (default a warning; `PERF_BUILD_BUDGETS_OVER_BUDGET=error` makes a CI build strict).
    pub over_budget: OverBudget,
    /// Which compressed size JS, CSS and SVG count (default gzip). Raster images count
    /// their own bytes.
    pub compression: BudgetEncoding,
    /// One budget per page or entry.
    pub targets: Vec<Budget>,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            over_budget: OverBudget::Warn,
            compression: BudgetEncoding::Gzip,
            targets: Vec::new(),
        }
    }
}

/// The budget of one page (a template, `index.html`) or one script entry or feature
/// (`js/journal.js`): the most compressed bytes its first load may need, per kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budget {
    /// A template relative to the templates directory, or a script's logical path.
    pub target: String,
    /// Scripts: the ones the page names and every chunk they import statically.
    pub js: Option<u64>,
    /// The full stylesheets the page names (loaded after the first paint when its
    /// critical CSS is inlined).
    pub css: Option<u64>,
    /// The page's inlined critical CSS.
    pub critical_css: Option<u64>,
    /// The images the page names: for a responsive image, its widest variant in the best
    /// format (the most a browser fetches for it).
    pub images: Option<u64>,
    /// All of the above together.
    pub total: Option<u64>,
    /// Overrides the table's `over-budget` for this target.
    pub over_budget: Option<OverBudget>,
}

/// Settings of bundling: `[package.metadata.perf.bundle]`, or `PERF_BUILD_BUNDLE_*`
/// variables.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleConfig {
    /// Bundle ES modules into chunks (default on). Off, every module ships as its own
    /// file, as written: quicker development builds, more requests.
    pub enabled: bool,
    /// Modules (logical paths) that are entries besides the ones found: each module no
    /// other module imports, each script a template names, and each feature.
    pub entries: Vec<String>,
    /// Folder (under the static dir) whose modules are named features, loaded on demand
    /// with `CodeSplitter.loadFeature(name)` (default `features`).
    pub features_dir: String,
    /// Modules shared by several entries go to shared chunks; a shared chunk smaller than
    /// this many bytes (before minification) is merged into the chunks that need it
    /// rather than costing a request of its own (default 2048).
    pub min_chunk_size: u64,
    /// Run `npm ci` in the package's folder when its `package.json` declares dependencies
    /// and `node_modules` is missing or older than `package-lock.json` (default on).
    pub npm_install: bool,
    /// Run every module's top-level code in the order its entry imports it, even inside
    /// a shared chunk that two entries import in different orders (default off, as in
    /// Rollup, esbuild and Vite: a shared chunk runs its modules in one order; on costs
    /// about 12% of a shared chunk's bytes and a small runtime chunk).
    pub strict_execution_order: bool,
}

impl Default for BundleConfig {
    fn default() -> Self {
        BundleConfig {
            enabled: true,
            entries: Vec::new(),
            features_dir: "features".into(),
            min_chunk_size: 2048,
            npm_install: true,
            strict_execution_order: false,
        }
    }
}

/// What a template whose critical CSS is over budget does to the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverBudget {
    /// A build warning (the default).
    Warn,
    /// A build error.
    Error,
}

/// Settings of critical CSS: `[package.metadata.perf.critical]`, or
/// `PERF_BUILD_CRITICAL_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct CriticalConfig {
    /// Extract critical CSS for the templates (default on).
    pub enabled: bool,
    /// The most critical CSS a template may inline, in gzip bytes (default 14 336: what
    /// fits in the first round trip of a new TCP connection with the rest of the page).
    pub budget: u64,
    /// A template over budget is a warning (default) or an error.
    pub over_budget: OverBudget,
    /// Classes (`is-open`, `.is-open`, `mood-*`), ids (`#menu`) or tag names that count as
    /// present in every template: what scripts add, or expressions write whole.
    pub safelist: Vec<String>,
}

impl Default for CriticalConfig {
    fn default() -> Self {
        CriticalConfig {
            enabled: true,
            budget: 14 * 1024,
            over_budget: OverBudget::Warn,
            safelist: Vec::new(),
        }
    }
}

/// When AVIF variants are encoded: AVIF is the slow encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AvifWhen {
    /// In every build (the default; the cache makes an unchanged image free).
    Always,
    /// Only in release builds, so a debug build of a fresh checkout stays quick.
    Release,
    /// Never.
    Never,
}

/// Settings of the image kind: `[package.metadata.perf.images]`, or
/// `PERF_BUILD_IMAGES_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    /// Widths of the responsive variants (default 320, 640, 960, 1280, 1920): those below
    /// an image's own width are made, plus its own width.
    pub widths: Vec<u32>,
    /// Lossy WebP quality, 0-100 (default 75).
    pub webp_quality: f32,
    /// AVIF quality, 1-100 (default 70: sharp's AVIF q50 SSIM for 1.04x its bytes; see
    /// BENCHMARKS.md).
    pub avif_quality: f32,
    /// AVIF encoder speed, 1 (slowest, smallest) to 10 (default 6).
    pub avif_speed: u8,
    /// When AVIF variants are made (default always).
    pub avif: AvifWhen,
    /// JPEG quality of recompressed JPEGs, 0-100 (default 80).
    pub jpeg_quality: f32,
    /// Lossless PNG optimisation level, 0-6 (default 2).
    pub png_level: u8,
    /// The largest decoded image accepted, in pixels (default 40 000 000): a larger
    /// declared size fails the build before anything is allocated.
    pub max_pixels: u64,
    /// Blur-up placeholders (default on).
    pub placeholders: bool,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            widths: vec![320, 640, 960, 1280, 1920],
            webp_quality: 75.0,
            avif_quality: 70.0,
            avif_speed: 6,
            avif: AvifWhen::Always,
            jpeg_quality: 80.0,
            png_level: 2,
            max_pixels: 40_000_000,
            placeholders: true,
        }
    }
}

impl ImageConfig {
    /// Whether AVIF variants are made in this build.
    pub fn avif_enabled(&self) -> bool {
        match self.avif {
            AvifWhen::Always => true,
            AvifWhen::Never => false,
            AvifWhen::Release => std::env::var("PROFILE").as_deref() == Ok("release"),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            static_dir: "static".into(),
            url_prefix: "/static".into(),
            source_maps: false,
            targets: vec!["defaults".into()],
            minify: true,
            precompress: true,
            quality: match std::env::var("PROFILE").as_deref() {
                Ok("release") => Quality::Best,
                Ok(_) => Quality::Fast,
                Err(_) => Quality::Best,
            },
            templates_dir: "templates".into(),
            cache_dir: None,
            images: ImageConfig::default(),
            critical: CriticalConfig::default(),
            bundle: BundleConfig::default(),
            budgets: BudgetConfig::default(),
        }
    }
}

/// The environment variables the configuration reads; each is reported to Cargo with
/// `rerun-if-env-changed`.
pub const ENV_VARS: &[&str] = &[
    "PERF_BUILD_STATIC_DIR",
    "PERF_BUILD_URL_PREFIX",
    "PERF_BUILD_SOURCE_MAPS",
    "PERF_BUILD_TARGETS",
    "PERF_BUILD_MINIFY",
    "PERF_BUILD_PRECOMPRESS",
    "PERF_BUILD_QUALITY",
    "PERF_BUILD_TEMPLATES_DIR",
    "PERF_BUILD_CACHE_DIR",
    "PERF_BUILD_IMAGES_WIDTHS",
    "PERF_BUILD_IMAGES_WEBP_QUALITY",
    "PERF_BUILD_IMAGES_AVIF_QUALITY",
    "PERF_BUILD_IMAGES_AVIF_SPEED",
    "PERF_BUILD_IMAGES_AVIF",
    "PERF_BUILD_IMAGES_JPEG_QUALITY",
    "PERF_BUILD_IMAGES_PNG_LEVEL",
    "PERF_BUILD_IMAGES_MAX_PIXELS",
    "PERF_BUILD_IMAGES_PLACEHOLDERS",
    "PERF_BUILD_CRITICAL_ENABLED",
    "PERF_BUILD_CRITICAL_BUDGET",
    "PERF_BUILD_CRITICAL_OVER_BUDGET",
    "PERF_BUILD_CRITICAL_SAFELIST",
    "PERF_BUILD_BUNDLE_ENABLED",
    "PERF_BUILD_BUNDLE_ENTRIES",
    "PERF_BUILD_BUNDLE_FEATURES_DIR",
    "PERF_BUILD_BUNDLE_MIN_CHUNK_SIZE",
    "PERF_BUILD_BUNDLE_NPM_INSTALL",
    "PERF_BUILD_BUNDLE_STRICT_EXECUTION_ORDER",
    "PERF_BUILD_BUDGETS_OVER_BUDGET",
    "PERF_BUILD_BUDGETS_COMPRESSION",
];

/// One source of settings: a metadata table or the environment.
trait Source {
    fn get(&self, key: &str) -> Option<Result<Value, Error>>;
}

struct Metadata<'a>(&'a serde_json::Map<String, Value>);

impl Source for Metadata<'_> {
    fn get(&self, key: &str) -> Option<Result<Value, Error>> {
        match key.split_once('.') {
            None => self.0.get(key).cloned().map(Ok),
            Some((table, key)) => match self.0.get(table)? {
                Value::Object(t) => t.get(key).cloned().map(Ok),
                other => Some(Err(Error::Config {
                    source_of_value: format!("Cargo.toml [package.metadata.perf] {table}"),
                    message: format!(
                        "`{other}` is not a table: write [package.metadata.perf.{table}]"
                    ),
                })),
            },
        }
    }
}

struct Env;

fn env_name(key: &str) -> String {
    format!(
        "PERF_BUILD_{}",
        key.replace(['-', '.'], "_").to_ascii_uppercase()
    )
}

impl Source for Env {
    fn get(&self, key: &str) -> Option<Result<Value, Error>> {
        let name = env_name(key);
        let value = std::env::var(&name).ok()?;
        Some(Ok(Value::String(value)))
    }
}

const KEYS: &[&str] = &[
    "static-dir",
    "url-prefix",
    "source-maps",
    "targets",
    "minify",
    "precompress",
    "quality",
    "templates-dir",
    "cache-dir",
];

/// The keys of `[package.metadata.perf.images]`.
const IMAGE_KEYS: &[&str] = &[
    "widths",
    "webp-quality",
    "avif-quality",
    "avif-speed",
    "avif",
    "jpeg-quality",
    "png-level",
    "max-pixels",
    "placeholders",
];

/// The keys of `[package.metadata.perf.critical]`.
const CRITICAL_KEYS: &[&str] = &["enabled", "budget", "over-budget", "safelist"];

/// The settings of `[package.metadata.perf.budgets]` itself; its other keys are targets.
const BUDGET_KEYS: &[&str] = &["over-budget", "compression"];

/// The keys of one target's budget table.
const BUDGET_TARGET_KEYS: &[&str] = &[
    "js",
    "css",
    "critical-css",
    "images",
    "total",
    "over-budget",
];

/// The keys of `[package.metadata.perf.bundle]`.
const BUNDLE_KEYS: &[&str] = &[
    "enabled",
    "entries",
    "features-dir",
    "min-chunk-size",
    "npm-install",
    "strict-execution-order",
];

fn origin(from_env: bool, key: &str) -> String {
    if from_env {
        format!("environment variable {}", env_name(key))
    } else if let Some((table, key)) = key.rsplit_once('.') {
        // `budgets."index.html".js`: the table is everything before the last dot.
        format!("Cargo.toml [package.metadata.perf.{table}] {key}")
    } else {
        format!("Cargo.toml [package.metadata.perf] {key}")
    }
}

/// A number in `range`, from a JSON number or a string.
fn as_number(
    v: &Value,
    from_env: bool,
    key: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, Error> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| range.contains(n))
        .ok_or_else(|| Error::Config {
            source_of_value: origin(from_env, key),
            message: format!(
                "`{v}` is not a number from {} to {}",
                range.start(),
                range.end()
            ),
        })
}

/// A whole number in `range`.
fn as_whole(
    v: &Value,
    from_env: bool,
    key: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<u64, Error> {
    let n = as_number(v, from_env, key, range)?;
    if n.fract() != 0.0 {
        return Err(Error::Config {
            source_of_value: origin(from_env, key),
            message: format!("`{v}` is not a whole number"),
        });
    }
    Ok(n as u64)
}

fn as_bool(v: &Value, from_env: bool, key: &str) -> Result<bool, Error> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(Error::Config {
                source_of_value: origin(from_env, key),
                message: format!("`{s}` is not a boolean: write true or false"),
            }),
        },
        other => Err(Error::Config {
            source_of_value: origin(from_env, key),
            message: format!("`{other}` is not a boolean: write true or false"),
        }),
    }
}

fn as_string(v: &Value, from_env: bool, key: &str) -> Result<String, Error> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(Error::Config {
            source_of_value: origin(from_env, key),
            message: format!("`{other}` is not a string"),
        }),
    }
}

/// A list of strings: a JSON array, or a comma-separated string (the environment's form).
fn as_list(v: &Value, from_env: bool, key: &str, problem: &str) -> Result<Vec<String>, Error> {
    match v {
        Value::String(s) => Ok(s
            .split(',')
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty())
            .collect()),
        Value::Array(items) => items.iter().map(|i| as_string(i, from_env, key)).collect(),
        other => Err(Error::Config {
            source_of_value: origin(from_env, key),
            message: format!("`{other}` {problem}"),
        }),
    }
}

/// Checks a URL prefix (a trailing `/` is dropped); `origin` names where it came from.
pub fn url_prefix(prefix: &str, origin: impl FnOnce() -> String) -> Result<String, Error> {
    let p = prefix.trim_end_matches('/');
    if !(p.is_empty() || p.starts_with('/')) || p.contains(['?', '#', ' ', '\\']) {
        return Err(Error::Config {
            source_of_value: origin(),
            message: format!(
                "`{p}` is not a URL path prefix: write it like \"/static\" (or \"\" for the root)"
            ),
        });
    }
    Ok(p.to_string())
}

impl Config {
    /// Applies one source over the current settings.
    fn apply(&mut self, source: &dyn Source, from_env: bool) -> Result<(), Error> {
        for key in KEYS {
            let Some(value) = source.get(key) else {
                continue;
            };
            let value = value?;
            match *key {
                "static-dir" => self.static_dir = as_string(&value, from_env, key)?.into(),
                "url-prefix" => {
                    self.url_prefix =
                        url_prefix(&as_string(&value, from_env, key)?, || origin(from_env, key))?
                }
                "source-maps" => self.source_maps = as_bool(&value, from_env, key)?,
                "minify" => self.minify = as_bool(&value, from_env, key)?,
                "precompress" => self.precompress = as_bool(&value, from_env, key)?,
                "targets" => {
                    self.targets = as_list(&value, from_env, key, "is not a browserslist query")?
                }
                "quality" => {
                    self.quality = match as_string(&value, from_env, key)?.as_str() {
                        "best" => Quality::Best,
                        "fast" => Quality::Fast,
                        other => {
                            return Err(Error::Config {
                                source_of_value: origin(from_env, key),
                                message: format!(
                                    "`{other}` is not a quality: write \"best\" or \"fast\""
                                ),
                            });
                        }
                    }
                }
                "templates-dir" => self.templates_dir = as_string(&value, from_env, key)?.into(),
                "cache-dir" => self.cache_dir = Some(as_string(&value, from_env, key)?.into()),
                _ => unreachable!("every key of KEYS is handled"),
            }
        }
        self.images.apply(source, from_env)?;
        self.critical.apply(source, from_env)?;
        self.bundle.apply(source, from_env)?;
        self.budgets.apply(source, from_env)
    }

    /// Reads `[package.metadata.perf]` of the manifest, then the environment.
    ///
    /// Unknown keys, in the table and in `[package.metadata.perf.images]`, are errors
    /// that list the known ones.
    pub fn from_manifest(manifest: &Path) -> Result<Config, Error> {
        let mut config = Config::default();
        if let Some(table) = read_metadata(manifest)? {
            for (name, keys) in [
                ("images", IMAGE_KEYS),
                ("critical", CRITICAL_KEYS),
                ("bundle", BUNDLE_KEYS),
            ] {
                if let Some(Value::Object(sub)) = table.get(name) {
                    for key in sub.keys() {
                        if !keys.contains(&key.as_str()) {
                            return Err(Error::Config {
                                source_of_value: format!(
                                    "Cargo.toml [package.metadata.perf.{name}] {key}"
                                ),
                                message: format!(
                                    "unknown setting; the settings are {}",
                                    keys.join(", ")
                                ),
                            });
                        }
                    }
                }
            }
            for key in table.keys() {
                if !KEYS.contains(&key.as_str())
                    && !["images", "critical", "bundle", "budgets"].contains(&key.as_str())
                {
                    let near = KEYS
                        .iter()
                        .find(|k| k.replace('-', "_") == *key || key.starts_with(&k[..3]));
                    return Err(Error::Config {
                        source_of_value: format!("Cargo.toml [package.metadata.perf] {key}"),
                        message: format!(
                            "unknown setting{}; the settings are {}",
                            near.map(|n| format!(" (did you mean `{n}`?)"))
                                .unwrap_or_default(),
                            KEYS.join(", ")
                        ),
                    });
                }
            }
            config.apply(&Metadata(&table), false)?;
            if let Some(budgets) = table.get("budgets") {
                config.budgets.targets = budget_targets(budgets)?;
            }
        }
        config.apply(&Env, true)?;
        Ok(config)
    }

    /// Reads only the environment over the defaults.
    pub fn from_env() -> Result<Config, Error> {
        let mut config = Config::default();
        config.apply(&Env, true)?;
        Ok(config)
    }
}

impl ImageConfig {
    fn apply(&mut self, source: &dyn Source, from_env: bool) -> Result<(), Error> {
        for name in IMAGE_KEYS {
            let key = format!("images.{name}");
            let key = key.as_str();
            let Some(value) = source.get(key) else {
                continue;
            };
            let value = value?;
            match *name {
                "widths" => {
                    let items: Vec<Value> = match &value {
                        Value::Array(items) => items.clone(),
                        Value::String(s) => s
                            .split(',')
                            .filter(|w| !w.trim().is_empty())
                            .map(|w| Value::String(w.to_string()))
                            .collect(),
                        other => {
                            return Err(Error::Config {
                                source_of_value: origin(from_env, key),
                                message: format!(
                                    "`{other}` is not a list of widths: write [320, 640, 1280]"
                                ),
                            });
                        }
                    };
                    let mut widths = items
                        .iter()
                        .map(|w| as_whole(w, from_env, key, 1.0..=16384.0).map(|w| w as u32))
                        .collect::<Result<Vec<_>, _>>()?;
                    widths.sort_unstable();
                    widths.dedup();
                    self.widths = widths;
                }
                "webp-quality" => {
                    self.webp_quality = as_number(&value, from_env, key, 0.0..=100.0)? as f32
                }
                "avif-quality" => {
                    self.avif_quality = as_number(&value, from_env, key, 1.0..=100.0)? as f32
                }
                "avif-speed" => {
                    self.avif_speed = as_whole(&value, from_env, key, 1.0..=10.0)? as u8
                }
                "jpeg-quality" => {
                    self.jpeg_quality = as_number(&value, from_env, key, 1.0..=100.0)? as f32
                }
                "png-level" => self.png_level = as_whole(&value, from_env, key, 0.0..=6.0)? as u8,
                "max-pixels" => self.max_pixels = as_whole(&value, from_env, key, 1.0..=1e12)?,
                "placeholders" => self.placeholders = as_bool(&value, from_env, key)?,
                "avif" => {
                    self.avif = match &value {
                        Value::Bool(true) => AvifWhen::Always,
                        Value::Bool(false) => AvifWhen::Never,
                        Value::String(s) => match s.trim() {
                            "always" | "true" => AvifWhen::Always,
                            "release" => AvifWhen::Release,
                            "never" | "false" => AvifWhen::Never,
                            other => {
                                return Err(Error::Config {
                                    source_of_value: origin(from_env, key),
                                    message: format!(
                                        "`{other}` is not a choice: write \"always\", \"release\" or \"never\""
                                    ),
                                });
                            }
                        },
                        other => {
                            return Err(Error::Config {
                                source_of_value: origin(from_env, key),
                                message: format!(
                                    "`{other}` is not a choice: write \"always\", \"release\" or \"never\""
                                ),
                            });
                        }
                    }
                }
                _ => unreachable!("every key of IMAGE_KEYS is handled"),
            }
        }
        Ok(())
    }
}

impl CriticalConfig {
    fn apply(&mut self, source: &dyn Source, from_env: bool) -> Result<(), Error> {
        for name in CRITICAL_KEYS {
            let key = format!("critical.{name}");
            let key = key.as_str();
            let Some(value) = source.get(key) else {
                continue;
            };
            let value = value?;
            match *name {
                "enabled" => self.enabled = as_bool(&value, from_env, key)?,
                "budget" => self.budget = as_whole(&value, from_env, key, 0.0..=1e9)?,
                "over-budget" => self.over_budget = as_over_budget(&value, from_env, key)?,
                "safelist" => {
                    self.safelist = as_list(
                        &value,
                        from_env,
                        key,
                        "is not a list: write [\"is-open\", \"mood-*\"]",
                    )?
                }
                _ => unreachable!("every key of CRITICAL_KEYS is handled"),
            }
        }
        Ok(())
    }
}

impl BundleConfig {
    fn apply(&mut self, source: &dyn Source, from_env: bool) -> Result<(), Error> {
        for name in BUNDLE_KEYS {
            let key = format!("bundle.{name}");
            let key = key.as_str();
            let Some(value) = source.get(key) else {
                continue;
            };
            let value = value?;
            match *name {
                "enabled" => self.enabled = as_bool(&value, from_env, key)?,
                "entries" => {
                    self.entries = as_list(
                        &value,
                        from_env,
                        key,
                        "is not a list: write [\"js/admin.js\"]",
                    )?
                }
                "features-dir" => {
                    self.features_dir = as_string(&value, from_env, key)?
                        .trim_matches('/')
                        .to_string()
                }
                "min-chunk-size" => {
                    self.min_chunk_size = as_whole(&value, from_env, key, 0.0..=1e9)?
                }
                "npm-install" => self.npm_install = as_bool(&value, from_env, key)?,
                "strict-execution-order" => {
                    self.strict_execution_order = as_bool(&value, from_env, key)?
                }
                _ => unreachable!("every key of BUNDLE_KEYS is handled"),
            }
        }
        Ok(())
    }
}

/// `"warn"` or `"error"`.
fn as_over_budget(v: &Value, from_env: bool, key: &str) -> Result<OverBudget, Error> {
    match as_string(v, from_env, key)?.trim() {
        "warn" => Ok(OverBudget::Warn),
        "error" => Ok(OverBudget::Error),
        other => Err(Error::Config {
            source_of_value: origin(from_env, key),
            message: format!("`{other}` is not a choice: write \"warn\" or \"error\""),
        }),
    }
}

/// A size in bytes: a whole number, or a string with a unit (`"40 KiB"`, `"1.5 MB"`,
/// `"900 B"`; k and M are powers of 1000, Ki and Mi of 1024).
fn as_bytes(v: &Value, key: &str) -> Result<u64, Error> {
    let bad = || Error::Config {
        source_of_value: origin(false, key),
        message: format!("`{v}` is not a size: write a number of bytes or \"40 KiB\""),
    };
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            let split = s
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(s.len());
            let (number, unit) = s.split_at(split);
            let number: f64 = number.parse().map_err(|_| bad())?;
            let scale = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1.0,
                "k" | "kb" => 1e3,
                "kib" => 1024.0,
                "m" | "mb" => 1e6,
                "mib" => 1024.0 * 1024.0,
                _ => return Err(bad()),
            };
            let bytes = number * scale;
            if !(0.0..=1e12).contains(&bytes) {
                return Err(bad());
            }
            Ok(bytes.round() as u64)
        }
        _ => Err(bad()),
    }
}

/// The targets of `[package.metadata.perf.budgets]`: every key but its own settings.
fn budget_targets(table: &Value) -> Result<Vec<Budget>, Error> {
    let Value::Object(table) = table else {
        return Err(Error::Config {
            source_of_value: "Cargo.toml [package.metadata.perf] budgets".into(),
            message: format!("`{table}` is not a table: write [package.metadata.perf.budgets]"),
        });
    };
    let mut targets = Vec::new();
    for (target, value) in table {
        if BUDGET_KEYS.contains(&target.as_str()) {
            continue;
        }
        let Value::Object(limits) = value else {
            return Err(Error::Config {
                source_of_value: format!("Cargo.toml [package.metadata.perf.budgets] {target}"),
                message: format!(
                    "`{value}` is not a budget: write [package.metadata.perf.budgets.\"{target}\"] with js = \"40 KiB\" (settings: {}; targets: a page template or a script entry)",
                    BUDGET_KEYS.join(", ")
                ),
            });
        };
        let mut budget = Budget {
            target: target.clone(),
            ..Budget::default()
        };
        for (name, value) in limits {
            let key = format!("budgets.\"{target}\".{name}");
            let key = key.as_str();
            match name.as_str() {
                "js" => budget.js = Some(as_bytes(value, key)?),
                "css" => budget.css = Some(as_bytes(value, key)?),
                "critical-css" => budget.critical_css = Some(as_bytes(value, key)?),
                "images" => budget.images = Some(as_bytes(value, key)?),
                "total" => budget.total = Some(as_bytes(value, key)?),
                "over-budget" => budget.over_budget = Some(as_over_budget(value, false, key)?),
                _ => {
                    return Err(Error::Config {
                        source_of_value: origin(false, key),
                        message: format!(
                            "unknown setting; a budget's settings are {}",
                            BUDGET_TARGET_KEYS.join(", ")
                        ),
                    });
                }
            }
        }
        targets.push(budget);
    }
    Ok(targets)
}

impl BudgetConfig {
    fn apply(&mut self, source: &dyn Source, from_env: bool) -> Result<(), Error> {
        for name in BUDGET_KEYS {
            let key = format!("budgets.{name}");
            let key = key.as_str();
            let Some(value) = source.get(key) else {
                continue;
            };
            let value = value?;
            match *name {
                "over-budget" => self.over_budget = as_over_budget(&value, from_env, key)?,
                "compression" => {
                    self.compression = match as_string(&value, from_env, key)?.trim() {
                        "gzip" => BudgetEncoding::Gzip,
                        "brotli" | "br" => BudgetEncoding::Brotli,
                        other => {
                            return Err(Error::Config {
                                source_of_value: origin(from_env, key),
                                message: format!(
                                    "`{other}` is not a compression: write \"gzip\" or \"brotli\""
                                ),
                            });
                        }
                    }
                }
                _ => unreachable!("every key of BUDGET_KEYS is handled"),
            }
        }
        Ok(())
    }
}

/// `[package.metadata.perf]` of the package whose manifest is `manifest`, through
/// `cargo metadata --no-deps` (no lock, no network, workspace inheritance resolved).
fn read_metadata(manifest: &Path) -> Result<Option<serde_json::Map<String, Value>>, Error> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest)
        .no_deps()
        .other_options(vec!["--offline".to_string()])
        .exec()
        .map_err(|e| Error::Metadata {
            path: manifest.to_path_buf(),
            message: e.to_string(),
        })?;
    let manifest = manifest
        .canonicalize()
        .unwrap_or_else(|_| manifest.to_path_buf());
    let package = metadata.packages.iter().find(|p| {
        p.manifest_path
            .as_std_path()
            .canonicalize()
            .is_ok_and(|m| m == manifest)
    });
    Ok(package.and_then(|p| match p.metadata.get("perf") {
        Some(Value::Object(table)) => Some(table.clone()),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_read_sizes_with_units_and_reject_what_they_do_not_know() {
        let mut c = Config::default();
        let table: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"budgets":{"over-budget":"error","compression":"brotli",
                "index.html":{"js":"40 KiB","css":"1.5 MB","critical-css":900,"images":"2MiB","total":"100kB","over-budget":"warn"},
                "js/app.js":{"js":"12 kib"}}}"#,
        )
        .unwrap();
        c.apply(&Metadata(&table), false).unwrap();
        c.budgets.targets = budget_targets(&table["budgets"]).unwrap();
        assert_eq!(c.budgets.over_budget, OverBudget::Error);
        assert_eq!(c.budgets.compression, BudgetEncoding::Brotli);
        assert_eq!(
            c.budgets.targets,
            vec![
                Budget {
                    target: "index.html".into(),
                    js: Some(40 * 1024),
                    css: Some(1_500_000),
                    critical_css: Some(900),
                    images: Some(2 * 1024 * 1024),
                    total: Some(100_000),
                    over_budget: Some(OverBudget::Warn),
                },
                Budget {
                    target: "js/app.js".into(),
                    js: Some(12 * 1024),
                    ..Budget::default()
                },
            ]
        );
        for (bad, wanted) in [
            (
                r#"{"index.html":{"js":"forty"}}"#,
                "[package.metadata.perf.budgets.\"index.html\"] js: `\"forty\"` is not a size",
            ),
            (r#"{"index.html":{"js":"4 GB"}}"#, "is not a size"),
            (r#"{"index.html":{"js":-1}}"#, "is not a size"),
            (
                r#"{"index.html":{"scripts":1}}"#,
                "unknown setting; a budget's settings are js, css",
            ),
            (r#"{"index.html":{"over-budget":"maybe"}}"#, "not a choice"),
            (r#"{"index.html":12}"#, "is not a budget"),
        ] {
            let e = budget_targets(&serde_json::from_str(bad).unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(wanted), "{bad}: {e}");
        }
    }

    #[test]
    fn metadata_overrides_defaults_and_rejects_bad_values() {
        let mut c = Config::default();
        let table: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"static-dir":"assets","url-prefix":"/a/","source-maps":true,"targets":["chrome 100"],"quality":"fast"}"#,
        )
        .unwrap();
        c.apply(&Metadata(&table), false).unwrap();
        assert_eq!(c.static_dir, PathBuf::from("assets"));
        assert_eq!(c.url_prefix, "/a");
        assert!(c.source_maps);
        assert_eq!(c.targets, vec!["chrome 100".to_string()]);
        assert_eq!(c.quality, Quality::Fast);

        let bad: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"minify":"perhaps"}"#).unwrap();
        let e = c.apply(&Metadata(&bad), false).unwrap_err().to_string();
        assert!(
            e.contains("[package.metadata.perf] minify") && e.contains("perhaps"),
            "{e}"
        );

        let bad: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"url-prefix":"static"}"#).unwrap();
        assert!(c.apply(&Metadata(&bad), false).is_err());
    }
}
