/*
 * gw_harness.c - the gateway test harness (see gw_harness.h).  Test-only.
 */
#include "gw_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "luna_test.h"

/* Starts argv with stderr appended to log; waits (10 s) for "PORT n". */
static void spawn(char *const argv[], const char *log, gwh_proc *p)
{
    int fds[2];
    assert_int_equal(0, pipe(fds));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    unsigned port = htu_read_port(fds[0], 10000);
    close(fds[0]);
    if (port == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        char cmd[HTU_PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "cat '%s' >&2", log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
        fail_msg("%s did not report its port", argv[0]);
    }
    p->pid = pid;
    p->port = (uint16_t)port;
}

static void stop(gwh_proc *p)
{
    if (p->pid <= 0)
        return;
    htu_server s = {.pid = p->pid, .port = p->port};
    (void)htu_server_stop(&s, SIGTERM, 8000);
    p->pid = 0;
}

static void start_stub(gwh *h, const char *role, const char *cert, const char *id, gwh_proc *p)
{
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX], log[HTU_PATH_MAX];
    htu_path(&h->iam.env, cert, ".crt", crt, sizeof(crt));
    htu_path(&h->iam.env, cert, ".key", key, sizeof(key));
    htu_path(&h->iam.env, "stubs", ".log", log, sizeof(log));
    char *argv[] = {(char *)LUNA_GW_STUB_BIN, (char *)"--role", (char *)role,
                    (char *)"--ca", h->iam.env.ca_crt, (char *)"--cert", crt,
                    (char *)"--key", key, (char *)"--state", h->state,
                    (char *)"--audit-log", h->audit_log, (char *)"--id",
                    (char *)(id != NULL ? id : "none"), NULL};
    spawn(argv, log, p);
}

