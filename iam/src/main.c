/*
 * main.c - the luna-iam command: `serve` runs the IAM service over mTLS;
 * `bootstrap` creates the first tenant and platform administrator and
 * hands out its API key once; `rotate-signing-key` schedules a new token
 * signing key (the running service picks it up on its next refresh).
 *
 * Must never: print a secret anywhere but the one bootstrap output the
 * operator asked for; start with a master key file others can read; leave
 * a default password or a second way to become platform administrator.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "iam.h"
#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/config.h"
#include "luna/http.h"
#include "luna/log.h"

#define COMPONENT "iam"

/* ---- config: the common schema plus the "iam" section ---- */

static const luna_json_field caller_item = {.name = "caller", .type = LUNA_JSON_T_STRING,
                                            .min_len = 1, .max_len = 160,
                                            .pattern = LUNA_JSON_PAT_PRINTABLE};
#define CALLERS_FIELD(n)                                                                           \
    {.name = (n), .type = LUNA_JSON_T_ARRAY, .min_len = 1, .max_len = IAM_MAX_CALLERS,            \
     .items = &caller_item}
static const luna_json_field callers_fields[] = {
    CALLERS_FIELD("authenticate"),
    CALLERS_FIELD("authorize"),
    CALLERS_FIELD("admin"),
    CALLERS_FIELD("jwks"),
    CALLERS_FIELD("developer_keys"),
};
static const luna_json_schema callers_schema = {callers_fields, 5, NULL};

static const luna_json_field iam_fields[] = {
    {.name = "master_key_file", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNA_CONFIG_PATH_MAX, .pattern = LUNA_JSON_PAT_TEXT},
    {.name = "token_ttl_sec", .type = LUNA_JSON_T_INT, .min = 1, .max = 86400},
    {.name = "clock_skew_sec", .type = LUNA_JSON_T_INT, .min = 0, .max = LUNA_JWS_MAX_SKEW},
    {.name = "key_publish_delay_sec", .type = LUNA_JSON_T_INT, .min = 0, .max = 604800},
    {.name = "key_refresh_sec", .type = LUNA_JSON_T_INT, .min = 1, .max = 3600},
    {.name = "api_key_default_ttl_sec", .type = LUNA_JSON_T_INT, .min = 1, .max = 315360000},
    {.name = "api_key_max_ttl_sec", .type = LUNA_JSON_T_INT, .min = 1, .max = 315360000},
    {.name = "issuer", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 256,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "audience", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 256,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "callers", .type = LUNA_JSON_T_OBJECT, .object = &callers_schema},
};
static const luna_json_schema iam_section = {iam_fields, 10, NULL};
static const luna_json_field top_fields[] = {
    {.name = "iam", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &iam_section},
};
static const luna_json_schema iam_schema = {top_fields, 1, &luna_config_common_schema};

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

static void cfg_settings(const luna_config *cfg, iam_settings *s)
{
    s->token_ttl = cfg_int(cfg, "iam.token_ttl_sec", 300);
    s->skew = cfg_int(cfg, "iam.clock_skew_sec", LUNA_JWS_DEFAULT_SKEW);
    s->publish_delay = cfg_int(cfg, "iam.key_publish_delay_sec", 300);
    s->refresh_sec = cfg_int(cfg, "iam.key_refresh_sec", 10);
    s->api_key_default_ttl = cfg_int(cfg, "iam.api_key_default_ttl_sec", 90 * 86400);
    s->api_key_max_ttl = cfg_int(cfg, "iam.api_key_max_ttl_sec", 365 * 86400);
    s->issuer = cfg_str(cfg, "iam.issuer", "lunal://svc/iam");
    s->audience = cfg_str(cfg, "iam.audience", LUNA_AUD_IAM);
}

static luna_err check_cfg(const luna_config *cfg, void *arg, luna_config_error *err)
{
    (void)arg;
    iam_settings s;
    cfg_settings(cfg, &s);
    if (s.api_key_default_ttl > s.api_key_max_ttl)
        return luna_config_fail(err, "iam.api_key_default_ttl_sec",
                                "must not exceed iam.api_key_max_ttl_sec");
    /* The admin API accepts IAM's own audience only, in every profile. */
    if (luna_aud_check_config(s.audience, LUNA_AUD_IAM) != LUNA_OK)
        return luna_config_fail(err, "iam.audience", "must be " LUNA_AUD_IAM);
    return LUNA_OK;
}

