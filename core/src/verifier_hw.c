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
    free(b->raw);
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
        b->cert_der[b->n_certs] = p;
        b->cert_der_len[b->n_certs] = n;
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
        b->crl_der[b->n_crls] = p;
        b->crl_der_len[b->n_crls] = n;
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
    /* The DER views of the chain cache keys point into this copy. */
    b->raw = malloc(len > 0 ? len : 1);
    LUNA_TRY_ENSURE(b->raw != NULL, LUNA_ERR_NOMEM, fail);
    if (len > 0)
        memcpy(b->raw, doc, len);
    luna_reader_init(&r, b->raw, len);
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
    if (o->window_not_before != NULL && o->window_not_after != NULL) {
        int64_t nb = INT64_MIN, na = INT64_MAX;
        for (int i = 0; i < n; i++) {
            X509 *c = sk_X509_value(chain, i);
            int64_t a = 0, z = 0;
            if (luna_hw_asn1_time(X509_get0_notBefore(c), &a) != LUNA_OK ||
                luna_hw_asn1_time(X509_get0_notAfter(c), &z) != LUNA_OK) {
                *why = "certificate validity is unreadable";
                r = LUNA_VERIFY_BAD_CERTIFICATE;
                goto out;
            }
            nb = a > nb ? a : nb;
            na = z < na ? z : na;
            /* Every CRL OpenSSL could have used for this certificate. */
            for (size_t j = 0; o->check_crls && i + 1 < n && j < o->n_crls; j++) {
                if (X509_NAME_cmp(X509_get_issuer_name(c), X509_CRL_get_issuer(o->crls[j])) != 0)
                    continue;
                if (luna_hw_asn1_time(X509_CRL_get0_lastUpdate(o->crls[j]), &a) != LUNA_OK ||
                    X509_CRL_get0_nextUpdate(o->crls[j]) == NULL ||
                    luna_hw_asn1_time(X509_CRL_get0_nextUpdate(o->crls[j]), &z) != LUNA_OK) {
                    *why = "a CRL has no valid update times";
                    r = LUNA_VERIFY_COLLATERAL_INVALID;
                    goto out;
                }
                nb = a > nb ? a : nb;
                na = z < na ? z : na;
            }
        }
        *o->window_not_before = nb;
        *o->window_not_after = na;
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

/* ---- chain cache keys ---- */

#define CACHE_KEY_MAX (LUNA_HWCOL_MAX + 64u * 1024u)

luna_err luna_hw_cache_key(const uint8_t *const *parts, const size_t *lens, size_t n,
                           uint8_t **out, size_t *out_len)
{
    size_t total = 0;
    luna_wbuf w;

    if (out == NULL || out_len == NULL || (n > 0 && (parts == NULL || lens == NULL)))
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    *out_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > CACHE_KEY_MAX || total > CACHE_KEY_MAX - 4 - lens[i])
            return LUNA_ERR_TOO_LARGE;
        total += 4 + lens[i];
    }
    if (total == 0)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_wbuf_init_alloc(&w, total));
    for (size_t i = 0; i < n; i++) {
        if (luna_write_u32(&w, (uint32_t)lens[i]) != LUNA_OK ||
            luna_write_bytes(&w, parts[i], lens[i]) != LUNA_OK) {
            luna_wbuf_free(&w);
            return LUNA_ERR_INTERNAL;
        }
    }
    /* Ownership moves to the caller (freed with free(), not wiped: a
       chain is public data). */
    *out = w.data;
    *out_len = w.len;
    return LUNA_OK;
}

/* ---- policy expectations on hardware claims ---- */

static luna_verify_reason hw_fail(const char **why, const char *msg, luna_verify_reason r)
{
    *why = msg;
    return r;
}

static bool set(luna_expect m)
{
    return m == LUNA_EXPECT_ANY || m == LUNA_EXPECT_EXACT;
}

static bool bit_set(luna_bit_rule b)
{
    return b == LUNA_BIT_ANY || b == LUNA_BIT_REQUIRED || b == LUNA_BIT_FORBIDDEN;
}

/* ANY passes; EXACT compares; anything else (UNSET, out of range) fails. */
static bool bytes_ok(luna_expect m, const uint8_t *want, const uint8_t *got, size_t n)
{
    if (m == LUNA_EXPECT_ANY)
        return true;
    return m == LUNA_EXPECT_EXACT && luna_ct_equal(want, got, n);
}

