/*
 * kms_otk.c - one-time keys (DESIGN.md section 3, steps 4-6;
 * docs/protocol.md "one-time key release").
 *
 * Issue: the client's token is checked, the OTK is generated in the HSM
 * and stored only sealed under the tenant's OTK key (AAD binding the OTK
 * id, tenant, job, TEE, deployment, request id, client key and expiry, so
 * a row edited to point elsewhere no longer opens), and returned
 * HPKE-sealed to the client key.
 *
 * Release: only when (a) the registry row is authentic, active and
 * authorized for the OTK's tenant and deployment; (b) the attestation
 * service's signed report verifies, is fresh and names the same keys and
 * measurement; (c) the KMS's own verification of the raw evidence passes
 * over the single-use nonce it issued for this TEE and OTK; (d) the OTK is
 * bound to this TEE, unexpired and never released.  The release is one
 * conditional UPDATE committed together with its audit entry: under any
 * number of concurrent callers on any number of instances exactly one
 * commits, and none does when the audit entry cannot be written.
 *
 * Must never: release before the commit, keep the plaintext OTK past the
 * call, release to a key other than the registry's attested tee_kx_pk, or
 * accept a report in place of the KMS's own evidence check.
 */
#include <stdio.h>
#include <string.h>

#include "kms.h"
#include "kms_verify.h"
#include "luna/log.h"

#define AAD_MAX 512u
#define INFO_MAX 256u
#define TEE_PREFIX "lunal://tee/"

typedef struct otk_row {
    char otk_id[KMS_OTK_ID_LEN + 1];
    char tenant[KMS_ID_MAX + 1];
    char job[KMS_ID_MAX + 1];
    char tee_id[KMS_ID_MAX + 1];
    char deployment[KMS_ID_MAX + 1];
    char request_id[KMS_ID_MAX + 1];
    uint8_t client_pk[32];
    int64_t key_version;
    uint8_t sealed[LUNA_HSM_SEALED_KEY_LEN];
    char state[16];
    int64_t expires_at;
} otk_row;

static luna_err otk_aad(const otk_row *o, uint8_t *buf, size_t cap, size_t *len)
{
    luna_wbuf w;
    luna_wbuf_init(&w, buf, cap);
    LUNA_GUARD(kms_put_str(&w, "lunal kms otk v1"));
    LUNA_GUARD(kms_put_str(&w, o->otk_id));
    LUNA_GUARD(kms_put_str(&w, o->tenant));
    LUNA_GUARD(kms_put_str(&w, o->job));
    LUNA_GUARD(kms_put_str(&w, o->tee_id));
    LUNA_GUARD(kms_put_str(&w, o->deployment));
    LUNA_GUARD(kms_put_str(&w, o->request_id));
    LUNA_GUARD(luna_write_bytes(&w, o->client_pk, 32));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)o->expires_at));
    *len = w.len;
    return LUNA_OK;
}

/* info = label || u8 len || field ... (docs/protocol.md). */
static luna_err info_build(const char *label, const char *const *fields, uint8_t *buf,
                           size_t cap, size_t *len)
{
    luna_wbuf w;
    luna_wbuf_init(&w, buf, cap);
    LUNA_GUARD(luna_write_bytes(&w, label, strlen(label)));
    for (size_t i = 0; fields[i] != NULL; i++) {
        size_t n = strlen(fields[i]);
        if (n > 255)
            return LUNA_ERR_TOO_LARGE;
        LUNA_GUARD(luna_write_u8(&w, (uint8_t)n));
        LUNA_GUARD(luna_write_bytes(&w, fields[i], n));
    }
    *len = w.len;
    return LUNA_OK;
}

static bool tee_identity_ok(const kms_caller *c, const char *tee_id)
{
    size_t pl = sizeof(TEE_PREFIX) - 1;
    return c->identity != NULL && strncmp(c->identity, TEE_PREFIX, pl) == 0 &&
           strcmp(c->identity + pl, tee_id) == 0;
}

