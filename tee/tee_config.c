/*
 * tee_config.c - strict parse of the runtime's measured config
 * (tee_config.h).  Must accept one shape only: unknown keys, missing keys
 * and out-of-range limits are refused.
 */
#include "tee_config.h"

#include <stdio.h>
#include <string.h>

#include "luna/json.h"

static const luna_json_field listen_fields[] = {
    {.name = "address", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 2,
     .max_len = 63, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "port", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 65535},
};
static const luna_json_schema listen_schema = {listen_fields, 2, NULL};
static const luna_json_field tls_fields[] = {
    {.name = "ca", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_TEE_CONFIG_PATH_MAX},
    {.name = "tee_ca", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_TEE_CONFIG_PATH_MAX},
};
static const luna_json_schema tls_schema = {tls_fields, 2, NULL};
static const luna_json_field kms_fields[] = {
    {.name = "host", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 255, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "port", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 65535},
};
static const luna_json_schema kms_schema = {kms_fields, 2, NULL};
static const luna_json_field limit_fields[] = {
    {.name = "cpu_seconds", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 3600},
    {.name = "wall_ms", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 3600000},
    {.name = "memory_mib", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 65536},
    {.name = "result_kib", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = LUNA_TEE_RESULT_MAX_CAP / 1024},
    {.name = "scratch_kib", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 4,
     .max = LUNA_TEE_SCRATCH_MAX_CAP / 1024},
};
static const luna_json_schema limit_schema = {limit_fields, 5, NULL};
static const luna_json_field fields[] = {
    {.name = "deployment_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNA_TEE_CONFIG_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "developer_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNA_TEE_CONFIG_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "developer_pk", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = 32, .max_len = 32},
    {.name = "listen", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &listen_schema},
    {.name = "tls", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &tls_schema},
    {.name = "kms", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &kms_schema},
    {.name = "limits", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &limit_schema},
};
static const luna_json_schema schema = {fields, sizeof(fields) / sizeof(fields[0]), NULL};

static luna_err copy(char *dst, size_t cap, const json_t *root, const char *key)
{
    const char *s;
    size_t n;
    LUNA_GUARD(luna_json_get_string(root, key, &s, &n));
    LUNA_ENSURE(n < cap, LUNA_ERR_TOO_LARGE);
    memcpy(dst, s, n + 1);
    return LUNA_OK;
}

luna_err luna_tee_config_parse(const uint8_t *buf, size_t len, luna_tee_config *out, char *msg,
                               size_t msg_cap)
{
    json_t *root = NULL;
    luna_json_error jerr;
    luna_json_limits lim = {.max_bytes = 64u * 1024u};
    int64_t v;
    size_t n;
    luna_err err;

    if (buf == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    memset(&jerr, 0, sizeof(jerr));
    err = luna_json_parse((const char *)buf, len, &schema, &lim, &root, &jerr);
    if (err != LUNA_OK) {
        if (msg != NULL && msg_cap > 0)
            snprintf(msg, msg_cap, "tee config: %s: %s", jerr.path, jerr.message);
        return err;
    }
    LUNA_TRY(copy(out->deployment_id, sizeof(out->deployment_id), root, "deployment_id"), out);
    LUNA_TRY(copy(out->developer_id, sizeof(out->developer_id), root, "developer_id"), out);
    LUNA_TRY(luna_json_get_b64url(root, "developer_pk", out->developer_pk,
                                  sizeof(out->developer_pk), &n),
             out);
    LUNA_TRY_ENSURE(n == sizeof(out->developer_pk), LUNA_ERR_FORMAT, out);
    LUNA_TRY(copy(out->listen_address, sizeof(out->listen_address), root, "listen.address"), out);
    LUNA_TRY(luna_json_get_int(root, "listen.port", &v), out);
    out->listen_port = (uint16_t)v;
    LUNA_TRY(copy(out->tls_ca, sizeof(out->tls_ca), root, "tls.ca"), out);
    LUNA_TRY(copy(out->tls_tee_ca, sizeof(out->tls_tee_ca), root, "tls.tee_ca"), out);
    LUNA_TRY(copy(out->kms_host, sizeof(out->kms_host), root, "kms.host"), out);
    LUNA_TRY(luna_json_get_int(root, "kms.port", &v), out);
    out->kms_port = (uint16_t)v;
    LUNA_TRY(luna_json_get_int(root, "limits.cpu_seconds", &v), out);
    out->limits.cpu_seconds = (unsigned)v;
    LUNA_TRY(luna_json_get_int(root, "limits.wall_ms", &v), out);
    out->limits.wall_ms = (unsigned)v;
    LUNA_TRY(luna_json_get_int(root, "limits.memory_mib", &v), out);
    out->limits.mem_bytes = (size_t)v << 20;
    LUNA_TRY(luna_json_get_int(root, "limits.result_kib", &v), out);
    out->limits.result_max = (size_t)v << 10;
    LUNA_TRY(luna_json_get_int(root, "limits.scratch_kib", &v), out);
    out->limits.scratch_bytes = (size_t)v << 10;
out:
    if (err != LUNA_OK && msg != NULL && msg_cap > 0)
        snprintf(msg, msg_cap, "tee config: invalid (%s)", luna_errname(err));
    json_decref(root);
    return err;
}
