#!/usr/bin/env python3
"""First Contentful Paint of the example app's landing page in headless Chromium over a
throttled network: the page as the app serves it ("critical": critical CSS inlined, the
full stylesheet deferred) against the same page with a render-blocking stylesheet
("blocking"), everything else identical.

    python3 bench/fcp.py                      # starts target/debug/example-app itself
    python3 bench/fcp.py --runs 15 --page /about
    python3 bench/fcp.py --url http://127.0.0.1:PORT/   # an app already running
    python3 bench/fcp.py --cpu-slowdown 4     # a slow phone's CPU as well

Prints a Markdown table and writes bench/out/fcp.md and bench/out/fcp.json. The binary is
copied to a scratch folder and started on a free loopback port with a scratch database (it
seeds reflections on first start), as bench/page_weight.py does. Build it first (`cargo
build -p example-app`): this script does not.

The two variants come from a small HTTP proxy in this script (loopback, HTTP/1.1):
`/critical` and `/blocking` each fetch the page (--page, default `/`) from the app afresh
(so a per-response nonce and its Content-Security-Policy header still match) and answer
with the app's status and headers; every other path is forwarded to the app as it is
(method, headers, body, and the app's response with its own compression). "critical" is
the HTML as served; "blocking" is the same HTML with the `<style data-perf-critical>`
removed, the deferred stylesheet (`media="print" data-perf-defer`, its `rel=preload` and
its `<noscript>` fallback) replaced by a plain `<link rel="stylesheet">` where it was, and
the loader script that switches deferred links to all media (`critical-loader.*.js`)
removed: the page as it would be without the feature (bench/critical.py's
`blocking_variant`). Both HTML variants are sent gzip-compressed
(level 6, tower-http's default) when the browser accepts gzip, so they are compressed alike
whatever the app does with HTML. When the app serves no critical style (before the feature
lands), the two variants are the same HTML: the script says so and the run is an A/A test
of the noise.

Browser: Debian's `chromium`, headless, a fresh profile for every load, driven over the
DevTools protocol (websocket-client in bench/out/venv-cdp, shared with page_weight.py; this
script creates the venv and re-runs itself in it). Cache disabled. Viewport: mobile
412x915 at DPR 2.625 (or --viewport desktop: 1350x940 at DPR 1). Network throttled with
`Network.emulateNetworkConditions`, a "Slow 4G"-like profile (the figures of Lighthouse's
mobile throttling): 150 ms latency added to every request (request sent to response
headers), 1.6 Mbit/s down (200,000 bytes/s), 750 kbit/s up (93,750 bytes/s); over loopback,
so these figures are all the network there is. CPU not throttled unless --cpu-slowdown.

A load is over at Page.loadEventFired followed by 0.5 s with no request in flight; then
`performance.getEntriesByType('paint')` gives FP and FCP, a buffered PerformanceObserver
the last largest-contentful-paint candidate (LCP), the navigation entry the document's
timings. All times are from the navigation's start. --runs loads per variant (default 9),
alternating (critical, blocking, blocking, critical, ...); each figure is the median.
"""

import argparse
import gzip
import http.server
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in bench/
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import common  # noqa: E402
from common import OUT, TARGET, Cdp, Chromium, free_port, start_app  # noqa: E402
from critical import blocking_variant, fetch, gz, page_css  # noqa: E402

VARIANTS = ["critical", "blocking"]
# "Slow 4G"-like: Lighthouse's mobile throttling figures.
THROTTLE = dict(offline=False, latency=150, downloadThroughput=1_600_000 / 8, uploadThroughput=750_000 / 8,
                connectionType="cellular4g")
VIEWPORTS = {
    "mobile": dict(width=412, height=915, deviceScaleFactor=2.625, mobile=True),
    "desktop": dict(width=1350, height=940, deviceScaleFactor=1, mobile=False),
}
IDLE_SECONDS = 0.5
LOAD_TIMEOUT = 90.0
HOP_BY_HOP = common.HOP_BY_HOP

