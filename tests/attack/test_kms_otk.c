/*
 * attack.kms_otk - attacks on the one-time key release and the registry,
 * against the real luna-kms (SoftHSM2 root, SQLite).  Each case first
 * shows the honest path would work where that matters (so a refusal is
 * the check's doing, not a broken fixture), then the attack, then that
 * nothing was released.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms_harness.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/hpke.h"
#include "luna/store.h"
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
    kmsh_teardown(h);
    free(h);
    return 0;
}

/* A fresh OTK for tenant on tee_id; asserts the issue worked. */
static void issue_ok(kmsh *h, const char *tenant, const char *tee_id, char otk[64])
{
    static int seq;
    char *tok = kmsh_token(h, tenant, "client");
    uint8_t csk[32], cpk[32], sealed[80];
    char rid[32];
    snprintf(rid, sizeof(rid), "rq-%d-%ld", ++seq, (long)time(NULL));
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(200, kmsh_issue(h, tok, tee_id, "job", rid, cpk, otk, sealed, NULL));
    free(tok);
}

static void expect_release(kmsh *h, const kmsh_tee *as, const char *tee_id, const char *otk,
                           const uint8_t nonce[32], const uint8_t *ev, size_t ev_len,
                           const char *rep, int status, const char *code)
{
    kmsh_resp r;
    int st = kmsh_release(h, as, tee_id, otk, nonce, ev, ev_len, rep, &r);
    if (st != status || strcmp(r.code, code) != 0)
        fail_msg("release: got %d %s, want %d %s", st, r.code, status, code);
    assert_null(json_object_get(r.body, "sealed_otk"));
    kmsh_resp_free(&r);
}

static void test_unregistered_tee(void **state)
{
    kmsh *h = *state;
    kmsh_tee t;
    kmsh_tee_new(h, "ghost", &t);
    char *tok = kmsh_token(h, "acme", "client");
    uint8_t csk[32], cpk[32], sealed[80];
    char otk[64];
    kmsh_resp r;
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(404, kmsh_issue(h, tok, "ghost", "job", "r-ghost", cpk, otk, sealed, &r));
    assert_string_equal("tee_not_found", r.code);
    kmsh_resp_free(&r);
    /* A release for an OTK of someone else's TEE, presented by the ghost. */
    kmsh_tee real;
    kmsh_tee_new(h, "real1", &real);
    kmsh_admit(h, &real, "[\"acme\"]");
    issue_ok(h, "acme", "real1", otk);
    uint8_t nonce[32];
    assert_int_equal(403, kmsh_challenge(h, &t, "ghost", otk, nonce));
    free(tok);
}

static void test_status_quarantined_and_revoked(void **state)
{
    kmsh *h = *state;
    const char *ops[] = {"quarantine", "revoke"};
    for (int i = 0; i < 2; i++) {
        kmsh_tee t;
        char id[32], otk[64], path[96];
        snprintf(id, sizeof(id), "st-%s", ops[i]);
        kmsh_tee_new(h, id, &t);
        kmsh_admit(h, &t, "[\"acme\"]");
        issue_ok(h, "acme", id, otk);
        uint8_t nonce[32], ev[LUNA_SIM_EVIDENCE_MAX];
        assert_int_equal(200, kmsh_challenge(h, &t, id, otk, nonce));
        /* The status changes between challenge and release. */
        snprintf(path, sizeof(path), "/v1/kms/tees/%s/%s", id, ops[i]);
        kmsh_resp r;
        assert_int_equal(0, kmsh_call(h, "attestation", "POST", path, NULL,
                                      "{\"reason\":\"abnormal re-attestation\"}", &r));
        assert_int_equal(200, r.status);
        kmsh_resp_free(&r);
        int64_t now = (int64_t)time(NULL);
        size_t len = kmsh_evidence(h, &t, nonce, now, NULL, ev, sizeof(ev));
        char *rep = kmsh_report(h, &t, KMSH_DEPLOYMENT, now, NULL);
        /* The OTK bound to it was revoked at once with the TEE. */
        expect_release(h, &t, id, otk, nonce, ev, len, rep, 403, "otk_revoked");
        free(rep);
        /* And no new OTK can be issued for it. */
        char *tok = kmsh_token(h, "acme", "client");
        uint8_t csk[32], cpk[32], sealed[80];
        char otk2[64];
        assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
        assert_int_equal(403, kmsh_issue(h, tok, id, "job", ops[i], cpk, otk2, sealed, &r));
        assert_string_equal("tee_not_active", r.code);
        kmsh_resp_free(&r);
        free(tok);
    }
    /* Revoked is final: activation cannot bring it back. */
    kmsh_resp r;
    assert_int_equal(0, kmsh_call(h, "attestation", "POST", "/v1/kms/tees/st-revoke/quarantine",
                                  NULL, "{}", &r));
    assert_int_equal(409, r.status);
    kmsh_resp_free(&r);
}

