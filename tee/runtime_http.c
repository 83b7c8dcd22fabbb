/*
 * runtime_http.c - the TEE runtime's mTLS API (server identity
 * lunal://tee/<id>; docs/tee.md, docs/openapi-tee.yaml):
 *   POST /v1/tee/run       (gateway)      envelope in, result envelope out
 *   POST /v1/tee/evidence  (attestation)  {"nonce"} -> {"evidence","evidence_type"}
 *   GET  /v1/tee/info      (gateway, attestation)
 * /v1/tee/run does the one-time key exchange with the KMS
 * (docs/protocol.md: challenge, fresh evidence over the nonce, release),
 * opens the envelope inside the locked arena, runs the job in the sandbox
 * and seals the result with a signed receipt to the client.  Requests are
 * served one at a time (the loop blocks during a job).  Must never send
 * plaintext or a key anywhere, never run a job for another TEE's
 * envelope or twice for one request id, and always wipe the arena.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/envelope.h"
#include "luna/hpke.h"
#include "luna/http.h"
#include "luna/json.h"
#include "luna/log.h"
#include "runtime.h"
#include "sandbox.h"

#define KMS_IDENTITY "lunal://svc/kms"
#define OTK_ID_MAX 64
#define SEALED_OTK_LEN (LUNA_HPKE_ENC_LEN + 32 + LUNA_HPKE_TAG_LEN)
#define OTK_TO_TEE_LABEL "lunal otk to tee v1"

static bool ident_ok(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= max || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n >= 1;
}

static luna_err set_b64(json_t *obj, const char *key, const uint8_t *b, size_t n)
{
    size_t cap = LUNA_B64URL_ENC_LEN(n);
    char *s = malloc(cap);
    if (s == NULL)
        return LUNA_ERR_NOMEM;
    luna_err err = luna_b64url_encode(b, n, s, cap);
    if (err == LUNA_OK && json_object_set_new(obj, key, json_string(s)) != 0)
        err = LUNA_ERR_NOMEM;
    free(s);
    return err;
}

static void set_hex(json_t *obj, const char *key, const uint8_t *b, size_t n)
{
    char hex[129];
    if (n <= 64 && luna_hex_encode(b, n, hex, sizeof(hex)) == LUNA_OK)
        json_object_set_new(obj, key, json_string(hex));
}

/* ---- KMS client (blocking, one fresh mTLS connection per call) ---- */

static luna_err kms_post(rt_state *rt, const char *path, json_t *body,
                         const luna_json_schema *schema, json_t **ans)
{
    luna_http_client_opts o;
    luna_http_result res;
    memset(&o, 0, sizeof(o));
    o.tls.ca_file = rt->cfg.tls_ca;
    o.tls.cert_file = rt->cert_path;
    o.tls.key_file = rt->key_path;
    o.tls.tee_ca_file = rt->cfg.tls_tee_ca;
    o.host = rt->cfg.kms_host;
    o.port = rt->cfg.kms_port;
    o.expected_identity = KMS_IDENTITY;
    o.timeout_sec = 20;
    char *text = json_dumps(body, JSON_COMPACT);
    if (text == NULL)
        return LUNA_ERR_NOMEM;
    memset(&res, 0, sizeof(res));
    luna_err err = luna_http_fetch(&o, "POST", path, "application/json", text, strlen(text), &res);
    free(text);
    if (err != LUNA_OK)
        return LUNA_ERR_UNAVAILABLE;
    if (res.status != 200) {
        LUNA_LOGF(LUNA_LOG_WARN, RT_COMPONENT, "kms refused", LUNA_LOG_STR("path", path),
                  LUNA_LOG_INT("status", res.status));
        err = res.status == 503 ? LUNA_ERR_UNAVAILABLE : LUNA_ERR_PERMISSION;
    } else {
        err = luna_json_parse((const char *)res.body, res.body_len, schema, NULL, ans, NULL);
    }
    luna_http_result_free(&res);
    return err;
}

static const luna_json_field challenge_ans_fields[] = {
    {.name = "nonce", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED, .min_len = 32,
     .max_len = 32},
    {.name = "expires_at", .type = LUNA_JSON_T_INT, .min = 0, .max = INT64_MAX},
};
static const luna_json_schema challenge_ans = {challenge_ans_fields, 2, NULL};

