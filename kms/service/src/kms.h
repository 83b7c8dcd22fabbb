/*
 * kms.h - private interface of the network-facing KMS service (docs/kms.md).
 *
 * Owns: the service state shared by the HTTP layer, the registry, the
 * one-time key (OTK) exchange, the tenant key lifecycle and the rotation
 * worker.  Everything here runs on the one event-loop thread of the
 * process (the HTTP layer calls in synchronously), so nothing is locked;
 * several KMS processes may share one database, and every invariant that
 * must hold across them (single release, single-use nonces, key versions)
 * is enforced by the database inside a transaction, never by memory.
 *
 * Must never: hold a KEK or the root (only the HSM process does), keep a
 * plaintext OTK or data key past the call that needs it, cache key or TEE
 * state (a revoke must be seen at once by every instance), log or return a
 * key, a token or evidence bytes.
 */
#ifndef LUNA_KMS_H
#define LUNA_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "hsm_client.h"
#include "luna/audit_entry.h"
#include "luna/bytes.h"
#include "luna/err.h"
#include "luna/jws.h"
#include "luna/store.h"

#define KMS_COMPONENT "kms"
#define KMS_IDENTITY "lunal://svc/kms"

/* Identifier caps (all [A-Za-z0-9._-], as the audit entry grammar wants). */
#define KMS_ID_MAX 64u          /* tenant, TEE, key, job, deployment, request id */
#define KMS_OTK_ID_LEN 26u      /* "otk_" + 22 b64url chars (16 random bytes) */
#define KMS_MAX_TENANTS_PER_TEE 8u
#define KMS_TENANTS_MAX (KMS_MAX_TENANTS_PER_TEE * (KMS_ID_MAX + 1u))
#define KMS_MEAS_MAX 64u
#define KMS_KEY_LEN 32u
#define KMS_NONCE_LEN 32u
#define KMS_SEALED_OTK_LEN (32u + 32u + 16u) /* enc || ct(32) || tag */
#define KMS_OTK_KEY_ID "_otk" /* the tenant's internal key sealing its OTKs */
#define KMS_EVIDENCE_MAX (64u * 1024u)
#define KMS_LIST_MAX 1000u
#define KMS_TX_ATTEMPTS 10 /* serialization-failure retries of one transaction */

/* Why an operation was refused: a stable machine code and static text. */
typedef struct kms_why {
    int status;          /* HTTP status; 0 = derived from the luna_err */
    const char *code;    /* e.g. "tee_not_active"; NULL = luna_errname */
    const char *message; /* static text, never caller data */
} kms_why;

/* Sets *w (when not NULL) and returns err, for `return kms_fail(...)`. */
luna_err kms_fail(kms_why *w, luna_err err, int status, const char *code, const char *message);

typedef struct kms_settings {
    int64_t otk_ttl_sec;          /* OTK lifetime after issue */
    int64_t nonce_ttl_sec;        /* challenge nonce lifetime */
    int64_t report_max_age_sec;   /* attestation report iat age cap */
    int64_t rotation_tick_ms;     /* rotation worker period */
    int64_t otk_key_rotation_sec; /* rotation period of each tenant's _otk key */
    int64_t destroy_retention_sec;/* destroy takes effect after this */
    int64_t token_skew_sec;
    const char *iam_issuer;
    const char *iam_audience;
    const char *attestation_issuer;
} kms_settings;

/* ---- roles (IAM role names, docs/tokens.md / iam) ---- */
#define KMS_ROLE_CLIENT 0x01u
#define KMS_ROLE_KEY_ADMIN 0x02u
#define KMS_ROLE_OPERATOR 0x04u
#define KMS_ROLE_TENANT_ADMIN 0x08u
#define KMS_ROLE_PLATFORM_ADMIN 0x10u
#define KMS_ROLE_AUDITOR 0x20u
#define KMS_ROLE_DEVELOPER 0x40u

/* The verified caller of one request. */
typedef struct kms_caller {
    const char *identity;      /* mTLS identity (borrowed from the request) */
    const char *request_id;    /* borrowed */
    bool has_token;
    char tenant[KMS_ID_MAX + 1];
    char actor[LUNA_AUDIT_ID_MAX + 1]; /* token sub, else the identity */
    unsigned roles;
    json_t *claims;            /* owned; released by kms_caller_clear */
} kms_caller;

typedef struct kms_audit_sink kms_audit_sink;
typedef struct kms_verify kms_verify;

