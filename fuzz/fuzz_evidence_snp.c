/*
 * Fuzz target: the SEV-SNP backend's report parser and the hardware
 * collateral bundle parser, and the SNP verify step over a fuzzed bundle.
 * The first byte selects: even - the rest is a report (parse, then verify
 * against no collateral); odd - the rest is a bundle (parse, then verify a
 * fixed well-formed report with it and no trust anchors).  Invariants:
 * nothing reads outside the input; a refusal always carries a reason;
 * nothing fuzzed verifies (no anchors, no valid signature).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verifier_hw.h"
#include "verifier_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fixed_report(uint8_t rep[0x4A0])
{
    memset(rep, 0, 0x4A0);
    rep[0] = 2;           /* version */
    rep[0x0A] = 0x02;     /* policy bit 17 (must be one) */
    rep[0x34] = 1;        /* ECDSA P-384 / SHA-384 */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const luna_verifier_backend *b = &luna_verifier_backend_snp;
    const char *why = NULL;
    void *state = NULL;
    luna_backend_ctx ctx = {.now = 1700000000};

    if (size < 1)
        return 0;
    if ((data[0] & 1) == 0) {
        luna_verify_reason r = b->parse(data + 1, size - 1, &state, &why);
        if (r != LUNA_VERIFY_OK) {
            if (state != NULL || why == NULL)
                abort();
            return 0;
        }
        if (b->verify(state, &ctx, &why) != LUNA_VERIFY_COLLATERAL_MISSING)
            abort();
        b->free_state(state);
        return 0;
    }
    luna_hw_bundle *bundle = NULL;
    if (luna_hw_bundle_parse(data + 1, size - 1, &bundle) != LUNA_OK)
        return 0;
    uint8_t rep[0x4A0];
    fixed_report(rep);
    if (b->parse(rep, sizeof(rep), &state, &why) != LUNA_VERIFY_OK)
        abort();
    ctx.collateral = bundle;
    luna_verify_reason r = b->verify(state, &ctx, &why);
    if (r == LUNA_VERIFY_OK || why == NULL)
        abort();
    b->free_state(state);
    luna_hw_bundle_free(bundle);
    return 0;
}
