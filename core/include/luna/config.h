/*
 * luna/config.h - the one config format of every component: a JSON file
 * read through the strict JSON parser (luna/json.h) against a schema, so
 * there is one parser and one error style.  docs/config.md lists every key
 * with its default.
 *
 * A component's schema is the common schema (luna_config_common_schema:
 * profile, listen, tls, storage, log, attestation) extended with its own
 * top-level section(s):
 *
 *     static const luna_json_field kms_fields[] = {
 *         {.name = "kms", .type = LUNA_JSON_T_OBJECT, .flags = LUNA_JSON_REQUIRED,
 *          .object = &kms_section},
 *     };
 *     static const luna_json_schema kms_schema = {
 *         kms_fields, 1, &luna_config_common_schema};
 *
 * Loading refuses to start on anything unsafe or unclear, in this order:
 *   - the file: must be a regular file (symlinks to one are followed), at
 *     most LUNA_CONFIG_MAX_BYTES, not world-writable; in the production
 *     profile also not group-writable and owned by root or the effective user;
 *   - environment overrides (optional, spec->env_prefix) are applied;
 *   - the schema: unknown keys, missing required keys, wrong types, values
 *     out of range;
 *   - cross-field rules: production refuses "sim" evidence; any allowed
 *     evidence type needs trust anchors; every file path key (tls.*,
 *     attestation.trust_anchors, spec->file_keys) must name an existing
 *     regular file; in production the TLS key file must not be accessible
 *     by group or others; listen.address must be an IP literal; storage.url
 *     must be sqlite: or postgres(ql)://; then the component's own check.
 * Relative paths in the file are relative to the working directory.
 *
 * Errors name the key, never its value (a storage URL may hold a password):
 *     "config: listen.port: must be an integer 1..65535"
 *
 * Thread safety: a loaded luna_config is immutable; any number of threads
 * may read it.  Loading reads the environment (getenv), so do it at start-up.
 */
#ifndef LUNA_CONFIG_H
#define LUNA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/profile.h"
#include "luna/err.h"
#include "luna/json.h"
#include "luna/log.h"

#define LUNA_CONFIG_MAX_BYTES (256u * 1024u)
#define LUNA_CONFIG_MAX_EVIDENCE 8u  /* entries of attestation.allowed_evidence */
#define LUNA_CONFIG_MAX_ANCHORS 16u  /* entries of attestation.trust_anchors */
#define LUNA_CONFIG_PATH_MAX 4096u   /* bytes of any file path value */
#define LUNA_CONFIG_MSG_MAX 336 /* "config: " + key + ": " + reason */

typedef luna_profile luna_config_profile; /* luna/profile.h */

/*
 * The common part, defaults applied.  Strings point into the luna_config
 * and live as long as it; an absent optional string is NULL.
 */
typedef struct luna_config_common {
    luna_config_profile profile;       /* default production */
    const char *listen_address;        /* default "127.0.0.1" */
    uint16_t listen_port;              /* required */
    const char *tls_cert;              /* required */
    const char *tls_key;               /* required */
    const char *tls_ca;                /* required: the platform CA, mTLS trust anchor */
    const char *storage_url;           /* NULL when absent (see storage_required) */
    luna_log_level log_level;          /* default LUNA_LOG_INFO */
    size_t n_evidence;                 /* default 0: no evidence type accepted */
    const char *evidence[LUNA_CONFIG_MAX_EVIDENCE];
    size_t n_trust_anchors;
    const char *trust_anchors[LUNA_CONFIG_MAX_ANCHORS];
} luna_config_common;

typedef struct luna_config luna_config;

/*
 * key is the dotted key at fault ("" for the file as a whole); message is
 * the whole line to print: "config: <key>: <why>" or "config: <why>".
 * Always NUL-terminated.
 */
typedef struct luna_config_error {
    luna_err code;
    char key[LUNA_JSON_PATH_MAX];
    char message[LUNA_CONFIG_MSG_MAX];
} luna_config_error;

/*
 * A component's own cross-field rule, run last, on a config that passed all
 * the checks above.  Report failures with luna_config_fail().
 */
typedef luna_err (*luna_config_check_fn)(const luna_config *cfg, void *arg,
                                         luna_config_error *err);

typedef struct luna_config_spec {
    /* NULL: the common schema alone; otherwise it must extend
     * &luna_config_common_schema (LUNA_ERR_INVALID_ARG if not). */
    const luna_json_schema *schema;
    /* NULL-terminated dotted keys of component string fields that are file
     * paths; each present one must name an existing regular file. */
    const char *const *file_keys;
    /* The component needs "storage" (else it is optional). */
    bool storage_required;
    /* Optional, e.g. "LUNA_KMS_": LUNA_KMS_LISTEN_PORT=9000 overrides
     * listen.port.  Name: prefix + key upper-cased, '.' and '-' as '_'.
     * Only string/int/bool keys outside arrays; ints in strict decimal,
     * bools "true"/"false".  Read with secure_getenv. */
    const char *env_prefix;
    luna_config_check_fn check; /* optional */
    void *check_arg;
} luna_config_spec;

/* The common schema fragment every component schema extends. */
extern const luna_json_schema luna_config_common_schema;

/*
 * Loads, checks and returns a config; *out is freed with luna_config_free.
 * spec may be NULL (common schema alone).  err may be NULL.
 * Errors: LUNA_ERR_CONFIG (a rule above; also a file that is not a regular
 * file), LUNA_ERR_TOO_LARGE (file over LUNA_CONFIG_MAX_BYTES),
 * LUNA_ERR_PERMISSION (unsafe file mode or owner, or open() refused),
 * LUNA_ERR_NOT_FOUND (no such file), LUNA_ERR_IO, LUNA_ERR_NOMEM,
 * LUNA_ERR_INVALID_ARG (NULL path/out, or a spec->schema that does not
 * extend the common schema).
 */
luna_err luna_config_load(const char *path, const luna_config_spec *spec, luna_config **out,
                          luna_config_error *err) LUNA_MUST_CHECK;

/* Same from text already in memory (no file checks); for tests and tools. */
luna_err luna_config_load_text(const char *text, size_t len, const luna_config_spec *spec,
                               luna_config **out, luna_config_error *err) LUNA_MUST_CHECK;

void luna_config_free(luna_config *cfg);

const luna_config_common *luna_config_common_get(const luna_config *cfg);
/* The validated tree, for component keys through the luna_json_get_* getters. */
const json_t *luna_config_json(const luna_config *cfg);
/* true when type (e.g. "tpm") is listed in attestation.allowed_evidence. */
bool luna_config_evidence_allowed(const luna_config *cfg, const char *type);

/*
 * For component checks: fills err as "config: <key>: <why>" and returns
 * LUNA_ERR_CONFIG.  Never pass a config value as an argument.
 */
luna_err luna_config_fail(luna_config_error *err, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
