/*
 * luna/http.h - the mutual-TLS HTTP server and client every component uses
 * between processes (docs/http.md is the full manual).
 *
 * Transport.  TLS 1.3 only, both directions authenticated by certificates
 * of the platform CA (luna/pki.h).  The server demands a client
 * certificate (no certificate, a certificate of another CA, an expired one:
 * the handshake fails and no HTTP is served).  The client verifies the
 * server's chain AND its identity (the lunal:// URI SAN must equal the
 * expected identity exactly) inside the handshake, before a byte of the
 * request is sent.  No session resumption: every connection is a full
 * handshake with fresh certificate checks.
 *
 * Authorization.  The caller's identity is the URI SAN of its verified
 * certificate (luna_pki_identity_from_cert).  Every route carries an
 * explicit allow-list of identity patterns: an exact identity
 * ("lunal://svc/gateway") or a prefix ending in '*' (the pattern
 * "lunal://tee/" + '*' matches "lunal://tee/<anything non-empty>").
 * LUNA_HTTP_ALLOW_ANY_PLATFORM ("lunal://" + '*') admits every
 * authenticated platform identity; the built-in /healthz, /readyz and
 * /metrics use it.  A verified certificate that names an identity not
 * on the list gets 403 with a JSON error body.
 *
 * Errors.  Every error response the module produces has the body
 *     {"error":{"code":"<machine name>","message":"<static text>"}}
 * with Content-Type application/json.  (Exception: 400 for unparseable
 * HTTP and 413 for bodies or headers over the caps are produced inside
 * libevent 2.1 before any callback runs and carry libevent's own short
 * HTML body; the status is right and the connection is closed.)
 *
 * Signals.  luna_http_server_new and luna_http_client_new set SIGPIPE to
 * SIG_IGN for the process (libevent writes with plain send(2)).
 *
 * Threading.  Everything runs on the caller's libevent event_base thread;
 * no function here may be called from another thread.
 */
#ifndef LUNA_HTTP_H
#define LUNA_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "luna/err.h"

struct event_base;

/* ---- limits and defaults ---- */
#define LUNA_HTTP_DEFAULT_MAX_BODY (1024u * 1024u)
#define LUNA_HTTP_MAX_BODY_CAP (64u * 1024u * 1024u)
#define LUNA_HTTP_DEFAULT_MAX_HEADERS (16u * 1024u)
#define LUNA_HTTP_DEFAULT_TIMEOUT_SEC 15u
#define LUNA_HTTP_DEFAULT_RELOAD_SEC 60u
#define LUNA_HTTP_DEFAULT_GRACE_MS 5000u
#define LUNA_HTTP_DEFAULT_MAX_RESPONSE (4u * 1024u * 1024u)
#define LUNA_HTTP_MAX_ROUTES 128u
#define LUNA_HTTP_MAX_ALLOW 32u          /* patterns per route */
#define LUNA_HTTP_PATH_MAX 256u          /* registered route path length */
/* Request ids: 1..LUNA_HTTP_REQUEST_ID_MAX chars of [A-Za-z0-9._-]. */
#define LUNA_HTTP_REQUEST_ID_MAX 64u
#define LUNA_HTTP_REQUEST_ID_HEADER "X-Request-Id"
/* Pattern that admits every authenticated platform identity. */
#define LUNA_HTTP_ALLOW_ANY_PLATFORM "lunal://*"
/* The transport identity of every request on a public listener. */
#define LUNA_HTTP_PUBLIC_IDENTITY "anonymous"

/* ---- methods (bit mask) ---- */
#define LUNA_HTTP_GET 0x01u
#define LUNA_HTTP_POST 0x02u
#define LUNA_HTTP_PUT 0x04u
#define LUNA_HTTP_DELETE 0x08u
#define LUNA_HTTP_PATCH 0x10u