static luna_err deny_audit(kms_svc *s, const kms_caller *c, const char *op, const char *tenant,
                           const char *tee, const char *dep, const char *otk, kms_why *w)
{
    const char *objs[] = {otk, NULL};
    kms_audit_best_effort(s, c, op, tenant, tee, dep, otk != NULL ? objs : NULL, LUNA_AUDIT_DENIED,
                    w != NULL && w->code != NULL ? w->code : "refused");
    return LUNA_OK;
}

luna_err kms_otk_issue(kms_svc *s, const kms_caller *c, const kms_otk_issue_in *in,
                       kms_otk_issue_out *out, kms_why *w)
{
    otk_row o;
    kms_tee t;
    uint8_t wrapped[LUNA_HSM_WRAPPED_LEN], aad[AAD_MAX], info[INFO_MAX], key[KMS_KEY_LEN];
    size_t aad_len = 0, info_len = 0;
    luna_err err;
    memset(&o, 0, sizeof(o));
    if (!c->has_token || (c->roles & KMS_ROLE_CLIENT) == 0)
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "permission_denied",
                        "the token's roles do not allow one-time keys");
    if (!kms_id_ok(in->tee_id, KMS_ID_MAX) || !kms_id_ok(in->job, KMS_ID_MAX) ||
        !kms_id_ok(in->request_id, KMS_ID_MAX))
        return kms_fail(w, LUNA_ERR_FORMAT, 400, "invalid_request", "malformed identifier");
    if (!kms_caller_job_ok(c, in->job))
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "job_not_allowed",
                        "the token does not allow this job");
    err = kms_tee_load(s, in->tee_id, &t, w);
    if (err == LUNA_OK && !kms_tee_has_tenant(&t, c->tenant))
        err = kms_fail(w, LUNA_ERR_PERMISSION, 403, "tee_wrong_tenant",
                       "the TEE is not authorized for this tenant");
    if (err == LUNA_OK && (t.status != KMS_TEE_ACTIVE || !t.has_keys))
        err = kms_fail(w, LUNA_ERR_PERMISSION, 403, "tee_not_active", "the TEE is not active");
    if (err != LUNA_OK) {
        (void)deny_audit(s, c, "otk.issue", c->tenant, in->tee_id, NULL, NULL, w);
        return err;
    }
    LUNA_GUARD(kms_key_current_kek(s, c->tenant, KMS_OTK_KEY_ID, true, &o.key_version, wrapped,
                                   w));
    LUNA_GUARD(kms_new_id("otk_", o.otk_id, sizeof(o.otk_id)));
    memcpy(o.tenant, c->tenant, strlen(c->tenant) + 1);
    memcpy(o.job, in->job, strlen(in->job) + 1);
    memcpy(o.tee_id, in->tee_id, strlen(in->tee_id) + 1);
    memcpy(o.deployment, t.deployment, strlen(t.deployment) + 1);
    memcpy(o.request_id, in->request_id, strlen(in->request_id) + 1);
    memcpy(o.client_pk, in->client_pk, 32);
    o.expires_at = kms_now(s) + s->set.otk_ttl_sec;
    LUNA_GUARD(otk_aad(&o, aad, sizeof(aad), &aad_len));
    err = luna_hsm_client_gen_data_key(s->hsm, wrapped, aad, aad_len, key, o.sealed);
    if (err != LUNA_OK)
        return kms_fail_hsm(w, err);
    const char *fields[] = {o.otk_id, o.tee_id, o.request_id, NULL};
    err = info_build("lunal otk to client v1", fields, info, sizeof(info), &info_len);
    if (err == LUNA_OK)
        err = kms_hpke_seal(o.client_pk, info, info_len, key, out->sealed);
    luna_wipe(key, sizeof(key));
    if (err != LUNA_OK)
        return kms_fail(w, LUNA_ERR_FORMAT, 400, "invalid_client_pk", "client key refused");

    err = kms_db_begin(s->db);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    luna_store_param p[] = {
        luna_store_p_text(o.otk_id),      luna_store_p_text(o.tenant),
        luna_store_p_text(o.job),         luna_store_p_text(o.tee_id),
        luna_store_p_text(o.deployment),  luna_store_p_text(o.request_id),
        luna_store_p_blob(o.client_pk, 32), luna_store_p_int64(o.key_version),
        luna_store_p_blob(o.sealed, sizeof(o.sealed)), luna_store_p_int64(kms_now(s)),
        luna_store_p_int64(o.expires_at),
    };
    err = luna_store_exec(s->db,
                          "INSERT INTO kms_otks (otk_id, tenant, job, tee_id, deployment_id, "
                          "request_id, client_pk, key_version, sealed, state, created_at, "
                          "expires_at, released_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                          "'issued', ?10, ?11, 0)",
                          p, 11, NULL);
    if (err == LUNA_ERR_CONFLICT) {
        kms_db_abort(s->db);
        (void)kms_fail(w, err, 409, "request_replayed", "this request id was already used");
        (void)deny_audit(s, c, "otk.issue", c->tenant, in->tee_id, t.deployment, NULL, w);
        luna_wipe(out, sizeof(*out));
        return LUNA_ERR_CONFLICT;
    }
    const char *objs[] = {o.otk_id, NULL};
    if (err == LUNA_OK &&
        kms_audit(s, c, "otk.issue", o.tenant, o.tee_id, o.deployment, objs, LUNA_AUDIT_SUCCESS,
                  "") != LUNA_OK)
        err = kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "audit_unavailable",
                       "the audit entry could not be written");
    else if (err != LUNA_OK)
        err = kms_fail_store(w, err);
    if (err == LUNA_OK) {
        err = luna_store_commit(s->db);
        if (err != LUNA_OK)
            err = kms_fail_store(w, err);
    } else {
        kms_db_abort(s->db);
    }
    if (err != LUNA_OK) {
        luna_wipe(out, sizeof(*out));
        return err;
    }
    memcpy(out->otk_id, o.otk_id, sizeof(o.otk_id));
    out->expires_at = o.expires_at;
    return LUNA_OK;
}

