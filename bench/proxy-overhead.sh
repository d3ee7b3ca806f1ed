#!/usr/bin/env bash
# What reference-proxy costs, side by side with talking to mock-upstream directly — one command:
#
#   bash bench/proxy-overhead.sh                 # ~3 min: throughput, latency at 1000 req/s, 60 s RSS run
#   DURATION=600 bash bench/proxy-overhead.sh    # with a 10-minute RSS run
#   BASELINE=/tmp/proxy-baseline bash bench/proxy-overhead.sh   # also A/B an older reference-proxy binary
#
# Layout on a 2-core box: mock-upstream (zero latency) pinned to core 0, reference-proxy pinned to core 1, the
# load clients unpinned. Same client, same rate for "direct" and "through proxy", in one run.
#   1. throughput: wrk, closed loop (THREADS x CONNS for TPUT_SECS s) → req/s direct vs proxy, ratio (goal >= 0.4);
#      ROUNDS rounds interleaved (direct, proxy[, baseline]) and medians reported, because the box is shared
#   2. latency: fixed-rate open-loop client (bench-tools fixed_rate, wrk2-style: latency measured from the
#      scheduled send time) at RATE req/s to each target for LAT_SECS s, direct and proxy[, baseline]
#      interleaved request by request in one client run (so load from other processes hits both alike)
#      → p50/p99 direct vs proxy, added p50 (goal < 1 ms); LAT_ROUNDS such runs, medians reported
#   3. memory: fixed-rate client at RATE req/s through the proxy for DURATION s; proxy RSS sampled every 5 s;
#      growth after the first WARMUP s (goal: within ±5 MB); open fds sampled alongside, because a latency
#      stall on a busy box briefly multiplies connections, which shows as a one-time step, not as growth
# Loopback only; every phase is bounded in time. Not run by CI. Current figures: bench/RESULTS.md#proxy-overhead
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-30}
TPUT_SECS=${TPUT_SECS:-10}
ROUNDS=${ROUNDS:-3}
BASELINE=${BASELINE:-}
LAT_SECS=${LAT_SECS:-10}
LAT_ROUNDS=${LAT_ROUNDS:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
SOAK_MAX_IN_FLIGHT=${SOAK_MAX_IN_FLIGHT:-256}
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

if ! command -v wrk >/dev/null; then
  echo "== installing wrk"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

echo "== building (release)"
cargo build --release -q -p mock-upstream -p reference-proxy --bins -p bench-tools --bin fixed_rate

# Starts "$@" in the background, waits for its `listening on http://ADDR` line, prints ADDR.
start_server() {
  local log=$1; shift
  "$@" >"$log.out" 2>"$log.err" &
  echo $! >"$log.pid"  # taskset execs the server, so this is the server's pid
  for _ in $(seq 100); do
    if grep -q '^listening on http://' "$log.out" 2>/dev/null; then
      head -1 "$log.out" | sed 's#^listening on http://##'
      return
    fi
    sleep 0.1
  done
  echo "server did not start: $*" >&2; cat "$log.err" >&2; kill "$(cat "$log.pid")" 2>/dev/null; exit 1
}

MOCK=$(start_server "$WORK/mock" taskset -c 0 "$BIN/mock-upstream" --listen 127.0.0.1:0)
PIDS+=("$(cat "$WORK/mock.pid")")
start_proxy() {  # $1 = name, $2 = binary; prints the address, pid in $WORK/$1.pid
  start_server "$WORK/$1" taskset -c 1 "$2" --listen 127.0.0.1:0 \
    --upstream "http://$MOCK" --key k1=sk-bench-1 --key k2=sk-bench-2 --key k3=sk-bench-3
}
PROXY=$(start_proxy proxy "$BIN/reference-proxy")
PIDS+=("$(cat "$WORK/proxy.pid")")
PROXY_PID=$(cat "$WORK/proxy.pid")
export RUST_LOG=warn
PATH_=/v1/chat/completions
BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}'
echo "mock-upstream $MOCK (core 0) · reference-proxy $PROXY (core 1, pid $PROXY_PID) · clients unpinned"

cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-client"
LUA

