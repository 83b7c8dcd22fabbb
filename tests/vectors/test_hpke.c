/*
 * test_hpke.c - every RFC 9180 vector of the shared file
 * hpke/test-vectors.json (DHKEM(X25519), HKDF-SHA256/512, AES-128/256-GCM,
 * ChaCha20-Poly1305, four modes): DeriveKeyPair of ikmE/ikmR/ikmS, enc,
 * shared_secret (Encap and Decap), every key schedule value, each of the
 * 257 encryptions per vector sealed and opened in order on one context,
 * and every export from both sides.  Prints a per-suite tally and fails
 * when any value is wrong or any vector, encryption or export is missing.
 */
#include "luna_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpke_internal.h"
#include "luna/bytes.h"
#include "luna/hpke.h"

#define EXPECTED_VECTORS 24
#define EXPECTED_ENCRYPTIONS (24 * 257)
#define EXPECTED_EXPORTS (24 * 3)

typedef struct tally {
    int mode, kdf, aead;
    int vectors, vectors_ok;
    int enc, enc_ok;
    int exp, exp_ok;
} tally;

static int failures;

static uint8_t *field(json_t *obj, const char *name, size_t *len)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v)) {
        fprintf(stderr, "vector lacks field %s\n", name);
        abort();
    }
    return luna_test_unhex(json_string_value(v), len);
}

/* Compares got with the hex field; reports (never prints secrets of prod). */
static int check(json_t *obj, const char *name, const uint8_t *got, size_t got_len)
{
    size_t len;
    uint8_t *want = field(obj, name, &len);
    int ok = len == got_len && memcmp(want, got, len) == 0;
    if (!ok) {
        fprintf(stderr, "  mismatch: %s\n", name);
        failures++;
    }
    free(want);
    return ok;
}

static int derive_and_check(json_t *v, const char *ikm_name, const char *sk_name,
                            const char *pk_name, uint8_t sk[32], uint8_t pk[32])
{
    size_t ikm_len;
    uint8_t *ikm = field(v, ikm_name, &ikm_len);
    int ok = luna_hpke_derive_keypair(ikm, ikm_len, sk, pk) == LUNA_OK;
    free(ikm);
    if (!ok) {
        fprintf(stderr, "  DeriveKeyPair(%s) failed\n", ikm_name);
        failures++;
        return 0;
    }
    return check(v, sk_name, sk, 32) & check(v, pk_name, pk, 32);
}

