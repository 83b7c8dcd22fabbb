/*
 * verifier_hw.c - the pieces every hardware evidence backend shares: the
 * collateral bundle (builder and bounded parser), X.509 chain and CRL
 * verification at an explicit time, certificate field helpers.
 *
 * It must never trust a bundle by itself (trust comes only from the
 * policy's anchors, compared whole), never use the wall clock (always
 * X509_VERIFY_PARAM_set_time with the caller's time), and never read
 * untrusted bytes other than through luna_reader or OpenSSL's DER parsers.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "luna/bytes.h"
#include "verifier_hw.h"

/* ---- builder ---- */

luna_err luna_hwcol_begin(luna_wbuf *w)
{
    if (w == NULL || w->len != 0)
        return LUNA_ERR_INVALID_ARG;
    return luna_write_bytes(w, LUNA_HWCOL_MAGIC, LUNA_HWCOL_MAGIC_LEN);
}

static bool kind_ok(unsigned k)
{
    return k >= LUNA_HWCOL_CERT && k <= LUNA_HWCOL_QE_IDENTITY;
}

luna_err luna_hwcol_add(luna_wbuf *w, luna_hwcol_kind kind, const uint8_t *data, size_t len)
{
    if (w == NULL || data == NULL || len == 0 || !kind_ok((unsigned)kind))
        return LUNA_ERR_INVALID_ARG;
    if (len > LUNA_HWCOL_ITEM_MAX)
        return LUNA_ERR_TOO_LARGE;
    LUNA_GUARD(luna_write_u8(w, (uint8_t)kind));
    LUNA_GUARD(luna_write_u32(w, (uint32_t)len));
    return luna_write_bytes(w, data, len);
}

/* ---- parser ---- */

luna_err luna_hw_asn1_time(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (t == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(&tm, 0, sizeof(tm));
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return LUNA_ERR_FORMAT;
    *out = (int64_t)timegm(&tm);
    return LUNA_OK;
}

void luna_hw_bundle_free(luna_hw_bundle *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n_certs; i++)
        X509_free(b->certs[i]);
    for (size_t i = 0; i < b->n_crls; i++)
        X509_CRL_free(b->crls[i]);
    free(b->tcb_info);
    free(b->qe_identity);
    if (b->ext != NULL && b->ext_free != NULL)
        b->ext_free(b->ext);
    free(b);
}

static luna_err copy_doc(const uint8_t *p, size_t n, uint8_t **dst, size_t *dst_len)
{
    if (*dst != NULL)
        return LUNA_ERR_FORMAT; /* two of a kind would be ambiguous */
    *dst = malloc(n);
    if (*dst == NULL)
        return LUNA_ERR_NOMEM;
    memcpy(*dst, p, n);
    *dst_len = n;
    return LUNA_OK;
}

static luna_err add_item(luna_hw_bundle *b, uint8_t kind, const uint8_t *p, size_t n)
{
    const unsigned char *q = p;
    switch (kind) {
    case LUNA_HWCOL_CERT: {
        X509 *c = d2i_X509(NULL, &q, (long)n);
        if (c == NULL || q != p + n) {
            X509_free(c);
            return LUNA_ERR_FORMAT;
        }
        b->certs[b->n_certs++] = c;
        return LUNA_OK;
    }
    case LUNA_HWCOL_CRL: {
        int64_t this_update = 0;
        X509_CRL *c = d2i_X509_CRL(NULL, &q, (long)n);
        if (c == NULL || q != p + n ||
            luna_hw_asn1_time(X509_CRL_get0_lastUpdate(c), &this_update) != LUNA_OK) {
            X509_CRL_free(c);
            return LUNA_ERR_FORMAT;
        }
        b->crls[b->n_crls++] = c;
        if (this_update > b->issued_at)
            b->issued_at = this_update;
        return LUNA_OK;
    }
    case LUNA_HWCOL_TCB_INFO:
        return copy_doc(p, n, &b->tcb_info, &b->tcb_info_len);
    case LUNA_HWCOL_QE_IDENTITY:
        return copy_doc(p, n, &b->qe_identity, &b->qe_identity_len);
    default:
        return LUNA_ERR_FORMAT;
    }
}

