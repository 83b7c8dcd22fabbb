/*
 * att_service.c - the attestation service's runtime: the job queue and
 * its worker threads (every network call to a TEE, the KMS or the audit
 * log happens there, never on the event loop), the re-attestation
 * scheduler, the watchdog thread that notices a hung worker or a stalled
 * event loop, and the HTTP handlers.
 *
 * Must never: block the event loop on a peer, answer a request twice, let
 * an unauthenticated caller change a TEE's state, or let a request body
 * reach anything but the strict JSON parser.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/json.h"
#include "luna/log.h"
#include "luna/manifest.h"
#include "luna/rbac.h"

#include "att.h"

typedef struct att_job {
    struct att_job *next;
    att_kind kind;
    char tee_id[ATT_TEE_ID_MAX + 1];
    char deployment_id[ATT_DEPLOYMENT_MAX + 1];
    char actor[LUNA_PKI_IDENTITY_MAX + 1];
    char scope_tenant[ATT_TENANT_MAX + 1]; /* reinstatement: "" = not scoped */
    char request_id[LUNA_HTTP_REQUEST_ID_MAX + 1];
    att_admit_input admit;
    char *manifest;         /* ATT_KIND_REGISTER: the JWS */
    att_reg_caller reg;     /* ATT_KIND_REGISTER: who asks */
    luna_http_request *req; /* NULL for scheduled work */
    att_answer ans;
    int64_t enqueued_at;
} att_job;

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void job_free(att_job *j)
{
    if (j == NULL)
        return;
    free(j->admit.evidence);
    free(j->manifest);
    json_decref(j->ans.body);
    free(j);
}

/* ---- queue ---- */

static luna_err enqueue(att_service *svc, att_job *j)
{
    luna_err err = LUNA_OK;
    j->enqueued_at = now_s();
    pthread_mutex_lock(&svc->q_lock);
    if (svc->stopping)
        err = LUNA_ERR_UNAVAILABLE;
    else if (svc->q_len >= ATT_QUEUE_MAX)
        err = LUNA_ERR_UNAVAILABLE;
    if (err == LUNA_OK) {
        j->next = NULL;
        if (svc->q_tail != NULL)
            svc->q_tail->next = j;
        else
            svc->q_head = j;
        svc->q_tail = j;
        svc->q_len++;
        pthread_cond_signal(&svc->q_cond);
    }
    pthread_mutex_unlock(&svc->q_lock);
    return err;
}

static bool queued_reattest(att_service *svc, const char *tee_id)
{
    bool found = false;
    pthread_mutex_lock(&svc->q_lock);
    for (att_job *j = svc->q_head; j != NULL && !found; j = j->next)
        found = j->kind == ATT_KIND_REATTEST && strcmp(j->tee_id, tee_id) == 0;
    pthread_mutex_unlock(&svc->q_lock);
    return found;
}

static void *worker_main(void *arg)
{
    att_worker *w = arg;
    att_service *svc = w->svc;

    for (;;) {
        att_job *j;
        pthread_mutex_lock(&svc->q_lock);
        while (svc->q_head == NULL && !svc->stopping)
            pthread_cond_wait(&svc->q_cond, &svc->q_lock);
        if (svc->stopping && svc->q_head == NULL) {
            pthread_mutex_unlock(&svc->q_lock);
            break;
        }
        j = svc->q_head;
        svc->q_head = j->next;
        if (svc->q_head == NULL)
            svc->q_tail = NULL;
        svc->q_len--;
        pthread_mutex_unlock(&svc->q_lock);

        atomic_store(&w->busy_since, now_s());
        if (j->kind == ATT_KIND_ADMIT)
            att_engine_admit(w, &j->admit, j->request_id, &j->ans);
        else if (j->kind == ATT_KIND_REGISTER)
            att_deps_register(w, j->manifest, &j->reg, j->request_id, &j->ans);
        else
            att_engine_attest(w, j->kind, j->tee_id[0] != '\0' ? j->tee_id : NULL,
                              j->deployment_id, j->actor,
                              j->scope_tenant[0] != '\0' ? j->scope_tenant : NULL,
                              j->request_id, &j->ans);
        atomic_store(&w->busy_since, 0);

        if (j->req != NULL) {
            /* The event loop answers; a pointer fits one atomic pipe write. */
            ssize_t n;
            do {
                n = write(svc->done_pipe[1], &j, sizeof j);
            } while (n < 0 && errno == EINTR);
            if (n != (ssize_t)sizeof j)
                luna_log(LUNA_LOG_ERROR, ATT_COMPONENT, "completion pipe write failed", NULL, 0);
        } else {
            job_free(j);
        }
    }
    return NULL;
}

