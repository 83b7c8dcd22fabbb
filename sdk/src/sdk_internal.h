/*
 * sdk_internal.h - what the SDK's own files share: the client object, the
 * HTTP helper over libcurl, the TEE verification core and the error
 * helper.  Never installed; the CLI and users see only lunal.h.
 */
#ifndef LUNA_SDK_INTERNAL_H
#define LUNA_SDK_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "lunal.h"
#include "luna/manifest.h"
#include "luna/secret.h"
#include "luna/verifier.h"

#define SDK_KEY_LEN 32
#define SDK_URL_MAX 512
#define SDK_PATH_MAX 4096
#define SDK_DEFAULT_GATEWAY "https://127.0.0.1:8443"
#define SDK_DEFAULT_TIMEOUT_MS 30000u
#define SDK_DEFAULT_ATTEMPTS 3u
#define SDK_MAX_ATTEMPTS 8u
#define SDK_DEFAULT_MAX_AGE 900u
#define SDK_MAX_JSON_ANSWER (1024u * 1024u)   /* JSON answers of the flow */
#define SDK_MAX_CALL_ANSWER (16u * 1024u * 1024u)
#define SDK_MAX_API_KEY 512u
#define SDK_MAX_TOKEN 8192u
#define SDK_MAX_COLLATERAL (64u * 1024u)
#define SDK_TOKEN_MARGIN 30 /* seconds before expiry a token is renewed */

typedef struct sdk_pin {
    char deployment_id[LUNAL_ID_MAX + 1];
    char developer_id[LUNAL_ID_MAX + 1];
    uint8_t pk[SDK_KEY_LEN];
    char *manifest; /* optional developer-signed manifest from the config (JWS) */
} sdk_pin;

/*
 * The services behind the gateway a client holds a token for; the names
 * are the keys of IAM's "downstream" answer (docs/protocol.md).
 */
typedef enum sdk_svc {
    SDK_SVC_KMS = 0,
    SDK_SVC_ATTESTATION = 1,
    SDK_SVC_AUDIT = 2,
    SDK_SVC_IAM = 3,
    SDK_SVC__COUNT
} sdk_svc;

struct luna_client {
    char tenant[LUNAL_ID_MAX + 1];
    char gateway[SDK_URL_MAX];
    char *ca_file;
    char default_deployment[LUNAL_ID_MAX + 1];
    luna_secret *api_key;   /* NULL: anonymous */
    luna_secret *client_sk; /* X25519, 32 bytes */
    uint8_t client_pk[SDK_KEY_LEN];
    bool ephemeral_key;
    bool development;
    X509 *sim_root;         /* development only */
    uint8_t *sim_tcb;       /* signed sim TCB status document */
    size_t sim_tcb_len;
    sdk_pin pins[LUNAL_MAX_PINNED];
    size_t n_pins;
    unsigned timeout_ms;
    unsigned max_attempts;
    unsigned max_age;
    /* Bearer token cache: the gateway token and, per downstream service,
       the token IAM minted for it (NULL: the principal has none). */
    pthread_mutex_t lock;
    char *token;
    size_t token_len;
    int64_t token_exp;
    char *down_token[SDK_SVC__COUNT];
    size_t down_len[SDK_SVC__COUNT];
    /* libcurl connection/DNS/TLS-session cache shared by every call. */
    void *share;
    pthread_mutex_t share_locks[8];
    /* Audit log verification (sdk_audit.c): pinned vkeys, state file. */
    char *audit_log_key;
    char *audit_witness_key;
    char *audit_state_file;
};