static bool bit_ok(luna_bit_rule rule, uint64_t word, uint64_t bit)
{
    switch (rule) {
    case LUNA_BIT_ANY: return true;
    case LUNA_BIT_REQUIRED: return (word & bit) != 0;
    case LUNA_BIT_FORBIDDEN: return (word & bit) == 0;
    case LUNA_BIT_UNSET: break;
    }
    return false;
}

luna_verify_reason luna_hw_expect_complete(luna_evidence_type type, const void *expect,
                                           const char **why)
{
    bool ok = expect != NULL;
    if (ok && type == LUNA_EVIDENCE_SEV_SNP) {
        const luna_snp_expect *e = expect;
        ok = bit_set(e->smt) && bit_set(e->migrate_ma) && bit_set(e->single_socket) &&
             set(e->vmpl_mode) && set(e->report_data.mode) && set(e->host_data.mode) &&
             set(e->min_tcb_mode);
        if (!ok)
            *why = "policy leaves a SEV-SNP expectation unset (POLICY bits, VMPL, REPORT_DATA, "
                   "HOST_DATA or minimum TCB)";
    } else if (ok && type == LUNA_EVIDENCE_TDX) {
        const luna_tdx_expect *e = expect;
        ok = set(e->mrconfigid.mode) && set(e->mrownerconfig.mode) && set(e->report_data.mode);
        for (size_t i = 0; ok && i < 4; i++)
            ok = set(e->rtmr[i].mode);
        if (!ok)
            *why = "policy leaves a TDX expectation unset (RTMR0-3, MRCONFIGID, MROWNERCONFIG "
                   "or REPORTDATA)";
    } else if (ok && type == LUNA_EVIDENCE_SGX) {
        const luna_sgx_expect *e = expect;
        ok = set(e->isvprodid_mode) && set(e->min_isvsvn_mode) && set(e->report_data.mode);
        if (!ok)
            *why = "policy leaves an SGX expectation unset (ISVPRODID, minimum ISVSVN or "
                   "REPORTDATA)";
    } else {
        ok = false;
        *why = "policy sets no hardware expectations for this type";
    }
    return ok ? LUNA_VERIFY_OK : LUNA_VERIFY_POLICY_INCOMPLETE;
}

#define SNP_POLICY_SMT (1ull << 16)
#define SNP_POLICY_MIGRATE_MA (1ull << 18)
#define SNP_POLICY_SINGLE_SOCKET (1ull << 20)

static luna_verify_reason snp_check(const luna_snp_expect *e, const luna_claims *c,
                                    const char **why)
{
    if (!bit_ok(e->smt, c->snp_policy, SNP_POLICY_SMT))
        return hw_fail(why, "SEV-SNP POLICY.SMT is not what the policy requires",
                       LUNA_VERIFY_GUEST_POLICY_REFUSED);
    if (!bit_ok(e->migrate_ma, c->snp_policy, SNP_POLICY_MIGRATE_MA))
        return hw_fail(why, "SEV-SNP POLICY.MIGRATE_MA is not what the policy requires",
                       LUNA_VERIFY_GUEST_POLICY_REFUSED);
    if (!bit_ok(e->single_socket, c->snp_policy, SNP_POLICY_SINGLE_SOCKET))
        return hw_fail(why, "SEV-SNP POLICY.SINGLE_SOCKET is not what the policy requires",
                       LUNA_VERIFY_GUEST_POLICY_REFUSED);
    if (!(e->vmpl_mode == LUNA_EXPECT_ANY ||
          (e->vmpl_mode == LUNA_EXPECT_EXACT && c->snp_vmpl == e->vmpl)))
        return hw_fail(why, "SEV-SNP VMPL is not the expected one", LUNA_VERIFY_VMPL_MISMATCH);
    if (!bytes_ok(e->report_data.mode, e->report_data.value, c->report_data, 64))
        return hw_fail(why, "SEV-SNP REPORT_DATA is not the expected value",
                       LUNA_VERIFY_REPORT_DATA_MISMATCH);
    if (!bytes_ok(e->host_data.mode, e->host_data.value, c->snp_host_data, 32))
        return hw_fail(why, "SEV-SNP HOST_DATA is not the expected value",
                       LUNA_VERIFY_HOST_DATA_MISMATCH);
    if (e->min_tcb_mode == LUNA_EXPECT_ANY)
        return LUNA_VERIFY_OK;
    if (e->min_tcb_mode != LUNA_EXPECT_EXACT)
        return hw_fail(why, "SEV-SNP minimum TCB rule is unset", LUNA_VERIFY_POLICY_INCOMPLETE);
    /* Each component on its own: a newer microcode does not make up for
       an older SNP firmware. */
    const luna_snp_tcb *t = &c->snp_reported_tcb, *m = &e->min_tcb;
    if (t->bootloader < m->bootloader)
        return hw_fail(why, "SEV-SNP boot loader SVN is below the policy minimum",
                       LUNA_VERIFY_TCB_BELOW_MINIMUM);
    if (t->tee < m->tee)
        return hw_fail(why, "SEV-SNP TEE SVN is below the policy minimum",
                       LUNA_VERIFY_TCB_BELOW_MINIMUM);
    if (t->snp < m->snp)
        return hw_fail(why, "SEV-SNP SNP firmware SVN is below the policy minimum",
                       LUNA_VERIFY_TCB_BELOW_MINIMUM);
    if (t->microcode < m->microcode)
        return hw_fail(why, "SEV-SNP microcode SVN is below the policy minimum",
                       LUNA_VERIFY_TCB_BELOW_MINIMUM);
    return LUNA_VERIFY_OK;
}

