/*
 * luna/tpm.h - the verifier side of a live TPM 2.0: the attestation key
 * (AK) is trusted only after it is bound to an endorsement key (EK)
 * certified by a TPM manufacturer, through the TPM2_MakeCredential /
 * TPM2_ActivateCredential challenge; quotes of an enrolled AK are then
 * appraised with their clock/reset counters tracked across quotes
 * (docs/evidence-hardware.md, "TPM 2.0", and docs/tpm-live.md).
 *
 * What the enrolment proves: the AK public area the verifier was given
 * (restricted, signing, fixedTPM, fixedParent, sensitiveDataOrigin) names
 * a key resident in the same TPM as the EK, and that EK holds the key of a
 * certificate chaining to a configured manufacturer root.  Only the TPM
 * that holds both can recover the challenge secret.
 *
 * Formats are the TPM's own marshalling (TPM 2.0 Library, Part 2): a
 * TPMT_PUBLIC without a size prefix; the challenge is a TPM2B_ID_OBJECT
 * and a TPM2B_ENCRYPTED_SECRET, each with its u16 size prefix, ready for
 * TPM2_ActivateCredential.  Every parser here reads through luna_reader.
 *
 * Supported: RSA-2048 EKs of the TCG default template L-1 (nameAlg
 * SHA-256, AES-128-CFB, OAEP seed with label "IDENTITY\0", what
 * swtpm_setup creates at 0x81010001); RSA 2048..4096 (RSASSA/RSAPSS) and
 * ECC P-256/P-384 (ECDSA) AKs.  Others: LUNA_ERR_UNSUPPORTED.
 *
 * Thread safety: no global state; one luna_tpm_enrol or one
 * luna_tpm_counters must not be used by two threads at once.  Nothing
 * here logs; the challenge secret lives in a luna_secret and is compared
 * in constant time.
 */
#ifndef LUNA_TPM_H
#define LUNA_TPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "luna/err.h"
#include "luna/evidence_hw.h"
#include "luna/verifier.h"

#define LUNA_TPM_ALG_RSA 0x0001u
#define LUNA_TPM_ALG_ECC 0x0023u

/* TPMA_OBJECT bits (Part 2, 8.3). */
#define LUNA_TPMA_FIXED_TPM (1u << 1)
#define LUNA_TPMA_FIXED_PARENT (1u << 4)
#define LUNA_TPMA_SENSITIVE_DATA_ORIGIN (1u << 5)
#define LUNA_TPMA_USER_WITH_AUTH (1u << 6)
#define LUNA_TPMA_RESTRICTED (1u << 16)
#define LUNA_TPMA_DECRYPT (1u << 17)
#define LUNA_TPMA_SIGN (1u << 18)

#define LUNA_TPM_PUBLIC_MAX 1024u      /* marshalled TPMT_PUBLIC */
#define LUNA_TPM_NAME_MAX (2u + 64u)   /* nameAlg || digest */
#define LUNA_TPM_CREDENTIAL_LEN 32u    /* the challenge secret */
#define LUNA_TPM_ID_OBJECT_MAX 256u    /* TPM2B_ID_OBJECT with its size */
#define LUNA_TPM_ENC_SECRET_MAX 514u   /* TPM2B_ENCRYPTED_SECRET with its size */
#define LUNA_TPM_EK_CERT_MAX 4096u

/* A parsed TPMT_PUBLIC.  Pointers are views into the parsed buffer. */
typedef struct luna_tpm_public {
    uint16_t type;      /* LUNA_TPM_ALG_RSA or LUNA_TPM_ALG_ECC */
    uint16_t name_alg;  /* LUNA_TPM_ALG_SHA256/384/512 (luna/evidence_hw.h) */
    uint32_t attributes;
    const uint8_t *auth_policy;
    size_t auth_policy_len;
    uint16_t sym_alg, sym_bits, sym_mode; /* 0x0010 (NULL): no bits/mode */
    uint16_t scheme, scheme_hash;         /* 0x0010 (NULL): no hash */
    uint16_t rsa_bits;
    uint32_t rsa_exponent;                /* 0 means 65537 */
    uint16_t curve;                       /* 0x0003 P-256, 0x0004 P-384 */
    uint16_t kdf;
    const uint8_t *unique_x; /* RSA: modulus; ECC: x */
    size_t unique_x_len;
    const uint8_t *unique_y; /* ECC: y; NULL for RSA */
    size_t unique_y_len;
} luna_tpm_public;

