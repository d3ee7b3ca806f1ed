#!/usr/bin/env bash
# Sensitivity and false positives of the leak verdicts on REAL processes: `harness run` drives
# the leaky fixture proxy (tests/src/bin/leaky-proxy.rs: the reference proxy plus a middleware that really leaks
# LEAK_BYTES_PER_REQUEST bytes a request into never-freed, written memory) at a steady open-model rate, with the
# in-process mock as upstream and `judge_leaks = true`; one run per leak rate plus CLEAN_RUNS runs with no leak.
# Prints the per-run verdicts (rss, rss_anon), the Theil–Sen slope with its CI, the Mann–Kendall p-value and the
# final-quarter slope, then the smallest rate detected and the false-LEAK count, each next to the goal
# (>= 256 KiB/min detected in a 10-minute run; zero false LEAK on clean runs).
#
#   bench/leak-sensitivity-real.sh
#
# Knobs (environment):
#   DURATION=10m      length of each run (harness run_time, warm-up included)
#   WARMUP=2m         warm-up excluded from the verdicts
#   RATE=50           requests/s of each run (open model)
#   RATES="0 32 64 128 192 256 384 512"   leak rates to try, KiB/min (bytes/request = KiB/min*1024/(RATE*60))
#   CLEAN_RUNS=10     runs with no leak (distinct seeds)
#   SEED=0            offsets every run's seed: repeat the study with SEED=1, 2, ... for fresh samples
#   PARALLEL=4        runs at once (each run is a harness + its proxy; ~50 req/s is light)
#   PIN=1             pin run i (harness and the proxy it spawns) to CPU i mod nproc with taskset; 0 = no pinning
#   OUT=DIR           where scenarios and results go (default: a new /tmp/leak-sensitivity-real.XXXXXX)
#   SKIP_BUILD=1      use the binaries already in $CARGO_TARGET_DIR/release
#
# Wall time: ceil((#RATES + CLEAN_RUNS) / PARALLEL) x DURATION (about 50 min with the defaults). Not run by CI.
# The numbers include whatever else the machine is doing (other builds, other runs): that noise is what a shared
# CI runner gives a user's nightly job too, so it is kept, and the machine load is printed with the results.
# Current figures: bench/RESULTS.md#leak-sensitivity-real
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-10m}
WARMUP=${WARMUP:-2m}
RATE=${RATE:-50}
RATES=${RATES:-"0 32 64 128 192 256 384 512"}
CLEAN_RUNS=${CLEAN_RUNS:-10}
SEED=${SEED:-0}
PARALLEL=${PARALLEL:-4}
PIN=${PIN:-1}
OUT=${OUT:-$(mktemp -d /tmp/leak-sensitivity-real.XXXXXX)}
mkdir -p "$OUT/bin"

seconds() { # 90s, 2m, 1h, 1m30s -> seconds
  local text=$1 total=0 n unit
  while [[ $text =~ ^([0-9]+)([smh]?)(.*)$ ]]; do
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]:-s} text=${BASH_REMATCH[3]}
    case $unit in s) total=$((total + n)) ;; m) total=$((total + 60 * n)) ;; h) total=$((total + 3600 * n)) ;; esac
  done
  [[ -z $text ]] || { echo "cannot parse duration '$1' (use e.g. 90s, 10m, 1h)" >&2; exit 2; }
  echo "$total"
}
RUN_SECS=$(seconds "$DURATION")
seconds "$WARMUP" >/dev/null

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "building release binaries (harness, leaky-proxy)..." >&2
  cargo build --release -q -p harness -p tests --bins
fi
# Private copies: a rebuild in the target dir during the hour-long study must not mix binaries between runs.
cp "$CARGO_TARGET_DIR/release/harness" "$CARGO_TARGET_DIR/release/leaky-proxy" "$OUT/bin/"

# scenario NAME SEED BYTES_PER_REQUEST -> $OUT/NAME/scenario.toml
scenario() {
  mkdir -p "$OUT/$1"
  cat >"$OUT/$1/scenario.toml" <<TOML
name = "$1"
description = "leak sensitivity on real processes: $3 bytes leaked per request at $RATE req/s"
seed = $2

[load]
model = "open"
rate = $RATE
run_time = "$DURATION"
timeout = "5s"

[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
body = { model = "gpt-4", messages = [{ role = "user", content = "leak sensitivity probe" }], max_tokens = 16 }

[proxy]
command = ["$OUT/bin/leaky-proxy", "--listen", "127.0.0.1:{port}", "--upstream", "{upstream_url}", "--keys-file", "{keys_file}"]
env = { LEAK_BYTES_PER_REQUEST = "$3" }

[monitor]
interval = "1s"
warmup = "$WARMUP"
judge_leaks = true
TOML
}

RUNS=()
for kib in $RATES; do
  name=leak-$kib
  scenario "$name" "$((7 + 1000 * SEED))" "$(( (kib * 1024 + RATE * 30) / (RATE * 60) ))"
  echo "$kib" >"$OUT/$name/kib_per_min"
  RUNS+=("$name")
done
for i in $(seq 1 "$CLEAN_RUNS"); do
  name=clean-$i
  scenario "$name" "$((100 + 1000 * SEED + i))" 0
  echo 0 >"$OUT/$name/kib_per_min"
  RUNS+=("$name")
done

# one_run NAME INDEX: bounded by the run time plus a guard (startup, result writing), then killed.
one_run() {
  local dir=$OUT/$1 pin=()
  [[ $PIN == 1 ]] && pin=(taskset -c "$(( $2 % $(nproc) ))")
  local code=0
  timeout --kill-after=30 "$((RUN_SECS + 120))" "${pin[@]}" "$OUT/bin/harness" run "$dir/scenario.toml" \
    --out "$dir/results" -q >"$dir/harness.out" 2>&1 || code=$?
  echo "$code" >"$dir/exit_code"
}

echo "leak sensitivity on real processes: ${#RUNS[@]} runs of $DURATION (warm-up $WARMUP) at $RATE req/s," \
  "$PARALLEL at a time, results in $OUT" >&2
echo "started $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >"$OUT/machine.txt"
index=0
for name in "${RUNS[@]}"; do
  while (( $(jobs -rp | wc -l) >= PARALLEL )); do wait -n || true; done
  one_run "$name" "$index" &
  index=$((index + 1))
done
wait
echo "finished $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

cat "$OUT/machine.txt"
python3 "$ROOT/bench/leak-sensitivity/report.py" "$OUT" "$DURATION" "$RATE"
