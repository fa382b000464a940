#!/usr/bin/env python3
"""Instructions per request of the suite benchmark server, server-wide, under valgrind's
callgrind: deterministic, so usable on a noisy shared machine (kernel time is not counted).

    python3 bench/suite_callgrind.py SUITE_SERVER MODE [PORT]    # MODE: bare, suite, ...

500 sequential keep-alive requests of warm-up, counters zeroed (`callgrind_control -z`),
3,000 requests, counters dumped (`-d`). Prints instructions per request and the profile
file, for `callgrind_annotate`. ENC=gzip adds an Accept-Encoding header.
"""

import glob
import os
import re
import socket
import subprocess
import sys
import time

N = 3000


def main():
    binary, mode = sys.argv[1], sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 18093
    enc = os.environ.get("ENC")
    out = f"/tmp/callgrind.{mode}.{os.path.basename(binary)}.%p"
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, mode, str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env={**os.environ, "PERF_MONITOR_INTERVAL_MS": "1000"})
    p.stdout.readline()
    req = ("GET /hello/world HTTP/1.1\r\nHost: x\r\n"
           + (f"Accept-Encoding: {enc}\r\n" if enc else "") + "\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port))
    buf = b""

    def go(n):
        nonlocal buf
        for _ in range(n):
            s.sendall(req)
            while True:
                i = buf.find(b"\r\n\r\n")
                if i >= 0:
                    length = int(re.search(r"content-length: (\d+)", buf[:i].decode(), re.I).group(1))
                    if len(buf) >= i + 4 + length:
                        buf = buf[i + 4 + length:]
                        break
                buf += s.recv(65536)

    go(500)
    subprocess.run(["callgrind_control", "-z", str(p.pid)], stdout=subprocess.DEVNULL)
    go(N)
    subprocess.run(["callgrind_control", "-d", str(p.pid)], stdout=subprocess.DEVNULL)
    time.sleep(1)
    p.terminate()
    p.wait()
    dump = [f for f in glob.glob(out.replace("%p", str(p.pid)) + "*") if f.endswith(".1")][0]
    total = next(int(line.split()[1]) for line in open(dump) if line.startswith(("summary:", "totals:")))
    print(f"{mode} {os.path.basename(binary)}: {total / N:.0f} instructions/request ({dump})")


if __name__ == "__main__":
    main()
