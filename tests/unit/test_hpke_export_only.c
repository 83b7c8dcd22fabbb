/*
 * test_hpke_export_only.c - HPKE checks that need no shared folder:
 * RFC 9180 appendix A.7 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * Export-Only AEAD, all four modes) transcribed from the RFC text, a few
 * RFC 9180 A.1.1 (base, AES-128-GCM) known answers, and the negative rules:
 * PSK rules of 5.1, key/mode mismatches, the all-zero DH refusal, sequence
 * exhaustion, roles, tag tampering, and export-only refusing seal/open.
 */
#include "luna_test.h"

#include <stdlib.h>
#include <string.h>

#include "hpke_internal.h"
#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/hpke.h"

typedef struct a7_vector {
    int mode;
    const char *ikm_e, *pk_em, *sk_em;
    const char *ikm_r, *pk_rm, *sk_rm;
    const char *ikm_s, *pk_sm, *sk_sm; /* auth modes */
    const char *psk, *psk_id;          /* psk modes */
    const char *shared_secret, *key_schedule_context, *secret, *exporter_secret;
    const char *exported[3]; /* contexts "", "00", "TestContext"; L = 32 */
} a7_vector;

#define A7_INFO "4f6465206f6e2061204772656369616e2055726e"
#define A7_PSK "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82"
#define A7_PSK_ID "456e6e796e20447572696e206172616e204d6f726961"

