/*
 * unit.store_sqlite: the shared store suite on an SQLite file in a fresh
 * temporary folder, then what only SQLite has (file mode, WAL and
 * synchronous=FULL in effect, symlink refusal, foreign keys) and the
 * backend-independent helpers (placeholder translation, URL redaction).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luna/store.h"
#include "luna_test.h"
#include "store_internal.h"
#include "store_suite.h"

static char g_dir[256];

static void path_in_dir(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static luna_store *open_file(const char *name)
{
    char url[512];
    luna_store *s = NULL;
    int n = snprintf(url, sizeof(url), "sqlite:%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < sizeof(url));
    assert_luna_ok(luna_store_open(url, NULL, &s));
    return s;
}

static void query_text(luna_store *s, const char *sql, const char *want)
{
    luna_store_rows *r = NULL;
    bool has = false;
    const char *t = NULL;
    size_t len = 0;
    assert_luna_ok(luna_store_query(s, sql, NULL, 0, &r));
    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_text(r, 0, &t, &len));
    assert_string_equal(want, t);
    luna_store_rows_free(r);
}

static void query_int(luna_store *s, const char *sql, int64_t want)
{
    luna_store_rows *r = NULL;
    bool has = false;
    int64_t v = -1;
    assert_luna_ok(luna_store_query(s, sql, NULL, 0, &r));
    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_int64(r, 0, &v));
    assert_int_equal(want, v);
    luna_store_rows_free(r);
}

static void durable_settings_in_effect(void **state)
{
    (void)state;
    char path[512];
    struct stat st;
    luna_store *s = open_file("durable.db");
    assert_int_equal(LUNA_STORE_SQLITE, luna_store_get_kind(s));
    query_text(s, "PRAGMA journal_mode", "wal");
    query_int(s, "PRAGMA synchronous", 2); /* FULL */
    query_int(s, "PRAGMA foreign_keys", 1);
    query_int(s, "PRAGMA secure_delete", 1);
    query_int(s, "PRAGMA trusted_schema", 0);
    luna_store_close(s);
    path_in_dir(path, sizeof(path), "durable.db");
    assert_int_equal(0, stat(path, &st));
    assert_int_equal(0600, st.st_mode & 0777);
}

static void symlink_and_bad_urls_refused(void **state)
{
    (void)state;
    char target[512];
    char link[512];
    char url[600];
    luna_store *s = NULL;
    path_in_dir(target, sizeof(target), "target.db");
    path_in_dir(link, sizeof(link), "link.db");
    assert_int_equal(0, symlink(target, link));
    (void)snprintf(url, sizeof(url), "sqlite:%s", link);
    assert_luna_err(LUNA_ERR_PERMISSION, luna_store_open(url, NULL, &s));
    assert_null(s);
    assert_int_equal(-1, access(target, F_OK)); /* nothing created through the link */
    (void)snprintf(url, sizeof(url), "sqlite:%s", g_dir); /* a folder */
    assert_int_not_equal(LUNA_OK, luna_store_open(url, NULL, &s));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_open("sqlite:", NULL, &s));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_open("mysql://x/y", NULL, &s));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_open("SQLITE::memory:", NULL, &s));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_open(NULL, NULL, &s));
    assert_null(s);
    luna_store_options o = {.tx_attempts = LUNA_STORE_MAX_TX_ATTEMPTS + 1};
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_open("sqlite::memory:", &o, &s));
    assert_null(s);
}

static void memory_db_and_foreign_keys(void **state)
{
    (void)state;
    luna_store *s = NULL;
    luna_store_param p = luna_store_p_int64(5);
    assert_luna_ok(luna_store_open("sqlite::memory:", NULL, &s));
    assert_luna_ok(luna_store_exec(s, "CREATE TABLE parent (id INTEGER PRIMARY KEY)", NULL, 0, NULL));
    assert_luna_ok(luna_store_exec(
        s, "CREATE TABLE child (pid INTEGER NOT NULL REFERENCES parent (id))", NULL, 0, NULL));
    assert_luna_err(LUNA_ERR_STORAGE,
                    luna_store_exec(s, "INSERT INTO child (pid) VALUES (?1)", &p, 1, NULL));
    assert_string_equal("sqlite: foreign key constraint failed", luna_store_last_error(s));
    assert_luna_ok(luna_store_exec(s, "INSERT INTO parent (id) VALUES (?1)", &p, 1, NULL));
    assert_luna_ok(luna_store_exec(s, "INSERT INTO child (pid) VALUES (?1)", &p, 1, NULL));
    /* Named parameters are refused even where SQLite would accept them. */
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1, :x", &p, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1, $x", &p, 1, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_exec(s, "SELECT ?1; ", &p, 0, NULL));
    assert_luna_ok(luna_store_exec(s, "SELECT ?1; ", &p, 1, NULL));
    luna_store_close(s);
}

static void translate(const char *in, size_t n, const char *want)
{
    char *out = NULL;
    luna_err err = luna_store_translate_placeholders(in, n, &out);
    if (want == NULL) {
        assert_luna_err(LUNA_ERR_INVALID_ARG, err);
        assert_null(out);
        return;
    }
    assert_luna_ok(err);
    assert_string_equal(want, out);
    free(out);
    assert_luna_ok(luna_store_translate_placeholders(in, n, NULL));
}

