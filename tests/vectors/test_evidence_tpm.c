/*
 * test_evidence_tpm.c - the TPM 2.0 backend against the real quotes of
 * vectors/evidence/tpm, wrapped in the LTQ1 container with the PCR values
 * of their *.pcrs.json: each sample's stated verdict at its stated time,
 * and the derived refusals with their exact reason (flipped signature,
 * PCR digest (measurement), extraData (signed body), a supplied PCR value;
 * wrong root; time outside the AK certificate's validity; container and
 * TPMS_ATTEST format errors).  TPM quotes have no debug bit and AWS-style
 * TCB collateral: neither is tested here.
 *
 * The TPM backend is not yet in luna_verifier's backend list (see
 * verifier.c), so these tests drive it directly (parse, verify, claims,
 * with its collateral loader): the policy-level checks (reference
 * measurement, signer, TCB acceptance) are the generic layer's and are
 * not exercised here.  "TPM-STRICT": anchor Google's TPM EK root 1, CRLs
 * required.  Google publishes no CRL in the set, so most tests add
 * "revocation optional" and say so.  The swtpm and Azure samples have no
 * AK certificate: they are checked against their pinned AK
 * (luna_tpm_verify_pinned).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "evidence_hw_util.h"
#include "verifier_tpm.h"

#define AT_GCE "2021-09-01T00:00:00Z"
#define ATTEST_OFF 6 /* "LTQ1" || u16 */

typedef struct tpm_ev {
    luna_wbuf w;
    size_t attest_len;
    uint8_t digest[64];
    size_t digest_len;
    uint8_t name[64];
    size_t name_len;
} tpm_ev;

/* Builds the LTQ1 container of "<prefix>.attest.bin" etc. */
static void build(tpm_ev *e, const char *prefix)
{
    char path[256];
    size_t attest_len = 0, sig_len = 0, json_len = 0;
    snprintf(path, sizeof(path), "evidence/tpm/%s.attest.bin", prefix);
    uint8_t *attest = hw_read(path, &attest_len);
    snprintf(path, sizeof(path), "evidence/tpm/%s.sig.bin", prefix);
    uint8_t *sig = hw_read(path, &sig_len);
    snprintf(path, sizeof(path), "evidence/tpm/%s.pcrs.json", prefix);
    uint8_t *json = hw_read(path, &json_len);
    json_error_t je;
    json_t *root = json_loadb((const char *)json, json_len, 0, &je);
    assert_non_null(root);
    const char *hash = json_string_value(json_object_get(root, "hash"));
    assert_non_null(hash);
    uint16_t bank = strcmp(hash, "sha1") == 0     ? LUNA_TPM_ALG_SHA1
                    : strcmp(hash, "sha256") == 0 ? LUNA_TPM_ALG_SHA256
                                                  : LUNA_TPM_ALG_SHA384;
    json_t *pcrs = json_object_get(root, "pcrs");
    luna_tpm_pcr p[24];
    uint8_t *vals[24];
    for (int i = 0; i < 24; i++) {
        char k[4];
        snprintf(k, sizeof(k), "%d", i);
        const char *hex = json_string_value(json_object_get(pcrs, k));
        assert_non_null(hex);
        vals[i] = luna_test_unhex(hex, &p[i].len);
        p[i].bank = bank;
        p[i].index = (uint8_t)i;
        p[i].value = vals[i];
    }
    assert_luna_ok(luna_wbuf_init_alloc(&e->w, 8192));
    assert_luna_ok(luna_tpm_evidence_build(&e->w, attest, attest_len, sig, sig_len, p, 24));
    e->attest_len = attest_len;
    /* The quote's own pcrDigest (last field) and qualifiedSigner. */
    e->name_len = (size_t)attest[6] << 8 | attest[7];
    memcpy(e->name, attest + 8, e->name_len);
    e->digest_len = attest[attest_len - 33] == 0x20 ? 32 : 48;
    memcpy(e->digest, attest + attest_len - e->digest_len, e->digest_len);
    for (int i = 0; i < 24; i++)
        free(vals[i]);
    json_decref(root);
    free(json);
    free(sig);
    free(attest);
}

