/*
 * sdk_request.c - the one-call secure request (luna_request), the
 * attestation check behind `lunal attestation verify`, and the plain API
 * call for the CLI.  Flow per attempt: token -> TEE selection -> the
 * client's own verification of that TEE -> one-time key (opened with the
 * client key) -> double envelope -> run -> result opened and its receipt
 * checked against this request and the attested TEE.  A one-time key and an
 * envelope belong to one TEE and one attempt; a retry starts over with a
 * new request id under the same idempotency key, after a pause that honours
 * the platform's Retry-After (capped) with jitter, inside the client's
 * timeout.  Must never send data to a TEE it has not verified, reuse a
 * one-time key, keep one after use, or wait without a bound.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/envelope.h"
#include "luna/hpke.h"
#include "luna/json.h"
#include "sdk_internal.h"

#define OTK_INFO_LABEL "lunal otk to client v1"
#define SEALED_OTK_LEN (LUNA_HPKE_ENC_LEN + SDK_KEY_LEN + LUNA_HPKE_TAG_LEN)
#define SDK_MAX_RESULT_ENVELOPE (LUNA_ENVELOPE_MAX_BODY + LUNA_ENVELOPE_MAX_HEADER_LEN)

/* A random id "<prefix><32 hex>". */
static luna_err random_id(const char *prefix, char *out, size_t cap)
{
    uint8_t r[16];
    char hex[33];

    LUNA_GUARD(luna_random(r, sizeof r));
    LUNA_GUARD(luna_hex_encode(r, sizeof r, hex, sizeof hex));
    if ((size_t)snprintf(out, cap, "%s%s", prefix, hex) >= cap)
        return LUNA_ERR_INTERNAL;
    return LUNA_OK;
}

/* ---- token ---- */

static const char *const svc_names[SDK_SVC__COUNT] = {"kms", "attestation", "audit", "iam"};

const char *sdk_svc_name(sdk_svc s)
{
    return (unsigned)s < SDK_SVC__COUNT ? svc_names[s] : NULL;
}

/* path equals prefix, or continues it with '/' or '?' ("/v1/keys/x"). */
static bool route_is(const char *path, size_t len, const char *prefix, bool sub_only)
{
    size_t n = strlen(prefix);
    if (len < n || memcmp(path, prefix, n) != 0)
        return false;
    if (len == n)
        return !sub_only;
    return path[n] == '/';
}

int sdk_downstream_for(const char *path)
{
    static const struct {
        const char *prefix;
        bool sub_only; /* only below prefix ("/v1/audit/..."), not prefix itself */
        sdk_svc svc;
    } table[] = {
        {"/v1/otk", false, SDK_SVC_KMS},
        {"/v1/keys", false, SDK_SVC_KMS},
        {"/v1/tees", false, SDK_SVC_KMS},
        {"/v1/deployments", false, SDK_SVC_KMS}, /* GET: the KMS registry (gw_relay.c) */
        {"/v1/attestation", true, SDK_SVC_ATTESTATION},
        {"/v1/audit", true, SDK_SVC_AUDIT},
        {"/v1/tenants", false, SDK_SVC_IAM},
        {"/v1/apikeys", false, SDK_SVC_IAM},
        {"/v1/clients", false, SDK_SVC_IAM},
        {"/v1/principals", false, SDK_SVC_IAM},
    };
    if (path == NULL)
        return -1;
    size_t len = strcspn(path, "?");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (route_is(path, len, table[i].prefix, table[i].sub_only))
            return (int)table[i].svc;
    return -1;
}

int sdk_downstream_for_request(const char *method, const char *path)
{
    /* Registration is the attestation service's (gw_relay.c); reading
       deployments stays with the KMS registry. */
    static const char reg[] = "/v1/deployments";
    if (method != NULL && path != NULL && strcmp(method, "POST") == 0 &&
        strcspn(path, "?") == sizeof reg - 1 && memcmp(path, reg, sizeof reg - 1) == 0)
        return (int)SDK_SVC_ATTESTATION;
    return sdk_downstream_for(path);
}

void sdk_tokens_clear(luna_client *c)
{
    if (c->token != NULL) {
        luna_wipe(c->token, c->token_len);
        free(c->token);
    }
    c->token = NULL;
    c->token_len = 0;
    c->token_exp = 0;
    for (size_t i = 0; i < SDK_SVC__COUNT; i++) {
        if (c->down_token[i] != NULL) {
            luna_wipe(c->down_token[i], c->down_len[i]);
            free(c->down_token[i]);
        }
        c->down_token[i] = NULL;
        c->down_len[i] = 0;
    }
}