static void reply_job(att_job *j)
{
    if (j->ans.body != NULL)
        luna_http_reply_json(j->req, j->ans.status != 0 ? j->ans.status : 500, j->ans.body);
    else
        luna_http_reply_error(j->req, 500, "internal", "no answer");
    j->req = NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    for (;;) {
        att_job *j;
        ssize_t n = read(fd, &j, sizeof j);
        if (n != (ssize_t)sizeof j)
            break;
        reply_job(j);
        job_free(j);
    }
}

/* ---- watchdog (its own thread: it must see a stuck event loop too) ---- */

static void *watchdog_main(void *arg)
{
    att_service *svc = arg;
    bool loop_reported = false, backlog_reported = false;

    for (;;) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 250 * 1000 * 1000};
        bool any_hung = false;
        int64_t now;

        pthread_mutex_lock(&svc->q_lock);
        bool stop = svc->stopping;
        int64_t oldest = svc->q_head != NULL ? svc->q_head->enqueued_at : 0;
        pthread_mutex_unlock(&svc->q_lock);
        if (stop)
            break;
        nanosleep(&ts, NULL);
        now = now_s();
        for (unsigned i = 0; i < svc->n_workers; i++) {
            att_worker *w = &svc->workers[i];
            int64_t since = atomic_load(&w->busy_since);
            bool hung = since != 0 && now - since > (int64_t)svc->s->watchdog;
            if (hung) {
                any_hung = true;
                if (!atomic_exchange(&w->hung_reported, true)) {
                    char idx[24];
                    snprintf(idx, sizeof idx, "worker-%u", i);
                    att_alert(&svc->peers, "reattestation.worker_hung", "", idx, "");
                }
            } else if (atomic_exchange(&w->hung_reported, false)) {
                LUNA_LOGF(LUNA_LOG_WARN, ATT_COMPONENT, "worker recovered",
                          LUNA_LOG_UINT("worker", i));
            }
        }
        bool backlog = oldest != 0 && now - oldest > (int64_t)svc->s->watchdog;
        if (backlog && !backlog_reported)
            att_alert(&svc->peers, "reattestation.backlog", "", "queued work not picked up", "");
        backlog_reported = backlog;
        int64_t beat = atomic_load(&svc->loop_beat);
        bool loop_stuck = beat != 0 && now - beat > (int64_t)svc->s->watchdog;
        if (loop_stuck && !loop_reported)
            att_alert(&svc->peers, "event_loop.stalled", "", "event loop heartbeat stale", "");
        loop_reported = loop_stuck;
        atomic_store(&svc->degraded, any_hung || backlog || loop_stuck);
    }
    return NULL;
}

/* ---- timers on the event loop ---- */

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
    att_service *svc = arg;
    (void)fd;
    (void)what;
    atomic_store(&svc->loop_beat, now_s());
}

static void on_round(evutil_socket_t fd, short what, void *arg)
{
    att_service *svc = arg;
    char(*ids)[ATT_TEE_ID_MAX + 1] = NULL;
    size_t n = 0;
    luna_err err;
    (void)fd;
    (void)what;

    err = att_policy_refresh(svc->s, svc->verifier);
    if (err != LUNA_OK)
        LUNA_LOGF(LUNA_LOG_WARN, ATT_COMPONENT, "collateral refresh failed",
                  LUNA_LOG_ERR("error", err));
    att_deps_refresh(svc);
    ids = calloc(ATT_QUEUE_MAX, sizeof *ids);
    if (ids == NULL)
        return;
    err = att_db_list_tees(svc->db, ATT_TEE_ACTIVE, ids, ATT_QUEUE_MAX, &n);
    if (err != LUNA_OK) {
        LUNA_LOGF(LUNA_LOG_ERROR, ATT_COMPONENT, "re-attestation round: cannot list TEEs",
                  LUNA_LOG_ERR("error", err));
        free(ids);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        att_job *j;
        if (queued_reattest(svc, ids[i]))
            continue; /* the previous round's job has not even started */
        j = calloc(1, sizeof *j);
        if (j == NULL)
            break;
        j->kind = ATT_KIND_REATTEST;
        memcpy(j->tee_id, ids[i], sizeof j->tee_id);
        snprintf(j->actor, sizeof j->actor, "%s", ATT_IDENTITY);
        if (enqueue(svc, j) != LUNA_OK) {
            job_free(j);
            break;
        }
    }
    free(ids);
}

/* ---- HTTP handlers ---- */

static void reply_json_err(luna_http_request *req, const luna_json_error *je)
{
    json_t *b = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "bad_request", "message",
                          je->message, "field", je->path);
    if (b == NULL) {
        luna_http_reply_error(req, 400, "bad_request", "malformed body");
        return;
    }
    luna_http_reply_json(req, 400, b);
    json_decref(b);
}

