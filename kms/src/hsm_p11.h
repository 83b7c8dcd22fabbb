/*
 * hsm_p11.h - the PKCS#11 token operations of the HSM process.  Linked only
 * into luna-kms-hsm: the network-facing KMS never includes this header,
 * never loads a PKCS#11 module and never sees an object handle.
 *
 * One luna_p11 = one loaded module, one logged-in R/W user session on the
 * token with the configured label, and the handles of the root wrapping key
 * and the registry MAC key.  Not thread-safe: the HSM process serves one
 * request at a time.  Every call records the last CK_RV for diagnostics
 * (luna_p11_last_rv); neither the PIN nor key bytes are ever logged.
 *
 * Error mapping (all functions):
 *   LUNA_ERR_UNAUTHENTICATED  wrong / locked / expired PIN
 *   LUNA_ERR_VERIFY           wrapped key or ciphertext or MAC refused by the token
 *   LUNA_ERR_UNAVAILABLE      device error, session or token gone, not logged in
 *                             (the process must exit so the KMS restarts it)
 *   LUNA_ERR_CONFIG           module/token/key absent, or a key's attributes wrong
 *   LUNA_ERR_CONFLICT         two objects carry the root or MAC label
 *   LUNA_ERR_NOMEM, LUNA_ERR_CRYPTO  anything else the token reports
 */
#ifndef LUNA_KMS_HSM_P11_H
#define LUNA_KMS_HSM_P11_H

#include <stddef.h>
#include <stdint.h>

#include "hsm_ipc.h"
#include "luna/err.h"
#include "luna/secret.h"

typedef struct luna_p11 luna_p11;

/*
 * Loads module_path (absolute), initializes it, opens a session on the
 * token whose label is token_label (<= 32 bytes) and logs in as the user
 * with pin.  The PIN is only borrowed; the caller wipes it right after.
 * On error *out is NULL and *rv holds the failing CK_RV (0 if none).
 */
luna_err luna_p11_open(const char *module_path, const char *token_label, const luna_secret *pin,
                       luna_p11 **out, unsigned long *rv) LUNA_MUST_CHECK;
/* Logs out, closes the session, finalizes and unloads; NULL is a no-op. */
void luna_p11_close(luna_p11 *p);
unsigned long luna_p11_last_rv(const luna_p11 *p);

/*
 * Finds the token AES-256 root key labelled label, creating it if absent
 * with the attributes of docs/kms-hsm.md, then checks them (below).
 */
luna_err luna_p11_ensure_root(luna_p11 *p, const char *label) LUNA_MUST_CHECK;
/*
 * Reads the root's attributes back and refuses (LUNA_ERR_CONFIG) unless it
 * is a token AES-256 secret key, private, sensitive, always sensitive, not
 * extractable, never extractable, wrap and unwrap only (no encrypt, decrypt,
 * sign, verify, derive), not modifiable, and carries exactly the
 * CKA_UNWRAP_TEMPLATE (unwrapped keys: sensitive, not extractable, session,
 * encrypt/decrypt only) and CKA_WRAP_TEMPLATE (only inert, sensitive,
 * token-generated AES keys are wrapped) of docs/kms-hsm.md.
 */
luna_err luna_p11_check_root(luna_p11 *p) LUNA_MUST_CHECK;
/* Same for the HMAC-SHA256 key: generic secret, sign and verify only. */
luna_err luna_p11_ensure_mac(luna_p11 *p, const char *label) LUNA_MUST_CHECK;
luna_err luna_p11_check_mac(luna_p11 *p) LUNA_MUST_CHECK;

/* A fresh AES-256 key made in the token, returned only wrapped (RFC 5649). */
luna_err luna_p11_gen_kek(luna_p11 *p, uint8_t wrapped[LUNA_HSM_WRAPPED_LEN]) LUNA_MUST_CHECK;
/*
 * Unwraps `wrapped` into a session object and AES-256-GCM-encrypts pt
 * under it in the token with a token-random 96-bit nonce: out receives
 * nonce || ct || tag (pt_len + LUNA_HSM_SEAL_OVERHEAD bytes).
 */
luna_err luna_p11_seal(luna_p11 *p, const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                       const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                       uint8_t *out) LUNA_MUST_CHECK;
/* The inverse; out receives sealed_len - LUNA_HSM_SEAL_OVERHEAD bytes. */
luna_err luna_p11_open_sealed(luna_p11 *p, const uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                              const uint8_t *aad, size_t aad_len, const uint8_t *sealed,
                              size_t sealed_len, uint8_t *out) LUNA_MUST_CHECK;
/* 32 random bytes from the token's generator. */
luna_err luna_p11_random(luna_p11 *p, uint8_t *out, size_t n) LUNA_MUST_CHECK;
luna_err luna_p11_mac(luna_p11 *p, const uint8_t *msg, size_t len,
                      uint8_t tag[LUNA_HSM_MAC_LEN]) LUNA_MUST_CHECK;
/* LUNA_ERR_VERIFY when tag is not the MAC of msg. */
luna_err luna_p11_mac_verify(luna_p11 *p, const uint8_t *msg, size_t len,
                             const uint8_t tag[LUNA_HSM_MAC_LEN]) LUNA_MUST_CHECK;

#endif
