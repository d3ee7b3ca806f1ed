#!/usr/bin/env bash
# What `--metrics-listen` costs the load: the harness's open model at RATE req/s against a fast target, without
# the endpoint, with it and scraped once a second (a busy Prometheus), and with it scraped every 100 ms (10x
# that), interleaved over ROUNDS rounds.
#
#   bench/live-metrics-cost.sh [RATE=2000] [SECONDS=10]      (ROUNDS=3 by default)
#
# The target is bench-tools `stalling_target` (hyper, `200 ok` at once) on core 1, the harness on core 0, the
# scraper (curl) on core 1 beside the target so that its own process start-ups are not counted as the harness's.
# Prints, per mode, the median over rounds of p50/p99 latency, achieved req/s, late + dropped sends (the
# generator's own lag) and the harness's CPU per request. The endpoint is fed from the run loop's once-per-second
# take, not from the request path, so every mode should read the same within noise. Not run by CI.
# Current figures: bench/RESULTS.md#live-metrics-cost
set -euo pipefail
RATE=${1:-2000}
SECS=${2:-10}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
PORT=18091
METRICS=127.0.0.1:19464
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

(cd "$ROOT" && cargo build --release -q -p harness --bin harness -p bench-tools --bin stalling_target)
HARNESS=$CARGO_TARGET_DIR/release/harness
TARGET=$CARGO_TARGET_DIR/release/stalling_target

taskset -c 1 "$TARGET" --port "$PORT" > "$WORK/target.out" &
TARGET_PID=$!
trap 'kill "$TARGET_PID" 2>/dev/null || true; wait "$TARGET_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do grep -q listening "$WORK/target.out" 2>/dev/null && break; sleep 0.1; done

cat > "$WORK/open.toml" <<TOML
name = "live-metrics-cost"
description = "open model, $RATE req/s, GET /"
[load]
model = "open"
rate = $RATE
run_time = "${SECS}s"
[[request]]
name = "get"
path = "/"
TOML

TIMEFORMAT='%U %S'
# $1 = mode (off | scrape-1s | scrape-100ms); appends "mode p50 p99 rps late cpu_us_per_req".
one_run() {
  local mode=$1 period= extra=()
  case $mode in
    scrape-1s) period=1; extra=(--metrics-listen "$METRICS") ;;
    scrape-100ms) period=0.1; extra=(--metrics-listen "$METRICS") ;;
  esac
  rm -rf "$WORK/out"
  { time taskset -c 0 "$HARNESS" run "$WORK/open.toml" --target "http://127.0.0.1:$PORT" --out "$WORK/out" -q \
      "${extra[@]}" >/dev/null 2>&1; } 2> "$WORK/cpu" &
  local pid=$!
  if [ -n "$period" ]; then
    while kill -0 "$pid" 2>/dev/null; do
      taskset -c 1 curl -s -o /dev/null "http://$METRICS/metrics" || true
      sleep "$period"
    done
  fi
  wait "$pid" || true
  python3 - "$WORK/out/summary.json" "$WORK/cpu" "$mode" >> "$WORK/results" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
a, e = s["aggregate"], s["engine"]
user, system = map(float, open(sys.argv[2]).read().split())
p = a["latency"]["percentiles"]
print(sys.argv[3], p["p50"], p["p99"], a["requests_per_sec"], e["late_sends"] + e["dropped_sends"],
      (user + system) * 1e6 / max(a["requests"], 1))
PY
}

echo "== $RATE req/s for ${SECS}s, $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$WORK/results"
for _ in $(seq "$ROUNDS"); do
  for mode in off scrape-1s scrape-100ms; do one_run "$mode"; done
done
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode, *values = line.split()
    rows.setdefault(mode, []).append([float(v) for v in values])
print(f"{'mode (median of rounds)':26} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'late+dropped':>13} {'CPU us/req':>11}")
for mode in ("off", "scrape-1s", "scrape-100ms"):
    m = [statistics.median(r[i] for r in rows[mode]) for i in range(5)]
    print(f"{mode:26} {m[0]:8.3f} {m[1]:8.3f} {m[2]:9.1f} {m[3]:13.0f} {m[4]:11.1f}")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
