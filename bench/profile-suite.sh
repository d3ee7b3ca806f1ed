#!/usr/bin/env bash
# Profile suite: the whole failure catalogue against one proxy profile in one command — the PR smoke a user runs —
# and the same suite against the FastAPI example with a defect switched on, which must fail naming the scenarios
# that catch it.
#
# Usage: bench/profile-suite.sh [PROFILE] [DEFECT...]
#   default PROFILE: examples/fastapi-proxy/profile.toml
#   default DEFECTS: no_failover ignores_retry_after (each is a copy of the FastAPI profile with --defect NAME)
# Each suite is `harness run scenarios/ --proxy PROFILE --scenario-tags failure -t 30s`: six scenarios, about
# 3.5 minutes. Prints the suite's own summary (one line per scenario) and its exit code; results stay in WORK.
# HARNESS=path uses that build instead of building a release one.
# Needs python3 with the example's requirements for the FastAPI profiles.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${1:-examples/fastapi-proxy/profile.toml}
shift || true
DEFECTS=("$@")
if [[ ${#DEFECTS[@]} -eq 0 ]]; then DEFECTS=(no_failover ignores_retry_after); fi
if [[ -z ${HARNESS:-} ]]; then
  cargo build --release -q -p harness
  HARNESS=target/release/harness
fi
WORK=$(mktemp -d /tmp/profile-suite.XXXXXX)
echo "profile-suite $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg), results in $WORK"

suite() { # name profile
  local code=0
  "$HARNESS" run scenarios/ --proxy "$2" --scenario-tags failure -t 30s -q --out "$WORK/$1" || code=$?
  echo "== $1 ($2): exit $code"
  python3 - "$WORK/$1/suite.json" <<'PY'
import json, sys
index = json.load(open(sys.argv[1]))
for run in index["runs"]:
    reason = run["reasons"][0] if run["reasons"] else ""
    print(f"  {run['verdict']:<13} {run['scenario']:<20} {run['duration_secs']:6.1f} s  {reason[:150]}")
print(f"  suite verdict {index['verdict']} (exit {index['exit_code']})")
PY
}

suite correct "$PROFILE"
for defect in "${DEFECTS[@]}"; do
  profile="$WORK/fastapi-$defect.toml"
  sed -e "s|\"{keys_file}\"\]|\"{keys_file}\", \"--defect\", \"$defect\"]|" \
      -e "s|^cwd = \"\.\"|cwd = \"$PWD/examples/fastapi-proxy\"|" \
      -e "s|^name = .*|name = \"fastapi-$defect\"|" examples/fastapi-proxy/profile.toml > "$profile"
  grep -q -- "--defect" "$profile" || { echo "could not add --defect to the profile's command" >&2; exit 2; }
  suite "defect-$defect" "$profile"
done
