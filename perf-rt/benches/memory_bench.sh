#!/usr/bin/env bash
# Runs the memory benchmarks ROUNDS times, alternating the order of the system-allocator
# and tracking-allocator binaries (and of the two tracking modes) so noise and warm-up hit
# all alike, then dhat once, and prints
# each median beside its peer from the same round. Needs python3.
# BEFORE, if given, is another memory_tracking bench binary (e.g. built at an older commit):
# it runs in the same rounds, in rotating order, and its medians are printed beside.
#   bash perf-rt/benches/memory_bench.sh [ROUNDS] [BEFORE]
set -euo pipefail
rounds=${1:-3}
before=${2:-}
target=${CARGO_TARGET_DIR:-target}
bench() { cargo bench -q -p perf-rt --features memory --bench "$1" >/dev/null 2>&1; }
# The older binary keeps its results apart, under the same benchmark names.
bench_before() { CRITERION_HOME="$target/criterion-before" "$before" --bench >/dev/null 2>&1; }
median() { # benchmark [criterion directory]; nan if criterion gave up on it this round
  python3 -c "import json,sys
try: print(json.load(open(sys.argv[1]))['median']['point_estimate'])
except OSError: print('nan')" "${2:-$target/criterion}/$1/new/estimates.json"
}
summary=$(mktemp)
for r in $(seq "$rounds"); do
  # A benchmark criterion skips this round must not show last round's figure.
  rm -rf "$target"/criterion/{workload,small_blocks,two_threads}_{system,tracking_unsampled,tracking_sampled} \
    "$target"/criterion-before
  # Alternate which binary, and which tracking mode, runs first.
  steps=(system tracking ${before:+before})
  n=${#steps[@]}
  for k in $(seq 0 $((n - 1))); do
    case ${steps[$(( (k + r) % n ))]} in
      system) bench memory_system ;;
      tracking) if (( r % 2 )); then bench memory_tracking; else MEMORY_BENCH_SAMPLED_FIRST=1 bench memory_tracking; fi ;;
      before) if (( r % 2 )); then bench_before; else MEMORY_BENCH_SAMPLED_FIRST=1 bench_before; fi ;;
    esac
  done
  for w in workload small_blocks two_threads; do
    sys=$(median "${w}_system"); un=$(median "${w}_tracking_unsampled"); sa=$(median "${w}_tracking_sampled")
    line=$(python3 -c "import sys; s,u,a=map(float,sys.argv[2:5]); print(f'round {sys.argv[1]} {sys.argv[5]:13} system {s/1e3:9.2f} us  unsampled {u/1e3:9.2f} us ({u/s:.3f}x)  sampled {a/1e3:9.2f} us ({a/s:.3f}x)')" "$r" "$sys" "$un" "$sa" "$w")
    bu=nan; ba=nan
    if [[ -n $before ]]; then
      bu=$(median "${w}_tracking_unsampled" "$target/criterion-before"); ba=$(median "${w}_tracking_sampled" "$target/criterion-before")
      line+=$(python3 -c "import sys; s,u,a=map(float,sys.argv[1:4]); print(f'  before: unsampled {u/1e3:9.2f} us ({u/s:.3f}x)  sampled {a/1e3:9.2f} us ({a/s:.3f}x)')" "$sys" "$bu" "$ba")
    fi
    echo "$line"
    echo "$w $sys $un $sa $bu $ba" >> "$summary"
  done
done
# Medians over the rounds: of each figure, and of the per-round ratios to the system run.
python3 - "$summary" <<'PY'
import math, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w, *v = line.split()
    rows.setdefault(w, []).append(list(map(float, v)))
def med(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else math.nan
for w, rs in rows.items():
    out = f"{w:13} median of {len(rs)} rounds: system {med(r[0] for r in rs)/1e3:8.2f} us"
    for i, name in [(1, "unsampled"), (2, "sampled"), (3, "before unsampled"), (4, "before sampled")]:
        ratio = med(r[i] / r[0] for r in rs)
        if not math.isnan(ratio):
            out += f"  {name} {med(r[i] for r in rs)/1e3:8.2f} us ({ratio:.3f}x)"
    print(out)
PY
rm -f "$summary"
bench memory_dhat
for w in workload small_blocks; do
  python3 -c "import sys; print(f'dhat {sys.argv[1]:13} {float(sys.argv[2])/1e3:9.2f} us ({float(sys.argv[2])/float(sys.argv[3]):.1f}x the last system median)')" "$w" "$(median "${w}_dhat")" "$(median "${w}_system")"
done
