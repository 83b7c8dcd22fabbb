/*
 * fuzz_jws.c - fuzzes the JWS/JWT verifier and the JWKS loader
 * (core/src/jws.c).  The first input byte picks the mode:
 *   0: the rest is a compact token, verified against a fixed key set;
 *   1: the rest is a JWKS document for luna_jws_keyset_load (re-exported
 *      and re-loaded when accepted: the two must agree);
 *   2: the rest is "<header JSON>\n<claims JSON>", signed here with the
 *      fixed key, so the claims parser and time checks (behind the
 *      signature in mode 0) are reached too.
 * Must never crash or leak, never hand out claims with an error, and
 * never accept under any kid but the one configured.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "luna/bytes.h"
#include "luna/crypto.h"
#include "luna/jws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 8032 section 7.1 test 1: a public test key, no secret. */
static const uint8_t fuzz_seed[LUNA_ED25519_SEED_LEN] = {
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
#define FUZZ_NOW 1700000000

static luna_jws_keyset *fuzz_keyset(void)
{
    static luna_jws_keyset *ks;
    uint8_t pk[LUNA_ED25519_PUB_LEN];
    if (ks != NULL)
        return ks;
    if (luna_jws_keyset_new(&ks) != LUNA_OK || luna_ed25519_public(fuzz_seed, pk) != LUNA_OK ||
        luna_jws_keyset_add(ks, "k1", pk) != LUNA_OK)
        abort();
    return ks;
}

static void verify_one(const char *tok, size_t len)
{
    luna_jws_verify_opts o;
    json_t *claims = NULL;
    char kid[LUNA_JWS_MAX_KID_LEN + 1];
    luna_jws_verify_opts_init(&o);
    o.now = FUZZ_NOW;
    o.audience = "gateway";
    luna_err err = luna_jws_verify(fuzz_keyset(), tok, len, &o, &claims, kid);
    if (err == LUNA_OK) {
        if (!json_is_object(claims) || strcmp(kid, "k1") != 0)
            abort();
        json_decref(claims);
    } else if (claims != NULL) {
        abort();
    }
}

static void fuzz_jwks(const uint8_t *data, size_t size)
{
    luna_jws_keyset *ks = NULL, *back = NULL;
    char *doc = NULL, *doc2 = NULL;
    if (luna_jws_keyset_load((const char *)data, size, &ks) != LUNA_OK)
        return;
    if (luna_jws_keyset_export(ks, &doc, NULL) != LUNA_OK ||
        luna_jws_keyset_load(doc, strlen(doc), &back) != LUNA_OK ||
        luna_jws_keyset_export(back, &doc2, NULL) != LUNA_OK || strcmp(doc, doc2) != 0)
        abort();
    free(doc);
    free(doc2);
    luna_jws_keyset_free(back);
    luna_jws_keyset_free(ks);
}

/* header64 "." payload64 "." sig64, signed with fuzz_seed. */
static void fuzz_signed(const uint8_t *data, size_t size)
{
    size_t split = 0;
    while (split < size && data[split] != '\n')
        split++;
    if (split == size)
        return;
    size_t plen = size - split - 1;
    if (split > LUNA_JWS_MAX_TOKEN_LEN || plen > LUNA_JWS_MAX_TOKEN_LEN)
        return;
    size_t cap = LUNA_B64URL_ENC_LEN(split) + LUNA_B64URL_ENC_LEN(plen) +
                 LUNA_B64URL_ENC_LEN(LUNA_ED25519_SIG_LEN) + 2;
    char *tok = malloc(cap);
    uint8_t sig[LUNA_ED25519_SIG_LEN];
    if (tok == NULL)
        return;
    size_t off;
    if (luna_b64url_encode(data, split, tok, cap) != LUNA_OK)
        abort();
    off = strlen(tok);
    tok[off++] = '.';
    if (luna_b64url_encode(&data[split + 1], plen, &tok[off], cap - off) != LUNA_OK)
        abort();
    off += strlen(&tok[off]);
    if (luna_ed25519_sign(fuzz_seed, (const uint8_t *)tok, off, sig) != LUNA_OK)
        abort();
    tok[off++] = '.';
    if (luna_b64url_encode(sig, sizeof(sig), &tok[off], cap - off) != LUNA_OK)
        abort();
    verify_one(tok, strlen(tok));
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        verify_one((const char *)&data[1], size - 1);
        break;
    case 1:
        fuzz_jwks(&data[1], size - 1);
        break;
    default:
        fuzz_signed(&data[1], size - 1);
        break;
    }
    return 0;
}
