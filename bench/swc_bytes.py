#!/usr/bin/env python3
"""JS bytes against swc's own minifier: popular libraries minified by perf-build and by
`@swc/core`'s `minify` (compress and mangle on), both gzipped (-9) in the same run.

    python3 bench/swc_bytes.py     # writes bench/out/swc-bytes.md

@swc/core runs twice: with its default comment policy (every comment dropped) and with
`format.comments: "some"`, the policy perf-build follows (licence comments kept, as
terser and esbuild do). Libraries and versions are pinned in bench/package.json.
"""

import gzip
import json
import os

from common import BENCH, OUT, fresh, npm_install, perf_build_cli, run

CORPUS = {
    "jquery.js": "jquery/dist/jquery.js",
    "d3.js": "d3/dist/d3.js",
    "vue.global.js": "vue/dist/vue.global.js",
    "vue.esm-browser.mjs": "vue/dist/vue.esm-browser.js",
    "react-dom-client.js": "react-dom/cjs/react-dom-client.production.js",
}

SWC = r"""
const swc = require('@swc/core'); const fs = require('fs'); const path = require('path');
const [dir, out, some] = process.argv.slice(2);
fs.mkdirSync(out, { recursive: true });
for (const f of fs.readdirSync(dir)) {
  const src = fs.readFileSync(path.join(dir, f), 'utf8');
  const options = { compress: true, mangle: true, module: f.endsWith('.mjs') };
  if (some === 'some') options.format = { comments: 'some' };
  fs.writeFileSync(path.join(out, f), swc.minifySync(src, options).code);
}
"""


def gz(data):
    return len(gzip.compress(data, 9))


def main():
    npm_install()
    cli = perf_build_cli()
    root = fresh(os.path.join(OUT, "swc-bytes"))
    corpus = os.path.join(root, "corpus", "js")
    os.makedirs(corpus)
    for name, src in CORPUS.items():
        with open(os.path.join(BENCH, "node_modules", src), "rb") as f:
            data = f.read()
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    ours = os.path.join(root, "ours")
    run([cli, "build", "--static-dir", os.path.dirname(corpus), "--dist-dir", ours,
         "--quiet", "--no-precompress", "--cache-dir", os.path.join(root, "cache")])
    script = os.path.join(root, "swc.js")
    with open(script, "w") as f:
        f.write(SWC)
    for policy in ["none", "some"]:
        run(["node", script, corpus, os.path.join(root, "swc-" + policy), policy], cwd=BENCH,
            env=dict(os.environ, NODE_PATH=os.path.join(BENCH, "node_modules")))
    manifest = json.load(open(os.path.join(ours, "manifest.json")))
    lines = [
        "| file | raw | perf-build min / gzip | @swc/core min / gzip (comments dropped) | @swc/core min / gzip (licence comments kept) | gzip vs swc, same comments |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in CORPUS:
        entry = manifest["js/" + name]
        mine = open(os.path.join(ours, entry["file"]), "rb").read()
        none = open(os.path.join(root, "swc-none", name), "rb").read()
        some = open(os.path.join(root, "swc-some", name), "rb").read()
        raw = os.path.getsize(os.path.join(corpus, name))
        lines.append(
            f"| {name} | {raw:,} | {len(mine):,} / {gz(mine):,} | {len(none):,} / {gz(none):,} | "
            f"{len(some):,} / {gz(some):,} | {gz(mine) / gz(some):.4f}x |"
        )
    text = "\n".join(lines) + "\n"
    open(os.path.join(OUT, "swc-bytes.md"), "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
