/*
 * test_envelope.c - the double envelope's required properties, one test
 * each: round trips; the inner layer opens only with the TEE key; the outer
 * only with the OTK; one key alone learns nothing; both layers authenticate
 * the client key; every header byte and every named field is
 * tamper-evident (also after an OTK holder re-wraps the outer layer);
 * truncation, trailing bytes, unknown version/suite refused; results and
 * their signed receipts.
 */
#include "luna_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/envelope.h"

typedef struct fixture {
    uint8_t client_sk[32], client_pk[32];
    uint8_t tee_sk[32], tee_pk[32];
    uint8_t other_sk[32], other_pk[32];
    uint8_t otk[32];
    uint8_t sign_seed[32], sign_pk[32];
    uint8_t *env;
    size_t env_len;
} fixture;

static const luna_envelope_ids IDS = {"acme", "summarize", "tee-7", "req-0001"};
static const char PT[] = "the customer's secret data: 4111-1111-1111-1111";
static const uint8_t MEAS[48] = {0xaa, 0xbb, 0xcc};

static fixture F;

static void seal_fixture(void)
{
    luna_envelope_seal_params p = {.ids = IDS, .client_sk = F.client_sk, .tee_pk = F.tee_pk,
                                   .otk = F.otk};
    luna_wbuf w;
    size_t n;
    assert_luna_ok(luna_envelope_sealed_len(&IDS, sizeof(PT), &n));
    free(F.env);
    F.env = malloc(n);
    assert_non_null(F.env);
    luna_wbuf_init(&w, F.env, n);
    assert_luna_ok(luna_envelope_seal(&p, (const uint8_t *)PT, sizeof(PT), &w));
    assert_int_equal(w.len, n);
    F.env_len = n;
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    if (luna_x25519_keygen(F.client_sk, F.client_pk) != LUNA_OK ||
        luna_x25519_keygen(F.tee_sk, F.tee_pk) != LUNA_OK ||
        luna_x25519_keygen(F.other_sk, F.other_pk) != LUNA_OK ||
        luna_random(F.otk, 32) != LUNA_OK ||
        luna_ed25519_keygen(F.sign_seed, F.sign_pk) != LUNA_OK)
        return -1;
    seal_fixture();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(F.env);
    F.env = NULL;
    return 0;
}

static uint8_t *copy_env(void)
{
    uint8_t *c = malloc(F.env_len + 1);
    assert_non_null(c);
    memcpy(c, F.env, F.env_len);
    return c;
}

/* Full TEE-side open of buf (len bytes) with the given keys. */
static luna_err open_with(uint8_t *buf, size_t len, const char *tee_id, const uint8_t *tee_sk,
                          const uint8_t *otk, const uint8_t *client_pk)
{
    /* Expect the header's own tenant/job/request id, so the layers' crypto
     * (not the id comparison) must catch any edit; the comparison has its
     * own test (open_refuses_ids_other_than_released). */
    luna_envelope_header h;
    char tenant[LUNA_ENVELOPE_MAX_ID_LEN + 1] = "-", job[LUNA_ENVELOPE_MAX_ID_LEN + 1] = "-",
         req[LUNA_ENVELOPE_MAX_ID_LEN + 1] = "-";
    if (luna_envelope_parse_header(buf, len, &h) == LUNA_OK) {
        memcpy(tenant, h.tenant, sizeof(tenant));
        memcpy(job, h.job, sizeof(job));
        memcpy(req, h.request_id, sizeof(req));
    }
    luna_envelope_open_params p = {.tee_id = tee_id, .tenant = tenant, .job = job,
                                   .request_id = req, .tee_sk = tee_sk, .otk = otk,
                                   .client_pk = client_pk};
    uint8_t *pt;
    size_t pt_len;
    luna_err err = luna_envelope_open(buf, len, &p, &h, &pt, &pt_len);
    if (err == LUNA_OK && (pt_len != sizeof(PT) || memcmp(pt, PT, pt_len) != 0))
        return LUNA_ERR_INTERNAL;
    return err;
}

