/*
 * kms_harness.c - see kms_harness.h.  Test-only: plays the gateway, the
 * attestation service and the TEEs against the real luna-kms process.
 */
#include "kms_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/hpke.h"
#include "luna_test.h"

#define RESP_MAX (256u * 1024u)

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(len, fwrite(data, 1, len, f));
    assert_int_equal(0, fclose(f));
}

static void issue(kmsh *h, const char *identity, const char *name)
{
    assert_int_equal(0, htu_issue(&h->env, NULL, identity, name, NULL));
}

static void write_jwks(kmsh *h, const luna_jws_signer *s, const char *name)
{
    luna_jws_keyset *ks = NULL;
    char *doc = NULL, path[HTU_PATH_MAX];
    size_t len = 0;
    assert_luna_ok(luna_jws_keyset_new(&ks));
    assert_luna_ok(luna_jws_signer_publish(s, ks));
    assert_luna_ok(luna_jws_keyset_export(ks, &doc, &len));
    htu_path(&h->env, name, ".jwks", path, sizeof(path));
    write_file(path, doc, len);
    free(doc);
    luna_jws_keyset_free(ks);
}

void kmsh_setup(kmsh *h, const char *extra_kms_json)
{
    memset(h, 0, sizeof(*h));
    htu_setup(&h->env);
    issue(h, "lunal://svc/kms", "kms");
    issue(h, "lunal://svc/gateway", "gateway");
    issue(h, "lunal://svc/attestation", "attestation");
    issue(h, "lunal://svc/operator", "operator");
    issue(h, "lunal://svc/iam", "iam");
    hsm_token_create(&h->tok, "kms-test-pin-1234");
    int64_t now = (int64_t)time(NULL);
    assert_luna_ok(luna_sim_vendor_create(now - 86400, now + 86400 * 30, &h->vendor));
    assert_luna_ok(luna_sim_platform_create(h->vendor, LUNA_SIM_SIG_ED25519, now - 3600,
                                            now + 86400 * 30, &h->platform));
    char path[HTU_PATH_MAX];
    htu_path(&h->env, "sim-root", ".pem", path, sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(1, PEM_write_X509(f, luna_sim_vendor_cert(h->vendor)));
    assert_int_equal(0, fclose(f));
    uint8_t tcb[LUNA_SIM_TCB_MAX];
    size_t tcb_len = 0;
    luna_sim_tcb_params tp = {.current_level = 3, .revoked_below = 1, .issued_at = now - 60,
                              .next_update = now + 86400 * 30};
    assert_luna_ok(luna_sim_tcb_sign(h->vendor, &tp, tcb, sizeof(tcb), &tcb_len));
    htu_path(&h->env, "tcb", ".bin", path, sizeof(path));
    write_file(path, tcb, tcb_len);
    assert_luna_ok(luna_jws_signer_generate("iam-1", &h->iam));
    assert_luna_ok(luna_jws_signer_generate("att-1", &h->att));
    write_jwks(h, h->iam, "iam");
    write_jwks(h, h->att, "att");
    memset(h->mr, 0x4d, sizeof(h->mr));
    memset(h->signer, 0x53, sizeof(h->signer));
    htu_path(&h->env, "kms", ".db", h->db, sizeof(h->db));
    htu_path(&h->env, "audit", ".log", h->audit, sizeof(h->audit));
    htu_path(&h->env, "kms", ".log", h->log, sizeof(h->log));
    htu_path(&h->env, "kms", ".json", h->config, sizeof(h->config));
    const char *pg = getenv("LUNA_TEST_PG_URL");
    if (pg != NULL && pg[0] != '\0')
        snprintf(h->storage_url, sizeof(h->storage_url), "%s", pg);
    else
        snprintf(h->storage_url, sizeof(h->storage_url), "sqlite:%s", h->db);
    if (extra_kms_json != NULL)
        snprintf(h->extra, sizeof(h->extra), "%s", extra_kms_json);
    h->port = htu_free_port();
    kmsh_write_config(h);
}

void kmsh_write_config(kmsh *h)
{
    const char *d = h->env.dir;
    const char *bin = getenv("LUNA_TEST_HSM_BIN");
    char mr[65], sg[65];
    assert_luna_ok(luna_hex_encode(h->mr, 32, mr, sizeof(mr)));
    assert_luna_ok(luna_hex_encode(h->signer, 32, sg, sizeof(sg)));
    char *text = NULL;
    int n = asprintf(
        &text,
        "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
        "\"tls\":{\"cert\":\"%s/kms.crt\",\"key\":\"%s/kms.key\",\"ca\":\"%s\"},"
        "\"storage\":{\"url\":\"%s\"},\"log\":{\"level\":\"info\"},"
        "\"attestation\":{\"allowed_evidence\":[\"sim\"],\"trust_anchors\":[\"%s/sim-root.pem\"]},"
        "\"kms\":{\"hsm\":{\"module\":\"%s\",\"token\":\"%s\",\"pin_file\":\"%s\","
        "\"hsm_path\":\"%s\",\"request_timeout_ms\":3000,\"backoff_min_ms\":20,"
        "\"backoff_max_ms\":200},"
        "\"audit\":{\"file\":\"%s\"},\"iam_jwks\":\"%s/iam.jwks\",\"attestation_jwks\":"
        "\"%s/att.jwks\",\"references\":[{\"deployment_id\":\"%s\",\"evidence_type\":\"sim\","
        "\"mr_enclave\":\"%s\",\"mr_signer\":\"%s\"}],\"collateral\":[{\"evidence_type\":"
        "\"sim\",\"file\":\"%s/tcb.bin\"}],\"rotation_tick_ms\":200,"
        "\"callers\":{\"registry\":[\"lunal://svc/attestation\",\"lunal://svc/operator\"]}%s}}",
        h->port, d, d, h->env.ca_crt, h->storage_url, d, HSM_TEST_MODULE, HSM_TEST_LABEL,
        h->tok.pin_file, bin != NULL ? bin : LUNA_TEST_HSM_BIN, h->audit, d, d, KMSH_DEPLOYMENT,
        mr, sg, d, h->extra);
    assert_true(n > 0);
    write_file(h->config, text, (size_t)n);
    free(text);
}

void kmsh_clone(kmsh *h, const char *name, kmsh *out)
{
    *out = *h;
    out->pid = 0;
    out->port = htu_free_port();
    htu_path(&h->env, name, ".json", out->config, sizeof(out->config));
    htu_path(&h->env, name, ".log", out->log, sizeof(out->log));
    kmsh_write_config(out);
}

bool kmsh_try_start(kmsh *h, int *exit_code)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Dies with the test (a failed assertion skips the stop), and keeps
         * none of the test's pipes open. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        execl(LUNA_KMS_BIN, LUNA_KMS_BIN, "serve", "--config", h->config, (char *)NULL);
        _exit(127);
    }
    long end = htu_now_ms() + 20000;
    while (htu_now_ms() < end) {
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            h->pid = 0;
            return false;
        }
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(h->port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (rc == 0) {
            h->pid = pid;
            return true;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    *exit_code = -2;
    return false;
}

void kmsh_start(kmsh *h)
{
    int code = 0;
    if (!kmsh_try_start(h, &code))
        fail_msg("luna-kms did not start (exit %d); see %s", code, h->log);
}

int kmsh_stop(kmsh *h, int sig)
{
    if (h->pid <= 0)
        return -1;
    kill(h->pid, sig);
    long end = htu_now_ms() + 10000;
    int st = 0;
    while (htu_now_ms() < end) {
        if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
            h->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(h->pid, SIGKILL);
    waitpid(h->pid, NULL, 0);
    h->pid = 0;
    return -1;
}

void kmsh_teardown(kmsh *h)
{
    if (h->pid > 0)
        (void)kmsh_stop(h, SIGTERM);
    if (getenv("LUNA_KMS_TEST_KEEP") == NULL) {
        htu_teardown(&h->env);
        hsm_token_destroy(&h->tok);
    }
    luna_sim_platform_free(h->platform);
    luna_sim_vendor_free(h->vendor);
    luna_jws_signer_free(h->iam);
    luna_jws_signer_free(h->att);
}

int kmsh_call(const kmsh *h, const char *cert, const char *method, const char *path,
              const char *token, const char *body, kmsh_resp *r)
{
    memset(r, 0, sizeof(*r));
    char crt[HTU_PATH_MAX], key[HTU_PATH_MAX];
    htu_path(&h->env, cert, ".crt", crt, sizeof(crt));
    htu_path(&h->env, cert, ".key", key, sizeof(key));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return -1;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        SSL_CTX_free(ctx);
        return -1;
    }
    int rc = -1;
    SSL *ssl = NULL;
    char *req = NULL, *buf = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(h->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
        goto out;
    size_t blen = body != NULL ? strlen(body) : 0;
    char auth[9000] = "";
    if (token != NULL)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                     "%sContent-Length: %zu\r\n\r\n%s",
                     method, path, auth, blen ? "Content-Type: application/json\r\n" : "", blen,
                     body != NULL ? body : "");
    if (n < 0 || SSL_write(ssl, req, n) != n)
        goto out;
    buf = malloc(RESP_MAX + 1);
    if (buf == NULL)
        goto out;
    size_t got = 0;
    for (;;) {
        int k = SSL_read(ssl, buf + got, (int)(RESP_MAX - got));
        if (k <= 0)
            break;
        got += (size_t)k;
        if (got == RESP_MAX)
            break;
    }
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.1 %d", &r->status) != 1)
        goto out;
    const char *b = strstr(buf, "\r\n\r\n");
    if (b != NULL) {
        r->body = json_loads(b + 4, 0, NULL);
        const char *code = json_string_value(
            json_object_get(json_object_get(r->body, "error"), "code"));
        if (code != NULL)
            snprintf(r->code, sizeof(r->code), "%s", code);
    }
    rc = 0;
out:
    free(buf);
    free(req);
    if (ssl != NULL) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    return rc;
}

void kmsh_resp_free(kmsh_resp *r)
{
    json_decref(r->body);
    r->body = NULL;
}

char *kmsh_token(const kmsh *h, const char *tenant, const char *roles)
{
    int64_t now = (int64_t)time(NULL);
    json_t *arr = json_array();
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", roles);
    for (char *save = NULL, *p = strtok_r(tmp, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save))
        json_array_append_new(arr, json_string(p));
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/p-test", tenant);
    json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:I,s:s}", "iss", "lunal://svc/iam",
                          "aud", LUNA_AUD_KMS, "sub", sub, "tenant", tenant, "principal", "p-test",
                          "kind", "user", "roles", arr, "iat", (json_int_t)now, "exp",
                          (json_int_t)(now + 600), "jti", "j1");
    char *tok = NULL;
    assert_luna_ok(luna_jws_sign(h->iam, c, &tok, NULL));
    json_decref(c);
    return tok;
}

