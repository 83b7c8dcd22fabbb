/*
 * test_cli_offline.c - the offline `lunal attestation verify --evidence`
 * run as a real process on every sample of vectors/evidence: the
 * sample's collateral is copied into a fresh folder under shuffled,
 * meaningless names (content recognition, not names), the time is the
 * sample's stated verification time, and each run states its policy
 * (the flags) and asserts the verdict and, for refusals, the reason code
 * and the failing check of --json.  Also: relaxations named in human and
 * JSON output, usage errors (exit 2), an unrecognizable collateral file,
 * every check key in --json, the policy file, a flipped signature bit,
 * and TPM through the shared verifier's backends table.
 *
 * Without the vectors folder the suite says so and exits 77 (skipped).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/evidence_hw.h"
#include "luna/verifier.h"
#include "luna/verifier_offline.h"
#include "luna_test.h"
#include "verifier_internal.h"

/* cli_offline.cmake defines it; without it every run fails (exit 127). */
#ifndef LUNAL_BIN
#define LUNAL_BIN "/nonexistent/lunal"
#endif

#define MAX_ARGS 24

static char workdir[256];
static unsigned dir_seq;

/* ---- files ---- */

static uint8_t *vec_read(const char *rel, size_t *len)
{
    char *p = luna_test_vector_path(rel);
    uint8_t *d = luna_test_read_file(p, len);
    free(p);
    return d;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(len, fwrite(data, 1, len, f));
    assert_int_equal(0, fclose(f));
}

static char *read_text(const char *path)
{
    size_t len = 0;
    uint8_t *d = luna_test_read_file(path, &len);
    char *s = malloc(len + 1);
    assert_non_null(s);
    memcpy(s, d, len);
    s[len] = '\0';
    free(d);
    return s;
}

static void new_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s/d%u", workdir, dir_seq++);
    assert_int_equal(0, mkdir(out, 0700));
}

/* Copies the files into a new folder as k<NN><ext>: order and names say
   nothing of the content (a PEM may end in .der, a CRL in .json). */
static void copy_shuffled(char *dir, size_t cap, const char *const *rels, unsigned seed)
{
    static const char *const exts[] = {".bin", ".json", ".der", ".pem", "", ".txt", ".crt"};
    size_t n = 0;
    new_dir(dir, cap);
    while (rels[n] != NULL)
        n++;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        char path[512];
        uint8_t *d = vec_read(rels[i], &len);
        unsigned k = (unsigned)((i * 7u + seed * 3u + 5u) % 97u);
        snprintf(path, sizeof path, "%s/k%02u%s", dir, k, exts[(k + seed) % 7u]);
        write_file(path, d, len);
        free(d);
    }
}

/* ---- running lunal ---- */

typedef struct run_out {
    int rc;
    char *out;
    char *err;
} run_out;

static void run_free(run_out *r)
{
    free(r->out);
    free(r->err);
}

