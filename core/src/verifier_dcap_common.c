/*
 * verifier_dcap_common.c - Intel DCAP logic shared by the TDX and SGX
 * backends: quote signature data, the PCK chain and CRLs, the QE report
 * and its binding to the attestation key, the PCK SGX extensions, the TCB
 * Info / QE Identity collateral (signature over the exact signed text,
 * validity) and the TCB level evaluation (Intel PCS API v4 rules).
 *
 * It must never re-serialise signed JSON (the signature covers the exact
 * bytes), never accept collateral that is not signed by a TCB Signing
 * certificate chaining to a policy anchor, and never pick a TCB level
 * other than the first one (in Intel's order) that the platform meets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/pki.h"
#include "verifier_dcap.h"

#define CERT_DATA_PCK_CHAIN 5
#define CERT_DATA_QE_REPORT 6
#define PCK_CHAIN_MAX (16u * 1024u)
#define DCAP_JSON_MAX (64u * 1024u)

/* ---- quote structures ---- */

luna_err luna_dcap_read_report(luna_reader *r, uint8_t raw[DCAP_REPORT_LEN], dcap_report *out)
{
    luna_reader b;
    const uint8_t *p = NULL;
    LUNA_GUARD(luna_read_view(r, &p, DCAP_REPORT_LEN));
    memcpy(raw, p, DCAP_REPORT_LEN);
    memset(out, 0, sizeof(*out));
    luna_reader_init(&b, p, DCAP_REPORT_LEN);
    LUNA_GUARD(luna_read_bytes(&b, out->cpusvn, 16));
    LUNA_GUARD(luna_read_u32_le(&b, &out->miscselect));
    LUNA_GUARD(luna_read_skip(&b, 12 + 16)); /* reserved, ISV_EXT_PROD_ID */
    LUNA_GUARD(luna_read_bytes(&b, out->attributes, 16));
    LUNA_GUARD(luna_read_bytes(&b, out->mrenclave, 32));
    LUNA_GUARD(luna_read_skip(&b, 32));
    LUNA_GUARD(luna_read_bytes(&b, out->mrsigner, 32));
    LUNA_GUARD(luna_read_skip(&b, 32 + 64)); /* reserved, CONFIG_ID */
    LUNA_GUARD(luna_read_u16_le(&b, &out->isvprodid));
    LUNA_GUARD(luna_read_u16_le(&b, &out->isvsvn));
    LUNA_GUARD(luna_read_skip(&b, 2 + 42 + 16)); /* CONFIG_SVN, reserved, ISV_FAMILY_ID */
    LUNA_GUARD(luna_read_bytes(&b, out->report_data, 64));
    return luna_read_end(&b);
}

void luna_dcap_sigdata_clear(dcap_sigdata *s)
{
    for (size_t i = 0; i < s->n_pck; i++)
        X509_free(s->pck[i]);
    s->n_pck = 0;
}

static bool pem_space(uint8_t c)
{
    return c == '\n' || c == '\r' || c == ' ' || c == '\t';
}

/* Counts the "-----BEGIN CERTIFICATE-----" ... "-----END CERTIFICATE-----"
   blocks of p[0..n), or returns 0 when anything but whitespace lies
   between or around them (the PEM reader itself would skip such text). */
static size_t pem_blocks(const uint8_t *p, size_t n)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    static const char end[] = "-----END CERTIFICATE-----";
    size_t pos = 0, count = 0;
    for (;;) {
        while (pos < n && pem_space(p[pos]))
            pos++;
        if (pos == n)
            return count;
        if (n - pos < sizeof(begin) - 1 || memcmp(p + pos, begin, sizeof(begin) - 1) != 0)
            return 0;
        pos += sizeof(begin) - 1;
        bool found = false;
        for (; pos + sizeof(end) - 1 <= n; pos++) {
            if (memcmp(p + pos, end, sizeof(end) - 1) == 0) {
                found = true;
                break;
            }
            if (p[pos] == '-')
                return 0; /* a nested marker */
        }
        if (!found)
            return 0;
        pos += sizeof(end) - 1;
        count++;
    }
}

/* The PEM chain: certificates only, then at most NUL/whitespace padding. */
static luna_verify_reason read_pem_chain(const uint8_t *p, size_t n, dcap_sigdata *s,
                                         const char **why)
{
    BIO *bio = NULL;
    luna_verify_reason r = LUNA_VERIFY_MALFORMED;
    size_t end = n;

    *why = "PCK certificate chain is not a PEM chain";
    while (end > 0 && (p[end - 1] == 0 || p[end - 1] == '\n' || p[end - 1] == '\r' ||
                       p[end - 1] == ' '))
        end--;
    if (end == 0 || n > PCK_CHAIN_MAX)
        return LUNA_VERIFY_MALFORMED;
    for (size_t i = 0; i < end; i++)
        if (p[i] == 0)
            return LUNA_VERIFY_MALFORMED;
    bio = BIO_new_mem_buf(p, (int)end);
    if (bio == NULL)
        return LUNA_VERIFY_INTERNAL;
    for (;;) {
        X509 *c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (c == NULL)
            break;
        if (s->n_pck >= DCAP_MAX_PCK_CHAIN) {
            X509_free(c);
            goto out;
        }
        s->pck[s->n_pck++] = c;
    }
    /* Every block must have been a certificate, and nothing else there. */
    if (s->n_pck < 2 || pem_blocks(p, end) != s->n_pck)
        goto out;
    r = LUNA_VERIFY_OK;
out:
    BIO_free(bio);
    if (r != LUNA_VERIFY_OK)
        luna_dcap_sigdata_clear(s);
    return r;
}

static luna_verify_reason read_cert_data(luna_reader *r, uint16_t want, const uint8_t **p,
                                         uint32_t *n, const char **why)
{
    uint16_t type = 0;
    if (luna_read_u16_le(r, &type) != LUNA_OK || luna_read_u32_le(r, n) != LUNA_OK ||
        luna_read_view(r, p, *n) != LUNA_OK) {
        *why = "quote certification data is truncated";
        return LUNA_VERIFY_MALFORMED;
    }
    if (type != want) {
        *why = "quote certification data type is not supported";
        return LUNA_VERIFY_UNSUPPORTED_VERSION;
    }
    return LUNA_VERIFY_OK;
}

