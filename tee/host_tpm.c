/*
 * host_tpm.c - the TPM side of the live TPM 2.0 path (host_tpm.h), over
 * tpm2-tss ESYS: EK certificate and AK public area for enrolment,
 * TPM2_ActivateCredential, the PCR 23 measurement and TPM2_Quote packaged
 * as LTQ1.
 *
 * It must never decide trust (the verifier does, from the EK certificate
 * and the challenge), never use an AK other than the fixed-template one,
 * and never hand a quote out without the PCR value it covers.
 */
#include "host_tpm.h"

#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "luna/evidence_hw.h"
#include "luna/verifier.h"

#define NV_CHUNK 512u

struct host_tpm {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR ek;
    ESYS_TR ak;
    uint8_t ak_public[1024];
    size_t ak_public_len;
};

/* A TCTI failure means the TPM is not there; anything else is the TPM
   (or ESYS) refusing. */
static luna_err tss_err(TSS2_RC rc)
{
    if (rc == TSS2_RC_SUCCESS)
        return LUNA_OK;
    if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER)
        return LUNA_ERR_UNAVAILABLE;
    return LUNA_ERR_IO;
}

static TPM2B_PUBLIC ak_template(void)
{
    TPM2B_PUBLIC t;
    memset(&t, 0, sizeof(t));
    t.publicArea.type = TPM2_ALG_RSA;
    t.publicArea.nameAlg = TPM2_ALG_SHA256;
    t.publicArea.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
                                    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH;
    t.publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    t.publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    t.publicArea.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    t.publicArea.parameters.rsaDetail.keyBits = 2048;
    t.publicArea.parameters.rsaDetail.exponent = 0;
    return t;
}

static luna_err create_ak(host_tpm *t)
{
    TPM2B_SENSITIVE_CREATE sens;
    TPM2B_PUBLIC tmpl = ak_template();
    TPM2B_DATA outside;
    TPML_PCR_SELECTION pcrs;
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_CREATION_DATA *cdata = NULL;
    TPM2B_DIGEST *chash = NULL;
    TPMT_TK_CREATION *ticket = NULL;
    size_t off = 0;
    luna_err err;

    memset(&sens, 0, sizeof(sens));
    memset(&outside, 0, sizeof(outside));
    memset(&pcrs, 0, sizeof(pcrs));
    /* A primary of the endorsement hierarchy: deterministic from the
       EPS and the template, and its quotes carry clear counters. */
    err = tss_err(Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
                                     ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs,
                                     &t->ak, &pub, &cdata, &chash, &ticket));
    if (err == LUNA_OK &&
        Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, t->ak_public, sizeof(t->ak_public), &off) !=
            TSS2_RC_SUCCESS)
        err = LUNA_ERR_INTERNAL;
    t->ak_public_len = off;
    Esys_Free(pub);
    Esys_Free(cdata);
    Esys_Free(chash);
    Esys_Free(ticket);
    return err;
}

luna_err host_tpm_open(const char *tcti, host_tpm **out)
{
    host_tpm *t = NULL;
    TPM2B_PUBLIC *ekpub = NULL;
    luna_err err;

    if (tcti == NULL || out == NULL || strlen(tcti) > HOST_TPM_TCTI_MAX)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return LUNA_ERR_NOMEM;
    t->ek = t->ak = ESYS_TR_NONE;
    err = Tss2_TctiLdr_Initialize(tcti, &t->tcti) == TSS2_RC_SUCCESS ? LUNA_OK
                                                                    : LUNA_ERR_UNAVAILABLE;
    if (err != LUNA_OK)
        goto out;
    LUNA_TRY(tss_err(Esys_Initialize(&t->esys, t->tcti, NULL)), out);
    if (Esys_TR_FromTPMPublic(t->esys, HOST_TPM_EK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE,
                              ESYS_TR_NONE, &t->ek) != TSS2_RC_SUCCESS) {
        t->ek = ESYS_TR_NONE;
        err = LUNA_ERR_NOT_FOUND;
        goto out;
    }
    LUNA_TRY(tss_err(Esys_ReadPublic(t->esys, t->ek, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                     &ekpub, NULL, NULL)),
             out);
    LUNA_TRY_ENSURE(ekpub->publicArea.type == TPM2_ALG_RSA &&
                        (ekpub->publicArea.objectAttributes & TPMA_OBJECT_DECRYPT) != 0 &&
                        (ekpub->publicArea.objectAttributes & TPMA_OBJECT_RESTRICTED) != 0,
                    LUNA_ERR_NOT_FOUND, out);
    LUNA_TRY(create_ak(t), out);
    *out = t;
    t = NULL;
out:
    Esys_Free(ekpub);
    host_tpm_free(t);
    return err;
}

