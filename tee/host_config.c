/*
 * host_config.c - the TEE host's config file: the common keys
 * (docs/config.md) plus the "tee_host" section (docs/tee.md; platform
 * "sim", the default, or "tpm", docs/tpm-live.md).  The only file of the
 * host that includes luna/config.h.  Must refuse a production profile: the
 * sim platform is insecure by design, and the TPM host measures the
 * runtime in its own (trusted, unencrypted) software.
 */
#include <stdio.h>
#include <string.h>

#include "host.h"
#include "luna/config.h"

static const luna_json_field att_fields[] = {
    {.name = "host", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 255, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "port", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 65535},
};
static const luna_json_schema att_schema = {att_fields, 2, NULL};

static const luna_json_field tee_fields[] = {
    {.name = "id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = HOST_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "config", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = HOST_PATH_MAX},
    {.name = "manifest", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = HOST_PATH_MAX},
    {.name = "bundle", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = HOST_PATH_MAX},
};
static const luna_json_schema tee_schema = {tee_fields, 4, NULL};
static const luna_json_field tee_item = {.name = "tee", .type = LUNA_JSON_T_OBJECT,
                                         .object = &tee_schema};

static const luna_json_field tpm_fields[] = {
    {.name = "tcti", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 256, .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema tpm_schema = {tpm_fields, 1, NULL};
static const char *const platforms[] = {"sim", "tpm", NULL};

static const luna_json_field section_fields[] = {
    {.name = "platform", .type = LUNA_JSON_T_STRING, .min_len = 3, .max_len = 3,
     .one_of = platforms},
    {.name = "tpm", .type = LUNA_JSON_T_OBJECT, .object = &tpm_schema},
    {.name = "platform_dir", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = HOST_PATH_MAX},
    {.name = "runtime", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = HOST_PATH_MAX},
    {.name = "tcb_level", .type = LUNA_JSON_T_INT, .min = 0, .max = UINT32_MAX},
    {.name = "debug", .type = LUNA_JSON_T_BOOL},
    {.name = "attestation", .type = LUNA_JSON_T_OBJECT, .object = &att_schema},
    {.name = "tees", .type = LUNA_JSON_T_ARRAY, .flags = LUNA_JSON_REQUIRED, .min_len = 0,
     .max_len = HOST_MAX_TEES, .items = &tee_item},
};
static const luna_json_schema section_schema = {section_fields, 8, NULL};
static const luna_json_field top_fields[] = {
    {.name = "tee_host", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &section_schema},
};
static const luna_json_schema host_schema = {top_fields, 1, &luna_config_common_schema};
static const char *const file_keys[] = {"tee_host.runtime", NULL};

static luna_err copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return LUNA_ERR_TOO_LARGE;
    memcpy(dst, src, n + 1);
    return LUNA_OK;
}

luna_err host_settings_load(const char *path, host_settings *out, char *msg, size_t msg_cap)
{
    luna_config *cfg = NULL;
    luna_config_error cerr;
    luna_config_spec spec = {.schema = &host_schema, .file_keys = file_keys,
                             .env_prefix = "LUNA_TEE_HOST_"};
    luna_err err;
    const char *s;
    int64_t i;
    bool b;

    memset(out, 0, sizeof(*out));
    memset(&cerr, 0, sizeof(cerr));
    if (msg_cap > 0)
        msg[0] = '\0';
    err = luna_config_load(path, &spec, &cfg, &cerr);
    if (err != LUNA_OK) {
        snprintf(msg, msg_cap, "%s", cerr.message);
        return err;
    }
    const luna_config_common *c = luna_config_common_get(cfg);
    const json_t *root = luna_config_json(cfg);
    if (c->profile != LUNA_PROFILE_DEVELOPMENT) {
        snprintf(msg, msg_cap, "config: profile: the SIMULATED platform runs in development only");
        err = LUNA_ERR_CONFIG;
        goto out;
    }
    LUNA_TRY(copy(out->listen_address, sizeof(out->listen_address), c->listen_address), out);
    out->listen_port = c->listen_port;
    LUNA_TRY(copy(out->tls_cert, sizeof(out->tls_cert), c->tls_cert), out);
    LUNA_TRY(copy(out->tls_key, sizeof(out->tls_key), c->tls_key), out);
    LUNA_TRY(copy(out->tls_ca, sizeof(out->tls_ca), c->tls_ca), out);
    if (luna_json_get_string(root, "tee_host.platform", &s, NULL) == LUNA_OK &&
        strcmp(s, "tpm") == 0) {
        /* The TPM names its own keys: no sim vendor folder, and no TCTI
           default (a host must never quote from a TPM it was not told of). */
        if (luna_json_get_string(root, "tee_host.tpm.tcti", &s, NULL) != LUNA_OK) {
            snprintf(msg, msg_cap, "config: tee_host.tpm.tcti: required for platform \"tpm\"");
            err = LUNA_ERR_CONFIG;
            goto out;
        }
        LUNA_TRY(copy(out->tcti, sizeof(out->tcti), s), out);
        out->tpm = true;
    } else {
        if (luna_json_get_string(root, "tee_host.platform_dir", &s, NULL) != LUNA_OK) {
            snprintf(msg, msg_cap, "config: tee_host.platform_dir: required for platform \"sim\"");
            err = LUNA_ERR_CONFIG;
            goto out;
        }
        LUNA_TRY(copy(out->platform_dir, sizeof(out->platform_dir), s), out);
    }
    LUNA_TRY(luna_json_get_string(root, "tee_host.runtime", &s, NULL), out);
    LUNA_TRY(copy(out->runtime, sizeof(out->runtime), s), out);
    out->tcb_level = 1;
    if (luna_json_get_int(root, "tee_host.tcb_level", &i) == LUNA_OK)
        out->tcb_level = (uint32_t)i;
    if (luna_json_get_bool(root, "tee_host.debug", &b) == LUNA_OK)
        out->debug = b;
    if (luna_json_get_string(root, "tee_host.attestation.host", &s, NULL) == LUNA_OK) {
        LUNA_TRY(copy(out->att_host, sizeof(out->att_host), s), out);
        LUNA_TRY(luna_json_get_int(root, "tee_host.attestation.port", &i), out);
        out->att_port = (uint16_t)i;
        out->has_attestation = true;
    }
    const json_t *tees;
    size_t n;
    LUNA_TRY(luna_json_get_array(root, "tee_host.tees", &tees, &n), out);
    for (size_t k = 0; k < n; k++) {
        const json_t *t = json_array_get(tees, k);
        host_tee_settings *ts = &out->tees[k];
        LUNA_TRY(luna_json_get_string(t, "id", &s, NULL), out);
        LUNA_TRY(copy(ts->id, sizeof(ts->id), s), out);
        for (size_t j = 0; j < k; j++)
            LUNA_TRY_ENSURE(strcmp(out->tees[j].id, ts->id) != 0, LUNA_ERR_CONFIG, out);
        LUNA_TRY(luna_json_get_string(t, "config", &s, NULL), out);
        LUNA_TRY(copy(ts->config, sizeof(ts->config), s), out);
        LUNA_TRY(luna_json_get_string(t, "manifest", &s, NULL), out);
        LUNA_TRY(copy(ts->manifest, sizeof(ts->manifest), s), out);
        LUNA_TRY(luna_json_get_string(t, "bundle", &s, NULL), out);
        LUNA_TRY(copy(ts->bundle, sizeof(ts->bundle), s), out);
    }
    out->n_tees = n;
out:
    if (err != LUNA_OK && msg[0] == '\0')
        snprintf(msg, msg_cap, "config: tee_host: invalid (%s)", luna_errname(err));
    luna_config_free(cfg);
    return err;
}
