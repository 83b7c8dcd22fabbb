/*
 * test_tee_flow.c - the SIMULATED TEE platform and runtime as real
 * processes on loopback (tee/).  This test plays the attestation service
 * and the KMS with in-process stubs that follow docs/protocol.md (the real
 * services are other issues' work) and verify evidence with the real
 * verifier library, and plays the gateway and the client with the real
 * envelope code.  It shows:
 *   - the platform measures what runs: the measurement matches the one
 *     computed offline, replacing the binary on disk under a running
 *     runtime changes nothing, a swapped binary changes it (and the
 *     verifier refuses it with measurement_mismatch);
 *   - a manifest signed by another key and a bundle whose hash differs
 *     from build_hash are refused (the runtime exits, nothing served);
 *   - admission gives the runtime its certificate; /v1/tee/run opens the
 *     envelope after the OTK challenge/release, runs the demo job and the
 *     client opens and checks the result and its receipt; a replay is
 *     refused; /v1/tee/evidence proves a reset memory state;
 *   - a job cannot open a socket or write a file through the real runtime;
 *   - a scan of /proc/PID/mem of the runtime and its job child finds the
 *     plaintext marker during the job and nowhere after it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/pem.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/envelope.h"
#include "luna/evidence_sim.h"
#include "luna/hpke.h"
#include "luna/http.h"
#include "luna/manifest.h"
#include "luna/pki.h"
#include "luna/verifier.h"
#include "luna_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define SCAN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCAN_ASAN 1
#endif
#endif
#ifndef SCAN_ASAN
#define SCAN_ASAN 0
#endif
#include "measure.h"

#define P 600
#define ARENA_LEN (8u * 1024u * 1024u) /* RT_ARENA_LEN of tee/runtime.h */

/* ---- the world: folders, PKI, developer, deployments ---- */
typedef struct world {
    char dir[256];
    char bin[256];
    char ca[P], tee_ca[P];
    uint8_t dev_seed[32], dev_pk[32], other_seed[32];
    uint8_t mr_demo[32], mr_test[32]; /* expected measurements */
    uint16_t att_port, kms_port, host_port, base_port;
    luna_pki_ca *tee_ca_obj;
    X509 *vendor;
} world;
static world W;

static void pathf(char *out, const char *name)
{
    snprintf(out, P, "%s/%s", W.dir, name);
}

static void write_text(const char *name, const char *text)
{
    char p[P];
    pathf(p, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void issue(luna_pki_ca *ca, const char *identity, const char *name)
{
    EVP_PKEY *k = NULL;
    X509 *c = NULL;
    int64_t nb, na;
    char p[P];
    assert_luna_ok(luna_pki_keygen(&k));
    assert_luna_ok(luna_pki_validity_hours(24, &nb, &na));
    assert_luna_ok(luna_pki_issue(ca, k, identity, nb, na, &c));
    snprintf(p, P, "%s/%s.crt", W.dir, name);
    assert_luna_ok(luna_pki_write_cert(p, c));
    snprintf(p, P, "%s/%s.key", W.dir, name);
    assert_luna_ok(luna_pki_write_key(p, k));
    X509_free(c);
    EVP_PKEY_free(k);
}

static void copy_file(const char *from, const char *to, const char *extra)
{
    size_t n;
    uint8_t *b = luna_test_read_file(from, &n);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(n, fwrite(b, 1, n, f));
    if (extra != NULL)
        fputs(extra, f);
    fclose(f);
    chmod(to, 0755);
    free(b);
}

static void b64(const uint8_t *b, size_t n, char *out, size_t cap)
{
    assert_luna_ok(luna_b64url_encode(b, n, out, cap));
}

/* Runtime config for a TEE on port; its bytes are what gets measured. */
static void runtime_config(const char *name, const char *deployment, uint16_t port)
{
    char pk[64], text[4096];
    b64(W.dev_pk, 32, pk, sizeof(pk));
    snprintf(text, sizeof(text),
             "{\"deployment_id\":\"%s\",\"developer_id\":\"dev_test\",\"developer_pk\":\"%s\","
             "\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"ca\":\"%s\",\"tee_ca\":\"%s\"},"
             "\"kms\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"limits\":{\"cpu_seconds\":2,\"wall_ms\":15000,\"memory_mib\":128,"
             "\"result_kib\":256,\"scratch_kib\":1024}}",
             deployment, pk, (unsigned)port, W.ca, W.tee_ca, (unsigned)W.kms_port);
    write_text(name, text);
}

static void expected_mr(const char *runtime, const char *bundle, const char *config, uint8_t mr[32])
{
    uint8_t exe[32], bun[32], ch[32];
    size_t n;
    char p[P], why[256];
    luna_tee_config tc;
    pathf(p, config);
    uint8_t *cfg = luna_test_read_file(p, &n);
    assert_luna_ok(luna_tee_config_parse(cfg, n, &tc, why, sizeof(why)));
    assert_luna_ok(luna_tee_config_hash(&tc, ch));
    assert_luna_ok(luna_tee_hash_path(runtime, exe));
    assert_luna_ok(luna_tee_hash_path(bundle, bun));
    assert_luna_ok(luna_tee_mr_enclave(exe, bun, ch, mr));
    free(cfg);
}

static void sign_manifest(const char *name, const char *deployment, const char *bundle,
                          const uint8_t mr[32], const char *const *jobs, size_t n_jobs,
                          const uint8_t seed[32])
{
    luna_manifest m;
    memset(&m, 0, sizeof(m));
    snprintf(m.name, sizeof(m.name), "%s", deployment);
    snprintf(m.version, sizeof(m.version), "1.0.0");
    for (size_t i = 0; i < n_jobs; i++)
        snprintf(m.jobs[i], sizeof(m.jobs[i]), "%s", jobs[i]);
    m.n_jobs = n_jobs;
    assert_luna_ok(luna_tee_hash_path(bundle, m.build_hash));
    memcpy(m.mr_enclave, mr, 32);
    m.mr_enclave_len = 32;
    snprintf(m.developer_id, sizeof(m.developer_id), "dev_test");
    char *jws = NULL;
    assert_luna_ok(luna_manifest_sign(&m, seed, &jws, NULL));
    write_text(name, jws);
    free(jws);
}

/* ---- processes ---- */

static int run_wait(char *const argv[])
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    assert_int_equal(pid, waitpid(pid, &st, 0));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t start_host(const char *config, const char *log)
{
    char exe[P], cfg[P], lp[P];
    snprintf(exe, P, "%s/tee/luna-tee-host", W.bin);
    pathf(cfg, config);
    pathf(lp, log);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) != 2)
            _exit(127);
        execl(exe, "luna-tee-host", "run", "--config", cfg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Finds a log line with msg and tee_id; copies the value of key into out. */
static bool log_find(const char *log, const char *msg, const char *tee, const char *key,
                     char *out, size_t cap)
{
    char p[P], line[8192], m[128], t[128], k[64];
    pathf(p, log);
    FILE *f = fopen(p, "r");
    if (f == NULL)
        return false;
    snprintf(m, sizeof(m), "\"msg\":\"%s\"", msg);
    snprintf(t, sizeof(t), "\"tee_id\":\"%s\"", tee);
    snprintf(k, sizeof(k), "\"%s\":", key != NULL ? key : "msg");
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, m) == NULL || strstr(line, t) == NULL)
            continue;
        found = true;
        if (out != NULL) {
            const char *v = strstr(line, k);
            out[0] = '\0';
            if (v != NULL) {
                v += strlen(k);
                if (*v == '"')
                    v++;
                size_t n = strcspn(v, "\",}");
                if (n >= cap)
                    n = cap - 1;
                memcpy(out, v, n);
                out[n] = '\0';
            }
        }
    }
    fclose(f);
    return found;
}

