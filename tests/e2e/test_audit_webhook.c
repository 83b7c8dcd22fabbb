/*
 * test_audit_webhook.c - the audit log's webhook sink against a real
 * HTTPS receiver: entries matching the filter (operation prefix "key.",
 * outcomes success/denied) arrive as JSON, the others never do; while the
 * receiver is down (not listening) appends still succeed at once, the
 * service is restarted meanwhile, and once the receiver is back every
 * matching entry arrives (at least once, nothing skipped) and the durable
 * cursor stands past the last entry.  A receiver answering 503 is
 * retried the same way.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "audit_test_util.h"
#include "luna_test.h"

#define MAX_IDX 256

typedef struct receiver {
    atu_env *e;
    uint16_t port;
    struct event_base *base;
    luna_http_server *srv;
    struct event *stop_ev;
    int stop_pipe[2];
    pthread_t thread;
    bool running;
    /* under lock */
    pthread_mutex_t lock;
    unsigned got[MAX_IDX];  /* deliveries per index */
    unsigned posts;
    bool bad;               /* something arrived that the filter excludes */
    bool answer_503;
} receiver;

static atu_env env;
static receiver rcv;
static char cursor_path[HTU_PATH_MAX];

static void on_hook(luna_http_request *req, void *arg)
{
    receiver *r = arg;
    const uint8_t *body;
    size_t len;
    pthread_mutex_lock(&r->lock);
    r->posts++;
    bool fail503 = r->answer_503;
    pthread_mutex_unlock(&r->lock);
    if (fail503) {
        luna_http_reply_error(req, 503, "unavailable", "receiver busy");
        return;
    }
    if (luna_http_request_body(req, &body, &len) != LUNA_OK) {
        luna_http_reply_error(req, 400, "bad", "body");
        return;
    }
    json_error_t jerr;
    json_t *o = json_loadb((const char *)body, len, 0, &jerr);
    const json_t *arr = json_object_get(o, "entries");
    pthread_mutex_lock(&r->lock);
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        r->bad = true;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *it = json_array_get(arr, i);
        json_int_t idx = json_integer_value(json_object_get(it, "index"));
        const json_t *en = json_object_get(it, "entry");
        const char *op = json_string_value(json_object_get(en, "operation"));
        const char *oc = json_string_value(json_object_get(en, "outcome"));
        if (idx < 0 || idx >= MAX_IDX || op == NULL || oc == NULL ||
            strncmp(op, "key.", 4) != 0 || strcmp(oc, "failure") == 0)
            r->bad = true;
        else
            r->got[idx]++;
    }
    pthread_mutex_unlock(&r->lock);
    json_decref(o);
    luna_http_reply(req, 200, "application/json", "{}", 2);
}

static void rcv_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void *rcv_main(void *arg)
{
    receiver *r = arg;
    (void)event_base_dispatch(r->base);
    return NULL;
}

static void rcv_up(receiver *r)
{
    r->base = event_base_new();
    assert_non_null(r->base);
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&r->e->h, "gateway", ".crt", crt, sizeof(crt));
    htu_path(&r->e->h, "gateway", ".key", key, sizeof(key));
    luna_http_server_opts o = {.component = "hook-receiver",
                               .bind_addr = "127.0.0.1",
                               .port = r->port,
                               .tls = {.ca_file = r->e->h.ca_crt, .cert_file = crt,
                                       .key_file = key},
                               .public_listener = true};
    assert_luna_ok(luna_http_server_new(r->base, &o, &r->srv));
    const luna_http_route rt = {LUNA_HTTP_POST, "/hook", NULL, 0, "application/json", on_hook, r};
    assert_luna_ok(luna_http_server_add_route(r->srv, &rt));
    assert_int_equal(0, pipe(r->stop_pipe));
    r->stop_ev = event_new(r->base, r->stop_pipe[0], EV_READ, rcv_stop_cb, r->base);
    assert_non_null(r->stop_ev);
    assert_int_equal(0, event_add(r->stop_ev, NULL));
    assert_int_equal(0, pthread_create(&r->thread, NULL, rcv_main, r));
    r->running = true;
}

static void rcv_down(receiver *r)
{
    if (!r->running)
        return;
    assert_int_equal(1, write(r->stop_pipe[1], "x", 1));
    pthread_join(r->thread, NULL);
    luna_http_server_free(r->srv);
    event_free(r->stop_ev);
    event_base_free(r->base);
    close(r->stop_pipe[0]);
    close(r->stop_pipe[1]);
    r->running = false;
}