static luna_err copy_col(const luna_store_rows *r, size_t col, char *dst, size_t cap)
{
    const char *v = NULL;
    size_t n = 0;
    LUNA_GUARD(luna_store_col_text(r, col, &v, &n));
    if (n >= cap)
        return LUNA_ERR_FORMAT;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return LUNA_OK;
}

static luna_err otk_load(kms_svc *s, const char *otk_id, otk_row *o, kms_why *w)
{
    if (!kms_id_ok(otk_id, KMS_OTK_ID_LEN))
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "otk_not_found", "no such one-time key");
    luna_store_param p[] = {luna_store_p_text(otk_id)};
    luna_store_rows *rows = NULL;
    bool has = false;
    const uint8_t *b = NULL, *sb = NULL;
    size_t bl = 0, sl = 0;
    luna_err err = luna_store_query(s->db,
                                    "SELECT otk_id, tenant, job, tee_id, deployment_id, "
                                    "request_id, client_pk, key_version, sealed, state, "
                                    "expires_at FROM kms_otks WHERE otk_id = ?1",
                                    p, 1, &rows);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    memset(o, 0, sizeof(*o));
    err = luna_store_rows_next(rows, &has);
    if (err == LUNA_OK && has) {
        if (copy_col(rows, 0, o->otk_id, sizeof(o->otk_id)) != LUNA_OK ||
            copy_col(rows, 1, o->tenant, sizeof(o->tenant)) != LUNA_OK ||
            copy_col(rows, 2, o->job, sizeof(o->job)) != LUNA_OK ||
            copy_col(rows, 3, o->tee_id, sizeof(o->tee_id)) != LUNA_OK ||
            copy_col(rows, 4, o->deployment, sizeof(o->deployment)) != LUNA_OK ||
            copy_col(rows, 5, o->request_id, sizeof(o->request_id)) != LUNA_OK ||
            luna_store_col_blob(rows, 6, &b, &bl) != LUNA_OK || bl != 32 ||
            luna_store_col_int64(rows, 7, &o->key_version) != LUNA_OK ||
            luna_store_col_blob(rows, 8, &sb, &sl) != LUNA_OK ||
            sl != LUNA_HSM_SEALED_KEY_LEN ||
            copy_col(rows, 9, o->state, sizeof(o->state)) != LUNA_OK ||
            luna_store_col_int64(rows, 10, &o->expires_at) != LUNA_OK) {
            err = LUNA_ERR_FORMAT;
        } else {
            memcpy(o->client_pk, b, 32);
            memcpy(o->sealed, sb, sl);
        }
    }
    luna_store_rows_free(rows);
    if (err == LUNA_ERR_FORMAT)
        return kms_fail(w, LUNA_ERR_VERIFY, 500, "otk_integrity", "the OTK row is malformed");
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    return has ? LUNA_OK
               : kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "otk_not_found", "no such one-time key");
}

