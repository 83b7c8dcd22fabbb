/*
 * test_http.c - the mTLS HTTP server and client of luna/http.h between
 * separate processes on loopback: routing and allow-lists, JSON errors,
 * limits, request ids, metrics, the async client, certificate reload
 * without restart, and graceful shutdown on SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "http_test_util.h"
#include "luna_test.h"

#define MAX_BODY "2048"

typedef struct fixture {
    htu_env env;
    htu_server srv;
} fixture;

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof(f));
    htu_setup(&f.env);
    assert_int_equal(0, htu_issue(&f.env, NULL, "lunal://svc/kms", "server", NULL));
    assert_int_equal(0, htu_issue(&f.env, NULL, "lunal://svc/gateway", "gateway", NULL));
    assert_int_equal(0, htu_issue(&f.env, NULL, "lunal://tee/t-1", "tee", NULL));
    const char *const extra[] = {"--max-body", MAX_BODY, "--reload-sec", "1", NULL};
    htu_server_start(&f.env, "server", extra, &f.srv);
    *state = &f;
    return 0;
}

/*
 * cmocka ignores a failing group teardown, so the server's exit status
 * (0 only after a clean drain and, under ASan, no leak) is checked in main.
 */
static int server_exit = -1;

static int teardown(void **state)
{
    fixture *f = *state;
    server_exit = htu_server_stop(&f->srv, SIGTERM, 5000);
    htu_teardown(&f->env);
    return 0;
}

static void fetch(fixture *f, const char *cert, const char *method, const char *path,
                  const char *ctype, const char *body, luna_http_result *res)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    htu_client_opts(&f->env, cert, f->srv.port, "lunal://svc/kms", &o, paths);
    assert_luna_ok(luna_http_fetch(&o, method, path, ctype, body, body != NULL ? strlen(body) : 0,
                                   res));
}

static void assert_error_body(const luna_http_result *res, const char *code)
{
    json_error_t je;
    json_t *b = json_loads((const char *)res->body, 0, &je);
    assert_non_null(b);
    json_t *e = json_object_get(b, "error");
    assert_true(json_is_object(e));
    assert_string_equal(code, json_string_value(json_object_get(e, "code")));
    assert_true(json_is_string(json_object_get(e, "message")));
    assert_int_equal(1, (int)json_object_size(b));
    json_decref(b);
}

