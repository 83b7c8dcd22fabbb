/*
 * att_query.c - the one parser of untrusted query strings in the
 * attestation service (the history endpoint), and the identifier rules.
 *
 * Must never: read past the string, accept a key twice, accept an unknown
 * key, or decode percent-escapes (no identifier needs one, so none is
 * accepted and nothing can hide in one).  Fuzzed by fuzz/fuzz_attestation_query.c.
 */
#include <string.h>

#include "att.h"

#define ATT_QUERY_MAX 512

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

bool att_tee_id_ok(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= ATT_TEE_ID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

bool att_deployment_id_ok(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (n >= ATT_DEPLOYMENT_MAX || !ident_char(s[n]))
            return false;
    return n > 0;
}

bool att_tenant_id_ok(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (n >= ATT_TENANT_MAX || !ident_char(s[n]))
            return false;
    return n > 0;
}

/* Strict decimal 1..max without sign or leading zero. */
static bool parse_uint(const char *s, size_t len, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (len == 0 || len > 19 || (s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool copy_ident(char *dst, size_t cap, const char *v, size_t len)
{
    if (len == 0 || len >= cap)
        return false;
    memcpy(dst, v, len);
    dst[len] = '\0';
    return true;
}

luna_err att_query_parse(const char *q, att_history_query *out)
{
    bool seen_dep = false, seen_tee = false, seen_after = false, seen_limit = false;
    size_t len, i = 0;

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    out->limit = ATT_HISTORY_PAGE_DEFAULT;
    if (q == NULL)
        return LUNA_ERR_FORMAT;
    len = strnlen(q, ATT_QUERY_MAX + 1);
    if (len == 0 || len > ATT_QUERY_MAX)
        return LUNA_ERR_FORMAT;
    while (i < len) {
        size_t start = i, eq = 0, end;
        bool has_eq = false;
        while (i < len && q[i] != '&') {
            if (q[i] == '=' && !has_eq) {
                has_eq = true;
                eq = i;
            }
            i++;
        }
        end = i;
        if (i < len)
            i++; /* skip '&'; a trailing '&' leaves an empty pair below */
        if (!has_eq || eq == start)
            return LUNA_ERR_FORMAT;
        const char *key = q + start;
        size_t key_len = eq - start;
        const char *val = q + eq + 1;
        size_t val_len = end - eq - 1;
        char tmp[ATT_DEPLOYMENT_MAX + 1];
        if (key_len == 13 && memcmp(key, "deployment_id", 13) == 0) {
            if (seen_dep || !copy_ident(tmp, sizeof tmp, val, val_len) ||
                !att_deployment_id_ok(tmp))
                return LUNA_ERR_FORMAT;
            memcpy(out->deployment_id, tmp, sizeof tmp);
            seen_dep = true;
        } else if (key_len == 6 && memcmp(key, "tee_id", 6) == 0) {
            if (seen_tee || !copy_ident(tmp, sizeof tmp, val, val_len) || !att_tee_id_ok(tmp))
                return LUNA_ERR_FORMAT;
            memcpy(out->tee_id, tmp, sizeof out->tee_id);
            seen_tee = true;
        } else if (key_len == 5 && memcmp(key, "after", 5) == 0) {
            if (seen_after || !parse_uint(val, val_len, INT64_MAX, &out->after))
                return LUNA_ERR_FORMAT;
            seen_after = true;
        } else if (key_len == 5 && memcmp(key, "limit", 5) == 0) {
            int64_t v;
            if (seen_limit || !parse_uint(val, val_len, ATT_HISTORY_PAGE_MAX, &v))
                return LUNA_ERR_FORMAT;
            out->limit = (size_t)v;
            seen_limit = true;
        } else {
            return LUNA_ERR_FORMAT;
        }
    }
    if (q[len - 1] == '&' || seen_dep == seen_tee)
        return LUNA_ERR_FORMAT;
    return LUNA_OK;
}
