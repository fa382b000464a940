#!/usr/bin/env python3
"""The example app's pages with perf-build's chunks against Vite's, in Chromium (issue 11):
JavaScript requests and bytes on the first load of `/`, `/reflections/1` and `/about`.

    python3 bench/bundle.py                  # starts target/debug/example-app itself
    python3 bench/bundle.py --runs 7
    python3 bench/bundle.py --binary PATH    # another build of the app

Writes bench/out/bundle.md and bench/out/bundle.json. Build the app first (`cargo build -p
example-app`); the script builds the perf-build CLI (`cargo build -p perf-build --bin
perf-build`, or set PERF_BUILD_CLI) and installs Vite from npm (bench/bundle_inputs.py).

The three builds, from the same modules (the app's js/ and features/, date-fns from
example-app/node_modules; see bench/bundle_inputs.py):

- **ours**: perf-build's CLI, best compression. Its chunks have the same hashes as the ones
  the app embeds (checked: every script of the bundle a page asks for must be in the CLI's
  output, or the script stops).
- **Vite**: `vite build` (bench/bundle/vite.config.mjs: Vite's defaults, `input` = the five
  entries, `manifest: true`, `../_perf/code-splitter.js` aliased to perf-build's CodeSplitter
  source) with `preserveEntrySignatures: "exports-only"`.
- **Vite, default**: the same without `preserveEntrySignatures`. Vite's default for an app
  (false) keeps no export of an entry that no other chunk imports, so the two features,
  which only CodeSplitter imports (by a URL Vite cannot see), come out empty: the page works
  until a feature is opened. Shown because it is Vite's default; "Vite" is the build that
  works.

The pages: each load fetches the page from the running app. One small HTTP server per build
(loopback, HTTP/1.1) answers the three page URLs, the build's scripts, and forwards every
other request (stylesheets, images, the app's classic scripts: critical-CSS loader, image
optimizer, vitals) to the app, so the three differ only in the bundle's scripts:

- ours: the page as the app renders it; the bundle's scripts (the page's entry, the shared
  chunk, the CodeSplitter, chunks loaded on demand) served from the CLI's output.
- Vite: the same page with our `<link rel="modulepreload">`s and `<script type="module">`
  replaced by what Vite's HTML plugin writes for that entry (the entry's script and a
  modulepreload link for every chunk in its `imports` closure, from Vite's manifest), and
  the import map's content replaced by logical URL -> Vite's file for each module of the
  manifest (so `CodeSplitter.loadFeature` finds Vite's feature chunks, as a Vite user would
  have to arrange; the map's nonce kept for the page's Content-Security-Policy).

Every bundle script is sent compressed by the same tools for all three builds (brotli -q 11;
gzip -9 counted from the same files), not with the debug app's fast settings, and with the
same headers. Chromium: Debian's, headless, a fresh profile per load, cache disabled, mobile
viewport 412x915 @2.625x, network throttled as bench/fcp.py does (150 ms latency per
request, 1.6 Mbit/s down). A load ends at the load event followed by 1 s with no request
in flight. "JS requests" counts every request of type Script: the bundle's, and the app's
three classic scripts, the same on every page and build (listed apart). "Bytes" are body
bytes (Content-Length), brotli as Chromium received them, gzip the gzip -9 size of the same
files. Times, from the document's last byte: "bundle received", when the last of the bundle's
static scripts arrived; "ready", when site.js marks the page ready (`<html data-app-ready>`,
set once its modules have run and DOMContentLoaded has fired).

After the first load of `/about` in the first run, the script opens each feature through
the page's CodeSplitter (`loadFeature`) and reports whether the module has its `open`
function; on `/` it checks that the mood chart (a module loaded on demand) was drawn.
--runs rounds (default 5), builds in a rotated order; figures are medians.
"""

import argparse
import gzip
import http.client
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.parse

sys.dont_write_bytecode = True
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import bundle_inputs as bi  # noqa: E402
import common  # noqa: E402
from common import OUT, TARGET, Cdp, Chromium, free_port, start_app  # noqa: E402

PAGES = ["/", "/reflections/1", "/about"]
BUILDS = ["ours", "Vite", "Vite, default"]
VITE_BASES = {"Vite": "/static/vite/", "Vite, default": "/static/vite-default/"}
THROTTLE = dict(offline=False, latency=150, downloadThroughput=1_600_000 / 8, uploadThroughput=750_000 / 8,
                connectionType="cellular4g")