/* (d) minus "never released", which the commit decides. */
static luna_err otk_usable(kms_svc *s, const otk_row *o, const char *tee_id, kms_why *w)
{
    if (strcmp(o->tee_id, tee_id) != 0)
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "otk_wrong_tee",
                        "the one-time key is bound to another TEE");
    if (strcmp(o->state, "released") == 0)
        return kms_fail(w, LUNA_ERR_CONFLICT, 409, "otk_released",
                        "the one-time key was already released");
    if (strcmp(o->state, "issued") != 0)
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "otk_revoked",
                        "the one-time key was revoked");
    if (o->expires_at <= kms_now(s))
        return kms_fail(w, LUNA_ERR_EXPIRED, 410, "otk_expired", "the one-time key expired");
    return LUNA_OK;
}

luna_err kms_otk_challenge(kms_svc *s, const kms_caller *c, const char *tee_id,
                           const char *otk_id, uint8_t nonce[KMS_NONCE_LEN],
                           int64_t *expires_at, kms_why *w)
{
    otk_row o;
    if (!kms_id_ok(tee_id, KMS_ID_MAX) || !tee_identity_ok(c, tee_id))
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "identity_mismatch",
                        "the caller's identity is not this TEE");
    luna_err err = otk_load(s, otk_id, &o, w);
    if (err == LUNA_OK)
        err = otk_usable(s, &o, tee_id, w);
    if (err != LUNA_OK) {
        (void)deny_audit(s, c, "otk.challenge", NULL, tee_id, NULL, otk_id, w);
        return err;
    }
    LUNA_GUARD(luna_random(nonce, KMS_NONCE_LEN));
    *expires_at = kms_now(s) + s->set.nonce_ttl_sec;
    luna_store_param p[] = {luna_store_p_blob(nonce, KMS_NONCE_LEN), luna_store_p_text(tee_id),
                            luna_store_p_text(otk_id), luna_store_p_int64(*expires_at)};
    err = kms_db_begin(s->db);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    /* Expired nonces go as new ones come, so the table stays small. */
    luna_store_param q[] = {luna_store_p_int64(kms_now(s) - 3600)};
    err = luna_store_exec(s->db, "DELETE FROM kms_nonces WHERE expires_at < ?1", q, 1, NULL);
    if (err == LUNA_OK)
        err = luna_store_exec(s->db,
                              "INSERT INTO kms_nonces (nonce, tee_id, otk_id, expires_at, used) "
                              "VALUES (?1, ?2, ?3, ?4, 0)",
                              p, 4, NULL);
    if (err != LUNA_OK) {
        kms_db_abort(s->db);
        return kms_fail_store(w, err);
    }
    const char *objs[] = {otk_id, NULL};
    if (kms_audit(s, c, "otk.challenge", o.tenant, tee_id, o.deployment, objs,
                  LUNA_AUDIT_SUCCESS, "") != LUNA_OK) {
        kms_db_abort(s->db);
        return kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "audit_unavailable",
                        "the audit entry could not be written");
    }
    err = luna_store_commit(s->db);
    return err == LUNA_OK ? LUNA_OK : kms_fail_store(w, err);
}

/* Single use: the nonce is spent by its first presentation, whatever the
 * outcome of the checks that follow. */
