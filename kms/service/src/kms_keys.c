/*
 * kms_keys.c - tenant keys with versions: create, scheduled and manual
 * rotation, minimum decryption version, disable/enable, instant revoke,
 * destroy after a retention window; data keys sealed under a version.
 *
 * Every version is an AES-256 KEK generated in the HSM and stored only
 * wrapped under the root; data keys are sealed under a KEK inside the HSM
 * with an AAD naming (tenant, key, version), so a sealed key moved to
 * another tenant, key or version does not open.  Key rows carry an HSM MAC
 * like registry rows (a database insider cannot un-revoke a key).
 *
 * Must never: cache key state (revoke is seen by the next request of every
 * instance), open under a version below the minimum, use a key that is not
 * enabled, or let a data key leave the process other than HPKE-sealed to
 * its recipient.
 */
#include <string.h>

#include "kms.h"
#include "luna/log.h"

#define KEY_COLS                                                                                   \
    "tenant, key_id, state, current_version, min_decrypt_version, rotation_period_sec, "           \
    "next_rotation_at, created_at, updated_at, destroy_at, mac"
#define KEY_ROW_MAX 512u
#define MAX_DUE 256u

static luna_err key_row_bytes(const kms_key_info *k, uint8_t *buf, size_t cap, size_t *len)
{
    luna_wbuf w;
    luna_wbuf_init(&w, buf, cap);
    LUNA_GUARD(kms_put_str(&w, "lunal kms key row v1"));
    LUNA_GUARD(kms_put_str(&w, k->tenant));
    LUNA_GUARD(kms_put_str(&w, k->key_id));
    LUNA_GUARD(kms_put_str(&w, k->state));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)k->current_version));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)k->min_decrypt_version));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)k->rotation_period_sec));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)k->next_rotation_at));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)k->created_at));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)k->updated_at));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)k->destroy_at));
    *len = w.len;
    return LUNA_OK;
}

static luna_err text_col(const luna_store_rows *r, size_t col, char *dst, size_t cap)
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

luna_err kms_key_get(kms_svc *s, const char *tenant, const char *key_id, kms_key_info *out,
                     kms_why *w)
{
    luna_store_param p[] = {luna_store_p_text(tenant), luna_store_p_text(key_id)};
    luna_store_rows *rows = NULL;
    bool has = false;
    const uint8_t *mac = NULL;
    size_t mac_len = 0;
    uint8_t tag[LUNA_HSM_MAC_LEN];
    memset(out, 0, sizeof(*out));
    luna_err err = luna_store_query(
        s->db, "SELECT " KEY_COLS " FROM kms_keys WHERE tenant = ?1 AND key_id = ?2", p, 2, &rows);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    err = luna_store_rows_next(rows, &has);
    if (err == LUNA_OK && has) {
        luna_err e2 = LUNA_OK;
        if (text_col(rows, 0, out->tenant, sizeof(out->tenant)) != LUNA_OK ||
            text_col(rows, 1, out->key_id, sizeof(out->key_id)) != LUNA_OK ||
            text_col(rows, 2, out->state, sizeof(out->state)) != LUNA_OK ||
            luna_store_col_int64(rows, 3, &out->current_version) != LUNA_OK ||
            luna_store_col_int64(rows, 4, &out->min_decrypt_version) != LUNA_OK ||
            luna_store_col_int64(rows, 5, &out->rotation_period_sec) != LUNA_OK ||
            luna_store_col_int64(rows, 6, &out->next_rotation_at) != LUNA_OK ||
            luna_store_col_int64(rows, 7, &out->created_at) != LUNA_OK ||
            luna_store_col_int64(rows, 8, &out->updated_at) != LUNA_OK ||
            luna_store_col_int64(rows, 9, &out->destroy_at) != LUNA_OK ||
            luna_store_col_blob(rows, 10, &mac, &mac_len) != LUNA_OK ||
            mac_len != LUNA_HSM_MAC_LEN)
            e2 = LUNA_ERR_FORMAT;
        else
            memcpy(tag, mac, LUNA_HSM_MAC_LEN);
        err = e2;
    }
    luna_store_rows_free(rows);
    if (err == LUNA_ERR_FORMAT)
        goto tampered;
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    if (!has)
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "key_not_found", "no such key");
    uint8_t buf[KEY_ROW_MAX];
    size_t len = 0;
    if (key_row_bytes(out, buf, sizeof(buf), &len) != LUNA_OK)
        goto tampered;
    err = luna_hsm_client_mac_verify(s->hsm, buf, len, tag);
    if (err == LUNA_ERR_VERIFY)
        goto tampered;
    return err == LUNA_OK ? LUNA_OK : kms_fail_hsm(w, err);
