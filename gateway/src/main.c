/*
 * main.c - the luna-gateway command: `luna-gateway serve --config FILE`
 * reads the config (docs/gateway.md), serves the public TLS listener and
 * prints "PORT <n>" on stdout once listening (for supervisors and tests).
 *
 * Must never: start with a config it could not fully check, start without
 * the audit log configured, or print anything but the port on stdout.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "gw.h"
#include "luna/audience.h"
#include "luna/config.h"
#include "luna/log.h"
#include "luna/secret.h"

#define COMPONENT "gateway"

/* ---- config schema: the "gateway" section ---- */

static const luna_json_field endpoint_fields[] = {
    {.name = "host", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = GW_HOST_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "port", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1, .max = 65535},
};
static const luna_json_schema endpoint_schema = {endpoint_fields, 2, NULL};

static const luna_json_field tee_fields[] = {
    {.name = "id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = GW_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "host", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = GW_HOST_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "port", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1, .max = 65535},
};
static const luna_json_schema tee_schema = {tee_fields, 3, NULL};
static const luna_json_field tee_item = {.name = "tee", .type = LUNA_JSON_T_OBJECT,
                                         .object = &tee_schema};

#define INT_FIELD(n, lo, hi) {.name = (n), .type = LUNA_JSON_T_INT, .min = (lo), .max = (hi)}

static const luna_json_field rate_fields[] = {
    INT_FIELD("auth_per_sec", 1, 100000),
    INT_FIELD("auth_burst", 1, 100000),
    INT_FIELD("tenant_per_sec", 1, 100000),
    INT_FIELD("tenant_burst", 1, 100000),
    INT_FIELD("key_per_sec", 1, 100000),
    INT_FIELD("key_burst", 1, 100000),
};
static const luna_json_schema rate_schema = {rate_fields, 6, NULL};

static const luna_json_field idem_fields[] = {
    INT_FIELD("entries", 1, 100000),
    INT_FIELD("ttl_sec", 1, 86400),
};
static const luna_json_schema idem_schema = {idem_fields, 2, NULL};

static const luna_json_field gw_fields[] = {
    {.name = "iam", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &endpoint_schema},
    {.name = "kms", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &endpoint_schema},
    {.name = "attestation", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &endpoint_schema},
    {.name = "audit", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &endpoint_schema},
    {.name = "witness", .type = LUNA_JSON_T_OBJECT, .object = &endpoint_schema},
    {.name = "tees", .type = LUNA_JSON_T_ARRAY, .min_len = 0, .max_len = GW_MAX_TEES,
     .items = &tee_item},
    {.name = "tee_ca", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = LUNA_CONFIG_PATH_MAX},
    {.name = "token_issuer", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 256,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "token_audience", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 256,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    INT_FIELD("clock_skew_sec", 0, 300),
    INT_FIELD("jwks_refresh_sec", 1, 3600),
    INT_FIELD("health_interval_sec", 1, 3600),
    INT_FIELD("upstream_timeout_sec", 1, 300),
    INT_FIELD("tee_timeout_sec", 1, 3600),
    INT_FIELD("client_timeout_sec", 1, 300),
    INT_FIELD("max_request_bytes", 1024, (int64_t)LUNA_HTTP_MAX_BODY_CAP),
    INT_FIELD("max_response_bytes", 1024, (int64_t)LUNA_HTTP_MAX_BODY_CAP + 4096),
    INT_FIELD("report_max_age_sec", 1, 86400),
    INT_FIELD("assignment_ttl_sec", 1, 86400),
    INT_FIELD("retry_after_sec", 1, 3600),
    {.name = "rate", .type = LUNA_JSON_T_OBJECT, .object = &rate_schema},
    {.name = "idempotency", .type = LUNA_JSON_T_OBJECT, .object = &idem_schema},
};
static const luna_json_schema gw_section = {gw_fields, sizeof(gw_fields) / sizeof(gw_fields[0]),
                                            NULL};
static const luna_json_field top_fields[] = {
    {.name = "gateway", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &gw_section},
};
static const luna_json_schema gw_schema = {top_fields, 1, &luna_config_common_schema};
static const char *const gw_files[] = {"gateway.tee_ca", NULL};

static int64_t cfg_int(const luna_config *cfg, const char *key, int64_t dflt)
{
    int64_t v;
    return luna_json_get_int(luna_config_json(cfg), key, &v) == LUNA_OK ? v : dflt;
}

static const char *cfg_str(const luna_config *cfg, const char *key, const char *dflt)
{
    const char *v;
    size_t n;
    return luna_json_get_string(luna_config_json(cfg), key, &v, &n) == LUNA_OK ? v : dflt;
}

static void cfg_endpoint(const luna_config *cfg, const char *name, gw_endpoint *ep)
{
    char key[64];
    (void)snprintf(key, sizeof(key), "gateway.%s.host", name);
    const char *h = cfg_str(cfg, key, "");
    (void)snprintf(ep->host, sizeof(ep->host), "%s", h);
    (void)snprintf(key, sizeof(key), "gateway.%s.port", name);
    ep->port = (uint16_t)cfg_int(cfg, key, 0);
}

static void cfg_settings(const luna_config *cfg, gw_settings *s)
{
    const luna_config_common *c = luna_config_common_get(cfg);
    gw_settings_defaults(s);
    s->tls.ca_file = c->tls_ca;
    s->tls.cert_file = c->tls_cert;
    s->tls.key_file = c->tls_key;
    s->tls.tee_ca_file = cfg_str(cfg, "gateway.tee_ca", NULL);
    s->bind_addr = c->listen_address;
    s->port = c->listen_port;
    cfg_endpoint(cfg, "iam", &s->iam);
    cfg_endpoint(cfg, "kms", &s->kms);
    cfg_endpoint(cfg, "attestation", &s->attestation);
    cfg_endpoint(cfg, "audit", &s->audit);
    cfg_endpoint(cfg, "witness", &s->witness); /* optional: empty = none */
    const json_t *arr = NULL;
    size_t n = 0;
    if (luna_json_get_array(luna_config_json(cfg), "gateway.tees", &arr, &n) == LUNA_OK) {
        for (size_t i = 0; i < n && i < GW_MAX_TEES; i++) {
            const json_t *t = json_array_get(arr, i);
            gw_tee_conf *tc = &s->tees[s->n_tees++];
            (void)snprintf(tc->id, sizeof(tc->id), "%s",
                           json_string_value(json_object_get(t, "id")));
            (void)snprintf(tc->ep.host, sizeof(tc->ep.host), "%s",
                           json_string_value(json_object_get(t, "host")));
            tc->ep.port = (uint16_t)json_integer_value(json_object_get(t, "port"));
        }
    }
    s->token_issuer = cfg_str(cfg, "gateway.token_issuer", s->token_issuer);
    s->token_audience = cfg_str(cfg, "gateway.token_audience", s->token_audience);
    s->clock_skew_sec = (unsigned)cfg_int(cfg, "gateway.clock_skew_sec", s->clock_skew_sec);
    s->jwks_refresh_sec = (unsigned)cfg_int(cfg, "gateway.jwks_refresh_sec", s->jwks_refresh_sec);
    s->health_interval_sec =
        (unsigned)cfg_int(cfg, "gateway.health_interval_sec", s->health_interval_sec);
    s->upstream_timeout_sec =
        (unsigned)cfg_int(cfg, "gateway.upstream_timeout_sec", s->upstream_timeout_sec);
    s->tee_timeout_sec = (unsigned)cfg_int(cfg, "gateway.tee_timeout_sec", s->tee_timeout_sec);
    s->client_timeout_sec =
        (unsigned)cfg_int(cfg, "gateway.client_timeout_sec", s->client_timeout_sec);
    s->max_request_bytes =
        (size_t)cfg_int(cfg, "gateway.max_request_bytes", (int64_t)s->max_request_bytes);
    s->max_response_bytes =
        (size_t)cfg_int(cfg, "gateway.max_response_bytes", (int64_t)s->max_response_bytes);
    s->report_max_age_sec =
        (unsigned)cfg_int(cfg, "gateway.report_max_age_sec", s->report_max_age_sec);
    s->assignment_ttl_sec =
        (unsigned)cfg_int(cfg, "gateway.assignment_ttl_sec", s->assignment_ttl_sec);
    s->retry_after_sec = (unsigned)cfg_int(cfg, "gateway.retry_after_sec", s->retry_after_sec);
    s->auth_rate = (double)cfg_int(cfg, "gateway.rate.auth_per_sec", (int64_t)s->auth_rate);
    s->auth_burst = (double)cfg_int(cfg, "gateway.rate.auth_burst", (int64_t)s->auth_burst);
    s->tenant_rate = (double)cfg_int(cfg, "gateway.rate.tenant_per_sec", (int64_t)s->tenant_rate);
    s->tenant_burst = (double)cfg_int(cfg, "gateway.rate.tenant_burst", (int64_t)s->tenant_burst);
    s->key_rate = (double)cfg_int(cfg, "gateway.rate.key_per_sec", (int64_t)s->key_rate);
    s->key_burst = (double)cfg_int(cfg, "gateway.rate.key_burst", (int64_t)s->key_burst);
    s->idem_entries = (size_t)cfg_int(cfg, "gateway.idempotency.entries", (int64_t)s->idem_entries);
    s->idem_ttl_sec = (unsigned)cfg_int(cfg, "gateway.idempotency.ttl_sec", s->idem_ttl_sec);
}

static luna_err check_cfg(const luna_config *cfg, void *arg, luna_config_error *err)
{
    (void)arg;
    const json_t *arr = NULL;
    size_t n = 0;
    /* The gateway accepts tokens minted for it alone, in every profile. */
    if (luna_aud_check_config(cfg_str(cfg, "gateway.token_audience", LUNA_AUD_GATEWAY),
                              LUNA_AUD_GATEWAY) != LUNA_OK)
        return luna_config_fail(err, "gateway.token_audience", "must be " LUNA_AUD_GATEWAY);
    if (luna_json_get_array(luna_config_json(cfg), "gateway.tees", &arr, &n) != LUNA_OK)
        return LUNA_OK;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(arr, i), "id")),
                       json_string_value(json_object_get(json_array_get(arr, j), "id"))) == 0)
                return luna_config_fail(err, "gateway.tees", "a TEE id is listed twice");
    return LUNA_OK;
}