static bool wait_log(const char *log, const char *msg, const char *tee, const char *key,
                     char *out, size_t cap, int seconds)
{
    for (int i = 0; i < seconds * 10; i++) {
        if (log_find(log, msg, tee, key, out, cap))
            return true;
        usleep(100000);
    }
    return false;
}

/* ---- stub attestation service and KMS (their own libevent thread) ---- */

typedef struct stub {
    struct event_base *base;
    luna_http_server *att, *kms;
    pthread_t thread;
    luna_verifier *verifier;
    pthread_mutex_t lock;
    uint8_t admit_challenge[32];
    uint8_t kms_nonce[32];
    char last_admit_reason[64];
    uint8_t last_admit_mr[32];
    int admitted;
    /* the one pending OTK the "client" obtained */
    char otk_id[65], tenant[65], job[65], request_id[65];
    uint8_t otk[32], client_pk[32];
    int releases;
} stub;
static stub S;

static const char *deployment_of(const char *tee)
{
    return strncmp(tee, "demo", 4) == 0 ? "demo-dep" : "test-dep";
}

static json_t *body_json(luna_http_request *req)
{
    const uint8_t *b;
    size_t n;
    json_error_t e;
    if (luna_http_request_body(req, &b, &n) != LUNA_OK)
        return NULL;
    return json_loadb((const char *)b, n, JSON_REJECT_DUPLICATES, &e);
}

static bool get_b64(json_t *o, const char *key, uint8_t *out, size_t cap, size_t *n)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL && luna_b64url_decode(s, strlen(s), out, cap, n) == LUNA_OK;
}

static void reply_b64_pair(luna_http_request *req, const char *k1, const uint8_t *b, size_t n)
{
    char s[4096];
    b64(b, n, s, sizeof(s));
    json_t *a = json_pack("{s:s, s:I}", k1, s, "expires_at", (json_int_t)time(NULL) + 60);
    luna_http_reply_json(req, 200, a);
    json_decref(a);
}

static void att_challenge(luna_http_request *req, void *arg)
{
    pthread_mutex_lock(&S.lock);
    assert_luna_ok(luna_random(S.admit_challenge, 32));
    uint8_t c[32];
    memcpy(c, S.admit_challenge, 32);
    pthread_mutex_unlock(&S.lock);
    reply_b64_pair(req, "nonce", c, 32);
}

static bool verify(const char *tee, const uint8_t *ev, size_t ev_len, const uint8_t nonce[32],
                   luna_verify_result *res)
{
    luna_verify_input in = {.type = LUNA_EVIDENCE_SIM, .evidence = ev, .evidence_len = ev_len,
                            .deployment_id = deployment_of(tee), .nonce = nonce};
    memset(res, 0, sizeof(*res));
    return luna_verifier_verify(S.verifier, &in, res) == LUNA_OK;
}

