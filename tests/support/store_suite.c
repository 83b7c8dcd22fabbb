/*
 * store_suite.c - the shared behavioural tests of luna/store.h.  Every
 * assertion here must hold on SQLite and on PostgreSQL alike; where the
 * backends reach the same end by different roads (busy wait vs.
 * serialization failure) the test says which road it checks.  Test-only.
 */
#include "store_suite.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luna/store.h"
#include "luna_test.h"

static const char *g_url;

static const luna_store_migration g_steps[] = {
    {1,
     "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT UNIQUE, data BLOB, n BIGINT);"
     "CREATE INDEX items_n ON items (n);",
     "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT UNIQUE, data BYTEA, n BIGINT);"
     "CREATE INDEX items_n ON items (n);"},
    {2,
     "CREATE TABLE counter (id BIGINT PRIMARY KEY, value BIGINT NOT NULL);"
     "INSERT INTO counter (id, value) VALUES (1, 0);",
     NULL},
};
#define N_STEPS (sizeof(g_steps) / sizeof(g_steps[0]))

static luna_store *open_with(const luna_store_options *o)
{
    luna_store *s = NULL;
    luna_err err = luna_store_open(g_url, o, &s);
    if (err != LUNA_OK)
        fprintf(stderr, "open failed: %s (%s)\n", luna_errname(err), luna_store_last_error(s));
    assert_luna_ok(err);
    assert_non_null(s);
    return s;
}

static luna_store *open_default(void)
{
    return open_with(NULL);
}

static luna_store *open_migrated(void)
{
    luna_store *s = open_default();
    int64_t v = 0;
    assert_luna_ok(luna_store_migrate(s, g_steps, N_STEPS, &v));
    assert_int_equal(2, v);
    return s;
}

static int suite_reset(void **state)
{
    static const char *const drops[] = {
        "DROP TABLE IF EXISTS notes", "DROP TABLE IF EXISTS items",
        "DROP TABLE IF EXISTS counter", "DROP TABLE IF EXISTS luna_schema_version"};
    luna_store *s = NULL;
    (void)state;
    if (luna_store_open(g_url, NULL, &s) != LUNA_OK)
        return -1;
    for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++) {
        if (luna_store_exec(s, drops[i], NULL, 0, NULL) != LUNA_OK) {
            luna_store_close(s);
            return -1;
        }
    }
    luna_store_close(s);
    return 0;
}

/* SELECT returning one int64. */
static int64_t query_i64(luna_store *s, const char *sql, const luna_store_param *p, size_t n)
{
    luna_store_rows *r = NULL;
    bool has = false;
    int64_t v = -1;
    assert_luna_ok(luna_store_query(s, sql, p, n, &r));
    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_int64(r, 0, &v));
    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_false(has);
    luna_store_rows_free(r);
    return v;
}

static int64_t count_items(luna_store *s)
{
    return query_i64(s, "SELECT count(*) FROM items", NULL, 0);
}

static luna_err insert_item(luna_store *s, int64_t id, const char *name)
{
    luna_store_param p[2] = {luna_store_p_int64(id), luna_store_p_text(name)};
    return luna_store_exec(s, "INSERT INTO items (id, name) VALUES (?1, ?2)", p, 2, NULL);
}

/* ---- migrations ---- */

static void migrate_creates_schema(void **state)
{
    (void)state;
    luna_store *s = open_migrated();
    assert_int_equal(0, count_items(s));
    assert_int_equal(0, query_i64(s, "SELECT value FROM counter WHERE id = 1", NULL, 0));
    assert_int_equal(2, query_i64(s, "SELECT count(*) FROM luna_schema_version", NULL, 0));
    luna_store_close(s);
}

