/*
 * att.h - private seams of the attestation service (luna-attestation):
 * settings, the per-thread worker context, the attestation engine, the
 * history store, the peers (KMS registry, TEEs, audit, alert webhook) and
 * the HTTP API.  docs/attestation.md is the manual.
 *
 * Must never: include luna/config.h and luna/verifier.h in the same file
 * (both define LUNA_PROFILE_*), hand out a TEE certificate before the
 * evidence, the registry and the audit log all said yes, or report
 * simulated evidence as hardware protection.
 */
#ifndef LUNA_ATT_H
#define LUNA_ATT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "luna/err.h"
#include "luna/http.h"
#include "luna/jws.h"
#include "luna/pki.h"
#include "luna/store.h"

/* Our own view of the verifier's opaque handle (identical typedef). */
typedef struct luna_verifier luna_verifier;

#define ATT_COMPONENT "attestation"
#define ATT_IDENTITY "lunal://svc/attestation"
#define ATT_KMS_IDENTITY "lunal://svc/kms"
#define ATT_AUDIT_IDENTITY "lunal://svc/audit"
#define ATT_HOST_IDENTITY "lunal://svc/tee-host"
#define ATT_GATEWAY_IDENTITY "lunal://svc/gateway"

#define ATT_TEE_ID_MAX 64          /* pki tee-id grammar [a-z0-9_-]{1,64} */
#define ATT_DEPLOYMENT_MAX 64      /* [A-Za-z0-9._-] */
#define ATT_MAX_DEPLOYMENTS 64
#define ATT_MEASUREMENT_LEN 32     /* sim: 32; hardware backends later */
#define ATT_NONCE_LEN 32
#define ATT_KEY_LEN 32
#define ATT_ID_LEN 28              /* "att_" + 24 hex */
#define ATT_REASON_MAX 48
#define ATT_MSG_MAX 160
#define ATT_HOST_MAX 255
#define ATT_ADDRESS_MAX 280        /* "host:port" */
#define ATT_URL_MAX 512
#define ATT_DEV_ID_MAX 64
#define ATT_KEY_ID_MAX 128
#define ATT_BUILD_HASH_MAX 80      /* "sha256:" + 64 hex */
#define ATT_VERSION_MAX 32
#define ATT_MAX_ANCHORS 16
#define ATT_TPM_SIGNERS_MAX 8      /* enrolled AKs (LUNA_POLICY_MAX_SIGNERS) */
#define ATT_TPM_SIGNER_MAX 66      /* AK qualified name: nameAlg || digest */
#define ATT_EVIDENCE_MAX (64u * 1024u) /* = LUNA_VERIFY_EVIDENCE_MAX */
#define ATT_TLS_SPKI_MAX 512
#define ATT_HISTORY_PAGE_MAX 100
#define ATT_HISTORY_PAGE_DEFAULT 20
#define ATT_MAX_WORKERS 8
#define ATT_QUEUE_MAX 1024         /* queued jobs before new work is refused */
#define ATT_CHALLENGE_TTL 120      /* seconds an admission nonce lives */
#define ATT_TENANT_MAX 64          /* IAM / KMS tenant id [A-Za-z0-9._-]{1,64} */
#define ATT_TENANTS_MAX 8          /* tenants of one TEE (= the KMS's cap) */
/* The owning tenants as stored: comma-joined ids. */
#define ATT_TENANTS_TEXT_MAX (ATT_TENANTS_MAX * (ATT_TENANT_MAX + 1))

/* ---- settings (att_config.c) ---- */

typedef struct att_endpoint {
    char host[ATT_HOST_MAX + 1];
    uint16_t port;
} att_endpoint;

/* Reference values of one deployment, from the configured manifests. */
typedef struct att_deployment {
    char id[ATT_DEPLOYMENT_MAX + 1];
    char version[ATT_VERSION_MAX + 1];
    uint8_t mr_enclave[ATT_MEASUREMENT_LEN];
    uint8_t mr_signer[ATT_MEASUREMENT_LEN];
    char build_hash[ATT_BUILD_HASH_MAX + 1];
    char developer_id[ATT_DEV_ID_MAX + 1];
    char developer_name[ATT_DEV_ID_MAX + 1]; /* display name, "" when not configured */
    char key_id[ATT_KEY_ID_MAX + 1];
} att_deployment;

