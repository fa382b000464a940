#!/usr/bin/env python3
"""Build time of the example app's front end (issue 11): perf-build against esbuild and
Vite on the same entry modules, measured in the same run.

    python3 bench/bundle_time.py                 # writes bench/out/bundle_time.md and .json
    python3 bench/bundle_time.py --rounds 5 --runs 5
    PERF_BUILD_CLI=path python3 bench/bundle_time.py   # that binary, no cargo build

Inputs (bench/bundle_inputs.py): the app's ES modules copied out of example-app/static
(js/, features/: 7 modules, 32 KB with date-fns's 28 modules reached through
`formatDistanceToNow`), entries js/journal.js, js/reflection.js, js/site.js,
features/chat.js, features/settings.js; `js/features/mood-chart.js` is a split point of
journal.js. No images or stylesheets: every tool gets JavaScript only.

- perf-build, cold: the dev-profile CLI (`target/debug/perf-build`, what build scripts run)
  with an empty cache and `--no-precompress`: bundle (rolldown), minify (swc), hash, write the
  files and manifest.json: esbuild's job plus hashing and the manifest.
- perf-build, cold with precompression: the same plus brotli 11, gzip 9 and zstd 19 of every
  file (what a release build does).
- perf-build, warm: nothing changed since the previous run, cache and dist kept.
- esbuild: `esbuild --bundle --splitting --format=esm --minify` (npm, pinned).
- Vite: `vite build` (npm, pinned; rolldown + its oxc minifier), its default production
  build with `build.rollupOptions.input` = the five entries, `build.manifest`, and
  `preserveEntrySignatures: "exports-only"` (without it Vite empties the two features, whose
  exports only CodeSplitter uses; see bench/bundle.py). Node's start-up and the config's
  loading are inside the figure, as they are for a user.

hyperfine, --rounds invocations (default 3) of --runs runs (default 5) per command and one
warm-up, the commands in a rotated order each round; the table gives the median wall time
of all runs and the median CPU time (user + system) of the rounds. The load average is
printed: the machine has 2 cores, shared with other builds.
"""

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import bundle_inputs as bi  # noqa: E402
from common import OUT  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    bi.tools()
    cli = bi.perf_build_cli()
    app, app_esbuild = bi.app_tree()
    w = os.path.join(bi.WORK, "time")
    os.makedirs(w, exist_ok=True)
    static = os.path.join(app, "static")
    inputs = {name: os.path.join(static, path) for name, path in bi.APP_ENTRIES.items()}

    rows = [
        ("perf-build, cold (empty cache, `--no-precompress`)",
         bi.ours_cmd(cli, app, f"{w}/ours-cold", f"{w}/ours-cold-cache"),
         f"rm -rf {w}/ours-cold {w}/ours-cold-cache"),
        ("perf-build, cold, with precompression (brotli 11, gzip 9, zstd 19)",
         bi.ours_cmd(cli, app, f"{w}/ours-pre", f"{w}/ours-pre-cache", precompress=True),
         f"rm -rf {w}/ours-pre {w}/ours-pre-cache"),
        ("perf-build, warm (nothing changed)",
         bi.ours_cmd(cli, app, f"{w}/ours-warm", f"{w}/ours-warm-cache"),
         None),
        ("esbuild `--bundle --splitting --format=esm --minify`",
         bi.esbuild_cmd(os.path.join(app_esbuild, "static"), f"{w}/esbuild", list(bi.APP_ENTRIES.values())),
         f"rm -rf {w}/esbuild"),
        ("`vite build`",
         bi.vite_cmd(static, f"{w}/vite", inputs, alias=bi.SPLITTER, preserve="exports-only"),
         None),
    ]
    load_before = bi.load_average()
    results = bi.timed([r[1] for r in rows], args.rounds, args.runs, prepares=[r[2] for r in rows])
    load_after = bi.load_average()

    versions = bi.peer_versions()
    esb = results[3]
    vite = results[4]
    cmd = "python3 bench/bundle_time.py" + (f" --rounds {args.rounds}" if args.rounds != 3 else "") + (
        f" --runs {args.runs}" if args.runs != 5 else "")
    lines = [
        "# Build time of the example app's entries: perf-build against esbuild and Vite",
        "",
        f"`{cmd}`: perf-build at {bi.git_state()} (dev-profile CLI), esbuild {versions['esbuild']}, "
        f"Vite {versions['vite']} (rolldown {versions['rolldown']}), node {versions['node']}; "
        f"{args.rounds} x {args.runs} runs per command; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after (2 cores).",
        "",
        "| build | wall, median | CPU, median | wall / esbuild | wall / Vite |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for (name, _, _), r in zip(rows, results):
        lines.append(f"| {name} | {bi.ms(r['wall'])} | {bi.ms(r['cpu'])} | {r['wall'] / esb['wall']:.2f}x | "
                     f"{r['wall'] / vite['wall']:.2f}x |")
    lines += ["", "Spread (min-max of the wall times):", ""]
    for (name, _, _), r in zip(rows, results):
        lines.append(f"- {name}: {bi.ms(min(r['walls']))}-{bi.ms(max(r['walls']))}")
    lines += ["", "Commands:", ""] + [f"- `{c}`" for _, c, _ in rows]
    report = "\n".join(lines) + "\n"
    print(report)
    with open(os.path.join(OUT, "bundle_time.md"), "w") as f:
        f.write(report)
    with open(os.path.join(OUT, "bundle_time.json"), "w") as f:
        json.dump(dict(versions=versions, load=[load_before, load_after],
                       rows=[dict(name=n, cmd=c, prepare=p, **r) for (n, c, p), r in zip(rows, results)]), f, indent=1)


if __name__ == "__main__":
    main()