static void test_other_tenants_tee(void **state)
{
    kmsh *h = *state;
    kmsh_tee t;
    kmsh_tee_new(h, "beta-tee", &t);
    kmsh_admit(h, &t, "[\"beta\"]");
    char *tok = kmsh_token(h, "acme", "client");
    uint8_t csk[32], cpk[32], sealed[80];
    char otk[64];
    kmsh_resp r;
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(403, kmsh_issue(h, tok, t.id, "job", "x-tenant", cpk, otk, sealed, &r));
    assert_string_equal("tee_wrong_tenant", r.code);
    kmsh_resp_free(&r);
    /* acme's OTK for acme's TEE, asked for by beta's TEE (identity check). */
    kmsh_tee a;
    kmsh_tee_new(h, "acme-tee", &a);
    kmsh_admit(h, &a, "[\"acme\"]");
    issue_ok(h, "acme", a.id, otk);
    uint8_t nonce[32], ev[LUNA_SIM_EVIDENCE_MAX];
    assert_int_equal(403, kmsh_challenge(h, &t, a.id, otk, nonce));
    assert_int_equal(403, kmsh_challenge(h, &t, t.id, otk, nonce)); /* bound to acme-tee */
    /* Even with a nonce for acme-tee, beta's TEE cannot present it. */
    assert_int_equal(200, kmsh_challenge(h, &a, a.id, otk, nonce));
    int64_t now = (int64_t)time(NULL);
    size_t len = kmsh_evidence(h, &t, nonce, now, NULL, ev, sizeof(ev));
    char *rep = kmsh_report(h, &t, KMSH_DEPLOYMENT, now, NULL);
    expect_release(h, &t, a.id, otk, nonce, ev, len, rep, 403, "identity_mismatch");
    free(rep);
    /* The operator of beta cannot read acme's TEE either. */
    char *op = kmsh_token(h, "beta", "operator");
    assert_int_equal(0, kmsh_call(h, "operator", "GET", "/v1/kms/tees/acme-tee", op, NULL, &r));
    assert_int_equal(404, r.status);
    kmsh_resp_free(&r);
    assert_int_equal(0, kmsh_call(h, "operator", "POST", "/v1/kms/tees/acme-tee/revoke", op,
                                  "{}", &r));
    assert_int_equal(404, r.status);
    kmsh_resp_free(&r);
    /* A TEE shared by acme and beta: beta's operator sees only beta in it
     * and cannot change it (the platform's to change). */
    kmsh_tee sh;
    kmsh_tee_new(h, "shared-tee", &sh);
    kmsh_admit(h, &sh, "[\"acme\",\"beta\"]");
    assert_int_equal(0, kmsh_call(h, "operator", "GET", "/v1/kms/tees/shared-tee", op, NULL, &r));
    assert_int_equal(200, r.status);
    const json_t *tn = json_object_get(r.body, "tenants");
    assert_int_equal(1, json_array_size(tn));
    assert_string_equal("beta", json_string_value(json_array_get(tn, 0)));
    kmsh_resp_free(&r);
    assert_int_equal(0, kmsh_call(h, "operator", "POST", "/v1/kms/tees/shared-tee/quarantine", op,
                                  "{}", &r));
    assert_int_equal(403, r.status);
    kmsh_resp_free(&r);
    /* An operator registers TEEs for its own tenant only. */
    assert_int_equal(0, kmsh_call(h, "operator", "POST", "/v1/kms/tees", op,
                                  "{\"tee_id\":\"sneaky\",\"tenants\":[\"acme\"],"
                                  "\"deployment_id\":\"app\",\"tee_type\":\"sim\",\"mr_enclave\":"
                                  "\"4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d\"}",
                                  &r));
    assert_int_equal(403, r.status);
    kmsh_resp_free(&r);
    free(op);
    free(tok);
}

