/*
 * crypto.c - the platform's only door to OpenSSL's primitives: random,
 * hashes, HMAC, HKDF, AEAD (AES-GCM, ChaCha20-Poly1305), X25519, Ed25519
 * and ECDSA P-256/P-384 verification.
 *
 * Must never: release plaintext whose tag did not verify, return an
 * all-zero X25519 secret, accept a non-DER ECDSA signature, log or keep a
 * key, or leave entries on the caller's OpenSSL error queue (every entry
 * point brackets its work with ERR_set_mark / ERR_pop_to_mark).  Holds no
 * state between calls, so every function is thread-safe.
 */
#include "luna/crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "luna/bytes.h"

/*
 * OpenSSL takes int lengths in several places; larger inputs are fed in
 * chunks of this size rather than truncated by a cast.
 */
#define CRYPTO_CHUNK ((size_t)1 << 30)


/* A non-NULL pointer for empty inputs: some OpenSSL paths reject NULL. */
static const uint8_t empty_input[1];

static const uint8_t *nonnull(const uint8_t *p)
{
    return p != NULL ? p : empty_input;
}

/*
 * Every public function sets a mark on entry and pops back to it on exit,
 * so nothing OpenSSL queued on a failure path (nor an "expected" error on a
 * success path) outlives the call, while older entries stay untouched.
 */
static void err_enter(void)
{
    (void)ERR_set_mark();
}

static luna_err err_leave(luna_err err)
{
    (void)ERR_pop_to_mark();
    return err;
}

/* ---- randomness ---- */

luna_err luna_random(void *out, size_t n)
{
    uint8_t *p = out;
    luna_err err = LUNA_OK;

    if (out == NULL && n != 0)
        return LUNA_ERR_INVALID_ARG;
    err_enter();
    while (n > 0) {
        size_t chunk = n < CRYPTO_CHUNK ? n : CRYPTO_CHUNK;
        if (RAND_bytes(p, (int)chunk) != 1) {
            err = LUNA_ERR_CRYPTO;
            break;
        }
        p += chunk;
        n -= chunk;
    }
    return err_leave(err);
}

/* ---- hashes ---- */

