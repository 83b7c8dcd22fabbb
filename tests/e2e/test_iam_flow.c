/*
 * test_iam_flow.c - the IAM service as a real process over mTLS with
 * SQLite: bootstrap (once only), tenants, principals, API keys (create,
 * use, revoke, expire), tokens verified with the published JWKS, role
 * decisions, the anonymous policy, and signing key rollover.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iam_harness.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/audience.h"
#include "luna/jws.h"
#include "luna_test.h"

#define TTL 6
#define PUBLISH_DELAY 2

static iamh H;
static int server_exit = -1;

static int setup(void **state)
{
    (void)state;
    iamh_start(&H, TTL, PUBLISH_DELAY);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    server_exit = iamh_stop(&H);
    return 0;
}

/*
 * Verifies token against the JWKS IAM publishes now; returns the claims.
 * iamh_token gives IAM's admin token when the principal has one, else the
 * gateway token: each is checked for its one audience.
 */
static luna_err verify_aud(const char *token, const char *audience, json_t **claims, char *kid)
{
    char *doc = iamh_jwks(&H);
    luna_jws_keyset *ks = NULL;
    assert_luna_ok(luna_jws_keyset_load(doc, strlen(doc), &ks));
    free(doc);
    luna_jws_verify_opts o;
    luna_jws_verify_opts_init(&o);
    o.skew = 0;
    o.issuer = "lunal://svc/iam";
    o.audience = audience;
    luna_err err = luna_jws_verify(ks, token, strlen(token), &o, claims, kid);
    luna_jws_keyset_free(ks);
    return err;
}

static luna_err verify(const char *token, json_t **claims, char *kid)
{
    luna_err err = verify_aud(token, LUNA_AUD_IAM, claims, kid);
    return err == LUNA_ERR_VERIFY ? verify_aud(token, LUNA_AUD_GATEWAY, claims, kid) : err;
}

static bool has_role(const json_t *claims, const char *role)
{
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(claims, "roles"), i, v)
    {
        if (strcmp(json_string_value(v), role) == 0)
            return true;
    }
    return false;
}

static const json_t *find_key(const json_t *arr, const char *key_id)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (strncmp(json_string_value(json_object_get(v, "key_id")), key_id, strlen(key_id)) == 0)
            return v;
    }
    fail_msg("key %s not listed", key_id);
    return NULL;
}

static char *admin_token(void)
{
    char *t = iamh_token(&H, "acme", H.admin_key);
    assert_non_null(t);
    return t;
}

/* POST as the gateway with an admin token; returns the status. */
static int admin_post(const char *path, const char *body, iamh_resp *r)
{
    char *t = admin_token();
    iamh_call(&H, "gateway", "POST", path, t, body, r);
    free(t);
    return r->status;
}

static char *new_api_key(const char *tenant_token, const char *tenant, const char *principal,
                         const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/iam/tenants/%s/principals/%s/api-keys", tenant, principal);
    iamh_resp r;
    iamh_call(&H, "gateway", "POST", path, tenant_token, body, &r);
    assert_int_equal(201, r.status);
    const char *k = json_string_value(json_object_get(r.body, "api_key"));
    assert_non_null(k);
    char *out = strdup(k);
    iamh_resp_free(&r);
    return out;
}

static void test_bootstrap_once(void **state)
{
    (void)state;
    assert_int_equal(64, (int)strlen(H.admin_key));
    assert_memory_equal("lak_", H.admin_key, 4);
    char out[256];
    /* A second bootstrap is refused and prints no key. */
    assert_int_not_equal(0, iamh_bootstrap(&H, "other", out, sizeof(out)));
    assert_null(strstr(out, "lak_"));
}

