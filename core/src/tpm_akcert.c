/*
 * tpm_akcert.c - the AK enrolment CA of luna/tpm.h: turns a successful
 * MakeCredential/ActivateCredential challenge into an X.509 certificate
 * for the AK (and the CA's CRL), which the shared verifier's "tpm"
 * backend checks against the CA as its anchor; and the qualified name a
 * quote of such an AK carries.
 *
 * It must never certify an AK whose challenge was not answered, never
 * issue a CA-capable or non-signing AK certificate, and never keep the
 * CA key beyond the call.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/tpm.h"
#include "verifier_hw.h"

#define TPM_RH_ENDORSEMENT 0x4000000Bu
#define SERIAL_LEN 16

static luna_err set_times(X509 *c, int64_t nb, int64_t na)
{
    if (ASN1_TIME_set(X509_getm_notBefore(c), (time_t)nb) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(c), (time_t)na) == NULL)
        return LUNA_ERR_CRYPTO;
    return LUNA_OK;
}

static luna_err set_serial(X509 *c)
{
    uint8_t b[SERIAL_LEN];
    LUNA_GUARD(luna_random(b, sizeof(b)));
    b[0] &= 0x7f; /* positive */
    b[0] |= 0x01; /* and exactly SERIAL_LEN bytes */
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    luna_err err = LUNA_ERR_CRYPTO;
    if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) != NULL)
        err = LUNA_OK;
    BN_free(bn);
    return err;
}

static luna_err add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    luna_err err = ext != NULL && X509_add_ext(c, ext, -1) == 1 ? LUNA_OK : LUNA_ERR_CRYPTO;
    X509_EXTENSION_free(ext);
    return err;
}

static luna_err set_cn(X509_NAME *n, const char *cn)
{
    return X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Lunal", -1,
                                      -1, 0) == 1 &&
                   X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                                              -1, -1, 0) == 1
               ? LUNA_OK
               : LUNA_ERR_CRYPTO;
}

