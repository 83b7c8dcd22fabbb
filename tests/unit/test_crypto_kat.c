/*
 * Known-answer and negative tests for the crypto wrappers (luna/crypto.h).
 * Vectors are transcribed from the RFCs / the GCM spec named next to each;
 * the negative cases check the wrapper contracts (tag flip wipes output,
 * zero X25519 secret refused, strict DER, lengths, clean error queue).
 */
#include <string.h>

#include <openssl/err.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna_test.h"

/* Decodes a hex literal into buf (cap bytes); returns its length. */
static size_t hx(const char *hex, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    assert_luna_ok(luna_hex_decode(hex, strlen(hex), buf, cap, &n));
    return n;
}

static void assert_hex_equal(const char *hex, const uint8_t *got, size_t got_len)
{
    uint8_t want[512];
    size_t n = hx(hex, want, sizeof(want));
    assert_int_equal(n, got_len);
    assert_memory_equal(want, got, n);
}

static bool is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* ---- hashes, HMAC, HKDF ---- */

static void sha256_abc(void **state)
{
    (void)state;
    uint8_t d[LUNA_SHA256_LEN];
    assert_luna_ok(luna_sha256("abc", 3, d));
    assert_hex_equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", d,
                     sizeof(d));
    assert_luna_ok(luna_sha256(NULL, 0, d));
    assert_hex_equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", d,
                     sizeof(d));
    assert_int_equal(48, luna_hash_len(LUNA_HASH_SHA384));
    assert_int_equal(0, luna_hash_len((luna_hash)99));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hash_digest((luna_hash)99, "a", 1, d));
}

/* RFC 4231 test case 2. */
static void hmac_rfc4231_tc2(void **state)
{
    (void)state;
    const char *msg = "what do ya want for nothing?";
    const uint8_t *key = (const uint8_t *)"Jefe";
    uint8_t mac[LUNA_SHA256_LEN];
    assert_luna_ok(luna_hmac(LUNA_HASH_SHA256, key, 4, (const uint8_t *)msg, strlen(msg), mac));
    assert_hex_equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", mac,
                     sizeof(mac));
    assert_luna_ok(luna_hmac_verify(LUNA_HASH_SHA256, key, 4, (const uint8_t *)msg, strlen(msg),
                                    mac, sizeof(mac)));
    /* Truncated tag (RFC 4231 allows it) verifies; a flipped one does not. */
    assert_luna_ok(luna_hmac_verify(LUNA_HASH_SHA256, key, 4, (const uint8_t *)msg, strlen(msg),
                                    mac, 16));
    mac[31] ^= 0x01;
    assert_luna_err(LUNA_ERR_VERIFY, luna_hmac_verify(LUNA_HASH_SHA256, key, 4,
                                                      (const uint8_t *)msg, strlen(msg), mac,
                                                      sizeof(mac)));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hmac_verify(LUNA_HASH_SHA256, key, 4,
                                                           (const uint8_t *)msg, strlen(msg),
                                                           mac, 0));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hmac_verify(LUNA_HASH_SHA256, key, 4,
                                                           (const uint8_t *)msg, strlen(msg),
                                                           mac, 33));
    /* An empty key is allowed. */
    assert_luna_ok(luna_hmac(LUNA_HASH_SHA256, NULL, 0, NULL, 0, mac));
    assert_hex_equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", mac,
                     sizeof(mac));
}

