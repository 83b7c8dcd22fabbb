/*
 * gw_service.c - the API gateway: the public routes, request validation,
 * local token verification against IAM's key set, rate limits, TEE
 * selection and the relays to IAM, the KMS, the attestation service and
 * the TEEs, with audit entries for every TEE interaction.
 *
 * Order for every request: validate (query, request id, headers, body
 * schema and size), then authenticate (IAM token verified locally), then
 * rate-limit, then ask IAM whether the principal may do it, then act.
 * Identity sent downstream comes only from the verified token, never from
 * a header or field the client chose.
 *
 * Must never: open, decrypt or log what it relays (envelopes, sealed
 * OTKs, results), log a token or an API key, answer a relayed success
 * without validating its shape, or send a job to a TEE before its audit
 * entry is durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "gw.h"
#include "gw_relay.h"
#include "luna/audience.h"
#include "luna/audit_client.h"
#include "luna/bytes.h"
#include "luna/envelope.h"
#include "luna/json.h"
#include "luna/jws.h"
#include "luna/log.h"
#include "luna/pki.h"

#define COMPONENT "gateway"
#define GW_MAX_ASSIGN 4096u
#define GW_JWKS_MIN_GAP_SEC 5.0 /* forced refreshes (unknown kid) at most this often */
#define GW_ERR_JSON "application/json"
#define GW_OCTETS "application/octet-stream"
#define GW_TENANT_HEADER "X-Lunal-Tenant-Id"
#define GW_OTK_HEADER "X-Lunal-Otk-Id"

typedef struct gw_tee {
    gw_tee_conf conf;
    char identity[LUNA_PKI_IDENTITY_MAX];
    luna_http_client *client;
    bool healthy;
    bool probing;
    double last_used;
    /* The developer-signed manifest the TEE serves (GET /v1/tee/info): public,
       relayed to the client, which verifies it under its pinned key. */
    char *manifest;
} gw_tee;

typedef struct gw_assign {
    bool used;
    char tenant[GW_ID_MAX + 1];
    char tee[GW_ID_MAX + 1];
    double expires;
} gw_assign;

struct gw_service {
    struct event_base *base;
    gw_settings set;
    luna_http_client *iam, *kms, *att;
    luna_audit_client *audit;
    gw_tee tees[GW_MAX_TEES];
    size_t n_tees;
    luna_jws_keyset *keys;
    bool jwks_pending;
    double jwks_next, jwks_forced;
    double probe_next;
    bool probed_once;
    size_t probes_left;
    struct event *tick;
    gw_ratelimit rl_auth, rl_tenant, rl_key;
    gw_idem idem;
    gw_assign *assign;
    bool closing;
    gw_relay *relay; /* the admin and query routes (gw_relay.c) */
};

typedef enum gw_op {
    GW_OP_TOKEN = 1,
    GW_OP_SELECT = 2,
    GW_OP_OTK = 3,
    GW_OP_RUN = 4,
    GW_OP_VERIFY = 5,
} gw_op;

typedef struct gw_ctx {
    gw_service *g;
    luna_http_request *req;
    gw_op op;
    gw_caller who;
    json_t *body;
    /* selection */
    size_t order[GW_MAX_TEES];
    size_t n_order, pos;
    size_t tee;
    char deployment[GW_ID_MAX + 1];
    json_t *answer;
    /* job run */
    const uint8_t *env;
    size_t env_len;
    luna_envelope_header hdr;
    char otk_id[GW_ID_MAX + 1];
    char idem_name[GW_IDEM_NAME_MAX + 1];
    bool idem_active;
} gw_ctx;

static double mono_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

void gw_settings_defaults(gw_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->token_issuer = "lunal://svc/iam";
    s->token_audience = LUNA_AUD_GATEWAY;
    s->clock_skew_sec = 30;
    s->jwks_refresh_sec = 60;
    s->health_interval_sec = 5;
    s->upstream_timeout_sec = 10;
    s->tee_timeout_sec = 60;
    s->client_timeout_sec = 10;
    s->max_request_bytes = 8u * 1024u * 1024u;
    s->max_response_bytes = 8u * 1024u * 1024u;
    s->report_max_age_sec = 600;
    s->assignment_ttl_sec = 600;
    s->auth_rate = 5.0;
    s->auth_burst = 20.0;
    s->tenant_rate = 50.0;
    s->tenant_burst = 100.0;
    s->key_rate = 20.0;
    s->key_burst = 40.0;
    s->idem_entries = 4096;
    s->idem_ttl_sec = 3600;
    s->retry_after_sec = 1;
}

/* ====================================================================== */
/* replies                                                                 */
/* ====================================================================== */

/* code and message are static text; field is a schema path (never a value). */
void gw_reply_error(luna_http_request *req, int status, const char *code, const char *message,
                    const char *field)
{
    json_t *b = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    if (b != NULL && field != NULL && field[0] != '\0')
        (void)json_object_set_new(json_object_get(b, "error"), "field", json_string(field));
    if (b == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, status, b);
    json_decref(b);
}

static void reply_retry(luna_http_request *req, int status, const char *code, const char *message,
                        unsigned after)
{
    char v[16];
    (void)snprintf(v, sizeof(v), "%u", after == 0 ? 1u : after);
    if (luna_http_response_header(req, "Retry-After", v) != LUNA_OK) {
        /* the answer still says retryable through its code */
    }
    gw_reply_error(req, status, code, message, NULL);
}

static void reply_transport(luna_http_request *req, luna_err err)
{
    if (err == LUNA_ERR_TIMEOUT)
        reply_retry(req, 504, "upstream_timeout", "an internal component did not answer in time",
                    1);
    else
        reply_retry(req, 503, "upstream_unavailable", "an internal component is unavailable", 1);
}

/* ====================================================================== */
/* contexts                                                                */
/* ====================================================================== */

static gw_ctx *ctx_new(gw_service *g, luna_http_request *req, gw_op op)
{
    gw_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return NULL;
    }
    c->g = g;
    c->req = req;
    c->op = op;
    return c;
}

/* Frees c; an idempotency entry still in flight is dropped (not answered). */
static void ctx_free(gw_ctx *c)
{
    if (c == NULL)
        return;
    if (c->idem_active)
        gw_idem_finish(&c->g->idem, c->idem_name, 0, NULL, 0, mono_now());
    json_decref(c->body);
    json_decref(c->answer);
    free(c);
}

/* Replies with an error and frees c: the end of every failed path. */
static void ctx_fail(gw_ctx *c, int status, const char *code, const char *message)
{
    gw_reply_error(c->req, status, code, message, NULL);
    ctx_free(c);
}

static void ctx_fail_transport(gw_ctx *c, luna_err err)
{
    reply_transport(c->req, err);
    ctx_free(c);
}

/* ====================================================================== */
/* validation                                                              */
/* ====================================================================== */

/* Checks common to every public route; replies and returns false on a refusal. */
static bool check_common(luna_http_request *req)
{
    if (luna_http_request_query(req) != NULL) {
        gw_reply_error(req, 400, "unexpected_query", "this route takes no query string", NULL);
        return false;
    }
    const char *rid = luna_http_request_header(req, LUNA_HTTP_REQUEST_ID_HEADER);
    if (rid != NULL && !gw_ident_ok(rid, LUNA_HTTP_REQUEST_ID_MAX)) {
        gw_reply_error(req, 400, "invalid_request_id",
                    "X-Request-Id must be 1..64 characters of [A-Za-z0-9._-]", NULL);
        return false;
    }
    return true;
}