static luna_err nonce_consume(kms_svc *s, const kms_otk_release_in *in, kms_why *w)
{
    uint64_t changes = 0;
    luna_store_param p[] = {luna_store_p_blob(in->nonce, KMS_NONCE_LEN),
                            luna_store_p_text(in->tee_id), luna_store_p_text(in->otk_id),
                            luna_store_p_int64(kms_now(s))};
    luna_err err = LUNA_ERR_UNAVAILABLE;
    /* Retried only on a serialization failure (PostgreSQL) or a busy
     * database: the statement has no effect outside the transaction. */
    for (int attempt = 0; attempt < KMS_TX_ATTEMPTS; attempt++) {
        err = kms_db_begin(s->db);
        if (err != LUNA_OK)
            break;
        err = luna_store_exec(s->db,
                              "UPDATE kms_nonces SET used = 1 WHERE nonce = ?1 AND tee_id = ?2 "
                              "AND otk_id = ?3 AND used = 0 AND expires_at > ?4",
                              p, 4, &changes);
        if (err == LUNA_OK)
            err = luna_store_commit(s->db);
        else
            kms_db_abort(s->db);
        if (!kms_db_retryable(s->db, err))
            break;
    }
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    return changes == 1 ? LUNA_OK
                        : kms_fail(w, LUNA_ERR_VERIFY, 403, "nonce_invalid",
                                   "unknown, expired, reused or foreign nonce");
}

/* (b) the attestation service's report. */
static luna_err check_report(kms_svc *s, const kms_otk_release_in *in, const kms_tee *t,
                             kms_why *w)
{
    luna_jws_verify_opts o;
    luna_jws_verify_opts_init(&o);
    o.issuer = s->set.attestation_issuer;
    o.now = kms_now(s);
    json_t *cl = NULL;
    luna_err err = luna_jws_verify(s->att_keys, in->report, in->report_len, &o, &cl, NULL);
    if (err != LUNA_OK)
        return kms_fail(w, LUNA_ERR_VERIFY, 403, "report_invalid",
                        "the attestation report did not verify or expired");
    const json_t *iat = json_object_get(cl, "iat");
    const char *sub = json_string_value(json_object_get(cl, "sub"));
    const char *dep = json_string_value(json_object_get(cl, "deployment_id"));
    const char *et = json_string_value(json_object_get(cl, "evidence_type"));
    const char *kx = json_string_value(json_object_get(cl, "tee_kx_pk"));
    const char *sg = json_string_value(json_object_get(cl, "tee_sign_pk"));
    const char *mr = json_string_value(json_object_get(cl, "mr_enclave"));
    uint8_t kxb[32], sgb[32], mrb[KMS_MEAS_MAX];
    size_t kxl = 0, sgl = 0, mrl = 0;
    bool ok = json_is_integer(iat) && sub != NULL && dep != NULL && et != NULL && kx != NULL &&
              sg != NULL && mr != NULL;
    ok = ok && json_integer_value(iat) + s->set.report_max_age_sec >= kms_now(s);
    ok = ok && strcmp(sub, in->tee_id) == 0 && strcmp(dep, t->deployment) == 0 &&
         strcmp(et, in->evidence_type) == 0;
    ok = ok && luna_b64url_decode(kx, strlen(kx), kxb, sizeof(kxb), &kxl) == LUNA_OK &&
         kxl == 32 && luna_ct_equal(kxb, t->kx_pk, 32);
    ok = ok && luna_b64url_decode(sg, strlen(sg), sgb, sizeof(sgb), &sgl) == LUNA_OK &&
         sgl == 32 && luna_ct_equal(sgb, t->sign_pk, 32);
    ok = ok && luna_hex_decode(mr, strlen(mr), mrb, sizeof(mrb), &mrl) == LUNA_OK &&
         mrl == t->mr_enclave_len && luna_ct_equal(mrb, t->mr_enclave, mrl);
    json_decref(cl);
    return ok ? LUNA_OK
              : kms_fail(w, LUNA_ERR_VERIFY, 403, "report_mismatch",
                         "the report is stale or names another TEE, deployment, key or "
                         "measurement");
}

