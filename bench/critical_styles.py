#!/usr/bin/env python3
"""Above-the-fold computed styles of the Bootstrap page with only our critical CSS,
against the same page with the whole Bootstrap stylesheet, in Chromium: the check the
example app's pages get in `example-app/tests/critical_browser.rs`, for the framework page
of `bench/critical.py`.

    python3 bench/critical.py --skip-app ...   # first: renders the page, builds ours
    python3 bench/critical_styles.py           # writes bench/out/critical_styles.md

Inputs: the template bench/critical/templates/bootstrap.html, rendered as bench/critical.py
renders it (linking /static/css/bootstrap.css, the fold marker kept), and, written by
bench/critical.py, the stylesheet under
bench/out/critical/bootstrap/static, and bench/out/critical/bootstrap/bootstrap.ours.css
(`perf-build critical` on the template). Two pages are served from a scratch folder on a
free port: `full.html` (the rendered page as it is) and `critical.html` (the same with the
stylesheet link replaced by `<style>` + our CSS). Each is loaded in Debian's Chromium
(headless, fresh profile) at two viewports, mobile 412x915 and desktop 1350x940; the
computed style of every element whose box starts above the fold is compared, property by
property, with the same exclusions as the Rust test: custom properties (ours drops the
ones no kept rule uses), and the used height of boxes that reach below the fold (their
content down there is styled by the full stylesheet only). A control page with no CSS at
all shows that the comparison sees a missing stylesheet.
"""

import http.server
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import OUT  # noqa: E402

WORK = os.path.join(OUT, "critical", "bootstrap")

SNAPSHOT = r"""(() => {
  const out = {};
  const fold = document.getElementById("perf-fold");
  [...document.querySelectorAll("*")].forEach((el, i) => {
    if (el === fold) return;
    const r = el.getBoundingClientRect();
    if (r.top >= innerHeight || el.closest("head") || (r.width === 0 && r.height === 0)) return;
    const cs = getComputedStyle(el);
    const style = { "(below)": r.bottom > innerHeight,
      // After the template's fold marker: outside the critical set by the author's choice.
      "(after fold)": !!fold && !!(fold.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) };
    for (const p of cs) style[p] = cs.getPropertyValue(p);
    out[`${i} ${el.tagName.toLowerCase()}.${(el.getAttribute("class") || "").trim().split(/\s+/).join(".")}`] = style;
  });
  return JSON.stringify(out);
})()"""

GEOMETRY = {"height", "block-size", "perspective-origin", "transform-origin", "grid-template-rows"}


def differences(full, other, after_fold=False):
    """The differing properties of the elements before the template's fold marker (or,
    with after_fold, of those after it)."""
    out = []
    for el, style in full.items():
        if style.get("(after fold)", False) != after_fold:
            continue
        o = other.get(el)
        if o is None:
            out.append(f"{el}: not above the fold")
            continue
        for p, v in style.items():
            if p.startswith("(") or p.startswith("--"):
                continue
            if style["(below)"] and p in GEOMETRY:
                continue
            if o.get(p) != v:
                out.append(f"{el} {p}: {v!r} / {o.get(p)!r}")
    return out


def serve(root):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=root, **k)  # noqa: E731
    handler.log_message = lambda *a: None
    port = common.free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def snapshot(cdp, url, width, height, mobile):
    cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
             deviceScaleFactor=2.625 if mobile else 1, mobile=mobile)
    cdp.call("Page.navigate", url=url)
    for _ in range(100):
        r = cdp.call("Runtime.evaluate", expression="document.readyState", returnByValue=True)
        if r["result"].get("value") == "complete":
            break
        cdp.pump(0.1)
    cdp.call("Runtime.evaluate", expression="document.fonts.ready.then(() => new Promise(r => setTimeout(r, 300)))",
             awaitPromise=True)
    r = cdp.call("Runtime.evaluate", expression=SNAPSHOT, returnByValue=True)
    return json.loads(r["result"]["value"])


