/*
 * iam.h - private interfaces of the IAM service (luna-iam): identifiers,
 * API keys, roles, the signing key ring, tokens, storage and the HTTP API.
 * docs/iam.md is the manual; this header is the contract between the
 * iam/src files and the tests that link luna-iam-core.
 *
 * Never: a secret (API key, seed, master key, client private key) in a log
 * line, an error body or a database column in clear; a query without the
 * tenant; an access decision that is not a positive grant.
 *
 * Threading: everything runs on the one event-loop thread of the daemon
 * (or the one thread of a CLI command).  Nothing here locks.
 */
#ifndef LUNA_IAM_H
#define LUNA_IAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "luna/crypto.h"
#include "luna/err.h"
#include "luna/jws.h"
#include "luna/manifest.h"
#include "luna/secret.h"
#include "luna/store.h"

/* ---- identifiers ---- */

/* Tenant and principal ids: [a-z0-9_-]{1,64}, the lunal://client/ grammar. */
#define IAM_ID_MAX 64u
#define IAM_ID_BUF (IAM_ID_MAX + 1u)
/* The pseudo principal of anonymous requests; never a stored principal. */
#define IAM_ANONYMOUS "anonymous"
#define IAM_DISPLAY_NAME_MAX 128u
#define IAM_JOB_MAX 64u          /* job names: [A-Za-z0-9._-]{1,64} */
#define IAM_MAX_ANON_JOBS 64u    /* jobs listed in one anonymous policy */

/* True when s (NUL-terminated) is a well-formed tenant or principal id. */
bool iam_id_valid(const char *s);
/* True when s is a well-formed job name, or "*" (every job). */
bool iam_job_valid(const char *s);

/* ---- API keys ----
 * Text form, exactly IAM_APIKEY_LEN characters:
 *   "lak_" <16 lowercase hex: key id> "_" <43 base64url: 32 random bytes>
 * Stored: key id (lookup), a 16-byte random salt, and
 *   HMAC-SHA256(pepper, "luna-iam/api-key/v1" 0x00 || salt || key id || secret text)
 * where pepper is derived from the master key (iam_master_derive).
 */
#define IAM_APIKEY_PREFIX "lak_"
#define IAM_APIKEY_ID_HEX 16u
#define IAM_APIKEY_SECRET_B64 43u
#define IAM_APIKEY_LEN (4u + IAM_APIKEY_ID_HEX + 1u + IAM_APIKEY_SECRET_B64)
#define IAM_APIKEY_BUF (IAM_APIKEY_LEN + 1u)
#define IAM_APIKEY_ID_BUF (IAM_APIKEY_ID_HEX + 1u)
#define IAM_APIKEY_SALT_LEN 16u
#define IAM_APIKEY_HASH_LEN LUNA_SHA256_LEN
#define IAM_PEPPER_LEN 32u
/* HKDF info deriving the pepper from the master key. */
#define IAM_PEPPER_INFO "luna-iam/api-key-pepper/v1"

/*
 * Inside a transaction: a fresh key for (tenant, principal) valid from now
 * for ttl seconds, stored as salt + hash only.  The caller generated key
 * and key_id with iam_apikey_generate before the transaction (so a retry
 * stores the same key).
 */
luna_err iam_apikey_store(luna_store *db, const uint8_t pepper[IAM_PEPPER_LEN],
                          const char *tenant, const char *principal, const char *key,
                          int64_t now, int64_t ttl) LUNA_MUST_CHECK;

/*
 * Splits a presented key.  On LUNA_OK key_id holds the NUL-terminated id
 * and *secret points at the 43 secret characters inside key.
 * LUNA_ERR_FORMAT for anything but the exact grammar above.
 */
luna_err iam_apikey_parse(const char *key, size_t len, char key_id[IAM_APIKEY_ID_BUF],
                          const char **secret) LUNA_MUST_CHECK;
/* A fresh key (text into out, NUL-terminated) with its id. */
luna_err iam_apikey_generate(char out[IAM_APIKEY_BUF],
                             char key_id[IAM_APIKEY_ID_BUF]) LUNA_MUST_CHECK;
/* The stored hash of a secret (43 characters). */
luna_err iam_apikey_hash(const uint8_t pepper[IAM_PEPPER_LEN],
                         const uint8_t salt[IAM_APIKEY_SALT_LEN], const char *key_id,
                         const char *secret, uint8_t out[IAM_APIKEY_HASH_LEN]) LUNA_MUST_CHECK;
/*
 * Constant-time check of a presented secret against a stored hash: the
 * time depends on no byte of either.  LUNA_OK on a match, LUNA_ERR_VERIFY
 * otherwise.
 */
luna_err iam_apikey_check(const uint8_t pepper[IAM_PEPPER_LEN],
                          const uint8_t salt[IAM_APIKEY_SALT_LEN], const char *key_id,
                          const char *secret,
                          const uint8_t stored[IAM_APIKEY_HASH_LEN]) LUNA_MUST_CHECK;

/* ---- roles and permissions ---- */

