/*
 * store_internal.h - what store.c shares with its backends
 * (store_sqlite.c, store_pg.c).  Private to core/src; never installed.
 * A backend maps its errors to luna_err, sets the retryable flag and a
 * value-free diagnostic; it never logs and never keeps the URL.
 */
#ifndef LUNA_STORE_INTERNAL_H
#define LUNA_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/store.h"

/* One column value of the current row, as a backend sees it. */
typedef struct luna_store_value {
    luna_store_type type; /* meaningful when other is false */
    bool other;           /* a type the getters do not read */
    int64_t i64;
    const uint8_t *data;  /* text (NUL-terminated) or blob; never NULL */
    size_t len;
} luna_store_value;

typedef struct luna_store_ops {
    luna_err (*exec)(luna_store *s, const char *sql, const luna_store_param *p, size_t n,
                     uint64_t *changes);
    luna_err (*query)(luna_store *s, const char *sql, const luna_store_param *p, size_t n,
                      luna_store_rows *r);
    /* Steps to the next row; *has_row false at the end. */
    luna_err (*next)(luna_store_rows *r, bool *has_row);
    luna_err (*get)(const luna_store_rows *r, size_t col, luna_store_value *v);
    void (*rows_close)(luna_store_rows *r);
    /* Trusted multi-statement SQL without parameters (migrations, BEGIN...). */
    luna_err (*script)(luna_store *s, const char *sql);
    /* COMMIT that reports whether the server really committed. */
    luna_err (*commit)(luna_store *s);
    const char *begin_sql;
    /* Transaction kind migrations run in (PostgreSQL: READ COMMITTED, so
     * that after the migration lock every statement sees the latest schema). */
    const char *migrate_begin_sql;
    /* Serialises concurrent migrators inside the open transaction; may be NULL. */
    luna_err (*migration_lock)(luna_store *s);
    void (*close)(luna_store *s);
} luna_store_ops;

#define LUNA_STORE_DIAG_LEN 96

struct luna_store {
    const luna_store_ops *ops;
    void *impl;
    luna_store_kind kind;
    luna_store_options opt; /* defaults filled in */
    bool in_tx;
    bool tx_doomed;
    luna_err tx_err;        /* first error inside the doomed transaction */
    bool tx_err_retryable;
    bool retryable;         /* last error was busy/serialization/deadlock */
    bool rows_open;
    char diag[LUNA_STORE_DIAG_LEN];
};

struct luna_store_rows {
    luna_store *s;
    void *impl;
    size_t ncols;
    uint64_t nrows;
    bool has_row;
    bool done;
    luna_err err; /* sticky error after a failure */
};

/* Sets the diagnostic from static text (never a value). */
void luna_store_set_diag(luna_store *s, const char *prefix, const char *text);

luna_err luna_store_sqlite_open(const char *path, luna_store *s) LUNA_MUST_CHECK;
luna_err luna_store_pg_open(const char *url, luna_store *s) LUNA_MUST_CHECK;

/*
 * Rewrites ?N placeholders into $N outside '...', "...", $tag$...$tag$,
 * -- and C comments.  *out is malloc'd (caller frees).  Refuses a bare
 * "?", ?0, numbers above LUNA_STORE_MAX_PARAMS, a placeholder count that
 * is not n_params, and unterminated quotes/comments (INVALID_ARG).  With
 * out NULL it only validates (the SQLite path uses it too so both
 * backends accept the same SQL).
 */
luna_err luna_store_translate_placeholders(const char *sql, size_t n_params,
                                           char **out) LUNA_MUST_CHECK;

#endif
