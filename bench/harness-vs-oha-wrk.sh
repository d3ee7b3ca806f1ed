#!/usr/bin/env bash
# Generator capacity: harness vs oha vs wrk on ONE core against nginx on ANOTHER core, same connection count.
#
#   bench/harness-vs-oha-wrk.sh [CONNECTIONS=50] [SECONDS=10]      (ROUNDS=3 by default)
#
# Installs wrk and nginx (apt) and oha (cargo install --locked; SKIP_OHA=1 to skip) when missing. Each generator is pinned with taskset
# to core 0, nginx (one worker, returns a 2-byte body, no access log) to core 1. Prints req/s side by side and the
# harness's ratios (goal: >= 1.0x oha, >= 0.75x wrk). Also runs bare client loops (bench-tools client_loop: hyper
# connection-level, hyper-util pooled, reqwest — the ceiling of each client style). BASELINE=/path/to/another/harness
# adds that build, interleaved in the same rounds (e.g. the build before a change). Not run by CI.
# Current figures: bench/RESULTS.md#harness-vs-oha-wrk
set -euo pipefail
CONNS=${1:-50}
SECS=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
PORT=18080
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then apt-get update -qq && apt-get install -y -qq wrk nginx >/dev/null; fi
if ! need oha && [ "${SKIP_OHA:-0}" != 1 ]; then cargo install oha --locked || echo "oha did not install" >&2; fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

(cd "$ROOT" && cargo build --release -q -p harness --bin harness -p bench-tools --bin client_loop)
HARNESS=$CARGO_TARGET_DIR/release/harness
CLIENT_LOOP=$CARGO_TARGET_DIR/release/client_loop

cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$PORT;
    location / { return 200 "ok"; }
  }
}
NGINX
taskset -c 1 "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
trap 'kill $NGINX_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
sleep 1
URL=http://127.0.0.1:$PORT/

cat > "$WORK/bench.toml" <<TOML
name = "bench"
description = "back-to-back GET / with $CONNS users, no think time"
[load]
model = "closed"
users = $CONNS
spawn_rate = 100000
run_time = "${SECS}s"
[[request]]
name = "get"
path = "/"
TOML

# One run of each generator per round, interleaved; req/s and CPU microseconds per request (user + system time of
# the generator / requests: less sensitive than req/s to other load on a shared machine). Medians are printed.
ROUNDS=${ROUNDS:-3}
TIMEFORMAT='%U %S'
cpu_of() { awk '{printf "%.0f", ($1 + $2) * 1e6}' "$WORK/cpu"; }
record() { echo "$1 $2 $(cpu_of)" >> "$WORK/results"; }  # name req/s cpu_us
: > "$WORK/results"
echo "== $CONNS connections, ${SECS}s, generator on core 0, nginx on core 1, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  for name in harness ${BASELINE:+baseline}; do
    bin=$HARNESS; [ "$name" = baseline ] && bin=$BASELINE
    rm -rf "$WORK/harness"
    { time taskset -c 0 "$bin" run "$WORK/bench.toml" --target "$URL" --out "$WORK/harness" -q >/dev/null 2>&1; } 2> "$WORK/cpu" || true
    record "$name" "$(python3 -c "import json;a=json.load(open('$WORK/harness/summary.json'))['aggregate'];print(a['requests_per_sec'], a['requests'])")"
  done
  if need oha; then
    { time taskset -c 0 oha -z "${SECS}s" -c "$CONNS" --no-tui --output-format json "$URL" > "$WORK/oha.json" 2>/dev/null; } 2> "$WORK/cpu"
    record oha "$(python3 -c "import json;d=json.load(open('$WORK/oha.json'));print(d['summary']['requestsPerSec'], sum(d['statusCodeDistribution'].values()))")"
  fi
  { time taskset -c 0 wrk -t1 -c "$CONNS" -d "${SECS}s" "$URL" > "$WORK/wrk.out"; } 2> "$WORK/cpu"
  record wrk "$(awk '/Requests\/sec/ {r=$2} /requests in/ {n=$1} END {print r, n}' "$WORK/wrk.out")"
  for kind in conn hyper reqwest; do
    { time taskset -c 0 "$CLIENT_LOOP" "$URL" "$CONNS" "$SECS" "$kind" > "$WORK/loop.out"; } 2> "$WORK/cpu"
    record "$kind" "$(awk '{gsub(/\(/, "", $4); print $2, $4}' "$WORK/loop.out")"
  done
done

python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rate, n, cpu = line.split()
    rows.setdefault(name, []).append((float(rate), float(cpu) / max(float(n), 1)))
med = {k: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
labels = {"harness": "harness (full bookkeeping)", "baseline": "harness, BASELINE build", "oha": "oha", "wrk": "wrk -t1",
          "conn": "bare hyper conn loop",
          "hyper": "bare hyper-util pooled loop", "reqwest": "bare reqwest loop"}
print(f"{'generator (median of rounds)':32} {'req/s':>10} {'CPU us/req':>11}")
for k, label in labels.items():
    if k in med:
        print(f"{label:32} {med[k][0]:10.0f} {med[k][1]:11.2f}")
h = med["harness"]
for peer, goal in (("oha", 1.0), ("wrk", 0.75)):
    if peer in med:
        p = med[peer]
        print(f"harness / {peer}: {h[0] / p[0]:.2f}x req/s, {p[1] / h[1]:.2f}x CPU efficiency (goal >= {goal}x)")
PY
