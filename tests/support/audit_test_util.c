/*
 * audit_test_util.c - helpers of the audit service tests (see
 * audit_test_util.h).  Test-only code; every wait is bounded.
 */
#include "audit_test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "luna_test.h"

#ifndef LUNA_AUDIT_BIN
#error "LUNA_AUDIT_BIN must name the luna-audit binary"
#endif

static long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(0, bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
    socklen_t sl = sizeof(sa);
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&sa, &sl));
    close(fd);
    return ntohs(sa.sin_port);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal((ssize_t)n, write(fd, text, n));
    close(fd);
}

void atu_setup(atu_env *e, const char *extra_audit_json)
{
    memset(e, 0, sizeof(*e));
    htu_setup(&e->h);
    static const char *const certs[][2] = {{"lunal://svc/audit", "audit"},
                                           {"lunal://svc/kms", "kms"},
                                           {"lunal://svc/gateway", "gateway"},
                                           {"lunal://svc/witness", "witness"},
                                           {"lunal://tee/t1", "tee"}};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        assert_int_equal(0, htu_issue(&e->h, NULL, certs[i][0], certs[i][1], NULL));
    htu_path(&e->h, "audit", ".db", e->db_path, sizeof(e->db_path));
    htu_path(&e->h, "checkpoint", ".skey", e->key_path, sizeof(e->key_path));
    htu_path(&e->h, "iam", ".jwks", e->jwks_path, sizeof(e->jwks_path));
    htu_path(&e->h, "audit", ".json", e->config_path, sizeof(e->config_path));
    htu_path(&e->h, "audit", ".log", e->log_path, sizeof(e->log_path));

    /* The checkpoint key through the real keygen; its vkey from stdout. */
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        execl(LUNA_AUDIT_BIN, LUNA_AUDIT_BIN, "keygen", "--name", ATU_ORIGIN, "--out",
              e->key_path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(p[0], e->vkey + len, sizeof(e->vkey) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(p[0]);
    int st;
    assert_int_equal(pid, waitpid(pid, &st, 0));
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    while (len > 0 && e->vkey[len - 1] == '\n')
        len--;
    e->vkey[len] = '\0';
    assert_luna_ok(luna_note_verifier_parse(e->vkey, len, &e->verifier));
    struct stat sb;
    assert_int_equal(0, stat(e->key_path, &sb));
    assert_int_equal(0600, sb.st_mode & 0777);

    assert_luna_ok(luna_jws_signer_generate("iam-1", &e->iam));
    luna_jws_keyset *ks = NULL;
    assert_luna_ok(luna_jws_keyset_new(&ks));
    assert_luna_ok(luna_jws_signer_publish(e->iam, ks));
    char *jwks = NULL;
    assert_luna_ok(luna_jws_keyset_export(ks, &jwks, NULL));
    write_file(e->jwks_path, jwks, 0644);
    free(jwks);
    luna_jws_keyset_free(ks);

    e->port = free_port();
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&e->h, "audit", ".crt", crt, sizeof(crt));
    htu_path(&e->h, "audit", ".key", key, sizeof(key));
    char cfg[8192];
    int n = snprintf(cfg, sizeof(cfg),
                     "{\"profile\":\"development\","
                     "\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
                     "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\",\"ca\":\"%s\"},"
                     "\"storage\":{\"url\":\"sqlite:%s\"},"
                     "\"log\":{\"level\":\"info\"},"
                     "\"audit\":{\"origin\":\"%s\",\"key_file\":\"%s\",\"iam_jwks\":\"%s\"%s}}",
                     (unsigned)e->port, crt, key, e->h.ca_crt, e->db_path, ATU_ORIGIN,
                     e->key_path, e->jwks_path, extra_audit_json != NULL ? extra_audit_json : "");
    assert_true(n > 0 && (size_t)n < sizeof(cfg));
    write_file(e->config_path, cfg, 0600);
}

void atu_teardown(atu_env *e)
{
    if (e->pid > 0)
        (void)atu_stop(e, SIGKILL);
    luna_jws_signer_free(e->iam);
    e->iam = NULL;
    htu_teardown(&e->h);
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    long end = ms_now() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (ms_now() >= end) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &st, 0);
            return -1;
        }
        usleep(5000);
    }
}