/* A token that can sit in a header: 1..SDK_MAX_TOKEN visible ASCII. */
static bool token_text_ok(const char *tok, size_t len)
{
    if (tok == NULL || len == 0 || len > SDK_MAX_TOKEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f)
            return false;
    return true;
}

static char *token_dup(const char *tok, size_t len)
{
    char *p = malloc(len + 1);
    if (p != NULL) {
        memcpy(p, tok, len);
        p[len] = 0;
    }
    return p;
}

/* The answer's token texts are wiped before the tree is freed. */
static void wipe_answer_tokens(json_t *ans)
{
    const char *name;
    json_t *v = json_object_get(ans, "token");
    if (json_is_string(v))
        luna_wipe((void *)(uintptr_t)json_string_value(v), json_string_length(v));
    json_object_foreach(json_object_get(ans, "downstream"), name, v)
    {
        if (json_is_string(v))
            luna_wipe((void *)(uintptr_t)json_string_value(v), json_string_length(v));
    }
}

luna_err sdk_token_answer_apply(luna_client *c, const json_t *ans, int64_t now, char *why)
{
    const char *tok = NULL;
    size_t tok_len = 0;
    int64_t exp = 0;
    luna_err err;

    if (luna_json_get_string(ans, "token", &tok, &tok_len) != LUNA_OK ||
        !token_text_ok(tok, tok_len)) {
        sdk_why(why, "the token answer has no usable token");
        return LUNA_ERR_FORMAT;
    }
    /* Downstream tokens: only the services of the route table, each a
       header-safe string; any other member is ignored (an older IAM sends
       none, and a relayed route then gets the gateway's 401). */
    const json_t *down = json_object_get(ans, "downstream");
    if (down != NULL && !json_is_object(down)) {
        sdk_why(why, "the token answer's downstream member is not an object");
        return LUNA_ERR_FORMAT;
    }
    const char *dtok[SDK_SVC__COUNT] = {NULL};
    size_t dlen[SDK_SVC__COUNT] = {0};
    for (size_t i = 0; i < SDK_SVC__COUNT; i++) {
        const json_t *v = json_object_get(down, svc_names[i]);
        if (v == NULL)
            continue;
        if (!json_is_string(v) || !token_text_ok(json_string_value(v), json_string_length(v))) {
            sdk_why(why, "the token answer holds an unusable %s token", svc_names[i]);
            return LUNA_ERR_FORMAT;
        }
        dtok[i] = json_string_value(v);
        dlen[i] = json_string_length(v);
    }
    if (luna_json_get_int(ans, "expires_at", &exp) != LUNA_OK || exp <= now)
        exp = now + 60; /* unknown lifetime: renew soon rather than late */
    pthread_mutex_lock(&c->lock);
    sdk_tokens_clear(c);
    err = LUNA_OK;
    c->token = token_dup(tok, tok_len);
    if (c->token == NULL)
        err = LUNA_ERR_NOMEM;
    c->token_len = tok_len;
    for (size_t i = 0; err == LUNA_OK && i < SDK_SVC__COUNT; i++) {
        if (dtok[i] == NULL)
            continue;
        c->down_token[i] = token_dup(dtok[i], dlen[i]);
        c->down_len[i] = dlen[i];
        if (c->down_token[i] == NULL)
            err = LUNA_ERR_NOMEM;
    }
    if (err != LUNA_OK)
        sdk_tokens_clear(c);
    else
        c->token_exp = exp;
    pthread_mutex_unlock(&c->lock);
    return err;
}