tampered:
    LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT, "key row failed its integrity check",
              LUNA_LOG_STR("tenant", tenant), LUNA_LOG_STR("key", key_id));
    return kms_fail(w, LUNA_ERR_VERIFY, 500, "key_integrity",
                    "the key row failed its integrity check and is refused");
}

static luna_err key_store(kms_svc *s, const kms_key_info *k, bool insert, kms_why *w)
{
    uint8_t buf[KEY_ROW_MAX], mac[LUNA_HSM_MAC_LEN];
    size_t len = 0;
    LUNA_GUARD(key_row_bytes(k, buf, sizeof(buf), &len));
    luna_err err = luna_hsm_client_mac(s->hsm, buf, len, mac);
    if (err != LUNA_OK)
        return kms_fail_hsm(w, err);
    luna_store_param p[] = {
        luna_store_p_text(k->tenant),
        luna_store_p_text(k->key_id),
        luna_store_p_text(k->state),
        luna_store_p_int64(k->current_version),
        luna_store_p_int64(k->min_decrypt_version),
        luna_store_p_int64(k->rotation_period_sec),
        luna_store_p_int64(k->next_rotation_at),
        luna_store_p_int64(k->created_at),
        luna_store_p_int64(k->updated_at),
        luna_store_p_int64(k->destroy_at),
        luna_store_p_blob(mac, sizeof(mac)),
    };
    uint64_t changes = 0;
    err = luna_store_exec(
        s->db,
        insert ? "INSERT INTO kms_keys (" KEY_COLS ") VALUES "
                 "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
               : "UPDATE kms_keys SET state = ?3, current_version = ?4, "
                 "min_decrypt_version = ?5, rotation_period_sec = ?6, next_rotation_at = ?7, "
                 "created_at = ?8, updated_at = ?9, destroy_at = ?10, mac = ?11 "
                 "WHERE tenant = ?1 AND key_id = ?2",
        p, 11, &changes);
    if (err == LUNA_ERR_CONFLICT)
        return kms_fail(w, err, 409, "key_exists", "a key with this id exists");
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    return changes == 1 ? LUNA_OK
                        : kms_fail(w, LUNA_ERR_CONFLICT, 409, "key_changed", "retry");
}

/* A new version: a KEK generated in the HSM, stored wrapped. */
static luna_err add_version(kms_svc *s, const kms_key_info *k, int64_t version, kms_why *w)
{
    uint8_t wrapped[LUNA_HSM_WRAPPED_LEN];
    luna_err err = luna_hsm_client_gen_kek(s->hsm, wrapped);
    if (err != LUNA_OK)
        return kms_fail_hsm(w, err);
    luna_store_param p[] = {
        luna_store_p_text(k->tenant),   luna_store_p_text(k->key_id),
        luna_store_p_int64(version),    luna_store_p_blob(wrapped, sizeof(wrapped)),
        luna_store_p_int64(kms_now(s)),
    };
    err = luna_store_exec(s->db,
                          "INSERT INTO kms_key_versions (tenant, key_id, version, wrapped, "
                          "created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                          p, 5, NULL);
    return err == LUNA_OK ? LUNA_OK : kms_fail_store(w, err);
}

static luna_err audit_or_fail(kms_svc *s, const kms_caller *c, const char *op,
                              const kms_key_info *k, const char *reason, kms_why *w)
{
    const char *objs[] = {k->key_id, NULL};
    if (kms_audit(s, c, op, k->tenant, NULL, NULL, objs, LUNA_AUDIT_SUCCESS, reason) != LUNA_OK)
        return kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "audit_unavailable",
                        "the audit entry could not be written");
    return LUNA_OK;
}

