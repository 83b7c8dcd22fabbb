/*
 * Wycheproof (C2SP/wycheproof, testvectors_v1) run through the luna_*
 * crypto wrappers only - never OpenSSL directly - so what is validated is
 * exactly what the platform calls.
 *
 * Every case of every file is run.  "valid" must be accepted with the
 * expected output, "invalid" must be rejected, and each "acceptable" case
 * (and each valid case the platform refuses by design) must match the
 * decision written down in docs/crypto.md; those decisions live in the
 * policy_* functions below.  A file fails when any case is mis-handled or
 * when the number of cases run differs from its numberOfTests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna_test.h"

typedef enum outcome {
    OUT_ACCEPT, /* the wrapper succeeded and produced the expected output */
    OUT_REJECT, /* the wrapper returned an error */
    OUT_WRONG,  /* the wrapper succeeded but the output differs */
} outcome;

typedef struct decision {
    bool accept;        /* what the platform must do with this case */
    luna_err want_err;  /* when !accept: the required code, LUNA_OK = any error */
    const char *why;    /* non-NULL for a documented platform decision */
} decision;

typedef outcome (*run_fn)(const json_t *group, const json_t *test, luna_err *err);
typedef decision (*policy_fn)(const json_t *group, const json_t *test);

/* ---- JSON helpers (a malformed vector file aborts the test loudly) ---- */

static const json_t *jget(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        fprintf(stderr, "vector file: missing field '%s'\n", key);
        abort();
    }
    return v;
}

static const char *jstr(const json_t *obj, const char *key)
{
    const json_t *v = jget(obj, key);
    if (!json_is_string(v)) {
        fprintf(stderr, "vector file: field '%s' is not a string\n", key);
        abort();
    }
    return json_string_value(v);
}

static long long jint(const json_t *obj, const char *key)
{
    const json_t *v = jget(obj, key);
    if (!json_is_integer(v)) {
        fprintf(stderr, "vector file: field '%s' is not an integer\n", key);
        abort();
    }
    return json_integer_value(v);
}

/* A hex field as a malloc'd buffer (never NULL, even when empty). */
static uint8_t *jhex(const json_t *obj, const char *key, size_t *len)
{
    return luna_test_unhex(jstr(obj, key), len);
}

static bool has_flag(const json_t *test, const char *flag)
{
    const json_t *flags = json_object_get(test, "flags");
    size_t i;
    const json_t *f;
    json_array_foreach(flags, i, f)
    {
        if (json_is_string(f) && strcmp(json_string_value(f), flag) == 0)
            return true;
    }
    return false;
}

static bool same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* ---- AEAD ---- */

static outcome run_aead(luna_aead alg, const json_t *t, luna_err *err)
{
    size_t klen, ivlen, alen, mlen, clen, tlen;
    uint8_t *key = jhex(t, "key", &klen);
    uint8_t *iv = jhex(t, "iv", &ivlen);
    uint8_t *aad = jhex(t, "aad", &alen);
    uint8_t *msg = jhex(t, "msg", &mlen);
    uint8_t *ct = jhex(t, "ct", &clen);
    uint8_t *tag = jhex(t, "tag", &tlen);
    uint8_t *full = malloc(clen + tlen + 1);
    uint8_t *pt = malloc(clen + tlen + 1);
    uint8_t *sealed = malloc(mlen + LUNA_AEAD_TAG_LEN + 1);
    outcome o;

    if (full == NULL || pt == NULL || sealed == NULL)
        abort();
    memcpy(full, ct, clen);
    memcpy(full + clen, tag, tlen);
    /* Open decides; a successful open must also be reproduced by seal. */
    *err = luna_aead_open(alg, key, klen, iv, ivlen, aad, alen, full, clen + tlen, pt);
    if (*err != LUNA_OK) {
        o = OUT_REJECT;
    } else if (!same(pt, clen + tlen - LUNA_AEAD_TAG_LEN, msg, mlen)) {
        o = OUT_WRONG;
    } else {
        *err = luna_aead_seal(alg, key, klen, iv, ivlen, aad, alen, msg, mlen, sealed);
        if (*err != LUNA_OK)
            o = OUT_REJECT;
        else
            o = same(sealed, mlen + LUNA_AEAD_TAG_LEN, full, clen + tlen) ? OUT_ACCEPT
                                                                          : OUT_WRONG;
    }
    free(key);
    free(iv);
    free(aad);
    free(msg);
    free(ct);
    free(tag);
    free(full);
    free(pt);
    free(sealed);
    return o;
}

