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

#include <stdbool.h>
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

/*
 * Splits a request path "<prefix><id>[/<op>]" (untrusted; fuzzed by
 * fuzz/fuzz_kms_path.c).  true only when id is 1..KMS_ID_MAX identifier
 * characters, op is absent ("") or 1..op_cap-1 identifier characters, and
 * nothing else follows; id and op are NUL-terminated copies.
 */
bool kms_http_split_path(const char *path, const char *prefix, char *id, size_t id_cap,
                         char *op, size_t op_cap);

/* Registers every KMS route on server (h must outlive it). */
luna_err kms_http_register(kms_http *h, luna_http_server *server) LUNA_MUST_CHECK;

#endif
