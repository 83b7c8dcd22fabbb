/*
 * e2e.kms_keys - tenant keys against the real luna-kms (SoftHSM2, SQLite):
 * rotation by schedule with old versions still decrypting, the minimum
 * decryption version, disable/enable, instant revoke, destroy after the
 * retention window, role checks, tenant isolation and audit entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kms_harness.h"
#include "luna/bytes.h"
#include "luna/hpke.h"
#include "luna_test.h"

static int setup(void **state)
{
    kmsh *h = calloc(1, sizeof(*h));
    kmsh_setup(h, ",\"destroy_retention_sec\":1");
    kmsh_start(h);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    kmsh *h = *state;
    kmsh_teardown(h);
    free(h);
    return 0;
}

static int post(kmsh *h, const char *tok, const char *path, const char *body, kmsh_resp *r)
{
    assert_int_equal(0, kmsh_call(h, "gateway", "POST", path, tok, body, r));
    return r->status;
}

static int64_t jint(const kmsh_resp *r, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(r->body, k));
}

/* A data key under the current version: (version, sealed form, plaintext). */
static int64_t datakey(kmsh *h, const char *tok, const char *key, uint8_t sealed[60],
                       uint8_t plain[32])
{
    uint8_t sk[32], pk[32], to_me[80];
    char pkb[64], body[128], path[128];
    size_t n = 0;
    kmsh_resp r;
    assert_luna_ok(luna_hpke_generate_keypair(sk, pk));
    assert_luna_ok(luna_b64url_encode(pk, 32, pkb, sizeof(pkb)));
    snprintf(body, sizeof(body), "{\"recipient_pk\":\"%s\"}", pkb);
    snprintf(path, sizeof(path), "/v1/kms/keys/%s/datakey", key);
    assert_int_equal(200, post(h, tok, path, body, &r));
    int64_t v = jint(&r, "version");
    assert_true(kmsh_b64(r.body, "sealed_key", sealed, 60, &n) && n == 60);
    assert_true(kmsh_b64(r.body, "sealed_to_recipient", to_me, 80, &n) && n == 80);
    kmsh_resp_free(&r);
    /* info = the AAD the KMS used: lp("lunal kms data key v1") ... */
    uint8_t info[256];
    size_t off = 0;
    const char *parts[] = {"lunal kms data key v1", "acme", key};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        info[off++] = (uint8_t)(l >> 8);
        info[off++] = (uint8_t)l;
        memcpy(info + off, parts[i], l);
        off += l;
    }
    for (int i = 7; i >= 0; i--)
        info[off++] = (uint8_t)((uint64_t)v >> (8 * i));
    luna_hpke_params p = {
        .suite = {LUNA_HPKE_KEM_X25519_SHA256, LUNA_HPKE_KDF_HKDF_SHA256,
                  LUNA_HPKE_AEAD_AES256GCM},
        .mode = LUNA_HPKE_MODE_BASE,
        .info = info,
        .info_len = off,
    };
    luna_hpke_ctx *ctx = NULL;
    assert_luna_ok(luna_hpke_setup_receiver(&p, sk, to_me, NULL, &ctx));
    assert_luna_ok(luna_hpke_open(ctx, NULL, 0, to_me + 32, 48, plain));
    luna_hpke_ctx_free(ctx);
    return v;
}

/* Decrypt (re-seal to a new recipient); returns the status. */
static int decrypt(kmsh *h, const char *tok, const char *key, int64_t version,
                   const uint8_t sealed[60], char *code, size_t code_cap)
{
    uint8_t sk[32], pk[32];
    char pkb[64], sb[100], body[256], path[128];
    kmsh_resp r;
    assert_luna_ok(luna_hpke_generate_keypair(sk, pk));
    assert_luna_ok(luna_b64url_encode(pk, 32, pkb, sizeof(pkb)));
    assert_luna_ok(luna_b64url_encode(sealed, 60, sb, sizeof(sb)));
    snprintf(body, sizeof(body),
             "{\"recipient_pk\":\"%s\",\"version\":%lld,\"sealed_key\":\"%s\"}", pkb,
             (long long)version, sb);
    snprintf(path, sizeof(path), "/v1/kms/keys/%s/decrypt", key);
    int st = post(h, tok, path, body, &r);
    if (code != NULL)
        snprintf(code, code_cap, "%s", r.code);
    kmsh_resp_free(&r);
    return st;
}

