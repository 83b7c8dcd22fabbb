/*
 * iam_harness.c - the IAM test harness (see iam_harness.h).  Test-only.
 */
#include "iam_harness.h"

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

/* Runs argv with stdout captured into out (bounded 30 s); exit status or -1. */
static int run_capture(char *const argv[], const char *log, char *out, size_t cap)
{
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDOUT_FILENO);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    long end = htu_now_ms() + 30000;
    for (;;) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        long left = end - htu_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        char tmp[512];
        ssize_t r = read(p[0], tmp, sizeof(tmp));
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r && len + 1 < cap; i++)
            out[len++] = tmp[i];
    }
    out[len] = '\0';
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (htu_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(10000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int iamh_bootstrap(iamh *h, const char *tenant, char *out, size_t cap)
{
    char log[HTU_PATH_MAX];
    htu_path(&h->env, "bootstrap", ".log", log, sizeof(log));
    char *argv[] = {(char *)LUNA_IAM_BIN, (char *)"bootstrap", (char *)"--config", h->config,
                    (char *)"--tenant", (char *)tenant, NULL};
    return run_capture(argv, log, out, cap);
}

int iamh_bootstrap_run(iamh *h, const char *tenant, const char *out_file, bool stdout_full)
{
    char log[HTU_PATH_MAX];
    htu_path(&h->env, "bootstrap", ".log", log, sizeof(log));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(stdout_full ? "/dev/full" : "/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, STDOUT_FILENO);
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        if (out_file != NULL)
            execl(LUNA_IAM_BIN, LUNA_IAM_BIN, "bootstrap", "--config", h->config, "--tenant",
                  tenant, "--out", out_file, (char *)NULL);
        else
            execl(LUNA_IAM_BIN, LUNA_IAM_BIN, "bootstrap", "--config", h->config, "--tenant",
                  tenant, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    long end = htu_now_ms() + 30000;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (htu_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(10000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void iamh_start(iamh *h, int token_ttl, int publish_delay)
{
    iamh_prepare(h, token_ttl, publish_delay);
    char out[256];
    if (iamh_bootstrap(h, "acme", out, sizeof(out)) != 0) {
        char log[HTU_PATH_MAX], cmd[HTU_PATH_MAX + 16];
        htu_path(&h->env, "bootstrap", ".log", log, sizeof(log));
        snprintf(cmd, sizeof(cmd), "cat '%s' >&2", log);
        if (system(cmd) != 0) /* best effort: show the log, then fail anyway */
            fputs("(could not show the bootstrap log)\n", stderr);
        fail_msg("luna-iam bootstrap failed");
    }
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_true(strlen(out) < sizeof(h->admin_key));
    memcpy(h->admin_key, out, strlen(out) + 1);
    iamh_serve(h);
}

void iamh_prepare(iamh *h, int token_ttl, int publish_delay)
{
    memset(h, 0, sizeof(*h));
    htu_setup(&h->env);
    assert_int_equal(0, htu_issue(&h->env, NULL, "lunal://svc/iam", "iam", NULL));
    assert_int_equal(0, htu_issue(&h->env, NULL, "lunal://svc/gateway", "gateway", NULL));
    assert_int_equal(0, htu_issue(&h->env, NULL, "lunal://svc/kms", "kms", NULL));
    assert_int_equal(0, htu_issue(&h->env, NULL, "lunal://tee/t1", "tee", NULL));
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX], mk[HTU_PATH_MAX];
    htu_path(&h->env, "iam", ".crt", crt, sizeof(crt));
    htu_path(&h->env, "iam", ".key", key, sizeof(key));
    htu_path(&h->env, "master", ".key", mk, sizeof(mk));
    htu_path(&h->env, "iam", ".db", h->db, sizeof(h->db));
    htu_path(&h->env, "iam", ".json", h->config, sizeof(h->config));
    FILE *f = fopen(h->config, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"profile\":\"development\",\"listen\":{\"port\":%u},"
            "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\",\"ca\":\"%s\"},"
            "\"storage\":{\"url\":\"sqlite:%s\"},\"log\":{\"level\":\"info\"},"
            "\"iam\":{\"master_key_file\":\"%s\",\"token_ttl_sec\":%d,\"clock_skew_sec\":0,"
            "\"key_publish_delay_sec\":%d,\"key_refresh_sec\":1,"
            "\"callers\":{\"authenticate\":[\"lunal://svc/gateway\"],"
            "\"authorize\":[\"lunal://svc/gateway\",\"lunal://svc/kms\"],"
            "\"admin\":[\"lunal://svc/gateway\"]}}}\n",
            htu_free_port(), crt, key, h->env.ca_crt, h->db, mk, token_ttl, publish_delay);
    fclose(f);
}

void iamh_serve(iamh *h)
{
    char log[HTU_PATH_MAX];
    htu_path(&h->env, "server", ".log", log, sizeof(log));
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDOUT_FILENO);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        execl(LUNA_IAM_BIN, LUNA_IAM_BIN, "serve", "--config", h->config, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    unsigned port = htu_read_port(p[0], 15000);
    close(p[0]);
    if (port == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("luna-iam did not report its port (see %s)", log);
    }
    h->srv.pid = pid;
    h->srv.port = (uint16_t)port;
}

int iamh_stop(iamh *h)
{
    int rc = htu_server_stop(&h->srv, SIGTERM, 8000);
    htu_teardown(&h->env);
    return rc;
}

void iamh_call(iamh *h, const char *cert, const char *method, const char *path,
               const char *token, const char *body, iamh_resp *r)
{
    memset(r, 0, sizeof(*r));
    size_t blen = body != NULL ? strlen(body) : 0;
    size_t cap = 1024 + blen + (token != NULL ? strlen(token) : 0);
    char *req = malloc(cap);
    assert_non_null(req);
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "%s%s%s%s%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, token != NULL ? "Authorization: Bearer " : "",
                     token != NULL ? token : "", token != NULL ? "\r\n" : "",
                     body != NULL ? "Content-Type: application/json" : "",
                     body != NULL ? "\r\n" : "", blen, body != NULL ? body : "");
    assert_true(n > 0 && (size_t)n < cap);
    SSL_CTX *ctx = htu_client_ctx(&h->env, cert, NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    htu_raw raw;
    htu_raw_exchange(h->srv.port, ctx, req, (size_t)n, 10000, &raw);
    SSL_CTX_free(ctx);
    free(req);
    if (!htu_raw_status(&raw, &r->status))
        fail_msg("no HTTP response for %s %s", method, path);
    memcpy(r->raw, raw.buf, sizeof(r->raw) - 1);
    const char *b = htu_raw_body(&raw);
    if (b != NULL && b[0] != '\0') {
        json_error_t je;
        r->body = json_loads(b, 0, &je);
    }
}

void iamh_resp_free(iamh_resp *r)
{
    json_decref(r->body);
    r->body = NULL;
}

const char *iamh_err_code(const iamh_resp *r)
{
    const char *c = json_string_value(json_object_get(json_object_get(r->body, "error"), "code"));
    return c != NULL ? c : "";
}

char *iamh_token(iamh *h, const char *tenant, const char *api_key)
{
    char *t = iamh_token_for(h, tenant, api_key, "iam");
    return t != NULL ? t : iamh_token_for(h, tenant, api_key, NULL);
}

char *iamh_token_for(iamh *h, const char *tenant, const char *api_key, const char *svc)
{
    char body[512];
    if (api_key != NULL)
        snprintf(body, sizeof(body), "{\"tenant_id\":\"%s\",\"api_key\":\"%s\"}", tenant,
                 api_key);
    else
        snprintf(body, sizeof(body), "{\"tenant_id\":\"%s\"}", tenant);
    iamh_resp r;
    iamh_call(h, "gateway", "POST", "/v1/iam/authenticate", NULL, body, &r);
    char *tok = NULL;
    if (r.status == 200) {
        const char *t = json_string_value(
            svc == NULL ? json_object_get(r.body, "token")
                        : json_object_get(json_object_get(r.body, "downstream"), svc));
        if (t != NULL)
            tok = strdup(t);
    }
    iamh_resp_free(&r);
    return tok;
}

char *iamh_jwks(iamh *h)
{
    iamh_resp r;
    iamh_call(h, "kms", "GET", "/v1/iam/jwks", NULL, NULL, &r);
    assert_int_equal(200, r.status);
    char *doc = json_dumps(r.body, JSON_COMPACT);
    assert_non_null(doc);
    iamh_resp_free(&r);
    return doc;
}