/* Every string points into the loaded config (or is a fixed array here). */
typedef struct att_settings {
    bool production;
    const char *listen_address;
    uint16_t listen_port;
    const char *tls_cert;
    const char *tls_key;
    const char *tls_ca;
    const char *storage_url;
    bool allow_sim;
    /* Type "tpm" (docs/tpm-live.md): the AK enrolment CA (PEM, the only
       TPM anchor), the AK certificates + CRL (LHC1 bundle) and the AK
       qualified names allowed as signers for every deployment. */
    bool allow_tpm;
    const char *tpm_ak_ca;
    const char *tpm_collateral;
    size_t n_tpm_signers;
    uint8_t tpm_signers[ATT_TPM_SIGNERS_MAX][ATT_TPM_SIGNER_MAX];
    size_t tpm_signer_len[ATT_TPM_SIGNERS_MAX];
    size_t n_anchors;
    const char *anchors[ATT_MAX_ANCHORS];
    uint32_t min_tcb_level;
    const char *sim_collateral;  /* path of the sim TCB status document */
    uint32_t interval;           /* re-attestation period, seconds */
    uint32_t grace;              /* missing evidence tolerated this long */
    uint32_t report_lifetime;    /* <= 2 * interval */
    uint32_t max_evidence_age;
    uint32_t workers;
    uint32_t watchdog;           /* a job busy longer than this = hung worker */
    uint32_t http_timeout;
    uint32_t tee_cert_hours;
    att_endpoint kms;
    att_endpoint audit;
    att_endpoint iam;            /* host "" = none: registration answers 503 */
    char webhook_url[ATT_URL_MAX + 1]; /* "" = no webhook */
    const char *report_key;      /* Ed25519 seed file (created when absent) */
    char report_kid[ATT_KEY_ID_MAX + 1];
    const char *tee_ca_dir;      /* the TEE CA (created when absent) */
    const char *tee_ca_pass;     /* passphrase file, or NULL: environment */
    const char *iam_jwks;        /* IAM's public keys (operator tokens) */
    const char *token_audience;  /* "aud" of operator tokens: LUNA_AUD_ATTESTATION */
    size_t n_deployments;
    att_deployment deployments[ATT_MAX_DEPLOYMENTS];
} att_settings;

typedef struct att_config att_config;
/* Loads and checks path; on failure prints nothing and fills msg. */
luna_err att_config_load(const char *path, att_config **out, char *msg,
                         size_t msg_cap) LUNA_MUST_CHECK;
const att_settings *att_config_settings(const att_config *c);
void att_config_free(att_config *c);
/* The deployment of id, or NULL. */
const att_deployment *att_settings_deployment(const att_settings *s, const char *id);

/* ---- verifier (att_policy.c) ---- */

/* Builds the appraisal policy from the settings and loads the collateral. */
luna_err att_policy_build(const att_settings *s, luna_verifier **out, char *msg,
                          size_t msg_cap) LUNA_MUST_CHECK;
/* Re-reads the sim collateral file (a newer document replaces the old). */
luna_err att_policy_refresh(const att_settings *s, luna_verifier *v) LUNA_MUST_CHECK;
void att_policy_free(luna_verifier *v);

/* What the engine keeps of authenticated claims. */
typedef struct att_claims {
    int evidence_type;              /* luna_evidence_type */
    char evidence_type_name[16];
    bool simulated;
    uint8_t measurement[64];
    size_t measurement_len;
    uint8_t signer[64];
    size_t signer_len;
    uint8_t tee_kx[ATT_KEY_LEN];
    bool has_tee_sign;
    uint8_t tee_sign[ATT_KEY_LEN];
    bool debug;
    uint32_t tcb_level;
    char tcb_status[32];
    char qe_status[32];
    bool has_memory_digest;
    uint8_t memory_digest[32];
    uint8_t report_data[64];
    int64_t timestamp;
} att_claims;

typedef struct att_appraisal {
    bool ok;
    char reason[ATT_REASON_MAX]; /* luna_verify_reason_name() */
    char message[ATT_MSG_MAX];
    att_claims claims;           /* complete only when ok */
} att_appraisal;