static void usage(void)
{
    fprintf(stderr, "usage: luna-gateway serve --config FILE\n");
}

int main(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[1], "serve") != 0 || strcmp(argv[2], "--config") != 0) {
        usage();
        return 2;
    }
    static const luna_config_spec spec = {.schema = &gw_schema,
                                          .file_keys = gw_files,
                                          .env_prefix = "LUNA_GATEWAY_",
                                          .check = check_cfg};
    luna_config *cfg = NULL;
    struct event_base *base = NULL;
    luna_http_server *srv = NULL;
    gw_service *svc = NULL;
    luna_config_error cerr;
    int rc = 1;
    if (luna_process_harden() != LUNA_OK) {
        fprintf(stderr, "cannot harden the process\n");
        goto done;
    }
    if (luna_config_load(argv[3], &spec, &cfg, &cerr) != LUNA_OK) {
        fprintf(stderr, "%s\n", cerr.message);
        goto done;
    }
    luna_log_set_level(luna_config_common_get(cfg)->log_level);
    gw_settings set;
    cfg_settings(cfg, &set);
    base = event_base_new();
    if (base == NULL)
        goto done;
    luna_err err = gw_service_new(base, &set, &svc);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot start the service", LUNA_LOG_ERR("err", err));
        goto done;
    }
    luna_http_server_opts o = {
        .component = COMPONENT,
        .bind_addr = set.bind_addr,
        .port = set.port,
        .tls = {.ca_file = set.tls.ca_file, .cert_file = set.tls.cert_file,
                .key_file = set.tls.key_file},
        .max_body = set.max_request_bytes,
        .timeout_sec = set.client_timeout_sec,
        .handle_signals = true,
        .ready = gw_service_ready,
        .ready_arg = svc,
        .public_listener = true,
    };
    err = luna_http_server_new(base, &o, &srv);
    if (err == LUNA_OK)
        err = gw_service_routes(svc, srv);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot start the server", LUNA_LOG_ERR("err", err));
        goto done;
    }
    printf("PORT %u\n", (unsigned)luna_http_server_port(srv));
    fflush(stdout);
    rc = event_base_dispatch(base) < 0 ? 1 : 0;
done:
    /* Pending upstream calls are answered while the server still exists. */
    gw_service_free(svc);
    luna_http_server_free(srv);
    if (base != NULL)
        event_base_free(base);
    luna_config_free(cfg);
    return rc;
}
