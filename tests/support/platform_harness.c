/*
 * platform_harness.c - the real-process plumbing shared by the e2e tests
 * of the whole platform path (see platform_harness.h).  Owns only files in
 * the harness's temp folder and the processes it spawns; never reads a
 * service's keys, never waits without a bound.
 */
#include "platform_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/manifest.h"
#include "luna_test.h"
#include "measure.h"
#include "tee_config.h"

/* ---- files ---- */

void plh_path(const kmsh *k, char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", k->env.dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

void plh_write_path(const char *p, const void *data, size_t n, mode_t mode)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal((ssize_t)n, write(fd, data, n));
    assert_int_equal(0, close(fd));
}

void plh_write_text(const kmsh *k, const char *name, const char *text, mode_t mode)
{
    char p[HTU_PATH_MAX];
    plh_path(k, p, sizeof(p), name);
    plh_write_path(p, text, strlen(text), mode);
}

void plh_copy_file(const char *from, const char *to, const char *extra, mode_t mode)
{
    size_t n = 0;
    uint8_t *b = luna_test_read_file(from, &n);
    assert_non_null(b);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal((ssize_t)n, write(fd, b, n));
    if (extra != NULL)
        assert_int_equal((ssize_t)strlen(extra), write(fd, extra, strlen(extra)));
    assert_int_equal(0, close(fd));
    free(b);
}

/* The whole file, or NULL when it does not exist (yet): a log that a
 * service has not created is "not there yet", not a failure. */
static uint8_t *read_opt(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1u << 16, n = 0;
    uint8_t *b = malloc(cap);
    assert_non_null(b);
    for (;;) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        uint8_t *bigger = realloc(b, cap);
        if (bigger == NULL)
            free(b);
        assert_non_null(bigger);
        b = bigger;
    }
    fclose(f);
    *len = n;
    return b;
}

bool plh_file_has(const char *path, const char *needle)
{
    char p[HTU_PATH_MAX + 8];
    for (int i = 0; i < 2; i++) {
        int k = snprintf(p, sizeof(p), "%s%s", path, i == 0 ? "" : "-wal");
        assert_true(k > 0 && (size_t)k < sizeof(p));
        size_t n = 0;
        uint8_t *b = read_opt(p, &n);
        if (b == NULL)
            continue;
        bool found = memmem(b, n, needle, strlen(needle)) != NULL;
        free(b);
        if (found)
            return true;
    }
    return false;
}

bool plh_log_has(const kmsh *k, const char *name, const char *needle)
{
    char p[HTU_PATH_MAX];
    plh_path(k, p, sizeof(p), name);
    return plh_file_has(p, needle);
}

bool plh_wait_for(const kmsh *k, const char *name, const char *needle, int seconds)
{
    long end = htu_now_ms() + seconds * 1000L;
    while (htu_now_ms() < end) {
        if (plh_log_has(k, name, needle))
            return true;
        usleep(50000);
    }
    return plh_log_has(k, name, needle);
}

/* ---- processes ---- */

