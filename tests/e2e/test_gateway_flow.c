/*
 * test_gateway_flow.c - the real luna-gateway on its public TLS listener
 * (no client certificate) in front of the real luna-iam and the test stubs
 * (gateway/test/gw_stub.c) for the KMS registry, attestation service,
 * audit log and five TEEs.  Covers: token relay, validation refusals
 * (400/413/415 with JSON bodies), auth refusals (401 missing, bad,
 * expired; 403 tenant mismatch and role), TEE selection only among
 * active + attested + authorized TEEs and spread over them, the OTK relay,
 * the job relay with idempotency keys, a TEE killed mid-request (503
 * tee_unavailable, Retry-After, marked unhealthy), the rate limit (429 +
 * Retry-After), audit entries, and the memory/log scan for a plaintext
 * marker (after proving the scanner finds a planted one).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw_harness.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/envelope.h"
#include "luna_test.h"

static gwh H;
static char *client_key;  /* principal app1, role client */
static char *auditor_key; /* principal aud1, role auditor */
static char marker[64];   /* plaintext marker, sent only inside envelopes */

#define TOKEN_TTL 4

/*
 * The client's KMS token of each gateway token client_token handed out
 * (IAM's "downstream" answer, relayed by the gateway): post_json sends
 * it in Lunal-Downstream-Authorization, as the SDK does.
 */
#define MAX_PAIRS 64
static struct {
    char *gw;
    char *kms;
} pairs[MAX_PAIRS];
static size_t n_pairs;

static int setup(void **state)
{
    (void)state;
    gwh_start(&H, TOKEN_TTL);
    client_key = gwh_principal(&H, "app1", "client", "client");
    auditor_key = gwh_principal(&H, "aud1", "user", "auditor");
    uint8_t rnd[12];
    assert_luna_ok(luna_random(rnd, sizeof(rnd)));
    char hex[25];
    assert_luna_ok(luna_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex)));
    snprintf(marker, sizeof(marker), "PLAINTEXT-MARKER-%s", hex);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gwh_stop(&H);
    free(client_key);
    free(auditor_key);
    for (size_t i = 0; i < n_pairs; i++) {
        free(pairs[i].gw);
        free(pairs[i].kms);
    }
    return 0;
}


static const char *kms_of(const char *gw)
{
    for (size_t i = 0; gw != NULL && i < n_pairs; i++)
        if (strcmp(pairs[i].gw, gw) == 0)
            return pairs[i].kms;
    return NULL;
}

static char *client_token(void)
{
    char body[64], hdr[512];
    snprintf(body, sizeof(body), "{\"tenant_id\":\"acme\"}");
    snprintf(hdr, sizeof(hdr), "Authorization: ApiKey %s\r\n", client_key);
    gwh_resp r;
    gwh_call(&H, "POST", "/v1/auth/token", hdr, "application/json", body, strlen(body), &r);
    assert_int_equal(200, r.status);
    const char *gw = json_string_value(json_object_get(r.body, "token"));
    const json_t *down = json_object_get(r.body, "downstream");
    const char *kms = json_string_value(json_object_get(down, "kms"));
    assert_non_null(gw);
    assert_non_null(kms);
    /* A client gets the KMS's and the attestation service's, nothing more. */
    assert_non_null(json_object_get(down, "attestation"));
    assert_null(json_object_get(down, "iam"));
    assert_null(json_object_get(down, "audit"));
    assert_true(strcmp(gw, kms) != 0);
    assert_true(n_pairs < MAX_PAIRS);
    pairs[n_pairs].gw = strdup(gw);
    pairs[n_pairs].kms = strdup(kms);
    char *t = strdup(gw);
    assert_non_null(t);
    n_pairs++;
    gwh_resp_free(&r);
    return t;
}

/* POST JSON with a bearer token (NULL = none) and optional extra header lines. */
static void post_json(const char *path, const char *token, const char *extra, const char *body,
                      gwh_resp *r)
{
    char hdr[18000];
    const char *kms = kms_of(token);
    snprintf(hdr, sizeof(hdr), "%s%s%s%s%s%s%s", token != NULL ? "Authorization: Bearer " : "",
             token != NULL ? token : "", token != NULL ? "\r\n" : "",
             kms != NULL ? "Lunal-Downstream-Authorization: Bearer " : "",
             kms != NULL ? kms : "", kms != NULL ? "\r\n" : "", extra != NULL ? extra : "");
    gwh_call(&H, "POST", path, hdr, "application/json", body, strlen(body), r);
}

