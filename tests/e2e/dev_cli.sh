#!/usr/bin/env bash
# e2e.dev_cli: `lunal dev` as a user drives it, in a clean folder: usage
# errors exit 2; status/down on an absent platform; `dev up` either brings
# the platform up or names the step that failed; either way the state
# folder is private (0700, CA passphrase 0600) and after `dev down` not one
# process started from it is left.
set -u
lunal=$1
tmp=$(mktemp -d /tmp/luna-dev-cli-XXXXXX)
state=$tmp/state
fail=0
cleanup() {
    "$lunal" dev down --dir "$state" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
check() { # check <description> <expected> <actual>
    if [ "$2" != "$3" ]; then
        echo "FAIL: $1: expected $2, got $3" >&2
        fail=1
    else
        echo "ok: $1"
    fi
}
rc_of() { "$@" >/dev/null 2>&1; echo $?; }

check "dev without a command" 2 "$(rc_of "$lunal" dev)"
check "dev with an unknown command" 2 "$(rc_of "$lunal" dev explode)"
check "dev up with an unknown option" 2 "$(rc_of "$lunal" dev up --dir "$state" --bogus)"
check "dev up with a privileged port base" 2 "$(rc_of "$lunal" dev up --dir "$state" --port-base 80)"
check "dev up with a non-numeric port base" 2 "$(rc_of "$lunal" dev up --dir "$state" --port-base 9x)"
check "dev status --json only for status" 2 "$(rc_of "$lunal" dev down --dir "$state" --json)"
check "dev up --help" 0 "$(rc_of "$lunal" dev up --help)"
check "dev status of nothing" 1 "$(rc_of "$lunal" dev status --dir "$state")"
check "dev down of nothing" 0 "$(rc_of "$lunal" dev down --dir "$state")"
[ -e "$state" ] && { echo "FAIL: status/down created the state folder" >&2; fail=1; }

base=$((20000 + RANDOM % 20000))
out=$("$lunal" dev up --dir "$state" --port-base "$base" 2>&1)
up_rc=$?
echo "$out" | sed 's/^/  dev up: /'
if [ "$up_rc" = 0 ]; then
    echo "ok: dev up brought the platform up"
    check "dev status after up" 0 "$(rc_of "$lunal" dev status --dir "$state")"
    "$lunal" dev status --dir "$state" --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
names = {r["component"] for r in rows}
need = {"iam", "audit", "attestation", "kms", "tee-host", "gateway"}
assert need <= names, names
assert all(r["health"] == "ready" and r["pid"] > 1 for r in rows), rows
' || { echo "FAIL: dev status --json" >&2; fail=1; }
    # A second up reuses the running platform and the state.
    pid_before=$(cat "$state/run/iam.pid")
    check "second dev up" 0 "$(rc_of "$lunal" dev up --dir "$state")"
    check "second dev up reused iam" "$pid_before" "$(cat "$state/run/iam.pid")"
else
    check "failed dev up exits 1" 1 "$up_rc"
    if ! echo "$out" | grep -q 'FAILED at step "'; then
        echo "FAIL: a failed dev up does not name its step" >&2
        fail=1
    fi
fi
# As root the folder gets o+x (search only) so the KMS's HSM user reaches hsm/.
want_mode=700
[ "$(id -u)" = 0 ] && [ -d "$state/hsm" ] && want_mode=711
check "state folder mode" "$want_mode" "$(stat -c %a "$state")"
check "CA passphrase mode" 600 "$(stat -c %a "$state/ca.pass")"
check "TEE CA passphrase mode" 600 "$(stat -c %a "$state/tee-ca.pass")"
check "CA key mode" 600 "$(stat -c %a "$state/ca/ca.key")"
if grep -rqs "$(head -c 64 "$state/ca.pass")" "$state/logs"; then
    echo "FAIL: the CA passphrase appears in a log" >&2
    fail=1
fi

check "dev down" 0 "$(rc_of "$lunal" dev down --dir "$state")"
left=$(ps -eo pid=,args= | grep -F "$state/" | grep -v grep || true)
if [ -n "$left" ]; then
    echo "FAIL: processes left after dev down:" >&2
    echo "$left" >&2
    fail=1
else
    echo "ok: no process left after dev down"
fi
ls "$state"/run/*.pid >/dev/null 2>&1 && { echo "FAIL: pidfiles left" >&2; fail=1; }
exit $fail
