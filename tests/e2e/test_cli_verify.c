/*
 * test_cli_verify.c - the `lunal` command end to end against the stub
 * gateway: `attestation verify --deployment demo` prints every line of the
 * DESIGN.md section 7 shape with the simulated labels and exits 0;
 * `--json` parses and carries every DESIGN.md section 6 field; a
 * quarantined TEE exits 1 with the reason; `--all` and `--batch` show both
 * TEEs; `request` prints the verified result; usage errors exit 2; no
 * colour on a pipe; the API key comes from the environment.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "luna/bytes.h"
#include "luna/json.h"
#include "luna_test.h"
#include "sdk_fixture.h"
#include "sdk_stub_gateway.h"

static sdk_fx fx;
static stub_gw gw;
static char out[65536];

static int setup(void **state)
{
    (void)state;
    sdk_fx_init(&fx, FX_TCB_CURRENT);
    memset(&gw, 0, sizeof gw);
    stub_gw_start(&gw, &fx);
    sdk_fx_write_config(&fx, gw.url, gw.env.ca_crt);
    setenv("LUNAL_API_KEY", STUB_API_KEY, 1);
    setenv("LUNAL_CONFIG", fx.config, 1);
    unsetenv("NO_COLOR");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stub_gw_stop(&gw);
    sdk_fx_free(&fx);
    return 0;
}

/* Runs lunal with args (NULL-terminated); stdout+stderr into out; exit status. */
static int run_bin(const char *bin, const char *const *args);
static int lunal(const char *const *args)
{
    return run_bin(LUNAL_BIN, args);
}