/* Selects a TEE for job; returns its id in out (status returned). */
static int select_tee(const char *token, const char *job, char out[16])
{
    char body[128];
    snprintf(body, sizeof(body), "{\"job\":\"%s\"}", job);
    gwh_resp r;
    post_json("/v1/tees/select", token, NULL, body, &r);
    int st = r.status;
    out[0] = '\0';
    if (st == 200) {
        const char *id = json_string_value(json_object_get(r.body, "tee_id"));
        assert_non_null(id);
        assert_true(strlen(id) < 16);
        strcpy(out, id);
        /* what the SDK needs: report, evidence, manifest, keys */
        assert_non_null(json_string_value(json_object_get(r.body, "report")));
        assert_non_null(json_string_value(json_object_get(r.body, "evidence")));
        assert_non_null(json_string_value(json_object_get(r.body, "manifest")));
        assert_non_null(json_string_value(json_object_get(r.body, "tee_kx_pk")));
        assert_non_null(json_string_value(json_object_get(r.body, "tee_sign_pk")));
    }
    gwh_resp_free(&r);
    return st;
}

/* A real sealed request envelope with pt as plaintext. */
static uint8_t *make_envelope(const char *tenant, const char *job, const char *tee,
                              const char *rid, const char *pt, size_t *len)
{
    uint8_t csk[32], cpk[32], tsk[32], tpk[32], otk[32];
    assert_luna_ok(luna_x25519_keygen(csk, cpk));
    assert_luna_ok(luna_x25519_keygen(tsk, tpk));
    assert_luna_ok(luna_random(otk, sizeof(otk)));
    luna_envelope_seal_params p = {
        .ids = {.tenant = tenant, .job = job, .tee_id = tee, .request_id = rid},
        .client_sk = csk,
        .tee_pk = tpk,
        .otk = otk,
    };
    size_t n = 0;
    assert_luna_ok(luna_envelope_sealed_len(&p.ids, strlen(pt), &n));
    luna_wbuf w;
    assert_luna_ok(luna_wbuf_init_alloc(&w, n));
    assert_luna_ok(luna_envelope_seal(&p, (const uint8_t *)pt, strlen(pt), &w));
    uint8_t *out = malloc(w.len);
    assert_non_null(out);
    memcpy(out, w.data, w.len);
    *len = w.len;
    luna_wbuf_free(&w);
    luna_wipe(csk, sizeof(csk));
    luna_wipe(tsk, sizeof(tsk));
    return out;
}

static void run_job(const char *token, const uint8_t *env, size_t len, const char *idem,
                    const char *extra, gwh_resp *r)
{
    char hdr[9400];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nX-Lunal-Otk-Id: otk-1\r\n%s%s%s%s",
             token, idem != NULL ? "Idempotency-Key: " : "", idem != NULL ? idem : "",
             idem != NULL ? "\r\n" : "", extra != NULL ? extra : "");
    gwh_call(&H, "POST", "/v1/jobs/run", hdr, "application/octet-stream", env, len, r);
}

/* ---------------------------------------------------------------------- */

static void test_public_tls_and_health(void **state)
{
    (void)state;
    gwh_resp r;
    gwh_call(&H, "GET", "/v1/health", NULL, NULL, NULL, 0, &r);
    assert_int_equal(200, r.status); /* no client certificate was presented */
    assert_string_equal("ok", json_string_value(json_object_get(r.body, "status")));
    gwh_resp_free(&r);
    /* Metrics are not published on the public listener. */
    gwh_call(&H, "GET", "/metrics", NULL, NULL, NULL, 0, &r);
    assert_int_equal(404, r.status);
    gwh_resp_free(&r);
}

