/*
 * fault.kms_fault - the real luna-kms (SoftHSM2, SQLite) under faults:
 * root attributes checked at start; the HSM process killed (clear error,
 * then recovery); the audit sink down (nothing released, nothing lost);
 * kill -9 of the KMS in the middle of concurrent releases (never released
 * twice, no key version lost); and a search of the database files for
 * every key the test saw, after proving the search finds planted values.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kms_harness.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/hpke.h"
#include "luna/store.h"
#include "luna_test.h"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *len = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = '\0';
    fclose(f);
    return b;
}

static bool file_has(const char *path, const char *needle)
{
    size_t n = 0;
    char *b = read_all(path, &n);
    bool found = b != NULL && memmem(b, n, needle, strlen(needle)) != NULL;
    free(b);
    return found;
}

static void test_root_attributes_checked_at_start(void **state)
{
    (void)state;
    kmsh h;
    kmsh_setup(&h, NULL);
    /* A root that is a decrypt oracle: the KMS must refuse to run. */
    static const char *const flags[] = {"--usage-wrap", "--usage-decrypt", "--sensitive",
                                        "--private", NULL};
    hsm_token_pkcs11_keygen(&h.tok, "luna-kms-root", flags);
    int code = 0;
    assert_false(kmsh_try_start(&h, &code));
    assert_int_equal(4, code);
    assert_true(file_has(h.log, "key attributes refused"));
    assert_true(file_has(h.log, "CKA_DECRYPT"));
    assert_true(file_has(h.log, "refusing to start"));
    assert_false(file_has(h.log, h.tok.pin));
    kmsh_teardown(&h);
}

static pid_t hsm_child(pid_t kms)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)kms, (int)kms);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int pid = 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

static void test_hsm_killed_then_recovers(void **state)
{
    (void)state;
    kmsh h;
    kmsh_setup(&h, NULL);
    kmsh_start(&h);
    char *admin = kmsh_token(&h, "acme", "key-admin");
    kmsh_resp r;
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys", admin,
                                  "{\"key_id\":\"before\"}", &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
    pid_t hsm = hsm_child(h.pid);
    assert_true(hsm > 0);
    assert_int_equal(0, kill(hsm, SIGKILL));
    usleep(100 * 1000);
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys/before/rotate", admin,
                                  NULL, &r));
    assert_int_equal(503, r.status);
    assert_string_equal("hsm_unavailable", r.code);
    kmsh_resp_free(&r);
    /* Nothing was lost: the key is still at version 1 ... */
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        usleep(50 * 1000);
        assert_int_equal(0, kmsh_call(&h, "gateway", "GET", "/v1/kms/keys/before", admin, NULL,
                                      &r));
        status = r.status;
        if (status == 200)
            assert_int_equal(1, json_integer_value(json_object_get(r.body, "current_version")));
        kmsh_resp_free(&r);
    }
    assert_int_equal(200, status);
    /* ... and key operations work again, with a new HSM process. */
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys/before/rotate", admin,
                                  NULL, &r));
    assert_int_equal(200, r.status);
    kmsh_resp_free(&r);
    pid_t again = hsm_child(h.pid);
    assert_true(again > 0 && again != hsm);
    assert_true(file_has(h.log, "hsm") );
    free(admin);
    kmsh_teardown(&h);
}

