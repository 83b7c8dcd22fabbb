/*
 * sdk_stub_gateway.c - the test stand-in for the platform behind the
 * gateway (sdk_stub_gateway.h).  It plays the honest platform of
 * docs/protocol.md with the fixture's keys: tokens, TEE selection with
 * evidence and manifest, one-time keys sealed to the client key, envelope
 * open, the job ("upper": ASCII upper case; "sha256"), and the signed
 * result.  Test-only; it keeps OTKs in a small table.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/envelope.h"
#include "luna/hpke.h"
#include "luna/http.h"
#include "luna/json.h"
#include "luna_test.h"
#include "sdk_stub_gateway.h"

#define MAX_OTK 64

typedef struct otk_rec {
    char otk_id[40], tee_id[16], job[65], request_id[65];
    uint8_t otk[32], client_pk[32];
    bool used;
} otk_rec;

typedef struct priv {
    struct event_base *base;
    luna_http_server *srv;
    pthread_t th;
    otk_rec otks[MAX_OTK];
    int n_otk;
    int next_tee;
} priv;

static json_t *body_json(luna_http_request *req)
{
    const uint8_t *d;
    size_t n;

    if (luna_http_request_body(req, &d, &n) != LUNA_OK)
        return NULL;
    return json_loadb((const char *)d, n, JSON_REJECT_DUPLICATES, NULL);
}

static bool authed(luna_http_request *req)
{
    const char *a = luna_http_request_header(req, "Authorization");
    return a != NULL && strcmp(a, "Bearer tok-stub-1") == 0;
}

static void h_token(luna_http_request *req, void *arg)
{
    const char *a = luna_http_request_header(req, "Authorization");
    json_t *b = body_json(req), *ans;
    const char *t = json_string_value(json_object_get(b, "tenant_id"));
    (void)arg;

    if (a == NULL || strcmp(a, "ApiKey " STUB_API_KEY) != 0 || t == NULL ||
        strcmp(t, "acme") != 0) {
        json_decref(b);
        luna_http_reply_error(req, 401, "unauthenticated", "bad credentials");
        return;
    }
    ans = json_pack("{s:s,s:I}", "token", "tok-stub-1", "expires_at",
                    (json_int_t)time(NULL) + 300);
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
    json_decref(b);
}

static void h_select(luna_http_request *req, void *arg)
{
    stub_gw *g = arg;
    priv *p = g->priv;
    sdk_fx *fx = g->fx;
    char ev[LUNA_B64URL_ENC_LEN(LUNA_SIM_EVIDENCE_MAX)], kx[48], sg[48],
        col[LUNA_B64URL_ENC_LEN(LUNA_SIM_TCB_MAX)];
    json_t *ans;
    const char *tee;

    if (!authed(req)) {
        luna_http_reply_error(req, 401, "unauthenticated", "token required");
        return;
    }
    pthread_mutex_lock(&g->lock);
    if (g->selects >= 0 && g->selects < 8) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        g->select_ms[g->selects] = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    }
    g->selects++;
    int busy = g->busy_left != 0 ? g->busy_status : 0;
    unsigned after = g->busy_retry_after;
    if (busy != 0 && g->busy_left > 0)
        g->busy_left--;
    if (busy != 0) {
        char v[16];
        pthread_mutex_unlock(&g->lock);
        (void)snprintf(v, sizeof v, "%u", after);
        if (after > 0 && luna_http_response_header(req, "Retry-After", v) != LUNA_OK) {
            luna_http_reply_error(req, 500, "internal", "header");
            return;
        }
        if (busy == 429)
            luna_http_reply_error(req, 429, "rate_limited", "too many requests");
        else
            luna_http_reply_error(req, busy, "tee_unavailable", "no TEE can serve now");
        return;
    }
    /* Round robin; a dead tee-1 is still offered once (the gateway only
       learns it died when a run fails). */
    tee = (p->next_tee++ % 2) == 0 ? "tee-1" : "tee-2";
    if (g->rogue_evidence) {
        uint8_t rogue[32];
        memcpy(rogue, fx->m.mr_enclave, 32);
        rogue[31] ^= 0x80;
        sdk_fx_sign_evidence(fx, FX_TCB_CURRENT, rogue);
    } else {
        sdk_fx_sign_evidence(fx, FX_TCB_CURRENT, NULL);
    }
    pthread_mutex_unlock(&g->lock);
    if (luna_b64url_encode(fx->evidence, fx->ev_len, ev, sizeof ev) != LUNA_OK ||
        luna_b64url_encode(fx->kx_pk, 32, kx, sizeof kx) != LUNA_OK ||
        luna_b64url_encode(fx->sg_pk, 32, sg, sizeof sg) != LUNA_OK ||
        luna_b64url_encode(fx->tcb, fx->tcb_len, col, sizeof col) != LUNA_OK) {
        luna_http_reply_error(req, 500, "internal", "encode");
        return;
    }
    ans = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "tee_id", tee, "report",
                    "unused.report.jws", "evidence", ev, "evidence_type", "sim", "manifest",
                    fx->manifest, "tee_kx_pk", kx, "tee_sign_pk", sg, "deployment_id", "demo",
                    "collateral", col);
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
}

