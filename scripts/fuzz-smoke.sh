#!/usr/bin/env bash
# Runs every libFuzzer target in build-fuzz/ for N seconds (default 15),
# seeded with its corpus; any crash, leak or sanitizer report fails.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
shopt -s nullglob
targets=(build-fuzz/fuzz/fuzz_*)
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz-smoke: no fuzz targets built" >&2
    exit 1
fi
for t in "${targets[@]}"; do
    name=$(basename "$t"); name=${name#fuzz_}
    seed=fuzz/corpus/$name
    work=$(mktemp -d)
    [ -d "$seed" ] && cp -r "$seed/." "$work/"
    echo "fuzz-smoke: $name for ${secs}s"
    "$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
         -print_final_stats=1 "$work" 2>"$work.log" || {
        tail -50 "$work.log" >&2
        echo "fuzz-smoke: $name FAILED (log above)" >&2
        exit 1
    }
    grep -E 'stat::number_of_executed_units' "$work.log" || true
    rm -rf "$work" "$work.log"
done
echo "fuzz-smoke: ${#targets[@]} targets ran clean"
