/*
 * test_manifest.c - signed deployment manifests: a signed manifest
 * verifies against the pinned developer and reads back whole; every
 * refusal has its own error: unknown field, oversize, bad signature,
 * another developer's key, key_id / mr_signer / developer_id mismatch,
 * non-canonical header or payload, malformed JWS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/manifest.h"
#include "luna_test.h"
#include "manifest_internal.h"

static uint8_t seed[32], pk[32], seed2[32], pk2[32];

static int setup(void **state)
{
    (void)state;
    assert_luna_ok(luna_ed25519_keygen(seed, pk));
    assert_luna_ok(luna_ed25519_keygen(seed2, pk2));
    return 0;
}

static void sample(luna_manifest *m)
{
    memset(m, 0, sizeof(*m));
    strcpy(m->name, "word-stats");
    strcpy(m->version, "1.2.0");
    strcpy(m->jobs[0], "wordcount");
    strcpy(m->jobs[1], "sha256");
    m->n_jobs = 2;
    memset(m->build_hash, 0x7a, 32);
    memset(m->mr_enclave, 0x9a, 32);
    m->mr_enclave_len = 32;
    strcpy(m->developer_id, "dev_29fja92");
}

static char *signed_sample(size_t *len)
{
    luna_manifest m;
    char *jws = NULL;
    sample(&m);
    assert_luna_ok(luna_manifest_sign(&m, seed, &jws, len));
    return jws;
}

/* Builds a JWS by hand from header and payload text, signed with sk. */
static char *forge(const char *header, const char *payload, const uint8_t *sk)
{
    size_t hl = strlen(header), pl = strlen(payload);
    size_t cap = LUNA_B64URL_ENC_LEN(hl) + LUNA_B64URL_ENC_LEN(pl) + 100;
    char *out = malloc(cap);
    uint8_t sig[64];
    assert_non_null(out);
    assert_luna_ok(luna_b64url_encode((const uint8_t *)header, hl, out, cap));
    size_t n = strlen(out);
    out[n++] = '.';
    assert_luna_ok(luna_b64url_encode((const uint8_t *)payload, pl, out + n, cap - n));
    n = strlen(out);
    assert_luna_ok(luna_ed25519_sign(sk, (const uint8_t *)out, n, sig));
    out[n++] = '.';
    assert_luna_ok(luna_b64url_encode(sig, 64, out + n, cap - n));
    return out;
}

static void canonical_payload(char *buf, size_t cap, const char *kid, const uint8_t *key,
                              const char *extra)
{
    uint8_t mrs[32];
    char mrs_hex[65];
    assert_luna_ok(luna_manifest_mr_signer(key, mrs));
    assert_luna_ok(luna_hex_encode(mrs, 32, mrs_hex, sizeof(mrs_hex)));
    snprintf(buf, cap,
             "{\"build_hash\":\"sha256:%s\",\"developer_id\":\"dev_29fja92\","
             "\"jobs\":[\"wordcount\"],\"key_id\":\"%s\",\"mr_enclave\":\"%s\","
             "\"mr_signer\":\"%s\",\"name\":\"app\",\"v\":1,\"version\":\"1\"%s}",
             "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a", kid,
             "9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a", mrs_hex,
             extra);
}

static void header_for(char *buf, size_t cap, const char *kid)
{
    snprintf(buf, cap, "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"lunal-manifest+v1\"}", kid);
}

static void t_roundtrip(void **state)
{
    (void)state;
    size_t len = 0;
    char *jws = signed_sample(&len);
    luna_manifest m, want;
    char kid[48];
    uint8_t mrs[32];
    assert_int_equal(strlen(jws), len);
    assert_luna_ok(luna_manifest_verify(jws, len, "dev_29fja92", pk, &m));
    sample(&want);
    assert_string_equal(want.name, m.name);
    assert_string_equal(want.version, m.version);
    assert_int_equal(2, m.n_jobs);
    assert_string_equal("wordcount", m.jobs[0]);
    assert_string_equal("sha256", m.jobs[1]);
    assert_memory_equal(want.build_hash, m.build_hash, 32);
    assert_int_equal(32, m.mr_enclave_len);
    assert_memory_equal(want.mr_enclave, m.mr_enclave, 32);
    assert_string_equal("dev_29fja92", m.developer_id);
    assert_luna_ok(luna_manifest_key_id(pk, kid));
    assert_string_equal(kid, m.key_id);
    assert_luna_ok(luna_manifest_mr_signer(pk, mrs));
    assert_memory_equal(mrs, m.mr_signer, 32);
    free(jws);
}

