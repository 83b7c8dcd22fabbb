/*
 * test_crypto_rsa.c - known-answer tests of luna_rsa_verify (RSA for TPM
 * attestation keys).  The vectors are a 2048-bit key and signatures made
 * once with `openssl dgst -sha256 -sign` (PKCS#1 v1.5, and PSS with a
 * 32-byte salt) over the message below; each test also shows the
 * signature fails once the message, the signature, the hash or the
 * padding changes, and that a 1024-bit or non-RSA key is refused.
 */
#include <stdlib.h>
#include <string.h>

#include "luna/crypto.h"
#include "luna_test.h"

static const char MSG[] = "Lunal RSA known-answer test message";

static const char SPKI_HEX[] =
    "30820122300d06092a864886f70d01010105000382010f003082010a02820101"
    "0095187501fbaa8969f2fcf9229503df622589206c1f3849d7be0567bf0a124d"
    "79f085ba8b5a59e8a5aa0d3f9e5a1d0627e05daffac58369a7542fa4c779206c"
    "d5d5fc7b423fa8d14f8b44baa328b794c3fdd67e9e74003094ff7f5dd86d41a4"
    "df539337d828ba737ac24e2cf327d2f77f935973b41f8ff8bc55566529d8e96d"
    "408fef3afb6c14de7e9326aef80cb7d205b8f09ce13dc1a91dbd3f80d9f3b9fd"
    "3752dbe79371ab9ab04a32fa56fe4273787ab879bd900ee1a362ab9e4917ef68"
    "db1ceeffd8bb48948026f327b3d8910dcd5de3ae0553350b77f8e8e03d11fc4a"
    "c58198afcca03c82014717af3757f4d987f7d37006c83f3e6a8f0a40401b46db"
    "df0203010001";
static const char SIG_PKCS1_HEX[] =
    "1602fb9674811073b99c94d873b9916fe56f50c0f1d278d1934de1d30763ce6b"
    "e7958b69b8bf5c7fce0432bc1d006f07bf900be92f19893a6101270408460e71"
    "3ba00c2485df77d5e7386cbb11eaf8d921c016d4dadd6c7d28a04fb05425b546"
    "105ca5a1d04177e75c4c657966ded5394b80dd28640ecd4164f9f87efc7b8a50"
    "7ef9e40ef8231a687066d57c77f1703f1b52bcf29ded9894ac57223f42b830f0"
    "211a77c007e403762a986b566a8814dcd55bb7cca79196fa09b18ca68c5d9252"
    "ee779e3754c99f06a87c5306820eb888a8938ecab5cbf63f492224ed30ff0596"
    "b2a8074bf47075cd60decd65508269899c7b7a0f90214260b800b9053fa85662";
static const char SIG_PSS_HEX[] =
    "1a542a5ccadce14eefef90008e80cb3218a643fdcb02c62d8ccd740e00122329"
    "079e68d72b73516eab65ddbe0e82df3a52ffa1865908790ae8376ea1302b7abc"
    "7c621f4676790abc282a4165a645990220b6223b301992cda90b8d7be8d222ab"
    "e7d4b37127eaa81f536c05e31d106ebf5221980747391c520a1345c637a137a0"
    "9804251e4ff9c67c75990ecab22b6a3ef5e90c9f730225d62750673875232cde"
    "13b77a4d277d6ea94074a9d127388f8b86f6c7435dda7cadc7582a9380495a7f"
    "4504e5a894dbd4581555dfe34c4973d42d7170784a703a73d468590dad291128"
    "6e2ce41645906b49eaa7bad47eb49bf46575fa8f1ebc7ba39911af334db72f0a";
static const char SPKI_1024_HEX[] =
    "30819f300d06092a864886f70d010101050003818d0030818902818100ce0f65"
    "fa3750f7d9110981df8da58766808acc1efd47aeb389f90e0783770528f54b38"
    "9f077d58f2a41a7ed71242b9b15f24e7217a25cf82e5a4ee0f2e4dc42d229a00"
    "f93979c2f492748aeff28a3a70e054ebdc9ac88dc929b0e9df4354d5c03370e4"
    "eb5a6af161ada70887bf54fbc7f8899f7abb23249bee3c77c308b5f933020301"
    "0001";

typedef struct kat {
    uint8_t *spki, *pkcs1, *pss;
    size_t spki_len, pkcs1_len, pss_len;
} kat;

