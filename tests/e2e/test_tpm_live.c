/*
 * test_tpm_live.c - the live TPM 2.0 path against a real software TPM:
 * swtpm started by this test (socket mode, state and a swtpm-localca
 * manufacturer CA in a temporary folder, killed at the end even when an
 * assertion fails; PR_SET_PDEATHSIG kills it if this process dies).
 *
 * Verifier side: core's luna/tpm.h.  TPM side: tee/host_tpm.h (ESYS).
 * It shows, with the reason each refusal must give:
 *   - enrolment: EK certificate chaining to the localca root + AK public
 *     area -> MakeCredential -> ActivateCredential in the TPM -> answer
 *     accepted once (a second answer: conflict);
 *   - an AK that is not resident in that TPM cannot answer (the TPM
 *     refuses the blob: LUNA_ERR_VERIFY) and a guess is refused; an AK
 *     without fixedTPM/restricted is refused before any challenge
 *     (LUNA_ERR_PERMISSION); an EK certificate under another root is
 *     refused (LUNA_ERR_UNAUTHENTICATED), outside its validity
 *     (LUNA_ERR_EXPIRED);
 *   - quotes of the enrolled AK over PCR 23 (the TEE measurement) with
 *     extraData = the (nonce, TEE keys) binding: verified; then replay,
 *     flipped signature, altered PCR value in the container, wrong nonce,
 *     changed PCR in the TPM, an older quote after a newer one (clock
 *     backwards) and a quote from before a TPM reset (resetCount
 *     backwards) each refused with its own reason code.
 */
#include <errno.h>
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
#include "luna/bytes.h"
#include "luna/evidence_hw.h"
#include "luna/crypto.h"
#include "luna/pki.h"
#include "luna/tpm.h"
#include "luna/verifier.h"
#include "luna_test.h"
#include "verifier_tpm.h"

#define SETUP_TIMEOUT_S 60
#define START_TIMEOUT_S 15

static struct {
    char dir[64];
    char state[128], ca[160];
    pid_t swtpm;
    uint16_t port;
    char tcti[128];
    X509 *root, *issuer;
    host_tpm *tpm;
    EVP_PKEY *ak;                /* enrolled */
    luna_tpm_enrol *enrol;       /* the successful enrolment */
    uint8_t ak_public[LUNA_TPM_PUBLIC_MAX];
    size_t ak_public_len;
    luna_tpm_counters counters;  /* the verifier's view of this AK */
    uint8_t mr[32], ref[32];     /* TEE measurement, expected pcrDigest */
} G;

/* ---- processes ---- */

static void kill_swtpm(void)
{
    if (G.swtpm <= 0)
        return;
    kill(G.swtpm, SIGTERM);
    for (int i = 0; i < 50; i++) {
        if (waitpid(G.swtpm, NULL, WNOHANG) == G.swtpm) {
            G.swtpm = 0;
            return;
        }
        usleep(100000);
    }
    kill(G.swtpm, SIGKILL);
    (void)waitpid(G.swtpm, NULL, 0);
    G.swtpm = 0;
}

/* Runs argv to completion within timeout seconds; its exit status. */
static int run_bounded(char *const argv[], int timeout)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    for (int i = 0; i < timeout * 10; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(100000);
    }
    kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
    return -1;
}

static bool port_free(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
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
        if (luna_random(&r, sizeof(r)) != LUNA_OK)
            return 0;
        uint16_t p = (uint16_t)(20000 + (r % 20000) * 2);
        if (port_free(p) && port_free((uint16_t)(p + 1)))
            return p;
    }
    return 0;
}

