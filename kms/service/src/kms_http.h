/*
 * kms_http.h - the KMS's HTTP API (docs/openapi-kms.yaml): routes, their
 * caller allow-lists, strict JSON schemas for every body, and the mapping
 * of refusals to JSON errors with distinct codes.
 *
 * Must never: run an operation before its body passed its schema and its
 * caller passed the allow-list and the token check.
 */
#ifndef LUNA_KMS_HTTP_H
#define LUNA_KMS_HTTP_H

#include <stddef.h>

#include "kms.h"
#include "luna/http.h"

#define KMS_MAX_CALLERS 16u

typedef struct kms_callers {
    const char *otk[KMS_MAX_CALLERS];      /* POST /v1/kms/otk (default the gateway) */
    size_t n_otk;
    const char *registry[KMS_MAX_CALLERS]; /* /v1/kms/tees* */
    size_t n_registry;
    const char *keys[KMS_MAX_CALLERS];     /* /v1/kms/keys* */
    size_t n_keys;
    const char *attestation;               /* the identity trusted without a token */
} kms_callers;

typedef struct kms_http {
    kms_svc *svc;
    kms_callers callers;
} kms_http;

/* Registers every KMS route on server (h must outlive it). */
luna_err kms_http_register(kms_http *h, luna_http_server *server) LUNA_MUST_CHECK;

#endif
