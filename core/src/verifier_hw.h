/*
 * verifier_hw.h - what the hardware evidence backends share: the parsed
 * collateral bundle (luna/evidence_hw.h), X.509 chain and CRL checking at
 * an explicit time through OpenSSL's X509_STORE, and certificate field
 * helpers.  Private to the verifier module, its tests and fuzz targets.
 */
#ifndef LUNA_VERIFIER_HW_H
#define LUNA_VERIFIER_HW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "luna/crypto.h"
#include "luna/evidence_hw.h"
#include "luna/verifier.h"

typedef struct luna_hw_bundle {
    X509 *certs[LUNA_HWCOL_MAX_ITEMS];
    size_t n_certs;
    X509_CRL *crls[LUNA_HWCOL_MAX_ITEMS];
    size_t n_crls;
    uint8_t *tcb_info; /* owned copies; at most one of each */
    size_t tcb_info_len;
    uint8_t *qe_identity;
    size_t qe_identity_len;
    int64_t issued_at; /* the newest CRL thisUpdate / document issueDate */
    /* The exact DER of certs[i] / crls[i] (views into raw), for the
       chain cache keys. */
    const uint8_t *cert_der[LUNA_HWCOL_MAX_ITEMS];
    size_t cert_der_len[LUNA_HWCOL_MAX_ITEMS];
    const uint8_t *crl_der[LUNA_HWCOL_MAX_ITEMS];
    size_t crl_der_len[LUNA_HWCOL_MAX_ITEMS];
    uint8_t *raw; /* owned copy of the bundle */
    void *ext;         /* backend-specific parsed data, freed by ext_free */
    void (*ext_free)(void *ext);
} luna_hw_bundle;

/*
 * Parses a bundle: structure, DER of every certificate and CRL (exact
 * lengths), caps.  No signature or time check (the backends do those per
 * verification).  LUNA_ERR_FORMAT, LUNA_ERR_TOO_LARGE, LUNA_ERR_NOMEM.
 */
luna_err luna_hw_bundle_parse(const uint8_t *doc, size_t len, luna_hw_bundle **out) LUNA_MUST_CHECK;
void luna_hw_bundle_free(luna_hw_bundle *b);

/* ASN.1 time to Unix seconds. */
luna_err luna_hw_asn1_time(const ASN1_TIME *t, int64_t *out) LUNA_MUST_CHECK;

typedef struct luna_hw_chain_opts {
    X509 *const *anchors; /* trusted, compared whole */
    size_t n_anchors;
    X509 *const *untrusted; /* candidate intermediates */
    size_t n_untrusted;
    X509_CRL *const *crls; /* checked for every certificate when check_crls */
    size_t n_crls;
    bool check_crls;
    bool revocation_optional; /* a missing CRL is then not an error */
    int64_t now;
    /* When non-NULL, set on success to the tightest window over every
       certificate of the built chain (anchor included) and, with
       check_crls, every CRL issued by one of its issuers
       (thisUpdate..nextUpdate): how long a chain cache entry may live. */
    int64_t *window_not_before;
    int64_t *window_not_after;
} luna_hw_chain_opts;

/*
 * Verifies leaf up to one of the anchors at o->now.  *root_out (may be
 * NULL) is the anchor reached (borrowed).  *crl_checked says whether every
 * certificate had a CRL.  Reasons: UNKNOWN_ROOT, CERT_EXPIRED,
 * BAD_CERTIFICATE, REVOKED_PLATFORM_KEY, COLLATERAL_MISSING (no CRL),
 * COLLATERAL_STALE (CRL outside its window), COLLATERAL_INVALID (bad CRL).
 */
luna_verify_reason luna_hw_verify_chain(X509 *leaf, const luna_hw_chain_opts *o,
                                        X509 **root_out, bool *crl_checked, const char **why);

/*
 * A chain cache key: the concatenation of n byte strings, each preceded
 * by its length (u32, big-endian) so that no two different lists give
 * the same key.  *out is malloc'd (caller frees); LUNA_ERR_NOMEM,
 * LUNA_ERR_TOO_LARGE over LUNA_HWCOL_MAX + 64 KiB.
 */
luna_err luna_hw_cache_key(const uint8_t *const *parts, const size_t *lens, size_t n,
                           uint8_t **out, size_t *out_len) LUNA_MUST_CHECK;

/*
 * The hardware expectations of the policy (luna_snp_expect for sev-snp,
 * luna_tdx_expect for tdx, luna_sgx_expect for sgx), evaluated on
 * authenticated claims.  luna_hw_expect_complete refuses with
 * POLICY_INCOMPLETE when expect is NULL or any rule is UNSET;
 * luna_hw_expect_check returns the distinct reason of the first rule the
 * claims break.  The shared verifier passes its policy's expectations on
 * every verification; a caller that drives a backend directly with
 * ctx->expect == NULL (the offline reporter) must call these itself.
 */
luna_verify_reason luna_hw_expect_complete(luna_evidence_type type, const void *expect,
                                           const char **why);
luna_verify_reason luna_hw_expect_check(luna_evidence_type type, const void *expect,
                                        const luna_claims *c, const char **why);

/* The raw uncompressed point (0x04||X||Y) of an EC key on curve. */
luna_verify_reason luna_hw_ec_point(EVP_PKEY *key, luna_ec_curve curve, uint8_t *out,
                                    size_t cap, size_t *len, const char **why);

/* Copies the subject (or issuer) commonName; false when absent or too long. */
bool luna_hw_cn(const X509_NAME *name, char *out, size_t cap);

/* Points at the raw value of the extension with dotted oid; false when
   absent, duplicated or unreadable. */
bool luna_hw_ext(const X509 *cert, const char *oid, const uint8_t **val, size_t *len);

/* Certificate serial (<= LUNA_CLAIM_SERIAL_MAX bytes); false otherwise. */
bool luna_hw_serial(const X509 *cert, uint8_t out[LUNA_CLAIM_SERIAL_MAX], size_t *len);

#endif
