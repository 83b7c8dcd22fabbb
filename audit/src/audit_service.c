/*
 * audit_service.c - luna-audit, the tamper-evident audit log service
 * (docs/audit.md, docs/openapi-audit.yaml).
 *
 *   luna-audit --config FILE            run the service
 *   luna-audit keygen --name ORIGIN --out FILE
 *                                        new Ed25519 checkpoint key (0600),
 *                                        prints its vkey on stdout
 *
 * Owns: the HTTP surface of the log, group commit (every append request
 * waits for the transaction that makes it durable), checkpoint signing,
 * and the auditor's view (tenant from the verified IAM token).
 * Must never: acknowledge an entry before its commit returned, let a
 * writer choose the component or time of its entry, let a tenant's token
 * read another tenant's entries, or log an Authorization header.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_log.h"
#include "audit_util.h"
#include "audit_webhook.h"
#include "luna/audience.h"
#include "luna/audit_entry.h"
#include "luna/bytes.h"
#include "luna/config.h"
#include "luna/http.h"
#include "luna/jws.h"
#include "luna/log.h"
#include "luna/note.h"
#include "luna/secret.h"

#define COMPONENT "audit"
#define DEFAULT_BATCH_MAX 1024
#define DEFAULT_PAGE 100
#define MAX_PATTERNS 32
/*
 * IAM's roles (iam/src/iam_rbac.c, docs/iam.md).  Only "auditor" holds
 * audit.read, and only inside its own tenant.  "platform-admin" holds
 * platform.admin alone ("no rights inside another tenant"), so it widens
 * the scope of an auditor to every tenant but reads nothing by itself:
 * all-tenant queries and the export need both roles in one token.  No
 * other role, and no unknown role, grants anything here.
 */
#define ROLE_AUDITOR "auditor"
#define ROLE_PLATFORM_ADMIN "platform-admin"
#define IAM_IDENTITY "lunal://svc/iam"
#define IAM_JWKS_PATH "/v1/iam/jwks"
#define JWKS_MAX LUNA_JWS_MAX_JWKS_LEN
#define JWKS_REFRESH_DEFAULT_SEC 60
#define JWKS_REFRESH_MIN_SEC 5
#define JWKS_REFRESH_MAX_SEC 3600
#define JWKS_FORCED_GAP_SEC 5.0 /* unknown-kid refreshes from IAM at most this often */
#define JWKS_FETCH_TIMEOUT_SEC 10u
#define IAM_HOST_MAX 255
#define WITNESS_IDENTITY_DEFAULT "lunal://svc/witness"
#define WITNESS_PATH "/v1/witness/add-checkpoint"
#define PUSH_MAX_ATTEMPTS 8     /* per checkpoint, then wait for the next append */
#define PUSH_BACKOFF_MAX_SEC 30
#define PUSH_TIMEOUT_SEC 10u

typedef struct service {
    struct event_base *base;
    luna_http_server *srv;
    audit_log *log;
    luna_note_signer *signer;
    char origin[LUNA_NOTE_MAX_NAME_LEN + 1];
    /* IAM's key set: NULL until the first successful load.  Replaced
     * whole on refresh, from the file (jwks_path) or from IAM (iam). */
    luna_jws_keyset *jwks;
    const char *jwks_path;
    audit_file_id jwks_id;
    luna_http_client *iam;
    bool jwks_pending;
    double jwks_forced;
    struct event *jwks_tick;
    bool closing;
    const char *issuer;   /* required: IAM's iss */
    const char *audience; /* required: the aud IAM puts in its tokens */
    /* group commit: requests waiting for the next transaction */
    size_t batch_max;
    size_t n_pending;
    luna_http_request **pending_req;
    luna_audit_entry *pending;
    struct event *flush_ev;
    /* the last signed checkpoint, re-signed only when the tree moved */
    uint64_t cp_size;
    bool cp_valid;
    uint8_t cp[LUNA_NOTE_MAX_LEN];
    size_t cp_len;
    /* The witness this log pushes its checkpoints to (audit.witness):
     * one submission in flight, later ones coalesced, bounded retries. */
    luna_http_client *wit;
    bool wit_known;         /* wit_size is what the witness holds */
    uint64_t wit_size;
    bool push_busy;
    bool push_again;
    unsigned push_attempts;
    struct event *push_timer;
    uint64_t pushing_size;
    uint8_t *cosigned;      /* the last checkpoint the witness cosigned */
    size_t cosigned_len;
    audit_webhooks *hooks;  /* webhook sinks (their own threads), or NULL */
} service;

static void push_kick(service *svc);

/* ---- config ---- */

static const luna_json_field pattern_item = {.name = "item", .type = LUNA_JSON_T_STRING,
                                             .min_len = 1, .max_len = 200,
                                             .pattern = LUNA_JSON_PAT_PRINTABLE};
