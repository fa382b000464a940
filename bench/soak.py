#!/usr/bin/env python3
"""Soak: two example-app instances sharing a SQLite file and a Redis of their own, for 60 s.

Two loads run at once against both instances:

- saturation: wrk (one per instance, 8 connections, a 10 s timeout as the readers and
  writers have) with a mixed load drawn from the pages
  (landing, journal pages and searches, reflections, compose, settings, about), the
  embedded assets the pages link (brotli), valid browser-metrics beacons and writes,
  in consecutive windows (10 s by default): requests per second, p99 latency, answers by
  class and each instance's RSS per window;
- correctness: readers check every page they read against the writes whose responses had
  already returned (a stale read is one that misses such a write); writers post
  reflections through either instance; flooders send hostile requests (made-up HTTP
  methods, random unmatched paths, bogus beacons). The Redis is killed and restarted
  twice on the way (`--no-faults` keeps it up).

At the end, each instance's memory profiler leak report (a snapshot every 5 s,
`PERF_MEMORY_SNAPSHOT_INTERVAL_SECS`). Fails (exit 1) on a stale read, an error (a 5xx, a
refused or broken connection, a write that did not redirect), RSS moving by more than 10%
from the end of the first window, a window's p99 over twice the median of the windows, or a
leak reported. The soak's windows follow a warm-up of the same load (20 s by default, not
counted), in which the caches fill and the compression buffers reach their working set. Writes bench/out/soak.md. Everything runs on 127.0.0.1.

    python3 bench/soak.py [--seconds 60] [--window 10] [--binary target/release/example-app]
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import statistics
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", HOST, "--port", str(self.port), "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def start_app(binary, workdir, env):
    proc = subprocess.Popen([binary], cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://([0-9.]+):(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"unexpected first line: {line!r}")
    return proc, int(m.group(2))


def memory_report(port):
    with urllib.request.urlopen(f"http://{HOST}:{port}/api/performance/memory", timeout=30) as r:
        return json.load(r)


def heap_kib(port):
    """Live heap bytes, as the tracking allocator counts them, in KiB."""
    return memory_report(port)["stats"]["live_bytes"] // 1024


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"reads": 0, "writes": 0, "hostile": 0, "stale": 0, "errors": 0}
        self.samples = []

    def add(self, what, detail=None):
        with self.lock:
            self.counts[what] += 1
            if detail and len(self.samples) < 20:
                self.samples.append(detail)


def request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, res.getheader("location"), res.read().decode("utf-8", "replace")
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--binary", default=None, help="default: build and use target/debug/example-app")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--flooders", type=int, default=2, help="threads sending hostile requests")
    ap.add_argument("--window", type=float, default=10, help="seconds per saturation window")
    ap.add_argument("--warmup", type=float, default=20,
                    help="seconds of the mixed load before the soak, not counted (caches fill, "
                         "in-flight compression buffers reach their working set)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections per instance")
    ap.add_argument("--no-faults", action="store_true", help="keep Redis up")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian package wrk)")
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed (Debian package redis-server)")
    binary = os.path.abspath(args.binary) if args.binary else None
    if binary is None:
        subprocess.run(["cargo", "build", "-q", "--bin", "example-app"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        binary = os.path.join(target, "debug", "example-app")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(f"seed {seed}, {args.seconds:.0f} s, binary {binary}")

    redis = Redis()
    redis.start()
    work = tempfile.mkdtemp(prefix="perf-soak-")
    env = dict(os.environ, HOST=HOST, PORT="0",
               DATABASE_URL=os.path.join(work, "soak.db"),
               PERF_REDIS_URL=f"redis://{HOST}:{redis.port}",
               PERF_QUERY_CACHE_NAMESPACE=f"soak-{seed}",
               # Fills the leak report as the service runs.
               PERF_MEMORY_SNAPSHOT_INTERVAL_SECS="5",
               # One loopback client stands for many browsers: beacons are not rate limited.
               PERF_CLIENT_METRICS_PER_MINUTE="100000000")
    env.pop("PERF_MONITOR_TOKEN", None)
    apps = []
    try:
        for _ in range(2):  # one after the other: the first creates the database
            apps.append(start_app(binary, work, env))
        ports = [port for _, port in apps]
        stats = Stats()
        returned = []  # (id, title) of writes whose responses came back, in order
        returned_lock = threading.Lock()
        stop = threading.Event()

        # Warm up, then the first RSS.
        pages = ["/", "/journal", "/journal?page=2", "/journal?q=walk", "/reflections/new",
                 "/settings", "/about"] + [f"/reflections/{i}" for i in range(1, 25)]
        assets = set()
        for port in ports:
            for path in pages:
                _, _, body = request(port, "GET", path)
                assets.update(re.findall(r'(/static/[^"\'\s,?();]+)', body))
        rss_start = [rss_kib(proc.pid) for proc, _ in apps]
        mix = os.path.join(work, "mix.tsv")
        beacon = '{"route":"%s","metrics":{"LCP":%d,"FCP":%d,"CLS":0.0%d,"INP":%d,"TTFB":%d}}'
        rng = random.Random(seed)
        with open(mix, "w") as f:
            # Shares: pages 50%, assets 30%, beacons 15%, writes 5%.
            for path in pages:
                f.write(f"GET\t{path}\t\t\n" * (50 * 4 // len(pages) + 1))
            for url in sorted(assets):
                f.write(f"GET\t{url}\t\t\n" * max(1, 30 * 4 // len(assets)))
            for i in range(60):
                route = rng.choice(["/", "/journal", "/reflections/{id}", "/about"])
                body = beacon % (route, rng.randrange(500, 4000), rng.randrange(300, 2000),
                                 rng.randrange(10), rng.randrange(16, 400), rng.randrange(5, 300))
                f.write(f"POST\t/api/performance/client\tapplication/json\t{body}\n")
            for i in range(20):
                f.write(f"POST\t/reflections\tapplication/x-www-form-urlencoded\t"
                        f"title=load-{i}&mood={rng.choice(['calm', 'curious', 'tired'])}&body=written+under+load\n")
        sock_detail = []
        if args.warmup > 0:
            warm = [subprocess.Popen(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{args.warmup:.0f}s", "-s",
                 os.path.join(BENCH, "soak_mix.lua"), f"http://{HOST}:{port}", "--", mix, str(seed + i)],
                stdout=subprocess.DEVNULL) for i, port in enumerate(ports)]
            for w in warm:
                w.wait()
            # The first memory report symbolises its call sites, and the symbol data it
            # loads stays for the life of the process: part of the baseline, not of the soak.
            for _, port in apps:
                heap_kib(port)
            print(f"warm-up: {args.warmup:.0f} s of the mixed load; RSS "
                  + ", ".join(f"{rss_kib(proc.pid) / 1024:.1f} MiB" for proc, _ in apps))
        windows = []  # per window: [(req/s, p99 ms, statuses, socket errors, rss KiB) per instance]

        def saturate():
            lua = os.path.join(BENCH, "soak_mix.lua")
            n = 0
            while not stop.is_set():
                n += 1
                procs = [subprocess.Popen(
                    ["wrk", "-t1", f"-c{args.connections}", f"-d{args.window:.0f}s", "--latency", "--timeout", "10s",
                     "-s", lua, f"http://{HOST}:{port}", "--", mix, str(seed + n * 10 + i)],
                    stdout=subprocess.PIPE, text=True) for i, port in enumerate(ports)]
                outs = [p.communicate()[0] for p in procs]
                row = []
                details = []
                for (proc, port), out in zip(apps, outs):
                    proc.port = port
                    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
                    p99 = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
                    statuses = dict(re.findall(r"(\dxx)=(\d+)", out))
                    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
                    detail = sock.group(0) if sock else ""
                    sock = sum(int(x) for x in sock.groups()) if sock else 0
                    row.append((rps, p99, {k: int(v) for k, v in statuses.items()}, sock, rss_kib(proc.pid),
                                heap_kib(proc.port)))
                    details.append(detail)
                windows.append(row)
                sock_detail.append(details)
                print(f"window {n}: " + "; ".join(
                    f"{'AB'[i]} {r[0]:,.0f} req/s p99 {r[1]:.1f} ms {r[2]} sock {r[3]} RSS {r[4] / 1024:.1f} MiB heap {r[5] / 1024:.1f} MiB"
                    for i, r in enumerate(row)))

        def reader(n):
            rng = random.Random(seed * 31 + n)
            while not stop.is_set():
                with returned_lock:
                    latest = returned[-1] if returned else None
                    some = rng.choice(returned) if returned else None
                port = rng.choice(ports)
                if latest and rng.random() < 0.5:
                    # The search finds it whatever else was written since (the landing
                    # page shows only the latest three, and wrk writes too).
                    path, expect = f"/journal?q={latest[1]}", latest[1]
                elif some:
                    path, expect = f"/reflections/{some[0]}", some[1]
                else:
                    path, expect = "/", None
                try:
                    status, _, body = request(port, "GET", path)
                except OSError as e:
                    stats.add("errors", f"GET {path} on :{port}: {e}")
                    continue
                stats.add("reads")
                if status != 200:
                    stats.add("errors", f"GET {path} on :{port}: {status}")
                elif expect and expect not in body:
                    stats.add("stale", f"GET {path} on :{port} missed {expect}")

        def writer():
            rng = random.Random(seed)
            i = 0
            while not stop.is_set():
                title = f"soak-{seed}-{i}"
                port = rng.choice(ports)
                try:
                    status, location, _ = request(
                        port, "POST", "/reflections",
                        body=f"title={title}&mood=calm&body=soak+test",
                        headers={"content-type": "application/x-www-form-urlencoded"})
                except OSError as e:
                    stats.add("errors", f"POST on :{port}: {e}")
                    continue
                if status != 303 or not location:
                    stats.add("errors", f"POST on :{port}: {status}")
                    continue
                with returned_lock:
                    returned.append((int(location.rsplit("/", 1)[1]), title))
                stats.add("writes")
                i += 1
                time.sleep(rng.random() * 0.05)

        def flooder(n):
            rng = random.Random(seed * 7 + n)
            while not stop.is_set():
                port = rng.choice(ports)
                kind = rng.randrange(3)
                try:
                    if kind == 0:
                        status, _, _ = request(port, f"M{rng.randrange(10**6):06d}", "/")
                    elif kind == 1:
                        path = "/" + "/".join(f"{rng.getrandbits(40):x}" for _ in range(rng.randrange(1, 4)))
                        status, _, _ = request(port, rng.choice(["GET", "POST", "HEAD"]), path)
                    else:
                        body = rng.choice([
                            b"{not json",
                            b'{"route":"/x%d","metrics":{"LCP":-5}}' % rng.randrange(10**6),
                            b'{"name":"%d","value":1e308}' % rng.randrange(10**6),
                            os.urandom(rng.randrange(1, 4096)),
                        ])
                        status, _, _ = request(port, "POST", "/api/performance/client", body=body,
                                               headers={"content-type": "application/json"})
                except OSError as e:
                    stats.add("errors", f"hostile request on :{port}: {e}")
                    continue
                stats.add("hostile")
                if status >= 500:
                    stats.add("errors", f"hostile request on :{port}: {status}")

        threads = [threading.Thread(target=saturate)]
        threads += [threading.Thread(target=reader, args=(n,)) for n in range(4)]
        threads += [threading.Thread(target=writer)]
        threads += [threading.Thread(target=flooder, args=(n,)) for n in range(args.flooders)]
        for t in threads:
            t.start()
        started = time.time()
        # Redis goes away twice, for a few seconds each time.
        schedule = [] if args.no_faults else [(0.25, "kill"), (0.37, "start"), (0.6, "kill"), (0.72, "start")]
        for at, action in schedule:
            time.sleep(max(0.0, started + at * args.seconds - time.time()))
            print(f"{time.time() - started:5.1f} s: redis {action}")
            redis.kill() if action == "kill" else redis.start()
        # Whole windows: stop once the last one that fits has started.
        time.sleep(max(0.0, started + args.seconds - args.window - time.time()))
        stop.set()
        for t in threads:
            t.join()
        rss_end = [rss_kib(proc.pid) for proc, _ in apps]
        leaks = []
        for _, port in apps:
            with urllib.request.urlopen(f"http://{HOST}:{port}/api/memory/leaks", timeout=30) as r:
                leaks.append(json.load(r))
        c = stats.counts
        failures = []
        lines = [f"seed {seed}, {args.seconds:.0f} s, windows of {args.window:.0f} s, "
                 f"wrk -t1 -c{args.connections} per instance after {args.warmup:.0f} s of warm-up, "
                 f"Redis faults: {'no' if args.no_faults else 'killed twice'}",
                 "", "| window | instance | req/s | p99 | 2xx | 3xx | 4xx | 5xx | socket errors | RSS | heap |",
                 "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for n, row in enumerate(windows, 1):
            for i, (rps, p99, st, sock, rss, heap) in enumerate(row):
                lines.append(f"| {n} | {'AB'[i]} | {rps:,.0f} | {p99:.1f} ms | {st.get('2xx', 0)} | {st.get('3xx', 0)} "
                             f"| {st.get('4xx', 0)} | {st.get('5xx', 0)} | {sock} | {rss / 1024:.1f} MiB | {heap / 1024:.1f} MiB |")
                if st.get("5xx", 0) or sock:
                    failures.append(f"window {n}, instance {'AB'[i]}: {st.get('5xx', 0)} 5xx, {sock} socket errors ({sock_detail[n - 1][i]})")
        for i in range(len(apps)):
            after = [w[i] for w in windows]
            if len(after) >= 2:
                base = after[0][4]
                drift = max(abs(r[4] - base) / base for r in after)
                p99s = [r[1] for r in after]
                med = statistics.median(p99s)
                lines.append("")
                lines.append(f"instance {'AB'[i]}: RSS after the first window {base / 1024:.1f} MiB, "
                             f"largest move {drift * 100:.1f}%; p99 median {med:.1f} ms, "
                             f"range {min(p99s):.1f}-{max(p99s):.1f} ms")
                if drift > 0.10:
                    failures.append(f"instance {'AB'[i]}: RSS moved {drift * 100:.1f}% after warm-up")
                if max(p99s) > 2 * med:
                    failures.append(f"instance {'AB'[i]}: a window's p99 {max(p99s):.1f} ms is over twice the median {med:.1f} ms")
        for i, (_, port) in enumerate(apps):
            top = memory_report(port)["top_sites"][:4]
            lines.append(f"instance {'AB'[i]} largest live call sites (sampled): " + "; ".join(
                f"{t['site']['frame']['function']} {t.get('bytes', t.get('live_bytes', 0)) / 1024:.0f} KiB" for t in top))
        for i, report in enumerate(leaks):
            lines.append(f"instance {'AB'[i]} leak report: {len(report['snapshots'])} snapshots, "
                         f"{len(report['leaks'])} leaks")
            if not report["enough_snapshots"] or report["leaks"]:
                failures.append(f"instance {'AB'[i]}: leak report {json.dumps(report['leaks'])[:500]}")
        lines.append("")
        lines.append(f"correctness load: reads {c['reads']}, writes {c['writes']}, hostile requests {c['hostile']}, "
                     f"stale reads {c['stale']}, errors {c['errors']}")
        for i, (a, b) in enumerate(zip(rss_start, rss_end)):
            lines.append(f"instance {'AB'[i]} RSS: {a / 1024:.1f} MiB after the first page views, {b / 1024:.1f} MiB at the end")
        if c["stale"] or c["errors"]:
            failures.append(f"{c['stale']} stale reads, {c['errors']} errors")
        text = "\n".join(lines) + "\n"
        os.makedirs(os.path.join(BENCH, "out"), exist_ok=True)
        with open(os.path.join(BENCH, "out", "soak.md"), "w") as f:
            f.write(text)
        print(text)
        for s in stats.samples:
            print("  " + s)
        for f in failures:
            print("FAILED: " + f)
        return 1 if failures else 0

    finally:
        for proc, _ in apps:
            proc.send_signal(signal.SIGINT)
        for proc, _ in apps:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