static run_out run(const char *const *args)
{
    const char *argv[MAX_ARGS + 2];
    char out_path[300], err_path[300];
    size_t n = 0;
    run_out r;
    int status = 0;

    argv[n++] = LUNAL_BIN;
    while (args[n - 1] != NULL) {
        assert_true(n < MAX_ARGS);
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    snprintf(out_path, sizeof out_path, "%s/stdout", workdir);
    snprintf(err_path, sizeof err_path, "%s/stderr", workdir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        /* No configuration or network settings may matter offline. */
        unsetenv("LUNAL_CONFIG");
        setenv("LUNAL_GATEWAY_URL", "https://127.0.0.1:1", 1);
        execv(LUNAL_BIN, (char *const *)argv);
        _exit(127);
    }
    assert_int_equal(pid, waitpid(pid, &status, 0));
    assert_true(WIFEXITED(status));
    r.rc = WEXITSTATUS(status);
    r.out = read_text(out_path);
    r.err = read_text(err_path);
    /* Under ASan/UBSan a sanitizer report must fail the run even when
       its exit status looks like a refusal (1). */
    if (strstr(r.err, "Sanitizer") != NULL || strstr(r.err, "runtime error") != NULL)
        fprintf(stderr, "%s\n", r.err);
    assert_null(strstr(r.err, "Sanitizer"));
    assert_null(strstr(r.err, "runtime error"));
    return r;
}

/* ---- JSON assertions ---- */

static const char *const check_keys[] = {"signature",  "certificate_chain", "collateral",
                                         "revocation", "tcb_status",        "qe_identity_status",
                                         "debug",      "measurement"};

static json_t *parse_json(const run_out *r)
{
    json_error_t je;
    json_t *j = json_loads(r->out, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        fprintf(stderr, "not JSON: %s\n%s\n%s\n", je.text, r->out, r->err);
    assert_non_null(j);
    const json_t *checks = json_object_get(j, "checks");
    assert_true(json_is_object(checks));
    assert_int_equal(8, json_object_size(checks));
    for (size_t i = 0; i < 8; i++) {
        const char *v = json_string_value(json_object_get(checks, check_keys[i]));
        assert_non_null(v);
        assert_true(strcmp(v, "pass") == 0 || strcmp(v, "fail") == 0 ||
                    strcmp(v, "not_applicable") == 0 || strcmp(v, "relaxed") == 0 ||
                    strcmp(v, "not_checked") == 0 || strcmp(v, "skipped") == 0);
    }
    assert_true(json_is_array(json_object_get(j, "reasons")));
    assert_true(json_is_array(json_object_get(j, "relaxations")));
    return j;
}

static const char *check_of(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(json_object_get(j, "checks"), key));
}

/* ---- the samples ---- */

typedef struct expect {
    const char *flags[6];  /* the policy of this run */
    const char *verdict;   /* "verified" / "refused" */
    const char *reason;    /* first reason code (refusals) */
    const char *check;     /* the check that first failed (refusals) */
} expect;

typedef struct sample {
    const char *type;
    const char *evidence;      /* under vectors/ */
    const char *collateral[9]; /* under vectors/, NULL-terminated */
    const char *at;
    size_t cut;                /* bytes of upstream junk cut off (as well as as-stored) */
    const char *pin_ak;        /* TPM: AK public key pinned by a policy file */
    expect runs[5];
} sample;

#define SNP(n, cert)                                                                          \
    "evidence/sev-snp/" n ".report.bin", {"evidence/sev-snp/" n "." cert,                    \
                                          "evidence/sev-snp/" n ".ask_ark.pem"}
#define TDX_FULL(n, crl)                                                                      \
    {"evidence/tdx/" n ".root_ca.pem", "evidence/tdx/" n ".tcb_signing_chain.pem",           \
     "evidence/tdx/" n ".root_crl.der", "evidence/tdx/" n ".tcb_info.json",                  \
     "evidence/tdx/" n ".qe_identity.json", crl ? "evidence/tdx/" n ".pck_crl.der" : NULL,   \
     crl ? "evidence/tdx/" n ".pck_crl_issuer_chain.pem" : NULL}
#define NITRO_ROOT {"evidence/nitro/aws-nitro-root-g1.pem"}
#define GCE_COL                                                                               \
    {"evidence/tpm/gce-cos85-nonce9009.ak.cert.der",                                        \
     "evidence/tpm/google-tpm-ek-intermediate-2.pem", "evidence/tpm/google-tpm-ek-root-1.pem"}

#define VERIFIED "verified", NULL, NULL
#define REFUSED(r, c) "refused", r, c
#define NO_CRL REFUSED("collateral_missing", "revocation")

static const sample samples[] = {
    /* AMD SEV-SNP: AMD publishes no CRL in the set, so strict refuses on
       revocation; with revocation optional the stated verdicts follow. */
    {"sev-snp", SNP("azure-genoa-vcek", "vcek.der"), "2025-01-25T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL}, {{"--revocation-optional"}, VERIFIED}}},
    {"sev-snp", SNP("azure-milan-hcl-vcek", "vcek.der"), "2023-05-03T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL}, {{"--revocation-optional"}, VERIFIED}}},
    {"sev-snp", SNP("gsg-milan-vcek", "vcek.der"), "2022-09-25T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL},
      {{"--revocation-optional"}, REFUSED("debug_forbidden", "debug")},
      {{"--revocation-optional", "--allow-debug"}, VERIFIED}}},
    {"sev-snp", SNP("trustee-milan-vlek", "vlek.der"), "2024-12-11T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL}, {{"--revocation-optional"}, VERIFIED}}},
    /* AWS Nitro: every sample is a debug-mode enclave; AWS has no CRLs. */
    {"nitro", "evidence/nitro/evervault-debug-2023-09-18.cose", NITRO_ROOT,
     "2023-09-18T15:03:30Z", 0, NULL,
     {{{NULL}, REFUSED("debug_forbidden", "debug")}, {{"--allow-debug"}, VERIFIED}}},
    {"nitro", "evidence/nitro/evervault-debug-2022-10-12.cose", NITRO_ROOT,
     "2022-10-12T13:50:06Z", 0, NULL,
     {{{NULL}, REFUSED("debug_forbidden", "debug")}, {{"--allow-debug"}, VERIFIED}}},
    {"nitro", "evidence/nitro/blocky-debug-2024-09-07.cose", NITRO_ROOT, "2024-09-07T14:38:06Z", 0,
     NULL, {{{NULL}, REFUSED("debug_forbidden", "debug")}, {{"--allow-debug"}, VERIFIED}}},
    /* Intel TDX. */
    {"tdx", "evidence/tdx/azure-v4-00806f05.quote.bin",
     {"evidence/tdx/azure-v4-00806f05.pck_chain.pem", "evidence/tdx/azure-v4-00806f05.root_ca.pem"},
     "2023-09-14T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL},
      {{"--revocation-optional"}, REFUSED("collateral_missing", "collateral")}}},
    /* Stored with 39 bytes of upstream text after the quote: malformed as
       stored; the quote alone gets the stated "TCB level not supported". */
    {"tdx", "evidence/tdx/gtg-v4-spr-e4.quote.bin", TDX_FULL("gtg-v4-spr-e4", 1),
     "2023-06-19T00:00:00Z", 39, NULL,
     {{{NULL}, REFUSED("tcb_out_of_date", "tcb_status")}}},
    {"tdx", "evidence/tdx/phala-v4-b0c06f.quote.bin", TDX_FULL("phala-v4-b0c06f", 1),
     "2025-06-20T00:00:00Z", 0, NULL, {{{NULL}, VERIFIED}}},
    {"tdx", "evidence/tdx/trustee-v4-00a06d.quote.bin", TDX_FULL("trustee-v4-00a06d", 0),
     "2025-10-29T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL},
      {{"--revocation-optional"}, REFUSED("tcb_out_of_date", "tcb_status")},
      {{"--revocation-optional", "--accept-tcb", "OutOfDate"}, VERIFIED}}},
    {"tdx", "evidence/tdx/trustee-v5-tdx15-90c06f.quote.bin",
     TDX_FULL("trustee-v5-tdx15-90c06f", 1), "2026-02-19T00:00:00Z", 0, NULL,
     {{{NULL}, REFUSED("tcb_out_of_date", "tcb_status")},
      {{"--accept-tcb", "OutOfDate,SWHardeningNeeded,ConfigurationNeeded"},
       REFUSED("tcb_out_of_date", "tcb_status")}}},
    /* Intel SGX. */
    {"sgx", "evidence/sgx/integritee-debug-2022.quote.bin",
     {"evidence/sgx/intel-sgx-root-ca.pem", "evidence/sgx/intel-sgx-tcb-signing-chain.pem",
      "evidence/sgx/tcbinfo-00906ea10000-2022-11-17.json", "evidence/sgx/qeidentity-2022-12-04.json",
      "evidence/sgx/intel-sgx-root-ca-crl-2022-04-19.der"},
     "2022-12-15T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL},
      {{"--revocation-optional"}, REFUSED("debug_forbidden", "debug")},
      {{"--revocation-optional", "--allow-debug"}, REFUSED("tcb_out_of_date", "tcb_status")},
      {{"--revocation-optional", "--allow-debug", "--accept-tcb", "SWHardeningNeeded"},
       VERIFIED}}},
    /* No QE Identity exists for it: refused whatever the relaxations. */
    {"sgx", "evidence/sgx/trustee-occlum-debug-2023.quote.bin",
     {"evidence/sgx/intel-sgx-root-ca.pem", "evidence/sgx/intel-sgx-tcb-signing-chain.pem",
      "evidence/sgx/tcbinfo-00606a000000-2023-09-13.json"},
     "2023-09-20T00:00:00Z", 0, NULL,
     {{{"--revocation-optional", "--allow-debug", "--accept-tcb", "OutOfDate"},
       REFUSED("collateral_missing", "collateral")}}},
    /* TPM: three quotes of one GCE vTPM with its AK certificate chain. */
    {"tpm", "evidence/tpm/gce-cos85-nonce9009.quote-sha1.attest.bin", GCE_COL,
     "2021-09-01T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL}, {{"--revocation-optional"}, VERIFIED}}},
    {"tpm", "evidence/tpm/gce-cos85-nonce9009.quote-sha256.attest.bin", GCE_COL,
     "2021-09-01T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL}, {{"--revocation-optional"}, VERIFIED}}},
    {"tpm", "evidence/tpm/gce-cos85-nonce9009.quote-sha384.attest.bin", GCE_COL,
     "2021-09-01T00:00:00Z", 0, NULL,
     {{{NULL}, NO_CRL}, {{"--revocation-optional"}, VERIFIED}}},
    /* TPM with the AK pinned (no certificate exists): verified only with
       the pin; the same folder without it refuses. */
    {"tpm", "evidence/tpm/trustee-swtpm.quote.attest.bin", {"evidence/tpm/trustee-swtpm.ak.pub.pem"},
     "2025-10-14T00:00:00Z", 0, "evidence/tpm/trustee-swtpm.ak.pub.pem",
     {{{NULL}, VERIFIED}}},
    {"tpm", "evidence/tpm/azure-tdx-vtpm.quote.attest.bin", {"evidence/tpm/azure-tdx-vtpm.ak.pub.pem"},
     "2024-07-03T00:00:00Z", 0, "evidence/tpm/azure-tdx-vtpm.ak.pub.pem",
     {{{NULL}, VERIFIED}}},
};

/* Places the evidence (and, for TPM, its .sig.bin / .pcrs.json) in a new
   folder under neutral names; returns the evidence path. */
static void place_evidence(const sample *s, size_t cut, char *path, size_t cap)
{
    char dir[300];
    size_t len = 0;
    uint8_t *d = vec_read(s->evidence, &len);

    new_dir(dir, sizeof dir);
    assert_true(cut < len);
    if (strcmp(s->type, "tpm") != 0) {
        snprintf(path, cap, "%s/evidence.bin", dir);
        write_file(path, d, len - cut);
        free(d);
        return;
    }
    snprintf(path, cap, "%s/q.attest.bin", dir);
    write_file(path, d, len);
    free(d);
    /* X.attest.bin -> X.sig.bin, X.pcrs.json beside it. */
    static const char *const sides[] = {".sig.bin", ".pcrs.json"};
    for (size_t i = 0; i < 2; i++) {
        char rel[300], dst[320];
        size_t base = strlen(s->evidence) - strlen(".attest.bin");
        snprintf(rel, sizeof rel, "%.*s%s", (int)base, s->evidence, sides[i]);
        d = vec_read(rel, &len);
        snprintf(dst, sizeof dst, "%s/q%s", dir, sides[i]);
        write_file(dst, d, len);
        free(d);
    }
}

/* SHA-256 of the SubjectPublicKeyInfo DER of a PEM public key, as hex. */
static void spki_sha256_hex(const char *rel, char out[65])
{
    size_t len = 0;
    uint8_t *pem = vec_read(rel, &len), h[32];
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    assert_non_null(bio);
    EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    assert_non_null(k);
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    assert_true(n > 0);
    assert_luna_ok(luna_sha256(der, (size_t)n, h));
    assert_luna_ok(luna_hex_encode(h, 32, out, 65));
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    BIO_free(bio);
    free(pem);
}

static void pin_policy(const sample *s, char *path, size_t cap)
{
    char dir[300], hex[65], text[256];
    spki_sha256_hex(s->pin_ak, hex);
    new_dir(dir, sizeof dir);
    snprintf(path, cap, "%s/policy.json", dir);
    snprintf(text, sizeof text, "{\"version\":1,\"tpm_ak_sha256\":[\"%s\"]}", hex);
    write_file(path, text, strlen(text));
}

/* One run: the policy is exactly e->flags (+ the AK pin file for TPM). */
static json_t *run_sample(const sample *s, const expect *e, const char *ev, const char *col,
                          const char *policy)
{
    const char *args[MAX_ARGS] = {"--json", "attestation", "verify", "--evidence", ev,
                                  "--type", s->type, "--collateral", col, "--at", s->at};
    size_t n = 11;
    if (policy != NULL) {
        args[n++] = "--policy";
        args[n++] = policy;
    }
    for (size_t i = 0; i < 6 && e->flags[i] != NULL; i++)
        args[n++] = e->flags[i];
    args[n] = NULL;
    run_out r = run(args);
    if (r.rc != (strcmp(e->verdict, "verified") == 0 ? 0 : 1))
        fprintf(stderr, "%s %s: rc %d\n%s\n%s\n", s->type, s->evidence, r.rc, r.out, r.err);
    assert_int_equal(strcmp(e->verdict, "verified") == 0 ? 0 : 1, r.rc);
    json_t *j = parse_json(&r);
    assert_string_equal(e->verdict, json_string_value(json_object_get(j, "verdict")));
    assert_string_equal(s->type, json_string_value(json_object_get(j, "evidence_type")));
    if (e->reason != NULL) {
        const json_t *first = json_array_get(json_object_get(j, "reasons"), 0);
        if (strcmp(e->reason, json_string_value(json_object_get(j, "reason"))) != 0)
            fprintf(stderr, "%s %s %s: %s\n", s->type, s->evidence,
                    e->flags[0] != NULL ? e->flags[0] : "(strict)", r.out);
        assert_string_equal(e->reason, json_string_value(json_object_get(j, "reason")));
        assert_string_equal(e->reason, json_string_value(json_object_get(first, "code")));
        assert_string_equal(e->check, json_string_value(json_object_get(first, "check")));
        if (strcmp(e->check, "evidence") == 0) {
            /* The evidence itself did not parse: nothing was evaluated. */
            for (size_t i = 0; i < 8; i++)
                assert_string_equal("skipped", check_of(j, check_keys[i]));
        } else {
            assert_string_equal("fail", check_of(j, e->check));
        }
        assert_true(strlen(json_string_value(json_object_get(first, "message"))) > 0);
    } else {
        assert_int_equal(0, json_array_size(json_object_get(j, "reasons")));
        assert_string_equal("pass", check_of(j, "signature"));
        assert_true(json_is_object(json_object_get(j, "claims")));
    }
    run_free(&r);
    return j;
}

static void t_every_sample(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        const sample *s = &samples[i];
        char col[300], ev[320], pol[320];
        copy_shuffled(col, sizeof col, s->collateral, (unsigned)i);
        place_evidence(s, s->cut, ev, sizeof ev);
        if (s->pin_ak != NULL)
            pin_policy(s, pol, sizeof pol);
        for (size_t k = 0; k < 5 && s->runs[k].verdict != NULL; k++) {
            json_t *j = run_sample(s, &s->runs[k], ev, col, s->pin_ak != NULL ? pol : NULL);
            /* A relaxation a run asked for is named in the JSON. */
            size_t named = json_array_size(json_object_get(j, "relaxations"));
            size_t asked = 0;
            for (size_t f = 0; f < 6 && s->runs[k].flags[f] != NULL; f++)
                asked += s->runs[k].flags[f][0] == '-';
            assert_int_equal(asked, named);
            json_decref(j);
        }
        if (s->cut != 0) {
            /* As stored (with the junk): malformed, before any crypto. */
            static const expect junk = {{NULL}, REFUSED("malformed", "evidence")};
            place_evidence(s, 0, ev, sizeof ev);
            json_decref(run_sample(s, &junk, ev, col, NULL));
        }
        if (s->pin_ak != NULL) {
            /* Same folder, no pin: the public key alone is not trusted. */
            static const expect unpinned = {{"--revocation-optional"},
                                            REFUSED("unknown_root", "certificate_chain")};
            json_decref(run_sample(s, &unpinned, ev, col, NULL));
        }
    }
}

/* ---- derived refusals and output ---- */

static const sample *find(const char *evidence_suffix)
{
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        size_t n = strlen(samples[i].evidence), m = strlen(evidence_suffix);
        if (n >= m && strcmp(samples[i].evidence + n - m, evidence_suffix) == 0)
            return &samples[i];
    }
    fail();
    return NULL;
}

