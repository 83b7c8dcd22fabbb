/*
 * bench_verifier.c - sim evidence verifications per second against the
 * baseline measured in the same run: raw Ed25519 verifications of a
 * message of the same length through luna_ed25519_verify.  A sim
 * verification does one Ed25519 verify plus parsing, a chain-cache lookup
 * (the X.509 work is cached by exact bytes within validity; the evidence
 * signature never is), the revocation check and the policy checks.
 * Target: at least 85% of the baseline.  Benchmark only: fixed inputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luna/crypto.h"
#include "luna/evidence_sim.h"
#include "luna/verifier.h"

/* Many short alternating rounds, best of each: a neighbour's load hits both. */
#define SECONDS 0.25
#define ROUNDS 16
#define NOW INT64_C(1700000000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, luna_err err)
{
    fprintf(stderr, "bench_verifier: %s failed: %s\n", what, luna_errname(err));
    exit(1);
}

int main(void)
{
    luna_sim_vendor *vendor = NULL;
    luna_sim_platform *pf = NULL;
    luna_policy *p = NULL;
    luna_verifier *v = NULL;
    luna_sim_evidence_params ep;
    uint8_t ev[LUNA_SIM_EVIDENCE_MAX], tcb[LUNA_SIM_TCB_MAX], seed[32], pk[32], sig[64];
    size_t ev_len = 0, tcb_len = 0;
    luna_sim_tcb_params tp = {.current_level = 1, .issued_at = NOW - 60, .next_update = NOW + 3600};
    luna_err err;

    memset(&ep, 0, sizeof(ep));
    ep.tcb_level = 1;
    memset(ep.measurement, 0xA1, 32);
    memset(ep.signer, 0x5E, 32);
    memset(ep.tee_x25519, 0x25, 32);
    memset(ep.nonce, 0x11, 32);
    ep.timestamp = NOW;
    if ((err = luna_sim_vendor_create(NOW - 86400, NOW + 86400, &vendor)) != LUNA_OK ||
        (err = luna_sim_platform_create(vendor, LUNA_SIM_SIG_ED25519, NOW - 60, NOW + 3600,
                                        &pf)) != LUNA_OK ||
        (err = luna_sim_evidence_sign(pf, &ep, ev, sizeof(ev), &ev_len)) != LUNA_OK ||
        (err = luna_sim_tcb_sign(vendor, &tp, tcb, sizeof(tcb), &tcb_len)) != LUNA_OK ||
        (err = luna_policy_new(LUNA_PROFILE_DEVELOPMENT, &p)) != LUNA_OK ||
        (err = luna_policy_allow_type(p, LUNA_EVIDENCE_SIM, 1)) != LUNA_OK ||
        (err = luna_policy_add_anchor(p, LUNA_EVIDENCE_SIM, luna_sim_vendor_cert(vendor))) !=
            LUNA_OK ||
        (err = luna_policy_add_reference(p, "app", LUNA_EVIDENCE_SIM, ep.measurement, 32)) !=
            LUNA_OK ||
        (err = luna_policy_add_signer(p, "app", ep.signer, 32)) != LUNA_OK ||
        (err = luna_policy_set_freshness(p, true, 300, 60)) != LUNA_OK ||
        (err = luna_verifier_new(p, &v)) != LUNA_OK ||
        (err = luna_verifier_set_collateral(v, LUNA_EVIDENCE_SIM, tcb, tcb_len, NOW)) != LUNA_OK)
        die("setup", err);
    if ((err = luna_ed25519_keygen(seed, pk)) != LUNA_OK ||
        (err = luna_ed25519_sign(seed, ev, ev_len - 64, sig)) != LUNA_OK)
        die("baseline setup", err);

    luna_verify_input in = {.type = LUNA_EVIDENCE_SIM, .evidence = ev, .evidence_len = ev_len,
                            .deployment_id = "app", .nonce = ep.nonce, .now = NOW};
    luna_verify_result res;
    double best_sim = 0, best_raw = 0;
    for (int round = 0; round < ROUNDS; round++) {
        long n = 0;
        double t0 = now_s(), t;
        do {
            if ((err = luna_ed25519_verify(pk, ev, ev_len - 64, sig, 64)) != LUNA_OK)
                die("ed25519 verify", err);
            n++;
        } while ((t = now_s() - t0) < SECONDS);
        if ((double)n / t > best_raw)
            best_raw = (double)n / t;
        n = 0;
        t0 = now_s();
        do {
            if ((err = luna_verifier_verify(v, &in, &res)) != LUNA_OK) {
                fprintf(stderr, "reason %s: %s\n", luna_verify_reason_name(res.reason),
                        res.message);
                die("sim verify", err);
            }
            n++;
        } while ((t = now_s() - t0) < SECONDS);
        if ((double)n / t > best_sim)
            best_sim = (double)n / t;
    }
    printf("raw Ed25519 verify (%zu-byte message): %10.0f /s  (baseline)\n", ev_len - 64, best_raw);
    printf("sim evidence verify (full policy):     %10.0f /s  %5.1f%% of baseline (target >= 85%%)\n",
           best_sim, 100.0 * best_sim / best_raw);
    luna_verifier_free(v);
    luna_sim_platform_free(pf);
    luna_sim_vendor_free(vendor);
    return 0;
}