/*
 * Parses exactly one TPMT_PUBLIC of an RSA or ECC key (len <=
 * LUNA_TPM_PUBLIC_MAX).  LUNA_ERR_FORMAT malformed, trailing bytes or a
 * reserved TPMA_OBJECT bit set; LUNA_ERR_UNSUPPORTED another object type,
 * scheme or KDF.  out keeps views into buf.
 */
luna_err luna_tpm_public_parse(const uint8_t *buf, size_t len,
                               luna_tpm_public *out) LUNA_MUST_CHECK;

/*
 * The object's Name: nameAlg (u16) || H_nameAlg(buf), buf being the exact
 * marshalled TPMT_PUBLIC that parsed into pub.  name must hold
 * LUNA_TPM_NAME_MAX bytes.
 */
luna_err luna_tpm_public_name(const uint8_t *buf, size_t len, const luna_tpm_public *pub,
                              uint8_t name[LUNA_TPM_NAME_MAX], size_t *name_len) LUNA_MUST_CHECK;

/*
 * Whether pub is an attestation key: restricted, sign, not decrypt,
 * fixedTPM, fixedParent, sensitiveDataOrigin; no symmetric algorithm; a
 * signing scheme this platform verifies (RSASSA/RSAPSS with SHA-256/384/
 * 512 on RSA 2048..4096, ECDSA P-256/SHA-256 or P-384/SHA-384); nameAlg
 * SHA-256/384/512.  LUNA_ERR_PERMISSION when an attribute is wrong,
 * LUNA_ERR_UNSUPPORTED for a scheme or size outside that list.
 */
luna_err luna_tpm_ak_check(const luna_tpm_public *pub) LUNA_MUST_CHECK;

/* The public key of pub as an EVP_PKEY (caller frees).  LUNA_ERR_FORMAT
   for a point off the curve or a modulus of the wrong length. */
luna_err luna_tpm_public_key(const luna_tpm_public *pub, EVP_PKEY **out) LUNA_MUST_CHECK;

/*
 * TPM2_MakeCredential in software (Part 1, 24; Part 3, 12.6) for an
 * RSA-2048 EK of template L-1: a fresh seed, OAEP-SHA-256 encrypted to ek
 * with label "IDENTITY\0"; credential (1..64 bytes) wrapped under
 * KDFa(SHA-256, seed, "STORAGE", name) with AES-128-CFB and authenticated
 * with HMAC-SHA-256 under KDFa(SHA-256, seed, "INTEGRITY") over
 * encIdentity || name.  Writes the TPM2B_ID_OBJECT (id_cap >= its size,
 * at most LUNA_TPM_ID_OBJECT_MAX) and TPM2B_ENCRYPTED_SECRET (sec_cap >=
 * LUNA_TPM_ENC_SECRET_MAX).  LUNA_ERR_UNSUPPORTED for another EK type.
 */
luna_err luna_tpm_make_credential(EVP_PKEY *ek, const uint8_t *name, size_t name_len,
                                  const uint8_t *credential, size_t credential_len,
                                  uint8_t *id_object, size_t id_cap, size_t *id_len,
                                  uint8_t *enc_secret, size_t sec_cap,
                                  size_t *sec_len) LUNA_MUST_CHECK;

/*
 * KDFa (Part 1, 11.4.10.2) with SHA-256: out_len bytes of
 * HMAC(key, [i]32 || label || 0x00 || context_u || context_v || [bits]32).
 * label is a C string (its NUL is part of the input).  out_len 1..1024.
 */
luna_err luna_tpm_kdfa_sha256(const uint8_t *key, size_t key_len, const char *label,
                              const uint8_t *context_u, size_t u_len, const uint8_t *context_v,
                              size_t v_len, uint8_t *out, size_t out_len) LUNA_MUST_CHECK;

/* ---- enrolment: EK certificate + AK public -> challenge -> trusted AK ---- */

typedef struct luna_tpm_enrol luna_tpm_enrol;

typedef struct luna_tpm_ek_trust {
    X509 *const *anchors;       /* manufacturer roots, compared whole; borrowed */
    size_t n_anchors;
    X509 *const *intermediates; /* candidate issuing CAs (untrusted); borrowed */
    size_t n_intermediates;
    int64_t now;                /* Unix seconds of the validity check; required */
} luna_tpm_ek_trust;