static void migrate_rerun_is_noop(void **state)
{
    (void)state;
    int64_t v = 0;
    luna_store *s = open_migrated();
    assert_luna_ok(luna_store_exec(s, "UPDATE counter SET value = 41 WHERE id = 1", NULL, 0, NULL));
    assert_luna_ok(luna_store_migrate(s, g_steps, N_STEPS, &v));
    assert_int_equal(2, v);
    luna_store_close(s);
    s = open_default();
    assert_luna_ok(luna_store_migrate(s, g_steps, N_STEPS, &v));
    assert_int_equal(2, v);
    /* Step 2's INSERT did not run again, and no version was re-recorded. */
    assert_int_equal(1, query_i64(s, "SELECT count(*) FROM counter", NULL, 0));
    assert_int_equal(41, query_i64(s, "SELECT value FROM counter WHERE id = 1", NULL, 0));
    assert_int_equal(2, query_i64(s, "SELECT count(*) FROM luna_schema_version", NULL, 0));
    /* Code that knows only step 1 is refused: the database is newer. */
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_store_migrate(s, g_steps, 1, &v));
    luna_store_close(s);
}

static void migrate_refuses_newer_schema(void **state)
{
    (void)state;
    const luna_store_migration newer[] = {
        g_steps[0], g_steps[1], {3, "CREATE TABLE notes (x BIGINT)", NULL}};
    int64_t v = 0;
    luna_store *s = open_default();
    assert_luna_ok(luna_store_migrate(s, newer, 3, &v));
    assert_int_equal(3, v);
    luna_store_close(s);

    s = open_default();
    v = 77;
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_store_migrate(s, g_steps, N_STEPS, &v));
    assert_int_equal(77, v); /* untouched on failure */
    assert_int_equal(3, query_i64(s, "SELECT max(version) FROM luna_schema_version", NULL, 0));
    assert_int_equal(3, query_i64(s, "SELECT count(*) FROM luna_schema_version", NULL, 0));
    luna_store_close(s);
}

