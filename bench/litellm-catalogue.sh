#!/usr/bin/env bash
# LiteLLM through the failure catalogue: how the harness judges a real third-party key router.
#
# Installs LiteLLM (pinned) into a venv outside the repository if it is missing, builds the harness in release,
# and runs the scenarios tagged `failure` with examples/litellm/profile.toml (the harness starts LiteLLM in front
# of its in-process mock for every scenario). Prints each scenario's verdict and reasons from the suite's results.
#
# Usage: bench/litellm-catalogue.sh [RUN_TIME]          (default 30s per scenario; ~6 scenarios × (start-up + run))
#   VENV=/tmp/litellm-venv        where LiteLLM is (or gets) installed
#   LITELLM_MASTER_KEY=...        the proxy's master key (default sk-harness-litellm)
#   OUT=DIR                       the suite's results directory (default results/litellm-suite-<UTC timestamp>)
# Not run by CI. LiteLLM takes 10-100 s to start on a busy 2-core box; the profile waits up to 240 s.
set -euo pipefail
cd "$(dirname "$0")/.."

LITELLM_VERSION=1.106.12
RUN_TIME=${1:-30s}
VENV=${VENV:-/tmp/litellm-venv}
export LITELLM_MASTER_KEY=${LITELLM_MASTER_KEY:-sk-harness-litellm}
export LITELLM_BIN="$VENV/bin/litellm"
OUT=${OUT:-results/litellm-suite-$(date -u +%Y%m%dT%H%M%SZ)}

installed=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null || true)
if [[ $installed != "$LITELLM_VERSION" || ! -x $LITELLM_BIN ]]; then
  echo "installing litellm[proxy]==$LITELLM_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"
fi
cargo build --release -q -p harness

echo "litellm $LITELLM_VERSION, run time $RUN_TIME, load average $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
mkdir -p "$(dirname "$OUT")"
target/release/harness run scenarios/ --proxy examples/litellm/profile.toml -t "$RUN_TIME" \
  --scenario-tags failure --out "$OUT" >"$OUT.log" 2>&1 || status=$?
echo "suite exit code $status (log: $OUT.log)"

# Per scenario: verdict and exit code; figures (req/s, latency, client errors, fairness, key agreement on
# x-litellm-model-id, Retry-After violations/races, masking per window); then its reasons.
python3 - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
suite = json.loads((out / "suite.json").read_text())
for run in suite["runs"]:
    print(f'{run["scenario"]:<20} {run["verdict"]:<13} exit {run["exit_code"]}')
    path = out / run["dir"] / "summary.json"
    if not path.exists():
        continue
    summary = json.loads(path.read_text())
    agg = summary["aggregate"]
    pct = agg["latency"]["percentiles"]
    no_header = sum(e["occurrences"] for e in summary["errors"] if "without required header" in e["message"])
    agreement = summary["engine"].get("behaviour", {}).get("measurements", {}).get("key_report") or {}
    m = summary["engine"].get("behaviour", {}).get("measurements", {})
    ra = m.get("retry_after") or {}
    masking = ", ".join(
        f'{w["window"]}: {w["masking"]:.2f}' if w.get("masking") is not None else f'{w["window"]}: n/a'
        for w in m.get("masking") or []
    )
    print(f'    {agg["requests_per_sec"]:.1f} req/s, p50/p95/p99 {pct["p50"]:.0f}/{pct["p95"]:.0f}/{pct["p99"]:.0f} ms, '
          f'failures {agg["failures"]} of {agg["requests"]} ({no_header} for a missing key header)')
    print(f'    fairness {m.get("distribution", {}).get("fairness", float("nan")):.3f}, '
          f'key agreement {agreement.get("agreement", "n/a")}, Retry-After violations {ra.get("violations", "n/a")} (races {ra.get("races", "n/a")}), masking {masking or "n/a"}')
    for reason in summary.get("verdict_reasons") or []:
        print(f"    - {reason}")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
