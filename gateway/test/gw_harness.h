/*
 * gw_harness.h - what the gateway e2e and attack tests share (test-only):
 * the real luna-iam (tests/support/iam_harness.h) and luna-gateway
 * processes, the test stubs for the KMS registry, attestation service,
 * audit log and five TEEs (gateway/test/gw_stub.c), and a raw TLS client
 * WITHOUT a client certificate (the public side).  Every wait is bounded.
 *
 * Stub TEEs: t1, t2 active for acme with fresh reports; t3 active for
 * tenant "other" only; t4 quarantined; t5 active with a stale report.
 */
#ifndef LUNA_GW_HARNESS_H
#define LUNA_GW_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "iam_harness.h"

#define GWH_TEES 5

typedef struct gwh_proc {
    pid_t pid;
    uint16_t port;
} gwh_proc;

typedef struct gwh {
    iamh iam;
    gwh_proc kms, att, audit, tee[GWH_TEES], gw;
    char state[HTU_PATH_MAX];
    char audit_log[HTU_PATH_MAX];
    char gw_log[HTU_PATH_MAX];
    char gw_config[HTU_PATH_MAX];
} gwh;

typedef struct gwh_resp {
    int status;
    json_t *body; /* NULL when not JSON */
    char retry_after[32];
    htu_raw raw;
} gwh_resp;

/* Starts everything; tenant_burst/rate configure the per-tenant bucket. */
void gwh_start(gwh *h, int token_ttl);
void gwh_stop(gwh *h);

/*
 * One request to the gateway over TLS without a client certificate.
 * extra_headers: NULL or "Name: value\r\n..." lines.  body may be NULL.
 */
void gwh_call(gwh *h, const char *method, const char *path, const char *extra_headers,
              const char *content_type, const void *body, size_t body_len, gwh_resp *r);
void gwh_resp_free(gwh_resp *r);
const char *gwh_err_code(const gwh_resp *r);

/* POST /v1/auth/token through the gateway; malloc'd token or NULL. */
char *gwh_token(gwh *h, const char *tenant, const char *api_key);
/* Creates principal id with one role and an API key (admin calls to IAM); malloc'd key. */
char *gwh_principal(gwh *h, const char *id, const char *kind, const char *role);

/* Kills the TEE stub i (0-based) with SIGKILL. */
void gwh_kill_tee(gwh *h, int i);

/* True when the file holds needle. */
bool gwh_file_has(const char *path, const void *needle, size_t n);
/* True when the readable memory of pid holds needle (reads /proc/pid/mem). */
bool gwh_mem_has(pid_t pid, const void *needle, size_t n);

#endif
