/*
 * verifier_sgx.c - the Intel SGX DCAP backend of the evidence verifier:
 * ECDSA quote version 3 (48-byte header, 384-byte enclave REPORT body,
 * ECDSA-256 attestation key, QE report, PEM PCK chain), checked through
 * verifier_dcap_common.c (PCK chain and CRLs, QE report binding, TCB Info
 * v2/v3 and QE Identity, TCB level).
 *
 * It must never decide policy, never accept a quote version, key type,
 * QE vendor or reserved enclave attribute it does not know, and never
 * accept bytes after the signature data other than zero padding.
 */
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "verifier_dcap.h"

#define SGX_SIGNED_LEN (DCAP_HEADER_LEN + DCAP_REPORT_LEN)
#define DCAP_ATT_KEY_ECDSA_P256 2u
/* SECS ATTRIBUTES.FLAGS: INIT, DEBUG, MODE64BIT, PROVISIONKEY,
   EINITTOKENKEY, KSS, AEXNOTIFY; every other bit is reserved. */
#define SGX_FLAG_INIT 0x01ull
#define SGX_FLAG_DEBUG 0x02ull
#define SGX_FLAGS_KNOWN 0x4B7ull

static const uint8_t INTEL_QE_VENDOR[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                            0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

typedef struct sgx_state {
    uint8_t signed_part[SGX_SIGNED_LEN];
    uint8_t report_raw[DCAP_REPORT_LEN];
    dcap_report rep;
    uint64_t flags;
    dcap_sigdata sd;
    /* Set by sgx_verify. */
    dcap_pck pck;
    bool crl_checked;
    luna_tcb_status tcb;
    luna_qe_status qe;
    uint32_t eval_num;
    dcap_adv adv;
} sgx_state;

static bool zero_rest(const luna_reader *r)
{
    uint8_t acc = 0;
    for (size_t i = r->off; i < r->len; i++)
        acc |= r->data[i];
    return acc == 0;
}

static luna_verify_reason sgx_parse(const uint8_t *ev, size_t len, void **state, const char **why)
{
    luna_reader r, sr;
    uint16_t version = 0, key_type = 0, qe_svn = 0, pce_svn = 0;
    uint32_t reserved = 0, sig_len = 0;
    const uint8_t *vendor = NULL, *sig = NULL;
    luna_verify_reason res = LUNA_VERIFY_MALFORMED;
    sgx_state *s = calloc(1, sizeof(*s));

    *state = NULL;
    if (s == NULL) {
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    }
    *why = "SGX quote header or body is truncated";
    luna_reader_init(&r, ev, len);
    if (luna_read_u16_le(&r, &version) != LUNA_OK || luna_read_u16_le(&r, &key_type) != LUNA_OK ||
        luna_read_u32_le(&r, &reserved) != LUNA_OK || luna_read_u16_le(&r, &qe_svn) != LUNA_OK ||
        luna_read_u16_le(&r, &pce_svn) != LUNA_OK || luna_read_view(&r, &vendor, 16) != LUNA_OK ||
        luna_read_skip(&r, 20) != LUNA_OK)
        goto fail;
    res = LUNA_VERIFY_UNSUPPORTED_VERSION;
    if (version != 3) {
        *why = "SGX quote version is not 3";
        goto fail;
    }
    if (key_type != DCAP_ATT_KEY_ECDSA_P256 || memcmp(vendor, INTEL_QE_VENDOR, 16) != 0) {
        *why = "SGX quote is not an ECDSA-P256 quote from Intel's QE";
        goto fail;
    }
    res = LUNA_VERIFY_RESERVED_BITS;
    if (reserved != 0) {
        *why = "reserved SGX quote header field set";
        goto fail;
    }
    res = LUNA_VERIFY_MALFORMED;
    if (luna_dcap_read_report(&r, s->report_raw, &s->rep) != LUNA_OK)
        goto fail;
    memcpy(s->signed_part, ev, SGX_SIGNED_LEN);
    *why = "SGX quote signature data is truncated";
    if (luna_read_u32_le(&r, &sig_len) != LUNA_OK || luna_read_view(&r, &sig, sig_len) != LUNA_OK)
        goto fail;
    if (!zero_rest(&r)) {
        *why = "non-zero bytes after the SGX quote signature data";
        goto fail;
    }
    for (int i = 7; i >= 0; i--)
        s->flags = s->flags << 8 | s->rep.attributes[i];
    if ((s->flags & ~SGX_FLAGS_KNOWN) != 0 || (s->flags & SGX_FLAG_INIT) == 0) {
        *why = "reserved SGX enclave attribute set (or enclave not initialised)";
        res = LUNA_VERIFY_RESERVED_BITS;
        goto fail;
    }
    luna_reader_init(&sr, sig, sig_len);
    res = luna_dcap_read_sigdata(&sr, false, &s->sd, why);
    if (res != LUNA_VERIFY_OK)
        goto fail;
    *state = s;
    return LUNA_VERIFY_OK;
fail:
    free(s);
    return res;
}

static void sgx_free_state(void *state)
{
    sgx_state *s = state;
    if (s == NULL)
        return;
    luna_dcap_sigdata_clear(&s->sd);
    free(s);
}

static luna_verify_reason sgx_verify(void *state, const luna_backend_ctx *ctx, const char **why)
{
    sgx_state *s = state;
    luna_verify_reason r;
    const dcap_collateral *c = luna_dcap_collateral_of(ctx->collateral);

    /* Fail closed before any work: every expectation must be set (ANY is
       a setting).  NULL: the caller appraises the claims itself. */
    if (ctx->expect != NULL) {
        r = luna_hw_expect_complete(LUNA_EVIDENCE_SGX, ctx->expect, why);
        if (r != LUNA_VERIFY_OK)
            return r;
    }
    r = luna_dcap_verify_quote(&s->sd, s->signed_part, SGX_SIGNED_LEN, ctx, LUNA_EVIDENCE_SGX,
                               &s->pck, &s->crl_checked, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    r = luna_dcap_qe_status(c, false, &s->sd.qe, ctx->now, &s->qe, &s->adv, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    r = luna_dcap_tcb_status(c, &s->pck, NULL, ctx->now, &s->tcb, &s->adv, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    s->eval_num = c->tcbinfo.eval_num;
    return LUNA_VERIFY_OK;
}

static luna_verify_reason sgx_claims(const void *state, const luna_backend_ctx *ctx,
                                     luna_claims *c, const char **why)
{
    const sgx_state *s = state;
    memset(c, 0, sizeof(*c));
    c->type = LUNA_EVIDENCE_SGX;
    c->version = 3;
    memcpy(c->measurement, s->rep.mrenclave, 32);
    c->measurement_len = 32;
    memcpy(c->signer, s->rep.mrsigner, 32);
    c->signer_len = 32;
    memcpy(c->report_data, s->rep.report_data, 64);
    c->debug = (s->flags & SGX_FLAG_DEBUG) != 0;
    c->tcb_level = s->eval_num;
    c->tcb_status = s->tcb;
    c->qe_status = s->qe;
    memcpy(c->platform_serial, s->pck.serial, s->pck.serial_len);
    c->platform_serial_len = s->pck.serial_len;
    c->revocation_checked = s->crl_checked;
    c->sgx_isvprodid = s->rep.isvprodid;
    c->sgx_isvsvn = s->rep.isvsvn;
    memcpy(c->advisory_ids, s->adv.s, s->adv.len + 1);
    /* The policy's expectations, on exactly what the claims say. */
    if (ctx->expect != NULL)
        return luna_hw_expect_check(LUNA_EVIDENCE_SGX, ctx->expect, c, why);
    return LUNA_VERIFY_OK;
}

static luna_err sgx_collateral_load(const uint8_t *doc, size_t len, X509 *const *anchors,
                                    size_t n_anchors, int64_t now, void **out)
{
    return luna_dcap_collateral_load(doc, len, anchors, n_anchors, now, false, out);
}

const luna_verifier_backend luna_verifier_backend_sgx = {
    .type = LUNA_EVIDENCE_SGX,
    .simulated = false,
    .parse = sgx_parse,
    .verify = sgx_verify,
    .claims = sgx_claims,
    .free_state = sgx_free_state,
    .collateral_load = sgx_collateral_load,
    .collateral_issued_at = luna_dcap_collateral_issued_at,
    .collateral_free = luna_dcap_collateral_free,
};
