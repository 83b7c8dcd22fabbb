/*
 * att_deployments.c - deployments registered at run time (DESIGN.md 3a,
 * docs/attestation.md "Registered deployments"): a developer's signed
 * manifest is checked against the key IAM holds for it, forwarded to the
 * KMS (which checks it again), stored, and from then on appraised exactly
 * like a configured deployment, through a second verifier built from the
 * same settings with the registered reference values.
 *
 * Must never: take a key from the manifest, let a caller register another
 * developer's manifest (platform admin excepted), replace a configured
 * deployment or another developer's, keep a deployment the KMS or the
 * audit log refused, or trust a stored row without re-verifying it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luna/bytes.h"
#include "luna/log.h"
#include "luna/manifest.h"

#include "att.h"

typedef struct att_reg_row {
    att_deployment d;
    char tenant[ATT_TENANT_MAX + 1];
    char registered_by[LUNA_PKI_IDENTITY_MAX + 1];
    int64_t registered_at;
    char *manifest; /* the JWS as registered (idempotence is byte equality) */
} att_reg_row;

struct att_deps {
    pthread_rwlock_t lock;     /* rows, n and v */
    pthread_mutex_t reg_lock;  /* one registration at a time, end to end */
    att_reg_row rows[ATT_MAX_DEPLOYMENTS];
    size_t n;
    luna_verifier *v;          /* NULL while nothing is registered */
};

/* ---- manifests ---- */

/* The kid of the canonical header {"alg":"EdDSA","kid":"<47>",...}; the
   verifier checks the whole header again, this only finds the key. */
luna_err att_deps_manifest_kid(const char *jws, char kid[LUNA_MANIFEST_KEY_ID_LEN + 1])
{
    static const char pre[] = "{\"alg\":\"EdDSA\",\"kid\":\"";
    const char *dot = strchr(jws, '.');
    uint8_t hdr[160];
    size_t n = 0;

    if (dot == NULL || (size_t)(dot - jws) > 200 ||
        luna_b64url_decode(jws, (size_t)(dot - jws), hdr, sizeof hdr, &n) != LUNA_OK)
        return LUNA_ERR_FORMAT;
    if (n < sizeof pre - 1 + LUNA_MANIFEST_KEY_ID_LEN + 1 ||
        memcmp(hdr, pre, sizeof pre - 1) != 0 || hdr[sizeof pre - 1 + LUNA_MANIFEST_KEY_ID_LEN] != '"')
        return LUNA_ERR_FORMAT;
    for (size_t i = 0; i < LUNA_MANIFEST_KEY_ID_LEN; i++) {
        uint8_t ch = hdr[sizeof pre - 1 + i];
        /* lowercase hex pairs joined by ':' (the exact layout: IAM lookup) */
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || ch == ':'))
            return LUNA_ERR_FORMAT;
    }
    memcpy(kid, hdr + sizeof pre - 1, LUNA_MANIFEST_KEY_ID_LEN);
    kid[LUNA_MANIFEST_KEY_ID_LEN] = '\0';
    return LUNA_OK;
}

/* The appraisal's view of a verified manifest. */
static luna_err to_deployment(const luna_manifest *m, const att_dev_key *k, att_deployment *d)
{
    memset(d, 0, sizeof *d);
    if (m->mr_enclave_len != ATT_MEASUREMENT_LEN || !att_deployment_id_ok(m->name))
        return LUNA_ERR_UNSUPPORTED;
    snprintf(d->id, sizeof d->id, "%s", m->name);
    snprintf(d->version, sizeof d->version, "%s", m->version);
    memcpy(d->mr_enclave, m->mr_enclave, ATT_MEASUREMENT_LEN);
    memcpy(d->mr_signer, m->mr_signer, ATT_MEASUREMENT_LEN);
    memcpy(d->build_hash, "sha256:", 7);
    LUNA_GUARD(luna_hex_encode(m->build_hash, sizeof m->build_hash, d->build_hash + 7,
                               sizeof d->build_hash - 7));
    snprintf(d->developer_id, sizeof d->developer_id, "%s", m->developer_id);
    snprintf(d->developer_name, sizeof d->developer_name, "%s", k->display_name);
    snprintf(d->key_id, sizeof d->key_id, "%s", m->key_id);
    return LUNA_OK;
}

