/*
 * json.c - the strict JSON parser and schema validator (see luna/json.h).
 *
 * Owns: the size cap, the bounded pre-scan that keeps deep nesting away
 * from jansson's recursive parser, the mapping of jansson errors to our own
 * fixed messages, and the schema walk.  Must never: put a byte of the input
 * into an error (jansson's error text quotes the input, so it is never
 * used), recurse deeper than the depth limit, or hand a tree that failed
 * validation back to the caller.
 */
#include "luna/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "luna/bytes.h"
#include "json_internal.h"

#define UNKNOWN_KEY_ECHO_MAX 32u

typedef struct limits_r {
    size_t max_bytes;
    size_t max_depth;
    size_t max_string;
    size_t max_items;
} limits_r;

/* Validation state: the error sink and the path of the value being checked. */
typedef struct vctx {
    const limits_r *lim;
    luna_json_error *err;
    char path[LUNA_JSON_PATH_MAX];
    size_t path_len;
} vctx;

static void err_clear(luna_json_error *err)
{
    if (err == NULL)
        return;
    err->code = LUNA_OK;
    err->offset = 0;
    err->path[0] = '\0';
    err->message[0] = '\0';
}

__attribute__((format(printf, 5, 6))) static luna_err
err_set(luna_json_error *err, luna_err code, const char *path, size_t offset, const char *fmt,
        ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    err->offset = offset;
    (void)snprintf(err->path, sizeof(err->path), "%s", path != NULL ? path : "");
    va_start(ap, fmt);
    (void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code;
}

static luna_err resolve_limits(const luna_json_limits *in, limits_r *out)
{
    out->max_bytes = LUNA_JSON_DEFAULT_MAX_BYTES;
    out->max_depth = LUNA_JSON_DEFAULT_MAX_DEPTH;
    out->max_string = LUNA_JSON_DEFAULT_MAX_STRING;
    out->max_items = LUNA_JSON_DEFAULT_MAX_ITEMS;
    if (in == NULL)
        return LUNA_OK;
    if (in->max_bytes != 0)
        out->max_bytes = in->max_bytes;
    if (in->max_depth != 0)
        out->max_depth = in->max_depth;
    if (in->max_string != 0)
        out->max_string = in->max_string;
    if (in->max_items != 0)
        out->max_items = in->max_items;
    if (out->max_bytes > LUNA_JSON_MAX_BYTES_CEILING ||
        out->max_depth > LUNA_JSON_MAX_DEPTH_CEILING)
        return LUNA_ERR_INVALID_ARG;
    return LUNA_OK;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * One linear pass, no allocation: raw NUL, BOM, empty body and nesting
 * depth.  Brackets inside strings do not count; an escaped quote does not
 * end a string.  Malformed input may be mis-scanned here, but then only in
 * the direction of counting more depth, and jansson refuses it anyway.
 */
static luna_err prescan(const char *body, size_t len, const limits_r *lim, luna_json_error *err)
{
    size_t depth = 0;
    bool in_str = false, esc = false, any = false;

    if (len >= 3 && (unsigned char)body[0] == 0xef && (unsigned char)body[1] == 0xbb &&
        (unsigned char)body[2] == 0xbf)
        return err_set(err, LUNA_ERR_FORMAT, "", 0, "byte order mark not allowed");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == 0)
            return err_set(err, LUNA_ERR_FORMAT, "", i, "NUL byte not allowed");
        if (!is_ws(c))
            any = true;
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > lim->max_depth)
                return err_set(err, LUNA_ERR_TOO_LARGE, "", i, "nested deeper than %zu levels",
                               lim->max_depth);
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    if (!any)
        return err_set(err, LUNA_ERR_FORMAT, "", 0, "empty body");
    return LUNA_OK;
}

