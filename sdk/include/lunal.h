/*
 * lunal.h - the Lunal C client SDK: one call sends data to a job inside an
 * attested TEE and returns the verified result (docs/sdk.md is the manual).
 *
 *     luna_client *c = luna_client_new(&(luna_client_opts){
 *             .tenant_id = "acme", .api_key = getenv("LUNAL_API_KEY") });
 *     luna_result *r = luna_request(c, "summarize", data, len);
 *     if (r != NULL && r->err == LUNA_OK) use(r->data, r->len);
 *     luna_result_free(r);
 *     luna_client_free(c);
 *
 * Behind luna_request: a token from the gateway (POST /v1/auth/token), a
 * TEE chosen by the gateway (POST /v1/tees/select), the TEE's evidence
 * verified HERE with the shared verifier (vendor root, developer-signed
 * manifest checked against the developer key pinned in this client's
 * configuration, measurement equal to the manifest's mr_enclave, keys bound
 * in the evidence, bounded age), a one-time key from the KMS opened with
 * the client's X25519 key, the double envelope, and the signed result
 * checked against the request id, job, TEE keys and measurement.  Nothing
 * the attestation service says is taken as a reference value.
 *
 * What this client trusts: the gateway's TLS certificate (system store, or
 * ca_file), the vendor roots it ships for hardware evidence, the simulated
 * vendor root ONLY when development mode is on, and per deployment the
 * developer key pinned in its configuration.  Without a pinned developer
 * key for a deployment every TEE of it is refused.
 *
 * Errors: every fallible call returns a luna_err (luna/err.h; codes are
 * stable) and a reason in words that never carries a secret:
 *   LUNA_ERR_UNAUTHENTICATED  the gateway/IAM refused the credentials
 *   LUNA_ERR_PERMISSION       authenticated but not allowed (IAM, KMS)
 *   LUNA_ERR_VERIFY           attestation, manifest or result refused
 *   LUNA_ERR_UNAVAILABLE      no TEE could serve (after the retries)
 *   LUNA_ERR_TLS / LUNA_ERR_IO  transport; LUNA_ERR_TIMEOUT  deadline
 *   LUNA_ERR_CONFIG           bad options, config file or key file
 *   LUNA_ERR_FORMAT           the platform answered something malformed
 *
 * Thread safety: a luna_client may be shared by any number of threads;
 * luna_request and the other calls taking a client run concurrently (the
 * token cache and connection cache are locked; each call uses its own
 * HTTP handle and keys).  luna_client_free must not race with other calls.
 * Results belong to the caller and are not shared.  The library never
 * prints or logs; the client private key lives in a locked, undumpable
 * buffer wiped on luna_client_free, and one-time keys are wiped after use.
 */
#ifndef LUNAL_H
#define LUNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LUNAL_SDK_VERSION "0.1.0"
#define LUNAL_REASON_MAX 256
#define LUNAL_ID_MAX 64          /* tenant, job, TEE, request and deployment ids */
#define LUNAL_MAX_PINNED 32      /* pinned developer keys per client */
#define LUNAL_MAX_RESULT (64u * 1024u * 1024u)

/* One deployment's developer as the client pins it (DESIGN.md 3a). */
typedef struct luna_pinned_developer {
    const char *deployment_id; /* e.g. "demo" */
    const char *developer_id;  /* e.g. "dev_29fja92" */
    /* The developer's Ed25519 public key: 64 hex characters or 43
       base64url characters (32 bytes). */
    const char *public_key;
} luna_pinned_developer;

/*
 * Options.  Every pointer is borrowed only during luna_client_new (strings
 * are copied).  A NULL/zero member falls back, in this order, to the
 * environment (LUNAL_TENANT, LUNAL_API_KEY, LUNAL_GATEWAY_URL,
 * LUNAL_CLIENT_KEY_FILE, LUNAL_CA_FILE, LUNAL_DEV=1) and then to the
 * client config file (config_file, else $LUNAL_CONFIG; docs/sdk.md).
 */
