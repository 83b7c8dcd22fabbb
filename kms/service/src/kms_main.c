/*
 * kms_main.c - luna-kms: loads the config, opens the database (migrations),
 * starts the HSM process (refusing to run when the root's attributes are
 * wrong), loads IAM's and the attestation service's key sets, builds the
 * KMS's own evidence verifier, and serves the API over mTLS with a
 * rotation worker on a timer.
 *
 * Must never: start without its HSM root, audit sink or verifier; load a
 * PKCS#11 module itself; log the PIN, a token or a key.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "kms.h"
#include "kms_http.h"
#include "kms_verify.h"
#include "luna/audience.h"
#include "luna/config.h"
#include "luna/http.h"
#include "luna/log.h"
#include "luna/secret.h"

#define JWKS_MAX (64u * 1024u)

static const luna_json_field str_item = {.name = "s", .type = LUNA_JSON_T_STRING, .min_len = 1,
                                         .max_len = 160, .pattern = LUNA_JSON_PAT_PRINTABLE};
#define PATH_FIELD(n, req)                                                                         \
    {.name = (n), .type = LUNA_JSON_T_STRING, .flags = (req), .min_len = 1,                        \
     .max_len = LUNA_CONFIG_PATH_MAX, .pattern = LUNA_JSON_PAT_TEXT}
#define PRINT_FIELD(n)                                                                             \
    {.name = (n), .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 160,                        \
     .pattern = LUNA_JSON_PAT_PRINTABLE}
#define INT_FIELD(n, lo, hi) {.name = (n), .type = LUNA_JSON_T_INT, .min = (lo), .max = (hi)}
#define LIST_FIELD(n)                                                                              \
    {.name = (n), .type = LUNA_JSON_T_ARRAY, .min_len = 1, .max_len = KMS_MAX_CALLERS,            \
     .items = &str_item}

static const luna_json_field hsm_fields[] = {
    PATH_FIELD("module", LUNA_JSON_REQUIRED),
    {.name = "token", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 32, .pattern = LUNA_JSON_PAT_PRINTABLE},
    PATH_FIELD("pin_file", LUNA_JSON_REQUIRED),
    PATH_FIELD("hsm_path", 0),
    PRINT_FIELD("root_label"),
    PRINT_FIELD("mac_label"),
    INT_FIELD("request_timeout_ms", 100, 600000),
    INT_FIELD("backoff_min_ms", 1, 600000),
    INT_FIELD("backoff_max_ms", 1, 600000),
    PRINT_FIELD("user"),
};
static const luna_json_schema hsm_schema = {hsm_fields, 10, NULL};

static const luna_json_field audit_fields[] = {
    PATH_FIELD("file", 0),
    PRINT_FIELD("host"),
    INT_FIELD("port", 1, 65535),
    PRINT_FIELD("identity"),
};
static const luna_json_schema audit_schema = {audit_fields, 4, NULL};

static const luna_json_field ref_fields[] = {
    {.name = "deployment_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = KMS_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    PRINT_FIELD("evidence_type"),
    {.name = "mr_enclave", .type = LUNA_JSON_T_HEX, .flags = LUNA_JSON_REQUIRED, .min_len = 32,
     .max_len = 64},
    {.name = "mr_signer", .type = LUNA_JSON_T_HEX, .min_len = 32, .max_len = 64},
};
static const luna_json_schema ref_schema = {ref_fields, 4, NULL};
static const luna_json_field ref_item = {.name = "r", .type = LUNA_JSON_T_OBJECT,
                                         .object = &ref_schema};
static const luna_json_field col_fields[] = {
    PRINT_FIELD("evidence_type"),
    PATH_FIELD("file", LUNA_JSON_REQUIRED),
};
static const luna_json_schema col_schema = {col_fields, 2, NULL};
static const luna_json_field col_item = {.name = "c", .type = LUNA_JSON_T_OBJECT,
                                         .object = &col_schema};

static const luna_json_field callers_fields[] = {
    LIST_FIELD("otk"),
    LIST_FIELD("registry"),
    LIST_FIELD("keys"),
    PRINT_FIELD("attestation"),
    LIST_FIELD("deployments"),
};
static const luna_json_schema callers_schema = {callers_fields, 5, NULL};

/* IAM for developer-key lookups (kms_deployments.c); the TLS files default
 * to the top-level tls section. */
