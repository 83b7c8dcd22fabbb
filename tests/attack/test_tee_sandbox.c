/*
 * test_tee_sandbox.c - attacks on the TEE job sandbox (tee/sandbox.c) with
 * the real bundles: the test-only bundle's jobs try to open a socket,
 * write and delete files, exec, spin, sleep, allocate and flood; each must
 * be stopped with the right outcome and no effect on the file system.  The
 * demo bundle's three jobs are checked for exact outputs.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "luna/crypto.h"
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
#include "sandbox.h"

static const luna_tee_bundle_def *demo, *testb;

static const luna_tee_bundle_def *load_bundle(const char *name)
{
    const char *bin = getenv("LUNA_BINARY_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tee/%s", bin != NULL ? bin : ".", name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return NULL;
    }
    void *sym = dlsym(h, LUNA_TEE_BUNDLE_SYMBOL);
    luna_tee_bundle_fn fn = NULL;
    if (sym == NULL)
        return NULL;
    memcpy(&fn, &sym, sizeof(fn)); /* POSIX: dlsym returns code addresses as void * */
    return fn();
}

static luna_tee_job_fn find(const luna_tee_bundle_def *b, const char *name)
{
    for (size_t i = 0; i < b->n_jobs; i++)
        if (strcmp(b->jobs[i].name, name) == 0)
            return b->jobs[i].run;
    fail_msg("no job %s", name);
    return NULL;
}

static luna_tee_limits limits(void)
{
    luna_tee_limits l = {.cpu_seconds = 5, .wall_ms = 10000, .mem_bytes = 64u << 20,
                         .result_max = 64u << 10, .scratch_bytes = 1u << 20};
    return l;
}

static luna_tee_job_result run(const luna_tee_bundle_def *b, const char *job, const char *in,
                               const luna_tee_limits *l)
{
    luna_tee_job_result r;
    luna_secret *s = NULL;
    size_t n = strlen(in);
    assert_luna_ok(luna_secret_from(in, n > 0 ? n : 1, &s));
    assert_luna_ok(luna_tee_sandbox_run(find(b, job), luna_secret_cdata(s), n, l, &r, NULL, NULL));
    luna_secret_free(s);
    return r;
}

static void expect_output(luna_tee_job_result *r, const char *want)
{
    assert_int_equal(LUNA_TEE_JOB_OK, r->outcome);
    assert_int_equal(strlen(want), r->len);
    assert_memory_equal(want, luna_secret_cdata(r->data), r->len);
    luna_tee_job_result_clear(r);
}

static void test_demo_jobs(void **state)
{
    luna_tee_limits l = limits();
    luna_tee_job_result r = run(demo, "wordstats", "hello world\nfoo  b\xc3\xa4r\n", &l);
    expect_output(&r, "{\"bytes\":22,\"chars\":21,\"lines\":2,\"words\":4,\"longest_word\":5}");
    r = run(demo, "sha256", "abc", &l);
    expect_output(&r, "{\"bytes\":3,\"sha256\":"
                      "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}");
    r = run(demo, "redact",
            "{\"fields\":[\"ssn\",\"card\"],\"data\":{\"name\":\"Ada\",\"ssn\":\"123-45\","
            "\"items\":[{\"card\":{\"n\":4111},\"qty\":2}]}}",
            &l);
    expect_output(&r, "{\"name\":\"Ada\",\"ssn\":\"[REDACTED]\",\"items\":[{\"card\":"
                      "\"[REDACTED]\",\"qty\":2}]}");
    r = run(demo, "redact", "{\"fields\":[1],\"data\":{}}", &l);
    assert_int_equal(LUNA_TEE_JOB_FAILED, r.outcome);
    assert_null(r.data);
    r = run(demo, "redact", "not json", &l);
    assert_int_equal(LUNA_TEE_JOB_FAILED, r.outcome);
}

static void test_no_socket(void **state)
{
    luna_tee_limits l = limits();
    luna_tee_job_result r = run(testb, "t_socket", "", &l);
    assert_int_equal(LUNA_TEE_JOB_SYSCALL, r.outcome);
    assert_int_equal(SIGSYS, r.signal);
    assert_null(r.data);
}

