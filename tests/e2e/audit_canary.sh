#!/usr/bin/env bash
# e2e.audit_canary: no secret reaches the audit log, a database or a log
# file during a full platform run (issue 7).  `lunal dev up` in a fresh
# state folder; canaries planted: an API key created for this test (IAM
# admin API), the client key file's X25519 private key, a gateway token
# (used for a call), and a plaintext marker inside a job's data (sent with
# `lunal request`); the witness must hold the log's head, and `lunal
# audit verify` through the real gateway (a tenant auditor created for
# the test) must pass twice, the second time consistent with the first.
# Then every file of the state folder except the
# client's own key files (client/), the dev up output, while the platform
# runs (SQLite -wal files included) and again after `dev down`, is
# searched for each canary raw, as hex (both cases) and as base64 and
# base64url at every byte alignment.  Before that the same search must
# find a control value planted on purpose in each of those forms in a
# SQLite WAL file and a log file; otherwise the test fails (a search that
# finds nothing proves nothing).
set -u
src=$1 build=$2
tmp=$(mktemp -d /tmp/luna-canary-XXXXXX)
chmod 711 "$tmp" # as root, the KMS's HSM user passes through to hsm/
export LUNAL_DEV_DIR=$tmp/state
export LUNAL_DEV_PORT_BASE=$((20000 + RANDOM % 20000))
lunal=$build/cli/lunal
cleanup() {
    "$lunal" dev down >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

if ! "$lunal" dev up >"$tmp/devup.log" 2>&1; then
    sed 's/^/  dev up: /' "$tmp/devup.log" >&2
    echo "FAIL: lunal dev up" >&2
    exit 1
fi
export LUNAL_CONFIG=$LUNAL_DEV_DIR/client/client.json

python3 - "$tmp" "$lunal" "$LUNAL_DEV_PORT_BASE" <<'PY'
import base64, http.client, json, os, secrets, sqlite3, ssl, subprocess, sys

tmp, lunal, port_base = sys.argv[1], sys.argv[2], int(sys.argv[3])
state = os.path.join(tmp, "state")
fails = []

def tls(cert=None):
    ctx = ssl.create_default_context(cafile=os.path.join(state, "ca", "ca.crt"))
    ctx.check_hostname = False  # platform certificates name identities, not hosts
    if cert:
        ctx.load_cert_chain(os.path.join(state, "certs", cert + ".crt"),
                            os.path.join(state, "certs", cert + ".key"))
    return ctx

def call(port, method, path, body=None, headers=None, cert=None):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=tls(cert), timeout=30)
    h = {"Content-Type": "application/json"} if body is not None else {}
    h.update(headers or {})
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data

# ---- the search: every file under the given roots, every encoding ----

def forms(secret: bytes):
    out = {"raw": [secret], "hex": [secret.hex().encode(), secret.hex().upper().encode()]}
    b64 = []
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        for k in range(3):
            e = enc(b"\0" * k + secret).rstrip(b"=")
            lo = (8 * k + 5) // 6             # chars touched by the pad bytes
            hi = (8 * (k + len(secret))) // 6  # chars fully inside the secret
            core = e[lo:hi]
            if len(core) >= 12:
                b64.append(core)
    out["base64"] = b64
    return out

def files_under(roots, skip):
    for root in roots:
        if os.path.isfile(root):
            yield root
            continue
        for d, _, names in os.walk(root):
            for n in names:
                p = os.path.join(d, n)
                if any(p.startswith(s) for s in skip) or not os.path.isfile(p):
                    continue
                yield p

def search(secret: bytes, roots, skip=()):
    hits = []
    f = forms(secret)
    for p in files_under(roots, skip):
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        for kind, needles in f.items():
            if any(n in data for n in needles):
                hits.append((p, kind))
    return hits

# ---- control: the search must find a value planted on purpose ----

