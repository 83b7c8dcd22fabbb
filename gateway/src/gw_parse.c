/*
 * gw_parse.c - the gateway's parsers of untrusted header text:
 * Authorization (Bearer / ApiKey), identifiers and Idempotency-Key.
 *
 * Must never: read past the NUL of the given string or past its cap, accept
 * a control character, a space inside a credential or a second scheme, or
 * copy a credential anywhere (it only points into the header).  Fuzzed by
 * fuzz/fuzz_gateway_headers.c.
 */
#include <string.h>

#include "gw.h"
#include "luna/jws.h"

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

bool gw_ident_ok(const char *s, size_t max)
{
    if (s == NULL || max == 0)
        return false;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= max || !ident_char(s[n]))
            return false;
    }
    return n > 0;
}

/* Case-insensitive ASCII prefix match of scheme followed by one space. */
static bool scheme_is(const char *h, const char *scheme)
{
    size_t n = strlen(scheme);
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '\0')
            return false;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return false;
    }
    return h[n] == ' ';
}

luna_err gw_parse_authorization(const char *h, gw_auth_kind *kind, const char **cred,
                                size_t *cred_len)
{
    if (kind == NULL || cred == NULL || cred_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    *kind = GW_AUTH_NONE;
    *cred = NULL;
    *cred_len = 0;
    if (h == NULL)
        return LUNA_OK;
    gw_auth_kind k;
    const char *c;
    size_t max;
    if (scheme_is(h, "bearer")) {
        k = GW_AUTH_BEARER;
        c = h + 7;
        max = LUNA_JWS_MAX_TOKEN_LEN;
    } else if (scheme_is(h, "apikey")) {
        k = GW_AUTH_APIKEY;
        c = h + 7;
        max = GW_APIKEY_MAX;
    } else {
        return LUNA_ERR_FORMAT;
    }
    size_t n = 0;
    for (; c[n] != '\0'; n++) {
        if (n >= max)
            return LUNA_ERR_FORMAT;
        char ch = c[n];
        bool ok = k == GW_AUTH_BEARER ? ident_char(ch) : (ch > 0x20 && ch < 0x7f);
        if (!ok)
            return LUNA_ERR_FORMAT;
    }
    if (n == 0)
        return LUNA_ERR_FORMAT;
    *kind = k;
    *cred = c;
    *cred_len = n;
    return LUNA_OK;
}

luna_err gw_parse_idempotency_key(const char *h, char out[GW_IDEM_KEY_MAX + 1])
{
    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    out[0] = '\0';
    if (h == NULL)
        return LUNA_ERR_NOT_FOUND;
    size_t n = 0;
    for (; h[n] != '\0'; n++) {
        if (n >= GW_IDEM_KEY_MAX || !(ident_char(h[n]) || h[n] == ':'))
            return LUNA_ERR_FORMAT;
    }
    if (n == 0)
        return LUNA_ERR_FORMAT;
    memcpy(out, h, n + 1);
    return LUNA_OK;
}
