/*
 * http_client.c - the asynchronous mTLS HTTP client (evhttp over
 * bufferevent_openssl) and the blocking luna_http_fetch wrapper.
 *
 * Owns one evhttp connection per request and the delivery of exactly one
 * callback per accepted request.  Must never send a request byte before
 * the server's chain and identity were verified in the handshake (the
 * verify callback of http_tls.c does it), never call a user callback from
 * inside a libevent callback that still uses the connection (delivery is
 * always deferred to a timer of our own), and never read a response body
 * past max_response.
 */
#include "http_internal.h"

#include <ctype.h>
#include <strings.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <openssl/err.h>

#include "luna/log.h"
#include "luna/pki.h"

#define LUNA_HTTP_CLIENT_MAX_HEADERS (64u * 1024u)
#define LUNA_HTTP_CLIENT_PATH_MAX 2048u

typedef struct client_call client_call;

struct luna_http_client {
    struct event_base *base;
    luna_http_tls *tls;
    char *host;
    uint16_t port;
    char *expected;
    unsigned timeout_sec;
    size_t max_response;
    struct event *reload_ev;
    client_call *pending;
};

struct client_call {
    luna_http_client *c;
    struct evhttp_connection *evcon;
    struct bufferevent *bev;     /* owned by evcon */
    struct event *deliver_ev;    /* fires once the outcome is known */
    luna_http_response_cb cb;
    void *arg;
    bool finished;               /* outcome recorded; evcon no longer used */
    enum evhttp_request_error ev_err;
    bool have_ev_err;
    luna_err err;
    int status;
    uint8_t *body;
    size_t body_len;
    char request_id[LUNA_HTTP_REQUEST_ID_MAX + 1];
    client_call *prev, *next;
};

static void call_unlink(client_call *call)
{
    luna_http_client *c = call->c;
    if (call->prev != NULL)
        call->prev->next = call->next;
    else if (c->pending == call)
        c->pending = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

static void call_free(client_call *call)
{
    if (call->evcon != NULL)
        evhttp_connection_free(call->evcon); /* frees bev and SSL too */
    if (call->deliver_ev != NULL)
        event_free(call->deliver_ev);
    free(call->body);
    free(call);
}

static void on_deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_call *call = arg;
    call_unlink(call);
    luna_http_response resp = {
        .err = call->err,
        .status = call->err == LUNA_OK ? call->status : 0,
        .body = call->err == LUNA_OK ? call->body : NULL,
        .body_len = call->err == LUNA_OK ? call->body_len : 0,
        .request_id = call->request_id[0] != '\0' ? call->request_id : NULL,
    };
    static const uint8_t empty[1] = {0};
    if (resp.err == LUNA_OK && resp.body == NULL)
        resp.body = empty;
    call->cb(&resp, call->arg);
    call_free(call);
}

static luna_err classify_failure(client_call *call)
{
    bool tls = false;
    SSL *ssl = call->bev != NULL ? bufferevent_openssl_get_ssl(call->bev) : NULL;
    while (call->bev != NULL && bufferevent_get_openssl_error(call->bev) != 0)
        tls = true;
    if (ssl != NULL && (!SSL_is_init_finished(ssl) || SSL_get_verify_result(ssl) != X509_V_OK))
        tls = true;
    ERR_clear_error();
    if (call->have_ev_err) {
        switch (call->ev_err) {
        case EVREQ_HTTP_TIMEOUT: return LUNA_ERR_TIMEOUT;
        case EVREQ_HTTP_DATA_TOO_LONG: return tls ? LUNA_ERR_TLS : LUNA_ERR_TOO_LARGE;
        case EVREQ_HTTP_INVALID_HEADER: return tls ? LUNA_ERR_TLS : LUNA_ERR_FORMAT;
        default: break;
        }
    }
    return tls ? LUNA_ERR_TLS : LUNA_ERR_IO;
}

static void on_error(enum evhttp_request_error e, void *arg)
{
    client_call *call = arg;
    call->ev_err = e;
    call->have_ev_err = true;
}

/*
 * Called by evhttp with the response, or with NULL / a zero status when
 * the exchange failed (possibly synchronously inside evhttp_make_request).
 * Only records the outcome; the user hears of it from on_deliver.
 */
