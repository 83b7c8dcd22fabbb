/*
 * test_attestation_flow.c - e2e.attestation_flow: the real luna-attestation
 * process against the stub peers process (stub KMS registry, stub audit,
 * webhook receiver, sim TEEs: tests/e2e/test_attestation_peers.c).
 * Checks admission and its certificate, a verification with every field
 * of DESIGN.md section 6 and honest sim labels, the report against the
 * published JWKS, each refusal with its own reason, nonce replay,
 * paginated history, quarantine by re-attestation within one interval
 * (KMS call, alert webhook, audit entry), operator reinstatement only
 * after a fresh successful attestation, and the watchdog.  Tokens come
 * from the real luna-iam (tests/support/iam_harness.c): only an operator
 * reinstates; history is scoped to the token's tenant (tee-a is tenant
 * acme's, every other stub TEE tenant beta's); a quarantined or revoked
 * TEE is named so in the reason and its words.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "http_test_util.h"
#include "iam_harness.h"
#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/jws.h"
#include "luna/pki.h"
#include "luna_test.h"

#include "att.h"

#define INTERVAL 2

static htu_env g_env;
static pid_t g_peers = -1, g_att = -1;
static uint16_t g_kms, g_audit, g_hook, g_tee_port, g_tee_b_port, g_att_port;
static iamh g_iam;
/* Tokens minted by the real IAM for this service (downstream "attestation"),
   except g_tok_gateway (the gateway's own token, another audience). */
static char *g_tok_op;       /* acme/op: operator */
static char *g_tok_client;   /* acme/app: client */
static char *g_tok_auditor;  /* acme/aud: auditor */
static char *g_tok_beta;     /* beta's owner: every tenant role of beta */
static char *g_tok_admin;    /* acme/admin: tenant-admin + platform-admin */
static char *g_tok_gateway;  /* acme/op's gateway token */