static void migrate_failure_is_atomic(void **state)
{
    (void)state;
    const luna_store_migration broken[] = {
        g_steps[0], g_steps[1],
        {3, "CREATE TABLE notes (x BIGINT); INSERT INTO counter (id, value) VALUES (2, 2); "
            "THIS IS NOT SQL",
         NULL}};
    const luna_store_migration unordered[] = {g_steps[1], g_steps[0]};
    int64_t v = 0;
    luna_store *s = open_migrated();
    assert_luna_err(LUNA_ERR_STORAGE, luna_store_migrate(s, broken, 3, &v));
    assert_int_equal(2, query_i64(s, "SELECT max(version) FROM luna_schema_version", NULL, 0));
    assert_int_equal(1, query_i64(s, "SELECT count(*) FROM counter", NULL, 0));
    /* The table of the failed step does not exist. */
    assert_int_not_equal(LUNA_OK, luna_store_exec(s, "INSERT INTO notes (x) VALUES (1)", NULL, 0,
                                                  NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_migrate(s, unordered, 2, &v));
    luna_store_close(s);
}

typedef struct migrator_arg {
    luna_err err;
    int64_t version;
} migrator_arg;

static void *migrator_main(void *varg)
{
    migrator_arg *arg = varg;
    luna_store *s = NULL;
    arg->err = luna_store_open(g_url, NULL, &s);
    if (arg->err == LUNA_OK)
        arg->err = luna_store_migrate(s, g_steps, N_STEPS, &arg->version);
    luna_store_close(s);
    return NULL;
}

static void concurrent_migrators(void **state)
{
    (void)state;
    pthread_t t[3];
    migrator_arg args[3];
    memset(args, 0, sizeof(args));
    for (int i = 0; i < 3; i++)
        assert_int_equal(0, pthread_create(&t[i], NULL, migrator_main, &args[i]));
    for (int i = 0; i < 3; i++)
        assert_int_equal(0, pthread_join(t[i], NULL));
    for (int i = 0; i < 3; i++) {
        assert_luna_ok(args[i].err);
        assert_int_equal(2, args[i].version);
    }
    luna_store *s = open_default();
    /* Each step ran exactly once. */
    assert_int_equal(1, query_i64(s, "SELECT count(*) FROM counter", NULL, 0));
    assert_int_equal(2, query_i64(s, "SELECT count(*) FROM luna_schema_version", NULL, 0));
    luna_store_close(s);
}

/* ---- types ---- */

static void types_roundtrip(void **state)
{
    (void)state;
    static const uint8_t nul_blob[] = {0x00, 0x01, 0x00, 0xff, 0x00};
    const char *utf8 = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x94\x91";
    const struct {
        int64_t id;
        luna_store_param name, data, n;
    } rows[] = {
        {1, luna_store_p_text(utf8), luna_store_p_blob(nul_blob, sizeof(nul_blob)),
         luna_store_p_int64(INT64_MIN)},
        {2, luna_store_p_text(""), luna_store_p_blob(NULL, 0), luna_store_p_int64(INT64_MAX)},
        {3, luna_store_p_null(), luna_store_p_null(), luna_store_p_null()},
        {4, luna_store_p_textn("abc-ignored", 3), luna_store_p_blob("\0", 1), luna_store_p_int64(-1)},
    };
    luna_store *s = open_migrated();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        luna_store_param p[4] = {luna_store_p_int64(rows[i].id), rows[i].name, rows[i].data,
                                 rows[i].n};
        uint64_t changes = 0;
        assert_luna_ok(luna_store_exec(
            s, "INSERT INTO items (id, name, data, n) VALUES (?1, ?2, ?3, ?4)", p, 4, &changes));
        assert_int_equal(1, changes);
    }

    luna_store_rows *r = NULL;
    bool has = false;
    bool is_null = true;
    int64_t i64 = 0;
    const char *txt = NULL;
    const uint8_t *blob = NULL;
    size_t len = 99;
    assert_luna_ok(luna_store_query(s, "SELECT id, name, data, n FROM items ORDER BY id", NULL, 0, &r));
    assert_int_equal(4, luna_store_rows_ncols(r));
    /* No current row yet. */
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_col_int64(r, 0, &i64));

    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_int64(r, 0, &i64));
    assert_int_equal(1, i64);
    assert_luna_ok(luna_store_col_text(r, 1, &txt, &len));
    assert_int_equal(strlen(utf8), len);
    assert_string_equal(utf8, txt);
    assert_luna_ok(luna_store_col_blob(r, 2, &blob, &len));
    assert_int_equal(sizeof(nul_blob), len);
    assert_memory_equal(nul_blob, blob, len);
    assert_luna_ok(luna_store_col_int64(r, 3, &i64));
    assert_true(i64 == INT64_MIN);
    /* Getters never convert; out-of-range column refused. */
    assert_luna_err(LUNA_ERR_FORMAT, luna_store_col_text(r, 0, &txt, &len));
    assert_luna_err(LUNA_ERR_FORMAT, luna_store_col_int64(r, 1, &i64));
    assert_luna_err(LUNA_ERR_FORMAT, luna_store_col_blob(r, 1, &blob, &len));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_col_int64(r, 4, &i64));
    assert_luna_ok(luna_store_col_is_null(r, 2, &is_null));
    assert_false(is_null);

    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_text(r, 1, &txt, &len));
    assert_int_equal(0, len);
    assert_string_equal("", txt);
    /* An empty blob is a value, not NULL. */
    assert_luna_ok(luna_store_col_is_null(r, 2, &is_null));
    assert_false(is_null);
    assert_luna_ok(luna_store_col_blob(r, 2, &blob, &len));
    assert_int_equal(0, len);
    assert_non_null(blob);
    assert_luna_ok(luna_store_col_int64(r, 3, &i64));
    assert_true(i64 == INT64_MAX);

    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    for (size_t c = 1; c < 4; c++) {
        assert_luna_ok(luna_store_col_is_null(r, c, &is_null));
        assert_true(is_null);
    }
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_store_col_text(r, 1, &txt, &len));
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_store_col_blob(r, 2, &blob, &len));
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_store_col_int64(r, 3, &i64));

    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_text(r, 1, &txt, &len));
    assert_string_equal("abc", txt);
    assert_luna_ok(luna_store_col_blob(r, 2, &blob, &len));
    assert_int_equal(1, len);
    assert_int_equal(0, blob[0]);
    assert_luna_ok(luna_store_col_int64(r, 3, &i64));
    assert_int_equal(-1, i64);

    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_false(has);
    assert_luna_ok(luna_store_rows_next(r, &has)); /* stays at the end */
    assert_false(has);
    luna_store_rows_free(r);

    /* A query with bound parameters of every type, including a blob with
     * NULs used as a key. */
    luna_store_param k = luna_store_p_blob(nul_blob, sizeof(nul_blob));
    assert_int_equal(1, query_i64(s, "SELECT id FROM items WHERE data = ?1", &k, 1));
    /* REAL/NUMERIC has no getter. */
    assert_luna_ok(luna_store_query(s, "SELECT 1.5", NULL, 0, &r));
    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_err(LUNA_ERR_FORMAT, luna_store_col_int64(r, 0, &i64));
    luna_store_rows_free(r);
    luna_store_close(s);
}

