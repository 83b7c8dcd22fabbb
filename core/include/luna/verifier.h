/*
 * luna/verifier.h - the evidence verifier: one appraisal policy, one
 * backend per evidence type, one claims struct, one verdict with a machine
 * reason.  Used alike by the attestation service, the KMS and the SDK
 * (docs/verifier.md).
 *
 * Fails closed.  Every expectation an appraisal needs (a reference
 * measurement for the deployment, allowed signers, a minimum TCB level, a
 * trust anchor, TCB collateral, a freshness rule) must be set in the
 * policy; an unset one refuses the evidence with
 * LUNA_VERIFY_POLICY_INCOMPLETE, it is never "not checked".  Backends
 * refuse unknown versions, unknown flags and reserved bits.
 *
 * Profiles.  A PRODUCTION policy never accepts simulated evidence (the
 * `sim` type cannot even be allowed in it, and a sim trust anchor cannot
 * be added), and never allows debug.  A DEVELOPMENT policy may allow sim
 * and, only through luna_policy_allow_debug(), debug evidence.
 *
 * Key binding.  Every backend exposes a report-data field signed by the
 * platform; the TEE puts LUNA_VERIFY_BINDING(nonce, x25519 key, ed25519 key)
 * there (luna_verifier_binding()), so the evidence proves both the nonce
 * and the keys.  The verifier recomputes it and refuses a mismatch with
 * LUNA_VERIFY_KEY_NOT_BOUND.
 *
 * Ownership.  A luna_policy is built with the setters below and then
 * handed to luna_verifier_new(), which takes it over (the caller must not
 * use or free it afterwards, whatever the result).  X509 trust anchors
 * passed in are borrowed; the policy keeps its own reference.
 *
 * Thread safety.  Policy setters are not thread-safe and must all happen
 * before luna_verifier_new().  A luna_verifier may be used by any number
 * of threads at once for luna_verifier_verify(); luna_verifier_set_collateral()
 * may run concurrently with verifications (it swaps the document under a
 * lock).  Nothing here logs; messages never carry evidence bytes.
 */
#ifndef LUNA_VERIFIER_H
#define LUNA_VERIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "luna/profile.h"
#include "luna/err.h"

/* ---- evidence types (values are stable: stored and sent on the wire) ---- */
typedef enum luna_evidence_type {
    LUNA_EVIDENCE_SIM = 1,     /* simulated platform: development only, insecure */
    LUNA_EVIDENCE_SEV_SNP = 2, /* backends 2..6 arrive through this interface later */
    LUNA_EVIDENCE_TDX = 3,
    LUNA_EVIDENCE_SGX = 4,
    LUNA_EVIDENCE_NITRO = 5,
    LUNA_EVIDENCE_TPM = 6,
} luna_evidence_type;
#define LUNA_EVIDENCE_TYPE_MAX 6

/* "sim", "sev-snp", "tdx", "sgx", "nitro", "tpm"; "unknown" otherwise. */
const char *luna_evidence_type_name(luna_evidence_type type);

/* ---- TCB and QE/platform identity status ---- */
typedef enum luna_tcb_status {
    LUNA_TCB_UNKNOWN = 0,
    LUNA_TCB_UP_TO_DATE = 1,
    LUNA_TCB_SW_HARDENING_NEEDED = 2,
    LUNA_TCB_CONFIGURATION_NEEDED = 3,
    LUNA_TCB_OUT_OF_DATE = 4,
    LUNA_TCB_REVOKED = 5,
} luna_tcb_status;
#define LUNA_TCB_STATUS_MAX 5
/* "up_to_date", "out_of_date", ... as the report's tcb_status shows it. */
const char *luna_tcb_status_name(luna_tcb_status status);

typedef enum luna_qe_status {
    LUNA_QE_UNKNOWN = 0,
    LUNA_QE_VALID = 1,          /* quoting enclave / platform key identity checked */
    LUNA_QE_OUT_OF_DATE = 2,
    LUNA_QE_REVOKED = 3,
    LUNA_QE_NOT_APPLICABLE = 4, /* the format has no separate quoting identity */
} luna_qe_status;
/* "valid", "out_of_date", "revoked", "not_applicable", "unknown". */
const char *luna_qe_status_name(luna_qe_status status);

