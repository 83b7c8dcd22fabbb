/*
 * kms_deployments.c - POST /v1/kms/deployments: registration of a signed
 * deployment manifest (DESIGN.md 3a, docs/kms.md "Registered deployments")
 * and the reference lookup the KMS's own appraisal uses for it.
 *
 * Owns: reading the manifest's key id, fetching that developer key from
 * IAM over the KMS's own mTLS client, verifying the manifest against it,
 * and the kms_deployments table with its HSM row MACs.  The attestation
 * service that relays the manifest is a courier: nothing it could change
 * is believed; nor is the database: a row is used only when its MAC
 * verifies.
 * Must never: take a key from the manifest, accept a revoked or unknown
 * developer key, let a registered deployment shadow a configured one or
 * another tenant's, decide anything on a row whose MAC does not verify,
 * store anything the audit log did not record, or echo caller input in an
 * error.
 */
#include <stdio.h>
#include <string.h>

#include "kms_http.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/http.h"
#include "luna/json.h"
#include "luna/log.h"
#include "luna/manifest.h"

#define IAM_PATH "/v1/iam/developer-keys/"
#define IAM_ANSWER_MAX (8u * 1024u)
#define IAM_TIMEOUT_SEC 5u
#define DEV_TENANT_MAX 64u
#define DEV_DISPLAY_MAX 128u

/* The canonical manifest header (docs/manifest.md) around its kid. */
#define HDR_HEAD "{\"alg\":\"EdDSA\",\"kid\":\""
#define HDR_TAIL "\",\"typ\":\"lunal-manifest+v1\"}"
#define HDR_LEN (sizeof(HDR_HEAD) - 1 + LUNA_MANIFEST_KEY_ID_LEN + sizeof(HDR_TAIL) - 1)

