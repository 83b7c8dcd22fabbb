/*
 * test_verifier_sim_attacks.c - every way a rogue or modified sim TEE (or
 * a man in the middle) could try to pass evidence, each refused with its
 * own reason code.  A genuine evidence verifies first in the same fixture,
 * so a refusal can only come from the one thing each test changes.
 *
 * Policy under test (unless a test says otherwise): DEVELOPMENT profile,
 * sim allowed with minimum TCB level 3 (up_to_date only), the fixture's
 * sim vendor root, deployment "app" with one reference measurement and
 * one allowed signer, nonce required and maximum age 300 s (skew 60 s),
 * debug forbidden; TCB collateral: current level 5, revoked below 2.
 */
#include <stdlib.h>
#include <string.h>

#include "luna/crypto.h"
#include "luna/evidence_sim.h"
#include "luna/verifier.h"
#include "luna_test.h"

#define NOW INT64_C(1700000000)

typedef struct fx {
    luna_sim_vendor *vendor;
    luna_sim_platform *platform;
    luna_verifier *v;
    luna_sim_evidence_params ep;
    uint8_t tcb[LUNA_SIM_TCB_MAX];
    size_t tcb_len;
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX + 8];
    size_t ev_len;
    luna_verify_input in;
    luna_verify_result res;
} fx;

static void fill(uint8_t *p, size_t n, uint8_t v)
{
    memset(p, v, n);
}

static luna_policy *dev_policy(fx *f)
{
    luna_policy *p = NULL;
    uint8_t m[32], s[32];
    fill(m, 32, 0xA1);
    fill(s, 32, 0x5E);
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_DEVELOPMENT, &p));
    assert_luna_ok(luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, 3));
    assert_luna_ok(luna_policy_add_anchor(p, LUNA_EVIDENCE_SIM, luna_sim_vendor_cert(f->vendor)));
    assert_luna_ok(luna_policy_add_reference(p, "app", LUNA_EVIDENCE_SIM, m, 32));
    assert_luna_ok(luna_policy_add_signer(p, "app", s, 32));
    assert_luna_ok(luna_policy_set_freshness(p, true, 300, 60));
    return p;
}

static void sign_tcb(fx *f, const luna_sim_vendor *by, const uint8_t *revoked, size_t rlen,
                     int64_t issued, int64_t next)
{
    const uint8_t *list[1] = {revoked};
    size_t lens[1] = {rlen};
    luna_sim_tcb_params tp = {.current_level = 5, .revoked_below = 2, .issued_at = issued,
                              .next_update = next, .revoked = list, .revoked_lens = lens,
                              .n_revoked = revoked != NULL ? 1 : 0};
    assert_luna_ok(luna_sim_tcb_sign(by, &tp, f->tcb, sizeof(f->tcb), &f->tcb_len));
}

static void resign(fx *f)
{
    assert_luna_ok(
        luna_sim_evidence_sign(f->platform, &f->ep, f->ev, sizeof(f->ev), &f->ev_len));
    f->in.evidence_len = f->ev_len;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_luna_ok(luna_sim_vendor_create(NOW - 86400, NOW + 86400 * 365, &f->vendor));
    assert_luna_ok(luna_sim_platform_create(f->vendor, LUNA_SIM_SIG_ED25519, NOW - 3600,
                                            NOW + 86400 * 30, &f->platform));
    assert_luna_ok(luna_verifier_new(dev_policy(f), &f->v));
    sign_tcb(f, f->vendor, NULL, 0, NOW - 60, NOW + 3600);
    assert_luna_ok(luna_verifier_set_collateral(f->v, LUNA_EVIDENCE_SIM, f->tcb, f->tcb_len, NOW));

    f->ep.tcb_level = 5;
    fill(f->ep.measurement, 32, 0xA1);
    fill(f->ep.signer, 32, 0x5E);
    fill(f->ep.tee_x25519, 32, 0x25);
    f->ep.has_tee_ed25519 = true;
    fill(f->ep.tee_ed25519, 32, 0xED);
    fill(f->ep.nonce, 32, 0x11);
    fill(f->ep.memory_digest, 32, 0x3D);
    f->ep.timestamp = NOW - 10;
    f->in.type = LUNA_EVIDENCE_SIM;
    f->in.evidence = f->ev;
    f->in.deployment_id = "app";
    f->in.nonce = f->ep.nonce;
    f->in.tee_x25519 = f->ep.tee_x25519;
    f->in.now = NOW;
    resign(f);
    /* The baseline every refusal below departs from. */
    assert_luna_ok(luna_verifier_verify(f->v, &f->in, &f->res));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    luna_verifier_free(f->v);
    luna_sim_platform_free(f->platform);
    luna_sim_vendor_free(f->vendor);
    free(f);
    return 0;
}