VIEWPORT = dict(width=412, height=915, deviceScaleFactor=2.625, mobile=True)
IDLE_SECONDS = 1.0
LOAD_TIMEOUT = 90.0
HOP_BY_HOP = common.HOP_BY_HOP
HASHED = re.compile(r"^(.+)\.[0-9a-f]{6,}\.js$")
# The app's URLs of bundle scripts: each must be one the CLI wrote, or the app is of other sources.
BUNDLE_URL = re.compile(r"^/static/(js|features|_perf/chunks|_perf/code-splitter)")

# Records when site.js marks the page ready; installed before any of the page's scripts.
READY_JS = r"""
window.__appReady = null;
new MutationObserver((_, o) => {
  if (document.documentElement && document.documentElement.dataset.appReady) {
    window.__appReady = performance.now();
    o.disconnect();
  }
}).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-app-ready"] });
"""
STATE_JS = r"""
({
  ready: window.__appReady,
  chart: !!document.querySelector("[data-mood-chart] svg"),
  hasChart: !!document.querySelector("[data-mood-chart]"),
})
"""
FEATURES_JS = r"""
(async () => {
  const out = {};
  for (const name of ["chat", "settings"]) {
    try {
      const m = await globalThis.CodeSplitter.loadFeature(name);
      out[name] = typeof m.open === "function" ? "works" : `no open() (exports: ${Object.keys(m).join(", ") || "none"})`;
    } catch (e) {
      out[name] = `fails: ${e.message}`;
    }
  }
  return out;
})()
"""


# --- the builds ---------------------------------------------------------------------------------


class Build:
    """One build's scripts: URL path -> (raw bytes, brotli, gzip), and how its pages look."""

    def __init__(self, name, files, page):
        self.name = name
        self.page = page  # html -> html
        self.files = {}
        for url, path in files.items():
            raw = open(path, "rb").read()
            br = subprocess.run(["brotli", "-q", "11", "-c"], input=raw, stdout=subprocess.PIPE, check=True).stdout
            self.files[url] = (raw, br, gzip.compress(raw, 9, mtime=0))


def ours_build(dist):
    files = {}
    for folder, _, names in os.walk(dist):
        for n in names:
            if n.endswith(".js"):
                rel = os.path.relpath(os.path.join(folder, n), dist)
                files["/static/" + rel] = os.path.join(folder, n)
    return Build("ours", files, lambda html: html)


def vite_manifest(out):
    with open(os.path.join(out, ".vite", "manifest.json")) as f:
        return json.load(f)


def imports_closure(manifest, key):
    seen, order = set(), []

    def visit(k):
        for dep in manifest[k].get("imports", []):
            if dep not in seen:
                seen.add(dep)
                order.append(dep)
                visit(dep)

    visit(key)
    return order


def vite_page(html, manifest, base):
    """Our page with Vite's tags for its entry (see the module doc)."""
    m = re.search(r'<script type="module" src="/static/([^"]+)"[^>]*></script>', html)
    if not m:
        raise RuntimeError("no <script type=module> in the page")
    logical = HASHED.sub(r"\1.js", m.group(1))
    if logical not in manifest:
        raise RuntimeError(f"{logical} is not an entry of Vite's manifest")
    entry = manifest[logical]
    tags = f'<script type="module" crossorigin src="{base}{entry["file"]}"></script>' + "".join(
        f'<link rel="modulepreload" crossorigin href="{base}{manifest[k]["file"]}">'
        for k in imports_closure(manifest, logical))
    html = html[:m.start()] + "\0ENTRY\0" + html[m.end():]
    html = re.sub(r'<link rel="modulepreload"[^>]*>', "", html)
    html = html.replace("\0ENTRY\0", tags)
    imports = {f"/static/{v['src']}": base + v["file"] for v in manifest.values() if v.get("src")}
    html, n = re.subn(r'(<script type="importmap"[^>]*>).*?(</script>)',
                      lambda mm: mm.group(1) + json.dumps({"imports": imports}, sort_keys=True) + mm.group(2),
                      html, count=1, flags=re.S)
    if n != 1:
        raise RuntimeError("no import map in the page")
    return html


