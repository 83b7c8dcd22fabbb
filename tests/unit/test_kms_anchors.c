/*
 * test_kms_anchors.c - unit.kms_anchors: the KMS keeps its trust anchors
 * per evidence type (kms_verify.c, docs/kms.md "Trust anchors").
 *
 * A KMS allowing sim + tpm with the sim vendor root as its (legacy)
 * attestation.trust_anchors must not accept, as a TPM attestation key, a
 * key the sim vendor certified: the quote here is hand-marshalled and
 * signed in software with a P-256 "AK"; its certificate signed by the AK
 * enrolment CA (kms.tpm_ak_ca) passes, the same key certified by the sim
 * vendor root is refused.  Also asserted: tpm without kms.tpm_ak_ca,
 * several non-tpm types without kms.trust_anchors, a "tpm" entry in
 * kms.trust_anchors and an allowed type left without an anchor are
 * configuration errors; a lone non-tpm type keeps the legacy list.
 * Test-only; writes to a temp folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kms_verify.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/evidence_hw.h"
#include "luna/evidence_sim.h"
#include "luna/tpm.h"
#include "luna/verifier.h"
#include "luna_test.h"

#define DEP "app"
#define TPM_ST_ATTEST_QUOTE 0x8018u
#define TPM_GENERATED 0xff544347u
#define TPM_ALG_ECDSA 0x0018u

static char g_dir[] = "/tmp/luna-kms-anchors-XXXXXX";
static char g_sim_root[256], g_akca[256], g_bundle_sim[256], g_bundle_ca[256];
static int64_t g_now;
static uint8_t g_nonce[32], g_kx[32], g_ed[32], g_qname[34], g_pcr_digest[32];
static uint8_t g_ev[2048];
static size_t g_ev_len;

static void path_in(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_pem(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(1, PEM_write_X509(f, x));
    assert_int_equal(0, fclose(f));
}

static void write_bytes(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(n, fwrite(p, 1, n, f));
    assert_int_equal(0, fclose(f));
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(1, X509_add_ext(x, e, -1));
    X509_EXTENSION_free(e);
}

/* An AK certificate for ak issued by issuer (what luna_tpm_akca_certify
   makes, without the enrolment it needs). */
static X509 *ak_cert(EVP_PKEY *ak, EVP_PKEY *issuer_key, X509 *issuer, long serial)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(1, X509_set_version(x, 2));
    assert_int_equal(1, ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
    assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, NULL));
    assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 1, 0, NULL));
    X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(1, X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                                   (const unsigned char *)"Lunal TPM AK test",
                                                   -1, -1, 0));
    assert_int_equal(1, X509_set_issuer_name(x, X509_get_subject_name(issuer)));
    assert_int_equal(1, X509_set_pubkey(x, ak));
    add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

/* LHC1 bundle: the AK certificate and its issuer's (empty) CRL. */
static void write_bundle(const char *path, X509 *cert, EVP_PKEY *issuer_key, X509 *issuer)
{
    static uint8_t buf[16384];
    uint8_t *der = NULL;
    X509_CRL *crl = NULL;
    luna_wbuf w;
    luna_wbuf_init(&w, buf, sizeof(buf));
    assert_luna_ok(luna_hwcol_begin(&w));
    int n = i2d_X509(cert, &der);
    assert_true(n > 0);
    assert_luna_ok(luna_hwcol_add(&w, LUNA_HWCOL_CERT, der, (size_t)n));
    OPENSSL_free(der);
    der = NULL;
    assert_luna_ok(luna_tpm_akca_crl(issuer_key, issuer, g_now - 60, g_now + 3600, &crl));
    n = i2d_X509_CRL(crl, &der);
    assert_true(n > 0);
    assert_luna_ok(luna_hwcol_add(&w, LUNA_HWCOL_CRL, der, (size_t)n));
    OPENSSL_free(der);
    X509_CRL_free(crl);
    write_bytes(path, w.data, w.len);
}

/* A quote of PCR 23 (SHA-256 bank) over the (nonce, keys) binding,
   ECDSA P-256 / SHA-256 signed by ak, with the key section. */
