/*
 * jws.c - JWS compact / JWT with Ed25519 (EdDSA): issuing, verifying and
 * the JWKS key set.  The format is written down in docs/tokens.md.
 *
 * Owns: splitting and decoding tokens, the header and claims rules, the
 * time checks, JWKS load/export.  Must never: let the token choose the
 * algorithm or the key source (only "EdDSA", only keys of the configured
 * set, found by "kid"); release claims before the signature verified;
 * parse anything past a named cap; log or keep a private key outside a
 * luna_secret.
 */
#include "luna/jws.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/secret.h"

/* Decoded sizes that follow from the encoded caps (base64url: 4 -> 3). */
#define JWS_HEADER_MAX ((LUNA_JWS_MAX_HEADER_B64_LEN / 4u) * 3u + 2u)
#define JWS_PAYLOAD_MAX ((LUNA_JWS_MAX_PAYLOAD_B64_LEN / 4u) * 3u + 2u)
#define JWS_X_B64_LEN 43u
/* Nesting the signer accepts in claims; verify relies on jansson's own
   limit and the size caps instead. */
#define JWS_CLAIMS_MAX_DEPTH 32u

static const char jws_alg[] = "EdDSA";

/* Header members naming a key source or changing processing: refused,
   never honoured (RFC 8725 section 3.10, RFC 7515 section 4.1.11). */
static const char *const jws_refused_header[] = {"jku", "jwk", "x5u", "x5c", "crit", "b64"};

struct jws_key {
    char kid[LUNA_JWS_MAX_KID_LEN + 1];
    size_t kid_len;
    uint8_t pk[LUNA_ED25519_PUB_LEN];
};

struct luna_jws_keyset {
    size_t count;
    struct jws_key keys[LUNA_JWS_MAX_KEYS];
};

struct luna_jws_signer {
    luna_secret *seed;
    char kid[LUNA_JWS_MAX_KID_LEN + 1];
    uint8_t pk[LUNA_ED25519_PUB_LEN];
};

/* ---- small helpers ---- */

static bool kid_valid(const char *kid, size_t len)
{
    if (len == 0 || len > LUNA_JWS_MAX_KID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)kid[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

/* strnlen without reading past the cap: the kid argument may be any C
   string from the caller. */
static luna_err kid_arg(const char *kid, size_t *len)
{
    size_t n = 0;
    if (kid == NULL)
        return LUNA_ERR_INVALID_ARG;
    while (n <= LUNA_JWS_MAX_KID_LEN && kid[n] != '\0')
        n++;
    if (!kid_valid(kid, n))
        return LUNA_ERR_INVALID_ARG;
    *len = n;
    return LUNA_OK;
}

static const struct jws_key *keyset_lookup(const luna_jws_keyset *ks, const char *kid,
                                           size_t len)
{
    for (size_t i = 0; i < ks->count; i++) {
        const struct jws_key *k = &ks->keys[i];
        /* kids are public: an ordinary compare is fine. */
        if (k->kid_len == len && memcmp(k->kid, kid, len) == 0)
            return k;
    }
    return NULL;
}

/* A JSON string without embedded NUL, as a C string, or NULL. */
static const char *json_cstr(const json_t *v, size_t *len)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (s == NULL || memchr(s, '\0', n) != NULL)
        return NULL;
    if (len != NULL)
        *len = n;
    return s;
}

static bool json_str_equal(const json_t *v, const char *want)
{
    size_t n;
    const char *s = json_cstr(v, &n);
    return s != NULL && n == strlen(want) && memcmp(s, want, n) == 0;
}

/* Parses exactly len bytes as one JSON object, duplicates refused.
   jansson already refuses \u0000 (no JSON_ALLOW_NUL), invalid UTF-8 and
   trailing bytes. */
static luna_err parse_object(const uint8_t *buf, size_t len, json_t **out)
{
    json_error_t jerr;
    json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL)
        return LUNA_ERR_FORMAT;
    if (!json_is_object(v)) {
        json_decref(v);
        return LUNA_ERR_FORMAT;
    }
    *out = v;
    return LUNA_OK;
}

/* ---- key set ---- */

luna_err luna_jws_keyset_new(luna_jws_keyset **out)
{
    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = calloc(1, sizeof(**out));
    return *out == NULL ? LUNA_ERR_NOMEM : LUNA_OK;
}

