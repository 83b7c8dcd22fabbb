/*
 * test_verifier.c - the verifier API and the sim backend on genuine
 * evidence: every claim read back, both platform key types, the chain
 * cache never skipping the evidence signature, age-only freshness, and
 * the fail-closed policy rules (each unset expectation refuses).
 * Policy: DEVELOPMENT, sim allowed with minimum TCB 3, deployment "app",
 * nonce required, max age 300 s, unless a test says otherwise.
 */
#include <stdlib.h>
#include <string.h>

#include "luna/crypto.h"
#include "luna/evidence_sim.h"
#include "luna/verifier.h"
#include "luna_test.h"

#define NOW INT64_C(1700000000)

static luna_sim_vendor *vendor;
static uint8_t tcb[LUNA_SIM_TCB_MAX];
static size_t tcb_len;

static int group_setup(void **state)
{
    (void)state;
    luna_sim_tcb_params tp = {.current_level = 5, .revoked_below = 2, .issued_at = NOW - 60,
                              .next_update = NOW + 3600};
    assert_luna_ok(luna_sim_vendor_create(NOW - 86400, NOW + 86400 * 365, &vendor));
    assert_luna_ok(luna_sim_tcb_sign(vendor, &tp, tcb, sizeof(tcb), &tcb_len));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    luna_sim_vendor_free(vendor);
    return 0;
}

typedef struct opts {
    bool no_anchor, no_signer, no_freshness, no_collateral, allow_debug;
    bool require_nonce;
    uint32_t max_age;
} opts;

static luna_verifier *make_verifier(const opts *o)
{
    luna_policy *p = NULL;
    luna_verifier *v = NULL;
    uint8_t m[32], s[32];
    memset(m, 0xA1, 32);
    memset(s, 0x5E, 32);
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_DEVELOPMENT, &p));
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, 3));
    if (!o->no_anchor)
        assert_luna_ok(luna_policy_add_anchor(p, LUNA_EVIDENCE_SIM, luna_sim_vendor_cert(vendor)));
    assert_luna_ok(luna_policy_add_reference(p, "app", LUNA_EVIDENCE_SIM, m, 32));
    if (!o->no_signer)
        assert_luna_ok(luna_policy_add_signer(p, "app", s, 32));
    if (!o->no_freshness)
        assert_luna_ok(luna_policy_set_freshness(p, o->require_nonce, o->max_age, 60));
    if (o->allow_debug)
        assert_luna_ok(luna_policy_allow_debug(p));
    assert_luna_ok(luna_verifier_new(p, &v));
    if (!o->no_collateral && !o->no_anchor)
        assert_luna_ok(luna_verifier_set_collateral(v, LUNA_EVIDENCE_SIM, tcb, tcb_len, NOW));
    return v;
}

static const opts default_opts = {.require_nonce = true, .max_age = 300};

static void params(luna_sim_evidence_params *ep)
{
    memset(ep, 0, sizeof(*ep));
    ep->tcb_level = 6;
    memset(ep->measurement, 0xA1, 32);
    memset(ep->signer, 0x5E, 32);
    memset(ep->tee_x25519, 0x25, 32);
    ep->has_tee_ed25519 = true;
    memset(ep->tee_ed25519, 0xED, 32);
    memset(ep->nonce, 0x11, 32);
    memset(ep->memory_digest, 0x3D, 32);
    ep->timestamp = NOW - 5;
}

static void input(luna_verify_input *in, const uint8_t *ev, size_t len,
                  const luna_sim_evidence_params *ep)
{
    memset(in, 0, sizeof(*in));
    in->type = LUNA_EVIDENCE_SIM;
    in->evidence = ev;
    in->evidence_len = len;
    in->deployment_id = "app";
    in->nonce = ep->nonce;
    in->now = NOW;
}

