/*
 * luna/json.h - the strict JSON parser: the ONE way any component reads a
 * JSON request body or a config file.
 *
 * luna_json_parse() accepts a body only when all of this holds, checked in
 * this order:
 *   1. size: len <= limits->max_bytes (checked before reading a byte);
 *   2. a bounded pre-scan (no allocation, no recursion): no raw NUL byte, no
 *      UTF-8 byte order mark, not empty/whitespace only, and brackets nested
 *      at most limits->max_depth deep - so jansson never recurses deeply;
 *   3. jansson 2.14 (json_loadb, JSON_REJECT_DUPLICATES, no JSON_ALLOW_NUL,
 *      no JSON_DECODE_ANY): RFC 8259 syntax, valid UTF-8, no duplicate keys,
 *      no \u0000, integers within int64, reals within double, nothing but
 *      whitespace after the value;
 *   4. the top-level value is an object and matches the declared schema:
 *      no unknown field, every required field present, every value of the
 *      declared type and within its declared bounds.  null is never
 *      accepted for any field (leave an optional field out instead).
 *
 * Errors: a luna_json_error tells which field failed (its path, e.g.
 * "data.tenant_id" or "items[2].name") and why, in text built only from the
 * schema and the limits - never from the input's values - so both can be
 * returned to a client in a JSON error body.  An unknown key appears in the
 * path only when it is a short identifier ([A-Za-z0-9._-]{1,32}); any other
 * unknown key is shown as "?".
 *
 * Thread safety: the functions keep no state; schemas are const tables and
 * may be shared by any number of threads.  A json_t tree must not be used
 * by two threads at once (jansson's reference counts are not atomic).
 */
#ifndef LUNA_JSON_H
#define LUNA_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "luna/err.h"

/* ---- limits ---- */

#define LUNA_JSON_DEFAULT_MAX_BYTES (64u * 1024u)
#define LUNA_JSON_DEFAULT_MAX_DEPTH 16u
#define LUNA_JSON_DEFAULT_MAX_STRING 4096u /* bytes of one string value */
#define LUNA_JSON_DEFAULT_MAX_ITEMS 256u   /* items of one array */
/* Hard ceilings: limits above them are refused with LUNA_ERR_INVALID_ARG. */
#define LUNA_JSON_MAX_BYTES_CEILING (16u * 1024u * 1024u)
#define LUNA_JSON_MAX_DEPTH_CEILING 64u

/*
 * Caller caps for one parse.  A zero member means the default above;
 * passing NULL means all defaults.  Depth counts every '[' and '{': the
 * body {"a":[1]} has depth 2.
 */
typedef struct luna_json_limits {
    size_t max_bytes;
    size_t max_depth;
    size_t max_string; /* cap for string fields whose schema gives no max_len */
    size_t max_items;  /* cap for array fields whose schema gives no max_len */
} luna_json_limits;

/* ---- schema ---- */

typedef enum luna_json_type {
    LUNA_JSON_T_STRING = 1, /* min_len..max_len bytes of UTF-8, checked by pattern */
    LUNA_JSON_T_INT = 2,    /* JSON integer (no fraction, no exponent) in min..max */
    LUNA_JSON_T_BOOL = 3,
    LUNA_JSON_T_OBJECT = 4, /* checked against .object */
    LUNA_JSON_T_ARRAY = 5,  /* min_len..max_len items, each checked against .items */
    LUNA_JSON_T_B64URL = 6, /* base64url without padding; min_len..max_len DECODED bytes */
    LUNA_JSON_T_HEX = 7,    /* hex, either case; min_len..max_len DECODED bytes */
    LUNA_JSON_T_REAL = 8,   /* any JSON number (integer or real) in min..max; the
                               only type that accepts a fraction or exponent */
} luna_json_type;

/* Character classes for LUNA_JSON_T_STRING (the codecs fix their own). */
typedef enum luna_json_pattern {
    LUNA_JSON_PAT_TEXT = 0,      /* any UTF-8 except control characters (< 0x20, 0x7f) */
    LUNA_JSON_PAT_IDENT = 1,     /* [A-Za-z0-9._-] */
    LUNA_JSON_PAT_PRINTABLE = 2, /* printable ASCII 0x20..0x7e */
    LUNA_JSON_PAT_ANY = 3,       /* any UTF-8 jansson accepts (still never NUL) */
} luna_json_pattern;

/* luna_json_field.flags */
#define LUNA_JSON_REQUIRED 0x1u

struct luna_json_schema;

/*
 * One field of an object.  Bounds per type:
 *   STRING        min_len..max_len bytes (max_len 0: limits->max_string)
 *   B64URL, HEX   min_len..max_len decoded bytes (max_len 0: no bound but the
 *                 encoded text is capped at limits->max_string)
 *   ARRAY         min_len..max_len items (max_len 0: limits->max_items)
 *   INT           min..max inclusive; always explicit ({0, 0} means "only 0")
 *   REAL          min..max inclusive, compared as double
 * one_of (STRING only, optional): NULL-terminated list of the only values
 * accepted; listed in the error message, so keep it short and non-secret.
 * items (ARRAY only, required): describes every element; its name is unused;
 * it may not itself be an ARRAY.
 * object (OBJECT only, required; or an ARRAY item of type OBJECT).
 */