static const luna_json_field iam_fields[] = {
    {.name = "host", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = IAM_HOST_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "port", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1, .max = 65535},
};
static const luna_json_schema iam_schema = {iam_fields, 2, NULL};
static const luna_json_field witness_peer_fields[] = {
    {.name = "host", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = IAM_HOST_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "port", .type = LUNA_JSON_T_INT, .flags = LUNA_JSON_REQUIRED, .min = 1, .max = 65535},
    {.name = "identity", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 200,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema witness_peer_schema = {witness_peer_fields, 3, NULL};
static const luna_json_field op_item = {.name = "item", .type = LUNA_JSON_T_STRING, .min_len = 1,
                                        .max_len = LUNA_AUDIT_OP_MAX,
                                        .pattern = LUNA_JSON_PAT_IDENT};
static const luna_json_field outcome_item = {.name = "item", .type = LUNA_JSON_T_STRING,
                                             .min_len = 1, .max_len = 16,
                                             .pattern = LUNA_JSON_PAT_IDENT};
static const luna_json_field webhook_fields[] = {
    {.name = "url", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 9,
     .max_len = 511, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "cursor_file", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = LUNA_CONFIG_PATH_MAX, .pattern = LUNA_JSON_PAT_TEXT},
    {.name = "ca_file", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = LUNA_CONFIG_PATH_MAX, .pattern = LUNA_JSON_PAT_TEXT},
    {.name = "operations", .type = LUNA_JSON_T_ARRAY, .max_len = 16, .items = &op_item},
    {.name = "outcomes", .type = LUNA_JSON_T_ARRAY, .min_len = 1, .max_len = 3,
     .items = &outcome_item},
    {.name = "min_severity", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = 16,
     .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "batch_max", .type = LUNA_JSON_T_INT, .min = 1, .max = 1000},
};
static const luna_json_schema webhook_schema = {
    webhook_fields, sizeof(webhook_fields) / sizeof(webhook_fields[0]), NULL};
static const luna_json_field webhook_item = {.name = "item", .type = LUNA_JSON_T_OBJECT,
                                             .object = &webhook_schema};
static const luna_json_field audit_fields[] = {
    {.name = "origin", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_NOTE_MAX_NAME_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "key_file", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_CONFIG_PATH_MAX, .pattern = LUNA_JSON_PAT_TEXT},
    /* Exactly one of iam_jwks (a file, re-read when it changes) and iam
     * (IAM's address: GET /v1/iam/jwks over mTLS). */
    {.name = "iam_jwks", .type = LUNA_JSON_T_STRING, .min_len = 1,
     .max_len = LUNA_CONFIG_PATH_MAX, .pattern = LUNA_JSON_PAT_TEXT},
    {.name = "iam", .type = LUNA_JSON_T_OBJECT, .object = &iam_schema},
    {.name = "jwks_refresh_sec", .type = LUNA_JSON_T_INT, .min = JWKS_REFRESH_MIN_SEC,
     .max = JWKS_REFRESH_MAX_SEC},
    {.name = "token_issuer", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = 256, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "token_audience", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = 256, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "writers", .type = LUNA_JSON_T_ARRAY, .min_len = 1, .max_len = MAX_PATTERNS,
     .items = &pattern_item},
    {.name = "readers", .type = LUNA_JSON_T_ARRAY, .min_len = 1, .max_len = MAX_PATTERNS,
     .items = &pattern_item},
    {.name = "deep_verify", .type = LUNA_JSON_T_BOOL},
    {.name = "batch_max", .type = LUNA_JSON_T_INT, .min = 1, .max = AUDIT_LOG_MAX_BATCH},
    /* The witness to push every new checkpoint to (optional). */
    {.name = "witness", .type = LUNA_JSON_T_OBJECT, .object = &witness_peer_schema},
    /* Monitoring systems fed by HTTPS POST (audit_webhook.h). */
    {.name = "webhooks", .type = LUNA_JSON_T_ARRAY, .max_len = AUDIT_WEBHOOK_MAX,
     .items = &webhook_item},
};
static const luna_json_schema audit_section = {
    audit_fields, sizeof(audit_fields) / sizeof(audit_fields[0]), NULL};
static const luna_json_field top_fields[] = {
    {.name = "audit", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
     .object = &audit_section},
};
static const luna_json_schema audit_schema = {top_fields, 1, &luna_config_common_schema};
static const char *const file_keys[] = {"audit.key_file", "audit.iam_jwks", NULL};

/* Reads a pattern array (or the default) into out[]; strings point into cfg. */
static size_t patterns(const luna_config *cfg, const char *key, const char *dflt,
                       const char **out)
{
    const json_t *arr;
    size_t n;
    if (luna_json_get_array(luna_config_json(cfg), key, &arr, &n) != LUNA_OK) {
        out[0] = dflt;
        return 1;
    }
    for (size_t i = 0; i < n && i < MAX_PATTERNS; i++)
        out[i] = json_string_value(json_array_get(arr, i));
    return n < MAX_PATTERNS ? n : MAX_PATTERNS;
}

/* ---- replies ---- */

static void reply_hex(json_t *o, const char *key, const uint8_t *b, size_t n)
{
    char hex[2 * LUNA_MERKLE_HASH_LEN + 1];
    if (n <= LUNA_MERKLE_HASH_LEN && luna_hex_encode(b, n, hex, sizeof(hex)) == LUNA_OK)
        json_object_set_new(o, key, json_string(hex));
}

/* ---- append (group commit) ---- */

static void flush_pending(service *svc)
{
    size_t n = svc->n_pending;
    if (n == 0)
        return;
    svc->n_pending = 0;
    uint64_t first = 0;
    uint8_t(*hashes)[LUNA_MERKLE_HASH_LEN] = calloc(n, LUNA_MERKLE_HASH_LEN);
    luna_err err = hashes != NULL
                       ? audit_log_append(svc->log, svc->pending, n, &first, hashes)
                       : LUNA_ERR_NOMEM;
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "append failed; entries not written",
                  LUNA_LOG_UINT("entries", n), LUNA_LOG_ERR("error", err));
        for (size_t i = 0; i < n; i++)
            luna_http_reply_error(svc->pending_req[i], 503, "unavailable",
                                  "the entry could not be written durably");
        free(hashes);
        return;
    }
    /* Durable: only now is anyone told. */
    for (size_t i = 0; i < n; i++) {
        uint8_t leaf[LUNA_AUDIT_ENTRY_MAX];
        size_t leaf_len = 0;
        json_t *o = json_object();
        if (o == NULL ||
            luna_audit_entry_encode(&svc->pending[i], leaf, sizeof(leaf), &leaf_len) != LUNA_OK) {
            json_decref(o);
            luna_http_reply_err(svc->pending_req[i], LUNA_ERR_INTERNAL);
            continue;
        }
        json_object_set_new(o, "index", json_integer((json_int_t)(first + i)));
        reply_hex(o, "leaf_hash", hashes[i], LUNA_MERKLE_HASH_LEN);
        json_object_set_new(o, "entry", json_stringn((const char *)leaf, leaf_len));
        luna_http_reply_json(svc->pending_req[i], 201, o);
        json_decref(o);
    }
    free(hashes);
    push_kick(svc);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_pending(arg);
}

static void handle_append(luna_http_request *req, void *arg)
{
    service *svc = arg;
    const uint8_t *body;
    size_t len;
    if (luna_http_request_body(req, &body, &len) != LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_TOO_LARGE);
        return;
    }
    luna_audit_entry e;
    luna_json_error jerr;
    luna_err err = luna_audit_entry_parse_request(body, len, &e, &jerr);
    if (err != LUNA_OK) {
        luna_http_reply_error(req, err == LUNA_ERR_TOO_LARGE ? 413 : 400, "invalid_entry",
                              "the entry breaks the audit entry rules (docs/audit.md)");
        return;
    }
    /* The log, not the writer, says who wrote it and when. */
    if (luna_audit_set(e.component, sizeof(e.component), luna_http_request_identity(req)) !=
            LUNA_OK ||
        !luna_audit_id_ok(e.component, true)) {
        luna_http_reply_error(req, 403, "permission_denied", "caller identity not loggable");
        return;
    }
    e.time_ms = audit_now_ms();
    if (svc->n_pending == svc->batch_max)
        flush_pending(svc);
    svc->pending[svc->n_pending] = e;
    svc->pending_req[svc->n_pending] = req;
    svc->n_pending++;
    /* Lowest priority: runs once the loop has read every request that is
     * ready, so concurrent appends share one transaction. */
    if (svc->n_pending == 1)
        event_active(svc->flush_ev, EV_TIMEOUT, 0);
}