def vite_build(name, out, base):
    manifest = vite_manifest(out)
    files = {}
    for folder, _, names in os.walk(out):
        for n in names:
            if n.endswith(".js"):
                rel = os.path.relpath(os.path.join(folder, n), out)
                files[base + rel] = os.path.join(folder, n)
    return Build(name, files, lambda html: vite_page(html, manifest, base))


# --- one server per build -------------------------------------------------------------------------


class Site:
    """The pages and the build's scripts; everything else forwarded to the app."""

    def __init__(self, build, app_base):
        self.build = build
        self.app = urllib.parse.urlsplit(app_base)
        self.pages = {}  # path -> last HTML served
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                if path in PAGES:
                    site.page(self, path)
                elif path in site.build.files:
                    site.script(self, path)
                else:
                    site.forward(self)

            do_HEAD = do_POST = lambda self: site.forward(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def app_get(self, path, headers=None):
        conn = http.client.HTTPConnection(self.app.hostname, self.app.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers or {"Accept-Encoding": "identity"})
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    def page(self, h, path):
        status, headers, body = self.app_get(path)
        html = self.build.page(body.decode("utf-8"))
        self.pages[path] = html
        data = html.encode("utf-8")
        h.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-encoding", "date", "server", "link"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def script(self, h, path):
        raw, br, gz = self.build.files[path]
        accept = h.headers.get("Accept-Encoding") or ""
        data, enc = (br, "br") if "br" in accept else (gz, "gzip") if "gzip" in accept else (raw, None)
        h.send_response(200)
        h.send_header("Content-Type", "text/javascript; charset=utf-8")
        h.send_header("Cache-Control", "public, max-age=31536000, immutable")
        h.send_header("Vary", "Accept-Encoding")
        if enc:
            h.send_header("Content-Encoding", enc)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def forward(self, h):
        common.forward(self.app, h)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- one load -----------------------------------------------------------------------------------


def throttle(cdp):
    return common.throttle(cdp, THROTTLE)


def load(url, scratch, features=False):
    browser = Chromium(scratch)
    cdp = None
    try:
        version = browser.version()
        cdp = Cdp(browser.page_ws)
        for domain in ("Network", "Page", "Runtime", "Log"):
            cdp.call(f"{domain}.enable")
        cdp.call("Network.setCacheDisabled", cacheDisabled=True)
        throttle(cdp)
        cdp.call("Emulation.setDeviceMetricsOverride", **VIEWPORT)
        cdp.call("Page.addScriptToEvaluateOnNewDocument", source=READY_JS)
        reqs, console = {}, []
        t0 = []

        def on_event(ts, method, p):
            rid = p.get("requestId")
            # Times from the browser's own timestamps (the DevTools messages arrive in batches).
            if method == "Network.requestWillBeSent":
                if not t0:
                    t0.append(p["timestamp"])
                reqs[rid] = dict(path=urllib.parse.urlsplit(p["request"]["url"]).path, type=p.get("type", ""),
                                 priority=p["request"].get("initialPriority", ""),
                                 start=round((p["timestamp"] - t0[0]) * 1000))
            elif method == "Network.responseReceived" and rid in reqs:
                r = p["response"]
                hd = {k.lower(): v for k, v in r.get("headers", {}).items()}
                timing = r.get("timing")  # requestTime: seconds on the timestamps' clock; sendStart: ms after it
                reqs[rid].update(status=r.get("status"), mime=r.get("mimeType", ""), type=p.get("type") or reqs[rid]["type"],
                                 connection=r.get("connectionId"),
                                 sent=round(timing["requestTime"] * 1000 + timing["sendStart"] - t0[0] * 1000) if timing else None,
                                 length=int(hd["content-length"]) if hd.get("content-length", "").isdigit() else None,
                                 encoding=hd.get("content-encoding", ""))
            elif method == "Network.loadingFinished" and rid in reqs:
                reqs[rid]["wire"] = int(p.get("encodedDataLength", 0))
                reqs[rid]["end"] = round((p["timestamp"] - t0[0]) * 1000)
            elif method == "Network.loadingFailed" and rid in reqs:
                reqs[rid]["failed"] = p.get("errorText", "")
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                console.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning"):
                console.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif method == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                console.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}".strip())

        cdp.navigate_and_settle(url, IDLE_SECONDS, LOAD_TIMEOUT, on_event, poll=0.05)
        state = cdp.call("Runtime.evaluate", expression=STATE_JS, returnByValue=True)["result"]["value"]
        result = dict(browser=version, requests=list(reqs.values()), state=state)
        if features:
            cdp.call("Network.emulateNetworkConditions", offline=False, latency=0, downloadThroughput=-1, uploadThroughput=-1)
            res = cdp.call("Runtime.evaluate", expression=FEATURES_JS, awaitPromise=True, returnByValue=True)
            result["features"] = res.get("result", {}).get("value")
            cdp.pump(0.3)
        result["console"] = console
        return result
    finally:
        if cdp is not None:
            try:
                cdp.ws.send(json.dumps({"id": 10**6, "method": "Browser.close"}))
            except Exception:
                pass
            cdp.close()
        browser.stop()


