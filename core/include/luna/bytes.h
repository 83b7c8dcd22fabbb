/*
 * luna/bytes.h - the bounded reader and the capped writer every binary
 * format goes through (envelope, evidence, IPC messages, proofs).
 *
 * A reader never reads past the bytes it was given: every read either
 * succeeds whole or fails with LUNA_ERR_FORMAT and leaves the cursor where
 * it was.  Integers are big-endian unless the name says _le.  A writer has a
 * hard capacity fixed at init and fails with LUNA_ERR_TOO_LARGE instead of
 * growing past it.  Neither allocates except luna_wbuf_init_alloc.
 * Also here: constant-time compare and the hex/base64url codecs.
 */
#ifndef LUNA_BYTES_H
#define LUNA_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luna/err.h"

typedef struct luna_reader {
    const uint8_t *data;
    size_t len;
    size_t off;
} luna_reader;

void luna_reader_init(luna_reader *r, const uint8_t *data, size_t len);
size_t luna_reader_left(const luna_reader *r);
luna_err luna_read_u8(luna_reader *r, uint8_t *out) LUNA_MUST_CHECK;
luna_err luna_read_u16(luna_reader *r, uint16_t *out) LUNA_MUST_CHECK;
luna_err luna_read_u32(luna_reader *r, uint32_t *out) LUNA_MUST_CHECK;
luna_err luna_read_u64(luna_reader *r, uint64_t *out) LUNA_MUST_CHECK;
luna_err luna_read_u16_le(luna_reader *r, uint16_t *out) LUNA_MUST_CHECK;
luna_err luna_read_u32_le(luna_reader *r, uint32_t *out) LUNA_MUST_CHECK;
luna_err luna_read_u64_le(luna_reader *r, uint64_t *out) LUNA_MUST_CHECK;
/* Copies n bytes into out. */
luna_err luna_read_bytes(luna_reader *r, uint8_t *out, size_t n) LUNA_MUST_CHECK;
/* Points *out at the next n bytes (no copy) and advances. */
luna_err luna_read_view(luna_reader *r, const uint8_t **out, size_t n) LUNA_MUST_CHECK;
luna_err luna_read_skip(luna_reader *r, size_t n) LUNA_MUST_CHECK;
/* LUNA_OK only when every byte was consumed (trailing bytes refused). */
luna_err luna_read_end(const luna_reader *r) LUNA_MUST_CHECK;

typedef struct luna_wbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool owned; /* allocated by luna_wbuf_init_alloc; freed (wiped) by luna_wbuf_free */
} luna_wbuf;

/* Writes into caller memory of cap bytes. */
void luna_wbuf_init(luna_wbuf *w, uint8_t *mem, size_t cap);
/* Allocates cap bytes up front; the cap is the named limit of that use. */
luna_err luna_wbuf_init_alloc(luna_wbuf *w, size_t cap) LUNA_MUST_CHECK;
/* Wipes and frees an owned buffer; a no-op on caller memory. */
void luna_wbuf_free(luna_wbuf *w);
luna_err luna_write_u8(luna_wbuf *w, uint8_t v) LUNA_MUST_CHECK;
luna_err luna_write_u16(luna_wbuf *w, uint16_t v) LUNA_MUST_CHECK;
luna_err luna_write_u32(luna_wbuf *w, uint32_t v) LUNA_MUST_CHECK;
luna_err luna_write_u64(luna_wbuf *w, uint64_t v) LUNA_MUST_CHECK;
luna_err luna_write_bytes(luna_wbuf *w, const void *src, size_t n) LUNA_MUST_CHECK;

/* Constant-time equality of two n-byte buffers: true when equal. */
bool luna_ct_equal(const void *a, const void *b, size_t n);

/* Wipes memory in a way the compiler cannot remove (OPENSSL_cleanse). */
void luna_wipe(void *p, size_t n);

/*
 * Hex, lowercase on output, either case on input.  luna_hex_encode writes
 * 2*n+1 bytes (NUL-terminated) into out of out_cap bytes.  luna_hex_decode
 * takes exactly in_len characters (no NUL needed), refuses odd length and
 * non-hex, and writes in_len/2 bytes into out (out_cap must be enough).
 * Both run in time independent of the byte values (safe for keys).
 */
luna_err luna_hex_encode(const uint8_t *in, size_t n, char *out, size_t out_cap) LUNA_MUST_CHECK;
luna_err luna_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
                         size_t *out_len) LUNA_MUST_CHECK;

/*
 * base64url without padding (RFC 4648 section 5), as JWS uses it.
 * Encode writes a NUL-terminated string; LUNA_B64URL_ENC_LEN(n) is the
 * space needed including the NUL.  Decode refuses padding, '+', '/',
 * whitespace and non-canonical trailing bits.
 */
#define LUNA_B64URL_ENC_LEN(n) ((((n) + 2) / 3) * 4 + 1)
luna_err luna_b64url_encode(const uint8_t *in, size_t n, char *out, size_t out_cap) LUNA_MUST_CHECK;
luna_err luna_b64url_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
                            size_t *out_len) LUNA_MUST_CHECK;

#endif
