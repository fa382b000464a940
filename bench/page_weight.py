#!/usr/bin/env python3
"""Page weight: what headless Chromium transfers for the example app's landing page, with
its photographs through perf-build's image pipeline ("after") against the same page with
the photographs as they were, the original JPEGs at one size ("before").

    python3 bench/page_weight.py              # starts target/debug/example-app itself
    python3 bench/page_weight.py --binary PATH --runs 3
    python3 bench/page_weight.py --url http://127.0.0.1:PORT/   # an app already running

Prints a Markdown table and what was fetched, and writes bench/out/page_weight.md and
bench/out/page_weight.json. The binary is copied to a scratch folder first (a rebuild
does not pull it from under the run) and started on a free loopback port with a scratch
database (it seeds reflections on first start). Build it first (`cargo build -p
example-app`): this script does not.

Browser: Debian's `chromium`, headless, a fresh profile for every page load, driven over
the DevTools protocol (websocket-client, installed into bench/out/venv-cdp, which this
script creates and then re-runs itself in). Cache disabled (Network.setCacheDisabled).
Two viewports: mobile 412x915 at DPR 2.625 (mobile=true) and desktop 1350x940 at DPR 1.
A load is over at Page.loadEventFired followed by 1.5 s with no request in flight.

Bytes: `encodedDataLength` of Network.loadingFinished for each request (what came over
the wire, headers included), grouped by Network.responseReceived's type and mimeType into
images / CSS / JS / document / other; data: URLs are not counted.

After: everything the load transferred.
Before (lazy-equivalent): the same document, CSS, JS and other bytes, and for each
photograph the page fetched (any variant `/static/img/photos/<name>-<w>w.<hash>.<ext>` or
`/static/img/photos/<name>.<hash>.jpg`, counted once per name) the byte size of its
original `example-app/static/img/photos/<name>.jpg`, plus the response-header bytes the
variant's response had (encodedDataLength less its Content-Length).
Before (eager): the same, but the original of every photograph in the page's HTML (one per
`<picture>` by name), as the cards had no lazy loading before the pipeline.
The document, CSS and JS of "before" are the measured ones, so they include the
pipeline's own files (its placeholder stylesheet, ImageOptimizer and the image manifest
it fetches) and the longer markup: these are listed apart as "pipeline's own files".

Each viewport is loaded --runs times (3); each figure is the median over the runs.
"""

import argparse
import html.parser
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in bench/
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import common  # noqa: E402
from common import Cdp, Chromium, start_app  # noqa: E402  (the DevTools client, the browser, the app)
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
VENV = common.CDP_VENV
PY_PACKAGES = common.CDP_PACKAGES
ORIGINALS = os.path.join(ROOT, "example-app", "static", "img", "photos")
PHOTO_PREFIX = "/static/img/photos/"
# The pipeline's own files in the layout: not there before it.
PIPELINE_FILES = re.compile(r"^/static/_perf/(images\.[0-9a-f]+\.(css|json)|image-optimizer\.[0-9a-f]+\.js)$")

VIEWPORTS = [
    ("mobile", dict(width=412, height=915, deviceScaleFactor=2.625, mobile=True)),
    ("desktop", dict(width=1350, height=940, deviceScaleFactor=1, mobile=False)),
]
IDLE_SECONDS = 1.5
LOAD_TIMEOUT = 60.0
CATEGORIES = ["images", "css", "js", "document", "other"]


def in_venv():
    """Re-runs this script inside bench/out/venv-cdp, creating it first if needed."""
    common.in_venv(VENV, PY_PACKAGES, __file__)


# --- the page's HTML ------------------------------------------------------------------


def photo_name(url):
    """`hero` for /static/img/photos/hero-1280w.d8c8ab8f.avif or /static/img/photos/hero.dc94af1b.jpg."""
    path = urllib.parse.urlsplit(url).path
    if not path.startswith(PHOTO_PREFIX):
        return None
    m = re.match(r"^([^/]+?)(?:-(\d+)w)?\.[0-9a-f]{6,}\.(\w+)$", path[len(PHOTO_PREFIX):])
    return m.group(1) if m else None