static bool start_swtpm(void)
{
    char server[96], ctrl[96], state[200];
    snprintf(server, sizeof(server), "type=tcp,port=%u,bindaddr=127.0.0.1", G.port);
    snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%u,bindaddr=127.0.0.1", G.port + 1u);
    snprintf(state, sizeof(state), "dir=%s", G.state);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        char *const argv[] = {(char *)"swtpm", (char *)"socket", (char *)"--tpm2",
                              (char *)"--tpmstate", state, (char *)"--server", server,
                              (char *)"--ctrl", ctrl, (char *)"--flags",
                              (char *)"not-need-init,startup-clear", NULL};
        execvp(argv[0], argv);
        _exit(127);
    }
    G.swtpm = pid;
    /* Ready when the TPM answers through ESYS. */
    for (int i = 0; i < START_TIMEOUT_S * 10; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            G.swtpm = 0;
            return false;
        }
        if (host_tpm_open(G.tcti, &G.tpm) == LUNA_OK)
            return true;
        usleep(100000);
    }
    return false;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(path);
}

static bool write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

static X509 *read_pem(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return c;
}

static int setup_world(void)
{
    char conf[256], setup[256], text[1024];
    strcpy(G.dir, "/tmp/luna-tpm-XXXXXX");
    if (mkdtemp(G.dir) == NULL)
        return -1;
    snprintf(G.state, sizeof(G.state), "%s/state", G.dir);
    snprintf(G.ca, sizeof(G.ca), "%s/ca", G.dir);
    if (mkdir(G.state, 0700) != 0 || mkdir(G.ca, 0700) != 0)
        return -1;
    snprintf(conf, sizeof(conf), "%s/localca.conf", G.dir);
    snprintf(setup, sizeof(setup), "%s/swtpm_setup.conf", G.dir);
    snprintf(text, sizeof(text),
             "statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\n"
             "certserial = %s/certserial\n",
             G.ca, G.ca, G.ca, G.ca);
    if (!write_text(conf, text))
        return -1;
    snprintf(text, sizeof(text),
             "create_certs_tool = swtpm_localca\ncreate_certs_tool_config = %s\n"
             "create_certs_tool_options = /etc/swtpm-localca.options\n"
             "active_pcr_banks = sha256\n",
             conf);
    if (!write_text(setup, text))
        return -1;
    char *const argv[] = {(char *)"swtpm_setup", (char *)"--tpm2", (char *)"--tpm-state",
                          G.state, (char *)"--create-ek-cert", (char *)"--create-platform-cert",
                          (char *)"--config", setup, (char *)"--logfile", (char *)"/dev/null",
                          NULL};
    int rc = run_bounded(argv, SETUP_TIMEOUT_S);
    if (rc == 127) {
        fprintf(stderr, "swtpm_setup is not installed (scripts/install-deps.sh): "
                        "the live TPM path cannot run here\n");
        (void)nftw(G.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        exit(LUNA_TEST_SKIP);
    }
    if (rc != 0) {
        fprintf(stderr, "swtpm_setup failed (%d)\n", rc);
        return -1;
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/swtpm-localca-rootca-cert.pem", G.ca);
    G.root = read_pem(path);
    snprintf(path, sizeof(path), "%s/issuercert.pem", G.ca);
    G.issuer = read_pem(path);
    if (G.root == NULL || G.issuer == NULL)
        return -1;
    G.port = pick_ports();
    snprintf(G.tcti, sizeof(G.tcti), "swtpm:host=127.0.0.1,port=%u", G.port);
    if (G.port == 0 || !start_swtpm()) {
        fprintf(stderr, "swtpm did not start\n");
        kill_swtpm();
        return -1;
    }
    return 0;
}

static int group_teardown(void **state);

/* A failed setup cleans up after itself (cmocka runs no teardown then). */
static int group_setup(void **state)
{
    int rc = setup_world();
    if (rc != 0)
        (void)group_teardown(state);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    host_tpm_free(G.tpm);
    G.tpm = NULL;
    kill_swtpm();
    EVP_PKEY_free(G.ak);
    luna_tpm_enrol_free(G.enrol);
    X509_free(G.root);
    X509_free(G.issuer);
    if (G.dir[0] != '\0')
        (void)nftw(G.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- enrolment ---- */

static luna_tpm_ek_trust trust_of(X509 **anchors, size_t n, int64_t now)
{
    static X509 *inter[1];
    inter[0] = G.issuer;
    luna_tpm_ek_trust t = {anchors, n, inter, 1, now};
    return t;
}

static void ek_and_ak(uint8_t *ek, size_t *ek_len, uint8_t *ak, size_t *ak_len)
{
    assert_luna_ok(host_tpm_ek_cert(G.tpm, ek, LUNA_TPM_EK_CERT_MAX, ek_len));
    assert_luna_ok(host_tpm_ak_public(G.tpm, ak, LUNA_TPM_PUBLIC_MAX, ak_len));
}

static void test_enrol(void **state)
{
    (void)state;
    uint8_t ek[LUNA_TPM_EK_CERT_MAX], ak[LUNA_TPM_PUBLIC_MAX], answer[64];
    size_t ek_len = 0, ak_len = 0, n = 0, id_len = 0, sec_len = 0;
    const uint8_t *id = NULL, *sec = NULL;
    luna_tpm_enrol *e = NULL;
    const char *why = NULL;
    X509 *anchors[1] = {G.root};
    luna_tpm_ek_trust t = trust_of(anchors, 1, (int64_t)time(NULL));

    ek_and_ak(ek, &ek_len, ak, &ak_len);
    assert_luna_ok(luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, &why));
    luna_tpm_enrol_challenge(e, &id, &id_len, &sec, &sec_len);
    assert_true(id_len > 0 && sec_len == 2 + 256);
    assert_luna_ok(host_tpm_activate(G.tpm, id, id_len, sec, sec_len, answer, sizeof(answer), &n));
    assert_int_equal(LUNA_TPM_CREDENTIAL_LEN, n);
    assert_luna_ok(luna_tpm_enrol_finish(e, answer, n, &G.ak));
    assert_non_null(G.ak);
    /* One answer per challenge. */
    EVP_PKEY *again = NULL;
    assert_luna_err(LUNA_ERR_CONFLICT, luna_tpm_enrol_finish(e, answer, n, &again));
    assert_null(again);
    assert_true(luna_tpm_enrol_activated(e));
    G.enrol = e;
    memcpy(G.ak_public, ak, ak_len);
    G.ak_public_len = ak_len;
}

static void test_enrol_guess_refused(void **state)
{
    (void)state;
    uint8_t ek[LUNA_TPM_EK_CERT_MAX], ak[LUNA_TPM_PUBLIC_MAX], guess[32];
    size_t ek_len = 0, ak_len = 0;
    luna_tpm_enrol *e = NULL;
    EVP_PKEY *k = NULL;
    X509 *anchors[1] = {G.root};
    luna_tpm_ek_trust t = trust_of(anchors, 1, (int64_t)time(NULL));

    ek_and_ak(ek, &ek_len, ak, &ak_len);
    assert_luna_ok(luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, NULL));
    assert_luna_ok(luna_random(guess, sizeof(guess)));
    assert_luna_err(LUNA_ERR_VERIFY, luna_tpm_enrol_finish(e, guess, sizeof(guess), &k));
    assert_null(k);
    /* The right answer after a wrong one is too late. */
    const uint8_t *id, *sec;
    size_t id_len, sec_len, n = 0;
    uint8_t answer[64];
    luna_tpm_enrol_challenge(e, &id, &id_len, &sec, &sec_len);
    assert_luna_ok(host_tpm_activate(G.tpm, id, id_len, sec, sec_len, answer, sizeof(answer), &n));
    assert_luna_err(LUNA_ERR_CONFLICT, luna_tpm_enrol_finish(e, answer, n, &k));
    /* An AK whose challenge failed is never certified. */
    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL, *cert = NULL;
    int64_t now = (int64_t)time(NULL);
    assert_luna_ok(luna_tpm_akca_create(now - 60, now + 3600, &ca_key, &ca));
    assert_luna_err(LUNA_ERR_PERMISSION,
                    luna_tpm_akca_certify(e, ca_key, ca, now - 60, now + 600, &cert));
    assert_null(cert);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    luna_tpm_enrol_free(e);
}

/* An AK public area the TPM does not hold (its modulus altered): the
   verifier makes a challenge for that Name, and the TPM, which can only
   activate for its own resident AK, refuses the blob. */
static void test_enrol_foreign_ak_fails(void **state)
{
    (void)state;
    uint8_t ek[LUNA_TPM_EK_CERT_MAX], ak[LUNA_TPM_PUBLIC_MAX], answer[64];
    size_t ek_len = 0, ak_len = 0, n = 0, id_len, sec_len;
    const uint8_t *id, *sec;
    luna_tpm_enrol *e = NULL;
    X509 *anchors[1] = {G.root};
    luna_tpm_ek_trust t = trust_of(anchors, 1, (int64_t)time(NULL));

    ek_and_ak(ek, &ek_len, ak, &ak_len);
    ak[ak_len - 10] ^= 0x5a; /* inside the RSA modulus */
    assert_luna_ok(luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, NULL));
    luna_tpm_enrol_challenge(e, &id, &id_len, &sec, &sec_len);
    assert_luna_err(LUNA_ERR_VERIFY,
                    host_tpm_activate(G.tpm, id, id_len, sec, sec_len, answer, sizeof(answer), &n));
    luna_tpm_enrol_free(e);
}

static void test_enrol_bad_attributes(void **state)
{
    (void)state;
    uint8_t ek[LUNA_TPM_EK_CERT_MAX], ak[LUNA_TPM_PUBLIC_MAX];
    size_t ek_len = 0, ak_len = 0;
    luna_tpm_enrol *e = NULL;
    const char *why = NULL;
    X509 *anchors[1] = {G.root};
    luna_tpm_ek_trust t = trust_of(anchors, 1, (int64_t)time(NULL));

    ek_and_ak(ek, &ek_len, ak, &ak_len);
    /* TPMT_PUBLIC: type(2) nameAlg(2) objectAttributes(4, big-endian). */
    ak[7] &= (uint8_t)~LUNA_TPMA_FIXED_TPM;
    assert_luna_err(LUNA_ERR_PERMISSION, luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, &why));
    assert_null(e);
    ak[7] |= LUNA_TPMA_FIXED_TPM;
    ak[5] &= (uint8_t)~(LUNA_TPMA_RESTRICTED >> 16);
    assert_luna_err(LUNA_ERR_PERMISSION, luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, &why));
    ak[5] |= (uint8_t)(LUNA_TPMA_RESTRICTED >> 16);
    ak[5] |= (uint8_t)(LUNA_TPMA_DECRYPT >> 16);
    assert_luna_err(LUNA_ERR_PERMISSION, luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, &why));
    assert_null(e);
}

