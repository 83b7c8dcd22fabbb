/*
 * store_pg.c - the PostgreSQL backend of luna/store.h over libpq: one
 * PGconn per handle, parameterised statements only (PQsendQueryParams,
 * values never in the SQL text), binary results streamed one row at a
 * time (single-row mode) and SQLSTATEs mapped to luna_err.
 * It must never log or keep the connection string (it may hold a
 * password), never copy a server message (they can quote values) into a
 * diagnostic, and never trust the byte lengths the server sends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "luna/bytes.h"
#include "store_internal.h"

/* Type OIDs from PostgreSQL's pg_type.dat (stable across versions). */
#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17
#define PG_OID_NAME 19
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23
#define PG_OID_TEXT 25
#define PG_OID_UNKNOWN 705
#define PG_OID_BPCHAR 1042
#define PG_OID_VARCHAR 1043

/* Arbitrary constant key of the advisory lock migrators share. */
#define PG_MIGRATION_LOCK_SQL "SELECT pg_advisory_xact_lock(7451927501)"

typedef struct pg_rows {
    PGresult *cur;     /* the current single-row result */
    bool pending;      /* cur holds a row next() has not handed out yet */
    bool finished;     /* the final result and NULL have been read */
} pg_rows;

static const uint8_t pg_empty[1] = {0};

static PGconn *pg_conn(const luna_store *s)
{
    return (PGconn *)s->impl;
}

static bool pg_state_is(const char *st, const char *want)
{
    return st != NULL && strcmp(st, want) == 0;
}

