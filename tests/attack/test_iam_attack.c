/*
 * test_iam_attack.c - attacks on a running luna-iam: tenant A's admin
 * reaching for tenant B (every admin route, both directions), API keys
 * searched for in the SQLite files (main, -wal, -shm) in raw, hex and
 * base64 forms after proving the search finds a planted marker, and a
 * corpus of malformed bodies that must each get a 4xx JSON error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam_harness.h"
#include "luna/bytes.h"
#include "luna_test.h"

static iamh H;
static int server_exit = -1;
static char beta_key[128];

static int setup(void **state)
{
    (void)state;
    iamh_start(&H, 60, 300);
    char *t = iamh_token(&H, "acme", H.admin_key);
    assert_non_null(t);
    iamh_resp r;
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants", t,
              "{\"tenant_id\":\"beta\",\"display_name\":\"Beta\"}", &r);
    assert_int_equal(201, r.status);
    snprintf(beta_key, sizeof(beta_key), "%s",
             json_string_value(json_object_get(r.body, "api_key")));
    iamh_resp_free(&r);
    /* A second creation of the same tenant is a conflict. */
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants", t, "{\"tenant_id\":\"beta\"}", &r);
    assert_int_equal(409, r.status);
    iamh_resp_free(&r);
    free(t);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    server_exit = iamh_stop(&H);
    return 0;
}

static void test_cross_tenant(void **state)
{
    (void)state;
    char *ta = iamh_token(&H, "acme", H.admin_key);
    char *tb = iamh_token(&H, "beta", beta_key);
    assert_non_null(ta);
    assert_non_null(tb);
    iamh_resp r;
    /* beta's admin works in beta. */
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/beta/principals", tb,
              "{\"principal_id\":\"bob\",\"kind\":\"user\",\"roles\":[\"auditor\"]}", &r);
    assert_int_equal(201, r.status);
    iamh_resp_free(&r);
    static const struct {
        const char *method, *path, *body;
    } calls[] = {
        {"GET", "", NULL},
        {"PUT", "/anonymous", "{\"allowed\":true}"},
        {"GET", "/principals", NULL},
        {"POST", "/principals", "{\"principal_id\":\"mallory\",\"kind\":\"user\"}"},
        {"GET", "/principals/admin", NULL},
        {"DELETE", "/principals/admin", NULL},
        {"PUT", "/principals/admin/roles", "{\"roles\":[]}"},
        {"POST", "/principals/admin/api-keys", NULL},
        {"GET", "/principals/admin/api-keys", NULL},
        {"DELETE", "/principals/admin/api-keys/0123456789abcdef", NULL},
        {"POST", "/principals/admin/client-keys", NULL},
        {"GET", "/principals/admin/client-keys", NULL},
    };
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        char path[256];
        /* acme's admin (also platform admin) against beta, and back. */
        snprintf(path, sizeof(path), "/v1/iam/tenants/beta%s", calls[i].path);
        iamh_call(&H, "gateway", calls[i].method, path, ta, calls[i].body, &r);
        assert_int_equal(403, r.status);
        assert_string_equal("cross_tenant", iamh_err_code(&r));
        iamh_resp_free(&r);
        snprintf(path, sizeof(path), "/v1/iam/tenants/acme%s", calls[i].path);
        iamh_call(&H, "gateway", calls[i].method, path, tb, calls[i].body, &r);
        assert_int_equal(403, r.status);
        assert_string_equal("cross_tenant", iamh_err_code(&r));
        iamh_resp_free(&r);
    }
    /* Nothing changed in beta: mallory does not exist, anonymous still closed. */
    iamh_call(&H, "gateway", "GET", "/v1/iam/tenants/beta/principals", tb, NULL, &r);
    assert_int_equal(200, r.status);
    assert_null(strstr(r.raw, "mallory"));
    iamh_resp_free(&r);
    assert_null(iamh_token(&H, "beta", NULL));
    /* beta's key does not open acme, acme's key does not open beta. */
    assert_null(iamh_token(&H, "acme", beta_key));
    assert_null(iamh_token(&H, "beta", H.admin_key));
    free(ta);
    free(tb);
}

/* Reads every SQLite file of the database (main, -wal, -shm, -journal). */
static bool db_contains(const char *needle)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    size_t nl = strlen(needle);
    for (size_t i = 0; i < 4; i++) {
        char path[HTU_PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s%s", H.db, suffix[i]);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        fclose(f);
        size_t len = 0;
        uint8_t *data = luna_test_read_file(path, &len);
        bool found = false;
        for (size_t o = 0; !found && len >= nl && o <= len - nl; o++)
            found = memcmp(data + o, needle, nl) == 0;
        free(data);
        if (found)
            return true;
    }
    return false;
}

