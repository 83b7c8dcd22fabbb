/*
 * luna/store.h - the one storage interface of the platform, with an SQLite
 * backend ("sqlite:/path/file.db", "sqlite::memory:") and a PostgreSQL
 * backend ("postgresql://..." or "postgres://...", a libpq conninfo URL).
 *
 * Values only ever reach the database as bound parameters of a prepared
 * statement: this module never formats a value into SQL text.  SQL is
 * written with numbered placeholders ?1 ?2 ... ?N (N = number of params,
 * every number used); for PostgreSQL they are rewritten to $1 $2 ...
 * outside string literals, quoted identifiers and comments.  A bare "?"
 * and a statement followed by a second one are refused.
 *
 * Errors: LUNA_ERR_CONFLICT for a unique/primary-key violation,
 * LUNA_ERR_UNAVAILABLE for "busy / could not serialize / deadlock"
 * (retryable; see luna_store_tx) and for a lost or refused connection,
 * LUNA_ERR_TOO_LARGE for a value or result over the handle's caps,
 * LUNA_ERR_STORAGE for anything else the backend reports,
 * LUNA_ERR_INVALID_ARG for a broken contract (bad placeholder, wrong
 * number of params, call while a result is still open, nested BEGIN).
 * Nothing here logs.  luna_store_last_error() gives a short diagnostic
 * that never contains a value, a password or SQL text.
 *
 * Thread safety: a luna_store handle and its rows belong to one thread at a
 * time (no internal locking).  Use one handle per thread; handles on the
 * same database may live in different threads and processes.
 */
#ifndef LUNA_STORE_H
#define LUNA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"

typedef struct luna_store luna_store;
typedef struct luna_store_rows luna_store_rows;

typedef enum luna_store_kind {
    LUNA_STORE_SQLITE = 1,
    LUNA_STORE_POSTGRES = 2,
} luna_store_kind;

/* ---- caps ---- */
/* Default cap on the rows one query may return (luna_store_rows_next). */
#define LUNA_STORE_DEFAULT_MAX_ROWS 100000u
/* Default cap on one column value or one bound text/blob parameter. */
#define LUNA_STORE_DEFAULT_MAX_VALUE_LEN (16u * 1024u * 1024u)
/* Ceiling for max_value_len in options (libpq lengths are int). */
#define LUNA_STORE_MAX_VALUE_LEN_LIMIT (256u * 1024u * 1024u)
/* Longest SQL text accepted (our own statements, never user data). */
#define LUNA_STORE_MAX_SQL_LEN (1024u * 1024u)
/* Most parameters one statement may bind. */
#define LUNA_STORE_MAX_PARAMS 1000u
/* Default busy wait (SQLite) and connect timeout (PostgreSQL). */
#define LUNA_STORE_DEFAULT_BUSY_TIMEOUT_MS 5000u
#define LUNA_STORE_DEFAULT_TX_ATTEMPTS 10u
#define LUNA_STORE_MAX_TX_ATTEMPTS 100u

/*
 * Options for luna_store_open; NULL or a zeroed struct means the defaults
 * above for every field.
 *  busy_timeout_ms  SQLite: how long a statement waits for a lock before
 *                   failing with LUNA_ERR_UNAVAILABLE.  PostgreSQL: the
 *                   connect timeout (rounded up to whole seconds) unless
 *                   the URL sets connect_timeout itself.
 *  max_rows         rows a query may return before rows_next fails with
 *                   LUNA_ERR_TOO_LARGE.
 *  max_value_len    bytes of one returned value or one bound text/blob
 *                   (<= LUNA_STORE_MAX_VALUE_LEN_LIMIT).
 *  tx_attempts      attempts luna_store_tx makes (<= LUNA_STORE_MAX_TX_ATTEMPTS).
 */
typedef struct luna_store_options {
    uint32_t busy_timeout_ms;
    uint32_t max_rows;
    size_t max_value_len;
    uint32_t tx_attempts;
} luna_store_options;

/* ---- parameters ---- */
typedef enum luna_store_type {
    LUNA_STORE_T_NULL = 0,
    LUNA_STORE_T_INT64 = 1,
    LUNA_STORE_T_TEXT = 2, /* UTF-8, no NUL byte (PostgreSQL cannot hold one) */
    LUNA_STORE_T_BLOB = 3, /* any bytes, NUL included */
} luna_store_type;

/*
 * One bound parameter.  The bytes are borrowed: they must stay valid for
 * the call only (they are copied or sent before it returns).
 */
typedef struct luna_store_param {
    luna_store_type type;
    int64_t i64;
    const void *data;
    size_t len;
} luna_store_param;

/* Constructors for array initialisers; text takes a NUL-terminated string. */
luna_store_param luna_store_p_null(void);
luna_store_param luna_store_p_int64(int64_t v);
luna_store_param luna_store_p_text(const char *s);
luna_store_param luna_store_p_textn(const char *s, size_t len);
luna_store_param luna_store_p_blob(const void *data, size_t len);

/* ---- handle ---- */
/*
 * Opens a handle.  SQLite: creates the file (mode 0600, final path
 * component must not be a symlink) and sets journal_mode=WAL,
 * synchronous=FULL, foreign_keys=ON, secure_delete=ON, trusted_schema=OFF,
 * defensive mode and the busy timeout.  PostgreSQL: connects with libpq.
 * The URL may hold a password: it is neither kept nor logged.
 * Errors: INVALID_ARG (unknown scheme, empty path, options out of range),
 * PERMISSION (SQLite path is a symlink or not accessible), UNAVAILABLE
 * (cannot connect), STORAGE (cannot open or configure), NOMEM.  On error
 * *out is NULL.
 */
luna_err luna_store_open(const char *url, const luna_store_options *opts,
                         luna_store **out) LUNA_MUST_CHECK;
