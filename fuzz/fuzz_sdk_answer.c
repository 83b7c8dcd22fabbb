/*
 * fuzz_sdk_answer.c - the SDK's reading of an attestation answer from the
 * platform (sdk_json_load + sdk_attestation_evaluate): arbitrary bytes
 * must give a clean error or a report, never a crash, overread or leak,
 * and never a "verified" report (no seed can carry evidence signed by
 * a root this client trusts).
 */
#include <stdint.h>
#include <stdlib.h>

#include "sdk_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static luna_client *c;
    json_t *ans = NULL;
    luna_attestation_report r;

    if (c == NULL) {
        luna_pinned_developer pin = {
            "demo", "dev_demo", "0101010101010101010101010101010101010101010101010101010101010101"};
        luna_client_opts o = {.tenant_id = "acme", .gateway_url = "https://127.0.0.1:1",
                              .developers = &pin, .n_developers = 1, .development = true};
        if (luna_client_create(&o, &c, NULL) != LUNA_OK)
            abort();
    }
    if (sdk_json_load(data, size, &ans, NULL) != LUNA_OK)
        return 0;
    if (sdk_attestation_evaluate(c, "demo", ans, 0, &r) == LUNA_OK && r.verified)
        abort();
    json_decref(ans);
    return 0;
}