static outcome run_aes_gcm(const json_t *g, const json_t *t, luna_err *err)
{
    luna_aead alg = jint(g, "keySize") == 128   ? LUNA_AEAD_AES128GCM
                    : jint(g, "keySize") == 192 ? LUNA_AEAD_AES192GCM
                                                : LUNA_AEAD_AES256GCM;
    return run_aead(alg, t, err);
}

static outcome run_chacha(const json_t *g, const json_t *t, luna_err *err)
{
    (void)g;
    return run_aead(LUNA_AEAD_CHACHA20POLY1305, t, err);
}

/*
 * valid: accept; invalid: reject with any error.  An "acceptable" case
 * gets no decision here (why == NULL), which the driver reports as a
 * failure unless a policy function decides it.
 */
static decision default_decision(const json_t *t)
{
    decision d = {false, LUNA_OK, NULL};
    d.accept = strcmp(jstr(t, "result"), "valid") == 0;
    return d;
}

static decision policy_aes_gcm(const json_t *g, const json_t *t)
{
    decision d = default_decision(t);
    if (jint(g, "ivSize") == 0) {
        d.accept = false;
        d.want_err = LUNA_ERR_INVALID_ARG;
        d.why = "empty GCM nonce";
    } else if (jint(g, "ivSize") > 128 * 8) {
        d.accept = false;
        d.want_err = LUNA_ERR_UNSUPPORTED;
        d.why = "GCM nonce over 128 bytes unsupported";
    }
    return d;
}

static decision policy_chacha(const json_t *g, const json_t *t)
{
    decision d = default_decision(t);
    if (jint(g, "ivSize") != 96) {
        d.accept = false;
        d.want_err = LUNA_ERR_INVALID_ARG;
        d.why = "RFC 8439 nonce is 96 bits only";
    }
    return d;
}

static decision policy_plain(const json_t *g, const json_t *t)
{
    (void)g;
    return default_decision(t);
}

/* ---- X25519 ---- */

static outcome run_x25519(const json_t *g, const json_t *t, luna_err *err)
{
    size_t sklen, pklen, shlen;
    uint8_t *sk = jhex(t, "private", &sklen);
    uint8_t *pk = jhex(t, "public", &pklen);
    uint8_t *want = jhex(t, "shared", &shlen);
    uint8_t shared[LUNA_X25519_LEN];
    outcome o;

    (void)g;
    if (sklen != LUNA_X25519_LEN || pklen != LUNA_X25519_LEN) {
        /* Fixed-size API: a caller's length check refuses these first. */
        *err = LUNA_ERR_FORMAT;
        o = OUT_REJECT;
    } else {
        *err = luna_x25519(sk, pk, shared);
        if (*err != LUNA_OK)
            o = OUT_REJECT;
        else
            o = same(shared, sizeof(shared), want, shlen) ? OUT_ACCEPT : OUT_WRONG;
    }
    free(sk);
    free(pk);
    free(want);
    return o;
}

