/*
 * luna/jws.h - signed tokens: JWS compact serialization of a JWT signed
 * with Ed25519 ("alg":"EdDSA", RFC 7515, RFC 7519, RFC 8037), and the
 * Ed25519 key set (JWKS, RFC 7517) verifiers load and issuers publish.
 *
 * The verifier pins the algorithm: only EdDSA is ever accepted and the
 * header never chooses it.  The key is found by "kid" in the key set the
 * caller configured and nowhere else: a header naming a key source
 * ("jku", "jwk", "x5u", "x5c") or carrying "crit" or "b64" is refused.
 * docs/tokens.md gives the byte-exact format, the claims and rollover.
 *
 * Errors returned by luna_jws_verify (other functions say their own):
 *   LUNA_ERR_FORMAT     malformed token: not three parts, bad base64url
 *                       (padding included), not a JSON object, duplicate
 *                       member, NUL in a string, wrong member type, no
 *                       "kid", a refused header member, a signature that
 *                       is not exactly 64 bytes, no "exp"
 *   LUNA_ERR_TOO_LARGE  the token or one of its parts is over its cap
 *   LUNA_ERR_VERIFY     "alg" is not "EdDSA", bad signature, or the
 *                       configured "iss"/"aud" does not match
 *   LUNA_ERR_NOT_FOUND  "kid" is not in the key set
 *   LUNA_ERR_EXPIRED    expired, "nbf" in the future or "iat" in the
 *                       future (each beyond the allowed clock skew)
 *
 * Thread safety: a key set and a signer may be used from many threads at
 * once for verify/sign/export as long as no thread changes the key set
 * (luna_jws_keyset_add/_remove) at the same time.  Nothing here logs.
 */
#ifndef LUNA_JWS_H
#define LUNA_JWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "luna/crypto.h"
#include "luna/err.h"

/* Named caps.  The token cap covers the whole compact string. */
#define LUNA_JWS_MAX_TOKEN_LEN 8192u
#define LUNA_JWS_MAX_HEADER_B64_LEN 1024u   /* encoded protected header */
#define LUNA_JWS_MAX_PAYLOAD_B64_LEN 7000u  /* encoded payload */
#define LUNA_JWS_SIG_B64_LEN 86u            /* exactly: 64 bytes, no padding */
#define LUNA_JWS_MAX_KID_LEN 128u           /* bytes, printable ASCII only */
#define LUNA_JWS_MAX_KEYS 16u               /* keys in one set */
#define LUNA_JWS_MAX_JWKS_LEN (64u * 1024u) /* JWKS document given to _load */
#define LUNA_JWS_DEFAULT_SKEW 60u           /* seconds */
#define LUNA_JWS_MAX_SKEW 3600u             /* seconds */

/* ---- key set (public keys only) ---- */

typedef struct luna_jws_keyset luna_jws_keyset;

/* An empty set; free with luna_jws_keyset_free. */
luna_err luna_jws_keyset_new(luna_jws_keyset **out) LUNA_MUST_CHECK;
/* NULL is a no-op. */
void luna_jws_keyset_free(luna_jws_keyset *ks);

/*
 * Adds an Ed25519 public key under kid (NUL-terminated, 1..LUNA_JWS_MAX_KID_LEN
 * bytes of printable ASCII 0x21..0x7e).  LUNA_ERR_CONFLICT if the kid is
 * already in the set, LUNA_ERR_TOO_LARGE when the set holds
 * LUNA_JWS_MAX_KEYS keys, LUNA_ERR_INVALID_ARG for a bad kid.  The key
 * bytes are checked only when a signature is verified with them.
 */
luna_err luna_jws_keyset_add(luna_jws_keyset *ks, const char *kid,
                             const uint8_t pk[LUNA_ED25519_PUB_LEN]) LUNA_MUST_CHECK;
/* Removes the key named kid; LUNA_ERR_NOT_FOUND if absent. */
luna_err luna_jws_keyset_remove(luna_jws_keyset *ks, const char *kid) LUNA_MUST_CHECK;
size_t luna_jws_keyset_count(const luna_jws_keyset *ks);
/* Copies the public key of kid into pk; LUNA_ERR_NOT_FOUND if absent. */
luna_err luna_jws_keyset_find(const luna_jws_keyset *ks, const char *kid,
                              uint8_t pk[LUNA_ED25519_PUB_LEN]) LUNA_MUST_CHECK;

/*
 * Parses a JWKS document of len bytes (no NUL needed; at most
 * LUNA_JWS_MAX_JWKS_LEN, else LUNA_ERR_TOO_LARGE).  The document is an
 * object with a "keys" array of 1..LUNA_JWS_MAX_KEYS keys; each key must
 * have "kty":"OKP", "crv":"Ed25519", "x" (43 base64url chars = 32 bytes)
 * and a "kid"; "alg" if present must be "EdDSA", "use" if present "sig".
 * A key carrying "d" (a private key) is refused, and so is any key of
 * another type: a verifier's set holds only what it can use.  Any
 * violation is LUNA_ERR_FORMAT; a repeated kid is LUNA_ERR_CONFLICT.
 */