void kmsh_tee_new(kmsh *h, const char *id, kmsh_tee *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    snprintf(t->cert, sizeof(t->cert), "tee-%s", id);
    assert_luna_ok(luna_hpke_generate_keypair(t->kx_sk, t->kx_pk));
    assert_luna_ok(luna_ed25519_keygen(t->sign_seed, t->sign_pk));
    char ident[128];
    snprintf(ident, sizeof(ident), "lunal://tee/%s", id);
    issue(h, ident, t->cert);
}

size_t kmsh_evidence(const kmsh *h, const kmsh_tee *t, const uint8_t nonce[32], int64_t ts,
                     const uint8_t *mr, uint8_t *out, size_t cap)
{
    luna_sim_evidence_params p;
    memset(&p, 0, sizeof(p));
    p.tcb_level = 5;
    memcpy(p.measurement, mr != NULL ? mr : h->mr, 32);
    memcpy(p.signer, h->signer, 32);
    memcpy(p.tee_x25519, t->kx_pk, 32);
    p.has_tee_ed25519 = true;
    memcpy(p.tee_ed25519, t->sign_pk, 32);
    memcpy(p.nonce, nonce, 32);
    p.timestamp = ts;
    size_t len = 0;
    assert_luna_ok(luna_sim_evidence_sign(h->platform, &p, out, cap, &len));
    return len;
}