static void make_quote(EVP_PKEY *ak)
{
    uint8_t attest[512], sig[128], pcr[32], binding[LUNA_CLAIM_REPORT_DATA_LEN], h[32];
    uint8_t der_sig[80], r[32], s[32];
    luna_wbuf a, sw, ev;
    memset(pcr, 0x23, sizeof(pcr));
    assert_luna_ok(luna_sha256(pcr, sizeof(pcr), g_pcr_digest));
    assert_luna_ok(luna_verifier_binding(g_nonce, g_kx, g_ed, binding));
    g_qname[0] = 0x00;
    g_qname[1] = 0x0b;
    memset(g_qname + 2, 0x51, 32);
    luna_wbuf_init(&a, attest, sizeof(attest));
    assert_luna_ok(luna_write_u32(&a, TPM_GENERATED));
    assert_luna_ok(luna_write_u16(&a, TPM_ST_ATTEST_QUOTE));
    assert_luna_ok(luna_write_u16(&a, sizeof(g_qname)));
    assert_luna_ok(luna_write_bytes(&a, g_qname, sizeof(g_qname)));
    assert_luna_ok(luna_write_u16(&a, 32)); /* extraData */
    assert_luna_ok(luna_write_bytes(&a, binding, 32));
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
    assert_luna_ok(luna_write_bytes(&a, g_pcr_digest, 32));

    assert_luna_ok(luna_sha256(a.data, a.len, h));
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(ak, NULL);
    assert_non_null(pc);
    size_t dl = sizeof(der_sig);
    assert_int_equal(1, EVP_PKEY_sign_init(pc));
    assert_int_equal(1, EVP_PKEY_sign(pc, der_sig, &dl, h, sizeof(h)));
    EVP_PKEY_CTX_free(pc);
    const unsigned char *dp = der_sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &dp, (long)dl);
    assert_non_null(es);
    assert_int_equal(32, BN_bn2binpad(ECDSA_SIG_get0_r(es), r, 32));
    assert_int_equal(32, BN_bn2binpad(ECDSA_SIG_get0_s(es), s, 32));
    ECDSA_SIG_free(es);
    luna_wbuf_init(&sw, sig, sizeof(sig));
    assert_luna_ok(luna_write_u16(&sw, TPM_ALG_ECDSA));
    assert_luna_ok(luna_write_u16(&sw, LUNA_TPM_ALG_SHA256));
    assert_luna_ok(luna_write_u16(&sw, 32));
    assert_luna_ok(luna_write_bytes(&sw, r, 32));
    assert_luna_ok(luna_write_u16(&sw, 32));
    assert_luna_ok(luna_write_bytes(&sw, s, 32));

    luna_tpm_pcr p = {LUNA_TPM_ALG_SHA256, 23, pcr, 32};
    luna_wbuf_init(&ev, g_ev, sizeof(g_ev));
    assert_luna_ok(luna_tpm_evidence_build(&ev, a.data, a.len, sw.data, sw.len, &p, 1));
    assert_luna_ok(luna_tpm_evidence_add_keys(&ev, g_kx, g_ed));
    g_ev_len = ev.len;
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(g_dir) == NULL)
        return -1;
    g_now = (int64_t)time(NULL);
    path_in(g_sim_root, sizeof(g_sim_root), "sim-root.pem");
    path_in(g_akca, sizeof(g_akca), "tpm-akca.pem");
    path_in(g_bundle_sim, sizeof(g_bundle_sim), "ak-by-sim.lhc");
    path_in(g_bundle_ca, sizeof(g_bundle_ca), "ak-by-akca.lhc");
    memset(g_nonce, 0x4e, sizeof(g_nonce));
    memset(g_kx, 0x58, sizeof(g_kx));
    memset(g_ed, 0x45, sizeof(g_ed));

    luna_sim_vendor *vendor = NULL;
    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL;
    if (luna_sim_vendor_create(g_now - 3600, g_now + 86400, &vendor) != LUNA_OK ||
        luna_tpm_akca_create(g_now - 3600, g_now + 86400, &ca_key, &ca) != LUNA_OK)
        return -1;
    write_pem(g_sim_root, luna_sim_vendor_cert(vendor));
    write_pem(g_akca, ca);

    EVP_PKEY *ak = EVP_EC_gen("P-256");
    assert_non_null(ak);
    X509 *by_sim = ak_cert(ak, luna_sim_vendor_key(vendor), luna_sim_vendor_cert(vendor), 7);
    X509 *by_ca = ak_cert(ak, ca_key, ca, 8);
    write_bundle(g_bundle_sim, by_sim, luna_sim_vendor_key(vendor),
                 luna_sim_vendor_cert(vendor));
    write_bundle(g_bundle_ca, by_ca, ca_key, ca);
    make_quote(ak);

    X509_free(by_sim);
    X509_free(by_ca);
    EVP_PKEY_free(ak);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    luna_sim_vendor_free(vendor);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"sim-root.pem", "tpm-akca.pem", "ak-by-sim.lhc", "ak-by-akca.lhc"};
    char p[256];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_in(p, sizeof(p), names[i]);
        (void)unlink(p);
    }
    (void)rmdir(g_dir);
    return 0;
}

