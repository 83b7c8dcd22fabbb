/*
 * fuzz_gateway_headers.c - the gateway's parsers of untrusted header text
 * (gateway/src/gw_parse.c): Authorization, Idempotency-Key and ids.  The
 * fuzz build links only luna-core, so the parser source is compiled in.
 * Checks: no crash or over-read, and a credential accepted is a NUL-free
 * view inside the input of the length reported.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../gateway/src/gw_parse.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    gw_auth_kind k;
    const char *c;
    size_t n;
    if (gw_parse_authorization(s, &k, &c, &n) == LUNA_OK && k != GW_AUTH_NONE) {
        if (c < s || c + n > s + size || n == 0 || memchr(c, '\0', n) != NULL)
            abort();
    }
    char key[GW_IDEM_KEY_MAX + 1];
    if (gw_parse_idempotency_key(s, key) == LUNA_OK && strcmp(key, s) != 0)
        abort();
    (void)gw_ident_ok(s, GW_ID_MAX);
    free(s);
    return 0;
}