static const EVP_MD *hash_md(luna_hash h)
{
    switch (h) {
    case LUNA_HASH_SHA256:
        return EVP_sha256();
    case LUNA_HASH_SHA384:
        return EVP_sha384();
    case LUNA_HASH_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

static const char *hash_name(luna_hash h)
{
    switch (h) {
    case LUNA_HASH_SHA256:
        return "SHA256";
    case LUNA_HASH_SHA384:
        return "SHA384";
    case LUNA_HASH_SHA512:
        return "SHA512";
    }
    return NULL;
}

size_t luna_hash_len(luna_hash h)
{
    switch (h) {
    case LUNA_HASH_SHA256:
        return LUNA_SHA256_LEN;
    case LUNA_HASH_SHA384:
        return LUNA_SHA384_LEN;
    case LUNA_HASH_SHA512:
        return LUNA_SHA512_LEN;
    }
    return 0;
}

luna_err luna_hash_digest(luna_hash h, const void *msg, size_t len, uint8_t *out)
{
    const EVP_MD *md = hash_md(h);
    EVP_MD_CTX *ctx = NULL;
    const uint8_t *p = msg;
    unsigned int outl = 0;
    luna_err err = LUNA_OK;

    if (md == NULL || out == NULL || (msg == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    err_enter();
    ctx = EVP_MD_CTX_new();
    LUNA_TRY_ENSURE(ctx != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY_ENSURE(EVP_DigestInit_ex(ctx, md, NULL) == 1, LUNA_ERR_CRYPTO, done);
    while (len > 0) {
        size_t chunk = len < CRYPTO_CHUNK ? len : CRYPTO_CHUNK;
        LUNA_TRY_ENSURE(EVP_DigestUpdate(ctx, p, chunk) == 1, LUNA_ERR_CRYPTO, done);
        p += chunk;
        len -= chunk;
    }
    LUNA_TRY_ENSURE(EVP_DigestFinal_ex(ctx, out, &outl) == 1, LUNA_ERR_CRYPTO, done);
    LUNA_TRY_ENSURE(outl == luna_hash_len(h), LUNA_ERR_INTERNAL, done);
done:
    EVP_MD_CTX_free(ctx);
    return err_leave(err);
}

luna_err luna_sha256(const void *msg, size_t len, uint8_t out[LUNA_SHA256_LEN])
{
    return luna_hash_digest(LUNA_HASH_SHA256, msg, len, out);
}

/* ---- HMAC ---- */

luna_err luna_hmac(luna_hash h, const uint8_t *key, size_t key_len, const uint8_t *msg,
                   size_t msg_len, uint8_t *out)
{
    const EVP_MD *md = hash_md(h);
    unsigned int outl = 0;
    luna_err err = LUNA_OK;

    if (md == NULL || out == NULL || (key == NULL && key_len != 0) ||
        (msg == NULL && msg_len != 0) || key_len > INT_MAX)
        return LUNA_ERR_INVALID_ARG;
    err_enter();
    /* HMAC() returns NULL on failure; the one-shot keeps no context to free. */
    if (HMAC(md, nonnull(key), (int)key_len, nonnull(msg), msg_len, out, &outl) == NULL)
        err = LUNA_ERR_CRYPTO;
    else if (outl != luna_hash_len(h))
        err = LUNA_ERR_INTERNAL;
    if (err != LUNA_OK)
        luna_wipe(out, luna_hash_len(h));
    return err_leave(err);
}

luna_err luna_hmac_verify(luna_hash h, const uint8_t *key, size_t key_len, const uint8_t *msg,
                          size_t msg_len, const uint8_t *tag, size_t tag_len)
{
    uint8_t mac[LUNA_HASH_MAX_LEN];
    size_t hlen = luna_hash_len(h);
    luna_err err;

    if (hlen == 0 || tag == NULL || tag_len == 0 || tag_len > hlen)
        return LUNA_ERR_INVALID_ARG;
    err = luna_hmac(h, key, key_len, msg, msg_len, mac);
    if (err == LUNA_OK && !luna_ct_equal(mac, tag, tag_len))
        err = LUNA_ERR_VERIFY;
    luna_wipe(mac, sizeof(mac));
    return err;
}

/* ---- HKDF ---- */

/*
 * One EVP_KDF "HKDF" call in EXTRACT_ONLY or EXPAND_ONLY mode.  `key` is
 * the IKM (extract) or the PRK (expand); `extra` is the salt or the info.
 */
static luna_err hkdf_run(luna_hash h, int mode, const uint8_t *key, size_t key_len,
                         const uint8_t *extra, size_t extra_len, uint8_t *out, size_t out_len)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[5];
    size_t n = 0;
    const char *extra_name =
        mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY ? OSSL_KDF_PARAM_SALT : OSSL_KDF_PARAM_INFO;
    luna_err err = LUNA_OK;

    params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                   (char *)(uintptr_t)hash_name(h), 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                    (void *)(uintptr_t)nonnull(key), key_len);
    /* An absent salt means HashLen zeros (RFC 5869), which OpenSSL does itself. */
    if (extra_len > 0)
        params[n++] = OSSL_PARAM_construct_octet_string(extra_name,
                                                        (void *)(uintptr_t)extra, extra_len);
    params[n] = OSSL_PARAM_construct_end();

    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    LUNA_TRY_ENSURE(kdf != NULL, LUNA_ERR_CRYPTO, done);
    kctx = EVP_KDF_CTX_new(kdf);
    LUNA_TRY_ENSURE(kctx != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY_ENSURE(EVP_KDF_derive(kctx, out, out_len, params) == 1, LUNA_ERR_CRYPTO, done);
done:
    EVP_KDF_CTX_free(kctx); /* frees (and cleanses) its copy of the key */
    EVP_KDF_free(kdf);
    if (err != LUNA_OK)
        luna_wipe(out, out_len);
    return err;
}

luna_err luna_hkdf_extract(luna_hash h, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                           size_t ikm_len, uint8_t *prk)
{
    luna_err err;

    if (hash_md(h) == NULL || prk == NULL || (salt == NULL && salt_len != 0) ||
        (ikm == NULL && ikm_len != 0))
        return LUNA_ERR_INVALID_ARG;
    err_enter();
    err = hkdf_run(h, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm, ikm_len, salt, salt_len, prk,
                   luna_hash_len(h));
    return err_leave(err);
}

luna_err luna_hkdf_expand(luna_hash h, const uint8_t *prk, size_t prk_len, const uint8_t *info,
                          size_t info_len, uint8_t *out, size_t out_len)
{
    size_t hlen = luna_hash_len(h);
    luna_err err;

    /* RFC 5869 2.3: PRK is at least HashLen bytes, L at most 255*HashLen. */
    if (hlen == 0 || prk == NULL || prk_len < hlen || (info == NULL && info_len != 0) ||
        out == NULL || out_len == 0 || out_len > 255 * hlen)
        return LUNA_ERR_INVALID_ARG;
    if (info_len > LUNA_HKDF_MAX_INFO_LEN)
        return LUNA_ERR_TOO_LARGE;
    err_enter();
    err = hkdf_run(h, EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, prk_len, info, info_len, out, out_len);
    return err_leave(err);
}

luna_err luna_hkdf(luna_hash h, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                   size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
                   size_t out_len)
{
    uint8_t prk[LUNA_HASH_MAX_LEN];
    size_t hlen = luna_hash_len(h);
    luna_err err;

    /* Checked up front so a refused length costs no extract. */
    if (hlen == 0 || out == NULL || out_len == 0 || out_len > 255 * hlen)
        return LUNA_ERR_INVALID_ARG;
    if (info_len > LUNA_HKDF_MAX_INFO_LEN)
        return LUNA_ERR_TOO_LARGE;
    err = luna_hkdf_extract(h, salt, salt_len, ikm, ikm_len, prk);
    if (err == LUNA_OK)
        err = luna_hkdf_expand(h, prk, hlen, info, info_len, out, out_len);
    luna_wipe(prk, sizeof(prk));
    return err;
}

/* ---- AEAD ---- */

size_t luna_aead_key_len(luna_aead alg)
{
    switch (alg) {
    case LUNA_AEAD_AES128GCM:
        return 16;
    case LUNA_AEAD_AES192GCM:
        return 24;
    case LUNA_AEAD_AES256GCM:
        return 32;
    case LUNA_AEAD_CHACHA20POLY1305:
        return 32;
    }
    return 0;
}

static const EVP_CIPHER *aead_cipher(luna_aead alg)
{
    switch (alg) {
    case LUNA_AEAD_AES128GCM:
        return EVP_aes_128_gcm();
    case LUNA_AEAD_AES192GCM:
        return EVP_aes_192_gcm();
    case LUNA_AEAD_AES256GCM:
        return EVP_aes_256_gcm();
    case LUNA_AEAD_CHACHA20POLY1305:
        return EVP_chacha20_poly1305();
    }
    return NULL;
}

/* Argument checks shared by seal and open (before any OpenSSL call). */
static luna_err aead_check(luna_aead alg, const uint8_t *key, size_t key_len,
                           const uint8_t *nonce, size_t nonce_len, const uint8_t *aad,
                           size_t aad_len)
{
    size_t klen = luna_aead_key_len(alg);

    if (klen == 0 || key == NULL || key_len != klen || nonce == NULL ||
        (aad == NULL && aad_len != 0))
        return LUNA_ERR_INVALID_ARG;
    if (alg == LUNA_AEAD_CHACHA20POLY1305) {
        /* RFC 8439 defines only the 96-bit nonce. */
        if (nonce_len != LUNA_AEAD_NONCE_LEN)
            return LUNA_ERR_INVALID_ARG;
    } else {
        if (nonce_len == 0)
            return LUNA_ERR_INVALID_ARG;
        /* OpenSSL's GCM keeps the IV in a buffer of this size. */
        if (nonce_len > LUNA_AEAD_GCM_MAX_NONCE_LEN)
            return LUNA_ERR_UNSUPPORTED;
    }
    return LUNA_OK;
}

/* Cipher context keyed, nonce set, AAD absorbed; enc = 1 seal, 0 open. */
static luna_err aead_init(EVP_CIPHER_CTX *ctx, luna_aead alg, int enc, const uint8_t *key,
                          const uint8_t *nonce, size_t nonce_len, const uint8_t *aad,
                          size_t aad_len)
{
    const EVP_CIPHER *cipher = aead_cipher(alg);
    int outl = 0;

    if (EVP_CipherInit_ex(ctx, cipher, NULL, NULL, NULL, enc) != 1)
        return LUNA_ERR_CRYPTO;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)nonce_len, NULL) != 1)
        return LUNA_ERR_UNSUPPORTED;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1)
        return LUNA_ERR_CRYPTO;
    while (aad_len > 0) {
        size_t chunk = aad_len < CRYPTO_CHUNK ? aad_len : CRYPTO_CHUNK;
        if (EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)chunk) != 1)
            return LUNA_ERR_CRYPTO;
        aad += chunk;
        aad_len -= chunk;
    }
    return LUNA_OK;
}