void host_tpm_free(host_tpm *t)
{
    if (t == NULL)
        return;
    if (t->esys != NULL) {
        if (t->ak != ESYS_TR_NONE)
            (void)Esys_FlushContext(t->esys, t->ak);
        if (t->ek != ESYS_TR_NONE)
            (void)Esys_TR_Close(t->esys, &t->ek);
        Esys_Finalize(&t->esys);
    }
    Tss2_TctiLdr_Finalize(&t->tcti);
    free(t);
}

/* ---- enrolment ---- */

/* Length of the DER element at the start of b (the NV index is larger
   than the certificate and padded). */
static luna_err der_length(const uint8_t *b, size_t n, size_t *len)
{
    luna_reader r;
    uint8_t tag = 0, l0 = 0;
    size_t body = 0;
    luna_reader_init(&r, b, n);
    LUNA_GUARD(luna_read_u8(&r, &tag));
    LUNA_GUARD(luna_read_u8(&r, &l0));
    LUNA_ENSURE(tag == 0x30, LUNA_ERR_FORMAT);
    if (l0 < 0x80) {
        body = l0;
    } else if (l0 == 0x81) {
        uint8_t v = 0;
        LUNA_GUARD(luna_read_u8(&r, &v));
        body = v;
    } else if (l0 == 0x82) {
        uint16_t v = 0;
        LUNA_GUARD(luna_read_u16(&r, &v));
        body = v;
    } else {
        return LUNA_ERR_FORMAT;
    }
    LUNA_GUARD(luna_read_skip(&r, body));
    *len = r.off;
    return LUNA_OK;
}

luna_err host_tpm_ek_cert(host_tpm *t, uint8_t *out, size_t cap, size_t *len)
{
    ESYS_TR nv = ESYS_TR_NONE;
    TPM2B_NV_PUBLIC *pub = NULL;
    TPM2B_MAX_NV_BUFFER *chunk = NULL;
    luna_err err;
    size_t size = 0;

    if (t == NULL || out == NULL || len == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_TRY(tss_err(Esys_TR_FromTPMPublic(t->esys, HOST_TPM_EK_CERT_NV, ESYS_TR_NONE,
                                           ESYS_TR_NONE, ESYS_TR_NONE, &nv)),
             out);
    LUNA_TRY(tss_err(Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        &pub, NULL)),
             out);
    size = pub->nvPublic.dataSize;
    LUNA_TRY_ENSURE(size > 0 && size <= cap, LUNA_ERR_TOO_LARGE, out);
    for (size_t off = 0; off < size;) {
        uint16_t n = (uint16_t)(size - off < NV_CHUNK ? size - off : NV_CHUNK);
        /* The index authorizes itself (AUTHREAD, empty auth): no owner
           password needed, whatever the owner set. */
        LUNA_TRY(tss_err(Esys_NV_Read(t->esys, nv, nv, ESYS_TR_PASSWORD,
                                      ESYS_TR_NONE, ESYS_TR_NONE, n, (uint16_t)off, &chunk)),
                 out);
        LUNA_TRY_ENSURE(chunk->size == n, LUNA_ERR_IO, out);
        memcpy(out + off, chunk->buffer, n);
        off += n;
        Esys_Free(chunk);
        chunk = NULL;
    }
    LUNA_TRY(der_length(out, size, len), out);
out:
    Esys_Free(chunk);
    Esys_Free(pub);
    if (nv != ESYS_TR_NONE)
        (void)Esys_TR_Close(t->esys, &nv);
    return err;
}

