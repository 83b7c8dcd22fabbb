/*
 * att_db.c - the attestation service's storage: the history of every
 * result (append-only), the state of every admitted TEE, and admission
 * nonces (single use).  SQLite or PostgreSQL through luna/store.h.
 *
 * Must never: update or delete a history row, move a TEE out of
 * "revoked", or accept a nonce twice (the take is one conditional UPDATE).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"

#include "att.h"

#define ATT_SCHEMA_V1(ID, BLOB)                                                                    \
    "CREATE TABLE att_history ("                                                                   \
    " seq " ID ","                                                                                 \
    " att_id TEXT NOT NULL UNIQUE,"                                                                \
    " tee_id TEXT NOT NULL,"                                                                       \
    " deployment_id TEXT NOT NULL,"                                                                \
    " kind TEXT NOT NULL,"                                                                         \
    " created_at BIGINT NOT NULL,"                                                                 \
    " status TEXT NOT NULL,"                                                                       \
    " reason TEXT NOT NULL,"                                                                       \
    " evidence " BLOB ","                                                                          \
    " report TEXT,"                                                                                \
    " body TEXT NOT NULL);"                                                                        \
    "CREATE INDEX att_history_tee ON att_history (tee_id, seq);"                                   \
    "CREATE INDEX att_history_dep ON att_history (deployment_id, seq);"                            \
    "CREATE TABLE att_tees ("                                                                      \
    " tee_id TEXT PRIMARY KEY,"                                                                    \
    " deployment_id TEXT NOT NULL,"                                                                \
    " address TEXT NOT NULL,"                                                                      \
    " state INTEGER NOT NULL,"                                                                     \
    " measurement " BLOB " NOT NULL,"                                                              \
    " admitted_at BIGINT NOT NULL,"                                                                \
    " last_ok BIGINT NOT NULL,"                                                                    \
    " updated_at BIGINT NOT NULL,"                                                                 \
    " state_reason TEXT NOT NULL);"                                                                \
    "CREATE TABLE att_nonces ("                                                                    \
    " nonce " BLOB " PRIMARY KEY,"                                                                 \
    " tee_id TEXT NOT NULL,"                                                                       \
    " expires_at BIGINT NOT NULL,"                                                                 \
    " used INTEGER NOT NULL);"

/*
 * v2: the owning tenants of each history row, as the KMS registry named
 * them when the row was written (docs/attestation.md "History").  A tenant
 * reads only rows listed here under its id.  Rows written before v2 get
 * no entry: they are not attributed after the fact (the registry of that
 * time is gone), so only the platform admin sees them.
 */
#define ATT_SCHEMA_V2                                                                              \
    "CREATE TABLE att_history_tenants ("                                                           \
    " tenant_id TEXT NOT NULL,"                                                                    \
    " seq BIGINT NOT NULL,"                                                                        \
    " PRIMARY KEY (tenant_id, seq));"                                                              \
    "CREATE INDEX att_history_tenants_seq ON att_history_tenants (seq);"

/*
 * v3: deployments registered at run time (att_deployments.c).  The row
 * keeps the signed manifest and the developer key IAM named, so every
 * start re-verifies it instead of trusting the columns.
 */
#define ATT_SCHEMA_V3(BLOB)                                                                        \
    "CREATE TABLE att_deployments ("                                                               \
    " deployment_id TEXT PRIMARY KEY,"                                                             \
    " version TEXT NOT NULL,"                                                                      \
    " tenant_id TEXT NOT NULL,"                                                                    \
    " developer_id TEXT NOT NULL,"                                                                 \
    " developer_name TEXT NOT NULL,"                                                               \
    " public_key " BLOB " NOT NULL,"                                                               \
    " manifest TEXT NOT NULL,"                                                                     \
    " registered_by TEXT NOT NULL,"                                                                \
    " registered_at BIGINT NOT NULL);"

static const luna_store_migration migrations[] = {
    {1, ATT_SCHEMA_V1("INTEGER PRIMARY KEY", "BLOB"),
     ATT_SCHEMA_V1("BIGSERIAL PRIMARY KEY", "BYTEA")},
    {2, ATT_SCHEMA_V2, NULL},
    {3, ATT_SCHEMA_V3("BLOB"), ATT_SCHEMA_V3("BYTEA")},
};