static void test_enrol_wrong_root(void **state)
{
    (void)state;
    uint8_t ek[LUNA_TPM_EK_CERT_MAX], ak[LUNA_TPM_PUBLIC_MAX];
    size_t ek_len = 0, ak_len = 0;
    luna_tpm_enrol *e = NULL;
    luna_pki_ca *other = NULL;
    const char *why = NULL;

    ek_and_ak(ek, &ek_len, ak, &ak_len);
    assert_luna_ok(luna_pki_ca_create(1, &other));
    X509 *wrong[1] = {luna_pki_ca_cert(other)};
    luna_tpm_ek_trust t = trust_of(wrong, 1, (int64_t)time(NULL));
    assert_luna_err(LUNA_ERR_UNAUTHENTICATED,
                    luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, &why));
    assert_null(e);
    /* The issuing CA alone is not a root either. */
    X509 *issuer_only[1] = {G.issuer};
    t = trust_of(issuer_only, 1, (int64_t)time(NULL));
    assert_luna_err(LUNA_ERR_UNAUTHENTICATED,
                    luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, &why));
    /* Before the certificates existed. */
    X509 *right[1] = {G.root};
    t = trust_of(right, 1, (int64_t)time(NULL) - 30 * 86400);
    assert_luna_err(LUNA_ERR_EXPIRED, luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, &why));
    /* A flipped bit of the certificate's signature. */
    t = trust_of(right, 1, (int64_t)time(NULL));
    ek[ek_len - 3] ^= 1;
    assert_int_not_equal(LUNA_OK, luna_tpm_enrol_begin(ek, ek_len, ak, ak_len, &t, &e, &why));
    assert_null(e);
    luna_pki_ca_free(other);
}