static void big_blob_roundtrip(void **state)
{
    (void)state;
    const size_t n = 1024 * 1024;
    uint8_t *big = malloc(n);
    uint32_t x = 0x12345678u;
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        big[i] = (i % 7 == 0) ? 0 : (uint8_t)x;
    }
    luna_store *s = open_migrated();
    luna_store_param p[2] = {luna_store_p_int64(9), luna_store_p_blob(big, n)};
    assert_luna_ok(luna_store_exec(s, "INSERT INTO items (id, data) VALUES (?1, ?2)", p, 2, NULL));

    luna_store_rows *r = NULL;
    bool has = false;
    const uint8_t *out = NULL;
    size_t len = 0;
    luna_store_param id = luna_store_p_int64(9);
    assert_luna_ok(luna_store_query(s, "SELECT data FROM items WHERE id = ?1", &id, 1, &r));
    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_blob(r, 0, &out, &len));
    assert_int_equal(n, len);
    assert_memory_equal(big, out, n);
    luna_store_rows_free(r);
    luna_store_close(s);
    free(big);
}

/* ---- errors ---- */

static void unique_conflict(void **state)
{
    (void)state;
    luna_store *s = open_migrated();
    assert_luna_ok(insert_item(s, 1, "secret-value-1234"));
    assert_luna_err(LUNA_ERR_CONFLICT, insert_item(s, 1, "other"));
    assert_null(strstr(luna_store_last_error(s), "other"));
    assert_luna_err(LUNA_ERR_CONFLICT, insert_item(s, 2, "secret-value-1234"));
    /* The diagnostic never carries the value. */
    assert_null(strstr(luna_store_last_error(s), "secret-value"));
    assert_int_equal(1, count_items(s));
    /* The handle is fine after an error outside a transaction. */
    assert_luna_ok(insert_item(s, 2, "two"));
    assert_int_equal(2, count_items(s));
    /* changes counts written rows only; rows a SELECT returns are not. */
    uint64_t changes = 99;
    assert_luna_ok(luna_store_exec(s, "UPDATE items SET n = 5", NULL, 0, &changes));
    assert_int_equal(2, changes);
    assert_luna_ok(luna_store_exec(s, "SELECT id FROM items", NULL, 0, &changes));
    assert_int_equal(0, changes);
    luna_store_close(s);
}

static void contract_violations(void **state)
{
    (void)state;
    luna_store *s = open_migrated();
    luna_store_rows *r = NULL;
    luna_store_param one = luna_store_p_int64(1);
    luna_store_param three[3] = {luna_store_p_int64(1), luna_store_p_int64(2), luna_store_p_int64(3)};
    luna_store_param nul_text = luna_store_p_textn("a\0b", 3);
    luna_store_param bad_utf8 = luna_store_p_textn("\xc0\xaf", 2);
    luna_store_param surrogate = luna_store_p_textn("\xed\xa0\x80", 3);
    luna_store_param bad_type = {.type = (luna_store_type)42};

    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?", &one, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1, ?3", three, 3, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1", three, 3, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1", NULL, 0, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT $1", &one, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT :name", &one, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT @name", &one, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?0", &one, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT 'unterminated", NULL, 0, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1", &nul_text, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1", &bad_utf8, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1", &surrogate, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1", &bad_type, 1, NULL));
    /* Stacked statements never run (SQLite: refused before running;
     * PostgreSQL: the extended protocol refuses them). */
    assert_int_not_equal(LUNA_OK, luna_store_exec(s, "INSERT INTO items (id) VALUES (5); "
                                                     "INSERT INTO items (id) VALUES (6)",
                                                  NULL, 0, NULL));
    assert_int_equal(0, count_items(s));
    /* A result open blocks the handle until freed. */
    assert_luna_ok(luna_store_query(s, "SELECT id FROM items", NULL, 0, &r));
    assert_luna_err(LUNA_ERR_INVALID_ARG, insert_item(s, 1, "x"));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_begin(s));
    luna_store_rows_free(r);
    assert_luna_ok(insert_item(s, 1, "x"));
    /* No nesting; commit/rollback need a transaction. */
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_commit(s));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_rollback(s));
    assert_luna_ok(luna_store_begin(s));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_begin(s));
    assert_luna_ok(luna_store_rollback(s));
    luna_store_close(s);
}

