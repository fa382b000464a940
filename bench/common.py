"""Shared helpers of the benchmark scripts: paths, the npm corpus and peers, hyperfine, and
for the browser benchmarks the example app on a free port, headless Chromium and a small
DevTools-protocol client."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
NODE_BIN = os.path.join(BENCH, "node_modules", ".bin")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def run(cmd, **kw):
    print("+", cmd if isinstance(cmd, str) else " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, shell=isinstance(cmd, str), **kw)


_apt_updated = False


def need(tool, package):
    global _apt_updated
    present = os.path.exists(tool) if tool.startswith("/") else shutil.which(tool) is not None
    if not present:
        if not _apt_updated:
            run(["apt-get", "update", "-qq"])
            _apt_updated = True
        run(["apt-get", "install", "-y", "-qq", package])


def npm_install():
    """The corpus and the peers, pinned in bench/package.json (installed again when one of
    them is missing, e.g. after a package was added)."""
    with open(os.path.join(BENCH, "package.json")) as f:
        deps = json.load(f).get("dependencies", {})
    missing = [d for d in deps if not os.path.exists(os.path.join(BENCH, "node_modules", d, "package.json"))]
    if missing or not os.path.exists(os.path.join(NODE_BIN, "esbuild")):
        run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=BENCH)


def release_bins():
    """Every binary of the workspace in release, in one cargo invocation: building them
    together keeps one feature set, so swc is compiled once."""
    run(["cargo", "build", "--release", "-q", "--workspace", "--bins"], cwd=ROOT)


def perf_build_cli():
    """The release CLI, or the one `PERF_BUILD_CLI` names (figures of bytes do not depend
    on the profile: perf-build and its engines are optimised in every profile)."""
    if os.environ.get("PERF_BUILD_CLI"):
        return os.environ["PERF_BUILD_CLI"]
    release_bins()
    return os.path.join(TARGET, "release", "perf-build")


def hyperfine(commands, runs=5, prepare=None, warmup=1):
    """Median wall seconds of each command (hyperfine, one run, through sh)."""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = ["hyperfine", "--runs", str(runs), "--warmup", str(warmup), "--export-json", path]
    if prepare:
        cmd += ["--prepare", prepare]
    run(cmd + commands, stdout=subprocess.DEVNULL)
    with open(path) as f:
        data = json.load(f)
    os.unlink(path)
    return [r["median"] for r in data["results"]]


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


# --- the example app and the browser (page_weight.py, fcp.py) ------------------------------

# The DevTools client's venv: bench/out/venv-cdp.
CDP_VENV = os.path.join(OUT, "venv-cdp")
CDP_PACKAGES = ["websocket-client==1.9.2"]


def in_venv(venv, packages, script):
    """Re-runs `script` inside `venv`, creating it with `packages` first if needed."""
    py = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    stamp = os.path.join(venv, "packages.txt")
    want = "\n".join(packages)
    if not os.path.exists(stamp) or open(stamp).read() != want:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages], check=True)
        with open(stamp, "w") as f:
            f.write(want)
    os.execv(py, [py, os.path.abspath(script), *sys.argv[1:]])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"the app exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer in {timeout:.0f} s")


def start_app(binary, scratch, name="app", env=None, copy=True, timeout=30.0, port=None):
    """Starts the example app in `scratch` (a copy of `binary` there, unless `copy` is
    false) on `port` (a free one by default), with its database and log named after
    `name` and `env` over this environment; returns (process, URL of /) once it answers."""
    app = binary
    if copy:
        app = os.path.join(scratch, "example-app")
        shutil.copy2(binary, app)
    port = port or free_port()
    full_env = dict(os.environ, PORT=str(port), HOST="127.0.0.1",
                    DATABASE_URL=os.path.join(scratch, "ia.db" if name == "app" else f"{name}.db"))
    full_env.update(env or {})
    log = open(os.path.join(scratch, f"{name}.log"), "wb")
    proc = subprocess.Popen([app], env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=scratch)
    url = f"http://127.0.0.1:{port}/"
    wait_http(url, timeout=timeout, proc=proc)
    return proc, url


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]


class Cdp:
    def __init__(self, ws_url):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events = []  # (monotonic time, method, params)

    def _read(self, timeout):
        import websocket

        self.ws.settimeout(timeout)
        try:
            msg = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        if "method" in msg:
            self.events.append((time.monotonic(), msg["method"], msg.get("params", {})))
        return msg

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = self._read(max(0.05, deadline - time.monotonic()))
            if msg and msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise RuntimeError(f"{method}: no answer in 30 s")

    def pump(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._read(max(0.01, deadline - time.monotonic()))

    def navigate_and_settle(self, url, idle_seconds, timeout, on_event=None, poll=0.1):
        """Navigates to `url` (events before it dropped) and waits for the load event
        followed by `idle_seconds` with no request in flight, `timeout` at most.
        `on_event(ts, method, params)` sees every event. Returns (t0, load event time)."""
        self.events.clear()
        t0 = time.monotonic()
        self.call("Page.navigate", url=url)
        inflight, loaded_at, last_activity, seen = set(), None, time.monotonic(), 0
        while True:
            self.pump(poll)
            for ts, method, p in self.events[seen:]:
                if on_event:
                    on_event(ts, method, p)
                if method == "Network.requestWillBeSent":
                    inflight.add(p["requestId"])
                    last_activity = ts
                elif method in ("Network.loadingFinished", "Network.loadingFailed"):
                    inflight.discard(p["requestId"])
                    last_activity = ts
                elif method == "Page.loadEventFired" and loaded_at is None:
                    loaded_at = ts
            seen = len(self.events)
            now = time.monotonic()
            if loaded_at is not None and not inflight and now - max(last_activity, loaded_at) >= idle_seconds:
                return t0, loaded_at
            if now - t0 > timeout:
                print(f"  warning: the page was not idle after {timeout:.0f} s ({len(inflight)} in flight)",
                      file=sys.stderr)
                return t0, loaded_at

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


class Chromium:
    def __init__(self, scratch, flags=None):
        self.profile = tempfile.mkdtemp(prefix="profile-", dir=scratch)
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        chromium = os.environ.get("CHROMIUM", "chromium")
        self.proc = subprocess.Popen(
            [chromium, *(CHROMIUM_FLAGS if flags is None else flags), f"--user-data-dir={self.profile}", "about:blank"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"chromium exited with {self.proc.returncode}: see {self.log.name}")
            if os.path.exists(port_file):
                lines = open(port_file).read().split("\n")
                if len(lines) >= 2 and lines[0].strip():
                    self.port = int(lines[0])
                    break
            if time.monotonic() > deadline:
                self.stop()
                sys.exit("chromium wrote no DevToolsActivePort in 30 s")
            time.sleep(0.1)
        deadline = time.monotonic() + 15
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                self.page_ws = pages[0]["webSocketDebuggerUrl"]
                break
            if time.monotonic() > deadline:
                self.stop()
                sys.exit("chromium shows no page target")
            time.sleep(0.1)

    def version(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/version", timeout=5) as r:
            return json.load(r).get("Browser", "")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                # Its own process group (start_new_session): the renderers and GPU process go too.
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

# --- a page's own server in front of the app ------------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "content-length"}


def forward(app, h):
    """Forwards the request `h` (a BaseHTTPRequestHandler) to the app at `app` (a urlsplit
    result) and writes its answer back: what a bench's own page server does not serve."""
    import http.client
    length = int(h.headers.get("Content-Length") or 0)
    body = h.rfile.read(length) if length else None
    headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
    headers["Host"] = app.netloc
    conn = http.client.HTTPConnection(app.hostname, app.port, timeout=30)
    try:
        conn.request(h.command, h.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        h.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("date", "server"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD" and r.status not in (204, 304):
            h.wfile.write(data)
    finally:
        conn.close()


def throttle(cdp, conditions):
    """Network.emulateNetworkConditions (deprecated in recent Chromium, still there in 156);
    the rule-based successor when it is gone. Returns the method used."""
    try:
        cdp.call("Network.emulateNetworkConditions", **conditions)
        return "Network.emulateNetworkConditions"
    except RuntimeError:
        rule = {k: v for k, v in conditions.items() if k != "offline"}
        cdp.call("Network.emulateNetworkConditionsByRule", offline=False,
                 matchedNetworkConditions=[dict(urlPattern="", **rule)])
        return "Network.emulateNetworkConditionsByRule"