/* ---- checkpoint and proofs ---- */

static luna_err sign_checkpoint(service *svc)
{
    if (svc->cp_valid && svc->cp_size == audit_log_size(svc->log))
        return LUNA_OK;
    luna_note_checkpoint cp = {.origin = svc->origin, .origin_len = strlen(svc->origin),
                               .size = audit_log_size(svc->log)};
    audit_log_root(svc->log, cp.root);
    uint8_t text[LUNA_NOTE_MAX_NAME_LEN + 128];
    size_t text_len = 0;
    LUNA_GUARD(luna_note_checkpoint_format(&cp, text, sizeof(text), &text_len));
    svc->cp_valid = false;
    LUNA_GUARD(luna_note_sign(text, text_len, &svc->signer, 1, svc->cp, sizeof(svc->cp),
                              &svc->cp_len));
    svc->cp_size = cp.size;
    svc->cp_valid = true;
    return LUNA_OK;
}

static void handle_checkpoint(luna_http_request *req, void *arg)
{
    service *svc = arg;
    luna_err err = sign_checkpoint(svc);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot sign checkpoint", LUNA_LOG_ERR("error", err));
        luna_http_reply_err(req, LUNA_ERR_INTERNAL);
        return;
    }
    luna_http_reply(req, 200, "text/plain; charset=utf-8", svc->cp, svc->cp_len);
}

/* GET /v1/audit/checkpoint/witnessed: the last checkpoint the witness
 * cosigned (the log's signature and the witness's), 404 before the first. */
static void handle_witnessed(luna_http_request *req, void *arg)
{
    service *svc = arg;
    if (svc->cosigned == NULL) {
        luna_http_reply_error(req, 404, "not_found", "no cosigned checkpoint yet");
        return;
    }
    luna_http_reply(req, 200, "text/plain; charset=utf-8", svc->cosigned, svc->cosigned_len);
}

/* ---- pushing checkpoints to the witness ---- */

static void push_send(service *svc);

static void on_push_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    push_send(arg);
}

/* Transport trouble or a 5xx: retry later, a bounded number of times. */
static void push_retry(service *svc, const char *why)
{
    svc->push_attempts++;
    if (svc->push_attempts >= PUSH_MAX_ATTEMPTS) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT,
                  "witness unreachable; giving up until the next append",
                  LUNA_LOG_STR("reason", why), LUNA_LOG_UINT("size", svc->pushing_size));
        svc->push_attempts = 0;
        return;
    }
    unsigned sec = 1u << (svc->push_attempts < 5 ? svc->push_attempts : 5);
    struct timeval tv = {.tv_sec = sec < PUSH_BACKOFF_MAX_SEC ? sec : PUSH_BACKOFF_MAX_SEC};
    LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "witness push failed; will retry",
              LUNA_LOG_STR("reason", why), LUNA_LOG_UINT("in_sec", tv.tv_sec));
    if (event_add(svc->push_timer, &tv) != 0)
        svc->push_attempts = 0;
}

static void on_push(const luna_http_response *r, void *arg)
{
    service *svc = arg;
    svc->push_busy = false;
    if (svc->closing)
        return;
    if (r->err != LUNA_OK || r->status >= 500) {
        push_retry(svc, r->err != LUNA_OK ? luna_errname(r->err) : "witness error");
        return;
    }
    if (r->status == 200) {
        /* Kept only when it is our checkpoint for the size we sent. */
        luna_note n;
        luna_note_checkpoint cp;
        luna_note_verifier v;
        luna_note_signer_verifier(svc->signer, &v);
        if (luna_note_checkpoint_open(r->body, r->body_len, svc->origin, strlen(svc->origin), &v,
                                      1, &n, &cp) == LUNA_OK &&
            cp.size == svc->pushing_size && n.n_sigs >= 2) {
            uint8_t *copy = malloc(r->body_len);
            if (copy != NULL) {
                memcpy(copy, r->body, r->body_len);
                free(svc->cosigned);
                svc->cosigned = copy;
                svc->cosigned_len = r->body_len;
            }
        } else {
            LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "witness answered an unusable cosignature",
                      LUNA_LOG_UINT("size", svc->pushing_size));
        }
        svc->wit_known = true;
        svc->wit_size = svc->pushing_size;
        svc->push_attempts = 0;
        LUNA_LOGF(LUNA_LOG_DEBUG, COMPONENT, "witness cosigned",
                  LUNA_LOG_UINT("size", svc->wit_size));
        if (svc->push_again || audit_log_size(svc->log) != svc->wit_size) {
            svc->push_again = false;
            push_send(svc);
        }
        return;
    }
    /* 409 old_size_mismatch says where the witness is: resubmit from there. */
    json_error_t jerr;
    json_t *o = r->status == 409 ? json_loadb((const char *)r->body, r->body_len, 0, &jerr) : NULL;
    const char *code = json_string_value(json_object_get(json_object_get(o, "error"), "code"));
    json_t *sz = json_object_get(o, "size");
    if (code != NULL && strcmp(code, "old_size_mismatch") == 0 && json_is_integer(sz) &&
        json_integer_value(sz) >= 0 && svc->push_attempts + 1 < PUSH_MAX_ATTEMPTS) {
        svc->wit_known = true;
        svc->wit_size = (uint64_t)json_integer_value(sz);
        svc->push_attempts++;
        json_decref(o);
        push_send(svc);
        return;
    }
    /* Anything else is the witness refusing our history (split view,
     * rollback, inconsistent) or our key: loud, and not retried. */
    LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "WITNESS REFUSED the log's checkpoint",
              LUNA_LOG_UINT("status", (uint64_t)r->status),
              LUNA_LOG_STR("code", code != NULL ? code : "?"),
              LUNA_LOG_UINT("size", svc->pushing_size));
    svc->push_attempts = 0;
    json_decref(o);
}