pid_t plh_spawn(const kmsh *k, char *const argv[], const char *log)
{
    char lp[HTU_PATH_MAX];
    plh_path(k, lp, sizeof(lp), log);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(lp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(127);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

void plh_stop(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = -1;
            return;
        }
        usleep(25000);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = -1;
}

bool plh_port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

void plh_wait_port(uint16_t port, pid_t pid, const char *what)
{
    for (int i = 0; i < 400; i++) {
        if (plh_port_open(port))
            return;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            fail_msg("%s exited before listening", what);
        usleep(50000);
    }
    fail_msg("%s did not listen on %u", what, (unsigned)port);
}

/* ---- the audit and attestation services ---- */

uint16_t plh_audit_setup(kmsh *k, const char *origin)
{
    char key[HTU_PATH_MAX], db[HTU_PATH_MAX], text[4096];
    plh_path(k, key, sizeof(key), "checkpoint.skey");
    plh_path(k, db, sizeof(db), "auditlog.db");
    char *kg[] = {(char *)LUNA_AUDIT_BIN, (char *)"keygen", (char *)"--name", (char *)origin,
                  (char *)"--out", key, NULL};
    assert_int_equal(0, htu_run(kg));
    assert_int_equal(0, htu_issue(&k->env, NULL, "lunal://svc/audit", "audit", NULL));
    uint16_t port = (uint16_t)htu_free_port();
    const char *d = k->env.dir;
    int n = snprintf(text, sizeof(text),
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s/audit.crt\",\"key\":\"%s/audit.key\",\"ca\":\"%s\"},"
             "\"storage\":{\"url\":\"sqlite:%s\"},\"log\":{\"level\":\"info\"},"
             "\"audit\":{\"origin\":\"%s\",\"key_file\":\"%s\","
             "\"iam_jwks\":\"%s/iam.jwks\",\"token_issuer\":\"lunal://svc/iam\","
             "\"token_audience\":\"" LUNA_AUD_AUDIT "\"}}",
             (unsigned)port, d, d, k->env.ca_crt, db, origin, key, d);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    plh_write_text(k, "audit.json", text, 0600);
    return port;
}

pid_t plh_audit_start(const kmsh *k, uint16_t port)
{
    char cfg[HTU_PATH_MAX];
    plh_path(k, cfg, sizeof(cfg), "audit.json");
    char *argv[] = {(char *)LUNA_AUDIT_BIN, (char *)"--config", cfg, NULL};
    pid_t pid = plh_spawn(k, argv, "audit-svc.log");
    plh_wait_port(port, pid, "luna-audit");
    return pid;
}

pid_t plh_att_spawn(const kmsh *k, const char *text, uint16_t port)
{
    plh_write_text(k, "att.json", text, 0600);
    char cfg[HTU_PATH_MAX];
    plh_path(k, cfg, sizeof(cfg), "att.json");
    char *argv[] = {(char *)LUNA_ATT_BIN, (char *)"--config", cfg, NULL};
    pid_t pid = plh_spawn(k, argv, "att.log");
    plh_wait_port(port, pid, "luna-attestation");
    return pid;
}

void plh_att_deployment(const uint8_t dev_pk[32], const uint8_t mr[32], const char *build_hash_hex,
                        char *out, size_t cap)
{
    char mr_hex[65], signer_hex[65], key_id[LUNA_MANIFEST_KEY_ID_LEN + 1];
    uint8_t signer[32];
    assert_luna_ok(luna_manifest_mr_signer(dev_pk, signer));
    assert_luna_ok(luna_manifest_key_id(dev_pk, key_id));
    assert_luna_ok(luna_hex_encode(mr, 32, mr_hex, sizeof(mr_hex)));
    assert_luna_ok(luna_hex_encode(signer, 32, signer_hex, sizeof(signer_hex)));
    int n = snprintf(out, cap,
                     "\"deployments\":[{\"id\":\"%s\",\"version\":\"1.0.0\",\"mr_enclave\":\"%s\","
                     "\"mr_signer\":\"%s\",\"build_hash\":\"sha256:%s\","
                     "\"developer_id\":\"dev_test\",\"key_id\":\"%s\"}]",
                     KMSH_DEPLOYMENT, mr_hex, signer_hex, build_hash_hex, key_id);
    assert_true(n > 0 && (size_t)n < cap);
}

int plh_att_call(const kmsh *k, uint16_t port, const char *cert, const char *method,
                 const char *path, json_t **out)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    luna_http_result res;
    htu_client_opts(&k->env, cert, port, "lunal://svc/attestation", &o, paths);
    o.timeout_sec = 20;
    memset(&res, 0, sizeof(res));
    assert_luna_ok(luna_http_fetch(&o, method, path, NULL, NULL, 0, &res));
    if (out != NULL)
        *out = json_loadb((const char *)res.body, res.body_len, 0, NULL);
    int status = res.status;
    luna_http_result_free(&res);
    return status;
}

