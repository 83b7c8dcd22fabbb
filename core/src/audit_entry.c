/*
 * audit_entry.c - the audit entry's field rules and its canonical bytes
 * (see luna/audit_entry.h and docs/audit.md section 2).
 *
 * Owns: the character whitelists, the one canonical encoding and the
 * decoder that accepts nothing else.
 * Must never: emit a byte that would need JSON escaping, accept a second
 * encoding of the same entry, or put an input value in an error message.
 */
#include "luna/audit_entry.h"

#include <stdio.h>
#include <string.h>

#include "luna/bytes.h"

static const char *const outcome_names[] = {"success", "denied", "failure", NULL};

const char *luna_audit_outcome_name(luna_audit_outcome o)
{
    switch (o) {
    case LUNA_AUDIT_SUCCESS:
        return "success";
    case LUNA_AUDIT_DENIED:
        return "denied";
    case LUNA_AUDIT_FAILURE:
        return "failure";
    }
    return NULL;
}

luna_err luna_audit_outcome_parse(const char *name, luna_audit_outcome *out)
{
    if (name == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    for (int i = 0; outcome_names[i] != NULL; i++) {
        if (strcmp(name, outcome_names[i]) == 0) {
            *out = (luna_audit_outcome)(i + 1);
            return LUNA_OK;
        }
    }
    return LUNA_ERR_FORMAT;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Bounded scan: strnlen keeps a missing NUL from running off the array. */
static bool chars_ok(const char *s, size_t max, size_t min, int cls)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, max + 1);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok;
        switch (cls) {
        case 0: /* identifier */
            ok = is_alnum(c) || c == '.' || c == '_' || c == ':' || c == '/' || c == '@' ||
                 c == '-';
            break;
        case 1: /* operation */
            ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                 c == '-';
            break;
        case 2: /* request id */
            ok = is_alnum(c) || c == '.' || c == '_' || c == '-';
            break;
        default: /* reason */
            ok = c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

bool luna_audit_id_ok(const char *s, bool required)
{
    return chars_ok(s, LUNA_AUDIT_ID_MAX, required ? 1 : 0, 0);
}

bool luna_audit_op_ok(const char *s)
{
    return chars_ok(s, LUNA_AUDIT_OP_MAX, 1, 1);
}

bool luna_audit_request_id_ok(const char *s)
{
    return chars_ok(s, LUNA_AUDIT_REQUEST_ID_MAX, 1, 2);
}

bool luna_audit_reason_ok(const char *s)
{
    return chars_ok(s, LUNA_AUDIT_REASON_MAX, 0, 3);
}

luna_err luna_audit_set(char *dst, size_t cap, const char *src)
{
    if (dst == NULL || cap == 0 || src == NULL)
        return LUNA_ERR_INVALID_ARG;
    size_t n = strnlen(src, cap);
    if (n >= cap) {
        dst[0] = '\0';
        return LUNA_ERR_TOO_LARGE;
    }
    memcpy(dst, src, n + 1);
    return LUNA_OK;
}

luna_err luna_audit_entry_check(const luna_audit_entry *e)
{
    if (e == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (e->time_ms < 0 || e->time_ms > LUNA_AUDIT_TIME_MAX)
        return LUNA_ERR_FORMAT;
    if (!luna_audit_id_ok(e->component, true) || !luna_audit_id_ok(e->actor, true) ||
        !luna_audit_id_ok(e->tenant, false) || !luna_audit_id_ok(e->tee, false) ||
        !luna_audit_id_ok(e->deployment, false) || !luna_audit_op_ok(e->operation) ||
        !luna_audit_reason_ok(e->reason) || !luna_audit_request_id_ok(e->request_id))
        return LUNA_ERR_FORMAT;
    if (luna_audit_outcome_name(e->outcome) == NULL)
        return LUNA_ERR_FORMAT;
    if (e->n_objects > LUNA_AUDIT_MAX_OBJECTS)
        return LUNA_ERR_FORMAT;
    for (size_t i = 0; i < e->n_objects; i++) {
        if (!luna_audit_id_ok(e->objects[i], true))
            return LUNA_ERR_FORMAT;
    }
    return LUNA_OK;
}

static luna_err put(luna_wbuf *w, const char *s)
{
    return luna_write_bytes(w, s, strlen(s));
}

/* ,"key":"value" - value already checked against a whitelist. */
static luna_err put_str(luna_wbuf *w, const char *key, const char *value)
{
    LUNA_GUARD(put(w, ",\""));
    LUNA_GUARD(put(w, key));
    LUNA_GUARD(put(w, "\":\""));
    LUNA_GUARD(put(w, value));
    return put(w, "\"");
}

static luna_err put_u64(luna_wbuf *w, uint64_t v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        LUNA_GUARD(luna_write_u8(w, (uint8_t)digits[--n]));
    return LUNA_OK;
}

luna_err luna_audit_entry_encode(const luna_audit_entry *e, uint8_t *out, size_t out_cap,
                                 size_t *out_len)
{
    if (e == NULL || out == NULL || out_len == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out_len = 0;
    LUNA_GUARD(luna_audit_entry_check(e));
    luna_wbuf w;
    luna_wbuf_init(&w, out, out_cap);
    LUNA_GUARD(put(&w, "{\"v\":1,\"time\":"));
    LUNA_GUARD(put_u64(&w, (uint64_t)e->time_ms));
    LUNA_GUARD(put_str(&w, "component", e->component));
    LUNA_GUARD(put_str(&w, "actor", e->actor));
    LUNA_GUARD(put_str(&w, "tenant", e->tenant));
    LUNA_GUARD(put_str(&w, "tee", e->tee));
    LUNA_GUARD(put_str(&w, "deployment", e->deployment));
    LUNA_GUARD(put_str(&w, "operation", e->operation));
    LUNA_GUARD(put(&w, ",\"objects\":["));
    for (size_t i = 0; i < e->n_objects; i++) {
        if (i > 0)
            LUNA_GUARD(put(&w, ","));
        LUNA_GUARD(put(&w, "\""));
        LUNA_GUARD(put(&w, e->objects[i]));
        LUNA_GUARD(put(&w, "\""));
    }
    LUNA_GUARD(put(&w, "]"));
    LUNA_GUARD(put_str(&w, "outcome", luna_audit_outcome_name(e->outcome)));
    LUNA_GUARD(put_str(&w, "reason", e->reason));
    LUNA_GUARD(put_str(&w, "request_id", e->request_id));
    LUNA_GUARD(put(&w, "}"));
    *out_len = w.len;
    return LUNA_OK;
}

/* ---- schemas ---- */

#define ID_FIELD(n, fl, lo)                                                                        \
    {.name = (n), .type = LUNA_JSON_T_STRING, .flags = (fl), .min_len = (lo),                     \
     .max_len = LUNA_AUDIT_ID_MAX, .pattern = LUNA_JSON_PAT_PRINTABLE}

static const luna_json_field object_item = {.name = "item", .type = LUNA_JSON_T_STRING,
                                            .min_len = 1, .max_len = LUNA_AUDIT_ID_MAX,
                                            .pattern = LUNA_JSON_PAT_PRINTABLE};

/* The writer's fields; the character whitelists run after the schema. */
#define WRITER_FIELDS(opt)                                                                         \
    ID_FIELD("actor", LUNA_JSON_REQUIRED, 1), ID_FIELD("tenant", (opt), 0),                        \
        ID_FIELD("tee", (opt), 0), ID_FIELD("deployment", (opt), 0),                               \
        {.name = "operation", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,             \
         .min_len = 1, .max_len = LUNA_AUDIT_OP_MAX, .pattern = LUNA_JSON_PAT_PRINTABLE},          \
        {.name = "objects", .type = LUNA_JSON_T_ARRAY, .flags = (opt),                             \
         .max_len = LUNA_AUDIT_MAX_OBJECTS, .items = &object_item},                                \
        {.name = "outcome", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,               \
         .one_of = outcome_names},                                                                 \
        {.name = "reason", .type = LUNA_JSON_T_STRING, .flags = (opt),                             \
         .max_len = LUNA_AUDIT_REASON_MAX, .pattern = LUNA_JSON_PAT_PRINTABLE},                    \
        {.name = "request_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,            \
         .min_len = 1, .max_len = LUNA_AUDIT_REQUEST_ID_MAX, .pattern = LUNA_JSON_PAT_PRINTABLE}

static const luna_json_field request_fields[] = {WRITER_FIELDS(0)};
static const luna_json_schema request_schema = {
    request_fields, sizeof(request_fields) / sizeof(request_fields[0]), NULL};

static const luna_json_field leaf_fields[] = {
    {.name = "v", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 0,
     .max = INT32_MAX},
    {.name = "time", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 0,
     .max = LUNA_AUDIT_TIME_MAX},
    ID_FIELD("component", LUNA_JSON_REQUIRED, 1),
    WRITER_FIELDS(LUNA_JSON_REQUIRED),
};
static const luna_json_schema leaf_schema = {
    leaf_fields, sizeof(leaf_fields) / sizeof(leaf_fields[0]), NULL};

static luna_err get_into(const json_t *o, const char *name, char *dst, size_t cap, bool optional)
{
    const char *s;
    size_t n;
    luna_err err = luna_json_get_string(o, name, &s, &n);
    if (err == LUNA_ERR_NOT_FOUND && optional) {
        dst[0] = '\0';
        return LUNA_OK;
    }
    LUNA_GUARD(err);
    if (n >= cap)
        return LUNA_ERR_FORMAT;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return LUNA_OK;
}

/* Fills the writer's fields of e from a schema-checked object. */
static luna_err fill_writer(const json_t *o, luna_audit_entry *e, bool optional)
{
    LUNA_GUARD(get_into(o, "actor", e->actor, sizeof(e->actor), false));
    LUNA_GUARD(get_into(o, "tenant", e->tenant, sizeof(e->tenant), optional));
    LUNA_GUARD(get_into(o, "tee", e->tee, sizeof(e->tee), optional));
    LUNA_GUARD(get_into(o, "deployment", e->deployment, sizeof(e->deployment), optional));
    LUNA_GUARD(get_into(o, "operation", e->operation, sizeof(e->operation), false));
    LUNA_GUARD(get_into(o, "reason", e->reason, sizeof(e->reason), optional));
    LUNA_GUARD(get_into(o, "request_id", e->request_id, sizeof(e->request_id), false));
    const char *oc;
    size_t oc_len;
    LUNA_GUARD(luna_json_get_string(o, "outcome", &oc, &oc_len));
    LUNA_GUARD(luna_audit_outcome_parse(oc, &e->outcome));
    const json_t *arr;
    size_t count;
    luna_err err = luna_json_get_array(o, "objects", &arr, &count);
    if (err == LUNA_ERR_NOT_FOUND && optional) {
        e->n_objects = 0;
        return LUNA_OK;
    }
    LUNA_GUARD(err);
    if (count > LUNA_AUDIT_MAX_OBJECTS)
        return LUNA_ERR_FORMAT;
    for (size_t i = 0; i < count; i++) {
        const json_t *it = json_array_get(arr, i);
        if (!json_is_string(it))
            return LUNA_ERR_FORMAT;
        size_t n = json_string_length(it);
        if (n > LUNA_AUDIT_ID_MAX)
            return LUNA_ERR_FORMAT;
        memcpy(e->objects[i], json_string_value(it), n);
        e->objects[i][n] = '\0';
    }
    e->n_objects = count;
    return LUNA_OK;
}

static void set_jerr(luna_json_error *jerr, luna_err code, const char *msg)
{
    if (jerr == NULL)
        return;
    memset(jerr, 0, sizeof(*jerr));
    jerr->code = code;
    snprintf(jerr->message, sizeof(jerr->message), "%s", msg);
}

luna_err luna_audit_entry_parse_request(const uint8_t *body, size_t len, luna_audit_entry *out,
                                        luna_json_error *jerr)
{
    if (out == NULL || (body == NULL && len > 0))
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    luna_json_limits lim = {.max_bytes = LUNA_AUDIT_ENTRY_MAX, .max_depth = 2};
    json_t *root = NULL;
    luna_err err = luna_json_parse((const char *)body, len, &request_schema, &lim, &root, jerr);
    if (err != LUNA_OK)
        return err;
    err = fill_writer(root, out, true);
    json_decref(root);
    if (err != LUNA_OK) {
        memset(out, 0, sizeof(*out));
        set_jerr(jerr, LUNA_ERR_FORMAT, "malformed entry");
        return LUNA_ERR_FORMAT;
    }
    /* The whitelists: the JSON layer already decoded escapes, so a "\n" or
     * a quote smuggled in as an escape is caught here.  component is set
     * to a placeholder so the full check can run. */
    memcpy(out->component, "x", 2);
    err = luna_audit_entry_check(out);
    out->component[0] = '\0';
    if (err != LUNA_OK) {
        memset(out, 0, sizeof(*out));
        set_jerr(jerr, LUNA_ERR_FORMAT,
                 "identifiers allow [A-Za-z0-9._:/@-], operation [a-z0-9._-], request_id "
                 "[A-Za-z0-9._-], reason printable ASCII without quote or backslash");
        return LUNA_ERR_FORMAT;
    }
    return LUNA_OK;
}

luna_err luna_audit_entry_decode(const uint8_t *in, size_t len, luna_audit_entry *out)
{
    if (out == NULL || (in == NULL && len > 0))
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (len > LUNA_AUDIT_ENTRY_MAX)
        return LUNA_ERR_TOO_LARGE;
    luna_json_limits lim = {.max_bytes = LUNA_AUDIT_ENTRY_MAX, .max_depth = 2};
    json_t *root = NULL;
    luna_err err = luna_json_parse((const char *)in, len, &leaf_schema, &lim, &root, NULL);
    if (err != LUNA_OK)
        return err == LUNA_ERR_TOO_LARGE ? err : LUNA_ERR_FORMAT;
    int64_t v = 0, t = 0;
    err = luna_json_get_int(root, "v", &v);
    if (err == LUNA_OK && v != LUNA_AUDIT_ENTRY_VERSION)
        err = LUNA_ERR_UNSUPPORTED;
    if (err == LUNA_OK)
        err = luna_json_get_int(root, "time", &t);
    if (err == LUNA_OK)
        err = get_into(root, "component", out->component, sizeof(out->component), false);
    if (err == LUNA_OK)
        err = fill_writer(root, out, false);
    json_decref(root);
    out->time_ms = t;
    uint8_t again[LUNA_AUDIT_ENTRY_MAX];
    size_t again_len = 0;
    if (err == LUNA_OK)
        err = luna_audit_entry_encode(out, again, sizeof(again), &again_len);
    if (err == LUNA_OK && (again_len != len || memcmp(again, in, len) != 0))
        err = LUNA_ERR_FORMAT;
    if (err != LUNA_OK) {
        memset(out, 0, sizeof(*out));
        return err == LUNA_ERR_UNSUPPORTED ? err : LUNA_ERR_FORMAT;
    }
    return LUNA_OK;
}

static luna_err set_s(json_t *o, const char *k, const char *v)
{
    return json_object_set_new(o, k, json_string(v)) == 0 ? LUNA_OK : LUNA_ERR_NOMEM;
}

static luna_err build(const luna_audit_entry *e, bool full, json_t **out)
{
    if (e == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    luna_err err;
    json_t *o = json_object();
    json_t *arr = json_array();
    LUNA_TRY_ENSURE(o != NULL && arr != NULL, LUNA_ERR_NOMEM, fail);
    if (full) {
        LUNA_TRY_ENSURE(json_object_set_new(o, "v", json_integer(LUNA_AUDIT_ENTRY_VERSION)) == 0,
                        LUNA_ERR_NOMEM, fail);
        LUNA_TRY_ENSURE(json_object_set_new(o, "time", json_integer(e->time_ms)) == 0,
                        LUNA_ERR_NOMEM, fail);
        LUNA_TRY(set_s(o, "component", e->component), fail);
    }
    LUNA_TRY(set_s(o, "actor", e->actor), fail);
    LUNA_TRY(set_s(o, "tenant", e->tenant), fail);
    LUNA_TRY(set_s(o, "tee", e->tee), fail);
    LUNA_TRY(set_s(o, "deployment", e->deployment), fail);
    LUNA_TRY(set_s(o, "operation", e->operation), fail);
    for (size_t i = 0; i < e->n_objects && i < LUNA_AUDIT_MAX_OBJECTS; i++)
        LUNA_TRY_ENSURE(json_array_append_new(arr, json_string(e->objects[i])) == 0,
                        LUNA_ERR_NOMEM, fail);
    LUNA_TRY_ENSURE(json_object_set(o, "objects", arr) == 0, LUNA_ERR_NOMEM, fail);
    const char *oc = luna_audit_outcome_name(e->outcome);
    LUNA_TRY_ENSURE(oc != NULL, LUNA_ERR_FORMAT, fail);
    LUNA_TRY(set_s(o, "outcome", oc), fail);
    LUNA_TRY(set_s(o, "reason", e->reason), fail);
    LUNA_TRY(set_s(o, "request_id", e->request_id), fail);
    json_decref(arr);
    *out = o;
    return LUNA_OK;
fail:
    json_decref(arr);
    json_decref(o);
    return err;
}

luna_err luna_audit_entry_to_request(const luna_audit_entry *e, json_t **out)
{
    return build(e, false, out);
}

luna_err luna_audit_entry_to_json(const luna_audit_entry *e, json_t **out)
{
    return build(e, true, out);
}

bool luna_audit_entry_same_request(const luna_audit_entry *a, const luna_audit_entry *b)
{
    if (a == NULL || b == NULL || a->n_objects != b->n_objects ||
        a->n_objects > LUNA_AUDIT_MAX_OBJECTS || a->outcome != b->outcome)
        return false;
    if (strcmp(a->actor, b->actor) != 0 || strcmp(a->tenant, b->tenant) != 0 ||
        strcmp(a->tee, b->tee) != 0 || strcmp(a->deployment, b->deployment) != 0 ||
        strcmp(a->operation, b->operation) != 0 || strcmp(a->reason, b->reason) != 0 ||
        strcmp(a->request_id, b->request_id) != 0)
        return false;
    for (size_t i = 0; i < a->n_objects; i++) {
        if (strcmp(a->objects[i], b->objects[i]) != 0)
            return false;
    }
    return true;
}