static void path_of(const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", g_env.dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static bool file_has(const char *name, const char *needle)
{
    char path[HTU_PATH_MAX];
    size_t len = 0;
    path_of(name, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[len] = '\0';
    bool found = strstr(buf, needle) != NULL;
    free(buf);
    return found;
}

static void set_mode(const char *tee, const char *mode)
{
    char path[HTU_PATH_MAX], name[128];
    snprintf(name, sizeof name, "mode-%s", tee);
    path_of(name, path, sizeof path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", mode);
    fclose(f);
}

static pid_t spawn(char *const argv[], const char *log)
{
    char path[HTU_PATH_MAX];
    path_of(log, path, sizeof path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(path, "a", stderr);
        (void)f;
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[HTU_PATH_MAX];
    path_of(name, path, sizeof path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(0, chmod(path, mode));
}

/* A blocking call to the attestation service as identity <cert>. */
static int call(const char *cert, const char *method, const char *path, const char *body,
                const char *bearer, json_t **out)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    luna_http_result res;
    char auth[4096];
    luna_http_header h = {"Authorization", auth};
    if (bearer != NULL)
        assert_true((size_t)snprintf(auth, sizeof auth, "Bearer %s", bearer) < sizeof auth);
    htu_client_opts(&g_env, cert, g_att_port, "lunal://svc/attestation", &o, paths);
    o.timeout_sec = 30;
    memset(&res, 0, sizeof res);
    assert_luna_ok(luna_http_fetch_with(&o, method, path,
                                        body != NULL ? "application/json" : NULL, body,
                                        body != NULL ? strlen(body) : 0, &h, bearer != NULL ? 1 : 0,
                                        &res));
    if (out != NULL) {
        *out = json_loadb((const char *)res.body, res.body_len, 0, NULL);
        if (*out == NULL)
            fprintf(stderr, "non-JSON answer (%d): %.*s\n", res.status, (int)res.body_len,
                    (const char *)res.body);
    }
    int status = res.status;
    luna_http_result_free(&res);
    return status;
}

/* Asks the stub TEE (as the attestation service would) for evidence over nonce. */
static char *tee_evidence(const char *tee, uint16_t port, const uint8_t nonce[32])
{
    char ident[96];
    snprintf(ident, sizeof ident, "lunal://tee/%s", tee);
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX], b64[64], body[128];
    luna_http_result res;
    htu_client_opts(&g_env, "attestation", port, ident, &o, paths);
    char tee_ca[HTU_PATH_MAX];
    path_of("teeca/ca.crt", tee_ca, sizeof tee_ca);
    o.tls.tee_ca_file = tee_ca;
    assert_luna_ok(luna_b64url_encode(nonce, 32, b64, sizeof b64));
    snprintf(body, sizeof body, "{\"nonce\":\"%s\"}", b64);
    memset(&res, 0, sizeof res);
    assert_luna_ok(luna_http_fetch(&o, "POST", "/v1/tee/evidence", "application/json", body,
                                   strlen(body), &res));
    assert_int_equal(200, res.status);
    json_t *j = json_loadb((const char *)res.body, res.body_len, 0, NULL);
    assert_non_null(j);
    char *ev = strdup(json_string_value(json_object_get(j, "evidence")));
    json_decref(j);
    luna_http_result_free(&res);
    return ev;
}

/* Admission as the TEE host: challenge, evidence over the derived nonce, admit. */
static int admit(const char *tee_id, const char *mode, json_t **out, char **replay_body)
{
    char body[256], spki_b64[256];
    json_t *ch = NULL;
    uint8_t nonce[32], derived[32], spki[200];
    size_t n;
    EVP_PKEY *key = NULL;

    snprintf(body, sizeof body, "{\"tee_id\":\"%s\"}", tee_id);
    assert_int_equal(200, call("tee-host", "POST", "/v1/attestation/admit/challenge", body, NULL,
                               &ch));
    const char *nb = json_string_value(json_object_get(ch, "nonce"));
    assert_non_null(nb);
    assert_luna_ok(luna_b64url_decode(nb, strlen(nb), nonce, sizeof nonce, &n));
    assert_luna_ok(luna_pki_keygen(&key));
    unsigned char *p = spki;
    int spki_len = i2d_PUBKEY(key, &p);
    assert_true(spki_len > 0 && spki_len < (int)sizeof spki);
    EVP_PKEY_free(key);
    assert_luna_ok(att_admit_nonce(nonce, spki, (size_t)spki_len, derived));
    assert_luna_ok(luna_b64url_encode(spki, (size_t)spki_len, spki_b64, sizeof spki_b64));
    /* Bad evidence comes from tee-b, which is never admitted, so the
       background rounds re-attesting tee-a never see a test mode. */
    bool own = strcmp(tee_id, "tee-a") == 0;
    set_mode(own ? "tee-a" : "tee-b", mode);
    char *ev = own ? tee_evidence("tee-a", g_tee_port, derived)
                   : tee_evidence("tee-b", g_tee_b_port, derived);
    size_t cap = strlen(ev) + 1024;
    char *req = malloc(cap);
    assert_non_null(req);
    snprintf(req, cap,
             "{\"tee_id\":\"%s\",\"evidence\":\"%s\",\"evidence_type\":\"sim\",\"tls_spki\":\"%s\","
             "\"nonce\":\"%s\",\"address\":\"127.0.0.1:%u\"}",
             tee_id, ev, spki_b64, nb, (unsigned)g_tee_port);
    free(ev);
    json_decref(ch);
    int status = call("tee-host", "POST", "/v1/attestation/admit", req, NULL, out);
    if (replay_body != NULL)
        *replay_body = req;
    else
        free(req);
    return status;
}

static void wait_file(const char *name, int seconds)
{
    char path[HTU_PATH_MAX];
    path_of(name, path, sizeof path);
    for (int i = 0; i < seconds * 20; i++) {
        if (access(path, F_OK) == 0)
            return;
        usleep(50000);
    }
    fail_msg("timed out waiting for %s", name);
}

static bool ready(void)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    luna_http_result res;
    htu_client_opts(&g_env, "gateway", g_att_port, "lunal://svc/attestation", &o, paths);
    memset(&res, 0, sizeof res);
    if (luna_http_fetch(&o, "GET", "/readyz", NULL, NULL, 0, &res) != LUNA_OK)
        return false;
    bool ok = res.status == 200;
    luna_http_result_free(&res);
    return ok;
}

/* POST as acme's (or beta's) administrator to IAM's admin API; asserts status. */
static void iam_post(const char *token, const char *path, const char *body, int want, json_t **out)
{
    iamh_resp r;
    iamh_call(&g_iam, "gateway", "POST", path, token, body, &r);
    if (r.status != want)
        fail_msg("IAM %s: %d, not %d: %s", path, r.status, want, r.raw);
    if (out != NULL)
        *out = json_incref(r.body);
    iamh_resp_free(&r);
}

/* A principal of tenant acme with roles (JSON array text, or NULL: kind client). */
static char *acme_principal_token(const char *admin, const char *id, const char *roles)
{
    char body[256], path[256];
    json_t *ans = NULL;
    if (roles != NULL)
        snprintf(body, sizeof body, "{\"principal_id\":\"%s\",\"kind\":\"user\",\"roles\":%s}",
                 id, roles);
    else
        snprintf(body, sizeof body, "{\"principal_id\":\"%s\",\"kind\":\"client\"}", id);
    iam_post(admin, "/v1/iam/tenants/acme/principals", body, 201, NULL);
    snprintf(path, sizeof path, "/v1/iam/tenants/acme/principals/%s/api-keys", id);
    iam_post(admin, path, NULL, 201, &ans);
    const char *key = json_string_value(json_object_get(ans, "api_key"));
    assert_non_null(key);
    char *tok = iamh_token_for(&g_iam, "acme", key, "attestation");
    json_decref(ans);
    return tok;
}

/* luna-iam with tenants acme (bootstrap) and beta, and the tokens above. */
static void iam_setup(void)
{
    iamh_start(&g_iam, 3600, 300);
    char *admin = iamh_token(&g_iam, "acme", g_iam.admin_key);
    assert_non_null(admin);
    g_tok_op = acme_principal_token(admin, "op", "[\"operator\"]");
    g_tok_client = acme_principal_token(admin, "app", NULL);
    g_tok_auditor = acme_principal_token(admin, "aud", "[\"auditor\"]");
    assert_non_null(g_tok_op);
    assert_non_null(g_tok_client);
    assert_non_null(g_tok_auditor);
    json_t *ans = NULL;
    iam_post(admin, "/v1/iam/tenants", "{\"tenant_id\":\"beta\"}", 201, &ans);
    const char *beta_key = json_string_value(json_object_get(ans, "api_key"));
    assert_non_null(beta_key);
    g_tok_beta = iamh_token_for(&g_iam, "beta", beta_key, "attestation");
    json_decref(ans);
    assert_non_null(g_tok_beta);
    g_tok_admin = iamh_token_for(&g_iam, "acme", g_iam.admin_key, "attestation");
    assert_non_null(g_tok_admin);
    g_tok_gateway = iamh_token_for(&g_iam, "acme", g_iam.admin_key, NULL);
    assert_non_null(g_tok_gateway);
    free(admin);
}

static int setup(void **state)
{
    (void)state;
    char tee_ca[HTU_PATH_MAX], teeca_crt[HTU_PATH_MAX], ca_crt[HTU_PATH_MAX];
    htu_setup(&g_env);
    path_of("teeca", tee_ca, sizeof tee_ca);
    char *init[] = {(char *)LUNA_CA_BIN, (char *)"init", (char *)"--dir", tee_ca, NULL};
    assert_int_equal(0, htu_run(init));
    path_of("teeca/ca.crt", teeca_crt, sizeof teeca_crt);
    snprintf(ca_crt, sizeof ca_crt, "%s", g_env.ca_crt);
    static const char *const svcs[][2] = {
        {"lunal://svc/attestation", "attestation"}, {"lunal://svc/kms", "kms"},
        {"lunal://svc/audit", "audit"},             {"lunal://svc/tee-host", "tee-host"},
        {"lunal://svc/gateway", "gateway"},
    };
    for (size_t i = 0; i < sizeof svcs / sizeof svcs[0]; i++)
        assert_int_equal(0, htu_issue(&g_env, NULL, svcs[i][0], svcs[i][1], NULL));
    assert_int_equal(0, htu_issue(&g_env, NULL, "lunal://client/acme/app", "client-app", NULL));
    assert_int_equal(0, htu_issue(&g_env, tee_ca, "lunal://tee/tee-a", "tee-a", NULL));
    assert_int_equal(0, htu_issue(&g_env, tee_ca, "lunal://tee/tee-b", "tee-b", NULL));

    char *pargv[] = {(char *)LUNA_ATT_PEERS_BIN, g_env.dir, ca_crt, teeca_crt, (char *)"tee-a",
                     (char *)"tee-b", NULL};
    g_peers = spawn(pargv, "peers.log");
    wait_file("peers.ready", 20);
    char pr[HTU_PATH_MAX];
    path_of("peers.ready", pr, sizeof pr);
    FILE *f = fopen(pr, "r");
    assert_non_null(f);
    unsigned k, a, h, t, tb;
    assert_int_equal(5, fscanf(f, "%u %u %u %u %u", &k, &a, &h, &t, &tb));
    g_tee_b_port = (uint16_t)tb;
    fclose(f);
    g_kms = (uint16_t)k;
    g_audit = (uint16_t)a;
    g_hook = (uint16_t)h;
    g_tee_port = (uint16_t)t;

    /* The real IAM: its key set is the one this service trusts. */
    iam_setup();
    char *jwks = iamh_jwks(&g_iam);
    assert_non_null(jwks);
    write_file("iam-jwks.json", jwks, 0644);
    free(jwks);

    /* The reference values the stub TEE's genuine runtime measures to. */
    uint8_t m[32], s[32];
    char mh[65], sh[65];
    assert_luna_ok(luna_sha256("lunal test runtime v1", 21, m));
    assert_luna_ok(luna_sha256("lunal test developer", 20, s));
    assert_luna_ok(luna_hex_encode(m, 32, mh, sizeof mh));
    assert_luna_ok(luna_hex_encode(s, 32, sh, sizeof sh));
    g_att_port = (uint16_t)(20000 + (getpid() % 20000));
    char cfg[8192];
    snprintf(cfg, sizeof cfg,
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s/attestation.crt\",\"key\":\"%s/attestation.key\",\"ca\":\"%s\"},"
             "\"storage\":{\"url\":\"sqlite:%s/att.db\"},\"log\":{\"level\":\"info\"},"
             "\"attestation\":{\"allowed_evidence\":[\"sim\"],\"trust_anchors\":[\"%s/sim-root.pem\"]},"
             "\"attestation_service\":{\"interval_seconds\":%d,\"grace_seconds\":6,"
             "\"max_evidence_age_seconds\":300,\"workers\":2,\"watchdog_seconds\":2,"
             "\"http_timeout_seconds\":5,\"min_tcb_level\":2,"
             "\"sim_collateral\":\"%s/collateral.bin\","
             "\"kms\":{\"host\":\"127.0.0.1\",\"port\":%u},\"audit\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"webhook_url\":\"http://127.0.0.1:%u/alerts\",\"report_key\":\"%s/report.key\","
             "\"tee_ca_dir\":\"%s/teeca\",\"iam_jwks\":\"%s/iam-jwks.json\","
             "\"deployments\":[{\"id\":\"demo\",\"version\":\"1.0.0\",\"mr_enclave\":\"%s\","
             "\"mr_signer\":\"%s\",\"build_hash\":\"sha256:%s\",\"developer_id\":\"dev_29fja92\","
             "\"key_id\":\"%s\"}]}}",
             (unsigned)g_att_port, g_env.dir, g_env.dir, ca_crt, g_env.dir, g_env.dir, INTERVAL,
             g_env.dir, (unsigned)g_kms, (unsigned)g_audit, (unsigned)g_hook, g_env.dir,
             g_env.dir, g_env.dir, mh, sh, mh, sh);
    write_file("att.json", cfg, 0600);
    char cfgp[HTU_PATH_MAX];
    path_of("att.json", cfgp, sizeof cfgp);
    char *aargv[] = {(char *)LUNA_ATT_BIN, (char *)"--config", cfgp, NULL};
    g_att = spawn(aargv, "att.log");
    for (int i = 0; i < 100 && !ready(); i++)
        usleep(100000);
    assert_true(ready());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st;
    if (g_att > 0) {
        kill(g_att, SIGTERM);
        waitpid(g_att, &st, 0);
    }
    if (g_peers > 0) {
        kill(g_peers, SIGTERM);
        waitpid(g_peers, &st, 0);
    }
    free(g_tok_op);
    free(g_tok_client);
    free(g_tok_auditor);
    free(g_tok_beta);
    free(g_tok_admin);
    free(g_tok_gateway);
    int iam_rc = iamh_stop(&g_iam);
    if (iam_rc != 0)
        fprintf(stderr, "luna-iam exited %d\n", iam_rc);
    if (getenv("LUNA_ATT_KEEP") == NULL)
        htu_teardown(&g_env);
    else
        fprintf(stderr, "kept %s\n", g_env.dir);
    return 0;
}

static const char *str_at(const json_t *root, const char *a, const char *b, const char *c)
{
    const json_t *v = json_object_get(root, a);
    if (b != NULL)
        v = json_object_get(v, b);
    if (c != NULL)
        v = json_object_get(v, c);
    return json_string_value(v);
}

static void test_admit_and_verify(void **state)
{
    (void)state;
    json_t *ans = NULL;
    char *replay = NULL;

    assert_int_equal(200, admit("tee-a", "genuine", &ans, &replay));
    const char *pem = json_string_value(json_object_get(ans, "certificate"));
    assert_non_null(pem);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(cert);
    char id[LUNA_PKI_IDENTITY_MAX], tee_ca[HTU_PATH_MAX];
    assert_luna_ok(luna_pki_identity_from_cert(cert, id, sizeof id));
    assert_string_equal("lunal://tee/tee-a", id);
    X509 *ca = NULL;
    path_of("teeca/ca.crt", tee_ca, sizeof tee_ca);
    assert_luna_ok(luna_pki_read_cert(tee_ca, &ca));
    assert_luna_ok(luna_pki_verify(ca, cert, (int64_t)time(NULL)));
    /* ...and not by the platform CA. */
    X509 *pca = NULL;
    assert_luna_ok(luna_pki_read_cert(g_env.ca_crt, &pca));
    assert_int_not_equal(LUNA_OK, luna_pki_verify(pca, cert, (int64_t)time(NULL)));
    X509_free(pca);
    X509_free(ca);
    X509_free(cert);
    json_decref(ans);
    assert_true(file_has("kms.log", "activate tee-a"));
    assert_true(file_has("audit.log", "\"operation\":\"tee.admit\""));

    /* The same admission again: the nonce was single use. */
    assert_int_equal(409, call("tee-host", "POST", "/v1/attestation/admit", replay, NULL, &ans));
    assert_string_equal("nonce_replayed", str_at(ans, "reason", NULL, NULL));
    json_decref(ans);
    free(replay);

    /* Verify: every DESIGN.md section 6 field. */
    assert_int_equal(200, call("gateway", "POST", "/v1/attestation/verify",
                               "{\"deployment_id\":\"demo\"}", g_tok_client, &ans));
    assert_string_equal("verified", str_at(ans, "status", NULL, NULL));
    const char *att_id = str_at(ans, "attestation", "id", NULL);
    assert_non_null(att_id);
    assert_memory_equal("att_", att_id, 4);
    assert_non_null(str_at(ans, "attestation", "timestamp", NULL));
    assert_string_equal("demo", str_at(ans, "attestation", "deployment_id", NULL));
    assert_memory_equal("sha256:", str_at(ans, "attestation", "build_hash", NULL), 7);
    assert_int_equal(64, strlen(str_at(ans, "attestation", "measurements", "mr_enclave")));
    assert_int_equal(64, strlen(str_at(ans, "attestation", "measurements", "mr_signer")));
    assert_string_equal("dev_29fja92",
                        str_at(ans, "attestation", "signature_verification", "developer_id"));
    assert_true(json_is_true(json_object_get(
        json_object_get(json_object_get(ans, "attestation"), "signature_verification"),
        "signature_valid")));
    assert_non_null(str_at(ans, "attestation", "signature_verification", "key_id"));
    assert_string_equal("up_to_date",
                        str_at(ans, "attestation", "platform_verification", "tcb_status"));
    assert_string_equal("valid",
                        str_at(ans, "attestation", "platform_verification", "qe_identity_status"));
    const json_t *plat =
        json_object_get(json_object_get(ans, "attestation"), "platform_verification");
    assert_true(json_is_true(json_object_get(plat, "simulated")));
    assert_non_null(strstr(json_string_value(json_object_get(plat, "environment")), "SIMULATED"));
    /* Honest labels: no hardware wording anywhere in a sim answer. */
    char *text = json_dumps(ans, 0);
    assert_null(strstr(text, "Memory Encryption: Active"));
    assert_null(strstr(text, "Secure Boot: Verified"));
    assert_null(strstr(text, "genuine TEE"));
    free(text);
    assert_non_null(str_at(ans, "evidence", NULL, NULL));
    const char *report = str_at(ans, "report", NULL, NULL);
    assert_non_null(report);

    /* The report verifies against the published JWKS and names the TEE. */
    json_t *jwks = NULL;
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/jwks", NULL, NULL, &jwks));
    char *jt = json_dumps(jwks, JSON_COMPACT);
    luna_jws_keyset *ks = NULL;
    assert_luna_ok(luna_jws_keyset_load(jt, strlen(jt), &ks));
    json_t *claims = NULL;
    luna_jws_verify_opts vo;
    luna_jws_verify_opts_init(&vo);
    vo.issuer = "lunal://svc/attestation";
    assert_luna_ok(luna_jws_verify(ks, report, strlen(report), &vo, &claims, NULL));
    assert_string_equal("tee-a", json_string_value(json_object_get(claims, "sub")));
    assert_string_equal(att_id, json_string_value(json_object_get(claims, "jti")));
    assert_true(json_is_true(json_object_get(claims, "simulated")));
    json_int_t life = json_integer_value(json_object_get(claims, "exp")) -
                      json_integer_value(json_object_get(claims, "iat"));
    assert_true(life > 0 && life <= 2 * INTERVAL);
    json_decref(claims);
    luna_jws_keyset_free(ks);
    free(jt);
    json_decref(jwks);
    json_decref(ans);
}

/*
 * Review H1: a verify forces an evidence round and answers with a TEE's
 * state and report, so it is scoped to the caller's tenant: tee-a is
 * acme's; beta's token sees no such TEE, and never gets tee-a by picking.
 */
static void test_verify_tenant_scope(void **state)
{
    (void)state;
    json_t *ans = NULL;
    static const char named[] = "{\"deployment_id\":\"demo\",\"tee_id\":\"tee-a\"}";

    assert_int_equal(401, call("gateway", "POST", "/v1/attestation/verify", named, NULL, NULL));
    assert_int_equal(401,
                     call("gateway", "POST", "/v1/attestation/verify", named, g_tok_gateway, NULL));
    assert_int_equal(404,
                     call("gateway", "POST", "/v1/attestation/verify", named, g_tok_beta, &ans));
    assert_string_equal("unknown_tee", str_at(ans, "error", "code", NULL));
    json_decref(ans);
    ans = NULL;
    int st = call("gateway", "POST", "/v1/attestation/verify", "{\"deployment_id\":\"demo\"}",
                  g_tok_beta, &ans);
    if (st == 200)
        assert_string_not_equal("tee-a", str_at(ans, "attestation", "tee_id", NULL));
    else
        assert_int_equal(404, st);
    json_decref(ans);
    ans = NULL;
    /* A TEE's state and report are the gateway's probe: a client reads
       neither, not even its own tenant's, token or not. */
    assert_int_equal(403, call("client-app", "GET", "/v1/attestation/tees/tee-a", NULL,
                               g_tok_client, NULL));
    assert_int_equal(403, call("client-app", "GET", "/v1/attestation/tees/tee-a/report", NULL,
                               g_tok_client, NULL));
    /* The owner's token still verifies it by name. */
    assert_int_equal(200, call("gateway", "POST", "/v1/attestation/verify", named, g_tok_client,
                               &ans));
    assert_string_equal("tee-a", str_at(ans, "attestation", "tee_id", NULL));
    json_decref(ans);
}

static void test_refusals(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"modified", "measurement_mismatch"},   {"unknown_signer", "unknown_signer"},
        {"debug", "debug_forbidden"},           {"tcb_old", "tcb_out_of_date"},
        {"revoked_platform", "revoked_platform_key"}, {"wrong_root", "unknown_root"},
        {"stale", "stale"},                     {"unbound", "key_not_bound"},
        {"bad_version", "unsupported_version"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *ans = NULL;
        char tee[32];
        snprintf(tee, sizeof tee, "tee-r%zu", i);
        int status = admit(tee, cases[i][0], &ans, NULL);
        const char *reason = str_at(ans, "reason", NULL, NULL);
        fprintf(stderr, "mode %s -> %d %s\n", cases[i][0], status, reason ? reason : "(none)");
        assert_int_equal(403, status);
        assert_string_equal("refused", str_at(ans, "status", NULL, NULL));
        assert_string_equal(cases[i][1], reason);
        assert_null(json_object_get(ans, "certificate"));
        assert_null(json_object_get(ans, "report"));
        json_decref(ans);
    }
    /* Replayed evidence in a re-attestation round: the TEE answers with
       evidence over an old nonce. */
    json_t *ans = NULL;
    set_mode("tee-a", "replay");
    /* Either this call or a background round meets it first. */
    int st = call("gateway", "POST", "/v1/attestation/verify", "{\"deployment_id\":\"demo\"}",
                  g_tok_client, &ans);
    assert_true(st == 200 || st == 404);
    json_decref(ans);
    time_t t0 = time(NULL);
    while (!file_has("kms.log", "quarantine tee-a nonce_mismatch") && time(NULL) - t0 < 10)
        usleep(100000);
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?tee_id=tee-a&limit=1",
                               NULL, g_tok_op, &ans));
    const json_t *last = json_array_get(json_object_get(ans, "items"), 0);
    assert_string_equal("refused", json_string_value(json_object_get(last, "status")));
    assert_string_equal("nonce_mismatch", json_string_value(json_object_get(last, "reason")));
    json_decref(ans);
}

