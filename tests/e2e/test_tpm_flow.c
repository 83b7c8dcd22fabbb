/*
 * test_tpm_flow.c - e2e.tpm_flow: the live TPM path in the full flow
 * (docs/tpm-live.md, "The full flow"), every process real: two software
 * TPMs (swtpm, each with its own swtpm-localca manufacturer CA, started
 * and killed here), luna-kms with luna-kms-hsm on a throwaway SoftHSM2
 * token, luna-audit, luna-attestation, and luna-tee-host in platform
 * "tpm" running the real luna-tee runtime with the demo bundle.
 *
 * The test plays the operator (the AK enrolment: EK certificate chained to
 * the manufacturer root, MakeCredential, ActivateCredential in TPM A, the
 * AK certified by an enrolment CA whose key never reaches a service), the
 * gateway and the client.  It shows:
 *   - the TEE on TPM A is admitted: the report says evidence_type "tpm"
 *     and the TPM wording, never the sim or memory-encryption labels; the
 *     runtime labels itself "tpm";
 *   - a one-time key is released to it (a real job runs and its result
 *     opens) after the KMS's own verification of a fresh quote;
 *   - the KMS, by itself, refuses a quote of TPM A whose PCR 23 was
 *     extended with something else, and a quote of TPM B whose AK was
 *     never enrolled, even with a valid attestation report;
 *   - a host on TPM B is never admitted (the KMS registry stays pending);
 *   - the TEE restarted from a changed runtime (another PCR 23) is
 *     quarantined at the KMS within one interval.
 *
 * Root only (the host reads /proc of the non-dumpable runtime).  Exits 77
 * (skipped, never passed) only when swtpm_setup is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "host_tpm.h"
#include "kms_harness.h"
#include "platform_harness.h"
#include "luna/audience.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/envelope.h"
#include "luna/evidence_hw.h"
#include "luna/manifest.h"
#include "luna/pki.h"
#include "luna/tpm.h"
#include "luna/verifier.h"
#include "luna_test.h"
#include "measure.h"
#include "tee_config.h"

#define INTERVAL 2 /* re-attestation period, seconds */
#define TENANT "t1"
#define SETUP_TIMEOUT_S 60

typedef struct swtpm {
    char dir[HTU_PATH_MAX], state[HTU_PATH_MAX + 8], ca[HTU_PATH_MAX + 8];
    uint16_t port;
    pid_t pid;
    char tcti[128];
} swtpm;

static kmsh K;
static swtpm g_tpm[2]; /* A: enrolled; B: never enrolled */
static pid_t g_audit = -1, g_att = -1, g_host = -1;
static uint16_t g_audit_port, g_att_port, g_host_port, g_rt_port;
static uint8_t g_dev_seed[32], g_dev_pk[32], g_mr[32], g_ref[32];
static char g_qname[2 * LUNA_TPM_NAME_MAX + 1];
static char g_bundle[HTU_PATH_MAX];
static char *g_report;          /* the admitted TEE's report (JWS) */
static uint8_t g_kx[32], g_sg[32]; /* its attested keys */

/* ---- the software TPMs ---- */

static int run_bounded(char *const argv[], int timeout)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
            (void)dup2(fd, STDOUT_FILENO);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    for (int i = 0; i < timeout * 10; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(100000);
    }
    kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
    return -1;
}