def main():
    common.in_venv(common.CDP_VENV, common.CDP_PACKAGES, __file__)
    import critical  # the fixture's rendering, shared with bench/critical.py

    template = os.path.join(critical.FIXTURE_TEMPLATES, critical.BOOTSTRAP_TEMPLATE)
    page = critical.render_fixture(open(template, encoding="utf-8").read(), "/static/css/bootstrap.css")
    ours = open(os.path.join(WORK, "bootstrap.ours.css"), encoding="utf-8").read()
    link = '<link rel="stylesheet" href="/static/css/bootstrap.css">'
    if link not in page:
        sys.exit(f"the rendered page has no `{link}`")
    if "<!-- perf:fold -->" not in page:
        sys.exit("the rendered page has no <!-- perf:fold --> marker")
    # An element at the marker tells the snapshot which elements come after it.
    page = page.replace("<!-- perf:fold -->", '<template id="perf-fold"></template>')
    scratch = common.fresh(os.path.join(OUT, "critical_styles"))
    # The full stylesheet as perf-build serves it (minified by lightningcss, as the
    # critical CSS taken from it is): the raw bootstrap.css differs from both in how
    # lightningcss writes some values (`background:none` as `0 0`, long percentages).
    cli = os.environ.get("PERF_BUILD_CLI") or os.path.join(common.ROOT, "target", "debug", "perf-build")
    dist = os.path.join(scratch, "static")
    common.run([cli, "build", "--static-dir", os.path.join(WORK, "static"), "--dist-dir", dist,
                "--no-precompress", "--quiet", "--cache-dir", os.path.join(OUT, "critical", "cache", "bootstrap")])
    manifest = json.load(open(os.path.join(dist, "manifest.json")))
    served = f'<link rel="stylesheet" href="/static/{manifest["css/bootstrap.css"]["file"]}">'
    page = page.replace(link, served)
    link = served
    for name, html in [("full.html", page),
                       ("critical.html", page.replace(link, f"<style>{ours}</style>")),
                       ("bare.html", page.replace(link, ""))]:
        with open(os.path.join(scratch, name), "w", encoding="utf-8") as f:
            f.write(html)
    server, port = serve(scratch)
    browser = common.Chromium(scratch)
    rows = []
    try:
        cdp = common.Cdp(browser.page_ws)
        cdp.call("Page.enable")
        cdp.call("Network.enable")
        cdp.call("Network.setCacheDisabled", cacheDisabled=True)
        for label, w, h, mobile in [("mobile 412x915", 412, 915, True), ("desktop 1350x940", 1350, 940, False)]:
            base = f"http://127.0.0.1:{port}"
            full = snapshot(cdp, f"{base}/full.html", w, h, mobile)
            crit = snapshot(cdp, f"{base}/critical.html", w, h, mobile)
            bare = snapshot(cdp, f"{base}/bare.html", w, h, mobile)
            diff = differences(full, crit)
            after = differences(full, crit, after_fold=True)
            before_fold = sum(1 for v in full.values() if not v["(after fold)"])
            rows.append(dict(viewport=label, elements=len(full), before_fold=before_fold,
                             differences=diff, after_fold=len(after),
                             control=len(differences(full, bare))))
        version = browser.version()
    finally:
        browser.stop()
        server.shutdown()
    lines = [
        "# Critical CSS of the Bootstrap page: computed styles above the fold",
        "",
        f"`python3 bench/critical_styles.py` ({version}, headless). Ours: "
        f"{len(ours.encode()):,} bytes of CSS against the whole bootstrap.css.",
        "",
        "Elements in view are compared where they come before the template's `{# perf:fold #}`;",
        "those after it, which a tall viewport also shows, are outside the critical set by the",
        "author's choice (their differences are counted apart).",
        "",
        "| viewport | elements in view (before the marker) | properties that differ, critical CSS only | control: no CSS at all | after the marker, in view |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['viewport']} | {r['elements']} ({r['before_fold']}) | {len(r['differences'])} | "
                     f"{r['control']} | {r['after_fold']} |")
    for r in rows:
        if r["differences"]:
            lines += ["", f"## {r['viewport']}: differences", ""] + [f"- {d}" for d in r["differences"][:200]]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(OUT, "critical_styles.md"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, "critical_styles.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