METRICS_JS = r"""
(async () => {
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
  const nav = performance.getEntriesByType('navigation')[0] || {};
  const lcp = await new Promise(resolve => {
    let last = null;
    try {
      new PerformanceObserver(list => { const es = list.getEntries(); last = es[es.length - 1]; })
        .observe({type: 'largest-contentful-paint', buffered: true});
    } catch (e) { resolve(null); return; }
    setTimeout(() => resolve(last && {
      time: last.startTime, size: last.size, url: last.url || '',
      element: last.element ? last.element.tagName.toLowerCase() + (last.element.className ? '.' + String(last.element.className).trim().split(/\s+/).join('.') : '') : ''
    }), 300);
  });
  const css = performance.getEntriesByType('resource')
    .filter(e => /\.css$/.test(new URL(e.name).pathname))
    .map(e => ({url: new URL(e.name).pathname, initiator: e.initiatorType, start: e.startTime, end: e.responseEnd,
                renderBlocking: e.renderBlockingStatus || ''}));
  return {
    fp: paint['first-paint'] ?? null, fcp: paint['first-contentful-paint'] ?? null, lcp,
    responseStart: nav.responseStart ?? null, responseEnd: nav.responseEnd ?? null,
    domContentLoaded: nav.domContentLoadedEventEnd ?? null, load: nav.loadEventEnd ?? null,
    transferSize: nav.transferSize ?? null, css,
    sheets: [...document.styleSheets].map(s => ({href: s.href ? new URL(s.href).pathname : null, media: s.media.mediaText,
                                                 inline: !s.href, disabled: s.disabled}))
  };
})()
"""


# --- the proxy --------------------------------------------------------------------------------


