#!/usr/bin/env bash
# mock-upstream throughput over TLS (not run by CI).
#
#   bench/tls-throughput.sh
#
# Non-streaming POST /v1/chat/completions on `mock-upstream --tls` vs nginx returning the very same JSON body
# over TLS, each pinned to core 0 (`taskset -c 0`; nginx `worker_processes 1`, a generated self-signed P-256
# certificate as the mock generates, TLS 1.3), oha pinned to core 1. Two protocols, each in ROUNDS interleaved
# rounds (mock, nginx, mock, ...), medians printed with the ratio:
#   - HTTP/2 (ALPN h2): oha --http2, CONNECTIONS connections × PARALLEL streams each;
#   - HTTP/1.1 over TLS (ALPN http/1.1): oha -c CONNECTIONS×PARALLEL keep-alive connections.
# Both keep their connections open, so this is the per-request cost of TLS records and framing, not of
# handshakes. Also printed: each server's CPU time per request over the measured run (from /proc; nginx's one
# worker). When one core of oha cannot saturate the server, req/s measures the generator and the CPU ratio is
# the one that compares the servers. Goal: mock >= 0.5x nginx on HTTP/2.
#
# Env knobs: DURATION (per measurement, default 10s), CONNECTIONS (8), PARALLEL (8), ROUNDS (3).
# Needs nginx (/usr/sbin/nginx; apt-get install nginx when missing), openssl and oha (cargo install oha
# when missing). Loopback only. Current figures: bench/RESULTS.md#tls-throughput
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
PARALLEL=${PARALLEL:-8}
ROUNDS=${ROUNDS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export PATH=$PATH:/usr/sbin

if ! command -v nginx >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
command -v oha >/dev/null || cargo install oha --locked
cargo build --release -q -p mock-upstream --bin mock-upstream
MOCK_BIN=$CARGO_TARGET_DIR/release/mock-upstream

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/mock.toml" <<EOF
# No faults, no latency: the cost of serving a completion over TLS.
[tls]
enabled = true
ca_out = "$WORK/ca.pem"
EOF

BODY='{"model":"gpt-4","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}'

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

start_mock() { # -> MOCK_PID, MOCK_URL
    : >"$WORK/mock.out"
    taskset -c 0 "$MOCK_BIN" --listen 127.0.0.1:0 --config "$WORK/mock.toml" >"$WORK/mock.out" 2>"$WORK/mock.err" &
    MOCK_PID=$!
    PIDS+=("$MOCK_PID")
    for _ in $(seq 100); do
        if [ -s "$WORK/mock.out" ]; then break; fi
        sleep 0.05
    done
    MOCK_URL=$(head -1 "$WORK/mock.out" | sed 's|listening on ||')
}

start_nginx() { # -> NGINX_PID, NGINX_WORKER (the one process that serves)
    taskset -c 0 nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" -g 'daemon off;' &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    sleep 0.5
    NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime, in clock ticks

# rps PROTOCOL URL SERVER_PID -> "REQ_PER_SEC CPU_US_PER_REQUEST" (oha on core 1, after a 2 s warm-up; the
# server's CPU time over the measured run only)
rps() {
    local flags
    case $1 in
        h2) flags=(--http2 -c "$CONNECTIONS" -p "$PARALLEL") ;;
        http1.1) flags=(--http-version 1.1 -c $((CONNECTIONS * PARALLEL))) ;;
    esac
    local oha=(taskset -c 1 oha --insecure --no-tui "${flags[@]}" -m POST -d "$BODY"
        -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench')
    "${oha[@]}" -z 2s "$2" >/dev/null
    local before
    before=$(cpu_ticks "$3")
    "${oha[@]}" -z "$DURATION" --output-format json "$2" >"$WORK/oha.json"
    python3 - "$WORK/oha.json" "$(($(cpu_ticks "$3") - before))" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d["statusCodeDistribution"]
if set(codes) != {"200"}:
    sys.exit(f"not every answer was 200: {codes}, errors {d.get('errorDistribution')}")
cpu_us = int(sys.argv[2]) / int(sys.argv[3]) * 1e6
print(round(d["summary"]["requestsPerSec"]), round(cpu_us / codes["200"], 1))
EOF
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The body nginx returns: the mock's own answer, taken over TLS.
start_mock
curl -sf --cacert "$WORK/ca.pem" -X POST "$MOCK_URL/v1/chat/completions" -H 'Authorization: Bearer sk-bench' \
    -H 'Content-Type: application/json' -d "$BODY" >"$WORK/body.json"
stop "$MOCK_PID"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/nginx-key.pem" -out "$WORK/nginx-cert.pem" 2>/dev/null
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/nginx-tmp"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path $WORK/nginx-tmp;
    proxy_temp_path $WORK/nginx-tmp;
    fastcgi_temp_path $WORK/nginx-tmp;
    uwsgi_temp_path $WORK/nginx-tmp;
    scgi_temp_path $WORK/nginx-tmp;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl http2;
        ssl_certificate $WORK/nginx-cert.pem;
        ssl_certificate_key $WORK/nginx-key.pem;
        ssl_protocols TLSv1.3;
        location / {
            default_type application/json;
            return 200 '$(cat "$WORK/body.json")';
        }
    }
}
EOF

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
column() { printf '%s\n' "${@:2}" | cut -d' ' -f"$1"; }
ratio() { awk -v m="$1" -v n="$2" 'BEGIN { printf "%.2f", m / n }'; }

for proto in h2 http1.1; do
    MOCK_RUNS=()
    NGINX_RUNS=()
    for round in $(seq "$ROUNDS"); do
        start_mock
        MOCK_RUNS+=("$(rps "$proto" "$MOCK_URL/v1/chat/completions" "$MOCK_PID")")
        stop "$MOCK_PID"
        start_nginx
        NGINX_RUNS+=("$(rps "$proto" "https://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$NGINX_WORKER")")
        stop "$NGINX_PID"
        echo "$proto round $round: mock ${MOCK_RUNS[-1]/ / req\/s, CPU µs\/req }, nginx ${NGINX_RUNS[-1]/ / req\/s, CPU µs\/req }"
    done
    MOCK_RPS=$(median $(column 1 "${MOCK_RUNS[@]}"))
    NGINX_RPS=$(median $(column 1 "${NGINX_RUNS[@]}"))
    MOCK_CPU=$(median $(column 2 "${MOCK_RUNS[@]}"))
    NGINX_CPU=$(median $(column 2 "${NGINX_RUNS[@]}"))
    printf '%-8s medians of %s: mock %s req/s (%s CPU µs/req), nginx %s req/s (%s CPU µs/req); ' "$proto" \
        "$ROUNDS" "$MOCK_RPS" "$MOCK_CPU" "$NGINX_RPS" "$NGINX_CPU"
    echo "ratio mock/nginx = $(ratio "$MOCK_RPS" "$NGINX_RPS") req/s, $(ratio "$NGINX_CPU" "$MOCK_CPU") by CPU per request"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "goal: ratio mock/nginx >= 0.50 on h2"
