#!/usr/bin/env bash
# Verdict matrix: are the harness's verdicts right on a proxy in the users' own stack?
#
# The example FastAPI proxy (examples/fastapi-proxy) is run the way a user runs their own proxy: an external
# mock-upstream with an admin token, the proxy in front of it, `harness run --target --proxy-pid --upstream`.
# 1. The correct example, RERUNS times per behaviour scenario (key_rate_limited, all_keys_exhausted,
#    stream_interrupted), and a soak: each should PASS (exit 0).
# 2. Each `--defect` once, with the scenario that must catch it: each should FAIL (exit 1).
# Prints one line per case: scenario, defect, verdict, exit code, first failing reason. Results stay in WORK.
#
# Usage: bench/verdict-matrix.sh [--quick] [--soak-only]
#   full:        5 reruns (soaks too); soaks of 5 min at 100 req/s (leak warm-up 1 min)   ~75 min
#   --quick:     1 rerun;  soaks of 60 s at 100 req/s (leak warm-up 15 s)                   ~10 min, a smoke check
#   --soak-only: only the correct soak's reruns (no behaviour scenarios, no defects)      ~28 min
# SOAK_RERUNS=N runs the correct soak N times instead of the rerun count; SOAK_TIME and SOAK_WARMUP (durations)
# replace the soak's length and leak warm-up; SOAK_LOAD replaces its load flags (default `--rate 100`);
# SOAK_SCENARIO=file runs that scenario as the soak (e.g. a closed-model copy of soak.toml with SOAK_LOAD=-u 4,
# whose rate follows the CPU the proxy gets, so a busy machine slows it down instead of piling requests up).
# PROXY_APP=path starts that script with the example's arguments instead of examples/fastapi-proxy/app.py (e.g. a
# wrapper that imports the example and samples its memory).
# HARNESS=path MOCK_BIN=path use those builds instead of building release ones.
# Needs python3 with the example's requirements (python3 -m pip install -r examples/fastapi-proxy/requirements.txt).
#
# Each case gets a fresh mock and proxy. The mock is configured from the scenario's [upstream] table (keys,
# latency, seed) as its own configuration; the harness sets its rules, latency and Retry-After grace for each run.
# Behaviour scenarios are shortened with -t exactly as the e2e test and the catalogue test shorten them. The soak
# runs scenarios/soak.toml with a leak warm-up (--warmup) that fits the shorter run, with the catalogue's p99/drift
# overrides: here the soak is about leaks, not
# about a Python proxy's tail latency on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."

RERUNS=5 DEFAULT_SOAK_TIME=5m DEFAULT_SOAK_WARMUP=1m SOAK_ONLY=false
for arg in "$@"; do
  case "$arg" in
    --quick) RERUNS=1 DEFAULT_SOAK_TIME=60s DEFAULT_SOAK_WARMUP=15s ;;
    --soak-only) SOAK_ONLY=true ;;
    *) echo "usage: $0 [--quick] [--soak-only]" >&2; exit 2 ;;
  esac
done
SOAK_TIME=${SOAK_TIME:-$DEFAULT_SOAK_TIME} SOAK_WARMUP=${SOAK_WARMUP:-$DEFAULT_SOAK_WARMUP}
PROXY_APP=${PROXY_APP:-examples/fastapi-proxy/app.py}

python3 -c "import fastapi, uvicorn, httpx" 2>/dev/null || {
  echo "needs the example's requirements: python3 -m pip install -r examples/fastapi-proxy/requirements.txt" >&2
  exit 2
}
# HARNESS and MOCK_BIN may name other builds of the two programs (e.g. debug ones); otherwise release builds.
if [[ -z ${HARNESS:-} || -z ${MOCK_BIN:-} ]]; then
  cargo build --release -q -p harness -p mock-upstream
  HARNESS=target/release/harness MOCK_BIN=target/release/mock-upstream
fi
WORK=$(mktemp -d /tmp/verdict-matrix.XXXXXX)
TOKEN=verdict-matrix-admin
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

declare -A RUN_TIME=([key_rate_limited]=22s [all_keys_exhausted]=42s [stream_interrupted]=18s [key_revoked]=25s
                     [upstream_outage]=32s [burst_then_recover]=40s)

