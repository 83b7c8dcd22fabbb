/*
 * cbor.c - the bounded CBOR pull reader (luna/cbor.h).
 *
 * It must never read past the reader's bytes, never recurse deeper than
 * LUNA_CBOR_MAX_DEPTH, never accept a count it could not possibly read
 * (so a hostile header cannot make a caller loop for 2^64 elements), and
 * never accept two encodings of the same value.
 */
#include "luna/cbor.h"

#include <string.h>

luna_err luna_cbor_read(luna_reader *r, luna_cbor_item *out)
{
    uint8_t ib = 0;
    uint64_t arg = 0;

    if (r == NULL || out == NULL)
        return LUNA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    LUNA_GUARD(luna_read_u8(r, &ib));
    const uint8_t major = ib >> 5, ai = ib & 0x1f;
    if (ai < 24) {
        arg = ai;
    } else if (ai == 24) {
        uint8_t v = 0;
        LUNA_GUARD(luna_read_u8(r, &v));
        /* Preferred encoding: one byte only for values 24..255; for
           simple values, 24..31 are not well-formed. */
        LUNA_ENSURE(v >= 24 && major != LUNA_CBOR_SIMPLE, LUNA_ERR_FORMAT);
        arg = v;
    } else if (ai == 25) {
        uint16_t v = 0;
        LUNA_GUARD(luna_read_u16(r, &v));
        LUNA_ENSURE(v > 0xff, LUNA_ERR_FORMAT);
        arg = v;
    } else if (ai == 26) {
        uint32_t v = 0;
        LUNA_GUARD(luna_read_u32(r, &v));
        LUNA_ENSURE(v > 0xffff, LUNA_ERR_FORMAT);
        arg = v;
    } else if (ai == 27) {
        uint64_t v = 0;
        LUNA_GUARD(luna_read_u64(r, &v));
        LUNA_ENSURE(v > 0xffffffffu, LUNA_ERR_FORMAT);
        arg = v;
    } else if (ai == 31) {
        return LUNA_ERR_UNSUPPORTED; /* indefinite length */
    } else {
        return LUNA_ERR_FORMAT; /* 28..30 reserved */
    }
    /* Floats (ai 25..27 of major 7) and simple values other than
       false/true/null are outside the subset. */
    if (major == LUNA_CBOR_SIMPLE &&
        (ai >= 24 || (arg != LUNA_CBOR_FALSE && arg != LUNA_CBOR_TRUE && arg != LUNA_CBOR_NULL)))
        return LUNA_ERR_UNSUPPORTED;
    out->major = (luna_cbor_major)major;
    out->arg = arg;
    switch (out->major) {
    case LUNA_CBOR_BYTES:
    case LUNA_CBOR_TEXT:
        LUNA_ENSURE(arg <= luna_reader_left(r), LUNA_ERR_FORMAT);
        LUNA_GUARD(luna_read_view(r, &out->data, (size_t)arg));
        break;
    case LUNA_CBOR_ARRAY:
        LUNA_ENSURE(arg <= luna_reader_left(r), LUNA_ERR_FORMAT);
        break;
    case LUNA_CBOR_MAP:
        LUNA_ENSURE(arg <= luna_reader_left(r) / 2, LUNA_ERR_FORMAT);
        break;
    default:
        break;
    }
    return LUNA_OK;
}

static luna_err skip_depth(luna_reader *r, unsigned depth)
{
    luna_cbor_item it;
    LUNA_ENSURE(depth < LUNA_CBOR_MAX_DEPTH, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_cbor_read(r, &it));
    switch (it.major) {
    case LUNA_CBOR_ARRAY:
        for (uint64_t i = 0; i < it.arg; i++)
            LUNA_GUARD(skip_depth(r, depth + 1));
        return LUNA_OK;
    case LUNA_CBOR_MAP:
        for (uint64_t i = 0; i < 2 * it.arg; i++)
            LUNA_GUARD(skip_depth(r, depth + 1));
        return LUNA_OK;
    case LUNA_CBOR_TAG:
        return skip_depth(r, depth + 1);
    default:
        return LUNA_OK;
    }
}

luna_err luna_cbor_skip(luna_reader *r)
{
    if (r == NULL)
        return LUNA_ERR_INVALID_ARG;
    return skip_depth(r, 0);
}

bool luna_cbor_text_is(const luna_cbor_item *it, const char *s)
{
    size_t n = strlen(s);
    return it != NULL && it->major == LUNA_CBOR_TEXT && it->arg == n &&
           (n == 0 || memcmp(it->data, s, n) == 0);
}