static void test_token_relay(void **state)
{
    (void)state;
    char *t = client_token();
    assert_true(strlen(t) > 20);
    free(t);
    gwh_resp r;
    const char *body = "{\"tenant_id\":\"acme\"}";
    post_json("/v1/auth/token", NULL, "Authorization: ApiKey lak_0000000000000000.bad\r\n", body,
              &r);
    assert_int_equal(401, r.status);
    assert_string_equal("invalid_api_key", gwh_err_code(&r));
    gwh_resp_free(&r);
    /* acme does not allow anonymous requests */
    post_json("/v1/auth/token", NULL, NULL, body, &r);
    assert_int_equal(401, r.status);
    assert_string_equal("anonymous_not_allowed", gwh_err_code(&r));
    gwh_resp_free(&r);
    post_json("/v1/auth/token", NULL, "Authorization: Basic YTpi\r\n", body, &r);
    assert_int_equal(401, r.status);
    assert_string_equal("invalid_authorization", gwh_err_code(&r));
    gwh_resp_free(&r);
}

static void test_validation_refusals(void **state)
{
    (void)state;
    gwh_resp r;
    post_json("/v1/auth/token", NULL, NULL, "{\"tenant_id\":\"acme\",\"role\":\"admin\"}", &r);
    assert_int_equal(400, r.status);
    assert_string_equal("invalid_request", gwh_err_code(&r));
    gwh_resp_free(&r);
    post_json("/v1/auth/token", NULL, NULL, "{\"tenant_id\":\"acme\",\"tenant_id\":\"beta\"}", &r);
    assert_int_equal(400, r.status);
    assert_string_equal("invalid_request", gwh_err_code(&r));
    gwh_resp_free(&r);
    post_json("/v1/auth/token", NULL, NULL, "{\"tenant_id\":7}", &r);
    assert_int_equal(400, r.status);
    gwh_resp_free(&r);
    post_json("/v1/auth/token", NULL, NULL, "{\"tenant_id\":\"ac\xff\xfe\"}", &r);
    assert_int_equal(400, r.status);
    assert_non_null(r.body);
    gwh_resp_free(&r);
    post_json("/v1/auth/token", NULL, NULL,
              "{\"tenant_id\":\"acme\",\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", &r);
    assert_true(r.status == 400 || r.status == 413);
    assert_non_null(r.body);
    gwh_resp_free(&r);
    /* JSON over the JSON cap but under the body cap: 413 with a JSON body */
    size_t big = 20000;
    char *b = malloc(big + 64);
    assert_non_null(b);
    int n = snprintf(b, 64, "{\"tenant_id\":\"");
    memset(b + n, 'a', big);
    strcpy(b + n + big, "\"}");
    post_json("/v1/auth/token", NULL, NULL, b, &r);
    assert_int_equal(413, r.status);
    assert_string_equal("too_large", gwh_err_code(&r));
    gwh_resp_free(&r);
    free(b);
    /* over the body cap: refused before buffering (status only, libevent 2.1) */
    big = 300000;
    b = malloc(big);
    assert_non_null(b);
    memset(b, 'a', big);
    gwh_call(&H, "POST", "/v1/auth/token", NULL, "application/json", b, big, &r);
    assert_int_equal(413, r.status);
    gwh_resp_free(&r);
    free(b);
    const char *body = "{\"tenant_id\":\"acme\"}";
    gwh_call(&H, "POST", "/v1/auth/token", NULL, "text/plain", body, strlen(body), &r);
    assert_int_equal(415, r.status);
    assert_string_equal("unsupported_media_type", gwh_err_code(&r));
    gwh_resp_free(&r);
    post_json("/v1/auth/token", NULL, "X-Request-Id: bad id!\r\n", body, &r);
    assert_int_equal(400, r.status);
    assert_string_equal("invalid_request_id", gwh_err_code(&r));
    gwh_resp_free(&r);
    post_json("/v1/auth/token?x=1", NULL, NULL, body, &r);
    assert_int_equal(400, r.status);
    assert_string_equal("unexpected_query", gwh_err_code(&r));
    gwh_resp_free(&r);
    /* positive control on the same route */
    post_json("/v1/auth/token", NULL, "X-Request-Id: good-id.1\r\n", body, &r);
    assert_int_equal(401, r.status); /* reached IAM: anonymous not allowed */
    assert_non_null(strstr(r.raw.buf, "good-id.1"));
    gwh_resp_free(&r);
}