static void genuine(luna_sim_sig_alg alg)
{
    luna_verifier *v = make_verifier(&default_opts);
    luna_sim_platform *pf = NULL;
    luna_sim_evidence_params ep;
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX], serial[LUNA_CLAIM_SERIAL_MAX], rd[64];
    size_t ev_len = 0, sl = 0;
    luna_verify_input in;
    luna_verify_result res;

    assert_luna_ok(luna_sim_platform_create(vendor, alg, NOW - 60, NOW + 86400, &pf));
    params(&ep);
    assert_luna_ok(luna_sim_evidence_sign(pf, &ep, ev, sizeof(ev), &ev_len));
    input(&in, ev, ev_len, &ep);
    assert_luna_ok(luna_verifier_verify(v, &in, &res));
    assert_int_equal(LUNA_VERIFY_OK, res.reason);
    assert_string_equal("ok", luna_verify_reason_name(res.reason));
    assert_non_null(strstr(res.message, "SIMULATED"));

    const luna_claims *c = &res.claims;
    assert_int_equal(LUNA_EVIDENCE_SIM, c->type);
    assert_true(c->simulated);
    assert_int_equal(1, c->version);
    assert_int_equal(32, c->measurement_len);
    assert_memory_equal(ep.measurement, c->measurement, 32);
    assert_int_equal(32, c->signer_len);
    assert_memory_equal(ep.signer, c->signer, 32);
    assert_true(c->has_tee_x25519);
    assert_memory_equal(ep.tee_x25519, c->tee_x25519, 32);
    assert_true(c->has_tee_ed25519);
    assert_memory_equal(ep.tee_ed25519, c->tee_ed25519, 32);
    assert_int_equal(32, c->nonce_len);
    assert_memory_equal(ep.nonce, c->nonce, 32);
    assert_luna_ok(luna_verifier_binding(ep.nonce, ep.tee_x25519, ep.tee_ed25519, rd));
    assert_memory_equal(rd, c->report_data, 64);
    assert_false(c->debug);
    assert_int_equal(6, c->tcb_level);
    assert_int_equal(LUNA_TCB_UP_TO_DATE, c->tcb_status);
    assert_string_equal("up_to_date", luna_tcb_status_name(c->tcb_status));
    assert_int_equal(LUNA_QE_VALID, c->qe_status);
    assert_string_equal("valid", luna_qe_status_name(c->qe_status));
    assert_true(c->has_memory_digest);
    assert_memory_equal(ep.memory_digest, c->memory_digest, 32);
    assert_true(c->has_timestamp);
    assert_int_equal(NOW - 5, c->timestamp);
    assert_luna_ok(luna_sim_platform_serial(pf, serial, sizeof(serial), &sl));
    assert_int_equal(sl, c->platform_serial_len);
    assert_memory_equal(serial, c->platform_serial, sl);

    /* Second time through the chain cache: still verified, and a bad
       signature is still caught (the cache never covers the signature). */
    assert_luna_ok(luna_verifier_verify(v, &in, &res));
    ev[ev_len - 5] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_verifier_verify(v, &in, &res));
    assert_int_equal(LUNA_VERIFY_BAD_SIGNATURE, res.reason);
    /* Nothing authenticated: no claims leak out. */
    assert_int_equal(0, res.claims.measurement_len);
    /* A cached chain is not honoured past its validity either. */
    ev[ev_len - 5] ^= 1;
    in.now = NOW + 86400 + 1;
    ep.timestamp = in.now;
    assert_luna_ok(luna_sim_evidence_sign(pf, &ep, ev, sizeof(ev), &ev_len));
    assert_luna_err(LUNA_ERR_VERIFY, luna_verifier_verify(v, &in, &res));
    assert_true(res.reason == LUNA_VERIFY_CERT_EXPIRED);

    luna_sim_platform_free(pf);
    luna_verifier_free(v);
}

static void t_genuine_ed25519(void **state)
{
    (void)state;
    genuine(LUNA_SIM_SIG_ED25519);
}

static void t_genuine_p256(void **state)
{
    (void)state;
    genuine(LUNA_SIM_SIG_P256);
}

