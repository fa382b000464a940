#!/usr/bin/env python3
"""`perf_rt::serve::zero_copy` against the plain `TcpListener`, by body size: where
`sendfile` from the executable's pages starts to cost less CPU than `writev`.

    python3 bench/serve_zero_copy.py      # writes bench/out/serve_zero_copy.md

Both servers are tests/src/bin/serve-fixtures.rs in release on the current-thread runtime
(`WORKERS=1`): one with `ZERO_COPY=0` (every body through `writev`), one with
`MIN_LEN=1024` (every body of 1 KiB and more through `sendfile`). The bodies are the
fixture data/large.txt: its gzip form (18 KB), the identity body in 32 KiB and 64 KiB
ranges (`Range: bytes=0-…`, a slice of the same embedded bytes), and the whole 100 KiB
identity body. wrk `-t1 -c64` on loopback, BENCH_RUNS (5) rounds of BENCH_DURATION (3s)
per configuration, the two servers interleaved, medians; CPU from each server's
/proc/<pid>/stat.
"""

import os
import statistics
import subprocess

from common import OUT, TARGET
from serve import cpu_seconds, ratio, wait_port, wrk

DURATION = os.environ.get("BENCH_DURATION", "3s")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
URL = "/static/data/large.txt"
SERVERS = [("writev", 18301, {"ZERO_COPY": "0"}), ("sendfile", 18302, {"MIN_LEN": "1024"})]
# (label, Accept-Encoding, Range)
BODIES = [
    ("18,350 B (gzip)", "gzip", None),
    ("32 KiB (range)", "identity", "bytes=0-32767"),
    ("64 KiB (range)", "identity", "bytes=0-65535"),
    ("100 KiB (identity)", "identity", None),
]


def main():
    procs = []
    try:
        for _, port, extra in SERVERS:
            env = {**os.environ, "PORT": str(port), "WORKERS": "1", **extra}
            procs.append(subprocess.Popen([os.path.join(TARGET, "release", "serve-fixtures")], env=env, stdout=subprocess.DEVNULL))
        for _, port, _ in SERVERS:
            wait_port(port)
        results = {}
        for rnd in range(RUNS):
            for label, encoding, rng in BODIES:
                order = SERVERS if rnd % 2 == 0 else SERVERS[::-1]
                for (name, port, _), p in zip(order, procs if rnd % 2 == 0 else procs[::-1]):
                    u0, s0 = cpu_seconds([p.pid])
                    headers = [f"Range: {rng}"] if rng else []
                    n, rps, _ = wrk(f"http://127.0.0.1:{port}{URL}", encoding, headers, DURATION)
                    u1, s1 = cpu_seconds([p.pid])
                    row = (rps, (u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6)
                    results.setdefault((label, name), []).append(row)
                    print(f"  {rnd} {label} {name}: {rps:,.0f} req/s, {row[1] + row[2]:.2f} µs CPU/req", flush=True)
        lines = [
            "| body | server | req/s | user µs/req | kernel µs/req | CPU µs/req | sendfile vs writev (req/CPU-s) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for label, _, _ in BODIES:
            med = {}
            for name, _, _ in SERVERS:
                rows = results[(label, name)]
                med[name] = [statistics.median(r[i] for r in rows) for i in range(3)] + [statistics.median(r[1] + r[2] for r in rows)]
            for name, _, _ in SERVERS:
                rps, user, kernel, cpu = med[name]
                vs = ratio(med["writev"][3], cpu) if name == "sendfile" else ""
                lines.append(f"| {label} | {name} | {rps:,.0f} | {user:.2f} | {kernel:.2f} | {cpu:.2f} | {vs} |")
        text = "\n".join(lines) + "\n"
        open(os.path.join(OUT, "serve_zero_copy.md"), "w").write(text)
        print(text)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    main()