static void test_authenticate_and_verify(void **state)
{
    (void)state;
    char *t = admin_token();
    json_t *claims = NULL;
    char kid[LUNA_JWS_MAX_KID_LEN + 1];
    assert_luna_ok(verify(t, &claims, kid));
    assert_string_equal("acme", json_string_value(json_object_get(claims, "tenant")));
    assert_string_equal("admin", json_string_value(json_object_get(claims, "principal")));
    assert_string_equal("acme/admin", json_string_value(json_object_get(claims, "sub")));
    assert_true(has_role(claims, "tenant-admin"));
    assert_true(has_role(claims, "platform-admin"));
    json_int_t iat = json_integer_value(json_object_get(claims, "iat"));
    json_int_t exp = json_integer_value(json_object_get(claims, "exp"));
    assert_int_equal(TTL, (int)(exp - iat));
    assert_true(json_is_string(json_object_get(claims, "jti")));
    json_decref(claims);
    /* Two tokens never share a jti. */
    char *t2 = admin_token();
    json_t *c2 = NULL;
    assert_luna_ok(verify(t2, &c2, NULL));
    json_t *c1 = NULL;
    assert_luna_ok(verify(t, &c1, NULL));
    assert_string_not_equal(json_string_value(json_object_get(c1, "jti")),
                            json_string_value(json_object_get(c2, "jti")));
    json_decref(c1);
    json_decref(c2);
    /* A flipped signature character does not verify. */
    size_t n = strlen(t);
    t[n - 2] = t[n - 2] == 'A' ? 'B' : 'A';
    claims = NULL;
    assert_int_not_equal(LUNA_OK, verify(t, &claims, NULL));
    assert_null(claims);
    free(t);
    free(t2);
}

static void test_wrong_caller_identity(void **state)
{
    (void)state;
    iamh_resp r;
    char body[256];
    snprintf(body, sizeof(body), "{\"tenant_id\":\"acme\",\"api_key\":\"%s\"}", H.admin_key);
    /* Only the gateway may authenticate; a TEE may not. */
    iamh_call(&H, "tee", "POST", "/v1/iam/authenticate", NULL, body, &r);
    assert_int_equal(403, r.status);
    iamh_resp_free(&r);
    /* The admin API without a token. */
    iamh_call(&H, "gateway", "GET", "/v1/iam/tenants/acme", NULL, NULL, &r);
    assert_int_equal(401, r.status);
    assert_string_equal("missing_token", iamh_err_code(&r));
    iamh_resp_free(&r);
    iamh_call(&H, "gateway", "GET", "/v1/iam/tenants/acme", "not.a.token", NULL, &r);
    assert_int_equal(401, r.status);
    assert_string_equal("invalid_token", iamh_err_code(&r));
    iamh_resp_free(&r);
}