static bool att_state_now(const kmsh *k, uint16_t port, const char *tee_id, const char *want)
{
    char path[128];
    json_t *ans = NULL;
    snprintf(path, sizeof(path), "/v1/attestation/tees/%s", tee_id);
    int st = plh_att_call(k, port, "gateway", "GET", path, &ans);
    const char *s = json_string_value(json_object_get(ans, "state"));
    bool ok = st == 200 && s != NULL && strcmp(s, want) == 0;
    json_decref(ans);
    return ok;
}

bool plh_att_state_is(const kmsh *k, uint16_t port, const char *tee_id, const char *want)
{
    for (int i = 0; i < 100; i++) {
        if (att_state_now(k, port, tee_id, want))
            return true;
        usleep(100000);
    }
    return false;
}

void plh_att_jwks_to_kms(const kmsh *k, uint16_t att_port)
{
    json_t *jwks = NULL;
    assert_int_equal(200, plh_att_call(k, att_port, "gateway", "GET", "/v1/attestation/jwks",
                                       &jwks));
    char *t = json_dumps(jwks, JSON_COMPACT);
    assert_non_null(t);
    plh_write_text(k, "att.jwks", t, 0644);
    free(t);
    json_decref(jwks);
}

/* ---- the KMS registry ---- */

void plh_tee_register(const kmsh *k, const char *tee_id, const char *tenant,
                      const char *tee_type, const uint8_t mr[32])
{
    char hex[65], body[512];
    kmsh_resp r;
    assert_luna_ok(luna_hex_encode(mr, 32, hex, sizeof(hex)));
    int n = snprintf(body, sizeof(body),
                     "{\"tee_id\":\"%s\",\"tenants\":[\"%s\"],\"deployment_id\":\"%s\","
                     "\"tee_type\":\"%s\",\"mr_enclave\":\"%s\"}",
                     tee_id, tenant, KMSH_DEPLOYMENT, tee_type, hex);
    assert_true(n > 0 && (size_t)n < sizeof(body));
    assert_int_equal(0, kmsh_call(k, "attestation", "POST", "/v1/kms/tees", NULL, body, &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
}

void plh_kms_status(const kmsh *k, const char *tee_id, char *out, size_t cap)
{
    char path[128];
    kmsh_resp r;
    snprintf(path, sizeof(path), "/v1/kms/tees/%s", tee_id);
    out[0] = '\0';
    if (kmsh_call(k, "attestation", "GET", path, NULL, NULL, &r) == 0 && r.status == 200) {
        const char *s = json_string_value(json_object_get(r.body, "status"));
        snprintf(out, cap, "%s", s != NULL ? s : "");
    }
    kmsh_resp_free(&r);
}

bool plh_wait_status(const kmsh *k, const char *tee_id, const char *want, long ms)
{
    char st[32];
    long end = htu_now_ms() + ms;
    do {
        plh_kms_status(k, tee_id, st, sizeof(st));
        if (strcmp(st, want) == 0)
            return true;
        usleep(50000);
    } while (htu_now_ms() < end);
    return false;
}

/* ---- the platform ---- */

void plh_teeca_init(kmsh *k)
{
    char teeca[HTU_PATH_MAX];
    plh_path(k, teeca, sizeof(teeca), "teeca");
    char *init[] = {(char *)LUNA_CA_BIN, (char *)"init", (char *)"--dir", teeca, NULL};
    assert_int_equal(0, htu_run(init));
    assert_int_equal(0, htu_issue(&k->env, NULL, "lunal://svc/tee-host", "tee-host", NULL));
}

void plh_runtime_copy(const kmsh *k, char rt[HTU_PATH_MAX], char bundle[HTU_PATH_MAX])
{
    const char *bin = getenv("LUNA_BINARY_DIR");
    assert_non_null(bin);
    char src[HTU_PATH_MAX];
    int n = snprintf(src, sizeof(src), "%s/tee/luna-tee", bin);
    assert_true(n > 0 && (size_t)n < sizeof(src));
    plh_path(k, rt, HTU_PATH_MAX, "luna-tee");
    plh_copy_file(src, rt, NULL, 0755);
    n = snprintf(bundle, HTU_PATH_MAX, "%s/tee/liblunal-demo-jobs.so", bin);
    assert_true(n > 0 && n < HTU_PATH_MAX);
}

void plh_runtime_config(const kmsh *k, const char *name, const uint8_t dev_pk[32], uint16_t port)
{
    char pk[64], text[4096], teeca[HTU_PATH_MAX];
    assert_luna_ok(luna_b64url_encode(dev_pk, 32, pk, sizeof(pk)));
    plh_path(k, teeca, sizeof(teeca), "teeca/ca.crt");
    int n = snprintf(text, sizeof(text),
             "{\"deployment_id\":\"%s\",\"developer_id\":\"dev_test\",\"developer_pk\":\"%s\","
             "\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"ca\":\"%s\",\"tee_ca\":\"%s\"},"
             "\"kms\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"limits\":{\"cpu_seconds\":2,\"wall_ms\":15000,\"memory_mib\":128,"
             "\"result_kib\":256,\"scratch_kib\":1024}}",
             KMSH_DEPLOYMENT, pk, (unsigned)port, k->env.ca_crt, teeca, (unsigned)k->port);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    plh_write_text(k, name, text, 0644);
}

void plh_measure(const kmsh *k, const char *runtime, const char *bundle, const char *config,
                 uint8_t mr[32])
{
    uint8_t exe[32], bun[32], ch[32];
    size_t n = 0;
    char p[HTU_PATH_MAX], why[256];
    luna_tee_config tc;
    plh_path(k, p, sizeof(p), config);
    uint8_t *cfg = luna_test_read_file(p, &n);
    assert_non_null(cfg);
    assert_luna_ok(luna_tee_config_parse(cfg, n, &tc, why, sizeof(why)));
    assert_luna_ok(luna_tee_config_hash(&tc, ch));
    assert_luna_ok(luna_tee_hash_path(runtime, exe));
    assert_luna_ok(luna_tee_hash_path(bundle, bun));
    assert_luna_ok(luna_tee_mr_enclave(exe, bun, ch, mr));
    free(cfg);
}

void plh_sign_manifest(const kmsh *k, const uint8_t dev_seed[32], const uint8_t mr[32],
                       const char *bundle, char bh_hex[65])
{
    luna_manifest m;
    memset(&m, 0, sizeof(m));
    snprintf(m.name, sizeof(m.name), "%s", KMSH_DEPLOYMENT);
    snprintf(m.version, sizeof(m.version), "1.0.0");
    snprintf(m.jobs[0], sizeof(m.jobs[0]), "wordstats");
    m.n_jobs = 1;
    assert_luna_ok(luna_tee_hash_path(bundle, m.build_hash));
    memcpy(m.mr_enclave, mr, 32);
    m.mr_enclave_len = 32;
    snprintf(m.developer_id, sizeof(m.developer_id), "dev_test");
    char *jws = NULL;
    assert_luna_ok(luna_manifest_sign(&m, dev_seed, &jws, NULL));
    plh_write_text(k, "app.jws", jws, 0644);
    free(jws);
    assert_luna_ok(luna_hex_encode(m.build_hash, 32, bh_hex, 65));
}

pid_t plh_host_spawn(const kmsh *k, const char *name, const char *text)
{
    char json[64], cfgp[HTU_PATH_MAX], log[96], exe[HTU_PATH_MAX];
    snprintf(json, sizeof(json), "%s.json", name);
    plh_write_text(k, json, text, 0600);
    plh_path(k, cfgp, sizeof(cfgp), json);
    snprintf(log, sizeof(log), "%s.log", name);
    snprintf(exe, sizeof(exe), "%s/tee/luna-tee-host", getenv("LUNA_BINARY_DIR"));
    char *argv[] = {exe, (char *)"run", (char *)"--config", cfgp, NULL};
    return plh_spawn(k, argv, log);
}
