/*
 * host_platform_tpm.c - the TPM platform of luna-tee-host (platform "tpm",
 * docs/tpm-live.md): turns one evidence request for a runtime the host
 * measured into a TPM 2.0 quote (tee/host_tpm.h) with the TEE keys beside
 * it.  The quote's PCR 23 holds the host's own outside measurement of the
 * runtime, so this evidence proves "an enrolled TPM's host measured this",
 * never memory encryption.  Must never quote a measurement it was not
 * handed by the measuring code, nor put anything but the (nonce, keys)
 * binding into extraData.
 *
 * Also the TPM half of the operator's AK enrolment (docs/tpm-live.md,
 * section 2): the EK certificate and AK public area out, one
 * TPM2_ActivateCredential per challenge in.  The host never holds the
 * enrolment CA key and never decides whether an AK is trusted.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "host.h"
#include "host_tpm.h"
#include "luna/bytes.h"
#include "luna/json.h"
#include "luna/tpm.h"

luna_err host_platform_tpm_evidence(struct host_tpm *t, const host_evidence_in *in, uint8_t *out,
                                    size_t cap, size_t *out_len)
{
    luna_wbuf w;
    if (t == NULL || in == NULL || out == NULL || out_len == NULL || in->measurement == NULL ||
        in->x25519 == NULL || in->nonce == NULL)
        return LUNA_ERR_INVALID_ARG;
    luna_wbuf_init(&w, out, cap);
    luna_err err = host_tpm_evidence(t, in->measurement, in->nonce, in->x25519, in->ed25519, &w);
    if (err != LUNA_OK) {
        luna_wipe(out, cap);
        return err;
    }
    *out_len = w.len;
    return LUNA_OK;
}

static luna_err set_b64(json_t *o, const char *key, const uint8_t *b, size_t n)
{
    size_t cap = LUNA_B64URL_ENC_LEN(n);
    char *s = malloc(cap);
    if (s == NULL)
        return LUNA_ERR_NOMEM;
    luna_err err = luna_b64url_encode(b, n, s, cap);
    if (err == LUNA_OK && json_object_set_new(o, key, json_string(s)) != 0)
        err = LUNA_ERR_NOMEM;
    free(s);
    return err;
}

luna_err host_platform_tpm_enrolment(struct host_tpm *t, json_t **out)
{
    uint8_t ek[LUNA_TPM_EK_CERT_MAX], ak[LUNA_TPM_PUBLIC_MAX];
    size_t ek_len = 0, ak_len = 0;
    json_t *o = NULL;
    luna_err err;
    if (t == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    LUNA_TRY(host_tpm_ek_cert(t, ek, sizeof(ek), &ek_len), done);
    LUNA_TRY(host_tpm_ak_public(t, ak, sizeof(ak), &ak_len), done);
    o = json_object();
    LUNA_TRY_ENSURE(o != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY(set_b64(o, "ek_cert", ek, ek_len), done);
    LUNA_TRY(set_b64(o, "ak_public", ak, ak_len), done);
    *out = o;
    o = NULL;
done:
    json_decref(o);
    return err;
}

static const luna_json_field activate_fields[] = {
    {.name = "id_object", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED, .min_len = 4,
     .max_len = LUNA_TPM_ID_OBJECT_MAX},
    {.name = "enc_secret", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = 4, .max_len = LUNA_TPM_ENC_SECRET_MAX},
};
static const luna_json_schema activate_schema = {activate_fields, 2, NULL};

luna_err host_platform_tpm_activate(struct host_tpm *t, const uint8_t *body, size_t len,
                                    json_t **out)
{
    uint8_t id[LUNA_TPM_ID_OBJECT_MAX], sec[LUNA_TPM_ENC_SECRET_MAX], cred[64];
    size_t id_len = 0, sec_len = 0, cred_len = 0;
    json_t *in = NULL, *o = NULL;
    luna_err err;
    if (t == NULL || body == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    LUNA_TRY(luna_json_parse((const char *)body, len, &activate_schema, NULL, &in, NULL), done);
    LUNA_TRY(luna_json_get_b64url(in, "id_object", id, sizeof(id), &id_len), done);
    LUNA_TRY(luna_json_get_b64url(in, "enc_secret", sec, sizeof(sec), &sec_len), done);
    LUNA_TRY(host_tpm_activate(t, id, id_len, sec, sec_len, cred, sizeof(cred), &cred_len), done);
    o = json_object();
    LUNA_TRY_ENSURE(o != NULL, LUNA_ERR_NOMEM, done);
    LUNA_TRY(set_b64(o, "credential", cred, cred_len), done);
    *out = o;
    o = NULL;
done:
    /* The credential is the challenge's secret until the operator checks it. */
    luna_wipe(cred, sizeof(cred));
    json_decref(in);
    json_decref(o);
    return err;
}
