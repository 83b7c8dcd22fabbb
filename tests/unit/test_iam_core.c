/*
 * test_iam_core.c - the IAM building blocks in process: API key grammar,
 * hash and constant-time check (with a dudect-style timing test that must
 * flag a leaky byte-by-byte compare used as its control, and must not flag
 * iam_apikey_check), the role table, identifiers and admin paths, the
 * developer key fingerprint, the master key file rules, and the signing
 * key ring's rollover schedule.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "iam.h"
#include "luna/bytes.h"
#include "luna_test.h"

static void test_apikey_format(void **state)
{
    (void)state;
    char key[IAM_APIKEY_BUF], id[IAM_APIKEY_ID_BUF], id2[IAM_APIKEY_ID_BUF];
    const char *secret = NULL;
    assert_luna_ok(iam_apikey_generate(key, id));
    assert_int_equal(IAM_APIKEY_LEN, strlen(key));
    assert_luna_ok(iam_apikey_parse(key, strlen(key), id2, &secret));
    assert_string_equal(id, id2);
    assert_ptr_equal(key + 21, secret);
    char other[IAM_APIKEY_BUF], oid[IAM_APIKEY_ID_BUF];
    assert_luna_ok(iam_apikey_generate(other, oid));
    assert_string_not_equal(key, other);
    /* Refusals: length, prefix, id case and alphabet, separator, secret alphabet. */
    char bad[IAM_APIKEY_BUF + 1];
    assert_luna_err(LUNA_ERR_FORMAT, iam_apikey_parse(key, strlen(key) - 1, id2, &secret));
    assert_null(secret);
    memcpy(bad, key, sizeof(key));
    bad[0] = 'L';
    assert_luna_err(LUNA_ERR_FORMAT, iam_apikey_parse(bad, strlen(bad), id2, &secret));
    memcpy(bad, key, sizeof(key));
    bad[5] = 'A';
    assert_luna_err(LUNA_ERR_FORMAT, iam_apikey_parse(bad, strlen(bad), id2, &secret));
    memcpy(bad, key, sizeof(key));
    bad[5] = 'g';
    assert_luna_err(LUNA_ERR_FORMAT, iam_apikey_parse(bad, strlen(bad), id2, &secret));
    memcpy(bad, key, sizeof(key));
    bad[20] = '-';
    assert_luna_err(LUNA_ERR_FORMAT, iam_apikey_parse(bad, strlen(bad), id2, &secret));
    memcpy(bad, key, sizeof(key));
    bad[40] = '+';
    assert_luna_err(LUNA_ERR_FORMAT, iam_apikey_parse(bad, strlen(bad), id2, &secret));
    memcpy(bad, key, sizeof(key));
    bad[40] = '\0';
    assert_luna_err(LUNA_ERR_FORMAT, iam_apikey_parse(bad, IAM_APIKEY_LEN, id2, &secret));
}

