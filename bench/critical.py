#!/usr/bin/env python3
"""Critical CSS: what perf-build extracts per askama template (`perf-build critical`, and the
`<style data-perf-critical>` the example app inlines) against what the npm package beasties
inlines for the same page, in bytes (raw and gzip -9) and in time; on the example app's
pages and on a Bootstrap 5 landing page.

    python3 bench/critical.py                     # starts target/debug/example-app itself
    python3 bench/critical.py --runs 20 --ours-runs 10
    python3 bench/critical.py --url http://127.0.0.1:PORT/   # an app already running
    python3 bench/critical.py --skip-bootstrap

Prints a Markdown table and writes bench/out/critical.md and bench/out/critical.json; the
inputs and outputs of both tools stay in bench/out/critical/ for inspection. Build the
binaries first (`cargo build -p example-app --bin example-app -p perf-build --bin
perf-build`): this script does not. Where a figure of ours is not available (the app serves
no critical style yet, or the CLI has no `critical` subcommand yet), the cell reads "n/a"
and the script carries on.

The app: the binary is copied to a scratch folder and started on a free loopback port with
a scratch database (as bench/page_weight.py does). Pages: `/` (template index.html),
`/reflections/1` (reflection.html), `/about` (about.html) and a 404 page (not_found.html).

The stylesheets: those the page links under the URL prefix (`/static/`), except the
pipeline's own generated ones under `/static/_perf/` (the image placeholders: they are not
linked through the template's `asset_url!`, so `perf-build critical` does not see them
either). In the page as served today that is the blocking `<link rel="stylesheet">`; with
the critical CSS in place it is the deferred `<link ... media="print" data-perf-defer>`.
Each is fetched from the app and its `@import`s are followed (app.css imports base.css by
a relative, hashed URL).

beasties (npm, pinned in bench/package.json; bench/critical_beasties.mjs): each page is
turned back into its blocking form (the `<style data-perf-critical>` removed, the deferred
stylesheet, its preload and its `<noscript>` replaced by a plain `<link rel="stylesheet"
href=...>`); the other stylesheets get `data-beasties-skip` (beasties' own way to leave a
link alone), so both tools work on the same stylesheet. On disk, the stylesheet is written
at its URL path under bench/out/critical/app/static (`path`) for `publicPath: "/static/"`,
**flattened**: every `@import` replaced by the imported file (inside `@media` when the
import has a media list), its relative `url()`s made absolute first. beasties does not
follow `@import` (it drops the rule from the critical CSS, so base.css would never be
looked at) and resolves `url()`s against the stylesheet's own URL, which is still right
after flattening. Everything else is beasties' defaults (whole document, `compress`,
`preload: "media"`...). Bytes: the text of the `<style>` beasties adds. Time: inside node
(`process.hrtime`), a new Beasties instance per run, the median of --runs runs after a
first, untimed-for-the-median run (reported apart: V8 warming up on the input).

Ours, served: the text of `<style data-perf-critical>` in the page as the app serves it.
Ours, CLI: `perf-build critical --static-dir example-app/static --templates-dir
example-app/templates --template NAME --out FILE --url-prefix /static --cache-dir DIR` per
template (target/debug/perf-build unless --perf-build or PERF_BUILD_CLI names another),
wall time of the whole process (start-up included), median of --ours-runs runs with an
empty cache directory each ("cold") and with the cache the previous run left ("warm").

Bootstrap: bench/critical/templates/bootstrap.html (a tracked askama template: navbar with
a collapse toggler, hero, `{# perf:fold #}`, cards, a features grid, an accordion, a form,
a footer) against bootstrap/dist/css/bootstrap.css (npm, pinned), copied at run time to
bench/out/critical/bootstrap/static/css/bootstrap.css. For beasties the template is
rendered to plain HTML (the `asset_url!` expression replaced by `/static/css/bootstrap.css`,
askama's tags and comments stripped, so both branches of its `{% if %}` stay) and run
twice: on the whole page, and on the page cut at the fold (the HTML above the marker, then
`</body></html>`), which is the fair comparison with an extractor that stops at the fold.

"Selectors" (in the JSON and the details of the Markdown): the selector lists of the rules
in each tool's CSS, compared as text after whitespace is normalised. Minifiers rewrite
selectors (lightningcss merges rules), so this is a guide to what differs, not an exact
count.
"""