ctl = b"LUNACTL" + secrets.token_bytes(24)
ctl_db = os.path.join(state, "db", "zz_planted.db")
con = sqlite3.connect(ctl_db)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA wal_autocheckpoint=0")
con.execute("CREATE TABLE t (v BLOB)")
con.execute("INSERT INTO t VALUES (?)", (b"junk" + ctl + b"junk",))
con.execute("INSERT INTO t VALUES (?)", ("x" + ctl.hex() + "y",))
con.commit()
ctl_b64 = os.path.join(state, "logs", "zz_planted_b64.log")
with open(ctl_b64, "wb") as fh:  # base64 of the control at alignment 2, in a log line
    fh.write(b'{"msg":"x","v":"' + base64.b64encode(b"ab" + ctl) + b'"}\n')
ctl_b64u = os.path.join(state, "logs", "zz_planted_b64url.log")
with open(ctl_b64u, "wb") as fh:
    fh.write(b"v=" + base64.urlsafe_b64encode(b"q" + ctl).rstrip(b"=") + b"\n")
found = search(ctl, [state])
kinds = {(os.path.basename(p), k) for p, k in found}
for want in [("zz_planted.db-wal", "raw"), ("zz_planted.db-wal", "hex"),
             ("zz_planted_b64.log", "base64"), ("zz_planted_b64url.log", "base64")]:
    if want not in kinds:
        fails.append("the search did not find the planted control %s in %s" % (want[1], want[0]))
con.close()
for p in (ctl_db, ctl_db + "-wal", ctl_db + "-shm", ctl_b64, ctl_b64u):
    if os.path.exists(p):
        os.unlink(p)
if fails:
    print("\n".join("FAIL: " + f for f in fails), file=sys.stderr)
    sys.exit(1)
print("control: found in", sorted(kinds))

# ---- canaries ----

canaries = {}
iam_port, gw_port = port_base + 1, port_base
admin_key = open(os.path.join(state, "client", "admin_api_key")).read().strip()

# 1. An API key created for this test through IAM's admin API.
st, body = call(iam_port, "POST", "/v1/iam/authenticate",
                {"tenant_id": "demo", "api_key": admin_key}, cert="dev")
assert st == 200, (st, body)
iam_tok = json.loads(body)["downstream"]["iam"]
st, body = call(iam_port, "POST", "/v1/iam/tenants/demo/principals/demo-client/api-keys", {},
                {"Authorization": "Bearer " + iam_tok}, cert="dev")
assert st in (200, 201), (st, body)
test_key = json.loads(body)["api_key"]
canaries["test API key"] = test_key.encode()
canaries["admin API key"] = admin_key.encode()
canaries["client API key"] = open(os.path.join(state, "client", "api_key")).read().strip().encode()

# 2. The client key file's private key (raw X25519 bytes).
ck = json.load(open(os.path.join(state, "client", "client.key")))
sk = ck["private_key"]
canaries["client private key"] = base64.urlsafe_b64decode(sk + "=" * (-len(sk) % 4))

# 3. A gateway token, used for a call.
st, body = call(gw_port, "POST", "/v1/auth/token", {"tenant_id": "demo"},
                {"Authorization": "ApiKey " + test_key})
assert st == 200, (st, body)
tok = json.loads(body)
canaries["gateway token"] = tok["token"].encode()
canaries["gateway token signature"] = tok["token"].rsplit(".", 1)[-1].encode()
for name, t in (tok.get("downstream") or {}).items():
    canaries["downstream token " + name] = t.encode()
st, _ = call(gw_port, "GET", "/v1/audit/checkpoint", None, {"Authorization": "Bearer " + tok["token"]})
print("call with the token:", st)

# 4. A plaintext marker inside a job's data, through the real client.
marker = "LUNACANARYPLAIN" + secrets.token_hex(12)
data = os.path.join(tmp, "job-data.txt")
with open(data, "w") as fh:
    fh.write("the quick brown fox %s jumps over the lazy dog\n" % marker)
canaries["job plaintext"] = marker.encode()
env = dict(os.environ, LUNAL_API_KEY=test_key)
for _ in range(2):
    r = subprocess.run([lunal, "request", "--job", "wordstats", "--data", "@" + data],
                       env=env, capture_output=True, timeout=120)
    if r.returncode != 0:
        fails.append("lunal request failed: %s" % r.stderr.decode(errors="replace")[-400:])
    elif b"words" not in r.stdout:
        fails.append("lunal request answered no word count")
