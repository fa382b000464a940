//! `perf-build build --static-dir DIR --dist-dir DIR [--source-maps]`: the asset
//! pipeline outside Cargo. Writes hashed files, `.br`/`.gz`/`.zst` siblings and a
//! `manifest.json`, and prints a size table.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

const USAGE: &str = "\
usage: perf-build build --static-dir DIR --dist-dir DIR [options]

options:
  --static-dir DIR     the assets to build (required)
  --dist-dir DIR       where hashed files and manifest.json go (required)
  --url-prefix PREFIX  URL prefix of the assets (default /static)
  --source-maps        write source maps for CSS and JS
  --no-minify          copy CSS and JS unminified
  --no-precompress     skip the .br, .gz and .zst files
  --fast               cheaper compression settings
  --targets QUERY      browserslist query for CSS (default \"defaults\")
  --cache-dir DIR      content-addressed cache (default DIST/.perf-cache)
  --quiet              print no size table
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("perf-build: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("build") => {}
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return Ok(());
        }
        Some("-V" | "--version") => {
            println!("perf-build {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        _ => return Err(format!("expected a command\n\n{USAGE}")),
    }
    let mut builder = perf_build::Builder::new()
        .cargo_instructions(false)
        .root(".");
    let mut dist: Option<PathBuf> = None;
    let mut static_dir = false;
    let mut quiet = false;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        builder = match arg.as_str() {
            "--static-dir" => {
                static_dir = true;
                builder.static_dir(value(arg)?)
            }
            "--dist-dir" => {
                dist = Some(value(arg)?.into());
                builder
            }
            "--url-prefix" => builder.url_prefix(value(arg)?),
            "--source-maps" => builder.source_maps(true),
            "--no-minify" => builder.minify(false),
            "--no-precompress" => builder.precompress(false),
            "--fast" => builder.quality(perf_build::Quality::Fast),
            "--targets" => builder.targets(
                value(arg)?
                    .split(',')
                    .map(str::trim)
                    .map(String::from)
                    .collect::<Vec<_>>(),
            ),
            "--cache-dir" => builder.cache_dir(value(arg)?),
            "--quiet" => {
                quiet = true;
                builder
            }
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        };
    }
    let Some(dist) = dist.filter(|_| static_dir) else {
        return Err(format!(
            "--static-dir and --dist-dir are required\n\n{USAGE}"
        ));
    };
    // No template checks outside Cargo: there is no askama crate to check against.
    let builder = builder.check_templates(false);
    let started = Instant::now();
    let last = Mutex::new(Instant::now());
    let progress = |done: usize, total: usize| {
        if quiet || started.elapsed().as_millis() < 1000 {
            return;
        }
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed().as_millis() >= 250 || done == total {
            *last = Instant::now();
            eprint!("\r[{done}/{total}] building assets…");
            let _ = std::io::stderr().flush();
        }
    };
    let report = builder
        .build_dist(&dist, &progress)
        .map_err(|e| e.to_string())?;
    if started.elapsed().as_millis() >= 1000 && !quiet {
        eprintln!();
    }
    if !quiet {
        print!("{}", report.table());
    }
    println!("wrote {}", dist.join("manifest.json").display());
    Ok(())
}
