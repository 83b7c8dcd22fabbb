/*
 * kms_verify.c - the KMS's own evidence appraisal (kms_verify.h).
 *
 * Owns: building the verifier policies from the KMS config (its own
 * reference measurements, signers, vendor roots, collateral) and calling
 * the shared verifier.  Must never: relax a policy because an input is
 * missing, or read anything the attestation service sent as a reference.
 */
#include "kms_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/json.h"
#include "luna/verifier.h"

/* The getters below read fields the schema already checked (or left out). */
static void ign(luna_err e)
{
    (void)e;
}

#define MAX_COLLATERAL 8u
#define COLLATERAL_MAX_BYTES (64u * 1024u)

struct kms_verify {
    luna_verifier *release;
    luna_verifier *activate;
    bool allowed[LUNA_EVIDENCE_TYPE_MAX + 1];
};

static bool type_from_name(const char *name, luna_evidence_type *out)
{
    for (int t = 1; t <= LUNA_EVIDENCE_TYPE_MAX; t++) {
        if (strcmp(luna_evidence_type_name((luna_evidence_type)t), name) == 0) {
            *out = (luna_evidence_type)t;
            return true;
        }
    }
    return false;
}

static luna_err read_small_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return LUNA_ERR_IO;
    uint8_t *buf = malloc(COLLATERAL_MAX_BYTES);
    if (buf == NULL) {
        (void)fclose(f);
        return LUNA_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, COLLATERAL_MAX_BYTES, f);
    bool more = fgetc(f) != EOF;
    (void)fclose(f);
    if (more || n == 0) {
        free(buf);
        return more ? LUNA_ERR_TOO_LARGE : LUNA_ERR_FORMAT;
    }
    *out = buf;
    *len = n;
    return LUNA_OK;
}

static luna_err add_anchor(luna_policy *p, luna_evidence_type t, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return LUNA_ERR_IO;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    (void)fclose(f);
    if (x == NULL)
        return LUNA_ERR_FORMAT;
    luna_err err = luna_policy_add_anchor(p, t, x);
    X509_free(x);
    return err;
}

/*
 * Installs every configured collateral document (sim: the signed TCB
 * status).  strict: any failure is returned (start-up); otherwise a
 * document that is unchanged or not newer is simply kept (refresh).
 */
static luna_err load_collateral(const json_t *root, luna_verifier *v, bool strict)
{
    const json_t *col = NULL;
    size_t n_col = 0;
    if (luna_json_get_array(root, "kms.collateral", &col, &n_col) != LUNA_OK)
        return LUNA_OK;
    for (size_t i = 0; i < n_col && i < MAX_COLLATERAL; i++) {
        const json_t *c = json_array_get(col, i);
        const char *tname = NULL, *path = NULL;
        size_t tl = 0, pl = 0, len = 0;
        uint8_t *doc = NULL;
        luna_evidence_type t;
        LUNA_GUARD(luna_json_get_string(c, "evidence_type", &tname, &tl));
        LUNA_GUARD(luna_json_get_string(c, "file", &path, &pl));
        if (!type_from_name(tname, &t))
            return LUNA_ERR_CONFIG;
        LUNA_GUARD(read_small_file(path, &doc, &len));
        luna_err err = luna_verifier_set_collateral(v, t, doc, len, 0);
        free(doc);
        if (err != LUNA_OK && (strict || err != LUNA_ERR_CONFLICT))
            return err;
    }
    return LUNA_OK;
}

