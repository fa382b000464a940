#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine: installs what the tests need
# when it is missing (Redis, Debian's Chromium for the browser tests, promtool for the
# Prometheus test, Node.js and npm for the bundling tests and the example app's npm
# package), starts a Redis on 127.0.0.1:6379 unless PERF_TEST_REDIS_URL answers, then
# runs `cargo test --workspace` with any arguments given here.
#
#     ./test.sh                # everything
#     ./test.sh --test monitor # one test binary
set -euo pipefail
cd "$(dirname "$0")"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

redis_url=${PERF_TEST_REDIS_URL:-redis://127.0.0.1:6379}
if ! redis-cli -u "$redis_url" ping >/dev/null 2>&1; then
  echo "test.sh: starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 50); do
    redis-cli -u "$redis_url" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
redis-cli -u "$redis_url" ping >/dev/null

exec cargo test --workspace "$@"