void luna_jws_keyset_free(luna_jws_keyset *ks)
{
    free(ks);
}

static luna_err keyset_add_n(luna_jws_keyset *ks, const char *kid, size_t kid_len,
                             const uint8_t pk[LUNA_ED25519_PUB_LEN])
{
    if (!kid_valid(kid, kid_len))
        return LUNA_ERR_INVALID_ARG;
    if (keyset_lookup(ks, kid, kid_len) != NULL)
        return LUNA_ERR_CONFLICT;
    if (ks->count >= LUNA_JWS_MAX_KEYS)
        return LUNA_ERR_TOO_LARGE;
    struct jws_key *k = &ks->keys[ks->count];
    memcpy(k->kid, kid, kid_len);
    k->kid[kid_len] = '\0';
    k->kid_len = kid_len;
    memcpy(k->pk, pk, LUNA_ED25519_PUB_LEN);
    ks->count++;
    return LUNA_OK;
}

luna_err luna_jws_keyset_add(luna_jws_keyset *ks, const char *kid,
                             const uint8_t pk[LUNA_ED25519_PUB_LEN])
{
    size_t len;
    LUNA_ENSURE(ks != NULL && pk != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(kid_arg(kid, &len));
    return keyset_add_n(ks, kid, len, pk);
}

luna_err luna_jws_keyset_remove(luna_jws_keyset *ks, const char *kid)
{
    size_t len;
    LUNA_ENSURE(ks != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(kid_arg(kid, &len));
    for (size_t i = 0; i < ks->count; i++) {
        if (ks->keys[i].kid_len == len && memcmp(ks->keys[i].kid, kid, len) == 0) {
            /* Keep insertion order: export order is what gets published. */
            memmove(&ks->keys[i], &ks->keys[i + 1], (ks->count - i - 1) * sizeof(ks->keys[0]));
            ks->count--;
            memset(&ks->keys[ks->count], 0, sizeof(ks->keys[0]));
            return LUNA_OK;
        }
    }
    return LUNA_ERR_NOT_FOUND;
}

size_t luna_jws_keyset_count(const luna_jws_keyset *ks)
{
    return ks == NULL ? 0 : ks->count;
}

luna_err luna_jws_keyset_find(const luna_jws_keyset *ks, const char *kid,
                              uint8_t pk[LUNA_ED25519_PUB_LEN])
{
    size_t len;
    LUNA_ENSURE(ks != NULL && pk != NULL, LUNA_ERR_INVALID_ARG);
    LUNA_GUARD(kid_arg(kid, &len));
    const struct jws_key *k = keyset_lookup(ks, kid, len);
    LUNA_ENSURE(k != NULL, LUNA_ERR_NOT_FOUND);
    memcpy(pk, k->pk, LUNA_ED25519_PUB_LEN);
    return LUNA_OK;
}

/* One JWK of a JWKS: Ed25519 public key only. */
static luna_err jwk_load_one(luna_jws_keyset *ks, const json_t *jwk)
{
    uint8_t pk[LUNA_ED25519_PUB_LEN];
    size_t x_len, kid_len, pk_len;
    const char *x, *kid;
    const json_t *v;

    LUNA_ENSURE(json_is_object(jwk), LUNA_ERR_FORMAT);
    LUNA_ENSURE(json_str_equal(json_object_get(jwk, "kty"), "OKP"), LUNA_ERR_FORMAT);
    LUNA_ENSURE(json_str_equal(json_object_get(jwk, "crv"), "Ed25519"), LUNA_ERR_FORMAT);
    /* A private key has no business in a set that gets published. */
    LUNA_ENSURE(json_object_get(jwk, "d") == NULL, LUNA_ERR_FORMAT);
    v = json_object_get(jwk, "alg");
    LUNA_ENSURE(v == NULL || json_str_equal(v, jws_alg), LUNA_ERR_FORMAT);
    v = json_object_get(jwk, "use");
    LUNA_ENSURE(v == NULL || json_str_equal(v, "sig"), LUNA_ERR_FORMAT);
    x = json_cstr(json_object_get(jwk, "x"), &x_len);
    LUNA_ENSURE(x != NULL && x_len == JWS_X_B64_LEN, LUNA_ERR_FORMAT);
    kid = json_cstr(json_object_get(jwk, "kid"), &kid_len);
    LUNA_ENSURE(kid != NULL && kid_valid(kid, kid_len), LUNA_ERR_FORMAT);
    if (luna_b64url_decode(x, x_len, pk, sizeof(pk), &pk_len) != LUNA_OK ||
        pk_len != sizeof(pk))
        return LUNA_ERR_FORMAT;
    return keyset_add_n(ks, kid, kid_len, pk);
}

luna_err luna_jws_keyset_load(const char *json, size_t len, luna_jws_keyset **out)
{
    luna_err err;
    luna_jws_keyset *ks = NULL;
    json_t *doc = NULL;
    const json_t *keys;

    LUNA_ENSURE(out != NULL && json != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_ENSURE(len <= LUNA_JWS_MAX_JWKS_LEN, LUNA_ERR_TOO_LARGE);
    LUNA_TRY(parse_object((const uint8_t *)json, len, &doc), out);
    keys = json_object_get(doc, "keys");
    LUNA_TRY_ENSURE(json_is_array(keys) && json_array_size(keys) > 0, LUNA_ERR_FORMAT, out);
    LUNA_TRY_ENSURE(json_array_size(keys) <= LUNA_JWS_MAX_KEYS, LUNA_ERR_TOO_LARGE, out);
    LUNA_TRY(luna_jws_keyset_new(&ks), out);
    for (size_t i = 0; i < json_array_size(keys); i++)
        LUNA_TRY(jwk_load_one(ks, json_array_get(keys, i)), out);
    *out = ks;
    ks = NULL;
out:
    luna_jws_keyset_free(ks);
    json_decref(doc);
    return err;
}

/* Copies a jansson-allocated string into malloc'd memory and frees it with
   jansson's allocator, so callers always release with free(). */
static luna_err take_json_string(char *s, char **out, size_t *out_len)
{
    json_free_t jfree = NULL;
    json_get_alloc_funcs(NULL, &jfree);
    if (s == NULL)
        return LUNA_ERR_NOMEM;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (copy != NULL)
        memcpy(copy, s, n + 1);
    jfree(s);
    if (copy == NULL)
        return LUNA_ERR_NOMEM;
    *out = copy;
    if (out_len != NULL)
        *out_len = n;
    return LUNA_OK;
}

luna_err luna_jws_keyset_export(const luna_jws_keyset *ks, char **out, size_t *out_len)
{
    luna_err err = LUNA_OK;
    json_t *doc = NULL, *keys;
    char x[LUNA_B64URL_ENC_LEN(LUNA_ED25519_PUB_LEN)];

    LUNA_ENSURE(ks != NULL && out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    keys = json_array();
    doc = json_pack("{s:o}", "keys", keys);
    LUNA_TRY_ENSURE(doc != NULL, LUNA_ERR_NOMEM, out);
    for (size_t i = 0; i < ks->count; i++) {
        const struct jws_key *k = &ks->keys[i];
        LUNA_TRY(luna_b64url_encode(k->pk, sizeof(k->pk), x, sizeof(x)), out);
        json_t *jwk = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed25519",
                                "x", x, "kid", k->kid, "alg", jws_alg, "use", "sig");
        LUNA_TRY_ENSURE(jwk != NULL && json_array_append_new(keys, jwk) == 0, LUNA_ERR_NOMEM,
                        out);
    }
    err = take_json_string(json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER), out, out_len);
out:
    json_decref(doc);
    return err;
}

/* ---- signer ---- */

luna_err luna_jws_signer_new(const uint8_t seed[LUNA_ED25519_SEED_LEN], const char *kid,
                             luna_jws_signer **out)
{
    luna_err err;
    size_t kid_len;
    luna_jws_signer *s = NULL;

    LUNA_ENSURE(seed != NULL && out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_GUARD(kid_arg(kid, &kid_len));
    s = calloc(1, sizeof(*s));
    LUNA_ENSURE(s != NULL, LUNA_ERR_NOMEM);
    memcpy(s->kid, kid, kid_len);
    s->kid[kid_len] = '\0';
    LUNA_TRY(luna_secret_from(seed, LUNA_ED25519_SEED_LEN, &s->seed), out);
    LUNA_TRY(luna_ed25519_public(luna_secret_cdata(s->seed), s->pk), out);
    *out = s;
    s = NULL;
out:
    luna_jws_signer_free(s);
    return err;
}

luna_err luna_jws_signer_generate(const char *kid, luna_jws_signer **out)
{
    luna_err err;
    uint8_t seed[LUNA_ED25519_SEED_LEN];
    uint8_t pk[LUNA_ED25519_PUB_LEN];

    LUNA_ENSURE(out != NULL, LUNA_ERR_INVALID_ARG);
    *out = NULL;
    LUNA_TRY(luna_ed25519_keygen(seed, pk), out);
    LUNA_TRY(luna_jws_signer_new(seed, kid, out), out);
out:
    luna_wipe(seed, sizeof(seed));
    return err;
}

void luna_jws_signer_free(luna_jws_signer *s)
{
    if (s == NULL)
        return;
    luna_secret_free(s->seed);
    free(s);
}

const char *luna_jws_signer_kid(const luna_jws_signer *s)
{
    return s == NULL ? "" : s->kid;
}

void luna_jws_signer_public(const luna_jws_signer *s, uint8_t pk[LUNA_ED25519_PUB_LEN])
{
    if (s != NULL && pk != NULL)
        memcpy(pk, s->pk, LUNA_ED25519_PUB_LEN);
}

luna_err luna_jws_signer_publish(const luna_jws_signer *s, luna_jws_keyset *ks)
{
    LUNA_ENSURE(s != NULL && ks != NULL, LUNA_ERR_INVALID_ARG);
    return keyset_add_n(ks, s->kid, strlen(s->kid), s->pk);
}

/* Refuses what the verifier would refuse: strings or keys holding NUL
   (dumped as \u0000) and nesting past JWS_CLAIMS_MAX_DEPTH. */
static bool claims_clean(const json_t *v, unsigned depth)
{
    if (depth > JWS_CLAIMS_MAX_DEPTH)
        return false;
    if (json_is_string(v))
        return json_cstr(v, NULL) != NULL;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!claims_clean(json_array_get(v, i), depth + 1))
                return false;
        return true;
    }
    if (json_is_object(v)) {
        /* jansson's iterator API takes a non-const object; it only reads. */
        json_t *obj = (json_t *)(uintptr_t)v;
        for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
            const char *key = json_object_iter_key(it);
            if (memchr(key, '\0', json_object_iter_key_len(it)) != NULL ||
                !claims_clean(json_object_iter_value(it), depth + 1))
                return false;
        }
        return true;
    }
    return true;
}