static luna_verify_reason tdx_check(const luna_tdx_expect *e, const luna_claims *c,
                                    const char **why)
{
    static const char *const msg[4] = {"TDX RTMR0 is not the expected value",
                                       "TDX RTMR1 is not the expected value",
                                       "TDX RTMR2 is not the expected value",
                                       "TDX RTMR3 is not the expected value"};
    for (size_t i = 0; i < 4; i++)
        if (!bytes_ok(e->rtmr[i].mode, e->rtmr[i].value, c->tdx_rtmr[i], 48))
            return hw_fail(why, msg[i], LUNA_VERIFY_RTMR_MISMATCH);
    if (!bytes_ok(e->mrconfigid.mode, e->mrconfigid.value, c->tdx_mrconfigid, 48))
        return hw_fail(why, "TDX MRCONFIGID is not the expected value",
                       LUNA_VERIFY_MRCONFIGID_MISMATCH);
    if (!bytes_ok(e->mrownerconfig.mode, e->mrownerconfig.value, c->tdx_mrownerconfig, 48))
        return hw_fail(why, "TDX MROWNERCONFIG is not the expected value",
                       LUNA_VERIFY_MROWNERCONFIG_MISMATCH);
    if (!bytes_ok(e->report_data.mode, e->report_data.value, c->report_data, 64))
        return hw_fail(why, "TDX REPORTDATA is not the expected value",
                       LUNA_VERIFY_REPORT_DATA_MISMATCH);
    return LUNA_VERIFY_OK;
}

static luna_verify_reason sgx_check(const luna_sgx_expect *e, const luna_claims *c,
                                    const char **why)
{
    if (!(e->isvprodid_mode == LUNA_EXPECT_ANY ||
          (e->isvprodid_mode == LUNA_EXPECT_EXACT && c->sgx_isvprodid == e->isvprodid)))
        return hw_fail(why, "SGX ISVPRODID is not the expected product",
                       LUNA_VERIFY_ISVPRODID_MISMATCH);
    if (!(e->min_isvsvn_mode == LUNA_EXPECT_ANY ||
          (e->min_isvsvn_mode == LUNA_EXPECT_EXACT && c->sgx_isvsvn >= e->min_isvsvn)))
        return hw_fail(why, "SGX ISVSVN is below the policy minimum",
                       LUNA_VERIFY_ISVSVN_BELOW_MINIMUM);
    if (!bytes_ok(e->report_data.mode, e->report_data.value, c->report_data, 64))
        return hw_fail(why, "SGX REPORTDATA is not the expected value",
                       LUNA_VERIFY_REPORT_DATA_MISMATCH);
    return LUNA_VERIFY_OK;
}

luna_verify_reason luna_hw_expect_check(luna_evidence_type type, const void *expect,
                                        const luna_claims *c, const char **why)
{
    luna_verify_reason r = luna_hw_expect_complete(type, expect, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    if (c == NULL || c->type != type)
        return hw_fail(why, "claims are not of the expected type", LUNA_VERIFY_INTERNAL);
    switch (type) {
    case LUNA_EVIDENCE_SEV_SNP: return snp_check(expect, c, why);
    case LUNA_EVIDENCE_TDX: return tdx_check(expect, c, why);
    case LUNA_EVIDENCE_SGX: return sgx_check(expect, c, why);
    case LUNA_EVIDENCE_SIM:
    case LUNA_EVIDENCE_NITRO:
    case LUNA_EVIDENCE_TPM: break;
    }
    return hw_fail(why, "no hardware expectations for this type", LUNA_VERIFY_INTERNAL);
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