static luna_err create_locked(kms_svc *s, const kms_caller *c, const char *tenant,
                              const char *key_id, int64_t period, kms_key_info *k, kms_why *w)
{
    int64_t now = kms_now(s);
    memset(k, 0, sizeof(*k));
    memcpy(k->tenant, tenant, strlen(tenant) + 1);
    memcpy(k->key_id, key_id, strlen(key_id) + 1);
    memcpy(k->state, "enabled", 8);
    k->current_version = 1;
    k->min_decrypt_version = 1;
    k->rotation_period_sec = period;
    k->next_rotation_at = period > 0 ? now + period : 0;
    k->created_at = k->updated_at = now;
    LUNA_GUARD(key_store(s, k, true, w));
    LUNA_GUARD(add_version(s, k, 1, w));
    return audit_or_fail(s, c, "key.create", k, "", w);
}

luna_err kms_key_create(kms_svc *s, const kms_caller *c, const char *key_id,
                        int64_t rotation_period_sec, kms_key_info *out, kms_why *w)
{
    if (!kms_id_ok(key_id, KMS_ID_MAX) || key_id[0] == '_')
        return kms_fail(w, LUNA_ERR_FORMAT, 400, "invalid_key_id", "key id: [A-Za-z0-9.-] start");
    luna_err err = kms_db_begin(s->db);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    LUNA_TRY(create_locked(s, c, c->tenant, key_id, rotation_period_sec, out, w), abort);
    err = luna_store_commit(s->db);
    return err == LUNA_OK ? LUNA_OK : kms_fail_store(w, err);
abort:
    kms_db_abort(s->db);
    return err;
}

json_t *kms_key_to_json(const kms_key_info *k)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "key_id", k->key_id, "state",
                     k->state, "current_version", (json_int_t)k->current_version,
                     "min_decrypt_version", (json_int_t)k->min_decrypt_version,
                     "rotation_period_sec", (json_int_t)k->rotation_period_sec,
                     "next_rotation_at", (json_int_t)k->next_rotation_at, "created_at",
                     (json_int_t)k->created_at, "updated_at", (json_int_t)k->updated_at,
                     "destroy_at", (json_int_t)k->destroy_at);
}

luna_err kms_key_list(kms_svc *s, const char *tenant, json_t **out, kms_why *w)
{
    luna_store_param p[] = {luna_store_p_text(tenant)};
    luna_store_rows *rows = NULL;
    char ids[KMS_LIST_MAX][KMS_ID_MAX + 1];
    size_t n = 0;
    bool has = false;
    luna_err err = luna_store_query(
        s->db, "SELECT key_id FROM kms_keys WHERE tenant = ?1 ORDER BY key_id", p, 1, &rows);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    while (n < KMS_LIST_MAX && (err = luna_store_rows_next(rows, &has)) == LUNA_OK && has) {
        if (text_col(rows, 0, ids[n], sizeof(ids[n])) == LUNA_OK && ids[n][0] != '_')
            n++;
    }
    luna_store_rows_free(rows);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    json_t *arr = json_array();
    if (arr == NULL)
        return LUNA_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        kms_key_info k;
        err = kms_key_get(s, tenant, ids[i], &k, w);
        if (err != LUNA_OK) {
            json_decref(arr);
            return err;
        }
        json_array_append_new(arr, kms_key_to_json(&k));
    }
    *out = arr;
    return LUNA_OK;
}

