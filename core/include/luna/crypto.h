/*
 * luna/crypto.h - the platform's wrappers over OpenSSL 3 primitives.
 *
 * Every component calls these, never OpenSSL's EVP layer directly, so that
 * the checks live in one place and are what the Wycheproof suites test:
 * X25519 refuses an all-zero shared secret; AEAD open never releases
 * plaintext for a bad tag; verifications return LUNA_ERR_VERIFY for a bad
 * signature and LUNA_ERR_FORMAT for a malformed key or signature encoding.
 * Output buffers are caller-owned with the sizes given by the _LEN macros.
 * All functions are thread-safe (no shared state).  Nothing here logs.
 */
#ifndef LUNA_CRYPTO_H
#define LUNA_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"

/* ---- randomness ---- */
luna_err luna_random(void *out, size_t n) LUNA_MUST_CHECK;

/* ---- hashes ---- */
typedef enum luna_hash {
    LUNA_HASH_SHA256 = 1,
    LUNA_HASH_SHA384 = 2,
    LUNA_HASH_SHA512 = 3,
} luna_hash;
#define LUNA_SHA256_LEN 32
#define LUNA_SHA384_LEN 48
#define LUNA_SHA512_LEN 64
#define LUNA_HASH_MAX_LEN 64
size_t luna_hash_len(luna_hash h);
/* out must hold luna_hash_len(h) bytes. */
luna_err luna_hash_digest(luna_hash h, const void *msg, size_t len, uint8_t *out) LUNA_MUST_CHECK;
luna_err luna_sha256(const void *msg, size_t len, uint8_t out[LUNA_SHA256_LEN]) LUNA_MUST_CHECK;

/* ---- HMAC and HKDF (RFC 2104, RFC 5869) ---- */
/* out must hold luna_hash_len(h) bytes; key may be empty. */
luna_err luna_hmac(luna_hash h, const uint8_t *key, size_t key_len, const uint8_t *msg,
                   size_t msg_len, uint8_t *out) LUNA_MUST_CHECK;
/*
 * Constant-time check of a (possibly truncated, 1..hash len) tag.  tag_len
 * must be the protocol's fixed tag length, never a length taken from the
 * input (a 1-byte tag would be a 1-in-256 guess).
 */
luna_err luna_hmac_verify(luna_hash h, const uint8_t *key, size_t key_len, const uint8_t *msg,
                          size_t msg_len, const uint8_t *tag, size_t tag_len) LUNA_MUST_CHECK;
/* prk must hold luna_hash_len(h) bytes; salt may be empty (RFC 5869: zeros). */
luna_err luna_hkdf_extract(luna_hash h, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                           size_t ikm_len, uint8_t *prk) LUNA_MUST_CHECK;
/*
 * Longest info luna_hkdf_expand / luna_hkdf accept (OpenSSL 3.0's own HKDF
 * limit); a longer info fails with LUNA_ERR_TOO_LARGE.
 */
#define LUNA_HKDF_MAX_INFO_LEN (32u * 1024u)
/*
 * out_len 1..255 * hash len, else LUNA_ERR_INVALID_ARG; prk_len >= hash len
 * (RFC 5869 2.3), else LUNA_ERR_INVALID_ARG.
 */
luna_err luna_hkdf_expand(luna_hash h, const uint8_t *prk, size_t prk_len, const uint8_t *info,
                          size_t info_len, uint8_t *out, size_t out_len) LUNA_MUST_CHECK;
luna_err luna_hkdf(luna_hash h, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                   size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
                   size_t out_len) LUNA_MUST_CHECK;

/* ---- AEAD ---- */
typedef enum luna_aead {
    LUNA_AEAD_AES128GCM = 1,   /* values are the HPKE aead ids */
    LUNA_AEAD_AES256GCM = 2,
    LUNA_AEAD_CHACHA20POLY1305 = 3,
    /* Not an HPKE suite and never chosen by the platform's formats; offered
     * so the wrapper covers all of GCM (Wycheproof).  HPKE maps only the
     * three ids above. */
    LUNA_AEAD_AES192GCM = 0x0101,
} luna_aead;
#define LUNA_AEAD_TAG_LEN 16
#define LUNA_AEAD_NONCE_LEN 12
#define LUNA_AEAD_MAX_KEY_LEN 32
size_t luna_aead_key_len(luna_aead alg); /* 0 for an unknown alg */
/*
 * Seal: writes pt_len + LUNA_AEAD_TAG_LEN bytes (ciphertext || tag) to out.
 * Open: ct_len >= LUNA_AEAD_TAG_LEN; writes ct_len - tag bytes to out, and on
 * LUNA_ERR_VERIFY wipes whatever it wrote.  in and out may be the same
 * buffer (in place).  GCM takes any nonce length >= 1 (12 is what the
 * platform uses); ChaCha20-Poly1305 takes exactly 12.
 * Errors: LUNA_ERR_INVALID_ARG for a key length other than
 * luna_aead_key_len(alg), an unknown alg, an empty GCM nonce or a
 * ChaCha20-Poly1305 nonce other than 12 bytes; LUNA_ERR_UNSUPPORTED for a
 * GCM nonce over LUNA_AEAD_GCM_MAX_NONCE_LEN; open returns LUNA_ERR_VERIFY
 * (not INVALID_ARG) for ct_len < LUNA_AEAD_TAG_LEN, since that is what a
 * truncated ciphertext from the network looks like.
 */