static bool port_free(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The swtpm TCTI uses port (commands) and port + 1 (control). */
static uint16_t pick_ports(void)
{
    uint32_t r = 0;
    for (int i = 0; i < 200; i++) {
        assert_luna_ok(luna_random(&r, sizeof(r)));
        uint16_t p = (uint16_t)(20000 + (r % 20000) * 2);
        if (port_free(p) && port_free((uint16_t)(p + 1)))
            return p;
    }
    fail_msg("no free port pair for swtpm");
    return 0;
}

/* swtpm_setup with its own manufacturer CA: an EK certificate in NV. */
static void swtpm_make(swtpm *t, const char *name)
{
    char conf[HTU_PATH_MAX + 32], setup[HTU_PATH_MAX + 32], text[8 * HTU_PATH_MAX];
    plh_path(&K, t->dir, sizeof(t->dir), name);
    snprintf(t->state, sizeof(t->state), "%s/state", t->dir);
    snprintf(t->ca, sizeof(t->ca), "%s/ca", t->dir);
    assert_int_equal(0, mkdir(t->dir, 0700));
    assert_int_equal(0, mkdir(t->state, 0700));
    assert_int_equal(0, mkdir(t->ca, 0700));
    snprintf(conf, sizeof(conf), "%s/localca.conf", t->dir);
    snprintf(setup, sizeof(setup), "%s/swtpm_setup.conf", t->dir);
    snprintf(text, sizeof(text),
             "statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\n"
             "certserial = %s/certserial\n",
             t->ca, t->ca, t->ca, t->ca);
    plh_write_path(conf, text, strlen(text), 0600);
    snprintf(text, sizeof(text),
             "create_certs_tool = swtpm_localca\ncreate_certs_tool_config = %s\n"
             "create_certs_tool_options = /etc/swtpm-localca.options\n"
             "active_pcr_banks = sha256\n",
             conf);
    plh_write_path(setup, text, strlen(text), 0600);
    char *const argv[] = {(char *)"swtpm_setup", (char *)"--tpm2", (char *)"--tpm-state",
                          t->state, (char *)"--create-ek-cert", (char *)"--config", setup,
                          (char *)"--logfile", (char *)"/dev/null", NULL};
    int rc = run_bounded(argv, SETUP_TIMEOUT_S);
    if (rc == 127) {
        fprintf(stderr, "swtpm_setup is not installed (scripts/install-deps.sh)\n");
        kmsh_teardown(&K);
        exit(LUNA_TEST_SKIP);
    }
    assert_int_equal(0, rc);
}

static void swtpm_start(swtpm *t)
{
    char server[96], ctrl[96], state[HTU_PATH_MAX + 16];
    t->port = pick_ports();
    snprintf(t->tcti, sizeof(t->tcti), "swtpm:host=127.0.0.1,port=%u", t->port);
    snprintf(server, sizeof(server), "type=tcp,port=%u,bindaddr=127.0.0.1", t->port);
    snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%u,bindaddr=127.0.0.1", t->port + 1u);
    snprintf(state, sizeof(state), "dir=%s", t->state);
    char *const argv[] = {(char *)"swtpm", (char *)"socket", (char *)"--tpm2",
                          (char *)"--tpmstate", state, (char *)"--server", server,
                          (char *)"--ctrl", ctrl, (char *)"--flags",
                          (char *)"not-need-init,startup-clear", NULL};
    char log[32];
    snprintf(log, sizeof(log), "swtpm-%u.log", t->port);
    t->pid = plh_spawn(&K, argv, log);
    for (int i = 0; i < 150; i++) {
        host_tpm *h = NULL;
        if (host_tpm_open(t->tcti, &h) == LUNA_OK) {
            host_tpm_free(h);
            return;
        }
        if (waitpid(t->pid, NULL, WNOHANG) == t->pid)
            fail_msg("swtpm exited");
        usleep(100000);
    }
    fail_msg("swtpm did not answer");
}

static X509 *read_pem(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(c);
    return c;
}

/* One request to the TEE host as identity cert; *out the JSON answer. */
static int host_call(const char *cert, const char *method, const char *path, const char *body,
                     json_t **out)
{
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX];
    luna_http_result res;
    htu_client_opts(&K.env, cert, g_host_port, "lunal://svc/tee-host", &o, paths);
    o.timeout_sec = 20;
    memset(&res, 0, sizeof(res));
    assert_luna_ok(luna_http_fetch(&o, method, path, body != NULL ? "application/json" : NULL,
                                   body, body != NULL ? strlen(body) : 0, &res));
    if (out != NULL)
        *out = json_loadb((const char *)res.body, res.body_len, 0, NULL);
    int status = res.status;
    luna_http_result_free(&res);
    return status;
}

static size_t json_b64(const json_t *o, const char *key, uint8_t *out, size_t cap)
{
    size_t n = 0;
    assert_true(kmsh_b64(o, key, out, cap, &n));
    return n;
}

static char *activate_body(const uint8_t *id, size_t id_len, const uint8_t *sec, size_t sec_len)
{
    char a[LUNA_B64URL_ENC_LEN(LUNA_TPM_ID_OBJECT_MAX)],
        b[LUNA_B64URL_ENC_LEN(LUNA_TPM_ENC_SECRET_MAX)], *body = NULL;
    assert_luna_ok(luna_b64url_encode(id, id_len, a, sizeof(a)));
    assert_luna_ok(luna_b64url_encode(sec, sec_len, b, sizeof(b)));
    assert_true(asprintf(&body, "{\"id_object\":\"%s\",\"enc_secret\":\"%s\"}", a, b) > 0);
    return body;
}

static pid_t host_start(const char *name, const swtpm *tpm, const char *runtime,
                        const char *tee_id);

/*
 * The operator's enrolment of TPM A (docs/tpm-live.md, section 2): the EK
 * certificate must chain to the manufacturer root, the TPM must answer
 * the challenge made for the AK's Name, and only then does the enrolment
 * CA (whose key stays here, with the operator) certify the AK.  Writes
 * the CA certificate (tpm-akca.pem: the services' only TPM anchor) and the
 * AK certificate + CRL bundle (tpm-ak.lhc: their TPM collateral).
 */
