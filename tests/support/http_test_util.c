/*
 * http_test_util.c - helpers of the HTTP e2e and attack tests (see
 * http_test_util.h).  Test-only code; every wait is bounded.
 */
#include "http_test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>

#include "luna_test.h"

#ifndef LUNA_CA_BIN
#error "LUNA_CA_BIN must name the luna-ca binary"
#endif
#ifndef LUNA_HTTP_TEST_SERVER
#error "LUNA_HTTP_TEST_SERVER must name the test server binary"
#endif

long htu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned htu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(0, bind(fd, (struct sockaddr *)&a, sizeof(a)));
    socklen_t len = sizeof(a);
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&a, &len));
    close(fd);
    return ntohs(a.sin_port);
}

unsigned htu_read_port(int fd, int timeout_ms)
{
    char line[64];
    size_t len = 0;
    long end = htu_now_ms() + timeout_ms;
    memset(line, 0, sizeof(line));
    while (len + 1 < sizeof(line) && strchr(line, '\n') == NULL) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long left = end - htu_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t r = read(fd, line + len, sizeof(line) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    unsigned port = 0;
    if (sscanf(line, "PORT %u", &port) != 1 || port == 0 || port > 65535)
        return 0;
    return port;
}

/* waitpid bounded by timeout_ms; kills on timeout.  Returns the status or -1. */
static int wait_bounded(pid_t pid, int timeout_ms)
{
    long end = htu_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (htu_now_ms() >= end) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &st, 0);
            return -1;
        }
        usleep(10000);
    }
}

int htu_run(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    return wait_bounded(pid, 30000);
}

void htu_path(const htu_env *env, const char *name, const char *suffix, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s%s", env->dir, name, suffix);
    assert_true(n > 0 && (size_t)n < cap);
}