static luna_verify_reason run(const opts *o, luna_sim_evidence_params *ep, bool give_nonce)
{
    luna_verifier *v = make_verifier(o);
    luna_sim_platform *pf = NULL;
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX];
    size_t ev_len = 0;
    luna_verify_input in;
    luna_verify_result res;

    assert_luna_ok(luna_sim_platform_create(vendor, LUNA_SIM_SIG_ED25519, NOW - 60, NOW + 600, &pf));
    assert_luna_ok(luna_sim_evidence_sign(pf, ep, ev, sizeof(ev), &ev_len));
    input(&in, ev, ev_len, ep);
    if (!give_nonce)
        in.nonce = NULL;
    luna_err err = luna_verifier_verify(v, &in, &res);
    assert_true((err == LUNA_OK) == (res.reason == LUNA_VERIFY_OK));
    luna_sim_platform_free(pf);
    luna_verifier_free(v);
    return res.reason;
}

static void t_age_only_policy(void **state)
{
    (void)state;
    luna_sim_evidence_params ep;
    opts o = {.require_nonce = false, .max_age = 300};
    params(&ep);
    assert_int_equal(LUNA_VERIFY_OK, run(&o, &ep, false));
    ep.timestamp = NOW - 301;
    assert_int_equal(LUNA_VERIFY_STALE, run(&o, &ep, false));
}

static void t_nonce_only_policy_ignores_age(void **state)
{
    (void)state;
    luna_sim_evidence_params ep;
    opts o = {.require_nonce = true, .max_age = 0};
    params(&ep);
    ep.timestamp = NOW - 100000;
    assert_int_equal(LUNA_VERIFY_OK, run(&o, &ep, true));
}

static void t_fail_closed(void **state)
{
    (void)state;
    luna_sim_evidence_params ep;
    params(&ep);
    opts o = default_opts;
    o.no_anchor = true;
    assert_int_equal(LUNA_VERIFY_POLICY_INCOMPLETE, run(&o, &ep, true));
    o = default_opts;
    o.no_signer = true;
    assert_int_equal(LUNA_VERIFY_POLICY_INCOMPLETE, run(&o, &ep, true));
    o = default_opts;
    o.no_freshness = true;
    assert_int_equal(LUNA_VERIFY_POLICY_INCOMPLETE, run(&o, &ep, true));
    o = default_opts;
    o.no_collateral = true;
    assert_int_equal(LUNA_VERIFY_COLLATERAL_MISSING, run(&o, &ep, true));
}

static void t_debug_only_when_allowed(void **state)
{
    (void)state;
    luna_sim_evidence_params ep;
    params(&ep);
    ep.debug = true;
    assert_int_equal(LUNA_VERIFY_DEBUG_FORBIDDEN, run(&default_opts, &ep, true));
    opts o = default_opts;
    o.allow_debug = true;
    assert_int_equal(LUNA_VERIFY_OK, run(&o, &ep, true));
}

static void t_accept_tcb_status(void **state)
{
    (void)state;
    luna_policy *p = NULL;
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_DEVELOPMENT, &p));
    assert_luna_err(LUNA_ERR_NOT_FOUND,
                    luna_policy_accept_tcb_status(p, LUNA_EVIDENCE_SIM, LUNA_TCB_OUT_OF_DATE));
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, 0));
    assert_luna_err(LUNA_ERR_CONFLICT, luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, 0));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_policy_accept_tcb_status(p, LUNA_EVIDENCE_SIM, LUNA_TCB_REVOKED));
    assert_luna_ok(luna_policy_accept_tcb_status(p, LUNA_EVIDENCE_SIM, LUNA_TCB_OUT_OF_DATE));
    /* Every evidence type has a backend now (TPM was the last); a value
       outside the enum has none and is refused before any lookup. */
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_TPM, 0));
    assert_luna_err(LUNA_ERR_CONFLICT, luna_policy_allow_type(p, LUNA_EVIDENCE_TPM, 0));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_policy_allow_type(p, (luna_evidence_type)(LUNA_EVIDENCE_TYPE_MAX + 1), 0));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_policy_allow_type(p, (luna_evidence_type)0, 0));
    luna_policy_free(p);
}