static void push_send(service *svc)
{
    if (svc->wit == NULL || svc->closing)
        return;
    if (svc->push_busy) {
        svc->push_again = true;
        return;
    }
    luna_err err = sign_checkpoint(svc);
    uint64_t size = svc->cp_size;
    uint64_t old = svc->wit_known ? svc->wit_size : 0;
    if (err != LUNA_OK || (svc->wit_known && old == size && svc->cosigned != NULL))
        return;
    if (old > size) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "the witness holds a larger tree than this log",
                  LUNA_LOG_UINT("witnessed", old), LUNA_LOG_UINT("size", size));
        return;
    }
    luna_merkle_proof p;
    luna_merkle_proof_init(&p);
    if (old > 0 && old < size)
        err = audit_log_prove_consistency(svc->log, old, size, &p);
    json_t *arr = err == LUNA_OK ? audit_proof_json(&p) : NULL;
    json_t *body = arr != NULL ? json_pack("{s:I,s:o,s:s%}", "old_size", (json_int_t)old,
                                           "proof", arr, "checkpoint", (const char *)svc->cp,
                                           svc->cp_len)
                               : NULL;
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot build the witness submission",
                  LUNA_LOG_ERR("error", err != LUNA_OK ? err : LUNA_ERR_NOMEM));
        return;
    }
    svc->pushing_size = size;
    svc->push_busy = true;
    svc->push_again = false;
    err = luna_http_client_request(svc->wit, "POST", WITNESS_PATH, "application/json", text,
                                   strlen(text), NULL, on_push, svc);
    free(text);
    if (err != LUNA_OK) {
        svc->push_busy = false;
        push_retry(svc, luna_errname(err));
    }
}

/* After every commit: the witness hears of each new tree head. */
static void push_kick(service *svc)
{
    if (svc->wit == NULL)
        return;
    if (svc->push_busy) {
        svc->push_again = true;
        return;
    }
    /* A retry already scheduled will pick up the newest head. */
    if (svc->push_timer != NULL && evtimer_pending(svc->push_timer, NULL))
        return;
    push_send(svc);
}

static luna_err load_witness_peer(service *svc, const luna_config *cfg)
{
    const json_t *root = luna_config_json(cfg);
    const char *host = NULL, *ident = WITNESS_IDENTITY_DEFAULT;
    size_t n;
    int64_t port = 0;
    if (luna_json_get_string(root, "audit.witness.host", &host, &n) != LUNA_OK ||
        luna_json_get_int(root, "audit.witness.port", &port) != LUNA_OK)
        return LUNA_OK; /* no witness configured */
    if (luna_json_get_string(root, "audit.witness.identity", &ident, &n) != LUNA_OK)
        ident = WITNESS_IDENTITY_DEFAULT;
    const luna_config_common *c = luna_config_common_get(cfg);
    luna_http_client_opts o = {.tls = {.ca_file = c->tls_ca,
                                       .cert_file = c->tls_cert,
                                       .key_file = c->tls_key},
                               .host = host,
                               .port = (uint16_t)port,
                               .expected_identity = ident,
                               .timeout_sec = PUSH_TIMEOUT_SEC,
                               .max_response = LUNA_NOTE_MAX_LEN};
    LUNA_GUARD(luna_http_client_new(svc->base, &o, &svc->wit));
    svc->push_timer = evtimer_new(svc->base, on_push_timer, svc);
    LUNA_ENSURE(svc->push_timer != NULL, LUNA_ERR_NOMEM);
    return LUNA_OK;
}

static bool query_u64(const audit_query *q, const char *key, uint64_t *out)
{
    const char *v = audit_query_get(q, key);
    return v != NULL && audit_parse_u64(v, strlen(v), out) == LUNA_OK;
}

static void reply_proof(luna_http_request *req, json_t *o, const luna_merkle_proof *p)
{
    json_t *arr = audit_proof_json(p);
    if (o == NULL || arr == NULL) {
        json_decref(arr);
        json_decref(o);
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    json_object_set_new(o, "proof", arr);
    luna_http_reply_json(req, 200, o);
    json_decref(o);
}

static void handle_inclusion(luna_http_request *req, void *arg)
{
    service *svc = arg;
    static const char *const keys[] = {"index", "size", NULL};
    audit_query q;
    uint64_t index, size;
    if (audit_query_parse(luna_http_request_query(req), keys, &q) != LUNA_OK ||
        !query_u64(&q, "index", &index) || !query_u64(&q, "size", &size)) {
        luna_http_reply_error(req, 400, "invalid_query", "need index and size, decimal");
        return;
    }
    luna_merkle_proof p;
    luna_err err = audit_log_prove_inclusion(svc->log, index, size, &p);
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err);
        return;
    }
    json_t *o = json_pack("{s:I,s:I}", "index", (json_int_t)index, "size", (json_int_t)size);
    reply_proof(req, o, &p);
}

static void handle_consistency(luna_http_request *req, void *arg)
{
    service *svc = arg;
    static const char *const keys[] = {"from", "to", NULL};
    audit_query q;
    uint64_t from, to;
    if (audit_query_parse(luna_http_request_query(req), keys, &q) != LUNA_OK ||
        !query_u64(&q, "from", &from) || !query_u64(&q, "to", &to)) {
        luna_http_reply_error(req, 400, "invalid_query", "need from and to, decimal");
        return;
    }
    luna_merkle_proof p;
    luna_err err = audit_log_prove_consistency(svc->log, from, to, &p);
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err);
        return;
    }
    json_t *o = json_pack("{s:I,s:I}", "from", (json_int_t)from, "to", (json_int_t)to);
    reply_proof(req, o, &p);
}

/* ---- IAM's key set ---- */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void jwks_replace(service *svc, luna_jws_keyset *ks, const char *from)
{
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "IAM key set loaded", LUNA_LOG_STR("from", from),
              LUNA_LOG_UINT("keys", luna_jws_keyset_count(ks)));
    luna_jws_keyset_free(svc->jwks);
    svc->jwks = ks;
}

/*
 * Re-reads the JWKS file when it is not the version loaded last.  A bad
 * new version keeps the old set (and is not retried until it changes
 * again, so a broken file costs one read and one log line).  Returns true
 * when a new set was installed.
 */
