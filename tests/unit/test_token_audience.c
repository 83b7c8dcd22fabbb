/*
 * unit.token_audience: the pieces that bind a token to one service
 * (docs/protocol.md "Token audiences"): the audience table and its config
 * check (luna/audience.h), the single-audience rule of luna_jws_verify,
 * and the SDK's route table that picks the downstream token.
 */
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "luna/audience.h"
#include "luna/jws.h"
#include "luna_test.h"
#include "sdk_internal.h"

static void test_table(void **state)
{
    (void)state;
    assert_string_equal(LUNA_AUD_GATEWAY, luna_aud_of("gateway"));
    assert_string_equal(LUNA_AUD_IAM, luna_aud_of("iam"));
    assert_string_equal(LUNA_AUD_KMS, luna_aud_of("kms"));
    assert_string_equal(LUNA_AUD_AUDIT, luna_aud_of("audit"));
    assert_string_equal(LUNA_AUD_ATTESTATION, luna_aud_of("attestation"));
    assert_null(luna_aud_of("lunal"));
    assert_null(luna_aud_of("KMS"));
    assert_null(luna_aud_of(""));
    assert_null(luna_aud_of(NULL));
}

static void test_config_check(void **state)
{
    (void)state;
    assert_luna_ok(luna_aud_check_config(LUNA_AUD_KMS, LUNA_AUD_KMS));
    assert_luna_ok(luna_aud_check_config(LUNA_AUD_AUDIT, LUNA_AUD_AUDIT));
    static const char *const bad[] = {"lunal", "", LUNA_AUD_GATEWAY, LUNA_AUD_IAM,
                                      "lunal://svc/kms/", "LUNAL://SVC/KMS", "lunal://svc/km",
                                      "lunal://svc/*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_luna_err(LUNA_ERR_CONFIG, luna_aud_check_config(bad[i], LUNA_AUD_KMS));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_aud_check_config(NULL, LUNA_AUD_KMS));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_aud_check_config(LUNA_AUD_KMS, NULL));
    /* "own" must itself be a service audience: no way to configure "lunal". */
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_aud_check_config("lunal", "lunal"));
}

static luna_err verify_with(const luna_jws_keyset *ks, const char *tok,
                            const luna_jws_verify_opts *o)
{
    json_t *claims = NULL;
    luna_err err = luna_jws_verify(ks, tok, strlen(tok), o, &claims, NULL);
    if (err == LUNA_OK)
        assert_non_null(claims);
    else
        assert_null(claims);
    json_decref(claims);
    return err;
}

static char *sign_aud(luna_jws_signer *s, json_t *aud)
{
    json_t *c = json_pack("{s:s,s:o,s:I}", "iss", LUNA_AUD_IAM, "aud", aud, "exp",
                          (json_int_t)time(NULL) + 300);
    assert_non_null(c);
    char *tok = NULL;
    assert_luna_ok(luna_jws_sign(s, c, &tok, NULL));
    json_decref(c);
    return tok;
}

static void test_single_audience(void **state)
{
    (void)state;
    luna_jws_signer *s = NULL;
    luna_jws_keyset *ks = NULL;
    assert_luna_ok(luna_jws_signer_generate("k1", &s));
    assert_luna_ok(luna_jws_keyset_new(&ks));
    assert_luna_ok(luna_jws_signer_publish(s, ks));
    luna_jws_verify_opts o;
    luna_jws_verify_opts_init(&o);
    assert_false(o.audience_any_of); /* strict unless asked */
    o.audience = LUNA_AUD_KMS;

    char *one = sign_aud(s, json_string(LUNA_AUD_KMS));
    char *other = sign_aud(s, json_string(LUNA_AUD_GATEWAY));
    char *shared = sign_aud(s, json_string("lunal"));
    char *list = sign_aud(s, json_pack("[s,s]", LUNA_AUD_KMS, LUNA_AUD_GATEWAY));
    char *list1 = sign_aud(s, json_pack("[s]", LUNA_AUD_KMS));
    assert_luna_ok(verify_with(ks, one, &o));
    assert_luna_err(LUNA_ERR_VERIFY, verify_with(ks, other, &o));
    assert_luna_err(LUNA_ERR_VERIFY, verify_with(ks, shared, &o));
    assert_luna_err(LUNA_ERR_VERIFY, verify_with(ks, list, &o));
    assert_luna_err(LUNA_ERR_VERIFY, verify_with(ks, list1, &o));
    /* A zeroed options struct is just as strict. */
    luna_jws_verify_opts z;
    memset(&z, 0, sizeof(z));
    z.audience = LUNA_AUD_KMS;
    assert_luna_ok(verify_with(ks, one, &z));
    assert_luna_err(LUNA_ERR_VERIFY, verify_with(ks, list, &z));
    /* RFC 7519's list form only when asked for. */
    o.audience_any_of = true;
    assert_luna_ok(verify_with(ks, list, &o));
    assert_luna_err(LUNA_ERR_VERIFY, verify_with(ks, other, &o));

    free(one);
    free(other);
    free(shared);
    free(list);
    free(list1);
    luna_jws_keyset_free(ks);
    luna_jws_signer_free(s);
}