static bool time_claim_ok(const json_t *claims, const char *name, bool required)
{
    const json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return !required;
    return json_is_integer(v);
}

/* Dumps v compactly into buf (cap bytes); *n is its length. */
static luna_err dump_into(const json_t *v, size_t flags, uint8_t *buf, size_t cap, size_t *n)
{
    size_t need = json_dumpb(v, (char *)buf, cap, flags);
    if (need == 0)
        return LUNA_ERR_NOMEM;
    if (need > cap)
        return LUNA_ERR_TOO_LARGE;
    *n = need;
    return LUNA_OK;
}

luna_err luna_jws_sign(const luna_jws_signer *s, const json_t *claims, char **token,
                       size_t *token_len)
{
    luna_err err;
    json_t *header = NULL;
    uint8_t hjson[JWS_HEADER_MAX], pjson[JWS_PAYLOAD_MAX];
    uint8_t sig[LUNA_ED25519_SIG_LEN];
    size_t hlen, plen, off, total, cap;
    char *tok = NULL;

    LUNA_ENSURE(s != NULL && claims != NULL && token != NULL, LUNA_ERR_INVALID_ARG);
    *token = NULL;
    LUNA_ENSURE(json_is_object(claims) && time_claim_ok(claims, "exp", true) &&
                    time_claim_ok(claims, "nbf", false) && time_claim_ok(claims, "iat", false) &&
                    claims_clean(claims, 0),
                LUNA_ERR_INVALID_ARG);

    header = json_pack("{s:s,s:s,s:s}", "alg", jws_alg, "typ", "JWT", "kid", s->kid);
    LUNA_TRY_ENSURE(header != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(dump_into(header, JSON_COMPACT | JSON_PRESERVE_ORDER, hjson, sizeof(hjson), &hlen),
             out);
    LUNA_TRY(dump_into(claims, JSON_COMPACT | JSON_PRESERVE_ORDER, pjson, sizeof(pjson), &plen),
             out);
    /* Encoded lengths (without the NUL the encoder adds). */
    size_t hb = LUNA_B64URL_ENC_LEN(hlen) - 1, pb = LUNA_B64URL_ENC_LEN(plen) - 1;
    hb -= (3 - hlen % 3) % 3;
    pb -= (3 - plen % 3) % 3;
    LUNA_TRY_ENSURE(hb <= LUNA_JWS_MAX_HEADER_B64_LEN && pb <= LUNA_JWS_MAX_PAYLOAD_B64_LEN,
                    LUNA_ERR_TOO_LARGE, out);
    total = hb + 1 + pb + 1 + LUNA_JWS_SIG_B64_LEN;
    LUNA_TRY_ENSURE(total <= LUNA_JWS_MAX_TOKEN_LEN, LUNA_ERR_TOO_LARGE, out);

    /* The encoder asks for room for padding it does not write: 2 bytes of
       slack beyond the token and its NUL. */
    cap = total + 1 + 2;
    tok = malloc(cap);
    LUNA_TRY_ENSURE(tok != NULL, LUNA_ERR_NOMEM, out);
    LUNA_TRY(luna_b64url_encode(hjson, hlen, tok, cap), out);
    off = hb;
    tok[off++] = '.';
    LUNA_TRY(luna_b64url_encode(pjson, plen, &tok[off], cap - off), out);
    off += pb;
    LUNA_TRY(luna_ed25519_sign(luna_secret_cdata(s->seed), (const uint8_t *)tok, off, sig), out);
    tok[off++] = '.';
    LUNA_TRY(luna_b64url_encode(sig, sizeof(sig), &tok[off], cap - off), out);
    LUNA_TRY_ENSURE(off + LUNA_JWS_SIG_B64_LEN == total && strlen(tok) == total,
                    LUNA_ERR_INTERNAL, out);
    *token = tok;
    tok = NULL;
    if (token_len != NULL)
        *token_len = total;
out:
    free(tok);
    json_decref(header);
    return err;
}

/* ---- verification ---- */

void luna_jws_verify_opts_init(luna_jws_verify_opts *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->skew = LUNA_JWS_DEFAULT_SKEW;
}

static bool ascii_ieq(const char *a, size_t n, const char *b)
{
    if (n != strlen(b))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'a' && x <= 'z')
            x = (unsigned char)(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z')
            y = (unsigned char)(y - 'a' + 'A');
        if (x != y)
            return false;
    }
    return true;
}

