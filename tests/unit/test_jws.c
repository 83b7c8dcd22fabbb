/*
 * Unit tests for JWS/JWT with Ed25519 (core/src/jws.c): round trip, the
 * key set, and every refusal the verifier promises.  Hostile tokens are
 * forged here byte by byte (and correctly signed where the point is that
 * the signature is not what saves us).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/jws.h"
#include "luna_test.h"

#define NOW 1700000000LL

static const uint8_t seed_a[LUNA_ED25519_SEED_LEN] = {
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static const uint8_t seed_b[LUNA_ED25519_SEED_LEN] = {
    0x4c, 0xcd, 0x08, 0x9b, 0x28, 0xff, 0x96, 0xda, 0x9d, 0xb6, 0xc3, 0x46, 0xec, 0x11, 0x4e, 0x0f,
    0x5b, 0x8a, 0x31, 0x9f, 0x35, 0xab, 0xa6, 0x24, 0xda, 0x8c, 0xf6, 0xed, 0x4f, 0xb8, 0xa6, 0xfb};

static luna_jws_keyset *g_ks; /* "k1" = seed_a, "k2" = seed_b */
static uint8_t g_pk_a[LUNA_ED25519_PUB_LEN];

static const char good_header[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
static const char good_claims[] =
    "{\"iss\":\"https://iam.lunal\",\"sub\":\"tenant-7\",\"aud\":\"gateway\","
    "\"iat\":1700000000,\"exp\":1700000600}";

static char *b64(const void *data, size_t n)
{
    char *out = malloc(LUNA_B64URL_ENC_LEN(n));
    assert_non_null(out);
    assert_luna_ok(luna_b64url_encode(data, n, out, LUNA_B64URL_ENC_LEN(n)));
    return out;
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s.%s.%s", a, b, c);
    return out;
}

/* A token with the given header and claims JSON, really signed with seed. */
static char *forge(const uint8_t *seed, const char *hjson, const char *pjson)
{
    uint8_t sig[LUNA_ED25519_SIG_LEN];
    char *h = b64(hjson, strlen(hjson));
    char *p = b64(pjson, strlen(pjson));
    char *input = join3(h, p, "");
    input[strlen(input) - 1] = '\0'; /* drop the third dot: h.p */
    assert_luna_ok(luna_ed25519_sign(seed, (const uint8_t *)input, strlen(input), sig));
    char *s = b64(sig, sizeof(sig));
    char *tok = join3(h, p, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return tok;
}

/*
 * The verifier these helpers stand for is the gateway: tokens carrying
 * "aud" are minted for it (RFC 7519 4.1.3 refuses them to a verifier that
 * names no audience), tokens without "aud" are checked without one.
 */
static const char *audience_for(const char *tok, size_t len)
{
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    static uint8_t payload[16384];
    size_t n = 0;
    if (d2 == NULL || luna_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload,
                                         sizeof(payload) - 1, &n) != LUNA_OK)
        return NULL;
    payload[n] = 0;
    return strstr((const char *)payload, "\"aud\"") != NULL ? "gateway" : NULL;
}

static luna_err verify_at(const luna_jws_keyset *ks, const char *tok, size_t len, int64_t now,
                          uint32_t skew)
{
    luna_jws_verify_opts o;
    json_t *claims = (json_t *)&o; /* must be reset to NULL on failure */
    luna_jws_verify_opts_init(&o);
    o.now = now;
    o.skew = skew;
    o.audience = audience_for(tok, len);
    o.audience_any_of = true; /* the vectors use RFC 7519's array form */
    luna_err err = luna_jws_verify(ks, tok, len, &o, &claims, NULL);
    if (err == LUNA_OK) {
        assert_true(json_is_object(claims));
        json_decref(claims);
    } else {
        assert_null(claims);
    }
    return err;
}

static luna_err verify_tok(const char *tok)
{
    return verify_at(g_ks, tok, strlen(tok), NOW, LUNA_JWS_DEFAULT_SKEW);
}

/* Forges and verifies (with key seed_a) in one go, freeing the token. */
static luna_err forged(const char *hjson, const char *pjson)
{
    char *tok = forge(seed_a, hjson, pjson);
    luna_err err = verify_tok(tok);
    free(tok);
    return err;
}

static int setup(void **state)
{
    (void)state;
    uint8_t pk_b[LUNA_ED25519_PUB_LEN];
    if (luna_jws_keyset_new(&g_ks) != LUNA_OK || luna_ed25519_public(seed_a, g_pk_a) != LUNA_OK ||
        luna_ed25519_public(seed_b, pk_b) != LUNA_OK ||
        luna_jws_keyset_add(g_ks, "k1", g_pk_a) != LUNA_OK ||
        luna_jws_keyset_add(g_ks, "k2", pk_b) != LUNA_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    luna_jws_keyset_free(g_ks);
    return 0;
}

/* ---- round trip ---- */

static void sign_verify_round_trip(void **state)
{
    (void)state;
    luna_jws_signer *s;
    luna_jws_keyset *ks;
    char *tok;
    size_t len;
    char kid[LUNA_JWS_MAX_KID_LEN + 1];
    json_t *claims = json_pack("{s:s,s:s,s:[s,s],s:I,s:I,s:{s:i}}", "iss", "https://iam.lunal",
                               "sub", "tenant-7", "aud", "kms", "gateway", "iat",
                               (json_int_t)NOW, "exp", (json_int_t)(NOW + 300), "ext", "n", 5);
    json_t *out = NULL;
    luna_jws_verify_opts o;

    assert_non_null(claims);
    assert_luna_ok(luna_jws_signer_generate("issuer-2026-11", &s));
    assert_string_equal("issuer-2026-11", luna_jws_signer_kid(s));
    assert_luna_ok(luna_jws_keyset_new(&ks));
    assert_luna_ok(luna_jws_signer_publish(s, ks));
    assert_luna_ok(luna_jws_sign(s, claims, &tok, &len));
    assert_int_equal(strlen(tok), len);

    /* The header is exactly the documented one. */
    const char *dot = strchr(tok, '.');
    assert_non_null(dot);
    uint8_t hdr[256];
    size_t hdr_len;
    assert_luna_ok(luna_b64url_decode(tok, (size_t)(dot - tok), hdr, sizeof(hdr), &hdr_len));
    const char want[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"issuer-2026-11\"}";
    assert_int_equal(strlen(want), hdr_len);
    assert_memory_equal(want, hdr, hdr_len);

    luna_jws_verify_opts_init(&o);
    assert_int_equal(LUNA_JWS_DEFAULT_SKEW, o.skew);
    o.now = NOW + 10;
    o.issuer = "https://iam.lunal";
    o.audience = "gateway";
    o.audience_any_of = true; /* the claims name ["kms","gateway"] */
    assert_luna_ok(luna_jws_verify(ks, tok, len, &o, &out, kid));
    assert_string_equal("issuer-2026-11", kid);
    assert_true(json_equal(claims, out));
    json_decref(out);

    /* Defaults (system clock): this token is long expired. */
    assert_luna_err(LUNA_ERR_EXPIRED, luna_jws_verify(ks, tok, len, NULL, &out, NULL));
    assert_null(out);

    /* A token is not valid under a set that lacks its key. */
    assert_luna_err(LUNA_ERR_NOT_FOUND, verify_at(g_ks, tok, len, NOW, 60));

    free(tok);
    json_decref(claims);
    luna_jws_keyset_free(ks);
    luna_jws_signer_free(s);
}

static void signer_known_key(void **state)
{
    (void)state;
    luna_jws_signer *s;
    uint8_t pk[LUNA_ED25519_PUB_LEN];
    char *tok;
    json_t *claims = json_pack("{s:I}", "exp", (json_int_t)(NOW + 1));
    assert_luna_ok(luna_jws_signer_new(seed_a, "k1", &s));
    luna_jws_signer_public(s, pk);
    assert_memory_equal(g_pk_a, pk, sizeof(pk));
    assert_luna_ok(luna_jws_sign(s, claims, &tok, NULL));
    assert_luna_ok(verify_tok(tok));
    /* Ed25519 is deterministic: the same input gives the same token. */
    char *again = forge(seed_a, good_header, "{\"exp\":1700000001}");
    assert_string_equal(again, tok);
    free(again);
    free(tok);
    json_decref(claims);
    luna_jws_signer_free(s);
}

static void sign_refusals(void **state)
{
    (void)state;
    luna_jws_signer *s;
    char *tok = (char *)"sentinel";
    json_t *c;
    assert_luna_ok(luna_jws_signer_new(seed_a, "k1", &s));

    c = json_pack("{s:s}", "sub", "x"); /* no exp */
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_sign(s, c, &tok, NULL));
    assert_null(tok);
    json_decref(c);
    c = json_pack("{s:f}", "exp", 1.5); /* exp not an integer */
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_sign(s, c, &tok, NULL));
    json_decref(c);
    c = json_pack("{s:I,s:s}", "exp", (json_int_t)NOW, "nbf", "soon");
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_sign(s, c, &tok, NULL));
    json_decref(c);
    c = json_pack("{s:I,s:s%}", "exp", (json_int_t)NOW, "sub", "a\0b", (size_t)3);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_sign(s, c, &tok, NULL));
    json_decref(c);
    c = json_pack("[i]", 1); /* not an object */
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_sign(s, c, &tok, NULL));
    json_decref(c);

    /* Too big for the verifier's caps: refused at issue time. */
    char *big = malloc(LUNA_JWS_MAX_TOKEN_LEN);
    assert_non_null(big);
    memset(big, 'a', LUNA_JWS_MAX_TOKEN_LEN - 1);
    big[LUNA_JWS_MAX_TOKEN_LEN - 1] = '\0';
    c = json_pack("{s:I,s:s}", "exp", (json_int_t)NOW, "blob", big);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_jws_sign(s, c, &tok, NULL));
    json_decref(c);
    /* The largest claims that fit still verify. */
    size_t fits = 0;
    for (size_t n = 4000; n < 6000; n += 50) {
        big[n] = '\0';
        c = json_pack("{s:I,s:s}", "exp", (json_int_t)(NOW + 5), "blob", big);
        big[n] = 'a';
        luna_err err = luna_jws_sign(s, c, &tok, NULL);
        json_decref(c);
        if (err == LUNA_ERR_TOO_LARGE)
            break;
        assert_luna_ok(err);
        assert_luna_ok(verify_tok(tok));
        free(tok);
        fits = n;
    }
    assert_true(fits >= 4000);
    free(big);

    luna_jws_signer_free(s);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_signer_new(seed_a, "", &s));
    assert_null(s);
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_signer_new(seed_a, "has space", &s));
    luna_jws_signer_free(s);
}

