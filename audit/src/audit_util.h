/*
 * audit_util.h - small helpers the audit service and the witness share
 * (private to audit/): key files, strict query strings, proof JSON.
 */
#ifndef LUNA_AUDIT_UTIL_H
#define LUNA_AUDIT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "luna/err.h"
#include "luna/merkle.h"
#include "luna/note.h"

/* Longest key file accepted (an skey is about 330 bytes at most). */
#define AUDIT_KEY_FILE_MAX 1024u

/*
 * Reads an skey file (luna/note.h) and returns its signer.  The file must
 * be a regular file, not a symlink, owned by the effective user and not
 * readable or writable by group or others (LUNA_ERR_PERMISSION
 * otherwise); one trailing "\n" is allowed.
 * The buffer holding the text is wiped.  When name is not NULL the key
 * name must equal it (LUNA_ERR_CONFIG otherwise).
 */
luna_err audit_read_signer(const char *path, const char *name,
                           luna_note_signer **out) LUNA_MUST_CHECK;

/*
 * Generates a fresh Ed25519 key named name and writes its skey to path
 * (created with O_EXCL, mode 0600); writes the vkey text into vkey
 * (LUNA_NOTE_VKEY_MAX_LEN bytes).
 */
luna_err audit_keygen(const char *name, const char *path, char *vkey,
                      size_t vkey_cap) LUNA_MUST_CHECK;

/* What tells one version of a file from the next (a rewrite in place or a
 * rename over it changes at least one field). */
typedef struct audit_file_id {
    uint64_t dev, ino, size;
    int64_t mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
} audit_file_id;

/*
 * Reads a small public file (vkey, JWKS) whole; *out malloc'd,
 * NUL-terminated.  More than max bytes is LUNA_ERR_TOO_LARGE.  id (may be
 * NULL) receives the identity of the very file that was read (fstat of
 * the open descriptor, so no race with a rename).
 */
luna_err audit_read_small_file(const char *path, size_t max, char **out, size_t *len,
                               audit_file_id *id) LUNA_MUST_CHECK;

/* The identity of the file at path now (stat); LUNA_ERR_NOT_FOUND, LUNA_ERR_IO. */
luna_err audit_file_id_get(const char *path, audit_file_id *id) LUNA_MUST_CHECK;
bool audit_file_id_equal(const audit_file_id *a, const audit_file_id *b);

/* Strict decimal u64: digits only, no sign, no leading zero (but "0"). */
luna_err audit_parse_u64(const char *s, size_t len, uint64_t *out) LUNA_MUST_CHECK;

#define AUDIT_QUERY_MAX_PARAMS 12
#define AUDIT_QUERY_MAX_VALUE 128
typedef struct audit_query {
    size_t n;
    char key[AUDIT_QUERY_MAX_PARAMS][24];
    char value[AUDIT_QUERY_MAX_PARAMS][AUDIT_QUERY_MAX_VALUE + 1];
} audit_query;

/*
 * Parses "a=b&c=d" (NULL or "" = no parameter).  Keys must be in allowed
 * (NULL-terminated) and appear once; values are 1..AUDIT_QUERY_MAX_VALUE
 * bytes of [A-Za-z0-9._:/@-] taken literally (no percent-decoding, so no
 * second spelling of a value).  LUNA_ERR_FORMAT otherwise.
 */
luna_err audit_query_parse(const char *qs, const char *const *allowed,
                           audit_query *out) LUNA_MUST_CHECK;
/* The value of key, or NULL when absent. */
const char *audit_query_get(const audit_query *q, const char *key);

/* A JSON array of lowercase hex strings for a proof (new reference). */
json_t *audit_proof_json(const luna_merkle_proof *p);
/* Builds a proof from such an array (untrusted; FORMAT / TOO_LARGE). */
luna_err audit_proof_from_json(const json_t *arr, luna_merkle_proof *out) LUNA_MUST_CHECK;

/* Unix time in milliseconds. */
int64_t audit_now_ms(void);

#endif
