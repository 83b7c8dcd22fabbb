/*
 * tpm_credential.c - AK-to-EK binding, verifier side (luna/tpm.h): the
 * bounded TPMT_PUBLIC parser, object Names, the attestation-key attribute
 * check, the EK certificate check and TPM2_MakeCredential in software.
 *
 * It must never trust an AK whose challenge was not answered, never hand
 * out the challenge secret, never compare it in variable time, and never
 * accept an EK that does not chain to a configured manufacturer root.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/evidence_hw.h"
#include "luna/secret.h"
#include "luna/tpm.h"
#include "verifier_hw.h"

#define ALG_NULL 0x0010u
#define ALG_AES 0x0006u
#define ALG_CFB 0x0043u
#define ALG_RSASSA 0x0014u
#define ALG_RSAES 0x0015u
#define ALG_RSAPSS 0x0016u
#define ALG_OAEP 0x0017u
#define ALG_ECDSA 0x0018u
#define ALG_ECDH 0x0019u
#define CURVE_P256 0x0003u
#define CURVE_P384 0x0004u
#define RSA_UNIQUE_MAX 512u
#define ECC_COORD_MAX 66u
/* TPMA_OBJECT bits 0, 3, 8, 9, 12..15, 20..31 are reserved (Part 2, 8.3). */
#define TPMA_RESERVED 0xFFF0F309u
#define TPMA_X509_SIGN (1u << 19)
#define EK_SEED_LEN 32u   /* SHA-256, the L-1 EK's nameAlg */
#define EK_AES_BITS 128u  /* L-1: AES-128-CFB */

struct luna_tpm_enrol {
    luna_secret *credential;
    uint8_t id_object[LUNA_TPM_ID_OBJECT_MAX];
    size_t id_len;
    uint8_t enc_secret[LUNA_TPM_ENC_SECRET_MAX];
    size_t sec_len;
    uint8_t name[LUNA_TPM_NAME_MAX];
    size_t name_len;
    EVP_PKEY *ak;
    bool spent;
    bool activated; /* the one answer was right */
};

static size_t digest_len(uint16_t alg)
{
    switch (alg) {
    case LUNA_TPM_ALG_SHA256: return 32;
    case LUNA_TPM_ALG_SHA384: return 48;
    case LUNA_TPM_ALG_SHA512: return 64;
    default: return 0;
    }
}

static luna_err read_2b(luna_reader *r, size_t max, const uint8_t **p, size_t *n)
{
    uint16_t len = 0;
    LUNA_GUARD(luna_read_u16(r, &len));
    LUNA_ENSURE(len <= max, LUNA_ERR_FORMAT);
    *n = len;
    return luna_read_view(r, p, len);
}

/* TPMT_SYM_DEF_OBJECT: algorithm, then keyBits and mode unless NULL. */
static luna_err read_symmetric(luna_reader *r, luna_tpm_public *o)
{
    LUNA_GUARD(luna_read_u16(r, &o->sym_alg));
    if (o->sym_alg == ALG_NULL)
        return LUNA_OK;
    LUNA_ENSURE(o->sym_alg == ALG_AES, LUNA_ERR_UNSUPPORTED);
    LUNA_GUARD(luna_read_u16(r, &o->sym_bits));
    return luna_read_u16(r, &o->sym_mode);
}

static luna_err read_rsa(luna_reader *r, luna_tpm_public *o)
{
    LUNA_GUARD(read_symmetric(r, o));
    LUNA_GUARD(luna_read_u16(r, &o->scheme));
    switch (o->scheme) {
    case ALG_NULL:
    case ALG_RSAES: /* TPMS_ENC_SCHEME_RSAES is empty */
        break;
    case ALG_RSASSA:
    case ALG_RSAPSS:
    case ALG_OAEP:
        LUNA_GUARD(luna_read_u16(r, &o->scheme_hash));
        break;
    default:
        return LUNA_ERR_UNSUPPORTED;
    }
    LUNA_GUARD(luna_read_u16(r, &o->rsa_bits));
    LUNA_GUARD(luna_read_u32(r, &o->rsa_exponent));
    return read_2b(r, RSA_UNIQUE_MAX, &o->unique_x, &o->unique_x_len);
}

