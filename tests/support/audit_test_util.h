/*
 * audit_test_util.h - what the audit service tests share: a temp folder
 * with a platform CA and certificates (http_test_util.h), the log's
 * checkpoint key made by `luna-audit keygen`, an IAM signing key and its
 * JWKS, a config file, and the luna-audit process started and stopped on a
 * fixed loopback port (so a restart keeps it).  Every wait is bounded.
 */
#ifndef LUNA_AUDIT_TEST_UTIL_H
#define LUNA_AUDIT_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "http_test_util.h"
#include "luna/audience.h"
#include "luna/jws.h"
#include "luna/note.h"

#define ATU_ORIGIN "lunal.audit/test"
/* What luna-iam puts in iss, and aud of a token minted for the audit log
   (docs/protocol.md, token audiences). */
#define ATU_ISSUER "lunal://svc/iam"
#define ATU_AUDIENCE LUNA_AUD_AUDIT

typedef struct atu_env {
    htu_env h;
    char db_path[HTU_PATH_MAX];
    char key_path[HTU_PATH_MAX];
    char jwks_path[HTU_PATH_MAX];
    char config_path[HTU_PATH_MAX];
    char log_path[HTU_PATH_MAX];
    char vkey[LUNA_NOTE_VKEY_MAX_LEN];
    luna_note_verifier verifier;
    luna_jws_signer *iam;
    uint16_t port;
    pid_t pid;
    void *iam_stub; /* atu_iam_stub_start */
    /* "" = SQLite at db_path; else this storage.url (e.g. PostgreSQL),
       set after atu_setup and applied by atu_rewrite_config. */
    char storage_url[1024];
} atu_env;

/*
 * Makes the CA, certificates "audit" (lunal://svc/audit), "kms"
 * (lunal://svc/kms), "gateway" (lunal://svc/gateway), "tee"
 * (lunal://tee/t1), the checkpoint key, the IAM key and the config.
 * extra_audit_json: NULL or more members of the "audit" section,
 * starting with a comma.
 */
void atu_setup(atu_env *e, const char *extra_audit_json);
/*
 * atu_setup with the key set's source chosen: jwks_source NULL = the
 * default ",\"iam_jwks\":\"<jwks_path>\"", else the members to use
 * instead (starting with a comma), e.g. from atu_iam_source().  The
 * issuer and audience are always ATU_ISSUER and ATU_AUDIENCE.
 */
void atu_setup_src(atu_env *e, const char *extra_audit_json, const char *jwks_source);
/* Rewrites the config (same port, key and paths; the file key set source)
 * with other members of the "audit" section. */
void atu_rewrite_config(atu_env *e, const char *extra_audit_json);
/* Writes e->jwks_path with the public keys of the signers given. */
void atu_write_jwks(atu_env *e, luna_jws_signer *const *signers, size_t n);

/*
 * A stand-in for luna-iam's GET /v1/iam/jwks on loopback mTLS as
 * "lunal://svc/iam" (certificate "iam"), in a thread of the test process:
 * it answers with the current bytes of e->jwks_path.  Start it before
 * atu_setup_src so its port is known; atu_teardown stops it.
 */
uint16_t atu_iam_stub_start(atu_env *e);
/* GET /v1/iam/jwks requests served so far. */
unsigned atu_iam_stub_hits(atu_env *e);
void atu_teardown(atu_env *e);

/* A free loopback port (bound then released). */
uint16_t atu_free_port(void);

/* Starts luna-audit; waits at most 10 s for it to listen. */
void atu_start(atu_env *e);
/* Starts it and returns false (instead of failing) when it exits early. */
bool atu_try_start(atu_env *e);
/* Sends sig and waits (5 s); returns the exit code or -1. */
int atu_stop(atu_env *e, int sig);

/* A client for luna_http_fetch as certificate <name>. */
void atu_client(atu_env *e, const char *name, luna_http_client_opts *o,
                char paths[3][HTU_PATH_MAX]);
/* luna_http_fetch as <name>; returns the status (fails the test on transport errors). */
int atu_fetch(atu_env *e, const char *name, const char *method, const char *path,
              const char *json_body, luna_http_result *out);
/* A GET with "Authorization: Bearer <token>" through the raw client. */
int atu_get_bearer(atu_env *e, const char *name, const char *path, const char *token,
                   htu_raw *out);

