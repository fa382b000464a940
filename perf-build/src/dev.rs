//! The build side of perf-rt's development mode.
//!
//! A debug build of an application records how Cargo ran its build script
//! ([`DevScript`], written into the generated code). With `PERF_DEV=1`, perf-rt runs that
//! build script again, with [`ENV_DIR`] set: then [`Builder::run`](crate::Builder::run)
//! does not write Rust code but stays up, builds the assets through the same pipeline and
//! configuration (cached by content, so only what changed is redone), writes each asset
//! under `files/<sha256>` of that directory, and tells perf-rt on standard output:
//!
//! - `perf-dev:building` when a watched file changed and a build starts;
//! - `perf-dev:built {…}` with the assets (JSON) when it succeeded;
//! - `perf-dev:error {…}` with the rendered error (JSON) when it failed.
//!
//! A build during which a watched file changed says neither (see [`Outcome::Stale`]).
//!
//! It watches the static and templates directories and the npm files the bundle read, and
//! exits when its standard input closes (perf-rt, or its process, went away).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::cache::write_atomic;
use crate::config::OverBudget;
use crate::pipeline::Output;
use crate::{Builder, Error};

/// The directory perf-rt gives the build script to write into; set only by perf-rt.
pub const ENV_DIR: &str = "PERF_BUILD_DEV_DIR";

/// How often the watched files are looked at: a `stat` of each, a few dozen in a typical
/// application, well under a millisecond of work (about 0.3% of a core at this rate).
const POLL: Duration = Duration::from_millis(10);

/// Editors save in several steps (truncate, write, rename), each a system call after the
/// other: a change is built once the files have stayed the same for this long.
const SETTLE: Duration = Duration::from_millis(5);

/// How long a file that an edit left empty is given to be written again. Editors that
/// save in place truncate first, and the write may come later than [`SETTLE`] on a busy
/// machine: building then would serve an empty stylesheet (as Vite does, an empty read
/// waits for the next write). A file still empty after this was emptied on purpose.
const EMPTIED_WAIT: Duration = Duration::from_millis(250);

/// The variables of the build script's environment that a later run needs: those Cargo
/// sets for build scripts and the pipeline's own. Nothing else of the developer's
/// environment is recorded (it may hold secrets).
fn recorded(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "NUM_JOBS",
        "OPT_LEVEL",
        "DEBUG",
        "PROFILE",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_LINKER",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ];
    const PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_CFG_", "CARGO_FEATURE_", "PERF_BUILD_"];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// How to run the build script again, as the generated code records it.
#[derive(Debug, Clone)]
pub(crate) struct DevScript {
    /// The build script's executable.
    pub program: String,
    /// The recorded variables, sorted.
    pub env: Vec<(String, String)>,
}

/// The running build script and its recorded environment; `None` when the executable's
/// path is not UTF-8.
pub(crate) fn script() -> Option<DevScript> {
    let program = std::env::current_exe().ok()?.to_str()?.to_string();
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| recorded(k) && k != ENV_DIR)
        .collect();
    env.sort();
    Some(DevScript { program, env })
}

/// What a development build leaves to the real one: budgets (they count compressed bytes,
/// and a page over one is still worth seeing), compression (perf-rt serves identity on
/// loopback), failing on critical CSS over its budget.
fn relax(builder: &mut Builder) {
    builder.cargo = false;
    let config = &mut builder.config;
    config.precompress = false;
    config.budgets.targets.clear();
    config.critical.over_budget = OverBudget::Warn;
}

