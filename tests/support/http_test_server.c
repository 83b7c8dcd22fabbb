/*
 * http_test_server.c - a small mTLS server process for the HTTP e2e and
 * attack tests.  Serves a few routes with different allow-lists, prints
 * "PORT <n>" on stdout once listening, and exits 0 after a graceful
 * shutdown (SIGTERM/SIGINT).  Test-only: never shipped, never a template
 * for handling secrets.
 *
 *   http_test_server --ca F --cert F --key F [--tee-ca F] [--max-body N]
 *                    [--reload-sec N] [--grace-ms N] [--timeout-sec N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "luna/http.h"
#include "luna/log.h"

typedef struct slow_reply {
    luna_http_request *req;
    struct event *ev;
} slow_reply;

static void handle_echo(luna_http_request *req, void *arg)
{
    (void)arg;
    const uint8_t *body;
    size_t len;
    if (luna_http_request_body(req, &body, &len) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_TOO_LARGE);
        return;
    }
    json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "identity", luna_http_request_identity(req),
                          "request_id", luna_http_request_id(req), "method",
                          luna_http_request_method(req), "body_len", (json_int_t)len);
    /* Echoed for the extra-headers test: test data only, never a real token. */
    const char *authz = luna_http_request_header(req, "Authorization");
    if (o != NULL && authz != NULL)
        json_object_set_new(o, "authorization", json_string(authz));
    luna_http_reply_json(req, 200, o);
    json_decref(o);
}

static void on_slow(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slow_reply *s = arg;
    static const char body[] = "{\"slow\":true}";
    luna_http_reply(s->req, 200, "application/json", body, sizeof(body) - 1);
    event_free(s->ev);
    free(s);
}

/* Answers after 1.2 s: an in-flight request for the shutdown test. */
static void handle_slow(luna_http_request *req, void *arg)
{
    struct event_base *base = arg;
    slow_reply *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    s->req = req;
    s->ev = evtimer_new(base, on_slow, s);
    struct timeval tv = {1, 200000};
    if (s->ev == NULL || evtimer_add(s->ev, &tv) != 0) {
        if (s->ev != NULL)
            event_free(s->ev);
        free(s);
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
    }
}

static const char *arg_value(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return NULL;
}

static unsigned arg_uint(int argc, char **argv, const char *name)
{
    const char *v = arg_value(argc, argv, name);
    return v != NULL ? (unsigned)strtoul(v, NULL, 10) : 0u;
}

int main(int argc, char **argv)
{
    struct event_base *base = event_base_new();
    if (base == NULL)
        return 1;
    luna_http_server_opts o = {
        .component = "http-test",
        .tls = {.ca_file = arg_value(argc, argv, "--ca"),
                .cert_file = arg_value(argc, argv, "--cert"),
                .key_file = arg_value(argc, argv, "--key"),
                .tee_ca_file = arg_value(argc, argv, "--tee-ca")},
        .max_body = arg_uint(argc, argv, "--max-body"),
        .reload_sec = arg_uint(argc, argv, "--reload-sec"),
        .shutdown_grace_ms = arg_uint(argc, argv, "--grace-ms"),
        .timeout_sec = arg_uint(argc, argv, "--timeout-sec"),
        .handle_signals = true,
    };
    luna_http_server *s = NULL;
    luna_err err = luna_http_server_new(base, &o, &s);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, "http-test", "cannot start", LUNA_LOG_ERR("err", err));
        event_base_free(base);
        return 1;
    }
    static const char *const gateway[] = {"lunal://svc/gateway"};
    static const char *const tees[] = {"lunal://tee/*"};
    const luna_http_route routes[] = {
        {LUNA_HTTP_GET, "/v1/echo", gateway, 1, NULL, handle_echo, NULL},
        {LUNA_HTTP_POST | LUNA_HTTP_PUT, "/v1/echo", gateway, 1, "application/json", handle_echo,
         NULL},
        {LUNA_HTTP_GET, "/v1/tee/*", tees, 1, NULL, handle_echo, NULL},
        {LUNA_HTTP_GET, "/v1/slow", gateway, 1, NULL, handle_slow, base},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (luna_http_server_add_route(s, &routes[i]) != LUNA_OK) {
            luna_http_server_free(s);
            event_base_free(base);
            return 1;
        }
    }
    printf("PORT %u\n", (unsigned)luna_http_server_port(s));
    fflush(stdout);
    int rc = event_base_dispatch(base) < 0 ? 1 : 0;
    luna_http_server_free(s);
    event_base_free(base);
    return rc;
}
