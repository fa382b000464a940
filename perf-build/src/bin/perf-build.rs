//! `perf-build`: the asset pipeline outside Cargo. `perf-build build --static-dir DIR
//! --dist-dir DIR` writes hashed files, `.br`/`.gz`/`.zst` siblings and a
//! `manifest.json`, and prints a size table; with `--manifest-path Cargo.toml` it takes the
//! package's `[package.metadata.perf]` settings, as its build script does, under the
//! options given. `perf-build --help` lists the rest.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// The perf-suite asset pipeline, outside Cargo: minify, hash, precompress.
#[derive(Parser)]
#[command(name = "perf-build", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Builds every asset of a folder into a dist folder with a manifest.json.
    Build(BuildArgs),
    /// Writes the critical CSS of one askama template: the rules of the stylesheets it
    /// links that can match its markup (above a `{# perf:fold #}` marker, if it has one).
    Critical(CriticalArgs),
}

#[derive(Args)]
struct CriticalArgs {
    /// The assets (the stylesheets the template links are built from here).
    #[arg(long, value_name = "DIR")]
    static_dir: PathBuf,
    /// The askama templates.
    #[arg(long, value_name = "DIR")]
    templates_dir: PathBuf,
    /// The template, relative to the templates directory: landing.html.
    #[arg(long, value_name = "NAME")]
    template: String,
    /// Where the critical CSS goes ("-": standard output).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// URL prefix the assets are served under (the CSS's url()s become absolute).
    #[arg(long, value_name = "PREFIX", default_value = "/static")]
    url_prefix: String,
    /// Browserslist queries for CSS, comma-separated.
    #[arg(long, value_name = "QUERY", default_value = "defaults")]
    targets: String,
    /// Classes, #ids or tags to keep whatever the template shows (`mood-*` for a prefix);
    /// repeat or separate with commas.
    #[arg(long, value_name = "ENTRY", value_delimiter = ',')]
    safelist: Vec<String>,
    /// The content-addressed cache (default: .perf-cache in the system's temp folder).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct BuildArgs {
    /// Read the settings of this package's `[package.metadata.perf]` (budgets, images,
    /// bundle, critical CSS, …), as its build script does; the options below win over them.
    #[arg(long, value_name = "FILE")]
    manifest_path: Option<PathBuf>,
    /// The assets to build (with --manifest-path: its static-dir by default).
    #[arg(long, value_name = "DIR", required_unless_present = "manifest_path")]
    static_dir: Option<PathBuf>,
    /// Where the hashed files and manifest.json go.
    #[arg(long, value_name = "DIR")]
    dist_dir: PathBuf,
    /// URL prefix the assets are served under [default: /static].
    #[arg(long, value_name = "PREFIX")]
    url_prefix: Option<String>,
    /// Write source maps for CSS and JS.
    #[arg(long)]
    source_maps: bool,
    /// Keep CSS and JS unminified (the browser targets still apply).
    #[arg(long)]
    no_minify: bool,
    /// Skip the .br, .gz and .zst files.
    #[arg(long)]
    no_precompress: bool,
    /// Cheaper compression settings (brotli 5, gzip 6, zstd 3).
    #[arg(long)]
    fast: bool,
    /// Browserslist queries for CSS, comma-separated [default: defaults].
    #[arg(long, value_name = "QUERY")]
    targets: Option<String>,
    /// The content-addressed cache (default DIST/.perf-cache).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Print no size table and no progress.
    #[arg(long)]
    quiet: bool,
    /// The askama templates: writes each template's critical CSS as
    /// `_perf/critical/<template>.css` too.
    #[arg(long, value_name = "DIR")]
    templates_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Build(args) => build(args),
        Command::Critical(args) => critical(args),
    }
}

