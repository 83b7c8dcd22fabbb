/*
 * test_tpm_credential.c - luna/tpm.h without a TPM: the TPMT_PUBLIC
 * parser and Names against public areas and Names produced by a real TPM
 * (swtpm 0.7.1: tpm2_createprimary -C e for the AKs, the EKs of
 * swtpm_setup; Names from tpm2_readpublic), the attestation-key attribute
 * rule, MakeCredential's refusals, and the clock/reset counter rule for
 * every case.  The challenge against a live TPM is e2e.tpm_live.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "luna/tpm.h"
#include "luna_test.h"

/* Captured from swtpm on 2026-11-26 (docs/tpm-live.md). */
static const char ak_rsa_pub[] =
    "0001000b00050072000000100014000b0800000000000100ca76c5cd0c7b2eec"
    "6ff57cba45020490c96ce8ac6d8f1bed6615566f811786472624911f83b70bb7"
    "ac5371f9eae959f7590e6ed9ab78dc394c49705204f15aa40a97785e327ab75f"
    "e87444c4f3a496c0d20f4943078c5941ada5f2c8c54b020da687be1a6b8f5b06"
    "ca7339532d675ff301f58324a204cbe197412cc221d707e0709b0f9dc973ac99"
    "ec31238d0846e2acdcc06475088ff5fac4730faaef78d606a1e1772182d06b08"
    "31928bac7ba809aed5e04a8bb87b4b17c4183ddbc36b757f3e594fe2a60d070b"
    "059d78b462934d7e50cb24b494c6b7ad072e1424e3a2af83c90462234be9c932"
    "629f9780e329d7df1f847d30fb17a392d4acf42d186b9f15";
static const char ak_rsa_name[] =
    "000b4cdaf71e47b27e95385950ecc0d1aee0f934000a33b4d5a3c6dcd32db85e"
    "6bcc";
static const char ak_ecc_pub[] =
    "0023000b00050072000000100018000b0003001000209191923f293f45169741"
    "fa9463c6c6b0225b710cb512ee4028fe088006785fa700207e17bcbe6a75576d"
    "8982012abcbb571de496bb77137173fa5ace1fe46d56cd1b";
static const char ak_ecc_name[] =
    "000bd9faa91f580017c189a80ed4da6ad6eaaab3a943105823997189e06a9536"
    "804d";
static const char ek_rsa_pub[] =
    "0001000b000300b20020837197674484b3f81a90cc8d46a5d724fd52d76e0652"
    "0b64f2a1da1b331469aa00060080004300100800000000000100b512c2cfa8ed"
    "234e37e6d0b5a09c74dcc0ca86de6a5409832fe50ee340cadd516d0e2bcb1f8f"
    "d7977cc24a9087f450f0b81d3c16bbbb94fa26be45e21548514864335b2be2d2"
    "28dcb15eee79adb70e41a9250b9d0524526377ce9619c8e3aed2faa602c57940"
    "745dc88c9837ef3115693817836e5d11385ea8a37803ae3380d31a28ad22a906"
    "3748e3177fa005140275f1932641bccf3272f30d3332b6f968fa44529666a8e9"
    "5544545eb904b9afe14f9e09d508577e4b6c3431b7960d2cc30d6090952f4352"
    "65feff5dad259680f65d0dd20a16b624f375c2f87bcf9a3ad1250c114c0dd91a"
    "c2b9b7ad7c7293fd4f4c40d2efe2ee7e6964fffa848b34338c77";
static const char ek_rsa_name[] =
    "000bdcec2cac9f5f0623f599419083afbed46d053862e30441c401e64601183b"
    "30c5";
static const char ek_ecc_pub[] =
    "0023000c000300f20030b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3"
    "b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12000601000043"
    "00100004001000304cd89e2214ec59af941546e1ce748253f1a9d0a1f3925c9b"
    "5c2cbc2323affdc2ac0f07cb19676e0ca70b66b09ac95c24003085a08778cbf2"
    "1117982113f8bd1ae6db670c94c5f504c9e541c5ba6ecb4621293eb146c9b857"
    "b2731d916c7c88c8fa38";
