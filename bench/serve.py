#!/usr/bin/env python3
"""Serving: perf-rt's asset service against nginx serving the same precompressed files
(gzip_static + brotli_static), with wrk on loopback, measured in the same run.

    python3 bench/serve.py             # writes bench/out/serve.md

Assets: the test fixtures data/small.txt (1 KiB) and data/large.txt (100 KiB), as
built by perf-build in release (the nginx side gets the same bytes through the
perf-build CLI). Peers: perf-rt (tests/src/bin/serve-fixtures.rs, on
`perf_rt::serve::ZeroCopyListener`) on tokio's default multi-thread runtime and on the
current-thread runtime (`WORKERS=1`), the current-thread runtime on a plain
`TcpListener` ("writev"), nginx with one worker and nginx with two workers. Each configuration runs BENCH_RUNS times (3), peers
and encodings interleaved with the order rotated each round; medians are reported.

Besides requests per second and p99 latency, each server's CPU time is read from
/proc/<pid>/stat (utime and stime of every process: nginx's master and workers) before
and after each wrk run: CPU microseconds per request (and its user and kernel parts) and
requests per CPU-second.
Needs wrk, nginx and its brotli_static module (Debian packages; installed if missing).
"""

import json
import os
import re
import signal
import statistics
import subprocess
import time

from common import OUT, ROOT, TARGET, fresh, need, perf_build_cli, run

# (name, port, WORKERS, zero-copy listener): perf-rt on the multi-thread and the
# current-thread runtime with `ZeroCopyListener` (large bodies through sendfile), and the
# current-thread runtime on a plain TcpListener (every body through writev).
OURS = [
    ("perf-rt", 18081, None, True),
    ("perf-rt 1t", 18091, "1", True),
    ("perf-rt 1t writev", 18092, "1", False),
]
NGINX_PORTS = {1: 18082, 2: 18083}
DURATION = os.environ.get("BENCH_DURATION", "6s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "64")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
ASSETS = ["data/small.txt", "data/large.txt"]
ENCODINGS = ["br", "gzip"]
CLK_TCK = os.sysconf("SC_CLK_TCK")

NGINX_CONF = """
load_module /usr/lib/nginx/modules/ngx_http_brotli_static_module.so;
worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    types {{ text/plain txt; }}
    charset utf-8;
    server {{
        listen 127.0.0.1:{port} reuseport;
        location /static/ {{
            alias {dist}/;
            gzip_static on;
            brotli_static on;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}
}}
"""


def wrk(url, encoding, headers=(), duration=DURATION):
    """(requests, req/s, p99 ms) of one wrk run; `headers` are further `Name: value` lines."""
    extra = [a for h in headers for a in ("-H", h)]
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}", "--latency", "-H", f"Accept-Encoding: {encoding}", *extra, url],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"errors from {url}:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return requests, rps, float(p99.group(1)) * scale


