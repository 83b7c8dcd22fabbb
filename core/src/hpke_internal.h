/*
 * hpke_internal.h - the HPKE steps under luna/hpke.h, exposed to the
 * module's own tests so each RFC 9180 intermediate value (shared_secret,
 * key_schedule_context, secret, key, base_nonce, exporter_secret) can be
 * checked against the test vectors.  Not for components: they use
 * luna/hpke.h.  Every output here is secret except enc and the context.
 */
#ifndef LUNA_HPKE_INTERNAL_H
#define LUNA_HPKE_INTERNAL_H

#include "luna/hpke.h"

#define LUNA_HPKE_KSC_MAX_LEN (1 + 2 * LUNA_HPKE_MAX_NH)

typedef struct luna_hpke_schedule {
    uint8_t key_schedule_context[LUNA_HPKE_KSC_MAX_LEN];
    size_t key_schedule_context_len; /* 1 + 2*Nh */
    uint8_t secret[LUNA_HPKE_MAX_NH];
    size_t nh;
    uint8_t key[32];
    size_t key_len; /* Nk: 0 for export-only */
    uint8_t base_nonce[LUNA_HPKE_NONCE_LEN];
    size_t nonce_len; /* Nn: 0 for export-only */
    uint8_t exporter_secret[LUNA_HPKE_MAX_NH];
} luna_hpke_schedule;

/* Encap (sk_s NULL) or AuthEncap with the given ephemeral key. */
luna_err luna_hpke_encap_internal(const uint8_t pk_r[LUNA_HPKE_PK_LEN], const uint8_t *sk_s,
                                  const uint8_t sk_e[LUNA_HPKE_SK_LEN],
                                  uint8_t shared_secret[32],
                                  uint8_t enc[LUNA_HPKE_ENC_LEN]) LUNA_MUST_CHECK;
/* Decap (pk_s NULL) or AuthDecap. */
luna_err luna_hpke_decap_internal(const uint8_t enc[LUNA_HPKE_ENC_LEN],
                                  const uint8_t sk_r[LUNA_HPKE_SK_LEN], const uint8_t *pk_s,
                                  uint8_t shared_secret[32]) LUNA_MUST_CHECK;
/* KeySchedule (RFC 9180 5.1), including VerifyPSKInputs.  Wipe *out after. */
luna_err luna_hpke_key_schedule_internal(const luna_hpke_params *p, const uint8_t shared_secret[32],
                                         luna_hpke_schedule *out) LUNA_MUST_CHECK;

#endif