static const char ek_ecc_name[] =
    "000c5f49f2b988010b9cdafb45437d086576346734017edbb1f87b5e69341907"
    "1d7011718f8613c00302186df43a0a31bead";

typedef struct vec {
    const char *pub, *name;
} vec;

static void test_names_match_the_tpm(void **state)
{
    (void)state;
    const vec v[] = {{ak_rsa_pub, ak_rsa_name},
                     {ak_ecc_pub, ak_ecc_name},
                     {ek_rsa_pub, ek_rsa_name},
                     {ek_ecc_pub, ek_ecc_name}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = 0, want_len = 0, got_len = 0;
        uint8_t *pub = luna_test_unhex(v[i].pub, &n);
        uint8_t *want = luna_test_unhex(v[i].name, &want_len);
        uint8_t got[LUNA_TPM_NAME_MAX];
        luna_tpm_public p;
        assert_luna_ok(luna_tpm_public_parse(pub, n, &p));
        assert_luna_ok(luna_tpm_public_name(pub, n, &p, got, &got_len));
        assert_int_equal(want_len, got_len);
        assert_memory_equal(want, got, got_len);
        free(pub);
        free(want);
    }
}

static void test_ak_rule(void **state)
{
    (void)state;
    size_t n = 0;
    luna_tpm_public p;
    EVP_PKEY *k = NULL;

    uint8_t *rsa = luna_test_unhex(ak_rsa_pub, &n);
    assert_luna_ok(luna_tpm_public_parse(rsa, n, &p));
    assert_int_equal(LUNA_TPM_ALG_RSA, p.type);
    assert_int_equal(2048, p.rsa_bits);
    assert_luna_ok(luna_tpm_ak_check(&p));
    assert_luna_ok(luna_tpm_public_key(&p, &k));
    assert_true(EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 2048);
    EVP_PKEY_free(k);
    k = NULL;
    /* Each required attribute, cleared, refuses the key. */
    const uint32_t need[] = {LUNA_TPMA_FIXED_TPM, LUNA_TPMA_FIXED_PARENT,
                             LUNA_TPMA_SENSITIVE_DATA_ORIGIN, LUNA_TPMA_RESTRICTED,
                             LUNA_TPMA_SIGN};
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        luna_tpm_public q = p;
        q.attributes &= ~need[i];
        assert_luna_err(LUNA_ERR_PERMISSION, luna_tpm_ak_check(&q));
    }
    luna_tpm_public q = p;
    q.attributes |= LUNA_TPMA_DECRYPT;
    assert_luna_err(LUNA_ERR_PERMISSION, luna_tpm_ak_check(&q));
    q = p;
    q.rsa_bits = 1024;
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_tpm_ak_check(&q));
    q = p;
    q.scheme_hash = LUNA_TPM_ALG_SHA1;
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_tpm_ak_check(&q));
    free(rsa);

    uint8_t *ecc = luna_test_unhex(ak_ecc_pub, &n);
    assert_luna_ok(luna_tpm_public_parse(ecc, n, &p));
    assert_luna_ok(luna_tpm_ak_check(&p));
    assert_luna_ok(luna_tpm_public_key(&p, &k));
    assert_true(EVP_PKEY_is_a(k, "EC"));
    EVP_PKEY_free(k);
    k = NULL;
    /* A point off the curve. */
    ecc[n - 1] ^= 1;
    assert_luna_ok(luna_tpm_public_parse(ecc, n, &p));
    assert_luna_err(LUNA_ERR_FORMAT, luna_tpm_public_key(&p, &k));
    assert_null(k);
    free(ecc);

    /* EKs decrypt; they are not attestation keys. */
    uint8_t *ek = luna_test_unhex(ek_rsa_pub, &n);
    assert_luna_ok(luna_tpm_public_parse(ek, n, &p));
    assert_luna_err(LUNA_ERR_PERMISSION, luna_tpm_ak_check(&p));
    assert_int_equal(0x0006, p.sym_alg); /* AES-128-CFB: template L-1 */
    assert_int_equal(128, p.sym_bits);
    free(ek);
    ek = luna_test_unhex(ek_ecc_pub, &n);
    assert_luna_ok(luna_tpm_public_parse(ek, n, &p));
    assert_luna_err(LUNA_ERR_PERMISSION, luna_tpm_ak_check(&p));
    free(ek);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    size_t n = 0;
    luna_tpm_public p;
    uint8_t *b = luna_test_unhex(ak_rsa_pub, &n);
    uint8_t big[LUNA_TPM_PUBLIC_MAX + 1];

    /* Every truncation. */
    for (size_t i = 0; i < n; i++)
        assert_luna_err(LUNA_ERR_FORMAT, luna_tpm_public_parse(b, i, &p));
    /* A trailing byte. */
    uint8_t *longer = malloc(n + 1);
    assert_non_null(longer);
    memcpy(longer, b, n);
    longer[n] = 0;
    assert_luna_err(LUNA_ERR_FORMAT, luna_tpm_public_parse(longer, n + 1, &p));
    free(longer);
    /* Reserved attribute bits 0, 3, 8, 12, 20, 31. */
    const int reserved[] = {0, 3, 8, 12, 20, 31};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        int bit = reserved[i];
        b[7 - bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_luna_err(LUNA_ERR_FORMAT, luna_tpm_public_parse(b, n, &p));
        b[7 - bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* A keyed-hash object, a SHA-1 nameAlg, an unknown scheme. */
    b[1] = 0x08;
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_tpm_public_parse(b, n, &p));
    b[1] = 0x01;
    b[3] = 0x04;
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_tpm_public_parse(b, n, &p));
    b[3] = 0x0b;
    b[13] = 0x99; /* scheme: after type, nameAlg, attributes, 2B policy, symmetric */
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_tpm_public_parse(b, n, &p));
    b[13] = 0x14;
    assert_luna_ok(luna_tpm_public_parse(b, n, &p));
    /* A modulus length over the cap (its u16 size sits 256 bytes from the end). */
    b[n - 258] = 0x02;
    b[n - 257] = 0x02;
    assert_luna_err(LUNA_ERR_FORMAT, luna_tpm_public_parse(b, n, &p));
    memset(big, 0, sizeof(big));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_tpm_public_parse(big, sizeof(big), &p));
    free(b);
}

