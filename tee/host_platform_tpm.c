/*
 * host_platform_tpm.c - the TPM platform of luna-tee-host (platform "tpm",
 * docs/tpm-live.md): turns one evidence request for a runtime the host
 * measured into a TPM 2.0 quote (tee/host_tpm.h) with the TEE keys beside
 * it.  The quote's PCR 23 holds the host's own outside measurement of the
 * runtime, so this evidence proves "an enrolled TPM's host measured this",
 * never memory encryption.  Must never quote a measurement it was not
 * handed by the measuring code, nor put anything but the (nonce, keys)
 * binding into extraData.
 */
#include <string.h>

#include "host.h"
#include "host_tpm.h"
#include "luna/bytes.h"

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