static void test_forged_report_and_disagreement(void **state)
{
    kmsh *h = *state;
    kmsh_tee t;
    kmsh_tee_new(h, "rep-tee", &t);
    kmsh_admit(h, &t, "[\"acme\"]");
    char otk[64];
    issue_ok(h, "acme", t.id, otk);
    uint8_t nonce[32], ev[LUNA_SIM_EVIDENCE_MAX];
    int64_t now = (int64_t)time(NULL);

    /* Forged report: signed by a key the KMS does not know. */
    luna_jws_signer *rogue = NULL;
    assert_luna_ok(luna_jws_signer_generate("att-1", &rogue));
    assert_int_equal(200, kmsh_challenge(h, &t, t.id, otk, nonce));
    size_t len = kmsh_evidence(h, &t, nonce, now, NULL, ev, sizeof(ev));
    char *rep = kmsh_report(h, &t, KMSH_DEPLOYMENT, now, rogue);
    expect_release(h, &t, t.id, otk, nonce, ev, len, rep, 403, "report_invalid");
    free(rep);
    /* A genuine report for another deployment. */
    assert_int_equal(200, kmsh_challenge(h, &t, t.id, otk, nonce));
    len = kmsh_evidence(h, &t, nonce, now, NULL, ev, sizeof(ev));
    rep = kmsh_report(h, &t, "other-app", now, NULL);
    expect_release(h, &t, t.id, otk, nonce, ev, len, rep, 403, "report_mismatch");
    free(rep);

    /* Valid report, but evidence the KMS's own verification refuses (a
     * measurement the attestation service accepted, the KMS does not). */
    int before = kmsh_audit_count(h, "attestation.disagreement");
    uint8_t bad_mr[32];
    memset(bad_mr, 0x66, sizeof(bad_mr));
    assert_int_equal(200, kmsh_challenge(h, &t, t.id, otk, nonce));
    len = kmsh_evidence(h, &t, nonce, now, bad_mr, ev, sizeof(ev));
    rep = kmsh_report(h, &t, KMSH_DEPLOYMENT, now, NULL);
    expect_release(h, &t, t.id, otk, nonce, ev, len, rep, 403, "evidence_invalid");
    assert_int_equal(before + 1, kmsh_audit_count(h, "attestation.disagreement"));
    assert_true(kmsh_audit_count(h, "severity=high") >= 1);
    /* Malformed evidence. */
    assert_int_equal(200, kmsh_challenge(h, &t, t.id, otk, nonce));
    ev[0] ^= 0xff;
    expect_release(h, &t, t.id, otk, nonce, ev, len, rep, 403, "evidence_invalid");
    free(rep);
    luna_jws_signer_free(rogue);

    /* The honest release still works afterwards: nothing was consumed. */
    kmsh_resp r;
    assert_int_equal(200, kmsh_release_honest(h, &t, otk, &r));
    kmsh_resp_free(&r);
}