static const luna_json_field body_fields[] = {
    {.name = "manifest", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_MANIFEST_MAX_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema body_schema = {body_fields, 1, NULL};

static const char *const statuses[] = {"active", "revoked", NULL};
static const luna_json_field iam_fields[] = {
    {.name = "key_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = LUNA_MANIFEST_KEY_ID_LEN, .max_len = LUNA_MANIFEST_KEY_ID_LEN,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "tenant_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = DEV_TENANT_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "developer_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNA_MANIFEST_DEV_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "display_name", .type = LUNA_JSON_T_STRING, .min_len = 0,
     .max_len = DEV_DISPLAY_MAX, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "public_key", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = LUNA_ED25519_PUB_LEN, .max_len = LUNA_ED25519_PUB_LEN},
    {.name = "status", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 16, .one_of = statuses},
};
static const luna_json_schema iam_schema = {iam_fields, 6, NULL};

typedef struct dev_key {
    char tenant[DEV_TENANT_MAX + 1];
    char developer[LUNA_MANIFEST_DEV_ID_MAX + 1];
    uint8_t pk[LUNA_ED25519_PUB_LEN];
    bool revoked;
} dev_key;

/* ---- version order ---- */

static size_t comp_len(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0' && s[n] != '.')
        n++;
    return n;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int kms_deploy_version_cmp(const char *a, const char *b)
{
    for (;;) {
        size_t la = comp_len(a), lb = comp_len(b);
        int c = 0;
        if (all_digits(a, la) && all_digits(b, lb)) {
            unsigned long long x = 0, y = 0;
            for (size_t i = 0; i < la; i++)
                x = x * 10u + (unsigned)(a[i] - '0');
            for (size_t i = 0; i < lb; i++)
                y = y * 10u + (unsigned)(b[i] - '0');
            c = x < y ? -1 : x > y ? 1 : 0;
        } else {
            size_t m = la < lb ? la : lb;
            c = memcmp(a, b, m);
            if (c == 0)
                c = la < lb ? -1 : la > lb ? 1 : 0;
        }
        if (c != 0)
            return c < 0 ? -1 : 1;
        a += la;
        b += lb;
        if (*a == '\0' || *b == '\0')
            return *a == *b ? 0 : (*a == '\0' ? -1 : 1);
        a++;
        b++;
    }
}

/* ---- the manifest's key id, before anything is verified ---- */

static bool key_id_ok(const char *s)
{
    for (size_t i = 0; i < LUNA_MANIFEST_KEY_ID_LEN; i++) {
        char c = s[i];
        if (i % 3 == 2 ? c != ':' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return s[LUNA_MANIFEST_KEY_ID_LEN] == '\0';
}

/*
 * The kid of the canonical header: only a lookup key.  Which key may sign
 * is decided by luna_manifest_verify against what IAM answers for it.
 */
bool kms_deploy_peek_kid(const char *jws, char kid[LUNA_MANIFEST_KEY_ID_LEN + 1])
{
    const char *dot = strchr(jws, '.');
    uint8_t hdr[HDR_LEN + 8];
    size_t n = 0;
    if (dot == NULL ||
        luna_b64url_decode(jws, (size_t)(dot - jws), hdr, sizeof(hdr), &n) != LUNA_OK ||
        n != HDR_LEN || memcmp(hdr, HDR_HEAD, sizeof(HDR_HEAD) - 1) != 0 ||
        memcmp(hdr + HDR_LEN - (sizeof(HDR_TAIL) - 1), HDR_TAIL, sizeof(HDR_TAIL) - 1) != 0)
        return false;
    memcpy(kid, hdr + sizeof(HDR_HEAD) - 1, LUNA_MANIFEST_KEY_ID_LEN);
    kid[LUNA_MANIFEST_KEY_ID_LEN] = '\0';
    return key_id_ok(kid);
}

/* ---- IAM ---- */

/*
 * GET the developer key from IAM.  LUNA_ERR_NOT_FOUND (IAM said 404),
 * LUNA_ERR_UNAVAILABLE (not reached), LUNA_ERR_FORMAT (an answer that is
 * not the contract, or a key that does not have this key id).
 */
static luna_err fetch_key(const kms_iam_peer *iam, const char *kid, dev_key *out)
{
    char path[sizeof(IAM_PATH) + LUNA_MANIFEST_KEY_ID_LEN];
    char derived[LUNA_MANIFEST_KEY_ID_LEN + 1];
    luna_http_client_opts o = {
        .tls = {.ca_file = iam->ca, .cert_file = iam->cert, .key_file = iam->key},
        .host = iam->host,
        .port = iam->port,
        .expected_identity = iam->identity,
        .timeout_sec = IAM_TIMEOUT_SEC,
        .max_response = IAM_ANSWER_MAX,
    };
    luna_http_result r;
    json_t *b = NULL;
    luna_json_error je;
    size_t n = 0;
    luna_err err;
    memset(&r, 0, sizeof(r));
    int pl = snprintf(path, sizeof(path), IAM_PATH "%s", kid);
    if (pl < 0 || (size_t)pl >= sizeof(path))
        return LUNA_ERR_INVALID_ARG;
    if (luna_http_fetch(&o, "GET", path, NULL, NULL, 0, &r) != LUNA_OK)
        return LUNA_ERR_UNAVAILABLE;
    if (r.status == 404) {
        err = LUNA_ERR_NOT_FOUND;
        goto out;
    }
    LUNA_TRY_ENSURE(r.status == 200, r.status >= 500 ? LUNA_ERR_UNAVAILABLE : LUNA_ERR_FORMAT,
                    out);
    luna_json_limits lim = {.max_bytes = IAM_ANSWER_MAX};
    LUNA_TRY(luna_json_parse((const char *)r.body, r.body_len, &iam_schema, &lim, &b, &je), out);
    const char *k = json_string_value(json_object_get(b, "key_id"));
    const char *t = json_string_value(json_object_get(b, "tenant_id"));
    const char *d = json_string_value(json_object_get(b, "developer_id"));
    const char *st = json_string_value(json_object_get(b, "status"));
    LUNA_TRY_ENSURE(k != NULL && t != NULL && d != NULL && st != NULL, LUNA_ERR_FORMAT, out);
    LUNA_TRY_ENSURE(strcmp(k, kid) == 0 && strlen(t) < sizeof(out->tenant) &&
                        strlen(d) < sizeof(out->developer),
                    LUNA_ERR_FORMAT, out);
    LUNA_TRY(luna_json_get_b64url(b, "public_key", out->pk, sizeof(out->pk), &n), out);
    /* IAM is asked by key id; the key it names must really have that id. */
    LUNA_TRY(luna_manifest_key_id(out->pk, derived), out);
    LUNA_TRY_ENSURE(strcmp(derived, kid) == 0, LUNA_ERR_FORMAT, out);
    memcpy(out->tenant, t, strlen(t) + 1);
    memcpy(out->developer, d, strlen(d) + 1);
    out->revoked = strcmp(st, "active") != 0;
    err = LUNA_OK;
out:
    json_decref(b);
    luna_http_result_free(&r);
    return err == LUNA_OK || err == LUNA_ERR_NOT_FOUND || err == LUNA_ERR_UNAVAILABLE
               ? err
               : LUNA_ERR_FORMAT;
}

/* ---- the table ---- */

/*
 * Every row carries an HMAC-SHA256 under the HSM's registry MAC key over
 * its canonical bytes (row_bytes, docs/kms.md "Row MACs"), so a database
 * writer who edits a reference, the tenant or the version is caught on the
 * next read that decides anything.  The MAC cannot see a row deleted or
 * put back whole as it was earlier; that is left to the audit log.
 */
#define ROW_LABEL "lunal kms deployment row v1"
#define ROW_MAC_MAX 1024u
#define DEP_COLS                                                                                   \
    "deployment_id, version, manifest_sha256, manifest, mr_enclave, mr_signer, build_hash, "     \
    "key_id, developer_id, tenant, created_at, updated_at, mac"
#define TAMPERED_CODE "deployment_row_tampered"

typedef struct dep_row {
    char id[KMS_ID_MAX + 1];
    char version[LUNA_MANIFEST_VERSION_MAX + 1];
    uint8_t digest[LUNA_SHA256_LEN]; /* SHA-256 of the stored JWS text */
    uint8_t mr_enclave[LUNA_MANIFEST_MR_ENCLAVE_MAX];
    size_t mr_enclave_len;
    uint8_t mr_signer[LUNA_MANIFEST_HASH_LEN];
    uint8_t build_hash[LUNA_MANIFEST_HASH_LEN];
    char key_id[LUNA_MANIFEST_KEY_ID_LEN + 1];
    char developer[LUNA_MANIFEST_DEV_ID_MAX + 1];
    char tenant[DEV_TENANT_MAX + 1];
    int64_t created_at;
    int64_t updated_at;
} dep_row;

typedef enum row_state {
    ROW_NONE = 0,     /* no such deployment */
    ROW_OK = 1,       /* decoded and its MAC verified */
    ROW_UNSEALED = 2, /* well-formed, no MAC: written before migration 3 */
    ROW_TAMPERED = 3, /* malformed, or a MAC that does not verify */
} row_state;

/* The MAC input: every column that matters, length-prefixed.  The JWS text
 * is bound through manifest_sha256, which load_row recomputes. */
static luna_err row_bytes(const dep_row *d, uint8_t *buf, size_t cap, size_t *len)
{
    luna_wbuf w;
    luna_wbuf_init(&w, buf, cap);
    LUNA_GUARD(kms_put_str(&w, ROW_LABEL));
    LUNA_GUARD(kms_put_str(&w, d->id));
    LUNA_GUARD(kms_put_str(&w, d->version));
    LUNA_GUARD(kms_put_lp(&w, d->digest, sizeof(d->digest)));
    LUNA_GUARD(kms_put_lp(&w, d->mr_enclave, d->mr_enclave_len));
    LUNA_GUARD(kms_put_lp(&w, d->mr_signer, sizeof(d->mr_signer)));
    LUNA_GUARD(kms_put_lp(&w, d->build_hash, sizeof(d->build_hash)));
    LUNA_GUARD(kms_put_str(&w, d->key_id));
    LUNA_GUARD(kms_put_str(&w, d->developer));
    LUNA_GUARD(kms_put_str(&w, d->tenant));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)d->created_at));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)d->updated_at));
    *len = w.len;
    return LUNA_OK;
}