static bool jwks_file_check(service *svc)
{
    audit_file_id now;
    if (audit_file_id_get(svc->jwks_path, &now) != LUNA_OK ||
        (svc->jwks != NULL && audit_file_id_equal(&now, &svc->jwks_id)))
        return false;
    char *text = NULL;
    size_t len = 0;
    luna_jws_keyset *ks = NULL;
    luna_err err = audit_read_small_file(svc->jwks_path, JWKS_MAX, &text, &len, &now);
    if (err == LUNA_OK)
        err = luna_jws_keyset_load(text, len, &ks);
    free(text);
    svc->jwks_id = now;
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "IAM key set file unusable; keeping the old set",
                  LUNA_LOG_ERR("error", err));
        return false;
    }
    jwks_replace(svc, ks, "file");
    return true;
}

static void on_iam_jwks(const luna_http_response *r, void *arg)
{
    service *svc = arg;
    svc->jwks_pending = false;
    if (svc->closing)
        return;
    luna_jws_keyset *ks = NULL;
    luna_err err = r->err;
    if (err == LUNA_OK)
        err = r->status == 200 ? luna_jws_keyset_load((const char *)r->body, r->body_len, &ks)
                               : LUNA_ERR_UNAVAILABLE;
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_WARN, COMPONENT, "IAM key set refresh failed; keeping the old set",
                  LUNA_LOG_ERR("error", err), LUNA_LOG_INT("status", r->status));
        return;
    }
    jwks_replace(svc, ks, "iam");
}

/* At most one fetch in flight; its size and time are capped by the client. */
static void jwks_fetch(service *svc)
{
    if (svc->jwks_pending || svc->closing)
        return;
    if (luna_http_client_request(svc->iam, "GET", IAM_JWKS_PATH, NULL, NULL, 0, NULL,
                                 on_iam_jwks, svc) == LUNA_OK)
        svc->jwks_pending = true;
}

static void on_jwks_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    service *svc = arg;
    if (svc->iam != NULL)
        jwks_fetch(svc);
    else
        (void)jwks_file_check(svc);
}

/*
 * A token named a kid the set does not hold: maybe IAM rotated.  The file
 * is checked again (true means "verify again").  IAM is asked at most
 * every JWKS_FORCED_GAP_SEC, so tokens with made-up kids cannot turn into
 * a flood of fetches.
 */
static bool jwks_unknown_kid(service *svc)
{
    if (svc->iam == NULL)
        return jwks_file_check(svc);
    double now = mono_now();
    if (now - svc->jwks_forced >= JWKS_FORCED_GAP_SEC) {
        svc->jwks_forced = now;
        jwks_fetch(svc);
    }
    return false;
}

/* ---- auditor queries ---- */

typedef struct auditor {
    char tenant[LUNA_AUDIT_ID_MAX + 1];
    bool platform; /* may read every tenant and export */
} auditor;

static bool has_role(const json_t *roles, const char *role)
{
    if (!json_is_array(roles))
        return false;
    for (size_t i = 0; i < json_array_size(roles); i++) {
        const json_t *r = json_array_get(roles, i);
        if (json_is_string(r) && strcmp(json_string_value(r), role) == 0)
            return true;
    }
    return false;
}

static bool claim_is(const json_t *claims, const char *name, const char *value)
{
    const json_t *v = json_object_get(claims, name);
    return json_is_string(v) && strcmp(json_string_value(v), value) == 0;
}

/*
 * The caller's rights come from the verified token only, read the way
 * IAM writes them (docs/iam.md "Tokens"): iss and aud as configured, a
 * user/service token made from an API key ("auth":"api_key"; anonymous
 * tokens hold no role), a valid "tenant", and "roles".  Everything not
 * granted below is refused.
 */
static luna_err authorize_claims(const json_t *claims, auditor *who)
{
    const json_t *roles = json_object_get(claims, "roles");
    const json_t *tenant = json_object_get(claims, "tenant");
    if (!claim_is(claims, "auth", "api_key") || !json_is_string(tenant) ||
        !luna_audit_id_ok(json_string_value(tenant), true) ||
        luna_audit_set(who->tenant, sizeof(who->tenant), json_string_value(tenant)) != LUNA_OK)
        return LUNA_ERR_PERMISSION;
    if (!has_role(roles, ROLE_AUDITOR))
        return LUNA_ERR_PERMISSION;
    who->platform = has_role(roles, ROLE_PLATFORM_ADMIN);
    return LUNA_OK;
}

/* LUNA_ERR_UNAUTHENTICATED (401), LUNA_ERR_PERMISSION (403), or
 * LUNA_ERR_UNAVAILABLE (503: IAM's key set is not loaded yet or is being
 * refreshed because of this token's kid; retry). */
static luna_err authenticate(service *svc, luna_http_request *req, auditor *who)
{
    memset(who, 0, sizeof(*who));
    const char *h = luna_http_request_header(req, "Authorization");
    static const char bearer[] = "Bearer ";
    if (h == NULL || strncmp(h, bearer, sizeof(bearer) - 1) != 0)
        return LUNA_ERR_UNAUTHENTICATED;
    const char *tok = h + sizeof(bearer) - 1;
    size_t tok_len = strnlen(tok, LUNA_JWS_MAX_TOKEN_LEN + 1);
    /* The file is checked on every call (one stat; a read only when it
     * changed), so a published or retired key counts at once. */
    if (svc->iam == NULL)
        (void)jwks_file_check(svc);
    if (svc->jwks == NULL) {
        (void)jwks_unknown_kid(svc);
        if (svc->jwks == NULL)
            return LUNA_ERR_UNAVAILABLE;
    }
    luna_jws_verify_opts o;
    luna_jws_verify_opts_init(&o);
    o.issuer = svc->issuer;
    o.audience = svc->audience;
    json_t *claims = NULL;
    luna_err err = luna_jws_verify(svc->jwks, tok, tok_len, &o, &claims, NULL);
    if (err == LUNA_ERR_NOT_FOUND) {
        if (jwks_unknown_kid(svc))
            err = luna_jws_verify(svc->jwks, tok, tok_len, &o, &claims, NULL);
        else if (svc->jwks_pending)
            return LUNA_ERR_UNAVAILABLE;
    }
    if (err != LUNA_OK)
        return LUNA_ERR_UNAUTHENTICATED;
    err = authorize_claims(claims, who);
    json_decref(claims);
    return err;
}