static void test_auth_refusals(void **state)
{
    (void)state;
    gwh_resp r;
    post_json("/v1/tees/select", NULL, NULL, "{\"job\":\"summarize\"}", &r);
    assert_int_equal(401, r.status);
    assert_string_equal("missing_token", gwh_err_code(&r));
    gwh_resp_free(&r);
    post_json("/v1/tees/select", "eyJhbGciOiJFZERTQSJ9.e30.AAAA", NULL, "{\"job\":\"summarize\"}",
              &r);
    assert_int_equal(401, r.status);
    assert_string_equal("invalid_token", gwh_err_code(&r));
    gwh_resp_free(&r);
    char *t = client_token();
    /* a token with one flipped character in its signature */
    char *bad = strdup(t);
    size_t L = strlen(bad);
    bad[L - 3] = bad[L - 3] == 'A' ? 'B' : 'A';
    post_json("/v1/tees/select", bad, NULL, "{\"job\":\"summarize\"}", &r);
    assert_int_equal(401, r.status);
    assert_string_equal("invalid_token", gwh_err_code(&r));
    gwh_resp_free(&r);
    free(bad);
    /* tenant mismatch: the caller says it acts for another tenant */
    post_json("/v1/tees/select", t, "X-Lunal-Tenant-Id: other\r\n", "{\"job\":\"summarize\"}", &r);
    assert_int_equal(403, r.status);
    assert_string_equal("tenant_mismatch", gwh_err_code(&r));
    gwh_resp_free(&r);
    /* role boundary: an auditor cannot run jobs */
    char *at = gwh_token(&H, "acme", auditor_key);
    assert_non_null(at);
    post_json("/v1/tees/select", at, NULL, "{\"job\":\"summarize\"}", &r);
    assert_int_equal(403, r.status);
    assert_string_equal("permission_denied", gwh_err_code(&r));
    gwh_resp_free(&r);
    free(at);
    /* expired: the same good token after its lifetime */
    sleep(TOKEN_TTL + 1);
    post_json("/v1/tees/select", t, NULL, "{\"job\":\"summarize\"}", &r);
    assert_int_equal(401, r.status);
    assert_string_equal("token_expired", gwh_err_code(&r));
    gwh_resp_free(&r);
    free(t);
}

static void test_selection_only_eligible(void **state)
{
    (void)state;
    bool seen[GWH_TEES + 1] = {false};
    for (int i = 0; i < 12; i++) {
        char *t = client_token();
        char id[16];
        assert_int_equal(200, select_tee(t, "summarize", id));
        free(t);
        assert_true(strcmp(id, "t1") == 0 || strcmp(id, "t2") == 0);
        seen[id[1] - '0'] = true;
    }
    assert_true(seen[1] && seen[2]); /* spread over the eligible ones */
    /* a deployment no eligible TEE runs: nothing to choose, retryable */
    char *t = client_token();
    gwh_resp r;
    post_json("/v1/tees/select", t, NULL, "{\"job\":\"summarize\",\"deployment_id\":\"d9\"}", &r);
    assert_int_equal(503, r.status);
    assert_string_equal("no_tee_available", gwh_err_code(&r));
    assert_true(r.retry_after[0] != '\0');
    gwh_resp_free(&r);
    free(t);
    assert_true(gwh_file_has(H.audit_log, "\"operation\":\"tee.select\"", 24));
}

static void test_otk_relay(void **state)
{
    (void)state;
    char *t = client_token();
    gwh_resp r;
    const char *pk = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    char body[256];
    /* t3 was never selected for acme (it is not authorized for it) */
    snprintf(body, sizeof(body),
             "{\"tee_id\":\"t3\",\"job\":\"summarize\",\"request_id\":\"r1\",\"client_pk\":\"%s\"}",
             pk);
    post_json("/v1/otk", t, NULL, body, &r);
    assert_int_equal(403, r.status);
    assert_string_equal("tee_not_assigned", gwh_err_code(&r));
    gwh_resp_free(&r);
    snprintf(body, sizeof(body),
             "{\"tee_id\":\"t1\",\"job\":\"summarize\",\"request_id\":\"r1\",\"client_pk\":\"%s\"}",
             pk);
    /* Without the KMS token the relay refuses: the gateway never forwards
       its own token (docs/protocol.md, token audiences). */
    gwh_resp r0;
    {
        char hdr[9000];
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", t);
        gwh_call(&H, "POST", "/v1/otk", hdr, "application/json", body, strlen(body), &r0);
    }
    assert_int_equal(401, r0.status);
    assert_string_equal("missing_downstream_token", gwh_err_code(&r0));
    gwh_resp_free(&r0);
    post_json("/v1/otk", t, NULL, body, &r);
    assert_int_equal(200, r.status);
    assert_string_equal("otk-r1", json_string_value(json_object_get(r.body, "otk_id")));
    assert_non_null(json_string_value(json_object_get(r.body, "sealed_otk")));
    gwh_resp_free(&r);
    /* client_pk of the wrong size */
    post_json("/v1/otk", t, NULL,
              "{\"tee_id\":\"t1\",\"job\":\"summarize\",\"request_id\":\"r1\",\"client_pk\":\"AAEC\"}",
              &r);
    assert_int_equal(400, r.status);
    gwh_resp_free(&r);
    free(t);
}

