/*
 * Fuzz target: the Nitro backend's COSE_Sign1 and attestation-document
 * parser (over the bounded CBOR reader), then its verify step with no
 * trust anchors, and a plain luna_cbor_skip walk of the input.
 * Invariants: nothing reads outside the input; a refusal always carries a
 * reason; nothing fuzzed verifies (there is no anchor to chain to).
 */
#include <stdint.h>
#include <stdlib.h>

#include "luna/cbor.h"
#include "verifier_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const luna_verifier_backend *b = &luna_verifier_backend_nitro;
    const char *why = NULL;
    void *state = NULL;
    luna_backend_ctx ctx = {.now = 1700000000};
    luna_reader r;

    luna_reader_init(&r, data, size);
    while (luna_reader_left(&r) > 0 && luna_cbor_skip(&r) == LUNA_OK)
        ;
    luna_verify_reason res = b->parse(data, size, &state, &why);
    if (res != LUNA_VERIFY_OK) {
        if (state != NULL || why == NULL)
            abort();
        return 0;
    }
    if (b->verify(state, &ctx, &why) == LUNA_VERIFY_OK || why == NULL)
        abort();
    b->free_state(state);
    return 0;
}
