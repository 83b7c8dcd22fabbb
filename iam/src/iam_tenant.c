/*
 * iam_tenant.c - creating a tenant with its first administrator and
 * storing an API key: the two writes shared by `luna-iam bootstrap` and the
 * admin API.
 *
 * Must never: store a key's secret part, create a second platform admin
 * through bootstrap, or leave a half-created tenant (one transaction).
 */
#include <string.h>

#include "iam.h"
#include "luna/bytes.h"

luna_err iam_apikey_store(luna_store *db, const uint8_t pepper[IAM_PEPPER_LEN],
                          const char *tenant, const char *principal, const char *key,
                          int64_t now, int64_t ttl)
{
    if (db == NULL || pepper == NULL || tenant == NULL || principal == NULL || key == NULL ||
        ttl <= 0 || now < 0 || now > INT64_MAX - ttl)
        return LUNA_ERR_INVALID_ARG;
    char key_id[IAM_APIKEY_ID_BUF];
    const char *secret = NULL;
    uint8_t salt[IAM_APIKEY_SALT_LEN], hash[IAM_APIKEY_HASH_LEN];
    luna_err err;
    LUNA_TRY(iam_apikey_parse(key, strnlen(key, IAM_APIKEY_BUF), key_id, &secret), done);
    LUNA_TRY(luna_random(salt, sizeof(salt)), done);
    LUNA_TRY(iam_apikey_hash(pepper, salt, key_id, secret, hash), done);
    const luna_store_param p[] = {
        luna_store_p_text(tenant),     luna_store_p_text(key_id),
        luna_store_p_text(principal),  luna_store_p_blob(salt, sizeof(salt)),
        luna_store_p_blob(hash, sizeof(hash)), luna_store_p_int64(now),
        luna_store_p_int64(now + ttl),
    };
    LUNA_TRY(luna_store_exec(db,
                             "INSERT INTO iam_api_keys (tenant_id, key_id, principal_id, salt, "
                             "hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                             p, 7, NULL),
             done);
done:
    luna_wipe(hash, sizeof(hash));
    return err;
}

typedef struct tenant_ctx {
    const char *tenant, *display, *admin_id, *key;
    const uint8_t *pepper;
    bool platform;
    int64_t now, ttl;
} tenant_ctx;

static luna_err add_role(luna_store *db, const tenant_ctx *c, iam_role r)
{
    const luna_store_param p[] = {luna_store_p_text(c->tenant), luna_store_p_text(c->admin_id),
                                  luna_store_p_text(iam_role_name(r))};
    return luna_store_exec(db,
                           "INSERT INTO iam_roles (tenant_id, principal_id, role) "
                           "VALUES (?1, ?2, ?3)",
                           p, 3, NULL);
}

static luna_err tenant_tx(luna_store *db, void *arg)
{
    const tenant_ctx *c = arg;
    luna_store_rows *rows = NULL;
    luna_err err = LUNA_OK;
    if (c->platform) {
        const luna_store_param q[] = {luna_store_p_text(iam_role_name(IAM_ROLE_PLATFORM_ADMIN))};
        LUNA_TRY(luna_store_query(db, "SELECT COUNT(*) FROM iam_roles WHERE role = ?1", q, 1,
                                  &rows),
                 done);
        bool has = false;
        int64_t count = 0;
        LUNA_TRY(luna_store_rows_next(rows, &has), done);
        LUNA_TRY_ENSURE(has, LUNA_ERR_STORAGE, done);
        LUNA_TRY(luna_store_col_int64(rows, 0, &count), done);
        luna_store_rows_free(rows);
        rows = NULL;
        LUNA_TRY_ENSURE(count == 0, LUNA_ERR_CONFLICT, done);
    }
    const luna_store_param t[] = {luna_store_p_text(c->tenant), luna_store_p_text(c->display),
                                  luna_store_p_int64(c->now)};
    LUNA_TRY(luna_store_exec(db,
                             "INSERT INTO iam_tenants (tenant_id, display_name, created_at) "
                             "VALUES (?1, ?2, ?3)",
                             t, 3, NULL),
             done);
    const luna_store_param p[] = {luna_store_p_text(c->tenant), luna_store_p_text(c->admin_id),
                                  luna_store_p_text("Tenant administrator"),
                                  luna_store_p_int64(c->now)};
    LUNA_TRY(luna_store_exec(db,
                             "INSERT INTO iam_principals (tenant_id, principal_id, kind, "
                             "display_name, created_at) VALUES (?1, ?2, 'user', ?3, ?4)",
                             p, 4, NULL),
             done);
    LUNA_TRY(add_role(db, c, IAM_ROLE_TENANT_ADMIN), done);
    if (c->platform) {
        LUNA_TRY(add_role(db, c, IAM_ROLE_PLATFORM_ADMIN), done);
    } else {
        /* The tenant owner: a role is handed out only by a holder of it
           (docs/iam.md, "Delegation"), so the first principal of a tenant
           holds every tenant role and delegates from there. */
        for (unsigned r = 0; r < IAM_ROLE__COUNT; r++) {
            if (r != IAM_ROLE_TENANT_ADMIN && r != IAM_ROLE_PLATFORM_ADMIN)
                LUNA_TRY(add_role(db, c, (iam_role)r), done);
        }
    }
    LUNA_TRY(iam_apikey_store(db, c->pepper, c->tenant, c->admin_id, c->key, c->now, c->ttl),
             done);
done:
    luna_store_rows_free(rows);
    return err;
}

luna_err iam_tenant_create(luna_store *db, const luna_secret *master, const char *tenant,
                           const char *display, const char *admin_id, bool platform,
                           int64_t now, int64_t ttl, char key_out[IAM_APIKEY_BUF],
                           char key_id_out[IAM_APIKEY_ID_BUF])
{
    if (db == NULL || master == NULL || !iam_id_valid(tenant) || !iam_id_valid(admin_id) ||
        strcmp(admin_id, IAM_ANONYMOUS) == 0 || key_out == NULL || key_id_out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (display != NULL && strlen(display) > IAM_DISPLAY_NAME_MAX)
        return LUNA_ERR_INVALID_ARG;
    uint8_t pepper[IAM_PEPPER_LEN];
    luna_err err;
    LUNA_TRY(iam_master_derive(master, IAM_PEPPER_INFO, pepper, sizeof(pepper)), done);
    LUNA_TRY(iam_apikey_generate(key_out, key_id_out), done);
    tenant_ctx c = {tenant, display != NULL ? display : tenant, admin_id, key_out, pepper,
                    platform, now, ttl};
    LUNA_TRY(luna_store_tx(db, tenant_tx, &c), done);
done:
    luna_wipe(pepper, sizeof(pepper));
    if (err != LUNA_OK) {
        luna_wipe(key_out, IAM_APIKEY_BUF);
        key_id_out[0] = '\0';
    }
    return err;
}

typedef struct drop_ctx {
    const char *tenant, *principal, *key_id;
} drop_ctx;

static luna_err drop_tx(luna_store *db, void *arg)
{
    const drop_ctx *c = arg;
    static const char *const sql[] = {
        "DELETE FROM iam_api_keys WHERE tenant_id = ?1",
        "DELETE FROM iam_client_keys WHERE tenant_id = ?1",
        "DELETE FROM iam_developer_keys WHERE tenant_id = ?1",
        "DELETE FROM iam_roles WHERE tenant_id = ?1",
        "DELETE FROM iam_principals WHERE tenant_id = ?1",
        "DELETE FROM iam_anonymous_jobs WHERE tenant_id = ?1",
        "DELETE FROM iam_tenants WHERE tenant_id = ?1",
    };
    /* Only the tenant exactly as bootstrap left it: one principal, one key. */
    const luna_store_param k[] = {luna_store_p_text(c->tenant), luna_store_p_text(c->principal),
                                  luna_store_p_text(c->key_id)};
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has = false;
    int64_t n[3] = {0, 0, 0};
    LUNA_TRY(luna_store_query(db,
                              "SELECT (SELECT COUNT(*) FROM iam_principals WHERE tenant_id = ?1), "
                              "(SELECT COUNT(*) FROM iam_api_keys WHERE tenant_id = ?1), "
                              "(SELECT COUNT(*) FROM iam_api_keys WHERE tenant_id = ?1 AND "
                              "principal_id = ?2 AND key_id = ?3)",
                              k, 3, &rows),
             done);
    LUNA_TRY(luna_store_rows_next(rows, &has), done);
    LUNA_TRY_ENSURE(has, LUNA_ERR_STORAGE, done);
    for (size_t i = 0; i < 3; i++)
        LUNA_TRY(luna_store_col_int64(rows, i, &n[i]), done);
    luna_store_rows_free(rows);
    rows = NULL;
    LUNA_TRY_ENSURE(n[0] == 1 && n[1] == 1 && n[2] == 1, LUNA_ERR_CONFLICT, done);
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
        LUNA_TRY(luna_store_exec(db, sql[i], k, 1, NULL), done);
done:
    luna_store_rows_free(rows);
    return err;
}

luna_err iam_tenant_drop_bootstrap(luna_store *db, const char *tenant, const char *admin_id,
                                   const char *key_id)
{
    if (db == NULL || !iam_id_valid(tenant) || !iam_id_valid(admin_id) || key_id == NULL)
        return LUNA_ERR_INVALID_ARG;
    drop_ctx c = {tenant, admin_id, key_id};
    return luna_store_tx(db, drop_tx, &c);
}
