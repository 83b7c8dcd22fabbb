/*
 * gw.h - the API gateway's private interface (docs/gateway.md is the
 * manual): header parsers, rate limiter, idempotency cache, settings and
 * the service that wires the public listener to the internal components.
 *
 * The gateway relays sealed bytes and never opens them: nothing here takes
 * a key, a plaintext or an OTK, and nothing here may log a token, an API
 * key or a body.  Everything runs on one libevent thread (luna/http.h's
 * rule); no function here is thread-safe.
 */
#ifndef LUNA_GW_H
#define LUNA_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/crypto.h"
#include "luna/err.h"
#include "luna/http.h"

struct event_base;

/* ---- named caps ---- */
#define GW_ID_MAX 64u            /* tenant, principal, job, TEE, deployment ids */
#define GW_IDEM_KEY_MAX 64u      /* Idempotency-Key header */
#define GW_APIKEY_MAX 256u       /* the ApiKey credential (IAM's own cap) */
#define GW_JSON_MAX_BYTES 16384u /* any JSON request body */
#define GW_JSON_MAX_DEPTH 4u
#define GW_MAX_TEES 64u
#define GW_HOST_MAX 255u
#define GW_UPSTREAM_JSON_MAX (1024u * 1024u) /* a JSON answer from a component */
#define GW_MANIFEST_MAX (64u * 1024u)       /* a TEE's signed manifest (JWS text) */

/* ====================================================================== */
/* gw_parse.c - the parsers of untrusted header text (fuzzed)             */
/* ====================================================================== */

typedef enum gw_auth_kind {
    GW_AUTH_NONE = 0,   /* no Authorization header */
    GW_AUTH_BEARER = 1, /* "Bearer <jws compact>" */
    GW_AUTH_APIKEY = 2, /* "ApiKey <key>" */
} gw_auth_kind;

/*
 * Splits an Authorization header value.  NULL is GW_AUTH_NONE.  The scheme
 * is matched case-insensitively (RFC 9110), followed by exactly one space
 * and the credential: for Bearer 1..LUNA_JWS_MAX_TOKEN_LEN characters of
 * [A-Za-z0-9._-], for ApiKey 1..GW_APIKEY_MAX printable ASCII characters
 * without space.  *cred points into h.  Anything else: LUNA_ERR_FORMAT.
 */
luna_err gw_parse_authorization(const char *h, gw_auth_kind *kind, const char **cred,
                                size_t *cred_len) LUNA_MUST_CHECK;

/* [A-Za-z0-9._-]{1,max}: ids, request ids, OTK ids. */
bool gw_ident_ok(const char *s, size_t max);

/*
 * An Idempotency-Key value: 1..GW_IDEM_KEY_MAX characters of
 * [A-Za-z0-9._:-].  NULL: LUNA_ERR_NOT_FOUND; malformed: LUNA_ERR_FORMAT.
 * out receives a copy (GW_IDEM_KEY_MAX + 1 bytes).
 */
luna_err gw_parse_idempotency_key(const char *h, char out[GW_IDEM_KEY_MAX + 1]) LUNA_MUST_CHECK;

/* ====================================================================== */
/* gw_limits.c - token buckets and the idempotency cache                  */
/* ====================================================================== */

#define GW_RL_NAME_MAX 200u

typedef struct gw_bucket {
    char name[GW_RL_NAME_MAX + 1];
    double tokens;
    double last; /* monotonic seconds of the last refill */
    bool used;
} gw_bucket;

/*
 * A fixed table of token buckets keyed by name: each holds at most burst
 * tokens and gains rate per second.  A full table evicts only a bucket
 * that has refilled completely (idle), so churning names can never reset
 * a busy caller's bucket; with none idle the request is refused.
 */
typedef struct gw_ratelimit {
    gw_bucket *b;
    size_t cap;
    double rate;
    double burst;
} gw_ratelimit;

luna_err gw_rl_init(gw_ratelimit *rl, size_t cap, double rate, double burst) LUNA_MUST_CHECK;
void gw_rl_free(gw_ratelimit *rl);
/*
 * Takes one token from name's bucket at time now.  true: allowed.  false:
 * refused, *retry_after = whole seconds until a token is there (>= 1).
 */
bool gw_rl_take(gw_ratelimit *rl, const char *name, double now, unsigned *retry_after);

typedef enum gw_idem_state {
    GW_IDEM_NEW = 0,         /* recorded as in flight: run it, then finish or abort */
    GW_IDEM_REPLAY = 1,      /* same key, same body, answered before: *out holds it */
    GW_IDEM_CONFLICT = 2,    /* same key, different body: 409 */
    GW_IDEM_IN_PROGRESS = 3, /* same key still running: 409, retry later */
    GW_IDEM_FULL = 4,        /* no room (every entry live): 503 */
} gw_idem_state;

#define GW_IDEM_NAME_MAX (GW_ID_MAX + 1u + GW_IDEM_KEY_MAX)

typedef struct gw_idem_entry {
    char name[GW_IDEM_NAME_MAX + 1]; /* "<tenant>/<key>" */
    uint8_t body_hash[LUNA_SHA256_LEN];
    bool used;
    bool done;
    double expires;
    int status;
    uint8_t *resp; /* a sealed result: never plaintext */
    size_t resp_len;
} gw_idem_entry;

typedef struct gw_idem {
    gw_idem_entry *e;
    size_t cap;
    double ttl;
    size_t max_resp; /* largest answer kept */
} gw_idem;

