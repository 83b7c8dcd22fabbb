/*
 * kms_registry.c - the TEE registry: the source of truth for TEE
 * ownership (DESIGN.md section 2).  Every row carries an HMAC-SHA256 under
 * the HSM's registry MAC key over all of its fields, so a database insider
 * who edits a row (status back to active, key swapped, tenant added) is
 * detected and the row refused on every read.
 *
 * Must never: act on a row whose MAC does not verify, move a revoked TEE
 * out of revoked, or quarantine/revoke a TEE without revoking, in the same
 * transaction, every one-time key bound to it.
 */
#include <string.h>

#include "kms.h"
#include "kms_verify.h"
#include "luna/log.h"

#define ROW_MAC_MAX 2048u
#define TEE_COLS                                                                                   \
    "tee_id, tenants, deployment_id, tee_type, tee_kx_pk, tee_sign_pk, mr_enclave, mr_signer, "    \
    "status, created_at, updated_at, row_version, mac"

static const char *const status_names[] = {NULL, "pending", "active", "quarantined", "revoked"};

const char *kms_tee_status_name(kms_tee_status st)
{
    return (st >= KMS_TEE_PENDING && st <= KMS_TEE_REVOKED) ? status_names[st] : "unknown";
}

static bool status_parse(const char *s, kms_tee_status *out)
{
    for (int i = KMS_TEE_PENDING; i <= KMS_TEE_REVOKED; i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *out = (kms_tee_status)i;
            return true;
        }
    }
    return false;
}

bool kms_tee_has_tenant(const kms_tee *t, const char *tenant)
{
    size_t n = strlen(tenant);
    const char *p = t->tenants;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, tenant, n) == 0)
            return true;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return false;
}

/* The MAC input: every column but the MAC, length-prefixed. */
static luna_err row_bytes(const kms_tee *t, uint8_t *buf, size_t cap, size_t *len)
{
    luna_wbuf w;
    luna_wbuf_init(&w, buf, cap);
    LUNA_GUARD(kms_put_str(&w, "lunal kms tee row v1"));
    LUNA_GUARD(kms_put_str(&w, t->tee_id));
    LUNA_GUARD(kms_put_str(&w, t->tenants));
    LUNA_GUARD(kms_put_str(&w, t->deployment));
    LUNA_GUARD(kms_put_str(&w, t->tee_type));
    LUNA_GUARD(kms_put_lp(&w, t->kx_pk, t->has_keys ? 32 : 0));
    LUNA_GUARD(kms_put_lp(&w, t->sign_pk, t->has_keys ? 32 : 0));
    LUNA_GUARD(kms_put_lp(&w, t->mr_enclave, t->mr_enclave_len));
    LUNA_GUARD(kms_put_lp(&w, t->mr_signer, t->mr_signer_len));
    LUNA_GUARD(kms_put_str(&w, kms_tee_status_name(t->status)));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)t->created_at));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)t->updated_at));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)t->row_version));
    *len = w.len;
    return LUNA_OK;
}

/* Decodes one row; *mac receives the stored tag.  Any shape error is an
 * integrity failure: only this module writes these rows. */