/* The KMS config: a tpm reference for the quote, the given AK bundle as
   tpm collateral; ak_ca and typed (a kms.trust_anchors list, JSON text)
   may be NULL. */
static json_t *config(const char *bundle, const char *ak_ca, const char *typed)
{
    char mr[65], sg[69], text[4096];
    assert_luna_ok(luna_hex_encode(g_pcr_digest, 32, mr, sizeof(mr)));
    assert_luna_ok(luna_hex_encode(g_qname, sizeof(g_qname), sg, sizeof(sg)));
    char extra[1024] = "";
    int n = 0;
    if (ak_ca != NULL)
        n = snprintf(extra, sizeof(extra), ",\"tpm_ak_ca\":\"%s\"", ak_ca);
    if (typed != NULL)
        n = snprintf(extra + n, sizeof(extra) - (size_t)n, ",\"trust_anchors\":%s", typed);
    assert_true(n >= 0 && (size_t)n < sizeof(extra));
    n = snprintf(text, sizeof(text),
                 "{\"kms\":{\"references\":[{\"deployment_id\":\"" DEP "\","
                 "\"evidence_type\":\"tpm\",\"mr_enclave\":\"%s\",\"mr_signer\":\"%s\"}],"
                 "\"collateral\":[{\"evidence_type\":\"tpm\",\"file\":\"%s\"}],"
                 "\"evidence_max_age_sec\":300%s}}",
                 mr, sg, bundle, extra);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    assert_non_null(root);
    return root;
}

/* The config without its tpm reference and collateral (for sim-only KMSs). */
static json_t *no_tpm(json_t *root)
{
    json_t *kms = json_object_get(root, "kms");
    assert_int_equal(0, json_object_del(kms, "references"));
    assert_int_equal(0, json_object_del(kms, "collateral"));
    return root;
}

static luna_err verify_new(const json_t *root, const char *const *types, size_t n_types,
                           kms_verify **v, const char **why)
{
    static const char *const legacy[1] = {g_sim_root};
    *v = NULL;
    *why = NULL;
    return kms_verify_new(root, false, types, n_types, legacy, 1, v, why);
}

/* Appraises the quote for release; returns the reason name. */
static const char *appraise(kms_verify *v, luna_err *err)
{
    kms_ev_claims claims;
    const char *reason = NULL;
    *err = kms_verify_evidence(v, true, "tpm", g_ev, g_ev_len, DEP, g_nonce, g_kx, g_ed, g_now,
                               &claims, &reason);
    assert_non_null(reason);
    return reason;
}

static const char *const sim_tpm[] = {"sim", "tpm"};

/* The AK-CA-certified key passes: the quote itself is sound. */
static void akca_certified_ak_passes(void **state)
{
    (void)state;
    json_t *root = config(g_bundle_ca, g_akca, NULL);
    kms_verify *v = NULL;
    const char *why = NULL;
    luna_err err;
    assert_luna_ok(verify_new(root, sim_tpm, 2, &v, &why));
    const char *reason = appraise(v, &err);
    assert_string_equal("ok", reason);
    assert_luna_ok(err);
    kms_verify_free(v);
    json_decref(root);
}

/* The finding: sim + tpm with the sim root as the (legacy) anchor, and an
   "AK" the sim vendor key certified. */