static luna_verify_reason read_qe_part(luna_reader *r, dcap_sigdata *s, const char **why)
{
    uint16_t auth_len = 0;
    const uint8_t *chain = NULL;
    uint32_t chain_len = 0;
    luna_verify_reason res;

    *why = "quote QE report section is truncated";
    if (luna_dcap_read_report(r, s->qe_report_raw, &s->qe) != LUNA_OK ||
        luna_read_bytes(r, s->qe_sig, DCAP_SIG_LEN) != LUNA_OK ||
        luna_read_u16_le(r, &auth_len) != LUNA_OK ||
        luna_read_view(r, &s->auth, auth_len) != LUNA_OK)
        return LUNA_VERIFY_MALFORMED;
    s->auth_len = auth_len;
    res = read_cert_data(r, CERT_DATA_PCK_CHAIN, &chain, &chain_len, why);
    if (res != LUNA_VERIFY_OK)
        return res;
    s->pck_pem = chain;
    s->pck_pem_len = chain_len;
    return read_pem_chain(chain, chain_len, s, why);
}

luna_verify_reason luna_dcap_read_sigdata(luna_reader *r, bool wrapped, dcap_sigdata *s,
                                          const char **why)
{
    const uint8_t *x = NULL;
    luna_verify_reason res;

    memset(s, 0, sizeof(*s));
    *why = "quote signature data is truncated";
    if (luna_read_bytes(r, s->quote_sig, DCAP_SIG_LEN) != LUNA_OK ||
        luna_read_view(r, &x, 64) != LUNA_OK)
        return LUNA_VERIFY_MALFORMED;
    s->att_key[0] = 0x04;
    memcpy(s->att_key + 1, x, 64);
    if (wrapped) {
        const uint8_t *inner = NULL;
        uint32_t inner_len = 0;
        luna_reader ir;
        res = read_cert_data(r, CERT_DATA_QE_REPORT, &inner, &inner_len, why);
        if (res != LUNA_VERIFY_OK)
            return res;
        luna_reader_init(&ir, inner, inner_len);
        res = read_qe_part(&ir, s, why);
        if (res == LUNA_VERIFY_OK && luna_read_end(&ir) != LUNA_OK) {
            *why = "trailing bytes in the QE certification data";
            res = LUNA_VERIFY_MALFORMED;
        }
    } else {
        res = read_qe_part(r, s, why);
    }
    if (res == LUNA_VERIFY_OK && luna_read_end(r) != LUNA_OK) {
        *why = "trailing bytes in the quote signature data";
        res = LUNA_VERIFY_MALFORMED;
    }
    if (res != LUNA_VERIFY_OK)
        luna_dcap_sigdata_clear(s);
    return res;
}

/* ---- PCK certificate SGX extensions (Intel PCK Certificate profile) ---- */

/* 1.2.840.113741.1.13.1 */
static const uint8_t OID_SGX[] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01};
#define OID_SGX_STR "1.2.840.113741.1.13.1"

static luna_err der_tlv(luna_reader *r, uint8_t *tag, const uint8_t **val, size_t *len)
{
    uint8_t l0 = 0;
    LUNA_GUARD(luna_read_u8(r, tag));
    LUNA_ENSURE((*tag & 0x1f) != 0x1f, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_read_u8(r, &l0));
    if (l0 < 0x80) {
        *len = l0;
    } else if (l0 == 0x81) {
        uint8_t v = 0;
        LUNA_GUARD(luna_read_u8(r, &v));
        LUNA_ENSURE(v >= 0x80, LUNA_ERR_FORMAT);
        *len = v;
    } else if (l0 == 0x82) {
        uint16_t v = 0;
        LUNA_GUARD(luna_read_u16(r, &v));
        LUNA_ENSURE(v >= 0x100, LUNA_ERR_FORMAT);
        *len = v;
    } else {
        return LUNA_ERR_FORMAT;
    }
    return luna_read_view(r, val, *len);
}

/* A DER INTEGER in 0..max. */
static luna_err der_small_uint(const uint8_t *v, size_t n, uint32_t max, uint32_t *out)
{
    uint32_t x = 0;
    LUNA_ENSURE(n >= 1 && n <= 3 && (v[0] & 0x80) == 0, LUNA_ERR_FORMAT);
    LUNA_ENSURE(n == 1 || v[0] != 0 || (v[1] & 0x80) != 0, LUNA_ERR_FORMAT); /* minimal */
    for (size_t i = 0; i < n; i++)
        x = x << 8 | v[i];
    LUNA_ENSURE(x <= max, LUNA_ERR_FORMAT);
    *out = x;
    return LUNA_OK;
}

/* Sub-OID of OID_SGX: the arcs after the prefix (each < 128). */
static bool sgx_arc(const uint8_t *oid, size_t n, uint8_t a1, int a2)
{
    size_t want = sizeof(OID_SGX) + (a2 >= 0 ? 2 : 1);
    return n == want && memcmp(oid, OID_SGX, sizeof(OID_SGX)) == 0 &&
           oid[sizeof(OID_SGX)] == a1 && (a2 < 0 || oid[sizeof(OID_SGX) + 1] == (uint8_t)a2);
}

static luna_err parse_tcb_seq(const uint8_t *p, size_t n, dcap_pck *out, unsigned *seen)
{
    luna_reader r;
    luna_reader_init(&r, p, n);
    while (luna_reader_left(&r) > 0) {
        uint8_t tag = 0;
        const uint8_t *v = NULL, *oid = NULL, *val = NULL;
        size_t vl = 0, ol = 0, al = 0;
        luna_reader e;
        LUNA_GUARD(der_tlv(&r, &tag, &v, &vl));
        LUNA_ENSURE(tag == 0x30, LUNA_ERR_FORMAT);
        luna_reader_init(&e, v, vl);
        LUNA_GUARD(der_tlv(&e, &tag, &oid, &ol));
        LUNA_ENSURE(tag == 0x06, LUNA_ERR_FORMAT);
        uint8_t vt = 0;
        LUNA_GUARD(der_tlv(&e, &vt, &val, &al));
        LUNA_GUARD(luna_read_end(&e));
        for (int k = 1; k <= 17; k++) {
            if (!sgx_arc(oid, ol, 2, k))
                continue;
            uint32_t x = 0;
            LUNA_ENSURE(vt == 0x02, LUNA_ERR_FORMAT);
            LUNA_GUARD(der_small_uint(val, al, k == 17 ? 0xffff : 0xff, &x));
            if (k == 17)
                out->pcesvn = (uint16_t)x;
            else
                out->comp[k - 1] = (uint8_t)x;
            *seen |= 1u << k;
        }
    }
    return LUNA_OK;
}