const char *att_tee_state_name(att_tee_state s)
{
    switch (s) {
    case ATT_TEE_ACTIVE: return "active";
    case ATT_TEE_QUARANTINED: return "quarantined";
    case ATT_TEE_REVOKED: return "revoked";
    }
    return "unknown";
}

luna_err att_db_open(const char *url, luna_store **out)
{
    luna_store *db = NULL;
    luna_err err;
    LUNA_GUARD(luna_store_open(url, NULL, &db));
    err = luna_store_migrate(db, migrations, sizeof migrations / sizeof migrations[0], NULL);
    if (err != LUNA_OK) {
        luna_store_close(db);
        return err;
    }
    *out = db;
    return LUNA_OK;
}

/* One owning tenant of the row att_id (duplicates in the list collapse). */
static luna_err put_tenant(luna_store *db, const char *att_id, const char *tenant, size_t len)
{
    char t[ATT_TENANT_MAX + 1];
    if (len == 0 || len > ATT_TENANT_MAX)
        return LUNA_ERR_INVALID_ARG;
    memcpy(t, tenant, len);
    t[len] = '\0';
    if (!att_tenant_id_ok(t))
        return LUNA_ERR_INVALID_ARG;
    luna_store_param p[2] = {luna_store_p_text(att_id), luna_store_p_text(t)};
    return luna_store_exec(db,
                           "INSERT INTO att_history_tenants (tenant_id, seq) SELECT ?2, seq FROM "
                           "att_history WHERE att_id = ?1 ON CONFLICT DO NOTHING",
                           p, 2, NULL);
}

/*
 * The tenants of tee_id's newest attributed row, comma-joined, into out
 * ("" when none): a row written while the registry could not be read
 * keeps the attribution the registry gave last.
 */
static luna_err last_tenants(luna_store *db, const char *tee_id, char *out, size_t cap)
{
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has;
    size_t used = 0;
    luna_store_param p[1] = {luna_store_p_text(tee_id)};

    out[0] = '\0';
    LUNA_GUARD(luna_store_query(
        db,
        "SELECT t.tenant_id FROM att_history_tenants t WHERE t.seq = (SELECT MAX(x.seq) FROM "
        "att_history_tenants x JOIN att_history h ON h.seq = x.seq WHERE h.tee_id = ?1) "
        "ORDER BY t.tenant_id",
        p, 1, &rows));
    for (;;) {
        const char *s;
        size_t len;
        LUNA_TRY(luna_store_rows_next(rows, &has), out);
        if (!has)
            break;
        LUNA_TRY(luna_store_col_text(rows, 0, &s, &len), out);
        LUNA_TRY_ENSURE(len > 0 && used + len + 2 <= cap, LUNA_ERR_STORAGE, out);
        if (used > 0)
            out[used++] = ',';
        memcpy(out + used, s, len);
        used += len;
        out[used] = '\0';
    }
    err = LUNA_OK;
out:
    luna_store_rows_free(rows);
    return err;
}

/* The row and its tenants in one transaction: never a row nobody owns by accident. */
static luna_err put_record_tx(luna_store *db, void *ctx)
{
    const att_record *r = ctx;
    char inherited[ATT_TENANTS_TEXT_MAX + 1];
    const char *list = r->tenants;
    luna_store_param p[10] = {
        luna_store_p_text(r->att_id),
        luna_store_p_text(r->tee_id),
        luna_store_p_text(r->deployment_id),
        luna_store_p_text(r->kind),
        luna_store_p_int64(r->created_at),
        luna_store_p_text(r->status),
        luna_store_p_text(r->reason),
        r->evidence != NULL ? luna_store_p_blob(r->evidence, r->evidence_len) : luna_store_p_null(),
        r->report != NULL ? luna_store_p_text(r->report) : luna_store_p_null(),
        luna_store_p_text(r->body),
    };
    if (list == NULL) {
        LUNA_GUARD(last_tenants(db, r->tee_id, inherited, sizeof inherited));
        list = inherited;
    }
    LUNA_GUARD(luna_store_exec(db,
                               "INSERT INTO att_history (att_id, tee_id, deployment_id, kind, "
                               "created_at, status, reason, evidence, report, body) VALUES "
                               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                               p, 10, NULL));
    while (*list != '\0') {
        const char *comma = strchr(list, ',');
        size_t len = comma != NULL ? (size_t)(comma - list) : strlen(list);
        LUNA_GUARD(put_tenant(db, r->att_id, list, len));
        if (comma == NULL)
            break;
        list = comma + 1;
    }
    return LUNA_OK;
}

