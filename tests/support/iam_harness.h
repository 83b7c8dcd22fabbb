/*
 * iam_harness.h - what the IAM e2e and attack tests share: a temp folder
 * with a platform CA (real luna-ca), certificates for IAM and its callers,
 * a config, `luna-iam bootstrap`, the real luna-iam process on loopback,
 * and a raw mTLS client that can send an Authorization header.  Every wait
 * is bounded.  Test-only.
 */
#ifndef LUNA_IAM_HARNESS_H
#define LUNA_IAM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http_test_util.h"

typedef struct iamh {
    htu_env env;
    htu_server srv;
    char config[HTU_PATH_MAX];
    char db[HTU_PATH_MAX];
    char admin_key[128]; /* the bootstrap key of tenant acme */
} iamh;

typedef struct iamh_resp {
    int status;
    json_t *body; /* NULL when not JSON */
    char raw[16384];
} iamh_resp;

/* CA, certificates (iam, gateway, kms, tee), config, bootstrap, start. */
void iamh_start(iamh *h, int token_ttl, int publish_delay);
/* The parts of iamh_start: CA, certificates and config only ... */
void iamh_prepare(iamh *h, int token_ttl, int publish_delay);
/* ... and starting `luna-iam serve` on that config. */
void iamh_serve(iamh *h);
/*
 * Runs `luna-iam bootstrap --tenant t` [--out out_file] with stdout on
 * /dev/full (stdout_full) or /dev/null; returns the exit status or -1.
 */
int iamh_bootstrap_run(iamh *h, const char *tenant, const char *out_file, bool stdout_full);
/* Stops the server (SIGTERM) and removes the folder; returns its exit status. */
int iamh_stop(iamh *h);
/* Runs `luna-iam bootstrap --config .. --tenant t`; stdout into out. */
int iamh_bootstrap(iamh *h, const char *tenant, char *out, size_t cap);

/*
 * One request as identity <cert> ("gateway", "kms", "tee"); token may be
 * NULL; body may be NULL.  Aborts the test when nothing came back.
 */
void iamh_call(iamh *h, const char *cert, const char *method, const char *path,
               const char *token, const char *body, iamh_resp *r);
void iamh_resp_free(iamh_resp *r);
/* The error code of a JSON error body, or "". */
const char *iamh_err_code(const iamh_resp *r);

/*
 * Authenticates through the gateway identity; returns a malloc'd token or
 * NULL.  iamh_token_for: svc NULL is the gateway token ("token"), else
 * the "downstream" token for that service ("iam", "kms", ...), NULL when
 * the principal gets none.  iamh_token: the token for IAM's admin API
 * (downstream "iam") when the principal gets one, else the gateway token
 * (which IAM's admin API refuses, 401).
 */
char *iamh_token_for(iamh *h, const char *tenant, const char *api_key, const char *svc);
char *iamh_token(iamh *h, const char *tenant, const char *api_key);
/* GET /v1/iam/jwks as the KMS would: a malloc'd document. */
char *iamh_jwks(iamh *h);

#endif