/* ---- algorithm pinning ---- */

static void refuses_alg_none(void **state)
{
    (void)state;
    const char hjson[] = "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
    char *h = b64(hjson, strlen(hjson));
    char *p = b64(good_claims, strlen(good_claims));
    char *tok = join3(h, p, ""); /* the classic unsigned token */
    assert_luna_err(LUNA_ERR_VERIFY, verify_tok(tok));
    free(tok);
    /* ... and with a valid EdDSA signature over it: alg still decides. */
    assert_luna_err(LUNA_ERR_VERIFY, forged(hjson, good_claims));
    assert_luna_err(LUNA_ERR_VERIFY, forged("{\"alg\":\"None\",\"kid\":\"k1\"}", good_claims));
    free(h);
    free(p);
}

static void refuses_hs256_with_public_key(void **state)
{
    (void)state;
    const char hjson[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
    char *h = b64(hjson, strlen(hjson));
    char *p = b64(good_claims, strlen(good_claims));
    char *input = join3(h, p, "");
    input[strlen(input) - 1] = '\0';
    uint8_t mac[LUNA_SHA256_LEN];
    char *jwks = NULL;
    assert_luna_ok(luna_jws_keyset_export(g_ks, &jwks, NULL));

    /* The public key as raw bytes, and as the published JWKS text. */
    const struct {
        const void *key;
        size_t len;
    } secrets[] = {{g_pk_a, sizeof(g_pk_a)}, {jwks, strlen(jwks)}};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        assert_luna_ok(luna_hmac(LUNA_HASH_SHA256, secrets[i].key, secrets[i].len,
                                 (const uint8_t *)input, strlen(input), mac));
        char *s = b64(mac, sizeof(mac));
        char *tok = join3(h, p, s);
        assert_luna_err(LUNA_ERR_VERIFY, verify_tok(tok));
        free(tok);
        free(s);
    }
    free(jwks);
    free(input);
    free(h);
    free(p);
}