/* ---- quotes ---- */

static void binding(const uint8_t nonce[32], uint8_t extra[32])
{
    uint8_t x[32], ed[32], full[LUNA_CLAIM_REPORT_DATA_LEN];
    memset(x, 0x11, sizeof(x));
    memset(ed, 0x22, sizeof(ed));
    assert_luna_ok(luna_verifier_binding(nonce, x, ed, full));
    memcpy(extra, full, 32);
}

static void quote(const uint8_t extra[32], luna_wbuf *w)
{
    assert_luna_ok(luna_wbuf_init_alloc(w, HOST_TPM_EVIDENCE_MAX));
    assert_luna_ok(host_tpm_quote(G.tpm, extra, 32, w));
}

static luna_tpm_quote_reason check(const luna_wbuf *w, const uint8_t extra[32])
{
    luna_tpm_quote_expect x = {extra, 32, G.ref, 32};
    const char *why = NULL;
    luna_tpm_quote_reason r = luna_tpm_quote_check(w->data, w->len, G.ak, &x, &G.counters, &why);
    if (r != LUNA_TPM_QUOTE_OK)
        fprintf(stderr, "  quote: %s (%s)\n", luna_tpm_quote_reason_name(r), why);
    return r;
}

static void measure(void)
{
    uint8_t pcr[64];
    assert_luna_ok(luna_sha256("lunal tpm live test tee", 23, G.mr));
    assert_luna_ok(host_tpm_measure(G.tpm, G.mr));
    /* PCR 23 = SHA-256(0^32 || mr); pcrDigest = SHA-256(PCR 23). */
    memset(pcr, 0, 32);
    memcpy(pcr + 32, G.mr, 32);
    assert_luna_ok(luna_sha256(pcr, 64, pcr));
    assert_luna_ok(luna_sha256(pcr, 32, G.ref));
}

