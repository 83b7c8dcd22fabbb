/*
 * fuzz_sdk_token.c - the SDK's reading of the gateway's token answer
 * (sdk_json_load + sdk_token_answer_apply): arbitrary bytes must give a
 * clean error or a cache of header-safe tokens, never a crash, overread
 * or leak; a token the SDK accepts never holds a byte that could end or
 * add a header line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *t, size_t n)
{
    if (t == NULL)
        return;
    if (n == 0 || n > SDK_MAX_TOKEN || strlen(t) != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static luna_client *c;
    json_t *ans = NULL;

    if (c == NULL) {
        luna_client_opts o = {.tenant_id = "acme", .gateway_url = "https://127.0.0.1:1"};
        if (luna_client_create(&o, &c, NULL) != LUNA_OK)
            abort();
    }
    if (sdk_json_load(data, size, &ans, NULL) != LUNA_OK)
        return 0;
    if (sdk_token_answer_apply(c, ans, 1700000000, NULL) == LUNA_OK) {
        if (c->token == NULL || c->token_exp <= 1700000000)
            abort();
        check_text(c->token, c->token_len);
        for (size_t i = 0; i < SDK_SVC__COUNT; i++)
            check_text(c->down_token[i], c->down_len[i]);
    }
    json_decref(ans);
    return 0;
}
