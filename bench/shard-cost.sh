#!/usr/bin/env bash
# What running the load as 3 shards costs on one box, side by side with 1 harness process at the same total rate
# — one command:
#
#   bash bench/shard-cost.sh                    # ~2 min: 1000 req/s for 20 s, 1 process then 3 shards + merge
#   RATE=2000 SECS=30 ROUNDS=3 bash bench/shard-cost.sh
#
# Layout: an external mock-upstream (`--admin-token`) and the reference proxy (`harness __reference-proxy`) run
# once for every round; each round runs the open-model chat scenario below with `--shard 0/1`, then as
# `--shard 0/3`, `1/3`, `2/3` started together with `--start-at`, then `harness merge`. The table gives, for
# both: requests, req/s, p50/p95/p99/max (ms) from summary.json (the merge's for 3 shards), late sends of the
# open model, harness CPU (user + system seconds of all its processes) and the verdict. Rounds alternate
# 1 process / 3 shards, so load from other processes on the box hits both alike. Loopback only; release build;
# not run by CI. Current figures: bench/RESULTS.md#shard-cost
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
SECS=${SECS:-20}
ROUNDS=${ROUNDS:-1}
TOKEN=bench-shard-token
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building (release)"
cargo build --release -q -p harness -p mock-upstream --bins

# Starts "$@" in the background, waits for its `listening on http://ADDR` line, prints ADDR.
start_server() {
  local log=$1; shift
  "$@" >"$log.out" 2>"$log.err" &
  echo $! >"$log.pid"
  for _ in $(seq 100); do
    if grep -q '^listening on http://' "$log.out" 2>/dev/null; then
      head -1 "$log.out" | sed 's#^listening on http://##'
      return
    fi
    sleep 0.1
  done
  echo "server did not start: $*" >&2; cat "$log.err" >&2; exit 1
}

KEYS=(key1=sk-bench-1 key2=sk-bench-2 key3=sk-bench-3)
MOCK=$(start_server "$WORK/mock" "$BIN/mock-upstream" --listen 127.0.0.1:0 --admin-token "$TOKEN" \
  --keys "$(IFS=,; echo "${KEYS[*]}")")
PIDS+=("$(cat "$WORK/mock.pid")")
PROXY=$(start_server "$WORK/proxy" "$BIN/harness" __reference-proxy --listen 127.0.0.1:0 \
  --upstream "http://$MOCK" "${KEYS[@]/#/--key=}")
PIDS+=("$(cat "$WORK/proxy.pid")")
echo "mock-upstream $MOCK · reference-proxy $PROXY · $RATE req/s for $SECS s, $ROUNDS round(s)"

cat >"$WORK/shard_cost.toml" <<TOML
name = "shard_cost"
seed = 7
[load]
model = "open"
rate = $RATE
run_time = "${SECS}s"
timeout = "10s"
[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
body = { model = "gpt-4", messages = [{ role = "user", content = "hi" }], max_tokens = 8 }
TOML

export RUST_LOG=warn
# One shard in the background: $1 = I/N, $2 = results dir, $3 = --start-at or empty; user+sys seconds in $2.cpu.
shard() {
  local start=()
  [ -n "$3" ] && start=(--start-at "$3")
  ( TIMEFORMAT='%U %S'
    { time "$BIN/harness" run "$WORK/shard_cost.toml" --shard "$1" --target "http://$PROXY" \
        --upstream "http://$MOCK" --upstream-admin-token "$TOKEN" --out "$2" -q "${start[@]}" \
        >/dev/null 2>"$2.err" || true; } 2>"$2.cpu" )
}
cpu_of() { awk '{s += $1 + $2} END {printf "%.2f", s}' "$@"; }

ROWS=()
row() {  # $1 = label, $2 = summary.json, $3.. = cpu files
  local label=$1 summary=$2; shift 2
  ROWS+=("$(python3 - "$label" "$summary" "$(cpu_of "$@")" <<'PY'
import json, sys
label, path, cpu = sys.argv[1], sys.argv[2], sys.argv[3]
s = json.load(open(path))
a = s["aggregate"]
p = a["latency"]["percentiles"]
engine = s["engine"]
late = engine.get("late_sends")
if late is None:  # a merge keeps each shard's figures
    late = sum(x.get("late_sends") or 0 for x in engine.get("shards", []))
print(f"| {label} | {a['requests']} | {a['requests_per_sec']:.1f} | {p['p50']:.2f} | {p['p95']:.2f} | "
      f"{p['p99']:.2f} | {a['latency']['max_ms']:.1f} | {late} | {cpu} | {s['verdict']} |")
PY
)")
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round: 1 process"
  shard 0/1 "$WORK/one-$round" ""
  row "1 process" "$WORK/one-$round/summary.json" "$WORK/one-$round.cpu"
  echo "== round $round: 3 shards"
  start_at=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)
  running=()
  for i in 0 1 2; do shard "$i/3" "$WORK/s$i-$round" "$start_at" & running+=($!); done
  wait "${running[@]}"
  TIMEFORMAT='%U %S'
  { time "$BIN/harness" merge "$WORK"/s{0,1,2}-"$round" --out "$WORK/merged-$round" -q || true; } 2>"$WORK/merge-$round.cpu"
  row "3 shards (merged)" "$WORK/merged-$round/summary.json" "$WORK"/s{0,1,2}-"$round".cpu "$WORK/merge-$round.cpu"
  python3 - "$WORK"/s{0,1,2}-"$round" <<'PY'
import json, sys
for d in sys.argv[1:]:
    r = json.load(open(f"{d}/shard.json"))
    s = json.load(open(f"{d}/summary.json"))
    print(f"   shard {r['index']}/{r['count']}: {s['aggregate']['requests']} requests, "
          f"started {r['start_lateness_ms']:.1f} ms after --start-at, verdict {s['verdict']}")
PY
done

echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | late sends | harness CPU s | verdict |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