/*
 * Header rules.  The algorithm is compared against the one constant this
 * verifier supports; the header is only ever asked "is it EdDSA".
 */
static luna_err check_header(const json_t *h, const luna_jws_keyset *ks,
                             const struct jws_key **key)
{
    const json_t *v;
    const char *kid, *typ;
    size_t kid_len, typ_len;

    v = json_object_get(h, "alg");
    LUNA_ENSURE(v != NULL && json_is_string(v), LUNA_ERR_FORMAT);
    LUNA_ENSURE(json_str_equal(v, jws_alg), LUNA_ERR_VERIFY);
    for (size_t i = 0; i < sizeof(jws_refused_header) / sizeof(jws_refused_header[0]); i++)
        LUNA_ENSURE(json_object_get(h, jws_refused_header[i]) == NULL, LUNA_ERR_FORMAT);
    v = json_object_get(h, "typ");
    if (v != NULL) {
        typ = json_cstr(v, &typ_len);
        /* RFC 7515 4.1.9: media types compare case-insensitively. */
        LUNA_ENSURE(typ != NULL && ascii_ieq(typ, typ_len, "JWT"), LUNA_ERR_FORMAT);
    }
    kid = json_cstr(json_object_get(h, "kid"), &kid_len);
    LUNA_ENSURE(kid != NULL, LUNA_ERR_FORMAT);
    *key = keyset_lookup(ks, kid, kid_len);
    LUNA_ENSURE(*key != NULL, LUNA_ERR_NOT_FOUND);
    return LUNA_OK;
}

