/*
 * test_tee_quarantine.c - e2e.tee_quarantine: a TEE whose binary is
 * swapped while it serves is quarantined and its keys revoked within one
 * re-attestation interval, with every real process of that path:
 * luna-kms (and its luna-kms-hsm on a throwaway SoftHSM2 token), luna-audit,
 * luna-attestation, and luna-tee-host running the real luna-tee runtime
 * with the demo bundle and a signed manifest.  The test plays the gateway
 * (OTK issue), an operator (registry), and the webhook receiver.
 *
 * What "binary swapped while running" can mean for our outside-in
 * measurement (the platform hashes /proc/<pid>/exe and the bundle's
 * map_files entry at every evidence request):
 *   - writing into the running executable is refused by the kernel
 *     (ETXTBSY), and the bundle is mapped from a write-sealed memfd;
 *   - renaming another file over the path changes nothing that runs: the
 *     process keeps mapping the old inode, and e2e.tee_flow shows the
 *     measurement does not move (correctly: the code did not change);
 *   - so the code behind a TEE id changes only with a new process image,
 *     i.e. the platform (re)starts the TEE id from another binary.  That
 *     new image has lost the TEE's in-process keys and certificate, so to
 *     serve it must be admitted again, and the evidence it presents for
 *     the same TEE id carries the new measurement.
 * The test does exactly that: the host is stopped and a host started from
 * a modified copy of luna-tee for the same TEE id, config and port.  The
 * attestation service must treat that evidence as abnormal for an
 * admitted TEE: registry quarantined (asked from the KMS), every OTK of
 * the TEE revoked (a release is refused), the webhook alert received, the
 * audit entry in the real audit log, all within one interval.
 *
 * It also shows review finding L6 fixed against the real audit service:
 * with the log down, an admission is refused with a clear error, before
 * the KMS activates anything (registry stays pending), and succeeds when
 * the log is back.
 *
 * Root only (the platform reads /proc of a non-dumpable runtime).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kms_harness.h"
#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/hpke.h"
#include "luna/manifest.h"
#include "luna_test.h"
#include "measure.h"
#include "tee_config.h"

#define INTERVAL 2 /* re-attestation period, seconds */
#define TENANT "t1"

static kmsh K;
static pid_t g_audit = -1, g_att = -1, g_hook = -1, g_host = -1;
static uint16_t g_audit_port, g_att_port, g_hook_port, g_host_port;
static uint8_t g_dev_seed[32], g_dev_pk[32], g_mr[32];

/* ---- files and processes ---- */

