#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, brings the
# embedded platform up (`lunal dev up`), runs one secure request with the
# demo job through the CLI (which uses the SDK), and verifies the demo
# deployment's attestation (`lunal attestation verify --deployment demo`).
#
# Must never: skip a failed step and carry on, or print a secret (the API
# keys stay in the 0600 files of the state folder).
#
# Environment (all optional):
#   LUNAL_DEV_DIR        state folder (default ./.lunal/dev)
#   LUNAL_DEV_PORT_BASE  gateway port; the others follow (default 8443)
#   LUNAL_BUILD_DIR      build folder to use (default ./build)
#   LUNAL_RUN_SKIP_SETUP=1  do not install packages nor build (tests use it
#                        on a tree they built already)
# Exit status: 0 the request was answered and the attestation verified;
# otherwise the failing step's status (1 failure, 2 usage/connection).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${LUNAL_BUILD_DIR:-$root/build}
export LUNAL_DEV_DIR=${LUNAL_DEV_DIR:-$root/.lunal/dev}

step() { printf '\n==> %s\n' "$*"; }

# shellcheck source=scripts/reach.sh
. scripts/reach.sh
if [ "$(id -u)" = 0 ]; then
    luna_make_reachable "$(pwd)"
fi

if [ "${LUNAL_RUN_SKIP_SETUP:-0}" != 1 ]; then
    if [ "$(id -u)" = 0 ]; then
        step "installing dependencies (scripts/install-deps.sh)"
        bash scripts/install-deps.sh
    fi
    step "building (scripts/build.sh normal)"
    bash scripts/build.sh normal
fi

lunal=$build/cli/lunal
if [ ! -x "$lunal" ]; then
    echo "run.sh: $lunal was not built; see the build output above" >&2
    exit 1
fi

step "starting the platform (lunal dev up, state in $LUNAL_DEV_DIR)"
"$lunal" dev up

export LUNAL_CONFIG=$LUNAL_DEV_DIR/client/client.json
input=$LUNAL_DEV_DIR/demo/request.txt
printf 'Confidential computing keeps data private while it is processed.\n' >"$input"

step "one secure request: lunal request --job wordstats --data @$input"
"$lunal" request --job wordstats --data "@$input"

step "verifying the demo deployment: lunal attestation verify --deployment demo"
"$lunal" attestation verify --deployment demo

cat <<EOF

The platform keeps running.  Next:
  export LUNAL_CONFIG=$LUNAL_CONFIG
  $lunal dev status
  $lunal request --job sha256 --data @FILE
  $lunal dev down
EOF
