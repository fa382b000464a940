//! perf-build: the build-time half of perf-suite.
//!
//! Called from an application's `build.rs`, it minifies CSS (lightningcss) and
//! JavaScript (swc), content-hashes every file under `static/`, precompresses it
//! (brotli, zstd, gzip) and writes Rust code into `OUT_DIR` that embeds the bytes and
//! defines the `asset_url!` macro. `perf_rt::include_assets!()` brings it in.
//!
//! ```no_run
//! // build.rs: the body of `fn main()`
//! if let Err(e) = perf_build::run() {
//!     e.emit(); // rustc-style errors with code frames, through `cargo::error=`
//! }
//! ```
//!
//! Custom settings, over `[package.metadata.perf]` and `PERF_BUILD_*`:
//!
//! ```no_run
//! fn main() -> Result<(), perf_build::Error> {
//!     perf_build::Builder::from_manifest()?
//!         .static_dir("assets")
//!         .url_prefix("/assets")
//!         .source_maps(true)
//!         .run()?;
//!     Ok(())
//! }
//! ```
//!
//! The work is parallel and incremental: every transform and compression is stored in a
//! content-addressed cache, so an unchanged file is never processed twice.

mod budget;
mod bundle;
mod cache;
mod cargo;
mod check;
mod codegen;
mod compress;
mod config;
mod critical;
mod css;
mod dev;
mod diagnostic;
mod discover;
mod error;
mod finish;
mod hash;
mod images;
mod js;
mod mime;
mod other;
mod pipeline;
mod refs;
mod report;
mod resolve;
mod transform;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use budget::{BudgetFigure, BudgetReport};
pub use bundle::{ChunkInfo, ChunkKind};
pub use config::{
    AvifWhen, Budget, BudgetConfig, BudgetEncoding, BundleConfig, Config, CriticalConfig,
    ImageConfig, OverBudget, Quality,
};
pub use error::Error;
pub use report::{
    AssetReport, ChunkReport, CriticalReport, FirstLoad, ImageReport, Report, VariantReport,
};

/// Runs the pipeline with the package's configuration: `[package.metadata.perf]`, then
/// `PERF_BUILD_*` variables. The whole of a typical `build.rs`.
pub fn run() -> Result<Report, Error> {
    Builder::from_manifest()?.run()
}

/// Keeps a configuration error for later.
fn invalid(e: Error) -> (String, String) {
    match e {
        Error::Config {
            source_of_value,
            message,
        } => (source_of_value, message),
        other => (String::new(), other.to_string()),
    }
}