class Proxy:
    """Serves /critical and /blocking (two variants of the app's `page`) and forwards every
    other request to the app."""

    def __init__(self, app_base, page):
        self.app = urllib.parse.urlsplit(app_base)
        self.page = page
        self.served = {}  # variant -> the last HTML sent (for the report)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                if path.rstrip("/") in ("/critical", "/blocking"):
                    proxy.variant(self, path.strip("/"))
                else:
                    proxy.forward(self)

            do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = lambda self: proxy.forward(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def variant(self, h, name):
        status, headers, body = fetch(urllib.parse.urlunsplit((self.app.scheme, self.app.netloc, self.page, "", "")))
        page = body.decode("utf-8")
        if name == "blocking":
            page, _ = blocking_variant(page, keep_integrity=True)
        self.served[name] = page
        data = page.encode("utf-8")
        gzipped = "gzip" in (h.headers.get("Accept-Encoding") or "")
        if gzipped:
            data = gzip.compress(data, 6, mtime=0)
        h.send_response(status)
        for k, v in headers.items():
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-encoding", "date", "server"):
                h.send_header(k, v)
        if gzipped:
            h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def forward(self, h):
        common.forward(self.app, h)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- one load ----------------------------------------------------------------------------------


def throttle(cdp):
    return common.throttle(cdp, THROTTLE)


def load(url, viewport, cpu_slowdown, scratch):
    browser = Chromium(scratch)
    cdp = None
    try:
        version = browser.version()
        cdp = Cdp(browser.page_ws)
        for domain in ("Network", "Page", "Runtime"):
            cdp.call(f"{domain}.enable")
        cdp.call("Network.setCacheDisabled", cacheDisabled=True)
        how = throttle(cdp)
        cdp.call("Emulation.setDeviceMetricsOverride", **viewport)
        if viewport["mobile"]:
            cdp.call("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=5)
        if cpu_slowdown != 1:
            cdp.call("Emulation.setCPUThrottlingRate", rate=cpu_slowdown)
        requests = {}
        t0 = time.monotonic()

        def on_event(ts, method, p):
            rid = p.get("requestId")
            if method == "Network.requestWillBeSent":
                requests[rid] = dict(url=urllib.parse.urlsplit(p["request"]["url"]).path, type=p.get("type", ""),
                                     start=round((ts - t0) * 1000))
            elif method in ("Network.loadingFinished", "Network.loadingFailed") and rid in requests:
                requests[rid]["end"] = round((ts - t0) * 1000)
                requests[rid]["bytes"] = int(p.get("encodedDataLength", 0))
                if method == "Network.loadingFailed":
                    requests[rid]["failed"] = p.get("errorText", "")
            elif method == "Network.responseReceived" and rid in requests:
                requests[rid]["status"] = p["response"].get("status")

        _, loaded_at = cdp.navigate_and_settle(url, IDLE_SECONDS, LOAD_TIMEOUT, on_event, poll=0.05)
        res = cdp.call("Runtime.evaluate", expression=METRICS_JS, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"metrics script: {res['exceptionDetails']}")
        m = res["result"]["value"]
        m.update(browser=version, throttled_with=how,
                 requests=sorted(requests.values(), key=lambda r: r["start"]))
        return m
    finally:
        if cdp is not None:
            try:
                cdp.ws.send(json.dumps({"id": 10**6, "method": "Browser.close"}))
            except Exception:
                pass
            cdp.close()
        browser.stop()


# --- the report --------------------------------------------------------------------------------


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v):
    return "n/a" if v is None else f"{v:,.0f} ms"


def spread(vals):
    vals = [v for v in vals if v is not None]
    return f"{min(vals):,.0f}-{max(vals):,.0f}" if vals else "n/a"


def render(data, args):
    cmd = "python3 bench/fcp.py" + (f" --url {args.url}" if args.url else "") + \
        (f" --page {args.page}" if args.page != "/" else "") + (f" --runs {args.runs}" if args.runs != 9 else "") + \
        (f" --viewport {args.viewport}" if args.viewport != "mobile" else "") + \
        (f" --cpu-slowdown {args.cpu_slowdown}" if args.cpu_slowdown != 1 else "")
    vp = VIEWPORTS[args.viewport]
    lines = [
        f"# First Contentful Paint of `{args.page}`: critical CSS inlined against a blocking stylesheet",
        "",
        f"`{cmd}` ({data['browser']}, headless, fresh profile per load, cache disabled, {args.viewport} "
        f"{vp['width']}x{vp['height']} @{vp['deviceScaleFactor']}x; network: {THROTTLE['latency']} ms latency per request, "
        f"{THROTTLE['downloadThroughput'] * 8 / 1e6:g} Mbit/s down, {THROTTLE['uploadThroughput'] * 8 / 1e3:g} kbit/s up "
        f"({data['throttled_with']}); CPU {'not throttled' if args.cpu_slowdown == 1 else f'{args.cpu_slowdown}x slower'}; "
        f"median of {args.runs} loads per variant, alternating).",
        "",
    ]
    if data["identical"]:
        lines += [
            f"**The app serves no `<style data-perf-critical>` on `{args.page}`: both variants are the same HTML, "
            "so this run is an A/A test and any difference is noise.**",
            "",
        ]
    lines += [
        "| variant | HTML raw / gzip -9 | FCP median (min-max) | FP | LCP | document received | DOMContentLoaded | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v in VARIANTS:
        rs = data["runs"][v]
        h = data["html"][v]
        lines.append(
            f"| {v} | {h['raw']:,} / {h['gzip']:,} | {fmt(med([r['fcp'] for r in rs]))} ({spread([r['fcp'] for r in rs])}) | "
            f"{fmt(med([r['fp'] for r in rs]))} | {fmt(med([(r['lcp'] or {}).get('time') for r in rs]))} | "
            f"{fmt(med([r['responseEnd'] for r in rs]))} | {fmt(med([r['domContentLoaded'] for r in rs]))} | "
            f"{fmt(med([r['load'] for r in rs]))} |"
        )
    c, b = (med([r["fcp"] for r in data["runs"][v]]) for v in VARIANTS)
    if c is not None and b:
        lines += ["", f"FCP critical / blocking: {c / b:.2f}x ({c - b:+,.0f} ms)."]
    lines += ["", "## Notes", ""]
    for n in data["notes"]:
        lines.append(f"- {n}")
    for v in VARIANTS:
        r0 = data["runs"][v][0]
        lcp = r0["lcp"] or {}
        lines.append(f"- {v}, run 1: LCP element `{lcp.get('element') or '-'}` {lcp.get('url', '').rsplit('/', 1)[-1]}; "
                     "stylesheets " + ", ".join(f"{s['href'] or 'inline'}{' (' + s['media'] + ')' if s['media'] else ''}" for s in r0["sheets"]))
        lines.append(f"- {v}, run 1: CSS requests " + (", ".join(
            f"{x['url'].rsplit('/', 1)[-1]} {x['start']:.0f}-{x['end']:.0f} ms{' ' + x['renderBlocking'] if x['renderBlocking'] else ''}"
            for x in r0["css"]) or "none"))
        bad = [x for x in r0["requests"] if x.get("failed") or (x.get("status") or 0) >= 400]
        for x in bad:
            lines.append(f"- {v}, run 1: request {x['url']} status {x.get('status')} {x.get('failed', '')}".rstrip())
    lines += ["", "Every load (FCP ms):", ""]
    for v in VARIANTS:
        lines.append(f"- {v}: " + ", ".join(fmt(r["fcp"]).replace(" ms", "") for r in data["runs"][v]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(TARGET, "debug", "example-app"), help="the example app (default: target/debug/example-app)")
    ap.add_argument("--url", help="use an app already running at this URL instead of starting one")
    ap.add_argument("--page", default="/", help="the page to measure (default: /)")
    ap.add_argument("--runs", type=int, default=9, help="loads per variant (default 9)")
    ap.add_argument("--viewport", choices=sorted(VIEWPORTS), default="mobile")
    ap.add_argument("--cpu-slowdown", type=float, default=1, help="Emulation.setCPUThrottlingRate (default 1: none)")
    args = ap.parse_args()
    common.in_venv(common.CDP_VENV, common.CDP_PACKAGES, __file__)

    if shutil.which(os.environ.get("CHROMIUM", "chromium")) is None:
        sys.exit("no chromium on the PATH: apt-get install chromium (or set CHROMIUM)")
    os.makedirs(OUT, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="fcp-")
    app = proxy = None
    notes = []
    try:
        if args.url:
            base = args.url
        else:
            if not os.path.exists(args.binary):
                sys.exit(f"{args.binary} does not exist: cargo build -p example-app first")
            app, base = start_app(args.binary, scratch)
        status, _, body = fetch(urllib.parse.urljoin(base, args.page))
        page = body.decode("utf-8")
        info = page_css(page)
        blocking, changes = blocking_variant(page, keep_integrity=True)
        identical = blocking == page
        if identical:
            msg = (f"the app serves no <style data-perf-critical> on {args.page} (its stylesheets are blocking: "
                   f"{', '.join(info['blocking']) or 'none'}): the 'critical' variant is the same HTML as 'blocking'")
            print(f"NOTE: {msg}; the figures are an A/A test of the noise.", file=sys.stderr)
            notes.append(msg + ".")
        else:
            notes.append("blocking variant: " + "; ".join(changes) + ".")
        if info["others"]:
            notes.append("other render-blocking stylesheets in both variants: " + ", ".join(info["others"]) + ".")
        if info["blocking_scripts"]:
            notes.append("classic scripts in <head> without async/defer (render-blocking in both variants): "
                         + ", ".join(info["blocking_scripts"]) + ".")
        if status != 200:
            notes.append(f"{args.page} answers {status}.")
        proxy = Proxy(base, args.page)
        runs = {v: [] for v in VARIANTS}
        for i in range(args.runs):
            for v in (VARIANTS if i % 2 == 0 else VARIANTS[::-1]):
                m = load(f"{proxy.base}/{v}", VIEWPORTS[args.viewport], args.cpu_slowdown, scratch)
                runs[v].append(m)
                lcp = (m["lcp"] or {}).get("time")
                print(f"run {i + 1} {v}: FCP {fmt(m['fcp'])}, LCP {fmt(lcp)}, document {fmt(m['responseEnd'])}, "
                      f"load {fmt(m['load'])}", file=sys.stderr)
        html = {v: dict(raw=len(proxy.served[v].encode()), gzip=gz(proxy.served[v])) for v in VARIANTS}
    finally:
        if proxy is not None:
            proxy.stop()
        if app is not None:
            app.terminate()
            app.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)

    data = dict(page=args.page, browser=runs[VARIANTS[0]][0]["browser"], throttled_with=runs[VARIANTS[0]][0]["throttled_with"],
                throttle=THROTTLE, viewport=VIEWPORTS[args.viewport], cpu_slowdown=args.cpu_slowdown,
                identical=identical, form=info["form"], notes=notes, html=html, runs=runs)
    report = render(data, args)
    print(report)
    with open(os.path.join(OUT, "fcp.md"), "w") as f:
        f.write(report)
    with open(os.path.join(OUT, "fcp.json"), "w") as f:
        json.dump(data, f, indent=1)


if __name__ == "__main__":
    main()