/* Decodes one row (columns DEP_COLS); LUNA_ERR_FORMAT for any shape only
 * this module would never have written.  *has_mac: the tag is present. */
static luna_err row_decode(const luna_store_rows *r, dep_row *d, uint8_t mac[LUNA_HSM_MAC_LEN],
                           size_t *mac_len, bool *has_mac)
{
    const char *jws = NULL;
    size_t jl = 0, dl = 0, sl = 0, bl = 0;
    bool mac_null = false;
    uint8_t h[LUNA_SHA256_LEN];
    memset(d, 0, sizeof(*d));
    LUNA_GUARD(kms_row_text(r, 0, d->id, sizeof(d->id)));
    LUNA_GUARD(kms_row_text(r, 1, d->version, sizeof(d->version)));
    LUNA_GUARD(kms_row_blob(r, 2, d->digest, sizeof(d->digest), &dl, false));
    LUNA_GUARD(luna_store_col_text(r, 3, &jws, &jl));
    LUNA_GUARD(kms_row_blob(r, 4, d->mr_enclave, sizeof(d->mr_enclave), &d->mr_enclave_len,
                            false));
    LUNA_GUARD(kms_row_blob(r, 5, d->mr_signer, sizeof(d->mr_signer), &sl, false));
    LUNA_GUARD(kms_row_blob(r, 6, d->build_hash, sizeof(d->build_hash), &bl, false));
    LUNA_GUARD(kms_row_text(r, 7, d->key_id, sizeof(d->key_id)));
    LUNA_GUARD(kms_row_text(r, 8, d->developer, sizeof(d->developer)));
    LUNA_GUARD(kms_row_text(r, 9, d->tenant, sizeof(d->tenant)));
    LUNA_GUARD(luna_store_col_int64(r, 10, &d->created_at));
    LUNA_GUARD(luna_store_col_int64(r, 11, &d->updated_at));
    LUNA_GUARD(luna_store_col_is_null(r, 12, &mac_null));
    *has_mac = !mac_null;
    *mac_len = 0;
    if (!mac_null)
        LUNA_GUARD(kms_row_blob(r, 12, mac, LUNA_HSM_MAC_LEN, mac_len, false));
    if (dl != LUNA_SHA256_LEN || sl != LUNA_MANIFEST_HASH_LEN || bl != LUNA_MANIFEST_HASH_LEN ||
        d->mr_enclave_len < 32 || jl == 0 || jl > LUNA_MANIFEST_MAX_LEN)
        return LUNA_ERR_FORMAT;
    /* The JWS text is not under the MAC itself, its digest is. */
    LUNA_GUARD(luna_sha256(jws, jl, h));
    return luna_ct_equal(h, d->digest, sizeof(h)) ? LUNA_OK : LUNA_ERR_FORMAT;
}