static void h_otk(luna_http_request *req, void *arg)
{
    stub_gw *g = arg;
    priv *p = g->priv;
    json_t *b = body_json(req), *ans = NULL;
    otk_rec *o;
    uint8_t info[256], sealed[80], enc[32];
    char sealed_b64[LUNA_B64URL_ENC_LEN(80)];
    size_t n = 0, il = 0;
    luna_hpke_params hp;
    luna_hpke_ctx *ctx = NULL;
    const char *tee = json_string_value(json_object_get(b, "tee_id"));
    const char *job = json_string_value(json_object_get(b, "job"));
    const char *rid = json_string_value(json_object_get(b, "request_id"));

    if (!authed(req) || tee == NULL || job == NULL || rid == NULL || strlen(tee) > 15 ||
        strlen(job) > 64 || strlen(rid) > 64) {
        json_decref(b);
        luna_http_reply_error(req, 400, "bad_request", "bad otk request");
        return;
    }
    pthread_mutex_lock(&g->lock);
    o = &p->otks[p->n_otk % MAX_OTK];
    memset(o, 0, sizeof *o);
    snprintf(o->otk_id, sizeof o->otk_id, "otk_%d", p->n_otk++);
    pthread_mutex_unlock(&g->lock);
    snprintf(o->tee_id, sizeof o->tee_id, "%s", tee);
    snprintf(o->job, sizeof o->job, "%s", job);
    snprintf(o->request_id, sizeof o->request_id, "%s", rid);
    if (luna_json_get_b64url(b, "client_pk", o->client_pk, 32, &n) != LUNA_OK || n != 32 ||
        luna_random(o->otk, 32) != LUNA_OK) {
        json_decref(b);
        luna_http_reply_error(req, 400, "bad_request", "client_pk");
        return;
    }
    memcpy(info, "lunal otk to client v1", 22);
    il = 22;
    info[il++] = (uint8_t)strlen(o->otk_id);
    memcpy(info + il, o->otk_id, strlen(o->otk_id));
    il += strlen(o->otk_id);
    info[il++] = (uint8_t)strlen(tee);
    memcpy(info + il, tee, strlen(tee));
    il += strlen(tee);
    info[il++] = (uint8_t)strlen(rid);
    memcpy(info + il, rid, strlen(rid));
    il += strlen(rid);
    memset(&hp, 0, sizeof hp);
    hp.suite.kem_id = LUNA_HPKE_KEM_X25519_SHA256;
    hp.suite.kdf_id = LUNA_HPKE_KDF_HKDF_SHA256;
    hp.suite.aead_id = LUNA_HPKE_AEAD_AES256GCM;
    hp.mode = LUNA_HPKE_MODE_BASE;
    hp.info = info;
    hp.info_len = il;
    if (luna_hpke_setup_sender(&hp, o->client_pk, NULL, enc, &ctx) != LUNA_OK ||
        luna_hpke_seal(ctx, NULL, 0, o->otk, 32, sealed + 32) != LUNA_OK) {
        luna_hpke_ctx_free(ctx);
        json_decref(b);
        luna_http_reply_error(req, 500, "internal", "seal");
        return;
    }
    luna_hpke_ctx_free(ctx);
    memcpy(sealed, enc, 32);
    if (luna_b64url_encode(sealed, 80, sealed_b64, sizeof sealed_b64) == LUNA_OK)
        ans = json_pack("{s:s,s:s,s:I}", "otk_id", o->otk_id, "sealed_otk", sealed_b64,
                        "expires_at", (json_int_t)time(NULL) + 60);
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
    json_decref(b);
}

