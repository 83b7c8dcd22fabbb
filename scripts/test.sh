#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs every test.
#   1. install Debian packages (scripts/install-deps.sh) and the pinned npm
#      packages of the interoperability tests (tests/interop)
#   2. normal build, all CTest labels
#   3. ASan+UBSan build: unit, vectors, fuzz (corpus replay), fault
#   4. static analysis (scripts/lint.sh) and the layering check
#   5. every libFuzzer target for FUZZ_SECONDS (default 15) each
# Exit status is non-zero when any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==== %s ====\n' "$*"; }

# shellcheck source=scripts/reach.sh
. scripts/reach.sh
if [ "$(id -u)" = 0 ]; then
    luna_make_reachable "$(pwd)"
fi

step "dependencies"
if [ "$(id -u)" = 0 ]; then
    bash scripts/install-deps.sh
else
    echo "not root: assuming dependencies are installed (scripts/install-deps.sh)"
fi
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)

if [ ! -d "${LUNA_VECTORS_DIR:-$root/../shared/vectors}" ]; then
    echo "!!! shared test vectors not found: the vector suites will report SKIPPED" >&2
fi

step "normal build"
bash scripts/build.sh normal
step "tests (normal build)"
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 600)

step "ASan+UBSan build"
bash scripts/build.sh asan
step "tests (sanitizer build: unit, vectors, fuzz, fault)"
(cd build-asan && ctest --output-on-failure -j "$(nproc)" -L 'unit|vectors|fuzz|fault' --timeout 900)

step "static analysis"
bash scripts/lint.sh

step "fuzz smoke"
bash scripts/build.sh fuzz
bash scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-15}"

step "all test steps passed"
