#!/usr/bin/env python3
"""The suite's cost under load: a small dynamic route with the whole suite (monitor,
endpoints, compression, memory timeline, browser metrics) against the bare router; and
the compression layer on a 20 KiB HTML page against tower-http's layer alone. wrk on
loopback, every configuration in its own process, rounds interleaved, medians reported.
Beside requests per second, the server's own CPU time per request (from its
/proc/<pid>/stat utime + stime over the measured run): steadier than throughput when other
work shares the two cores.

    python3 bench/suite.py             # writes bench/out/suite.md

The server is perf-rt's bench target `suite_server` (release build). Needs wrk (Debian
package; installed if missing).
"""

import json
import os
import re
import statistics
import subprocess
import time

from common import OUT, ROOT, need, run

PORT = 18090
DURATION = os.environ.get("BENCH_DURATION", "8s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "64")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def build():
    out = subprocess.run(
        ["cargo", "bench", "-p", "perf-rt", "--features", "full", "--bench", "suite_server",
         "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "suite_server":
            return msg["executable"]
    raise SystemExit("suite_server was not built")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU seconds of a process, from /proc (fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wrk(path, encoding=None, pid=None):
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency"]
    if encoding:
        cmd += ["-H", f"Accept-Encoding: {encoding}"]
    before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(cmd + [f"http://127.0.0.1:{PORT}{path}"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    used = cpu_seconds(pid) - before if pid else 0.0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return rps, float(p99.group(1)) * scale, used / requests * 1e6


def serve(binary, mode):
    proc = subprocess.Popen([binary, mode, str(PORT)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PERF_MONITOR_INTERVAL_MS": "1000"})
    proc.stdout.readline()  # "… listening on …"
    time.sleep(0.3)
    return proc


def measure(binary, cases):
    """cases: name -> (mode, path, encoding). Returns name -> [(rps, p99 ms, CPU µs/request)]."""
    results = {name: [] for name in cases}
    for r in range(ROUNDS):
        for name, (mode, path, encoding) in cases.items():
            proc = serve(binary, mode)
            try:
                wrk(path, encoding)  # warm-up, discarded
                results[name].append(wrk(path, encoding, proc.pid))
            finally:
                proc.terminate()
                proc.wait()
            rps, _, cpu = results[name][-1]
            print(f"round {r + 1} {name}: {rps:.0f} req/s, {cpu:.2f} µs CPU/request", flush=True)
    return results


def main():
    need("wrk", "wrk")
    binary = build()
    os.makedirs(OUT, exist_ok=True)
    suite = measure(binary, {
        "bare": ("bare", "/hello/world", None),
        "suite": ("suite", "/hello/world", None),
    })
    compression = {}
    for enc in ["br", "gzip"]:
        compression[enc] = measure(binary, {
            "tower-http": ("tower-compression", "/page", enc),
            "perf-rt": ("perf-compression", "/page", enc),
        })

    def med(xs, i):
        return statistics.median(x[i] for x in xs)

    lines = [
        f"wrk -t1 -c{CONNECTIONS} -d{DURATION}, {ROUNDS} interleaved rounds, medians.", "",
        "| route | configuration | req/s | p99 ms | ratio req/s | server CPU µs/request | ratio CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]

    def row(route, name, res, base):
        return (f"| {route} | {name} | {med(res, 0):.0f} | {med(res, 1):.2f} | {med(res, 0) / med(base, 0):.3f}x"
                f" | {med(res, 2):.2f} | {med(res, 2) / med(base, 2):.3f}x |")

    for name in ["bare", "suite"]:
        lines.append(row("/hello/world", name, suite[name], suite["bare"]))
    for enc, res in compression.items():
        for name in ["tower-http", "perf-rt"]:
            lines.append(row(f"/page ({enc})", name, res[name], res["tower-http"]))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(OUT, "suite.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
