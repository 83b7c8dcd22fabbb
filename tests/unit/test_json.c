/*
 * Unit tests for the strict JSON parser: the malformed-input corpus in
 * tests/data/json/ (each file with its expected outcome in expected.tsv),
 * values read back from a valid body, limits, schema errors, and that no
 * error ever carries a byte of the input's values.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/json.h"
#include "luna_test.h"

static const char *const jobs[] = {"summarize", "classify", "translate", NULL};

static const luna_json_field data_fields[] = {
    {.name = "tenant_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 64, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "note", .type = LUNA_JSON_T_STRING, .max_len = 100, .pattern = LUNA_JSON_PAT_TEXT},
};
static const luna_json_schema data_schema = {data_fields, 2, NULL};

static const luna_json_field item_fields[] = {
    {.name = "name", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 16, .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema item_schema = {item_fields, 1, NULL};
static const luna_json_field item_field = {.name = "item", .type = LUNA_JSON_T_OBJECT,
                                           .object = &item_schema};
static const luna_json_field tag_field = {.name = "tag", .type = LUNA_JSON_T_STRING,
                                          .min_len = 1, .max_len = 16,
                                          .pattern = LUNA_JSON_PAT_IDENT};

static const luna_json_field req_fields[] = {
    {.name = "tenant_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 64, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "job", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .one_of = jobs},
    {.name = "count", .type = LUNA_JSON_T_INT, .min = 1, .max = 100},
    {.name = "min_count", .type = LUNA_JSON_T_INT, .min = -10, .max = 10},
    {.name = "verbose", .type = LUNA_JSON_T_BOOL},
    {.name = "nonce", .type = LUNA_JSON_T_B64URL, .min_len = 32, .max_len = 32},
    {.name = "digest", .type = LUNA_JSON_T_HEX, .min_len = 32, .max_len = 32},
    {.name = "data", .type = LUNA_JSON_T_OBJECT, .object = &data_schema},
    {.name = "items", .type = LUNA_JSON_T_ARRAY, .max_len = 4, .items = &item_field},
    {.name = "tags", .type = LUNA_JSON_T_ARRAY, .max_len = 3, .items = &tag_field},
    {.name = "ratio", .type = LUNA_JSON_T_REAL, .min = 0, .max = 1},
};
static const luna_json_schema req_schema = {req_fields, sizeof(req_fields) / sizeof(req_fields[0]),
                                            NULL};

static const luna_json_limits corpus_limits = {.max_bytes = 1u << 20};

static char *data_path(const char *name)
{
    const char *src = getenv("LUNA_SOURCE_DIR");
    char *p;
    if (src == NULL)
        fail_msg("LUNA_SOURCE_DIR is not set (run through ctest)");
    p = malloc(strlen(src) + strlen(name) + 32);
    assert_non_null(p);
    sprintf(p, "%s/tests/data/json/%s", src, name);
    return p;
}

static luna_err parse_str(const char *s, const luna_json_schema *schema,
                          const luna_json_limits *lim, json_t **out, luna_json_error *err)
{
    return luna_json_parse(s, strlen(s), schema, lim, out, err);
}

static luna_err code_of(const char *name)
{
    if (strcmp(name, "ok") == 0)
        return LUNA_OK;
    if (strcmp(name, "format") == 0)
        return LUNA_ERR_FORMAT;
    if (strcmp(name, "too_large") == 0)
        return LUNA_ERR_TOO_LARGE;
    fail_msg("expected.tsv: unknown result %s", name);
    return LUNA_ERR_INTERNAL;
}

/* Every corpus file gives exactly the outcome, path and message listed. */
static void corpus(void **state)
{
    (void)state;
    char *man_path = data_path("expected.tsv");
    size_t man_len, listed = 0;
    uint8_t *man = luna_test_read_file(man_path, &man_len);
    char *text = malloc(man_len + 1);
    char *save = NULL;
    assert_non_null(text);
    memcpy(text, man, man_len);
    text[man_len] = '\0';

    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        char *s2 = NULL;
        size_t n = 0;
        if (line[0] == '#')
            continue;
        for (char *t = strtok_r(line, "\t", &s2); t != NULL && n < 4; t = strtok_r(NULL, "\t", &s2))
            f[n++] = t;
        assert_int_equal(4, n);
        char *p = data_path(f[0]);
        size_t len;
        uint8_t *body = luna_test_read_file(p, &len);
        json_t *root = (json_t *)1;
        luna_json_error err;
        luna_err want = code_of(f[1]);
        luna_err got = luna_json_parse((const char *)body, len, &req_schema, &corpus_limits,
                                       &root, &err);
        if (got != want)
            fail_msg("%s: got %d (%s: %s), want %s", f[0], got, err.path, err.message, f[1]);
        if (want == LUNA_OK) {
            assert_non_null(root);
            json_decref(root);
        } else {
            assert_null(root);
            assert_int_equal(want, err.code);
            const char *want_path = strcmp(f[2], "-") == 0 ? "" : f[2];
            if (strcmp(want_path, err.path) != 0)
                fail_msg("%s: path '%s', want '%s'", f[0], err.path, want_path);
            if (strstr(err.message, f[3]) == NULL)
                fail_msg("%s: message '%s' lacks '%s'", f[0], err.message, f[3]);
        }
        free(body);
        free(p);
        listed++;
    }
    assert_true(listed >= 70);

    /* No corpus file escapes the manifest. */
    char *dir_path = data_path("");
    DIR *d = opendir(dir_path);
    struct dirent *de;
    size_t files = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".json") != NULL)
            files++;
    closedir(d);
    assert_int_equal(listed, files);
    free(dir_path);
    free(text);
    free(man);
    free(man_path);
}

