/*
 * test_evidence_sgx.c - the Intel SGX DCAP backend against the real v3
 * quotes of vectors/evidence/sgx: each sample's stated verdict at its
 * stated time, and per sample the derived refusals with their exact
 * reason (flipped quote signature, MRENCLAVE (measurement), REPORTDATA
 * (signed body), ATTRIBUTES.DEBUG, reserved attribute bit; wrong root;
 * time outside the validity window; stale collateral; version;
 * truncation).
 *
 * Policies (each test names the one it uses):
 *  SGX-STRICT: production profile, type sgx, anchor the Intel SGX Root CA,
 *    the sample's MRENCLAVE as the only reference and MRSIGNER as the only
 *    signer, nonce freshness, minimum TCB 0, only up_to_date accepted,
 *    debug refused, CRLs required, and the SGX expectations
 *    (luna_sgx_expect) EXACT to the sample's own values: ISVPRODID, minimum
 *    ISVSVN equal to its ISVSVN, REPORTDATA.
 *  SGX-DEV: SGX-STRICT on the development profile with debug allowed,
 *    revocation optional and every non-revoked TCB status accepted.
 * Key binding is skipped (luna_verifier_verify_unbound).
 */
#include <stdlib.h>
#include <string.h>

#include "evidence_hw_util.h"
#include "verifier_dcap.h"

#define OFF_MRENCLAVE (48 + 64)
#define OFF_MRSIGNER (48 + 128)
#define OFF_FLAGS (48 + 48)
#define OFF_REPORT_DATA (48 + 320)
#define OFF_ISVPRODID (48 + 256)
#define OFF_ISVSVN (48 + 258)
#define OFF_SIG (48 + 384 + 4)

typedef struct sgx_sample {
    const char *file;
    const char *at;
    const char *tcb_info;
    const char *qe_identity; /* NULL: none available */
    bool root_crl;
} sgx_sample;

static const sgx_sample samples[] = {
    {"evidence/sgx/integritee-debug-2022.quote.bin", "2022-12-15T00:00:00Z",
     "evidence/sgx/tcbinfo-00906ea10000-2022-11-17.json",
     "evidence/sgx/qeidentity-2022-12-04.json", true},
    {"evidence/sgx/trustee-occlum-debug-2023.quote.bin", "2023-09-20T00:00:00Z",
     "evidence/sgx/tcbinfo-00606a000000-2023-09-13.json", NULL, false},
};

typedef struct ctx {
    const sgx_sample *s;
    uint8_t *quote;
    size_t len;
    uint8_t mrenclave[32], mrsigner[32];
    luna_wbuf bundle;
    X509 *root;
    luna_sgx_expect exp;
    hw_policy pol;
} ctx;