static void test_stale_evidence_and_replayed_nonce(void **state)
{
    kmsh *h = *state;
    kmsh_tee t;
    kmsh_tee_new(h, "fresh-tee", &t);
    kmsh_admit(h, &t, "[\"acme\"]");
    char otk[64];
    issue_ok(h, "acme", t.id, otk);
    uint8_t nonce[32], other[32], ev[LUNA_SIM_EVIDENCE_MAX];
    int64_t now = (int64_t)time(NULL);
    char *rep = kmsh_report(h, &t, KMSH_DEPLOYMENT, now, NULL);

    /* Stale: right nonce, timestamp an hour old. */
    assert_int_equal(200, kmsh_challenge(h, &t, t.id, otk, nonce));
    size_t len = kmsh_evidence(h, &t, nonce, now - 3600, NULL, ev, sizeof(ev));
    expect_release(h, &t, t.id, otk, nonce, ev, len, rep, 403, "evidence_stale");

    /* Replayed nonce: the one just spent (by the stale attempt). */
    len = kmsh_evidence(h, &t, nonce, now, NULL, ev, sizeof(ev));
    expect_release(h, &t, t.id, otk, nonce, ev, len, rep, 403, "nonce_invalid");
    /* A nonce the KMS never issued. */
    assert_luna_ok(luna_random(other, sizeof(other)));
    len = kmsh_evidence(h, &t, other, now, NULL, ev, sizeof(ev));
    expect_release(h, &t, t.id, otk, other, ev, len, rep, 403, "nonce_invalid");
    /* Evidence over another nonce than the one presented. */
    assert_int_equal(200, kmsh_challenge(h, &t, t.id, otk, nonce));
    len = kmsh_evidence(h, &t, other, now, NULL, ev, sizeof(ev));
    expect_release(h, &t, t.id, otk, nonce, ev, len, rep, 403, "evidence_invalid");
    /* A nonce issued for another OTK. */
    char otk2[64];
    issue_ok(h, "acme", t.id, otk2);
    assert_int_equal(200, kmsh_challenge(h, &t, t.id, otk2, nonce));
    len = kmsh_evidence(h, &t, nonce, now, NULL, ev, sizeof(ev));
    expect_release(h, &t, t.id, otk, nonce, ev, len, rep, 403, "nonce_invalid");

    /* Second release of a released OTK. */
    kmsh_resp r;
    assert_int_equal(200, kmsh_release_honest(h, &t, otk, &r));
    kmsh_resp_free(&r);
    assert_int_equal(409, kmsh_release_honest(h, &t, otk, &r));
    kmsh_resp_free(&r);
    free(rep);
}

static void test_unknown_otk_and_tokens(void **state)
{
    kmsh *h = *state;
    kmsh_tee t;
    kmsh_tee_new(h, "tok-tee", &t);
    kmsh_admit(h, &t, "[\"acme\"]");
    uint8_t nonce[32], csk[32], cpk[32], sealed[80];
    char otk[64];
    kmsh_resp r;
    assert_int_equal(404, kmsh_challenge(h, &t, t.id, "otk_AAAAAAAAAAAAAAAAAAAAAA", nonce));
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    /* No token, a token without the client role, a token of another IAM. */
    assert_int_equal(401, kmsh_issue(h, NULL, t.id, "job", "t1", cpk, otk, sealed, &r));
    assert_string_equal("token_missing", r.code);
    kmsh_resp_free(&r);
    char *tok = kmsh_token(h, "acme", "auditor");
    assert_int_equal(403, kmsh_issue(h, tok, t.id, "job", "t2", cpk, otk, sealed, &r));
    kmsh_resp_free(&r);
    free(tok);
    luna_jws_signer *rogue = NULL;
    assert_luna_ok(luna_jws_signer_generate("iam-1", &rogue));
    luna_jws_signer *real = h->iam;
    h->iam = rogue;
    tok = kmsh_token(h, "acme", "client");
    h->iam = real;
    assert_int_equal(401, kmsh_issue(h, tok, t.id, "job", "t3", cpk, otk, sealed, &r));
    assert_string_equal("token_invalid", r.code);
    kmsh_resp_free(&r);
    free(tok);
    luna_jws_signer_free(rogue);
    /* A caller identity not on the list (a TEE asking for an OTK). */
    tok = kmsh_token(h, "acme", "client");
    assert_int_equal(0, kmsh_call(h, t.cert, "POST", "/v1/kms/otk", tok,
                                  "{\"tee_id\":\"tok-tee\",\"job\":\"j\",\"request_id\":\"x\","
                                  "\"client_pk\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
                                  &r));
    assert_int_equal(403, r.status);
    kmsh_resp_free(&r);
    /* Strict JSON: an unknown field is refused before anything runs. */
    assert_int_equal(0, kmsh_call(h, "gateway", "POST", "/v1/kms/otk", tok,
                                  "{\"tee_id\":\"tok-tee\",\"job\":\"j\",\"request_id\":\"x\","
                                  "\"client_pk\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                                  "\"admin\":true}",
                                  &r));
    assert_int_equal(400, r.status);
    assert_string_equal("invalid_body", r.code);
    kmsh_resp_free(&r);
    free(tok);
}

