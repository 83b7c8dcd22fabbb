#!/usr/bin/env bash
# Configures and builds one flavour of the tree.
#   scripts/build.sh [normal|asan|fuzz]   (default normal)
# Build folders: build/, build-asan/, build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-normal}
jobs=$(nproc 2>/dev/null || echo 2)
case "$flavour" in
  normal) dir=build; args=() ;;
  asan)   dir=build-asan; args=(-DLUNA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
  # The fuzz flavour is also the production-configuration build: no test hooks.
  fuzz)   dir=build-fuzz; args=(-DLUNA_FUZZ=ON -DLUNA_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang) ;;
  *) echo "build.sh: unknown flavour '$flavour' (normal, asan, fuzz)" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${args[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