/* "sim" etc. -> type number, 0 when unknown. */
int att_evidence_type_parse(const char *name);
/*
 * Appraises evidence for deployment with the expected verifier nonce.
 * LUNA_OK with a->ok telling the verdict; an error only for a broken call.
 */
luna_err att_appraise(luna_verifier *v, int type, const uint8_t *ev, size_t ev_len,
                      const char *deployment, const uint8_t nonce[ATT_NONCE_LEN], int64_t now,
                      att_appraisal *a) LUNA_MUST_CHECK;

/* ---- history and state store (att_db.c) ---- */

typedef enum att_tee_state {
    ATT_TEE_ACTIVE = 1,
    ATT_TEE_QUARANTINED = 2,
    ATT_TEE_REVOKED = 3,
} att_tee_state;
const char *att_tee_state_name(att_tee_state s);

typedef struct att_tee {
    char tee_id[ATT_TEE_ID_MAX + 1];
    char deployment_id[ATT_DEPLOYMENT_MAX + 1];
    char address[ATT_ADDRESS_MAX + 1];
    att_tee_state state;
    uint8_t measurement[64];
    size_t measurement_len;
    int64_t admitted_at;
    int64_t last_ok;      /* last successful attestation */
    int64_t updated_at;
    char state_reason[ATT_REASON_MAX];
} att_tee;

/* One stored result: the row of the history. */
typedef struct att_record {
    char att_id[ATT_ID_LEN + 1];
    char tee_id[ATT_TEE_ID_MAX + 1];
    char deployment_id[ATT_DEPLOYMENT_MAX + 1];
    const char *kind;     /* "admit", "verify", "reattest", "reinstate" */
    int64_t created_at;
    const char *status;   /* "verified", "refused", "unavailable" */
    const char *reason;
    const uint8_t *evidence;
    size_t evidence_len;
    const char *report;   /* JWS or NULL */
    const char *body;     /* the answer JSON */
    /* The owning tenants (comma-joined ids) named by the KMS registry in
       this round, or NULL when the registry was not read this round: then
       those of the TEE's newest attributed row (docs/attestation.md
       "History").  "" attributes the row to no tenant. */
    const char *tenants;
} att_record;

luna_err att_db_open(const char *url, luna_store **out) LUNA_MUST_CHECK;
luna_err att_db_put_record(luna_store *db, const att_record *r) LUNA_MUST_CHECK;
/*
 * Appends records as JSON objects to items; *next_cursor 0 when no more.
 * tenant: only rows attributed to that tenant; NULL: every row (the
 * platform admin only - the caller decides who that is).
 */
luna_err att_db_history(luna_store *db, const char *tenant, const char *column,
                        const char *value, int64_t after, size_t limit, json_t *items,
                        int64_t *next_cursor) LUNA_MUST_CHECK;
luna_err att_db_get_tee(luna_store *db, const char *tee_id, att_tee *out) LUNA_MUST_CHECK;
luna_err att_db_put_tee(luna_store *db, const att_tee *t) LUNA_MUST_CHECK;
/* Moves a TEE from one state to another; LUNA_ERR_CONFLICT when it was not in from. */
luna_err att_db_set_state(luna_store *db, const char *tee_id, att_tee_state from,
                          att_tee_state to, const char *reason, int64_t now) LUNA_MUST_CHECK;
luna_err att_db_touch_ok(luna_store *db, const char *tee_id, int64_t now) LUNA_MUST_CHECK;
/* Ids of every TEE in state (at most cap; *n the count). */
luna_err att_db_list_tees(luna_store *db, att_tee_state state, char (*ids)[ATT_TEE_ID_MAX + 1],
                          size_t cap, size_t *n) LUNA_MUST_CHECK;
/*
 * The newest verified record of tee_id that carries a report, as its
 * answer JSON with "evidence" (b64url) and "report" added, plus
 * "created_at".  LUNA_ERR_NOT_FOUND when there is none.  *out is the
 * caller's (json_decref).
 */
luna_err att_db_latest_report(luna_store *db, const char *tee_id, json_t **out) LUNA_MUST_CHECK;
/* Up to cap active TEEs of a deployment, most recently attested first
 * (*n of them; LUNA_ERR_NOT_FOUND when none). */