/* Applies op to k (inside the transaction). */
static luna_err apply_op(kms_svc *s, const kms_caller *c, kms_key_info *k, const char *op,
                         int64_t value, kms_why *w)
{
    int64_t now = kms_now(s);
    bool enabled = strcmp(k->state, "enabled") == 0;
    bool disabled = strcmp(k->state, "disabled") == 0;
    const char *audit_op = NULL;
    if (strcmp(op, "rotate") == 0) {
        if (!enabled)
            return kms_fail(w, LUNA_ERR_CONFLICT, 409, "key_not_enabled",
                            "only an enabled key rotates");
        k->current_version++;
        LUNA_GUARD(add_version(s, k, k->current_version, w));
        k->next_rotation_at = k->rotation_period_sec > 0 ? now + k->rotation_period_sec : 0;
        audit_op = c == NULL ? "key.rotate.scheduled" : "key.rotate";
    } else if (strcmp(op, "disable") == 0 || strcmp(op, "enable") == 0) {
        bool to_enable = op[0] == 'e';
        if (to_enable ? !disabled : !enabled)
            return kms_fail(w, LUNA_ERR_CONFLICT, 409, "key_state_conflict",
                            "the key is not in a state this operation applies to");
        memcpy(k->state, to_enable ? "enabled" : "disabled", to_enable ? 8 : 9);
        audit_op = to_enable ? "key.enable" : "key.disable";
    } else if (strcmp(op, "revoke") == 0) {
        if (!enabled && !disabled)
            return kms_fail(w, LUNA_ERR_CONFLICT, 409, "key_state_conflict",
                            "the key is already revoked or being destroyed");
        memcpy(k->state, "revoked", 8);
        audit_op = "key.revoke";
    } else if (strcmp(op, "destroy") == 0) {
        if (strcmp(k->state, "destroy_pending") == 0 || strcmp(k->state, "destroyed") == 0)
            return kms_fail(w, LUNA_ERR_CONFLICT, 409, "key_state_conflict",
                            "the key is already being destroyed");
        memcpy(k->state, "destroy_pending", 16);
        k->destroy_at = now + s->set.destroy_retention_sec;
        audit_op = "key.destroy.schedule";
    } else if (strcmp(op, "cancel_destroy") == 0) {
        if (strcmp(k->state, "destroy_pending") != 0)
            return kms_fail(w, LUNA_ERR_CONFLICT, 409, "key_state_conflict",
                            "no destruction is pending");
        memcpy(k->state, "disabled", 9);
        k->destroy_at = 0;
        audit_op = "key.destroy.cancel";
    } else if (strcmp(op, "min_version") == 0) {
        if (value < 1 || value > k->current_version)
            return kms_fail(w, LUNA_ERR_FORMAT, 400, "invalid_version",
                            "minimum version must be 1..current_version");
        k->min_decrypt_version = value;
        audit_op = "key.min_version";
    } else {
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "unknown_operation", "no such key operation");
    }
    k->updated_at = now;
    LUNA_GUARD(key_store(s, k, false, w));
    return audit_or_fail(s, c, audit_op, k, "", w);
}

luna_err kms_key_op(kms_svc *s, const kms_caller *c, const char *key_id, const char *op,
                    int64_t value, kms_key_info *out, kms_why *w)
{
    if (!kms_id_ok(key_id, KMS_ID_MAX))
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "key_not_found", "no such key");
    luna_err err = kms_db_begin(s->db);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    LUNA_TRY(kms_key_get(s, c->tenant, key_id, out, w), abort);
    LUNA_TRY(apply_op(s, c, out, op, value, w), abort);
    err = luna_store_commit(s->db);
    return err == LUNA_OK ? LUNA_OK : kms_fail_store(w, err);
abort:
    kms_db_abort(s->db);
    return err;
}

static luna_err usable(const kms_key_info *k, kms_why *w)
{
    if (strcmp(k->state, "enabled") == 0)
        return LUNA_OK;
    if (strcmp(k->state, "revoked") == 0)
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "key_revoked", "the key is revoked");
    if (strcmp(k->state, "disabled") == 0)
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "key_disabled", "the key is disabled");
    return kms_fail(w, LUNA_ERR_PERMISSION, 403, "key_destroyed",
                    "the key is destroyed or scheduled for destruction");
}