static void t_key_id_format(void **state)
{
    (void)state;
    uint8_t zero[32] = {0}, h[32];
    char kid[48], want[48];
    assert_luna_ok(luna_manifest_key_id(zero, kid));
    assert_luna_ok(luna_sha256(zero, 32, h));
    for (int i = 0; i < 16; i++)
        snprintf(want + 3 * i, sizeof(want) - (size_t)(3 * i), i == 15 ? "%02x" : "%02x:", h[i]);
    assert_string_equal(want, kid);
    assert_int_equal(LUNA_MANIFEST_KEY_ID_LEN, strlen(kid));
    /* SHA-256 of 32 zero bytes starts 66687aad... (FIPS 180-4 value). */
    assert_memory_equal("66:68:7a:ad", kid, 11);
}

static void t_bad_signature(void **state)
{
    (void)state;
    size_t len = 0;
    char *jws = signed_sample(&len);
    luna_manifest m;
    jws[len - 3] = jws[len - 3] == 'A' ? 'B' : 'A';
    assert_luna_err(LUNA_ERR_VERIFY, luna_manifest_verify(jws, len, "dev_29fja92", pk, &m));
    free(jws);
}

static void t_tampered_payload(void **state)
{
    (void)state;
    size_t len = 0;
    char *jws = signed_sample(&len);
    luna_manifest m;
    size_t at = strcspn(jws, ".") + 5; /* a byte inside the payload */
    assert_true(at < len);
    jws[at] = jws[at] == 'A' ? 'B' : 'A';
    luna_err e = luna_manifest_verify(jws, len, "dev_29fja92", pk, &m);
    assert_true(e == LUNA_ERR_VERIFY);
    free(jws);
}

static void t_other_developer_key(void **state)
{
    (void)state;
    luna_manifest m;
    char *jws = NULL;
    size_t len = 0;
    sample(&m);
    assert_luna_ok(luna_manifest_sign(&m, seed2, &jws, &len));
    /* Signed by an unknown developer key: its kid is not the pinned one. */
    assert_luna_err(LUNA_ERR_PERMISSION, luna_manifest_verify(jws, len, "dev_29fja92", pk, &m));
    free(jws);
}

static void t_kid_forged_to_pinned(void **state)
{
    (void)state;
    char kid[48], h[128], p[1024];
    luna_manifest m;
    assert_luna_ok(luna_manifest_key_id(pk, kid));
    header_for(h, sizeof(h), kid);
    canonical_payload(p, sizeof(p), kid, pk, "");
    char *jws = forge(h, p, seed2); /* claims the pinned key, signed by another */
    assert_luna_err(LUNA_ERR_VERIFY, luna_manifest_verify(jws, strlen(jws), "dev_29fja92", pk, &m));
    free(jws);
    jws = forge(h, p, seed); /* the same, honestly signed: accepted */
    assert_luna_ok(luna_manifest_verify(jws, strlen(jws), "dev_29fja92", pk, &m));
    free(jws);
}

static void t_payload_key_id_mismatch(void **state)
{
    (void)state;
    char kid[48], kid2[48], h[128], p[1024];
    luna_manifest m;
    assert_luna_ok(luna_manifest_key_id(pk, kid));
    assert_luna_ok(luna_manifest_key_id(pk2, kid2));
    header_for(h, sizeof(h), kid);
    canonical_payload(p, sizeof(p), kid2, pk, "");
    char *jws = forge(h, p, seed);
    assert_luna_err(LUNA_ERR_PERMISSION,
                    luna_manifest_verify(jws, strlen(jws), "dev_29fja92", pk, &m));
    free(jws);
    canonical_payload(p, sizeof(p), kid, pk2, ""); /* mr_signer of another key */
    jws = forge(h, p, seed);
    assert_luna_err(LUNA_ERR_PERMISSION,
                    luna_manifest_verify(jws, strlen(jws), "dev_29fja92", pk, &m));
    free(jws);
}

static void t_developer_id_mismatch(void **state)
{
    (void)state;
    size_t len = 0;
    char *jws = signed_sample(&len);
    luna_manifest m;
    assert_luna_err(LUNA_ERR_PERMISSION, luna_manifest_verify(jws, len, "dev_other", pk, &m));
    free(jws);
}

