/*
 * fuzz_att_manifest_kid.c - the attestation service's manifest-header kid
 * finder (attestation/src/att_deployments.c, att_deps_manifest_kid): any
 * bytes, never a crash or an over-read, and an accepted kid is exactly 47
 * characters of lowercase hex and ':'.  Also feeds the version order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "att.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char kid[48];
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (att_deps_manifest_kid(s, kid) == LUNA_OK) {
        if (strlen(kid) != 47 || strspn(kid, "0123456789abcdef:") != 47)
            abort();
    }
    /* The version order is antisymmetric on any two NUL-split halves. */
    const char *b = s + strlen(s) + (strlen(s) < size ? 1 : 0);
    int ab = att_deps_version_cmp(s, b), ba = att_deps_version_cmp(b, s);
    if ((ab > 0) != (ba < 0) || (ab == 0) != (ba == 0))
        abort();
    free(s);
    return 0;
}
