/*
 * bench_evidence.c - hardware evidence verifications per second, per
 * type, beside the raw signature verifications each one needs, measured
 * in the same run: SEV-SNP and Nitro one ECDSA P-384 verify, TDX and SGX
 * two ECDSA P-256 verifies (QE report, quote), TPM one RSA-2048 PKCS#1
 * verify.  A verification is luna_verifier_verify on a real sample of
 * vectors/evidence (LUNA_VECTORS_DIR) with its collateral installed once,
 * as a service does; the samples bind other keys, so each run ends with
 * key_not_bound after every hardware check passed (asserted), which is
 * the whole cost but the final policy comparisons (TPM, not yet in the
 * verifier's backend list, runs its backend directly).  CRL and TCB
 * collateral freshness is checked on every run; the verifier caches a
 * chain that already verified (exact bytes, within validity: Nitro, and
 * SEV-SNP, TDX and SGX with their CRL bytes), so the "no cache" column
 * runs the same backend directly without a cache, as the first
 * verification of a chain does.  Benchmark only: fixed inputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "luna/crypto.h"
#include "luna/evidence_hw.h"
#include "luna/verifier.h"
#include "verifier_internal.h"

#define SECONDS 0.5

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_evidence: %s\n", what);
    exit(1);
}

static const char *vectors(void)
{
    const char *d = getenv("LUNA_VECTORS_DIR");
    return d != NULL ? d : "../shared/vectors";
}

static uint8_t *slurp(const char *rel, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", vectors(), rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "bench_evidence: cannot open %s (set LUNA_VECTORS_DIR)\n", path);
        exit(1);
    }
    uint8_t *d = malloc(1u << 20);
    if (d == NULL)
        die("out of memory");
    *len = fread(d, 1, 1u << 20, f);
    fclose(f);
    return d;
}

static size_t certs(const char *rel, X509 **out, size_t cap)
{
    size_t len = 0, n = 0;
    uint8_t *d = slurp(rel, &len);
    if (d[0] == 0x30) {
        const unsigned char *p = d;
        out[n++] = d2i_X509(NULL, &p, (long)len);
    } else {
        BIO *b = BIO_new_mem_buf(d, (int)len);
        X509 *c;
        while (b != NULL && n < cap && (c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
            out[n++] = c;
        BIO_free(b);
    }
    free(d);
    if (n == 0 || out[0] == NULL)
        die("no certificate");
    return n;
}

static void add_cert(luna_wbuf *w, X509 *c)
{
    unsigned char *der = NULL;
    int n = i2d_X509(c, &der);
    if (n <= 0 || luna_hwcol_add(w, LUNA_HWCOL_CERT, der, (size_t)n) != LUNA_OK)
        die("bundle");
    OPENSSL_free(der);
}

static void add_certs(luna_wbuf *w, const char *rel, size_t skip_last)
{
    X509 *c[4];
    size_t n = certs(rel, c, 4);
    for (size_t i = 0; i < n; i++) {
        if (i + skip_last < n)
            add_cert(w, c[i]);
        X509_free(c[i]);
    }
}

static void add_file(luna_wbuf *w, luna_hwcol_kind k, const char *rel)
{
    size_t len = 0;
    uint8_t *d = slurp(rel, &len);
    if (luna_hwcol_add(w, k, d, len) != LUNA_OK)
        die("bundle");
    free(d);
}

typedef struct job {
    const char *name;
    const luna_verifier_backend *b;
    uint8_t *ev;
    size_t len;
    luna_verifier *v;
    void *col; /* direct backend runs (TPM; and the no-cache runs) */
    X509 *anchor;
    int64_t now;
    bool rev_opt;
} job;