static void expect(fx *f, luna_verify_reason r)
{
    assert_luna_err(LUNA_ERR_VERIFY, luna_verifier_verify(f->v, &f->in, &f->res));
    assert_string_equal(luna_verify_reason_name(r), luna_verify_reason_name(f->res.reason));
    assert_true(f->res.message[0] != '\0');
}

static void t_modified_measurement(void **state)
{
    fx *f = *state;
    f->ep.measurement[7] ^= 1;
    resign(f);
    expect(f, LUNA_VERIFY_MEASUREMENT_MISMATCH);
}

static void t_tampered_measurement_bytes(void **state)
{
    fx *f = *state;
    f->ev[26] ^= 1; /* measurement field, after signing */
    expect(f, LUNA_VERIFY_BAD_SIGNATURE);
}

static void t_flipped_signature(void **state)
{
    fx *f = *state;
    f->ev[f->ev_len - 1] ^= 0x80;
    expect(f, LUNA_VERIFY_BAD_SIGNATURE);
}

static void t_unknown_signer(void **state)
{
    fx *f = *state;
    f->ep.signer[0] ^= 1;
    resign(f);
    expect(f, LUNA_VERIFY_UNKNOWN_SIGNER);
}

static void t_debug(void **state)
{
    fx *f = *state;
    f->ep.debug = true;
    resign(f);
    expect(f, LUNA_VERIFY_DEBUG_FORBIDDEN);
}

static void t_tcb_out_of_date(void **state)
{
    fx *f = *state;
    f->ep.tcb_level = 4; /* >= policy minimum 3, but below the vendor's current 5 */
    resign(f);
    expect(f, LUNA_VERIFY_TCB_OUT_OF_DATE);
    assert_int_equal(LUNA_TCB_OUT_OF_DATE, f->res.claims.tcb_status);
}

static void t_tcb_below_policy_min(void **state)
{
    fx *f = *state;
    f->ep.tcb_level = 2;
    resign(f);
    expect(f, LUNA_VERIFY_TCB_OUT_OF_DATE);
}

static void t_tcb_revoked(void **state)
{
    fx *f = *state;
    f->ep.tcb_level = 1;
    resign(f);
    expect(f, LUNA_VERIFY_TCB_REVOKED);
}

static void t_revoked_platform_key(void **state)
{
    fx *f = *state;
    uint8_t serial[LUNA_CLAIM_SERIAL_MAX];
    size_t sl = 0;
    assert_luna_ok(luna_sim_platform_serial(f->platform, serial, sizeof(serial), &sl));
    sign_tcb(f, f->vendor, serial, sl, NOW - 30, NOW + 3600);
    assert_luna_ok(luna_verifier_set_collateral(f->v, LUNA_EVIDENCE_SIM, f->tcb, f->tcb_len, NOW));
    expect(f, LUNA_VERIFY_REVOKED_PLATFORM_KEY);
}

static void t_collateral_rollback_refused(void **state)
{
    fx *f = *state;
    sign_tcb(f, f->vendor, NULL, 0, NOW - 600, NOW + 3600);
    assert_luna_err(LUNA_ERR_CONFLICT,
                    luna_verifier_set_collateral(f->v, LUNA_EVIDENCE_SIM, f->tcb, f->tcb_len, NOW));
}

static void t_collateral_forged(void **state)
{
    fx *f = *state;
    luna_sim_vendor *other = NULL;
    assert_luna_ok(luna_sim_vendor_create(NOW - 86400, NOW + 86400, &other));
    sign_tcb(f, other, NULL, 0, NOW, NOW + 3600);
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_verifier_set_collateral(f->v, LUNA_EVIDENCE_SIM, f->tcb, f->tcb_len, NOW));
    sign_tcb(f, f->vendor, NULL, 0, NOW, NOW + 3600);
    f->tcb[17] ^= 1; /* current_level 5 -> 4, after signing */
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_verifier_set_collateral(f->v, LUNA_EVIDENCE_SIM, f->tcb, f->tcb_len, NOW));
    luna_sim_vendor_free(other);
}