static luna_err open_copy(const uint8_t *env, size_t len)
{
    uint8_t *c = malloc(len + 1);
    assert_non_null(c);
    if (len > 0)
        memcpy(c, env, len);
    luna_err err = open_with(c, len, IDS.tee_id, F.tee_sk, F.otk, F.client_pk);
    free(c);
    return err;
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

static void test_round_trip(void **state)
{
    (void)state;
    luna_envelope_header h;
    assert_luna_ok(luna_envelope_parse_header(F.env, F.env_len, &h));
    assert_int_equal(h.version, 1);
    assert_int_equal(h.type, LUNA_ENVELOPE_TYPE_REQUEST);
    assert_string_equal(h.tenant, "acme");
    assert_string_equal(h.job, "summarize");
    assert_string_equal(h.tee_id, "tee-7");
    assert_string_equal(h.request_id, "req-0001");
    assert_memory_equal(h.client_pk, F.client_pk, 32);
    assert_int_equal(h.header_len + h.body_len, F.env_len);
    assert_int_equal(h.body_len, sizeof(PT) + 32);
    assert_false(contains(F.env, F.env_len, "secret data", 11));
    assert_luna_ok(open_copy(F.env, F.env_len));
}

static void test_inner_needs_tee_key(void **state)
{
    (void)state;
    uint8_t *c = copy_env();
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_with(c, F.env_len, IDS.tee_id, F.other_sk, F.otk, F.client_pk));
    free(c);
    /* Another TEE's id is refused before any decryption. */
    c = copy_env();
    assert_luna_err(LUNA_ERR_VERIFY, open_with(c, F.env_len, "tee-8", F.tee_sk, F.otk, F.client_pk));
    assert_memory_equal(c, F.env, F.env_len);
    free(c);
}

