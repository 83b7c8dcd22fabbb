/*
 * kms_verify.h - the KMS's own appraisal of raw TEE evidence, through the
 * shared verifier library, with the KMS's own copy of reference values,
 * vendor roots and collateral (DESIGN.md section 4: a compromised
 * attestation service cannot choose them).
 *
 * The rest of the service sees only this small interface (claims it
 * needs, a stable reason name), not the verifier's types.
 *
 * Must never: accept evidence when an expectation is missing (the
 * verifier fails closed), or treat the attestation service's report as a
 * substitute for this check.
 */
#ifndef LUNA_KMS_VERIFY_H
#define LUNA_KMS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "luna/err.h"

typedef struct kms_verify kms_verify;

typedef struct kms_ev_claims {
    uint8_t measurement[64];
    size_t measurement_len;
    uint8_t signer[64];
    size_t signer_len;
    bool has_kx;
    uint8_t kx[32];
    bool has_sign;
    uint8_t sign[32];
    bool simulated;
} kms_ev_claims;

/*
 * Builds two verifiers from the config tree: one for OTK release (the
 * nonce the KMS issued is required, and evidence must also be younger than
 * kms.evidence_max_age_sec) and one for activation (age rule; the nonce is
 * the attestation service's, carried in the evidence).  why receives a
 * static description of a failure (config key).  root, types and anchors
 * are kept (borrowed) and must outlive *out: verifiers for registered
 * deployments are built from them on demand.
 *
 * Anchors are per evidence type (docs/kms.md "Trust anchors"): tpm gets
 * only kms.tpm_ak_ca; another type gets its kms.trust_anchors entries, or,
 * when that list is absent and it is the only non-tpm type allowed, the
 * legacy anchors (attestation.trust_anchors).  Several non-tpm types
 * without kms.trust_anchors, or an allowed type left without an anchor,
 * is LUNA_ERR_CONFIG.
 */
luna_err kms_verify_new(const json_t *root, bool production, const char *const *types,
                        size_t n_types, const char *const *anchors, size_t n_anchors,
                        kms_verify **out, const char **why) LUNA_MUST_CHECK;
void kms_verify_free(kms_verify *v);

/*
 * Re-reads the collateral files (an operator replaces a TCB status
 * document before its next_update); a document that is not newer is kept.
 * Errors are returned for the caller to log; the old collateral stays.
 */
luna_err kms_verify_refresh(kms_verify *v, const json_t *root) LUNA_MUST_CHECK;

/*
 * Registered deployments (kms_deployments.c): reference values the KMS
 * stored after verifying a signed manifest itself.  They apply to every
 * evidence type this KMS accepts.  A deployment named in kms.references is
 * never looked up (configured references cannot be shadowed).
 */
typedef struct kms_verify_ref {
    uint8_t mr_enclave[64];
    size_t mr_enclave_len; /* 32..64 */
    uint8_t mr_signer[64];
    size_t mr_signer_len;  /* 32..64 */
} kms_verify_ref;

/* LUNA_OK with *out filled, LUNA_ERR_NOT_FOUND, LUNA_ERR_VERIFY (the row
 * failed its integrity check: reason "deployment_row_tampered"), or another
 * error (the appraisal then fails closed with reason "registry_unavailable"). */
typedef luna_err (*kms_verify_lookup_fn)(void *arg, const char *deployment,
                                         kms_verify_ref *out);

/* Installs the lookup (fn NULL removes it); arg must outlive v. */
void kms_verify_set_lookup(kms_verify *v, kms_verify_lookup_fn fn, void *arg);

/* true when deployment has references in kms.references. */
bool kms_verify_configured(const kms_verify *v, const char *deployment);

/* true when type is an evidence type name this KMS accepts. */
bool kms_verify_type_ok(const kms_verify *v, const char *type);

/*
 * Appraises evidence.  release: the release policy, nonce required.
 * kx/sign (may be NULL) must equal the keys the evidence binds.  On
 * refusal returns LUNA_ERR_VERIFY with *reason the verifier's stable
 * reason name (e.g. "stale", "measurement_mismatch").
 */
luna_err kms_verify_evidence(kms_verify *v, bool release, const char *type, const uint8_t *ev,
                             size_t len, const char *deployment, const uint8_t *nonce,
                             const uint8_t *kx, const uint8_t *sign, int64_t now,
                             kms_ev_claims *out, const char **reason) LUNA_MUST_CHECK;

#endif
