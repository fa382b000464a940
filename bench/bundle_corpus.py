#!/usr/bin/env python3
"""Bundling public libraries (issue 11): lodash-es (644 ES modules) and d3 (31 packages,
one ES module each), the whole library and a few functions (tree shaking), with
perf-build, esbuild and Vite in the same run: build time, output bytes, and a smoke check
that every output behaves like the library itself.

    python3 bench/bundle_corpus.py               # writes bench/out/bundle_corpus.md and .json
    python3 bench/bundle_corpus.py --rounds 5 --runs 3
    PERF_BUILD_CLI=path python3 bench/bundle_corpus.py   # that binary, no cargo build

The corpus is pinned in bench/bundle/package.json (lodash-es 4.18.1, d3 7.9.2) and
installed into bench/out/bundle/npm. Each entry is its own project,
bench/out/bundle/npm/corpus/<entry>/static/entry.js (a `package.json` with
`"type": "module"` beside it, and the packages found in the node_modules above), built alone:

- `lodash-all`: `import * as _ from "lodash-es"; globalThis._ = _;`
- `lodash-few`: `debounce`, `groupBy`, `merge`, `chunk`, set on `globalThis._`
- `d3-all`: `import * as d3 from "d3"; globalThis.d3 = d3;`
- `d3-few`: `scaleLinear`, `extent`, `format`, `csvParse`, set on `globalThis.d3`

Tools: perf-build's dev-profile CLI (cold: empty cache, `--no-precompress`; warm: nothing
changed; and cold with `--no-minify`, to tell bundling from minifying), `esbuild --bundle --splitting --format=esm --minify`, `vite build` (its default
production build, the entry as `build.rollupOptions.input`). Times: hyperfine, --rounds
invocations (3) of --runs runs (3) per command, rotated order, median wall time; CPU
(user + system) as the median of the rounds' means.

Bytes: every .js file each tool wrote (perf-build's built-in `_perf/code-splitter.js`, which
it adds beside any script and no entry here imports, left out), and the same re-compressed
by the same tools for all: gzip -9 (zlib) and `brotli -q 11`.

Smoke check: `node bench/bundle/smoke.mjs FILE GLOBAL` runs a few of the library's
functions through each output and through the unbundled entry; every line must be the same
(the script fails otherwise).
"""

import argparse
import glob
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import bundle_inputs as bi  # noqa: E402
from common import OUT  # noqa: E402

ENTRIES = {
    "lodash-all": ("_", 'import * as _ from "lodash-es";\nglobalThis._ = _;\n'),
    "lodash-few": ("_", 'import { debounce, groupBy, merge, chunk } from "lodash-es";\n'
                        "globalThis._ = { debounce, groupBy, merge, chunk };\n"),
    "d3-all": ("d3", 'import * as d3 from "d3";\nglobalThis.d3 = d3;\n'),
    "d3-few": ("d3", 'import { scaleLinear, extent, format, csvParse } from "d3";\n'
                     "globalThis.d3 = { scaleLinear, extent, format, csvParse };\n"),
}
TOOLS = ["perf-build", "esbuild", "Vite"]
SMOKE = os.path.join(bi.PINS, "smoke.mjs")


def project(name, source):
    d = bi.common.fresh(os.path.join(bi.NPM, "corpus", name))
    os.makedirs(os.path.join(d, "static"))
    with open(os.path.join(d, "package.json"), "w") as f:
        json.dump({"private": True, "type": "module"}, f)
    with open(os.path.join(d, "static", "entry.js"), "w") as f:
        f.write(source)
    return d


def outputs(tool, out):
    """The .js files a tool wrote, with their bytes."""
    files = []
    for path in sorted(glob.glob(os.path.join(out, "**", "*.js"), recursive=True)):
        rel = os.path.relpath(path, out)
        if tool == "perf-build" and rel.startswith("_perf/code-splitter."):
            continue
        if "/.vite/" in path or "/.perf-cache/" in path:
            continue
        files.append((rel, open(path, "rb").read()))
    return files


def entry_file(tool, out):
    if tool == "perf-build":
        with open(os.path.join(out, "manifest.json")) as f:
            return os.path.join(out, json.load(f)["entry.js"]["file"])
    if tool == "esbuild":
        return os.path.join(out, "entry.js")
    with open(os.path.join(out, ".vite", "manifest.json")) as f:
        return os.path.join(out, json.load(f)["entry.js"]["file"])