static luna_err read_ecc(luna_reader *r, luna_tpm_public *o)
{
    LUNA_GUARD(read_symmetric(r, o));
    LUNA_GUARD(luna_read_u16(r, &o->scheme));
    switch (o->scheme) {
    case ALG_NULL:
        break;
    case ALG_ECDSA:
    case ALG_ECDH:
        LUNA_GUARD(luna_read_u16(r, &o->scheme_hash));
        break;
    default: /* ECDAA carries a count, SM2/ECSCHNORR are not verified here */
        return LUNA_ERR_UNSUPPORTED;
    }
    LUNA_GUARD(luna_read_u16(r, &o->curve));
    LUNA_GUARD(luna_read_u16(r, &o->kdf));
    LUNA_ENSURE(o->kdf == ALG_NULL, LUNA_ERR_UNSUPPORTED);
    LUNA_GUARD(read_2b(r, ECC_COORD_MAX, &o->unique_x, &o->unique_x_len));
    return read_2b(r, ECC_COORD_MAX, &o->unique_y, &o->unique_y_len);
}

luna_err luna_tpm_public_parse(const uint8_t *buf, size_t len, luna_tpm_public *out)
{
    luna_reader r;
    luna_tpm_public o;

    if (buf == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (len > LUNA_TPM_PUBLIC_MAX)
        return LUNA_ERR_TOO_LARGE;
    memset(&o, 0, sizeof(o));
    luna_reader_init(&r, buf, len);
    LUNA_GUARD(luna_read_u16(&r, &o.type));
    LUNA_GUARD(luna_read_u16(&r, &o.name_alg));
    LUNA_GUARD(luna_read_u32(&r, &o.attributes));
    LUNA_GUARD(read_2b(&r, LUNA_HASH_MAX_LEN, &o.auth_policy, &o.auth_policy_len));
    LUNA_ENSURE((o.attributes & TPMA_RESERVED) == 0, LUNA_ERR_FORMAT);
    /* The Name hashes these bytes with nameAlg: it must be one we have. */
    LUNA_ENSURE(digest_len(o.name_alg) != 0, LUNA_ERR_UNSUPPORTED);
    if (o.type == LUNA_TPM_ALG_RSA)
        LUNA_GUARD(read_rsa(&r, &o));
    else if (o.type == LUNA_TPM_ALG_ECC)
        LUNA_GUARD(read_ecc(&r, &o));
    else
        return LUNA_ERR_UNSUPPORTED;
    LUNA_GUARD(luna_read_end(&r));
    *out = o;
    return LUNA_OK;
}

luna_err luna_tpm_public_name(const uint8_t *buf, size_t len, const luna_tpm_public *pub,
                              uint8_t name[LUNA_TPM_NAME_MAX], size_t *name_len)
{
    luna_hash h;
    if (buf == NULL || pub == NULL || name == NULL || name_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    switch (pub->name_alg) {
    case LUNA_TPM_ALG_SHA256: h = LUNA_HASH_SHA256; break;
    case LUNA_TPM_ALG_SHA384: h = LUNA_HASH_SHA384; break;
    case LUNA_TPM_ALG_SHA512: h = LUNA_HASH_SHA512; break;
    default: return LUNA_ERR_UNSUPPORTED;
    }
    name[0] = (uint8_t)(pub->name_alg >> 8);
    name[1] = (uint8_t)pub->name_alg;
    LUNA_GUARD(luna_hash_digest(h, buf, len, name + 2));
    *name_len = 2 + luna_hash_len(h);
    return LUNA_OK;
}

luna_err luna_tpm_ak_check(const luna_tpm_public *p)
{
    const uint32_t need = LUNA_TPMA_FIXED_TPM | LUNA_TPMA_FIXED_PARENT |
                          LUNA_TPMA_SENSITIVE_DATA_ORIGIN | LUNA_TPMA_RESTRICTED | LUNA_TPMA_SIGN;
    if (p == NULL)
        return LUNA_ERR_INVALID_ARG;
    /* A restricted signing key signs only TPM-generated structures (a
       quote cannot be forged with it); fixedTPM/fixedParent keep it from
       being duplicated out; sensitiveDataOrigin: the TPM made the key. */
    if ((p->attributes & need) != need ||
        (p->attributes & (LUNA_TPMA_DECRYPT | TPMA_X509_SIGN)) != 0)
        return LUNA_ERR_PERMISSION;
    LUNA_ENSURE(p->sym_alg == ALG_NULL, LUNA_ERR_PERMISSION);
    LUNA_ENSURE(digest_len(p->name_alg) != 0, LUNA_ERR_UNSUPPORTED);
    if (p->type == LUNA_TPM_ALG_RSA) {
        LUNA_ENSURE(p->scheme == ALG_RSASSA || p->scheme == ALG_RSAPSS, LUNA_ERR_UNSUPPORTED);
        LUNA_ENSURE(digest_len(p->scheme_hash) != 0, LUNA_ERR_UNSUPPORTED);
        LUNA_ENSURE(p->rsa_bits >= LUNA_RSA_MIN_BITS && p->rsa_bits <= LUNA_RSA_MAX_BITS &&
                        p->rsa_bits % 8 == 0,
                    LUNA_ERR_UNSUPPORTED);
        LUNA_ENSURE(p->rsa_exponent == 0 || p->rsa_exponent == 65537u, LUNA_ERR_UNSUPPORTED);
        LUNA_ENSURE(p->unique_x_len == (size_t)p->rsa_bits / 8, LUNA_ERR_FORMAT);
        return LUNA_OK;
    }
    LUNA_ENSURE(p->scheme == ALG_ECDSA, LUNA_ERR_UNSUPPORTED);
    if (p->curve == CURVE_P256)
        LUNA_ENSURE(p->scheme_hash == LUNA_TPM_ALG_SHA256, LUNA_ERR_UNSUPPORTED);
    else if (p->curve == CURVE_P384)
        LUNA_ENSURE(p->scheme_hash == LUNA_TPM_ALG_SHA384, LUNA_ERR_UNSUPPORTED);
    else
        return LUNA_ERR_UNSUPPORTED;
    return LUNA_OK;
}

static luna_err rsa_key(const luna_tpm_public *p, EVP_PKEY **out)
{
    luna_err err = LUNA_ERR_CRYPTO;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *n = BN_bin2bn(p->unique_x, (int)p->unique_x_len, NULL);
    BIGNUM *e = BN_new();

    if (bld == NULL || n == NULL || e == NULL ||
        BN_set_word(e, p->rsa_exponent == 0 ? 65537u : p->rsa_exponent) != 1)
        goto out;
    /* A modulus with a leading zero byte is not the size it claims. */
    if (BN_num_bytes(n) != (int)p->unique_x_len) {
        err = LUNA_ERR_FORMAT;
        goto out;
    }
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    err = LUNA_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return err;
}

static luna_err ec_key(const luna_tpm_public *p, EVP_PKEY **out)
{
    uint8_t pt[1 + 2 * 48];
    size_t field = p->curve == CURVE_P256 ? 32 : p->curve == CURVE_P384 ? 48 : 0;
    const char *group = p->curve == CURVE_P256 ? "prime256v1" : "secp384r1";
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY_CTX *chk = NULL;
    luna_err err = LUNA_ERR_FORMAT;

    if (field == 0)
        return LUNA_ERR_UNSUPPORTED;
    if (p->unique_x_len == 0 || p->unique_x_len > field || p->unique_y_len == 0 ||
        p->unique_y_len > field)
        return LUNA_ERR_FORMAT;
    memset(pt, 0, sizeof(pt));
    pt[0] = 0x04;
    memcpy(pt + 1 + field - p->unique_x_len, p->unique_x, p->unique_x_len);
    memcpy(pt + 1 + 2 * field - p->unique_y_len, p->unique_y, p->unique_y_len);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * field),
        OSSL_PARAM_construct_end(),
    };
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    /* fromdata does not promise the point is on the curve. */
    chk = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);
    if (chk == NULL || EVP_PKEY_public_check(chk) != 1) {
        EVP_PKEY_free(*out);
        *out = NULL;
        goto out;
    }
    err = LUNA_OK;