static luna_err release_checks(kms_svc *s, const kms_caller *c, const kms_otk_release_in *in,
                               otk_row *o, kms_tee *t, kms_why *w)
{
    LUNA_GUARD(otk_load(s, in->otk_id, o, w));
    LUNA_GUARD(otk_usable(s, o, in->tee_id, w));
    /* (a) */
    LUNA_GUARD(kms_tee_load(s, in->tee_id, t, w));
    if (!kms_tee_has_tenant(t, o->tenant))
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "tee_wrong_tenant",
                        "the TEE is not authorized for this tenant");
    if (t->status != KMS_TEE_ACTIVE || !t->has_keys)
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "tee_not_active", "the TEE is not active");
    if (strcmp(t->deployment, o->deployment) != 0)
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "tee_wrong_deployment",
                        "the TEE serves another deployment");
    if (strcmp(t->tee_type, in->evidence_type) != 0)
        return kms_fail(w, LUNA_ERR_VERIFY, 403, "evidence_invalid",
                        "evidence type differs from the registered TEE type");
    /* (b), then (c) whatever (b) said, so a disagreement is seen. */
    luna_err rep = check_report(s, in, t, w);
    kms_why rep_why = w != NULL ? *w : (kms_why){0};
    kms_ev_claims cl;
    const char *reason = NULL;
    luna_err own = kms_verify_evidence(s->ver, true, in->evidence_type, in->evidence,
                                       in->evidence_len, t->deployment, in->nonce, t->kx_pk,
                                       t->sign_pk, kms_now(s), &cl, &reason);
    if (own == LUNA_OK && (cl.measurement_len != t->mr_enclave_len ||
                           !luna_ct_equal(cl.measurement, t->mr_enclave, t->mr_enclave_len)))
        own = LUNA_ERR_VERIFY, reason = "registry_measurement_mismatch";
    if (own != LUNA_OK) {
        if (rep == LUNA_OK) {
            /* The attestation service vouched for what the KMS refuses. */
            const char *objs[] = {in->otk_id, NULL};
            char why[160];
            (void)snprintf(why, sizeof(why), "severity=high report accepted, own verification "
                           "refused: %s", reason);
            kms_audit_best_effort(s, c, "attestation.disagreement", o->tenant, in->tee_id,
                            t->deployment, objs, LUNA_AUDIT_DENIED, why);
            LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT,
                      "attestation disagreement: report valid, own verification failed",
                      LUNA_LOG_STR("tee", in->tee_id), LUNA_LOG_STR("reason", reason),
                      LUNA_LOG_STR("severity", "high"));
        }
        return kms_fail(w, LUNA_ERR_VERIFY, 403,
                        strcmp(reason, "stale") == 0 ? "evidence_stale" : "evidence_invalid",
                        "the KMS's own verification of the evidence failed");
    }
    if (rep != LUNA_OK) {
        if (w != NULL)
            *w = rep_why;
        return rep;
    }
    return LUNA_OK;
}

/*
 * The release itself: one conditional UPDATE, then its audit entry, then
 * COMMIT.  A serialization failure (PostgreSQL) or a busy database retries
 * the whole transaction; the retry sees the winner's commit and answers
 * otk_released.  An audit entry written for a commit that then failed is
 * followed by a "failure" entry saying nothing was released.
 */
static luna_err commit_release(kms_svc *s, const kms_caller *c, const otk_row *o, kms_why *w)
{
    luna_store_param p[] = {luna_store_p_text(o->otk_id), luna_store_p_int64(kms_now(s)),
                            luna_store_p_text(o->tee_id)};
    const char *objs[] = {o->otk_id, NULL};
    luna_err err = LUNA_ERR_UNAVAILABLE;
    for (int attempt = 0; attempt < KMS_TX_ATTEMPTS; attempt++) {
        uint64_t changes = 0;
        err = kms_db_begin(s->db);
        if (err != LUNA_OK)
            break;
        err = luna_store_exec(s->db,
                              "UPDATE kms_otks SET state = 'released', released_at = ?2 WHERE "
                              "otk_id = ?1 AND tee_id = ?3 AND state = 'issued' AND "
                              "expires_at > ?2",
                              p, 3, &changes);
        if (err != LUNA_OK) {
            kms_db_abort(s->db);
            if (kms_db_retryable(s->db, err))
                continue;
            break;
        }
        if (changes != 1) {
            kms_db_abort(s->db);
            (void)kms_fail(w, LUNA_ERR_CONFLICT, 409, "otk_released",
                           "the one-time key was already released");
            (void)deny_audit(s, c, "otk.release", o->tenant, o->tee_id, o->deployment,
                             o->otk_id, w);
            return LUNA_ERR_CONFLICT;
        }
        if (kms_audit(s, c, "otk.release", o->tenant, o->tee_id, o->deployment, objs,
                      LUNA_AUDIT_SUCCESS, "") != LUNA_OK) {
            kms_db_abort(s->db);
            return kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "audit_unavailable",
                            "the audit entry could not be written; nothing released");
        }
        err = luna_store_commit(s->db);
        if (err == LUNA_OK)
            return LUNA_OK;
        kms_audit_best_effort(s, c, "otk.release", o->tenant, o->tee_id, o->deployment, objs,
                              LUNA_AUDIT_FAILURE, "commit failed after audit; nothing released");
        if (!kms_db_retryable(s->db, err))
            break;
    }
    return kms_fail_store(w, err);
}

