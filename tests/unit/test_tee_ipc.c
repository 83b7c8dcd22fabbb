/*
 * test_tee_ipc.c - the host <-> runtime messages (tee/ipc.c): every type
 * round-trips byte for byte; the decoder refuses a wrong version, type,
 * reserved bits, length field, trailing and missing bytes, fields over
 * their caps and an evidence/status mismatch; the encoder refuses what
 * the decoder would.  Also the runtime config parser (tee/tee_config.c)
 * and the measurement formulas (tee/measure.c).
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "luna/crypto.h"
#include "luna_test.h"
#include "measure.h"
#include "tee_config.h"

static uint8_t k1[32], k2[32], k3[32];

static size_t enc(const luna_tee_msg *m, uint8_t *buf)
{
    luna_wbuf w;
    luna_wbuf_init(&w, buf, LUNA_TEE_IPC_MAX);
    assert_luna_ok(luna_tee_ipc_encode(m, &w));
    return w.len;
}

static void roundtrip(const luna_tee_msg *m)
{
    static uint8_t a[LUNA_TEE_IPC_MAX], b[LUNA_TEE_IPC_MAX];
    size_t n = enc(m, a);
    luna_tee_msg d;
    assert_luna_ok(luna_tee_ipc_decode(a, n, &d));
    assert_int_equal(m->type, d.type);
    assert_int_equal(n, enc(&d, b));
    assert_memory_equal(a, b, n);
    /* Every strict prefix and one trailing byte are refused. */
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(LUNA_OK, luna_tee_ipc_decode(a, i, &d));
    a[n] = 0;
    assert_int_not_equal(LUNA_OK, luna_tee_ipc_decode(a, n + 1, &d));
}

static void test_roundtrip(void **state)
{
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    memset(k3, 3, 32);
    static const char cfg[] = "{\"x\":1}";
    luna_tee_msg m = {.type = LUNA_TEE_MSG_CONFIG, .tee_id = (const uint8_t *)"tee-1",
                      .tee_id_len = 5, .config = (const uint8_t *)cfg, .config_len = 7};
    roundtrip(&m);
    luna_tee_msg l = {.type = LUNA_TEE_MSG_LOADED, .bundle_addr = 0x7f0000001000};
    roundtrip(&l);
    luna_tee_msg me = {.type = LUNA_TEE_MSG_MEASURED, .mr_enclave = k1, .mr_signer = k2};
    roundtrip(&me);
    luna_tee_msg er = {.type = LUNA_TEE_MSG_EVIDENCE_REQ, .nonce = k1, .x25519 = k2,
                       .ed25519 = k3, .arena_addr = 0x1000, .arena_len = 4096};
    roundtrip(&er);
    luna_tee_msg ev = {.type = LUNA_TEE_MSG_EVIDENCE, .evidence = k1, .evidence_len = 32};
    roundtrip(&ev);
    luna_tee_msg ev_err = {.type = LUNA_TEE_MSG_EVIDENCE, .status = LUNA_ERR_UNAVAILABLE};
    roundtrip(&ev_err);
    luna_tee_msg ar = {.type = LUNA_TEE_MSG_ADMIT_REQ, .x25519 = k1, .ed25519 = k2, .spki = k3,
                       .spki_len = 32, .arena_addr = 0x1000, .arena_len = 1, .port = 8450};
    roundtrip(&ar);
    luna_tee_msg ad = {.type = LUNA_TEE_MSG_ADMITTED, .cert = k1, .cert_len = 32, .report = k2,
                       .report_len = 3};
    roundtrip(&ad);
}