static void reply_auth_err(luna_http_request *req, luna_err err)
{
    if (err == LUNA_ERR_UNAVAILABLE) {
        /* Best effort: the 503 alone already says "retry". */
        if (luna_http_response_header(req, "Retry-After", "1") != LUNA_OK)
            LUNA_LOGF(LUNA_LOG_DEBUG, COMPONENT, "no Retry-After", LUNA_LOG_UINT("status", 503));
        luna_http_reply_error(req, 503, "unavailable", "IAM key set not available yet; retry");
        return;
    }
    luna_http_reply_err(req, err);
}

typedef struct page_ctx {
    json_t *arr;
    const auditor *who;
    uint64_t last;
    bool damaged;
} page_ctx;

static luna_err page_row(void *vctx, uint64_t index, const uint8_t *leaf, size_t len)
{
    page_ctx *c = vctx;
    luna_audit_entry e;
    uint8_t h[LUNA_MERKLE_HASH_LEN];
    c->last = index;
    if (luna_audit_entry_decode(leaf, len, &e) != LUNA_OK ||
        luna_merkle_leaf_hash(leaf, len, h) != LUNA_OK) {
        c->damaged = true;
        return LUNA_ERR_VERIFY;
    }
    /* The index column is not the authority: the signed leaf is. */
    if (!c->who->platform && strcmp(e.tenant, c->who->tenant) != 0) {
        c->damaged = true;
        return LUNA_ERR_VERIFY;
    }
    json_t *ej = NULL;
    LUNA_GUARD(luna_audit_entry_to_json(&e, &ej));
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(ej);
        return LUNA_ERR_NOMEM;
    }
    json_object_set_new(o, "index", json_integer((json_int_t)index));
    reply_hex(o, "leaf_hash", h, sizeof(h));
    json_object_set_new(o, "entry", ej);
    return json_array_append_new(c->arr, o) == 0 ? LUNA_OK : LUNA_ERR_NOMEM;
}

static void handle_query(luna_http_request *req, void *arg)
{
    service *svc = arg;
    auditor who;
    luna_err err = authenticate(svc, req, &who);
    if (err != LUNA_OK) {
        reply_auth_err(req, err);
        return;
    }
    static const char *const keys[] = {"tenant", "tee",   "deployment", "operation", "since",
                                       "until",  "cursor", "limit",     NULL};
    audit_query q;
    if (audit_query_parse(luna_http_request_query(req), keys, &q) != LUNA_OK) {
        luna_http_reply_error(req, 400, "invalid_query", "unknown, repeated or malformed parameter");
        return;
    }
    audit_log_filter f = {.tee = audit_query_get(&q, "tee"),
                          .deployment = audit_query_get(&q, "deployment"),
                          .operation = audit_query_get(&q, "operation"),
                          .below = audit_log_size(svc->log),
                          .limit = DEFAULT_PAGE};
    const char *tenant = audit_query_get(&q, "tenant");
    if (who.platform) {
        f.tenant = tenant;
    } else {
        /* A tenant auditor sees its own tenant, whatever it asks for. */
        if (tenant != NULL && strcmp(tenant, who.tenant) != 0) {
            luna_http_reply_error(req, 403, "permission_denied", "another tenant's entries");
            return;
        }
        f.tenant = who.tenant;
    }
    uint64_t v;
    bool bad = false;
    if (audit_query_get(&q, "since") != NULL) {
        bad |= !query_u64(&q, "since", &v) || v > (uint64_t)LUNA_AUDIT_TIME_MAX;
        f.has_since = true;
        f.since_ms = (int64_t)(v & (uint64_t)INT64_MAX);
    }
    if (audit_query_get(&q, "until") != NULL) {
        bad |= !query_u64(&q, "until", &v) || v > (uint64_t)LUNA_AUDIT_TIME_MAX;
        f.has_until = true;
        f.until_ms = (int64_t)(v & (uint64_t)INT64_MAX);
    }
    if (audit_query_get(&q, "cursor") != NULL) {
        bad |= !query_u64(&q, "cursor", &f.after);
        f.has_after = true;
    }
    if (audit_query_get(&q, "limit") != NULL) {
        bad |= !query_u64(&q, "limit", &v) || v == 0 || v > AUDIT_LOG_MAX_PAGE;
        f.limit = (size_t)(v <= AUDIT_LOG_MAX_PAGE ? v : 1);
    }
    if (bad) {
        luna_http_reply_error(req, 400, "invalid_query", "bad number in since/until/cursor/limit");
        return;
    }
    page_ctx c = {.arr = json_array(), .who = &who};
    size_t n = 0;
    err = c.arr != NULL ? audit_log_query(svc->log, &f, page_row, &c, &n) : LUNA_ERR_NOMEM;
    if (err != LUNA_OK) {
        if (c.damaged)
            LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "stored entry damaged",
                      LUNA_LOG_UINT("index", c.last));
        json_decref(c.arr);
        luna_http_reply_err(req, c.damaged ? LUNA_ERR_INTERNAL : err);
        return;
    }
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(c.arr);
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    json_object_set_new(o, "entries", c.arr);
    json_object_set_new(o, "tree_size", json_integer((json_int_t)f.below));
    if (n == f.limit) {
        char cur[24];
        snprintf(cur, sizeof(cur), "%llu", (unsigned long long)c.last);
        json_object_set_new(o, "next_cursor", json_string(cur));
    }
    luna_http_reply_json(req, 200, o);
    json_decref(o);
}

/* ---- JSONL export (auditors with platform scope) ---- */

typedef struct export_ctx {
    luna_wbuf *w;
    uint64_t expect;
} export_ctx;

static luna_err export_row(void *vctx, uint64_t index, const uint8_t *leaf, size_t len)
{
    export_ctx *c = vctx;
    /* Export is for recomputing the tree: a gap would be silent damage. */
    if (index != c->expect)
        return LUNA_ERR_VERIFY;
    c->expect++;
    LUNA_GUARD(luna_write_bytes(c->w, leaf, len));
    return luna_write_u8(c->w, '\n');
}

