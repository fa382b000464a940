#!/usr/bin/env python3
"""Lighthouse 12 on Inner Architect: the landing page, the journal, a reflection and the
compose page, in Debian's Chromium, with Lighthouse's default mobile preset (simulated
throttling: a mid-range phone on a slow 4G network).

    python3 bench/lighthouse.py [--binary target/release/example-app] [--runs 3]
                                [--screenshots docs/screenshots]

Each page is audited --runs times (the example app's own release build by default, in an
empty folder, as a visitor gets it) and the median of each figure is reported. Besides
the four category scores, it checks what the issue asks of every page: no render-blocking
request, and the LCP image (where the LCP is an image) found in the HTML, not lazy-loaded
and fetched with high priority. Writes bench/out/lighthouse.md and each run's JSON report;
exits 1 when a score is below 100 or a check fails. With --screenshots, also saves a
desktop-width JPEG screenshot of the first three pages (the README's tour).

Needs Chromium (Debian's package, installed if missing) and lighthouse@12 (bench/
package.json, installed with npm if missing).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from common import NODE_BIN, OUT, ROOT, TARGET, need, npm_install, start_app

PAGES = [
    ("landing", "/"),
    ("journal", "/journal"),
    ("reflection", "/reflections/20"),
    ("compose", "/reflections/new"),
]
CATEGORIES = ["performance", "accessibility", "best-practices", "seo"]


def lighthouse(url, out):
    env = dict(os.environ, CHROME_PATH="/usr/bin/chromium")
    subprocess.run(
        [
            os.path.join(NODE_BIN, "lighthouse"),
            url,
            "--quiet",
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
            f"--only-categories={','.join(CATEGORIES)}",
            "--output=json",
            f"--output-path={out}",
        ],
        check=True,
        env=env,
    )
    with open(out) as f:
        return json.load(f)


def checks(report):
    """What the issue asks beyond the scores: (name, passed, detail)."""
    audits = report["audits"]
    out = []
    blocking = audits.get("render-blocking-insight") or audits.get("render-blocking-resources")
    items = (blocking.get("details") or {}).get("items", []) if blocking else []
    out.append(("no render-blocking request", not items, ", ".join(i.get("url", "?") for i in items)))
    lcp = audits.get("largest-contentful-paint-element", {})
    lcp_items = (lcp.get("details") or {}).get("items", [])
    node = ""
    for group in lcp_items:
        for item in (group.get("items") or [group]):
            if isinstance(item, dict) and item.get("node"):
                node = item["node"].get("snippet", "")
                break
        if node:
            break
    image = node.startswith("<img")
    if image:
        discovery = audits.get("lcp-discovery-insight", {})
        lazy = audits.get("lcp-lazy-loaded", {})
        out.append(("LCP image found in the HTML and prioritised", discovery.get("score") == 1, discovery.get("title", "")))
        out.append(("LCP image not lazy-loaded", lazy.get("score", 1) == 1, ""))
    return out, (node[:80] if node else "?")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(TARGET, "release", "example-app"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--screenshots", help="save a 1280x900 screenshot of the landing, journal and reflection pages here")
    args = ap.parse_args()
    need("/usr/bin/chromium", "chromium")
    npm_install()
    if not os.path.exists(os.path.join(NODE_BIN, "lighthouse")):
        sys.exit("lighthouse is missing from bench/node_modules (npm install in bench/)")
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} is missing: cargo build --release --bin example-app")
    os.makedirs(os.path.join(OUT, "lighthouse"), exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="perf-lighthouse-")
    proc, base = start_app(args.binary, scratch)
    failures = []
    rows = []
    try:
        for name, path in PAGES:
            url = base.rstrip("/") + path
            runs = []
            for i in range(args.runs):
                runs.append(lighthouse(url, os.path.join(OUT, "lighthouse", f"{name}-{i + 1}.json")))
            median = lambda f: statistics.median(f(r) for r in runs)
            scores = {c: median(lambda r, c=c: round(r["categories"][c]["score"] * 100)) for c in CATEGORIES}
            figures = {
                "weight": median(lambda r: r["audits"]["total-byte-weight"]["numericValue"]),
                "requests": median(lambda r: len(r["audits"]["network-requests"]["details"]["items"])),
                "fcp": median(lambda r: r["audits"]["first-contentful-paint"]["numericValue"]),
                "lcp": median(lambda r: r["audits"]["largest-contentful-paint"]["numericValue"]),
                "tbt": median(lambda r: r["audits"]["total-blocking-time"]["numericValue"]),
                "cls": median(lambda r: r["audits"]["cumulative-layout-shift"]["numericValue"]),
            }
            results, lcp_node = checks(runs[0])
            for r in runs[1:]:
                more, _ = checks(r)
                results = [(n, ok and ok2, d or d2) for (n, ok, d), (_, ok2, d2) in zip(results, more)]
            for c, s in scores.items():
                if s < 100:
                    failures.append(f"{path}: {c} {s}")
            for check, ok, detail in results:
                if not ok:
                    failures.append(f"{path}: {check} ({detail})")
            rows.append((name, path, scores, figures, results, lcp_node))
            print(f"{path}: {scores} {figures}", file=sys.stderr)
        if args.screenshots:
            os.makedirs(args.screenshots, exist_ok=True)
            for name, path in PAGES[:3]:
                subprocess.run(
                    [
                        "/usr/bin/chromium",
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--hide-scrollbars",
                        "--window-size=1280,900",
                        f"--screenshot={os.path.join(args.screenshots, name + '.jpg')}",
                        base.rstrip("/") + path,
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)

    version = runs[0]["lighthouseVersion"]
    chrome = runs[0]["environment"]["hostUserAgent"].split("Chrome/")[-1].split(" ")[0]
    lines = [
        f"Lighthouse {version}, Chromium {chrome}, mobile preset (simulated throttling), "
        f"{args.runs} runs per page, medians; binary `{os.path.relpath(args.binary, ROOT)}`.",
        "",
        "| page | performance | accessibility | best practices | SEO | weight | requests | FCP | LCP | TBT | CLS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, path, s, f, _, _ in rows:
        lines.append(
            f"| {name} (`{path}`) | {s['performance']:.0f} | {s['accessibility']:.0f} | {s['best-practices']:.0f} | {s['seo']:.0f} "
            f"| {f['weight'] / 1024:.1f} KiB | {f['requests']:.0f} | {f['fcp'] / 1000:.2f} s | {f['lcp'] / 1000:.2f} s "
            f"| {f['tbt']:.0f} ms | {f['cls']:.3f} |"
        )
    lines += ["", "| page | LCP element | checks |", "| --- | --- | --- |"]
    for name, path, _, _, results, node in rows:
        marks = "; ".join(f"{n}: {'yes' if ok else 'NO'}" for n, ok, _ in results)
        lines.append(f"| {name} | `{node.replace('|', '/')}` | {marks} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(OUT, "lighthouse.md"), "w") as f:
        f.write(text)
    print(text)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
