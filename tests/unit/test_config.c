/*
 * Unit tests for the config module: the example files of tests/data/config/,
 * every schema and cross-field rule, the file checks, component schema
 * extension and environment overrides.  Each test works in a fresh
 * temporary folder holding the files the configs point at.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luna/config.h"
#include "luna_test.h"

static char g_dir[64];

static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    (void)unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal((ssize_t)len, write(fd, text, len));
    assert_int_equal(0, fchmod(fd, mode));
    close(fd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/luna_cfg_XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    write_file("cert.pem", "cert\n", 0644);
    write_file("key.pem", "key\n", 0600);
    write_file("ca.pem", "ca\n", 0644);
    write_file("anchor.pem", "anchor\n", 0644);
    write_file("anchor2.pem", "anchor2\n", 0644);
    write_file("hsm.so", "module\n", 0644);
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/adir", g_dir);
    return mkdir(sub, 0755);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Replaces every @DIR@ of tmpl by the test folder. */
static char *subst(const char *tmpl)
{
    size_t n = 0;
    for (const char *p = tmpl; (p = strstr(p, "@DIR@")) != NULL; p += 5)
        n++;
    char *out = malloc(strlen(tmpl) + n * strlen(g_dir) + 1);
    char *o = out;
    assert_non_null(out);
    for (const char *p = tmpl; *p != '\0';) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            memcpy(o, g_dir, strlen(g_dir));
            o += strlen(g_dir);
            p += 5;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static luna_err load_str(const char *tmpl, const luna_config_spec *spec, luna_config **cfg,
                         luna_config_error *err)
{
    char *text = subst(tmpl);
    luna_err e = luna_config_load_text(text, strlen(text), spec, cfg, err);
    free(text);
    return e;
}

/* Loads tmpl, expects failure with exactly this message. */
static void expect_fail(const char *tmpl, const luna_config_spec *spec, luna_err code,
                        const char *message)
{
    luna_config *cfg = (luna_config *)1;
    luna_config_error err;
    luna_err e = load_str(tmpl, spec, &cfg, &err);
    if (e != code || strcmp(err.message, message) != 0)
        fail_msg("got %d '%s', want %d '%s'", e, err.message, code, message);
    assert_null(cfg);
    assert_int_equal(code, err.code);
}

static char *example(const char *name)
{
    const char *src = getenv("LUNA_SOURCE_DIR");
    char path[512];
    size_t len;
    if (src == NULL)
        fail_msg("LUNA_SOURCE_DIR is not set (run through ctest)");
    snprintf(path, sizeof(path), "%s/tests/data/config/%s", src, name);
    uint8_t *raw = luna_test_read_file(path, &len);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, raw, len);
    text[len] = '\0';
    free(raw);
    return text;
}

#define TLS "\"tls\":{\"cert\":\"@DIR@/cert.pem\",\"key\":\"@DIR@/key.pem\",\"ca\":\"@DIR@/ca.pem\"}"
#define DEV "{\"profile\":\"development\",\"listen\":{\"port\":8443}," TLS
#define PROD "{\"profile\":\"production\",\"listen\":{\"port\":8443}," TLS