/* Placeholder look-alikes inside literals and comments are text. */
static void placeholders_in_literals(void **state)
{
    (void)state;
    luna_store *s = open_default();
    luna_store_rows *r = NULL;
    bool has = false;
    const char *t = NULL;
    size_t len = 0;
    luna_store_param p = luna_store_p_text("bound");
    assert_luna_ok(luna_store_query(s,
                                    "SELECT '?1 '' ?2', ?1 -- ?3 comment\n"
                                    ", /* ?4 */ 'x'",
                                    &p, 1, &r));
    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_int_equal(3, luna_store_rows_ncols(r));
    assert_luna_ok(luna_store_col_text(r, 0, &t, &len));
    assert_string_equal("?1 ' ?2", t);
    assert_luna_ok(luna_store_col_text(r, 1, &t, &len));
    assert_string_equal("bound", t);
    luna_store_rows_free(r);
    luna_store_close(s);
}

static void injection_is_stored_literally(void **state)
{
    (void)state;
    static const char *const evil[] = {
        "x'); DROP TABLE items; --",
        "' OR '1'='1",
        "?1 $1 :a @b \" ; /* --",
        "Robert'); DELETE FROM counter; SELECT ('",
    };
    luna_store *s = open_migrated();
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++)
        assert_luna_ok(insert_item(s, (int64_t)i + 1, evil[i]));
    assert_int_equal(4, count_items(s));
    assert_int_equal(1, query_i64(s, "SELECT count(*) FROM counter", NULL, 0));
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        luna_store_param p = luna_store_p_text(evil[i]);
        luna_store_rows *r = NULL;
        bool has = false;
        const char *t = NULL;
        size_t len = 0;
        assert_int_equal((int64_t)i + 1, query_i64(s, "SELECT id FROM items WHERE name = ?1", &p, 1));
        luna_store_param id = luna_store_p_int64((int64_t)i + 1);
        assert_luna_ok(luna_store_query(s, "SELECT name FROM items WHERE id = ?1", &id, 1, &r));
        assert_luna_ok(luna_store_rows_next(r, &has));
        assert_true(has);
        assert_luna_ok(luna_store_col_text(r, 0, &t, &len));
        assert_string_equal(evil[i], t);
        luna_store_rows_free(r);
    }
    /* "WHERE name = ?1" with the classic tautology matches nothing. */
    luna_store_param taut = luna_store_p_text("nobody' OR '1'='1");
    assert_int_equal(0, query_i64(s, "SELECT count(*) FROM items WHERE name = ?1", &taut, 1));
    luna_store_close(s);
}

/* ---- transactions ---- */

static luna_err fail_after_insert(luna_store *s, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    LUNA_GUARD(insert_item(s, 1, "one"));
    return LUNA_ERR_VERIFY; /* a caller error: rolled back, not retried */
}

static void rollback_leaves_nothing(void **state)
{
    (void)state;
    int calls = 0;
    luna_store *s = open_migrated();

    assert_luna_ok(luna_store_begin(s));
    assert_luna_ok(insert_item(s, 1, "one"));
    assert_luna_ok(insert_item(s, 2, "two"));
    assert_int_equal(2, count_items(s));
    assert_luna_ok(luna_store_rollback(s));
    assert_int_equal(0, count_items(s));

    assert_luna_err(LUNA_ERR_VERIFY, luna_store_tx(s, fail_after_insert, &calls));
    assert_int_equal(1, calls);
    assert_int_equal(0, count_items(s));

    /* A failed statement dooms the transaction on both backends: commit
     * rolls back and reports the first error. */
    assert_luna_ok(luna_store_begin(s));
    assert_luna_ok(insert_item(s, 1, "one"));
    assert_luna_err(LUNA_ERR_CONFLICT, insert_item(s, 2, "one"));
    assert_luna_err(LUNA_ERR_CONFLICT, insert_item(s, 3, "three"));
    assert_luna_err(LUNA_ERR_CONFLICT, luna_store_commit(s));
    assert_int_equal(0, count_items(s));

    /* Closing with an open transaction rolls it back. */
    assert_luna_ok(luna_store_begin(s));
    assert_luna_ok(insert_item(s, 1, "one"));
    luna_store_close(s);
    s = open_default();
    assert_int_equal(0, count_items(s));
    luna_store_close(s);
}