static bool parse_body(luna_http_request *req, const luna_json_schema *schema, json_t **out)
{
    const uint8_t *data;
    size_t len;
    *out = NULL;
    if (luna_http_request_body(req, &data, &len) != LUNA_OK) {
        gw_reply_error(req, 413, "too_large", "request body too large", NULL);
        return false;
    }
    luna_json_limits lim = {.max_bytes = GW_JSON_MAX_BYTES, .max_depth = GW_JSON_MAX_DEPTH};
    luna_json_error je;
    luna_err err = luna_json_parse((const char *)data, len, schema, &lim, out, &je);
    if (err == LUNA_ERR_TOO_LARGE) {
        gw_reply_error(req, 413, "too_large", je.message, je.path);
        return false;
    }
    if (err != LUNA_OK) {
        gw_reply_error(req, 400, "invalid_request", je.message, je.path);
        return false;
    }
    return true;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A JSON answer from a component: an object, no duplicate keys, bounded. */
static json_t *upstream_json(const luna_http_response *r)
{
    if (r->body == NULL || r->body_len == 0 || r->body_len > GW_UPSTREAM_JSON_MAX)
        return NULL;
    json_error_t je;
    json_t *j = json_loadb((const char *)r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/*
 * A component refused (4xx): tell the client the status with the
 * component's machine code when it is a plain identifier, never its text.
 */
static void relay_refusal(gw_ctx *c, const luna_http_response *r, const char *message)
{
    json_t *j = upstream_json(r);
    const char *code = jstr(json_object_get(j, "error"), "code");
    int status = r->status;
    if (status != 400 && status != 401 && status != 403 && status != 404 && status != 409 &&
        status != 410 && status != 413 && status != 429)
        status = 502;
    if (code == NULL || !gw_ident_ok(code, 64))
        code = status == 502 ? "bad_gateway" : luna_errname(LUNA_ERR_PERMISSION);
    gw_reply_error(c->req, status, code, message, NULL);
    json_decref(j);
    ctx_free(c);
}

/* ====================================================================== */
/* authentication and rate limits                                          */
/* ====================================================================== */

static void request_jwks(gw_service *g);

static bool claim_id(const json_t *claims, const char *name, char out[GW_ID_MAX + 1],
                     bool required)
{
    const char *v = jstr(claims, name);
    if (v == NULL) {
        out[0] = '\0';
        return !required;
    }
    if (!gw_ident_ok(v, GW_ID_MAX))
        return false;
    memcpy(out, v, strlen(v) + 1);
    return true;
}

/* The header a client sends next to its gateway token on a relayed route. */
#define GW_DOWNSTREAM_AUTH LUNA_DOWNSTREAM_AUTH_HEADER

const char *gw_forward_authorization(const luna_http_request *req)
{
    const char *h = luna_http_request_header(req, GW_DOWNSTREAM_AUTH);
    gw_auth_kind kind;
    const char *tok;
    size_t len;
    /* Only a clean "Bearer <jws chars>" leaves: nothing the client writes
       can add a header or a second credential to the downstream request. */
    if (h == NULL || gw_parse_authorization(h, &kind, &tok, &len) != LUNA_OK ||
        kind != GW_AUTH_BEARER)
        return NULL;
    /* The services accept exactly "Bearer "; another casing would pass
       here and fail there, after the gateway had already counted it. */
    if (strncmp(h, "Bearer ", 7) != 0)
        return NULL;
    return h;
}

/* A relay whose caller sent no usable downstream token. */
static void reply_no_downstream(luna_http_request *req)
{
    gw_reply_error(req, 401, "missing_downstream_token",
                "this route needs the downstream service's token in " GW_DOWNSTREAM_AUTH, NULL);
}

luna_err gw_downstream_verify(const gw_service *g, const char *auth, const char *audience,
                              const gw_caller *who)
{
    gw_auth_kind kind;
    const char *tok;
    size_t tok_len;
    if (auth == NULL || gw_parse_authorization(auth, &kind, &tok, &tok_len) != LUNA_OK ||
        kind != GW_AUTH_BEARER)
        return LUNA_ERR_FORMAT;
    if (g->keys == NULL)
        return LUNA_ERR_UNAVAILABLE;
    luna_jws_verify_opts o;
    luna_jws_verify_opts_init(&o);
    o.skew = g->set.clock_skew_sec;
    o.issuer = g->set.token_issuer;
    o.audience = audience;
    json_t *claims = NULL;
    luna_err err = luna_jws_verify(g->keys, tok, tok_len, &o, &claims, NULL);
    const char *t = json_string_value(json_object_get(claims, "tenant"));
    const char *p = json_string_value(json_object_get(claims, "principal"));
    bool same = err == LUNA_OK && t != NULL && p != NULL && strcmp(t, who->tenant) == 0 &&
                strcmp(p, who->principal) == 0;
    json_decref(claims);
    if (err == LUNA_ERR_EXPIRED)
        return err;
    return same ? LUNA_OK : LUNA_ERR_UNAUTHENTICATED;
}

/*
 * The downstream token of a flow route (TEE selection, one-time key,
 * verify), checked as the downstream will check it - IAM's signature and
 * issuer, the downstream's audience - and bound to the caller: the same
 * tenant and principal as the gateway token, so nobody pairs their own
 * gateway token (rate limits, audit) with someone else's KMS or
 * attestation token.  Replies, frees c and returns NULL on refusal.
 */
static const char *flow_downstream(gw_ctx *c, const char *audience)
{
    const char *h = gw_forward_authorization(c->req);
    luna_err err = h != NULL ? gw_downstream_verify(c->g, h, audience, &c->who) : LUNA_ERR_FORMAT;
    if (err == LUNA_ERR_FORMAT)
        reply_no_downstream(c->req);
    else if (err == LUNA_ERR_UNAVAILABLE)
        reply_retry(c->req, 503, "not_ready", "token keys not loaded yet", 1);
    else if (err != LUNA_OK)
        gw_reply_error(c->req, 401,
                    err == LUNA_ERR_EXPIRED ? "downstream_token_expired"
                                            : "invalid_downstream_token",
                    "the downstream token is not valid for this route and caller", NULL);
    if (err != LUNA_OK) {
        ctx_free(c);
        return NULL;
    }
    return h;
}

/* Verifies the bearer token locally; replies and returns false on refusal. */
static bool authenticate(gw_service *g, luna_http_request *req, gw_caller *who)
{
    memset(who, 0, sizeof(*who));
    gw_auth_kind kind;
    const char *tok;
    size_t tok_len;
    if (gw_parse_authorization(luna_http_request_header(req, "Authorization"), &kind, &tok,
                               &tok_len) != LUNA_OK) {
        gw_reply_error(req, 401, "invalid_authorization", "malformed Authorization header", NULL);
        return false;
    }
    if (kind != GW_AUTH_BEARER) {
        gw_reply_error(req, 401, "missing_token",
                       "a bearer token from POST /v1/auth/token is required", NULL);
        return false;
    }
    if (g->keys == NULL) {
        reply_retry(req, 503, "not_ready", "token keys not loaded yet", 1);
        return false;
    }
    luna_jws_verify_opts o;
    luna_jws_verify_opts_init(&o);
    o.skew = g->set.clock_skew_sec;
    o.issuer = g->set.token_issuer;
    o.audience = g->set.token_audience;
    json_t *claims = NULL;
    luna_err err = luna_jws_verify(g->keys, tok, tok_len, &o, &claims, NULL);
    if (err == LUNA_ERR_EXPIRED) {
        gw_reply_error(req, 401, "token_expired", "the token has expired", NULL);
        return false;
    }
    if (err == LUNA_ERR_NOT_FOUND)
        request_jwks(g); /* maybe a key IAM just published */
    if (err != LUNA_OK) {
        gw_reply_error(req, 401, "invalid_token", "the token is not valid", NULL);
        return false;
    }
    bool ok = claim_id(claims, "tenant", who->tenant, true) &&
              claim_id(claims, "principal", who->principal, true) &&
              claim_id(claims, "api_key_id", who->key_id, false);
    json_decref(claims);
    if (!ok) {
        gw_reply_error(req, 401, "invalid_token", "the token is not valid", NULL);
        return false;
    }
    const char *t = luna_http_request_header(req, GW_TENANT_HEADER);
    if (t != NULL && strcmp(t, who->tenant) != 0) {
        gw_reply_error(req, 403, "tenant_mismatch", "the token belongs to another tenant", NULL);
        return false;
    }
    return true;
}

static bool rate_ok(gw_service *g, luna_http_request *req, const char *tenant, const gw_caller *who)
{
    char name[GW_RL_NAME_MAX + 1];
    unsigned after = 1;
    double now = mono_now();
    (void)snprintf(name, sizeof(name), "t:%s", tenant);
    /* Token issuance (before any credential is checked) has its own, tighter bucket. */
    if (!gw_rl_take(who == NULL ? &g->rl_auth : &g->rl_tenant, name, now, &after)) {
        reply_retry(req, 429, "rate_limited", "too many requests for this tenant", after);
        return false;
    }
    if (who != NULL) {
        (void)snprintf(name, sizeof(name), "k:%s/%s/%s", who->tenant, who->principal,
                       who->key_id[0] != '\0' ? who->key_id : "-");
        if (!gw_rl_take(&g->rl_key, name, now, &after)) {
            reply_retry(req, 429, "rate_limited", "too many requests for this key", after);
            return false;
        }
    }
    return true;
}

/* ====================================================================== */
/* audit                                                                   */
/* ====================================================================== */

static void audit_fill(luna_audit_entry *e, const gw_ctx *c, const char *op, const char *tee,
                       luna_audit_outcome outcome, const char *reason)
{
    memset(e, 0, sizeof(*e));
    char actor[2 * GW_ID_MAX + 2];
    (void)snprintf(actor, sizeof(actor), "%s/%s", c->who.tenant, c->who.principal);
    /* Every value is an identifier checked on the way in; a failed copy
     * leaves the field empty and the append fails closed. */
    if (luna_audit_set(e->actor, sizeof(e->actor), actor) != LUNA_OK ||
        luna_audit_set(e->tenant, sizeof(e->tenant), c->who.tenant) != LUNA_OK ||
        luna_audit_set(e->tee, sizeof(e->tee), tee != NULL ? tee : "") != LUNA_OK ||
        luna_audit_set(e->deployment, sizeof(e->deployment), c->deployment) != LUNA_OK ||
        luna_audit_set(e->operation, sizeof(e->operation), op) != LUNA_OK ||
        luna_audit_set(e->reason, sizeof(e->reason), reason != NULL ? reason : "") != LUNA_OK ||
        luna_audit_set(e->request_id, sizeof(e->request_id), luna_http_request_id(c->req)) !=
            LUNA_OK)
        e->operation[0] = '\0';
    e->outcome = outcome;
}

static void audit_logged(luna_err err, uint64_t index, void *arg)
{
    (void)index;
    (void)arg;
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "audit append failed", LUNA_LOG_ERR("err", err));
}

/* Best effort: the outcome of something already done. */
static void audit_after(gw_ctx *c, const char *op, const char *tee, luna_audit_outcome outcome,
                        const char *reason)
{
    luna_audit_entry e;
    audit_fill(&e, c, op, tee, outcome, reason);
    if (c->g->closing || luna_audit_client_append(c->g->audit, &e, audit_logged, NULL) != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "audit append refused",
                  LUNA_LOG_STR("operation", op), LUNA_LOG_STR("request_id",
                                                               luna_http_request_id(c->req)));
}

/* ====================================================================== */
/* TEEs: health, assignment                                                */
/* ====================================================================== */

static gw_tee *tee_find(gw_service *g, const char *id, size_t *idx)
{
    for (size_t i = 0; i < g->n_tees; i++) {
        if (strcmp(g->tees[i].conf.id, id) == 0) {
            if (idx != NULL)
                *idx = i;
            return &g->tees[i];
        }
    }
    return NULL;
}

static void tee_mark(gw_tee *t, bool healthy, const char *why)
{
    if (t->healthy != healthy)
        LUNA_LOGF(healthy ? LUNA_LOG_INFO : LUNA_LOG_WARN, COMPONENT,
                  healthy ? "TEE healthy" : "TEE marked unhealthy", LUNA_LOG_STR("tee", t->conf.id),
                  LUNA_LOG_STR("reason", why));
    t->healthy = healthy;
}

static void assign_add(gw_service *g, const char *tenant, const char *tee)
{
    double now = mono_now();
    gw_assign *slot = NULL;
    for (size_t i = 0; i < GW_MAX_ASSIGN; i++) {
        gw_assign *a = &g->assign[i];
        if (a->used && strcmp(a->tenant, tenant) == 0 && strcmp(a->tee, tee) == 0) {
            slot = a;
            break;
        }
        if (slot == NULL && (!a->used || a->expires <= now))
            slot = a;
    }
    if (slot == NULL) { /* full of live ones: replace the one closest to expiry */
        slot = &g->assign[0];
        for (size_t i = 1; i < GW_MAX_ASSIGN; i++)
            if (g->assign[i].expires < slot->expires)
                slot = &g->assign[i];
    }
    slot->used = true;
    memcpy(slot->tenant, tenant, strlen(tenant) + 1);
    memcpy(slot->tee, tee, strlen(tee) + 1);
    slot->expires = now + g->set.assignment_ttl_sec;
}

static bool assign_has(const gw_service *g, const char *tenant, const char *tee)
{
    double now = mono_now();
    for (size_t i = 0; i < GW_MAX_ASSIGN; i++) {
        const gw_assign *a = &g->assign[i];
        if (a->used && a->expires > now && strcmp(a->tenant, tenant) == 0 &&
            strcmp(a->tee, tee) == 0)
            return true;
    }
    return false;
}

/* ====================================================================== */
/* IAM authorization (every operation)                                     */
/* ====================================================================== */

static void op_continue(gw_ctx *c);

static void on_authorize(const luna_http_response *r, void *arg)
{
    gw_ctx *c = arg;
    if (c->g->closing || r->err != LUNA_OK) {
        ctx_fail_transport(c, c->g->closing ? LUNA_ERR_UNAVAILABLE : r->err);
        return;
    }
    json_t *j = r->status == 200 ? upstream_json(r) : NULL;
    json_t *allowed = json_object_get(j, "allowed");
    bool yes = json_is_true(allowed);
    bool well_formed = json_is_boolean(allowed);
    json_decref(j);
    if (!well_formed) {
        ctx_fail(c, 503, "upstream_unavailable", "IAM could not decide");
        return;
    }
    if (!yes) {
        ctx_fail(c, 403, "permission_denied", "the principal may not do this");
        return;
    }
    op_continue(c);
}

static void authorize(gw_ctx *c, const char *action, const char *resource)
{
    json_t *b = json_pack("{s:s,s:s,s:s}", "tenant_id", c->who.tenant, "principal_id",
                          c->who.principal, "action", action);
    if (b != NULL && resource != NULL)
        (void)json_object_set_new(b, "resource", json_string(resource));
    char *text = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (text == NULL) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    luna_err err = luna_http_client_request(c->g->iam, "POST", "/v1/iam/authorize", GW_ERR_JSON,
                                            text, strlen(text), luna_http_request_id(c->req),
                                            on_authorize, c);
    free(text);
    if (err != LUNA_OK)
        ctx_fail_transport(c, err);
}

/* ====================================================================== */
/* POST /v1/auth/token                                                     */
/* ====================================================================== */

static const luna_json_field token_fields[] = {
    {.name = "tenant_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = GW_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema token_schema = {token_fields, 1, NULL};

/* Wipes every string member of obj (NULL: nothing): relayed tokens. */
static void wipe_strings(json_t *obj)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        if (json_is_string(v))
            luna_wipe((void *)(uintptr_t)json_string_value(v), json_string_length(v));
    }
}

/*
 * IAM's per-service tokens, relayed to the client as they are (the
 * gateway cannot use them: each names another service's audience).
 * Only the known service names and token-shaped strings pass; absent is
 * an empty object.  NULL on anything else.
 */
static json_t *downstream_copy(const json_t *in)
{
    static const char *const names[] = {"kms", "attestation", "audit", "iam"};
    json_t *out = json_object();
    if (out == NULL || (in != NULL && !json_is_object(in)))
        goto bad;
    if (json_object_size(in) > sizeof(names) / sizeof(names[0]))
        goto bad;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const json_t *v = json_object_get(in, names[i]);
        if (v == NULL)
            continue;
        const char *t = json_string_value(v);
        gw_auth_kind kind;
        const char *cred;
        size_t n;
        char hdr[LUNA_JWS_MAX_TOKEN_LEN + 8];
        if (t == NULL || json_string_length(v) > LUNA_JWS_MAX_TOKEN_LEN)
            goto bad;
        /* The same shape gw_forward_authorization lets through later. */
        (void)snprintf(hdr, sizeof(hdr), "Bearer %s", t);
        bool ok = gw_parse_authorization(hdr, &kind, &cred, &n) == LUNA_OK &&
                  kind == GW_AUTH_BEARER && n == json_string_length(v);
        luna_wipe(hdr, sizeof(hdr));
        if (!ok || json_object_set_new(out, names[i], json_stringn(t, n)) != 0)
            goto bad;
    }
    if (json_object_size(out) != json_object_size(in))
        goto bad; /* a member this gateway does not know */
    return out;
bad:
    wipe_strings(out);
    json_decref(out);
    return NULL;
}

static void on_token(const luna_http_response *r, void *arg)
{
    gw_ctx *c = arg;
    if (c->g->closing || r->err != LUNA_OK) {
        ctx_fail_transport(c, c->g->closing ? LUNA_ERR_UNAVAILABLE : r->err);
        return;
    }
    if (r->status >= 400 && r->status < 500) {
        relay_refusal(c, r, "authentication refused");
        return;
    }
    json_t *j = r->status == 200 ? upstream_json(r) : NULL;
    const char *tok = jstr(j, "token");
    json_t *exp = json_object_get(j, "expires_at");
    if (tok == NULL || strlen(tok) > LUNA_JWS_MAX_TOKEN_LEN || !json_is_integer(exp)) {
        json_decref(j);
        ctx_fail(c, 502, "bad_gateway", "IAM answered something unexpected");
        return;
    }
    json_t *out = json_pack("{s:s,s:s,s:O}", "token", tok, "token_type", "Bearer", "expires_at",
                            exp);
    json_t *down = out != NULL ? downstream_copy(json_object_get(j, "downstream")) : NULL;
    if (out == NULL || down == NULL || json_object_set_new(out, "downstream", down) != 0) {
        json_decref(out);
        json_decref(j);
        ctx_fail(c, 502, "bad_gateway", "IAM answered something unexpected");
        return;
    }
    luna_http_reply_json(c->req, 200, out);
    wipe_strings(json_object_get(out, "downstream"));
    json_decref(out);
    wipe_strings(json_object_get(j, "downstream"));
    json_decref(j);
    ctx_free(c);
}

/* Appends s as a JSON string; s is printable ASCII (checked by the parser). */
static luna_err put_json_string(luna_wbuf *w, const char *s, size_t n)
{
    LUNA_GUARD(luna_write_u8(w, '"'));
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            LUNA_GUARD(luna_write_u8(w, '\\'));
        LUNA_GUARD(luna_write_u8(w, (uint8_t)s[i]));
    }
    return luna_write_u8(w, '"');
}