static void test_job_relay_and_idempotency(void **state)
{
    (void)state;
    char *t = client_token();
    char pt[128];
    snprintf(pt, sizeof(pt), "{\"text\":\"%s\"}", marker);
    size_t len = 0;
    uint8_t *env = make_envelope("acme", "summarize", "t1", "req-1", pt, &len);
    gwh_resp r;
    run_job(t, env, len, "idem-A", NULL, &r);
    assert_int_equal(200, r.status);
    const char *b = htu_raw_body(&r.raw);
    assert_non_null(b);
    assert_memory_equal("LUNE", b, 4);
    assert_int_equal(2, b[5]); /* a result envelope */
    gwh_resp_free(&r);
    /* same key, same body: the same answer, replayed */
    run_job(t, env, len, "idem-A", NULL, &r);
    assert_int_equal(200, r.status);
    char v[16];
    assert_true(htu_raw_header(&r.raw, "Idempotency-Replayed", v, sizeof(v)));
    gwh_resp_free(&r);
    /* same key, another body: conflict */
    size_t len2 = 0;
    uint8_t *env2 = make_envelope("acme", "summarize", "t1", "req-2", pt, &len2);
    run_job(t, env2, len2, "idem-A", NULL, &r);
    assert_int_equal(409, r.status);
    assert_string_equal("idempotency_conflict", gwh_err_code(&r));
    gwh_resp_free(&r);
    /* an envelope naming another tenant than the token */
    size_t len3 = 0;
    uint8_t *env3 = make_envelope("other", "summarize", "t1", "req-3", pt, &len3);
    run_job(t, env3, len3, NULL, NULL, &r);
    assert_int_equal(403, r.status);
    assert_string_equal("tenant_mismatch", gwh_err_code(&r));
    gwh_resp_free(&r);
    /* not an envelope; wrong content type; no OTK id */
    run_job(t, (const uint8_t *)"hello", 5, NULL, NULL, &r);
    assert_int_equal(400, r.status);
    assert_string_equal("invalid_envelope", gwh_err_code(&r));
    gwh_resp_free(&r);
    char hdr[9000];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nX-Lunal-Otk-Id: otk-1\r\n", t);
    gwh_call(&H, "POST", "/v1/jobs/run", hdr, "application/json", env, len, &r);
    assert_int_equal(415, r.status);
    gwh_resp_free(&r);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", t);
    gwh_call(&H, "POST", "/v1/jobs/run", hdr, "application/octet-stream", env, len, &r);
    assert_int_equal(400, r.status);
    assert_string_equal("invalid_otk_id", gwh_err_code(&r));
    gwh_resp_free(&r);
    free(env);
    free(env2);
    free(env3);
    free(t);
    assert_true(gwh_file_has(H.audit_log, "\"operation\":\"job.submit\"", 24));
    assert_true(gwh_file_has(H.audit_log, "\"operation\":\"job.run\"", 21));
}