/* ---- reasons: one distinct machine code per kind of refusal ----
 * Values are stable (appended only); luna_verify_reason_name() gives the
 * snake_case name used in reports and logs. */
typedef enum luna_verify_reason {
    LUNA_VERIFY_OK = 0,
    LUNA_VERIFY_MALFORMED = 1,            /* truncated, trailing bytes, bad field */
    LUNA_VERIFY_UNSUPPORTED_VERSION = 2,  /* unknown magic version or algorithm */
    LUNA_VERIFY_RESERVED_BITS = 3,        /* unknown flag or non-zero reserved field */
    LUNA_VERIFY_TYPE_NOT_ALLOWED = 4,     /* evidence type not allowed by policy */
    LUNA_VERIFY_SIMULATED_IN_PRODUCTION = 5,
    LUNA_VERIFY_POLICY_INCOMPLETE = 6,    /* an expectation is unset: fail closed */
    LUNA_VERIFY_BAD_SIGNATURE = 7,        /* evidence signature */
    LUNA_VERIFY_UNKNOWN_ROOT = 8,         /* chain does not end at a trust anchor */
    LUNA_VERIFY_BAD_CERTIFICATE = 9,      /* malformed or unusable certificate */
    LUNA_VERIFY_CERT_EXPIRED = 10,        /* outside a certificate's validity */
    LUNA_VERIFY_REVOKED_PLATFORM_KEY = 11,
    LUNA_VERIFY_COLLATERAL_MISSING = 12,
    LUNA_VERIFY_COLLATERAL_INVALID = 13,  /* bad signature or format of collateral */
    LUNA_VERIFY_COLLATERAL_STALE = 14,    /* past its next update */
    LUNA_VERIFY_MEASUREMENT_MISMATCH = 15,
    LUNA_VERIFY_UNKNOWN_SIGNER = 16,
    LUNA_VERIFY_DEBUG_FORBIDDEN = 17,
    LUNA_VERIFY_TCB_OUT_OF_DATE = 18,
    LUNA_VERIFY_TCB_REVOKED = 19,
    LUNA_VERIFY_STALE = 20,               /* older than the policy's maximum age */
    LUNA_VERIFY_FUTURE_TIMESTAMP = 21,    /* timestamp ahead of now beyond skew */
    LUNA_VERIFY_NONCE_MISMATCH = 22,
    LUNA_VERIFY_KEY_NOT_BOUND = 23,
    LUNA_VERIFY_INTERNAL = 24,            /* allocation or crypto library failure */
    /* Hardware expectations (luna_policy_set_snp / _tdx / _sgx). */
    LUNA_VERIFY_GUEST_POLICY_REFUSED = 25, /* SEV-SNP POLICY bit required/forbidden */
    LUNA_VERIFY_VMPL_MISMATCH = 26,
    LUNA_VERIFY_REPORT_DATA_MISMATCH = 27, /* not the exact REPORT_DATA expected */
    LUNA_VERIFY_HOST_DATA_MISMATCH = 28,
    LUNA_VERIFY_TCB_CERT_MISMATCH = 29,   /* reported TCB is not the certificate's */
    LUNA_VERIFY_TCB_BELOW_MINIMUM = 30,   /* a TCB component below the policy minimum */
    LUNA_VERIFY_CHIP_ID_MISMATCH = 31,    /* CHIP_ID is not the VCEK's hwID */
    LUNA_VERIFY_SIGNING_KEY_MISMATCH = 32, /* SIGNING_KEY says VCEK, the key is a VLEK, ... */
    LUNA_VERIFY_RTMR_MISMATCH = 33,
    LUNA_VERIFY_MRCONFIGID_MISMATCH = 34,
    LUNA_VERIFY_MROWNERCONFIG_MISMATCH = 35,
    LUNA_VERIFY_ISVPRODID_MISMATCH = 36,
    LUNA_VERIFY_ISVSVN_BELOW_MINIMUM = 37,
    LUNA_VERIFY_REASON__COUNT
} luna_verify_reason;
/* Stable name, e.g. "bad_signature"; never NULL. */
const char *luna_verify_reason_name(luna_verify_reason reason);

