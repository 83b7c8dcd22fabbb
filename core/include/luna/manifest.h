/*
 * luna/manifest.h - signed deployment manifests (DESIGN.md 3a,
 * docs/manifest.md): name, version, jobs, build_hash, mr_enclave,
 * mr_signer, developer_id, key_id, signed by the developer's Ed25519 key.
 *
 * Encoding: JWS compact serialization (RFC 7515) with "alg":"EdDSA"
 * (RFC 8037) over a canonical JSON payload, so any JWS tool can check the
 * signature.  Header and payload must be byte-for-byte the canonical form
 * this module writes (docs/manifest.md); anything else is refused, so one
 * manifest has exactly one encoding.  The verifier pins the developer key:
 * no key is ever taken from the manifest.
 *
 * key_id = the first 16 bytes of SHA-256(raw 32-byte Ed25519 public key),
 * lowercase hex pairs joined by ':' (47 characters).
 * mr_signer = SHA-256(raw 32-byte Ed25519 public key), all 32 bytes.
 *
 * Thread safety: no state; every function may run in any thread.  Nothing
 * here logs.  The seed given to luna_manifest_sign is not kept.
 */
#ifndef LUNA_MANIFEST_H
#define LUNA_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "luna/crypto.h"
#include "luna/err.h"

#define LUNA_MANIFEST_MAX_LEN 8192u /* whole JWS compact string */
#define LUNA_MANIFEST_NAME_MAX 64
#define LUNA_MANIFEST_VERSION_MAX 32
#define LUNA_MANIFEST_MAX_JOBS 32
#define LUNA_MANIFEST_JOB_MAX 64
#define LUNA_MANIFEST_DEV_ID_MAX 64
#define LUNA_MANIFEST_KEY_ID_LEN 47 /* "4f:23:...:0a", without the NUL */
#define LUNA_MANIFEST_HASH_LEN 32
#define LUNA_MANIFEST_MR_ENCLAVE_MAX 48 /* 32 (sim, SGX) or 48 (SEV-SNP, TDX) */
#define LUNA_MANIFEST_FORMAT_VERSION 1

/*
 * Text fields hold 1..MAX bytes of [A-Za-z0-9._-] and are NUL-terminated;
 * jobs are distinct.
 */
typedef struct luna_manifest {
    char name[LUNA_MANIFEST_NAME_MAX + 1];
    char version[LUNA_MANIFEST_VERSION_MAX + 1];
    char jobs[LUNA_MANIFEST_MAX_JOBS][LUNA_MANIFEST_JOB_MAX + 1];
    size_t n_jobs; /* 1..LUNA_MANIFEST_MAX_JOBS */
    uint8_t build_hash[LUNA_MANIFEST_HASH_LEN]; /* SHA-256 of the job bundle */
    uint8_t mr_enclave[LUNA_MANIFEST_MR_ENCLAVE_MAX];
    size_t mr_enclave_len; /* 32 or 48 */
    uint8_t mr_signer[LUNA_MANIFEST_HASH_LEN];
    char developer_id[LUNA_MANIFEST_DEV_ID_MAX + 1];
    char key_id[LUNA_MANIFEST_KEY_ID_LEN + 1];
} luna_manifest;

/* key_id of pk (definition above) into out (LUNA_MANIFEST_KEY_ID_LEN + 1 bytes). */
luna_err luna_manifest_key_id(const uint8_t pk[LUNA_ED25519_PUB_LEN],
                              char out[LUNA_MANIFEST_KEY_ID_LEN + 1]) LUNA_MUST_CHECK;
/* mr_signer of pk. */
luna_err luna_manifest_mr_signer(const uint8_t pk[LUNA_ED25519_PUB_LEN],
                                 uint8_t out[LUNA_MANIFEST_HASH_LEN]) LUNA_MUST_CHECK;

/*
 * Signs m with the developer seed.  m->key_id and m->mr_signer are ignored
 * and replaced by those of the seed's public key (a manifest can only name
 * the key that signed it).  LUNA_ERR_INVALID_ARG for a field outside its
 * rules.  *out is a NUL-terminated JWS the caller frees with free();
 * *out_len (may be NULL) gets its length.
 */
luna_err luna_manifest_sign(const luna_manifest *m, const uint8_t seed[LUNA_ED25519_SEED_LEN],
                            char **out, size_t *out_len) LUNA_MUST_CHECK;

/*
 * Verifies jws (len bytes, no NUL needed) against the pinned developer
 * (developer_id and Ed25519 key pk) and fills *out on success only.
 * Errors:
 *   LUNA_ERR_TOO_LARGE   over LUNA_MANIFEST_MAX_LEN
 *   LUNA_ERR_FORMAT      not three parts, bad base64url, header or payload
 *                        not the canonical form, unknown or missing field,
 *                        a field outside its rules, duplicate job
 *   LUNA_ERR_PERMISSION  signed for another key (header kid is not pk's
 *                        key_id), or the payload's key_id, mr_signer or
 *                        developer_id is not the pinned developer's
 *   LUNA_ERR_VERIFY      bad signature
 */
luna_err luna_manifest_verify(const char *jws, size_t len, const char *developer_id,
                              const uint8_t pk[LUNA_ED25519_PUB_LEN],
                              luna_manifest *out) LUNA_MUST_CHECK;

#endif
