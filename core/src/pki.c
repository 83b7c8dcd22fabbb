/*
 * pki.c - the platform CA: identity grammar and extraction, P-256 key
 * generation, the root and leaf certificate profiles, chain verification.
 * Files and passphrases live in pki_file.c.
 *
 * Must never: accept an identity that is not byte-exactly the grammar of
 * luna/pki.h (it feeds access-control lists), treat a certificate's
 * subject as an identity, sign anything for a non-P-256 key or with a
 * lifetime over LUNA_PKI_MAX_HOURS, or keep the CA key anywhere it does not
 * free (EVP_PKEY_free clears EC private scalars).
 */
#include "luna/pki.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "pki_internal.h"

/* ---- identities ---- */

static bool seg_char_ok(unsigned char c, bool underscore)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
        return true;
    return underscore && c == '_';
}

/* s[off .. off+len) is one path segment of 1..max allowed characters. */
static bool seg_ok(const unsigned char *s, size_t off, size_t len, size_t max, bool underscore)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!seg_char_ok(s[off + i], underscore))
            return false;
    }
    return true;
}

static bool has_prefix(const unsigned char *s, size_t len, const char *prefix, size_t *plen)
{
    size_t n = strlen(prefix);
    if (len < n || memcmp(s, prefix, n) != 0)
        return false;
    *plen = n;
    return true;
}

/* The grammar of luna/pki.h on exactly len bytes (no NUL needed). */
static bool identity_ok(const unsigned char *s, size_t len)
{
    size_t p = 0;
    if (len >= LUNA_PKI_IDENTITY_MAX)
        return false;
    if (has_prefix(s, len, "lunal://svc/", &p))
        return seg_ok(s, p, len - p, LUNA_PKI_SVC_NAME_MAX, false);
    if (has_prefix(s, len, "lunal://tee/", &p))
        return seg_ok(s, p, len - p, LUNA_PKI_ID_SEGMENT_MAX, true);
    if (has_prefix(s, len, "lunal://client/", &p)) {
        size_t slash = p;
        while (slash < len && s[slash] != '/')
            slash++;
        if (slash == len)
            return false;
        return seg_ok(s, p, slash - p, LUNA_PKI_ID_SEGMENT_MAX, true) &&
               seg_ok(s, slash + 1, len - slash - 1, LUNA_PKI_ID_SEGMENT_MAX, true);
    }
    return false;
}

bool luna_pki_identity_valid(const char *id)
{
    if (id == NULL)
        return false;
    size_t len = strnlen(id, LUNA_PKI_IDENTITY_MAX);
    return identity_ok((const unsigned char *)id, len);
}

/*
 * Any URI whose scheme is "lunal" in any case is a claim to an identity:
 * counting it (and then failing the grammar) is what stops a second,
 * differently-cased identity from hiding next to a valid one.
 */
static bool is_lunal_scheme(const unsigned char *s, size_t len)
{
    static const char scheme[] = "lunal:";
    if (len < sizeof(scheme) - 1)
        return false;
    for (size_t i = 0; i < sizeof(scheme) - 1; i++) {
        unsigned char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)scheme[i])
            return false;
    }
    return true;
}

luna_err luna_pki_identity_from_cert(X509 *cert, char *out, size_t out_cap)
{
    luna_err err = LUNA_ERR_FORMAT;
    GENERAL_NAMES *gens = NULL;
    const unsigned char *found = NULL;
    size_t found_len = 0;
    int crit = -1;

    if (out != NULL && out_cap > 0)
        out[0] = '\0';
    LUNA_ENSURE(cert != NULL && out != NULL && out_cap > 0, LUNA_ERR_INVALID_ARG);

    /* NULL with crit == -2 means duplicate SAN extensions: refused too. */
    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL)
        return LUNA_ERR_FORMAT;

    int n = sk_GENERAL_NAME_num(gens);
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g == NULL || g->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
        int ulen = ASN1_STRING_length(u);
        const unsigned char *udata = ASN1_STRING_get0_data(u);
        LUNA_TRY_ENSURE(ulen >= 0 && udata != NULL, LUNA_ERR_FORMAT, out);
        if (!is_lunal_scheme(udata, (size_t)ulen))
            continue;
        LUNA_TRY_ENSURE(found == NULL, LUNA_ERR_FORMAT, out);
        found = udata;
        found_len = (size_t)ulen;
    }
    LUNA_TRY_ENSURE(found != NULL, LUNA_ERR_FORMAT, out);
    /* identity_ok reads exactly found_len bytes, so an embedded NUL fails. */
    LUNA_TRY_ENSURE(identity_ok(found, found_len), LUNA_ERR_FORMAT, out);
    LUNA_TRY_ENSURE(found_len < out_cap, LUNA_ERR_TOO_LARGE, out);
    memcpy(out, found, found_len);
    out[found_len] = '\0';
    err = LUNA_OK;
