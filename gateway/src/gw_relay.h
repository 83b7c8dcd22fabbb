/*
 * gw_relay.h - the gateway's table-driven relay of the administrative and
 * query routes (GET /v1/tees, keys, tenants, API keys, clients, attestation
 * history, audit queries) to IAM, the KMS, the attestation service, the
 * audit log and its witness.  docs/protocol.md ("Relayed routes") is the
 * table in words; docs/gateway.md the rest of the manual.
 *
 * Order for every relayed request: the path (clean, then matched against
 * the table), the query (allow-listed parameters only, each validated),
 * the body (strict JSON schema, GW_JSON_MAX_BYTES), then the caller's
 * gateway token (gw_service_admit: verification and rate limits), then
 * IAM's decision on the route's permission, then the downstream token
 * (gw_forward_authorization, verified here for the downstream audience and
 * the same tenant and principal), then the relay.  The tenant of every
 * downstream path or body is the verified token's, never one the client
 * wrote.
 *
 * Must never: forward a header the client chose other than through
 * gw_forward_authorization, forward the raw query string, log a body (IAM
 * answers carry API keys and client key files), or answer a relayed
 * success without checking its shape.
 *
 * Threading: the event loop's thread only, like the rest of the gateway.
 */
#ifndef LUNA_GW_RELAY_H
#define LUNA_GW_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw.h"

/* ====================================================================== */
/* gw_relay_parse.c - path and query parsers (untrusted text; fuzzed)      */
/* ====================================================================== */

#define GW_RELAY_PATH_MAX 256u  /* a relayed public path */
#define GW_RELAY_SEGS_MAX 8u    /* segments of a relayed path */
#define GW_RELAY_IDS_MAX 2u     /* "{}" captures per pattern */
#define GW_QUERY_MAX 512u       /* the raw query string */
#define GW_QUERY_PARAMS_MAX 8u  /* parameters in one query */
#define GW_QUERY_NAME_MAX 32u
#define GW_QUERY_UINT_DIGITS 19u /* decimal digits of a number (fits int64) */

/*
 * A clean relayed path: at most GW_RELAY_PATH_MAX bytes, "/v1/" then
 * 1..GW_RELAY_SEGS_MAX-1 more segments, each 1..GW_ID_MAX characters of
 * [A-Za-z0-9._-] and neither "." nor "..": so no empty segment, no
 * trailing slash, no percent-encoding (an encoded slash or dot never
 * reaches a matcher), no traversal.  LUNA_OK, LUNA_ERR_TOO_LARGE (overlong
 * path or segment) or LUNA_ERR_FORMAT.
 */
luna_err gw_relay_path_clean(const char *path) LUNA_MUST_CHECK;

/*
 * Matches a clean path against pattern ("/v1/tees/{}/quarantine": a "{}"
 * segment captures one id).  LUNA_OK with ids[0..*n_ids) filled (each
 * GW_ID_MAX + 1 bytes, NUL-terminated) or LUNA_ERR_NOT_FOUND.
 */
luna_err gw_relay_path_match(const char *pattern, const char *path,
                             char ids[GW_RELAY_IDS_MAX][GW_ID_MAX + 1],
                             size_t *n_ids) LUNA_MUST_CHECK;

typedef enum gw_qkind {
    GW_Q_IDENT = 1, /* [A-Za-z0-9._-]{1,GW_ID_MAX}, not "." or ".." */
    GW_Q_UINT = 2,  /* 1..GW_QUERY_UINT_DIGITS decimal digits */
} gw_qkind;

typedef struct gw_qspec {
    const char *name;
    gw_qkind kind;
} gw_qspec;

typedef struct gw_query {
    size_t n;
    const gw_qspec *spec[GW_QUERY_PARAMS_MAX]; /* the allow-list entry of each */
    char value[GW_QUERY_PARAMS_MAX][GW_ID_MAX + 1];
} gw_query;

/*
 * Parses raw ("k=v&k=v", NULL or "" for none) against the allow-list
 * spec[0..n_spec).  Every parameter must be listed, appear once, have a
 * value of its kind, and no character outside the kinds' classes (so no
 * percent-encoding, '+' or ';').  LUNA_OK; LUNA_ERR_TOO_LARGE (over
 * GW_QUERY_MAX or GW_QUERY_PARAMS_MAX); LUNA_ERR_NOT_FOUND (a name not
 * on the list); LUNA_ERR_FORMAT (anything else).  *out is zeroed first.
 */
luna_err gw_query_parse(const char *raw, const gw_qspec *spec, size_t n_spec,
                        gw_query *out) LUNA_MUST_CHECK;

/* The value of name in q, or NULL. */
const char *gw_query_get(const gw_query *q, const char *name);

/*
 * Writes q as "k=v&k=v" (the validated values only, in the order given)
 * into out of cap bytes.  LUNA_ERR_TOO_LARGE when it does not fit.
 */
luna_err gw_query_format(const gw_query *q, char *out, size_t cap) LUNA_MUST_CHECK;

/* ====================================================================== */
/* gw_relay.c - the relay                                                  */
/* ====================================================================== */

typedef struct gw_relay gw_relay;

/*
 * Builds the relay's upstream clients (mTLS with the gateway's certificate
 * and each peer's exact identity; the witness only when set->witness has
 * a host and port).  g is borrowed (its token key set, admission and rate
 * limits) and must outlive the relay; set is borrowed likewise.
 */
luna_err gw_relay_new(struct event_base *base, const gw_settings *set, gw_service *g,
                      gw_relay **out) LUNA_MUST_CHECK;
/* Registers every relayed route on the public listener. */
luna_err gw_relay_routes(gw_relay *r, luna_http_server *srv) LUNA_MUST_CHECK;
/* Answers pending relays 503 and frees; NULL is a no-op. */
void gw_relay_free(gw_relay *r);

#endif