static void h_run(luna_http_request *req, void *arg)
{
    stub_gw *g = arg;
    priv *p = g->priv;
    sdk_fx *fx = g->fx;
    const char *otk_id = luna_http_request_header(req, "X-Lunal-Otk-Id");
    const char *idem = luna_http_request_header(req, "Idempotency-Key");
    const uint8_t *d;
    uint8_t *env = NULL, *pt = NULL;
    size_t n = 0, pt_len = 0, out_len = 0;
    otk_rec *o = NULL;
    luna_envelope_open_params op;
    luna_envelope_header h;
    luna_result_seal_params rp;
    luna_wbuf out;
    bool dead;

    if (!authed(req) || otk_id == NULL || luna_http_request_body(req, &d, &n) != LUNA_OK) {
        luna_http_reply_error(req, 400, "bad_request", "run");
        return;
    }
    pthread_mutex_lock(&g->lock);
    for (int i = 0; i < p->n_otk && i < MAX_OTK; i++)
        if (strcmp(p->otks[i].otk_id, otk_id) == 0 && !p->otks[i].used)
            o = &p->otks[i];
    if (o != NULL)
        o->used = true;
    if (g->n_attempts < 4 && o != NULL) {
        snprintf(g->idem[g->n_attempts], sizeof g->idem[0], "%s", idem != NULL ? idem : "");
        snprintf(g->reqid[g->n_attempts], sizeof g->reqid[0], "%s", o->request_id);
        g->n_attempts++;
    }
    dead = o != NULL && g->tee1_dead && strcmp(o->tee_id, "tee-1") == 0;
    pthread_mutex_unlock(&g->lock);
    if (o == NULL) {
        luna_http_reply_error(req, 403, "otk_unknown", "unknown or used otk");
        return;
    }
    if (dead) {
        if (luna_http_response_header(req, "Retry-After", "1") != LUNA_OK) {
            luna_http_reply_error(req, 500, "internal", "header");
            return;
        }
        luna_http_reply_error(req, 503, "tee_unavailable", "the TEE died");
        return;
    }
    env = malloc(n);
    memcpy(env, d, n);
    memset(&op, 0, sizeof op);
    op.tee_id = o->tee_id;
    op.tenant = "acme";
    op.job = o->job;
    op.request_id = o->request_id;
    op.tee_sk = fx->kx_sk;
    op.otk = o->otk;
    op.client_pk = o->client_pk;
    if (luna_envelope_open(env, n, &op, &h, &pt, &pt_len) != LUNA_OK) {
        free(env);
        luna_http_reply_error(req, 403, "envelope_refused", "envelope does not open");
        return;
    }
    pthread_mutex_lock(&g->lock);
    g->runs++;
    pthread_mutex_unlock(&g->lock);
    if (strcmp(o->job, "upper") == 0)
        for (size_t i = 0; i < pt_len; i++)
            pt[i] = (uint8_t)toupper(pt[i]);
    memset(&rp, 0, sizeof rp);
    rp.ids.tenant = "acme";
    rp.ids.job = o->job;
    rp.ids.tee_id = o->tee_id;
    rp.ids.request_id = o->request_id;
    rp.tee_sk = fx->kx_sk;
    rp.client_pk = o->client_pk;
    rp.otk = o->otk;
    rp.sign_seed = fx->sg_seed;
    rp.measurement = fx->m.mr_enclave;
    rp.measurement_len = 32;
    if (luna_result_sealed_len(&rp.ids, 32, pt_len, &out_len) != LUNA_OK ||
        luna_wbuf_init_alloc(&out, out_len) != LUNA_OK) {
        free(env);
        luna_http_reply_error(req, 500, "internal", "alloc");
        return;
    }
    if (luna_result_seal(&rp, pt, pt_len, &out) != LUNA_OK) {
        luna_wbuf_free(&out);
        free(env);
        luna_http_reply_error(req, 500, "internal", "seal");
        return;
    }
    if (g->tamper_result)
        out.data[out.len - 5] ^= 1;
    luna_http_reply(req, 200, "application/octet-stream", out.data, out.len);
    luna_wbuf_free(&out);
    free(env);
}