char *kmsh_report(const kmsh *h, const kmsh_tee *t, const char *deployment, int64_t iat,
                  const luna_jws_signer *signer)
{
    char kx[64], sg[64], mr[65], ms[65];
    assert_luna_ok(luna_b64url_encode(t->kx_pk, 32, kx, sizeof(kx)));
    assert_luna_ok(luna_b64url_encode(t->sign_pk, 32, sg, sizeof(sg)));
    assert_luna_ok(luna_hex_encode(h->mr, 32, mr, sizeof(mr)));
    assert_luna_ok(luna_hex_encode(h->signer, 32, ms, sizeof(ms)));
    json_t *c = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:s,s:s}", "iss",
                          "lunal://svc/attestation", "sub", t->id, "iat", (json_int_t)iat, "exp",
                          (json_int_t)(iat + 600), "jti", "att_1", "deployment_id", deployment,
                          "evidence_type", "sim", "simulated", 1, "mr_enclave", mr, "mr_signer",
                          ms, "tcb_status", "up_to_date", "qe_identity_status", "not_applicable",
                          "tee_kx_pk", kx, "tee_sign_pk", sg);
    char *tok = NULL;
    assert_luna_ok(luna_jws_sign(signer != NULL ? signer : h->att, c, &tok, NULL));
    json_decref(c);
    return tok;
}

