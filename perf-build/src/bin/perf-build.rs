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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Build(args) => build(args),
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
        .check_templates(false);
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