luna_err att_db_put_record(luna_store *db, const att_record *r)
{
    return luna_store_tx(db, put_record_tx, (void *)(uintptr_t)r);
}

static luna_err row_to_json(const luna_store_rows *rows, json_t *items, int64_t *seq)
{
    const char *body;
    size_t body_len;
    const uint8_t *ev;
    size_t ev_len;
    const char *report;
    json_error_t jerr;
    json_t *obj;
    luna_err err;

    LUNA_GUARD(luna_store_col_int64(rows, 0, seq));
    LUNA_GUARD(luna_store_col_text(rows, 1, &body, &body_len));
    /* Our own row, written by att_db_put_record from a tree we built. */
    obj = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL || !json_is_object(obj)) {
        json_decref(obj);
        return LUNA_ERR_STORAGE;
    }
    err = luna_store_col_blob(rows, 2, &ev, &ev_len);
    if (err == LUNA_OK && ev_len > 0) {
        char *b64 = malloc(LUNA_B64URL_ENC_LEN(ev_len));
        if (b64 == NULL || luna_b64url_encode(ev, ev_len, b64, LUNA_B64URL_ENC_LEN(ev_len)) !=
                               LUNA_OK) {
            free(b64);
            json_decref(obj);
            return LUNA_ERR_NOMEM;
        }
        json_object_set_new(obj, "evidence", json_string(b64));
        free(b64);
    } else if (err != LUNA_OK && err != LUNA_ERR_NOT_FOUND) {
        json_decref(obj);
        return err;
    }
    err = luna_store_col_text(rows, 3, &report, NULL);
    if (err == LUNA_OK)
        json_object_set_new(obj, "report", json_string(report));
    else if (err != LUNA_ERR_NOT_FOUND) {
        json_decref(obj);
        return err;
    }
    if (json_array_append_new(items, obj) != 0)
        return LUNA_ERR_NOMEM;
    return LUNA_OK;
}

luna_err att_db_history(luna_store *db, const char *tenant, const char *column,
                        const char *value, int64_t after, size_t limit, json_t *items,
                        int64_t *next_cursor)
{
    const char *sql;
    luna_store_rows *rows = NULL;
    luna_err err;
    size_t n = 0;
    int64_t seq = 0;
    bool has;

    *next_cursor = 0;
    if (limit == 0 || limit > ATT_HISTORY_PAGE_MAX)
        return LUNA_ERR_INVALID_ARG;
    /* Fixed statements: a column name never comes from the caller.  A
       tenant's statement starts from its own rows (the join), so no
       other tenant's row can reach the page whatever the selector. */
    bool by_tee = strcmp(column, "tee_id") == 0;
    if (!by_tee && strcmp(column, "deployment_id") != 0)
        return LUNA_ERR_INVALID_ARG;
    if (tenant != NULL && !att_tenant_id_ok(tenant))
        return LUNA_ERR_INVALID_ARG;
    if (tenant == NULL)
        sql = by_tee ? "SELECT seq, body, evidence, report FROM att_history WHERE tee_id = ?1 "
                       "AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
                     : "SELECT seq, body, evidence, report FROM att_history WHERE "
                       "deployment_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
    else
        sql = by_tee ? "SELECT h.seq, h.body, h.evidence, h.report FROM att_history_tenants t "
                       "JOIN att_history h ON h.seq = t.seq WHERE t.tenant_id = ?4 AND "
                       "h.tee_id = ?1 AND t.seq < ?2 ORDER BY t.seq DESC LIMIT ?3"
                     : "SELECT h.seq, h.body, h.evidence, h.report FROM att_history_tenants t "
                       "JOIN att_history h ON h.seq = t.seq WHERE t.tenant_id = ?4 AND "
                       "h.deployment_id = ?1 AND t.seq < ?2 ORDER BY t.seq DESC LIMIT ?3";
    luna_store_param p[4] = {luna_store_p_text(value),
                             luna_store_p_int64(after > 0 ? after : INT64_MAX),
                             luna_store_p_int64((int64_t)limit + 1),
                             luna_store_p_text(tenant != NULL ? tenant : "")};
    LUNA_GUARD(luna_store_query(db, sql, p, tenant != NULL ? 4 : 3, &rows));
    for (;;) {
        LUNA_TRY(luna_store_rows_next(rows, &has), out);
        if (!has)
            break;
        if (n == limit) {
            /* One more row exists: the page ends at the last one returned. */
            *next_cursor = seq;
            break;
        }
        LUNA_TRY(row_to_json(rows, items, &seq), out);
        n++;
    }
    err = LUNA_OK;
out:
    luna_store_rows_free(rows);
    return err;
}