/* Streams in to out (they may be the same buffer); no block buffering in AEAD modes. */
static luna_err aead_update(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len, uint8_t *out)
{
    while (len > 0) {
        size_t chunk = len < CRYPTO_CHUNK ? len : CRYPTO_CHUNK;
        int outl = 0;
        if (EVP_CipherUpdate(ctx, out, &outl, in, (int)chunk) != 1 || (size_t)outl != chunk)
            return LUNA_ERR_CRYPTO;
        in += chunk;
        out += chunk;
        len -= chunk;
    }
    return LUNA_OK;
}

luna_err luna_aead_seal(luna_aead alg, const uint8_t *key, size_t key_len, const uint8_t *nonce,
                        size_t nonce_len, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                        size_t pt_len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t final_out[1]; /* GCM and Poly1305 write nothing at Final */
    int outl = 0;
    luna_err err;

    LUNA_GUARD(aead_check(alg, key, key_len, nonce, nonce_len, aad, aad_len));
    if (out == NULL || (pt == NULL && pt_len != 0))
        return LUNA_ERR_INVALID_ARG;
    if (pt_len > SIZE_MAX - LUNA_AEAD_TAG_LEN)
        return LUNA_ERR_TOO_LARGE;
    err_enter();
    ctx = EVP_CIPHER_CTX_new();
    LUNA_TRY_ENSURE(ctx != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY(aead_init(ctx, alg, 1, key, nonce, nonce_len, aad, aad_len), done);
    LUNA_TRY(aead_update(ctx, pt, pt_len, out), done);
    LUNA_TRY_ENSURE(EVP_CipherFinal_ex(ctx, final_out, &outl) == 1 && outl == 0,
                    LUNA_ERR_CRYPTO, done);
    LUNA_TRY_ENSURE(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, LUNA_AEAD_TAG_LEN,
                                        out + pt_len) == 1,
                    LUNA_ERR_CRYPTO, done);
done:
    EVP_CIPHER_CTX_free(ctx); /* cleanses the key schedule */
    /* A half-written ciphertext without its tag is useless; do not leave it. */
    if (err != LUNA_OK)
        luna_wipe(out, pt_len + LUNA_AEAD_TAG_LEN);
    return err_leave(err);
}