static void test_no_file_write(void **state)
{
    char path[128];
    snprintf(path, sizeof(path), "/tmp/lunal-tee-escape-%d", (int)getpid());
    unlink(path);
    luna_tee_limits l = limits();
    luna_tee_job_result r = run(testb, "t_write", path, &l);
    assert_int_equal(LUNA_TEE_JOB_SYSCALL, r.outcome);
    struct stat st;
    assert_int_not_equal(0, stat(path, &st)); /* nothing was created */

    /* A file that exists cannot be deleted either. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("keep", f);
    fclose(f);
    chmod(path, 0666);
    r = run(testb, "t_unlink", path, &l);
    assert_int_equal(LUNA_TEE_JOB_SYSCALL, r.outcome);
    assert_int_equal(0, stat(path, &st));
    assert_int_equal(4, st.st_size);
    unlink(path);
}

static void test_no_exec(void **state)
{
    luna_tee_limits l = limits();
    luna_tee_job_result r = run(testb, "t_exec", "", &l);
    assert_int_equal(LUNA_TEE_JOB_SYSCALL, r.outcome);
}

static double elapsed(struct timespec a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static void test_cpu_limit(void **state)
{
    luna_tee_limits l = limits();
    l.cpu_seconds = 1;
    l.wall_ms = 20000;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    luna_tee_job_result r = run(testb, "t_spin", "", &l);
    assert_int_equal(LUNA_TEE_JOB_CPU, r.outcome);
    assert_true(elapsed(t0) < 10.0);
}

static void test_wall_limit(void **state)
{
    luna_tee_limits l = limits();
    l.wall_ms = 500;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    luna_tee_job_result r = run(testb, "t_sleep", "", &l);
    assert_int_equal(LUNA_TEE_JOB_TIMEOUT, r.outcome);
    double t = elapsed(t0);
    assert_true(t >= 0.45 && t < 3.0);
}

static void test_memory_limit(void **state)
{
    luna_tee_limits l = limits();
    l.mem_bytes = 128u << 20;
    luna_tee_job_result r = run(testb, "t_alloc", "", &l);
    /* The job is told no (and says so), or dies: it never gets 4 GiB. */
    if (r.outcome == LUNA_TEE_JOB_OK) {
        assert_true(r.len >= 13);
        assert_memory_equal("alloc-refused", luna_secret_cdata(r.data), 13);
    } else {
        assert_int_not_equal(LUNA_TEE_JOB_FAILED, r.outcome);
    }
    luna_tee_job_result_clear(&r);
}

static void test_result_cap(void **state)
{
    luna_tee_limits l = limits();
    l.result_max = 4096;
    luna_tee_job_result r = run(testb, "t_flood", "", &l);
    assert_int_equal(LUNA_TEE_JOB_TOO_LARGE, r.outcome);
    assert_null(r.data);
    r = run(testb, "t_echo", "12345", &l);
    expect_output(&r, "12345");
    r = run(testb, "t_fail", "", &l);
    assert_int_equal(LUNA_TEE_JOB_FAILED, r.outcome);
    assert_int_equal(7, r.exit_code);
}

/* A job of this test binary that copies what it sees of the key out. */
static const uint8_t *key_seen;
static int job_read_key(luna_tee_job_io *io)
{
    memcpy(io->out, key_seen, 32);
    io->out_len = 32;
    return 0;
}

static void test_keys_wiped_in_child(void **state)
{
    uint8_t key[32];
    memset(key, 0xa5, sizeof(key));
    luna_secret *s = NULL;
    assert_luna_ok(luna_secret_from(key, sizeof(key), &s));
    assert_luna_ok(luna_tee_wipe_on_fork(s));
    key_seen = luna_secret_cdata(s);
    luna_tee_limits l = limits();
    luna_tee_job_result r;
    assert_luna_ok(luna_tee_sandbox_run(job_read_key, NULL, 0, &l, &r, NULL, NULL));
    assert_int_equal(LUNA_TEE_JOB_OK, r.outcome);
    uint8_t zero[32] = {0};
    assert_memory_equal(zero, luna_secret_cdata(r.data), 32);
    assert_memory_equal(key, luna_secret_cdata(s), 32); /* the parent keeps it */
    luna_tee_job_result_clear(&r);
    luna_secret_free(s);
}

/* OpenSSL's secure heap (where the runtime's TLS private key lives) reads
   as zeros in a job child too. */
static void test_secure_heap_wiped_in_child(void **state)
{
    assert_luna_ok(luna_tee_secure_heap_init(64u * 1024u));
    assert_luna_err(LUNA_ERR_CRYPTO, luna_tee_secure_heap_init(64u * 1024u)); /* once */
    uint8_t *p = OPENSSL_secure_malloc(32);
    assert_non_null(p);
    assert_true(CRYPTO_secure_allocated(p));
    memset(p, 0xa5, 32);
    key_seen = p;
    luna_tee_limits l = limits();
    luna_tee_job_result r;
    assert_luna_ok(luna_tee_sandbox_run(job_read_key, NULL, 0, &l, &r, NULL, NULL));
    assert_int_equal(LUNA_TEE_JOB_OK, r.outcome);
    uint8_t zero[32] = {0};
    assert_memory_equal(zero, luna_secret_cdata(r.data), 32);
    assert_int_equal(0xa5, p[31]); /* the parent keeps it */
    luna_tee_job_result_clear(&r);
    OPENSSL_secure_clear_free(p, 32);
}

/* ---- memory scan: the plaintext exists during the job, nowhere after ----
 * The scanner holds the marker only XOR-masked, so scanning this very
 * process never finds the scanner's own copy. */
