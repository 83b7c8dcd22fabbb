/*
 * test_sdk_flow.c - luna_request over real HTTPS against the stub gateway:
 * the result comes back correct and its receipt names this request and the
 * attested TEE; a TEE that dies mid-request is retried on another with a
 * new request id and the same idempotency key; a tampered result, a rogue
 * TEE, a job the deployment does not offer, a bad API key and an untrusted
 * TLS certificate all fail with their typed error and no data; the
 * attestation check and many threads on one client work.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna_test.h"
#include "lunal.h"
#include "sdk_fixture.h"
#include "sdk_stub_gateway.h"

static sdk_fx fx;
static stub_gw gw;

static int setup(void **state)
{
    (void)state;
    sdk_fx_init(&fx, FX_TCB_CURRENT);
    memset(&gw, 0, sizeof gw);
    stub_gw_start(&gw, &fx);
    sdk_fx_write_config(&fx, gw.url, gw.env.ca_crt);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stub_gw_stop(&gw);
    sdk_fx_free(&fx);
    return 0;
}

static luna_client *client_with_key(const char *key)
{
    luna_client_opts o = {.config_file = fx.config, .api_key = key};
    luna_client *c = NULL;
    char why[LUNAL_REASON_MAX];
    luna_err err = luna_client_create(&o, &c, why);

    if (err != LUNA_OK)
        fprintf(stderr, "client: %s\n", why);
    assert_luna_ok(err);
    return c;
}

static void reset_knobs(void)
{
    pthread_mutex_lock(&gw.lock);
    gw.tee1_dead = gw.tamper_result = gw.rogue_evidence = false;
    gw.runs = gw.selects = gw.n_attempts = 0;
    pthread_mutex_unlock(&gw.lock);
}

static void test_request_ok(void **state)
{
    luna_client *c = client_with_key(STUB_API_KEY);
    luna_result *r;
    char enc[65];
    (void)state;

    reset_knobs();
    r = luna_request(c, "upper", "hello, tee", 10);
    assert_non_null(r);
    if (r->err != LUNA_OK)
        fprintf(stderr, "request: %s\n", r->reason);
    assert_luna_ok(r->err);
    assert_int_equal(10, r->len);
    assert_memory_equal("HELLO, TEE", r->data, 10);
    assert_int_equal(1, r->attempts);
    assert_string_equal("acme", r->receipt.tenant);
    assert_string_equal("upper", r->receipt.job);
    assert_string_equal("demo", r->receipt.deployment_id);
    assert_true(r->receipt.simulated);
    assert_luna_ok(luna_hex_encode(fx.m.mr_enclave, 32, enc, sizeof enc));
    assert_string_equal(enc, r->receipt.measurement_hex);
    assert_string_equal(gw.reqid[0], r->receipt.request_id);
    luna_result_free(r);
    /* Empty data is a valid request too. */
    r = luna_request(c, "upper", NULL, 0);
    assert_non_null(r);
    assert_luna_ok(r->err);
    assert_int_equal(0, r->len);
    luna_result_free(r);
    luna_client_free(c);
}

static void test_retry_on_dead_tee(void **state)
{
    luna_client *c = client_with_key(STUB_API_KEY);
    luna_result *r;
    (void)state;

    reset_knobs();
    pthread_mutex_lock(&gw.lock);
    gw.tee1_dead = true;
    ((void)0);
    pthread_mutex_unlock(&gw.lock);
    /* Round robin: make sure the first choice is the dead tee-1. */
    for (int i = 0; i < 4; i++) {
        r = luna_request(c, "upper", "abc", 3);
        assert_non_null(r);
        assert_luna_ok(r->err);
        assert_memory_equal("ABC", r->data, 3);
        assert_string_equal("tee-2", r->receipt.tee_id);
        luna_result_free(r);
    }
    pthread_mutex_lock(&gw.lock);
    /* Some request met tee-1 first: 2 attempts, same idempotency key,
       distinct request ids. */
    assert_true(gw.n_attempts >= 2);
    assert_string_equal(gw.idem[0], gw.idem[1]);
    assert_string_not_equal(gw.reqid[0], gw.reqid[1]);
    pthread_mutex_unlock(&gw.lock);
    luna_client_free(c);
}

static void test_tampered_result(void **state)
{
    luna_client *c = client_with_key(STUB_API_KEY);
    luna_result *r;
    (void)state;

    reset_knobs();
    gw.tamper_result = true;
    r = luna_request(c, "upper", "secret", 6);
    assert_non_null(r);
    assert_int_equal(LUNA_ERR_VERIFY, r->err);
    assert_null(r->data);
    assert_non_null(strstr(r->reason, "result does not verify"));
    luna_result_free(r);
    gw.tamper_result = false;
    luna_client_free(c);
}

