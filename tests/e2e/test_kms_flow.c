/*
 * e2e.kms_flow - the one-time key flow of DESIGN.md section 3 (steps 4-6)
 * against the real luna-kms process with SoftHSM2 and SQLite: the client
 * gets its OTK sealed to its own key, the TEE gets the same OTK sealed to
 * its attested key after both verifications, exactly once; registry and
 * audit are checked on the way.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms_harness.h"
#include "luna/bytes.h"
#include "luna/hpke.h"
#include "luna_test.h"

static int setup(void **state)
{
    kmsh *h = calloc(1, sizeof(*h));
    kmsh_setup(h, NULL);
    kmsh_start(h);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    kmsh *h = *state;
    /* A clean shutdown (under the sanitizers: no leak, no error). */
    int rc = kmsh_stop(h, SIGTERM);
    kmsh_teardown(h);
    free(h);
    assert_int_equal(0, rc);
    return 0;
}

static void test_flow(void **state)
{
    kmsh *h = *state;
    kmsh_tee t;
    kmsh_tee_new(h, "tee-flow", &t);
    kmsh_admit(h, &t, "[\"acme\"]");
    char *tok = kmsh_token(h, "acme", "client");
    uint8_t csk[32], cpk[32], sealed[80], k_client[32], k_tee[32];
    char otk[64];
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(200, kmsh_issue(h, tok, t.id, "summarize", "req-1", cpk, otk, sealed, NULL));
    assert_true(kmsh_open_client(csk, otk, t.id, "req-1", sealed, k_client));

    kmsh_resp r;
    assert_int_equal(200, kmsh_release_honest(h, &t, otk, &r));
    size_t n = 0;
    uint8_t to_tee[80], got_pk[32];
    assert_true(kmsh_b64(r.body, "sealed_otk", to_tee, sizeof(to_tee), &n));
    assert_int_equal(80, n);
    assert_true(kmsh_open_tee(&t, otk, to_tee, k_tee));
    assert_memory_equal(k_client, k_tee, 32);
    assert_true(kmsh_b64(r.body, "client_pk", got_pk, sizeof(got_pk), &n));
    assert_memory_equal(cpk, got_pk, 32);
    assert_string_equal("acme", json_string_value(json_object_get(r.body, "tenant")));
    assert_string_equal("summarize", json_string_value(json_object_get(r.body, "job")));
    assert_string_equal("req-1", json_string_value(json_object_get(r.body, "request_id")));
    kmsh_resp_free(&r);

    /* Once only. */
    assert_int_equal(409, kmsh_release_honest(h, &t, otk, &r));
    kmsh_resp_free(&r);
    /* The challenge itself is refused for a released key. */
    uint8_t nonce[32];
    assert_int_equal(409, kmsh_challenge(h, &t, t.id, otk, nonce));

    /* Audit: issue and release recorded, with the OTK id and never the key. */
    assert_int_equal(1, kmsh_audit_count(h, "\"operation\":\"otk.issue\""));
    assert_true(kmsh_audit_count(h, "\"operation\":\"otk.release\",\"objects\":") >= 1);
    assert_int_equal(1, kmsh_audit_count(h, "\"outcome\":\"success\",\"reason\":\"\",\"request_id\"") >= 1);
    char hex[65];
    assert_luna_ok(luna_hex_encode(k_client, 32, hex, sizeof(hex)));
    assert_int_equal(0, kmsh_audit_count(h, hex));

    /* The registry answers for the TEE, with its attested key. */
    char *op = kmsh_token(h, "acme", "operator");
    assert_int_equal(0, kmsh_call(h, "operator", "GET", "/v1/kms/tees/tee-flow", op, NULL, &r));
    assert_int_equal(200, r.status);
    assert_string_equal("active", json_string_value(json_object_get(r.body, "status")));
    kmsh_resp_free(&r);
    free(op);
    free(tok);
}

static void test_replayed_request_id(void **state)
{
    kmsh *h = *state;
    kmsh_tee t;
    kmsh_tee_new(h, "tee-rid", &t);
    kmsh_admit(h, &t, "[\"acme\"]");
    char *tok = kmsh_token(h, "acme", "client");
    uint8_t csk[32], cpk[32], sealed[80];
    char otk[64];
    kmsh_resp r;
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(200, kmsh_issue(h, tok, t.id, "j", "req-dup", cpk, otk, sealed, NULL));
    assert_int_equal(409, kmsh_issue(h, tok, t.id, "j", "req-dup", cpk, otk, sealed, &r));
    assert_string_equal("request_replayed", r.code);
    kmsh_resp_free(&r);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow),
        cmocka_unit_test(test_replayed_request_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