static void commit_persists_across_reopen(void **state)
{
    (void)state;
    luna_store *s = open_migrated();
    luna_store_param id = luna_store_p_int64(7);
    assert_luna_ok(luna_store_begin(s));
    assert_luna_ok(insert_item(s, 7, "seven"));
    assert_luna_ok(luna_store_commit(s));
    luna_store_close(s);

    s = open_default();
    assert_int_equal(1, count_items(s));
    assert_int_equal(7, query_i64(s, "SELECT id FROM items WHERE id = ?1", &id, 1));
    luna_store_close(s);
}

typedef struct incr_ctx {
    int calls;
    int64_t add;
    luna_store *interferer; /* when set, writes the same row mid-transaction */
    atomic_int *read_done;  /* when set, raised once the value was read */
} incr_ctx;

static luna_err increment(luna_store *s, void *vctx)
{
    incr_ctx *ctx = vctx;
    luna_store_rows *r = NULL;
    bool has = false;
    int64_t v = 0;
    luna_err err;

    ctx->calls++;
    LUNA_GUARD(luna_store_query(s, "SELECT value FROM counter WHERE id = 1", NULL, 0, &r));
    err = luna_store_rows_next(r, &has);
    if (err == LUNA_OK && !has)
        err = LUNA_ERR_NOT_FOUND;
    if (err == LUNA_OK)
        err = luna_store_col_int64(r, 0, &v);
    luna_store_rows_free(r);
    LUNA_GUARD(err);
    if (ctx->read_done != NULL)
        atomic_store(ctx->read_done, 1);
    if (ctx->interferer != NULL) {
        /* Result ignored on purpose: on SQLite this writer is locked out. */
        luna_err e2 = luna_store_exec(ctx->interferer,
                                      "UPDATE counter SET value = value + 100 WHERE id = 1", NULL,
                                      0, NULL);
        (void)e2;
    }
    luna_store_param p[2] = {luna_store_p_int64(v + ctx->add), luna_store_p_int64(1)};
    return luna_store_exec(s, "UPDATE counter SET value = ?1 WHERE id = ?2", p, 2, NULL);
}

#define WRITER_ROUNDS 40

typedef struct writer_arg {
    int calls;
    luna_err err;
} writer_arg;

static void *writer_main(void *varg)
{
    writer_arg *arg = varg;
    luna_store *s = NULL;
    luna_store_options o = {.tx_attempts = LUNA_STORE_MAX_TX_ATTEMPTS};
    arg->err = luna_store_open(g_url, &o, &s);
    for (int i = 0; i < WRITER_ROUNDS && arg->err == LUNA_OK; i++) {
        incr_ctx ctx = {.add = 1};
        arg->err = luna_store_tx(s, increment, &ctx);
        arg->calls += ctx.calls;
    }
    luna_store_close(s);
    return NULL;
}

static void concurrent_writers(void **state)
{
    (void)state;
    pthread_t t[2];
    writer_arg args[2];
    luna_store *s = open_migrated();
    memset(args, 0, sizeof(args));
    for (int i = 0; i < 2; i++)
        assert_int_equal(0, pthread_create(&t[i], NULL, writer_main, &args[i]));
    for (int i = 0; i < 2; i++)
        assert_int_equal(0, pthread_join(t[i], NULL));
    for (int i = 0; i < 2; i++) {
        assert_luna_ok(args[i].err);
        assert_true(args[i].calls >= WRITER_ROUNDS);
    }
    /* No lost update: every increment of both writers is there. */
    assert_int_equal(2 * WRITER_ROUNDS,
                     query_i64(s, "SELECT value FROM counter WHERE id = 1", NULL, 0));
    luna_store_close(s);
}