static void pathf(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", K.env.dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_text(const char *name, const char *text, mode_t mode)
{
    char p[HTU_PATH_MAX];
    pathf(p, sizeof(p), name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal((ssize_t)n, write(fd, text, n));
    assert_int_equal(0, close(fd));
}

static void copy_file(const char *from, const char *to, const char *extra, mode_t mode)
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

/* The whole file, or NULL when it does not exist (yet). */
static uint8_t *read_opt(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1u << 16, n = 0;
    uint8_t *b = malloc(cap);
    assert_non_null(b);
    for (;;) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
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

/* Bytes of a file (and of its SQLite -wal beside it) contain needle. */
static bool file_has(const char *path, const char *needle)
{
    char p[HTU_PATH_MAX + 8];
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s%s", path, i == 0 ? "" : "-wal");
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

static bool log_has(const char *name, const char *needle)
{
    char p[HTU_PATH_MAX];
    pathf(p, sizeof(p), name);
    return file_has(p, needle);
}

static bool wait_for(const char *name, const char *needle, int seconds)
{
    long end = htu_now_ms() + seconds * 1000L;
    while (htu_now_ms() < end) {
        if (log_has(name, needle))
            return true;
        usleep(50000);
    }
    return log_has(name, needle);
}

static pid_t spawn(char *const argv[], const char *log)
{
    char lp[HTU_PATH_MAX];
    pathf(lp, sizeof(lp), log);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(lp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void stop(pid_t *pid)
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

static bool port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void wait_port(uint16_t port, pid_t pid, const char *what)
{
    for (int i = 0; i < 400; i++) {
        if (port_open(port))
            return;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            fail_msg("%s exited before listening", what);
        usleep(50000);
    }
    fail_msg("%s did not listen on %u", what, (unsigned)port);
}

/* ---- the webhook receiver: plain HTTP, one body per line in webhook.log ---- */

static void hook_serve(int lfd)
{
    char lp[HTU_PATH_MAX];
    pathf(lp, sizeof(lp), "webhook.log");
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[8192];
        size_t got = 0;
        long want = -1;
        const char *body = NULL;
        struct pollfd pfd = {.fd = c, .events = POLLIN};
        while (got < sizeof(buf) - 1 && poll(&pfd, 1, 5000) > 0) {
            ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = '\0';
            body = strstr(buf, "\r\n\r\n");
            if (body != NULL && want < 0) {
                const char *cl = strcasestr(buf, "Content-Length:");
                want = cl != NULL ? strtol(cl + 15, NULL, 10) : 0;
            }
            if (body != NULL && (long)(got - (size_t)(body + 4 - buf)) >= want)
                break;
        }
        if (body != NULL) {
            int fd = open(lp, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                (void)!write(fd, body + 4, strlen(body + 4));
                (void)!write(fd, "\n", 1);
                close(fd);
            }
        }
        static const char ok[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!write(c, ok, sizeof(ok) - 1);
        close(c);
    }
}

static void hook_start(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(0, bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
    socklen_t sl = sizeof(sa);
    assert_int_equal(0, getsockname(lfd, (struct sockaddr *)&sa, &sl));
    g_hook_port = ntohs(sa.sin_port);
    assert_int_equal(0, listen(lfd, 16));
    g_hook = fork();
    assert_true(g_hook >= 0);
    if (g_hook == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        hook_serve(lfd);
        _exit(0);
    }
    close(lfd);
}

/* ---- the real services ---- */

static void audit_start(void)
{
    char cfg[HTU_PATH_MAX];
    pathf(cfg, sizeof(cfg), "audit.json");
    char *argv[] = {(char *)LUNA_AUDIT_BIN, (char *)"--config", cfg, NULL};
    g_audit = spawn(argv, "audit-svc.log");
    wait_port(g_audit_port, g_audit, "luna-audit");
}

static void audit_setup(void)
{
    char key[HTU_PATH_MAX], db[HTU_PATH_MAX], text[4096];
    pathf(key, sizeof(key), "checkpoint.skey");
    pathf(db, sizeof(db), "auditlog.db");
    char *kg[] = {(char *)LUNA_AUDIT_BIN, (char *)"keygen", (char *)"--name",
                  (char *)"lunal.audit/quarantine-test", (char *)"--out", key, NULL};
    assert_int_equal(0, htu_run(kg));
    assert_int_equal(0, htu_issue(&K.env, NULL, "lunal://svc/audit", "audit", NULL));
    g_audit_port = (uint16_t)htu_free_port();
    const char *d = K.env.dir;
    snprintf(text, sizeof(text),
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s/audit.crt\",\"key\":\"%s/audit.key\",\"ca\":\"%s\"},"
             "\"storage\":{\"url\":\"sqlite:%s\"},\"log\":{\"level\":\"info\"},"
             "\"audit\":{\"origin\":\"lunal.audit/quarantine-test\",\"key_file\":\"%s\","
             "\"iam_jwks\":\"%s/iam.jwks\",\"token_issuer\":\"lunal://svc/iam\","
             "\"token_audience\":\"" LUNA_AUD_AUDIT "\"}}",
             (unsigned)g_audit_port, d, d, K.env.ca_crt, db, key, d);
    write_text("audit.json", text, 0600);
}

static void att_setup(const char *build_hash_hex)
{
    char text[8192], mr[65], signer_hex[65], key_id[LUNA_MANIFEST_KEY_ID_LEN + 1];
    uint8_t signer[32];
    assert_luna_ok(luna_manifest_mr_signer(g_dev_pk, signer));
    assert_luna_ok(luna_manifest_key_id(g_dev_pk, key_id));
    assert_luna_ok(luna_hex_encode(g_mr, 32, mr, sizeof(mr)));
    assert_luna_ok(luna_hex_encode(signer, 32, signer_hex, sizeof(signer_hex)));
    g_att_port = (uint16_t)htu_free_port();
    const char *d = K.env.dir;
    snprintf(text, sizeof(text),
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s/attestation.crt\",\"key\":\"%s/attestation.key\","
             "\"ca\":\"%s\"},\"storage\":{\"url\":\"sqlite:%s/att.db\"},"
             "\"log\":{\"level\":\"info\"},"
             "\"attestation\":{\"allowed_evidence\":[\"sim\"],"
             "\"trust_anchors\":[\"%s/platform/vendor.crt\"]},"
             "\"attestation_service\":{\"interval_seconds\":%d,\"grace_seconds\":60,"
             "\"max_evidence_age_seconds\":300,\"workers\":2,\"watchdog_seconds\":12,"
             "\"http_timeout_seconds\":5,\"min_tcb_level\":1,"
             "\"sim_collateral\":\"%s/platform/tcb.bin\","
             "\"kms\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"audit\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"webhook_url\":\"http://127.0.0.1:%u/alerts\",\"report_key\":\"%s/report.key\","
             "\"tee_ca_dir\":\"%s/teeca\",\"iam_jwks\":\"%s/iam.jwks\","
             "\"deployments\":[{\"id\":\"%s\",\"version\":\"1.0.0\",\"mr_enclave\":\"%s\","
             "\"mr_signer\":\"%s\",\"build_hash\":\"sha256:%s\",\"developer_id\":\"dev_test\","
             "\"key_id\":\"%s\"}]}}",
             (unsigned)g_att_port, d, d, K.env.ca_crt, d, d, INTERVAL, d, (unsigned)K.port,
             (unsigned)g_audit_port, (unsigned)g_hook_port, d, d, d, KMSH_DEPLOYMENT, mr,
             signer_hex, build_hash_hex, key_id);
    write_text("att.json", text, 0600);
    char cfg[HTU_PATH_MAX];
    pathf(cfg, sizeof(cfg), "att.json");
    char *argv[] = {(char *)LUNA_ATT_BIN, (char *)"--config", cfg, NULL};
    g_att = spawn(argv, "att.log");
    wait_port(g_att_port, g_att, "luna-attestation");
}

/* One request to the attestation service as identity <cert>. */
static int att_call(const char *cert, const char *method, const char *path, json_t **out)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    luna_http_result res;
    htu_client_opts(&K.env, cert, g_att_port, "lunal://svc/attestation", &o, paths);
    o.timeout_sec = 20;
    memset(&res, 0, sizeof(res));
    assert_luna_ok(luna_http_fetch(&o, method, path, NULL, NULL, 0, &res));
    if (out != NULL)
        *out = json_loadb((const char *)res.body, res.body_len, 0, NULL);
    int status = res.status;
    luna_http_result_free(&res);
    return status;
}

/* The KMS config from the harness, with the real audit service as its
 * sink, the TEE CA, and the platform's vendor root and collateral. */
static void kms_config(void)
{
    char teeca[HTU_PATH_MAX], from[HTU_PATH_MAX], to[HTU_PATH_MAX];
    pathf(teeca, sizeof(teeca), "teeca/ca.crt");
    snprintf(K.extra, sizeof(K.extra), ",\"tee_ca\":\"%s\"", teeca);
    memcpy(K.mr, g_mr, 32);
    assert_luna_ok(luna_manifest_mr_signer(g_dev_pk, K.signer));
    pathf(from, sizeof(from), "platform/vendor.crt");
    pathf(to, sizeof(to), "sim-root.pem");
    copy_file(from, to, NULL, 0644);
    pathf(from, sizeof(from), "platform/tcb.bin");
    pathf(to, sizeof(to), "tcb.bin");
    copy_file(from, to, NULL, 0644);
    kmsh_write_config(&K);
    size_t n = 0;
    char *text = (char *)luna_test_read_file(K.config, &n);
    assert_non_null(text);
    char file_sink[HTU_PATH_MAX + 32], host_sink[160];
    snprintf(file_sink, sizeof(file_sink), "\"audit\":{\"file\":\"%s\"}", K.audit);
    snprintf(host_sink, sizeof(host_sink),
             "\"audit\":{\"host\":\"127.0.0.1\",\"port\":%u,\"identity\":\"lunal://svc/audit\"}",
             (unsigned)g_audit_port);
    char *at = memmem(text, n, file_sink, strlen(file_sink));
    assert_non_null(at);
    FILE *f = fopen(K.config, "w");
    assert_non_null(f);
    fprintf(f, "%.*s%s%.*s", (int)(at - text), text, host_sink,
            (int)(n - (size_t)(at - text) - strlen(file_sink)), at + strlen(file_sink));
    assert_int_equal(0, fclose(f));
    free(text);
}

/* The attestation service's signing keys, as the KMS's attestation_jwks. */
static void att_jwks_to_kms(void)
{
    json_t *jwks = NULL;
    assert_int_equal(200, att_call("gateway", "GET", "/v1/attestation/jwks", &jwks));
    char *t = json_dumps(jwks, JSON_COMPACT);
    assert_non_null(t);
    write_text("att.jwks", t, 0644);
    free(t);
    json_decref(jwks);
}

static void tee_register(const char *tee_id)
{
    char mr[65], body[512];
    kmsh_resp r;
    assert_luna_ok(luna_hex_encode(g_mr, 32, mr, sizeof(mr)));
    snprintf(body, sizeof(body),
             "{\"tee_id\":\"%s\",\"tenants\":[\"" TENANT "\"],\"deployment_id\":\"%s\","
             "\"tee_type\":\"sim\",\"mr_enclave\":\"%s\"}",
             tee_id, KMSH_DEPLOYMENT, mr);
    assert_int_equal(0, kmsh_call(&K, "attestation", "POST", "/v1/kms/tees", NULL, body, &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
}

/* The registry status of a TEE, asked from the KMS. */
static void kms_status(const char *tee_id, char *out, size_t cap)
{
    char path[128];
    kmsh_resp r;
    snprintf(path, sizeof(path), "/v1/kms/tees/%s", tee_id);
    out[0] = '\0';
    if (kmsh_call(&K, "attestation", "GET", path, NULL, NULL, &r) == 0 && r.status == 200) {
        const char *s = json_string_value(json_object_get(r.body, "status"));
        snprintf(out, cap, "%s", s != NULL ? s : "");
    }
    kmsh_resp_free(&r);
}

static bool wait_status(const char *tee_id, const char *want, long ms)
{
    char st[32];
    long end = htu_now_ms() + ms;
    do {
        kms_status(tee_id, st, sizeof(st));
        if (strcmp(st, want) == 0)
            return true;
        usleep(50000);
    } while (htu_now_ms() < end);
    return false;
}

/* ---- the platform ---- */

static void runtime_config(const char *name, uint16_t port)
{
    char pk[64], text[4096], teeca[HTU_PATH_MAX];
    assert_luna_ok(luna_b64url_encode(g_dev_pk, 32, pk, sizeof(pk)));
    pathf(teeca, sizeof(teeca), "teeca/ca.crt");
    snprintf(text, sizeof(text),
             "{\"deployment_id\":\"%s\",\"developer_id\":\"dev_test\",\"developer_pk\":\"%s\","
             "\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"ca\":\"%s\",\"tee_ca\":\"%s\"},"
             "\"kms\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"limits\":{\"cpu_seconds\":2,\"wall_ms\":15000,\"memory_mib\":128,"
             "\"result_kib\":256,\"scratch_kib\":1024}}",
             KMSH_DEPLOYMENT, pk, (unsigned)port, K.env.ca_crt, teeca, (unsigned)K.port);
    write_text(name, text, 0644);
}

static void measure(const char *runtime, const char *bundle, const char *config, uint8_t mr[32])
{
    uint8_t exe[32], bun[32], ch[32];
    size_t n = 0;
    char p[HTU_PATH_MAX], why[256];
    luna_tee_config tc;
    pathf(p, sizeof(p), config);
    uint8_t *cfg = luna_test_read_file(p, &n);
    assert_non_null(cfg);
    assert_luna_ok(luna_tee_config_parse(cfg, n, &tc, why, sizeof(why)));
    assert_luna_ok(luna_tee_config_hash(&tc, ch));
    assert_luna_ok(luna_tee_hash_path(runtime, exe));
    assert_luna_ok(luna_tee_hash_path(bundle, bun));
    assert_luna_ok(luna_tee_mr_enclave(exe, bun, ch, mr));
    free(cfg);
}

static char g_bundle[HTU_PATH_MAX];

/* A host running one TEE from runtime; returns its pid. */
static pid_t host_start(const char *name, const char *runtime, const char *tee_id,
                        const char *rt_config)
{
    char text[8192], plat[HTU_PATH_MAX], man[HTU_PATH_MAX], rc[HTU_PATH_MAX], cfgp[HTU_PATH_MAX],
        log[96];
    pathf(plat, sizeof(plat), "platform");
    pathf(man, sizeof(man), "app.jws");
    pathf(rc, sizeof(rc), rt_config);
    const char *d = K.env.dir;
    snprintf(text, sizeof(text),
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s/tee-host.crt\",\"key\":\"%s/tee-host.key\",\"ca\":\"%s\"},"
             "\"tee_host\":{\"platform_dir\":\"%s\",\"runtime\":\"%s\",\"tcb_level\":1,"
             "\"attestation\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"tees\":[{\"id\":\"%s\",\"config\":\"%s\",\"manifest\":\"%s\",\"bundle\":\"%s\"}]}}",
             (unsigned)g_host_port, d, d, K.env.ca_crt, plat, runtime, (unsigned)g_att_port,
             tee_id, rc, man, g_bundle);
    char json[64];
    snprintf(json, sizeof(json), "%s.json", name);
    write_text(json, text, 0600);
    pathf(cfgp, sizeof(cfgp), json);
    snprintf(log, sizeof(log), "%s.log", name);
    char exe[HTU_PATH_MAX];
    snprintf(exe, sizeof(exe), "%s/tee/luna-tee-host", getenv("LUNA_BINARY_DIR"));
    char *argv[] = {exe, (char *)"run", (char *)"--config", cfgp, NULL};
    return spawn(argv, log);
}

static bool att_state_now(const char *tee_id, const char *want)
{
    char path[128];
    json_t *ans = NULL;
    snprintf(path, sizeof(path), "/v1/attestation/tees/%s", tee_id);
    int st = att_call("gateway", "GET", path, &ans);
    const char *s = json_string_value(json_object_get(ans, "state"));
    bool ok = st == 200 && s != NULL && strcmp(s, want) == 0;
    json_decref(ans);
    return ok;
}

/* The KMS registry is updated before the attestation service records its
 * own state for the same event, so the second is awaited, not read. */
static bool att_state_is(const char *tee_id, const char *want)
{
    for (int i = 0; i < 100; i++) {
        if (att_state_now(tee_id, want))
            return true;
        usleep(100000);
    }
    return false;
}

static int setup(void **state)
{
    (void)state;
    const char *bin = getenv("LUNA_BINARY_DIR");
    assert_non_null(bin);
    kmsh_setup(&K, NULL);
    /* The TEE CA, as the attestation service will load it. */
    char teeca[HTU_PATH_MAX];
    pathf(teeca, sizeof(teeca), "teeca");
    char *init[] = {(char *)LUNA_CA_BIN, (char *)"init", (char *)"--dir", teeca, NULL};
    assert_int_equal(0, htu_run(init));
    assert_int_equal(0, htu_issue(&K.env, NULL, "lunal://svc/tee-host", "tee-host", NULL));
    /* A certificate for lunal://tee/tee-q from the TEE CA: the test's
       release attempts present the swapped TEE's identity. */
    assert_int_equal(0, htu_issue(&K.env, teeca, "lunal://tee/tee-q", "probe-tee-q", NULL));

    /* The simulated platform (vendor root, platform key, TCB collateral). */
    char exe[HTU_PATH_MAX], plat[HTU_PATH_MAX];
    snprintf(exe, sizeof(exe), "%s/tee/luna-tee-host", bin);
    pathf(plat, sizeof(plat), "platform");
    char *pinit[] = {exe, (char *)"init-platform", (char *)"--dir", plat, NULL};
    assert_int_equal(0, htu_run(pinit));

    /* Developer, runtime copy, runtime configs, the expected measurement
       and the signed manifest. */
    assert_luna_ok(luna_ed25519_keygen(g_dev_seed, g_dev_pk));
    char rt_src[HTU_PATH_MAX], rt[HTU_PATH_MAX];
    snprintf(rt_src, sizeof(rt_src), "%s/tee/luna-tee", bin);
    pathf(rt, sizeof(rt), "luna-tee");
    copy_file(rt_src, rt, NULL, 0755);
    snprintf(g_bundle, sizeof(g_bundle), "%s/tee/liblunal-demo-jobs.so", bin);
    runtime_config("rt-q.json", (uint16_t)htu_free_port());
    runtime_config("rt-r.json", (uint16_t)htu_free_port());
    measure(rt, g_bundle, "rt-q.json", g_mr);
    uint8_t other[32];
    measure(rt, g_bundle, "rt-r.json", other);
    assert_memory_equal(g_mr, other, 32); /* the port is not measured */
    luna_manifest m;
    memset(&m, 0, sizeof(m));
    snprintf(m.name, sizeof(m.name), "%s", KMSH_DEPLOYMENT);
    snprintf(m.version, sizeof(m.version), "1.0.0");
    snprintf(m.jobs[0], sizeof(m.jobs[0]), "wordstats");
    m.n_jobs = 1;
    assert_luna_ok(luna_tee_hash_path(g_bundle, m.build_hash));
    memcpy(m.mr_enclave, g_mr, 32);
    m.mr_enclave_len = 32;
    snprintf(m.developer_id, sizeof(m.developer_id), "dev_test");
    char *jws = NULL;
    assert_luna_ok(luna_manifest_sign(&m, g_dev_seed, &jws, NULL));
    write_text("app.jws", jws, 0644);
    free(jws);
    char bh[65];
    assert_luna_ok(luna_hex_encode(m.build_hash, 32, bh, sizeof(bh)));

    /* The services: webhook receiver, audit, attestation, then the KMS
       (it needs the attestation service's key set). */
    hook_start();
    audit_setup();
    audit_start();
    att_setup(bh);
    att_jwks_to_kms();
    kms_config();
    kmsh_start(&K);
    tee_register("tee-q");
    tee_register("tee-r");
    g_host_port = (uint16_t)htu_free_port();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop(&g_host);
    stop(&g_att);
    stop(&g_audit);
    if (g_hook > 0) {
        kill(g_hook, SIGKILL);
        waitpid(g_hook, NULL, 0);
    }
    if (getenv("LUNA_KMS_TEST_KEEP") != NULL)
        fprintf(stderr, "kept %s\n", K.env.dir);
    kmsh_teardown(&K);
    return 0;
}

/* ---- the tests ---- */

static void test_swapped_binary_quarantined(void **state)
{
    (void)state;
    char rt[HTU_PATH_MAX], st[32];
    pathf(rt, sizeof(rt), "luna-tee");

    /* The genuine runtime is admitted: registry active at the KMS. */
    g_host = host_start("host-a", rt, "tee-q", "rt-q.json");
    assert_true(wait_status("tee-q", "active", 30000));
    assert_true(att_state_is("tee-q", "active"));

    /* A client's one-time key for it, and a challenge the TEE could use. */
    uint8_t csk[32], cpk[32], sealed[80], nonce[32];
    char otk_id[64];
    assert_luna_ok(luna_hpke_generate_keypair(csk, cpk));
    char *tok = kmsh_token(&K, TENANT, "client");
    kmsh_resp r;
    assert_int_equal(200, kmsh_issue(&K, tok, "tee-q", "wordstats", "req-swap-1", cpk, otk_id,
                                     sealed, &r));
    kmsh_resp_free(&r);
    free(tok);
    kmsh_tee probe;
    memset(&probe, 0, sizeof(probe));
    snprintf(probe.id, sizeof(probe.id), "tee-q");
    snprintf(probe.cert, sizeof(probe.cert), "probe-tee-q");
    assert_int_equal(200, kmsh_challenge(&K, &probe, "tee-q", otk_id, nonce));
    /* Rounds so far passed: nothing quarantined. */
    sleep(INTERVAL + 1);
    kms_status("tee-q", st, sizeof(st));
    assert_string_equal("active", st);

    /* The swap: the platform restarts tee-q from a modified runtime. */
    char swapped[HTU_PATH_MAX];
    pathf(swapped, sizeof(swapped), "luna-tee.swapped");
    copy_file(rt, swapped, "swapped while running", 0755);
    stop(&g_host);
    long t0 = htu_now_ms();
    g_host = host_start("host-b", swapped, "tee-q", "rt-q.json");

    /* Within one interval of the swap (the new host's start included):
       quarantined in the KMS registry. */
    bool quarantined = wait_status("tee-q", "quarantined", INTERVAL * 1000L);
    long took = htu_now_ms() - t0;
    fprintf(stderr, "quarantined after %ld ms (interval %d s)\n", took, INTERVAL);
    assert_true(quarantined);
    assert_true(took <= INTERVAL * 1000L);
    assert_true(att_state_is("tee-q", "quarantined"));
    assert_true(log_has("host-b.log", "measurement differs from the signed manifest"));

    /* Every OTK of the TEE revoked: a release is refused, and so is a
       new challenge. */
    uint8_t ev[64];
    assert_luna_ok(luna_random(ev, sizeof(ev)));
    assert_int_equal(403, kmsh_release(&K, &probe, "tee-q", otk_id, nonce, ev, sizeof(ev),
                                       "x.y.z", &r));
    assert_string_equal("otk_revoked", r.code);
    kmsh_resp_free(&r);
    assert_int_equal(403, kmsh_challenge(&K, &probe, "tee-q", otk_id, nonce));

    /* The alert: webhook received, log line at alert severity. */
    assert_true(wait_for("webhook.log", "\"event\":\"tee.quarantined\"", 5));
    assert_true(log_has("webhook.log", "\"tee_id\":\"tee-q\""));
    assert_true(log_has("webhook.log", "\"reason\":\"measurement_mismatch\""));
    assert_true(log_has("att.log", "\"severity\":\"alert\""));

    /* The audit entry, in the real audit log's database. */
    char db[HTU_PATH_MAX];
    pathf(db, sizeof(db), "auditlog.db");
    long end = htu_now_ms() + 5000;
    bool audited = false;
    while (!audited && htu_now_ms() < end) {
        audited = file_has(db, "\"component\":\"lunal://svc/attestation\",\"actor\":"
                               "\"lunal://svc/attestation\",\"tenant\":\"\",\"tee\":\"tee-q\","
                               "\"deployment\":\"app\",\"operation\":\"tee.quarantine\"");
        if (!audited)
            usleep(100000);
    }
    assert_true(audited);
    assert_true(file_has(db, "measurement_mismatch"));
    stop(&g_host);
}

/* Review L6 with the real audit service: log down -> admission refused
   with a clear error and nothing activated; log back -> admitted. */
static void test_audit_down_refuses_admission(void **state)
{
    (void)state;
    char rt[HTU_PATH_MAX], st[32];
    pathf(rt, sizeof(rt), "luna-tee");
    stop(&g_audit);
    g_host = host_start("host-c", rt, "tee-r", "rt-r.json");
    assert_true(wait_for("att.log", "admission refused: audit log unavailable", 30));
    assert_true(wait_for("host-c.log", "admission failed", 10));
    kms_status("tee-r", st, sizeof(st));
    assert_string_equal("pending", st); /* the KMS activated nothing */
    json_t *ans = NULL;
    assert_int_equal(404, att_call("gateway", "GET", "/v1/attestation/tees/tee-r", &ans));
    json_decref(ans);
    stop(&g_host);

    audit_start();
    g_host = host_start("host-d", rt, "tee-r", "rt-r.json");
    assert_true(wait_status("tee-r", "active", 30000));
    assert_true(att_state_is("tee-r", "active"));
    stop(&g_host);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "e2e.tee_quarantine needs root (the platform reads /proc of the "
                        "non-dumpable runtime)\n");
        return LUNA_TEST_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swapped_binary_quarantined),
        cmocka_unit_test(test_audit_down_refuses_admission),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
