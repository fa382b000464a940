#!/usr/bin/env python3
"""Minification and the whole asset job on real libraries, against esbuild, the
lightningcss CLI and the brotli/gzip command-line tools, measured in the same run.

    python3 bench/minify.py            # writes bench/out/minify.md

Needs node/npm (the corpus and peers come from the npm registry, pinned in
bench/package.json), hyperfine and brotli (Debian packages; installed if missing).
"""

import gzip
import json
import os
import shutil
import subprocess

from common import BENCH, OUT, NODE_BIN, fresh, hyperfine, need, npm_install, perf_build_cli, run

CORPUS = {
    "css/bootstrap.css": "bootstrap/dist/css/bootstrap.css",
    "js/bootstrap.esm.js": "bootstrap/dist/js/bootstrap.esm.js",
    "js/lodash.js": "lodash/lodash.js",
    "js/three.core.js": "three/build/three.core.js",
}


def brotli_size(data):
    return len(subprocess.run(["brotli", "-q", "11", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout)


def gzip_size(data):
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def main():
    need("hyperfine", "hyperfine")
    need("brotli", "brotli")
    npm_install()
    cli = perf_build_cli()
    work = fresh(os.path.join(OUT, "minify"))
    static = os.path.join(work, "static")
    for logical, src in CORPUS.items():
        dst = os.path.join(static, logical)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(os.path.join(BENCH, "node_modules", src), dst)
    files = [os.path.join(static, l) for l in CORPUS]
    css_files = [f for f in files if f.endswith(".css")]
    esbuild = os.path.join(NODE_BIN, "esbuild")
    lightningcss = os.path.join(NODE_BIN, "lightningcss")
    cache = os.path.join(work, "cache")
    ours_min = f"{cli} build --static-dir {static} --dist-dir {work}/pb-min --no-precompress --quiet --cache-dir {cache}"
    ours_all = f"{cli} build --static-dir {static} --dist-dir {work}/pb-all --quiet --cache-dir {cache}"
    esb = f"{esbuild} --minify --log-level=warning --outbase={static} --outdir={work}/esbuild " + " ".join(files)
    lcss = " && ".join(
        f"{lightningcss} --minify --targets defaults {f} -o {work}/lcss-{os.path.basename(f)}" for f in css_files
    )
    esb_files = " ".join(f"{work}/esbuild/{l}" for l in CORPUS)
    peers_all = f"{esb} && for f in {esb_files}; do brotli -q 11 -f -k $f && gzip -9 -k -f $f; done"

    # Every perf-build run starts from an empty cache: this measures the work, not the cache.
    t_ours_min, t_esb, t_ours_all, t_peers_all = hyperfine(
        [ours_min, esb, ours_all, peers_all], runs=5, prepare=f"rm -rf {cache}"
    )
    (t_lcss,) = hyperfine([lcss], runs=5, prepare="true")
    (t_ours_css,) = hyperfine(
        [f"{cli} build --static-dir {work}/css-only --dist-dir {work}/pb-css --no-precompress --quiet --cache-dir {cache}"],
        runs=5,
        prepare=f"rm -rf {cache} && mkdir -p {work}/css-only/css && cp {' '.join(css_files)} {work}/css-only/css/",
    )

    manifest = json.load(open(f"{work}/pb-min/manifest.json"))
    rows = []
    for logical in CORPUS:
        raw = open(os.path.join(static, logical), "rb").read()
        ours = open(os.path.join(work, "pb-min", manifest[logical]["file"]), "rb").read()
        peer = open(os.path.join(work, "esbuild", logical), "rb").read()
        row = {"file": logical, "raw": len(raw), "ours": ours, "esbuild": peer}
        if logical.endswith(".css"):
            row["lcss"] = open(f"{work}/lcss-{os.path.basename(logical)}", "rb").read()
        rows.append(row)

    out = []
    out.append("| file | raw | perf-build min / gzip -9 / brotli 11 | esbuild min / gzip / brotli | lightningcss CLI min / gzip / brotli | gzip ratio vs esbuild |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        o, e = r["ours"], r["esbuild"]
        l = r.get("lcss")
        trip = lambda b: f"{len(b):,} / {gzip_size(b):,} / {brotli_size(b):,}"
        out.append(
            f"| {r['file']} | {r['raw']:,} | {trip(o)} | {trip(e)} | {trip(l) if l else '-'} | "
            f"{gzip_size(o) / gzip_size(e):.3f}x |"
        )
    out.append("")
    out.append("| job (whole corpus, medians of 5) | perf-build | peer | ratio |")
    out.append("| --- | ---: | ---: | ---: |")
    out.append(f"| minify CSS + JS (cold cache) | {t_ours_min * 1000:.0f} ms | esbuild {t_esb * 1000:.0f} ms | {t_ours_min / t_esb:.2f}x |")
    out.append(f"| minify CSS only | {t_ours_css * 1000:.0f} ms | lightningcss CLI {t_lcss * 1000:.0f} ms | {t_ours_css / t_lcss:.2f}x |")
    out.append(
        f"| minify + hash + brotli 11 + gzip 9 (+ zstd 19) | {t_ours_all * 1000:.0f} ms | "
        f"esbuild, then brotli -q 11 and gzip -9 CLIs {t_peers_all * 1000:.0f} ms | {t_ours_all / t_peers_all:.2f}x |"
    )
    text = "\n".join(out) + "\n"
    open(os.path.join(OUT, "minify.md"), "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
