#!/usr/bin/env bash
# The luna-ca tool: exit codes (0 ok, 1 failure, 2 usage), file modes, the
# encrypted CA key, issue/renew/show, and the refusals an operator relies
# on.  Usage: pki_tool.sh /path/to/luna-ca
set -u
CA_BIN=${1:?usage: pki_tool.sh LUNA_CA}
W=$(mktemp -d /tmp/luna-pki-tool.XXXXXX)
trap 'rm -rf "$W"' EXIT
unset LUNA_CA_PASSPHRASE
failures=0

# expect CODE CMD...: runs CMD, output in $W/out, checks the exit status.
expect() {
    local want=$1; shift
    "$@" >"$W/out" 2>&1
    local got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: expected exit $want, got $got: $*"; sed 's/^/    /' "$W/out"
        failures=$((failures + 1))
    fi
}
check() { # check DESCRIPTION TEST-ARGS...
    local what=$1; shift
    if ! "$@"; then echo "FAIL: $what"; failures=$((failures + 1)); fi
}
mode() { stat -c %a "$1"; }
field() { sed -n "s/^$1: //p" "$2"; }

cd "$W"
printf 'operator passphrase one\n' >pass; chmod 600 pass
printf 'not the passphrase!!\n' >wrong; chmod 600 wrong

# ---- usage errors: exit 2 ----
expect 2 "$CA_BIN"
expect 2 "$CA_BIN" frobnicate
expect 2 "$CA_BIN" init
expect 2 "$CA_BIN" init --dir
expect 2 "$CA_BIN" init --dir ca --bogus x --passphrase-file pass
expect 2 "$CA_BIN" init --dir ca --dir ca2 --passphrase-file pass
expect 2 "$CA_BIN" init --dir ca --days 0 --passphrase-file pass
expect 2 "$CA_BIN" init --dir ca --days 12x --passphrase-file pass
expect 2 "$CA_BIN" init --dir ca --passphrase "on the command line"
expect 2 "$CA_BIN" init --dir ca            # no passphrase source at all
check "no CA made by usage errors" test ! -e ca
for c in init issue renew show; do
    expect 0 "$CA_BIN" "$c" --help
    check "$c --help prints usage" grep -q "usage: luna-ca $c" "$W/out"
done
expect 0 "$CA_BIN" --help

# ---- init ----
expect 0 "$CA_BIN" init --dir ca --passphrase-file pass --days 30
check "ca.key mode 600" test "$(mode ca/ca.key)" = 600
check "ca.crt mode 644" test "$(mode ca/ca.crt)" = 644
check "ca dir mode 700" test "$(mode ca)" = 700
check "ca.key is encrypted PKCS#8" grep -q -- '-----BEGIN ENCRYPTED PRIVATE KEY-----' ca/ca.key
check "no clear key in ca.key" bash -c '! grep -q "BEGIN PRIVATE KEY\|BEGIN EC PRIVATE KEY" ca/ca.key'
check "passphrase not on disk in clear" bash -c '! grep -q "operator passphrase" ca/ca.key ca/ca.crt'
cp ca/ca.key ca.key.orig
expect 1 "$CA_BIN" init --dir ca --passphrase-file pass
check "refuses to overwrite a CA" grep -q "refusing to overwrite" "$W/out"
check "existing CA key untouched" cmp -s ca/ca.key ca.key.orig

# ---- issue: usage ----
ISSUE=(issue --dir ca --key-out kms.key --cert-out kms.crt --passphrase-file pass)
expect 2 "$CA_BIN" "${ISSUE[@]}"                                  # no identity
expect 2 "$CA_BIN" "${ISSUE[@]}" --identity lunal://svc/KMS
expect 2 "$CA_BIN" "${ISSUE[@]}" --identity https://svc/kms
expect 2 "$CA_BIN" "${ISSUE[@]}" --identity lunal://svc/kms --hours 0
expect 2 "$CA_BIN" "${ISSUE[@]}" --identity lunal://svc/kms --hours 2161
expect 2 "$CA_BIN" "${ISSUE[@]}" --identity lunal://svc/kms --hours -1
expect 2 "$CA_BIN" "${ISSUE[@]}" --identity lunal://svc/kms --not-before 100
expect 2 "$CA_BIN" "${ISSUE[@]}" --identity lunal://svc/kms --hours 1 --not-before 1 --not-after 2
expect 2 "$CA_BIN" "${ISSUE[@]}" --identity lunal://svc/kms --not-before 200 --not-after 100
expect 2 "$CA_BIN" issue --dir ca --identity lunal://svc/kms --key-out a --cert-out a --passphrase-file pass
check "no files from usage errors" test ! -e kms.key -a ! -e kms.crt -a ! -e a

# ---- issue: refusals (exit 1) ----
expect 1 "$CA_BIN" issue --dir ca --identity lunal://svc/kms --key-out k --cert-out c --passphrase-file wrong
check "wrong passphrase says so" grep -q "wrong passphrase" "$W/out"
chmod 644 pass
expect 1 "$CA_BIN" issue --dir ca --identity lunal://svc/kms --key-out k --cert-out c --passphrase-file pass
chmod 600 pass
check "nothing written on refusal" test ! -e k -a ! -e c
# Lifetime beyond the CA's own (30 days) is refused.
expect 1 "$CA_BIN" issue --dir ca --identity lunal://svc/kms --key-out k --cert-out c \
    --passphrase-file pass --hours 2000