static void enrol_tpm_a(void)
{
    swtpm *t = &g_tpm[0];
    uint8_t ek[LUNA_TPM_EK_CERT_MAX], ak[LUNA_TPM_PUBLIC_MAX], answer[64];
    size_t ek_len = 0, ak_len = 0, n = 0, id_len = 0, sec_len = 0;
    const uint8_t *id = NULL, *sec = NULL;
    const char *why = NULL;
    char path[HTU_PATH_MAX + 64];
    int64_t now = (int64_t)time(NULL);

    snprintf(path, sizeof(path), "%s/swtpm-localca-rootca-cert.pem", t->ca);
    X509 *root = read_pem(path);
    snprintf(path, sizeof(path), "%s/issuercert.pem", t->ca);
    X509 *issuer = read_pem(path);
    X509 *anchors[1] = {root}, *inter[1] = {issuer};
    luna_tpm_ek_trust trust = {anchors, 1, inter, 1, now};

    /* The TPM half runs in the TEE host (platform "tpm", no TEE yet),
       reached over mTLS as lunal://svc/operator. */
    g_host = host_start("host-enrol", t, NULL, NULL);
    for (int i = 0; i < 400 && !plh_port_open(g_host_port); i++)
        usleep(50000);
    json_t *ans = NULL;
    assert_int_equal(403, host_call("gateway", "GET", "/v1/tee-host/tpm/enrolment", NULL, &ans));
    json_decref(ans);
    assert_int_equal(200, host_call("operator", "GET", "/v1/tee-host/tpm/enrolment", NULL, &ans));
    ek_len = json_b64(ans, "ek_cert", ek, sizeof(ek));
    ak_len = json_b64(ans, "ak_public", ak, sizeof(ak));
    json_decref(ans);
    luna_tpm_enrol *e = NULL;
    assert_luna_ok(luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &trust, &e, &why));
    luna_tpm_enrol_challenge(e, &id, &id_len, &sec, &sec_len);
    /* A blob the TPM cannot open (one bit of the seed) is refused by the
       TPM, not answered; only the operator identity may ask at all. */
    uint8_t bad[LUNA_TPM_ENC_SECRET_MAX];
    memcpy(bad, sec, sec_len);
    bad[sec_len - 1] ^= 1;
    char *body = activate_body(id, id_len, bad, sec_len);
    assert_int_equal(403, host_call("gateway", "POST", "/v1/tee-host/tpm/activate", body, NULL));
    int st = host_call("operator", "POST", "/v1/tee-host/tpm/activate", body, NULL);
    assert_true(st >= 400 && st < 500);
    free(body);
    body = activate_body(id, id_len, sec, sec_len);
    assert_int_equal(200, host_call("operator", "POST", "/v1/tee-host/tpm/activate", body, &ans));
    free(body);
    n = json_b64(ans, "credential", answer, sizeof(answer));
    json_decref(ans);
    plh_stop(&g_host); /* frees TPM A */
    EVP_PKEY *akey = NULL;
    assert_luna_ok(luna_tpm_enrol_finish(e, answer, n, &akey));
    EVP_PKEY_free(akey);

    uint8_t qn[LUNA_TPM_NAME_MAX];
    size_t qn_len = 0;
    assert_luna_ok(luna_tpm_enrol_qualified_name(e, qn, &qn_len));
    assert_luna_ok(luna_hex_encode(qn, qn_len, g_qname, sizeof(g_qname)));

    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL, *akc = NULL;
    X509_CRL *crl = NULL;
    assert_luna_ok(luna_tpm_akca_create(now - 300, now + 86400, &ca_key, &ca));
    assert_luna_ok(luna_tpm_akca_certify(e, ca_key, ca, now - 60, now + 3600, &akc));
    assert_luna_ok(luna_tpm_akca_crl(ca_key, ca, now - 60, now + 3600, &crl));
    plh_path(&K, path, sizeof(path), "tpm-akca.pem");
    assert_luna_ok(luna_pki_write_cert(path, ca));
    luna_wbuf col;
    unsigned char *der = NULL;
    int dn;
    assert_luna_ok(luna_wbuf_init_alloc(&col, LUNA_HWCOL_MAX));
    assert_luna_ok(luna_hwcol_begin(&col));
    assert_true((dn = i2d_X509(akc, &der)) > 0);
    assert_luna_ok(luna_hwcol_add(&col, LUNA_HWCOL_CERT, der, (size_t)dn));
    OPENSSL_free(der);
    der = NULL;
    assert_true((dn = i2d_X509_CRL(crl, &der)) > 0);
    assert_luna_ok(luna_hwcol_add(&col, LUNA_HWCOL_CRL, der, (size_t)dn));
    OPENSSL_free(der);
    plh_path(&K, path, sizeof(path), "tpm-ak.lhc");
    plh_write_path(path, col.data, col.len, 0644);
    luna_wbuf_free(&col);
    X509_CRL_free(crl);
    X509_free(akc);
    X509_free(ca);
    EVP_PKEY_free(ca_key); /* the CA key leaves with the operator: no service has it */
    luna_tpm_enrol_free(e);
    X509_free(root);
    X509_free(issuer);
}

/* ---- the real services ---- */

/* The attestation service allowing "tpm" only: the enrolment CA as its
   anchor, the AK bundle as collateral, the AK's qualified name as signer;
   its reference is derived from the deployment's mr_enclave. */
