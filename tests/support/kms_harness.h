/*
 * kms_harness.h - what the KMS e2e, attack and fault tests share: a temp
 * folder with a platform CA (real luna-ca) and certificates for the KMS and
 * its callers, a throwaway SoftHSM2 token, a simulated TEE vendor and
 * platform (luna/evidence_sim.h) with its TCB collateral, IAM and
 * attestation-service signing keys with their JWKS files, a config, and
 * the real luna-kms process (which spawns the real luna-kms-hsm).  The
 * test plays the gateway, the attestation service and the TEEs.  Every
 * wait is bounded.  Test-only.
 */
#ifndef LUNA_KMS_HARNESS_H
#define LUNA_KMS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "hsm_test_token.h"
#include "http_test_util.h"
#include "luna/evidence_sim.h"
#include "luna/jws.h"

#define KMSH_DEPLOYMENT "app"

typedef struct kmsh {
    htu_env env;
    hsm_token tok;
    char config[HTU_PATH_MAX];
    char db[HTU_PATH_MAX];
    char audit[HTU_PATH_MAX];
    char log[HTU_PATH_MAX];
    char extra[2048]; /* more members of the "kms" section, starting with a comma */
    char storage_url[HTU_PATH_MAX + 16];
    uint16_t port;
    pid_t pid;
    luna_sim_vendor *vendor;
    luna_sim_platform *platform;
    luna_jws_signer *iam;
    luna_jws_signer *att;
    uint8_t mr[32];
    uint8_t signer[32];
} kmsh;

typedef struct kmsh_tee {
    char id[64];
    char cert[80]; /* certificate name: lunal://tee/<id> */
    uint8_t kx_sk[32], kx_pk[32];
    uint8_t sign_seed[32], sign_pk[32];
} kmsh_tee;

typedef struct kmsh_resp {
    int status;     /* 0 when nothing came back */
    json_t *body;   /* NULL when not JSON */
    char code[64];  /* error.code or "" */
} kmsh_resp;

/* Everything but the process; extra_kms_json may be NULL.  Storage is a
 * SQLite file in the folder, or LUNA_TEST_PG_URL when set
 * (tests/support/pg_server.sh). */
void kmsh_setup(kmsh *h, const char *extra_kms_json);
/* (Re)writes the config file from the current fields. */
void kmsh_write_config(kmsh *h);
void kmsh_start(kmsh *h);
/*
 * A second KMS instance on the same database, token and certificates, its
 * own port, config <name>.json and log <name>.log.  Stop it with
 * kmsh_stop; never kmsh_teardown (h owns the shared parts).
 */
void kmsh_clone(kmsh *h, const char *name, kmsh *out);
/* Starts and waits for the port; false when the process exits first
 * (*exit_code gets its status). */
bool kmsh_try_start(kmsh *h, int *exit_code);
int kmsh_stop(kmsh *h, int sig);
void kmsh_teardown(kmsh *h);

/* One request as certificate <cert>; thread-safe, never asserts.
 * Returns 0 when a response arrived, -1 otherwise. */
int kmsh_call(const kmsh *h, const char *cert, const char *method, const char *path,
              const char *token, const char *body, kmsh_resp *r);
void kmsh_resp_free(kmsh_resp *r);

/* An IAM token for tenant with the given roles (comma separated). */
char *kmsh_token(const kmsh *h, const char *tenant, const char *roles);

/* Keys and a certificate for a TEE. */
void kmsh_tee_new(kmsh *h, const char *id, kmsh_tee *t);
/* Sim evidence over nonce at time ts; mr NULL = the reference. */
size_t kmsh_evidence(const kmsh *h, const kmsh_tee *t, const uint8_t nonce[32], int64_t ts,
                     const uint8_t *mr, uint8_t *out, size_t cap);
/* The attestation service's report for t; signer NULL = the configured one. */
char *kmsh_report(const kmsh *h, const kmsh_tee *t, const char *deployment, int64_t iat,
                  const luna_jws_signer *signer);
/* Registers t for tenants (JSON array text) and activates it (asserts). */
void kmsh_admit(kmsh *h, const kmsh_tee *t, const char *tenants_json);

/* POST /v1/kms/otk as the gateway; returns the status. */
int kmsh_issue(const kmsh *h, const char *token, const char *tee_id, const char *job,
               const char *rid, const uint8_t client_pk[32], char otk_id[64],
               uint8_t sealed[80], kmsh_resp *r);
int kmsh_challenge(const kmsh *h, const kmsh_tee *as, const char *tee_id, const char *otk_id,
                   uint8_t nonce[32]);
/* Full release request with given evidence and report; returns the status. */
int kmsh_release(const kmsh *h, const kmsh_tee *as, const char *tee_id, const char *otk_id,
                 const uint8_t nonce[32], const uint8_t *ev, size_t ev_len, const char *report,
                 kmsh_resp *r);
/* The honest TEE: challenge, fresh evidence, current report, release. */
int kmsh_release_honest(const kmsh *h, const kmsh_tee *t, const char *otk_id, kmsh_resp *r);

bool kmsh_open_client(const uint8_t sk[32], const char *otk_id, const char *tee_id,
                      const char *rid, const uint8_t sealed[80], uint8_t key[32]);
bool kmsh_open_tee(const kmsh_tee *t, const char *otk_id, const uint8_t sealed[80],
                   uint8_t key[32]);

/* b64url of a JSON string member into out; false when absent or bad. */
bool kmsh_b64(const json_t *o, const char *k, uint8_t *out, size_t cap, size_t *len);
/* Counts lines of the audit file containing needle. */
int kmsh_audit_count(const kmsh *h, const char *needle);

#endif