static void test_refusals(void **state)
{
    static uint8_t a[LUNA_TEE_IPC_MAX + 8];
    luna_tee_msg d;
    luna_tee_msg l = {.type = LUNA_TEE_MSG_LOADED, .bundle_addr = 0x1000};
    size_t n = enc(&l, a);
    a[0] = 2; /* version */
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_tee_ipc_decode(a, n, &d));
    a[0] = 1;
    a[1] = 99; /* type */
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_tee_ipc_decode(a, n, &d));
    a[1] = LUNA_TEE_MSG_LOADED;
    a[3] = 1; /* reserved */
    assert_luna_err(LUNA_ERR_FORMAT, luna_tee_ipc_decode(a, n, &d));
    a[3] = 0;
    a[7]++; /* length field */
    assert_luna_err(LUNA_ERR_FORMAT, luna_tee_ipc_decode(a, n, &d));
    a[7]--;
    assert_luna_ok(luna_tee_ipc_decode(a, n, &d));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_tee_ipc_decode(a, LUNA_TEE_IPC_MAX + 1, &d));

    /* Encoder refuses what the decoder would. */
    luna_wbuf w;
    luna_wbuf_init(&w, a, LUNA_TEE_IPC_MAX);
    luna_tee_msg bad_id = {.type = LUNA_TEE_MSG_CONFIG, .tee_id = (const uint8_t *)"Tee 1",
                           .tee_id_len = 5, .config = k1, .config_len = 1};
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_tee_ipc_encode(&bad_id, &w));
    luna_tee_msg ev_both = {.type = LUNA_TEE_MSG_EVIDENCE, .status = 3, .evidence = k1,
                            .evidence_len = 32};
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_tee_ipc_encode(&ev_both, &w));
    luna_tee_msg big_arena = {.type = LUNA_TEE_MSG_EVIDENCE_REQ, .nonce = k1, .x25519 = k2,
                              .ed25519 = k3, .arena_addr = 0x1000,
                              .arena_len = LUNA_TEE_IPC_ARENA_MAX + 1};
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_tee_ipc_encode(&big_arena, &w));
    luna_tee_msg wrap = {.type = LUNA_TEE_MSG_EVIDENCE_REQ, .nonce = k1, .x25519 = k2,
                         .ed25519 = k3, .arena_addr = UINT64_MAX - 10, .arena_len = 4096};
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_tee_ipc_encode(&wrap, &w));
    assert_int_equal(0, w.len);

    /* A status with evidence on the wire is refused by the decoder too. */
    luna_tee_msg ev = {.type = LUNA_TEE_MSG_EVIDENCE, .evidence = k1, .evidence_len = 32};
    n = enc(&ev, a);
    a[LUNA_TEE_IPC_HEADER_LEN + 1] = 8; /* status = io */
    assert_luna_err(LUNA_ERR_FORMAT, luna_tee_ipc_decode(a, n, &d));
}

static void test_socketpair(void **state)
{
    int sv[2];
    static uint8_t buf[LUNA_TEE_IPC_MAX];
    assert_int_equal(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    luna_tee_msg l = {.type = LUNA_TEE_MSG_LOADED, .bundle_addr = 0x4000};
    assert_luna_ok(luna_tee_ipc_send(sv[0], &l));
    luna_tee_msg d;
    assert_luna_ok(luna_tee_ipc_recv(sv[1], buf, sizeof(buf), 1000, &d));
    assert_int_equal(0x4000, d.bundle_addr);
    assert_luna_err(LUNA_ERR_TIMEOUT, luna_tee_ipc_recv(sv[1], buf, sizeof(buf), 10, &d));
    /* An oversized datagram is refused whole, never truncated into a message. */
    static uint8_t big[LUNA_TEE_IPC_MAX + 100];
    memset(big, 0, sizeof(big));
    assert_int_equal((ssize_t)sizeof(big), send(sv[0], big, sizeof(big), 0));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_tee_ipc_recv(sv[1], buf, sizeof(buf), 1000, &d));
    close(sv[0]);
    assert_luna_err(LUNA_ERR_UNAVAILABLE, luna_tee_ipc_recv(sv[1], buf, sizeof(buf), 1000, &d));
    close(sv[1]);
}

static const char good_cfg[] =
    "{\"deployment_id\":\"demo\",\"developer_id\":\"dev_1\","
    "\"developer_pk\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\","
    "\"listen\":{\"address\":\"127.0.0.1\",\"port\":8450},"
    "\"tls\":{\"ca\":\"/ca.crt\",\"tee_ca\":\"/tee_ca.crt\"},"
    "\"kms\":{\"host\":\"127.0.0.1\",\"port\":8445},"
    "\"limits\":{\"cpu_seconds\":5,\"wall_ms\":10000,\"memory_mib\":256,\"result_kib\":1024,"
    "\"scratch_kib\":4096}}";

static void test_config(void **state)
{
    luna_tee_config c;
    char msg[256];
    assert_luna_ok(luna_tee_config_parse((const uint8_t *)good_cfg, strlen(good_cfg), &c, msg,
                                         sizeof(msg)));
    assert_string_equal("demo", c.deployment_id);
    assert_int_equal(8450, c.listen_port);
    assert_int_equal(256u << 20, c.limits.mem_bytes);
    assert_int_equal(31, c.developer_pk[31]);
    /* An unknown key, a missing key, a limit out of range: refused. */
    char bad[sizeof(good_cfg) + 32];
    snprintf(bad, sizeof(bad), "{\"debug\":true,%s", good_cfg + 1);
    assert_int_not_equal(LUNA_OK, luna_tee_config_parse((const uint8_t *)bad, strlen(bad), &c,
                                                        msg, sizeof(msg)));
    const char *no_kms = "{\"deployment_id\":\"demo\"}";
    assert_int_not_equal(LUNA_OK, luna_tee_config_parse((const uint8_t *)no_kms, strlen(no_kms),
                                                        &c, msg, sizeof(msg)));
    char cpu[sizeof(good_cfg)];
    memcpy(cpu, good_cfg, sizeof(good_cfg));
    char *p = strstr(cpu, "\"cpu_seconds\":5");
    memcpy(p, "\"cpu_seconds\":0", 15);
    assert_int_not_equal(LUNA_OK, luna_tee_config_parse((const uint8_t *)cpu, strlen(cpu), &c,
                                                        msg, sizeof(msg)));
}