static void refuses_other_algs(void **state)
{
    (void)state;
    static const char *const algs[] = {"HS256", "HS512", "RS256", "PS256", "ES256", "ES256K",
                                       "Ed25519", "eddsa", "EDDSA", "EdDSA ", " EdDSA", "EdDSA\\u0001",
                                       ""};
    char hjson[128];
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        snprintf(hjson, sizeof(hjson), "{\"alg\":\"%s\",\"kid\":\"k1\"}", algs[i]);
        assert_luna_err(LUNA_ERR_VERIFY, forged(hjson, good_claims));
    }
    /* No alg, or not a string: malformed. */
    assert_luna_err(LUNA_ERR_FORMAT, forged("{\"kid\":\"k1\"}", good_claims));
    assert_luna_err(LUNA_ERR_FORMAT, forged("{\"alg\":[\"EdDSA\"],\"kid\":\"k1\"}", good_claims));
    assert_luna_err(LUNA_ERR_FORMAT, forged("{\"alg\":null,\"kid\":\"k1\"}", good_claims));
    /* Duplicate alg: the parser refuses rather than picking one. */
    assert_luna_err(LUNA_ERR_FORMAT,
                    forged("{\"alg\":\"EdDSA\",\"alg\":\"none\",\"kid\":\"k1\"}", good_claims));
    assert_luna_err(LUNA_ERR_FORMAT,
                    forged("{\"alg\":\"none\",\"alg\":\"EdDSA\",\"kid\":\"k1\"}", good_claims));
}

/* ---- kid and header members ---- */

static void kid_rules(void **state)
{
    (void)state;
    assert_luna_ok(forged(good_header, good_claims));
    assert_luna_err(LUNA_ERR_FORMAT, forged("{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", good_claims));
    assert_luna_err(LUNA_ERR_FORMAT, forged("{\"alg\":\"EdDSA\",\"kid\":1}", good_claims));
    assert_luna_err(LUNA_ERR_FORMAT, forged("{\"alg\":\"EdDSA\",\"kid\":\"k1\\u0000\"}",
                                            good_claims));
    assert_luna_err(LUNA_ERR_NOT_FOUND, forged("{\"alg\":\"EdDSA\",\"kid\":\"k3\"}", good_claims));
    assert_luna_err(LUNA_ERR_NOT_FOUND, forged("{\"alg\":\"EdDSA\",\"kid\":\"K1\"}", good_claims));
    assert_luna_err(LUNA_ERR_NOT_FOUND, forged("{\"alg\":\"EdDSA\",\"kid\":\"\"}", good_claims));
    assert_luna_err(LUNA_ERR_NOT_FOUND, forged("{\"alg\":\"EdDSA\",\"kid\":\"k1 \"}", good_claims));
    /* Signed by seed_a but naming k2: the named key decides, and fails. */
    char *tok = forge(seed_a, "{\"alg\":\"EdDSA\",\"kid\":\"k2\"}", good_claims);
    assert_luna_err(LUNA_ERR_VERIFY, verify_tok(tok));
    free(tok);
    tok = forge(seed_b, "{\"alg\":\"EdDSA\",\"kid\":\"k2\"}", good_claims);
    assert_luna_ok(verify_tok(tok));
    free(tok);
}