static void handle_token(luna_http_request *req, void *arg)
{
    gw_service *g = arg;
    json_t *body = NULL;
    if (!check_common(req) || !parse_body(req, &token_schema, &body))
        return;
    gw_auth_kind kind;
    const char *key;
    size_t key_len;
    if (gw_parse_authorization(luna_http_request_header(req, "Authorization"), &kind, &key,
                               &key_len) != LUNA_OK ||
        kind == GW_AUTH_BEARER) {
        json_decref(body);
        gw_reply_error(req, 401, "invalid_authorization",
                    "Authorization must be absent or \"ApiKey <key>\"", NULL);
        return;
    }
    const char *tenant = jstr(body, "tenant_id");
    if (!rate_ok(g, req, tenant, NULL)) {
        json_decref(body);
        return;
    }
    gw_ctx *c = ctx_new(g, req, GW_OP_TOKEN);
    if (c == NULL) {
        json_decref(body);
        return;
    }
    c->body = body;
    /* Built by hand so the API key never sits in a jansson string. */
    luna_wbuf w;
    luna_err err = luna_wbuf_init_alloc(&w, 64 + 2 * GW_ID_MAX + 2 * GW_APIKEY_MAX);
    if (err != LUNA_OK) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    static const char p1[] = "{\"tenant_id\":", p2[] = ",\"api_key\":";
    err = luna_write_bytes(&w, p1, sizeof(p1) - 1);
    if (err == LUNA_OK)
        err = put_json_string(&w, tenant, strlen(tenant));
    if (err == LUNA_OK && kind == GW_AUTH_APIKEY) {
        err = luna_write_bytes(&w, p2, sizeof(p2) - 1);
        if (err == LUNA_OK)
            err = put_json_string(&w, key, key_len);
    }
    if (err == LUNA_OK)
        err = luna_write_u8(&w, '}');
    if (err == LUNA_OK)
        err = luna_http_client_request(g->iam, "POST", "/v1/iam/authenticate", GW_ERR_JSON, w.data,
                                       w.len, luna_http_request_id(req), on_token, c);
    luna_wbuf_free(&w); /* wipes the copy of the key */
    if (err != LUNA_OK)
        ctx_fail_transport(c, err);
}

