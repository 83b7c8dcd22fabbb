/*
 * attack.token_audience: a token is good at the one service it was minted
 * for (security review M2).  Real processes: luna-iam and luna-gateway
 * (gateway/test/gw_harness.h), luna-kms with its HSM child
 * (kms_harness.h) and luna-audit (audit_test_util.h).  The KMS and the
 * audit log trust IAM's published key set, plus a test signer so that
 * tokens IAM no longer mints (aud "lunal", an audience list) can be
 * offered too.
 *
 * Shows: the gateway token replayed by a relaying gateway is refused by
 * the KMS, IAM's admin API and the audit log (401, JSON error); a KMS
 * token is refused by IAM's admin API, the audit log and the gateway
 * itself; aud "lunal" and an audience list are refused; a service
 * configured with a foreign audience does not start; and each
 * downstream token works at its own service.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit_test_util.h"
#include "gw_harness.h"
#include "iam_harness.h"
#include "kms_harness.h"
#include "luna/audience.h"
#include "luna/jws.h"
#include "luna_test.h"

#define TOKEN_TTL 300

static gwh G;
static kmsh K;
static atu_env A;
static kmsh_tee T;

typedef struct tokens {
    char *gw;
    json_t *down; /* IAM's "downstream" object, as the gateway relayed it */
} tokens;

/* POST /v1/auth/token through the gateway, as the SDK does. */
static void get_tokens(const char *api_key, tokens *out)
{
    char hdr[512];
    const char *body = "{\"tenant_id\":\"acme\"}";
    snprintf(hdr, sizeof(hdr), "Authorization: ApiKey %s\r\n", api_key);
    gwh_resp r;
    gwh_call(&G, "POST", "/v1/auth/token", hdr, "application/json", body, strlen(body), &r);
    assert_int_equal(200, r.status);
    const char *gw = json_string_value(json_object_get(r.body, "token"));
    assert_non_null(gw);
    out->gw = strdup(gw);
    out->down = json_deep_copy(json_object_get(r.body, "downstream"));
    assert_true(json_is_object(out->down));
    gwh_resp_free(&r);
}

static const char *down(const tokens *t, const char *svc)
{
    return json_string_value(json_object_get(t->down, svc));
}

static void tokens_free(tokens *t)
{
    free(t->gw);
    json_decref(t->down);
}

/* Writes IAM's published keys plus extra's to path. */
static void write_keys(const char *path, luna_jws_signer *extra)
{
    char *doc = iamh_jwks(&G.iam);
    luna_jws_keyset *ks = NULL;
    assert_luna_ok(luna_jws_keyset_load(doc, strlen(doc), &ks));
    free(doc);
    assert_luna_ok(luna_jws_signer_publish(extra, ks));
    char *out = NULL;
    size_t len = 0;
    assert_luna_ok(luna_jws_keyset_export(ks, &out, &len));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(len, fwrite(out, 1, len, f));
    assert_int_equal(0, fclose(f));
    free(out);
    luna_jws_keyset_free(ks);
}

/* A token shaped like IAM's for principal app1 of acme, signed by s. */
static char *forge(luna_jws_signer *s, json_t *aud, const char *roles)
{
    int64_t now = (int64_t)time(NULL);
    json_t *c = json_pack("{s:s,s:o,s:s,s:s,s:s,s:s,s:[s],s:s,s:s,s:I,s:I,s:I,s:s}", "iss",
                          "lunal://svc/iam", "aud", aud, "sub", "acme/app1", "tenant", "acme",
                          "principal", "app1", "kind", "client", "roles", roles, "auth",
                          "api_key", "api_key_id", "0123456789abcdef", "iat", (json_int_t)now,
                          "nbf", (json_int_t)now, "exp", (json_int_t)(now + 300), "jti",
                          "forged-1");
    assert_non_null(c);
    char *tok = NULL;
    assert_luna_ok(luna_jws_sign(s, c, &tok, NULL));
    json_decref(c);
    return tok;
}

static int kms_otk(const char *tok, const char *rid, kmsh_resp *r)
{
    uint8_t cpk[32], csk[32], sealed[80];
    char otk[64];
    assert_luna_ok(luna_x25519_keygen(csk, cpk));
    return kmsh_issue(&K, tok, T.id, "summarize", rid, cpk, otk, sealed, r);
}

/* A refusal by the KMS: 401 with a JSON error code. */
static void kms_refuses(const char *tok, const char *rid)
{
    kmsh_resp r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(401, kms_otk(tok, rid, &r));
    assert_true(r.code[0] != '\0');
    kmsh_resp_free(&r);
}