static void t_policy_args(void **state)
{
    (void)state;
    luna_policy *p = NULL;
    uint8_t m[65] = {0};
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_policy_new((luna_policy_profile)7, &p));
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_DEVELOPMENT, &p));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_policy_add_reference(p, "app", LUNA_EVIDENCE_SIM, m, 65));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_policy_add_reference(p, "a/b", LUNA_EVIDENCE_SIM, m, 32));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_policy_add_reference(p, "", LUNA_EVIDENCE_SIM, m, 32));
    for (int i = 0; i < LUNA_POLICY_MAX_REFS; i++)
        assert_luna_ok(luna_policy_add_reference(p, "app", LUNA_EVIDENCE_SIM, m, 32));
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_policy_add_reference(p, "app", LUNA_EVIDENCE_SIM, m, 32));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_policy_set_freshness(p, false, 0, 0));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_policy_set_freshness(p, false, LUNA_POLICY_MAX_AGE_CAP + 1, 0));
    luna_policy_free(p);
    luna_policy_free(NULL);
    luna_verifier_free(NULL);
}

static void t_reason_names_distinct(void **state)
{
    (void)state;
    for (int i = 0; i < LUNA_VERIFY_REASON__COUNT; i++) {
        const char *a = luna_verify_reason_name((luna_verify_reason)i);
        assert_string_not_equal("unknown", a);
        for (int j = i + 1; j < LUNA_VERIFY_REASON__COUNT; j++)
            assert_string_not_equal(a, luna_verify_reason_name((luna_verify_reason)j));
    }
    assert_string_equal("unknown", luna_verify_reason_name(LUNA_VERIFY_REASON__COUNT));
    assert_string_equal("sim", luna_evidence_type_name(LUNA_EVIDENCE_SIM));
    assert_string_equal("sev-snp", luna_evidence_type_name(LUNA_EVIDENCE_SEV_SNP));
}

static void t_binding_covers_every_input(void **state)
{
    (void)state;
    uint8_t n[32], x[32], e[32], a[64], b[64];
    memset(n, 1, 32);
    memset(x, 2, 32);
    memset(e, 3, 32);
    assert_luna_ok(luna_verifier_binding(n, x, e, a));
    for (int i = 32; i < 64; i++)
        assert_int_equal(0, a[i]);
    n[31] ^= 1;
    assert_luna_ok(luna_verifier_binding(n, x, e, b));
    assert_memory_not_equal(a, b, 32);
    n[31] ^= 1;
    assert_luna_ok(luna_verifier_binding(n, x, NULL, b));
    assert_memory_not_equal(a, b, 32);
    x[0] ^= 1;
    assert_luna_ok(luna_verifier_binding(n, x, e, b));
    assert_memory_not_equal(a, b, 32);
}

static void t_vendor_root_is_labelled(void **state)
{
    (void)state;
    char buf[256];
    X509_NAME_oneline(X509_get_subject_name(luna_sim_vendor_cert(vendor)), buf, sizeof(buf));
    assert_non_null(strstr(buf, "SIMULATED - INSECURE"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_genuine_ed25519),
        cmocka_unit_test(t_genuine_p256),
        cmocka_unit_test(t_age_only_policy),
        cmocka_unit_test(t_nonce_only_policy_ignores_age),
        cmocka_unit_test(t_fail_closed),
        cmocka_unit_test(t_debug_only_when_allowed),
        cmocka_unit_test(t_accept_tcb_status),
        cmocka_unit_test(t_policy_args),
        cmocka_unit_test(t_reason_names_distinct),
        cmocka_unit_test(t_binding_covers_every_input),
        cmocka_unit_test(t_vendor_root_is_labelled),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
