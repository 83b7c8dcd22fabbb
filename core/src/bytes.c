/*
 * bytes.c - bounded reader, capped writer, constant-time compare and the
 * constant-time hex/base64url codecs.  Owns no memory except an owned
 * luna_wbuf; must never read or write outside the bounds it was given.
 */
#include "luna/bytes.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void luna_reader_init(luna_reader *r, const uint8_t *data, size_t len)
{
    r->data = data;
    r->len = data != NULL ? len : 0;
    r->off = 0;
}

size_t luna_reader_left(const luna_reader *r)
{
    return r->len - r->off;
}

luna_err luna_read_view(luna_reader *r, const uint8_t **out, size_t n)
{
    if (n > luna_reader_left(r))
        return LUNA_ERR_FORMAT;
    *out = r->data + r->off;
    r->off += n;
    return LUNA_OK;
}

luna_err luna_read_bytes(luna_reader *r, uint8_t *out, size_t n)
{
    const uint8_t *p;
    LUNA_GUARD(luna_read_view(r, &p, n));
    if (n > 0)
        memcpy(out, p, n);
    return LUNA_OK;
}

luna_err luna_read_skip(luna_reader *r, size_t n)
{
    const uint8_t *p;
    return luna_read_view(r, &p, n);
}

static luna_err read_uint(luna_reader *r, size_t n, int little, uint64_t *out)
{
    const uint8_t *p;
    uint64_t v = 0;
    LUNA_GUARD(luna_read_view(r, &p, n));
    for (size_t i = 0; i < n; i++) {
        size_t idx = little ? n - 1 - i : i;
        v = (v << 8) | p[idx];
    }
    *out = v;
    return LUNA_OK;
}

luna_err luna_read_u8(luna_reader *r, uint8_t *out)
{
    uint64_t v;
    LUNA_GUARD(read_uint(r, 1, 0, &v));
    *out = (uint8_t)v;
    return LUNA_OK;
}

luna_err luna_read_u16(luna_reader *r, uint16_t *out)
{
    uint64_t v;
    LUNA_GUARD(read_uint(r, 2, 0, &v));
    *out = (uint16_t)v;
    return LUNA_OK;
}

luna_err luna_read_u32(luna_reader *r, uint32_t *out)
{
    uint64_t v;
    LUNA_GUARD(read_uint(r, 4, 0, &v));
    *out = (uint32_t)v;
    return LUNA_OK;
}

luna_err luna_read_u64(luna_reader *r, uint64_t *out)
{
    return read_uint(r, 8, 0, out);
}

luna_err luna_read_u16_le(luna_reader *r, uint16_t *out)
{
    uint64_t v;
    LUNA_GUARD(read_uint(r, 2, 1, &v));
    *out = (uint16_t)v;
    return LUNA_OK;
}

luna_err luna_read_u32_le(luna_reader *r, uint32_t *out)
{
    uint64_t v;
    LUNA_GUARD(read_uint(r, 4, 1, &v));
    *out = (uint32_t)v;
    return LUNA_OK;
}

luna_err luna_read_u64_le(luna_reader *r, uint64_t *out)
{
    return read_uint(r, 8, 1, out);
}

luna_err luna_read_end(const luna_reader *r)
{
    return luna_reader_left(r) == 0 ? LUNA_OK : LUNA_ERR_FORMAT;
}

void luna_wbuf_init(luna_wbuf *w, uint8_t *mem, size_t cap)
{
    w->data = mem;
    w->len = 0;
    w->cap = mem != NULL ? cap : 0;
    w->owned = false;
}

luna_err luna_wbuf_init_alloc(luna_wbuf *w, size_t cap)
{
    luna_wbuf_init(w, NULL, 0);
    if (cap == 0)
        return LUNA_ERR_INVALID_ARG;
    w->data = malloc(cap);
    if (w->data == NULL)
        return LUNA_ERR_NOMEM;
    w->cap = cap;
    w->owned = true;
    return LUNA_OK;
}

void luna_wbuf_free(luna_wbuf *w)
{
    if (w == NULL || !w->owned)
        return;
    luna_wipe(w->data, w->cap);
    free(w->data);
    luna_wbuf_init(w, NULL, 0);
}

luna_err luna_write_bytes(luna_wbuf *w, const void *src, size_t n)
{
    if (n > w->cap - w->len)
        return LUNA_ERR_TOO_LARGE;
    if (n > 0)
        memcpy(w->data + w->len, src, n);
    w->len += n;
    return LUNA_OK;
}

static luna_err write_uint(luna_wbuf *w, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return luna_write_bytes(w, b, n);
}

luna_err luna_write_u8(luna_wbuf *w, uint8_t v)
{
    return write_uint(w, v, 1);
}

luna_err luna_write_u16(luna_wbuf *w, uint16_t v)
{
    return write_uint(w, v, 2);
}

luna_err luna_write_u32(luna_wbuf *w, uint32_t v)
{
    return write_uint(w, v, 4);
}

luna_err luna_write_u64(luna_wbuf *w, uint64_t v)
{
    return write_uint(w, v, 8);
}

bool luna_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void luna_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

/* Branch-free nibble -> hex digit: 0..9 -> '0'..'9', 10..15 -> 'a'..'f'. */
static char hex_digit(unsigned v)
{
    /* mask is all ones when v > 9 */
    unsigned mask = (unsigned)-(int)((9u - v) >> 31);
    return (char)(v + '0' + (mask & ('a' - '0' - 10)));
}

/*
 * Hex digit -> value; *bad gets 1 when c is not hex.  Comparisons compile
 * to flag-setting instructions, not branches, so key bytes choose no path.
 */