luna_err att_db_latest_report(luna_store *db, const char *tee_id, json_t **out)
{
    luna_store_rows *rows = NULL;
    json_t *items = json_array();
    int64_t seq = 0, created = 0;
    bool has = false;
    luna_err err;
    luna_store_param p[1] = {luna_store_p_text(tee_id)};

    *out = NULL;
    LUNA_ENSURE(items != NULL, LUNA_ERR_NOMEM);
    LUNA_TRY(luna_store_query(db,
                              "SELECT seq, body, evidence, report, created_at FROM att_history "
                              "WHERE tee_id = ?1 AND status = 'verified' AND report IS NOT NULL "
                              "ORDER BY seq DESC LIMIT 1",
                              p, 1, &rows),
             out);
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    LUNA_TRY_ENSURE(has, LUNA_ERR_NOT_FOUND, out);
    LUNA_TRY(row_to_json(rows, items, &seq), out);
    LUNA_TRY(luna_store_col_int64(rows, 4, &created), out);
    *out = json_incref(json_array_get(items, 0));
    LUNA_TRY_ENSURE(*out != NULL, LUNA_ERR_STORAGE, out);
    json_object_set_new(*out, "created_at", json_integer(created));
    err = LUNA_OK;
out:
    luna_store_rows_free(rows);
    json_decref(items);
    return err;
}

luna_err att_db_get_tee(luna_store *db, const char *tee_id, att_tee *out)
{
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has;
    const char *s;
    const uint8_t *m;
    size_t len;
    int64_t state;
    luna_store_param p[1] = {luna_store_p_text(tee_id)};

    memset(out, 0, sizeof *out);
    LUNA_GUARD(luna_store_query(db,
                                "SELECT tee_id, deployment_id, address, state, measurement, "
                                "admitted_at, last_ok, updated_at, state_reason FROM att_tees "
                                "WHERE tee_id = ?1",
                                p, 1, &rows));
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    LUNA_TRY_ENSURE(has, LUNA_ERR_NOT_FOUND, out);
    LUNA_TRY(luna_store_col_text(rows, 0, &s, &len), out);
    LUNA_TRY_ENSURE(len < sizeof out->tee_id, LUNA_ERR_STORAGE, out);
    memcpy(out->tee_id, s, len + 1);
    LUNA_TRY(luna_store_col_text(rows, 1, &s, &len), out);
    LUNA_TRY_ENSURE(len < sizeof out->deployment_id, LUNA_ERR_STORAGE, out);
    memcpy(out->deployment_id, s, len + 1);
    LUNA_TRY(luna_store_col_text(rows, 2, &s, &len), out);
    LUNA_TRY_ENSURE(len < sizeof out->address, LUNA_ERR_STORAGE, out);
    memcpy(out->address, s, len + 1);
    LUNA_TRY(luna_store_col_int64(rows, 3, &state), out);
    LUNA_TRY_ENSURE(state >= ATT_TEE_ACTIVE && state <= ATT_TEE_REVOKED, LUNA_ERR_STORAGE, out);
    out->state = (att_tee_state)state;
    LUNA_TRY(luna_store_col_blob(rows, 4, &m, &len), out);
    LUNA_TRY_ENSURE(len <= sizeof out->measurement, LUNA_ERR_STORAGE, out);
    memcpy(out->measurement, m, len);
    out->measurement_len = len;
    LUNA_TRY(luna_store_col_int64(rows, 5, &out->admitted_at), out);
    LUNA_TRY(luna_store_col_int64(rows, 6, &out->last_ok), out);
    LUNA_TRY(luna_store_col_int64(rows, 7, &out->updated_at), out);
    LUNA_TRY(luna_store_col_text(rows, 8, &s, &len), out);
    snprintf(out->state_reason, sizeof out->state_reason, "%s", s);
    err = LUNA_OK;
out:
    luna_store_rows_free(rows);
    return err;
}