/* IAM's admin API: status of GET /v1/iam/tenants/acme with tok. */
static int iam_admin(const char *tok, bool want_json_error)
{
    iamh_resp r;
    iamh_call(&G.iam, "gateway", "GET", "/v1/iam/tenants/acme", tok, NULL, &r);
    int st = r.status;
    if (want_json_error)
        assert_true(iamh_err_code(&r)[0] != '\0');
    iamh_resp_free(&r);
    return st;
}

/* The audit log: status of GET /v1/audit/entries with tok (JSON error when refused). */
static int audit_read(const char *tok)
{
    htu_raw raw;
    int st = atu_get_bearer(&A, "gateway", "/v1/audit/entries", tok, &raw);
    if (st >= 400) {
        const char *b = htu_raw_body(&raw);
        assert_non_null(b);
        json_t *j = json_loads(b, 0, NULL);
        assert_non_null(json_string_value(
            json_object_get(json_object_get(j, "error"), "code")));
        json_decref(j);
    }
    return st;
}

static int setup(void **state)
{
    (void)state;
    gwh_start(&G, TOKEN_TTL);
    char path[HTU_PATH_MAX];
    kmsh_setup(&K, NULL);
    htu_path(&K.env, "iam", ".jwks", path, sizeof(path));
    write_keys(path, K.iam);
    kmsh_start(&K);
    kmsh_tee_new(&K, "tee-1", &T);
    kmsh_admit(&K, &T, "[\"acme\"]");
    atu_setup(&A, NULL);
    write_keys(A.jwks_path, A.iam);
    atu_start(&A);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    (void)atu_stop(&A, SIGTERM);
    atu_teardown(&A);
    (void)kmsh_stop(&K, SIGTERM);
    kmsh_teardown(&K);
    gwh_stop(&G);
    return 0;
}

static void test_downstream_table(void **state)
{
    (void)state;
    char *kc = gwh_principal(&G, "app1", "client", "client");
    char *ka = gwh_principal(&G, "aud1", "user", "auditor");
    tokens c, a, adm;
    get_tokens(kc, &c);
    get_tokens(ka, &a);
    get_tokens(G.iam.admin_key, &adm);
    /* docs/iam.md: a client gets kms + attestation, an auditor audit (and
       what its tees.read / attestation.read need), a tenant admin iam. */
    assert_non_null(down(&c, "kms"));
    assert_non_null(down(&c, "attestation"));
    assert_null(down(&c, "audit"));
    assert_null(down(&c, "iam"));
    assert_non_null(down(&a, "audit"));
    assert_null(down(&a, "iam"));
    assert_non_null(down(&adm, "iam"));
    assert_null(down(&adm, "audit"));
    /* Every token distinct: none is good at two services. */
    assert_true(strcmp(c.gw, down(&c, "kms")) != 0);
    assert_true(strcmp(down(&c, "kms"), down(&c, "attestation")) != 0);

    /* Each at its own service: accepted. */
    kmsh_resp r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(200, kms_otk(down(&c, "kms"), "r-ok", &r));
    kmsh_resp_free(&r);
    assert_int_equal(200, iam_admin(down(&adm, "iam"), false));
    assert_int_equal(200, audit_read(down(&a, "audit")));

    /* The gateway token, replayed by a gateway to the services behind it. */
    kms_refuses(c.gw, "r-gw");
    assert_int_equal(401, iam_admin(adm.gw, true));
    assert_int_equal(401, audit_read(a.gw));

    /* A KMS token (a compromised KMS replaying what it received). */
    assert_int_equal(401, iam_admin(down(&c, "kms"), true));
    assert_int_equal(401, audit_read(down(&c, "kms")));
    /* An admin's IAM token is no KMS or audit token either. */
    kms_refuses(down(&adm, "iam"), "r-iam");
    assert_int_equal(401, audit_read(down(&adm, "iam")));
    /* The auditor's audit token at the KMS and at IAM. */
    kms_refuses(down(&a, "audit"), "r-aud");
    assert_int_equal(401, iam_admin(down(&a, "audit"), true));

    /* The gateway itself takes only its own token. */
    gwh_resp g;
    char hdr[16000];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", down(&c, "kms"));
    gwh_call(&G, "POST", "/v1/tees/select", hdr, "application/json", "{\"job\":\"summarize\"}",
             strlen("{\"job\":\"summarize\"}"), &g);
    assert_int_equal(401, g.status);
    assert_string_equal("invalid_token", gwh_err_code(&g));
    gwh_resp_free(&g);

    /* A flow route binds the downstream token to the gateway token's
       caller: another client's gateway token paired with this client's KMS
       token (and a gateway token in the downstream header) is refused
       before anything is relayed. */
    char *kc2 = gwh_principal(&G, "app2", "client", "client");
    tokens c2;
    get_tokens(kc2, &c2);
    snprintf(hdr, sizeof(hdr),
             "Authorization: Bearer %s\r\nLunal-Downstream-Authorization: Bearer %s\r\n", c2.gw,
             down(&c, "kms"));
    gwh_call(&G, "POST", "/v1/tees/select", hdr, "application/json", "{\"job\":\"summarize\"}",
             strlen("{\"job\":\"summarize\"}"), &g);
    assert_int_equal(401, g.status);
    assert_string_equal("invalid_downstream_token", gwh_err_code(&g));
    gwh_resp_free(&g);
    snprintf(hdr, sizeof(hdr),
             "Authorization: Bearer %s\r\nLunal-Downstream-Authorization: Bearer %s\r\n", c.gw,
             c.gw);
    gwh_call(&G, "POST", "/v1/tees/select", hdr, "application/json", "{\"job\":\"summarize\"}",
             strlen("{\"job\":\"summarize\"}"), &g);
    assert_int_equal(401, g.status);
    assert_string_equal("invalid_downstream_token", gwh_err_code(&g));
    gwh_resp_free(&g);
    /* The client's own pair passes the gateway's check. */
    snprintf(hdr, sizeof(hdr),
             "Authorization: Bearer %s\r\nLunal-Downstream-Authorization: Bearer %s\r\n", c.gw,
             down(&c, "kms"));
    gwh_call(&G, "POST", "/v1/tees/select", hdr, "application/json", "{\"job\":\"summarize\"}",
             strlen("{\"job\":\"summarize\"}"), &g);
    assert_true(g.status != 401);
    gwh_resp_free(&g);
    tokens_free(&c2);
    free(kc2);

    tokens_free(&c);
    tokens_free(&a);
    tokens_free(&adm);
    free(kc);
    free(ka);
}