static void valid_values_read_back(void **state)
{
    (void)state;
    char *p = data_path("valid_full.json");
    size_t len, n;
    uint8_t *body = luna_test_read_file(p, &len);
    json_t *root = NULL;
    const json_t *arr, *obj;
    luna_json_error err;
    const char *s;
    int64_t i;
    bool b;
    double d;
    uint8_t buf[64];

    assert_luna_ok(luna_json_parse((const char *)body, len, &req_schema, NULL, &root, &err));
    assert_int_equal(LUNA_OK, err.code);
    assert_luna_ok(luna_json_get_string(root, "tenant_id", &s, &n));
    assert_string_equal("acme-1.prod_x", s);
    assert_int_equal(13, n);
    assert_luna_ok(luna_json_get_string(root, "job", &s, NULL));
    assert_string_equal("summarize", s);
    assert_luna_ok(luna_json_get_int(root, "count", &i));
    assert_int_equal(100, i);
    assert_luna_ok(luna_json_get_int(root, "min_count", &i));
    assert_int_equal(-5, i);
    assert_luna_ok(luna_json_get_bool(root, "verbose", &b));
    assert_false(b);
    assert_luna_ok(luna_json_get_real(root, "ratio", &d));
    assert_true(d == 0.25);
    assert_luna_ok(luna_json_get_b64url(root, "nonce", buf, sizeof(buf), &n));
    assert_int_equal(32, n);
    for (size_t k = 0; k < 32; k++)
        assert_int_equal(k, buf[k]);
    assert_luna_ok(luna_json_get_hex(root, "digest", buf, sizeof(buf), &n));
    assert_int_equal(32, n);
    assert_int_equal(0x00, buf[0]);
    assert_int_equal(0xaa, buf[10]);
    assert_int_equal(0xff, buf[31]);
    assert_luna_ok(luna_json_get_string(root, "data.note", &s, NULL));
    assert_string_equal("caf\xc3\xa9 \xe2\x82\xac ok", s);
    assert_luna_ok(luna_json_get_object(root, "data", &obj));
    assert_luna_ok(luna_json_get_string(obj, "tenant_id", &s, NULL));
    assert_string_equal("acme", s);
    assert_luna_ok(luna_json_get_array(root, "items", &arr, &n));
    assert_int_equal(2, n);
    assert_luna_ok(luna_json_get_string(json_array_get(arr, 1), "name", &s, NULL));
    assert_string_equal("b", s);
    assert_luna_ok(luna_json_get_array(root, "tags", &arr, &n));
    assert_int_equal(3, n);

    /* Getter errors. */
    assert_luna_err(LUNA_ERR_FORMAT, luna_json_get_int(root, "tenant_id", &i));
    assert_luna_err(LUNA_ERR_FORMAT, luna_json_get_string(root, "count", &s, NULL));
    assert_luna_err(LUNA_ERR_FORMAT, luna_json_get_bool(root, "count", &b));
    assert_luna_err(LUNA_ERR_FORMAT, luna_json_get_object(root, "items", &obj));
    assert_luna_err(LUNA_ERR_FORMAT, luna_json_get_int(root, "count.x", &i));
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_json_get_int(root, "absent", &i));
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_json_get_string(root, "data.absent", &s, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_json_get_int(root, "data..x", &i));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_json_get_int(root, "", &i));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_json_get_int(NULL, "count", &i));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_json_get_b64url(root, "nonce", buf, 31, &n));
    assert_luna_err(LUNA_ERR_FORMAT, luna_json_get_hex(root, "job", buf, sizeof(buf), &n));
    json_decref(root);
    free(body);
    free(p);
}

