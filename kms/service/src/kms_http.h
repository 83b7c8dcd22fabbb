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
#include "kms_verify.h"
#include "luna/http.h"
#include "luna/manifest.h"

#define KMS_MAX_CALLERS 16u

typedef struct kms_callers {
    const char *otk[KMS_MAX_CALLERS];      /* POST /v1/kms/otk (default the gateway) */
    size_t n_otk;
    const char *registry[KMS_MAX_CALLERS]; /* /v1/kms/tees* */
    size_t n_registry;
    const char *keys[KMS_MAX_CALLERS];     /* /v1/kms/keys* */
    size_t n_keys;
    const char *attestation;               /* the identity trusted without a token */
    const char *deployments[KMS_MAX_CALLERS]; /* POST /v1/kms/deployments */
    size_t n_deployments;
} kms_callers;

/* IAM as the KMS reaches it for developer keys (kms.iam); host NULL = none. */
typedef struct kms_iam_peer {
    const char *host;
    uint16_t port;
    const char *identity; /* IAM's exact mTLS identity */
    const char *ca, *cert, *key;
} kms_iam_peer;

typedef struct kms_http {
    kms_svc *svc;
    kms_callers callers;
    kms_iam_peer iam;
} kms_http;

/*
 * kms_deployments.c: POST /v1/kms/deployments (arg: the kms_http).  The
 * manifest is verified here against the developer key fetched from IAM
 * over the KMS's own mTLS client; the attestation service that relays it
 * is not trusted for any of it (docs/kms.md, "Registered deployments").
 */
void kms_deploy_http(luna_http_request *req, void *arg);

/*
 * kms_verify lookup (arg: the kms_svc): the references of a registered
 * deployment, from a row whose HSM MAC verified.  LUNA_ERR_NOT_FOUND when
 * none; LUNA_ERR_VERIFY when the row is edited, malformed or has no MAC
 * (written before migration 3): logged at error level with code
 * "deployment_row_tampered" and audited best-effort ("deployment.integrity").
 */
luna_err kms_deploy_lookup(void *arg, const char *deployment,
                           kms_verify_ref *out) LUNA_MUST_CHECK;

/*
 * The key id a manifest names in its header (untrusted; fuzzed by
 * fuzz/fuzz_kms_deploy.c): true only when the part before the first '.'
 * decodes to the exact canonical header of docs/manifest.md around a
 * well-formed key id, which is copied to kid (NUL-terminated).  Used only
 * to ask IAM for that key; the signature is checked against what IAM
 * answers.
 */
bool kms_deploy_peek_kid(const char *jws, char kid[LUNA_MANIFEST_KEY_ID_LEN + 1]);

/*
 * Orders manifest versions: dot-separated components, compared left to
 * right; two all-digit components numerically (up to 18 digits), else
 * bytewise; a version that is a prefix of the other is lower.  <0, 0, >0.
 */
int kms_deploy_version_cmp(const char *a, const char *b);

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
