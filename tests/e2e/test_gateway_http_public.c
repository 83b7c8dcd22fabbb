/*
 * test_gateway_http_public.c - luna_http's public listener: TLS 1.3 with
 * server authentication only.  A client without a certificate is served
 * as "anonymous"; routes carry no allow-list (one that names identities
 * is refused at registration); /metrics is not published; TLS 1.2 and
 * plain HTTP get no HTTP answer; and the default (mTLS) server still
 * refuses the same certificate-less client (control).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "http_test_util.h"
#include "luna/http.h"
#include "luna_test.h"

static htu_env E;

static void handle_who(luna_http_request *req, void *arg)
{
    (void)arg;
    luna_http_reply(req, 200, "text/plain", luna_http_request_identity(req),
                    strlen(luna_http_request_identity(req)));
}

/*
 * Forks a child that builds the server (public or not), checks the route
 * registration rules, writes its port (0 when a rule failed) into a pipe
 * and serves until SIGTERM.  Built in the child: libevent's epoll state
 * does not survive a fork.
 */
static pid_t serve(bool public_listener, uint16_t *port)
{
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&E, "gw", ".crt", crt, sizeof(crt));
    htu_path(&E, "gw", ".key", key, sizeof(key));
    int fds[2];
    assert_int_equal(0, pipe(fds));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct event_base *base = event_base_new();
        luna_http_server_opts o = {.component = "public-test",
                                   .tls = {.ca_file = E.ca_crt, .cert_file = crt, .key_file = key},
                                   .handle_signals = true,
                                   .public_listener = public_listener};
        luna_http_server *s = NULL;
        uint16_t p = 0;
        static const char *const gw[] = {"lunal://svc/gateway"};
        luna_http_route with_list = {LUNA_HTTP_GET, "/who", gw, 1, NULL, handle_who, NULL};
        luna_http_route without = {LUNA_HTTP_GET, "/who", NULL, 0, NULL, handle_who, NULL};
        if (base != NULL && luna_http_server_new(base, &o, &s) == LUNA_OK) {
            bool ok = public_listener
                          ? luna_http_server_add_route(s, &with_list) == LUNA_ERR_INVALID_ARG &&
                                luna_http_server_add_route(s, &without) == LUNA_OK
                          : luna_http_server_add_route(s, &without) == LUNA_ERR_INVALID_ARG &&
                                luna_http_server_add_route(s, &with_list) == LUNA_OK;
            if (ok)
                p = luna_http_server_port(s);
        }
        if (write(fds[1], &p, sizeof(p)) != (ssize_t)sizeof(p))
            _exit(1);
        close(fds[1]);
        if (p != 0)
            event_base_dispatch(base);
        luna_http_server_free(s);
        if (base != NULL)
            event_base_free(base);
        _exit(0);
    }
    close(fds[1]);
    uint16_t p = 0;
    assert_int_equal((ssize_t)sizeof(p), read(fds[0], &p, sizeof(p)));
    close(fds[0]);
    assert_int_not_equal(0, p);
    *port = p;
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
}

static const char get_who[] = "GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

static void test_public_listener(void **state)
{
    (void)state;
    uint16_t port = 0;
    pid_t pid = serve(true, &port);
    htu_raw r;
    int status = 0;
    SSL_CTX *ctx = htu_client_ctx(&E, NULL, NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    htu_raw_exchange(port, ctx, get_who, sizeof(get_who) - 1, 5000, &r);
    assert_true(r.handshake_ok);
    assert_true(htu_raw_status(&r, &status));
    assert_int_equal(200, status);
    assert_string_equal(LUNA_HTTP_PUBLIC_IDENTITY, htu_raw_body(&r));
    /* a client certificate changes nothing: still anonymous */
    SSL_CTX *with_cert = htu_client_ctx(&E, "gw", NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    htu_raw_exchange(port, with_cert, get_who, sizeof(get_who) - 1, 5000, &r);
    assert_true(htu_raw_status(&r, &status));
    assert_string_equal(LUNA_HTTP_PUBLIC_IDENTITY, htu_raw_body(&r));
    SSL_CTX_free(with_cert);
    static const char metrics[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    htu_raw_exchange(port, ctx, metrics, sizeof(metrics) - 1, 5000, &r);
    assert_true(htu_raw_status(&r, &status));
    assert_int_equal(404, status);
    static const char health[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    htu_raw_exchange(port, ctx, health, sizeof(health) - 1, 5000, &r);
    assert_true(htu_raw_status(&r, &status));
    assert_int_equal(200, status);
    SSL_CTX_free(ctx);
    /* TLS 1.2 and plain HTTP: no HTTP byte back */
    ctx = htu_client_ctx(&E, NULL, NULL, TLS1_2_VERSION, TLS1_2_VERSION);
    htu_raw_exchange(port, ctx, get_who, sizeof(get_who) - 1, 5000, &r);
    assert_false(r.handshake_ok);
    assert_false(htu_raw_status(&r, &status));
    SSL_CTX_free(ctx);
    htu_raw_exchange(port, NULL, get_who, sizeof(get_who) - 1, 5000, &r);
    assert_false(htu_raw_status(&r, &status));
    stop(pid);
}

static void test_default_is_still_mtls(void **state)
{
    (void)state;
    uint16_t port = 0;
    pid_t pid = serve(false, &port);
    htu_raw r;
    int status = 0;
    SSL_CTX *ctx = htu_client_ctx(&E, NULL, NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    htu_raw_exchange(port, ctx, get_who, sizeof(get_who) - 1, 5000, &r);
    assert_false(htu_raw_status(&r, &status));
    SSL_CTX_free(ctx);
    ctx = htu_client_ctx(&E, "gw", NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    htu_raw_exchange(port, ctx, get_who, sizeof(get_who) - 1, 5000, &r);
    assert_true(htu_raw_status(&r, &status));
    assert_int_equal(200, status);
    assert_string_equal("lunal://svc/gateway", htu_raw_body(&r));
    SSL_CTX_free(ctx);
    stop(pid);
}

static int setup(void **state)
{
    (void)state;
    htu_setup(&E);
    assert_int_equal(0, htu_issue(&E, NULL, "lunal://svc/gateway", "gw", NULL));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    htu_teardown(&E);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_listener),
        cmocka_unit_test(test_default_is_still_mtls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
