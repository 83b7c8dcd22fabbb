/*
 * Fuzz target: config loading from text (schema, environment-free cross
 * checks, a component extension).  Any input must be refused with a
 * "config: " message or give a config whose common part honours the
 * schema's bounds and the production rules.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const luna_json_field comp_section_fields[] = {
    {.name = "interval", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 86400},
    {.name = "module", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 4096},
};
static const luna_json_schema comp_section = {comp_section_fields, 2, NULL};
static const luna_json_field comp_fields[] = {
    {.name = "comp", .type = LUNA_JSON_T_OBJECT, .object = &comp_section},
};
static const luna_json_schema comp_schema = {comp_fields, 1, &luna_config_common_schema};
static const char *const comp_files[] = {"comp.module", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const luna_config_spec spec = {.schema = &comp_schema, .file_keys = comp_files};
    luna_config *cfg = NULL;
    luna_config_error err;

    luna_err e = luna_config_load_text((const char *)data, size, &spec, &cfg, &err);
    if (e != LUNA_OK) {
        if (cfg != NULL || err.code != e || strncmp(err.message, "config: ", 8) != 0 ||
            memchr(err.message, '\0', sizeof(err.message)) == NULL)
            abort();
        return 0;
    }
    const luna_config_common *c = luna_config_common_get(cfg);
    if (c->listen_port == 0 || c->tls_ca == NULL || c->n_evidence > LUNA_CONFIG_MAX_EVIDENCE ||
        (c->n_evidence > 0 && c->n_trust_anchors == 0) ||
        (c->profile == LUNA_PROFILE_PRODUCTION && luna_config_evidence_allowed(cfg, "sim")))
        abort();
    luna_config_free(cfg);
    return 0;
}