/// Configures and runs the pipeline. Setters win over `PERF_BUILD_*` variables, which
/// win over `[package.metadata.perf]`, which wins over the defaults.
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
    root: PathBuf,
    out_dir: Option<PathBuf>,
    cargo: bool,
    check_templates: bool,
    /// The first invalid setting (where it came from, what is wrong), reported by
    /// [`Builder::run`]: setters cannot fail.
    invalid: Option<(String, String)>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Defaults and `PERF_BUILD_*` variables; the package root is `CARGO_MANIFEST_DIR`
    /// (or the current directory outside Cargo). Invalid variables are reported by
    /// [`Builder::run`].
    pub fn new() -> Self {
        let root = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        // The `rerun-if-env-changed` lines wait for `run`: a standalone command (run by
        // `cargo run`, which sets OUT_DIR too) turns them off first.
        let cargo = std::env::var_os("OUT_DIR").is_some();
        let (config, invalid) = match Config::from_env() {
            Ok(config) => (config, None),
            Err(e) => (Config::default(), Some(invalid(e))),
        };
        Builder {
            config,
            root,
            out_dir: std::env::var_os("OUT_DIR").map(PathBuf::from),
            cargo,
            check_templates: true,
            invalid,
        }
    }

    /// Defaults, then `[package.metadata.perf]` of the package being built, then
    /// `PERF_BUILD_*` variables.
    pub fn from_manifest() -> Result<Self, Error> {
        let b = Builder::new();
        let manifest = b.root.join("Cargo.toml");
        if b.cargo {
            cargo::rerun_if_changed(&manifest);
        }
        b.with_manifest(&manifest)
    }

    /// Defaults, then `[package.metadata.perf]` of the package whose `Cargo.toml` is
    /// `manifest` (its folder becomes the package root), then `PERF_BUILD_*` variables:
    /// the standalone command's `--manifest-path`.
    pub fn from_manifest_path(manifest: &Path) -> Result<Self, Error> {
        let root = match manifest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Builder::new().root(root).with_manifest(manifest)
    }

    fn with_manifest(mut self, manifest: &Path) -> Result<Self, Error> {
        self.config = Config::from_manifest(manifest)?;
        self.invalid = None;
        Ok(self)
    }

    /// The directory holding the assets, relative to the package root.
    pub fn static_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.static_dir = dir.into();
        self
    }

    /// The URL prefix the assets are served under: `/static` (a trailing `/` is dropped;
    /// `""` serves from the root). Anything else, `static` say, is reported by
    /// [`Builder::run`] as the same value in `[package.metadata.perf]` would be.
    pub fn url_prefix(mut self, prefix: impl Into<String>) -> Self {
        match config::url_prefix(&prefix.into(), || "Builder::url_prefix".to_string()) {
            Ok(p) => self.config.url_prefix = p,
            Err(e) => {
                self.invalid.get_or_insert(invalid(e));
            }
        }
        self
    }

    /// Writes source maps for CSS and JS and serves them beside the assets.
    pub fn source_maps(mut self, on: bool) -> Self {
        self.config.source_maps = on;
        self
    }

    /// Browserslist queries for the CSS targets: `["defaults"]`, `["chrome 100"]`.
    pub fn targets<I: IntoIterator<Item = S>, S: Into<String>>(mut self, queries: I) -> Self {
        self.config.targets = queries.into_iter().map(Into::into).collect();
        self
    }

    /// Minifies CSS and JS (on by default).
    pub fn minify(mut self, on: bool) -> Self {
        self.config.minify = on;
        self
    }

    /// Writes brotli, zstd and gzip variants (on by default).
    pub fn precompress(mut self, on: bool) -> Self {
        self.config.precompress = on;
        self
    }

    /// Compression effort: [`Quality::Best`] (release default) or [`Quality::Fast`].
    pub fn quality(mut self, quality: Quality) -> Self {
        self.config.quality = quality;
        self
    }

    /// The askama templates directory whose `asset_url!` calls are checked.
    pub fn templates_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.templates_dir = dir.into();
        self
    }

    /// Whether to check the `asset_url!` calls of the templates directory (default on;
    /// off for builds that have no askama crate, such as the standalone command).
    pub fn check_templates(mut self, on: bool) -> Self {
        self.check_templates = on;
        self
    }

    /// How images are resized and encoded (widths, qualities, AVIF, the decoded size
    /// limit, placeholders): [`ImageConfig`], whose defaults are the README's.
    pub fn images(mut self, images: ImageConfig) -> Self {
        self.config.images = images;
        self
    }

    /// Critical CSS per template: on or off, budget, safelist ([`CriticalConfig`]).
    pub fn critical(mut self, critical: CriticalConfig) -> Self {
        self.config.critical = critical;
        self
    }

    /// Bundling and code splitting of ES modules: on or off, extra entries, the features
    /// folder, the smallest shared chunk ([`BundleConfig`]).
    pub fn bundle(mut self, bundle: BundleConfig) -> Self {
        self.config.bundle = bundle;
        self
    }

    /// Asset budgets per page or entry, and what being over one does ([`BudgetConfig`]).
    pub fn budgets(mut self, budgets: BudgetConfig) -> Self {
        self.config.budgets = budgets;
        self
    }

    /// Where the content-addressed cache lives.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.cache_dir = Some(dir.into());
        self
    }

    /// The package root that relative directories are resolved against.
    pub fn root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.root = dir.into();
        self
    }

    /// Where the generated code goes (default `OUT_DIR`): lets tests run outside Cargo.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether to print `cargo::` instructions (default: when run by Cargo).
    pub fn cargo_instructions(mut self, on: bool) -> Self {
        self.cargo = on;
        self
    }

    /// The settings as they stand.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn cache(&self, fallback: Option<&Path>) -> cache::Cache {
        let dir = self
            .config
            .cache_dir
            .as_ref()
            .map(|d| self.root.join(d))
            .or_else(|| {
                let out = self.out_dir.as_deref()?;
                // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: share one cache per
                // profile directory across packages and build-script rebuilds.
                out.ancestors()
                    .find(|a| a.file_name().is_some_and(|n| n == "build"))
                    .and_then(Path::parent)
                    .map(|p| p.join("perf-cache"))
                    .or_else(|| Some(out.join("perf-cache")))
            });
        cache::Cache::new(dir.or_else(|| fallback.map(Path::to_path_buf)))
    }

    fn pipeline(
        &self,
        fallback_cache: Option<&Path>,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<pipeline::Output, Error> {
        // First, so that a bad variable's fix reruns the build script.
        if self.cargo {
            for var in config::ENV_VARS {
                cargo::rerun_if_env_changed(var);
            }
        }
        if let Some((source_of_value, message)) = &self.invalid {
            return Err(Error::Config {
                source_of_value: source_of_value.clone(),
                message: message.clone(),
            });
        }
        let static_dir = self.root.join(&self.config.static_dir);
        let templates = self.root.join(&self.config.templates_dir);
        if self.cargo {
            cargo::rerun_if_changed(&static_dir);
            if (self.check_templates || self.config.critical.enabled) && templates.is_dir() {
                cargo::rerun_if_changed(&templates);
            }
        }
        if !static_dir.is_dir() && self.cargo {
            cargo::warning(&format!(
                "perf-build: {} does not exist; no assets are embedded",
                static_dir.display()
            ));
        }
        let mut output = pipeline::run(
            &self.config,
            &self.root,
            &self.cache(fallback_cache),
            progress,
        )?;
        if self.cargo {
            // A source map shares its stylesheet's or script's source: one line per file.
            let sources: std::collections::BTreeSet<&Path> =
                output.assets.iter().map(|a| a.source.as_path()).collect();
            for source in sources {
                cargo::rerun_if_changed(source);
            }
            // The npm files the bundle read, and what decides how packages resolve.
            for file in &output.watched {
                cargo::rerun_if_changed(file);
            }
        }
        if self.check_templates && templates.is_dir() {
            let known: HashSet<&str> = output.assets.iter().map(|a| a.logical.as_str()).collect();
            check::templates(&templates, &known)?;
        }
        // Before anything is written: a budget set to fail leaves the previous build.
        let (budgets, warnings) = budget::check(&output.assets, &self.config, &self.root)?;
        output.budgets = budgets;
        output.warnings.extend(warnings);
        Ok(output)
    }

    /// Runs the pipeline and writes the generated code into the output directory
    /// (`OUT_DIR`). Nothing is written unless every asset built.
    ///
    /// Run again by perf-rt's development mode (`PERF_DEV=1` in a debug build), it writes
    /// no code: it builds the assets for perf-rt to serve, watches them and builds them
    /// again on every change, until perf-rt goes away.
    pub fn run(self) -> Result<Report, Error> {
        if let Some(dir) = std::env::var_os(dev::ENV_DIR) {
            dev::serve(self, dir.into());
        }
        let out_dir = self.out_dir.clone().ok_or_else(|| Error::Config {
            source_of_value: "environment variable OUT_DIR".into(),
            message: "not set: call perf_build::run() from build.rs, or set Builder::out_dir"
                .into(),
        })?;
        let output = self.pipeline(None, &|_, _| {})?;
        let static_dir = self.config.static_dir.to_string_lossy().replace('\\', "/");
        let templates_dir = self
            .config
            .templates_dir
            .to_string_lossy()
            .replace('\\', "/");
        codegen::write(
            &out_dir,
            &output.assets,
            &self.config.url_prefix,
            &static_dir,
            &templates_dir,
            // Only a build script can be run again: not a test that sets out_dir.
            if self.cargo { dev::script() } else { None }.as_ref(),
        )?;
        if self.cargo {
            for w in &output.warnings {
                cargo::warning(w);
            }
            // A page over a budget set to warn: the whole budget table after the warnings.
            if output
                .budgets
                .iter()
                .any(|b| b.figures.iter().any(BudgetFigure::over))
            {
                cargo::warning(&budget::table(&output.budgets, 0));
            }
        }
        Ok(Report::new(&output, &self.config.url_prefix))
    }

    /// The critical CSS of one template (relative to the templates directory), as
    /// `critical_css!` would inline it, and the stylesheets it stands in for; `None` when
    /// the template links no stylesheet. The assets are built (and cached) as by
    /// [`Builder::build_dist`], in `cache_dir` or `fallback_cache`.
    pub fn critical_css(
        mut self,
        template: &str,
        fallback_cache: &Path,
    ) -> Result<Option<(String, Vec<String>)>, Error> {
        // Only the one template: the pipeline itself skips the critical stage.
        let mut config = self.config.clone();
        self.config.critical.enabled = false;
        // Without critical CSS the pages' figures are not the build's: no budgets.
        self.config.budgets.targets.clear();
        let output = self.pipeline(Some(fallback_cache), &|_, _| {})?;
        config.critical.enabled = true;
        let cache = self.cache(Some(fallback_cache));
        let targets = css::Css::new(&config, &cache).targets()?.0;
        let known: Vec<critical::Known> = output
            .assets
            .iter()
            .map(|a| critical::Known {
                logical: &a.logical,
                hashed: &a.hashed,
                bytes: &a.identity,
                file: &a.source,
                placeholder: a.image.as_ref().is_some_and(|i| i.placeholder.is_some()),
            })
            .collect();
        critical::one(template, &known, &config, &self.root, targets)
    }

    /// Runs the pipeline outside Cargo and writes the hashed files, their `.br`, `.gz`
    /// and `.zst` siblings and a `manifest.json` into `dist_dir`. `progress` is called
    /// with (done, total) steps.
    pub fn build_dist(
        self,
        dist_dir: &Path,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Report, Error> {
        let fallback = dist_dir.join(".perf-cache");
        let output = self.pipeline(Some(&fallback), progress)?;
        let report = Report::new(&output, &self.config.url_prefix);
        report::write_dist(dist_dir, &output.assets, &report)?;
        Ok(report)
    }
}
