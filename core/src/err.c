/*
 * err.c - names and messages for luna_err.  Owns nothing else; must never
 * format caller data into a message.
 */
#include "luna/err.h"

static const struct {
    const char *name;
    const char *text;
} luna_err_table[LUNA_ERR__COUNT] = {
    [LUNA_OK] = {"ok", "success"},
    [LUNA_ERR_INVALID_ARG] = {"invalid_argument", "invalid argument"},
    [LUNA_ERR_NOMEM] = {"out_of_memory", "out of memory"},
    [LUNA_ERR_CRYPTO] = {"crypto_error", "cryptographic library failure"},
    [LUNA_ERR_VERIFY] = {"verify_failed", "verification failed"},
    [LUNA_ERR_FORMAT] = {"malformed", "malformed input"},
    [LUNA_ERR_TOO_LARGE] = {"too_large", "input too large"},
    [LUNA_ERR_UNSUPPORTED] = {"unsupported", "unsupported version or algorithm"},
    [LUNA_ERR_IO] = {"io_error", "input/output error"},
    [LUNA_ERR_NOT_FOUND] = {"not_found", "not found"},
    [LUNA_ERR_CONFLICT] = {"conflict", "conflict or reuse"},
    [LUNA_ERR_STORAGE] = {"storage_error", "storage error"},
    [LUNA_ERR_TLS] = {"tls_error", "TLS error"},
    [LUNA_ERR_TIMEOUT] = {"timeout", "timed out"},
    [LUNA_ERR_PERMISSION] = {"forbidden", "permission denied"},
    [LUNA_ERR_EXPIRED] = {"expired", "expired or not yet valid"},
    [LUNA_ERR_CONFIG] = {"config_error", "invalid configuration"},
    [LUNA_ERR_INTERNAL] = {"internal_error", "internal error"},
    [LUNA_ERR_UNAUTHENTICATED] = {"unauthenticated", "authentication required or failed"},
    [LUNA_ERR_UNAVAILABLE] = {"unavailable", "service unavailable"},
};

const char *luna_strerror(luna_err err)
{
    if ((unsigned)err >= (unsigned)LUNA_ERR__COUNT || luna_err_table[err].text == NULL)
        return "unknown error";
    return luna_err_table[err].text;
}

const char *luna_errname(luna_err err)
{
    if ((unsigned)err >= (unsigned)LUNA_ERR__COUNT || luna_err_table[err].name == NULL)
        return "unknown";
    return luna_err_table[err].name;
}