static void test_api_key_lifecycle(void **state)
{
    (void)state;
    iamh_resp r;
    assert_int_equal(201, admin_post("/v1/iam/tenants/acme/principals",
                                     "{\"principal_id\":\"svc1\",\"kind\":\"service\","
                                     "\"roles\":[\"operator\"]}",
                                     &r));
    iamh_resp_free(&r);
    char *t = admin_token();
    char *k1 = new_api_key(t, "acme", "svc1", NULL);
    char *k2 = new_api_key(t, "acme", "svc1", "{\"expires_in_sec\":1}");
    /* Good key: a token naming the service principal and its role. */
    char *tok = iamh_token(&H, "acme", k1);
    assert_non_null(tok);
    json_t *claims = NULL;
    assert_luna_ok(verify(tok, &claims, NULL));
    assert_string_equal("svc1", json_string_value(json_object_get(claims, "principal")));
    assert_true(has_role(claims, "operator"));
    assert_false(has_role(claims, "tenant-admin"));
    json_decref(claims);
    free(tok);
    /* An operator gets the gateway, KMS and attestation tokens (docs/iam.md
       "Token audiences"), each good for its own audience only. */
    static const struct {
        const char *svc, *aud;
        bool minted;
    } want[] = {{NULL, LUNA_AUD_GATEWAY, true},
                {"kms", LUNA_AUD_KMS, true},
                {"attestation", LUNA_AUD_ATTESTATION, true},
                {"audit", LUNA_AUD_AUDIT, false},
                {"iam", LUNA_AUD_IAM, false}};
    static const char *const auds[] = {LUNA_AUD_GATEWAY, LUNA_AUD_KMS, LUNA_AUD_ATTESTATION,
                                       LUNA_AUD_AUDIT, LUNA_AUD_IAM, "lunal"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char *dt = iamh_token_for(&H, "acme", k1, want[i].svc);
        if (!want[i].minted) {
            assert_null(dt);
            continue;
        }
        assert_non_null(dt);
        for (size_t a = 0; a < sizeof(auds) / sizeof(auds[0]); a++) {
            json_t *dc = NULL;
            luna_err e = verify_aud(dt, auds[a], &dc, NULL);
            if (strcmp(auds[a], want[i].aud) == 0) {
                assert_luna_ok(e);
                assert_true(json_is_string(json_object_get(dc, "aud")));
                assert_string_equal("svc1",
                                    json_string_value(json_object_get(dc, "principal")));
                json_decref(dc);
            } else {
                assert_luna_err(LUNA_ERR_VERIFY, e);
            }
        }
        free(dt);
    }

    /* Wrong secret (last character changed), unknown id, garbage: one code. */
    char bad[128], body[256];
    snprintf(bad, sizeof(bad), "%s", k1);
    bad[63] = bad[63] == 'A' ? 'B' : 'A';
    const char *wrong[] = {bad, "lak_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                           "password", "lak_"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        snprintf(body, sizeof(body), "{\"tenant_id\":\"acme\",\"api_key\":\"%s\"}", wrong[i]);
        iamh_call(&H, "gateway", "POST", "/v1/iam/authenticate", NULL, body, &r);
        assert_int_equal(401, r.status);
        assert_string_equal("invalid_api_key", iamh_err_code(&r));
        assert_null(json_object_get(r.body, "token"));
        iamh_resp_free(&r);
    }
    /* The right key for another tenant is a wrong key. */
    snprintf(body, sizeof(body), "{\"tenant_id\":\"zeta\",\"api_key\":\"%s\"}", k1);
    iamh_call(&H, "gateway", "POST", "/v1/iam/authenticate", NULL, body, &r);
    assert_int_equal(401, r.status);
    assert_string_equal("invalid_api_key", iamh_err_code(&r));
    iamh_resp_free(&r);

    /* last_used_at is recorded; the listing never shows a secret or hash. */
    iamh_call(&H, "gateway", "GET", "/v1/iam/tenants/acme/principals/svc1/api-keys", t, NULL, &r);
    assert_int_equal(200, r.status);
    json_t *keys = json_object_get(r.body, "api_keys");
    assert_int_equal(2, (int)json_array_size(keys));
    char id1[17], id2[17];
    snprintf(id1, sizeof(id1), "%.16s", k1 + 4);
    snprintf(id2, sizeof(id2), "%.16s", k2 + 4);
    assert_true(json_is_integer(json_object_get(find_key(keys, id1), "last_used_at")));
    assert_true(json_is_null(json_object_get(find_key(keys, id2), "last_used_at")));
    assert_null(strstr(r.raw, k1 + 21));
    assert_null(strstr(r.raw, "hash"));
    assert_null(strstr(r.raw, "salt"));
    iamh_resp_free(&r);

    /* Revocation is instant: the next authentication fails. */
    char path[256];
    snprintf(path, sizeof(path), "/v1/iam/tenants/acme/principals/svc1/api-keys/%.16s", k1 + 4);
    iamh_call(&H, "gateway", "DELETE", path, t, NULL, &r);
    assert_int_equal(200, r.status);
    iamh_resp_free(&r);
    snprintf(body, sizeof(body), "{\"tenant_id\":\"acme\",\"api_key\":\"%s\"}", k1);
    iamh_call(&H, "gateway", "POST", "/v1/iam/authenticate", NULL, body, &r);
    assert_int_equal(401, r.status);
    assert_string_equal("api_key_revoked", iamh_err_code(&r));
    iamh_resp_free(&r);
    /* Revoking twice: not found. */
    iamh_call(&H, "gateway", "DELETE", path, t, NULL, &r);
    assert_int_equal(404, r.status);
    iamh_resp_free(&r);

    /* Expiry. */
    sleep(2);
    snprintf(body, sizeof(body), "{\"tenant_id\":\"acme\",\"api_key\":\"%s\"}", k2);
    iamh_call(&H, "gateway", "POST", "/v1/iam/authenticate", NULL, body, &r);
    assert_int_equal(401, r.status);
    assert_string_equal("api_key_expired", iamh_err_code(&r));
    iamh_resp_free(&r);
    free(k1);
    free(k2);
    free(t);
}