static luna_err parse_pck_ext(X509 *leaf, dcap_pck *out)
{
    const uint8_t *v = NULL, *seq = NULL;
    size_t n = 0, sl = 0;
    uint8_t tag = 0;
    unsigned seen = 0;
    luna_reader r;

    LUNA_ENSURE(luna_hw_ext(leaf, OID_SGX_STR, &v, &n), LUNA_ERR_FORMAT);
    luna_reader_init(&r, v, n);
    LUNA_GUARD(der_tlv(&r, &tag, &seq, &sl));
    LUNA_ENSURE(tag == 0x30, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_read_end(&r));
    luna_reader_init(&r, seq, sl);
    while (luna_reader_left(&r) > 0) {
        const uint8_t *e = NULL, *oid = NULL, *val = NULL;
        size_t el = 0, ol = 0, vl = 0;
        uint8_t vt = 0;
        luna_reader er;
        LUNA_GUARD(der_tlv(&r, &tag, &e, &el));
        LUNA_ENSURE(tag == 0x30, LUNA_ERR_FORMAT);
        luna_reader_init(&er, e, el);
        LUNA_GUARD(der_tlv(&er, &tag, &oid, &ol));
        LUNA_ENSURE(tag == 0x06, LUNA_ERR_FORMAT);
        LUNA_GUARD(der_tlv(&er, &vt, &val, &vl));
        if (sgx_arc(oid, ol, 2, -1)) {
            LUNA_ENSURE(vt == 0x30 && (seen & 1u) == 0, LUNA_ERR_FORMAT);
            unsigned comps = 0;
            LUNA_GUARD(parse_tcb_seq(val, vl, out, &comps));
            LUNA_ENSURE(comps == 0x3FFFEu, LUNA_ERR_FORMAT); /* arcs 1..17 */
            seen |= 1u;
        } else if (sgx_arc(oid, ol, 3, -1)) {
            LUNA_ENSURE(vt == 0x04 && vl == 2 && (seen & 2u) == 0, LUNA_ERR_FORMAT);
            memcpy(out->pceid, val, 2);
            seen |= 2u;
        } else if (sgx_arc(oid, ol, 4, -1)) {
            LUNA_ENSURE(vt == 0x04 && vl == 6 && (seen & 4u) == 0, LUNA_ERR_FORMAT);
            memcpy(out->fmspc, val, 6);
            seen |= 4u;
        }
    }
    LUNA_ENSURE(seen == 7u, LUNA_ERR_FORMAT);
    return LUNA_OK;
}

/* ---- quote verification ---- */

static luna_verify_reason leaf_p256(X509 *c, uint8_t pt[65], const char **why)
{
    size_t n = 0;
    return luna_hw_ec_point(X509_get0_pubkey(c), LUNA_EC_P256, pt, 65, &n, why);
}

static luna_verify_reason chain_cache_key(const dcap_sigdata *sd, const luna_hw_bundle *b,
                                          uint8_t **key, size_t *key_len, const char **why)
{
    const uint8_t *parts[1 + LUNA_HWCOL_MAX_ITEMS];
    size_t lens[1 + LUNA_HWCOL_MAX_ITEMS];
    size_t n = 0;
    parts[n] = sd->pck_pem;
    lens[n++] = sd->pck_pem_len;
    for (size_t i = 0; b != NULL && i < b->n_crls; i++) {
        parts[n] = b->crl_der[i];
        lens[n++] = b->crl_der_len[i];
    }
    if (luna_hw_cache_key(parts, lens, n, key, key_len) != LUNA_OK) {
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    }
    return LUNA_VERIFY_OK;
}