luna_err att_db_put_tee(luna_store *db, const att_tee *t)
{
    /* A re-admission replaces the row unless the TEE was revoked (final). */
    luna_store_param p[9] = {
        luna_store_p_text(t->tee_id),         luna_store_p_text(t->deployment_id),
        luna_store_p_text(t->address),        luna_store_p_int64(t->state),
        luna_store_p_blob(t->measurement, t->measurement_len),
        luna_store_p_int64(t->admitted_at),   luna_store_p_int64(t->last_ok),
        luna_store_p_int64(t->updated_at),    luna_store_p_text(t->state_reason),
    };
    uint64_t changes = 0;
    LUNA_GUARD(luna_store_exec(
        db,
        "INSERT INTO att_tees (tee_id, deployment_id, address, state, measurement, admitted_at, "
        "last_ok, updated_at, state_reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT (tee_id) DO UPDATE SET deployment_id = excluded.deployment_id, address = "
        "excluded.address, state = excluded.state, measurement = excluded.measurement, "
        "admitted_at = excluded.admitted_at, last_ok = excluded.last_ok, updated_at = "
        "excluded.updated_at, state_reason = excluded.state_reason WHERE att_tees.state <> 3",
        p, 9, &changes));
    return changes == 1 ? LUNA_OK : LUNA_ERR_CONFLICT;
}

luna_err att_db_set_state(luna_store *db, const char *tee_id, att_tee_state from,
                          att_tee_state to, const char *reason, int64_t now)
{
    uint64_t changes = 0;
    luna_store_param p[5] = {luna_store_p_int64(to), luna_store_p_text(reason),
                             luna_store_p_int64(now), luna_store_p_text(tee_id),
                             luna_store_p_int64(from)};
    if (from == ATT_TEE_REVOKED)
        return LUNA_ERR_CONFLICT; /* revoked is final */
    LUNA_GUARD(luna_store_exec(db,
                               "UPDATE att_tees SET state = ?1, state_reason = ?2, updated_at = "
                               "?3 WHERE tee_id = ?4 AND state = ?5",
                               p, 5, &changes));
    return changes == 1 ? LUNA_OK : LUNA_ERR_CONFLICT;
}

luna_err att_db_touch_ok(luna_store *db, const char *tee_id, int64_t now)
{
    luna_store_param p[2] = {luna_store_p_int64(now), luna_store_p_text(tee_id)};
    return luna_store_exec(db, "UPDATE att_tees SET last_ok = ?1 WHERE tee_id = ?2", p, 2, NULL);
}

luna_err att_db_list_tees(luna_store *db, att_tee_state state, char (*ids)[ATT_TEE_ID_MAX + 1],
                          size_t cap, size_t *n)
{
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has;
    luna_store_param p[1] = {luna_store_p_int64(state)};
    *n = 0;
    LUNA_GUARD(luna_store_query(db, "SELECT tee_id FROM att_tees WHERE state = ?1 ORDER BY tee_id",
                                p, 1, &rows));
    for (;;) {
        const char *s;
        size_t len;
        LUNA_TRY(luna_store_rows_next(rows, &has), out);
        if (!has || *n == cap)
            break;
        LUNA_TRY(luna_store_col_text(rows, 0, &s, &len), out);
        if (len >= ATT_TEE_ID_MAX + 1)
            continue;
        memcpy(ids[*n], s, len + 1);
        (*n)++;
    }
    err = LUNA_OK;
out:
    luna_store_rows_free(rows);
    return err;
}