static luna_err parse_body(luna_http_request *req, const luna_json_schema *schema, json_t **out)
{
    const uint8_t *body;
    size_t len;
    luna_json_error je;
    luna_json_limits lim = {.max_bytes = 256u * 1024u};
    luna_err err = luna_http_request_body(req, &body, &len);
    if (err != LUNA_OK) {
        luna_http_reply_err(req, err);
        return err;
    }
    err = luna_json_parse((const char *)body, len, schema, &lim, out, &je);
    if (err != LUNA_OK)
        reply_json_err(req, &je);
    return err;
}

static void submit(att_service *svc, luna_http_request *req, att_job *j)
{
    j->req = req;
    snprintf(j->request_id, sizeof j->request_id, "%s", luna_http_request_id(req));
    if (enqueue(svc, j) != LUNA_OK) {
        job_free(j);
        if (luna_http_response_header(req, "Retry-After", "5") != LUNA_OK)
            LUNA_LOGF(LUNA_LOG_WARN, ATT_COMPONENT, "Retry-After not set",
                      LUNA_LOG_STR("route", luna_http_request_path(req)));
        luna_http_reply_error(req, 503, "busy", "too much queued work");
    }
}

static void handle_jwks(luna_http_request *req, void *arg)
{
    att_service *svc = arg;
    luna_http_reply(req, 200, "application/json", svc->jwks_json, svc->jwks_len);
}

/* The verified IAM token of a caller (docs/iam.md, "Roles"). */
typedef struct att_caller {
    char sub[LUNA_PKI_IDENTITY_MAX + 1];
    char tenant[ATT_TENANT_MAX + 1];
    luna_roles roles;
} att_caller;

/*
 * Authorization: Bearer <IAM token> for this service's audience
 * (docs/protocol.md "Token audiences"): signature against iam_jwks,
 * issuer, expiry, then sub, tenant and roles, which must all be there and
 * well formed.  Roles are mapped to permissions by the platform's one
 * table (luna/rbac.h); an unknown role name grants nothing.  A client
 * calling directly (lunal://client/<tenant>/<principal>) must hold a token
 * of its own tenant.  LUNA_ERR_UNAUTHENTICATED: no or bad token;
 * LUNA_ERR_PERMISSION: a good token that is not this caller's;
 * LUNA_ERR_UNAVAILABLE: no key set configured.
 */
static luna_err caller_token(att_service *svc, luna_http_request *req, att_caller *c)
{
    static const char client_prefix[] = "lunal://client/";
    const char *auth = luna_http_request_header(req, "Authorization");
    const char *ident = luna_http_request_identity(req);
    luna_jws_verify_opts o;
    json_t *claims = NULL;
    const json_t *roles, *sub, *tenant, *v;
    size_t i;
    luna_err err = LUNA_ERR_UNAUTHENTICATED;

    memset(c, 0, sizeof *c);
    if (svc->iam_keys == NULL)
        return LUNA_ERR_UNAVAILABLE;
    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0)
        return LUNA_ERR_UNAUTHENTICATED;
    luna_jws_verify_opts_init(&o);
    o.issuer = "lunal://svc/iam";
    o.audience = svc->s->token_audience; /* a token minted for another service is refused */
    if (luna_jws_verify(svc->iam_keys, auth + 7, strlen(auth + 7), &o, &claims, NULL) != LUNA_OK)
        return LUNA_ERR_UNAUTHENTICATED;
    sub = json_object_get(claims, "sub");
    tenant = json_object_get(claims, "tenant");
    roles = json_object_get(claims, "roles");
    if (!json_is_string(sub) || json_string_length(sub) >= sizeof c->sub ||
        strlen(json_string_value(sub)) != json_string_length(sub) || !json_is_string(tenant) ||
        !att_tenant_id_ok(json_string_value(tenant)) || !json_is_array(roles))
        goto out;
    json_array_foreach(roles, i, v)
    {
        if (!json_is_string(v))
            goto out;
        (void)luna_roles_add_name(&c->roles, json_string_value(v));
    }
    snprintf(c->sub, sizeof c->sub, "%s", json_string_value(sub));
    snprintf(c->tenant, sizeof c->tenant, "%s", json_string_value(tenant));
    err = LUNA_OK;
    if (ident != NULL && strncmp(ident, client_prefix, sizeof client_prefix - 1) == 0) {
        const char *t = ident + sizeof client_prefix - 1;
        size_t n = strlen(c->tenant);
        if (strncmp(t, c->tenant, n) != 0 || t[n] != '/')
            err = LUNA_ERR_PERMISSION;
    }
out:
    json_decref(claims);
    if (err != LUNA_OK)
        memset(c, 0, sizeof *c);
    return err;
}