static void setup(ctx *c, const sgx_sample *s, bool dev)
{
    memset(c, 0, sizeof(*c));
    c->s = s;
    c->quote = hw_read(s->file, &c->len);
    memcpy(c->mrenclave, c->quote + OFF_MRENCLAVE, 32);
    memcpy(c->mrsigner, c->quote + OFF_MRSIGNER, 32);
    c->root = hw_cert("evidence/sgx/intel-sgx-root-ca.pem");
    hw_bundle_begin(&c->bundle);
    X509 *chain[2] = {NULL};
    assert_int_equal(2, hw_certs("evidence/sgx/intel-sgx-tcb-signing-chain.pem", chain, 2));
    hw_add_cert(&c->bundle, chain[0]);
    hw_add_cert(&c->bundle, chain[1]);
    X509_free(chain[0]);
    X509_free(chain[1]);
    if (s->root_crl) {
        hw_add_file(&c->bundle, LUNA_HWCOL_CRL, "evidence/sgx/intel-sgx-root-ca-crl-2022-04-19.der");
        /* The Platform CA CRL of the set: it does not cover this PCK
           (issued by the Processor CA), and is stale; it must not matter. */
        hw_add_file(&c->bundle, LUNA_HWCOL_CRL, "evidence/sgx/pck-platform-ca-crl-2022-10-23.der");
    }
    hw_add_file(&c->bundle, LUNA_HWCOL_TCB_INFO, s->tcb_info);
    if (s->qe_identity != NULL)
        hw_add_file(&c->bundle, LUNA_HWCOL_QE_IDENTITY, s->qe_identity);
    c->exp.isvprodid_mode = LUNA_EXPECT_EXACT;
    c->exp.isvprodid = (uint16_t)(c->quote[OFF_ISVPRODID] | c->quote[OFF_ISVPRODID + 1] << 8);
    c->exp.min_isvsvn_mode = LUNA_EXPECT_EXACT;
    c->exp.min_isvsvn = (uint16_t)(c->quote[OFF_ISVSVN] | c->quote[OFF_ISVSVN + 1] << 8);
    c->exp.report_data.mode = LUNA_EXPECT_EXACT;
    memcpy(c->exp.report_data.value, c->quote + OFF_REPORT_DATA, 64);
    c->pol = (hw_policy){.profile = LUNA_PROFILE_PRODUCTION,
                         .type = LUNA_EVIDENCE_SGX,
                         .sgx = &c->exp,
                         .anchors = {c->root},
                         .n_anchors = 1,
                         .measurement = c->mrenclave,
                         .measurement_len = 32,
                         .signer = c->mrsigner,
                         .signer_len = 32};
    if (dev) {
        c->pol.profile = LUNA_PROFILE_DEVELOPMENT;
        c->pol.allow_debug = true;
        c->pol.revocation_optional = true;
        c->pol.accept[0] = LUNA_TCB_SW_HARDENING_NEEDED;
        c->pol.accept[1] = LUNA_TCB_CONFIGURATION_NEEDED;
        c->pol.accept[2] = LUNA_TCB_OUT_OF_DATE;
        c->pol.n_accept = 3;
    }
}

static void teardown(ctx *c)
{
    free(c->quote);
    luna_wbuf_free(&c->bundle);
    X509_free(c->root);
}

static luna_verify_reason run_at(ctx *c, const uint8_t *q, size_t len, int64_t now,
                                 luna_verify_result *res)
{
    luna_verifier *v = hw_verifier(&c->pol);
    assert_luna_ok(luna_verifier_set_collateral(v, LUNA_EVIDENCE_SGX, c->bundle.data,
                                                c->bundle.len, hw_time(c->s->at)));
    luna_verify_reason r = hw_verify(v, LUNA_EVIDENCE_SGX, q, len, now, res);
    luna_verifier_free(v);
    return r;
}

static luna_verify_reason run(ctx *c, luna_verify_result *res)
{
    return run_at(c, c->quote, c->len, hw_time(c->s->at), res);
}

static luna_verify_reason run_flipped(ctx *c, size_t off, uint8_t mask)
{
    luna_verify_result res;
    uint8_t *copy = malloc(c->len);
    assert_non_null(copy);
    memcpy(copy, c->quote, c->len);
    copy[off] ^= mask;
    luna_verify_reason r = run_at(c, copy, c->len, hw_time(c->s->at), &res);
    free(copy);
    return r;
}

/* White-box: the backend's platform TCB status for a sample whose QE
   Identity is missing (the full verification stops there). */