out:
    GENERAL_NAMES_free(gens);
    return err;
}

/* ---- keys ---- */

luna_err luna_pki_key_is_p256(const EVP_PKEY *key)
{
    char group[64];
    size_t glen = 0;
    LUNA_ENSURE(key != NULL, LUNA_ERR_INVALID_ARG);
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
        return LUNA_ERR_UNSUPPORTED;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) != 1)
        return LUNA_ERR_UNSUPPORTED;
    int nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    return nid == NID_X9_62_prime256v1 ? LUNA_OK : LUNA_ERR_UNSUPPORTED;
}

luna_err luna_pki_keygen(EVP_PKEY **out)
{
    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = EVP_EC_gen("P-256");
    return *out != NULL ? LUNA_OK : LUNA_ERR_CRYPTO;
}

luna_err luna_pki_pubkey_from_der(const uint8_t *der, size_t len, EVP_PKEY **out)
{
    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_ENSURE(der != NULL && len > 0, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(len <= LUNA_PKI_FILE_MAX, LUNA_ERR_TOO_LARGE);
    const unsigned char *p = der;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
    if (k == NULL)
        return LUNA_ERR_FORMAT;
    /* d2i advances p over what it parsed: anything after is trailing junk. */
    if ((size_t)(p - der) != len) {
        EVP_PKEY_free(k);
        return LUNA_ERR_FORMAT;
    }
    luna_err err = luna_pki_key_is_p256(k);
    if (err != LUNA_OK) {
        EVP_PKEY_free(k);
        return err;
    }
    *out = k;
    return LUNA_OK;
}

/* ---- certificates ---- */

struct luna_pki_ca {
    X509 *cert;
    EVP_PKEY *key;
    int64_t not_after;
};

/* Time fits X.509 (0001..9999; we keep to the Unix era) and time_t. */
static bool time_ok(int64_t t)
{
    return t >= 0 && t <= INT64_C(253402300799) && (int64_t)(time_t)t == t;
}

static luna_err set_serial(X509 *x)
{
    uint8_t b[16];
    luna_err err = LUNA_ERR_CRYPTO;
    BIGNUM *bn = NULL;
    if (RAND_bytes(b, (int)sizeof(b)) != 1)
        return LUNA_ERR_CRYPTO;
    /* Positive (RFC 5280 4.1.2.2) and a non-zero first byte keeps it 16 bytes. */
    b[0] &= 0x7f;
    if (b[0] == 0)
        b[0] = 1;
    bn = BN_bin2bn(b, (int)sizeof(b), NULL);
    if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
        err = LUNA_OK;
    BN_free(bn);
    return err;
}

static luna_err set_times(X509 *x, int64_t not_before, int64_t not_after)
{
    if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL)
        return LUNA_ERR_CRYPTO;
    return LUNA_OK;
}

static luna_err add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (ext == NULL)
        return LUNA_ERR_CRYPTO;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? LUNA_OK : LUNA_ERR_CRYPTO;
}

static luna_err add_name_entry(X509_NAME *name, const char *field, const char *value)
{
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value, -1,
                                   -1, 0) != 1)
        return LUNA_ERR_CRYPTO;
    return LUNA_OK;
}

static luna_err push_name(GENERAL_NAMES *gens, int type, const void *data, int len)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_STRING *s = ASN1_STRING_type_new(type == GEN_IPADD ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING);
    if (g == NULL || s == NULL || ASN1_STRING_set(s, data, len) != 1) {
        GENERAL_NAME_free(g);
        ASN1_STRING_free(s);
        return LUNA_ERR_NOMEM;
    }
    GENERAL_NAME_set0_value(g, type, s);
    if (sk_GENERAL_NAME_push(gens, g) <= 0) {
        GENERAL_NAME_free(g);
        return LUNA_ERR_NOMEM;
    }
    return LUNA_OK;
}

/* SAN built as structures, not from a config string, so no value is parsed. */
static luna_err add_san(X509 *x, const char *identity)
{
    static const unsigned char loopback[4] = {127, 0, 0, 1};
    luna_err err;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    LUNA_ENSURE(gens != NULL, LUNA_ERR_NOMEM);
    LUNA_TRY(push_name(gens, GEN_URI, identity, (int)strlen(identity)), out);
    LUNA_TRY(push_name(gens, GEN_DNS, "localhost", 9), out);
    LUNA_TRY(push_name(gens, GEN_IPADD, loopback, 4), out);
    LUNA_TRY_ENSURE(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND) == 1,
                    LUNA_ERR_CRYPTO, out);