static void t_flipped_signature_and_time(void **state)
{
    (void)state;
    const sample *s = find("phala-v4-b0c06f.quote.bin");
    char col[300], ev[320];
    size_t len = 0;
    copy_shuffled(col, sizeof col, s->collateral, 40);
    place_evidence(s, 0, ev, sizeof ev);
    uint8_t *q = luna_test_read_file(ev, &len);
    q[48 + 584 + 4 + 10] ^= 0x01; /* inside the quote signature */
    write_file(ev, q, len);
    free(q);
    static const expect bad = {{NULL}, REFUSED("bad_signature", "signature")};
    json_decref(run_sample(s, &bad, ev, col, NULL));

    /* The right files at a time outside their windows. */
    sample late = *s;
    late.at = "2035-01-01T00:00:00Z";
    place_evidence(s, 0, ev, sizeof ev);
    const char *args[] = {"--json", "attestation", "verify", "--evidence", ev, "--type", "tdx",
                          "--collateral", col, "--at", late.at, NULL};
    run_out r = run(args);
    assert_int_equal(1, r.rc);
    json_t *j = parse_json(&r);
    const char *reason = json_string_value(json_object_get(j, "reason"));
    assert_true(strcmp(reason, "cert_expired") == 0 || strcmp(reason, "collateral_stale") == 0);
    json_decref(j);
    run_free(&r);

    /* Unix seconds mean the same instant as RFC 3339. */
    const char *args2[] = {"attestation", "verify", "--evidence", ev, "--type", "tdx",
                           "--collateral", col, "--at", "1750377600", NULL};
    r = run(args2);
    assert_int_equal(0, r.rc);
    assert_non_null(strstr(r.out, "Verification Time: 2025-06-20 00:00:00 UTC"));
    run_free(&r);
}

