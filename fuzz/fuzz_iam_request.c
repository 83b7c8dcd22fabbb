/*
 * Fuzz target: the IAM parsers that read untrusted text outside luna_json:
 * the admin path below /v1/iam/tenants/ (iam_path_parse), the presented
 * API key (iam_apikey_parse) and the identifier grammars.  The IAM
 * sources are compiled in directly (fuzz targets link luna-core only).
 * Invariants: every accepted path segment and key id obeys its grammar.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../iam/src/iam_apikey.c"
#include "../iam/src/iam_ids.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    iam_path p;
    if (iam_path_parse(s, &p) == LUNA_OK) {
        if (p.n < 1 || p.n > IAM_PATH_MAX_SEGS)
            abort();
        for (size_t i = 0; i < p.n; i++) {
            if (!iam_id_valid(p.seg[i]))
                abort();
        }
    } else if (p.n != 0) {
        abort();
    }

    char id[IAM_APIKEY_ID_BUF];
    const char *secret = NULL;
    if (iam_apikey_parse(s, size, id, &secret) == LUNA_OK) {
        if (size != IAM_APIKEY_LEN || strlen(id) != IAM_APIKEY_ID_HEX || secret != s + 21)
            abort();
        uint8_t pepper[IAM_PEPPER_LEN] = {0}, salt[IAM_APIKEY_SALT_LEN] = {0};
        uint8_t h[IAM_APIKEY_HASH_LEN];
        if (iam_apikey_hash(pepper, salt, id, secret, h) != LUNA_OK ||
            iam_apikey_check(pepper, salt, id, secret, h) != LUNA_OK)
            abort();
    } else if (secret != NULL) {
        abort();
    }

    /* iam_id_valid reads a C string: the input up to its first NUL. */
    bool id_ok = iam_id_valid(s);
    size_t slen = strlen(s);
    if (id_ok && (slen == 0 || slen > IAM_ID_MAX))
        abort();
    (void)iam_job_valid(s);
    free(s);
    return 0;
}
