#!/usr/bin/env bash
# Builds and runs every benchmark in bench/; each prints its own baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh normal
shopt -s nullglob
for b in build/bench/bench_*; do
    echo "== $(basename "$b")"
    "$b"
done