typedef struct committer_arg {
    luna_store *s;
    luna_err err;
    atomic_int read_done;
} committer_arg;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    (void)nanosleep(&ts, NULL);
}

static void *delayed_commit(void *varg)
{
    committer_arg *arg = varg;
    if (luna_store_get_kind(arg->s) == LUNA_STORE_POSTGRES) {
        /* Commit only after B's snapshot saw the old value (bounded wait),
         * and once B is likely blocked on the row. */
        for (int i = 0; i < 10000 && atomic_load(&arg->read_done) == 0; i++)
            sleep_ms(1);
        sleep_ms(100);
    } else {
        /* B cannot read before this commit: BEGIN IMMEDIATE waits. */
        sleep_ms(300);
    }
    arg->err = luna_store_commit(arg->s);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void busy_retry(void **state)
{
    (void)state;
    luna_store *a = open_migrated();
    luna_store_options ob = {.busy_timeout_ms = 50, .tx_attempts = 60};
    luna_store *b = open_with(&ob);
    committer_arg carg = {.s = a, .err = LUNA_ERR_INTERNAL};
    pthread_t t;
    incr_ctx ctx = {.add = 1, .read_done = &carg.read_done};
    double t0;

    atomic_init(&carg.read_done, 0);

    /* A holds the row (and on SQLite the write lock) a while. */
    assert_luna_ok(luna_store_begin(a));
    assert_luna_ok(luna_store_exec(a, "UPDATE counter SET value = value + 1000 WHERE id = 1", NULL,
                                   0, NULL));
    t0 = now_s();
    assert_int_equal(0, pthread_create(&t, NULL, delayed_commit, &carg));
    assert_luna_ok(luna_store_tx(b, increment, &ctx));
    assert_int_equal(0, pthread_join(t, NULL));
    assert_luna_ok(carg.err);
    assert_int_equal(1001, query_i64(b, "SELECT value FROM counter WHERE id = 1", NULL, 0));
    if (luna_store_get_kind(b) == LUNA_STORE_SQLITE) {
        /* Each wait is 50 ms: getting through 300 ms took retries. */
        assert_true(now_s() - t0 >= 0.25);
    } else {
        /* B's first snapshot predates A's commit: 40001, then a retry. */
        assert_true(ctx.calls >= 2);
    }
    luna_store_close(b);
    luna_store_close(a);
}

static void busy_retry_is_bounded(void **state)
{
    (void)state;
    luna_store *a = open_migrated();
    luna_store_options ob = {.busy_timeout_ms = 20, .tx_attempts = 3};
    luna_store *b = open_with(&ob);
    incr_ctx ctx = {.add = 1};

    if (luna_store_get_kind(b) == LUNA_STORE_SQLITE) {
        /* A never lets go of the write lock: B gives up after 3 tries. */
        assert_luna_ok(luna_store_begin(a));
        assert_luna_err(LUNA_ERR_UNAVAILABLE, luna_store_tx(b, increment, &ctx));
        assert_luna_ok(luna_store_rollback(a));
    } else {
        /* Every attempt is undercut by a concurrent committed write. */
        ctx.interferer = a;
        assert_luna_err(LUNA_ERR_UNAVAILABLE, luna_store_tx(b, increment, &ctx));
        assert_int_equal(3, ctx.calls);
        assert_int_equal(300, query_i64(b, "SELECT value FROM counter WHERE id = 1", NULL, 0));
    }
    assert_false(ctx.calls > 3);
    /* The handle is usable afterwards. */
    assert_luna_ok(insert_item(b, 1, "after"));
    luna_store_close(b);
    luna_store_close(a);
}

/* ---- caps ---- */

static void bounded_results(void **state)
{
    (void)state;
    luna_store *s = open_migrated();
    uint8_t blob[2000];
    memset(blob, 0xab, sizeof(blob));
    for (int64_t i = 1; i <= 10; i++) {
        char name[16];
        (void)snprintf(name, sizeof(name), "n%d", (int)i);
        luna_store_param p[3] = {luna_store_p_int64(i), luna_store_p_text(name),
                                 luna_store_p_blob(blob, sizeof(blob))};
        assert_luna_ok(luna_store_exec(s, "INSERT INTO items (id, name, data) VALUES (?1, ?2, ?3)",
                                       p, 3, NULL));
    }
    luna_store_close(s);

    luna_store_options o = {.max_rows = 5, .max_value_len = 1024};
    s = open_with(&o);
    luna_store_rows *r = NULL;
    bool has = false;
    int seen = 0;
    luna_err err = LUNA_OK;
    assert_luna_ok(luna_store_query(s, "SELECT id FROM items ORDER BY id", NULL, 0, &r));
    while ((err = luna_store_rows_next(r, &has)) == LUNA_OK && has)
        seen++;
    assert_luna_err(LUNA_ERR_TOO_LARGE, err);
    assert_int_equal(5, seen);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_store_rows_next(r, &has)); /* sticky */
    assert_false(has);
    luna_store_rows_free(r);

    /* One value over max_value_len. */
    assert_luna_ok(luna_store_query(s, "SELECT data FROM items WHERE id = 1", NULL, 0, &r));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_store_rows_next(r, &has));
    luna_store_rows_free(r);

    /* The same cap refuses a parameter up front. */
    luna_store_param big[2] = {luna_store_p_int64(11), luna_store_p_blob(blob, sizeof(blob))};
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_store_exec(s, "INSERT INTO items (id, data) VALUES (?1, ?2)", big, 2, NULL));
    /* Within the caps all is well, and the handle survived. */
    assert_int_equal(10, count_items(s));
    assert_luna_ok(luna_store_query(s, "SELECT id FROM items WHERE id <= 5", NULL, 0, &r));
    seen = 0;
    while ((err = luna_store_rows_next(r, &has)) == LUNA_OK && has)
        seen++;
    assert_luna_ok(err);
    assert_int_equal(5, seen);
    luna_store_rows_free(r);

    /* Inside a transaction a cap error dooms it like any other failure. */
    assert_luna_ok(luna_store_begin(s));
    assert_luna_ok(insert_item(s, 20, "twenty"));
    assert_luna_ok(luna_store_query(s, "SELECT id FROM items", NULL, 0, &r));
    while ((err = luna_store_rows_next(r, &has)) == LUNA_OK && has)
        ;
    assert_luna_err(LUNA_ERR_TOO_LARGE, err);
    luna_store_rows_free(r);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_store_commit(s));
    assert_int_equal(10, count_items(s));
    luna_store_close(s);

    /* Options out of range are refused. */
    luna_store_options bad = {.max_value_len = (size_t)LUNA_STORE_MAX_VALUE_LEN_LIMIT + 1};
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_open(g_url, &bad, &s));
    assert_null(s);
}