static void test_revoked_admin_key_stops_admin_calls(void **state)
{
    (void)state;
    iamh_resp r;
    assert_int_equal(201, admin_post("/v1/iam/tenants/acme/principals",
                                     "{\"principal_id\":\"admin2\",\"kind\":\"user\","
                                     "\"roles\":[\"tenant-admin\"]}",
                                     &r));
    iamh_resp_free(&r);
    char *t = admin_token();
    char *k = new_api_key(t, "acme", "admin2", NULL);
    char *t2 = iamh_token(&H, "acme", k);
    assert_non_null(t2);
    iamh_call(&H, "gateway", "GET", "/v1/iam/tenants/acme/principals", t2, NULL, &r);
    assert_int_equal(200, r.status);
    iamh_resp_free(&r);
    char path[256];
    snprintf(path, sizeof(path), "/v1/iam/tenants/acme/principals/admin2/api-keys/%.16s", k + 4);
    iamh_call(&H, "gateway", "DELETE", path, t, NULL, &r);
    assert_int_equal(200, r.status);
    iamh_resp_free(&r);
    /* The still unexpired token of the revoked key no longer administers. */
    iamh_call(&H, "gateway", "GET", "/v1/iam/tenants/acme/principals", t2, NULL, &r);
    assert_int_equal(401, r.status);
    assert_string_equal("api_key_revoked", iamh_err_code(&r));
    iamh_resp_free(&r);
    free(k);
    free(t);
    free(t2);
}

static void test_principal_kinds(void **state)
{
    (void)state;
    iamh_resp r;
    /* A client application gets its X25519 key file once. */
    assert_int_equal(201, admin_post("/v1/iam/tenants/acme/principals",
                                     "{\"principal_id\":\"app1\",\"kind\":\"client\"}", &r));
    const char *kf = json_string_value(json_object_get(r.body, "key_file"));
    assert_non_null(kf);
    json_error_t je;
    json_t *file = json_loads(kf, 0, &je);
    assert_non_null(file);
    assert_string_equal("lunal-client-key", json_string_value(json_object_get(file, "type")));
    uint8_t sk[32], pk[32], pk2[32];
    size_t n = 0;
    char skb[64], pkb[64];
    snprintf(skb, sizeof(skb), "%s", json_string_value(json_object_get(file, "private_key")));
    snprintf(pkb, sizeof(pkb), "%s", json_string_value(json_object_get(file, "public_key")));
    assert_luna_ok(luna_b64url_decode(skb, strlen(skb), sk, sizeof(sk), &n));
    assert_int_equal(32, (int)n);
    assert_luna_ok(luna_b64url_decode(pkb, strlen(pkb), pk, sizeof(pk), &n));
    assert_luna_ok(luna_x25519_public(sk, pk2));
    assert_memory_equal(pk, pk2, 32);
    char *ck1 = strdup(json_string_value(json_object_get(r.body, "client_key_id")));
    char *roles = json_dumps(json_object_get(r.body, "roles"), JSON_COMPACT);
    assert_string_equal("[\"client\"]", roles);
    free(roles);
    json_decref(file);
    iamh_resp_free(&r);
    /* The listing shows the public half only. */
    char *t = admin_token();
    iamh_call(&H, "gateway", "GET", "/v1/iam/tenants/acme/principals/app1/client-keys", t, NULL,
              &r);
    assert_int_equal(200, r.status);
    assert_non_null(strstr(r.raw, pkb));
    assert_null(strstr(r.raw, skb));
    assert_null(strstr(r.raw, "private"));
    iamh_resp_free(&r);
    /* Rotation: a new key, the old one revoked. */
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals/app1/client-keys", t, NULL,
              &r);
    assert_int_equal(201, r.status);
    char *ck2 = strdup(json_string_value(json_object_get(r.body, "client_key_id")));
    assert_string_not_equal(ck1, ck2);
    iamh_resp_free(&r);
    iamh_call(&H, "gateway", "GET", "/v1/iam/tenants/acme/principals/app1/client-keys", t, NULL,
              &r);
    json_t *ks = json_object_get(r.body, "client_keys");
    assert_int_equal(2, (int)json_array_size(ks));
    assert_true(json_is_integer(json_object_get(find_key(ks, ck1), "revoked_at")));
    assert_true(json_is_null(json_object_get(find_key(ks, ck2), "revoked_at")));
    iamh_resp_free(&r);
    free(ck1);
    free(ck2);

    /* A developer: Ed25519 public key, key_id = first 16 bytes of its SHA-256. */
    uint8_t seed[32], dpk[32], d[32];
    char b64[64], body[512], expect[96];
    assert_luna_ok(luna_ed25519_keygen(seed, dpk));
    assert_luna_ok(luna_b64url_encode(dpk, 32, b64, sizeof(b64)));
    assert_luna_ok(luna_sha256(dpk, 32, d));
    for (size_t i = 0; i < 16; i++)
        snprintf(expect + 3 * i, 4, i + 1 < 16 ? "%02x:" : "%02x", d[i]);
    snprintf(body, sizeof(body),
             "{\"principal_id\":\"dev1\",\"kind\":\"developer\",\"display_name\":\"John Doe\","
             "\"public_key\":\"%s\"}",
             b64);
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals", t, body, &r);
    assert_int_equal(201, r.status);
    assert_string_equal(expect,
                        json_string_value(json_object_get(r.body, "developer_key_id")));
    assert_string_equal("John Doe", json_string_value(json_object_get(r.body, "display_name")));
    iamh_resp_free(&r);
    /* The same developer key twice is a conflict; a developer without key is refused. */
    snprintf(body, sizeof(body),
             "{\"principal_id\":\"dev2\",\"kind\":\"developer\",\"display_name\":\"X\","
             "\"public_key\":\"%s\"}",
             b64);
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals", t, body, &r);
    assert_int_equal(409, r.status);
    iamh_resp_free(&r);
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals", t,
              "{\"principal_id\":\"dev3\",\"kind\":\"developer\",\"display_name\":\"X\"}", &r);
    assert_int_equal(400, r.status);
    iamh_resp_free(&r);
    /* "anonymous" is reserved. */
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals", t,
              "{\"principal_id\":\"anonymous\",\"kind\":\"user\"}", &r);
    assert_int_equal(400, r.status);
    iamh_resp_free(&r);
    free(t);
}