/* RFC 9180, Appendix A.7.1 to A.7.4. */
static const a7_vector a7[] = {
    {0, "55bc245ee4efda25d38f2d54d5bb6665291b99f8108a8c4b686c2b14893ea5d9",
     "e5e8f9bfff6c2f29791fc351d2c25ce1299aa5eaca78a757c0b4fb4bcd830918",
     "095182b502f1f91f63ba584c7c3ec473d617b8b4c2cec3fad5af7fa6748165ed",
     "683ae0da1d22181e74ed2e503ebf82840deb1d5e872cade20f4b458d99783e31",
     "194141ca6c3c3beb4792cd97ba0ea1faff09d98435012345766ee33aae2d7664",
     "33d196c830a12f9ac65d6e565a590d80f04ee9b19c83c87f2c170d972a812848", NULL, NULL, NULL, NULL,
     NULL, "e81716ce8f73141d4f25ee9098efc968c91e5b8ce52ffff59d64039e82918b66",
     "009bd09219212a8cf27c6bb5d54998c5240793a70ca0a892234bd5e082bc619b6a3f4c22aa6d9a0424c2b4292"
     "fdf43b8257df93c2f6adbf6ddc9c64fee26bdd292",
     "04d64e0620aa047e9ab833b0ebcd4ff026cefbe44338fd7d1a93548102ee01af",
     "79dc8e0509cf4a3364ca027e5a0138235281611ca910e435e8ed58167c72f79b",
     {"7a36221bd56d50fb51ee65edfd98d06a23c4dc87085aa5866cb7087244bd2a36",
      "d5535b87099c6c3ce80dc112a2671c6ec8e811a2f284f948cec6dd1708ee33f0",
      "ffaabc85a776136ca0c378e5d084c9140ab552b78f039d2e8775f26efff4c70e"}},
    {1, "c51211a8799f6b8a0021fcba673d9c4067a98ebc6794232e5b06cb9febcbbdf5",
     "d3805a97cbcd5f08babd21221d3e6b362a700572d14f9bbeb94ec078d051ae3d",
     "1d72396121a6a826549776ef1a9d2f3a2907fc6a38902fa4e401afdb0392e627",
     "5e0516b1b29c0e13386529da16525210c796f7d647c37eac118023a6aa9eb89a",
     "d53af36ea5f58f8868bb4a1333ed4cc47e7a63b0040eb54c77b9c8ec456da824",
     "98f304d4ecb312689690b113973c61ffe0aa7c13f2fbe365e48f3ed09e5a6a0c", NULL, NULL, NULL, A7_PSK,
     A7_PSK_ID, "024573db58c887decb4c57b6ed39f2c9a09c85600a8a0ecb11cac24c6aaec195",
     "01446fb1fe2632a0a338f0a85ed1f3a0ac475bdea2cd72f8c713b3a46ee737379a3f4c22aa6d9a0424c2b4292"
     "fdf43b8257df93c2f6adbf6ddc9c64fee26bdd292",
     "638b94532e0d0bf812cf294f36b97a5bdcb0299df36e22b7bb6858e3c113080b",
     "04261818aeae99d6aba5101bd35ddf3271d909a756adcef0d41389d9ed9ab153",
     {"be6c76955334376aa23e936be013ba8bbae90ae74ed995c1c6157e6f08dd5316",
      "1721ed2aa852f84d44ad020c2e2be4e2e6375098bf48775a533505fd56a3f416",
      "7c9d79876a288507b81a5a52365a7d39cc0fa3f07e34172984f96fec07c44cba"}},
    {2, "43b078912a54b591a7b09b16ce89a1955a9dd60b29fb611e044260046e8b061b",
     "5ac1671a55c5c3875a8afe74664aa8bc68830be9ded0c5f633cd96400e8b5c05",
     "83d3f217071bbf600ba6f081f6e4005d27b97c8001f55cb5ff6ea3bbea1d9295",
     "fc9407ae72ed614901ebf44257fb540f617284b5361cfecd620bafc4aba36f73",
     "ffd7ac24694cb17939d95feb7c4c6539bb31621deb9b96d715a64abdd9d14b10",
     "ed88cda0e91ca5da64b6ad7fc34a10f096fa92f0b9ceff9d2c55124304ed8b4a",
     "2ff4c37a17b2e54046a076bf5fea9c3d59250d54d0dc8572bc5f7c046307040c",
     "89eb1feae431159a5250c5186f72a15962c8d0debd20a8389d8b6e4996e14306",
     "c85f136e06d72d28314f0e34b10aadc8d297e9d71d45a5662c2b7c3b9f9f9405", NULL, NULL,
     "e204156fd17fd65b132d53a0558cd67b7c0d7095ee494b00f47d686eb78f8fb3",
     "029bd09219212a8cf27c6bb5d54998c5240793a70ca0a892234bd5e082bc619b6a3f4c22aa6d9a0424c2b4292"
     "fdf43b8257df93c2f6adbf6ddc9c64fee26bdd292",
     "355e7ef17f438db43152b7fb45a0e2f49a8bf8956d5dddfec1758c0f0eb1b5d5",
     "276d87e5cb0655c7d3dad95e76e6fc02746739eb9d968955ccf8a6346c97509e",
     {"83c1bac00a45ed4cb6bd8a6007d2ce4ec501f55e485c5642bd01bf6b6d7d6f0a",
      "08a1d1ad2af3ef5bc40232a64f920650eb9b1034fac3892f729f7949621bf06e",
      "ff3b0e37a9954247fea53f251b799e2edd35aac7152c5795751a3da424feca73"}},
    {3, "94efae91e96811a3a49fd1b20eb0344d68ead6ac01922c2360779aa172487f40",
     "81cbf4bd7eee97dd0b600252a1c964ea186846252abb340be47087cc78f3d87c",
     "a2b43f5c67d0d560ee04de0122c765ea5165e328410844db97f74595761bbb81",
     "4dfde6fadfe5cb50fced4034e84e6d3a104aa4bf2971360032c1c0580e286663",
     "f47cd9d6993d2e2234eb122b425accfb486ee80f89607b087094e9f413253c2d",
     "c4962a7f97d773a47bdf40db4b01dc6a56797c9e0deaab45f4ea3aa9b1d72904",
     "26c12fef8d71d13bbbf08ce8157a283d5e67ecf0f345366b0e90341911110f1b",
     "29a5bf3867a6128bbdf8e070abe7fe70ca5e07b629eba5819af73810ee20112f",
     "6175b2830c5743dff5b7568a7e20edb1fe477fb0487ca21d6433365be90234d0", A7_PSK, A7_PSK_ID,
     "d69246bcd767e579b1eec80956d7e7dfbd2902dad920556f0de69bd54054a2d1",
     "03446fb1fe2632a0a338f0a85ed1f3a0ac475bdea2cd72f8c713b3a46ee737379a3f4c22aa6d9a0424c2b4292"
     "fdf43b8257df93c2f6adbf6ddc9c64fee26bdd292",
     "c15c5bec374f2087c241d3533c6ec48e1c60a21dd00085619b2ffdd84a7918c3",
     "695b1faa479c0e0518b6414c3b46e8ef5caea04c0a192246843765ae6a8a78e0",
     {"dafd8beb94c5802535c22ff4c1af8946c98df2c417e187c6ccafe45335810b58",
      "7346bb0b56caf457bcc1aa63c1b97d9834644bdacac8f72dbbe3463e4e46b0dd",
      "84f3466bd5a03bde6444324e63d7560e7ac790da4e5bbab01e7c4d575728c34a"}},
};