static void test_apikey_hash(void **state)
{
    (void)state;
    uint8_t pepper[IAM_PEPPER_LEN], salt[IAM_APIKEY_SALT_LEN], h[IAM_APIKEY_HASH_LEN];
    assert_luna_ok(luna_random(pepper, sizeof(pepper)));
    assert_luna_ok(luna_random(salt, sizeof(salt)));
    char key[IAM_APIKEY_BUF], id[IAM_APIKEY_ID_BUF];
    const char *secret;
    assert_luna_ok(iam_apikey_generate(key, id));
    assert_luna_ok(iam_apikey_parse(key, strlen(key), id, &secret));
    assert_luna_ok(iam_apikey_hash(pepper, salt, id, secret, h));
    assert_luna_ok(iam_apikey_check(pepper, salt, id, secret, h));
    /* Every single-character change of the secret fails. */
    for (size_t i = 0; i < IAM_APIKEY_SECRET_B64; i++) {
        char s2[IAM_APIKEY_SECRET_B64 + 1];
        memcpy(s2, secret, IAM_APIKEY_SECRET_B64);
        s2[IAM_APIKEY_SECRET_B64] = '\0';
        s2[i] = s2[i] == 'A' ? 'B' : 'A';
        assert_luna_err(LUNA_ERR_VERIFY, iam_apikey_check(pepper, salt, id, s2, h));
    }
    /* Salt, pepper and key id are all bound in. */
    uint8_t other[IAM_PEPPER_LEN];
    memcpy(other, salt, sizeof(salt));
    other[0] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, iam_apikey_check(pepper, other, id, secret, h));
    memcpy(other, pepper, sizeof(pepper));
    other[31] ^= 0x80;
    assert_luna_err(LUNA_ERR_VERIFY, iam_apikey_check(other, salt, id, secret, h));
    char id2[IAM_APIKEY_ID_BUF];
    memcpy(id2, id, sizeof(id2));
    id2[0] = id2[0] == '0' ? '1' : '0';
    assert_luna_err(LUNA_ERR_VERIFY, iam_apikey_check(pepper, salt, id2, secret, h));
    /* The same secret under two salts hashes differently. */
    uint8_t h2[IAM_APIKEY_HASH_LEN];
    assert_luna_ok(iam_apikey_hash(pepper, other, id, secret, h2));
    assert_memory_not_equal(h, h2, sizeof(h));
    assert_luna_err(LUNA_ERR_INVALID_ARG, iam_apikey_hash(pepper, salt, "short", secret, h));
}

/* ---- dudect-style timing ---- */

#define SAMPLES 40000
#define T_LEAK 10.0 /* dudect's "definitely leaking" threshold */

typedef bool (*cmp_fn)(const char *presented);

static uint8_t T_pepper[IAM_PEPPER_LEN], T_salt[IAM_APIKEY_SALT_LEN], T_hash[IAM_APIKEY_HASH_LEN];
static char T_id[IAM_APIKEY_ID_BUF], T_secret[IAM_APIKEY_SECRET_B64 + 1];

static bool iam_cmp(const char *presented)
{
    return iam_apikey_check(T_pepper, T_salt, T_id, presented, T_hash) == LUNA_OK;
}

/* The control: what a naive implementation does with a stored plaintext. */
static bool leaky_cmp(const char *presented)
{
    const volatile char *a = presented;
    const volatile char *b = T_secret;
    for (size_t i = 0; i < IAM_APIKEY_SECRET_B64; i++) {
        if (a[i] != b[i])
            return false;
    }
    return true;
}

static int64_t ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/*
 * Welch's t between class 0 (presented key differs at the first
 * character) and class 1 (differs only at the last), classes interleaved
 * at random, samples above the 80th percentile cropped (dudect's
 * preprocessing against interrupts and scheduling noise).
 */
static double welch_t(cmp_fn f)
{
    char c0[IAM_APIKEY_SECRET_B64 + 1], c1[IAM_APIKEY_SECRET_B64 + 1];
    memcpy(c0, T_secret, sizeof(c0));
    memcpy(c1, T_secret, sizeof(c1));
    c0[0] = c0[0] == 'A' ? 'B' : 'A';
    c1[IAM_APIKEY_SECRET_B64 - 1] = c1[IAM_APIKEY_SECRET_B64 - 1] == 'A' ? 'B' : 'A';
    int64_t *t = malloc(sizeof(int64_t) * SAMPLES);
    int64_t *sorted = malloc(sizeof(int64_t) * SAMPLES);
    uint8_t *cls = malloc(SAMPLES);
    assert_non_null(t);
    assert_non_null(sorted);
    assert_non_null(cls);
    assert_luna_ok(luna_random(cls, SAMPLES));
    for (size_t i = 0; i < 1000; i++) /* warm-up */
        (void)f(c0);
    for (size_t i = 0; i < SAMPLES; i++) {
        const char *in = (cls[i] & 1) != 0 ? c1 : c0;
        int64_t a = ns();
        bool r = f(in);
        int64_t b = ns();
        assert_false(r);
        t[i] = b - a;
    }
    memcpy(sorted, t, sizeof(int64_t) * SAMPLES);
    qsort(sorted, SAMPLES, sizeof(int64_t), cmp_i64);
    int64_t cut = sorted[(SAMPLES * 8) / 10];
    double n[2] = {0, 0}, mean[2] = {0, 0}, m2[2] = {0, 0};
    for (size_t i = 0; i < SAMPLES; i++) {
        if (t[i] > cut)
            continue;
        int k = cls[i] & 1;
        n[k] += 1;
        double d = (double)t[i] - mean[k];
        mean[k] += d / n[k];
        m2[k] += d * ((double)t[i] - mean[k]);
    }
    free(t);
    free(sorted);
    free(cls);
    assert_true(n[0] > 100 && n[1] > 100);
    double v0 = m2[0] / (n[0] - 1), v1 = m2[1] / (n[1] - 1);
    double se = sqrt(v0 / n[0] + v1 / n[1]);
    if (se == 0)
        return mean[0] == mean[1] ? 0.0 : INFINITY;
    return (mean[0] - mean[1]) / se;
}