static luna_err row_decode(const luna_store_rows *r, kms_tee *t, uint8_t mac[LUNA_HSM_MAC_LEN])
{
    char status[24];
    size_t kx_len = 0, sg_len = 0, mac_len = 0;
    memset(t, 0, sizeof(*t));
    LUNA_GUARD(kms_row_text(r, 0, t->tee_id, sizeof(t->tee_id)));
    LUNA_GUARD(kms_row_text(r, 1, t->tenants, sizeof(t->tenants)));
    LUNA_GUARD(kms_row_text(r, 2, t->deployment, sizeof(t->deployment)));
    LUNA_GUARD(kms_row_text(r, 3, t->tee_type, sizeof(t->tee_type)));
    LUNA_GUARD(kms_row_blob(r, 4, t->kx_pk, 32, &kx_len, true));
    LUNA_GUARD(kms_row_blob(r, 5, t->sign_pk, 32, &sg_len, true));
    LUNA_GUARD(kms_row_blob(r, 6, t->mr_enclave, KMS_MEAS_MAX, &t->mr_enclave_len, false));
    LUNA_GUARD(kms_row_blob(r, 7, t->mr_signer, KMS_MEAS_MAX, &t->mr_signer_len, true));
    LUNA_GUARD(kms_row_text(r, 8, status, sizeof(status)));
    LUNA_GUARD(luna_store_col_int64(r, 9, &t->created_at));
    LUNA_GUARD(luna_store_col_int64(r, 10, &t->updated_at));
    LUNA_GUARD(luna_store_col_int64(r, 11, &t->row_version));
    LUNA_GUARD(kms_row_blob(r, 12, mac, LUNA_HSM_MAC_LEN, &mac_len, false));
    if (mac_len != LUNA_HSM_MAC_LEN || !status_parse(status, &t->status) ||
        (kx_len != 0 && kx_len != 32) || kx_len != sg_len)
        return LUNA_ERR_FORMAT;
    t->has_keys = kx_len == 32;
    return LUNA_OK;
}

luna_err kms_tee_load(kms_svc *s, const char *tee_id, kms_tee *out, kms_why *w)
{
    if (!kms_id_ok(tee_id, KMS_ID_MAX))
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "tee_not_found", "no such TEE");
    luna_store_param p[] = {luna_store_p_text(tee_id)};
    luna_store_rows *rows = NULL;
    uint8_t mac[LUNA_HSM_MAC_LEN];
    bool has = false;
    luna_err err = luna_store_query(s->db, "SELECT " TEE_COLS " FROM kms_tees WHERE tee_id = ?1",
                                    p, 1, &rows);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    err = luna_store_rows_next(rows, &has);
    if (err == LUNA_OK && has)
        err = row_decode(rows, out, mac);
    luna_store_rows_free(rows);
    if (err == LUNA_ERR_FORMAT)
        goto tampered;
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    if (!has)
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "tee_not_found", "no such TEE");
    uint8_t buf[ROW_MAC_MAX];
    size_t len = 0;
    if (row_bytes(out, buf, sizeof(buf), &len) != LUNA_OK)
        goto tampered;
    err = kms_rowmac_check(s, buf, len, mac, sizeof(mac));
    if (err == LUNA_ERR_VERIFY)
        goto tampered;
    if (err != LUNA_OK)
        return kms_fail_hsm(w, err);
    return LUNA_OK;
tampered:
    LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT, "registry row failed its integrity check",
              LUNA_LOG_STR("tee", tee_id));
    memset(out, 0, sizeof(*out));
    return kms_fail(w, LUNA_ERR_VERIFY, 500, "registry_integrity",
                    "the registry row failed its integrity check and is refused");
}

/* Writes t (INSERT when insert, else UPDATE guarded by the old version). */
static luna_err row_store(kms_svc *s, const kms_tee *t, bool insert, kms_why *w)
{
    uint8_t buf[ROW_MAC_MAX], mac[LUNA_HSM_MAC_LEN];
    size_t len = 0;
    luna_err err = row_bytes(t, buf, sizeof(buf), &len);
    if (err != LUNA_OK)
        return kms_fail(w, err, 400, "invalid_tee", "registry row too large");
    err = kms_rowmac_seal(s, buf, len, mac);
    if (err != LUNA_OK)
        return kms_fail_hsm(w, err);
    luna_store_param p[] = {
        luna_store_p_text(t->tee_id),
        luna_store_p_text(t->tenants),
        luna_store_p_text(t->deployment),
        luna_store_p_text(t->tee_type),
        t->has_keys ? luna_store_p_blob(t->kx_pk, 32) : luna_store_p_null(),
        t->has_keys ? luna_store_p_blob(t->sign_pk, 32) : luna_store_p_null(),
        luna_store_p_blob(t->mr_enclave, t->mr_enclave_len),
        t->mr_signer_len ? luna_store_p_blob(t->mr_signer, t->mr_signer_len)
                         : luna_store_p_null(),
        luna_store_p_text(kms_tee_status_name(t->status)),
        luna_store_p_int64(t->created_at),
        luna_store_p_int64(t->updated_at),
        luna_store_p_int64(t->row_version),
        luna_store_p_blob(mac, sizeof(mac)),
    };
    uint64_t changes = 0;
    if (insert) {
        err = luna_store_exec(s->db,
                              "INSERT INTO kms_tees (" TEE_COLS ") VALUES "
                              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                              p, 13, &changes);
        if (err == LUNA_ERR_CONFLICT)
            return kms_fail(w, err, 409, "tee_exists", "a TEE with this id is registered");
    } else {
        err = luna_store_exec(s->db,
                              "UPDATE kms_tees SET tenants = ?2, deployment_id = ?3, "
                              "tee_type = ?4, tee_kx_pk = ?5, tee_sign_pk = ?6, mr_enclave = ?7, "
                              "mr_signer = ?8, status = ?9, created_at = ?10, updated_at = ?11, "
                              "row_version = ?12, mac = ?13 WHERE tee_id = ?1 AND "
                              "row_version = ?12 - 1",
                              p, 13, &changes);
    }
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    if (changes != 1)
        return kms_fail(w, LUNA_ERR_CONFLICT, 409, "tee_changed",
                        "the TEE changed concurrently; retry");
    return LUNA_OK;
}