static void test_sdk_route_table(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int svc;
    } cases[] = {
        {"/v1/otk", SDK_SVC_KMS},
        {"/v1/keys", SDK_SVC_KMS},
        {"/v1/keys/k1/rotate", SDK_SVC_KMS},
        {"/v1/keys?state=active", SDK_SVC_KMS},
        {"/v1/tees", SDK_SVC_KMS},
        {"/v1/tees/select", SDK_SVC_KMS},
        {"/v1/tees/t1/quarantine", SDK_SVC_KMS},
        {"/v1/attestation/verify", SDK_SVC_ATTESTATION},
        {"/v1/attestation/history?tee_id=t1", SDK_SVC_ATTESTATION},
        {"/v1/audit/entries", SDK_SVC_AUDIT},
        {"/v1/audit/proof/3", SDK_SVC_AUDIT},
        {"/v1/tenants", SDK_SVC_IAM},
        {"/v1/tenants/acme/anonymous", SDK_SVC_IAM},
        {"/v1/apikeys", SDK_SVC_IAM},
        {"/v1/apikeys/lak_1", SDK_SVC_IAM},
        {"/v1/clients/app1", SDK_SVC_IAM},
        {"/v1/principals", SDK_SVC_IAM},
        /* the gateway's own routes and near misses carry no downstream token */
        {"/v1/auth/token", -1},
        {"/v1/jobs/run", -1},
        {"/v1/health", -1},
        {"/v1/otkx", -1},
        {"/v1/keysmith", -1},
        {"/v1/teesx", -1},
        {"/v1/attestation", -1},
        {"/v1/auditor", -1},
        {"/v1/audit", -1},
        {"/v2/keys", -1},
        {"/v1/deployments", SDK_SVC_KMS},
        {"/v1/deploymentsx", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (sdk_downstream_for(cases[i].path) != cases[i].svc)
            fail_msg("%s: got %d, want %d", cases[i].path, sdk_downstream_for(cases[i].path),
                     cases[i].svc);
    }
    assert_int_equal(-1, sdk_downstream_for(NULL));
    /* Registration goes to the attestation service, listing stays with the KMS. */
    assert_int_equal(SDK_SVC_ATTESTATION, sdk_downstream_for_request("POST", "/v1/deployments"));
    assert_int_equal(SDK_SVC_KMS, sdk_downstream_for_request("GET", "/v1/deployments"));
    assert_int_equal(SDK_SVC_KMS, sdk_downstream_for_request("POST", "/v1/keys"));
    assert_int_equal(-1, sdk_downstream_for_request("POST", "/v1/deploymentsx"));
    assert_int_equal(-1, sdk_downstream_for_request("POST", NULL));
    assert_string_equal("kms", sdk_svc_name(SDK_SVC_KMS));
    assert_string_equal("iam", sdk_svc_name(SDK_SVC_IAM));
    assert_null(sdk_svc_name(SDK_SVC__COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_single_audience),
        cmocka_unit_test(test_sdk_route_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