static void t_collateral_stale(void **state)
{
    fx *f = *state;
    f->in.now = NOW + 3601; /* past the collateral's next update */
    f->ep.timestamp = NOW + 3600;
    resign(f);
    expect(f, LUNA_VERIFY_COLLATERAL_STALE);
}

static void t_wrong_vendor_root(void **state)
{
    fx *f = *state;
    luna_sim_vendor *rogue = NULL;
    luna_sim_platform *rp = NULL;
    assert_luna_ok(luna_sim_vendor_create(NOW - 86400, NOW + 86400, &rogue));
    assert_luna_ok(luna_sim_platform_create(rogue, LUNA_SIM_SIG_ED25519, NOW - 60, NOW + 3600, &rp));
    assert_luna_ok(luna_sim_evidence_sign(rp, &f->ep, f->ev, sizeof(f->ev), &f->ev_len));
    f->in.evidence_len = f->ev_len;
    expect(f, LUNA_VERIFY_UNKNOWN_ROOT);
    luna_sim_platform_free(rp);
    luna_sim_vendor_free(rogue);
}

static void t_expired_platform_cert(void **state)
{
    fx *f = *state;
    luna_sim_platform *old = NULL;
    assert_luna_ok(luna_sim_platform_create(f->vendor, LUNA_SIM_SIG_ED25519, NOW - 7200, NOW - 3600,
                                            &old));
    assert_luna_ok(luna_sim_evidence_sign(old, &f->ep, f->ev, sizeof(f->ev), &f->ev_len));
    f->in.evidence_len = f->ev_len;
    expect(f, LUNA_VERIFY_CERT_EXPIRED);
    luna_sim_platform_free(old);
}

static void t_stale(void **state)
{
    fx *f = *state;
    f->ep.timestamp = NOW - 301;
    resign(f);
    expect(f, LUNA_VERIFY_STALE);
}

static void t_future(void **state)
{
    fx *f = *state;
    f->ep.timestamp = NOW + 61;
    resign(f);
    expect(f, LUNA_VERIFY_FUTURE_TIMESTAMP);
}

static void t_nonce_mismatch(void **state)
{
    fx *f = *state;
    uint8_t fresh[32];
    fill(fresh, 32, 0x22); /* the verifier's new nonce; the evidence replays the old one */
    f->in.nonce = fresh;
    expect(f, LUNA_VERIFY_NONCE_MISMATCH);
}

static void t_key_not_bound_report_data(void **state)
{
    fx *f = *state;
    uint8_t rd[64];
    fill(rd, 64, 0); /* platform signs, but the report data binds nothing */
    f->ep.report_data = rd;
    resign(f);
    expect(f, LUNA_VERIFY_KEY_NOT_BOUND);
}

static void t_key_not_bound_other_key(void **state)
{
    fx *f = *state;
    uint8_t mitm[32];
    fill(mitm, 32, 0x66); /* the caller is about to encrypt to this key */
    f->in.tee_x25519 = mitm;
    expect(f, LUNA_VERIFY_KEY_NOT_BOUND);
}

static void t_key_not_bound_other_signing_key(void **state)
{
    fx *f = *state;
    uint8_t mitm[32];
    fill(mitm, 32, 0x67);
    f->in.tee_ed25519 = mitm;
    expect(f, LUNA_VERIFY_KEY_NOT_BOUND);
}

static void t_unknown_version(void **state)
{
    fx *f = *state;
    f->ev[9] = 2;
    expect(f, LUNA_VERIFY_UNSUPPORTED_VERSION);
}

static void t_unknown_sig_alg(void **state)
{
    fx *f = *state;
    f->ev[13] = 9;
    expect(f, LUNA_VERIFY_UNSUPPORTED_VERSION);
}

static void t_reserved_flag(void **state)
{
    fx *f = *state;
    f->ev[10] |= 0x80; /* flag bit 15 */
    expect(f, LUNA_VERIFY_RESERVED_BITS);
    f->ev[10] &= 0x7f;
    f->ev[11] |= 0x04; /* flag bit 2 */
    expect(f, LUNA_VERIFY_RESERVED_BITS);
}

static void t_ed25519_without_flag(void **state)
{
    fx *f = *state;
    f->ev[11] &= (uint8_t)~LUNA_SIM_FLAG_SIGN_KEY; /* key bytes stay non-zero */
    expect(f, LUNA_VERIFY_RESERVED_BITS);
}

static void t_truncated(void **state)
{
    fx *f = *state;
    size_t cuts[] = {0, 1, 8, 100, LUNA_SIM_HEADER_LEN, f->ev_len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        f->in.evidence_len = cuts[i];
        expect(f, LUNA_VERIFY_MALFORMED);
    }
}

