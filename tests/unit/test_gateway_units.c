/*
 * test_gateway_units.c - the gateway's pure parts: Authorization and
 * Idempotency-Key parsing, token buckets (refill, Retry-After, no reset by
 * name churn), and the idempotency cache (replay, conflict, in progress,
 * failures not kept, expiry).
 */
#include <string.h>

#include "gw.h"
#include "luna_test.h"

static void test_authorization(void **state)
{
    (void)state;
    gw_auth_kind k;
    const char *c;
    size_t n;
    assert_luna_ok(gw_parse_authorization(NULL, &k, &c, &n));
    assert_int_equal(GW_AUTH_NONE, k);
    assert_luna_ok(gw_parse_authorization("Bearer abc.def-_g", &k, &c, &n));
    assert_int_equal(GW_AUTH_BEARER, k);
    assert_int_equal(10, n);
    assert_luna_ok(gw_parse_authorization("bearer x", &k, &c, &n));
    assert_luna_ok(gw_parse_authorization("ApiKey lak_12.x\"y", &k, &c, &n));
    assert_int_equal(GW_AUTH_APIKEY, k);
    assert_string_equal("lak_12.x\"y", c);
    const char *bad[] = {"Bearer", "Bearer ", "Bearer  x", "Bearer a b", "Bearer a\tb",
                         "Basic YTpi", "ApiKey a b", "ApiKey ", "Bearerx y", "Bearer a+b", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_luna_err(LUNA_ERR_FORMAT, gw_parse_authorization(bad[i], &k, &c, &n));
        assert_int_equal(GW_AUTH_NONE, k);
    }
    char big[GW_APIKEY_MAX + 16];
    memcpy(big, "ApiKey ", 7);
    memset(big + 7, 'a', GW_APIKEY_MAX + 1);
    big[7 + GW_APIKEY_MAX + 1] = '\0';
    assert_luna_err(LUNA_ERR_FORMAT, gw_parse_authorization(big, &k, &c, &n));
    big[7 + GW_APIKEY_MAX] = '\0';
    assert_luna_ok(gw_parse_authorization(big, &k, &c, &n));
}

static void test_idempotency_key_and_ids(void **state)
{
    (void)state;
    char out[GW_IDEM_KEY_MAX + 1];
    assert_luna_err(LUNA_ERR_NOT_FOUND, gw_parse_idempotency_key(NULL, out));
    assert_luna_ok(gw_parse_idempotency_key("req:1.a-b_c", out));
    assert_string_equal("req:1.a-b_c", out);
    assert_luna_err(LUNA_ERR_FORMAT, gw_parse_idempotency_key("", out));
    assert_luna_err(LUNA_ERR_FORMAT, gw_parse_idempotency_key("a b", out));
    assert_luna_err(LUNA_ERR_FORMAT, gw_parse_idempotency_key("a\r\nX: y", out));
    char big[GW_IDEM_KEY_MAX + 2];
    memset(big, 'k', GW_IDEM_KEY_MAX + 1);
    big[GW_IDEM_KEY_MAX + 1] = '\0';
    assert_luna_err(LUNA_ERR_FORMAT, gw_parse_idempotency_key(big, out));
    assert_true(gw_ident_ok("t1", GW_ID_MAX));
    assert_false(gw_ident_ok("t/1", GW_ID_MAX));
    assert_false(gw_ident_ok("", GW_ID_MAX));
    assert_false(gw_ident_ok(NULL, GW_ID_MAX));
    assert_false(gw_ident_ok("abc", 2));
}

static void test_token_bucket(void **state)
{
    (void)state;
    gw_ratelimit rl;
    assert_luna_ok(gw_rl_init(&rl, 4, 2.0, 3.0));
    unsigned after = 0;
    for (int i = 0; i < 3; i++)
        assert_true(gw_rl_take(&rl, "a", 100.0, &after));
    assert_false(gw_rl_take(&rl, "a", 100.0, &after));
    assert_int_equal(1, after);
    assert_true(gw_rl_take(&rl, "a", 100.6, &after)); /* 1.2 tokens refilled */
    assert_false(gw_rl_take(&rl, "a", 100.6, &after));
    /* another name has its own bucket */
    assert_true(gw_rl_take(&rl, "b", 100.6, &after));
    /* churn: the table is full of busy buckets; "a" is never forgotten */
    assert_true(gw_rl_take(&rl, "c", 100.6, &after));
    assert_true(gw_rl_take(&rl, "d", 100.6, &after));
    assert_false(gw_rl_take(&rl, "e", 100.6, &after)); /* no idle bucket to evict */
    assert_false(gw_rl_take(&rl, "a", 100.6, &after));
    gw_rl_free(&rl);
    /* slow refill: Retry-After counts whole seconds */
    assert_luna_ok(gw_rl_init(&rl, 2, 0.1, 1.0));
    assert_true(gw_rl_take(&rl, "x", 0.0, &after));
    assert_false(gw_rl_take(&rl, "x", 0.0, &after));
    assert_int_equal(10, after);
    gw_rl_free(&rl);
    assert_luna_err(LUNA_ERR_INVALID_ARG, gw_rl_init(&rl, 0, 1.0, 1.0));
}

static void test_idempotency_cache(void **state)
{
    (void)state;
    gw_idem t;
    assert_luna_ok(gw_idem_init(&t, 2, 60.0, 16));
    uint8_t h1[LUNA_SHA256_LEN], h2[LUNA_SHA256_LEN];
    memset(h1, 1, sizeof(h1));
    memset(h2, 2, sizeof(h2));
    const gw_idem_entry *e = NULL;
    assert_int_equal(GW_IDEM_NEW, gw_idem_begin(&t, "acme/k1", h1, 0.0, &e));
    assert_int_equal(GW_IDEM_IN_PROGRESS, gw_idem_begin(&t, "acme/k1", h1, 0.0, &e));
    assert_int_equal(GW_IDEM_CONFLICT, gw_idem_begin(&t, "acme/k1", h2, 0.0, &e));
    gw_idem_finish(&t, "acme/k1", 200, (const uint8_t *)"result", 6, 1.0);
    assert_int_equal(GW_IDEM_REPLAY, gw_idem_begin(&t, "acme/k1", h1, 2.0, &e));
    assert_non_null(e);
    assert_int_equal(200, e->status);
    assert_memory_equal("result", e->resp, 6);
    assert_int_equal(GW_IDEM_CONFLICT, gw_idem_begin(&t, "acme/k1", h2, 2.0, &e));
    /* same key, another tenant: independent */
    assert_int_equal(GW_IDEM_NEW, gw_idem_begin(&t, "beta/k1", h2, 2.0, &e));
    /* a failure is not kept: the retry with a new body is a new request */
    gw_idem_finish(&t, "beta/k1", 503, NULL, 0, 2.0);
    assert_int_equal(GW_IDEM_NEW, gw_idem_begin(&t, "beta/k1", h1, 2.0, &e));
    /* full of live entries */
    assert_int_equal(GW_IDEM_FULL, gw_idem_begin(&t, "acme/k3", h1, 2.0, &e));
    /* an answer over the cap is not kept */
    gw_idem_finish(&t, "beta/k1", 200, (const uint8_t *)"01234567890123456789", 20, 2.0);
    assert_int_equal(GW_IDEM_NEW, gw_idem_begin(&t, "beta/k1", h1, 3.0, &e));
    /* expiry */
    assert_int_equal(GW_IDEM_NEW, gw_idem_begin(&t, "acme/k1", h2, 1000.0, &e));
    gw_idem_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authorization),
        cmocka_unit_test(test_idempotency_key_and_ids),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_idempotency_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
