#!/usr/bin/env python3
"""JS bytes against swc's own minifier: popular libraries minified by perf-build and by
`@swc/core`'s `minify` (compress and mangle on), both gzipped (-9) in the same run.

    python3 bench/swc_bytes.py     # writes bench/out/swc-bytes.md

@swc/core runs twice: with its default comment policy (every comment dropped) and with
`format.comments: "some"`, the policy perf-build follows (licence comments kept, as
terser and esbuild do). Each library's smoke check (its own API on a few inputs, in node)
runs on the original and on our output; a failure fails the script. Libraries and
versions are pinned in bench/package.json.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys

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


# Each library's own behaviour, checked on the original and on our minified file: the
# bytes only count if the code still works.
SMOKE = r"""
const assert = require('assert'); const path = require('path'); const vm = require('vm'); const fs = require('fs');
const [kind, file] = process.argv.slice(2);
(async () => {
  if (kind === 'd3.js') {
    const d3 = require(file);
    assert.strictEqual(d3.scaleLinear().domain([0, 10]).range([0, 100])(5), 50);
    assert.strictEqual(d3.format('.2f')(3.14159), '3.14');
    assert.deepStrictEqual(d3.extent([3, 1, 2]), [1, 3]);
  } else if (kind === 'vue.global.js') {
    const ctx = { console }; ctx.globalThis = ctx; ctx.window = ctx; vm.createContext(ctx);
    vm.runInContext(fs.readFileSync(file, 'utf8'), ctx);
    const { reactive, computed, h, createSSRApp } = ctx.Vue;
    const s = reactive({ a: 1 }); const c = computed(() => s.a * 2); s.a = 21;
    assert.strictEqual(c.value, 42);
    assert.strictEqual(typeof createSSRApp({ render: () => h('p', 'hi') }).mount, 'function');
  } else if (kind === 'vue.esm-browser.mjs') {
    const Vue = await import(file);
    const s = Vue.reactive({ n: [1, 2] }); const total = Vue.computed(() => s.n.reduce((a, b) => a + b, 0));
    s.n.push(39); assert.strictEqual(total.value, 42);
  } else if (kind === 'react-dom-client.js') {
    const m = require(file);
    assert.strictEqual(typeof m.createRoot, 'function');
    assert.strictEqual(typeof m.hydrateRoot, 'function');
  } else if (kind === 'jquery.js') {
    const ctx = { console, setTimeout, clearTimeout, location: { href: 'http://localhost/' } }; ctx.window = ctx; ctx.globalThis = ctx; vm.createContext(ctx);
    // jQuery wants a document: a tiny one is enough for its utilities.
    ctx.document = { createElement: () => ({ style: {}, setAttribute() {}, appendChild() {}, getElementsByTagName: () => [] }), documentElement: { contains: () => true, getAttribute() {}, style: {} }, addEventListener() {}, readyState: 'complete', nodeType: 9, getElementsByTagName: () => [], createDocumentFragment: () => ({ appendChild() {} }) };
    vm.runInContext(fs.readFileSync(file, 'utf8'), ctx);
    const $ = ctx.jQuery;
    assert.strictEqual($.trim ? $.trim('  x ') : '  x '.trim(), 'x');
    assert.deepStrictEqual(Array.from($.map([1, 2, 3], x => x * 2)), [2, 4, 6]);
    assert.strictEqual($.extend({}, { a: 1 }, { b: 2 }).b, 2);
    assert.strictEqual($.isPlainObject({}), true);
  }
  console.log('ok', kind);
})().catch(e => { console.error('FAIL', kind, e.message); process.exit(1); });
"""


def smoke(root, kind, path):
    """Runs the smoke check of `kind` on `path` with node; `ok` or the failure."""
    if not path.endswith(".mjs"):
        # d3 and react-dom are CommonJS: node needs a .cjs name beside the hashed one.
        copy = os.path.join(root, "smoke-" + kind.replace(".", "-") + ".cjs")
        shutil.copy(path, copy)
        path = copy
    script = os.path.join(root, "smoke.js")
    with open(script, "w") as f:
        f.write(SMOKE)
    out = subprocess.run(["node", script, kind, path], capture_output=True, text=True,
                         env=dict(os.environ, NODE_PATH=os.path.join(BENCH, "node_modules")))
    return "ok" if out.returncode == 0 else "FAILED: " + out.stderr.strip()


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
        "| file | raw | perf-build min / gzip | @swc/core min / gzip (comments dropped) | @swc/core min / gzip (licence comments kept) | gzip vs swc, same comments | smoke test, original / ours |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    failed = False
    for name in CORPUS:
        entry = manifest["js/" + name]
        mine = open(os.path.join(ours, entry["file"]), "rb").read()
        none = open(os.path.join(root, "swc-none", name), "rb").read()
        some = open(os.path.join(root, "swc-some", name), "rb").read()
        raw = os.path.getsize(os.path.join(corpus, name))
        checks = [smoke(root, name, os.path.join(corpus, name)),
                  smoke(root, name, os.path.join(ours, entry["file"]))]
        failed |= any(c != "ok" for c in checks)
        lines.append(
            f"| {name} | {raw:,} | {len(mine):,} / {gz(mine):,} | {len(none):,} / {gz(none):,} | "
            f"{len(some):,} / {gz(some):,} | {gz(mine) / gz(some):.4f}x | {' / '.join(checks)} |"
        )
    text = "\n".join(lines) + "\n"
    open(os.path.join(OUT, "swc-bytes.md"), "w").write(text)
    print(text)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