static void test_outer_needs_otk(void **state)
{
    (void)state;
    uint8_t otk2[32];
    memcpy(otk2, F.otk, 32);
    for (int bit = 0; bit < 256; bit += 37) {
        otk2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint8_t *c = copy_env();
        /* Right TEE key, right client key: still nothing without the OTK. */
        assert_luna_err(LUNA_ERR_VERIFY,
                        open_with(c, F.env_len, IDS.tee_id, F.tee_sk, otk2, F.client_pk));
        free(c);
        otk2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

static void test_one_key_alone_learns_nothing(void **state)
{
    (void)state;
    luna_envelope_header h;
    uint8_t *inner, *pt;
    size_t inner_len, pt_len;
    uint8_t *c = copy_env();

    /* TEE key only: the inner layer is under the outer one and cannot open. */
    assert_luna_ok(luna_envelope_parse_header(c, F.env_len, &h));
    assert_luna_err(LUNA_ERR_VERIFY,
                    luna_envelope_open_inner(&h, c + h.header_len, h.body_len - 16, F.tee_sk,
                                             F.client_pk, &pt, &pt_len));
    assert_null(pt);
    free(c);

    /* OTK only: the outer layer opens to HPKE ciphertext, not the data. */
    c = copy_env();
    assert_luna_ok(luna_envelope_open_outer(c, F.env_len, LUNA_ENVELOPE_TYPE_REQUEST, F.otk,
                                            F.client_pk, &h, &inner, &inner_len));
    assert_int_equal(inner_len, sizeof(PT) + 16);
    assert_false(contains(inner, inner_len, "secret data", 11));
    assert_false(contains(c, F.env_len, "secret data", 11));
    assert_luna_err(LUNA_ERR_VERIFY, luna_envelope_open_inner(&h, inner, inner_len, F.other_sk,
                                                              F.client_pk, &pt, &pt_len));
    free(c);
}

/* The outer key as docs/envelope.md specifies it (recomputed independently). */
static void outer_key(uint8_t type, const uint8_t *client_pk, uint8_t key[32])
{
    uint8_t info[27 + 1 + 32];
    memcpy(info, "lunal envelope v1 outer key", 27);
    info[27] = type;
    memcpy(info + 28, client_pk, 32);
    assert_luna_ok(luna_hkdf(LUNA_HASH_SHA256, NULL, 0, F.otk, 32, info, sizeof(info), key, 32));
}

/*
 * What an OTK holder (a KMS insider) can do: open the outer layer, edit
 * header bytes [off, off+n) to `repl`, and re-seal the outer layer
 * correctly.  Returns the new envelope (same length).
 */
static uint8_t *rewrap(size_t off, const void *repl, size_t n)
{
    luna_envelope_header h;
    uint8_t *c = copy_env(), *inner, key[32];
    size_t inner_len;
    assert_luna_ok(luna_envelope_open_outer(c, F.env_len, LUNA_ENVELOPE_TYPE_REQUEST, F.otk,
                                            F.client_pk, &h, &inner, &inner_len));
    memcpy(c + off, repl, n);
    assert_luna_ok(luna_envelope_parse_header(c, F.env_len, &h));
    outer_key(h.type, h.client_pk, key);
    assert_luna_ok(luna_aead_seal(LUNA_AEAD_AES256GCM, key, 32, h.outer_nonce, 12, c,
                                  h.header_len, inner, inner_len, inner));
    return c;
}

static void test_rewrap_identity_change_fails_inner(void **state)
{
    (void)state;
    luna_envelope_header h;
    assert_luna_ok(luna_envelope_parse_header(F.env, F.env_len, &h));
    /* Sanity: a re-wrap with no change still opens (the helper is right). */
    uint8_t *c = rewrap(0, F.env, 4);
    assert_luna_ok(open_copy(c, F.env_len));
    free(c);
    /* Offsets: tenant at 15, job after it, tee id, request id (see the doc). */
    size_t tenant = 15, job = tenant + 4 + 1, tee = job + 9 + 1, req = tee + 5 + 1;
    size_t pk = req + 8, enc = pk + 32, nonce = enc + 32;
    struct {
        const char *name;
        size_t off;
        const char *repl;
    } edits[] = {
        {"tenant", tenant, "acmf"},
        {"job", job, "summarizf"},
        {"request id", req, "req-0002"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        c = rewrap(edits[i].off, edits[i].repl, strlen(edits[i].repl));
        printf("re-wrapped %s change -> %s\n", edits[i].name,
               luna_errname(open_copy(c, F.env_len)));
        assert_luna_err(LUNA_ERR_VERIFY, open_copy(c, F.env_len));
        free(c);
    }
    /* Another TEE id: refused, and its own holder could not open it either. */
    c = rewrap(tee, "tee-8", 5);
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_with(c, F.env_len, "tee-8", F.tee_sk, F.otk, F.client_pk));
    free(c);
    /* Another client key: even with the outer key recomputed for it, the
     * HPKE auth layer fails (the inner layer authenticates the client). */
    c = rewrap(pk, F.other_pk, 32);
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_with(c, F.env_len, IDS.tee_id, F.tee_sk, F.otk, F.other_pk));
    free(c);
    /* enc and outer nonce edits: inner fails (enc) or outer re-derived (nonce) */
    uint8_t junk[32];
    memset(junk, 9, sizeof(junk));
    c = rewrap(enc, junk, 32);
    assert_luna_err(LUNA_ERR_VERIFY, open_copy(c, F.env_len));
    free(c);
    c = rewrap(nonce, junk, 12);
    assert_luna_err(LUNA_ERR_VERIFY, open_copy(c, F.env_len));
    free(c);
}

static void test_outer_authenticates_client_key(void **state)
{
    (void)state;
    uint8_t *c = copy_env();
    /* The KMS bound this OTK to client_pk: a TEE told another key refuses. */
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_with(c, F.env_len, IDS.tee_id, F.tee_sk, F.otk, F.other_pk));
    free(c);
    /* A header naming another client key fails the outer layer. */
    c = copy_env();
    luna_envelope_header h;
    assert_luna_ok(luna_envelope_parse_header(c, F.env_len, &h));
    memcpy(c + h.header_len - 4 - 12 - 32 - 32, F.other_pk, 32);
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_with(c, F.env_len, IDS.tee_id, F.tee_sk, F.otk, F.other_pk));
    free(c);
    /* A client with its own key but another client's OTK: outer key differs. */
    luna_envelope_seal_params p = {.ids = IDS, .client_sk = F.other_sk, .tee_pk = F.tee_pk,
                                   .otk = F.otk};
    luna_wbuf w;
    c = malloc(F.env_len);
    assert_non_null(c);
    luna_wbuf_init(&w, c, F.env_len);
    assert_luna_ok(luna_envelope_seal(&p, (const uint8_t *)PT, sizeof(PT), &w));
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_with(c, F.env_len, IDS.tee_id, F.tee_sk, F.otk, F.client_pk));
    free(c);
}