static void examples_load(void **state)
{
    (void)state;
    luna_config *cfg = NULL;
    luna_config_error err;
    const luna_config_common *c;
    char *t, *want;

    t = example("development.json");
    assert_luna_ok(load_str(t, NULL, &cfg, &err));
    free(t);
    c = luna_config_common_get(cfg);
    assert_int_equal(LUNA_PROFILE_DEVELOPMENT, c->profile);
    assert_string_equal("127.0.0.1", c->listen_address);
    assert_int_equal(8443, c->listen_port);
    want = subst("@DIR@/key.pem");
    assert_string_equal(want, c->tls_key);
    free(want);
    want = subst("sqlite:@DIR@/gateway.db");
    assert_string_equal(want, c->storage_url);
    free(want);
    assert_int_equal(LUNA_LOG_DEBUG, c->log_level);
    assert_int_equal(2, c->n_evidence);
    assert_string_equal("sim", c->evidence[0]);
    assert_true(luna_config_evidence_allowed(cfg, "tpm"));
    assert_false(luna_config_evidence_allowed(cfg, "tdx"));
    assert_int_equal(1, c->n_trust_anchors);
    luna_config_free(cfg);

    t = example("production.json");
    assert_luna_ok(load_str(t, NULL, &cfg, &err));
    free(t);
    c = luna_config_common_get(cfg);
    assert_int_equal(LUNA_PROFILE_PRODUCTION, c->profile);
    assert_string_equal("::", c->listen_address);
    assert_int_equal(443, c->listen_port);
    assert_int_equal(3, c->n_evidence);
    assert_int_equal(2, c->n_trust_anchors);
    assert_int_equal(LUNA_LOG_INFO, c->log_level);
    luna_config_free(cfg);

    /* Defaults. */
    t = example("minimal.json");
    assert_luna_ok(load_str(t, NULL, &cfg, &err));
    free(t);
    c = luna_config_common_get(cfg);
    assert_int_equal(LUNA_PROFILE_PRODUCTION, c->profile);
    assert_string_equal("127.0.0.1", c->listen_address);
    assert_int_equal(9000, c->listen_port);
    assert_null(c->storage_url);
    assert_int_equal(LUNA_LOG_INFO, c->log_level);
    assert_int_equal(0, c->n_evidence);
    assert_int_equal(0, c->n_trust_anchors);
    assert_false(luna_config_evidence_allowed(cfg, "sim"));
    luna_config_free(cfg);
}

static void schema_errors_name_the_key(void **state)
{
    (void)state;
    expect_fail("{\"profile\":\"development\",\"listen\":{\"port\":70000}," TLS "}", NULL,
                LUNA_ERR_CONFIG, "config: listen.port: must be an integer 1..65535");
    expect_fail("{\"profile\":\"development\",\"listen\":{\"port\":0}," TLS "}", NULL,
                LUNA_ERR_CONFIG, "config: listen.port: must be an integer 1..65535");
    expect_fail("{\"profile\":\"development\",\"listen\":{\"port\":\"80\"}," TLS "}", NULL,
                LUNA_ERR_CONFIG, "config: listen.port: must be an integer 1..65535");
    expect_fail("{\"profile\":\"development\"," TLS "}", NULL, LUNA_ERR_CONFIG,
                "config: listen: is required");
    expect_fail("{\"profile\":\"development\",\"listen\":{\"port\":1}}", NULL, LUNA_ERR_CONFIG,
                "config: tls: is required");
    expect_fail("{\"profile\":\"development\",\"listen\":{\"port\":1},\"tls\":{\"cert\":\"a\","
                "\"key\":\"b\"}}",
                NULL, LUNA_ERR_CONFIG, "config: tls.ca: is required");
    expect_fail(DEV ",\"bogus\":1}", NULL, LUNA_ERR_CONFIG, "config: bogus: unknown field");
    expect_fail(DEV ",\"log\":{\"level\":\"verbose\"}}", NULL, LUNA_ERR_CONFIG,
                "config: log.level: must be one of: debug, info, warn, error");
    expect_fail("{\"profile\":\"staging\",\"listen\":{\"port\":1}," TLS "}", NULL,
                LUNA_ERR_CONFIG, "config: profile: must be one of: development, production");
    expect_fail(DEV ",\"attestation\":{\"allowed_evidence\":[\"tpm\",\"sgx2\"]}}", NULL,
                LUNA_ERR_CONFIG,
                "config: attestation.allowed_evidence[1]: must be one of: sim, tpm, sev-snp, "
                "tdx, sgx, nitro");
    expect_fail("", NULL, LUNA_ERR_CONFIG, "config: empty body");

    /* Syntax errors give the byte offset, never the text around it. */
    static const struct {
        const char *tmpl, *prefix;
    } syntax[] = {
        {DEV "", "config: truncated JSON at byte "},
        {DEV "} x", "config: unexpected data after the JSON value at byte "},
        {DEV ",\"listen\":{\"port\":1}}", "config: duplicate object key at byte "},
        {DEV ",}", "config: invalid JSON syntax at byte "},
    };
    for (size_t i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++) {
        luna_config *cfg = NULL;
        luna_config_error err;
        char *text = subst(syntax[i].tmpl);
        assert_luna_err(LUNA_ERR_CONFIG, luna_config_load_text(text, strlen(text), NULL, &cfg,
                                                               &err));
        assert_null(cfg);
        assert_string_equal("", err.key);
        assert_true(strncmp(err.message, syntax[i].prefix, strlen(syntax[i].prefix)) == 0);
        size_t off = strtoul(err.message + strlen(syntax[i].prefix), NULL, 10);
        assert_true(off > 0 && off <= strlen(text));
        free(text);
    }
}

