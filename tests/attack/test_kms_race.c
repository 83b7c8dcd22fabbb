/*
 * attack.kms_race / attack.kms_race_pg - the single-release rule holds
 * across processes: two real luna-kms instances on one database (SQLite
 * file, or PostgreSQL when LUNA_TEST_PG_URL is set), 64 concurrent release
 * calls for one OTK, each with its own valid nonce and fresh evidence,
 * half sent to each instance: exactly one release, 63 refusals as
 * "already released", nothing else.  Three rounds.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms_harness.h"
#include "luna/hpke.h"
#include "luna_test.h"

enum { N = 64 };

typedef struct racer {
    const kmsh *via;
    const kmsh_tee *t;
    const char *otk;
    uint8_t nonce[32];
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX];
    size_t ev_len;
    const char *rep;
    pthread_barrier_t *bar;
    int status;
    char code[64];
} racer;

static void *race(void *p)
{
    racer *a = p;
    kmsh_resp r;
    pthread_barrier_wait(a->bar);
    a->status = kmsh_release(a->via, a->t, a->t->id, a->otk, a->nonce, a->ev, a->ev_len, a->rep,
                             &r);
    snprintf(a->code, sizeof(a->code), "%s", r.code);
    kmsh_resp_free(&r);
    return NULL;
}

static void test_two_instances_one_release(void **state)
{
    (void)state;
    kmsh h, h2;
    kmsh_setup(&h, NULL);
    kmsh_start(&h);
    kmsh_clone(&h, "kms2", &h2);
    kmsh_start(&h2);
    const kmsh *inst[2] = {&h, &h2};
    kmsh_tee t;
    kmsh_tee_new(&h, "race2-tee", &t);
    kmsh_admit(&h, &t, "[\"acme\"]");
    char *tok = kmsh_token(&h, "acme", "client");
    racer *a = calloc(N, sizeof(*a));
    assert_non_null(a);
    for (int round = 0; round < 3; round++) {
        uint8_t csk[32], cpk[32], sealed[80];
        char otk[64], rid[32];
        snprintf(rid, sizeof(rid), "race-%d", round);
        assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
        /* Issued through one instance, released through both. */
        assert_int_equal(200, kmsh_issue(inst[round % 2], tok, t.id, "j", rid, cpk, otk, sealed,
                                         NULL));
        int64_t now = (int64_t)time(NULL);
        char *rep = kmsh_report(&h, &t, KMSH_DEPLOYMENT, now, NULL);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, N);
        for (int i = 0; i < N; i++) {
            memset(&a[i], 0, sizeof(a[i]));
            a[i].via = inst[i % 2];
            a[i].t = &t;
            a[i].otk = otk;
            a[i].rep = rep;
            a[i].bar = &bar;
            assert_int_equal(200, kmsh_challenge(inst[(i / 2) % 2], &t, t.id, otk, a[i].nonce));
            a[i].ev_len = kmsh_evidence(&h, &t, a[i].nonce, now, NULL, a[i].ev, sizeof(a[i].ev));
        }
        pthread_t th[N];
        for (int i = 0; i < N; i++)
            assert_int_equal(0, pthread_create(&th[i], NULL, race, &a[i]));
        int ok = 0, released = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            if (a[i].status == 200)
                ok++;
            else if (a[i].status == 409 && strcmp(a[i].code, "otk_released") == 0)
                released++;
            else
                fprintf(stderr, "racer %d: %d %s\n", i, a[i].status, a[i].code);
        }
        pthread_barrier_destroy(&bar);
        fprintf(stderr, "%s round %d: %d released, %d refused as already released\n",
                getenv("LUNA_TEST_PG_URL") != NULL ? "postgresql" : "sqlite", round, ok,
                released);
        assert_int_equal(1, ok);
        assert_int_equal(N - 1, released);
        free(rep);
    }
    free(a);
    free(tok);
    assert_int_equal(0, kmsh_stop(&h2, SIGTERM));
    assert_int_equal(0, kmsh_stop(&h, SIGTERM));
    kmsh_teardown(&h);
}

/* Revoke through one instance; the other refuses on its very next call
 * (it holds no cache of key or TEE state to go stale). */
static void test_revoke_seen_by_other_instance(void **state)
{
    (void)state;
    /* Its own tenant: on PostgreSQL the database outlives the first case's
     * HSM token, and rows MAC'd under another token are (rightly) refused. */
    kmsh h, h2;
    kmsh_setup(&h, NULL);
    kmsh_start(&h);
    kmsh_clone(&h, "kms2", &h2);
    kmsh_start(&h2);
    char *admin = kmsh_token(&h, "corp", "key-admin,client");
    kmsh_resp r;
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys", admin,
                                  "{\"key_id\":\"shared\"}", &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
    static const char body[] =
        "{\"recipient_pk\":\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\"}";
    /* Both instances are warm: each has just used the key. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(0, kmsh_call(i ? &h2 : &h, "gateway", "POST",
                                      "/v1/kms/keys/shared/datakey", admin, body, &r));
        assert_int_equal(200, r.status);
        kmsh_resp_free(&r);
    }
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys/shared/revoke", admin,
                                  NULL, &r));
    assert_int_equal(200, r.status);
    kmsh_resp_free(&r);
    assert_int_equal(0, kmsh_call(&h2, "gateway", "POST", "/v1/kms/keys/shared/datakey", admin,
                                  body, &r));
    assert_int_equal(403, r.status);
    assert_string_equal("key_revoked", r.code);
    kmsh_resp_free(&r);

    /* Same for a TEE: quarantined through one, refused through the other. */
    kmsh_tee t;
    kmsh_tee_new(&h, "shared-tee", &t);
    kmsh_admit(&h, &t, "[\"corp\"]");
    uint8_t csk[32], cpk[32], sealed[80], nonce[32];
    char otk[64];
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(200, kmsh_issue(&h2, admin, t.id, "j", "shared-1", cpk, otk, sealed, NULL));
    assert_int_equal(200, kmsh_challenge(&h2, &t, t.id, otk, nonce));
    assert_int_equal(0, kmsh_call(&h, "attestation", "POST", "/v1/kms/tees/shared-tee/quarantine",
                                  NULL, "{}", &r));
    assert_int_equal(200, r.status);
    kmsh_resp_free(&r);
    assert_int_equal(403, kmsh_release_honest(&h2, &t, otk, &r));
    kmsh_resp_free(&r);
    free(admin);
    assert_int_equal(0, kmsh_stop(&h2, SIGTERM));
    assert_int_equal(0, kmsh_stop(&h, SIGTERM));
    kmsh_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_instances_one_release),
        cmocka_unit_test(test_revoke_seen_by_other_instance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