luna_verify_reason luna_dcap_verify_quote(const dcap_sigdata *sd, const uint8_t *signed_part,
                                          size_t signed_len, const luna_backend_ctx *ctx,
                                          luna_evidence_type type, dcap_pck *pck,
                                          bool *crl_checked, const char **why)
{
    const luna_hw_bundle *b = ctx->collateral;
    uint8_t pt[65];
    uint8_t bind[LUNA_SHA256_LEN];
    luna_verify_reason r;
    uint8_t *key = NULL;
    size_t key_len = 0;
    luna_chain_entry ce;

    /* The chain cache key is the PEM chain exactly as quoted plus every
       CRL of the bundle (their bytes decide revocation): a hit means the
       same certificates were checked against the same CRLs, and the
       entry lives only inside the window of every certificate and CRL
       involved, so CRL freshness is still checked at this time. */
    r = chain_cache_key(sd, b, &key, &key_len, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    if (luna_chain_cache_get(ctx->cache, type, key, key_len, ctx->now, &ce) &&
        ce.kind == LUNA_CHAIN_KEY_P256 && ce.key_len == sizeof(pt)) {
        memcpy(pt, ce.key, sizeof(pt));
        *crl_checked = ce.revocation_checked;
    } else {
        /* Without a bundle the chain is still checked first (a wrong root
           is reported as such); the missing CRLs and TCB documents refuse
           later. */
        memset(&ce, 0, sizeof(ce));
        luna_hw_chain_opts o = {.anchors = ctx->anchors,
                                .n_anchors = ctx->n_anchors,
                                .untrusted = sd->pck + 1,
                                .n_untrusted = sd->n_pck - 1,
                                .crls = b != NULL ? b->crls : NULL,
                                .n_crls = b != NULL ? b->n_crls : 0,
                                .check_crls = true,
                                .revocation_optional = ctx->revocation_optional,
                                .now = ctx->now,
                                .window_not_before = &ce.not_before,
                                .window_not_after = &ce.not_after};
        r = luna_hw_verify_chain(sd->pck[0], &o, NULL, crl_checked, why);
        if (r == LUNA_VERIFY_OK)
            r = leaf_p256(sd->pck[0], pt, why);
        if (r != LUNA_VERIFY_OK) {
            free(key);
            return r;
        }
        ce.type = type;
        ce.kind = LUNA_CHAIN_KEY_P256;
        memcpy(ce.key, pt, sizeof(pt));
        ce.key_len = sizeof(pt);
        ce.revocation_checked = *crl_checked;
        luna_chain_cache_put(ctx->cache, key, key_len, &ce);
    }
    free(key);
    memset(pck, 0, sizeof(*pck));
    if (parse_pck_ext(sd->pck[0], pck) != LUNA_OK ||
        !luna_hw_serial(sd->pck[0], pck->serial, &pck->serial_len)) {
        *why = "PCK certificate SGX extensions are missing or malformed";
        return LUNA_VERIFY_BAD_CERTIFICATE;
    }
    if (luna_ecdsa_verify(LUNA_EC_P256, pt, sizeof(pt), LUNA_SIG_P1363, sd->qe_report_raw,
                          DCAP_REPORT_LEN, sd->qe_sig, DCAP_SIG_LEN) != LUNA_OK) {
        *why = "QE report signature does not verify with the PCK key";
        return LUNA_VERIFY_BAD_SIGNATURE;
    }
    /* The QE vouches for the attestation key through its REPORTDATA. */
    uint8_t *msg = malloc(64 + sd->auth_len);
    if (msg == NULL) {
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    }
    memcpy(msg, sd->att_key + 1, 64);
    if (sd->auth_len > 0)
        memcpy(msg + 64, sd->auth, sd->auth_len);
    luna_err e = luna_sha256(msg, 64 + sd->auth_len, bind);
    free(msg);
    static const uint8_t zero32[32];
    if (e != LUNA_OK || !luna_ct_equal(bind, sd->qe.report_data, 32) ||
        !luna_ct_equal(zero32, sd->qe.report_data + 32, 32)) {
        *why = "QE report does not bind the attestation key";
        return LUNA_VERIFY_BAD_SIGNATURE;
    }
    if (luna_ecdsa_verify(LUNA_EC_P256, sd->att_key, sizeof(sd->att_key), LUNA_SIG_P1363,
                          signed_part, signed_len, sd->quote_sig, DCAP_SIG_LEN) != LUNA_OK) {
        *why = "quote signature does not verify with the attestation key";
        return LUNA_VERIFY_BAD_SIGNATURE;
    }
    return LUNA_VERIFY_OK;
}

/* ---- TCB evaluation ---- */

/* Adds the comma-separated ids list[0..n) to adv, skipping ones already
   there; false when the result would not fit. */
static bool adv_merge(dcap_adv *adv, const char *list, size_t n)
{
    size_t i = 0;
    if (adv == NULL)
        return true;
    while (i < n) {
        size_t j = i;
        while (j < n && list[j] != ',')
            j++;
        const size_t idl = j - i;
        bool dup = false;
        for (size_t k = 0; k < adv->len && !dup;) {
            size_t e = k;
            while (e < adv->len && adv->s[e] != ',')
                e++;
            dup = e - k == idl && memcmp(adv->s + k, list + i, idl) == 0;
            k = e + 1;
        }
        if (!dup && idl > 0) {
            const size_t need = idl + (adv->len > 0 ? 1 : 0);
            if (need >= sizeof(adv->s) - adv->len)
                return false;
            if (adv->len > 0)
                adv->s[adv->len++] = ',';
            memcpy(adv->s + adv->len, list + i, idl);
            adv->len += idl;
            adv->s[adv->len] = '\0';
        }
        i = j + 1;
    }
    return true;
}

luna_tcb_status luna_dcap_worse(luna_tcb_status a, luna_tcb_status b)
{
    return a > b ? a : b;
}

static luna_verify_reason fresh(int64_t issue, int64_t next, const dcap_collateral *c,
                                int64_t now, const char *what, const char **why)
{
    if (now < issue || now > next || now < c->signer_not_before || now > c->signer_not_after) {
        *why = what;
        return LUNA_VERIFY_COLLATERAL_STALE;
    }
    return LUNA_VERIFY_OK;
}

static bool module_ok(const uint8_t mrsigner[48], const uint8_t attrs[8], const uint8_t mask[8],
                      const dcap_tdx_facts *tdx)
{
    if (!luna_ct_equal(mrsigner, tdx->mrsignerseam, 48))
        return false;
    for (int i = 0; i < 8; i++)
        if ((tdx->seam_attributes[i] & mask[i]) != attrs[i])
            return false;
    return true;
}

static luna_verify_reason module_status(const dcap_tcbinfo *t, const dcap_tdx_facts *tdx,
                                        luna_tcb_status *out, dcap_adv *adv, const char **why)
{
    const uint8_t major = tdx->tee_tcb_svn[1];
    if (major == 0) {
        if (!t->has_module || !module_ok(t->module_mrsigner, t->module_attributes,
                                         t->module_mask, tdx)) {
            *why = "TDX module signer or attributes are not the ones in TCB Info";
            return LUNA_VERIFY_UNKNOWN_SIGNER;
        }
        *out = LUNA_TCB_UP_TO_DATE;
        return LUNA_VERIFY_OK;
    }
    for (size_t i = 0; i < t->n_ids; i++) {
        const dcap_module_id *m = &t->ids[i];
        if (m->major != major)
            continue;
        if (!module_ok(m->mrsigner, m->attributes, m->mask, tdx)) {
            *why = "TDX module signer or attributes are not the ones in TCB Info";
            return LUNA_VERIFY_UNKNOWN_SIGNER;
        }
        for (size_t j = 0; j < m->n_levels; j++) {
            if (m->levels[j].isvsvn <= tdx->tee_tcb_svn[0]) {
                *out = m->levels[j].status;
                if (!adv_merge(adv, t->adv + m->levels[j].adv_off, m->levels[j].adv_len)) {
                    *why = "advisory ids of the matched TCB levels exceed the claims cap";
                    return LUNA_VERIFY_COLLATERAL_INVALID;
                }
                return LUNA_VERIFY_OK;
            }
        }
        break;
    }
    *why = "TDX module TCB level not supported by TCB Info";
    return LUNA_VERIFY_TCB_OUT_OF_DATE;
}

luna_verify_reason luna_dcap_tcb_status(const dcap_collateral *c, const dcap_pck *pck,
                                        const dcap_tdx_facts *tdx, int64_t now,
                                        luna_tcb_status *out, dcap_adv *adv, const char **why)
{
    luna_verify_reason r;
    if (c == NULL || !c->has_tcbinfo) {
        *why = "no TCB Info for this platform in the collateral";
        return LUNA_VERIFY_COLLATERAL_MISSING;
    }
    const dcap_tcbinfo *t = &c->tcbinfo;
    r = fresh(t->issue, t->next, c, now, "TCB Info is outside its validity (nextUpdate)", why);
    if (r != LUNA_VERIFY_OK)
        return r;
    if (t->tdx != (tdx != NULL)) {
        *why = "TCB Info is for another TEE type";
        return LUNA_VERIFY_COLLATERAL_INVALID;
    }
    if (memcmp(t->fmspc, pck->fmspc, 6) != 0 || memcmp(t->pceid, pck->pceid, 2) != 0) {
        *why = "no TCB Info for this platform (FMSPC / PCE-ID) in the collateral";
        return LUNA_VERIFY_COLLATERAL_MISSING;
    }
    const size_t start = tdx != NULL && tdx->tee_tcb_svn[1] > 0 ? 2 : 0;
    for (size_t i = 0; i < t->n_levels; i++) {
        const dcap_level *l = &t->levels[i];
        bool ok = pck->pcesvn >= l->pcesvn;
        for (size_t k = 0; k < 16 && ok; k++)
            ok = pck->comp[k] >= l->sgx[k];
        for (size_t k = start; tdx != NULL && k < 16 && ok; k++)
            ok = tdx->tee_tcb_svn[k] >= l->tdx[k];
        if (!ok)
            continue;
        luna_tcb_status st = l->status;
        if (!adv_merge(adv, t->adv + l->adv_off, l->adv_len)) {
            *why = "advisory ids of the matched TCB levels exceed the claims cap";
            return LUNA_VERIFY_COLLATERAL_INVALID;
        }
        if (tdx != NULL) {
            luna_tcb_status ms = LUNA_TCB_UNKNOWN;
            r = module_status(t, tdx, &ms, adv, why);
            if (r != LUNA_VERIFY_OK)
                return r;
            st = luna_dcap_worse(st, ms);
        }
        *out = st;
        return LUNA_VERIFY_OK;
    }
    *why = "TCB level not supported: no TCB Info level matches the platform";
    return LUNA_VERIFY_TCB_OUT_OF_DATE;
}

luna_verify_reason luna_dcap_qe_status(const dcap_collateral *c, bool td, const dcap_report *qe,
                                       int64_t now, luna_qe_status *out, dcap_adv *adv,
                                       const char **why)
{
    luna_verify_reason r;
    if (c == NULL || !c->has_qeid) {
        *why = "no QE Identity in the collateral";
        return LUNA_VERIFY_COLLATERAL_MISSING;
    }
    const dcap_qeid *q = &c->qeid;
    r = fresh(q->issue, q->next, c, now, "QE Identity is outside its validity (nextUpdate)", why);
    if (r != LUNA_VERIFY_OK)
        return r;
    if (q->td != td) {
        *why = "QE Identity is for another quoting enclave (QE vs TD_QE)";
        return LUNA_VERIFY_COLLATERAL_INVALID;
    }
    bool ok = luna_ct_equal(q->mrsigner, qe->mrsigner, 32) && q->isvprodid == qe->isvprodid &&
              (qe->miscselect & q->miscselect_mask) == q->miscselect;
    for (int i = 0; i < 16 && ok; i++)
        ok = (qe->attributes[i] & q->attributes_mask[i]) == q->attributes[i];
    if (!ok) {
        *why = "quoting enclave is not the one QE Identity describes";
        return LUNA_VERIFY_UNKNOWN_SIGNER;
    }
    *out = LUNA_QE_OUT_OF_DATE; /* no level met: not supported */
    for (size_t i = 0; i < q->n_levels; i++) {
        if (q->levels[i].isvsvn <= qe->isvsvn) {
            luna_tcb_status s = q->levels[i].status;
            *out = s == LUNA_TCB_UP_TO_DATE ? LUNA_QE_VALID
                   : s == LUNA_TCB_REVOKED  ? LUNA_QE_REVOKED
                                            : LUNA_QE_OUT_OF_DATE;
            if (!adv_merge(adv, q->adv + q->levels[i].adv_off, q->levels[i].adv_len)) {
                *why = "advisory ids of the matched QE identity level exceed the claims cap";
                return LUNA_VERIFY_COLLATERAL_INVALID;
            }
            break;
        }
    }
    return LUNA_VERIFY_OK;
}

/* ---- collateral JSON ---- */

static bool status_of(const char *s, luna_tcb_status *out)
{
    static const struct {
        const char *name;
        luna_tcb_status st;
    } map[] = {
        {"UpToDate", LUNA_TCB_UP_TO_DATE},
        {"SWHardeningNeeded", LUNA_TCB_SW_HARDENING_NEEDED},
        {"ConfigurationNeeded", LUNA_TCB_CONFIGURATION_NEEDED},
        /* Both needed: reported as the worse of the two. */
        {"ConfigurationAndSWHardeningNeeded", LUNA_TCB_CONFIGURATION_NEEDED},
        {"OutOfDate", LUNA_TCB_OUT_OF_DATE},
        {"OutOfDateConfigurationNeeded", LUNA_TCB_OUT_OF_DATE},
        {"Revoked", LUNA_TCB_REVOKED},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(s, map[i].name) == 0) {
            *out = map[i].st;
            return true;
        }
    return false;
}

static luna_err j_int(json_t *o, const char *key, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    LUNA_ENSURE(json_is_integer(v), LUNA_ERR_FORMAT);
    json_int_t x = json_integer_value(v);
    LUNA_ENSURE(x >= 0 && x <= max, LUNA_ERR_FORMAT);
    *out = (int64_t)x;
    return LUNA_OK;
}

static luna_err j_hex(json_t *o, const char *key, uint8_t *out, size_t n)
{
    json_t *v = json_object_get(o, key);
    size_t got = 0;
    LUNA_ENSURE(json_is_string(v) && json_string_length(v) == 2 * n, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_hex_decode(json_string_value(v), 2 * n, out, n, &got));
    LUNA_ENSURE(got == n, LUNA_ERR_FORMAT);
    return LUNA_OK;
}

static luna_err j_time(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    struct tm tm;
    LUNA_ENSURE(json_is_string(v) && json_string_length(v) == 20, LUNA_ERR_FORMAT);
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(json_string_value(v), "%Y-%m-%dT%H:%M:%SZ", &tm);
    LUNA_ENSURE(end != NULL && *end == '\0', LUNA_ERR_FORMAT);
    *out = (int64_t)timegm(&tm);
    return LUNA_OK;
}

static luna_err j_status(json_t *o, luna_tcb_status *out)
{
    json_t *v = json_object_get(o, "tcbStatus");
    LUNA_ENSURE(json_is_string(v) && status_of(json_string_value(v), out), LUNA_ERR_FORMAT);
    return LUNA_OK;
}

static bool adv_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* A level's optional "advisoryIDs": strings of [A-Z0-9-], joined with
   commas into the document's pool at off, len bytes (0: none). */
static luna_err j_advisories(json_t *level, char *pool, size_t *used, uint16_t *off,
                             uint16_t *len)
{
    json_t *a = json_object_get(level, "advisoryIDs"), *v;
    size_t i, start = *used;
    *off = 0;
    *len = 0;
    if (a == NULL)
        return LUNA_OK;
    LUNA_ENSURE(json_is_array(a), LUNA_ERR_FORMAT);
    json_array_foreach(a, i, v) {
        const char *id = json_string_value(v);
        size_t n = json_is_string(v) ? json_string_length(v) : 0;
        LUNA_ENSURE(n >= 1 && n <= DCAP_ADV_ID_MAX, LUNA_ERR_FORMAT);
        for (size_t k = 0; k < n; k++)
            LUNA_ENSURE(adv_char_ok(id[k]), LUNA_ERR_FORMAT);
        const size_t need = n + (i > 0 ? 1 : 0);
        LUNA_ENSURE(need <= DCAP_ADV_POOL - *used, LUNA_ERR_TOO_LARGE);
        if (i > 0)
            pool[(*used)++] = ',';
        memcpy(pool + *used, id, n);
        *used += n;
    }
    /* One level's list must fit the claims text on its own. */
    LUNA_ENSURE(*used - start < LUNA_CLAIM_ADVISORY_MAX, LUNA_ERR_TOO_LARGE);
    *off = (uint16_t)start;
    *len = (uint16_t)(*used - start);
    return LUNA_OK;
}

static luna_err j_isv_levels(json_t *arr, dcap_isv_level *out, size_t *n, char *pool,
                             size_t *used)
{
    size_t i;
    json_t *l;
    LUNA_ENSURE(json_is_array(arr) && json_array_size(arr) >= 1 &&
                    json_array_size(arr) <= DCAP_MAX_LEVELS,
                LUNA_ERR_FORMAT);
    json_array_foreach(arr, i, l) {
        int64_t svn = 0;
        LUNA_GUARD(j_int(json_object_get(l, "tcb"), "isvsvn", 0xffff, &svn));
        out[i].isvsvn = (uint16_t)svn;
        LUNA_GUARD(j_status(l, &out[i].status));
        LUNA_GUARD(j_advisories(l, pool, used, &out[i].adv_off, &out[i].adv_len));
    }
    *n = json_array_size(arr);
    return LUNA_OK;
}

/* TCB components: v3 "sgxtcbcomponents"/"tdxtcbcomponents" arrays of
   16 {"svn": n}, or v2 "sgxtcbcompNNsvn" fields. */
static luna_err j_comps(json_t *tcb, const char *arr_key, uint32_t version, uint8_t out[16])
{
    if (version >= 3) {
        json_t *a = json_object_get(tcb, arr_key), *c;
        size_t i;
        LUNA_ENSURE(json_is_array(a) && json_array_size(a) == 16, LUNA_ERR_FORMAT);
        json_array_foreach(a, i, c) {
            int64_t svn = 0;
            LUNA_GUARD(j_int(c, "svn", 0xff, &svn));
            out[i] = (uint8_t)svn;
        }
        return LUNA_OK;
    }
    for (int i = 0; i < 16; i++) {
        char key[24];
        int64_t svn = 0;
        snprintf(key, sizeof(key), "sgxtcbcomp%02dsvn", i + 1);
        LUNA_GUARD(j_int(tcb, key, 0xff, &svn));
        out[i] = (uint8_t)svn;
    }
    return LUNA_OK;
}

static luna_err parse_module_ids(json_t *arr, dcap_tcbinfo *t)
{
    size_t i;
    json_t *m;
    LUNA_ENSURE(json_is_array(arr) && json_array_size(arr) <= DCAP_MAX_MODULE_IDS,
                LUNA_ERR_FORMAT);
    json_array_foreach(arr, i, m) {
        dcap_module_id *d = &t->ids[i];
        json_t *id = json_object_get(m, "id");
        uint8_t major = 0;
        size_t got = 0;
        LUNA_ENSURE(json_is_string(id) && json_string_length(id) == 6 &&
                        strncmp(json_string_value(id), "TDX_", 4) == 0,
                    LUNA_ERR_FORMAT);
        LUNA_GUARD(luna_hex_decode(json_string_value(id) + 4, 2, &major, 1, &got));
        d->major = major;
        LUNA_GUARD(j_hex(m, "mrsigner", d->mrsigner, 48));
        LUNA_GUARD(j_hex(m, "attributes", d->attributes, 8));
        LUNA_GUARD(j_hex(m, "attributesMask", d->mask, 8));
        LUNA_GUARD(j_isv_levels(json_object_get(m, "tcbLevels"), d->levels, &d->n_levels, t->adv,
                                &t->adv_used));
    }
    t->n_ids = json_array_size(arr);
    return LUNA_OK;
}

static luna_err parse_tcbinfo(json_t *o, bool tdx, dcap_tcbinfo *t)
{
    int64_t x = 0;
    json_t *id = json_object_get(o, "id");
    LUNA_GUARD(j_int(o, "version", 3, &x));
    t->version = (uint32_t)x;
    if (tdx) {
        LUNA_ENSURE(t->version == 3 && json_is_string(id) &&
                        strcmp(json_string_value(id), "TDX") == 0,
                    LUNA_ERR_UNSUPPORTED);
        t->tdx = true;
    } else {
        LUNA_ENSURE(t->version == 2 || (t->version == 3 && json_is_string(id) &&
                                        strcmp(json_string_value(id), "SGX") == 0),
                    LUNA_ERR_UNSUPPORTED);
    }
    LUNA_GUARD(j_time(o, "issueDate", &t->issue));
    LUNA_GUARD(j_time(o, "nextUpdate", &t->next));
    LUNA_GUARD(j_hex(o, "fmspc", t->fmspc, 6));
    LUNA_GUARD(j_hex(o, "pceId", t->pceid, 2));
    LUNA_GUARD(j_int(o, "tcbType", 0, &x));
    LUNA_GUARD(j_int(o, "tcbEvaluationDataNumber", 0xffffffff, &x));
    t->eval_num = (uint32_t)x;
    json_t *mod = json_object_get(o, "tdxModule");
    if (tdx && mod != NULL) {
        LUNA_GUARD(j_hex(mod, "mrsigner", t->module_mrsigner, 48));
        LUNA_GUARD(j_hex(mod, "attributes", t->module_attributes, 8));
        LUNA_GUARD(j_hex(mod, "attributesMask", t->module_mask, 8));
        t->has_module = true;
    }
    json_t *ids = json_object_get(o, "tdxModuleIdentities");
    if (tdx && ids != NULL)
        LUNA_GUARD(parse_module_ids(ids, t));
    json_t *levels = json_object_get(o, "tcbLevels"), *l;
    size_t i;
    LUNA_ENSURE(json_is_array(levels) && json_array_size(levels) >= 1 &&
                    json_array_size(levels) <= DCAP_MAX_LEVELS,
                LUNA_ERR_FORMAT);
    json_array_foreach(levels, i, l) {
        dcap_level *d = &t->levels[i];
        json_t *tcb = json_object_get(l, "tcb");
        LUNA_ENSURE(json_is_object(tcb), LUNA_ERR_FORMAT);
        LUNA_GUARD(j_comps(tcb, "sgxtcbcomponents", t->version, d->sgx));
        if (tdx)
            LUNA_GUARD(j_comps(tcb, "tdxtcbcomponents", t->version, d->tdx));
        LUNA_GUARD(j_int(tcb, "pcesvn", 0xffff, &x));
        d->pcesvn = (uint16_t)x;
        LUNA_GUARD(j_status(l, &d->status));
        LUNA_GUARD(j_advisories(l, t->adv, &t->adv_used, &d->adv_off, &d->adv_len));
    }
    t->n_levels = json_array_size(levels);
    return LUNA_OK;
}

static luna_err parse_qeid(json_t *o, bool tdx, dcap_qeid *q)
{
    int64_t x = 0;
    uint8_t b4[4];
    json_t *id = json_object_get(o, "id");
    LUNA_GUARD(j_int(o, "version", 2, &x));
    LUNA_ENSURE(x == 2 && json_is_string(id) &&
                    strcmp(json_string_value(id), tdx ? "TD_QE" : "QE") == 0,
                LUNA_ERR_UNSUPPORTED);
    q->td = tdx;
    LUNA_GUARD(j_time(o, "issueDate", &q->issue));
    LUNA_GUARD(j_time(o, "nextUpdate", &q->next));
    /* miscselect is written big-endian in hex; the report holds a u32. */
    LUNA_GUARD(j_hex(o, "miscselect", b4, 4));
    q->miscselect = (uint32_t)b4[0] << 24 | (uint32_t)b4[1] << 16 | (uint32_t)b4[2] << 8 | b4[3];
    LUNA_GUARD(j_hex(o, "miscselectMask", b4, 4));
    q->miscselect_mask =
        (uint32_t)b4[0] << 24 | (uint32_t)b4[1] << 16 | (uint32_t)b4[2] << 8 | b4[3];
    LUNA_GUARD(j_hex(o, "attributes", q->attributes, 16));
    LUNA_GUARD(j_hex(o, "attributesMask", q->attributes_mask, 16));
    LUNA_GUARD(j_hex(o, "mrsigner", q->mrsigner, 32));
    LUNA_GUARD(j_int(o, "isvprodid", 0xffff, &x));
    q->isvprodid = (uint16_t)x;
    return j_isv_levels(json_object_get(o, "tcbLevels"), q->levels, &q->n_levels, q->adv,
                        &q->adv_used);
}

static luna_err parse_text(const uint8_t *text, size_t len, json_t **out);

/*
 * {"<key>":<object>,"signature":"<128 hex>"} exactly: the signature covers
 * the bytes of <object> as they are, so they are located, not rebuilt.
 */
static luna_err signed_span(const uint8_t *doc, size_t len, const char *key, const uint8_t **span,
                            size_t *span_len, uint8_t sig[DCAP_SIG_LEN])
{
    char prefix[32];
    static const char mid[] = ",\"signature\":\"";
    const size_t tail = sizeof(mid) - 1 + 2 * DCAP_SIG_LEN + 2;
    size_t got = 0;
    int pl = snprintf(prefix, sizeof(prefix), "{\"%s\":", key);
    LUNA_ENSURE(pl > 0 && (size_t)pl < sizeof(prefix), LUNA_ERR_INTERNAL);
    /* PCS bodies saved to a file often gain one final newline. */
    if (len > 0 && doc[len - 1] == '\n')
        len--;
    LUNA_ENSURE(len > (size_t)pl + tail && len <= DCAP_JSON_MAX, LUNA_ERR_FORMAT);
    LUNA_ENSURE(memcmp(doc, prefix, (size_t)pl) == 0, LUNA_ERR_FORMAT);
    const uint8_t *t = doc + len - tail;
    LUNA_ENSURE(memcmp(t, mid, sizeof(mid) - 1) == 0, LUNA_ERR_FORMAT);
    LUNA_ENSURE(t[tail - 2] == '"' && t[tail - 1] == '}', LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_hex_decode((const char *)t + sizeof(mid) - 1, 2 * DCAP_SIG_LEN, sig,
                               DCAP_SIG_LEN, &got));
    LUNA_ENSURE(got == DCAP_SIG_LEN, LUNA_ERR_FORMAT);
    *span = doc + pl;
    *span_len = len - (size_t)pl - tail;
    return LUNA_OK;
}

static bool cn_is(const X509_NAME *n, const char *want)
{
    char cn[64];
    return luna_hw_cn(n, cn, sizeof(cn)) && strcmp(cn, want) == 0;
}

/* Verifies one signed document with the bundle's TCB Signing key and
   returns the parsed object (caller json_decref). */
static luna_err load_signed(const luna_hw_bundle *b, const uint8_t *doc, size_t len,
                            const char *key, X509 *const *anchors, size_t n_anchors, int64_t now,
                            dcap_collateral *c, json_t **out)
{
    const uint8_t *span = NULL;
    size_t span_len = 0;
    uint8_t sig[DCAP_SIG_LEN], pt[65];
    const char *why = NULL;
    X509 *signer = NULL;

    LUNA_GUARD(signed_span(doc, len, key, &span, &span_len, sig));
    for (size_t i = 0; i < b->n_certs && signer == NULL; i++)
        if (cn_is(X509_get_subject_name(b->certs[i]), "Intel SGX TCB Signing"))
            signer = b->certs[i];
    LUNA_ENSURE(signer != NULL, LUNA_ERR_VERIFY);
    luna_hw_chain_opts o = {.anchors = anchors,
                            .n_anchors = n_anchors,
                            .untrusted = b->certs,
                            .n_untrusted = b->n_certs,
                            .crls = b->crls,
                            .n_crls = b->n_crls,
                            .check_crls = true,
                            .revocation_optional = true,
                            .now = now};
    luna_verify_reason r = luna_hw_verify_chain(signer, &o, NULL, NULL, &why);
    if (r == LUNA_VERIFY_CERT_EXPIRED || r == LUNA_VERIFY_COLLATERAL_STALE)
        return LUNA_ERR_EXPIRED;
    LUNA_ENSURE(r == LUNA_VERIFY_OK, LUNA_ERR_VERIFY);
    LUNA_ENSURE(leaf_p256(signer, pt, &why) == LUNA_VERIFY_OK, LUNA_ERR_VERIFY);
    LUNA_GUARD(luna_ecdsa_verify(LUNA_EC_P256, pt, sizeof(pt), LUNA_SIG_P1363, span, span_len,
                                 sig, DCAP_SIG_LEN));
    int64_t nb = 0, na = 0;
    LUNA_GUARD(luna_pki_cert_times(signer, &nb, &na));
    if (nb > c->signer_not_before)
        c->signer_not_before = nb;
    if (na < c->signer_not_after)
        c->signer_not_after = na;
    /* The span alone must be one JSON object: then the signed bytes are
       exactly what is interpreted. */
    return parse_text(span, span_len, out);
}

static luna_err parse_text(const uint8_t *text, size_t len, json_t **out)
{
    json_error_t je;
    LUNA_ENSURE(len <= DCAP_JSON_MAX, LUNA_ERR_TOO_LARGE);
    *out = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &je);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return LUNA_ERR_FORMAT;
    }
    return LUNA_OK;
}