static void production_refuses_sim(void **state)
{
    (void)state;
    luna_config *cfg = NULL;
    luna_config_error err;
    const char *anchors = ",\"trust_anchors\":[\"@DIR@/anchor.pem\"]}}";
    char tmpl[1024];

    snprintf(tmpl, sizeof(tmpl), "%s%s", PROD ",\"attestation\":{\"allowed_evidence\":[\"tpm\",\"sim\"]",
             anchors);
    expect_fail(tmpl, NULL, LUNA_ERR_CONFIG,
                "config: attestation.allowed_evidence: \"sim\" evidence is insecure and refused "
                "in the production profile");
    /* Production is the default profile. */
    snprintf(tmpl, sizeof(tmpl), "%s%s",
             "{\"listen\":{\"port\":1}," TLS ",\"attestation\":{\"allowed_evidence\":[\"sim\"]",
             anchors);
    expect_fail(tmpl, NULL, LUNA_ERR_CONFIG,
                "config: attestation.allowed_evidence: \"sim\" evidence is insecure and refused "
                "in the production profile");
    /* Development accepts it. */
    snprintf(tmpl, sizeof(tmpl), "%s%s", DEV ",\"attestation\":{\"allowed_evidence\":[\"sim\"]",
             anchors);
    assert_luna_ok(load_str(tmpl, NULL, &cfg, &err));
    assert_true(luna_config_evidence_allowed(cfg, "sim"));
    luna_config_free(cfg);
}

static void evidence_needs_trust_anchors(void **state)
{
    (void)state;
    expect_fail(PROD ",\"attestation\":{\"allowed_evidence\":[\"tpm\"]}}", NULL, LUNA_ERR_CONFIG,
                "config: attestation.trust_anchors: required when evidence types are allowed");
    expect_fail(DEV ",\"attestation\":{\"allowed_evidence\":[\"sim\"],\"trust_anchors\":[]}}",
                NULL, LUNA_ERR_CONFIG,
                "config: attestation.trust_anchors: required when evidence types are allowed");
    expect_fail(DEV ",\"attestation\":{\"allowed_evidence\":[\"tpm\",\"tpm\"],"
                "\"trust_anchors\":[\"@DIR@/anchor.pem\"]}}",
                NULL, LUNA_ERR_CONFIG, "config: attestation.allowed_evidence: lists a type twice");
}

static void file_paths_must_exist(void **state)
{
    (void)state;
    expect_fail("{\"profile\":\"development\",\"listen\":{\"port\":1},\"tls\":{\"cert\":\"@DIR@/"
                "cert.pem\",\"key\":\"@DIR@/key.pem\",\"ca\":\"@DIR@/nope.pem\"}}",
                NULL, LUNA_ERR_CONFIG, "config: tls.ca: file not found");
    expect_fail("{\"profile\":\"development\",\"listen\":{\"port\":1},\"tls\":{\"cert\":\"@DIR@/"
                "adir\",\"key\":\"@DIR@/key.pem\",\"ca\":\"@DIR@/ca.pem\"}}",
                NULL, LUNA_ERR_CONFIG, "config: tls.cert: is not a regular file");
    expect_fail("{\"profile\":\"development\",\"listen\":{\"port\":1},\"tls\":{\"cert\":\"@DIR@/"
                "cert.pem\",\"key\":\"@DIR@/cert.pem/x\",\"ca\":\"@DIR@/ca.pem\"}}",
                NULL, LUNA_ERR_CONFIG, "config: tls.key: file not found");
    expect_fail(DEV ",\"attestation\":{\"allowed_evidence\":[\"tpm\"],\"trust_anchors\":["
                "\"@DIR@/anchor.pem\",\"@DIR@/missing.pem\"]}}",
                NULL, LUNA_ERR_CONFIG, "config: attestation.trust_anchors[1]: file not found");
}

