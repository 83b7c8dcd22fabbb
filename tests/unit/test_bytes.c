/* Unit tests for the bounded reader, capped writer and codecs. */
#include <string.h>

#include "luna/bytes.h"
#include "luna_test.h"

static void reader_refuses_overread(void **state)
{
    (void)state;
    const uint8_t buf[5] = {0x01, 0x02, 0x03, 0x04, 0x05};
    luna_reader r;
    uint32_t v32;
    uint16_t v16;
    uint8_t v8;
    luna_reader_init(&r, buf, sizeof(buf));
    assert_luna_ok(luna_read_u32(&r, &v32));
    assert_int_equal(0x01020304u, v32);
    assert_luna_err(LUNA_ERR_FORMAT, luna_read_u16(&r, &v16));
    assert_int_equal(1, luna_reader_left(&r)); /* failed read moved nothing */
    assert_luna_err(LUNA_ERR_FORMAT, luna_read_end(&r));
    assert_luna_ok(luna_read_u8(&r, &v8));
    assert_int_equal(5, v8);
    assert_luna_ok(luna_read_end(&r));
    assert_luna_err(LUNA_ERR_FORMAT, luna_read_skip(&r, 1));
    luna_reader_init(&r, buf, sizeof(buf));
    assert_luna_ok(luna_read_u16_le(&r, &v16));
    assert_int_equal(0x0201u, v16);
    assert_luna_err(LUNA_ERR_FORMAT, luna_read_skip(&r, SIZE_MAX));
}

static void writer_caps(void **state)
{
    (void)state;
    uint8_t mem[6];
    luna_wbuf w;
    luna_wbuf_init(&w, mem, sizeof(mem));
    assert_luna_ok(luna_write_u32(&w, 0xa1b2c3d4u));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_write_u32(&w, 1));
    assert_int_equal(4, w.len);
    assert_luna_ok(luna_write_u16(&w, 0x0506));
    const uint8_t want[6] = {0xa1, 0xb2, 0xc3, 0xd4, 0x05, 0x06};
    assert_memory_equal(want, mem, 6);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_write_u8(&w, 0));
}

static void hex_roundtrip_and_errors(void **state)
{
    (void)state;
    const uint8_t in[4] = {0x00, 0x9f, 0xa0, 0xff};
    char hex[9];
    uint8_t out[4];
    size_t n = 0;
    assert_luna_ok(luna_hex_encode(in, 4, hex, sizeof(hex)));
    assert_string_equal("009fa0ff", hex);
    assert_luna_ok(luna_hex_decode("009FA0ff", 8, out, sizeof(out), &n));
    assert_int_equal(4, n);
    assert_memory_equal(in, out, 4);
    assert_luna_err(LUNA_ERR_FORMAT, luna_hex_decode("0", 1, out, 4, &n));
    assert_luna_err(LUNA_ERR_FORMAT, luna_hex_decode("0g", 2, out, 4, &n));
    assert_luna_err(LUNA_ERR_FORMAT, luna_hex_decode("/0", 2, out, 4, &n));
    assert_luna_err(LUNA_ERR_FORMAT, luna_hex_decode(":0", 2, out, 4, &n));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_hex_decode("0000000000", 10, out, 4, &n));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hex_encode(in, 4, hex, 8));
}

static void b64url_rfc4648_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10, with the url alphabet and padding removed. */
    static const struct { const char *plain, *enc; } v[] = {
        {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char enc[16];
        uint8_t dec[16];
        size_t n = 99;
        size_t pl = strlen(v[i].plain);
        assert_luna_ok(luna_b64url_encode((const uint8_t *)v[i].plain, pl, enc, sizeof(enc)));
        assert_string_equal(v[i].enc, enc);
        assert_luna_ok(luna_b64url_decode(v[i].enc, strlen(v[i].enc), dec, sizeof(dec), &n));
        assert_int_equal(pl, n);
        assert_memory_equal(v[i].plain, dec, pl);
    }
    const uint8_t all[3] = {0xfb, 0xff, 0xbf};
    char enc[8];
    assert_luna_ok(luna_b64url_encode(all, 3, enc, sizeof(enc)));
    assert_string_equal("-_-_", enc);
    uint8_t dec[8];
    size_t n;
    assert_luna_err(LUNA_ERR_FORMAT, luna_b64url_decode("Zm9v+A", 6, dec, 8, &n));
    assert_luna_err(LUNA_ERR_FORMAT, luna_b64url_decode("Zm9vYg==", 8, dec, 8, &n));
    assert_luna_err(LUNA_ERR_FORMAT, luna_b64url_decode("Zh", 2, dec, 8, &n)); /* non-canonical */
    assert_luna_err(LUNA_ERR_FORMAT, luna_b64url_decode("Zm9vY", 5, dec, 8, &n));
    assert_luna_err(LUNA_ERR_FORMAT, luna_b64url_decode("Zm 9", 4, dec, 8, &n));
}

static void ct_equal(void **state)
{
    (void)state;
    assert_true(luna_ct_equal("abc", "abc", 3));
    assert_false(luna_ct_equal("abc", "abd", 3));
    assert_true(luna_ct_equal("", "", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reader_refuses_overread), cmocka_unit_test(writer_caps),
        cmocka_unit_test(hex_roundtrip_and_errors), cmocka_unit_test(b64url_rfc4648_vectors),
        cmocka_unit_test(ct_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