/*
 * Reads the row of id.  Errors are the store's or the HSM's only; what
 * the row is worth is *st.  Nothing of a row that is not ROW_OK or
 * ROW_UNSEALED is left in *out.
 */
static luna_err load_row(kms_svc *s, const char *id, dep_row *out, row_state *st)
{
    const luna_store_param p[] = {luna_store_p_text(id)};
    luna_store_rows *rows = NULL;
    uint8_t mac[LUNA_HSM_MAC_LEN], buf[ROW_MAC_MAX];
    size_t mac_len = 0, len = 0;
    bool has = false, has_mac = false;
    luna_err err;
    memset(out, 0, sizeof(*out));
    *st = ROW_NONE;
    LUNA_TRY(luna_store_query(s->db, "SELECT " DEP_COLS " FROM kms_deployments "
                                     "WHERE deployment_id = ?1",
                              p, 1, &rows),
             out);
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    if (!has)
        goto out;
    err = row_decode(rows, out, mac, &mac_len, &has_mac);
    if (err == LUNA_ERR_FORMAT || (err == LUNA_OK && strcmp(out->id, id) != 0)) {
        *st = ROW_TAMPERED;
        err = LUNA_OK;
        goto out;
    }
    LUNA_TRY(err, out);
    if (!has_mac) {
        *st = ROW_UNSEALED;
        goto out;
    }
    if (row_bytes(out, buf, sizeof(buf), &len) != LUNA_OK) {
        *st = ROW_TAMPERED;
        goto out;
    }
    err = kms_rowmac_check(s, buf, len, mac, mac_len);
    if (err == LUNA_ERR_VERIFY) {
        *st = ROW_TAMPERED;
        err = LUNA_OK;
        goto out;
    }
    LUNA_TRY(err, out);
    *st = ROW_OK;
out:
    luna_store_rows_free(rows);
    if (err != LUNA_OK || *st == ROW_TAMPERED)
        memset(out, 0, sizeof(*out));
    return err;
}