static void run_vector(json_t *v, tally *t)
{
    luna_hpke_params p;
    uint8_t sk_e[32], pk_e[32], sk_r[32], pk_r[32], sk_s[32] = {0}, pk_s[32] = {0};
    uint8_t enc[32], ss_send[32], ss_recv[32];
    luna_hpke_schedule ks;
    luna_hpke_ctx *sender = NULL, *receiver = NULL;
    uint8_t *info, *psk = NULL, *psk_id = NULL;
    size_t info_len, psk_len = 0, psk_id_len = 0;
    int before = failures;
    int auth;

    memset(&p, 0, sizeof(p));
    p.mode = (luna_hpke_mode)json_integer_value(json_object_get(v, "mode"));
    p.suite.kem_id = (uint16_t)json_integer_value(json_object_get(v, "kem_id"));
    p.suite.kdf_id = (uint16_t)json_integer_value(json_object_get(v, "kdf_id"));
    p.suite.aead_id = (uint16_t)json_integer_value(json_object_get(v, "aead_id"));
    auth = p.mode == LUNA_HPKE_MODE_AUTH || p.mode == LUNA_HPKE_MODE_AUTH_PSK;
    info = field(v, "info", &info_len);
    p.info = info;
    p.info_len = info_len;
    if (p.mode == LUNA_HPKE_MODE_PSK || p.mode == LUNA_HPKE_MODE_AUTH_PSK) {
        psk = field(v, "psk", &psk_len);
        psk_id = field(v, "psk_id", &psk_id_len);
        p.psk = psk;
        p.psk_len = psk_len;
        p.psk_id = psk_id;
        p.psk_id_len = psk_id_len;
    }
    t->vectors++;

    derive_and_check(v, "ikmE", "skEm", "pkEm", sk_e, pk_e);
    derive_and_check(v, "ikmR", "skRm", "pkRm", sk_r, pk_r);
    if (auth)
        derive_and_check(v, "ikmS", "skSm", "pkSm", sk_s, pk_s);

    if (luna_hpke_encap_internal(pk_r, auth ? sk_s : NULL, sk_e, ss_send, enc) != LUNA_OK) {
        fprintf(stderr, "  encap failed\n");
        failures++;
        goto out;
    }
    check(v, "enc", enc, 32);
    check(v, "shared_secret", ss_send, 32);
    if (luna_hpke_decap_internal(enc, sk_r, auth ? pk_s : NULL, ss_recv) != LUNA_OK) {
        fprintf(stderr, "  decap failed\n");
        failures++;
        goto out;
    }
    check(v, "shared_secret", ss_recv, 32);
    if (luna_hpke_key_schedule_internal(&p, ss_send, &ks) != LUNA_OK) {
        fprintf(stderr, "  key schedule failed\n");
        failures++;
        goto out;
    }
    check(v, "key_schedule_context", ks.key_schedule_context, ks.key_schedule_context_len);
    check(v, "secret", ks.secret, ks.nh);
    check(v, "key", ks.key, ks.key_len);
    check(v, "base_nonce", ks.base_nonce, ks.nonce_len);
    check(v, "exporter_secret", ks.exporter_secret, ks.nh);

    if (luna_hpke_setup_sender_with_ephemeral(&p, pk_r, auth ? sk_s : NULL, sk_e, enc, &sender) !=
            LUNA_OK ||
        luna_hpke_setup_receiver(&p, sk_r, enc, auth ? pk_s : NULL, &receiver) != LUNA_OK) {
        fprintf(stderr, "  setup failed\n");
        failures++;
        goto out;
    }
    check(v, "enc", enc, 32);

    json_t *encs = json_object_get(v, "encryptions");
    for (size_t i = 0; i < json_array_size(encs); i++) {
        json_t *e = json_array_get(encs, i);
        size_t aad_len, pt_len, ct_len, nonce_len;
        uint8_t *aad = field(e, "aad", &aad_len);
        uint8_t *pt = field(e, "pt", &pt_len);
        uint8_t *ct = field(e, "ct", &ct_len);
        uint8_t *nonce = field(e, "nonce", &nonce_len);
        uint8_t *buf = malloc(pt_len + 16 + 1);
        uint8_t want_nonce[12];
        int ok = 1;
        assert_non_null(buf);
        t->enc++;
        /* The vector's nonce is base_nonce XOR I2OSP(i, 12). */
        memcpy(want_nonce, ks.base_nonce, 12);
        for (size_t b = 0; b < 8; b++)
            want_nonce[11 - b] ^= (uint8_t)((uint64_t)i >> (8 * b));
        if (nonce_len != 12 || memcmp(nonce, want_nonce, 12) != 0)
            ok = 0;
        if (luna_hpke_seal(sender, aad, aad_len, pt, pt_len, buf) != LUNA_OK ||
            ct_len != pt_len + 16 || memcmp(buf, ct, ct_len) != 0)
            ok = 0;
        if (luna_hpke_open(receiver, aad, aad_len, ct, ct_len, buf) != LUNA_OK ||
            memcmp(buf, pt, pt_len) != 0)
            ok = 0;
        if (ok)
            t->enc_ok++;
        else {
            fprintf(stderr, "  encryption %zu wrong\n", i);
            failures++;
        }
        free(aad);
        free(pt);
        free(ct);
        free(nonce);
        free(buf);
    }

    json_t *exps = json_object_get(v, "exports");
    for (size_t i = 0; i < json_array_size(exps); i++) {
        json_t *x = json_array_get(exps, i);
        size_t ctx_len, want_len;
        uint8_t *ectx = field(x, "exporter_context", &ctx_len);
        uint8_t *want = field(x, "exported_value", &want_len);
        size_t l = (size_t)json_integer_value(json_object_get(x, "L"));
        uint8_t *a = malloc(l + 1), *b = malloc(l + 1);
        assert_non_null(a);
        assert_non_null(b);
        t->exp++;
        if (l == want_len && luna_hpke_export(sender, ectx, ctx_len, a, l) == LUNA_OK &&
            luna_hpke_export(receiver, ectx, ctx_len, b, l) == LUNA_OK &&
            memcmp(a, want, l) == 0 && memcmp(b, want, l) == 0)
            t->exp_ok++;
        else {
            fprintf(stderr, "  export %zu wrong\n", i);
            failures++;
        }
        free(ectx);
        free(want);
        free(a);
        free(b);
    }
out:
    if (failures == before)
        t->vectors_ok++;
    luna_hpke_ctx_free(sender);
    luna_hpke_ctx_free(receiver);
    free(info);
    free(psk);
    free(psk_id);
}

