/*
 * att_config.c - the attestation service's config: the common schema plus
 * the "attestation_service" section (docs/attestation.md, "Config"),
 * turned into an att_settings.
 *
 * Must never: start on an unclear config (every rule refuses), or put a
 * config value in an error message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/config.h"
#include "luna/json.h"

#include "att.h"

struct att_config {
    luna_config *cfg;
    att_settings s;
};

static const luna_json_field endpoint_fields[] = {
    {.name = "host", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_HOST_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "port", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 65535},
};
static const luna_json_schema endpoint_schema = {endpoint_fields, 2, NULL};

static const luna_json_field deployment_fields[] = {
    {.name = "id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_DEPLOYMENT_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "version", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_VERSION_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "mr_enclave", .type = LUNA_JSON_T_HEX, .flags = LUNA_JSON_REQUIRED,
     .min_len = ATT_MEASUREMENT_LEN, .max_len = ATT_MEASUREMENT_LEN},
    {.name = "mr_signer", .type = LUNA_JSON_T_HEX, .flags = LUNA_JSON_REQUIRED,
     .min_len = ATT_MEASUREMENT_LEN, .max_len = ATT_MEASUREMENT_LEN},
    {.name = "build_hash", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 71, .max_len = 71, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "developer_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = ATT_DEV_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "key_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_KEY_ID_MAX, .pattern = LUNA_JSON_PAT_PRINTABLE},
    /* The developer's display name (IAM's), shown beside developer_id. */
    {.name = "developer_name", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = ATT_DEV_ID_MAX, .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema deployment_schema = {deployment_fields, 8, NULL};
static const luna_json_field deployment_item = {.name = "item", .type = LUNA_JSON_T_OBJECT,
                                                .object = &deployment_schema};

static const luna_json_field tpm_name_item = {.name = "ak_name", .type = LUNA_JSON_T_HEX,
                                              .min_len = 34, .max_len = ATT_TPM_SIGNER_MAX};
static const luna_json_field tpm_fields[] = {
    {.name = "ak_ca", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 4096},
    {.name = "collateral", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = 4096},
    {.name = "ak_names", .type = LUNA_JSON_T_ARRAY, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_TPM_SIGNERS_MAX, .items = &tpm_name_item},
};
static const luna_json_schema tpm_schema = {tpm_fields, 3, NULL};

static const luna_json_field section_fields[] = {
    {.name = "tpm", .type = LUNA_JSON_T_OBJECT, .object = &tpm_schema},
    {.name = "interval_seconds", .type = LUNA_JSON_T_INT, .min = 1, .max = 86400},
    {.name = "grace_seconds", .type = LUNA_JSON_T_INT, .min = 0, .max = 86400},
    {.name = "report_lifetime_seconds", .type = LUNA_JSON_T_INT, .min = 1, .max = 172800},
    {.name = "max_evidence_age_seconds", .type = LUNA_JSON_T_INT, .min = 1, .max = 86400},
    {.name = "workers", .type = LUNA_JSON_T_INT, .min = 1, .max = ATT_MAX_WORKERS},
    {.name = "watchdog_seconds", .type = LUNA_JSON_T_INT, .min = 1, .max = 3600},
    {.name = "http_timeout_seconds", .type = LUNA_JSON_T_INT, .min = 1, .max = 120},
    {.name = "tee_cert_hours", .type = LUNA_JSON_T_INT, .min = 1, .max = 24 * 90},
    {.name = "min_tcb_level", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 0,
     .max = UINT32_MAX},
    {.name = "sim_collateral", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 4096},
    {.name = "kms", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &endpoint_schema},
    {.name = "audit", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &endpoint_schema},
    /* IAM's developer-key lookup (deployment registration); optional. */
    {.name = "iam", .type = LUNA_JSON_T_OBJECT, .object = &endpoint_schema},
    {.name = "webhook_url", .type = LUNA_JSON_T_STRING, .min_len = 8, .max_len = ATT_URL_MAX,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "report_key", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = 4096},
    {.name = "report_kid", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 64,
     .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "tee_ca_dir", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = 4096},
    {.name = "tee_ca_passphrase_file", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = 4096},
    {.name = "iam_jwks", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 4096},
    {.name = "token_audience", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 256,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "deployments", .type = LUNA_JSON_T_ARRAY, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = ATT_MAX_DEPLOYMENTS, .items = &deployment_item},
};
static const luna_json_schema section_schema = {section_fields,
                                                sizeof section_fields / sizeof section_fields[0],
                                                NULL};
static const luna_json_field top_fields[] = {
    {.name = "attestation_service", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &section_schema},
};
static const luna_json_schema top_schema = {top_fields, 1, &luna_config_common_schema};
static const char *const file_keys[] = {"attestation_service.sim_collateral",
                                        "attestation_service.tee_ca_passphrase_file",
                                        "attestation_service.iam_jwks", NULL};

static uint32_t get_u32(const json_t *root, const char *key, uint32_t dflt)
{
    int64_t v;
    if (luna_json_get_int(root, key, &v) != LUNA_OK)
        return dflt;
    return (uint32_t)v; /* the schema bounds every key read here to 0..UINT32_MAX */
}

static luna_err copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return LUNA_ERR_TOO_LARGE;
    memcpy(dst, src, n + 1);
    return LUNA_OK;
}