static void att_admit(luna_http_request *req, void *arg)
{
    json_t *b = body_json(req);
    uint8_t ev[4096], spki[512], c[32], buf[14 + 64], nonce[32];
    size_t ev_len, spki_len, n;
    const char *tee = b != NULL ? json_string_value(json_object_get(b, "tee_id")) : NULL;
    if (tee == NULL || !get_b64(b, "evidence", ev, sizeof(ev), &ev_len) ||
        !get_b64(b, "tls_spki", spki, sizeof(spki), &spki_len) ||
        !get_b64(b, "nonce", c, sizeof(c), &n) || n != 32) {
        json_decref(b);
        luna_http_reply_error(req, 400, "bad_request", "bad admission");
        return;
    }
    pthread_mutex_lock(&S.lock);
    bool fresh = luna_ct_equal(c, S.admit_challenge, 32);
    pthread_mutex_unlock(&S.lock);
    /* The admission nonce binds the TLS key: SHA-256("lunal admit v1" || c || SHA-256(spki)). */
    memcpy(buf, "lunal admit v1", 14);
    memcpy(buf + 14, c, 32);
    assert_luna_ok(luna_sha256(spki, spki_len, buf + 46));
    assert_luna_ok(luna_sha256(buf, 78, nonce));
    luna_verify_result res;
    bool ok = fresh && verify(tee, ev, ev_len, nonce, &res);
    pthread_mutex_lock(&S.lock);
    snprintf(S.last_admit_reason, sizeof(S.last_admit_reason), "%s",
             fresh ? luna_verify_reason_name(res.reason) : "stale_challenge");
    if (ok) {
        memcpy(S.last_admit_mr, res.claims.measurement, 32);
        S.admitted++;
    }
    pthread_mutex_unlock(&S.lock);
    if (!ok) {
        json_decref(b);
        luna_http_reply_error(req, 403, "refused", "evidence refused");
        return;
    }
    EVP_PKEY *pub = NULL;
    X509 *cert = NULL;
    int64_t nb, na;
    char id[128];
    snprintf(id, sizeof(id), "lunal://tee/%s", tee);
    assert_luna_ok(luna_pki_pubkey_from_der(spki, spki_len, &pub));
    assert_luna_ok(luna_pki_validity_hours(1, &nb, &na));
    assert_luna_ok(luna_pki_issue(W.tee_ca_obj, pub, id, nb, na, &cert));
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    assert_true(PEM_write_bio_X509(bio, cert) == 1);
    BIO_get_mem_ptr(bio, &mem);
    json_t *a = json_pack("{s:s#, s:s, s:s}", "certificate", mem->data, (int)mem->length,
                          "report", "stub.attestation.report", "status", "verified");
    luna_http_reply_json(req, 200, a);
    json_decref(a);
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(pub);
    json_decref(b);
}

static void kms_challenge(luna_http_request *req, void *arg)
{
    pthread_mutex_lock(&S.lock);
    assert_luna_ok(luna_random(S.kms_nonce, 32));
    uint8_t c[32];
    memcpy(c, S.kms_nonce, 32);
    pthread_mutex_unlock(&S.lock);
    reply_b64_pair(req, "nonce", c, 32);
}

static void kms_release(luna_http_request *req, void *arg)
{
    json_t *b = body_json(req);
    uint8_t ev[4096], nonce[32];
    size_t ev_len, n;
    const char *tee = b != NULL ? json_string_value(json_object_get(b, "tee_id")) : NULL;
    const char *otk_id = b != NULL ? json_string_value(json_object_get(b, "otk_id")) : NULL;
    char want[160];
    snprintf(want, sizeof(want), "lunal://tee/%s", tee != NULL ? tee : "");
    pthread_mutex_lock(&S.lock);
    bool ok = tee != NULL && otk_id != NULL && strcmp(luna_http_request_identity(req), want) == 0 &&
              get_b64(b, "evidence", ev, sizeof(ev), &ev_len) &&
              get_b64(b, "nonce", nonce, sizeof(nonce), &n) && n == 32 &&
              luna_ct_equal(nonce, S.kms_nonce, 32) && strcmp(otk_id, S.otk_id) == 0 &&
              S.releases == 0;
    luna_verify_result res;
    ok = ok && verify(tee, ev, ev_len, nonce, &res) && res.claims.has_tee_x25519;
    if (!ok) {
        pthread_mutex_unlock(&S.lock);
        json_decref(b);
        luna_http_reply_error(req, 403, "refused", "no release");
        return;
    }
    S.releases++;
    /* HPKE base to the attested tee_kx; info per docs/protocol.md. */
    uint8_t info[19 + 2 + 128], sealed[80];
    size_t il = 0;
    memcpy(info, "lunal otk to tee v1", 19);
    il = 19;
    info[il++] = (uint8_t)strlen(otk_id);
    memcpy(info + il, otk_id, strlen(otk_id));
    il += strlen(otk_id);
    info[il++] = (uint8_t)strlen(tee);
    memcpy(info + il, tee, strlen(tee));
    il += strlen(tee);
    luna_hpke_params hp = {.suite = {LUNA_HPKE_KEM_X25519_SHA256, LUNA_HPKE_KDF_HKDF_SHA256,
                                     LUNA_HPKE_AEAD_AES256GCM},
                           .mode = LUNA_HPKE_MODE_BASE, .info = info, .info_len = il};
    luna_hpke_ctx *ctx = NULL;
    assert_luna_ok(luna_hpke_setup_sender(&hp, res.claims.tee_x25519, NULL, sealed, &ctx));
    assert_luna_ok(luna_hpke_seal(ctx, NULL, 0, S.otk, 32, sealed + 32));
    luna_hpke_ctx_free(ctx);
    char so[200], cp[64];
    b64(sealed, sizeof(sealed), so, sizeof(so));
    b64(S.client_pk, 32, cp, sizeof(cp));
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s}", "sealed_otk", so, "client_pk", cp,
                          "tenant", S.tenant, "job", S.job, "request_id", S.request_id);
    pthread_mutex_unlock(&S.lock);
    luna_http_reply_json(req, 200, a);
    json_decref(a);
    json_decref(b);
}

static void *stub_thread(void *arg)
{
    event_base_dispatch(S.base);
    return NULL;
}