static void test_every_byte_is_tamper_evident(void **state)
{
    (void)state;
    luna_envelope_header h;
    assert_luna_ok(luna_envelope_parse_header(F.env, F.env_len, &h));
    uint8_t *c = copy_env();
    for (size_t i = 0; i < F.env_len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(c, F.env, F.env_len);
            c[i] ^= (uint8_t)(1u << bit);
            luna_err err = open_with(c, F.env_len, IDS.tee_id, F.tee_sk, F.otk, F.client_pk);
            if (err == LUNA_OK)
                fail_msg("flipping bit %d of byte %zu went unnoticed", bit, i);
        }
    }
    free(c);
}

static void test_named_header_fields(void **state)
{
    (void)state;
    luna_envelope_header h;
    assert_luna_ok(luna_envelope_parse_header(F.env, F.env_len, &h));
    size_t tenant = 15, job = 20, tee = 30, req = 36;
    size_t pk = 44, enc = 76, nonce = 108, blen = 120;
    assert_int_equal(h.header_len, blen + 4);
    struct {
        const char *name;
        size_t off;
        luna_err want;
    } fields[] = {
        {"magic", 0, LUNA_ERR_FORMAT},         {"version", 4, LUNA_ERR_UNSUPPORTED},
        {"type", 5, LUNA_ERR_UNSUPPORTED},     {"kem_id", 7, LUNA_ERR_UNSUPPORTED},
        {"kdf_id", 9, LUNA_ERR_UNSUPPORTED},   {"aead_id", 11, LUNA_ERR_UNSUPPORTED},
        {"outer_aead_id", 13, LUNA_ERR_UNSUPPORTED},
        {"tenant", tenant + 1, LUNA_ERR_VERIFY}, {"job", job + 2, LUNA_ERR_VERIFY},
        {"tee_id", tee + 1, LUNA_ERR_VERIFY},  {"request_id", req + 3, LUNA_ERR_VERIFY},
        {"client_pk", pk + 5, LUNA_ERR_VERIFY}, {"enc", enc + 5, LUNA_ERR_VERIFY},
        {"outer_nonce", nonce + 5, LUNA_ERR_VERIFY}, {"body_len", blen + 3, LUNA_ERR_FORMAT},
        {"tenant_len", tenant - 1, LUNA_ERR_FORMAT},
    };
    uint8_t *c = copy_env();
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        memcpy(c, F.env, F.env_len);
        c[fields[i].off] ^= 0x01;
        luna_err err = open_with(c, F.env_len, IDS.tee_id, F.tee_sk, F.otk, F.client_pk);
        printf("tamper %-14s -> %s\n", fields[i].name, luna_errname(err));
        assert_int_equal(err, fields[i].want);
    }
    /* Suite changed to a supported-looking one (AES-128-GCM): refused. */
    memcpy(c, F.env, F.env_len);
    c[11] = 0x01;
    assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_envelope_parse_header(c, F.env_len, &h));
    free(c);
}

