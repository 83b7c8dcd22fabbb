/*
 * test_evidence_nitro.c - the AWS Nitro backend against the real
 * attestation documents of vectors/evidence/nitro: each sample's stated
 * verdict at its stated time (the document timestamp), and per sample the
 * derived refusals with their exact reason (flipped signature, PCR0
 * (measurement), module_id (signed body), COSE algorithm; wrong root;
 * time outside the leaf's three-hour window; stale under a max-age rule;
 * truncation).
 *
 * Policy "NITRO-STRICT": production profile, type nitro, anchor the AWS
 * Nitro root G1, reference measurement PCR0 = 48 zero bytes and signer
 * PCR8 = 48 zero bytes (what these debug-mode documents report), nonce
 * freshness, minimum TCB 0, only up_to_date accepted, debug refused.
 * "NITRO-DEV" is the same on the development profile with debug allowed.
 * Key binding is skipped (luna_verifier_verify_unbound).
 */
#include <stdlib.h>
#include <string.h>

#include "evidence_hw_util.h"

typedef struct nitro_sample {
    const char *file;
    const char *at;
    uint64_t timestamp_ms;
    const char *user_data_prefix; /* mapped to report_data when <= 64 bytes */
} nitro_sample;

static const nitro_sample samples[] = {
    {"evidence/nitro/evervault-debug-2023-09-18.cose", "2023-09-18T15:03:30Z", 1695049410860ull,
     NULL},
    {"evidence/nitro/evervault-debug-2022-10-12.cose", "2022-10-12T13:50:06Z", 1665582606081ull,
     "hello, world!"},
    {"evidence/nitro/blocky-debug-2024-09-07.cose", "2024-09-07T14:38:06Z", 1725719886508ull,
     NULL},
};

static const uint8_t zero48[48];

typedef struct ctx {
    uint8_t *doc;
    size_t len;
    X509 *root;
    hw_policy pol;
} ctx;

static void setup(ctx *c, const nitro_sample *s)
{
    memset(c, 0, sizeof(*c));
    c->doc = hw_read(s->file, &c->len);
    c->root = hw_cert("evidence/nitro/aws-nitro-root-g1.pem");
    /* NITRO-STRICT */
    c->pol = (hw_policy){.profile = LUNA_PROFILE_PRODUCTION,
                         .type = LUNA_EVIDENCE_NITRO,
                         .anchors = {c->root},
                         .n_anchors = 1,
                         .measurement = zero48,
                         .measurement_len = 48,
                         .signer = zero48,
                         .signer_len = 48};
}

static void teardown(ctx *c)
{
    free(c->doc);
    X509_free(c->root);
}

static luna_verify_reason run(ctx *c, const uint8_t *doc, size_t len, int64_t now,
                              luna_verify_result *res)
{
    luna_verifier *v = hw_verifier(&c->pol);
    luna_verify_reason r = hw_verify(v, LUNA_EVIDENCE_NITRO, doc, len, now, res);
    luna_verifier_free(v);
    return r;
}

static luna_verify_reason run_flipped(ctx *c, size_t off, uint8_t mask, int64_t now)
{
    luna_verify_result res;
    uint8_t *copy = malloc(c->len);
    assert_non_null(copy);
    memcpy(copy, c->doc, c->len);
    assert_true(off < c->len);
    copy[off] ^= mask;
    luna_verify_reason r = run(c, copy, c->len, now, &res);
    free(copy);
    return r;
}

static size_t find(const ctx *c, const void *needle, size_t n)
{
    for (size_t i = 0; i + n <= c->len; i++)
        if (memcmp(c->doc + i, needle, n) == 0)
            return i;
    fail_msg("pattern not found in sample");
    return 0;
}

static void check_verdict(const nitro_sample *s)
{
    ctx c;
    luna_verify_result res;
    setup(&c, s);
    const int64_t at = hw_time(s->at);
    /* Stated verdict: valid, debug mode.  NITRO-STRICT refuses debug with
       the policy reason, after every hardware check passed. */
    assert_int_equal(LUNA_VERIFY_DEBUG_FORBIDDEN, run(&c, c.doc, c.len, at, &res));
    assert_true(res.claims.debug);
    /* NITRO-DEV accepts it. */
    c.pol.profile = LUNA_PROFILE_DEVELOPMENT;
    c.pol.allow_debug = true;
    assert_int_equal(LUNA_VERIFY_OK, run(&c, c.doc, c.len, at, &res));
    assert_int_equal(LUNA_EVIDENCE_NITRO, res.claims.type);
    assert_false(res.claims.simulated);
    assert_true(res.claims.debug);
    assert_int_equal(48, res.claims.measurement_len);
    assert_memory_equal(zero48, res.claims.measurement, 48);
    assert_true(res.claims.has_timestamp);
    assert_int_equal((int64_t)(s->timestamp_ms / 1000), res.claims.timestamp);
    assert_int_equal(LUNA_QE_NOT_APPLICABLE, res.claims.qe_status);
    assert_false(res.claims.revocation_checked);
    if (s->user_data_prefix != NULL)
        assert_memory_equal(s->user_data_prefix, res.claims.report_data,
                            strlen(s->user_data_prefix));
    teardown(&c);
}

