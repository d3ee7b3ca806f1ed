#!/usr/bin/env bash
# Harness memory over a long open-model run (not run by CI).
#
#   bench/harness-memory.sh                  # 30 minutes at 2000 req/s, 500 distinct error messages
#   DURATION=5m RATE=1000 bench/harness-memory.sh
#   BUILD=0 bench/harness-memory.sh          # use the binaries already in $CARGO_TARGET_DIR/release
#
# The harness drives mock-upstream directly (attach mode) with a scenario of NAMES request names that all
# "fail" (each expects 201, the mock answers 200), so the error table holds NAMES distinct (name, message)
# rows — the pattern that makes an unbounded error table grow. The harness's RSS is sampled every 10 s from
# /proc; the script prints the RSS after the first minute, at the end of the load, and the growth between them
# (goal: < 5 MB over 30 min at 2000 req/s), the medians and floors of the 5 minutes after warm-up against the last
# 5 minutes, and the last sample (taken while the results are written).
# Harness pinned to core 1, mock to core 0, both at nice PRIO (default -10): on a shared box a compile that starves
# the generator for a few seconds makes the open model catch up with up to max_in_flight requests at once, and the
# connections opened for that burst stay open (~22 KiB each) — an RSS step that is not the statistics. The open
# file descriptors (~ connections) and the in-flight maximum are printed so such a step can be recognised.
# Loopback only; the run stops by itself after DURATION. Last, the same statistics cycle without the network
# (bench-tools soak_memory: NAMES names, DURATION simulated seconds at RATE) isolates what the statistics
# themselves hold (a few seconds).
# Current figures: bench/RESULTS.md#harness-memory
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-30m}
RATE=${RATE:-2000}
NAMES=${NAMES:-500}
PRIO=${PRIO:--10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
[ "${BUILD:-1}" = 0 ] || cargo build --release -q -p harness -p mock-upstream
[ "${BUILD:-1}" = 0 ] || cargo build --release -q -p bench-tools --bin soak_memory
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

nice -n "$PRIO" taskset -c 0 "$BIN/mock-upstream" --listen 127.0.0.1:0 > "$WORK/mock.out" &
for _ in $(seq 50); do grep -q "listening on" "$WORK/mock.out" 2>/dev/null && break; sleep 0.1; done
MOCK_URL=$(head -1 "$WORK/mock.out" | sed 's/^listening on //')

{
    printf 'name = "harness_memory"\ndescription = "bench: harness memory with %s failing request names"\nseed = 1\n\n' "$NAMES"
    printf '[load]\nmodel = "open"\nrate = %s\nrun_time = "%s"\ntimeout = "5s"\nmax_in_flight = 2000\n\n' "$RATE" "$DURATION"
    for i in $(seq "$NAMES"); do
        printf '[[request]]\nname = "models %s"\nmethod = "GET"\npath = "/v1/models"\nexpect = [201]\n\n' "$i"
    done
} > "$WORK/scenario.toml"

nice -n "$PRIO" taskset -c 1 "$BIN/harness" run "$WORK/scenario.toml" --target "$MOCK_URL" --out "$WORK/results" --quiet \
    > "$WORK/harness.out" 2>&1 &
HARNESS_PID=$!
echo "elapsed_s,harness_rss_kb,harness_open_fds"
start=$(date +%s)
while kill -0 "$HARNESS_PID" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$HARNESS_PID/status" 2>/dev/null || true)
    fds=$(ls "/proc/$HARNESS_PID/fd" 2>/dev/null | wc -l)  # ~ open connections: each holds its buffers
    [ -n "$rss" ] && echo "$(( $(date +%s) - start )),$rss,$fds" | tee -a "$WORK/rss.csv"
    sleep 10
done
wait "$HARNESS_PID" || true
tail -3 "$WORK/harness.out"
python3 - "$WORK/rss.csv" "$WORK/results/summary.json" "$WORK/results/results_stats_history.csv" <<'PY'
import csv, json, sys
samples = [tuple(map(int, row)) for row in csv.reader(open(sys.argv[1]))]
rows = [(t, r) for t, r, _ in samples]
s = json.load(open(sys.argv[2]))
history = list(csv.DictReader(open(sys.argv[3])))
warm = min(60, rows[-1][0])  # the first minute is warm-up (pools, per-request entries created as names appear)
after_1m = next(r for t, r in rows if t >= warm)
# The load ends after duration_secs; later samples see the final report being built (a one-off, not growth).
load_end_t, load_end = [(t, r) for t, r in rows if t <= s["duration_secs"]][-1]
peak = max(r for _, r in rows)
a = s["aggregate"]
errors = len(s["errors"])
print(f"requests {a['requests']}, {a['requests_per_sec']:.0f} req/s, failures {a['failures']}, error rows {errors}")
print(f"harness RSS after {warm} s {after_1m/1024:.1f} MiB, at {load_end_t} s (end of load) {load_end/1024:.1f} MiB, "
      f"growth {(load_end-after_1m)/1024:.2f} MiB (goal < 5 MiB)")
print(f"harness RSS peak {peak/1024:.1f} MiB, last sample ({rows[-1][0]} s) {rows[-1][1]/1024:.1f} MiB")
# Two single samples are at the mercy of whatever burst was in flight at that instant (each connection a stall piles
# up holds ~20 KiB until it is pruned and the allocator returns the memory). Windows of several minutes compare the
# level instead: the median and the floor of the samples in the 5 minutes after warm-up against the last 5 minutes.
span = min(300, max(10, (load_end_t - warm) // 2))
early = sorted(r for t, r in rows if warm <= t < warm + span)
late = sorted(r for t, r in rows if load_end_t - span < t <= load_end_t)
if early and late:
    med = lambda xs: xs[len(xs) // 2] / 1024
    print(f"harness RSS median {med(early):.1f} -> {med(late):.1f} MiB (growth {med(late) - med(early):.2f} MiB), "
          f"floor {early[0]/1024:.1f} -> {late[0]/1024:.1f} MiB (growth {(late[0] - early[0])/1024:.2f} MiB): "
          f"the {span} s after warm-up vs the last {span} s of the load")
# Requests in flight hold connections and buffers: a starved generator (a busy box) grows them, not the statistics.
in_flight = [int(r["User Count"]) for r in history]
e = s.get("engine") or {}
fds = [f for t, _, f in samples if t <= s["duration_secs"]]
print(f"in-flight requests max {max(in_flight[:60], default=0)} in the first minute, {max(in_flight[60:], default=0)} after; "
      f"open fds {fds[0]} at start, {max(fds)} max; late sends {e.get('late_sends')}, dropped {e.get('dropped_sends')}")
PY
load_secs=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["duration_secs"]))' "$WORK/results/summary.json")
echo "statistics alone (no network, same names/rate/duration, 2 recorders):"
taskset -c 1 "$BIN/soak_memory" "$NAMES" "$load_secs" "$RATE" 2
