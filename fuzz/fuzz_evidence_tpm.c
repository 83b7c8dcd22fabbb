/*
 * Fuzz target: the TPM backend's LTQ1 container, TPMS_ATTEST,
 * TPMT_SIGNATURE and PCR-list parser, then its verify step against a
 * fuzzed-free empty collateral (no certificate: refused), and the pinned
 * path with a fixed throwaway P-256 key.  Invariants: nothing reads
 * outside the input; a refusal always carries a reason; nothing fuzzed
 * verifies.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "verifier_internal.h"
#include "verifier_tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const luna_verifier_backend *b = &luna_verifier_backend_tpm;
    const char *why = NULL;
    void *state = NULL;
    luna_backend_ctx ctx = {.now = 1700000000};

    if (key == NULL && (key = EVP_EC_gen("P-256")) == NULL)
        abort();
    luna_verify_reason r = b->parse(data, size, &state, &why);
    if (r != LUNA_VERIFY_OK) {
        if (state != NULL || why == NULL)
            abort();
        return 0;
    }
    if (b->verify(state, &ctx, &why) != LUNA_VERIFY_COLLATERAL_MISSING)
        abort();
    b->free_state(state);
    if (luna_tpm_verify_pinned(data, size, key, &why) == LUNA_VERIFY_OK)
        abort();
    return 0;
}