static void att_start(const char *build_hash_hex)
{
    char text[8192], dep[1024];
    plh_att_deployment(g_dev_pk, g_mr, build_hash_hex, dep, sizeof(dep));
    g_att_port = (uint16_t)htu_free_port();
    const char *d = K.env.dir;
    snprintf(text, sizeof(text),
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s/attestation.crt\",\"key\":\"%s/attestation.key\","
             "\"ca\":\"%s\"},\"storage\":{\"url\":\"sqlite:%s/att.db\"},"
             "\"log\":{\"level\":\"info\"},"
             "\"attestation\":{\"allowed_evidence\":[\"tpm\"],"
             "\"trust_anchors\":[\"%s/tpm-akca.pem\"]},"
             "\"attestation_service\":{\"interval_seconds\":%d,\"grace_seconds\":60,"
             "\"max_evidence_age_seconds\":300,\"workers\":2,\"watchdog_seconds\":12,"
             "\"http_timeout_seconds\":5,\"min_tcb_level\":0,"
             "\"tpm\":{\"ak_ca\":\"%s/tpm-akca.pem\",\"collateral\":\"%s/tpm-ak.lhc\","
             "\"ak_names\":[\"%s\"]},"
             "\"kms\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"audit\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"report_key\":\"%s/report.key\","
             "\"tee_ca_dir\":\"%s/teeca\",\"iam_jwks\":\"%s/iam.jwks\",%s}}",
             (unsigned)g_att_port, d, d, K.env.ca_crt, d, d, INTERVAL, d, d, g_qname,
             (unsigned)K.port, (unsigned)g_audit_port, d, d, d, dep);
    g_att = plh_att_spawn(&K, text, g_att_port);
}

