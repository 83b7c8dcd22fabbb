/*
 * runtime.h - private state of the TEE runtime (luna-tee, docs/tee.md):
 * its keys (generated inside, never exported), its deployment (verified
 * manifest + the bundle it mapped), its measurement as the platform
 * reported it, its job arena, and its mTLS material after admission.
 * One runtime process = one TEE; single-threaded (libevent loop).
 */
#ifndef LUNA_TEE_RUNTIME_H
#define LUNA_TEE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "ipc.h"
#include "job_abi.h"
#include "luna/manifest.h"
#include "luna/secret.h"
#include "tee_config.h"

#define RT_COMPONENT "tee"
/* The job arena: every request is copied here and opened in place; its
   digest after a reset is what the memory-state claim proves. */
#define RT_ARENA_LEN (8u * 1024u * 1024u)
#define RT_REPLAY_SLOTS 4096
#define RT_PATH_MAX 64

typedef struct rt_state {
    int ipc;
    char tee_id[LUNA_TEE_IPC_ID_MAX + 1];
    uint8_t *config;
    size_t config_len;
    luna_tee_config cfg;
    char *manifest_jws;
    luna_manifest manifest;
    /* keys: private halves in luna_secret, MADV_WIPEONFORK */
    luna_secret *kx_sk;
    uint8_t kx_pk[32];
    luna_secret *sign_seed;
    uint8_t sign_pk[32];
    EVP_PKEY *tls_key;
    uint8_t *spki;
    size_t spki_len;
    /* deployment */
    void *dl;
    const luna_tee_bundle_def *bundle;
    /* measurement as the platform reported it */
    uint8_t mr_enclave[32];
    uint8_t mr_signer[32];
    bool measurement_matches; /* equals the signed manifest's */
    luna_secret *arena;
    /* after admission */
    char *report;
    char evidence_type[16]; /* "sim", "tpm", ...: the type the admission appraised */
    int cert_fd, key_fd;
    char cert_path[RT_PATH_MAX], key_path[RT_PATH_MAX];
    /* request ids already served (replay) */
    char (*seen)[65];
    size_t seen_next;
    uint8_t rx[LUNA_TEE_IPC_MAX];
} rt_state;

/* Asks the platform for evidence over nonce (ev: LUNA_TEE_IPC_EVIDENCE_MAX). */
luna_err rt_evidence(rt_state *rt, const uint8_t nonce[32], uint8_t *ev, size_t cap,
                     size_t *ev_len) LUNA_MUST_CHECK;
/* Wipes the job arena (the reset before a re-attestation round). */
void rt_reset_memory(rt_state *rt);
/* Registers /v1/tee/run, /v1/tee/evidence, /v1/tee/info (runtime_http.c). */
struct luna_http_server;
luna_err rt_http_routes(rt_state *rt, struct luna_http_server *srv) LUNA_MUST_CHECK;

#endif
