/*
 * test_gateway_routes.c - the gateway's relayed admin and query routes
 * (gateway/src/gw_relay.c) attacked through the real luna-gateway on its
 * public listener, the real luna-iam, and the test stubs of
 * gateway/test/gw_stub.c.  Covers: role boundaries decided through IAM
 * before anything is relayed (a client cannot rotate keys nor list API
 * keys nor create tenants, an auditor cannot run jobs nor quarantine a
 * TEE); tenant B cannot list or revoke tenant A's API keys (A's key still
 * works after B tried) nor read A's audit entries; a tenant named in a
 * body or query is refused; path traversal, encoded slashes and dots,
 * overlong ids, malformed API key ids, unknown, repeated or encoded query
 * parameters and bodies on GET routes are refused with 400 and a JSON
 * error before any credential is looked at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_harness.h"
#include "luna_test.h"

static gwh H;
static char *client_key;  /* acme/app1, role client */
static char *auditor_key; /* acme/aud1, role auditor */
static char *other_key;   /* other/admin: the owner of tenant "other" (every tenant role) */

static int setup(void **state)
{
    (void)state;
    gwh_start(&H, 300);
    client_key = gwh_principal(&H, "app1", "client", "client");
    auditor_key = gwh_principal(&H, "aud1", "user", "auditor");
    /* A second tenant, created by the platform administrator of acme. */
    char *admin = iamh_token(&H.iam, "acme", H.iam.admin_key);
    assert_non_null(admin);
    iamh_resp r;
    iamh_call(&H.iam, "gateway", "POST", "/v1/iam/tenants", admin, "{\"tenant_id\":\"other\"}",
              &r);
    assert_int_equal(201, r.status);
    const char *k = json_string_value(json_object_get(r.body, "api_key"));
    assert_non_null(k);
    other_key = strdup(k);
    assert_non_null(other_key);
    iamh_resp_free(&r);
    free(admin);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gwh_stop(&H);
    free(client_key);
    free(auditor_key);
    free(other_key);
    return 0;
}

/*
 * The headers of a caller: its gateway token and, when IAM minted one,
 * the downstream token for svc ("kms", "iam", "audit"; docs/protocol.md).
 */
static void caller_headers(const char *tenant, const char *api_key, const char *svc, char *out,
                           size_t cap)
{
    char body[128], hdr[512];
    snprintf(body, sizeof(body), "{\"tenant_id\":\"%s\"}", tenant);
    snprintf(hdr, sizeof(hdr), "Authorization: ApiKey %s\r\n", api_key);
    gwh_resp r;
    gwh_call(&H, "POST", "/v1/auth/token", hdr, "application/json", body, strlen(body), &r);
    assert_int_equal(200, r.status);
    const char *tok = json_string_value(json_object_get(r.body, "token"));
    assert_non_null(tok);
    const char *down =
        json_string_value(json_object_get(json_object_get(r.body, "downstream"), svc));
    int n = snprintf(out, cap, "Authorization: Bearer %s\r\n", tok);
    assert_true(n > 0 && (size_t)n < cap);
    if (down != NULL) {
        int m = snprintf(out + n, cap - (size_t)n, "Lunal-Downstream-Authorization: Bearer %s\r\n",
                         down);
        assert_true(m > 0 && (size_t)m < cap - (size_t)n);
    }
    gwh_resp_free(&r);
}

static void call(const char *method, const char *path, const char *headers, const char *body,
                 gwh_resp *r)
{
    gwh_call(&H, method, path, headers, body != NULL ? "application/json" : NULL, body,
             body != NULL ? strlen(body) : 0, r);
}

/* status and JSON error code, then frees r. */
static void expect_error(gwh_resp *r, int status, const char *code)
{
    if (r->status != status || strcmp(gwh_err_code(r), code) != 0)
        fail_msg("expected %d %s, got %d %s", status, code, r->status, gwh_err_code(r));
    assert_non_null(r->body); /* a JSON error body, always */
    gwh_resp_free(r);
}

