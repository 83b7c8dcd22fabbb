/*
 * verifier_dcap.h - the Intel DCAP logic the TDX and SGX backends share:
 * quote signature data (ECDSA-256 attestation key, QE report, QE
 * authentication data, PCK certificate chain), the PCK certificate's SGX
 * extensions, TCB Info and QE Identity collateral (PCS JSON, signed by the
 * Intel SGX TCB Signing key), and the TCB level evaluation.
 * Private to the verifier module, its tests and fuzz targets.
 */
#ifndef LUNA_VERIFIER_DCAP_H
#define LUNA_VERIFIER_DCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "luna/bytes.h"
#include "verifier_hw.h"
#include "verifier_internal.h"

#define DCAP_HEADER_LEN 48
#define DCAP_REPORT_LEN 384 /* SGX REPORT body (enclave and QE) */
#define DCAP_SIG_LEN 64
#define DCAP_MAX_PCK_CHAIN 4
#define DCAP_MAX_LEVELS 64
#define DCAP_MAX_MODULE_IDS 8
#define DCAP_ADV_POOL 16384 /* advisory id text of one collateral document */
#define DCAP_ADV_ID_MAX 32  /* one advisory id, e.g. "INTEL-SA-00334" */

/* An SGX REPORT body: the enclave of an SGX quote, or the QE report. */
typedef struct dcap_report {
    uint8_t cpusvn[16];
    uint32_t miscselect;
    uint8_t attributes[16]; /* flags (LE u64) || xfrm */
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint16_t isvprodid;
    uint16_t isvsvn;
    uint8_t report_data[64];
} dcap_report;

/* Quote signature data (ECDSA-256-with-P-256 attestation key). */
typedef struct dcap_sigdata {
    uint8_t quote_sig[DCAP_SIG_LEN]; /* r || s */
    uint8_t att_key[65];             /* 0x04 || X || Y */
    uint8_t qe_report_raw[DCAP_REPORT_LEN];
    dcap_report qe;
    uint8_t qe_sig[DCAP_SIG_LEN];
    const uint8_t *auth; /* QE authentication data (a view) */
    size_t auth_len;
    X509 *pck[DCAP_MAX_PCK_CHAIN]; /* leaf first */
    size_t n_pck;
    const uint8_t *pck_pem; /* the PEM chain as quoted (a view): chain cache key */
    size_t pck_pem_len;
} dcap_sigdata;

/* What the PCK certificate says about the platform. */
typedef struct dcap_pck {
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint8_t comp[16];
    uint16_t pcesvn;
    uint8_t serial[LUNA_CLAIM_SERIAL_MAX];
    size_t serial_len;
} dcap_pck;

/* Parsed, signature-checked collateral. */
typedef struct dcap_level {
    uint8_t sgx[16];
    uint16_t pcesvn;
    uint8_t tdx[16];
    luna_tcb_status status;
    uint16_t adv_off, adv_len; /* advisoryIDs: comma-joined text in the pool */
} dcap_level;

typedef struct dcap_isv_level {
    uint16_t isvsvn;
    luna_tcb_status status;
    uint16_t adv_off, adv_len;
} dcap_isv_level;

typedef struct dcap_module_id {
    uint8_t major; /* "TDX_<hex>" */
    uint8_t mrsigner[48];
    uint8_t attributes[8];
    uint8_t mask[8];
    dcap_isv_level levels[DCAP_MAX_LEVELS];
    size_t n_levels;
} dcap_module_id;

typedef struct dcap_tcbinfo {
    bool tdx; /* id "TDX" */
    uint32_t version;
    int64_t issue, next;
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint32_t eval_num;
    bool has_module;
    uint8_t module_mrsigner[48];
    uint8_t module_attributes[8];
    uint8_t module_mask[8];
    dcap_module_id ids[DCAP_MAX_MODULE_IDS];
    size_t n_ids;
    dcap_level levels[DCAP_MAX_LEVELS];
    size_t n_levels;
    char adv[DCAP_ADV_POOL]; /* advisory id pool of the levels */
    size_t adv_used;
} dcap_tcbinfo;

typedef struct dcap_qeid {
    bool td; /* id "TD_QE" (else "QE") */
    int64_t issue, next;
    uint32_t miscselect, miscselect_mask;
    uint8_t attributes[16], attributes_mask[16];
    uint8_t mrsigner[32];
    uint16_t isvprodid;
    dcap_isv_level levels[DCAP_MAX_LEVELS];
    size_t n_levels;
    char adv[DCAP_ADV_POOL];
    size_t adv_used;
} dcap_qeid;