static void on_done(struct evhttp_request *ev, void *arg)
{
    client_call *call = arg;
    if (call->finished)
        return;
    call->finished = true;
    int status = ev != NULL ? evhttp_request_get_response_code(ev) : 0;
    if (status <= 0) {
        call->err = classify_failure(call);
    } else {
        call->err = LUNA_OK;
        call->status = status;
        struct evbuffer *in = evhttp_request_get_input_buffer(ev);
        size_t n = in != NULL ? evbuffer_get_length(in) : 0;
        if (n > call->c->max_response) {
            call->err = LUNA_ERR_TOO_LARGE;
        } else {
            call->body = malloc(n + 1);
            if (call->body == NULL) {
                call->err = LUNA_ERR_NOMEM;
            } else {
                if (n > 0 && evbuffer_copyout(in, call->body, n) != (ev_ssize_t)n)
                    call->err = LUNA_ERR_IO;
                call->body[n] = '\0';
                call->body_len = n;
            }
        }
        const char *rid = evhttp_find_header(evhttp_request_get_input_headers(ev),
                                             LUNA_HTTP_REQUEST_ID_HEADER);
        if (luna_http_request_id_valid(rid))
            memcpy(call->request_id, rid, strlen(rid) + 1);
    }
    struct timeval now = {0, 0};
    if (event_add(call->deliver_ev, &now) != 0) {
        /* Cannot defer: nothing safe is left to do but log; the call leaks. */
        luna_log(LUNA_LOG_ERROR, "http", "cannot schedule response delivery", NULL, 0);
    }
}

static enum evhttp_cmd_type cmd_for(const char *method, bool *ok)
{
    *ok = true;
    switch (luna_http_method_bit(method)) {
    case LUNA_HTTP_GET: return EVHTTP_REQ_GET;
    case LUNA_HTTP_POST: return EVHTTP_REQ_POST;
    case LUNA_HTTP_PUT: return EVHTTP_REQ_PUT;
    case LUNA_HTTP_DELETE: return EVHTTP_REQ_DELETE;
    case LUNA_HTTP_PATCH: return EVHTTP_REQ_PATCH;
    default: *ok = false; return EVHTTP_REQ_GET;
    }
}