/* text with its one occurrence of from replaced by to (asserts it is there). */
static char *replace_once(char *text, const char *from, const char *to)
{
    char *at = strstr(text, from);
    assert_non_null(at);
    char *out = NULL;
    assert_true(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
    free(text);
    return out;
}

/* The harness's KMS config turned to "tpm": its own pinned anchor (the
   enrolment CA, kms.tpm_ak_ca), collateral (the AK bundle) and reference (the pcrDigest
   and the AK's qualified name), and the real audit service. */
static void kms_config(void)
{
    char teeca[HTU_PATH_MAX], from[HTU_PATH_MAX * 2], to[HTU_PATH_MAX * 2], mr[65], sg[65],
        ref[65];
    const char *d = K.env.dir;
    plh_path(&K, teeca, sizeof(teeca), "teeca/ca.crt");
    /* The KMS's tpm anchor: only ever kms.tpm_ak_ca (docs/kms.md). */
    snprintf(K.extra, sizeof(K.extra), ",\"tee_ca\":\"%s\",\"tpm_ak_ca\":\"%s/tpm-akca.pem\"",
             teeca, d);
    memcpy(K.mr, g_mr, 32);
    assert_luna_ok(luna_manifest_mr_signer(g_dev_pk, K.signer));
    kmsh_write_config(&K);
    assert_luna_ok(luna_hex_encode(K.mr, 32, mr, sizeof(mr)));
    assert_luna_ok(luna_hex_encode(K.signer, 32, sg, sizeof(sg)));
    assert_luna_ok(luna_hex_encode(g_ref, 32, ref, sizeof(ref)));
    size_t n = 0;
    char *text = (char *)luna_test_read_file(K.config, &n);
    assert_non_null(text);
    char *z = realloc(text, n + 1);
    assert_non_null(z);
    text = z;
    text[n] = '\0';
    snprintf(from, sizeof(from), "\"allowed_evidence\":[\"sim\"],\"trust_anchors\":[\"%s/sim-root.pem\"]", d);
    snprintf(to, sizeof(to), "\"allowed_evidence\":[\"tpm\"],\"trust_anchors\":[\"%s/tpm-akca.pem\"]", d);
    text = replace_once(text, from, to);
    snprintf(from, sizeof(from), "\"evidence_type\":\"sim\",\"mr_enclave\":\"%s\",\"mr_signer\":\"%s\"",
             mr, sg);
    snprintf(to, sizeof(to), "\"evidence_type\":\"tpm\",\"mr_enclave\":\"%s\",\"mr_signer\":\"%s\"",
             ref, g_qname);
    text = replace_once(text, from, to);
    snprintf(from, sizeof(from), "{\"evidence_type\":\"sim\",\"file\":\"%s/tcb.bin\"}", d);
    snprintf(to, sizeof(to), "{\"evidence_type\":\"tpm\",\"file\":\"%s/tpm-ak.lhc\"}", d);
    text = replace_once(text, from, to);
    snprintf(from, sizeof(from), "\"audit\":{\"file\":\"%s\"}", K.audit);
    snprintf(to, sizeof(to),
             "\"audit\":{\"host\":\"127.0.0.1\",\"port\":%u,\"identity\":\"lunal://svc/audit\"}",
             (unsigned)g_audit_port);
    text = replace_once(text, from, to);
    plh_write_path(K.config, text, strlen(text), 0600);
    free(text);
}

/* ---- the platform ---- */

/* PCR 23 after reset + extend(mr), then the quote's pcrDigest over it. */
static void pcr_reference(const uint8_t mr[32], uint8_t out[32])
{
    uint8_t buf[64], pcr[32];
    memset(buf, 0, 32);
    memcpy(buf + 32, mr, 32);
    assert_luna_ok(luna_sha256(buf, sizeof(buf), pcr));
    assert_luna_ok(luna_sha256(pcr, sizeof(pcr), out));
}

/* A host in platform "tpm" on tpm, running tee_id from runtime. */
static pid_t host_start(const char *name, const swtpm *tpm, const char *runtime,
                        const char *tee_id)
{
    char text[8192], man[HTU_PATH_MAX], rc[HTU_PATH_MAX];
    plh_path(&K, man, sizeof(man), "app.jws");
    plh_path(&K, rc, sizeof(rc), "rt.json");
    const char *d = K.env.dir;
    if (runtime == NULL) /* the host alone, for the operator's enrolment */
        snprintf(text, sizeof(text),
                 "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
                 "\"tls\":{\"cert\":\"%s/tee-host.crt\",\"key\":\"%s/tee-host.key\",\"ca\":\"%s\"},"
                 "\"tee_host\":{\"platform\":\"tpm\",\"tpm\":{\"tcti\":\"%s\"},"
                 "\"runtime\":\"%s/tee/luna-tee\",\"tees\":[]}}",
                 (unsigned)g_host_port, d, d, K.env.ca_crt, tpm->tcti,
                 getenv("LUNA_BINARY_DIR"));
    else
        snprintf(text, sizeof(text),
             "{\"profile\":\"development\",\"listen\":{\"address\":\"127.0.0.1\",\"port\":%u},"
             "\"tls\":{\"cert\":\"%s/tee-host.crt\",\"key\":\"%s/tee-host.key\",\"ca\":\"%s\"},"
             "\"tee_host\":{\"platform\":\"tpm\",\"tpm\":{\"tcti\":\"%s\"},\"runtime\":\"%s\","
             "\"attestation\":{\"host\":\"127.0.0.1\",\"port\":%u},"
             "\"tees\":[{\"id\":\"%s\",\"config\":\"%s\",\"manifest\":\"%s\",\"bundle\":\"%s\"}]}}",
             (unsigned)g_host_port, d, d, K.env.ca_crt, tpm->tcti, runtime, (unsigned)g_att_port,
             tee_id, rc, man, g_bundle);
    return plh_host_spawn(&K, name, text);
}

/* A client of the runtime: the gateway's certificate, the TEE CA. */
static void rt_opts(luna_http_client_opts *o, char paths[3][HTU_PATH_MAX], const char *tee_id,
                    char *teeca, char *identity)
{
    htu_client_opts(&K.env, "gateway", g_rt_port, identity, o, paths);
    plh_path(&K, teeca, HTU_PATH_MAX, "teeca/ca.crt");
    snprintf(identity, 96, "lunal://tee/%s", tee_id);
    o->tls.tee_ca_file = teeca;
    o->expected_identity = identity;
    o->timeout_sec = 30;
}

static int setup(void **state)
{
    (void)state;
    const char *bin = getenv("LUNA_BINARY_DIR");
    assert_non_null(bin);
    kmsh_setup(&K, NULL);
    plh_teeca_init(&K);
    char teeca[HTU_PATH_MAX];
    plh_path(&K, teeca, sizeof(teeca), "teeca");
    /* The test also speaks for tee-1 to the KMS (its own quotes). */
    assert_int_equal(0, htu_issue(&K.env, teeca, "lunal://tee/tee-1", "probe-tee-1", NULL));

    g_host_port = (uint16_t)htu_free_port();
    /* Two TPMs, each with its own manufacturer CA; only A is enrolled. */
    swtpm_make(&g_tpm[0], "tpm-a");
    swtpm_make(&g_tpm[1], "tpm-b");
    swtpm_start(&g_tpm[0]);
    swtpm_start(&g_tpm[1]);
    enrol_tpm_a();

    /* Developer, runtime, config, measurement, signed manifest. */
    assert_luna_ok(luna_ed25519_keygen(g_dev_seed, g_dev_pk));
    char rt[HTU_PATH_MAX];
    plh_runtime_copy(&K, rt, g_bundle);
    g_rt_port = (uint16_t)htu_free_port();
    plh_runtime_config(&K, "rt.json", g_dev_pk, g_rt_port);
    plh_measure(&K, rt, g_bundle, "rt.json", g_mr);
    pcr_reference(g_mr, g_ref);
    char bh[65];
    plh_sign_manifest(&K, g_dev_seed, g_mr, g_bundle, bh);

    g_audit_port = plh_audit_setup(&K, "lunal.audit/tpm-flow");
    g_audit = plh_audit_start(&K, g_audit_port);
    att_start(bh);
    plh_att_jwks_to_kms(&K, g_att_port);
    kms_config();
    kmsh_start(&K);
    plh_tee_register(&K, "tee-1", TENANT, "tpm", g_ref);
    plh_tee_register(&K, "tee-2", TENANT, "tpm", g_ref);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    plh_stop(&g_host);
    plh_stop(&g_att);
    plh_stop(&g_audit);
    for (int i = 0; i < 2; i++)
        plh_stop(&g_tpm[i].pid);
    free(g_report);
    if (getenv("LUNA_KMS_TEST_KEEP") != NULL)
        fprintf(stderr, "kept %s\n", K.env.dir);
    kmsh_teardown(&K);
    return 0;
}

/* ---- the tests ---- */

/* The claims of a JWS (payload decoded, not verified: the KMS verifies). */
static json_t *jws_claims(const char *jws)
{
    const char *a = strchr(jws, '.');
    assert_non_null(a);
    const char *b = strchr(a + 1, '.');
    assert_non_null(b);
    size_t n = (size_t)(b - a - 1), len = 0;
    uint8_t *p = malloc(n + 1);
    assert_non_null(p);
    assert_luna_ok(luna_b64url_decode(a + 1, n, p, n + 1, &len));
    json_t *c = json_loadb((const char *)p, len, 0, NULL);
    free(p);
    assert_non_null(c);
    return c;
}

static void test_admitted_with_tpm_evidence(void **state)
{
    (void)state;
    char rt[HTU_PATH_MAX];
    plh_path(&K, rt, sizeof(rt), "luna-tee");
    g_host = host_start("host-a", &g_tpm[0], rt, "tee-1");
    assert_true(plh_wait_status(&K, "tee-1", "active", 40000));
    assert_true(plh_att_state_is(&K, g_att_port, "tee-1", "active"));

    /* The stored appraisal (the answer body the service keeps in its
       database, read from the file so this does not depend on the read
       API's authentication): type tpm, the TPM wording, nothing simulated
       and no memory-encryption claim. */
    assert_true(plh_wait_for(&K, "att.db", "\"evidence_type\":\"tpm\"", 5));
    assert_true(plh_log_has(&K, "att.db",
                            "\"environment\":\"TPM 2.0 quote of a host-measured runtime\""));
    assert_true(plh_log_has(&K, "att.db", "\"memory_encryption\":\"not provided: TPM 2.0 quote"));
    assert_true(plh_log_has(&K, "att.db", "\"simulated\":false"));
    assert_false(plh_log_has(&K, "att.db", "\"simulated\":true"));
    assert_false(plh_log_has(&K, "att.db", "SIMULATED"));
    assert_false(plh_log_has(&K, "att.db", "Memory Encryption: Active"));

    /* The runtime labels itself with what was appraised. */
    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX], teeca[HTU_PATH_MAX], ident[96];
    rt_opts(&o, paths, "tee-1", teeca, ident);
    luna_http_result r;
    memset(&r, 0, sizeof(r));
    assert_luna_ok(luna_http_fetch(&o, "GET", "/v1/tee/info", NULL, NULL, 0, &r));
    assert_int_equal(200, r.status);
    json_t *info = json_loadb((const char *)r.body, r.body_len, 0, NULL);
    luna_http_result_free(&r);
    assert_non_null(info);
    assert_string_equal("tpm", json_string_value(json_object_get(info, "evidence_type")));
    assert_true(json_is_false(json_object_get(info, "simulated")));
    assert_true(json_is_true(json_object_get(info, "measurement_matches_manifest")));
    size_t n = 0;
    assert_true(kmsh_b64(info, "tee_kx_pk", g_kx, 32, &n) && n == 32);
    assert_true(kmsh_b64(info, "tee_sign_pk", g_sg, 32, &n) && n == 32);
    g_report = strdup(json_string_value(json_object_get(info, "report")));
    assert_non_null(g_report);
    json_decref(info);

    /* The report the KMS checks: tpm, the pcrDigest as measurement. */
    json_t *cl = jws_claims(g_report);
    char ref[65];
    assert_luna_ok(luna_hex_encode(g_ref, 32, ref, sizeof(ref)));
    assert_string_equal("tpm", json_string_value(json_object_get(cl, "evidence_type")));
    assert_string_equal(ref, json_string_value(json_object_get(cl, "mr_enclave")));
    json_decref(cl);
}

