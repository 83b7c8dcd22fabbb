/*
 * verifier_offline.c - offline appraisal of third-party hardware evidence
 * (luna/verifier_offline.h): drives the same backends as verifier.c and
 * reports every check separately, for `lunal attestation verify
 * --evidence`.
 *
 * It must fail closed like the shared verifier: a check it cannot
 * establish is never reported as passed, a relaxation changes exactly one
 * check, simulated evidence is refused, and messages never carry
 * evidence bytes.
 */
#include "luna/verifier_offline.h"

#include <string.h>

#include "luna/bytes.h"
#include "verifier_hw.h"
#include "verifier_internal.h"
#include "verifier_tpm.h"

static const char *const check_names[LUNA_OFFLINE_CHECK__COUNT + 1] = {
    [LUNA_OFFLINE_SIGNATURE] = "signature",
    [LUNA_OFFLINE_CERT_CHAIN] = "certificate_chain",
    [LUNA_OFFLINE_COLLATERAL] = "collateral",
    [LUNA_OFFLINE_REVOCATION] = "revocation",
    [LUNA_OFFLINE_TCB_STATUS] = "tcb_status",
    [LUNA_OFFLINE_QE_IDENTITY] = "qe_identity_status",
    [LUNA_OFFLINE_DEBUG] = "debug",
    [LUNA_OFFLINE_MEASUREMENT] = "measurement",
    [LUNA_OFFLINE_CHECK__COUNT] = "evidence",
};

const char *luna_offline_check_name(luna_offline_check check)
{
    if ((unsigned)check > LUNA_OFFLINE_CHECK__COUNT)
        return "evidence";
    return check_names[check];
}

const char *luna_offline_state_name(luna_offline_state state)
{
    switch (state) {
    case LUNA_OFFLINE_SKIPPED: return "skipped";
    case LUNA_OFFLINE_PASS: return "pass";
    case LUNA_OFFLINE_FAIL: return "fail";
    case LUNA_OFFLINE_NOT_APPLICABLE: return "not_applicable";
    case LUNA_OFFLINE_RELAXED: return "relaxed";
    case LUNA_OFFLINE_NOT_CHECKED: return "not_checked";
    }
    return "skipped";
}

static const luna_verifier_backend *hw_backend(luna_evidence_type type)
{
    switch (type) {
    case LUNA_EVIDENCE_SEV_SNP: return &luna_verifier_backend_snp;
    case LUNA_EVIDENCE_TDX: return &luna_verifier_backend_tdx;
    case LUNA_EVIDENCE_SGX: return &luna_verifier_backend_sgx;
    case LUNA_EVIDENCE_NITRO: return &luna_verifier_backend_nitro;
    case LUNA_EVIDENCE_TPM: return &luna_verifier_backend_tpm;
    case LUNA_EVIDENCE_SIM: break;
    }
    return NULL;
}

static void add_failure(luna_offline_result *res, luna_offline_check check,
                        luna_verify_reason reason, const char *msg)
{
    if (res->n_failures >= sizeof(res->failures) / sizeof(res->failures[0]))
        return;
    luna_offline_failure *f = &res->failures[res->n_failures++];
    size_t n = strlen(msg);
    if (n >= sizeof(f->message))
        n = sizeof(f->message) - 1;
    f->check = check;
    f->reason = reason;
    memcpy(f->message, msg, n);
    f->message[n] = '\0';
    if (check < LUNA_OFFLINE_CHECK__COUNT)
        res->checks[check] = LUNA_OFFLINE_FAIL;
    if (res->reason == LUNA_VERIFY_OK)
        res->reason = reason;
}

/* Types whose collateral has no TCB Info / QE Identity documents. */
static bool has_tcb_documents(luna_evidence_type type)
{
    return type == LUNA_EVIDENCE_TDX || type == LUNA_EVIDENCE_SGX;
}

