/*
 * evidence_hw_util.h - helpers the hardware evidence vector tests share:
 * reading the shared samples, PEM/DER loading, building a collateral
 * bundle, and a policy + verifier built from a short description.
 * Test code only; every helper aborts the test on a setup failure.
 */
#ifndef EVIDENCE_HW_UTIL_H
#define EVIDENCE_HW_UTIL_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/evidence_hw.h"
#include "luna/verifier.h"
#include "luna_test.h"
#include "verifier_internal.h"

static inline uint8_t *hw_read(const char *rel, size_t *len)
{
    char *p = luna_test_vector_path(rel);
    uint8_t *d = luna_test_read_file(p, len);
    free(p);
    return d;
}

/* "YYYY-MM-DDTHH:MM:SSZ" to Unix seconds. */
static inline int64_t hw_time(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_non_null(strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return (int64_t)timegm(&tm);
}

/* Loads every certificate of a PEM file (or one DER certificate). */
static inline size_t hw_certs(const char *rel, X509 **out, size_t cap)
{
    size_t len = 0, n = 0;
    uint8_t *d = hw_read(rel, &len);
    if (len > 0 && d[0] == 0x30) {
        const unsigned char *p = d;
        out[0] = d2i_X509(NULL, &p, (long)len);
        assert_non_null(out[0]);
        free(d);
        return 1;
    }
    BIO *bio = BIO_new_mem_buf(d, (int)len);
    assert_non_null(bio);
    X509 *c;
    while (n < cap && (c = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        out[n++] = c;
    BIO_free(bio);
    free(d);
    assert_true(n > 0);
    return n;
}

static inline X509 *hw_cert(const char *rel)
{
    X509 *c[1] = {NULL};
    assert_int_equal(1, hw_certs(rel, c, 1));
    return c[0];
}

static inline void hw_add_cert(luna_wbuf *w, X509 *c)
{
    unsigned char *der = NULL;
    int n = i2d_X509(c, &der);
    assert_true(n > 0);
    assert_luna_ok(luna_hwcol_add(w, LUNA_HWCOL_CERT, der, (size_t)n));
    OPENSSL_free(der);
}

static inline void hw_add_file(luna_wbuf *w, luna_hwcol_kind kind, const char *rel)
{
    size_t len = 0;
    uint8_t *d = hw_read(rel, &len);
    assert_luna_ok(luna_hwcol_add(w, kind, d, len));
    free(d);
}

static inline void hw_bundle_begin(luna_wbuf *w)
{
    assert_luna_ok(luna_wbuf_init_alloc(w, LUNA_HWCOL_MAX));
    assert_luna_ok(luna_hwcol_begin(w));
}

/* What a test policy says; every test names the one it verifies under. */
typedef struct hw_policy {
    luna_policy_profile profile;
    luna_evidence_type type;
    X509 *anchors[LUNA_POLICY_MAX_ANCHORS];
    size_t n_anchors;
    const uint8_t *measurement;
    size_t measurement_len;
    const uint8_t *signer;
    size_t signer_len;
    uint32_t min_tcb;
    bool allow_debug;
    bool revocation_optional;
    uint32_t max_age; /* 0: nonce freshness only */
    luna_tcb_status accept[4];
    size_t n_accept;
    /* Hardware expectations of the type (NULL: left unset, so every
       verification refuses with policy_incomplete). */
    const luna_snp_expect *snp;
    const luna_tdx_expect *tdx;
    const luna_sgx_expect *sgx;
} hw_policy;

static inline luna_verifier *hw_verifier(const hw_policy *hp)
{
    luna_policy *p = NULL;
    luna_verifier *v = NULL;
    assert_luna_ok(luna_policy_new(hp->profile, &p));
    assert_luna_ok(luna_policy_allow_type(p, hp->type, hp->min_tcb));
    for (size_t i = 0; i < hp->n_anchors; i++)
        assert_luna_ok(luna_policy_add_anchor(p, hp->type, hp->anchors[i]));
    assert_luna_ok(luna_policy_add_reference(p, "dep", hp->type, hp->measurement,
                                             hp->measurement_len));
    assert_luna_ok(luna_policy_add_signer(p, "dep", hp->signer, hp->signer_len));
    assert_luna_ok(luna_policy_set_freshness(p, true, hp->max_age, 60));
    if (hp->allow_debug)
        assert_luna_ok(luna_policy_allow_debug(p));
    if (hp->revocation_optional)
        assert_luna_ok(luna_policy_set_revocation_optional(p, hp->type));
    for (size_t i = 0; i < hp->n_accept; i++)
        assert_luna_ok(luna_policy_accept_tcb_status(p, hp->type, hp->accept[i]));
    if (hp->snp != NULL)
        assert_luna_ok(luna_policy_set_snp(p, hp->snp));
    if (hp->tdx != NULL)
        assert_luna_ok(luna_policy_set_tdx(p, hp->tdx));
    if (hp->sgx != NULL)
        assert_luna_ok(luna_policy_set_sgx(p, hp->sgx));
    assert_luna_ok(luna_verifier_new(p, &v));
    return v;
}

/*
 * Verifies through the whole pipeline except key binding (the samples'
 * REPORT_DATA binds someone else's keys): see luna_verifier_verify_unbound.
 * Returns the reason.
 */
static inline luna_verify_reason hw_verify(luna_verifier *v, luna_evidence_type type, const uint8_t *ev,
                                    size_t len, int64_t now, luna_verify_result *res)
{
    static const uint8_t nonce[LUNA_VERIFY_NONCE_LEN] = {1, 2, 3};
    luna_verify_input in = {.type = type,
                            .evidence = ev,
                            .evidence_len = len,
                            .deployment_id = "dep",
                            .nonce = nonce,
                            .now = now};
    luna_err e = luna_verifier_verify_unbound(v, &in, res);
    assert_int_equal(e == LUNA_OK, res->reason == LUNA_VERIFY_OK);
    return res->reason;
}

#endif
