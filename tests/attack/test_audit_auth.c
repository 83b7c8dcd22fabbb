/*
 * Who may read the audit log, with tokens shaped exactly like luna-iam's
 * (docs/iam.md "Tokens"; roles from iam/src/iam_rbac.c).  The real
 * luna-audit process runs over mTLS:
 *  - tenant "auditor": its own tenant only, no export;
 *  - "auditor" + "platform-admin": every tenant and the export;
 *  - "platform-admin" alone, "tenant-admin", "operator", no role, the
 *    made-up "platform-auditor": 403 everywhere;
 *  - wrong iss, wrong aud, no aud, no tenant, an anonymous token
 *    ("auth":"anonymous"), an expired token: refused;
 *  - token_issuer / token_audience missing, or both key-set sources
 *    configured: the service does not start;
 *  - IAM rotates its signing key: a new kid in the JWKS file works on the
 *    very next call; a retired key stops working;
 *  - JWKS from IAM (GET /v1/iam/jwks over mTLS, a stand-in server): the
 *    first fetch, a rotation picked up (unknown kid or periodic), and
 *    tokens with made-up kids do not turn into a flood of fetches;
 *  - a checkpoint key file owned by another user: refused at start.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit_test_util.h"
#include "luna_test.h"

static void post(atu_env *e, const char *tenant, const char *rid)
{
    char body[1024];
    atu_entry_json(body, sizeof(body), tenant, rid);
    luna_http_result r;
    assert_int_equal(201, atu_fetch(e, "kms", "POST", "/v1/audit/entries", body, &r));
    luna_http_result_free(&r);
}

static int get(atu_env *e, const char *path, const char *tok)
{
    htu_raw raw;
    return atu_get_bearer(e, "gateway", path, tok, &raw);
}

/* Status of a query and an export with the token made from claims. */
static void expect(atu_env *e, json_t *claims, int query, int export_)
{
    char *tok = atu_sign(e->iam, claims);
    json_decref(claims);
    assert_int_equal(query, get(e, "/v1/audit/entries", tok));
    assert_int_equal(export_, get(e, "/v1/audit/export", tok));
    free(tok);
}

