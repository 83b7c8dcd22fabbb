/*
 * Fuzz target: the hex and base64url decoders.  Whatever decodes must
 * re-encode to the same text (canonical forms only), and nothing may read
 * outside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = malloc(size + 1);
    char *again = malloc(2 * size + 8);
    size_t n = 0;
    if (out == NULL || again == NULL)
        abort();
    if (luna_b64url_decode((const char *)data, size, out, size + 1, &n) == LUNA_OK) {
        if (luna_b64url_encode(out, n, again, 2 * size + 8) != LUNA_OK ||
            strlen(again) != size || memcmp(again, data, size) != 0)
            abort();
    }
    if (luna_hex_decode((const char *)data, size, out, size + 1, &n) == LUNA_OK) {
        if (luna_hex_encode(out, n, again, 2 * size + 8) != LUNA_OK || strlen(again) != size)
            abort();
    }
    free(out);
    free(again);
    return 0;
}