static void test_quote_good_and_replay(void **state)
{
    (void)state;
    uint8_t nonce[32], extra[32];
    luna_wbuf w;
    assert_non_null(G.ak);
    measure();
    assert_luna_ok(luna_random(nonce, sizeof(nonce)));
    binding(nonce, extra);
    quote(extra, &w);
    assert_int_equal(LUNA_TPM_QUOTE_OK, check(&w, extra));
    assert_true(G.counters.valid);
    /* The same quote again, even under its own nonce. */
    assert_int_equal(LUNA_TPM_QUOTE_REPLAY, check(&w, extra));
    assert_int_equal(LUNA_VERIFY_STALE, luna_tpm_quote_reason_verify(LUNA_TPM_QUOTE_REPLAY));
    /* The shared backend's pinned-AK path reads the same container. */
    const char *why = NULL;
    assert_int_equal(LUNA_VERIFY_OK, luna_tpm_verify_pinned(w.data, w.len, G.ak, &why));
    luna_wbuf_free(&w);
}

static void test_quote_tampered(void **state)
{
    (void)state;
    uint8_t nonce[32], extra[32], other[32];
    luna_wbuf w;
    assert_non_null(G.ak);
    assert_luna_ok(luna_random(nonce, sizeof(nonce)));
    binding(nonce, extra);

    /* Flipped signature byte: LTQ1 || u16 || attest || u16 || sig || ... */
    quote(extra, &w);
    size_t attest_len = ((size_t)w.data[4] << 8) | w.data[5];
    size_t sig_off = 4 + 2 + attest_len + 2;
    w.data[sig_off + 20] ^= 0x01;
    assert_int_equal(LUNA_TPM_QUOTE_BAD_SIGNATURE, check(&w, extra));
    luna_wbuf_free(&w);

    /* A PCR value that is not the quoted one (the last byte of the container). */
    quote(extra, &w);
    w.data[w.len - 1] ^= 0x01;
    assert_int_equal(LUNA_TPM_QUOTE_PCR_VALUES_MISMATCH, check(&w, extra));
    luna_wbuf_free(&w);

    /* A genuine quote over another nonce. */
    assert_luna_ok(luna_random(nonce, sizeof(nonce)));
    binding(nonce, other);
    quote(other, &w);
    assert_int_equal(LUNA_TPM_QUOTE_NONCE_MISMATCH, check(&w, extra));
    luna_wbuf_free(&w);

    /* A genuine quote of a changed PCR 23 (another measurement). */
    uint8_t evil[32];
    assert_luna_ok(luna_sha256("another binary", 14, evil));
    assert_luna_ok(host_tpm_extend(G.tpm, evil));
    quote(extra, &w);
    assert_int_equal(LUNA_TPM_QUOTE_MEASUREMENT_MISMATCH, check(&w, extra));
    luna_wbuf_free(&w);
    measure(); /* back to the TEE's measurement */
    quote(extra, &w);
    assert_int_equal(LUNA_TPM_QUOTE_OK, check(&w, extra));
    luna_wbuf_free(&w);
}