static void handle_export(luna_http_request *req, void *arg)
{
    service *svc = arg;
    auditor who;
    luna_err err = authenticate(svc, req, &who);
    if (err == LUNA_OK && !who.platform)
        err = LUNA_ERR_PERMISSION;
    if (err != LUNA_OK) {
        reply_auth_err(req, err);
        return;
    }
    static const char *const keys[] = {"from", "to", NULL};
    audit_query q;
    uint64_t from = 0, to = audit_log_size(svc->log);
    if (audit_query_parse(luna_http_request_query(req), keys, &q) != LUNA_OK ||
        (audit_query_get(&q, "from") != NULL && !query_u64(&q, "from", &from)) ||
        (audit_query_get(&q, "to") != NULL && !query_u64(&q, "to", &to)) || from > to ||
        to > audit_log_size(svc->log)) {
        luna_http_reply_error(req, 400, "invalid_query", "need 0 <= from <= to <= tree size");
        return;
    }
    if (to - from > AUDIT_LOG_MAX_PAGE)
        to = from + AUDIT_LOG_MAX_PAGE;
    luna_wbuf w;
    if (luna_wbuf_init_alloc(&w, (size_t)(to - from) * (LUNA_AUDIT_ENTRY_MAX + 1) + 1) !=
        LUNA_OK) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    export_ctx c = {&w, from};
    audit_log_filter f = {.below = to, .limit = AUDIT_LOG_MAX_PAGE, .has_after = from > 0,
                          .after = from > 0 ? from - 1 : 0};
    err = to > from ? audit_log_query(svc->log, &f, export_row, &c, NULL) : LUNA_OK;
    if (err == LUNA_OK && c.expect != to)
        err = LUNA_ERR_VERIFY;
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "export failed", LUNA_LOG_ERR("error", err));
        luna_wbuf_free(&w);
        luna_http_reply_err(req, LUNA_ERR_INTERNAL);
        return;
    }
    char next[24];
    snprintf(next, sizeof(next), "%llu", (unsigned long long)to);
    if (luna_http_response_header(req, "X-Audit-Next", next) != LUNA_OK) {
        luna_wbuf_free(&w);
        luna_http_reply_err(req, LUNA_ERR_INTERNAL);
        return;
    }
    luna_http_reply(req, 200, "application/x-ndjson", w.data, w.len);
    luna_wbuf_free(&w);
}

/* ---- start-up ---- */

static int usage(void)
{
    fprintf(stderr, "usage: luna-audit --config FILE\n"
                    "       luna-audit keygen --name ORIGIN --out FILE\n");
    return 2;
}

static int cmd_keygen(int argc, char **argv)
{
    const char *name = NULL, *out = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--name") == 0)
            name = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else
            return usage();
    }
    if (name == NULL || out == NULL || argc % 2 != 0)
        return usage();
    char vkey[LUNA_NOTE_VKEY_MAX_LEN];
    luna_err err = audit_keygen(name, out, vkey, sizeof(vkey));
    if (err != LUNA_OK) {
        fprintf(stderr, "luna-audit keygen: %s\n", luna_strerror(err));
        return 1;
    }
    printf("%s\n", vkey);
    return 0;
}

/* The key set's source: the file (loaded now, must be good) or IAM
 * (fetched once the loop runs; auditor calls get 503 until it arrives). */
static luna_err load_jwks_source(service *svc, const luna_config *cfg)
{
    const json_t *root = luna_config_json(cfg);
    const char *path = NULL, *host = NULL;
    size_t n;
    int64_t port = 0, refresh = JWKS_REFRESH_DEFAULT_SEC;
    bool has_file = luna_json_get_string(root, "audit.iam_jwks", &path, &n) == LUNA_OK;
    bool has_iam = luna_json_get_string(root, "audit.iam.host", &host, &n) == LUNA_OK &&
                   luna_json_get_int(root, "audit.iam.port", &port) == LUNA_OK;
    if (has_file == has_iam) {
        luna_log(LUNA_LOG_ERROR, COMPONENT, "configure exactly one of audit.iam_jwks and audit.iam",
                 NULL, 0);
        return LUNA_ERR_CONFIG;
    }
    if (luna_json_get_int(root, "audit.jwks_refresh_sec", &refresh) != LUNA_OK)
        refresh = JWKS_REFRESH_DEFAULT_SEC;
    if (has_file) {
        svc->jwks_path = path;
        if (!jwks_file_check(svc)) {
            luna_log(LUNA_LOG_ERROR, COMPONENT, "cannot load audit.iam_jwks", NULL, 0);
            return LUNA_ERR_CONFIG;
        }
    } else {
        const luna_config_common *c = luna_config_common_get(cfg);
        luna_http_client_opts o = {.tls = {.ca_file = c->tls_ca,
                                           .cert_file = c->tls_cert,
                                           .key_file = c->tls_key},
                                   .host = host,
                                   .port = (uint16_t)port,
                                   .expected_identity = IAM_IDENTITY,
                                   .timeout_sec = JWKS_FETCH_TIMEOUT_SEC,
                                   .max_response = JWKS_MAX};
        LUNA_GUARD(luna_http_client_new(svc->base, &o, &svc->iam));
        svc->jwks_forced = mono_now();
        jwks_fetch(svc);
    }
    svc->jwks_tick = event_new(svc->base, -1, EV_PERSIST, on_jwks_tick, svc);
    LUNA_ENSURE(svc->jwks_tick != NULL, LUNA_ERR_NOMEM);
    struct timeval tv = {.tv_sec = (time_t)refresh, .tv_usec = 0};
    LUNA_ENSURE(event_add(svc->jwks_tick, &tv) == 0, LUNA_ERR_INTERNAL);
    return LUNA_OK;
}