/* A real job: the runtime fetches its one-time key from the KMS with a
   fresh quote over the KMS's nonce, which the KMS verifies itself. */
static void test_key_released_after_kms_verification(void **state)
{
    (void)state;
    static const char doc[] = "the quick brown fox\njumps over the lazy dog\n";
    uint8_t csk[32], cpk[32], sealed[80], otk[32];
    char otk_id[64];
    assert_luna_ok(luna_x25519_keygen(csk, cpk));
    char *tok = kmsh_token(&K, TENANT, "client");
    kmsh_resp kr;
    assert_int_equal(200, kmsh_issue(&K, tok, "tee-1", "wordstats", "req-tpm-1", cpk, otk_id,
                                     sealed, &kr));
    kmsh_resp_free(&kr);
    free(tok);
    assert_true(kmsh_open_client(csk, otk_id, "tee-1", "req-tpm-1", sealed, otk));

    luna_envelope_ids ids = {TENANT, "wordstats", "tee-1", "req-tpm-1"};
    size_t len = 0;
    luna_wbuf env;
    assert_luna_ok(luna_envelope_sealed_len(&ids, sizeof(doc) - 1, &len));
    assert_luna_ok(luna_wbuf_init_alloc(&env, len));
    luna_envelope_seal_params sp = {.ids = ids, .client_sk = csk, .tee_pk = g_kx, .otk = otk};
    assert_luna_ok(luna_envelope_seal(&sp, (const uint8_t *)doc, sizeof(doc) - 1, &env));

    luna_http_client_opts o;
    char paths[3][HTU_PATH_MAX], teeca[HTU_PATH_MAX], ident[96];
    rt_opts(&o, paths, "tee-1", teeca, ident);
    luna_http_header hd = {"X-Lunal-Otk-Id", otk_id};
    luna_http_result r;
    memset(&r, 0, sizeof(r));
    assert_luna_ok(luna_http_fetch_with(&o, "POST", "/v1/tee/run", "application/octet-stream",
                                        env.data, env.len, &hd, 1, &r));
    assert_int_equal(200, r.status);
    luna_result_open_params op = {.expected = ids, .client_sk = csk, .tee_pk = g_kx,
                                  .tee_sign_pk = g_sg, .otk = otk,
                                  .expected_measurement = g_mr, .expected_measurement_len = 32};
    luna_receipt rc;
    uint8_t *res = NULL;
    size_t rn = 0;
    assert_luna_ok(luna_result_open(r.body, r.body_len, &op, &rc, &res, &rn));
    assert_true(rn > 0 && memmem(res, rn, "\"words\":9", 9) != NULL);
    luna_http_result_free(&r);
    luna_wbuf_free(&env);
    /* The release is in the real audit log. */
    assert_true(plh_wait_for(&K, "auditlog.db", "\"operation\":\"otk.release\"", 5));
    char st[32];
    plh_kms_status(&K, "tee-1", st, sizeof(st));
    assert_string_equal("active", st);
}