static void test_truncation_trailing_version(void **state)
{
    (void)state;
    for (size_t n = 0; n < F.env_len; n++)
        assert_int_not_equal(LUNA_OK, open_copy(F.env, n));
    uint8_t *c = malloc(F.env_len + 1);
    assert_non_null(c);
    memcpy(c, F.env, F.env_len);
    c[F.env_len] = 0;
    luna_envelope_header h;
    assert_luna_err(LUNA_ERR_FORMAT, luna_envelope_parse_header(c, F.env_len + 1, &h));
    assert_luna_err(LUNA_ERR_FORMAT, open_copy(c, F.env_len + 1));
    for (int v = 0; v < 256; v++) {
        if (v == 1)
            continue;
        memcpy(c, F.env, F.env_len);
        c[4] = (uint8_t)v;
        assert_luna_err(LUNA_ERR_UNSUPPORTED, luna_envelope_parse_header(c, F.env_len, &h));
    }
    /* A body_len over the cap is refused as such. */
    memcpy(c, F.env, F.env_len);
    c[120] = 0xff;
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_envelope_parse_header(c, F.env_len, &h));
    free(c);
}

static void test_bad_ids_and_capacity(void **state)
{
    (void)state;
    char long_id[LUNA_ENVELOPE_MAX_ID_LEN + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    const char *bad[] = {"", "has space", "tab\t", long_id, "\x7f"};
    size_t n;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        luna_envelope_ids ids = IDS;
        ids.job = bad[i];
        assert_luna_err(LUNA_ERR_INVALID_ARG, luna_envelope_sealed_len(&ids, 10, &n));
    }
    long_id[LUNA_ENVELOPE_MAX_ID_LEN] = '\0'; /* exactly 64 is fine */
    luna_envelope_ids ids = IDS;
    ids.request_id = long_id;
    assert_luna_ok(luna_envelope_sealed_len(&ids, 10, &n));
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_envelope_sealed_len(&IDS, LUNA_ENVELOPE_MAX_PAYLOAD + 1, &n));

    /* Too little room: nothing appended. */
    uint8_t buf[256];
    luna_wbuf w;
    luna_wbuf_init(&w, buf, F.env_len - 1);
    luna_envelope_seal_params p = {.ids = IDS, .client_sk = F.client_sk, .tee_pk = F.tee_pk,
                                   .otk = F.otk};
    assert_luna_err(LUNA_ERR_TOO_LARGE,
                    luna_envelope_seal(&p, (const uint8_t *)PT, sizeof(PT), &w));
    assert_int_equal(w.len, 0);
    /* A low-order TEE key is refused (all-zero DH). */
    uint8_t zero[32] = {0};
    p.tee_pk = zero;
    luna_wbuf_init(&w, buf, sizeof(buf));
    assert_luna_err(LUNA_ERR_VERIFY, luna_envelope_seal(&p, (const uint8_t *)PT, sizeof(PT), &w));
    assert_int_equal(w.len, 0);
    /* Empty plaintext round-trips. */
    p.tee_pk = F.tee_pk;
    assert_luna_ok(luna_envelope_seal(&p, NULL, 0, &w));
    luna_envelope_open_params op = {.tee_id = IDS.tee_id, .tenant = IDS.tenant, .job = IDS.job,
                                    .request_id = IDS.request_id, .tee_sk = F.tee_sk,
                                    .otk = F.otk, .client_pk = F.client_pk};
    luna_envelope_header h;
    uint8_t *pt;
    size_t pt_len;
    assert_luna_ok(luna_envelope_open(buf, w.len, &op, &h, &pt, &pt_len));
    assert_int_equal(pt_len, 0);
}

