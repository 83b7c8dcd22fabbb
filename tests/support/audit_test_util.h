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

#include "http_test_util.h"
#include "luna/jws.h"
#include "luna/note.h"

#define ATU_ORIGIN "lunal.audit/test"

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
} atu_env;

/*
 * Makes the CA, certificates "audit" (lunal://svc/audit), "kms"
 * (lunal://svc/kms), "gateway" (lunal://svc/gateway), "tee"
 * (lunal://tee/t1), the checkpoint key, the IAM key and the config.
 * extra_audit_json: NULL or more members of the "audit" section,
 * starting with a comma.
 */
void atu_setup(atu_env *e, const char *extra_audit_json);
void atu_teardown(atu_env *e);

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

/* An IAM token (caller frees) with tenant (may be NULL) and one role. */
char *atu_token(atu_env *e, const char *tenant, const char *role);

/* The body of a POST /v1/audit/entries for tenant with request id rid. */
void atu_entry_json(char *out, size_t cap, const char *tenant, const char *rid);

/* True when the file contains needle (bytes, not only text). */
bool atu_file_contains(const char *path, const void *needle, size_t n);

#endif
