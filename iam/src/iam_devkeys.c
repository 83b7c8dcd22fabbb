/*
 * iam_devkeys.c - GET /v1/iam/developer-keys/{key_id}: the developer
 * public-key lookup between services (docs/iam.md, "Developer keys").
 *
 * Owns: the key id grammar check and the one query that answers it.  The
 * route is public-key material only and takes no token; its callers are
 * fixed by the mTLS allow-list (iam.callers.developer_keys).
 * Must never: answer a key that is revoked or whose principal is disabled
 * as "active", pick one of two tenants' rows for the same key id, or echo
 * the requested path in an error.
 */
#include <string.h>

#include <jansson.h>

#include "iam.h"
#include "luna/bytes.h"
#include "luna/http.h"

#define DEVKEY_ROWS_MAX 2u /* one answer, or the proof that it is ambiguous */

bool iam_devkey_id_valid(const char *s)
{
    /* "hh:hh:...:hh": 16 lowercase hex pairs joined by ':' (47 chars). */
    if (s == NULL || strnlen(s, IAM_DEV_KEY_ID_LEN + 1) != IAM_DEV_KEY_ID_LEN)
        return false;
    for (size_t i = 0; i < IAM_DEV_KEY_ID_LEN; i++) {
        char c = s[i];
        if (i % 3 == 2) {
            if (c != ':')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

typedef struct devkey_row {
    char tenant[IAM_ID_BUF];
    char principal[IAM_ID_BUF];
    char display[IAM_DISPLAY_NAME_MAX + 1];
    uint8_t pk[LUNA_ED25519_PUB_LEN];
    bool revoked;
} devkey_row;

static luna_err copy_text(const luna_store_rows *r, size_t col, char *out, size_t cap)
{
    const char *v = NULL;
    size_t n = 0;
    LUNA_GUARD(luna_store_col_text(r, col, &v, &n));
    LUNA_ENSURE(n < cap, LUNA_ERR_FORMAT);
    memcpy(out, v, n);
    out[n] = '\0';
    return LUNA_OK;
}

static luna_err read_row(const luna_store_rows *r, devkey_row *out)
{
    const uint8_t *pk = NULL;
    size_t pk_len = 0;
    bool key_live = false, principal_live = false;
    LUNA_GUARD(copy_text(r, 0, out->tenant, sizeof(out->tenant)));
    LUNA_GUARD(copy_text(r, 1, out->principal, sizeof(out->principal)));
    LUNA_GUARD(copy_text(r, 2, out->display, sizeof(out->display)));
    LUNA_GUARD(luna_store_col_blob(r, 3, &pk, &pk_len));
    LUNA_ENSURE(pk_len == LUNA_ED25519_PUB_LEN, LUNA_ERR_FORMAT);
    memcpy(out->pk, pk, pk_len);
    /* A NULL revoked_at / disabled_at is what keeps the key in use. */
    LUNA_GUARD(luna_store_col_is_null(r, 4, &key_live));
    LUNA_GUARD(luna_store_col_is_null(r, 5, &principal_live));
    out->revoked = !key_live || !principal_live;
    return LUNA_OK;
}

/* *n_found: rows seen (0, 1, or 2 = ambiguous); *out holds the first. */
static luna_err lookup(luna_store *db, const char *key_id, devkey_row *out, size_t *n_found)
{
    const luna_store_param p[] = {luna_store_p_text(key_id)};
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has = false;
    *n_found = 0;
    LUNA_TRY(luna_store_query(db,
                              "SELECT k.tenant_id, k.principal_id, p.display_name, k.public_key, "
                              "k.revoked_at, p.disabled_at FROM iam_developer_keys k "
                              "JOIN iam_principals p ON p.tenant_id = k.tenant_id "
                              "AND p.principal_id = k.principal_id WHERE k.key_id = ?1 "
                              "ORDER BY k.tenant_id LIMIT 2",
                              p, 1, &rows),
             out);
    for (;;) {
        LUNA_TRY(luna_store_rows_next(rows, &has), out);
        if (!has || *n_found >= DEVKEY_ROWS_MAX)
            break;
        if (*n_found == 0)
            LUNA_TRY(read_row(rows, out), out);
        (*n_found)++;
    }
out:
    luna_store_rows_free(rows);
    return err;
}

void iam_devkeys_handle(luna_http_request *req, void *arg)
{
    luna_store *db = arg;
    const char *path = luna_http_request_path(req);
    const char *key_id = path + strlen(IAM_DEVKEYS_PREFIX);
    devkey_row row;
    size_t n = 0;
    char pkb[LUNA_B64URL_ENC_LEN(LUNA_ED25519_PUB_LEN)];
    memset(&row, 0, sizeof(row));
    /* The route matched the prefix, so path is at least that long. */
    if (strncmp(path, IAM_DEVKEYS_PREFIX, strlen(IAM_DEVKEYS_PREFIX)) != 0 ||
        !iam_devkey_id_valid(key_id)) {
        luna_http_reply_error(req, 400, "invalid_key_id",
                              "a key id is 16 lowercase hex pairs joined by ':'");
        return;
    }
    luna_err err = lookup(db, key_id, &row, &n);
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err == LUNA_ERR_UNAVAILABLE ? err : LUNA_ERR_STORAGE);
        return;
    }
    if (n == 0) {
        luna_http_reply_error(req, 404, "unknown_developer_key", "no developer key has this id");
        return;
    }
    if (n > 1) {
        /* The same public key enrolled in two tenants: the caller could not
           tell whose deployment it would accept, so nobody gets an answer. */
        luna_http_reply_error(req, 409, "ambiguous_developer_key",
                              "this key id is enrolled in more than one tenant");
        return;
    }
    if (luna_b64url_encode(row.pk, sizeof(row.pk), pkb, sizeof(pkb)) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_INTERNAL);
        return;
    }
    json_t *b = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "key_id", key_id, "tenant_id",
                          row.tenant, "developer_id", row.principal, "display_name", row.display,
                          "public_key", pkb, "status", row.revoked ? "revoked" : "active");
    if (b == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 200, b);
    json_decref(b);
}