static void test_keys_not_stored(void **state)
{
    (void)state;
    char *t = iamh_token(&H, "acme", H.admin_key);
    iamh_resp r;
    /* The marker goes in through the API: the search must find it. */
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals", t,
              "{\"principal_id\":\"marker\",\"kind\":\"service\","
              "\"display_name\":\"PLANTED-MARKER-5e1d\"}",
              &r);
    assert_int_equal(201, r.status);
    iamh_resp_free(&r);
    char keys[4][128];
    snprintf(keys[0], sizeof(keys[0]), "%s", H.admin_key);
    snprintf(keys[1], sizeof(keys[1]), "%s", beta_key);
    for (int i = 2; i < 4; i++) {
        iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals/marker/api-keys", t,
                  NULL, &r);
        assert_int_equal(201, r.status);
        snprintf(keys[i], sizeof(keys[i]), "%s",
                 json_string_value(json_object_get(r.body, "api_key")));
        iamh_resp_free(&r);
        /* Used once, so last_used_at is written too. */
        char *u = iamh_token(&H, "acme", keys[i]);
        assert_non_null(u);
        free(u);
    }
    assert_true(db_contains("PLANTED-MARKER-5e1d"));
    for (int i = 0; i < 4; i++) {
        const char *secret = keys[i] + 21;
        uint8_t raw[32];
        size_t n = 0;
        char hex[65], b64std[64];
        assert_luna_ok(luna_b64url_decode(secret, 43, raw, sizeof(raw), &n));
        assert_int_equal(32, (int)n);
        assert_luna_ok(luna_hex_encode(raw, 32, hex, sizeof(hex)));
        /* Standard base64 of the secret bytes: the url alphabet swapped back. */
        snprintf(b64std, sizeof(b64std), "%s", secret);
        for (char *c = b64std; *c != '\0'; c++)
            *c = *c == '-' ? '+' : (*c == '_' ? '/' : *c);
        assert_false(db_contains(keys[i]));
        assert_false(db_contains(secret));
        assert_false(db_contains(hex));
        assert_false(db_contains(b64std));
        /* The raw bytes too (first 16 are plenty for a match). */
        char rawz[17];
        memcpy(rawz, raw, 16);
        rawz[16] = '\0';
        if (strlen(rawz) == 16)
            assert_false(db_contains(rawz));
    }
    free(t);
}

static void test_malformed_bodies(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"tenant_id\":\"acme\",\"tenant_id\":\"beta\"}",       /* duplicate key */
        "{\"tenant_id\":\"acme\",\"extra\":1}",                    /* unknown field */
        "{\"tenant_id\":42}",                                      /* wrong type */
        "{\"tenant_id\":null}",                                    /* null */
        "{}",                                                      /* missing field */
        "[\"acme\"]",                                              /* not an object */
        "{\"tenant_id\":\"acme\"",                                 /* truncated */
        "{\"tenant_id\":\"ACME\"}",                                /* not an id */
        "{\"tenant_id\":\"ac\\u0000me\"}",                         /* NUL */
        "{\"tenant_id\":\"\xff\xfe\"}",                            /* invalid UTF-8 */
        "{\"tenant_id\":\"acme\",\"api_key\":\"a\\nb\"}",          /* control char */
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        iamh_resp r;
        iamh_call(&H, "gateway", "POST", "/v1/iam/authenticate", NULL, bad[i], &r);
        if (r.status != 400 && r.status != 413)
            fail_msg("body %zu: status %d", i, r.status);
        assert_non_null(r.body);
        assert_true(strlen(iamh_err_code(&r)) > 0);
        assert_null(json_object_get(r.body, "token"));
        iamh_resp_free(&r);
    }
    /* Same for the admin API and authorize. */
    char *t = iamh_token(&H, "acme", H.admin_key);
    iamh_resp r;
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals", t,
              "{\"principal_id\":\"x\",\"kind\":\"root\"}", &r);
    assert_int_equal(400, r.status);
    assert_string_equal("kind", json_string_value(json_object_get(
                                    json_object_get(r.body, "error"), "field")));
    iamh_resp_free(&r);
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals", t,
              "{\"principal_id\":\"x\",\"kind\":\"user\",\"roles\":[\"client\",\"client\"]}", &r);
    assert_int_equal(400, r.status);
    iamh_resp_free(&r);
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals/admin/api-keys", t,
              "{\"expires_in_sec\":-5}", &r);
    assert_int_equal(400, r.status);
    iamh_resp_free(&r);
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals/admin/api-keys", t,
              "{\"expires_in_sec\":999999999}", &r);
    assert_int_equal(400, r.status);
    iamh_resp_free(&r);
    iamh_call(&H, "kms", "POST", "/v1/iam/authorize", NULL,
              "{\"tenant_id\":\"acme\",\"principal_id\":\"admin\"}", &r);
    assert_int_equal(400, r.status);
    iamh_resp_free(&r);
    /* Malformed admin paths are refused (404, or 400 by the HTTP layer). */
    static const char *const paths[] = {"/v1/iam/tenants/acme/", "/v1/iam/tenants/acme//x",
                                        "/v1/iam/tenants/ACME", "/v1/iam/tenants/acme/%2e%2e",
                                        "/v1/iam/tenants/acme/principals/admin/api-keys/a/b/c"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        iamh_call(&H, "gateway", "GET", paths[i], t, NULL, &r);
        if (r.status != 404 && r.status != 400)
            fail_msg("path %zu: status %d", i, r.status);
        iamh_resp_free(&r);
    }
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_tenant),
        cmocka_unit_test(test_keys_not_stored),
        cmocka_unit_test(test_malformed_bodies),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    if (server_exit != 0) {
        fprintf(stderr, "luna-iam exited with %d after SIGTERM\n", server_exit);
        return 1;
    }
    return failed;
}