static void t_human_output_names_relaxations(void **state)
{
    (void)state;
    const sample *s = find("integritee-debug-2022.quote.bin");
    char col[300], ev[320];
    copy_shuffled(col, sizeof col, s->collateral, 41);
    place_evidence(s, 0, ev, sizeof ev);

    const char *strict[] = {"attestation", "verify", "--evidence", ev, "--type", "sgx",
                            "--collateral", col, "--at", s->at, "--revocation-optional",
                            "--allow-debug", NULL};
    run_out r = run(strict);
    assert_int_equal(1, r.rc);
    assert_non_null(strstr(r.out, "❌ Attestation verification FAILED for evidence:"));
    assert_non_null(strstr(r.out, "TCB Status: SW hardening needed ✗"));
    assert_non_null(strstr(r.out, "Reason: TCB Status: SW hardening needed (tcb_out_of_date"));
    assert_non_null(strstr(r.out, "Debug: Yes (relaxed: --allow-debug)"));
    assert_non_null(strstr(r.out, "Revocation: NOT CHECKED, no CRL (relaxed: --revocation-optional)"));
    assert_non_null(strstr(r.out, "Platform Verification: FAILED"));
    assert_null(strstr(r.out, "genuine TEE"));
    assert_null(strstr(r.out, "SIMULATED"));
    run_free(&r);

    const char *relaxed[] = {"attestation", "verify", "--evidence", ev, "--type", "sgx",
                             "--collateral", col, "--at", s->at, "--revocation-optional",
                             "--allow-debug", "--accept-tcb", "SWHardeningNeeded", NULL};
    r = run(relaxed);
    assert_int_equal(0, r.rc);
    assert_non_null(strstr(r.out, "✅ Attestation verification complete for evidence:"));
    assert_non_null(strstr(r.out, "Policy: relaxed: allow debug (--allow-debug); accept TCB "
                                  "sw_hardening_needed (--accept-tcb); revocation optional "
                                  "(--revocation-optional);"));
    assert_non_null(strstr(r.out, "TCB Status: SW hardening needed (accepted: --accept-tcb)"));
    assert_non_null(strstr(r.out, "QE Identity: Valid"));
    assert_non_null(strstr(r.out, "Certificate Chain: VALID (root: Intel SGX Root CA) ✓"));
    assert_non_null(strstr(r.out, "MR_ENCLAVE: 6f90120b5c1f03619112eac855e29d6e0be4f35b2902aa169affff7719277ebc"));
    assert_non_null(strstr(r.out, "Platform Verification: SECURE ✓"));
    assert_non_null(strstr(r.out, "The evidence comes from a genuine TEE environment."));
    assert_null(strstr(r.out, "SIMULATED"));
    run_free(&r);

    /* The same relaxations named in JSON, and each relaxed check says so. */
    const char *js[] = {"--json", "attestation", "verify", "--evidence", ev, "--type", "sgx",
                        "--collateral", col, "--at", s->at, "--revocation-optional",
                        "--allow-debug", "--accept-tcb", "SWHardeningNeeded", NULL};
    r = run(js);
    assert_int_equal(0, r.rc);
    json_t *j = parse_json(&r);
    assert_string_equal("relaxed", check_of(j, "debug"));
    assert_string_equal("relaxed", check_of(j, "tcb_status"));
    assert_string_equal("relaxed", check_of(j, "revocation"));
    assert_string_equal("pass", check_of(j, "qe_identity_status"));
    assert_string_equal("pass", check_of(j, "collateral"));
    assert_string_equal("not_checked", check_of(j, "measurement"));
    const json_t *rl = json_object_get(j, "relaxations");
    assert_int_equal(3, json_array_size(rl));
    assert_string_equal("allow_debug", json_string_value(json_object_get(json_array_get(rl, 0), "name")));
    assert_string_equal("--allow-debug",
                        json_string_value(json_object_get(json_array_get(rl, 0), "source")));
    assert_string_equal("sw_hardening_needed",
                        json_string_value(json_object_get(json_array_get(rl, 1), "statuses")));
    assert_string_equal("revocation_optional",
                        json_string_value(json_object_get(json_array_get(rl, 2), "name")));
    json_decref(j);
    run_free(&r);
}