static luna_http_server *stub_server(const char *name, const luna_http_route *routes, size_t n)
{
    char crt[P], key[P];
    snprintf(crt, P, "%s/%s.crt", W.dir, name);
    snprintf(key, P, "%s/%s.key", W.dir, name);
    luna_http_server_opts o = {.component = name, .port = 0,
                               .tls = {W.ca, crt, key, W.tee_ca}};
    luna_http_server *s = NULL;
    assert_luna_ok(luna_http_server_new(S.base, &o, &s));
    for (size_t i = 0; i < n; i++)
        assert_luna_ok(luna_http_server_add_route(s, &routes[i]));
    return s;
}

static void stub_start(void)
{
    static const char *const host[] = {"lunal://svc/tee-host"};
    static const char *const tees[] = {"lunal://tee/*"};
    pthread_mutex_init(&S.lock, NULL);
    S.base = event_base_new();
    assert_non_null(S.base);
    const luna_http_route ar[] = {
        {LUNA_HTTP_POST, "/v1/attestation/admit/challenge", host, 1, NULL, att_challenge, NULL},
        {LUNA_HTTP_POST, "/v1/attestation/admit", host, 1, NULL, att_admit, NULL},
    };
    const luna_http_route kr[] = {
        {LUNA_HTTP_POST, "/v1/kms/otk/challenge", tees, 1, NULL, kms_challenge, NULL},
        {LUNA_HTTP_POST, "/v1/kms/otk/release", tees, 1, NULL, kms_release, NULL},
    };
    S.att = stub_server("att", ar, 2);
    S.kms = stub_server("kms", kr, 2);
    W.att_port = luna_http_server_port(S.att);
    W.kms_port = luna_http_server_port(S.kms);
    assert_int_equal(0, pthread_create(&S.thread, NULL, stub_thread, NULL));
}

static void stub_verifier(void)
{
    luna_policy *p = NULL;
    char tcb[P];
    size_t n;
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_DEVELOPMENT, &p));
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, 1));
    assert_luna_ok(luna_policy_add_anchor(p, LUNA_EVIDENCE_SIM, W.vendor));
    uint8_t signer[32];
    assert_luna_ok(luna_manifest_mr_signer(W.dev_pk, signer));
    assert_luna_ok(luna_policy_add_reference(p, "demo-dep", LUNA_EVIDENCE_SIM, W.mr_demo, 32));
    assert_luna_ok(luna_policy_add_reference(p, "test-dep", LUNA_EVIDENCE_SIM, W.mr_test, 32));
    assert_luna_ok(luna_policy_add_signer(p, "demo-dep", signer, 32));
    assert_luna_ok(luna_policy_add_signer(p, "test-dep", signer, 32));
    assert_luna_ok(luna_policy_set_freshness(p, true, 300, 60));
    assert_luna_ok(luna_verifier_new(p, &S.verifier));
    pathf(tcb, "platform/tcb.bin");
    uint8_t *doc = luna_test_read_file(tcb, &n);
    assert_luna_ok(luna_verifier_set_collateral(S.verifier, LUNA_EVIDENCE_SIM, doc, n, 0));
    free(doc);
}

/* ---- host config ---- */

static void host_config(const char *name, const char *runtime, const char *tees_json)
{
    char text[8192], crt[P], key[P], plat[P];
    pathf(crt, "host.crt");
    pathf(key, "host.key");
    pathf(plat, "platform");
    snprintf(text, sizeof(text),
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s\",\"key\":\"%s\",\"ca\":\"%s\"},"
             "\"tee_host\":{\"platform_dir\":\"%s\",\"runtime\":\"%s\",\"tcb_level\":1,"
             "\"attestation\":{\"host\":\"127.0.0.1\",\"port\":%u},\"tees\":[%s]}}",
             (unsigned)W.host_port++, crt, key, W.ca, plat, runtime, (unsigned)W.att_port,
             tees_json);
    write_text(name, text);
}

static const char *const demo_jobs[] = {"wordstats", "sha256", "redact"};
static const char *const test_jobs[] = {"t_hold", "t_socket", "t_write", "t_echo"};