/* RFC 5869 A.1. */
static void hkdf_rfc5869_a1(void **state)
{
    (void)state;
    uint8_t ikm[22], salt[13], info[10], prk[LUNA_SHA256_LEN], okm[42];
    uint8_t big[255 * 32 + 1];
    memset(ikm, 0x0b, sizeof(ikm));
    hx("000102030405060708090a0b0c", salt, sizeof(salt));
    hx("f0f1f2f3f4f5f6f7f8f9", info, sizeof(info));
    assert_luna_ok(luna_hkdf_extract(LUNA_HASH_SHA256, salt, sizeof(salt), ikm, sizeof(ikm), prk));
    assert_hex_equal("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", prk,
                     sizeof(prk));
    assert_luna_ok(luna_hkdf_expand(LUNA_HASH_SHA256, prk, sizeof(prk), info, sizeof(info), okm,
                                    sizeof(okm)));
    assert_hex_equal("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                     "34007208d5b887185865",
                     okm, sizeof(okm));
    memset(okm, 0, sizeof(okm));
    assert_luna_ok(luna_hkdf(LUNA_HASH_SHA256, salt, sizeof(salt), ikm, sizeof(ikm), info,
                             sizeof(info), okm, sizeof(okm)));
    assert_hex_equal("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                     "34007208d5b887185865",
                     okm, sizeof(okm));
    /* 255 * HashLen is the maximum; one more byte is refused. */
    assert_luna_ok(luna_hkdf(LUNA_HASH_SHA256, NULL, 0, ikm, sizeof(ikm), NULL, 0, big,
                             255 * 32));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hkdf(LUNA_HASH_SHA256, NULL, 0, ikm, sizeof(ikm),
                                                    NULL, 0, big, sizeof(big)));
    /* info up to the named cap works; one byte more is refused. */
    static uint8_t long_info[LUNA_HKDF_MAX_INFO_LEN + 1];
    assert_luna_ok(luna_hkdf_expand(LUNA_HASH_SHA256, prk, sizeof(prk), long_info,
                                    LUNA_HKDF_MAX_INFO_LEN, okm, sizeof(okm)));
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_hkdf_expand(LUNA_HASH_SHA256, prk, sizeof(prk), long_info,
                                     sizeof(long_info), okm, sizeof(okm)));
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_hkdf(LUNA_HASH_SHA256, NULL, 0, ikm, sizeof(ikm), long_info,
                              sizeof(long_info), okm, sizeof(okm)));
    /* A PRK shorter than HashLen is not a PRK (RFC 5869 2.3). */
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_hkdf_expand(LUNA_HASH_SHA256, prk, 31, NULL, 0, okm, sizeof(okm)));
}

/* RFC 5869 A.3: empty salt and info. */
static void hkdf_rfc5869_a3(void **state)
{
    (void)state;
    uint8_t ikm[22], okm[42];
    memset(ikm, 0x0b, sizeof(ikm));
    assert_luna_ok(luna_hkdf(LUNA_HASH_SHA256, NULL, 0, ikm, sizeof(ikm), NULL, 0, okm,
                             sizeof(okm)));
    assert_hex_equal("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                     "9d201395faa4b61a96c8",
                     okm, sizeof(okm));
}

/* ---- AEAD ---- */

/* GCM spec (McGrew-Viega) test case 16: AES-256, 60-byte P, 20-byte AAD. */
#define GCM16_K "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define GCM16_P                                                                            \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e" \
    "2449a6b525b16aedf5aa0de657ba637b39"
#define GCM16_A "feedfacedeadbeeffeedfacedeadbeefabaddad2"
#define GCM16_IV "cafebabefacedbaddecaf888"
#define GCM16_CT                                                                           \
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b" \
    "1056828838c5f61e6393ba7a0abcc9f662"                                                     \
    "76fc6ece0f4e1768cddf8853bb2d551b"

static void aes256gcm_spec_tc16(void **state)
{
    (void)state;
    uint8_t k[32], p[60], a[20], iv[12], ct[76], out[76];
    hx(GCM16_K, k, sizeof(k));
    hx(GCM16_P, p, sizeof(p));
    hx(GCM16_A, a, sizeof(a));
    hx(GCM16_IV, iv, sizeof(iv));
    assert_luna_ok(luna_aead_seal(LUNA_AEAD_AES256GCM, k, 32, iv, 12, a, 20, p, 60, ct));
    assert_hex_equal(GCM16_CT, ct, sizeof(ct));
    assert_luna_ok(luna_aead_open(LUNA_AEAD_AES256GCM, k, 32, iv, 12, a, 20, ct, 76, out));
    assert_memory_equal(p, out, 60);

    /* In place both ways. */
    memcpy(out, p, 60);
    assert_luna_ok(luna_aead_seal(LUNA_AEAD_AES256GCM, k, 32, iv, 12, a, 20, out, 60, out));
    assert_memory_equal(ct, out, 76);
    assert_luna_ok(luna_aead_open(LUNA_AEAD_AES256GCM, k, 32, iv, 12, a, 20, out, 76, out));
    assert_memory_equal(p, out, 60);

    /* Tag flip: refused, and the plaintext written so far is wiped. */
    ct[75] ^= 0x80;
    memset(out, 0xAA, sizeof(out));
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_aead_open(LUNA_AEAD_AES256GCM, k, 32, iv, 12, a, 20, ct, 76, out));
    assert_true(is_zero(out, 60));
    ct[75] ^= 0x80;
    /* Ciphertext flip and AAD flip are refused too. */
    ct[0] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_aead_open(LUNA_AEAD_AES256GCM, k, 32, iv, 12, a, 20, ct, 76, out));
    ct[0] ^= 1;
    a[0] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_aead_open(LUNA_AEAD_AES256GCM, k, 32, iv, 12, a, 20, ct, 76, out));
    /* In-place failure wipes the caller's buffer. */
    a[0] ^= 1;
    ct[10] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_aead_open(LUNA_AEAD_AES256GCM, k, 32, iv, 12, a, 20, ct, 76, ct));
    assert_true(is_zero(ct, 60));
    assert_int_equal(0, ERR_peek_error());
}