static void refuses_key_source_and_crit(void **state)
{
    (void)state;
    static const char *const members[] = {
        "\"jku\":\"https://evil.example/jwks\"",
        "\"jwk\":{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
        "\"x5u\":\"https://evil.example/cert\"",
        "\"x5c\":[\"MIIB\"]",
        "\"crit\":[\"exp\"]",
        "\"crit\":[]",
        "\"b64\":false",
        "\"b64\":true",
        "\"typ\":\"JOSE\"",
        "\"typ\":\"at+jwt\"",
        "\"typ\":1",
    };
    char hjson[256];
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        snprintf(hjson, sizeof(hjson), "{\"alg\":\"EdDSA\",\"kid\":\"k1\",%s}", members[i]);
        assert_luna_err(LUNA_ERR_FORMAT, forged(hjson, good_claims));
    }
    /* Harmless members are ignored; typ compares case-insensitively. */
    assert_luna_ok(forged("{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"typ\":\"jwt\",\"x5t\":\"abc\"}",
                          good_claims));
    assert_luna_ok(forged("{\"alg\":\"EdDSA\",\"kid\":\"k1\"}", good_claims));
}

/* ---- time ---- */

static void time_checks_and_skew_boundary(void **state)
{
    (void)state;
    char claims[128];
    char *tok;

    /* exp = NOW + 600 with skew 60: valid until NOW + 659 included. */
    tok = forge(seed_a, good_header, good_claims);
    size_t len = strlen(tok);
    assert_luna_ok(verify_at(g_ks, tok, len, NOW + 659, 60));
    assert_luna_err(LUNA_ERR_EXPIRED, verify_at(g_ks, tok, len, NOW + 660, 60));
    assert_luna_ok(verify_at(g_ks, tok, len, NOW + 599, 0));
    assert_luna_err(LUNA_ERR_EXPIRED, verify_at(g_ks, tok, len, NOW + 600, 0));
    /* iat = NOW: a verifier 61 s behind refuses, 60 s behind accepts. */
    assert_luna_ok(verify_at(g_ks, tok, len, NOW - 60, 60));
    assert_luna_err(LUNA_ERR_EXPIRED, verify_at(g_ks, tok, len, NOW - 61, 60));
    assert_luna_ok(verify_at(g_ks, tok, len, NOW + 659, LUNA_JWS_MAX_SKEW));
    assert_luna_err(LUNA_ERR_INVALID_ARG, verify_at(g_ks, tok, len, NOW, LUNA_JWS_MAX_SKEW + 1));
    assert_luna_err(LUNA_ERR_INVALID_ARG, verify_at(g_ks, tok, len, -5, 60));
    assert_luna_err(LUNA_ERR_INVALID_ARG, verify_at(g_ks, tok, len, INT64_MAX, 60));
    free(tok);

    /* nbf in the future, at and past the skew. */
    snprintf(claims, sizeof(claims), "{\"nbf\":%lld,\"exp\":%lld}", NOW + 60, NOW + 600);
    assert_luna_ok(forged(good_header, claims));
    snprintf(claims, sizeof(claims), "{\"nbf\":%lld,\"exp\":%lld}", NOW + 61, NOW + 600);
    assert_luna_err(LUNA_ERR_EXPIRED, forged(good_header, claims));
    /* Expired, at the boundary and long ago. */
    snprintf(claims, sizeof(claims), "{\"exp\":%lld}", NOW - 59);
    assert_luna_ok(forged(good_header, claims));
    snprintf(claims, sizeof(claims), "{\"exp\":%lld}", NOW - 60);
    assert_luna_err(LUNA_ERR_EXPIRED, forged(good_header, claims));
    assert_luna_err(LUNA_ERR_EXPIRED, forged(good_header, "{\"exp\":0}"));
    assert_luna_err(LUNA_ERR_EXPIRED, forged(good_header, "{\"exp\":-9223372036854775808}"));
    /* Far-future values do not overflow anything. */
    assert_luna_ok(forged(good_header, "{\"exp\":9223372036854775807}"));
    assert_luna_err(LUNA_ERR_EXPIRED,
                    forged(good_header, "{\"exp\":9223372036854775807,\"iat\":9223372036854775807}"));
    assert_luna_err(LUNA_ERR_EXPIRED,
                    forged(good_header, "{\"exp\":9223372036854775807,\"nbf\":9223372036854775807}"));
    /* exp required and an integer; nbf/iat integers. */
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"sub\":\"x\"}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":\"1700000600\"}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600.0}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1e10}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":99999999999999999999}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600,\"nbf\":null}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600,\"iat\":true}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600,\"exp\":1}"));
}