static bool request_path_ok(const char *path)
{
    if (path == NULL || path[0] != '/')
        return false;
    size_t n = strnlen(path, LUNA_HTTP_CLIENT_PATH_MAX + 1);
    if (n > LUNA_HTTP_CLIENT_PATH_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

/* An extra header the caller may set: a token name that is not one the
 * client owns, and a value with no byte that could end or split a line. */
static bool extra_header_ok(const luna_http_header *hd)
{
    static const char *const owned[] = {"host", "connection", "content-type", "content-length",
                                        "x-request-id", "transfer-encoding"};
    if (hd->name == NULL || hd->value == NULL)
        return false;
    size_t n = strnlen(hd->name, 65);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)hd->name[i];
        if (!(isalnum(ch) || ch == '-' || ch == '_'))
            return false;
    }
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        if (strcasecmp(hd->name, owned[i]) == 0)
            return false;
    size_t vn = strnlen(hd->value, LUNA_HTTP_MAX_HEADER_VALUE + 1);
    if (vn > LUNA_HTTP_MAX_HEADER_VALUE)
        return false;
    for (size_t i = 0; i < vn; i++) {
        unsigned char ch = (unsigned char)hd->value[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

luna_err luna_http_client_request(luna_http_client *c, const char *method, const char *path,
                                  const char *content_type, const void *body, size_t len,
                                  const char *request_id, luna_http_response_cb cb, void *arg)
{
    return luna_http_client_request_with(c, method, path, content_type, body, len, request_id,
                                         NULL, 0, cb, arg);
}

luna_err luna_http_client_request_with(luna_http_client *c, const char *method, const char *path,
                                       const char *content_type, const void *body, size_t len,
                                       const char *request_id, const luna_http_header *headers,
                                       size_t n_headers, luna_http_response_cb cb, void *arg)
{
    luna_err err = LUNA_OK;
    bool ok;
    enum evhttp_cmd_type cmd = cmd_for(method, &ok);
    if (c == NULL || cb == NULL || !ok || !request_path_ok(path) || (len > 0 && body == NULL) ||
        (content_type != NULL && strpbrk(content_type, "\r\n") != NULL) ||
        (request_id != NULL && !luna_http_request_id_valid(request_id)) ||
        n_headers > LUNA_HTTP_MAX_EXTRA_HEADERS || (n_headers > 0 && headers == NULL))
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < n_headers; i++)
        if (!extra_header_ok(&headers[i]))
            return LUNA_ERR_INVALID_ARG;
    char rid[LUNA_HTTP_REQUEST_ID_MAX + 1];
    if (request_id != NULL)
        memcpy(rid, request_id, strlen(request_id) + 1);
    else
        LUNA_GUARD(luna_http_request_id_generate(rid, sizeof(rid)));

    client_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return LUNA_ERR_NOMEM;
    call->c = c;
    call->cb = cb;
    call->arg = arg;
    SSL *ssl = NULL;
    struct evhttp_request *ev = NULL;

    call->deliver_ev = evtimer_new(c->base, on_deliver, call);
    LUNA_TRY_ENSURE(call->deliver_ev != NULL, LUNA_ERR_NOMEM, fail);
    ssl = SSL_new(c->tls->ctx);
    LUNA_TRY_ENSURE(ssl != NULL, LUNA_ERR_NOMEM, fail);
    LUNA_TRY(luna_http_tls_set_expected(ssl, c->expected), fail);
    call->bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    LUNA_TRY_ENSURE(call->bev != NULL, LUNA_ERR_NOMEM, fail);
    ssl = NULL; /* the bufferevent owns it now */
    call->evcon = evhttp_connection_base_bufferevent_new(c->base, NULL, call->bev, c->host, c->port);
    if (call->evcon == NULL) {
        bufferevent_free(call->bev);
        call->bev = NULL;
        err = LUNA_ERR_NOMEM;
        goto fail;
    }
    evhttp_connection_set_timeout(call->evcon, (int)c->timeout_sec);
    evhttp_connection_set_retries(call->evcon, 0);
    evhttp_connection_set_max_body_size(call->evcon, (ev_ssize_t)c->max_response);
    evhttp_connection_set_max_headers_size(call->evcon, (ev_ssize_t)LUNA_HTTP_CLIENT_MAX_HEADERS);

    ev = evhttp_request_new(on_done, call);
    LUNA_TRY_ENSURE(ev != NULL, LUNA_ERR_NOMEM, fail);
    evhttp_request_set_error_cb(ev, on_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(ev);
    LUNA_TRY_ENSURE(evhttp_add_header(h, "Host", c->host) == 0 &&
                        evhttp_add_header(h, "Connection", "close") == 0 &&
                        evhttp_add_header(h, LUNA_HTTP_REQUEST_ID_HEADER, rid) == 0 &&
                        (content_type == NULL ||
                         evhttp_add_header(h, "Content-Type", content_type) == 0) &&
                        (len == 0 ||
                         evbuffer_add(evhttp_request_get_output_buffer(ev), body, len) == 0),
                    LUNA_ERR_NOMEM, fail);
    for (size_t i = 0; i < n_headers; i++)
        LUNA_TRY_ENSURE(evhttp_add_header(h, headers[i].name, headers[i].value) == 0,
                        LUNA_ERR_NOMEM, fail);
    /* Linked before the call: evhttp may report a failure synchronously. */
    call->next = c->pending;
    if (c->pending != NULL)
        c->pending->prev = call;
    c->pending = call;
    if (evhttp_make_request(call->evcon, ev, cmd, path) != 0) {
        /*
         * libevent 2.1 frees ev on some of these paths and not on others;
         * leaking it on an fd-exhaustion path is the safe choice.
         */
        call_unlink(call);
        ev = NULL;
        err = LUNA_ERR_IO;
        goto fail;
    }
    return LUNA_OK;
fail:
    if (ev != NULL)
        evhttp_request_free(ev);
    SSL_free(ssl);
    call_free(call);
    return err;
}

luna_err luna_http_client_reload(luna_http_client *c)
{
    if (c == NULL)
        return LUNA_ERR_INVALID_ARG;
    bool reloaded = false;
    luna_err err = luna_http_tls_check(c->tls, &reloaded);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, "http", "client certificate reload failed; keeping the current one",
                  LUNA_LOG_ERR("err", err), LUNA_LOG_STR("cert_file", c->tls->cert_file));
        return err;
    }
    if (reloaded)
        LUNA_LOGF(LUNA_LOG_INFO, "http", "client certificate reloaded",
                  LUNA_LOG_STR("cert_file", c->tls->cert_file));
    return LUNA_OK;
}

static void on_client_reload(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    luna_err err = luna_http_client_reload(arg);
    (void)err; /* logged inside */
}

luna_err luna_http_client_new(struct event_base *base, const luna_http_client_opts *o,
                              luna_http_client **out)
{
    luna_err err;
    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (base == NULL || o == NULL || o->host == NULL || o->host[0] == '\0' || o->port == 0 ||
        strpbrk(o->host, "\r\n /") != NULL || o->expected_identity == NULL ||
        !luna_pki_identity_valid(o->expected_identity))
        return LUNA_ERR_INVALID_ARG;
    /* A peer closing mid-write must cost an error, not the process. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return LUNA_ERR_INTERNAL;
    luna_http_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return LUNA_ERR_NOMEM;
    c->base = base;
    c->port = o->port;
    c->timeout_sec = o->timeout_sec != 0 ? o->timeout_sec : LUNA_HTTP_DEFAULT_TIMEOUT_SEC;
    c->max_response = o->max_response != 0 ? o->max_response : LUNA_HTTP_DEFAULT_MAX_RESPONSE;
    c->host = strdup(o->host);
    c->expected = strdup(o->expected_identity);
    LUNA_TRY_ENSURE(c->host != NULL && c->expected != NULL, LUNA_ERR_NOMEM, fail);
    LUNA_TRY(luna_http_tls_new(LUNA_HTTP_TLS_CLIENT, &o->tls, &c->tls), fail);
    c->reload_ev = event_new(base, -1, EV_PERSIST, on_client_reload, c);
    LUNA_TRY_ENSURE(c->reload_ev != NULL, LUNA_ERR_NOMEM, fail);
    struct timeval every = {(time_t)(o->reload_sec != 0 ? o->reload_sec
                                                        : LUNA_HTTP_DEFAULT_RELOAD_SEC), 0};
    LUNA_TRY_ENSURE(event_add(c->reload_ev, &every) == 0, LUNA_ERR_INTERNAL, fail);
    *out = c;
    return LUNA_OK;
fail:
    luna_http_client_free(c);
    return err;
}

void luna_http_client_free(luna_http_client *c)
{
    if (c == NULL)
        return;
    while (c->pending != NULL) {
        client_call *call = c->pending;
        call_unlink(call);
        /* Frees the queued evhttp request without calling on_done. */
        if (call->evcon != NULL) {
            evhttp_connection_free(call->evcon);
            call->evcon = NULL;
        }
        luna_http_response resp = {.err = LUNA_ERR_UNAVAILABLE};
        call->cb(&resp, call->arg);
        call_free(call);
    }
    if (c->reload_ev != NULL)
        event_free(c->reload_ev);
    luna_http_tls_free(c->tls);
    free(c->host);
    free(c->expected);
    free(c);
}