/*
 * Version order (the KMS's, docs/attestation.md): dot-separated segments
 * compared in turn, numerically when both are digits only (no leading
 * zeros matter), else bytewise; a version that extends an equal prefix is
 * the higher.  <0, 0, >0.
 */
int att_deps_version_cmp(const char *a, const char *b)
{
    while (*a != '\0' || *b != '\0') {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        bool na = la > 0 && strspn(a, "0123456789") >= la;
        bool nb = lb > 0 && strspn(b, "0123456789") >= lb;
        int c;
        if (la == 0 && *a == '\0')
            return -1;
        if (lb == 0 && *b == '\0')
            return 1;
        if (na && nb) {
            const char *pa = a, *pb = b;
            size_t ea = la, eb = lb;
            while (ea > 1 && *pa == '0') {
                pa++;
                ea--;
            }
            while (eb > 1 && *pb == '0') {
                pb++;
                eb--;
            }
            c = ea != eb ? (ea < eb ? -1 : 1) : memcmp(pa, pb, ea);
        } else {
            c = memcmp(a, b, la < lb ? la : lb);
            if (c == 0 && la != lb)
                c = la < lb ? -1 : 1;
        }
        if (c != 0)
            return c;
        a += la;
        b += lb;
        if (*a == '.')
            a++;
        if (*b == '.')
            b++;
    }
    return 0;
}

/* ---- the registered verifier ---- */

/* A verifier for rows[0..n): the configured settings with only these
   deployments, so anchors, collateral and freshness are the same. */
static luna_err build_verifier(att_service *svc, const att_reg_row *rows, size_t n,
                               luna_verifier **out)
{
    att_settings *s;
    char msg[ATT_MSG_MAX];
    luna_err err;

    *out = NULL;
    if (n == 0)
        return LUNA_OK;
    s = malloc(sizeof *s);
    if (s == NULL)
        return LUNA_ERR_NOMEM;
    *s = *svc->s;
    s->n_deployments = n;
    for (size_t i = 0; i < n; i++)
        s->deployments[i] = rows[i].d;
    err = att_policy_build(s, out, msg, sizeof msg);
    free(s);
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "registered deployments: verifier not built",
                  LUNA_LOG_STR("why", msg), LUNA_LOG_ERR("error", err));
    return err;
}

static void row_clear(att_reg_row *r)
{
    free(r->manifest);
    memset(r, 0, sizeof *r);
}

static att_reg_row *row_find(struct att_deps *d, const char *id)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->rows[i].d.id, id) == 0)
            return &d->rows[i];
    return NULL;
}

/* ---- storage ---- */

static luna_err db_put(luna_store *db, const att_reg_row *r, const uint8_t pk[ATT_KEY_LEN],
                       const char *manifest)
{
    luna_store_param p[9] = {
        luna_store_p_text(r->d.id),          luna_store_p_text(r->d.version),
        luna_store_p_text(r->tenant),        luna_store_p_text(r->d.developer_id),
        luna_store_p_text(r->d.developer_name), luna_store_p_blob(pk, ATT_KEY_LEN),
        luna_store_p_text(manifest),         luna_store_p_text(r->registered_by),
        luna_store_p_int64(r->registered_at),
    };
    return luna_store_exec(
        db,
        "INSERT INTO att_deployments (deployment_id, version, tenant_id, developer_id, "
        "developer_name, public_key, manifest, registered_by, registered_at) VALUES (?1, ?2, ?3, "
        "?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (deployment_id) DO UPDATE SET version = "
        "excluded.version, tenant_id = excluded.tenant_id, developer_id = excluded.developer_id, "
        "developer_name = excluded.developer_name, public_key = excluded.public_key, manifest = "
        "excluded.manifest, registered_by = excluded.registered_by, registered_at = "
        "excluded.registered_at",
        p, 9, NULL);
}

static luna_err col_copy(luna_store_rows *rows, size_t col, char *out, size_t cap)
{
    const char *s;
    size_t len;
    LUNA_GUARD(luna_store_col_text(rows, col, &s, &len));
    LUNA_ENSURE(len < cap && strlen(s) == len, LUNA_ERR_STORAGE);
    memcpy(out, s, len + 1);
    return LUNA_OK;
}