/* ---- claims: what every backend fills ---- */
#define LUNA_CLAIM_MEASUREMENT_MAX 64 /* SGX/sim 32, SEV-SNP/TDX/Nitro 48 */
#define LUNA_CLAIM_SIGNER_MAX 64
#define LUNA_CLAIM_NONCE_MAX 64
#define LUNA_CLAIM_REPORT_DATA_LEN 64
#define LUNA_CLAIM_DIGEST_LEN 32
#define LUNA_CLAIM_SERIAL_MAX 20 /* X.509 serial, RFC 5280 4.1.2.2 */
#define LUNA_CLAIM_KEY_LEN 32
#define LUNA_CLAIM_HOST_DATA_LEN 32
#define LUNA_CLAIM_CHIP_ID_LEN 64
#define LUNA_CLAIM_TDX_REG_LEN 48 /* RTMRs, MRCONFIGID, MROWNERCONFIG */
#define LUNA_CLAIM_ADVISORY_MAX 1024 /* bytes of advisory_ids with its NUL */

/* SEV-SNP TCB_VERSION components (Milan/Genoa layout: bytes 0, 1, 6, 7). */
typedef struct luna_snp_tcb {
    uint8_t bootloader;
    uint8_t tee;
    uint8_t snp;
    uint8_t microcode;
} luna_snp_tcb;

typedef struct luna_claims {
    luna_evidence_type type;
    /* TRUE only for sim evidence; reports must then say "simulated
       (development only)" and never claim hardware protection. */
    bool simulated;
    uint32_t version;                     /* evidence format version */
    uint8_t measurement[LUNA_CLAIM_MEASUREMENT_MAX]; /* mr_enclave */
    size_t measurement_len;
    uint8_t signer[LUNA_CLAIM_SIGNER_MAX];           /* mr_signer */
    size_t signer_len;
    /* TEE keys bound in the evidence (explicit fields, or given by the
       caller and proven through report_data). */
    bool has_tee_x25519;
    uint8_t tee_x25519[LUNA_CLAIM_KEY_LEN];
    bool has_tee_ed25519;
    uint8_t tee_ed25519[LUNA_CLAIM_KEY_LEN];
    uint8_t nonce[LUNA_CLAIM_NONCE_MAX]; /* when the format carries it in clear */
    size_t nonce_len;                    /* 0: only inside report_data */
    uint8_t report_data[LUNA_CLAIM_REPORT_DATA_LEN];
    bool debug;
    uint32_t tcb_level;                  /* sim: one number; hardware: backend summary */
    luna_tcb_status tcb_status;
    luna_qe_status qe_status;
    bool has_memory_digest;
    uint8_t memory_digest[LUNA_CLAIM_DIGEST_LEN];
    bool has_timestamp;
    int64_t timestamp;                   /* evidence creation, Unix seconds */
    /* The platform (attestation) key's certificate serial. */
    uint8_t platform_serial[LUNA_CLAIM_SERIAL_MAX];
    size_t platform_serial_len;
    /* Hardware types: true when revocation data (CRLs) was present and
       checked for the platform chain; false only under a policy that made
       revocation optional (luna_policy_set_revocation_optional). */
    bool revocation_checked;

    /* ---- hardware detail (added for the SEV-SNP, TDX and SGX backends;
       zero for the other types; docs/evidence-hardware.md) ---- */
    /* SEV-SNP */
    uint64_t snp_policy;        /* guest POLICY */
    uint64_t snp_platform_info; /* PLATFORM_INFO */
    uint32_t snp_vmpl;
    uint8_t snp_host_data[LUNA_CLAIM_HOST_DATA_LEN];
    luna_snp_tcb snp_reported_tcb; /* REPORTED_TCB, the one the VCEK/VLEK certifies */
    bool snp_vlek;                 /* signed by a VLEK (else a VCEK) */
    uint8_t snp_chip_id[LUNA_CLAIM_CHIP_ID_LEN]; /* zero for VLEK reports that mask it */
    /* TDX */
    uint8_t tdx_rtmr[4][LUNA_CLAIM_TDX_REG_LEN];
    uint8_t tdx_mrconfigid[LUNA_CLAIM_TDX_REG_LEN];
    uint8_t tdx_mrownerconfig[LUNA_CLAIM_TDX_REG_LEN];
    uint8_t tdx_td_attributes[8];
    uint8_t tdx_tee_tcb_svn[16];
    /* SGX */
    uint16_t sgx_isvprodid;
    uint16_t sgx_isvsvn;
    /* TDX and SGX: Intel advisories of the matched TCB levels (platform,
       TDX module, QE), comma-separated ("INTEL-SA-00334,INTEL-SA-00615"),
       NUL-terminated; empty when none. */
    char advisory_ids[LUNA_CLAIM_ADVISORY_MAX];
} luna_claims;

