/*
 * Fuzz target: the TDX quote parser (header, v4/v5 body, signature data,
 * QE certification data, PEM PCK chain), its verify step with no trust
 * anchors and no collateral, the DCAP collateral loader and the TCB Info /
 * QE Identity JSON parsers.  The first byte selects which.  Invariants:
 * nothing reads outside the input; a refusal always carries a reason;
 * nothing fuzzed verifies.
 */
#include <stdint.h>
#include <stdlib.h>

#include "verifier_dcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const luna_verifier_backend *b = &luna_verifier_backend_tdx;
    const char *why = NULL;
    void *state = NULL;
    luna_backend_ctx ctx = {.now = 1700000000, .revocation_optional = true};
    static dcap_tcbinfo ti;
    static dcap_qeid qi;

    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    const size_t n = size - 1;
    switch (data[0] & 3) {
    case 0: {
        luna_verify_reason r = b->parse(p, n, &state, &why);
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
    case 1: {
        void *col = NULL;
        if (b->collateral_load(p, n, NULL, 0, 1700000000, &col) == LUNA_OK) {
            /* Without an anchor no signed document can have loaded. */
            const dcap_collateral *c = luna_dcap_collateral_of(col);
            if (c == NULL || c->has_tcbinfo || c->has_qeid)
                abort();
            b->collateral_free(col);
        }
        return 0;
    }
    case 2:
        if (luna_dcap_parse_tcbinfo(p, n, (data[0] & 4) != 0, &ti) == LUNA_OK &&
            (ti.n_levels == 0 || ti.n_levels > DCAP_MAX_LEVELS))
            abort();
        return 0;
    default:
        if (luna_dcap_parse_qeid(p, n, (data[0] & 4) != 0, &qi) == LUNA_OK &&
            (qi.n_levels == 0 || qi.n_levels > DCAP_MAX_LEVELS))
            abort();
        return 0;
    }
}
