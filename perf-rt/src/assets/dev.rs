//! Development mode: serves the assets from their source folder through perf-build's
//! pipeline, and reloads the page, or swaps its stylesheets, when a file changes. Debug
//! builds only: this module does not exist in a release build, whose generated code
//! records nothing of the build script either.
//!
//! With `PERF_DEV=1`, the first use of [`Assets::router`] starts the application's own
//! build script again (as Cargo ran it, with the environment Cargo gave it: perf-build
//! records both in the generated code), in perf-build's development mode: it builds the
//! assets with the same pipeline and configuration, cached by content, writes them under
//! `<OUT_DIR>/perf-dev/files/`, watches the files and builds again on every change (see
//! `perf_build`'s `dev` module for the protocol). This module then:
//!
//! - serves the latest build under the assets' prefix, `no-cache`: by its hashed URLs, by
//!   logical path, and by the embedded build's hashed URLs too (a request waits while a
//!   build runs, so it never gets bytes older than the files);
//! - rewrites every HTML page ([`Assets::dev_html`], which the suite installs): the
//!   embedded build's URLs and integrity values become the latest build's, each
//!   template's inline critical CSS becomes the latest, and the client script is added;
//! - sends events at `<prefix>/_perf/dev/events` (server-sent events) to that script:
//!   `css` when only stylesheets changed, `reload` otherwise, `build-error` with the
//!   rendered error when a build failed, `built` when one succeeded again.
//!
//! `PERF_DEV_ROOT` points the build at another copy of the package (a test's).

use std::collections::HashMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::{Assets, DevScript, Embedded, path};

/// The variable that turns development mode on (`1`, `true`, `yes` or `on`).
pub const ENV: &str = "PERF_DEV";
/// The package folder to build from, instead of the one the binary was built from.
pub const ENV_ROOT: &str = "PERF_DEV_ROOT";
/// What perf-build's development mode reads: where to write.
const ENV_DIR: &str = "PERF_BUILD_DEV_DIR";
/// The client script and the event stream, under the assets' prefix.
const CLIENT: &str = "_perf/dev/client.js";
const EVENTS: &str = "_perf/dev/events";
const CLIENT_SOURCE: &str = include_str!("../../assets/dev-client.js");
/// How long the first build may take before the embedded assets are served instead.
const FIRST_BUILD: Duration = Duration::from_secs(300);
/// How long a request waits for a running build.
const BUILD_WAIT: Duration = Duration::from_secs(60);

/// Whether `PERF_DEV` asks for development mode; a value that is not a flag says so.
pub(crate) fn wanted() -> bool {
    let Ok(value) = std::env::var(ENV) else {
        return false;
    };
    crate::env::flag(&value).unwrap_or_else(|| {
        eprintln!(
            "perf-rt: {ENV}={value:?} is neither true nor false (1/0, yes/no, on/off): \
             development mode stays off"
        );
        false
    })
}

/// One asset of a development build.
#[derive(Debug)]
struct DevAsset {
    url: String,
    content_type: HeaderValue,
    integrity: String,
    sha256: String,
    etag: HeaderValue,
    bytes: Bytes,
}

/// The latest development build.
#[derive(Debug, Default)]
struct State {
    /// Counts successful builds; the page carries the one it was rendered with.
    generation: u64,
    by_logical: HashMap<String, Arc<DevAsset>>,
    /// Hashed path to logical path.
    by_hashed: HashMap<String, String>,
    /// The last build's error, until a build succeeds.
    error: Option<String>,
}

/// What the page's script is told.
#[derive(Debug, Clone)]
struct Event {
    name: &'static str,
    data: String,
}

impl Event {
    /// `name` with the build's generation (and `extra` fields) as its JSON data.
    fn at(name: &'static str, generation: u64, extra: Option<(&str, Value)>) -> Event {
        let mut data = serde_json::json!({ "generation": generation });
        if let Some((key, value)) = extra {
            data[key] = value;
        }
        Event {
            name,
            data: data.to_string(),
        }
    }

