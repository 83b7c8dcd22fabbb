/*
 * sdk_stub_gateway.h - a stand-in for the gateway and everything behind it
 * (IAM token, TEE selection, KMS one-time keys, two sim TEEs) on a real
 * public TLS listener (luna_http), in a thread of the test process, built
 * from the fixture of sdk_fixture.h.  It follows docs/protocol.md's
 * client-facing endpoints so the SDK and CLI are tested end to end over
 * HTTPS before the real platform runs; its knobs let tests kill a TEE,
 * tamper with results or serve a rogue TEE.  Test-only.
 */
#ifndef LUNA_SDK_STUB_GATEWAY_H
#define LUNA_SDK_STUB_GATEWAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "http_test_util.h"
#include "sdk_fixture.h"

#define STUB_API_KEY "lk_test_0123456789abcdef"

typedef struct stub_gw {
    sdk_fx *fx;
    htu_env env;
    char url[64];
    uint16_t port;
    /* knobs (set before the request; read under lock by the server) */
    bool tee1_dead;        /* /v1/jobs/run on tee-1 answers 503 tee_unavailable */
    bool tamper_result;    /* flips a byte of the sealed result */
    bool rogue_evidence;   /* evidence with a measurement not in the manifest */
    /* /v1/tees/select answers busy_status (503 tee_unavailable or 429
       rate_limited; 0: off) with "Retry-After: busy_retry_after" (0: no
       header) to the next busy_left selections (-1: to every one). */
    int busy_status;
    unsigned busy_retry_after;
    int busy_left;
    /* counters */
    int runs;              /* envelopes that reached a TEE */
    int selects;
    uint64_t select_ms[8]; /* CLOCK_MONOTONIC ms of the first 8 selections */
    char idem[4][80];      /* Idempotency-Key of each run attempt */
    char reqid[4][80];     /* request ids of each run attempt */
    int n_attempts;
    pthread_mutex_t lock;
    /* internals */
    void *priv;
} stub_gw;

/* Starts the stub (PKI, certificate, listener, thread); aborts on failure. */
void stub_gw_start(stub_gw *g, sdk_fx *fx);
void stub_gw_stop(stub_gw *g);

#endif