static void production_key_permissions(void **state)
{
    (void)state;
    luna_config *cfg = NULL;
    luna_config_error err;

    write_file("key.pem", "key\n", 0640);
    expect_fail(PROD "}", NULL, LUNA_ERR_CONFIG,
                "config: tls.key: key file must not be accessible by group or others (chmod 600) "
                "in the production profile");
    assert_luna_ok(load_str(DEV "}", NULL, &cfg, &err)); /* development does not insist */
    luna_config_free(cfg);
    write_file("key.pem", "key\n", 0600);
    assert_luna_ok(load_str(PROD "}", NULL, &cfg, &err));
    luna_config_free(cfg);
}

static void listen_and_storage(void **state)
{
    (void)state;
    luna_config *cfg = NULL;
    luna_config_error err;
    static const luna_config_spec need_storage = {.storage_required = true};

    expect_fail("{\"profile\":\"development\",\"listen\":{\"address\":\"localhost\",\"port\":1}," TLS
                "}",
                NULL, LUNA_ERR_CONFIG, "config: listen.address: must be an IPv4 or IPv6 address");
    expect_fail("{\"profile\":\"development\",\"listen\":{\"address\":\"1.2.3.256\",\"port\":1}," TLS
                "}",
                NULL, LUNA_ERR_CONFIG, "config: listen.address: must be an IPv4 or IPv6 address");
    assert_luna_ok(load_str("{\"profile\":\"development\",\"listen\":{\"address\":\"::1\","
                            "\"port\":1}," TLS "}",
                            NULL, &cfg, &err));
    assert_string_equal("::1", luna_config_common_get(cfg)->listen_address);
    luna_config_free(cfg);

    expect_fail(DEV "}", &need_storage, LUNA_ERR_CONFIG, "config: storage: is required");
    expect_fail(DEV ",\"storage\":{\"url\":\"mysql://u:SECRETPW@h/db\"}}", NULL, LUNA_ERR_CONFIG,
                "config: storage.url: must start with sqlite:, postgresql:// or postgres://");
    expect_fail(PROD ",\"storage\":{\"url\":\"sqlite::memory:\"}}", NULL, LUNA_ERR_CONFIG,
                "config: storage.url: an in-memory database is refused in the production "
                "profile");
    expect_fail(DEV ",\"storage\":{}}", NULL, LUNA_ERR_CONFIG, "config: storage.url: is required");
    assert_luna_ok(load_str(DEV ",\"storage\":{\"url\":\"sqlite::memory:\"}}", &need_storage, &cfg,
                            &err));
    assert_string_equal("sqlite::memory:", luna_config_common_get(cfg)->storage_url);
    luna_config_free(cfg);
    assert_luna_ok(load_str(PROD ",\"storage\":{\"url\":\"postgres://u:pw@db/x\"}}", &need_storage,
                            &cfg, &err));
    luna_config_free(cfg);
}

/* ---- a component schema extending the common one ---- */

static const luna_json_field kms_section_fields[] = {
    {.name = "rotate_days", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1,
     .max = 365},
    {.name = "auto_rotate", .type = LUNA_JSON_T_BOOL},
    {.name = "hsm_module", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 4096},
};
static const luna_json_schema kms_section = {kms_section_fields, 3, NULL};
static const luna_json_field kms_fields[] = {
    {.name = "kms", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &kms_section},
};
static const luna_json_schema kms_schema = {kms_fields, 1, &luna_config_common_schema};
static const luna_json_schema not_extending = {kms_fields, 1, NULL};
static const char *const kms_files[] = {"kms.hsm_module", NULL};