static int authorize(const char *tenant, const char *principal, const char *action,
                     const char *resource, char *reason, size_t cap)
{
    char body[512];
    if (resource != NULL)
        snprintf(body, sizeof(body),
                 "{\"tenant_id\":\"%s\",\"principal_id\":\"%s\",\"action\":\"%s\","
                 "\"resource\":\"%s\"}",
                 tenant, principal, action, resource);
    else
        snprintf(body, sizeof(body),
                 "{\"tenant_id\":\"%s\",\"principal_id\":\"%s\",\"action\":\"%s\"}", tenant,
                 principal, action);
    iamh_resp r;
    iamh_call(&H, "kms", "POST", "/v1/iam/authorize", NULL, body, &r);
    assert_int_equal(200, r.status);
    json_t *a = json_object_get(r.body, "allowed");
    assert_true(json_is_boolean(a));
    int allowed = json_is_true(a) ? 1 : 0;
    if (reason != NULL)
        snprintf(reason, cap, "%s", json_string_value(json_object_get(r.body, "reason")));
    iamh_resp_free(&r);
    return allowed;
}

static void test_authorize_roles(void **state)
{
    (void)state;
    iamh_resp r;
    assert_int_equal(201, admin_post("/v1/iam/tenants/acme/principals",
                                     "{\"principal_id\":\"aud1\",\"kind\":\"user\","
                                     "\"roles\":[\"auditor\"]}",
                                     &r));
    iamh_resp_free(&r);
    assert_int_equal(201, admin_post("/v1/iam/tenants/acme/principals",
                                     "{\"principal_id\":\"kadm\",\"kind\":\"user\","
                                     "\"roles\":[\"key-admin\"]}",
                                     &r));
    iamh_resp_free(&r);
    char reason[64];
    /* app1 is a client: runs jobs, cannot rotate keys. */
    assert_int_equal(1, authorize("acme", "app1", "jobs.run", "summarize", NULL, 0));
    assert_int_equal(0, authorize("acme", "app1", "keys.manage", NULL, reason, sizeof(reason)));
    assert_string_equal("no_permission", reason);
    assert_int_equal(0, authorize("acme", "app1", "audit.read", NULL, NULL, 0));
    /* The auditor reads the audit log and cannot run jobs. */
    assert_int_equal(1, authorize("acme", "aud1", "audit.read", NULL, NULL, 0));
    assert_int_equal(0, authorize("acme", "aud1", "jobs.run", "summarize", NULL, 0));
    /* The key admin manages keys and nothing of IAM. */
    assert_int_equal(1, authorize("acme", "kadm", "keys.manage", NULL, NULL, 0));
    assert_int_equal(0, authorize("acme", "kadm", "iam.admin", NULL, NULL, 0));
    /* The tenant admin administers but neither runs jobs nor manages keys. */
    assert_int_equal(1, authorize("acme", "admin", "iam.admin", NULL, NULL, 0));
    assert_int_equal(0, authorize("acme", "admin", "jobs.run", "summarize", NULL, 0));
    assert_int_equal(0, authorize("acme", "admin", "keys.manage", NULL, NULL, 0));
    /* The developer registers deployments. */
    assert_int_equal(1, authorize("acme", "dev1", "deployments.register", NULL, NULL, 0));
    assert_int_equal(0, authorize("acme", "dev1", "jobs.run", "x", NULL, 0));
    /* Unknown principal, other tenant: deny. */
    assert_int_equal(0, authorize("acme", "nobody", "jobs.run", "x", reason, sizeof(reason)));
    assert_string_equal("unknown_principal", reason);
    assert_int_equal(0, authorize("beta", "app1", "jobs.run", "x", NULL, 0));
    /* An unknown action is a 400, not an allow. */
    iamh_call(&H, "kms", "POST", "/v1/iam/authorize", NULL,
              "{\"tenant_id\":\"acme\",\"principal_id\":\"app1\",\"action\":\"everything\"}", &r);
    assert_int_equal(400, r.status);
    assert_string_equal("unknown_action", iamh_err_code(&r));
    iamh_resp_free(&r);
    /* Roles are replaced, and a disabled principal is denied. */
    char *t = admin_token();
    iamh_call(&H, "gateway", "PUT", "/v1/iam/tenants/acme/principals/aud1/roles", t,
              "{\"roles\":[\"operator\"]}", &r);
    assert_int_equal(200, r.status);
    iamh_resp_free(&r);
    assert_int_equal(0, authorize("acme", "aud1", "audit.read", NULL, NULL, 0));
    assert_int_equal(1, authorize("acme", "aud1", "tees.manage", NULL, NULL, 0));
    iamh_call(&H, "gateway", "DELETE", "/v1/iam/tenants/acme/principals/aud1", t, NULL, &r);
    assert_int_equal(200, r.status);
    iamh_resp_free(&r);
    assert_int_equal(0, authorize("acme", "aud1", "tees.manage", NULL, reason, sizeof(reason)));
    assert_string_equal("principal_disabled", reason);
    free(t);
}