static void test_expired_otk(void **state)
{
    kmsh *h = *state;
    kmsh_tee t;
    kmsh_tee_new(h, "exp-tee", &t);
    kmsh_admit(h, &t, "[\"acme\"]");
    char otk[64];
    issue_ok(h, "acme", t.id, otk);
    /* Move the OTK's expiry into the past directly in the database, as
     * time would: the AAD binds expires_at, so this also proves an edited
     * expiry cannot extend a key's life (the open would fail). */
    luna_store *db = NULL;
    assert_luna_ok(luna_store_open(h->storage_url, NULL, &db));
    luna_store_param p[] = {luna_store_p_text(otk)};
    uint64_t ch = 0;
    assert_luna_ok(luna_store_exec(db, "UPDATE kms_otks SET expires_at = 1 WHERE otk_id = ?1", p,
                                   1, &ch));
    assert_int_equal(1, ch);
    luna_store_close(db);
    uint8_t nonce[32];
    assert_int_equal(410, kmsh_challenge(h, &t, t.id, otk, nonce));
}

static void test_registry_row_edited(void **state)
{
    kmsh *h = *state;
    kmsh_tee t;
    kmsh_tee_new(h, "edit-tee", &t);
    kmsh_admit(h, &t, "[\"acme\"]");
    char otk[64];
    issue_ok(h, "acme", t.id, otk);
    /* Quarantine it, then a database insider sets it back to active. */
    kmsh_resp r;
    assert_int_equal(0, kmsh_call(h, "attestation", "POST", "/v1/kms/tees/edit-tee/quarantine",
                                  NULL, "{}", &r));
    assert_int_equal(200, r.status);
    kmsh_resp_free(&r);
    luna_store *db = NULL;
    assert_luna_ok(luna_store_open(h->storage_url, NULL, &db));
    luna_store_param p[] = {luna_store_p_text("edit-tee")};
    assert_luna_ok(luna_store_exec(db,
                                   "UPDATE kms_tees SET status = 'active' WHERE tee_id = ?1",
                                   p, 1, NULL));
    luna_store_param q[] = {luna_store_p_text(otk)};
    assert_luna_ok(luna_store_exec(db, "UPDATE kms_otks SET state = 'issued' WHERE otk_id = ?1",
                                   q, 1, NULL));
    char *tok = kmsh_token(h, "acme", "client");
    uint8_t csk[32], cpk[32], sealed[80];
    char otk2[64];
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(500, kmsh_issue(h, tok, t.id, "job", "edit-1", cpk, otk2, sealed, &r));
    assert_string_equal("registry_integrity", r.code);
    kmsh_resp_free(&r);
    /* The release is refused for the same reason, even with the OTK row
     * also edited back to "issued". */
    assert_int_equal(500, kmsh_release_honest(h, &t, otk, &r));
    assert_string_equal("registry_integrity", r.code);
    assert_null(json_object_get(r.body, "sealed_otk"));
    kmsh_resp_free(&r);
    /* Swap the attested key for the attacker's (keeping status honest). */
    kmsh_tee t2;
    kmsh_tee_new(h, "edit-tee2", &t2);
    kmsh_admit(h, &t2, "[\"acme\"]");
    uint8_t attacker[32];
    memset(attacker, 0x41, sizeof(attacker));
    luna_store_param s[] = {luna_store_p_blob(attacker, 32), luna_store_p_text("edit-tee2")};
    assert_luna_ok(luna_store_exec(db, "UPDATE kms_tees SET tee_kx_pk = ?1 WHERE tee_id = ?2", s,
                                   2, NULL));
    assert_int_equal(500, kmsh_issue(h, tok, t2.id, "job", "edit-2", cpk, otk2, sealed, &r));
    assert_string_equal("registry_integrity", r.code);
    kmsh_resp_free(&r);
    luna_store_close(db);
    free(tok);
}