/* One stored row, re-verified: a row whose manifest does not verify under
   its stored developer key is skipped and reported, never appraised. */
static luna_err load_row(luna_store_rows *rows, att_reg_row *r)
{
    att_dev_key k;
    luna_manifest m;
    const char *text;
    const uint8_t *pk;
    size_t len;

    memset(r, 0, sizeof *r);
    memset(&k, 0, sizeof k);
    LUNA_GUARD(col_copy(rows, 0, r->tenant, sizeof r->tenant));
    LUNA_GUARD(col_copy(rows, 1, k.developer_id, sizeof k.developer_id));
    LUNA_GUARD(col_copy(rows, 2, k.display_name, sizeof k.display_name));
    LUNA_GUARD(luna_store_col_blob(rows, 3, &pk, &len));
    LUNA_ENSURE(len == ATT_KEY_LEN, LUNA_ERR_STORAGE);
    memcpy(k.public_key, pk, ATT_KEY_LEN);
    LUNA_GUARD(luna_store_col_text(rows, 4, &text, &len));
    LUNA_ENSURE(len <= LUNA_MANIFEST_MAX_LEN, LUNA_ERR_STORAGE);
    LUNA_GUARD(col_copy(rows, 5, r->registered_by, sizeof r->registered_by));
    LUNA_GUARD(luna_store_col_int64(rows, 6, &r->registered_at));
    LUNA_GUARD(luna_manifest_verify(text, len, k.developer_id, k.public_key, &m));
    LUNA_GUARD(to_deployment(&m, &k, &r->d));
    r->manifest = malloc(len + 1);
    if (r->manifest == NULL)
        return LUNA_ERR_NOMEM;
    memcpy(r->manifest, text, len);
    r->manifest[len] = '\0';
    return LUNA_OK;
}

luna_err att_deps_open(att_service *svc, char *msg, size_t msg_cap)
{
    struct att_deps *d = calloc(1, sizeof *d);
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has = false;

    msg[0] = '\0';
    if (d == NULL)
        return LUNA_ERR_NOMEM;
    pthread_rwlock_init(&d->lock, NULL);
    pthread_mutex_init(&d->reg_lock, NULL);
    svc->deps = d;
    err = luna_store_query(svc->db,
                           "SELECT tenant_id, developer_id, developer_name, public_key, manifest, "
                           "registered_by, registered_at FROM att_deployments ORDER BY "
                           "deployment_id",
                           NULL, 0, &rows);
    while (err == LUNA_OK && (err = luna_store_rows_next(rows, &has)) == LUNA_OK && has) {
        if (d->n >= ATT_MAX_DEPLOYMENTS) {
            err = LUNA_ERR_TOO_LARGE;
            break;
        }
        att_reg_row *r = &d->rows[d->n];
        luna_err e = load_row(rows, r);
        if (e == LUNA_OK && att_settings_deployment(svc->s, r->d.id) != NULL)
            e = LUNA_ERR_CONFLICT; /* configured later under the same id: config wins */
        if (e != LUNA_OK) {
            LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT,
                      "a stored registered deployment is not appraised",
                      LUNA_LOG_ERR("error", e));
            row_clear(r);
            continue;
        }
        d->n++;
    }
    luna_store_rows_free(rows);
    if (err == LUNA_OK)
        err = build_verifier(svc, d->rows, d->n, &d->v);
    if (err != LUNA_OK)
        snprintf(msg, msg_cap, "registered deployments: %s", luna_strerror(err));
    return err;
}

void att_deps_close(att_service *svc)
{
    struct att_deps *d = svc->deps;
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        row_clear(&d->rows[i]);
    att_policy_free(d->v);
    pthread_rwlock_destroy(&d->lock);
    pthread_mutex_destroy(&d->reg_lock);
    free(d);
    svc->deps = NULL;
}

/* ---- lookups ---- */

bool att_deps_find(att_service *svc, const char *id, att_deployment *out)
{
    const att_deployment *c = att_settings_deployment(svc->s, id);
    bool found = false;
    if (c != NULL) {
        *out = *c;
        return true;
    }
    if (svc->deps == NULL)
        return false;
    pthread_rwlock_rdlock(&svc->deps->lock);
    const att_reg_row *r = row_find(svc->deps, id);
    if (r != NULL) {
        *out = r->d;
        found = true;
    }
    pthread_rwlock_unlock(&svc->deps->lock);
    return found;
}