out:
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    return err;
}

luna_err luna_tpm_public_key(const luna_tpm_public *pub, EVP_PKEY **out)
{
    if (pub == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (pub->type == LUNA_TPM_ALG_RSA) {
        LUNA_ENSURE(pub->unique_x_len >= 256 && pub->unique_x_len <= 512, LUNA_ERR_FORMAT);
        return rsa_key(pub, out);
    }
    if (pub->type == LUNA_TPM_ALG_ECC)
        return ec_key(pub, out);
    return LUNA_ERR_UNSUPPORTED;
}

/* ---- MakeCredential ---- */

luna_err luna_tpm_kdfa_sha256(const uint8_t *key, size_t key_len, const char *label,
                              const uint8_t *context_u, size_t u_len, const uint8_t *context_v,
                              size_t v_len, uint8_t *out, size_t out_len)
{
    uint8_t msg[4 + 32 + LUNA_TPM_NAME_MAX * 2 + 4];
    uint8_t block[LUNA_SHA256_LEN];
    luna_wbuf w;
    luna_err err = LUNA_OK;
    size_t label_len;

    if (key == NULL || label == NULL || out == NULL || out_len == 0 || out_len > 1024 ||
        (context_u == NULL && u_len != 0) || (context_v == NULL && v_len != 0) ||
        u_len > LUNA_TPM_NAME_MAX || v_len > LUNA_TPM_NAME_MAX)
        return LUNA_ERR_INVALID_ARG;
    label_len = strlen(label) + 1; /* the terminating NUL is hashed */
    if (label_len > 32)
        return LUNA_ERR_INVALID_ARG;
    for (uint32_t i = 1, done = 0; done < out_len; i++) {
        luna_wbuf_init(&w, msg, sizeof(msg));
        LUNA_TRY(luna_write_u32(&w, i), out);
        LUNA_TRY(luna_write_bytes(&w, label, label_len), out);
        LUNA_TRY(luna_write_bytes(&w, context_u, u_len), out);
        LUNA_TRY(luna_write_bytes(&w, context_v, v_len), out);
        LUNA_TRY(luna_write_u32(&w, (uint32_t)(out_len * 8)), out);
        LUNA_TRY(luna_hmac(LUNA_HASH_SHA256, key, key_len, w.data, w.len, block), out);
        size_t take = out_len - done < sizeof(block) ? out_len - done : sizeof(block);
        memcpy(out + done, block, take);
        done += (uint32_t)take;
    }
out:
    luna_wipe(block, sizeof(block));
    luna_wipe(msg, sizeof(msg));
    if (err != LUNA_OK)
        luna_wipe(out, out_len);
    return err;
}

static luna_err oaep_encrypt(EVP_PKEY *ek, const uint8_t *seed, size_t seed_len, uint8_t *out,
                             size_t cap, size_t *out_len)
{
    static const char label[] = "IDENTITY"; /* sizeof includes the NUL: 9 bytes */
    luna_err err = LUNA_ERR_CRYPTO;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL);
    unsigned char *lab = OPENSSL_memdup(label, sizeof(label));
    size_t n = cap;

    if (ctx == NULL || lab == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1)
        goto out;
    if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, lab, (int)sizeof(label)) != 1)
        goto out;
    lab = NULL; /* owned by ctx now */
    if (EVP_PKEY_encrypt(ctx, out, &n, seed, seed_len) != 1)
        goto out;
    *out_len = n;
    err = LUNA_OK;
