#!/usr/bin/env python3
"""Soak: two example-app instances sharing a SQLite file and a Redis of their own, for 60 s.

Readers check every page they read against the writes whose responses had already returned
(a stale read is one that misses such a write); writers post reflections through either
instance; flooders send hostile requests (made-up HTTP methods, random unmatched paths,
bogus browser-metrics beacons). The Redis is killed and restarted twice on the way.

Prints stale reads (must be 0), errors (must be 0: a 5xx, a refused or broken connection,
a write that did not redirect) and each instance's RSS at the start and the end; exits 1
if either count is not 0. Everything runs on 127.0.0.1 and stops by itself.

    python3 bench/soak.py [--seconds 60] [--binary target/debug/example-app]
"""

import argparse
import http.client
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
import time

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
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed (Debian package redis-server)")
    binary = args.binary
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
               PERF_QUERY_CACHE_NAMESPACE=f"soak-{seed}")
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
        for port in ports:
            for path in ["/", "/about", "/reflections/1"]:
                request(port, "GET", path)
        rss_start = [rss_kib(proc.pid) for proc, _ in apps]

        def reader(n):
            rng = random.Random(seed * 31 + n)
            while not stop.is_set():
                with returned_lock:
                    latest = returned[-1] if returned else None
                    some = rng.choice(returned) if returned else None
                port = rng.choice(ports)
                if latest and rng.random() < 0.5:
                    path, expect = "/", latest[1]
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

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
        threads += [threading.Thread(target=writer)]
        threads += [threading.Thread(target=flooder, args=(n,)) for n in range(args.flooders)]
        for t in threads:
            t.start()
        started = time.time()
        # Redis goes away twice, for a few seconds each time.
        schedule = [(0.25, "kill"), (0.37, "start"), (0.6, "kill"), (0.72, "start")]
        for at, action in schedule:
            time.sleep(max(0.0, started + at * args.seconds - time.time()))
            print(f"{time.time() - started:5.1f} s: redis {action}")
            redis.kill() if action == "kill" else redis.start()
        time.sleep(max(0.0, started + args.seconds - time.time()))
        stop.set()
        for t in threads:
            t.join()
        rss_end = [rss_kib(proc.pid) for proc, _ in apps]
        c = stats.counts
        print(f"reads {c['reads']}, writes {c['writes']}, hostile requests {c['hostile']}")
        print(f"stale reads: {c['stale']}")
        print(f"errors: {c['errors']}")
        for i, (a, b) in enumerate(zip(rss_start, rss_end)):
            print(f"instance {'AB'[i]} RSS: {a / 1024:.1f} MiB at start, {b / 1024:.1f} MiB at end")
        for s in stats.samples:
            print("  " + s)
        return 0 if c["stale"] == 0 and c["errors"] == 0 else 1
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