static void h_attest(luna_http_request *req, void *arg)
{
    stub_gw *g = arg;
    json_t *b = body_json(req), *ans;
    const char *tee = json_string_value(json_object_get(b, "tee_id"));

    if (!authed(req)) {
        json_decref(b);
        luna_http_reply_error(req, 401, "unauthenticated", "token required");
        return;
    }
    pthread_mutex_lock(&g->lock);
    sdk_fx_sign_evidence(g->fx, FX_TCB_CURRENT, NULL);
    ans = sdk_fx_answer(g->fx);
    pthread_mutex_unlock(&g->lock);
    if (tee != NULL && strcmp(tee, "tee-2") == 0) {
        json_t *att = json_object_get(ans, "attestation");
        json_object_set_new(att, "tee_id", json_string("tee-2"));
        /* tee-2 is quarantined in the registry. */
        json_object_set_new(att, "registry_status", json_string("quarantined"));
    }
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
    json_decref(b);
}

static void h_tees(luna_http_request *req, void *arg)
{
    json_t *ans = json_pack("{s:[{s:s,s:s},{s:s,s:s}]}", "tees", "tee_id", "tee-1",
                            "deployment_id", "demo", "tee_id", "tee-2", "deployment_id", "demo");
    (void)arg;
    if (!authed(req)) {
        json_decref(ans);
        luna_http_reply_error(req, 401, "unauthenticated", "token required");
        return;
    }
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
}

static void *loop(void *arg)
{
    priv *p = arg;
    event_base_dispatch(p->base);
    return NULL;
}

void stub_gw_start(stub_gw *g, sdk_fx *fx)
{
    priv *p = calloc(1, sizeof *p);
    luna_http_server_opts so;
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    const luna_http_route routes[] = {
        {LUNA_HTTP_POST, "/v1/auth/token", NULL, 0, "application/json", h_token, g},
        {LUNA_HTTP_POST, "/v1/tees/select", NULL, 0, "application/json", h_select, g},
        {LUNA_HTTP_POST, "/v1/otk", NULL, 0, "application/json", h_otk, g},
        {LUNA_HTTP_POST, "/v1/jobs/run", NULL, 0, "application/octet-stream", h_run, g},
        {LUNA_HTTP_POST, "/v1/attestation/verify", NULL, 0, "application/json", h_attest, g},
        {LUNA_HTTP_GET, "/v1/tees", NULL, 0, NULL, h_tees, g},
    };

    assert_non_null(p);
    g->fx = fx;
    g->priv = p;
    pthread_mutex_init(&g->lock, NULL);
    assert_int_equal(0, evthread_use_pthreads());
    htu_setup(&g->env);
    assert_int_equal(0, htu_issue(&g->env, NULL, "lunal://svc/gateway", "gateway", NULL));
    htu_path(&g->env, "gateway", ".crt", crt, sizeof crt);
    htu_path(&g->env, "gateway", ".key", key, sizeof key);
    p->base = event_base_new();
    assert_non_null(p->base);
    memset(&so, 0, sizeof so);
    so.component = "stub-gateway";
    so.tls.ca_file = g->env.ca_crt;
    so.tls.cert_file = crt;
    so.tls.key_file = key;
    so.public_listener = true;
    so.max_body = 8u * 1024u * 1024u;
    assert_luna_ok(luna_http_server_new(p->base, &so, &p->srv));
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        assert_luna_ok(luna_http_server_add_route(p->srv, &routes[i]));
    g->port = luna_http_server_port(p->srv);
    snprintf(g->url, sizeof g->url, "https://127.0.0.1:%u", g->port);
    assert_int_equal(0, pthread_create(&p->th, NULL, loop, p));
}

void stub_gw_stop(stub_gw *g)
{
    priv *p = g->priv;

    event_base_loopbreak(p->base);
    pthread_join(p->th, NULL);
    luna_http_server_free(p->srv);
    event_base_free(p->base);
    htu_teardown(&g->env);
    pthread_mutex_destroy(&g->lock);
    free(p);
    g->priv = NULL;
}