static luna_err kms_check(const luna_config *cfg, void *arg, luna_config_error *err)
{
    int64_t days;
    int *calls = arg;
    (*calls)++;
    if (luna_json_get_int(luna_config_json(cfg), "kms.rotate_days", &days) != LUNA_OK)
        return luna_config_fail(err, "kms.rotate_days", "missing");
    if (luna_config_common_get(cfg)->profile == LUNA_PROFILE_PRODUCTION && days > 90)
        return luna_config_fail(err, "kms.rotate_days", "must be at most %d in production", 90);
    return LUNA_OK;
}

static void component_extension(void **state)
{
    (void)state;
    int calls = 0;
    luna_config_spec spec = {.schema = &kms_schema, .file_keys = kms_files, .check = kms_check,
                             .check_arg = &calls};
    luna_config *cfg = NULL;
    luna_config_error err;
    int64_t days;

    assert_luna_ok(load_str(PROD ",\"kms\":{\"rotate_days\":30,\"hsm_module\":\"@DIR@/hsm.so\"}}",
                            &spec, &cfg, &err));
    assert_int_equal(1, calls);
    assert_luna_ok(luna_json_get_int(luna_config_json(cfg), "kms.rotate_days", &days));
    assert_int_equal(30, days);
    assert_int_equal(8443, luna_config_common_get(cfg)->listen_port);
    luna_config_free(cfg);

    expect_fail(PROD "}", &spec, LUNA_ERR_CONFIG, "config: kms: is required");
    expect_fail(PROD ",\"kms\":{\"rotate_days\":0}}", &spec, LUNA_ERR_CONFIG,
                "config: kms.rotate_days: must be an integer 1..365");
    expect_fail(PROD ",\"kms\":{\"rotate_days\":1,\"x\":1}}", &spec, LUNA_ERR_CONFIG,
                "config: kms.x: unknown field");
    expect_fail(PROD ",\"kms\":{\"rotate_days\":1,\"hsm_module\":\"@DIR@/no.so\"}}", &spec,
                LUNA_ERR_CONFIG, "config: kms.hsm_module: file not found");
    expect_fail(PROD ",\"kms\":{\"rotate_days\":120}}", &spec, LUNA_ERR_CONFIG,
                "config: kms.rotate_days: must be at most 90 in production");
    calls = 0;
    assert_luna_ok(load_str(DEV ",\"kms\":{\"rotate_days\":120}}", &spec, &cfg, &err));
    assert_int_equal(1, calls);
    luna_config_free(cfg);
    /* The common schema alone does not know "kms". */
    expect_fail(PROD ",\"kms\":{\"rotate_days\":1}}", NULL, LUNA_ERR_CONFIG,
                "config: kms: unknown field");
    spec.schema = &not_extending;
    expect_fail(PROD ",\"kms\":{\"rotate_days\":1}}", &spec, LUNA_ERR_INVALID_ARG,
                "config: component schema does not extend the common schema");
}