static void test_audit_down_releases_nothing(void **state)
{
    (void)state;
    kmsh h;
    kmsh_setup(&h, NULL);
    kmsh_start(&h);
    kmsh_tee t;
    kmsh_tee_new(&h, "aud-tee", &t);
    kmsh_admit(&h, &t, "[\"acme\"]");
    char *tok = kmsh_token(&h, "acme", "client");
    uint8_t csk[32], cpk[32], sealed[80];
    char otk[64], otk2[64], bak[HTU_PATH_MAX + 8];
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(200, kmsh_issue(&h, tok, t.id, "j", "aud-1", cpk, otk, sealed, NULL));
    /* The audit sink breaks (its file replaced by a directory). */
    snprintf(bak, sizeof(bak), "%s.bak", h.audit);
    assert_int_equal(0, rename(h.audit, bak));
    assert_int_equal(0, mkdir(h.audit, 0700));
    kmsh_resp r;
    int st = kmsh_release_honest(&h, &t, otk, &r);
    /* The challenge is audited too, so it may already be the one refused. */
    assert_int_equal(503, st);
    if (r.body != NULL)
        assert_string_equal("audit_unavailable", r.code);
    kmsh_resp_free(&r);
    /* Also refused while the challenge still worked: rebuild the audit file
     * only for the challenge, then break it again before the release. */
    assert_int_equal(0, rmdir(h.audit));
    assert_int_equal(0, rename(bak, h.audit));
    uint8_t nonce[32], ev[LUNA_SIM_EVIDENCE_MAX];
    assert_int_equal(200, kmsh_challenge(&h, &t, t.id, otk, nonce));
    assert_int_equal(0, rename(h.audit, bak));
    assert_int_equal(0, mkdir(h.audit, 0700));
    int64_t now = (int64_t)time(NULL);
    size_t len = kmsh_evidence(&h, &t, nonce, now, NULL, ev, sizeof(ev));
    char *rep = kmsh_report(&h, &t, KMSH_DEPLOYMENT, now, NULL);
    assert_int_equal(503, kmsh_release(&h, &t, t.id, otk, nonce, ev, len, rep, &r));
    assert_string_equal("audit_unavailable", r.code);
    assert_null(json_object_get(r.body, "sealed_otk"));
    kmsh_resp_free(&r);
    free(rep);
    assert_int_equal(503, kmsh_issue(&h, tok, t.id, "j", "aud-2", cpk, otk2, sealed, &r));
    assert_string_equal("audit_unavailable", r.code);
    kmsh_resp_free(&r);
    /* Back up: the OTK was never released, so the TEE still gets it once. */
    assert_int_equal(0, rmdir(h.audit));
    assert_int_equal(0, rename(bak, h.audit));
    assert_int_equal(200, kmsh_release_honest(&h, &t, otk, &r));
    kmsh_resp_free(&r);
    assert_int_equal(409, kmsh_release_honest(&h, &t, otk, &r));
    kmsh_resp_free(&r);
    /* aud-2 was not stored: the request id is still free. */
    assert_int_equal(200, kmsh_issue(&h, tok, t.id, "j", "aud-2", cpk, otk2, sealed, NULL));
    free(tok);
    kmsh_teardown(&h);
}

/* The database unavailable: another writer holds the lock past the KMS's
 * busy timeout (300 ms here).  Writes fail with a clear retryable error,
 * nothing is released, and everything works again once the lock goes. */
static void test_database_unavailable(void **state)
{
    (void)state;
    kmsh h;
    kmsh_setup(&h, ",\"db_busy_timeout_ms\":300");
    kmsh_start(&h);
    kmsh_tee t;
    kmsh_tee_new(&h, "db-tee", &t);
    kmsh_admit(&h, &t, "[\"acme\"]");
    char *tok = kmsh_token(&h, "acme", "client,key-admin");
    uint8_t csk[32], cpk[32], sealed[80], nonce[32];
    char otk[64], otk2[64];
    kmsh_resp r;
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(200, kmsh_issue(&h, tok, t.id, "j", "db-1", cpk, otk, sealed, NULL));
    assert_int_equal(200, kmsh_challenge(&h, &t, t.id, otk, nonce));

    luna_store *db = NULL;
    assert_luna_ok(luna_store_open(h.storage_url, NULL, &db));
    assert_luna_ok(luna_store_begin(db)); /* BEGIN IMMEDIATE: the write lock */
    assert_int_equal(503, kmsh_issue(&h, tok, t.id, "j", "db-2", cpk, otk2, sealed, &r));
    assert_string_equal("storage_unavailable", r.code);
    kmsh_resp_free(&r);
    /* The release with a nonce issued before the outage. */
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX];
    int64_t now = (int64_t)time(NULL);
    size_t len = kmsh_evidence(&h, &t, nonce, now, NULL, ev, sizeof(ev));
    char *rep = kmsh_report(&h, &t, KMSH_DEPLOYMENT, now, NULL);
    assert_int_equal(503, kmsh_release(&h, &t, t.id, otk, nonce, ev, len, rep, &r));
    assert_string_equal("storage_unavailable", r.code);
    assert_null(json_object_get(r.body, "sealed_otk"));
    kmsh_resp_free(&r);
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys", tok,
                                  "{\"key_id\":\"during\"}", &r));
    assert_int_equal(503, r.status);
    assert_string_equal("storage_unavailable", r.code);
    kmsh_resp_free(&r);
    assert_luna_ok(luna_store_rollback(db));
    luna_store_close(db);

    /* Back: nothing stored was lost, and what failed left no trace (not
     * even the nonce was spent). */
    assert_int_equal(200, kmsh_release(&h, &t, t.id, otk, nonce, ev, len, rep, &r));
    kmsh_resp_free(&r);
    free(rep);
    assert_int_equal(200, kmsh_issue(&h, tok, t.id, "j", "db-2", cpk, otk2, sealed, NULL));
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys", tok,
                                  "{\"key_id\":\"during\"}", &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
    free(tok);
    kmsh_teardown(&h);
}