static luna_err load_endpoint(const json_t *root, const char *key, att_endpoint *out)
{
    const json_t *obj;
    const char *host;
    int64_t port;
    LUNA_GUARD(luna_json_get_object(root, key, &obj));
    LUNA_GUARD(luna_json_get_string(obj, "host", &host, NULL));
    LUNA_GUARD(luna_json_get_int(obj, "port", &port));
    LUNA_GUARD(copy_str(out->host, sizeof out->host, host));
    out->port = (uint16_t)port;
    return LUNA_OK;
}

static bool build_hash_ok(const char *s)
{
    if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 71)
        return false;
    for (size_t i = 7; i < 71; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static luna_err load_deployment(const json_t *item, att_deployment *d)
{
    const char *str;
    size_t n;
    LUNA_GUARD(luna_json_get_string(item, "id", &str, NULL));
    LUNA_GUARD(copy_str(d->id, sizeof d->id, str));
    LUNA_GUARD(luna_json_get_string(item, "version", &str, NULL));
    LUNA_GUARD(copy_str(d->version, sizeof d->version, str));
    LUNA_GUARD(luna_json_get_hex(item, "mr_enclave", d->mr_enclave, sizeof d->mr_enclave, &n));
    LUNA_ENSURE(n == ATT_MEASUREMENT_LEN, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_json_get_hex(item, "mr_signer", d->mr_signer, sizeof d->mr_signer, &n));
    LUNA_ENSURE(n == ATT_MEASUREMENT_LEN, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_json_get_string(item, "build_hash", &str, NULL));
    LUNA_ENSURE(build_hash_ok(str), LUNA_ERR_FORMAT);
    LUNA_GUARD(copy_str(d->build_hash, sizeof d->build_hash, str));
    LUNA_GUARD(luna_json_get_string(item, "developer_id", &str, NULL));
    LUNA_GUARD(copy_str(d->developer_id, sizeof d->developer_id, str));
    LUNA_GUARD(luna_json_get_string(item, "key_id", &str, NULL));
    LUNA_GUARD(copy_str(d->key_id, sizeof d->key_id, str));
    if (luna_json_get_string(item, "developer_name", &str, NULL) == LUNA_OK)
        LUNA_GUARD(copy_str(d->developer_name, sizeof d->developer_name, str));
    return LUNA_OK;
}

static luna_err check_cb(const luna_config *cfg, void *arg, luna_config_error *err)
{
    const json_t *root = luna_config_json(cfg);
    const luna_config_common *c = luna_config_common_get(cfg);
    const char *url;
    uint32_t interval = get_u32(root, "attestation_service.interval_seconds", 60);
    uint32_t lifetime = get_u32(root, "attestation_service.report_lifetime_seconds", 2 * interval);
    (void)arg;
    if (lifetime > 2 * interval)
        return luna_config_fail(err, "attestation_service.report_lifetime_seconds",
                                "must be at most 2 re-attestation intervals");
    if (c->n_evidence == 0)
        return luna_config_fail(err, "attestation.allowed_evidence",
                                "must allow at least one evidence type");
    if (luna_config_evidence_allowed(cfg, "sim")) {
        const char *coll;
        if (luna_json_get_string(root, "attestation_service.sim_collateral", &coll, NULL) !=
            LUNA_OK)
            return luna_config_fail(err, "attestation_service.sim_collateral",
                                    "required when sim evidence is allowed");
    }
    if (c->storage_url != NULL && strcmp(c->storage_url, "sqlite::memory:") == 0)
        return luna_config_fail(err, "storage.url",
                                "must be a file or a server: every worker opens its own handle");
    if (luna_json_get_string(root, "attestation_service.webhook_url", &url, NULL) == LUNA_OK) {
        char host[ATT_HOST_MAX + 1], path[ATT_URL_MAX + 1];
        uint16_t port;
        if (att_url_parse(url, host, sizeof host, &port, path, sizeof path) != LUNA_OK)
            return luna_config_fail(err, "attestation_service.webhook_url",
                                    "must be http://<ip or name>:<port>/<path>");
    }
    if (c->profile == LUNA_PROFILE_PRODUCTION) {
        uint32_t timeout = get_u32(root, "attestation_service.http_timeout_seconds", 10);
        uint32_t watchdog = get_u32(root, "attestation_service.watchdog_seconds", 3 * timeout);
        if (watchdog <= timeout)
            return luna_config_fail(err, "attestation_service.watchdog_seconds",
                                    "must exceed http_timeout_seconds in production");
    }
    return LUNA_OK;
}

luna_err att_config_load(const char *path, att_config **out, char *msg, size_t msg_cap)
{
    luna_err err;
    luna_config_error cerr;
    att_config *c = NULL;
    const json_t *root, *arr;
    const char *str;
    size_t n;
    luna_config_spec spec = {.schema = &top_schema,
                             .file_keys = file_keys,
                             .storage_required = true,
                             .env_prefix = "LUNA_ATT_",
                             .check = check_cb};

    if (path == NULL || out == NULL || msg == NULL || msg_cap == 0)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    msg[0] = '\0';
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return LUNA_ERR_NOMEM;
    memset(&cerr, 0, sizeof cerr);
    err = luna_config_load(path, &spec, &c->cfg, &cerr);
    if (err != LUNA_OK) {
        snprintf(msg, msg_cap, "%s", cerr.message);
        goto out;
    }
    root = luna_config_json(c->cfg);
    const luna_config_common *cc = luna_config_common_get(c->cfg);
    att_settings *s = &c->s;
    s->production = cc->profile == LUNA_PROFILE_PRODUCTION;
    s->listen_address = cc->listen_address;
    s->listen_port = cc->listen_port;
    s->tls_cert = cc->tls_cert;
    s->tls_key = cc->tls_key;
    s->tls_ca = cc->tls_ca;
    s->storage_url = cc->storage_url;
    s->allow_sim = luna_config_evidence_allowed(c->cfg, "sim");
    s->allow_tpm = luna_config_evidence_allowed(c->cfg, "tpm");
    for (size_t i = 0; i < cc->n_evidence; i++) {
        if (strcmp(cc->evidence[i], "sim") != 0 && strcmp(cc->evidence[i], "tpm") != 0) {
            /* Other hardware types need their collateral wiring here
               first; until then a config that asks for one is refused. */
            snprintf(msg, msg_cap, "config: attestation.allowed_evidence: only \"sim\" and "
                                   "\"tpm\" are wired in this service");
            err = LUNA_ERR_CONFIG;
            goto out;
        }
    }
    if (s->allow_tpm) {
        const json_t *names;
        size_t nn;
        if (luna_json_get_string(root, "attestation_service.tpm.ak_ca", &s->tpm_ak_ca, NULL) !=
                LUNA_OK ||
            luna_json_get_string(root, "attestation_service.tpm.collateral", &s->tpm_collateral,
                                 NULL) != LUNA_OK ||
            luna_json_get_array(root, "attestation_service.tpm.ak_names", &names, &nn) !=
                LUNA_OK) {
            snprintf(msg, msg_cap, "config: attestation_service.tpm: required when tpm "
                                   "evidence is allowed");
            err = LUNA_ERR_CONFIG;
            goto out;
        }
        for (size_t i = 0; i < nn && i < ATT_TPM_SIGNERS_MAX; i++) {
            const char *hx = json_string_value(json_array_get(names, i));
            LUNA_TRY_ENSURE(hx != NULL, LUNA_ERR_CONFIG, bad);
            LUNA_TRY(luna_hex_decode(hx, strlen(hx), s->tpm_signers[i], ATT_TPM_SIGNER_MAX,
                                     &s->tpm_signer_len[i]),
                     bad);
            s->n_tpm_signers++;
        }
    }
    s->n_anchors = cc->n_trust_anchors;
    for (size_t i = 0; i < cc->n_trust_anchors && i < ATT_MAX_ANCHORS; i++)
        s->anchors[i] = cc->trust_anchors[i];
    s->min_tcb_level = get_u32(root, "attestation_service.min_tcb_level", 0);
    if (luna_json_get_string(root, "attestation_service.sim_collateral", &str, NULL) == LUNA_OK)
        s->sim_collateral = str;
    s->interval = get_u32(root, "attestation_service.interval_seconds", 60);
    s->grace = get_u32(root, "attestation_service.grace_seconds", s->interval);
    s->report_lifetime =
        get_u32(root, "attestation_service.report_lifetime_seconds", 2 * s->interval);
    s->max_evidence_age = get_u32(root, "attestation_service.max_evidence_age_seconds", 300);
    s->workers = get_u32(root, "attestation_service.workers", 2);
    s->http_timeout = get_u32(root, "attestation_service.http_timeout_seconds", 10);
    s->watchdog = get_u32(root, "attestation_service.watchdog_seconds", 3 * s->http_timeout);
    s->tee_cert_hours = get_u32(root, "attestation_service.tee_cert_hours", 24);
    LUNA_TRY(load_endpoint(root, "attestation_service.kms", &s->kms), bad);
    LUNA_TRY(load_endpoint(root, "attestation_service.audit", &s->audit), bad);
    if (json_object_get(json_object_get(root, "attestation_service"), "iam") != NULL)
        LUNA_TRY(load_endpoint(root, "attestation_service.iam", &s->iam), bad);
    if (luna_json_get_string(root, "attestation_service.webhook_url", &str, NULL) == LUNA_OK)
        LUNA_TRY(copy_str(s->webhook_url, sizeof s->webhook_url, str), bad);
    LUNA_TRY(luna_json_get_string(root, "attestation_service.report_key", &s->report_key, NULL),
             bad);
    if (luna_json_get_string(root, "attestation_service.report_kid", &str, NULL) == LUNA_OK)
        LUNA_TRY(copy_str(s->report_kid, sizeof s->report_kid, str), bad);
    else
        LUNA_TRY(copy_str(s->report_kid, sizeof s->report_kid, "attestation-1"), bad);
    LUNA_TRY(luna_json_get_string(root, "attestation_service.tee_ca_dir", &s->tee_ca_dir, NULL),
             bad);
    if (luna_json_get_string(root, "attestation_service.tee_ca_passphrase_file", &str, NULL) ==
        LUNA_OK)
        s->tee_ca_pass = str;
    if (luna_json_get_string(root, "attestation_service.iam_jwks", &str, NULL) == LUNA_OK)
        s->iam_jwks = str;
    /* Operator tokens minted for this service alone, in every profile. */
    s->token_audience = LUNA_AUD_ATTESTATION;
    if (luna_json_get_string(root, "attestation_service.token_audience", &str, NULL) == LUNA_OK)
        s->token_audience = str;
    if (luna_aud_check_config(s->token_audience, LUNA_AUD_ATTESTATION) != LUNA_OK) {
        snprintf(msg, msg_cap,
                 "config: attestation_service.token_audience: must be " LUNA_AUD_ATTESTATION);
        err = LUNA_ERR_CONFIG;
        goto out;
    }
    LUNA_TRY(luna_json_get_array(root, "attestation_service.deployments", &arr, &n), bad);
    for (size_t i = 0; i < n; i++) {
        att_deployment *d = &s->deployments[s->n_deployments];
        LUNA_TRY(load_deployment(json_array_get(arr, i), d), bad);
        if (att_settings_deployment(s, d->id) != NULL) {
            snprintf(msg, msg_cap, "config: attestation_service.deployments: an id is listed "
                                   "twice");
            err = LUNA_ERR_CONFIG;
            goto out;
        }
        s->n_deployments++;
    }
    *out = c;
    return LUNA_OK;
bad:
    snprintf(msg, msg_cap, "config: attestation_service: %s", luna_strerror(err));
    err = LUNA_ERR_CONFIG;
out:
    att_config_free(c);
    return err;
}

const att_settings *att_config_settings(const att_config *c)
{
    return &c->s;
}

void att_config_free(att_config *c)
{
    if (c == NULL)
        return;
    luna_config_free(c->cfg);
    free(c);
}

const att_deployment *att_settings_deployment(const att_settings *s, const char *id)
{
    for (size_t i = 0; i < s->n_deployments; i++)
        if (strcmp(s->deployments[i].id, id) == 0)
            return &s->deployments[i];
    return NULL;
}
