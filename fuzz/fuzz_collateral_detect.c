/*
 * Fuzz target: the collateral content recognizer of `lunal attestation
 * verify --evidence` (luna_colfile_detect: PEM blocks, base64, DER
 * certificate / CRL / public key, Intel PCS JSON) and the TPM quote file
 * assembler (luna_tpm_evidence_from_files).  The first byte picks the
 * parser; for the assembler the next four bytes split the rest into
 * TPMS_ATTEST, TPMT_SIGNATURE and the PCR JSON.  Invariants: nothing
 * reads outside the input, every item handed to the sink is non-empty and
 * within the caps, every refusal carries a reason, and an assembled LTQ1
 * starts with its magic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/evidence_hw.h"
#include "luna/verifier_offline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static luna_err sink(void *arg, luna_colfile_kind kind, const uint8_t *der, size_t len)
{
    size_t *n = arg;
    if (der == NULL || len == 0 || len > LUNA_HWCOL_ITEM_MAX || kind < LUNA_COLFILE_CERT ||
        kind > LUNA_COLFILE_PUBKEY)
        abort();
    /* Touch every byte so ASan sees an out-of-bounds item. */
    volatile uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= der[i];
    (void)x;
    if (++*n > LUNA_COLFILE_MAX_ITEMS)
        abort();
    return LUNA_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;

    if (size < 1)
        return 0;
    if ((data[0] & 1) == 0) {
        size_t n = 0;
        luna_err e = luna_colfile_detect(data + 1, size - 1, sink, &n, &why);
        if (e != LUNA_OK && why == NULL)
            abort();
        if (e == LUNA_OK && n == 0)
            abort();
        return 0;
    }
    if (size < 5)
        return 0;
    size_t a = (size_t)data[1] << 8 | data[2], s = (size_t)data[3] << 8 | data[4];
    const uint8_t *p = data + 5;
    size_t left = size - 5;
    if (a > left)
        a = left;
    if (s > left - a)
        s = left - a;
    luna_wbuf w;
    if (luna_wbuf_init_alloc(&w, LUNA_VERIFY_EVIDENCE_MAX) != LUNA_OK)
        abort();
    luna_err e = luna_tpm_evidence_from_files(&w, p, a, p + a, s, p + a + s, left - a - s, &why);
    if (e != LUNA_OK && why == NULL)
        abort();
    if (e == LUNA_OK && (w.len < 4 || memcmp(w.data, LUNA_TPM_EVIDENCE_MAGIC, 4) != 0))
        abort();
    luna_wbuf_free(&w);
    return 0;
}
