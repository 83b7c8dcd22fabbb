/*
 * test_tpm_evidence_keys.c - unit.tpm_evidence_keys: the optional key
 * section of the LTQ1 container (luna_tpm_evidence_add_keys, what a TEE
 * host in platform "tpm" appends) and luna_policy_set_nonce_freshness.
 * The container is built around a hand-marshalled TPMS_ATTEST and
 * TPMT_SIGNATURE (parse level only: signatures are the e2e tests' job).
 * Asserted: without the section the claims carry no key; with it the
 * claims carry exactly those keys (with or without ed25519); a wrong tag,
 * has_ed25519 > 1, a short key and a trailing byte are each malformed; the
 * nonce rule refuses sim, a type not allowed and bad arguments.
 */
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/evidence_hw.h"
#include "luna/verifier.h"
#include "luna_test.h"
#include "verifier_internal.h"
#include "verifier_tpm.h"

static uint8_t g_kx[32], g_ed[32];

/* A quote of PCR 23 (SHA-256 bank) with an RSASSA-SHA-256 signature blob. */
static void base_container(luna_wbuf *w)
{
    uint8_t attest[256], sig[4 + 2 + 256], pcr[32], digest[32];
    luna_wbuf a, s;
    memset(pcr, 0x11, sizeof(pcr));
    assert_luna_ok(luna_sha256(pcr, sizeof(pcr), digest));
    luna_wbuf_init(&a, attest, sizeof(attest));
    assert_luna_ok(luna_write_u32(&a, 0xff544347u));
    assert_luna_ok(luna_write_u16(&a, 0x8018u));
    assert_luna_ok(luna_write_u16(&a, 4)); /* qualifiedSigner */
    assert_luna_ok(luna_write_bytes(&a, "\x00\x0b\xaa\xbb", 4));
    assert_luna_ok(luna_write_u16(&a, 32)); /* extraData */
    assert_luna_ok(luna_write_bytes(&a, digest, 32));
    assert_luna_ok(luna_write_u64(&a, 1000)); /* clock */
    assert_luna_ok(luna_write_u32(&a, 1));    /* resetCount */
    assert_luna_ok(luna_write_u32(&a, 0));    /* restartCount */
    assert_luna_ok(luna_write_u8(&a, 1));     /* safe */
    assert_luna_ok(luna_write_u64(&a, 42));   /* firmwareVersion */
    assert_luna_ok(luna_write_u32(&a, 1));    /* one bank */
    assert_luna_ok(luna_write_u16(&a, LUNA_TPM_ALG_SHA256));
    assert_luna_ok(luna_write_u8(&a, 3));
    assert_luna_ok(luna_write_bytes(&a, "\x00\x00\x80", 3)); /* PCR 23 */
    assert_luna_ok(luna_write_u16(&a, 32));
    assert_luna_ok(luna_write_bytes(&a, digest, 32));
    luna_wbuf_init(&s, sig, sizeof(sig));
    assert_luna_ok(luna_write_u16(&s, 0x0014u)); /* RSASSA */
    assert_luna_ok(luna_write_u16(&s, LUNA_TPM_ALG_SHA256));
    assert_luna_ok(luna_write_u16(&s, 256));
    for (int i = 0; i < 256; i++)
        assert_luna_ok(luna_write_u8(&s, (uint8_t)i));
    luna_tpm_pcr p = {LUNA_TPM_ALG_SHA256, 23, pcr, 32};
    assert_luna_ok(luna_tpm_evidence_build(w, a.data, a.len, s.data, s.len, &p, 1));
}

/* Parses ev and returns the reason; claims filled when it parsed. */
static luna_verify_reason parse_claims(const uint8_t *ev, size_t len, luna_claims *c)
{
    const luna_verifier_backend *b = &luna_verifier_backend_tpm;
    const char *why = NULL;
    void *state = NULL;
    luna_backend_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    memset(c, 0, sizeof(*c));
    luna_verify_reason r = b->parse(ev, len, &state, &why);
    assert_non_null(why);
    if (r != LUNA_VERIFY_OK) {
        assert_null(state);
        return r;
    }
    assert_int_equal(LUNA_VERIFY_OK, b->claims(state, &ctx, c, &why));
    b->free_state(state);
    return r;
}