static void t_unknown_field(void **state)
{
    (void)state;
    char kid[48], h[128], p[1024];
    luna_manifest m;
    assert_luna_ok(luna_manifest_key_id(pk, kid));
    header_for(h, sizeof(h), kid);
    canonical_payload(p, sizeof(p), kid, pk, ",\"zz\":1");
    char *jws = forge(h, p, seed);
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_verify(jws, strlen(jws), "dev_29fja92", pk, &m));
    free(jws);
    /* An unknown header member (e.g. a key source) likewise. */
    snprintf(h, sizeof(h), "{\"alg\":\"EdDSA\",\"jku\":\"x\",\"kid\":\"%s\",\"typ\":\"lunal-manifest+v1\"}", kid);
    canonical_payload(p, sizeof(p), kid, pk, "");
    jws = forge(h, p, seed);
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_verify(jws, strlen(jws), "dev_29fja92", pk, &m));
    free(jws);
}

static void t_non_canonical(void **state)
{
    (void)state;
    char kid[48], h[160], p[1024];
    luna_manifest m;
    assert_luna_ok(luna_manifest_key_id(pk, kid));
    /* Header with whitespace. */
    snprintf(h, sizeof(h), "{\"alg\": \"EdDSA\",\"kid\":\"%s\",\"typ\":\"lunal-manifest+v1\"}", kid);
    canonical_payload(p, sizeof(p), kid, pk, "");
    char *jws = forge(h, p, seed);
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_verify(jws, strlen(jws), "dev_29fja92", pk, &m));
    free(jws);
    /* alg none / another alg. */
    snprintf(h, sizeof(h), "{\"alg\":\"none\",\"kid\":\"%s\",\"typ\":\"lunal-manifest+v1\"}", kid);
    jws = forge(h, p, seed);
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_verify(jws, strlen(jws), "dev_29fja92", pk, &m));
    free(jws);
    /* Payload: keys out of order, upper-case hex. */
    assert_luna_err(LUNA_ERR_FORMAT,
                    luna_manifest_parse_payload("{\"v\":1}", 7, &m));
    canonical_payload(p, sizeof(p), kid, pk, "");
    char *x = strstr(p, "9a9a");
    x[1] = 'A';
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_parse_payload(p, strlen(p), &m));
    canonical_payload(p, sizeof(p), kid, pk, "");
    assert_luna_ok(luna_manifest_parse_payload(p, strlen(p), &m));
    /* Duplicate job. */
    x = strstr(p, "[\"wordcount\"]");
    assert_non_null(x);
    char q[1100];
    snprintf(q, sizeof(q), "%.*s[\"wordcount\",\"wordcount\"]%s", (int)(x - p), p,
             x + strlen("[\"wordcount\"]"));
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_parse_payload(q, strlen(q), &m));
}

static void t_oversize_and_malformed(void **state)
{
    (void)state;
    luna_manifest m;
    size_t big = LUNA_MANIFEST_MAX_LEN + 1;
    char *s = malloc(big);
    assert_non_null(s);
    memset(s, 'A', big);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_manifest_verify(s, big, "dev_29fja92", pk, &m));
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_verify(s, 100, "dev_29fja92", pk, &m));
    free(s);
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_verify("a.b", 3, "dev_29fja92", pk, &m));
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_verify("a.b.c.d", 7, "dev_29fja92", pk, &m));
    assert_luna_err(LUNA_ERR_FORMAT, luna_manifest_verify("", 0, "dev_29fja92", pk, &m));
    size_t len = 0;
    char *jws = signed_sample(&len);
    for (size_t cut = 1; cut < len; cut += 7)
        assert_true(luna_manifest_verify(jws, len - cut, "dev_29fja92", pk, &m) != LUNA_OK);
    free(jws);
}

static void t_sign_rejects_bad_fields(void **state)
{
    (void)state;
    luna_manifest m;
    char *jws = NULL;
    sample(&m);
    strcpy(m.name, "bad name");
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_manifest_sign(&m, seed, &jws, NULL));
    sample(&m);
    strcpy(m.jobs[1], "wordcount");
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_manifest_sign(&m, seed, &jws, NULL));
    sample(&m);
    m.mr_enclave_len = 33;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_manifest_sign(&m, seed, &jws, NULL));
    sample(&m);
    m.n_jobs = 0;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_manifest_sign(&m, seed, &jws, NULL));
    assert_null(jws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_roundtrip),
        cmocka_unit_test(t_key_id_format),
        cmocka_unit_test(t_bad_signature),
        cmocka_unit_test(t_tampered_payload),
        cmocka_unit_test(t_other_developer_key),
        cmocka_unit_test(t_kid_forged_to_pinned),
        cmocka_unit_test(t_payload_key_id_mismatch),
        cmocka_unit_test(t_developer_id_mismatch),
        cmocka_unit_test(t_unknown_field),
        cmocka_unit_test(t_non_canonical),
        cmocka_unit_test(t_oversize_and_malformed),
        cmocka_unit_test(t_sign_rejects_bad_fields),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