typedef struct ctx {
    tpm_ev ev;
    luna_wbuf bundle;
    X509 *root;
    X509 *anchor; /* root unless a test says otherwise */
    bool revocation_optional;
} ctx;

static void setup(ctx *c, const char *prefix)
{
    memset(c, 0, sizeof(*c));
    build(&c->ev, prefix);
    c->root = hw_cert("evidence/tpm/google-tpm-ek-root-1.pem");
    c->anchor = c->root;
    hw_bundle_begin(&c->bundle);
    X509 *ak = hw_cert("evidence/tpm/gce-cos85-nonce9009.ak.cert.der");
    X509 *inter = hw_cert("evidence/tpm/google-tpm-ek-intermediate-2.pem");
    hw_add_cert(&c->bundle, ak);
    hw_add_cert(&c->bundle, inter);
    X509_free(ak);
    X509_free(inter);
}

static void teardown(ctx *c)
{
    luna_wbuf_free(&c->ev.w);
    luna_wbuf_free(&c->bundle);
    X509_free(c->root);
}

/* parse + verify + claims of the backend, collateral from c->bundle (or
   none when with_collateral is false). */
static luna_verify_reason run_with(ctx *c, const uint8_t *ev, size_t len, int64_t now,
                                   bool with_collateral, luna_claims *claims)
{
    const luna_verifier_backend *b = &luna_verifier_backend_tpm;
    void *col = NULL, *st = NULL;
    const char *why = NULL;
    if (with_collateral)
        assert_luna_ok(b->collateral_load(c->bundle.data, c->bundle.len, &c->anchor, 1,
                                          hw_time(AT_GCE), &col));
    luna_backend_ctx bctx = {.anchors = &c->anchor,
                             .n_anchors = 1,
                             .collateral = col,
                             .now = now,
                             .revocation_optional = c->revocation_optional};
    memset(claims, 0, sizeof(*claims));
    luna_verify_reason r = b->parse(ev, len, &st, &why);
    if (r == LUNA_VERIFY_OK) {
        r = b->verify(st, &bctx, &why);
        if (r == LUNA_VERIFY_OK)
            r = b->claims(st, &bctx, claims, &why);
        b->free_state(st);
    }
    if (r != LUNA_VERIFY_OK)
        assert_non_null(why);
    if (col != NULL)
        b->collateral_free(col);
    return r;
}

static luna_verify_reason run_at(ctx *c, const uint8_t *ev, size_t len, int64_t now,
                                 luna_claims *claims)
{
    return run_with(c, ev, len, now, true, claims);
}

static luna_verify_reason run(ctx *c, luna_claims *claims)
{
    return run_at(c, c->ev.w.data, c->ev.w.len, hw_time(AT_GCE), claims);
}

static luna_verify_reason run_flipped(ctx *c, size_t off, uint8_t mask)
{
    luna_claims claims;
    uint8_t *copy = malloc(c->ev.w.len);
    assert_non_null(copy);
    memcpy(copy, c->ev.w.data, c->ev.w.len);
    assert_true(off < c->ev.w.len);
    copy[off] ^= mask;
    luna_verify_reason r = run_at(c, copy, c->ev.w.len, hw_time(AT_GCE), &claims);
    free(copy);
    return r;
}