static luna_tcb_status tcb_status_only(ctx *c, int64_t now, luna_verify_reason *why_r)
{
    const luna_verifier_backend *b = &luna_verifier_backend_sgx;
    X509 *anchors[1] = {c->root};
    void *col = NULL, *state = NULL;
    const char *why = NULL;
    dcap_pck pck;
    bool crl = false;
    luna_tcb_status st = LUNA_TCB_UNKNOWN;
    assert_luna_ok(b->collateral_load(c->bundle.data, c->bundle.len, anchors, 1,
                                      hw_time(c->s->at), &col));
    assert_int_equal(LUNA_VERIFY_OK, b->parse(c->quote, c->len, &state, &why));
    luna_backend_ctx bctx = {.anchors = anchors, .n_anchors = 1, .collateral = col, .now = now,
                             .revocation_optional = true};
    /* The backend's state is private: re-read the signature data for
       luna_dcap_verify_quote. */
    dcap_sigdata sd;
    luna_reader r;
    luna_reader_init(&r, c->quote + OFF_SIG, c->len - OFF_SIG);
    assert_int_equal(LUNA_VERIFY_OK, luna_dcap_read_sigdata(&r, false, &sd, &why));
    assert_int_equal(LUNA_VERIFY_OK,
                     luna_dcap_verify_quote(&sd, c->quote, 48 + 384, &bctx, LUNA_EVIDENCE_SGX, &pck,
                                            &crl, &why));
    *why_r = luna_dcap_tcb_status(luna_dcap_collateral_of(col), &pck, NULL, now, &st, NULL, &why);
    luna_dcap_sigdata_clear(&sd);
    b->free_state(state);
    b->collateral_free(col);
    return st;
}

/* integritee-debug-2022: SWHardeningNeeded, QE UpToDate, debug. */
static void test_verdict_integritee(void **st)
{
    ctx c;
    luna_verify_result res;
    (void)st;
    /* SGX-STRICT: the PCK (Processor CA) has no CRL in the set. */
    setup(&c, &samples[0], false);
    assert_int_equal(LUNA_VERIFY_COLLATERAL_MISSING, run(&c, &res));
    /* SGX-STRICT + revocation optional: a debug enclave is refused. */
    c.pol.revocation_optional = true;
    assert_int_equal(LUNA_VERIFY_DEBUG_FORBIDDEN, run(&c, &res));
    teardown(&c);
    /* SGX-DEV: verified, with the stated statuses. */
    setup(&c, &samples[0], true);
    assert_int_equal(LUNA_VERIFY_OK, run(&c, &res));
    assert_int_equal(LUNA_EVIDENCE_SGX, res.claims.type);
    assert_int_equal(32, res.claims.measurement_len);
    assert_memory_equal(c.mrenclave, res.claims.measurement, 32);
    assert_memory_equal(c.mrsigner, res.claims.signer, 32);
    assert_memory_equal(c.quote + OFF_REPORT_DATA, res.claims.report_data, 64);
    assert_true(res.claims.debug);
    assert_int_equal(LUNA_TCB_SW_HARDENING_NEEDED, res.claims.tcb_status);
    assert_int_equal(LUNA_QE_VALID, res.claims.qe_status);
    assert_int_equal(12, res.claims.tcb_level);
    /* ISVPRODID 0, ISVSVN 0 (sidecar); the SWHardeningNeeded level names
       INTEL-SA-00334 and the matched QE identity level none. */
    assert_int_equal(0, res.claims.sgx_isvprodid);
    assert_int_equal(0, res.claims.sgx_isvsvn);
    assert_string_equal("INTEL-SA-00334", res.claims.advisory_ids);
    /* SGX-DEV accepting only up_to_date: the TCB status is refused. */
    c.pol.n_accept = 0;
    assert_int_equal(LUNA_VERIFY_TCB_OUT_OF_DATE, run(&c, &res));
    teardown(&c);
}

/* trustee-occlum-debug-2023: valid chain and signatures, OutOfDate, no QE
   Identity available.  SGX-DEV refuses it for the missing QE Identity
   (this verifier requires one; docs/evidence-hardware.md); the platform
   TCB status computed on the way is OutOfDate. */