/*
 * Which check a backend refusal belongs to.  The reason says most of it;
 * the collateral reasons are shared by CRLs and Intel's documents, and the
 * backends' static messages say which ("CRL", "QE Identity").
 */
static luna_offline_check classify(luna_evidence_type type, luna_verify_reason r, const char *why)
{
    switch (r) {
    case LUNA_VERIFY_BAD_SIGNATURE: return LUNA_OFFLINE_SIGNATURE;
    case LUNA_VERIFY_UNKNOWN_ROOT:
    case LUNA_VERIFY_BAD_CERTIFICATE:
    case LUNA_VERIFY_CERT_EXPIRED:
    /* The signing certificate does not certify what the report says. */
    case LUNA_VERIFY_TCB_CERT_MISMATCH:
    case LUNA_VERIFY_CHIP_ID_MISMATCH:
    case LUNA_VERIFY_SIGNING_KEY_MISMATCH: return LUNA_OFFLINE_CERT_CHAIN;
    case LUNA_VERIFY_REVOKED_PLATFORM_KEY: return LUNA_OFFLINE_REVOCATION;
    case LUNA_VERIFY_COLLATERAL_MISSING:
    case LUNA_VERIFY_COLLATERAL_INVALID:
    case LUNA_VERIFY_COLLATERAL_STALE:
        if (strstr(why, "CRL") != NULL)
            return LUNA_OFFLINE_REVOCATION;
        return has_tcb_documents(type) ? LUNA_OFFLINE_COLLATERAL : LUNA_OFFLINE_CERT_CHAIN;
    case LUNA_VERIFY_TCB_OUT_OF_DATE:
    case LUNA_VERIFY_TCB_REVOKED: return LUNA_OFFLINE_TCB_STATUS;
    case LUNA_VERIFY_UNKNOWN_SIGNER:
        return strstr(why, "QE Identity") != NULL ? LUNA_OFFLINE_QE_IDENTITY
                                                  : LUNA_OFFLINE_MEASUREMENT;
    case LUNA_VERIFY_DEBUG_FORBIDDEN: return LUNA_OFFLINE_DEBUG;
    case LUNA_VERIFY_UNSUPPORTED_VERSION:
        /* At verify time only the signing certificate's product is
           "unsupported" (SEV-SNP): a chain matter. */
        return LUNA_OFFLINE_CERT_CHAIN;
    default: return LUNA_OFFLINE_CHECK__COUNT;
    }
}

static luna_verify_reason collateral_reason(luna_err e, const char **why)
{
    switch (e) {
    case LUNA_ERR_EXPIRED:
        *why = "collateral is outside its validity (nextUpdate or signing certificate)";
        return LUNA_VERIFY_COLLATERAL_STALE;
    case LUNA_ERR_VERIFY:
        *why = "collateral signature or signing chain does not verify";
        return LUNA_VERIFY_COLLATERAL_INVALID;
    case LUNA_ERR_UNSUPPORTED:
        *why = "collateral is for another TEE type";
        return LUNA_VERIFY_COLLATERAL_INVALID;
    case LUNA_ERR_NOMEM:
        *why = "out of memory";
        return LUNA_VERIFY_INTERNAL;
    default:
        *why = "collateral bundle is malformed or not usable for this type";
        return LUNA_VERIFY_COLLATERAL_INVALID;
    }
}

/* The backend half: parse, collateral, chain, signature, claims.
   forgive_crl: verify as if revocation were optional (see
   luna_offline_verify). */
