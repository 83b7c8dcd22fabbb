/*
 * http_server.c - the mTLS HTTP server: evhttp over bufferevent_openssl,
 * routing with per-route identity allow-lists, JSON errors, request ids,
 * metrics, access logs, certificate reload and graceful shutdown.
 *
 * Owns the evhttp instance, its listener and every luna_http_request.
 * Must never serve a request that did not arrive over a verified TLS 1.3
 * connection with a platform identity (on a public listener: over TLS 1.3
 * at all, as "anonymous"), never call a handler before the
 * allow-list admitted the caller, never reflect request bytes into an
 * error body, and never put more than the route label into a metric.
 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "luna/bytes.h"
#include "luna/log.h"
#include "luna/pki.h"

#define LUNA_HTTP_DRAIN_TICK_MS 20
#define LUNA_HTTP_JSON "application/json"
#define LUNA_HTTP_PROM "text/plain; version=0.0.4; charset=utf-8"
/* Sent when even the error body cannot be built. */
static const char luna_http_fallback_body[] =
    "{\"error\":{\"code\":\"internal_error\",\"message\":\"internal error\"}}";

/* Labels of requests no route took; interned so metrics compare pointers. */
static const char luna_http_label_unmatched[] = "unmatched";

struct luna_http_request {
    luna_http_server *srv;
    struct evhttp_request *ev;
    const char *route_label;
    unsigned method;
    const char *method_name;
    const char *path;  /* owned by ev's parsed URI */
    const char *query; /* idem */
    double start;
    char identity[LUNA_PKI_IDENTITY_MAX];
    char id[LUNA_HTTP_REQUEST_ID_MAX + 1];
    luna_http_request *prev, *next; /* the server's in-flight list */
};

struct luna_http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *listener;
    luna_http_tls *tls;
    luna_http_route_table routes;
    luna_http_metrics metrics;
    char *component;
    uint16_t port;
    size_t max_body;
    unsigned reload_sec;
    unsigned grace_ms;
    luna_http_ready_fn ready;
    void *ready_arg;
    struct event *reload_ev;
    struct event *sigterm_ev;
    struct event *sigint_ev;
    struct event *drain_ev;
    double deadline;
    bool stopping;
    bool public_listener; /* server-auth TLS only; identity "anonymous" */
    luna_http_request *inflight;
    size_t unflushed; /* replies queued but not yet written out */
};

/* ---- replies ---- */

static bool header_text_ok(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\r' || *p == '\n')
            return false;
    }
    return true;
}

static void request_unlink(luna_http_request *req)
{
    luna_http_server *s = req->srv;
    if (req->prev != NULL)
        req->prev->next = req->next;
    else if (s->inflight == req)
        s->inflight = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    if (s->metrics.inflight > 0)
        s->metrics.inflight--;
}

/*
 * evhttp wrote a reply out.  Shutdown waits for this, not just for the
 * reply call, so a drained server never cuts a response in half.  (When
 * the peer vanishes first this never runs and shutdown waits for its
 * deadline instead.)
 */
static void on_reply_sent(struct evhttp_request *ev, void *arg)
{
    (void)ev;
    luna_http_server *s = arg;
    if (s->unflushed > 0)
        s->unflushed--;
}

/* Sends the reply, records it, and frees req.  body may be NULL. */
static void finish(luna_http_request *req, int status, const char *content_type,
                   struct evbuffer *body)
{
    luna_http_server *s = req->srv;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req->ev);
    if (status < 100 || status > 599)
        status = 500;
    /*
     * Header failures are ignored on purpose: the reply goes out anyway and
     * the client sees a missing header rather than a hung request.
     */
    if (content_type != NULL)
        (void)evhttp_add_header(h, "Content-Type", content_type);
    (void)evhttp_add_header(h, LUNA_HTTP_REQUEST_ID_HEADER, req->id);
    (void)evhttp_add_header(h, "Cache-Control", "no-store");
    (void)evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (s->stopping)
        (void)evhttp_add_header(h, "Connection", "close");
    if (evhttp_request_get_connection(req->ev) != NULL) {
        evhttp_request_set_on_complete_cb(req->ev, on_reply_sent, s);
        s->unflushed++;
    }
    evhttp_send_reply(req->ev, status, NULL, body);

    double secs = luna_http_now() - req->start;
    luna_http_metrics_observe(&s->metrics, req->route_label, req->method, status, secs);
    LUNA_LOGF(status >= 500 ? LUNA_LOG_WARN : LUNA_LOG_INFO, s->component, "request",
              LUNA_LOG_STR("request_id", req->id), LUNA_LOG_STR("method", req->method_name),
              LUNA_LOG_STR("route", req->route_label), LUNA_LOG_STR("path", req->path),
              LUNA_LOG_STR("identity", req->identity[0] != '\0' ? req->identity : NULL),
              LUNA_LOG_INT("status", status), LUNA_LOG_DBL("duration_ms", secs * 1000.0));
    request_unlink(req);
    free(req);
}