bool atu_try_start(atu_env *e)
{
    int p[2];
    assert_int_equal(0, pipe(p));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDOUT_FILENO);
        int fd = open(e->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        execl(LUNA_AUDIT_BIN, LUNA_AUDIT_BIN, "--config", e->config_path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[64];
    size_t len = 0;
    memset(line, 0, sizeof(line));
    long end = ms_now() + 20000;
    while (len + 1 < sizeof(line) && strchr(line, '\n') == NULL) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        long left = end - ms_now();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t r = read(p[0], line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(p[0]);
    unsigned port = 0;
    if (sscanf(line, "PORT %u", &port) != 1 || port != e->port) {
        kill(pid, SIGKILL);
        (void)wait_exit(pid, 5000);
        return false;
    }
    e->pid = pid;
    return true;
}

void atu_start(atu_env *e)
{
    if (!atu_try_start(e))
        fail_msg("luna-audit did not start (see %s)", e->log_path);
}

int atu_stop(atu_env *e, int sig)
{
    if (e->pid <= 0)
        return -1;
    kill(e->pid, sig);
    int rc = wait_exit(e->pid, 5000);
    e->pid = 0;
    return rc;
}

void atu_client(atu_env *e, const char *name, luna_http_client_opts *o,
                char paths[3][HTU_PATH_MAX])
{
    htu_client_opts(&e->h, name, e->port, "lunal://svc/audit", o, paths);
}

int atu_fetch(atu_env *e, const char *name, const char *method, const char *path,
              const char *json_body, luna_http_result *out)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    atu_client(e, name, &o, paths);
    luna_err err = luna_http_fetch(&o, method, path, json_body != NULL ? "application/json" : NULL,
                                   json_body, json_body != NULL ? strlen(json_body) : 0, out);
    if (err != LUNA_OK)
        fail_msg("fetch %s %s: %s", method, path, luna_errname(err));
    return out->status;
}

int atu_get_bearer(atu_env *e, const char *name, const char *path, const char *token,
                   htu_raw *out)
{
    SSL_CTX *ctx = htu_client_ctx(&e->h, name, NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: localhost\r\n%s%s%sConnection: close\r\n\r\n",
                     path, token != NULL ? "Authorization: Bearer " : "",
                     token != NULL ? token : "", token != NULL ? "\r\n" : "");
    assert_true(n > 0 && (size_t)n < sizeof(req));
    htu_raw_exchange(e->port, ctx, req, (size_t)n, 10000, out);
    SSL_CTX_free(ctx);
    int status = 0;
    if (!htu_raw_status(out, &status))
        fail_msg("no HTTP response for %s", path);
    return status;
}

char *atu_token(atu_env *e, const char *tenant, const char *role)
{
    json_t *claims = json_pack("{s:s,s:I,s:[s]}", "sub", "lunal://client/t/auditor", "exp",
                               (json_int_t)time(NULL) + 600, "roles", role);
    assert_non_null(claims);
    if (tenant != NULL)
        json_object_set_new(claims, "tenant", json_string(tenant));
    char *tok = NULL;
    assert_luna_ok(luna_jws_sign(e->iam, claims, &tok, NULL));
    json_decref(claims);
    return tok;
}

void atu_entry_json(char *out, size_t cap, const char *tenant, const char *rid)
{
    int n = snprintf(out, cap,
                     "{\"actor\":\"lunal://tee/t1\",\"tenant\":\"%s\",\"tee\":\"t1\","
                     "\"deployment\":\"dep-1\",\"operation\":\"key.release\","
                     "\"objects\":[\"otk-1\"],\"outcome\":\"success\",\"request_id\":\"%s\"}",
                     tenant, rid);
    assert_true(n > 0 && (size_t)n < cap);
}

bool atu_file_contains(const char *path, const void *needle, size_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return false;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *b = malloc(len);
    assert_non_null(b);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, b + got, len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    bool found = false;
    for (size_t i = 0; n > 0 && i + n <= got && !found; i++)
        found = memcmp(b + i, needle, n) == 0;
    free(b);
    return found;
}
