#!/usr/bin/env bash
# Harness memory over a long open-model run (not run by CI).
#
#   bench/harness-memory.sh                  # 30 minutes at 2000 req/s, 500 distinct error messages
#   DURATION=5m RATE=1000 bench/harness-memory.sh
#
# The harness drives mock-upstream directly (attach mode) with a scenario of NAMES request names that all
# "fail" (each expects 201, the mock answers 200), so the error table holds NAMES distinct (name, message)
# rows — the Locust #816 pattern. The harness's RSS is sampled every 10 s from /proc; the script prints the
# RSS after the first minute, at the end, and the growth (goal: < 5 MB over 30 min at 2000 req/s).
# Harness pinned to core 1, mock to core 0. Loopback only; the run stops by itself after DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-30m}
RATE=${RATE:-2000}
NAMES=${NAMES:-500}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p harness -p mock-upstream
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

taskset -c 0 "$BIN/mock-upstream" --listen 127.0.0.1:0 > "$WORK/mock.out" &
for _ in $(seq 50); do grep -q "listening on" "$WORK/mock.out" 2>/dev/null && break; sleep 0.1; done
MOCK_URL=$(head -1 "$WORK/mock.out" | sed 's/^listening on //')

{
    printf 'name = "harness_memory"\ndescription = "bench: harness memory with %s failing request names"\nseed = 1\n\n' "$NAMES"
    printf '[load]\nmodel = "open"\nrate = %s\nrun_time = "%s"\ntimeout = "5s"\nmax_in_flight = 2000\n\n' "$RATE" "$DURATION"
    for i in $(seq "$NAMES"); do
        printf '[[request]]\nname = "models %s"\nmethod = "GET"\npath = "/v1/models"\nexpect = [201]\n\n' "$i"
    done
} > "$WORK/scenario.toml"

taskset -c 1 "$BIN/harness" run "$WORK/scenario.toml" --target "$MOCK_URL" --out "$WORK/results" --quiet \
    > "$WORK/harness.out" 2>&1 &
HARNESS_PID=$!
echo "elapsed_s,harness_rss_kb"
start=$(date +%s)
while kill -0 "$HARNESS_PID" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$HARNESS_PID/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(( $(date +%s) - start )),$rss" | tee -a "$WORK/rss.csv"
    sleep 10
done
wait "$HARNESS_PID" || true
tail -3 "$WORK/harness.out"
python3 - "$WORK/rss.csv" "$WORK/results/summary.json" <<'PY'
import csv, json, sys
rows = [(int(t), int(r)) for t, r in csv.reader(open(sys.argv[1]))]
warm = min(60, rows[-1][0])  # the first minute is warm-up (pools, histograms created lazily)
after_1m = next(r for t, r in rows if t >= warm)
end = rows[-1][1]
s = json.load(open(sys.argv[2]))
a = s["aggregate"]
errors = len(s["errors"])
print(f"requests {a['requests']}, {a['requests_per_sec']:.0f} req/s, failures {a['failures']}, error rows {errors}")
print(f"harness RSS after {warm} s {after_1m/1024:.1f} MiB, at end {end/1024:.1f} MiB, growth {(end-after_1m)/1024:.2f} MiB (goal < 5 MiB)")
PY
