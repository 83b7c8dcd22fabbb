/*
 * fuzz_gateway_relay.c - the gateway relay's parsers of untrusted request
 * text (gateway/src/gw_relay_parse.c): path cleaning and matching, query
 * allow-listing and re-encoding.  The fuzz build links only luna-core, so
 * the parser sources are compiled in.  Input: a path, a NUL, a query.
 * Checks: no crash or over-read; a clean path has only identifier
 * segments; every matched id and query value is an identifier (or digits)
 * of at most GW_ID_MAX; the re-encoded query parses back to the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../gateway/src/gw_parse.c"
#include "../gateway/src/gw_relay_parse.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const gw_qspec spec[] = {{"tee_id", GW_Q_IDENT},  {"limit", GW_Q_UINT},
                                {"principal", GW_Q_IDENT}, {"from", GW_Q_UINT}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 2);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    s[size + 1] = '\0';
    const char *path = s;
    const char *query = s + strlen(s) + 1; /* "" when there is no NUL in the input */
    if (gw_relay_path_clean(path) == LUNA_OK) {
        if (strstr(path, "/../") != NULL || strstr(path, "//") != NULL || strchr(path, '%') != NULL)
            abort();
        static const char *const patterns[] = {"/v1/tees/{}/quarantine", "/v1/keys/{}/rotate",
                                               "/v1/a/{}/b/{}", "/v1/tees"};
        for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
            char ids[GW_RELAY_IDS_MAX][GW_ID_MAX + 1];
            size_t n = 0;
            if (gw_relay_path_match(patterns[i], path, ids, &n) == LUNA_OK) {
                for (size_t k = 0; k < n; k++)
                    if (!gw_ident_ok(ids[k], GW_ID_MAX) || strcmp(ids[k], "..") == 0)
                        abort();
            }
        }
    }
    gw_query q, q2;
    if (gw_query_parse(query, spec, sizeof(spec) / sizeof(spec[0]), &q) == LUNA_OK) {
        char out[GW_QUERY_MAX + 1];
        for (size_t k = 0; k < q.n; k++)
            if (!gw_ident_ok(q.value[k], GW_ID_MAX))
                abort();
        if (gw_query_format(&q, out, sizeof(out)) != LUNA_OK ||
            gw_query_parse(out, spec, sizeof(spec) / sizeof(spec[0]), &q2) != LUNA_OK ||
            q2.n != q.n)
            abort();
        for (size_t k = 0; k < q.n; k++)
            if (strcmp(q.value[k], q2.value[k]) != 0 || q.spec[k] != q2.spec[k])
                abort();
    }
    free(s);
    return 0;
}
