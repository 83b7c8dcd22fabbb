/*
 * test_sdk_verify.c - the SDK verifies an attestation report itself and
 * the CLI prints it in the DESIGN.md section 7 shape: a genuine sim TEE
 * gives every line with the simulated labels and exit 0; changing one
 * field of the service's report (measurement, signer, signature, TCB
 * status, registry status) changes the matching line and gives exit 1;
 * a TEE whose own evidence is out of date, an unpinned or wrongly pinned
 * developer, or a production client facing sim evidence all fail with
 * the reason in words.  Also the client config and key file rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "luna/bytes.h"
#include "luna_test.h"
#include "sdk_fixture.h"
#include "sdk_internal.h"

static sdk_fx fx;

static int setup(void **state)
{
    (void)state;
    sdk_fx_init(&fx, FX_TCB_CURRENT);
    sdk_fx_write_config(&fx, "https://127.0.0.1:1", NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sdk_fx_free(&fx);
    return 0;
}

static luna_client *client(void)
{
    luna_client_opts o = {.config_file = fx.config};
    luna_client *c = NULL;
    char why[LUNAL_REASON_MAX];
    luna_err err = luna_client_create(&o, &c, why);

    if (err != LUNA_OK)
        fprintf(stderr, "client: %s\n", why);
    assert_luna_ok(err);
    return c;
}

/* Evaluates answer, prints it; returns the exit status and the text. */
static int run(luna_client *c, const json_t *answer, luna_attestation_report *r, char **text)
{
    size_t len = 0;
    FILE *f = open_memstream(text, &len);
    int rc;

    assert_non_null(f);
    assert_luna_ok(sdk_attestation_evaluate(c, "demo", answer, 0, r));
    rc = cli_print_report(f, r, false);
    fclose(f);
    return rc;
}