luna_err kms_tee_register(kms_svc *s, const kms_caller *c, const kms_tee *in, kms_why *w)
{
    kms_tee t = *in;
    t.status = KMS_TEE_PENDING;
    t.has_keys = false;
    t.created_at = t.updated_at = kms_now(s);
    t.row_version = 1;
    const char *objs[] = {t.tee_id, NULL};
    luna_err err = kms_db_begin(s->db);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    LUNA_TRY(row_store(s, &t, true, w), abort);
    err = kms_audit(s, c, "tee.register", c->has_token ? c->tenant : NULL, t.tee_id,
                    t.deployment, objs, LUNA_AUDIT_SUCCESS, "");
    LUNA_TRY_ENSURE(err == LUNA_OK, LUNA_ERR_UNAVAILABLE, audit_down);
    err = luna_store_commit(s->db);
    return err == LUNA_OK ? LUNA_OK : kms_fail_store(w, err);
audit_down:
    (void)kms_fail(w, err, 503, "audit_unavailable", "the audit entry could not be written");
abort:
    kms_db_abort(s->db);
    return err;
}

static bool transition_ok(kms_tee_status from, kms_tee_status to)
{
    if (from == KMS_TEE_REVOKED)
        return false;
    if (to == KMS_TEE_ACTIVE)
        return from == KMS_TEE_PENDING || from == KMS_TEE_ACTIVE || from == KMS_TEE_QUARANTINED;
    return to == KMS_TEE_QUARANTINED || to == KMS_TEE_REVOKED;
}

/* Shared tail of status changes: inside an open transaction. */
static luna_err change(kms_svc *s, const kms_caller *c, kms_tee *t, kms_tee_status to,
                       const char *op, const char *reason, kms_why *w)
{
    if (!transition_ok(t->status, to))
        return kms_fail(w, LUNA_ERR_CONFLICT, 409, "tee_status_conflict",
                        "this status change is not allowed (revoked is final)");
    t->status = to;
    t->updated_at = kms_now(s);
    t->row_version++;
    LUNA_GUARD(row_store(s, t, false, w));
    if (to == KMS_TEE_QUARANTINED || to == KMS_TEE_REVOKED) {
        luna_store_param p[] = {luna_store_p_text(t->tee_id), luna_store_p_int64(kms_now(s))};
        luna_err err = luna_store_exec(s->db,
                                       "UPDATE kms_otks SET state = 'revoked', released_at = ?2 "
                                       "WHERE tee_id = ?1 AND state = 'issued'",
                                       p, 2, NULL);
        if (err != LUNA_OK)
            return kms_fail_store(w, err);
    }
    const char *objs[] = {t->tee_id, NULL};
    if (kms_audit(s, c, op, c->has_token ? c->tenant : NULL, t->tee_id, t->deployment, objs,
                  LUNA_AUDIT_SUCCESS, reason) != LUNA_OK)
        return kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "audit_unavailable",
                        "the audit entry could not be written");
    return LUNA_OK;
}

