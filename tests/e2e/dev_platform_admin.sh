#!/usr/bin/env bash
# e2e.dev_platform_admin: the administrative half of the README checks on
# the embedded platform: `attestation verify --all` covers both TEEs, and
# a quarantined TEE makes `attestation verify --deployment demo` exit 1
# with the reason.  Registered only with -DLUNA_DEV_PLATFORM_ADMIN_E2E=ON:
# the gateway does not route GET /v1/tees nor POST /v1/tees/{id}/quarantine
# yet (docs/operations.md, "Status").  Admin calls use the bootstrap
# administrator's key (client/admin_api_key), never the client's.
set -u
src=$1 build=$2
tmp=$(mktemp -d /tmp/luna-dev-admin-e2e-XXXXXX)
chmod 711 "$tmp" # as root, the KMS's HSM user (lunal-hsm) passes through to hsm/
export LUNAL_DEV_DIR=$tmp/state LUNAL_BUILD_DIR=$build LUNAL_RUN_SKIP_SETUP=1
export LUNAL_DEV_PORT_BASE=$((20000 + RANDOM % 20000))
lunal=$build/cli/lunal
fail=0
cleanup() {
    "$lunal" dev down >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
bad() { echo "FAIL: $*" >&2; fail=1; }

bash "$src/scripts/run.sh" >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; bad "scripts/run.sh failed"; exit 1; }
export LUNAL_CONFIG=$LUNAL_DEV_DIR/client/client.json

# Batch over both TEEs.
batch=$("$lunal" attestation verify --all 2>/dev/null)
brc=$?
[ "$brc" = 0 ] || bad "verify --all exit $brc"
for t in tee-1 tee-2; do
    echo "$batch" | grep -q "$t" || bad "batch verify does not show $t"
done

admin() { LUNAL_API_KEY_FILE=$LUNAL_DEV_DIR/client/admin_api_key "$lunal" "$@"; }
# A quarantined TEE: verify exits 1 and says why.
admin tee quarantine --id tee-1 --reason "e2e test" >/dev/null 2>&1 || bad "tee quarantine failed"
admin tee quarantine --id tee-2 --reason "e2e test" >/dev/null 2>&1 || bad "tee quarantine failed"
qout=$("$lunal" attestation verify --deployment demo 2>&1)
qrc=$?
[ "$qrc" = 1 ] || bad "verify of a quarantined deployment exited $qrc, not 1"
echo "$qout" | grep -qi 'quarantin' || bad "verify does not say the TEE is quarantined"

exit $fail