static void test_role_boundaries(void **state)
{
    (void)state;
    char hdr[16384];
    gwh_resp r;
    caller_headers("acme", client_key, "kms", hdr, sizeof(hdr));
    /* A client cannot rotate or revoke keys ... */
    call("POST", "/v1/keys/k1/rotate", hdr, NULL, &r);
    expect_error(&r, 403, "permission_denied");
    call("POST", "/v1/keys/k1/revoke", hdr, "{}", &r);
    expect_error(&r, 403, "permission_denied");
    /* ... nor list API keys, create tenants or clients, or read the audit log. */
    caller_headers("acme", client_key, "iam", hdr, sizeof(hdr));
    call("GET", "/v1/apikeys", hdr, NULL, &r);
    expect_error(&r, 403, "permission_denied");
    call("POST", "/v1/tenants", hdr, "{\"tenant_id\":\"evil\"}", &r);
    expect_error(&r, 403, "permission_denied");
    call("POST", "/v1/clients", hdr, "{\"principal_id\":\"evil\"}", &r);
    expect_error(&r, 403, "permission_denied");
    caller_headers("acme", client_key, "audit", hdr, sizeof(hdr));
    call("GET", "/v1/audit/entries", hdr, NULL, &r);
    expect_error(&r, 403, "permission_denied");

    /* An auditor cannot quarantine, register TEEs, manage keys or run jobs. */
    caller_headers("acme", auditor_key, "kms", hdr, sizeof(hdr));
    call("POST", "/v1/tees/t1/quarantine", hdr, "{\"reason\":\"x\"}", &r);
    expect_error(&r, 403, "permission_denied");
    call("POST", "/v1/tees", hdr,
         "{\"tee_id\":\"t9\",\"deployment_id\":\"d1\",\"tee_type\":\"sim\",\"mr_enclave\":"
         "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}",
         &r);
    expect_error(&r, 403, "permission_denied");
    call("POST", "/v1/keys", hdr, "{\"key_id\":\"k2\"}", &r);
    expect_error(&r, 403, "permission_denied");
    call("POST", "/v1/tees/select", hdr, "{\"job\":\"echo\"}", &r);
    expect_error(&r, 403, "permission_denied");
    /* No token at all: 401, never a relay. */
    call("GET", "/v1/tees", NULL, NULL, &r);
    expect_error(&r, 401, "missing_token");
}