void gwh_start(gwh *h, int token_ttl)
{
    memset(h, 0, sizeof(*h));
    iamh_start(&h->iam, token_ttl, 0);
    htu_env *env = &h->iam.env;
    assert_int_equal(0, htu_issue(env, NULL, "lunal://svc/attestation", "attestation", NULL));
    assert_int_equal(0, htu_issue(env, NULL, "lunal://svc/audit", "audit", NULL));
    for (int i = 0; i < GWH_TEES; i++) {
        char id[32], name[32];
        snprintf(id, sizeof(id), "lunal://tee/t%d", i + 1);
        snprintf(name, sizeof(name), "tee%d", i + 1);
        assert_int_equal(0, htu_issue(env, NULL, id, name, NULL));
    }
    htu_path(env, "state", ".json", h->state, sizeof(h->state));
    htu_path(env, "audit", ".entries", h->audit_log, sizeof(h->audit_log));
    htu_path(env, "gateway", ".log", h->gw_log, sizeof(h->gw_log));
    htu_path(env, "gateway", ".json", h->gw_config, sizeof(h->gw_config));
    FILE *f = fopen(h->state, "w");
    assert_non_null(f);
    fprintf(f, "{\"tees\":{"
               "\"t1\":{\"status\":\"active\",\"tenants\":[\"acme\"],\"deployment_id\":\"d1\","
               "\"report_age\":0},"
               "\"t2\":{\"status\":\"active\",\"tenants\":[\"acme\"],\"deployment_id\":\"d1\","
               "\"report_age\":0},"
               "\"t3\":{\"status\":\"active\",\"tenants\":[\"other\"],\"deployment_id\":\"d1\","
               "\"report_age\":0},"
               "\"t4\":{\"status\":\"quarantined\",\"tenants\":[\"acme\"],\"deployment_id\":"
               "\"d1\",\"report_age\":0},"
               "\"t5\":{\"status\":\"active\",\"tenants\":[\"acme\"],\"deployment_id\":\"d1\","
               "\"report_age\":100000}}}\n");
    fclose(f);
    start_stub(h, "kms", "kms", NULL, &h->kms);
    start_stub(h, "attestation", "attestation", NULL, &h->att);
    start_stub(h, "audit", "audit", NULL, &h->audit);
    for (int i = 0; i < GWH_TEES; i++) {
        char id[16], name[16];
        snprintf(id, sizeof(id), "t%d", i + 1);
        snprintf(name, sizeof(name), "tee%d", i + 1);
        start_stub(h, "tee", name, id, &h->tee[i]);
    }
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(env, "gateway", ".crt", crt, sizeof(crt));
    htu_path(env, "gateway", ".key", key, sizeof(key));
    f = fopen(h->gw_config, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"profile\":\"development\",\"listen\":{\"port\":%u},"
            "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\",\"ca\":\"%s\"},\"log\":{\"level\":\"info\"},"
            "\"gateway\":{\"iam\":{\"host\":\"127.0.0.1\",\"port\":%u},"
            "\"kms\":{\"host\":\"127.0.0.1\",\"port\":%u},"
            "\"attestation\":{\"host\":\"127.0.0.1\",\"port\":%u},"
            "\"audit\":{\"host\":\"127.0.0.1\",\"port\":%u},\"tees\":[",
            htu_free_port(), crt, key, env->ca_crt, h->iam.srv.port, h->kms.port, h->att.port,
            h->audit.port);
    for (int i = 0; i < GWH_TEES; i++)
        fprintf(f, "%s{\"id\":\"t%d\",\"host\":\"127.0.0.1\",\"port\":%u}", i ? "," : "", i + 1,
                h->tee[i].port);
    fprintf(f, "],\"clock_skew_sec\":0,\"jwks_refresh_sec\":1,\"health_interval_sec\":1,"
               "\"upstream_timeout_sec\":5,\"tee_timeout_sec\":10,\"client_timeout_sec\":3,"
               "\"max_request_bytes\":262144,\"report_max_age_sec\":600,"
               "\"rate\":{\"auth_per_sec\":3,\"auth_burst\":30,\"tenant_per_sec\":50,"
               "\"tenant_burst\":100,\"key_per_sec\":50,\"key_burst\":100},\"idempotency\":{\"entries\":64,\"ttl_sec\":600}}}\n");
    fclose(f);
    char *argv[] = {(char *)LUNA_GATEWAY_BIN, (char *)"serve", (char *)"--config", h->gw_config,
                    NULL};
    spawn(argv, h->gw_log, &h->gw);
    /* Ready = IAM keys loaded and every TEE probed once. */
    long end = htu_now_ms() + 15000;
    for (;;) {
        gwh_resp r;
        gwh_call(h, "GET", "/v1/health", NULL, NULL, NULL, 0, &r);
        bool ready = r.status == 200 && json_is_true(json_object_get(r.body, "ready")) &&
                     json_integer_value(json_object_get(r.body, "healthy_tees")) == GWH_TEES;
        gwh_resp_free(&r);
        if (ready)
            break;
        if (htu_now_ms() > end)
            fail_msg("the gateway did not become ready (see %s)", h->gw_log);
        usleep(100 * 1000);
    }
}

