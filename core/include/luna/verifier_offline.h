/*
 * luna/verifier_offline.h - offline appraisal of third-party hardware
 * evidence (`lunal attestation verify --evidence`): the evidence, a
 * collateral bundle, pinned trust anchors and an explicit time in; one
 * verdict, one result per check and every reason out.  Also the content
 * recognizer for collateral files and the TPM quote assembler the CLI
 * feeds it with.  docs/cli.md (offline verify) is the manual.
 *
 * What differs from luna_verifier_verify(): no key binding (the verifier
 * did not issue the nonce of someone else's evidence; a report_data
 * expectation takes its place), and expectations the caller does not give
 * (measurement, signer, report data) are reported as not_checked instead
 * of refusing.  Everything else fails closed exactly as the backends do:
 * the same parsers, chains, CRLs, collateral signatures and TCB logic.
 * Debug, a TCB status other than up_to_date and a missing CRL are refused
 * unless the policy relaxes that one check; a relaxation that changed a
 * result shows as LUNA_OFFLINE_RELAXED.
 *
 * Simulated evidence is never appraised here (type_not_allowed).
 *
 * Ownership: nothing is retained; anchors and keys are borrowed for the
 * call.  Thread safety: no shared state; calls may run concurrently.
 * Nothing logs; messages never carry evidence bytes.
 */
#ifndef LUNA_VERIFIER_OFFLINE_H
#define LUNA_VERIFIER_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/err.h"
#include "luna/verifier.h"

/* ---- collateral file recognition ---- */

/* Caps: one file, the items one file may hold, and (for callers that
   scan a folder) the whole folder. */
#define LUNA_COLFILE_MAX (256u * 1024u)
#define LUNA_COLFILE_MAX_ITEMS 8u
#define LUNA_COLDIR_MAX (1024u * 1024u)
#define LUNA_COLDIR_MAX_FILES 64u

typedef enum luna_colfile_kind {
    LUNA_COLFILE_CERT = 1,        /* X.509 certificate, DER */
    LUNA_COLFILE_CRL = 2,         /* X.509 CRL, DER */
    LUNA_COLFILE_TCB_INFO = 3,    /* {"tcbInfo":...,"signature":...}, bytes as given */
    LUNA_COLFILE_QE_IDENTITY = 4, /* {"enclaveIdentity":...,"signature":...} */
    LUNA_COLFILE_PUBKEY = 5,      /* SubjectPublicKeyInfo, DER (a TPM AK to pin) */
} luna_colfile_kind;

/* "certificate", "crl", "tcb_info", "qe_identity", "public_key". */
const char *luna_colfile_kind_name(luna_colfile_kind kind);

/* One recognized item; bytes are valid only during the callback. */
typedef luna_err (*luna_colfile_sink)(void *arg, luna_colfile_kind kind, const uint8_t *der,
                                      size_t len);

/*
 * Recognizes data[0..len) by its content alone (never a file name):
 *   - PEM text: one or more CERTIFICATE, X509 CRL or PUBLIC KEY blocks,
 *     only whitespace around them; each block's DER must parse exactly;
 *   - JSON text: an object whose first-level keys name an Intel PCS
 *     document ("tcbInfo" or "enclaveIdentity", with "signature");
 *   - DER: exactly one certificate, CRL or SubjectPublicKeyInfo.
 * Calls sink once per item, in file order (at most LUNA_COLFILE_MAX_ITEMS).
 * LUNA_ERR_FORMAT with *why (static text) for anything else, including a
 * PEM private key; LUNA_ERR_TOO_LARGE over LUNA_COLFILE_MAX; a sink error
 * is returned as is.  Bounded; no recursion beyond jansson's depth cap.
 */
luna_err luna_colfile_detect(const uint8_t *data, size_t len, luna_colfile_sink sink, void *arg,
                             const char **why) LUNA_MUST_CHECK;

/*
 * TPM: builds the LTQ1 evidence (luna/evidence_hw.h) from a TPMS_ATTEST,
 * a TPMT_SIGNATURE and a PCR values file
 *   {"hash":"sha1|sha256|sha384|sha512","pcrs":{"0":"<hex>",...,"23":"<hex>"}}
 * (strict schema; every value exactly the bank's digest length).  The PCR
 * entries are written in ascending index order; the verifier checks they
 * are the quoted selection.  LUNA_ERR_FORMAT (*why set) for a bad file,
 * LUNA_ERR_TOO_LARGE past the LTQ1 caps or w's capacity.
 */
luna_err luna_tpm_evidence_from_files(luna_wbuf *w, const uint8_t *attest, size_t attest_len,
                                      const uint8_t *sig, size_t sig_len, const uint8_t *pcrs_json,
                                      size_t pcrs_len, const char **why) LUNA_MUST_CHECK;

/* ---- the appraisal ---- */