/* A row that cannot be believed: an insider's edit, or a row of migration
 * 2 never re-registered.  Logged at the highest level and audited
 * best-effort (the refusal stands whether or not the entry is written). */
static void report_row(kms_svc *s, const kms_caller *c, const char *id, row_state st)
{
    const char *detail = st == ROW_UNSEALED ? "mac_missing" : "mac_mismatch_or_malformed";
    const char *objs[] = {id, NULL};
    LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT, "ALERT: registered deployment row refused",
              LUNA_LOG_STR("code", TAMPERED_CODE), LUNA_LOG_STR("deployment", id),
              LUNA_LOG_STR("detail", detail));
    kms_audit_best_effort(s, c, "deployment.integrity", NULL, NULL, id, objs, LUNA_AUDIT_DENIED,
                          st == ROW_UNSEALED ? TAMPERED_CODE " mac_missing" : TAMPERED_CODE);
}

luna_err kms_deploy_lookup(void *arg, const char *deployment, kms_verify_ref *out)
{
    kms_svc *s = arg;
    dep_row row;
    row_state st = ROW_NONE;
    if (s == NULL || deployment == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (!kms_id_ok(deployment, KMS_ID_MAX))
        return LUNA_ERR_NOT_FOUND;
    LUNA_GUARD(load_row(s, deployment, &row, &st));
    if (st == ROW_NONE)
        return LUNA_ERR_NOT_FOUND;
    if (st != ROW_OK) {
        report_row(s, NULL, deployment, st);
        return LUNA_ERR_VERIFY;
    }
    _Static_assert(sizeof(row.mr_enclave) <= sizeof(out->mr_enclave) &&
                       sizeof(row.mr_signer) <= sizeof(out->mr_signer),
                   "references fit kms_verify_ref");
    memcpy(out->mr_enclave, row.mr_enclave, row.mr_enclave_len);
    out->mr_enclave_len = row.mr_enclave_len;
    memcpy(out->mr_signer, row.mr_signer, sizeof(row.mr_signer));
    out->mr_signer_len = sizeof(row.mr_signer);
    return LUNA_OK;
}

typedef enum store_outcome {
    STORED_NEW = 1,
    STORED_REPLACED = 2,
    STORED_UNCHANGED = 3,
    STORED_RESEALED = 4, /* a row of migration 2, same manifest: MAC added */
} store_outcome;

typedef struct reg_in {
    const luna_manifest *m;
    const char *jws;
    const uint8_t *digest;
    const dev_key *dev;
    const kms_caller *c;
} reg_in;

/* created_at: the stored row's when it is rewritten, else now. */
static luna_err write_row(kms_svc *s, const reg_in *in, bool replace, int64_t created_at,
                          kms_why *w)
{
    const luna_manifest *m = in->m;
    dep_row d;
    uint8_t buf[ROW_MAC_MAX], mac[LUNA_HSM_MAC_LEN];
    size_t len = 0;
    memset(&d, 0, sizeof(d));
    if (strlen(m->name) >= sizeof(d.id) || m->mr_enclave_len < 32 ||
        m->mr_enclave_len > sizeof(d.mr_enclave))
        return kms_fail(w, LUNA_ERR_INVALID_ARG, 400, "bad_manifest",
                        "the manifest is malformed");
    memcpy(d.id, m->name, strlen(m->name) + 1);
    memcpy(d.version, m->version, sizeof(d.version));
    memcpy(d.digest, in->digest, sizeof(d.digest));
    memcpy(d.mr_enclave, m->mr_enclave, m->mr_enclave_len);
    d.mr_enclave_len = m->mr_enclave_len;
    memcpy(d.mr_signer, m->mr_signer, sizeof(d.mr_signer));
    memcpy(d.build_hash, m->build_hash, sizeof(d.build_hash));
    memcpy(d.key_id, m->key_id, sizeof(d.key_id));
    memcpy(d.developer, m->developer_id, sizeof(d.developer));
    memcpy(d.tenant, in->dev->tenant, sizeof(d.tenant));
    d.updated_at = kms_now(s);
    d.created_at = replace ? created_at : d.updated_at;
    LUNA_GUARD(row_bytes(&d, buf, sizeof(buf), &len));
    luna_err err = kms_rowmac_seal(s, buf, len, mac);
    if (err != LUNA_OK)
        return kms_fail_hsm(w, err);
    const luna_store_param p[] = {
        luna_store_p_text(d.id),
        luna_store_p_text(d.version),
        luna_store_p_blob(d.digest, sizeof(d.digest)),
        luna_store_p_text(in->jws),
        luna_store_p_blob(d.mr_enclave, d.mr_enclave_len),
        luna_store_p_blob(d.mr_signer, sizeof(d.mr_signer)),
        luna_store_p_blob(d.build_hash, sizeof(d.build_hash)),
        luna_store_p_text(d.key_id),
        luna_store_p_text(d.developer),
        luna_store_p_text(d.tenant),
        luna_store_p_int64(d.created_at),
        luna_store_p_int64(d.updated_at),
        luna_store_p_blob(mac, sizeof(mac)),
    };
    uint64_t changed = 0;
    if (replace)
        err = luna_store_exec(s->db,
                              "UPDATE kms_deployments SET version = ?2, manifest_sha256 = ?3,"
                              " manifest = ?4, mr_enclave = ?5, mr_signer = ?6,"
                              " build_hash = ?7, key_id = ?8, developer_id = ?9,"
                              " tenant = ?10, created_at = ?11, updated_at = ?12, mac = ?13"
                              " WHERE deployment_id = ?1",
                              p, 13, &changed);
    else
        err = luna_store_exec(s->db,
                              "INSERT INTO kms_deployments (" DEP_COLS ") VALUES (?1, ?2, ?3,"
                              " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                              p, 13, &changed);
    if (err != LUNA_OK)
        return err;
    return changed == 1 ? LUNA_OK : LUNA_ERR_STORAGE;
}

/* The transaction: decide against the stored row, audit, write, commit.
 * The audit entry is written before the commit, so nothing is stored that
 * the log does not hold. */
static luna_err store_locked(kms_svc *s, const reg_in *in, store_outcome *outcome, kms_why *w)
{
    const luna_manifest *m = in->m;
    dep_row row;
    row_state st = ROW_NONE;
    const char *objs[] = {m->name, m->key_id, NULL};
    const char *what = "registered";
    char reason[96];
    LUNA_GUARD(load_row(s, m->name, &row, &st));
    if (st == ROW_TAMPERED) {
        /* Refused, not repaired: the edited row is kept as evidence, and
           its tenant and version, which the decision below needs, cannot
           be believed.  An operator removes it (docs/kms.md). */
        report_row(s, in->c, m->name, st);
        return kms_fail(w, LUNA_ERR_VERIFY, 500, TAMPERED_CODE,
                        "the stored deployment row failed its integrity check and is refused");
    }
    /* ROW_UNSEALED (migration 2): decided on its stored tenant and version,
       as before migration 3, and written back with a MAC. */
    if (st == ROW_NONE) {
        *outcome = STORED_NEW;
    } else if (luna_ct_equal(row.digest, in->digest, LUNA_SHA256_LEN)) {
        *outcome = st == ROW_OK ? STORED_UNCHANGED : STORED_RESEALED;
        what = st == ROW_OK ? "unchanged" : "resealed";
    } else if (strcmp(row.tenant, in->dev->tenant) != 0 ||
               kms_deploy_version_cmp(m->version, row.version) <= 0) {
        return kms_fail(w, LUNA_ERR_CONFLICT, 409, "deployment_conflict",
                        "the deployment exists with another manifest of an equal or higher "
                        "version, or belongs to another tenant");
    } else {
        *outcome = STORED_REPLACED;
        what = "replaced";
    }
    (void)snprintf(reason, sizeof(reason), "%s version=%.*s", what,
                   (int)LUNA_MANIFEST_VERSION_MAX, m->version);
    if (kms_audit(s, in->c, "deployment.register", in->dev->tenant, NULL, m->name, objs,
                  LUNA_AUDIT_SUCCESS, reason) != LUNA_OK)
        return kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "audit_unavailable",
                        "the audit log could not record the registration");
    if (*outcome == STORED_UNCHANGED)
        return LUNA_OK;
    return write_row(s, in, *outcome != STORED_NEW, row.created_at, w);
}

static luna_err store(kms_svc *s, const reg_in *in, store_outcome *outcome, kms_why *w)
{
    luna_err err = LUNA_OK;
    for (int attempt = 0; attempt < KMS_TX_ATTEMPTS; attempt++) {
        err = kms_db_begin(s->db);
        if (err != LUNA_OK)
            return kms_fail_store(w, err);
        err = store_locked(s, in, outcome, w);
        if (err == LUNA_OK)
            err = luna_store_commit(s->db);
        else
            kms_db_abort(s->db);
        if (err == LUNA_OK || !kms_db_retryable(s->db, err))
            break;
    }
    if (err != LUNA_OK && (w == NULL || w->status == 0))
        return kms_fail_store(w, err);
    return err;
}

/* ---- the route ---- */

static void reply(luna_http_request *req, int status, const luna_manifest *m)
{
    char enc[LUNA_MANIFEST_MR_ENCLAVE_MAX * 2 + 1], sig[LUNA_MANIFEST_HASH_LEN * 2 + 1];
    if (luna_hex_encode(m->mr_enclave, m->mr_enclave_len, enc, sizeof(enc)) != LUNA_OK ||
        luna_hex_encode(m->mr_signer, sizeof(m->mr_signer), sig, sizeof(sig)) != LUNA_OK) {
        luna_http_reply_error(req, 500, "internal", "encoding failed");
        return;
    }
    json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s}", "deployment_id", m->name, "version",
                          m->version, "mr_enclave", enc, "mr_signer", sig, "key_id", m->key_id);
    if (r == NULL) {
        luna_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    luna_http_reply_json(req, status, r);
    json_decref(r);
}