def figures(result, build):
    """JS requests and bytes of one load."""
    scripts = [r for r in result["requests"] if r.get("type") == "Script" or "javascript" in (r.get("mime") or "")]
    ours = [r for r in scripts if r["path"] in build.files]
    other = [r for r in scripts if r["path"] not in build.files]
    bad = [r for r in result["requests"] if r.get("failed") or (r.get("status") or 0) >= 400]
    doc = next((r for r in result["requests"] if r.get("type") == "Document"), {})
    static = [r.get("end") for r in ours if r.get("type") == "Script" and "mood-chart" not in r["path"]]
    ready = result["state"]["ready"]
    return dict(
        requests=len(scripts),
        bundle_requests=len(ours),
        other_requests=len(other),
        bundle_paths=sorted(r["path"] for r in ours),
        timeline=[dict(path=r["path"], type=r.get("type"), priority=r.get("priority"), connection=r.get("connection"),
                       start=r.get("start"), sent=r.get("sent"), end=r.get("end"))
                  for r in sorted(result["requests"], key=lambda r: r.get("start", 0))],
        other_paths=sorted(r["path"] for r in other),
        brotli=sum(len(build.files[r["path"]][1]) for r in ours),
        brotli_received=sum(r.get("length") or 0 for r in ours),
        encodings=sorted({r.get("encoding", "") for r in ours}),
        gzip=sum(len(build.files[r["path"]][2]) for r in ours),
        raw=sum(len(build.files[r["path"]][0]) for r in ours),
        other_bytes=sum(r.get("length") or 0 for r in other),
        ready=ready,
        document_end=doc.get("end"),
        # From the document's last byte: the bundle's static scripts all received; the page ready.
        scripts_after_document=max(static) - doc["end"] if static and None not in static and doc.get("end") else None,
        ready_after_document=ready - doc["end"] if ready is not None and doc.get("end") else None,
        chart=result["state"]["chart"] if result["state"]["hasChart"] else None,
        bad=[f"{r['path']} {r.get('status')} {r.get('failed', '')}".strip() for r in bad],
        console=result["console"],
    )


# --- the manifests (no browser) -----------------------------------------------------------------


def manifest_first_loads(ours_dist, vite_outs):
    """Per page entry: the chunks a first load needs and their bytes, from perf-build's
    manifest (`chunk.first_load`) and Vite's (`imports` closure), re-compressed alike."""
    with open(os.path.join(ours_dist, "manifest.json")) as f:
        ours = json.load(f)
    rows = {}
    for entry in ("js/journal.js", "js/reflection.js", "js/site.js"):
        row = {}
        chunks = ours[entry]["chunk"]["first_load"]["chunks"]
        files = [os.path.join(ours_dist, ours[c]["file"]) for c in chunks]
        row["ours"] = dict(chunks=len(files), **bi.add(*[bi.sizes(open(p, "rb").read()) for p in files]),
                           own=dict(gzip=ours[entry]["chunk"]["first_load"]["gzip"],
                                    brotli=ours[entry]["chunk"]["first_load"]["brotli"]))
        for name, out in vite_outs.items():
            man = vite_manifest(out)
            keys = [entry] + imports_closure(man, entry)
            files = [os.path.join(out, man[k]["file"]) for k in keys]
            row[name] = dict(chunks=len(files), **bi.add(*[bi.sizes(open(p, "rb").read()) for p in files]))
        rows[entry] = row
    return rows


