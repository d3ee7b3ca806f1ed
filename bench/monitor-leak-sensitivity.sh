#!/usr/bin/env bash
# Offline sensitivity study of the default leak verdicts over synthetic series with realistic noise
# (bench/bench-tools/src/bin/leak_sensitivity.rs): detection rate by leak rate in a 10-minute run, false positives over
# thousands of clean seeds (plateau, harsh wander, GC sawtooth), 90-second CI runs, and slope-CI coverage.
#
#   bench/monitor-leak-sensitivity.sh
#
# The counterpart on real processes (a deliberately leaking proxy fixture driven by `harness run`) is
# bench/leak-sensitivity-real.sh; the pass/fail version is tests/e2e/leak_verdicts.rs. Not run by CI.
# Current figures: bench/RESULTS.md#monitor-leak-sensitivity
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo run --release -q -p bench-tools --bin leak_sensitivity
