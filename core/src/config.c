/*
 * config.c - loading and checking component config files (luna/config.h).
 *
 * Owns: the common schema fragment, the file checks, environment
 * overrides and the cross-field rules that refuse unsafe settings.
 * Must never: start a component on a config it could not fully check, put
 * a config value in a message (storage URLs carry passwords), or parse
 * JSON any other way than through the strict parser.
 */
#include "luna/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luna/bytes.h"
#include "json_internal.h"

#define ENV_NAME_MAX 128u
#define ENV_SCHEMA_DEPTH_MAX 8u
#define CONFIG_JSON_DEPTH 16u

struct luna_config {
    json_t *root;
    luna_config_common common;
};

/* ---- the common schema ---- */

static const char *const profile_names[] = {"development", "production", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
/* The evidence types of DESIGN.md section 6. */
static const char *const evidence_names[] = {"sim", "tpm", "sev-snp", "tdx", "sgx", "nitro",
                                             NULL};

#define PATH_FIELD(n, fl)                                                                     \
    {.name = (n), .type = LUNA_JSON_T_STRING, .flags = (fl), .min_len = 1,                    \
     .max_len = LUNA_CONFIG_PATH_MAX, .pattern = LUNA_JSON_PAT_TEXT}

static const luna_json_field listen_fields[] = {
    {.name = "address", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 64,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "port", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 65535},
};
static const luna_json_schema listen_schema = {listen_fields, 2, NULL};

static const luna_json_field tls_fields[] = {
    PATH_FIELD("cert", LUNA_JSON_REQUIRED),
    PATH_FIELD("key", LUNA_JSON_REQUIRED),
    PATH_FIELD("ca", LUNA_JSON_REQUIRED),
};
static const luna_json_schema tls_schema = {tls_fields, 3, NULL};

static const luna_json_field storage_fields[] = {
    {.name = "url", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = 2048, .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema storage_schema = {storage_fields, 1, NULL};

static const luna_json_field log_fields[] = {
    {.name = "level", .type = LUNA_JSON_T_STRING, .one_of = level_names},
};
static const luna_json_schema log_schema = {log_fields, 1, NULL};

static const luna_json_field evidence_item = {
    .name = "item", .type = LUNA_JSON_T_STRING, .one_of = evidence_names};
static const luna_json_field anchor_item = PATH_FIELD("item", 0);
static const luna_json_field attestation_fields[] = {
    {.name = "allowed_evidence", .type = LUNA_JSON_T_ARRAY, .max_len = LUNA_CONFIG_MAX_EVIDENCE,
     .items = &evidence_item},
    {.name = "trust_anchors", .type = LUNA_JSON_T_ARRAY, .max_len = LUNA_CONFIG_MAX_ANCHORS,
     .items = &anchor_item},
};
static const luna_json_schema attestation_schema = {attestation_fields, 2, NULL};

static const luna_json_field common_fields[] = {
    {.name = "profile", .type = LUNA_JSON_T_STRING, .one_of = profile_names},
    {.name = "listen", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &listen_schema},
    {.name = "tls", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &tls_schema},
    {.name = "storage", .type = LUNA_JSON_T_OBJECT, .object = &storage_schema},
    {.name = "log", .type = LUNA_JSON_T_OBJECT, .object = &log_schema},
    {.name = "attestation", .type = LUNA_JSON_T_OBJECT, .object = &attestation_schema},
};
const luna_json_schema luna_config_common_schema = {common_fields, 6, NULL};

static const luna_json_limits config_limits = {
    .max_bytes = LUNA_CONFIG_MAX_BYTES,
    .max_depth = CONFIG_JSON_DEPTH,
    .max_string = LUNA_CONFIG_PATH_MAX,
    .max_items = 256,
};

/* ---- errors ---- */

static luna_err vfail(luna_config_error *err, luna_err code, const char *key, const char *fmt,
                      va_list ap) __attribute__((format(printf, 4, 0)));
static luna_err vfail(luna_config_error *err, luna_err code, const char *key, const char *fmt,
                      va_list ap)
{
    char why[LUNA_JSON_MSG_MAX];

    if (err == NULL)
        return code;
    (void)vsnprintf(why, sizeof(why), fmt, ap);
    err->code = code;
    (void)snprintf(err->key, sizeof(err->key), "%s", key != NULL ? key : "");
    if (err->key[0] != '\0')
        (void)snprintf(err->message, sizeof(err->message), "config: %s: %s", err->key, why);
    else
        (void)snprintf(err->message, sizeof(err->message), "config: %s", why);
    return code;
}

static luna_err fail_code(luna_config_error *err, luna_err code, const char *key,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static luna_err fail_code(luna_config_error *err, luna_err code, const char *key,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    luna_err e = vfail(err, code, key, fmt, ap);
    va_end(ap);
    return e;
}

luna_err luna_config_fail(luna_config_error *err, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    luna_err e = vfail(err, LUNA_ERR_CONFIG, key, fmt, ap);
    va_end(ap);
    return e;
}

static luna_err from_json_error(const luna_json_error *je, luna_config_error *err)
{
    luna_err code = je->code;
    if (code != LUNA_ERR_NOMEM && code != LUNA_ERR_INVALID_ARG)
        code = LUNA_ERR_CONFIG;
    return fail_code(err, code, je->path, "%s", je->message);
}

/* ---- environment overrides ---- */

/* Sets root.<dotted key> = val (stolen), creating objects on the way. */
static luna_err set_dotted(json_t *root, const char *key, json_t *val, luna_config_error *err)
{
    json_t *cur = root;
    const char *p = key;
    luna_err e = LUNA_OK;

    for (;;) {
        const char *dot = strchr(p, '.');
        size_t seg = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (dot == NULL) {
            if (json_object_setn_new(cur, p, seg, val) != 0)
                return LUNA_ERR_NOMEM;
            return LUNA_OK;
        }
        json_t *next = json_object_getn(cur, p, seg);
        if (next == NULL) {
            next = json_object();
            if (next == NULL || json_object_setn_new(cur, p, seg, next) != 0) {
                e = LUNA_ERR_NOMEM;
                break;
            }
        } else if (!json_is_object(next)) {
            e = luna_config_fail(err, key, "environment override under a non-object value");
            break;
        }
        cur = next;
        p = dot + 1;
    }
    json_decref(val);
    return e;
}

/* Strict decimal: optional '-', digits only, within int64. */
static bool parse_int(const char *s, json_int_t *out)
{
    char *end = NULL;
    long long v;
    const char *d = s[0] == '-' ? s + 1 : s;

    if (d[0] < '0' || d[0] > '9')
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return false;
    *out = (json_int_t)v;
    return true;
}

static luna_err env_value(const luna_json_field *f, const char *key, const char *env,
                          const char *s, json_t **out, luna_config_error *err)
{
    json_int_t iv;

    switch (f->type) {
    case LUNA_JSON_T_INT:
        if (!parse_int(s, &iv))
            return luna_config_fail(err, key, "environment override %s is not an integer", env);
        *out = json_integer(iv);
        break;
    case LUNA_JSON_T_BOOL:
        if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
            return luna_config_fail(err, key, "environment override %s is not true or false",
                                    env);
        *out = json_boolean(strcmp(s, "true") == 0);
        break;
    default:
        if (strlen(s) > LUNA_CONFIG_PATH_MAX)
            return luna_config_fail(err, key, "environment override %s is too long", env);
        *out = json_string(s); /* NULL for invalid UTF-8 as well */
        if (*out == NULL)
            return luna_config_fail(err, key, "environment override %s is not valid UTF-8",
                                    env);
        return LUNA_OK;
    }
    return *out != NULL ? LUNA_OK : LUNA_ERR_NOMEM;
}

static luna_err apply_env(json_t *root, const luna_json_schema *schema, const char *prefix,
                          const char *parent, size_t depth, luna_config_error *err)
{
    if (depth > ENV_SCHEMA_DEPTH_MAX)
        return LUNA_OK; /* deeper keys are simply not overridable */
    for (const luna_json_schema *s = schema; s != NULL; s = s->extends)
        for (size_t i = 0; i < s->n_fields; i++) {
            const luna_json_field *f = &s->fields[i];
            char key[LUNA_JSON_PATH_MAX], env[ENV_NAME_MAX];
            int n = snprintf(key, sizeof(key), "%s%s%s", parent, parent[0] ? "." : "", f->name);
            if (n < 0 || (size_t)n >= sizeof(key))
                continue;
            if (f->type == LUNA_JSON_T_OBJECT) {
                LUNA_GUARD(apply_env(root, f->object, prefix, key, depth + 1, err));
                continue;
            }
            if (f->type == LUNA_JSON_T_ARRAY || f->type == LUNA_JSON_T_REAL)
                continue;
            n = snprintf(env, sizeof(env), "%s%s", prefix, key);
            if (n < 0 || (size_t)n >= sizeof(env))
                continue;
            for (char *c = env + strlen(prefix); *c != '\0'; c++) {
                if (*c == '.' || *c == '-')
                    *c = '_';
                else if (*c >= 'a' && *c <= 'z')
                    *c = (char)(*c - 'a' + 'A');
            }
            const char *val = secure_getenv(env);
            if (val == NULL)
                continue;
            json_t *jv = NULL;
            LUNA_GUARD(env_value(f, key, env, val, &jv, err));
            LUNA_GUARD(set_dotted(root, key, jv, err));
        }
    return LUNA_OK;
}

/* ---- reading the common part ---- */

static const char *opt_string(const json_t *root, const char *key, const char *def)
{
    const char *s;
    if (luna_json_get_string(root, key, &s, NULL) != LUNA_OK)
        return def;
    return s;
}

static luna_err index_of(const char *const *names, const char *s, size_t *out)
{
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcmp(names[i], s) == 0) {
            *out = i;
            return LUNA_OK;
        }
    return LUNA_ERR_INTERNAL;
}

static luna_err fill_common(const json_t *root, luna_config_common *c)
{
    static const luna_log_level levels[] = {LUNA_LOG_DEBUG, LUNA_LOG_INFO, LUNA_LOG_WARN,
                                            LUNA_LOG_ERROR};
    const json_t *arr;
    int64_t port;
    size_t n, idx;

    memset(c, 0, sizeof(*c));
    c->profile = strcmp(opt_string(root, "profile", "production"), "development") == 0
                     ? LUNA_PROFILE_DEVELOPMENT
                     : LUNA_PROFILE_PRODUCTION;
    c->listen_address = opt_string(root, "listen.address", "127.0.0.1");
    LUNA_GUARD(luna_json_get_int(root, "listen.port", &port));
    if (port < 1 || port > 65535)
        return LUNA_ERR_INTERNAL; /* the schema said so */
    c->listen_port = (uint16_t)port;
    c->tls_cert = opt_string(root, "tls.cert", NULL);
    c->tls_key = opt_string(root, "tls.key", NULL);
    c->tls_ca = opt_string(root, "tls.ca", NULL);
    if (c->tls_cert == NULL || c->tls_key == NULL || c->tls_ca == NULL)
        return LUNA_ERR_INTERNAL;
    c->storage_url = opt_string(root, "storage.url", NULL);
    LUNA_GUARD(index_of(level_names, opt_string(root, "log.level", "info"), &idx));
    c->log_level = levels[idx];
    if (luna_json_get_array(root, "attestation.allowed_evidence", &arr, &n) == LUNA_OK) {
        if (n > LUNA_CONFIG_MAX_EVIDENCE)
            return LUNA_ERR_INTERNAL;
        for (size_t i = 0; i < n; i++)
            c->evidence[i] = json_string_value(json_array_get(arr, i));
        c->n_evidence = n;
    }
    if (luna_json_get_array(root, "attestation.trust_anchors", &arr, &n) == LUNA_OK) {
        if (n > LUNA_CONFIG_MAX_ANCHORS)
            return LUNA_ERR_INTERNAL;
        for (size_t i = 0; i < n; i++)
            c->trust_anchors[i] = json_string_value(json_array_get(arr, i));
        c->n_trust_anchors = n;
    }
    for (size_t i = 0; i < c->n_evidence; i++)
        if (c->evidence[i] == NULL)
            return LUNA_ERR_INTERNAL;
    for (size_t i = 0; i < c->n_trust_anchors; i++)
        if (c->trust_anchors[i] == NULL)
            return LUNA_ERR_INTERNAL;
    return LUNA_OK;
}

/* ---- cross-field rules ---- */

static luna_err check_file(const char *key, const char *path, luna_config_error *err,
                           struct stat *st_out)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return luna_config_fail(err, key, "file not found");
        return luna_config_fail(err, key, "file cannot be accessed");
    }
    if (!S_ISREG(st.st_mode))
        return luna_config_fail(err, key, "is not a regular file");
    if (st_out != NULL)
        *st_out = st;
    return LUNA_OK;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static luna_err cross_checks(const luna_config *cfg, const luna_config_spec *spec,
                             luna_config_error *err)
{
    const luna_config_common *c = &cfg->common;
    bool prod = c->profile == LUNA_PROFILE_PRODUCTION;
    unsigned char addr[sizeof(struct in6_addr)];
    struct stat st;

    if (inet_pton(AF_INET, c->listen_address, addr) != 1 &&
        inet_pton(AF_INET6, c->listen_address, addr) != 1)
        return luna_config_fail(err, "listen.address", "must be an IPv4 or IPv6 address");

    if (c->storage_url == NULL && spec->storage_required)
        return luna_config_fail(err, "storage", "is required");
    if (c->storage_url != NULL) {
        if (!starts_with(c->storage_url, "sqlite:") &&
            !starts_with(c->storage_url, "postgresql://") &&
            !starts_with(c->storage_url, "postgres://"))
            return luna_config_fail(err, "storage.url",
                                    "must start with sqlite:, postgresql:// or postgres://");
        if (prod && strcmp(c->storage_url, "sqlite::memory:") == 0)
            return luna_config_fail(err, "storage.url",
                                    "an in-memory database is refused in the production profile");
    }

    for (size_t i = 0; i < c->n_evidence; i++)
        for (size_t j = i + 1; j < c->n_evidence; j++)
            if (strcmp(c->evidence[i], c->evidence[j]) == 0)
                return luna_config_fail(err, "attestation.allowed_evidence",
                                        "lists a type twice");
    if (prod && luna_config_evidence_allowed(cfg, "sim"))
        return luna_config_fail(err, "attestation.allowed_evidence",
                                "\"sim\" evidence is insecure and refused in the production "
                                "profile");
    if (c->n_evidence > 0 && c->n_trust_anchors == 0)
        return luna_config_fail(err, "attestation.trust_anchors",
                                "required when evidence types are allowed");

    LUNA_GUARD(check_file("tls.cert", c->tls_cert, err, NULL));
    LUNA_GUARD(check_file("tls.key", c->tls_key, err, &st));
    if (prod && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        return luna_config_fail(err, "tls.key",
                                "key file must not be accessible by group or others "
                                "(chmod 600) in the production profile");
    LUNA_GUARD(check_file("tls.ca", c->tls_ca, err, NULL));
    for (size_t i = 0; i < c->n_trust_anchors; i++) {
        char key[64];
        (void)snprintf(key, sizeof(key), "attestation.trust_anchors[%zu]", i);
        LUNA_GUARD(check_file(key, c->trust_anchors[i], err, NULL));
    }
    if (spec->file_keys != NULL)
        for (size_t i = 0; spec->file_keys[i] != NULL; i++) {
            const char *path;
            luna_err e = luna_json_get_string(cfg->root, spec->file_keys[i], &path, NULL);
            if (e == LUNA_ERR_NOT_FOUND)
                continue;
            if (e != LUNA_OK)
                return luna_config_fail(err, spec->file_keys[i], "must be a file path");
            LUNA_GUARD(check_file(spec->file_keys[i], path, err, NULL));
        }

    if (spec->check != NULL) {
        luna_err e = spec->check(cfg, spec->check_arg, err);
        if (e != LUNA_OK) {
            if (err != NULL && err->message[0] == '\0')
                (void)luna_config_fail(err, "", "component check failed");
            return e;
        }
    }
    return LUNA_OK;
}

static bool extends_common(const luna_json_schema *s)
{
    for (size_t n = 0; s != NULL && n < LUNA_JSON_MAX_EXTENDS; s = s->extends, n++)
        if (s == &luna_config_common_schema)
            return true;
    return false;
}

/* st: the file's status, or NULL for text that did not come from a file. */
static luna_err load(const char *text, size_t len, const luna_config_spec *spec,
                     const struct stat *st, luna_config **out, luna_config_error *err)
{
    static const luna_config_spec no_spec = {0};
    luna_json_error je;
    luna_config *cfg = NULL;
    luna_err e;

    if (spec == NULL)
        spec = &no_spec;
    if (spec->schema != NULL && !extends_common(spec->schema))
        return fail_code(err, LUNA_ERR_INVALID_ARG, "",
                         "component schema does not extend the common schema");
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return fail_code(err, LUNA_ERR_NOMEM, "", "out of memory");

    e = luna_json_parse_unvalidated(text, len, &config_limits, &cfg->root, &je);
    if (e != LUNA_OK) {
        e = from_json_error(&je, err);
        goto out;
    }
    if (spec->env_prefix != NULL) {
        const luna_json_schema *schema =
            spec->schema != NULL ? spec->schema : &luna_config_common_schema;
        e = apply_env(cfg->root, schema, spec->env_prefix, "", 0, err);
        if (e != LUNA_OK)
            goto out;
    }
    e = luna_json_validate(cfg->root,
                           spec->schema != NULL ? spec->schema : &luna_config_common_schema,
                           &config_limits, &je);
    if (e != LUNA_OK) {
        e = from_json_error(&je, err);
        goto out;
    }
    e = fill_common(cfg->root, &cfg->common);
    if (e != LUNA_OK) {
        e = fail_code(err, e, "", "internal error reading the checked config");
        goto out;
    }
    if (st != NULL && cfg->common.profile == LUNA_PROFILE_PRODUCTION) {
        if ((st->st_mode & S_IWGRP) != 0) {
            e = fail_code(err, LUNA_ERR_PERMISSION, "",
                          "file is group-writable (refused in the production profile)");
            goto out;
        }
        if (st->st_uid != 0 && st->st_uid != geteuid()) {
            e = fail_code(err, LUNA_ERR_PERMISSION, "",
                          "file is owned by another user (refused in the production profile)");
            goto out;
        }
    }
    e = cross_checks(cfg, spec, err);
    if (e != LUNA_OK)
        goto out;
    *out = cfg;
    cfg = NULL;
out:
    luna_config_free(cfg);
    return e;
}

luna_err luna_config_load_text(const char *text, size_t len, const luna_config_spec *spec,
                               luna_config **out, luna_config_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    if (out == NULL || (text == NULL && len > 0))
        return fail_code(err, LUNA_ERR_INVALID_ARG, "", "invalid argument");
    *out = NULL;
    if (len > LUNA_CONFIG_MAX_BYTES)
        return fail_code(err, LUNA_ERR_TOO_LARGE, "", "larger than %u bytes",
                         (unsigned)LUNA_CONFIG_MAX_BYTES);
    return load(text, len, spec, NULL, out, err);
}

luna_err luna_config_load(const char *path, const luna_config_spec *spec, luna_config **out,
                          luna_config_error *err)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    luna_err e;
    int fd;

    if (err != NULL)
        memset(err, 0, sizeof(*err));
    if (out == NULL || path == NULL)
        return fail_code(err, LUNA_ERR_INVALID_ARG, "", "invalid argument");
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO must not hang start-up; it is refused below. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return fail_code(err, LUNA_ERR_NOT_FOUND, "", "file not found");
        if (errno == EACCES || errno == EPERM)
            return fail_code(err, LUNA_ERR_PERMISSION, "", "file cannot be opened");
        return fail_code(err, LUNA_ERR_IO, "", "file cannot be opened");
    }
    if (fstat(fd, &st) != 0) {
        e = fail_code(err, LUNA_ERR_IO, "", "file cannot be read");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        e = fail_code(err, LUNA_ERR_CONFIG, "", "not a regular file");
        goto out;
    }
    if ((st.st_mode & S_IWOTH) != 0) {
        e = fail_code(err, LUNA_ERR_PERMISSION, "", "file is world-writable");
        goto out;
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > LUNA_CONFIG_MAX_BYTES) {
        e = fail_code(err, LUNA_ERR_TOO_LARGE, "", "larger than %u bytes",
                      (unsigned)LUNA_CONFIG_MAX_BYTES);
        goto out;
    }
    /* One byte more than the cap, so a file that grew after fstat is caught. */
    buf = malloc(LUNA_CONFIG_MAX_BYTES + 1);
    if (buf == NULL) {
        e = fail_code(err, LUNA_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    while (got < LUNA_CONFIG_MAX_BYTES + 1) {
        ssize_t n = read(fd, buf + got, LUNA_CONFIG_MAX_BYTES + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = fail_code(err, LUNA_ERR_IO, "", "file cannot be read");
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got > LUNA_CONFIG_MAX_BYTES) {
        e = fail_code(err, LUNA_ERR_TOO_LARGE, "", "larger than %u bytes",
                      (unsigned)LUNA_CONFIG_MAX_BYTES);
        goto out;
    }
    e = load(buf, got, spec, &st, out, err);
out:
    if (buf != NULL) {
        luna_wipe(buf, got); /* the file may hold a database password */
        free(buf);
    }
    (void)close(fd);
    return e;
}

void luna_config_free(luna_config *cfg)
{
    if (cfg == NULL)
        return;
    json_decref(cfg->root);
    free(cfg);
}

const luna_config_common *luna_config_common_get(const luna_config *cfg)
{
    return cfg != NULL ? &cfg->common : NULL;
}

const json_t *luna_config_json(const luna_config *cfg)
{
    return cfg != NULL ? cfg->root : NULL;
}

bool luna_config_evidence_allowed(const luna_config *cfg, const char *type)
{
    if (cfg == NULL || type == NULL)
        return false;
    for (size_t i = 0; i < cfg->common.n_evidence; i++)
        if (strcmp(cfg->common.evidence[i], type) == 0)
            return true;
    return false;
}