luna_err luna_hw_bundle_parse(const uint8_t *doc, size_t len, luna_hw_bundle **out)
{
    luna_err err = LUNA_OK;
    luna_reader r;
    const uint8_t *magic = NULL;
    size_t items = 0;

    if (out == NULL || (doc == NULL && len != 0))
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (len > LUNA_HWCOL_MAX)
        return LUNA_ERR_TOO_LARGE;
    luna_hw_bundle *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return LUNA_ERR_NOMEM;
    luna_reader_init(&r, doc, len);
    LUNA_TRY(luna_read_view(&r, &magic, LUNA_HWCOL_MAGIC_LEN), fail);
    LUNA_TRY_ENSURE(memcmp(magic, LUNA_HWCOL_MAGIC, LUNA_HWCOL_MAGIC_LEN) == 0,
                    LUNA_ERR_FORMAT, fail);
    while (luna_reader_left(&r) > 0) {
        uint8_t kind = 0;
        uint32_t n = 0;
        const uint8_t *p = NULL;
        LUNA_TRY_ENSURE(items < LUNA_HWCOL_MAX_ITEMS, LUNA_ERR_TOO_LARGE, fail);
        LUNA_TRY(luna_read_u8(&r, &kind), fail);
        LUNA_TRY(luna_read_u32(&r, &n), fail);
        LUNA_TRY_ENSURE(n > 0, LUNA_ERR_FORMAT, fail);
        LUNA_TRY_ENSURE(n <= LUNA_HWCOL_ITEM_MAX, LUNA_ERR_TOO_LARGE, fail);
        LUNA_TRY(luna_read_view(&r, &p, n), fail);
        LUNA_TRY(add_item(b, kind, p, n), fail);
        items++;
    }
    LUNA_TRY_ENSURE(items > 0, LUNA_ERR_FORMAT, fail);
    *out = b;
    return LUNA_OK;
fail:
    luna_hw_bundle_free(b);
    return err;
}

/* ---- chain ---- */

static int chain_cb(int ok, X509_STORE_CTX *sc)
{
    const bool *optional = X509_STORE_CTX_get_app_data(sc);
    /* Only the absence of a CRL is forgiven, and only when the policy
       said so; a stale, badly signed or revoking CRL never is. */
    if (!ok && optional != NULL && *optional &&
        X509_STORE_CTX_get_error(sc) == X509_V_ERR_UNABLE_TO_GET_CRL)
        return 1;
    return ok;
}

static luna_verify_reason map_x509_error(int e, const char **why)
{
    switch (e) {
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CERT_HAS_EXPIRED:
        *why = "a certificate of the platform chain is outside its validity";
        return LUNA_VERIFY_CERT_EXPIRED;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
        *why = "platform certificate does not chain to a trusted vendor root";
        return LUNA_VERIFY_UNKNOWN_ROOT;
    case X509_V_ERR_CERT_REVOKED:
        *why = "a certificate of the platform chain is revoked";
        return LUNA_VERIFY_REVOKED_PLATFORM_KEY;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
        *why = "no CRL for a certificate of the platform chain";
        return LUNA_VERIFY_COLLATERAL_MISSING;
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
        *why = "a CRL is outside its validity (past nextUpdate or not yet valid)";
        return LUNA_VERIFY_COLLATERAL_STALE;
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
        *why = "a CRL is not valid (signature, issuer or fields)";
        return LUNA_VERIFY_COLLATERAL_INVALID;
    default:
        *why = "platform certificate chain is not acceptable";
        return LUNA_VERIFY_BAD_CERTIFICATE;
    }
}