static void test_measure_formulas(void **state)
{
    uint8_t a[32], b[32], c1[32], c2[32], mr1[32], mr2[32], want[32];
    memset(a, 0xaa, 32);
    memset(b, 0xbb, 32);
    memset(c1, 0xcc, 32);
    assert_luna_ok(luna_tee_mr_enclave(a, b, c1, mr1));
    /* Recomputed by hand from the documented formula. */
    uint8_t msg[23 + 96];
    memcpy(msg, "lunal sim mr_enclave v2", 23);
    memcpy(msg + 23, a, 32);
    memcpy(msg + 55, b, 32);
    memcpy(msg + 87, c1, 32);
    assert_luna_ok(luna_sha256(msg, sizeof(msg), want));
    assert_memory_equal(want, mr1, 32);
    /* Any input changes it. */
    c1[31] ^= 1;
    assert_luna_ok(luna_tee_mr_enclave(a, b, c1, mr2));
    assert_memory_not_equal(mr1, mr2, 32);

    /* config_hash by hand: label, the ids with their lengths, the key, the limits. */
    luna_tee_config cfg;
    char why[256];
    assert_luna_ok(luna_tee_config_parse((const uint8_t *)good_cfg, strlen(good_cfg), &cfg, why,
                                         sizeof(why)));
    assert_luna_ok(luna_tee_config_hash(&cfg, c1));
    uint8_t cm[19 + 1 + 4 + 1 + 5 + 32 + 40], *q = cm;
    memcpy(q, "lunal sim config v1", 19), q += 19;
    *q++ = 4, memcpy(q, "demo", 4), q += 4;
    *q++ = 5, memcpy(q, "dev_1", 5), q += 5;
    for (int i = 0; i < 32; i++)
        *q++ = (uint8_t)i;
    const uint64_t lim[5] = {5, 10000, 256u << 20, 1024u << 10, 4096u << 10};
    for (int i = 0; i < 5; i++)
        for (int j = 7; j >= 0; j--)
            *q++ = (uint8_t)(lim[i] >> (8 * j));
    assert_int_equal(sizeof(cm), (size_t)(q - cm));
    assert_luna_ok(luna_sha256(cm, sizeof(cm), want));
    assert_memory_equal(want, c1, 32);
    /* Per-instance fields (port, address, CA paths, KMS) do not change it... */
    char other[sizeof(good_cfg) + 64];
    snprintf(other, sizeof(other), "%s", good_cfg);
    memcpy(strstr(other, "8450"), "8451", 4);
    memcpy(strstr(other, "/ca.crt"), "/cb.crt", 7);
    memcpy(strstr(other, "8445"), "9445", 4);
    assert_luna_ok(luna_tee_config_parse((const uint8_t *)other, strlen(other), &cfg, why,
                                         sizeof(why)));
    assert_luna_ok(luna_tee_config_hash(&cfg, c2));
    assert_memory_equal(c1, c2, 32);
    /* ...while the deployment, the developer key and the limits do. */
    static const char *const swaps[][2] = {{"\"demo\"", "\"demx\""},
                                           {"AAECAwQF", "BAECAwQF"},
                                           {"\"wall_ms\":10000", "\"wall_ms\":10001"}};
    for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
        snprintf(other, sizeof(other), "%s", good_cfg);
        memcpy(strstr(other, swaps[i][0]), swaps[i][1], strlen(swaps[i][1]));
        assert_luna_ok(luna_tee_config_parse((const uint8_t *)other, strlen(other), &cfg, why,
                                             sizeof(why)));
        assert_luna_ok(luna_tee_config_hash(&cfg, c2));
        assert_memory_not_equal(c1, c2, 32);
    }
    /* The memory digest of this process's zeroed buffer equals the zero digest. */
    static uint8_t zero[4096];
    assert_luna_ok(luna_tee_memory_digest(getpid(), (uint64_t)(uintptr_t)zero, sizeof(zero), mr1));
    assert_luna_ok(luna_tee_memory_digest_zero(sizeof(zero), mr2));
    assert_memory_equal(mr1, mr2, 32);
    zero[100] = 1;
    assert_luna_ok(luna_tee_memory_digest(getpid(), (uint64_t)(uintptr_t)zero, sizeof(zero), mr1));
    assert_memory_not_equal(mr1, mr2, 32);
    /* The running executable is measured through /proc, like a file read. */
    uint8_t exe[32], disk[32];
    assert_luna_ok(luna_tee_measure_exe(getpid(), exe));
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(sl > 0);
    self[sl] = '\0';
    assert_luna_ok(luna_tee_hash_path(self, disk));
    /* The offline tool never follows a symlink. */
    assert_luna_err(LUNA_ERR_IO, luna_tee_hash_path("/proc/self/exe", disk));
    assert_memory_equal(exe, disk, 32);
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_tee_measure_mapping(getpid(), 0x10, exe));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),  cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_socketpair), cmocka_unit_test(test_config),
        cmocka_unit_test(test_measure_formulas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
