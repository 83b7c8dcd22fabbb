/*
 * fuzz_kms_path.c - the KMS's request path splitter (kms_http.c): any
 * input either is refused or yields an id and an operation that are
 * identifiers within their caps and that rebuild the input exactly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const prefixes[] = {"/v1/kms/tees/", "/v1/kms/keys/"};
    if (size > 1024)
        return 0;
    char *path = malloc(size + 1);
    if (path == NULL)
        return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    for (size_t p = 0; p < 2; p++) {
        char id[KMS_ID_MAX + 1], op[32], again[1200];
        if (!kms_http_split_path(path, prefixes[p], id, sizeof(id), op, sizeof(op)))
            continue;
        if (!kms_id_ok(id, KMS_ID_MAX) || (op[0] != '\0' && !kms_id_ok(op, sizeof(op) - 1)))
            abort();
        snprintf(again, sizeof(again), "%s%s%s%s", prefixes[p], id, op[0] ? "/" : "", op);
        if (strcmp(again, path) != 0)
            abort();
    }
    free(path);
    return 0;
}