static void environment_overrides(void **state)
{
    (void)state;
    int calls = 0;
    luna_config_spec spec = {.schema = &kms_schema, .env_prefix = "LUNA_T_", .check = kms_check,
                             .check_arg = &calls};
    luna_config *cfg = NULL;
    luna_config_error err;
    bool b;
    int64_t days;
    const char *base = "{\"profile\":\"development\",\"listen\":{}," TLS "}";

    /* Supplies keys the file lacks (listen.port, the whole kms section). */
    setenv("LUNA_T_LISTEN_PORT", "9443", 1);
    setenv("LUNA_T_KMS_ROTATE_DAYS", "7", 1);
    setenv("LUNA_T_KMS_AUTO_ROTATE", "true", 1);
    setenv("LUNA_T_LOG_LEVEL", "warn", 1);
    assert_luna_ok(load_str(base, &spec, &cfg, &err));
    assert_int_equal(9443, luna_config_common_get(cfg)->listen_port);
    assert_int_equal(LUNA_LOG_WARN, luna_config_common_get(cfg)->log_level);
    assert_luna_ok(luna_json_get_int(luna_config_json(cfg), "kms.rotate_days", &days));
    assert_int_equal(7, days);
    assert_luna_ok(luna_json_get_bool(luna_config_json(cfg), "kms.auto_rotate", &b));
    assert_true(b);
    luna_config_free(cfg);

    /* Overrides go through the same schema and rules. */
    setenv("LUNA_T_LISTEN_PORT", "70000", 1);
    expect_fail(base, &spec, LUNA_ERR_CONFIG, "config: listen.port: must be an integer 1..65535");
    setenv("LUNA_T_LISTEN_PORT", "12ab", 1);
    expect_fail(base, &spec, LUNA_ERR_CONFIG,
                "config: listen.port: environment override LUNA_T_LISTEN_PORT is not an integer");
    setenv("LUNA_T_LISTEN_PORT", " 12", 1);
    expect_fail(base, &spec, LUNA_ERR_CONFIG,
                "config: listen.port: environment override LUNA_T_LISTEN_PORT is not an integer");
    setenv("LUNA_T_LISTEN_PORT", "99999999999999999999", 1);
    expect_fail(base, &spec, LUNA_ERR_CONFIG,
                "config: listen.port: environment override LUNA_T_LISTEN_PORT is not an integer");
    setenv("LUNA_T_LISTEN_PORT", "443", 1);
    setenv("LUNA_T_KMS_AUTO_ROTATE", "yes", 1);
    expect_fail(base, &spec, LUNA_ERR_CONFIG,
                "config: kms.auto_rotate: environment override LUNA_T_KMS_AUTO_ROTATE is not "
                "true or false");
    unsetenv("LUNA_T_KMS_AUTO_ROTATE");
    setenv("LUNA_T_PROFILE", "production", 1);
    setenv("LUNA_T_KMS_ROTATE_DAYS", "120", 1);
    expect_fail(base, &spec, LUNA_ERR_CONFIG,
                "config: kms.rotate_days: must be at most 90 in production");
    unsetenv("LUNA_T_PROFILE");
    setenv("LUNA_T_LOG_LEVEL", "bad\x01", 1);
    expect_fail(base, &spec, LUNA_ERR_CONFIG,
                "config: log.level: must be one of: debug, info, warn, error");
    unsetenv("LUNA_T_LOG_LEVEL");
    /* A prefix-less spec ignores the environment. */
    spec.env_prefix = NULL;
    expect_fail(base, &spec, LUNA_ERR_CONFIG, "config: kms: is required");
    unsetenv("LUNA_T_LISTEN_PORT");
    unsetenv("LUNA_T_KMS_ROTATE_DAYS");
}

