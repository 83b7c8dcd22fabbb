/*
 * test_sdk_retry.c - the SDK's pause between attempts (docs/sdk.md
 * "Retries"), over real HTTPS against the stub gateway: a busy platform's
 * Retry-After is waited for (never sooner), a 429 without it still backs
 * off, a 429 asking for longer than the cap ends the request at once, a
 * request that keeps meeting 503s gives up inside the client's timeout,
 * and no pause follows the last attempt.  The wait formula itself is
 * checked exactly (sdk_retry_wait_ms).  Timing is asserted loosely: lower
 * bounds are what the client promised, upper bounds have seconds of slack.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luna_test.h"
#include "lunal.h"
#include "sdk_fixture.h"
#include "sdk_internal.h"
#include "sdk_stub_gateway.h"

static sdk_fx fx;
static stub_gw gw;

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

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

static luna_client *client(unsigned timeout_ms, unsigned attempts)
{
    luna_client_opts o = {.config_file = fx.config, .api_key = STUB_API_KEY,
                          .timeout_ms = timeout_ms, .max_attempts = attempts};
    luna_client *c = NULL;
    char why[LUNAL_REASON_MAX];
    luna_err err = luna_client_create(&o, &c, why);

    if (err != LUNA_OK)
        fprintf(stderr, "client: %s\n", why);
    assert_luna_ok(err);
    return c;
}

static void busy(int status, unsigned retry_after, int left)
{
    pthread_mutex_lock(&gw.lock);
    gw.busy_status = status;
    gw.busy_retry_after = retry_after;
    gw.busy_left = left;
    gw.selects = gw.runs = gw.n_attempts = 0;
    memset(gw.select_ms, 0, sizeof gw.select_ms);
    pthread_mutex_unlock(&gw.lock);
}

static int selects(void)
{
    pthread_mutex_lock(&gw.lock);
    int n = gw.selects;
    pthread_mutex_unlock(&gw.lock);
    return n;
}

static uint64_t select_gap_ms(int i)
{
    pthread_mutex_lock(&gw.lock);
    uint64_t d = gw.select_ms[i + 1] - gw.select_ms[i];
    pthread_mutex_unlock(&gw.lock);
    return d;
}

static void test_wait_formula(void **state)
{
    unsigned w = 0;
    (void)state;

    /* First retry: Retry-After plus 50..100 ms of jitter. */
    assert_true(sdk_retry_wait_ms(503, 1, 0, 0, &w));
    assert_int_equal(1050, w);
    assert_true(sdk_retry_wait_ms(503, 1, 0, 50, &w));
    assert_int_equal(1100, w);
    assert_true(sdk_retry_wait_ms(503, 1, 0, 51, &w));
    assert_int_equal(1050, w);
    /* No header: backoff alone, doubling per retry up to the cap. */
    assert_true(sdk_retry_wait_ms(429, 0, 0, 0, &w));
    assert_int_equal(SDK_BACKOFF_BASE_MS / 2, w);
    assert_true(sdk_retry_wait_ms(503, 0, 2, 0, &w));
    assert_int_equal(200, w);
    for (unsigned retry = 0; retry < 70; retry += 7) {
        for (uint32_t rnd = 0; rnd < 5000; rnd += 333) {
            assert_true(sdk_retry_wait_ms(503, 2, retry, rnd, &w));
            assert_true(w >= 2000 + SDK_BACKOFF_BASE_MS / 2);
            assert_true(w <= 2000 + SDK_BACKOFF_MAX_MS);
        }
    }
    assert_true(sdk_retry_wait_ms(503, 0, 31, UINT32_MAX, &w));
    assert_true(w >= SDK_BACKOFF_MAX_MS / 2 && w <= SDK_BACKOFF_MAX_MS);
    /* A 503 asking for longer is cut to the cap: another TEE may serve. */
    assert_true(sdk_retry_wait_ms(503, 3600, 0, 0, &w));
    assert_int_equal(SDK_RETRY_AFTER_MAX_S * 1000u + SDK_BACKOFF_BASE_MS / 2, w);
    /* A rate limit asking for longer will not lift in time: no retry. */
    assert_true(sdk_retry_wait_ms(429, SDK_RETRY_AFTER_MAX_S, 0, 0, &w));
    assert_false(sdk_retry_wait_ms(429, SDK_RETRY_AFTER_MAX_S + 1, 0, 0, &w));
    assert_false(sdk_retry_wait_ms(429, 1, 0, 0, NULL));
}