typedef struct luna_client_opts {
    const char *tenant_id;       /* required (here, env or config) */
    const char *api_key;         /* optional: anonymous when absent */
    const char *gateway_url;     /* default https://127.0.0.1:8443 */
    /* X25519 private key registered with IAM (`lunal client register`):
       a file of exactly 32 raw bytes, or PEM "PRIVATE KEY" (PKCS#8
       X25519).  Mode must not grant group/other access.  Absent: an
       ephemeral key per client (anonymous tenants only). */
    const char *client_key_file;
    const char *ca_file;         /* PEM anchors for the gateway's TLS; NULL = system store */
    const char *config_file;     /* client config JSON; NULL = $LUNAL_CONFIG or none */
    bool development;            /* trust the SIMULATED vendor root (never in production) */
    const char *sim_root_file;   /* PEM of the sim vendor root (development only) */
    const char *sim_tcb_file;    /* signed sim TCB status document (development only) */
    const char *vendor_roots_dir;/* hardware vendor roots; default: the installed ones */
    const luna_pinned_developer *developers;
    size_t n_developers;         /* <= LUNAL_MAX_PINNED */
    const char *default_deployment; /* deployment_id asked for at TEE selection */
    unsigned timeout_ms;         /* per HTTP call; also bounds the retry waits of
                                    one request; default 30000 */
    unsigned max_attempts;       /* TEEs tried per request; default 3, max 8 */
    unsigned max_evidence_age;   /* seconds; default 900, max 86400 */
} luna_client_opts;

typedef struct luna_client luna_client;

/*
 * Creates a client (loads keys, config and trust settings; no network).
 * luna_client_create returns the error and, when why is not NULL, a reason
 * (LUNAL_REASON_MAX bytes).  luna_client_new is the short form: NULL on any
 * error.
 */
luna_err luna_client_create(const luna_client_opts *opts, luna_client **out,
                            char *why) LUNA_MUST_CHECK;
luna_client *luna_client_new(const luna_client_opts *opts);
/* Wipes the keys and frees; NULL is a no-op. */
void luna_client_free(luna_client *c);

/* What the signed receipt of a result says, after it was checked. */
typedef struct luna_receipt_info {
    char tenant[LUNAL_ID_MAX + 1];
    char job[LUNAL_ID_MAX + 1];
    char tee_id[LUNAL_ID_MAX + 1];
    char request_id[LUNAL_ID_MAX + 1];
    char deployment_id[LUNAL_ID_MAX + 1];
    char measurement_hex[129];   /* the TEE's mr_enclave as verified */
    char tee_sign_pk_hex[65];    /* the attested key that signed the receipt */
    char result_sha256_hex[65];
    bool simulated;              /* the TEE was a SIMULATED one (development) */
} luna_receipt_info;

/*
 * A request's outcome.  err == LUNA_OK: data/len is the verified result
 * (len may be 0; data is then a valid pointer) and receipt is filled.
 * Otherwise err and reason say what failed; data is NULL.
 */
typedef struct luna_result {
    luna_err err;
    char reason[LUNAL_REASON_MAX];
    uint8_t *data;
    size_t len;
    luna_receipt_info receipt;
    unsigned attempts;           /* TEEs tried */
    char idempotency_key[LUNAL_ID_MAX + 1];
} luna_result;

/*
 * Runs job on data[0..len) (len <= LUNAL_MAX_RESULT) in an attested TEE.
 * Always returns a result (its err says how it went), or NULL only when
 * the result itself cannot be allocated.  Free with luna_result_free.
 * Retries on another TEE (new request id, same idempotency key) when the
 * gateway says the TEE is unavailable.
 */
luna_result *luna_request(luna_client *c, const char *job, const void *data, size_t len);
/* Same, for a given deployment (NULL: the client's default). */
luna_result *luna_request_deployment(luna_client *c, const char *deployment_id, const char *job,
                                     const void *data, size_t len);
/* Wipes and frees; NULL is a no-op. */
void luna_result_free(luna_result *r);

/* ---- independent attestation verification (`lunal attestation verify`) ---- */

typedef enum luna_check {
    LUNA_CHECK_NOT_DONE = 0,
    LUNA_CHECK_PASS = 1,
    LUNA_CHECK_FAIL = 2,
} luna_check;