static void test_make_credential_refusals(void **state)
{
    (void)state;
    uint8_t name[34] = {0x00, 0x0b}, cred[32] = {1}, id[LUNA_TPM_ID_OBJECT_MAX],
            sec[LUNA_TPM_ENC_SECRET_MAX];
    size_t id_len = 0, sec_len = 0;
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    EVP_PKEY *rsa3072 = EVP_RSA_gen(3072);
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    assert_true(ec != NULL && rsa3072 != NULL && rsa != NULL);
    assert_luna_err(LUNA_ERR_UNSUPPORTED,
                    luna_tpm_make_credential(ec, name, sizeof(name), cred, sizeof(cred), id,
                                             sizeof(id), &id_len, sec, sizeof(sec), &sec_len));
    assert_luna_err(LUNA_ERR_UNSUPPORTED,
                    luna_tpm_make_credential(rsa3072, name, sizeof(name), cred, sizeof(cred), id,
                                             sizeof(id), &id_len, sec, sizeof(sec), &sec_len));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_tpm_make_credential(rsa, name, sizeof(name), cred, 65, id, sizeof(id),
                                             &id_len, sec, sizeof(sec), &sec_len));
    assert_luna_ok(luna_tpm_make_credential(rsa, name, sizeof(name), cred, sizeof(cred), id,
                                            sizeof(id), &id_len, sec, sizeof(sec), &sec_len));
    /* TPM2B_ID_OBJECT: size || TPM2B_DIGEST hmac(32) || encIdentity(2 + 32). */
    assert_int_equal(2 + 2 + 32 + 2 + 32, id_len);
    assert_int_equal(id_len - 2, ((size_t)id[0] << 8) | id[1]);
    assert_int_equal(2 + 256, sec_len);
    /* Two challenges for the same credential never share bytes (fresh seed). */
    uint8_t id2[LUNA_TPM_ID_OBJECT_MAX], sec2[LUNA_TPM_ENC_SECRET_MAX];
    size_t id2_len = 0, sec2_len = 0;
    assert_luna_ok(luna_tpm_make_credential(rsa, name, sizeof(name), cred, sizeof(cred), id2,
                                            sizeof(id2), &id2_len, sec2, sizeof(sec2), &sec2_len));
    assert_memory_not_equal(id + 4, id2 + 4, 32);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa3072);
    EVP_PKEY_free(rsa);
}