#define LUNA_AEAD_GCM_MAX_NONCE_LEN 128
luna_err luna_aead_seal(luna_aead alg, const uint8_t *key, size_t key_len, const uint8_t *nonce,
                        size_t nonce_len, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                        size_t pt_len, uint8_t *out) LUNA_MUST_CHECK;
luna_err luna_aead_open(luna_aead alg, const uint8_t *key, size_t key_len, const uint8_t *nonce,
                        size_t nonce_len, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                        size_t ct_len, uint8_t *out) LUNA_MUST_CHECK;

/* ---- X25519 (RFC 7748) ---- */
#define LUNA_X25519_LEN 32
luna_err luna_x25519_keygen(uint8_t sk[LUNA_X25519_LEN], uint8_t pk[LUNA_X25519_LEN]) LUNA_MUST_CHECK;
luna_err luna_x25519_public(const uint8_t sk[LUNA_X25519_LEN],
                            uint8_t pk[LUNA_X25519_LEN]) LUNA_MUST_CHECK;
/* LUNA_ERR_VERIFY when the shared secret is all zero (low-order peer key). */
luna_err luna_x25519(const uint8_t sk[LUNA_X25519_LEN], const uint8_t peer[LUNA_X25519_LEN],
                     uint8_t shared[LUNA_X25519_LEN]) LUNA_MUST_CHECK;

/* ---- Ed25519 (RFC 8032, pure) ---- */
#define LUNA_ED25519_SEED_LEN 32
#define LUNA_ED25519_PUB_LEN 32
#define LUNA_ED25519_SIG_LEN 64
luna_err luna_ed25519_keygen(uint8_t seed[LUNA_ED25519_SEED_LEN],
                             uint8_t pk[LUNA_ED25519_PUB_LEN]) LUNA_MUST_CHECK;
luna_err luna_ed25519_public(const uint8_t seed[LUNA_ED25519_SEED_LEN],
                             uint8_t pk[LUNA_ED25519_PUB_LEN]) LUNA_MUST_CHECK;
luna_err luna_ed25519_sign(const uint8_t seed[LUNA_ED25519_SEED_LEN], const uint8_t *msg,
                           size_t msg_len, uint8_t sig[LUNA_ED25519_SIG_LEN]) LUNA_MUST_CHECK;
/* sig_len must be LUNA_ED25519_SIG_LEN (else LUNA_ERR_VERIFY). */
luna_err luna_ed25519_verify(const uint8_t pk[LUNA_ED25519_PUB_LEN], const uint8_t *msg,
                             size_t msg_len, const uint8_t *sig, size_t sig_len) LUNA_MUST_CHECK;

/* ---- ECDSA verification (P-256 with SHA-256, P-384 with SHA-384) ---- */
typedef enum luna_ec_curve {
    LUNA_EC_P256 = 1,
    LUNA_EC_P384 = 2,
} luna_ec_curve;
typedef enum luna_sig_format {
    LUNA_SIG_DER = 1,   /* X9.62 DER SEQUENCE { r, s }, strict DER only */
    LUNA_SIG_P1363 = 2, /* raw r || s, each the field size, as hardware evidence uses */
} luna_sig_format;
/* pub is an uncompressed SEC1 point (0x04 || X || Y). */
luna_err luna_ecdsa_verify(luna_ec_curve curve, const uint8_t *pub, size_t pub_len,
                           luna_sig_format fmt, const uint8_t *msg, size_t msg_len,
                           const uint8_t *sig, size_t sig_len) LUNA_MUST_CHECK;
/* Same, with the message already hashed (digest_len = the curve's hash size). */
luna_err luna_ecdsa_verify_digest(luna_ec_curve curve, const uint8_t *pub, size_t pub_len,
                                  luna_sig_format fmt, const uint8_t *digest, size_t digest_len,
                                  const uint8_t *sig, size_t sig_len) LUNA_MUST_CHECK;
/* Converts a raw r||s signature to DER (out_cap >= 2*field+9). */
luna_err luna_ecdsa_p1363_to_der(luna_ec_curve curve, const uint8_t *sig, size_t sig_len,
                                 uint8_t *out, size_t out_cap, size_t *out_len) LUNA_MUST_CHECK;

/* ---- RSA signature verification (TPM attestation keys) ----
 * spki is a DER SubjectPublicKeyInfo holding an RSA key of 2048..4096
 * bits (anything else: LUNA_ERR_FORMAT; a shorter modulus is refused, not
 * just distrusted).  PKCS1 is RSASSA-PKCS1-v1_5; PSS uses MGF1 with the
 * same hash and accepts any salt length (TPM 2.0 quotes use the longest
 * the key allows).  h is SHA-256, SHA-384 or SHA-512.  LUNA_ERR_VERIFY for
 * a bad signature, including one of the wrong length.
 * Implemented in crypto_rsa.c. */
typedef enum luna_rsa_padding {
    LUNA_RSA_PKCS1 = 1,
    LUNA_RSA_PSS = 2,
} luna_rsa_padding;
#define LUNA_RSA_MIN_BITS 2048
#define LUNA_RSA_MAX_BITS 4096
luna_err luna_rsa_verify(const uint8_t *spki, size_t spki_len, luna_rsa_padding pad, luna_hash h,
                         const uint8_t *msg, size_t msg_len, const uint8_t *sig,
                         size_t sig_len) LUNA_MUST_CHECK;

#endif