static void test_plaintext_never_in_gateway(void **state)
{
    (void)state;
    /* Control first: markers planted where the gateway does keep them. */
    char ctl[64], ctl_log[64];
    uint8_t rnd[8];
    char hex[17];
    assert_luna_ok(luna_random(rnd, sizeof(rnd)));
    assert_luna_ok(luna_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex)));
    snprintf(ctl, sizeof(ctl), "CONTROL-MARKER-%s", hex);
    snprintf(ctl_log, sizeof(ctl_log), "LOGCONTROL-%s", hex);
    char *t = client_token();
    char pt[128];
    snprintf(pt, sizeof(pt), "{\"text\":\"%s\"}", marker);
    size_t len = 0;
    uint8_t *env = make_envelope("acme", "summarize", "t1", "req-9", pt, &len);
    char extra[128];
    snprintf(extra, sizeof(extra), "X-Request-Id: %s\r\n", ctl_log);
    gwh_resp r;
    run_job(t, env, len, ctl, extra, &r); /* the idempotency key stays in its cache */
    assert_int_equal(200, r.status);
    gwh_resp_free(&r);
    free(env);
    free(t);
    usleep(200 * 1000);
    if (geteuid() != 0) {
        fprintf(stderr, "memory scan needs root (the gateway is not dumpable)\n");
        exit(LUNA_TEST_SKIP);
    }
    assert_true(gwh_mem_has(H.gw.pid, ctl, strlen(ctl)));
    assert_true(gwh_file_has(H.gw_log, ctl_log, strlen(ctl_log)));
    /* The plaintext marker went through the gateway twice, sealed. */
    assert_false(gwh_mem_has(H.gw.pid, marker, strlen(marker)));
    assert_false(gwh_file_has(H.gw_log, marker, strlen(marker)));
    /* Nor are the API keys in its logs. */
    assert_false(gwh_file_has(H.gw_log, client_key, strlen(client_key)));
}

static void test_dead_tee(void **state)
{
    (void)state;
    char *t = client_token();
    char pt[64] = "{\"text\":\"slow\"}";
    size_t len = 0;
    uint8_t *env = make_envelope("acme", "slow", "t2", "req-slow", pt, &len);
    pid_t killer = fork();
    assert_true(killer >= 0);
    if (killer == 0) {
        usleep(800 * 1000);
        kill(H.tee[1].pid, SIGKILL);
        _exit(0);
    }
    gwh_resp r;
    run_job(t, env, len, "idem-slow", NULL, &r);
    waitpid(killer, NULL, 0);
    waitpid(H.tee[1].pid, NULL, 0);
    H.tee[1].pid = 0;
    assert_int_equal(503, r.status);
    assert_string_equal("tee_unavailable", gwh_err_code(&r));
    assert_true(r.retry_after[0] != '\0');
    gwh_resp_free(&r);
    /* marked unhealthy: never chosen again, and refused without a try */
    for (int i = 0; i < 6; i++) {
        char *t2 = client_token();
        char id[16];
        assert_int_equal(200, select_tee(t2, "summarize", id));
        assert_string_equal("t1", id);
        free(t2);
    }
    free(t);
    t = client_token(); /* the first one may have expired meanwhile */
    run_job(t, env, len, "idem-slow", NULL, &r);
    assert_int_equal(503, r.status);
    assert_string_equal("tee_unavailable", gwh_err_code(&r));
    gwh_resp_free(&r);
    free(env);
    free(t);
}

static void test_rate_limit(void **state)
{
    (void)state;
    gwh_resp r;
    bool limited = false;
    for (int i = 0; i < 400 && !limited; i++) {
        post_json("/v1/auth/token", NULL, NULL, "{\"tenant_id\":\"flood\"}", &r);
        if (r.status == 429) {
            limited = true;
            assert_string_equal("rate_limited", gwh_err_code(&r));
            assert_true(atoi(r.retry_after) >= 1);
        } else {
            assert_int_equal(401, r.status);
        }
        gwh_resp_free(&r);
    }
    assert_true(limited);
    /* another tenant is not affected */
    char *t = client_token();
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_tls_and_health),
        cmocka_unit_test(test_token_relay),
        cmocka_unit_test(test_validation_refusals),
        cmocka_unit_test(test_auth_refusals),
        cmocka_unit_test(test_selection_only_eligible),
        cmocka_unit_test(test_otk_relay),
        cmocka_unit_test(test_job_relay_and_idempotency),
        cmocka_unit_test(test_plaintext_never_in_gateway),
        cmocka_unit_test(test_dead_tee),
        cmocka_unit_test(test_rate_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
