/*
 * http_internal.h - what the http_*.c files share and the unit tests and
 * fuzz targets reach directly: identity patterns, request ids, media
 * types, the error body, the metrics table and the reloadable TLS context.
 * Never included by components: luna/http.h is their whole interface.
 */
#ifndef LUNA_HTTP_INTERNAL_H
#define LUNA_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "luna/http.h"

struct evbuffer;

/* ---- identity patterns (http_routes.c) ---- */

/*
 * A pattern is "lunal://" followed by 0..LUNA_PKI_IDENTITY_MAX-1 printable
 * ASCII characters other than '*', optionally ending in one '*'.
 */
bool luna_http_pattern_valid(const char *pattern);
/* True when identity matches one of the n patterns (see luna/http.h). */
bool luna_http_identity_allowed(const char *const *patterns, size_t n, const char *identity);

/* ---- routes (http_routes.c) ---- */

typedef struct luna_http_route_entry {
    unsigned methods;
    char *path;       /* without the trailing '*' for a prefix route */
    size_t path_len;
    bool prefix;
    char **allow;
    size_t n_allow;
    char *content_type;
    luna_http_handler handler;
    void *arg;
    char *label;      /* the path as registered: the metrics "route" label */
} luna_http_route_entry;

typedef struct luna_http_route_table {
    luna_http_route_entry *entries;
    size_t n;
} luna_http_route_table;

luna_err luna_http_routes_add(luna_http_route_table *t, const luna_http_route *r) LUNA_MUST_CHECK;
void luna_http_routes_free(luna_http_route_table *t);

typedef enum luna_http_match {
    LUNA_HTTP_MATCH_OK = 0,
    LUNA_HTTP_MATCH_NO_PATH = 1,   /* 404 */
    LUNA_HTTP_MATCH_NO_METHOD = 2, /* 405; *allow_methods holds the mask */
} luna_http_match;

/*
 * Finds the route for (method bit, path): *out is the route on OK, and on
 * NO_METHOD the most specific route of that path (for the metrics label).
 */
luna_http_match luna_http_routes_find(const luna_http_route_table *t, unsigned method,
                                      const char *path, const luna_http_route_entry **out,
                                      unsigned *allow_methods);

/* "GET" -> LUNA_HTTP_GET; 0 for anything else. */
unsigned luna_http_method_bit(const char *method);
/* Writes "GET, POST" for a mask into out (cap >= 40). */
void luna_http_methods_text(unsigned mask, char *out, size_t cap);

/* ---- request ids, media types, errors (http_routes.c) ---- */

bool luna_http_request_id_valid(const char *id);
/*
 * A request path the router accepts: starts with '/', printable ASCII, at
 * most LUNA_HTTP_REQUEST_PATH_MAX bytes, no "//", "/./" or "/../" segment.
 */
#define LUNA_HTTP_REQUEST_PATH_MAX 2048u
bool luna_http_path_acceptable(const char *path);
/* Writes 32 lowercase hex chars + NUL; out_cap >= 33. */
luna_err luna_http_request_id_generate(char *out, size_t out_cap) LUNA_MUST_CHECK;
/*
 * True when the Content-Type header value names media type want
 * (case-insensitive, parameters after ';' ignored, surrounding spaces
 * ignored).  header NULL = false.
 */
bool luna_http_media_type_is(const char *header, const char *want);
/* Default machine code for an HTTP status ("not_found", ...). */
const char *luna_http_status_code_name(int status);
/* Serializes the error body; returns a malloc'd NUL-terminated string or NULL. */
char *luna_http_error_body(const char *code, const char *message);

/* ---- metrics (http_metrics.c) ---- */

#define LUNA_HTTP_METRICS_MAX_SERIES 512u
#define LUNA_HTTP_METRICS_BUCKETS 12u

typedef struct luna_http_series {
    const char *route; /* borrowed: a route label or a static string */
    unsigned method;   /* method bit, 0 for "other" */
    int status;
    uint64_t count;
    double sum;
    uint64_t buckets[LUNA_HTTP_METRICS_BUCKETS]; /* cumulative at render time */
} luna_http_series;

typedef struct luna_http_metrics {
    luna_http_series *series;
    size_t n;
    uint64_t dropped;      /* observations with no room for their series */
    uint64_t reload_ok;
    uint64_t reload_failed;
    uint64_t inflight;
} luna_http_metrics;

extern const double luna_http_metrics_bounds[LUNA_HTTP_METRICS_BUCKETS];

/* route must outlive the table (route labels, static strings). */
void luna_http_metrics_observe(luna_http_metrics *m, const char *route, unsigned method,
                               int status, double seconds);
/* Appends the Prometheus text exposition (format 0.0.4). */
luna_err luna_http_metrics_render(const luna_http_metrics *m, struct evbuffer *out) LUNA_MUST_CHECK;
void luna_http_metrics_free(luna_http_metrics *m);

/* ---- TLS contexts with reload from disk (http_tls.c) ---- */

typedef enum luna_http_tls_role {
    LUNA_HTTP_TLS_SERVER = 1,
    LUNA_HTTP_TLS_CLIENT = 2,
    /* Server authentication only: no client certificate requested. */
    LUNA_HTTP_TLS_PUBLIC_SERVER = 3,
} luna_http_tls_role;

typedef struct luna_http_file_stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} luna_http_file_stamp;

typedef struct luna_http_tls {
    luna_http_tls_role role;
    char *ca_file, *cert_file, *key_file;
    char *tee_ca_file;                  /* NULL when no TEE CA is configured */
    SSL_CTX *ctx;                       /* current; new connections take it */
    luna_http_file_stamp stamps[4];     /* of the files ctx was built from */
    luna_http_file_stamp failed[4];     /* of the last broken attempt */
    bool have_failed;
} luna_http_tls;

luna_err luna_http_tls_new(luna_http_tls_role role, const luna_http_tls_files *files,
                           luna_http_tls **out) LUNA_MUST_CHECK;
/*
 * Rebuilds ctx when any file changed since the last load (or the last
 * failed attempt).  *reloaded tells whether the context was swapped.  On
 * failure the old context stays.
 */
luna_err luna_http_tls_check(luna_http_tls *t, bool *reloaded) LUNA_MUST_CHECK;
void luna_http_tls_free(luna_http_tls *t);

/* The client side's expected peer identity, stored on each SSL. */
luna_err luna_http_tls_set_expected(SSL *ssl, const char *identity) LUNA_MUST_CHECK;

/* Extracts the verified peer's identity; LUNA_ERR_UNAUTHENTICATED without one. */
luna_err luna_http_tls_peer_identity(SSL *ssl, char *out, size_t out_cap) LUNA_MUST_CHECK;

/* Monotonic seconds, for latencies and deadlines. */
double luna_http_now(void);

#endif