/* One release attempt as tee-1 with a quote made here on tpm (the host
   is stopped: a TPM serves one client).  extend: PCR 23 extended once
   more after the measurement.  Returns the status; code gets error.code. */
static int release_with_quote(const swtpm *tpm, bool extend, const char *otk_id, char *code,
                              size_t code_cap)
{
    kmsh_tee probe;
    memset(&probe, 0, sizeof(probe));
    snprintf(probe.id, sizeof(probe.id), "tee-1");
    snprintf(probe.cert, sizeof(probe.cert), "probe-tee-1");
    uint8_t nonce[32];
    assert_int_equal(200, kmsh_challenge(&K, &probe, "tee-1", otk_id, nonce));
    host_tpm *h = NULL;
    uint8_t evb[HOST_TPM_EVIDENCE_MAX], junk[32];
    luna_wbuf w;
    luna_wbuf_init(&w, evb, sizeof(evb));
    assert_luna_ok(host_tpm_open(tpm->tcti, &h));
    if (extend) {
        memset(junk, 0x5a, sizeof(junk));
        /* Measured correctly, then extended with something else. */
        uint8_t rd[64];
        assert_luna_ok(luna_verifier_binding(nonce, g_kx, g_sg, rd));
        assert_luna_ok(host_tpm_measure(h, g_mr));
        assert_luna_ok(host_tpm_extend(h, junk));
        assert_luna_ok(host_tpm_quote(h, rd, 32, &w));
        assert_luna_ok(luna_tpm_evidence_add_keys(&w, g_kx, g_sg));
    } else {
        assert_luna_ok(host_tpm_evidence(h, g_mr, nonce, g_kx, g_sg, &w));
    }
    host_tpm_free(h);
    char nb[64], *evs = malloc(LUNA_B64URL_ENC_LEN(w.len)), *body = NULL;
    assert_non_null(evs);
    assert_luna_ok(luna_b64url_encode(nonce, 32, nb, sizeof(nb)));
    assert_luna_ok(luna_b64url_encode(w.data, w.len, evs, LUNA_B64URL_ENC_LEN(w.len)));
    assert_true(asprintf(&body,
                         "{\"tee_id\":\"tee-1\",\"otk_id\":\"%s\",\"nonce\":\"%s\","
                         "\"evidence\":\"%s\",\"evidence_type\":\"tpm\",\"report\":\"%s\"}",
                         otk_id, nb, evs, g_report) > 0);
    free(evs);
    kmsh_resp r;
    assert_int_equal(0, kmsh_call(&K, probe.cert, "POST", "/v1/kms/otk/release", NULL, body, &r));
    free(body);
    int st = r.status;
    snprintf(code, code_cap, "%s", r.code);
    kmsh_resp_free(&r);
    return st;
}

