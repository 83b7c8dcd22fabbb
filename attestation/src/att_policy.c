/*
 * att_policy.c - builds the shared verifier's appraisal policy from the
 * attestation service's settings (reference values per deployment,
 * allowed developer keys, vendor roots, minimum TCB, freshness: nonce AND
 * bounded age), installs the TCB collateral, and appraises evidence.
 *
 * Type "tpm" (docs/tpm-live.md): the only anchor is the AK enrolment CA,
 * the collateral the enrolled AKs' certificates, the reference the
 * pcrDigest a quote of PCR 23 has when the host measured the deployment's
 * mr_enclave, the signers the enrolled AKs' qualified names.
 *
 * Must never: weaken the policy the verifier enforces (no debug, nonce
 * always required), or copy unauthenticated claims into a result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "luna/crypto.h"
#include "luna/verifier.h"

#include "att.h"

#define ATT_COLLATERAL_MAX (64u * 1024u)

int att_evidence_type_parse(const char *name)
{
    if (name != NULL && strcmp(name, "sim") == 0)
        return LUNA_EVIDENCE_SIM;
    if (name != NULL && strcmp(name, "tpm") == 0)
        return LUNA_EVIDENCE_TPM;
    return 0;
}

static luna_err read_small_file(const char *path, size_t cap, uint8_t **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n;
    if (f == NULL)
        return LUNA_ERR_NOT_FOUND;
    buf = malloc(cap + 1);
    if (buf == NULL) {
        fclose(f);
        return LUNA_ERR_NOMEM;
    }
    n = fread(buf, 1, cap + 1, f);
    fclose(f);
    if (n == 0 || n > cap) {
        free(buf);
        return n == 0 ? LUNA_ERR_IO : LUNA_ERR_TOO_LARGE;
    }
    *out = buf;
    *out_len = n;
    return LUNA_OK;
}

static luna_err add_anchor(luna_policy *p, luna_evidence_type type, const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;
    luna_err err;
    if (f == NULL)
        return LUNA_ERR_NOT_FOUND;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL)
        return LUNA_ERR_FORMAT;
    err = luna_policy_add_anchor(p, type, x);
    X509_free(x); /* the policy holds its own reference */
    return err;
}

luna_err att_policy_refresh(const att_settings *s, luna_verifier *v)
{
    uint8_t *doc = NULL;
    size_t len = 0;
    luna_err err;
    if (s->allow_tpm) {
        LUNA_GUARD(read_small_file(s->tpm_collateral, ATT_COLLATERAL_MAX, &doc, &len));
        err = luna_verifier_set_collateral(v, LUNA_EVIDENCE_TPM, doc, len, 0);
        free(doc);
        doc = NULL;
        if (err != LUNA_OK && err != LUNA_ERR_CONFLICT)
            return err;
    }
    if (!s->allow_sim || s->sim_collateral == NULL)
        return LUNA_OK;
    LUNA_GUARD(read_small_file(s->sim_collateral, ATT_COLLATERAL_MAX, &doc, &len));
    err = luna_verifier_set_collateral(v, LUNA_EVIDENCE_SIM, doc, len, 0);
    free(doc);
    /* The same document again is not a rollback worth reporting. */
    return err == LUNA_ERR_CONFLICT ? LUNA_OK : err;
}

/* The pcrDigest of a quote of PCR 23 (SHA-256 bank) after the host reset
   it and extended it once with mr (tee/host_tpm.h). */
static luna_err tpm_reference(const uint8_t mr[ATT_MEASUREMENT_LEN], uint8_t out[32])
{
    uint8_t buf[32 + ATT_MEASUREMENT_LEN], pcr[32];
    memset(buf, 0, 32);
    memcpy(buf + 32, mr, ATT_MEASUREMENT_LEN);
    LUNA_GUARD(luna_sha256(buf, sizeof buf, pcr));
    return luna_sha256(pcr, sizeof pcr, out);
}