luna_err luna_aead_open(luna_aead alg, const uint8_t *key, size_t key_len, const uint8_t *nonce,
                        size_t nonce_len, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                        size_t ct_len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t tag[LUNA_AEAD_TAG_LEN];
    uint8_t final_out[1]; /* GCM and Poly1305 write nothing at Final */
    size_t pt_len;
    int outl = 0;
    luna_err err;

    LUNA_GUARD(aead_check(alg, key, key_len, nonce, nonce_len, aad, aad_len));
    if (ct == NULL)
        return LUNA_ERR_INVALID_ARG;
    /* Too short to carry a tag: it cannot authenticate, whoever cut it. */
    if (ct_len < LUNA_AEAD_TAG_LEN)
        return LUNA_ERR_VERIFY;
    pt_len = ct_len - LUNA_AEAD_TAG_LEN;
    if (out == NULL && pt_len != 0)
        return LUNA_ERR_INVALID_ARG;
    /* SET_TAG takes a non-const buffer, so the tag is copied out of ct. */
    memcpy(tag, ct + pt_len, LUNA_AEAD_TAG_LEN);
    err_enter();
    ctx = EVP_CIPHER_CTX_new();
    LUNA_TRY_ENSURE(ctx != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY(aead_init(ctx, alg, 0, key, nonce, nonce_len, aad, aad_len), done);
    LUNA_TRY(aead_update(ctx, ct, pt_len, out), done);
    LUNA_TRY_ENSURE(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, LUNA_AEAD_TAG_LEN, tag) == 1,
                    LUNA_ERR_CRYPTO, done);
    /* EVP_CipherFinal_ex compares the tag in constant time. */
    LUNA_TRY_ENSURE(EVP_CipherFinal_ex(ctx, final_out, &outl) == 1 && outl == 0,
                    LUNA_ERR_VERIFY, done);
done:
    EVP_CIPHER_CTX_free(ctx);
    if (err != LUNA_OK && pt_len > 0)
        luna_wipe(out, pt_len); /* never release unauthenticated plaintext */
    luna_wipe(tag, sizeof(tag));
    return err_leave(err);
}