static void load(kat *k)
{
    k->spki = luna_test_unhex(SPKI_HEX, &k->spki_len);
    k->pkcs1 = luna_test_unhex(SIG_PKCS1_HEX, &k->pkcs1_len);
    k->pss = luna_test_unhex(SIG_PSS_HEX, &k->pss_len);
}

static void unload(kat *k)
{
    free(k->spki);
    free(k->pkcs1);
    free(k->pss);
}

static luna_err v(const kat *k, luna_rsa_padding pad, luna_hash h, const char *msg,
                  const uint8_t *sig, size_t sig_len)
{
    return luna_rsa_verify(k->spki, k->spki_len, pad, h, (const uint8_t *)msg, strlen(msg), sig,
                           sig_len);
}

static void test_pkcs1_kat(void **st)
{
    kat k;
    (void)st;
    load(&k);
    assert_luna_ok(v(&k, LUNA_RSA_PKCS1, LUNA_HASH_SHA256, MSG, k.pkcs1, k.pkcs1_len));
    assert_luna_err(LUNA_ERR_VERIFY,
                    v(&k, LUNA_RSA_PKCS1, LUNA_HASH_SHA256, "Lunal RSA known-answer test messagE",
                      k.pkcs1, k.pkcs1_len));
    assert_luna_err(LUNA_ERR_VERIFY, v(&k, LUNA_RSA_PKCS1, LUNA_HASH_SHA384, MSG, k.pkcs1, k.pkcs1_len));
    assert_luna_err(LUNA_ERR_VERIFY, v(&k, LUNA_RSA_PSS, LUNA_HASH_SHA256, MSG, k.pkcs1, k.pkcs1_len));
    k.pkcs1[100] ^= 0x01;
    assert_luna_err(LUNA_ERR_VERIFY, v(&k, LUNA_RSA_PKCS1, LUNA_HASH_SHA256, MSG, k.pkcs1, k.pkcs1_len));
    assert_luna_err(LUNA_ERR_VERIFY, v(&k, LUNA_RSA_PKCS1, LUNA_HASH_SHA256, MSG, k.pkcs1, k.pkcs1_len - 1));
    unload(&k);
}

static void test_pss_kat(void **st)
{
    kat k;
    (void)st;
    load(&k);
    assert_luna_ok(v(&k, LUNA_RSA_PSS, LUNA_HASH_SHA256, MSG, k.pss, k.pss_len));
    assert_luna_err(LUNA_ERR_VERIFY, v(&k, LUNA_RSA_PKCS1, LUNA_HASH_SHA256, MSG, k.pss, k.pss_len));
    assert_luna_err(LUNA_ERR_VERIFY, v(&k, LUNA_RSA_PSS, LUNA_HASH_SHA512, MSG, k.pss, k.pss_len));
    k.pss[0] ^= 0x80;
    assert_luna_err(LUNA_ERR_VERIFY, v(&k, LUNA_RSA_PSS, LUNA_HASH_SHA256, MSG, k.pss, k.pss_len));
    unload(&k);
}

static void test_bad_keys(void **st)
{
    kat k;
    size_t n = 0;
    (void)st;
    load(&k);
    uint8_t *small = luna_test_unhex(SPKI_1024_HEX, &n);
    assert_luna_err(LUNA_ERR_FORMAT, luna_rsa_verify(small, n, LUNA_RSA_PKCS1, LUNA_HASH_SHA256,
                                                     (const uint8_t *)MSG, strlen(MSG), k.pkcs1,
                                                     128));
    free(small);
    /* Trailing byte after the key's DER. */
    uint8_t *longer = malloc(k.spki_len + 1);
    assert_non_null(longer);
    memcpy(longer, k.spki, k.spki_len);
    longer[k.spki_len] = 0;
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_rsa_verify(longer, k.spki_len + 1, LUNA_RSA_PKCS1, LUNA_HASH_SHA256,
                                    (const uint8_t *)MSG, strlen(MSG), k.pkcs1, k.pkcs1_len));
    free(longer);
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_rsa_verify(k.spki, k.spki_len - 5, LUNA_RSA_PKCS1, LUNA_HASH_SHA256,
                                    (const uint8_t *)MSG, strlen(MSG), k.pkcs1, k.pkcs1_len));
    assert_luna_err(LUNA_ERR_INVALID_ARG,
                    luna_rsa_verify(k.spki, k.spki_len, (luna_rsa_padding)7, LUNA_HASH_SHA256,
                                    (const uint8_t *)MSG, strlen(MSG), k.pkcs1, k.pkcs1_len));
    unload(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkcs1_kat),
        cmocka_unit_test(test_pss_kat),
        cmocka_unit_test(test_bad_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