static luna_err map_jansson_error(const json_error_t *je, luna_json_error *err)
{
    size_t pos = je->position;

    switch (json_error_code(je)) {
    case json_error_out_of_memory:
        return err_set(err, LUNA_ERR_NOMEM, "", 0, "out of memory");
    case json_error_stack_overflow:
        return err_set(err, LUNA_ERR_TOO_LARGE, "", pos, "nested too deep");
    case json_error_invalid_utf8:
        return err_set(err, LUNA_ERR_FORMAT, "", pos, "invalid UTF-8 at byte %zu", pos);
    case json_error_premature_end_of_input:
        return err_set(err, LUNA_ERR_FORMAT, "", pos, "truncated JSON at byte %zu", pos);
    case json_error_end_of_input_expected:
        return err_set(err, LUNA_ERR_FORMAT, "", pos, "unexpected data after the JSON value at byte %zu", pos);
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return err_set(err, LUNA_ERR_FORMAT, "", pos, "\\u0000 not allowed at byte %zu", pos);
    case json_error_duplicate_key:
        return err_set(err, LUNA_ERR_FORMAT, "", pos, "duplicate object key at byte %zu", pos);
    case json_error_numeric_overflow:
        return err_set(err, LUNA_ERR_FORMAT, "", pos, "number out of range at byte %zu", pos);
    default:
        return err_set(err, LUNA_ERR_FORMAT, "", pos, "invalid JSON syntax at byte %zu", pos);
    }
}

/* ---- path handling ---- */

/* Appends to the path, truncating silently: the path is only a message. */
static size_t path_push_name(vctx *v, const char *name)
{
    size_t old = v->path_len;
    int n = snprintf(v->path + old, sizeof(v->path) - old, "%s%s", old > 0 ? "." : "", name);
    if (n > 0)
        v->path_len = old + (size_t)n < sizeof(v->path) ? old + (size_t)n : sizeof(v->path) - 1;
    return old;
}

static size_t path_push_index(vctx *v, size_t idx)
{
    size_t old = v->path_len;
    int n = snprintf(v->path + old, sizeof(v->path) - old, "[%zu]", idx);
    if (n > 0)
        v->path_len = old + (size_t)n < sizeof(v->path) ? old + (size_t)n : sizeof(v->path) - 1;
    return old;
}

static void path_pop(vctx *v, size_t old)
{
    v->path_len = old;
    v->path[old] = '\0';
}

/* ---- schema helpers ---- */

static bool is_ident_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static bool key_is_echoable(const char *key, size_t len)
{
    if (len == 0 || len > UNKNOWN_KEY_ECHO_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_ident_char((unsigned char)key[i]))
            return false;
    return true;
}

/* Schema chain walk; LUNA_ERR_INVALID_ARG for a chain that is too long. */
static luna_err chain_check(const luna_json_schema *s)
{
    size_t n = 0;
    for (; s != NULL; s = s->extends) {
        if (++n > LUNA_JSON_MAX_EXTENDS)
            return LUNA_ERR_INVALID_ARG;
        if (s->n_fields > 0 && s->fields == NULL)
            return LUNA_ERR_INVALID_ARG;
    }
    return LUNA_OK;
}

static const luna_json_field *find_field(const luna_json_schema *s, const char *key, size_t len)
{
    for (; s != NULL; s = s->extends)
        for (size_t i = 0; i < s->n_fields; i++) {
            const char *name = s->fields[i].name;
            if (strlen(name) == len && memcmp(name, key, len) == 0)
                return &s->fields[i];
        }
    return NULL;
}

static luna_err field_check(const luna_json_field *f)
{
    if (f->name == NULL)
        return LUNA_ERR_INVALID_ARG;
    switch (f->type) {
    case LUNA_JSON_T_STRING:
    case LUNA_JSON_T_B64URL:
    case LUNA_JSON_T_HEX:
        if (f->max_len != 0 && f->min_len > f->max_len)
            return LUNA_ERR_INVALID_ARG;
        if (f->pattern > LUNA_JSON_PAT_ANY)
            return LUNA_ERR_INVALID_ARG;
        return LUNA_OK;
    case LUNA_JSON_T_INT:
    case LUNA_JSON_T_REAL:
        return f->min <= f->max ? LUNA_OK : LUNA_ERR_INVALID_ARG;
    case LUNA_JSON_T_BOOL:
        return LUNA_OK;
    case LUNA_JSON_T_OBJECT:
        return f->object != NULL ? LUNA_OK : LUNA_ERR_INVALID_ARG;
    case LUNA_JSON_T_ARRAY:
        if (f->items == NULL || f->items->type == LUNA_JSON_T_ARRAY)
            return LUNA_ERR_INVALID_ARG; /* arrays of arrays: not needed, not allowed */
        if (f->max_len != 0 && f->min_len > f->max_len)
            return LUNA_ERR_INVALID_ARG;
        return field_check(f->items);
    default:
        return LUNA_ERR_INVALID_ARG;
    }
}

