/*
 * test_mtls_tee_ca.c - the anchor rule of docs/protocol.md, attacked over
 * real mTLS against the test server process: with a TEE CA configured, a
 * certificate from the TEE CA is accepted only for a lunal://tee/ identity,
 * and a lunal://tee/ identity only from the TEE CA.  So whoever holds the
 * TEE CA (the attestation service) cannot mint a service identity, and the
 * platform CA's holder cannot mint a TEE.  Each refusal has a positive
 * control on the same server.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "http_test_util.h"
#include "luna_test.h"

typedef struct fixture {
    htu_env env;
    htu_server srv;
    char tee_ca_dir[HTU_PATH_MAX];
    char tee_ca_crt[HTU_PATH_MAX];
} fixture;

static int server_exit = -1;

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof(f));
    htu_setup(&f.env);
    htu_path(&f.env, "tee-ca", "", f.tee_ca_dir, sizeof(f.tee_ca_dir));
    htu_path(&f.env, "tee-ca", "/ca.crt", f.tee_ca_crt, sizeof(f.tee_ca_crt));
    char *argv[] = {(char *)LUNA_CA_BIN, (char *)"init", (char *)"--dir", f.tee_ca_dir, NULL};
    assert_int_equal(0, htu_run(argv));

    assert_int_equal(0, htu_issue(&f.env, NULL, "lunal://svc/kms", "server", NULL));
    assert_int_equal(0, htu_issue(&f.env, NULL, "lunal://svc/gateway", "gateway", NULL));
    assert_int_equal(0, htu_issue(&f.env, f.tee_ca_dir, "lunal://tee/t1", "tee", NULL));
    /* The TEE CA minting a service identity, the platform CA minting a TEE. */
    assert_int_equal(0, htu_issue(&f.env, f.tee_ca_dir, "lunal://svc/gateway", "forged-svc", NULL));
    assert_int_equal(0, htu_issue(&f.env, NULL, "lunal://tee/t1", "forged-tee", NULL));
    assert_int_equal(0, htu_issue(&f.env, f.tee_ca_dir, "lunal://svc/kms", "forged-server", NULL));

    const char *const extra[] = {"--tee-ca", f.tee_ca_crt, NULL};
    htu_server_start(&f.env, "server", extra, &f.srv);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    server_exit = htu_server_stop(&f->srv, SIGTERM, 5000);
    htu_teardown(&f->env);
    return 0;
}

/* GET path with client certificate <name>; returns the HTTP status or 0. */
static int get_status(fixture *f, const char *name, const char *path, char *code, size_t cap)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    htu_client_opts(&f->env, name, f->srv.port, "lunal://svc/kms", &o, paths);
    o.tls.tee_ca_file = f->tee_ca_crt;
    luna_http_result res;
    if (luna_http_fetch(&o, "GET", path, NULL, NULL, 0, &res) != LUNA_OK)
        return 0;
    int status = res.status;
    if (code != NULL && cap > 0) {
        code[0] = '\0';
        json_error_t je;
        json_t *body = json_loads((const char *)res.body, 0, &je);
        const char *c =
            json_string_value(json_object_get(json_object_get(body, "error"), "code"));
        if (c != NULL)
            snprintf(code, cap, "%s", c);
        json_decref(body);
    }
    luna_http_result_free(&res);
    return status;
}

static void tee_from_tee_ca_admitted(void **state)
{
    assert_int_equal(200, get_status(*state, "tee", "/v1/tee/info", NULL, 0));
}

static void service_from_platform_ca_admitted(void **state)
{
    assert_int_equal(200, get_status(*state, "gateway", "/v1/echo", NULL, 0));
}

/*
 * A raw OpenSSL client: luna_http itself refuses to load a certificate that
 * breaks the rule, so the attacker's side is built by hand.  The handshake
 * completes (the chain is valid); the identity is refused.
 */
static void raw_get_refused(fixture *f, const char *cert, const char *path)
{
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    SSL_CTX *ctx = htu_client_ctx(&f->env, cert, NULL, TLS1_3_VERSION, TLS1_3_VERSION);
    htu_raw r;
    htu_raw_exchange(f->srv.port, ctx, req, strlen(req), 5000, &r);
    SSL_CTX_free(ctx);
    int st = 0;
    assert_true(r.handshake_ok);
    assert_true(htu_raw_status(&r, &st));
    assert_int_equal(401, st);
    assert_non_null(strstr(htu_raw_body(&r), "\"code\":\"unauthenticated\""));
}

static void service_identity_from_tee_ca_refused(void **state)
{
    raw_get_refused(*state, "forged-svc", "/v1/echo");
}

static void tee_identity_from_platform_ca_refused(void **state)
{
    raw_get_refused(*state, "forged-tee", "/v1/tee/info");
}

static void luna_http_refuses_to_load_a_forged_certificate(void **state)
{
    /* The same forged certificates cannot even be loaded by luna_http. */
    assert_int_equal(0, get_status(*state, "forged-svc", "/v1/echo", NULL, 0));
    assert_int_equal(0, get_status(*state, "forged-tee", "/v1/tee/info", NULL, 0));
}

static void client_refuses_service_server_from_tee_ca(void **state)
{
    fixture *f = *state;
    htu_server rogue;
    /* A server holding a TEE-CA certificate that names lunal://svc/kms. */
    htu_env env2 = f->env;
    snprintf(env2.ca_crt, sizeof(env2.ca_crt), "%s", f->tee_ca_crt);
    htu_server_start(&env2, "forged-server", NULL, &rogue);
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    htu_client_opts(&f->env, "gateway", rogue.port, "lunal://svc/kms", &o, paths);
    o.tls.tee_ca_file = f->tee_ca_crt;
    luna_http_result res;
    luna_err err = luna_http_fetch(&o, "GET", "/v1/echo", NULL, NULL, 0, &res);
    assert_int_equal(0, htu_server_stop(&rogue, SIGTERM, 5000));
    assert_luna_err(LUNA_ERR_TLS, err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tee_from_tee_ca_admitted),
        cmocka_unit_test(service_from_platform_ca_admitted),
        cmocka_unit_test(service_identity_from_tee_ca_refused),
        cmocka_unit_test(tee_identity_from_platform_ca_refused),
        cmocka_unit_test(luna_http_refuses_to_load_a_forged_certificate),
        cmocka_unit_test(client_refuses_service_server_from_tee_ca),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    if (server_exit != 0) {
        fprintf(stderr, "server exit status %d (want 0)\n", server_exit);
        return 1;
    }
    return failed;
}