/* ---- X25519 ---- */

luna_err luna_x25519_public(const uint8_t sk[LUNA_X25519_LEN], uint8_t pk[LUNA_X25519_LEN])
{
    EVP_PKEY *key = NULL;
    size_t len = LUNA_X25519_LEN;
    luna_err err = LUNA_OK;

    if (sk == NULL || pk == NULL)
        return LUNA_ERR_INVALID_ARG;
    err_enter();
    key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, LUNA_X25519_LEN);
    LUNA_TRY_ENSURE(key != NULL, LUNA_ERR_CRYPTO, done);
    LUNA_TRY_ENSURE(EVP_PKEY_get_raw_public_key(key, pk, &len) == 1 && len == LUNA_X25519_LEN,
                    LUNA_ERR_CRYPTO, done);
done:
    EVP_PKEY_free(key); /* cleanses its copy of sk */
    return err_leave(err);
}

luna_err luna_x25519_keygen(uint8_t sk[LUNA_X25519_LEN], uint8_t pk[LUNA_X25519_LEN])
{
    luna_err err;

    if (sk == NULL || pk == NULL)
        return LUNA_ERR_INVALID_ARG;
    err = luna_random(sk, LUNA_X25519_LEN);
    if (err == LUNA_OK)
        err = luna_x25519_public(sk, pk);
    if (err != LUNA_OK)
        luna_wipe(sk, LUNA_X25519_LEN);
    return err;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

luna_err luna_x25519(const uint8_t sk[LUNA_X25519_LEN], const uint8_t peer[LUNA_X25519_LEN],
                     uint8_t shared[LUNA_X25519_LEN])
{
    EVP_PKEY *key = NULL;
    EVP_PKEY *peer_key = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    size_t len = LUNA_X25519_LEN;
    luna_err err = LUNA_OK;

    if (sk == NULL || peer == NULL || shared == NULL)
        return LUNA_ERR_INVALID_ARG;
    err_enter();
    key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, LUNA_X25519_LEN);
    LUNA_TRY_ENSURE(key != NULL, LUNA_ERR_CRYPTO, done);
    /* Any 32 bytes are a u-coordinate (RFC 7748 5: the top bit is masked). */
    peer_key = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, LUNA_X25519_LEN);
    LUNA_TRY_ENSURE(peer_key != NULL, LUNA_ERR_CRYPTO, done);
    ctx = EVP_PKEY_CTX_new(key, NULL);
    LUNA_TRY_ENSURE(ctx != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY_ENSURE(EVP_PKEY_derive_init(ctx) == 1, LUNA_ERR_CRYPTO, done);
    LUNA_TRY_ENSURE(EVP_PKEY_derive_set_peer(ctx, peer_key) == 1, LUNA_ERR_CRYPTO, done);
    /*
     * With valid lengths the only way derive fails is OpenSSL's own refusal
     * of an all-zero result (a low-order peer point), hence VERIFY.
     */
    LUNA_TRY_ENSURE(EVP_PKEY_derive(ctx, shared, &len) == 1, LUNA_ERR_VERIFY, done);
    LUNA_TRY_ENSURE(len == LUNA_X25519_LEN, LUNA_ERR_INTERNAL, done);
    /* Checked here too so the contract does not hang on OpenSSL's version. */
    LUNA_TRY_ENSURE(!all_zero(shared, LUNA_X25519_LEN), LUNA_ERR_VERIFY, done);
done:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer_key);
    EVP_PKEY_free(key);
    if (err != LUNA_OK)
        luna_wipe(shared, LUNA_X25519_LEN);
    return err_leave(err);
}