static void test_verdict_evervault_2023(void **st) { (void)st; check_verdict(&samples[0]); }
static void test_verdict_evervault_2022(void **st) { (void)st; check_verdict(&samples[1]); }
static void test_verdict_blocky_2024(void **st) { (void)st; check_verdict(&samples[2]); }

/* Derived refusals under NITRO-DEV (so that debug does not mask them). */
static void check_negatives(const nitro_sample *s)
{
    ctx c;
    luna_verify_result res;
    setup(&c, s);
    c.pol.profile = LUNA_PROFILE_DEVELOPMENT;
    c.pol.allow_debug = true;
    const int64_t at = hw_time(s->at);
    static const uint8_t pcr0[] = {'p', 'c', 'r', 's'};
    static const uint8_t module[] = {'m', 'o', 'd', 'u', 'l', 'e', '_', 'i', 'd'};
    static const uint8_t pcr0_entry[] = {0x00, 0x58, 0x30};

    /* Signature (last 96 bytes), PCR0, signed body (module_id value). */
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, c.len - 40, 0x01, at));
    size_t p = find(&c, pcr0, sizeof(pcr0));
    size_t q = p;
    while (q + 3 < c.len && memcmp(c.doc + q, pcr0_entry, 3) != 0)
        q++;
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, q + 3 + 10, 0x04, at));
    size_t m = find(&c, module, sizeof(module));
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE,
                     run_flipped(&c, m + sizeof(module) + 3, 0x01, at));
    /* COSE alg -35 -> -36: not ES384. */
    assert_int_equal(0x22, c.doc[5]);
    assert_int_equal(LUNA_VERIFY_UNSUPPORTED_VERSION, run_flipped(&c, 5, 0x01, at));
    /* Truncated. */
    assert_int_equal(LUNA_VERIFY_MALFORMED, run(&c, c.doc, c.len - 1, at, &res));
    /* Outside the leaf's validity (about three hours around the stamp). */
    assert_int_equal(LUNA_VERIFY_CERT_EXPIRED, run(&c, c.doc, c.len, at + 4 * 3600, &res));
    assert_int_equal(LUNA_VERIFY_CERT_EXPIRED, run(&c, c.doc, c.len, at - 3600, &res));
    /* Wrong root: an AMD ARK as the only anchor. */
    X509 *ark[2] = {NULL};
    assert_int_equal(2, hw_certs("evidence/sev-snp/gsg-milan-vcek.ask_ark.pem", ark, 2));
    c.pol.anchors[0] = ark[1];
    assert_int_equal(LUNA_VERIFY_UNKNOWN_ROOT, run(&c, c.doc, c.len, at, &res));
    c.pol.anchors[0] = c.root;
    X509_free(ark[0]);
    X509_free(ark[1]);
    /* Reference measurement one bit off. */
    uint8_t other[48] = {1};
    c.pol.measurement = other;
    assert_int_equal(LUNA_VERIFY_MEASUREMENT_MISMATCH, run(&c, c.doc, c.len, at, &res));
    c.pol.measurement = zero48;
    /* Stale: NITRO-DEV plus max age 60 s, verified 10 minutes later. */
    c.pol.max_age = 60;
    assert_int_equal(LUNA_VERIFY_STALE, run(&c, c.doc, c.len, at + 600, &res));
    c.pol.max_age = 0;
    /* Policy minimum TCB above what Nitro reports (0). */
    c.pol.min_tcb = 1;
    assert_int_equal(LUNA_VERIFY_TCB_OUT_OF_DATE, run(&c, c.doc, c.len, at, &res));
    teardown(&c);
}

static void test_negatives_evervault_2023(void **st) { (void)st; check_negatives(&samples[0]); }
static void test_negatives_evervault_2022(void **st) { (void)st; check_negatives(&samples[1]); }
static void test_negatives_blocky_2024(void **st) { (void)st; check_negatives(&samples[2]); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_evervault_2023),
        cmocka_unit_test(test_verdict_evervault_2022),
        cmocka_unit_test(test_verdict_blocky_2024),
        cmocka_unit_test(test_negatives_evervault_2023),
        cmocka_unit_test(test_negatives_evervault_2022),
        cmocka_unit_test(test_negatives_blocky_2024),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