/* ---- 64 concurrent releases of one OTK ---- */

typedef struct race_arg {
    kmsh *h;
    kmsh_tee *t;
    const char *otk;
    uint8_t nonce[32];
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX];
    size_t ev_len;
    const char *rep;
    pthread_barrier_t *bar;
    int status;
    uint8_t sealed[80];
} race_arg;

static void *racer(void *p)
{
    race_arg *a = p;
    kmsh_resp r;
    pthread_barrier_wait(a->bar);
    a->status = kmsh_release(a->h, a->t, a->t->id, a->otk, a->nonce, a->ev, a->ev_len, a->rep,
                             &r);
    size_t n = 0;
    if (a->status == 200 && (!kmsh_b64(r.body, "sealed_otk", a->sealed, 80, &n) || n != 80))
        a->status = -2;
    kmsh_resp_free(&r);
    return NULL;
}

static void test_64_concurrent_releases(void **state)
{
    kmsh *h = *state;
    enum { N = 64 };
    kmsh_tee t;
    kmsh_tee_new(h, "race-tee", &t);
    kmsh_admit(h, &t, "[\"acme\"]");
    char otk[64];
    issue_ok(h, "acme", t.id, otk);
    race_arg *args = calloc(N, sizeof(*args));
    pthread_t th[N];
    pthread_barrier_t bar;
    int64_t now = (int64_t)time(NULL);
    char *rep = kmsh_report(h, &t, KMSH_DEPLOYMENT, now, NULL);
    pthread_barrier_init(&bar, NULL, N);
    /* Every racer holds its own valid nonce and fresh evidence: only the
     * single-release rule stands between them and the key. */
    for (int i = 0; i < N; i++) {
        args[i] = (race_arg){.h = h, .t = &t, .otk = otk, .rep = rep, .bar = &bar};
        assert_int_equal(200, kmsh_challenge(h, &t, t.id, otk, args[i].nonce));
        args[i].ev_len = kmsh_evidence(h, &t, args[i].nonce, now, NULL, args[i].ev,
                                       sizeof(args[i].ev));
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(0, pthread_create(&th[i], NULL, racer, &args[i]));
    int ok = 0, conflict = 0, other = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (args[i].status == 200)
            ok++;
        else if (args[i].status == 409)
            conflict++;
        else
            other++;
    }
    pthread_barrier_destroy(&bar);
    fprintf(stderr, "64 concurrent releases: %d released, %d refused as released, %d other\n",
            ok, conflict, other);
    assert_int_equal(1, ok);
    assert_int_equal(N - 1, conflict);
    assert_int_equal(1, kmsh_audit_count(h, otk) >= 1);
    free(rep);
    free(args);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unregistered_tee),
        cmocka_unit_test(test_status_quarantined_and_revoked),
        cmocka_unit_test(test_other_tenants_tee),
        cmocka_unit_test(test_forged_report_and_disagreement),
        cmocka_unit_test(test_stale_evidence_and_replayed_nonce),
        cmocka_unit_test(test_unknown_otk_and_tokens),
        cmocka_unit_test(test_expired_otk),
        cmocka_unit_test(test_registry_row_edited),
        cmocka_unit_test(test_64_concurrent_releases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