static void placeholder_translation(void **state)
{
    (void)state;
    translate("SELECT ?1, ?2", 2, "SELECT $1, $2");
    translate("SELECT ?2, ?1, ?2", 2, "SELECT $2, $1, $2");
    translate("SELECT '?1', \"?1\", ?1", 1, "SELECT '?1', \"?1\", $1");
    translate("SELECT 'it''s ?1', ?1", 1, "SELECT 'it''s ?1', $1");
    translate("SELECT E'\\' ?1', ?1", 1, "SELECT E'\\' ?1', $1");
    translate("SELECT $$ ?1 $$, $tag$ ' ?1 $tag$, ?1", 1, "SELECT $$ ?1 $$, $tag$ ' ?1 $tag$, $1");
    translate("SELECT ?1 -- ?2\n", 1, "SELECT $1 -- ?2\n");
    translate("SELECT /* ?2 */ ?1", 1, "SELECT /* ?2 */ $1");
    translate("SELECT x::bigint FROM t WHERE a$b = ?1", 1, "SELECT x::bigint FROM t WHERE a$b = $1");
    translate("SELECT ?10, ?9, ?8, ?7, ?6, ?5, ?4, ?3, ?2, ?1", 10,
              "SELECT $10, $9, $8, $7, $6, $5, $4, $3, $2, $1");
    translate("", 0, "");
    translate("SELECT ?", 1, NULL);
    translate("SELECT ?0", 1, NULL);
    translate("SELECT ?01", 1, NULL);
    translate("SELECT ?2", 2, NULL);   /* ?1 unused */
    translate("SELECT ?3", 2, NULL);   /* out of range */
    translate("SELECT ?1a", 1, NULL);
    translate("SELECT ?1001", 1, NULL);
    translate("SELECT $1", 1, NULL);
    translate("SELECT $x", 0, NULL);
    translate("SELECT :x", 0, NULL);
    translate("SELECT @x", 0, NULL);
    translate("SELECT 'open", 0, NULL);
    translate("SELECT \"open", 0, NULL);
    translate("SELECT $$ open", 0, NULL);
    translate("SELECT /* open", 0, NULL);
    translate("SELECT /* /* nested */ */ 1", 0, NULL);
    translate("SELECT ?99999999999999999999999", 1, NULL);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_store_translate_placeholders(NULL, 0, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_store_translate_placeholders("", LUNA_STORE_MAX_PARAMS + 1, NULL));
}

static void redact(const char *in, const char *want)
{
    char out[256];
    assert_luna_ok(luna_store_redact_url(in, out, sizeof(out)));
    assert_string_equal(want, out);
}

static void url_redaction(void **state)
{
    (void)state;
    char small[24];
    redact("postgresql://app:hunter2@db.example:5432/luna",
           "postgresql://app:***@db.example:5432/luna");
    redact("postgresql://app:p@ss@db/luna", "postgresql://app:***@db/luna");
    redact("postgres://app@db/luna?sslmode=verify-full", "postgres://app@db/luna?sslmode=verify-full");
    redact("postgresql:///luna?host=/run/pg&password=hunter2&user=app",
           "postgresql:///luna?host=/run/pg&password=***&user=app");
    redact("postgresql://db/luna?PASSWORD=hunter2", "postgresql://db/luna?PASSWORD=***");
    redact("host=db password=hunter2 user=app", "host=db password=*** user=app");
    redact("sqlite:/var/lib/luna/iam.db", "sqlite:/var/lib/luna/iam.db");
    /* Truncation would risk half a password: refused, output emptied. */
    memset(small, 'x', sizeof(small));
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_store_redact_url("postgresql://app:hunter2@db/luna", small, sizeof(small)));
    assert_string_equal("", small);
    for (size_t i = 0; i < sizeof(small); i++)
        assert_true(small[i] != 'h');
}

static void rm_dir(void)
{
    static const char *const names[] = {"suite.db", "suite.db-wal", "suite.db-shm",
                                        "durable.db", "durable.db-wal", "durable.db-shm",
                                        "link.db", "target.db"};
    char path[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        (void)snprintf(path, sizeof(path), "%s/%s", g_dir, names[i]);
        (void)unlink(path);
    }
    (void)rmdir(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durable_settings_in_effect),
        cmocka_unit_test(symlink_and_bad_urls_refused),
        cmocka_unit_test(memory_db_and_foreign_keys),
        cmocka_unit_test(placeholder_translation),
        cmocka_unit_test(url_redaction),
    };
    const char *tmp = getenv("TMPDIR");
    char url[512];
    int failed;

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    if ((size_t)snprintf(g_dir, sizeof(g_dir), "%s/luna-store-XXXXXX", tmp) >= sizeof(g_dir) ||
        mkdtemp(g_dir) == NULL) {
        fprintf(stderr, "cannot create a temporary folder\n");
        return 1;
    }
    (void)snprintf(url, sizeof(url), "sqlite:%s/suite.db", g_dir);
    failed = luna_store_suite_run("store_suite_sqlite", url);
    failed += cmocka_run_group_tests_name("store_sqlite", tests, NULL, NULL);
    rm_dir();
    return failed == 0 ? 0 : 1;
}
