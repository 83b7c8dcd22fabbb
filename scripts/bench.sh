#!/usr/bin/env bash
# Builds and runs every benchmark in bench/; each prints its own baseline.
# bench_e2e starts the real embedded platform in a temporary folder (or
# reuses LUNAL_BENCH_DEV_DIR's) and measures secure requests end to end;
# LUNAL_BENCH_SECONDS sets its seconds per measurement (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh normal
# As root the KMS's HSM user must reach the built binaries (bench_e2e).
if [ "$(id -u)" = 0 ]; then
    # shellcheck source=scripts/reach.sh
    . scripts/reach.sh
    luna_make_reachable "$(pwd)"
fi
shopt -s nullglob
for b in build/bench/bench_*; do
    echo "== $(basename "$b")"
    "$b"
done