/* GCM spec test case 14: AES-256, zero key, zero IV, one zero block. */
static void aes256gcm_spec_tc14(void **state)
{
    (void)state;
    uint8_t k[32] = {0}, iv[12] = {0}, p[16] = {0}, ct[32];
    assert_luna_ok(luna_aead_seal(LUNA_AEAD_AES256GCM, k, 32, iv, 12, NULL, 0, p, 16, ct));
    assert_hex_equal("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919", ct,
                     sizeof(ct));
    /* Test case 13: empty plaintext, tag only. */
    assert_luna_ok(luna_aead_seal(LUNA_AEAD_AES256GCM, k, 32, iv, 12, NULL, 0, NULL, 0, ct));
    assert_hex_equal("530f8afbc74536b9a963b4f1c4cb738b", ct, 16);
    assert_luna_ok(luna_aead_open(LUNA_AEAD_AES256GCM, k, 32, iv, 12, NULL, 0, ct, 16, NULL));
}

/* RFC 8439 2.8.2. */
static void chacha20poly1305_rfc8439(void **state)
{
    (void)state;
    const char *pt = "Ladies and Gentlemen of the class of '99: If I could offer you only one "
                     "tip for the future, sunscreen would be it.";
    size_t pt_len = strlen(pt);
    uint8_t k[32], nonce[12], aad[12], ct[130], out[130];
    hx("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", k, sizeof(k));
    hx("070000004041424344454647", nonce, sizeof(nonce));
    hx("50515253c0c1c2c3c4c5c6c7", aad, sizeof(aad));
    assert_int_equal(114, pt_len);
    assert_luna_ok(luna_aead_seal(LUNA_AEAD_CHACHA20POLY1305, k, 32, nonce, 12, aad, 12,
                                  (const uint8_t *)pt, pt_len, ct));
    assert_hex_equal("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
                     "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
                     "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
                     "3ff4def08e4b7a9de576d26586cec64b6116"
                     "1ae10b594f09e26a7e902ecbd0600691",
                     ct, pt_len + 16);
    assert_luna_ok(luna_aead_open(LUNA_AEAD_CHACHA20POLY1305, k, 32, nonce, 12, aad, 12, ct,
                                  pt_len + 16, out));
    assert_memory_equal(pt, out, pt_len);
    ct[pt_len] ^= 1; /* first tag byte */
    memset(out, 0xAA, sizeof(out));
    assert_luna_err(LUNA_ERR_VERIFY, luna_aead_open(LUNA_AEAD_CHACHA20POLY1305, k, 32, nonce, 12,
                                                    aad, 12, ct, pt_len + 16, out));
    assert_true(is_zero(out, pt_len));
    /* Only the 96-bit nonce exists for RFC 8439. */
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_aead_seal(LUNA_AEAD_CHACHA20POLY1305, k, 32, nonce, 8, aad, 12,
                                   (const uint8_t *)pt, pt_len, ct));
    assert_int_equal(0, ERR_peek_error());
}