static void test_quote_clock_backwards(void **state)
{
    (void)state;
    uint8_t extra[32];
    luna_wbuf older, newer;
    assert_non_null(G.ak);
    assert_luna_ok(luna_random(extra, sizeof(extra)));
    quote(extra, &older);
    usleep(20000);
    quote(extra, &newer);
    assert_int_equal(LUNA_TPM_QUOTE_OK, check(&newer, extra));
    assert_int_equal(LUNA_TPM_QUOTE_CLOCK_BACKWARDS, check(&older, extra));
    luna_wbuf_free(&older);
    luna_wbuf_free(&newer);
}

/* A TPM Reset (swtpm restarted: Startup(CLEAR)) raises resetCount; a
   quote from before it, replayed after a newer one, is refused.  The AK
   re-created from its template after the reset is the enrolled one. */
static void test_quote_reset_backwards(void **state)
{
    (void)state;
    uint8_t extra[32], ak[LUNA_TPM_PUBLIC_MAX];
    size_t ak_len = 0;
    luna_wbuf before, after;
    assert_non_null(G.ak);
    assert_luna_ok(luna_random(extra, sizeof(extra)));
    quote(extra, &before);
    assert_int_equal(LUNA_TPM_QUOTE_OK, check(&before, extra));
    uint32_t reset_before = G.counters.reset_count;

    host_tpm_free(G.tpm);
    G.tpm = NULL;
    kill_swtpm();
    assert_true(start_swtpm());
    assert_luna_ok(host_tpm_ak_public(G.tpm, ak, sizeof(ak), &ak_len));
    assert_memory_equal(G.ak_public, ak, G.ak_public_len);
    assert_int_equal(G.ak_public_len, ak_len);
    measure();
    quote(extra, &after);
    assert_int_equal(LUNA_TPM_QUOTE_OK, check(&after, extra));
    assert_true(G.counters.reset_count > reset_before);
    assert_int_equal(LUNA_TPM_QUOTE_RESET_BACKWARDS, check(&before, extra));
    luna_wbuf_free(&before);
    luna_wbuf_free(&after);
}