typedef enum iam_role {
    IAM_ROLE_TENANT_ADMIN = 0,
    IAM_ROLE_KEY_ADMIN = 1,
    IAM_ROLE_OPERATOR = 2,
    IAM_ROLE_AUDITOR = 3,
    IAM_ROLE_DEVELOPER = 4,
    IAM_ROLE_CLIENT = 5,
    IAM_ROLE_PLATFORM_ADMIN = 6, /* granted by `luna-iam bootstrap` only */
    IAM_ROLE__COUNT
} iam_role;

typedef enum iam_perm {
    IAM_PERM_JOBS_RUN = 0,
    IAM_PERM_JOBS_READ,
    IAM_PERM_TEES_READ,
    IAM_PERM_TEES_MANAGE,
    IAM_PERM_KEYS_READ,
    IAM_PERM_KEYS_MANAGE,
    IAM_PERM_AUDIT_READ,
    IAM_PERM_ATTESTATION_READ,
    IAM_PERM_ATTESTATION_VERIFY,
    IAM_PERM_DEPLOYMENTS_READ,
    IAM_PERM_DEPLOYMENTS_REGISTER,
    IAM_PERM_IAM_READ,
    IAM_PERM_IAM_ADMIN,
    IAM_PERM_PLATFORM_ADMIN,
    IAM_PERM__COUNT
} iam_perm;

typedef uint32_t iam_roles; /* bit (1u << iam_role) */

/* Name <-> value; _from_name returns false for an unknown name. */
const char *iam_role_name(iam_role r);
bool iam_role_from_name(const char *name, iam_role *out);
const char *iam_perm_name(iam_perm p);
bool iam_perm_from_name(const char *name, iam_perm *out);
/* True only when one of roles grants p (deny by default). */
bool iam_roles_allow(iam_roles roles, iam_perm p);

/* ---- master key (0600 file, 32 random bytes) ---- */

#define IAM_MASTER_KEY_LEN 32u
/*
 * Reads the master key: a regular file (no symlink), owned by the
 * effective user, mode without any group/other bit, exactly 32 bytes.
 * LUNA_ERR_NOT_FOUND when absent, LUNA_ERR_PERMISSION for a bad mode or
 * owner, LUNA_ERR_FORMAT for a wrong size, LUNA_ERR_IO.
 */
luna_err iam_master_load(const char *path, luna_secret **out) LUNA_MUST_CHECK;
/* Creates a fresh one (O_EXCL, 0600); LUNA_ERR_CONFLICT when it exists. */
luna_err iam_master_create(const char *path) LUNA_MUST_CHECK;
/* HKDF-SHA256(master, info) into out (out_len <= 64). */
luna_err iam_master_derive(const luna_secret *master, const char *info, uint8_t *out,
                           size_t out_len) LUNA_MUST_CHECK;

/* ---- storage ---- */

luna_err iam_db_migrate(luna_store *db) LUNA_MUST_CHECK;

/* ---- signing keys and the ring ---- */

#define IAM_KID_MAX 32u
#define IAM_MAX_SIGNING_KEYS 8u
#define IAM_SEALED_SEED_LEN (LUNA_AEAD_NONCE_LEN + LUNA_ED25519_SEED_LEN + LUNA_AEAD_TAG_LEN)

typedef struct iam_signkey {
    char kid[IAM_KID_MAX + 1];
    luna_jws_signer *signer;
    int64_t created_at;
    int64_t activate_at;
    int64_t retire_at; /* 0: not scheduled */
} iam_signkey;

typedef struct iam_keyring {
    iam_signkey keys[IAM_MAX_SIGNING_KEYS];
    size_t n;
    luna_jws_keyset *published; /* every live key, active or not yet */
} iam_keyring;

/*
 * Adds a new signing key to the store: published at once, used for
 * signing from now + publish_delay; every older live key is scheduled to
 * retire at that time + token_ttl + skew (when its last token has
 * expired).  first_key: no other key is live, so the key is active at
 * once.  kid_out (may be NULL) receives the new kid.
 * LUNA_ERR_CONFLICT when IAM_MAX_SIGNING_KEYS - 1 keys are already live.
 */
luna_err iam_signing_rotate(luna_store *db, const luna_secret *master, int64_t now,
                            int64_t publish_delay, int64_t token_ttl, int64_t skew,
                            char kid_out[IAM_KID_MAX + 1]) LUNA_MUST_CHECK;
/*
 * Makes ring match the store's live keys at now (loads new ones, frees
 * retired ones, rebuilds the published set).  A row that does not open
 * (bad seal, public key mismatch) is skipped and logged by kid; the
 * others still load (LUNA_OK).  On error (storage, more than
 * IAM_MAX_SIGNING_KEYS live rows, live rows none of which opens) the ring
 * keeps its keys except those retired at now, which are always dropped.
 */
luna_err iam_keyring_refresh(iam_keyring *ring, luna_store *db, const luna_secret *master,
                             int64_t now) LUNA_MUST_CHECK;
/* The signing key to use at now (latest activated), or NULL. */
const iam_signkey *iam_keyring_current(const iam_keyring *ring, int64_t now);
void iam_keyring_clear(iam_keyring *ring);

