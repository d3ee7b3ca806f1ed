#!/usr/bin/env bash
# Monitor cost: CPU used by bench-tools monitor_watch (the sampler of `harness watch`, 1 Hz) on a realistic process tree, side by side with
# procps `top -b -d 1 -p PIDS` sampling the same PIDs at the same rate. Goal: < 0.5 % of one core.
#
#   bench/monitor-cost.sh [SECONDS=60]
#
# The tree: a Python "master" with 4 worker processes (like uvicorn/gunicorn workers), each holding 64 loopback
# TCP connections and 8 idle threads (~330 fds and ~520 sockets in total). Tools are pinned to CPU 1, the tree to
# CPU 0. CPU time is user+sys over each tool's whole life (from /usr/bin/time), startup included.
# Not run by CI. Current figures: bench/RESULTS.md#monitor-cost
set -euo pipefail
SECS=${1:-60}
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release -q -p bench-tools --bin monitor_watch
WATCH="$CARGO_TARGET_DIR/release/monitor_watch"
OUT=$(mktemp -d)
trap 'kill -- -$TREE 2>/dev/null || true; rm -rf "$OUT"' EXIT

# setsid: the tree gets its own process group so the trap can end all of it.
setsid taskset -c 0 python3 - <<'PY' &
import os, socket, threading, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1024)
addr = srv.getsockname()
def worker():
    conns = []
    for _ in range(64):
        c = socket.create_connection(addr); s, _ = srv.accept(); conns += [c, s]
    for _ in range(8):
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    time.sleep(3600)
for _ in range(4):
    if os.fork() == 0:
        worker()
time.sleep(3600)
PY
TREE=$!
sleep 3
PIDS=$(pgrep -g "$TREE" | paste -sd, -)
echo "tree: $(echo "$PIDS" | tr ',' '\n' | wc -l) processes, $(ls /proc/$TREE/fd | wc -l) fds in the master; ${SECS} s per tool"

cpu_of() { # command... → prints "user+sys seconds"
  /usr/bin/time -f "%U %S" -o "$OUT/time" "$@" >/dev/null 2>&1 || true
  tail -n 1 "$OUT/time" | awk '{printf "%.2f", $1 + $2}'
}
W=$(cpu_of taskset -c 1 "$WATCH" --pid "$TREE" --duration "${SECS}s" --out "$OUT/watch" --warmup 10s --progress-every 0s)
T=$(cpu_of taskset -c 1 timeout "$SECS" top -b -d 1 -p "$PIDS")
THREAD=$(python3 -c "import json;print('%.3f' % json.load(open('$OUT/watch/leak.json'))['sampling']['monitor_cpu_percent'])")
SAMPLES=$(($(wc -l < "$OUT/watch/resources.csv") - 1))
VERDICT=$(python3 -c "import json;print(json.load(open('$OUT/watch/leak.json'))['verdict'])")

pct() { awk -v c="$1" -v s="$SECS" 'BEGIN { printf "%.3f", 100 * c / s }'; }
printf '\n%-34s %10s %14s\n' "tool (1 Hz, same PIDs)" "CPU s" "% of one core"
printf '%-34s %10s %14s\n' "sut-monitor watch (whole process)" "$W" "$(pct "$W")"
printf '%-34s %10s %14s\n' "top -b -d 1 -p PIDS (procps)" "$T" "$(pct "$T")"
printf '%-34s %10s\n' "ratio watch / top" "$(awk -v a="$W" -v b="$T" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
echo "sampling thread alone (monitor_cpu_percent, mean of $SAMPLES samples): ${THREAD} %   verdict on the idle tree: $VERDICT"