void luna_http_reply(luna_http_request *req, int status, const char *content_type,
                     const void *body, size_t len)
{
    if (req == NULL)
        return;
    struct evbuffer *buf = evbuffer_new();
    if (buf == NULL || (len > 0 && (body == NULL || evbuffer_add(buf, body, len) != 0)) ||
        (content_type != NULL && !header_text_ok(content_type))) {
        if (buf != NULL)
            evbuffer_free(buf);
        buf = evbuffer_new();
        if (buf != NULL)
            (void)evbuffer_add(buf, luna_http_fallback_body, sizeof(luna_http_fallback_body) - 1);
        finish(req, 500, LUNA_HTTP_JSON, buf);
    } else {
        finish(req, status, content_type, buf);
    }
    if (buf != NULL)
        evbuffer_free(buf);
}

void luna_http_reply_json(luna_http_request *req, int status, const json_t *body)
{
    if (req == NULL)
        return;
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text == NULL) {
        luna_http_reply_error(req, 500, "internal_error", "internal error");
        return;
    }
    size_t len = strlen(text);
    luna_http_reply(req, status, LUNA_HTTP_JSON, text, len);
    /* Replies may carry secrets (IAM: API keys, client private keys). */
    luna_wipe(text, len);
    free(text);
}

void luna_http_reply_error(luna_http_request *req, int status, const char *code,
                           const char *message)
{
    if (req == NULL)
        return;
    char *text = luna_http_error_body(code != NULL ? code : luna_http_status_code_name(status),
                                      message != NULL ? message : "");
    if (text == NULL) {
        luna_http_reply(req, 500, LUNA_HTTP_JSON, luna_http_fallback_body,
                        sizeof(luna_http_fallback_body) - 1);
        return;
    }
    luna_http_reply(req, status, LUNA_HTTP_JSON, text, strlen(text));
    free(text);
}

void luna_http_reply_err(luna_http_request *req, luna_err err)
{
    luna_http_reply_error(req, luna_http_status_for_err(err), luna_errname(err),
                          luna_strerror(err));
}

luna_err luna_http_response_header(luna_http_request *req, const char *name, const char *value)
{
    if (req == NULL || !header_text_ok(name) || !header_text_ok(value) || strchr(name, ':') != NULL)
        return LUNA_ERR_INVALID_ARG;
    if (evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value) != 0)
        return LUNA_ERR_INVALID_ARG;
    return LUNA_OK;
}

/* ---- request accessors ---- */

const char *luna_http_request_method(const luna_http_request *req)
{
    return req != NULL ? req->method_name : NULL;
}

const char *luna_http_request_path(const luna_http_request *req)
{
    return req != NULL ? req->path : NULL;
}

const char *luna_http_request_query(const luna_http_request *req)
{
    return req != NULL ? req->query : NULL;
}

const char *luna_http_request_identity(const luna_http_request *req)
{
    return req != NULL ? req->identity : NULL;
}

const char *luna_http_request_id(const luna_http_request *req)
{
    return req != NULL ? req->id : NULL;
}