luna_err att_deps_appraise(att_service *svc, int type, const uint8_t *ev, size_t ev_len,
                           const char *deployment, const uint8_t nonce[ATT_NONCE_LEN],
                           int64_t now, att_appraisal *a)
{
    luna_err err;
    if (svc->deps == NULL || att_settings_deployment(svc->s, deployment) != NULL)
        return att_appraise(svc->verifier, type, ev, ev_len, deployment, nonce, now, a);
    /* The read lock spans the verification: a registration swaps the
       verifier only when no appraisal uses it. */
    pthread_rwlock_rdlock(&svc->deps->lock);
    if (svc->deps->v != NULL && row_find(svc->deps, deployment) != NULL)
        err = att_appraise(svc->deps->v, type, ev, ev_len, deployment, nonce, now, a);
    else /* unknown everywhere: the configured verifier refuses it with its reason */
        err = att_appraise(svc->verifier, type, ev, ev_len, deployment, nonce, now, a);
    pthread_rwlock_unlock(&svc->deps->lock);
    return err;
}

void att_deps_refresh(att_service *svc)
{
    if (svc->deps == NULL)
        return;
    pthread_rwlock_rdlock(&svc->deps->lock);
    if (svc->deps->v != NULL && att_policy_refresh(svc->s, svc->deps->v) != LUNA_OK)
        luna_log(LUNA_LOG_WARN, ATT_COMPONENT, "registered deployments: collateral refresh failed",
                 NULL, 0);
    pthread_rwlock_unlock(&svc->deps->lock);
}

/* ---- listing ---- */

static json_t *deployment_json(const att_deployment *d, const char *source)
{
    char enc[2 * ATT_MEASUREMENT_LEN + 1], sig[2 * ATT_MEASUREMENT_LEN + 1];
    if (luna_hex_encode(d->mr_enclave, ATT_MEASUREMENT_LEN, enc, sizeof enc) != LUNA_OK ||
        luna_hex_encode(d->mr_signer, ATT_MEASUREMENT_LEN, sig, sizeof sig) != LUNA_OK)
        return NULL;
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "deployment_id", d->id, "version",
                     d->version, "source", source, "mr_enclave", enc, "mr_signer", sig,
                     "build_hash", d->build_hash, "developer_id", d->developer_id, "key_id",
                     d->key_id);
}

json_t *att_deps_list(att_service *svc, const char *tenant)
{
    json_t *items = json_array(), *o;
    bool ok = items != NULL;

    /* Configured deployments belong to the platform: every reader sees them. */
    for (size_t i = 0; ok && i < svc->s->n_deployments; i++) {
        o = deployment_json(&svc->s->deployments[i], "configured");
        ok = o != NULL && json_array_append_new(items, o) == 0;
    }
    if (ok && svc->deps != NULL) {
        pthread_rwlock_rdlock(&svc->deps->lock);
        for (size_t i = 0; ok && i < svc->deps->n; i++) {
            const att_reg_row *r = &svc->deps->rows[i];
            if (tenant != NULL && strcmp(tenant, r->tenant) != 0)
                continue;
            o = deployment_json(&r->d, "registered");
            ok = o != NULL && json_object_set_new(o, "tenant_id", json_string(r->tenant)) == 0 &&
                 json_object_set_new(o, "registered_at", json_integer(r->registered_at)) == 0 &&
                 json_array_append_new(items, o) == 0;
        }
        pthread_rwlock_unlock(&svc->deps->lock);
    }
    if (!ok) {
        json_decref(items);
        return NULL;
    }
    return json_pack("{s:o}", "deployments", items);
}

/* ---- registration ---- */

static void answer_err(att_answer *ans, int status, const char *code, const char *message)
{
    ans->status = status;
    ans->body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
}

/* What the checks before the KMS decided. */
typedef struct reg_plan {
    att_reg_row row;
    att_dev_key key;
    bool replace; /* an older version of the same developer's deployment */
    bool same;    /* byte-identical re-registration */
} reg_plan;

/*
 * Every check that needs no write: the key IAM holds, who may register,
 * the signature, the id and version rules.  0 = go on, else *ans is set.
 */