/* ---- developer key fingerprint ----
 * key_id of a developer's Ed25519 key: exactly luna_manifest_key_id (the
 * first 16 bytes of SHA-256 of the raw public key as lowercase hex pairs
 * joined by ':'), so IAM and deployment manifests name a key the same way.
 */
#define IAM_DEV_KEY_ID_LEN LUNA_MANIFEST_KEY_ID_LEN
luna_err iam_developer_key_id(const uint8_t pk[LUNA_ED25519_PUB_LEN],
                              char out[IAM_DEV_KEY_ID_LEN + 1]) LUNA_MUST_CHECK;

/* ---- admin path ----
 * The part of a path after "/v1/iam/tenants/": 1..IAM_PATH_MAX_SEGS
 * segments, each [a-z0-9_-]{1,64}, separated by single '/', no trailing
 * '/'.  Segments are copied into seg[i] (NUL-terminated).
 */
#define IAM_PATH_MAX_SEGS 6u
typedef struct iam_path {
    size_t n;
    char seg[IAM_PATH_MAX_SEGS][IAM_ID_BUF];
} iam_path;
luna_err iam_path_parse(const char *s, iam_path *out) LUNA_MUST_CHECK;

/* ---- the service ---- */

typedef struct iam_settings {
    int64_t token_ttl;       /* seconds */
    int64_t skew;            /* verification skew and retire grace, seconds */
    int64_t publish_delay;   /* new signing key published this long before use */
    int64_t refresh_sec;     /* key ring reload period */
    int64_t api_key_default_ttl;
    int64_t api_key_max_ttl;
    const char *issuer;
    const char *audience;
} iam_settings;

/* Identity patterns (luna/http.h) allowed to call each group of routes. */
#define IAM_MAX_CALLERS 16u
typedef struct iam_callers {
    const char *list[IAM_MAX_CALLERS];
    size_t n;
} iam_callers;

typedef struct iam_route_callers {
    iam_callers authenticate; /* POST /v1/iam/authenticate */
    iam_callers authorize;    /* POST /v1/iam/authorize */
    iam_callers admin;        /* the admin API (bearer token as well) */
    iam_callers jwks;         /* GET /v1/iam/jwks */
    iam_callers devkeys;      /* GET /v1/iam/developer-keys/{key_id} (no token) */
} iam_route_callers;

typedef struct iam_service iam_service;
struct event_base;
struct luna_http_server;
struct luna_http_request;

/*
 * The service over an open, migrated store.  Takes ownership of db and
 * master (freed by iam_service_free, also on error).  Loads the signing
 * key ring, creating the first key when the store has none.
 */
luna_err iam_service_new(struct event_base *base, luna_store *db, luna_secret *master,
                         const iam_settings *set, iam_service **out) LUNA_MUST_CHECK;
/* Registers every route on srv; callers are copied by the server. */
luna_err iam_service_routes(iam_service *s, struct luna_http_server *srv,
                            const iam_route_callers *callers) LUNA_MUST_CHECK;
/*
 * iam_devkeys.c: GET /v1/iam/developer-keys/{key_id}, the public-key
 * lookup the attestation service and the KMS make before trusting a
 * deployment manifest (docs/iam.md).  arg is the service's luna_store.
 */
#define IAM_DEVKEYS_PREFIX "/v1/iam/developer-keys/"
void iam_devkeys_handle(struct luna_http_request *req, void *arg);
/* True when s is a key id as luna_manifest_key_id writes it. */
bool iam_devkey_id_valid(const char *s);

/* For the server's ready callback: a signing key is active. */
bool iam_service_ready(void *s);
void iam_service_free(iam_service *s);

/*
 * Creates tenant (display name, may be NULL = the id) with principal
 * admin_id (kind user) holding tenant-admin and platform-admin when
 * platform is true, or every tenant role (the tenant owner) otherwise, and an API key for it valid ttl seconds, written
 * into key_out.  platform: refused with LUNA_ERR_CONFLICT when any
 * platform admin exists already (the bootstrap rule).  LUNA_ERR_CONFLICT
 * also when the tenant exists.
 */
luna_err iam_tenant_create(luna_store *db, const luna_secret *master, const char *tenant,
                           const char *display, const char *admin_id, bool platform,
                           int64_t now, int64_t ttl, char key_out[IAM_APIKEY_BUF],
                           char key_id_out[IAM_APIKEY_ID_BUF]) LUNA_MUST_CHECK;
/*
 * Undoes a bootstrap whose key could not be handed out: deletes tenant
 * with every row of it, in one transaction, so bootstrap can run again.
 * Only a tenant exactly as iam_tenant_create left it (one principal,
 * admin_id, with one API key, key_id) is dropped; otherwise
 * LUNA_ERR_CONFLICT and nothing changes.
 */
luna_err iam_tenant_drop_bootstrap(luna_store *db, const char *tenant, const char *admin_id,
                                   const char *key_id) LUNA_MUST_CHECK;

#endif