const char *luna_http_request_header(const luna_http_request *req, const char *name)
{
    if (req == NULL || name == NULL)
        return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

luna_err luna_http_request_body(luna_http_request *req, const uint8_t **data, size_t *len)
{
    static const uint8_t empty[1] = {0};
    if (req == NULL || data == NULL || len == NULL)
        return LUNA_ERR_INVALID_ARG;
    struct evbuffer *in = evhttp_request_get_input_buffer(req->ev);
    size_t n = in != NULL ? evbuffer_get_length(in) : 0;
    if (n == 0) {
        *data = empty;
        *len = 0;
        return LUNA_OK;
    }
    /* evhttp enforced max_body while reading; checked again, cheaply. */
    if (n > req->srv->max_body)
        return LUNA_ERR_TOO_LARGE;
    const unsigned char *p = evbuffer_pullup(in, -1);
    if (p == NULL)
        return LUNA_ERR_NOMEM;
    *data = p;
    *len = n;
    return LUNA_OK;
}

/* ---- dispatch ---- */

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PATCH: return "PATCH";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    default: return "OTHER";
    }
}

static luna_err peer_identity(struct evhttp_request *ev, char *out, size_t cap)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    /* NULL for a plain socket: never reached in normal operation (see server_bevcb). */
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    return luna_http_tls_peer_identity(ssl, out, cap);
}