/* ---- kill -9 during concurrent releases ---- */

typedef struct racer {
    kmsh *h;
    kmsh_tee *t;
    const char *otk;
    uint8_t nonce[32];
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX];
    size_t ev_len;
    const char *rep;
    int status;
} racer;

static void *race(void *p)
{
    racer *a = p;
    kmsh_resp r;
    a->status = kmsh_release(a->h, a->t, a->t->id, a->otk, a->nonce, a->ev, a->ev_len, a->rep,
                             &r);
    kmsh_resp_free(&r);
    return NULL;
}

static int race_round(kmsh *h, kmsh_tee *t, const char *otk, int n, int kill_after_ms)
{
    racer *a = calloc((size_t)n, sizeof(*a));
    pthread_t *th = calloc((size_t)n, sizeof(*th));
    int64_t now = (int64_t)time(NULL);
    char *rep = kmsh_report(h, t, KMSH_DEPLOYMENT, now, NULL);
    int prepared = 0;
    for (int i = 0; i < n; i++) {
        a[i] = (racer){.h = h, .t = t, .otk = otk, .rep = rep};
        if (kmsh_challenge(h, t, t->id, otk, a[i].nonce) != 200)
            break;
        a[i].ev_len = kmsh_evidence(h, t, a[i].nonce, now, NULL, a[i].ev, sizeof(a[i].ev));
        prepared++;
    }
    for (int i = 0; i < prepared; i++)
        assert_int_equal(0, pthread_create(&th[i], NULL, race, &a[i]));
    if (kill_after_ms >= 0) {
        usleep((useconds_t)kill_after_ms * 1000);
        kill(h->pid, SIGKILL);
    }
    int ok = 0;
    for (int i = 0; i < prepared; i++) {
        pthread_join(th[i], NULL);
        ok += a[i].status == 200;
    }
    free(rep);
    free(th);
    free(a);
    return ok;
}

static int64_t otk_state(kmsh *h, const char *otk, char *state, size_t cap)
{
    luna_store *db = NULL;
    luna_store_rows *rows = NULL;
    bool has = false;
    const char *v = NULL;
    size_t n = 0;
    assert_luna_ok(luna_store_open(h->storage_url, NULL, &db));
    luna_store_param p[] = {luna_store_p_text(otk)};
    assert_luna_ok(luna_store_query(db, "SELECT state FROM kms_otks WHERE otk_id = ?1", p, 1,
                                    &rows));
    assert_luna_ok(luna_store_rows_next(rows, &has));
    assert_true(has);
    assert_luna_ok(luna_store_col_text(rows, 0, &v, &n));
    snprintf(state, cap, "%s", v);
    luna_store_rows_free(rows);
    luna_store_close(db);
    return 0;
}

static void test_kill9_during_releases(void **state)
{
    (void)state;
    kmsh h;
    kmsh_setup(&h, NULL);
    kmsh_start(&h);
    kmsh_tee t;
    kmsh_tee_new(&h, "k9-tee", &t);
    kmsh_admit(&h, &t, "[\"acme\"]");
    char *tok = kmsh_token(&h, "acme", "client");
    char *admin = kmsh_token(&h, "acme", "key-admin");
    kmsh_resp r;
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys", admin,
                                  "{\"key_id\":\"durable\"}", &r));
    kmsh_resp_free(&r);
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys/durable/rotate", admin,
                                  NULL, &r));
    assert_int_equal(200, r.status);
    kmsh_resp_free(&r);
    int total_ok = 0;
    static const int kill_after_ms[] = {0, 40, 90, 150, 3000};
    for (int round = 0; round < 5; round++) {
        uint8_t csk[32], cpk[32], sealed[80];
        char otk[64], rid[32], st[16];
        snprintf(rid, sizeof(rid), "k9-%d", round);
        assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
        assert_int_equal(200, kmsh_issue(&h, tok, t.id, "j", rid, cpk, otk, sealed, NULL));
        /* Killed a little later each round: before, during, after commits. */
        int ok1 = race_round(&h, &t, otk, 16, kill_after_ms[round]);
        (void)kmsh_stop(&h, SIGKILL);
        kmsh_start(&h);
        otk_state(&h, otk, st, sizeof(st));
        int ok2 = race_round(&h, &t, otk, 16, -1);
        otk_state(&h, otk, st, sizeof(st));
        fprintf(stderr, "kill -9 round %d: %d released before, %d after restart, state %s\n",
                round, ok1, ok2, st);
        assert_true(ok1 + ok2 <= 1);
        assert_string_equal("released", st);
        total_ok += ok1 + ok2;
    }
    assert_true(total_ok >= 1);
    /* No key version lost. */
    assert_int_equal(0, kmsh_call(&h, "gateway", "GET", "/v1/kms/keys/durable", admin, NULL, &r));
    assert_int_equal(2, json_integer_value(json_object_get(r.body, "current_version")));
    kmsh_resp_free(&r);
    free(tok);
    free(admin);
    kmsh_teardown(&h);
}