/* Every hardware expectation ANY: the bench measures the hardware checks. */
static const void *any_expect(luna_evidence_type type)
{
    static luna_snp_expect snp = {.smt = LUNA_BIT_ANY,
                                  .migrate_ma = LUNA_BIT_ANY,
                                  .single_socket = LUNA_BIT_ANY,
                                  .vmpl_mode = LUNA_EXPECT_ANY,
                                  .report_data = {.mode = LUNA_EXPECT_ANY},
                                  .host_data = {.mode = LUNA_EXPECT_ANY},
                                  .min_tcb_mode = LUNA_EXPECT_ANY};
    static luna_tdx_expect tdx = {.rtmr = {{.mode = LUNA_EXPECT_ANY},
                                           {.mode = LUNA_EXPECT_ANY},
                                           {.mode = LUNA_EXPECT_ANY},
                                           {.mode = LUNA_EXPECT_ANY}},
                                  .mrconfigid = {.mode = LUNA_EXPECT_ANY},
                                  .mrownerconfig = {.mode = LUNA_EXPECT_ANY},
                                  .report_data = {.mode = LUNA_EXPECT_ANY}};
    static luna_sgx_expect sgx = {.isvprodid_mode = LUNA_EXPECT_ANY,
                                  .min_isvsvn_mode = LUNA_EXPECT_ANY,
                                  .report_data = {.mode = LUNA_EXPECT_ANY}};
    switch (type) {
    case LUNA_EVIDENCE_SEV_SNP: return &snp;
    case LUNA_EVIDENCE_TDX: return &tdx;
    case LUNA_EVIDENCE_SGX: return &sgx;
    default: return NULL;
    }
}

/* The backend alone, without a chain cache (j->col must be loaded). */
static double rate_direct(job *j)
{
    luna_verify_result res;
    luna_backend_ctx ctx = {.anchors = &j->anchor, .n_anchors = 1, .collateral = j->col,
                            .now = j->now, .revocation_optional = j->rev_opt,
                            .expect = any_expect(j->b->type)};
    long n = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < SECONDS) {
        void *st = NULL;
        const char *why = "parse";
        if (j->b->parse(j->ev, j->len, &st, &why) != LUNA_VERIFY_OK ||
            j->b->verify(st, &ctx, &why) != LUNA_VERIFY_OK ||
            j->b->claims(st, &ctx, &res.claims, &why) != LUNA_VERIFY_OK) {
            fprintf(stderr, "bench_evidence: %s refused: %s\n", j->name, why);
            exit(1);
        }
        j->b->free_state(st);
        n++;
        t = now_s();
    }
    return (double)n / (t - t0);
}

static double rate(job *j)
{
    static const uint8_t nonce[LUNA_VERIFY_NONCE_LEN] = {1};
    luna_verify_input in = {.type = j->b->type,
                            .evidence = j->ev,
                            .evidence_len = j->len,
                            .deployment_id = "bench",
                            .nonce = nonce,
                            .now = j->now};
    luna_verify_result res;
    luna_backend_ctx ctx = {.anchors = &j->anchor, .n_anchors = 1, .collateral = j->col,
                            .now = j->now, .revocation_optional = j->rev_opt};
    long n = 0;
    double t0 = now_s(), t = t0;
    while (j->v == NULL && t - t0 < SECONDS) {
        void *st = NULL;
        const char *why = "parse";
        if (j->b->parse(j->ev, j->len, &st, &why) != LUNA_VERIFY_OK ||
            j->b->verify(st, &ctx, &why) != LUNA_VERIFY_OK ||
            j->b->claims(st, &ctx, &res.claims, &why) != LUNA_VERIFY_OK) {
            fprintf(stderr, "bench_evidence: %s refused: %s\n", j->name, why);
            exit(1);
        }
        j->b->free_state(st);
        n++;
        t = now_s();
    }
    while (j->v != NULL && t - t0 < SECONDS) {
        if (luna_verifier_verify(j->v, &in, &res) != LUNA_ERR_VERIFY ||
            res.reason != LUNA_VERIFY_KEY_NOT_BOUND) {
            fprintf(stderr, "bench_evidence: %s refused: %s\n", j->name, res.message);
            exit(1);
        }
        n++;
        t = now_s();
    }
    return (double)n / (t - t0);
}

static int64_t iso(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
        die("time");
    return (int64_t)timegm(&tm);
}