luna_err att_db_active_tees(luna_store *db, const char *deployment_id,
                            char (*ids)[ATT_TEE_ID_MAX + 1], size_t cap,
                            size_t *n) LUNA_MUST_CHECK;
/* The active TEE of a deployment attested most recently. */
luna_err att_db_pick_tee(luna_store *db, const char *deployment_id,
                         char tee_id[ATT_TEE_ID_MAX + 1]) LUNA_MUST_CHECK;
luna_err att_db_put_nonce(luna_store *db, const uint8_t nonce[ATT_NONCE_LEN], const char *tee_id,
                          int64_t expires_at) LUNA_MUST_CHECK;
/*
 * Consumes an admission nonce once: LUNA_OK the first time for that TEE
 * before it expires; LUNA_ERR_CONFLICT when already used (replay);
 * LUNA_ERR_NOT_FOUND when never issued (or for another TEE);
 * LUNA_ERR_EXPIRED when too old.
 */
luna_err att_db_take_nonce(luna_store *db, const uint8_t nonce[ATT_NONCE_LEN], const char *tee_id,
                           int64_t now) LUNA_MUST_CHECK;

/* ---- query strings (att_query.c): the one parser of untrusted query text ---- */

typedef struct att_history_query {
    char deployment_id[ATT_DEPLOYMENT_MAX + 1]; /* "" when absent */
    char tee_id[ATT_TEE_ID_MAX + 1];
    int64_t after;   /* cursor: records with a smaller id; 0 = from the newest */
    size_t limit;
} att_history_query;

/*
 * Parses "deployment_id=..&tee_id=..&after=..&limit=.." (q may be NULL).
 * Exactly one of deployment_id / tee_id; no other key, no repeated key, no
 * percent-encoding (identifiers never need it).  LUNA_ERR_FORMAT otherwise.
 */
luna_err att_query_parse(const char *q, att_history_query *out) LUNA_MUST_CHECK;
bool att_tee_id_ok(const char *s);
bool att_deployment_id_ok(const char *s);
bool att_tenant_id_ok(const char *s);

/* ---- peers (att_peers.c) ---- */

/* One developer key as IAM answers GET /v1/iam/developer-keys/{key_id}. */
typedef struct att_dev_key {
    char key_id[ATT_KEY_ID_MAX + 1];
    char tenant[ATT_TENANT_MAX + 1];
    char developer_id[ATT_DEV_ID_MAX + 1];
    char display_name[ATT_DEV_ID_MAX + 1]; /* "" when IAM's is longer */
    uint8_t public_key[ATT_KEY_LEN];
    bool revoked;
} att_dev_key;

typedef struct att_peers {
    const att_settings *s;
    char tee_ca_file[1024]; /* the TEE CA certificate, to reach TEEs */
} att_peers;

typedef struct att_registry_entry {
    char status[16];      /* "pending", "active", "quarantined", "revoked" */
    char deployment_id[ATT_DEPLOYMENT_MAX + 1];
    char address[ATT_ADDRESS_MAX + 1]; /* "" when the registry has none */
    char tenants[ATT_TENANTS_TEXT_MAX + 1]; /* comma-joined; "" when it names none */
} att_registry_entry;

/* GET /v1/kms/tees/{id}; LUNA_ERR_NOT_FOUND when unregistered. */
luna_err att_kms_get_tee(const att_peers *p, const char *tee_id,
                         att_registry_entry *out) LUNA_MUST_CHECK;
/* POST /v1/kms/tees/{id}/activate with the evidence (the KMS re-verifies)
   and the keys it binds, which the KMS records as the TEE's attested keys.
   nonce (ATT_NONCE_LEN, or NULL) is the one the evidence answered: formats
   without a clock (TPM) bind the keys through it alone. */
luna_err att_kms_activate(const att_peers *p, const char *tee_id, const char *evidence_type,
                          const uint8_t *ev, size_t ev_len, const uint8_t tee_kx[ATT_KEY_LEN],
                          const uint8_t tee_sign[ATT_KEY_LEN],
                          const uint8_t *nonce) LUNA_MUST_CHECK;