import argparse
import gzip
import html.parser
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in bench/
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from common import OUT, ROOT, TARGET, fresh, npm_install, run, start_app  # noqa: E402

WORK = os.path.join(OUT, "critical")
PREFIX = "/static"
PAGES = [
    ("/", "index.html"),
    ("/reflections/1", "reflection.html"),
    ("/about", "about.html"),
    ("/no-such-page", "not_found.html"),
]
APP_STATIC = os.path.join(ROOT, "example-app", "static")
APP_TEMPLATES = os.path.join(ROOT, "example-app", "templates")
FIXTURE_TEMPLATES = os.path.join(BENCH, "critical", "templates")
BOOTSTRAP_TEMPLATE = "bootstrap.html"
BOOTSTRAP_CSS = os.path.join("bootstrap", "dist", "css", "bootstrap.css")
FOLD_MARKER = "<!-- perf:fold -->"


def gz(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return len(gzip.compress(data, 9, mtime=0))


# --- the page's HTML: which form it has, and its blocking form (fcp.py uses these too) ------


def attrs_of(tag):
    """The attributes of one start tag, names lowercased (a bare attribute is "")."""
    found = {}

    class P(html.parser.HTMLParser):
        def handle_starttag(self, name, attrs):
            if not found:
                found.update({k.lower(): (v if v is not None else "") for k, v in attrs})
                found["<tag>"] = name

        handle_startendtag = handle_starttag

    P(convert_charrefs=True).feed(tag)
    return found


LINK_RE = re.compile(r"<link\b[^>]*>", re.I)
NOSCRIPT_RE = re.compile(r"<noscript\b[^>]*>(.*?)</noscript>", re.I | re.S)
STYLE_RE = re.compile(r"<style\b([^>]*)>(.*?)</style\s*>", re.I | re.S)
SCRIPT_RE = re.compile(r"<script\b[^>]*>", re.I)
# perf-build's script that switches the deferred stylesheets to all media once loaded.
LOADER_RE = re.compile(r"""<script\b[^>]*\bsrc=["'][^"']*/_perf/critical\.[^"']*["'][^>]*>\s*</script>""", re.I)


def rel(a):
    return set((a.get("rel") or "").lower().split())


def ours_sheet(href):
    """A stylesheet the template links through asset_url! (not one the pipeline generates)."""
    path = urllib.parse.urlsplit(href or "").path
    # The placeholder stylesheet is one critical_css! covers (and defers) too.
    return path.startswith(PREFIX + "/") and (
        not path.startswith(PREFIX + "/_perf/") or path.startswith(PREFIX + "/_perf/images."))


def page_css(page):
    """What a page does with CSS: {form: "critical" | "blocking", critical: [(attrs, text)],
    deferred: [href], blocking: [href] (ours, render-blocking), others: [href] (other
    stylesheet links), blocking_scripts: [src] (classic scripts in <head> without
    async/defer: they block rendering in both variants)}."""
    noscript_spans = [m.span() for m in NOSCRIPT_RE.finditer(page)]
    in_noscript = lambda pos: any(s <= pos < e for s, e in noscript_spans)  # noqa: E731
    critical = [(attrs_of(f"<style{m.group(1)}>"), m.group(2)) for m in STYLE_RE.finditer(page)]
    critical = [(a, t) for a, t in critical if "data-perf-critical" in a]
    deferred, blocking, others = [], [], []
    for m in LINK_RE.finditer(page):
        if in_noscript(m.start()):
            continue
        a = attrs_of(m.group(0))
        if "stylesheet" not in rel(a):
            continue
        href = a.get("href", "")
        if not ours_sheet(href):
            others.append(href)
        elif "data-perf-defer" in a or (a.get("media") or "").strip().lower() == "print":
            deferred.append(href)
        else:
            blocking.append(href)
    head = page[: page.lower().find("</head>")] if "</head>" in page.lower() else page
    blocking_scripts = []
    for m in SCRIPT_RE.finditer(head):
        a = attrs_of(m.group(0))
        if a.get("src") and (a.get("type") or "text/javascript").lower() in ("text/javascript", "application/javascript") \
                and "async" not in a and "defer" not in a:
            blocking_scripts.append(a["src"])
    return dict(
        form="critical" if critical else "blocking",
        critical=critical,
        deferred=deferred,
        blocking=blocking,
        others=others,
        blocking_scripts=blocking_scripts,
    )


def plain_link(a, keep_integrity):
    out = f'<link rel="stylesheet" href="{a["href"]}"'
    # The media the deferred link switches to (data-perf-defer="print, screen"; empty: all).
    media = (a.get("data-perf-defer") or "").strip() if "data-perf-defer" in a else (a.get("media") or "").strip()
    if media and media.lower() != "all":
        out += f' media="{media}"'
    if keep_integrity:
        for k in ("integrity", "crossorigin"):
            if k in a:
                out += f' {k}="{a[k]}"' if a[k] else f" {k}"
    return out + ">"


def blocking_variant(page, keep_integrity=True, skip_others=False):
    """The page without critical CSS: the `<style data-perf-critical>` removed, each deferred
    stylesheet of ours (with its preload and its <noscript> fallback) turned into a plain
    render-blocking `<link rel="stylesheet">` where the deferred link was (with the media
    its data-perf-defer names, if any), and perf-build's loader script
    (`_perf/critical-loader.*.js`, which switches deferred links to all media) removed. With
    keep_integrity=False the blocking links of ours are plain too (rel and href only).
    skip_others adds `data-beasties-skip` to the other stylesheet links. Returns the HTML
    and the list of what was changed."""
    info = page_css(page)
    deferred = set(info["deferred"])
    changes = []

    def style(m):
        if "data-perf-critical" in attrs_of(f"<style{m.group(1)}>"):
            changes.append(f"removed <style data-perf-critical> ({len(m.group(2).encode()):,} bytes)")
            return ""
        return m.group(0)

    page = STYLE_RE.sub(style, page)

    def noscript(m):
        links = [attrs_of(t) for t in LINK_RE.findall(m.group(1))]
        if links and all("stylesheet" in rel(a) and a.get("href") in deferred for a in links) \
                and not LINK_RE.sub("", m.group(1)).strip():
            changes.append("removed <noscript> fallback of " + ", ".join(a["href"] for a in links))
            return ""
        return m.group(0)

    page = NOSCRIPT_RE.sub(noscript, page)

    def link(m):
        a = attrs_of(m.group(0))
        r, href = rel(a), a.get("href", "")
        if "preload" in r and (a.get("as") or "").lower() == "style" and href in deferred:
            changes.append(f"removed preload of {href}")
            return ""
        if "stylesheet" in r and href in deferred:
            changes.append(f"deferred {href} made a blocking link")
            return plain_link(a, keep_integrity)
        if "stylesheet" in r and ours_sheet(href) and not keep_integrity:
            return plain_link(a, False)
        if "stylesheet" in r and not ours_sheet(href) and skip_others:
            changes.append(f"data-beasties-skip on {href}")
            return m.group(0)[:-1].rstrip("/ ") + " data-beasties-skip>"
        return m.group(0)

    page = LINK_RE.sub(link, page)

    def loader(m):
        changes.append("removed the deferred stylesheets' loader script " + attrs_of(m.group(0)).get("src", ""))
        return ""

    if deferred:
        page = LOADER_RE.sub(loader, page)
    # A deferred stylesheet linked by its preload alone (no media="print" link) is blocking
    # now only if we added a link; make sure each deferred one is linked once.
    missing = [h for h in deferred if not any(
        "stylesheet" in rel(attrs_of(t)) and attrs_of(t).get("href") == h for t in LINK_RE.findall(page))]
    for h in missing:
        page = re.sub(r"</head>", f'<link rel="stylesheet" href="{h}">\n</head>', page, count=1, flags=re.I)
        changes.append(f"added a blocking link to {h}")
    return page, changes


# --- fetching -------------------------------------------------------------------------------


def fetch(url):
    """(status, headers, body) of a GET, 4xx and 5xx included."""
    req = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


IMPORT_RE = re.compile(r"""@import\s+(?:url\(\s*(["']?)([^"')]+)\1\s*\)|(["'])([^"']+)\3)\s*([^;]*);""", re.I)
URL_RE = re.compile(r"""url\(\s*(["']?)(.*?)\1\s*\)""", re.I | re.S)


def absolute_urls(css, sheet_url):
    """Relative url()s of a stylesheet made absolute paths (data:, remote, fragment and
    absolute ones are left alone)."""

    def sub(m):
        q, u = m.group(1), m.group(2).strip()
        if not u or re.match(r"^([a-z][a-z0-9+.-]*:|/|#)", u, re.I):
            return m.group(0)
        return f"url({q}{urllib.parse.urlsplit(urllib.parse.urljoin(sheet_url, u)).path}{q})"

    return URL_RE.sub(sub, css)


def flatten(url, files, depth=0):
    """A stylesheet with its @imports inlined (recursively), relative url()s made absolute.
    `files` collects {path: served bytes} of every file fetched."""
    if depth > 10:
        sys.exit(f"@import nesting deeper than 10 at {url}")
    status, _, body = fetch(url)
    if status != 200:
        sys.exit(f"{url}: HTTP {status}")
    files[urllib.parse.urlsplit(url).path] = body
    css = body.decode("utf-8-sig")

    def imp(m):
        target = urllib.parse.urljoin(url, m.group(2) or m.group(4))
        cond = m.group(5).strip()
        inner = flatten(target, files, depth + 1)
        if not cond:
            return inner
        if re.match(r"^(layer|supports)\b", cond, re.I):
            sys.exit(f"{url}: @import with {cond!r} is not handled by this script")
        return f"@media {cond}{{{inner}}}"

    return absolute_urls(IMPORT_RE.sub(imp, css), url)


# --- comparing CSS --------------------------------------------------------------------------


def selectors(css):
    """The selector lists of a stylesheet's style rules, whitespace-normalised (a guide only)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    found = set()
    depth_stack = []  # True where a block is a style rule (its contents are declarations)
    i, start = 0, 0
    while i < len(css):
        c = css[i]
        if c in "\"'":
            j = css.find(c, i + 1)
            i = len(css) if j < 0 else j + 1
            continue
        if c == "{":
            prelude = css[start:i].strip()
            is_rule = bool(prelude) and not prelude.startswith("@") and not (depth_stack and depth_stack[-1])
            if is_rule:
                for s in prelude.split(","):
                    found.add(re.sub(r"\s+", " ", s).strip())
            depth_stack.append(is_rule or (depth_stack and depth_stack[-1]) or prelude.lower().startswith(("@font-face", "@keyframes", "@-webkit-keyframes", "@page")))
            start = i + 1
        elif c == "}":
            if depth_stack:
                depth_stack.pop()
            start = i + 1
        elif c == ";" and not (depth_stack and depth_stack[-1]):
            start = i + 1
        i += 1
    return found


def compare(ours, theirs):
    a, b = selectors(ours), selectors(theirs)
    return dict(ours=len(a), beasties=len(b), both=len(a & b), only_ours=sorted(a - b), only_beasties=sorted(b - a))


# --- beasties --------------------------------------------------------------------------------


def styles_of(page):
    return [m.group(2) for m in STYLE_RE.finditer(page)]


def run_beasties(jobs, runs):
    """Runs bench/critical_beasties.mjs on the jobs; {name: result} and the version."""
    jobs_file = os.path.join(WORK, "beasties-jobs.json")
    result_file = os.path.join(WORK, "beasties-result.json")
    with open(jobs_file, "w") as f:
        json.dump(dict(runs=runs, jobs=jobs), f, indent=1)
    run(["node", os.path.join(BENCH, "critical_beasties.mjs"), jobs_file, result_file], cwd=BENCH)
    with open(result_file) as f:
        res = json.load(f)
    out = {}
    for job, r in zip(jobs, res["results"]):
        before = styles_of(open(job["html"], encoding="utf-8").read())
        after = styles_of(open(job["out"], encoding="utf-8").read())
        added = [s for s in after if s not in before]
        if len(after) - len(before) != len(added) or len(added) > 1:
            print(f"  note: {job['name']}: {len(before)} <style> in, {len(after)} out; counting the new ones", file=sys.stderr)
        css = "".join(added)
        out[job["name"]] = dict(
            css=css,
            raw=len(css.encode("utf-8")),
            gzip=gz(css),
            first_ms=r["first_ms"],
            median_ms=statistics.median(r["times_ms"]) if r["times_ms"] else r["first_ms"],
            times_ms=r["times_ms"],
            log=r["log"],
        )
    return out, res["beasties"], res["node"]


# --- ours: the CLI -------------------------------------------------------------------------


def cli_has_critical(cli):
    if not os.path.exists(cli):
        return False, f"{cli} does not exist"
    p = subprocess.run([cli, "critical", "--help"], capture_output=True, text=True)
    if p.returncode != 0:
        return False, f"`{os.path.basename(cli)} critical` is not available: " + (p.stderr.strip().splitlines() or ["?"])[0]
    return True, ""


def run_ours(cli, static, templates, template, out, runs):
    """perf-build critical on one template: bytes, and median wall times cold and warm."""
    # One cache per static folder: the example app's templates share their assets.
    cache = os.path.join(WORK, "cache", os.path.basename(os.path.dirname(os.path.abspath(static))))
    cmd = [cli, "critical", "--static-dir", static, "--templates-dir", templates, "--template", template,
           "--out", out, "--url-prefix", PREFIX, "--cache-dir", cache]
    # One cold run (an empty cache: it builds every asset, images included, which is the
    # pipeline's cost, not the extraction's), then `runs` warm ones: the assets come from
    # the cache and the template is extracted again each time (the CLI does not cache it).
    cold, warm = [], []
    if not os.path.isdir(cache):
        os.makedirs(cache)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    cold.append(time.perf_counter() - t0)
    if p.returncode != 0:
        return dict(error=f"exit {p.returncode}: {p.stderr.strip()[-2000:]}", cmd=" ".join(cmd))
    for i in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        warm.append(time.perf_counter() - t0)
        if p.returncode != 0:
            return dict(error=f"exit {p.returncode} (warm): {p.stderr.strip()[-2000:]}", cmd=" ".join(cmd))
    css = open(out, encoding="utf-8").read()
    return dict(
        css=css,
        raw=len(css.encode("utf-8")),
        gzip=gz(css),
        cold_ms=statistics.median(cold) * 1000,
        warm_ms=statistics.median(warm) * 1000,
        cold_runs_ms=[t * 1000 for t in cold],
        warm_runs_ms=[t * 1000 for t in warm],
        cmd=" ".join(cmd),
    )


# --- the Bootstrap fixture -----------------------------------------------------------------


def render_fixture(template_text, stylesheet_url):
    """The askama template as plain HTML: asset_url! replaced, tags and comments stripped
    (both branches of an {% if %} kept), the fold marker kept as an HTML comment."""
    text = re.sub(r"""\{\{-?\s*asset_url!\(\s*"css/bootstrap\.css"\s*\)\s*-?\}\}""", stylesheet_url, template_text)
    text = re.sub(r"\{#-?\s*perf:fold\s*-?#\}", FOLD_MARKER, text)
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    text = re.sub(r"[ \t]*\{%.*?%\}[ \t]*\n?", "", text, flags=re.S)
    left = re.findall(r"\{\{.*?\}\}", text, flags=re.S)
    if left:
        sys.exit(f"{BOOTSTRAP_TEMPLATE}: expressions this script cannot render: {left}")
    return text


def cut_at_fold(page):
    i = page.find(FOLD_MARKER)
    if i < 0:
        sys.exit(f"{BOOTSTRAP_TEMPLATE} has no fold marker")
    return page[:i] + "\n</body>\n</html>\n"


# --- the report -----------------------------------------------------------------------------


def cell(d, key="raw"):
    return f"{d[key]:,}" if d and key in d else "n/a"


def pair(d):
    return f"{d['raw']:,} / {d['gzip']:,}" if d and "raw" in d else "n/a"


def ms(v):
    return "n/a" if v is None else (f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms")


def render_report(data, args):
    cmd = "python3 bench/critical.py" + "".join(
        f" {flag} {val}" for flag, val, default in
        [("--runs", args.runs, 10), ("--ours-runs", args.ours_runs, 5)] if val != default)
    lines = [
        "# Critical CSS: perf-build against beasties",
        "",
        f"`{cmd}`: beasties {data['beasties_version']} (node {data['node']}, defaults plus `path`/`publicPath`), "
        f"perf-build CLI `{data['cli']}`. Bytes: the CSS text inlined in the page, raw / gzip -9. "
        f"beasties time: inside node, median of {args.runs} runs (first run apart); ours: wall time of the "
        f"CLI process, median of {args.ours_runs}, empty cache (cold) / cache kept (warm).",
        "",
    ]
    if not data["cli_ok"]:
        lines += [f"Ours (CLI): n/a, {data['cli_note']}.", ""]
    lines += [
        "| page | template | page's full CSS | ours, served | ours, CLI | beasties | ours / beasties (gzip) | beasties time (first) | ours time cold / warm |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in data["rows"]:
        ours = r.get("served") or (r.get("cli") if r.get("cli") and "raw" in r["cli"] else None)
        ratio = f"{ours['gzip'] / r['beasties']['gzip']:.2f}x" if ours and r["beasties"]["gzip"] else "n/a"
        cli = r.get("cli") or {}
        times = f"{ms(cli.get('cold_ms'))} / {ms(cli.get('warm_ms'))}" if "raw" in cli else "n/a"
        b = r["beasties"]
        lines.append(
            f"| {r['page']} | {r['template']} | {pair(r['full'])} | {pair(r.get('served'))} | {pair(cli if 'raw' in cli else None)} | "
            f"{pair(b)} | {ratio} | {ms(b['median_ms'])} ({ms(b['first_ms'])}) | {times} |"
        )
    lines += [
        "",
        "Ratio: ours as served when the page has it, else the CLI's output. Full CSS: every stylesheet file the "
        "page links (imports included), as served, raw / gzip -9 of their concatenation.",
        "",
        "## Notes",
        "",
    ]
    for r in data["rows"]:
        for n in r["notes"]:
            lines.append(f"- {r['page']}: {n}")
    lines += ["", "## Selectors, ours against beasties (approximate)", ""]
    for r in data["rows"]:
        c = r.get("selectors")
        if not c:
            continue
        lines.append(f"- {r['page']}: ours {c['ours']}, beasties {c['beasties']}, both {c['both']}; "
                     f"only ours ({len(c['only_ours'])}): {', '.join(f'`{s}`' for s in c['only_ours'][:12]) or '-'}"
                     f"{' ...' if len(c['only_ours']) > 12 else ''}; only beasties ({len(c['only_beasties'])}): "
                     f"{', '.join(f'`{s}`' for s in c['only_beasties'][:12]) or '-'}{' ...' if len(c['only_beasties']) > 12 else ''}")
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(TARGET, "debug", "example-app"), help="the example app (default: target/debug/example-app)")
    ap.add_argument("--url", help="use an app already running at this URL instead of starting one")
    ap.add_argument("--perf-build", default=os.environ.get("PERF_BUILD_CLI", os.path.join(TARGET, "debug", "perf-build")),
                    help="the perf-build CLI (default: PERF_BUILD_CLI or target/debug/perf-build)")
    ap.add_argument("--runs", type=int, default=10, help="timed beasties runs per page (after a first one)")
    ap.add_argument("--ours-runs", type=int, default=5, help="runs of `perf-build critical` per template, cold and warm each")
    ap.add_argument("--skip-bootstrap", action="store_true")
    args = ap.parse_args()

    npm_install()
    fresh(WORK)
    cli = os.path.abspath(args.perf_build)
    cli_ok, cli_note = cli_has_critical(cli)
    if not cli_ok:
        print(f"ours (CLI): n/a, {cli_note}", file=sys.stderr)

    scratch = tempfile.mkdtemp(prefix="critical-")
    app = None
    pages = []
    try:
        if args.url:
            base = args.url
        else:
            if not os.path.exists(args.binary):
                sys.exit(f"{args.binary} does not exist: cargo build -p example-app first")
            app, base = start_app(args.binary, scratch)
        site = os.path.join(WORK, "app", "site")
        for path, template in PAGES:
            status, headers, body = fetch(urllib.parse.urljoin(base, path))
            page = body.decode("utf-8")
            info = page_css(page)
            sheets = info["deferred"] + info["blocking"]
            if not sheets:
                sys.exit(f"{path}: no stylesheet of ours linked under {PREFIX}/ (the page's links: {info['others']})")
            files, notes = {}, []
            for href in sheets:
                flat = flatten(urllib.parse.urljoin(base, href), files)
                dest = os.path.join(site, urllib.parse.urlsplit(href).path.lstrip("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "w", encoding="utf-8") as f:
                    f.write(flat)
            if len(files) > len(sheets):
                notes.append("stylesheets flattened for beasties (@import inlined): " + " + ".join(files))
            input_html, changes = blocking_variant(page, keep_integrity=False, skip_others=True)
            if info["form"] == "critical":
                notes.append("served with critical CSS; beasties gets the blocking form (" + "; ".join(changes) + ")")
            else:
                notes.append("served with a blocking stylesheet (no `<style data-perf-critical>`)"
                             + ("; " + "; ".join(changes) if changes else ""))
            if styles_of(input_html):
                notes.append(f"the page has {len(styles_of(input_html))} other inline <style>: beasties reduces and merges them too")
            name = template.replace(".html", "")
            html_file = os.path.join(WORK, "app", f"{name}.blocking.html")
            with open(html_file, "w", encoding="utf-8") as f:
                f.write(input_html)
            with open(os.path.join(WORK, "app", f"{name}.served.html"), "w", encoding="utf-8") as f:
                f.write(page)
            served = None
            if info["critical"]:
                text = "".join(t for _, t in info["critical"])
                served = dict(raw=len(text.encode("utf-8")), gzip=gz(text), css=text,
                              template_attr=[a.get("data-perf-critical") for a, _ in info["critical"]])
                if template not in served["template_attr"]:
                    notes.append(f"data-perf-critical names {served['template_attr']}, expected {template}")
            full = b"".join(files.values())
            pages.append(dict(
                page=f"`{path}`" + (f" ({status})" if status != 200 else ""),
                path=path, status=status, template=template, form=info["form"], notes=notes,
                stylesheets=sheets, others=info["others"], full=dict(raw=len(full), gzip=gz(full), files=list(files)),
                served=served, beasties_job=dict(name=name, html=html_file, out=os.path.join(WORK, "app", f"{name}.beasties.html"),
                                                 path=os.path.join(site, PREFIX.lstrip("/")), publicPath=PREFIX + "/"),
            ))
    finally:
        if app is not None:
            app.terminate()
            app.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)

    jobs = [p["beasties_job"] for p in pages]
    if not args.skip_bootstrap:
        bs = os.path.join(WORK, "bootstrap")
        bs_static = os.path.join(bs, "static")
        os.makedirs(os.path.join(bs_static, "css"))
        shutil.copy(os.path.join(BENCH, "node_modules", BOOTSTRAP_CSS), os.path.join(bs_static, "css", "bootstrap.css"))
        bs_version = json.load(open(os.path.join(BENCH, "node_modules", "bootstrap", "package.json")))["version"]
        rendered = render_fixture(open(os.path.join(FIXTURE_TEMPLATES, BOOTSTRAP_TEMPLATE), encoding="utf-8").read(),
                                  PREFIX + "/css/bootstrap.css")
        for key, text in [("whole", rendered.replace(FOLD_MARKER + "\n", "").replace(FOLD_MARKER, "")), ("fold", cut_at_fold(rendered))]:
            f = os.path.join(bs, f"bootstrap.{key}.html")
            with open(f, "w", encoding="utf-8") as fh:
                fh.write(text)
            jobs.append(dict(name=f"bootstrap-{key}", html=f, out=os.path.join(bs, f"bootstrap.{key}.beasties.html"),
                             path=bs_static, publicPath=PREFIX + "/"))
    beasties, bversion, node = run_beasties(jobs, args.runs)

    rows = []
    for p in pages:
        p["beasties"] = beasties[p["beasties_job"]["name"]]
        if cli_ok:
            out = os.path.join(WORK, "app", p["beasties_job"]["name"] + ".ours.css")
            p["cli"] = run_ours(cli, APP_STATIC, APP_TEMPLATES, p["template"], out, args.ours_runs)
            if "error" in p["cli"]:
                p["notes"].append(f"perf-build critical failed: {p['cli']['error']}")
            elif p["served"] and p["served"]["css"] != p["cli"]["css"]:
                p["notes"].append(f"the served critical CSS ({p['served']['raw']:,} bytes) differs from the CLI's ({p['cli']['raw']:,})")
        ours = p["served"] or (p.get("cli") if p.get("cli") and "css" in p["cli"] else None)
        if ours:
            p["selectors"] = compare(ours["css"], p["beasties"]["css"])
        for m in p["beasties"]["log"]:
            if m.startswith(("warn", "error")):
                p["notes"].append(f"beasties {m}")
        rows.append(p)

    if not args.skip_bootstrap:
        cli_row = None
        if cli_ok:
            cli_row = run_ours(cli, bs_static, FIXTURE_TEMPLATES, BOOTSTRAP_TEMPLATE, os.path.join(bs, "bootstrap.ours.css"), args.ours_runs)
        css = open(os.path.join(bs_static, "css", "bootstrap.css"), "rb").read()
        for key, label in [("whole", "whole page"), ("fold", "cut at the fold")]:
            b = beasties[f"bootstrap-{key}"]
            row = dict(page=f"Bootstrap {bs_version}, beasties on the {label}", path=None, template=BOOTSTRAP_TEMPLATE,
                       full=dict(raw=len(css), gzip=gz(css), files=["bootstrap.css"]), served=None, cli=cli_row,
                       beasties=b, notes=[])
            if cli_row and "error" in cli_row:
                row["notes"].append(f"perf-build critical failed: {cli_row['error']}")
            elif cli_row:
                row["selectors"] = compare(cli_row["css"], b["css"])
            for m in b["log"]:
                if m.startswith(("warn", "error")):
                    row["notes"].append(f"beasties {m}")
            rows.append(row)

    data = dict(beasties_version=bversion, node=node, cli=os.path.relpath(cli, ROOT) if cli.startswith(ROOT) else cli,
                cli_ok=cli_ok, cli_note=cli_note, rows=rows)
    report = render_report(data, args)
    print(report)
    with open(os.path.join(OUT, "critical.md"), "w") as f:
        f.write(report)
    for r in rows:
        r.pop("beasties_job", None)
    with open(os.path.join(OUT, "critical.json"), "w") as f:
        json.dump(data, f, indent=1)


if __name__ == "__main__":
    main()