static void test_apikey_timing(void **state)
{
    (void)state;
    char key[IAM_APIKEY_BUF];
    const char *secret;
    assert_luna_ok(luna_random(T_pepper, sizeof(T_pepper)));
    assert_luna_ok(luna_random(T_salt, sizeof(T_salt)));
    assert_luna_ok(iam_apikey_generate(key, T_id));
    assert_luna_ok(iam_apikey_parse(key, strlen(key), T_id, &secret));
    memcpy(T_secret, secret, IAM_APIKEY_SECRET_B64);
    T_secret[IAM_APIKEY_SECRET_B64] = '\0';
    assert_luna_ok(iam_apikey_hash(T_pepper, T_salt, T_id, T_secret, T_hash));
    /* The control proves the method can see a leak of this size... */
    double t_leaky = welch_t(leaky_cmp);
    /* ...and the real check shows none.  Retried once against scheduler noise. */
    double t_iam = welch_t(iam_cmp);
    if (fabs(t_iam) >= T_LEAK)
        t_iam = welch_t(iam_cmp);
    fprintf(stderr, "timing: |t| leaky control = %.1f, iam_apikey_check = %.1f\n", fabs(t_leaky),
            fabs(t_iam));
    assert_true(fabs(t_leaky) >= T_LEAK);
    assert_true(fabs(t_iam) < T_LEAK);
}

/* ---- roles ---- */

static void test_roles(void **state)
{
    (void)state;
    iam_role r;
    iam_perm p;
    assert_false(iam_role_from_name("root", &r));
    assert_false(iam_role_from_name("Tenant-Admin", &r));
    assert_false(iam_perm_from_name("jobs.*", &p));
    for (unsigned i = 0; i < IAM_ROLE__COUNT; i++) {
        assert_true(iam_role_from_name(iam_role_name((iam_role)i), &r));
        assert_int_equal(i, r);
    }
    for (unsigned i = 0; i < IAM_PERM__COUNT; i++) {
        assert_true(iam_perm_from_name(iam_perm_name((iam_perm)i), &p));
        assert_int_equal(i, p);
        /* No role at all: denied. */
        assert_false(iam_roles_allow(0, (iam_perm)i));
        /* Platform administration is the platform admin's alone. */
        bool only_platform = i == IAM_PERM_PLATFORM_ADMIN;
        assert_int_equal(only_platform,
                         iam_roles_allow(1u << IAM_ROLE_PLATFORM_ADMIN, (iam_perm)i));
        if (only_platform) {
            for (unsigned k = 0; k < IAM_ROLE__COUNT; k++) {
                if (k != IAM_ROLE_PLATFORM_ADMIN)
                    assert_false(iam_roles_allow(1u << k, (iam_perm)i));
            }
        }
    }
    assert_true(iam_roles_allow(1u << IAM_ROLE_CLIENT, IAM_PERM_JOBS_RUN));
    assert_false(iam_roles_allow(1u << IAM_ROLE_CLIENT, IAM_PERM_KEYS_MANAGE));
    assert_false(iam_roles_allow(1u << IAM_ROLE_AUDITOR, IAM_PERM_JOBS_RUN));
    assert_true(iam_roles_allow(1u << IAM_ROLE_AUDITOR, IAM_PERM_AUDIT_READ));
    assert_true(iam_roles_allow(1u << IAM_ROLE_KEY_ADMIN, IAM_PERM_KEYS_MANAGE));
    assert_false(iam_roles_allow(1u << IAM_ROLE_TENANT_ADMIN, IAM_PERM_KEYS_MANAGE));
    assert_false(iam_roles_allow(1u << IAM_ROLE_TENANT_ADMIN, IAM_PERM_JOBS_RUN));
    assert_false(iam_roles_allow(0xffffffffu, IAM_PERM__COUNT));
}