/* Maps an error result (or NULL for a client-side failure) to luna_err. */
static luna_err pg_map(luna_store *s, const PGresult *res)
{
    const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char diag[32];

    if (st == NULL || strlen(st) != 5 || strspn(st, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 5) {
        if (PQstatus(pg_conn(s)) == CONNECTION_BAD) {
            luna_store_set_diag(s, "postgres: ", "connection lost");
            return LUNA_ERR_UNAVAILABLE;
        }
        luna_store_set_diag(s, "postgres: ", "client-side failure");
        return LUNA_ERR_STORAGE;
    }
    (void)snprintf(diag, sizeof(diag), "SQLSTATE %s", st);
    luna_store_set_diag(s, "postgres: ", diag);
    if (pg_state_is(st, "23505"))
        return LUNA_ERR_CONFLICT;
    if (pg_state_is(st, "40001") || pg_state_is(st, "40P01")) {
        s->retryable = true;
        return LUNA_ERR_UNAVAILABLE;
    }
    if (strncmp(st, "08", 2) == 0 || pg_state_is(st, "57P01") || pg_state_is(st, "57P02") ||
        pg_state_is(st, "57P03") || pg_state_is(st, "53300"))
        return LUNA_ERR_UNAVAILABLE;
    if (pg_state_is(st, "57014"))
        return LUNA_ERR_TIMEOUT;
    if (pg_state_is(st, "54000"))
        return LUNA_ERR_TOO_LARGE;
    return LUNA_ERR_STORAGE;
}

/* ---- parameters ---- */

typedef struct pg_params {
    Oid *types;
    const char **values;
    int *lengths;
    int *formats;
    uint8_t *ints; /* 8 bytes per param, big-endian int8 */
    char **texts;  /* NUL-terminated copies (text format needs them) */
    size_t n;
} pg_params;

static void pg_params_free(pg_params *pp)
{
    if (pp->texts != NULL) {
        for (size_t i = 0; i < pp->n; i++) {
            if (pp->texts[i] != NULL) {
                /* Parameters can be sensitive (hashes, wrapped keys). */
                luna_wipe(pp->texts[i], strlen(pp->texts[i]));
                free(pp->texts[i]);
            }
        }
    }
    if (pp->ints != NULL)
        luna_wipe(pp->ints, pp->n * 8);
    free(pp->types);
    free(pp->values);
    free(pp->lengths);
    free(pp->formats);
    free(pp->ints);
    free(pp->texts);
    memset(pp, 0, sizeof(*pp));
}

static luna_err pg_params_build(const luna_store_param *p, size_t n, pg_params *pp)
{
    memset(pp, 0, sizeof(*pp));
    if (n == 0)
        return LUNA_OK;
    pp->n = n;
    pp->types = calloc(n, sizeof(*pp->types));
    pp->values = calloc(n, sizeof(*pp->values));
    pp->lengths = calloc(n, sizeof(*pp->lengths));
    pp->formats = calloc(n, sizeof(*pp->formats));
    pp->ints = calloc(n, 8);
    pp->texts = calloc(n, sizeof(*pp->texts));
    if (pp->types == NULL || pp->values == NULL || pp->lengths == NULL || pp->formats == NULL ||
        pp->ints == NULL || pp->texts == NULL) {
        pg_params_free(pp);
        return LUNA_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        switch (p[i].type) {
        case LUNA_STORE_T_NULL:
            /* Type 0: the server infers it from the context. */
            pp->values[i] = NULL;
            break;
        case LUNA_STORE_T_INT64: {
            uint64_t u = (uint64_t)p[i].i64;
            uint8_t *b = pp->ints + 8 * i;
            for (int k = 7; k >= 0; k--) {
                b[k] = (uint8_t)(u & 0xff);
                u >>= 8;
            }
            pp->types[i] = PG_OID_INT8;
            pp->values[i] = (const char *)b;
            pp->lengths[i] = 8;
            pp->formats[i] = 1;
            break;
        }
        case LUNA_STORE_T_TEXT:
            /* Text format with an inferred type, so "?1" also fits
             * varchar, timestamptz... columns; the NUL-free check was done. */
            pp->texts[i] = malloc(p[i].len + 1);
            if (pp->texts[i] == NULL) {
                pg_params_free(pp);
                return LUNA_ERR_NOMEM;
            }
            if (p[i].len > 0)
                memcpy(pp->texts[i], p[i].data, p[i].len);
            pp->texts[i][p[i].len] = '\0';
            pp->values[i] = pp->texts[i];
            break;
        case LUNA_STORE_T_BLOB:
            pp->types[i] = PG_OID_BYTEA;
            pp->values[i] = p[i].len > 0 ? (const char *)p[i].data : (const char *)pg_empty;
            pp->lengths[i] = (int)p[i].len; /* <= LUNA_STORE_MAX_VALUE_LEN_LIMIT */
            pp->formats[i] = 1;
            break;
        default:
            pg_params_free(pp);
            return LUNA_ERR_INVALID_ARG;
        }
    }
    return LUNA_OK;
}

/* Reads and discards results until libpq reports the end of this command. */
static void pg_drain(luna_store *s)
{
    PGresult *res;
    while ((res = PQgetResult(pg_conn(s))) != NULL)
        PQclear(res);
}

/* Sends one parameterised statement in single-row mode. */
static luna_err pg_send(luna_store *s, const char *sql, const luna_store_param *p, size_t n)
{
    luna_err err;
    char *pgsql = NULL;
    pg_params pp;
    int ok;

    LUNA_GUARD(luna_store_translate_placeholders(sql, n, &pgsql));
    err = pg_params_build(p, n, &pp);
    if (err != LUNA_OK) {
        free(pgsql);
        return err;
    }
    /* Unnamed prepared statement, binary results; a second statement in
     * the text is refused by the server in this protocol. */
    ok = PQsendQueryParams(pg_conn(s), pgsql, (int)n, pp.types, pp.values, pp.lengths, pp.formats,
                           1);
    pg_params_free(&pp);
    free(pgsql);
    if (!ok)
        return pg_map(s, NULL);
    if (!PQsetSingleRowMode(pg_conn(s))) {
        pg_drain(s);
        luna_store_set_diag(s, "postgres: ", "single-row mode refused");
        return LUNA_ERR_INTERNAL;
    }
    return LUNA_OK;
}

static luna_err pg_exec(luna_store *s, const char *sql, const luna_store_param *p, size_t n,
                        uint64_t *changes)
{
    luna_err err = LUNA_OK;
    PGresult *res;

    LUNA_GUARD(pg_send(s, sql, p, n));
    /* Rows are discarded one at a time: memory stays bounded. */
    while ((res = PQgetResult(pg_conn(s))) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            const char *t = PQcmdTuples(res);
            /* A SELECT's tag counts rows read; only writes count (as SQLite). */
            if (changes != NULL && t != NULL && *t != '\0' && err == LUNA_OK &&
                strncmp(PQcmdStatus(res), "SELECT", 6) != 0)
                *changes = strtoull(t, NULL, 10);
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_EMPTY_QUERY && err == LUNA_OK) {
            err = pg_map(s, res);
        }
        PQclear(res);
    }
    return err;
}