static int plan_register(att_worker *w, const char *jws, const att_reg_caller *c, reg_plan *p,
                         att_answer *ans)
{
    att_service *svc = w->svc;
    char kid[LUNA_MANIFEST_KEY_ID_LEN + 1], sub[LUNA_PKI_IDENTITY_MAX + 1];
    luna_manifest m;
    luna_err err;
    size_t len = strlen(jws);

    if (len > LUNA_MANIFEST_MAX_LEN || att_deps_manifest_kid(jws, kid) != LUNA_OK) {
        answer_err(ans, 400, "bad_manifest", "not a deployment manifest (docs/manifest.md)");
        return -1;
    }
    err = att_iam_developer_key(&svc->peers, kid, &p->key);
    if (err == LUNA_ERR_INVALID_ARG) {
        answer_err(ans, 400, "bad_manifest", "the manifest's key id is malformed");
        return -1;
    }
    if (err == LUNA_ERR_NOT_FOUND) {
        answer_err(ans, 404, "unknown_developer_key", "IAM knows no developer key with this id");
        return -1;
    }
    if (err != LUNA_OK) {
        answer_err(ans, 503, "iam_unavailable", "the developer key could not be looked up");
        return -1;
    }
    /* Who before what: a caller learns nothing more about another
       developer's key than that it exists. */
    snprintf(sub, sizeof sub, "%s/%s", p->key.tenant, p->key.developer_id);
    if (!c->platform && (strcmp(c->tenant, p->key.tenant) != 0 || strcmp(c->sub, sub) != 0)) {
        answer_err(ans, 403, "forbidden", "a developer registers only its own manifests");
        return -1;
    }
    if (p->key.revoked) {
        answer_err(ans, 403, "developer_key_revoked", "the signing key is revoked in IAM");
        return -1;
    }
    err = luna_manifest_verify(jws, len, p->key.developer_id, p->key.public_key, &m);
    if (err == LUNA_ERR_VERIFY || err == LUNA_ERR_PERMISSION) {
        answer_err(ans, 422, "bad_signature",
                   "the manifest is not signed by the developer key it names");
        return -1;
    }
    if (err != LUNA_OK) {
        answer_err(ans, 400, "bad_manifest", "not a canonical deployment manifest");
        return -1;
    }
    if (to_deployment(&m, &p->key, &p->row.d) != LUNA_OK) {
        answer_err(ans, 400, "bad_manifest",
                   "this platform appraises 32-byte measurements (sim, SGX) only");
        return -1;
    }
    if (att_settings_deployment(svc->s, p->row.d.id) != NULL) {
        answer_err(ans, 409, "deployment_conflict", "a configured deployment has this id");
        return -1;
    }
    snprintf(p->row.tenant, sizeof p->row.tenant, "%s", p->key.tenant);
    snprintf(p->row.registered_by, sizeof p->row.registered_by, "%s", c->sub);
    p->row.registered_at = (int64_t)time(NULL);

    struct att_deps *d = svc->deps;
    int rc = 0;
    pthread_rwlock_rdlock(&d->lock);
    const att_reg_row *old = row_find(d, p->row.d.id);
    if (old == NULL) {
        if (d->n >= ATT_MAX_DEPLOYMENTS) {
            answer_err(ans, 409, "deployment_limit", "no room for another deployment");
            rc = -1;
        }
    } else if (strcmp(old->tenant, p->row.tenant) != 0 ||
               strcmp(old->d.developer_id, p->row.d.developer_id) != 0) {
        answer_err(ans, 409, "deployment_conflict", "another developer owns this deployment id");
        rc = -1;
    } else if (strcmp(old->manifest, jws) == 0) {
        p->same = true;
    } else if (att_deps_version_cmp(p->row.d.version, old->d.version) > 0) {
        p->replace = true;
    } else {
        answer_err(ans, 409, "deployment_conflict",
                   "a different manifest with this or a higher version is registered");
        rc = -1;
    }
    pthread_rwlock_unlock(&d->lock);
    return rc;
}