out:
    OPENSSL_free(lab);
    EVP_PKEY_CTX_free(ctx);
    return err;
}

static luna_err aes128_cfb(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t *out)
{
    static const uint8_t iv[16] = {0}; /* Part 1, 24.4: IV of zero, the key is single use */
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    luna_err err = LUNA_ERR_CRYPTO;
    if (c != NULL && EVP_EncryptInit_ex(c, EVP_aes_128_cfb128(), NULL, key, iv) == 1 &&
        EVP_EncryptUpdate(c, out, &n1, in, (int)len) == 1 &&
        EVP_EncryptFinal_ex(c, out + n1, &n2) == 1 && (size_t)(n1 + n2) == len)
        err = LUNA_OK;
    EVP_CIPHER_CTX_free(c);
    return err;
}

luna_err luna_tpm_make_credential(EVP_PKEY *ek, const uint8_t *name, size_t name_len,
                                  const uint8_t *credential, size_t credential_len,
                                  uint8_t *id_object, size_t id_cap, size_t *id_len,
                                  uint8_t *enc_secret, size_t sec_cap, size_t *sec_len)
{
    uint8_t seed[EK_SEED_LEN], sym[EK_AES_BITS / 8], hkey[LUNA_SHA256_LEN];
    uint8_t plain[2 + 64], enc[2 + 64], mac_in[2 + 64 + LUNA_TPM_NAME_MAX];
    uint8_t tag[LUNA_SHA256_LEN], rsa_out[512];
    size_t rsa_len = 0, plain_len = 2 + credential_len;
    luna_wbuf w;
    luna_err err;

    if (ek == NULL || name == NULL || name_len < 2 || name_len > LUNA_TPM_NAME_MAX ||
        credential == NULL || credential_len == 0 || credential_len > 64 || id_object == NULL ||
        id_len == NULL || enc_secret == NULL || sec_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (!EVP_PKEY_is_a(ek, "RSA") || EVP_PKEY_get_bits(ek) != 2048)
        return LUNA_ERR_UNSUPPORTED;
    LUNA_TRY(luna_random(seed, sizeof(seed)), out);
    LUNA_TRY(oaep_encrypt(ek, seed, sizeof(seed), rsa_out, sizeof(rsa_out), &rsa_len), out);
    LUNA_TRY(luna_tpm_kdfa_sha256(seed, sizeof(seed), "STORAGE", name, name_len, NULL, 0, sym,
                                  sizeof(sym)),
             out);
    LUNA_TRY(luna_tpm_kdfa_sha256(seed, sizeof(seed), "INTEGRITY", NULL, 0, NULL, 0, hkey,
                                  sizeof(hkey)),
             out);
    /* encIdentity = CFB(TPM2B_DIGEST credential), size prefix included. */
    plain[0] = (uint8_t)(credential_len >> 8);
    plain[1] = (uint8_t)credential_len;
    memcpy(plain + 2, credential, credential_len);
    LUNA_TRY(aes128_cfb(sym, plain, plain_len, enc), out);
    /* outerHMAC = HMAC(hmacKey, encIdentity || Name) (Part 1, 23.5). */
    memcpy(mac_in, enc, plain_len);
    memcpy(mac_in + plain_len, name, name_len);
    LUNA_TRY(luna_hmac(LUNA_HASH_SHA256, hkey, sizeof(hkey), mac_in, plain_len + name_len, tag),
             out);
    /* TPM2B_ID_OBJECT { size, TPM2B_DIGEST integrityHMAC || encIdentity }. */
    luna_wbuf_init(&w, id_object, id_cap < LUNA_TPM_ID_OBJECT_MAX ? id_cap : LUNA_TPM_ID_OBJECT_MAX);
    LUNA_TRY(luna_write_u16(&w, (uint16_t)(2 + sizeof(tag) + plain_len)), out);
    LUNA_TRY(luna_write_u16(&w, (uint16_t)sizeof(tag)), out);
    LUNA_TRY(luna_write_bytes(&w, tag, sizeof(tag)), out);
    LUNA_TRY(luna_write_bytes(&w, enc, plain_len), out);
    *id_len = w.len;
    luna_wbuf_init(&w, enc_secret, sec_cap);
    LUNA_TRY(luna_write_u16(&w, (uint16_t)rsa_len), out);
    LUNA_TRY(luna_write_bytes(&w, rsa_out, rsa_len), out);
    *sec_len = w.len;
out:
    luna_wipe(seed, sizeof(seed));
    luna_wipe(sym, sizeof(sym));
    luna_wipe(hkey, sizeof(hkey));
    luna_wipe(plain, sizeof(plain));
    luna_wipe(mac_in, sizeof(mac_in));
    return err;
}

/* ---- EK certificate ---- */

static luna_err ek_cert_check(const uint8_t *der, size_t len, const luna_tpm_ek_trust *t,
                              EVP_PKEY **ek, const char **why)
{
    const unsigned char *p = der;
    X509 *cert = NULL;
    EXTENDED_KEY_USAGE *eku = NULL;
    ASN1_OBJECT *ek_oid = NULL;
    luna_err err = LUNA_ERR_FORMAT;
    BIGNUM *e = NULL;
    int crit = 0;

    *why = "EK certificate is not one DER certificate";
    if (len == 0 || len > LUNA_TPM_EK_CERT_MAX)
        return LUNA_ERR_FORMAT;
    cert = d2i_X509(NULL, &p, (long)len);
    if (cert == NULL || p != der + len)
        goto out;
    luna_hw_chain_opts o = {.anchors = t->anchors,
                            .n_anchors = t->n_anchors,
                            .untrusted = t->intermediates,
                            .n_untrusted = t->n_intermediates,
                            .check_crls = false,
                            .now = t->now};
    luna_verify_reason r = luna_hw_verify_chain(cert, &o, NULL, NULL, why);
    switch (r) {
    case LUNA_VERIFY_OK: break;
    case LUNA_VERIFY_UNKNOWN_ROOT: err = LUNA_ERR_UNAUTHENTICATED; goto out;
    case LUNA_VERIFY_CERT_EXPIRED: err = LUNA_ERR_EXPIRED; goto out;
    case LUNA_VERIFY_INTERNAL: err = LUNA_ERR_NOMEM; goto out;
    default: err = LUNA_ERR_VERIFY; goto out;
    }
    /* The EK decrypts the credential seed: key encipherment. */
    if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0 ||
        (X509_get_key_usage(cert) & KU_KEY_ENCIPHERMENT) == 0) {
        *why = "EK certificate does not allow key encipherment";
        err = LUNA_ERR_PERMISSION;
        goto out;
    }
    eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL);
    if (eku == NULL && crit != -1) {
        *why = "EK certificate extended key usage is unreadable";
        goto out;
    }
    if (eku != NULL) {
        bool found = false;
        ek_oid = OBJ_txt2obj("2.23.133.8.1", 1);
        for (int i = 0; ek_oid != NULL && i < sk_ASN1_OBJECT_num(eku) && !found; i++)
            found = OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), ek_oid) == 0;
        if (!found) {
            *why = "EK certificate is not for tcg-kp-EKCertificate";
            err = LUNA_ERR_PERMISSION;
            goto out;
        }
    }
    EVP_PKEY *k = X509_get0_pubkey(cert);
    if (k == NULL || !EVP_PKEY_is_a(k, "RSA") || EVP_PKEY_get_bits(k) != 2048 ||
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) != 1 || !BN_is_word(e, 65537)) {
        *why = "EK is not an RSA-2048 key of the default template";
        err = LUNA_ERR_UNSUPPORTED;
        goto out;
    }
    if (EVP_PKEY_up_ref(k) != 1) {
        err = LUNA_ERR_CRYPTO;
        goto out;
    }
    *ek = k;
    err = LUNA_OK;