/*
 * An attestation report (DESIGN.md section 6) as this client verified it.
 * Values are what the client itself established from the evidence and the
 * pinned-key manifest; where the attestation service's report says
 * something else the matching check fails and the reason says so.
 */
typedef struct luna_attestation_report {
    bool verified;               /* every check passed */
    char reason[LUNAL_REASON_MAX]; /* first failure in words, "" when verified */
    char status[32];             /* the service's status ("verified", ...) */
    char attestation_id[LUNAL_ID_MAX + 1];
    char timestamp[40];          /* the service's, RFC 3339 */
    char verified_at[40];        /* when this client verified, "YYYY-MM-DD HH:MM:SS UTC" */
    char deployment_id[LUNAL_ID_MAX + 1];
    char tee_id[LUNAL_ID_MAX + 1];
    char evidence_type[16];      /* "sim", "sev-snp", ... */
    bool simulated;
    char build_hash[80];         /* "sha256:<hex>" */
    char mr_enclave[129];        /* hex */
    char mr_signer[129];
    char developer_id[LUNAL_ID_MAX + 1];
    char developer_name[LUNAL_ID_MAX + 1]; /* "" when unknown */
    char key_id[48];             /* "4f:23:...:0a" */
    bool signature_valid;        /* manifest signature under the pinned key */
    char tcb_status[32];         /* "up_to_date", "out_of_date", ... */
    char qe_identity_status[32]; /* "valid", "not_applicable", ... */
    bool debug;
    /* Each check, one per line of the human report.  A field the service
       reports differently from what the client established fails its
       check (the line shows the service's value, the reason both). */
    luna_check check_service;    /* the service's status is "verified" */
    luna_check check_registry;   /* registry status "active" */
    luna_check check_manifest;   /* manifest signed by the pinned developer key; the
                                    service's developer_id/key_id/signature_valid agree */
    luna_check check_platform;   /* vendor chain, evidence signature, TCB, debug, age,
                                    keys bound; the service's tcb/qe status agree */
    luna_check check_measurement;/* evidence mr_enclave == manifest == service's */
    luna_check check_signer;     /* evidence mr_signer == manifest == service's */
    luna_check check_build_hash; /* manifest build_hash == service's */
    char registry_status[32];    /* "active", "quarantined", ... as reported */
} luna_attestation_report;

/*
 * Asks the platform for deployment_id's attestation (of TEE tee_id, or
 * of any of its TEEs when NULL) (POST
 * /v1/attestation/verify through the gateway) and verifies it here.
 * LUNA_OK when the exchange worked, whatever the verdict (read
 * report->verified); LUNA_ERR_* for transport, authentication or a
 * malformed answer.  *raw_json (may be NULL) gets the service's answer
 * as received (caller frees with free()).
 */
luna_err luna_attestation_verify(luna_client *c, const char *deployment_id, const char *tee_id,
                                 luna_attestation_report *report, char **raw_json,
                                 char *why) LUNA_MUST_CHECK;

/*
 * A plain authenticated call to the platform API through the gateway, for
 * the CLI's administrative commands: method "GET"/"POST"/"DELETE", path
 * starting with "/v1/", body JSON (NULL for none).  *status gets the HTTP
 * status, *answer (caller frees) the body, NUL-terminated, at most 16 MiB.
 * LUNA_OK whenever an answer came back (check *status).
 */
luna_err luna_client_call(luna_client *c, const char *method, const char *path, const char *body,
                          long *status, char **answer, size_t *answer_len,
                          char *why) LUNA_MUST_CHECK;

/*
 * Developer side of `lunal deployment sign`: signs the deployment described
 * by the JSON file spec_path ({"name","version","jobs":[...],"build_hash"
 * (64 hex, or "sha256:<hex>"),"mr_enclave" (64 or 96 hex),"developer_id"})
 * with the Ed25519 seed in key_path (32 raw bytes or 64 hex characters;
 * the file must be private to its owner).  *jws (caller frees) is the
 * signed manifest (docs/manifest.md); *key_id (48 bytes, may be NULL) its
 * key fingerprint.  No network; the seed is wiped after use.
 */
luna_err luna_deployment_sign(const char *spec_path, const char *key_path, char **jws,
                              char *key_id, char *why) LUNA_MUST_CHECK;