static const luna_json_field iam_fields[] = {
    PRINT_FIELD("host"),
    INT_FIELD("port", 1, 65535),
    PRINT_FIELD("identity"),
    PATH_FIELD("ca", 0),
    PATH_FIELD("cert", 0),
    PATH_FIELD("key", 0),
};
static const luna_json_schema iam_schema = {iam_fields, 6, NULL};

static const luna_json_field kms_fields[] = {
    {.name = "hsm", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &hsm_schema},
    {.name = "audit", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &audit_schema},
    PATH_FIELD("iam_jwks", LUNA_JSON_REQUIRED),
    PATH_FIELD("attestation_jwks", LUNA_JSON_REQUIRED),
    PRINT_FIELD("iam_issuer"),
    PRINT_FIELD("iam_audience"),
    PRINT_FIELD("attestation_issuer"),
    PATH_FIELD("tee_ca", 0),
    INT_FIELD("otk_ttl_sec", 1, 86400),
    INT_FIELD("nonce_ttl_sec", 1, 3600),
    INT_FIELD("report_max_age_sec", 1, 86400),
    INT_FIELD("evidence_max_age_sec", 1, 86400),
    INT_FIELD("min_tcb_level", 0, 0xffffffffLL),
    INT_FIELD("rotation_tick_ms", 10, 3600000),
    INT_FIELD("otk_key_rotation_sec", 0, 10LL * 366 * 86400),
    INT_FIELD("destroy_retention_sec", 0, 10LL * 366 * 86400),
    INT_FIELD("token_skew_sec", 0, LUNA_JWS_MAX_SKEW),
    INT_FIELD("db_busy_timeout_ms", 1, 60000),
    {.name = "references", .type = LUNA_JSON_T_ARRAY, .max_len = 64, .items = &ref_item},
    {.name = "collateral", .type = LUNA_JSON_T_ARRAY, .max_len = 8, .items = &col_item},
    /* {evidence_type, file}: each vendor root serves only its own type. */
    {.name = "trust_anchors", .type = LUNA_JSON_T_ARRAY, .min_len = 1,
     .max_len = LUNA_CONFIG_MAX_ANCHORS, .items = &col_item},
    PATH_FIELD("tpm_ak_ca", 0),
    {.name = "callers", .type = LUNA_JSON_T_OBJECT, .object = &callers_schema},
    PRINT_FIELD("user"),
    {.name = "iam", .type = LUNA_JSON_T_OBJECT, .object = &iam_schema},
};
static const luna_json_schema kms_section = {kms_fields, 25, NULL};
static const luna_json_field top_fields[] = {
    {.name = "kms", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &kms_section},
};
static const luna_json_schema kms_schema = {top_fields, 1, &luna_config_common_schema};

static const char *const file_keys[] = {"kms.iam_jwks", "kms.attestation_jwks", "kms.tee_ca",
                                        "kms.iam.ca", "kms.iam.cert", "kms.iam.key",
                                        "kms.hsm.pin_file", NULL};

typedef struct kms_daemon {
    luna_config *cfg;
    kms_svc svc;
    kms_http http;
    struct event_base *base;
    luna_http_server *server;
    struct event *tick;
    const char *iam_jwks;
    const char *att_jwks;
    struct event *hsm_watch; /* only after the privilege drop */
    pid_t hsm_pid;           /* the HSM process spawned while root */
    bool dropped;            /* running as kms.user */
    struct event *db_watch;  /* PostgreSQL only: reconnects after a server loss */
    const char *store_url;
    luna_store_options store_opts;
    int exit_code;
} kms_daemon;

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

static luna_err check_cfg(const luna_config *cfg, void *arg, luna_config_error *err)
{
    (void)arg;
    const char *file = cfg_str(cfg, "kms.audit.file", NULL);
    const char *host = cfg_str(cfg, "kms.audit.host", NULL);
    if ((file == NULL) == (host == NULL))
        return luna_config_fail(err, "kms.audit", "give exactly one of file or host");
    if (host != NULL && (cfg_int(cfg, "kms.audit.port", 0) == 0))
        return luna_config_fail(err, "kms.audit.port", "required with host");
    if ((cfg_str(cfg, "kms.iam.host", NULL) == NULL) != (cfg_int(cfg, "kms.iam.port", 0) == 0))
        return luna_config_fail(err, "kms.iam", "give host and port together");
    /* Tokens minted for the KMS alone, in every profile (docs/protocol.md). */
    if (luna_aud_check_config(cfg_str(cfg, "kms.iam_audience", LUNA_AUD_KMS), LUNA_AUD_KMS) !=
        LUNA_OK)
        return luna_config_fail(err, "kms.iam_audience", "must be " LUNA_AUD_KMS);
    return LUNA_OK;
}

