#!/usr/bin/env bash
# softhsm_token.sh - a throwaway SoftHSM2 token for the HSM tests.
#
#   softhsm_token.sh create <dir> <token-label> <user-pin>
#
# Writes <dir>/softhsm2.conf pointing at <dir>/tokens, initializes one token
# there with that label and user PIN (SO PIN: a fixed test value), and writes
# the user PIN to <dir>/pin (mode 0600, no newline).  <dir> must exist, be
# empty and belong to the caller; the test points SOFTHSM2_CONF at the
# conf file and deletes <dir> itself.  It never touches the system token
# folder: SOFTHSM2_CONF is set for every softhsm2-util call it makes.
set -euo pipefail

if [ "$#" -ne 4 ] || [ "$1" != create ]; then
    echo "usage: $0 create <dir> <token-label> <user-pin>" >&2
    exit 2
fi
dir=$2 label=$3 pin=$4

if ! command -v softhsm2-util >/dev/null 2>&1; then
    echo "softhsm_token: FAILED: softhsm2-util not found (Debian package softhsm2, scripts/install-deps.sh)" >&2
    exit 1
fi
[ -d "$dir" ] || { echo "softhsm_token: $dir is not a directory" >&2; exit 1; }
if [ -n "$(ls -A "$dir")" ]; then
    echo "softhsm_token: $dir is not empty" >&2
    exit 1
fi

umask 077
mkdir "$dir/tokens"
cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin 87654321 >/dev/null
printf '%s' "$pin" >"$dir/pin"
chmod 0600 "$dir/pin"