static void test_cross_tenant(void **state)
{
    (void)state;
    char hdr[16384];
    gwh_resp r;
    /* app1's key id: the 16 hex characters after "lak_". */
    char key_id[17];
    assert_true(strncmp(client_key, "lak_", 4) == 0 && strlen(client_key) > 20);
    memcpy(key_id, client_key + 4, 16);
    key_id[16] = '\0';

    caller_headers("other", other_key, "iam", hdr, sizeof(hdr));
    /* Tenant other lists "app1": IAM sees only tenant other's principals. */
    call("GET", "/v1/apikeys?principal=app1", hdr, NULL, &r);
    assert_non_null(r.body);
    assert_null(strstr(htu_raw_body(&r.raw) != NULL ? htu_raw_body(&r.raw) : "", key_id));
    if (r.status == 200) { /* IAM answers for tenant other: nothing of acme's */
        assert_string_equal("other", json_string_value(json_object_get(r.body, "tenant_id")));
        assert_int_equal(0, json_array_size(json_object_get(r.body, "api_keys")));
    }
    gwh_resp_free(&r);
    /* ... and tries to revoke acme's key by its id. */
    char path[128];
    snprintf(path, sizeof(path), "/v1/apikeys/%s/revoke", key_id);
    call("POST", path, hdr, "{\"principal\":\"app1\"}", &r);
    assert_int_not_equal(200, r.status);
    assert_non_null(r.body);
    gwh_resp_free(&r);
    /* acme's key still works. */
    char *t = gwh_token(&H, "acme", client_key);
    assert_non_null(t);
    free(t);

    /* Another tenant's audit entries: refused at the gateway. */
    caller_headers("other", other_key, "audit", hdr, sizeof(hdr));
    call("GET", "/v1/audit/entries?tenant=acme", hdr, NULL, &r);
    expect_error(&r, 403, "cross_tenant");

    /* A tenant in a body is never taken: the schemas have no such field. */
    caller_headers("other", other_key, "kms", hdr, sizeof(hdr));
    call("POST", "/v1/tees", hdr,
         "{\"tee_id\":\"t9\",\"deployment_id\":\"d1\",\"tee_type\":\"sim\",\"mr_enclave\":"
         "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
         "\"tenants\":[\"acme\"]}",
         &r);
    expect_error(&r, 400, "invalid_request");
    call("POST", "/v1/keys", hdr, "{\"key_id\":\"k1\",\"tenant_id\":\"acme\"}", &r);
    expect_error(&r, 400, "invalid_request");
    call("GET", "/v1/keys?tenant=acme", hdr, NULL, &r);
    expect_error(&r, 400, "unknown_query_parameter");
    /* The gateway token names tenant other: a tenant header naming acme is refused. */
    char hdr2[16600];
    snprintf(hdr2, sizeof(hdr2), "%sX-Lunal-Tenant-Id: acme\r\n", hdr);
    call("GET", "/v1/keys", hdr2, NULL, &r);
    expect_error(&r, 403, "tenant_mismatch");
}