#define MARK_LEN 32
static uint8_t mark_masked[MARK_LEN], mark_mask[MARK_LEN];

static size_t scan_pid(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(path, "r");
    if (maps == NULL)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    FILE *mem = fopen(path, "rb");
    assert_non_null(mem);
    setvbuf(mem, NULL, _IONBF, 0);
    size_t hits = 0;
    static uint8_t buf[1 << 20];
    char line[512];
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r')
            continue;
        if (strstr(line, "[vvar]") != NULL || strstr(line, "[vsyscall]") != NULL)
            continue;
        /* AddressSanitizer's shadow (x86-64 layout: 0x7fff8000 up to
           0x10007fff8000, mapped from the page below) holds only shadow
           bytes, never data, and is terabytes of reservation: reading it
           would outlast the job. */
        if (SCAN_ASAN && lo >= 0x7fff0000ul && hi <= 0x10007fff8000ul)
            continue;
        for (unsigned long at = lo; at < hi; at += sizeof(buf) - MARK_LEN) {
            size_t want = hi - at < sizeof(buf) ? hi - at : sizeof(buf);
            ssize_t n = pread(fileno(mem), buf, want, (off_t)at);
            if (n <= 0) {
                break;
            }
            for (ssize_t i = 0; i + MARK_LEN <= n; i++) {
                size_t k = 0;
                while (k < MARK_LEN && (uint8_t)(buf[i + (ssize_t)k] ^ mark_mask[k]) == mark_masked[k])
                    k++;
                if (k == MARK_LEN)
                    hits++;
            }
            if ((size_t)n < want || hi - at <= sizeof(buf))
                break;
        }
    }
    memset(buf, 0, sizeof(buf));
    fclose(mem);
    fclose(maps);
    return hits;
}

static size_t hits_parent_during, hits_child_during;
static void scan_during(pid_t child, void *arg)
{
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL); /* the hold job keeps the input for 6 s */
    hits_child_during = scan_pid(child);
    hits_parent_during = scan_pid(getpid());
}

static void test_memory_scan(void **state)
{
    for (size_t i = 0; i < MARK_LEN; i++) {
        uint8_t r[2];
        assert_luna_ok(luna_random(r, 2));
        mark_mask[i] = r[0];
        mark_masked[i] = (uint8_t)(('A' + r[1] % 26) ^ r[0]);
    }
    assert_int_equal(0, scan_pid(getpid()));
    luna_secret *in = NULL;
    assert_luna_ok(luna_secret_new(MARK_LEN, &in));
    for (size_t i = 0; i < MARK_LEN; i++)
        luna_secret_data(in)[i] = mark_masked[i] ^ mark_mask[i];
    luna_tee_limits l = limits();
    luna_tee_job_result r;
    assert_luna_ok(luna_tee_sandbox_run(find(testb, "t_hold"), luna_secret_cdata(in), MARK_LEN,
                                        &l, &r, scan_during, NULL));
    assert_int_equal(LUNA_TEE_JOB_OK, r.outcome);
    assert_int_equal(MARK_LEN, r.len);
    /* During: the child has the input (and its scratch copy); so do we. */
    assert_true(hits_child_during >= 2);
    assert_true(hits_parent_during >= 1);
    luna_tee_job_result_clear(&r);
    luna_secret_free(in);
    /* After: nowhere in this process, and the child is gone. */
    assert_int_equal(0, scan_pid(getpid()));
}

static void test_bad_limits(void **state)
{
    luna_tee_limits l = limits();
    luna_tee_job_result r;
    l.result_max = LUNA_TEE_RESULT_MAX_CAP + 1;
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_tee_sandbox_run(job_read_key, NULL, 0, &l, &r, NULL, NULL));
    l = limits();
    l.cpu_seconds = 0;
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_tee_sandbox_run(job_read_key, NULL, 0, &l, &r, NULL, NULL));
}

int main(void)
{
    /* The child drops to nobody and is not dumpable; scanning its memory
       and dropping privileges need root. */
    if (geteuid() != 0) {
        fprintf(stderr, "attack.tee_sandbox needs root: skipped\n");
        return LUNA_TEST_SKIP;
    }
    demo = load_bundle("liblunal-demo-jobs.so");
    testb = load_bundle("liblunal-test-jobs.so");
    if (demo == NULL || testb == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_jobs),     cmocka_unit_test(test_no_socket),
        cmocka_unit_test(test_no_file_write), cmocka_unit_test(test_no_exec),
        cmocka_unit_test(test_cpu_limit),     cmocka_unit_test(test_wall_limit),
        cmocka_unit_test(test_memory_limit),  cmocka_unit_test(test_result_cap),
        cmocka_unit_test(test_keys_wiped_in_child),
        cmocka_unit_test(test_secure_heap_wiped_in_child), cmocka_unit_test(test_memory_scan),
        cmocka_unit_test(test_bad_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