/* ====================================================================== */
/* POST /v1/tees/select                                                    */
/* ====================================================================== */

static const luna_json_field select_fields[] = {
    {.name = "job", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = GW_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "deployment_id", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = GW_ID_MAX,
     .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema select_schema = {select_fields, 2, NULL};

static void select_next(gw_ctx *c);

static void on_select_audit(luna_err err, uint64_t index, void *arg)
{
    (void)index;
    gw_ctx *c = arg;
    if (err != LUNA_OK || c->g->closing) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "audit append failed; selection refused",
                  LUNA_LOG_ERR("err", err));
        reply_retry(c->req, 503, "audit_unavailable", "the audit log did not record the choice", 1);
        ctx_free(c);
        return;
    }
    gw_tee *t = &c->g->tees[c->tee];
    t->last_used = mono_now();
    assign_add(c->g, c->who.tenant, t->conf.id);
    luna_http_reply_json(c->req, 200, c->answer);
    ctx_free(c);
}

static bool b64u_key_ok(const char *s)
{
    uint8_t k[LUNA_X25519_LEN];
    size_t n = 0;
    if (s == NULL || luna_b64url_decode(s, strlen(s), k, sizeof(k), &n) != LUNA_OK)
        return false;
    return n == LUNA_X25519_LEN;
}