/* ---- key binding ---- */
#define LUNA_VERIFY_NONCE_LEN 32
/*
 * report_data[0..32) = SHA-256("LUNAL-TEE-BINDING-V1" || nonce(32) ||
 * x25519 key(32) || ed25519 key(32, or 32 zero bytes when the TEE has
 * none)) and report_data[32..64) = zero.  ed25519 may be NULL.
 */
luna_err luna_verifier_binding(const uint8_t nonce[LUNA_VERIFY_NONCE_LEN],
                               const uint8_t x25519[LUNA_CLAIM_KEY_LEN],
                               const uint8_t *ed25519,
                               uint8_t out[LUNA_CLAIM_REPORT_DATA_LEN]) LUNA_MUST_CHECK;

/* ---- policy ---- */
typedef luna_profile luna_policy_profile; /* luna/profile.h */

/* Caps of one policy. */
#define LUNA_POLICY_MAX_DEPLOYMENTS 64
#define LUNA_POLICY_MAX_REFS 8        /* reference measurements per deployment and type */
#define LUNA_POLICY_MAX_SIGNERS 8     /* allowed signers per deployment */
#define LUNA_POLICY_MAX_ANCHORS 4     /* trust anchors per type */
#define LUNA_POLICY_DEPLOYMENT_MAX 64 /* bytes of a deployment id, [A-Za-z0-9._-] */
#define LUNA_POLICY_MAX_AGE_CAP (24 * 3600) /* longest max_age accepted, seconds */
#define LUNA_POLICY_DEFAULT_SKEW 60   /* seconds a timestamp may be ahead */

typedef struct luna_policy luna_policy;

/* An empty policy (refuses everything until filled); free with luna_policy_free. */
luna_err luna_policy_new(luna_policy_profile profile, luna_policy **out) LUNA_MUST_CHECK;
void luna_policy_free(luna_policy *p);

/*
 * Allows an evidence type with the minimum TCB level it must report.
 * LUNA_ERR_PERMISSION for sim in a production policy; LUNA_ERR_UNSUPPORTED
 * for a type without a compiled-in backend; LUNA_ERR_CONFLICT if already
 * allowed.  Only LUNA_TCB_UP_TO_DATE is accepted unless
 * luna_policy_accept_tcb_status() adds more.
 */
luna_err luna_policy_allow_type(luna_policy *p, luna_evidence_type type,
                                uint32_t min_tcb_level) LUNA_MUST_CHECK;
/* Also accepts status (not REVOKED or UNKNOWN: LUNA_ERR_INVALID_ARG) for type. */
luna_err luna_policy_accept_tcb_status(luna_policy *p, luna_evidence_type type,
                                       luna_tcb_status status) LUNA_MUST_CHECK;
/*
 * Adds a vendor root for type.  The policy takes its own reference.
 * LUNA_ERR_PERMISSION when a production policy is given a root whose
 * subject says SIMULATED; LUNA_ERR_TOO_LARGE past LUNA_POLICY_MAX_ANCHORS.
 */
luna_err luna_policy_add_anchor(luna_policy *p, luna_evidence_type type,
                                X509 *root) LUNA_MUST_CHECK;
/* Adds a reference measurement (1..LUNA_CLAIM_MEASUREMENT_MAX bytes). */
luna_err luna_policy_add_reference(luna_policy *p, const char *deployment_id,
                                   luna_evidence_type type, const uint8_t *measurement,
                                   size_t len) LUNA_MUST_CHECK;
/* Adds an allowed signer (mr_signer) for deployment_id. */
luna_err luna_policy_add_signer(luna_policy *p, const char *deployment_id,
                                const uint8_t *signer, size_t len) LUNA_MUST_CHECK;