/* ---- TLS material (paths to PEM files) ---- */
typedef struct luna_http_tls_files {
    const char *ca_file;   /* the platform CA certificate: the only trust anchor */
    const char *cert_file; /* this process's leaf certificate */
    const char *key_file;  /* its unencrypted PKCS#8 key, mode 0600 (luna_pki_read_key) */
    /*
     * Optional: the TEE CA (docs/protocol.md), a second anchor that may only
     * vouch for lunal://tee/ identities.  When set, a certificate chaining to
     * it must carry a lunal://tee/ identity and a lunal://tee/ identity must
     * chain to it; a peer breaking either rule fails the handshake (client)
     * or is unauthenticated (server).  NULL: only the platform CA is trusted.
     */
    const char *tee_ca_file;
} luna_http_tls_files;

/* ====================================================================== */
/* Server                                                                  */
/* ====================================================================== */

typedef struct luna_http_server luna_http_server;
/*
 * One request being handled.  Owned by the server; valid from the handler
 * call until the handler (now or later, asynchronously) calls exactly one
 * of the luna_http_reply* functions, which consume it.
 */
typedef struct luna_http_request luna_http_request;

typedef void (*luna_http_handler)(luna_http_request *req, void *arg);
/* Readiness for /readyz: true = ready (200), false = 503. */
typedef bool (*luna_http_ready_fn)(void *arg);

typedef struct luna_http_server_opts {
    const char *component;      /* log component name, e.g. "kms" (required) */
    const char *bind_addr;      /* numeric address; NULL = "127.0.0.1" */
    uint16_t port;              /* 0 = ephemeral (read it with luna_http_server_port) */
    luna_http_tls_files tls;    /* all three required */
    size_t max_body;            /* 0 = default; at most LUNA_HTTP_MAX_BODY_CAP */
    size_t max_headers;         /* 0 = default; total header bytes */
    unsigned timeout_sec;       /* read/write inactivity timeout, handshake
                                   included; 0 = default */
    unsigned reload_sec;        /* certificate file check period; 0 = default */
    unsigned shutdown_grace_ms; /* in-flight deadline at shutdown; 0 = default */
    bool handle_signals;        /* SIGTERM/SIGINT start a graceful shutdown */
    luna_http_ready_fn ready;   /* NULL = always ready */
    void *ready_arg;
    /*
     * Public listener (the gateway's client-facing port; false = mTLS, the
     * default).  TLS 1.3 with server authentication only: no client
     * certificate is requested, every request's identity is
     * LUNA_HTTP_PUBLIC_IDENTITY, and callers authenticate inside the
     * request (API keys, tokens) - the handler's job.  Routes must be
     * registered with no allow-list (allow NULL, n_allow 0; anything else
     * is LUNA_ERR_INVALID_ARG).  Built-ins: /healthz and /readyz only
     * (/metrics is not published to anonymous callers).  tls.ca_file is
     * still required: the server's own certificate must chain to it.
     */
    bool public_listener;
} luna_http_server_opts;

/*
 * Loads the TLS material (LUNA_ERR_CONFIG / LUNA_ERR_FORMAT /
 * LUNA_ERR_PERMISSION from luna/pki.h's readers, LUNA_ERR_TLS when the
 * key does not match the certificate), binds and listens (LUNA_ERR_IO),
 * and registers /healthz, /readyz and /metrics.  base is borrowed and must
 * outlive the server.  Requests are served once the caller runs base.
 */
luna_err luna_http_server_new(struct event_base *base, const luna_http_server_opts *opts,
                              luna_http_server **out) LUNA_MUST_CHECK;

typedef struct luna_http_route {
    unsigned methods;         /* LUNA_HTTP_* mask, non-zero */
    const char *path;         /* "/v1/keys" (exact) or "/v1/tees/" "*" (prefix) */
    const char *const *allow; /* identity patterns, n_allow of them, >= 1 */
    size_t n_allow;
    const char *content_type; /* required media type of a non-empty body
                                 (415 otherwise); NULL = not checked */
    luna_http_handler handler;
    void *arg;
} luna_http_route;

/*
 * Registers a route; every string is copied.  LUNA_ERR_INVALID_ARG for a
 * malformed path or pattern, an empty allow-list (on a public listener:
 * a non-empty one), or a method overlap with a route of the same path;
 * LUNA_ERR_TOO_LARGE past LUNA_HTTP_MAX_ROUTES.
 * Resolution: an exact path wins over prefixes, the longest prefix wins;
 * then 405 when no route of that path takes the method, 403 when the
 * caller is not allowed, 415 for a wrong Content-Type, else the handler.
 */