static luna_err load_version(kms_svc *s, const char *tenant, const char *key_id,
                             int64_t version, uint8_t wrapped[LUNA_HSM_WRAPPED_LEN], kms_why *w)
{
    luna_store_param p[] = {luna_store_p_text(tenant), luna_store_p_text(key_id),
                            luna_store_p_int64(version)};
    luna_store_rows *rows = NULL;
    bool has = false;
    const uint8_t *v = NULL;
    size_t n = 0;
    luna_err err = luna_store_query(s->db,
                                    "SELECT wrapped FROM kms_key_versions WHERE tenant = ?1 "
                                    "AND key_id = ?2 AND version = ?3",
                                    p, 3, &rows);
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    err = luna_store_rows_next(rows, &has);
    if (err == LUNA_OK && has) {
        if (luna_store_col_blob(rows, 0, &v, &n) != LUNA_OK || n != LUNA_HSM_WRAPPED_LEN)
            err = LUNA_ERR_FORMAT;
        else
            memcpy(wrapped, v, n);
    }
    luna_store_rows_free(rows);
    if (err == LUNA_ERR_FORMAT)
        return kms_fail(w, LUNA_ERR_VERIFY, 500, "key_integrity", "a key version is malformed");
    if (err != LUNA_OK)
        return kms_fail_store(w, err);
    return has ? LUNA_OK
               : kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "key_version_not_found",
                          "no such key version");
}

luna_err kms_key_current_kek(kms_svc *s, const char *tenant, const char *key_id,
                             bool create_if_absent, int64_t *version,
                             uint8_t wrapped[LUNA_HSM_WRAPPED_LEN], kms_why *w)
{
    kms_key_info k;
    luna_err err = kms_key_get(s, tenant, key_id, &k, w);
    if (err == LUNA_ERR_NOT_FOUND && create_if_absent) {
        err = kms_db_begin(s->db);
        if (err != LUNA_OK)
            return kms_fail_store(w, err);
        err = create_locked(s, NULL, tenant, key_id, s->set.otk_key_rotation_sec, &k, w);
        if (err == LUNA_OK)
            err = luna_store_commit(s->db);
        else
            kms_db_abort(s->db);
        if (err == LUNA_ERR_CONFLICT) /* another instance made it first */
            err = kms_key_get(s, tenant, key_id, &k, w);
        else if (err != LUNA_OK)
            return err;
    }
    if (err != LUNA_OK)
        return err;
    LUNA_GUARD(usable(&k, w));
    *version = k.current_version;
    return load_version(s, tenant, key_id, k.current_version, wrapped, w);
}

luna_err kms_key_kek_for_open(kms_svc *s, const char *tenant, const char *key_id,
                              int64_t version, uint8_t wrapped[LUNA_HSM_WRAPPED_LEN], kms_why *w)
{
    kms_key_info k;
    LUNA_GUARD(kms_key_get(s, tenant, key_id, &k, w));
    LUNA_GUARD(usable(&k, w));
    if (version < k.min_decrypt_version)
        return kms_fail(w, LUNA_ERR_PERMISSION, 403, "version_below_minimum",
                        "this key version is below the minimum decryption version");
    if (version > k.current_version)
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "key_version_not_found",
                        "no such key version");
    return load_version(s, tenant, key_id, version, wrapped, w);
}

static luna_err dk_aad(const char *tenant, const char *key_id, int64_t version, uint8_t *buf,
                       size_t cap, size_t *len)
{
    luna_wbuf w;
    luna_wbuf_init(&w, buf, cap);
    LUNA_GUARD(kms_put_str(&w, "lunal kms data key v1"));
    LUNA_GUARD(kms_put_str(&w, tenant));
    LUNA_GUARD(kms_put_str(&w, key_id));
    LUNA_GUARD(luna_write_u64(&w, (uint64_t)version));
    *len = w.len;
    return LUNA_OK;
}

