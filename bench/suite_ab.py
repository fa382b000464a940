#!/usr/bin/env python3
"""Two builds of the suite benchmark server against the bare router, rounds interleaved:
requests per second (wrk -t1 -c64, 2 s warm-up + 5 s) and the server's own CPU time per
request (/proc/<pid>/stat utime + stime over the measured run).

    python3 bench/suite_ab.py NEW_SUITE_SERVER OLD_SUITE_SERVER [ROUNDS]

Both arguments are `suite_server` executables (perf-rt/benches/suite_server.rs, built with
`cargo bench -p perf-rt --features full --bench suite_server --no-run`, copied aside for the
older commit). The bare router is taken from the new one.
"""

import os
import re
import statistics
import subprocess
import sys
import time

PORT = 18092
HZ = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ


def run(binary, mode, path="/hello/world"):
    p = subprocess.Popen([binary, mode, str(PORT)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PERF_MONITOR_INTERVAL_MS": "1000"})
    p.stdout.readline()
    time.sleep(0.3)
    try:
        cmd = ["wrk", "-t1", "-c64"]
        subprocess.run(cmd + ["-d2s", f"http://127.0.0.1:{PORT}{path}"], stdout=subprocess.DEVNULL)
        c0 = cpu(p.pid)
        out = subprocess.run(cmd + ["-d5s", f"http://127.0.0.1:{PORT}{path}"],
                             stdout=subprocess.PIPE, text=True).stdout
        c1 = cpu(p.pid)
        n = int(re.search(r"(\d+) requests in", out).group(1))
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), (c1 - c0) / n * 1e6
    finally:
        p.terminate()
        p.wait()


def main():
    new, old = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    cases = [("bare", new, "bare"), ("suite, old", old, "suite"), ("suite, new", new, "suite")]
    res = {c[0]: [] for c in cases}
    for r in range(rounds):
        for name, binary, mode in cases:
            res[name].append(run(binary, mode))
            print(f"round {r + 1} {name}: {res[name][-1][0]:.0f} req/s, {res[name][-1][1]:.2f} µs CPU/request", flush=True)
    base = statistics.median(x[0] for x in res["bare"])
    bcpu = statistics.median(x[1] for x in res["bare"])
    for name in res:
        m = statistics.median(x[0] for x in res[name])
        u = statistics.median(x[1] for x in res[name])
        print(f"{name:11} {m:8.0f} req/s {m / base:.3f}x  {u:6.2f} µs CPU/request {u / bcpu:.3f}x")


if __name__ == "__main__":
    main()