luna_err gw_idem_init(gw_idem *t, size_t cap, double ttl, size_t max_resp) LUNA_MUST_CHECK;
void gw_idem_free(gw_idem *t);
/* Looks name up at time now (expired entries are dropped first). */
gw_idem_state gw_idem_begin(gw_idem *t, const char *name, const uint8_t hash[LUNA_SHA256_LEN],
                            double now, const gw_idem_entry **out);
/*
 * Records the answer of an in-flight entry.  Only 2xx answers are kept (a
 * retryable failure must let the SDK retry under the same key with a new
 * envelope); others drop the entry, as does an answer over max_resp.
 */
void gw_idem_finish(gw_idem *t, const char *name, int status, const uint8_t *resp, size_t len,
                    double now);

/* ====================================================================== */
/* gw_service.c - the gateway                                             */
/* ====================================================================== */

typedef struct gw_endpoint {
    char host[GW_HOST_MAX + 1];
    uint16_t port;
} gw_endpoint;

typedef struct gw_tee_conf {
    char id[GW_ID_MAX + 1]; /* identity lunal://tee/<id> */
    gw_endpoint ep;
} gw_tee_conf;

typedef struct gw_settings {
    luna_http_tls_files tls; /* mTLS client (and the public listener's certificate) */
    const char *bind_addr;
    uint16_t port;
    gw_endpoint iam, kms, attestation, audit;
    gw_endpoint witness; /* optional (host "" / port 0: none): GET /v1/audit/witness */
    gw_tee_conf tees[GW_MAX_TEES];
    size_t n_tees;
    const char *token_issuer;   /* "iss" IAM puts in tokens */
    const char *token_audience; /* "aud" */
    unsigned clock_skew_sec;
    unsigned jwks_refresh_sec;
    unsigned health_interval_sec;
    unsigned upstream_timeout_sec;
    unsigned tee_timeout_sec;
    unsigned client_timeout_sec; /* public connections: slowloris bound */
    size_t max_request_bytes;    /* public request body (envelopes) */
    size_t max_response_bytes;   /* upstream answers (result envelopes) */
    unsigned report_max_age_sec; /* freshness of an attestation report */
    unsigned assignment_ttl_sec; /* how long a selection admits /otk and /jobs/run */
    double auth_rate, auth_burst; /* POST /v1/auth/token, per tenant id (pre-auth) */
    double tenant_rate, tenant_burst;
    double key_rate, key_burst;
    size_t idem_entries;
    unsigned idem_ttl_sec;
    unsigned retry_after_sec; /* told to a client on tee_unavailable */
} gw_settings;

/* Defaults for everything but TLS, endpoints and TEEs. */
void gw_settings_defaults(gw_settings *s);

typedef struct gw_service gw_service;

/*
 * Builds the upstream clients (every one mTLS with the gateway's
 * certificate and the peer's exact identity), starts the JWKS fetch and
 * the TEE health probes.  set is copied (its strings must outlive the
 * service).  base is borrowed.
 */
luna_err gw_service_new(struct event_base *base, const gw_settings *set,
                        gw_service **out) LUNA_MUST_CHECK;
/* The authenticated caller: every field from the verified token. */
typedef struct gw_caller {
    char tenant[GW_ID_MAX + 1];
    char principal[GW_ID_MAX + 1];
    char key_id[GW_ID_MAX + 1]; /* "" for an anonymous token */
} gw_caller;

/*
 * For the relay (gw_relay.c): verifies the caller's gateway token and
 * takes a token from its tenant's and key's buckets, exactly as the
 * gateway's own routes do.  false: refused and already answered (401,
 * 403, 429, 503).
 */
bool gw_service_admit(gw_service *g, luna_http_request *req, gw_caller *who);
/* A JSON error answer {"error":{"code","message"[,"field"]}}: code and
   message are static text; field is a schema path (never a value). */
void gw_reply_error(luna_http_request *req, int status, const char *code, const char *message,
                    const char *field);

/* Registers the public routes on a public listener. */
luna_err gw_service_routes(gw_service *g, luna_http_server *srv) LUNA_MUST_CHECK;
/* Ready: the IAM key set is loaded. */
bool gw_service_ready(void *arg);
/*
 * The one place that picks what a relay sends downstream as its
 * Authorization header: the value of the caller's
 * "Lunal-Downstream-Authorization" header (the token IAM minted for the
 * downstream service, docs/protocol.md "Token audiences"), only when it
 * is a well-formed "Bearer <token>" (gw_parse_authorization).  Never the
 * caller's own Authorization header: the gateway's token is bound to the
 * gateway and must not travel further.  NULL when the header is absent or
 * malformed; the relay then answers 401 "missing_downstream_token" with a
 * JSON error.  The pointer is owned by req and lives as long as it.
 */
const char *gw_forward_authorization(const luna_http_request *req);

/*
 * The downstream token auth (as gw_forward_authorization picked it)
 * checked as its service will - IAM's signature and issuer, audience -
 * and bound to the caller: it must name who's tenant and principal.
 * LUNA_OK; LUNA_ERR_FORMAT: not "Bearer <token>"; LUNA_ERR_UNAVAILABLE:
 * IAM's keys not loaded yet; LUNA_ERR_EXPIRED; LUNA_ERR_UNAUTHENTICATED:
 * anything else.  Replies nothing: each caller answers in its own words.
 */
luna_err gw_downstream_verify(const gw_service *g, const char *auth, const char *audience,
                              const gw_caller *who) LUNA_MUST_CHECK;

/*
 * Cancels every pending upstream call (their requests are answered 503)
 * and frees; call before luna_http_server_free.  NULL is a no-op.
 */
void gw_service_free(gw_service *g);

#endif