static void raw(fixture *f, const char *cert, const char *req, htu_raw *r)
{
    SSL_CTX *ctx = htu_client_ctx(&f->env, cert, NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    htu_raw_exchange(f->srv.port, ctx, req, strlen(req), 5000, r);
    SSL_CTX_free(ctx);
}

static void test_valid_request_200(void **state)
{
    luna_http_result res;
    fetch(*state, "gateway", "GET", "/v1/echo", NULL, NULL, &res);
    assert_int_equal(200, res.status);
    json_error_t je;
    json_t *b = json_loads((const char *)res.body, 0, &je);
    assert_non_null(b);
    assert_string_equal("lunal://svc/gateway", json_string_value(json_object_get(b, "identity")));
    /* The id the server saw is the one it echoed in the header. */
    assert_string_equal(res.request_id, json_string_value(json_object_get(b, "request_id")));
    assert_int_equal(32, (int)strlen(res.request_id));
    json_decref(b);
    luna_http_result_free(&res);
}

static void test_builtin_endpoints(void **state)
{
    luna_http_result res;
    /* Any platform identity may probe health. */
    fetch(*state, "tee", "GET", "/healthz", NULL, NULL, &res);
    assert_int_equal(200, res.status);
    assert_string_equal("{\"status\":\"ok\"}", (const char *)res.body);
    luna_http_result_free(&res);
    fetch(*state, "gateway", "GET", "/readyz", NULL, NULL, &res);
    assert_int_equal(200, res.status);
    luna_http_result_free(&res);
}

static void test_prefix_allow_list(void **state)
{
    luna_http_result res;
    fetch(*state, "tee", "GET", "/v1/tee/t-1/status", NULL, NULL, &res);
    assert_int_equal(200, res.status);
    assert_non_null(strstr((const char *)res.body, "lunal://tee/t-1"));
    luna_http_result_free(&res);
    fetch(*state, "gateway", "GET", "/v1/tee/t-1/status", NULL, NULL, &res);
    assert_int_equal(403, res.status);
    assert_error_body(&res, "forbidden");
    luna_http_result_free(&res);
    fetch(*state, "tee", "GET", "/v1/echo", NULL, NULL, &res);
    assert_int_equal(403, res.status);
    luna_http_result_free(&res);
}

static void test_unknown_route_404(void **state)
{
    luna_http_result res;
    fetch(*state, "gateway", "GET", "/v1/nope", NULL, NULL, &res);
    assert_int_equal(404, res.status);
    assert_error_body(&res, "not_found");
    luna_http_result_free(&res);
}

static void test_wrong_method_405(void **state)
{
    htu_raw r;
    raw(*state, "gateway",
        "DELETE /v1/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    int st = 0;
    assert_true(htu_raw_status(&r, &st));
    assert_int_equal(405, st);
    char allow[64];
    assert_true(htu_raw_header(&r, "Allow", allow, sizeof(allow)));
    assert_string_equal("GET, POST, PUT", allow);
    assert_non_null(strstr(htu_raw_body(&r), "\"method_not_allowed\""));
}

static void test_bad_path_400(void **state)
{
    htu_raw r;
    raw(*state, "tee", "GET /v1/tee/../echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        &r);
    int st = 0;
    assert_true(htu_raw_status(&r, &st));
    assert_int_equal(400, st);
}

static void test_body_limit_413(void **state)
{
    size_t n = (size_t)atoi(MAX_BODY);
    char *big = malloc(n + 2);
    assert_non_null(big);
    memset(big, 'a', n + 1);
    big[0] = '"';
    big[n] = '"';
    big[n + 1] = '\0'; /* n + 1 bytes: one over the limit */
    luna_http_result res;
    fetch(*state, "gateway", "POST", "/v1/echo", "application/json", big, &res);
    assert_int_equal(413, res.status);
    luna_http_result_free(&res);
    /* Exactly at the limit passes. */
    big[n - 1] = '"';
    big[n] = '\0';
    fetch(*state, "gateway", "POST", "/v1/echo", "application/json", big, &res);
    assert_int_equal(200, res.status);
    assert_non_null(strstr((const char *)res.body, "\"body_len\":" MAX_BODY));
    luna_http_result_free(&res);
    free(big);
}

static void test_wrong_content_type_415(void **state)
{
    luna_http_result res;
    fetch(*state, "gateway", "POST", "/v1/echo", "text/plain", "{}", &res);
    assert_int_equal(415, res.status);
    assert_error_body(&res, "unsupported_media_type");
    luna_http_result_free(&res);
    fetch(*state, "gateway", "POST", "/v1/echo", "application/JSON; charset=utf-8", "{}", &res);
    assert_int_equal(200, res.status);
    luna_http_result_free(&res);
}

static void test_request_id_echo(void **state)
{
    htu_raw r;
    char id[80];
    raw(*state, "gateway",
        "GET /v1/echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123.X_y\r\nConnection: "
        "close\r\n\r\n",
        &r);
    assert_true(htu_raw_header(&r, "X-Request-Id", id, sizeof(id)));
    assert_string_equal("abc-123.X_y", id);
    /* Malformed ids are replaced, never reflected. */
    raw(*state, "gateway",
        "GET /v1/echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: <script>\r\nConnection: "
        "close\r\n\r\n",
        &r);
    assert_true(htu_raw_header(&r, "X-Request-Id", id, sizeof(id)));
    assert_int_equal(32, (int)strlen(id));
    assert_null(strstr(r.buf, "<script>"));
}

static long metric_value(const char *text, const char *series)
{
    const char *p = text;
    size_t n = strlen(series);
    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtol(p + n + 1, NULL, 10);
        p += n;
    }
    return -1;
}

static void test_metrics_count_requests(void **state)
{
    fixture *f = *state;
    luna_http_result res;
    fetch(f, "gateway", "GET", "/metrics", NULL, NULL, &res);
    assert_int_equal(200, res.status);
    static const char ok_series[] =
        "luna_http_requests_total{route=\"/v1/echo\",method=\"GET\",status=\"200\"}";
    static const char nf_series[] =
        "luna_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}";
    long before = metric_value((const char *)res.body, ok_series);
    long nf_before = metric_value((const char *)res.body, nf_series);
    luna_http_result_free(&res);
    if (before < 0)
        before = 0;
    if (nf_before < 0)
        nf_before = 0;
    for (int i = 0; i < 3; i++) {
        fetch(f, "gateway", "GET", "/v1/echo", NULL, NULL, &res);
        assert_int_equal(200, res.status);
        luna_http_result_free(&res);
    }
    fetch(f, "gateway", "GET", "/v1/missing", NULL, NULL, &res);
    luna_http_result_free(&res);
    fetch(f, "tee", "GET", "/metrics", NULL, NULL, &res);
    assert_int_equal(200, res.status);
    const char *text = (const char *)res.body;
    assert_int_equal(before + 3, metric_value(text, ok_series));
    assert_int_equal(nf_before + 1, metric_value(text, nf_series));
    assert_int_equal(nf_before + 1,
                     metric_value(text, "luna_http_errors_total{route=\"unmatched\",method=\"GET\","
                                        "status=\"404\"}"));
    assert_int_equal(before + 3,
                     metric_value(text, "luna_http_request_duration_seconds_count{route=\"/v1/"
                                        "echo\",method=\"GET\",status=\"200\"}"));
    assert_non_null(strstr(text, "# TYPE luna_http_request_duration_seconds histogram\n"));
    assert_non_null(strstr(text, "le=\"+Inf\"}"));
    luna_http_result_free(&res);
}

typedef struct async_state {
    int done;
    int status[2];
    luna_err err[2];
    struct event_base *base;
} async_state;

static void on_async(const luna_http_response *resp, void *arg)
{
    async_state *st = arg;
    int i = st->done++;
    if (i < 2) {
        st->err[i] = resp->err;
        st->status[i] = resp->status;
    }
    if (st->done == 2)
        event_base_loopbreak(st->base);
}

static void test_async_client_concurrent(void **state)
{
    fixture *f = *state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    htu_client_opts(&f->env, "gateway", f->srv.port, "lunal://svc/kms", &o, paths);
    luna_http_client *c = NULL;
    assert_luna_ok(luna_http_client_new(base, &o, &c));
    async_state st = {.base = base};
    assert_luna_ok(luna_http_client_request(c, "GET", "/v1/slow", NULL, NULL, 0, "slow-1",
                                            on_async, &st));
    assert_luna_ok(luna_http_client_request(c, "POST", "/v1/echo", "application/json", "{}", 2,
                                            NULL, on_async, &st));
    /* Never delivered from inside the request call. */
    assert_int_equal(0, st.done);
    struct timeval limit = {10, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    assert_int_equal(2, st.done);
    assert_luna_ok(st.err[0]);
    assert_luna_ok(st.err[1]);
    /* The fast one finishes first. */
    assert_int_equal(200, st.status[0]);
    assert_int_equal(200, st.status[1]);
    /* A request left pending when the client goes away is still answered. */
    async_state st2 = {.base = base};
    assert_luna_ok(luna_http_client_request(c, "GET", "/v1/slow", NULL, NULL, 0, NULL, on_async,
                                            &st2));
    luna_http_client_free(c);
    assert_int_equal(1, st2.done);
    assert_luna_err(LUNA_ERR_UNAVAILABLE, st2.err[0]);
    event_base_free(base);
}

static void serial_of(fixture *f, char *out, size_t cap)
{
    htu_raw r;
    raw(f, "gateway", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    int st = 0;
    assert_true(htu_raw_status(&r, &st));
    assert_int_equal(200, st);
    assert_true(strlen(r.serial) > 0 && strlen(r.serial) < cap);
    memcpy(out, r.serial, strlen(r.serial) + 1);
}

static void test_cert_reload_without_restart(void **state)
{
    fixture *f = *state;
    char before[80], now[80];
    serial_of(f, before, sizeof(before));
    assert_int_equal(0, htu_renew(&f->env, "server"));
    bool changed = false;
    for (int i = 0; i < 100 && !changed; i++) { /* at most ~10 s */
        usleep(100000);
        serial_of(f, now, sizeof(now));
        changed = strcmp(before, now) != 0;
    }
    assert_true(changed);

    /* A broken renewal is refused: the server keeps the last good certificate. */
    char crt[HTU_PATH_MAX];
    htu_path(&f->env, "server", ".crt", crt, sizeof(crt));
    FILE *fp = fopen(crt, "w");
    assert_non_null(fp);
    fputs("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n", fp);
    fclose(fp);
    sleep(2); /* two reload periods */
    char after[80];
    serial_of(f, after, sizeof(after));
    assert_string_equal(now, after);
    /* Still the same process, never restarted. */
    assert_int_equal(0, kill(f->srv.pid, 0));
}

static void test_extra_request_headers(void **state)
{
    fixture *f = *state;
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    htu_client_opts(&f->env, "gateway", f->srv.port, "lunal://svc/kms", &o, paths);
    luna_http_result res;
    const luna_http_header auth[] = {{"Authorization", "Bearer test-token-123"},
                                     {"Idempotency-Key", "k-1"}};
    assert_luna_ok(luna_http_fetch_with(&o, "GET", "/v1/echo", NULL, NULL, 0, auth, 2, &res));
    assert_int_equal(200, res.status);
    assert_non_null(strstr((const char *)res.body, "\"authorization\":\"Bearer test-token-123\""));
    luna_http_result_free(&res);

    /* Headers the client owns, or that would split a line, are refused
     * before anything is sent. */
    const luna_http_header bad[][1] = {
        {{"Host", "evil"}},          {{"content-length", "5"}},
        {{"X-Request-Id", "abc"}},   {{"Authorization", "a\r\nX-Evil: 1"}},
        {{"Bad Name", "v"}},         {{"", "v"}},
        {{"Authorization", NULL}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_luna_err(LUNA_ERR_INVALID_ARG,
                        luna_http_fetch_with(&o, "GET", "/v1/echo", NULL, NULL, 0, bad[i], 1, &res));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_http_fetch_with(&o, "GET", "/v1/echo", NULL, NULL, 0, NULL, 1, &res));
}

static void test_sigterm_graceful(void **state)
{
    fixture *f = *state;
    htu_server s2;
    htu_server_start(&f->env, "gateway", NULL, &s2); /* any valid cert will do */
    /* A request in flight (1.2 s handler) when SIGTERM arrives is still answered. */
    SSL_CTX *ctx = htu_client_ctx(&f->env, "gateway", NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        usleep(400000);
        kill(s2.pid, SIGTERM);
        _exit(0);
    }
    htu_raw r;
    static const char req[] = "GET /v1/slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    htu_raw_exchange(s2.port, ctx, req, strlen(req), 5000, &r);
    SSL_CTX_free(ctx);
    int st = 0;
    assert_true(htu_raw_status(&r, &st));
    assert_int_equal(200, st);
    int rc = htu_server_stop(&s2, 0, 3000); /* signal 0: just wait for it */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    (void)waitpid(child, NULL, 0);
    assert_int_equal(0, rc);
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    /* The listener is gone. */
    htu_raw r2;
    htu_raw_exchange(s2.port, NULL, "x", 1, 1000, &r2);
    assert_false(r2.connected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_request_200),
        cmocka_unit_test(test_builtin_endpoints),
        cmocka_unit_test(test_prefix_allow_list),
        cmocka_unit_test(test_unknown_route_404),
        cmocka_unit_test(test_wrong_method_405),
        cmocka_unit_test(test_bad_path_400),
        cmocka_unit_test(test_body_limit_413),
        cmocka_unit_test(test_wrong_content_type_415),
        cmocka_unit_test(test_request_id_echo),
        cmocka_unit_test(test_metrics_count_requests),
        cmocka_unit_test(test_async_client_concurrent),
        cmocka_unit_test(test_extra_request_headers),
        cmocka_unit_test(test_cert_reload_without_restart),
        cmocka_unit_test(test_sigterm_graceful),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    if (server_exit != 0) {
        fprintf(stderr, "test server exited with %d (expected 0)\n", server_exit);
        return 1;
    }
    return rc;
}
