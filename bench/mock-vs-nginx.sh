#!/usr/bin/env bash
# mock-upstream performance check (not run by CI).
#
#   bench/mock-vs-nginx.sh
#
# 1. Throughput: non-streaming POST /v1/chat/completions on the mock vs nginx returning the very same JSON
#    body, each pinned to core 0 (`taskset -c 0`), wrk pinned to core 1, same script run, best of ROUNDS.
#    Goal: mock >= 0.6x nginx.
# 2. Capacity: concurrent open streams (50 ms inter-token delay) at each count of the STREAMS ladder, then
#    as many hanging requests as the largest count, while a separate thread of the client probes
#    GET /v1/models every 10 ms on its own keep-alive connection. The mock is pinned to core 0 and the client
#    to core 1 (its stream-reading thread reniced below the probe thread). Goal at 10,000: mock RSS < 300 MB
#    and probe p99 < 10 ms. Also printed: the mock's CPU microseconds per SSE frame and how late frames
#    arrive (frame_gap: time between a stream's frames, against the configured 50 ms) — when the mock's one
#    core cannot play every frame on time, frames run late while the probe stays prompt.
#
# Env knobs: DURATION (wrk, default 10s), CONNECTIONS (64), ROUNDS (2), STREAMS ("2500 5000 10000"),
# HOLD (20s), BASELINE_BIN (another mock-upstream binary, e.g. an older build, measured in the same rounds).
# Installs wrk and nginx with apt-get when missing. Loopback only. Current figures: bench/RESULTS.md#mock-vs-nginx
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-2}
STREAMS=${STREAMS:-2500 5000 10000}
BASELINE_BIN=${BASELINE_BIN:-}
HOLD=${HOLD:-20s}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
fi
cargo build --release -q -p mock-upstream --bin mock-upstream -p bench-tools --bin open_streams
MOCK_BIN=$CARGO_TARGET_DIR/release/mock-upstream
STREAMS_BIN=$CARGO_TARGET_DIR/release/open_streams

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"   # each process holds ~STREAMS sockets

cat >"$WORK/mock.toml" <<'EOF'
# No faults, no latency for plain responses; streams pace tokens 50 ms apart; x-mock-fault for the hang check.
override_headers = true
[route_latency.chat_completions]
inter_token = { fixed = "50ms" }
EOF

BODY='{"model":"gpt-4","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}'
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
EOF

# start_mock CPUSET [BIN] -> sets MOCK_PID, MOCK_ADDR
start_mock() {
    local cpus=$1 bin=${2:-$MOCK_BIN}
    : >"$WORK/mock.out"
    if [ -n "$cpus" ]; then
        taskset -c "$cpus" "$bin" --listen 127.0.0.1:0 --config "$WORK/mock.toml" >"$WORK/mock.out" 2>"$WORK/mock.err" &
    else
        "$bin" --listen 127.0.0.1:0 --config "$WORK/mock.toml" >"$WORK/mock.out" 2>"$WORK/mock.err" &
    fi
    MOCK_PID=$!
    PIDS+=("$MOCK_PID")
    for _ in $(seq 100); do
        if [ -s "$WORK/mock.out" ]; then break; fi
        sleep 0.05
    done
    MOCK_ADDR=$(head -1 "$WORK/mock.out" | sed 's|listening on http://||')
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

rps() { # URL -> requests/sec (wrk on core 1, after a 2 s warm-up)
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s -s "$WORK/post.lua" "$1" >/dev/null
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/post.lua" "$1" | awk '/Requests\/sec/ {print $2}'
}

best() { printf '%s\n' "$@" | sort -g | tail -1; }

echo "== throughput: POST /v1/chat/completions, server on core 0, wrk -t1 -c$CONNECTIONS -d$DURATION on core 1"
start_mock 0
curl -s -X POST "http://$MOCK_ADDR/v1/chat/completions" -H 'Authorization: Bearer sk-bench' \
    -H 'Content-Type: application/json' -d "$BODY" >"$WORK/body.json"
stop "$MOCK_PID"

NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/nginx-tmp"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path $WORK/nginx-tmp;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            default_type application/json;
            return 200 '$(cat "$WORK/body.json")';
        }
    }
}
EOF

MOCK_RUNS=()
NGINX_RUNS=()
BASELINE_RUNS=()
for round in $(seq "$ROUNDS"); do
    start_mock 0
    MOCK_RUNS+=("$(rps "http://$MOCK_ADDR/v1/chat/completions")")
    stop "$MOCK_PID"
    if [ -n "$BASELINE_BIN" ]; then
        start_mock 0 "$BASELINE_BIN"
        BASELINE_RUNS+=("$(rps "http://$MOCK_ADDR/v1/chat/completions")")
        stop "$MOCK_PID"
        echo "round $round: baseline ${BASELINE_RUNS[-1]} req/s"
    fi
    taskset -c 0 nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    sleep 0.5
    NGINX_RUNS+=("$(rps "http://127.0.0.1:$NGINX_PORT/v1/chat/completions")")
    stop "$NGINX_PID"
    echo "round $round: mock ${MOCK_RUNS[-1]} req/s, nginx ${NGINX_RUNS[-1]} req/s"
done
MOCK_RPS=$(best "${MOCK_RUNS[@]}")
NGINX_RPS=$(best "${NGINX_RUNS[@]}")
RATIO=$(awk -v m="$MOCK_RPS" -v n="$NGINX_RPS" 'BEGIN { printf "%.2f", m / n }')
printf '%-22s %12s\n' "server (best of $ROUNDS)" "req/s"
printf '%-22s %12s\n' "mock-upstream" "$MOCK_RPS"
printf '%-22s %12s\n' "nginx (same body)" "$NGINX_RPS"
if [ -n "$BASELINE_BIN" ]; then
    BASELINE_RPS=$(best "${BASELINE_RUNS[@]}")
    printf '%-22s %12s  (ratio to nginx %s)\n' "baseline mock" "$BASELINE_RPS" \
        "$(awk -v m="$BASELINE_RPS" -v n="$NGINX_RPS" 'BEGIN { printf "%.2f", m / n }')"
fi
echo "ratio mock/nginx = $RATIO (goal >= 0.60)"

# capacity MODE COUNT [BIN]
capacity() {
    echo
    echo "== capacity${3:+ (baseline)}: $2 concurrent $1 requests for $HOLD (50 ms inter-token), probing GET /v1/models"
    start_mock 0 "${3:-$MOCK_BIN}"
    taskset -c 1 "$STREAMS_BIN" --url "$MOCK_ADDR" --pid "$MOCK_PID" --streams "$2" --hold "$HOLD" --mode "$1"
    stop "$MOCK_PID"
}
LARGEST=0
for count in $STREAMS; do
    capacity stream "$count"
    if [ -n "$BASELINE_BIN" ]; then capacity stream "$count" "$BASELINE_BIN"; fi
    LARGEST=$count
done
capacity hang "$LARGEST"
echo
echo "goals at 10000: mock_peak_rss_mb < 300 and models_probe p99 < 10 ms (mock on one core; frame_gap shows how late frames ran)"