static void issuer_and_audience(void **state)
{
    (void)state;
    luna_jws_verify_opts o;
    json_t *c = NULL;
    char *tok = forge(seed_a, good_header, good_claims);
    size_t len = strlen(tok);
    luna_jws_verify_opts_init(&o);
    o.now = NOW;

    o.issuer = "https://iam.lunal";
    o.audience = "gateway";
    assert_luna_ok(luna_jws_verify(g_ks, tok, len, &o, &c, NULL));
    json_decref(c);
    o.issuer = "https://iam.lunal/";
    assert_luna_err(LUNA_ERR_VERIFY, luna_jws_verify(g_ks, tok, len, &o, &c, NULL));
    o.issuer = NULL;
    o.audience = "kms";
    assert_luna_err(LUNA_ERR_VERIFY, luna_jws_verify(g_ks, tok, len, &o, &c, NULL));
    assert_null(c);
    /* RFC 7519 4.1.3: a present "aud" refuses a verifier that names no
       audience (a token minted for another service). */
    o.audience = NULL;
    assert_luna_err(LUNA_ERR_VERIFY, luna_jws_verify(g_ks, tok, len, &o, &c, NULL));
    assert_null(c);
    free(tok);

    /* Missing when configured: refused. */
    tok = forge(seed_a, good_header, "{\"exp\":1700000600}");
    len = strlen(tok);
    o.audience = "gateway";
    assert_luna_err(LUNA_ERR_VERIFY, luna_jws_verify(g_ks, tok, len, &o, &c, NULL));
    o.audience = NULL;
    o.issuer = "https://iam.lunal";
    assert_luna_err(LUNA_ERR_VERIFY, luna_jws_verify(g_ks, tok, len, &o, &c, NULL));
    free(tok);

    /* aud as an array. */
    tok = forge(seed_a, good_header, "{\"exp\":1700000600,\"aud\":[\"kms\",\"gateway\"]}");
    len = strlen(tok);
    o.issuer = NULL;
    o.audience = "gateway";
    /* By default a token names one audience: an array is refused even
       when it contains the verifier (a token valid at two services). */
    assert_luna_err(LUNA_ERR_VERIFY, luna_jws_verify(g_ks, tok, len, &o, &c, NULL));
    assert_null(c);
    o.audience_any_of = true;
    assert_luna_ok(luna_jws_verify(g_ks, tok, len, &o, &c, NULL));
    json_decref(c);
    o.audience = "gate";
    assert_luna_err(LUNA_ERR_VERIFY, luna_jws_verify(g_ks, tok, len, &o, &c, NULL));
    free(tok);

    /* Wrong types are malformed, checked or not. */
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600,\"aud\":[1]}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600,\"aud\":{}}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600,\"iss\":7}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600,\"sub\":[]}"));
    assert_luna_err(LUNA_ERR_FORMAT,
                    forged(good_header, "{\"exp\":1700000600,\"sub\":\"a\\u0000b\"}"));
    assert_luna_err(LUNA_ERR_FORMAT,
                    forged(good_header, "{\"exp\":1700000600,\"x\":{\"a\\u0000\":1}}"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "[{\"exp\":1700000600}]"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600} x"));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "{\"exp\":1700000600,\"s\":\"\xff\"}"));
}

/* ---- tampering and structure ---- */

static void tampering(void **state)
{
    (void)state;
    char *tok = forge(seed_a, good_header, good_claims);
    char *dot1 = strchr(tok, '.');
    char *dot2 = strrchr(tok, '.');
    size_t len = strlen(tok);
    assert_luna_ok(verify_tok(tok));

    /* Every bit of the signature matters (flipping a bit of a middle
       character; the last one carries non-canonical bits, tested below). */
    for (char *c = dot2 + 1; c < tok + len - 1; c++) {
        char keep = *c;
        *c = keep == 'A' ? 'B' : 'A';
        assert_luna_err(LUNA_ERR_VERIFY, verify_tok(tok));
        *c = keep;
    }
    /* Payload: swap in other claims, same header and signature. */
    const char evil[] = "{\"iss\":\"https://iam.lunal\",\"sub\":\"tenant-1\",\"aud\":\"gateway\","
                        "\"iat\":1700000000,\"exp\":1700000600}";
    char *p = b64(evil, strlen(evil));
    char *h = strndup(tok, (size_t)(dot1 - tok));
    char *t2 = join3(h, p, dot2 + 1);
    assert_luna_err(LUNA_ERR_VERIFY, verify_tok(t2));
    free(t2);
    free(p);
    /* Header: a different (still acceptable) header, same payload and sig. */
    const char hjson[] = "{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"typ\":\"JWT\"}";
    char *h2 = b64(hjson, strlen(hjson));
    char *pl = strndup(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    t2 = join3(h2, pl, dot2 + 1);
    assert_luna_err(LUNA_ERR_VERIFY, verify_tok(t2));
    free(t2);
    free(h2);
    /* Payload byte changed in place. */
    dot1[1] = dot1[1] == 'e' ? 'f' : 'e';
    assert_luna_err(LUNA_ERR_VERIFY, verify_tok(tok));
    dot1[1] = pl[0];
    assert_luna_ok(verify_tok(tok));
    /* Non-canonical last character of the signature: 64 bytes leave 4
       unused low bits in it, which a canonical encoder sets to zero
       (so it is one of A Q g w, and the next character sets a bit). */
    char keep = tok[len - 1];
    assert_non_null(strchr("AQgw", keep));
    tok[len - 1] = (char)(keep + 1);
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(tok));
    tok[len - 1] = keep;
    assert_luna_ok(verify_tok(tok));
    free(pl);
    free(h);
    free(tok);
}

