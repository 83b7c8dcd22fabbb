/*
 * luna/hpke.h - Hybrid Public Key Encryption, RFC 9180.
 *
 * Supported: KEM DHKEM(X25519, HKDF-SHA256) (0x0020); KDFs HKDF-SHA256
 * (0x0001) and HKDF-SHA512 (0x0003); AEADs AES-128-GCM (0x0001),
 * AES-256-GCM (0x0002), ChaCha20-Poly1305 (0x0003) and Export-only
 * (0xFFFF); all four modes (base, psk, auth, auth_psk).  Built only on the
 * wrappers of luna/crypto.h.
 *
 * Contexts are opaque.  Their key, base nonce and exporter secret live in a
 * luna_secret (locked, undumpable) and are wiped by luna_hpke_ctx_free.  A
 * context is NOT thread-safe (it carries the sequence number); distinct
 * contexts are independent.  Everything else here is thread-safe.
 *
 * Errors: LUNA_ERR_INVALID_ARG for a broken contract (NULL, wrong mode for
 * the keys given, PSK rules of RFC 9180 5.1, over-long inputs);
 * LUNA_ERR_UNSUPPORTED for an unknown suite id, and for seal/open on an
 * export-only context; LUNA_ERR_VERIFY for a failed open and for an all-zero
 * X25519 output (RFC 9180 7.1.4, a low-order peer key); LUNA_ERR_CONFLICT
 * when the sequence number is exhausted (the context refuses to reuse a
 * nonce); LUNA_ERR_NOMEM.
 */
#ifndef LUNA_HPKE_H
#define LUNA_HPKE_H

#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"

typedef enum luna_hpke_mode {
    LUNA_HPKE_MODE_BASE = 0,
    LUNA_HPKE_MODE_PSK = 1,
    LUNA_HPKE_MODE_AUTH = 2,
    LUNA_HPKE_MODE_AUTH_PSK = 3,
} luna_hpke_mode;

#define LUNA_HPKE_KEM_X25519_SHA256 0x0020u
#define LUNA_HPKE_KDF_HKDF_SHA256 0x0001u
#define LUNA_HPKE_KDF_HKDF_SHA512 0x0003u
#define LUNA_HPKE_AEAD_AES128GCM 0x0001u
#define LUNA_HPKE_AEAD_AES256GCM 0x0002u
#define LUNA_HPKE_AEAD_CHACHA20POLY1305 0x0003u
#define LUNA_HPKE_AEAD_EXPORT_ONLY 0xFFFFu

typedef struct luna_hpke_suite {
    uint16_t kem_id;
    uint16_t kdf_id;
    uint16_t aead_id;
} luna_hpke_suite;

/* DHKEM(X25519): Npk = Nenc = Nsk = Nsecret = 32. */
#define LUNA_HPKE_PK_LEN 32
#define LUNA_HPKE_SK_LEN 32
#define LUNA_HPKE_ENC_LEN 32
#define LUNA_HPKE_TAG_LEN 16
#define LUNA_HPKE_NONCE_LEN 12
/* Largest Nh of the supported KDFs (HKDF-SHA512). */
#define LUNA_HPKE_MAX_NH 64
/*
 * Cap on info, psk, psk_id, exporter_context and DeriveKeyPair ikm
 * (RFC 9180 7.2.1 lets an implementation bound them; ours are short).
 */
#define LUNA_HPKE_MAX_INPUT_LEN 4096
/* A PSK must carry at least 32 bytes (RFC 9180 5.1.2, 9.5). */
#define LUNA_HPKE_MIN_PSK_LEN 32
/* DeriveKeyPair wants at least Nsk bytes of input keying material. */
#define LUNA_HPKE_MIN_IKM_LEN 32

/*
 * Everything both sides must agree on besides the keys.  psk/psk_id are
 * given together in PSK modes and both absent (NULL, 0) otherwise.
 */
typedef struct luna_hpke_params {
    luna_hpke_suite suite;
    luna_hpke_mode mode;
    const uint8_t *info;
    size_t info_len;
    const uint8_t *psk;
    size_t psk_len;
    const uint8_t *psk_id;
    size_t psk_id_len;
} luna_hpke_params;