/* Appends one entry; returns its index. */
static uint64_t append(const char *op, const char *outcome, unsigned n)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"actor\":\"lunal://tee/t1\",\"tenant\":\"acme\",\"operation\":\"%s\","
             "\"outcome\":\"%s\",\"request_id\":\"wh-%u\"}",
             op, outcome, n);
    luna_http_result r;
    assert_int_equal(201, atu_fetch(&env, "kms", "POST", "/v1/audit/entries", body, &r));
    json_error_t jerr;
    json_t *o = json_loadb((const char *)r.body, r.body_len, 0, &jerr);
    uint64_t idx = (uint64_t)json_integer_value(json_object_get(o, "index"));
    json_decref(o);
    luna_http_result_free(&r);
    return idx;
}

static bool matching[MAX_IDX];
static uint64_t total;

static void append_mix(unsigned n)
{
    static const char *const ops[][2] = {{"key.release", "success"},
                                         {"tee.admit", "success"},
                                         {"key.release", "failure"},
                                         {"key.rotate", "denied"}};
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (unsigned)(total % 4);
        uint64_t idx = append(ops[k][0], ops[k][1], (unsigned)total);
        assert_int_equal(total, idx);
        matching[idx] = k == 0 || k == 3;
        total++;
    }
}

/* True once every matching index arrived (bounded wait). */
static bool all_delivered(int timeout_ms)
{
    for (int waited = 0;; waited += 50) {
        bool done = true;
        pthread_mutex_lock(&rcv.lock);
        for (uint64_t i = 0; i < total; i++)
            if (matching[i] && rcv.got[i] == 0)
                done = false;
        pthread_mutex_unlock(&rcv.lock);
        if (done)
            return true;
        if (waited >= timeout_ms)
            return false;
        usleep(50000);
    }
}

static int setup(void **state)
{
    (void)state;
    memset(&rcv, 0, sizeof(rcv));
    pthread_mutex_init(&rcv.lock, NULL);
    memset(&env, 0, sizeof(env));
    atu_setup(&env, NULL);
    rcv.e = &env;
    rcv.port = atu_free_port();
    htu_path(&env.h, "hook", ".cursor", cursor_path, sizeof(cursor_path));
    char extra[2048];
    snprintf(extra, sizeof(extra),
             ",\"webhooks\":[{\"url\":\"https://127.0.0.1:%u/hook\",\"cursor_file\":\"%s\","
             "\"operations\":[\"key.\"],\"outcomes\":[\"success\",\"denied\"],"
             "\"batch_max\":4}]",
             (unsigned)rcv.port, cursor_path);
    atu_rewrite_config(&env, extra);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rcv_down(&rcv);
    atu_teardown(&env);
    pthread_mutex_destroy(&rcv.lock);
    return 0;
}

static void test_webhook_delivery(void **state)
{
    (void)state;
    rcv_up(&rcv);
    atu_start(&env);
    append_mix(10);
    assert_true(all_delivered(10000));

    /* The receiver is down: appends are acknowledged as fast as ever. */
    rcv_down(&rcv);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    append_mix(10);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(sec < 5.0);
    usleep(1500000); /* a few failed attempts */
    /* The service restarts while the receiver is still down. */
    assert_int_equal(0, atu_stop(&env, SIGTERM));
    atu_start(&env);
    append_mix(5);
    usleep(500000);
    /* Back: everything matching arrives, nothing else. */
    rcv_up(&rcv);
    assert_true(all_delivered(30000));

    /* 503 answers are retried the same way. */
    pthread_mutex_lock(&rcv.lock);
    rcv.answer_503 = true;
    unsigned posts_before = rcv.posts;
    pthread_mutex_unlock(&rcv.lock);
    append_mix(4);
    usleep(1500000);
    pthread_mutex_lock(&rcv.lock);
    assert_true(rcv.posts > posts_before);
    rcv.answer_503 = false;
    pthread_mutex_unlock(&rcv.lock);
    assert_true(all_delivered(30000));

    pthread_mutex_lock(&rcv.lock);
    assert_false(rcv.bad);
    for (uint64_t i = 0; i < total; i++)
        if (!matching[i])
            assert_int_equal(0, rcv.got[i]);
    pthread_mutex_unlock(&rcv.lock);

    /* The cursor is durable and past the last entry. */
    for (int i = 0; i < 100; i++) {
        size_t len = 0;
        uint8_t *c = luna_test_read_file(cursor_path, &len);
        char want[32];
        snprintf(want, sizeof(want), "next=%llu\n", (unsigned long long)total);
        bool ok = len == strlen(want) && memcmp(c, want, len) == 0;
        free(c);
        if (ok)
            return;
        usleep(50000);
    }
    fail_msg("the webhook cursor did not reach %llu", (unsigned long long)total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_webhook_delivery, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
