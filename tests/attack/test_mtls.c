/*
 * test_mtls.c - attacks on the mTLS transport of luna/http.h, against the
 * test server running as a separate process on loopback.  A refusal means
 * no HTTP response at all (the handshake fails), except for a verified
 * certificate of the wrong component, which gets a 403 JSON body.  Each
 * refusal is paired with a positive control on the same server so a test
 * cannot pass just because nothing works.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "http_test_util.h"
#include "luna_test.h"

static const char GET_ECHO[] = "GET /v1/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

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
    assert_int_equal(0, htu_issue(&f.env, NULL, "lunal://svc/audit", "audit", NULL));
    /* Valid for one hour, twenty years ago. */
    const char *const expired[] = {"--not-before", "946684800", "--not-after", "946688400", NULL};
    assert_int_equal(0, htu_issue(&f.env, NULL, "lunal://svc/gateway", "expired", expired));
    /* Another CA issuing the very identity the route admits. */
    char other[HTU_PATH_MAX];
    htu_path(&f.env, "other-ca", "", other, sizeof(other));
    char *argv[] = {(char *)LUNA_CA_BIN, (char *)"init", (char *)"--dir", other, NULL};
    assert_int_equal(0, htu_run(argv));
    assert_int_equal(0, htu_issue(&f.env, other, "lunal://svc/gateway", "foreign", NULL));
    assert_int_equal(0, htu_issue(&f.env, other, "lunal://svc/kms", "foreign-server", NULL));
    htu_server_start(&f.env, "server", NULL, &f.srv);
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

static void raw_get(fixture *f, const char *cert, int min_v, int max_v, htu_raw *r)
{
    SSL_CTX *ctx = htu_client_ctx(&f->env, cert, NULL, min_v, max_v);
    htu_raw_exchange(f->srv.port, ctx, GET_ECHO, strlen(GET_ECHO), 5000, r);
    SSL_CTX_free(ctx);
}

static void assert_refused(const htu_raw *r)
{
    int st = 0;
    assert_true(r->connected);
    assert_false(htu_raw_status(r, &st));
    assert_int_equal(0, (int)r->n); /* not one byte of HTTP */
}

static void test_valid_client_gets_200(void **state)
{
    fixture *f = *state;
    htu_raw r;
    raw_get(f, "gateway", TLS1_2_VERSION, TLS1_3_VERSION, &r);
    int st = 0;
    assert_true(r.handshake_ok);
    assert_true(htu_raw_status(&r, &st));
    assert_int_equal(200, st);
    assert_non_null(strstr(htu_raw_body(&r), "\"identity\":\"lunal://svc/gateway\""));
}

static void test_wrong_ca_refused(void **state)
{
    htu_raw r;
    raw_get(*state, "foreign", TLS1_3_VERSION, TLS1_3_VERSION, &r);
    assert_refused(&r);
}

static void test_expired_cert_refused(void **state)
{
    htu_raw r;
    raw_get(*state, "expired", TLS1_3_VERSION, TLS1_3_VERSION, &r);
    assert_refused(&r);
}

static void test_no_client_cert_refused(void **state)
{
    htu_raw r;
    raw_get(*state, NULL, TLS1_3_VERSION, TLS1_3_VERSION, &r);
    assert_refused(&r);
}

static void test_tls12_client_refused(void **state)
{
    htu_raw r;
    raw_get(*state, "gateway", TLS1_2_VERSION, TLS1_2_VERSION, &r);
    assert_false(r.handshake_ok);
    assert_refused(&r);
}

static void test_plain_http_refused(void **state)
{
    fixture *f = *state;
    htu_raw r;
    htu_raw_exchange(f->srv.port, NULL, GET_ECHO, strlen(GET_ECHO), 5000, &r);
    assert_true(r.connected);
    /* At most a TLS alert record comes back, never HTTP. */
    assert_null(strstr(r.buf, "HTTP/"));
    assert_true(r.n == 0 || (unsigned char)r.buf[0] == 0x15);
}

static void test_wrong_component_gets_403_json(void **state)
{
    fixture *f = *state;
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    htu_client_opts(&f->env, "audit", f->srv.port, "lunal://svc/kms", &o, paths);
    luna_http_result res;
    assert_luna_ok(luna_http_fetch(&o, "GET", "/v1/echo", NULL, NULL, 0, &res));
    assert_int_equal(403, res.status);
    json_error_t je;
    json_t *body = json_loads((const char *)res.body, 0, &je);
    assert_non_null(body);
    const char *code = json_string_value(json_object_get(json_object_get(body, "error"), "code"));
    assert_non_null(code);
    assert_string_equal("forbidden", code);
    assert_non_null(json_object_get(json_object_get(body, "error"), "message"));
    json_decref(body);
    luna_http_result_free(&res);

    /* The same client is admitted where every platform identity is. */
    assert_luna_ok(luna_http_fetch(&o, "GET", "/healthz", NULL, NULL, 0, &res));
    assert_int_equal(200, res.status);
    luna_http_result_free(&res);
}

static void test_client_checks_server_identity(void **state)
{
    fixture *f = *state;
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    luna_http_result res;
    /* The server is lunal://svc/kms; a client expecting IAM must not talk to it. */
    htu_client_opts(&f->env, "gateway", f->srv.port, "lunal://svc/iam", &o, paths);
    assert_luna_err(LUNA_ERR_TLS, luna_http_fetch(&o, "GET", "/v1/echo", NULL, NULL, 0, &res));
    htu_client_opts(&f->env, "gateway", f->srv.port, "lunal://svc/kms", &o, paths);
    assert_luna_ok(luna_http_fetch(&o, "GET", "/v1/echo", NULL, NULL, 0, &res));
    assert_int_equal(200, res.status);
    luna_http_result_free(&res);
}

static void test_client_refuses_server_of_other_ca(void **state)
{
    fixture *f = *state;
    htu_server rogue;
    htu_env env2 = f->env;
    /* A server whose certificate (right identity) comes from the other CA. */
    htu_path(&f->env, "other-ca", "/ca.crt", env2.ca_crt, sizeof(env2.ca_crt));
    htu_server_start(&env2, "foreign-server", NULL, &rogue);
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    luna_http_result res;
    htu_client_opts(&f->env, "gateway", rogue.port, "lunal://svc/kms", &o, paths);
    luna_err err = luna_http_fetch(&o, "GET", "/v1/echo", NULL, NULL, 0, &res);
    assert_int_equal(0, htu_server_stop(&rogue, SIGTERM, 5000));
    assert_luna_err(LUNA_ERR_TLS, err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_client_gets_200),
        cmocka_unit_test(test_wrong_ca_refused),
        cmocka_unit_test(test_expired_cert_refused),
        cmocka_unit_test(test_no_client_cert_refused),
        cmocka_unit_test(test_tls12_client_refused),
        cmocka_unit_test(test_plain_http_refused),
        cmocka_unit_test(test_wrong_component_gets_403_json),
        cmocka_unit_test(test_client_checks_server_identity),
        cmocka_unit_test(test_client_refuses_server_of_other_ca),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    if (server_exit != 0) {
        fprintf(stderr, "test server exited with %d (expected 0)\n", server_exit);
        return 1;
    }
    return rc;
}
