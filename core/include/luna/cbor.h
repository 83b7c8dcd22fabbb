/*
 * luna/cbor.h - a small bounded CBOR (RFC 8949) pull reader for the
 * formats the platform verifies (COSE_Sign1, the AWS Nitro attestation
 * document).  It reads only through luna_reader, never allocates, and
 * accepts only the deterministic subset those formats use: definite
 * lengths, preferred (shortest) argument encodings, no floats, and among
 * simple values only false, true and null.  Anything else is
 * LUNA_ERR_FORMAT (LUNA_ERR_UNSUPPORTED for valid CBOR outside the
 * subset: indefinite lengths, floats, other simple values).
 * Thread-safe (no state beyond the caller's reader).
 */
#ifndef LUNA_CBOR_H
#define LUNA_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/bytes.h"
#include "luna/err.h"

typedef enum luna_cbor_major {
    LUNA_CBOR_UINT = 0,
    LUNA_CBOR_NEGINT = 1, /* value is -1 - arg */
    LUNA_CBOR_BYTES = 2,
    LUNA_CBOR_TEXT = 3,
    LUNA_CBOR_ARRAY = 4,
    LUNA_CBOR_MAP = 5,
    LUNA_CBOR_TAG = 6,
    LUNA_CBOR_SIMPLE = 7, /* arg 20 false, 21 true, 22 null */
} luna_cbor_major;

#define LUNA_CBOR_FALSE 20
#define LUNA_CBOR_TRUE 21
#define LUNA_CBOR_NULL 22
#define LUNA_CBOR_MAX_DEPTH 16

typedef struct luna_cbor_item {
    luna_cbor_major major;
    uint64_t arg;          /* integer value, byte/text length, element/pair count, tag */
    const uint8_t *data;   /* bytes/text: a view into the reader's input */
} luna_cbor_item;

/*
 * Reads one item head (and, for bytes and text, its payload as a view).
 * Arrays and maps only report their count: the caller reads the elements
 * (or luna_cbor_skip()s them).  A count larger than the bytes left is
 * refused (each element takes at least one byte).  On error the reader
 * may have advanced.
 */
luna_err luna_cbor_read(luna_reader *r, luna_cbor_item *out) LUNA_MUST_CHECK;
/* Skips one complete item, nesting at most LUNA_CBOR_MAX_DEPTH deep. */
luna_err luna_cbor_skip(luna_reader *r) LUNA_MUST_CHECK;
/* Text equality (the item must be text). */
bool luna_cbor_text_is(const luna_cbor_item *it, const char *s);

#endif
