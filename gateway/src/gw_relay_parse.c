/*
 * gw_relay_parse.c - the relay's parsers of untrusted request text: the
 * path (cleaned, then matched against the route table's patterns) and the
 * query string (allow-listed parameters only).  Pure functions, no
 * allocation, no libevent: the fuzz target compiles this file in.
 *
 * Must never: accept a path segment or a query value that a downstream
 * parser could read differently (percent-encoding, '.', '..', empty
 * segments, '+', ';'), read past the NUL, or write past a caller buffer.
 */
#include <string.h>

#include "gw_relay.h"

static bool relay_ident_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

/* One segment [s, s+n): an identifier, not "." nor "..". */
static luna_err segment_ok(const char *s, size_t n)
{
    if (n == 0)
        return LUNA_ERR_FORMAT;
    if (n > GW_ID_MAX)
        return LUNA_ERR_TOO_LARGE;
    for (size_t i = 0; i < n; i++)
        if (!relay_ident_char(s[i]))
            return LUNA_ERR_FORMAT;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return LUNA_ERR_FORMAT;
    return LUNA_OK;
}

luna_err gw_relay_path_clean(const char *path)
{
    static const char stem[] = "/v1/";
    if (path == NULL)
        return LUNA_ERR_FORMAT;
    size_t len = strnlen(path, GW_RELAY_PATH_MAX + 1);
    if (len > GW_RELAY_PATH_MAX)
        return LUNA_ERR_TOO_LARGE;
    if (len < sizeof(stem) || memcmp(path, stem, sizeof(stem) - 1) != 0)
        return LUNA_ERR_FORMAT;
    size_t segs = 1; /* "v1" */
    size_t i = sizeof(stem) - 1;
    for (;;) {
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        LUNA_GUARD(segment_ok(path + start, i - start));
        if (++segs > GW_RELAY_SEGS_MAX)
            return LUNA_ERR_TOO_LARGE;
        if (i == len)
            return LUNA_OK;
        i++; /* the '/'; a trailing one leaves an empty segment: refused above */
    }
}

luna_err gw_relay_path_match(const char *pattern, const char *path,
                             char ids[GW_RELAY_IDS_MAX][GW_ID_MAX + 1], size_t *n_ids)
{
    if (pattern == NULL || path == NULL || ids == NULL || n_ids == NULL)
        return LUNA_ERR_INVALID_ARG;
    *n_ids = 0;
    const char *p = pattern, *s = path;
    for (;;) {
        if (*p != '/' || *s != '/')
            return LUNA_ERR_NOT_FOUND;
        p++;
        s++;
        size_t pn = strcspn(p, "/"), sn = strcspn(s, "/");
        if (pn == 2 && p[0] == '{' && p[1] == '}') {
            /* Lengths and characters were checked by gw_relay_path_clean;
               checked again so the matcher is safe on its own. */
            if (*n_ids >= GW_RELAY_IDS_MAX || segment_ok(s, sn) != LUNA_OK)
                return LUNA_ERR_NOT_FOUND;
            memcpy(ids[*n_ids], s, sn);
            ids[*n_ids][sn] = '\0';
            (*n_ids)++;
        } else if (pn != sn || memcmp(p, s, pn) != 0) {
            return LUNA_ERR_NOT_FOUND;
        }
        p += pn;
        s += sn;
        if (*p == '\0' && *s == '\0')
            return LUNA_OK;
        if (*p == '\0' || *s == '\0')
            return LUNA_ERR_NOT_FOUND;
    }
}

static bool value_ok(gw_qkind kind, const char *v, size_t n)
{
    if (kind == GW_Q_UINT) {
        if (n == 0 || n > GW_QUERY_UINT_DIGITS)
            return false;
        for (size_t i = 0; i < n; i++)
            if (v[i] < '0' || v[i] > '9')
                return false;
        return true;
    }
    if (kind == GW_Q_IDENT)
        return segment_ok(v, n) == LUNA_OK;
    return false;
}

luna_err gw_query_parse(const char *raw, const gw_qspec *spec, size_t n_spec, gw_query *out)
{
    if (out == NULL || (spec == NULL && n_spec != 0))
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (raw == NULL || raw[0] == '\0')
        return LUNA_OK;
    size_t len = strnlen(raw, GW_QUERY_MAX + 1);
    if (len > GW_QUERY_MAX)
        return LUNA_ERR_TOO_LARGE;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < len && raw[i] != '&')
            i++;
        const char *kv = raw + start;
        size_t kvn = i - start;
        const char *eq = memchr(kv, '=', kvn);
        if (eq == NULL)
            return LUNA_ERR_FORMAT;
        size_t kn = (size_t)(eq - kv), vn = kvn - kn - 1;
        const gw_qspec *hit = NULL;
        for (size_t k = 0; k < n_spec; k++)
            if (strlen(spec[k].name) == kn && memcmp(spec[k].name, kv, kn) == 0)
                hit = &spec[k];
        if (hit == NULL)
            return (kn == 0) ? LUNA_ERR_FORMAT : LUNA_ERR_NOT_FOUND;
        for (size_t k = 0; k < out->n; k++)
            if (out->spec[k] == hit)
                return LUNA_ERR_FORMAT; /* repeated: which one wins is ambiguous */
        if (out->n >= GW_QUERY_PARAMS_MAX)
            return LUNA_ERR_TOO_LARGE;
        if (vn > GW_ID_MAX || !value_ok(hit->kind, eq + 1, vn))
            return LUNA_ERR_FORMAT;
        out->spec[out->n] = hit;
        memcpy(out->value[out->n], eq + 1, vn);
        out->value[out->n][vn] = '\0';
        out->n++;
        if (i == len)
            return LUNA_OK;
        i++; /* '&'; a trailing one leaves an empty pair: refused above */
    }
}

const char *gw_query_get(const gw_query *q, const char *name)
{
    if (q == NULL || name == NULL)
        return NULL;
    for (size_t k = 0; k < q->n; k++)
        if (strcmp(q->spec[k]->name, name) == 0)
            return q->value[k];
    return NULL;
}

luna_err gw_query_format(const gw_query *q, char *out, size_t cap)
{
    if (q == NULL || out == NULL || cap == 0)
        return LUNA_ERR_INVALID_ARG;
    size_t off = 0;
    out[0] = '\0';
    for (size_t k = 0; k < q->n; k++) {
        size_t kn = strlen(q->spec[k]->name), vn = strlen(q->value[k]);
        size_t need = (k > 0 ? 1u : 0u) + kn + 1 + vn;
        if (need >= cap - off)
            return LUNA_ERR_TOO_LARGE;
        if (k > 0)
            out[off++] = '&';
        memcpy(out + off, q->spec[k]->name, kn);
        off += kn;
        out[off++] = '=';
        memcpy(out + off, q->value[k], vn);
        off += vn;
        out[off] = '\0';
    }
    return LUNA_OK;
}