luna_err luna_http_server_add_route(luna_http_server *s,
                                    const luna_http_route *route) LUNA_MUST_CHECK;

/* The bound port (useful with port 0). */
uint16_t luna_http_server_port(const luna_http_server *s);

/*
 * Starts a graceful shutdown (what SIGTERM does): closes the listener, answers
 * requests that arrive on open connections with 503, and once in-flight
 * requests are answered or shutdown_grace_ms has passed, calls
 * event_base_loopexit on base.  Idempotent.
 */
void luna_http_server_shutdown(luna_http_server *s);
/* True once shutdown has started. */
bool luna_http_server_stopping(const luna_http_server *s);

/*
 * Checks the certificate, key and CA files now (the timer does this every
 * reload_sec): when any changed, loads them into a fresh TLS context used
 * for new connections.  LUNA_OK also when nothing changed.  On a broken
 * renewal the error is logged and returned and the old context is kept.
 */
luna_err luna_http_server_reload(luna_http_server *s) LUNA_MUST_CHECK;

/*
 * Frees the server; NULL is a no-op.  Requests still not answered are
 * answered 503 first and their handles become invalid, so handlers with
 * pending asynchronous work must cancel it before this.
 */
void luna_http_server_free(luna_http_server *s);

/* ---- inside a handler ---- */

const char *luna_http_request_method(const luna_http_request *req); /* "GET", ... */
/* The request path, without the query (as sent, not percent-decoded). */
const char *luna_http_request_path(const luna_http_request *req);
/* The raw query string without '?', or NULL. */
const char *luna_http_request_query(const luna_http_request *req);
/* The verified caller identity, e.g. "lunal://svc/gateway". */
const char *luna_http_request_identity(const luna_http_request *req);
/* The request id (accepted from X-Request-Id when well formed, else generated). */
const char *luna_http_request_id(const luna_http_request *req);
/* A request header, or NULL. */
const char *luna_http_request_header(const luna_http_request *req, const char *name);
/*
 * The body as one contiguous view (len 0 and a non-NULL pointer when
 * empty), valid until the reply.  At most the server's max_body bytes.
 */
luna_err luna_http_request_body(luna_http_request *req, const uint8_t **data,
                                size_t *len) LUNA_MUST_CHECK;
/* Adds a response header; LUNA_ERR_INVALID_ARG for CR, LF or NUL in either. */
luna_err luna_http_response_header(luna_http_request *req, const char *name,
                                   const char *value) LUNA_MUST_CHECK;

/*
 * Replies.  Each consumes req whatever happens (on an internal failure a
 * 500 is sent instead).  status must be 100..599.
 */
void luna_http_reply(luna_http_request *req, int status, const char *content_type,
                     const void *body, size_t len);
/* body is serialized compactly; borrowed. */
void luna_http_reply_json(luna_http_request *req, int status, const json_t *body);
/*
 * The JSON error body.  code: a machine name; message: static text.  Both
 * are JSON-escaped; never put secrets or caller input in them.
 */
void luna_http_reply_error(luna_http_request *req, int status, const char *code,
                           const char *message);
/* The error body for a luna_err: status luna_http_status_for_err, code luna_errname. */
void luna_http_reply_err(luna_http_request *req, luna_err err);

/*
 * Status for an error: 400 INVALID_ARG/FORMAT, 401 UNAUTHENTICATED/EXPIRED,
 * 403 PERMISSION/VERIFY, 404 NOT_FOUND, 409 CONFLICT, 413 TOO_LARGE,
 * 415 UNSUPPORTED, 503 UNAVAILABLE, 504 TIMEOUT, else 500.
 */
int luna_http_status_for_err(luna_err err);

/* ====================================================================== */
/* Client                                                                  */
/* ====================================================================== */

typedef struct luna_http_client luna_http_client;

typedef struct luna_http_client_opts {
    luna_http_tls_files tls;       /* all three required */
    const char *host;              /* numeric address or name; required */
    uint16_t port;                 /* required */
    const char *expected_identity; /* the server's exact identity; required */
    unsigned timeout_sec;          /* connect/read/write; 0 = default */
    size_t max_response;           /* body cap; 0 = default */
    unsigned reload_sec;           /* own certificate re-check; 0 = default */
} luna_http_client_opts;

