#!/usr/bin/env bash
# Monitor cost: CPU time of the sampling thread per sample, on a tree of 1 + N processes (N = 1 and 20 children),
# for the current sampler (sysinfo for memory/CPU/tree, procfs for the Linux extras) and the previous one (the
# hand-written /proc parser, built from git), side by side. Median of RUNS runs of SECONDS each. Linux only.
#
#   bench/monitor-cost.sh [RUNS=5] [SECONDS=3]
#
# The measuring program is crates/sut-monitor/examples/sample_cost.rs (public Monitor API only, so it builds
# against the old crate too): a `sh` with N `sleep` children, sampled every 20 ms; the sampling thread's CPU
# time comes from /proc/self/task/TID/schedstat. Each figure includes appending the row to resources.csv and
# the amortised slow refreshes (sockets every 5th sample, TCP states every 15th). At the default 1 Hz,
# X µs per sample is X / 10 000 % of one core. Both programs are pinned to CPU 1 when taskset exists.
# OLD_REV (default: the parent of the commit that removed the hand-written parser) picks the old sampler.
# Not run by CI. Current figures: bench/RESULTS.md#monitor-cost
set -euo pipefail
RUNS=${1:-5}
SECS=${2:-3}
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
OLD_REV=${OLD_REV:-$(git rev-parse "$(git log -1 --format=%H -- crates/sut-monitor/src/procfs_text.rs)^")}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
EXAMPLE="$CARGO_TARGET_DIR/release/examples/sample_cost"

# Both builds share the target dir (dependencies compile once); each binary is copied out before the next build.
cargo build --release -q -p sut-monitor --example sample_cost
cp "$EXAMPLE" "$WORK/new"
mkdir "$WORK/old-src"
git archive "$OLD_REV" | tar -x -C "$WORK/old-src"
cp crates/sut-monitor/examples/sample_cost.rs "$WORK/old-src/crates/sut-monitor/examples/"
(cd "$WORK/old-src" && cargo build --release -q -p sut-monitor --example sample_cost)
cp "$EXAMPLE" "$WORK/old"

PIN=()
command -v taskset >/dev/null && PIN=(taskset -c 1)
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cost() { # binary children → median µs per sample over RUNS runs
  for _ in $(seq "$RUNS"); do
    "${PIN[@]}" "$1" "$2" "$SECS" | sed -n 's/.*cpu_us_per_sample=//p'
  done | median
}

echo "old sampler: $(git rev-parse --short "$OLD_REV") (hand-written /proc parser); new: $(git rev-parse --short HEAD)"
echo "$(nproc) CPUs, $(uname -r), $RUNS runs x ${SECS}s per cell, sampling every 20 ms"
printf '\n%-22s %16s %16s %10s\n' "tree" "old µs/sample" "new µs/sample" "new/old"
for children in 1 20; do
  old=$(cost "$WORK/old" "$children")
  new=$(cost "$WORK/new" "$children")
  printf '%-22s %16.1f %16.1f %10s\n' "root + $children children" "$old" "$new" \
    "$(awk -v a="$new" -v b="$old" 'BEGIN { printf "%.2f", a / b }')"
done
