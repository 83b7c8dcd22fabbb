/*
 * e2e.store_pg: the shared store suite against a real PostgreSQL server
 * (started by tests/support/pg_server.sh, which sets LUNA_TEST_PG_URL),
 * then what only PostgreSQL has: connection failure mapping, passwords
 * kept out of diagnostics, the wider integer/text types.  Without the URL
 * the test FAILS: this suite is required, never skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/store.h"
#include "luna_test.h"
#include "store_suite.h"

static const char *g_url;

static void connection_failure_is_unavailable(void **state)
{
    (void)state;
    luna_store *s = NULL;
    luna_store_options o = {.busy_timeout_ms = 2000};
    luna_err err = luna_store_open(
        "postgresql:///postgres?host=/nonexistent-luna-pg&user=lunal_test&password=hunter2-secret",
        &o, &s);
    assert_luna_err(LUNA_ERR_UNAVAILABLE, err);
    assert_null(s);
    /* A handle that fails to open is freed; nothing to inspect, which is
     * also why no diagnostic can leak the password. */
}

static void password_never_in_diagnostics(void **state)
{
    (void)state;
    char url[1024];
    luna_store *s = NULL;
    luna_store_param p = luna_store_p_text("hunter2-secret");
    /* Trust authentication ignores the password, so the URL still works. */
    int n = snprintf(url, sizeof(url), "%s&password=hunter2-secret", g_url);
    assert_true(n > 0 && (size_t)n < sizeof(url));
    assert_luna_ok(luna_store_open(url, NULL, &s));
    assert_int_equal(LUNA_STORE_POSTGRES, luna_store_get_kind(s));
    /* A value the server would quote in its message ("invalid input
     * syntax for type bigint: ..."). */
    assert_luna_err(LUNA_ERR_STORAGE, luna_store_exec(s, "SELECT ?1::bigint", &p, 1, NULL));
    assert_string_equal("postgres: SQLSTATE 22P02", luna_store_last_error(s));
    assert_null(strstr(luna_store_last_error(s), "hunter2"));
    luna_store_close(s);
}

static void wider_types(void **state)
{
    (void)state;
    luna_store *s = NULL;
    luna_store_rows *r = NULL;
    bool has = false;
    int64_t v = 0;
    const char *t = NULL;
    size_t len = 0;
    assert_luna_ok(luna_store_open(g_url, NULL, &s));
    assert_luna_ok(luna_store_query(s,
                                    "SELECT (-5)::int4, (-7)::int2, true, 'vc'::varchar, "
                                    "'ch'::char(3), 1.5::numeric, now()",
                                    NULL, 0, &r));
    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_int64(r, 0, &v));
    assert_int_equal(-5, v);
    assert_luna_ok(luna_store_col_int64(r, 1, &v));
    assert_int_equal(-7, v);
    assert_luna_ok(luna_store_col_int64(r, 2, &v));
    assert_int_equal(1, v);
    assert_luna_ok(luna_store_col_text(r, 3, &t, &len));
    assert_string_equal("vc", t);
    assert_luna_ok(luna_store_col_text(r, 4, &t, &len));
    assert_string_equal("ch ", t);
    assert_luna_err(LUNA_ERR_FORMAT, luna_store_col_int64(r, 5, &v));
    assert_luna_err(LUNA_ERR_FORMAT, luna_store_col_text(r, 6, &t, &len));
    luna_store_rows_free(r);

    /* A text parameter fits a column of another type by inference. */
    luna_store_param ts = luna_store_p_text("2024-01-02 03:04:05+00");
    assert_luna_ok(luna_store_query(s, "SELECT extract(year FROM ?1::timestamptz)::bigint", &ts, 1,
                                    &r));
    assert_luna_ok(luna_store_rows_next(r, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_int64(r, 0, &v));
    assert_int_equal(2024, v);
    luna_store_rows_free(r);
    luna_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connection_failure_is_unavailable),
        cmocka_unit_test(password_never_in_diagnostics),
        cmocka_unit_test(wider_types),
    };
    int failed;

    g_url = getenv("LUNA_TEST_PG_URL");
    if (g_url == NULL || g_url[0] == '\0') {
        fprintf(stderr, "store_pg: FAILED: LUNA_TEST_PG_URL is not set; run this test through "
                        "tests/support/pg_server.sh (ctest -R e2e.store_pg does)\n");
        return 1;
    }
    failed = luna_store_suite_run("store_suite_postgres", g_url);
    failed += cmocka_run_group_tests_name("store_pg", tests, NULL, NULL);
    return failed == 0 ? 0 : 1;
}
