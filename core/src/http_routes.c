/*
 * http_routes.c - the route table and the small pure checks the server
 * applies to every request: identity allow-lists, methods, request ids,
 * Content-Type, and the JSON error body.
 *
 * Owns no I/O and no global state.  Must never decide access on anything
 * but the verified identity string the TLS layer extracted, and must fail
 * closed: a malformed pattern is refused at registration, an empty or odd
 * identity matches nothing.
 */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/pki.h"

#define LUNA_HTTP_SCHEME "lunal://"

bool luna_http_pattern_valid(const char *pattern)
{
    if (pattern == NULL)
        return false;
    size_t n = strnlen(pattern, LUNA_PKI_IDENTITY_MAX);
    size_t sl = sizeof(LUNA_HTTP_SCHEME) - 1;
    if (n >= LUNA_PKI_IDENTITY_MAX || n < sl || memcmp(pattern, LUNA_HTTP_SCHEME, sl) != 0)
        return false;
    for (size_t i = sl; i < n; i++) {
        unsigned char c = (unsigned char)pattern[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
        if (c == '*' && i != n - 1)
            return false;
    }
    /* Without a '*' the pattern is an exact identity and must be one. */
    if (pattern[n - 1] != '*')
        return luna_pki_identity_valid(pattern);
    return true;
}

static bool pattern_matches(const char *pattern, const char *identity)
{
    size_t pn = strlen(pattern);
    if (pn > 0 && pattern[pn - 1] == '*') {
        size_t stem = pn - 1;
        /* A prefix needs at least one more character: "lunal://tee/" is no TEE. */
        return strlen(identity) > stem && strncmp(pattern, identity, stem) == 0;
    }
    return strcmp(pattern, identity) == 0;
}

bool luna_http_identity_allowed(const char *const *patterns, size_t n, const char *identity)
{
    if (patterns == NULL || identity == NULL || !luna_pki_identity_valid(identity))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (patterns[i] != NULL && pattern_matches(patterns[i], identity))
            return true;
    }
    return false;
}

static const struct {
    const char *name;
    unsigned bit;
} luna_http_methods[] = {
    {"GET", LUNA_HTTP_GET},       {"POST", LUNA_HTTP_POST},   {"PUT", LUNA_HTTP_PUT},
    {"DELETE", LUNA_HTTP_DELETE}, {"PATCH", LUNA_HTTP_PATCH},
};
#define LUNA_HTTP_N_METHODS (sizeof(luna_http_methods) / sizeof(luna_http_methods[0]))

unsigned luna_http_method_bit(const char *method)
{
    if (method == NULL)
        return 0;
    for (size_t i = 0; i < LUNA_HTTP_N_METHODS; i++) {
        if (strcmp(method, luna_http_methods[i].name) == 0)
            return luna_http_methods[i].bit;
    }
    return 0;
}

void luna_http_methods_text(unsigned mask, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < LUNA_HTTP_N_METHODS; i++) {
        if ((mask & luna_http_methods[i].bit) == 0)
            continue;
        const char *sep = len > 0 ? ", " : "";
        size_t need = strlen(sep) + strlen(luna_http_methods[i].name);
        if (len + need >= cap)
            return;
        memcpy(out + len, sep, strlen(sep));
        len += strlen(sep);
        memcpy(out + len, luna_http_methods[i].name, strlen(luna_http_methods[i].name));
        len += strlen(luna_http_methods[i].name);
        out[len] = '\0';
    }
}

static bool path_valid(const char *path, size_t n)
{
    if (n == 0 || n >= LUNA_HTTP_PATH_MAX || path[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '%')
            return false;
        if (c == '*' && i != n - 1)
            return false;
    }
    return true;
}

static void route_entry_clear(luna_http_route_entry *e)
{
    free(e->path);
    free(e->label);
    free(e->content_type);
    if (e->allow != NULL) {
        for (size_t i = 0; i < e->n_allow; i++)
            free(e->allow[i]);
        free(e->allow);
    }
    memset(e, 0, sizeof(*e));
}