static const char *pattern_text(luna_json_pattern p)
{
    switch (p) {
    case LUNA_JSON_PAT_IDENT:
        return " from [A-Za-z0-9._-]";
    case LUNA_JSON_PAT_PRINTABLE:
        return " of printable ASCII";
    case LUNA_JSON_PAT_TEXT:
        return " without control characters";
    default:
        return "";
    }
}

static bool pattern_ok(luna_json_pattern p, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (p) {
        case LUNA_JSON_PAT_IDENT:
            if (!is_ident_char(c))
                return false;
            break;
        case LUNA_JSON_PAT_PRINTABLE:
            if (c < 0x20 || c > 0x7e)
                return false;
            break;
        case LUNA_JSON_PAT_TEXT:
            if (c < 0x20 || c == 0x7f)
                return false;
            break;
        default:
            if (c == 0)
                return false;
            break;
        }
    }
    return true;
}

static luna_err fail(vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static luna_err fail(vctx *v, const char *fmt, ...)
{
    va_list ap;

    if (v->err == NULL)
        return LUNA_ERR_FORMAT;
    v->err->code = LUNA_ERR_FORMAT;
    v->err->offset = 0;
    (void)snprintf(v->err->path, sizeof(v->err->path), "%s", v->path);
    va_start(ap, fmt);
    (void)vsnprintf(v->err->message, sizeof(v->err->message), fmt, ap);
    va_end(ap);
    return LUNA_ERR_FORMAT;
}

static luna_err fail_one_of(vctx *v, const char *const *one_of)
{
    char list[LUNA_JSON_MSG_MAX];
    size_t off = 0;

    list[0] = '\0';
    for (size_t i = 0; one_of[i] != NULL && off < sizeof(list); i++) {
        int n = snprintf(list + off, sizeof(list) - off, "%s%s", i > 0 ? ", " : "", one_of[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    return fail(v, "must be one of: %s", list);
}

/* Decoded size of a base64url text, or SIZE_MAX when the length is invalid. */
static size_t b64url_decoded_len(size_t len)
{
    size_t rem = len % 4;
    if (rem == 1)
        return SIZE_MAX;
    return len / 4 * 3 + (rem == 0 ? 0 : rem - 1);
}

/*
 * Checks an encoding by decoding it in chunks into a small stack buffer
 * (wiped afterwards: the value may be key material).  Base64url chunks are
 * whole 4-character groups, hex chunks whole pairs, so each decodes alone.
 */
static bool encoding_ok(luna_json_type t, const char *s, size_t len)
{
    uint8_t tmp[48];
    size_t chunk = t == LUNA_JSON_T_B64URL ? 64 : 96;
    size_t got;
    bool ok = true;

    for (size_t i = 0; i < len && ok; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;
        luna_err e = t == LUNA_JSON_T_B64URL
                         ? luna_b64url_decode(s + i, n, tmp, sizeof(tmp), &got)
                         : luna_hex_decode(s + i, n, tmp, sizeof(tmp), &got);
        ok = e == LUNA_OK;
    }
    luna_wipe(tmp, sizeof(tmp));
    return ok;
}

static luna_err check_object(vctx *v, const json_t *obj, const luna_json_schema *schema,
                             size_t depth);

static luna_err check_value(vctx *v, const json_t *val, const luna_json_field *f, size_t depth)
{
    switch (f->type) {
    case LUNA_JSON_T_STRING: {
        size_t max = f->max_len != 0 ? f->max_len : v->lim->max_string;
        if (!json_is_string(val))
            return fail(v, "must be a string of %zu..%zu bytes%s", f->min_len, max,
                        pattern_text(f->pattern));
        const char *s = json_string_value(val);
        size_t len = json_string_length(val);
        if (f->one_of != NULL) {
            for (size_t i = 0; f->one_of[i] != NULL; i++)
                if (strlen(f->one_of[i]) == len && memcmp(f->one_of[i], s, len) == 0)
                    return LUNA_OK;
            return fail_one_of(v, f->one_of);
        }
        if (len < f->min_len || len > max || !pattern_ok(f->pattern, s, len))
            return fail(v, "must be a string of %zu..%zu bytes%s", f->min_len, max,
                        pattern_text(f->pattern));
        return LUNA_OK;
    }
    case LUNA_JSON_T_B64URL:
    case LUNA_JSON_T_HEX: {
        bool b64 = f->type == LUNA_JSON_T_B64URL;
        const char *what = b64 ? "base64url (no padding)" : "hex";
        size_t enc_len, dec;
        if (f->max_len != 0 && !json_is_string(val))
            return fail(v, "must be %s of %zu..%zu bytes", what, f->min_len, f->max_len);
        if (!json_is_string(val))
            return fail(v, "must be %s of at least %zu bytes", what, f->min_len);
        enc_len = json_string_length(val);
        dec = b64 ? b64url_decoded_len(enc_len) : (enc_len % 2 == 0 ? enc_len / 2 : SIZE_MAX);
        if (enc_len > v->lim->max_string || dec == SIZE_MAX || dec < f->min_len ||
            (f->max_len != 0 && dec > f->max_len) ||
            !encoding_ok(f->type, json_string_value(val), enc_len)) {
            if (f->max_len != 0)
                return fail(v, "must be %s of %zu..%zu bytes", what, f->min_len, f->max_len);
            return fail(v, "must be %s of at least %zu bytes", what, f->min_len);
        }
        return LUNA_OK;
    }
    case LUNA_JSON_T_INT:
        if (!json_is_integer(val) || (int64_t)json_integer_value(val) < f->min ||
            (int64_t)json_integer_value(val) > f->max)
            return fail(v, "must be an integer %" PRId64 "..%" PRId64, f->min, f->max);
        return LUNA_OK;
    case LUNA_JSON_T_REAL: {
        double d = json_is_number(val) ? json_number_value(val) : NAN;
        if (!json_is_number(val) || !isfinite(d) || d < (double)f->min || d > (double)f->max)
            return fail(v, "must be a number %" PRId64 "..%" PRId64, f->min, f->max);
        return LUNA_OK;
    }
    case LUNA_JSON_T_BOOL:
        if (!json_is_boolean(val))
            return fail(v, "must be true or false");
        return LUNA_OK;
    case LUNA_JSON_T_OBJECT:
        if (!json_is_object(val))
            return fail(v, "must be an object");
        return check_object(v, val, f->object, depth + 1);
    case LUNA_JSON_T_ARRAY: {
        size_t max = f->max_len != 0 ? f->max_len : v->lim->max_items;
        size_t n;
        if (!json_is_array(val) || (n = json_array_size(val)) < f->min_len || n > max)
            return fail(v, "must be an array of %zu..%zu items", f->min_len, max);
        if (depth + 1 > v->lim->max_depth)
            return err_set(v->err, LUNA_ERR_TOO_LARGE, v->path, 0,
                           "nested deeper than %zu levels", v->lim->max_depth);
        for (size_t i = 0; i < n; i++) {
            size_t old = path_push_index(v, i);
            luna_err e = check_value(v, json_array_get(val, i), f->items, depth + 1);
            if (e != LUNA_OK)
                return e;
            path_pop(v, old);
        }
        return LUNA_OK;
    }
    default:
        return err_set(v->err, LUNA_ERR_INVALID_ARG, v->path, 0, "bad schema");
    }
}

static luna_err check_object(vctx *v, const json_t *obj, const luna_json_schema *schema,
                             size_t depth)
{
    const char *key;
    size_t key_len;
    json_t *val;

    if (depth > v->lim->max_depth)
        return err_set(v->err, LUNA_ERR_TOO_LARGE, v->path, 0, "nested deeper than %zu levels",
                       v->lim->max_depth);
    if (schema == NULL || chain_check(schema) != LUNA_OK)
        return err_set(v->err, LUNA_ERR_INVALID_ARG, v->path, 0, "bad schema");
    for (const luna_json_schema *s = schema; s != NULL; s = s->extends)
        for (size_t i = 0; i < s->n_fields; i++) {
            const luna_json_field *f = &s->fields[i];
            if (field_check(f) != LUNA_OK ||
                find_field(schema, f->name, strlen(f->name)) != f)
                return err_set(v->err, LUNA_ERR_INVALID_ARG, v->path, 0, "bad schema");
        }

    json_object_keylen_foreach((json_t *)obj, key, key_len, val) {
        if (find_field(schema, key, key_len) == NULL) {
            size_t old = path_push_name(v, key_is_echoable(key, key_len) ? key : "?");
            luna_err e = fail(v, "unknown field");
            path_pop(v, old);
            return e;
        }
    }
    for (const luna_json_schema *s = schema; s != NULL; s = s->extends)
        for (size_t i = 0; i < s->n_fields; i++) {
            const luna_json_field *f = &s->fields[i];
            const json_t *member = json_object_get(obj, f->name);
            size_t old = path_push_name(v, f->name);
            luna_err e = LUNA_OK;
            if (member == NULL) {
                if (f->flags & LUNA_JSON_REQUIRED)
                    e = fail(v, "is required");
            } else {
                e = check_value(v, member, f, depth);
            }
            if (e != LUNA_OK)
                return e;
            path_pop(v, old);
        }
    return LUNA_OK;
}

static luna_err validate_root(const json_t *root, const luna_json_schema *schema,
                              const limits_r *lim, luna_json_error *err)
{
    vctx v;

    if (!json_is_object(root))
        return err_set(err, LUNA_ERR_FORMAT, "", 0, "body must be a JSON object");
    v.lim = lim;
    v.err = err;
    v.path[0] = '\0';
    v.path_len = 0;
    return check_object(&v, root, schema, 1);
}

luna_err luna_json_validate(const json_t *root, const luna_json_schema *schema,
                            const luna_json_limits *limits, luna_json_error *err)
{
    limits_r lim;

    err_clear(err);
    if (root == NULL || schema == NULL || resolve_limits(limits, &lim) != LUNA_OK)
        return err_set(err, LUNA_ERR_INVALID_ARG, "", 0, "invalid argument");
    return validate_root(root, schema, &lim, err);
}

/* Steps 1-3 of luna_json_parse plus "the root is an object". */
static luna_err parse_syntax(const char *body, size_t len, const limits_r *lim, json_t **out,
                             luna_json_error *err)
{
    json_error_t je;
    json_t *root;

    if (len > lim->max_bytes)
        return err_set(err, LUNA_ERR_TOO_LARGE, "", 0, "body larger than %zu bytes",
                       lim->max_bytes);
    if (len == 0)
        return err_set(err, LUNA_ERR_FORMAT, "", 0, "empty body");
    LUNA_GUARD(prescan(body, len, lim, err));

    /* Duplicates refused, \u0000 refused (no JSON_ALLOW_NUL), trailing data
     * refused (no JSON_DISABLE_EOF_CHECK).  DECODE_ANY only so that a scalar
     * body gets our clearer "must be a JSON object" error. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (root == NULL)
        return map_jansson_error(&je, err);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(err, LUNA_ERR_FORMAT, "", 0, "body must be a JSON object");
    }
    *out = root;
    return LUNA_OK;
}

luna_err luna_json_parse_unvalidated(const char *body, size_t len,
                                     const luna_json_limits *limits, json_t **out,
                                     luna_json_error *err)
{
    limits_r lim;

    err_clear(err);
    if (out != NULL)
        *out = NULL;
    if (out == NULL || (body == NULL && len > 0) || resolve_limits(limits, &lim) != LUNA_OK)
        return err_set(err, LUNA_ERR_INVALID_ARG, "", 0, "invalid argument");
    return parse_syntax(body, len, &lim, out, err);
}

luna_err luna_json_parse(const char *body, size_t len, const luna_json_schema *schema,
                         const luna_json_limits *limits, json_t **out, luna_json_error *err)
{
    limits_r lim;
    json_t *root = NULL;
    luna_err e;

    err_clear(err);
    if (out != NULL)
        *out = NULL;
    if (out == NULL || schema == NULL || (body == NULL && len > 0) ||
        resolve_limits(limits, &lim) != LUNA_OK)
        return err_set(err, LUNA_ERR_INVALID_ARG, "", 0, "invalid argument");
    LUNA_GUARD(parse_syntax(body, len, &lim, &root, err));
    e = validate_root(root, schema, &lim, err);
    if (e != LUNA_OK) {
        json_decref(root);
        return e;
    }
    *out = root;
    return LUNA_OK;
}

/* ---- getters ---- */

luna_err luna_json_get(const json_t *obj, const char *name, const json_t **out)
{
    const json_t *cur = obj;
    const char *p = name;

    if (obj == NULL || name == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t seg = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (seg == 0)
            return LUNA_ERR_INVALID_ARG;
        if (!json_is_object(cur))
            return LUNA_ERR_FORMAT;
        cur = json_object_getn(cur, p, seg);
        if (cur == NULL)
            return LUNA_ERR_NOT_FOUND;
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    *out = cur;
    return LUNA_OK;
}

luna_err luna_json_get_string(const json_t *obj, const char *name, const char **out,
                              size_t *out_len)
{
    const json_t *v;

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_json_get(obj, name, &v));
    if (!json_is_string(v))
        return LUNA_ERR_FORMAT;
    *out = json_string_value(v);
    if (out_len != NULL)
        *out_len = json_string_length(v);
    return LUNA_OK;
}

luna_err luna_json_get_int(const json_t *obj, const char *name, int64_t *out)
{
    const json_t *v;

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_json_get(obj, name, &v));
    if (!json_is_integer(v))
        return LUNA_ERR_FORMAT;
    *out = (int64_t)json_integer_value(v);
    return LUNA_OK;
}

luna_err luna_json_get_bool(const json_t *obj, const char *name, bool *out)
{
    const json_t *v;

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_json_get(obj, name, &v));
    if (!json_is_boolean(v))
        return LUNA_ERR_FORMAT;
    *out = json_is_true(v);
    return LUNA_OK;
}

luna_err luna_json_get_real(const json_t *obj, const char *name, double *out)
{
    const json_t *v;

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_json_get(obj, name, &v));
    if (!json_is_number(v))
        return LUNA_ERR_FORMAT;
    *out = json_number_value(v);
    return LUNA_OK;
}

luna_err luna_json_get_object(const json_t *obj, const char *name, const json_t **out)
{
    const json_t *v;

    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_json_get(obj, name, &v));
    if (!json_is_object(v))
        return LUNA_ERR_FORMAT;
    *out = v;
    return LUNA_OK;
}

luna_err luna_json_get_array(const json_t *obj, const char *name, const json_t **out,
                             size_t *count)
{
    const json_t *v;

    if (out == NULL || count == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_json_get(obj, name, &v));
    if (!json_is_array(v))
        return LUNA_ERR_FORMAT;
    *out = v;
    *count = json_array_size(v);
    return LUNA_OK;
}

static luna_err get_decoded(const json_t *obj, const char *name, bool b64, uint8_t *out,
                            size_t out_cap, size_t *out_len)
{
    const char *s;
    size_t len;

    if (out == NULL || out_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    LUNA_GUARD(luna_json_get_string(obj, name, &s, &len));
    /* Both decoders wipe what they wrote on a format error. */
    return b64 ? luna_b64url_decode(s, len, out, out_cap, out_len)
               : luna_hex_decode(s, len, out, out_cap, out_len);
}

luna_err luna_json_get_b64url(const json_t *obj, const char *name, uint8_t *out, size_t out_cap,
                              size_t *out_len)
{
    return get_decoded(obj, name, true, out, out_cap, out_len);
}

luna_err luna_json_get_hex(const json_t *obj, const char *name, uint8_t *out, size_t out_cap,
                           size_t *out_len)
{
    return get_decoded(obj, name, false, out, out_cap, out_len);
}