static void size_cap(void **state)
{
    (void)state;
    const char *body = "{\"tenant_id\":\"acme\",\"job\":\"summarize\"}"; /* 38 bytes */
    luna_json_limits lim = {.max_bytes = 37};
    luna_json_error err;
    json_t *root = NULL;

    assert_luna_err(LUNA_ERR_TOO_LARGE, parse_str(body, &req_schema, &lim, &root, &err));
    assert_null(root);
    assert_string_equal("body larger than 37 bytes", err.message);
    assert_string_equal("", err.path);
    lim.max_bytes = 38;
    assert_luna_ok(parse_str(body, &req_schema, &lim, &root, &err));
    json_decref(root);

    /* The default cap holds without any limits given. */
    size_t big = LUNA_JSON_DEFAULT_MAX_BYTES + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_json_parse(huge, big, &req_schema, NULL, &root, &err));
    free(huge);

    /* Limits above the ceilings are a caller bug. */
    lim.max_bytes = LUNA_JSON_MAX_BYTES_CEILING + 1;
    assert_luna_err(LUNA_ERR_INVALID_ARG, parse_str(body, &req_schema, &lim, &root, &err));
    lim.max_bytes = 0;
    lim.max_depth = LUNA_JSON_MAX_DEPTH_CEILING + 1;
    assert_luna_err(LUNA_ERR_INVALID_ARG, parse_str(body, &req_schema, &lim, &root, &err));
}

/* A schema that nests itself, so depth is limited only by the limits. */
static const luna_json_schema nest_schema;
static const luna_json_field nest_item = {.name = "i", .type = LUNA_JSON_T_OBJECT,
                                          .object = &nest_schema};
static const luna_json_field nest_fields[] = {
    {.name = "a", .type = LUNA_JSON_T_OBJECT, .object = &nest_schema},
    {.name = "l", .type = LUNA_JSON_T_ARRAY, .items = &nest_item},
};
static const luna_json_schema nest_schema = {nest_fields, 2, NULL};

static char *nested_objects(size_t depth)
{
    char *s = malloc(depth * 6 + 4);
    size_t o = 0;
    assert_non_null(s);
    for (size_t i = 1; i < depth; i++) {
        memcpy(s + o, "{\"a\":", 5);
        o += 5;
    }
    s[o++] = '{';
    for (size_t i = 0; i < depth; i++)
        s[o++] = '}';
    s[o] = '\0';
    return s;
}