static void structure(void **state)
{
    (void)state;
    char *tok = forge(seed_a, good_header, good_claims);
    size_t len = strlen(tok);
    char *buf = malloc(len + 16);
    assert_non_null(buf);
    char *dot2 = strrchr(tok, '.');
    size_t sig_off = (size_t)(dot2 - tok) + 1;

    /* Extra dots, anywhere. */
    snprintf(buf, len + 16, "%s.", tok);
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(buf));
    snprintf(buf, len + 16, ".%s", tok);
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(buf));
    snprintf(buf, len + 16, "%s.%s", tok, dot2 + 1);
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(buf));
    /* Two parts only. */
    memcpy(buf, tok, sig_off - 1);
    buf[sig_off - 1] = '\0';
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(buf));
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(""));
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(".."));
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok("a.b.c"));
    /* Empty signature, short, long. */
    memcpy(buf, tok, sig_off);
    buf[sig_off] = '\0';
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(buf));
    snprintf(buf, len + 16, "%sAAAA", tok);
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(buf));
    memcpy(buf, tok, len - 4);
    buf[len - 4] = '\0';
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(buf));

    /* Padding (and other non-base64url bytes) in each part. */
    snprintf(buf, len + 16, "%s==", tok);
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(buf));
    const char *hj = good_header; /* 38 bytes: its encoding would pad "==" */
    assert_int_equal(2, strlen(hj) % 3);
    char *h = b64(hj, strlen(hj));
    snprintf(buf, len + 16, "%s=%s", h, strchr(tok, '.'));
    assert_luna_err(LUNA_ERR_FORMAT, verify_tok(buf));
    free(h);
    static const char bad_chars[] = {'+', '/', ' ', '\n', '\0', '=', '\x80'};
    for (size_t pos = 0; pos < len; pos += 7) {
        if (tok[pos] == '.')
            continue;
        memcpy(buf, tok, len + 1);
        for (size_t i = 0; i < sizeof(bad_chars); i++) {
            buf[pos] = bad_chars[i];
            if (verify_at(g_ks, buf, len, NOW, 60) != LUNA_ERR_FORMAT)
                fail_msg("char 0x%02x at %zu accepted", (unsigned char)bad_chars[i], pos);
        }
    }
    /* The token length is taken from the caller, never from a NUL. */
    assert_luna_err(LUNA_ERR_FORMAT, verify_at(g_ks, tok, len - 1, NOW, 60));
    assert_luna_ok(verify_at(g_ks, tok, len, NOW, 60));
    /* Header or payload that is not JSON, or not an object. */
    assert_luna_err(LUNA_ERR_FORMAT, forged("not json", good_claims));
    assert_luna_err(LUNA_ERR_FORMAT, forged("[\"EdDSA\"]", good_claims));
    assert_luna_err(LUNA_ERR_FORMAT, forged("\"EdDSA\"", good_claims));
    assert_luna_err(LUNA_ERR_FORMAT, forged(good_header, "not json"));
    free(buf);
    free(tok);
}

static void size_caps(void **state)
{
    (void)state;
    /* Whole token over the cap, whatever it holds. */
    char *huge = malloc(LUNA_JWS_MAX_TOKEN_LEN + 2);
    assert_non_null(huge);
    memset(huge, 'A', LUNA_JWS_MAX_TOKEN_LEN + 1);
    huge[10] = '.';
    huge[20] = '.';
    huge[LUNA_JWS_MAX_TOKEN_LEN + 1] = '\0';
    assert_luna_err(LUNA_ERR_TOO_LARGE, verify_tok(huge));
    assert_luna_err(LUNA_ERR_TOO_LARGE, verify_at(g_ks, huge, SIZE_MAX, NOW, 60));
    free(huge);

    /* Header over its cap, token under: refused before any JSON work. */
    char hjson[1200];
    snprintf(hjson, sizeof(hjson), "{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"pad\":\"%0800d\"}", 0);
    assert_luna_err(LUNA_ERR_TOO_LARGE, forged(hjson, good_claims));
    /* Payload over its cap. */
    size_t plen = LUNA_JWS_MAX_PAYLOAD_B64_LEN * 3 / 4 + 2; /* encodes to 7003 chars */
    char *pjson = malloc(plen + 1);
    assert_non_null(pjson);
    int n = snprintf(pjson, plen + 1, "{\"exp\":1700000600,\"pad\":\"");
    memset(pjson + n, 'x', plen - (size_t)n);
    memcpy(pjson + plen - 2, "\"}", 3);
    assert_luna_err(LUNA_ERR_TOO_LARGE, forged(good_header, pjson));
    /* One byte less would fit the payload cap. */
    memcpy(pjson + plen - 4, "\"}", 3);
    assert_luna_ok(forged(good_header, pjson));
    free(pjson);
    /* Deep nesting inside the size cap: parsed up to jansson's depth
       limit (JSON_PARSER_MAX_DEPTH), refused past it, never a crash. */
    static char deep[6000];
    const int depths[] = {1000, JSON_PARSER_MAX_DEPTH + 50};
    for (size_t d = 0; d < 2; d++) {
        size_t off = (size_t)snprintf(deep, sizeof(deep), "{\"exp\":1700000600,\"d\":");
        for (int i = 0; i < depths[d]; i++)
            deep[off++] = '[';
        for (int i = 0; i < depths[d]; i++)
            deep[off++] = ']';
        deep[off++] = '}';
        deep[off] = '\0';
        assert_luna_err(d == 0 ? LUNA_OK : LUNA_ERR_FORMAT, forged(good_header, deep));
    }
}