static int setup(void **state)
{
    const char *bin = getenv("LUNA_BINARY_DIR");
    snprintf(W.bin, sizeof(W.bin), "%s", bin != NULL ? bin : ".");
    snprintf(W.dir, sizeof(W.dir), "/tmp/lunal-tee-e2e-XXXXXX");
    assert_non_null(mkdtemp(W.dir));
    evthread_use_pthreads();
    /* Fixed ports (the runtime's port is part of its measured config),
       below the kernel's ephemeral range so no outgoing socket takes them. */
    W.base_port = (uint16_t)(20000 + (getpid() % 1200) * 10);
    W.host_port = (uint16_t)(W.base_port + 8);

    /* PKI: platform CA (services) and TEE CA (TEE identities). */
    luna_pki_ca *ca = NULL;
    assert_luna_ok(luna_pki_ca_create(30, &ca));
    assert_luna_ok(luna_pki_ca_create(30, &W.tee_ca_obj));
    pathf(W.ca, "ca.crt");
    pathf(W.tee_ca, "tee_ca.crt");
    assert_luna_ok(luna_pki_write_cert(W.ca, luna_pki_ca_cert(ca)));
    assert_luna_ok(luna_pki_write_cert(W.tee_ca, luna_pki_ca_cert(W.tee_ca_obj)));
    issue(ca, "lunal://svc/tee-host", "host");
    issue(ca, "lunal://svc/attestation", "att");
    issue(ca, "lunal://svc/kms", "kms");
    issue(ca, "lunal://svc/gateway", "gw");
    luna_pki_ca_free(ca);

    /* The simulated vendor root, made by the host's own tool. */
    char exe[P], plat[P];
    snprintf(exe, P, "%s/tee/luna-tee-host", W.bin);
    pathf(plat, "platform");
    char *const argv[] = {exe, (char *)"init-platform", (char *)"--dir", plat, NULL};
    assert_int_equal(0, run_wait(argv));
    char vp[P];
    pathf(vp, "platform/vendor.crt");
    assert_luna_ok(luna_pki_read_cert(vp, &W.vendor));

    /* Developer, deployments, expected measurements. */
    assert_luna_ok(luna_ed25519_keygen(W.dev_seed, W.dev_pk));
    uint8_t other_pk[32];
    assert_luna_ok(luna_ed25519_keygen(W.other_seed, other_pk));
    char rt[P], demo[P], test[P];
    snprintf(exe, P, "%s/tee/luna-tee", W.bin);
    pathf(rt, "luna-tee");
    copy_file(exe, rt, NULL);
    snprintf(demo, P, "%s/tee/liblunal-demo-jobs.so", W.bin);
    snprintf(test, P, "%s/tee/liblunal-test-jobs.so", W.bin);
    stub_start();
    runtime_config("demo1.json", "demo-dep", W.base_port);
    runtime_config("test1.json", "test-dep", (uint16_t)(W.base_port + 1));
    runtime_config("demo-badsig.json", "demo-dep", (uint16_t)(W.base_port + 2));
    runtime_config("demo-badbundle.json", "demo-dep", (uint16_t)(W.base_port + 3));
    runtime_config("demo-swap.json", "demo-dep", (uint16_t)(W.base_port + 4));
    expected_mr(rt, demo, "demo1.json", W.mr_demo);
    expected_mr(rt, test, "test1.json", W.mr_test);
    sign_manifest("demo1.jws", "demo-dep", demo, W.mr_demo, demo_jobs, 3, W.dev_seed);
    sign_manifest("test1.jws", "test-dep", test, W.mr_test, test_jobs, 4, W.dev_seed);
    sign_manifest("other.jws", "demo-dep", demo, W.mr_demo, demo_jobs, 3, W.other_seed);
    stub_verifier();
    return 0;
}