static void assert_hex(const char *hex, const uint8_t *got, size_t got_len)
{
    size_t len;
    uint8_t *want = luna_test_unhex(hex, &len);
    assert_int_equal(len, got_len);
    assert_memory_equal(want, got, len);
    free(want);
}

static void derive(const char *ikm_hex, uint8_t sk[32], uint8_t pk[32])
{
    size_t n;
    uint8_t *ikm = luna_test_unhex(ikm_hex, &n);
    assert_luna_ok(luna_hpke_derive_keypair(ikm, n, sk, pk));
    free(ikm);
}

static void test_rfc9180_a7_export_only(void **state)
{
    (void)state;
    static const char *contexts[3] = {"", "00", "54657374436f6e74657874"};
    int exports_ok = 0;

    for (size_t i = 0; i < sizeof(a7) / sizeof(a7[0]); i++) {
        const a7_vector *t = &a7[i];
        uint8_t sk_e[32], pk_e[32], sk_r[32], pk_r[32], sk_s[32] = {0}, pk_s[32] = {0};
        uint8_t ss[32], enc[32], out[32];
        luna_hpke_schedule ks;
        luna_hpke_ctx *snd = NULL, *rcv = NULL;
        size_t info_len, psk_len = 0, psk_id_len = 0;
        uint8_t *info = luna_test_unhex(A7_INFO, &info_len);
        uint8_t *psk = t->psk ? luna_test_unhex(t->psk, &psk_len) : NULL;
        uint8_t *psk_id = t->psk_id ? luna_test_unhex(t->psk_id, &psk_id_len) : NULL;
        int auth = t->ikm_s != NULL;
        luna_hpke_params p = {
            .suite = {LUNA_HPKE_KEM_X25519_SHA256, LUNA_HPKE_KDF_HKDF_SHA256,
                      LUNA_HPKE_AEAD_EXPORT_ONLY},
            .mode = (luna_hpke_mode)t->mode,
            .info = info,
            .info_len = info_len,
            .psk = psk,
            .psk_len = psk_len,
            .psk_id = psk_id,
            .psk_id_len = psk_id_len,
        };

        derive(t->ikm_e, sk_e, pk_e);
        assert_hex(t->sk_em, sk_e, 32);
        assert_hex(t->pk_em, pk_e, 32);
        derive(t->ikm_r, sk_r, pk_r);
        assert_hex(t->sk_rm, sk_r, 32);
        assert_hex(t->pk_rm, pk_r, 32);
        if (auth) {
            derive(t->ikm_s, sk_s, pk_s);
            assert_hex(t->sk_sm, sk_s, 32);
            assert_hex(t->pk_sm, pk_s, 32);
        }
        assert_luna_ok(luna_hpke_encap_internal(pk_r, auth ? sk_s : NULL, sk_e, ss, enc));
        assert_hex(t->pk_em, enc, 32); /* enc = pkEm */
        assert_hex(t->shared_secret, ss, 32);
        assert_luna_ok(luna_hpke_key_schedule_internal(&p, ss, &ks));
        assert_hex(t->key_schedule_context, ks.key_schedule_context,
                   ks.key_schedule_context_len);
        assert_hex(t->secret, ks.secret, ks.nh);
        assert_int_equal(ks.key_len, 0); /* key and base_nonce are empty */
        assert_int_equal(ks.nonce_len, 0);
        assert_hex(t->exporter_secret, ks.exporter_secret, ks.nh);

        assert_luna_ok(luna_hpke_setup_sender_with_ephemeral(&p, pk_r, auth ? sk_s : NULL, sk_e,
                                                             enc, &snd));
        assert_luna_ok(luna_hpke_setup_receiver(&p, sk_r, enc, auth ? pk_s : NULL, &rcv));
        for (int c = 0; c < 3; c++) {
            size_t clen;
            uint8_t *ctx = luna_test_unhex(contexts[c], &clen);
            assert_luna_ok(luna_hpke_export(snd, ctx, clen, out, 32));
            assert_hex(t->exported[c], out, 32);
            assert_luna_ok(luna_hpke_export(rcv, ctx, clen, out, 32));
            assert_hex(t->exported[c], out, 32);
            exports_ok++;
            free(ctx);
        }
        /* An export-only context has no AEAD. */
        assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_hpke_seal(snd, NULL, 0, out, 0, out));
        assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_hpke_open(rcv, NULL, 0, out, 16, out));
        luna_hpke_ctx_free(snd);
        luna_hpke_ctx_free(rcv);
        free(info);
        free(psk);
        free(psk_id);
    }
    assert_int_equal(exports_ok, 12);
}

