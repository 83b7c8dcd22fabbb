/*
 * Fuzz target: the strict JSON parser and schema validator.  Any input
 * must either be refused with a filled, NUL-terminated error or give a
 * tree that passes re-validation and whose fields read back with the
 * declared types; nothing may read outside the input or recurse deeply.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_internal.h"
#include "luna/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = {"a", "bb", "ccc", NULL};

static const luna_json_field inner_fields[] = {
    {.name = "id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 64, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "text", .type = LUNA_JSON_T_STRING, .max_len = 200, .pattern = LUNA_JSON_PAT_TEXT},
    {.name = "n", .type = LUNA_JSON_T_INT, .min = INT64_MIN, .max = INT64_MAX},
};
static const luna_json_schema inner = {inner_fields, 3, NULL};
static const luna_json_field inner_item = {.name = "i", .type = LUNA_JSON_T_OBJECT,
                                           .object = &inner};
static const luna_json_field int_item = {.name = "i", .type = LUNA_JSON_T_INT, .min = -5,
                                         .max = 5};

static const luna_json_field base_fields[] = {
    {.name = "kind", .type = LUNA_JSON_T_STRING, .one_of = kinds},
};
static const luna_json_schema base = {base_fields, 1, NULL};

static const luna_json_field top_fields[] = {
    {.name = "id", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 64,
     .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "count", .type = LUNA_JSON_T_INT, .min = 0, .max = 1000},
    {.name = "flag", .type = LUNA_JSON_T_BOOL},
    {.name = "key", .type = LUNA_JSON_T_B64URL, .max_len = 64},
    {.name = "hash", .type = LUNA_JSON_T_HEX, .min_len = 1, .max_len = 64},
    {.name = "ratio", .type = LUNA_JSON_T_REAL, .min = -1, .max = 1},
    {.name = "obj", .type = LUNA_JSON_T_OBJECT, .object = &inner},
    {.name = "list", .type = LUNA_JSON_T_ARRAY, .max_len = 16, .items = &inner_item},
    {.name = "nums", .type = LUNA_JSON_T_ARRAY, .items = &int_item},
    {.name = "raw", .type = LUNA_JSON_T_STRING, .pattern = LUNA_JSON_PAT_ANY},
};
static const luna_json_schema top = {top_fields, 10, &base};

static void check_error(const luna_json_error *err)
{
    if (memchr(err->path, '\0', sizeof(err->path)) == NULL ||
        memchr(err->message, '\0', sizeof(err->message)) == NULL || err->message[0] == '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const luna_json_limits lim = {.max_bytes = 1u << 20, .max_depth = 8};
    luna_json_error err;
    json_t *root = NULL;
    uint8_t buf[64];
    size_t n;
    const char *s;
    int64_t i;

    luna_err e = luna_json_parse((const char *)data, size, &top, &lim, &root, &err);
    if (e != LUNA_OK) {
        if (root != NULL || err.code != e)
            abort();
        check_error(&err);
    } else {
        if (root == NULL || luna_json_validate(root, &top, &lim, &err) != LUNA_OK)
            abort();
        if (luna_json_get_b64url(root, "key", buf, sizeof(buf), &n) == LUNA_ERR_FORMAT ||
            luna_json_get_hex(root, "hash", buf, sizeof(buf), &n) == LUNA_ERR_FORMAT ||
            luna_json_get_string(root, "obj.id", &s, &n) == LUNA_ERR_FORMAT ||
            luna_json_get_int(root, "count", &i) == LUNA_ERR_FORMAT ||
            (luna_json_get_int(root, "count", &i) == LUNA_OK && (i < 0 || i > 1000)))
            abort();
        json_decref(root);
    }

    /* The syntax-only half must agree with the full parse on syntax. */
    root = NULL;
    luna_err e2 = luna_json_parse_unvalidated((const char *)data, size, &lim, &root, &err);
    if (e == LUNA_OK && e2 != LUNA_OK)
        abort();
    if (e2 == LUNA_OK) {
        if (!json_is_object(root))
            abort();
        json_decref(root);
    } else {
        check_error(&err);
    }
    return 0;
}