static void test_all_rfc9180_vectors(void **state)
{
    (void)state;
    char *path = luna_test_vector_path("hpke/test-vectors.json");
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    tally tallies[64];
    size_t ntallies = 0;
    int vectors = 0, encs = 0, encs_ok = 0, exps = 0, exps_ok = 0, vectors_ok = 0;

    assert_non_null(root);
    assert_true(json_is_array(root));
    memset(tallies, 0, sizeof(tallies));
    for (size_t i = 0; i < json_array_size(root); i++) {
        json_t *v = json_array_get(root, i);
        int mode = (int)json_integer_value(json_object_get(v, "mode"));
        int kdf = (int)json_integer_value(json_object_get(v, "kdf_id"));
        int aead = (int)json_integer_value(json_object_get(v, "aead_id"));
        tally *t = NULL;
        for (size_t k = 0; k < ntallies; k++)
            if (tallies[k].mode == mode && tallies[k].kdf == kdf && tallies[k].aead == aead)
                t = &tallies[k];
        if (t == NULL) {
            assert_true(ntallies < 64);
            t = &tallies[ntallies++];
            t->mode = mode;
            t->kdf = kdf;
            t->aead = aead;
        }
        run_vector(v, t);
    }
    printf("mode kdf aead | vectors ok | encryptions ok | exports ok\n");
    for (size_t k = 0; k < ntallies; k++) {
        tally *t = &tallies[k];
        printf("  %d   %d   %d   |   %d/%d     |   %3d/%3d      |   %d/%d\n", t->mode, t->kdf,
               t->aead, t->vectors_ok, t->vectors, t->enc_ok, t->enc, t->exp_ok, t->exp);
        vectors += t->vectors;
        vectors_ok += t->vectors_ok;
        encs += t->enc;
        encs_ok += t->enc_ok;
        exps += t->exp;
        exps_ok += t->exp_ok;
    }
    printf("total: %d/%d vectors, %d/%d encryptions, %d/%d exports, %d failures\n", vectors_ok,
           vectors, encs_ok, encs, exps_ok, exps, failures);
    json_decref(root);
    free(path);
    assert_int_equal(failures, 0);
    assert_int_equal(vectors, EXPECTED_VECTORS);
    assert_int_equal(vectors_ok, EXPECTED_VECTORS);
    assert_int_equal(encs, EXPECTED_ENCRYPTIONS);
    assert_int_equal(encs_ok, EXPECTED_ENCRYPTIONS);
    assert_int_equal(exps, EXPECTED_EXPORTS);
    assert_int_equal(exps_ok, EXPECTED_EXPORTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_rfc9180_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