void htu_setup(htu_env *env)
{
    memset(env, 0, sizeof(*env));
    /* The raw client writes to servers that hang up on it on purpose. */
    signal(SIGPIPE, SIG_IGN);
    snprintf(env->dir, sizeof(env->dir), "/tmp/luna-http-test-XXXXXX");
    assert_non_null(mkdtemp(env->dir));
    htu_path(env, "ca", "", env->ca_dir, sizeof(env->ca_dir));
    htu_path(env, "ca", "/ca.crt", env->ca_crt, sizeof(env->ca_crt));
    /* The CA passphrase reaches luna-ca through its documented variable. */
    assert_int_equal(0, setenv("LUNA_CA_PASSPHRASE", "http-test-passphrase", 1));
    char *argv[] = {(char *)LUNA_CA_BIN, (char *)"init", (char *)"--dir", env->ca_dir, NULL};
    assert_int_equal(0, htu_run(argv));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void htu_teardown(htu_env *env)
{
    if (env->dir[0] != '\0')
        (void)nftw(env->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int htu_issue(const htu_env *env, const char *ca_dir, const char *identity, const char *name,
              const char *const *extra)
{
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(env, name, ".crt", crt, sizeof(crt));
    htu_path(env, name, ".key", key, sizeof(key));
    char *argv[20] = {(char *)LUNA_CA_BIN, (char *)"issue", (char *)"--dir",
                      (char *)(ca_dir != NULL ? ca_dir : env->ca_dir), (char *)"--identity",
                      (char *)identity, (char *)"--key-out", key, (char *)"--cert-out", crt};
    size_t n = 10;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 19; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return htu_run(argv);
}

int htu_renew(const htu_env *env, const char *name)
{
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(env, name, ".crt", crt, sizeof(crt));
    htu_path(env, name, ".key", key, sizeof(key));
    char *argv[] = {(char *)LUNA_CA_BIN, (char *)"renew", (char *)"--dir",
                    (char *)env->ca_dir,  (char *)"--cert", crt,
                    (char *)"--key",      key,              NULL};
    return htu_run(argv);
}

void htu_server_start(const htu_env *env, const char *name, const char *const *extra,
                      htu_server *srv)
{
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX], log[HTU_PATH_MAX];
    htu_path(env, name, ".crt", crt, sizeof(crt));
    htu_path(env, name, ".key", key, sizeof(key));
    htu_path(env, "server", ".log", log, sizeof(log));
    char *argv[24] = {(char *)LUNA_HTTP_TEST_SERVER, (char *)"--ca", (char *)env->ca_crt,
                      (char *)"--cert", crt, (char *)"--key", key};
    size_t n = 7;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
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
    unsigned port = htu_read_port(p[0], 10000);
    close(p[0]);
    if (port == 0) {
        kill(pid, SIGKILL);
        (void)wait_bounded(pid, 5000);
        fail_msg("test server did not report its port (see %s)", log);
    }
    srv->pid = pid;
    srv->port = (uint16_t)port;
}

int htu_server_stop(htu_server *srv, int sig, int timeout_ms)
{
    if (srv->pid <= 0)
        return -1;
    kill(srv->pid, sig);
    int rc = wait_bounded(srv->pid, timeout_ms);
    srv->pid = 0;
    return rc;
}

SSL_CTX *htu_client_ctx(const htu_env *env, const char *cert_name, const char *ca_file,
                        int min_version, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(1, SSL_CTX_set_min_proto_version(ctx, min_version));
    assert_int_equal(1, SSL_CTX_set_max_proto_version(ctx, max_version));
    /* The raw client checks nothing of the server: it is the attacker. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    (void)ca_file;
    if (cert_name != NULL) {
        char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
        htu_path(env, cert_name, ".crt", crt, sizeof(crt));
        htu_path(env, cert_name, ".key", key, sizeof(key));
        assert_int_equal(1, SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM));
        assert_int_equal(1, SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM));
    }
    return ctx;
}

void htu_raw_exchange(uint16_t port, SSL_CTX *ctx, const char *req, size_t req_len,
                      int timeout_ms, htu_raw *out)
{
    memset(out, 0, sizeof(*out));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return;
    }
    out->connected = true;
    long end = htu_now_ms() + timeout_ms;
    if (ctx == NULL) {
        if (req_len > 0)
            (void)!write(fd, req, req_len);
        while (out->n + 1 < sizeof(out->buf) && htu_now_ms() < end) {
            ssize_t r = read(fd, out->buf + out->n, sizeof(out->buf) - 1 - out->n);
            if (r <= 0)
                break;
            out->n += (size_t)r;
        }
        out->buf[out->n] = '\0';
        close(fd);
        return;
    }
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
        out->handshake_ok = true;
        X509 *peer = SSL_get0_peer_certificate(ssl);
        if (peer != NULL) {
            BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(peer), NULL);
            char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
            if (hex != NULL)
                snprintf(out->serial, sizeof(out->serial), "%s", hex);
            OPENSSL_free(hex);
            BN_free(bn);
        }
        if (req_len > 0)
            (void)SSL_write(ssl, req, (int)req_len);
        while (out->n + 1 < sizeof(out->buf) && htu_now_ms() < end) {
            int r = SSL_read(ssl, out->buf + out->n, (int)(sizeof(out->buf) - 1 - out->n));
            if (r <= 0)
                break;
            out->n += (size_t)r;
        }
    }
    out->buf[out->n] = '\0';
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
}

bool htu_raw_status(const htu_raw *r, int *status)
{
    int st = 0;
    if (r->n < 12 || strncmp(r->buf, "HTTP/1.", 7) != 0 || sscanf(r->buf + 9, "%3d", &st) != 1)
        return false;
    *status = st;
    return true;
}

const char *htu_raw_body(const htu_raw *r)
{
    const char *p = strstr(r->buf, "\r\n\r\n");
    return p != NULL ? p + 4 : NULL;
}

bool htu_raw_header(const htu_raw *r, const char *name, char *out, size_t cap)
{
    const char *end = strstr(r->buf, "\r\n\r\n");
    const char *line = strstr(r->buf, "\r\n");
    size_t nl = strlen(name);
    while (line != NULL && end != NULL && line < end) {
        line += 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= cap)
                return false;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        line = strstr(line, "\r\n");
    }
    return false;
}

void htu_client_opts(const htu_env *env, const char *name, uint16_t port, const char *expected,
                     luna_http_client_opts *o, char paths[3][HTU_PATH_MAX])
{
    memset(o, 0, sizeof(*o));
    snprintf(paths[0], HTU_PATH_MAX, "%s", env->ca_crt);
    htu_path(env, name, ".crt", paths[1], HTU_PATH_MAX);
    htu_path(env, name, ".key", paths[2], HTU_PATH_MAX);
    o->tls.ca_file = paths[0];
    o->tls.cert_file = paths[1];
    o->tls.key_file = paths[2];
    o->host = "127.0.0.1";
    o->port = port;
    o->expected_identity = expected;
    o->timeout_sec = 5;
}