    fn build_error(message: &str) -> Event {
        Event {
            name: "build-error",
            data: serde_json::json!({ "message": message }).to_string(),
        }
    }
}

/// A running development mode.
#[derive(Debug)]
pub(crate) struct Dev {
    assets: &'static Assets,
    instance: String,
    state: RwLock<State>,
    events: broadcast::Sender<Event>,
    /// `true` while a build runs.
    building: watch::Sender<bool>,
    /// `true` until the whole build is done: after a partial one (a stylesheet edit,
    /// built first without the critical CSS), pages wait for the rest.
    pages_building: watch::Sender<bool>,
    /// The embedded build's integrity values, to their logical paths.
    by_integrity: HashMap<&'static str, &'static str>,
    /// Kept so that its standard input stays open: the build exits when it closes.
    _child: Mutex<Child>,
}

impl Dev {
    /// Starts the build and waits for its first result; `None` (with a message on
    /// standard error) when it cannot run.
    pub(crate) fn start(assets: &'static Assets, script: &'static DevScript) -> Option<Arc<Dev>> {
        let warn = |why: &str| {
            eprintln!("perf-rt: PERF_DEV is set but {why}; serving the embedded assets");
            None
        };
        let recorded = |name: &str| script.env.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        if !std::path::Path::new(script.program).is_file() {
            return warn(&format!(
                "the build script that embedded them is gone ({}): run `cargo build` again",
                script.program
            ));
        }
        let dir = match recorded("OUT_DIR") {
            Some(out) => PathBuf::from(out).join("perf-dev"),
            None => std::env::temp_dir().join("perf-dev"),
        };
        let mut command = Command::new(script.program);
        command
            .envs(script.env.iter().copied())
            .env(ENV_DIR, &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(root) = std::env::var_os(ENV_ROOT) {
            let root = PathBuf::from(root);
            command
                .env("CARGO_MANIFEST_DIR", &root)
                .env("CARGO_MANIFEST_PATH", root.join("Cargo.toml"))
                .current_dir(&root);
        } else if let Some(root) = recorded("CARGO_MANIFEST_DIR") {
            // As Cargo runs build scripts.
            command.current_dir(root);
        }
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => return warn(&format!("the build script could not start: {e}")),
        };
        let stdout = child.stdout.take().expect("piped");
        let by_integrity = assets.iter().map(|a| (a.integrity, a.path)).collect();
        let instance = format!(
            "{:x}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let dev = Arc::new(Dev {
            assets,
            instance,
            state: RwLock::new(State::default()),
            events: broadcast::channel(64).0,
            building: watch::channel(true).0,
            pages_building: watch::channel(true).0,
            by_integrity,
            _child: Mutex::new(child),
        });
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = dev.clone();
        std::thread::Builder::new()
            .name("perf-dev".into())
            .spawn(move || reader.read(BufReader::new(stdout), dir, first_tx))
            .expect("a thread starts");
        match first_rx.recv_timeout(FIRST_BUILD) {
            Ok(()) => {
                eprintln!(
                    "perf-rt: development mode: assets served from {} and rebuilt on change",
                    std::env::var(ENV_ROOT)
                        .ok()
                        .or_else(|| recorded("CARGO_MANIFEST_DIR").map(str::to_string))
                        .unwrap_or_default()
                );
                Some(dev)
            }
            Err(_) => warn("the first development build did not finish"),
        }
    }

    /// Reads the build's reports until it exits.
    fn read(&self, lines: impl std::io::BufRead, dir: PathBuf, first: std::sync::mpsc::Sender<()>) {
        for line in lines.lines() {
            let Ok(line) = line else { break };
            if line == "perf-dev:building" {
                self.building.send_replace(true);
                self.pages_building.send_replace(true);
            } else if let Some(json) = line.strip_prefix("perf-dev:built ") {
                match serde_json::from_str::<Value>(json) {
                    Ok(manifest) => self.built(&manifest, &dir),
                    Err(e) => self.failed(format!("perf-build's report did not parse: {e}")),
                }
                let _ = first.send(());
            } else if let Some(json) = line.strip_prefix("perf-dev:error ") {
                let message = serde_json::from_str::<Value>(json)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| json.to_string());
                self.failed(message);
                let _ = first.send(());
            } else if !line.starts_with("cargo:") {
                // The application's build script may print for itself.
                eprintln!("[build.rs] {line}");
            }
        }
        self.failed(
            "the development build stopped: restart the application to start it again".into(),
        );
    }

    fn failed(&self, message: String) {
        eprintln!("perf-rt: development build failed:\n{message}");
        let _ = self.events.send(Event::build_error(&message));
        self.state.write().expect("not poisoned").error = Some(message);
        self.building.send_replace(false);
        self.pages_building.send_replace(false);
    }

    /// Takes a build's manifest as the state, and tells the pages what changed.
    fn built(&self, manifest: &Value, dir: &std::path::Path) {
        let empty = Vec::new();
        let listed = manifest["assets"].as_array().unwrap_or(&empty);
        let partial = manifest["partial"].as_bool().unwrap_or(false);
        let mut state = self.state.write().expect("not poisoned");
        // A partial build lacks what it left for later (the critical CSS): the last
        // build's stands in until the whole one arrives.
        let (mut by_logical, mut by_hashed) = if partial {
            (state.by_logical.clone(), state.by_hashed.clone())
        } else {
            (
                HashMap::with_capacity(listed.len()),
                HashMap::with_capacity(listed.len()),
            )
        };
        for a in listed {
            let field = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            let (logical, hashed, sha256) = (field("logical"), field("hashed"), field("sha256"));
            // An unchanged file keeps its bytes; a changed one is read once.
            let kept = state
                .by_logical
                .get(&logical)
                .filter(|old| old.sha256 == sha256)
                .map(|old| old.bytes.clone());
            let bytes = match kept {
                Some(bytes) => bytes,
                None => match std::fs::read(dir.join("files").join(&sha256)) {
                    Ok(b) => Bytes::from(b),
                    Err(e) => {
                        drop(state);
                        return self.failed(format!("reading the built {logical}: {e}"));
                    }
                },
            };
            let content_type = HeaderValue::from_str(&field("type"))
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            let etag =
                HeaderValue::from_str(&format!("\"dev-{}\"", &sha256[..sha256.len().min(16)]))
                    .expect("hex digits");
            by_hashed.insert(hashed.clone(), logical.clone());
            by_logical.insert(
                logical,
                Arc::new(DevAsset {
                    url: field("url"),
                    content_type,
                    integrity: field("integrity"),
                    sha256,
                    etag,
                    bytes,
                }),
            );
        }
        for w in manifest["warnings"].as_array().unwrap_or(&empty) {
            if let Some(w) = w.as_str() {
                eprintln!("perf-build: warning: {w}");
            }
        }
        if std::env::var_os("PERF_DEV_TRACE").is_some() {
            eprintln!(
                "perf-rt: development build{} in {:.1} ms ({} from the cache, {} done)",
                if partial { " (partial)" } else { "" },
                manifest["elapsed_ms"].as_f64().unwrap_or_default(),
                manifest["cache_hits"],
                manifest["cache_misses"]
            );
        }
        let event = changes(&state.by_logical, &by_logical, |logical| {
            self.assets.get(logical).map(|a| a.url)
        });
        state.error = None;
        let first = state.generation == 0;
        state.generation += 1;
        state.by_logical = by_logical;
        state.by_hashed = by_hashed;
        let generation = state.generation;
        drop(state);
        self.building.send_replace(false);
        self.pages_building.send_replace(partial);
        if first {
            return;
        }
        let _ = self.events.send(match event {
            // Nothing a page shows changed (the rest of a partial build, a template's
            // critical CSS): the pages learn the generation, and drop a build error.
            Change::None => Event::at("built", generation, None),
            Change::Css(sheets) => Event::at("css", generation, Some(("sheets", sheets.into()))),
            Change::Other => Event::at("reload", generation, None),
        });
    }

    /// Waits while a build runs (at most [`BUILD_WAIT`]): for a page, until the whole
    /// build is done.
    async fn settled(&self, page: bool) {
        let mut rx = if page {
            self.pages_building.subscribe()
        } else {
            self.building.subscribe()
        };
        let _ = tokio::time::timeout(BUILD_WAIT, rx.wait_for(|b| !*b)).await;
    }

    /// Answers a request under the assets' prefix.
    pub(crate) async fn respond(
        self: Arc<Self>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<axum::body::Body> {
        let mut res = self.answer(method, path, headers).await;
        res.extensions_mut().insert(Embedded);
        res
    }

    async fn answer(
        self: Arc<Self>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<axum::body::Body> {
        let head = match *method {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                let mut res = status(StatusCode::METHOD_NOT_ALLOWED);
                res.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return res;
            }
        };
        // Development builds may name files the embedded build did not have.
        let key = match path::relative_key(path, self.assets.prefix(), 1024) {
            Ok(key) => key.into_owned(),
            Err(code) => return status(code),
        };
        if key == EVENTS {
            return self.stream();
        }
        if key == CLIENT {
            let mut res = Response::new(if head {
                axum::body::Body::empty()
            } else {
                axum::body::Body::from(CLIENT_SOURCE)
            });
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return res;
        }
        self.settled(false).await;
        let Some(asset) = self.find(&key) else {
            return status(StatusCode::NOT_FOUND);
        };
        let mut res = Response::new(axum::body::Body::empty());
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::ETAG, asset.etag.clone());
        h.insert(header::CONTENT_TYPE, asset.content_type.clone());
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().trim_start_matches("W/") == asset.etag)
            });
        if matches {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return res;
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(asset.bytes.len()));
        if !head {
            *res.body_mut() = axum::body::Body::from(asset.bytes.clone());
        }
        res
    }

    /// The latest build's asset for a key: its hashed or logical path, or the hashed path
    /// of the same logical path in the embedded build or an earlier development build.
    fn find(&self, key: &str) -> Option<Arc<DevAsset>> {
        let state = self.state.read().expect("not poisoned");
        let logical = if let Some(logical) = state.by_hashed.get(key) {
            logical.clone()
        } else if state.by_logical.contains_key(key) {
            key.to_string()
        } else if let Some(entry) = self.assets.lookup(key) {
            entry.asset.path.to_string()
        } else {
            path::unhashed(key).find(|l| state.by_logical.contains_key(l))?
        };
        state.by_logical.get(&logical).cloned()
    }

    /// The event stream: `hello` first, then the last error if there is one, then every
    /// event; a comment every 15 seconds keeps proxies from closing it.
    fn stream(self: Arc<Self>) -> Response<axum::body::Body> {
        let (hello, error) = {
            let state = self.state.read().expect("not poisoned");
            (
                serde_json::json!({ "instance": self.instance, "generation": state.generation })
                    .to_string(),
                state.error.clone(),
            )
        };
        let mut first = format!("retry: 250\nevent: hello\ndata: {hello}\n\n");
        if let Some(message) = error {
            first.push_str(&sse(&Event::build_error(&message)));
        }
        let rx = self.events.subscribe();
        let stream =
            futures_util::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
                if let Some(first) = first {
                    return Some((
                        Ok::<_, std::convert::Infallible>(Bytes::from(first)),
                        (None, rx),
                    ));
                }
                let chunk = match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
                    Err(_) => ": keep-alive\n\n".to_string(),
                    Ok(Ok(event)) => sse(&event),
                    // Missed events: the page cannot know what changed.
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => sse(&Event {
                        name: "reload",
                        data: "{}".into(),
                    }),
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                };
                Some((Ok(Bytes::from(chunk)), (None, rx)))
            });
        let mut res = Response::new(axum::body::Body::from_stream(stream));
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }

    /// The page as the latest build would have it: see the module documentation.
    pub(crate) async fn html(&self, res: Response<axum::body::Body>) -> Response<axum::body::Body> {
        let is_html = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
        if !is_html || res.headers().contains_key(header::CONTENT_ENCODING) {
            return res;
        }
        self.settled(true).await;
        let (mut parts, body) = res.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let Ok(page) = std::str::from_utf8(&bytes) else {
            return Response::from_parts(parts, axum::body::Body::from(bytes));
        };
        let state = self.state.read().expect("not poisoned");
        let rewrite = Rewrite {
            prefix: self.assets.prefix(),
            url: &|key: &str| {
                let entry = self.assets.lookup(key).filter(|e| e.hashed)?;
                let now = state.by_logical.get(entry.asset.path)?;
                (now.url != entry.asset.url).then(|| now.url.clone())
            },
            integrity: &|value: &str| {
                let logical = self.by_integrity.get(value)?;
                Some(state.by_logical.get(*logical)?.integrity.clone())
            },
            critical: &|template: &str| {
                let css = state
                    .by_logical
                    .get(&format!("_perf/critical/{template}.css"))?;
                Some(String::from_utf8_lossy(&css.bytes).into_owned())
            },
            client: &format!(
                "<script src=\"{}/{CLIENT}\" data-instance=\"{}\" data-generation=\"{}\" defer",
                self.assets.prefix(),
                self.instance,
                state.generation
            ),
        };
        let page = rewrite.page(page);
        if let Some(link) = parts
            .headers
            .get(header::LINK)
            .and_then(|v| v.to_str().ok())
        {
            let link = rewrite.urls(link);
            if let Ok(v) = HeaderValue::try_from(link) {
                parts.headers.insert(header::LINK, v);
            }
        }
        drop(state);
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::ETAG);
        Response::from_parts(parts, axum::body::Body::from(page))
    }
}