static char *b64(const uint8_t *b, size_t n)
{
    char *s = malloc(LUNA_B64URL_ENC_LEN(n));
    assert_non_null(s);
    assert_luna_ok(luna_b64url_encode(b, n, s, LUNA_B64URL_ENC_LEN(n)));
    return s;
}

void kmsh_admit(kmsh *h, const kmsh_tee *t, const char *tenants_json)
{
    char mr[65], body[1024], path[128];
    assert_luna_ok(luna_hex_encode(h->mr, 32, mr, sizeof(mr)));
    snprintf(body, sizeof(body),
             "{\"tee_id\":\"%s\",\"tenants\":%s,\"deployment_id\":\"%s\",\"tee_type\":\"sim\","
             "\"mr_enclave\":\"%s\"}",
             t->id, tenants_json, KMSH_DEPLOYMENT, mr);
    kmsh_resp r;
    assert_int_equal(0, kmsh_call(h, "attestation", "POST", "/v1/kms/tees", NULL, body, &r));
    assert_int_equal(201, r.status);
    kmsh_resp_free(&r);
    uint8_t nonce[32], ev[LUNA_SIM_EVIDENCE_MAX];
    assert_luna_ok(luna_random(nonce, 32));
    size_t len = kmsh_evidence(h, t, nonce, (int64_t)time(NULL), NULL, ev, sizeof(ev));
    char *e = b64(ev, len), *kx = b64(t->kx_pk, 32), *sg = b64(t->sign_pk, 32);
    char *big = NULL;
    assert_true(asprintf(&big,
                         "{\"evidence\":\"%s\",\"evidence_type\":\"sim\",\"tee_kx_pk\":\"%s\","
                         "\"tee_sign_pk\":\"%s\"}",
                         e, kx, sg) > 0);
    snprintf(path, sizeof(path), "/v1/kms/tees/%s/activate", t->id);
    assert_int_equal(0, kmsh_call(h, "attestation", "POST", path, NULL, big, &r));
    if (r.status != 200)
        fail_msg("activate: %d %s", r.status, r.code);
    assert_string_equal("active", json_string_value(json_object_get(r.body, "status")));
    kmsh_resp_free(&r);
    free(big);
    free(e);
    free(kx);
    free(sg);
}

bool kmsh_b64(const json_t *o, const char *k, uint8_t *out, size_t cap, size_t *len)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL && luna_b64url_decode(s, strlen(s), out, cap, len) == LUNA_OK;
}

int kmsh_issue(const kmsh *h, const char *token, const char *tee_id, const char *job,
               const char *rid, const uint8_t client_pk[32], char otk_id[64], uint8_t sealed[80],
               kmsh_resp *r)
{
    char pk[64], body[512];
    kmsh_resp local = {0};
    kmsh_resp *rr = r != NULL ? r : &local;
    if (luna_b64url_encode(client_pk, 32, pk, sizeof(pk)) != LUNA_OK)
        return -1;
    snprintf(body, sizeof(body),
             "{\"tee_id\":\"%s\",\"job\":\"%s\",\"request_id\":\"%s\",\"client_pk\":\"%s\"}",
             tee_id, job, rid, pk);
    if (kmsh_call(h, "gateway", "POST", "/v1/kms/otk", token, body, rr) != 0)
        return -1;
    int status = rr->status;
    size_t n = 0;
    if (status == 200) {
        const char *id = json_string_value(json_object_get(rr->body, "otk_id"));
        if (id == NULL || strlen(id) >= 64 || !kmsh_b64(rr->body, "sealed_otk", sealed, 80, &n) ||
            n != 80)
            status = -1;
        else
            snprintf(otk_id, 64, "%s", id);
    }
    if (r == NULL)
        kmsh_resp_free(&local);
    return status;
}

int kmsh_challenge(const kmsh *h, const kmsh_tee *as, const char *tee_id, const char *otk_id,
                   uint8_t nonce[32])
{
    char body[256];
    kmsh_resp r;
    size_t n = 0;
    snprintf(body, sizeof(body), "{\"tee_id\":\"%s\",\"otk_id\":\"%s\"}", tee_id, otk_id);
    if (kmsh_call(h, as->cert, "POST", "/v1/kms/otk/challenge", NULL, body, &r) != 0)
        return -1;
    int status = r.status;
    if (status == 200 && (!kmsh_b64(r.body, "nonce", nonce, 32, &n) || n != 32))
        status = -1;
    kmsh_resp_free(&r);
    return status;
}