wrk_rps() { wrk -t"$THREADS" -c"$CONNS" -d"${TPUT_SECS}s" -s "$WORK/post.lua" "http://$1$PATH_" | awk '/Requests\/sec/ {print $2}'; }
fixed_rate() { "$BIN/fixed_rate" --url "http://$1$PATH_" --rate "$RATE" --duration "$2s" --body "$BODY" "${@:3}"; }
# One interleaved latency run over the addresses "$@": one `target=<i> ...` line each.
fixed_rate_each() {
  local urls=()
  for addr in "$@"; do urls+=(--url "http://$addr$PATH_"); done
  "$BIN/fixed_rate" "${urls[@]}" --rate "$RATE" --duration "${LAT_SECS}s" --body "$BODY"
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PROXY_PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, in clock ticks
open_fds() { ls "/proc/$PROXY_PID/fd" | wc -l; }

echo "== warm-up"
fixed_rate "$MOCK" 2 >/dev/null; fixed_rate "$PROXY" 2 >/dev/null

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# One wrk run through the proxy at $1 (pid $2): prints "req/s proxy-us-per-request mock-us-per-request".
proxied_run() {
  local p0 m0 p1 m1 rps
  p0=$(cpu_ticks "$2"); m0=$(cpu_ticks "$MOCK_PID")
  rps=$(wrk_rps "$1")
  p1=$(cpu_ticks "$2"); m1=$(cpu_ticks "$MOCK_PID")
  awk -v r="$rps" -v s="$TPUT_SECS" -v p=$((p1 - p0)) -v m=$((m1 - m0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { n = r * s; printf "%s %.1f %.1f\n", r, p * 1e6 / hz / n, m * 1e6 / hz / n }'
}
echo "== 1. throughput (wrk -t$THREADS -c$CONNS, ${TPUT_SECS}s each, $ROUNDS interleaved rounds)"
MOCK_PID=$(cat "$WORK/mock.pid")
if [[ -n $BASELINE ]]; then
  BASE=$(start_proxy baseline "$BASELINE"); BASE_PID=$(cat "$WORK/baseline.pid"); PIDS+=("$BASE_PID")
  wrk -t"$THREADS" -c"$CONNS" -d2s -s "$WORK/post.lua" "http://$BASE$PATH_" >/dev/null
fi
wrk -t"$THREADS" -c"$CONNS" -d2s -s "$WORK/post.lua" "http://$PROXY$PATH_" >/dev/null
D_ALL=(); P_ALL=(); PC_ALL=(); MC_ALL=(); B_ALL=(); BC_ALL=()
for ((round = 1; round <= ROUNDS; round++)); do
  D_ALL+=("$(wrk_rps "$MOCK")")
  read -r rps pc mc <<<"$(proxied_run "$PROXY" "$PROXY_PID")"; P_ALL+=("$rps"); PC_ALL+=("$pc"); MC_ALL+=("$mc")
  line="round $round: direct ${D_ALL[-1]} req/s, proxy $rps req/s ($pc us CPU/req)"
  if [[ -n $BASELINE ]]; then
    read -r rps pc mc <<<"$(proxied_run "$BASE" "$BASE_PID")"; B_ALL+=("$rps"); BC_ALL+=("$pc")
    line+=", baseline $rps req/s ($pc us CPU/req)"
  fi
  echo "   $line"
done
DIRECT_RPS=$(echo "${D_ALL[*]}" | median); PROXY_RPS=$(echo "${P_ALL[*]}" | median)
PROXY_CPU=$(echo "${PC_ALL[*]}" | median); MOCK_CPU=$(echo "${MC_ALL[*]}" | median)

echo "== 2. latency at $RATE req/s to each target, interleaved (${LAT_SECS}s each, $LAT_ROUNDS rounds)"
TARGETS=("$MOCK" "$PROXY"); [[ -n $BASELINE ]] && TARGETS+=("$BASE")
for ((round = 1; round <= LAT_ROUNDS; round++)); do
  fixed_rate_each "${TARGETS[@]}" >"$WORK/lat$round.txt"
  echo "   round $round: $(awk '{printf "%s %s %s  ", $1, $6, $8}' "$WORK/lat$round.txt")"
done
# The median over rounds of one field of one target.
lat() { cat "$WORK"/lat*.txt | grep "^target=$1 " | sed -n "s/.* $2=\([^ ]*\).*/\1/p" | median; }
[[ -n $BASELINE ]] && kill "$BASE_PID" 2>/dev/null

echo "== 3. RSS through the proxy at $RATE req/s for ${DURATION}s (sampled every 5 s)"
# The soak client keeps at most SOAK_MAX_IN_FLIGHT requests (so connections) open, like wrk2's fixed -c: at
# 1000 req/s and ~2 ms latency about 2 are in flight, so the cap only acts when a stall of the shared box has
# piled up SOAK_MAX_IN_FLIGHT requests; slots beyond it are counted as dropped in the client's line. Without a
# cap, one stall made the client open ~550 extra connections for minutes, and the proxy's RSS followed them at
# ~11 KB per open client connection (released when they closed) — connection memory, not growth.
fixed_rate "$PROXY" "$DURATION" --max-in-flight "$SOAK_MAX_IN_FLIGHT" >"$WORK/soak.txt" &
SOAK=$!
RSS_START=$(rss_kb); SAMPLES=(); FDS=()
for ((t = 5; t <= DURATION; t += 5)); do
  sleep 5
  SAMPLES+=("$t:$(rss_kb)")
  FDS+=("$t:$(open_fds)")
done
wait "$SOAK"
SOAK_LAT=$(cat "$WORK/soak.txt")

echo
echo "================ reference-proxy overhead ================"
printf '%-34s %14s %14s %10s\n' "" "direct (mock)" "via proxy" "ratio"
printf '%-34s %14s %14s %10s\n' "throughput req/s (wrk, median)" "$DIRECT_RPS" "$PROXY_RPS" \
  "$(awk -v a="$PROXY_RPS" -v b="$DIRECT_RPS" 'BEGIN {printf "%.2fx", a/b}')"
if [[ -n $BASELINE ]]; then
  B_RPS=$(echo "${B_ALL[*]}" | median)
  printf '%-34s %14s %14s %10s\n' "  baseline $(basename "$BASELINE")" "$DIRECT_RPS" "$B_RPS" \
    "$(awk -v a="$B_RPS" -v b="$DIRECT_RPS" 'BEGIN {printf "%.2fx", a/b}')"
fi
for q in p50 p90 p99; do
  d=$(lat 0 "${q}_ms"); p=$(lat 1 "${q}_ms")
  printf '%-34s %14s %14s %10s\n' "$q ms at $RATE req/s (median)" "$d" "$p" "$(awk -v a="$p" -v b="$d" 'BEGIN {printf "%+.3f", a-b}') ms"
  if [[ -n $BASELINE ]]; then
    b=$(lat 2 "${q}_ms")
    printf '%-34s %14s %14s %10s\n' "  baseline $q ms" "$d" "$b" "$(awk -v a="$b" -v b="$d" 'BEGIN {printf "%+.3f", a-b}') ms"
  fi
done
printf '%-34s %14s %14s\n' "errors / dropped at $RATE req/s" \
  "$(lat 0 errors)/$(lat 0 dropped)" "$(lat 1 errors)/$(lat 1 dropped)"
# CPU per request depends less on what else runs on the box than req/s on a shared 2-core machine.
printf '%-34s %14s %14s %10s\n' "CPU us per proxied request (median)" "$MOCK_CPU" "$PROXY_CPU" "mock|proxy"
[[ -n $BASELINE ]] && printf '%-34s %14s %14s\n' "  baseline CPU us per request" "" "$(echo "${BC_ALL[*]}" | median)"
echo
echo "goals: throughput ratio >= 0.40x; added p50 < 1 ms; RSS within ±5 MB after warm-up"
echo
echo "RSS of reference-proxy over ${DURATION}s at $RATE req/s (kB): start $RSS_START; ${SAMPLES[*]}"
awk -v warm="$WARMUP" -v samples="${SAMPLES[*]}" 'BEGIN {
  n = split(samples, s, " "); min = -1; max = 0
  for (i = 1; i <= n; i++) { split(s[i], kv, ":"); if (kv[1] + 0 < warm + 0) continue
    v = kv[2] + 0; if (min < 0 || v < min) min = v; if (v > max) max = v; if (first == "") first = v; last = v }
  if (min < 0) { print "run shorter than WARMUP: no post-warm-up samples"; exit }
  printf "after %ss warm-up: first %.1f MB, last %.1f MB, min %.1f MB, max %.1f MB, spread %.2f MB (goal <= 5 MB)\n",
    warm, first/1024, last/1024, min/1024, max/1024, (max-min)/1024 }'
echo "open fds of reference-proxy (connections; a step in RSS usually matches a burst here): ${FDS[*]}"
echo "soak client: $SOAK_LAT"
