/*
 * test_gateway_relay_parse.c - the relay's parsers of untrusted text
 * (gateway/src/gw_relay_parse.c): path cleaning (traversal, encodings,
 * empty and overlong segments), pattern matching with id captures, and the
 * query allow-list (unknown, repeated, malformed, overlong), plus the
 * re-encoding that is all a downstream ever sees.
 */
#include <string.h>

#include "gw_relay.h"
#include "luna_test.h"

static void test_path_clean(void **state)
{
    (void)state;
    static const char *const good[] = {"/v1/tees", "/v1/tees/t-1/quarantine",
                                       "/v1/keys/a.b_c/rotate", "/v1/audit/proof/inclusion"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_luna_ok(gw_relay_path_clean(good[i]));
    static const char *const bad[] = {
        "",           "/",          "/v1",         "/v1/",          "/v2/tees",
        "v1/tees",    "/v1/tees/",  "/v1//tees",   "/v1/tees/../x", "/v1/tees/./x",
        "/v1/..",     "/v1/a%2Fb",  "/v1/a%2e%2e", "/v1/a b",       "/v1/a?b",
        "/v1/a\\b",   "/v1/a+b",    "/v1/a;b",     "/v1/tees/\x01", "/v1/t\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gw_relay_path_clean(bad[i]) == LUNA_OK)
            fail_msg("accepted %s", bad[i]);
    /* Overlong: a 65-character segment, a path over the cap, too many segments. */
    char p[600];
    strcpy(p, "/v1/keys/");
    memset(p + strlen(p), 'a', 65);
    p[9 + 65] = '\0';
    assert_int_equal(LUNA_ERR_TOO_LARGE, gw_relay_path_clean(p));
    p[9 + 64] = '\0';
    assert_luna_ok(gw_relay_path_clean(p));
    strcpy(p, "/v1");
    for (int i = 0; i < 8; i++)
        strcat(p, "/a");
    assert_int_equal(LUNA_ERR_TOO_LARGE, gw_relay_path_clean(p));
    memset(p, 'a', sizeof(p) - 1);
    p[sizeof(p) - 1] = '\0';
    memcpy(p, "/v1/", 4);
    assert_int_equal(LUNA_ERR_TOO_LARGE, gw_relay_path_clean(p));
    assert_int_equal(LUNA_ERR_FORMAT, gw_relay_path_clean(NULL));
}

static void test_path_match(void **state)
{
    (void)state;
    char ids[GW_RELAY_IDS_MAX][GW_ID_MAX + 1];
    size_t n = 9;
    assert_luna_ok(gw_relay_path_match("/v1/tees", "/v1/tees", ids, &n));
    assert_int_equal(0, n);
    assert_luna_ok(gw_relay_path_match("/v1/tees/{}/quarantine", "/v1/tees/tee-1/quarantine",
                                       ids, &n));
    assert_int_equal(1, n);
    assert_string_equal("tee-1", ids[0]);
    assert_luna_ok(gw_relay_path_match("/v1/a/{}/b/{}", "/v1/a/x/b/y", ids, &n));
    assert_int_equal(2, n);
    assert_string_equal("y", ids[1]);
    static const char *const miss[][2] = {
        {"/v1/tees", "/v1/tees/x"},
        {"/v1/tees/{}/quarantine", "/v1/tees/x"},
        {"/v1/tees/{}/quarantine", "/v1/tees/x/quarantin"},
        {"/v1/tees/{}/quarantine", "/v1/tees/x/quarantine/y"},
        {"/v1/tees/{}/quarantine", "/v1/tees/../quarantine"},
        {"/v1/tees/{}/quarantine", "/v1/tees//quarantine"},
        {"/v1/tees", "/v1/tee"},
        {"/v1/tees", "/v1/teesx"},
    };
    for (size_t i = 0; i < sizeof(miss) / sizeof(miss[0]); i++)
        if (gw_relay_path_match(miss[i][0], miss[i][1], ids, &n) != LUNA_ERR_NOT_FOUND)
            fail_msg("%s matched %s", miss[i][0], miss[i][1]);
}

static const gw_qspec spec[] = {{"tee_id", GW_Q_IDENT}, {"limit", GW_Q_UINT}};

static void test_query(void **state)
{
    (void)state;
    gw_query q;
    char out[128];
    assert_luna_ok(gw_query_parse(NULL, spec, 2, &q));
    assert_int_equal(0, q.n);
    assert_luna_ok(gw_query_parse("", spec, 2, &q));
    assert_luna_ok(gw_query_parse("limit=10&tee_id=tee-1", spec, 2, &q));
    assert_int_equal(2, q.n);
    assert_string_equal("tee-1", gw_query_get(&q, "tee_id"));
    assert_string_equal("10", gw_query_get(&q, "limit"));
    assert_null(gw_query_get(&q, "other"));
    assert_luna_ok(gw_query_format(&q, out, sizeof(out)));
    assert_string_equal("limit=10&tee_id=tee-1", out);
    assert_int_equal(LUNA_ERR_TOO_LARGE, gw_query_format(&q, out, 10));

    assert_int_equal(LUNA_ERR_NOT_FOUND, gw_query_parse("tenant=acme", spec, 2, &q));
    assert_int_equal(LUNA_ERR_NOT_FOUND, gw_query_parse("limit=1&x=1", spec, 2, &q));
    static const char *const bad[] = {
        "limit=1&limit=2", "limit=",       "limit",         "limit=-1",     "limit=1.5",
        "limit=+1",        "tee_id=..",    "tee_id=.",      "tee_id=a%2Fb", "tee_id=a/b",
        "tee_id=a+b",      "limit=1&",     "&limit=1",      "=1",           "limit=1;x=2",
        "limit=12345678901234567890",      "tee_id=a=b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gw_query_parse(bad[i], spec, 2, &q) != LUNA_ERR_FORMAT)
            fail_msg("accepted or misjudged %s", bad[i]);
    char longq[700];
    memset(longq, 0, sizeof(longq));
    strcpy(longq, "tee_id=");
    memset(longq + 7, 'a', 600);
    assert_int_equal(LUNA_ERR_TOO_LARGE, gw_query_parse(longq, spec, 2, &q));
    /* A 65-character id is refused even under the total cap. */
    memset(longq, 0, sizeof(longq));
    strcpy(longq, "tee_id=");
    memset(longq + 7, 'a', 65);
    assert_int_equal(LUNA_ERR_FORMAT, gw_query_parse(longq, spec, 2, &q));
    /* No allow-list: every parameter is unknown. */
    assert_int_equal(LUNA_ERR_NOT_FOUND, gw_query_parse("limit=1", NULL, 0, &q));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_clean),
        cmocka_unit_test(test_path_match),
        cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