/* Closes; a transaction still open is rolled back.  Free every
 * luna_store_rows of the handle first.  NULL is a no-op. */
void luna_store_close(luna_store *s);
luna_store_kind luna_store_get_kind(const luna_store *s);
/* Short static-ish diagnostic of the last error ("sqlite: database is
 * locked", "postgres: SQLSTATE 23505"); never a value; never NULL. */
const char *luna_store_last_error(const luna_store *s);

/*
 * Runs one statement with n params (n may be 0 with params NULL).  Rows a
 * statement returns are discarded.  *changes (optional) receives the rows
 * inserted/updated/deleted.
 */
luna_err luna_store_exec(luna_store *s, const char *sql, const luna_store_param *params,
                         size_t n, uint64_t *changes) LUNA_MUST_CHECK;

/*
 * Runs one query and returns an iterator over its rows; rows are streamed
 * (one row in memory at a time).  While it is open the handle accepts no
 * other call but luna_store_rows_* and luna_store_rows_free.
 */
luna_err luna_store_query(luna_store *s, const char *sql, const luna_store_param *params,
                          size_t n, luna_store_rows **out) LUNA_MUST_CHECK;
/*
 * Advances to the next row: *has_row true and LUNA_OK when there is one,
 * false and LUNA_OK at the end.  LUNA_ERR_TOO_LARGE when the row count cap
 * is passed or a value in the row is over max_value_len; after any error
 * the iterator is finished (every later call fails the same way).
 */
luna_err luna_store_rows_next(luna_store_rows *r, bool *has_row) LUNA_MUST_CHECK;
size_t luna_store_rows_ncols(const luna_store_rows *r);
/* Frees the iterator (draining what the server still sends); NULL no-op. */
void luna_store_rows_free(luna_store_rows *r);

/*
 * Typed getters for column col (0-based) of the current row.  Pointers
 * stay valid until the next rows_next or rows_free.  Text is also
 * NUL-terminated.  Errors: INVALID_ARG (no current row, col out of
 * range), NOT_FOUND (the value is NULL), FORMAT (the column holds another
 * type: getters never convert, except PostgreSQL int2/int4/bool read as
 * int64 and char/varchar/name read as text).
 */
luna_err luna_store_col_is_null(const luna_store_rows *r, size_t col, bool *out) LUNA_MUST_CHECK;
luna_err luna_store_col_int64(const luna_store_rows *r, size_t col, int64_t *out) LUNA_MUST_CHECK;
luna_err luna_store_col_text(const luna_store_rows *r, size_t col, const char **out,
                             size_t *len) LUNA_MUST_CHECK;
luna_err luna_store_col_blob(const luna_store_rows *r, size_t col, const uint8_t **out,
                             size_t *len) LUNA_MUST_CHECK;

/* ---- transactions ---- */
/*
 * begin: SQLite "BEGIN IMMEDIATE" (takes the write lock now, so two
 * writers wait on the busy timeout instead of deadlocking); PostgreSQL
 * "BEGIN ISOLATION LEVEL SERIALIZABLE".  No nesting (INVALID_ARG).
 * Any failed statement inside a transaction dooms it (as PostgreSQL
 * does): commit then rolls back and returns that first error.  A commit
 * that fails leaves no transaction open.  When the connection is lost
 * during COMMIT the outcome is unknown (LUNA_ERR_UNAVAILABLE).
 */
luna_err luna_store_begin(luna_store *s) LUNA_MUST_CHECK;
luna_err luna_store_commit(luna_store *s) LUNA_MUST_CHECK;
luna_err luna_store_rollback(luna_store *s) LUNA_MUST_CHECK;

typedef luna_err (*luna_store_tx_fn)(luna_store *s, void *ctx);
/*
 * Runs fn inside a transaction and commits.  When fn or the commit fails
 * with a retryable backend error (SQLite BUSY/LOCKED, PostgreSQL 40001
 * serialization failure or 40P01 deadlock) everything is rolled back and
 * fn runs again, after a short randomised backoff, up to tx_attempts times
 * in total; fn must therefore have no effect outside the store, and must
 * return store errors unchanged.  Any other error is returned after a
 * rollback.  The last retryable error (LUNA_ERR_UNAVAILABLE) is returned
 * when attempts run out.
 */
luna_err luna_store_tx(luna_store *s, luna_store_tx_fn fn, void *ctx) LUNA_MUST_CHECK;

/* ---- migrations ---- */
/*
 * One schema step.  sql may hold several statements and no parameters;
 * sql_pg, when not NULL, replaces it on PostgreSQL (for dialect gaps
 * such as BLOB vs BYTEA).  Versions are > 0 and strictly increasing.
 */
typedef struct luna_store_migration {
    int64_t version;
    const char *sql;
    const char *sql_pg;
} luna_store_migration;

/*
 * Applies, in one transaction (retried like luna_store_tx), every step
 * whose version is above the one recorded in table luna_schema_version,
 * recording each.  Running it again is a no-op.  A database whose version
 * is newer than the last step known is refused with LUNA_ERR_UNSUPPORTED
 * and left untouched.  *version (optional) receives the version after.
 * On PostgreSQL concurrent migrators serialise on an advisory lock.
 */
luna_err luna_store_migrate(luna_store *s, const luna_store_migration *steps, size_t n,
                            int64_t *version) LUNA_MUST_CHECK;

/* ---- helpers ---- */
/*
 * Copies url into out (out_cap bytes, NUL-terminated) with any password
 * replaced by "***": the userinfo password of a URL and the value of a
 * password= query parameter.  For logs.  TOO_LARGE when out is short.
 */
luna_err luna_store_redact_url(const char *url, char *out, size_t out_cap) LUNA_MUST_CHECK;

#endif