/* Reads one caller list; dflt when absent. */
static void cfg_callers(const luna_config *cfg, const char *key, const char *dflt,
                        iam_callers *out)
{
    const json_t *arr = NULL;
    size_t n = 0;
    out->n = 0;
    if (luna_json_get_array(luna_config_json(cfg), key, &arr, &n) == LUNA_OK) {
        for (size_t i = 0; i < n && i < IAM_MAX_CALLERS; i++)
            out->list[out->n++] = json_string_value(json_array_get(arr, i));
    } else {
        out->list[out->n++] = dflt;
    }
}

static luna_err load_config(const char *path, luna_config **out)
{
    static const luna_config_spec spec = {
        .schema = &iam_schema,
        .storage_required = true,
        .env_prefix = "LUNA_IAM_",
        .check = check_cfg,
    };
    luna_config_error ce;
    luna_err err = luna_config_load(path, &spec, out, &ce);
    if (err != LUNA_OK)
        fprintf(stderr, "luna-iam: %s\n", ce.message);
    return err;
}

static luna_err open_store(const luna_config *cfg, luna_store **out)
{
    const luna_config_common *c = luna_config_common_get(cfg);
    luna_err err = luna_store_open(c->storage_url, NULL, out);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot open storage", LUNA_LOG_ERR("err", err));
        return err;
    }
    err = iam_db_migrate(*out);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "storage migration failed",
                  LUNA_LOG_ERR("err", err), LUNA_LOG_STR("detail", luna_store_last_error(*out)));
        luna_store_close(*out);
        *out = NULL;
    }
    return err;
}

static luna_err load_master(const luna_config *cfg, luna_secret **out)
{
    const char *path = cfg_str(cfg, "iam.master_key_file", NULL);
    luna_err err = iam_master_load(path, out);
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT,
                  "cannot load the master key (run luna-iam bootstrap first; mode must be 0600)",
                  LUNA_LOG_ERR("err", err));
    return err;
}

/* ---- arguments ---- */

static const char *arg_value(int argc, char **argv, const char *name)
{
    for (int i = 2; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return NULL;
}

/* Every argument after the command must be a known "--name value" pair. */
static bool args_known(int argc, char **argv, const char *const *names)
{
    for (int i = 2; i < argc; i += 2) {
        bool known = false;
        for (size_t k = 0; names[k] != NULL; k++)
            known = known || strcmp(argv[i], names[k]) == 0;
        if (!known || i + 1 >= argc)
            return false;
    }
    return true;
}

static void usage(void)
{
    fputs("usage: luna-iam serve --config FILE\n"
          "       luna-iam bootstrap --config FILE --tenant ID [--principal ID]\n"
          "                          [--ttl-sec N] [--out FILE]\n"
          "       luna-iam rotate-signing-key --config FILE\n",
          stderr);
}

/* ---- serve ---- */

static int cmd_serve(int argc, char **argv)
{
    static const char *const names[] = {"--config", NULL};
    const char *path = arg_value(argc, argv, "--config");
    if (!args_known(argc, argv, names) || path == NULL) {
        usage();
        return 2;
    }
    luna_config *cfg = NULL;
    luna_store *db = NULL;
    luna_secret *master = NULL;
    struct event_base *base = NULL;
    luna_http_server *srv = NULL;
    iam_service *svc = NULL;
    int rc = 1;
    if (luna_process_harden() != LUNA_OK || load_config(path, &cfg) != LUNA_OK)
        goto done;
    const luna_config_common *c = luna_config_common_get(cfg);
    luna_log_set_level(c->log_level);
    if (open_store(cfg, &db) != LUNA_OK || load_master(cfg, &master) != LUNA_OK)
        goto done;
    base = event_base_new();
    if (base == NULL)
        goto done;
    iam_settings set;
    cfg_settings(cfg, &set);
    luna_err err = iam_service_new(base, db, master, &set, &svc);
    db = NULL; /* owned by the service now, also on error */
    master = NULL;
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot start the service", LUNA_LOG_ERR("err", err));
        goto done;
    }
    luna_http_server_opts o = {
        .component = COMPONENT,
        .bind_addr = c->listen_address,
        .port = c->listen_port,
        .tls = {.ca_file = c->tls_ca, .cert_file = c->tls_cert, .key_file = c->tls_key},
        .max_body = 64u * 1024u,
        .handle_signals = true,
        .ready = iam_service_ready,
        .ready_arg = svc,
    };
    err = luna_http_server_new(base, &o, &srv);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot start the server", LUNA_LOG_ERR("err", err));
        goto done;
    }
    iam_route_callers callers;
    cfg_callers(cfg, "iam.callers.authenticate", "lunal://svc/gateway", &callers.authenticate);
    cfg_callers(cfg, "iam.callers.authorize", "lunal://svc/*", &callers.authorize);
    cfg_callers(cfg, "iam.callers.admin", "lunal://svc/gateway", &callers.admin);
    cfg_callers(cfg, "iam.callers.jwks", LUNA_HTTP_ALLOW_ANY_PLATFORM, &callers.jwks);
    cfg_callers(cfg, "iam.callers.developer_keys", "lunal://svc/attestation", &callers.devkeys);
    if (luna_json_get_array(luna_config_json(cfg), "iam.callers.developer_keys", NULL, NULL) !=
        LUNA_OK)
        callers.devkeys.list[callers.devkeys.n++] = "lunal://svc/kms";
    err = iam_service_routes(svc, srv, &callers);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "bad route configuration", LUNA_LOG_ERR("err", err));
        goto done;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "listening",
              LUNA_LOG_UINT("port", luna_http_server_port(srv)));
    printf("PORT %u\n", (unsigned)luna_http_server_port(srv));
    fflush(stdout);
    rc = event_base_dispatch(base) < 0 ? 1 : 0;