typedef struct luna_http_response {
    /*
     * LUNA_OK when a response arrived (whatever its status); else
     * LUNA_ERR_TLS (handshake failed, including a server identity other
     * than expected), LUNA_ERR_TIMEOUT, LUNA_ERR_TOO_LARGE, LUNA_ERR_IO or
     * LUNA_ERR_UNAVAILABLE (client freed first).
     */
    luna_err err;
    int status;
    const uint8_t *body; /* valid during the callback only */
    size_t body_len;
    const char *request_id; /* the server's X-Request-Id, or NULL */
} luna_http_response;

typedef void (*luna_http_response_cb)(const luna_http_response *resp, void *arg);

/* base is borrowed and must outlive the client. */
luna_err luna_http_client_new(struct event_base *base, const luna_http_client_opts *opts,
                              luna_http_client **out) LUNA_MUST_CHECK;

/*
 * Sends one request on its own new connection (no keep-alive: every
 * request gets a full handshake with fresh certificate checks).  body may
 * be NULL when len is 0; it is copied.  request_id: NULL = generated.  cb
 * is called exactly once, later, from the event loop (never from inside
 * this call); not called at all when this returns an error.
 */
luna_err luna_http_client_request(luna_http_client *c, const char *method, const char *path,
                                  const char *content_type, const void *body, size_t len,
                                  const char *request_id, luna_http_response_cb cb,
                                  void *arg) LUNA_MUST_CHECK;

/*
 * Extra request headers (e.g. Authorization, Idempotency-Key).  Names are
 * HTTP tokens; values printable without CR, LF or NUL; at most
 * LUNA_HTTP_MAX_EXTRA_HEADERS of them.  The client sets Host, Connection,
 * Content-Type, Content-Length and X-Request-Id itself: naming one of them
 * here is LUNA_ERR_INVALID_ARG.  Values are copied (a token's copy inside
 * libevent is not wiped: keep bearer tokens short-lived).
 */
#define LUNA_HTTP_MAX_EXTRA_HEADERS 16u
#define LUNA_HTTP_MAX_HEADER_VALUE 8192u
typedef struct luna_http_header {
    const char *name;
    const char *value;
} luna_http_header;

/* luna_http_client_request with extra headers (headers may be NULL when n is 0). */
luna_err luna_http_client_request_with(luna_http_client *c, const char *method, const char *path,
                                       const char *content_type, const void *body, size_t len,
                                       const char *request_id, const luna_http_header *headers,
                                       size_t n_headers, luna_http_response_cb cb,
                                       void *arg) LUNA_MUST_CHECK;

/* Re-checks the client's own certificate files now (see server reload). */
luna_err luna_http_client_reload(luna_http_client *c) LUNA_MUST_CHECK;

/*
 * Frees the client; NULL is a no-op.  Pending requests get their callback
 * with LUNA_ERR_UNAVAILABLE first (so must not free the client again).
 */
void luna_http_client_free(luna_http_client *c);

/* ---- blocking convenience (tests, CLI): its own event_base ---- */

typedef struct luna_http_result {
    int status;
    uint8_t *body; /* malloc'd, NUL-terminated after body_len; free with luna_http_result_free */
    size_t body_len;
    char request_id[LUNA_HTTP_REQUEST_ID_MAX + 1]; /* "" when absent or malformed */
} luna_http_result;

/* One request, waiting at most timeout_sec; errors as luna_http_response.err. */
luna_err luna_http_fetch(const luna_http_client_opts *opts, const char *method, const char *path,
                         const char *content_type, const void *body, size_t len,
                         luna_http_result *out) LUNA_MUST_CHECK;
/* luna_http_fetch with extra headers (see luna_http_client_request_with). */
luna_err luna_http_fetch_with(const luna_http_client_opts *opts, const char *method,
                              const char *path, const char *content_type, const void *body,
                              size_t len, const luna_http_header *headers, size_t n_headers,
                              luna_http_result *out) LUNA_MUST_CHECK;
void luna_http_result_free(luna_http_result *r);

#endif