static luna_err fetch_token(luna_client *c, char *why)
{
    json_t *body = json_pack("{s:s}", "tenant_id", c->tenant), *ans = NULL;
    sdk_http_resp resp;
    char key[SDK_MAX_API_KEY + 1];
    int64_t now = (int64_t)time(NULL);
    char *text = NULL;
    sdk_http_req rq = {.method = "POST", .path = "/v1/auth/token",
                       .content_type = "application/json"};
    luna_err err;

    memset(&resp, 0, sizeof resp);
    if (body == NULL)
        return LUNA_ERR_NOMEM;
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return LUNA_ERR_NOMEM;
    if (c->api_key != NULL) {
        size_t n = luna_secret_len(c->api_key);
        memcpy(key, luna_secret_cdata(c->api_key), n);
        key[n] = 0;
        rq.api_key = key;
    }
    rq.body = (const uint8_t *)text;
    rq.body_len = strlen(text);
    err = sdk_http_do(c, &rq, &resp, why);
    luna_wipe(key, sizeof key);
    free(text);
    if (err != LUNA_OK)
        goto out;
    if (resp.status != 200) {
        err = sdk_http_status_err(&resp, "authentication", why);
        if (resp.status == 401 || resp.status == 403)
            err = resp.status == 401 ? LUNA_ERR_UNAUTHENTICATED : LUNA_ERR_PERMISSION;
        goto out;
    }
    LUNA_TRY(sdk_json_load(resp.body, resp.len, &ans, why), out);
    err = sdk_token_answer_apply(c, ans, now, why);
out:
    wipe_answer_tokens(ans);
    json_decref(ans);
    sdk_http_resp_free(&resp);
    return err;
}

luna_err sdk_token_ensure(luna_client *c, char *why)
{
    bool fresh;

    pthread_mutex_lock(&c->lock);
    fresh = c->token != NULL && (int64_t)time(NULL) + SDK_TOKEN_MARGIN < c->token_exp;
    pthread_mutex_unlock(&c->lock);
    if (fresh)
        return LUNA_OK;
    return fetch_token(c, why);
}

static void token_drop(luna_client *c)
{
    pthread_mutex_lock(&c->lock);
    c->token_exp = 0;
    pthread_mutex_unlock(&c->lock);
}

/* An authenticated call; one renewal when the token was refused. */
static luna_err authed(luna_client *c, const sdk_http_req *rq, sdk_http_resp *resp, char *why)
{
    luna_err err;

    for (int round = 0; round < 2; round++) {
        LUNA_GUARD(sdk_token_ensure(c, why));
        err = sdk_http_do(c, rq, resp, why);
        if (err != LUNA_OK || resp->status != 401 || round == 1)
            return err;
        sdk_http_resp_free(resp);
        token_drop(c);
    }
    return LUNA_ERR_INTERNAL;
}

static luna_err authed_json(luna_client *c, const char *path, json_t *body, sdk_http_resp *resp,
                            char *why)
{
    char *text = json_dumps(body, JSON_COMPACT);
    sdk_http_req rq = {.method = "POST", .path = path, .content_type = "application/json",
                       .auth = true};
    luna_err err;

    if (text == NULL)
        return LUNA_ERR_NOMEM;
    rq.body = (const uint8_t *)text;
    rq.body_len = strlen(text);
    err = authed(c, &rq, resp, why);
    free(text);
    return err;
}

/* ---- one attempt ---- */

typedef struct attempt {
    char deployment[LUNAL_ID_MAX + 1];
    char tee_id[LUNAL_ID_MAX + 1];
    char request_id[LUNAL_ID_MAX + 1];
    char otk_id[LUNAL_ID_MAX + 1];
    uint8_t kx[SDK_KEY_LEN];
    uint8_t sg[SDK_KEY_LEN];
    uint8_t otk[SDK_KEY_LEN];
    sdk_tee_verdict verdict;
    bool retryable;
    long status;          /* the refusing answer's HTTP status */
    unsigned retry_after; /* its Retry-After in seconds (0: none) */
} attempt;

/* A retryable refusal: 503 (what the caller says qualifies) or 429. */
static void mark_retry(attempt *a, const sdk_http_resp *resp, bool unavailable_ok)
{
    a->retryable = (resp->status == 503 && unavailable_ok) || resp->status == 429;
    a->status = resp->status;
    a->retry_after = resp->retry_after;
}