# More traffic through the audited paths (their outcome is not this test's subject).
subprocess.run([lunal, "attestation", "verify", "--deployment", "demo"], env=env,
               capture_output=True, timeout=120)

# `lunal audit verify` through the real gateway relays, as a tenant
# auditor created for the test (its API key is one more canary): first
# use, then after more traffic consistent with the kept checkpoint, the
# witness agreeing both times.
H = {"Authorization": "Bearer " + iam_tok}
st, _ = call(iam_port, "POST", "/v1/iam/tenants/demo/principals",
             {"principal_id": "canary-auditor", "kind": "user", "display_name": "Auditor"}, H,
             cert="dev")
assert st in (200, 201), st
st, _ = call(iam_port, "PUT", "/v1/iam/tenants/demo/principals/canary-auditor/roles",
             {"roles": ["auditor"]}, H, cert="dev")
assert st == 200, st
st, body = call(iam_port, "POST", "/v1/iam/tenants/demo/principals/canary-auditor/api-keys", {},
                H, cert="dev")
assert st in (200, 201), st
aud_key = json.loads(body)["api_key"]
canaries["auditor API key"] = aud_key.encode()
aenv = dict(os.environ, LUNAL_API_KEY=aud_key)
for round_ in range(2):
    r = subprocess.run([lunal, "audit", "verify"], env=aenv, capture_output=True, timeout=120)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0 or "Witness:    agrees" not in out:
        fails.append("audit verify through the gateway (round %d): exit %d %s %s" % (
            round_, r.returncode, out[-300:], r.stderr.decode(errors="replace")[-300:]))
    elif round_ == 1 and "consistent with the kept checkpoint" not in out:
        fails.append("the second audit verify did not prove consistency: " + out[-300:])
    subprocess.run([lunal, "request", "--job", "wordstats", "--data", "@" + data], env=env,
                   capture_output=True, timeout=120)

# The audit log recorded the run (else the search below proves little).
audit_db = os.path.join(state, "db", "audit.db")
n = sqlite3.connect("file:%s?mode=ro" % audit_db, uri=True).execute(
    "SELECT COUNT(*) FROM audit_entries").fetchone()[0]
print("audit entries:", n)
if n < 5:
    fails.append("the audit log holds only %d entries" % n)
# The dev platform wires the witness: the log pushed its head there.
import time
wsize = -1
for _ in range(100):
    n = sqlite3.connect("file:%s?mode=ro" % audit_db, uri=True).execute(
        "SELECT size FROM audit_head").fetchone()[0]
    st, body = call(port_base + 6, "GET", "/v1/witness/state", cert="dev")
    wsize = json.loads(body).get("size", -1) if st == 200 else -1
    if wsize == n and "checkpoint" in json.loads(body):
        break
    time.sleep(0.1)
print("witness size:", wsize, "log size:", n)
if wsize != n:
    fails.append("the witness holds size %d, the log %d" % (wsize, n))

def sweep(when):
    roots = [state, os.path.join(tmp, "devup.log")]
    skip = [os.path.join(state, "client") + os.sep]
    wal = [p for p in files_under([state], skip) if p.endswith("-wal")]
    print("%s: searching %d files (%d WAL)" % (when, sum(1 for _ in files_under(roots, skip)), len(wal)))
    for name, secret in canaries.items():
        for p, kind in search(secret, roots, skip):
            fails.append("%s: %s found (%s) in %s" % (when, name, kind, os.path.relpath(p, tmp)))

sweep("running")
r = subprocess.run([lunal, "dev", "down"], capture_output=True, timeout=120)
if r.returncode != 0:
    fails.append("lunal dev down failed")
sweep("after dev down")
if fails:
    print("\n".join("FAIL: " + f for f in fails), file=sys.stderr)
    sys.exit(1)
print("no canary found: %d canaries, raw/hex/base64" % len(canaries))
PY
