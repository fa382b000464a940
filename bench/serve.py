#!/usr/bin/env python3
"""Serving: perf-rt's asset service against nginx serving the same precompressed files
(gzip_static + brotli_static), with wrk on loopback, measured in the same run.

    python3 bench/serve.py             # writes bench/out/serve.md

Assets: the test fixtures data/small.txt (1 KiB) and data/large.txt (100 KiB), as
built by perf-build in release (the nginx side gets the same bytes through the
perf-build CLI). Each configuration runs 3 times, interleaved; medians are reported.
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

NGINX_PORT = 18080
OURS_PORT = 18081
DURATION = os.environ.get("BENCH_DURATION", "8s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "64")

NGINX_CONF = """
load_module /usr/lib/nginx/modules/ngx_http_brotli_static_module.so;
worker_processes 2;
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


def wrk(url, encoding):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", "-H", f"Accept-Encoding: {encoding}", url],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    if "Non-2xx" in out:
        raise SystemExit(f"errors from {url}:\n{out}")
    return rps, float(p99.group(1)) * scale


def wait_port(port):
    import socket

    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


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
    conf = os.path.join(work, "nginx.conf")
    open(conf, "w").write(NGINX_CONF.format(work=work, port=NGINX_PORT, dist=dist))

    nginx = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"])
    ours = subprocess.Popen([os.path.join(TARGET, "release", "serve-fixtures")], env={**os.environ, "PORT": str(OURS_PORT)}, stdout=subprocess.DEVNULL)
    try:
        wait_port(NGINX_PORT)
        wait_port(OURS_PORT)
        results = {}
        for rnd in range(3):
            for asset in ["data/small.txt", "data/large.txt"]:
                url_path = manifest[asset]["url"]
                for encoding in ["br", "gzip"]:
                    for name, port in [("perf-rt", OURS_PORT), ("nginx", NGINX_PORT)]:
                        rps, p99 = wrk(f"http://127.0.0.1:{port}{url_path}", encoding)
                        results.setdefault((asset, encoding, name), []).append((rps, p99))
        lines = [
            f"| asset | encoding | perf-rt req/s | nginx req/s | ratio | perf-rt p99 | nginx p99 | ratio |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for asset in ["data/small.txt", "data/large.txt"]:
            for encoding in ["br", "gzip"]:
                o = results[(asset, encoding, "perf-rt")]
                n = results[(asset, encoding, "nginx")]
                orps, nrps = statistics.median(r for r, _ in o), statistics.median(r for r, _ in n)
                op99, np99 = statistics.median(p for _, p in o), statistics.median(p for _, p in n)
                size = manifest[asset]["bytes"]["brotli" if encoding == "br" else "gzip"]
                lines.append(
                    f"| {asset} ({manifest[asset]['bytes']['minified']:,} B; {size:,} B {encoding}) | {encoding} | "
                    f"{orps:,.0f} | {nrps:,.0f} | {orps / nrps:.2f}x | {op99:.2f} ms | {np99:.2f} ms | {op99 / np99:.2f}x |"
                )
        text = "\n".join(lines) + "\n"
        open(os.path.join(OUT, "serve.md"), "w").write(text)
        print(text)
    finally:
        ours.send_signal(signal.SIGTERM)
        nginx.send_signal(signal.SIGQUIT)
        ours.wait()
        nginx.wait()


if __name__ == "__main__":
    main()