/* The attestation service's current report for the candidate. */
static void on_report(const luna_http_response *r, void *arg)
{
    gw_ctx *c = arg;
    if (c->g->closing || r->err != LUNA_OK) {
        ctx_fail_transport(c, c->g->closing ? LUNA_ERR_UNAVAILABLE : r->err);
        return;
    }
    gw_tee *t = &c->g->tees[c->tee];
    json_t *j = r->status == 200 ? upstream_json(r) : NULL;
    const char *report = jstr(j, "report"), *evidence = jstr(j, "evidence");
    const char *etype = jstr(j, "evidence_type"), *manifest = jstr(j, "manifest");
    if (manifest == NULL)
        manifest = t->manifest; /* the attestation service does not hold manifests */
    const char *kx = jstr(j, "tee_kx_pk"), *sign = jstr(j, "tee_sign_pk");
    const char *tee_id = jstr(j, "tee_id"), *dep = jstr(j, "deployment_id");
    json_t *iat = json_object_get(j, "issued_at"), *exp = json_object_get(j, "expires_at");
    int64_t now = wall_now();
    const char *why = NULL;
    if (j == NULL || report == NULL || evidence == NULL || etype == NULL || manifest == NULL ||
        !gw_ident_ok(etype, 16) || !b64u_key_ok(kx) || !b64u_key_ok(sign) ||
        !json_is_integer(iat) || !json_is_integer(exp) || tee_id == NULL ||
        strcmp(tee_id, t->conf.id) != 0)
        why = "no_report";
    else if (json_integer_value(exp) <= now ||
             now - json_integer_value(iat) > (json_int_t)c->g->set.report_max_age_sec ||
             json_integer_value(iat) > now + (json_int_t)c->g->set.clock_skew_sec)
        why = "stale_report";
    else if (dep != NULL && c->deployment[0] != '\0' && strcmp(dep, c->deployment) != 0)
        why = "deployment_mismatch";
    if (why != NULL) {
        LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "TEE not selectable", LUNA_LOG_STR("tee", t->conf.id),
                  LUNA_LOG_STR("reason", why));
        json_decref(j);
        select_next(c);
        return;
    }
    c->answer = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "tee_id", t->conf.id, "report", report,
                          "evidence", evidence, "evidence_type", etype, "manifest", manifest,
                          "tee_kx_pk", kx, "tee_sign_pk", sign);
    if (c->answer != NULL && c->deployment[0] != '\0')
        (void)json_object_set_new(c->answer, "deployment_id", json_string(c->deployment));
    json_decref(j);
    if (c->answer == NULL) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    luna_audit_entry e;
    audit_fill(&e, c, "tee.select", t->conf.id, LUNA_AUDIT_SUCCESS, NULL);
    if (luna_audit_client_append(c->g->audit, &e, on_select_audit, c) != LUNA_OK)
        ctx_fail(c, 503, "audit_unavailable", "the audit log did not record the choice");
}

static bool tenants_contain(const json_t *arr, const char *tenant)
{
    if (!json_is_array(arr))
        return false;
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s != NULL && strcmp(s, tenant) == 0)
            return true;
    }
    return false;
}

/* The KMS registry's entry for the candidate: active, this tenant's, this deployment. */
static void on_registry(const luna_http_response *r, void *arg)
{
    gw_ctx *c = arg;
    if (c->g->closing || r->err != LUNA_OK) {
        ctx_fail_transport(c, c->g->closing ? LUNA_ERR_UNAVAILABLE : r->err);
        return;
    }
    gw_tee *t = &c->g->tees[c->tee];
    json_t *j = r->status == 200 ? upstream_json(r) : NULL;
    const char *status = jstr(j, "status"), *dep = jstr(j, "deployment_id");
    const char *why = NULL;
    if (j == NULL || status == NULL)
        why = "not_registered";
    else if (strcmp(status, "active") != 0)
        why = "not_active";
    else if (!tenants_contain(json_object_get(j, "tenants"), c->who.tenant))
        why = "not_authorized_for_tenant";
    else if (dep == NULL || !gw_ident_ok(dep, GW_ID_MAX))
        why = "no_deployment";
    else if (c->deployment[0] != '\0' && strcmp(dep, c->deployment) != 0)
        why = "deployment_mismatch";
    if (why != NULL) {
        LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "TEE not selectable", LUNA_LOG_STR("tee", t->conf.id),
                  LUNA_LOG_STR("reason", why));
        json_decref(j);
        select_next(c);
        return;
    }
    if (c->deployment[0] == '\0')
        memcpy(c->deployment, dep, strlen(dep) + 1);
    json_decref(j);
    char path[64 + GW_ID_MAX];
    (void)snprintf(path, sizeof(path), "/v1/attestation/tees/%s/report", t->conf.id);
    luna_err err = luna_http_client_request(c->g->att, "GET", path, NULL, NULL, 0,
                                            luna_http_request_id(c->req), on_report, c);
    if (err != LUNA_OK)
        ctx_fail_transport(c, err);
}

static void select_next(gw_ctx *c)
{
    const char *want = jstr(c->body, "deployment_id");
    while (c->pos < c->n_order) {
        size_t i = c->order[c->pos++];
        if (!c->g->tees[i].healthy)
            continue;
        c->tee = i;
        /* Each candidate is judged on its own; the request's deployment stays. */
        if (want != NULL)
            memcpy(c->deployment, want, strlen(want) + 1);
        else
            c->deployment[0] = '\0';
        char path[32 + GW_ID_MAX];
        (void)snprintf(path, sizeof(path), "/v1/kms/tees/%s", c->g->tees[i].conf.id);
        /* The client's KMS token: the KMS shows it only TEEs serving its tenant. */
        const luna_http_header auth = {"Authorization", flow_downstream(c, LUNA_AUD_KMS)};
        if (auth.value == NULL)
            return;
        luna_err err = luna_http_client_request_with(c->g->kms, "GET", path, NULL, NULL, 0,
                                                     luna_http_request_id(c->req), &auth, 1,
                                                     on_registry, c);
        if (err != LUNA_OK)
            ctx_fail_transport(c, err);
        return;
    }
    reply_retry(c->req, 503, "no_tee_available",
                "no healthy, attested TEE is authorized for this tenant and job",
                c->g->set.retry_after_sec);
    ctx_free(c);
}

/* Least recently chosen first: spreads tenants over the TEEs. */
static void select_start(gw_ctx *c)
{
    gw_service *g = c->g;
    c->n_order = 0;
    for (size_t i = 0; i < g->n_tees; i++) {
        size_t k = c->n_order++;
        while (k > 0 && g->tees[c->order[k - 1]].last_used > g->tees[i].last_used) {
            c->order[k] = c->order[k - 1];
            k--;
        }
        c->order[k] = i;
    }
    c->pos = 0;
    select_next(c);
}

/* ====================================================================== */
/* POST /v1/otk                                                            */
/* ====================================================================== */

static const luna_json_field otk_fields[] = {
    {.name = "tee_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = GW_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "job", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = GW_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "request_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = GW_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "client_pk", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = LUNA_X25519_LEN, .max_len = LUNA_X25519_LEN},
};
static const luna_json_schema otk_schema = {otk_fields, 4, NULL};

static void on_otk(const luna_http_response *r, void *arg)
{
    gw_ctx *c = arg;
    if (c->g->closing || r->err != LUNA_OK) {
        ctx_fail_transport(c, c->g->closing ? LUNA_ERR_UNAVAILABLE : r->err);
        return;
    }
    if (r->status >= 400 && r->status < 500) {
        relay_refusal(c, r, "the KMS refused the one-time key");
        return;
    }
    json_t *j = (r->status == 200 || r->status == 201) ? upstream_json(r) : NULL;
    const char *id = jstr(j, "otk_id"), *sealed = jstr(j, "sealed_otk");
    json_t *exp = json_object_get(j, "expires_at");
    if (!gw_ident_ok(id, GW_ID_MAX) || sealed == NULL || strlen(sealed) > 1024 ||
        !json_is_integer(exp)) {
        json_decref(j);
        ctx_fail(c, 502, "bad_gateway", "the KMS answered something unexpected");
        return;
    }
    /* Sealed to the client's key: relayed, never readable here. */
    json_t *out = json_pack("{s:s,s:s,s:O}", "otk_id", id, "sealed_otk", sealed, "expires_at", exp);
    json_decref(j);
    if (out == NULL) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    luna_http_reply_json(c->req, 200, out);
    json_decref(out);
    ctx_free(c);
}

