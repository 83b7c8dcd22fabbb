/*
 * test_iam_escalation.c - the real luna-iam process attacked from inside a
 * tenant: a tenant-admin minting keys for, disabling, or changing the
 * roles of a principal that holds more than it does (the platform admin
 * above all), granting itself roles, handing out roles it lacks; the last
 * platform admin locked out; a bootstrap whose key cannot be written; one
 * unreadable signing key row freezing the published key set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iam_harness.h"
#include "luna/store.h"
#include "luna_test.h"

static iamh H;

static int call(const char *method, const char *path, const char *token, const char *body,
                char *code, size_t cap)
{
    iamh_resp r;
    iamh_call(&H, "gateway", method, path, token, body, &r);
    int st = r.status;
    if (code != NULL)
        snprintf(code, cap, "%s", iamh_err_code(&r));
    iamh_resp_free(&r);
    return st;
}

/* POST .../api-keys as token; the new key (malloc'd) or NULL, status in *st. */
static char *mint(const char *token, const char *tenant, const char *principal, int *st)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/iam/tenants/%s/principals/%s/api-keys", tenant, principal);
    iamh_resp r;
    iamh_call(&H, "gateway", "POST", path, token, NULL, &r);
    *st = r.status;
    const char *k = json_string_value(json_object_get(r.body, "api_key"));
    char *out = (r.status == 201 && k != NULL) ? strdup(k) : NULL;
    iamh_resp_free(&r);
    return out;
}

static void test_tenant_admin_cannot_outrank(void **state)
{
    (void)state;
    iamh_start(&H, 60, 300);
    char *t = iamh_token(&H, "acme", H.admin_key);
    assert_non_null(t);
    char code[64];
    int st;
    assert_int_equal(201, call("POST", "/v1/iam/tenants/acme/principals", t,
                               "{\"principal_id\":\"alice\",\"kind\":\"user\","
                               "\"roles\":[\"tenant-admin\"]}",
                               NULL, 0));
    assert_int_equal(201, call("POST", "/v1/iam/tenants/acme/principals", t,
                               "{\"principal_id\":\"bob\",\"kind\":\"user\","
                               "\"roles\":[\"tenant-admin\"]}",
                               NULL, 0));
    assert_int_equal(201, call("POST", "/v1/iam/tenants/acme/principals", t,
                               "{\"principal_id\":\"app1\",\"kind\":\"client\"}", NULL, 0));
    char *ka = mint(t, "acme", "alice", &st);
    assert_non_null(ka);
    char *ta = iamh_token(&H, "acme", ka);
    assert_non_null(ta);

    /* H1: no key for the platform admin, no disabling it, no revoking its key. */
    char *stolen = mint(ta, "acme", "admin", &st);
    assert_null(stolen);
    assert_int_equal(403, st);
    assert_int_equal(403, call("DELETE", "/v1/iam/tenants/acme/principals/admin", ta, NULL, code,
                               sizeof(code)));
    assert_string_equal("insufficient_roles", code);
    char path[256];
    snprintf(path, sizeof(path), "/v1/iam/tenants/acme/principals/admin/api-keys/%.16s",
             H.admin_key + 4);
    assert_int_equal(403, call("DELETE", path, ta, NULL, code, sizeof(code)));
    assert_string_equal("insufficient_roles", code);
    assert_int_equal(403, call("PUT", "/v1/iam/tenants/acme/principals/admin/roles", ta,
                               "{\"roles\":[]}", code, sizeof(code)));
    /* ... nor impersonate a principal holding a role alice lacks. */
    char *kapp = mint(ta, "acme", "app1", &st);
    assert_null(kapp);
    assert_int_equal(403, st);
    assert_int_equal(403, call("POST", "/v1/iam/tenants/acme/principals/app1/client-keys", ta,
                               NULL, NULL, 0));
    /* A principal alice covers, and alice herself, are fine. */
    char *kb = mint(ta, "acme", "bob", &st);
    assert_non_null(kb);
    char *ka2 = mint(ta, "acme", "alice", &st);
    assert_non_null(ka2);
    snprintf(path, sizeof(path), "/v1/iam/tenants/acme/principals/alice/api-keys/%.16s", ka2 + 4);
    assert_int_equal(200, call("DELETE", path, ta, NULL, NULL, 0));
    /* The platform admin is untouched and still administers. */
    assert_int_equal(200, call("GET", "/v1/iam/tenants/acme/principals/admin", t, NULL, NULL, 0));
    char *again = iamh_token(&H, "acme", H.admin_key);
    assert_non_null(again);

    /* M1: no role change on oneself, no granting a role one lacks. */
    assert_int_equal(403, call("PUT", "/v1/iam/tenants/acme/principals/alice/roles", ta,
                               "{\"roles\":[\"tenant-admin\",\"key-admin\",\"client\","
                               "\"auditor\"]}",
                               code, sizeof(code)));
    assert_string_equal("self_role_change", code);
    assert_int_equal(403, call("PUT", "/v1/iam/tenants/acme/principals/bob/roles", ta,
                               "{\"roles\":[\"tenant-admin\",\"key-admin\"]}", code,
                               sizeof(code)));
    assert_string_equal("insufficient_roles", code);
    assert_int_equal(403, call("POST", "/v1/iam/tenants/acme/principals", ta,
                               "{\"principal_id\":\"puppet\",\"kind\":\"user\","
                               "\"roles\":[\"client\"]}",
                               code, sizeof(code)));
    assert_string_equal("insufficient_roles", code);
    assert_int_equal(403, call("POST", "/v1/iam/tenants/acme/principals", ta,
                               "{\"principal_id\":\"puppet\",\"kind\":\"client\"}", NULL, 0));
    /* The platform admin may grant; then bob outranks alice. */
    assert_int_equal(200, call("PUT", "/v1/iam/tenants/acme/principals/bob/roles", t,
                               "{\"roles\":[\"tenant-admin\",\"auditor\"]}", NULL, 0));
    char *kb2 = mint(ta, "acme", "bob", &st);
    assert_null(kb2);
    assert_int_equal(403, st);
    /* Even the platform admin cannot set its own roles. */
    assert_int_equal(403, call("PUT", "/v1/iam/tenants/acme/principals/admin/roles", t,
                               "{\"roles\":[\"tenant-admin\",\"client\"]}", code, sizeof(code)));
    assert_string_equal("self_role_change", code);

    /* The last platform admin cannot be disabled, not even by itself. */
    assert_int_equal(409, call("DELETE", "/v1/iam/tenants/acme/principals/admin", t, NULL, code,
                               sizeof(code)));
    assert_string_equal("last_platform_admin", code);
    assert_int_equal(200, call("GET", "/v1/iam/tenants/acme", t, NULL, NULL, 0));
    free(again);
    free(kb);
    free(ka2);
    free(ka);
    free(ta);
    free(t);
    assert_int_equal(0, iamh_stop(&H));
}