/* RFC 9180 A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base. */
#define A1_IKME "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234"
#define A1_IKMR "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037"
#define A1_PKRM "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"
#define A1_ENC "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"
#define A1_SS "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc"
#define A1_KEY "4531685d41d65f03dc48f6b8302c05b0"
#define A1_NONCE "56d890e5accaaf011cff4b7d"
#define A1_PT "4265617574792069732074727574682c20747275746820626561757479"
#define A1_CT0                                                                                     \
    "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"
#define A1_CT1                                                                                     \
    "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84"
#define A1_EXP0 "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee"

static const luna_hpke_suite a1_suite = {LUNA_HPKE_KEM_X25519_SHA256, LUNA_HPKE_KDF_HKDF_SHA256,
                                         LUNA_HPKE_AEAD_AES128GCM};

static void test_rfc9180_a1_base_known_answers(void **state)
{
    (void)state;
    uint8_t sk_e[32], pk_e[32], sk_r[32], pk_r[32], enc[32], ss[32], out[64];
    size_t info_len, pt_len;
    uint8_t *info = luna_test_unhex(A7_INFO, &info_len);
    uint8_t *pt = luna_test_unhex(A1_PT, &pt_len);
    luna_hpke_params p = {.suite = a1_suite, .mode = LUNA_HPKE_MODE_BASE, .info = info,
                          .info_len = info_len};
    luna_hpke_schedule ks;
    luna_hpke_ctx *snd, *rcv;
    const uint8_t aad0[] = "Count-0", aad1[] = "Count-1";

    derive(A1_IKME, sk_e, pk_e);
    derive(A1_IKMR, sk_r, pk_r);
    assert_hex(A1_PKRM, pk_r, 32);
    assert_luna_ok(luna_hpke_encap_internal(pk_r, NULL, sk_e, ss, enc));
    assert_hex(A1_ENC, enc, 32);
    assert_hex(A1_SS, ss, 32);
    assert_luna_ok(luna_hpke_key_schedule_internal(&p, ss, &ks));
    assert_hex(A1_KEY, ks.key, ks.key_len);
    assert_hex(A1_NONCE, ks.base_nonce, ks.nonce_len);

    assert_luna_ok(luna_hpke_setup_sender_with_ephemeral(&p, pk_r, NULL, sk_e, enc, &snd));
    assert_luna_ok(luna_hpke_setup_receiver(&p, sk_r, enc, NULL, &rcv));
    assert_luna_ok(luna_hpke_seal(snd, aad0, 7, pt, pt_len, out));
    assert_hex(A1_CT0, out, pt_len + 16);
    assert_luna_ok(luna_hpke_seal(snd, aad1, 7, pt, pt_len, out));
    assert_hex(A1_CT1, out, pt_len + 16);

    /* Open in order; a tampered ciphertext fails and does not move seq. */
    size_t ct_len;
    uint8_t *ct0 = luna_test_unhex(A1_CT0, &ct_len);
    ct0[3] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_open(rcv, aad0, 7, ct0, ct_len, out));
    ct0[3] ^= 1;
    assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_open(rcv, aad1, 7, ct0, ct_len, out));
    assert_luna_ok(luna_hpke_open(rcv, aad0, 7, ct0, ct_len, out));
    assert_memory_equal(out, pt, pt_len);
    /* Replaying seq 0 on seq 1 fails. */
    assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_open(rcv, aad0, 7, ct0, ct_len, out));
    free(ct0);

    assert_luna_ok(luna_hpke_export(rcv, NULL, 0, out, 32));
    assert_hex(A1_EXP0, out, 32);
    /* Roles are fixed. */
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_open(snd, aad0, 7, out, 32, out));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_seal(rcv, aad0, 7, pt, pt_len, out));
    /* Export length limits. */
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_export(rcv, NULL, 0, out, 0));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_export(rcv, NULL, 0, out, 255 * 32 + 1));
    luna_hpke_ctx_free(snd);
    luna_hpke_ctx_free(rcv);
    luna_wipe(&ks, sizeof(ks));
    free(info);
    free(pt);
}