typedef struct kms_svc {
    luna_store *db;
    luna_hsm_client *hsm;
    luna_jws_keyset *iam_keys;
    luna_jws_keyset *att_keys;
    kms_verify *ver;
    kms_audit_sink *audit;
    kms_settings set;
    int64_t clock_offset; /* tests only (LUNA_TESTING): added to time() */
} kms_svc;

int64_t kms_now(const kms_svc *s);

/* ---- kms_util.c ---- */
bool kms_id_ok(const char *s, size_t max);
/* Length-prefixed field for MACs and AADs: u16 len || bytes. */
luna_err kms_put_lp(luna_wbuf *w, const void *p, size_t n) LUNA_MUST_CHECK;
luna_err kms_put_str(luna_wbuf *w, const char *s) LUNA_MUST_CHECK;
/* Maps a store / HSM error to the service's codes. */
luna_err kms_fail_store(kms_why *w, luna_err err);
luna_err kms_fail_hsm(kms_why *w, luna_err err);
/* A fresh "<prefix>" + b64url(16 random bytes) identifier. */
luna_err kms_new_id(const char *prefix, char *out, size_t cap) LUNA_MUST_CHECK;

/* ---- kms_rowmac.c: the HSM-MAC'd tables (kms_tees, kms_deployments) ---- */
/* Copies a TEXT column into dst (NUL-terminated); LUNA_ERR_FORMAT when
 * n >= cap.  A NULL column is LUNA_ERR_FORMAT too (store semantics). */
luna_err kms_row_text(const luna_store_rows *r, size_t col, char *dst,
                      size_t cap) LUNA_MUST_CHECK;
/* Copies a BLOB column (at most cap bytes) into dst, *len its length; a
 * NULL column is *len = 0 when nullable, else LUNA_ERR_FORMAT. */
luna_err kms_row_blob(const luna_store_rows *r, size_t col, uint8_t *dst, size_t cap,
                      size_t *len, bool nullable) LUNA_MUST_CHECK;
/* HMAC-SHA256 of a row's canonical bytes (1..LUNA_HSM_MAC_MSG_MAX, which
 * must start with the table's own domain label) under the HSM's registry
 * MAC key.  Errors are the HSM client's. */
luna_err kms_rowmac_seal(kms_svc *s, const uint8_t *row, size_t len,
                         uint8_t mac[LUNA_HSM_MAC_LEN]) LUNA_MUST_CHECK;
/* LUNA_OK when mac (mac_len bytes, may be NULL for a missing tag) is the
 * tag of row; LUNA_ERR_VERIFY when it is not (wrong length or missing
 * included); any other error is the HSM's (unavailable, ...). */
luna_err kms_rowmac_check(kms_svc *s, const uint8_t *row, size_t len, const uint8_t *mac,
                          size_t mac_len) LUNA_MUST_CHECK;

/* ---- kms_db.c ---- */
luna_err kms_db_migrate(luna_store *db) LUNA_MUST_CHECK;
/* BEGIN (SQLite: IMMEDIATE, waiting at most the busy timeout). */
luna_err kms_db_begin(luna_store *db) LUNA_MUST_CHECK;
/* true when err is worth retrying the whole transaction for. */
bool kms_db_retryable(const luna_store *db, luna_err err);
void kms_db_abort(luna_store *db);

/* ---- kms_auth.c ---- */
/*
 * Verifies "Bearer <token>" against IAM's key set (issuer, audience,
 * expiry) and fills the caller's tenant, actor and roles.
 */
luna_err kms_auth_token(kms_svc *s, const char *authorization, kms_caller *c,
                        kms_why *w) LUNA_MUST_CHECK;
void kms_caller_clear(kms_caller *c);
/* true when the token's "jobs" claim is absent or lists job. */
bool kms_caller_job_ok(const kms_caller *c, const char *job);

/* ---- kms_audit.c ---- */
/* Append-only JSON-lines file, fsync'ed per entry. */
luna_err kms_audit_open_file(const char *path, kms_audit_sink **out) LUNA_MUST_CHECK;
/* The audit service (POST /v1/audit/entries) over mTLS. */
luna_err kms_audit_open_http(const char *host, uint16_t port, const char *identity,
                             const char *ca, const char *cert, const char *key,
                             kms_audit_sink **out) LUNA_MUST_CHECK;
void kms_audit_free(kms_audit_sink *a);
/*
 * Writes one entry; LUNA_ERR_UNAVAILABLE when it could not be written (the
 * caller then fails the operation).  objects: NULL-terminated ids.
 */
luna_err kms_audit(kms_svc *s, const kms_caller *c, const char *op, const char *tenant,
                   const char *tee, const char *deployment, const char *const *objects,
                   luna_audit_outcome outcome, const char *reason) LUNA_MUST_CHECK;