/// Builds, reports, watches, rebuilds: never returns. The process exits when standard
/// input reaches its end.
pub(crate) fn serve(mut builder: Builder, dir: PathBuf) -> ! {
    relax(&mut builder);
    std::thread::spawn(|| {
        // Nothing is ever sent: the end of input means perf-rt is gone.
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let roots = [&builder.config.static_dir, &builder.config.templates_dir]
        .into_iter()
        .map(|d| builder.root.join(d))
        .collect();
    // Taken before each build, so that an edit made while it runs starts the next one.
    let mut watched = Snapshot::take(roots, Vec::new());
    let mut only_css = false;
    let mut stale_runs = 0;
    loop {
        // After a few stale builds in a row (a file that never stops changing), the last
        // one is reported even so: a build that is never shown helps nobody.
        let report_stale = stale_runs >= STALE_LIMIT;
        // A stylesheet edit is shown by swapping the stylesheet, which needs no critical
        // CSS: a first build without it (about half the time) is reported at once, as
        // partial, then the whole build for the pages loaded after. A failed or stale
        // first build ends the round: the whole one would fail the same way, or read the
        // same edit mid-save.
        let first = only_css.then(|| {
            let mut quick = builder.clone();
            quick.config.critical.enabled = false;
            build_and_report(&quick, &dir, true, &watched, report_stale)
        });
        let last = match first {
            None | Some(Outcome::Built(_)) => {
                build_and_report(&builder, &dir, false, &watched, report_stale)
            }
            Some(other) => other,
        };
        match last {
            // The npm files the bundle read: a failed build keeps watching the last good
            // build's.
            Outcome::Built(read) => {
                watched.watch_also(read);
                stale_runs = 0;
            }
            Outcome::Failed => stale_runs = 0,
            Outcome::Stale => stale_runs += 1,
        }
        let after = next_change(watched.clone());
        only_css = after
            .changed_since(&watched)
            .all(|p| p.extension().is_some_and(|e| e == "css"));
        watched = after;
        say("perf-dev:building");
    }
}

/// How many stale builds in a row are dropped before one is reported even so.
const STALE_LIMIT: u32 = 3;

/// What became of one build.
#[derive(Debug)]
enum Outcome {
    /// Reported; the files outside the watched directories that it read.
    Built(Vec<PathBuf>),
    /// Reported as an error.
    Failed,
    /// Not reported: a watched file changed while it ran, so it may have read an edit
    /// mid-save (an empty stylesheet, half a script). The change starts the next build.
    Stale,
}

/// One build, written and reported (`partial` when it left the critical CSS out) unless
/// the files `inputs` saw changed while it ran and `report_stale` is off.
fn build_and_report(
    builder: &Builder,
    dir: &Path,
    partial: bool,
    inputs: &Snapshot,
    report_stale: bool,
) -> Outcome {
    let (outcome, line) = build(builder, dir, partial, inputs, report_stale, &|_, _| {});
    if let Some(line) = line {
        say(&line);
    }
    outcome
}

/// [`build_and_report`] without the report: the outcome and the line to say, if any.
fn build(
    builder: &Builder,
    dir: &Path,
    partial: bool,
    inputs: &Snapshot,
    report_stale: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Outcome, Option<String>) {
    let outcome = builder.pipeline(None, progress);
    // Before anything is written: a dropped build leaves nothing behind.
    if !report_stale && inputs.again().stamps != inputs.stamps {
        return (Outcome::Stale, None);
    }
    let outcome = outcome.and_then(|output| write(dir, &output).map(|()| output));
    match outcome {
        Ok(output) => {
            let line = format!(
                "perf-dev:built {}",
                manifest(&output, &builder.config.url_prefix, partial)
            );
            (Outcome::Built(output.watched), Some(line))
        }
        Err(e) => {
            let line = format!(
                "perf-dev:error {}",
                serde_json::json!({ "message": e.render(&builder.root) })
            );
            (Outcome::Failed, Some(line))
        }
    }
}

/// Waits until a watched file changes and the editor is done with it.
fn next_change(watched: Snapshot) -> Snapshot {
    loop {
        std::thread::sleep(POLL);
        let mut now = watched.again();
        if now.stamps != watched.stamps {
            let deadline = Instant::now() + EMPTIED_WAIT;
            loop {
                std::thread::sleep(SETTLE);
                let again = now.again();
                let settled = again.stamps == now.stamps;
                now = again;
                if settled && (!now.emptied_since(&watched) || Instant::now() >= deadline) {
                    return now;
                }
            }
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Every asset's bytes under `files/<sha256>`, once: a file already there has these bytes.
fn write(dir: &Path, output: &Output) -> Result<(), Error> {
    let files = dir.join("files");
    for a in &output.assets {
        let path = files.join(&a.sha256);
        if !path.exists() {
            write_atomic(&path, &a.identity).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// The assets perf-rt serves, as one line of JSON.
fn manifest(output: &Output, prefix: &str, partial: bool) -> String {
    let assets: Vec<serde_json::Value> = output
        .assets
        .iter()
        .map(|a| {
            serde_json::json!({
                "logical": a.logical,
                "hashed": a.hashed,
                "url": format!("{prefix}/{}", crate::refs::url_encode(&a.hashed)),
                "type": a.content_type,
                "integrity": a.integrity,
                "sha256": a.sha256,
            })
        })
        .collect();
    serde_json::json!({
        "assets": assets,
        "partial": partial,
        "warnings": output.warnings,
        "elapsed_ms": output.elapsed.as_secs_f64() * 1e3,
        "cache_hits": output.cache_hits,
        "cache_misses": output.cache_misses,
    })
    .to_string()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(_) => out.push(path),
            Err(_) => {}
        }
    }
}

/// The modification time and length of every watched file.
#[derive(Clone, Default)]
struct Snapshot {
    roots: Vec<PathBuf>,
    extra: Vec<PathBuf>,
    stamps: HashMap<PathBuf, Option<(SystemTime, u64)>>,
}

impl Snapshot {
    fn take(roots: Vec<PathBuf>, extra: Vec<PathBuf>) -> Snapshot {
        let mut files = extra.clone();
        for root in &roots {
            walk(root, &mut files);
        }
        let stamps = files
            .into_iter()
            .map(|f| {
                let stamp = std::fs::metadata(&f)
                    .ok()
                    .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
                (f, stamp)
            })
            .collect();
        Snapshot {
            roots,
            extra,
            stamps,
        }
    }

    /// Also watches `extra` (files outside the directories), from now on: the other
    /// files keep the stamps they had, so an edit since this snapshot still shows.
    fn watch_also(&mut self, mut extra: Vec<PathBuf>) {
        extra.sort();
        if extra == self.extra {
            return;
        }
        let fresh = Snapshot::take(Vec::new(), extra.clone());
        self.stamps
            .retain(|p, _| !self.extra.contains(p) || extra.contains(p));
        for (p, stamp) in fresh.stamps {
            self.stamps.entry(p).or_insert(stamp);
        }
        self.extra = extra;
    }

    /// The same files and directories looked at again.
    fn again(&self) -> Snapshot {
        Snapshot::take(self.roots.clone(), self.extra.clone())
    }

    /// Whether a file that had bytes in `earlier` has none now (mid-save, perhaps).
    fn emptied_since(&self, earlier: &Snapshot) -> bool {
        self.stamps.iter().any(|(p, s)| {
            matches!(s, Some((_, 0)))
                && matches!(earlier.stamps.get(p), Some(Some((_, len))) if *len > 0)
        })
    }

    /// The files whose stamp differs from `earlier`'s, or that only one of them has.
    fn changed_since<'a>(&'a self, earlier: &'a Snapshot) -> impl Iterator<Item = &'a Path> {
        let changed = self
            .stamps
            .iter()
            .filter(|(p, s)| earlier.stamps.get(*p) != Some(*s))
            .map(|(p, _)| p.as_path());
        let removed = earlier
            .stamps
            .keys()
            .filter(|p| !self.stamps.contains_key(*p))
            .map(PathBuf::as_path);
        changed.chain(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An editor that saves in place: truncates, and writes 60 ms later (a busy machine).
    /// The change is the written file, not the empty one in between; a file emptied on
    /// purpose is a change too, once it has stayed empty.
    #[test]
    fn a_file_truncated_then_written_is_seen_written() {
        let dir = tempfile::tempdir().unwrap();
        let css = dir.path().join("app.css");
        std::fs::write(&css, "body { color: red }").unwrap();
        let watched = Snapshot::take(vec![dir.path().to_path_buf()], Vec::new());
        let writer = std::thread::spawn({
            let css = css.clone();
            move || {
                std::thread::sleep(Duration::from_millis(30));
                let mut f = std::fs::File::create(&css).unwrap(); // truncates
                std::thread::sleep(Duration::from_millis(60));
                f.write_all(b"body { color: blue }").unwrap();
            }
        });
        let now = next_change(watched);
        writer.join().unwrap();
        let (_, len) = now.stamps[&css].unwrap();
        assert_eq!(len, "body { color: blue }".len() as u64);

        let watched = now;
        std::fs::File::create(&css).unwrap();
        let started = Instant::now();
        let now = next_change(watched);
        assert_eq!(now.stamps[&css].unwrap().1, 0);
        assert!(started.elapsed() >= EMPTIED_WAIT);
    }

    /// A build during which a watched file changed is not reported (it may have read the
    /// edit mid-save: here, the stylesheet emptied by an in-place save); the same build
    /// without the change is, and so is a stale one once `report_stale` says so.
    #[test]
    fn a_build_whose_inputs_changed_while_it_ran_is_not_reported() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        let css = root.join("static/css/app.css");
        std::fs::create_dir_all(css.parent().unwrap()).unwrap();
        std::fs::create_dir_all(root.join("templates")).unwrap();
        std::fs::write(&css, "body { color: red }\n").unwrap();
        let out = root.join("dev-out");
        let mut builder = Builder::new()
            .root(root)
            .static_dir("static")
            .templates_dir("templates")
            .cache_dir(root.join("cache"))
            .check_templates(false)
            .cargo_instructions(false);
        relax(&mut builder);
        let inputs = || {
            Snapshot::take(
                vec![root.join("static"), root.join("templates")],
                Vec::new(),
            )
        };

        let (outcome, line) = build(&builder, &out, false, &inputs(), false, &|_, _| {});
        assert!(matches!(outcome, Outcome::Built(_)), "{outcome:?}");
        assert!(line.unwrap().starts_with("perf-dev:built "));

        // Saved in place while the build runs: truncated (the write comes later).
        let before = inputs();
        let truncate = || drop(std::fs::File::create(&css).unwrap());
        let (outcome, line) = build(&builder, &out, false, &before, false, &|_, _| truncate());
        assert!(matches!(outcome, Outcome::Stale), "{outcome:?}");
        assert_eq!(line, None);

        // A dropped build writes nothing: here it read (and built) an edit made after the
        // snapshot, whose bytes are new.
        let written = || std::fs::read_dir(out.join("files")).unwrap().count();
        let files = written();
        let before = inputs();
        std::fs::write(&css, "body { color: green }\n").unwrap();
        let (outcome, _) = build(&builder, &out, false, &before, false, &|_, _| {});
        assert!(matches!(outcome, Outcome::Stale), "{outcome:?}");
        assert_eq!(written(), files, "a dropped build writes nothing");

        std::fs::write(&css, "body { color: blue }\n").unwrap();
        let before = inputs();
        let (outcome, line) = build(&builder, &out, false, &before, true, &|_, _| truncate());
        assert!(matches!(outcome, Outcome::Built(_)), "{outcome:?}");
        assert!(line.unwrap().starts_with("perf-dev:built "));
    }

    #[test]
    fn only_cargo_and_pipeline_variables_are_recorded() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_CFG_TARGET_OS",
            "OUT_DIR",
            "PERF_BUILD_STATIC_DIR",
            "RUSTC",
        ] {
            assert!(recorded(name), "{name}");
        }
        for name in [
            "HOME",
            "PATH",
            "AWS_SECRET_ACCESS_KEY",
            "CARGO_REGISTRY_TOKEN",
            "PERF_DEV",
        ] {
            assert!(!recorded(name), "{name}");
        }
    }
}