luna_err luna_http_routes_add(luna_http_route_table *t, const luna_http_route *r)
{
    if (t == NULL || r == NULL || r->path == NULL || r->handler == NULL || r->allow == NULL ||
        r->n_allow == 0 || r->n_allow > LUNA_HTTP_MAX_ALLOW || r->methods == 0 ||
        (r->methods & ~(unsigned)(LUNA_HTTP_GET | LUNA_HTTP_POST | LUNA_HTTP_PUT |
                                  LUNA_HTTP_DELETE | LUNA_HTTP_PATCH)) != 0)
        return LUNA_ERR_INVALID_ARG;
    size_t n = strnlen(r->path, LUNA_HTTP_PATH_MAX);
    if (!path_valid(r->path, n))
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < r->n_allow; i++) {
        if (!luna_http_pattern_valid(r->allow[i]))
            return LUNA_ERR_INVALID_ARG;
    }
    if (r->content_type != NULL &&
        (r->content_type[0] == '\0' || strpbrk(r->content_type, "\r\n;") != NULL))
        return LUNA_ERR_INVALID_ARG;
    bool prefix = r->path[n - 1] == '*';
    size_t plen = prefix ? n - 1 : n;
    for (size_t i = 0; i < t->n; i++) {
        const luna_http_route_entry *e = &t->entries[i];
        if (e->prefix == prefix && e->path_len == plen && memcmp(e->path, r->path, plen) == 0 &&
            (e->methods & r->methods) != 0)
            return LUNA_ERR_INVALID_ARG;
    }
    if (t->n >= LUNA_HTTP_MAX_ROUTES)
        return LUNA_ERR_TOO_LARGE;

    luna_http_route_entry *grown = realloc(t->entries, (t->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return LUNA_ERR_NOMEM;
    t->entries = grown;
    luna_http_route_entry *e = &t->entries[t->n];
    memset(e, 0, sizeof(*e));
    e->methods = r->methods;
    e->prefix = prefix;
    e->path_len = plen;
    e->handler = r->handler;
    e->arg = r->arg;
    e->path = strndup(r->path, plen);
    e->label = strndup(r->path, n);
    e->allow = calloc(r->n_allow, sizeof(char *));
    if (e->path == NULL || e->label == NULL || e->allow == NULL)
        goto nomem;
    e->n_allow = r->n_allow;
    for (size_t i = 0; i < r->n_allow; i++) {
        e->allow[i] = strdup(r->allow[i]);
        if (e->allow[i] == NULL)
            goto nomem;
    }
    if (r->content_type != NULL && (e->content_type = strdup(r->content_type)) == NULL)
        goto nomem;
    t->n++;
    return LUNA_OK;
nomem:
    route_entry_clear(e);
    return LUNA_ERR_NOMEM;
}

void luna_http_routes_free(luna_http_route_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        route_entry_clear(&t->entries[i]);
    free(t->entries);
    t->entries = NULL;
    t->n = 0;
}

luna_http_match luna_http_routes_find(const luna_http_route_table *t, unsigned method,
                                      const char *path, const luna_http_route_entry **out,
                                      unsigned *allow_methods)
{
    *out = NULL;
    *allow_methods = 0;
    if (t == NULL || path == NULL)
        return LUNA_HTTP_MATCH_NO_PATH;
    size_t n = strlen(path);
    /* Pass 1: exact paths.  Pass 2: the longest matching prefix. */
    const luna_http_route_entry *best = NULL, *any = NULL;
    unsigned mask = 0;
    for (size_t i = 0; i < t->n; i++) {
        const luna_http_route_entry *e = &t->entries[i];
        if (e->prefix || e->path_len != n || memcmp(e->path, path, n) != 0)
            continue;
        mask |= e->methods;
        any = e;
        if ((e->methods & method) != 0)
            best = e;
    }
    if (any == NULL) {
        size_t best_len = 0;
        for (size_t i = 0; i < t->n; i++) {
            const luna_http_route_entry *e = &t->entries[i];
            if (!e->prefix || e->path_len > n || memcmp(e->path, path, e->path_len) != 0)
                continue;
            if (any == NULL || e->path_len > best_len) {
                best_len = e->path_len;
                any = e;
                mask = 0;
                best = NULL;
            }
            if (e->path_len == best_len) {
                mask |= e->methods;
                if ((e->methods & method) != 0)
                    best = e;
            }
        }
    }
    if (any == NULL)
        return LUNA_HTTP_MATCH_NO_PATH;
    *allow_methods = mask;
    if (best == NULL) {
        *out = any;
        return LUNA_HTTP_MATCH_NO_METHOD;
    }
    *out = best;
    return LUNA_HTTP_MATCH_OK;
}

bool luna_http_request_id_valid(const char *id)
{
    if (id == NULL)
        return false;
    size_t n = strnlen(id, LUNA_HTTP_REQUEST_ID_MAX + 1);
    if (n == 0 || n > LUNA_HTTP_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

luna_err luna_http_request_id_generate(char *out, size_t out_cap)
{
    uint8_t raw[16];
    if (out == NULL || out_cap < 2 * sizeof(raw) + 1)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_random(raw, sizeof(raw)));
    return luna_hex_encode(raw, sizeof(raw), out, out_cap);
}

bool luna_http_media_type_is(const char *header, const char *want)
{
    if (header == NULL || want == NULL)
        return false;
    while (*header == ' ' || *header == '\t')
        header++;
    size_t n = strcspn(header, ";");
    while (n > 0 && (header[n - 1] == ' ' || header[n - 1] == '\t'))
        n--;
    return n == strlen(want) && strncasecmp(header, want, n) == 0;
}

const char *luna_http_status_code_name(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthenticated";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 413: return "too_large";
    case 415: return "unsupported_media_type";
    case 429: return "rate_limited";
    case 500: return "internal_error";
    case 503: return "unavailable";
    case 504: return "timeout";
    default: return status >= 500 ? "internal_error" : "error";
    }
}

char *luna_http_error_body(const char *code, const char *message)
{
    json_t *root = json_pack("{s:{s:s,s:s}}", "error", "code", code != NULL ? code : "error",
                             "message", message != NULL ? message : "");
    if (root == NULL)
        return NULL;
    char *s = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    return s;
}

int luna_http_status_for_err(luna_err err)
{
    switch (err) {
    case LUNA_ERR_INVALID_ARG:
    case LUNA_ERR_FORMAT: return 400;
    case LUNA_ERR_UNAUTHENTICATED:
    case LUNA_ERR_EXPIRED: return 401;
    case LUNA_ERR_PERMISSION:
    case LUNA_ERR_VERIFY: return 403;
    case LUNA_ERR_NOT_FOUND: return 404;
    case LUNA_ERR_CONFLICT: return 409;
    case LUNA_ERR_TOO_LARGE: return 413;
    case LUNA_ERR_UNSUPPORTED: return 415;
    case LUNA_ERR_UNAVAILABLE: return 503;
    case LUNA_ERR_TIMEOUT: return 504;
    default: return 500;
    }
}

bool luna_http_path_acceptable(const char *path)
{
    if (path == NULL || path[0] != '/')
        return false;
    size_t n = strnlen(path, LUNA_HTTP_REQUEST_PATH_MAX + 1);
    if (n > LUNA_HTTP_REQUEST_PATH_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
        /*
         * No empty or dot segments: a prefix route must never be reached
         * through a path that some other layer would normalize elsewhere.
         */
        if (c == '/' && (path[i + 1] == '/' ||
                         (path[i + 1] == '.' && (path[i + 2] == '/' || path[i + 2] == '\0' ||
                                                 (path[i + 2] == '.' &&
                                                  (path[i + 3] == '/' || path[i + 3] == '\0'))))))
            return false;
    }
    return true;
}
