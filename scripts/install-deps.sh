#!/usr/bin/env bash
# Installs every Debian package Lunal needs to build, run and test, by name.
# Idempotent; runs as root on a brand-new Debian 12 (bash, apt, git, CA certs).
# It must never download anything but Debian packages and the pinned npm
# packages of tests/interop (installed by the test script, not here).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: must run as root (it calls apt-get install)" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive

packages=(
    # toolchain and checkers
    build-essential cmake pkg-config clang clang-tidy cppcheck
    libclang-rt-14-dev llvm
    # libraries (DESIGN.md section 8)
    libssl-dev openssl libevent-dev libjansson-dev libsqlite3-dev sqlite3
    libpq-dev postgresql softhsm2 libp11-kit-dev opensc
    libcurl4-openssl-dev libseccomp-dev libcmocka-dev
    libtss2-dev tpm2-tools swtpm swtpm-tools
    # what the tests drive
    procps iproute2 util-linux python3 curl
)

# A machine may carry a newer Node.js from another source whose package
# conflicts with Debian's npm; only add what is missing.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm  >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages already installed"
    exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