static unsigned hex_value(unsigned c, unsigned *bad)
{
    unsigned d = c - '0';
    unsigned lo = (c | 0x20u) - 'a';
    unsigned is_d = (unsigned)(d < 10u);
    unsigned is_l = (unsigned)(lo < 6u);
    *bad |= (is_d | is_l) ^ 1u;
    return (d & -is_d) | ((lo + 10u) & -is_l);
}

luna_err luna_hex_encode(const uint8_t *in, size_t n, char *out, size_t out_cap)
{
    if (out == NULL || (in == NULL && n > 0) || n > (SIZE_MAX - 1) / 2 || out_cap < 2 * n + 1)
        return LUNA_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digit(in[i] >> 4);
        out[2 * i + 1] = hex_digit(in[i] & 0x0f);
    }
    out[2 * n] = '\0';
    return LUNA_OK;
}

luna_err luna_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
                         size_t *out_len)
{
    unsigned bad = 0;
    if ((in == NULL && in_len > 0) || (in_len % 2) != 0)
        return LUNA_ERR_FORMAT;
    if (in_len / 2 > out_cap || (out == NULL && in_len > 0))
        return LUNA_ERR_TOO_LARGE;
    for (size_t i = 0; i < in_len / 2; i++) {
        unsigned hi = hex_value((unsigned char)in[2 * i], &bad);
        unsigned lo = hex_value((unsigned char)in[2 * i + 1], &bad);
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    if (bad) {
        luna_wipe(out, in_len / 2);
        return LUNA_ERR_FORMAT;
    }
    if (out_len != NULL)
        *out_len = in_len / 2;
    return LUNA_OK;
}

/* Branch-free 6-bit value -> base64url character. */
static char b64_char(unsigned v)
{
    /* ranges: 0-25 'A'.., 26-51 'a'.., 52-61 '0'.., 62 '-', 63 '_' */
    unsigned ge26 = ((25u - v) >> 31) & 1u;
    unsigned ge52 = ((51u - v) >> 31) & 1u;
    unsigned is62 = ((v ^ 62u) - 1u) >> 31 & 1u;
    unsigned is63 = ((v ^ 63u) - 1u) >> 31 & 1u;
    unsigned c = v + 'A';
    c += ge26 * ('a' - 'A' - 26);
    c -= ge52 * ('a' + 26 - '0');
    c = (c & -(1u - is62 - is63)) | ('-' & -is62) | ('_' & -is63);
    return (char)c;
}

/* base64url character -> value; *bad set when invalid (no branches). */
static unsigned b64_value(unsigned c, unsigned *bad)
{
    unsigned up = c - 'A', low = c - 'a', dig = c - '0';
    unsigned in_up = (unsigned)(up < 26u);
    unsigned in_low = (unsigned)(low < 26u);
    unsigned in_dig = (unsigned)(dig < 10u);
    unsigned is_dash = (unsigned)(c == '-');
    unsigned is_us = (unsigned)(c == '_');
    *bad |= (in_up | in_low | in_dig | is_dash | is_us) ^ 1u;
    return (up & -in_up) | ((low + 26u) & -in_low) | ((dig + 52u) & -in_dig) |
           (62u & -is_dash) | (63u & -is_us);
}

luna_err luna_b64url_encode(const uint8_t *in, size_t n, char *out, size_t out_cap)
{
    size_t o = 0, i = 0;
    if (out == NULL || (in == NULL && n > 0) || n > SIZE_MAX / 2 ||
        out_cap < LUNA_B64URL_ENC_LEN(n))
        return LUNA_ERR_INVALID_ARG;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_char((v >> 18) & 63u);
        out[o++] = b64_char((v >> 12) & 63u);
        out[o++] = b64_char((v >> 6) & 63u);
        out[o++] = b64_char(v & 63u);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_char((v >> 18) & 63u);
        out[o++] = b64_char((v >> 12) & 63u);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_char((v >> 18) & 63u);
        out[o++] = b64_char((v >> 12) & 63u);
        out[o++] = b64_char((v >> 6) & 63u);
    }
    out[o] = '\0';
    return LUNA_OK;
}

luna_err luna_b64url_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
                            size_t *out_len)
{
    unsigned bad = 0;
    size_t o = 0, i = 0;
    size_t rem = in_len % 4;
    size_t need = in_len / 4 * 3 + (rem == 0 ? 0 : rem - 1);

    if ((in == NULL && in_len > 0) || rem == 1)
        return LUNA_ERR_FORMAT;
    if (need > out_cap || (out == NULL && need > 0))
        return LUNA_ERR_TOO_LARGE;
    for (; i + 4 <= in_len; i += 4) {
        uint32_t v = b64_value((unsigned char)in[i], &bad) << 18 |
                     b64_value((unsigned char)in[i + 1], &bad) << 12 |
                     b64_value((unsigned char)in[i + 2], &bad) << 6 |
                     b64_value((unsigned char)in[i + 3], &bad);
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rem >= 2) {
        uint32_t v = b64_value((unsigned char)in[i], &bad) << 18 |
                     b64_value((unsigned char)in[i + 1], &bad) << 12;
        if (rem == 3)
            v |= b64_value((unsigned char)in[i + 2], &bad) << 6;
        out[o++] = (uint8_t)(v >> 16);
        if (rem == 3) {
            out[o++] = (uint8_t)(v >> 8);
            bad |= (v & 0xffu) != 0; /* non-canonical trailing bits */
        } else {
            bad |= (v & 0xffffu) != 0;
        }
    }
    if (bad) {
        luna_wipe(out, o);
        return LUNA_ERR_FORMAT;
    }
    if (out_len != NULL)
        *out_len = o;
    return LUNA_OK;
}