static void test_admin_role_boundaries(void **state)
{
    (void)state;
    iamh_resp r;
    char *t = admin_token();
    char *kc = new_api_key(t, "acme", "app1", NULL);
    char *kk = new_api_key(t, "acme", "kadm", NULL);
    /* Neither a client nor a key admin gets a token for IAM's admin API
       (docs/iam.md, token audiences); the key admin gets the KMS's. */
    char *none = iamh_token_for(&H, "acme", kc, "iam");
    assert_null(none);
    none = iamh_token_for(&H, "acme", kk, "iam");
    assert_null(none);
    char *tkk = iamh_token_for(&H, "acme", kk, "kms");
    assert_non_null(tkk);
    char *tc = iamh_token(&H, "acme", kc);
    char *tk = iamh_token(&H, "acme", kk);
    assert_non_null(tc);
    assert_non_null(tk);
    /* A client cannot create principals, keys, or rotate signing keys:
       its gateway token is not an IAM token. */
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals", tc,
              "{\"principal_id\":\"evil\",\"kind\":\"user\",\"roles\":[\"tenant-admin\"]}", &r);
    assert_int_equal(401, r.status);
    assert_string_equal("invalid_token", iamh_err_code(&r));
    iamh_resp_free(&r);
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals/app1/api-keys", tc, NULL,
              &r);
    assert_int_equal(401, r.status);
    iamh_resp_free(&r);
    iamh_call(&H, "gateway", "POST", "/v1/iam/signing-keys/rotate", tc, NULL, &r);
    assert_int_equal(401, r.status);
    iamh_resp_free(&r);
    /* The key admin cannot grant itself roles, with either token. */
    iamh_call(&H, "gateway", "PUT", "/v1/iam/tenants/acme/principals/kadm/roles", tk,
              "{\"roles\":[\"tenant-admin\"]}", &r);
    assert_int_equal(401, r.status);
    iamh_resp_free(&r);
    iamh_call(&H, "gateway", "PUT", "/v1/iam/tenants/acme/principals/kadm/roles", tkk,
              "{\"roles\":[\"tenant-admin\"]}", &r);
    assert_int_equal(401, r.status);
    iamh_resp_free(&r);
    free(tkk);
    /* A tenant admin cannot create tenants (platform-admin only) ... */
    char *k2 = NULL;
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants/acme/principals", t,
              "{\"principal_id\":\"ta\",\"kind\":\"user\",\"roles\":[\"tenant-admin\"]}", &r);
    assert_int_equal(201, r.status);
    iamh_resp_free(&r);
    k2 = new_api_key(t, "acme", "ta", NULL);
    char *tt = iamh_token(&H, "acme", k2);
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants", tt, "{\"tenant_id\":\"gamma\"}", &r);
    assert_int_equal(403, r.status);
    iamh_resp_free(&r);
    /* ... nor hand out platform-admin. */
    iamh_call(&H, "gateway", "PUT", "/v1/iam/tenants/acme/principals/ta/roles", tt,
              "{\"roles\":[\"platform-admin\"]}", &r);
    assert_int_equal(400, r.status);
    iamh_resp_free(&r);
    /* An anonymous token administers nothing. */
    free(t);
    free(tc);
    free(tk);
    free(tt);
    free(kc);
    free(kk);
    free(k2);
}