static luna_err pg_query(luna_store *s, const char *sql, const luna_store_param *p, size_t n,
                         luna_store_rows *r)
{
    luna_err err;
    pg_rows *pr;
    PGresult *res;
    ExecStatusType st;

    pr = calloc(1, sizeof(*pr));
    LUNA_ENSURE(pr != NULL, LUNA_ERR_NOMEM);
    err = pg_send(s, sql, p, n);
    if (err != LUNA_OK) {
        pg_drain(s);
        free(pr);
        return err;
    }
    /* Read the first result now so that column count and statement errors
     * are known when query returns. */
    res = PQgetResult(pg_conn(s));
    st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_SINGLE_TUPLE) {
        pr->cur = res;
        pr->pending = true;
        r->ncols = (size_t)PQnfields(res);
    } else if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        r->ncols = (size_t)PQnfields(res);
        PQclear(res);
        pg_drain(s);
        pr->finished = true;
    } else {
        err = pg_map(s, res);
        PQclear(res);
        pg_drain(s);
        free(pr);
        return err;
    }
    r->impl = pr;
    return LUNA_OK;
}

static luna_err pg_next(luna_store_rows *r, bool *has_row)
{
    pg_rows *pr = r->impl;
    PGresult *res;
    ExecStatusType st;
    luna_err err;

    *has_row = false;
    if (pr->pending) {
        pr->pending = false;
        *has_row = true;
        return LUNA_OK;
    }
    PQclear(pr->cur);
    pr->cur = NULL;
    if (pr->finished)
        return LUNA_OK;
    res = PQgetResult(pg_conn(r->s));
    if (res == NULL) {
        pr->finished = true;
        return LUNA_OK;
    }
    st = PQresultStatus(res);
    if (st == PGRES_SINGLE_TUPLE) {
        if ((size_t)PQnfields(res) != r->ncols || PQntuples(res) != 1) {
            PQclear(res);
            return LUNA_ERR_FORMAT;
        }
        pr->cur = res;
        *has_row = true;
        return LUNA_OK;
    }
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        PQclear(res);
        pg_drain(r->s);
        pr->finished = true;
        return LUNA_OK;
    }
    err = pg_map(r->s, res);
    PQclear(res);
    pg_drain(r->s);
    pr->finished = true;
    return err;
}

/* Decodes a big-endian binary integer of exactly the type's width. */
static luna_err pg_read_int(const uint8_t *b, size_t len, Oid type, int64_t *out)
{
    luna_reader rd;
    luna_reader_init(&rd, b, len);
    switch (type) {
    case PG_OID_INT8: {
        uint64_t u;
        LUNA_GUARD(luna_read_u64(&rd, &u));
        *out = (int64_t)u;
        break;
    }
    case PG_OID_INT4: {
        uint32_t u;
        LUNA_GUARD(luna_read_u32(&rd, &u));
        *out = (int32_t)u;
        break;
    }
    case PG_OID_INT2: {
        uint16_t u;
        LUNA_GUARD(luna_read_u16(&rd, &u));
        *out = (int16_t)u;
        break;
    }
    default: { /* PG_OID_BOOL */
        uint8_t u;
        LUNA_GUARD(luna_read_u8(&rd, &u));
        LUNA_ENSURE(u <= 1, LUNA_ERR_FORMAT);
        *out = u;
        break;
    }
    }
    return luna_read_end(&rd);
}

static luna_err pg_get(const luna_store_rows *r, size_t col, luna_store_value *v)
{
    const pg_rows *pr = r->impl;
    const PGresult *res = pr->cur;
    int c = (int)col;
    int len;
    Oid type;

    memset(v, 0, sizeof(*v));
    v->data = pg_empty;
    LUNA_ENSURE(res != NULL, LUNA_ERR_INVALID_ARG);
    if (PQgetisnull(res, 0, c)) {
        v->type = LUNA_STORE_T_NULL;
        return LUNA_OK;
    }
    len = PQgetlength(res, 0, c);
    LUNA_ENSURE(len >= 0, LUNA_ERR_FORMAT);
    v->data = (const uint8_t *)PQgetvalue(res, 0, c);
    v->len = (size_t)len;
    LUNA_ENSURE(v->data != NULL, LUNA_ERR_FORMAT);
    if (PQfformat(res, c) != 1) {
        v->other = true;
        return LUNA_OK;
    }
    type = PQftype(res, c);
    switch (type) {
    case PG_OID_INT8:
    case PG_OID_INT4:
    case PG_OID_INT2:
    case PG_OID_BOOL:
        v->type = LUNA_STORE_T_INT64;
        return pg_read_int(v->data, v->len, type, &v->i64);
    case PG_OID_TEXT:
    case PG_OID_VARCHAR:
    case PG_OID_BPCHAR:
    case PG_OID_NAME:
    case PG_OID_UNKNOWN:
        /* libpq NUL-terminates every value; text cannot hold a NUL. */
        LUNA_ENSURE(memchr(v->data, 0, v->len) == NULL, LUNA_ERR_FORMAT);
        v->type = LUNA_STORE_T_TEXT;
        return LUNA_OK;
    case PG_OID_BYTEA:
        v->type = LUNA_STORE_T_BLOB;
        return LUNA_OK;
    default:
        v->other = true;
        return LUNA_OK;
    }
}

