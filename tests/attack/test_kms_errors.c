/*
 * test_kms_errors.c - attack.kms_errors: issue 4's "bad input" list against
 * the real luna-kms, in one table: unknown TEE, unknown OTK, unknown key,
 * a tenant the TEE does not serve (and a tenant the KMS never saw),
 * replayed request id, expired OTK, malformed evidence.  Each answer is a
 * JSON error {"error":{"code","message"}} whose code is the one documented
 * in docs/kms.md, the codes of different faults are distinct, and the OTK
 * the bad calls aimed at is still released exactly once afterwards
 * (nothing released, nothing lost).  HSM down, audit down and database
 * down are fault.kms_fault and fault.kms_db_down(_pg).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms_harness.h"
#include "luna/crypto.h"
#include "luna/hpke.h"
#include "luna/store.h"
#include "luna_test.h"

typedef struct seen {
    const char *fault;
    char code[64];
} seen;

static seen g_seen[16];
static size_t g_n;

/* Records and checks one refusal: status, code, a message, JSON shape. */
static void expect(const char *fault, int status, const kmsh_resp *r, int want_status,
                   const char *want_code)
{
    if (status != want_status || strcmp(r->code, want_code) != 0)
        fail_msg("%s: got %d %s, want %d %s", fault, status, r->code, want_status, want_code);
    const json_t *e = json_object_get(r->body, "error");
    assert_non_null(e);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    assert_true(g_n < sizeof(g_seen) / sizeof(g_seen[0]));
    g_seen[g_n].fault = fault;
    snprintf(g_seen[g_n].code, sizeof(g_seen[g_n].code), "%s", r->code);
    g_n++;
}

static void test_bad_inputs(void **state)
{
    (void)state;
    kmsh h;
    kmsh_setup(&h, NULL);
    kmsh_start(&h);
    kmsh_tee t;
    kmsh_tee_new(&h, "err-tee", &t);
    kmsh_admit(&h, &t, "[\"acme\"]");
    char *tok = kmsh_token(&h, "acme", "client,key-admin");
    uint8_t csk[32], cpk[32], sealed[80], nonce[32];
    char otk[64], otk2[64];
    kmsh_resp r;
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(200, kmsh_issue(&h, tok, t.id, "j", "err-1", cpk, otk, sealed, NULL));

    int st = kmsh_issue(&h, tok, "no-such-tee", "j", "err-2", cpk, otk2, sealed, &r);
    expect("unknown TEE", st, &r, 404, "tee_not_found");
    kmsh_resp_free(&r);

    assert_int_equal(0, kmsh_call(&h, t.cert, "POST", "/v1/kms/otk/challenge", NULL,
                                  "{\"tee_id\":\"err-tee\",\"otk_id\":\"otk_AAAAAAAAAAAAAAAAAAAAAA\"}",
                                  &r));
    expect("unknown OTK", r.status, &r, 404, "otk_not_found");
    kmsh_resp_free(&r);

    assert_int_equal(0, kmsh_call(&h, "gateway", "GET", "/v1/kms/keys/no-such-key", tok, NULL, &r));
    expect("unknown key", r.status, &r, 404, "key_not_found");
    kmsh_resp_free(&r);

    char *other = kmsh_token(&h, "beta", "client");
    st = kmsh_issue(&h, other, t.id, "j", "err-3", cpk, otk2, sealed, &r);
    expect("wrong tenant", st, &r, 403, "tee_wrong_tenant");
    kmsh_resp_free(&r);
    free(other);
    /* A tenant the KMS never saw is, to it, just another tenant: the same
       answer, so the code is no oracle for which tenants exist. */
    char *ghost = kmsh_token(&h, "ghost-tenant", "client");
    st = kmsh_issue(&h, ghost, t.id, "j", "err-4", cpk, otk2, sealed, &r);
    assert_int_equal(403, st);
    assert_string_equal("tee_wrong_tenant", r.code);
    kmsh_resp_free(&r);
    free(ghost);

    st = kmsh_issue(&h, tok, t.id, "j", "err-1", cpk, otk2, sealed, &r);
    expect("replayed request id", st, &r, 409, "request_replayed");
    kmsh_resp_free(&r);

    /* Malformed evidence on a live nonce: refused, and the nonce is spent. */
    assert_int_equal(200, kmsh_challenge(&h, &t, t.id, otk, nonce));
    static const uint8_t junk[] = "not evidence at all";
    int64_t now = (int64_t)time(NULL);
    char *rep = kmsh_report(&h, &t, KMSH_DEPLOYMENT, now, NULL);
    st = kmsh_release(&h, &t, t.id, otk, nonce, junk, sizeof(junk) - 1, rep, &r);
    expect("malformed evidence", st, &r, 403, "evidence_invalid");
    assert_null(json_object_get(r.body, "sealed_otk"));
    kmsh_resp_free(&r);

    /* Expired OTK (a second one, moved into the past in the database). */
    char otk3[64];
    assert_int_equal(200, kmsh_issue(&h, tok, t.id, "j", "err-5", cpk, otk3, sealed, NULL));
    luna_store *db = NULL;
    assert_luna_ok(luna_store_open(h.storage_url, NULL, &db));
    luna_store_param p[] = {luna_store_p_text(otk3)};
    uint64_t ch = 0;
    assert_luna_ok(luna_store_exec(db, "UPDATE kms_otks SET expires_at = 1 WHERE otk_id = ?1", p,
                                   1, &ch));
    assert_int_equal(1, ch);
    luna_store_close(db);
    char body[160];
    snprintf(body, sizeof(body), "{\"tee_id\":\"err-tee\",\"otk_id\":\"%s\"}", otk3);
    assert_int_equal(0, kmsh_call(&h, t.cert, "POST", "/v1/kms/otk/challenge", NULL, body, &r));
    expect("expired OTK", r.status, &r, 410, "otk_expired");
    kmsh_resp_free(&r);

    /* Every fault its own code. */
    for (size_t i = 0; i < g_n; i++)
        for (size_t j = i + 1; j < g_n; j++)
            if (strcmp(g_seen[i].code, g_seen[j].code) == 0)
                fail_msg("%s and %s share the code %s", g_seen[i].fault, g_seen[j].fault,
                         g_seen[i].code);
    fprintf(stderr, "%zu faults, %zu distinct codes\n", g_n, g_n);

    /* Nothing released by any of it: the first OTK is released once now. */
    assert_int_equal(200, kmsh_release_honest(&h, &t, otk, &r));
    kmsh_resp_free(&r);
    /* Once only: refused at the challenge already (409). */
    assert_int_equal(409, kmsh_release_honest(&h, &t, otk, &r));
    kmsh_resp_free(&r);
    free(rep);
    free(tok);
    kmsh_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