luna_err kms_otk_release(kms_svc *s, const kms_caller *c, const kms_otk_release_in *in,
                         kms_otk_release_out *out, kms_why *w)
{
    otk_row o;
    kms_tee t;
    uint8_t wrapped[LUNA_HSM_WRAPPED_LEN], aad[AAD_MAX], info[INFO_MAX], key[KMS_KEY_LEN];
    size_t aad_len = 0, info_len = 0, n = 0;
    luna_err err;
    memset(out, 0, sizeof(*out));
    memset(&o, 0, sizeof(o));
    memset(&t, 0, sizeof(t));
    if (!kms_id_ok(in->tee_id, KMS_ID_MAX) || !tee_identity_ok(c, in->tee_id))
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "identity_mismatch",
                        "the caller's identity is not this TEE");
    if (!kms_id_ok(in->otk_id, KMS_OTK_ID_LEN))
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "otk_not_found", "no such one-time key");
    err = nonce_consume(s, in, w);
    if (err == LUNA_OK)
        err = release_checks(s, c, in, &o, &t, w);
    if (err != LUNA_OK) {
        (void)deny_audit(s, c, "otk.release", o.tenant[0] ? o.tenant : NULL, in->tee_id,
                         o.deployment[0] ? o.deployment : NULL, in->otk_id, w);
        LUNA_LOGF(LUNA_LOG_WARN, KMS_COMPONENT, "otk release refused",
                  LUNA_LOG_STR("tee", in->tee_id), LUNA_LOG_STR("otk", in->otk_id),
                  LUNA_LOG_STR("code", w != NULL && w->code != NULL ? w->code : "?"));
        return err;
    }
    /* Open the OTK under the KEK version it was sealed with. */
    LUNA_GUARD(kms_key_kek_for_open(s, o.tenant, KMS_OTK_KEY_ID, o.key_version, wrapped, w));
    LUNA_GUARD(otk_aad(&o, aad, sizeof(aad), &aad_len));
    err = luna_hsm_client_open(s->hsm, wrapped, aad, aad_len, o.sealed, sizeof(o.sealed), key,
                               sizeof(key), &n);
    if (err != LUNA_OK || n != KMS_KEY_LEN) {
        luna_wipe(key, sizeof(key));
        return err == LUNA_ERR_VERIFY
                   ? kms_fail(w, err, 500, "otk_integrity",
                              "the stored one-time key does not open for this binding")
                   : kms_fail_hsm(w, err != LUNA_OK ? err : LUNA_ERR_INTERNAL);
    }
    const char *fields[] = {o.otk_id, o.tee_id, NULL};
    err = info_build("lunal otk to tee v1", fields, info, sizeof(info), &info_len);
    if (err == LUNA_OK)
        err = kms_hpke_seal(t.kx_pk, info, info_len, key, out->sealed);
    luna_wipe(key, sizeof(key));
    if (err != LUNA_OK)
        return kms_fail(w, err, 500, "seal_failed", "sealing to the TEE key failed");

    err = commit_release(s, c, &o, w);
    if (err != LUNA_OK) {
        luna_wipe(out, sizeof(*out));
        return err;
    }
    memcpy(out->client_pk, o.client_pk, 32);
    memcpy(out->tenant, o.tenant, sizeof(o.tenant));
    memcpy(out->job, o.job, sizeof(o.job));
    memcpy(out->request_id, o.request_id, sizeof(o.request_id));
    return LUNA_OK;
}