static bool aud_matches(const json_t *aud, const char *want, bool any_of)
{
    if (json_is_string(aud))
        return json_str_equal(aud, want);
    if (!any_of)
        return false;
    for (size_t i = 0; i < json_array_size(aud); i++)
        if (json_str_equal(json_array_get(aud, i), want))
            return true;
    return false;
}

static bool aud_well_formed(const json_t *aud)
{
    if (json_is_string(aud))
        return json_cstr(aud, NULL) != NULL;
    if (!json_is_array(aud))
        return false;
    for (size_t i = 0; i < json_array_size(aud); i++)
        if (json_cstr(json_array_get(aud, i), NULL) == NULL)
            return false;
    return true;
}

static luna_err check_claims(const json_t *c, int64_t now, int64_t skew,
                             const luna_jws_verify_opts *opts)
{
    const json_t *exp = json_object_get(c, "exp");
    const json_t *nbf = json_object_get(c, "nbf");
    const json_t *iat = json_object_get(c, "iat");
    const json_t *iss = json_object_get(c, "iss");
    const json_t *aud = json_object_get(c, "aud");
    const json_t *sub = json_object_get(c, "sub");

    /* Types first, so a malformed token is reported as such whatever the
       clock says.  NumericDate is taken as an integer only. */
    LUNA_ENSURE(json_is_integer(exp), LUNA_ERR_FORMAT);
    LUNA_ENSURE(nbf == NULL || json_is_integer(nbf), LUNA_ERR_FORMAT);
    LUNA_ENSURE(iat == NULL || json_is_integer(iat), LUNA_ERR_FORMAT);
    LUNA_ENSURE(iss == NULL || json_cstr(iss, NULL) != NULL, LUNA_ERR_FORMAT);
    LUNA_ENSURE(sub == NULL || json_cstr(sub, NULL) != NULL, LUNA_ERR_FORMAT);
    LUNA_ENSURE(aud == NULL || aud_well_formed(aud), LUNA_ERR_FORMAT);

    /* now is in [0, INT64_MAX - LUNA_JWS_MAX_SKEW], so neither now - skew
       nor now + skew overflows; the claim values are never added to. */
    LUNA_ENSURE(json_integer_value(exp) > now - skew, LUNA_ERR_EXPIRED);
    LUNA_ENSURE(nbf == NULL || json_integer_value(nbf) <= now + skew, LUNA_ERR_EXPIRED);
    LUNA_ENSURE(iat == NULL || json_integer_value(iat) <= now + skew, LUNA_ERR_EXPIRED);

    if (opts->issuer != NULL)
        LUNA_ENSURE(iss != NULL && json_str_equal(iss, opts->issuer), LUNA_ERR_VERIFY);
    /* RFC 7519 4.1.3: a verifier that does not find itself in a present
       "aud" must refuse, so a token minted for another service is never
       accepted by a verifier that set no audience. */
    if (opts->audience != NULL)
        LUNA_ENSURE(aud != NULL && aud_matches(aud, opts->audience, opts->audience_any_of),
                    LUNA_ERR_VERIFY);
    else
        LUNA_ENSURE(aud == NULL, LUNA_ERR_VERIFY);
    return LUNA_OK;
}