static int teardown(void **state)
{
    event_base_loopbreak(S.base);
    pthread_join(S.thread, NULL);
    luna_http_server_free(S.att);
    luna_http_server_free(S.kms);
    event_base_free(S.base);
    luna_verifier_free(S.verifier);
    luna_pki_ca_free(W.tee_ca_obj);
    X509_free(W.vendor);
    char cmd[P];
    if (getenv("LUNA_TEST_KEEP") != NULL) {
        fprintf(stderr, "kept %s\n", W.dir);
        return 0;
    }
    snprintf(cmd, P, "rm -rf '%s'", W.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", W.dir);
    return 0;
}

static void tee_entry(char *out, size_t cap, const char *id, const char *config,
                      const char *manifest, const char *bundle)
{
    char c[P], m[P];
    pathf(c, config);
    pathf(m, manifest);
    snprintf(out, cap, "{\"id\":\"%s\",\"config\":\"%s\",\"manifest\":\"%s\",\"bundle\":\"%s/tee/%s\"}",
             id, c, m, W.bin, bundle);
}

/* ---- gateway client helpers ---- */

static luna_http_client_opts gw_opts(uint16_t port, const char *tee, const char *as)
{
    static char crt[P], key[P], id[160];
    luna_http_client_opts o;
    memset(&o, 0, sizeof(o));
    snprintf(crt, P, "%s/%s.crt", W.dir, as);
    snprintf(key, P, "%s/%s.key", W.dir, as);
    snprintf(id, sizeof(id), "lunal://tee/%s", tee);
    o.tls.ca_file = W.ca;
    o.tls.cert_file = crt;
    o.tls.key_file = key;
    o.tls.tee_ca_file = W.tee_ca;
    o.host = "127.0.0.1";
    o.port = port;
    o.expected_identity = id;
    o.timeout_sec = 30;
    return o;
}

typedef struct tee_keys {
    uint8_t kx[32], sign[32];
} tee_keys;

static void tee_info(uint16_t port, const char *tee, tee_keys *k)
{
    luna_http_client_opts o = gw_opts(port, tee, "gw");
    luna_http_result r;
    assert_luna_ok(luna_http_fetch(&o, "GET", "/v1/tee/info", NULL, NULL, 0, &r));
    assert_int_equal(200, r.status);
    json_error_t e;
    json_t *j = json_loadb((const char *)r.body, r.body_len, 0, &e);
    assert_non_null(j);
    size_t n;
    assert_true(get_b64(j, "tee_kx_pk", k->kx, 32, &n) && n == 32);
    assert_true(get_b64(j, "tee_sign_pk", k->sign, 32, &n) && n == 32);
    assert_true(json_is_true(json_object_get(j, "simulated")));
    assert_true(json_is_true(json_object_get(j, "measurement_matches_manifest")));
    json_decref(j);
    luna_http_result_free(&r);
}

typedef struct run_req {
    uint16_t port;
    const char *tee, *job, *request_id, *otk_id;
    const uint8_t *pt;
    size_t pt_len;
    uint8_t client_sk[32], client_pk[32], otk[32];
    tee_keys keys;
    luna_wbuf env;
    luna_http_result res;
    luna_err err;
} run_req;

static void run_prepare(run_req *q)
{
    assert_luna_ok(luna_x25519_keygen(q->client_sk, q->client_pk));
    assert_luna_ok(luna_random(q->otk, 32));
    luna_envelope_ids ids = {"acme", q->job, q->tee, q->request_id};
    size_t len;
    assert_luna_ok(luna_envelope_sealed_len(&ids, q->pt_len, &len));
    assert_luna_ok(luna_wbuf_init_alloc(&q->env, len));
    luna_envelope_seal_params sp = {.ids = ids, .client_sk = q->client_sk,
                                    .tee_pk = q->keys.kx, .otk = q->otk};
    assert_luna_ok(luna_envelope_seal(&sp, q->pt, q->pt_len, &q->env));
    /* What the client's OTK request left at the KMS. */
    pthread_mutex_lock(&S.lock);
    snprintf(S.otk_id, sizeof(S.otk_id), "%s", q->otk_id);
    snprintf(S.tenant, sizeof(S.tenant), "acme");
    snprintf(S.job, sizeof(S.job), "%s", q->job);
    snprintf(S.request_id, sizeof(S.request_id), "%s", q->request_id);
    memcpy(S.otk, q->otk, 32);
    memcpy(S.client_pk, q->client_pk, 32);
    S.releases = 0;
    pthread_mutex_unlock(&S.lock);
}

static void *run_send(void *arg)
{
    run_req *q = arg;
    luna_http_client_opts o = gw_opts(q->port, q->tee, "gw");
    luna_http_header hd = {"X-Lunal-Otk-Id", q->otk_id};
    memset(&q->res, 0, sizeof(q->res));
    q->err = luna_http_fetch_with(&o, "POST", "/v1/tee/run", "application/octet-stream",
                                  q->env.data, q->env.len, &hd, 1, &q->res);
    return NULL;
}

/* Opens a 200 answer as the client would; returns the result (malloc'd). */
static char *run_open(run_req *q, const uint8_t *mr)
{
    assert_luna_ok(q->err);
    assert_int_equal(200, q->res.status);
    luna_result_open_params op = {.expected = {"acme", q->job, q->tee, q->request_id},
                                  .client_sk = q->client_sk, .tee_pk = q->keys.kx,
                                  .tee_sign_pk = q->keys.sign, .otk = q->otk,
                                  .expected_measurement = mr, .expected_measurement_len = 32};
    luna_receipt rc;
    uint8_t *res;
    size_t n;
    assert_luna_ok(luna_result_open(q->res.body, q->res.body_len, &op, &rc, &res, &n));
    assert_memory_equal(mr, rc.measurement, 32);
    char *out = calloc(1, n + 1);
    memcpy(out, res, n);
    return out;
}

static void run_clear(run_req *q)
{
    luna_wbuf_free(&q->env);
    luna_http_result_free(&q->res);
}

/* ---- memory scan (marker held only XOR-masked by the scanner) ---- */
#define MARK_LEN 32
static uint8_t mark_masked[MARK_LEN], mark_mask[MARK_LEN];

static size_t scan_pid(pid_t pid)
{
    char path[64], line[512];
    static uint8_t buf[1 << 20];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(path, "r");
    if (maps == NULL)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    int mem = open(path, O_RDONLY);
    assert_true(mem >= 0);
    size_t hits = 0;
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
            strstr(line, "[vvar]") != NULL || strstr(line, "[vsyscall]") != NULL)
            continue;
        /* AddressSanitizer's shadow (x86-64 layout: 0x7fff8000 up to
           0x10007fff8000, mapped from the page below) holds only shadow
           bytes, never data, and is terabytes of reservation: reading it
           would outlast the job. */
        if (SCAN_ASAN && lo >= 0x7fff0000ul && hi <= 0x10007fff8000ul)
            continue;
        for (unsigned long at = lo; at < hi; at += sizeof(buf) - MARK_LEN) {
            size_t want = hi - at < sizeof(buf) ? hi - at : sizeof(buf);
            ssize_t n = pread(mem, buf, want, (off_t)at);
            if (n <= 0)
                break;
            for (ssize_t i = 0; i + MARK_LEN <= n; i++) {
                size_t k = 0;
                while (k < MARK_LEN && (uint8_t)(buf[i + (ssize_t)k] ^ mark_mask[k]) == mark_masked[k])
                    k++;
                hits += k == MARK_LEN;
            }
            if ((size_t)n < want || hi - at <= sizeof(buf))
                break;
        }
    }
    memset(buf, 0, sizeof(buf));
    close(mem);
    fclose(maps);
    return hits;
}

static size_t children_of(pid_t parent, pid_t *out, size_t cap)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    size_t n = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[300], stat[512];
        int pid = atoi(e->d_name);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(stat, sizeof(stat), f) != NULL) {
            const char *rp = strrchr(stat, ')');
            int ppid = 0;
            if (rp != NULL && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == parent && n < cap)
                out[n++] = pid;
        }
        fclose(f);
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* ---- the tests ---- */

static pid_t host_a;
static uint16_t demo_port, test_port;

