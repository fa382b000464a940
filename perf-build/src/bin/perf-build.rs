//! `perf-build`: the asset pipeline outside Cargo. `perf-build build --static-dir DIR
//! --dist-dir DIR` writes hashed files, `.br`/`.gz`/`.zst` siblings and a
//! `manifest.json`, and prints a size table; `perf-build --help` lists the rest.

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
    /// The assets to build.
    #[arg(long, value_name = "DIR")]
    static_dir: PathBuf,
    /// Where the hashed files and manifest.json go.
    #[arg(long, value_name = "DIR")]
    dist_dir: PathBuf,
    /// URL prefix the assets are served under.
    #[arg(long, value_name = "PREFIX", default_value = "/static")]
    url_prefix: String,
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
    /// Browserslist queries for CSS, comma-separated.
    #[arg(long, value_name = "QUERY", default_value = "defaults")]
    targets: String,
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
    let mut builder = perf_build::Builder::new()
        .cargo_instructions(false)
        .root(".")
        .static_dir(&args.static_dir)
        .url_prefix(args.url_prefix)
        .source_maps(args.source_maps)
        .minify(!args.no_minify)
        .precompress(!args.no_precompress)
        .targets(args.targets.split(',').map(str::trim))
        // No template checks outside Cargo: there is no askama crate to check against.
        .check_templates(false)
        .critical(perf_build::CriticalConfig {
            enabled: args.templates_dir.is_some(),
            ..perf_build::CriticalConfig::default()
        });
    if let Some(dir) = &args.templates_dir {
        builder = builder.templates_dir(dir);
    }
    if args.fast {
        builder = builder.quality(perf_build::Quality::Fast);
    }
    if let Some(dir) = &args.cache_dir {
        builder = builder.cache_dir(dir);
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
            eprintln!("{}", e.render(Path::new(".")));
            ExitCode::FAILURE
        }
    }
}
