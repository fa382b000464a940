//! A headless Chromium and one page of it, driven over the DevTools protocol on a plain
//! socket: commands, their answers and the events in between. Chromium is required
//! (`.ci/run` installs Debian's package); `PERF_TEST_CHROMIUM` names another binary.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// A running Chromium, killed on drop, and the DevTools connection to its page.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    page: WebSocket<TcpStream>,
    next_id: u64,
    /// Events received while waiting for answers, oldest first.
    pub events: Vec<Value>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Chromium (`PERF_TEST_CHROMIUM`, else `chromium` on the `PATH`) with a fresh
    /// profile and a 1000×800 window, and attaches to its page; panics when it cannot.
    pub fn launch() -> Browser {
        let chromium = std::env::var("PERF_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1000,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {chromium} (install Debian's chromium, or set PERF_TEST_CHROMIUM): {e}"
                )
            });
        // Chromium writes the port it chose into the profile once it listens.
        let port_file: PathBuf = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u16>().ok()))
            {
                break port;
            }
            assert!(Instant::now() < deadline, "Chromium did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        let targets = reqwest::blocking::get(format!("http://127.0.0.1:{port}/json/list"))
            .unwrap()
            .bytes()
            .unwrap();
        let targets: Value = serde_json::from_slice(&targets).unwrap();
        let ws = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (page, _) = tungstenite::client(ws.as_str(), stream).unwrap();
        let mut browser = Browser {
            child,
            _profile: profile,
            page,
            next_id: 0,
            events: Vec::new(),
        };
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    /// Sends a command and returns its result; events that arrive meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params) {
            Ok(result) => result,
            Err(error) => panic!("{method}: {error}"),
        }
    }

    /// Sends a command and returns its result, or the error it answered (a command can
    /// fail when the page navigates meanwhile); events that arrive meanwhile are kept.
    pub fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.page.send(Message::text(message)).unwrap();
        loop {
            let message: Value = match self.page.read().unwrap() {
                Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
                _ => continue,
            };
            if message["id"] == id {
                if !message["error"].is_null() {
                    return Err(message["error"].clone());
                }
                return Ok(message["result"].clone());
            }
            self.events.push(message);
        }
    }

    /// Waits for the event `method` (one received earlier included) and returns its
    /// parameters.
    pub fn wait_event(&mut self, method: &str) -> Value {
        loop {
            if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
                return self.events.remove(i)["params"].clone();
            }
            let message: Value = match self.page.read() {
                Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap(),
                Ok(_) => continue,
                Err(e) => panic!("waiting for {method}: {e}; events: {:#?}", self.events),
            };
            self.events.push(message);
        }
    }

    /// Loads `url` and waits for its load event; earlier events are dropped.
    pub fn navigate(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_event("Page.loadEventFired");
    }

    /// The value of a JavaScript expression (a promise is awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
        );
        assert!(r["exceptionDetails"].is_null(), "{expression}: {r:#}");
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it is true (10 s at most).
    pub fn eval_until(&mut self, expression: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.eval(expression) == json!(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// A real left click in the middle of the element `selector`: the browser's input
    /// pipeline, event timing included, sees it as a user's.
    pub fn click(&mut self, selector: &str) {
        let at = self.eval(&format!(
            "(() => {{ const r = document.querySelector({selector:?}).getBoundingClientRect(); \
             return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
    }
}