luna_err kms_tee_set_status(kms_svc *s, const kms_caller *c, const char *tee_id,
                            kms_tee_status to, const char *reason, kms_why *w)
{
    kms_tee t;
    luna_err err = kms_db_begin(s->db);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    LUNA_TRY(kms_tee_load(s, tee_id, &t, w), abort);
    LUNA_TRY(change(s, c, &t, to, to == KMS_TEE_REVOKED ? "tee.revoke" : "tee.quarantine",
                    reason, w),
             abort);
    err = luna_store_commit(s->db);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    LUNA_LOGF(LUNA_LOG_WARN, KMS_COMPONENT, "tee status changed", LUNA_LOG_STR("tee", tee_id),
              LUNA_LOG_STR("status", kms_tee_status_name(to)));
    return LUNA_OK;
abort:
    kms_db_abort(s->db);
    return err;
}

luna_err kms_tee_activate(kms_svc *s, const kms_caller *c, const char *tee_id,
                          const char *ev_type, const uint8_t *ev, size_t ev_len,
                          const uint8_t kx_pk[32], const uint8_t sign_pk[32],
                          const uint8_t *nonce, kms_why *w)
{
    kms_tee t;
    kms_ev_claims cl;
    const char *reason = NULL;
    LUNA_GUARD(kms_tee_load(s, tee_id, &t, w));
    if (strcmp(ev_type, t.tee_type) != 0)
        return kms_fail(w, LUNA_ERR_VERIFY, 403, "evidence_invalid",
                        "evidence type differs from the registered TEE type");
    luna_err err = kms_verify_evidence(s->ver, false, ev_type, ev, ev_len, t.deployment, nonce,
                                       kx_pk, sign_pk, kms_now(s), &cl, &reason);
    if (err == LUNA_OK && (cl.measurement_len != t.mr_enclave_len ||
                           !luna_ct_equal(cl.measurement, t.mr_enclave, t.mr_enclave_len)))
        err = LUNA_ERR_VERIFY, reason = "registry_measurement_mismatch";
    if (err != LUNA_OK) {
        const char *objs[] = {tee_id, NULL};
        kms_audit_best_effort(s, c, "tee.activate", NULL, tee_id, t.deployment, objs,
                        LUNA_AUDIT_DENIED, reason);
        LUNA_LOGF(LUNA_LOG_WARN, KMS_COMPONENT, "activation refused", LUNA_LOG_STR("tee", tee_id),
                  LUNA_LOG_STR("reason", reason));
        return kms_fail(w, LUNA_ERR_VERIFY, 403, "evidence_invalid",
                        "the KMS's own verification of the evidence failed");
    }
    err = kms_db_begin(s->db);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    /* Re-read inside the transaction: the row may have moved meanwhile. */
    LUNA_TRY(kms_tee_load(s, tee_id, &t, w), abort);
    bool keys_changed = t.has_keys && (!luna_ct_equal(t.kx_pk, kx_pk, 32) ||
                                       !luna_ct_equal(t.sign_pk, sign_pk, 32));
    memcpy(t.kx_pk, kx_pk, 32);
    memcpy(t.sign_pk, sign_pk, 32);
    t.has_keys = true;
    if (keys_changed) {
        /* OTKs issued for the old keys must never reach the new ones. */
        luna_store_param p[] = {luna_store_p_text(t.tee_id), luna_store_p_int64(kms_now(s))};
        err = luna_store_exec(s->db,
                              "UPDATE kms_otks SET state = 'revoked', released_at = ?2 "
                              "WHERE tee_id = ?1 AND state = 'issued'",
                              p, 2, NULL);
        LUNA_TRY_ENSURE(err == LUNA_OK, kms_fail_store(w, err), abort);
    }
    LUNA_TRY(change(s, c, &t, KMS_TEE_ACTIVE, "tee.activate", "", w), abort);
    err = luna_store_commit(s->db);
    return err == LUNA_OK ? LUNA_OK : kms_fail_store(w, err);
abort:
    kms_db_abort(s->db);
    return err;
}

