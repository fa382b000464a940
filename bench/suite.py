#!/usr/bin/env python3
"""The suite's cost under load: a small dynamic route with the whole suite (monitor,
endpoints, compression, memory timeline, browser metrics) against the bare router; and
the compression layer on a 20 KiB HTML page against tower-http's layer alone. wrk on
loopback, every configuration in its own process, rounds interleaved, medians reported.

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


def wrk(path, encoding=None):
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency"]
    if encoding:
        cmd += ["-H", f"Accept-Encoding: {encoding}"]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{PORT}{path}"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def serve(binary, mode):
    proc = subprocess.Popen([binary, mode, str(PORT)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PERF_MONITOR_INTERVAL_MS": "1000"})
    proc.stdout.readline()  # "… listening on …"
    time.sleep(0.3)
    return proc


def measure(binary, cases):
    """cases: name -> (mode, path, encoding). Returns name -> [(rps, p99)]."""
    results = {name: [] for name in cases}
    for r in range(ROUNDS):
        for name, (mode, path, encoding) in cases.items():
            proc = serve(binary, mode)
            try:
                wrk(path, encoding)  # warm-up, discarded
                results[name].append(wrk(path, encoding))
            finally:
                proc.terminate()
                proc.wait()
            print(f"round {r + 1} {name}: {results[name][-1][0]:.0f} req/s", flush=True)
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
        "| route | configuration | req/s | p99 ms | ratio req/s |", "| --- | --- | --- | --- | --- |",
    ]
    base = med(suite["bare"], 0)
    for name in ["bare", "suite"]:
        lines.append(f"| /hello/world | {name} | {med(suite[name], 0):.0f} | {med(suite[name], 1):.2f} | {med(suite[name], 0) / base:.3f}x |")
    for enc, res in compression.items():
        base = med(res["tower-http"], 0)
        for name in ["tower-http", "perf-rt"]:
            lines.append(f"| /page ({enc}) | {name} | {med(res[name], 0):.0f} | {med(res[name], 1):.2f} | {med(res[name], 0) / base:.3f}x |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(OUT, "suite.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