/* Raw verifies per second of one signature with a fresh key. */
static double raw_rate(const char *alg)
{
    EVP_PKEY *k = strcmp(alg, "RSA") == 0 ? EVP_RSA_gen(2048)
                                          : EVP_EC_gen(strcmp(alg, "P-384") == 0 ? "P-384" : "P-256");
    const EVP_MD *md = strcmp(alg, "P-384") == 0 ? EVP_sha384() : EVP_sha256();
    static const uint8_t msg[632];
    uint8_t sig[512], pub[1024], *pp = pub;
    size_t sig_len = sizeof(sig), pub_len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (k == NULL || c == NULL || EVP_DigestSignInit(c, NULL, md, NULL, k) != 1 ||
        EVP_DigestSign(c, sig, &sig_len, msg, sizeof(msg)) != 1)
        die("raw signature");
    EVP_MD_CTX_free(c);
    if (strcmp(alg, "RSA") == 0) {
        int n = i2d_PUBKEY(k, &pp);
        pub_len = (size_t)n;
    } else {
        pub_len = EVP_PKEY_get1_encoded_public_key(k, &pp);
        memcpy(pub, pp, pub_len);
        OPENSSL_free(pp);
    }
    long n = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < SECONDS) {
        luna_err e = strcmp(alg, "RSA") == 0
                         ? luna_rsa_verify(pub, pub_len, LUNA_RSA_PKCS1, LUNA_HASH_SHA256, msg,
                                           sizeof(msg), sig, sig_len)
                         : luna_ecdsa_verify(strcmp(alg, "P-384") == 0 ? LUNA_EC_P384 : LUNA_EC_P256,
                                             pub, pub_len, LUNA_SIG_DER, msg, sizeof(msg), sig,
                                             sig_len);
        if (e != LUNA_OK)
            die("raw verify");
        n++;
        t = now_s();
    }
    EVP_PKEY_free(k);
    return (double)n / (t - t0);
}

/* A development verifier for the job's type (debug allowed, every
   expectation set) with w installed as collateral when given. */
static void make_verifier(job *j, luna_wbuf *w)
{
    static const uint8_t any[1] = {0};
    luna_policy *p = NULL;
    if (luna_policy_new(LUNA_PROFILE_DEVELOPMENT, &p) != LUNA_OK ||
        luna_policy_allow_type(p, j->b->type, 0) != LUNA_OK ||
        luna_policy_add_anchor(p, j->b->type, j->anchor) != LUNA_OK ||
        luna_policy_add_reference(p, "bench", j->b->type, any, 1) != LUNA_OK ||
        luna_policy_add_signer(p, "bench", any, 1) != LUNA_OK ||
        luna_policy_set_freshness(p, true, 0, 60) != LUNA_OK ||
        luna_policy_allow_debug(p) != LUNA_OK ||
        (j->rev_opt && luna_policy_set_revocation_optional(p, j->b->type) != LUNA_OK) ||
        (j->b->type == LUNA_EVIDENCE_SEV_SNP && luna_policy_set_snp(p, any_expect(j->b->type)) != LUNA_OK) ||
        (j->b->type == LUNA_EVIDENCE_TDX && luna_policy_set_tdx(p, any_expect(j->b->type)) != LUNA_OK) ||
        (j->b->type == LUNA_EVIDENCE_SGX && luna_policy_set_sgx(p, any_expect(j->b->type)) != LUNA_OK) ||
        luna_verifier_new(p, &j->v) != LUNA_OK)
        die("policy");
    if (w != NULL) {
        if (luna_verifier_set_collateral(j->v, j->b->type, w->data, w->len, j->now) != LUNA_OK ||
            j->b->collateral_load(w->data, w->len, &j->anchor, 1, j->now, &j->col) != LUNA_OK)
            die("collateral");
        luna_wbuf_free(w);
    }
}

