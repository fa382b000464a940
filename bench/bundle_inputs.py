"""What the bundling benchmarks (issue 11) share: the pinned peers, the example app's
modules copied out of the tree, the perf-build CLI, and one command line per bundler.

Not a benchmark itself: `bench/bundle.py` (the example app's pages in Chromium),
`bench/bundle_time.py` (build time on the app's entries) and `bench/bundle_corpus.py`
(d3 and lodash-es) import it.

- **Peers and corpus** are pinned in `bench/bundle/package.json` and its lock, and
  installed with `npm ci` into `bench/out/bundle/npm/` (git-ignored).
- **perf-build** is the dev-profile CLI, `target/debug/perf-build`, the binary users' build
  scripts run (perf-build and its engines are at opt-level 3 in the dev profile). The
  scripts run `cargo build -p perf-build --bin perf-build` first and copy the binary to
  `bench/out/bundle/bin/`, so a rebuild by someone else does not pull it from under a run;
  `PERF_BUILD_CLI=path` uses that binary instead and builds nothing.
- **The example app's front end** (`example-app/static`): its ES modules only (`js/`,
  `features/`), its templates (perf-build makes `js/site.js` an entry because `base.html`
  names it, as in the app's own build) and a link to `example-app/node_modules`, copied to
  `bench/out/bundle/app/`. The chunk hashes perf-build gives this copy are the ones the app
  serves (bench/bundle.py checks it). esbuild gets the same copy plus the CodeSplitter
  source at `static/_perf/code-splitter.js`, where the modules' `../_perf/code-splitter.js`
  points (esbuild has no alias for relative paths); Vite gets an alias to that same file.
"""

import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
import common  # noqa: E402
from common import OUT, ROOT, TARGET, run  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
PINS = os.path.join(BENCH, "bundle")
WORK = os.path.join(OUT, "bundle")
NPM = os.path.join(WORK, "npm")
NODE_MODULES = os.path.join(NPM, "node_modules")
VITE = os.path.join(NODE_MODULES, ".bin", "vite")
ESBUILD = os.path.join(NODE_MODULES, ".bin", "esbuild")
VITE_CONFIG = os.path.join(PINS, "vite.config.mjs")
SPLITTER_SOURCE = os.path.join(ROOT, "perf-build", "assets", "code-splitter.js")
# The CodeSplitter as perf-build bundles it into the modules that import it: the URL
# prefix written in where the source holds a placeholder. Vite and esbuild get this copy.
SPLITTER = os.path.join(WORK, "code-splitter.js")
os.makedirs(WORK, exist_ok=True)
with open(SPLITTER_SOURCE, encoding="utf-8") as _f:
    _text = _f.read().replace('"__PERF_URL_PREFIX__"', '"/static"')
with open(SPLITTER, "w", encoding="utf-8") as _f:
    _f.write(_text)
EXAMPLE = os.path.join(ROOT, "example-app")

# The example app's entries: chunk name -> module, as the brief and the templates name them.
APP_ENTRIES = {
    "js/journal": "js/journal.js",  # `/`
    "js/reflection": "js/reflection.js",  # `/reflections/1`
    "js/site": "js/site.js",  # `/about` (base.html)
    "features/chat": "features/chat.js",  # CodeSplitter.loadFeature("chat")
    "features/settings": "features/settings.js",
}


# --- tools ---------------------------------------------------------------------------------


def npm_ci():
    """The pinned peers and corpus in bench/out/bundle/npm (npm ci when the lock changed)."""
    os.makedirs(NPM, exist_ok=True)
    stale = not os.path.exists(os.path.join(NODE_MODULES, ".package-lock.json"))
    for name in ("package.json", "package-lock.json"):
        src, dst = os.path.join(PINS, name), os.path.join(NPM, name)
        if not os.path.exists(dst) or open(src, "rb").read() != open(dst, "rb").read():
            shutil.copy(src, dst)
            stale = True
    if stale:
        run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NPM)


def version(package):
    with open(os.path.join(NODE_MODULES, package, "package.json")) as f:
        return json.load(f)["version"]


def peer_versions():
    return dict(
        vite=version("vite"),
        rolldown=version("rolldown"),
        esbuild=version("esbuild"),
        d3=version("d3"),
        lodash_es=version("lodash-es"),
        node=subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
    )


def perf_build_cli():
    """The dev-profile perf-build CLI, copied out of target/ (see the module doc)."""
    if os.environ.get("PERF_BUILD_CLI"):
        return os.path.abspath(os.environ["PERF_BUILD_CLI"])
    run(["cargo", "build", "-q", "-p", "perf-build", "--bin", "perf-build"], cwd=ROOT)
    dst = os.path.join(WORK, "bin", "perf-build")
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(os.path.join(TARGET, "debug", "perf-build"), dst)
    return dst


def tools():
    common.need("hyperfine", "hyperfine")
    common.need("brotli", "brotli")
    npm_ci()


