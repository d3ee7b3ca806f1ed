#!/usr/bin/env bash
# Offline sensitivity study of the default leak verdicts over synthetic series with realistic noise
# (sut-monitor/src/leak/sensitivity.rs): detection rate by leak rate in a 10-minute run, false positives over
# thousands of clean seeds (plateau, harsh wander, GC sawtooth), 90-second CI runs, and slope-CI coverage.
#
#   bench/monitor-leak-sensitivity.sh
#
# The end-to-end counterpart (a deliberately leaking proxy fixture driven by `harness run`) lives with the
# e2e tests. Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo test --release -q -p sut-monitor --lib sensitivity_study -- --ignored --nocapture 2>&1 | grep -v '^running\|^test \|^$'