static luna_err load_keyset(const char *path, luna_jws_keyset **out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return LUNA_ERR_IO;
    char *buf = malloc(JWKS_MAX + 1);
    if (buf == NULL) {
        (void)fclose(f);
        return LUNA_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, JWKS_MAX + 1, f);
    (void)fclose(f);
    luna_err err = n > JWKS_MAX ? LUNA_ERR_TOO_LARGE : luna_jws_keyset_load(buf, n, out);
    free(buf);
    return err;
}

/* The rotation worker; also picks up rolled-over JWKS files and collateral. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kms_daemon *d = arg;
    unsigned n = 0;
    luna_err err = kms_rotation_tick(&d->svc, &n);
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_WARN, KMS_COMPONENT, "rotation pass incomplete",
                  LUNA_LOG_ERR("error", err));
    err = kms_verify_refresh(d->svc.ver, luna_config_json(d->cfg));
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_WARN, KMS_COMPONENT, "collateral refresh refused",
                  LUNA_LOG_ERR("error", err));
    luna_jws_keyset *ks = NULL;
    if (load_keyset(d->iam_jwks, &ks) == LUNA_OK) {
        luna_jws_keyset_free(d->svc.iam_keys);
        d->svc.iam_keys = ks;
    }
    ks = NULL;
    if (load_keyset(d->att_jwks, &ks) == LUNA_OK) {
        luna_jws_keyset_free(d->svc.att_keys);
        d->svc.att_keys = ks;
    }
}

static void read_list(const luna_config *cfg, const char *key, const char *dflt,
                      const char **out, size_t *n)
{
    const json_t *arr = NULL;
    size_t cnt = 0;
    *n = 0;
    if (luna_json_get_array(luna_config_json(cfg), key, &arr, &cnt) == LUNA_OK) {
        for (size_t i = 0; i < cnt && i < KMS_MAX_CALLERS; i++)
            out[(*n)++] = json_string_value(json_array_get(arr, i));
    } else {
        out[(*n)++] = dflt;
    }
}

/*
 * After the drop the KMS can no longer start the HSM process under its own
 * uid, so the HSM process dying is the end of this KMS: key operations
 * already fail closed (hsm_unavailable); exit so the service manager
 * starts a fresh KMS as root, which spawns the HSM process and drops again.
 */
static void on_hsm_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kms_daemon *d = arg;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    bool gone = luna_hsm_client_pid(d->svc.hsm) != d->hsm_pid;
    /* WNOWAIT: the HSM client still reaps its child itself. */
    if (!gone && waitid(P_PID, (id_t)d->hsm_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == d->hsm_pid)
        gone = true;
    if (!gone)
        return;
    LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT,
              "hsm process lost and cannot be restarted without root: exiting so the "
              "service manager restarts the kms",
              LUNA_LOG_INT("hsm_pid", (int64_t)d->hsm_pid));
    d->exit_code = 3;
    (void)event_base_loopbreak(d->base);
}

/*
 * PostgreSQL: a server restart leaves the connection dead and the store
 * does not reconnect by itself.  Every second, when the server does not
 * answer a trivial query, a new connection is tried; until one works
 * every request answers 503 storage_unavailable (nothing is released:
 * a release commits or nothing happens).  The loop is the only thread
 * that touches the handle, so the swap is safe here.
 */
static void on_db_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kms_daemon *d = arg;
    if (luna_store_exec(d->svc.db, "SELECT 1", NULL, 0, NULL) == LUNA_OK)
        return;
    luna_store *fresh = NULL;
    luna_err err = luna_store_open(d->store_url, &d->store_opts, &fresh);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_WARN, KMS_COMPONENT, "database unavailable", LUNA_LOG_ERR("error", err));
        return;
    }
    luna_store_close(d->svc.db);
    d->svc.db = fresh;
    LUNA_LOGF(LUNA_LOG_INFO, KMS_COMPONENT, "database reconnected", LUNA_LOG_STR("store", "postgres"));
}

