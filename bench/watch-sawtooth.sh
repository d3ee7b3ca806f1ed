#!/usr/bin/env bash
# Leak verdicts of `harness watch` (release build) on real processes with periodic memory: how soon each is
# decided. The script starts three small Python processes and watches each for DURATION:
#   sawtooth        20 MB allocated (1 MB a second for 20 s) and freed every 30 s, no net growth  -> goal PASS
#   leak            3 MB a minute kept for good                                                  -> goal LEAK
#   leak+sawtooth   both                                                                         -> goal LEAK
# Every process also churns small short-lived allocations (64 B - 4 KiB, a few hundred every 250 ms), like
# request handling. The sawtooth's 1 MB buffers are mmap'ed (MALLOC_MMAP_THRESHOLD_=131072), so freeing them
# gives the memory back at once: the process really has no net growth, whatever glibc's heap would do.
# Prints each watch's final verdict, the RSS reason, and when the verdict was reached: the `t=` of the first
# progress line (every 10 s, the series so far judged as if the watch ended there) from which every later line
# and the end agree with the final verdict. Goal: all three decided as expected within 10 minutes.
#
#   bench/watch-sawtooth.sh
#
# Knobs (environment):
#   DURATION=10m   length of each watch (the three run at the same time)
#   WARMUP=60s     --warmup of each watch (the default of harness watch)
#   OUT=DIR        where the watches' results go (default: a new /tmp/watch-sawtooth.XXXXXX)
#   SKIP_BUILD=1   use the harness already in $CARGO_TARGET_DIR/release
#
# Wall time: DURATION plus the build. Not run by CI. Current figures: bench/RESULTS.md#watch-sawtooth
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-10m}
WARMUP=${WARMUP:-60s}
OUT=${OUT:-$(mktemp -d /tmp/watch-sawtooth.XXXXXX)}
mkdir -p "$OUT"
command -v python3 >/dev/null || { echo "python3 is needed for the watched processes" >&2; exit 2; }

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "building the release harness..." >&2
  cargo build --release -q -p harness
fi
HARNESS=$CARGO_TARGET_DIR/release/harness

cat >"$OUT/memory_shape.py" <<'PY'
"""Memory on a schedule: CYCLE_MB allocated 1 MB at a time over the first 2/3 of every PERIOD seconds and freed
at its end; LEAK_MB_PER_MIN kept for good in 1 KiB objects; small short-lived allocations every tick."""
import os, random, time

MB = 1_000_000
CYCLE_MB = int(os.environ.get("CYCLE_MB", "20"))
PERIOD = float(os.environ.get("PERIOD", "30"))
LEAK_MB_PER_MIN = float(os.environ.get("LEAK_MB_PER_MIN", "0"))
TICK = 0.25
rng = random.Random(1)
cycle, kept = [], []
start = time.monotonic()
leaked = 0
tick = 0
while True:
    elapsed = time.monotonic() - start
    into = elapsed % PERIOD
    wanted = min(CYCLE_MB, int(into / (PERIOD * 2 / 3) * CYCLE_MB) + 1) if CYCLE_MB else 0
    if len(cycle) > wanted:  # a new cycle began: free the last one
        cycle = []
    while len(cycle) < wanted:
        cycle.append(bytearray(MB))  # zero-filled: every page touched
    while leaked < LEAK_MB_PER_MIN * MB / 60 * elapsed:
        kept.append(b"%08d" % len(kept) * 128)  # 1 KiB, written
        leaked += 1024
    scratch = [b"y" * rng.randrange(64, 4096) for _ in range(rng.randrange(50, 400))]
    del scratch
    tick += 1
    time.sleep(max(0.0, start + tick * TICK - time.monotonic()))
PY

NAMES=(sawtooth leak leak+sawtooth)
declare -A GOAL=([sawtooth]=PASS [leak]=LEAK [leak+sawtooth]=LEAK)
declare -A CYCLE=([sawtooth]=20 [leak]=0 [leak+sawtooth]=20)
declare -A LEAK=([sawtooth]=0 [leak]=3 [leak+sawtooth]=3)
declare -A PROC WATCH
cleanup() {
  for pid in "${PROC[@]}" "${WATCH[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

for name in "${NAMES[@]}"; do
  CYCLE_MB=${CYCLE[$name]} LEAK_MB_PER_MIN=${LEAK[$name]} MALLOC_MMAP_THRESHOLD_=131072 \
    python3 "$OUT/memory_shape.py" &
  PROC[$name]=$!
done
sleep 1
echo "watching ${NAMES[*]} for $DURATION (warm-up $WARMUP), results in $OUT" >&2
for name in "${NAMES[@]}"; do
  "$HARNESS" watch --pid "${PROC[$name]}" --duration "$DURATION" --warmup "$WARMUP" --progress-every 10s \
    --out "$OUT/$name" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
  WATCH[$name]=$!
done
for name in "${NAMES[@]}"; do wait "${WATCH[$name]}" || true; done
load=$(cut -d' ' -f1-3 /proc/loadavg)

# decided_at STDERR FINAL -> the t= from which every progress line says FINAL ("end" if none does)
decided_at() {
  awk -v final="$2" '
    /^t=[0-9]+s .* verdict=/ {
      t = substr($1, 3); v = $NF; sub("verdict=", "", v)
      if (v == final) { if (since == "") since = t } else since = ""
    }
    END { print (since == "" ? "end" : since) }' "$1"
}

echo
echo "| process | goal | verdict | decided at | rss |"
echo "|---|---|---|---|---|"
met=0
for name in "${NAMES[@]}"; do
  final=$(sed -n 's/^Resource verdict: \([A-Z]*\).*/\1/p' "$OUT/$name.stdout")
  rss=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["metrics"][0]["trend"]["reason"])' \
    "$OUT/$name/leak.json")
  at=$(decided_at "$OUT/$name.stderr" "$final")
  [[ $final == "${GOAL[$name]}" ]] && met=$((met + 1))
  echo "| $name | ${GOAL[$name]} | ${final:-none} | ${at} | $rss |"
done
echo
echo "goal met by $met of ${#NAMES[@]} watches (each decided as expected within $DURATION); load average at the end: $load"