luna_err att_db_active_tees(luna_store *db, const char *deployment_id,
                            char (*ids)[ATT_TEE_ID_MAX + 1], size_t cap, size_t *n)
{
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has;
    const char *s;
    size_t len;
    luna_store_param p[2] = {luna_store_p_text(deployment_id), luna_store_p_int64((int64_t)cap)};
    *n = 0;
    LUNA_GUARD(luna_store_query(db,
                                "SELECT tee_id FROM att_tees WHERE deployment_id = ?1 AND state "
                                "= 1 ORDER BY last_ok DESC, tee_id LIMIT ?2",
                                p, 2, &rows));
    for (;;) {
        LUNA_TRY(luna_store_rows_next(rows, &has), out);
        if (!has || *n == cap)
            break;
        LUNA_TRY(luna_store_col_text(rows, 0, &s, &len), out);
        LUNA_TRY_ENSURE(len <= ATT_TEE_ID_MAX, LUNA_ERR_STORAGE, out);
        memcpy(ids[*n], s, len + 1);
        (*n)++;
    }
    err = *n > 0 ? LUNA_OK : LUNA_ERR_NOT_FOUND;
out:
    luna_store_rows_free(rows);
    return err;
}

luna_err att_db_pick_tee(luna_store *db, const char *deployment_id,
                         char tee_id[ATT_TEE_ID_MAX + 1])
{
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has;
    const char *s;
    size_t len;
    luna_store_param p[1] = {luna_store_p_text(deployment_id)};
    LUNA_GUARD(luna_store_query(db,
                                "SELECT tee_id FROM att_tees WHERE deployment_id = ?1 AND state "
                                "= 1 ORDER BY last_ok DESC, tee_id LIMIT 1",
                                p, 1, &rows));
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    LUNA_TRY_ENSURE(has, LUNA_ERR_NOT_FOUND, out);
    LUNA_TRY(luna_store_col_text(rows, 0, &s, &len), out);
    LUNA_TRY_ENSURE(len <= ATT_TEE_ID_MAX, LUNA_ERR_STORAGE, out);
    memcpy(tee_id, s, len + 1);
    err = LUNA_OK;
out:
    luna_store_rows_free(rows);
    return err;
}

luna_err att_db_put_nonce(luna_store *db, const uint8_t nonce[ATT_NONCE_LEN], const char *tee_id,
                          int64_t expires_at)
{
    luna_store_param p[3] = {luna_store_p_blob(nonce, ATT_NONCE_LEN), luna_store_p_text(tee_id),
                             luna_store_p_int64(expires_at)};
    /* Expired nonces are kept until here: a cheap sweep on each issue. */
    luna_store_param q[1] = {luna_store_p_int64(expires_at - 10 * ATT_CHALLENGE_TTL)};
    LUNA_GUARD(luna_store_exec(db, "DELETE FROM att_nonces WHERE expires_at < ?1", q, 1, NULL));
    return luna_store_exec(db,
                           "INSERT INTO att_nonces (nonce, tee_id, expires_at, used) VALUES "
                           "(?1, ?2, ?3, 0)",
                           p, 3, NULL);
}

luna_err att_db_take_nonce(luna_store *db, const uint8_t nonce[ATT_NONCE_LEN], const char *tee_id,
                           int64_t now)
{
    uint64_t changes = 0;
    luna_store_rows *rows = NULL;
    luna_err err;
    bool has;
    int64_t expires_at = 0, used = 0;
    luna_store_param p[2] = {luna_store_p_blob(nonce, ATT_NONCE_LEN), luna_store_p_text(tee_id)};

    LUNA_GUARD(luna_store_exec(db,
                               "UPDATE att_nonces SET used = 1 WHERE nonce = ?1 AND tee_id = ?2 "
                               "AND used = 0",
                               p, 2, &changes));
    LUNA_GUARD(luna_store_query(db,
                                "SELECT expires_at, used FROM att_nonces WHERE nonce = ?1 AND "
                                "tee_id = ?2",
                                p, 2, &rows));
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    LUNA_TRY_ENSURE(has, LUNA_ERR_NOT_FOUND, out);
    LUNA_TRY(luna_store_col_int64(rows, 0, &expires_at), out);
    LUNA_TRY(luna_store_col_int64(rows, 1, &used), out);
    if (changes != 1)
        err = LUNA_ERR_CONFLICT;
    else if (now > expires_at)
        err = LUNA_ERR_EXPIRED;
    else
        err = LUNA_OK;
out:
    luna_store_rows_free(rows);
    return err;
}