static void test_psk_rules(void **state)
{
    (void)state;
    uint8_t sk_r[32], pk_r[32], sk_s[32], pk_s[32], enc[32];
    uint8_t psk[32], short_psk[16];
    const uint8_t id[] = "id";
    luna_hpke_ctx *c = NULL;
    luna_hpke_params p = {.suite = a1_suite};

    memset(psk, 0x42, sizeof(psk));
    memset(short_psk, 0x42, sizeof(short_psk));
    assert_luna_ok(luna_hpke_generate_keypair(sk_r, pk_r));
    assert_luna_ok(luna_hpke_generate_keypair(sk_s, pk_s));

    /* base/auth must not carry a PSK. */
    p.mode = LUNA_HPKE_MODE_BASE;
    p.psk = psk;
    p.psk_len = 32;
    p.psk_id = id;
    p.psk_id_len = 2;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_setup_sender(&p, pk_r, NULL, enc, &c));
    assert_null(c);
    p.mode = LUNA_HPKE_MODE_AUTH;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_setup_sender(&p, pk_r, sk_s, enc, &c));
    /* psk modes need both psk and psk_id. */
    p.mode = LUNA_HPKE_MODE_PSK;
    p.psk_id_len = 0;
    p.psk_id = NULL;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_setup_sender(&p, pk_r, NULL, enc, &c));
    p.psk_id = id;
    p.psk_id_len = 2;
    p.psk = NULL;
    p.psk_len = 0;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_setup_sender(&p, pk_r, NULL, enc, &c));
    /* A short PSK is refused. */
    p.psk = short_psk;
    p.psk_len = sizeof(short_psk);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_setup_sender(&p, pk_r, NULL, enc, &c));
    /* psk mode with both works; the receiver with another PSK gets another key. */
    p.psk = psk;
    p.psk_len = 32;
    assert_luna_ok(luna_hpke_setup_sender(&p, pk_r, NULL, enc, &c));
    uint8_t ct[32], pt[16] = {0};
    assert_luna_ok(luna_hpke_seal(c, NULL, 0, pt, sizeof(pt), ct));
    luna_hpke_ctx_free(c);
    psk[0] ^= 1;
    assert_luna_ok(luna_hpke_setup_receiver(&p, sk_r, enc, NULL, &c));
    assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_open(c, NULL, 0, ct, sizeof(ct), pt));
    luna_hpke_ctx_free(c);
    /* Keys must match the mode: auth needs sk_s/pk_s, others must not have them. */
    p.mode = LUNA_HPKE_MODE_PSK;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_setup_sender(&p, pk_r, sk_s, enc, &c));
    p.mode = LUNA_HPKE_MODE_AUTH_PSK;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_setup_sender(&p, pk_r, NULL, enc, &c));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_setup_receiver(&p, sk_r, enc, NULL, &c));
    /* Unknown suites. */
    p.mode = LUNA_HPKE_MODE_BASE;
    p.psk = NULL;
    p.psk_len = 0;
    p.psk_id = NULL;
    p.psk_id_len = 0;
    p.suite.kdf_id = 2;
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_hpke_setup_sender(&p, pk_r, NULL, enc, &c));
    p.suite.kdf_id = 1;
    p.suite.kem_id = 0x10;
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_hpke_setup_sender(&p, pk_r, NULL, enc, &c));
    p.suite.kem_id = 0x20;
    p.suite.aead_id = 4;
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_hpke_setup_sender(&p, pk_r, NULL, enc, &c));
    luna_wipe(sk_r, 32);
    luna_wipe(sk_s, 32);
}