static void depth_limit(void **state)
{
    (void)state;
    luna_json_limits lim = {.max_depth = 5};
    luna_json_error err;
    json_t *root = NULL;
    char *s;

    s = nested_objects(5);
    assert_luna_ok(parse_str(s, &nest_schema, &lim, &root, &err));
    json_decref(root);
    free(s);
    s = nested_objects(6);
    assert_luna_err(LUNA_ERR_TOO_LARGE, parse_str(s, &nest_schema, &lim, &root, &err));
    assert_string_equal("nested deeper than 5 levels", err.message);
    free(s);

    /* Arrays count as levels too: {"l":[{"l":[{}]}]} is 5 deep. */
    assert_luna_ok(parse_str("{\"l\":[{\"l\":[{}]}]}", &nest_schema, &lim, &root, &err));
    json_decref(root);
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    parse_str("{\"l\":[{\"l\":[{\"a\":{}}]}]}", &nest_schema, &lim, &root, &err));

    /* Brackets inside strings and after escaped quotes do not count. */
    assert_luna_err(LUNA_ERR_FORMAT,
                    parse_str("{\"\\\"[[[[[[[[\":1}", &nest_schema, &lim, &root, &err));
    assert_string_equal("unknown field", err.message);
    assert_string_equal("?", err.path);

    /* luna_json_validate on a built tree applies the same depth bound. */
    json_t *t = json_object(), *cur = t;
    for (int i = 0; i < 6; i++) {
        json_t *next = json_object();
        assert_int_equal(0, json_object_set_new(cur, "a", next));
        cur = next;
    }
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_json_validate(t, &nest_schema, &lim, &err));
    assert_luna_ok(luna_json_validate(t, &nest_schema, NULL, &err));
    json_decref(t);
}

/* Errors are built from the schema only: values never come back. */
static void errors_never_echo_values(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"tenant_id\":\"SECRETVALUE\",\"job\":\"SECRETVALUE\"}",
        "{\"tenant_id\":\"SECRET VALUE\",\"job\":\"summarize\"}",
        "{\"tenant_id\":\"acme\",\"job\":\"summarize\",\"count\":\"SECRETVALUE\"}",
        "{\"tenant_id\":\"acme\",\"job\":\"summarize\",\"nonce\":\"SECRETVALUE\"}",
        "{\"tenant_id\":\"acme\",\"job\":\"summarize\",\"SECRETVALUE_but_long_key_name_xxx\":1}",
        "{\"tenant_id\":\"acme\",\"job\":\"summarize\",\"SECRET VALUE\":1}",
        "{\"tenant_id\":\"acme\",\"job\":\"summarize\"} SECRETVALUE",
        "{\"tenant_id\":\"acme\",\"job\":SECRETVALUE}",
        "{\"tenant_id\":\"SECRETVALUE\",\"tenant_id\":\"SECRETVALUE\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        luna_json_error err;
        json_t *root = NULL;
        assert_luna_err(LUNA_ERR_FORMAT, parse_str(bodies[i], &req_schema, NULL, &root, &err));
        assert_null(strstr(err.message, "SECRET"));
        assert_null(strstr(err.path, "SECRET"));
        assert_true(err.message[0] != '\0');
    }
}

static const luna_json_field base_fields[] = {
    {.name = "base", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 0, .max = 9},
};
static const luna_json_schema base_schema = {base_fields, 1, NULL};
static const luna_json_field ext_fields[] = {
    {.name = "ext", .type = LUNA_JSON_T_BOOL, .flags = LUNA_JSON_REQUIRED},
};
static const luna_json_schema ext_schema = {ext_fields, 1, &base_schema};

static void extends_chain(void **state)
{
    (void)state;
    luna_json_error err;
    json_t *root = NULL;

    assert_luna_ok(parse_str("{\"base\":1,\"ext\":true}", &ext_schema, NULL, &root, &err));
    json_decref(root);
    assert_luna_err(LUNA_ERR_FORMAT, parse_str("{\"ext\":true}", &ext_schema, NULL, &root, &err));
    assert_string_equal("base", err.path);
    assert_string_equal("is required", err.message);
    assert_luna_err(LUNA_ERR_FORMAT, parse_str("{\"base\":1}", &ext_schema, NULL, &root, &err));
    assert_string_equal("ext", err.path);
    assert_luna_err(LUNA_ERR_FORMAT,
                    parse_str("{\"base\":1,\"ext\":true,\"x\":1}", &ext_schema, NULL, &root, &err));
    assert_string_equal("x", err.path);
    /* The base alone does not know "ext". */
    assert_luna_err(LUNA_ERR_FORMAT,
                    parse_str("{\"base\":1,\"ext\":true}", &base_schema, NULL, &root, &err));
    assert_string_equal("ext", err.path);
    assert_string_equal("unknown field", err.message);
}