/* Writes a reason (never a secret) into why[LUNAL_REASON_MAX] when not NULL. */
void sdk_why(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- HTTP (sdk_http.c) ---- */
typedef struct sdk_http_req {
    const char *method;       /* "GET", "POST", "DELETE" */
    const char *path;         /* "/v1/..." */
    const char *content_type; /* NULL: no body */
    const uint8_t *body;
    size_t body_len;
    bool auth;                /* send the Bearer token */
    const char *api_key;      /* send "Authorization: ApiKey" (token call only) */
    const char *idempotency_key;
    const char *otk_id;       /* X-Lunal-Otk-Id */
    const char *request_id;   /* X-Request-Id */
    size_t max_answer;
} sdk_http_req;

typedef struct sdk_http_resp {
    long status;
    uint8_t *body;            /* NUL-terminated, owned */
    size_t len;
    char error_code[64];      /* "code" of a JSON error body, or "" */
    char error_message[160];
    unsigned retry_after;     /* seconds, 0 when absent */
} sdk_http_resp;

luna_err sdk_http_global_init(void) LUNA_MUST_CHECK;
luna_err sdk_http_share_new(luna_client *c) LUNA_MUST_CHECK;
void sdk_http_share_free(luna_client *c);
/* Transport errors map to LUNA_ERR_TLS/IO/TIMEOUT with why set; any HTTP
   status is LUNA_OK (the caller reads resp->status). */
luna_err sdk_http_do(luna_client *c, const sdk_http_req *rq, sdk_http_resp *resp,
                     char *why) LUNA_MUST_CHECK;
void sdk_http_resp_free(sdk_http_resp *r);
/* Maps a non-2xx answer to a luna_err with a reason. */
luna_err sdk_http_status_err(const sdk_http_resp *r, const char *what, char *why);

/* ---- the bearer token (sdk_request.c) ---- */
luna_err sdk_token_ensure(luna_client *c, char *why) LUNA_MUST_CHECK;
/*
 * The downstream service whose token goes with a request to the gateway
 * path (query string ignored), or -1 when the route is the gateway's own.
 * The table (docs/protocol.md "Token audiences"): /v1/otk, /v1/keys...,
 * /v1/tees... (selection included: the gateway reads the registry with
 * it), /v1/deployments... -> kms; below /v1/attestation/ -> attestation; below /v1/audit/ ->
 * audit; /v1/tenants..., /v1/apikeys..., /v1/clients...,
 * /v1/principals... -> iam.
 */
int sdk_downstream_for(const char *path);
/*
 * The same for one request: POST /v1/deployments (registration) goes to
 * the attestation service, so it carries the attestation token; every
 * other request as sdk_downstream_for(path).  -1 when none.
 */
int sdk_downstream_for_request(const char *method, const char *path);
/* The short name of a service ("kms", ...), the key in IAM's answer. */
const char *sdk_svc_name(sdk_svc s);
/*
 * Takes the answer of POST /v1/auth/token (untrusted: fuzzed by
 * fuzz_sdk_token): "token" must be 1..SDK_MAX_TOKEN visible ASCII;
 * "downstream", when present, an object whose members named in the route
 * table must be such strings too (other names are ignored).  On success
 * replaces every cached token at once (under c->lock), valid until
 * "expires_at" (now + 60 when absent or past).  LUNA_ERR_FORMAT with why
 * set, or LUNA_ERR_NOMEM; the cache is then empty or unchanged.
 */
luna_err sdk_token_answer_apply(luna_client *c, const json_t *ans, int64_t now,
                                char *why) LUNA_MUST_CHECK;
/* Wipes and frees every cached token; the caller holds c->lock. */
void sdk_tokens_clear(luna_client *c);

/* ---- the pause between attempts (sdk_request.c, docs/sdk.md "Retries") ---- */
#define SDK_RETRY_AFTER_MAX_S 5u   /* the longest Retry-After honoured */
#define SDK_BACKOFF_BASE_MS 100u   /* jitter span of the first retry */
#define SDK_BACKOFF_MAX_MS 2000u   /* jitter span cap (doubles per retry) */
/*
 * The wait before retry number `retry` (0: the first) after a retryable
 * answer with HTTP `status` and `retry_after` seconds (0: no header):
 * min(retry_after, SDK_RETRY_AFTER_MAX_S) s, plus a jitter of b/2 + rnd
 * mod (b/2 + 1) ms where b = min(SDK_BACKOFF_BASE_MS << retry,
 * SDK_BACKOFF_MAX_MS).  So never sooner than the platform asked (up to the
 * cap) and never two clients in lockstep.  Returns false (no retry) for a
 * 429 whose Retry-After passes the cap: the limit will not lift in time.
 * Pure: rnd is the caller's randomness.
 */
bool sdk_retry_wait_ms(long status, unsigned retry_after, unsigned retry, uint32_t rnd,
                       unsigned *wait_ms);

/* ---- answers: parsed leniently (unknown fields ignored), typed access ---- */
luna_err sdk_json_load(const uint8_t *body, size_t len, json_t **out, char *why) LUNA_MUST_CHECK;
/* Copies a string member (dotted path) into out[cap]; FORMAT when too long. */
luna_err sdk_json_str(const json_t *o, const char *name, char *out, size_t cap) LUNA_MUST_CHECK;

/* ---- audit log settings (sdk_audit.c) ---- */
/* Reads audit_log_key / audit_witness_key / audit_state_file from the
   environment (LUNAL_AUDIT_LOG_KEY, LUNAL_AUDIT_WITNESS_KEY,
   LUNAL_AUDIT_STATE) or the config; all optional. */
luna_err sdk_audit_configure(luna_client *c, const json_t *cfg, const char *dir,
                             char *why) LUNA_MUST_CHECK;
void sdk_audit_free(luna_client *c);

/* ---- TEE verification (sdk_verify.c) ---- */
const sdk_pin *sdk_pin_find(const luna_client *c, const char *deployment_id);

typedef struct sdk_tee_input {
    const char *deployment_id;
    const char *tee_id;
    const char *manifest;     /* JWS */
    size_t manifest_len;
    const char *evidence_type;
    const uint8_t *evidence;
    size_t evidence_len;
    const uint8_t *tee_kx_pk;   /* keys the client will use; must be the bound ones */
    const uint8_t *tee_sign_pk;
    /* Signed TCB collateral that came with the answer (NULL: the client's
       own from its config); its signature is checked against the root. */
    const uint8_t *collateral;
    size_t collateral_len;
    int64_t now;               /* 0: clock */
} sdk_tee_input;

typedef struct sdk_tee_verdict {
    luna_manifest manifest;
    bool manifest_ok;
    luna_verify_result vr;     /* the verifier's verdict and claims */
    bool evidence_ok;
} sdk_tee_verdict;

/*
 * The client's own appraisal of a TEE: pinned developer key -> manifest,
 * manifest -> reference measurement and signer, vendor root -> evidence,
 * keys bound, bounded age.  LUNA_OK only when everything passed;
 * LUNA_ERR_VERIFY with why in words otherwise.  v (may be NULL) gets the
 * details for reports.
 */
luna_err sdk_verify_tee(const luna_client *c, const sdk_tee_input *in, sdk_tee_verdict *v,
                        char *why) LUNA_MUST_CHECK;

/*
 * Fills report from the attestation service's answer (JSON) and the
 * client's own checks of the evidence and manifest it carries (or the
 * manifest pinned in the config).  Never fails on a refusal: the verdict
 * is in report.  LUNA_ERR_FORMAT when the answer lacks the section-6 shape.
 */
luna_err sdk_attestation_evaluate(const luna_client *c, const char *deployment_id,
                                  const json_t *answer, int64_t now,
                                  luna_attestation_report *report) LUNA_MUST_CHECK;

#endif
