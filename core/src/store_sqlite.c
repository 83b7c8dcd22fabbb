/*
 * store_sqlite.c - the SQLite backend of luna/store.h: opens the file with
 * durable settings (WAL, synchronous=FULL), binds parameters, steps rows
 * and maps SQLite result codes to luna_err.  It must never build SQL from
 * values, never accept a second statement or a named parameter, and never
 * copy sqlite3_errmsg() (which can quote SQL) into a diagnostic.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store_internal.h"

static const uint8_t sq_empty[1] = {0};

/* Result code -> luna_err, with a value-free diagnostic. */
static luna_err sq_map(luna_store *s, int rc)
{
    int primary = rc & 0xff;
    const char *text = sqlite3_errstr(rc);

    /* sqlite3_errstr is static text; the extended constraint codes get a
     * static name of their own (sqlite3_errmsg could name columns). */
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
        text = "unique constraint failed";
        break;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        text = "foreign key constraint failed";
        break;
    case SQLITE_CONSTRAINT_NOTNULL:
        text = "not null constraint failed";
        break;
    case SQLITE_CONSTRAINT_CHECK:
        text = "check constraint failed";
        break;
    default:
        break;
    }
    luna_store_set_diag(s, "sqlite: ", text);
    switch (primary) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return LUNA_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        s->retryable = true;
        return LUNA_ERR_UNAVAILABLE;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
            rc == SQLITE_CONSTRAINT_ROWID)
            return LUNA_ERR_CONFLICT;
        return LUNA_ERR_STORAGE;
    case SQLITE_NOMEM:
        return LUNA_ERR_NOMEM;
    case SQLITE_TOOBIG:
        return LUNA_ERR_TOO_LARGE;
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
        return LUNA_ERR_INVALID_ARG;
    default:
        return LUNA_ERR_STORAGE;
    }
}

static sqlite3 *sq_db(const luna_store *s)
{
    return (sqlite3 *)s->impl;
}

static bool sq_only_space(const char *p)
{
    for (; *p != '\0'; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';')
            return false;
    }
    return true;
}

/* Prepares exactly one statement and binds ?1..?n to params. */
static luna_err sq_prepare(luna_store *s, const char *sql, const luna_store_param *p, size_t n,
                           sqlite3_stmt **out)
{
    luna_err err = LUNA_OK;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc;

    *out = NULL;
    rc = sqlite3_prepare_v3(sq_db(s), sql, -1, 0, &st, &tail);
    if (rc != SQLITE_OK) {
        err = sq_map(s, rc);
        goto out;
    }
    /* One statement per call: a stacked second statement is refused. */
    LUNA_TRY_ENSURE(st != NULL && tail != NULL && sq_only_space(tail), LUNA_ERR_INVALID_ARG, out);
    LUNA_TRY_ENSURE((size_t)sqlite3_bind_parameter_count(st) == n, LUNA_ERR_INVALID_ARG, out);
    for (size_t i = 0; i < n; i++) {
        int idx = (int)i + 1;
        const char *name = sqlite3_bind_parameter_name(st, idx);
        char want[16];
        /* Only ?N parameters, in the form the PostgreSQL path understands. */
        (void)snprintf(want, sizeof(want), "?%d", idx);
        LUNA_TRY_ENSURE(name != NULL && strcmp(name, want) == 0, LUNA_ERR_INVALID_ARG, out);
        switch (p[i].type) {
        case LUNA_STORE_T_NULL:
            rc = sqlite3_bind_null(st, idx);
            break;
        case LUNA_STORE_T_INT64:
            rc = sqlite3_bind_int64(st, idx, p[i].i64);
            break;
        case LUNA_STORE_T_TEXT:
            rc = sqlite3_bind_text64(st, idx, p[i].len > 0 ? p[i].data : (const void *)sq_empty,
                                     p[i].len, SQLITE_TRANSIENT, SQLITE_UTF8);
            break;
        case LUNA_STORE_T_BLOB:
            /* A NULL pointer would bind SQL NULL, not an empty blob. */
            rc = sqlite3_bind_blob64(st, idx, p[i].len > 0 ? p[i].data : (const void *)sq_empty,
                                     p[i].len, SQLITE_TRANSIENT);
            break;
        default:
            err = LUNA_ERR_INVALID_ARG;
            goto out;
        }
        if (rc != SQLITE_OK) {
            err = sq_map(s, rc);
            goto out;
        }
    }
    *out = st;
    st = NULL;
out:
    sqlite3_finalize(st);
    return err;
}

