#!/usr/bin/env bash
# Instructions executed per iteration of each memory-benchmark workload (valgrind's
# cachegrind, no cache simulation): deterministic, so usable on a noisy shared machine.
# They do not show what a `lock`-prefixed instruction costs in cycles: read them beside the
# CPU-time medians from memory_bench.sh or memory_cpu.sh.
# BEFORE, if given, is another memory_tracking bench binary (e.g. built at an older commit),
# counted the same way (sampling off).
#   bash perf-rt/benches/memory_instructions.sh [BEFORE]
set -euo pipefail
before=${1:-}
target=${CARGO_TARGET_DIR:-target}
cargo bench -q -p perf-rt --features memory --bench memory_system --bench memory_tracking \
  --bench memory_dhat --no-run 2>/dev/null
bin() { ls -t "$target"/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
ir() { valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$@" 2>&1 \
  | awk '/I +refs/ {gsub(",", "", $4); print $4}'; }
count() { # workload iterations binary [sample rate]
  local base full
  base=$(MEMORY_BENCH_FIXED="$1:0" MEMORY_BENCH_SAMPLE_RATE="${4:-0}" ir "$3")
  full=$(MEMORY_BENCH_FIXED="$1:$2" MEMORY_BENCH_SAMPLE_RATE="${4:-0}" ir "$3")
  echo $(( (full - base) / $2 ))
}
for spec in workload:400 small_blocks:4000; do
  w=${spec%%:*}; n=${spec##*:}
  s=$(count "$w" "$n" "$(bin memory_system)")
  u=$(count "$w" "$n" "$(bin memory_tracking)" 0)
  a=$(count "$w" "$n" "$(bin memory_tracking)" 524288)
  d=$(count "$w" $((n / 20)) "$(bin memory_dhat)")
  b=0
  [[ -n $before ]] && b=$(count "$w" "$n" "$before" 0)
  python3 -c "import sys; s,u,a,d,b=map(int,sys.argv[2:]); print(f'{sys.argv[1]:13} instructions/iter: system {s}  unsampled {u} ({u/s:.3f}x)  sampled {a} ({a/s:.3f}x)  dhat {d} ({d/s:.1f}x)' + (f'  before: unsampled {b} ({b/s:.3f}x)' if b else ''))" "$w" "$s" "$u" "$a" "$d" "$b"
done