luna_err kms_key_datakey(kms_svc *s, const kms_caller *c, const char *key_id,
                         const uint8_t recipient[32], int64_t *version,
                         uint8_t sealed[LUNA_HSM_SEALED_KEY_LEN],
                         uint8_t to_recipient[KMS_SEALED_OTK_LEN], kms_why *w)
{
    uint8_t wrapped[LUNA_HSM_WRAPPED_LEN], aad[256], key[KMS_KEY_LEN];
    size_t aad_len = 0;
    if (!kms_id_ok(key_id, KMS_ID_MAX) || key_id[0] == '_')
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "key_not_found", "no such key");
    LUNA_GUARD(kms_key_current_kek(s, c->tenant, key_id, false, version, wrapped, w));
    LUNA_GUARD(dk_aad(c->tenant, key_id, *version, aad, sizeof(aad), &aad_len));
    luna_err err = luna_hsm_client_gen_data_key(s->hsm, wrapped, aad, aad_len, key, sealed);
    if (err != LUNA_OK)
        return kms_fail_hsm(w, err);
    err = kms_hpke_seal(recipient, aad, aad_len, key, to_recipient);
    luna_wipe(key, sizeof(key));
    if (err != LUNA_OK)
        return kms_fail(w, LUNA_ERR_FORMAT, 400, "invalid_recipient", "recipient key refused");
    const char *objs[] = {key_id, NULL};
    if (kms_audit(s, c, "key.datakey", c->tenant, NULL, NULL, objs, LUNA_AUDIT_SUCCESS, "") !=
        LUNA_OK) {
        luna_wipe(to_recipient, KMS_SEALED_OTK_LEN);
        return kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "audit_unavailable",
                        "the audit entry could not be written");
    }
    return LUNA_OK;
}

luna_err kms_key_unwrap(kms_svc *s, const kms_caller *c, const char *key_id, int64_t version,
                        const uint8_t sealed[LUNA_HSM_SEALED_KEY_LEN],
                        const uint8_t recipient[32], uint8_t to_recipient[KMS_SEALED_OTK_LEN],
                        kms_why *w)
{
    uint8_t wrapped[LUNA_HSM_WRAPPED_LEN], aad[256], key[KMS_KEY_LEN];
    size_t aad_len = 0, n = 0;
    const char *objs[] = {key_id, NULL};
    if (!kms_id_ok(key_id, KMS_ID_MAX) || key_id[0] == '_')
        return kms_fail(w, LUNA_ERR_NOT_FOUND, 404, "key_not_found", "no such key");
    luna_err err = kms_key_kek_for_open(s, c->tenant, key_id, version, wrapped, w);
    if (err != LUNA_OK) {
        if (w != NULL && w->code != NULL)
            kms_audit_best_effort(s, c, "key.unwrap", c->tenant, NULL, NULL, objs, LUNA_AUDIT_DENIED,
                            w->code);
        return err;
    }
    LUNA_GUARD(dk_aad(c->tenant, key_id, version, aad, sizeof(aad), &aad_len));
    err = luna_hsm_client_open(s->hsm, wrapped, aad, aad_len, sealed, LUNA_HSM_SEALED_KEY_LEN,
                               key, sizeof(key), &n);
    if (err == LUNA_ERR_VERIFY)
        return kms_fail(w, err, 403, "sealed_key_invalid",
                        "the sealed key does not open under this key and version");
    if (err != LUNA_OK || n != KMS_KEY_LEN) {
        luna_wipe(key, sizeof(key));
        return kms_fail_hsm(w, err != LUNA_OK ? err : LUNA_ERR_INTERNAL);
    }
    if (kms_audit(s, c, "key.unwrap", c->tenant, NULL, NULL, objs, LUNA_AUDIT_SUCCESS, "") !=
        LUNA_OK) {
        luna_wipe(key, sizeof(key));
        return kms_fail(w, LUNA_ERR_UNAVAILABLE, 503, "audit_unavailable",
                        "the audit entry could not be written");
    }
    err = kms_hpke_seal(recipient, aad, aad_len, key, to_recipient);
    luna_wipe(key, sizeof(key));
    if (err != LUNA_OK)
        return kms_fail(w, LUNA_ERR_FORMAT, 400, "invalid_recipient", "recipient key refused");
    return LUNA_OK;
}

/* Destroy after retention: the wrapped KEKs are deleted, so nothing sealed
 * under any version can ever be opened again. */