/* POST /v1/kms/tees/{id}/quarantine: status quarantined, every bound key revoked. */
luna_err att_kms_quarantine(const att_peers *p, const char *tee_id, const char *reason,
                            const char *att_id) LUNA_MUST_CHECK;
/* GET IAM /v1/iam/developer-keys/{key_id}: LUNA_ERR_NOT_FOUND when IAM
   does not know it, LUNA_ERR_UNAVAILABLE when IAM is not configured or
   not reachable, LUNA_ERR_FORMAT for an answer outside its schema. */
luna_err att_iam_developer_key(const att_peers *p, const char *key_id,
                               att_dev_key *out) LUNA_MUST_CHECK;
/* POST /v1/kms/deployments {"manifest"}: *status the KMS's HTTP status and
   code its error code ("" on success).  An error only when the KMS could
   not be asked (LUNA_ERR_UNAVAILABLE). */
luna_err att_kms_register_deployment(const att_peers *p, const char *manifest, int *status,
                                     char code[ATT_REASON_MAX]) LUNA_MUST_CHECK;
/* POST <address>/v1/tee/evidence {"nonce"}: *ev malloc'd. */
luna_err att_tee_evidence(const att_peers *p, const char *tee_id, const char *address,
                          const uint8_t nonce[ATT_NONCE_LEN], uint8_t **ev, size_t *ev_len,
                          char type[16]) LUNA_MUST_CHECK;
/* Appends one audit entry (POST /v1/audit/entries). */
luna_err att_audit(const att_peers *p, const char *actor, const char *operation,
                   const char *tee_id, const char *deployment_id, const char *object,
                   bool success_or_denied, bool denied, const char *reason,
                   const char *request_id) LUNA_MUST_CHECK;
/* The alert: one log line at alert severity, then the webhook (best effort). */
void att_alert(const att_peers *p, const char *event, const char *tee_id, const char *reason,
               const char *att_id);

/* Plain HTTP webhook client (att_webhook.c): POST body to an http:// URL. */
luna_err att_webhook_post(const char *url, const char *body, size_t len,
                          unsigned timeout_sec) LUNA_MUST_CHECK;
/* Splits "http://host:port/path"; LUNA_ERR_FORMAT otherwise. */
luna_err att_url_parse(const char *url, char *host, size_t host_cap, uint16_t *port, char *path,
                       size_t path_cap) LUNA_MUST_CHECK;

/* For calls whose failure is already logged where it happens and must not
   stop the caller (best-effort audit of routine rounds, compensations). */
static inline void att_logged(luna_err e)
{
    (void)e;
}

/* ---- engine (att_engine.c) ---- */

typedef struct att_service att_service;

typedef enum att_kind {
    ATT_KIND_ADMIT = 1,
    ATT_KIND_VERIFY = 2,
    ATT_KIND_REATTEST = 3,
    ATT_KIND_REINSTATE = 4,
    ATT_KIND_REGISTER = 5, /* a deployment manifest (att_deployments.c) */
} att_kind;

typedef struct att_admit_input {
    char tee_id[ATT_TEE_ID_MAX + 1];
    char evidence_type[16];
    uint8_t *evidence;
    size_t evidence_len;
    uint8_t tls_spki[ATT_TLS_SPKI_MAX];
    size_t tls_spki_len;
    uint8_t nonce[ATT_NONCE_LEN];
    char address[ATT_ADDRESS_MAX + 1];
} att_admit_input;

/* One job's answer: HTTP status and body, built by the engine. */
typedef struct att_answer {
    int status;
    json_t *body;
} att_answer;

/* Per-worker-thread state: each thread owns its own store handle. */
typedef struct att_worker {
    att_service *svc;
    luna_store *db;
    pthread_t thread;
    unsigned index;
    _Atomic int64_t busy_since; /* 0 when idle */
    _Atomic bool hung_reported;
} att_worker;

/* The admission-derived verifier nonce (binds the TLS key, docs/attestation.md). */
luna_err att_admit_nonce(const uint8_t challenge[ATT_NONCE_LEN], const uint8_t *spki,
                         size_t spki_len, uint8_t out[ATT_NONCE_LEN]) LUNA_MUST_CHECK;

void att_engine_admit(att_worker *w, const att_admit_input *in, const char *request_id,
                      att_answer *ans);