luna_err luna_tpm_akca_create(int64_t not_before, int64_t not_after, EVP_PKEY **key,
                              X509 **cert)
{
    luna_err err;
    EVP_PKEY *k = NULL;
    X509 *c = NULL;

    if (key == NULL || cert == NULL || not_before >= not_after)
        return LUNA_ERR_INVALID_ARG;
    *key = NULL;
    *cert = NULL;
    k = EVP_EC_gen("P-256");
    c = X509_new();
    LUNA_TRY_ENSURE(k != NULL && c != NULL && X509_set_version(c, 2) == 1, LUNA_ERR_CRYPTO, out);
    LUNA_TRY(set_serial(c), out);
    LUNA_TRY(set_times(c, not_before, not_after), out);
    LUNA_TRY(set_cn(X509_get_subject_name(c), "Lunal TPM AK enrolment CA"), out);
    LUNA_TRY_ENSURE(X509_set_issuer_name(c, X509_get_subject_name(c)) == 1 &&
                        X509_set_pubkey(c, k) == 1,
                    LUNA_ERR_CRYPTO, out);
    LUNA_TRY(add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"), out);
    LUNA_TRY(add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"), out);
    LUNA_TRY(add_ext(c, c, NID_subject_key_identifier, "hash"), out);
    LUNA_TRY_ENSURE(X509_sign(c, k, EVP_sha256()) > 0, LUNA_ERR_CRYPTO, out);
    *key = k;
    *cert = c;
    k = NULL;
    c = NULL;
out:
    EVP_PKEY_free(k);
    X509_free(c);
    return err;
}

luna_err luna_tpm_akca_certify(const luna_tpm_enrol *e, EVP_PKEY *ca_key, X509 *ca_cert,
                               int64_t not_before, int64_t not_after, X509 **out)
{
    char cn[64], hex[33];
    size_t name_len = 0;
    const uint8_t *name = NULL;
    int64_t ca_nb = 0, ca_na = 0;
    X509 *c = NULL;
    luna_err err;

    if (e == NULL || ca_key == NULL || ca_cert == NULL || out == NULL ||
        not_before >= not_after)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (!luna_tpm_enrol_activated(e))
        return LUNA_ERR_PERMISSION;
    name = luna_tpm_enrol_ak_name(e, &name_len);
    if (name == NULL || name_len < 2 + 16)
        return LUNA_ERR_INTERNAL;
    /* The AK certificate must not outlive (or predate) the CA. */
    LUNA_GUARD(luna_hw_asn1_time(X509_get0_notBefore(ca_cert), &ca_nb));
    LUNA_GUARD(luna_hw_asn1_time(X509_get0_notAfter(ca_cert), &ca_na));
    if (not_before < ca_nb || not_after > ca_na)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_hex_encode(name + 2, 16, hex, sizeof(hex)));
    snprintf(cn, sizeof(cn), "Lunal TPM AK %s", hex);
    c = X509_new();
    LUNA_TRY_ENSURE(c != NULL && X509_set_version(c, 2) == 1, LUNA_ERR_CRYPTO, out);
    LUNA_TRY(set_serial(c), out);
    LUNA_TRY(set_times(c, not_before, not_after), out);
    LUNA_TRY(set_cn(X509_get_subject_name(c), cn), out);
    LUNA_TRY_ENSURE(X509_set_issuer_name(c, X509_get_subject_name(ca_cert)) == 1 &&
                        X509_set_pubkey(c, luna_tpm_enrol_ak(e)) == 1,
                    LUNA_ERR_CRYPTO, out);
    LUNA_TRY(add_ext(c, ca_cert, NID_basic_constraints, "critical,CA:FALSE"), out);
    LUNA_TRY(add_ext(c, ca_cert, NID_key_usage, "critical,digitalSignature"), out);
    LUNA_TRY(add_ext(c, ca_cert, NID_authority_key_identifier, "keyid:always"), out);
    LUNA_TRY_ENSURE(X509_sign(c, ca_key, EVP_sha256()) > 0, LUNA_ERR_CRYPTO, out);
    *out = c;
    c = NULL;
out:
    X509_free(c);
    return err;
}

luna_err luna_tpm_akca_crl(EVP_PKEY *ca_key, X509 *ca_cert, int64_t this_update,
                           int64_t next_update, X509_CRL **out)
{
    X509_CRL *crl = NULL;
    ASN1_TIME *t1 = NULL, *t2 = NULL;
    luna_err err = LUNA_ERR_CRYPTO;

    if (ca_key == NULL || ca_cert == NULL || out == NULL || this_update >= next_update)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    crl = X509_CRL_new();
    t1 = ASN1_TIME_set(NULL, (time_t)this_update);
    t2 = ASN1_TIME_set(NULL, (time_t)next_update);
    if (crl == NULL || t1 == NULL || t2 == NULL || X509_CRL_set_version(crl, 1) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, t1) != 1 || X509_CRL_set1_nextUpdate(crl, t2) != 1 ||
        X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0)
        goto out;
    *out = crl;
    crl = NULL;
    err = LUNA_OK;
out:
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    X509_CRL_free(crl);
    return err;
}

luna_err luna_tpm_enrol_qualified_name(const luna_tpm_enrol *e, uint8_t out[LUNA_TPM_NAME_MAX],
                                       size_t *len)
{
    uint8_t buf[4 + LUNA_TPM_NAME_MAX];
    size_t name_len = 0;
    const uint8_t *name = luna_tpm_enrol_ak_name(e, &name_len);
    luna_hash h;

    if (name == NULL || out == NULL || len == NULL || name_len < 2 || name_len > LUNA_TPM_NAME_MAX)
        return LUNA_ERR_INVALID_ARG;
    switch ((uint16_t)(name[0] << 8 | name[1])) {
    case LUNA_TPM_ALG_SHA256: h = LUNA_HASH_SHA256; break;
    case LUNA_TPM_ALG_SHA384: h = LUNA_HASH_SHA384; break;
    case LUNA_TPM_ALG_SHA512: h = LUNA_HASH_SHA512; break;
    default: return LUNA_ERR_UNSUPPORTED;
    }
    buf[0] = (uint8_t)(TPM_RH_ENDORSEMENT >> 24);
    buf[1] = (uint8_t)(TPM_RH_ENDORSEMENT >> 16);
    buf[2] = (uint8_t)(TPM_RH_ENDORSEMENT >> 8);
    buf[3] = (uint8_t)TPM_RH_ENDORSEMENT;
    memcpy(buf + 4, name, name_len);
    out[0] = name[0];
    out[1] = name[1];
    LUNA_GUARD(luna_hash_digest(h, buf, 4 + name_len, out + 2));
    *len = 2 + luna_hash_len(h);
    return LUNA_OK;
}