/* One host with the good TEEs and the refused ones. */
static void test_start_and_refusals(void **state)
{
    char rt[P], tees[8192], e1[2048], e2[2048], e3[2048], e4[2048];
    pathf(rt, "luna-tee");
    demo_port = W.base_port;
    test_port = (uint16_t)(W.base_port + 1);
    tee_entry(e1, sizeof(e1), "demo-1", "demo1.json", "demo1.jws", "liblunal-demo-jobs.so");
    tee_entry(e2, sizeof(e2), "test-1", "test1.json", "test1.jws", "liblunal-test-jobs.so");
    tee_entry(e3, sizeof(e3), "demo-badsig", "demo-badsig.json", "other.jws",
              "liblunal-demo-jobs.so");
    tee_entry(e4, sizeof(e4), "demo-badbundle", "demo-badbundle.json", "demo1.jws",
              "liblunal-test-jobs.so");
    snprintf(tees, sizeof(tees), "%s,%s,%s,%s", e1, e2, e3, e4);
    host_config("host-a.json", rt, tees);
    host_a = start_host("host-a.json", "host-a.log");

    /* Measured from outside, equal to what the developer computed offline. */
    char mr[80], want[65];
    assert_true(wait_log("host-a.log", "runtime measured", "demo-1", "mr_enclave", mr, sizeof(mr), 30));
    assert_luna_ok(luna_hex_encode(W.mr_demo, 32, want, sizeof(want)));
    assert_string_equal(want, mr);

    /* The developer's offline tool computes the same value. */
    char cmd[4 * P], line[512], cfgp[P];
    pathf(cfgp, "demo1.json");
    snprintf(cmd, sizeof(cmd), "'%s/tee/luna-tee-host' measure --runtime '%s' --bundle "
             "'%s/tee/liblunal-demo-jobs.so' --config '%s'", W.bin, rt, W.bin, cfgp);
    FILE *pf = popen(cmd, "r");
    assert_non_null(pf);
    assert_non_null(fgets(line, sizeof(line), pf));
    assert_int_equal(0, pclose(pf));
    assert_non_null(strstr(line, want));

    /* The file on disk is replaced under the running runtime: the platform
       still measures the mapped executable, and admission sees no change. */
    char swapped[P];
    pathf(swapped, "luna-tee.new");
    copy_file(rt, swapped, "tampered");
    assert_int_equal(0, rename(swapped, rt));

    /* Refusals: a manifest signed by another key, a bundle that is not the
       one the manifest's build_hash names.  Neither runtime serves. */
    assert_true(wait_log("host-a.log", "manifest refused", "demo-badsig", NULL, NULL, 0, 30));
    assert_true(wait_log("host-a.log", "bundle refused: hash differs from build_hash",
                         "demo-badbundle", NULL, NULL, 0, 30));
    assert_true(wait_log("host-a.log", "runtime exited", "demo-badsig", "exit", mr, sizeof(mr), 10));
    assert_string_equal("3", mr);
    assert_true(wait_log("host-a.log", "runtime exited", "demo-badbundle", "exit", mr, sizeof(mr), 10));
    assert_string_equal("3", mr);

    /* Admission with fresh evidence bound to the TLS key; then served. */
    assert_true(wait_log("host-a.log", "serving", "demo-1", NULL, NULL, 0, 60));
    assert_true(wait_log("host-a.log", "serving", "test-1", NULL, NULL, 0, 60));
    pthread_mutex_lock(&S.lock);
    assert_true(S.admitted >= 2);
    pthread_mutex_unlock(&S.lock);
}

static void test_run_demo_job(void **state)
{
    run_req q;
    memset(&q, 0, sizeof(q));
    static const char text[] = "the quick brown fox\njumps over the lazy dog\n";
    q.port = demo_port;
    q.tee = "demo-1";
    q.job = "wordstats";
    q.request_id = "req-0001";
    q.otk_id = "otk-0001";
    q.pt = (const uint8_t *)text;
    q.pt_len = sizeof(text) - 1;
    tee_info(q.port, q.tee, &q.keys);
    run_prepare(&q);
    run_send(&q);
    char *out = run_open(&q, W.mr_demo);
    assert_string_equal("{\"bytes\":44,\"chars\":44,\"lines\":2,\"words\":9,\"longest_word\":5}",
                        out);
    free(out);
    /* The same envelope again: refused before any key is asked for. */
    luna_http_result_free(&q.res);
    run_send(&q);
    assert_luna_ok(q.err);
    assert_int_equal(409, q.res.status);
    run_clear(&q);

    /* A caller that is not the gateway is refused by the route. */
    luna_http_client_opts o = gw_opts(demo_port, "demo-1", "kms");
    luna_http_result r;
    assert_luna_ok(luna_http_fetch(&o, "GET", "/v1/tee/info", NULL, NULL, 0, &r));
    assert_int_equal(403, r.status);
    luna_http_result_free(&r);
}

static void test_reattestation_evidence(void **state)
{
    uint8_t nonce[32], ev[4096], zero_digest[32];
    char body[128], nb[64];
    size_t ev_len;
    assert_luna_ok(luna_random(nonce, 32));
    b64(nonce, 32, nb, sizeof(nb));
    snprintf(body, sizeof(body), "{\"nonce\":\"%s\"}", nb);
    luna_http_client_opts o = gw_opts(demo_port, "demo-1", "att");
    luna_http_result r;
    assert_luna_ok(luna_http_fetch(&o, "POST", "/v1/tee/evidence", "application/json", body,
                                   strlen(body), &r));
    assert_int_equal(200, r.status);
    json_error_t e;
    json_t *j = json_loadb((const char *)r.body, r.body_len, 0, &e);
    assert_non_null(j);
    assert_string_equal("sim", json_string_value(json_object_get(j, "evidence_type")));
    assert_true(get_b64(j, "evidence", ev, sizeof(ev), &ev_len));
    json_decref(j);
    luna_http_result_free(&r);
    luna_verify_result res;
    assert_true(verify("demo-1", ev, ev_len, nonce, &res));
    assert_true(res.claims.simulated);
    assert_memory_equal(W.mr_demo, res.claims.measurement, 32);
    /* The memory state was reset: the digest is that of a zeroed arena. */
    assert_true(res.claims.has_memory_digest);
    assert_luna_ok(luna_tee_memory_digest_zero(ARENA_LEN, zero_digest));
    assert_memory_equal(zero_digest, res.claims.memory_digest, 32);
    /* The same evidence under another nonce is refused (replay). */
    uint8_t other[32];
    assert_luna_ok(luna_random(other, 32));
    assert_false(verify("demo-1", ev, ev_len, other, &res));
}