/* The uid the HSM process runs as when the KMS starts as root. */
static bool is_hsm_uid(const luna_config *cfg, uid_t uid)
{
    uid_t hu = 0;
    gid_t hg = 0;
    const char *hsm_user = cfg_str(cfg, "kms.hsm.user", "lunal-hsm");
    return kms_user_resolve(hsm_user, &hu, &hg) == LUNA_OK && hu == uid;
}

/*
 * Root only until the HSM process runs; then kms.user for good, before
 * anything else is opened.  Production refuses to serve as root (checked
 * before anything starts: see run()).
 */
static luna_err shed_root(kms_daemon *d, const char *user)
{
    uid_t uid = 0;
    gid_t gid = 0;
    luna_err err;
    if (geteuid() != 0)
        return LUNA_OK;
    if (user == NULL) {
        LUNA_LOGF(LUNA_LOG_WARN, KMS_COMPONENT,
                  "kms keeps root (no kms.user): development only, refused in production",
                  LUNA_LOG_UINT("uid", geteuid()));
        return LUNA_OK;
    }
    if ((err = kms_user_resolve(user, &uid, &gid)) != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT, "kms.user unknown or root",
                  LUNA_LOG_STR("user", user));
        return LUNA_ERR_CONFIG;
    }
    if (is_hsm_uid(d->cfg, uid)) {
        LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT, "kms.user must not be the hsm process's user",
                  LUNA_LOG_STR("user", user));
        return LUNA_ERR_CONFIG;
    }
    d->hsm_pid = luna_hsm_client_pid(d->svc.hsm);
    if ((err = kms_drop_privileges(uid, gid)) != LUNA_OK)
        return err;
    d->dropped = true;
    LUNA_LOGF(LUNA_LOG_INFO, KMS_COMPONENT, "privileges dropped", LUNA_LOG_UINT("uid", uid),
              LUNA_LOG_UINT("gid", gid));
    return LUNA_OK;
}

static int fail(const char *what, luna_err err)
{
    LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT, "refusing to start", LUNA_LOG_STR("step", what),
              LUNA_LOG_ERR("error", err));
    return err == LUNA_ERR_CONFIG ? 4 : 1;
}

