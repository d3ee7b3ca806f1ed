#!/usr/bin/env bash
# Prometheus source cost: the harness's CPU while it monitors 10 replicas through a real Prometheus (instant
# queries every second), side by side with the process source (one PID, /proc) and the metrics source (the same
# 10 /metrics pages scraped directly), as % of one core. Goal: the prometheus source under 1 % of a core.
#
#   bench/prometheus-source-cost.sh [ROUNDS=3] [SECONDS=60]
#
# Ten reference proxies (`harness __reference-proxy`, idle, each serving /metrics) run on loopback; Prometheus
# scrapes them every second (storage in a temp dir). Each round runs `harness watch` once per source for SECONDS,
# the three sources interleaved, and reports two figures per run: the whole harness process's CPU (user + system
# from getrusage of the child, so start-up and the final judgement are included) and the sampling thread's mean
# (`sampling.monitor_cpu_percent` in leak.json: the scrapes, the queries and the CSV rows). Medians over ROUNDS.
# Needs Linux, prometheus, curl and python3. Not run by CI. Current figures:
# bench/RESULTS.md#prometheus-source-cost
set -euo pipefail
ROUNDS=${1:-3}
SECS=${2:-60}
REPLICAS=10
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
command -v prometheus >/dev/null || { echo "prometheus not found (apt-get install --no-install-recommends prometheus)" >&2; exit 2; }
cargo build --release -q -p harness
HARNESS="$CARGO_TARGET_DIR/release/harness"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

targets=""
metrics_flags=()
for i in $(seq "$REPLICAS"); do
  port=$(free_port)
  "$HARNESS" __reference-proxy --listen "127.0.0.1:$port" --upstream http://127.0.0.1:9 --key "k$i=sk-bench-$i" \
    >"$WORK/proxy-$i.log" 2>&1 &
  PIDS+=($!)
  targets+="      - targets: [\"127.0.0.1:$port\"]
        labels: { pod: \"proxy-$i\" }
"
  metrics_flags+=(--metrics-url "http://127.0.0.1:$port/metrics")
done
FIRST_PROXY=${PIDS[0]}
PROM_PORT=$(free_port)
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: proxy
    static_configs:
$targets
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
PROM="http://127.0.0.1:$PROM_PORT"
for _ in $(seq 100); do
  up=$(curl -fsS "$PROM/api/v1/query?query=up%3D%3D1" 2>/dev/null | grep -o '"pod"' | wc -l || true)
  [ "$up" -ge "$REPLICAS" ] && break
  sleep 0.2
done
[ "$up" -ge "$REPLICAS" ] || { echo "Prometheus sees $up of $REPLICAS replicas; log:" >&2; cat "$WORK/prometheus.log" >&2; exit 1; }

# One `harness watch`: prints "<harness CPU %> <sampling thread CPU %>".
watch_cost() {
  local out="$WORK/watch-$RANDOM"
  python3 - "$SECS" "$out" "$HARNESS" watch --duration "${SECS}s" --warmup 5s --progress-every 0 --out "$out" "$@" <<'PY'
import json, resource, subprocess, sys
secs, out, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
thread = json.load(open(f"{out}/leak.json"))["sampling"]["monitor_cpu_percent"]
print(f"{cpu / secs * 100:.3f} {thread:.3f}")
PY
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "$(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); $REPLICAS idle replicas; $ROUNDS rounds x ${SECS}s per source, interval 1s"
declare -A harness_cpu thread_cpu
for round in $(seq "$ROUNDS"); do
  for source in process metrics prometheus; do
    case $source in
      process) read -r h t < <(watch_cost --pid "$FIRST_PROXY") ;;
      metrics) read -r h t < <(watch_cost "${metrics_flags[@]}") ;;
      prometheus) read -r h t < <(watch_cost --prometheus "$PROM" --selector '{job="proxy"}' --replica-label pod) ;;
    esac
    harness_cpu[$source]+="$h "
    thread_cpu[$source]+="$t "
    echo "round $round $source: harness ${h} %, sampling thread ${t} % of one core" >&2
  done
done
printf '\n%-34s %22s %26s\n' "source" "harness CPU (% core)" "sampling thread (% core)"
for source in process metrics prometheus; do
  label=$source
  [ "$source" = process ] && label="process (1 PID)"
  [ "$source" = metrics ] && label="metrics ($REPLICAS /metrics URLs)"
  [ "$source" = prometheus ] && label="prometheus ($REPLICAS replicas)"
  printf '%-34s %22.3f %26.3f\n' "$label" \
    "$(tr ' ' '\n' <<<"${harness_cpu[$source]}" | grep . | median)" \
    "$(tr ' ' '\n' <<<"${thread_cpu[$source]}" | grep . | median)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
