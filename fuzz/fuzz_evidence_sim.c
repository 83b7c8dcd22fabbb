/*
 * Fuzz target: the sim evidence parser and TCB status parser
 * (luna/evidence_sim.h), and the whole sim verification path through a
 * fixed development verifier.  Invariants: nothing reads outside the
 * input; a parsed evidence's views lie inside it and its signed part ends
 * where the signature starts; a refusal always has a reason other than
 * OK; nothing fuzzed verifies (no input is signed by the fixture's
 * platform key, which is generated fresh per process).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/evidence_sim.h"
#include "luna/verifier.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static luna_verifier *verifier;

static void init(void)
{
    luna_sim_vendor *vendor = NULL;
    luna_policy *p = NULL;
    uint8_t m[32] = {0}, tcb[LUNA_SIM_TCB_MAX];
    size_t tcb_len = 0;
    luna_sim_tcb_params tp = {.current_level = 1, .issued_at = 1000, .next_update = 2000000000};

    if (luna_sim_vendor_create(0, 4000000000, &vendor) != LUNA_OK ||
        luna_policy_new(LUNA_PROFILE_DEVELOPMENT, &p) != LUNA_OK ||
        luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, 0) != LUNA_OK ||
        luna_policy_add_anchor(p, LUNA_EVIDENCE_SIM, luna_sim_vendor_cert(vendor)) != LUNA_OK ||
        luna_policy_add_reference(p, "app", LUNA_EVIDENCE_SIM, m, 32) != LUNA_OK ||
        luna_policy_add_signer(p, "app", m, 32) != LUNA_OK ||
        luna_policy_set_freshness(p, false, 3600, 60) != LUNA_OK ||
        luna_verifier_new(p, &verifier) != LUNA_OK ||
        luna_sim_tcb_sign(vendor, &tp, tcb, sizeof(tcb), &tcb_len) != LUNA_OK ||
        luna_verifier_set_collateral(verifier, LUNA_EVIDENCE_SIM, tcb, tcb_len, 1700000000) !=
            LUNA_OK)
        abort();
    luna_sim_vendor_free(vendor);
}

static bool inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
    return p >= data && n <= size && (size_t)(p - data) <= size - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    luna_sim_evidence ev;
    luna_sim_tcb tcb;
    luna_verify_reason why = LUNA_VERIFY_OK;

    if (verifier == NULL)
        init();
    if (luna_sim_evidence_parse(data, size, &ev, &why) == LUNA_OK) {
        if (why != LUNA_VERIFY_OK || !inside(ev.cert, ev.cert_len, data, size) ||
            !inside(ev.sig, LUNA_SIM_SIG_LEN, data, size) ||
            ev.signed_part + ev.signed_len != ev.sig || ev.signed_len + LUNA_SIM_SIG_LEN != size)
            abort();
    } else if (why == LUNA_VERIFY_OK) {
        abort();
    }
    if (luna_sim_tcb_parse(data, size, &tcb) == LUNA_OK) {
        if (!inside(tcb.sig, 64, data, size) || tcb.signed_len + 64 != size)
            abort();
        (void)luna_sim_tcb_is_revoked(&tcb, data, size < 20 ? size : 20);
    }
    luna_verify_input in = {.type = LUNA_EVIDENCE_SIM, .evidence = data, .evidence_len = size,
                            .deployment_id = "app", .now = 1700000000};
    luna_verify_result res;
    luna_err err = luna_verifier_verify(verifier, &in, &res);
    if (err == LUNA_OK || res.reason == LUNA_VERIFY_OK)
        abort();
    return 0;
}