static void test_no_key_section(void **state)
{
    (void)state;
    uint8_t buf[2048];
    luna_wbuf w;
    luna_claims c;
    luna_wbuf_init(&w, buf, sizeof(buf));
    base_container(&w);
    assert_int_equal(LUNA_VERIFY_OK, parse_claims(w.data, w.len, &c));
    assert_false(c.has_tee_x25519);
    assert_false(c.has_tee_ed25519);
    assert_int_equal(LUNA_EVIDENCE_TPM, c.type);
}

static void test_key_section(void **state)
{
    (void)state;
    uint8_t buf[2048];
    luna_wbuf w;
    luna_claims c;
    luna_wbuf_init(&w, buf, sizeof(buf));
    base_container(&w);
    assert_luna_ok(luna_tpm_evidence_add_keys(&w, g_kx, g_ed));
    assert_int_equal(LUNA_VERIFY_OK, parse_claims(w.data, w.len, &c));
    assert_true(c.has_tee_x25519 && c.has_tee_ed25519);
    assert_memory_equal(g_kx, c.tee_x25519, 32);
    assert_memory_equal(g_ed, c.tee_ed25519, 32);

    luna_wbuf_init(&w, buf, sizeof(buf));
    base_container(&w);
    assert_luna_ok(luna_tpm_evidence_add_keys(&w, g_kx, NULL));
    assert_int_equal(LUNA_VERIFY_OK, parse_claims(w.data, w.len, &c));
    assert_true(c.has_tee_x25519);
    assert_false(c.has_tee_ed25519);
    assert_memory_equal(g_kx, c.tee_x25519, 32);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_tpm_evidence_add_keys(&w, NULL, g_ed));
}

static void test_key_section_malformed(void **state)
{
    (void)state;
    uint8_t buf[2048];
    luna_wbuf w;
    luna_claims c;
    luna_wbuf_init(&w, buf, sizeof(buf));
    base_container(&w);
    size_t base = w.len;
    assert_luna_ok(luna_tpm_evidence_add_keys(&w, g_kx, g_ed));
    size_t full = w.len;

    buf[base] = 0x4A; /* another tag */
    assert_int_equal(LUNA_VERIFY_MALFORMED, parse_claims(buf, full, &c));
    buf[base] = LUNA_TPM_EVIDENCE_KEYS_TAG;
    buf[base + 33] = 2; /* has_ed25519 not a boolean */
    assert_int_equal(LUNA_VERIFY_MALFORMED, parse_claims(buf, full, &c));
    buf[base + 33] = 1;
    assert_int_equal(LUNA_VERIFY_OK, parse_claims(buf, full, &c));
    for (size_t cut = base + 1; cut < full; cut++) /* every truncation */
        assert_int_equal(LUNA_VERIFY_MALFORMED, parse_claims(buf, cut, &c));
    buf[full] = 0; /* one byte after the section */
    assert_int_equal(LUNA_VERIFY_MALFORMED, parse_claims(buf, full + 1, &c));
    buf[base + 33] = 0; /* says no ed25519, but 32 bytes follow */
    assert_int_equal(LUNA_VERIFY_MALFORMED, parse_claims(buf, full, &c));
    assert_int_equal(LUNA_VERIFY_OK, parse_claims(buf, base + 34, &c));
}

static void test_nonce_freshness_rule(void **state)
{
    (void)state;
    luna_policy *p = NULL;
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_DEVELOPMENT, &p));
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_policy_set_nonce_freshness(p, LUNA_EVIDENCE_TPM));
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, 0));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_policy_set_nonce_freshness(p, LUNA_EVIDENCE_SIM));
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_TPM, 0));
    assert_luna_ok(luna_policy_set_nonce_freshness(p, LUNA_EVIDENCE_TPM));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_policy_set_nonce_freshness(p, (luna_evidence_type)99));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_policy_set_nonce_freshness(NULL, LUNA_EVIDENCE_TPM));
    luna_policy_free(p);
}

int main(void)
{
    memset(g_kx, 0x42, sizeof(g_kx));
    memset(g_ed, 0x24, sizeof(g_ed));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_key_section),
        cmocka_unit_test(test_key_section),
        cmocka_unit_test(test_key_section_malformed),
        cmocka_unit_test(test_nonce_freshness_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