static bool public_transport_ok(struct evhttp_request *ev)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl != NULL && SSL_is_init_finished(ssl) == 1 && SSL_version(ssl) == TLS1_3_VERSION;
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    luna_http_server *s = arg;
    luna_http_request *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        /* No room to track it: the minimal reply, still JSON. */
        struct evbuffer *buf = evbuffer_new();
        if (buf != NULL)
            (void)evbuffer_add(buf, luna_http_fallback_body, sizeof(luna_http_fallback_body) - 1);
        (void)evhttp_add_header(evhttp_request_get_output_headers(ev), "Content-Type",
                                LUNA_HTTP_JSON);
        evhttp_send_reply(ev, 500, NULL, buf);
        if (buf != NULL)
            evbuffer_free(buf);
        return;
    }
    req->srv = s;
    req->ev = ev;
    req->start = luna_http_now();
    req->route_label = luna_http_label_unmatched;
    req->method_name = method_name(evhttp_request_get_command(ev));
    req->method = luna_http_method_bit(req->method_name);
    req->next = s->inflight;
    if (s->inflight != NULL)
        s->inflight->prev = req;
    s->inflight = req;
    s->metrics.inflight++;

    const char *rid = evhttp_find_header(evhttp_request_get_input_headers(ev),
                                         LUNA_HTTP_REQUEST_ID_HEADER);
    if (luna_http_request_id_valid(rid)) {
        memcpy(req->id, rid, strlen(rid) + 1);
    } else if (luna_http_request_id_generate(req->id, sizeof(req->id)) != LUNA_OK) {
        luna_http_reply_error(req, 500, "internal_error", "internal error");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    req->path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    req->query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;

    if (s->stopping) {
        luna_http_reply_error(req, 503, "shutting_down", "server is shutting down");
        return;
    }
    if (s->public_listener) {
        /* Still TLS: a plain-socket fallback connection has no SSL. */
        if (!public_transport_ok(ev)) {
            luna_http_reply_error(req, 401, "unauthenticated", "not a TLS connection");
            return;
        }
        memcpy(req->identity, LUNA_HTTP_PUBLIC_IDENTITY, sizeof(LUNA_HTTP_PUBLIC_IDENTITY));
    } else if (peer_identity(ev, req->identity, sizeof(req->identity)) != LUNA_OK) {
        luna_http_reply_error(req, 401, "unauthenticated",
                              "client certificate carries no platform identity");
        return;
    }
    if (!luna_http_path_acceptable(req->path)) {
        req->path = NULL; /* never log what was refused as malformed */
        luna_http_reply_error(req, 400, "bad_request", "malformed request path");
        return;
    }
    const luna_http_route_entry *route = NULL;
    unsigned allowed = 0;
    luna_http_match m = luna_http_routes_find(&s->routes, req->method, req->path, &route, &allowed);
    if (m == LUNA_HTTP_MATCH_NO_PATH) {
        luna_http_reply_error(req, 404, "not_found", "no such route");
        return;
    }
    req->route_label = route->label;
    if (m == LUNA_HTTP_MATCH_NO_METHOD || req->method == 0) {
        char allow_text[48];
        luna_http_methods_text(allowed, allow_text, sizeof(allow_text));
        if (allow_text[0] != '\0')
            (void)evhttp_add_header(evhttp_request_get_output_headers(ev), "Allow", allow_text);
        luna_http_reply_error(req, 405, "method_not_allowed", "method not allowed on this route");
        return;
    }
    if (!s->public_listener &&
        !luna_http_identity_allowed((const char *const *)route->allow, route->n_allow,
                                    req->identity)) {
        LUNA_LOGF(LUNA_LOG_WARN, s->component, "identity not allowed on route",
                  LUNA_LOG_STR("request_id", req->id), LUNA_LOG_STR("route", route->label),
                  LUNA_LOG_STR("identity", req->identity));
        luna_http_reply_error(req, 403, "forbidden", "caller identity not allowed on this route");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(ev);
    if (route->content_type != NULL && in != NULL && evbuffer_get_length(in) > 0 &&
        !luna_http_media_type_is(evhttp_find_header(evhttp_request_get_input_headers(ev),
                                                    "Content-Type"),
                                 route->content_type)) {
        luna_http_reply_error(req, 415, "unsupported_media_type", "unsupported content type");
        return;
    }
    route->handler(req, route->arg);
}

/*
 * Every accepted connection gets a TLS bufferevent.  Returning NULL would
 * make evhttp 2.1 fall back to a plain socket: on allocation failure we
 * still return nothing better, and on_request then finds no SSL and
 * refuses with 401 (no identity), so plaintext is never served a route.
 */
static struct bufferevent *server_bevcb(struct event_base *base, void *arg)
{
    luna_http_server *s = arg;
    SSL *ssl = SSL_new(s->tls->ctx);
    if (ssl == NULL) {
        LUNA_LOGF(LUNA_LOG_ERROR, s->component, "cannot allocate TLS session",
                  LUNA_LOG_ERR("err", LUNA_ERR_NOMEM));
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        SSL_free(ssl);
    return bev;
}

/* ---- built-in routes ---- */

static void handle_healthz(luna_http_request *req, void *arg)
{
    (void)arg;
    static const char body[] = "{\"status\":\"ok\"}";
    luna_http_reply(req, 200, LUNA_HTTP_JSON, body, sizeof(body) - 1);
}

static void handle_readyz(luna_http_request *req, void *arg)
{
    luna_http_server *s = arg;
    static const char body[] = "{\"status\":\"ready\"}";
    if (s->stopping || (s->ready != NULL && !s->ready(s->ready_arg))) {
        luna_http_reply_error(req, 503, "not_ready", "service not ready");
        return;
    }
    luna_http_reply(req, 200, LUNA_HTTP_JSON, body, sizeof(body) - 1);
}

static void handle_metrics(luna_http_request *req, void *arg)
{
    luna_http_server *s = arg;
    struct evbuffer *buf = evbuffer_new();
    if (buf == NULL || luna_http_metrics_render(&s->metrics, buf) != LUNA_OK) {
        if (buf != NULL)
            evbuffer_free(buf);
        luna_http_reply_error(req, 500, "internal_error", "internal error");
        return;
    }
    finish(req, 200, LUNA_HTTP_PROM, buf);
    evbuffer_free(buf);
}

/* ---- timers and signals ---- */

luna_err luna_http_server_reload(luna_http_server *s)
{
    if (s == NULL)
        return LUNA_ERR_INVALID_ARG;
    bool reloaded = false;
    luna_err err = luna_http_tls_check(s->tls, &reloaded);
    if (err != LUNA_OK) {
        s->metrics.reload_failed++;
        LUNA_LOGF(LUNA_LOG_ERROR, s->component,
                  "certificate reload failed; keeping the current certificate",
                  LUNA_LOG_ERR("err", err), LUNA_LOG_STR("cert_file", s->tls->cert_file));
        return err;
    }
    if (reloaded) {
        s->metrics.reload_ok++;
        LUNA_LOGF(LUNA_LOG_INFO, s->component, "certificate reloaded",
                  LUNA_LOG_STR("cert_file", s->tls->cert_file));
    }
    return LUNA_OK;
}

static void on_reload_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    luna_err err = luna_http_server_reload(arg);
    (void)err; /* logged and counted inside */
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    luna_http_server *s = arg;
    bool late = luna_http_now() >= s->deadline;
    bool busy = s->inflight != NULL || s->unflushed > 0;
    if (busy && !late)
        return;
    if (busy)
        LUNA_LOGF(LUNA_LOG_WARN, s->component, "shutdown deadline passed with requests in flight",
                  LUNA_LOG_UINT("inflight", s->metrics.inflight),
                  LUNA_LOG_UINT("unflushed", s->unflushed));
    else
        luna_log(LUNA_LOG_INFO, s->component, "drained", NULL, 0);
    event_del(s->drain_ev);
    event_base_loopexit(s->base, NULL);
}

void luna_http_server_shutdown(luna_http_server *s)
{
    if (s == NULL || s->stopping)
        return;
    s->stopping = true;
    luna_log(LUNA_LOG_INFO, s->component, "shutting down", NULL, 0);
    if (s->listener != NULL) {
        evhttp_del_accept_socket(s->http, s->listener);
        s->listener = NULL;
    }
    s->deadline = luna_http_now() + (double)s->grace_ms / 1000.0;
    struct timeval tick = {0, LUNA_HTTP_DRAIN_TICK_MS * 1000};
    if (s->drain_ev == NULL || event_add(s->drain_ev, &tick) != 0)
        event_base_loopexit(s->base, NULL);
}

bool luna_http_server_stopping(const luna_http_server *s)
{
    return s != NULL && s->stopping;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    luna_http_server *s = arg;
    LUNA_LOGF(LUNA_LOG_INFO, s->component, "signal received", LUNA_LOG_INT("signal", sig));
    luna_http_server_shutdown(s);
}

/* ---- lifecycle ---- */

static luna_err server_listen(luna_http_server *s, const char *addr, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        sl = sizeof(*a4);
    } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        sl = sizeof(*a6);
    } else {
        return LUNA_ERR_CONFIG;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        s->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
        (struct sockaddr *)&ss, (int)sl);
    if (l == NULL)
        return LUNA_ERR_IO;
    s->listener = evhttp_bind_listener(s->http, l);
    if (s->listener == NULL) {
        evconnlistener_free(l);
        return LUNA_ERR_IO;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &bl) != 0)
        return LUNA_ERR_IO;
    s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return LUNA_OK;
}