/* For refusals: the operation already failed, so a lost entry is logged
 * (by kms_audit) and cannot change the outcome. */
void kms_audit_best_effort(kms_svc *s, const kms_caller *c, const char *op, const char *tenant,
                           const char *tee, const char *deployment, const char *const *objects,
                           luna_audit_outcome outcome, const char *reason);

/* ---- kms_registry.c ---- */
typedef enum kms_tee_status {
    KMS_TEE_PENDING = 1,
    KMS_TEE_ACTIVE = 2,
    KMS_TEE_QUARANTINED = 3,
    KMS_TEE_REVOKED = 4,
} kms_tee_status;
const char *kms_tee_status_name(kms_tee_status st);

typedef struct kms_tee {
    char tee_id[KMS_ID_MAX + 1];
    char tenants[KMS_TENANTS_MAX + 1]; /* comma-separated, as registered */
    char deployment[KMS_ID_MAX + 1];
    char tee_type[16];
    bool has_keys;
    uint8_t kx_pk[32];
    uint8_t sign_pk[32];
    uint8_t mr_enclave[KMS_MEAS_MAX];
    size_t mr_enclave_len;
    uint8_t mr_signer[KMS_MEAS_MAX];
    size_t mr_signer_len;
    kms_tee_status status;
    int64_t created_at;
    int64_t updated_at;
    int64_t row_version;
} kms_tee;

bool kms_tee_has_tenant(const kms_tee *t, const char *tenant);
/* Reads a row and checks its MAC: LUNA_ERR_NOT_FOUND, or LUNA_ERR_VERIFY
 * ("registry_integrity") for an edited row. */
luna_err kms_tee_load(kms_svc *s, const char *tee_id, kms_tee *out, kms_why *w) LUNA_MUST_CHECK;
luna_err kms_tee_register(kms_svc *s, const kms_caller *c, const kms_tee *in,
                          kms_why *w) LUNA_MUST_CHECK;
/* Status change (quarantine / revoke also revoke the TEE's OTKs). */
luna_err kms_tee_set_status(kms_svc *s, const kms_caller *c, const char *tee_id,
                            kms_tee_status to, const char *reason,
                            kms_why *w) LUNA_MUST_CHECK;
/* Activation: evidence re-verified here, keys taken from it.  nonce (32
   bytes or NULL): the one the evidence answered, which formats without a
   clock (TPM) need to bind the keys. */
luna_err kms_tee_activate(kms_svc *s, const kms_caller *c, const char *tee_id,
                          const char *ev_type, const uint8_t *ev, size_t ev_len,
                          const uint8_t kx_pk[32], const uint8_t sign_pk[32],
                          const uint8_t *nonce, kms_why *w) LUNA_MUST_CHECK;
json_t *kms_tee_to_json(const kms_tee *t);
/* The row as c may see it: an operator sees only its own tenant in the
 * tenant list (a shared TEE never reveals who else uses it). */
json_t *kms_tee_view(const kms_tee *t, const kms_caller *c);
/* All rows visible to the caller as a JSON array (new reference). */
luna_err kms_tee_list(kms_svc *s, const kms_caller *c, json_t **out,
                      kms_why *w) LUNA_MUST_CHECK;

/* ---- kms_keys.c ---- */
typedef struct kms_key_info {
    char tenant[KMS_ID_MAX + 1];
    char key_id[KMS_ID_MAX + 1];
    char state[24];
    int64_t current_version;
    int64_t min_decrypt_version;
    int64_t rotation_period_sec;
    int64_t next_rotation_at;
    int64_t created_at;
    int64_t updated_at;
    int64_t destroy_at;
} kms_key_info;
json_t *kms_key_to_json(const kms_key_info *k);

luna_err kms_key_create(kms_svc *s, const kms_caller *c, const char *key_id,
                        int64_t rotation_period_sec, kms_key_info *out,
                        kms_why *w) LUNA_MUST_CHECK;
luna_err kms_key_get(kms_svc *s, const char *tenant, const char *key_id, kms_key_info *out,
                     kms_why *w) LUNA_MUST_CHECK;
luna_err kms_key_list(kms_svc *s, const char *tenant, json_t **out, kms_why *w) LUNA_MUST_CHECK;
/* op: "rotate", "disable", "enable", "revoke", "destroy"; value: min version for "min_version". */
luna_err kms_key_op(kms_svc *s, const kms_caller *c, const char *key_id, const char *op,
                    int64_t value, kms_key_info *out, kms_why *w) LUNA_MUST_CHECK;