static decision policy_x25519(const json_t *g, const json_t *t)
{
    decision d = default_decision(t);
    (void)g;
    if (strcmp(jstr(t, "result"), "acceptable") != 0)
        return d;
    if (has_flag(t, "ZeroSharedSecret")) {
        d.accept = false;
        d.want_err = LUNA_ERR_VERIFY;
        d.why = "all-zero shared secret refused";
    } else {
        /* Twist points, non-canonical u (top bit masked, u >= p reduced),
         * small/special u with a non-zero result: RFC 7748 computes them. */
        d.accept = true;
        d.why = "computed per RFC 7748 (non-zero result)";
    }
    return d;
}

/* ---- HKDF, HMAC ---- */

static outcome run_hkdf(const json_t *g, const json_t *t, luna_err *err)
{
    size_t ikm_len, salt_len, info_len, okm_len;
    uint8_t *ikm = jhex(t, "ikm", &ikm_len);
    uint8_t *salt = jhex(t, "salt", &salt_len);
    uint8_t *info = jhex(t, "info", &info_len);
    uint8_t *want = jhex(t, "okm", &okm_len);
    long long size = jint(t, "size");
    uint8_t *out;
    outcome o;

    (void)g;
    if (size < 0 || size > 1 << 20)
        abort();
    out = malloc((size_t)size + 1);
    if (out == NULL)
        abort();
    *err = luna_hkdf(LUNA_HASH_SHA256, salt, salt_len, ikm, ikm_len, info, info_len, out,
                     (size_t)size);
    if (*err != LUNA_OK)
        o = OUT_REJECT;
    else
        o = same(out, (size_t)size, want, okm_len) ? OUT_ACCEPT : OUT_WRONG;
    free(ikm);
    free(salt);
    free(info);
    free(want);
    free(out);
    return o;
}

static outcome run_hmac(const json_t *g, const json_t *t, luna_err *err)
{
    size_t klen, mlen, tlen;
    size_t want_len = (size_t)jint(g, "tagSize") / 8;
    uint8_t *key = jhex(t, "key", &klen);
    uint8_t *msg = jhex(t, "msg", &mlen);
    uint8_t *tag = jhex(t, "tag", &tlen);
    uint8_t mac[LUNA_SHA256_LEN];
    outcome o;

    if (tlen != want_len) {
        /* The protocol fixes the tag length; callers refuse others. */
        *err = LUNA_ERR_FORMAT;
        o = OUT_REJECT;
    } else {
        *err = luna_hmac_verify(LUNA_HASH_SHA256, key, klen, msg, mlen, tag, tlen);
        if (*err != LUNA_OK) {
            o = OUT_REJECT;
        } else {
            /* Verified: the computed MAC must also start with the tag. */
            *err = luna_hmac(LUNA_HASH_SHA256, key, klen, msg, mlen, mac);
            if (*err != LUNA_OK)
                o = OUT_REJECT;
            else
                o = tlen <= sizeof(mac) && memcmp(mac, tag, tlen) == 0 ? OUT_ACCEPT : OUT_WRONG;
        }
    }
    free(key);
    free(msg);
    free(tag);
    return o;
}

/* ---- signatures ---- */

static outcome run_ed25519(const json_t *g, const json_t *t, luna_err *err)
{
    size_t pklen, mlen, slen;
    uint8_t *pk = jhex(jget(g, "publicKey"), "pk", &pklen);
    uint8_t *msg = jhex(t, "msg", &mlen);
    uint8_t *sig = jhex(t, "sig", &slen);

    if (pklen != LUNA_ED25519_PUB_LEN)
        *err = LUNA_ERR_FORMAT; /* fixed-size API: the caller's length check */
    else
        *err = luna_ed25519_verify(pk, msg, mlen, sig, slen);
    free(pk);
    free(msg);
    free(sig);
    return *err == LUNA_OK ? OUT_ACCEPT : OUT_REJECT;
}

