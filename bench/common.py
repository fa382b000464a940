"""Shared helpers of the benchmark scripts: paths, the npm corpus and peers, hyperfine."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
NODE_BIN = os.path.join(BENCH, "node_modules", ".bin")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def run(cmd, **kw):
    print("+", cmd if isinstance(cmd, str) else " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, shell=isinstance(cmd, str), **kw)


_apt_updated = False


def need(tool, package):
    global _apt_updated
    present = os.path.exists(tool) if tool.startswith("/") else shutil.which(tool) is not None
    if not present:
        if not _apt_updated:
            run(["apt-get", "update", "-qq"])
            _apt_updated = True
        run(["apt-get", "install", "-y", "-qq", package])


def npm_install():
    """The corpus and the peers, pinned in bench/package.json."""
    if not os.path.exists(os.path.join(NODE_BIN, "esbuild")):
        run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=BENCH)


def release_bins():
    """Every binary of the workspace in release, in one cargo invocation: building them
    together keeps one feature set, so swc is compiled once."""
    run(["cargo", "build", "--release", "-q", "--workspace", "--bins"], cwd=ROOT)


def perf_build_cli():
    """The release CLI, or the one `PERF_BUILD_CLI` names (figures of bytes do not depend
    on the profile: perf-build and its engines are optimised in every profile)."""
    if os.environ.get("PERF_BUILD_CLI"):
        return os.environ["PERF_BUILD_CLI"]
    release_bins()
    return os.path.join(TARGET, "release", "perf-build")


def hyperfine(commands, runs=5, prepare=None, warmup=1):
    """Median wall seconds of each command (hyperfine, one run, through sh)."""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = ["hyperfine", "--runs", str(runs), "--warmup", str(warmup), "--export-json", path]
    if prepare:
        cmd += ["--prepare", prepare]
    run(cmd + commands, stdout=subprocess.DEVNULL)
    with open(path) as f:
        data = json.load(f)
    os.unlink(path)
    return [r["median"] for r in data["results"]]


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path