out:
    BN_free(e);
    ASN1_OBJECT_free(ek_oid);
    EXTENDED_KEY_USAGE_free(eku);
    X509_free(cert);
    return err;
}

/* ---- enrolment ---- */

luna_err luna_tpm_enrol_begin(const uint8_t *ek_cert, size_t ek_cert_len,
                              const uint8_t *ak_public, size_t ak_public_len,
                              const luna_tpm_ek_trust *trust, luna_tpm_enrol **out,
                              const char **why)
{
    const char *dummy = NULL;
    luna_tpm_enrol *e = NULL;
    EVP_PKEY *ek = NULL;
    luna_tpm_public pub;
    luna_err err;

    if (why == NULL)
        why = &dummy;
    *why = "invalid argument";
    if (ek_cert == NULL || ak_public == NULL || trust == NULL || out == NULL ||
        trust->anchors == NULL || trust->n_anchors == 0 || trust->now <= 0 ||
        (trust->intermediates == NULL && trust->n_intermediates != 0))
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return LUNA_ERR_NOMEM;
    *why = "AK public area is malformed";
    LUNA_TRY(luna_tpm_public_parse(ak_public, ak_public_len, &pub), out);
    *why = "AK is not a restricted, fixedTPM signing key of a supported algorithm";
    LUNA_TRY(luna_tpm_ak_check(&pub), out);
    *why = "AK public key is unusable";
    LUNA_TRY(luna_tpm_public_key(&pub, &e->ak), out);
    LUNA_TRY(luna_tpm_public_name(ak_public, ak_public_len, &pub, e->name, &e->name_len), out);
    LUNA_TRY(ek_cert_check(ek_cert, ek_cert_len, trust, &ek, why), out);
    *why = "could not make the credential challenge";
    LUNA_TRY(luna_secret_new(LUNA_TPM_CREDENTIAL_LEN, &e->credential), out);
    LUNA_TRY(luna_random(luna_secret_data(e->credential), LUNA_TPM_CREDENTIAL_LEN), out);
    LUNA_TRY(luna_tpm_make_credential(ek, e->name, e->name_len,
                                      luna_secret_cdata(e->credential), LUNA_TPM_CREDENTIAL_LEN,
                                      e->id_object, sizeof(e->id_object), &e->id_len,
                                      e->enc_secret, sizeof(e->enc_secret), &e->sec_len),
             out);
    *why = "ok";
    *out = e;
    e = NULL;
out:
    EVP_PKEY_free(ek);
    luna_tpm_enrol_free(e);
    return err;
}