done:
    luna_http_server_free(srv);
    iam_service_free(svc);
    if (base != NULL)
        event_base_free(base);
    luna_secret_free(master);
    luna_store_close(db);
    luna_config_free(cfg);
    return rc;
}

/* ---- bootstrap ---- */

/*
 * The key file is created (O_EXCL, 0600) before anything is stored, so
 * the common failures (exists, no such folder, no permission) cost
 * nothing; only the write itself can fail after the commit.
 */
static luna_err secret_file_open(const char *path, int *fd)
{
    *fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (*fd < 0)
        return errno == EEXIST ? LUNA_ERR_CONFLICT : LUNA_ERR_IO;
    return LUNA_OK;
}

/* Writes text to fd, fsyncs and closes it. */
static luna_err secret_file_write(int fd, const char *text)
{
    size_t len = strlen(text), put = 0;
    while (put < len) {
        ssize_t w = write(fd, text + put, len - put);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        put += (size_t)w;
    }
    bool ok = put == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    return ok ? LUNA_OK : LUNA_ERR_IO;
}

/* Writes the key line to stdout; an error includes a failed flush. */
static luna_err stdout_write(const char *text)
{
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, stdout) == len;
    ok = fflush(stdout) == 0 && ok;
    return ok ? LUNA_OK : LUNA_ERR_IO;
}