/* ---- key set ---- */

static void keyset_rules(void **state)
{
    (void)state;
    luna_jws_keyset *ks;
    uint8_t pk[LUNA_ED25519_PUB_LEN] = {0};
    char kid[8];
    assert_luna_ok(luna_jws_keyset_new(&ks));
    assert_luna_ok(luna_jws_keyset_add(ks, "a", g_pk_a));
    assert_luna_err(LUNA_ERR_CONFLICT, luna_jws_keyset_add(ks, "a", pk));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_keyset_add(ks, "", pk));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_keyset_add(ks, "tab\there", pk));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_keyset_add(ks, "caf\xc3\xa9", pk));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_keyset_add(ks, NULL, pk));
    char longkid[LUNA_JWS_MAX_KID_LEN + 2];
    memset(longkid, 'k', sizeof(longkid) - 1);
    longkid[sizeof(longkid) - 1] = '\0';
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_keyset_add(ks, longkid, pk));
    longkid[LUNA_JWS_MAX_KID_LEN] = '\0';
    assert_luna_ok(luna_jws_keyset_add(ks, longkid, pk));
    for (unsigned i = 2; i < LUNA_JWS_MAX_KEYS; i++) {
        snprintf(kid, sizeof(kid), "n%u", i);
        assert_luna_ok(luna_jws_keyset_add(ks, kid, pk));
    }
    assert_int_equal(LUNA_JWS_MAX_KEYS, luna_jws_keyset_count(ks));
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_jws_keyset_add(ks, "one-more", pk));
    assert_luna_ok(luna_jws_keyset_remove(ks, "n5"));
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_jws_keyset_remove(ks, "n5"));
    assert_luna_err(LUNA_ERR_NOT_FOUND, luna_jws_keyset_find(ks, "n5", pk));
    assert_luna_ok(luna_jws_keyset_find(ks, "a", pk));
    assert_memory_equal(g_pk_a, pk, sizeof(pk));
    assert_int_equal(LUNA_JWS_MAX_KEYS - 1, luna_jws_keyset_count(ks));

    /* Export then load gives the same set, in the same order. */
    char *doc, *doc2;
    size_t doc_len;
    luna_jws_keyset *back;
    assert_luna_ok(luna_jws_keyset_export(ks, &doc, &doc_len));
    assert_int_equal(strlen(doc), doc_len);
    assert_luna_ok(luna_jws_keyset_load(doc, doc_len, &back));
    assert_int_equal(luna_jws_keyset_count(ks), luna_jws_keyset_count(back));
    assert_luna_ok(luna_jws_keyset_export(back, &doc2, NULL));
    assert_string_equal(doc, doc2);
    free(doc);
    free(doc2);
    luna_jws_keyset_free(back);
    luna_jws_keyset_free(ks);
    luna_jws_keyset_free(NULL);

    /* The exact published form of one key (RFC 8037 A.2 public key). */
    assert_luna_ok(luna_jws_keyset_new(&ks));
    assert_luna_ok(luna_jws_keyset_add(ks, "k1", g_pk_a));
    assert_luna_ok(luna_jws_keyset_export(ks, &doc, NULL));
    assert_string_equal("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                        "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\",\"kid\":\"k1\","
                        "\"alg\":\"EdDSA\",\"use\":\"sig\"}]}",
                        doc);
    free(doc);
    assert_luna_ok(luna_jws_keyset_remove(ks, "k1"));
    assert_luna_ok(luna_jws_keyset_export(ks, &doc, NULL));
    assert_string_equal("{\"keys\":[]}", doc);
    free(doc);
    luna_jws_keyset_free(ks);
}

static void keyset_load_refusals(void **state)
{
    (void)state;
#define X "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\""
#define K(body) "{\"keys\":[{" body "}]}"
    static const struct {
        const char *doc;
        luna_err want;
    } cases[] = {
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\""), LUNA_OK},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\",\"alg\":\"EdDSA\","
           "\"use\":\"sig\",\"key_ops\":[\"verify\"]"),
         LUNA_OK},
        {"{\"keys\":[]}", LUNA_ERR_FORMAT},
        {"{}", LUNA_ERR_FORMAT},
        {"[]", LUNA_ERR_FORMAT},
        {"{\"keys\":{}}", LUNA_ERR_FORMAT},
        {"{\"keys\":[1]}", LUNA_ERR_FORMAT},
        {"", LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X), LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"\""), LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a b\""), LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\\u0000\""), LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":7"), LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"X25519\"," X ",\"kid\":\"a\""), LUNA_ERR_FORMAT},
        {K("\"kty\":\"EC\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\""), LUNA_ERR_FORMAT},
        {K("\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"kid\":\"a\""), LUNA_ERR_FORMAT},
        {K("\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"a\""), LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\",\"alg\":\"HS256\""),
         LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\",\"use\":\"enc\""),
         LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\","
           "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\""),
         LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\","
           "\"kid\":\"a\""),
         LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR\","
           "\"kid\":\"a\""),
         LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS+7TyWQHOg7hcvPapiMlrwIaaPcHURo\","
           "\"kid\":\"a\""),
         LUNA_ERR_FORMAT},
        {K("\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\",\"kid\":\"b\""),
         LUNA_ERR_FORMAT},
        {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\"},"
         "{\"kty\":\"OKP\",\"crv\":\"Ed25519\"," X ",\"kid\":\"a\"}]}",
         LUNA_ERR_CONFLICT},
    };
