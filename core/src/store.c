/*
 * store.c - the backend-independent half of the storage interface: URL
 * dispatch, parameter checks, the one-open-result rule, transaction state
 * (a failed statement dooms the transaction on both backends), the retry
 * loop, migrations, the placeholder translator and URL redaction.
 * It must never put a value into SQL text, never log, and never keep a
 * connection string.
 */
#include "luna/store.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "store_internal.h"

/* ---- parameters ---- */

luna_store_param luna_store_p_null(void)
{
    luna_store_param p = {.type = LUNA_STORE_T_NULL};
    return p;
}

luna_store_param luna_store_p_int64(int64_t v)
{
    luna_store_param p = {.type = LUNA_STORE_T_INT64, .i64 = v};
    return p;
}

luna_store_param luna_store_p_text(const char *s)
{
    luna_store_param p = {.type = LUNA_STORE_T_TEXT, .data = s, .len = s != NULL ? strlen(s) : 0};
    return p;
}

luna_store_param luna_store_p_textn(const char *s, size_t len)
{
    luna_store_param p = {.type = LUNA_STORE_T_TEXT, .data = s, .len = len};
    return p;
}

luna_store_param luna_store_p_blob(const void *data, size_t len)
{
    luna_store_param p = {.type = LUNA_STORE_T_BLOB, .data = data, .len = len};
    return p;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF) and
 * no NUL, so both backends accept exactly the same text. */
static bool store_text_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t need;
        uint32_t cp;
        uint32_t min;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            need = 1;
            cp = c & 0x1Fu;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2;
            cp = c & 0x0Fu;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3;
            cp = c & 0x07u;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = p[i + k];
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