/* Review L6: the audit entry goes through the fail-closed audit client.
   With the log unavailable an admission is refused with a clear error,
   before the KMS activates anything and before a certificate leaves. */
static void test_audit_down_refuses_admission(void **state)
{
    (void)state;
    json_t *ans = NULL;
    set_mode("audit", "fail");
    int st = admit("tee-audit", "genuine", &ans, NULL);
    set_mode("audit", "ok");
    assert_int_equal(503, st);
    assert_non_null(ans);
    const char *code = str_at(ans, "error", "code", NULL);
    assert_non_null(code);
    assert_string_equal("audit_unavailable", code);
    assert_non_null(strstr(str_at(ans, "error", "message", NULL), "audit"));
    assert_null(json_object_get(ans, "certificate"));
    json_decref(ans);
    assert_false(file_has("kms.log", "activate tee-audit"));
    assert_true(file_has("att.log", "admission refused: audit log unavailable"));
    /* Nothing kept either: no TEE row (admission after the log is back is
       e2e.tee_quarantine's, with the real audit service; admitting here
       would put a second TEE of "demo" on tee-a's stub address). */
    assert_int_equal(404, call("gateway", "GET", "/v1/attestation/tees/tee-audit", NULL, NULL,
                               NULL));
}

/* Every item of a history page is of one of the TEEs in want ("tee-a" or "tee-r"). */
static void page_only(const json_t *page, const char *prefix)
{
    const json_t *items = json_object_get(page, "items"), *it;
    size_t i;
    assert_non_null(items);
    json_array_foreach(items, i, it)
    {
        const char *tee = str_at(it, "attestation", "tee_id", NULL);
        assert_non_null(tee);
        if (strncmp(tee, prefix, strlen(prefix)) != 0)
            fail_msg("history item of %s in a page that must hold only %s*", tee, prefix);
    }
}

