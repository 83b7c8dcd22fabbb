/*
 * luna/audit_entry.h - the audit log's entry: its fields, their character
 * rules, and its one canonical byte form (the Merkle leaf data).
 *
 * docs/audit.md section 2 is the byte-exact format.  In short, the leaf is
 * a JSON object with every key present, in this order, no white space:
 *
 *   {"v":1,"time":<ms>,"component":"..","actor":"..","tenant":"..",
 *    "tee":"..","deployment":"..","operation":"..","objects":[".."],
 *    "outcome":"..","reason":"..","request_id":".."}
 *
 * Every string obeys a character whitelist that contains no JSON
 * metacharacter ('"', '\\'), no control byte (so no newline, no NUL) and
 * nothing outside printable ASCII, so no value ever needs escaping and the
 * encoding is unique: decode re-encodes and refuses any input whose bytes
 * differ.  An entry never holds a secret: it names things (ids), it never
 * carries key material, tokens or payloads; the whitelist and the length
 * caps leave no room for a blob.
 *
 * Errors: LUNA_ERR_FORMAT for a field that breaks a rule (never echoing
 * the value), LUNA_ERR_TOO_LARGE for a buffer too small, LUNA_ERR_INVALID_ARG
 * for NULL arguments.
 *
 * Thread safety: no shared state; everything is reentrant.
 */
#ifndef LUNA_AUDIT_ENTRY_H
#define LUNA_AUDIT_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "luna/err.h"
#include "luna/json.h"

#define LUNA_AUDIT_ENTRY_VERSION 1
/* Identifiers (component, actor, tenant, tee, deployment, objects):
 * [A-Za-z0-9._:/@-], at most this many bytes. */
#define LUNA_AUDIT_ID_MAX 128
/* operation: [a-z0-9._-], 1..LUNA_AUDIT_OP_MAX bytes, e.g. "key.release". */
#define LUNA_AUDIT_OP_MAX 64
/* request_id: [A-Za-z0-9._-], 1..64 bytes (the X-Request-Id grammar). */
#define LUNA_AUDIT_REQUEST_ID_MAX 64
/* reason: printable ASCII 0x20..0x7e except '"' and '\\', 0..256 bytes. */
#define LUNA_AUDIT_REASON_MAX 256
#define LUNA_AUDIT_MAX_OBJECTS 16
/* Upper bound of a canonical entry (every field at its maximum). */
#define LUNA_AUDIT_ENTRY_MAX 4096
/* Latest accepted time: 9999-12-31T23:59:59.999Z in ms. */
#define LUNA_AUDIT_TIME_MAX INT64_C(253402300799999)

typedef enum luna_audit_outcome {
    LUNA_AUDIT_SUCCESS = 1, /* "success" */
    LUNA_AUDIT_DENIED = 2,  /* "denied": refused by policy or verification */
    LUNA_AUDIT_FAILURE = 3, /* "failure": could not be done (error) */
} luna_audit_outcome;

/*
 * One entry.  Strings are NUL-terminated; an empty tenant, tee, deployment
 * or reason means "not applicable".  component, actor, operation and
 * request_id are required (non-empty).  Plain data: copy freely.
 */
typedef struct luna_audit_entry {
    int64_t time_ms;                          /* Unix ms, set by the log */
    char component[LUNA_AUDIT_ID_MAX + 1];    /* writer's mTLS identity, set by the log */
    char actor[LUNA_AUDIT_ID_MAX + 1];        /* principal that caused it */
    char tenant[LUNA_AUDIT_ID_MAX + 1];
    char tee[LUNA_AUDIT_ID_MAX + 1];
    char deployment[LUNA_AUDIT_ID_MAX + 1];
    char operation[LUNA_AUDIT_OP_MAX + 1];
    size_t n_objects;
    char objects[LUNA_AUDIT_MAX_OBJECTS][LUNA_AUDIT_ID_MAX + 1];
    luna_audit_outcome outcome;
    char reason[LUNA_AUDIT_REASON_MAX + 1];
    char request_id[LUNA_AUDIT_REQUEST_ID_MAX + 1];
} luna_audit_entry;

/* "success" / "denied" / "failure"; NULL for an unknown value. */
const char *luna_audit_outcome_name(luna_audit_outcome o);
luna_err luna_audit_outcome_parse(const char *name, luna_audit_outcome *out) LUNA_MUST_CHECK;

/* Character rules, for callers that build entries (true when acceptable;
 * s is NUL-terminated, required means non-empty). */
bool luna_audit_id_ok(const char *s, bool required);
bool luna_audit_op_ok(const char *s);
bool luna_audit_request_id_ok(const char *s);
bool luna_audit_reason_ok(const char *s);

/*
 * Copies src into dst (cap bytes, NUL-terminated) when it fits; else
 * LUNA_ERR_TOO_LARGE with dst set to "".  For filling the fixed arrays.
 */
luna_err luna_audit_set(char *dst, size_t cap, const char *src) LUNA_MUST_CHECK;

/* Every rule above, the time in 0..LUNA_AUDIT_TIME_MAX, objects distinct
 * is NOT required (order and repetition are kept as given). */
luna_err luna_audit_entry_check(const luna_audit_entry *e) LUNA_MUST_CHECK;

/*
 * Writes the canonical bytes (no NUL) into out; out_cap >=
 * LUNA_AUDIT_ENTRY_MAX always suffices.  Checks the entry first.
 */
luna_err luna_audit_entry_encode(const luna_audit_entry *e, uint8_t *out, size_t out_cap,
                                 size_t *out_len) LUNA_MUST_CHECK;

/*
 * Parses canonical bytes (untrusted: a leaf from the log or an export
 * line).  Strict JSON parse against the entry schema, field rules, then
 * byte-for-byte comparison with the re-encoding: anything but the one
 * canonical form is LUNA_ERR_FORMAT; a version other than 1 is
 * LUNA_ERR_UNSUPPORTED; over LUNA_AUDIT_ENTRY_MAX is LUNA_ERR_TOO_LARGE.
 * *out is zeroed on error.
 */
luna_err luna_audit_entry_decode(const uint8_t *in, size_t len,
                                 luna_audit_entry *out) LUNA_MUST_CHECK;

/*
 * The body a component POSTs to the log: a JSON object with the fields the
 * writer chooses (actor, tenant, tee, deployment, operation, objects,
 * outcome, reason, request_id); v, time and component are not accepted
 * (the log sets them).  Optional: tenant, tee, deployment, objects,
 * reason.  parse fills *out (time_ms 0, component "") or returns
 * LUNA_ERR_FORMAT / LUNA_ERR_TOO_LARGE with jerr (may be NULL) naming the
 * field.  to_request builds that body from an entry (new reference).
 */
luna_err luna_audit_entry_parse_request(const uint8_t *body, size_t len, luna_audit_entry *out,
                                        luna_json_error *jerr) LUNA_MUST_CHECK;
luna_err luna_audit_entry_to_request(const luna_audit_entry *e, json_t **out) LUNA_MUST_CHECK;

/* The whole entry as a JSON object (same keys as the canonical form). */
luna_err luna_audit_entry_to_json(const luna_audit_entry *e, json_t **out) LUNA_MUST_CHECK;

/*
 * True when the writer-chosen fields of a and b are equal (actor, tenant,
 * tee, deployment, operation, objects, outcome, reason, request_id): how a
 * client checks the log recorded what it sent.
 */
bool luna_audit_entry_same_request(const luna_audit_entry *a, const luna_audit_entry *b);

#endif