static void test_bad_paths_and_queries(void **state)
{
    (void)state;
    gwh_resp r;
    /* Refused before any credential is looked at: no token is sent. */
    static const char *const bad_paths[] = {
        "/v1/tees/../quarantine",    "/v1/tees/./quarantine",    "/v1/keys/%2e%2e/rotate",
        "/v1/keys/a%2Fb/rotate",     "/v1/keys/a%2fb/revoke",    "/v1/keys//rotate",
        "/v1/keys/k1/rotate/",       "/v1/apikeys/%00/revoke",   "/v1/tees/t1%20x/quarantine",
        "/v1/keys/k1/rotate/extra/x", "/v1/tees/..%2f..%2fiam/quarantine",
    };
    for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
        call("POST", bad_paths[i], NULL, "{}", &r);
        if (r.status != 400 && r.status != 404)
            fail_msg("%s: status %d", bad_paths[i], r.status);
        assert_non_null(r.body);
        /* luna/http.h refuses dot segments itself ("bad_request"); the relay
           refuses everything else it lets through ("invalid_path"). */
        if (r.status == 400 && strcmp(gwh_err_code(&r), "invalid_path") != 0 &&
            strcmp(gwh_err_code(&r), "bad_request") != 0)
            fail_msg("%s: code %s", bad_paths[i], gwh_err_code(&r));
        gwh_resp_free(&r);
    }
    /* Traversal and encodings are 400 specifically. */
    call("POST", "/v1/tees/../quarantine", NULL, "{}", &r);
    assert_int_equal(400, r.status);
    assert_non_null(r.body);
    gwh_resp_free(&r);
    call("POST", "/v1/tees/..%2f..%2fkeys/quarantine", NULL, "{}", &r);
    expect_error(&r, 400, "invalid_path");
    call("POST", "/v1/keys/a%2Fb/rotate", NULL, "{}", &r);
    expect_error(&r, 400, "invalid_path");
    /* Overlong ids. */
    char path[512], id[80];
    memset(id, 'a', 65);
    id[65] = '\0';
    snprintf(path, sizeof(path), "/v1/keys/%s/rotate", id);
    call("POST", path, NULL, "{}", &r);
    expect_error(&r, 400, "path_too_long");
    /* An API key id is 16 lowercase hex characters. */
    call("POST", "/v1/apikeys/ABCDEF0123456789/revoke", NULL, "{}", &r);
    expect_error(&r, 400, "invalid_path");
    call("POST", "/v1/apikeys/0123/revoke", NULL, "{}", &r);
    expect_error(&r, 400, "invalid_path");
    /* Queries: unknown, repeated, encoded, malformed, too long. */
    call("GET", "/v1/keys?foo=1", NULL, NULL, &r);
    expect_error(&r, 400, "unknown_query_parameter");
    call("GET", "/v1/apikeys?principal=a&principal=b", NULL, NULL, &r);
    expect_error(&r, 400, "invalid_query");
    call("GET", "/v1/apikeys?principal=a%2Fb", NULL, NULL, &r);
    expect_error(&r, 400, "invalid_query");
    call("GET", "/v1/audit/entries?limit=1;2", NULL, NULL, &r);
    expect_error(&r, 400, "invalid_query");
    call("GET", "/v1/audit/entries?limit=-1", NULL, NULL, &r);
    expect_error(&r, 400, "invalid_query");
    call("GET", "/v1/audit/proof/inclusion?index=1&size", NULL, NULL, &r);
    expect_error(&r, 400, "invalid_query");
    call("GET", "/v1/attestation/history?tee_id=..", NULL, NULL, &r);
    expect_error(&r, 400, "invalid_query");
    char q[700];
    memset(q, 0, sizeof(q));
    strcpy(q, "/v1/audit/entries?operation=");
    for (size_t i = strlen(q); i < 640; i++)
        q[i] = 'a';
    call("GET", q, NULL, NULL, &r);
    expect_error(&r, 400, "query_too_long");
    /* Bodies: none on GET, schema on POST (unknown fields, types, duplicates). */
    call("GET", "/v1/tees", NULL, "{}", &r);
    expect_error(&r, 400, "unexpected_body");
    call("POST", "/v1/keys/k1/rotate", NULL, "{\"x\":1}", &r);
    expect_error(&r, 400, "invalid_request");
    call("POST", "/v1/tees/t1/quarantine", NULL, "{\"reason\":\"a\",\"reason\":\"b\"}", &r);
    expect_error(&r, 400, "invalid_request");
    call("POST", "/v1/keys", NULL, "{\"key_id\":7}", &r);
    expect_error(&r, 400, "invalid_request");
    /* Unknown routes under the relayed prefixes: 404 JSON. */
    call("GET", "/v1/audit/secrets", NULL, NULL, &r);
    expect_error(&r, 404, "not_found");
    call("POST", "/v1/keys/k1/destroy", NULL, "{}", &r);
    expect_error(&r, 404, "not_found");
}

/* The witness route without a configured witness, and a platform-only route. */
static void test_witness_and_deployments(void **state)
{
    (void)state;
    char hdr[16384];
    gwh_resp r;
    caller_headers("acme", auditor_key, "audit", hdr, sizeof(hdr));
    call("GET", "/v1/audit/witness", hdr, NULL, &r);
    expect_error(&r, 404, "witness_not_configured");
    /* Registering a deployment needs deployments.register: an auditor is
       refused before anything reaches the attestation service. */
    call("POST", "/v1/deployments", hdr, "{\"manifest\":\"a.b.c\"}", &r);
    expect_error(&r, 403, "permission_denied");
    /* The manifest is a compact JWS: nothing else passes the schema. */
    call("POST", "/v1/deployments", hdr, "{\"manifest\":\"a b\"}", &r);
    expect_error(&r, 400, "invalid_request");
    call("POST", "/v1/deployments", NULL, "{\"manifest\":\"a.b.c\"}", &r);
    expect_error(&r, 401, "missing_token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_boundaries),
        cmocka_unit_test(test_cross_tenant),
        cmocka_unit_test(test_bad_paths_and_queries),
        cmocka_unit_test(test_witness_and_deployments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