/* A new data key under the current version, sealed for storage and HPKE'd to recipient. */
luna_err kms_key_datakey(kms_svc *s, const kms_caller *c, const char *key_id,
                         const uint8_t recipient[32], int64_t *version,
                         uint8_t sealed[LUNA_HSM_SEALED_KEY_LEN],
                         uint8_t to_recipient[KMS_SEALED_OTK_LEN], kms_why *w) LUNA_MUST_CHECK;
luna_err kms_key_unwrap(kms_svc *s, const kms_caller *c, const char *key_id, int64_t version,
                        const uint8_t sealed[LUNA_HSM_SEALED_KEY_LEN],
                        const uint8_t recipient[32],
                        uint8_t to_recipient[KMS_SEALED_OTK_LEN], kms_why *w) LUNA_MUST_CHECK;
/*
 * The usable KEK of (tenant, key_id) for sealing: current version, key
 * enabled.  create_otk: make the tenant's internal OTK key when absent.
 */
luna_err kms_key_current_kek(kms_svc *s, const char *tenant, const char *key_id,
                             bool create_if_absent, int64_t *version,
                             uint8_t wrapped[LUNA_HSM_WRAPPED_LEN], kms_why *w) LUNA_MUST_CHECK;
/* A KEK version for opening: LUNA_ERR_PERMISSION below the minimum, revoked etc. */
luna_err kms_key_kek_for_open(kms_svc *s, const char *tenant, const char *key_id,
                              int64_t version, uint8_t wrapped[LUNA_HSM_WRAPPED_LEN],
                              kms_why *w) LUNA_MUST_CHECK;
/* One rotation worker pass: rotates every key due; destroys expired ones. */
luna_err kms_rotation_tick(kms_svc *s, unsigned *rotated) LUNA_MUST_CHECK;

/* ---- kms_otk.c ---- */
typedef struct kms_otk_issue_in {
    const char *tee_id;
    const char *job;
    const char *request_id;
    uint8_t client_pk[32];
} kms_otk_issue_in;

typedef struct kms_otk_issue_out {
    char otk_id[KMS_OTK_ID_LEN + 1];
    uint8_t sealed[KMS_SEALED_OTK_LEN];
    int64_t expires_at;
} kms_otk_issue_out;

luna_err kms_otk_issue(kms_svc *s, const kms_caller *c, const kms_otk_issue_in *in,
                       kms_otk_issue_out *out, kms_why *w) LUNA_MUST_CHECK;
luna_err kms_otk_challenge(kms_svc *s, const kms_caller *c, const char *tee_id,
                           const char *otk_id, uint8_t nonce[KMS_NONCE_LEN],
                           int64_t *expires_at, kms_why *w) LUNA_MUST_CHECK;

typedef struct kms_otk_release_in {
    const char *tee_id;
    const char *otk_id;
    uint8_t nonce[KMS_NONCE_LEN];
    const char *evidence_type;
    const uint8_t *evidence;
    size_t evidence_len;
    const char *report;
    size_t report_len;
} kms_otk_release_in;

typedef struct kms_otk_release_out {
    uint8_t sealed[KMS_SEALED_OTK_LEN];
    uint8_t client_pk[32];
    char tenant[KMS_ID_MAX + 1];
    char job[KMS_ID_MAX + 1];
    char request_id[KMS_ID_MAX + 1];
} kms_otk_release_out;

luna_err kms_otk_release(kms_svc *s, const kms_caller *c, const kms_otk_release_in *in,
                         kms_otk_release_out *out, kms_why *w) LUNA_MUST_CHECK;

/* HPKE base mode, X25519/HKDF-SHA256/AES-256-GCM: out = enc || ct || tag. */
luna_err kms_hpke_seal(const uint8_t pk[32], const uint8_t *info, size_t info_len,
                       const uint8_t key[KMS_KEY_LEN],
                       uint8_t out[KMS_SEALED_OTK_LEN]) LUNA_MUST_CHECK;

/* ---- privilege drop (kms_privdrop.c) ---- */

/*
 * kms.user as a passwd name or a decimal uid (its passwd gid when it has
 * an entry, else gid = uid).  LUNA_ERR_CONFIG when unknown or when the
 * uid or gid is 0.
 */
luna_err kms_user_resolve(const char *name, uid_t *uid, gid_t *gid) LUNA_MUST_CHECK;
/*
 * Switches real, effective and saved uid and gid to (uid, gid), drops
 * every supplementary group, checks nothing of root is left (setuid(0)
 * must fail), and re-hardens the process.  Needs root; irreversible.
 * Every thread of the process is switched (glibc).
 */
luna_err kms_drop_privileges(uid_t uid, gid_t gid) LUNA_MUST_CHECK;

#endif