static size_t page_size(const json_t *page)
{
    return json_array_size(json_object_get(page, "items"));
}

static void test_history(void **state)
{
    (void)state;
    json_t *page = NULL;
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?tee_id=tee-a&limit=1",
                               NULL, g_tok_op, &page));
    assert_int_equal(1, page_size(page));
    const char *next = str_at(page, "next", NULL, NULL);
    assert_non_null(next);
    char path[160];
    snprintf(path, sizeof path, "/v1/attestation/history?tee_id=tee-a&limit=100&after=%s", next);
    json_t *rest = NULL;
    assert_int_equal(200, call("gateway", "GET", path, NULL, g_tok_op, &rest));
    assert_true(page_size(rest) >= 1);
    page_only(rest, "tee-a");
    json_decref(rest);
    json_decref(page);
    assert_int_equal(400, call("gateway", "GET", "/v1/attestation/history?tee_id=a&tee_id=b", NULL,
                               g_tok_op, NULL));

    /* Two tenants, one deployment: each reads only its own TEEs' rows. */
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?deployment_id=demo&limit=100",
                               NULL, g_tok_op, &page));
    assert_true(page_size(page) >= 2);
    page_only(page, "tee-a");
    json_decref(page);
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?deployment_id=demo&limit=100",
                               NULL, g_tok_beta, &page));
    assert_true(page_size(page) >= 9); /* the refused admissions of tee-r0..r8 */
    page_only(page, "tee-r");
    json_decref(page);
    /* A client and an auditor of acme read acme's rows too (attestation.read). */
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?tee_id=tee-a", NULL,
                               g_tok_client, &page));
    assert_true(page_size(page) >= 1);
    page_only(page, "tee-a");
    json_decref(page);
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?tee_id=tee-a", NULL,
                               g_tok_auditor, &page));
    assert_true(page_size(page) >= 1);
    json_decref(page);

    /* The other tenant's TEE id: an empty page, never its rows. */
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?tee_id=tee-a&limit=100",
                               NULL, g_tok_beta, &page));
    assert_int_equal(0, page_size(page));
    assert_null(json_object_get(page, "next"));
    json_decref(page);
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?tee_id=tee-r0", NULL,
                               g_tok_op, &page));
    assert_int_equal(0, page_size(page));
    json_decref(page);

    /* The platform admin reads every tenant's rows. */
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?deployment_id=demo&limit=100",
                               NULL, g_tok_admin, &page));
    bool saw_a = false, saw_r = false;
    const json_t *it;
    size_t i;
    json_array_foreach(json_object_get(page, "items"), i, it)
    {
        const char *tee = str_at(it, "attestation", "tee_id", NULL);
        saw_a = saw_a || strcmp(tee, "tee-a") == 0;
        saw_r = saw_r || strncmp(tee, "tee-r", 5) == 0;
    }
    assert_true(saw_a && saw_r);
    json_decref(page);

    /* No token, another service's token, a forged one: 401 with a JSON error. */
    assert_int_equal(401, call("gateway", "GET", "/v1/attestation/history?deployment_id=demo",
                               NULL, NULL, &page));
    assert_string_equal("unauthenticated", str_at(page, "error", "code", NULL));
    json_decref(page);
    assert_int_equal(401, call("gateway", "GET", "/v1/attestation/history?deployment_id=demo",
                               NULL, g_tok_gateway, NULL));
    char *forged = strdup(g_tok_op);
    forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(401, call("gateway", "GET", "/v1/attestation/history?deployment_id=demo",
                               NULL, forged, NULL));
    free(forged);
    /* tee-host may admit but not read the history. */
    assert_int_equal(403, call("tee-host", "GET", "/v1/attestation/history?deployment_id=demo",
                               NULL, g_tok_op, NULL));
}