/* gce-cos85-nonce9009, each bank: valid at 2021-09-01. */
static void check_gce(const char *prefix)
{
    ctx c;
    luna_claims cl;
    setup(&c, prefix);
    /* TPM-STRICT: no CRL for the AK chain in the set. */
    assert_int_equal(LUNA_VERIFY_COLLATERAL_MISSING, run(&c, &cl));
    /* TPM-STRICT + revocation optional: verified. */
    c.revocation_optional = true;
    assert_int_equal(LUNA_VERIFY_OK, run(&c, &cl));
    assert_int_equal(LUNA_EVIDENCE_TPM, cl.type);
    assert_int_equal(32, cl.measurement_len); /* SHA-256 signing hash */
    assert_memory_equal(c.ev.digest, cl.measurement, 32);
    assert_int_equal(c.ev.name_len, cl.signer_len);
    assert_memory_equal(c.ev.name, cl.signer, c.ev.name_len);
    assert_int_equal(0x90, cl.report_data[0]);
    assert_int_equal(0x09, cl.report_data[1]);
    assert_int_equal(0, cl.report_data[2]);
    assert_false(cl.debug);
    assert_false(cl.revocation_checked);
    assert_int_equal(LUNA_TCB_UP_TO_DATE, cl.tcb_status);
    assert_int_equal(LUNA_QE_NOT_APPLICABLE, cl.qe_status);
    assert_true(cl.platform_serial_len > 0);
    teardown(&c);
}

static void test_verdict_gce_sha1_bank(void **st) { (void)st; check_gce("gce-cos85-nonce9009.quote-sha1"); }
static void test_verdict_gce_sha256_bank(void **st) { (void)st; check_gce("gce-cos85-nonce9009.quote-sha256"); }
static void test_verdict_gce_sha384_bank(void **st) { (void)st; check_gce("gce-cos85-nonce9009.quote-sha384"); }

/* TPM-STRICT + revocation optional, on the GCE SHA-256 quote. */
static void test_negatives_gce(void **st)
{
    ctx c;
    luna_claims cl;
    (void)st;
    setup(&c, "gce-cos85-nonce9009.quote-sha256");
    c.revocation_optional = true;
    const size_t a = ATTEST_OFF, al = c.ev.attest_len;
    const size_t sig = a + al + 2;         /* TPMT_SIGNATURE */
    const size_t pcr0 = sig + 262 + 1 + 3; /* first PCR value */
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, sig + 6 + 77, 0x01));
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, a + al - 5, 0x10)); /* pcrDigest */
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, a + 44, 0x01));     /* extraData */
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, run_flipped(&c, pcr0 + 3, 0x01));
    /* Format: TPMS_ATTEST type, clockInfo.safe, container magic, PCR list. */
    assert_int_equal(LUNA_VERIFY_UNSUPPORTED_VERSION, run_flipped(&c, a + 5, 0x01));
    assert_int_equal(LUNA_VERIFY_RESERVED_BITS, run_flipped(&c, a + 46 + 16, 0x02));
    assert_int_equal(LUNA_VERIFY_UNSUPPORTED_VERSION, run_flipped(&c, 0, 0x01));
    assert_int_equal(LUNA_VERIFY_MALFORMED, run_flipped(&c, pcr0 - 1, 0x01)); /* PCR index */
    assert_int_equal(LUNA_VERIFY_MALFORMED,
                     run_at(&c, c.ev.w.data, c.ev.w.len - 32, hw_time(AT_GCE), &cl));
    /* Time outside the AK certificate (2021-08-31T23:11:05Z .. 2051). */
    assert_int_equal(LUNA_VERIFY_CERT_EXPIRED,
                     run_at(&c, c.ev.w.data, c.ev.w.len, hw_time("2021-08-31T23:00:00Z"), &cl));
    assert_int_equal(LUNA_VERIFY_CERT_EXPIRED,
                     run_at(&c, c.ev.w.data, c.ev.w.len, hw_time("2051-09-01T00:00:00Z"), &cl));
    /* Wrong root: an AMD ARK. */
    X509 *ark[2] = {NULL};
    assert_int_equal(2, hw_certs("evidence/sev-snp/gsg-milan-vcek.ask_ark.pem", ark, 2));
    c.anchor = ark[1];
    assert_int_equal(LUNA_VERIFY_UNKNOWN_ROOT, run(&c, &cl));
    c.anchor = c.root;
    X509_free(ark[0]);
    X509_free(ark[1]);
    /* No collateral; and the intermediate missing. */
    assert_int_equal(LUNA_VERIFY_COLLATERAL_MISSING,
                     run_with(&c, c.ev.w.data, c.ev.w.len, hw_time(AT_GCE), false, &cl));
    luna_wbuf_free(&c.bundle);
    hw_bundle_begin(&c.bundle);
    X509 *ak = hw_cert("evidence/tpm/gce-cos85-nonce9009.ak.cert.der");
    hw_add_cert(&c.bundle, ak);
    X509_free(ak);
    assert_int_equal(LUNA_VERIFY_UNKNOWN_ROOT, run(&c, &cl));
    /* Only a CA certificate: no attestation key at all. */
    luna_wbuf_free(&c.bundle);
    hw_bundle_begin(&c.bundle);
    X509 *inter = hw_cert("evidence/tpm/google-tpm-ek-intermediate-2.pem");
    hw_add_cert(&c.bundle, inter);
    X509_free(inter);
    assert_int_equal(LUNA_VERIFY_COLLATERAL_MISSING, run(&c, &cl));
    teardown(&c);
}