typedef struct luna_json_field {
    const char *name;
    luna_json_type type;
    unsigned flags;
    size_t min_len;
    size_t max_len;
    int64_t min;
    int64_t max;
    luna_json_pattern pattern;
    const char *const *one_of;
    const struct luna_json_schema *object;
    const struct luna_json_field *items;
} luna_json_field;

/*
 * The fields an object may have.  extends (optional) adds another schema's
 * fields: used by the config module so that each component's schema is the
 * common config schema plus its own section.  A chain is at most
 * LUNA_JSON_MAX_EXTENDS long; a field name must appear once in a chain.
 */
#define LUNA_JSON_MAX_EXTENDS 4u
typedef struct luna_json_schema {
    const luna_json_field *fields;
    size_t n_fields;
    const struct luna_json_schema *extends;
} luna_json_schema;

/* ---- errors ---- */

#define LUNA_JSON_PATH_MAX 128
#define LUNA_JSON_MSG_MAX 192

/*
 * code is the luna_err returned.  path is "" when the failure concerns the
 * whole body (size, syntax).  offset is the byte offset of a syntax error
 * (0 otherwise).  Both strings are always NUL-terminated, truncated if long.
 */
typedef struct luna_json_error {
    luna_err code;
    size_t offset;
    char path[LUNA_JSON_PATH_MAX];
    char message[LUNA_JSON_MSG_MAX];
} luna_json_error;

/*
 * Parses and validates body[0..len) (no NUL terminator needed; a NUL byte
 * inside is refused).  On success *out owns a new reference to the root
 * object: release it with json_decref().  On failure *out is NULL and err
 * (if not NULL) says why.
 * Errors: LUNA_ERR_TOO_LARGE (over max_bytes, too deep), LUNA_ERR_FORMAT
 * (syntax, encoding, schema), LUNA_ERR_NOMEM, LUNA_ERR_INVALID_ARG (NULL
 * body with len > 0, NULL schema/out, limits above the ceilings, or a
 * malformed schema table such as an ARRAY without items).
 */
luna_err luna_json_parse(const char *body, size_t len, const luna_json_schema *schema,
                         const luna_json_limits *limits, json_t **out,
                         luna_json_error *err) LUNA_MUST_CHECK;

/*
 * Validates an already built tree (e.g. one a component assembled, or a
 * config after environment overrides) against a schema.  Same checks and
 * errors as step 4 above; limits as above (NULL: defaults).  The tree's
 * nesting must not exceed limits->max_depth (checked).
 */
luna_err luna_json_validate(const json_t *root, const luna_json_schema *schema,
                            const luna_json_limits *limits, luna_json_error *err) LUNA_MUST_CHECK;

/* ---- typed getters ----
 * For reading a tree that passed validation.  name is a dotted path through
 * objects ("listen.port"); obj must be an object.  Errors:
 * LUNA_ERR_NOT_FOUND when a member on the path is absent (an optional field
 * left out), LUNA_ERR_FORMAT when it has another type (or does not decode),
 * LUNA_ERR_INVALID_ARG for NULL arguments, LUNA_ERR_TOO_LARGE when decoded
 * bytes do not fit out_cap.  Strings point into the tree: valid while it is.
 */
luna_err luna_json_get(const json_t *obj, const char *name, const json_t **out) LUNA_MUST_CHECK;
luna_err luna_json_get_string(const json_t *obj, const char *name, const char **out,
                              size_t *out_len) LUNA_MUST_CHECK;
luna_err luna_json_get_int(const json_t *obj, const char *name, int64_t *out) LUNA_MUST_CHECK;
luna_err luna_json_get_bool(const json_t *obj, const char *name, bool *out) LUNA_MUST_CHECK;
luna_err luna_json_get_real(const json_t *obj, const char *name, double *out) LUNA_MUST_CHECK;
luna_err luna_json_get_object(const json_t *obj, const char *name,
                              const json_t **out) LUNA_MUST_CHECK;
/* *out is the array; *count its number of items. */
luna_err luna_json_get_array(const json_t *obj, const char *name, const json_t **out,
                             size_t *count) LUNA_MUST_CHECK;
/* Decode into out[0..out_cap); on any failure out is wiped (keys pass here). */
luna_err luna_json_get_b64url(const json_t *obj, const char *name, uint8_t *out, size_t out_cap,
                              size_t *out_len) LUNA_MUST_CHECK;
luna_err luna_json_get_hex(const json_t *obj, const char *name, uint8_t *out, size_t out_cap,
                           size_t *out_len) LUNA_MUST_CHECK;

#endif
