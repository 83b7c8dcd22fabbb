/*
 * evidence_sim.c - the SIMULATED platform's formats: the evidence and the
 * TCB status document (parse, build, sign), the simulated vendor root and
 * platform certificates.  docs/evidence-sim.md is the byte-exact spec.
 *
 * It must never verify anything (verifier_sim.c does), never be mistaken
 * for hardware (the root says SIMULATED - INSECURE) and never read input
 * but through luna_reader.
 */
#include "luna/evidence_sim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/pki.h"
#include "luna/secret.h"

#define SIM_ROOT_O "Lunal SIMULATED - INSECURE"
#define SIM_ROOT_CN "Lunal Sim Vendor Root - SIMULATED - INSECURE"
#define SIM_PLATFORM_CN "Lunal Sim Platform - SIMULATED - INSECURE"

struct luna_sim_vendor {
    X509 *cert;
    EVP_PKEY *key; /* P-256 */
};

struct luna_sim_platform {
    luna_sim_sig_alg alg;
    luna_secret *seed; /* Ed25519 seed, when alg is ED25519 */
    EVP_PKEY *ec;      /* P-256 key, when alg is P256 */
    uint8_t *cert_der;
    size_t cert_len;
    uint8_t serial[LUNA_CLAIM_SERIAL_MAX];
    size_t serial_len;
};

/* ---- parsing ---- */