static void t_trailing(void **state)
{
    fx *f = *state;
    f->ev[f->ev_len] = 0;
    f->in.evidence_len = f->ev_len + 1;
    expect(f, LUNA_VERIFY_MALFORMED);
}

static void t_bad_magic(void **state)
{
    fx *f = *state;
    f->ev[0] = 'X';
    expect(f, LUNA_VERIFY_MALFORMED);
}

static void t_cert_len_lies(void **state)
{
    fx *f = *state;
    f->ev[283] ^= 1; /* low byte of cert_len */
    expect(f, LUNA_VERIFY_MALFORMED);
}

static void t_production_refuses_sim(void **state)
{
    fx *f = *state;
    luna_policy *p = NULL;
    luna_verifier *v = NULL;
    uint8_t m[32], s[32];
    fill(m, 32, 0xA1);
    fill(s, 32, 0x5E);
    assert_luna_ok(luna_policy_new(LUNA_PROFILE_PRODUCTION, &p));
    /* A production policy can neither allow sim, nor trust its root, nor debug ... */
    assert_luna_err(LUNA_ERR_PERMISSION, luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, 0));
    assert_luna_err(LUNA_ERR_PERMISSION,
                    luna_policy_add_anchor(p, LUNA_EVIDENCE_SIM, luna_sim_vendor_cert(f->vendor)));
    assert_luna_err(LUNA_ERR_PERMISSION, luna_policy_allow_debug(p));
    assert_luna_ok(luna_policy_add_reference(p, "app", LUNA_EVIDENCE_SIM, m, 32));
    assert_luna_ok(luna_policy_add_signer(p, "app", s, 32));
    assert_luna_ok(luna_policy_set_freshness(p, true, 300, 60));
    /* ... and a production verifier refuses genuine sim evidence by profile. */
    assert_luna_ok(luna_verifier_new(p, &v));
    assert_luna_err(LUNA_ERR_VERIFY, luna_verifier_verify(v, &f->in, &f->res));
    assert_int_equal(LUNA_VERIFY_SIMULATED_IN_PRODUCTION, f->res.reason);
    assert_string_equal("simulated_in_production", luna_verify_reason_name(f->res.reason));
    luna_verifier_free(v);
}

static void t_policy_missing_reference(void **state)
{
    fx *f = *state;
    f->in.deployment_id = "other-app";
    expect(f, LUNA_VERIFY_POLICY_INCOMPLETE);
    f->in.deployment_id = "bad id!";
    expect(f, LUNA_VERIFY_POLICY_INCOMPLETE);
    f->in.deployment_id = NULL;
    expect(f, LUNA_VERIFY_POLICY_INCOMPLETE);
}

static void t_policy_missing_nonce(void **state)
{
    fx *f = *state;
    f->in.nonce = NULL; /* the policy requires one */
    expect(f, LUNA_VERIFY_POLICY_INCOMPLETE);
}

static void t_type_not_allowed(void **state)
{
    fx *f = *state;
    f->in.type = LUNA_EVIDENCE_TDX;
    expect(f, LUNA_VERIFY_TYPE_NOT_ALLOWED);
    f->in.type = (luna_evidence_type)99;
    expect(f, LUNA_VERIFY_TYPE_NOT_ALLOWED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(t_modified_measurement),
        T(t_tampered_measurement_bytes),
        T(t_flipped_signature),
        T(t_unknown_signer),
        T(t_debug),
        T(t_tcb_out_of_date),
        T(t_tcb_below_policy_min),
        T(t_tcb_revoked),
        T(t_revoked_platform_key),
        T(t_collateral_rollback_refused),
        T(t_collateral_forged),
        T(t_collateral_stale),
        T(t_wrong_vendor_root),
        T(t_expired_platform_cert),
        T(t_stale),
        T(t_future),
        T(t_nonce_mismatch),
        T(t_key_not_bound_report_data),
        T(t_key_not_bound_other_key),
        T(t_key_not_bound_other_signing_key),
        T(t_unknown_version),
        T(t_unknown_sig_alg),
        T(t_reserved_flag),
        T(t_ed25519_without_flag),
        T(t_truncated),
        T(t_trailing),
        T(t_bad_magic),
        T(t_cert_len_lies),
        T(t_production_refuses_sim),
        T(t_policy_missing_reference),
        T(t_policy_missing_nonce),
        T(t_type_not_allowed),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