static luna_err store_check_params(const luna_store *s, const luna_store_param *p, size_t n)
{
    LUNA_ENSURE(n <= LUNA_STORE_MAX_PARAMS, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(n == 0 || p != NULL, LUNA_ERR_INVALID_ARG);
    for (size_t i = 0; i < n; i++) {
        switch (p[i].type) {
        case LUNA_STORE_T_NULL:
        case LUNA_STORE_T_INT64:
            break;
        case LUNA_STORE_T_TEXT:
        case LUNA_STORE_T_BLOB:
            LUNA_ENSURE(p[i].data != NULL || p[i].len == 0, LUNA_ERR_INVALID_ARG);
            LUNA_ENSURE(p[i].len <= s->opt.max_value_len, LUNA_ERR_TOO_LARGE);
            if (p[i].type == LUNA_STORE_T_TEXT)
                LUNA_ENSURE(store_text_ok(p[i].data, p[i].len), LUNA_ERR_INVALID_ARG);
            break;
        default:
            return LUNA_ERR_INVALID_ARG;
        }
    }
    return LUNA_OK;
}

/* ---- placeholder translation ---- */

static bool store_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

/* Length of a dollar-quote opener "$tag$" at sql[i], 0 when there is none. */
static size_t store_dollar_tag(const char *sql, size_t len, size_t i)
{
    size_t j = i + 1;
    if (j < len && (sql[j] == '_' || (sql[j] >= 'a' && sql[j] <= 'z') ||
                    (sql[j] >= 'A' && sql[j] <= 'Z'))) {
        while (j < len && (sql[j] == '_' || (sql[j] >= 'a' && sql[j] <= 'z') ||
                           (sql[j] >= 'A' && sql[j] <= 'Z') || (sql[j] >= '0' && sql[j] <= '9')))
            j++;
    }
    if (j < len && sql[j] == '$')
        return j - i + 1;
    return 0;
}

luna_err luna_store_translate_placeholders(const char *sql, size_t n_params, char **out)
{
    luna_err err = LUNA_OK;
    size_t len;
    char *buf = NULL;
    bool seen[LUNA_STORE_MAX_PARAMS + 1];
    size_t max_seen = 0;

    if (out != NULL)
        *out = NULL;
    LUNA_ENSURE(sql != NULL && n_params <= LUNA_STORE_MAX_PARAMS, LUNA_ERR_INVALID_ARG);
    len = strnlen(sql, LUNA_STORE_MAX_SQL_LEN + 1);
    LUNA_ENSURE(len <= LUNA_STORE_MAX_SQL_LEN, LUNA_ERR_TOO_LARGE);
    memset(seen, 0, sizeof(seen));
    if (out != NULL) {
        buf = malloc(len + 1);
        LUNA_ENSURE(buf != NULL, LUNA_ERR_NOMEM);
        memcpy(buf, sql, len + 1);
    }

    for (size_t i = 0; i < len;) {
        char c = sql[i];
        if (c == '\'' || c == '"') {
            /* E'...' strings take backslash escapes on PostgreSQL. */
            bool esc = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                       (i < 2 || !store_ident_char(sql[i - 2]));
            size_t j = i + 1;
            for (;;) {
                LUNA_TRY_ENSURE(j < len, LUNA_ERR_INVALID_ARG, out);
                if (esc && sql[j] == '\\') {
                    j += 2;
                    continue;
                }
                if (sql[j] == c) {
                    if (j + 1 < len && sql[j + 1] == c) {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j++;
            }
            i = j + 1;
        } else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
            while (i < len && sql[i] != '\n')
                i++;
        } else if (c == '/' && i + 1 < len && sql[i + 1] == '*') {
            size_t j = i + 2;
            for (;;) {
                LUNA_TRY_ENSURE(j + 1 < len, LUNA_ERR_INVALID_ARG, out);
                /* PostgreSQL nests block comments, SQLite does not: refuse. */
                LUNA_TRY_ENSURE(!(sql[j] == '/' && sql[j + 1] == '*'), LUNA_ERR_INVALID_ARG, out);
                if (sql[j] == '*' && sql[j + 1] == '/')
                    break;
                j++;
            }
            i = j + 2;
        } else if (c == '$' && (i == 0 || !store_ident_char(sql[i - 1]))) {
            size_t tag = store_dollar_tag(sql, len, i);
            if (tag == 0) {
                /* $1 would bypass our numbering, $name is an SQLite parameter. */
                LUNA_TRY_ENSURE(false, LUNA_ERR_INVALID_ARG, out);
            }
            size_t j = i + tag;
            for (;;) {
                LUNA_TRY_ENSURE(len - j >= tag, LUNA_ERR_INVALID_ARG, out);
                if (memcmp(sql + j, sql + i, tag) == 0)
                    break;
                j++;
            }
            i = j + tag;
        } else if (c == '?') {
            size_t j = i + 1;
            size_t num = 0;
            LUNA_TRY_ENSURE(j < len && sql[j] >= '1' && sql[j] <= '9', LUNA_ERR_INVALID_ARG, out);
            while (j < len && sql[j] >= '0' && sql[j] <= '9') {
                num = num * 10 + (size_t)(sql[j] - '0');
                LUNA_TRY_ENSURE(num <= n_params, LUNA_ERR_INVALID_ARG, out);
                j++;
            }
            /* "?12abc" would read differently across dialects. */
            LUNA_TRY_ENSURE(j >= len || !store_ident_char(sql[j]), LUNA_ERR_INVALID_ARG, out);
            seen[num] = true;
            if (num > max_seen)
                max_seen = num;
            if (buf != NULL)
                buf[i] = '$';
            i = j;
        } else if (c == ':' || c == '@') {
            /* ":x" and "@x" are SQLite named parameters; "::" is a PG cast. */
            if (c == ':' && i + 1 < len && sql[i + 1] == ':') {
                i += 2;
                continue;
            }
            LUNA_TRY_ENSURE(!(i + 1 < len && (sql[i + 1] == '_' ||
                                              (sql[i + 1] >= 'a' && sql[i + 1] <= 'z') ||
                                              (sql[i + 1] >= 'A' && sql[i + 1] <= 'Z'))),
                            LUNA_ERR_INVALID_ARG, out);
            i++;
        } else {
            i++;
        }
    }
    LUNA_TRY_ENSURE(max_seen == n_params, LUNA_ERR_INVALID_ARG, out);
    for (size_t k = 1; k <= n_params; k++)
        LUNA_TRY_ENSURE(seen[k], LUNA_ERR_INVALID_ARG, out);
    if (out != NULL) {
        *out = buf;
        buf = NULL;
    }
out:
    free(buf);
    return err;
}

/* ---- handle ---- */

void luna_store_set_diag(luna_store *s, const char *prefix, const char *text)
{
    size_t pl = strlen(prefix);
    size_t tl = text != NULL ? strlen(text) : 0;
    if (pl > sizeof(s->diag) - 1)
        pl = sizeof(s->diag) - 1;
    memcpy(s->diag, prefix, pl);
    if (tl > sizeof(s->diag) - 1 - pl)
        tl = sizeof(s->diag) - 1 - pl;
    if (tl > 0)
        memcpy(s->diag + pl, text, tl);
    s->diag[pl + tl] = '\0';
}

static luna_err store_fill_options(luna_store_options *o, const luna_store_options *in)
{
    if (in != NULL)
        *o = *in;
    else
        memset(o, 0, sizeof(*o));
    if (o->busy_timeout_ms == 0)
        o->busy_timeout_ms = LUNA_STORE_DEFAULT_BUSY_TIMEOUT_MS;
    if (o->max_rows == 0)
        o->max_rows = LUNA_STORE_DEFAULT_MAX_ROWS;
    if (o->max_value_len == 0)
        o->max_value_len = LUNA_STORE_DEFAULT_MAX_VALUE_LEN;
    if (o->tx_attempts == 0)
        o->tx_attempts = LUNA_STORE_DEFAULT_TX_ATTEMPTS;
    LUNA_ENSURE(o->max_value_len <= LUNA_STORE_MAX_VALUE_LEN_LIMIT, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(o->tx_attempts <= LUNA_STORE_MAX_TX_ATTEMPTS, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(o->busy_timeout_ms <= 3600u * 1000u, LUNA_ERR_INVALID_ARG);
    return LUNA_OK;
}

luna_err luna_store_open(const char *url, const luna_store_options *opts, luna_store **out)
{
    luna_err err;
    luna_store *s = NULL;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_ENSURE(url != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(strnlen(url, 4096) < 4096, LUNA_ERR_INVALID_ARG);
    s = calloc(1, sizeof(*s));
    LUNA_ENSURE(s != NULL, LUNA_ERR_NOMEM);
    LUNA_TRY(store_fill_options(&s->opt, opts), out);
    luna_store_set_diag(s, "", "no error");

    if (strncmp(url, "sqlite:", 7) == 0) {
        s->kind = LUNA_STORE_SQLITE;
        LUNA_TRY_ENSURE(url[7] != '\0', LUNA_ERR_INVALID_ARG, out);
        LUNA_TRY(luna_store_sqlite_open(url + 7, s), out);
    } else if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        s->kind = LUNA_STORE_POSTGRES;
        LUNA_TRY(luna_store_pg_open(url, s), out);
    } else {
        err = LUNA_ERR_INVALID_ARG;
        goto out;
    }
    *out = s;
    s = NULL;
out:
    if (s != NULL && s->ops != NULL)
        s->ops->close(s);
    free(s);
    return err;
}

void luna_store_close(luna_store *s)
{
    if (s == NULL)
        return;
    if (s->in_tx && !s->rows_open)
        (void)s->ops->script(s, "ROLLBACK");
    s->ops->close(s);
    free(s);
}

luna_store_kind luna_store_get_kind(const luna_store *s)
{
    return s->kind;
}

const char *luna_store_last_error(const luna_store *s)
{
    return s != NULL ? s->diag : "no store";
}

/* Every backend call that can fail goes through here: inside a
 * transaction the first failure dooms it, as PostgreSQL would anyway. */
static luna_err store_note(luna_store *s, luna_err err)
{
    if (err != LUNA_OK && s->in_tx && !s->tx_doomed) {
        s->tx_doomed = true;
        s->tx_err = err;
        s->tx_err_retryable = s->retryable;
    }
    return err;
}

static luna_err store_ready(luna_store *s, const char *sql)
{
    LUNA_ENSURE(s != NULL && sql != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(!s->rows_open, LUNA_ERR_INVALID_ARG);
    s->retryable = false;
    if (s->in_tx && s->tx_doomed) {
        /* Statements of a doomed transaction are pointless; say why. */
        s->retryable = s->tx_err_retryable;
        return s->tx_err;
    }
    return LUNA_OK;
}

luna_err luna_store_exec(luna_store *s, const char *sql, const luna_store_param *params, size_t n,
                         uint64_t *changes)
{
    if (changes != NULL)
        *changes = 0;
    LUNA_GUARD(store_ready(s, sql));
    LUNA_GUARD(store_check_params(s, params, n));
    LUNA_GUARD(luna_store_translate_placeholders(sql, n, NULL));
    return store_note(s, s->ops->exec(s, sql, params, n, changes));
}

luna_err luna_store_query(luna_store *s, const char *sql, const luna_store_param *params, size_t n,
                          luna_store_rows **out)
{
    luna_err err;
    luna_store_rows *r;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_GUARD(store_ready(s, sql));
    LUNA_GUARD(store_check_params(s, params, n));
    LUNA_GUARD(luna_store_translate_placeholders(sql, n, NULL));
    r = calloc(1, sizeof(*r));
    LUNA_ENSURE(r != NULL, LUNA_ERR_NOMEM);
    r->s = s;
    err = store_note(s, s->ops->query(s, sql, params, n, r));
    if (err != LUNA_OK) {
        free(r);
        return err;
    }
    s->rows_open = true;
    *out = r;
    return LUNA_OK;
}

luna_err luna_store_rows_next(luna_store_rows *r, bool *has_row)
{
    luna_err err;

    LUNA_ENSURE(r != NULL && has_row != NULL, LUNA_ERR_INVALID_ARG);
    *has_row = false;
    r->has_row = false;
    if (r->err != LUNA_OK)
        return r->err;
    if (r->done)
        return LUNA_OK;
    err = r->s->ops->next(r, has_row);
    if (err == LUNA_OK && *has_row) {
        r->nrows++;
        if (r->nrows > r->s->opt.max_rows) {
            err = LUNA_ERR_TOO_LARGE;
            luna_store_set_diag(r->s, "store: ", "result over max_rows");
        }
        for (size_t c = 0; err == LUNA_OK && c < r->ncols; c++) {
            luna_store_value v;
            err = r->s->ops->get(r, c, &v);
            if (err == LUNA_OK && v.len > r->s->opt.max_value_len) {
                err = LUNA_ERR_TOO_LARGE;
                luna_store_set_diag(r->s, "store: ", "value over max_value_len");
            }
        }
    }
    if (err != LUNA_OK) {
        *has_row = false;
        r->err = store_note(r->s, err);
        return err;
    }
    r->has_row = *has_row;
    if (!*has_row)
        r->done = true;
    return LUNA_OK;
}

size_t luna_store_rows_ncols(const luna_store_rows *r)
{
    return r != NULL ? r->ncols : 0;
}

void luna_store_rows_free(luna_store_rows *r)
{
    if (r == NULL)
        return;
    r->s->ops->rows_close(r);
    r->s->rows_open = false;
    free(r);
}

static luna_err store_value(const luna_store_rows *r, size_t col, luna_store_value *v)
{
    LUNA_ENSURE(r != NULL && r->has_row && col < r->ncols, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(r->s->ops->get(r, col, v));
    return LUNA_OK;
}

luna_err luna_store_col_is_null(const luna_store_rows *r, size_t col, bool *out)
{
    luna_store_value v;
    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(store_value(r, col, &v));
    *out = !v.other && v.type == LUNA_STORE_T_NULL;
    return LUNA_OK;
}

static luna_err store_typed(const luna_store_rows *r, size_t col, luna_store_type want,
                            luna_store_value *v)
{
    LUNA_GUARD(store_value(r, col, v));
    LUNA_ENSURE(v->other || v->type != LUNA_STORE_T_NULL, LUNA_ERR_NOT_FOUND);
    LUNA_ENSURE(!v->other && v->type == want, LUNA_ERR_FORMAT);
    return LUNA_OK;
}

luna_err luna_store_col_int64(const luna_store_rows *r, size_t col, int64_t *out)
{
    luna_store_value v;
    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(store_typed(r, col, LUNA_STORE_T_INT64, &v));
    *out = v.i64;
    return LUNA_OK;
}

luna_err luna_store_col_text(const luna_store_rows *r, size_t col, const char **out, size_t *len)
{
    luna_store_value v;
    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(store_typed(r, col, LUNA_STORE_T_TEXT, &v));
    *out = (const char *)v.data;
    if (len != NULL)
        *len = v.len;
    return LUNA_OK;
}

luna_err luna_store_col_blob(const luna_store_rows *r, size_t col, const uint8_t **out, size_t *len)
{
    luna_store_value v;
    LUNA_ENSURE(out != NULL && len != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(store_typed(r, col, LUNA_STORE_T_BLOB, &v));
    *out = v.data;
    *len = v.len;
    return LUNA_OK;
}

/* ---- transactions ---- */

static luna_err store_begin_with(luna_store *s, const char *begin_sql)
{
    luna_err err;
    LUNA_ENSURE(s != NULL && !s->rows_open && !s->in_tx, LUNA_ERR_INVALID_ARG);
    s->retryable = false;
    err = s->ops->script(s, begin_sql);
    if (err != LUNA_OK)
        return err;
    s->in_tx = true;
    s->tx_doomed = false;
    s->tx_err = LUNA_OK;
    s->tx_err_retryable = false;
    return LUNA_OK;
}

luna_err luna_store_begin(luna_store *s)
{
    LUNA_ENSURE(s != NULL, LUNA_ERR_INVALID_ARG);
    return store_begin_with(s, s->ops->begin_sql);
}

static void store_end_tx(luna_store *s)
{
    s->in_tx = false;
    s->tx_doomed = false;
    s->tx_err = LUNA_OK;
    s->tx_err_retryable = false;
}

luna_err luna_store_rollback(luna_store *s)
{
    luna_err err;
    bool retryable;
    LUNA_ENSURE(s != NULL && !s->rows_open && s->in_tx, LUNA_ERR_INVALID_ARG);
    /* Keep the reason of a doomed transaction visible to luna_store_tx. */
    retryable = s->retryable;
    err = s->ops->script(s, "ROLLBACK");
    if (err == LUNA_OK)
        s->retryable = retryable;
    store_end_tx(s);
    return err;
}

luna_err luna_store_commit(luna_store *s)
{
    luna_err err;
    LUNA_ENSURE(s != NULL && !s->rows_open && s->in_tx, LUNA_ERR_INVALID_ARG);
    if (s->tx_doomed) {
        luna_err first = s->tx_err;
        bool retryable = s->tx_err_retryable;
        (void)s->ops->script(s, "ROLLBACK");
        store_end_tx(s);
        s->retryable = retryable;
        return first;
    }
    s->retryable = false;
    err = s->ops->commit(s);
    if (err != LUNA_OK) {
        bool retryable = s->retryable;
        /* SQLite keeps the transaction open after a failed COMMIT. */
        (void)s->ops->script(s, "ROLLBACK");
        s->retryable = retryable;
    }
    store_end_tx(s);
    return err;
}

static void store_backoff(uint32_t attempt)
{
    uint8_t rnd[2] = {0, 0};
    struct timespec ts;
    uint64_t us;
    /* Jitter keeps two retrying writers from colliding in lock step; a
     * failed RNG only loses the jitter. */
    if (luna_random(rnd, sizeof(rnd)) != LUNA_OK)
        rnd[0] = rnd[1] = 0;
    us = (uint64_t)(attempt < 6 ? attempt : 6) * 2000u + (((uint64_t)rnd[0] << 8 | rnd[1]) % 8000u);
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(us * 1000u);
    (void)nanosleep(&ts, NULL);
}

static luna_err store_tx_run(luna_store *s, const char *begin_sql, luna_store_tx_fn fn, void *ctx)
{
    luna_err err = LUNA_ERR_INTERNAL;

    LUNA_ENSURE(s != NULL && fn != NULL && !s->in_tx && !s->rows_open, LUNA_ERR_INVALID_ARG);
    for (uint32_t attempt = 0; attempt < s->opt.tx_attempts; attempt++) {
        if (attempt > 0)
            store_backoff(attempt);
        err = store_begin_with(s, begin_sql);
        if (err == LUNA_OK) {
            err = fn(s, ctx);
            if (s->rows_open) {
                /* fn leaked an open result: a bug in fn, not retryable. */
                return LUNA_ERR_INTERNAL;
            }
            if (err == LUNA_OK && s->in_tx) {
                err = luna_store_commit(s);
            } else if (s->in_tx) {
                bool retryable = s->retryable || (s->tx_doomed && s->tx_err_retryable);
                luna_err rb = luna_store_rollback(s);
                (void)rb; /* fn's error is the one to report */
                s->retryable = retryable;
            } else if (err == LUNA_OK) {
                /* fn ended the transaction itself: contract broken. */
                return LUNA_ERR_INVALID_ARG;
            }
        }
        if (err == LUNA_OK)
            return LUNA_OK;
        if (!(err == LUNA_ERR_UNAVAILABLE && s->retryable))
            return err;
    }
    return err;
}

luna_err luna_store_tx(luna_store *s, luna_store_tx_fn fn, void *ctx)
{
    LUNA_ENSURE(s != NULL, LUNA_ERR_INVALID_ARG);
    return store_tx_run(s, s->ops->begin_sql, fn, ctx);
}

/* ---- migrations ---- */

typedef struct store_migrate_ctx {
    const luna_store_migration *steps;
    size_t n;
    int64_t version;
} store_migrate_ctx;

static luna_err store_migrate_fn(luna_store *s, void *vctx)
{
    store_migrate_ctx *ctx = vctx;
    luna_err err;
    luna_store_rows *rows = NULL;
    bool has = false;
    int64_t current = 0;

    if (s->ops->migration_lock != NULL)
        LUNA_GUARD(store_note(s, s->ops->migration_lock(s)));
    LUNA_GUARD(store_note(s, s->ops->script(s, "CREATE TABLE IF NOT EXISTS luna_schema_version ("
                                               "version BIGINT PRIMARY KEY NOT NULL)")));
    LUNA_GUARD(luna_store_query(s, "SELECT max(version) FROM luna_schema_version", NULL, 0, &rows));
    LUNA_TRY(luna_store_rows_next(rows, &has), out);
    LUNA_TRY_ENSURE(has, LUNA_ERR_STORAGE, out);
    {
        bool is_null = true;
        LUNA_TRY(luna_store_col_is_null(rows, 0, &is_null), out);
        if (!is_null)
            LUNA_TRY(luna_store_col_int64(rows, 0, &current), out);
    }
    luna_store_rows_free(rows);
    rows = NULL;

    if (current > ctx->steps[ctx->n - 1].version) {
        luna_store_set_diag(s, "store: ", "database schema newer than this code");
        err = store_note(s, LUNA_ERR_UNSUPPORTED);
        goto out;
    }
    for (size_t i = 0; i < ctx->n; i++) {
        const luna_store_migration *m = &ctx->steps[i];
        const char *sql = m->sql;
        luna_store_param p;
        if (m->version <= current)
            continue;
        if (s->kind == LUNA_STORE_POSTGRES && m->sql_pg != NULL)
            sql = m->sql_pg;
        LUNA_TRY(store_note(s, s->ops->script(s, sql)), out);
        p = luna_store_p_int64(m->version);
        LUNA_TRY(luna_store_exec(s, "INSERT INTO luna_schema_version (version) VALUES (?1)", &p, 1,
                                 NULL),
                 out);
        current = m->version;
    }
    ctx->version = current;
    err = LUNA_OK;
out:
    luna_store_rows_free(rows);
    return err;
}

luna_err luna_store_migrate(luna_store *s, const luna_store_migration *steps, size_t n,
                            int64_t *version)
{
    store_migrate_ctx ctx = {.steps = steps, .n = n, .version = 0};

    LUNA_ENSURE(s != NULL && steps != NULL && n > 0, LUNA_ERR_INVALID_ARG);
    for (size_t i = 0; i < n; i++) {
        const char *sql = s->kind == LUNA_STORE_POSTGRES && steps[i].sql_pg != NULL
                              ? steps[i].sql_pg
                              : steps[i].sql;
        LUNA_ENSURE(sql != NULL && steps[i].version > 0, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(i == 0 || steps[i].version > steps[i - 1].version, LUNA_ERR_INVALID_ARG);
        LUNA_ENSURE(strnlen(sql, LUNA_STORE_MAX_SQL_LEN + 1) <= LUNA_STORE_MAX_SQL_LEN,
                    LUNA_ERR_TOO_LARGE);
    }
    LUNA_GUARD(store_tx_run(s, s->ops->migrate_begin_sql, store_migrate_fn, &ctx));
    if (version != NULL)
        *version = ctx.version;
    return LUNA_OK;
}

/* ---- URL redaction ---- */

static luna_err store_put(char *out, size_t cap, size_t *o, const char *src, size_t n)
{
    LUNA_ENSURE(cap - *o > n, LUNA_ERR_TOO_LARGE);
    memcpy(out + *o, src, n);
    *o += n;
    return LUNA_OK;
}

static luna_err store_redact(const char *url, char *out, size_t out_cap)
{
    size_t len;
    size_t i = 0;
    size_t o = 0;
    size_t auth_end;
    const char *scheme_end;

    len = strlen(url);
    scheme_end = strstr(url, "://");
    if (scheme_end != NULL) {
        size_t start = (size_t)(scheme_end - url) + 3;
        size_t at = 0;
        bool have_at = false;
        auth_end = start;
        while (auth_end < len && url[auth_end] != '/' && url[auth_end] != '?' &&
               url[auth_end] != '#')
            auth_end++;
        /* The last '@' ends the userinfo (a password may contain '@' only
         * percent-encoded, but be safe with raw ones too). */
        for (size_t k = start; k < auth_end; k++) {
            if (url[k] == '@') {
                at = k;
                have_at = true;
            }
        }
        LUNA_GUARD(store_put(out, out_cap, &o, url, start));
        i = start;
        if (have_at) {
            const char *colon = memchr(url + start, ':', at - start);
            if (colon != NULL) {
                size_t ul = (size_t)(colon - (url + start)) + 1;
                LUNA_GUARD(store_put(out, out_cap, &o, url + start, ul));
                LUNA_GUARD(store_put(out, out_cap, &o, "***", 3));
                i = at;
            }
        }
    }
    /* Query parameters (and bare conninfo "password=x"): mask the value. */
    while (i < len) {
        static const char key[] = "password=";
        size_t kl = sizeof(key) - 1;
        if (len - i >= kl && strncasecmp(url + i, key, kl) == 0 &&
            (i == 0 || url[i - 1] == '?' || url[i - 1] == '&' || url[i - 1] == ' ')) {
            LUNA_GUARD(store_put(out, out_cap, &o, url + i, kl));
            LUNA_GUARD(store_put(out, out_cap, &o, "***", 3));
            i += kl;
            while (i < len && url[i] != '&' && url[i] != ' ' && url[i] != '#')
                i++;
            continue;
        }
        LUNA_GUARD(store_put(out, out_cap, &o, url + i, 1));
        i++;
    }
    out[o] = '\0';
    return LUNA_OK;
}

luna_err luna_store_redact_url(const char *url, char *out, size_t out_cap)
{
    luna_err err;
    LUNA_ENSURE(url != NULL && out != NULL && out_cap > 0, LUNA_ERR_INVALID_ARG);
    err = store_redact(url, out, out_cap);
    if (err != LUNA_OK) {
        /* A truncated copy could end inside the password. */
        luna_wipe(out, out_cap);
        out[0] = '\0';
    }
    return err;
}