static void test_verdict_occlum(void **st)
{
    ctx c;
    luna_verify_result res;
    luna_verify_reason r;
    (void)st;
    setup(&c, &samples[1], true);
    assert_int_equal(LUNA_VERIFY_COLLATERAL_MISSING, run(&c, &res));
    assert_non_null(strstr(res.message, "QE Identity"));
    assert_int_equal(LUNA_TCB_OUT_OF_DATE, tcb_status_only(&c, hw_time(samples[1].at), &r));
    assert_int_equal(LUNA_VERIFY_OK, r);
    /* TCB Info past its nextUpdate (2023-10-13). */
    (void)tcb_status_only(&c, hw_time("2023-10-20T00:00:00Z"), &r);
    assert_int_equal(LUNA_VERIFY_COLLATERAL_STALE, r);
    teardown(&c);
}

/* integritee under SGX-DEV with one expectation changed at a time: each
   refused with its own reason; UNSET refuses as policy_incomplete. */
static void test_expectations_integritee(void **st)
{
    ctx c;
    luna_verify_result res;
    (void)st;
    setup(&c, &samples[0], true);
    const luna_sgx_expect good = c.exp;
    assert_int_equal(LUNA_VERIFY_OK, run(&c, &res));
    c.exp.isvprodid = (uint16_t)(good.isvprodid + 1);
    assert_int_equal(LUNA_VERIFY_ISVPRODID_MISMATCH, run(&c, &res));
    c.exp.isvprodid_mode = LUNA_EXPECT_ANY;
    assert_int_equal(LUNA_VERIFY_OK, run(&c, &res));
    c.exp = good;
    c.exp.min_isvsvn = (uint16_t)(good.min_isvsvn + 1);
    assert_int_equal(LUNA_VERIFY_ISVSVN_BELOW_MINIMUM, run(&c, &res));
    c.exp.min_isvsvn_mode = LUNA_EXPECT_ANY;
    assert_int_equal(LUNA_VERIFY_OK, run(&c, &res));
    c.exp = good;
    c.exp.report_data.value[63] ^= 0x01;
    assert_int_equal(LUNA_VERIFY_REPORT_DATA_MISMATCH, run(&c, &res));
    c.exp = good;
    c.exp.isvprodid_mode = LUNA_EXPECT_UNSET;
    assert_int_equal(LUNA_VERIFY_POLICY_INCOMPLETE, run(&c, &res));
    c.exp = good;
    c.exp.min_isvsvn_mode = LUNA_EXPECT_UNSET;
    assert_int_equal(LUNA_VERIFY_POLICY_INCOMPLETE, run(&c, &res));
    c.exp = good;
    c.exp.report_data.mode = LUNA_EXPECT_UNSET;
    assert_int_equal(LUNA_VERIFY_POLICY_INCOMPLETE, run(&c, &res));
    c.pol.sgx = NULL;
    assert_int_equal(LUNA_VERIFY_POLICY_INCOMPLETE, run(&c, &res));
    teardown(&c);
}

/* SGX-DEV, one verifier throughout: the cached PCK chain (2022 Processor
   CA) is not used once the Root CA CRL of its key is replaced by other
   bytes (the collateral without it), and never past the chain's window. */
static void test_chain_cache_integritee(void **st)
{
    ctx c;
    luna_verify_result res;
    (void)st;
    setup(&c, &samples[0], true);
    const int64_t at = hw_time(c.s->at);
    luna_verifier *v = hw_verifier(&c.pol);
    assert_luna_ok(luna_verifier_set_collateral(v, LUNA_EVIDENCE_SGX, c.bundle.data,
                                                c.bundle.len, at));
    assert_int_equal(LUNA_VERIFY_OK, hw_verify(v, LUNA_EVIDENCE_SGX, c.quote, c.len, at, &res));
    assert_int_equal(LUNA_VERIFY_OK,
                     hw_verify(v, LUNA_EVIDENCE_SGX, c.quote, c.len, at + 60, &res));
    /* Ten years on: the Root CA CRL (and the certificates) are outside
       their windows; the cache entry is not honoured. */
    assert_int_equal(LUNA_VERIFY_COLLATERAL_STALE,
                     hw_verify(v, LUNA_EVIDENCE_SGX, c.quote, c.len, at + 3650 * 86400LL, &res));
    assert_non_null(strstr(res.message, "CRL"));
    teardown(&c);
    luna_verifier_free(v);
}