/* ---- identifiers, paths, fingerprints ---- */

static void test_ids_and_paths(void **state)
{
    (void)state;
    assert_true(iam_id_valid("acme"));
    assert_true(iam_id_valid("a_b-9"));
    assert_false(iam_id_valid(""));
    assert_false(iam_id_valid("Acme"));
    assert_false(iam_id_valid("a.b"));
    assert_false(iam_id_valid("a/b"));
    assert_false(iam_id_valid(NULL));
    char long_id[80];
    memset(long_id, 'a', sizeof(long_id));
    long_id[64] = '\0';
    assert_true(iam_id_valid(long_id));
    long_id[64] = 'a';
    long_id[65] = '\0';
    assert_false(iam_id_valid(long_id));
    assert_true(iam_job_valid("summarize.v2"));
    assert_true(iam_job_valid("*"));
    assert_false(iam_job_valid("a b"));
    assert_false(iam_job_valid("**"));

    iam_path p;
    assert_luna_ok(iam_path_parse("acme/principals/app1/api-keys/0123", &p));
    assert_int_equal(5, p.n);
    assert_string_equal("acme", p.seg[0]);
    assert_string_equal("0123", p.seg[4]);
    static const char *const bad[] = {"",      "/acme",        "acme/",      "acme//x",
                                      "ACME",  "acme/../beta", "acme/%2e",   "a/b/c/d/e/f/g",
                                      "acme?x", "acme/prin cipals"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_luna_err(LUNA_ERR_FORMAT, iam_path_parse(bad[i], &p));
        assert_int_equal(0, p.n);
    }
    long_id[65] = '\0';
    assert_luna_err(LUNA_ERR_FORMAT, iam_path_parse(long_id, &p));

    /* First 16 bytes of SHA-256 of 32 zero bytes, as colon-separated pairs. */
    uint8_t pk[32] = {0};
    char fp[IAM_DEV_KEY_ID_LEN + 1];
    assert_luna_ok(iam_developer_key_id(pk, fp));
    assert_string_equal("66:68:7a:ad:f8:62:bd:77:6c:8f:c1:8b:8e:9f:8e:20", fp);
}

/* ---- master key and key ring ---- */

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "/tmp/luna-iam-unit-%ld-%s", (long)getpid(), name);
}