static luna_err refuse(luna_verify_reason *why, luna_verify_reason r, luna_err e)
{
    if (why != NULL)
        *why = r;
    return e;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

luna_err luna_sim_evidence_parse(const uint8_t *buf, size_t len, luna_sim_evidence *out,
                                 luna_verify_reason *why)
{
    luna_reader r;
    const uint8_t *magic = NULL;
    uint16_t cert_len = 0;

    if (why != NULL)
        *why = LUNA_VERIFY_MALFORMED;
    if (out == NULL || (buf == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (len > LUNA_SIM_EVIDENCE_MAX)
        return refuse(why, LUNA_VERIFY_MALFORMED, LUNA_ERR_TOO_LARGE);
    luna_reader_init(&r, buf, len);
    if (luna_read_view(&r, &magic, LUNA_SIM_MAGIC_LEN) != LUNA_OK ||
        luna_read_u16(&r, &out->version) != LUNA_OK)
        return refuse(why, LUNA_VERIFY_MALFORMED, LUNA_ERR_FORMAT);
    /* The magic names the family; the version field is the one that moves. */
    if (memcmp(magic, LUNA_SIM_MAGIC, LUNA_SIM_MAGIC_LEN) != 0)
        return refuse(why, LUNA_VERIFY_MALFORMED, LUNA_ERR_FORMAT);
    if (out->version != LUNA_SIM_VERSION)
        return refuse(why, LUNA_VERIFY_UNSUPPORTED_VERSION, LUNA_ERR_UNSUPPORTED);
    if (luna_read_u16(&r, &out->flags) != LUNA_OK || luna_read_u16(&r, &out->sig_alg) != LUNA_OK ||
        luna_read_u32(&r, &out->tcb_level) != LUNA_OK ||
        luna_read_u64(&r, &out->timestamp) != LUNA_OK ||
        luna_read_view(&r, &out->measurement, LUNA_SIM_FIELD_LEN) != LUNA_OK ||
        luna_read_view(&r, &out->signer, LUNA_SIM_FIELD_LEN) != LUNA_OK ||
        luna_read_view(&r, &out->tee_x25519, LUNA_SIM_FIELD_LEN) != LUNA_OK ||
        luna_read_view(&r, &out->tee_ed25519, LUNA_SIM_FIELD_LEN) != LUNA_OK ||
        luna_read_view(&r, &out->nonce, LUNA_SIM_FIELD_LEN) != LUNA_OK ||
        luna_read_view(&r, &out->report_data, LUNA_CLAIM_REPORT_DATA_LEN) != LUNA_OK ||
        luna_read_view(&r, &out->memory_digest, LUNA_SIM_FIELD_LEN) != LUNA_OK ||
        luna_read_u16(&r, &cert_len) != LUNA_OK)
        return refuse(why, LUNA_VERIFY_MALFORMED, LUNA_ERR_FORMAT);
    if ((out->flags & (uint16_t)~LUNA_SIM_FLAGS_KNOWN) != 0)
        return refuse(why, LUNA_VERIFY_RESERVED_BITS, LUNA_ERR_FORMAT);
    if (out->sig_alg != LUNA_SIM_SIG_ED25519 && out->sig_alg != LUNA_SIM_SIG_P256)
        return refuse(why, LUNA_VERIFY_UNSUPPORTED_VERSION, LUNA_ERR_UNSUPPORTED);
    if ((out->flags & LUNA_SIM_FLAG_SIGN_KEY) == 0 &&
        !all_zero(out->tee_ed25519, LUNA_SIM_FIELD_LEN))
        return refuse(why, LUNA_VERIFY_RESERVED_BITS, LUNA_ERR_FORMAT);
    if (out->timestamp > (uint64_t)INT64_MAX)
        return refuse(why, LUNA_VERIFY_MALFORMED, LUNA_ERR_FORMAT);
    if (cert_len == 0 || cert_len > LUNA_SIM_CERT_MAX)
        return refuse(why, LUNA_VERIFY_MALFORMED, LUNA_ERR_FORMAT);
    out->cert_len = cert_len;
    if (luna_read_view(&r, &out->cert, cert_len) != LUNA_OK)
        return refuse(why, LUNA_VERIFY_MALFORMED, LUNA_ERR_FORMAT);
    out->signed_part = buf;
    out->signed_len = r.off;
    if (luna_read_view(&r, &out->sig, LUNA_SIM_SIG_LEN) != LUNA_OK ||
        luna_read_end(&r) != LUNA_OK)
        return refuse(why, LUNA_VERIFY_MALFORMED, LUNA_ERR_FORMAT);
    if (why != NULL)
        *why = LUNA_VERIFY_OK;
    return LUNA_OK;
}

luna_err luna_sim_tcb_parse(const uint8_t *buf, size_t len, luna_sim_tcb *out)
{
    luna_reader r;
    const uint8_t *magic = NULL;
    uint16_t version = 0, flags = 0, sig_alg = 0, n = 0;

    if (out == NULL || (buf == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (len > LUNA_SIM_TCB_MAX)
        return LUNA_ERR_TOO_LARGE;
    luna_reader_init(&r, buf, len);
    if (luna_read_view(&r, &magic, LUNA_SIM_MAGIC_LEN) != LUNA_OK ||
        memcmp(magic, LUNA_SIM_TCB_MAGIC, LUNA_SIM_MAGIC_LEN) != 0 ||
        luna_read_u16(&r, &version) != LUNA_OK)
        return LUNA_ERR_FORMAT;
    if (version != LUNA_SIM_TCB_VERSION)
        return LUNA_ERR_UNSUPPORTED;
    if (luna_read_u16(&r, &flags) != LUNA_OK || luna_read_u16(&r, &sig_alg) != LUNA_OK ||
        luna_read_u32(&r, &out->current_level) != LUNA_OK ||
        luna_read_u32(&r, &out->revoked_below) != LUNA_OK ||
        luna_read_u64(&r, &out->issued_at) != LUNA_OK ||
        luna_read_u64(&r, &out->next_update) != LUNA_OK || luna_read_u16(&r, &n) != LUNA_OK)
        return LUNA_ERR_FORMAT;
    if (flags != 0)
        return LUNA_ERR_FORMAT;
    if (sig_alg != LUNA_SIM_SIG_P256)
        return LUNA_ERR_UNSUPPORTED;
    if (out->revoked_below > out->current_level || out->issued_at > (uint64_t)INT64_MAX ||
        out->next_update > (uint64_t)INT64_MAX || out->next_update <= out->issued_at ||
        n > LUNA_SIM_TCB_MAX_REVOKED)
        return LUNA_ERR_FORMAT;
    size_t start = r.off;
    for (uint16_t i = 0; i < n; i++) {
        uint8_t sl = 0;
        if (luna_read_u8(&r, &sl) != LUNA_OK || sl == 0 || sl > LUNA_CLAIM_SERIAL_MAX ||
            luna_read_skip(&r, sl) != LUNA_OK)
            return LUNA_ERR_FORMAT;
    }
    out->n_revoked = n;
    out->revoked = buf + start;
    out->revoked_len = r.off - start;
    out->signed_part = buf;
    out->signed_len = r.off;
    if (luna_read_view(&r, &out->sig, 64) != LUNA_OK || luna_read_end(&r) != LUNA_OK)
        return LUNA_ERR_FORMAT;
    return LUNA_OK;
}

bool luna_sim_tcb_is_revoked(const luna_sim_tcb *t, const uint8_t *serial, size_t serial_len)
{
    luna_reader r;
    if (t == NULL || serial == NULL || serial_len == 0)
        return false;
    luna_reader_init(&r, t->revoked, t->revoked_len);
    for (size_t i = 0; i < t->n_revoked; i++) {
        uint8_t sl = 0;
        const uint8_t *s = NULL;
        /* The list was validated by the parser; a failure here is a bug,
           and treating the key as revoked is the safe answer. */
        if (luna_read_u8(&r, &sl) != LUNA_OK || luna_read_view(&r, &s, sl) != LUNA_OK)
            return true;
        if (sl == serial_len && memcmp(s, serial, sl) == 0)
            return true;
    }
    return false;
}

/* ---- certificates ---- */

static bool time_ok(int64_t t)
{
    return t >= 0 && t <= INT64_C(253402300799) && (int64_t)(time_t)t == t;
}

static luna_err random_serial(X509 *x)
{
    uint8_t b[16];
    BIGNUM *bn = NULL;
    luna_err err = LUNA_ERR_CRYPTO;

    if (luna_random(b, sizeof(b)) != LUNA_OK)
        return LUNA_ERR_CRYPTO;
    /* Positive and exactly 16 bytes long once encoded. */
    b[0] = (uint8_t)((b[0] & 0x7f) | 0x10);
    bn = BN_bin2bn(b, (int)sizeof(b), NULL);
    if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
        err = LUNA_OK;
    BN_free(bn);
    return err;
}

static luna_err add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (ext == NULL)
        return LUNA_ERR_CRYPTO;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? LUNA_OK : LUNA_ERR_CRYPTO;
}

static luna_err set_name(X509_NAME *name, const char *cn)
{
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)SIM_ROOT_O,
                                   -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1)
        return LUNA_ERR_CRYPTO;
    return LUNA_OK;
}

/*
 * Builds a certificate for subject_key signed by issuer_key; issuer_cert
 * NULL means self-signed (the root).
 */
static luna_err make_cert(X509 *issuer_cert, EVP_PKEY *issuer_key, EVP_PKEY *subject_key,
                          const char *cn, bool ca, int64_t not_before, int64_t not_after,
                          X509 **out)
{
    luna_err err = LUNA_OK;
    X509 *x = X509_new();
    X509V3_CTX ctx;

    *out = NULL;
    LUNA_TRY_ENSURE(x != NULL, LUNA_ERR_NOMEM, fail);
    LUNA_TRY_ENSURE(X509_set_version(x, 2) == 1, LUNA_ERR_CRYPTO, fail);
    LUNA_TRY(random_serial(x), fail);
    LUNA_TRY_ENSURE(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) != NULL &&
                        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) != NULL,
                    LUNA_ERR_CRYPTO, fail);
    LUNA_TRY(set_name(X509_get_subject_name(x), cn), fail);
    LUNA_TRY_ENSURE(X509_set_issuer_name(x, issuer_cert != NULL
                                                ? X509_get_subject_name(issuer_cert)
                                                : X509_get_subject_name(x)) == 1,
                    LUNA_ERR_CRYPTO, fail);
    LUNA_TRY_ENSURE(X509_set_pubkey(x, subject_key) == 1, LUNA_ERR_CRYPTO, fail);
    X509V3_set_ctx(&ctx, issuer_cert != NULL ? issuer_cert : x, x, NULL, NULL, 0);
    if (ca) {
        LUNA_TRY(add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"), fail);
        LUNA_TRY(add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"), fail);
    } else {
        LUNA_TRY(add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE"), fail);
        LUNA_TRY(add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature"), fail);
    }
    LUNA_TRY(add_ext(x, &ctx, NID_subject_key_identifier, "hash"), fail);
    LUNA_TRY(add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"), fail);
    LUNA_TRY_ENSURE(X509_sign(x, issuer_key, EVP_sha256()) > 0, LUNA_ERR_CRYPTO, fail);
    *out = x;
    return LUNA_OK;
fail:
    X509_free(x);
    return err;
}

luna_err luna_sim_vendor_create(int64_t not_before, int64_t not_after, luna_sim_vendor **out)
{
    luna_err err = LUNA_OK;
    luna_sim_vendor *v = NULL;

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (!time_ok(not_before) || !time_ok(not_after) || not_before >= not_after)
        return LUNA_ERR_INVALID_ARG;
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        return LUNA_ERR_NOMEM;
    LUNA_TRY(luna_pki_keygen(&v->key), fail);
    LUNA_TRY(make_cert(NULL, v->key, v->key, SIM_ROOT_CN, true, not_before, not_after, &v->cert),
             fail);
    *out = v;
    return LUNA_OK;
fail:
    luna_sim_vendor_free(v);
    return err;
}

luna_err luna_sim_vendor_from_parts(X509 *cert, EVP_PKEY *key, luna_sim_vendor **out)
{
    luna_sim_vendor *v = NULL;
    EVP_PKEY *cert_key = NULL;

    if (cert == NULL || key == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (!EVP_PKEY_is_a(key, "EC"))
        return LUNA_ERR_UNSUPPORTED;
    cert_key = X509_get0_pubkey(cert);
    if (cert_key == NULL || EVP_PKEY_eq(cert_key, key) != 1)
        return LUNA_ERR_VERIFY;
    if (X509_check_ca(cert) == 0)
        return LUNA_ERR_FORMAT;
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        return LUNA_ERR_NOMEM;
    v->cert = cert;
    v->key = key;
    *out = v;
    return LUNA_OK;
}

X509 *luna_sim_vendor_cert(const luna_sim_vendor *v)
{
    return v != NULL ? v->cert : NULL;
}

EVP_PKEY *luna_sim_vendor_key(const luna_sim_vendor *v)
{
    return v != NULL ? v->key : NULL;
}

void luna_sim_vendor_free(luna_sim_vendor *v)
{
    if (v == NULL)
        return;
    X509_free(v->cert);
    EVP_PKEY_free(v->key); /* OpenSSL clears EC private scalars on free */
    free(v);
}

static luna_err cert_serial(X509 *x, uint8_t *out, size_t cap, size_t *out_len)
{
    const ASN1_INTEGER *ser = X509_get0_serialNumber(x);
    if (ser == NULL || ASN1_STRING_type(ser) != V_ASN1_INTEGER)
        return LUNA_ERR_FORMAT;
    int n = ASN1_STRING_length(ser);
    if (n <= 0 || (size_t)n > cap)
        return LUNA_ERR_FORMAT;
    memcpy(out, ASN1_STRING_get0_data(ser), (size_t)n);
    *out_len = (size_t)n;
    return LUNA_OK;
}

luna_err luna_sim_platform_create(const luna_sim_vendor *vendor, luna_sim_sig_alg alg,
                                  int64_t not_before, int64_t not_after, luna_sim_platform **out)
{
    luna_err err = LUNA_OK;
    luna_sim_platform *p = NULL;
    EVP_PKEY *pub = NULL;
    X509 *cert = NULL;
    uint8_t pk[LUNA_ED25519_PUB_LEN];
    unsigned char *der = NULL;

    if (vendor == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if ((alg != LUNA_SIM_SIG_ED25519 && alg != LUNA_SIM_SIG_P256) || !time_ok(not_before) ||
        !time_ok(not_after) || not_before >= not_after)
        return LUNA_ERR_INVALID_ARG;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return LUNA_ERR_NOMEM;
    p->alg = alg;
    if (alg == LUNA_SIM_SIG_ED25519) {
        LUNA_TRY(luna_secret_new(LUNA_ED25519_SEED_LEN, &p->seed), fail);
        LUNA_TRY(luna_ed25519_keygen(luna_secret_data(p->seed), pk), fail);
        pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, sizeof(pk));
        LUNA_TRY_ENSURE(pub != NULL, LUNA_ERR_CRYPTO, fail);
    } else {
        LUNA_TRY(luna_pki_keygen(&p->ec), fail);
        pub = p->ec;
        LUNA_TRY_ENSURE(EVP_PKEY_up_ref(pub) == 1, LUNA_ERR_CRYPTO, fail);
    }
    LUNA_TRY(make_cert(vendor->cert, vendor->key, pub, SIM_PLATFORM_CN, false, not_before,
                       not_after, &cert),
             fail);
    LUNA_TRY(cert_serial(cert, p->serial, sizeof(p->serial), &p->serial_len), fail);
    int n = i2d_X509(cert, &der);
    LUNA_TRY_ENSURE(n > 0 && n <= LUNA_SIM_CERT_MAX, LUNA_ERR_CRYPTO, fail);
    p->cert_der = malloc((size_t)n);
    LUNA_TRY_ENSURE(p->cert_der != NULL, LUNA_ERR_NOMEM, fail);
    memcpy(p->cert_der, der, (size_t)n);
    p->cert_len = (size_t)n;
    *out = p;
    p = NULL;
fail:
    OPENSSL_free(der);
    X509_free(cert);
    EVP_PKEY_free(pub);
    luna_sim_platform_free(p);
    return err;
}

luna_err luna_sim_platform_serial(const luna_sim_platform *p, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
    if (p == NULL || out == NULL || out_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (cap < p->serial_len)
        return LUNA_ERR_TOO_LARGE;
    memcpy(out, p->serial, p->serial_len);
    *out_len = p->serial_len;
    return LUNA_OK;
}

void luna_sim_platform_free(luna_sim_platform *p)
{
    if (p == NULL)
        return;
    luna_secret_free(p->seed);
    EVP_PKEY_free(p->ec);
    free(p->cert_der);
    free(p);
}

/* ---- signing ---- */

/* ECDSA P-256 SHA-256 over msg with key, as raw r || s (64 bytes). */
static luna_err ecdsa_sign_raw(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    luna_err err = LUNA_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t der_len = sizeof(der);
    ECDSA_SIG *es = NULL;
    const unsigned char *pder = der;

    LUNA_TRY_ENSURE(md != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY_ENSURE(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
                        EVP_DigestSign(md, der, &der_len, msg, len) == 1,
                    LUNA_ERR_CRYPTO, out);
    es = d2i_ECDSA_SIG(NULL, &pder, (long)der_len);
    LUNA_TRY_ENSURE(es != NULL, LUNA_ERR_CRYPTO, out);
    LUNA_TRY_ENSURE(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32 &&
                        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32,
                    LUNA_ERR_CRYPTO, out);
out:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    return err;
}

luna_err luna_sim_evidence_sign(const luna_sim_platform *p, const luna_sim_evidence_params *params,
                                uint8_t *out, size_t cap, size_t *out_len)
{
    luna_err err = LUNA_OK;
    luna_wbuf w;
    uint8_t rd[LUNA_CLAIM_REPORT_DATA_LEN];
    uint8_t sig[LUNA_SIM_SIG_LEN];
    static const uint8_t zero[LUNA_SIM_FIELD_LEN];
    uint16_t flags = 0;

    if (p == NULL || params == NULL || out == NULL || out_len == NULL || params->timestamp < 0)
        return LUNA_ERR_INVALID_ARG;
    *out_len = 0;
    if (params->debug)
        flags |= LUNA_SIM_FLAG_DEBUG;
    if (params->has_tee_ed25519)
        flags |= LUNA_SIM_FLAG_SIGN_KEY;
    if (params->report_data != NULL)
        memcpy(rd, params->report_data, sizeof(rd));
    else
        LUNA_GUARD(luna_verifier_binding(params->nonce, params->tee_x25519,
                                         params->has_tee_ed25519 ? params->tee_ed25519 : NULL,
                                         rd));
    luna_wbuf_init(&w, out, cap);
    LUNA_TRY(luna_write_bytes(&w, LUNA_SIM_MAGIC, LUNA_SIM_MAGIC_LEN), fail);
    LUNA_TRY(luna_write_u16(&w, LUNA_SIM_VERSION), fail);
    LUNA_TRY(luna_write_u16(&w, flags), fail);
    LUNA_TRY(luna_write_u16(&w, (uint16_t)p->alg), fail);
    LUNA_TRY(luna_write_u32(&w, params->tcb_level), fail);
    LUNA_TRY(luna_write_u64(&w, (uint64_t)params->timestamp), fail);
    LUNA_TRY(luna_write_bytes(&w, params->measurement, LUNA_SIM_FIELD_LEN), fail);
    LUNA_TRY(luna_write_bytes(&w, params->signer, LUNA_SIM_FIELD_LEN), fail);
    LUNA_TRY(luna_write_bytes(&w, params->tee_x25519, LUNA_SIM_FIELD_LEN), fail);
    LUNA_TRY(luna_write_bytes(&w, params->has_tee_ed25519 ? params->tee_ed25519 : zero,
                              LUNA_SIM_FIELD_LEN),
             fail);
    LUNA_TRY(luna_write_bytes(&w, params->nonce, LUNA_SIM_FIELD_LEN), fail);
    LUNA_TRY(luna_write_bytes(&w, rd, sizeof(rd)), fail);
    LUNA_TRY(luna_write_bytes(&w, params->memory_digest, LUNA_SIM_FIELD_LEN), fail);
    LUNA_TRY(luna_write_u16(&w, (uint16_t)p->cert_len), fail);
    LUNA_TRY(luna_write_bytes(&w, p->cert_der, p->cert_len), fail);
    if (p->alg == LUNA_SIM_SIG_ED25519)
        LUNA_TRY(luna_ed25519_sign(luna_secret_cdata(p->seed), w.data, w.len, sig), fail);
    else
        LUNA_TRY(ecdsa_sign_raw(p->ec, w.data, w.len, sig), fail);
    LUNA_TRY(luna_write_bytes(&w, sig, sizeof(sig)), fail);
    *out_len = w.len;
    return LUNA_OK;
fail:
    luna_wipe(out, cap);
    return err;
}

luna_err luna_sim_tcb_sign(const luna_sim_vendor *vendor, const luna_sim_tcb_params *params,
                           uint8_t *out, size_t cap, size_t *out_len)
{
    luna_err err = LUNA_OK;
    luna_wbuf w;
    uint8_t sig[64];

    if (vendor == NULL || params == NULL || out == NULL || out_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out_len = 0;
    if (params->revoked_below > params->current_level || !time_ok(params->issued_at) ||
        !time_ok(params->next_update) || params->next_update <= params->issued_at ||
        params->n_revoked > LUNA_SIM_TCB_MAX_REVOKED ||
        (params->n_revoked > 0 && (params->revoked == NULL || params->revoked_lens == NULL)))
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < params->n_revoked; i++)
        if (params->revoked[i] == NULL || params->revoked_lens[i] == 0 ||
            params->revoked_lens[i] > LUNA_CLAIM_SERIAL_MAX)
            return LUNA_ERR_INVALID_ARG;
    luna_wbuf_init(&w, out, cap);
    LUNA_TRY(luna_write_bytes(&w, LUNA_SIM_TCB_MAGIC, LUNA_SIM_MAGIC_LEN), fail);
    LUNA_TRY(luna_write_u16(&w, LUNA_SIM_TCB_VERSION), fail);
    LUNA_TRY(luna_write_u16(&w, 0), fail);
    LUNA_TRY(luna_write_u16(&w, LUNA_SIM_SIG_P256), fail);
    LUNA_TRY(luna_write_u32(&w, params->current_level), fail);
    LUNA_TRY(luna_write_u32(&w, params->revoked_below), fail);
    LUNA_TRY(luna_write_u64(&w, (uint64_t)params->issued_at), fail);
    LUNA_TRY(luna_write_u64(&w, (uint64_t)params->next_update), fail);
    LUNA_TRY(luna_write_u16(&w, (uint16_t)params->n_revoked), fail);
    for (size_t i = 0; i < params->n_revoked; i++) {
        LUNA_TRY(luna_write_u8(&w, (uint8_t)params->revoked_lens[i]), fail);
        LUNA_TRY(luna_write_bytes(&w, params->revoked[i], params->revoked_lens[i]), fail);
    }
    LUNA_TRY(ecdsa_sign_raw(vendor->key, w.data, w.len, sig), fail);
    LUNA_TRY(luna_write_bytes(&w, sig, sizeof(sig)), fail);
    *out_len = w.len;
    return LUNA_OK;
fail:
    luna_wipe(out, cap);
    return err;
}