static void file_checks(void **state)
{
    (void)state;
    luna_config *cfg = NULL;
    luna_config_error err;
    char path[256], *text;

    text = subst(DEV "}");
    write_file("ok.json", text, 0644);
    snprintf(path, sizeof(path), "%s/ok.json", g_dir);
    assert_luna_ok(luna_config_load(path, NULL, &cfg, &err));
    assert_int_equal(8443, luna_config_common_get(cfg)->listen_port);
    luna_config_free(cfg);

    write_file("ww.json", text, 0646);
    snprintf(path, sizeof(path), "%s/ww.json", g_dir);
    assert_luna_err(LUNA_ERR_PERMISSION, luna_config_load(path, NULL, &cfg, &err));
    assert_string_equal("config: file is world-writable", err.message);
    assert_null(cfg);

    /* Group-writable: tolerated in development, refused in production. */
    write_file("gw.json", text, 0664);
    snprintf(path, sizeof(path), "%s/gw.json", g_dir);
    assert_luna_ok(luna_config_load(path, NULL, &cfg, &err));
    luna_config_free(cfg);
    free(text);
    text = subst(PROD "}");
    write_file("gw.json", text, 0664);
    assert_luna_err(LUNA_ERR_PERMISSION, luna_config_load(path, NULL, &cfg, &err));
    assert_string_equal("config: file is group-writable (refused in the production profile)",
                        err.message);
    write_file("gw.json", text, 0640);
    assert_luna_ok(luna_config_load(path, NULL, &cfg, &err));
    luna_config_free(cfg);
    free(text);

    snprintf(path, sizeof(path), "%s/adir", g_dir);
    assert_luna_err(LUNA_ERR_CONFIG, luna_config_load(path, NULL, &cfg, &err));
    assert_string_equal("config: not a regular file", err.message);
    assert_luna_err(LUNA_ERR_CONFIG, luna_config_load("/dev/null", NULL, &cfg, &err));
    snprintf(path, sizeof(path), "%s/fifo", g_dir);
    assert_int_equal(0, mkfifo(path, 0600));
    assert_luna_err(LUNA_ERR_CONFIG, luna_config_load(path, NULL, &cfg, &err)); /* no hang */
    snprintf(path, sizeof(path), "%s/absent.json", g_dir);
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_config_load(path, NULL, &cfg, &err));
    assert_string_equal("config: file not found", err.message);

    /* Over the size cap, even when the start is a valid config. */
    size_t big = LUNA_CONFIG_MAX_BYTES + 2;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big - 1);
    huge[0] = '{';
    huge[big - 2] = '}';
    huge[big - 1] = '\0';
    write_file("big.json", huge, 0644);
    snprintf(path, sizeof(path), "%s/big.json", g_dir);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_config_load(path, NULL, &cfg, &err));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_config_load_text(huge, big - 1, NULL, &cfg, &err));
    free(huge);

    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_config_load(NULL, NULL, &cfg, &err));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_config_load(path, NULL, NULL, &err));
    luna_config_free(NULL);
    assert_null(luna_config_common_get(NULL));
}

/* No message ever holds a config value (a storage URL holds a password). */
static void messages_hold_no_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        DEV ",\"storage\":{\"url\":\"mysql://u:SECRETPW@h/db\"}}",
        DEV ",\"storage\":{\"url\":\"sqlite:SECRETPW\",\"x\":\"SECRETPW\"}}",
        DEV ",\"storage\":{\"url\":\"postgres://u:SECRETPW@h/\\u0001\"}}",
        DEV ",\"storage\":{\"url\":\"postgres://u:SECRETPW@h/\",\"url\":\"SECRETPW\"}}",
        DEV ",\"storage\":{\"url\":SECRETPW}}",
        DEV ",\"profile\":\"SECRETPW\"}",
        ("{\"profile\":\"development\",\"listen\":{\"port\":1},\"tls\":{\"cert\":\"@DIR@/cert.pem\","
         "\"key\":\"@DIR@/SECRETPW\",\"ca\":\"@DIR@/ca.pem\"}}"),
        "{\"profile\":\"SECRETPW\",\"listen\":{\"port\":1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        luna_config *cfg = NULL;
        luna_config_error err;
        assert_int_not_equal(LUNA_OK, load_str(bad[i], NULL, &cfg, &err));
        assert_null(cfg);
        assert_true(strncmp(err.message, "config: ", 8) == 0);
        assert_null(strstr(err.message, "SECRETPW"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(examples_load, setup, teardown),
        cmocka_unit_test_setup_teardown(schema_errors_name_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(production_refuses_sim, setup, teardown),
        cmocka_unit_test_setup_teardown(evidence_needs_trust_anchors, setup, teardown),
        cmocka_unit_test_setup_teardown(file_paths_must_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(production_key_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(listen_and_storage, setup, teardown),
        cmocka_unit_test_setup_teardown(component_extension, setup, teardown),
        cmocka_unit_test_setup_teardown(environment_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(file_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(messages_hold_no_values, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