/*
 * scope_tenant (reinstatement by a tenant's operator): the TEE must be
 * one the registry lists for that tenant, else 404 unknown_tee; NULL for
 * the platform admin and for the service's own rounds.
 */
void att_engine_attest(att_worker *w, att_kind kind, const char *tee_id,
                       const char *deployment_id, const char *actor, const char *scope_tenant,
                       const char *request_id, att_answer *ans);

/* ---- registered deployments (att_deployments.c) ---- */

struct att_deps;

/* Who asks to register (from the verified IAM token). */
typedef struct att_reg_caller {
    char sub[LUNA_PKI_IDENTITY_MAX + 1]; /* "<tenant>/<principal>" */
    char tenant[ATT_TENANT_MAX + 1];
    bool platform;                       /* platform.admin: any developer's manifest */
} att_reg_caller;

/* Loads the registered deployments from db (each manifest re-verified
   against its stored key) and builds their verifier.  Before the workers. */
luna_err att_deps_open(att_service *svc, char *msg, size_t msg_cap) LUNA_MUST_CHECK;
void att_deps_close(att_service *svc);
/* Copies the deployment id (configured first, then registered) into *out;
   false when neither knows it.  Any thread. */
bool att_deps_find(att_service *svc, const char *id, att_deployment *out);
/* att_appraise with the verifier that holds the deployment's references. */
luna_err att_deps_appraise(att_service *svc, int type, const uint8_t *ev, size_t ev_len,
                           const char *deployment, const uint8_t nonce[ATT_NONCE_LEN],
                           int64_t now, att_appraisal *a) LUNA_MUST_CHECK;
/* Re-reads the collateral into every verifier (the round timer). */
void att_deps_refresh(att_service *svc);
/* POST /v1/attestation/deployments, on a worker (IAM, KMS, audit calls). */
void att_deps_register(att_worker *w, const char *manifest, const att_reg_caller *c,
                       const char *request_id, att_answer *ans);
/* Version order (docs/attestation.md): <0, 0, >0. */
int att_deps_version_cmp(const char *a, const char *b);
/* The kid of a manifest's canonical header into kid (48 bytes: the
   47-character key id and its NUL); LUNA_ERR_FORMAT otherwise.  Only finds
   the key to ask IAM for: luna_manifest_verify checks everything. */
luna_err att_deps_manifest_kid(const char *jws, char kid[48]) LUNA_MUST_CHECK;
/* GET /v1/attestation/deployments: configured + registered; tenant NULL =
   every registered one (platform admin).  NULL on allocation failure. */
json_t *att_deps_list(att_service *svc, const char *tenant);

/* ---- service (att_service.c) ---- */

struct event;
struct event_base;

struct att_service {
    const att_settings *s;
    luna_store *db;            /* the event loop's own handle */
    luna_verifier *verifier;
    luna_jws_signer *signer;
    char *jwks_json;
    size_t jwks_len;
    luna_pki_ca *tee_ca;
    luna_jws_keyset *iam_keys; /* NULL: no operator endpoints */
    struct att_deps *deps;     /* registered deployments (att_deployments.c) */
    att_peers peers;
    pthread_mutex_t state_lock; /* serialises TEE state transitions */
    /* queue */
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    struct att_job *q_head, *q_tail;
    size_t q_len;
    bool stopping;
    int done_pipe[2];
    att_worker workers[ATT_MAX_WORKERS];
    unsigned n_workers;
    unsigned n_started;
    pthread_t watchdog;
    bool watchdog_started;
    struct event *ev_done, *ev_beat, *ev_round;
    _Atomic int64_t loop_beat;  /* the event loop's heartbeat, seconds */
    _Atomic bool degraded;      /* the watchdog saw a hung worker or loop */
};

/* Registers the HTTP API on srv. */
luna_err att_service_routes(att_service *svc, luna_http_server *srv) LUNA_MUST_CHECK;
/* Opens the workers' store handles, starts workers, watchdog and timers. */
luna_err att_service_start(att_service *svc, struct event_base *base) LUNA_MUST_CHECK;
/* Stops and joins every thread, answers what is pending; before the server is freed. */
void att_service_stop(att_service *svc);
/* /readyz: false while the watchdog reports a hung worker. */
bool att_service_ready(void *arg);

#endif
