#!/usr/bin/env python3
"""Edit-to-visible time in development: how long after a stylesheet or a script is saved
the open page in Chromium shows the change. Three ways, in the same run, on the same files
(Inner Architect's static/):

- perf-suite's development mode: the debug binary with PERF_DEV=1 (the stylesheet is
  swapped in the open page, a script edit reloads it);
- before it: `cargo build` of the example app, restart of the binary, reload of the page;
- Vite's dev server (bench/package.json) on the same landing page: the HTML the binary
  serves, with its stylesheet and entry script pointed at their sources for Vite to serve
  and watch, and the other files it names (photographs, chunks) saved beside it.

    python3 bench/devloop.py [--runs 7] [--before-runs 3]

The time starts just before the file is written and ends at the first animation frame in
which the page shows the change (a rAF loop in the page compares the computed style, or
reads what the new script set, and records Date.now(): the page's clock is the script's).
Writes bench/out/devloop.md. Needs Chromium, Node.js and npm (Vite, installed with npm).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from common import (CDP_PACKAGES, CDP_VENV, NODE_BIN, OUT, ROOT, TARGET, Cdp, Chromium, fresh, free_port,
                    in_venv, need, npm_install, run, start_app, wait_http)

APP = os.path.join(ROOT, "example-app")
BINARY = os.path.join(TARGET, "debug", "example-app")

# In every document: record when the body's background or the probe attribute first shows
# the value the bench waits for (window.__want), at animation-frame resolution.
WATCHER = """
(() => {
  const tick = () => {
    const want = window.__want;
    if (want && !window.__seenAt) {
      const shown = want.kind === "css"
        ? getComputedStyle(document.body || document.documentElement).backgroundColor
        : document.documentElement.dataset.devProbe;
      if (shown === want.value) window.__seenAt = Date.now();
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  try {
    const w = sessionStorage.getItem("__want");
    if (w) window.__want = JSON.parse(w);
  } catch {}
})();
"""


def package_copy(dest):
    """The example app's assets, templates and asset settings, as the tests copy them."""
    for sub in ["static", "templates"]:
        shutil.copytree(os.path.join(APP, sub), os.path.join(dest, sub))
    for f in ["package.json", "package-lock.json"]:
        # With the original's time: a newer lock would have the build run `npm ci`, which
        # empties node_modules (the real one, through the link).
        shutil.copy2(os.path.join(APP, f), dest)
    os.symlink(os.path.join(APP, "node_modules"), os.path.join(dest, "node_modules"))
    perf, inside = [], False
    for line in open(os.path.join(APP, "Cargo.toml")).read().splitlines():
        if line.startswith("["):
            inside = line.startswith("[package.metadata.perf")
        if inside:
            perf.append(line)
    with open(os.path.join(dest, "Cargo.toml"), "w") as f:
        f.write('[package]\nname = "example-app"\nversion = "0.1.0"\nedition = "2024"\n\n[workspace]\n\n')
        f.write("\n".join(perf) + "\n")
    os.makedirs(os.path.join(dest, "src"))
    open(os.path.join(dest, "src", "lib.rs"), "w").close()


class Page:
    def __init__(self, chromium):
        self.cdp = Cdp(chromium.page_ws)
        self.cdp.call("Page.enable")
        self.cdp.call("Runtime.enable")
        self.cdp.call("Page.addScriptToEvaluateOnNewDocument", source=WATCHER)

    def eval(self, expr):
        r = self.cdp.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        return r.get("result", {}).get("value")

    def open(self, url):
        self.cdp.call("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while self.eval("document.readyState") != "complete":
            if time.monotonic() > deadline:
                sys.exit(f"{url} did not load")
            time.sleep(0.05)

    def expect(self, kind, value):
        """Arms the watcher (kept across a reload) for `value`."""
        want = json.dumps({"kind": kind, "value": value})
        self.eval(f"sessionStorage.setItem('__want', {json.dumps(want)}); window.__want = {want}; window.__seenAt = 0")

    def seen_at(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at = self.eval("window.__seenAt || 0")
            except RuntimeError:
                at = 0  # the page is reloading
            if at:
                return at / 1000.0
            time.sleep(0.01)
        sys.exit("the change never showed")


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def timed_edit(page, kind, value, path, text, on_edit):
    """Seconds from writing `text` at the end of `path` to the page showing `value`."""
    page.expect(kind, value)
    t0 = time.time()
    append(path, text)
    if on_edit:
        on_edit()
    seconds = page.seen_at() - t0
    time.sleep(0.3)
    return seconds


def edits(page, css, js, runs, tag, on_edit=None):
    """`runs` stylesheet edits, then `runs` script edits; seconds from write to visible."""
    # Values never used before, so that no edit finds its output in the content cache of
    # an earlier run.
    import random
    rng = random.Random()
    colours = [f"rgb({i + 1}, {rng.randrange(256)}, {rng.randrange(256)})" for i in range(runs)]
    css_times = [timed_edit(page, "css", c, css, f"\nbody {{ background-color: {c}; }}\n", on_edit)
                 for c in colours]
    values = [f"{tag}-{i}-{rng.getrandbits(48):x}" for i in range(runs)]
    js_times = [timed_edit(page, "js", v, js, f'\ndocument.documentElement.dataset.devProbe = "{v}";\n', on_edit)
                for v in values]
    return css_times, js_times


def perf_dev(scratch, chromium, runs):
    copy = os.path.join(scratch, "copy")
    package_copy(copy)
    proc, url = start_app(BINARY, scratch, "dev", copy=False, timeout=300,
                          env={"PERF_DEV": "1", "PERF_DEV_ROOT": copy, "PERF_DEV_TRACE": "1"})
    try:
        page = Page(chromium)
        page.open(url)
        time.sleep(1)
        return edits(page, os.path.join(copy, "static/css/app.css"), os.path.join(copy, "static/js/site.js"),
                     runs, "dev")
    finally:
        proc.terminate()
        proc.wait()


def build_times(scratch):
    """The development builds' own times from the app's trace: (partial, whole) in ms,
    the first build left out."""
    import re
    partial, whole = [], []
    for line in open(os.path.join(scratch, "dev.log")).read().splitlines()[1:]:
        m = re.search(r"development build( \(partial\))? in ([0-9.]+) ms", line)
        if m:
            (partial if m.group(1) else whole).append(float(m.group(2)))
    return partial, whole[1:]


def before(scratch, chromium, runs):
    """The loop without development mode: edit the real file, cargo build, restart, reload."""
    css = os.path.join(APP, "static/css/app.css")
    js = os.path.join(APP, "static/js/site.js")
    saved = {p: open(p).read() for p in (css, js)}
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    state = {"proc": None}

    def start():
        state["proc"], _ = start_app(BINARY, scratch, "before", copy=False, timeout=120, port=port)

    def rebuild_restart_reload():
        subprocess.run(["cargo", "build", "-q", "--bin", "example-app"], cwd=ROOT,
                       check=True)
        state["proc"].terminate()
        state["proc"].wait()
        start()
        page.cdp.call("Page.reload")

    try:
        run(["cargo", "build", "-q", "--bin", "example-app"], cwd=ROOT)
        start()
        page = Page(chromium)
        page.open(url)
        return edits(page, css, js, runs, "before", on_edit=rebuild_restart_reload)
    finally:
        for p, text in saved.items():
            with open(p, "w") as f:
                f.write(text)
        if state["proc"]:
            state["proc"].terminate()
            state["proc"].wait()
        # Leave the build as the repository's files make it.
        subprocess.run(["cargo", "build", "-q", "--bin", "example-app"], cwd=ROOT)


def landing_page_for_vite(scratch, public):
    """The landing page as the binary serves it (no development mode), for Vite: its
    stylesheet and entry script point at their sources (`/css/app.css`, `/js/journal.js`),
    which Vite serves and watches, the stylesheet linked plainly; every other file the page
    names (photographs, chunks, the images' stylesheet) is the binary's, saved under Vite's
    public folder."""
    import re
    import urllib.request
    proc, url = start_app(BINARY, scratch, "vite-page", copy=False, timeout=120, env={"PERF_DEV": "0"})
    try:
        base = url.rstrip("/")
        page = urllib.request.urlopen(base + "/").read().decode()
        for url in sorted(set(re.findall(r'/static/[^"\' ,)<>]+', page))):
            dest = os.path.join(public, url.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with urllib.request.urlopen(base + url) as r, open(dest, "wb") as f:
                f.write(r.read())
    finally:
        proc.terminate()
        proc.wait()
    page = re.sub(r"/static/css/app\.[0-9a-f]{8}\.css", "/css/app.css", page)
    page = re.sub(r"/static/js/journal\.[0-9a-f]{8}\.js", "/js/journal.js", page)
    page = re.sub(r' integrity="[^"]*"', "", page)
    # Vite's stylesheet update replaces the first <link> naming the file: the preload. A
    # page written for Vite links its stylesheet plainly.
    page = page.replace('<link rel="preload" as="style" href="/css/app.css">', "")
    page = page.replace('<link rel="stylesheet" href="/css/app.css" media="print" data-perf-defer>',
                        '<link rel="stylesheet" href="/css/app.css">')
    page = re.sub(r'<script src="/_perf/vitals\.js[^>]*></script>', "", page)
    assert "/css/app.css" in page and "/js/journal.js" in page
    return page


def vite(scratch, chromium, runs):
    root = os.path.join(scratch, "vite")
    shutil.copytree(os.path.join(APP, "static"), root)
    # What perf-build adds to every build, which site.js imports.
    os.makedirs(os.path.join(root, "_perf"))
    shutil.copy(os.path.join(ROOT, "perf-build", "assets", "code-splitter.js"), os.path.join(root, "_perf"))
    os.symlink(os.path.join(APP, "node_modules"), os.path.join(root, "node_modules"))
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write(landing_page_for_vite(scratch, os.path.join(root, "public")))
    port = free_port()
    log = open(os.path.join(scratch, "vite.log"), "wb")
    proc = subprocess.Popen([os.path.join(NODE_BIN, "vite"), "--port", str(port), "--strictPort", "--host",
                             "127.0.0.1"], cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, timeout=60, proc=proc)
        page = Page(chromium)
        page.open(url)
        time.sleep(1)
        return edits(page, os.path.join(root, "css/app.css"), os.path.join(root, "js/site.js"), runs, "vite")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def main():
    in_venv(CDP_VENV, CDP_PACKAGES, __file__)
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--before-runs", type=int, default=3)
    args = ap.parse_args()
    need("chromium", "chromium")
    npm_install()
    run(["cargo", "build", "-q", "--bin", "example-app"], cwd=ROOT)
    scratch = fresh(os.path.join(OUT, "devloop"))
    results = {}
    for name, fn, runs in [("perf-suite dev mode", perf_dev, args.runs), ("Vite dev server", vite, args.runs),
                           ("before: cargo build, restart, reload", before, args.before_runs)]:
        chromium = Chromium(scratch)
        try:
            results[name] = fn(scratch, chromium, runs)
        finally:
            chromium.stop()
        css, js = results[name]
        print(f"{name}: css {[round(t * 1000) for t in css]} ms, js {[round(t * 1000) for t in js]} ms",
              file=sys.stderr)
    vite_css, vite_js = (statistics.median(t) for t in results["Vite dev server"])
    lines = [
        f"Chromium {version(['chromium', '--version'])}, Vite {version([os.path.join(NODE_BIN, 'vite'), '--version'])}; "
        f"medians of {args.runs} edits ({args.before_runs} for the rebuild loop).",
        "",
        "| loop | stylesheet edit → visible | vs Vite | script edit → visible | vs Vite |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (css, js) in results.items():
        c, j = statistics.median(css), statistics.median(js)
        lines.append(f"| {name} | {c * 1000:.0f} ms | {c / vite_css:.2f}x | {j * 1000:.0f} ms | {j / vite_js:.2f}x |")
    partial, whole = build_times(scratch)
    if partial:
        lines += ["", f"Inside the development mode, median build times: {statistics.median(partial):.0f} ms for the "
                  f"partial build of a stylesheet edit (no critical CSS), {statistics.median(whole):.0f} ms for a "
                  f"whole build ({len(partial)} and {len(whole)} builds)."]
    lines += ["", "Every edit, ms:", ""]
    for name, (css, js) in results.items():
        lines.append(f"- {name}: stylesheet {[round(t * 1000) for t in css]}, script {[round(t * 1000) for t in js]}")
    out = os.path.join(OUT, "devloop.md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