static void aead_argument_checks(void **state)
{
    (void)state;
    uint8_t k[32] = {0}, iv[200] = {0}, buf[64] = {0};
    assert_int_equal(16, luna_aead_key_len(LUNA_AEAD_AES128GCM));
    assert_int_equal(32, luna_aead_key_len(LUNA_AEAD_AES256GCM));
    assert_int_equal(32, luna_aead_key_len(LUNA_AEAD_CHACHA20POLY1305));
    assert_int_equal(0, luna_aead_key_len((luna_aead)0));
    /* Wrong key length for the algorithm. */
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_aead_seal(LUNA_AEAD_AES256GCM, k, 16, iv, 12, NULL, 0, buf, 8, buf));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_aead_seal(LUNA_AEAD_AES128GCM, k, 32, iv, 12, NULL, 0, buf, 8, buf));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_aead_seal(LUNA_AEAD_AES128GCM, k, 24, iv, 12, NULL, 0, buf, 8, buf));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_aead_seal((luna_aead)9, k, 32, iv, 12, NULL, 0, buf, 8, buf));
    /* GCM: empty nonce refused, long nonces up to 128 bytes work. */
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_aead_seal(LUNA_AEAD_AES128GCM, k, 16, iv, 0, NULL, 0, buf, 8, buf));
    assert_luna_ok(luna_aead_seal(LUNA_AEAD_AES128GCM, k, 16, iv, 1, NULL, 0, buf, 8, buf));
    assert_luna_ok(luna_aead_open(LUNA_AEAD_AES128GCM, k, 16, iv, 1, NULL, 0, buf, 24, buf));
    assert_luna_ok(luna_aead_seal(LUNA_AEAD_AES128GCM, k, 16, iv, LUNA_AEAD_GCM_MAX_NONCE_LEN,
                                  NULL, 0, buf, 8, buf));
    assert_luna_err(LUNA_ERR_UNSUPPORTED,
                    luna_aead_seal(LUNA_AEAD_AES128GCM, k, 16, iv,
                                   LUNA_AEAD_GCM_MAX_NONCE_LEN + 1, NULL, 0, buf, 8, buf));
    /* Shorter than a tag: cannot authenticate. */
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_aead_open(LUNA_AEAD_AES128GCM, k, 16, iv, 12, NULL, 0, buf, 15, buf));
    assert_int_equal(0, ERR_peek_error());
}

/* ---- X25519 ---- */

/* RFC 7748 5.2, both single-iteration vectors. */
static void x25519_rfc7748_5_2(void **state)
{
    (void)state;
    uint8_t k[32], u[32], out[32];
    hx("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", k, 32);
    hx("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", u, 32);
    assert_luna_ok(luna_x25519(k, u, out));
    assert_hex_equal("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552", out, 32);
    hx("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", k, 32);
    hx("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493", u, 32);
    assert_luna_ok(luna_x25519(k, u, out));
    assert_hex_equal("95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957", out, 32);
}

/* RFC 7748 6.1 Diffie-Hellman. */
static void x25519_rfc7748_6_1(void **state)
{
    (void)state;
    uint8_t a[32], b[32], pa[32], pb[32], s1[32], s2[32];
    hx("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a, 32);
    hx("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b, 32);
    assert_luna_ok(luna_x25519_public(a, pa));
    assert_hex_equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", pa, 32);
    assert_luna_ok(luna_x25519_public(b, pb));
    assert_hex_equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", pb, 32);
    assert_luna_ok(luna_x25519(a, pb, s1));
    assert_luna_ok(luna_x25519(b, pa, s2));
    assert_hex_equal("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", s1, 32);
    assert_memory_equal(s1, s2, 32);
}

static void x25519_zero_secret_refused(void **state)
{
    (void)state;
    uint8_t sk[32], pk[32], peer[32] = {0}, shared[32];
    assert_luna_ok(luna_x25519_keygen(sk, pk));
    /* u = 0 and u = 1 are low-order points: the result is all zero. */
    memset(shared, 0xAA, sizeof(shared));
    assert_luna_err(LUNA_ERR_VERIFY, luna_x25519(sk, peer, shared));
    assert_true(is_zero(shared, 32));
    peer[0] = 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_x25519(sk, peer, shared));
    /* A point of order 8 (RFC 7748 / libsodium blocklist). */
    hx("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", peer, 32);
    assert_luna_err(LUNA_ERR_VERIFY, luna_x25519(sk, peer, shared));
    assert_int_equal(0, ERR_peek_error());
    /* Two fresh key pairs agree. */
    uint8_t sk2[32], pk2[32], s2[32];
    assert_luna_ok(luna_x25519_keygen(sk2, pk2));
    assert_luna_ok(luna_x25519(sk, pk2, shared));
    assert_luna_ok(luna_x25519(sk2, pk, s2));
    assert_memory_equal(shared, s2, 32);
    luna_wipe(sk, sizeof(sk));
    luna_wipe(sk2, sizeof(sk2));
}

/* ---- Ed25519 ---- */

/* RFC 8032 7.1 TEST 1 and TEST 2. */
static void ed25519_rfc8032(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], sig[64], msg[1];
    hx("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
    assert_luna_ok(luna_ed25519_public(seed, pk));
    assert_hex_equal("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pk, 32);
    assert_luna_ok(luna_ed25519_sign(seed, NULL, 0, sig));
    assert_hex_equal("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb88215"
                     "90a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
                     sig, 64);
    assert_luna_ok(luna_ed25519_verify(pk, NULL, 0, sig, 64));

    hx("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", seed, 32);
    msg[0] = 0x72;
    assert_luna_ok(luna_ed25519_public(seed, pk));
    assert_hex_equal("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", pk, 32);
    assert_luna_ok(luna_ed25519_sign(seed, msg, 1, sig));
    assert_hex_equal("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e4"
                     "3e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
                     sig, 64);
    assert_luna_ok(luna_ed25519_verify(pk, msg, 1, sig, 64));

    /* Negative: other message, flipped R, flipped S, wrong lengths. */
    msg[0] = 0x73;
    assert_luna_err(LUNA_ERR_VERIFY, luna_ed25519_verify(pk, msg, 1, sig, 64));
    msg[0] = 0x72;
    sig[0] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_ed25519_verify(pk, msg, 1, sig, 64));
    sig[0] ^= 1;
    sig[40] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_ed25519_verify(pk, msg, 1, sig, 64));
    sig[40] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_ed25519_verify(pk, msg, 1, sig, 63));
    assert_luna_err(LUNA_ERR_VERIFY, luna_ed25519_verify(pk, msg, 1, NULL, 0));
    assert_int_equal(0, ERR_peek_error());
}