static void test_new_tenant_owner_delegates(void **state)
{
    (void)state;
    iamh_start(&H, 60, 300);
    char *t = iamh_token(&H, "acme", H.admin_key);
    assert_non_null(t);
    iamh_resp r;
    iamh_call(&H, "gateway", "POST", "/v1/iam/tenants", t, "{\"tenant_id\":\"beta\"}", &r);
    assert_int_equal(201, r.status);
    char *kroot = strdup(json_string_value(json_object_get(r.body, "api_key")));
    iamh_resp_free(&r);
    char *troot = iamh_token(&H, "beta", kroot);
    assert_non_null(troot);
    int st;
    /* The owner holds every tenant role, so it sets up clients ... */
    assert_int_equal(201, call("POST", "/v1/iam/tenants/beta/principals", troot,
                               "{\"principal_id\":\"app\",\"kind\":\"client\"}", NULL, 0));
    char *kapp = mint(troot, "beta", "app", &st);
    assert_non_null(kapp);
    /* ... and delegates administration without its other powers. */
    assert_int_equal(201, call("POST", "/v1/iam/tenants/beta/principals", troot,
                               "{\"principal_id\":\"sub\",\"kind\":\"user\","
                               "\"roles\":[\"tenant-admin\"]}",
                               NULL, 0));
    char *ksub = mint(troot, "beta", "sub", &st);
    assert_non_null(ksub);
    char *tsub = iamh_token(&H, "beta", ksub);
    assert_non_null(tsub);
    char *x = mint(tsub, "beta", "app", &st);
    assert_null(x);
    assert_int_equal(403, st);
    x = mint(tsub, "beta", "admin", &st);
    assert_null(x);
    assert_int_equal(403, st);
    assert_int_equal(403, call("DELETE", "/v1/iam/tenants/beta/principals/admin", tsub, NULL,
                               NULL, 0));
    assert_int_equal(403, call("PUT", "/v1/iam/tenants/beta/principals/sub/roles", tsub,
                               "{\"roles\":[\"tenant-admin\",\"client\"]}", NULL, 0));
    free(tsub);
    free(ksub);
    free(kapp);
    free(troot);
    free(kroot);
    free(t);
    assert_int_equal(0, iamh_stop(&H));
}