static void test_shared_and_list_audiences(void **state)
{
    (void)state;
    kmsh_resp r;
    /* Control: the test signer is trusted, with the service's own audience. */
    char *ok = forge(K.iam, json_string(LUNA_AUD_KMS), "client");
    memset(&r, 0, sizeof(r));
    assert_int_equal(200, kms_otk(ok, "r-forge-ok", &r));
    kmsh_resp_free(&r);
    free(ok);
    char *aok = forge(A.iam, json_string(LUNA_AUD_AUDIT), "auditor");
    assert_int_equal(200, audit_read(aok));
    free(aok);

    /* The old shared audience: refused everywhere it could be offered. */
    char *old = forge(K.iam, json_string("lunal"), "client");
    kms_refuses(old, "r-lunal");
    free(old);
    old = forge(A.iam, json_string("lunal"), "auditor");
    assert_int_equal(401, audit_read(old));
    free(old);

    /* A list naming the service (and another one): refused. */
    char *list = forge(K.iam, json_pack("[s,s]", LUNA_AUD_KMS, LUNA_AUD_GATEWAY), "client");
    kms_refuses(list, "r-list");
    free(list);
    list = forge(A.iam, json_pack("[s]", LUNA_AUD_AUDIT), "auditor");
    assert_int_equal(401, audit_read(list));
    free(list);
    /* An unknown audience and a near miss. */
    char *odd = forge(K.iam, json_string("lunal://svc/kms/"), "client");
    kms_refuses(odd, "r-odd");
    free(odd);
    odd = forge(K.iam, json_string("LUNAL://SVC/KMS"), "client");
    kms_refuses(odd, "r-case");
    free(odd);
}

static void test_foreign_audience_config_refused(void **state)
{
    (void)state;
    /* A KMS told to accept the shared or the gateway's audience does not start. */
    static const char *const bad[] = {"lunal", LUNA_AUD_GATEWAY, LUNA_AUD_IAM};
    kmsh C;
    kmsh_clone(&K, "kms-bad", &C);
    int code = 0;
    /* Control: the same clone with its own audience starts. */
    assert_string_equal("", K.extra); /* kmsh_setup(&K, NULL): nothing to keep */
    snprintf(C.extra, sizeof(C.extra), ",\"iam_audience\":\"%s\"", LUNA_AUD_KMS);
    kmsh_write_config(&C);
    assert_true(kmsh_try_start(&C, &code));
    assert_int_equal(0, kmsh_stop(&C, SIGTERM));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(C.extra, sizeof(C.extra), ",\"iam_audience\":\"%s\"", bad[i]);
        kmsh_write_config(&C);
        assert_false(kmsh_try_start(&C, &code));
        assert_int_not_equal(0, code);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_downstream_table),
        cmocka_unit_test(test_shared_and_list_audiences),
        cmocka_unit_test(test_foreign_audience_config_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