static void ed25519_roundtrip(void **state)
{
    (void)state;
    uint8_t seed[32], pk[32], pk2[32], sig[64];
    const uint8_t msg[] = "platform artefact";
    assert_luna_ok(luna_ed25519_keygen(seed, pk));
    assert_luna_ok(luna_ed25519_public(seed, pk2));
    assert_memory_equal(pk, pk2, 32);
    assert_luna_ok(luna_ed25519_sign(seed, msg, sizeof(msg), sig));
    assert_luna_ok(luna_ed25519_verify(pk, msg, sizeof(msg), sig, sizeof(sig)));
    pk[3] ^= 0x10;
    assert_int_not_equal(LUNA_OK, luna_ed25519_verify(pk, msg, sizeof(msg), sig, sizeof(sig)));
    luna_wipe(seed, sizeof(seed));
}

/* ---- ECDSA ---- */

/* RFC 6979 A.2.5: P-256, SHA-256, message "sample". */
#define P256_PUB                                                       \
    "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6" \
    "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"
#define P256_R "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
#define P256_S "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"

/* RFC 6979 A.2.6: P-384, SHA-384, message "sample". */
#define P384_PUB                                                                               \
    "04ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254" \
    "515480bc138015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4" \
    "fe7344fd2533264720"
#define P384_R                                                                                 \
    "94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c81a648152e44acf96e36dd1e" \
    "80fabe46"
#define P384_S                                                                                 \
    "99ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94fa329c145786e679e7b82c71a" \
    "38628ac8"