static void test_rotation_schedule_and_min_version(void **state)
{
    kmsh *h = *state;
    char *admin = kmsh_token(h, "acme", "key-admin");
    kmsh_resp r;
    assert_int_equal(201, post(h, admin, "/v1/kms/keys",
                               "{\"key_id\":\"files\",\"rotation_period_sec\":1}", &r));
    assert_int_equal(1, jint(&r, "current_version"));
    kmsh_resp_free(&r);
    uint8_t s1[60], p1[32];
    assert_int_equal(1, datakey(h, admin, "files", s1, p1));

    /* The worker rotates it on schedule (tick 200 ms, period 1 s). */
    int64_t v = 1;
    for (int i = 0; i < 60 && v < 3; i++) {
        usleep(100 * 1000);
        assert_int_equal(0, kmsh_call(h, "gateway", "GET", "/v1/kms/keys/files", admin, NULL, &r));
        assert_int_equal(200, r.status);
        v = jint(&r, "current_version");
        kmsh_resp_free(&r);
    }
    assert_true(v >= 3);
    assert_true(kmsh_audit_count(h, "key.rotate.scheduled") >= 2);
    uint8_t s2[60], p2[32];
    int64_t v2 = datakey(h, admin, "files", s2, p2);
    assert_true(v2 >= 3);
    /* Old version still decrypts. */
    assert_int_equal(200, decrypt(h, admin, "files", 1, s1, NULL, 0));
    /* A sealed key presented under another version does not open. */
    char code[64];
    assert_int_equal(403, decrypt(h, admin, "files", 2, s1, code, sizeof(code)));
    assert_string_equal("sealed_key_invalid", code);
    /* Minimum decryption version. */
    char body[64];
    snprintf(body, sizeof(body), "{\"min_decrypt_version\":%lld}", (long long)v2);
    assert_int_equal(200, post(h, admin, "/v1/kms/keys/files/min-version", body, &r));
    kmsh_resp_free(&r);
    assert_int_equal(403, decrypt(h, admin, "files", 1, s1, code, sizeof(code)));
    assert_string_equal("version_below_minimum", code);
    assert_int_equal(200, decrypt(h, admin, "files", v2, s2, NULL, 0));
    free(admin);
}

static void test_disable_revoke_destroy(void **state)
{
    kmsh *h = *state;
    char *admin = kmsh_token(h, "acme", "key-admin");
    char *client = kmsh_token(h, "acme", "client");
    char code[64];
    kmsh_resp r;
    assert_int_equal(201, post(h, admin, "/v1/kms/keys", "{\"key_id\":\"k2\"}", &r));
    kmsh_resp_free(&r);
    uint8_t s1[60], p1[32];
    assert_int_equal(1, datakey(h, client, "k2", s1, p1));
    /* A client may use, not manage. */
    assert_int_equal(403, post(h, client, "/v1/kms/keys/k2/rotate", NULL, &r));
    kmsh_resp_free(&r);
    /* Manual rotation. */
    assert_int_equal(200, post(h, admin, "/v1/kms/keys/k2/rotate", NULL, &r));
    assert_int_equal(2, jint(&r, "current_version"));
    kmsh_resp_free(&r);
    /* Disable / enable. */
    assert_int_equal(200, post(h, admin, "/v1/kms/keys/k2/disable", NULL, &r));
    kmsh_resp_free(&r);
    assert_int_equal(403, decrypt(h, client, "k2", 1, s1, code, sizeof(code)));
    assert_string_equal("key_disabled", code);
    assert_int_equal(200, post(h, admin, "/v1/kms/keys/k2/enable", NULL, &r));
    kmsh_resp_free(&r);
    assert_int_equal(200, decrypt(h, client, "k2", 1, s1, NULL, 0));
    /* Another tenant sees nothing of it. */
    char *other = kmsh_token(h, "beta", "key-admin");
    assert_int_equal(404, decrypt(h, other, "k2", 1, s1, code, sizeof(code)));
    assert_string_equal("key_not_found", code);
    free(other);
    /* Revoke takes effect on the very next request. */
    assert_int_equal(200, post(h, admin, "/v1/kms/keys/k2/revoke", NULL, &r));
    kmsh_resp_free(&r);
    assert_int_equal(403, decrypt(h, client, "k2", 1, s1, code, sizeof(code)));
    assert_string_equal("key_revoked", code);
    assert_int_equal(409, post(h, admin, "/v1/kms/keys/k2/enable", NULL, &r));
    kmsh_resp_free(&r);
    /* Destroy after retention (1 s here): the versions are gone. */
    assert_int_equal(200, post(h, admin, "/v1/kms/keys/k2/destroy", NULL, &r));
    assert_string_equal("destroy_pending",
                        json_string_value(json_object_get(r.body, "state")));
    kmsh_resp_free(&r);
    const char *state_now = "";
    for (int i = 0; i < 50; i++) {
        usleep(100 * 1000);
        assert_int_equal(0, kmsh_call(h, "gateway", "GET", "/v1/kms/keys/k2", admin, NULL, &r));
        state_now = json_string_value(json_object_get(r.body, "state"));
        bool done = state_now != NULL && strcmp(state_now, "destroyed") == 0;
        kmsh_resp_free(&r);
        if (done)
            break;
    }
    assert_int_equal(0, kmsh_call(h, "gateway", "GET", "/v1/kms/keys/k2", admin, NULL, &r));
    assert_string_equal("destroyed", json_string_value(json_object_get(r.body, "state")));
    kmsh_resp_free(&r);
    assert_int_equal(1, kmsh_audit_count(h, "\"operation\":\"key.destroy\""));
    assert_int_equal(1, kmsh_audit_count(h, "\"operation\":\"key.revoke\""));
    free(admin);
    free(client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_schedule_and_min_version),
        cmocka_unit_test(test_disable_revoke_destroy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