/*
 * Freshness.  require_nonce: the caller must give the expected nonce and
 * the evidence must prove it.  max_age_seconds (0: no age rule, else
 * 1..LUNA_POLICY_MAX_AGE_CAP): evidence must carry a timestamp no older.
 * At least one of the two must be set, else every verification fails with
 * POLICY_INCOMPLETE.  skew_seconds (<= 3600) is how far ahead of now a
 * timestamp may be.
 */
luna_err luna_policy_set_freshness(luna_policy *p, bool require_nonce, uint32_t max_age_seconds,
                                   uint32_t skew_seconds) LUNA_MUST_CHECK;
/* Development only (LUNA_ERR_PERMISSION in production): accept debug evidence. */
luna_err luna_policy_allow_debug(luna_policy *p) LUNA_MUST_CHECK;
/*
 * Hardware types: verify without revocation data when the collateral has
 * no CRL for a certificate of the platform chain (default: a missing CRL
 * refuses with LUNA_VERIFY_COLLATERAL_MISSING).  A CRL that is present is
 * still checked, and a revoked key still refused.  The claims then say
 * revocation_checked = false so reports can name the relaxation.
 * LUNA_ERR_NOT_FOUND when type is not allowed yet.
 */
luna_err luna_policy_set_revocation_optional(luna_policy *p,
                                             luna_evidence_type type) LUNA_MUST_CHECK;

/*
 * For a hardware type whose evidence carries no clock (TPM 2.0 quotes):
 * when the caller gives a nonce, the nonce (proven through the key
 * binding) stands in for the max-age rule of luna_policy_set_freshness,
 * which otherwise refuses such evidence as LUNA_VERIFY_STALE.  Without a
 * nonce in the call the age rule still applies (and refuses).  Not for
 * sim (LUNA_ERR_INVALID_ARG); LUNA_ERR_NOT_FOUND when type is not allowed.
 */
luna_err luna_policy_set_nonce_freshness(luna_policy *p,
                                         luna_evidence_type type) LUNA_MUST_CHECK;

/*
 * ---- hardware expectations (SEV-SNP, TDX, SGX) ----
 * Each field is a rule whose zero value is UNSET: an allowed type whose
 * expectations were never set, or with any field left UNSET, refuses
 * every evidence with LUNA_VERIFY_POLICY_INCOMPLETE.  ANY says in the
 * policy that the field is deliberately not compared (for report data:
 * the key binding of luna_verifier_verify still applies).  A zeroed
 * struct is therefore the strictest policy, not a permissive one.
 */
typedef enum luna_expect {
    LUNA_EXPECT_UNSET = 0,
    LUNA_EXPECT_ANY = 1,   /* not compared, on purpose */
    LUNA_EXPECT_EXACT = 2, /* must equal value (or, for a minimum, be >= it) */
} luna_expect;

typedef enum luna_bit_rule {
    LUNA_BIT_UNSET = 0,
    LUNA_BIT_ANY = 1,
    LUNA_BIT_REQUIRED = 2,  /* the bit must be one */
    LUNA_BIT_FORBIDDEN = 3, /* the bit must be zero */
} luna_bit_rule;

typedef struct luna_expect_bytes64 {
    luna_expect mode;
    uint8_t value[64];
} luna_expect_bytes64;

typedef struct luna_expect_bytes48 {
    luna_expect mode;
    uint8_t value[48];
} luna_expect_bytes48;

typedef struct luna_expect_bytes32 {
    luna_expect mode;
    uint8_t value[32];
} luna_expect_bytes32;

/* SEV-SNP.  POLICY.DEBUG stays with luna_policy_allow_debug(). */
typedef struct luna_snp_expect {
    luna_bit_rule smt;           /* POLICY bit 16: SMT allowed */
    luna_bit_rule migrate_ma;    /* POLICY bit 18: migration agent allowed */
    luna_bit_rule single_socket; /* POLICY bit 20: single socket only */
    luna_expect vmpl_mode;       /* EXACT: VMPL == vmpl (0..3) */
    uint32_t vmpl;
    luna_expect_bytes64 report_data;
    luna_expect_bytes32 host_data;
    luna_expect min_tcb_mode;    /* EXACT: every REPORTED_TCB component >= min_tcb's */
    luna_snp_tcb min_tcb;
} luna_snp_expect;

