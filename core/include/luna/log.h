/*
 * luna/log.h - structured logging: one JSON object per line on stderr
 * (docs/http.md, "Log format").
 *
 *   {"ts":"2026-01-02T03:04:05.678Z","level":"info","component":"kms",
 *    "msg":"request","route":"/v1/keys","status":200}
 *
 * There is deliberately no printf-style entry point: a message is a fixed
 * string and every variable part is a typed key/value field, so a buffer
 * can never be formatted into a line by accident.  Every string (message,
 * keys, values) is JSON-escaped; control bytes and bytes >= 0x80 become
 * \u00XX, so a value can neither break the line nor forge another field.
 * Strings longer than LUNA_LOG_VALUE_MAX bytes are cut and end in "...".
 * Fields whose value is NULL are written as JSON null.  Never pass key
 * material, tokens, API keys or plaintext as a value: this module cannot
 * tell a secret from an identifier; it only guarantees it prints what it
 * is given and nothing else.
 *
 * Each line is built in a bounded stack buffer (LUNA_LOG_LINE_MAX) and
 * written with a single write(2), so lines from several threads or
 * processes sharing stderr never interleave (up to PIPE_BUF on pipes).
 * A line that would exceed the buffer drops its trailing fields and gets
 * "truncated":true.  Logging never fails from the caller's point of view
 * and never allocates.  Thread-safe; the level and sink are process-wide.
 */
#ifndef LUNA_LOG_H
#define LUNA_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"

typedef enum luna_log_level {
    LUNA_LOG_DEBUG = 0,
    LUNA_LOG_INFO = 1,
    LUNA_LOG_WARN = 2,
    LUNA_LOG_ERROR = 3,
    LUNA_LOG_OFF = 4, /* as a threshold only: log nothing */
} luna_log_level;

#define LUNA_LOG_LINE_MAX 4096
#define LUNA_LOG_VALUE_MAX 512
#define LUNA_LOG_MAX_FIELDS 32

typedef enum luna_log_kind {
    LUNA_LOG_KIND_STR = 1,
    LUNA_LOG_KIND_INT = 2,
    LUNA_LOG_KIND_UINT = 3,
    LUNA_LOG_KIND_BOOL = 4,
    LUNA_LOG_KIND_ERR = 5, /* written as the stable name, e.g. "verify_failed" */
    LUNA_LOG_KIND_DOUBLE = 6,
} luna_log_kind;

typedef struct luna_log_field {
    const char *key; /* a fixed identifier such as "route"; escaped anyway */
    luna_log_kind kind;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        bool b;
        luna_err e;
        double d;
    } v;
} luna_log_field;

#define LUNA_LOG_STR(k, val) ((luna_log_field){.key = (k), .kind = LUNA_LOG_KIND_STR, .v.s = (val)})
#define LUNA_LOG_INT(k, val) ((luna_log_field){.key = (k), .kind = LUNA_LOG_KIND_INT, .v.i = (val)})
#define LUNA_LOG_UINT(k, val) ((luna_log_field){.key = (k), .kind = LUNA_LOG_KIND_UINT, .v.u = (val)})
#define LUNA_LOG_BOOL(k, val) ((luna_log_field){.key = (k), .kind = LUNA_LOG_KIND_BOOL, .v.b = (val)})
#define LUNA_LOG_ERR(k, val) ((luna_log_field){.key = (k), .kind = LUNA_LOG_KIND_ERR, .v.e = (val)})
#define LUNA_LOG_DBL(k, val) ((luna_log_field){.key = (k), .kind = LUNA_LOG_KIND_DOUBLE, .v.d = (val)})

/*
 * Writes one line when level >= the threshold.  component and msg may not
 * be NULL (written as "?" when they are).  At most LUNA_LOG_MAX_FIELDS
 * fields are written; n_fields beyond that are ignored.
 */
void luna_log(luna_log_level level, const char *component, const char *msg,
              const luna_log_field *fields, size_t n_fields);

/* LUNA_LOGF(LUNA_LOG_INFO, "kms", "started", LUNA_LOG_UINT("port", 443)) */
#define LUNA_LOGF(level, component, msg, ...)                                                      \
    luna_log((level), (component), (msg), (const luna_log_field[]){__VA_ARGS__},                   \
             sizeof((const luna_log_field[]){__VA_ARGS__}) / sizeof(luna_log_field))

/* Threshold; default LUNA_LOG_INFO. */
void luna_log_set_level(luna_log_level level);
luna_log_level luna_log_get_level(void);
/* "debug", "info", "warn", "error", "off" -> level; LUNA_ERR_INVALID_ARG otherwise. */
luna_err luna_log_level_parse(const char *name, luna_log_level *out) LUNA_MUST_CHECK;
/* The lower-case name of a level; never NULL. */
const char *luna_log_level_name(luna_log_level level);

/*
 * Redirects lines to fd (default 2, stderr); the fd is borrowed, never
 * closed.  For tests and for daemons that log to a file they opened.
 */
void luna_log_set_fd(int fd);

#endif