luna_err luna_jws_keyset_load(const char *json, size_t len,
                              luna_jws_keyset **out) LUNA_MUST_CHECK;

/*
 * Writes the set as a compact JWKS document, keys in insertion order, each
 * {"kty","crv","x","kid","alg":"EdDSA","use":"sig"}.  *out is a
 * NUL-terminated string the caller frees with free(); *out_len (may be
 * NULL) gets its length.  An empty set exports {"keys":[]}.
 */
luna_err luna_jws_keyset_export(const luna_jws_keyset *ks, char **out,
                                size_t *out_len) LUNA_MUST_CHECK;

/* ---- signer (holds one private key) ---- */

typedef struct luna_jws_signer luna_jws_signer;

/*
 * A signer for the Ed25519 seed (copied into a luna_secret; the caller
 * wipes its own copy) named kid (same rules as luna_jws_keyset_add).
 */
luna_err luna_jws_signer_new(const uint8_t seed[LUNA_ED25519_SEED_LEN], const char *kid,
                             luna_jws_signer **out) LUNA_MUST_CHECK;
/* A signer for a fresh random key. */
luna_err luna_jws_signer_generate(const char *kid, luna_jws_signer **out) LUNA_MUST_CHECK;
/* Wipes the key; NULL is a no-op. */
void luna_jws_signer_free(luna_jws_signer *s);
/* The signer's kid, owned by the signer, valid until it is freed. */
const char *luna_jws_signer_kid(const luna_jws_signer *s);
void luna_jws_signer_public(const luna_jws_signer *s, uint8_t pk[LUNA_ED25519_PUB_LEN]);
/* Adds the signer's public key to ks under its kid (errors as _keyset_add). */
luna_err luna_jws_signer_publish(const luna_jws_signer *s,
                                 luna_jws_keyset *ks) LUNA_MUST_CHECK;

/*
 * Signs claims (a JSON object, not modified) as a JWT with the protected
 * header {"alg":"EdDSA","typ":"JWT","kid":<kid>}.  The claims must hold an
 * integer "exp" (a token that never expires is not issued); "nbf" and
 * "iat" if present must be integers; no string may contain a NUL.  Those
 * violations are LUNA_ERR_INVALID_ARG; a token that would be longer than
 * LUNA_JWS_MAX_TOKEN_LEN (or a part over its cap) is LUNA_ERR_TOO_LARGE,
 * so every token issued here passes luna_jws_verify's size checks.
 * *token is NUL-terminated, freed by the caller with free(); *token_len
 * (may be NULL) gets its length.
 */
luna_err luna_jws_sign(const luna_jws_signer *s, const json_t *claims, char **token,
                       size_t *token_len) LUNA_MUST_CHECK;

/* ---- verification ---- */

typedef struct luna_jws_verify_opts {
    /* Unix time in seconds to check against; 0 means the system clock. */
    int64_t now;
    /* Allowed clock skew in seconds, at most LUNA_JWS_MAX_SKEW. */
    uint32_t skew;
    /* When not NULL, "iss" must be present and equal to it. */
    const char *issuer;
    /* When not NULL, "aud" must be present and be exactly this string.
       An array of strings is refused unless audience_any_of is set, then
       it must contain audience.  When NULL, a token that carries "aud" is
       refused (RFC 7519 4.1.3: it was minted for someone else). */
    const char *audience;
    /* Accept an "aud" array that contains audience (RFC 7519's general
       form).  False (the default, and what every Lunal service uses): a
       token is bound to one audience, so a token valid at two services at
       once is refused (docs/tokens.md). */
    bool audience_any_of;
} luna_jws_verify_opts;

/* now = 0 (system clock), skew = LUNA_JWS_DEFAULT_SKEW, no iss check, no aud allowed. */
void luna_jws_verify_opts_init(luna_jws_verify_opts *opts);

/*
 * Verifies token (token_len bytes, no NUL needed) against ks and, on
 * success only, sets *claims to the parsed claims object (the caller
 * releases it with json_decref) and, when kid_out is not NULL, copies the
 * kid that verified into kid_out (LUNA_JWS_MAX_KID_LEN + 1 bytes).
 * opts may be NULL for the defaults of luna_jws_verify_opts_init.
 * Time rules, with s the skew: exp is required and now < exp + s;
 * if present nbf <= now + s and iat <= now + s.  Bad options (skew over
 * the cap, negative now) are LUNA_ERR_INVALID_ARG.  Other errors: see
 * the top of this file.  *claims is NULL on every failure.
 */
luna_err luna_jws_verify(const luna_jws_keyset *ks, const char *token, size_t token_len,
                         const luna_jws_verify_opts *opts, json_t **claims,
                         char *kid_out) LUNA_MUST_CHECK;

#endif
