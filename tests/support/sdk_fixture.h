/*
 * sdk_fixture.h - what the SDK and CLI tests share: a simulated vendor,
 * platform and TEE keys, a developer-signed manifest for deployment
 * "demo", genuine sim evidence and TCB collateral, the files a client
 * config points at, and an attestation answer in the DESIGN.md section 6
 * shape.  Aborts the test on any setup failure.
 */
#ifndef LUNA_SDK_FIXTURE_H
#define LUNA_SDK_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "luna/evidence_sim.h"
#include "luna/manifest.h"

#define FX_TCB_CURRENT 2 /* evidence level 2 is up to date, 1 out of date */

typedef struct sdk_fx {
    luna_sim_vendor *vendor;
    luna_sim_platform *platform;
    uint8_t dev_seed[32], dev_pk[32];
    luna_manifest m;
    char *manifest; /* JWS */
    uint8_t kx_sk[32], kx_pk[32], sg_seed[32], sg_pk[32];
    uint8_t evidence[LUNA_SIM_EVIDENCE_MAX];
    size_t ev_len;
    uint8_t tcb[LUNA_SIM_TCB_MAX];
    size_t tcb_len;
    char dir[256];
    char root_pem[320], tcb_file[320], config[320], manifest_file[320];
} sdk_fx;

/* Everything above; evidence at tcb_level (FX_TCB_CURRENT: up to date). */
void sdk_fx_init(sdk_fx *fx, uint32_t tcb_level);
/* Re-signs the evidence (e.g. after changing the level or measurement). */
void sdk_fx_sign_evidence(sdk_fx *fx, uint32_t tcb_level, const uint8_t *measurement);
/* Writes dir/client.json for gateway_url (ca_file may be NULL). */
void sdk_fx_write_config(sdk_fx *fx, const char *gateway_url, const char *ca_file);
/* The attestation service's answer for this TEE (caller decrefs). */
json_t *sdk_fx_answer(const sdk_fx *fx);
/* Frees and removes the folder. */
void sdk_fx_free(sdk_fx *fx);

#endif