def git_state():
    """The commit measured, and whether perf-build or the example app had local changes (or
    which binary PERF_BUILD_CLI named)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "perf-build", "example-app/static", "example-app/templates"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    state = head + (" (with uncommitted changes to perf-build or the example app's front end)" if dirty else "")
    if os.environ.get("PERF_BUILD_CLI"):
        cli = os.environ["PERF_BUILD_CLI"]
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(cli)))
        state = f"the binary PERF_BUILD_CLI names ({cli}, built {built}); tree at {state}"
    return state


def load_average():
    return os.getloadavg()


# --- the example app's modules -------------------------------------------------------------


def app_tree():
    """bench/out/bundle/app (perf-build and Vite) and app-esbuild (esbuild): see the module doc.
    Returns (app, app_esbuild), each with static/ inside."""
    if not os.path.isdir(os.path.join(EXAMPLE, "node_modules", "date-fns")):
        run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"], cwd=EXAMPLE)
    trees = []
    for name in ("app", "app-esbuild"):
        tree = common.fresh(os.path.join(WORK, name))
        for sub in ("js", "features"):
            src_root = os.path.join(EXAMPLE, "static", sub)
            for folder, _, files in os.walk(src_root):
                for f in files:
                    if f.endswith((".js", ".mjs")):
                        src = os.path.join(folder, f)
                        dst = os.path.join(tree, "static", os.path.relpath(src, os.path.join(EXAMPLE, "static")))
                        os.makedirs(os.path.dirname(dst), exist_ok=True)
                        shutil.copy2(src, dst)
        shutil.copytree(os.path.join(EXAMPLE, "templates"), os.path.join(tree, "templates"))
        os.symlink(os.path.join(EXAMPLE, "node_modules"), os.path.join(tree, "node_modules"))
        trees.append(tree)
    os.makedirs(os.path.join(trees[1], "static", "_perf"))
    shutil.copy2(SPLITTER, os.path.join(trees[1], "static", "_perf", "code-splitter.js"))
    return trees


# --- one command line per bundler (shell strings, for hyperfine) -----------------------------


def q(s):
    """Single-quoted for sh."""
    return "'" + str(s).replace("'", "'\\''") + "'"


def ours_cmd(cli, cwd, dist, cache, precompress=False, minify=True):
    """perf-build's CLI on `cwd`/static, run from `cwd` (its templates folder names entries)."""
    return (f"cd {q(cwd)} && {q(cli)} build --static-dir static --dist-dir {q(dist)} --cache-dir {q(cache)} --quiet"
            + ("" if precompress else " --no-precompress") + ("" if minify else " --no-minify") + " >/dev/null")


def esbuild_cmd(static, out, entries):
    """`esbuild --bundle --splitting --format=esm --minify` on the entries (paths under `static`)."""
    return (f"cd {q(static)} && {q(ESBUILD)} --bundle --splitting --format=esm --minify --log-level=warning "
            f"--outbase=. --outdir={q(out)} " + " ".join(q(e) for e in entries))


def vite_env(root, out, inputs, alias=None, base="/", preserve=None):
    env = dict(BENCH_VITE_ROOT=root, BENCH_VITE_OUT=out, BENCH_VITE_INPUT=json.dumps(inputs), BENCH_VITE_BASE=base)
    if alias:
        env["BENCH_VITE_ALIAS"] = alias
    if preserve:
        env["BENCH_VITE_PRESERVE"] = preserve
    return env


def vite_cmd(root, out, inputs, alias=None, base="/", preserve=None):
    """`vite build` with bench/bundle/vite.config.mjs (Vite's defaults but for the inputs)."""
    env = " ".join(f"{k}={q(v)}" for k, v in vite_env(root, out, inputs, alias, base, preserve).items())
    return f"cd {q(NPM)} && env {env} {q(VITE)} build --configLoader native --config {q(VITE_CONFIG)} >/dev/null"


def sh(cmd):
    run(cmd, stdout=subprocess.DEVNULL)


# --- bytes and times -----------------------------------------------------------------------


def brotli_size(data):
    return len(subprocess.run(["brotli", "-q", "11", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout)


def gzip_size(data):
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def sizes(data):
    """(raw, gzip -9, brotli -q 11) of bytes, the same tools for every bundler."""
    return dict(raw=len(data), gzip=gzip_size(data), brotli=brotli_size(data))


def add(*dicts):
    keys = dicts[0].keys() if dicts else ()
    return {k: sum(d[k] for d in dicts) for k in keys}


def timed(commands, rounds, runs, prepares=None, warmup=1):
    """Wall and CPU seconds of each command: `rounds` hyperfine invocations of `runs` runs
    each, the commands in a rotated order every round (so a burst of load elsewhere does not
    fall on one command only). Returns per command: median wall, median of the rounds' mean
    user+system CPU, every wall time."""
    n = len(commands)
    walls = [[] for _ in range(n)]
    cpus = [[] for _ in range(n)]
    for r in range(rounds):
        order = [(i + r) % n for i in range(n)]
        fd, path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        cmd = ["hyperfine", "--runs", str(runs), "--warmup", str(warmup), "--export-json", path, "--style", "none"]
        for i in order:
            if prepares is not None:
                cmd += ["--prepare", prepares[i] or "true"]
        cmd += [commands[i] for i in order]
        run(cmd, stdout=subprocess.DEVNULL)
        with open(path) as f:
            results = json.load(f)["results"]
        os.unlink(path)
        for i, res in zip(order, results):
            walls[i] += res["times"]
            cpus[i].append(res["user"] + res["system"])
    return [dict(wall=statistics.median(w), cpu=statistics.median(c), walls=w) for w, c in zip(walls, cpus)]


def ms(seconds):
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:,.1f} ms"