static const luna_json_field bad_array_fields[] = {
    {.name = "l", .type = LUNA_JSON_T_ARRAY},
};
static const luna_json_field bad_range_fields[] = {
    {.name = "n", .type = LUNA_JSON_T_INT, .min = 5, .max = 1},
};
static const luna_json_field bad_object_fields[] = {
    {.name = "o", .type = LUNA_JSON_T_OBJECT},
};
static const luna_json_field bad_len_fields[] = {
    {.name = "s", .type = LUNA_JSON_T_STRING, .min_len = 9, .max_len = 2},
};
static const luna_json_field dup_fields[] = {
    {.name = "base", .type = LUNA_JSON_T_BOOL},
};
static const luna_json_schema dup_schema = {dup_fields, 1, &base_schema};
static const luna_json_schema loop_a;
static const luna_json_schema loop_b = {NULL, 0, &loop_a};
static const luna_json_schema loop_a = {NULL, 0, &loop_b};

static void malformed_schema_refused(void **state)
{
    (void)state;
    const luna_json_schema bad[] = {
        {bad_array_fields, 1, NULL},
        {bad_range_fields, 1, NULL},
        {bad_object_fields, 1, NULL},
        {bad_len_fields, 1, NULL},
        {NULL, 1, NULL},
    };
    luna_json_error err;
    json_t *root = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_luna_err(LUNA_ERR_INVALID_ARG, parse_str("{}", &bad[i], NULL, &root, &err));
    assert_luna_err(LUNA_ERR_INVALID_ARG, parse_str("{}", &dup_schema, NULL, &root, &err));
    assert_luna_err(LUNA_ERR_INVALID_ARG, parse_str("{}", &loop_a, NULL, &root, &err));
    assert_null(root);
}

static void bad_arguments(void **state)
{
    (void)state;
    luna_json_error err;
    json_t *root = NULL;

    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_json_parse(NULL, 3, &req_schema, NULL, &root, &err));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_json_parse("{}", 2, NULL, NULL, &root, &err));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_json_parse("{}", 2, &req_schema, NULL, NULL, &err));
    assert_luna_err(LUNA_ERR_FORMAT, luna_json_parse(NULL, 0, &req_schema, NULL, &root, &err));
    /* err is optional. */
    assert_luna_err(LUNA_ERR_FORMAT, luna_json_parse("[]", 2, &req_schema, NULL, &root, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_json_validate(NULL, &req_schema, NULL, &err));
}

/* A length that ends mid-buffer is honoured: nothing after it is read. */
static void length_is_honoured(void **state)
{
    (void)state;
    const char buf[] = "{\"tenant_id\":\"acme\",\"job\":\"summarize\"}GARBAGE";
    luna_json_error err;
    json_t *root = NULL;

    assert_luna_ok(luna_json_parse(buf, 38, &req_schema, NULL, &root, &err));
    json_decref(root);
    assert_luna_err(LUNA_ERR_FORMAT, luna_json_parse(buf, 37, &req_schema, NULL, &root, &err));
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_json_parse(buf, sizeof(buf) - 1, &req_schema, NULL, &root, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpus),
        cmocka_unit_test(valid_values_read_back),
        cmocka_unit_test(size_cap),
        cmocka_unit_test(depth_limit),
        cmocka_unit_test(errors_never_echo_values),
        cmocka_unit_test(extends_chain),
        cmocka_unit_test(malformed_schema_refused),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(length_is_honoured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