typedef struct dcap_collateral {
    bool has_tcbinfo, has_qeid;
    dcap_tcbinfo tcbinfo;
    dcap_qeid qeid;
    int64_t signer_not_before, signer_not_after; /* TCB Signing chain window */
} dcap_collateral;

/* Reads a 384-byte REPORT body. */
luna_err luna_dcap_read_report(luna_reader *r, uint8_t raw[DCAP_REPORT_LEN],
                               dcap_report *out) LUNA_MUST_CHECK;
/*
 * Reads the signature data (after its u32 length) to the end of r.
 * wrapped: certification data type 6 (QE report inside, TDX and v4) vs
 * the v3 layout (QE report first, then type 5).  Returns a reason.
 */
luna_verify_reason luna_dcap_read_sigdata(luna_reader *r, bool wrapped, dcap_sigdata *out,
                                          const char **why);
void luna_dcap_sigdata_clear(dcap_sigdata *s);

/*
 * The checks common to TDX and SGX quotes: PCK chain to the anchors with
 * the bundle's CRLs, QE report signature by the PCK key, QE report data =
 * SHA-256(attestation key || auth data), quote signature over signed, and
 * the PCK SGX extensions.  Needs the bundle (COLLATERAL_MISSING without).
 * A chain already verified (same PEM bytes, same CRL bytes, inside the
 * window of all of them) is taken from ctx->cache under type; the QE
 * report and quote signatures are always verified.
 */
luna_verify_reason luna_dcap_verify_quote(const dcap_sigdata *sd, const uint8_t *signed_part,
                                          size_t signed_len, const luna_backend_ctx *ctx,
                                          luna_evidence_type type, dcap_pck *pck,
                                          bool *crl_checked, const char **why);

/* The TD quote body fields the TCB evaluation needs. */
typedef struct dcap_tdx_facts {
    uint8_t tee_tcb_svn[16];
    uint8_t mrsignerseam[48];
    uint8_t seam_attributes[8];
} dcap_tdx_facts;

/* Advisory ids of the matched TCB levels, merged without duplicates:
   comma-separated, NUL-terminated (the luna_claims advisory_ids text). */
typedef struct dcap_adv {
    char s[LUNA_CLAIM_ADVISORY_MAX];
    size_t len;
} dcap_adv;

/*
 * Platform TCB status from TCB Info for the PCK values (and, for TDX, the
 * TDX module: TEE_TCB_SVN, MRSIGNERSEAM, SEAM attributes; NULL for SGX).
 * Checks freshness, FMSPC and PCE-ID.  TCB_OUT_OF_DATE with "not
 * supported" when no level matches.  adv (may be NULL) gains the advisory
 * ids of the matched platform and TDX module levels.
 */
luna_verify_reason luna_dcap_tcb_status(const dcap_collateral *c, const dcap_pck *pck,
                                        const dcap_tdx_facts *tdx, int64_t now,
                                        luna_tcb_status *out, dcap_adv *adv, const char **why);
/* QE identity status of the quoting enclave (QE report).  adv (may be
   NULL) gains the advisory ids of the matched levels. */
luna_verify_reason luna_dcap_qe_status(const dcap_collateral *c, bool td, const dcap_report *qe,
                                       int64_t now, luna_qe_status *out, dcap_adv *adv,
                                       const char **why);

/* Parse the signed object text of a TCB Info / QE Identity (no signature
   check): for tests and fuzzing; the load path uses the same code. */
luna_err luna_dcap_parse_tcbinfo(const uint8_t *text, size_t len, bool tdx,
                                 dcap_tcbinfo *out) LUNA_MUST_CHECK;
luna_err luna_dcap_parse_qeid(const uint8_t *text, size_t len, bool tdx,
                              dcap_qeid *out) LUNA_MUST_CHECK;

/* Collateral load / free for both backends (bundle ext = dcap_collateral). */
luna_err luna_dcap_collateral_load(const uint8_t *doc, size_t len, X509 *const *anchors,
                                   size_t n_anchors, int64_t now, bool tdx,
                                   void **out) LUNA_MUST_CHECK;
int64_t luna_dcap_collateral_issued_at(const void *collateral);
void luna_dcap_collateral_free(void *collateral);
/* The dcap_collateral of a loaded bundle (NULL when ctx->collateral is). */
const dcap_collateral *luna_dcap_collateral_of(const void *collateral);

/* Returns the worse of two statuses (UNKNOWN < UP_TO_DATE < ... < REVOKED). */
luna_tcb_status luna_dcap_worse(luna_tcb_status a, luna_tcb_status b);

#endif