static void test_iam_roles_and_claims(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    atu_start(&e);
    post(&e, "acme", "r-1");
    post(&e, "globex", "r-2");

    /* Tenant auditor: own tenant, never another, never the export. */
    char *ta = atu_token(&e, "acme", "auditor");
    htu_raw raw;
    assert_int_equal(200, atu_get_bearer(&e, "gateway", "/v1/audit/entries", ta, &raw));
    assert_non_null(strstr(htu_raw_body(&raw), "r-1"));
    assert_null(strstr(htu_raw_body(&raw), "r-2"));
    assert_int_equal(403, get(&e, "/v1/audit/entries?tenant=globex", ta));
    assert_int_equal(403, get(&e, "/v1/audit/export", ta));
    free(ta);

    /* Auditor with platform scope: everything, export included. */
    char *tp = atu_token(&e, "acme", ATU_PLATFORM_AUDITOR);
    assert_int_equal(200, atu_get_bearer(&e, "gateway", "/v1/audit/entries", tp, &raw));
    assert_non_null(strstr(htu_raw_body(&raw), "r-1"));
    assert_non_null(strstr(htu_raw_body(&raw), "r-2"));
    assert_int_equal(200, atu_get_bearer(&e, "gateway", "/v1/audit/export", tp, &raw));
    assert_non_null(strstr(htu_raw_body(&raw), "r-2"));
    free(tp);

    /* Deny by default: roles without audit.read read nothing. */
    static const char *const denied[] = {"platform-admin", "tenant-admin", "operator",
                                         "key-admin",      "developer",    "client",
                                         "platform-auditor", "",           "AUDITOR"};
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
        expect(&e, atu_token_claims("acme", denied[i]), 403, 403);
    expect(&e, atu_token_claims("acme", "tenant-admin,platform-admin"), 403, 403);

    /* Claims IAM always sets, bent one at a time. */
    json_t *c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    json_object_set_new(c, "iss", json_string("lunal://svc/other"));
    expect(&e, c, 401, 401);
    c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    json_object_set_new(c, "aud", json_string("lunal-other"));
    expect(&e, c, 401, 401);
    c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    json_object_del(c, "aud");
    expect(&e, c, 401, 401);
    c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    json_object_del(c, "iss");
    expect(&e, c, 401, 401);
    c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    /* A token names one audience: an array, even one naming this
       service, is a token valid somewhere else too (docs/tokens.md). */
    json_object_set_new(c, "aud", json_pack("[s,s]", "x", ATU_AUDIENCE));
    expect(&e, c, 401, 401);
    c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    json_object_set_new(c, "aud", json_string("lunal")); /* the old shared audience */
    expect(&e, c, 401, 401);
    c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    json_object_set_new(c, "aud", json_string(LUNA_AUD_GATEWAY)); /* the gateway's token */
    expect(&e, c, 401, 401);
    c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    json_object_set_new(c, "exp", json_integer((json_int_t)time(NULL) - 3600));
    expect(&e, c, 401, 401);
    c = atu_token_claims("acme", "auditor");
    json_object_set_new(c, "auth", json_string("anonymous"));
    expect(&e, c, 403, 403);
    c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    json_object_del(c, "auth");
    expect(&e, c, 403, 403);
    c = atu_token_claims("acme", ATU_PLATFORM_AUDITOR);
    json_object_del(c, "tenant");
    expect(&e, c, 403, 403);
    c = atu_token_claims("acme", "auditor");
    json_object_set_new(c, "tenant", json_string("ac\nme"));
    expect(&e, c, 403, 403);
    c = atu_token_claims("acme", "auditor");
    json_object_set_new(c, "roles", json_string("auditor")); /* not an array */
    expect(&e, c, 403, 403);

    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

static void test_config_requires_iss_aud_and_one_source(void **state)
{
    (void)state;
    atu_env e;
    /* Replace the generated issuer/audience members by rewriting the file. */
    atu_setup(&e, NULL);
    size_t len = 0;
    uint8_t *raw = luna_test_read_file(e.config_path, &len);
    char *cfg = calloc(1, len + 1);
    assert_non_null(cfg);
    memcpy(cfg, raw, len);
    free(raw);
    static const char *const drop[] = {",\"token_issuer\":\"" ATU_ISSUER "\"",
                                       ",\"token_audience\":\"" ATU_AUDIENCE "\""};
    for (size_t i = 0; i < 2; i++) {
        char *bad = strdup(cfg);
        char *at = strstr(bad, drop[i]);
        assert_non_null(at);
        memmove(at, at + strlen(drop[i]), strlen(at + strlen(drop[i])) + 1);
        FILE *f = fopen(e.config_path, "w");
        assert_non_null(f);
        fputs(bad, f);
        fclose(f);
        free(bad);
        assert_false(atu_try_start(&e));
    }
    /* An audience other than the audit log's own: refused at start. */
    static const char *const foreign[] = {"lunal", LUNA_AUD_GATEWAY, LUNA_AUD_KMS};
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        char *at = strstr(cfg, drop[1]);
        assert_non_null(at);
        FILE *f = fopen(e.config_path, "w");
        assert_non_null(f);
        fprintf(f, "%.*s,\"token_audience\":\"%s\"%s", (int)(at - cfg), cfg, foreign[i],
                at + strlen(drop[1]));
        fclose(f);
        assert_false(atu_try_start(&e));
    }
    free(cfg);
    atu_teardown(&e);

    char both[HTU_PATH_MAX + 64];
    memset(&e, 0, sizeof(e));
    uint16_t port = atu_iam_stub_start(&e);
    snprintf(both, sizeof(both), ",\"iam_jwks\":\"%s\",\"iam\":{\"host\":\"127.0.0.1\",\"port\":%u}",
             e.jwks_path, (unsigned)port);
    atu_setup_src(&e, NULL, both);
    assert_false(atu_try_start(&e));
    assert_true(atu_file_contains(e.log_path, "exactly one", 11));
    atu_teardown(&e);
}

static void test_jwks_file_rotation(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    atu_start(&e);
    post(&e, "acme", "r-1");
    char *t1 = atu_token(&e, "acme", "auditor");
    assert_int_equal(200, get(&e, "/v1/audit/entries", t1));

    /* IAM publishes key 2 next to key 1 and starts signing with it. */
    luna_jws_signer *k2 = NULL;
    assert_luna_ok(luna_jws_signer_generate("iam-00000000000000b2", &k2));
    json_t *c = atu_token_claims("acme", "auditor");
    char *t2 = atu_sign(k2, c);
    json_decref(c);
    assert_int_equal(401, get(&e, "/v1/audit/entries", t2)); /* not published yet */
    luna_jws_signer *both[2] = {e.iam, k2};
    atu_write_jwks(&e, both, 2);
    assert_int_equal(200, get(&e, "/v1/audit/entries", t2)); /* next call, no restart */
    assert_int_equal(200, get(&e, "/v1/audit/entries", t1));
    /* Key 1 retired: its tokens stop working, key 2's keep working. */
    atu_write_jwks(&e, &k2, 1);
    assert_int_equal(401, get(&e, "/v1/audit/entries", t1));
    assert_int_equal(200, get(&e, "/v1/audit/entries", t2));
    /* A broken JWKS file keeps the last good set. */
    FILE *f = fopen(e.jwks_path, "w");
    assert_non_null(f);
    fputs("{\"keys\":[{\"kty\":\"RSA\"}]}", f);
    fclose(f);
    assert_int_equal(200, get(&e, "/v1/audit/entries", t2));
    assert_int_equal(401, get(&e, "/v1/audit/entries", t1));
    free(t1);
    free(t2);
    luna_jws_signer_free(k2);
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

/* Polls until the query answers want (at most timeout_ms); returns the last status. */
static int wait_status(atu_env *e, const char *tok, int want, int timeout_ms)
{
    int st = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        st = get(e, "/v1/audit/entries", tok);
        if (st == want)
            break;
        usleep(100 * 1000);
    }
    return st;
}