static void pg_rows_close(luna_store_rows *r)
{
    pg_rows *pr = r->impl;
    if (pr == NULL)
        return;
    PQclear(pr->cur);
    if (!pr->finished) {
        /* Over a cap the rest is unwanted: ask the server to stop (the
         * transaction is doomed by the error anyway).  Otherwise drain
         * quietly: a cancel would abort the caller's transaction. */
        if (r->err != LUNA_OK) {
            PGcancel *cancel = PQgetCancel(pg_conn(r->s));
            char buf[256];
            if (cancel != NULL) {
                (void)PQcancel(cancel, buf, (int)sizeof(buf));
                PQfreeCancel(cancel);
            }
        }
        pg_drain(r->s);
    }
    free(pr);
    r->impl = NULL;
}

static luna_err pg_script(luna_store *s, const char *sql)
{
    luna_err err = LUNA_OK;
    PGresult *res = PQexec(pg_conn(s), sql);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
        err = pg_map(s, res);
    PQclear(res);
    return err;
}

static luna_err pg_commit(luna_store *s)
{
    luna_err err = LUNA_OK;
    PGresult *res = PQexec(pg_conn(s), "COMMIT");

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        err = pg_map(s, res);
    } else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        /* The server answers COMMIT of an aborted transaction with ROLLBACK. */
        luna_store_set_diag(s, "postgres: ", "transaction was rolled back");
        err = LUNA_ERR_STORAGE;
    }
    PQclear(res);
    return err;
}

static luna_err pg_migration_lock(luna_store *s)
{
    return pg_script(s, PG_MIGRATION_LOCK_SQL);
}

static void pg_close(luna_store *s)
{
    if (s->impl != NULL)
        PQfinish(pg_conn(s));
    s->impl = NULL;
}

/* Notices go nowhere: libpq would print them on stderr, and they can
 * quote data. */
static void pg_notice(void *arg, const PGresult *res)
{
    (void)arg;
    (void)res;
}

static const luna_store_ops pg_ops = {
    .exec = pg_exec,
    .query = pg_query,
    .next = pg_next,
    .get = pg_get,
    .rows_close = pg_rows_close,
    .script = pg_script,
    .commit = pg_commit,
    .begin_sql = "BEGIN ISOLATION LEVEL SERIALIZABLE",
    .migrate_begin_sql = "BEGIN ISOLATION LEVEL READ COMMITTED",
    .migration_lock = pg_migration_lock,
    .close = pg_close,
};

luna_err luna_store_pg_open(const char *url, luna_store *s)
{
    char timeout[16];
    PGconn *conn;
    /* Later keywords win: the URL may set connect_timeout, but the client
     * encoding is always UTF-8 so text means the same on both backends. */
    const char *const keys[] = {"connect_timeout", "dbname", "client_encoding", NULL};
    const char *vals[] = {timeout, url, "UTF8", NULL};

    if (!PQisthreadsafe()) {
        luna_store_set_diag(s, "postgres: ", "libpq built without thread support");
        return LUNA_ERR_CONFIG;
    }
    (void)snprintf(timeout, sizeof(timeout), "%u", (s->opt.busy_timeout_ms + 999u) / 1000u);
    conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL) {
        luna_store_set_diag(s, "postgres: ", "out of memory");
        return LUNA_ERR_NOMEM;
    }
    s->impl = conn;
    s->ops = &pg_ops;
    if (PQstatus(conn) != CONNECTION_OK) {
        /* PQerrorMessage names hosts and users: not copied. */
        luna_store_set_diag(s, "postgres: ", "connection failed");
        return LUNA_ERR_UNAVAILABLE;
    }
    (void)PQsetNoticeReceiver(conn, pg_notice, NULL);
    luna_store_set_diag(s, "", "no error");
    return LUNA_OK;
}
