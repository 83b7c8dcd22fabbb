/*
 * fuzz_kms_deploy.c - what kms_deployments.c reads before any signature
 * is checked: the manifest header's key id (any input is refused or
 * yields a well-formed key id that re-encodes to the same header part),
 * and the manifest version order (antisymmetric, reflexive).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms_http.h"
#include "luna/bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_kid(const char *in)
{
    char kid[LUNA_MANIFEST_KEY_ID_LEN + 1];
    if (!kms_deploy_peek_kid(in, kid))
        return;
    if (strlen(kid) != LUNA_MANIFEST_KEY_ID_LEN)
        abort();
    for (size_t i = 0; i < LUNA_MANIFEST_KEY_ID_LEN; i++) {
        char c = kid[i];
        bool ok = i % 3 == 2 ? c == ':' : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
        if (!ok)
            abort();
    }
    /* The header part must be exactly the canonical header around kid. */
    char hdr[160], enc[LUNA_B64URL_ENC_LEN(160)];
    size_t n = (size_t)snprintf(hdr, sizeof(hdr),
                                "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"lunal-manifest+v1\"}",
                                kid);
    if (luna_b64url_encode((const uint8_t *)hdr, n, enc, sizeof(enc)) != LUNA_OK)
        abort();
    const char *dot = strchr(in, '.');
    if (dot == NULL || (size_t)(dot - in) != strlen(enc) || memcmp(in, enc, strlen(enc)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *in = malloc(size + 1);
    if (in == NULL)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    check_kid(in);
    /* Versions: the input split at its first NUL-free '|'. */
    char *bar = strchr(in, '|');
    if (bar != NULL) {
        *bar = '\0';
        const char *a = in, *b = bar + 1;
        if (kms_deploy_version_cmp(a, b) != -kms_deploy_version_cmp(b, a) ||
            kms_deploy_version_cmp(a, a) != 0 || kms_deploy_version_cmp(b, b) != 0)
            abort();
    }
    free(in);
    return 0;
}