luna_err luna_dcap_parse_tcbinfo(const uint8_t *text, size_t len, bool tdx, dcap_tcbinfo *out)
{
    json_t *j = NULL;
    memset(out, 0, sizeof(*out));
    LUNA_GUARD(parse_text(text, len, &j));
    luna_err err = parse_tcbinfo(j, tdx, out);
    json_decref(j);
    return err;
}

luna_err luna_dcap_parse_qeid(const uint8_t *text, size_t len, bool tdx, dcap_qeid *out)
{
    json_t *j = NULL;
    memset(out, 0, sizeof(*out));
    LUNA_GUARD(parse_text(text, len, &j));
    luna_err err = parse_qeid(j, tdx, out);
    json_decref(j);
    return err;
}

const dcap_collateral *luna_dcap_collateral_of(const void *collateral)
{
    const luna_hw_bundle *b = collateral;
    return b != NULL ? b->ext : NULL;
}

void luna_dcap_collateral_free(void *collateral)
{
    luna_hw_bundle_free(collateral);
}

int64_t luna_dcap_collateral_issued_at(const void *collateral)
{
    const luna_hw_bundle *b = collateral;
    return b->issued_at;
}

luna_err luna_dcap_collateral_load(const uint8_t *doc, size_t len, X509 *const *anchors,
                                   size_t n_anchors, int64_t now, bool tdx, void **out)
{
    luna_hw_bundle *b = NULL;
    dcap_collateral *c = NULL;
    json_t *j = NULL;
    luna_err err;

    *out = NULL;
    LUNA_GUARD(luna_hw_bundle_parse(doc, len, &b));
    c = calloc(1, sizeof(*c));
    LUNA_TRY_ENSURE(c != NULL, LUNA_ERR_NOMEM, fail);
    b->ext = c;
    b->ext_free = free;
    c->signer_not_before = INT64_MIN;
    c->signer_not_after = INT64_MAX;
    if (b->tcb_info != NULL) {
        LUNA_TRY(load_signed(b, b->tcb_info, b->tcb_info_len, "tcbInfo", anchors, n_anchors, now,
                             c, &j),
                 fail);
        LUNA_TRY(parse_tcbinfo(j, tdx, &c->tcbinfo), fail);
        json_decref(j);
        j = NULL;
        LUNA_TRY_ENSURE(now <= c->tcbinfo.next, LUNA_ERR_EXPIRED, fail);
        c->has_tcbinfo = true;
        if (c->tcbinfo.issue > b->issued_at)
            b->issued_at = c->tcbinfo.issue;
    }
    if (b->qe_identity != NULL) {
        LUNA_TRY(load_signed(b, b->qe_identity, b->qe_identity_len, "enclaveIdentity", anchors,
                             n_anchors, now, c, &j),
                 fail);
        LUNA_TRY(parse_qeid(j, tdx, &c->qeid), fail);
        json_decref(j);
        j = NULL;
        LUNA_TRY_ENSURE(now <= c->qeid.next, LUNA_ERR_EXPIRED, fail);
        c->has_qeid = true;
        if (c->qeid.issue > b->issued_at)
            b->issued_at = c->qeid.issue;
    }
    *out = b;
    return LUNA_OK;
fail:
    json_decref(j);
    luna_hw_bundle_free(b);
    return err;
}