/* TDX.  MRTD is the reference measurement, MROWNER the signer. */
typedef struct luna_tdx_expect {
    luna_expect_bytes48 rtmr[4];
    luna_expect_bytes48 mrconfigid;
    luna_expect_bytes48 mrownerconfig;
    luna_expect_bytes64 report_data;
} luna_tdx_expect;

/* SGX.  MRENCLAVE is the reference measurement, MRSIGNER the signer. */
typedef struct luna_sgx_expect {
    luna_expect isvprodid_mode; /* EXACT: ISVPRODID == isvprodid */
    uint16_t isvprodid;
    luna_expect min_isvsvn_mode; /* EXACT: ISVSVN >= min_isvsvn */
    uint16_t min_isvsvn;
    luna_expect_bytes64 report_data;
} luna_sgx_expect;

/*
 * Set the expectations of an allowed type (copied; calling again
 * replaces them).  LUNA_ERR_NOT_FOUND when the type is not allowed yet,
 * LUNA_ERR_INVALID_ARG for a rule value out of its enum or a VMPL > 3.
 * UNSET fields are accepted here and refuse at verification.
 */
luna_err luna_policy_set_snp(luna_policy *p, const luna_snp_expect *e) LUNA_MUST_CHECK;
luna_err luna_policy_set_tdx(luna_policy *p, const luna_tdx_expect *e) LUNA_MUST_CHECK;
luna_err luna_policy_set_sgx(luna_policy *p, const luna_sgx_expect *e) LUNA_MUST_CHECK;

/* ---- verifier ---- */
typedef struct luna_verifier luna_verifier;

/*
 * Takes over policy (always, also on error).  A policy that allows no type
 * is accepted and refuses every evidence (fail closed).
 */
luna_err luna_verifier_new(luna_policy *policy, luna_verifier **out) LUNA_MUST_CHECK;
void luna_verifier_free(luna_verifier *v);

/*
 * Installs the type's collateral (sim: the signed TCB status document)
 * after checking its signature against the type's trust anchors and that
 * it is not yet stale at now (0: system clock).  Replaces the previous one
 * only on success.  LUNA_ERR_VERIFY bad signature / unknown signer,
 * LUNA_ERR_FORMAT / LUNA_ERR_UNSUPPORTED malformed, LUNA_ERR_EXPIRED stale,
 * LUNA_ERR_PERMISSION type not allowed, LUNA_ERR_CONFLICT older than the
 * installed one (rollback).
 */
luna_err luna_verifier_set_collateral(luna_verifier *v, luna_evidence_type type,
                                      const uint8_t *doc, size_t len,
                                      int64_t now) LUNA_MUST_CHECK;

typedef struct luna_verify_input {
    luna_evidence_type type;
    const uint8_t *evidence;
    size_t evidence_len;
    const char *deployment_id;  /* selects references and signers; required */
    /* The nonce this verifier issued (LUNA_VERIFY_NONCE_LEN bytes), or NULL
       when the policy relies on age alone. */
    const uint8_t *nonce;
    /* Keys the caller will trust (encrypt to / check signatures with), or
       NULL to take them from the evidence (formats that carry them).  When
       given they must equal the bound ones. */
    const uint8_t *tee_x25519;
    const uint8_t *tee_ed25519;
    int64_t now;                /* Unix seconds; 0: system clock */
} luna_verify_input;

#define LUNA_VERIFY_MSG_MAX 160
typedef struct luna_verify_result {
    luna_verify_reason reason;
    char message[LUNA_VERIFY_MSG_MAX]; /* human text, never evidence bytes */
    /* Filled as far as the evidence was authenticated: all zero before the
       signature verified; complete when reason is LUNA_VERIFY_OK. */
    luna_claims claims;
} luna_verify_result;

/* Caps of the evidence a verifier accepts at all. */
#define LUNA_VERIFY_EVIDENCE_MAX (64u * 1024u)

/*
 * Appraises in->evidence under the policy.  LUNA_OK only when every check
 * passed (result->reason == LUNA_VERIFY_OK); LUNA_ERR_VERIFY for every
 * refusal, with result->reason and result->message saying why;
 * LUNA_ERR_INVALID_ARG for NULL arguments (result->reason MALFORMED).
 */
luna_err luna_verifier_verify(luna_verifier *v, const luna_verify_input *in,
                              luna_verify_result *result) LUNA_MUST_CHECK;

#endif