static void test_rogue_tee_gets_nothing(void **state)
{
    luna_client *c = client_with_key(STUB_API_KEY);
    luna_result *r;
    (void)state;

    reset_knobs();
    pthread_mutex_lock(&gw.lock);
    gw.rogue_evidence = true;
    pthread_mutex_unlock(&gw.lock);
    r = luna_request(c, "upper", "secret", 6);
    assert_non_null(r);
    assert_int_equal(LUNA_ERR_VERIFY, r->err);
    assert_non_null(strstr(r->reason, "measurement_mismatch"));
    pthread_mutex_lock(&gw.lock);
    assert_int_equal(0, gw.runs); /* the data never left the client */
    assert_int_equal(0, gw.n_attempts);
    gw.rogue_evidence = false;
    pthread_mutex_unlock(&gw.lock);
    luna_result_free(r);
    luna_client_free(c);
}

static void test_job_not_offered(void **state)
{
    luna_client *c = client_with_key(STUB_API_KEY);
    luna_result *r;
    (void)state;

    reset_knobs();
    r = luna_request(c, "exfiltrate", "x", 1);
    assert_non_null(r);
    assert_int_equal(LUNA_ERR_VERIFY, r->err);
    assert_non_null(strstr(r->reason, "does not offer job"));
    assert_int_equal(0, gw.runs);
    luna_result_free(r);
    luna_client_free(c);
}

static void test_bad_api_key(void **state)
{
    luna_client *c = client_with_key("lk_wrong");
    luna_result *r;
    (void)state;

    r = luna_request(c, "upper", "x", 1);
    assert_non_null(r);
    assert_int_equal(LUNA_ERR_UNAUTHENTICATED, r->err);
    assert_null(strstr(r->reason, "lk_wrong"));
    luna_result_free(r);
    luna_client_free(c);
}

static void test_untrusted_tls(void **state)
{
    luna_client_opts o = {.tenant_id = "acme", .gateway_url = gw.url, .api_key = STUB_API_KEY};
    luna_client *c = NULL;
    luna_result *r;
    (void)state;

    unsetenv("LUNAL_CA_FILE");
    unsetenv("LUNAL_CONFIG");
    assert_luna_ok(luna_client_create(&o, &c, NULL));
    r = luna_request(c, "upper", "x", 1);
    assert_non_null(r);
    assert_int_equal(LUNA_ERR_TLS, r->err);
    luna_result_free(r);
    luna_client_free(c);
}

static void test_attestation_verify(void **state)
{
    luna_client *c = client_with_key(STUB_API_KEY);
    luna_attestation_report rep;
    char *raw = NULL, why[LUNAL_REASON_MAX];
    (void)state;

    assert_luna_ok(luna_attestation_verify(c, "demo", NULL, &rep, &raw, why));
    assert_true(rep.verified);
    assert_true(rep.simulated);
    assert_non_null(raw);
    assert_non_null(strstr(raw, "\"mr_enclave\""));
    free(raw);
    assert_luna_ok(luna_attestation_verify(c, "demo", "tee-2", &rep, NULL, why));
    assert_false(rep.verified);
    assert_non_null(strstr(rep.reason, "quarantined"));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_attestation_verify(c, "bad id", NULL, &rep, NULL, why));
    luna_client_free(c);
}

static void *hammer(void *arg)
{
    luna_client *c = arg;
    long bad = 0;

    for (int i = 0; i < 5; i++) {
        luna_result *r = luna_request(c, "upper", "thread", 6);
        if (r == NULL || r->err != LUNA_OK || r->len != 6 || memcmp(r->data, "THREAD", 6) != 0)
            bad++;
        luna_result_free(r);
    }
    return (void *)bad;
}

static void test_threads(void **state)
{
    luna_client *c = client_with_key(STUB_API_KEY);
    pthread_t th[4];
    void *bad;
    (void)state;

    reset_knobs();
    for (int i = 0; i < 4; i++)
        assert_int_equal(0, pthread_create(&th[i], NULL, hammer, c));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(0, pthread_join(th[i], &bad));
        assert_int_equal(0, (long)bad);
    }
    luna_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_ok),
        cmocka_unit_test(test_retry_on_dead_tee),
        cmocka_unit_test(test_tampered_result),
        cmocka_unit_test(test_rogue_tee_gets_nothing),
        cmocka_unit_test(test_job_not_offered),
        cmocka_unit_test(test_bad_api_key),
        cmocka_unit_test(test_untrusted_tls),
        cmocka_unit_test(test_attestation_verify),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