static luna_err sq_exec(luna_store *s, const char *sql, const luna_store_param *p, size_t n,
                        uint64_t *changes)
{
    luna_err err;
    sqlite3_stmt *st = NULL;
    int rc;

    LUNA_GUARD(sq_prepare(s, sql, p, n, &st));
    do {
        rc = sqlite3_step(st);
    } while (rc == SQLITE_ROW);
    if (rc != SQLITE_DONE) {
        err = sq_map(s, rc);
    } else {
        err = LUNA_OK;
        if (changes != NULL && !sqlite3_stmt_readonly(st))
            *changes = (uint64_t)sqlite3_changes64(sq_db(s));
    }
    sqlite3_finalize(st);
    return err;
}

static luna_err sq_query(luna_store *s, const char *sql, const luna_store_param *p, size_t n,
                         luna_store_rows *r)
{
    sqlite3_stmt *st = NULL;
    int ncols;

    LUNA_GUARD(sq_prepare(s, sql, p, n, &st));
    ncols = sqlite3_column_count(st);
    r->impl = st;
    r->ncols = ncols > 0 ? (size_t)ncols : 0;
    return LUNA_OK;
}

static luna_err sq_next(luna_store_rows *r, bool *has_row)
{
    int rc = sqlite3_step((sqlite3_stmt *)r->impl);

    if (rc == SQLITE_ROW) {
        *has_row = true;
        return LUNA_OK;
    }
    *has_row = false;
    if (rc == SQLITE_DONE)
        return LUNA_OK;
    return sq_map(r->s, rc);
}

static luna_err sq_get(const luna_store_rows *r, size_t col, luna_store_value *v)
{
    sqlite3_stmt *st = r->impl;
    int c = (int)col;
    const void *data;
    int bytes;

    memset(v, 0, sizeof(*v));
    v->data = sq_empty;
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_NULL:
        v->type = LUNA_STORE_T_NULL;
        return LUNA_OK;
    case SQLITE_INTEGER:
        v->type = LUNA_STORE_T_INT64;
        v->i64 = sqlite3_column_int64(st, c);
        return LUNA_OK;
    case SQLITE_TEXT:
        v->type = LUNA_STORE_T_TEXT;
        data = sqlite3_column_text(st, c);
        bytes = sqlite3_column_bytes(st, c);
        break;
    case SQLITE_BLOB:
        v->type = LUNA_STORE_T_BLOB;
        data = sqlite3_column_blob(st, c);
        bytes = sqlite3_column_bytes(st, c);
        break;
    default:
        /* REAL: no getter reads floating point. */
        v->other = true;
        return LUNA_OK;
    }
    if (bytes < 0)
        return LUNA_ERR_STORAGE;
    if (data == NULL) {
        /* NULL with bytes > 0 is SQLite out of memory; 0 is an empty value. */
        if (bytes > 0 || sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM)
            return LUNA_ERR_NOMEM;
        data = sq_empty;
    }
    v->data = data;
    v->len = (size_t)bytes;
    return LUNA_OK;
}

static void sq_rows_close(luna_store_rows *r)
{
    sqlite3_finalize((sqlite3_stmt *)r->impl);
    r->impl = NULL;
}