static luna_tpm_counters ctr(uint32_t reset, uint32_t restart, uint64_t clock, uint8_t tag)
{
    luna_tpm_counters c;
    memset(&c, 0, sizeof(c));
    c.valid = true;
    c.reset_count = reset;
    c.restart_count = restart;
    c.clock = clock;
    memset(c.attest_hash, tag, sizeof(c.attest_hash));
    return c;
}

static void test_counters(void **state)
{
    (void)state;
    luna_tpm_counters last;
    memset(&last, 0, sizeof(last));
    luna_tpm_counters a = ctr(5, 2, 1000, 1);
    assert_int_equal(LUNA_TPM_QUOTE_OK, luna_tpm_counters_advance(&last, &a));
    assert_int_equal(LUNA_TPM_QUOTE_REPLAY, luna_tpm_counters_advance(&last, &a));
    luna_tpm_counters same_ms = ctr(5, 2, 1000, 2); /* another quote, same ms */
    assert_int_equal(LUNA_TPM_QUOTE_OK, luna_tpm_counters_advance(&last, &same_ms));
    luna_tpm_counters c = ctr(5, 2, 999, 3);
    assert_int_equal(LUNA_TPM_QUOTE_CLOCK_BACKWARDS, luna_tpm_counters_advance(&last, &c));
    c = ctr(5, 1, 5000, 3);
    assert_int_equal(LUNA_TPM_QUOTE_RESTART_BACKWARDS, luna_tpm_counters_advance(&last, &c));
    c = ctr(4, 9, 9000, 3);
    assert_int_equal(LUNA_TPM_QUOTE_RESET_BACKWARDS, luna_tpm_counters_advance(&last, &c));
    /* Refusals leave the state alone. */
    assert_int_equal(1000, last.clock);
    assert_int_equal(5, last.reset_count);
    /* A restart may bring the clock back (unsaved clock); a reset too. */
    c = ctr(5, 3, 900, 4);
    assert_int_equal(LUNA_TPM_QUOTE_OK, luna_tpm_counters_advance(&last, &c));
    c = ctr(6, 0, 10, 5);
    assert_int_equal(LUNA_TPM_QUOTE_OK, luna_tpm_counters_advance(&last, &c));
    assert_int_equal(6, last.reset_count);
    luna_tpm_counters bad;
    memset(&bad, 0, sizeof(bad));
    assert_int_equal(LUNA_TPM_QUOTE_INTERNAL, luna_tpm_counters_advance(&last, &bad));
}

static void test_reason_names(void **state)
{
    (void)state;
    for (int i = LUNA_TPM_QUOTE_OK; i <= LUNA_TPM_QUOTE_INTERNAL; i++)
        for (int j = i + 1; j <= LUNA_TPM_QUOTE_INTERNAL; j++)
            assert_string_not_equal(luna_tpm_quote_reason_name((luna_tpm_quote_reason)i),
                                    luna_tpm_quote_reason_name((luna_tpm_quote_reason)j));
    assert_int_equal(LUNA_VERIFY_STALE, luna_tpm_quote_reason_verify(LUNA_TPM_QUOTE_CLOCK_BACKWARDS));
    assert_int_equal(LUNA_VERIFY_NONCE_MISMATCH,
                     luna_tpm_quote_reason_verify(LUNA_TPM_QUOTE_NONCE_MISMATCH));
    assert_int_equal(LUNA_VERIFY_MEASUREMENT_MISMATCH,
                     luna_tpm_quote_reason_verify(LUNA_TPM_QUOTE_MEASUREMENT_MISMATCH));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_match_the_tpm),
        cmocka_unit_test(test_ak_rule),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_make_credential_refusals),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_reason_names),
    };
    return cmocka_run_group_tests_name("unit.tpm_credential", tests, NULL, NULL);
}