static void test_anonymous_policy(void **state)
{
    (void)state;
    iamh_resp r;
    /* Closed by default. */
    iamh_call(&H, "gateway", "POST", "/v1/iam/authenticate", NULL, "{\"tenant_id\":\"acme\"}",
              &r);
    assert_int_equal(401, r.status);
    assert_string_equal("anonymous_not_allowed", iamh_err_code(&r));
    iamh_resp_free(&r);
    assert_int_equal(0, authorize("acme", "anonymous", "jobs.run", "summarize", NULL, 0));
    char *t = admin_token();
    iamh_call(&H, "gateway", "PUT", "/v1/iam/tenants/acme/anonymous", t,
              "{\"allowed\":true,\"jobs\":[\"summarize\"]}", &r);
    assert_int_equal(200, r.status);
    iamh_resp_free(&r);
    char *at = iamh_token(&H, "acme", NULL);
    assert_non_null(at);
    json_t *claims = NULL;
    assert_luna_ok(verify(at, &claims, NULL));
    assert_string_equal("anonymous", json_string_value(json_object_get(claims, "principal")));
    assert_string_equal("anonymous", json_string_value(json_object_get(claims, "auth")));
    assert_int_equal(0, (int)json_array_size(json_object_get(claims, "roles")));
    assert_string_equal("summarize",
                        json_string_value(json_array_get(json_object_get(claims, "jobs"), 0)));
    json_decref(claims);
    assert_int_equal(1, authorize("acme", "anonymous", "jobs.run", "summarize", NULL, 0));
    assert_int_equal(0, authorize("acme", "anonymous", "jobs.run", "train", NULL, 0));
    assert_int_equal(0, authorize("acme", "anonymous", "audit.read", NULL, NULL, 0));
    /* An anonymous token is no admin token. */
    iamh_call(&H, "gateway", "GET", "/v1/iam/tenants/acme", at, NULL, &r);
    assert_int_equal(401, r.status);
    iamh_resp_free(&r);
    /* Another tenant's policy is its own. */
    iamh_call(&H, "gateway", "POST", "/v1/iam/authenticate", NULL, "{\"tenant_id\":\"nope\"}",
              &r);
    assert_int_equal(401, r.status);
    iamh_resp_free(&r);
    /* Closing it again takes effect at once. */
    iamh_call(&H, "gateway", "PUT", "/v1/iam/tenants/acme/anonymous", t, "{\"allowed\":false}",
              &r);
    assert_int_equal(200, r.status);
    iamh_resp_free(&r);
    assert_null(iamh_token(&H, "acme", NULL));
    assert_int_equal(0, authorize("acme", "anonymous", "jobs.run", "summarize", NULL, 0));
    free(at);
    free(t);
}