static int cmd_bootstrap(int argc, char **argv)
{
    static const char *const names[] = {"--config", "--tenant", "--principal", "--ttl-sec",
                                        "--out", NULL};
    const char *path = arg_value(argc, argv, "--config");
    const char *tenant = arg_value(argc, argv, "--tenant");
    const char *principal = arg_value(argc, argv, "--principal");
    const char *ttl_s = arg_value(argc, argv, "--ttl-sec");
    const char *out = arg_value(argc, argv, "--out");
    if (!args_known(argc, argv, names) || path == NULL || tenant == NULL) {
        usage();
        return 2;
    }
    if (principal == NULL)
        principal = "admin";
    if (!iam_id_valid(tenant) || !iam_id_valid(principal) ||
        strcmp(principal, IAM_ANONYMOUS) == 0) {
        fputs("luna-iam: tenant and principal ids are [a-z0-9_-]{1,64}\n", stderr);
        return 2;
    }
    luna_config *cfg = NULL;
    luna_store *db = NULL;
    luna_secret *master = NULL;
    char key[IAM_APIKEY_BUF], key_id[IAM_APIKEY_ID_BUF];
    int rc = 1, out_fd = -1;
    bool stored = false, created = false;
    memset(key, 0, sizeof(key));
    if (luna_process_harden() != LUNA_OK || load_config(path, &cfg) != LUNA_OK)
        goto done;
    iam_settings set;
    cfg_settings(cfg, &set);
    int64_t ttl = set.api_key_default_ttl;
    if (ttl_s != NULL) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(ttl_s, &end, 10);
        if (errno != 0 || end == ttl_s || *end != '\0' || v < 1 || v > set.api_key_max_ttl) {
            fputs("luna-iam: --ttl-sec must be 1..iam.api_key_max_ttl_sec\n", stderr);
            rc = 2;
            goto done;
        }
        ttl = (int64_t)v;
    }
    if (open_store(cfg, &db) != LUNA_OK)
        goto done;
    const char *mk = cfg_str(cfg, "iam.master_key_file", NULL);
    luna_err err = iam_master_create(mk);
    if (err == LUNA_OK)
        luna_log(LUNA_LOG_INFO, COMPONENT, "master key created", NULL, 0);
    else if (err != LUNA_ERR_CONFLICT) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot create the master key",
                  LUNA_LOG_ERR("err", err));
        goto done;
    }
    if (load_master(cfg, &master) != LUNA_OK)
        goto done;
    if (out != NULL) {
        err = secret_file_open(out, &out_fd);
        if (err != LUNA_OK) {
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT,
                      "cannot create the key file (it must not exist); nothing was stored",
                      LUNA_LOG_ERR("err", err));
            goto done;
        }
        created = true;
    }
    err = iam_tenant_create(db, master, tenant, NULL, principal, true, (int64_t)time(NULL), ttl,
                            key, key_id);
    if (err == LUNA_ERR_CONFLICT) {
        fputs("luna-iam: refused: a platform administrator (or this tenant) exists already\n",
              stderr);
        goto done;
    }
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "bootstrap failed", LUNA_LOG_ERR("err", err),
                  LUNA_LOG_STR("detail", luna_store_last_error(db)));
        goto done;
    }
    stored = true;
    char line[IAM_APIKEY_BUF + 1];
    (void)snprintf(line, sizeof(line), "%s\n", key);
    if (out != NULL) {
        err = secret_file_write(out_fd, line);
        out_fd = -1; /* closed, even on failure */
    } else {
        err = stdout_write(line);
    }
    luna_wipe(line, sizeof(line));
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot hand out the key; undoing the bootstrap",
                  LUNA_LOG_ERR("err", err), LUNA_LOG_STR("key_id", key_id));
        goto done;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "bootstrap: platform administrator created",
              LUNA_LOG_STR("tenant", tenant), LUNA_LOG_STR("principal", principal),
              LUNA_LOG_STR("key_id", key_id));
    rc = 0;
done:
    if (out_fd >= 0)
        (void)close(out_fd);
    if (rc != 0 && created)
        (void)unlink(out);
    if (rc != 0 && stored) {
        /* Nobody holds the key: drop the tenant so bootstrap can run again. */
        luna_err e = iam_tenant_drop_bootstrap(db, tenant, principal, key_id);
        if (e != LUNA_OK)
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot undo the bootstrap; revoke by hand",
                      LUNA_LOG_ERR("err", e), LUNA_LOG_STR("key_id", key_id));
    }
    luna_wipe(key, sizeof(key));
    luna_secret_free(master);
    luna_store_close(db);
    luna_config_free(cfg);
    return rc;
}

/* ---- rotate-signing-key ---- */

static int cmd_rotate(int argc, char **argv)
{
    static const char *const names[] = {"--config", NULL};
    const char *path = arg_value(argc, argv, "--config");
    if (!args_known(argc, argv, names) || path == NULL) {
        usage();
        return 2;
    }
    luna_config *cfg = NULL;
    luna_store *db = NULL;
    luna_secret *master = NULL;
    int rc = 1;
    if (luna_process_harden() != LUNA_OK || load_config(path, &cfg) != LUNA_OK ||
        open_store(cfg, &db) != LUNA_OK || load_master(cfg, &master) != LUNA_OK)
        goto done;
    iam_settings set;
    cfg_settings(cfg, &set);
    char kid[IAM_KID_MAX + 1];
    luna_err err = iam_signing_rotate(db, master, (int64_t)time(NULL), set.publish_delay,
                                      set.token_ttl, set.skew, kid);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "rotation failed", LUNA_LOG_ERR("err", err));
        goto done;
    }
    printf("%s\n", kid);
    rc = 0;
done:
    luna_secret_free(master);
    luna_store_close(db);
    luna_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(argv[1], "bootstrap") == 0)
        return cmd_bootstrap(argc, argv);
    if (strcmp(argv[1], "rotate-signing-key") == 0)
        return cmd_rotate(argc, argv);
    usage();
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