/* ---- results ---- */

static uint8_t *seal_result(const char *data, size_t *len, const luna_envelope_ids *ids)
{
    luna_result_seal_params p = {.ids = *ids, .tee_sk = F.tee_sk, .client_pk = F.client_pk,
                                 .otk = F.otk, .sign_seed = F.sign_seed, .measurement = MEAS,
                                 .measurement_len = sizeof(MEAS)};
    luna_wbuf w;
    size_t n;
    assert_luna_ok(luna_result_sealed_len(ids, sizeof(MEAS), strlen(data), &n));
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    luna_wbuf_init(&w, buf, n);
    assert_luna_ok(luna_result_seal(&p, (const uint8_t *)data, strlen(data), &w));
    assert_int_equal(w.len, n);
    *len = n;
    return buf;
}

static luna_err open_result(uint8_t *buf, size_t len, const uint8_t *sign_pk,
                            const uint8_t *tee_pk, const char *request_id, luna_receipt *rc,
                            const char **data, size_t *data_len)
{
    luna_result_open_params p = {.expected = IDS, .client_sk = F.client_sk, .tee_pk = tee_pk,
                                 .tee_sign_pk = sign_pk, .otk = F.otk,
                                 .expected_measurement = MEAS,
                                 .expected_measurement_len = sizeof(MEAS)};
    uint8_t *r;
    p.expected.request_id = request_id;
    luna_err err = luna_result_open(buf, len, &p, rc, &r, data_len);
    *data = (const char *)r;
    return err;
}

static void test_result_round_trip_and_receipt(void **state)
{
    (void)state;
    static const char RES[] = "summary: all good";
    size_t len, dlen;
    const char *data;
    luna_receipt rc;
    uint8_t *env = seal_result(RES, &len, &IDS);
    uint8_t *c = malloc(len);
    assert_non_null(c);

    memcpy(c, env, len);
    assert_luna_ok(open_result(c, len, F.sign_pk, F.tee_pk, IDS.request_id, &rc, &data, &dlen));
    assert_int_equal(dlen, strlen(RES));
    assert_memory_equal(data, RES, dlen);
    assert_string_equal(rc.request_id, "req-0001");
    assert_string_equal(rc.job, "summarize");
    assert_int_equal(rc.measurement_len, sizeof(MEAS));
    assert_memory_equal(rc.client_pk, F.client_pk, 32);
    uint8_t hash[32];
    assert_luna_ok(luna_sha256(RES, strlen(RES), hash));
    assert_memory_equal(rc.result_hash, hash, 32);

    /* Wrong signing key, wrong TEE key, other request id: refused. */
    memcpy(c, env, len);
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_result(c, len, F.other_pk, F.tee_pk, IDS.request_id, &rc, &data, &dlen));
    memcpy(c, env, len);
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_result(c, len, F.sign_pk, F.other_pk, IDS.request_id, &rc, &data, &dlen));
    memcpy(c, env, len);
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_result(c, len, F.sign_pk, F.tee_pk, "req-0002", &rc, &data, &dlen));
    /* A result is not a request and vice versa. */
    memcpy(c, env, len);
    luna_envelope_open_params op = {.tee_id = IDS.tee_id, .tenant = IDS.tenant, .job = IDS.job,
                                    .request_id = IDS.request_id, .tee_sk = F.tee_sk,
                                    .otk = F.otk, .client_pk = F.client_pk};
    luna_envelope_header h;
    uint8_t *pt;
    size_t pt_len;
    assert_luna_err(LUNA_ERR_VERIFY, luna_envelope_open(c, len, &op, &h, &pt, &pt_len));
    uint8_t *req = copy_env();
    assert_luna_err(LUNA_ERR_VERIFY, open_result(req, F.env_len, F.sign_pk, F.tee_pk,
                                                 IDS.request_id, &rc, &data, &dlen));
    free(req);
    /* Every bit of the result envelope is tamper-evident. */
    for (size_t i = 0; i < len; i++) {
        memcpy(c, env, len);
        c[i] ^= 0x80;
        if (open_result(c, len, F.sign_pk, F.tee_pk, IDS.request_id, &rc, &data, &dlen) ==
            LUNA_OK)
            fail_msg("result byte %zu tamper unnoticed", i);
    }
    /* Truncated and extended. */
    memcpy(c, env, len);
    assert_int_not_equal(LUNA_OK, open_result(c, len - 1, F.sign_pk, F.tee_pk, IDS.request_id,
                                              &rc, &data, &dlen));
    free(c);
    free(env);
}