static int run_bin(const char *bin, const char *const *args)
{
    char *argv[32];
    int p[2], st = 0;
    size_t n = 0, i = 0;
    pid_t pid;

    argv[i++] = (char *)bin;
    for (; args[i - 1] != NULL && i < 31; i++)
        argv[i] = (char *)args[i - 1];
    argv[i] = NULL;
    assert_int_equal(0, pipe(p));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(bin, argv);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        ssize_t got;
        if (poll(&pf, 1, 60000) <= 0)
            break;
        got = read(p[0], out + n, sizeof out - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    out[n] = 0;
    close(p[0]);
    assert_int_equal(pid, waitpid(pid, &st, 0));
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void has(const char *s)
{
    if (strstr(out, s) == NULL) {
        fprintf(stderr, "output lacks \"%s\":\n%s\n", s, out);
        fail();
    }
}

static void test_verify_human(void **state)
{
    const char *a[] = {"attestation", "verify", "--deployment", "demo", NULL};
    const char *lines[] = {
        "✅ Attestation verification complete for deployment: demo\n",
        "\nDeployment ID: demo\n", "\nBuild Hash: sha256:", "\nVerification Time: ",
        "\nTEE Measurements:\n", "\nMR_ENCLAVE: ", "\nMR_SIGNER: ",
        "\nDeveloper Signature: VALID ✓\n", "\nDeveloper: dev_demo\n", "\nKey Fingerprint: ",
        "\nPlatform Verification: SIMULATED (development only) ✓\n",
        "\nTCB Status: Up to date\n", "\nQE Identity: Valid\n",
        "\nMemory Encryption: Not available (simulated TEE, development only)\n",
        "\nSecure Boot: Not available (simulated)\n",
        "\nThe deployment is running in a SIMULATED TEE for development only"};
    (void)state;

    if (lunal(a) != 0) {
        fprintf(stderr, "%s\n", out);
        fail();
    }
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        has(lines[i]);
    assert_null(strstr(out, "genuine TEE"));
    assert_null(strstr(out, "\033[")); /* no colour on a pipe */
}

static void test_verify_json(void **state)
{
    const char *a[] = {"--json", "attestation", "verify", "--deployment", "demo", NULL};
    const char *fields[] = {"attestation.id", "attestation.timestamp",
                            "attestation.deployment_id", "attestation.build_hash",
                            "attestation.measurements.mr_enclave",
                            "attestation.measurements.mr_signer",
                            "attestation.signature_verification.developer_id",
                            "attestation.signature_verification.key_id",
                            "attestation.platform_verification.tcb_status",
                            "attestation.platform_verification.qe_identity_status"};
    json_t *root;
    bool b = false;
    const char *s;
    (void)state;

    assert_int_equal(0, lunal(a));
    root = json_loads(out, 0, NULL);
    assert_non_null(root);
    assert_luna_ok(luna_json_get_string(root, "status", &s, NULL));
    assert_string_equal("verified", s);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        assert_luna_ok(luna_json_get_string(root, fields[i], &s, NULL));
    assert_luna_ok(luna_json_get_bool(root, "attestation.signature_verification.signature_valid", &b));
    assert_true(b);
    assert_luna_ok(luna_json_get_bool(root, "client_verification.verified", &b));
    assert_true(b);
    json_decref(root);
}

static void test_quarantined_tee(void **state)
{
    const char *a[] = {"attestation", "verify", "--deployment", "demo", "--tee", "tee-2", NULL};
    (void)state;

    assert_int_equal(1, lunal(a));
    has("❌ Attestation verification FAILED for deployment: demo");
    has("Reason: TEE registry status: quarantined");
}

static void test_all_and_batch(void **state)
{
    const char *all[] = {"attestation", "verify", "--all", NULL};
    char batch[400];
    const char *b[] = {"attestation", "verify", "--batch", batch, NULL};
    FILE *f;
    (void)state;

    assert_int_equal(1, lunal(all)); /* tee-2 is quarantined */
    has("tee-1");
    has("tee-2");
    has("verified");
    has("FAILED");
    has("1 of 2 verified");
    snprintf(batch, sizeof batch, "%s/batch.txt", fx.dir);
    f = fopen(batch, "w");
    assert_non_null(f);
    fputs("# both TEEs of demo\ndemo tee-1\ndemo\n", f);
    fclose(f);
    assert_int_equal(0, lunal(b));
    has("2 of 2 verified");
}

static void test_request(void **state)
{
    char data[400], arg[410];
    const char *a[] = {"request", "--job", "upper", "--data", arg, NULL};
    FILE *f;
    (void)state;

    snprintf(data, sizeof data, "%s/in.txt", fx.dir);
    snprintf(arg, sizeof arg, "@%s", data);
    f = fopen(data, "w");
    assert_non_null(f);
    fputs("confidential words", f);
    fclose(f);
    assert_int_equal(0, lunal(a));
    has("CONFIDENTIAL WORDS");
    has("verified result of upper from TEE");
}

static void test_usage_errors(void **state)
{
    const char *none[] = {NULL};
    const char *bogus[] = {"bogus", NULL};
    const char *noarg[] = {"attestation", "verify", NULL};
    const char *two[] = {"attestation", "verify", "--deployment", "demo", "--all", NULL};
    const char *badid[] = {"attestation", "verify", "--deployment", "no/such", NULL};
    const char *req[] = {"request", "--job", "upper", NULL};
    const char *data[] = {"data", "put", NULL};
    const char *help[] = {"attestation", "verify", "--help", NULL};
    const char *ghelp[] = {"--help", NULL};
    const char *khelp[] = {"keys", "--help", NULL};
    (void)state;

    assert_int_equal(2, lunal(none));
    assert_int_equal(2, lunal(bogus));
    assert_int_equal(2, lunal(noarg));
    assert_int_equal(2, lunal(two));
    assert_int_equal(2, lunal(badid));
    assert_int_equal(2, lunal(req));
    assert_int_equal(2, lunal(data));
    has("not available");
    assert_int_equal(0, lunal(help));
    has("usage: lunal attestation verify");
    assert_int_equal(0, lunal(ghelp));
    assert_int_equal(0, lunal(khelp));
}

/* `deployment sign`: offline, the seed file must be private, the output
   verifies under the developer's key. */
static void test_deployment_sign(void **state)
{
    char spec[400], key[400], outp[400], enc[65], bh[65], buf[9000];
    const char *a[] = {"deployment", "sign", "--spec", spec, "--key", key, "--out", outp, NULL};
    luna_manifest m;
    FILE *f;
    size_t n;
    (void)state;

    snprintf(spec, sizeof spec, "%s/spec.json", fx.dir);
    snprintf(key, sizeof key, "%s/dev.seed", fx.dir);
    snprintf(outp, sizeof outp, "%s/signed.manifest", fx.dir);
    assert_luna_ok(luna_hex_encode(fx.m.mr_enclave, 32, enc, sizeof enc));
    assert_luna_ok(luna_hex_encode(fx.m.build_hash, 32, bh, sizeof bh));
    f = fopen(spec, "w");
    assert_non_null(f);
    fprintf(f, "{\"name\":\"demo\",\"version\":\"2.0\",\"jobs\":[\"upper\"],"
               "\"build_hash\":\"sha256:%s\",\"mr_enclave\":\"%s\",\"developer_id\":\"dev_demo\"}",
            bh, enc);
    fclose(f);
    f = fopen(key, "wb");
    assert_non_null(f);
    assert_int_equal(32, fwrite(fx.dev_seed, 1, 32, f));
    fclose(f);
    assert_int_equal(0, chmod(key, 0644));
    assert_int_equal(2, lunal(a));
    has("chmod 600");
    assert_int_equal(0, chmod(key, 0600));
    assert_int_equal(0, lunal(a));
    has(fx.m.key_id);
    f = fopen(outp, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && buf[n - 1] == '\n')
        n--;
    assert_luna_ok(luna_manifest_verify(buf, n, "dev_demo", fx.dev_pk, &m));
    assert_string_equal("2.0", m.version);
    assert_memory_equal(fx.m.mr_enclave, m.mr_enclave, 32);
}

/* The C example of DESIGN.md section 1, on the shared library. */
static void test_example(void **state)
{
    const char *a[] = {"upper", "two steps", NULL};
    (void)state;

    assert_int_equal(0, run_bin(LUNAL_EXAMPLE_BIN, a));
    has("TWO STEPS");
    has("(verified: TEE tee-");
}

/* An unreachable gateway is a connection error: 2, never 0 or 1. */
static void test_connection_error(void **state)
{
    const char *a[] = {"attestation", "verify", "--deployment", "demo", NULL};
    (void)state;

    setenv("LUNAL_GATEWAY_URL", "https://127.0.0.1:1", 1);
    assert_int_equal(2, lunal(a));
    unsetenv("LUNAL_GATEWAY_URL");
    setenv("LUNAL_API_KEY", "lk_bad", 1);
    assert_int_equal(2, lunal(a));
    assert_null(strstr(out, "lk_bad"));
    setenv("LUNAL_API_KEY", STUB_API_KEY, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_human),
        cmocka_unit_test(test_verify_json),
        cmocka_unit_test(test_quarantined_tee),
        cmocka_unit_test(test_all_and_batch),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_deployment_sign),
        cmocka_unit_test(test_connection_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