static void ecdsa_rfc6979_p256(void **state)
{
    (void)state;
    uint8_t pub[65], sig[64], der[80], bad[81];
    size_t der_len = 0;
    const uint8_t *msg = (const uint8_t *)"sample";
    hx(P256_PUB, pub, sizeof(pub));
    hx(P256_R P256_S, sig, sizeof(sig));
    assert_luna_ok(luna_ecdsa_verify(LUNA_EC_P256, pub, 65, LUNA_SIG_P1363, msg, 6, sig, 64));
    assert_luna_ok(luna_ecdsa_p1363_to_der(LUNA_EC_P256, sig, 64, der, sizeof(der), &der_len));
    /* r and s both have the top bit set: each INTEGER gets a 0x00 pad. */
    assert_int_equal(2 + 2 * (2 + 33), der_len);
    assert_int_equal(0x30, der[0]);
    assert_luna_ok(luna_ecdsa_verify(LUNA_EC_P256, pub, 65, LUNA_SIG_DER, msg, 6, der, der_len));
    /* Digest form. */
    uint8_t d[32];
    assert_luna_ok(luna_sha256(msg, 6, d));
    assert_luna_ok(luna_ecdsa_verify_digest(LUNA_EC_P256, pub, 65, LUNA_SIG_P1363, d, 32, sig, 64));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_ecdsa_verify_digest(LUNA_EC_P256, pub, 65, LUNA_SIG_P1363, d, 31, sig, 64));

    /* Wrong message / flipped s: VERIFY. */
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_ecdsa_verify(LUNA_EC_P256, pub, 65, LUNA_SIG_P1363, msg, 5, sig, 64));
    sig[63] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_ecdsa_verify(LUNA_EC_P256, pub, 65, LUNA_SIG_P1363, msg, 6, sig, 64));
    sig[63] ^= 1;
    /* Wrong P1363 length, BER (long-form length), trailing byte: FORMAT. */
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_ecdsa_verify(LUNA_EC_P256, pub, 65, LUNA_SIG_P1363, msg, 6, sig, 63));
    bad[0] = 0x30;
    bad[1] = 0x81;
    memcpy(bad + 2, der + 1, der_len - 1);
    assert_luna_err(LUNA_ERR_FORMAT, luna_ecdsa_verify(LUNA_EC_P256, pub, 65, LUNA_SIG_DER, msg,
                                                       6, bad, der_len + 1));
    memcpy(bad, der, der_len);
    bad[der_len] = 0;
    assert_luna_err(LUNA_ERR_FORMAT, luna_ecdsa_verify(LUNA_EC_P256, pub, 65, LUNA_SIG_DER, msg,
                                                       6, bad, der_len + 1));
    /* Key: compressed prefix, wrong length, off the curve: FORMAT. */
    pub[0] = 0x02;
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_ecdsa_verify(LUNA_EC_P256, pub, 65, LUNA_SIG_P1363, msg, 6, sig, 64));
    pub[0] = 0x04;
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_ecdsa_verify(LUNA_EC_P256, pub, 64, LUNA_SIG_P1363, msg, 6, sig, 64));
    pub[64] ^= 1;
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_ecdsa_verify(LUNA_EC_P256, pub, 65, LUNA_SIG_P1363, msg, 6, sig, 64));
    pub[64] ^= 1;
    /* The P-256 key and signature are not a P-384 one. */
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_ecdsa_verify(LUNA_EC_P384, pub, 65, LUNA_SIG_P1363, msg, 6, sig, 64));
    /* Output buffer too small for the worst case. */
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_ecdsa_p1363_to_der(LUNA_EC_P256, sig, 64, der, 72, &der_len));
    assert_int_equal(0, ERR_peek_error());
}

static void ecdsa_rfc6979_p384(void **state)
{
    (void)state;
    uint8_t pub[97], sig[96], der[110];
    size_t der_len = 0;
    const uint8_t *msg = (const uint8_t *)"sample";
    hx(P384_PUB, pub, sizeof(pub));
    hx(P384_R P384_S, sig, sizeof(sig));
    assert_luna_ok(luna_ecdsa_verify(LUNA_EC_P384, pub, 97, LUNA_SIG_P1363, msg, 6, sig, 96));
    assert_luna_ok(luna_ecdsa_p1363_to_der(LUNA_EC_P384, sig, 96, der, sizeof(der), &der_len));
    assert_luna_ok(luna_ecdsa_verify(LUNA_EC_P384, pub, 97, LUNA_SIG_DER, msg, 6, der, der_len));
    sig[0] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_ecdsa_verify(LUNA_EC_P384, pub, 97, LUNA_SIG_P1363, msg, 6, sig, 96));
    assert_int_equal(0, ERR_peek_error());
}

/* Failures must not leave entries on OpenSSL's queue, and must not eat older ones. */
static void error_queue_preserved(void **state)
{
    (void)state;
    uint8_t k[32] = {0}, iv[12] = {0}, ct[16] = {0}, out[16];
    ERR_raise(ERR_LIB_USER, 42);
    unsigned long before = ERR_peek_last_error();
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_aead_open(LUNA_AEAD_AES256GCM, k, 32, iv, 12, NULL, 0, ct, 16, out));
    assert_int_equal(before, ERR_peek_last_error());
    ERR_clear_error();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_abc),
        cmocka_unit_test(hmac_rfc4231_tc2),
        cmocka_unit_test(hkdf_rfc5869_a1),
        cmocka_unit_test(hkdf_rfc5869_a3),
        cmocka_unit_test(aes256gcm_spec_tc16),
        cmocka_unit_test(aes256gcm_spec_tc14),
        cmocka_unit_test(chacha20poly1305_rfc8439),
        cmocka_unit_test(aead_argument_checks),
        cmocka_unit_test(x25519_rfc7748_5_2),
        cmocka_unit_test(x25519_rfc7748_6_1),
        cmocka_unit_test(x25519_zero_secret_refused),
        cmocka_unit_test(ed25519_rfc8032),
        cmocka_unit_test(ed25519_roundtrip),
        cmocka_unit_test(ecdsa_rfc6979_p256),
        cmocka_unit_test(ecdsa_rfc6979_p384),
        cmocka_unit_test(error_queue_preserved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