static bool run_backend(const luna_offline_input *in, const luna_verifier_backend *b,
                        bool forgive_crl, luna_offline_result *res)
{
    const luna_offline_policy *pol = in->policy;
    const bool rev_optional = pol->revocation_optional || forgive_crl;
    const char *why = "malformed evidence";
    void *state = NULL;
    void *col = NULL;
    luna_verify_reason r;
    bool ok = false;

    r = b->parse(in->evidence, in->evidence_len, &state, &why);
    if (r != LUNA_VERIFY_OK) {
        add_failure(res, LUNA_OFFLINE_CHECK__COUNT, r, why);
        return false;
    }
    if (in->type == LUNA_EVIDENCE_TPM && in->pinned_ak != NULL) {
        /* Trust comes from the policy's pin, not from a chain. */
        r = luna_tpm_verify_pinned(in->evidence, in->evidence_len, in->pinned_ak, &why);
        if (r != LUNA_VERIFY_OK) {
            add_failure(res, classify(in->type, r, why), r, why);
            goto out;
        }
        res->ak_pinned = true;
    } else {
        if (in->collateral != NULL && b->collateral_load != NULL) {
            luna_err e = b->collateral_load(in->collateral, in->collateral_len, in->anchors,
                                            in->n_anchors, in->now, &col);
            if (e != LUNA_OK) {
                r = collateral_reason(e, &why);
                luna_offline_check c = LUNA_OFFLINE_COLLATERAL;
                /* SEV-SNP collateral load checks only the AMD CRLs. */
                if (in->type == LUNA_EVIDENCE_SEV_SNP)
                    c = e == LUNA_ERR_EXPIRED || e == LUNA_ERR_VERIFY ? LUNA_OFFLINE_REVOCATION
                                                                       : LUNA_OFFLINE_CERT_CHAIN;
                else if (in->type == LUNA_EVIDENCE_TPM)
                    c = LUNA_OFFLINE_CERT_CHAIN;
                add_failure(res, c, r, why);
                goto out;
            }
        }
        luna_backend_ctx ctx = {.anchors = in->anchors,
                                .n_anchors = in->n_anchors,
                                .collateral = col,
                                .cache = NULL,
                                .now = in->now,
                                .revocation_optional = rev_optional};
        r = b->verify(state, &ctx, &why);
        if (r != LUNA_VERIFY_OK) {
            add_failure(res, classify(in->type, r, why), r, why);
            goto out;
        }
    }
    luna_backend_ctx cctx = {.anchors = in->anchors,
                             .n_anchors = in->n_anchors,
                             .collateral = col,
                             .now = in->now,
                             .revocation_optional = rev_optional};
    memset(&res->claims, 0, sizeof(res->claims));
    r = b->claims(state, &cctx, &res->claims, &why);
    if (r != LUNA_VERIFY_OK) {
        add_failure(res, classify(in->type, r, why), r, why);
        goto out;
    }
    if (res->claims.type != in->type || res->claims.simulated ||
        res->claims.measurement_len == 0 ||
        res->claims.measurement_len > LUNA_CLAIM_MEASUREMENT_MAX ||
        res->claims.signer_len > LUNA_CLAIM_SIGNER_MAX) {
        memset(&res->claims, 0, sizeof(res->claims));
        add_failure(res, LUNA_OFFLINE_CHECK__COUNT, LUNA_VERIFY_INTERNAL,
                    "backend returned inconsistent claims");
        goto out;
    }
    res->has_claims = true;
    ok = true;
out:
    if (col != NULL)
        b->collateral_free(col);
    b->free_state(state);
    return ok;
}

static bool any_equal(const uint8_t (*vals)[LUNA_CLAIM_MEASUREMENT_MAX], const size_t *lens,
                      size_t n, const uint8_t *v, size_t len)
{
    bool found = false;
    for (size_t i = 0; i < n; i++)
        if (lens[i] == len && luna_ct_equal(vals[i], v, len))
            found = true;
    return found;
}

