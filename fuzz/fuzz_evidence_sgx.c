/*
 * Fuzz target: the SGX DCAP v3 quote parser (header, enclave REPORT,
 * signature data, PEM PCK chain) and its verify step with no trust
 * anchors and no collateral; odd first byte: the SGX collateral loader.
 * Invariants: nothing reads outside the input; a refusal always carries
 * a reason; nothing fuzzed verifies.
 */
#include <stdint.h>
#include <stdlib.h>

#include "verifier_dcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const luna_verifier_backend *b = &luna_verifier_backend_sgx;
    const char *why = NULL;
    void *state = NULL;
    luna_backend_ctx ctx = {.now = 1700000000, .revocation_optional = true};

    if (size < 1)
        return 0;
    if ((data[0] & 1) != 0) {
        void *col = NULL;
        if (b->collateral_load(data + 1, size - 1, NULL, 0, 1700000000, &col) == LUNA_OK) {
            const dcap_collateral *c = luna_dcap_collateral_of(col);
            if (c == NULL || c->has_tcbinfo || c->has_qeid)
                abort();
            b->collateral_free(col);
        }
        return 0;
    }
    luna_verify_reason r = b->parse(data + 1, size - 1, &state, &why);
    if (r != LUNA_VERIFY_OK) {
        if (state != NULL || why == NULL)
            abort();
        return 0;
    }
    if (b->verify(state, &ctx, &why) == LUNA_VERIFY_OK || why == NULL)
        abort();
    b->free_state(state);
    return 0;
}