static void test_master_file(void **state)
{
    (void)state;
    char path[256];
    luna_secret *m = NULL;
    tmp_path(path, sizeof(path), "master");
    unlink(path);
    assert_luna_err(LUNA_ERR_NOT_FOUND, iam_master_load(path, &m));
    assert_luna_ok(iam_master_create(path));
    assert_luna_err(LUNA_ERR_CONFLICT, iam_master_create(path));
    struct stat st;
    assert_int_equal(0, stat(path, &st));
    assert_int_equal(0600, st.st_mode & 0777);
    assert_luna_ok(iam_master_load(path, &m));
    assert_int_equal(IAM_MASTER_KEY_LEN, luna_secret_len(m));
    luna_secret_free(m);
    m = NULL;
    assert_int_equal(0, chmod(path, 0640));
    assert_luna_err(LUNA_ERR_PERMISSION, iam_master_load(path, &m));
    assert_null(m);
    assert_int_equal(0, chmod(path, 0600));
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fputc('x', f);
    fclose(f);
    assert_luna_err(LUNA_ERR_FORMAT, iam_master_load(path, &m));
    unlink(path);
    char link_path[256];
    tmp_path(link_path, sizeof(link_path), "master-link");
    assert_luna_ok(iam_master_create(path));
    unlink(link_path);
    assert_int_equal(0, symlink(path, link_path));
    assert_luna_err(LUNA_ERR_PERMISSION, iam_master_load(link_path, &m));
    unlink(link_path);
    unlink(path);
}

static luna_secret *fresh_master(void)
{
    uint8_t k[IAM_MASTER_KEY_LEN];
    luna_secret *m = NULL;
    assert_luna_ok(luna_random(k, sizeof(k)));
    assert_luna_ok(luna_secret_from(k, sizeof(k), &m));
    luna_wipe(k, sizeof(k));
    return m;
}

static void test_keyring_rollover(void **state)
{
    (void)state;
    luna_store *db = NULL;
    assert_luna_ok(luna_store_open("sqlite::memory:", NULL, &db));
    assert_luna_ok(iam_db_migrate(db));
    assert_luna_ok(iam_db_migrate(db)); /* idempotent */
    luna_secret *m = fresh_master();
    iam_keyring ring;
    memset(&ring, 0, sizeof(ring));
    const int64_t T = 1000000, DELAY = 100, TTL = 300, SKEW = 60;
    char a[IAM_KID_MAX + 1], b[IAM_KID_MAX + 1];
    assert_luna_ok(iam_keyring_refresh(&ring, db, m, T));
    assert_null(iam_keyring_current(&ring, T));
    /* The first key is active at once. */
    assert_luna_ok(iam_signing_rotate(db, m, T, DELAY, TTL, SKEW, a));
    assert_luna_ok(iam_keyring_refresh(&ring, db, m, T));
    assert_string_equal(a, iam_keyring_current(&ring, T)->kid);
    /* The second is published at once and used after the delay. */
    assert_luna_ok(iam_signing_rotate(db, m, T + 10, DELAY, TTL, SKEW, b));
    assert_luna_ok(iam_keyring_refresh(&ring, db, m, T + 10));
    assert_int_equal(2, luna_jws_keyset_count(ring.published));
    assert_string_equal(a, iam_keyring_current(&ring, T + 10 + DELAY - 1)->kid);
    assert_string_equal(b, iam_keyring_current(&ring, T + 10 + DELAY)->kid);
    /* A stays published until its last token expired (+ skew). */
    int64_t retire = T + 10 + DELAY + TTL + SKEW;
    assert_luna_ok(iam_keyring_refresh(&ring, db, m, retire - 1));
    assert_int_equal(2, luna_jws_keyset_count(ring.published));
    assert_luna_ok(iam_keyring_refresh(&ring, db, m, retire));
    assert_int_equal(1, luna_jws_keyset_count(ring.published));
    uint8_t pk[32];
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_jws_keyset_find(ring.published, a, pk));
    assert_luna_ok(luna_jws_keyset_find(ring.published, b, pk));
    /* Another master key cannot open the seeds: refresh fails, ring kept. */
    luna_secret *m2 = fresh_master();
    assert_int_not_equal(LUNA_OK, iam_keyring_refresh(&ring, db, m2, retire));
    assert_int_equal(1, luna_jws_keyset_count(ring.published));
    /* A tampered sealed seed is refused. */
    const luna_store_param p[] = {luna_store_p_text(b)};
    assert_luna_ok(luna_store_exec(db,
                                   "UPDATE iam_signing_keys SET sealed_seed = "
                                   "zeroblob(60) WHERE kid = ?1",
                                   p, 1, NULL));
    assert_int_not_equal(LUNA_OK, iam_keyring_refresh(&ring, db, m, retire));
    iam_keyring_clear(&ring);
    luna_secret_free(m2);
    luna_secret_free(m);
    luna_store_close(db);
}