/* ---- the shared verifier (what the attestation service and the KMS run) ---- */

static luna_verifier *shared_verifier(X509 *anchor, const uint8_t *collateral, size_t col_len,
                                      int64_t now)
{
    luna_policy *p = NULL;
    luna_verifier *v = NULL;
    uint8_t qn[LUNA_TPM_NAME_MAX];
    size_t qn_len = 0;
    assert_luna_ok(luna_tpm_enrol_qualified_name(G.enrol, qn, &qn_len));
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_PRODUCTION, &p));
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_TPM, 0));
    assert_luna_ok(luna_policy_add_anchor(p, LUNA_EVIDENCE_TPM, anchor));
    assert_luna_ok(luna_policy_add_reference(p, "tpm-live", LUNA_EVIDENCE_TPM, G.ref, 32));
    assert_luna_ok(luna_policy_add_signer(p, "tpm-live", qn, qn_len));
    assert_luna_ok(luna_policy_set_freshness(p, true, 0, 60));
    assert_luna_ok(luna_verifier_new(p, &v));
    assert_luna_ok(luna_verifier_set_collateral(v, LUNA_EVIDENCE_TPM, collateral, col_len, now));
    return v;
}

/* Under a production policy (TPM allowed, the AK enrolment CA as anchor,
   the measurement and the AK's qualified name as reference and signer,
   nonce required, CRLs required), a live quote bound to (nonce, keys)
   verifies through luna_verifier_verify; a wrong nonce, other TEE keys
   and a quote of another measurement are refused with their reasons. */