static void otk_send(gw_ctx *c)
{
    const char *tee = jstr(c->body, "tee_id");
    gw_tee *t = tee_find(c->g, tee, NULL);
    if (t == NULL || !assign_has(c->g, c->who.tenant, tee)) {
        ctx_fail(c, 403, "tee_not_assigned", "select this TEE first (POST /v1/tees/select)");
        return;
    }
    if (!t->healthy) {
        reply_retry(c->req, 503, "tee_unavailable", "the TEE is unavailable; select another",
                    c->g->set.retry_after_sec);
        ctx_free(c);
        return;
    }
    /* Tenant and principal travel only inside the client's token, which the
       KMS verifies itself (docs/openapi-kms.yaml); the gateway adds nothing. */
    json_t *b = json_pack("{s:s,s:s,s:s,s:s}", "tee_id", tee, "job", jstr(c->body, "job"),
                          "request_id", jstr(c->body, "request_id"), "client_pk",
                          jstr(c->body, "client_pk"));
    char *text = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (text == NULL) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    const luna_http_header auth = {"Authorization", flow_downstream(c, LUNA_AUD_KMS)};
    if (auth.value == NULL) {
        free(text);
        return;
    }
    luna_err err = luna_http_client_request_with(c->g->kms, "POST", "/v1/kms/otk", GW_ERR_JSON,
                                                 text, strlen(text), luna_http_request_id(c->req),
                                                 &auth, 1, on_otk, c);
    free(text);
    if (err != LUNA_OK)
        ctx_fail_transport(c, err);
}

/* ====================================================================== */
/* POST /v1/jobs/run                                                       */
/* ====================================================================== */

static void on_run(const luna_http_response *r, void *arg)
{
    gw_ctx *c = arg;
    gw_service *g = c->g;
    gw_tee *t = &g->tees[c->tee];
    bool died = g->closing || r->err != LUNA_OK || r->status == 502 || r->status == 503 ||
                r->status == 504;
    if (died) {
        if (!g->closing) {
            tee_mark(t, false, r->err != LUNA_OK ? luna_errname(r->err) : "tee_5xx");
            audit_after(c, "job.run", t->conf.id, LUNA_AUDIT_FAILURE, "tee unavailable");
        }
        reply_retry(c->req, 503, "tee_unavailable",
                    "the TEE failed during the request; retry the flow on another TEE",
                    g->set.retry_after_sec);
        ctx_free(c);
        return;
    }
    if (r->status != 200) {
        audit_after(c, "job.run", t->conf.id, LUNA_AUDIT_DENIED, "tee refused the envelope");
        relay_refusal(c, r, "the TEE refused the envelope");
        return;
    }
    luna_envelope_header h;
    if (luna_envelope_parse_header(r->body, r->body_len, &h) != LUNA_OK ||
        h.type != LUNA_ENVELOPE_TYPE_RESULT || strcmp(h.tenant, c->hdr.tenant) != 0 ||
        strcmp(h.job, c->hdr.job) != 0 || strcmp(h.tee_id, c->hdr.tee_id) != 0 ||
        strcmp(h.request_id, c->hdr.request_id) != 0) {
        audit_after(c, "job.run", t->conf.id, LUNA_AUDIT_FAILURE, "malformed result");
        ctx_fail(c, 502, "bad_result", "the TEE answered something that is not this result");
        return;
    }
    if (c->idem_active) {
        gw_idem_finish(&g->idem, c->idem_name, 200, r->body, r->body_len, mono_now());
        c->idem_active = false;
    }
    audit_after(c, "job.run", t->conf.id, LUNA_AUDIT_SUCCESS, NULL);
    luna_http_reply(c->req, 200, GW_OCTETS, r->body, r->body_len);
    ctx_free(c);
}

/* The submission is durable in the audit log: now the TEE may see it. */
static void on_run_audit(luna_err err, uint64_t index, void *arg)
{
    (void)index;
    gw_ctx *c = arg;
    if (err != LUNA_OK || c->g->closing) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "audit append failed; job not sent",
                  LUNA_LOG_ERR("err", err));
        reply_retry(c->req, 503, "audit_unavailable", "the audit log did not record the job", 1);
        ctx_free(c);
        return;
    }
    gw_tee *t = &c->g->tees[c->tee];
    const luna_http_header otk = {"X-Lunal-Otk-Id", c->otk_id};
    luna_err e2 = luna_http_client_request_with(t->client, "POST", "/v1/tee/run", GW_OCTETS,
                                                c->env, c->env_len, luna_http_request_id(c->req),
                                                &otk, 1, on_run, c);
    if (e2 != LUNA_OK) {
        tee_mark(t, false, luna_errname(e2));
        reply_retry(c->req, 503, "tee_unavailable", "the TEE is unavailable; select another",
                    c->g->set.retry_after_sec);
        ctx_free(c);
    }
}

static void run_send(gw_ctx *c)
{
    gw_service *g = c->g;
    size_t idx = 0;
    gw_tee *t = tee_find(g, c->hdr.tee_id, &idx);
    if (t == NULL || !assign_has(g, c->who.tenant, c->hdr.tee_id)) {
        ctx_fail(c, 403, "tee_not_assigned", "select this TEE first (POST /v1/tees/select)");
        return;
    }
    c->tee = idx;
    if (!t->healthy) {
        reply_retry(c->req, 503, "tee_unavailable", "the TEE is unavailable; select another",
                    g->set.retry_after_sec);
        ctx_free(c);
        return;
    }
    char key[GW_IDEM_KEY_MAX + 1];
    luna_err err = gw_parse_idempotency_key(luna_http_request_header(c->req, "Idempotency-Key"),
                                            key);
    if (err == LUNA_OK) {
        uint8_t h[LUNA_SHA256_LEN];
        if (luna_sha256(c->env, c->env_len, h) != LUNA_OK) {
            ctx_fail(c, 500, "internal_error", "internal error");
            return;
        }
        (void)snprintf(c->idem_name, sizeof(c->idem_name), "%s/%s", c->who.tenant, key);
        const gw_idem_entry *prev = NULL;
        switch (gw_idem_begin(&g->idem, c->idem_name, h, mono_now(), &prev)) {
        case GW_IDEM_NEW:
            c->idem_active = true;
            break;
        case GW_IDEM_REPLAY:
            if (luna_http_response_header(c->req, "Idempotency-Replayed", "true") != LUNA_OK) {
                /* the body is the same either way */
            }
            luna_http_reply(c->req, prev->status, GW_OCTETS, prev->resp, prev->resp_len);
            ctx_free(c);
            return;
        case GW_IDEM_CONFLICT:
            ctx_fail(c, 409, "idempotency_conflict",
                     "this Idempotency-Key was used with a different body");
            return;
        case GW_IDEM_IN_PROGRESS:
            reply_retry(c->req, 409, "idempotency_in_progress",
                        "a request with this Idempotency-Key is still running", 1);
            ctx_free(c);
            return;
        case GW_IDEM_FULL:
        default:
            reply_retry(c->req, 503, "busy", "too many requests in flight", 1);
            ctx_free(c);
            return;
        }
    }
    luna_audit_entry e;
    audit_fill(&e, c, "job.submit", t->conf.id, LUNA_AUDIT_SUCCESS, NULL);
    if (luna_audit_client_append(g->audit, &e, on_run_audit, c) != LUNA_OK)
        ctx_fail(c, 503, "audit_unavailable", "the audit log did not record the job");
}

static void handle_run(luna_http_request *req, void *arg)
{
    gw_service *g = arg;
    if (!check_common(req))
        return;
    const uint8_t *env;
    size_t len;
    if (luna_http_request_body(req, &env, &len) != LUNA_OK) {
        gw_reply_error(req, 413, "too_large", "request body too large", NULL);
        return;
    }
    if (len == 0) {
        gw_reply_error(req, 400, "invalid_envelope", "the body must be a request envelope", NULL);
        return;
    }
    const char *otk = luna_http_request_header(req, GW_OTK_HEADER);
    if (!gw_ident_ok(otk, GW_ID_MAX)) {
        gw_reply_error(req, 400, "invalid_otk_id",
                    "X-Lunal-Otk-Id must be 1..64 characters of [A-Za-z0-9._-]", NULL);
        return;
    }
    char key[GW_IDEM_KEY_MAX + 1];
    if (gw_parse_idempotency_key(luna_http_request_header(req, "Idempotency-Key"), key) ==
        LUNA_ERR_FORMAT) {
        gw_reply_error(req, 400, "invalid_idempotency_key",
                    "Idempotency-Key must be 1..64 characters of [A-Za-z0-9._:-]", NULL);
        return;
    }
    luna_envelope_header hdr;
    luna_err err = luna_envelope_parse_header(env, len, &hdr);
    if (err == LUNA_ERR_TOO_LARGE) {
        gw_reply_error(req, 413, "too_large", "envelope too large", NULL);
        return;
    }
    if (err != LUNA_OK || hdr.type != LUNA_ENVELOPE_TYPE_REQUEST) {
        gw_reply_error(req, 400, "invalid_envelope", "the body is not a request envelope", NULL);
        return;
    }
    gw_ctx *c = ctx_new(g, req, GW_OP_RUN);
    if (c == NULL)
        return;
    if (!authenticate(g, req, &c->who)) {
        free(c);
        return;
    }
    if (strcmp(hdr.tenant, c->who.tenant) != 0) {
        ctx_fail(c, 403, "tenant_mismatch", "the envelope names another tenant than the token");
        return;
    }
    if (!rate_ok(g, req, c->who.tenant, &c->who)) {
        free(c);
        return;
    }
    c->env = env;
    c->env_len = len;
    c->hdr = hdr;
    memcpy(c->otk_id, otk, strlen(otk) + 1);
    authorize(c, "jobs.run", hdr.job);
}