def smoke(file, glob_name):
    d = os.path.dirname(file)
    pkg = os.path.join(d, "package.json")
    if not os.path.exists(pkg):  # node reads .js as CommonJS without it
        with open(pkg, "w") as f:
            json.dump({"type": "module"}, f)
    r = subprocess.run(["node", SMOKE, file, glob_name], capture_output=True, text=True)
    if r.returncode != 0:
        return "FAILED: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return r.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    bi.tools()
    cli = bi.perf_build_cli()
    w = os.path.join(bi.WORK, "corpus")
    os.makedirs(w, exist_ok=True)

    modules = {}
    commands, prepares, index = [], [], []
    for name, (_, source) in ENTRIES.items():
        d = project(name, source)
        static = os.path.join(d, "static")
        o = os.path.join(w, name)
        rows = [
            ("perf-build cold", bi.ours_cmd(cli, d, f"{o}/ours", f"{o}/ours-cache"), f"rm -rf {o}/ours {o}/ours-cache"),
            ("perf-build warm", bi.ours_cmd(cli, d, f"{o}/ours-warm", f"{o}/ours-warm-cache"), None),
            ("perf-build cold, no minify", bi.ours_cmd(cli, d, f"{o}/ours-nomin", f"{o}/ours-nomin-cache", minify=False),
             f"rm -rf {o}/ours-nomin {o}/ours-nomin-cache"),
            ("esbuild", bi.esbuild_cmd(static, f"{o}/esbuild", ["entry.js"]), f"rm -rf {o}/esbuild"),
            ("Vite", bi.vite_cmd(static, f"{o}/vite", {"entry": os.path.join(static, "entry.js")}), None),
        ]
        for label, cmd, prep in rows:
            commands.append(cmd)
            prepares.append(prep)
            index.append((name, label))

    load_before = bi.load_average()
    results = bi.timed(commands, args.rounds, args.runs, prepares=prepares)
    load_after = bi.load_average()
    times = {k: r for k, r in zip(index, results)}

    # Module counts, from perf-build's manifest (what rolldown read).
    data = {}
    failures = []
    for name, (glob_name, _) in ENTRIES.items():
        o = os.path.join(w, name)
        with open(os.path.join(o, "ours", "manifest.json")) as f:
            chunk = json.load(f)["entry.js"]["chunk"]
        modules[name] = len(chunk["modules"])
        reference = smoke(os.path.join(bi.NPM, "corpus", name, "static", "entry.js"), glob_name)
        row = dict(modules=modules[name], reference=reference, tools={})
        for tool, sub in zip(TOOLS, ("ours", "esbuild", "vite")):
            files = outputs(tool, os.path.join(o, sub))
            size = bi.add(*[bi.sizes(b) for _, b in files])
            result = smoke(entry_file(tool, os.path.join(o, sub)), glob_name)
            if result != reference:
                failures.append(f"{name}, {tool}: {result} (unbundled: {reference})")
            row["tools"][tool] = dict(files=[f for f, _ in files], bytes=size, smoke=result, same=result == reference)
        data[name] = row

    versions = bi.peer_versions()
    cmd = "python3 bench/bundle_corpus.py" + (f" --rounds {args.rounds}" if args.rounds != 3 else "") + (
        f" --runs {args.runs}" if args.runs != 3 else "")
    lines = [
        "# Bundling lodash-es and d3: perf-build against esbuild and Vite",
        "",
        f"`{cmd}`: perf-build at {bi.git_state()} (dev-profile CLI), esbuild {versions['esbuild']}, "
        f"Vite {versions['vite']} (rolldown {versions['rolldown']}), lodash-es {versions['lodash_es']}, "
        f"d3 {versions['d3']}, node {versions['node']}; {args.rounds} x {args.runs} runs per command; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (2 cores).",
        "",
        "## Bytes (every .js file written; gzip -9 and brotli -q 11 by the same tools for all)",
        "",
        "| entry | modules | perf-build min / gzip / brotli | esbuild min / gzip / brotli | Vite min / gzip / brotli "
        "| brotli vs esbuild | brotli vs Vite | files (ours, esbuild, Vite) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, row in data.items():
        t = row["tools"]
        cells = [f"{b['raw']:,} / {b['gzip']:,} / {b['brotli']:,}" for b in (t[x]["bytes"] for x in TOOLS)]
        ours = t["perf-build"]["bytes"]["brotli"]
        lines.append(
            f"| {name} | {row['modules']} | {' | '.join(cells)} | {ours / t['esbuild']['bytes']['brotli']:.3f}x | "
            f"{ours / t['Vite']['bytes']['brotli']:.3f}x | {', '.join(str(len(t[x]['files'])) for x in TOOLS)} |")
    lines += [
        "",
        "## Time (median wall; CPU = user + system)",
        "",
        "| entry | perf-build cold | of which without minifying | perf-build warm | esbuild | Vite | cold / esbuild "
        "| cold / Vite |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ENTRIES:
        c, nm, wm, e, v = (times[(name, label)] for label in (
            "perf-build cold", "perf-build cold, no minify", "perf-build warm", "esbuild", "Vite"))
        lines.append(
            f"| {name} | {bi.ms(c['wall'])} (CPU {bi.ms(c['cpu'])}) | {bi.ms(nm['wall'])} | {bi.ms(wm['wall'])} | "
            f"{bi.ms(e['wall'])} "
            f"(CPU {bi.ms(e['cpu'])}) | {bi.ms(v['wall'])} (CPU {bi.ms(v['cpu'])}) | {c['wall'] / e['wall']:.2f}x | "
            f"{c['wall'] / v['wall']:.2f}x |")
    lines += ["", "## Smoke check (node, `bench/bundle/smoke.mjs`)", ""]
    for name, row in data.items():
        same = all(t["same"] for t in row["tools"].values())
        lines.append(f"- {name}: {'all three outputs print what the unbundled entry prints' if same else 'DIFFERENT'}: "
                     f"`{row['reference'][:200]}`")
    for f in failures:
        lines.append(f"- **{f}**")
    report = "\n".join(lines) + "\n"
    print(report)
    with open(os.path.join(OUT, "bundle_corpus.md"), "w") as f:
        f.write(report)
    with open(os.path.join(OUT, "bundle_corpus.json"), "w") as f:
        json.dump(dict(versions=versions, load=[load_before, load_after], entries=data,
                       times={f"{k[0]} / {k[1]}": v for k, v in times.items()},
                       commands=dict(zip([f"{a} / {b}" for a, b in index], commands))), f, indent=1)
    if failures:
        sys.exit("smoke check failed: " + "; ".join(failures))


if __name__ == "__main__":
    main()