static int run(kms_daemon *d, const char *config_path)
{
    static const luna_config_spec spec = {
        .schema = &kms_schema,
        .file_keys = file_keys,
        .storage_required = true,
        .env_prefix = "LUNA_KMS_",
        .check = check_cfg,
    };
    luna_config_error ce;
    luna_err err = luna_config_load(config_path, &spec, &d->cfg, &ce);
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-kms: %s\n", ce.message);
        return 2;
    }
    const luna_config *cfg = d->cfg;
    const luna_config_common *cc = luna_config_common_get(cfg);
    luna_log_set_level(cc->log_level);
    const char *run_as = cfg_str(cfg, "kms.user", NULL);
    if (geteuid() == 0 && run_as == NULL && cc->profile == LUNA_PROFILE_PRODUCTION) {
        LUNA_LOGF(LUNA_LOG_ERROR, KMS_COMPONENT,
                  "refusing to run as root in production: set kms.user",
                  LUNA_LOG_STR("key", "kms.user"));
        return 4;
    }
    kms_svc *s = &d->svc;
    s->set.otk_ttl_sec = cfg_int(cfg, "kms.otk_ttl_sec", 300);
    s->set.nonce_ttl_sec = cfg_int(cfg, "kms.nonce_ttl_sec", 60);
    s->set.report_max_age_sec = cfg_int(cfg, "kms.report_max_age_sec", 600);
    s->set.rotation_tick_ms = cfg_int(cfg, "kms.rotation_tick_ms", 60000);
    s->set.otk_key_rotation_sec = cfg_int(cfg, "kms.otk_key_rotation_sec", 30 * 86400);
    s->set.destroy_retention_sec = cfg_int(cfg, "kms.destroy_retention_sec", 7 * 86400);
    s->set.token_skew_sec = cfg_int(cfg, "kms.token_skew_sec", LUNA_JWS_DEFAULT_SKEW);
    s->set.iam_issuer = cfg_str(cfg, "kms.iam_issuer", "lunal://svc/iam");
    s->set.iam_audience = cfg_str(cfg, "kms.iam_audience", LUNA_AUD_KMS);
    s->set.attestation_issuer = cfg_str(cfg, "kms.attestation_issuer", "lunal://svc/attestation");

    luna_hsm_config hc = {
        .hsm_path = cfg_str(cfg, "kms.hsm.hsm_path", NULL),
        .module_path = cfg_str(cfg, "kms.hsm.module", NULL),
        .token_label = cfg_str(cfg, "kms.hsm.token", NULL),
        .pin_file = cfg_str(cfg, "kms.hsm.pin_file", NULL),
        .root_label = cfg_str(cfg, "kms.hsm.root_label", NULL),
        .mac_label = cfg_str(cfg, "kms.hsm.mac_label", NULL),
        .request_timeout_ms = (uint32_t)cfg_int(cfg, "kms.hsm.request_timeout_ms", 0),
        .backoff_min_ms = (uint32_t)cfg_int(cfg, "kms.hsm.backoff_min_ms", 0),
        .backoff_max_ms = (uint32_t)cfg_int(cfg, "kms.hsm.backoff_max_ms", 0),
        .hsm_user = cfg_str(cfg, "kms.hsm.user", NULL),
    };
    if ((err = luna_hsm_client_new(&hc, &s->hsm)) != LUNA_OK)
        return fail("hsm", err == LUNA_ERR_CONFIG ? LUNA_ERR_CONFIG : err);
    /* Root was needed for one thing: starting the HSM process under its
       own uid.  Everything from here on (database, audit sink, key sets,
       TLS files, the listener) is opened as kms.user, so every file it
       creates is kms.user's and nothing root-owned is held open. */
    if ((err = shed_root(d, run_as)) != LUNA_OK)
        return fail("kms.user", err);

    luna_store_options so_db = {
        .busy_timeout_ms = (uint32_t)cfg_int(cfg, "kms.db_busy_timeout_ms", 5000),
    };
    if ((err = luna_store_open(cc->storage_url, &so_db, &s->db)) != LUNA_OK)
        return fail("storage", err);
    d->store_url = cc->storage_url;
    d->store_opts = so_db;
    if ((err = kms_db_migrate(s->db)) != LUNA_OK)
        return fail("migrations", err);


    d->iam_jwks = cfg_str(cfg, "kms.iam_jwks", NULL);
    d->att_jwks = cfg_str(cfg, "kms.attestation_jwks", NULL);
    if ((err = load_keyset(d->iam_jwks, &s->iam_keys)) != LUNA_OK)
        return fail("kms.iam_jwks", err);
    if ((err = load_keyset(d->att_jwks, &s->att_keys)) != LUNA_OK)
        return fail("kms.attestation_jwks", err);

    const char *why = NULL;
    err = kms_verify_new(luna_config_json(cfg), cc->profile == LUNA_PROFILE_PRODUCTION,
                         cc->evidence, cc->n_evidence, cc->trust_anchors, cc->n_trust_anchors,
                         &s->ver, &why);
    if (err != LUNA_OK)
        return fail(why != NULL ? why : "verifier", err);

    const char *afile = cfg_str(cfg, "kms.audit.file", NULL);
    if (afile != NULL)
        err = kms_audit_open_file(afile, &s->audit);
    else
        err = kms_audit_open_http(cfg_str(cfg, "kms.audit.host", NULL),
                                  (uint16_t)cfg_int(cfg, "kms.audit.port", 0),
                                  cfg_str(cfg, "kms.audit.identity", "lunal://svc/audit"),
                                  cc->tls_ca, cc->tls_cert, cc->tls_key, &s->audit);
    if (err != LUNA_OK)
        return fail("audit", err);

    d->http.svc = s;
    read_list(cfg, "kms.callers.otk", "lunal://svc/gateway", d->http.callers.otk,
              &d->http.callers.n_otk);
    read_list(cfg, "kms.callers.registry", "lunal://svc/attestation", d->http.callers.registry,
              &d->http.callers.n_registry);
    if (json_object_get(json_object_get(luna_config_json(cfg), "kms"), "callers") == NULL ||
        luna_json_get_array(luna_config_json(cfg), "kms.callers.registry", NULL, NULL) !=
            LUNA_OK) {
        d->http.callers.registry[d->http.callers.n_registry++] = "lunal://svc/gateway";
        d->http.callers.registry[d->http.callers.n_registry++] = "lunal://svc/operator";
    }
    read_list(cfg, "kms.callers.keys", "lunal://svc/gateway", d->http.callers.keys,
              &d->http.callers.n_keys);
    d->http.callers.attestation = cfg_str(cfg, "kms.callers.attestation",
                                          "lunal://svc/attestation");
    read_list(cfg, "kms.callers.deployments", "lunal://svc/attestation",
              d->http.callers.deployments, &d->http.callers.n_deployments);
    d->http.iam = (kms_iam_peer){
        .host = cfg_str(cfg, "kms.iam.host", NULL),
        .port = (uint16_t)cfg_int(cfg, "kms.iam.port", 0),
        .identity = cfg_str(cfg, "kms.iam.identity", "lunal://svc/iam"),
        .ca = cfg_str(cfg, "kms.iam.ca", cc->tls_ca),
        .cert = cfg_str(cfg, "kms.iam.cert", cc->tls_cert),
        .key = cfg_str(cfg, "kms.iam.key", cc->tls_key),
    };
    kms_verify_set_lookup(s->ver, kms_deploy_lookup, s);

    d->base = event_base_new();
    if (d->base == NULL)
        return fail("event loop", LUNA_ERR_NOMEM);
    luna_http_server_opts so = {
        .component = KMS_COMPONENT,
        .bind_addr = cc->listen_address,
        .port = cc->listen_port,
        .tls = {.ca_file = cc->tls_ca, .cert_file = cc->tls_cert, .key_file = cc->tls_key,
                .tee_ca_file = cfg_str(cfg, "kms.tee_ca", NULL)},
        .max_body = 256u * 1024u,
        .handle_signals = true,
    };
    if ((err = luna_http_server_new(d->base, &so, &d->server)) != LUNA_OK)
        return fail("http server", err);
    if ((err = kms_http_register(&d->http, d->server)) != LUNA_OK)
        return fail("routes", err);
    d->tick = event_new(d->base, -1, EV_PERSIST, on_tick, d);
    struct timeval tv = {(time_t)(s->set.rotation_tick_ms / 1000),
                         (suseconds_t)((s->set.rotation_tick_ms % 1000) * 1000)};
    if (d->tick == NULL || event_add(d->tick, &tv) != 0)
        return fail("rotation worker", LUNA_ERR_NOMEM);
    if (luna_store_get_kind(s->db) == LUNA_STORE_POSTGRES) {
        d->db_watch = event_new(d->base, -1, EV_PERSIST, on_db_watch, d);
        struct timeval dtv = {1, 0};
        if (d->db_watch == NULL || event_add(d->db_watch, &dtv) != 0)
            return fail("database watch", LUNA_ERR_NOMEM);
    }
    if (d->dropped) {
        d->hsm_watch = event_new(d->base, -1, EV_PERSIST, on_hsm_watch, d);
        struct timeval wtv = {1, 0};
        if (d->hsm_watch == NULL || event_add(d->hsm_watch, &wtv) != 0)
            return fail("hsm watch", LUNA_ERR_NOMEM);
    }
    LUNA_LOGF(LUNA_LOG_INFO, KMS_COMPONENT, "serving",
              LUNA_LOG_UINT("port", luna_http_server_port(d->server)),
              LUNA_LOG_INT("hsm_pid", (int64_t)luna_hsm_client_pid(s->hsm)));
    (void)event_base_dispatch(d->base);
    luna_log(LUNA_LOG_INFO, KMS_COMPONENT, "stopped", NULL, 0);
    return d->exit_code;
}

