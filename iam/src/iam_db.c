/*
 * iam_db.c - the IAM schema and its migrations (SQLite and PostgreSQL).
 *
 * Every table but the signing keys is keyed by tenant first, and every
 * statement the service runs names the tenant in its WHERE clause or
 * primary key: a row of another tenant cannot be reached by construction.
 * API keys are stored as (key id, salt, HMAC); nothing here holds a
 * credential in clear.
 *
 * Must never: format a value into SQL text (everything is a bound
 * parameter), or change an applied migration (append a new step).
 */
#include "iam.h"

#define IAM_SCHEMA_V1(BIN)                                                                         \
    "CREATE TABLE iam_tenants ("                                                                   \
    " tenant_id TEXT PRIMARY KEY,"                                                                 \
    " display_name TEXT NOT NULL,"                                                                 \
    " anonymous_allowed INTEGER NOT NULL DEFAULT 0 CHECK (anonymous_allowed IN (0, 1)),"           \
    " created_at BIGINT NOT NULL);"                                                                \
    "CREATE TABLE iam_anonymous_jobs ("                                                            \
    " tenant_id TEXT NOT NULL REFERENCES iam_tenants (tenant_id),"                                 \
    " job TEXT NOT NULL,"                                                                          \
    " PRIMARY KEY (tenant_id, job));"                                                              \
    "CREATE TABLE iam_principals ("                                                                \
    " tenant_id TEXT NOT NULL REFERENCES iam_tenants (tenant_id),"                                 \
    " principal_id TEXT NOT NULL,"                                                                 \
    " kind TEXT NOT NULL CHECK (kind IN ('user', 'service', 'client', 'developer')),"              \
    " display_name TEXT NOT NULL,"                                                                 \
    " created_at BIGINT NOT NULL,"                                                                 \
    " disabled_at BIGINT,"                                                                         \
    " PRIMARY KEY (tenant_id, principal_id));"                                                     \
    "CREATE TABLE iam_roles ("                                                                     \
    " tenant_id TEXT NOT NULL,"                                                                    \
    " principal_id TEXT NOT NULL,"                                                                 \
    " role TEXT NOT NULL,"                                                                         \
    " PRIMARY KEY (tenant_id, principal_id, role),"                                                \
    " FOREIGN KEY (tenant_id, principal_id) REFERENCES iam_principals (tenant_id, principal_id));" \
    "CREATE TABLE iam_api_keys ("                                                                  \
    " tenant_id TEXT NOT NULL,"                                                                    \
    " key_id TEXT NOT NULL,"                                                                       \
    " principal_id TEXT NOT NULL,"                                                                 \
    " salt " BIN " NOT NULL,"                                                                      \
    " hash " BIN " NOT NULL,"                                                                      \
    " created_at BIGINT NOT NULL,"                                                                 \
    " expires_at BIGINT NOT NULL,"                                                                 \
    " last_used_at BIGINT,"                                                                        \
    " revoked_at BIGINT,"                                                                          \
    " PRIMARY KEY (tenant_id, key_id),"                                                            \
    " FOREIGN KEY (tenant_id, principal_id) REFERENCES iam_principals (tenant_id, principal_id));" \
    "CREATE TABLE iam_client_keys ("                                                               \
    " tenant_id TEXT NOT NULL,"                                                                    \
    " key_id TEXT NOT NULL,"                                                                       \
    " principal_id TEXT NOT NULL,"                                                                 \
    " public_key " BIN " NOT NULL,"                                                                \
    " created_at BIGINT NOT NULL,"                                                                 \
    " revoked_at BIGINT,"                                                                          \
    " PRIMARY KEY (tenant_id, key_id),"                                                            \
    " FOREIGN KEY (tenant_id, principal_id) REFERENCES iam_principals (tenant_id, principal_id));" \
    "CREATE TABLE iam_developer_keys ("                                                            \
    " tenant_id TEXT NOT NULL,"                                                                    \
    " key_id TEXT NOT NULL,"                                                                       \
    " principal_id TEXT NOT NULL,"                                                                 \
    " public_key " BIN " NOT NULL,"                                                                \
    " created_at BIGINT NOT NULL,"                                                                 \
    " revoked_at BIGINT,"                                                                          \
    " PRIMARY KEY (tenant_id, key_id),"                                                            \
    " FOREIGN KEY (tenant_id, principal_id) REFERENCES iam_principals (tenant_id, principal_id));" \
    "CREATE TABLE iam_signing_keys ("                                                              \
    " kid TEXT PRIMARY KEY,"                                                                       \
    " public_key " BIN " NOT NULL,"                                                                \
    " sealed_seed " BIN " NOT NULL,"                                                               \
    " created_at BIGINT NOT NULL,"                                                                 \
    " activate_at BIGINT NOT NULL,"                                                                \
    " retire_at BIGINT);"

static const luna_store_migration iam_migrations[] = {
    {1, IAM_SCHEMA_V1("BLOB"), IAM_SCHEMA_V1("BYTEA")},
};

luna_err iam_db_migrate(luna_store *db)
{
    if (db == NULL)
        return LUNA_ERR_INVALID_ARG;
    return luna_store_migrate(db, iam_migrations,
                              sizeof(iam_migrations) / sizeof(iam_migrations[0]), NULL);
}