fn critical(args: CriticalArgs) -> ExitCode {
    let started = std::time::Instant::now();
    let mut builder = perf_build::Builder::new()
        .cargo_instructions(false)
        .root(".")
        .static_dir(&args.static_dir)
        .templates_dir(&args.templates_dir)
        .url_prefix(args.url_prefix)
        .targets(args.targets.split(',').map(str::trim))
        .precompress(false)
        .check_templates(false)
        .critical(perf_build::CriticalConfig {
            safelist: args.safelist.clone(),
            ..perf_build::CriticalConfig::default()
        });
    if let Some(dir) = &args.cache_dir {
        builder = builder.cache_dir(dir);
    }
    let fallback = std::env::temp_dir().join("perf-build-cache");
    let result = builder
        .critical_css(&args.template, &fallback)
        .and_then(|found| {
            let (css, sheets) = found.unwrap_or_default();
            if args.out.as_os_str() == "-" {
                print!("{css}");
            } else {
                std::fs::write(&args.out, &css).map_err(|e| perf_build::Error::Io {
                    path: args.out.clone(),
                    source: e,
                })?;
            }
            Ok((css, sheets))
        });
    match result {
        Ok((css, sheets)) => {
            if !args.quiet && args.out.as_os_str() != "-" {
                let gzip = {
                    use std::io::Write as _;
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                    let _ = e.write_all(css.as_bytes());
                    e.finish().map(|v| v.len()).unwrap_or(0)
                };
                if sheets.is_empty() {
                    eprintln!(
                        "{} links no stylesheet: wrote an empty {}",
                        args.template,
                        args.out.display()
                    );
                } else {
                    eprintln!(
                        "wrote {} ({} bytes, {} gzip) from {} in {:.0?}",
                        args.out.display(),
                        css.len(),
                        gzip,
                        sheets.join(", "),
                        started.elapsed()
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", e.render(Path::new(".")));
            ExitCode::FAILURE
        }
    }
}

fn build(args: BuildArgs) -> ExitCode {
    // With a manifest, the package's folder is the root its settings are relative to, and
    // the paths given here are the current directory's; errors are shown relative to it.
    let (builder, shown_from) = match &args.manifest_path {
        Some(manifest) => (
            perf_build::Builder::from_manifest_path(manifest),
            std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        ),
        None => (Ok(perf_build::Builder::new().root(".")), PathBuf::from(".")),
    };
    let mut builder = match builder {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}", e.render(&shown_from));
            return ExitCode::FAILURE;
        }
    };
    let given = |p: &Path| match &args.manifest_path {
        Some(_) => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
        None => p.to_path_buf(),
    };
    builder = builder
        .cargo_instructions(false)
        // No template checks outside Cargo: there is no askama crate to check against.
        .check_templates(false);
    if let Some(dir) = &args.static_dir {
        builder = builder.static_dir(given(dir));
    }
    if let Some(prefix) = args.url_prefix {
        builder = builder.url_prefix(prefix);
    }
    if args.source_maps {
        builder = builder.source_maps(true);
    }
    if args.no_minify {
        builder = builder.minify(false);
    }
    if args.no_precompress {
        builder = builder.precompress(false);
    }
    if let Some(targets) = &args.targets {
        builder = builder.targets(targets.split(',').map(str::trim));
    }
    if let Some(dir) = &args.templates_dir {
        let critical = perf_build::CriticalConfig {
            enabled: true,
            ..builder.config().critical.clone()
        };
        builder = builder.templates_dir(given(dir)).critical(critical);
    } else if args.manifest_path.is_none() {
        builder = builder.critical(perf_build::CriticalConfig {
            enabled: false,
            ..perf_build::CriticalConfig::default()
        });
    }
    if args.fast {
        builder = builder.quality(perf_build::Quality::Fast);
    }
    if let Some(dir) = &args.cache_dir {
        builder = builder.cache_dir(given(dir));
    }
    // A bar on a terminal only (indicatif draws nothing elsewhere), and only once a run
    // lasts long enough to need one.
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} building assets [{bar:30}] {pos}/{len} {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let result = builder.build_dist(&args.dist_dir, &progress);
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            if !args.quiet {
                print!("{}", report.table());
            } else {
                for w in &report.warnings {
                    eprintln!("warning: {w}");
                }
            }
            println!("wrote {}", args.dist_dir.join("manifest.json").display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", e.render(&shown_from));
            ExitCode::FAILURE
        }
    }
}