static outcome run_ecdsa(const json_t *g, const json_t *t, luna_sig_format fmt, luna_err *err)
{
    const json_t *key = jget(g, "publicKey");
    const char *curve_name = jstr(key, "curve");
    const char *sha = jstr(g, "sha");
    luna_ec_curve curve;
    size_t plen, mlen, slen;
    uint8_t *pub, *msg, *sig;

    if (strcmp(curve_name, "secp256r1") == 0 && strcmp(sha, "SHA-256") == 0) {
        curve = LUNA_EC_P256;
    } else if (strcmp(curve_name, "secp384r1") == 0 && strcmp(sha, "SHA-384") == 0) {
        curve = LUNA_EC_P384;
    } else {
        fprintf(stderr, "unexpected ECDSA group %s/%s\n", curve_name, sha);
        abort();
    }
    pub = jhex(key, "uncompressed", &plen);
    msg = jhex(t, "msg", &mlen);
    sig = jhex(t, "sig", &slen);
    *err = luna_ecdsa_verify(curve, pub, plen, fmt, msg, mlen, sig, slen);
    free(pub);
    free(msg);
    free(sig);
    return *err == LUNA_OK ? OUT_ACCEPT : OUT_REJECT;
}

static outcome run_ecdsa_der(const json_t *g, const json_t *t, luna_err *err)
{
    return run_ecdsa(g, t, LUNA_SIG_DER, err);
}

static outcome run_ecdsa_p1363(const json_t *g, const json_t *t, luna_err *err)
{
    return run_ecdsa(g, t, LUNA_SIG_P1363, err);
}

/* ---- the driver ---- */

#define MAX_REASONS 4

typedef struct tally {
    long run;
    long valid, valid_accepted;
    long invalid, invalid_rejected;
    long acceptable, acc_accepted, acc_rejected;
    long failures;
    const char *reason[MAX_REASONS]; /* valid cases refused by design */
    long reason_count[MAX_REASONS];
} tally;

static void note_reason(tally *s, const char *why)
{
    for (int i = 0; i < MAX_REASONS; i++) {
        if (s->reason[i] == NULL || strcmp(s->reason[i], why) == 0) {
            s->reason[i] = why;
            s->reason_count[i]++;
            return;
        }
    }
    abort();
}

static const char *outcome_name(outcome o)
{
    return o == OUT_ACCEPT ? "accepted" : o == OUT_REJECT ? "rejected" : "WRONG OUTPUT";
}

static void print_failure(const char *file, const json_t *t, const char *want, outcome o,
                          luna_err err)
{
    const json_t *flags = json_object_get(t, "flags");
    size_t i;
    const json_t *f;

    printf("FAIL %s tcId=%lld result=%s: want %s, got %s (%s); comment='%s' flags=[", file,
           jint(t, "tcId"), jstr(t, "result"), want, outcome_name(o), luna_errname(err),
           jstr(t, "comment"));
    json_array_foreach(flags, i, f)
    {
        printf("%s%s", i ? "," : "", json_is_string(f) ? json_string_value(f) : "?");
    }
    printf("]\n");
}