/* ---- no key in plaintext in the database files ---- */

#define MAX_SECRETS 64

static bool in_files(const kmsh *h, const uint8_t *needle, size_t n)
{
    /* The database with its WAL, shared-memory and journal files, and for
     * good measure the audit file and the KMS's own log. */
    const char *suffix[] = {"", "-wal", "-shm", "-journal", NULL, NULL};
    for (size_t i = 0; i < 6; i++) {
        char path[HTU_PATH_MAX + 16];
        if (i < 4)
            snprintf(path, sizeof(path), "%s%s", h->db, suffix[i]);
        else
            snprintf(path, sizeof(path), "%s", i == 4 ? h->audit : h->log);
        size_t len = 0;
        char *b = read_all(path, &len);
        bool hit = b != NULL && memmem(b, len, needle, n) != NULL;
        free(b);
        if (hit)
            return true;
    }
    return false;
}

/* Raw, hex (both cases), base64url and standard base64. */
static bool found_any_form(const kmsh *h, const uint8_t k[32])
{
    char hex[65], up[65], b64u[64], b64[64];
    assert_luna_ok(luna_hex_encode(k, 32, hex, sizeof(hex)));
    for (int i = 0; i < 65; i++)
        up[i] = (char)((hex[i] >= 'a' && hex[i] <= 'f') ? hex[i] - 32 : hex[i]);
    assert_luna_ok(luna_b64url_encode(k, 32, b64u, sizeof(b64u)));
    for (size_t i = 0; i < sizeof(b64); i++)
        b64[i] = b64u[i] == '-' ? '+' : b64u[i] == '_' ? '/' : b64u[i];
    return in_files(h, k, 32) || in_files(h, (const uint8_t *)hex, 64) ||
           in_files(h, (const uint8_t *)up, 64) || in_files(h, (const uint8_t *)b64u, 43) ||
           in_files(h, (const uint8_t *)b64, 43);
}