static bool jwks_has(const char *kid)
{
    char *doc = iamh_jwks(&H);
    luna_jws_keyset *ks = NULL;
    assert_luna_ok(luna_jws_keyset_load(doc, strlen(doc), &ks));
    free(doc);
    uint8_t pk[32];
    bool found = luna_jws_keyset_find(ks, kid, pk) == LUNA_OK;
    luna_jws_keyset_free(ks);
    return found;
}

static void token_kid(const char *token, char kid[LUNA_JWS_MAX_KID_LEN + 1])
{
    json_t *claims = NULL;
    assert_luna_ok(verify(token, &claims, kid));
    json_decref(claims);
}

static void test_key_rollover(void **state)
{
    (void)state;
    char kid_a[LUNA_JWS_MAX_KID_LEN + 1], kid[LUNA_JWS_MAX_KID_LEN + 1];
    char *old = admin_token();
    token_kid(old, kid_a);
    iamh_resp r;
    assert_int_equal(201, admin_post("/v1/iam/signing-keys/rotate", NULL, &r));
    char *kid_b = strdup(json_string_value(json_object_get(r.body, "kid")));
    iamh_resp_free(&r);
    assert_string_not_equal(kid_a, kid_b);
    /* Published before use: B is in the set, tokens still carry A. */
    assert_true(jwks_has(kid_a));
    assert_true(jwks_has(kid_b));
    char *t1 = admin_token();
    token_kid(t1, kid);
    assert_string_equal(kid_a, kid);
    char *last_a = t1;
    sleep(PUBLISH_DELAY + 1);
    /* Now B signs; A's last token still verifies with the published set. */
    char *t2 = admin_token();
    token_kid(t2, kid);
    assert_string_equal(kid_b, kid);
    json_t *claims = NULL;
    assert_luna_ok(verify(last_a, &claims, kid));
    assert_string_equal(kid_a, kid);
    json_decref(claims);
    assert_true(jwks_has(kid_a));
    /* Once A's tokens have all expired, A leaves the set. */
    sleep(TTL + 1);
    assert_false(jwks_has(kid_a));
    assert_true(jwks_has(kid_b));
    char *t3 = admin_token();
    token_kid(t3, kid);
    assert_string_equal(kid_b, kid);
    free(old);
    free(t1);
    free(t2);
    free(t3);
    free(kid_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_once),
        cmocka_unit_test(test_authenticate_and_verify),
        cmocka_unit_test(test_wrong_caller_identity),
        cmocka_unit_test(test_api_key_lifecycle),
        cmocka_unit_test(test_revoked_admin_key_stops_admin_calls),
        cmocka_unit_test(test_principal_kinds),
        cmocka_unit_test(test_authorize_roles),
        cmocka_unit_test(test_admin_role_boundaries),
        cmocka_unit_test(test_anonymous_policy),
        cmocka_unit_test(test_key_rollover),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    if (server_exit != 0) {
        fprintf(stderr, "luna-iam exited with %d after SIGTERM\n", server_exit);
        return 1;
    }
    return failed;
}