static void test_jwks_from_iam(void **state)
{
    (void)state;
    atu_env e;
    memset(&e, 0, sizeof(e));
    uint16_t port = atu_iam_stub_start(&e);
    char src[128];
    snprintf(src, sizeof(src), ",\"iam\":{\"host\":\"127.0.0.1\",\"port\":%u}", (unsigned)port);
    atu_setup_src(&e, ",\"jwks_refresh_sec\":5", src);
    atu_start(&e);
    post(&e, "acme", "r-1");
    char *t1 = atu_token(&e, "acme", "auditor");
    /* The first fetch happens at start; until it lands, 503 (never 200). */
    assert_int_equal(200, wait_status(&e, t1, 200, 10000));
    assert_true(atu_iam_stub_hits(&e) >= 1);

    /* Rotation at IAM: the unknown kid makes the log ask again. */
    luna_jws_signer *k2 = NULL;
    assert_luna_ok(luna_jws_signer_generate("iam-00000000000000b2", &k2));
    json_t *c = atu_token_claims("acme", "auditor");
    char *t2 = atu_sign(k2, c);
    json_decref(c);
    luna_jws_signer *both[2] = {e.iam, k2};
    atu_write_jwks(&e, both, 2);
    assert_int_equal(200, wait_status(&e, t2, 200, 12000));
    assert_int_equal(200, get(&e, "/v1/audit/entries", t1));

    /* Made-up kids: many requests, few fetches (one per 5 s at most,
     * plus the periodic one). */
    luna_jws_signer *rogue = NULL;
    assert_luna_ok(luna_jws_signer_generate("iam-00000000000000ff", &rogue));
    c = atu_token_claims("acme", "auditor");
    char *tr = atu_sign(rogue, c);
    json_decref(c);
    usleep(5200 * 1000); /* past the forced-refresh gap */
    unsigned before = atu_iam_stub_hits(&e);
    time_t t0 = time(NULL);
    for (int i = 0; i < 30; i++) {
        int st = get(&e, "/v1/audit/entries", tr);
        assert_true(st == 401 || st == 503);
    }
    unsigned after = atu_iam_stub_hits(&e);
    /* One forced and one periodic fetch per 5 s of test time, plus the
     * two that may straddle its edges; never one per request. */
    unsigned elapsed = (unsigned)(time(NULL) - t0) + 1;
    assert_true(after - before >= 1);
    assert_true(after - before <= 2 * (elapsed / 5 + 1) + 1);
    assert_true(after - before < 30 / 2);

    /* Key 1 retired at IAM: the periodic refresh drops it. */
    atu_write_jwks(&e, &k2, 1);
    assert_int_equal(401, wait_status(&e, t1, 401, 12000));
    assert_int_equal(200, get(&e, "/v1/audit/entries", t2));

    free(t1);
    free(t2);
    free(tr);
    luna_jws_signer_free(k2);
    luna_jws_signer_free(rogue);
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

static void test_key_file_of_another_user(void **state)
{
    (void)state;
    atu_env e;
    atu_setup(&e, NULL);
    if (geteuid() != 0) {
        atu_teardown(&e);
        skip(); /* only root can give a file away; reported as skipped */
    }
    /* Handed to another uid, mode still 0600: refused. */
    assert_int_equal(0, chown(e.key_path, 1, (gid_t)-1));
    assert_false(atu_try_start(&e));
    assert_true(atu_file_contains(e.log_path, "checkpoint key", 14));
    /* Owned by us again: it starts. */
    assert_int_equal(0, chown(e.key_path, geteuid(), (gid_t)-1));
    atu_start(&e);
    assert_int_equal(0, atu_stop(&e, SIGTERM));
    atu_teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iam_roles_and_claims),
        cmocka_unit_test(test_config_requires_iss_aud_and_one_source),
        cmocka_unit_test(test_jwks_file_rotation),
        cmocka_unit_test(test_jwks_from_iam),
        cmocka_unit_test(test_key_file_of_another_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