static void sim_certified_ak_refused(void **state)
{
    (void)state;
    json_t *root = config(g_bundle_sim, g_akca, NULL);
    kms_verify *v = NULL;
    const char *why = NULL;
    luna_err err;
    assert_luna_ok(verify_new(root, sim_tpm, 2, &v, &why));
    const char *reason = appraise(v, &err);
    assert_luna_err(LUNA_ERR_VERIFY, err);
    assert_string_not_equal("ok", reason);
    kms_verify_free(v);
    json_decref(root);

    /* Listing the sim root for sim explicitly changes nothing for tpm. */
    root = config(g_bundle_sim, g_akca, "[{\"evidence_type\":\"sim\",\"file\":\"@\"}]");
    json_t *e = json_array_get(json_object_get(json_object_get(root, "kms"), "trust_anchors"), 0);
    assert_int_equal(0, json_object_set_new(e, "file", json_string(g_sim_root)));
    assert_luna_ok(verify_new(root, sim_tpm, 2, &v, &why));
    reason = appraise(v, &err);
    assert_luna_err(LUNA_ERR_VERIFY, err);
    assert_string_not_equal("ok", reason);
    kms_verify_free(v);
    json_decref(root);
}

/* The TPM anchor comes only from kms.tpm_ak_ca. */
static void tpm_needs_ak_ca(void **state)
{
    (void)state;
    static const char *const tpm_only[] = {"tpm"};
    json_t *root = config(g_bundle_sim, NULL, NULL);
    kms_verify *v = NULL;
    const char *why = NULL;
    assert_luna_err(LUNA_ERR_CONFIG, verify_new(root, sim_tpm, 2, &v, &why));
    assert_null(v);
    assert_non_null(why);
    assert_non_null(strstr(why, "kms.tpm_ak_ca"));
    assert_luna_err(LUNA_ERR_CONFIG, verify_new(root, tpm_only, 1, &v, &why));
    assert_null(v);
    json_decref(root);

    char typed[512];
    int n = snprintf(typed, sizeof(typed), "[{\"evidence_type\":\"tpm\",\"file\":\"%s\"}]",
                     g_akca);
    assert_true(n > 0 && (size_t)n < sizeof(typed));
    root = config(g_bundle_ca, g_akca, typed);
    assert_luna_err(LUNA_ERR_CONFIG, verify_new(root, sim_tpm, 2, &v, &why));
    assert_null(v);
    assert_non_null(strstr(why, "kms.trust_anchors"));
    json_decref(root);
}

/* Two vendor types and one untyped list: which root serves which type
   would be a guess. */
static void several_types_need_typed_anchors(void **state)
{
    (void)state;
    static const char *const two[] = {"sim", "sev-snp"};
    static const char *const one[] = {"sim"};
    json_t *root = no_tpm(config(g_bundle_ca, NULL, NULL));
    kms_verify *v = NULL;
    const char *why = NULL;
    assert_luna_err(LUNA_ERR_CONFIG, verify_new(root, two, 2, &v, &why));
    assert_null(v);
    assert_non_null(strstr(why, "kms.trust_anchors"));
    /* A lone vendor type keeps the legacy list (the dev platform's config). */
    assert_luna_ok(verify_new(root, one, 1, &v, &why));
    kms_verify_free(v);
    json_decref(root);

    /* Typed, but sev-snp left without an anchor. */
    char typed[512];
    int n = snprintf(typed, sizeof(typed), "[{\"evidence_type\":\"sim\",\"file\":\"%s\"}]",
                     g_sim_root);
    assert_true(n > 0 && (size_t)n < sizeof(typed));
    root = no_tpm(config(g_bundle_ca, NULL, typed));
    assert_luna_err(LUNA_ERR_CONFIG, verify_new(root, two, 2, &v, &why));
    assert_null(v);
    assert_luna_ok(verify_new(root, one, 1, &v, &why));
    kms_verify_free(v);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(akca_certified_ak_passes),
        cmocka_unit_test(sim_certified_ak_refused),
        cmocka_unit_test(tpm_needs_ak_ca),
        cmocka_unit_test(several_types_need_typed_anchors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