int kmsh_release(const kmsh *h, const kmsh_tee *as, const char *tee_id, const char *otk_id,
                 const uint8_t nonce[32], const uint8_t *ev, size_t ev_len, const char *report,
                 kmsh_resp *r)
{
    char nb[64];
    char *evb = malloc(LUNA_B64URL_ENC_LEN(ev_len));
    if (evb == NULL || luna_b64url_encode(nonce, 32, nb, sizeof(nb)) != LUNA_OK ||
        luna_b64url_encode(ev, ev_len, evb, LUNA_B64URL_ENC_LEN(ev_len)) != LUNA_OK) {
        free(evb);
        return -1;
    }
    char *body = NULL;
    int n = asprintf(&body,
                     "{\"tee_id\":\"%s\",\"otk_id\":\"%s\",\"nonce\":\"%s\",\"evidence\":\"%s\","
                     "\"evidence_type\":\"sim\",\"report\":\"%s\"}",
                     tee_id, otk_id, nb, evb, report);
    free(evb);
    if (n < 0)
        return -1;
    int rc = kmsh_call(h, as->cert, "POST", "/v1/kms/otk/release", NULL, body, r);
    free(body);
    return rc == 0 ? r->status : -1;
}

int kmsh_release_honest(const kmsh *h, const kmsh_tee *t, const char *otk_id, kmsh_resp *r)
{
    uint8_t nonce[32], ev[LUNA_SIM_EVIDENCE_MAX];
    memset(r, 0, sizeof(*r));
    int st = kmsh_challenge(h, t, t->id, otk_id, nonce);
    if (st != 200)
        return st;
    int64_t now = (int64_t)time(NULL);
    size_t len = kmsh_evidence(h, t, nonce, now, NULL, ev, sizeof(ev));
    char *rep = kmsh_report(h, t, KMSH_DEPLOYMENT, now, NULL);
    st = kmsh_release(h, t, t->id, otk_id, nonce, ev, len, rep, r);
    free(rep);
    return st;
}

static bool hpke_open(const uint8_t sk[32], const uint8_t *info, size_t info_len,
                      const uint8_t sealed[80], uint8_t key[32])
{
    luna_hpke_params p = {
        .suite = {LUNA_HPKE_KEM_X25519_SHA256, LUNA_HPKE_KDF_HKDF_SHA256,
                  LUNA_HPKE_AEAD_AES256GCM},
        .mode = LUNA_HPKE_MODE_BASE,
        .info = info,
        .info_len = info_len,
    };
    luna_hpke_ctx *ctx = NULL;
    bool ok = luna_hpke_setup_receiver(&p, sk, sealed, NULL, &ctx) == LUNA_OK &&
              luna_hpke_open(ctx, NULL, 0, sealed + 32, 48, key) == LUNA_OK;
    luna_hpke_ctx_free(ctx);
    return ok;
}

static size_t put_info(uint8_t *b, size_t off, const char *s)
{
    size_t n = strlen(s);
    b[off] = (uint8_t)n;
    memcpy(b + off + 1, s, n);
    return off + 1 + n;
}

bool kmsh_open_client(const uint8_t sk[32], const char *otk_id, const char *tee_id,
                      const char *rid, const uint8_t sealed[80], uint8_t key[32])
{
    uint8_t info[512];
    const char *label = "lunal otk to client v1";
    size_t off = strlen(label);
    memcpy(info, label, off);
    off = put_info(info, off, otk_id);
    off = put_info(info, off, tee_id);
    off = put_info(info, off, rid);
    return hpke_open(sk, info, off, sealed, key);
}

bool kmsh_open_tee(const kmsh_tee *t, const char *otk_id, const uint8_t sealed[80],
                   uint8_t key[32])
{
    uint8_t info[512];
    const char *label = "lunal otk to tee v1";
    size_t off = strlen(label);
    memcpy(info, label, off);
    off = put_info(info, off, otk_id);
    off = put_info(info, off, t->id);
    return hpke_open(t->kx_sk, info, off, sealed, key);
}

int kmsh_audit_count(const kmsh *h, const char *needle)
{
    FILE *f = fopen(h->audit, "r");
    if (f == NULL)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}