/* One policy from the config; freshness differs between the two uses. */
static luna_err build(const json_t *root, bool production, const bool *allowed,
                      const char *const *anchors, size_t n_anchors, bool require_nonce,
                      luna_verifier **out, const char **why)
{
    luna_policy *p = NULL;
    luna_err err;
    int64_t min_tcb = 0, max_age = 300;
    ign(luna_json_get_int(root, "kms.min_tcb_level", &min_tcb));
    ign(luna_json_get_int(root, "kms.evidence_max_age_sec", &max_age));
    *why = "kms: verifier policy";
    LUNA_TRY(luna_policy_new(production ? LUNA_PROFILE_PRODUCTION : LUNA_PROFILE_DEVELOPMENT, &p),
             fail);
    for (int t = 1; t <= LUNA_EVIDENCE_TYPE_MAX; t++) {
        if (!allowed[t])
            continue;
        *why = "attestation.allowed_evidence";
        LUNA_TRY(luna_policy_allow_type(p, (luna_evidence_type)t, (uint32_t)min_tcb), fail);
        /* A TPM quote has no clock: the caller's nonce, bound with the
           keys in extraData, is its only freshness (docs/tpm-live.md). */
        if (t == LUNA_EVIDENCE_TPM)
            LUNA_TRY(luna_policy_set_nonce_freshness(p, LUNA_EVIDENCE_TPM), fail);
        *why = "attestation.trust_anchors";
        for (size_t i = 0; i < n_anchors; i++)
            LUNA_TRY(add_anchor(p, (luna_evidence_type)t, anchors[i]), fail);
    }
    const json_t *refs = NULL;
    size_t n_refs = 0;
    *why = "kms.references";
    if (luna_json_get_array(root, "kms.references", &refs, &n_refs) == LUNA_OK) {
        for (size_t i = 0; i < n_refs; i++) {
            const json_t *r = json_array_get(refs, i);
            const char *dep = NULL, *tname = NULL;
            size_t dl = 0, tl = 0, ml = 0, sl = 0;
            uint8_t m[64], sg[64];
            luna_evidence_type t;
            LUNA_TRY(luna_json_get_string(r, "deployment_id", &dep, &dl), fail);
            LUNA_TRY(luna_json_get_string(r, "evidence_type", &tname, &tl), fail);
            LUNA_TRY_ENSURE(type_from_name(tname, &t), LUNA_ERR_CONFIG, fail);
            LUNA_TRY(luna_json_get_hex(r, "mr_enclave", m, sizeof(m), &ml), fail);
            LUNA_TRY(luna_policy_add_reference(p, dep, t, m, ml), fail);
            if (luna_json_get_hex(r, "mr_signer", sg, sizeof(sg), &sl) == LUNA_OK)
                LUNA_TRY(luna_policy_add_signer(p, dep, sg, sl), fail);
        }
    }
    *why = "kms.evidence_max_age_sec";
    LUNA_TRY(luna_policy_set_freshness(p, require_nonce, (uint32_t)max_age, 60), fail);
    luna_policy *given = p;
    p = NULL;
    *why = "kms: verifier";
    LUNA_TRY(luna_verifier_new(given, out), fail);
    *why = "kms.collateral";
    LUNA_TRY(load_collateral(root, *out, true), fail_v);
    *why = NULL;
    return LUNA_OK;
fail_v:
    luna_verifier_free(*out);
    *out = NULL;
fail:
    luna_policy_free(p);
    return err;
}

luna_err kms_verify_new(const json_t *root, bool production, const char *const *types,
                        size_t n_types, const char *const *anchors, size_t n_anchors,
                        kms_verify **out, const char **why)
{
    if (root == NULL || out == NULL || why == NULL)
        return LUNA_ERR_INVALID_ARG;
    kms_verify *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return LUNA_ERR_NOMEM;
    for (size_t i = 0; i < n_types; i++) {
        luna_evidence_type t;
        if (type_from_name(types[i], &t))
            v->allowed[t] = true;
    }
    luna_err err = build(root, production, v->allowed, anchors, n_anchors, true, &v->release, why);
    if (err == LUNA_OK)
        err = build(root, production, v->allowed, anchors, n_anchors, false, &v->activate, why);
    if (err != LUNA_OK) {
        kms_verify_free(v);
        return err;
    }
    *out = v;
    return LUNA_OK;
}

void kms_verify_free(kms_verify *v)
{
    if (v == NULL)
        return;
    luna_verifier_free(v->release);
    luna_verifier_free(v->activate);
    free(v);
}

bool kms_verify_type_ok(const kms_verify *v, const char *type)
{
    luna_evidence_type t;
    return v != NULL && type != NULL && type_from_name(type, &t) && v->allowed[t];
}

luna_err kms_verify_evidence(kms_verify *v, bool release, const char *type, const uint8_t *ev,
                             size_t len, const char *deployment, const uint8_t *nonce,
                             const uint8_t *kx, const uint8_t *sign, int64_t now,
                             kms_ev_claims *out, const char **reason)
{
    luna_verify_result res;
    luna_evidence_type t;
    *reason = "type_not_allowed";
    if (v == NULL || out == NULL || !type_from_name(type, &t) || !v->allowed[t])
        return LUNA_ERR_VERIFY;
    if (release && nonce == NULL)
        return LUNA_ERR_INVALID_ARG;
    luna_verify_input in = {
        .type = t,
        .evidence = ev,
        .evidence_len = len,
        .deployment_id = deployment,
        .nonce = nonce,
        .tee_x25519 = kx,
        .tee_ed25519 = sign,
        .now = now,
    };
    memset(&res, 0, sizeof(res));
    luna_err err = luna_verifier_verify(release ? v->release : v->activate, &in, &res);
    *reason = luna_verify_reason_name(res.reason);
    if (err != LUNA_OK) {
        luna_wipe(&res, sizeof(res));
        return err == LUNA_ERR_INVALID_ARG ? LUNA_ERR_VERIFY : err;
    }
    memset(out, 0, sizeof(*out));
    const luna_claims *c = &res.claims;
    out->measurement_len = c->measurement_len;
    memcpy(out->measurement, c->measurement, c->measurement_len);
    out->signer_len = c->signer_len;
    memcpy(out->signer, c->signer, c->signer_len);
    out->has_kx = c->has_tee_x25519;
    memcpy(out->kx, c->tee_x25519, 32);
    out->has_sign = c->has_tee_ed25519;
    memcpy(out->sign, c->tee_ed25519, 32);
    out->simulated = c->simulated;
    return LUNA_OK;
}

luna_err kms_verify_refresh(kms_verify *v, const json_t *root)
{
    if (v == NULL || root == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(load_collateral(root, v->release, false));
    return load_collateral(root, v->activate, false);
}