luna_err att_policy_build(const att_settings *s, luna_verifier **out, char *msg, size_t msg_cap)
{
    luna_policy *p = NULL;
    luna_verifier *v = NULL;
    luna_err err;

    *out = NULL;
    msg[0] = '\0';
    LUNA_GUARD(luna_policy_new(s->production ? LUNA_PROFILE_PRODUCTION : LUNA_PROFILE_DEVELOPMENT,
                               &p));
    if (s->allow_sim) {
        err = luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, s->min_tcb_level);
        if (err != LUNA_OK) {
            snprintf(msg, msg_cap, "policy: sim evidence refused by the verifier");
            goto out;
        }
        for (size_t i = 0; i < s->n_anchors; i++) {
            err = add_anchor(p, LUNA_EVIDENCE_SIM, s->anchors[i]);
            if (err != LUNA_OK) {
                snprintf(msg, msg_cap, "policy: attestation.trust_anchors[%zu]: %s", i,
                         luna_strerror(err));
                goto out;
            }
        }
    }
    if (s->allow_tpm) {
        /* A quote has no clock: our nonce, bound with the keys in
           extraData, is its freshness. */
        err = luna_policy_allow_type(p, LUNA_EVIDENCE_TPM, 0);
        if (err == LUNA_OK)
            err = luna_policy_set_nonce_freshness(p, LUNA_EVIDENCE_TPM);
        if (err == LUNA_OK)
            err = add_anchor(p, LUNA_EVIDENCE_TPM, s->tpm_ak_ca);
        if (err != LUNA_OK) {
            snprintf(msg, msg_cap, "policy: attestation_service.tpm: %s", luna_strerror(err));
            goto out;
        }
    }
    for (size_t i = 0; i < s->n_deployments; i++) {
        const att_deployment *d = &s->deployments[i];
        LUNA_TRY(luna_policy_add_reference(p, d->id, LUNA_EVIDENCE_SIM, d->mr_enclave,
                                           sizeof d->mr_enclave),
                 fail);
        LUNA_TRY(luna_policy_add_signer(p, d->id, d->mr_signer, sizeof d->mr_signer), fail);
        if (!s->allow_tpm)
            continue;
        uint8_t ref[32];
        LUNA_TRY(tpm_reference(d->mr_enclave, ref), fail);
        LUNA_TRY(luna_policy_add_reference(p, d->id, LUNA_EVIDENCE_TPM, ref, sizeof ref), fail);
        for (size_t k = 0; k < s->n_tpm_signers; k++)
            LUNA_TRY(luna_policy_add_signer(p, d->id, s->tpm_signers[k], s->tpm_signer_len[k]),
                     fail);
    }
    /* Both rules: our nonce proves the round, the age bounds a platform clock. */
    LUNA_TRY(luna_policy_set_freshness(p, true, s->max_evidence_age, LUNA_POLICY_DEFAULT_SKEW),
             fail);
    err = luna_verifier_new(p, &v);
    p = NULL; /* taken over whatever the result */
    if (err != LUNA_OK) {
        snprintf(msg, msg_cap, "policy: %s", luna_strerror(err));
        goto out;
    }
    err = att_policy_refresh(s, v);
    if (err != LUNA_OK) {
        snprintf(msg, msg_cap, "policy: attestation_service.sim_collateral / tpm.collateral: %s",
                 luna_strerror(err));
        goto out;
    }
    *out = v;
    return LUNA_OK;
fail:
    snprintf(msg, msg_cap, "policy: attestation_service.deployments: %s", luna_strerror(err));
out:
    luna_policy_free(p);
    luna_verifier_free(v);
    return err;
}

void att_policy_free(luna_verifier *v)
{
    luna_verifier_free(v);
}

luna_err att_appraise(luna_verifier *v, int type, const uint8_t *ev, size_t ev_len,
                      const char *deployment, const uint8_t nonce[ATT_NONCE_LEN], int64_t now,
                      att_appraisal *a)
{
    luna_verify_input in;
    luna_verify_result res;
    luna_err err;

    if (v == NULL || a == NULL || deployment == NULL || nonce == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(a, 0, sizeof *a);
    memset(&in, 0, sizeof in);
    in.type = (luna_evidence_type)type;
    in.evidence = ev;
    in.evidence_len = ev_len;
    in.deployment_id = deployment;
    in.nonce = nonce;
    in.now = now;
    err = luna_verifier_verify(v, &in, &res);
    snprintf(a->reason, sizeof a->reason, "%s", luna_verify_reason_name(res.reason));
    snprintf(a->message, sizeof a->message, "%s", res.message);
    if (err != LUNA_OK) {
        a->ok = false;
        return err == LUNA_ERR_VERIFY ? LUNA_OK : err;
    }
    const luna_claims *c = &res.claims;
    att_claims *o = &a->claims;
    a->ok = true;
    o->evidence_type = (int)c->type;
    snprintf(o->evidence_type_name, sizeof o->evidence_type_name, "%s",
             luna_evidence_type_name(c->type));
    o->simulated = c->simulated;
    o->measurement_len = c->measurement_len <= sizeof o->measurement ? c->measurement_len : 0;
    memcpy(o->measurement, c->measurement, o->measurement_len);
    o->signer_len = c->signer_len <= sizeof o->signer ? c->signer_len : 0;
    memcpy(o->signer, c->signer, o->signer_len);
    if (!c->has_tee_x25519) {
        /* A TEE without a bound encryption key has no identity to report. */
        a->ok = false;
        snprintf(a->reason, sizeof a->reason, "%s",
                 luna_verify_reason_name(LUNA_VERIFY_KEY_NOT_BOUND));
        snprintf(a->message, sizeof a->message, "evidence binds no TEE key");
        return LUNA_OK;
    }
    memcpy(o->tee_kx, c->tee_x25519, ATT_KEY_LEN);
    o->has_tee_sign = c->has_tee_ed25519;
    if (c->has_tee_ed25519)
        memcpy(o->tee_sign, c->tee_ed25519, ATT_KEY_LEN);
    o->debug = c->debug;
    o->tcb_level = c->tcb_level;
    snprintf(o->tcb_status, sizeof o->tcb_status, "%s", luna_tcb_status_name(c->tcb_status));
    snprintf(o->qe_status, sizeof o->qe_status, "%s", luna_qe_status_name(c->qe_status));
    o->has_memory_digest = c->has_memory_digest;
    memcpy(o->memory_digest, c->memory_digest, sizeof o->memory_digest);
    memcpy(o->report_data, c->report_data, sizeof o->report_data);
    o->timestamp = c->has_timestamp ? c->timestamp : 0;
    return LUNA_OK;
}