static void test_job_escapes(void **state)
{
    static const char *const jobs[] = {"t_socket", "t_write"};
    char path[P];
    pathf(path, "escaped-file");
    for (size_t i = 0; i < 2; i++) {
        run_req q;
        memset(&q, 0, sizeof(q));
        char rid[32], oid[32];
        snprintf(rid, sizeof(rid), "req-esc-%zu", i);
        snprintf(oid, sizeof(oid), "otk-esc-%zu", i);
        q.port = test_port;
        q.tee = "test-1";
        q.job = jobs[i];
        q.request_id = rid;
        q.otk_id = oid;
        q.pt = (const uint8_t *)path;
        q.pt_len = strlen(path);
        tee_info(q.port, q.tee, &q.keys);
        run_prepare(&q);
        run_send(&q);
        assert_luna_ok(q.err);
        assert_int_equal(422, q.res.status);
        assert_non_null(strstr((const char *)q.res.body, "forbidden_syscall"));
        run_clear(&q);
    }
    struct stat st;
    assert_int_not_equal(0, stat(path, &st));
}

static void test_memory_scan(void **state)
{
    char pid_s[32];
    assert_true(log_find("host-a.log", "runtime started", "test-1", "pid", pid_s, sizeof(pid_s)));
    pid_t rt = (pid_t)atoi(pid_s);
    assert_true(rt > 0);
    uint8_t marker[MARK_LEN];
    for (size_t i = 0; i < MARK_LEN; i++) {
        uint8_t r[2];
        assert_luna_ok(luna_random(r, 2));
        mark_mask[i] = r[0];
        mark_masked[i] = (uint8_t)(('A' + r[1] % 26) ^ r[0]);
        marker[i] = mark_masked[i] ^ mark_mask[i];
    }
    assert_int_equal(0, scan_pid(rt));
    run_req q;
    memset(&q, 0, sizeof(q));
    q.port = test_port;
    q.tee = "test-1";
    q.job = "t_hold";
    q.request_id = "req-scan";
    q.otk_id = "otk-scan";
    q.pt = marker;
    q.pt_len = MARK_LEN;
    tee_info(q.port, q.tee, &q.keys);
    run_prepare(&q);
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, run_send, &q));
    /* During the job: the runtime's arena and the job child hold it. */
    pid_t kids[8];
    size_t n = 0;
    for (int i = 0; i < 100 && n == 0; i++) {
        usleep(50000);
        n = children_of(rt, kids, 8);
    }
    assert_int_equal(1, n);
    usleep(500000);
    size_t during_rt = scan_pid(rt);
    size_t during_child = scan_pid(kids[0]);
    pthread_join(th, NULL);
    char *out = run_open(&q, W.mr_test);
    assert_int_equal(MARK_LEN, strlen(out));
    assert_memory_equal(marker, out, MARK_LEN);
    free(out);
    run_clear(&q);
    luna_wipe(marker, sizeof(marker));
    assert_true(during_child >= 1);
    assert_true(during_rt >= 1);
    /* After: nowhere in the runtime, and no child left. */
    assert_int_equal(0, children_of(rt, kids, 8));
    assert_int_equal(0, scan_pid(rt));
}

static void test_swapped_binary(void **state)
{
    /* The runtime file at rt was replaced while demo-1 ran; its admission
       measurement was still the original one. */
    pthread_mutex_lock(&S.lock);
    assert_true(S.admitted >= 1);
    pthread_mutex_unlock(&S.lock);
    stop(host_a);
    char mr[80], want[65], tees[2048], rt[P];
    /* A host starting the swapped binary: another measurement, and the
       verifier refuses it against the developer's reference. */
    pathf(rt, "luna-tee");
    tee_entry(tees, sizeof(tees), "demo-swap", "demo-swap.json", "demo1.jws",
              "liblunal-demo-jobs.so");
    host_config("host-b.json", rt, tees);
    pid_t host_b = start_host("host-b.json", "host-b.log");
    assert_true(wait_log("host-b.log", "runtime measured", "demo-swap", "mr_enclave", mr, sizeof(mr), 30));
    uint8_t expect_swap[32];
    char demo[P];
    snprintf(demo, P, "%s/tee/liblunal-demo-jobs.so", W.bin);
    expected_mr(rt, demo, "demo-swap.json", expect_swap);
    assert_luna_ok(luna_hex_encode(expect_swap, 32, want, sizeof(want)));
    assert_string_equal(want, mr); /* what is on disk now is what runs now */
    assert_luna_ok(luna_hex_encode(W.mr_demo, 32, want, sizeof(want)));
    assert_string_not_equal(want, mr);
    assert_true(wait_log("host-b.log", "measurement differs from the signed manifest", "demo-swap",
                         NULL, NULL, 0, 30));
    assert_true(wait_log("host-b.log", "admission failed", "demo-swap", NULL, NULL, 0, 60));
    pthread_mutex_lock(&S.lock);
    assert_string_equal("measurement_mismatch", S.last_admit_reason);
    pthread_mutex_unlock(&S.lock);
    stop(host_b);
}

int main(void)
{
    /* The platform reads /proc/<pid>/exe, map_files and mem of a
       non-dumpable runtime, and this test scans them: root only. */
    if (geteuid() != 0) {
        fprintf(stderr, "e2e.tee_flow needs root (CAP_SYS_PTRACE, CAP_SYS_ADMIN): skipped\n");
        return LUNA_TEST_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_and_refusals), cmocka_unit_test(test_run_demo_job),
        cmocka_unit_test(test_reattestation_evidence), cmocka_unit_test(test_job_escapes),
        cmocka_unit_test(test_memory_scan), cmocka_unit_test(test_swapped_binary),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
