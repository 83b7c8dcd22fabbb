/*
 * crypto_rsa.c - RSA signature verification for the platform's wrappers
 * (luna/crypto.h): TPM attestation keys sign quotes with RSASSA-PKCS1-v1_5
 * or RSASSA-PSS.  Verification only; the platform never signs with RSA.
 *
 * It must never accept a key under LUNA_RSA_MIN_BITS, a hash other than
 * the SHA-2 family, or trailing bytes after the key's DER.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "luna/crypto.h"

static const EVP_MD *md_of(luna_hash h)
{
    switch (h) {
    case LUNA_HASH_SHA256: return EVP_sha256();
    case LUNA_HASH_SHA384: return EVP_sha384();
    case LUNA_HASH_SHA512: return EVP_sha512();
    }
    return NULL;
}

luna_err luna_rsa_verify(const uint8_t *spki, size_t spki_len, luna_rsa_padding pad, luna_hash h,
                         const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    luna_err err = LUNA_ERR_CRYPTO;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    const unsigned char *p = spki;
    const EVP_MD *md = md_of(h);

    if (spki == NULL || (msg == NULL && msg_len != 0) || sig == NULL || md == NULL ||
        (pad != LUNA_RSA_PKCS1 && pad != LUNA_RSA_PSS) || spki_len > 4096)
        return LUNA_ERR_INVALID_ARG;
    key = d2i_PUBKEY(NULL, &p, (long)spki_len);
    if (key == NULL || p != spki + spki_len || !EVP_PKEY_is_a(key, "RSA") ||
        EVP_PKEY_get_bits(key) < LUNA_RSA_MIN_BITS || EVP_PKEY_get_bits(key) > LUNA_RSA_MAX_BITS) {
        err = LUNA_ERR_FORMAT;
        goto out;
    }
    if (sig_len != (size_t)EVP_PKEY_get_size(key)) {
        err = LUNA_ERR_VERIFY;
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key) != 1)
        goto out;
    if (pad == LUNA_RSA_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1))
        goto out;
    if (pad == LUNA_RSA_PKCS1 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
        goto out;
    err = EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1 ? LUNA_OK : LUNA_ERR_VERIFY;
out:
    if (err != LUNA_OK)
        ERR_clear_error(); /* no stale error left for the next caller */
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return err;
}
