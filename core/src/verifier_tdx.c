/*
 * verifier_tdx.c - the Intel TDX backend of the evidence verifier: DCAP
 * quote versions 4 and 5 (TD quote body 1.0 and 1.5) with an ECDSA-256
 * attestation key, checked through verifier_dcap_common.c (PCK chain and
 * CRLs, QE report and its binding, TCB Info / QE Identity, TCB level and
 * TDX module identity).
 *
 * It must never decide policy, never accept a quote layout, TEE type, key
 * type or QE vendor it does not know, and never accept bytes after the
 * signature data other than the zero padding quote buffers carry.
 */
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "verifier_dcap.h"

#define TDX_TEE_TYPE 0x81u
#define DCAP_ATT_KEY_ECDSA_P256 2u
#define TDX_BODY_10_LEN 584u
#define TDX_BODY_15_LEN 648u
#define TDX_BODY_TYPE_10 2u
#define TDX_BODY_TYPE_15 3u
#define TDX_SIGNED_MAX (DCAP_HEADER_LEN + 6 + TDX_BODY_15_LEN)
#define TD_ATTR_DEBUG 0x01u
#define TD_ATTR_TUD_RESERVED 0xFEu /* bits 1..7 of the TD-under-debug group */

/* Intel's QE vendor id 939a7233-f79c-4ca9-940a-0db3957f0607. */
static const uint8_t INTEL_QE_VENDOR[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                            0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

typedef struct tdx_state {
    uint16_t version;
    uint8_t signed_part[TDX_SIGNED_MAX];
    size_t signed_len;
    dcap_tdx_facts facts;
    uint8_t td_attributes[8];
    uint8_t mrtd[48];
    uint8_t mrowner[48];
    uint8_t mrconfigid[48];
    uint8_t mrownerconfig[48];
    uint8_t rtmr[4][48];
    uint8_t report_data[64];
    dcap_sigdata sd;
    /* Set by tdx_verify. */
    dcap_pck pck;
    bool crl_checked;
    luna_tcb_status tcb;
    luna_qe_status qe;
    uint32_t eval_num;
    dcap_adv adv;
} tdx_state;


static luna_err read_body(luna_reader *r, tdx_state *s, bool v15)
{
    LUNA_GUARD(luna_read_bytes(r, s->facts.tee_tcb_svn, 16));
    LUNA_GUARD(luna_read_skip(r, 48)); /* MRSEAM */
    LUNA_GUARD(luna_read_bytes(r, s->facts.mrsignerseam, 48));
    LUNA_GUARD(luna_read_bytes(r, s->facts.seam_attributes, 8));
    LUNA_GUARD(luna_read_bytes(r, s->td_attributes, 8));
    LUNA_GUARD(luna_read_skip(r, 8)); /* XFAM */
    LUNA_GUARD(luna_read_bytes(r, s->mrtd, 48));
    LUNA_GUARD(luna_read_bytes(r, s->mrconfigid, 48));
    LUNA_GUARD(luna_read_bytes(r, s->mrowner, 48));
    LUNA_GUARD(luna_read_bytes(r, s->mrownerconfig, 48));
    for (size_t i = 0; i < 4; i++)
        LUNA_GUARD(luna_read_bytes(r, s->rtmr[i], 48));
    LUNA_GUARD(luna_read_bytes(r, s->report_data, 64));
    if (v15)
        LUNA_GUARD(luna_read_skip(r, 16 + 48)); /* TEE_TCB_SVN2, MRSERVICETD */
    return LUNA_OK;
}

static bool zero_rest(const luna_reader *r)
{
    uint8_t acc = 0;
    for (size_t i = r->off; i < r->len; i++)
        acc |= r->data[i];
    return acc == 0;
}

static luna_verify_reason tdx_parse(const uint8_t *ev, size_t len, void **state, const char **why)
{
    luna_reader r, sr;
    uint16_t key_type = 0, qe_svn = 0, pce_svn = 0;
    uint32_t tee = 0, sig_len = 0;
    const uint8_t *vendor = NULL, *sig = NULL;
    bool v15 = false;
    luna_verify_reason res = LUNA_VERIFY_MALFORMED;
    tdx_state *s = calloc(1, sizeof(*s));

    *state = NULL;
    if (s == NULL) {
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    }
    *why = "TDX quote header is truncated";
    luna_reader_init(&r, ev, len);
    if (luna_read_u16_le(&r, &s->version) != LUNA_OK || luna_read_u16_le(&r, &key_type) != LUNA_OK ||
        luna_read_u32_le(&r, &tee) != LUNA_OK || luna_read_u16_le(&r, &qe_svn) != LUNA_OK ||
        luna_read_u16_le(&r, &pce_svn) != LUNA_OK || luna_read_view(&r, &vendor, 16) != LUNA_OK ||
        luna_read_skip(&r, 20) != LUNA_OK)
        goto fail;
    res = LUNA_VERIFY_UNSUPPORTED_VERSION;
    if (s->version != 4 && s->version != 5) {
        *why = "TDX quote version is not 4 or 5";
        goto fail;
    }
    if (key_type != DCAP_ATT_KEY_ECDSA_P256 || tee != TDX_TEE_TYPE ||
        memcmp(vendor, INTEL_QE_VENDOR, 16) != 0) {
        *why = "TDX quote is not a TDX ECDSA-P256 quote from Intel's QE";
        goto fail;
    }
    if (s->version == 5) {
        uint16_t body_type = 0;
        uint32_t body_size = 0;
        res = LUNA_VERIFY_MALFORMED;
        *why = "TDX v5 body descriptor is truncated";
        if (luna_read_u16_le(&r, &body_type) != LUNA_OK ||
            luna_read_u32_le(&r, &body_size) != LUNA_OK)
            goto fail;
        res = LUNA_VERIFY_UNSUPPORTED_VERSION;
        *why = "TDX v5 body type is not TD 1.0 or 1.5";
        if (!(body_type == TDX_BODY_TYPE_10 && body_size == TDX_BODY_10_LEN) &&
            !(body_type == TDX_BODY_TYPE_15 && body_size == TDX_BODY_15_LEN))
            goto fail;
        v15 = body_type == TDX_BODY_TYPE_15;
    }
    res = LUNA_VERIFY_MALFORMED;
    *why = "TDX quote body is truncated";
    if (read_body(&r, s, v15) != LUNA_OK)
        goto fail;
    s->signed_len = r.off;
    memcpy(s->signed_part, ev, s->signed_len);
    *why = "TDX quote signature data is truncated";
    if (luna_read_u32_le(&r, &sig_len) != LUNA_OK || luna_read_view(&r, &sig, sig_len) != LUNA_OK)
        goto fail;
    if (!zero_rest(&r)) {
        *why = "non-zero bytes after the TDX quote signature data";
        goto fail;
    }
    luna_reader_init(&sr, sig, sig_len);
    res = luna_dcap_read_sigdata(&sr, true, &s->sd, why);
    if (res != LUNA_VERIFY_OK)
        goto fail;
    if ((s->td_attributes[0] & TD_ATTR_TUD_RESERVED) != 0) {
        luna_dcap_sigdata_clear(&s->sd);
        *why = "reserved TD attribute bit set";
        res = LUNA_VERIFY_RESERVED_BITS;
        goto fail;
    }
    *state = s;
    return LUNA_VERIFY_OK;
fail:
    free(s);
    return res;
}

static void tdx_free_state(void *state)
{
    tdx_state *s = state;
    if (s == NULL)
        return;
    luna_dcap_sigdata_clear(&s->sd);
    free(s);
}

static luna_verify_reason tdx_verify(void *state, const luna_backend_ctx *ctx, const char **why)
{
    tdx_state *s = state;
    luna_verify_reason r;
    const dcap_collateral *c = luna_dcap_collateral_of(ctx->collateral);

    /* Fail closed before any work: every expectation must be set (ANY is
       a setting).  NULL: the caller appraises the claims itself. */
    if (ctx->expect != NULL) {
        r = luna_hw_expect_complete(LUNA_EVIDENCE_TDX, ctx->expect, why);
        if (r != LUNA_VERIFY_OK)
            return r;
    }
    r = luna_dcap_verify_quote(&s->sd, s->signed_part, s->signed_len, ctx, LUNA_EVIDENCE_TDX,
                               &s->pck, &s->crl_checked, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    r = luna_dcap_qe_status(c, true, &s->sd.qe, ctx->now, &s->qe, &s->adv, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    r = luna_dcap_tcb_status(c, &s->pck, &s->facts, ctx->now, &s->tcb, &s->adv, why);
    if (r != LUNA_VERIFY_OK)
        return r;
    s->eval_num = c->tcbinfo.eval_num;
    return LUNA_VERIFY_OK;
}

static luna_verify_reason tdx_claims(const void *state, const luna_backend_ctx *ctx,
                                     luna_claims *c, const char **why)
{
    const tdx_state *s = state;
    memset(c, 0, sizeof(*c));
    c->type = LUNA_EVIDENCE_TDX;
    c->version = s->version;
    memcpy(c->measurement, s->mrtd, 48);
    c->measurement_len = 48;
    memcpy(c->signer, s->mrowner, 48);
    c->signer_len = 48;
    memcpy(c->report_data, s->report_data, 64);
    c->debug = (s->td_attributes[0] & TD_ATTR_DEBUG) != 0;
    c->tcb_level = s->eval_num;
    c->tcb_status = s->tcb;
    c->qe_status = s->qe;
    memcpy(c->platform_serial, s->pck.serial, s->pck.serial_len);
    c->platform_serial_len = s->pck.serial_len;
    c->revocation_checked = s->crl_checked;
    for (size_t i = 0; i < 4; i++)
        memcpy(c->tdx_rtmr[i], s->rtmr[i], 48);
    memcpy(c->tdx_mrconfigid, s->mrconfigid, 48);
    memcpy(c->tdx_mrownerconfig, s->mrownerconfig, 48);
    memcpy(c->tdx_td_attributes, s->td_attributes, 8);
    memcpy(c->tdx_tee_tcb_svn, s->facts.tee_tcb_svn, 16);
    memcpy(c->advisory_ids, s->adv.s, s->adv.len + 1);
    /* The policy's expectations, on exactly what the claims say. */
    if (ctx->expect != NULL)
        return luna_hw_expect_check(LUNA_EVIDENCE_TDX, ctx->expect, c, why);
    return LUNA_VERIFY_OK;
}

static luna_err tdx_collateral_load(const uint8_t *doc, size_t len, X509 *const *anchors,
                                    size_t n_anchors, int64_t now, void **out)
{
    return luna_dcap_collateral_load(doc, len, anchors, n_anchors, now, true, out);
}

const luna_verifier_backend luna_verifier_backend_tdx = {
    .type = LUNA_EVIDENCE_TDX,
    .simulated = false,
    .parse = tdx_parse,
    .verify = tdx_verify,
    .claims = tdx_claims,
    .free_state = tdx_free_state,
    .collateral_load = tdx_collateral_load,
    .collateral_issued_at = luna_dcap_collateral_issued_at,
    .collateral_free = luna_dcap_collateral_free,
};