static void t_policy_file(void **state)
{
    (void)state;
    const sample *s = find("phala-v4-b0c06f.quote.bin");
    char col[300], ev[320], dir[300], pol[320];
    copy_shuffled(col, sizeof col, s->collateral, 42);
    place_evidence(s, 0, ev, sizeof ev);
    new_dir(dir, sizeof dir);
    snprintf(pol, sizeof pol, "%s/p.json", dir);

    /* Learn the sample's MRTD from a run without expectations. */
    const char *learn[] = {"--json", "attestation", "verify", "--evidence", ev, "--type", "tdx",
                           "--collateral", col, "--at", s->at, NULL};
    run_out r = run(learn);
    assert_int_equal(0, r.rc);
    json_t *j = parse_json(&r);
    char mr[129];
    snprintf(mr, sizeof mr, "%s",
             json_string_value(json_object_get(json_object_get(j, "claims"), "mr_enclave")));
    assert_int_equal(96, strlen(mr));
    json_decref(j);
    run_free(&r);

    const char *args[] = {"--json", "attestation", "verify", "--evidence", ev, "--type", "tdx",
                          "--collateral", col, "--at", s->at, "--policy", pol, NULL};
    char text[600];
    snprintf(text, sizeof text, "{\"version\":1,\"mr_enclave\":[\"%s\"]}", mr);
    write_file(pol, text, strlen(text));
    r = run(args);
    assert_int_equal(0, r.rc);
    j = parse_json(&r);
    assert_string_equal("pass", check_of(j, "measurement"));
    json_decref(j);
    run_free(&r);

    /* One bit off: measurement_mismatch. */
    mr[95] = mr[95] == '0' ? '1' : '0';
    snprintf(text, sizeof text, "{\"version\":1,\"mr_enclave\":[\"%s\"]}", mr);
    write_file(pol, text, strlen(text));
    r = run(args);
    assert_int_equal(1, r.rc);
    j = parse_json(&r);
    assert_string_equal("measurement_mismatch", json_string_value(json_object_get(j, "reason")));
    assert_string_equal("fail", check_of(j, "measurement"));
    json_decref(j);
    run_free(&r);

    /* report_data expectation that does not hold. */
    snprintf(text, sizeof text, "{\"version\":1,\"report_data\":\"00ff\"}");
    write_file(pol, text, strlen(text));
    r = run(args);
    assert_int_equal(1, r.rc);
    j = parse_json(&r);
    assert_string_equal("key_not_bound", json_string_value(json_object_get(j, "reason")));
    json_decref(j);
    run_free(&r);

    /* A relaxation from the file is named with its source. */
    snprintf(text, sizeof text, "{\"version\":1,\"accept_tcb\":[\"OutOfDate\"]}");
    write_file(pol, text, strlen(text));
    r = run(args);
    assert_int_equal(0, r.rc);
    j = parse_json(&r);
    const json_t *rl = json_array_get(json_object_get(j, "relaxations"), 0);
    assert_string_equal("accept_tcb", json_string_value(json_object_get(rl, "name")));
    assert_string_equal("policy file", json_string_value(json_object_get(rl, "source")));
    json_decref(j);
    run_free(&r);

    /* Strict schema: an unknown field, a missing version, a bad hex. */
    static const char *const bad[] = {
        "{\"version\":1,\"mrenclave\":[\"00\"]}",
        "{\"mr_enclave\":[\"00112233445566778899aabbccddeeff\"]}",
        "{\"version\":1,\"mr_enclave\":[\"zz\"]}",
        "{\"version\":1,\"accept_tcb\":[\"Revoked\"]}",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(pol, bad[i], strlen(bad[i]));
        r = run(args);
        assert_int_equal(2, r.rc);
        assert_non_null(strstr(r.err, "policy"));
        run_free(&r);
    }
}