static bool id_ok(const char *s, size_t n)
{
    if (n == 0 || n > LUNAL_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static luna_err get_id(const json_t *o, const char *name, char *out, char *why)
{
    const char *s = NULL;
    size_t n = 0;

    if (luna_json_get_string(o, name, &s, &n) != LUNA_OK || !id_ok(s, n)) {
        sdk_why(why, "the platform's answer has no valid %s", name);
        return LUNA_ERR_FORMAT;
    }
    memcpy(out, s, n);
    out[n] = 0;
    return LUNA_OK;
}

static luna_err get_key(const json_t *o, const char *name, uint8_t out[SDK_KEY_LEN], char *why)
{
    size_t n = 0;

    if (luna_json_get_b64url(o, name, out, SDK_KEY_LEN, &n) != LUNA_OK || n != SDK_KEY_LEN) {
        sdk_why(why, "the platform's answer has no valid %s", name);
        return LUNA_ERR_FORMAT;
    }
    return LUNA_OK;
}

static bool job_in_manifest(const luna_manifest *m, const char *job)
{
    for (size_t i = 0; i < m->n_jobs; i++)
        if (strcmp(m->jobs[i], job) == 0)
            return true;
    return false;
}

/* Step 2-4: a TEE chosen by the gateway, then verified here. */
static luna_err select_and_verify(luna_client *c, const char *deployment, const char *job,
                                  attempt *a, char *why)
{
    json_t *body = NULL, *ans = NULL;
    sdk_http_resp resp;
    const char *man = NULL;
    size_t man_len = 0, ev_len = 0, col_len = 0;
    uint8_t *ev = NULL, *col = NULL;
    char type[16];
    sdk_tee_input in;
    luna_err err;

    memset(&resp, 0, sizeof resp);
    body = deployment != NULL ? json_pack("{s:s,s:s}", "job", job, "deployment_id", deployment)
                              : json_pack("{s:s}", "job", job);
    if (body == NULL)
        return LUNA_ERR_NOMEM;
    err = authed_json(c, "/v1/tees/select", body, &resp, why);
    json_decref(body);
    if (err != LUNA_OK)
        return err;
    if (resp.status != 200) {
        err = sdk_http_status_err(&resp, "TEE selection", why);
        mark_retry(a, &resp, true);
        goto out;
    }
    LUNA_TRY(sdk_json_load(resp.body, resp.len, &ans, why), out);
    LUNA_TRY(get_id(ans, "tee_id", a->tee_id, why), out);
    LUNA_TRY(get_key(ans, "tee_kx_pk", a->kx, why), out);
    LUNA_TRY(get_key(ans, "tee_sign_pk", a->sg, why), out);
    if (deployment != NULL)
        snprintf(a->deployment, sizeof a->deployment, "%s", deployment);
    else if (get_id(ans, "deployment_id", a->deployment, why) != LUNA_OK) {
        if (c->n_pins != 1) {
            sdk_why(why, "no deployment named: set default_deployment in the client config");
            err = LUNA_ERR_CONFIG;
            goto out;
        }
        snprintf(a->deployment, sizeof a->deployment, "%s", c->pins[0].deployment_id);
    }
    if (sdk_json_str(ans, "evidence_type", type, sizeof type) != LUNA_OK ||
        luna_json_get_string(ans, "manifest", &man, &man_len) != LUNA_OK) {
        sdk_why(why, "the TEE selection answer lacks the evidence type or the manifest");
        err = LUNA_ERR_FORMAT;
        goto out;
    }
    ev = malloc(LUNA_VERIFY_EVIDENCE_MAX);
    col = malloc(SDK_MAX_COLLATERAL);
    if (ev == NULL || col == NULL) {
        err = LUNA_ERR_NOMEM;
        goto out;
    }
    if (luna_json_get_b64url(ans, "evidence", ev, LUNA_VERIFY_EVIDENCE_MAX, &ev_len) != LUNA_OK ||
        ev_len == 0) {
        sdk_why(why, "the TEE selection answer carries no usable evidence");
        err = LUNA_ERR_FORMAT;
        goto out;
    }
    if (luna_json_get_b64url(ans, "collateral", col, SDK_MAX_COLLATERAL, &col_len) != LUNA_OK)
        col_len = 0;
    memset(&in, 0, sizeof in);
    in.deployment_id = a->deployment;
    in.tee_id = a->tee_id;
    in.manifest = man;
    in.manifest_len = man_len;
    in.evidence_type = type;
    in.evidence = ev;
    in.evidence_len = ev_len;
    in.tee_kx_pk = a->kx;
    in.tee_sign_pk = a->sg;
    in.collateral = col_len > 0 ? col : NULL;
    in.collateral_len = col_len;
    err = sdk_verify_tee(c, &in, &a->verdict, why);
    if (err != LUNA_OK) {
        char inner[LUNAL_REASON_MAX];
        snprintf(inner, sizeof inner, "%s", why != NULL ? why : "");
        sdk_why(why, "attestation of TEE %s refused: %s", a->tee_id, inner);
        goto out;
    }
    if (!job_in_manifest(&a->verdict.manifest, job)) {
        sdk_why(why, "deployment %s does not offer job %s", a->deployment, job);
        err = LUNA_ERR_VERIFY;
    }
out:
    free(ev);
    free(col);
    json_decref(ans);
    sdk_http_resp_free(&resp);
    return err;
}

/* Opens sealed_otk (docs/protocol.md) with the client's key. */
static luna_err open_sealed_otk(const luna_client *c, const attempt *a, const uint8_t *sealed,
                                uint8_t otk[SDK_KEY_LEN])
{
    uint8_t info[sizeof OTK_INFO_LABEL - 1 + 3 * (1 + LUNAL_ID_MAX)];
    luna_wbuf w;
    luna_hpke_params p;
    luna_hpke_ctx *ctx = NULL;
    luna_err err;

    luna_wbuf_init(&w, info, sizeof info);
    LUNA_GUARD(luna_write_bytes(&w, OTK_INFO_LABEL, sizeof OTK_INFO_LABEL - 1));
    LUNA_GUARD(luna_write_u8(&w, (uint8_t)strlen(a->otk_id)));
    LUNA_GUARD(luna_write_bytes(&w, a->otk_id, strlen(a->otk_id)));
    LUNA_GUARD(luna_write_u8(&w, (uint8_t)strlen(a->tee_id)));
    LUNA_GUARD(luna_write_bytes(&w, a->tee_id, strlen(a->tee_id)));
    LUNA_GUARD(luna_write_u8(&w, (uint8_t)strlen(a->request_id)));
    LUNA_GUARD(luna_write_bytes(&w, a->request_id, strlen(a->request_id)));
    memset(&p, 0, sizeof p);
    p.suite.kem_id = LUNA_HPKE_KEM_X25519_SHA256;
    p.suite.kdf_id = LUNA_HPKE_KDF_HKDF_SHA256;
    p.suite.aead_id = LUNA_HPKE_AEAD_AES256GCM;
    p.mode = LUNA_HPKE_MODE_BASE;
    p.info = info;
    p.info_len = w.len;
    LUNA_GUARD(luna_hpke_setup_receiver(&p, luna_secret_cdata(c->client_sk), sealed, NULL, &ctx));
    err = luna_hpke_open(ctx, NULL, 0, sealed + LUNA_HPKE_ENC_LEN,
                         SEALED_OTK_LEN - LUNA_HPKE_ENC_LEN, otk);
    luna_hpke_ctx_free(ctx);
    return err;
}

/* Step 4: the one-time key from the KMS, sealed to this client's key. */
static luna_err get_otk(luna_client *c, const char *job, attempt *a, char *why)
{
    char pk[LUNA_B64URL_ENC_LEN(SDK_KEY_LEN)];
    uint8_t sealed[SEALED_OTK_LEN + 1];
    size_t n = 0;
    json_t *body = NULL, *ans = NULL;
    sdk_http_resp resp;
    luna_err err;

    memset(&resp, 0, sizeof resp);
    LUNA_GUARD(luna_b64url_encode(c->client_pk, SDK_KEY_LEN, pk, sizeof pk));
    body = json_pack("{s:s,s:s,s:s,s:s}", "tee_id", a->tee_id, "job", job, "request_id",
                     a->request_id, "client_pk", pk);
    if (body == NULL)
        return LUNA_ERR_NOMEM;
    err = authed_json(c, "/v1/otk", body, &resp, why);
    json_decref(body);
    if (err != LUNA_OK)
        return err;
    if (resp.status != 200) {
        err = sdk_http_status_err(&resp, "the KMS (one-time key)", why);
        mark_retry(a, &resp, true);
        goto out;
    }
    LUNA_TRY(sdk_json_load(resp.body, resp.len, &ans, why), out);
    LUNA_TRY(get_id(ans, "otk_id", a->otk_id, why), out);
    if (luna_json_get_b64url(ans, "sealed_otk", sealed, sizeof sealed, &n) != LUNA_OK ||
        n != SEALED_OTK_LEN) {
        sdk_why(why, "the KMS answer has no valid sealed_otk");
        err = LUNA_ERR_FORMAT;
        goto out;
    }
    err = open_sealed_otk(c, a, sealed, a->otk);
    if (err != LUNA_OK) {
        sdk_why(why, "the one-time key does not open with this client's key (not bound to it)");
        err = LUNA_ERR_VERIFY;
    }
out:
    luna_wipe(sealed, sizeof sealed);
    json_decref(ans);
    sdk_http_resp_free(&resp);
    return err;
}

static void fill_receipt(luna_result *r, const attempt *a, const luna_receipt *rc)
{
    luna_receipt_info *ri = &r->receipt;

    snprintf(ri->tenant, sizeof ri->tenant, "%s", rc->tenant);
    snprintf(ri->job, sizeof ri->job, "%s", rc->job);
    snprintf(ri->tee_id, sizeof ri->tee_id, "%s", rc->tee_id);
    snprintf(ri->request_id, sizeof ri->request_id, "%s", rc->request_id);
    snprintf(ri->deployment_id, sizeof ri->deployment_id, "%s", a->deployment);
    if (luna_hex_encode(rc->measurement, rc->measurement_len, ri->measurement_hex,
                        sizeof ri->measurement_hex) != LUNA_OK)
        ri->measurement_hex[0] = 0;
    if (luna_hex_encode(a->sg, SDK_KEY_LEN, ri->tee_sign_pk_hex, sizeof ri->tee_sign_pk_hex) !=
        LUNA_OK)
        ri->tee_sign_pk_hex[0] = 0;
    if (luna_hex_encode(rc->result_hash, sizeof rc->result_hash, ri->result_sha256_hex,
                        sizeof ri->result_sha256_hex) != LUNA_OK)
        ri->result_sha256_hex[0] = 0;
    ri->simulated = a->verdict.vr.claims.simulated;
}

/* Steps 4-8 for one TEE. */
static luna_err run_once(luna_client *c, const char *deployment, const char *job,
                         const uint8_t *data, size_t len, luna_result *r, attempt *a, char *why)
{
    luna_wbuf env;
    luna_envelope_seal_params sp;
    luna_result_open_params op;
    luna_receipt rc;
    sdk_http_resp resp;
    sdk_http_req rq;
    size_t env_len = 0, out_len = 0;
    uint8_t *out = NULL;
    luna_err err;

    memset(&resp, 0, sizeof resp);
    memset(&env, 0, sizeof env);
    LUNA_GUARD(select_and_verify(c, deployment, job, a, why));
    LUNA_GUARD(random_id("req_", a->request_id, sizeof a->request_id));
    LUNA_TRY(get_otk(c, job, a, why), done);

    memset(&sp, 0, sizeof sp);
    sp.ids.tenant = c->tenant;
    sp.ids.job = job;
    sp.ids.tee_id = a->tee_id;
    sp.ids.request_id = a->request_id;
    sp.client_sk = luna_secret_cdata(c->client_sk);
    sp.tee_pk = a->kx;
    sp.otk = a->otk;
    LUNA_TRY(luna_envelope_sealed_len(&sp.ids, len, &env_len), done);
    LUNA_TRY(luna_wbuf_init_alloc(&env, env_len), done);
    LUNA_TRY(luna_envelope_seal(&sp, data, len, &env), done);

    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.path = "/v1/jobs/run";
    rq.content_type = "application/octet-stream";
    rq.body = env.data;
    rq.body_len = env.len;
    rq.auth = true;
    rq.idempotency_key = r->idempotency_key;
    rq.otk_id = a->otk_id;
    rq.request_id = a->request_id;
    rq.max_answer = SDK_MAX_RESULT_ENVELOPE;
    LUNA_TRY(authed(c, &rq, &resp, why), done);
    if (resp.status != 200) {
        err = sdk_http_status_err(&resp, "the job run", why);
        mark_retry(a, &resp, strcmp(resp.error_code, "tee_unavailable") == 0);
        goto done;
    }

    memset(&op, 0, sizeof op);
    op.expected.tenant = c->tenant;
    op.expected.job = job;
    op.expected.tee_id = a->tee_id;
    op.expected.request_id = a->request_id;
    op.client_sk = luna_secret_cdata(c->client_sk);
    op.tee_pk = a->kx;
    op.tee_sign_pk = a->sg;
    op.otk = a->otk;
    op.expected_measurement = a->verdict.manifest.mr_enclave;
    op.expected_measurement_len = a->verdict.manifest.mr_enclave_len;
    err = luna_result_open(resp.body, resp.len, &op, &rc, &out, &out_len);
    if (err != LUNA_OK) {
        sdk_why(why, "the result does not verify (%s): not sealed and signed by the attested "
                     "TEE for this request", luna_errname(err));
        err = LUNA_ERR_VERIFY;
        goto done;
    }
    r->data = malloc(out_len > 0 ? out_len : 1);
    if (r->data == NULL) {
        err = LUNA_ERR_NOMEM;
        goto done;
    }
    if (out_len > 0)
        memcpy(r->data, out, out_len);
    r->len = out_len;
    fill_receipt(r, a, &rc);
done:
    luna_wipe(a->otk, sizeof a->otk);
    luna_wbuf_free(&env);
    sdk_http_resp_free(&resp);
    return err;
}

/* ---- the pause between attempts ---- */

bool sdk_retry_wait_ms(long status, unsigned retry_after, unsigned retry, uint32_t rnd,
                       unsigned *wait_ms)
{
    unsigned span = SDK_BACKOFF_MAX_MS;

    if (wait_ms == NULL)
        return false;
    *wait_ms = 0;
    if (retry_after > SDK_RETRY_AFTER_MAX_S) {
        if (status == 429)
            return false;
        retry_after = SDK_RETRY_AFTER_MAX_S;
    }
    /* retry < 5 keeps the shift far from overflow; past it the cap holds. */
    if (retry < 5u && (SDK_BACKOFF_BASE_MS << retry) < SDK_BACKOFF_MAX_MS)
        span = SDK_BACKOFF_BASE_MS << retry;
    *wait_ms = retry_after * 1000u + span / 2u + rnd % (span / 2u + 1u);
    return true;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Adds why the request stops retrying to the last attempt's reason. */
static void reason_append(luna_result *r, const char *what, unsigned n, const char *unit)
{
    char prev[LUNAL_REASON_MAX];

    snprintf(prev, sizeof prev, "%s", r->reason[0] != 0 ? r->reason : luna_strerror(r->err));
    sdk_why(r->reason, "%s; not retried: %s %u %s", prev, what, n, unit);
}

/*
 * Whether attempt number `done` (1-based) may be followed by another, and
 * the pause before it.  The request as a whole stays inside the client's
 * timeout (from t0): a pause that would end past it is not started.
 */
static bool pause_before_retry(const luna_client *c, luna_result *r, const attempt *a,
                               unsigned done, uint64_t t0)
{
    uint32_t rnd = 0;
    unsigned wait = 0;

    if (!a->retryable || done >= c->max_attempts)
        return false;
    if (luna_random(&rnd, sizeof rnd) != LUNA_OK)
        rnd = 0; /* jitter is not a secret: its lower bound is still safe */
    if (!sdk_retry_wait_ms(a->status, a->retry_after, done - 1u, rnd, &wait)) {
        reason_append(r, "the platform asks to wait longer than the SDK does (Retry-After)",
                      a->retry_after, "s");
        return false;
    }
    uint64_t spent = mono_ms() - t0;
    if (spent >= c->timeout_ms || (uint64_t)wait > c->timeout_ms - spent) {
        reason_append(r, "the next attempt would start past the client's timeout (timeout_ms)",
                      c->timeout_ms, "ms");
        return false;
    }
    sleep_ms(wait);
    return true;
}

luna_result *luna_request_deployment(luna_client *c, const char *deployment_id, const char *job,
                                     const void *data, size_t len)
{
    luna_result *r = calloc(1, sizeof *r);
    attempt *a = NULL;
    const char *dep = deployment_id;
    size_t jl = job != NULL ? strlen(job) : 0;

    if (r == NULL)
        return NULL;
    if (c == NULL || job == NULL || !id_ok(job, jl) || (data == NULL && len > 0) ||
        len > LUNAL_MAX_RESULT) {
        r->err = LUNA_ERR_INVALID_ARG;
        sdk_why(r->reason, "client, a job id (1..64 printable) and data up to 64 MiB are required");
        return r;
    }
    if (dep == NULL && c->default_deployment[0] != 0)
        dep = c->default_deployment;
    r->err = random_id("idem_", r->idempotency_key, sizeof r->idempotency_key);
    a = calloc(1, sizeof *a);
    if (r->err != LUNA_OK || a == NULL) {
        r->err = a == NULL ? LUNA_ERR_NOMEM : r->err;
        sdk_why(r->reason, "%s", luna_strerror(r->err));
        free(a);
        return r;
    }
    uint64_t t0 = mono_ms();
    for (unsigned i = 0; i < c->max_attempts; i++) {
        memset(a, 0, sizeof *a);
        r->attempts = i + 1;
        r->reason[0] = 0;
        r->err = run_once(c, dep, job, data, len, r, a, r->reason);
        if (r->err == LUNA_OK || !pause_before_retry(c, r, a, i + 1, t0))
            break;
    }
    if (r->err != LUNA_OK && r->reason[0] == 0)
        sdk_why(r->reason, "%s", luna_strerror(r->err));
    luna_wipe(a, sizeof *a);
    free(a);
    return r;
}

luna_result *luna_request(luna_client *c, const char *job, const void *data, size_t len)
{
    return luna_request_deployment(c, NULL, job, data, len);
}

void luna_result_free(luna_result *r)
{
    if (r == NULL)
        return;
    if (r->data != NULL) {
        luna_wipe(r->data, r->len);
        free(r->data);
    }
    luna_wipe(r, sizeof *r);
    free(r);
}

/* ---- attestation verification ---- */

luna_err luna_attestation_verify(luna_client *c, const char *deployment_id, const char *tee_id,
                                 luna_attestation_report *report, char **raw_json, char *why)
{
    json_t *body = NULL, *ans = NULL;
    sdk_http_resp resp;
    luna_err err;

    if (why != NULL)
        why[0] = 0;
    if (raw_json != NULL)
        *raw_json = NULL;
    if (c == NULL || report == NULL || deployment_id == NULL ||
        !id_ok(deployment_id, strlen(deployment_id)) ||
        (tee_id != NULL && !id_ok(tee_id, strlen(tee_id)))) {
        sdk_why(why, "a client, a deployment id and a report are required");
        return LUNA_ERR_INVALID_ARG;
    }
    memset(report, 0, sizeof *report);
    memset(&resp, 0, sizeof resp);
    body = tee_id != NULL
               ? json_pack("{s:s,s:s}", "deployment_id", deployment_id, "tee_id", tee_id)
               : json_pack("{s:s}", "deployment_id", deployment_id);
    if (body == NULL)
        return LUNA_ERR_NOMEM;
    err = authed_json(c, "/v1/attestation/verify", body, &resp, why);
    json_decref(body);
    if (err != LUNA_OK)
        return err;
    /* A refusal still carries the report shape (status "refused"), with
       whatever HTTP status; an error body without it is a failed call. */
    if (sdk_json_load(resp.body, resp.len, &ans, why) != LUNA_OK ||
        json_object_get(ans, "attestation") == NULL) {
        err = resp.status == 200 ? LUNA_ERR_FORMAT
                                 : sdk_http_status_err(&resp, "attestation verification", why);
        if (resp.status == 200)
            sdk_why(why, "the attestation answer is not a report");
        goto out;
    }
    err = sdk_attestation_evaluate(c, deployment_id, ans, 0, report);
    if (err != LUNA_OK) {
        sdk_why(why, "the attestation answer lacks fields of the report shape");
        goto out;
    }
    if (raw_json != NULL) {
        *raw_json = strndup((const char *)resp.body, resp.len);
        if (*raw_json == NULL)
            err = LUNA_ERR_NOMEM;
    }
out:
    json_decref(ans);
    sdk_http_resp_free(&resp);
    return err;
}

/* ---- plain calls ---- */

luna_err luna_client_call(luna_client *c, const char *method, const char *path, const char *body,
                          long *status, char **answer, size_t *answer_len, char *why)
{
    sdk_http_req rq;
    sdk_http_resp resp;
    luna_err err;

    if (why != NULL)
        why[0] = 0;
    if (c == NULL || method == NULL || path == NULL || status == NULL || answer == NULL ||
        strncmp(path, "/v1/", 4) != 0 ||
        (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 &&
         strcmp(method, "DELETE") != 0 && strcmp(method, "PUT") != 0)) {
        sdk_why(why, "method GET/POST/PUT/DELETE and a /v1/ path are required");
        return LUNA_ERR_INVALID_ARG;
    }
    *answer = NULL;
    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.path = path;
    rq.auth = true;
    rq.max_answer = SDK_MAX_CALL_ANSWER;
    if (body != NULL) {
        rq.content_type = "application/json";
        rq.body = (const uint8_t *)body;
        rq.body_len = strlen(body);
    }
    err = authed(c, &rq, &resp, why);
    if (err != LUNA_OK)
        return err;
    *status = resp.status;
    *answer = (char *)resp.body; /* NUL-terminated by the sink */
    if (answer_len != NULL)
        *answer_len = resp.len;
    return LUNA_OK;
}