luna_err host_tpm_ak_public(host_tpm *t, uint8_t *out, size_t cap, size_t *len)
{
    if (t == NULL || out == NULL || len == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (cap < t->ak_public_len)
        return LUNA_ERR_TOO_LARGE;
    memcpy(out, t->ak_public, t->ak_public_len);
    *len = t->ak_public_len;
    return LUNA_OK;
}

luna_err host_tpm_activate(host_tpm *t, const uint8_t *id_object, size_t id_len,
                           const uint8_t *enc_secret, size_t sec_len, uint8_t *out, size_t cap,
                           size_t *len)
{
    TPM2B_ID_OBJECT blob;
    TPM2B_ENCRYPTED_SECRET secret;
    TPMT_SYM_DEF sym;
    TPM2B_DIGEST *cert = NULL;
    ESYS_TR session = ESYS_TR_NONE;
    size_t off = 0;
    luna_err err;
    TSS2_RC rc;

    if (t == NULL || id_object == NULL || enc_secret == NULL || out == NULL || len == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(&blob, 0, sizeof(blob));
    memset(&secret, 0, sizeof(secret));
    if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(id_object, id_len, &off, &blob) != TSS2_RC_SUCCESS ||
        off != id_len)
        return LUNA_ERR_FORMAT;
    off = 0;
    if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(enc_secret, sec_len, &off, &secret) !=
            TSS2_RC_SUCCESS ||
        off != sec_len)
        return LUNA_ERR_FORMAT;
    /* The EK (template L-1) is usable only through PolicySecret(endorsement). */
    memset(&sym, 0, sizeof(sym));
    sym.algorithm = TPM2_ALG_NULL;
    LUNA_TRY(tss_err(Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                           ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym,
                                           TPM2_ALG_SHA256, &session)),
             out);
    LUNA_TRY(tss_err(Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, session,
                                       ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL,
                                       NULL, 0, NULL, NULL)),
             out);
    rc = Esys_ActivateCredential(t->esys, t->ak, t->ek, ESYS_TR_PASSWORD, session, ESYS_TR_NONE,
                                 &blob, &secret, &cert);
    if (rc == TSS2_RC_SUCCESS) {
        session = ESYS_TR_NONE; /* flushed by the TPM: continueSession was clear */
    } else {
        /* The TPM refuses a blob for another Name (integrity) or another
           EK (the seed does not decrypt): a failed challenge. */
        err = tss_err(rc) == LUNA_ERR_UNAVAILABLE ? LUNA_ERR_UNAVAILABLE : LUNA_ERR_VERIFY;
        goto out;
    }
    LUNA_TRY_ENSURE(cert->size <= cap, LUNA_ERR_TOO_LARGE, out);
    memcpy(out, cert->buffer, cert->size);
    *len = cert->size;
out:
    if (cert != NULL) {
        luna_wipe(cert, sizeof(*cert));
        Esys_Free(cert);
    }
    if (session != ESYS_TR_NONE)
        (void)Esys_FlushContext(t->esys, session);
    return err;
}

/* ---- measurement and quotes ---- */

static luna_err extend(host_tpm *t, const uint8_t digest[32])
{
    TPML_DIGEST_VALUES v;
    memset(&v, 0, sizeof(v));
    v.count = 1;
    v.digests[0].hashAlg = TPM2_ALG_SHA256;
    memcpy(v.digests[0].digest.sha256, digest, 32);
    return tss_err(Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + HOST_TPM_PCR, ESYS_TR_PASSWORD,
                                   ESYS_TR_NONE, ESYS_TR_NONE, &v));
}

