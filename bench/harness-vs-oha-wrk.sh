#!/usr/bin/env bash
# Generator capacity: harness vs oha vs wrk on ONE core against nginx on ANOTHER core, same connection count.
#
#   bench/harness-vs-oha-wrk.sh [CONNECTIONS=50] [SECONDS=10]
#
# Installs wrk and nginx (apt) and oha (cargo install --locked; SKIP_OHA=1 to skip) when missing. Each generator is pinned with taskset
# to core 0, nginx (one worker, returns a 2-byte body, no access log) to core 1. Prints req/s side by side and the
# harness's ratios (goal: >= 1.0x oha, >= 0.75x wrk). Also runs bare hyper-util and reqwest client loops (the
# measurement behind the harness's hot-path client choice). Not run by CI.
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

(cd "$ROOT" && cargo build --release -q -p harness --bin harness --example client_loop)
HARNESS=$CARGO_TARGET_DIR/release/harness
CLIENT_LOOP=$CARGO_TARGET_DIR/release/examples/client_loop

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

echo "== $CONNS connections, ${SECS}s, generator on core 0, nginx on core 1"
taskset -c 0 "$HARNESS" run "$WORK/bench.toml" --target "$URL" --out "$WORK/harness" -q || true
H=$(python3 -c "import json;print(round(json.load(open('$WORK/harness/summary.json'))['aggregate']['requests_per_sec']))")
O=0
if need oha; then
  O=$(taskset -c 0 oha -z "${SECS}s" -c "$CONNS" --no-tui --output-format json "$URL" 2>/dev/null \
      | python3 -c "import json,sys;print(round(json.load(sys.stdin)['summary']['requestsPerSec']))")
fi
W=$(taskset -c 0 wrk -t1 -c "$CONNS" -d "${SECS}s" "$URL" | awk '/Requests\/sec/ {printf "%d", $2}')
HY=$(taskset -c 0 "$CLIENT_LOOP" "$URL" "$CONNS" "$SECS" hyper | awk '{print $2}')
RQ=$(taskset -c 0 "$CLIENT_LOOP" "$URL" "$CONNS" "$SECS" reqwest | awk '{print $2}')

printf '%-28s %10s\n' generator req/s
printf '%-28s %10s\n' "harness (full bookkeeping)" "$H"
printf '%-28s %10s\n' oha "$O"
printf '%-28s %10s\n' "wrk -t1" "$W"
printf '%-28s %10s\n' "bare hyper-util loop" "$HY"
printf '%-28s %10s\n' "bare reqwest loop" "$RQ"
python3 - "$H" "$O" "$W" "$HY" "$RQ" <<'PY'
import sys
h, o, w, hy, rq = map(float, sys.argv[1:])
oha = f"{h/o:.2f}x" if o else "n/a (oha not installed)"
print(f"harness / oha = {oha} (goal >= 1.0)   harness / wrk = {h/w:.2f}x (goal >= 0.75)")
print(f"bare reqwest / bare hyper-util = {rq/hy:.2f}x")
PY