/* ====================================================================== */
/* POST /v1/attestation/verify                                             */
/* ====================================================================== */

static const luna_json_field verify_fields[] = {
    {.name = "deployment_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = GW_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    /* `lunal attestation verify --tee ID`: one TEE of the deployment. */
    {.name = "tee_id", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = GW_ID_MAX,
     .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema verify_schema = {verify_fields, 2, NULL};

static void on_verify(const luna_http_response *r, void *arg)
{
    gw_ctx *c = arg;
    if (c->g->closing || r->err != LUNA_OK) {
        ctx_fail_transport(c, c->g->closing ? LUNA_ERR_UNAVAILABLE : r->err);
        return;
    }
    if (r->status >= 400 && r->status < 500) {
        relay_refusal(c, r, "the attestation service refused the request");
        return;
    }
    json_t *j = r->status == 200 ? upstream_json(r) : NULL;
    if (j == NULL) {
        ctx_fail(c, 502, "bad_gateway", "the attestation service answered something unexpected");
        return;
    }
    luna_http_reply_json(c->req, 200, j);
    json_decref(j);
    ctx_free(c);
}

static void verify_send(gw_ctx *c)
{
    json_t *b = json_pack("{s:s}", "deployment_id", jstr(c->body, "deployment_id"));
    if (b != NULL && jstr(c->body, "tee_id") != NULL)
        (void)json_object_set_new(b, "tee_id", json_string(jstr(c->body, "tee_id")));
    char *text = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (text == NULL) {
        ctx_fail(c, 500, "internal_error", "internal error");
        return;
    }
    const luna_http_header auth = {"Authorization", flow_downstream(c, LUNA_AUD_ATTESTATION)};
    if (auth.value == NULL) {
        free(text);
        return;
    }
    luna_err err = luna_http_client_request_with(c->g->att, "POST", "/v1/attestation/verify",
                                                 GW_ERR_JSON, text, strlen(text),
                                                 luna_http_request_id(c->req), &auth, 1,
                                                 on_verify, c);
    free(text);
    if (err != LUNA_OK)
        ctx_fail_transport(c, err);
}

/* ====================================================================== */
/* JSON routes: validate, authenticate, rate-limit, authorize              */
/* ====================================================================== */

static void op_continue(gw_ctx *c)
{
    switch (c->op) {
    case GW_OP_SELECT:
        select_start(c);
        break;
    case GW_OP_OTK:
        otk_send(c);
        break;
    case GW_OP_RUN:
        run_send(c);
        break;
    case GW_OP_VERIFY:
        verify_send(c);
        break;
    case GW_OP_TOKEN:
    default:
        ctx_fail(c, 500, "internal_error", "internal error");
        break;
    }
}

static void json_route(luna_http_request *req, gw_service *g, gw_op op,
                       const luna_json_schema *schema)
{
    json_t *body = NULL;
    if (!check_common(req) || !parse_body(req, schema, &body))
        return;
    gw_ctx *c = ctx_new(g, req, op);
    if (c == NULL) {
        json_decref(body);
        return;
    }
    c->body = body;
    if (!authenticate(g, req, &c->who) || !rate_ok(g, req, c->who.tenant, &c->who)) {
        json_decref(c->body);
        free(c);
        return;
    }
    if (op == GW_OP_VERIFY)
        authorize(c, "attestation.verify", jstr(body, "deployment_id"));
    else
        authorize(c, "jobs.run", jstr(body, "job"));
}

static void handle_select(luna_http_request *req, void *arg)
{
    json_route(req, arg, GW_OP_SELECT, &select_schema);
}

static void handle_otk(luna_http_request *req, void *arg)
{
    json_route(req, arg, GW_OP_OTK, &otk_schema);
}

static void handle_verify(luna_http_request *req, void *arg)
{
    json_route(req, arg, GW_OP_VERIFY, &verify_schema);
}

static void handle_health(luna_http_request *req, void *arg)
{
    gw_service *g = arg;
    if (!check_common(req))
        return;
    size_t healthy = 0;
    for (size_t i = 0; i < g->n_tees; i++)
        healthy += g->tees[i].healthy ? 1u : 0u;
    json_t *b = json_pack("{s:s,s:b,s:I}", "status", gw_service_ready(g) ? "ok" : "starting",
                          "ready", gw_service_ready(g), "healthy_tees", (json_int_t)healthy);
    if (b == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 200, b);
    json_decref(b);
}

luna_err gw_service_routes(gw_service *g, luna_http_server *srv)
{
    if (g == NULL || srv == NULL)
        return LUNA_ERR_INVALID_ARG;
    const luna_http_route routes[] = {
        {LUNA_HTTP_POST, "/v1/auth/token", NULL, 0, GW_ERR_JSON, handle_token, g},
        {LUNA_HTTP_POST, "/v1/tees/select", NULL, 0, GW_ERR_JSON, handle_select, g},
        {LUNA_HTTP_POST, "/v1/otk", NULL, 0, GW_ERR_JSON, handle_otk, g},
        {LUNA_HTTP_POST, "/v1/jobs/run", NULL, 0, GW_OCTETS, handle_run, g},
        {LUNA_HTTP_POST, "/v1/attestation/verify", NULL, 0, GW_ERR_JSON, handle_verify, g},
        {LUNA_HTTP_GET, "/v1/health", NULL, 0, NULL, handle_health, g},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        LUNA_GUARD(luna_http_server_add_route(srv, &routes[i]));
    return gw_relay_routes(g->relay, srv);
}

bool gw_service_admit(gw_service *g, luna_http_request *req, gw_caller *who)
{
    return authenticate(g, req, who) && rate_ok(g, req, who->tenant, who);
}

/* ====================================================================== */
/* background: IAM key set, TEE probes                                     */
/* ====================================================================== */

static void on_jwks(const luna_http_response *r, void *arg)
{
    gw_service *g = arg;
    g->jwks_pending = false;
    if (g->closing)
        return;
    luna_jws_keyset *ks = NULL;
    luna_err err = r->err;
    if (err == LUNA_OK)
        err = r->status == 200 ? luna_jws_keyset_load((const char *)r->body, r->body_len, &ks)
                               : LUNA_ERR_UNAVAILABLE;
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "IAM key set refresh failed; keeping the old one",
                  LUNA_LOG_ERR("err", err), LUNA_LOG_INT("status", r->status));
        return;
    }
    if (g->keys == NULL)
        LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "IAM key set loaded",
                  LUNA_LOG_UINT("keys", luna_jws_keyset_count(ks)));
    luna_jws_keyset_free(g->keys);
    g->keys = ks;
}

static void fetch_jwks(gw_service *g)
{
    if (g->jwks_pending || g->closing)
        return;
    if (luna_http_client_request(g->iam, "GET", "/v1/iam/jwks", NULL, NULL, 0, NULL, on_jwks, g) ==
        LUNA_OK)
        g->jwks_pending = true;
}

static void request_jwks(gw_service *g)
{
    double now = mono_now();
    if (now - g->jwks_forced < GW_JWKS_MIN_GAP_SEC)
        return;
    g->jwks_forced = now;
    fetch_jwks(g);
}

typedef struct gw_probe {
    gw_service *g;
    size_t idx;
} gw_probe;

static void on_probe(const luna_http_response *r, void *arg)
{
    gw_probe *p = arg;
    gw_service *g = p->g;
    gw_tee *t = &g->tees[p->idx];
    free(p);
    t->probing = false;
    if (g->probes_left > 0 && --g->probes_left == 0)
        g->probed_once = true;
    if (g->closing)
        return;
    bool ok = r->err == LUNA_OK && r->status == 200;
    if (ok) {
        json_t *j = upstream_json(r);
        const char *m = jstr(j, "manifest");
        if (m != NULL && strlen(m) <= GW_MANIFEST_MAX &&
            (t->manifest == NULL || strcmp(t->manifest, m) != 0)) {
            char *copy = strdup(m);
            if (copy != NULL) {
                free(t->manifest);
                t->manifest = copy;
            }
        }
        json_decref(j);
    }
    tee_mark(t, ok, ok ? "probe_ok" : r->err != LUNA_OK ? luna_errname(r->err) : "probe_status");
}

static void probe_all(gw_service *g)
{
    for (size_t i = 0; i < g->n_tees; i++) {
        gw_tee *t = &g->tees[i];
        if (t->probing)
            continue;
        gw_probe *p = malloc(sizeof(*p));
        if (p == NULL)
            return;
        p->g = g;
        p->idx = i;
        if (luna_http_client_request(t->client, "GET", "/v1/tee/info", NULL, NULL, 0, NULL,
                                     on_probe, p) != LUNA_OK) {
            free(p);
            tee_mark(t, false, "probe_send");
            continue;
        }
        t->probing = true;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_service *g = arg;
    double now = mono_now();
    if (now >= g->jwks_next) {
        g->jwks_next = now + g->set.jwks_refresh_sec;
        fetch_jwks(g);
    }
    if (now >= g->probe_next) {
        g->probe_next = now + g->set.health_interval_sec;
        probe_all(g);
    }
}

/* ====================================================================== */
/* lifecycle                                                               */
/* ====================================================================== */

bool gw_service_ready(void *arg)
{
    const gw_service *g = arg;
    return g != NULL && !g->closing && g->keys != NULL && g->probed_once;
}

static luna_err make_client(gw_service *g, const gw_endpoint *ep, const char *identity,
                            unsigned timeout, luna_http_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->tls = g->set.tls;
    o->host = ep->host;
    o->port = ep->port;
    o->expected_identity = identity;
    o->timeout_sec = timeout;
    o->max_response = g->set.max_response_bytes;
    return (ep->host[0] == '\0' || ep->port == 0) ? LUNA_ERR_CONFIG : LUNA_OK;
}

luna_err gw_service_new(struct event_base *base, const gw_settings *set, gw_service **out)
{
    luna_err err;
    if (out == NULL)
        return LUNA_ERR_INVALID_ARG;
    *out = NULL;
    if (base == NULL || set == NULL || set->n_tees > GW_MAX_TEES)
        return LUNA_ERR_INVALID_ARG;
    gw_service *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return LUNA_ERR_NOMEM;
    g->base = base;
    g->set = *set;
    luna_http_client_opts o;
    LUNA_TRY(make_client(g, &set->iam, "lunal://svc/iam", set->upstream_timeout_sec, &o), fail);
    LUNA_TRY(luna_http_client_new(base, &o, &g->iam), fail);
    LUNA_TRY(make_client(g, &set->kms, "lunal://svc/kms", set->upstream_timeout_sec, &o), fail);
    LUNA_TRY(luna_http_client_new(base, &o, &g->kms), fail);
    LUNA_TRY(make_client(g, &set->attestation, "lunal://svc/attestation",
                         set->upstream_timeout_sec, &o),
             fail);
    LUNA_TRY(luna_http_client_new(base, &o, &g->att), fail);
    LUNA_TRY(make_client(g, &set->audit, "lunal://svc/audit", set->upstream_timeout_sec, &o),
             fail);
    LUNA_TRY(luna_audit_client_new(base, &o, &g->audit), fail);
    for (size_t i = 0; i < set->n_tees; i++) {
        gw_tee *t = &g->tees[i];
        t->conf = set->tees[i];
        g->n_tees = i + 1; /* so tee_find sees this one: a duplicate id finds the first */
        LUNA_TRY_ENSURE(gw_ident_ok(t->conf.id, GW_ID_MAX) && tee_find(g, t->conf.id, NULL) == t,
                        LUNA_ERR_CONFIG, fail);
        static const char stem[] = "lunal://tee/";
        size_t id_len = strlen(t->conf.id);
        LUNA_TRY_ENSURE(sizeof(stem) + id_len <= sizeof(t->identity), LUNA_ERR_CONFIG, fail);
        memcpy(t->identity, stem, sizeof(stem) - 1);
        memcpy(t->identity + sizeof(stem) - 1, t->conf.id, id_len + 1);
        LUNA_TRY(make_client(g, &t->conf.ep, t->identity, set->tee_timeout_sec, &o), fail);
        LUNA_TRY(luna_http_client_new(base, &o, &t->client), fail);
    }
    g->n_tees = set->n_tees;
    g->probes_left = g->n_tees;
    g->probed_once = g->n_tees == 0;
    LUNA_TRY(gw_rl_init(&g->rl_auth, 4096, set->auth_rate, set->auth_burst), fail);
    LUNA_TRY(gw_rl_init(&g->rl_tenant, 4096, set->tenant_rate, set->tenant_burst), fail);
    LUNA_TRY(gw_rl_init(&g->rl_key, 8192, set->key_rate, set->key_burst), fail);
    LUNA_TRY(gw_idem_init(&g->idem, set->idem_entries, set->idem_ttl_sec, set->max_response_bytes),
             fail);
    g->assign = calloc(GW_MAX_ASSIGN, sizeof(*g->assign));
    LUNA_TRY_ENSURE(g->assign != NULL, LUNA_ERR_NOMEM, fail);
    g->tick = event_new(base, -1, EV_PERSIST, on_tick, g);
    LUNA_TRY_ENSURE(g->tick != NULL, LUNA_ERR_NOMEM, fail);
    struct timeval every = {0, 250 * 1000};
    LUNA_TRY_ENSURE(event_add(g->tick, &every) == 0, LUNA_ERR_INTERNAL, fail);
    LUNA_TRY(gw_relay_new(base, &g->set, g, &g->relay), fail);
    g->jwks_forced = -GW_JWKS_MIN_GAP_SEC;
    on_tick(-1, 0, g); /* first key fetch and probes now */
    *out = g;
    return LUNA_OK;
fail:
    gw_service_free(g);
    return err;
}

void gw_service_free(gw_service *g)
{
    if (g == NULL)
        return;
    g->closing = true;
    if (g->tick != NULL)
        event_free(g->tick);
    gw_relay_free(g->relay); /* answers its pending relays 503 */
    g->relay = NULL;
    /* Each free answers its pending calls (UNAVAILABLE): contexts reply 503. */
    luna_audit_client_free(g->audit);
    g->audit = NULL;
    luna_http_client_free(g->iam);
    luna_http_client_free(g->kms);
    luna_http_client_free(g->att);
    for (size_t i = 0; i < GW_MAX_TEES; i++) {
        luna_http_client_free(g->tees[i].client);
        free(g->tees[i].manifest);
    }
    luna_jws_keyset_free(g->keys);
    gw_rl_free(&g->rl_auth);
    gw_rl_free(&g->rl_tenant);
    gw_rl_free(&g->rl_key);
    gw_idem_free(&g->idem);
    free(g->assign);
    free(g);
}
