/*
 * luna/err.h - the one error convention of the whole platform.
 *
 * Every fallible function returns a luna_err; LUNA_OK (0) is success.
 * Codes are only ever appended: existing numbers never change, because the
 * SDK exposes them and the CLI maps them to exit codes.  luna_strerror()
 * never returns NULL and never includes caller data (so never a secret).
 */
#ifndef LUNA_ERR_H
#define LUNA_ERR_H

#include <stddef.h>

typedef enum luna_err {
    LUNA_OK = 0,
    LUNA_ERR_INVALID_ARG = 1,  /* caller broke the contract (NULL, bad length) */
    LUNA_ERR_NOMEM = 2,
    LUNA_ERR_CRYPTO = 3,       /* the crypto library failed internally */
    LUNA_ERR_VERIFY = 4,       /* authentication failed: tag, signature, MAC */
    LUNA_ERR_FORMAT = 5,       /* malformed input */
    LUNA_ERR_TOO_LARGE = 6,    /* input over a named size cap */
    LUNA_ERR_UNSUPPORTED = 7,  /* valid but not supported (version, suite) */
    LUNA_ERR_IO = 8,
    LUNA_ERR_NOT_FOUND = 9,
    LUNA_ERR_CONFLICT = 10,    /* already exists, replay, reuse */
    LUNA_ERR_STORAGE = 11,
    LUNA_ERR_TLS = 12,
    LUNA_ERR_TIMEOUT = 13,
    LUNA_ERR_PERMISSION = 14,  /* authenticated but not allowed */
    LUNA_ERR_EXPIRED = 15,     /* outside a validity window */
    LUNA_ERR_CONFIG = 16,
    LUNA_ERR_INTERNAL = 17,    /* a bug: an invariant did not hold */
    LUNA_ERR_UNAUTHENTICATED = 18, /* no or bad credentials */
    LUNA_ERR_UNAVAILABLE = 19, /* peer down or not ready; retryable */
    LUNA_ERR__COUNT
} luna_err;

/* Static, human-readable text for a code; never NULL. */
const char *luna_strerror(luna_err err);
/* Stable machine name for a code, e.g. "verify_failed"; never NULL. */
const char *luna_errname(luna_err err);

#if defined(__GNUC__)
#define LUNA_MUST_CHECK __attribute__((warn_unused_result))
#else
#define LUNA_MUST_CHECK
#endif

/*
 * Guard macros.  LUNA_GUARD returns the error as is; LUNA_TRY jumps to a
 * cleanup label with `err` set (the function must declare `luna_err err`).
 */
#define LUNA_GUARD(expr)                                                      \
    do {                                                                      \
        luna_err luna_guard_e_ = (expr);                                      \
        if (luna_guard_e_ != LUNA_OK)                                         \
            return luna_guard_e_;                                             \
    } while (0)

#define LUNA_ENSURE(cond, code)                                               \
    do {                                                                      \
        if (!(cond))                                                          \
            return (code);                                                    \
    } while (0)

#define LUNA_TRY(expr, label)                                                 \
    do {                                                                      \
        err = (expr);                                                         \
        if (err != LUNA_OK)                                                   \
            goto label;                                                       \
    } while (0)

#define LUNA_TRY_ENSURE(cond, code, label)                                    \
    do {                                                                      \
        if (!(cond)) {                                                        \
            err = (code);                                                     \
            goto label;                                                       \
        }                                                                     \
    } while (0)

#endif