def variant_of(url, own_widths):
    """(name, format, width, is the full-size JPEG fallback) of a photo variant URL."""
    path = urllib.parse.urlsplit(url).path
    m = re.match(r"^([^/]+?)(?:-(\d+)w)?\.[0-9a-f]{6,}\.(\w+)$", path[len(PHOTO_PREFIX):])
    name, width, ext = m.group(1), m.group(2), m.group(3)
    fmt = {"jpg": "jpeg"}.get(ext, ext)
    if width:
        return name, fmt, int(width), False
    return name, fmt, own_widths.get(name), True


class PictureParser(html.parser.HTMLParser):
    """The photographs in the page's markup: one per <picture>, by the name of its <img>."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.pictures = []  # [{name, width, height, loading, fetchpriority}]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "picture":
            self.depth += 1
        elif tag == "img" and self.depth:
            name = photo_name(a.get("src") or "")
            if name:
                self.pictures.append(
                    dict(
                        name=name,
                        width=int(a.get("width") or 0),
                        height=int(a.get("height") or 0),
                        loading=a.get("loading") or "eager",
                        fetchpriority=a.get("fetchpriority") or "",
                        srcset_widths=sorted(int(w) for w in re.findall(r"\s(\d+)w(?:,|$)", a.get("srcset") or "")),
                    )
                )

    def handle_endtag(self, tag):
        if tag == "picture" and self.depth:
            self.depth -= 1


def page_pictures(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read().decode("utf-8")
    p = PictureParser()
    p.feed(body)
    return p.pictures


# --- DevTools protocol ------------------------------------------------------------------


PAGE_STATE_JS = r"""
(() => {
  const imgs = [...document.querySelectorAll('picture img')].map(img => {
    const r = img.getBoundingClientRect();
    return {src: img.getAttribute('src'), currentSrc: img.currentSrc, loading: img.loading,
            complete: img.complete, naturalWidth: img.naturalWidth,
            top: Math.round(r.top + scrollY), bottom: Math.round(r.bottom + scrollY),
            width: Math.round(r.width)};
  });
  return {innerWidth, innerHeight, dpr: devicePixelRatio, scrollY,
          docHeight: document.documentElement.scrollHeight, imgs};
})()
"""


def load_page(url, viewport, scratch):
    """One cold load of `url` in a fresh Chromium: the requests, console messages and the
    state of the page's photographs afterwards."""
    browser = Chromium(scratch)
    cdp = None
    try:
        version = browser.version()
        cdp = Cdp(browser.page_ws)
        for domain in ("Network", "Page", "Runtime", "Log"):
            cdp.call(f"{domain}.enable")
        cdp.call("Network.setCacheDisabled", cacheDisabled=True)
        cdp.call("Emulation.setDeviceMetricsOverride", **viewport)
        if viewport["mobile"]:
            cdp.call("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=5)
        t0, loaded_at = cdp.navigate_and_settle(url, IDLE_SECONDS, LOAD_TIMEOUT)
        state = cdp.call("Runtime.evaluate", expression=PAGE_STATE_JS, returnByValue=True)["result"]["value"]
        cdp.pump(0.2)
        return collect(cdp.events, t0, loaded_at, version, state)
    finally:
        if cdp is not None:
            try:
                cdp.ws.send(json.dumps({"id": 10**6, "method": "Browser.close"}))
            except Exception:
                pass
            cdp.close()
        browser.stop()


def category(rtype, mime):
    mime = (mime or "").split(";")[0].strip().lower()
    if rtype == "Document":
        return "document"
    if rtype == "Image" or mime.startswith("image/"):
        return "images"
    if rtype == "Stylesheet" or mime == "text/css":
        return "css"
    if rtype == "Script" or "javascript" in mime:
        return "js"
    return "other"


def collect(events, t0, loaded_at, version, state):
    reqs = {}  # requestId -> dict; a redirect reuses the id, so each hop is kept apart
    order = []
    console = []
    for ts, method, p in events:
        rid = p.get("requestId")
        if method == "Network.requestWillBeSent":
            if rid in reqs and p.get("redirectResponse"):
                old = reqs.pop(rid)
                old["redirected"] = True
                reqs[f"{rid}#{len(order)}"] = old
            reqs[rid] = dict(
                url=p["request"]["url"],
                method=p["request"]["method"],
                type=p.get("type", ""),
                priority=p["request"].get("initialPriority", ""),
                initiator=p.get("initiator", {}).get("type", ""),
                start=round(ts - t0, 3),
            )
            order.append(rid)
        elif method == "Network.responseReceived" and rid in reqs:
            r = p["response"]
            headers = {k.lower(): v for k, v in r.get("headers", {}).items()}
            reqs[rid].update(
                status=r.get("status"),
                mime=r.get("mimeType", ""),
                type=p.get("type") or reqs[rid]["type"],
                protocol=r.get("protocol", ""),
                from_cache=bool(r.get("fromDiskCache") or r.get("fromPrefetchCache")),
                content_length=int(headers["content-length"]) if headers.get("content-length", "").isdigit() else None,
                content_encoding=headers.get("content-encoding", ""),
            )
        elif method == "Network.loadingFinished" and rid in reqs:
            reqs[rid]["bytes"] = int(p.get("encodedDataLength", 0))
            reqs[rid]["end"] = round(ts - t0, 3)
        elif method == "Network.loadingFailed" and rid in reqs:
            reqs[rid]["failed"] = p.get("errorText", "") + (" (canceled)" if p.get("canceled") else "")
            reqs[rid]["bytes"] = 0
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            console.append(f"console.{p['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            console.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Log.entryAdded":
            e = p["entry"]
            if e.get("level") in ("error", "warning"):
                console.append(f"log {e.get('source')}/{e.get('level')}: {e.get('text')} {e.get('url', '')}".strip())
    requests = [r for r in reqs.values() if not r["url"].startswith("data:")]
    requests.sort(key=lambda r: r["start"])
    for r in requests:
        r.setdefault("bytes", 0)
        r["category"] = category(r.get("type", ""), r.get("mime", ""))
    return dict(
        browser=version,
        load_event=round(loaded_at - t0, 3) if loaded_at else None,
        requests=requests,
        console=console,
        state=state,
    )


# --- the figures ------------------------------------------------------------------------


def figures(load, pictures, originals):
    """after / before figures of one load."""
    own_widths = {p["name"]: p["width"] for p in pictures}
    by_cat = {c: 0 for c in CATEGORIES}
    pipeline_own = 0
    photo_bytes, photo_overheads, fetched = 0, [], []
    for r in load["requests"]:
        path = urllib.parse.urlsplit(r["url"]).path
        by_cat[r["category"]] += r["bytes"]
        if PIPELINE_FILES.match(path):
            pipeline_own += r["bytes"]
        name = photo_name(r["url"])
        if name:
            photo_bytes += r["bytes"]
            if r.get("content_length") is not None and r["bytes"]:
                photo_overheads.append(r["bytes"] - r["content_length"])
            n, fmt, width, fallback = variant_of(r["url"], own_widths)
            fetched.append(
                dict(
                    name=n,
                    format=fmt,
                    width=width,
                    full_size_jpeg=fallback,
                    bytes=r["bytes"],
                    status=r.get("status"),
                    priority=r.get("priority"),
                    initiator=r.get("initiator"),
                    failed=r.get("failed"),
                    url=path,
                )
            )
    after = sum(by_cat.values())
    non_photo = after - photo_bytes
    overhead = round(statistics.median(photo_overheads)) if photo_overheads else 0
    fetched_names = sorted({f["name"] for f in fetched if not f.get("failed")})
    before_lazy = non_photo + sum(originals[n] + overhead for n in fetched_names)
    before_eager = non_photo + sum(originals[p["name"]] + overhead for p in pictures)
    return dict(
        after=after,
        by_category=by_cat,
        photos_after=photo_bytes,
        non_photo=non_photo,
        pipeline_own=pipeline_own,
        header_overhead=overhead,
        before_lazy=before_lazy,
        before_eager=before_eager,
        fetched=fetched,
        fetched_names=fetched_names,
    )


def kb(n):
    return f"{n / 1000:,.1f} kB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(TARGET, "debug", "example-app"), help="the example app (default: target/debug/example-app)")
    ap.add_argument("--url", help="measure an app already running at this URL instead of starting one")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    in_venv()

    if shutil.which(os.environ.get("CHROMIUM", "chromium")) is None:
        sys.exit("no chromium on the PATH: apt-get install chromium (or set CHROMIUM)")
    originals = {f[:-4]: os.path.getsize(os.path.join(ORIGINALS, f)) for f in os.listdir(ORIGINALS) if f.endswith(".jpg")}
    os.makedirs(OUT, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="page-weight-")
    app = None
    try:
        if args.url:
            url = args.url
        else:
            if not os.path.exists(args.binary):
                sys.exit(f"{args.binary} does not exist: cargo build -p example-app first")
            app, url = start_app(args.binary, scratch)
        pictures = page_pictures(url)
        missing = [p["name"] for p in pictures if p["name"] not in originals]
        if missing:
            sys.exit(f"no original in {ORIGINALS} for {missing}")
        runs = {name: [] for name, _ in VIEWPORTS}
        for i in range(args.runs):
            for name, viewport in VIEWPORTS:  # interleaved
                load = load_page(url, viewport, scratch)
                fig = figures(load, pictures, originals)
                runs[name].append(dict(load=load, figures=fig))
                print(
                    f"run {i + 1} {name}: after {kb(fig['after'])}, before lazy {kb(fig['before_lazy'])}, "
                    f"before eager {kb(fig['before_eager'])}, photos {', '.join(f['url'].rsplit('/', 1)[1] for f in fig['fetched'])}",
                    file=sys.stderr,
                )
    finally:
        if app is not None:
            app.terminate()
            app.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)

    report = render(url, args, pictures, originals, runs)
    print(report)
    with open(os.path.join(OUT, "page_weight.md"), "w") as f:
        f.write(report)
    with open(os.path.join(OUT, "page_weight.json"), "w") as f:
        json.dump(dict(url=url, pictures=pictures, originals=originals, runs=runs), f, indent=1)


def med(runs, key, sub=None):
    vals = [r["figures"][key] if sub is None else r["figures"][key][sub] for r in runs]
    return statistics.median(vals)


def render(url, args, pictures, originals, runs):
    cmd = "python3 bench/page_weight.py" + (f" --url {args.url}" if args.url else "") + (f" --runs {args.runs}" if args.runs != 3 else "")
    first = next(iter(runs.values()))[0]["load"]
    lines = [
        "# Landing page weight in Chromium: original photographs against the image pipeline",
        "",
        f"`{cmd}` ({first['browser']}, cold load with the cache disabled, median of {args.runs} runs; "
        "kB = 1000 bytes on the wire, headers included).",
        "",
        "Photographs in the page: "
        + ", ".join(f"{p['name']} ({p['width']}x{p['height']}, {p['loading']})" for p in pictures)
        + "; originals "
        + ", ".join(f"{n}.jpg {kb(s)}" for n, s in sorted(originals.items()))
        + ".",
        "",
        "| viewport | before, all photos eager | before, lazy-equivalent | after | after / before (eager) | after / before (lazy-eq.) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, viewport in VIEWPORTS:
        rs = runs[name]
        be, bl, af = med(rs, "before_eager"), med(rs, "before_lazy"), med(rs, "after")
        vp = f"{name} {viewport['width']}x{viewport['height']} @{viewport['deviceScaleFactor']}x"
        lines.append(f"| {vp} | {kb(be)} | {kb(bl)} | {kb(af)} | {af / be:.2f} | {af / bl:.2f} |")
    lines += [
        "",
        "After, by kind (median):",
        "",
        "| viewport | images | of which photos | CSS | JS | document | other | pipeline's own files |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, _ in VIEWPORTS:
        rs = runs[name]
        c = {k: med(rs, "by_category", k) for k in CATEGORIES}
        lines.append(
            f"| {name} | {kb(c['images'])} | {kb(med(rs, 'photos_after'))} | {kb(c['css'])} | {kb(c['js'])} | "
            f"{kb(c['document'])} | {kb(c['other'])} | {kb(med(rs, 'pipeline_own'))} |"
        )
    for name, _ in VIEWPORTS:
        rs = runs[name]
        load, fig = rs[0]["load"], rs[0]["figures"]
        lines += ["", f"## {name}", "", "Photographs fetched (run 1):", ""]
        lines += ["| file | name | format | width | bytes | priority | initiator |", "| --- | --- | --- | ---: | ---: | --- | --- |"]
        for f in fig["fetched"]:
            file = f["url"].rsplit("/", 1)[1] + (" (full-size JPEG)" if f["full_size_jpeg"] else "") + (f" FAILED {f['failed']}" if f["failed"] else "")
            lines.append(f"| {file} | {f['name']} | {f['format']} | {f['width']} | {f['bytes']:,} | {f['priority']} | {f['initiator']} |")
        same = all([f["url"] for f in r["figures"]["fetched"]] == [f["url"] for f in fig["fetched"]] for r in rs)
        lines.append("")
        lines.append("The same files in every run." if same else "Runs differed: " + "; ".join(
            ", ".join(f["url"].rsplit("/", 1)[1] for f in r["figures"]["fetched"]) for r in rs))
        notes = []
        hero = [f for f in fig["fetched"] if f["name"] == "hero"]
        notes.append("hero fetched as " + (", ".join(f"{f['format']} {f['width']}w" for f in hero) or "nothing")
                     + (": AVIF" if hero and all(f["format"] == "avif" for f in hero) else ": NOT AVIF"))
        urls = [f["url"] for f in fig["fetched"]]
        dup = sorted({u for u in urls if urls.count(u) > 1})
        if dup:
            notes.append(f"fetched more than once: {', '.join(dup)}")
        per_name = {}
        for f in fig["fetched"]:
            per_name.setdefault(f["name"], []).append(f["url"].rsplit("/", 1)[1])
        several = {n: u for n, u in per_name.items() if len(set(u)) > 1}
        if several:
            notes.append("more than one variant of one photo: " + "; ".join(f"{n}: {', '.join(u)}" for n, u in several.items()))
        if any(f["full_size_jpeg"] for f in fig["fetched"]):
            notes.append("the full-size JPEG fallback (`<name>.<hash>.jpg`) was fetched")
        st = load["state"]
        fold = st["innerHeight"]
        for img in st["imgs"]:
            n = photo_name(img["src"] or "")
            where = "above the fold" if img["top"] < fold else f"below the fold (top {img['top']} px, viewport {fold} px high)"
            got = n in fig["fetched_names"]
            notes.append(
                f"{n}: loading={img['loading']}, {where}, {'fetched' if got else 'not fetched'} on the initial load; "
                f"currentSrc {(img['currentSrc'] or '-').rsplit('/', 1)[-1]}, rendered {img['width']} px wide"
            )
            # Did `sizes` lead to a larger variant than the rendered width needs?
            widths = next((p["srcset_widths"] for p in pictures if p["name"] == n), [])
            need = img["width"] * st["dpr"]
            enough = next((w for w in widths if w >= need), widths[-1] if widths else None)
            got_w = [f["width"] for f in fig["fetched"] if f["name"] == n]
            if enough and got_w and max(got_w) > enough:
                notes.append(
                    f"{n}: {img['width']} px x DPR {st['dpr']} = {need:.0f} device px, so {enough}w would do, "
                    f"but `sizes` led to {max(got_w)}w"
                )
        bad = [r for r in load["requests"] if r.get("failed") or (r.get("status") or 0) >= 400]
        for r in bad:
            notes.append(f"request {r['url']}: status {r.get('status')} {r.get('failed') or ''}".strip())
        for c in sorted({m for r in rs for m in r["load"]["console"]}):
            notes.append(f"console: {c}")
        lines += ["", *[f"- {n}" for n in notes]]
        lines += ["", "All requests (run 1):", "", "| url | kind | type | status | bytes |", "| --- | --- | --- | ---: | ---: |"]
        for r in load["requests"]:
            p = urllib.parse.urlsplit(r["url"])
            lines.append(f"| {p.path}{'?' + p.query if p.query else ''} | {r['category']} | {r.get('type', '')} | {r.get('status', '')} | {r['bytes']:,} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
