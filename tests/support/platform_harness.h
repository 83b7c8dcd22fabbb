/*
 * platform_harness.h - what the e2e tests that run the whole real platform
 * path share (e2e.tee_quarantine, e2e.tpm_flow): files in the harness's
 * temp folder, spawning and stopping the real luna-audit,
 * luna-attestation and luna-tee-host processes with bounded waits, the
 * KMS registry as the attestation service sees it, the runtime config and
 * measurement, and the developer's signed manifest.  Built on
 * kms_harness (the KMS itself).  Test-only: every failure asserts (cmocka),
 * nothing here is thread-safe, and it never touches secrets of a service.
 */
#ifndef LUNA_PLATFORM_HARNESS_H
#define LUNA_PLATFORM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "kms_harness.h"

/* out = <folder>/<name>; asserts it fits in cap. */
void plh_path(const kmsh *k, char *out, size_t cap, const char *name);
/* Writes n bytes to path p (created or truncated with mode). */
void plh_write_path(const char *p, const void *data, size_t n, mode_t mode);
/* Writes text to <folder>/<name>. */
void plh_write_text(const kmsh *k, const char *name, const char *text, mode_t mode);
/* Copies from to to, then appends extra when not NULL. */
void plh_copy_file(const char *from, const char *to, const char *extra, mode_t mode);

/* The bytes of path (and of a SQLite "-wal" beside it) contain needle. */
bool plh_file_has(const char *path, const char *needle);
/* plh_file_has on <folder>/<name>. */
bool plh_log_has(const kmsh *k, const char *name, const char *needle);
/* Polls plh_log_has every 50 ms for up to seconds (one last look after). */
bool plh_wait_for(const kmsh *k, const char *name, const char *needle, int seconds);

/* Forks argv (execvp) with stdout and stderr appended to <folder>/<log>;
 * the child dies with the test (PR_SET_PDEATHSIG). */
pid_t plh_spawn(const kmsh *k, char *const argv[], const char *log);
/* SIGTERM, up to 5 s, then SIGKILL; *pid becomes -1.  No-op when <= 0. */
void plh_stop(pid_t *pid);
/* Something accepts TCP connections on 127.0.0.1:port. */
bool plh_port_open(uint16_t port);
/* Up to 20 s for port to listen; fails when pid exits first. */
void plh_wait_port(uint16_t port, pid_t pid, const char *what);

/*
 * luna-audit: plh_audit_setup makes its checkpoint key, certificate and
 * audit.json (storage auditlog.db, origin as given) and returns the port;
 * plh_audit_start spawns it (log audit-svc.log) and waits for the port.
 */
uint16_t plh_audit_setup(kmsh *k, const char *origin);
pid_t plh_audit_start(const kmsh *k, uint16_t port);
/* Writes att.json from text, spawns luna-attestation (log att.log) and
 * waits for port. */
pid_t plh_att_spawn(const kmsh *k, const char *text, uint16_t port);
/* The "deployments" member of the attestation config, from the developer
 * key, mr_enclave and the bundle's build hash (hex); asserts it fits. */
void plh_att_deployment(const uint8_t dev_pk[32], const uint8_t mr[32], const char *build_hash_hex,
                        char *out, size_t cap);
/* One request to the attestation service on port as identity cert;
 * *out (may be NULL) the JSON body or NULL.  Returns the HTTP status. */
int plh_att_call(const kmsh *k, uint16_t port, const char *cert, const char *method,
                 const char *path, json_t **out);
/* The attestation service's state for tee_id is want, awaited up to 10 s
 * (the KMS registry is updated before the service records its own). */
bool plh_att_state_is(const kmsh *k, uint16_t port, const char *tee_id, const char *want);
/* The attestation service's JWKS written to att.jwks (the KMS's
 * attestation_jwks). */
void plh_att_jwks_to_kms(const kmsh *k, uint16_t att_port);

/* Registers tee_id (pending) for one tenant, as the attestation service. */
void plh_tee_register(const kmsh *k, const char *tee_id, const char *tenant,
                      const char *tee_type, const uint8_t mr[32]);
/* The KMS registry status of tee_id, "" when unknown or unreachable. */
void plh_kms_status(const kmsh *k, const char *tee_id, char *out, size_t cap);
/* Polls plh_kms_status every 50 ms until want or ms elapsed. */
bool plh_wait_status(const kmsh *k, const char *tee_id, const char *want, long ms);

/* The TEE CA (teeca/) and the tee-host certificate. */
void plh_teeca_init(kmsh *k);
/* Copies $LUNA_BINARY_DIR/tee/luna-tee to rt = <folder>/luna-tee (a file
 * the test may measure and modify) and sets bundle to the demo jobs
 * bundle of the build. */
void plh_runtime_copy(const kmsh *k, char rt[HTU_PATH_MAX], char bundle[HTU_PATH_MAX]);
/* A luna-tee runtime config <folder>/<name> listening on port. */
void plh_runtime_config(const kmsh *k, const char *name, const uint8_t dev_pk[32], uint16_t port);
/* The mr_enclave of runtime + bundle + <folder>/<config>. */
void plh_measure(const kmsh *k, const char *runtime, const char *bundle, const char *config,
                 uint8_t mr[32]);
/* Signs the deployment's manifest (job wordstats) into app.jws; bh_hex
 * gets the bundle's build hash in hex. */
void plh_sign_manifest(const kmsh *k, const uint8_t dev_seed[32], const uint8_t mr[32],
                       const char *bundle, char bh_hex[65]);
/* Writes <name>.json from text and spawns luna-tee-host run (log
 * <name>.log); does not wait. */
pid_t plh_host_spawn(const kmsh *k, const char *name, const char *text);

#endif
