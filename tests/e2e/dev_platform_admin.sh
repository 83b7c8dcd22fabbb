#!/usr/bin/env bash
# e2e.dev_platform_admin: the administrative commands of `lunal` against
# the real embedded platform (`lunal dev up` through scripts/run.sh),
# through the gateway's relayed routes (docs/protocol.md "Relayed
# routes"): TEE list, batch and --all verify over both TEEs, --tee,
# attestation history, tenant list/create, keys create/list/rotate/revoke
# (as the new tenant's owner), cross-tenant refusals, apikey
# create/list/revoke (a revoked key fails on the next request), client
# register (the key file, once), deployment register/list as the demo
# developer (a second deployment demo2; tampered, foreign-key,
# same-version and client refusals with their codes), usage errors (exit
# 2), and a quarantined
# TEE making `attestation verify` exit 1 with the reason in words.
# Admin calls use the bootstrap administrator's key
# (client/admin_api_key), never the client's.  Bounded: about 60 s.
set -u
src=$1 build=$2
tmp=$(mktemp -d /tmp/luna-dev-admin-e2e-XXXXXX)
chmod 711 "$tmp" # as root, the KMS's HSM user (lunal-hsm) passes through to hsm/
export LUNAL_DEV_DIR=$tmp/state LUNAL_BUILD_DIR=$build LUNAL_RUN_SKIP_SETUP=1
export LUNAL_DEV_PORT_BASE=$((20000 + RANDOM % 20000))
# Some sixty commands as one tenant in under a minute: the gateway's
# per-tenant rate limits (tested in e2e.gateway_flow) are raised so this
# test measures the admin routes, not the limiter.
export LUNA_GATEWAY_GATEWAY_RATE_AUTH_PER_SEC=1000 LUNA_GATEWAY_GATEWAY_RATE_AUTH_BURST=1000
export LUNA_GATEWAY_GATEWAY_RATE_TENANT_PER_SEC=1000 LUNA_GATEWAY_GATEWAY_RATE_TENANT_BURST=1000
export LUNA_GATEWAY_GATEWAY_RATE_KEY_PER_SEC=1000 LUNA_GATEWAY_GATEWAY_RATE_KEY_BURST=1000
lunal=$build/cli/lunal
fail=0
cleanup() {
    "$lunal" dev down >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
bad() { echo "FAIL: $*" >&2; fail=1; }
# expect RC WHAT CMD...: runs CMD, output in $out, checks the exit status.
expect() {
    local want=$1 what=$2
    shift 2
    out=$("$@" 2>&1)
    local rc=$?
    [ "$rc" = "$want" ] || { bad "$what: exit $rc, not $want: $(echo "$out" | tail -n 3)"; return 1; }
    return 0
}
has() { echo "$out" | grep -q -- "$1" || bad "$2 (output lacks '$1')"; }

timeout 150 bash "$src/scripts/run.sh" >"$tmp/run.log" 2>&1 || {
    cat "$tmp/run.log"
    bad "scripts/run.sh failed"
    exit 1
}
export LUNAL_CONFIG=$LUNAL_DEV_DIR/client/client.json
admin_key=$LUNAL_DEV_DIR/client/admin_api_key
admin() { LUNAL_API_KEY_FILE=$admin_key timeout 30 "$lunal" "$@"; }
client() { timeout 30 "$lunal" "$@"; }

# ---- TEEs: list, batch, --all, --tee ----
expect 0 "tee list" admin tee list && { has tee-1 "tee list"; has tee-2 "tee list"; }
expect 0 "verify --all" client attestation verify --all
for t in tee-1 tee-2; do has "$t" "verify --all shows both TEEs"; done
has "2 of 2 verified" "verify --all summary"
printf '# deployment tee\ndemo tee-1\ndemo tee-2\n' >"$tmp/batch"
expect 0 "verify --batch" client attestation verify --batch "$tmp/batch"
for t in tee-1 tee-2; do has "$t" "verify --batch shows both TEEs"; done
expect 0 "verify --tee tee-2" client attestation verify --deployment demo --tee tee-2
has "Attestation verification complete" "verify --tee"

# ---- attestation history ----
expect 0 "attestation history" client attestation history --deployment demo && {
    has tee- "history lists attestations"
    echo "$out" | grep -Eq '^[1-9][0-9]* entries' || bad "history lists no entry"
}
expect 0 "attestation history --json" client attestation history --tee tee-1 --json
has '"items"' "history --json"

# ---- tenants ----
expect 0 "tenant list" admin tenant list && has '"demo"' "tenant list shows the own tenant"
expect 0 "tenant create" admin tenant create --tenant_id acme --display_name "Acme e2e"
acme_key=$(echo "$out" | sed -n 's/.*"api_key": *"\([^"]*\)".*/\1/p')
[ -n "$acme_key" ] || bad "tenant create printed no owner key"
umask 077
printf '%s\n' "$acme_key" >"$tmp/acme_key"
# acme's own client config: tenant acme, no client key of tenant demo.
sed -e 's/"tenant_id": *"demo"/"tenant_id": "acme"/' -e '/"client_key_file"/d' \
    "$LUNAL_CONFIG" >"$tmp/acme.json"
acme() { LUNAL_CONFIG=$tmp/acme.json LUNAL_API_KEY_FILE=$tmp/acme_key timeout 30 "$lunal" "$@"; }
expect 2 "tenant create twice" admin tenant create --tenant_id acme
has tenant_exists "a second tenant create is refused with the reason"

# ---- keys, as acme's owner (key-admin) ----
expect 0 "keys create" acme keys create --key_id k1 && has '"k1"' "keys create"
expect 0 "keys list" acme keys list && has '"k1"' "keys list shows the key"
expect 0 "keys rotate" acme keys rotate --id k1
echo "$out" | grep -Eq '"(current_version|version)": *2' || bad "keys rotate did not make version 2: $out"
expect 0 "keys revoke" acme keys revoke --id k1 && has revoked "keys revoke"
# The demo tenant does not see acme's keys; acme does not see demo's TEEs.
expect 0 "keys list (demo)" admin keys list 2>/dev/null || true
echo "$out" | grep -q '"k1"' && bad "tenant demo sees tenant acme's key"
expect 0 "tee list (acme)" acme tee list
echo "$out" | grep -q 'tee-1' && bad "tenant acme sees tenant demo's TEEs"
expect 2 "tee quarantine (acme, demo's TEE)" acme tee quarantine --id tee-1 --reason "not yours"
# Attestation history is the caller's tenant's: acme reads nothing of demo's TEEs.
expect 0 "attestation history (acme, demo's TEE)" acme attestation history --tee tee-1 --json && {
    has '"items"' "history --json (acme)"
    echo "$out" | grep -q 'tee-1' && bad "tenant acme reads tenant demo's attestation history: $out"
}
expect 0 "attestation history (acme, deployment demo)" acme attestation history --deployment demo --json && {
    echo "$out" | grep -Eq 'tee-[12]' && bad "tenant acme reads tenant demo's history by deployment: $out"
}
# A client may not rotate keys or list API keys.
expect 2 "keys rotate (client)" client keys rotate --id k1 && has permission_denied "client keys rotate"
expect 2 "apikey list (client)" client apikey list && has permission_denied "client apikey list"

# ---- API keys ----
expect 0 "apikey create" admin apikey create --principal demo-client --expires_in_sec 600
new_key=$(echo "$out" | sed -n 's/.*"api_key": *"\([^"]*\)".*/\1/p')
new_id=$(echo "$out" | sed -n 's/.*"key_id": *"\([^"]*\)".*/\1/p')
[ -n "$new_key" ] && [ -n "$new_id" ] || bad "apikey create printed no key"
printf '%s\n' "$new_key" >"$tmp/new_key"
expect 0 "apikey list" admin apikey list --principal demo-client && has "$new_id" "apikey list"
echo "$out" | grep -q "$new_key" && bad "apikey list shows a secret"
expect 0 "the new key works" env LUNAL_API_KEY_FILE="$tmp/new_key" "$lunal" attestation verify --deployment demo
expect 0 "apikey revoke" admin apikey revoke --id "$new_id" --principal demo-client
expect 2 "a revoked key" env LUNAL_API_KEY_FILE="$tmp/new_key" "$lunal" attestation verify --deployment demo
has revoked "a revoked key fails with the reason"

# ---- client register ----
expect 0 "client register" admin client register --principal_id app2 --display_name "App two" --out "$tmp/app2.key"
[ -s "$tmp/app2.key" ] || bad "client register wrote no key file"
[ "$(stat -c %a "$tmp/app2.key" 2>/dev/null)" = 600 ] || bad "the client key file is not 0600"
k=$(head -c 40 "$tmp/app2.key")
[ -n "$k" ] && echo "$out" | grep -qF -- "$k" && bad "client register printed the key file"
has key_file_written "client register says where the key went"

# ---- usage errors: exit 2 ----
expect 2 "tee quarantine without --id" admin tee quarantine --reason x
expect 2 "unknown subcommand" admin keys frobnicate
expect 2 "unknown option" admin tee list --bogus 1
expect 2 "verify without a target" client attestation verify
expect 2 "history with both targets" client attestation history --deployment demo --tee tee-1

# ---- deployments: the demo developer registers demo2 (docs/attestation.md) ----
expect 0 "apikey create (developer)" admin apikey create --principal dev_demo --expires_in_sec 600
dev_key=$(echo "$out" | sed -n 's/.*"api_key": *"\([^"]*\)".*/\1/p')
[ -n "$dev_key" ] || bad "apikey create printed no key for the developer"
printf '%s\n' "$dev_key" >"$tmp/dev_key"
developer() { LUNAL_API_KEY_FILE=$tmp/dev_key timeout 30 "$lunal" "$@"; }
dep=$LUNAL_DEV_DIR/demo/deployment.json
mre=$(grep -o '"mr_enclave": *"[0-9a-f]*"' "$dep" | head -n 1 | sed 's/.*"\([0-9a-f]*\)"$/\1/')
bh=$(grep -o '"build_hash": *"[^"]*"' "$dep" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
[ -n "$mre" ] && [ -n "$bh" ] || bad "no reference values in $dep"
spec() { # spec VERSION JOB
    printf '{"name":"demo2","version":"%s","jobs":["%s"],"build_hash":"%s","mr_enclave":"%s","developer_id":"dev_demo"}\n' \
        "$1" "$2" "$bh" "$mre" >"$tmp/demo2-$1-$2.json"
}
sign() { # sign VERSION JOB KEY OUT
    spec "$1" "$2"
    expect 0 "deployment sign $1 $2" "$lunal" deployment sign --spec "$tmp/demo2-$1-$2.json" --key "$3" --out "$4"
}
sign 1 sha256 "$LUNAL_DEV_DIR/keys/developer.seed" "$tmp/demo2.manifest"
expect 0 "deployment register demo2" developer deployment register --manifest "$tmp/demo2.manifest" &&
    has '"demo2"' "deployment register answers the deployment"
expect 0 "deployment register demo2 again" developer deployment register --manifest "$tmp/demo2.manifest"
expect 0 "deployment list" developer deployment list && {
    has '"demo2"' "deployment list shows the registered deployment"
    has '"registered"' "deployment list says demo2 is registered"
    has '"configured"' "deployment list shows the configured demo"
}
# The signature part altered: refused with the code, and nothing changes.
m=$(cat "$tmp/demo2.manifest")
sig=${m##*.} pre=${m%.*}
c=${sig:10:1}
r=A
[ "$c" = A ] && r=B
printf '%s.%s%s%s\n' "$pre" "${sig:0:10}" "$r" "${sig:11}" >"$tmp/tampered.manifest"
expect 2 "deployment register (tampered)" developer deployment register --manifest "$tmp/tampered.manifest" &&
    has bad_signature "a tampered manifest is refused with its code"
# Signed by a key IAM does not know for any developer.
head -c 32 /dev/urandom >"$tmp/other.seed"
sign 1 sha256 "$tmp/other.seed" "$tmp/other.manifest"
expect 2 "deployment register (another key)" developer deployment register --manifest "$tmp/other.manifest" &&
    has unknown_developer_key "a manifest signed by another key is refused with its code"
# Another manifest under the same id and version: a conflict; a higher version replaces it.
sign 1 redact "$LUNAL_DEV_DIR/keys/developer.seed" "$tmp/demo2-v1b.manifest"
expect 2 "deployment register (same version, other content)" developer deployment register --manifest "$tmp/demo2-v1b.manifest" &&
    has deployment_conflict "a different manifest of the same version is refused"
sign 2 redact "$LUNAL_DEV_DIR/keys/developer.seed" "$tmp/demo2-v2.manifest"
expect 0 "deployment register (version 2)" developer deployment register --manifest "$tmp/demo2-v2.manifest"
expect 0 "deployment list (version 2)" developer deployment list
echo "$out" | grep -q '"version": *"2"' || bad "deployment list does not show version 2: $out"
# A client principal may not register.
expect 2 "deployment register (client)" client deployment register --manifest "$tmp/demo2-v2.manifest" &&
    has permission_denied "a client is refused"
# Another tenant does not see demo's registered deployment.
out=$(acme deployment list 2>&1)
echo "$out" | grep -q '"demo2"' && bad "tenant acme sees tenant demo's registered deployment: $out"

# ---- quarantine: verify exits 1 with the reason ----
expect 0 "tee quarantine tee-1" admin tee quarantine --id tee-1 --reason "e2e test" && has quarantined "tee quarantine"
# The reason in code and words: the attestation service names the
# quarantine ("tee_quarantined", "TEE quarantined: ..."), not a vague
# "not active" (the status is the KMS registry's).
reason_re='tee_quarantined.*TEE quarantined: '
expect 1 "verify of a quarantined TEE" client attestation verify --deployment demo --tee tee-1
echo "$out" | grep -Eqi "$reason_re" || bad "verify does not say why (quarantine): $out"
expect 0 "tee quarantine tee-2" admin tee quarantine --id tee-2 --reason "e2e test"
expect 1 "verify of a quarantined deployment" client attestation verify --deployment demo
echo "$out" | grep -Eqi "$reason_re" || bad "verify does not say why (quarantine): $out"
expect 1 "verify --all with quarantined TEEs" client attestation verify --all

exit $fail