json_t *kms_tee_to_json(const kms_tee *t)
{
    char kx[LUNA_B64URL_ENC_LEN(32)] = "", sg[LUNA_B64URL_ENC_LEN(32)] = "";
    char mr[2 * KMS_MEAS_MAX + 1] = "", ms[2 * KMS_MEAS_MAX + 1] = "";
    if (t->has_keys) {
        if (luna_b64url_encode(t->kx_pk, 32, kx, sizeof(kx)) != LUNA_OK ||
            luna_b64url_encode(t->sign_pk, 32, sg, sizeof(sg)) != LUNA_OK)
            return NULL;
    }
    if (luna_hex_encode(t->mr_enclave, t->mr_enclave_len, mr, sizeof(mr)) != LUNA_OK ||
        luna_hex_encode(t->mr_signer, t->mr_signer_len, ms, sizeof(ms)) != LUNA_OK)
        return NULL;
    json_t *tenants = json_array();
    if (tenants == NULL)
        return NULL;
    const char *p = t->tenants;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        json_array_append_new(tenants, json_stringn(p, len));
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    json_t *o = json_pack("{s:s,s:o,s:s,s:s,s:s,s:s,s:I,s:I}", "tee_id", t->tee_id, "tenants",
                          tenants, "deployment_id", t->deployment, "tee_type", t->tee_type,
                          "status", kms_tee_status_name(t->status), "mr_enclave", mr,
                          "created_at", (json_int_t)t->created_at, "updated_at",
                          (json_int_t)t->updated_at);
    if (o == NULL)
        return NULL;
    if (t->mr_signer_len > 0)
        json_object_set_new(o, "mr_signer", json_string(ms));
    if (t->has_keys) {
        json_object_set_new(o, "tee_kx_pk", json_string(kx));
        json_object_set_new(o, "tee_sign_pk", json_string(sg));
    }
    return o;
}

json_t *kms_tee_view(const kms_tee *t, const kms_caller *c)
{
    if (c == NULL || !c->has_token || (c->roles & KMS_ROLE_PLATFORM_ADMIN) != 0)
        return kms_tee_to_json(t);
    kms_tee own = *t;
    size_t n = strlen(c->tenant);
    memcpy(own.tenants, c->tenant, n + 1);
    return kms_tee_to_json(&own);
}

luna_err kms_tee_list(kms_svc *s, const kms_caller *c, json_t **out, kms_why *w)
{
    luna_store_rows *rows = NULL;
    json_t *arr = json_array();
    if (arr == NULL)
        return LUNA_ERR_NOMEM;
    luna_err err = luna_store_query(s->db, "SELECT tee_id FROM kms_tees ORDER BY tee_id", NULL,
                                    0, &rows);
    if (err != LUNA_OK) {
        json_decref(arr);
        return kms_fail_store(w, err);
    }
    /* Ids first (one open result per handle), then each row MAC-checked. */
    char ids[KMS_LIST_MAX][KMS_ID_MAX + 1];
    size_t n = 0;
    bool has = false;
    while (n < KMS_LIST_MAX && (err = luna_store_rows_next(rows, &has)) == LUNA_OK && has) {
        if (kms_row_text(rows, 0, ids[n], sizeof(ids[n])) == LUNA_OK)
            n++;
    }
    luna_store_rows_free(rows);
    if (err != LUNA_OK) {
        json_decref(arr);
        return kms_fail_store(w, err);
    }
    bool all = !c->has_token || (c->roles & KMS_ROLE_PLATFORM_ADMIN) != 0;
    for (size_t i = 0; i < n; i++) {
        kms_tee t;
        kms_why ignore;
        if (kms_tee_load(s, ids[i], &t, &ignore) != LUNA_OK) {
            if (!all)
                continue; /* whose row it was cannot be trusted */
            json_array_append_new(arr, json_pack("{s:s,s:s}", "tee_id", ids[i], "status",
                                                 "integrity_failed"));
            continue;
        }
        if (all || kms_tee_has_tenant(&t, c->tenant))
            json_array_append_new(arr, kms_tee_view(&t, c));
    }
    *out = arr;
    return LUNA_OK;
}