fn status(code: StatusCode) -> Response<axum::body::Body> {
    let mut res = Response::new(axum::body::Body::empty());
    *res.status_mut() = code;
    res
}

fn sse(event: &Event) -> String {
    format!("event: {}\ndata: {}\n\n", event.name, event.data)
}

/// What a new build changed, for the pages.
#[derive(Debug, PartialEq)]
enum Change {
    None,
    /// Only stylesheets: for each, the URLs a page may link it by and the new URL.
    Css(Vec<Value>),
    /// Anything else: the page reloads.
    Other,
}

fn changes(
    old: &HashMap<String, Arc<DevAsset>>,
    new: &HashMap<String, Arc<DevAsset>>,
    embedded_url: impl Fn(&str) -> Option<&'static str>,
) -> Change {
    let mut sheets = Vec::new();
    let mut other = false;
    let removed = old.keys().filter(|k| !new.contains_key(*k));
    for logical in removed {
        // A source map changes with its file, which says what to do.
        other |= !logical.ends_with(".map");
    }
    let mut changed: Vec<(&String, &Arc<DevAsset>)> = new
        .iter()
        .filter(|(k, a)| old.get(*k).is_none_or(|o| o.sha256 != a.sha256))
        .collect();
    changed.sort_by(|a, b| a.0.cmp(b.0));
    for (logical, asset) in changed {
        // A source map changes with its file; the inline critical CSS goes when any
        // stylesheet changes.
        if logical.ends_with(".map") || logical.starts_with("_perf/critical/") {
            continue;
        }
        if asset.content_type.as_bytes().starts_with(b"text/css") {
            let mut from: Vec<String> = old
                .get(logical)
                .map(|o| o.url.clone())
                .into_iter()
                .collect();
            from.extend(embedded_url(logical).map(str::to_string));
            from.dedup();
            sheets.push(serde_json::json!({ "logical": logical, "from": from, "to": asset.url }));
        } else {
            other = true;
        }
    }
    if other {
        Change::Other
    } else if sheets.is_empty() {
        Change::None
    } else {
        Change::Css(sheets)
    }
}