typedef struct luna_hpke_ctx luna_hpke_ctx;

/* LUNA_OK when the suite is one of those listed above. */
luna_err luna_hpke_suite_check(const luna_hpke_suite *suite) LUNA_MUST_CHECK;

/* DeriveKeyPair (RFC 9180 7.1.3) for X25519; ikm_len in [32, MAX_INPUT]. */
luna_err luna_hpke_derive_keypair(const uint8_t *ikm, size_t ikm_len,
                                  uint8_t sk[LUNA_HPKE_SK_LEN],
                                  uint8_t pk[LUNA_HPKE_PK_LEN]) LUNA_MUST_CHECK;
/* GenerateKeyPair: fresh random X25519 key pair. */
luna_err luna_hpke_generate_keypair(uint8_t sk[LUNA_HPKE_SK_LEN],
                                    uint8_t pk[LUNA_HPKE_PK_LEN]) LUNA_MUST_CHECK;

/*
 * Sender setup (SetupBaseS / SetupPSKS / SetupAuthS / SetupAuthPSKS by
 * p->mode).  sk_s is the sender's static private key, required in the auth
 * modes and NULL otherwise.  Writes the encapsulated key to enc and a new
 * context to *out (free with luna_hpke_ctx_free).
 */
luna_err luna_hpke_setup_sender(const luna_hpke_params *p, const uint8_t pk_r[LUNA_HPKE_PK_LEN],
                                const uint8_t *sk_s, uint8_t enc[LUNA_HPKE_ENC_LEN],
                                luna_hpke_ctx **out) LUNA_MUST_CHECK;
/*
 * Same with a caller-chosen ephemeral private key (deterministic; for test
 * vectors and reproducible fixtures only: reusing sk_e breaks HPKE).
 */
luna_err luna_hpke_setup_sender_with_ephemeral(const luna_hpke_params *p,
                                               const uint8_t pk_r[LUNA_HPKE_PK_LEN],
                                               const uint8_t *sk_s,
                                               const uint8_t sk_e[LUNA_HPKE_SK_LEN],
                                               uint8_t enc[LUNA_HPKE_ENC_LEN],
                                               luna_hpke_ctx **out) LUNA_MUST_CHECK;
/*
 * Receiver setup.  pk_s is the expected sender's public key, required in
 * the auth modes and NULL otherwise.
 */
luna_err luna_hpke_setup_receiver(const luna_hpke_params *p, const uint8_t sk_r[LUNA_HPKE_SK_LEN],
                                  const uint8_t enc[LUNA_HPKE_ENC_LEN], const uint8_t *pk_s,
                                  luna_hpke_ctx **out) LUNA_MUST_CHECK;

/*
 * Seal (sender contexts only): writes pt_len + LUNA_HPKE_TAG_LEN bytes to
 * out; pt and out may be the same buffer.  Open (receiver contexts only):
 * ct_len >= LUNA_HPKE_TAG_LEN, writes ct_len - 16 bytes; on LUNA_ERR_VERIFY
 * nothing usable is left in out and the sequence number does not move.
 * Each success advances the sequence number; LUNA_ERR_CONFLICT once it
 * would wrap.  Using a context for the other role is LUNA_ERR_INVALID_ARG.
 */
luna_err luna_hpke_seal(luna_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                        size_t pt_len, uint8_t *out) LUNA_MUST_CHECK;
luna_err luna_hpke_open(luna_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                        size_t ct_len, uint8_t *out) LUNA_MUST_CHECK;

/* Secret export (RFC 9180 5.3), either role; out_len <= 255 * Nh. */
luna_err luna_hpke_export(const luna_hpke_ctx *ctx, const uint8_t *exporter_context,
                          size_t exporter_context_len, uint8_t *out,
                          size_t out_len) LUNA_MUST_CHECK;

/* Wipes and frees; NULL is a no-op. */
void luna_hpke_ctx_free(luna_hpke_ctx *ctx);

#ifdef LUNA_TESTING
/* Test hook: moves the sequence number (to test exhaustion). */
void luna_hpke_ctx_set_seq_for_testing(luna_hpke_ctx *ctx, uint64_t seq);
#endif

#endif