/* What the backend authenticated: signature, chain, revocation, documents. */
static void appraise_chain(const luna_offline_input *in, luna_offline_result *res)
{
    const luna_offline_policy *pol = in->policy;
    const luna_claims *c = &res->claims;

    res->checks[LUNA_OFFLINE_SIGNATURE] = LUNA_OFFLINE_PASS;
    if (res->ak_pinned) {
        res->checks[LUNA_OFFLINE_CERT_CHAIN] = LUNA_OFFLINE_NOT_APPLICABLE;
        res->checks[LUNA_OFFLINE_REVOCATION] = LUNA_OFFLINE_NOT_APPLICABLE;
    } else {
        res->checks[LUNA_OFFLINE_CERT_CHAIN] = LUNA_OFFLINE_PASS;
        if (c->revocation_checked)
            res->checks[LUNA_OFFLINE_REVOCATION] = LUNA_OFFLINE_PASS;
        else if (in->type == LUNA_EVIDENCE_NITRO)
            res->checks[LUNA_OFFLINE_REVOCATION] = LUNA_OFFLINE_NOT_APPLICABLE;
        else if (pol->revocation_optional)
            res->checks[LUNA_OFFLINE_REVOCATION] = LUNA_OFFLINE_RELAXED;
        else if (res->checks[LUNA_OFFLINE_REVOCATION] != LUNA_OFFLINE_FAIL)
            add_failure(res, LUNA_OFFLINE_REVOCATION, LUNA_VERIFY_COLLATERAL_MISSING,
                        "revocation was not checked");
    }
    res->checks[LUNA_OFFLINE_COLLATERAL] =
        has_tcb_documents(in->type) ? LUNA_OFFLINE_PASS : LUNA_OFFLINE_NOT_APPLICABLE;
}

/* Debug, QE identity and TCB, in the shared verifier's order. */
static void appraise_platform(const luna_offline_input *in, luna_offline_result *res)
{
    const luna_offline_policy *pol = in->policy;
    const luna_claims *c = &res->claims;
    const bool tcb_data = in->type == LUNA_EVIDENCE_TDX || in->type == LUNA_EVIDENCE_SGX ||
                          in->type == LUNA_EVIDENCE_SEV_SNP;

    /* Debug: TPM quotes have no debug bit. */
    if (in->type == LUNA_EVIDENCE_TPM)
        res->checks[LUNA_OFFLINE_DEBUG] = LUNA_OFFLINE_NOT_APPLICABLE;
    else if (!c->debug)
        res->checks[LUNA_OFFLINE_DEBUG] = LUNA_OFFLINE_PASS;
    else if (pol->allow_debug)
        res->checks[LUNA_OFFLINE_DEBUG] = LUNA_OFFLINE_RELAXED;
    else
        add_failure(res, LUNA_OFFLINE_DEBUG, LUNA_VERIFY_DEBUG_FORBIDDEN,
                    "Debug: the evidence comes from a debug TEE");

    /* QE identity: out of date or revoked is never relaxed (like verifier.c). */
    switch (c->qe_status) {
    case LUNA_QE_VALID: res->checks[LUNA_OFFLINE_QE_IDENTITY] = LUNA_OFFLINE_PASS; break;
    case LUNA_QE_NOT_APPLICABLE:
        res->checks[LUNA_OFFLINE_QE_IDENTITY] = LUNA_OFFLINE_NOT_APPLICABLE;
        break;
    case LUNA_QE_REVOKED:
        add_failure(res, LUNA_OFFLINE_QE_IDENTITY, LUNA_VERIFY_REVOKED_PLATFORM_KEY,
                    "QE Identity: Revoked");
        break;
    case LUNA_QE_OUT_OF_DATE:
        add_failure(res, LUNA_OFFLINE_QE_IDENTITY, LUNA_VERIFY_TCB_OUT_OF_DATE,
                    "QE Identity: Out of date");
        break;
    case LUNA_QE_UNKNOWN:
    default:
        add_failure(res, LUNA_OFFLINE_QE_IDENTITY, LUNA_VERIFY_INTERNAL,
                    "QE Identity: Unknown (backend left it unset)");
        break;
    }

    /* TCB: Nitro and TPM carry no TCB data (their backends say
       up_to_date for lack of any); say not_applicable rather than pass. */
    if (!tcb_data) {
        res->checks[LUNA_OFFLINE_TCB_STATUS] = LUNA_OFFLINE_NOT_APPLICABLE;
        if (pol->has_min_tcb && pol->min_tcb_level > 0)
            add_failure(res, LUNA_OFFLINE_TCB_STATUS, LUNA_VERIFY_TCB_OUT_OF_DATE,
                        "TCB Status: this evidence type has no TCB level to compare");
    } else if (c->tcb_status == LUNA_TCB_REVOKED) {
        add_failure(res, LUNA_OFFLINE_TCB_STATUS, LUNA_VERIFY_TCB_REVOKED, "TCB Status: Revoked");
    } else if (c->tcb_status == LUNA_TCB_UNKNOWN || (int)c->tcb_status > LUNA_TCB_STATUS_MAX) {
        add_failure(res, LUNA_OFFLINE_TCB_STATUS, LUNA_VERIFY_INTERNAL, "TCB Status: Unknown");
    } else if (pol->has_min_tcb && c->tcb_level < pol->min_tcb_level) {
        add_failure(res, LUNA_OFFLINE_TCB_STATUS, LUNA_VERIFY_TCB_OUT_OF_DATE,
                    "TCB Status: level below the policy minimum (min_tcb_level)");
    } else if (c->tcb_status == LUNA_TCB_UP_TO_DATE) {
        res->checks[LUNA_OFFLINE_TCB_STATUS] = LUNA_OFFLINE_PASS;
    } else if ((pol->accept_tcb & (1u << c->tcb_status)) != 0) {
        res->checks[LUNA_OFFLINE_TCB_STATUS] = LUNA_OFFLINE_RELAXED;
    } else {
        static const char *const words[LUNA_TCB_STATUS_MAX + 1] = {
            [LUNA_TCB_SW_HARDENING_NEEDED] = "TCB Status: SW hardening needed",
            [LUNA_TCB_CONFIGURATION_NEEDED] = "TCB Status: Configuration needed",
            [LUNA_TCB_OUT_OF_DATE] = "TCB Status: Out of date",
        };
        const char *w = words[c->tcb_status] != NULL ? words[c->tcb_status] : "TCB Status: not accepted";
        add_failure(res, LUNA_OFFLINE_TCB_STATUS, LUNA_VERIFY_TCB_OUT_OF_DATE, w);
    }

}