/// Rewrites a page for the latest development build.
struct Rewrite<'a> {
    prefix: &'a str,
    /// The latest URL for a key under the prefix (percent-decoded), when it differs.
    url: &'a dyn Fn(&str) -> Option<String>,
    /// The latest integrity value for an embedded one.
    integrity: &'a dyn Fn(&str) -> Option<String>,
    /// The latest critical CSS of a template.
    critical: &'a dyn Fn(&str) -> Option<String>,
    /// The client's `<script` start tag, without the nonce and the closing `>`.
    client: &'a str,
}

impl Rewrite<'_> {
    fn page(&self, html: &str) -> String {
        let html = self.urls(html);
        let html = self.integrities(&html);
        let html = self.critical_css(&html);
        self.inject(&html)
    }

    /// Every URL under the prefix that names an asset of the embedded build.
    fn urls(&self, text: &str) -> String {
        let needle = format!("{}/", self.prefix);
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(&needle) {
            let before = rest[..at].chars().next_back();
            let starts_url = before.is_none_or(|c| "\"'(=, \n\t<".contains(c));
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| "\"'() ,<>\\?#\n\t".contains(c))
                .unwrap_or(tail.len());
            let url = &tail[..end];
            let replaced = starts_url
                .then(|| path::decode(&url[needle.len()..]).ok())
                .flatten()
                .and_then(|key| (self.url)(&key));
            out.push_str(replaced.as_deref().unwrap_or(url));
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }

    /// Every `sha384-…` value of an embedded asset.
    fn integrities(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("sha384-") {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            let end = 7 + tail[7..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || "+/=".contains(c)))
                .unwrap_or(tail.len() - 7);
            let value = &tail[..end];
            out.push_str((self.integrity)(value).as_deref().unwrap_or(value));
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }

    /// The content of each `<style data-perf-critical="template">`.
    fn critical_css(&self, html: &str) -> String {
        const MARK: &str = "data-perf-critical=\"";
        let mut out = String::with_capacity(html.len());
        let mut rest = html;
        while let Some(at) = rest.find(MARK) {
            let tail = &rest[at + MARK.len()..];
            let (Some(quote), Some(open_end)) = (tail.find('"'), tail.find('>')) else {
                break;
            };
            let Some(close) = tail[open_end..].find("</style>") else {
                break;
            };
            let template = &tail[..quote];
            let content_at = at + MARK.len() + open_end + 1;
            let content_end = at + MARK.len() + open_end + close;
            out.push_str(&rest[..content_at]);
            match (self.critical)(template) {
                Some(css) => out.push_str(&css),
                None => out.push_str(&rest[content_at..content_end]),
            }
            rest = &rest[content_end..];
        }
        out.push_str(rest);
        out
    }

    /// The client script, with the page's nonce, before `</head>` (or at the end).
    fn inject(&self, html: &str) -> String {
        let nonce = html.find(" nonce=\"").and_then(|at| {
            let value = &html[at + 8..];
            value.find('"').map(|end| &value[..end])
        });
        let mut tag = self.client.to_string();
        if let Some(nonce) = nonce {
            tag.push_str(&format!(" nonce=\"{nonce}\""));
        }
        tag.push_str("></script>");
        match html.find("</head>") {
            Some(at) => format!("{}{tag}{}", &html[..at], &html[at..]),
            None => format!("{html}{tag}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(url: &str, content_type: &'static str, sha256: &str) -> Arc<DevAsset> {
        Arc::new(DevAsset {
            url: url.into(),
            content_type: HeaderValue::from_static(content_type),
            integrity: String::new(),
            sha256: sha256.into(),
            etag: HeaderValue::from_static("\"x\""),
            bytes: Bytes::new(),
        })
    }

    #[test]
    fn only_stylesheets_changed_is_a_css_event_anything_else_a_reload() {
        let css = "text/css; charset=utf-8";
        let js = "text/javascript; charset=utf-8";
        let old: HashMap<String, _> = [
            (
                "css/app.css".to_string(),
                asset("/s/css/app.1.css", css, "a"),
            ),
            (
                "css/app.css.map".to_string(),
                asset("/s/m.1", "application/json", "b"),
            ),
            ("js/app.js".to_string(), asset("/s/js/app.1.js", js, "c")),
        ]
        .into();
        let embedded = |l: &str| (l == "css/app.css").then_some("/s/css/app.0.css");
        assert_eq!(changes(&old, &old, embedded), Change::None);
        let mut new = old.clone();
        new.insert("css/app.css".into(), asset("/s/css/app.2.css", css, "d"));
        new.insert(
            "css/app.css.map".into(),
            asset("/s/m.2", "application/json", "e"),
        );
        let Change::Css(sheets) = changes(&old, &new, embedded) else {
            panic!("a css event")
        };
        assert_eq!(
            sheets,
            [serde_json::json!({
                "logical": "css/app.css",
                "from": ["/s/css/app.1.css", "/s/css/app.0.css"],
                "to": "/s/css/app.2.css"
            })]
        );
        new.insert("js/app.js".into(), asset("/s/js/app.2.js", js, "f"));
        assert_eq!(changes(&old, &new, embedded), Change::Other);
        let mut fewer = old.clone();
        fewer.remove("js/app.js");
        assert_eq!(changes(&old, &fewer, embedded), Change::Other);
    }

    #[test]
    fn a_page_gets_the_latest_urls_integrity_critical_css_and_the_client() {
        let rewrite = Rewrite {
            prefix: "/static",
            url: &|key| match key {
                "css/app.11111111.css" => Some("/static/css/app.22222222.css".into()),
                "img/a b.33333333.png" => Some("/static/img/a%20b.44444444.png".into()),
                _ => None,
            },
            integrity: &|v| (v == "sha384-OLD+/=").then(|| "sha384-NEW".into()),
            critical: &|t| (t == "index.html").then(|| "body{color:red}".into()),
            client: "<script src=\"/static/_perf/dev/client.js\" defer",
        };
        let page = "<html><head><style nonce=\"n1\" data-perf-critical=\"index.html\">body{color:blue}</style>\
            <link rel=\"stylesheet\" href=\"/static/css/app.11111111.css\" integrity=\"sha384-OLD+/=\">\
            <script type=\"importmap\" nonce=\"n1\">{\"imports\":{\"/static/js/a.js\":\"/static/js/a.55555555.js\"}}</script>\
            </head><body><img srcset=\"/static/img/a%20b.33333333.png 480w, /static/other.png 2x\">\
            <p>see /static/css/app.11111111.css</p><a href=\"/statics/css/app.11111111.css\">x</a></body></html>";
        let out = rewrite.page(page);
        assert!(
            out.contains("data-perf-critical=\"index.html\">body{color:red}</style>"),
            "{out}"
        );
        assert!(
            out.contains("href=\"/static/css/app.22222222.css\" integrity=\"sha384-NEW\""),
            "{out}"
        );
        assert!(
            out.contains("srcset=\"/static/img/a%20b.44444444.png 480w, /static/other.png 2x\""),
            "{out}"
        );
        // Text is text too: a URL after a space is rewritten; another prefix is not.
        assert!(
            out.contains("<p>see /static/css/app.22222222.css</p>"),
            "{out}"
        );
        assert!(
            out.contains("href=\"/statics/css/app.11111111.css\""),
            "{out}"
        );
        assert!(out.contains("\"/static/js/a.55555555.js\""), "{out}");
        assert!(out.ends_with(
            "<script src=\"/static/_perf/dev/client.js\" defer nonce=\"n1\"></script></head><body>\
             <img srcset=\"/static/img/a%20b.44444444.png 480w, /static/other.png 2x\">\
             <p>see /static/css/app.22222222.css</p><a href=\"/statics/css/app.11111111.css\">x</a></body></html>"
        ), "{out}");
        // No head, no nonce: at the end, without one.
        assert_eq!(
            rewrite.page("<p>hi</p>"),
            "<p>hi</p><script src=\"/static/_perf/dev/client.js\" defer></script>"
        );
    }

    #[test]
    fn urls_are_percent_decoded() {
        assert_eq!(path::decode("img/a%20b.png").as_deref(), Ok("img/a b.png"));
        assert!(path::decode("bad%zz").is_err());
    }
}