static void test_auth_binds_sender(void **state)
{
    (void)state;
    uint8_t sk_r[32], pk_r[32], sk_s[32], pk_s[32], sk_x[32], pk_x[32], enc[32];
    uint8_t pt[5] = "hello", ct[21], out[5];
    luna_hpke_params p = {.suite = a1_suite, .mode = LUNA_HPKE_MODE_AUTH};
    luna_hpke_ctx *s, *r;

    assert_luna_ok(luna_hpke_generate_keypair(sk_r, pk_r));
    assert_luna_ok(luna_hpke_generate_keypair(sk_s, pk_s));
    assert_luna_ok(luna_hpke_generate_keypair(sk_x, pk_x));
    assert_luna_ok(luna_hpke_setup_sender(&p, pk_r, sk_s, enc, &s));
    assert_luna_ok(luna_hpke_seal(s, NULL, 0, pt, 5, ct));
    /* The receiver expecting another sender derives another key. */
    assert_luna_ok(luna_hpke_setup_receiver(&p, sk_r, enc, pk_x, &r));
    assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_open(r, NULL, 0, ct, sizeof(ct), out));
    luna_hpke_ctx_free(r);
    assert_luna_ok(luna_hpke_setup_receiver(&p, sk_r, enc, pk_s, &r));
    assert_luna_ok(luna_hpke_open(r, NULL, 0, ct, sizeof(ct), out));
    assert_memory_equal(out, pt, 5);
    luna_hpke_ctx_free(r);
    luna_hpke_ctx_free(s);
}

static void test_zero_dh_refused(void **state)
{
    (void)state;
    /* Low-order points of Curve25519: the DH output is all zero. */
    uint8_t zero[32] = {0}, one[32] = {1}, sk[32], pk[32], enc[32];
    luna_hpke_params p = {.suite = a1_suite, .mode = LUNA_HPKE_MODE_BASE};
    luna_hpke_ctx *c = NULL;

    assert_luna_ok(luna_hpke_generate_keypair(sk, pk));
    assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_setup_sender(&p, zero, NULL, enc, &c));
    assert_null(c);
    assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_setup_sender(&p, one, NULL, enc, &c));
    assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_setup_receiver(&p, sk, zero, NULL, &c));
    assert_null(c);
    p.mode = LUNA_HPKE_MODE_AUTH;
    assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_setup_receiver(&p, sk, pk, one, &c));
    luna_wipe(sk, 32);
}

