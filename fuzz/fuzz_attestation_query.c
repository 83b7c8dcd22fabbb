/*
 * fuzz_attestation_query.c - the attestation service's history query
 * parser (attestation/src/att_query.c): any bytes, never a crash, and an
 * accepted query always names exactly one selector with a bounded limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "att.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    att_history_query q;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (att_query_parse(s, &q) == LUNA_OK) {
        if ((q.tee_id[0] != '\0') == (q.deployment_id[0] != '\0'))
            abort();
        if (q.limit == 0 || q.limit > ATT_HISTORY_PAGE_MAX || q.after < 0)
            abort();
        if (q.tee_id[0] != '\0' && !att_tee_id_ok(q.tee_id))
            abort();
    }
    free(s);
    return 0;
}