/*
 * Checks the EK certificate (DER, exact length, <= LUNA_TPM_EK_CERT_MAX)
 * against trust (chain at trust->now; CRLs are not consulted: see
 * docs/tpm-live.md), that it certifies an RSA-2048/65537 key allowed for
 * key encipherment (and, if it has an extended key usage, for
 * tcg-kp-EKCertificate 2.23.133.8.1), checks the AK public area
 * (luna_tpm_ak_check), and makes the challenge for the AK's Name.
 * Errors: LUNA_ERR_FORMAT malformed certificate or AK; LUNA_ERR_UNSUPPORTED
 * EK or AK algorithm; LUNA_ERR_PERMISSION AK attributes or EK key usage;
 * LUNA_ERR_UNAUTHENTICATED the certificate does not chain to an anchor;
 * LUNA_ERR_EXPIRED outside a certificate's validity; LUNA_ERR_VERIFY other
 * chain failures.  *why (may be NULL) gets a static message.
 */
luna_err luna_tpm_enrol_begin(const uint8_t *ek_cert, size_t ek_cert_len,
                              const uint8_t *ak_public, size_t ak_public_len,
                              const luna_tpm_ek_trust *trust, luna_tpm_enrol **out,
                              const char **why) LUNA_MUST_CHECK;

/* Views of the challenge to send to the TPM host (valid until free). */
void luna_tpm_enrol_challenge(const luna_tpm_enrol *e, const uint8_t **id_object,
                              size_t *id_len, const uint8_t **enc_secret, size_t *sec_len);

/* The AK's Name (valid until free). */
const uint8_t *luna_tpm_enrol_ak_name(const luna_tpm_enrol *e, size_t *len);

/*
 * Checks the host's answer (the credential ActivateCredential returned) in
 * constant time.  Single use: a second call returns LUNA_ERR_CONFLICT
 * whatever the first result.  On LUNA_OK *ak gets the AK's public key
 * (caller frees); LUNA_ERR_VERIFY for a wrong answer.
 */
luna_err luna_tpm_enrol_finish(luna_tpm_enrol *e, const uint8_t *answer, size_t answer_len,
                               EVP_PKEY **ak) LUNA_MUST_CHECK;

/* Whether luna_tpm_enrol_finish accepted the answer. */
bool luna_tpm_enrol_activated(const luna_tpm_enrol *e);
/* The AK's key (borrowed) once activated, else NULL. */
EVP_PKEY *luna_tpm_enrol_ak(const luna_tpm_enrol *e);

/* Wipes and frees; NULL is a no-op. */
void luna_tpm_enrol_free(luna_tpm_enrol *e);

/* ---- the AK enrolment CA: the challenge's result, transferable ----
 * The party that ran the challenge (docs/tpm-live.md: the operator's
 * enrolment step today, the attestation service later) certifies the AK
 * so every verifier (attestation service, KMS, SDK) can check quotes
 * through the shared verifier's "tpm" backend with the CA's certificate as
 * its anchor.  Implemented in tpm_akcert.c. */

/* A new self-signed P-256 CA "Lunal TPM AK enrolment CA" (CA:TRUE,
   pathlen 0, keyCertSign + cRLSign) valid [not_before, not_after]. */
luna_err luna_tpm_akca_create(int64_t not_before, int64_t not_after, EVP_PKEY **key,
                              X509 **cert) LUNA_MUST_CHECK;

/*
 * Certifies the AK of an enrolment whose challenge was answered (else
 * LUNA_ERR_PERMISSION): subject CN "Lunal TPM AK <first 16 bytes of its
 * Name digest, hex>", CA:FALSE, keyUsage digitalSignature (both critical),
 * random serial, ECDSA-SHA-256 by ca_key, valid [not_before, not_after]
 * (within the CA's window, else LUNA_ERR_INVALID_ARG).
 */
luna_err luna_tpm_akca_certify(const luna_tpm_enrol *e, EVP_PKEY *ca_key, X509 *ca_cert,
                               int64_t not_before, int64_t not_after,
                               X509 **out) LUNA_MUST_CHECK;

/* An (empty) v2 CRL of the CA valid [this_update, next_update], so a
   strict policy has revocation data for AK certificates. */
