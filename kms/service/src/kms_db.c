/*
 * kms_db.c - the KMS schema (migrations for SQLite and PostgreSQL) and the
 * transaction opening the services share.
 *
 * Must never: store a key in any form but wrapped by the HSM root (KEKs)
 * or sealed under a KEK inside the HSM (data keys, one-time keys).
 */
#include "kms.h"

static const char m1_sqlite[] =
    "CREATE TABLE kms_tees ("
    " tee_id TEXT PRIMARY KEY, tenants TEXT NOT NULL, deployment_id TEXT NOT NULL,"
    " tee_type TEXT NOT NULL, tee_kx_pk BLOB, tee_sign_pk BLOB, mr_enclave BLOB NOT NULL,"
    " mr_signer BLOB, status TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL, row_version INTEGER NOT NULL, mac BLOB NOT NULL);"
    "CREATE TABLE kms_keys ("
    " tenant TEXT NOT NULL, key_id TEXT NOT NULL, state TEXT NOT NULL,"
    " current_version INTEGER NOT NULL, min_decrypt_version INTEGER NOT NULL,"
    " rotation_period_sec INTEGER NOT NULL, next_rotation_at INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, destroy_at INTEGER NOT NULL,"
    " mac BLOB NOT NULL, PRIMARY KEY (tenant, key_id));"
    "CREATE TABLE kms_key_versions ("
    " tenant TEXT NOT NULL, key_id TEXT NOT NULL, version INTEGER NOT NULL,"
    " wrapped BLOB NOT NULL, created_at INTEGER NOT NULL,"
    " PRIMARY KEY (tenant, key_id, version));"
    "CREATE TABLE kms_otks ("
    " otk_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, job TEXT NOT NULL, tee_id TEXT NOT NULL,"
    " deployment_id TEXT NOT NULL, request_id TEXT NOT NULL, client_pk BLOB NOT NULL,"
    " key_version INTEGER NOT NULL, sealed BLOB NOT NULL, state TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, released_at INTEGER NOT NULL,"
    " UNIQUE (tenant, request_id));"
    "CREATE INDEX kms_otks_tee ON kms_otks (tee_id, state);"
    "CREATE TABLE kms_nonces ("
    " nonce BLOB PRIMARY KEY, tee_id TEXT NOT NULL, otk_id TEXT NOT NULL,"
    " expires_at INTEGER NOT NULL, used INTEGER NOT NULL);";

static const char m1_pg[] =
    "CREATE TABLE kms_tees ("
    " tee_id TEXT PRIMARY KEY, tenants TEXT NOT NULL, deployment_id TEXT NOT NULL,"
    " tee_type TEXT NOT NULL, tee_kx_pk BYTEA, tee_sign_pk BYTEA, mr_enclave BYTEA NOT NULL,"
    " mr_signer BYTEA, status TEXT NOT NULL, created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL, row_version BIGINT NOT NULL, mac BYTEA NOT NULL);"
    "CREATE TABLE kms_keys ("
    " tenant TEXT NOT NULL, key_id TEXT NOT NULL, state TEXT NOT NULL,"
    " current_version BIGINT NOT NULL, min_decrypt_version BIGINT NOT NULL,"
    " rotation_period_sec BIGINT NOT NULL, next_rotation_at BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, destroy_at BIGINT NOT NULL,"
    " mac BYTEA NOT NULL, PRIMARY KEY (tenant, key_id));"
    "CREATE TABLE kms_key_versions ("
    " tenant TEXT NOT NULL, key_id TEXT NOT NULL, version BIGINT NOT NULL,"
    " wrapped BYTEA NOT NULL, created_at BIGINT NOT NULL,"
    " PRIMARY KEY (tenant, key_id, version));"
    "CREATE TABLE kms_otks ("
    " otk_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, job TEXT NOT NULL, tee_id TEXT NOT NULL,"
    " deployment_id TEXT NOT NULL, request_id TEXT NOT NULL, client_pk BYTEA NOT NULL,"
    " key_version BIGINT NOT NULL, sealed BYTEA NOT NULL, state TEXT NOT NULL,"
    " created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, released_at BIGINT NOT NULL,"
    " UNIQUE (tenant, request_id));"
    "CREATE INDEX kms_otks_tee ON kms_otks (tee_id, state);"
    "CREATE TABLE kms_nonces ("
    " nonce BYTEA PRIMARY KEY, tee_id TEXT NOT NULL, otk_id TEXT NOT NULL,"
    " expires_at BIGINT NOT NULL, used BIGINT NOT NULL);";

/* Registered deployments (kms_deployments.c): additive. */
static const char m2_sqlite[] =
    "CREATE TABLE kms_deployments ("
    " deployment_id TEXT PRIMARY KEY, version TEXT NOT NULL, manifest_sha256 BLOB NOT NULL,"
    " manifest TEXT NOT NULL, mr_enclave BLOB NOT NULL, mr_signer BLOB NOT NULL,"
    " build_hash BLOB NOT NULL, key_id TEXT NOT NULL, developer_id TEXT NOT NULL,"
    " tenant TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);";

static const char m2_pg[] =
    "CREATE TABLE kms_deployments ("
    " deployment_id TEXT PRIMARY KEY, version TEXT NOT NULL, manifest_sha256 BYTEA NOT NULL,"
    " manifest TEXT NOT NULL, mr_enclave BYTEA NOT NULL, mr_signer BYTEA NOT NULL,"
    " build_hash BYTEA NOT NULL, key_id TEXT NOT NULL, developer_id TEXT NOT NULL,"
    " tenant TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);";

/* The HSM MAC of each kms_deployments row (kms_deployments.c): additive and
 * nullable, since rows of migration 2 have none; such a row is refused
 * until its deployment is registered again. */
static const char m3_sqlite[] = "ALTER TABLE kms_deployments ADD COLUMN mac BLOB;";
static const char m3_pg[] = "ALTER TABLE kms_deployments ADD COLUMN mac BYTEA;";

static const luna_store_migration steps[] = {
    {1, m1_sqlite, m1_pg},
    {2, m2_sqlite, m2_pg},
    {3, m3_sqlite, m3_pg},
};

luna_err kms_db_migrate(luna_store *db)
{
    return luna_store_migrate(db, steps, sizeof(steps) / sizeof(steps[0]), NULL);
}

luna_err kms_db_begin(luna_store *db)
{
    /* SQLite's BEGIN IMMEDIATE already waited the busy timeout; waiting
     * again would only hold the event loop longer: the caller answers
     * storage_unavailable (503, retryable) instead. */
    return luna_store_begin(db);
}

bool kms_db_retryable(const luna_store *db, luna_err err)
{
    /* A PostgreSQL serialization failure or deadlock fails at once and
     * succeeds on a retry; a busy SQLite database has already waited. */
    return err == LUNA_ERR_UNAVAILABLE && luna_store_get_kind(db) == LUNA_STORE_POSTGRES;
}

void kms_db_abort(luna_store *db)
{
    luna_err err = luna_store_rollback(db);
    (void)err; /* nothing more to do: the transaction is gone either way */
}