#undef K
#undef X
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        luna_jws_keyset *ks = (luna_jws_keyset *)&cases[i];
        luna_err err = luna_jws_keyset_load(cases[i].doc, strlen(cases[i].doc), &ks);
        if (err != cases[i].want)
            fail_msg("case %zu: got %s, want %s", i, luna_errname(err), luna_errname(cases[i].want));
        if (err == LUNA_OK)
            assert_int_equal(1, luna_jws_keyset_count(ks));
        else
            assert_null(ks);
        luna_jws_keyset_free(ks);
    }

    /* Over the key and the document caps. */
    size_t cap = LUNA_JWS_MAX_JWKS_LEN + 64;
    char *doc = malloc(cap);
    assert_non_null(doc);
    size_t off = (size_t)snprintf(doc, cap, "{\"keys\":[");
    for (unsigned i = 0; i <= LUNA_JWS_MAX_KEYS; i++)
        off += (size_t)snprintf(doc + off, cap - off,
                                "%s{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                                "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\",\"kid\":\"k%u\"}",
                                i ? "," : "", i);
    snprintf(doc + off, cap - off, "]}");
    luna_jws_keyset *ks;
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_jws_keyset_load(doc, strlen(doc), &ks));
    memset(doc, ' ', cap);
    assert_luna_err(LUNA_ERR_TOO_LARGE, luna_jws_keyset_load(doc, LUNA_JWS_MAX_JWKS_LEN + 1, &ks));
    free(doc);
}

static void rollover(void **state)
{
    (void)state;
    luna_jws_signer *old_s, *new_s;
    luna_jws_keyset *ks;
    json_t *c = json_pack("{s:I}", "exp", (json_int_t)(NOW + 100));
    char *t_old, *t_new, *doc;
    assert_luna_ok(luna_jws_signer_generate("2026-10", &old_s));
    assert_luna_ok(luna_jws_signer_generate("2026-11", &new_s));
    assert_luna_ok(luna_jws_keyset_new(&ks));
    assert_luna_ok(luna_jws_signer_publish(old_s, ks));
    assert_luna_ok(luna_jws_sign(old_s, c, &t_old, NULL));
    /* Phase 1: publish the new key next to the old one. */
    assert_luna_ok(luna_jws_signer_publish(new_s, ks));
    assert_luna_err(LUNA_ERR_CONFLICT, luna_jws_signer_publish(new_s, ks));
    assert_luna_ok(luna_jws_keyset_export(ks, &doc, NULL));
    luna_jws_keyset *pub;
    assert_luna_ok(luna_jws_keyset_load(doc, strlen(doc), &pub));
    free(doc);
    /* Phase 2: sign with the new key; both verify. */
    assert_luna_ok(luna_jws_sign(new_s, c, &t_new, NULL));
    assert_luna_ok(verify_at(pub, t_old, strlen(t_old), NOW, 60));
    assert_luna_ok(verify_at(pub, t_new, strlen(t_new), NOW, 60));
    /* Phase 3: retire the old key; its tokens stop verifying. */
    assert_luna_ok(luna_jws_keyset_remove(pub, "2026-10"));
    assert_luna_err(LUNA_ERR_NOT_FOUND, verify_at(pub, t_old, strlen(t_old), NOW, 60));
    assert_luna_ok(verify_at(pub, t_new, strlen(t_new), NOW, 60));
    free(t_old);
    free(t_new);
    json_decref(c);
    luna_jws_keyset_free(pub);
    luna_jws_keyset_free(ks);
    luna_jws_signer_free(old_s);
    luna_jws_signer_free(new_s);
}

static void bad_arguments(void **state)
{
    (void)state;
    json_t *c = NULL;
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_verify(NULL, "a.b.c", 5, NULL, &c, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_verify(g_ks, "a.b.c", 5, NULL, NULL, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_verify(g_ks, NULL, 5, NULL, &c, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_keyset_load(NULL, 0, NULL));
    assert_luna_err(LUNA_ERR_INVALID_ARG, luna_jws_keyset_new(NULL));
    assert_int_equal(0, luna_jws_keyset_count(NULL));
    luna_jws_signer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_verify_round_trip),
        cmocka_unit_test(signer_known_key),
        cmocka_unit_test(sign_refusals),
        cmocka_unit_test(refuses_alg_none),
        cmocka_unit_test(refuses_hs256_with_public_key),
        cmocka_unit_test(refuses_other_algs),
        cmocka_unit_test(kid_rules),
        cmocka_unit_test(refuses_key_source_and_crit),
        cmocka_unit_test(time_checks_and_skew_boundary),
        cmocka_unit_test(issuer_and_audience),
        cmocka_unit_test(tampering),
        cmocka_unit_test(structure),
        cmocka_unit_test(size_caps),
        cmocka_unit_test(keyset_rules),
        cmocka_unit_test(keyset_load_refusals),
        cmocka_unit_test(rollover),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