static int call_bearer(const char *path, const char *token, json_t **out);

static void test_quarantine_and_reinstate(void **state)
{
    (void)state;
    json_t *ans = NULL;
    /* The replay above already quarantined tee-a: check, then reinstate. */
    assert_true(file_has("kms.log", "quarantine tee-a nonce_mismatch revoke-keys"));
    assert_true(file_has("webhook.log", "\"event\":\"tee.quarantined\""));
    assert_true(file_has("audit.log", "\"operation\":\"tee.quarantine\""));
    assert_true(file_has("att.log", "\"severity\":\"alert\""));

    set_mode("tee-a", "genuine");
    assert_int_equal(401, call_bearer("/v1/attestation/tees/tee-a/reinstate", NULL, &ans));
    assert_string_equal("unauthenticated", str_at(ans, "error", "code", NULL));
    json_decref(ans);
    /* A token minted for another service (here the gateway) is refused. */
    assert_int_equal(401, call_bearer("/v1/attestation/tees/tee-a/reinstate", g_tok_gateway, NULL));
    /* Real IAM tokens: roles, not permissions, are in them.  A client and
       an auditor hold no tees.manage: 403 with a JSON error, nothing done. */
    assert_int_equal(403, call_bearer("/v1/attestation/tees/tee-a/reinstate", g_tok_client, &ans));
    assert_string_equal("forbidden", str_at(ans, "error", "code", NULL));
    json_decref(ans);
    assert_int_equal(403, call_bearer("/v1/attestation/tees/tee-a/reinstate", g_tok_auditor, &ans));
    assert_string_equal("forbidden", str_at(ans, "error", "code", NULL));
    json_decref(ans);
    /* Another tenant's operator (beta's owner holds "operator"): tee-a is
       acme's, so to beta it does not exist. */
    assert_int_equal(404, call_bearer("/v1/attestation/tees/tee-a/reinstate", g_tok_beta, &ans));
    assert_string_equal("unknown_tee", str_at(ans, "error", "code", NULL));
    json_decref(ans);
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/tees/tee-a", NULL, NULL, &ans));
    assert_string_equal("quarantined", str_at(ans, "state", NULL, NULL));
    json_decref(ans);
    const char *token = g_tok_op;
    /* Still modified: no reinstatement without a fresh good attestation. */
    set_mode("tee-a", "modified");
    assert_int_equal(200, call_bearer("/v1/attestation/tees/tee-a/reinstate", token, &ans));
    assert_string_equal("refused", str_at(ans, "status", NULL, NULL));
    json_decref(ans);
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/tees/tee-a", NULL, NULL, &ans));
    assert_string_equal("quarantined", str_at(ans, "state", NULL, NULL));
    json_decref(ans);
    set_mode("tee-a", "genuine");
    assert_int_equal(200, call_bearer("/v1/attestation/tees/tee-a/reinstate", token, &ans));
    assert_string_equal("verified", str_at(ans, "status", NULL, NULL));
    json_decref(ans);
    assert_true(file_has("audit.log", "\"operation\":\"tee.reinstate\""));
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/tees/tee-a", NULL, NULL, &ans));
    assert_string_equal("active", str_at(ans, "state", NULL, NULL));
    json_decref(ans);

    /* Swap the running binary: the next round quarantines within one interval. */
    time_t t0 = time(NULL);
    set_mode("tee-a", "modified");
    bool seen = false;
    while (!seen && time(NULL) - t0 <= INTERVAL + 3) {
        usleep(100000);
        seen = file_has("kms.log", "quarantine tee-a measurement_mismatch revoke-keys");
    }
    assert_true(seen);
    assert_true(file_has("webhook.log", "measurement_mismatch"));
    assert_true(file_has("audit.log", "\"reason\":\"measurement_mismatch\""));
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/tees/tee-a", NULL, NULL, &ans));
    assert_string_equal("quarantined", str_at(ans, "state", NULL, NULL));
    json_decref(ans);
    /* A quarantined TEE is not offered by verify. */
    assert_int_equal(404, call("gateway", "POST", "/v1/attestation/verify",
                               "{\"deployment_id\":\"demo\"}", g_tok_client, NULL));

    /* Back in service, then hang: the watchdog and the grace period act. */
    set_mode("tee-a", "genuine");
    assert_int_equal(200, call_bearer("/v1/attestation/tees/tee-a/reinstate", token, &ans));
    assert_string_equal("verified", str_at(ans, "status", NULL, NULL));
    json_decref(ans);
    set_mode("tee-a", "hang");
    t0 = time(NULL);
    bool hung = false, missing = false;
    while ((!hung || !missing) && time(NULL) - t0 < 30) {
        usleep(200000);
        hung = hung || file_has("webhook.log", "reattestation.worker_hung");
        missing = file_has("kms.log", "quarantine tee-a evidence_missing");
    }
    assert_true(hung);
    assert_true(missing);
    set_mode("tee-a", "genuine");
}