static luna_err destroy_due(kms_svc *s, const char *tenant, const char *key_id)
{
    kms_key_info k;
    kms_why w;
    luna_err err = kms_db_begin(s->db);
    if (err != LUNA_OK)
        return err;
    LUNA_TRY(kms_key_get(s, tenant, key_id, &k, &w), abort);
    LUNA_TRY_ENSURE(strcmp(k.state, "destroy_pending") == 0 && k.destroy_at <= kms_now(s),
                    LUNA_ERR_CONFLICT, abort);
    luna_store_param p[] = {luna_store_p_text(tenant), luna_store_p_text(key_id)};
    LUNA_TRY(luna_store_exec(s->db,
                             "DELETE FROM kms_key_versions WHERE tenant = ?1 AND key_id = ?2", p,
                             2, NULL),
             abort);
    memcpy(k.state, "destroyed", 10);
    k.updated_at = kms_now(s);
    LUNA_TRY(key_store(s, &k, false, &w), abort);
    LUNA_TRY(audit_or_fail(s, NULL, "key.destroy", &k, "", &w), abort);
    return luna_store_commit(s->db);
abort:
    kms_db_abort(s->db);
    return err;
}

static luna_err rotate_due(kms_svc *s, const char *tenant, const char *key_id)
{
    kms_key_info k;
    kms_why w;
    luna_err err = kms_db_begin(s->db);
    if (err != LUNA_OK)
        return err;
    LUNA_TRY(kms_key_get(s, tenant, key_id, &k, &w), abort);
    /* Re-checked under the lock: another instance may have rotated it. */
    LUNA_TRY_ENSURE(strcmp(k.state, "enabled") == 0 && k.rotation_period_sec > 0 &&
                        k.next_rotation_at <= kms_now(s),
                    LUNA_ERR_CONFLICT, abort);
    LUNA_TRY(apply_op(s, NULL, &k, "rotate", 0, &w), abort);
    return luna_store_commit(s->db);
abort:
    kms_db_abort(s->db);
    return err;
}

luna_err kms_rotation_tick(kms_svc *s, unsigned *rotated)
{
    static char due[MAX_DUE][2][KMS_ID_MAX + 1];
    bool is_destroy[MAX_DUE];
    size_t n = 0;
    bool has = false;
    luna_store_rows *rows = NULL;
    luna_store_param p[] = {luna_store_p_int64(kms_now(s))};
    *rotated = 0;
    luna_err err = luna_store_query(
        s->db,
        "SELECT tenant, key_id, state FROM kms_keys WHERE (state = 'enabled' AND "
        "rotation_period_sec > 0 AND next_rotation_at <= ?1) OR "
        "(state = 'destroy_pending' AND destroy_at <= ?1) ORDER BY next_rotation_at",
        p, 1, &rows);
    if (err != LUNA_OK)
        return err;
    while (n < MAX_DUE && (err = luna_store_rows_next(rows, &has)) == LUNA_OK && has) {
        char st[24];
        if (text_col(rows, 0, due[n][0], KMS_ID_MAX + 1) == LUNA_OK &&
            text_col(rows, 1, due[n][1], KMS_ID_MAX + 1) == LUNA_OK &&
            text_col(rows, 2, st, sizeof(st)) == LUNA_OK) {
            is_destroy[n] = strcmp(st, "destroy_pending") == 0;
            n++;
        }
    }
    luna_store_rows_free(rows);
    if (err != LUNA_OK)
        return err;
    luna_err first = LUNA_OK;
    for (size_t i = 0; i < n; i++) {
        err = is_destroy[i] ? destroy_due(s, due[i][0], due[i][1])
                            : rotate_due(s, due[i][0], due[i][1]);
        if (err == LUNA_OK) {
            (*rotated)++;
            LUNA_LOGF(LUNA_LOG_INFO, KMS_COMPONENT,
                      is_destroy[i] ? "key destroyed" : "key rotated by schedule",
                      LUNA_LOG_STR("tenant", due[i][0]), LUNA_LOG_STR("key", due[i][1]));
        } else if (err != LUNA_ERR_CONFLICT && first == LUNA_OK) {
            first = err;
        }
    }
    return first;
}