void luna_tpm_enrol_challenge(const luna_tpm_enrol *e, const uint8_t **id_object, size_t *id_len,
                              const uint8_t **enc_secret, size_t *sec_len)
{
    if (e == NULL || id_object == NULL || id_len == NULL || enc_secret == NULL || sec_len == NULL)
        return;
    *id_object = e->id_object;
    *id_len = e->id_len;
    *enc_secret = e->enc_secret;
    *sec_len = e->sec_len;
}

const uint8_t *luna_tpm_enrol_ak_name(const luna_tpm_enrol *e, size_t *len)
{
    if (e == NULL || len == NULL)
        return NULL;
    *len = e->name_len;
    return e->name;
}

luna_err luna_tpm_enrol_finish(luna_tpm_enrol *e, const uint8_t *answer, size_t answer_len,
                               EVP_PKEY **ak)
{
    if (e == NULL || answer == NULL || ak == NULL)
        return LUNA_ERR_INVALID_ARG;
    *ak = NULL;
    if (e->spent)
        return LUNA_ERR_CONFLICT;
    /* One answer per challenge, right or wrong: no second guess. */
    e->spent = true;
    if (answer_len != LUNA_TPM_CREDENTIAL_LEN ||
        !luna_ct_equal(answer, luna_secret_cdata(e->credential), LUNA_TPM_CREDENTIAL_LEN))
        return LUNA_ERR_VERIFY;
    if (EVP_PKEY_up_ref(e->ak) != 1)
        return LUNA_ERR_CRYPTO;
    e->activated = true;
    *ak = e->ak;
    return LUNA_OK;
}

bool luna_tpm_enrol_activated(const luna_tpm_enrol *e)
{
    return e != NULL && e->activated;
}

EVP_PKEY *luna_tpm_enrol_ak(const luna_tpm_enrol *e)
{
    return e != NULL && e->activated ? e->ak : NULL;
}

void luna_tpm_enrol_free(luna_tpm_enrol *e)
{
    if (e == NULL)
        return;
    luna_secret_free(e->credential);
    EVP_PKEY_free(e->ak);
    luna_wipe(e, sizeof(*e));
    free(e);
}