static const char *line_of(const char *text, const char *prefix)
{
    const char *p = text;
    size_t n = strlen(prefix);

    while (p != NULL && *p) {
        if (strncmp(p, prefix, n) == 0)
            return p;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return NULL;
}

static void assert_line(const char *text, const char *want)
{
    if (line_of(text, want) == NULL) {
        fprintf(stderr, "missing line starting \"%s\" in:\n%s", want, text);
        fail();
    }
}

static void test_genuine_sim_report(void **state)
{
    luna_client *c = client();
    json_t *a = sdk_fx_answer(&fx);
    luna_attestation_report r;
    char *text = NULL, enc[65], want[160];
    (void)state;

    if (run(c, a, &r, &text) != CLI_OK) {
        fprintf(stderr, "%s", text);
        fail();
    }
    assert_true(r.verified);
    assert_luna_ok(luna_hex_encode(fx.m.mr_enclave, 32, enc, sizeof enc));
    /* Every line of the DESIGN.md sample shape, in order, simulated labels. */
    assert_true(strncmp(text, "✅ Attestation verification complete for deployment: demo\n",
                        strlen("✅ Attestation verification complete for deployment: demo\n")) == 0);
    assert_line(text, "Deployment ID: demo\n");
    assert_line(text, "Build Hash: sha256:");
    assert_line(text, "Verification Time: ");
    assert_line(text, "TEE Measurements:\n");
    snprintf(want, sizeof want, "MR_ENCLAVE: %s\n", enc);
    assert_line(text, want);
    assert_line(text, "MR_SIGNER: ");
    assert_line(text, "Developer Signature: VALID ✓\n");
    assert_line(text, "Developer: dev_demo\n");
    snprintf(want, sizeof want, "Key Fingerprint: %s\n", fx.m.key_id);
    assert_line(text, want);
    assert_line(text, "Platform Verification: SIMULATED (development only) ✓\n");
    assert_line(text, "TCB Status: Up to date\n");
    assert_line(text, "QE Identity: Valid\n");
    assert_line(text, "Memory Encryption: Not available (simulated TEE, development only)\n");
    assert_line(text, "Secure Boot: Not available (simulated)\n");
    assert_line(text, "The deployment is running in a SIMULATED TEE for development only");
    /* Never the hardware wording for a sim TEE. */
    assert_null(strstr(text, "genuine TEE"));
    assert_null(strstr(text, "Memory Encryption: Active"));
    assert_null(strstr(text, "Secure Boot: Verified"));
    free(text);
    json_decref(a);
    luna_client_free(c);
}

/* One field of the service's report changed: its line changes, exit 1. */
static void mutate(const char *path, json_t *value, const char *line, const char *reason_part)
{
    luna_client *c = client();
    json_t *a = sdk_fx_answer(&fx), *obj = json_object_get(a, "attestation");
    char key[64], *dot, *p = key;
    luna_attestation_report r;
    char *text = NULL;

    snprintf(key, sizeof key, "%s", path);
    while ((dot = strchr(p, '.')) != NULL) {
        *dot = 0;
        obj = json_object_get(obj, p);
        p = dot + 1;
    }
    assert_non_null(obj);
    assert_int_equal(0, json_object_set_new(obj, p, value));
    assert_int_equal(CLI_FAILED, run(c, a, &r, &text));
    assert_false(r.verified);
    assert_line(text, "❌ Attestation verification FAILED for deployment: demo");
    assert_line(text, line);
    if (strstr(r.reason, reason_part) == NULL) {
        fprintf(stderr, "reason \"%s\" lacks \"%s\"\n", r.reason, reason_part);
        fail();
    }
    assert_line(text, "Reason: ");
    assert_null(strstr(text, "genuine TEE"));
    free(text);
    json_decref(a);
    luna_client_free(c);
}

static void test_changed_measurement(void **state)
{
    char enc[65], line[100];
    (void)state;
    assert_luna_ok(luna_hex_encode(fx.m.mr_enclave, 32, enc, sizeof enc));
    enc[0] = enc[0] == '0' ? '1' : '0';
    snprintf(line, sizeof line, "MR_ENCLAVE: %s ✗", enc);
    mutate("measurements.mr_enclave", json_string(enc), line, "MR_ENCLAVE");
}

static void test_changed_signer(void **state)
{
    char sig[65], line[100];
    (void)state;
    assert_luna_ok(luna_hex_encode(fx.m.mr_signer, 32, sig, sizeof sig));
    sig[5] = sig[5] == 'a' ? 'b' : 'a';
    snprintf(line, sizeof line, "MR_SIGNER: %s ✗", sig);
    mutate("measurements.mr_signer", json_string(sig), line, "MR_SIGNER");
}

static void test_changed_signature(void **state)
{
    (void)state;
    mutate("signature_verification.signature_valid", json_false(), "Developer Signature: INVALID ✗",
           "Developer Signature");
}

static void test_changed_tcb(void **state)
{
    (void)state;
    mutate("platform_verification.tcb_status", json_string("out_of_date"),
           "TCB Status: Out of date ✗", "TCB Status");
}

static void test_quarantined(void **state)
{
    (void)state;
    mutate("registry_status", json_string("quarantined"), "Deployment ID: demo ✗",
           "TEE registry status: quarantined");
}

static void test_changed_key_id(void **state)
{
    (void)state;
    mutate("signature_verification.key_id",
           json_string("00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"),
           "Key Fingerprint: 00:11:22", "Key Fingerprint");
}

/* The TEE's own evidence is out of date: refused by the client's verifier. */
static void test_out_of_date_evidence(void **state)
{
    luna_client *c = client();
    json_t *a;
    luna_attestation_report r;
    char *text = NULL;
    (void)state;

    sdk_fx_sign_evidence(&fx, FX_TCB_CURRENT - 1, NULL);
    a = sdk_fx_answer(&fx);
    /* Even a lying service that calls it verified and up to date. */
    assert_int_equal(CLI_FAILED, run(c, a, &r, &text));
    assert_non_null(strstr(r.reason, "TCB Status: Out of date"));
    assert_line(text, "TCB Status: Out of date ✗");
    assert_line(text, "Platform Verification: FAILED ✗");
    free(text);
    json_decref(a);
    sdk_fx_sign_evidence(&fx, FX_TCB_CURRENT, NULL);
    luna_client_free(c);
}

/* A rogue build: measured code is not the developer-signed one. */
static void test_rogue_measurement(void **state)
{
    luna_client *c = client();
    uint8_t rogue[32];
    json_t *a;
    luna_attestation_report r;
    char *text = NULL;
    (void)state;

    memcpy(rogue, fx.m.mr_enclave, 32);
    rogue[0] ^= 1;
    sdk_fx_sign_evidence(&fx, FX_TCB_CURRENT, rogue);
    a = sdk_fx_answer(&fx); /* the service still claims the manifest's value */
    assert_int_equal(CLI_FAILED, run(c, a, &r, &text));
    assert_int_equal(LUNA_CHECK_FAIL, r.check_measurement);
    assert_non_null(strstr(r.reason, "MR_ENCLAVE"));
    free(text);
    json_decref(a);
    sdk_fx_sign_evidence(&fx, FX_TCB_CURRENT, NULL);
    luna_client_free(c);
}

/* Production client (no development mode): sim evidence is refused. */
static void test_production_refuses_sim(void **state)
{
    char hex[65];
    luna_pinned_developer pin = {"demo", "dev_demo", hex};
    luna_client_opts o = {.tenant_id = "acme", .gateway_url = "https://127.0.0.1:1",
                          .developers = &pin, .n_developers = 1};
    luna_client *c = NULL;
    json_t *a = sdk_fx_answer(&fx);
    luna_attestation_report r;
    char *text = NULL;
    (void)state;

    unsetenv("LUNAL_DEV");
    assert_luna_ok(luna_hex_encode(fx.dev_pk, 32, hex, sizeof hex));
    json_object_set_new(a, "manifest", json_string(fx.manifest));
    assert_luna_ok(luna_client_create(&o, &c, NULL));
    assert_int_equal(CLI_FAILED, run(c, a, &r, &text));
    assert_non_null(strstr(r.reason, "SIMULATED"));
    free(text);
    json_decref(a);
    luna_client_free(c);
}

/* A manifest not signed by the pinned developer key. */
static void test_wrong_pinned_key(void **state)
{
    uint8_t seed[32], pk[32];
    char hex[65];
    luna_pinned_developer pin = {"demo", "dev_demo", hex};
    luna_client_opts o = {.tenant_id = "acme", .gateway_url = "https://127.0.0.1:1",
                          .developers = &pin, .n_developers = 1, .development = true,
                          .sim_root_file = fx.root_pem, .sim_tcb_file = fx.tcb_file};
    luna_client *c = NULL;
    json_t *a = sdk_fx_answer(&fx);
    luna_attestation_report r;
    char *text = NULL;
    (void)state;

    assert_luna_ok(luna_ed25519_keygen(seed, pk));
    assert_luna_ok(luna_hex_encode(pk, 32, hex, sizeof hex));
    json_object_set_new(a, "manifest", json_string(fx.manifest));
    assert_luna_ok(luna_client_create(&o, &c, NULL));
    assert_int_equal(CLI_FAILED, run(c, a, &r, &text));
    assert_line(text, "Developer Signature: INVALID ✗");
    assert_non_null(strstr(r.reason, "pinned developer key"));
    free(text);
    json_decref(a);
    luna_client_free(c);
}

/* No pinned key for the deployment: nothing can verify. */
static void test_unpinned_deployment(void **state)
{
    luna_client_opts o = {.tenant_id = "acme", .gateway_url = "https://127.0.0.1:1",
                          .development = true, .sim_root_file = fx.root_pem};
    luna_client *c = NULL;
    json_t *a = sdk_fx_answer(&fx);
    luna_attestation_report r;
    char *text = NULL;
    (void)state;

    assert_luna_ok(luna_client_create(&o, &c, NULL));
    assert_int_equal(CLI_FAILED, run(c, a, &r, &text));
    assert_non_null(strstr(r.reason, "no developer key is pinned"));
    free(text);
    json_decref(a);
    luna_client_free(c);
}

/* A report without the section-6 shape is malformed, not "refused". */
static void test_missing_field(void **state)
{
    luna_client *c = client();
    json_t *a = sdk_fx_answer(&fx);
    luna_attestation_report r;
    (void)state;

    json_object_del(json_object_get(a, "attestation"), "build_hash");
    assert_luna_err(LUNA_ERR_FORMAT, sdk_attestation_evaluate(c, "demo", a, 0, &r));
    json_decref(a);
    luna_client_free(c);
}

static void test_config_rules(void **state)
{
    char path[400], why[LUNAL_REASON_MAX], pkhex[65];
    uint8_t raw[32];
    luna_client_opts o = {.tenant_id = "acme", .gateway_url = "https://127.0.0.1:1"};
    luna_client *c = NULL;
    FILE *f;
    (void)state;

    /* http:// is refused, never downgraded. */
    o.gateway_url = "http://127.0.0.1:1";
    assert_luna_err(LUNA_ERR_CONFIG, luna_client_create(&o, &c, why));
    assert_null(c);
    o.gateway_url = "https://127.0.0.1:1";
    /* No tenant anywhere. */
    o.tenant_id = NULL;
    unsetenv("LUNAL_TENANT");
    unsetenv("LUNAL_CONFIG");
    assert_luna_err(LUNA_ERR_CONFIG, luna_client_create(&o, &c, why));
    o.tenant_id = "acme";
    /* A raw 32-byte key file: refused while group-readable, then used. */
    snprintf(path, sizeof path, "%s/client.key", fx.dir);
    assert_luna_ok(luna_random(raw, sizeof raw));
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(32, fwrite(raw, 1, 32, f));
    fclose(f);
    assert_int_equal(0, chmod(path, 0644));
    o.client_key_file = path;
    assert_luna_err(LUNA_ERR_PERMISSION, luna_client_create(&o, &c, why));
    assert_non_null(strstr(why, "chmod 600"));
    assert_int_equal(0, chmod(path, 0600));
    assert_luna_ok(luna_client_create(&o, &c, why));
    luna_client_public_key(c, pkhex);
    {
        uint8_t pk[32];
        char want[65];
        assert_luna_ok(luna_x25519_public(raw, pk));
        assert_luna_ok(luna_hex_encode(pk, 32, want, sizeof want));
        assert_string_equal(want, pkhex);
    }
    luna_client_free(c);
    c = NULL;
    /* A file of another length that is not PEM is refused. */
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(31, fwrite(raw, 1, 31, f));
    fclose(f);
    assert_luna_err(LUNA_ERR_CONFIG, luna_client_create(&o, &c, why));
    /* IAM's lunal-client-key file: used; another tenant's or a key whose
       public half does not match is refused. */
    {
        uint8_t pk[32];
        char skb[LUNA_B64URL_ENC_LEN(32)], pkb[LUNA_B64URL_ENC_LEN(32)], want[65], text[512];
        assert_luna_ok(luna_x25519_public(raw, pk));
        assert_luna_ok(luna_b64url_encode(raw, 32, skb, sizeof skb));
        assert_luna_ok(luna_b64url_encode(pk, 32, pkb, sizeof pkb));
        static const char fmt[] =
            "{\"type\":\"lunal-client-key\",\"version\":1,\"tenant_id\":\"%s\","
            "\"principal_id\":\"app1\",\"key_id\":\"ck_0123456789abcdef\","
            "\"public_key\":\"%s\",\"private_key\":\"%s\"}\n";
        const char *cases[][2] = {{"acme", pkb}, {"other", pkb}, {"acme", skb}};
        for (size_t i = 0; i < 3; i++) {
            snprintf(text, sizeof text, fmt, cases[i][0], cases[i][1], skb);
            f = fopen(path, "w");
            assert_non_null(f);
            fputs(text, f);
            fclose(f);
            o.client_key_file = path;
            if (i == 0) {
                assert_luna_ok(luna_client_create(&o, &c, why));
                luna_client_public_key(c, pkhex);
                assert_luna_ok(luna_hex_encode(pk, 32, want, sizeof want));
                assert_string_equal(want, pkhex);
                luna_client_free(c);
                c = NULL;
            } else {
                assert_luna_err(LUNA_ERR_CONFIG, luna_client_create(&o, &c, why));
                assert_null(c);
                assert_null(strstr(why, skb));
            }
        }
        luna_wipe(skb, sizeof skb);
    }
    /* An unknown config field is refused (strict config). */
    o.client_key_file = NULL;
    snprintf(path, sizeof path, "%s/bad.json", fx.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"tenant_id\":\"acme\",\"api_key\":\"inline-secret\"}", f);
    fclose(f);
    o.config_file = path;
    assert_luna_err(LUNA_ERR_CONFIG, luna_client_create(&o, &c, why));
    assert_null(strstr(why, "inline-secret"));
    luna_wipe(raw, sizeof raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_genuine_sim_report),
        cmocka_unit_test(test_changed_measurement),
        cmocka_unit_test(test_changed_signer),
        cmocka_unit_test(test_changed_signature),
        cmocka_unit_test(test_changed_tcb),
        cmocka_unit_test(test_quarantined),
        cmocka_unit_test(test_changed_key_id),
        cmocka_unit_test(test_out_of_date_evidence),
        cmocka_unit_test(test_rogue_measurement),
        cmocka_unit_test(test_production_refuses_sim),
        cmocka_unit_test(test_wrong_pinned_key),
        cmocka_unit_test(test_unpinned_deployment),
        cmocka_unit_test(test_missing_field),
        cmocka_unit_test(test_config_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