int main(void)
{
    job jobs[5];
    luna_wbuf w;
    X509 *c[4];
    size_t n = 0;

    /* SEV-SNP: azure-milan-hcl-vcek (no AMD CRL in the set). */
    jobs[n] = (job){.name = "sev-snp", .b = &luna_verifier_backend_snp,
                    .now = iso("2023-05-03T00:00:00Z"), .rev_opt = true};
    jobs[n].ev = slurp("evidence/sev-snp/azure-milan-hcl-vcek.report.bin", &jobs[n].len);
    certs("evidence/sev-snp/azure-milan-hcl-vcek.ask_ark.pem", c, 2);
    jobs[n].anchor = c[1];
    if (luna_wbuf_init_alloc(&w, LUNA_HWCOL_MAX) != LUNA_OK || luna_hwcol_begin(&w) != LUNA_OK)
        die("bundle");
    add_certs(&w, "evidence/sev-snp/azure-milan-hcl-vcek.vcek.der", 0);
    add_cert(&w, c[0]);
    X509_free(c[0]);
    make_verifier(&jobs[n], &w);
    n++;
    /* Nitro: evervault 2023 (no collateral). */
    jobs[n] = (job){.name = "nitro", .b = &luna_verifier_backend_nitro,
                    .now = iso("2023-09-18T15:03:30Z")};
    jobs[n].ev = slurp("evidence/nitro/evervault-debug-2023-09-18.cose", &jobs[n].len);
    certs("evidence/nitro/aws-nitro-root-g1.pem", c, 1);
    jobs[n].anchor = c[0];
    make_verifier(&jobs[n], NULL);
    n++;
    /* TDX: phala v4, full collateral with CRLs. */
    jobs[n] = (job){.name = "tdx", .b = &luna_verifier_backend_tdx,
                    .now = iso("2025-06-20T00:00:00Z")};
    jobs[n].ev = slurp("evidence/tdx/phala-v4-b0c06f.quote.bin", &jobs[n].len);
    certs("evidence/tdx/phala-v4-b0c06f.root_ca.pem", c, 1);
    jobs[n].anchor = c[0];
    if (luna_wbuf_init_alloc(&w, LUNA_HWCOL_MAX) != LUNA_OK || luna_hwcol_begin(&w) != LUNA_OK)
        die("bundle");
    add_certs(&w, "evidence/tdx/phala-v4-b0c06f.tcb_signing_chain.pem", 0);
    add_file(&w, LUNA_HWCOL_CRL, "evidence/tdx/phala-v4-b0c06f.root_crl.der");
    add_file(&w, LUNA_HWCOL_CRL, "evidence/tdx/phala-v4-b0c06f.pck_crl.der");
    add_file(&w, LUNA_HWCOL_TCB_INFO, "evidence/tdx/phala-v4-b0c06f.tcb_info.json");
    add_file(&w, LUNA_HWCOL_QE_IDENTITY, "evidence/tdx/phala-v4-b0c06f.qe_identity.json");
    make_verifier(&jobs[n], &w);
    n++;
    /* SGX: integritee (no CRL for its Processor-CA PCK). */
    jobs[n] = (job){.name = "sgx", .b = &luna_verifier_backend_sgx,
                    .now = iso("2022-12-15T00:00:00Z"), .rev_opt = true};
    jobs[n].ev = slurp("evidence/sgx/integritee-debug-2022.quote.bin", &jobs[n].len);
    certs("evidence/sgx/intel-sgx-root-ca.pem", c, 1);
    jobs[n].anchor = c[0];
    if (luna_wbuf_init_alloc(&w, LUNA_HWCOL_MAX) != LUNA_OK || luna_hwcol_begin(&w) != LUNA_OK)
        die("bundle");
    add_certs(&w, "evidence/sgx/intel-sgx-tcb-signing-chain.pem", 0);
    add_file(&w, LUNA_HWCOL_CRL, "evidence/sgx/intel-sgx-root-ca-crl-2022-04-19.der");
    add_file(&w, LUNA_HWCOL_TCB_INFO, "evidence/sgx/tcbinfo-00906ea10000-2022-11-17.json");
    add_file(&w, LUNA_HWCOL_QE_IDENTITY, "evidence/sgx/qeidentity-2022-12-04.json");
    make_verifier(&jobs[n], &w);
    n++;
    /* TPM: GCE SHA-256 quote with its PCR values, AK certificate chain. */
    jobs[n] = (job){.name = "tpm", .b = &luna_verifier_backend_tpm,
                    .now = iso("2021-09-01T00:00:00Z"), .rev_opt = true};
    {
        size_t al = 0, sl = 0, jl = 0;
        uint8_t *a = slurp("evidence/tpm/gce-cos85-nonce9009.quote-sha256.attest.bin", &al);
        uint8_t *s = slurp("evidence/tpm/gce-cos85-nonce9009.quote-sha256.sig.bin", &sl);
        uint8_t *j = slurp("evidence/tpm/gce-cos85-nonce9009.quote-sha256.pcrs.json", &jl);
        uint8_t vals[24][32];
        luna_tpm_pcr p[24];
        for (int i = 0; i < 24; i++) {
            char key[16];
            size_t got = 0;
            snprintf(key, sizeof(key), "\"%d\": \"", i);
            const char *at = strstr((const char *)j, key);
            if (at == NULL || luna_hex_decode(at + strlen(key), 64, vals[i], 32, &got) != LUNA_OK)
                die("pcrs");
            p[i] = (luna_tpm_pcr){.bank = LUNA_TPM_ALG_SHA256, .index = (uint8_t)i,
                                  .value = vals[i], .len = 32};
        }
        if (luna_wbuf_init_alloc(&w, 8192) != LUNA_OK ||
            luna_tpm_evidence_build(&w, a, al, s, sl, p, 24) != LUNA_OK)
            die("tpm evidence");
        jobs[n].ev = malloc(w.len);
        if (jobs[n].ev == NULL)
            die("out of memory");
        memcpy(jobs[n].ev, w.data, w.len);
        jobs[n].len = w.len;
        luna_wbuf_free(&w);
        free(a);
        free(s);
        free(j);
    }
    certs("evidence/tpm/google-tpm-ek-root-1.pem", c, 1);
    jobs[n].anchor = c[0];
    if (luna_wbuf_init_alloc(&w, LUNA_HWCOL_MAX) != LUNA_OK || luna_hwcol_begin(&w) != LUNA_OK)
        die("bundle");
    add_certs(&w, "evidence/tpm/gce-cos85-nonce9009.ak.cert.der", 0);
    add_certs(&w, "evidence/tpm/google-tpm-ek-intermediate-2.pem", 0);
    if (jobs[n].b->collateral_load(w.data, w.len, &jobs[n].anchor, 1, jobs[n].now,
                                   &jobs[n].col) != LUNA_OK)
        die("tpm collateral");
    luna_wbuf_free(&w);
    n++;

    const double p384 = raw_rate("P-384"), p256 = raw_rate("P-256"), rsa = raw_rate("RSA");
    printf("raw verifies/s: ECDSA P-384 %.0f, ECDSA P-256 %.0f, RSA-2048 %.0f\n", p384, p256, rsa);
    printf("%-8s %12s %12s %30s %8s\n", "type", "verifies/s", "no cache/s",
           "raw signature baseline/s", "ratio");
    const struct {
        double base;
        const char *what;
    } base[] = {{p384, "1 x P-384"}, {p384, "1 x P-384"}, {p256 / 2, "2 x P-256"},
                {p256 / 2, "2 x P-256"}, {rsa, "1 x RSA-2048"}};
    for (size_t i = 0; i < n; i++) {
        double r = rate(&jobs[i]);
        /* The same backend without the chain cache (TPM: already so). */
        double cold = jobs[i].v != NULL ? rate_direct(&jobs[i]) : r;
        printf("%-8s %12.0f %12.0f %16.0f (%-12s) %7.0f%%\n", jobs[i].name, r, cold,
               base[i].base, base[i].what, 100.0 * r / base[i].base);
        luna_verifier_free(jobs[i].v);
        if (jobs[i].col != NULL)
            jobs[i].b->collateral_free(jobs[i].col);
        X509_free(jobs[i].anchor);
        free(jobs[i].ev);
    }
    return 0;
}
