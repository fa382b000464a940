#!/usr/bin/env python3
"""Incremental rebuilds: the pipeline on an unchanged input and with one changed asset,
against a cold run (empty cache) on the same assets, in the same run.

    python3 bench/rebuild.py           # writes bench/out/rebuild.md

Two inputs: the example app's static/ (what `cargo build -p example-app` runs on) and
a larger one (the minify corpus plus the example app). Each timing is the median of
hyperfine runs of the perf-build CLI (release, best compression); a "cold" run starts
from an empty cache, the others from the cache the previous run left.
"""

import os
import shutil

from common import BENCH, OUT, ROOT, fresh, hyperfine, need, npm_install, perf_build_cli

EXTRA = {
    "vendor/bootstrap.css": "bootstrap/dist/css/bootstrap.css",
    "vendor/lodash.js": "lodash/lodash.js",
    "vendor/three.core.js": "three/build/three.core.js",
}


def measure(cli, name, static, changed):
    work = os.path.join(OUT, "rebuild", name)
    cache = os.path.join(work, "cache")
    dist = os.path.join(work, "dist")
    cmd = f"{cli} build --static-dir {static} --dist-dir {dist} --quiet --cache-dir {cache}"
    (cold,) = hyperfine([cmd], runs=5, warmup=0, prepare=f"rm -rf {cache} {dist}")
    (nochange,) = hyperfine([cmd], runs=10, warmup=1)
    # A new rule each run, so every run sees one changed file whose output changes too
    # (a comment would be minified away and its compression found in the cache).
    edit = f"printf '\\n.edit-%s {{ color: red; }}\\n' $(date +%s%N) >> {os.path.join(static, changed)}"
    (one,) = hyperfine([cmd], runs=10, warmup=1, prepare=edit)
    return cold, nochange, one


def main():
    need("hyperfine", "hyperfine")
    npm_install()
    cli = perf_build_cli()
    root = fresh(os.path.join(OUT, "rebuild"))
    app = os.path.join(root, "app-static")
    shutil.copytree(os.path.join(ROOT, "example-app", "static"), app)
    big = os.path.join(root, "big-static")
    shutil.copytree(os.path.join(ROOT, "example-app", "static"), big)
    for logical, src in EXTRA.items():
        os.makedirs(os.path.dirname(os.path.join(big, logical)), exist_ok=True)
        shutil.copy(os.path.join(BENCH, "node_modules", src), os.path.join(big, logical))
    lines = [
        "| input | cold (empty cache) | no change | ratio | one CSS file changed | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, name, static in [("app", "example-app static/", app), ("big", "example-app + bootstrap, lodash, three", big)]:
        cold, nochange, one = measure(cli, key, static, "css/app.css")
        lines.append(
            f"| {name} | {cold * 1000:.0f} ms | {nochange * 1000:.1f} ms | {nochange / cold * 100:.1f}% | "
            f"{one * 1000:.1f} ms | {one / cold * 100:.1f}% |"
        )
    text = "\n".join(lines) + "\n"
    open(os.path.join(OUT, "rebuild.md"), "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
