/*
 * verifier_internal.h - the seam between the generic appraisal
 * (verifier.c) and the per-type backends (verifier_<type>.c).  Nothing
 * outside the verifier module includes it, except its tests and fuzz
 * targets.  A backend parses and authenticates; it never decides policy.
 */
#ifndef LUNA_VERIFIER_INTERNAL_H
#define LUNA_VERIFIER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "luna/verifier.h"

/* ---- verified-chain cache ----
 * Remembers a certificate chain that already verified, keyed by its exact
 * bytes, and only within its validity: a hit saves the X.509 work, never
 * the evidence signature.  Bounded; thread-safe. */
#define LUNA_CHAIN_CACHE_SLOTS 32
#define LUNA_CHAIN_KEY_MAX 97 /* an uncompressed P-384 point */

typedef enum luna_chain_key_kind {
    LUNA_CHAIN_KEY_ED25519 = 1,
    LUNA_CHAIN_KEY_P256 = 2, /* uncompressed SEC1 point */
    LUNA_CHAIN_KEY_P384 = 3,
} luna_chain_key_kind;

typedef struct luna_chain_entry {
    luna_evidence_type type; /* the backend that verified it */
    luna_chain_key_kind kind;
    uint8_t key[LUNA_CHAIN_KEY_MAX]; /* the leaf's public key, raw */
    size_t key_len;
    uint8_t serial[LUNA_CLAIM_SERIAL_MAX];
    size_t serial_len;
    int64_t not_before; /* the tightest window over the whole chain */
    int64_t not_after;
    /* Hardware backends: whether CRLs covered every certificate of the
       chain when it verified (the CRL bytes are part of their key). */
    bool revocation_checked;
} luna_chain_entry;

typedef struct luna_chain_cache luna_chain_cache;

/* True and *out filled when der was cached by the backend of type and now
   is inside its window. */
bool luna_chain_cache_get(luna_chain_cache *c, luna_evidence_type type, const uint8_t *der,
                          size_t len, int64_t now, luna_chain_entry *out);
/* Remembers der (copied); silently does nothing when it cannot allocate. */
void luna_chain_cache_put(luna_chain_cache *c, const uint8_t *der, size_t len,
                          const luna_chain_entry *e);

/* ---- backend ---- */

/* What the generic layer hands a backend for one verification. */
typedef struct luna_backend_ctx {
    X509 *const *anchors; /* the policy's roots for this type */
    size_t n_anchors;
    const void *collateral; /* the backend's parsed collateral, or NULL */
    luna_chain_cache *cache;
    int64_t now;
    bool revocation_optional; /* luna_policy_set_revocation_optional */
    /* The type's hardware expectations (luna_snp_expect, luna_tdx_expect,
       luna_sgx_expect), all UNSET when the policy never set them; NULL
       for the other types. */
    const void *expect;
} luna_backend_ctx;

/*
 * Every function returns LUNA_VERIFY_OK or a reason and, on refusal, sets
 * *why to a static message.  parse is bounded and does no crypto; verify
 * checks the chain, revocation, collateral and evidence signature; claims
 * fills the common claims from authenticated evidence only.
 */
typedef struct luna_verifier_backend {
    luna_evidence_type type;
    bool simulated;
    luna_verify_reason (*parse)(const uint8_t *ev, size_t len, void **state, const char **why);
    luna_verify_reason (*verify)(void *state, const luna_backend_ctx *ctx, const char **why);
    luna_verify_reason (*claims)(const void *state, const luna_backend_ctx *ctx,
                                 luna_claims *out, const char **why);
    void (*free_state)(void *state);
    /* Collateral (may be NULL when the type needs none). load returns an
       owned object after checking its signature against the anchors. */
    luna_err (*collateral_load)(const uint8_t *doc, size_t len, X509 *const *anchors,
                                size_t n_anchors, int64_t now, void **out);
    int64_t (*collateral_issued_at)(const void *collateral);
    void (*collateral_free)(void *collateral);
} luna_verifier_backend;

extern const luna_verifier_backend luna_verifier_backend_sim;
extern const luna_verifier_backend luna_verifier_backend_snp;
extern const luna_verifier_backend luna_verifier_backend_nitro;
extern const luna_verifier_backend luna_verifier_backend_tdx;
extern const luna_verifier_backend luna_verifier_backend_sgx;
extern const luna_verifier_backend luna_verifier_backend_tpm;

#ifdef LUNA_TESTING
/*
 * Test-only (compiled out of production builds): luna_verifier_verify
 * without the key-binding step.  The real hardware samples of
 * tests/vectors carry a REPORT_DATA that binds someone else's keys, so
 * the full appraisal would always stop at key_not_bound; this lets those
 * tests reach the policy checks after it (measurement, debug, TCB).
 */
luna_err luna_verifier_verify_unbound(luna_verifier *v, const luna_verify_input *in,
                                      luna_verify_result *result) LUNA_MUST_CHECK;
#endif

/* True when the subject of cert contains "SIMULATED" (sim roots say so). */
bool luna_verifier_cert_is_simulated(X509 *cert);

#endif