static void appraise_identity(const luna_offline_input *in, luna_offline_result *res)
{
    const luna_offline_policy *pol = in->policy;
    const luna_claims *c = &res->claims;
    bool any = false;

    res->checks[LUNA_OFFLINE_MEASUREMENT] = LUNA_OFFLINE_NOT_CHECKED;
    if (pol->n_mr_enclave > 0) {
        any = true;
        if (!any_equal(pol->mr_enclave, pol->mr_enclave_len, pol->n_mr_enclave, c->measurement,
                       c->measurement_len))
            add_failure(res, LUNA_OFFLINE_MEASUREMENT, LUNA_VERIFY_MEASUREMENT_MISMATCH,
                        "MR_ENCLAVE is not one of the policy's mr_enclave values");
    }
    if (pol->n_mr_signer > 0) {
        any = true;
        if (!any_equal(pol->mr_signer, pol->mr_signer_len, pol->n_mr_signer, c->signer,
                       c->signer_len))
            add_failure(res, LUNA_OFFLINE_MEASUREMENT, LUNA_VERIFY_UNKNOWN_SIGNER,
                        "MR_SIGNER is not one of the policy's mr_signer values");
    }
    if (pol->has_report_data) {
        any = true;
        if (!luna_ct_equal(pol->report_data, c->report_data, LUNA_CLAIM_REPORT_DATA_LEN))
            add_failure(res, LUNA_OFFLINE_MEASUREMENT, LUNA_VERIFY_KEY_NOT_BOUND,
                        "REPORT_DATA is not the policy's report_data");
    }
    /* The hardware expectations of this type (SEV-SNP, TDX, SGX). */
    const void *hw = in->type == LUNA_EVIDENCE_SEV_SNP && pol->has_snp ? (const void *)&pol->snp
                     : in->type == LUNA_EVIDENCE_TDX && pol->has_tdx   ? (const void *)&pol->tdx
                     : in->type == LUNA_EVIDENCE_SGX && pol->has_sgx   ? (const void *)&pol->sgx
                                                                        : NULL;
    if (hw != NULL) {
        const char *why = "hardware expectation not met";
        any = true;
        luna_verify_reason r = luna_hw_expect_check(in->type, hw, c, &why);
        if (r != LUNA_VERIFY_OK)
            add_failure(res, LUNA_OFFLINE_MEASUREMENT, r, why);
    }
    if (any && res->checks[LUNA_OFFLINE_MEASUREMENT] != LUNA_OFFLINE_FAIL)
        res->checks[LUNA_OFFLINE_MEASUREMENT] = LUNA_OFFLINE_PASS;
}