static const luna_json_field release_ans_fields[] = {
    {.name = "sealed_otk", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = SEALED_OTK_LEN, .max_len = SEALED_OTK_LEN},
    {.name = "client_pk", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED,
     .min_len = 32, .max_len = 32},
    {.name = "tenant", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_ENVELOPE_MAX_ID_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "job", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_ENVELOPE_MAX_ID_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
    {.name = "request_id", .type = LUNA_JSON_T_STRING, .flags = LUNA_JSON_REQUIRED, .min_len = 1,
     .max_len = LUNA_ENVELOPE_MAX_ID_LEN, .pattern = LUNA_JSON_PAT_PRINTABLE},
};
static const luna_json_schema release_ans = {release_ans_fields, 5, NULL};

/* Opens the KMS's sealed OTK: HPKE base mode to tee_kx, info per docs/protocol.md. */
static luna_err open_otk(rt_state *rt, const char *otk_id, const uint8_t sealed[SEALED_OTK_LEN],
                         uint8_t otk[32])
{
    uint8_t info[sizeof(OTK_TO_TEE_LABEL) - 1 + 2 + 2 * 64];
    size_t il = sizeof(OTK_TO_TEE_LABEL) - 1, a = strlen(otk_id), b = strlen(rt->tee_id);
    if (a > 64 || b > 64)
        return LUNA_ERR_INVALID_ARG;
    memcpy(info, OTK_TO_TEE_LABEL, il);
    info[il++] = (uint8_t)a;
    memcpy(info + il, otk_id, a);
    il += a;
    info[il++] = (uint8_t)b;
    memcpy(info + il, rt->tee_id, b);
    il += b;
    luna_hpke_params p = {.suite = {LUNA_HPKE_KEM_X25519_SHA256, LUNA_HPKE_KDF_HKDF_SHA256,
                                    LUNA_HPKE_AEAD_AES256GCM},
                          .mode = LUNA_HPKE_MODE_BASE,
                          .info = info,
                          .info_len = il};
    luna_hpke_ctx *ctx = NULL;
    LUNA_GUARD(luna_hpke_setup_receiver(&p, luna_secret_cdata(rt->kx_sk), sealed, NULL, &ctx));
    luna_err err = luna_hpke_open(ctx, NULL, 0, sealed + LUNA_HPKE_ENC_LEN, 32 + LUNA_HPKE_TAG_LEN,
                                  otk);
    luna_hpke_ctx_free(ctx);
    return err;
}

/* The KMS exchange: challenge, fresh evidence over its nonce, release. */
static luna_err get_otk(rt_state *rt, const char *otk_id, const luna_envelope_header *h,
                        luna_secret *otk, uint8_t client_pk[32])
{
    json_t *req = NULL, *ans = NULL;
    uint8_t nonce[32], sealed[SEALED_OTK_LEN];
    uint8_t *ev = NULL;
    size_t n, ev_len = 0;
    const char *s;
    luna_err err;

    req = json_pack("{s:s, s:s}", "tee_id", rt->tee_id, "otk_id", otk_id);
    LUNA_TRY_ENSURE(req != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(kms_post(rt, "/v1/kms/otk/challenge", req, &challenge_ans, &ans), out);
    LUNA_TRY(luna_json_get_b64url(ans, "nonce", nonce, sizeof(nonce), &n), out);
    json_decref(req);
    json_decref(ans);
    req = ans = NULL;
    ev = malloc(LUNA_TEE_IPC_EVIDENCE_MAX);
    LUNA_TRY_ENSURE(ev != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(rt_evidence(rt, nonce, ev, LUNA_TEE_IPC_EVIDENCE_MAX, &ev_len), out);
    req = json_pack("{s:s, s:s, s:s, s:s}", "tee_id", rt->tee_id, "otk_id", otk_id,
                    "evidence_type", rt->evidence_type, "report", rt->report);
    LUNA_TRY_ENSURE(req != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(set_b64(req, "nonce", nonce, sizeof(nonce)), out);
    LUNA_TRY(set_b64(req, "evidence", ev, ev_len), out);
    LUNA_TRY(kms_post(rt, "/v1/kms/otk/release", req, &release_ans, &ans), out);
    /* The release must be for exactly this envelope. */
    LUNA_TRY(luna_json_get_string(ans, "tenant", &s, NULL), out);
    LUNA_TRY_ENSURE(strcmp(s, h->tenant) == 0, LUNA_ERR_PERMISSION, out);
    LUNA_TRY(luna_json_get_string(ans, "job", &s, NULL), out);
    LUNA_TRY_ENSURE(strcmp(s, h->job) == 0, LUNA_ERR_PERMISSION, out);
    LUNA_TRY(luna_json_get_string(ans, "request_id", &s, NULL), out);
    LUNA_TRY_ENSURE(strcmp(s, h->request_id) == 0, LUNA_ERR_PERMISSION, out);
    LUNA_TRY(luna_json_get_b64url(ans, "client_pk", client_pk, 32, &n), out);
    LUNA_TRY(luna_json_get_b64url(ans, "sealed_otk", sealed, sizeof(sealed), &n), out);
    LUNA_TRY(open_otk(rt, otk_id, sealed, luna_secret_data(otk)), out);
out:
    free(ev);
    json_decref(req);
    json_decref(ans);
    return err;
}

static bool seen_before(rt_state *rt, const char *request_id)
{
    for (size_t i = 0; i < RT_REPLAY_SLOTS; i++)
        if (rt->seen[i][0] != '\0' && strcmp(rt->seen[i], request_id) == 0)
            return true;
    return false;
}

static void remember(rt_state *rt, const char *request_id)
{
    snprintf(rt->seen[rt->seen_next], sizeof(rt->seen[0]), "%s", request_id);
    rt->seen_next = (rt->seen_next + 1) % RT_REPLAY_SLOTS;
}

static luna_tee_job_fn find_job(const rt_state *rt, const char *job)
{
    bool offered = false;
    for (size_t i = 0; i < rt->manifest.n_jobs && !offered; i++)
        offered = strcmp(rt->manifest.jobs[i], job) == 0;
    if (!offered)
        return NULL;
    for (size_t i = 0; i < rt->bundle->n_jobs; i++)
        if (strcmp(rt->bundle->jobs[i].name, job) == 0)
            return rt->bundle->jobs[i].run;
    return NULL;
}

static void handle_run(luna_http_request *req, void *arg)
{
    rt_state *rt = arg;
    const uint8_t *body;
    size_t len, pt_len = 0, sealed_len = 0;
    luna_envelope_header h;
    luna_secret *otk = NULL;
    uint8_t client_pk[32], *pt = NULL;
    luna_tee_job_result result;
    luna_wbuf out = {0};
    luna_err err;
    int status = 0;
    const char *code = NULL, *why = NULL;

    memset(&result, 0, sizeof(result));
    if (!rt->measurement_matches) {
        luna_http_reply_error(req, 503, "tee_unavailable",
                              "this TEE does not run what its manifest says");
        return;
    }
    const char *otk_id = luna_http_request_header(req, "X-Lunal-Otk-Id");
    if (otk_id == NULL || !ident_ok(otk_id, OTK_ID_MAX)) {
        luna_http_reply_error(req, 400, "bad_request", "missing or malformed X-Lunal-Otk-Id");
        return;
    }
    if (luna_http_request_body(req, &body, &len) != LUNA_OK || len > luna_secret_len(rt->arena)) {
        luna_http_reply_error(req, 413, "too_large", "envelope over the arena size");
        return;
    }
    if (luna_envelope_parse_header(body, len, &h) != LUNA_OK ||
        h.type != LUNA_ENVELOPE_TYPE_REQUEST) {
        luna_http_reply_error(req, 400, "bad_envelope", "malformed request envelope");
        return;
    }
    if (strcmp(h.tee_id, rt->tee_id) != 0) {
        luna_http_reply_error(req, 403, "wrong_tee", "the envelope is for another TEE");
        return;
    }
    luna_tee_job_fn job = find_job(rt, h.job);
    if (job == NULL) {
        luna_http_reply_error(req, 404, "unknown_job", "this deployment offers no such job");
        return;
    }
    if (seen_before(rt, h.request_id)) {
        luna_http_reply_error(req, 409, "replay", "request id already served");
        return;
    }
    LUNA_TRY(luna_secret_new(32, &otk), fail);
    LUNA_TRY(luna_tee_wipe_on_fork(otk), fail);
    err = get_otk(rt, otk_id, &h, otk, client_pk);
    if (err != LUNA_OK) {
        status = err == LUNA_ERR_UNAVAILABLE ? 503 : 403;
        code = "otk_refused";
        why = "the KMS did not release the one-time key";
        goto fail_msg;
    }
    /* Open inside the locked arena; the body buffer keeps ciphertext only. */
    memcpy(luna_secret_data(rt->arena), body, len);
    /* get_otk checked these equal the KMS release answer's; copied since
       luna_envelope_open rewrites h. */
    char tenant[LUNA_ENVELOPE_MAX_ID_LEN + 1], job_id[LUNA_ENVELOPE_MAX_ID_LEN + 1],
        request_id[LUNA_ENVELOPE_MAX_ID_LEN + 1];
    memcpy(tenant, h.tenant, sizeof(tenant));
    memcpy(job_id, h.job, sizeof(job_id));
    memcpy(request_id, h.request_id, sizeof(request_id));
    luna_envelope_open_params op = {.tee_id = rt->tee_id,
                                    .tenant = tenant,
                                    .job = job_id,
                                    .request_id = request_id,
                                    .tee_sk = luna_secret_cdata(rt->kx_sk),
                                    .otk = luna_secret_cdata(otk),
                                    .client_pk = client_pk};
    err = luna_envelope_open(luna_secret_data(rt->arena), len, &op, &h, &pt, &pt_len);
    if (err != LUNA_OK) {
        status = 403;
        code = "bad_envelope";
        why = "the envelope did not open";
        goto fail_msg;
    }
    remember(rt, h.request_id);
    LUNA_TRY(luna_tee_sandbox_run(job, pt, pt_len, &rt->cfg.limits, &result, NULL, NULL), fail);
    rt_reset_memory(rt);
    if (result.outcome != LUNA_TEE_JOB_OK) {
        LUNA_LOGF(LUNA_LOG_WARN, RT_COMPONENT, "job did not complete",
                  LUNA_LOG_STR("job", h.job), LUNA_LOG_STR("request_id", h.request_id),
                  LUNA_LOG_STR("outcome", luna_tee_outcome_name(result.outcome)));
        status = 422;
        code = "job_failed";
        why = luna_tee_outcome_name(result.outcome);
        goto fail_msg;
    }
    luna_envelope_ids ids = {h.tenant, h.job, h.tee_id, h.request_id};
    LUNA_TRY(luna_result_sealed_len(&ids, 32, result.len, &sealed_len), fail);
    LUNA_TRY(luna_wbuf_init_alloc(&out, sealed_len), fail);
    luna_result_seal_params sp = {.ids = ids,
                                  .tee_sk = luna_secret_cdata(rt->kx_sk),
                                  .client_pk = client_pk,
                                  .otk = luna_secret_cdata(otk),
                                  .sign_seed = luna_secret_cdata(rt->sign_seed),
                                  .measurement = rt->mr_enclave,
                                  .measurement_len = 32};
    static const uint8_t empty[1];
    LUNA_TRY(luna_result_seal(&sp, result.len > 0 ? luna_secret_cdata(result.data) : empty,
                              result.len, &out),
             fail);
    luna_tee_job_result_clear(&result);
    luna_secret_free(otk);
    LUNA_LOGF(LUNA_LOG_INFO, RT_COMPONENT, "job done", LUNA_LOG_STR("job", h.job),
              LUNA_LOG_STR("request_id", h.request_id));
    luna_http_reply(req, 200, "application/octet-stream", out.data, out.len);
    luna_wbuf_free(&out);
    return;

fail:
    status = luna_http_status_for_err(err);
    code = luna_errname(err);
    why = "the request could not be processed";
fail_msg:
    rt_reset_memory(rt);
    luna_tee_job_result_clear(&result);
    luna_secret_free(otk);
    luna_wbuf_free(&out);
    luna_http_reply_error(req, status, code, why);
}

static const luna_json_field evidence_req_fields[] = {
    {.name = "nonce", .type = LUNA_JSON_T_B64URL, .flags = LUNA_JSON_REQUIRED, .min_len = 32,
     .max_len = 32},
};
static const luna_json_schema evidence_req = {evidence_req_fields, 1, NULL};

static void handle_evidence(luna_http_request *req, void *arg)
{
    rt_state *rt = arg;
    const uint8_t *body;
    size_t len, n, ev_len = 0;
    json_t *in = NULL, *ans = NULL;
    uint8_t nonce[32];
    uint8_t *ev = NULL;
    luna_err err;

    LUNA_TRY(luna_http_request_body(req, &body, &len), out);
    LUNA_TRY(luna_json_parse((const char *)body, len, &evidence_req, NULL, &in, NULL), out);
    LUNA_TRY(luna_json_get_b64url(in, "nonce", nonce, sizeof(nonce), &n), out);
    /* A re-attestation round starts from a reset memory state, which the
       evidence's memory-state digest then proves. */
    rt_reset_memory(rt);
    ev = malloc(LUNA_TEE_IPC_EVIDENCE_MAX);
    LUNA_TRY_ENSURE(ev != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(rt_evidence(rt, nonce, ev, LUNA_TEE_IPC_EVIDENCE_MAX, &ev_len), out);
    ans = json_pack("{s:s}", "evidence_type", rt->evidence_type);
    LUNA_TRY_ENSURE(ans != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(set_b64(ans, "evidence", ev, ev_len), out);
    luna_http_reply_json(req, 200, ans);
out:
    if (err != LUNA_OK)
        luna_http_reply_err(req, err);
    free(ev);
    json_decref(in);
    json_decref(ans);
}

static void handle_info(luna_http_request *req, void *arg)
{
    rt_state *rt = arg;
    json_t *jobs = json_array();
    for (size_t i = 0; jobs != NULL && i < rt->manifest.n_jobs; i++)
        json_array_append_new(jobs, json_string(rt->manifest.jobs[i]));
    bool sim = strcmp(rt->evidence_type, "sim") == 0;
    bool tpm = strcmp(rt->evidence_type, "tpm") == 0;
    json_t *ans = json_pack("{s:s, s:s, s:s, s:b, s:s, s:b, s:s, s:s, s:o}", "tee_id", rt->tee_id,
                            "deployment_id", rt->manifest.name, "evidence_type",
                            rt->evidence_type, "simulated", sim ? 1 : 0, "platform",
                            sim   ? "SIMULATED - INSECURE (development only)"
                            : tpm ? "TPM 2.0 quote of a host measurement (no memory encryption)"
                                  : "hardware TEE",
                            "measurement_matches_manifest", rt->measurement_matches ? 1 : 0,
                            "manifest", rt->manifest_jws, "report", rt->report, "jobs",
                            jobs != NULL ? jobs : json_array());
    if (ans == NULL) {
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    set_hex(ans, "mr_enclave", rt->mr_enclave, 32);
    set_hex(ans, "mr_signer", rt->mr_signer, 32);
    if (set_b64(ans, "tee_kx_pk", rt->kx_pk, 32) != LUNA_OK ||
        set_b64(ans, "tee_sign_pk", rt->sign_pk, 32) != LUNA_OK) {
        json_decref(ans);
        luna_http_reply_err(req, LUNA_ERR_NOMEM);
        return;
    }
    luna_http_reply_json(req, 200, ans);
    json_decref(ans);
}

luna_err rt_http_routes(rt_state *rt, luna_http_server *srv)
{
    static const char *const gateway[] = {"lunal://svc/gateway"};
    static const char *const attestation[] = {"lunal://svc/attestation"};
    static const char *const readers[] = {"lunal://svc/gateway", "lunal://svc/attestation"};
    const luna_http_route routes[] = {
        {LUNA_HTTP_POST, "/v1/tee/run", gateway, 1, "application/octet-stream", handle_run, rt},
        {LUNA_HTTP_POST, "/v1/tee/evidence", attestation, 1, "application/json", handle_evidence,
         rt},
        {LUNA_HTTP_GET, "/v1/tee/info", readers, 2, NULL, handle_info, rt},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        LUNA_GUARD(luna_http_server_add_route(srv, &routes[i]));
    return LUNA_OK;
}