/* The JSON error of a failed caller_token. */
static void reply_token_err(luna_http_request *req, luna_err err, const char *what)
{
    if (err == LUNA_ERR_UNAVAILABLE)
        luna_http_reply_error(req, 503, "no_iam_keys",
                              "operator and tenant routes need attestation_service.iam_jwks");
    else if (err == LUNA_ERR_PERMISSION)
        luna_http_reply_error(req, 403, "forbidden", "the token is not this caller's");
    else
        luna_http_reply_error(req, 401, "unauthenticated", what);
}

static const luna_json_field verify_fields[] = {
    {.name = "deployment_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = ATT_DEPLOYMENT_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "tee_id", .type = LUNA_JSON_T_STRING, .min_len = 1, .max_len = ATT_TEE_ID_MAX,
     .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema verify_schema = {verify_fields, 2, NULL};

static void handle_verify(luna_http_request *req, void *arg)
{
    att_service *svc = arg;
    json_t *body = NULL;
    const char *dep, *tee = NULL;
    att_job *j;

    /*
     * The caller's IAM token (forwarded by the gateway) decides whose TEEs
     * may be verified: a verify forces an evidence round and answers with
     * the TEE's state and report, so another tenant's TEE must look like
     * no TEE at all.  Anonymous tokens carry no roles and are scoped to
     * their tenant like everyone else; only the platform admin is not.
     */
    att_caller c;
    luna_err terr = caller_token(svc, req, &c);
    if (terr != LUNA_OK) {
        reply_token_err(req, terr, "an IAM token for lunal://svc/attestation is required");
        return;
    }
    bool platform = luna_roles_allow(c.roles, LUNA_PERM_PLATFORM_ADMIN);
    if (!platform && c.roles != 0 && !luna_roles_allow(c.roles, LUNA_PERM_ATTESTATION_VERIFY)) {
        luna_http_reply_error(req, 403, "forbidden", "attestation.verify is required");
        return;
    }
    if (parse_body(req, &verify_schema, &body) != LUNA_OK)
        return;
    if (luna_json_get_string(body, "deployment_id", &dep, NULL) != LUNA_OK ||
        (luna_json_get_string(body, "tee_id", &tee, NULL) == LUNA_OK && !att_tee_id_ok(tee))) {
        json_decref(body);
        luna_http_reply_error(req, 400, "bad_request", "malformed tee_id");
        return;
    }
    att_deployment known;
    if (!att_deps_find(svc, dep, &known)) {
        json_decref(body);
        luna_http_reply_error(req, 404, "unknown_deployment", "no such deployment");
        return;
    }
    j = calloc(1, sizeof *j);
    if (j == NULL) {
        json_decref(body);
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    j->kind = ATT_KIND_VERIFY;
    snprintf(j->deployment_id, sizeof j->deployment_id, "%s", dep);
    if (tee != NULL)
        snprintf(j->tee_id, sizeof j->tee_id, "%s", tee);
    snprintf(j->actor, sizeof j->actor, "%s", c.sub);
    if (!platform)
        snprintf(j->scope_tenant, sizeof j->scope_tenant, "%s", c.tenant);
    json_decref(body);
    submit(svc, req, j);
}

static const luna_json_field challenge_fields[] = {
    {.name = "tee_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_TEE_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema challenge_schema = {challenge_fields, 1, NULL};

static void handle_challenge(luna_http_request *req, void *arg)
{
    att_service *svc = arg;
    json_t *body = NULL, *ans;
    const char *tee;
    uint8_t nonce[ATT_NONCE_LEN];
    char b64[LUNA_B64URL_ENC_LEN(ATT_NONCE_LEN)];
    int64_t exp = now_s() + ATT_CHALLENGE_TTL;

    if (parse_body(req, &challenge_schema, &body) != LUNA_OK)
        return;
    if (luna_json_get_string(body, "tee_id", &tee, NULL) != LUNA_OK || !att_tee_id_ok(tee)) {
        json_decref(body);
        luna_http_reply_error(req, 400, "bad_request", "malformed tee_id");
        return;
    }
    if (luna_random(nonce, sizeof nonce) != LUNA_OK ||
        att_db_put_nonce(svc->db, nonce, tee, exp) != LUNA_OK ||
        luna_b64url_encode(nonce, sizeof nonce, b64, sizeof b64) != LUNA_OK) {
        json_decref(body);
        luna_http_reply_error(req, 503, "storage_unavailable", "no nonce could be issued");
        return;
    }
    json_decref(body);
    ans = json_pack("{s:s, s:I}", "nonce", b64, "expires_at", (json_int_t)exp);
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
}

static const char *const evidence_types[] = {"sim", "sev-snp", "tdx", "sgx", "nitro", "tpm", NULL};
static const luna_json_field admit_fields[] = {
    {.name = "tee_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_TEE_ID_MAX, .pattern = LUNA_JSON_PAT_IDENT},
    {.name = "evidence", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_EVIDENCE_MAX},
    {.name = "evidence_type", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED,
     .min_len = 1, .max_len = 15, .one_of = evidence_types},
    {.name = "tls_spki", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = ATT_TLS_SPKI_MAX},
    {.name = "nonce", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = ATT_NONCE_LEN, .max_len = ATT_NONCE_LEN},
    {.name = "address", .type = LUNA_JSON_T_STRING, .min_len = 3, .max_len = ATT_ADDRESS_MAX,
     .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema admit_schema = {admit_fields, 6, NULL};

static void handle_admit(luna_http_request *req, void *arg)
{
    att_service *svc = arg;
    json_t *body = NULL;
    const char *s;
    size_t n;
    att_job *j = calloc(1, sizeof *j);

    if (j == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    if (parse_body(req, &admit_schema, &body) != LUNA_OK) {
        job_free(j);
        return;
    }
    j->kind = ATT_KIND_ADMIT;
    j->admit.evidence = malloc(ATT_EVIDENCE_MAX);
    if (j->admit.evidence == NULL ||
        luna_json_get_string(body, "tee_id", &s, NULL) != LUNA_OK || !att_tee_id_ok(s))
        goto bad;
    snprintf(j->admit.tee_id, sizeof j->admit.tee_id, "%s", s);
    snprintf(j->tee_id, sizeof j->tee_id, "%s", s);
    if (luna_json_get_string(body, "evidence_type", &s, NULL) != LUNA_OK)
        goto bad;
    snprintf(j->admit.evidence_type, sizeof j->admit.evidence_type, "%s", s);
    if (luna_json_get_b64url(body, "evidence", j->admit.evidence, ATT_EVIDENCE_MAX,
                             &j->admit.evidence_len) != LUNA_OK ||
        luna_json_get_b64url(body, "tls_spki", j->admit.tls_spki, sizeof j->admit.tls_spki,
                             &j->admit.tls_spki_len) != LUNA_OK ||
        luna_json_get_b64url(body, "nonce", j->admit.nonce, sizeof j->admit.nonce, &n) !=
            LUNA_OK ||
        n != ATT_NONCE_LEN)
        goto bad;
    if (luna_json_get_string(body, "address", &s, NULL) == LUNA_OK)
        snprintf(j->admit.address, sizeof j->admit.address, "%s", s);
    snprintf(j->actor, sizeof j->actor, "%s", luna_http_request_identity(req));
    json_decref(body);
    submit(svc, req, j);
    return;
bad:
    json_decref(body);
    job_free(j);
    luna_http_reply_error(req, 400, "bad_request", "malformed admission request");
}

/*
 * GET /v1/attestation/history: a tenant reads the rows attributed to it
 * (att_db.c, by the registry's tenants at appraisal time); the platform
 * admin reads every row.  A selector naming another tenant's TEE or
 * deployment gives an empty page, never its rows.
 */
static void handle_history(luna_http_request *req, void *arg)
{
    att_service *svc = arg;
    att_history_query q;
    att_caller c;
    json_t *items, *ans;
    int64_t next = 0;
    luna_err err;
    const char *scope;

    err = caller_token(svc, req, &c);
    if (err != LUNA_OK) {
        reply_token_err(req, err, "an IAM token for lunal://svc/attestation is required");
        return;
    }
    if (!luna_roles_allow(c.roles, LUNA_PERM_ATTESTATION_READ) &&
        !luna_roles_allow(c.roles, LUNA_PERM_PLATFORM_ADMIN)) {
        luna_http_reply_error(req, 403, "forbidden", "attestation.read is required");
        return;
    }
    scope = luna_roles_allow(c.roles, LUNA_PERM_PLATFORM_ADMIN) ? NULL : c.tenant;
    if (att_query_parse(luna_http_request_query(req), &q) != LUNA_OK) {
        luna_http_reply_error(req, 400, "bad_query",
                              "give exactly one of deployment_id or tee_id; limit 1..100");
        return;
    }
    items = json_array();
    if (items == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    err = q.tee_id[0] != '\0'
              ? att_db_history(svc->db, scope, "tee_id", q.tee_id, q.after, q.limit, items,
                               &next)
              : att_db_history(svc->db, scope, "deployment_id", q.deployment_id, q.after,
                               q.limit, items, &next);
    if (err != LUNA_OK) {
        json_decref(items);
        luna_http_reply_error(req, 503, "storage_unavailable", "history unavailable");
        return;
    }
    ans = json_pack("{s:o}", "items", items);
    if (ans != NULL && next > 0) {
        char cur[24];
        snprintf(cur, sizeof cur, "%lld", (long long)next);
        json_object_set_new(ans, "next", json_string(cur));
    }
    if (ans == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
}

/*
 * GET /v1/attestation/tees/{id}/report: what a client needs to verify the
 * TEE itself (docs/protocol.md, TEE selection): the newest signed report
 * of an active TEE with the evidence it was made from.  An expired report
 * is still answered; the caller judges freshness from expires_at.
 */
static void reply_current_report(att_service *svc, luna_http_request *req, const char *id)
{
    att_tee t;
    json_t *rec = NULL, *ans = NULL;
    luna_err err = att_db_get_tee(svc->db, id, &t);
    if (err == LUNA_OK && t.state != ATT_TEE_ACTIVE) {
        luna_http_reply_error(req, 409, "tee_not_active", "the TEE is not active");
        return;
    }
    if (err == LUNA_OK)
        err = att_db_latest_report(svc->db, id, &rec);
    if (err != LUNA_OK) {
        luna_http_reply_error(req, err == LUNA_ERR_NOT_FOUND ? 404 : 503,
                              err == LUNA_ERR_NOT_FOUND ? "unknown_tee" : "storage_unavailable",
                              "no current report for this TEE");
        return;
    }
    const json_t *a = json_object_get(rec, "attestation");
    const json_t *keys = json_object_get(a, "tee_keys");
    ans = json_pack("{s:s,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "tee_id", id, "deployment_id",
                    json_object_get(a, "deployment_id"), "evidence_type",
                    json_object_get(a, "evidence_type"), "report", json_object_get(rec, "report"),
                    "evidence", json_object_get(rec, "evidence"), "tee_kx_pk",
                    json_object_get(keys, "tee_kx_pk"), "tee_sign_pk",
                    json_object_get(keys, "tee_sign_pk"), "issued_at",
                    json_object_get(rec, "created_at"), "expires_at",
                    json_object_get(rec, "report_expires_at"));
    json_decref(rec);
    if (ans == NULL) {
        luna_http_reply_error(req, 500, "internal", "the stored record is incomplete");
        return;
    }
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
}

static void handle_tees(luna_http_request *req, void *arg)
{
    att_service *svc = arg;
    const char *path = luna_http_request_path(req);
    const char *rest = path + strlen("/v1/attestation/tees/");
    char id[ATT_TEE_ID_MAX + 1];
    const char *slash = strchr(rest, '/');
    size_t n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);

    if (n == 0 || n > ATT_TEE_ID_MAX) {
        luna_http_reply_error(req, 404, "not_found", "no such resource");
        return;
    }
    memcpy(id, rest, n);
    id[n] = '\0';
    if (!att_tee_id_ok(id)) {
        luna_http_reply_error(req, 404, "not_found", "no such resource");
        return;
    }
    /* A TEE's state and current report are the gateway's health probe,
       not tenant-scoped: a client (lunal://client/..., allowed here for
       reinstatement with its own operator token) never reads them. */
    const char *caller = luna_http_request_identity(req);
    if (strcmp(luna_http_request_method(req), "GET") == 0 &&
        (caller == NULL || strcmp(caller, ATT_GATEWAY_IDENTITY) != 0)) {
        luna_http_reply_error(req, 403, "forbidden",
                              "a TEE's state and report are read by the gateway only");
        return;
    }
    if (slash == NULL && strcmp(luna_http_request_method(req), "GET") == 0) {
        att_tee t;
        json_t *ans;
        char hex[2 * 64 + 1];
        luna_err err = att_db_get_tee(svc->db, id, &t);
        if (err != LUNA_OK) {
            luna_http_reply_error(req, err == LUNA_ERR_NOT_FOUND ? 404 : 503,
                                  err == LUNA_ERR_NOT_FOUND ? "unknown_tee" : "storage_unavailable",
                                  "no such admitted TEE");
            return;
        }
        if (luna_hex_encode(t.measurement, t.measurement_len, hex, sizeof hex) != LUNA_OK)
            hex[0] = '\0';
        ans = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "tee_id", t.tee_id,
                        "deployment_id", t.deployment_id, "state", att_tee_state_name(t.state),
                        "state_reason", t.state_reason, "mr_enclave", hex, "admitted_at",
                        (json_int_t)t.admitted_at, "last_ok", (json_int_t)t.last_ok,
                        "updated_at", (json_int_t)t.updated_at);
        luna_http_reply_json(req, ans != NULL ? 200 : 500, ans);
        json_decref(ans);
        return;
    }
    if (slash != NULL && strcmp(slash, "/report") == 0 &&
        strcmp(luna_http_request_method(req), "GET") == 0) {
        reply_current_report(svc, req, id);
        return;
    }
    if (slash != NULL && strcmp(slash, "/reinstate") == 0 &&
        strcmp(luna_http_request_method(req), "POST") == 0) {
        att_caller c;
        att_job *j;
        luna_err err = caller_token(svc, req, &c);
        if (err != LUNA_OK) {
            reply_token_err(req, err, "an operator token for lunal://svc/attestation is required");
            return;
        }
        /* tees.manage inside the operator's tenant; platform.admin anywhere. */
        bool platform = luna_roles_allow(c.roles, LUNA_PERM_PLATFORM_ADMIN);
        if (!platform && !luna_roles_allow(c.roles, LUNA_PERM_TEES_MANAGE)) {
            luna_http_reply_error(req, 403, "forbidden",
                                  "reinstatement needs tees.manage (the operator role)");
            return;
        }
        j = calloc(1, sizeof *j);
        if (j == NULL) {
            luna_http_reply_err(req, LUNA_ERR_NOMEM);
            return;
        }
        j->kind = ATT_KIND_REINSTATE;
        snprintf(j->tee_id, sizeof j->tee_id, "%s", id);
        snprintf(j->actor, sizeof j->actor, "%s", c.sub);
        if (!platform)
            snprintf(j->scope_tenant, sizeof j->scope_tenant, "%s", c.tenant);
        submit(svc, req, j);
        return;
    }
    luna_http_reply_error(req, 404, "not_found", "no such resource");
}

/*
 * /v1/attestation/deployments: POST registers a developer's signed
 * manifest (deployments.register for its own manifests, platform.admin
 * for any; the checks and the IAM, KMS and audit calls run on a worker,
 * att_deployments.c); GET lists configured and registered deployments
 * (deployments.read: the caller's tenant's registered ones; platform
 * admin: all).
 */
static const luna_json_field register_fields[] = {
    {.name = "manifest", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_MANIFEST_MAX_LEN, .pattern = LUNA_JSON_PAT_IDENT},
};
static const luna_json_schema register_schema = {register_fields, 1, NULL};

static void handle_deployments(luna_http_request *req, void *arg)
{
    att_service *svc = arg;
    att_caller c;
    json_t *body = NULL, *ans;
    const char *m;
    bool platform;
    luna_err err = caller_token(svc, req, &c);

    if (err != LUNA_OK) {
        reply_token_err(req, err, "an IAM token for lunal://svc/attestation is required");
        return;
    }
    platform = luna_roles_allow(c.roles, LUNA_PERM_PLATFORM_ADMIN);
    if (strcmp(luna_http_request_method(req), "GET") == 0) {
        if (!platform && !luna_roles_allow(c.roles, LUNA_PERM_DEPLOYMENTS_READ)) {
            luna_http_reply_error(req, 403, "forbidden", "deployments.read is required");
            return;
        }
        ans = att_deps_list(svc, platform ? NULL : c.tenant);
        if (ans == NULL) {
            luna_http_reply_err(req, LUNA_ERR_NOMEM);
            return;
        }
        luna_http_reply_json(req, 200, ans);
        json_decref(ans);
        return;
    }
    if (!platform && !luna_roles_allow(c.roles, LUNA_PERM_DEPLOYMENTS_REGISTER)) {
        luna_http_reply_error(req, 403, "forbidden", "deployments.register is required");
        return;
    }
    if (parse_body(req, &register_schema, &body) != LUNA_OK)
        return;
    att_job *j = calloc(1, sizeof *j);
    if (j == NULL || luna_json_get_string(body, "manifest", &m, NULL) != LUNA_OK ||
        (j->manifest = strdup(m)) == NULL) {
        job_free(j);
        json_decref(body);
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    json_decref(body);
    j->kind = ATT_KIND_REGISTER;
    snprintf(j->reg.sub, sizeof j->reg.sub, "%s", c.sub);
    snprintf(j->reg.tenant, sizeof j->reg.tenant, "%s", c.tenant);
    j->reg.platform = platform;
    snprintf(j->actor, sizeof j->actor, "%s", c.sub);
    submit(svc, req, j);
}

static bool ready_fn(void *arg)
{
    att_service *svc = arg;
    return !atomic_load(&svc->degraded);
}

bool att_service_ready(void *arg)
{
    return ready_fn(arg);
}

luna_err att_service_routes(att_service *svc, luna_http_server *srv)
{
    static const char *const any[] = {LUNA_HTTP_ALLOW_ANY_PLATFORM};
    static const char *const readers[] = {ATT_GATEWAY_IDENTITY, ATT_KMS_IDENTITY,
                                          "lunal://client/*"};
    static const char *const host[] = {ATT_HOST_IDENTITY};
    static const char *const operators[] = {ATT_GATEWAY_IDENTITY, "lunal://client/*"};
    const luna_http_route routes[] = {
        {LUNA_HTTP_GET, "/v1/attestation/jwks", any, 1, NULL, handle_jwks, svc},
        {LUNA_HTTP_POST, "/v1/attestation/verify", readers, 3, "application/json", handle_verify,
         svc},
        {LUNA_HTTP_POST, "/v1/attestation/admit/challenge", host, 1, "application/json",
         handle_challenge, svc},
        {LUNA_HTTP_POST, "/v1/attestation/admit", host, 1, "application/json", handle_admit, svc},
        {LUNA_HTTP_GET, "/v1/attestation/history", readers, 3, NULL, handle_history, svc},
        {LUNA_HTTP_GET | LUNA_HTTP_POST, "/v1/attestation/tees/*", operators, 2, NULL, handle_tees,
         svc},
        {LUNA_HTTP_GET | LUNA_HTTP_POST, "/v1/attestation/deployments", operators, 2, NULL,
         handle_deployments, svc},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        LUNA_GUARD(luna_http_server_add_route(srv, &routes[i]));
    return LUNA_OK;
}

luna_err att_service_start(att_service *svc, struct event_base *base)
{
    struct timeval one = {1, 0}, round = {(time_t)svc->s->interval, 0};
    unsigned started = 0;

    if (pipe2(svc->done_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return LUNA_ERR_IO;
    svc->ev_done = event_new(base, svc->done_pipe[0], EV_READ | EV_PERSIST, on_done, svc);
    svc->ev_beat = event_new(base, -1, EV_PERSIST, on_beat, svc);
    svc->ev_round = event_new(base, -1, EV_PERSIST, on_round, svc);
    if (svc->ev_done == NULL || svc->ev_beat == NULL || svc->ev_round == NULL ||
        event_add(svc->ev_done, NULL) != 0 || event_add(svc->ev_beat, &one) != 0 ||
        event_add(svc->ev_round, &round) != 0)
        return LUNA_ERR_NOMEM;
    atomic_store(&svc->loop_beat, now_s());
    svc->n_workers = svc->s->workers;
    for (unsigned i = 0; i < svc->n_workers; i++) {
        att_worker *w = &svc->workers[i];
        w->svc = svc;
        w->index = i;
        LUNA_GUARD(att_db_open(svc->s->storage_url, &w->db));
    }
    for (; started < svc->n_workers; started++)
        if (pthread_create(&svc->workers[started].thread, NULL, worker_main,
                           &svc->workers[started]) != 0)
            break;
    svc->n_started = started;
    if (started != svc->n_workers)
        return LUNA_ERR_INTERNAL;
    if (pthread_create(&svc->watchdog, NULL, watchdog_main, svc) != 0)
        return LUNA_ERR_INTERNAL;
    svc->watchdog_started = true;
    return LUNA_OK;
}

void att_service_stop(att_service *svc)
{
    pthread_mutex_lock(&svc->q_lock);
    svc->stopping = true;
    pthread_cond_broadcast(&svc->q_cond);
    pthread_mutex_unlock(&svc->q_lock);
    for (unsigned i = 0; i < svc->n_started; i++)
        pthread_join(svc->workers[i].thread, NULL);
    svc->n_started = 0;
    if (svc->watchdog_started)
        pthread_join(svc->watchdog, NULL);
    svc->watchdog_started = false;
    if (svc->done_pipe[0] > 0)
        on_done(svc->done_pipe[0], EV_READ, svc); /* answer what finished meanwhile */
    /* Work never started: answer it now, before the server goes. */
    while (svc->q_head != NULL) {
        att_job *j = svc->q_head;
        svc->q_head = j->next;
        if (j->req != NULL)
            luna_http_reply_error(j->req, 503, "shutting_down", "service stopping");
        j->req = NULL;
        job_free(j);
    }
    svc->q_tail = NULL;
    svc->q_len = 0;
    for (unsigned i = 0; i < svc->n_workers; i++) {
        luna_store_close(svc->workers[i].db);
        svc->workers[i].db = NULL;
    }
    if (svc->ev_done != NULL)
        event_free(svc->ev_done);
    if (svc->ev_beat != NULL)
        event_free(svc->ev_beat);
    if (svc->ev_round != NULL)
        event_free(svc->ev_round);
    svc->ev_done = svc->ev_beat = svc->ev_round = NULL;
    if (svc->done_pipe[0] > 0) {
        close(svc->done_pipe[0]);
        close(svc->done_pipe[1]);
    }
    svc->done_pipe[0] = svc->done_pipe[1] = -1;
}