static void t_usage_errors(void **state)
{
    (void)state;
    const sample *s = find("phala-v4-b0c06f.quote.bin");
    char col[300], ev[320];
    copy_shuffled(col, sizeof col, s->collateral, 43);
    place_evidence(s, 0, ev, sizeof ev);
    const char *const cases[][14] = {
        {"attestation", "verify", "--evidence", ev, NULL},
        {"attestation", "verify", "--evidence", ev, "--type", "sim", NULL},
        {"attestation", "verify", "--evidence", ev, "--type", "tdx", "--at", "yesterday", NULL},
        {"attestation", "verify", "--evidence", ev, "--type", "tdx", "--at",
         "2025-02-30T00:00:00Z", NULL},
        {"attestation", "verify", "--evidence", ev, "--type", "tdx", "--bogus", NULL},
        {"attestation", "verify", "--evidence", ev, "--type", "tdx", "--at", NULL},
        {"attestation", "verify", "--evidence", ev, "--type", "tdx", "--type", "sgx", NULL},
        {"attestation", "verify", "--evidence", ev, "--type", "tdx", "--accept-tcb", "Revoked",
         NULL},
        {"attestation", "verify", "--evidence", "/nonexistent/q.bin", "--type", "tdx", NULL},
        {"attestation", "verify", "--evidence", ev, "--type", "tdx", "--collateral",
         "/nonexistent", NULL},
        {"attestation", "verify", "--evidence", ev, "--type", "tpm", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_out r = run(cases[i]);
        if (r.rc != 2)
            fprintf(stderr, "case %zu: rc %d\n%s\n%s\n", i, r.rc, r.out, r.err);
        assert_int_equal(2, r.rc);
        assert_non_null(strstr(r.err, "lunal: "));
        assert_int_equal(0, strlen(r.out));
        run_free(&r);
    }
    /* --help is not an error. */
    const char *help[] = {"attestation", "verify", "--evidence", ev, "--help", NULL};
    run_out r = run(help);
    assert_int_equal(0, r.rc);
    assert_non_null(strstr(r.out, "--collateral DIR"));
    run_free(&r);
}

static void t_unrecognized_collateral(void **state)
{
    (void)state;
    const sample *s = find("phala-v4-b0c06f.quote.bin");
    char col[300], ev[320], path[400];
    copy_shuffled(col, sizeof col, s->collateral, 44);
    place_evidence(s, 0, ev, sizeof ev);
    const char *args[] = {"attestation", "verify", "--evidence", ev, "--type", "tdx",
                          "--collateral", col, "--at", s->at, NULL};

    snprintf(path, sizeof path, "%s/notes.pem", col);
    write_file(path, "these are notes, not a certificate\n", 35);
    run_out r = run(args);
    assert_int_equal(2, r.rc);
    assert_non_null(strstr(r.err, "notes.pem: unrecognized file: not a certificate, CRL, public "
                                  "key, TCB Info or QE Identity"));
    run_free(&r);
    assert_int_equal(0, unlink(path));

    /* The sample's own sidecar is JSON but not an Intel document. */
    size_t len = 0;
    uint8_t *meta = vec_read("evidence/tdx/phala-v4-b0c06f.meta.json", &len);
    snprintf(path, sizeof path, "%s/cert.der", col);
    write_file(path, meta, len);
    free(meta);
    r = run(args);
    assert_int_equal(2, r.rc);
    assert_non_null(strstr(r.err, "cert.der: unrecognized file: JSON is not an Intel TCB Info"));
    run_free(&r);
    assert_int_equal(0, unlink(path));

    /* A private key is named as such. */
    snprintf(path, sizeof path, "%s/k", col);
    static const char pk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    write_file(path, pk, sizeof(pk) - 1);
    r = run(args);
    assert_int_equal(2, r.rc);
    assert_non_null(strstr(r.err, "private key"));
    run_free(&r);
    assert_int_equal(0, unlink(path));

    /* Over the per-file cap. */
    uint8_t *big = calloc(1, LUNA_COLFILE_MAX + 1);
    assert_non_null(big);
    snprintf(path, sizeof path, "%s/big", col);
    write_file(path, big, LUNA_COLFILE_MAX + 1);
    free(big);
    r = run(args);
    assert_int_equal(2, r.rc);
    assert_non_null(strstr(r.err, "cap"));
    run_free(&r);
    assert_int_equal(0, unlink(path));

    /* Two different TCB Info documents: which one applies is not guessed. */
    len = 0;
    uint8_t *other = vec_read("evidence/tdx/trustee-v4-00a06d.tcb_info.json", &len);
    snprintf(path, sizeof path, "%s/zz", col);
    write_file(path, other, len);
    free(other);
    r = run(args);
    assert_int_equal(2, r.rc);
    assert_non_null(strstr(r.err, "a second, different tcb_info"));
    run_free(&r);
    assert_int_equal(0, unlink(path));

    /* A FIFO must neither hang the command nor be read. */
    snprintf(path, sizeof path, "%s/fifo", col);
    assert_int_equal(0, mkfifo(path, 0600));
    r = run(args);
    assert_int_equal(2, r.rc);
    assert_non_null(strstr(r.err, "fifo: not a regular file"));
    run_free(&r);
    assert_int_equal(0, unlink(path));

    /* Back to the clean folder: verified (the folder itself was fine). */
    r = run(args);
    assert_int_equal(0, r.rc);
    run_free(&r);
}

/* TPM is in the shared verifier's backends table: the GCE SHA-256 quote
   verifies through luna_verifier (policy TPM-GCE: production, Google EK
   root, revocation optional, the quote's own pcrDigest and AK name as
   reference values, nonce freshness; key binding is not part of the
   sample, hence the unbound entry point). */
static void t_tpm_through_shared_verifier(void **state)
{
    (void)state;
    size_t a_len = 0, s_len = 0, p_len = 0, c_len = 0, i_len = 0;
    uint8_t *attest = vec_read("evidence/tpm/gce-cos85-nonce9009.quote-sha256.attest.bin", &a_len);
    uint8_t *sig = vec_read("evidence/tpm/gce-cos85-nonce9009.quote-sha256.sig.bin", &s_len);
    uint8_t *pcrs = vec_read("evidence/tpm/gce-cos85-nonce9009.quote-sha256.pcrs.json", &p_len);
    uint8_t *ak = vec_read("evidence/tpm/gce-cos85-nonce9009.ak.cert.der", &c_len);
    char *rp = luna_test_vector_path("evidence/tpm/google-tpm-ek-root-1.pem");
    char *ip = luna_test_vector_path("evidence/tpm/google-tpm-ek-intermediate-2.pem");
    const char *why = NULL;
    luna_wbuf ev, col;
    X509 *root = NULL, *inter = NULL;

    FILE *f = fopen(rp, "r");
    assert_non_null(f);
    root = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(ip, "r");
    assert_non_null(f);
    inter = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(root);
    assert_non_null(inter);
    unsigned char *ider = NULL;
    int in = i2d_X509(inter, &ider);
    assert_true(in > 0);
    i_len = (size_t)in;

    assert_luna_ok(luna_wbuf_init_alloc(&ev, LUNA_VERIFY_EVIDENCE_MAX));
    assert_luna_ok(luna_tpm_evidence_from_files(&ev, attest, a_len, sig, s_len, pcrs, p_len, &why));
    assert_luna_ok(luna_wbuf_init_alloc(&col, LUNA_HWCOL_MAX));
    assert_luna_ok(luna_hwcol_begin(&col));
    assert_luna_ok(luna_hwcol_add(&col, LUNA_HWCOL_CERT, ak, c_len));
    assert_luna_ok(luna_hwcol_add(&col, LUNA_HWCOL_CERT, ider, i_len));

    /* The reference values are the quote's own, read back by the offline
       appraisal (which runs the same backend). */
    X509 *anchors[1] = {root};
    luna_offline_policy op;
    memset(&op, 0, sizeof op);
    op.revocation_optional = true;
    luna_offline_input oin = {.type = LUNA_EVIDENCE_TPM, .evidence = ev.data,
                              .evidence_len = ev.len, .collateral = col.data,
                              .collateral_len = col.len, .anchors = anchors, .n_anchors = 1,
                              .now = 1630454400, .policy = &op};
    luna_offline_result *ores = calloc(1, sizeof *ores);
    assert_non_null(ores);
    assert_luna_ok(luna_offline_verify(&oin, ores));
    assert_true(ores->has_claims);

    luna_policy *p = NULL;
    luna_verifier *v = NULL;
    static const uint8_t nonce[LUNA_VERIFY_NONCE_LEN] = {9};
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_PRODUCTION, &p));
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_TPM, 0));
    assert_luna_ok(luna_policy_add_anchor(p, LUNA_EVIDENCE_TPM, root));
    assert_luna_ok(luna_policy_add_reference(p, "dep", LUNA_EVIDENCE_TPM,
                                             ores->claims.measurement,
                                             ores->claims.measurement_len));
    assert_luna_ok(luna_policy_add_signer(p, "dep", ores->claims.signer, ores->claims.signer_len));
    assert_luna_ok(luna_policy_set_freshness(p, true, 0, 60));
    assert_luna_ok(luna_policy_set_revocation_optional(p, LUNA_EVIDENCE_TPM));
    assert_luna_ok(luna_verifier_new(p, &v));
    assert_luna_ok(luna_verifier_set_collateral(v, LUNA_EVIDENCE_TPM, col.data, col.len,
                                                1630454400));
    luna_verify_input vin = {.type = LUNA_EVIDENCE_TPM, .evidence = ev.data,
                             .evidence_len = ev.len, .deployment_id = "dep", .nonce = nonce,
                             .now = 1630454400};
    luna_verify_result res;
    assert_luna_ok(luna_verifier_verify_unbound(v, &vin, &res));
    assert_int_equal(LUNA_VERIFY_OK, res.reason);
    assert_int_equal(LUNA_EVIDENCE_TPM, res.claims.type);
    assert_false(res.claims.revocation_checked);
    /* The full verifier still insists on key binding, which a foreign
       quote cannot give. */
    assert_luna_err(LUNA_ERR_VERIFY, luna_verifier_verify(v, &vin, &res));
    assert_int_equal(LUNA_VERIFY_KEY_NOT_BOUND, res.reason);

    luna_verifier_free(v);
    free(ores);
    OPENSSL_free(ider);
    X509_free(root);
    X509_free(inter);
    luna_wbuf_free(&ev);
    luna_wbuf_free(&col);
    free(attest);
    free(sig);
    free(pcrs);
    free(ak);
    free(rp);
    free(ip);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    /* Exits 77 (skipped) loudly when the vectors are absent. */
    free(luna_test_vector_path("evidence/README.md"));
    snprintf(workdir, sizeof workdir, "%s/luna-cli-offline-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(workdir) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    /* Only the folder mkdtemp made for this run. */
    if (strstr(workdir, "luna-cli-offline-") != NULL) {
        snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", workdir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_every_sample),
        cmocka_unit_test(t_flipped_signature_and_time),
        cmocka_unit_test(t_human_output_names_relaxations),
        cmocka_unit_test(t_policy_file),
        cmocka_unit_test(t_usage_errors),
        cmocka_unit_test(t_unrecognized_collateral),
        cmocka_unit_test(t_tpm_through_shared_verifier),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