/* Puts the planned row in the table and swaps in a verifier that has it. */
static luna_err install(att_service *svc, reg_plan *p, const char *jws)
{
    struct att_deps *d = svc->deps;
    att_reg_row *rows = calloc(ATT_MAX_DEPLOYMENTS, sizeof *rows);
    luna_verifier *v = NULL, *old_v;
    size_t n, at;
    luna_err err;

    if (rows == NULL)
        return LUNA_ERR_NOMEM;
    /* Registrations are serialised by reg_lock: the table cannot change
       under us, only appraisals read it meanwhile. */
    pthread_rwlock_rdlock(&d->lock);
    n = d->n;
    memcpy(rows, d->rows, n * sizeof *rows);
    pthread_rwlock_unlock(&d->lock);
    for (at = 0; at < n && strcmp(rows[at].d.id, p->row.d.id) != 0; at++)
        ;
    rows[at] = p->row;
    err = build_verifier(svc, rows, at == n ? n + 1 : n, &v);
    free(rows);
    if (err != LUNA_OK)
        return err;
    char *copy = strdup(jws);
    if (copy == NULL) {
        att_policy_free(v);
        return LUNA_ERR_NOMEM;
    }
    pthread_rwlock_wrlock(&d->lock);
    if (at == d->n)
        d->n++;
    else
        free(d->rows[at].manifest);
    d->rows[at] = p->row;
    d->rows[at].manifest = copy;
    old_v = d->v;
    d->v = v;
    pthread_rwlock_unlock(&d->lock);
    att_policy_free(old_v);
    return LUNA_OK;
}

static void answer_ok(att_answer *ans, int status, const att_deployment *d)
{
    json_t *o = deployment_json(d, "registered");
    ans->status = status;
    ans->body = o;
    if (o == NULL)
        answer_err(ans, 500, "internal", "no answer");
}

void att_deps_register(att_worker *w, const char *manifest, const att_reg_caller *c,
                       const char *request_id, att_answer *ans)
{
    att_service *svc = w->svc;
    reg_plan *p = calloc(1, sizeof *p);
    char code[ATT_REASON_MAX];
    int kms_status = 0;
    luna_err err;

    memset(ans, 0, sizeof *ans);
    if (p == NULL || svc->deps == NULL) {
        free(p);
        answer_err(ans, 500, "internal", "out of memory");
        return;
    }
    pthread_mutex_lock(&svc->deps->reg_lock);
    if (plan_register(w, manifest, c, p, ans) != 0)
        goto out;
    /* Fail closed: nothing happens that the log did not record first. */
    err = att_audit(&svc->peers, c->sub, "deployment.register", "", p->row.d.id,
                    p->row.d.version, true, false, p->same ? "unchanged" : "", request_id);
    if (err != LUNA_OK) {
        answer_err(ans, 503, "audit_unavailable", "the audit log did not record the request");
        goto out;
    }
    /* The KMS checks the manifest itself; what it refuses we do not keep. */
    err = att_kms_register_deployment(&svc->peers, manifest, &kms_status, code);
    if (err != LUNA_OK || kms_status >= 500 || kms_status < 200) {
        answer_err(ans, 503, "kms_unavailable", "the KMS did not take the deployment");
        goto out;
    }
    if (kms_status >= 300) {
        att_logged(att_audit(&svc->peers, c->sub, "deployment.register", "", p->row.d.id,
                             p->row.d.version, true, true, "kms_refused", request_id));
        answer_err(ans, kms_status, code[0] != '\0' ? code : "kms_refused",
                   "the KMS refused the deployment");
        goto out;
    }
    if (!p->same) {
        err = db_put(w->db, &p->row, p->key.public_key, manifest);
        if (err == LUNA_OK)
            err = install(svc, p, manifest);
        if (err != LUNA_OK) {
            /* The KMS has it: a retry of the same manifest is idempotent there. */
            LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "registered deployment not stored",
                      LUNA_LOG_STR("deployment_id", p->row.d.id), LUNA_LOG_ERR("error", err));
            answer_err(ans, 503, "storage_unavailable", "the deployment was not stored; retry");
            goto out;
        }
        LUNA_LOGF(LUNA_LOG_INFO, ATT_COMPONENT, "deployment registered",
                  LUNA_LOG_STR("deployment_id", p->row.d.id),
                  LUNA_LOG_STR("version", p->row.d.version),
                  LUNA_LOG_STR("replaced", p->replace ? "yes" : "no"));
    }
    answer_ok(ans, p->same ? 200 : 201, &p->row.d);
out:
    pthread_mutex_unlock(&svc->deps->reg_lock);
    free(p);
}