out:
    GENERAL_NAMES_free(gens);
    return err;
}

luna_err luna_pki_cert_times(X509 *cert, int64_t *not_before, int64_t *not_after)
{
    struct tm tm;
    LUNA_ENSURE(cert != NULL && not_before != NULL && not_after != NULL, LUNA_ERR_INVALID_ARG);
    const ASN1_TIME *nb = X509_get0_notBefore(cert);
    const ASN1_TIME *na = X509_get0_notAfter(cert);
    LUNA_ENSURE(nb != NULL && na != NULL, LUNA_ERR_FORMAT);
    memset(&tm, 0, sizeof(tm));
    LUNA_ENSURE(ASN1_TIME_to_tm(nb, &tm) == 1, LUNA_ERR_FORMAT);
    *not_before = (int64_t)timegm(&tm);
    memset(&tm, 0, sizeof(tm));
    LUNA_ENSURE(ASN1_TIME_to_tm(na, &tm) == 1, LUNA_ERR_FORMAT);
    *not_after = (int64_t)timegm(&tm);
    return LUNA_OK;
}

luna_err luna_pki_validity_hours(uint32_t hours, int64_t *not_before, int64_t *not_after)
{
    LUNA_ENSURE(not_before != NULL && not_after != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(hours >= 1 && hours <= LUNA_PKI_MAX_HOURS, LUNA_ERR_INVALID_ARG);
    int64_t now = (int64_t)time(NULL);
    LUNA_ENSURE(now > 0, LUNA_ERR_INTERNAL);
    *not_before = now - LUNA_PKI_BACKDATE_SECONDS;
    *not_after = now + (int64_t)hours * 3600;
    return LUNA_OK;
}

luna_err luna_pki_ca_create(uint32_t days, luna_pki_ca **out)
{
    luna_err err;
    luna_pki_ca *ca = NULL;
    X509V3_CTX ctx;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_ENSURE(days >= 1 && days <= LUNA_PKI_CA_MAX_DAYS, LUNA_ERR_INVALID_ARG);
    int64_t now = (int64_t)time(NULL);
    LUNA_ENSURE(now > 0, LUNA_ERR_INTERNAL);

    ca = calloc(1, sizeof(*ca));
    LUNA_ENSURE(ca != NULL, LUNA_ERR_NOMEM);
    LUNA_TRY(luna_pki_keygen(&ca->key), out);
    ca->cert = X509_new();
    LUNA_TRY_ENSURE(ca->cert != NULL, LUNA_ERR_NOMEM, out);
    X509 *x = ca->cert;
    LUNA_TRY_ENSURE(X509_set_version(x, X509_VERSION_3) == 1, LUNA_ERR_CRYPTO, out);
    LUNA_TRY(set_serial(x), out);
    X509_NAME *name = X509_get_subject_name(x);
    LUNA_TRY(add_name_entry(name, "O", "Lunal"), out);
    LUNA_TRY(add_name_entry(name, "CN", "Lunal Platform CA"), out);
    LUNA_TRY_ENSURE(X509_set_issuer_name(x, name) == 1, LUNA_ERR_CRYPTO, out);
    ca->not_after = now + (int64_t)days * 86400;
    LUNA_TRY(set_times(x, now - LUNA_PKI_BACKDATE_SECONDS, ca->not_after), out);
    LUNA_TRY_ENSURE(X509_set_pubkey(x, ca->key) == 1, LUNA_ERR_CRYPTO, out);

    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    LUNA_TRY(add_conf_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"), out);
    LUNA_TRY(add_conf_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"), out);
    /* SKI first: the self-signed AKI copies it. */
    LUNA_TRY(add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash"), out);
    LUNA_TRY(add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"), out);
    LUNA_TRY_ENSURE(X509_sign(x, ca->key, EVP_sha256()) > 0, LUNA_ERR_CRYPTO, out);
    *out = ca;
    ca = NULL;
    err = LUNA_OK;
out:
    luna_pki_ca_free(ca);
    return err;
}

luna_err luna_pki_ca_from_parts(X509 *cert, EVP_PKEY *key, luna_pki_ca **out)
{
    int64_t nb = 0, na = 0;
    *out = NULL;
    LUNA_GUARD(luna_pki_key_is_p256(key));
    LUNA_ENSURE(X509_check_ca(cert) >= 1, LUNA_ERR_FORMAT);
    LUNA_ENSURE(X509_check_private_key(cert, key) == 1, LUNA_ERR_VERIFY);
    LUNA_GUARD(luna_pki_cert_times(cert, &nb, &na));
    luna_pki_ca *ca = calloc(1, sizeof(*ca));
    LUNA_ENSURE(ca != NULL, LUNA_ERR_NOMEM);
    ca->cert = cert;
    ca->key = key;
    ca->not_after = na;
    *out = ca;
    return LUNA_OK;
}

X509 *luna_pki_ca_cert(const luna_pki_ca *ca)
{
    return ca != NULL ? ca->cert : NULL;
}

EVP_PKEY *luna_pki_ca_key(const luna_pki_ca *ca)
{
    return ca != NULL ? ca->key : NULL;
}

void luna_pki_ca_free(luna_pki_ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free(ca);
}

luna_err luna_pki_issue(const luna_pki_ca *ca, EVP_PKEY *pub, const char *identity,
                        int64_t not_before, int64_t not_after, X509 **out)
{
    luna_err err;
    X509 *x = NULL;
    X509V3_CTX ctx;

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_ENSURE(ca != NULL && pub != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(luna_pki_identity_valid(identity), LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(time_ok(not_before) && time_ok(not_after), LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(not_before < not_after, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(not_after - not_before <= (int64_t)LUNA_PKI_MAX_HOURS * 3600, LUNA_ERR_INVALID_ARG);
    LUNA_ENSURE(not_after <= ca->not_after, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(luna_pki_key_is_p256(pub));

    x = X509_new();
    LUNA_ENSURE(x != NULL, LUNA_ERR_NOMEM);
    LUNA_TRY_ENSURE(X509_set_version(x, X509_VERSION_3) == 1, LUNA_ERR_CRYPTO, out);
    LUNA_TRY(set_serial(x), out);
    LUNA_TRY_ENSURE(X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) == 1,
                    LUNA_ERR_CRYPTO, out);
    /* The subject is informational; CN only when the identity fits ub-common-name. */
    X509_NAME *name = X509_get_subject_name(x);
    LUNA_TRY(add_name_entry(name, "O", "Lunal"), out);
    if (strlen(identity) <= 64)
        LUNA_TRY(add_name_entry(name, "CN", identity), out);
    LUNA_TRY(set_times(x, not_before, not_after), out);
    LUNA_TRY_ENSURE(X509_set_pubkey(x, pub) == 1, LUNA_ERR_CRYPTO, out);

    X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
    LUNA_TRY(add_conf_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE"), out);
    LUNA_TRY(add_conf_ext(x, &ctx, NID_key_usage, "critical,digitalSignature"), out);
    LUNA_TRY(add_conf_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth"), out);
    LUNA_TRY(add_san(x, identity), out);
    LUNA_TRY(add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash"), out);
    LUNA_TRY(add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"), out);
    LUNA_TRY_ENSURE(X509_sign(x, ca->key, EVP_sha256()) > 0, LUNA_ERR_CRYPTO, out);
    *out = x;
    x = NULL;
    err = LUNA_OK;
out:
    X509_free(x);
    return err;
}

static luna_err verify_purpose(X509_STORE *store, X509 *leaf, int64_t at, int purpose)
{
    luna_err err = LUNA_ERR_VERIFY;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    LUNA_ENSURE(ctx != NULL, LUNA_ERR_NOMEM);
    if (X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1) {
        err = LUNA_ERR_CRYPTO;
        goto out;
    }
    X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
    if (X509_STORE_CTX_set_purpose(ctx, purpose) != 1) {
        err = LUNA_ERR_CRYPTO;
        goto out;
    }
    if (X509_verify_cert(ctx) == 1) {
        err = LUNA_OK;
        goto out;
    }
    int v = X509_STORE_CTX_get_error(ctx);
    if (v == X509_V_ERR_CERT_HAS_EXPIRED || v == X509_V_ERR_CERT_NOT_YET_VALID)
        err = LUNA_ERR_EXPIRED;
out:
    X509_STORE_CTX_free(ctx);
    return err;
}

luna_err luna_pki_verify(X509 *ca_cert, X509 *leaf, int64_t at)
{
    luna_err err;
    LUNA_ENSURE(ca_cert != NULL && leaf != NULL && time_ok(at), LUNA_ERR_INVALID_ARG);
    X509_STORE *store = X509_STORE_new();
    LUNA_ENSURE(store != NULL, LUNA_ERR_NOMEM);
    LUNA_TRY_ENSURE(X509_STORE_add_cert(store, ca_cert) == 1, LUNA_ERR_CRYPTO, out);
    LUNA_TRY(verify_purpose(store, leaf, at, X509_PURPOSE_SSL_CLIENT), out);
    LUNA_TRY(verify_purpose(store, leaf, at, X509_PURPOSE_SSL_SERVER), out);
out:
    X509_STORE_free(store);
    return err;
}