static void test_bootstrap_key_not_written_can_rerun(void **state)
{
    (void)state;
    iamh_prepare(&H, 60, 300);
    char bad[HTU_PATH_MAX + 32], good[HTU_PATH_MAX + 32];
    htu_path(&H.env, "nodir", "", bad, sizeof(bad));
    strncat(bad, "/key", sizeof(bad) - strlen(bad) - 1);
    htu_path(&H.env, "admin", ".apikey", good, sizeof(good));
    /* --out in a folder that does not exist: refused, nothing kept. */
    assert_int_equal(1, iamh_bootstrap_run(&H, "acme", bad, false));
    /* stdout that cannot take the key: refused and undone. */
    assert_int_equal(1, iamh_bootstrap_run(&H, "acme", NULL, true));
    assert_int_not_equal(0, access(good, F_OK));
    /* So bootstrap still works, and its key is the platform admin's. */
    assert_int_equal(0, iamh_bootstrap_run(&H, "acme", good, false));
    size_t len = 0;
    uint8_t *k = luna_test_read_file(good, &len);
    assert_int_equal(65, (int)len);
    memcpy(H.admin_key, k, 64);
    H.admin_key[64] = '\0';
    free(k);
    iamh_serve(&H);
    char *t = iamh_token(&H, "acme", H.admin_key);
    assert_non_null(t);
    assert_int_equal(201, call("POST", "/v1/iam/tenants", t, "{\"tenant_id\":\"gamma\"}", NULL,
                               0));
    free(t);
    assert_int_equal(0, iamh_stop(&H));
}

static bool jwks_has(const char *kid)
{
    char *doc = iamh_jwks(&H);
    assert_non_null(doc);
    char needle[80];
    snprintf(needle, sizeof(needle), "\"%s\"", kid);
    bool found = strstr(doc, needle) != NULL;
    free(doc);
    return found;
}

static void test_unreadable_ring_row_does_not_freeze_rollover(void **state)
{
    (void)state;
    /* token ttl 2 s, publish delay 1 s, skew 0, refresh every second. */
    iamh_start(&H, 2, 1);
    char *doc = iamh_jwks(&H);
    json_t *j = json_loads(doc, 0, NULL);
    free(doc);
    assert_non_null(j);
    assert_int_equal(1, (int)json_array_size(json_object_get(j, "keys")));
    char old_kid[64];
    snprintf(old_kid, sizeof(old_kid), "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(j, "keys"), 0),
                                               "kid")));
    json_decref(j);
    /* The old key still leaves once its tokens expired. */
    char *t = iamh_token(&H, "acme", H.admin_key);
    assert_non_null(t);
    assert_int_equal(201, call("POST", "/v1/iam/signing-keys/rotate", t, NULL, NULL, 0));
    free(t);
    /* Then a live row whose seed does not open (tampered or corrupt store):
       every later refresh meets it. */
    char url[HTU_PATH_MAX + 16];
    snprintf(url, sizeof(url), "sqlite:%s", H.db);
    luna_store *db = NULL;
    assert_luna_ok(luna_store_open(url, NULL, &db));
    uint8_t junk[60], pk[32];
    memset(junk, 0x5a, sizeof(junk));
    memset(pk, 0x11, sizeof(pk));
    int64_t now = (int64_t)time(NULL);
    const luna_store_param p[] = {luna_store_p_blob(pk, sizeof(pk)),
                                  luna_store_p_blob(junk, sizeof(junk)), luna_store_p_int64(now),
                                  luna_store_p_int64(now + 100000)};
    assert_luna_ok(luna_store_exec(db,
                                   "INSERT INTO iam_signing_keys (kid, public_key, sealed_seed, "
                                   "created_at, activate_at) VALUES ('iam-badbadbadbadbadba', "
                                   "?1, ?2, ?3, ?4)",
                                   p, 4, NULL));
    luna_store_close(db);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        usleep(100000);
        gone = !jwks_has(old_kid);
    }
    assert_true(gone);
    assert_false(jwks_has("iam-badbadbadbadbadba"));
    /* And tokens are still issued (by the new key). */
    t = iamh_token(&H, "acme", H.admin_key);
    assert_non_null(t);
    free(t);
    assert_int_equal(0, iamh_stop(&H));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tenant_admin_cannot_outrank),
        cmocka_unit_test(test_new_tenant_owner_delegates),
        cmocka_unit_test(test_bootstrap_key_not_written_can_rerun),
        cmocka_unit_test(test_unreadable_ring_row_does_not_freeze_rollover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