static void run_file(const char *relative, run_fn run, policy_fn policy)
{
    char *path = luna_test_vector_path(relative);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    const json_t *groups, *g, *tests, *t;
    size_t gi, ti;
    tally s;
    long long expected;

    memset(&s, 0, sizeof(s));
    if (root == NULL) {
        fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text, jerr.line);
        fail_msg("cannot parse %s", relative);
    }
    expected = jint(root, "numberOfTests");
    groups = jget(root, "testGroups");
    assert_true(json_is_array(groups));

    json_array_foreach(groups, gi, g)
    {
        tests = jget(g, "tests");
        json_array_foreach(tests, ti, t)
        {
            const char *result = jstr(t, "result");
            decision d = policy(g, t);
            luna_err err = LUNA_OK;
            outcome o = run(g, t, &err);
            bool ok;

            s.run++;
            if (d.accept)
                ok = o == OUT_ACCEPT;
            else
                ok = o == OUT_REJECT && (d.want_err == LUNA_OK || err == d.want_err);

            if (strcmp(result, "valid") == 0) {
                s.valid++;
                if (ok && d.accept)
                    s.valid_accepted++;
                else if (ok)
                    note_reason(&s, d.why);
            } else if (strcmp(result, "invalid") == 0) {
                s.invalid++;
                /* An invalid case the policy would accept is a policy bug. */
                ok = ok && !d.accept;
                if (ok)
                    s.invalid_rejected++;
            } else if (strcmp(result, "acceptable") == 0) {
                s.acceptable++;
                /* "acceptable" needs a written-down decision. */
                ok = ok && d.why != NULL;
                if (ok && d.accept)
                    s.acc_accepted++;
                else if (ok)
                    s.acc_rejected++;
            } else {
                ok = false;
            }
            if (!ok) {
                s.failures++;
                print_failure(relative, t,
                              d.accept ? "accept" : d.why ? d.why : "reject", o, err);
            }
        }
    }

    printf("%-42s run %ld/%lld | valid accepted %ld/%ld", relative + strlen("wycheproof/"),
           s.run, expected, s.valid_accepted, s.valid);
    for (int i = 0; i < MAX_REASONS && s.reason[i] != NULL; i++)
        printf(" (refused by design: %ld %s)", s.reason_count[i], s.reason[i]);
    printf(" | invalid rejected %ld/%ld | acceptable %ld (accepted %ld, rejected %ld)"
           " | failures %ld\n",
           s.invalid_rejected, s.invalid, s.acceptable, s.acc_accepted, s.acc_rejected,
           s.failures);
    fflush(stdout);

    json_decref(root);
    free(path);
    assert_int_equal(expected, s.run);
    assert_int_equal(0, s.failures);
    assert_true(s.run > 0);
}

static void aes_gcm(void **state)
{
    (void)state;
    run_file("wycheproof/aes_gcm_test.json", run_aes_gcm, policy_aes_gcm);
}

static void chacha20_poly1305(void **state)
{
    (void)state;
    run_file("wycheproof/chacha20_poly1305_test.json", run_chacha, policy_chacha);
}

static void x25519(void **state)
{
    (void)state;
    run_file("wycheproof/x25519_test.json", run_x25519, policy_x25519);
}

static void hkdf_sha256(void **state)
{
    (void)state;
    run_file("wycheproof/hkdf_sha256_test.json", run_hkdf, policy_plain);
}

static void hmac_sha256(void **state)
{
    (void)state;
    run_file("wycheproof/hmac_sha256_test.json", run_hmac, policy_plain);
}

static void ed25519(void **state)
{
    (void)state;
    run_file("wycheproof/ed25519_test.json", run_ed25519, policy_plain);
}

static void ecdsa_p256_der(void **state)
{
    (void)state;
    run_file("wycheproof/ecdsa_secp256r1_sha256_test.json", run_ecdsa_der, policy_plain);
}

static void ecdsa_p256_p1363(void **state)
{
    (void)state;
    run_file("wycheproof/ecdsa_secp256r1_sha256_p1363_test.json", run_ecdsa_p1363,
             policy_plain);
}

static void ecdsa_p384_der(void **state)
{
    (void)state;
    run_file("wycheproof/ecdsa_secp384r1_sha384_test.json", run_ecdsa_der, policy_plain);
}

static void ecdsa_p384_p1363(void **state)
{
    (void)state;
    run_file("wycheproof/ecdsa_secp384r1_sha384_p1363_test.json", run_ecdsa_p1363,
             policy_plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(aes_gcm),          cmocka_unit_test(chacha20_poly1305),
        cmocka_unit_test(x25519),           cmocka_unit_test(hkdf_sha256),
        cmocka_unit_test(hmac_sha256),      cmocka_unit_test(ed25519),
        cmocka_unit_test(ecdsa_p256_der),   cmocka_unit_test(ecdsa_p256_p1363),
        cmocka_unit_test(ecdsa_p384_der),   cmocka_unit_test(ecdsa_p384_p1363),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