luna_verify_reason luna_hw_verify_chain(X509 *leaf, const luna_hw_chain_opts *o,
                                        X509 **root_out, bool *crl_checked, const char **why)
{
    luna_verify_reason r = LUNA_VERIFY_INTERNAL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *sc = NULL;
    STACK_OF(X509) *untrusted = NULL;
    STACK_OF(X509_CRL) *crls = NULL;
    bool optional = o->revocation_optional;
    bool missing_crl = false;
    STACK_OF(X509) *chain = NULL;
    X509 *top = NULL, *anchor = NULL;
    int n = 0;
    X509_VERIFY_PARAM *vp = NULL;

    if (root_out != NULL)
        *root_out = NULL;
    if (crl_checked != NULL)
        *crl_checked = false;
    *why = "out of memory";
    store = X509_STORE_new();
    sc = X509_STORE_CTX_new();
    untrusted = sk_X509_new_null();
    crls = sk_X509_CRL_new_null();
    if (store == NULL || sc == NULL || untrusted == NULL || crls == NULL)
        goto out;
    for (size_t i = 0; i < o->n_anchors; i++)
        if (X509_STORE_add_cert(store, o->anchors[i]) != 1)
            goto out;
    for (size_t i = 0; i < o->n_untrusted; i++)
        if (sk_X509_push(untrusted, o->untrusted[i]) <= 0)
            goto out;
    for (size_t i = 0; i < o->n_crls; i++)
        if (sk_X509_CRL_push(crls, o->crls[i]) <= 0)
            goto out;
    if (X509_STORE_CTX_init(sc, store, leaf, untrusted) != 1)
        goto out;
    X509_STORE_CTX_set_app_data(sc, &optional);
    X509_STORE_CTX_set_verify_cb(sc, chain_cb);
    vp = X509_STORE_CTX_get0_param(sc);
    X509_VERIFY_PARAM_set_time(vp, (time_t)o->now);
    X509_VERIFY_PARAM_set_depth(vp, 4);
    if (o->check_crls) {
        X509_STORE_CTX_set0_crls(sc, crls);
        X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    /* The vendors' certificates predate RFC 5280 strictness (AMD's VCEK
       has no key identifiers), so X509_V_FLAG_X509_STRICT is not set; the
       backends check the profile fields they rely on themselves. */
    if (X509_verify_cert(sc) != 1) {
        r = map_x509_error(X509_STORE_CTX_get_error(sc), why);
        goto out;
    }
    chain = X509_STORE_CTX_get0_chain(sc);
    n = chain != NULL ? sk_X509_num(chain) : 0;
    top = n > 0 ? sk_X509_value(chain, n - 1) : NULL;
    for (size_t i = 0; top != NULL && i < o->n_anchors && anchor == NULL; i++)
        if (X509_cmp(top, o->anchors[i]) == 0)
            anchor = o->anchors[i];
    if (anchor == NULL) {
        *why = "platform chain does not end at a pinned vendor root";
        r = LUNA_VERIFY_UNKNOWN_ROOT;
        goto out;
    }
    if (o->check_crls) {
        /* Which certificates had a CRL: each non-root one must find one
           whose issuer is its issuer. */
        for (int i = 0; i + 1 < n; i++) {
            const X509_NAME *iss = X509_get_issuer_name(sk_X509_value(chain, i));
            bool found = false;
            for (size_t j = 0; j < o->n_crls && !found; j++)
                found = X509_NAME_cmp(iss, X509_CRL_get_issuer(o->crls[j])) == 0;
            if (!found)
                missing_crl = true;
        }
    }
    if (root_out != NULL)
        *root_out = anchor;
    if (crl_checked != NULL)
        *crl_checked = o->check_crls && !missing_crl;
    r = LUNA_VERIFY_OK;
out:
    X509_STORE_CTX_free(sc);
    X509_STORE_free(store);
    sk_X509_free(untrusted);
    sk_X509_CRL_free(crls);
    return r;
}

/* ---- certificate fields ---- */

luna_verify_reason luna_hw_ec_point(EVP_PKEY *key, luna_ec_curve curve, uint8_t *out,
                                    size_t cap, size_t *len, const char **why)
{
    char group[32];
    size_t n = 0;
    const char *want = curve == LUNA_EC_P384 ? "secp384r1" : "prime256v1";
    size_t want_len = curve == LUNA_EC_P384 ? 97 : 65;

    *why = "platform key is not an EC key on the expected curve";
    if (key == NULL || !EVP_PKEY_is_a(key, "EC") ||
        EVP_PKEY_get_group_name(key, group, sizeof(group), &n) != 1 || strcmp(group, want) != 0)
        return LUNA_VERIFY_BAD_CERTIFICATE;
    if (cap < want_len ||
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, cap, &n) != 1 ||
        n != want_len || out[0] != 0x04)
        return LUNA_VERIFY_BAD_CERTIFICATE;
    *len = n;
    return LUNA_VERIFY_OK;
}

bool luna_hw_cn(const X509_NAME *name, char *out, size_t cap)
{
    int idx = name != NULL ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (idx < 0 || cap == 0)
        return false;
    /* Exactly one CN, or the name is ambiguous. */
    if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
        return false;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    int n = s != NULL ? ASN1_STRING_length(s) : -1;
    if (n <= 0 || (size_t)n >= cap)
        return false;
    const unsigned char *d = ASN1_STRING_get0_data(s);
    for (int i = 0; i < n; i++)
        if (d[i] < 0x20 || d[i] > 0x7e)
            return false;
    memcpy(out, d, (size_t)n);
    out[n] = '\0';
    return true;
}

bool luna_hw_ext(const X509 *cert, const char *oid, const uint8_t **val, size_t *len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    if (obj == NULL)
        return false;
    int idx = X509_get_ext_by_OBJ(cert, obj, -1);
    int again = idx >= 0 ? X509_get_ext_by_OBJ(cert, obj, idx) : -1;
    ASN1_OBJECT_free(obj);
    if (idx < 0 || again >= 0)
        return false;
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
    if (v == NULL || ASN1_STRING_length(v) <= 0)
        return false;
    *val = ASN1_STRING_get0_data(v);
    *len = (size_t)ASN1_STRING_length(v);
    return true;
}

bool luna_hw_serial(const X509 *cert, uint8_t out[LUNA_CLAIM_SERIAL_MAX], size_t *len)
{
    const ASN1_INTEGER *ser = X509_get0_serialNumber(cert);
    if (ser == NULL || ASN1_STRING_type(ser) != V_ASN1_INTEGER || ASN1_STRING_length(ser) <= 0 ||
        ASN1_STRING_length(ser) > LUNA_CLAIM_SERIAL_MAX)
        return false;
    *len = (size_t)ASN1_STRING_length(ser);
    memcpy(out, ASN1_STRING_get0_data(ser), *len);
    return true;
}