/* ---- Ed25519 ---- */

luna_err luna_ed25519_public(const uint8_t seed[LUNA_ED25519_SEED_LEN],
                             uint8_t pk[LUNA_ED25519_PUB_LEN])
{
    EVP_PKEY *key = NULL;
    size_t len = LUNA_ED25519_PUB_LEN;
    luna_err err = LUNA_OK;

    if (seed == NULL || pk == NULL)
        return LUNA_ERR_INVALID_ARG;
    err_enter();
    key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, LUNA_ED25519_SEED_LEN);
    LUNA_TRY_ENSURE(key != NULL, LUNA_ERR_CRYPTO, done);
    LUNA_TRY_ENSURE(EVP_PKEY_get_raw_public_key(key, pk, &len) == 1 &&
                        len == LUNA_ED25519_PUB_LEN,
                    LUNA_ERR_CRYPTO, done);
done:
    EVP_PKEY_free(key);
    return err_leave(err);
}

luna_err luna_ed25519_keygen(uint8_t seed[LUNA_ED25519_SEED_LEN],
                             uint8_t pk[LUNA_ED25519_PUB_LEN])
{
    luna_err err;

    if (seed == NULL || pk == NULL)
        return LUNA_ERR_INVALID_ARG;
    err = luna_random(seed, LUNA_ED25519_SEED_LEN);
    if (err == LUNA_OK)
        err = luna_ed25519_public(seed, pk);
    if (err != LUNA_OK)
        luna_wipe(seed, LUNA_ED25519_SEED_LEN);
    return err;
}

luna_err luna_ed25519_sign(const uint8_t seed[LUNA_ED25519_SEED_LEN], const uint8_t *msg,
                           size_t msg_len, uint8_t sig[LUNA_ED25519_SIG_LEN])
{
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *mctx = NULL;
    size_t len = LUNA_ED25519_SIG_LEN;
    luna_err err = LUNA_OK;

    if (seed == NULL || sig == NULL || (msg == NULL && msg_len != 0))
        return LUNA_ERR_INVALID_ARG;
    err_enter();
    key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, LUNA_ED25519_SEED_LEN);
    LUNA_TRY_ENSURE(key != NULL, LUNA_ERR_CRYPTO, done);
    mctx = EVP_MD_CTX_new();
    LUNA_TRY_ENSURE(mctx != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY_ENSURE(EVP_DigestSignInit(mctx, NULL, NULL, NULL, key) == 1, LUNA_ERR_CRYPTO, done);
    LUNA_TRY_ENSURE(EVP_DigestSign(mctx, sig, &len, nonnull(msg), msg_len) == 1,
                    LUNA_ERR_CRYPTO, done);
    LUNA_TRY_ENSURE(len == LUNA_ED25519_SIG_LEN, LUNA_ERR_INTERNAL, done);
done:
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(key);
    if (err != LUNA_OK)
        luna_wipe(sig, LUNA_ED25519_SIG_LEN);
    return err_leave(err);
}