int luna_store_suite_run(const char *group, const char *url)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(migrate_creates_schema, suite_reset),
        cmocka_unit_test_setup(migrate_rerun_is_noop, suite_reset),
        cmocka_unit_test_setup(migrate_refuses_newer_schema, suite_reset),
        cmocka_unit_test_setup(migrate_failure_is_atomic, suite_reset),
        cmocka_unit_test_setup(concurrent_migrators, suite_reset),
        cmocka_unit_test_setup(types_roundtrip, suite_reset),
        cmocka_unit_test_setup(big_blob_roundtrip, suite_reset),
        cmocka_unit_test_setup(unique_conflict, suite_reset),
        cmocka_unit_test_setup(contract_violations, suite_reset),
        cmocka_unit_test_setup(placeholders_in_literals, suite_reset),
        cmocka_unit_test_setup(injection_is_stored_literally, suite_reset),
        cmocka_unit_test_setup(rollback_leaves_nothing, suite_reset),
        cmocka_unit_test_setup(commit_persists_across_reopen, suite_reset),
        cmocka_unit_test_setup(concurrent_writers, suite_reset),
        cmocka_unit_test_setup(busy_retry, suite_reset),
        cmocka_unit_test_setup(busy_retry_is_bounded, suite_reset),
        cmocka_unit_test_setup(bounded_results, suite_reset),
    };
    g_url = url;
    return _cmocka_run_group_tests(group, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}