/*
 * A token shaped exactly like luna-iam's (docs/iam.md "Tokens": iss, aud,
 * sub, tenant, principal, kind, roles, auth "api_key", iat, nbf, exp, jti,
 * api_key_id), signed with e->iam.  roles: comma-separated, "" = none.
 * Caller frees.
 */
char *atu_token(atu_env *e, const char *tenant, const char *roles);
/* The claims atu_token would sign (caller decrefs), to bend in tests. */
json_t *atu_token_claims(const char *tenant, const char *roles);
/* Signs claims with signer (caller frees). */
char *atu_sign(luna_jws_signer *signer, const json_t *claims);
/* The role list of an auditor with platform scope. */
#define ATU_PLATFORM_AUDITOR "auditor,platform-admin"

/* The body of a POST /v1/audit/entries for tenant with request id rid. */
void atu_entry_json(char *out, size_t cap, const char *tenant, const char *rid);

/* True when the file contains needle (bytes, not only text). */
bool atu_file_contains(const char *path, const void *needle, size_t n);

#endif

#ifndef LUNA_AUDIT_TEST_UTIL_VERIFY
#define LUNA_AUDIT_TEST_UTIL_VERIFY
#include "luna/merkle.h"
/* A checkpoint a verifier keeps: the signed note and what it says. */
typedef struct atu_checkpoint {
    uint8_t note[LUNA_NOTE_MAX_LEN];
    size_t len;
    uint64_t size;
    uint8_t root[LUNA_MERKLE_HASH_LEN];
} atu_checkpoint;

/* GET /v1/audit/checkpoint as kms, opened with the log's key (fails the test if not). */
void atu_checkpoint_get(atu_env *e, atu_checkpoint *out);
/*
 * What `lunal audit verify` does: fetches a new checkpoint (signature,
 * origin), proves it consistent with kept (when kept->size > 0), then
 * exports every leaf as a platform auditor, checks each is canonical and
 * recomputes the root.  LUNA_OK, or the first failure: LUNA_ERR_VERIFY
 * (proof, root or leaf mismatch), LUNA_ERR_CONFLICT (the log shrank).
 * On LUNA_OK *now receives the new checkpoint.
 */
luna_err atu_verify_log(atu_env *e, const atu_checkpoint *kept, atu_checkpoint *now);
#endif

#ifndef LUNA_AUDIT_TEST_UTIL_PEERS
#define LUNA_AUDIT_TEST_UTIL_PEERS
/* ---- the witness process and a gateway stand-in for the SDK/CLI ---- */

#define ATU_WITNESS_NAME "witness.test/1"

typedef struct atu_witness {
    char cfg[HTU_PATH_MAX], key[HTU_PATH_MAX], log[HTU_PATH_MAX], db[HTU_PATH_MAX];
    char vkey[LUNA_NOTE_VKEY_MAX_LEN];
    luna_note_verifier v;
    uint16_t port;
    pid_t pid;
} atu_witness;

/* Key (real keygen), config for the log of e (call after atu_setup). */
void atu_witness_setup(atu_env *e, atu_witness *w);
void atu_witness_start(atu_witness *w);
void atu_witness_stop(atu_witness *w);
/* The size the witness holds (GET /v1/witness/state). */
uint64_t atu_witness_size(atu_env *e, atu_witness *w);
/* Waits at most timeout_ms for the witness to hold size n. */
bool atu_witness_wait(atu_env *e, atu_witness *w, uint64_t n, int timeout_ms);
/* The members of the "audit" section that make the log push to w. */
void atu_witness_peer_json(const atu_witness *w, char *out, size_t cap);

/*
 * A stand-in for the gateway's audit relays (docs/audit.md section 4) on
 * a public TLS listener in a thread: GET /v1/audit/{entries,export,
 * checkpoint,proof/inclusion,proof/consistency} forwarded to luna-audit
 * (as "gateway", with the client's downstream token as Authorization),
 * GET /v1/audit/witness -> the witness's /v1/witness/state, and
 * POST /v1/auth/token answering {"token","expires_at","downstream":
 * {"audit": <token>}} with the token set by atu_relay_set_token.
 */
typedef struct atu_relay {
    char url[64];
    uint16_t port;
    void *priv;
} atu_relay;

void atu_relay_start(atu_env *e, atu_witness *w, atu_relay *r);
/* The token handed out as the audit downstream token (copied). */
void atu_relay_set_token(atu_relay *r, const char *token);
void atu_relay_stop(atu_relay *r);
#endif
