#!/usr/bin/env bash
# pg_server.sh - runs a command against a throwaway PostgreSQL cluster.
#
#   pg_server.sh <command> [args...]
#
# initdb's a cluster in a fresh private temporary folder (as an unprivileged
# user: `nobody` when run as root, since PostgreSQL refuses to run as root),
# listens only on a Unix socket inside that folder (no TCP at all; the folder
# is mode 0700, so only its owner and root can reach the socket, which is
# why trust authentication is acceptable here), waits (bounded) until it
# accepts connections, runs the command with LUNA_TEST_PG_URL set, then stops
# the server and deletes the folder on every exit path.  Missing PostgreSQL
# binaries are a FAILURE, not a skip: the PostgreSQL suite is required.
# It must never touch a cluster it did not create.
set -euo pipefail

if [ "$#" -lt 1 ]; then
    echo "usage: $0 <command> [args...]" >&2
    exit 2
fi

find_pg_bin() {
    local name=$1 d
    # Debian's postgresql package keeps the server tools off PATH.
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [ -x "$d/$name" ]; then
            echo "$d/$name"
            return 0
        fi
    done
    command -v "$name" 2>/dev/null
}

if ! INITDB=$(find_pg_bin initdb) || ! PG_CTL=$(find_pg_bin pg_ctl); then
    echo "store_pg: FAILED: PostgreSQL server binaries (initdb, pg_ctl) not found" >&2
    echo "store_pg: install them with scripts/install-deps.sh (Debian package 'postgresql')" >&2
    exit 1
fi

# Unix socket paths are limited to ~107 bytes.
base=${TMPDIR:-/tmp}
if [ "${#base}" -gt 60 ] || [ ! -d "$base" ]; then
    base=/tmp
fi
dir=$(mktemp -d "$base/luna-pg.XXXXXX")
chmod 700 "$dir"

runas=()
if [ "$(id -u)" = 0 ]; then
    if ! id -u nobody >/dev/null 2>&1; then
        echo "store_pg: FAILED: running as root and user 'nobody' does not exist" >&2
        rm -rf "$dir"
        exit 1
    fi
    chown nobody "$dir"
    runas=(runuser -u nobody --)
fi

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    if [ -f "$dir/data/postmaster.pid" ]; then
        "${runas[@]}" "$PG_CTL" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$dir"
if ! "${runas[@]}" "$INITDB" -D "$dir/data" -U lunal_test -A trust -E UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1; then
    echo "store_pg: FAILED: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    exit 1
fi

# -w with -t bounds the wait for "ready to accept connections".
if ! "${runas[@]}" "$PG_CTL" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -k $dir -c fsync=off -c max_connections=30" \
        start >/dev/null; then
    echo "store_pg: FAILED: the PostgreSQL server did not start:" >&2
    cat "$dir/server.log" >&2 || true
    exit 1
fi

# The environment must not redirect the test to another server.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE \
      PGSERVICEFILE PGOPTIONS PGSSLMODE || true
export LUNA_TEST_PG_URL="postgresql:///postgres?host=$dir&user=lunal_test"
export LUNA_TEST_PG_DIR="$dir"

set +e
"$@"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
    echo "store_pg: test exited $rc; server log tail:" >&2
    tail -n 30 "$dir/server.log" >&2 || true
fi
exit "$rc"