def children(pid):
    """The direct children of `pid` (nginx's workers), from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def cpu_seconds(pids):
    """(utime, stime) of these processes (every thread of each), in seconds."""
    user = system = 0
    for pid in pids:
        # Fields after the command name: state is field 3, utime 14 and stime 15.
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        user += int(fields[11])
        system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def wait_port(port):
    import socket

    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def ratio(a, b):
    return f"{a / b:.2f}x"


def main():
    need("wrk", "wrk")
    need("nginx", "nginx")
    if not os.path.exists("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so"):
        need("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so", "libnginx-mod-http-brotli-static")
    cli = perf_build_cli()
    work = fresh(os.path.join(OUT, "serve"))
    dist = os.path.join(work, "dist")
    run([cli, "build", "--static-dir", os.path.join(ROOT, "tests/fixtures/static"), "--dist-dir", dist, "--quiet"])
    manifest = json.load(open(os.path.join(dist, "manifest.json")))

    procs = {}
    peers = {}  # name -> (port, function returning the pids to account)
    try:
        for workers, port in NGINX_PORTS.items():
            nwork = fresh(os.path.join(work, f"nginx-{workers}"))
            conf = os.path.join(nwork, "nginx.conf")
            open(conf, "w").write(NGINX_CONF.format(workers=workers, work=nwork, port=port, dist=dist))
            p = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"])
            name = f"nginx {workers}w"
            procs[name] = p
            peers[name] = (port, lambda p=p: [p.pid, *children(p.pid)])
        for name, port, workers, zero_copy in OURS:
            env = {**os.environ, "PORT": str(port), "ZERO_COPY": "1" if zero_copy else "0"}
            env.pop("WORKERS", None)
            env.pop("MIN_LEN", None)
            if workers:
                env["WORKERS"] = workers
            p = subprocess.Popen([os.path.join(TARGET, "release", "serve-fixtures")], env=env, stdout=subprocess.DEVNULL)
            procs[name] = p
            peers[name] = (port, lambda p=p: [p.pid])
        for port, _ in peers.values():
            wait_port(port)
        ours = [o[0] for o in OURS]
        names = ours + ["nginx 1w", "nginx 2w"]
        url = {(n, a): f"http://127.0.0.1:{peers[n][0]}{manifest[a]['url']}" for n in names for a in ASSETS}
        for n in names:  # warm-up: connection setup, page cache, lazy statics
            subprocess.run(["wrk", "-t1", "-c8", "-d1s", url[(n, ASSETS[0])]], check=True, stdout=subprocess.DEVNULL)

        # (asset, encoding, peer) -> [(req/s, p99 ms, CPU µs per request)]
        results = {}
        configs = [(a, e) for a in ASSETS for e in ENCODINGS]
        for rnd in range(RUNS):
            order = names[rnd % len(names):] + names[: rnd % len(names)]
            cfgs = configs[rnd % len(configs):] + configs[: rnd % len(configs)]
            for asset, encoding in cfgs:
                for name in order:
                    pids = peers[name][1]()
                    u0, s0 = cpu_seconds(pids)
                    requests, rps, p99 = wrk(url[(name, asset)], encoding)
                    u1, s1 = cpu_seconds(pids)
                    cpu = (u1 - u0) + (s1 - s0)
                    results.setdefault((asset, encoding, name), []).append(
                        (rps, p99, cpu / requests * 1e6, (u1 - u0) / requests * 1e6, (s1 - s0) / requests * 1e6))
                    print(f"  {rnd} {asset} {encoding} {name}: {rps:,.0f} req/s, p99 {p99:.2f} ms, "
                          f"{cpu / requests * 1e6:.1f} µs CPU/req", flush=True)

        med = {k: [statistics.median(x[i] for x in v) for i in range(5)] for k, v in results.items()}
        lines = [
            "| asset | enc | server | req/s | p99 | CPU µs/req | user | kernel | req/CPU-s |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for asset in ASSETS:
            for encoding in ENCODINGS:
                size = manifest[asset]["bytes"]["brotli" if encoding == "br" else "gzip"]
                for name in names:
                    rps, p99, us, user, kernel = med[(asset, encoding, name)]
                    lines.append(
                        f"| {asset} ({size:,} B) | {encoding} | {name} | {rps:,.0f} | {p99:.2f} ms | "
                        f"{us:.1f} | {user:.1f} | {kernel:.1f} | {1e6 / us:,.0f} |"
                    )
        lines += [
            "",
            "Ratios (perf-rt / nginx; req/CPU-s is nginx's CPU per request over ours):",
            "",
            "| asset | enc | server | req/s vs 1w | req/s vs 2w | p99 vs 1w | p99 vs 2w | req/CPU-s vs 1w | req/CPU-s vs 2w |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for asset in ASSETS:
            for encoding in ENCODINGS:
                n1, n2 = med[(asset, encoding, "nginx 1w")], med[(asset, encoding, "nginx 2w")]
                for name in ours:
                    o = med[(asset, encoding, name)]
                    lines.append(
                        f"| {asset} | {encoding} | {name} | {ratio(o[0], n1[0])} | {ratio(o[0], n2[0])} | "
                        f"{ratio(o[1], n1[1])} | {ratio(o[1], n2[1])} | {ratio(n1[2], o[2])} | {ratio(n2[2], o[2])} |"
                    )
        text = "\n".join(lines) + "\n"
        open(os.path.join(OUT, "serve.md"), "w").write(text)
        print(text)
    finally:
        for name, p in procs.items():
            p.send_signal(signal.SIGQUIT if name.startswith("nginx") else signal.SIGTERM)
        for p in procs.values():
            p.wait()


if __name__ == "__main__":
    main()