static void test_result_for_other_request_refused(void **state)
{
    (void)state;
    /* A TEE answering with a (correctly signed) receipt for another request. */
    luna_envelope_ids other = IDS;
    other.request_id = "req-0999";
    size_t len, dlen;
    const char *data;
    luna_receipt rc;
    uint8_t *env = seal_result("x", &len, &other);
    assert_luna_err(LUNA_ERR_VERIFY,
                    open_result(env, len, F.sign_pk, F.tee_pk, IDS.request_id, &rc, &data, &dlen));
    free(env);
}

/* The header's ids are the client's claim; the TEE binds them to the ids
 * the KMS released the one-time key for. */
static luna_err open_expecting(const char *tenant, const char *job, const char *req)
{
    uint8_t *c = malloc(F.env_len + 1);
    assert_non_null(c);
    memcpy(c, F.env, F.env_len);
    luna_envelope_open_params op = {.tee_id = IDS.tee_id, .tenant = tenant, .job = job,
                                    .request_id = req, .tee_sk = F.tee_sk, .otk = F.otk,
                                    .client_pk = F.client_pk};
    luna_envelope_header h;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    luna_err err = luna_envelope_open(c, F.env_len, &op, &h, &pt, &pt_len);
    if (err != LUNA_OK)
        assert_null(pt);
    free(c);
    return err;
}

static void test_open_refuses_ids_other_than_released(void **state)
{
    (void)state;
    assert_luna_ok(open_expecting(IDS.tenant, IDS.job, IDS.request_id));
    assert_luna_err(LUNA_ERR_VERIFY, open_expecting("globex", IDS.job, IDS.request_id));
    assert_luna_err(LUNA_ERR_VERIFY, open_expecting(IDS.tenant, "other-job", IDS.request_id));
    assert_luna_err(LUNA_ERR_VERIFY, open_expecting(IDS.tenant, IDS.job, "req-0002"));
    assert_luna_err(LUNA_ERR_VERIFY, open_expecting("acmE", IDS.job, IDS.request_id));
    assert_luna_err(LUNA_ERR_INVALID_ARG, open_expecting(NULL, IDS.job, IDS.request_id));
    assert_luna_err(LUNA_ERR_INVALID_ARG, open_expecting(IDS.tenant, NULL, IDS.request_id));
    assert_luna_err(LUNA_ERR_INVALID_ARG, open_expecting(IDS.tenant, IDS.job, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_open_refuses_ids_other_than_released),
        cmocka_unit_test(test_inner_needs_tee_key),
        cmocka_unit_test(test_outer_needs_otk),
        cmocka_unit_test(test_one_key_alone_learns_nothing),
        cmocka_unit_test(test_rewrap_identity_change_fails_inner),
        cmocka_unit_test(test_outer_authenticates_client_key),
        cmocka_unit_test(test_every_byte_is_tamper_evident),
        cmocka_unit_test(test_named_header_fields),
        cmocka_unit_test(test_truncation_trailing_version),
        cmocka_unit_test(test_bad_ids_and_capacity),
        cmocka_unit_test(test_result_round_trip_and_receipt),
        cmocka_unit_test(test_result_for_other_request_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