/* Derived refusals under SGX-DEV. */
static void check_negatives(const sgx_sample *s)
{
    ctx c;
    luna_verify_result res;
    setup(&c, s, true);
    const int64_t at = hw_time(s->at);

    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, OFF_SIG + 7, 0x01));
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, OFF_MRENCLAVE + 3, 0x08));
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, OFF_REPORT_DATA + 60, 0x01));
    /* ATTRIBUTES.DEBUG cleared by an attacker: the signature breaks. */
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, OFF_FLAGS, 0x02));
    assert_int_equal(LUNA_VERIFY_RESERVED_BITS, run_flipped(&c, OFF_FLAGS, 0x08));
    assert_int_equal(LUNA_VERIFY_RESERVED_BITS, run_flipped(&c, 5, 0x01));
    assert_int_equal(LUNA_VERIFY_UNSUPPORTED_VERSION, run_flipped(&c, 0, 0x04));
    assert_int_equal(LUNA_VERIFY_MALFORMED, run_at(&c, c.quote, c.len - 10, at, &res));
    /* Without collateral: wrong root, and the chain's validity window. */
    X509 *ark[2] = {NULL};
    assert_int_equal(2, hw_certs("evidence/sev-snp/gsg-milan-vcek.ask_ark.pem", ark, 2));
    c.pol.anchors[0] = ark[1];
    luna_verifier *v = hw_verifier(&c.pol);
    assert_int_equal(LUNA_VERIFY_UNKNOWN_ROOT,
                     hw_verify(v, LUNA_EVIDENCE_SGX, c.quote, c.len, at, &res));
    luna_verifier_free(v);
    c.pol.anchors[0] = c.root;
    X509_free(ark[0]);
    X509_free(ark[1]);
    v = hw_verifier(&c.pol);
    assert_int_equal(LUNA_VERIFY_CERT_EXPIRED,
                     hw_verify(v, LUNA_EVIDENCE_SGX, c.quote, c.len, at + 3650 * 86400LL, &res));
    assert_int_equal(LUNA_VERIFY_CERT_EXPIRED,
                     hw_verify(v, LUNA_EVIDENCE_SGX, c.quote, c.len, at - 3650 * 86400LL, &res));
    luna_verifier_free(v);
    teardown(&c);
}

static void test_negatives_integritee(void **st)
{
    ctx c;
    luna_verify_result res;
    (void)st;
    check_negatives(&samples[0]);
    /* SGX-DEV: policy refusals after a fully verified quote. */
    setup(&c, &samples[0], true);
    uint8_t other[32];
    memcpy(other, c.mrenclave, 32);
    other[0] ^= 1;
    c.pol.measurement = other;
    assert_int_equal(LUNA_VERIFY_MEASUREMENT_MISMATCH, run(&c, &res));
    c.pol.measurement = c.mrenclave;
    c.pol.signer = other;
    assert_int_equal(LUNA_VERIFY_UNKNOWN_SIGNER, run(&c, &res));
    c.pol.signer = c.mrsigner;
    /* QE Identity past its nextUpdate (2023-01-03); root CRL still valid. */
    assert_int_equal(LUNA_VERIFY_COLLATERAL_STALE,
                     run_at(&c, c.quote, c.len, hw_time("2023-01-10T00:00:00Z"), &res));
    teardown(&c);
}

static void test_negatives_occlum(void **st) { (void)st; check_negatives(&samples[1]); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expectations_integritee),
        cmocka_unit_test(test_chain_cache_integritee),
        cmocka_unit_test(test_verdict_integritee),
        cmocka_unit_test(test_verdict_occlum),
        cmocka_unit_test(test_negatives_integritee),
        cmocka_unit_test(test_negatives_occlum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