luna_err luna_ed25519_verify(const uint8_t pk[LUNA_ED25519_PUB_LEN], const uint8_t *msg,
                             size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *mctx = NULL;
    luna_err err = LUNA_OK;

    if (pk == NULL || (msg == NULL && msg_len != 0))
        return LUNA_ERR_INVALID_ARG;
    if (sig == NULL || sig_len != LUNA_ED25519_SIG_LEN)
        return LUNA_ERR_VERIFY;
    err_enter();
    /*
     * The raw import does not decode the point; OpenSSL's verify does, and
     * refuses a point off the curve or an S >= L as a bad signature.
     */
    key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, LUNA_ED25519_PUB_LEN);
    LUNA_TRY_ENSURE(key != NULL, LUNA_ERR_FORMAT, done);
    mctx = EVP_MD_CTX_new();
    LUNA_TRY_ENSURE(mctx != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY_ENSURE(EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, key) == 1, LUNA_ERR_CRYPTO,
                    done);
    LUNA_TRY_ENSURE(EVP_DigestVerify(mctx, sig, sig_len, nonnull(msg), msg_len) == 1,
                    LUNA_ERR_VERIFY, done);
done:
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(key);
    return err_leave(err);
}

/* ---- ECDSA ---- */

typedef struct ec_params {
    const char *group;  /* OpenSSL group name */
    size_t field_len;   /* bytes of a coordinate and of r, s */
    luna_hash hash;
} ec_params;

static const ec_params *ec_lookup(luna_ec_curve curve)
{
    static const ec_params p256 = {"prime256v1", 32, LUNA_HASH_SHA256};
    static const ec_params p384 = {"secp384r1", 48, LUNA_HASH_SHA384};

    switch (curve) {
    case LUNA_EC_P256:
        return &p256;
    case LUNA_EC_P384:
        return &p384;
    }
    return NULL;
}

/* Largest DER signature: SEQUENCE hdr (3) + 2 * INTEGER (2 + 1 pad + field). */
#define EC_DER_MAX(field) (2 * (field) + 9)

luna_err luna_ecdsa_p1363_to_der(luna_ec_curve curve, const uint8_t *sig, size_t sig_len,
                                 uint8_t *out, size_t out_cap, size_t *out_len)
{
    const ec_params *ec = ec_lookup(curve);
    ECDSA_SIG *esig = NULL;
    BIGNUM *r = NULL;
    BIGNUM *s = NULL;
    unsigned char *p = out;
    int der_len;
    luna_err err = LUNA_OK;

    if (ec == NULL || sig == NULL || out == NULL || out_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out_len = 0;
    if (sig_len != 2 * ec->field_len)
        return LUNA_ERR_FORMAT;
    if (out_cap < EC_DER_MAX(ec->field_len))
        return LUNA_ERR_INVALID_ARG;
    err_enter();
    esig = ECDSA_SIG_new();
    r = BN_bin2bn(sig, (int)ec->field_len, NULL);
    s = BN_bin2bn(sig + ec->field_len, (int)ec->field_len, NULL);
    LUNA_TRY_ENSURE(esig != NULL && r != NULL && s != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY_ENSURE(ECDSA_SIG_set0(esig, r, s) == 1, LUNA_ERR_CRYPTO, done);
    r = s = NULL; /* owned by esig now */
    der_len = i2d_ECDSA_SIG(esig, NULL);
    LUNA_TRY_ENSURE(der_len > 0 && (size_t)der_len <= out_cap, LUNA_ERR_INTERNAL, done);
    LUNA_TRY_ENSURE(i2d_ECDSA_SIG(esig, &p) == der_len, LUNA_ERR_CRYPTO, done);
    *out_len = (size_t)der_len;
done:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(esig);
    return err_leave(err);
}

/* EVP_PKEY for an uncompressed SEC1 point; fromdata checks it is on the curve. */
static luna_err ec_load_pub(const ec_params *ec, const uint8_t *pub, size_t pub_len,
                            EVP_PKEY **out)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY_CTX *check = NULL;
    OSSL_PARAM params[3];
    luna_err err = LUNA_OK;

    *out = NULL;
    if (pub_len != 1 + 2 * ec->field_len || pub[0] != 0x04)
        return LUNA_ERR_FORMAT;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)(uintptr_t)ec->group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  (void *)(uintptr_t)pub, pub_len);
    params[2] = OSSL_PARAM_construct_end();

    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    LUNA_TRY_ENSURE(ctx != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY_ENSURE(EVP_PKEY_fromdata_init(ctx) == 1, LUNA_ERR_CRYPTO, done);
    LUNA_TRY_ENSURE(EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1,
                    LUNA_ERR_FORMAT, done);
    /* Cheap explicit check (coordinates in range, on curve, not infinity). */
    check = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);
    LUNA_TRY_ENSURE(check != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY_ENSURE(EVP_PKEY_public_check_quick(check) == 1, LUNA_ERR_FORMAT, done);
done:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    if (err != LUNA_OK) {
        EVP_PKEY_free(*out);
        *out = NULL;
    }
    return err;
}