/* 503 tee_unavailable with Retry-After: 1, then a healthy selection. */
static void test_retry_after_waited_for(void **state)
{
    luna_client *c = client(10000, 3);
    (void)state;

    busy(503, 1, 1);
    uint64_t t0 = now_ms();
    luna_result *r = luna_request(c, "upper", "abc", 3);
    uint64_t spent = now_ms() - t0;
    assert_non_null(r);
    if (r->err != LUNA_OK)
        fprintf(stderr, "request: %s\n", r->reason);
    assert_luna_ok(r->err);
    assert_memory_equal("ABC", r->data, 3);
    assert_int_equal(2, r->attempts);
    assert_int_equal(2, selects());
    /* Not sooner than asked (the stub stamps selections; 20 ms of clock
       slack), and not much later: 1 s + at most 100 ms of jitter. */
    uint64_t gap = select_gap_ms(0);
    fprintf(stderr, "retry-after 1 s: selections %llu ms apart, request %llu ms\n",
            (unsigned long long)gap, (unsigned long long)spent);
    assert_true(gap >= 1000 - 20);
    assert_true(spent >= 1000 - 20);
    assert_true(gap < 4000);
    luna_result_free(r);
    luna_client_free(c);
}

/* A 429 without Retry-After still backs off before the next attempt. */
static void test_rate_limit_backs_off(void **state)
{
    luna_client *c = client(10000, 3);
    (void)state;

    busy(429, 0, 1);
    luna_result *r = luna_request(c, "upper", "abc", 3);
    assert_non_null(r);
    assert_luna_ok(r->err);
    assert_int_equal(2, r->attempts);
    uint64_t gap = select_gap_ms(0);
    assert_true(gap >= SDK_BACKOFF_BASE_MS / 2 - 10);
    assert_true(gap < 3000);
    luna_result_free(r);
    luna_client_free(c);
}

/* Always busy, Retry-After: 2, timeout 3 s, 8 attempts allowed: one wait,
   then the next would end past the timeout, so the request gives up. */
static void test_gives_up_inside_timeout(void **state)
{
    const unsigned timeout = 3000;
    luna_client *c = client(timeout, 8);
    (void)state;

    busy(503, 2, -1);
    uint64_t t0 = now_ms();
    luna_result *r = luna_request(c, "upper", "abc", 3);
    uint64_t spent = now_ms() - t0;
    assert_non_null(r);
    fprintf(stderr, "always busy: %u attempts in %llu ms: %s\n", r->attempts,
            (unsigned long long)spent, r->reason);
    assert_int_equal(LUNA_ERR_UNAVAILABLE, r->err);
    assert_null(r->data);
    assert_int_equal(2, r->attempts);
    assert_int_equal(2, selects());
    assert_true(select_gap_ms(0) >= 2000 - 20);
    assert_true(spent >= 2000 - 20);
    assert_true(spent < timeout);
    assert_non_null(strstr(r->reason, "HTTP 503"));
    assert_non_null(strstr(r->reason, "timeout"));
    pthread_mutex_lock(&gw.lock);
    int runs = gw.runs;
    pthread_mutex_unlock(&gw.lock);
    assert_int_equal(0, runs); /* no envelope went anywhere */
    luna_result_free(r);
    luna_client_free(c);
}

/* A rate limit asking for a minute: no attempt wasted, no wait. */
static void test_long_rate_limit_not_retried(void **state)
{
    luna_client *c = client(30000, 8);
    (void)state;

    busy(429, 60, -1);
    uint64_t t0 = now_ms();
    luna_result *r = luna_request(c, "upper", "abc", 3);
    uint64_t spent = now_ms() - t0;
    assert_non_null(r);
    assert_int_equal(LUNA_ERR_UNAVAILABLE, r->err);
    assert_int_equal(1, r->attempts);
    assert_int_equal(1, selects());
    assert_true(spent < 2000);
    assert_non_null(strstr(r->reason, "HTTP 429"));
    assert_non_null(strstr(r->reason, "Retry-After"));
    luna_result_free(r);
    luna_client_free(c);
}

/* The last attempt is not followed by a pause. */
static void test_no_pause_after_last_attempt(void **state)
{
    luna_client *c = client(30000, 1);
    (void)state;

    busy(503, 5, -1);
    uint64_t t0 = now_ms();
    luna_result *r = luna_request(c, "upper", "abc", 3);
    uint64_t spent = now_ms() - t0;
    assert_non_null(r);
    assert_int_equal(LUNA_ERR_UNAVAILABLE, r->err);
    assert_int_equal(1, r->attempts);
    assert_true(spent < 2000);
    luna_result_free(r);
    luna_client_free(c);
    busy(0, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_formula),
        cmocka_unit_test(test_retry_after_waited_for),
        cmocka_unit_test(test_rate_limit_backs_off),
        cmocka_unit_test(test_gives_up_inside_timeout),
        cmocka_unit_test(test_long_rate_limit_not_retried),
        cmocka_unit_test(test_no_pause_after_last_attempt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