# ---- issue: happy path, passphrase from the environment too ----
expect 0 "$CA_BIN" "${ISSUE[@]}" --identity lunal://svc/kms
check "key mode 600" test "$(mode kms.key)" = 600
check "cert mode 644" test "$(mode kms.crt)" = 644
check "no temporary files left" bash -c '! ls | grep -q tmp'
LUNA_CA_PASSPHRASE='operator passphrase one' \
    expect 0 "$CA_BIN" issue --dir ca --identity lunal://tee/tee-0001 --key-out tee.key --cert-out tee.crt --hours 1
expect 0 "$CA_BIN" show --cert kms.crt
cp "$W/out" show1
check "show: identity" test "$(field identity show1)" = lunal://svc/kms
check "show: 32 hex digit serial" grep -Eq '^serial: [0-9A-F]{32}$' show1
nb=$(field not_before show1 | sed 's/.*(\([0-9]*\))/\1/')
na=$(field not_after show1 | sed 's/.*(\([0-9]*\))/\1/')
check "default validity 24 h (+ 5 min backdating)" test $((na - nb)) -eq $((24 * 3600 + 300))
expect 0 "$CA_BIN" show --cert tee.crt
check "tee identity" grep -q '^identity: lunal://tee/tee-0001$' "$W/out"

# An already-expired certificate, on request.
now=$(date +%s)
expect 0 "$CA_BIN" issue --dir ca --identity lunal://svc/audit --key-out old.key --cert-out old.crt \
    --passphrase-file pass --not-before $((now - 7200)) --not-after $((now - 3600))
expect 0 "$CA_BIN" show --cert old.crt
check "explicit not_after kept" grep -q "^not_after: .*($((now - 3600)))$" "$W/out"

# The CA certificate has no lunal identity: show says so and fails.
expect 1 "$CA_BIN" show --cert ca/ca.crt
check "show CA: no identity" grep -q '^identity: -$' "$W/out"
expect 1 "$CA_BIN" show --cert does-not-exist.crt
expect 2 "$CA_BIN" show

# Independent check with the openssl command when present (the rest of
# this test does not depend on it).
if command -v openssl >/dev/null 2>&1; then
    check "openssl verifies kms.crt" openssl verify -x509_strict -CAfile ca/ca.crt kms.crt >/dev/null 2>&1
    check "openssl refuses expired old.crt" bash -c '! openssl verify -CAfile ca/ca.crt old.crt >/dev/null 2>&1'
fi

# ---- renew ----
key_sum=$(sha256sum kms.key)
expect 2 "$CA_BIN" renew --dir ca --cert kms.crt --passphrase-file pass
expect 2 "$CA_BIN" renew --dir ca --cert kms.crt --key kms.key --hours 0 --passphrase-file pass
sleep 1
expect 0 "$CA_BIN" renew --dir ca --cert kms.crt --key kms.key --hours 2 --passphrase-file pass
expect 0 "$CA_BIN" show --cert kms.crt
cp "$W/out" show2
check "renew keeps identity" test "$(field identity show2)" = lunal://svc/kms
check "renew changes serial" test "$(field serial show1)" != "$(field serial show2)"
nb2=$(field not_before show2 | sed 's/.*(\([0-9]*\))/\1/')
na2=$(field not_after show2 | sed 's/.*(\([0-9]*\))/\1/')
check "renew sets the new validity" test $((na2 - nb2)) -eq $((2 * 3600 + 300))
check "renew keeps the key" test "$(sha256sum kms.key)" = "$key_sum"
check "renewed cert mode 644" test "$(mode kms.crt)" = 644
if command -v openssl >/dev/null 2>&1; then
    check "renewed cert matches the key" test \
        "$(openssl x509 -in kms.crt -noout -pubkey)" = "$(openssl pkey -in kms.key -pubout)"
fi
# An expired certificate can be renewed (the operator holds the CA key).
expect 0 "$CA_BIN" renew --dir ca --cert old.crt --key old.key --passphrase-file pass

# Refusals leave the certificate untouched.
cp kms.crt kms.crt.before
expect 1 "$CA_BIN" renew --dir ca --cert kms.crt --key tee.key --passphrase-file pass
check "mismatched key refused" grep -q "does not match" "$W/out"
expect 0 "$CA_BIN" init --dir other --passphrase-file pass
expect 0 "$CA_BIN" issue --dir other --identity lunal://svc/iam --key-out iam.key --cert-out iam.crt --passphrase-file pass
expect 1 "$CA_BIN" renew --dir ca --cert iam.crt --key iam.key --passphrase-file pass
check "foreign certificate refused" grep -q "not issued by this CA" "$W/out"
check "kms.crt untouched by refusals" cmp -s kms.crt kms.crt.before

# ---- an unencrypted CA key is refused ----
mkdir -m 700 clear
cp ca/ca.crt clear/ca.crt
cp kms.key clear/ca.key
expect 1 "$CA_BIN" issue --dir clear --identity lunal://svc/kms --key-out k --cert-out c --passphrase-file pass
check "clear CA key refused" grep -q "must be encrypted" "$W/out"
chmod 644 ca/ca.key
expect 1 "$CA_BIN" issue --dir ca --identity lunal://svc/kms --key-out k --cert-out c --passphrase-file pass
chmod 600 ca/ca.key

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "pki_tool: all checks passed"