/* ---- blocking wrapper ---- */

typedef struct fetch_state {
    struct event_base *base;
    luna_http_result *out;
    luna_err err;
    bool done;
} fetch_state;

static void on_fetch_done(const luna_http_response *resp, void *arg)
{
    fetch_state *st = arg;
    st->done = true;
    st->err = resp->err;
    if (resp->err == LUNA_OK) {
        st->out->status = resp->status;
        st->out->body = malloc(resp->body_len + 1);
        if (st->out->body == NULL) {
            st->err = LUNA_ERR_NOMEM;
        } else {
            if (resp->body_len > 0)
                memcpy(st->out->body, resp->body, resp->body_len);
            st->out->body[resp->body_len] = '\0';
            st->out->body_len = resp->body_len;
        }
        if (resp->request_id != NULL)
            memcpy(st->out->request_id, resp->request_id, strlen(resp->request_id) + 1);
    }
    event_base_loopbreak(st->base);
}

luna_err luna_http_fetch(const luna_http_client_opts *o, const char *method, const char *path,
                         const char *content_type, const void *body, size_t len,
                         luna_http_result *out)
{
    return luna_http_fetch_with(o, method, path, content_type, body, len, NULL, 0, out);
}

luna_err luna_http_fetch_with(const luna_http_client_opts *o, const char *method,
                              const char *path, const char *content_type, const void *body,
                              size_t len, const luna_http_header *headers, size_t n_headers,
                              luna_http_result *out)
{
    luna_err err;
    if (o == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    struct event_base *base = event_base_new();
    if (base == NULL)
        return LUNA_ERR_NOMEM;
    luna_http_client *c = NULL;
    fetch_state st = {.base = base, .out = out, .err = LUNA_ERR_TIMEOUT};
    LUNA_TRY(luna_http_client_new(base, o, &c), done);
    LUNA_TRY(luna_http_client_request_with(c, method, path, content_type, body, len, NULL, headers,
                                           n_headers, on_fetch_done, &st),
             done);
    /*
     * evhttp bounds each phase by timeout_sec; this bounds the whole
     * exchange (connect, write, read) in case a peer trickles bytes.
     */
    unsigned t = o->timeout_sec != 0 ? o->timeout_sec : LUNA_HTTP_DEFAULT_TIMEOUT_SEC;
    struct timeval whole = {(time_t)t * 3 + 1, 0};
    LUNA_TRY_ENSURE(event_base_loopexit(base, &whole) == 0, LUNA_ERR_INTERNAL, done);
    if (event_base_dispatch(base) < 0) {
        err = LUNA_ERR_INTERNAL;
        goto done;
    }
    if (!st.done) {
        /* luna_http_client_free below delivers UNAVAILABLE; report the timeout. */
        luna_http_client_free(c);
        c = NULL;
        err = LUNA_ERR_TIMEOUT;
        goto done;
    }
    err = st.err;
done:
    luna_http_client_free(c);
    event_base_free(base);
    if (err != LUNA_OK)
        luna_http_result_free(out);
    return err;
}

void luna_http_result_free(luna_http_result *r)
{
    if (r == NULL)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}