static void test_no_plaintext_key_in_database(void **state)
{
    (void)state;
    kmsh h;
    kmsh_setup(&h, NULL);
    kmsh_start(&h);
    uint8_t secrets[MAX_SECRETS][32];
    size_t n_secrets = 0;

    /* Plant: a raw value (a registered measurement), a hex one (a job
     * name) and a base64url one (a request id), and show the search finds
     * each in the form it was stored. */
    uint8_t raw[32], hexv[32], b64v[32];
    char hexs[65], b64s[64], mr[65], body[512];
    assert_luna_ok(luna_random(raw, 32));
    assert_luna_ok(luna_random(hexv, 32));
    do {
        assert_luna_ok(luna_random(b64v, 32));
        assert_luna_ok(luna_b64url_encode(b64v, 32, b64s, sizeof(b64s)));
    } while (strpbrk(b64s, "-_") != NULL); /* same text in both base64 alphabets */
    assert_luna_ok(luna_hex_encode(hexv, 32, hexs, sizeof(hexs)));
    assert_luna_ok(luna_hex_encode(raw, 32, mr, sizeof(mr)));
    snprintf(body, sizeof(body),
             "{\"tee_id\":\"planted\",\"tenants\":[\"acme\"],\"deployment_id\":\"app\","
             "\"tee_type\":\"sim\",\"mr_enclave\":\"%s\"}",
             mr);
    kmsh_resp r;
    assert_int_equal(0, kmsh_call(&h, "attestation", "POST", "/v1/kms/tees", NULL, body, &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
    kmsh_tee t;
    kmsh_tee_new(&h, "dump-tee", &t);
    kmsh_admit(&h, &t, "[\"acme\"]");
    char *tok = kmsh_token(&h, "acme", "client,key-admin");
    uint8_t csk[32], cpk[32], sealed[80];
    char otk[64];
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    assert_int_equal(200, kmsh_issue(&h, tok, t.id, hexs, b64s, cpk, otk, sealed, NULL));
    assert_true(kmsh_open_client(csk, otk, t.id, b64s, sealed, secrets[n_secrets++]));
    assert_true(found_any_form(&h, raw));
    assert_true(found_any_form(&h, hexv));
    assert_true(found_any_form(&h, b64v));
    assert_true(in_files(&h, raw, 32));
    assert_true(in_files(&h, (const uint8_t *)hexs, 64));
    assert_true(in_files(&h, (const uint8_t *)b64s, 43));

    /* Handle keys: OTKs issued and released, data keys made and opened. */
    for (int i = 0; i < 8; i++) {
        char rid[16];
        snprintf(rid, sizeof(rid), "dump-%d", i);
        assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
        assert_int_equal(200, kmsh_issue(&h, tok, t.id, "j", rid, cpk, otk, sealed, NULL));
        assert_true(kmsh_open_client(csk, otk, t.id, rid, sealed, secrets[n_secrets++]));
        if (i % 2 == 0) {
            uint8_t to_tee[80];
            size_t n = 0;
            assert_int_equal(200, kmsh_release_honest(&h, &t, otk, &r));
            assert_true(kmsh_b64(r.body, "sealed_otk", to_tee, sizeof(to_tee), &n));
            assert_true(kmsh_open_tee(&t, otk, to_tee, secrets[n_secrets++]));
            kmsh_resp_free(&r);
        }
    }
    assert_int_equal(0, kmsh_call(&h, "gateway", "POST", "/v1/kms/keys", tok,
                                  "{\"key_id\":\"dk\"}", &r));
    kmsh_resp_free(&r);
    for (int i = 0; i < 4; i++) {
        uint8_t sk[32], pk[32], to_me[80];
        char pkb[64], path[] = "/v1/kms/keys/dk/datakey";
        size_t n = 0;
        assert_luna_ok(luna_hpke_generate_keypair(sk, pk));
        assert_luna_ok(luna_b64url_encode(pk, 32, pkb, sizeof(pkb)));
        snprintf(body, sizeof(body), "{\"recipient_pk\":\"%s\"}", pkb);
        assert_int_equal(0, kmsh_call(&h, "gateway", "POST", path, tok, body, &r));
        assert_int_equal(200, r.status);
        assert_true(kmsh_b64(r.body, "sealed_to_recipient", to_me, 80, &n));
        kmsh_resp_free(&r);
        /* info = the KMS's data-key AAD (docs/kms.md). */
        uint8_t info[128];
        size_t off = 0;
        const char *parts[] = {"lunal kms data key v1", "acme", "dk"};
        for (int j = 0; j < 3; j++) {
            size_t l = strlen(parts[j]);
            info[off++] = 0;
            info[off++] = (uint8_t)l;
            memcpy(info + off, parts[j], l);
            off += l;
        }
        memset(info + off, 0, 7);
        info[off + 7] = 1;
        off += 8;
        luna_hpke_params p = {.suite = {LUNA_HPKE_KEM_X25519_SHA256, LUNA_HPKE_KDF_HKDF_SHA256,
                                        LUNA_HPKE_AEAD_AES256GCM},
                              .mode = LUNA_HPKE_MODE_BASE, .info = info, .info_len = off};
        luna_hpke_ctx *ctx = NULL;
        assert_luna_ok(luna_hpke_setup_receiver(&p, sk, to_me, NULL, &ctx));
        assert_luna_ok(luna_hpke_open(ctx, NULL, 0, to_me + 32, 48, secrets[n_secrets++]));
        luna_hpke_ctx_free(ctx);
    }
    /* While running (WAL not checkpointed) and after a clean stop. */
    for (size_t i = 0; i < n_secrets; i++)
        assert_false(found_any_form(&h, secrets[i]));
    assert_int_equal(0, kmsh_stop(&h, SIGTERM));
    for (size_t i = 0; i < n_secrets; i++)
        assert_false(found_any_form(&h, secrets[i]));
    fprintf(stderr, "searched the database files for %zu keys in 5 encodings: none found\n",
            n_secrets);
    free(tok);
    kmsh_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_attributes_checked_at_start),
        cmocka_unit_test(test_hsm_killed_then_recovers),
        cmocka_unit_test(test_audit_down_releases_nothing),
        cmocka_unit_test(test_database_unavailable),
        cmocka_unit_test(test_kill9_during_releases),
        cmocka_unit_test(test_no_plaintext_key_in_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