/* The KMS's own verification, with a valid report beside the evidence:
   PCR 23 extended with something else -> refused; TPM B (never
   enrolled) -> refused; the honest quote of TPM A -> released. */
static void test_kms_refuses_changed_pcr_and_foreign_tpm(void **state)
{
    (void)state;
    char otk_id[64], code[64];
    uint8_t csk[32], cpk[32], sealed[80];
    plh_stop(&g_host); /* frees TPM A */
    assert_luna_ok(luna_x25519_keygen(csk, cpk));
    char *tok = kmsh_token(&K, TENANT, "client");
    kmsh_resp kr;
    assert_int_equal(200, kmsh_issue(&K, tok, "tee-1", "wordstats", "req-tpm-2", cpk, otk_id,
                                     sealed, &kr));
    kmsh_resp_free(&kr);
    free(tok);

    assert_int_equal(403, release_with_quote(&g_tpm[0], true, otk_id, code, sizeof(code)));
    assert_string_equal("evidence_invalid", code);
    assert_true(plh_wait_for(&K, "kms.log",
                             "\"tee\":\"tee-1\",\"reason\":\"measurement_mismatch\"", 5));
    assert_int_equal(403, release_with_quote(&g_tpm[1], false, otk_id, code, sizeof(code)));
    assert_string_equal("evidence_invalid", code);
    assert_true(plh_wait_for(&K, "kms.log", "\"tee\":\"tee-1\",\"reason\":\"bad_signature\"", 5));
    /* Each time the report was valid: a disagreement, audited. */
    assert_true(plh_wait_for(&K, "auditlog.db", "attestation.disagreement", 5));
    /* Control: the same path with the honest quote is released. */
    assert_int_equal(200, release_with_quote(&g_tpm[0], false, otk_id, code, sizeof(code)));
}

/* A host on TPM B: its quotes are signed by an AK no enrolment CA
   certified, so tee-2 is never admitted and the KMS never activates it. */
static void test_unenrolled_tpm_not_admitted(void **state)
{
    (void)state;
    char rt[HTU_PATH_MAX], st[32];
    plh_path(&K, rt, sizeof(rt), "luna-tee");
    g_host = host_start("host-b", &g_tpm[1], rt, "tee-2");
    assert_true(plh_wait_for(&K, "att.log",
                         "\"tee_id\":\"tee-2\",\"deployment_id\":\"app\",\"status\":"
                         "\"refused\",\"reason\":\"bad_signature\"",
                         30));
    assert_true(plh_wait_for(&K, "host-b.log", "admission failed", 10));
    plh_kms_status(&K, "tee-2", st, sizeof(st));
    assert_string_equal("pending", st);
    json_t *ans = NULL;
    assert_int_equal(404, plh_att_call(&K, g_att_port, "gateway", "GET",
                                       "/v1/attestation/tees/tee-2", &ans));
    json_decref(ans);
    plh_stop(&g_host);
}

/* tee-1 restarted on TPM A from a changed runtime: PCR 23 holds another
   measurement, the admitted TEE id is quarantined within one interval. */
static void test_changed_measurement_quarantined(void **state)
{
    (void)state;
    char rt[HTU_PATH_MAX], swapped[HTU_PATH_MAX];
    plh_path(&K, rt, sizeof(rt), "luna-tee");
    plh_path(&K, swapped, sizeof(swapped), "luna-tee.swapped");
    plh_copy_file(rt, swapped, "changed", 0755);
    long t0 = htu_now_ms();
    g_host = host_start("host-c", &g_tpm[0], swapped, "tee-1");
    bool quarantined = plh_wait_status(&K, "tee-1", "quarantined", 20000);
    fprintf(stderr, "quarantined after %ld ms\n", htu_now_ms() - t0);
    assert_true(quarantined);
    assert_true(plh_att_state_is(&K, g_att_port, "tee-1", "quarantined"));
    assert_true(plh_wait_for(&K, "att.log",
                         "\"event\":\"tee.quarantined\",\"tee_id\":\"tee-1\",\"reason\":"
                         "\"measurement_mismatch\"",
                         5));
    plh_stop(&g_host);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "e2e.tpm_flow needs root (the host reads /proc of the non-dumpable "
                        "runtime)\n");
        return LUNA_TEST_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admitted_with_tpm_evidence),
        cmocka_unit_test(test_key_released_after_kms_verification),
        cmocka_unit_test(test_kms_refuses_changed_pcr_and_foreign_tpm),
        cmocka_unit_test(test_unenrolled_tpm_not_admitted),
        cmocka_unit_test(test_changed_measurement_quarantined),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