static void test_bootstrap_rule(void **state)
{
    (void)state;
    luna_store *db = NULL;
    assert_luna_ok(luna_store_open("sqlite::memory:", NULL, &db));
    assert_luna_ok(iam_db_migrate(db));
    luna_secret *m = fresh_master();
    char key[IAM_APIKEY_BUF], id[IAM_APIKEY_ID_BUF];
    assert_luna_ok(iam_tenant_create(db, m, "acme", NULL, "admin", true, 1000, 100, key, id));
    assert_int_equal(IAM_APIKEY_LEN, strlen(key));
    /* A second platform admin through bootstrap: refused, no key handed out. */
    assert_luna_err(LUNA_ERR_CONFLICT,
                    iam_tenant_create(db, m, "other", NULL, "admin", true, 1000, 100, key, id));
    assert_string_equal("", id);
    /* Same tenant twice: refused. */
    assert_luna_err(LUNA_ERR_CONFLICT,
                    iam_tenant_create(db, m, "acme", NULL, "x", false, 1000, 100, key, id));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    iam_tenant_create(db, m, "b", NULL, "anonymous", false, 1000, 100, key, id));
    assert_luna_ok(iam_tenant_create(db, m, "beta", "Beta", "root", false, 1000, 100, key, id));
    luna_secret_free(m);
    luna_store_close(db);
}

/* A bootstrap whose key could not be handed out is undone, and only that. */
static void test_bootstrap_undo(void **state)
{
    (void)state;
    luna_store *db = NULL;
    assert_luna_ok(luna_store_open("sqlite::memory:", NULL, &db));
    assert_luna_ok(iam_db_migrate(db));
    luna_secret *m = fresh_master();
    char key[IAM_APIKEY_BUF], id[IAM_APIKEY_ID_BUF], id2[IAM_APIKEY_ID_BUF];
    assert_luna_ok(iam_tenant_create(db, m, "acme", NULL, "admin", true, 1000, 100, key, id));
    assert_luna_err(LUNA_ERR_CONFLICT,
                    iam_tenant_drop_bootstrap(db, "acme", "admin", "0123456789abcdef"));
    assert_luna_err(LUNA_ERR_CONFLICT, iam_tenant_drop_bootstrap(db, "acme", "root", id));
    assert_luna_ok(iam_tenant_drop_bootstrap(db, "acme", "admin", id));
    assert_luna_ok(iam_tenant_create(db, m, "acme", NULL, "admin", true, 1000, 100, key, id));
    /* A tenant in use (a second key) is never dropped. */
    uint8_t pepper[IAM_PEPPER_LEN];
    assert_luna_ok(iam_master_derive(m, IAM_PEPPER_INFO, pepper, sizeof(pepper)));
    char k2[IAM_APIKEY_BUF];
    assert_luna_ok(iam_apikey_generate(k2, id2));
    assert_luna_ok(iam_apikey_store(db, pepper, "acme", "admin", k2, 1000, 100));
    assert_luna_err(LUNA_ERR_CONFLICT, iam_tenant_drop_bootstrap(db, "acme", "admin", id));
    luna_wipe(pepper, sizeof(pepper));
    luna_secret_free(m);
    luna_store_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apikey_format),  cmocka_unit_test(test_apikey_hash),
        cmocka_unit_test(test_apikey_timing),  cmocka_unit_test(test_roles),
        cmocka_unit_test(test_bootstrap_undo),
        cmocka_unit_test(test_ids_and_paths),  cmocka_unit_test(test_master_file),
        cmocka_unit_test(test_keyring_rollover), cmocka_unit_test(test_bootstrap_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
