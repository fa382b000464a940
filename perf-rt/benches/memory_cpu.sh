#!/usr/bin/env bash
# CPU time (perf stat's task-clock: every thread of the process, nanosecond-exact) of a fixed
# number of iterations of each memory-benchmark workload, under the system allocator and the
# tracking allocator with sampling off, in rotating order, ROUNDS times; prints every round and
# the median ratio. Steadier than criterion's per-thread figure (tick-grained) on a shared
# machine, and the only one that sees both threads of `two_threads`. Needs perf.
#   bash perf-rt/benches/memory_cpu.sh [ROUNDS] [extra tracking binary to compare, e.g. a build of an older commit]
set -euo pipefail
rounds=${1:-5}
extra=${2:-}
target=${CARGO_TARGET_DIR:-target}
cargo bench -q -p perf-rt --features memory --bench memory_system --bench memory_tracking --no-run 2>/dev/null
bin() { ls -t "$target"/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
sys=$(bin memory_system); trk=$(bin memory_tracking)
ms() { # binary spec -> task-clock milliseconds
  MEMORY_BENCH_FIXED=$2 MEMORY_BENCH_SAMPLE_RATE=0 perf stat -x, -e task-clock "$1" 2>&1 >/dev/null \
    | awk -F, '/task-clock/ {print $1}'
}
declare -A all
for r in $(seq "$rounds"); do
  for spec in workload:8000 small_blocks:100000 two_threads:8; do
    w=${spec%%:*}
    names=(system tracking ${extra:+extra})
    bins=("$sys" "$trk" ${extra:+"$extra"})
    n=${#names[@]}
    line="round $r $w"
    declare -A got=()
    for k in $(seq 0 $((n - 1))); do # rotate the order every round
      i=$(( (k + r) % n ))
      got[${names[$i]}]=$(ms "${bins[$i]}" "$spec")
    done
    for name in "${names[@]}"; do
      line+="  $name ${got[$name]} ms"
      all[$w,$name]+="${got[$name]} "
    done
    echo "$line"
  done
done
for w in workload small_blocks two_threads; do
  python3 - "$w" "${all[$w,system]}" "${all[$w,tracking]}" "${all[$w,extra]:-}" <<'PY'
import statistics, sys
w, s, t, e = sys.argv[1], *[list(map(float, a.split())) for a in sys.argv[2:5]]
ratio = lambda xs: statistics.median(x / y for x, y in zip(xs, s))
out = f"{w:13} system {statistics.median(s):8.1f} ms  tracking {statistics.median(t):8.1f} ms (median ratio {ratio(t):.3f}x)"
if e:
    out += f"  extra {statistics.median(e):8.1f} ms (median ratio {ratio(e):.3f}x)"
print(out)
PY
done