# --- the report -----------------------------------------------------------------------------------


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def render(data, args):
    v = data["versions"]
    cmd = "python3 bench/bundle.py" + (f" --runs {args.runs}" if args.runs != 5 else "")
    lines = [
        "# The example app's pages: perf-build's chunks against Vite's, in Chromium",
        "",
        f"`{cmd}`: perf-build at {data['git']}, Vite {v['vite']} (rolldown {v['rolldown']}), {data['browser']}; "
        f"median of {args.runs} cold loads per page and build (fresh profile, cache disabled, 150 ms latency, "
        f"1.6 Mbit/s); load average {data['load'][0][0]:.2f} before, {data['load'][1][0]:.2f} after (2 cores).",
        "",
        "| page | build | JS requests: bundle + app's classic scripts | bundle JS, brotli | gzip | brotli vs Vite "
        "| gzip vs Vite | requests vs Vite | bundle received | ready |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = ("bundle_requests", "other_requests", "brotli", "gzip", "scripts_after_document", "ready_after_document")
    for page in PAGES:
        meds = {}
        for b in BUILDS:
            rs = data["runs"][page][b]
            meds[b] = {k: med([r[k] for r in rs]) for k in keys}
        for b in BUILDS:
            m, vm = meds[b], meds["Vite"]
            t = ["n/a" if m[k] is None else f"{m[k]:,.0f} ms" for k in ("scripts_after_document", "ready_after_document")]
            lines.append(
                f"| `{page}` | {b} | {m['bundle_requests']:.0f} + {m['other_requests']:.0f} | {m['brotli']:,.0f} | "
                f"{m['gzip']:,.0f} | {m['brotli'] / vm['brotli']:.3f}x | {m['gzip'] / vm['gzip']:.3f}x | "
                f"{m['bundle_requests'] / vm['bundle_requests']:.2f}x | {t[0]} | {t[1]} |")
    lines += ["", "Times are medians from the document's last byte (which the app's rendering moves by tens of ms "
              "from load to load): \"bundle received\" when the last of the bundle's static scripts (the "
              "on-demand mood chart left out) arrived, \"ready\" when site.js marked the page ready. site.js "
              "waits for DOMContentLoaded, which waits for every deferred script, the app's classic ones "
              "included: \"ready\" also measures how the requests share the six HTTP/1.1 connections and "
              "the throttled bandwidth."]
    lines += ["", "Scripts of the bundle fetched on the first load (run 1):", ""]
    for page in PAGES:
        for b in BUILDS:
            f = data["runs"][page][b][0]
            lines.append(f"- `{page}`, {b}: " + ", ".join(p.rsplit("/", 1)[-1] for p in f["bundle_paths"])
                         + f" (raw {f['raw']:,} B); the app's: " + ", ".join(p.rsplit("/", 1)[-1] for p in f["other_paths"]))
    lines += ["", "From the manifests alone (no browser; the page's entry and its static imports, "
              "re-compressed with gzip -9 / brotli -q 11; perf-build's own precompressed bytes in brackets):", "",
              "| entry | ours: chunks, min / gzip / brotli | Vite | Vite, default |", "| --- | --- | --- | --- |"]
    for entry, row in data["manifests"].items():
        o = row["ours"]
        cells = [f"{o['chunks']}: {o['raw']:,} / {o['gzip']:,} / {o['brotli']:,} ({o['own']['gzip']:,} / {o['own']['brotli']:,})"]
        for b in ("Vite", "Vite, default"):
            x = row[b]
            cells.append(f"{x['chunks']}: {x['raw']:,} / {x['gzip']:,} / {x['brotli']:,}")
        lines.append(f"| {entry} | " + " | ".join(cells) + " |")
    lines += ["", "Checks:", ""]
    for b in BUILDS:
        lines.append(f"- {b}: features through CodeSplitter.loadFeature: "
                     + ", ".join(f"{k} {v}" for k, v in (data["features"].get(b) or {}).items()))
        charts = [r["chart"] for page in PAGES for r in data["runs"][page][b] if r["chart"] is not None]
        lines.append(f"- {b}: mood chart drawn on `/` in {sum(charts)} of {len(charts)} loads")
        msgs = sorted({m for page in PAGES for r in data["runs"][page][b] for m in r["console"] + r["bad"]})
        lines.append(f"- {b}: console errors and failed requests: " + ("; ".join(msgs) if msgs else "none"))
        encs = sorted({e for page in PAGES for r in data["runs"][page][b] for e in r["encodings"]})
        lines.append(f"- {b}: bundle scripts received as {', '.join(encs)}; brotli bytes as received = as counted: "
                     + str(all(r["brotli"] == r["brotli_received"] for page in PAGES for r in data["runs"][page][b])))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(TARGET, "debug", "example-app"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    common.in_venv(common.CDP_VENV, common.CDP_PACKAGES, __file__)
    if shutil.which(os.environ.get("CHROMIUM", "chromium")) is None:
        sys.exit("no chromium on the PATH: apt-get install chromium (or set CHROMIUM)")
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} does not exist: cargo build -p example-app first")

    bi.tools()
    cli = bi.perf_build_cli()
    app_tree, _ = bi.app_tree()
    w = common.fresh(os.path.join(bi.WORK, "pages"))
    static = os.path.join(app_tree, "static")
    inputs = {name: os.path.join(static, path) for name, path in bi.APP_ENTRIES.items()}
    ours_dist = os.path.join(w, "ours")
    bi.sh(bi.ours_cmd(cli, app_tree, ours_dist, os.path.join(w, "ours-cache"), precompress=True))
    vite_outs = {"Vite": os.path.join(w, "vite"), "Vite, default": os.path.join(w, "vite-default")}
    bi.sh(bi.vite_cmd(static, vite_outs["Vite"], inputs, alias=bi.SPLITTER, base=VITE_BASES["Vite"], preserve="exports-only"))
    bi.sh(bi.vite_cmd(static, vite_outs["Vite, default"], inputs, alias=bi.SPLITTER, base=VITE_BASES["Vite, default"]))
    builds = {"ours": ours_build(ours_dist)}
    for b in ("Vite", "Vite, default"):
        builds[b] = vite_build(b, vite_outs[b], VITE_BASES[b])

    scratch = tempfile.mkdtemp(prefix="bundle-")
    app = None
    sites = {}
    load_before = bi.load_average()
    try:
        app, base = start_app(args.binary, scratch)
        sites = {b: Site(builds[b], base) for b in BUILDS}
        runs = {p: {b: [] for b in BUILDS} for p in PAGES}
        features, browser = {}, ""
        for i in range(args.runs):
            for page in PAGES:
                order = BUILDS[i % 3:] + BUILDS[:i % 3]
                for b in order:
                    check = i == 0 and page == "/about"
                    res = load(sites[b].base + page, scratch, features=check)
                    browser = res["browser"]
                    if check:
                        features[b] = res["features"]
                    f = figures(res, builds[b])
                    if b == "ours" and i == 0:
                        missing = [r["path"] for r in res["requests"]
                                   if BUNDLE_URL.match(r["path"]) and r["path"] not in builds[b].files]
                        if missing:
                            sys.exit(f"the app asks for bundle scripts the CLI did not write ({', '.join(missing)}): "
                                     "the app was built from other sources (cargo build -p example-app)")
                    runs[page][b].append(f)
                    print(f"run {i + 1} {page} {b}: {f['bundle_requests']} + {f['other_requests']} JS requests, "
                          f"{f['brotli']:,} B brotli, {f['gzip']:,} B gzip, ready {f['ready']}", file=sys.stderr)
    finally:
        for s in sites.values():
            s.stop()
        if app is not None:
            app.terminate()
            app.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)
    load_after = bi.load_average()

    data = dict(versions=bi.peer_versions(), git=bi.git_state(), browser=browser, load=[load_before, load_after],
                runs=runs, features=features, manifests=manifest_first_loads(ours_dist, vite_outs),
                html={b: {p: len(h) for p, h in sites[b].pages.items()} for b in BUILDS})
    report = render(data, args)
    print(report)
    with open(os.path.join(OUT, "bundle.md"), "w") as f:
        f.write(report)
    with open(os.path.join(OUT, "bundle.json"), "w") as f:
        json.dump(data, f, indent=1)


if __name__ == "__main__":
    main()