/* ---- audit log verification (`lunal audit verify|proof|tail`) ---- */

#define LUNAL_AUDIT_MAX_ENTRIES 16   /* entries proved per call */
#define LUNAL_AUDIT_DEFAULT_ENTRIES 3

/*
 * Every pointer is borrowed for the call.  log_key, witness_key and
 * state_file fall back to the environment (LUNAL_AUDIT_LOG_KEY,
 * LUNAL_AUDIT_WITNESS_KEY, LUNAL_AUDIT_STATE) and then to the client
 * config (audit_log_key, audit_witness_key, audit_state_file).  The keys
 * are C2SP vkeys ("<name>+<8 hex>+<base64>"); the log key's name is the
 * log's origin.
 */
typedef struct luna_audit_verify_opts {
    const char *log_key;        /* required (here, env or config) */
    const char *witness_key;    /* required unless no_witness */
    const char *state_file;     /* the kept checkpoint; required unless no_state */
    const uint64_t *entries;    /* indexes to prove; NULL/0 = a few the caller can read */
    size_t n_entries;           /* <= LUNAL_AUDIT_MAX_ENTRIES */
    bool full;                  /* also export every entry and recompute the root
                                   (needs an auditor with platform scope) */
    bool no_witness;            /* skip the second source (NOT recommended) */
    bool no_state;              /* neither read nor write the state file */
} luna_audit_verify_opts;

/* One entry whose inclusion was proved. */
typedef struct luna_audit_proved {
    uint64_t index;
    char leaf_hash_hex[65];
    char *entry_json;           /* the canonical entry bytes (owned by the report) */
    char *proof_json;           /* ["<hex>", ...] as checked (owned by the report) */
} luna_audit_proved;

typedef struct luna_audit_report {
    bool verified;              /* every check passed */
    char reason[LUNAL_REASON_MAX]; /* first failure in words, "" when verified */
    bool first_use;             /* no kept checkpoint: this one is trusted on first use */
    uint64_t kept_size;         /* the kept checkpoint's size (0: none) */
    uint64_t size;              /* the new checkpoint's size */
    char root_hex[65];
    char origin[LUNAL_REASON_MAX];
    bool witness_checked;       /* compared with the witness's cosigned checkpoint */
    uint64_t witness_size;      /* its size (0: the witness holds nothing yet) */
    bool full_checked;          /* every entry exported and the root recomputed */
    bool state_saved;           /* the state file now holds the new checkpoint */
    char *checkpoint;           /* the new signed checkpoint text (owned by the report) */
    size_t n_proved;
    luna_audit_proved proved[LUNAL_AUDIT_MAX_ENTRIES];
} luna_audit_report;

/*
 * `lunal audit verify`: fetches the witness's cosigned checkpoint and the
 * log's signed checkpoint through the gateway, checks the signature with
 * the pinned log key, proves the new checkpoint consistent with the one
 * kept in the state file (and with the witness's), proves the inclusion
 * of the chosen entries, optionally recomputes the whole tree, and only
 * then replaces the state file (atomically).  LUNA_OK when the exchange
 * worked whatever the verdict (read report->verified and ->reason, e.g.
 * "the log rewrote history between size 5 and 9" or "witness and log
 * disagree at size 7"); LUNA_ERR_CONFIG (missing key or state file),
 * LUNA_ERR_NOT_FOUND (an entry the caller cannot read), transport or
 * authentication errors otherwise, with why.  Free with
 * luna_audit_report_clear.
 */
luna_err luna_audit_verify(luna_client *c, const luna_audit_verify_opts *opts,
                           luna_audit_report *report, char *why) LUNA_MUST_CHECK;
/* Frees what a report owns and zeroes it; NULL is a no-op. */
void luna_audit_report_clear(luna_audit_report *report);

/* The tenant and gateway URL the client ended up with (owned by c). */
const char *luna_client_tenant(const luna_client *c);
const char *luna_client_gateway(const luna_client *c);
/* The client's X25519 public key as 64 hex characters into out[65]. */
void luna_client_public_key(const luna_client *c, char out[65]);

#ifdef __cplusplus
}
#endif

#endif