static EVP_PKEY *pem_key(const char *rel)
{
    size_t len = 0;
    uint8_t *d = hw_read(rel, &len);
    BIO *bio = BIO_new_mem_buf(d, (int)len);
    assert_non_null(bio);
    EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    assert_non_null(k);
    BIO_free(bio);
    free(d);
    return k;
}

/* trustee-swtpm and azure-tdx-vtpm: valid signature and pcrDigest with
   the pinned AK (no certificate exists); refusals for a flipped
   signature, PCR value and extraData, and for the other sample's AK. */
static void check_pinned(const char *prefix, const char *ak_pem, const char *other_pem)
{
    tpm_ev e;
    const char *why = NULL;
    build(&e, prefix);
    EVP_PKEY *ak = pem_key(ak_pem), *other = pem_key(other_pem);
    assert_int_equal(LUNA_VERIFY_OK, luna_tpm_verify_pinned(e.w.data, e.w.len, ak, &why));
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE,
                     luna_tpm_verify_pinned(e.w.data, e.w.len, other, &why));
    const size_t sig = ATTEST_OFF + e.attest_len + 2;
    const size_t offs[] = {sig + 6 + 100, sig + 262 + 1 + 3 + 31, ATTEST_OFF + 44};
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        e.w.data[offs[i]] ^= 0x04;
        assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE,
                         luna_tpm_verify_pinned(e.w.data, e.w.len, ak, &why));
        e.w.data[offs[i]] ^= 0x04;
    }
    EVP_PKEY_free(ak);
    EVP_PKEY_free(other);
    luna_wbuf_free(&e.w);
}

static void test_verdict_trustee_swtpm(void **st)
{
    (void)st;
    check_pinned("trustee-swtpm.quote", "evidence/tpm/trustee-swtpm.ak.pub.pem",
                 "evidence/tpm/azure-tdx-vtpm.ak.pub.pem");
}

static void test_verdict_azure_tdx_vtpm(void **st)
{
    (void)st;
    check_pinned("azure-tdx-vtpm.quote", "evidence/tpm/azure-tdx-vtpm.ak.pub.pem",
                 "evidence/tpm/trustee-swtpm.ak.pub.pem");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_gce_sha1_bank),
        cmocka_unit_test(test_verdict_gce_sha256_bank),
        cmocka_unit_test(test_verdict_gce_sha384_bank),
        cmocka_unit_test(test_negatives_gce),
        cmocka_unit_test(test_verdict_trustee_swtpm),
        cmocka_unit_test(test_verdict_azure_tdx_vtpm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