luna_err luna_offline_verify(const luna_offline_input *in, luna_offline_result *res)
{
    if (res == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(res, 0, sizeof(*res));
    if (in == NULL || in->policy == NULL || in->evidence == NULL || in->now <= 0 ||
        (in->anchors == NULL && in->n_anchors != 0) || in->n_anchors > LUNA_POLICY_MAX_ANCHORS ||
        (in->collateral == NULL && in->collateral_len != 0)) {
        add_failure(res, LUNA_OFFLINE_CHECK__COUNT, LUNA_VERIFY_MALFORMED, "invalid arguments");
        return LUNA_ERR_INVALID_ARG;
    }
    const luna_verifier_backend *b = hw_backend(in->type);
    if (b == NULL || b->simulated) {
        add_failure(res, LUNA_OFFLINE_CHECK__COUNT, LUNA_VERIFY_TYPE_NOT_ALLOWED,
                    "offline verification takes hardware evidence only");
        return LUNA_ERR_VERIFY;
    }
    if (in->pinned_ak != NULL && in->type != LUNA_EVIDENCE_TPM) {
        add_failure(res, LUNA_OFFLINE_CHECK__COUNT, LUNA_VERIFY_MALFORMED,
                    "a pinned attestation key applies to TPM quotes only");
        return LUNA_ERR_INVALID_ARG;
    }
    if (in->evidence_len == 0 || in->evidence_len > LUNA_VERIFY_EVIDENCE_MAX) {
        add_failure(res, LUNA_OFFLINE_CHECK__COUNT, LUNA_VERIFY_MALFORMED,
                    "evidence empty or over the size cap");
        return LUNA_ERR_VERIFY;
    }
    if (in->n_anchors == 0 && in->pinned_ak == NULL) {
        add_failure(res, LUNA_OFFLINE_CERT_CHAIN, LUNA_VERIFY_UNKNOWN_ROOT,
                    "no pinned vendor root among the collateral");
        return LUNA_ERR_VERIFY;
    }
    bool authenticated = run_backend(in, b, false, res);
    /* A missing CRL stops the backend before it reports anything else.
       The verdict is already refused; verifying once more with only that
       forgiven shows what the rest of the evidence says (signature,
       chain, TCB, debug) without changing the verdict or the first
       reason. */
    if (!authenticated && !in->policy->revocation_optional && res->n_failures == 1 &&
        res->failures[0].check == LUNA_OFFLINE_REVOCATION &&
        res->failures[0].reason == LUNA_VERIFY_COLLATERAL_MISSING)
        authenticated = run_backend(in, b, true, res);
    if (authenticated) {
        appraise_chain(in, res);
        appraise_identity(in, res);
        appraise_platform(in, res);
    }
    res->verified = res->n_failures == 0;
    if (!res->verified)
        return LUNA_ERR_VERIFY;
    res->reason = LUNA_VERIFY_OK;
    return LUNA_OK;
}