static void refuse(kms_http *h, luna_http_request *req, const kms_caller *c, const char *dep,
                   int status, const char *code, const char *message)
{
    kms_audit_best_effort(h->svc, c, "deployment.register", NULL, NULL, dep, NULL,
                          LUNA_AUDIT_DENIED, code);
    luna_http_reply_error(req, status, code, message);
}

void kms_deploy_http(luna_http_request *req, void *arg)
{
    kms_http *h = arg;
    kms_caller c;
    kms_why w = {0};
    dev_key dev;
    luna_manifest m;
    char kid[LUNA_MANIFEST_KEY_ID_LEN + 1];
    uint8_t digest[LUNA_SHA256_LEN], mrs[LUNA_MANIFEST_HASH_LEN];
    char derived[LUNA_MANIFEST_KEY_ID_LEN + 1];
    const uint8_t *data = NULL;
    size_t len = 0;
    json_t *body = NULL;
    luna_json_error je;
    memset(&c, 0, sizeof(c));
    memset(&dev, 0, sizeof(dev));
    memset(&m, 0, sizeof(m));
    c.identity = luna_http_request_identity(req);
    c.request_id = luna_http_request_id(req);
    luna_json_limits lim = {.max_bytes = LUNA_MANIFEST_MAX_LEN + 64u,
                            .max_string = LUNA_MANIFEST_MAX_LEN};
    if (luna_http_request_body(req, &data, &len) != LUNA_OK ||
        luna_json_parse((const char *)data, len, &body_schema, &lim, &body, &je) != LUNA_OK) {
        luna_http_reply_error(req, 400, "invalid_body", "the body failed its schema");
        goto done;
    }
    const char *jws = json_string_value(json_object_get(body, "manifest"));
    size_t jws_len = jws != NULL ? strlen(jws) : 0;
    if (jws == NULL || !kms_deploy_peek_kid(jws, kid)) {
        refuse(h, req, &c, NULL, 400, "bad_manifest", "the manifest is not a canonical JWS");
        goto done;
    }
    if (h->iam.host == NULL) {
        luna_http_reply_error(req, 503, "iam_not_configured",
                              "this KMS has no IAM endpoint (kms.iam)");
        goto done;
    }
    luna_err err = fetch_key(&h->iam, kid, &dev);
    if (err == LUNA_ERR_NOT_FOUND) {
        refuse(h, req, &c, NULL, 404, "unknown_developer_key", "IAM knows no such developer key");
        goto done;
    }
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT, "developer key lookup failed",
                  LUNA_LOG_ERR("error", err));
        luna_http_reply_error(req, err == LUNA_ERR_UNAVAILABLE ? 503 : 502, "iam_unavailable",
                              "IAM could not be asked for the developer key");
        goto done;
    }
    if (dev.revoked) {
        refuse(h, req, &c, NULL, 403, "developer_key_revoked",
               "the developer key is revoked or its principal disabled");
        goto done;
    }
    err = luna_manifest_verify(jws, jws_len, dev.developer, dev.pk, &m);
    if (err == LUNA_ERR_FORMAT || err == LUNA_ERR_TOO_LARGE) {
        refuse(h, req, &c, NULL, 400, "bad_manifest", "the manifest is malformed");
        goto done;
    }
    /* luna_manifest_verify pins both already; checked again here because
       the stored references must come from this key and nothing else. */
    if (err == LUNA_OK && (luna_manifest_mr_signer(dev.pk, mrs) != LUNA_OK ||
                           luna_manifest_key_id(dev.pk, derived) != LUNA_OK ||
                           !luna_ct_equal(mrs, m.mr_signer, sizeof(mrs)) ||
                           strcmp(derived, m.key_id) != 0))
        err = LUNA_ERR_PERMISSION;
    if (err != LUNA_OK) {
        refuse(h, req, &c, NULL, 422, "bad_signature",
               "the manifest is not signed by the developer key it names");
        goto done;
    }
    if (kms_verify_configured(h->svc->ver, m.name)) {
        refuse(h, req, &c, m.name, 409, "deployment_conflict",
               "a deployment of this name is configured on the KMS");
        goto done;
    }
    if (luna_sha256(jws, jws_len, digest) != LUNA_OK) {
        luna_http_reply_error(req, 500, "internal", "hash failed");
        goto done;
    }
    reg_in in = {&m, jws, digest, &dev, &c};
    store_outcome outcome = STORED_NEW;
    err = store(h->svc, &in, &outcome, &w);
    if (err != LUNA_OK) {
        if (w.code != NULL && (strcmp(w.code, "deployment_conflict") == 0 ||
                               strcmp(w.code, TAMPERED_CODE) == 0))
            kms_audit_best_effort(h->svc, &c, "deployment.register", dev.tenant, NULL, m.name,
                                  NULL, LUNA_AUDIT_DENIED, w.code);
        luna_http_reply_error(req, w.status != 0 ? w.status : luna_http_status_for_err(err),
                              w.code != NULL ? w.code : luna_errname(err),
                              w.message != NULL ? w.message : luna_strerror(err));
        goto done;
    }
    LUNA_LOGF(LUNA_LOG_INFO, KMS_COMPONENT, "deployment registered",
              LUNA_LOG_STR("deployment", m.name), LUNA_LOG_STR("version", m.version),
              LUNA_LOG_STR("tenant", dev.tenant));
    reply(req, outcome == STORED_UNCHANGED || outcome == STORED_RESEALED ? 200 : 201, &m);
done:
    json_decref(body);
}