static luna_err load_service(service *svc, const luna_config *cfg)
{
    const json_t *root = luna_config_json(cfg);
    const char *s;
    size_t n;
    LUNA_GUARD(luna_json_get_string(root, "audit.origin", &s, &n));
    LUNA_GUARD(luna_audit_set(svc->origin, sizeof(svc->origin), s));
    LUNA_GUARD(luna_json_get_string(root, "audit.key_file", &s, &n));
    luna_err err = audit_read_signer(s, svc->origin, &svc->signer);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT,
                  "cannot load the checkpoint key (mode 0600, name = origin)",
                  LUNA_LOG_ERR("error", err));
        return err;
    }
    LUNA_GUARD(load_jwks_source(svc, cfg));
    /* Required: a token minted by another issuer, or for another
     * audience, is never an auditor's token here. */
    LUNA_GUARD(luna_json_get_string(root, "audit.token_issuer", &svc->issuer, &n));
    LUNA_GUARD(luna_json_get_string(root, "audit.token_audience", &svc->audience, &n));
    /* Only tokens minted for the audit log: a token the gateway or the KMS
     * received is never accepted here, in any profile. */
    if (luna_aud_check_config(svc->audience, LUNA_AUD_AUDIT) != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "audit.token_audience is not this service's",
                  LUNA_LOG_STR("expected", LUNA_AUD_AUDIT));
        return LUNA_ERR_CONFIG;
    }
    int64_t bm = DEFAULT_BATCH_MAX;
    if (luna_json_get_int(root, "audit.batch_max", &bm) != LUNA_OK)
        bm = DEFAULT_BATCH_MAX;
    svc->batch_max = (size_t)bm;
    svc->pending = calloc(svc->batch_max, sizeof(*svc->pending));
    svc->pending_req = calloc(svc->batch_max, sizeof(*svc->pending_req));
    LUNA_ENSURE(svc->pending != NULL && svc->pending_req != NULL, LUNA_ERR_NOMEM);
    bool deep = true;
    if (luna_json_get_bool(root, "audit.deep_verify", &deep) != LUNA_OK)
        deep = true;
    const luna_config_common *c = luna_config_common_get(cfg);
    audit_log_open_opts lo = {.deep_verify = deep, .component = COMPONENT};
    err = audit_log_open(c->storage_url, &lo, &svc->log);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot open the log store",
                  LUNA_LOG_ERR("error", err));
        return err;
    }
    return LUNA_OK;
}

static luna_err add_routes(service *svc, const luna_config *cfg)
{
    const char *writers[MAX_PATTERNS], *readers[MAX_PATTERNS];
    size_t nw = patterns(cfg, "audit.writers", "lunal://svc/*", writers);
    size_t nr = patterns(cfg, "audit.readers", LUNA_HTTP_ALLOW_ANY_PLATFORM, readers);
    static const char *const any[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
    const luna_http_route routes[] = {
        {LUNA_HTTP_POST, "/v1/audit/entries", writers, nw, "application/json", handle_append,
         svc},
        {LUNA_HTTP_GET, "/v1/audit/entries", readers, nr, NULL, handle_query, svc},
        {LUNA_HTTP_GET, "/v1/audit/export", readers, nr, NULL, handle_export, svc},
        {LUNA_HTTP_GET, "/v1/audit/checkpoint", any, 1, NULL, handle_checkpoint, svc},
        {LUNA_HTTP_GET, "/v1/audit/checkpoint/witnessed", any, 1, NULL, handle_witnessed, svc},
        {LUNA_HTTP_GET, "/v1/audit/proof/inclusion", any, 1, NULL, handle_inclusion, svc},
        {LUNA_HTTP_GET, "/v1/audit/proof/consistency", any, 1, NULL, handle_consistency, svc},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        LUNA_GUARD(luna_http_server_add_route(svc->srv, &routes[i]));
    return LUNA_OK;
}

static int run(const char *config_path)
{
    int rc = 1;
    service svc;
    memset(&svc, 0, sizeof(svc));
    luna_config *cfg = NULL;
    luna_config_error cerr;
    luna_config_spec spec = {.schema = &audit_schema, .file_keys = file_keys,
                             .storage_required = true, .env_prefix = "LUNA_AUDIT_"};
    luna_err err = luna_config_load(config_path, &spec, &cfg, &cerr);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "bad config", LUNA_LOG_STR("detail", cerr.message));
        return 1;
    }
    const luna_config_common *c = luna_config_common_get(cfg);
    luna_log_set_level(c->log_level);
    svc.base = event_base_new();
    /* Three priorities: handlers at 1, the group-commit flush at 2 (last). */
    if (svc.base == NULL || event_base_priority_init(svc.base, 3) != 0)
        goto out;
    svc.flush_ev = event_new(svc.base, -1, 0, on_flush, &svc);
    if (svc.flush_ev == NULL || event_priority_set(svc.flush_ev, 2) != 0)
        goto out;
    if (load_service(&svc, cfg) != LUNA_OK)
        goto out;
    luna_http_server_opts o = {.component = COMPONENT,
                               .bind_addr = c->listen_address,
                               .port = c->listen_port,
                               .tls = {.ca_file = c->tls_ca,
                                       .cert_file = c->tls_cert,
                                       .key_file = c->tls_key},
                               .handle_signals = true};
    err = luna_http_server_new(svc.base, &o, &svc.srv);
    if (err == LUNA_OK)
        err = add_routes(&svc, cfg);
    if (err == LUNA_OK)
        err = load_witness_peer(&svc, cfg);
    if (err == LUNA_OK) {
        const json_t *hooks = NULL;
        size_t nh = 0;
        if (luna_json_get_array(luna_config_json(cfg), "audit.webhooks", &hooks, &nh) != LUNA_OK)
            hooks = NULL;
        err = audit_webhooks_start(hooks, c->storage_url, c->tls_ca, &svc.hooks);
    }
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, COMPONENT, "cannot start the server",
                  LUNA_LOG_ERR("error", err));
        goto out;
    }
    LUNA_LOGF(LUNA_LOG_INFO, COMPONENT, "listening",
              LUNA_LOG_UINT("port", luna_http_server_port(svc.srv)),
              LUNA_LOG_UINT("tree_size", audit_log_size(svc.log)));
    printf("PORT %u\n", (unsigned)luna_http_server_port(svc.srv));
    fflush(stdout);
    /* The witness hears of the head the log starts with. */
    push_kick(&svc);
    rc = event_base_dispatch(svc.base) < 0 ? 1 : 0;
    /* Anything still queued is written (and answered) before exit. */
    flush_pending(&svc);
out:
    svc.closing = true;
    audit_webhooks_stop(svc.hooks);
    luna_http_server_free(svc.srv);
    luna_http_client_free(svc.iam);
    luna_http_client_free(svc.wit);
    if (svc.push_timer != NULL)
        event_free(svc.push_timer);
    free(svc.cosigned);
    if (svc.jwks_tick != NULL)
        event_free(svc.jwks_tick);
    if (svc.flush_ev != NULL)
        event_free(svc.flush_ev);
    audit_log_close(svc.log);
    luna_note_signer_free(svc.signer);
    luna_jws_keyset_free(svc.jwks);
    free(svc.pending);
    free(svc.pending_req);
    if (svc.base != NULL)
        event_base_free(svc.base);
    luna_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (luna_process_harden() != LUNA_OK)
        return 1;
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc, argv);
    if (argc == 3 && strcmp(argv[1], "--config") == 0)
        return run(argv[2]);
    return usage();
}