static void test_shared_verifier(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL, *akc = NULL;
    X509_CRL *crl = NULL;
    luna_wbuf col, ev;
    uint8_t nonce[32], extra[32], x[32], ed[32];
    unsigned char *der = NULL;
    int n;

    assert_non_null(G.enrol);
    assert_luna_ok(luna_tpm_akca_create(now - 300, now + 86400, &ca_key, &ca));
    /* Never beyond the CA's own window. */
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_tpm_akca_certify(G.enrol, ca_key, ca, now - 60, now + 2 * 86400, &akc));
    assert_null(akc);
    assert_luna_ok(luna_tpm_akca_certify(G.enrol, ca_key, ca, now - 60, now + 3600, &akc));
    assert_luna_ok(luna_tpm_akca_crl(ca_key, ca, now - 60, now + 3600, &crl));
    assert_luna_ok(luna_wbuf_init_alloc(&col, LUNA_HWCOL_MAX));
    assert_luna_ok(luna_hwcol_begin(&col));
    assert_true((n = i2d_X509(akc, &der)) > 0);
    assert_luna_ok(luna_hwcol_add(&col, LUNA_HWCOL_CERT, der, (size_t)n));
    OPENSSL_free(der);
    der = NULL;
    assert_true((n = i2d_X509_CRL(crl, &der)) > 0);
    assert_luna_ok(luna_hwcol_add(&col, LUNA_HWCOL_CRL, der, (size_t)n));
    OPENSSL_free(der);
    luna_verifier *v = shared_verifier(ca, col.data, col.len, now);

    /* What the host's TPM mode produces (host_tpm_evidence). */
    measure();
    assert_luna_ok(luna_random(nonce, sizeof(nonce)));
    binding(nonce, extra);
    memset(x, 0x11, sizeof(x));
    memset(ed, 0x22, sizeof(ed));
    assert_luna_ok(luna_wbuf_init_alloc(&ev, HOST_TPM_EVIDENCE_MAX));
    assert_luna_ok(host_tpm_evidence(G.tpm, G.mr, nonce, x, ed, &ev));
    luna_verify_input in = {LUNA_EVIDENCE_TPM, ev.data, ev.len, "tpm-live", nonce, x, ed, now};
    luna_verify_result res;
    assert_luna_ok(luna_verifier_verify(v, &in, &res));
    assert_int_equal(LUNA_VERIFY_OK, res.reason);
    assert_int_equal(LUNA_EVIDENCE_TPM, res.claims.type);
    assert_false(res.claims.simulated);
    assert_memory_equal(G.ref, res.claims.measurement, 32);
    assert_true(res.claims.revocation_checked);
    assert_true(res.claims.platform_serial_len > 0);

    uint8_t other[32];
    memcpy(other, nonce, 32);
    other[0] ^= 1;
    in.nonce = other;
    assert_luna_err(LUNA_ERR_VERIFY, luna_verifier_verify(v, &in, &res));
    assert_int_equal(LUNA_VERIFY_KEY_NOT_BOUND, res.reason);
    in.nonce = nonce;
    x[0] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_verifier_verify(v, &in, &res));
    assert_int_equal(LUNA_VERIFY_KEY_NOT_BOUND, res.reason);
    x[0] ^= 1;
    luna_wbuf_free(&ev);

    uint8_t evil[32];
    assert_luna_ok(luna_sha256("another binary", 14, evil));
    assert_luna_ok(host_tpm_extend(G.tpm, evil));
    quote(extra, &ev);
    in.evidence = ev.data;
    in.evidence_len = ev.len;
    assert_luna_err(LUNA_ERR_VERIFY, luna_verifier_verify(v, &in, &res));
    assert_int_equal(LUNA_VERIFY_MEASUREMENT_MISMATCH, res.reason);
    luna_wbuf_free(&ev);
    measure();
    luna_verifier_free(v);

    /* A verifier that trusts another enrolment CA refuses the AK. */
    EVP_PKEY *k2 = NULL;
    X509 *ca2 = NULL;
    assert_luna_ok(luna_tpm_akca_create(now - 300, now + 86400, &k2, &ca2));
    luna_policy *p = NULL;
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_PRODUCTION, &p));
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_TPM, 0));
    assert_luna_ok(luna_policy_add_anchor(p, LUNA_EVIDENCE_TPM, ca2));
    assert_luna_ok(luna_policy_add_reference(p, "tpm-live", LUNA_EVIDENCE_TPM, G.ref, 32));
    uint8_t qn[LUNA_TPM_NAME_MAX];
    size_t qn_len = 0;
    assert_luna_ok(luna_tpm_enrol_qualified_name(G.enrol, qn, &qn_len));
    assert_luna_ok(luna_policy_add_signer(p, "tpm-live", qn, qn_len));
    assert_luna_ok(luna_policy_set_freshness(p, true, 0, 60));
    assert_luna_ok(luna_verifier_new(p, &v));
    assert_luna_ok(luna_verifier_set_collateral(v, LUNA_EVIDENCE_TPM, col.data, col.len, now));
    quote(extra, &ev);
    in.evidence = ev.data;
    in.evidence_len = ev.len;
    assert_luna_err(LUNA_ERR_VERIFY, luna_verifier_verify(v, &in, &res));
    assert_int_equal(LUNA_VERIFY_UNKNOWN_ROOT, res.reason);
    luna_wbuf_free(&ev);
    luna_verifier_free(v);
    EVP_PKEY_free(k2);
    X509_free(ca2);

    luna_wbuf_free(&col);
    X509_CRL_free(crl);
    X509_free(akc);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enrol),
        cmocka_unit_test(test_enrol_guess_refused),
        cmocka_unit_test(test_enrol_foreign_ak_fails),
        cmocka_unit_test(test_enrol_bad_attributes),
        cmocka_unit_test(test_enrol_wrong_root),
        cmocka_unit_test(test_quote_good_and_replay),
        cmocka_unit_test(test_quote_tampered),
        cmocka_unit_test(test_quote_clock_backwards),
        cmocka_unit_test(test_quote_reset_backwards),
        cmocka_unit_test(test_shared_verifier),
    };
    return cmocka_run_group_tests_name("e2e.tpm_live", tests, group_setup, group_teardown);
}