/* POST to the stub KMS registry as this service would (the stub allows only it). */
static int registry_post(const char *path, const char *body)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    luna_http_result res;
    htu_client_opts(&g_env, "attestation", g_kms, "lunal://svc/kms", &o, paths);
    o.timeout_sec = 10;
    memset(&res, 0, sizeof res);
    assert_luna_ok(luna_http_fetch(&o, "POST", path, "application/json", body, strlen(body), &res));
    int status = res.status;
    luna_http_result_free(&res);
    return status;
}

/*
 * Review: a quarantined TEE is named so, in the reason code and in words
 * ("TEE quarantined: <reason>"), whether this service quarantined it
 * (local state, 409) or the KMS registry lists it so (an operator's
 * quarantine at the KMS: a refused answer).  The registry's word is not
 * abnormal evidence: no second quarantine, alert or KMS call follows.
 */
static void test_quarantine_words(void **state)
{
    (void)state;
    json_t *ans = NULL;
    static const char body[] = "{\"deployment_id\":\"demo\",\"tee_id\":\"tee-a\"}";

    /* Quarantined here for missing evidence (previous test). */
    assert_int_equal(409,
                     call("gateway", "POST", "/v1/attestation/verify", body, g_tok_client, &ans));
    assert_string_equal("tee_quarantined", str_at(ans, "error", "code", NULL));
    assert_string_equal("TEE quarantined: evidence_missing", str_at(ans, "error", "message", NULL));
    json_decref(ans);
    ans = NULL;

    /* Back in service (the hung evidence call may still hold a worker). */
    set_mode("tee-a", "genuine");
    int st = 0;
    for (int i = 0; i < 10 && st != 200; i++) {
        json_decref(ans);
        ans = NULL;
        st = call_bearer("/v1/attestation/tees/tee-a/reinstate", g_tok_op, &ans);
        if (st != 200)
            sleep(1);
    }
    assert_int_equal(200, st);
    assert_string_equal("verified", str_at(ans, "status", NULL, NULL));
    json_decref(ans);

    /* An operator quarantines tee-a at the KMS: the registry says so. */
    assert_int_equal(200, registry_post("/v1/kms/tees/tee-a/quarantine",
                                        "{\"reason\":\"operator-at-kms\"}"));
    assert_int_equal(200,
                     call("gateway", "POST", "/v1/attestation/verify", body, g_tok_client, &ans));
    assert_string_equal("refused", str_at(ans, "status", NULL, NULL));
    assert_string_equal("tee_quarantined", str_at(ans, "reason", NULL, NULL));
    const char *words = str_at(ans, "message", NULL, NULL);
    assert_non_null(words);
    assert_memory_equal("TEE quarantined: ", words, 17);
    assert_null(strstr(words, "does not list this TEE as active"));
    assert_string_equal("quarantined", str_at(ans, "attestation", "registry_status", NULL));
    json_decref(ans);
    /* Rounds meet the same answer; none of them quarantines or alerts again. */
    sleep(INTERVAL + 1);
    assert_false(file_has("kms.log", "quarantine tee-a tee_quarantined"));
    assert_false(file_has("webhook.log", "tee_quarantined"));
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/tees/tee-a", NULL, NULL, &ans));
    assert_string_equal("active", str_at(ans, "state", NULL, NULL));
    json_decref(ans);
    /* The rounds' rows say it too (a round that hung before may land among them). */
    assert_int_equal(200, call("gateway", "GET", "/v1/attestation/history?tee_id=tee-a&limit=5",
                               NULL, g_tok_op, &ans));
    bool named = false;
    const json_t *it;
    size_t i;
    json_array_foreach(json_object_get(ans, "items"), i, it)
    {
        const char *k = str_at(it, "attestation", "kind", NULL);
        const char *why = str_at(it, "reason", NULL, NULL);
        named = named || (k != NULL && strcmp(k, "reattest") == 0 && why != NULL &&
                          strcmp(why, "tee_quarantined") == 0);
    }
    assert_true(named);
    json_decref(ans);
}

static int call_bearer(const char *path, const char *token, json_t **out)
{
    /* luna_http_fetch sends no custom header: use the raw client. */
    char req[4096];
    SSL_CTX *ctx = htu_client_ctx(&g_env, "gateway", g_env.ca_crt, TLS1_3_VERSION, TLS1_3_VERSION);
    htu_raw raw;
    int status = 0;
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n%s%s%s"
                     "Connection: close\r\n\r\n",
                     path, token != NULL ? "Authorization: Bearer " : "",
                     token != NULL ? token : "", token != NULL ? "\r\n" : "");
    assert_true(n > 0 && (size_t)n < sizeof req);
    htu_raw_exchange(g_att_port, ctx, req, (size_t)n, 30000, &raw);
    SSL_CTX_free(ctx);
    assert_true(htu_raw_status(&raw, &status));
    if (out != NULL) {
        const char *b = htu_raw_body(&raw);
        *out = b != NULL ? json_loads(b, 0, NULL) : NULL;
        assert_non_null(*out);
    }
    return status;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admit_and_verify),
        cmocka_unit_test(test_verify_tenant_scope),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_audit_down_refuses_admission),
        cmocka_unit_test(test_quarantine_and_reinstate),
        cmocka_unit_test(test_quarantine_words),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