static void test_sequence_exhaustion(void **state)
{
    (void)state;
    uint8_t sk_r[32], pk_r[32], enc[32], pt[4] = {1, 2, 3, 4}, ct[20], out[4];
    luna_hpke_params p = {.suite = a1_suite, .mode = LUNA_HPKE_MODE_BASE};
    luna_hpke_ctx *s, *r;

    assert_luna_ok(luna_hpke_generate_keypair(sk_r, pk_r));
    assert_luna_ok(luna_hpke_setup_sender(&p, pk_r, NULL, enc, &s));
    assert_luna_ok(luna_hpke_setup_receiver(&p, sk_r, enc, NULL, &r));
    luna_hpke_ctx_set_seq_for_testing(s, UINT64_MAX - 1);
    luna_hpke_ctx_set_seq_for_testing(r, UINT64_MAX - 1);
    assert_luna_ok(luna_hpke_seal(s, NULL, 0, pt, 4, ct));
    assert_luna_ok(luna_hpke_open(r, NULL, 0, ct, 20, out));
    assert_memory_equal(out, pt, 4);
    assert_luna_err(LUNA_ERR_CONFLICT, luna_hpke_seal(s, NULL, 0, pt, 4, ct));
    assert_luna_err(LUNA_ERR_CONFLICT, luna_hpke_open(r, NULL, 0, ct, 20, out));
    luna_hpke_ctx_free(s);
    luna_hpke_ctx_free(r);
}

static void test_suites_round_trip_in_place(void **state)
{
    (void)state;
    static const uint16_t kdfs[] = {LUNA_HPKE_KDF_HKDF_SHA256, LUNA_HPKE_KDF_HKDF_SHA512};
    static const uint16_t aeads[] = {LUNA_HPKE_AEAD_AES128GCM, LUNA_HPKE_AEAD_AES256GCM,
                                     LUNA_HPKE_AEAD_CHACHA20POLY1305};
    uint8_t sk_r[32], pk_r[32], enc[32], buf[64 + 16], pt[64];

    assert_luna_ok(luna_hpke_generate_keypair(sk_r, pk_r));
    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (uint8_t)i;
    for (size_t k = 0; k < 2; k++)
        for (size_t a = 0; a < 3; a++) {
            luna_hpke_params p = {.suite = {LUNA_HPKE_KEM_X25519_SHA256, kdfs[k], aeads[a]},
                                  .mode = LUNA_HPKE_MODE_BASE};
            luna_hpke_ctx *s, *r;
            assert_luna_ok(luna_hpke_setup_sender(&p, pk_r, NULL, enc, &s));
            assert_luna_ok(luna_hpke_setup_receiver(&p, sk_r, enc, NULL, &r));
            memcpy(buf, pt, sizeof(pt));
            assert_luna_ok(luna_hpke_seal(s, NULL, 0, buf, sizeof(pt), buf));
            assert_memory_not_equal(buf, pt, sizeof(pt));
            assert_luna_ok(luna_hpke_open(r, NULL, 0, buf, sizeof(buf), buf));
            assert_memory_equal(buf, pt, sizeof(pt));
            /* Short ciphertext cannot authenticate. */
            assert_luna_err(LUNA_ERR_VERIFY, luna_hpke_open(r, NULL, 0, buf, 15, buf));
            luna_hpke_ctx_free(s);
            luna_hpke_ctx_free(r);
        }
}

static void test_derive_keypair_limits(void **state)
{
    (void)state;
    uint8_t ikm[LUNA_HPKE_MAX_INPUT_LEN + 1] = {0}, sk[32], pk[32];
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_derive_keypair(ikm, 31, sk, pk));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_derive_keypair(ikm, sizeof(ikm), sk, pk));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_hpke_derive_keypair(NULL, 32, sk, pk));
    assert_luna_ok(luna_hpke_derive_keypair(ikm, LUNA_HPKE_MAX_INPUT_LEN, sk, pk));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc9180_a7_export_only),
        cmocka_unit_test(test_rfc9180_a1_base_known_answers),
        cmocka_unit_test(test_psk_rules),
        cmocka_unit_test(test_auth_binds_sender),
        cmocka_unit_test(test_zero_dh_refused),
        cmocka_unit_test(test_sequence_exhaustion),
        cmocka_unit_test(test_suites_round_trip_in_place),
        cmocka_unit_test(test_derive_keypair_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