static luna_err sq_script(luna_store *s, const char *sql)
{
    int rc = sqlite3_exec(sq_db(s), sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_map(s, rc);
    return LUNA_OK;
}

static luna_err sq_commit(luna_store *s)
{
    LUNA_GUARD(sq_script(s, "COMMIT"));
    if (!sqlite3_get_autocommit(sq_db(s))) {
        luna_store_set_diag(s, "sqlite: ", "commit left the transaction open");
        return LUNA_ERR_STORAGE;
    }
    return LUNA_OK;
}

static void sq_close(luna_store *s)
{
    if (s->impl != NULL)
        (void)sqlite3_close_v2(sq_db(s));
    s->impl = NULL;
}

/* Runs a PRAGMA and checks the single text value it answers. */
static luna_err sq_pragma(luna_store *s, const char *sql, const char *want, const char *alt)
{
    luna_err err = LUNA_ERR_STORAGE;
    sqlite3_stmt *st = NULL;
    const unsigned char *val;
    int rc;

    rc = sqlite3_prepare_v2(sq_db(s), sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_map(s, rc);
    rc = sqlite3_step(st);
    if (want == NULL) {
        err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? LUNA_OK : sq_map(s, rc);
    } else if (rc == SQLITE_ROW) {
        val = sqlite3_column_text(st, 0);
        if (val != NULL && (strcmp((const char *)val, want) == 0 ||
                            (alt != NULL && strcmp((const char *)val, alt) == 0)))
            err = LUNA_OK;
        else
            luna_store_set_diag(s, "sqlite: ", "pragma not in effect");
    } else {
        err = sq_map(s, rc);
    }
    sqlite3_finalize(st);
    return err;
}

static const luna_store_ops sq_ops = {
    .exec = sq_exec,
    .query = sq_query,
    .next = sq_next,
    .get = sq_get,
    .rows_close = sq_rows_close,
    .script = sq_script,
    .commit = sq_commit,
    /* IMMEDIATE takes the write lock up front: two writers queue on the
     * busy timeout instead of failing a read-to-write upgrade. */
    .begin_sql = "BEGIN IMMEDIATE",
    .migrate_begin_sql = "BEGIN IMMEDIATE",
    .migration_lock = NULL,
    .close = sq_close,
};

/* Creates the file 0600 ourselves (SQLite would use 0644) and refuses a
 * symlink or anything but a regular file. */
static luna_err sq_precreate(luna_store *s, const char *path)
{
    struct stat st;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        luna_store_set_diag(s, "sqlite: ", errno == ELOOP ? "path is a symlink" : "cannot open file");
        return errno == EACCES || errno == ELOOP ? LUNA_ERR_PERMISSION : LUNA_ERR_STORAGE;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        luna_store_set_diag(s, "sqlite: ", "not a regular file");
        return LUNA_ERR_STORAGE;
    }
    close(fd);
    return LUNA_OK;
}

luna_err luna_store_sqlite_open(const char *path, luna_store *s)
{
    bool memory = strcmp(path, ":memory:") == 0;
    sqlite3 *db = NULL;
    int rc;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                SQLITE_OPEN_PRIVATECACHE;
    /* Neither URI filenames nor ATTACH-style tricks: the path is a path. */

    if (sqlite3_threadsafe() == 0) {
        luna_store_set_diag(s, "sqlite: ", "library built without thread support");
        return LUNA_ERR_CONFIG;
    }
    if (!memory)
        LUNA_GUARD(sq_precreate(s, path));
    rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        luna_store_set_diag(s, "sqlite: ", sqlite3_errstr(rc));
        (void)sqlite3_close_v2(db);
        return rc == SQLITE_NOMEM ? LUNA_ERR_NOMEM : LUNA_ERR_STORAGE;
    }
    s->impl = db;
    s->ops = &sq_ops;
    (void)sqlite3_extended_result_codes(db, 1);
    if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL) != SQLITE_OK ||
        sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL) != SQLITE_OK ||
        sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, (int)s->opt.busy_timeout_ms) != SQLITE_OK) {
        luna_store_set_diag(s, "sqlite: ", "cannot configure connection");
        return LUNA_ERR_STORAGE;
    }
    /* Durability before acknowledgement: the audit log relies on it. */
    LUNA_GUARD(sq_pragma(s, "PRAGMA journal_mode=WAL", "wal", memory ? "memory" : NULL));
    LUNA_GUARD(sq_pragma(s, "PRAGMA synchronous=FULL", NULL, NULL));
    LUNA_GUARD(sq_pragma(s, "PRAGMA synchronous", "2", NULL));
    LUNA_GUARD(sq_pragma(s, "PRAGMA foreign_keys=ON", NULL, NULL));
    LUNA_GUARD(sq_pragma(s, "PRAGMA foreign_keys", "1", NULL));
    LUNA_GUARD(sq_pragma(s, "PRAGMA secure_delete=ON", "1", NULL));
    luna_store_set_diag(s, "", "no error");
    return LUNA_OK;
}