/*
 * Strict DER: the signature must parse as SEQUENCE { INTEGER r, INTEGER s }
 * and re-encode to exactly the same bytes, which refuses BER, non-minimal
 * lengths and integers, and trailing data.
 */
static luna_err ec_check_der(const uint8_t *sig, size_t sig_len)
{
    const unsigned char *p = sig;
    unsigned char *re = NULL;
    ECDSA_SIG *esig;
    int re_len;
    luna_err err = LUNA_OK;

    if (sig_len == 0 || sig_len > LONG_MAX)
        return LUNA_ERR_FORMAT;
    esig = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
    if (esig == NULL || (size_t)(p - sig) != sig_len)
        err = LUNA_ERR_FORMAT;
    if (err == LUNA_OK) {
        re_len = i2d_ECDSA_SIG(esig, &re);
        if (re_len <= 0 || (size_t)re_len != sig_len || memcmp(re, sig, sig_len) != 0)
            err = LUNA_ERR_FORMAT;
    }
    OPENSSL_free(re);
    ECDSA_SIG_free(esig);
    return err;
}

luna_err luna_ecdsa_verify_digest(luna_ec_curve curve, const uint8_t *pub, size_t pub_len,
                                  luna_sig_format fmt, const uint8_t *digest, size_t digest_len,
                                  const uint8_t *sig, size_t sig_len)
{
    const ec_params *ec = ec_lookup(curve);
    uint8_t der[EC_DER_MAX(48)];
    const uint8_t *der_sig = sig;
    size_t der_len = sig_len;
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    luna_err err = LUNA_OK;

    if (ec == NULL || pub == NULL || digest == NULL || digest_len != luna_hash_len(ec->hash))
        return LUNA_ERR_INVALID_ARG;
    if (fmt != LUNA_SIG_DER && fmt != LUNA_SIG_P1363)
        return LUNA_ERR_INVALID_ARG;
    if (sig == NULL)
        return LUNA_ERR_FORMAT;
    err_enter();
    if (fmt == LUNA_SIG_P1363) {
        LUNA_TRY(luna_ecdsa_p1363_to_der(curve, sig, sig_len, der, sizeof(der), &der_len), done);
        der_sig = der;
    } else {
        LUNA_TRY(ec_check_der(sig, sig_len), done);
    }
    LUNA_TRY(ec_load_pub(ec, pub, pub_len, &key), done);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    LUNA_TRY_ENSURE(ctx != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY_ENSURE(EVP_PKEY_verify_init(ctx) == 1, LUNA_ERR_CRYPTO, done);
    LUNA_TRY_ENSURE(EVP_PKEY_CTX_set_signature_md(ctx, hash_md(ec->hash)) == 1, LUNA_ERR_CRYPTO,
                    done);
    /* 1 is the only success; 0 (bad signature) and <0 (r or s out of range) both fail. */
    LUNA_TRY_ENSURE(EVP_PKEY_verify(ctx, der_sig, der_len, digest, digest_len) == 1,
                    LUNA_ERR_VERIFY, done);
done:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    return err_leave(err);
}

luna_err luna_ecdsa_verify(luna_ec_curve curve, const uint8_t *pub, size_t pub_len,
                           luna_sig_format fmt, const uint8_t *msg, size_t msg_len,
                           const uint8_t *sig, size_t sig_len)
{
    const ec_params *ec = ec_lookup(curve);
    uint8_t digest[LUNA_HASH_MAX_LEN];

    if (ec == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_hash_digest(ec->hash, msg, msg_len, digest));
    return luna_ecdsa_verify_digest(curve, pub, pub_len, fmt, digest, luna_hash_len(ec->hash),
                                    sig, sig_len);
}