# The scenario's [upstream] table as a mock config (default keys key1..key3, the scenario's seed, the admin
# token) to $2, and the mock's keys as a reference-proxy keys file to $3.
write_mock_and_keys() {
  python3 - "$1" "$2" "$3" "$TOKEN" <<'EOF'
import json, sys, tomllib
scenario, mock_path, keys_path, token = sys.argv[1:]
doc = tomllib.load(open(scenario, "rb"))
mock = doc.get("upstream", {})
mock.setdefault("keys", [{"id": f"key{i}", "secret": f"sk-harness-mock-{i}"} for i in (1, 2, 3)])
mock.setdefault("seed", doc.get("seed", 0))
mock["admin"] = {"token": token}
def inline(v):  # every value as an inline TOML value: enough for a mock config
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {inline(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(inline(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v) if isinstance(v, str) else repr(v)
open(mock_path, "w").write("".join(f"{k} = {inline(v)}\n" for k, v in mock.items()))
keys = [{f: k[f] for f in ("id", "secret", "provider") if f in k} for k in mock["keys"]]
open(keys_path, "w").write("".join(f"[[keys]]\n" + "".join(f"{f} = {json.dumps(x)}\n" for f, x in k.items())
                                   for k in keys))
EOF
}

# Starts "$@" with stdout to $1.out and stderr to $1.log; sets URL from its `listening on URL` line.
start_listening() {
  local name=$1; shift
  "$@" >"$name.out" 2>"$name.log" &
  PIDS+=($!)
  for _ in $(seq 300); do    # Python's imports take seconds on a busy machine
    URL=$(sed -n 's/^listening on //p' "$name.out" 2>/dev/null || true)   # the file may not exist yet
    [[ -n $URL ]] && return
    sleep 0.1
  done
  echo "$* did not start; log: $name.log" >&2
  return 1
}

stop_all() {  # SIGTERM, and SIGKILL for whatever has not exited 15 s later
  kill "${PIDS[@]}" 2>/dev/null || true
  (sleep 15; kill -9 "${PIDS[@]}" 2>/dev/null) &
  local watchdog=$!
  wait "${PIDS[@]}" 2>/dev/null || true
  kill "$watchdog" 2>/dev/null || true
  PIDS=()
}

# run_case LABEL SCENARIO_FILE DEFECT(-: none) HARNESS_ARGS...: one matrix line.
run_case() {
  local label=$1 scenario=$2 defect=$3; shift 3
  local dir="$WORK/$label"
  mkdir -p "$dir"
  write_mock_and_keys "$scenario" "$dir/mock.toml" "$dir/keys.toml"
  local mock proxy code=0
  start_listening "$dir/mock" "$MOCK_BIN" --listen 127.0.0.1:0 --config "$dir/mock.toml"
  mock=$URL
  local defect_args=()
  [[ $defect != - ]] && defect_args=(--defect "$defect")
  start_listening "$dir/proxy" python3 "$PROXY_APP" --port 0 --upstream "$mock" \
    --keys-file "$dir/keys.toml" "${defect_args[@]}"
  proxy=$URL
  local proxy_pid=${PIDS[-1]}
  for _ in $(seq 300); do curl -sf "$proxy/health" >/dev/null && break; sleep 0.1; done
  "$HARNESS" run "$scenario" --target "$proxy" --proxy-pid "$proxy_pid" --upstream "$mock" \
    --upstream-admin-token "$TOKEN" --out "$dir/results" --quiet --no-report "$@" >"$dir/harness.log" 2>&1 || code=$?
  stop_all
  python3 - "$dir/results/summary.json" "$(basename "$scenario" .toml)" "$defect" "$code" <<'EOF'
import json, sys
path, scenario, defect, code = sys.argv[1:]
try:
    summary = json.load(open(path))
    verdict, reasons = summary["verdict"], summary.get("verdict_reasons") or ["-"]
except (OSError, ValueError, KeyError) as error:
    verdict, reasons = "NO-SUMMARY", [str(error)]
print(f"{scenario:<20} {defect:<21} {verdict:<13} exit {code:<3} {reasons[0]}", flush=True)
EOF
}

SOAK=${SOAK_SCENARIO:-scenarios/soak.toml}
read -ra SOAK_LOAD_ARGS <<<"${SOAK_LOAD:---rate 100}"
SOAK_ARGS=(-t "$SOAK_TIME" --warmup "$SOAK_WARMUP" "${SOAK_LOAD_ARGS[@]}" --p99 2s --max-p95-drift-ratio 20 --max-p95-drift-ms 1000)

behaviour_case() {  # LABEL SCENARIO DEFECT
  run_case "$1" "scenarios/$2.toml" "$3" -t "${RUN_TIME[$2]}"
}

SOAK_RERUNS=${SOAK_RERUNS:-$RERUNS}
echo "verdict matrix: reruns $RERUNS (soak $SOAK_RERUNS), soak $SOAK_TIME (warm-up $SOAK_WARMUP); results in $WORK"
printf '%-20s %-21s %-13s %-8s %s\n' scenario defect verdict exit "first failing reason"
if ! $SOAK_ONLY; then
  for scenario in key_rate_limited all_keys_exhausted stream_interrupted; do
    for i in $(seq "$RERUNS"); do behaviour_case "correct-$scenario-$i" "$scenario" -; done
  done
fi
for i in $(seq "$SOAK_RERUNS"); do run_case "correct-soak-$i" "$SOAK" - "${SOAK_ARGS[@]}"; done
$SOAK_ONLY && exit 0

behaviour_case ignores_retry_after-krl key_rate_limited ignores_retry_after
behaviour_case ignores_retry_after-ake all_keys_exhausted ignores_retry_after
behaviour_case first_key_only upstream_outage first_key_only
behaviour_case no_failover-revoked key_revoked no_failover
behaviour_case no_failover-krl key_rate_limited no_failover
behaviour_case buffers_streams stream_interrupted buffers_streams
behaviour_case holds_when_exhausted all_keys_exhausted holds_when_exhausted
run_case keeps_memory "$SOAK" keeps_memory "${SOAK_ARGS[@]}"
run_case leaks_sockets "$SOAK" leaks_sockets "${SOAK_ARGS[@]}"