luna_err luna_tpm_akca_crl(EVP_PKEY *ca_key, X509 *ca_cert, int64_t this_update,
                           int64_t next_update, X509_CRL **out) LUNA_MUST_CHECK;

/*
 * The qualifiedSigner a quote of this AK carries, for an AK that is a
 * primary key of the endorsement hierarchy (host_tpm's AK):
 * nameAlg || H(TPM_RH_ENDORSEMENT (u32 0x4000000B) || Name) (Part 1,
 * "Qualified Name").  This is the claims' signer (mr_signer) to allow.
 */
luna_err luna_tpm_enrol_qualified_name(const luna_tpm_enrol *e, uint8_t out[LUNA_TPM_NAME_MAX],
                                       size_t *len) LUNA_MUST_CHECK;

/* ---- quotes of an enrolled AK ---- */

/* TPMS_CLOCK_INFO of the last accepted quote of one AK.  Zero-initialise
   (valid = false) before the first quote. */
typedef struct luna_tpm_counters {
    bool valid;
    uint64_t clock;          /* ms the TPM has been powered since TPM2_Clear */
    uint32_t reset_count;    /* TPM Resets (power cycles) */
    uint32_t restart_count;  /* TPM Restarts/Resumes since the last Reset */
    uint8_t attest_hash[32]; /* SHA-256 of that quote's TPMS_ATTEST */
} luna_tpm_counters;

/* Every refusal has its own code (values stable, appended only). */
typedef enum luna_tpm_quote_reason {
    LUNA_TPM_QUOTE_OK = 0,
    LUNA_TPM_QUOTE_MALFORMED = 1,            /* container, attest, signature */
    LUNA_TPM_QUOTE_UNSUPPORTED = 2,          /* algorithm, bank, magic */
    LUNA_TPM_QUOTE_BAD_SIGNATURE = 3,        /* not signed by the AK */
    LUNA_TPM_QUOTE_PCR_VALUES_MISMATCH = 4,  /* supplied PCRs are not the quoted ones */
    LUNA_TPM_QUOTE_REPLAY = 5,               /* the last accepted quote again */
    LUNA_TPM_QUOTE_RESET_BACKWARDS = 6,      /* resetCount below the last one */
    LUNA_TPM_QUOTE_RESTART_BACKWARDS = 7,    /* restartCount below, same resetCount */
    LUNA_TPM_QUOTE_CLOCK_BACKWARDS = 8,      /* clock below, same reset/restart */
    LUNA_TPM_QUOTE_NONCE_MISMATCH = 9,       /* extraData is not the expected binding */
    LUNA_TPM_QUOTE_MEASUREMENT_MISMATCH = 10, /* pcrDigest is not the reference */
    LUNA_TPM_QUOTE_INTERNAL = 11,
} luna_tpm_quote_reason;

/* "ok", "malformed", "bad_signature", "replay", ...; never NULL. */
const char *luna_tpm_quote_reason_name(luna_tpm_quote_reason r);
/* The shared verifier reason a refusal maps to (replay and the counters:
   LUNA_VERIFY_STALE). */
luna_verify_reason luna_tpm_quote_reason_verify(luna_tpm_quote_reason r);

typedef struct luna_tpm_quote_expect {
    const uint8_t *extra_data;  /* expected extraData, exact bytes; required */
    size_t extra_len;           /* 1..64 */
    const uint8_t *pcr_digest;  /* reference pcrDigest (the measurement); required */
    size_t pcr_digest_len;
} luna_tpm_quote_expect;

/*
 * Appraises an LTQ1 container (luna/evidence_hw.h) against an enrolled AK
 * (borrowed): signature, PCR values against pcrDigest, the counters
 * against *last (replay, reset/restart/clock going backwards), extraData,
 * pcrDigest against the reference, in that order.  *last is updated only
 * when everything passed.  *why (may be NULL): static message.
 */
luna_tpm_quote_reason luna_tpm_quote_check(const uint8_t *ev, size_t len, EVP_PKEY *ak,
                                           const luna_tpm_quote_expect *x,
                                           luna_tpm_counters *last, const char **why);

/* The counter rule alone (the last step of luna_tpm_quote_check), for
   tests and for callers that keep counters elsewhere.  Updates *last on
   LUNA_TPM_QUOTE_OK. */
luna_tpm_quote_reason luna_tpm_counters_advance(luna_tpm_counters *last,
                                                const luna_tpm_counters *seen);

#endif