void gwh_stop(gwh *h)
{
    /* The gateway must drain and exit 0 (a sanitizer report would not). */
    htu_server gs = {.pid = h->gw.pid, .port = h->gw.port};
    int rc = h->gw.pid > 0 ? htu_server_stop(&gs, SIGTERM, 8000) : 0;
    h->gw.pid = 0;
    if (rc != 0) {
        char cmd[HTU_PATH_MAX + 32];
        snprintf(cmd, sizeof(cmd), "tail -n 40 '%s' >&2", h->gw_log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
    }
    assert_int_equal(0, rc);
    stop(&h->kms);
    stop(&h->att);
    stop(&h->audit);
    for (int i = 0; i < GWH_TEES; i++)
        stop(&h->tee[i]);
    (void)iamh_stop(&h->iam);
}

void gwh_call(gwh *h, const char *method, const char *path, const char *extra_headers,
              const char *content_type, const void *body, size_t body_len, gwh_resp *r)
{
    memset(r, 0, sizeof(*r));
    size_t cap = 2048 + body_len + (extra_headers != NULL ? strlen(extra_headers) : 0);
    char *req = malloc(cap);
    assert_non_null(req);
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, extra_headers != NULL ? extra_headers : "",
                     content_type != NULL ? "Content-Type: " : "",
                     content_type != NULL ? content_type : "", content_type != NULL ? "\r\n" : "",
                     body_len);
    assert_true(n > 0 && (size_t)n + body_len < cap);
    if (body_len > 0)
        memcpy(req + n, body, body_len);
    SSL_CTX *ctx = htu_client_ctx(&h->iam.env, NULL, NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    htu_raw_exchange(h->gw.port, ctx, req, (size_t)n + body_len, 15000, &r->raw);
    SSL_CTX_free(ctx);
    free(req);
    if (!htu_raw_status(&r->raw, &r->status))
        r->status = -1;
    (void)htu_raw_header(&r->raw, "Retry-After", r->retry_after, sizeof(r->retry_after));
    const char *b = htu_raw_body(&r->raw);
    if (b != NULL && b[0] == '{') {
        json_error_t je;
        r->body = json_loads(b, 0, &je);
    }
}

void gwh_resp_free(gwh_resp *r)
{
    json_decref(r->body);
    r->body = NULL;
}

const char *gwh_err_code(const gwh_resp *r)
{
    const char *c = json_string_value(json_object_get(json_object_get(r->body, "error"), "code"));
    return c != NULL ? c : "";
}

char *gwh_token(gwh *h, const char *tenant, const char *api_key)
{
    char body[256], hdr[512];
    snprintf(body, sizeof(body), "{\"tenant_id\":\"%s\"}", tenant);
    hdr[0] = '\0';
    if (api_key != NULL)
        snprintf(hdr, sizeof(hdr), "Authorization: ApiKey %s\r\n", api_key);
    gwh_resp r;
    gwh_call(h, "POST", "/v1/auth/token", hdr, "application/json", body, strlen(body), &r);
    char *tok = NULL;
    if (r.status == 200 && json_string_value(json_object_get(r.body, "token")) != NULL)
        tok = strdup(json_string_value(json_object_get(r.body, "token")));
    gwh_resp_free(&r);
    return tok;
}

char *gwh_principal(gwh *h, const char *id, const char *kind, const char *role)
{
    char *admin = iamh_token(&h->iam, "acme", h->iam.admin_key);
    assert_non_null(admin);
    char body[256], path[256];
    snprintf(body, sizeof(body), "{\"principal_id\":\"%s\",\"kind\":\"%s\",\"roles\":[\"%s\"]}",
             id, kind, role);
    iamh_resp r;
    iamh_call(&h->iam, "gateway", "POST", "/v1/iam/tenants/acme/principals", admin, body, &r);
    assert_int_equal(201, r.status);
    iamh_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/iam/tenants/acme/principals/%s/api-keys", id);
    iamh_call(&h->iam, "gateway", "POST", path, admin, NULL, &r);
    assert_int_equal(201, r.status);
    const char *k = json_string_value(json_object_get(r.body, "api_key"));
    assert_non_null(k);
    char *out = strdup(k);
    iamh_resp_free(&r);
    free(admin);
    return out;
}

void gwh_kill_tee(gwh *h, int i)
{
    assert_true(h->tee[i].pid > 0);
    kill(h->tee[i].pid, SIGKILL);
    waitpid(h->tee[i].pid, NULL, 0);
    h->tee[i].pid = 0;
}

bool gwh_file_has(const char *path, const void *needle, size_t n)
{
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    fclose(f);
    uint8_t *d = luna_test_read_file(path, &len);
    bool found = len >= n && memmem(d, len, needle, n) != NULL;
    free(d);
    return found;
}

bool gwh_mem_has(pid_t pid, const void *needle, size_t n)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(p, "r");
    assert_non_null(maps);
    snprintf(p, sizeof(p), "/proc/%d/mem", (int)pid);
    int mem = open(p, O_RDONLY);
    assert_true(mem >= 0);
    bool found = false;
    char line[512];
    while (!found && fgets(line, sizeof(line), maps) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r')
            continue;
        if (strstr(line, "[vvar]") != NULL || hi - lo > (512ul << 20))
            continue;
        size_t len = hi - lo;
        uint8_t *buf = malloc(len);
        if (buf == NULL)
            continue;
        ssize_t got = pread(mem, buf, len, (off_t)lo);
        if (got > 0 && (size_t)got >= n && memmem(buf, (size_t)got, needle, n) != NULL)
            found = true;
        free(buf);
    }
    close(mem);
    fclose(maps);
    return found;
}