static void cleanup(kms_daemon *d)
{
    if (d->tick != NULL)
        event_free(d->tick);
    if (d->hsm_watch != NULL)
        event_free(d->hsm_watch);
    if (d->db_watch != NULL)
        event_free(d->db_watch);
    luna_http_server_free(d->server);
    if (d->base != NULL)
        event_base_free(d->base);
    kms_audit_free(d->svc.audit);
    kms_verify_free(d->svc.ver);
    luna_jws_keyset_free(d->svc.iam_keys);
    luna_jws_keyset_free(d->svc.att_keys);
    luna_hsm_client_free(d->svc.hsm);
    luna_store_close(d->svc.db);
    luna_config_free(d->cfg);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "serve") != 0) {
            fprintf(stderr, "usage: luna-kms [serve] --config FILE\n");
            return 2;
        }
    }
    if (config == NULL) {
        fprintf(stderr, "usage: luna-kms [serve] --config FILE\n");
        return 2;
    }
    if (luna_process_harden() != LUNA_OK) {
        fprintf(stderr, "luna-kms: cannot harden the process\n");
        return 1;
    }
    (void)signal(SIGPIPE, SIG_IGN);
    kms_daemon d;
    memset(&d, 0, sizeof(d));
    int rc = run(&d, config);
    cleanup(&d);
    return rc;
}