typedef enum luna_offline_check {
    LUNA_OFFLINE_SIGNATURE = 0,    /* evidence (and QE report) signatures, PCR digest */
    LUNA_OFFLINE_CERT_CHAIN = 1,   /* platform key chain to a pinned root, validity */
    LUNA_OFFLINE_COLLATERAL = 2,   /* TCB Info / QE Identity signatures and windows */
    LUNA_OFFLINE_REVOCATION = 3,   /* CRLs present, current, not revoking */
    LUNA_OFFLINE_TCB_STATUS = 4,
    LUNA_OFFLINE_QE_IDENTITY = 5,
    LUNA_OFFLINE_DEBUG = 6,
    LUNA_OFFLINE_MEASUREMENT = 7,  /* mr_enclave, mr_signer, report_data expectations */
    LUNA_OFFLINE_CHECK__COUNT
} luna_offline_check;

/* "signature", "certificate_chain", "collateral", "revocation",
   "tcb_status", "qe_identity_status", "debug", "measurement";
   "evidence" for LUNA_OFFLINE_CHECK__COUNT (the evidence itself). */
const char *luna_offline_check_name(luna_offline_check check);

typedef enum luna_offline_state {
    LUNA_OFFLINE_SKIPPED = 0,        /* not reached: an earlier step refused */
    LUNA_OFFLINE_PASS = 1,
    LUNA_OFFLINE_FAIL = 2,
    LUNA_OFFLINE_NOT_APPLICABLE = 3, /* the format has no such thing */
    LUNA_OFFLINE_RELAXED = 4,        /* would fail; the policy relaxed exactly this */
    LUNA_OFFLINE_NOT_CHECKED = 5,    /* no expectation given (measurement only) */
} luna_offline_state;

/* "skipped", "pass", "fail", "not_applicable", "relaxed", "not_checked". */
const char *luna_offline_state_name(luna_offline_state state);

typedef struct luna_offline_policy {
    bool allow_debug;
    bool revocation_optional;
    unsigned accept_tcb;    /* bits (1u << luna_tcb_status) accepted besides up_to_date */
    bool has_min_tcb;
    uint32_t min_tcb_level; /* compared with claims.tcb_level */
    uint8_t mr_enclave[LUNA_POLICY_MAX_REFS][LUNA_CLAIM_MEASUREMENT_MAX];
    size_t mr_enclave_len[LUNA_POLICY_MAX_REFS];
    size_t n_mr_enclave;    /* 0: not checked */
    uint8_t mr_signer[LUNA_POLICY_MAX_SIGNERS][LUNA_CLAIM_SIGNER_MAX];
    size_t mr_signer_len[LUNA_POLICY_MAX_SIGNERS];
    size_t n_mr_signer;     /* 0: not checked */
    bool has_report_data;
    uint8_t report_data[LUNA_CLAIM_REPORT_DATA_LEN]; /* zero-padded */
    /* Hardware expectations (luna/verifier.h) for evidence of their type,
       applied when has_<type>: every rule must then be set (ANY allowed),
       an UNSET one refuses as policy_incomplete (luna_hw_expect_check);
       a failure is reported under "measurement" with its own reason. */
    bool has_snp;
    luna_snp_expect snp;
    bool has_tdx;
    luna_tdx_expect tdx;
    bool has_sgx;
    luna_sgx_expect sgx;
} luna_offline_policy;

typedef struct luna_offline_input {
    luna_evidence_type type;         /* a hardware type */
    const uint8_t *evidence;         /* 1..LUNA_VERIFY_EVIDENCE_MAX bytes */
    size_t evidence_len;
    const uint8_t *collateral;       /* LHC1 bundle, or NULL */
    size_t collateral_len;
    X509 *const *anchors;            /* pinned roots (the caller pinned them) */
    size_t n_anchors;                /* <= LUNA_POLICY_MAX_ANCHORS */
    EVP_PKEY *pinned_ak;             /* TPM only: an AK trusted without certificate */
    int64_t now;                     /* Unix seconds, > 0 */
    const luna_offline_policy *policy;
} luna_offline_input;

typedef struct luna_offline_failure {
    luna_offline_check check;        /* LUNA_OFFLINE_CHECK__COUNT: the evidence itself */
    luna_verify_reason reason;
    char message[LUNA_VERIFY_MSG_MAX];
} luna_offline_failure;

typedef struct luna_offline_result {
    bool verified;                   /* every check pass, relaxed, n/a or not_checked */
    luna_verify_reason reason;       /* the first failure (LUNA_VERIFY_OK when verified) */
    luna_offline_state checks[LUNA_OFFLINE_CHECK__COUNT];
    luna_offline_failure failures[LUNA_OFFLINE_CHECK__COUNT + 1];
    size_t n_failures;
    bool has_claims;                 /* claims authenticated (signature and chain passed) */
    luna_claims claims;
    bool ak_pinned;                  /* TPM: the pinned AK verified the quote */
} luna_offline_result;

/*
 * Appraises in->evidence.  LUNA_OK when verified; LUNA_ERR_VERIFY when
 * refused (result says why, every failure found); LUNA_ERR_INVALID_ARG
 * for a bad input (result->reason MALFORMED).  result is always filled.
 */
luna_err luna_offline_verify(const luna_offline_input *in,
                             luna_offline_result *result) LUNA_MUST_CHECK;

#endif