luna_err luna_http_server_new(struct event_base *base, const luna_http_server_opts *o,
                              luna_http_server **out)
{
    luna_err err;
    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (base == NULL || o == NULL || o->component == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (o->max_body > LUNA_HTTP_MAX_BODY_CAP)
        return LUNA_ERR_CONFIG;
    /* A peer closing mid-write must cost an error, not the process. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return LUNA_ERR_INTERNAL;
    luna_http_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return LUNA_ERR_NOMEM;
    s->base = base;
    s->max_body = o->max_body != 0 ? o->max_body : LUNA_HTTP_DEFAULT_MAX_BODY;
    s->reload_sec = o->reload_sec != 0 ? o->reload_sec : LUNA_HTTP_DEFAULT_RELOAD_SEC;
    s->grace_ms = o->shutdown_grace_ms != 0 ? o->shutdown_grace_ms : LUNA_HTTP_DEFAULT_GRACE_MS;
    s->ready = o->ready;
    s->ready_arg = o->ready_arg;
    s->component = strdup(o->component);
    LUNA_TRY_ENSURE(s->component != NULL, LUNA_ERR_NOMEM, fail);
    s->public_listener = o->public_listener;
    LUNA_TRY(luna_http_tls_new(s->public_listener ? LUNA_HTTP_TLS_PUBLIC_SERVER
                                                  : LUNA_HTTP_TLS_SERVER,
                               &o->tls, &s->tls),
             fail);

    s->http = evhttp_new(base);
    LUNA_TRY_ENSURE(s->http != NULL, LUNA_ERR_NOMEM, fail);
    evhttp_set_bevcb(s->http, server_bevcb, s);
    evhttp_set_gencb(s->http, on_request, s);
    evhttp_set_max_body_size(s->http, (ev_ssize_t)s->max_body);
    evhttp_set_max_headers_size(s->http, (ev_ssize_t)(o->max_headers != 0
                                                          ? o->max_headers
                                                          : LUNA_HTTP_DEFAULT_MAX_HEADERS));
    evhttp_set_timeout(s->http, (int)(o->timeout_sec != 0 ? o->timeout_sec
                                                          : LUNA_HTTP_DEFAULT_TIMEOUT_SEC));
    /* Every method reaches on_request, which answers 405 in JSON itself. */
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* Responses never advertise the implementation. */
    evhttp_set_default_content_type(s->http, LUNA_HTTP_JSON);

    static const char *const any[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
    const luna_http_route builtins[] = {
        {LUNA_HTTP_GET, "/healthz", any, 1, NULL, handle_healthz, s},
        {LUNA_HTTP_GET, "/readyz", any, 1, NULL, handle_readyz, s},
        {LUNA_HTTP_GET, "/metrics", any, 1, NULL, handle_metrics, s},
    };
    /* Metrics describe traffic: never published on a public listener. */
    size_t n_builtins = sizeof(builtins) / sizeof(builtins[0]) - (s->public_listener ? 1 : 0);
    for (size_t i = 0; i < n_builtins; i++)
        LUNA_TRY(luna_http_routes_add(&s->routes, &builtins[i]), fail);

    s->reload_ev = event_new(base, -1, EV_PERSIST, on_reload_timer, s);
    s->drain_ev = event_new(base, -1, EV_PERSIST, on_drain_tick, s);
    LUNA_TRY_ENSURE(s->reload_ev != NULL && s->drain_ev != NULL, LUNA_ERR_NOMEM, fail);
    struct timeval every = {(time_t)s->reload_sec, 0};
    LUNA_TRY_ENSURE(event_add(s->reload_ev, &every) == 0, LUNA_ERR_INTERNAL, fail);
    if (o->handle_signals) {
        s->sigterm_ev = evsignal_new(base, SIGTERM, on_signal, s);
        s->sigint_ev = evsignal_new(base, SIGINT, on_signal, s);
        LUNA_TRY_ENSURE(s->sigterm_ev != NULL && s->sigint_ev != NULL, LUNA_ERR_NOMEM, fail);
        LUNA_TRY_ENSURE(evsignal_add(s->sigterm_ev, NULL) == 0 &&
                            evsignal_add(s->sigint_ev, NULL) == 0,
                        LUNA_ERR_INTERNAL, fail);
    }
    LUNA_TRY(server_listen(s, o->bind_addr != NULL ? o->bind_addr : "127.0.0.1", o->port), fail);
    LUNA_LOGF(LUNA_LOG_INFO, s->component, "listening", LUNA_LOG_UINT("port", s->port),
              LUNA_LOG_UINT("max_body", s->max_body));
    *out = s;
    return LUNA_OK;
fail:
    luna_http_server_free(s);
    return err;
}

luna_err luna_http_server_add_route(luna_http_server *s, const luna_http_route *route)
{
    if (s == NULL)
        return LUNA_ERR_INVALID_ARG;
    if (s->public_listener) {
        /*
         * No identity to check: the table still wants a list, so it gets a
         * placeholder that on_request never consults in public mode.
         */
        if (route == NULL || route->n_allow != 0 || route->allow != NULL)
            return LUNA_ERR_INVALID_ARG;
        static const char *const placeholder[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
        luna_http_route copy = *route;
        copy.allow = placeholder;
        copy.n_allow = 1;
        return luna_http_routes_add(&s->routes, &copy);
    }
    return luna_http_routes_add(&s->routes, route);
}

uint16_t luna_http_server_port(const luna_http_server *s)
{
    return s != NULL ? s->port : 0;
}

void luna_http_server_free(luna_http_server *s)
{
    if (s == NULL)
        return;
    s->stopping = true;
    /* evhttp_free below frees their evhttp requests: answer them first. */
    while (s->inflight != NULL)
        luna_http_reply_error(s->inflight, 503, "shutting_down", "server is shutting down");
    if (s->http != NULL)
        evhttp_free(s->http); /* closes the listener and every connection */
    if (s->reload_ev != NULL)
        event_free(s->reload_ev);
    if (s->drain_ev != NULL)
        event_free(s->drain_ev);
    if (s->sigterm_ev != NULL)
        event_free(s->sigterm_ev);
    if (s->sigint_ev != NULL)
        event_free(s->sigint_ev);
    luna_http_tls_free(s->tls);
    luna_http_routes_free(&s->routes);
    luna_http_metrics_free(&s->metrics);
    free(s->component);
    free(s);
}