luna_err luna_jws_verify(const luna_jws_keyset *ks, const char *token, size_t token_len,
                         const luna_jws_verify_opts *opts, json_t **claims, char *kid_out)
{
    luna_err err;
    luna_jws_verify_opts defaults;
    luna_reader r;
    const uint8_t *signed_part, *h64, *p64, *s64;
    size_t dots = 0, d2 = 0, h64_len = 0, s64_len, n;
    uint8_t hjson[JWS_HEADER_MAX], pjson[JWS_PAYLOAD_MAX], sig[LUNA_ED25519_SIG_LEN];
    json_t *header = NULL, *payload = NULL;
    const struct jws_key *key = NULL;
    int64_t now;

    LUNA_ENSURE(claims != NULL, LUNA_ERR_INVALID_ARG);
    *claims = NULL;
    LUNA_ENSURE(ks != NULL && (token != NULL || token_len == 0), LUNA_ERR_INVALID_ARG);
    if (opts == NULL) {
        luna_jws_verify_opts_init(&defaults);
        opts = &defaults;
    }
    LUNA_ENSURE(opts->skew <= LUNA_JWS_MAX_SKEW, LUNA_ERR_INVALID_ARG);
    now = opts->now;
    if (now == 0) {
        time_t t = time(NULL);
        LUNA_ENSURE(t != (time_t)-1, LUNA_ERR_INTERNAL);
        now = (int64_t)t;
    }
    LUNA_ENSURE(now > 0 && now <= INT64_MAX - (int64_t)LUNA_JWS_MAX_SKEW, LUNA_ERR_INVALID_ARG);

    LUNA_ENSURE(token_len <= LUNA_JWS_MAX_TOKEN_LEN, LUNA_ERR_TOO_LARGE);
    for (size_t i = 0; i < token_len; i++) {
        if (token[i] == '.') {
            if (dots == 0)
                h64_len = i;
            else
                d2 = i;
            dots++;
        }
    }
    LUNA_ENSURE(dots == 2, LUNA_ERR_FORMAT);

    /* signed_part = header64 "." payload64, the JWS signing input. */
    luna_reader_init(&r, (const uint8_t *)token, token_len);
    LUNA_GUARD(luna_read_view(&r, &signed_part, d2));
    LUNA_GUARD(luna_read_skip(&r, 1));
    s64_len = luna_reader_left(&r);
    LUNA_ENSURE(s64_len <= LUNA_JWS_SIG_B64_LEN, LUNA_ERR_FORMAT);
    LUNA_GUARD(luna_read_view(&r, &s64, s64_len));
    LUNA_GUARD(luna_read_end(&r));

    luna_reader_init(&r, signed_part, d2);
    LUNA_GUARD(luna_read_view(&r, &h64, h64_len));
    LUNA_GUARD(luna_read_skip(&r, 1));
    n = luna_reader_left(&r);
    LUNA_GUARD(luna_read_view(&r, &p64, n));
    LUNA_GUARD(luna_read_end(&r));
    LUNA_ENSURE(h64_len > 0 && n > 0, LUNA_ERR_FORMAT);
    LUNA_ENSURE(h64_len <= LUNA_JWS_MAX_HEADER_B64_LEN && n <= LUNA_JWS_MAX_PAYLOAD_B64_LEN,
                LUNA_ERR_TOO_LARGE);

    /* Header: decoded and judged before any signature work. */
    size_t hjson_len, pjson_len, sig_len;
    LUNA_TRY(luna_b64url_decode((const char *)h64, h64_len, hjson, sizeof(hjson), &hjson_len),
             out);
    LUNA_TRY(parse_object(hjson, hjson_len, &header), out);
    LUNA_TRY(check_header(header, ks, &key), out);

    /* After the header, so a wrong "alg" is reported as such whatever the
       signature part holds (e.g. the empty one of "alg":"none"). */
    LUNA_TRY_ENSURE(s64_len == LUNA_JWS_SIG_B64_LEN, LUNA_ERR_FORMAT, out);
    LUNA_TRY(luna_b64url_decode((const char *)s64, s64_len, sig, sizeof(sig), &sig_len), out);
    LUNA_TRY_ENSURE(sig_len == LUNA_ED25519_SIG_LEN, LUNA_ERR_FORMAT, out);
    /* Decoding is plain byte work, done before the signature so that bad
       base64url is reported as malformed wherever it is. */
    LUNA_TRY(luna_b64url_decode((const char *)p64, n, pjson, sizeof(pjson), &pjson_len), out);
    err = luna_ed25519_verify(key->pk, signed_part, d2, sig, sig_len);
    if (err == LUNA_ERR_FORMAT) /* a key or signature the curve refuses */
        err = LUNA_ERR_VERIFY;
    if (err != LUNA_OK)
        goto out;

    /* Only authenticated bytes reach the claims parser. */
    LUNA_TRY(parse_object(pjson, pjson_len, &payload), out);
    LUNA_TRY(check_claims(payload, now, (int64_t)opts->skew, opts), out);

    if (kid_out != NULL)
        memcpy(kid_out, key->kid, key->kid_len + 1);
    *claims = payload;
    payload = NULL;
out:
    json_decref(header);
    json_decref(payload);
    return err;
}