luna_err host_tpm_measure(host_tpm *t, const uint8_t measurement[32])
{
    if (t == NULL || measurement == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(tss_err(Esys_PCR_Reset(t->esys, ESYS_TR_PCR0 + HOST_TPM_PCR, ESYS_TR_PASSWORD,
                                      ESYS_TR_NONE, ESYS_TR_NONE)));
    return extend(t, measurement);
}

luna_err host_tpm_extend(host_tpm *t, const uint8_t digest[32])
{
    if (t == NULL || digest == NULL)
        return LUNA_ERR_INVALID_ARG;
    return extend(t, digest);
}

static TPML_PCR_SELECTION pcr_selection(void)
{
    TPML_PCR_SELECTION s;
    memset(&s, 0, sizeof(s));
    s.count = 1;
    s.pcrSelections[0].hash = TPM2_ALG_SHA256;
    s.pcrSelections[0].sizeofSelect = 3;
    s.pcrSelections[0].pcrSelect[HOST_TPM_PCR / 8] = (uint8_t)(1u << (HOST_TPM_PCR % 8));
    return s;
}

luna_err host_tpm_quote(host_tpm *t, const uint8_t *extra, size_t extra_len, luna_wbuf *w)
{
    TPML_PCR_SELECTION sel = pcr_selection();
    TPMT_SIG_SCHEME scheme;
    TPM2B_DATA q;
    TPM2B_ATTEST *attest = NULL;
    TPMT_SIGNATURE *sig = NULL;
    TPML_PCR_SELECTION *sel_out = NULL;
    TPML_DIGEST *values = NULL;
    uint8_t sig_buf[LUNA_TPM_SIG_MAX];
    size_t sig_len = 0;
    uint32_t counter = 0;
    luna_err err;

    if (t == NULL || extra == NULL || extra_len == 0 || extra_len > 64 || w == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(&scheme, 0, sizeof(scheme));
    scheme.scheme = TPM2_ALG_NULL; /* the AK's own: RSASSA-SHA-256 */
    memset(&q, 0, sizeof(q));
    q.size = (uint16_t)extra_len;
    memcpy(q.buffer, extra, extra_len);
    LUNA_TRY(tss_err(Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &q,
                                &scheme, &sel, &attest, &sig)),
             out);
    LUNA_TRY_ENSURE(Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sig_buf, sizeof(sig_buf), &sig_len) ==
                        TSS2_RC_SUCCESS,
                    LUNA_ERR_INTERNAL, out);
    /* The value now is the value quoted: nothing else extends PCR 23 in
       between (this object is single-threaded).  The verifier recomputes
       pcrDigest from it anyway. */
    LUNA_TRY(tss_err(Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel,
                                   &counter, &sel_out, &values)),
             out);
    LUNA_TRY_ENSURE(values->count == 1 && values->digests[0].size == 32, LUNA_ERR_IO, out);
    luna_tpm_pcr pcr = {LUNA_TPM_ALG_SHA256, (uint8_t)HOST_TPM_PCR, values->digests[0].buffer, 32};
    LUNA_TRY(luna_tpm_evidence_build(w, attest->attestationData, attest->size, sig_buf, sig_len,
                                     &pcr, 1),
             out);
out:
    Esys_Free(attest);
    Esys_Free(sig);
    Esys_Free(sel_out);
    Esys_Free(values);
    return err;
}

luna_err host_tpm_evidence(host_tpm *t, const uint8_t measurement[32], const uint8_t nonce[32],
                           const uint8_t x25519[32], const uint8_t *ed25519, luna_wbuf *w)
{
    uint8_t rd[LUNA_CLAIM_REPORT_DATA_LEN];
    if (t == NULL || measurement == NULL || nonce == NULL || x25519 == NULL || w == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_verifier_binding(nonce, x25519, ed25519, rd));
    LUNA_GUARD(host_tpm_measure(t, measurement));
    /* report_data[32..64) is zero by definition: only the hash is quoted. */
    LUNA_GUARD(host_tpm_quote(t, rd, 32, w));
    /* The keys ride beside the quote, proven by extraData alone. */
    return luna_tpm_evidence_add_keys(w, x25519, ed25519);
}
