/*
 * fuzz_store_sql.c - the two text scanners of the store module: the ?N ->
 * $N placeholder translator and the URL password redactor.  Input: first
 * byte = parameter count, the rest = text (NUL-terminated copy).  Checks
 * that a translation keeps the length and changes only '?' into '$', and
 * that redaction either fits the buffer or leaves it empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/store.h"
#include "store_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    char *out = NULL;
    char red[512];
    size_t n_params;

    if (size < 1 || size > 64 * 1024)
        return 0;
    n_params = data[0] % 16;
    text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    if (luna_store_translate_placeholders(text, n_params, &out) == LUNA_OK) {
        size_t len = strlen(text);
        if (out == NULL || strlen(out) != len)
            abort();
        for (size_t i = 0; i < len; i++) {
            if (out[i] != text[i] && !(text[i] == '?' && out[i] == '$'))
                abort();
        }
        if (luna_store_translate_placeholders(text, n_params, NULL) != LUNA_OK)
            abort();
    } else if (out != NULL) {
        abort();
    }
    free(out);

    if (luna_store_redact_url(text, red, sizeof(red)) == LUNA_OK) {
        if (strlen(red) >= sizeof(red))
            abort();
    } else if (red[0] != '\0') {
        abort();
    }
    free(text);
    return 0;
}
